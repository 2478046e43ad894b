"""Discrete steps with verifiable rewards: the largest fixed learning rate that still converges.

Suk & Duan (arXiv 2510.08539, "On the optimization dynamics of RLVR: gradient gap and step size
thresholds") study theta_{k+1} = theta_k + eta w_k for 0/1 rewards and state that a step-size
threshold separates runs that converge from runs whose success rate collapses, and that the
critical step must shrink with the response length and depend on the success rate (the reason
length normalisation stabilises training). Their central quantity is the Gradient Gap

    Delta = E[grad log pi(o) | r(o) = 1] - E[grad log pi(o) | r(o) = 0],

and since E_pi[grad log pi] = 0, the exact gradient of the success rate p = E_pi r is
grad p = p (1 - p) Delta (:func:`gradient_gap`). The statements are qualitative in their abstract;
here they are measured exactly:

* :func:`shared_token_problem`: a context-free autoregressive policy over V^L whose next-token
  logits are a shared part a_v plus a positional part b_{t,v} (a log-linear policy over the V^L
  sequences with features [token counts, one-hot (position, token)]), rewarded 1 for one target
  sequence. The positional part can reach the target, so p -> 1 along the flow; the shared part
  couples the positions, as the shared weights of a language model do, and a step that is too
  large moves every position towards the target's majority token.
* :func:`critical_learning_rate`: fixed-step runs with the exact update (the expectation of
  REINFORCE and RLOO), Dr. GRPO's or GRPO's expected update (:mod:`theory_sim.groups`), with no
  sampling at all, over a grid of learning rates; a run *fails* when its success rate ends below
  half its start (:data:`FAIL_FRACTION`). The critical rate is the smallest failing rate, refined
  by bisection.
* :func:`improvement_threshold`: the one-step version, the largest eta with
  p(theta + s w) > p(theta) for every s in (0, eta], found on the exact objective along w.
* :func:`collapse_probability`: the same runs with sampled estimators (RLOO, GRPO), the fraction
  of seeded runs that fail, with a Wilson interval.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, stats

from theory_sim import groups
from theory_sim._device import to_device
from theory_sim._validation import (
    as_float_array,
    check_choice,
    check_float_scalar,
    check_int,
    check_key,
)
from theory_sim.estimators import _check_estimator, _check_verifier
from theory_sim.metrics import _expected_reward, _host_expected_reward
from theory_sim.objective import _grad
from theory_sim.policies import Autoregressive, LogLinear
from theory_sim.problem import Problem, check_problem
from theory_sim.training import _sampled_run

__all__ = [
    "FAIL_FRACTION",
    "STEP_METHODS",
    "StepThreshold",
    "collapse_probability",
    "critical_learning_rate",
    "gradient_gap",
    "improvement_threshold",
    "predicted_improvement_threshold",
    "prefix_token_problem",
    "shared_token_problem",
]

STEP_METHODS = ("exact", "drgrpo", "grpo")
# learning rates per batched evaluation: one compiled program serves the grid and every bisection
_GRID = 64
# step sizes per evaluation of the one-step line search
_LINE = 4096
# sequences enumerated at most (V^L outputs of one exact problem)
MAX_SEQUENCES = 2**16
# a run fails when its final success rate is below this fraction of its start: well clear of the
# drift of a sampled run at a small rate, and of the rates that merely slow a run down
FAIL_FRACTION = 0.5
# bisections stop at this relative bracket at the finest: float64 rates cannot be cut much finer
MIN_RTOL = 1e-12
# multiply-adds of the fixed-step runs of one call at most (steps x rates x sequences x features,
# x runs for the sampled ones): about a minute on two cores
MAX_WORK = 10**11


def shared_token_problem(length: int, vocab: int = 2, success: float = 0.2, target=None) -> Problem:
    """One prompt, the V^L sequences of ``length`` L over ``vocab`` V tokens, reward 1 for
    ``target`` (default L - 1 zeros then a 1) and 0 otherwise.

    The policy is context-free and autoregressive: token t is drawn from softmax(a + b_t), a
    shared over positions and b_t positional, so pi(o) = prod_t softmax(a + b_t)[o_t], a
    :class:`~theory_sim.policies.LogLinear` policy over the sequences with features
    [counts of each token (V), one-hot of (t, o_t) (L V)] and weights [a, b_1..b_L]. At the start
    a = 0 and b_t gives the target's token probability q = ``success``^(1/L) at every position
    (the rest shared equally), so the success rate is ``success``.

    Args:
        length: L >= 1. vocab: V >= 2; V^L at most 65,536.
        success: the initial success rate, in (0, 1).
        target: L tokens in [0, V).
    """
    length, vocab, success, target = _check_family(length, vocab, success, target)
    seqs = np.array(list(itertools.product(range(vocab), repeat=length)))
    counts = (seqs[:, :, None] == np.arange(vocab)).sum(axis=1)
    onehot = (seqs[:, :, None] == np.arange(vocab)).reshape(len(seqs), length * vocab)
    features = np.concatenate([counts, onehot], axis=1).astype(float)
    q = success ** (1.0 / length)
    bias = math.log(q / (1.0 - q) * (vocab - 1))  # softmax gives the target token q
    weights = np.zeros(vocab + length * vocab)
    weights[vocab + np.arange(length) * vocab + target] = bias
    correct = np.all(seqs == target, axis=1).astype(float)
    return Problem(weights, correct, policy=LogLinear(features))


def _check_family(length, vocab, success, target):
    """(L, V, success, target) of a token family, checked: V^L within MAX_SEQUENCES, success in
    (0, 1), L target tokens in [0, V) (default L - 1 zeros then a 1)."""
    length, vocab = check_int("length", length), check_int("vocab", vocab, 2)
    if vocab**length > MAX_SEQUENCES:
        raise ValueError(
            f"`length` and `vocab` give V^L = {vocab**length:,} sequences; the limit is "
            f"{MAX_SEQUENCES:,}."
        )
    target = np.array([0] * (length - 1) + [1]) if target is None else np.asarray(target)
    if target.shape != (length,) or not np.all(np.isin(target, np.arange(vocab))):
        raise ValueError(
            f"`target` must hold {length} tokens in [0, {vocab}); got {target.tolist()!r}."
        )
    return length, vocab, _check_success(success), target.astype(int)


def prefix_token_problem(length: int, vocab: int = 2, success: float = 0.2, target=None) -> Problem:
    """The same sequences, target and initial per-position target probability q as
    :func:`shared_token_problem`, under the tabular autoregressive policy (one free softmax per
    prefix, :class:`~theory_sim.policies.Autoregressive`): nothing is shared between positions.

    Here the exact update has no step-size threshold: at every prefix it tilts the next-token
    distribution by exp(eta P(prefix) pi(v) (Q(v) - V)), towards the tokens whose success
    probability Q exceeds the prefix's V, so sum_v pi'(v) (Q(v) - V) >= 0 at every prefix and,
    by the performance-difference lemma, p never falls, whatever eta.
    """
    length, vocab, success, target = _check_family(length, vocab, success, target)
    policy = Autoregressive(vocab, length)
    q = success ** (1.0 / length)
    params = np.zeros((policy.num_prefixes, vocab))
    for level in range(length):  # every prefix of a level: its target token has probability q
        start = (vocab**level - 1) // (vocab - 1)
        params[start : start + vocab**level, target[level]] = math.log(q / (1 - q) * (vocab - 1))
    correct = np.zeros(vocab**length)
    correct[int(np.sum(target * vocab ** np.arange(length - 1, -1, -1)))] = 1.0
    return Problem(params, correct, policy=policy)


def _check_success(success) -> float:
    success = check_float_scalar("success", success, positive=True)
    if success >= 1:
        raise ValueError(f"`success` must be in (0, 1); got {success}.")
    return success


def _start(problem) -> float:
    """The initial success rate, mean over prompts of E_pi0 r_G, on the host from log pi_0 (an
    eager JAX call would compile programs for each new shape)."""
    probs = np.exp(np.asarray(problem.ref_log_probs))
    return float(np.mean(_host_expected_reward(probs, np.asarray(problem.reward_gt))))


def _success(problem, params):
    """The mean over prompts of E_pi r_G (traced)."""
    probs = jnp.exp(problem.log_probs(params))
    return jnp.mean(_expected_reward(probs, problem.reward_gt))


def _direction(problem, params, method, group_size, eps, verdicts):
    """The expected update: the exact gradient ("exact", the expectation of REINFORCE and RLOO),
    (G - 1)/G of it (Dr. GRPO), or GRPO's, enumerated over the G - 1 other 0/1 rewards."""
    if method == "grpo":
        return groups._jit_noisy_grpo(problem, params, group_size, eps, 0.0, 0.0, verdicts)
    scale = (group_size - 1.0) / group_size if method == "drgrpo" else 1.0
    return scale * _grad(problem, params)


