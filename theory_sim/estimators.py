"""Sampled policy-gradient estimators: REINFORCE (exact baseline), RLOO and GRPO estimates of
grad phi from k outputs sampled per prompt, optionally rewarded by a noisy verifier, and their
signal-to-noise ratio (:mod:`theory_sim.training` trains with them; :mod:`theory_sim.groups`
gives their exact expectation)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import (
    check_allocation,
    check_choice,
    check_int,
    check_key,
)
from theory_sim.metrics import _expected_reward
from theory_sim.objective import _grad
from theory_sim.problem import Problem, check_problem
from theory_sim.rewards.verifiers import sample_verdicts, youden_j

__all__ = ["ESTIMATORS", "estimate_gradient", "gradient_snr"]

ESTIMATORS = ("reinforce", "rloo", "grpo")


def _sample(key, probs, num_samples: int):
    """``num_samples`` outputs per prompt drawn from ``probs`` [X, Y] by inverse-CDF sampling:
    one uniform per sample (categorical sampling draws a Gumbel per output per sample) and a
    binary search of the cumulative sums. The output is the first y with u < F(y) for u uniform
    on [0, F(Y)), so P(y) = pi(y) exactly up to the round-off of the cumulative sums, and an
    output of probability 0 is never drawn. Returns [X, num_samples] indices."""
    cdf = jnp.cumsum(probs, axis=-1)
    u = jax.random.uniform(key, (probs.shape[0], num_samples), probs.dtype) * cdf[:, -1:]
    found = jax.vmap(lambda c, v: jnp.searchsorted(c, v, side="right"))(cdf, u)
    return jnp.minimum(found, probs.shape[-1] - 1)


def _estimate(problem, params, key, num_samples: int, method: str, verifier=None):
    """One estimate of grad phi from ``num_samples`` outputs per prompt (see estimate_gradient).
    ``verifier`` = (FPR, FNR): r_RM holds 0/1 labels and each sample's reward is a verdict drawn
    through that noise channel (:func:`theory_sim.rewards.sample_verdicts`)."""
    log_probs, pullback = jax.vjp(problem.log_probs, params)
    num_prompts, num_outputs = log_probs.shape
    key, noise = jax.random.split(key) if verifier is not None else (key, None)
    samples = _sample(key, jnp.exp(log_probs), num_samples)
    # r_KL with log pi held fixed: E_pi[grad log pi] = 0 takes care of its own derivative
    penalty = jax.lax.stop_gradient(problem.kl_coef * (log_probs - problem.ref_log_probs))
    reward = problem.reward_rm
    if verifier is not None:
        fpr, fnr = verifier
        labels = jnp.take_along_axis(reward, samples, axis=-1)
        verdicts = sample_verdicts(noise, labels, fpr, fnr)
        rewards = verdicts - jnp.take_along_axis(penalty, samples, axis=-1)  # [X, k]
        reward = fpr + (1.0 - fpr - fnr) * reward  # the expected verdict, for the baseline
        r_kl = jax.lax.stop_gradient(reward - penalty)
    else:
        r_kl = jax.lax.stop_gradient(reward - penalty)
        rewards = jnp.take_along_axis(r_kl, samples, axis=-1)  # [X, k]
    mean = jnp.mean(rewards, axis=-1, keepdims=True)
    if method == "reinforce":
        baseline = _expected_reward(jnp.exp(log_probs), r_kl)[:, None]  # exact, unbiased
        advantage = rewards - baseline
    elif method == "rloo":
        advantage = (rewards - mean) * num_samples / (num_samples - 1)  # leave-one-out mean
    else:  # grpo
        # A group whose rewards all tie carries no signal: its advantages are exactly zero. Ties
        # are detected exactly; testing std > 0 would divide round-off (std ~ 1e-16 for equal
        # rewards) by round-off and return O(1) noise.
        tied = jnp.all(rewards == rewards[..., :1], axis=-1, keepdims=True)
        std = jnp.std(rewards, axis=-1, keepdims=True)
        advantage = jnp.where(tied, 0.0, (rewards - mean) / jnp.where(tied, 1.0, std))
    rows = jnp.broadcast_to(jnp.arange(num_prompts)[:, None], samples.shape)
    cotangent = (
        jnp.zeros((num_prompts, num_outputs), log_probs.dtype)
        .at[rows, samples]
        .add(advantage / (num_samples * num_prompts))
    )
    return pullback(cotangent)[0]


@partial(jax.jit, static_argnames=("num_samples", "method", "verifier"))
def _estimates(problem, params, keys, num_samples, method, verifier=None):
    return jax.vmap(lambda k: _estimate(problem, params, k, num_samples, method, verifier))(keys)


def _check_verifier(problem, verifier) -> tuple[float, float]:
    """(FPR, FNR) as floats in [0, 1], with ``problem.reward_rm`` holding 0/1 labels."""
    if not isinstance(verifier, tuple | list) or len(verifier) != 2:
        raise ValueError(f"`verifier` must be a pair (FPR, FNR); got {verifier!r}.")
    try:
        youden_j(*verifier)  # checks both rates
    except ValueError as err:
        raise ValueError(f"`verifier`: {err}") from None
    labels = np.asarray(problem.reward_rm)
    if not np.all(np.isin(labels, (0.0, 1.0))):
        raise ValueError(
            "`verifier` needs 0/1 correctness labels in the problem's reward_rm; found "
            f"{labels[~np.isin(labels, (0.0, 1.0))].ravel()[0]!r}."
        )
    return float(verifier[0]), float(verifier[1])


def _check_estimator(method: str, num_samples, methods=ESTIMATORS, name="num_samples") -> int:
    """``num_samples`` (called ``name``) as an int, after ``method`` is checked against
    ``methods``: every method but REINFORCE compares each sample with the others of its group,
    so it needs two."""
    method = check_choice("method", method, methods)
    low = 1 if method == "reinforce" else 2
    try:
        return check_int(name, num_samples, low)
    except ValueError:
        raise ValueError(
            f"`{name}` must be an integer >= {low} for {method}; got {num_samples!r}."
        ) from None


def estimate_gradient(
    problem: Problem,
    logits,
    *,
    key: jax.Array,
    num_samples: int = 8,
    method: str = "rloo",
    num_estimates: int | None = None,
    verifier: tuple[float, float] | None = None,
) -> jax.Array:
    """Sampled estimates of grad phi from ``num_samples`` outputs per prompt.

    g = (1/X) sum_x (1/k) sum_i A(x, y_i) grad log pi(y_i|x),  y_i ~ pi(.|x) i.i.d.,

    with r_KL(x, y) = r_RM(x, y) - lambda ln(pi(y|x)/pi_0(y|x)) as the sampled reward (the KL term
    handled as in the exact objective) and the advantage A of each method:

    * "reinforce": r_KL(y_i) - E_pi r_KL (the exact value as baseline): unbiased;
    * "rloo": r_KL(y_i) - mean_{j != i} r_KL(y_j): unbiased, k >= 2;
    * "grpo": (r_KL(y_i) - mean_j r_KL(y_j)) / std_j r_KL(y_j), and exactly 0 for a group whose
      rewards all tie (detected by equality: a computed std of equal rewards is ~1e-16, not 0):
      biased (the normalisation), scale-free.

    Args:
        key: a JAX random key; ``num_estimates`` independent estimates use split keys.
        num_estimates: if given, return [num_estimates, ...] estimates (vmapped).
        verifier: (FPR, FNR), rates in [0, 1]: ``reward_rm`` holds 0/1 correctness labels and
            each sample is rewarded by a noisy verifier's verdict (accepted with probability
            1 - FNR if correct, FPR if not; :func:`theory_sim.rewards.sample_verdicts`); the
            REINFORCE baseline is then the expected verdict, FPR + (1 - FPR - FNR) E_pi r.

    Returns:
        Estimates shaped like ``logits`` (with a leading axis if ``num_estimates``).
    """
    problem, key = check_problem(problem), check_key(key)
    if verifier is not None:
        verifier = _check_verifier(problem, verifier)
    num_samples = _check_estimator(method, num_samples)
    params = problem.check_params("logits", logits)
    count = 1 if num_estimates is None else check_int("num_estimates", num_estimates)
    # per estimate: its samples, a cotangent table [X, Y] and the gradient, twice while building
    table = problem.num_prompts * (num_samples + problem.num_outputs)
    check_allocation(
        f"`num_estimates` x `num_samples` = {count} x {num_samples} estimates",
        8.0 * 2 * count * (table + problem.params0.size),
    )
    keys = jax.random.split(key, count)
    out = problem.user_params(_estimates(problem, params, keys, num_samples, method, verifier))
    return out[0] if num_estimates is None else out


def gradient_snr(
    problem: Problem,
    logits,
    *,
    key: jax.Array,
    num_samples: int = 8,
    method: str = "rloo",
    num_estimates: int = 1000,
) -> dict:
    """Signal-to-noise ratio of an estimator: ||mean g|| / sqrt(mean ||g - mean g||^2).

    Returns:
        {"snr", "mean_norm", "rms_deviation", "exact_norm"} over ``num_estimates`` >= 2
        estimates. The SNR is 0 when every estimate is exactly zero.
    """
    problem, key = check_problem(problem), check_key(key)
    num_estimates = check_int("num_estimates", num_estimates, 2)  # a spread needs two
    est = np.asarray(
        estimate_gradient(
            problem,
            logits,
            key=key,
            num_samples=num_samples,
            method=method,
            num_estimates=num_estimates,
        )
    )
    mean = est.mean(axis=0)
    dev = float(np.sqrt(np.mean(np.sum((est - mean).reshape(len(est), -1) ** 2, axis=-1))))
    exact = float(
        np.linalg.norm(
            np.asarray(problem.user_params(_grad(problem, problem.check_params("logits", logits))))
        )
    )
    norm = float(np.linalg.norm(mean))
    # All-zero estimates (no sampled group ever carried a signal) have SNR 0, not 0/0.
    return {
        "snr": norm / dev if dev > 0 else (float("inf") if norm > 0 else 0.0),
        "mean_norm": norm,
        "rms_deviation": dev,
        "exact_norm": exact,
    }
