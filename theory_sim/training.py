"""Discrete optimisation and sampled policy-gradient estimators beside the exact flow.

The paper's experiments ran RLOO and GRPO with Adam; its theory is about the exact gradient flow.
Here both run on the same enumerated problems:

* :func:`optimize` / :func:`steps_to_gain`: any optax transformation on the exact objective (optax
  minimises, so it is handed -grad phi, the closed form of :mod:`theory_sim.objective`), or
  natural policy gradient;
* :func:`estimate_gradient`: REINFORCE (exact baseline), RLOO and GRPO estimates of grad phi from k
  sampled outputs per prompt, seeded and vmappable over keys;
* :func:`gradient_snr` and :func:`compare_methods`: how sampling noise and discrete steps change
  the picture, next to the reward variance that governs the exact flow.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory_sim._validation import (
    check_allocation,
    check_choice,
    check_float_scalar,
    check_int,
    check_key,
    check_optimizer,
)
from theory_sim.flow import time_to_gain
from theory_sim.flow.coordinates import _gain_value
from theory_sim.flow.crossing import _gain_arguments, _out_of_reach
from theory_sim.metrics import _expected_reward
from theory_sim.objective import _grad, _objective
from theory_sim.policies import Tabular
from theory_sim.problem import Problem, check_problem

__all__ = [
    "ESTIMATORS",
    "OptimizationResult",
    "compare_methods",
    "estimate_gradient",
    "gradient_snr",
    "natural_gradient",
    "optimize",
    "sampled_optimize",
    "sampled_steps_to_gain",
    "steps_to_gain",
]

ESTIMATORS = ("reinforce", "rloo", "grpo")


def _optax_promotion():
    """optax's Adam raises its decays to an int32 step count; trace optax code under standard
    dtype promotion so it also runs where a program has made promotion strict."""
    return jax.numpy_dtype_promotion("standard")


def _natural_direction(problem: Problem, params):
    """Natural policy gradient of a tabular softmax: (1/X)(r_KL - E_pi r_KL) per prompt.

    The Fisher-preconditioned gradient of softmax logits (multiplicative weights):
    pi_{k+1}(y|x) proportional to pi_k(y|x) exp(eta (r_KL(x, y) - E r_KL) / X).
    """
    log_probs = problem.log_probs(params)
    r_kl = problem.reward_rm - problem.kl_coef * (log_probs - problem.ref_log_probs)
    mean = _expected_reward(jnp.exp(log_probs), r_kl)
    return (r_kl - mean[:, None]) / problem.num_prompts


def natural_gradient(problem: Problem, logits) -> jax.Array:
    """The natural policy gradient (Fisher-preconditioned) of phi for a tabular policy.

    npg(x, y) = (1/X) (r_KL(x, y) - E_{pi(.|x)} r_KL(x, .)): unlike the plain gradient
    pi (r_KL - E r_KL) / X it is not damped by pi, so its steps do not stall where the policy puts
    little mass on the good outputs: the flatness of Proposition 3 belongs to the plain gradient
    of this parameterisation.
    """
    problem = check_problem(problem)
    _require_tabular(problem)
    params = problem.check_params("logits", logits)
    return problem.user_params(jax.jit(_natural_direction)(problem, params))


def _require_tabular(problem: Problem) -> None:
    if not isinstance(problem.policy, Tabular):
        raise ValueError(
            f"natural policy gradient is defined here for the Tabular policy; "
            f"`problem` uses {problem.policy!r}."
        )


def _direction_fn(direction: str):
    if direction == "gradient":
        return _grad
    if direction == "natural":
        return _natural_direction
    raise ValueError(f"`direction` must be 'gradient' or 'natural'; got {direction!r}.")


@dataclasses.dataclass(frozen=True)
class OptimizationResult:
    """A discrete optimisation run, saved every ``save_every`` steps (step 0 included).

    Attributes:
        steps: [K] step counts. params: [K, ...] parameters (user layout).
        expected_rm, expected_gt: [K, X] expected rewards ([K] for one prompt). objective: [K].
    """

    steps: np.ndarray
    params: np.ndarray
    expected_rm: np.ndarray
    expected_gt: np.ndarray
    objective: np.ndarray


def _saved_run(params0, extra, update, num_saves: int, save_every: int):
    """Apply ``(params, extra) -> (params, extra)`` num_saves * save_every times; return the
    parameters at step 0 and after every ``save_every`` steps, [num_saves + 1, ...]."""

    def one_step(carry, _):
        return update(*carry), None

    def block(carry, _):
        carry, _ = jax.lax.scan(one_step, carry, None, length=save_every)
        return carry, carry[0]

    _, saved = jax.lax.scan(block, (params0, extra), None, length=num_saves)
    return jnp.concatenate([params0[None], saved])


@partial(jax.jit, static_argnames=("optimizer", "num_saves", "save_every", "direction"))
def _optimize(problem, optimizer, num_saves, save_every, direction):
    ascent = _direction_fn(direction)

    def update(params, state):
        # optax minimises: hand it the descent direction of -phi
        updates, state = optimizer.update(-ascent(problem, params), state, params)
        return optax.apply_updates(params, updates), state

    return _saved_run(
        problem.params0, optimizer.init(problem.params0), update, num_saves, save_every
    )


def _check_saves(problem, num_steps, save_every) -> tuple[int, int]:
    num_steps, save_every = check_int("num_steps", num_steps), check_int("save_every", save_every)
    if num_steps % save_every:
        raise ValueError(
            f"`num_steps` ({num_steps}) must be a multiple of `save_every` ({save_every})."
        )
    saves = num_steps // save_every + 1
    # the saved parameters, then the expected rewards computed from them (a [saves, X, Y] table)
    per_save = problem.params0.size + problem.num_prompts * problem.num_outputs
    check_allocation(f"`num_steps` / `save_every` = {saves - 1} saves", 8.0 * 3 * saves * per_save)
    return num_steps, save_every


def optimize(
    problem: Problem,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    *,
    save_every: int = 1,
    direction: str = "gradient",
) -> OptimizationResult:
    """Run an optax optimiser on the exact objective (loss = -phi) for ``num_steps`` steps.

    With ``optax.sgd(eta)`` this is gradient ascent, identical to the Euler flow with dt = eta.
    ``direction="natural"`` feeds the natural policy gradient (tabular) instead of the gradient.
    Compiled once per (problem shape, optimiser object): reuse one optimiser object to reuse it.

    Args:
        problem: the :class:`~theory_sim.Problem`.
        optimizer: any optax GradientTransformation (sgd, adam, chains, ...).
        num_steps: >= 1, a multiple of ``save_every``.
        save_every: save the state every this many steps.
        direction: "gradient" or "natural".
    """
    problem = check_problem(problem)
    optimizer = check_optimizer(optimizer)
    num_steps, save_every = _check_saves(problem, num_steps, save_every)
    if direction == "natural":
        _require_tabular(problem)
    _direction_fn(direction)
    with _optax_promotion():
        params = _optimize(problem, optimizer, num_steps // save_every, int(save_every), direction)
    finite = np.all(np.isfinite(np.asarray(params).reshape(params.shape[0], -1)), axis=1)
    if not finite.all():
        raise ValueError(
            "`optimizer` made the parameters non-finite by step "
            f"{int(np.argmin(finite)) * save_every}: is its learning rate finite and small enough?"
        )
    return _result(problem, params, np.arange(0, num_steps + 1, save_every))


@jax.jit
def _run_metrics(problem, params):
    def one(theta):
        probs = jnp.exp(problem.log_probs(theta))
        return (
            _expected_reward(probs, problem.reward_rm),
            _expected_reward(probs, problem.reward_gt),
            _objective(problem, theta),
        )

    return jax.vmap(one)(params)


def _result(problem, params, steps) -> OptimizationResult:
    e_rm, e_gt, phi = _run_metrics(problem, params)

    def per_prompt(a):
        return np.asarray(a[:, 0] if problem.single_prompt else a)

    return OptimizationResult(
        np.asarray(steps),
        np.asarray(problem.user_params(params)),
        per_prompt(e_rm),
        per_prompt(e_gt),
        np.asarray(phi),
    )


def _count_steps(problem, reward, prompt, gamma, max_steps, update, extra):
    """Apply ``(params, extra) -> (params, extra)`` updates from theta_0 until E_pi r(x, .) has
    risen by gamma or ``max_steps`` is reached; returns (steps taken, reached)."""
    target = _gain_value(problem, problem.params0, reward, prompt) + gamma

    def not_done(c):
        k, params, _ = c
        return (_gain_value(problem, params, reward, prompt) < target) & (k < max_steps)

    def step(c):
        k, params, extra = c
        return (k + 1, *update(params, extra))

    k, params, _ = jax.lax.while_loop(not_done, step, (jnp.int64(0), problem.params0, extra))
    return k, _gain_value(problem, params, reward, prompt) >= target


@partial(jax.jit, static_argnames=("optimizer", "direction"))
def _steps_to_gain(problem, optimizer, direction, reward, prompt, gamma, max_steps):
    ascent = _direction_fn(direction)

    def update(params, state):
        updates, state = optimizer.update(-ascent(problem, params), state, params)
        return optax.apply_updates(params, updates), state

    return _count_steps(
        problem, reward, prompt, gamma, max_steps, update, optimizer.init(problem.params0)
    )


def steps_to_gain(
    problem: Problem,
    optimizer: optax.GradientTransformation,
    gamma: float,
    reward=None,
    prompt: int = 0,
    max_steps: int = 10**6,
    *,
    direction: str = "gradient",
) -> float:
    """The number of optimiser steps until E_pi r(x, .) has risen by gamma (inf if not by
    ``max_steps``): the discrete counterpart of :func:`~theory_sim.time_to_gain`."""
    problem = check_problem(problem)
    optimizer = check_optimizer(optimizer)
    gamma, table, prompt, _ = _gain_arguments(problem, gamma, reward, prompt, 1.0)
    max_steps = check_int("max_steps", max_steps)
    if direction == "natural":
        _require_tabular(problem)
    _direction_fn(direction)
    if _out_of_reach(problem, table, prompt, gamma):
        return float("inf")
    with _optax_promotion():
        k, reached = _steps_to_gain(problem, optimizer, direction, table, prompt, gamma, max_steps)
    return float(k) if bool(reached) else float("inf")


# ----------------------------------------------------------------------------- estimators


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


def _estimate(problem, params, key, num_samples: int, method: str):
    """One estimate of grad phi from ``num_samples`` outputs per prompt (see estimate_gradient)."""
    log_probs, pullback = jax.vjp(problem.log_probs, params)
    num_prompts, num_outputs = log_probs.shape
    samples = _sample(key, jnp.exp(log_probs), num_samples)
    # r_KL with log pi held fixed: E_pi[grad log pi] = 0 takes care of its own derivative
    r_kl = jax.lax.stop_gradient(
        problem.reward_rm - problem.kl_coef * (log_probs - problem.ref_log_probs)
    )
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


@partial(jax.jit, static_argnames=("num_samples", "method"))
def _estimates(problem, params, keys, num_samples, method):
    return jax.vmap(lambda k: _estimate(problem, params, k, num_samples, method))(keys)


def _check_estimator(method: str, num_samples) -> int:
    method = check_choice("method", method, ESTIMATORS)
    # RLOO and GRPO compare each sample with the others of its group: they need two
    low = 1 if method == "reinforce" else 2
    try:
        return check_int("num_samples", num_samples, low)
    except ValueError:
        raise ValueError(
            f"`num_samples` must be an integer >= {low} for {method}; got {num_samples!r}."
        ) from None


def estimate_gradient(
    problem: Problem,
    logits,
    *,
    key: jax.Array,
    num_samples: int = 8,
    method: str = "rloo",
    num_estimates: int | None = None,
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

    Returns:
        Estimates shaped like ``logits`` (with a leading axis if ``num_estimates``).
    """
    problem, key = check_problem(problem), check_key(key)
    num_samples = _check_estimator(method, num_samples)
    params = problem.check_params("logits", logits)
    count = 1 if num_estimates is None else check_int("num_estimates", num_estimates)
    # per estimate: its samples, a cotangent table [X, Y] and the gradient, twice while building
    table = problem.num_prompts * (num_samples + problem.num_outputs)
    check_allocation(
        f"`num_estimates` x `num_samples` = {count} x {num_samples} estimates",
        8.0 * 2 * count * (table + problem.params0.size),
    )
    out = _estimates(problem, params, jax.random.split(key, count), num_samples, method)
    out = problem.user_params(out)
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