@functools.partial(jax.jit, static_argnames=("num_steps", "method", "group_size"))
def _finals(problem, rates, num_steps, method, group_size, eps, verdicts):
    """Success rate after ``num_steps`` fixed steps of each learning rate in ``rates``."""

    def run(rate):
        def step(_, theta):
            return theta + rate * _direction(problem, theta, method, group_size, eps, verdicts)

        theta = jax.lax.fori_loop(0, num_steps, step, problem.params0)
        return _success(problem, theta)

    return jax.vmap(run)(rates)


def _check_binary(problem):
    """0/1 labels in ``problem.reward_rm`` and lambda = 0, or a ValueError naming ``problem``."""
    try:
        _check_verifier(problem, (0.0, 0.0))
    except ValueError as err:
        raise ValueError(f"`problem`: {err}") from None
    if float(problem.kl_coef) != 0.0:
        raise ValueError("`problem` must have lambda = 0 (a 0/1 reward, no KL term).")


def _check_rtol(rtol) -> float:
    rtol = check_float_scalar("rtol", rtol, positive=True)
    if rtol < MIN_RTOL:
        raise ValueError(f"`rtol` must be at least {MIN_RTOL:g}; got {rtol:g}.")
    return rtol


def _check_work(problem, runs: int, num_steps: int) -> None:
    """Refuse a call whose fixed-step runs would take more than MAX_WORK multiply-adds."""
    work = runs * num_steps * problem.num_prompts * problem.num_outputs * problem.params0.size
    if work > MAX_WORK:
        raise ValueError(
            f"`num_steps` = {num_steps:,} makes {runs:,} runs over {problem.num_outputs:,} "
            f"outputs take about {work:.2g} multiply-adds; the limit is {MAX_WORK:.0e}."
        )


