"""Bradley-Terry reward models fit to sampled preference pairs (Section 4.1 of arXiv 2503.15477).

The paper trains reward models on preference data whose pairs come from the initial policy
(on-policy) or from elsewhere (off-policy), in proportions from 100 % to 0 %; the share of
on-policy pairs changes which outputs the reward model separates well, and so the reward variance
it induces under the policy. Here the same pipeline runs on tabular rewards: sample pairs, label
them, fit a reward table by maximum likelihood with optax, normalise it as the paper does.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory_sim import _random
from theory_sim._validation import (
    as_float_array,
    check_allocation,
    check_choice,
    check_float_scalar,
    check_int,
    check_key,
    check_probabilities,
)
from theory_sim.training import _optax_promotion

__all__ = ["PreferencePairs", "fit_bradley_terry", "normalize_rewards", "sample_preferences"]


@dataclasses.dataclass(frozen=True)
class PreferencePairs:
    """Labelled preference pairs: for pair i, prompt[i] with outputs first[i] != second[i], and
    first_wins[i] = 1 if the first output was preferred (0 otherwise). ``on_policy`` marks pairs
    drawn from pi_0."""

    prompt: np.ndarray
    first: np.ndarray
    second: np.ndarray
    first_wins: np.ndarray
    on_policy: np.ndarray


def _sample_distinct_pairs(key, probs: jax.Array, num: int):
    """``num`` pairs per row of ``probs`` [X, Y] from pi x pi conditioned on y != y', exactly.

    y has law proportional to pi(y)(1 - pi(y)); given y, y' ~ pi restricted to outputs != y.
    Then P(y, y') = pi(y) pi(y') / Z for every y != y'.
    """
    k1, k2 = jax.random.split(key)
    first = jax.random.categorical(k1, jnp.log(probs * (1.0 - probs)), shape=(num,))
    rest = jnp.where(jax.nn.one_hot(first, probs.shape[-1], dtype=bool), 0.0, probs)
    second = jax.random.categorical(k2, jnp.log(rest), axis=-1)
    return first, second


def sample_preferences(
    init_probs,
    reward_gt,
    num_pairs: int,
    on_policy_fraction: float,
    *,
    key: jax.Array,
    off_policy_probs=None,
    labels: str = "bradley_terry",
    beta: float = 1.0,
) -> PreferencePairs:
    """Sample labelled preference pairs, a fraction of them on-policy.

    Each pair takes a uniform prompt x; with probability ``on_policy_fraction`` its outputs are
    drawn from pi_0(.|x) x pi_0(.|x) given y != y', otherwise from ``off_policy_probs`` (default
    uniform) the same way. Labels: "bradley_terry" draws first_wins ~ Bernoulli(sigmoid(beta
    (r_G(y) - r_G(y')))); "deterministic" sets it to 1[r_G(y) > r_G(y')] (1/2 on ties).

    Args:
        init_probs: pi_0 [X, Y] (or [Y]).
        reward_gt: r_G of the same shape.
        num_pairs: how many pairs, >= 1.
        on_policy_fraction: in [0, 1].
        key: a JAX random key; same key, same pairs.
        off_policy_probs: the off-policy distribution, shaped like ``init_probs``.
        labels: "bradley_terry" or "deterministic".
        beta: inverse temperature of the Bradley-Terry labels, > 0.
    """
    probs = check_probabilities("init_probs", init_probs)
    probs = probs[None] if probs.ndim == 1 else probs
    r_gt = as_float_array("reward_gt", reward_gt)
    r_gt = r_gt[None] if r_gt.ndim == 1 else r_gt
    if r_gt.shape != probs.shape:
        raise ValueError(
            f"`reward_gt` must have the shape of `init_probs` {probs.shape}; got {r_gt.shape}."
        )
    if np.any(np.sum(probs > 0, axis=-1) < 2):
        raise ValueError("`init_probs` needs mass on at least two outputs in every row.")
    off = (
        np.full_like(probs, 1.0 / probs.shape[-1])
        if off_policy_probs is None
        else check_probabilities("off_policy_probs", off_policy_probs).reshape(probs.shape)
    )
    check_int("num_pairs", num_pairs)
    # five per-pair fields plus the sampling's uniforms and indices, twice over while building
    check_allocation(f"`num_pairs` = {num_pairs} pairs", 2.0 * 8 * 12 * num_pairs)
    frac = check_float_scalar("on_policy_fraction", on_policy_fraction, nonnegative=True)
    if frac > 1:
        raise ValueError(f"`on_policy_fraction` must be in [0, 1]; got {frac}.")
    if frac < 1 and np.any(np.sum(off > 0, axis=-1) < 2):  # an off-policy pair needs two outputs
        raise ValueError("`off_policy_probs` needs mass on at least two outputs in every row.")
    labels = check_choice("labels", labels, ("bradley_terry", "deterministic"))
    beta = check_float_scalar("beta", beta, positive=True)
    k_prompt, k_on, k_pairs_on, k_pairs_off, k_label = jax.random.split(check_key(key), 5)
    prompt = jax.random.randint(k_prompt, (num_pairs,), 0, probs.shape[0])
    on_policy = _random.uniform(k_on, (num_pairs,)) < frac
    f_on, s_on = jax.vmap(lambda k, p: _sample_distinct_pairs(k, p, 1))(
        jax.random.split(k_pairs_on, num_pairs), jnp.asarray(probs)[prompt]
    )
    f_off, s_off = jax.vmap(lambda k, p: _sample_distinct_pairs(k, p, 1))(
        jax.random.split(k_pairs_off, num_pairs), jnp.asarray(off)[prompt]
    )
    first = np.asarray(jnp.where(on_policy, f_on[:, 0], f_off[:, 0]))
    second = np.asarray(jnp.where(on_policy, s_on[:, 0], s_off[:, 0]))
    prompt = np.asarray(prompt)
    diff = r_gt[prompt, first] - r_gt[prompt, second]
    if labels == "deterministic":
        wins = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
    else:
        u = _random.uniform(k_label, (num_pairs,))
        wins = (u < 1.0 / (1.0 + np.exp(-beta * diff))).astype(np.float64)
    return PreferencePairs(prompt, first, second, wins, np.asarray(on_policy))


@partial(jax.jit, static_argnames=("shape", "steps"))
def _fit(prompt, first, second, wins, shape, steps, learning_rate, l2):
    def loss(scores):
        d = scores[prompt, first] - scores[prompt, second]
        nll = -jnp.mean(wins * jax.nn.log_sigmoid(d) + (1.0 - wins) * jax.nn.log_sigmoid(-d))
        return nll + l2 * jnp.mean(jnp.square(scores))

    optimiser = optax.adam(learning_rate)
    scores = jnp.zeros(shape)

    def step(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(loss)(params)
        updates, state = optimiser.update(grad, state, params)
        return (optax.apply_updates(params, updates), state), value

    (scores, _), losses = jax.lax.scan(step, (scores, optimiser.init(scores)), None, length=steps)
    return scores, losses


def _check_pairs(pairs, num_prompts: int, num_outputs: int) -> None:
    """Refuse pairs a fit cannot use: wrong type, unequal lengths, indices outside [0, X) and
    [0, Y) (negative indices would silently wrap around), labels outside [0, 1] or NaN."""
    if not isinstance(pairs, PreferencePairs):
        raise TypeError(f"`pairs` must be a PreferencePairs; got {type(pairs).__name__}.")
    columns = {
        "prompt": (np.asarray(pairs.prompt), num_prompts),
        "first": (np.asarray(pairs.first), num_outputs),
        "second": (np.asarray(pairs.second), num_outputs),
    }
    lengths = {name: arr.shape for name, (arr, _) in columns.items()}
    lengths["first_wins"] = np.shape(pairs.first_wins)
    if len(set(lengths.values())) != 1 or len(lengths["prompt"]) != 1 or not lengths["prompt"][0]:
        raise ValueError(f"`pairs` must hold 1-D columns of one non-zero length; got {lengths}.")
    for name, (arr, size) in columns.items():
        if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= size:
            raise ValueError(
                f"`pairs.{name}` must hold integer indices in [0, {size - 1}]; got values from "
                f"{arr.min()} to {arr.max()} (dtype {arr.dtype})."
            )
    wins = np.asarray(pairs.first_wins, dtype=np.float64)
    if not np.all((wins >= 0) & (wins <= 1)):  # also refuses NaN
        raise ValueError("`pairs.first_wins` must hold labels in [0, 1] (1: first preferred).")


def fit_bradley_terry(
    pairs: PreferencePairs,
    num_prompts: int,
    num_outputs: int,
    *,
    steps: int = 3000,
    learning_rate: float = 0.05,
    l2: float = 1e-4,
) -> np.ndarray:
    """Maximum-likelihood tabular Bradley-Terry reward model, fit with Adam (optax).

    minimise  -mean_i [w_i log sigmoid(s(x_i, y_i) - s(x_i, y'_i)) + (1 - w_i) log sigmoid(-...)]
              + l2 mean_{x, y} s(x, y)^2

    The small l2 term pins each prompt's free shift and the scores of outputs no pair mentions.

    Returns:
        [X, Y] reward table (not yet normalised: see :func:`normalize_rewards`).
    """
    num_prompts, num_outputs = (
        check_int("num_prompts", num_prompts),
        check_int("num_outputs", num_outputs),
    )
    steps = check_int("steps", steps)
    _check_pairs(pairs, num_prompts, num_outputs)
    learning_rate = check_float_scalar("learning_rate", learning_rate, positive=True)
    l2 = check_float_scalar("l2", l2, nonnegative=True)
    with _optax_promotion():
        scores, _ = _fit(
            jnp.asarray(pairs.prompt),
            jnp.asarray(pairs.first),
            jnp.asarray(pairs.second),
            jnp.asarray(pairs.first_wins),
            (int(num_prompts), int(num_outputs)),
            int(steps),
            learning_rate,
            l2,
        )
    return np.asarray(scores)


def normalize_rewards(reward, init_probs) -> np.ndarray:
    """Shift and scale a reward table to mean 0 and standard deviation 1 under pi_0, as the paper
    normalises each reward model by the statistics of its rewards on initial-policy samples; here
    the statistics are exact: mean m = mean_x E_pi0 r(x, .), variance mean_x E_pi0 (r - m)^2.

    Returns:
        (r - m) / sd, [X, Y].
    """
    probs = check_probabilities("init_probs", init_probs)
    rew = as_float_array("reward", reward)
    if rew.shape != probs.shape:
        raise ValueError(
            f"`reward` must have shape {probs.shape} like `init_probs`; got {rew.shape}."
        )
    mean = float(np.mean(np.sum(probs * rew, axis=-1)))
    var = float(np.mean(np.sum(probs * (rew - mean) ** 2, axis=-1)))
    # below round-off of the mean, the spread is noise: treat the reward as constant
    if var <= (1e-12 * max(1.0, abs(mean))) ** 2:
        raise ValueError("`reward` is constant under `init_probs`: it cannot be normalised.")
    return (rew - mean) / np.sqrt(var)