def _sampled_update(problem, params, key, num_samples, method, learning_rate):
    """One stochastic ascent step; returns (new params, next key)."""
    key, sub = jax.random.split(key)
    return params + learning_rate * _estimate(problem, params, sub, num_samples, method), key


@partial(jax.jit, static_argnames=("num_samples", "method"))
def _sampled_steps(
    problem, key, num_samples, method, learning_rate, reward, prompt, gamma, max_steps
):
    def update(params, key):
        return _sampled_update(problem, params, key, num_samples, method, learning_rate)

    return _count_steps(problem, reward, prompt, gamma, max_steps, update, key)


@partial(jax.jit, static_argnames=("num_samples", "method", "num_saves", "save_every"))
def _sampled_run(problem, key, num_samples, method, learning_rate, num_saves, save_every):
    def update(params, key):
        return _sampled_update(problem, params, key, num_samples, method, learning_rate)

    return _saved_run(problem.params0, key, update, num_saves, save_every)


def sampled_optimize(
    problem: Problem,
    learning_rate: float,
    num_steps: int,
    *,
    key: jax.Array,
    method: str = "rloo",
    num_samples: int = 8,
    save_every: int = 1,
) -> OptimizationResult:
    """Stochastic policy gradient: theta_{k+1} = theta_k + eta g_k, g_k a sampled estimate.

    g_k is :func:`estimate_gradient`'s ``method`` ("reinforce", "rloo" or "grpo") from
    ``num_samples`` outputs per prompt, the online RLHF update of Section 4 of arXiv 2503.15477
    (the paper trains with RLOO). Expected rewards along the run are exact.

    Returns:
        An :class:`OptimizationResult` saved every ``save_every`` steps.
    """
    problem, key = check_problem(problem), check_key(key)
    num_samples = _check_estimator(method, num_samples)
    num_steps, save_every = _check_saves(problem, num_steps, save_every)
    lr = check_float_scalar("learning_rate", learning_rate, positive=True)
    params = _sampled_run(
        problem, key, num_samples, method, lr, num_steps // save_every, save_every
    )
    return _result(problem, params, np.arange(0, num_steps + 1, save_every))