def _check_method(problem, method, group_size, eps):
    method = check_choice("method", method, STEP_METHODS)
    group_size = check_int("group_size", group_size, 2)
    eps = check_float_scalar("eps", eps, nonnegative=True)
    _check_binary(problem)
    verdicts = to_device(groups._compositions(group_size - 1, 2).astype(float))
    return method, group_size, eps, verdicts


@jax.jit
def _gap(problem, params):
    log_probs, pullback = jax.vjp(problem.log_probs, params)
    probs, r = jnp.exp(log_probs), problem.reward_rm
    p = jnp.sum(probs * r)
    # E[grad log pi | r] = sum_o pi(o | r) grad log pi(o): a pull-back of pi r / p
    return p, pullback(probs * r / p - probs * (1.0 - r) / (1.0 - p))[0]


def gradient_gap(problem: Problem, params=None) -> tuple[float, np.ndarray]:
    """(p, Delta) for a one-prompt problem with 0/1 r_RM: the success rate and the Gradient Gap
    Delta = E[grad log pi | r = 1] - E[grad log pi | r = 0] of arXiv 2510.08539, in the user's
    parameter layout. grad p = p (1 - p) Delta (module docstring)."""
    problem = check_problem(problem)
    _check_binary(problem)
    if problem.num_prompts != 1:
        raise ValueError(f"`problem` must have one prompt; got {problem.num_prompts}.")
    params = problem.params0 if params is None else problem.check_params("params", params)
    p, gap = _gap(problem, params)
    if not 0.0 < float(p) < 1.0:
        raise ValueError(f"the Gradient Gap needs a success rate in (0, 1); got {float(p)}.")
    return float(p), np.asarray(problem.user_params(gap))


@dataclasses.dataclass(frozen=True)
class StepThreshold:
    """The critical learning rate of fixed-step runs.

    Between the rates that converge and those that fail lies a band where the two alternate (the
    fixed-step map is chaotic there); the band's ends are reported.

    Attributes:
        learning_rate: the first failing rate (the band's lower end), refined by bisection
            between it and the grid rate below it (inf if no rate up to ``high`` fails).
        below: the largest rate found below it whose run does not fail.
        all_fail: the smallest grid rate from which every larger grid rate fails (the band's
            upper end; inf if the largest grid rate does not fail).
        success_below, success_above: final success rates of ``below`` and ``learning_rate``
            (success_above is None when no rate fails); start: the initial success rate.
        rates, finals: the grid and its final success rates.
        method, num_steps: the update and the run's length.
    """

    learning_rate: float
    below: float
    all_fail: float
    success_below: float
    success_above: float | None
    start: float
    rates: np.ndarray
    finals: np.ndarray
    method: str
    num_steps: int


