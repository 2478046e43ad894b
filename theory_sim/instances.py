"""Seeded problem instances and targets shared by the checks, the stories and the tightness search.

Everything here builds an input (a problem, a pair (pi_0, r_G), a policy, a target gain gamma);
nothing here checks a claim. It sits below :mod:`theory_sim.theorems`, :mod:`theory_sim.stories`
and :mod:`theory_sim.experiments`, so all three draw their instances from one place.
"""

from __future__ import annotations

import jax
import numpy as np

from theory_sim import _random
from theory_sim._validation import check_float_scalar, check_int, check_seed
from theory_sim.flow import default_save_ts, gradient_flow
from theory_sim.metrics import _host_expected_reward
from theory_sim.policies import MLP, Transformer
from theory_sim.problem import Problem

__all__ = [
    "counterexample_instance",
    "headroom",
    "limit_policy",
    "neural_policy",
    "random_problem",
    "target_gain",
]


def random_problem(
    num_prompts: int,
    num_outputs: int,
    *,
    key: jax.Array,
    kl_coef: float = 0.0,
    logit_std: float = 1.0,
    rm_scale: float = 1.0,
) -> Problem:
    """A random tabular problem with r_G ~ U[-1, 1] and r_RM ~ rm_scale U[-1, 1].

    Initial logits are N(0, logit_std^2).

    ``rm_scale`` in (0, 1] shrinks the reward model's range and so its reward variance (by
    rm_scale^2): the knob that makes the objective flat. r_RM and r_G are drawn independently.

    Args:
        num_prompts: X >= 1.
        num_outputs: Y >= 2.
        key: a JAX random key (``jax.random.key(seed)``); same key, same instance.
        kl_coef: lambda >= 0.
        logit_std: spread of the initial logits, >= 0.
        rm_scale: scale of the reward model, in (0, 1].

    Examples:
        >>> import jax
        >>> from theory_sim.instances import random_problem
        >>> random_problem(2, 5, key=jax.random.key(0)).reward_rm.shape
        (2, 5)
    """
    num_prompts, num_outputs = (
        check_int("num_prompts", num_prompts),
        check_int("num_outputs", num_outputs, 2),
    )
    logit_std = check_float_scalar("logit_std", logit_std, nonnegative=True)
    rm_scale = check_float_scalar("rm_scale", rm_scale, positive=True)
    if rm_scale > 1:
        raise ValueError(f"`rm_scale` must be in (0, 1] to keep r_RM in [-1, 1]; got {rm_scale}.")
    k_logits, k_rm, k_gt = jax.random.split(key, 3)
    shape = (int(num_prompts), int(num_outputs))
    logits = logit_std * _random.normal(k_logits, shape)
    reward_rm = rm_scale * _random.uniform(k_rm, shape, -1.0, 1.0)
    reward_gt = _random.uniform(k_gt, shape, -1.0, 1.0)
    return Problem(logits, reward_rm, reward_gt, kl_coef=kl_coef)


def counterexample_instance(seed: int = 0, num_outputs: int = 6):
    """The seeded one-prompt instance of the counterexamples: pi_0 ~ Dirichlet(1), r_G ~ U[-1, 1].

    Returns:
        (pi_0 [Y], r_G [Y]).
    """
    num_outputs = check_int("num_outputs", num_outputs, 2)
    k_p, k_r = jax.random.split(jax.random.fold_in(jax.random.key(check_seed("seed", seed)), 10**6))
    probs = _random.dirichlet(k_p, num_outputs)
    r_gt = _random.uniform(k_r, (num_outputs,), -1.0, 1.0)
    return probs, r_gt


def neural_policy(kind: str, width: int, depth: int, scale: float, seed: int):
    """The seeded neural policy of the neural check rows: a Transformer over
    sequences of length 3 on a vocabulary of 2 (``kind="transformer"``), else an MLP on eight
    fixed Gaussian feature vectors of dimension 4."""
    seed = check_seed("seed", seed)
    if kind == "transformer":
        return Transformer(2, 3, width=width, depth=depth, heads=max(width // 4, 1), key=seed,
                           init_scale=scale)  # fmt: skip
    features = _random.normal(jax.random.key(seed), (8, 4))
    return MLP(features, width=width, depth=depth, key=seed, init_scale=scale)


def limit_policy(problem: Problem, prompt: int) -> np.ndarray:
    """Where the flow of an expressive policy at ``prompt`` heads: pi* for lambda > 0, else the
    best r_RM output (a unique argmax for rewards drawn from a continuous distribution)."""
    reward = np.asarray(problem.reward_rm)[prompt]
    lam = float(problem.kl_coef)
    if lam > 0:  # pi* = softmax(log pi_0 + r_RM / lambda) (kl_optimal_policy), on the host
        z = np.asarray(problem.ref_log_probs)[prompt] + reward / lam
        e = np.exp(z - z.max())
        return e / e.sum()
    return np.eye(problem.num_outputs)[int(np.argmax(reward))]


def headroom(problem: Problem, prompt: int, table, t_max: float) -> float:
    """A gain of E_{pi_t} table at ``prompt`` that the flow exceeds before t_max, if positive.

    Expressive policies: the gain in the limit (pi_t converges to the limit policy, so every
    smaller gain is reached). Other policies (no closed-form limit): the largest gain seen on the
    129-point log grid of :func:`~theory_sim.flow.default_save_ts` to t_max (the gain is
    continuous in t, so every smaller gain is reached). A value <= 0: the reward does not rise.
    """
    probs0 = np.exp(np.asarray(problem.ref_log_probs)[prompt])
    row = np.asarray(table)[prompt]
    start = float(_host_expected_reward(probs0, row))
    if problem.policy.expressive:
        return float(_host_expected_reward(limit_policy(problem, prompt), row)) - start
    probs = gradient_flow(problem, t_max, default_save_ts(t_max)).probs
    series = np.asarray(probs).reshape(probs.shape[0], problem.num_prompts, -1)[:, prompt] @ row
    return float(series.max()) - start


def target_gain(problem, prompt: int, table, frac: float, t_max: float = 1e12) -> float:
    """``frac`` of :func:`headroom` (a reachable target), or, if the reward does not rise,
    ``frac`` of the largest gain the reward allows: t_gamma is then inf and the row vacuous."""
    gain = headroom(problem, prompt, table, t_max)
    row = np.asarray(table)[prompt]
    if gain > 1e-9 * float(np.ptp(row)):  # a rise, not round-off on a falling reward
        return frac * gain
    probs0 = np.exp(np.asarray(problem.ref_log_probs)[prompt])
    return frac * (float(row.max()) - float(_host_expected_reward(probs0, row)))