def sampled_steps_to_gain(
    problem: Problem,
    gamma: float,
    learning_rate: float,
    *,
    key: jax.Array,
    method: str = "rloo",
    num_samples: int = 8,
    reward=None,
    prompt: int = 0,
    max_steps: int = 10**5,
) -> float:
    """Steps of stochastic gradient ascent (step ``learning_rate`` on sampled estimates) until
    E_pi r(x, .) has risen by gamma; inf if not within ``max_steps``."""
    problem, key = check_problem(problem), check_key(key)
    num_samples = _check_estimator(method, num_samples)
    gamma, table, prompt, _ = _gain_arguments(problem, gamma, reward, prompt, 1.0)
    lr = check_float_scalar("learning_rate", learning_rate, positive=True)
    max_steps = check_int("max_steps", max_steps)
    if _out_of_reach(problem, table, prompt, gamma):
        return float("inf")
    k, reached = _sampled_steps(
        problem, key, num_samples, method, lr, table, prompt, gamma, max_steps
    )
    return float(k) if bool(reached) else float("inf")


def compare_methods(
    problem: Problem,
    gamma: float,
    learning_rate: float,
    *,
    key: jax.Array,
    num_samples: int = 8,
    reward=None,
    prompt: int = 0,
    max_steps: int = 10**5,
    num_estimates: int = 1000,
) -> dict:
    """Exact flow vs discrete and sampled methods on one problem, in one call.

    Returns a dict with the reward variance of r_RM under pi_0 at ``prompt`` and, per method, the
    time (flow) or steps (everything else, each step of size ``learning_rate``) to gain gamma:
    "flow" (t_gamma / learning_rate, to compare in steps), "sgd", "adam", "natural", and for each
    estimator its steps and its signal-to-noise ratio at theta_0.
    """
    problem, key = check_problem(problem), check_key(key)
    learning_rate = check_float_scalar("learning_rate", learning_rate, positive=True)
    _check_estimator("rloo", num_samples)
    max_steps = check_int("max_steps", max_steps)
    num_estimates = check_int("num_estimates", num_estimates, 2)
    gamma, _, prompt, _ = _gain_arguments(problem, gamma, reward, prompt, 1.0)
    probs0 = jnp.exp(problem.ref_log_probs[prompt])
    var0 = float(
        jnp.sum(
            probs0
            * (problem.reward_rm[prompt] - _expected_reward(probs0, problem.reward_rm[prompt])) ** 2
        )
    )
    out = {
        "var0": var0,
        "flow": time_to_gain(problem, gamma, reward, prompt) / learning_rate,
        "sgd": steps_to_gain(problem, optax.sgd(learning_rate), gamma, reward, prompt, max_steps),
        "adam": steps_to_gain(problem, optax.adam(learning_rate), gamma, reward, prompt, max_steps),
    }
    if isinstance(problem.policy, Tabular):
        out["natural"] = steps_to_gain(
            problem, optax.sgd(learning_rate), gamma, reward, prompt, max_steps, direction="natural"
        )
    theta0 = problem.user_params(problem.params0)
    for i, method in enumerate(ESTIMATORS):
        sub = jax.random.fold_in(key, i)
        out[method] = sampled_steps_to_gain(
            problem,
            gamma,
            learning_rate,
            key=sub,
            method=method,
            num_samples=num_samples,
            reward=reward,
            prompt=prompt,
            max_steps=max_steps,
        )
        out[method + "_snr"] = gradient_snr(
            problem,
            theta0,
            key=sub,
            num_samples=num_samples,
            method=method,
            num_estimates=num_estimates,
        )["snr"]
    return out