def critical_learning_rate(
    problem: Problem,
    num_steps: int = 1000,
    *,
    method: str = "exact",
    group_size: int = 8,
    eps: float = 0.0,
    low: float = 1e-1,
    high: float = 1e3,
    rtol: float = 1e-4,
) -> StepThreshold:
    """The smallest fixed learning rate eta whose run theta_{k+1} = theta_k + eta w(theta_k)
    ends, after ``num_steps`` steps, with a success rate E_pi r_G below half its start (it
    fails).

    w is the expected update of ``method`` ("exact": the gradient, which REINFORCE and RLOO
    average to; "drgrpo": (G - 1)/G of it; "grpo": GRPO's with groups of G and its eps), with 0/1
    labels in ``reward_rm`` and lambda = 0; no sampling, so the runs are exact. The rates are
    scanned on a 64-point log grid over [low, high]; the bracket of the first failure is then cut
    64 ways until its ends are within ``rtol`` (relative). A failure between two grid rates
    below it that both converge is not searched for.
    """
    problem = check_problem(problem)
    num_steps = check_int("num_steps", num_steps)
    method, group_size, eps, verdicts = _check_method(problem, method, group_size, eps)
    low = check_float_scalar("low", low, positive=True)
    high = check_float_scalar("high", high, positive=True)
    rtol = _check_rtol(rtol)
    if high <= low:
        raise ValueError(f"`high` must exceed `low`; got low={low}, high={high}.")
    _check_work(problem, _GRID, num_steps)
    start = _start(problem)

    def finals(rates):
        out = _finals(problem, to_device(rates), num_steps, method, group_size, eps, verdicts)
        return np.nan_to_num(np.asarray(out), nan=-np.inf)  # a non-finite run fails

    rates = np.geomspace(low, high, _GRID)
    first = finals(rates)
    fails = first < FAIL_FRACTION * start
    if not fails.any():
        return StepThreshold(math.inf, high, math.inf, float(first[-1]), None, start,
                             rates, first, method, num_steps)  # fmt: skip
    i = int(np.argmax(fails))
    if i == 0:
        raise ValueError(
            f"the run fails already at `low` = {low:g}: lower it to bracket the threshold."
        )
    converging = np.flatnonzero(~fails)
    all_fail = rates[converging[-1] + 1] if converging[-1] + 1 < _GRID else math.inf
    below, above = rates[i - 1], rates[i]
    s_below, s_above = float(first[i - 1]), float(first[i])
    while above / below - 1.0 > rtol:
        inner = np.geomspace(below, above, _GRID + 2)[1:-1]
        values = finals(inner)
        bad = np.flatnonzero(values < FAIL_FRACTION * start)
        j = int(bad[0]) if bad.size else _GRID
        if j > 0:
            below, s_below = inner[j - 1], float(values[j - 1])
        if j < _GRID:
            above, s_above = inner[j], float(values[j])
    return StepThreshold(float(above), float(below), float(all_fail), s_below, s_above, start,
                         rates, first, method, num_steps)  # fmt: skip


def predicted_improvement_threshold(length: int, success: float) -> float:
    """:func:`improvement_threshold` of the exact update on :func:`shared_token_problem` (V = 2,
    the default target), in closed form.

    At the start every position has logit gap c = logit(q) towards its target token,
    q = success^(1/L), and p = q^L. The gradient is p (e_target - pi_t) = +-p (1 - q)(1, -1) on b_t
    and their sum, (L - 2) p (1 - q)(1, -1), on a. A step s therefore moves the gap by
    (L - 1) x at the L - 1 positions whose target is 0 and by -(L - 3) x at the last,
    x = 2 s p (1 - q), so p(s) = sigma(c + (L - 1) x)^(L - 1) sigma(c - (L - 3) x). For L <= 3
    neither factor falls (inf); otherwise the threshold is x* / (2 p (1 - q)), x* the positive
    root of log p(s) = L log q (found by Brent's method).
    """
    length, success = check_int("length", length), _check_success(success)
    if length <= 3:
        return math.inf
    q = success ** (1.0 / length)
    c = math.log(q / (1.0 - q))

    def log_gain(x):
        log_sig = functools.partial(np.logaddexp, 0.0)  # log(1 + e^z) = -log sigma(-z)
        return (
            -(length - 1) * log_sig(-(c + (length - 1) * x))
            - log_sig(-(c - (length - 3) * x))
            - length * math.log(q)
        )

    upper = 1.0
    while log_gain(upper) > 0:
        upper *= 2.0
    root = optimize.brentq(log_gain, upper / 2.0 if log_gain(upper / 2.0) > 0 else 1e-12,
                           upper, xtol=1e-15, rtol=1e-14)  # fmt: skip
    return root / (2.0 * success * (1.0 - q))


