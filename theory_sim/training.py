"""Discrete optimisation and sampled policy-gradient estimators beside the exact flow.

The paper's experiments ran RLOO and GRPO with Adam; its theory is about the exact gradient flow.
Here both run on the same enumerated problems:

* :func:`optimize` / :func:`steps_to_gain`: any optax transformation on the exact objective (optax
  minimises, so it is handed -grad phi, the closed form of :mod:`theory_sim.objective`), or
  natural policy gradient;
* :func:`estimate_gradient` (defined in :mod:`theory_sim.estimators`, re-exported here): REINFORCE
  (exact baseline), RLOO and GRPO estimates of grad phi from k sampled outputs per prompt, seeded
  and vmappable over keys; :func:`sampled_optimize` trains with them;
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
    check_float_scalar,
    check_int,
    check_key,
    check_optimizer,
)
from theory_sim.estimators import (
    ESTIMATORS,
    _check_estimator,
    _estimate,
    estimate_gradient,
    gradient_snr,
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


# ------------------------------------------ training with the sampled estimators (.estimators)


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