@functools.partial(jax.jit, static_argnames=("method", "group_size"))
def _line(problem, steps, method, group_size, eps, verdicts):
    """Success rate at theta_0 + s w(theta_0) for each s in ``steps``."""
    w = _direction(problem, problem.params0, method, group_size, eps, verdicts)
    return jax.vmap(lambda s: _success(problem, problem.params0 + s * w))(steps)


def improvement_threshold(
    problem: Problem,
    *,
    method: str = "exact",
    group_size: int = 8,
    eps: float = 0.0,
    high: float = 1e6,
    rtol: float = 1e-9,
) -> float:
    """The largest eta such that one step theta_0 + s w(theta_0) raises the success rate for
    every s in (0, eta]: the first root of p(theta_0 + s w) = p(theta_0) along the expected
    update w of ``method`` (see :func:`critical_learning_rate`), inf if none up to ``high``.
    Found on a 4,096-point log grid from 1e-8 and refined by bisection to ``rtol``, each round
    4,096 points (one compiled program serves both)."""
    problem = check_problem(problem)
    method, group_size, eps, verdicts = _check_method(problem, method, group_size, eps)
    high = check_float_scalar("high", high, positive=True)
    rtol = _check_rtol(rtol)
    start = _start(problem)

    def values(steps):
        out = _line(problem, to_device(steps), method, group_size, eps, verdicts)
        return np.nan_to_num(np.asarray(out), nan=-np.inf)  # a non-finite policy: no gain

    grid = np.geomspace(min(1e-8, high / 2), high, _LINE)
    bad = np.flatnonzero(values(grid) <= start)
    if bad.size == 0:
        return math.inf
    i = int(bad[0])
    if i == 0:
        raise ValueError(
            f"the update (`method`, `group_size`, `eps`) does not raise `problem`'s success rate "
            f"even for a step of {grid[0]:g}."
        )
    below, above = grid[i - 1], grid[i]
    while above / below - 1.0 > rtol:
        inner = np.geomspace(below, above, _LINE + 2)[1:-1]
        v = values(inner)
        j = np.flatnonzero(v <= start)
        j = int(j[0]) if j.size else len(inner)
        below = inner[j - 1] if j > 0 else below
        above = inner[j] if j < len(inner) else above
    return float(above)


@functools.partial(jax.jit, static_argnames=("num_steps", "method", "num_samples"))
def _sampled_finals(problem, keys, rates, num_steps, method, num_samples):
    def one(key, rate):
        theta = _sampled_run(problem, key, num_samples, method, rate, 1, num_steps)[-1]
        return _success(problem, theta)

    return jax.vmap(jax.vmap(one, (0, None)), (None, 0))(keys, rates)


def collapse_probability(
    problem: Problem,
    learning_rates,
    num_steps: int = 300,
    *,
    key: jax.Array,
    method: str = "rloo",
    num_samples: int = 8,
    num_runs: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """For each learning rate, the fraction of ``num_runs`` seeded runs of the sampled
    estimator ``method`` (groups of ``num_samples``; :func:`theory_sim.training.sampled_optimize`)
    whose success rate after ``num_steps`` steps is below half its start, and its 95 % Wilson
    interval.

    Returns:
        (fractions [R], intervals [R, 2]).
    """
    problem, key = check_problem(problem), check_key(key)
    num_samples = _check_estimator(method, num_samples)
    num_steps, num_runs = check_int("num_steps", num_steps), check_int("num_runs", num_runs)
    _check_binary(problem)
    rates = np.atleast_1d(as_float_array("learning_rates", learning_rates, ndim=(0, 1)))
    if rates.size == 0 or np.any(rates <= 0):
        raise ValueError(f"`learning_rates` must be positive numbers; got {rates.tolist()}.")
    _check_work(problem, rates.size * num_runs, num_steps)
    start = _start(problem)
    keys = jax.random.split(key, num_runs)
    out = _sampled_finals(problem, keys, to_device(rates), num_steps, method, num_samples)
    failed = np.sum(np.nan_to_num(np.asarray(out), nan=-np.inf) < FAIL_FRACTION * start, axis=1)
    intervals = [stats.binomtest(int(k), num_runs).proportion_ci(method="wilson") for k in failed]
    return failed / num_runs, np.array([(ci.low, ci.high) for ci in intervals])
