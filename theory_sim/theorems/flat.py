"""Flat landscapes (Section 3 of arXiv 2503.15477): Propositions 2 and 3 (with the bounds inside
its proof), Theorem 4 and the exponent of t_gamma in Var0."""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._device import to_device
from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_index,
    check_int,
    check_reward_range,
)
from theory_sim.flow import (
    DEFAULT_ATOL,
    DEFAULT_MAX_STEPS,
    DEFAULT_RTOL,
    default_save_ts,
    gradient_flow,
)
from theory_sim.flow.solve import _dense_solution
from theory_sim.metrics import _host_reward_variance, _reward_variance
from theory_sim.objective import _prompt_objective
from theory_sim.problem import Problem, check_problem
from theory_sim.theorems._common import (
    Check,
    _describe,
    _gain_time,
    _initial_variance,
    _logsumexp,
    _require_tabular,
    _time_lower_bound_check,
    _upper_bound_check,
)


def proposition_3_bound(num_prompts: int, var0: float, gamma: float) -> float:
    """Lower bound on t_gamma for tabular policies (Proposition 3 of arXiv 2503.15477).

    t_gamma >= 2 |S| (1 - exp(-gamma / 2)) / sqrt(Var0),   Var0 = Var_{pi_0(.|x)}[r_RM(x, .)].

    Returns inf when Var0 = 0 (the flow does not move).
    """
    num_prompts = check_int("num_prompts", num_prompts)
    var0 = check_float_scalar("var0", var0, nonnegative=True)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    if var0 == 0:
        return math.inf
    return 2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0)


def check_proposition_3(
    problem: Problem,
    gamma: float,
    reward=None,
    prompt: int = 0,
    t_max: float = 1e12,
    *,
    instance: str = "",
) -> Check:
    """Check t_gamma >= 2|S|(1 - exp(-gamma/2)) / sqrt(Var0) (Proposition 3 of arXiv 2503.15477).

    Holds for tabular policies, every lambda >= 0 and every evaluated reward r with values in
    [-1, 1] (``reward``, default ``reward_gt``); Var0 is the variance of r_RM under pi_0.

    Args:
        problem: a tabular :class:`~theory_sim.Problem` with r_RM in [-1, 1].
        gamma: the gain, > 0.
        reward: the evaluated reward table (default ``reward_gt``), values in [-1, 1].
        prompt: the prompt x.
        t_max: horizon for t_gamma (inf beyond it; the bound then holds trivially).
        instance: a label for reports.

    Returns:
        A :class:`Check` with measured = t_gamma and bound = the right-hand side.
    """
    problem = check_problem(problem)
    claim = "Proposition 3"
    _require_tabular(problem, claim)
    gamma, prompt, t_max, measured = _gain_time(problem, gamma, reward, prompt, t_max, claim)
    var0 = _initial_variance(problem, prompt)
    return _time_lower_bound_check(
        claim,
        instance or _describe(problem, prompt),
        measured,
        proposition_3_bound(problem.num_prompts, var0, gamma),
        {
            "var0": var0,
            "gamma": gamma,
            "kl_coef": float(problem.kl_coef),
            "num_prompts": problem.num_prompts,
            "num_outputs": problem.num_outputs,
            "t_max": t_max,
        },
    )


def check_proposition_3_trajectory(
    problem: Problem, prompt: int = 0, *, num_times: int = 64, instance: str = ""
) -> list[Check]:
    """Check the two bounds inside the proof of Proposition 3 of arXiv 2503.15477 along the flow.

    With u(t) = sqrt(Var0) t / (2|S|) < 1:
        Var_{pi_t}[r_KL(x, .)] <= Var0 / (1 - u)^2,
        ||theta_x(t) - theta_x(0)||_2 <= 2 ln(1 / (1 - u)).

    The flow is sampled at ``num_times`` log-spaced times with u up to 0.99. Each Check reports
    measured = max over the samples of (left side / right side) against bound = 1.

    Returns:
        [variance Check, displacement Check].
    """
    problem = check_problem(problem)
    claim = "Proposition 3 (proof)"
    num_times = check_int("num_times", num_times, 2)
    _require_tabular(problem, claim)
    prompt = check_index("prompt", prompt, problem.num_prompts, "prompts")
    check_reward_range("reward_rm", np.asarray(problem.reward_rm), claim)
    var0 = _initial_variance(problem, prompt)
    if var0 <= 0:
        raise ValueError("`problem` has zero reward variance at `prompt`: the flow does not move.")
    horizon = 2.0 * problem.num_prompts / math.sqrt(var0)
    ts = np.geomspace(horizon * 1e-6, 0.99 * horizon, num_times)
    traj = gradient_flow(problem, ts[-1], ts)
    u = math.sqrt(var0) * ts / (2.0 * problem.num_prompts)
    logits = np.asarray(problem.internal_params(to_device(traj.params)))[:, prompt, :]
    log_probs = logits - _logsumexp(logits)
    ref = np.asarray(problem.ref_log_probs[prompt])
    r_kl = np.asarray(problem.reward_rm[prompt]) - float(problem.kl_coef) * (log_probs - ref)
    var_t = _host_reward_variance(np.exp(log_probs), r_kl)
    var_ratio = var_t / (var0 / (1.0 - u) ** 2)
    shift = np.linalg.norm(logits - np.asarray(problem.params0[prompt]), axis=-1)
    shift_ratio = shift / (2.0 * np.log(1.0 / (1.0 - u)))
    label = instance or _describe(problem, prompt)
    details = {"var0": var0, "kl_coef": float(problem.kl_coef), "u_max": float(u[-1])}
    return [
        _upper_bound_check(
            claim + ": variance growth", label, float(var_ratio.max()), 1.0, details
        ),
        _upper_bound_check(
            claim + ": parameter displacement", label, float(shift_ratio.max()), 1.0, details
        ),
    ]


def theorem_4_bound(
    length: int, jacobian: float, kl_coef: float, gamma: float, mean_var0: float
) -> float:
    """Lower bound on t_gamma for autoregressive policies (Theorem 4 of arXiv 2503.15477).

    t_gamma >= min{1 - e^(-gamma/9), 1 - e^(-7/(3 lambda))} / (8 L^2 J^2) * (mean_x Var0(x))^(-1/3)

    with e^(-7/(3 lambda)) read as 0 for lambda = 0. Returns inf when mean_x Var0 = 0.
    """
    length = check_int("length", length)
    jacobian = check_float_scalar("jacobian", jacobian, positive=True)
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    mean_var0 = check_float_scalar("mean_var0", mean_var0, nonnegative=True)
    if mean_var0 == 0:
        return math.inf
    factor = -math.expm1(-gamma / 9.0)
    if kl_coef > 0:
        factor = min(factor, -math.expm1(-7.0 / (3.0 * kl_coef)))
    # divided in steps: J^2 alone may overflow, the bound itself at worst underflows to 0
    return factor / (8.0 * length**2) / jacobian / jacobian * mean_var0 ** (-1.0 / 3.0)


def check_theorem_4(
    problem: Problem,
    gamma: float,
    reward=None,
    prompt: int = 0,
    t_max: float = 1e12,
    *,
    instance: str = "",
) -> Check:
    """Check Theorem 4 of arXiv 2503.15477 (Theorem 1 in its main text) on one instance.

    t_gamma(x) >= min{1 - e^(-gamma/9), 1 - e^(-7/(3 lambda))} / (8 L^2 J^2) (mean_x Var0)^(-1/3)

    for every prompt x and every evaluated reward r in [-1, 1] (``reward``, default r_G); Var0 is
    the variance of r_RM under pi_0. J = J_{t_gamma}, the sup over prompts, prefixes and
    t in [0, t_gamma] of the logit map's Jacobian norm. For the linear logit maps (tabular,
    autoregressive, log-linear) it is constant and read at theta_0; for neural policies it is the
    max over :func:`jacobian_path`'s grid of [0, t_gamma] (``details["jacobian_0"]`` holds J_0).
    """
    problem = check_problem(problem)
    claim = "Theorem 4"
    gamma, prompt, t_max, measured = _gain_time(problem, gamma, reward, prompt, t_max, claim)
    var0 = _host_reward_variance(np.exp(np.asarray(problem.ref_log_probs)), problem.reward_rm)
    mean_var0 = float(var0.mean())
    path = jacobian_path(problem, measured if math.isfinite(measured) else t_max)
    jac = float(path.max())
    length, lam = problem.policy.length, float(problem.kl_coef)
    return _time_lower_bound_check(
        claim,
        instance or _describe(problem, prompt),
        measured,
        theorem_4_bound(length, jac, lam, gamma, mean_var0),
        {
            "mean_var0": mean_var0,
            "gamma": gamma,
            "kl_coef": lam,
            "length": length,
            "jacobian": jac,
            "jacobian_0": float(path[0]),
            "num_outputs": problem.num_outputs,
            "t_max": t_max,
            "policy": type(problem.policy).__name__,
        },
    )


# J_t for neural policies is sampled on :func:`~theory_sim.flow.default_save_ts` (t = 0 and 128
# log-spaced times from 1e-8 t to t, consecutive times 15 % apart; the same grid, hence the same
# compiled solve, as a default trajectory). J_t is a norm of smooth functions of theta(t); on the
# transformer instances measured (V = 2, L = 3, init scales 0.3 to 3, t up to 50) it moved
# monotonically, so its sup sat at t = 0 (J falling) or at the end (J growing up to 10x), both
# grid points, and finer grids gave the same sup exactly; on one MLP flow of notebook 08 this
# grid's sup is 2 % below that of a grid with 33 evenly spaced times added (50.4 against 51.4).
# A grid can only miss the sup from below, and a smaller J gives a larger bound: a row that holds
# with the grid's J holds with the true J_{t_gamma}, a failing row would need a finer grid.


def jacobian_grid(t_end: float) -> np.ndarray:
    """The times at which :func:`jacobian_path` samples J_t on [0, t_end]."""
    t_end = check_float_scalar("t_end", t_end, nonnegative=True)
    return np.zeros(1) if t_end == 0 else default_save_ts(t_end)


def jacobian_path(problem: Problem, t_end: float, prompt: int | None = None) -> np.ndarray:
    """J_t (the largest Jacobian norm over prefixes of ``prompt``, or of every prompt) along the
    flow at :func:`jacobian_grid`'s times on [0, t_end]; a single J_0 for the linear logit maps,
    whose J does not move."""
    policy = problem.policy
    if not getattr(policy, "jacobian_moves", False):
        return np.array([policy.jacobian_norm(problem.params0, prompt)])
    ts = jacobian_grid(t_end)
    if ts[-1] <= 0:
        return np.array([policy.jacobian_norm(problem.params0, prompt)])
    params = problem.internal_params(to_device(gradient_flow(problem, ts[-1], ts).params))
    return np.array([policy.jacobian_norm(p, prompt) for p in np.asarray(params)])


# Held-out prompts: the first crossing of the held-out gain is looked for on this many log-spaced
# times (200 per decade over 10 decades, consecutive times 1.2 % apart) and refined by bisection
# on the solver's dense solution.
HELD_OUT_GRID = 2049
_HELD_OUT_BISECTIONS = 80


@partial(jax.jit, static_argnames=("max_steps",))
def _held_out_crossing(problem, held_out, row, target, ts, max_steps):
    """(t_gamma, reached, ok, max gain on the grid) for E_{pi_theta(t)(.|h)} row >= target, with
    theta(t) the flow of ``problem`` (training prompts S) and pi(.|h) from ``held_out``."""
    base, sol = _dense_solution(problem, ts[-1], DEFAULT_RTOL, DEFAULT_ATOL, max_steps)

    def gain(t):
        theta = jnp.where(t <= 0, problem.params0, base + sol.evaluate(t))
        return jnp.sum(jnp.exp(held_out.log_probs(theta)[0]) * row)

    values = jax.vmap(gain)(ts)
    above = values >= target
    k = jnp.argmax(above)  # the first grid time at or above the target (0 if none)

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = gain(mid) >= target
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    _, hi = jax.lax.fori_loop(0, _HELD_OUT_BISECTIONS, halve, (ts[jnp.maximum(k - 1, 0)], ts[k]))
    ok = sol.result == diffrax.RESULTS.successful
    return hi, jnp.any(above), ok, jnp.max(values)


def check_theorem_4_held_out(
    problem: Problem,
    held_out,
    reward,
    gamma: float,
    t_max: float = 1e4,
    *,
    instance: str = "",
) -> Check:
    """Check Theorem 4 of arXiv 2503.15477 at a prompt h outside the training set S.

    The flow of ``problem`` (its prompts are S) moves parameters shared with h; Theorem 4 holds
    for every prompt, so t_gamma(h), the first time E_{pi_t(.|h)} r(h, .) >= E_{pi_0(.|h)} r(h, .)
    + gamma, is at least

        min{1 - e^(-gamma/9), 1 - e^(-7/(3 lambda))} / (8 L^2 J^2) (mean_{x in S} Var0(x))^(-1/3)

    with Var0 the variance of r_RM under pi_0 over the training prompts only. J is the larger of
    the training and held-out Jacobian norms (the bound is then valid whichever prompts J's sup
    ranges over; constant along the flow for the linear logit maps, the max over
    :func:`jacobian_grid`'s times of [0, t_gamma] for neural ones).

    t_gamma(h) is the first crossing on HELD_OUT_GRID log-spaced times in [1e-10 t_max, t_max],
    refined by bisection on the solver's dense solution (a gain that rose above the target and
    fell back between two grid times 1.2 % apart would be missed).

    Args:
        problem: the training problem (a parameterisation whose parameters are shared across
            prompts, such as :class:`~theory_sim.LogLinear`).
        held_out: the same parameterisation for the held-out prompt, one prompt (for
            LogLinear: ``LogLinear(features_h)`` with features_h [Y, d]); it must accept the
            problem's parameters.
        reward: the evaluated reward r(h, .) [Y], in [-1, 1].
        gamma: the gain, > 0.
        t_max: the horizon (default 1e4).

    Returns:
        A Check (t_gamma(h) >= bound); t_gamma(h) = inf when the target is not reached by t_max.
    """
    problem = check_problem(problem)
    claim = "Theorem 4 (held-out prompt)"
    if not all(callable(getattr(held_out, m, None)) for m in ("log_probs", "jacobian_norm")):
        raise TypeError(
            f"`held_out` must be a parameterisation such as LogLinear(features); got "
            f"{type(held_out).__name__}."
        )
    if getattr(problem.policy, "expressive", False):
        raise ValueError(
            f"{claim} needs parameters shared across prompts; {problem.policy!r} gives every "
            "prompt its own, so the flow never moves a held-out prompt."
        )
    try:
        held_probs = np.exp(np.asarray(held_out.log_probs(problem.params0)))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"`held_out` must accept the problem's parameters (shape "
            f"{tuple(problem.params0.shape)}): {err}"
        ) from err
    if held_probs.shape != (1, problem.num_outputs):
        raise ValueError(
            f"`held_out` must describe one prompt over the problem's {problem.num_outputs} "
            f"outputs; its table has shape {held_probs.shape}."
        )
    row = as_float_array("reward", reward, ndim=(1,))
    if row.shape != (problem.num_outputs,):
        raise ValueError(f"`reward` must have shape ({problem.num_outputs},); got {row.shape}.")
    check_reward_range("reward", row, claim)
    check_reward_range("reward_rm", np.asarray(problem.reward_rm), claim)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    t_max = check_float_scalar("t_max", t_max, positive=True)
    start = float(held_probs[0] @ row)
    ts = np.concatenate([[0.0], np.geomspace(1e-10 * t_max, t_max, HELD_OUT_GRID - 1)])
    time, reached, ok, peak = _held_out_crossing(
        problem, held_out, to_device(row), start + gamma, to_device(ts), DEFAULT_MAX_STEPS
    )
    if not bool(ok):
        raise RuntimeError(
            f"{claim}: the solve to t_max = {t_max:g} did not finish in {DEFAULT_MAX_STEPS} "
            "steps (the flow may settle at a stiff stationary point); lower `t_max`."
        )
    measured = float(time) if bool(reached) else math.inf
    var0 = _host_reward_variance(np.exp(np.asarray(problem.ref_log_probs)), problem.reward_rm)
    mean_var0 = float(var0.mean())
    # J_{t_gamma} over the training prompts and h: constant for linear logit maps, else the max
    # over the same grid of [0, t_gamma] as check_theorem_4 (jacobian_path)
    thetas = [problem.params0]
    if getattr(problem.policy, "jacobian_moves", False):
        t_end = measured if math.isfinite(measured) else t_max
        thetas = problem.internal_params(
            to_device(gradient_flow(problem, t_end, jacobian_grid(t_end)).params)
        )
    jac = max(max(problem.policy.jacobian_norm(p), held_out.jacobian_norm(p)) for p in thetas)
    length, lam = problem.policy.length, float(problem.kl_coef)
    return _time_lower_bound_check(
        claim,
        instance or f"|S|={problem.num_prompts} Y={problem.num_outputs} lambda={lam:g}",
        measured,
        theorem_4_bound(length, jac, lam, gamma, mean_var0),
        {
            "mean_var0_S": mean_var0,
            "gamma": gamma,
            "kl_coef": lam,
            "length": length,
            "jacobian": jac,
            "max_gain_seen": float(peak) - start,
            "t_max": t_max,
        },
    )


def _gradient_terms(problem: Problem, theta: jax.Array, prompt) -> tuple:
    """At one theta: ||grad phi(theta; x)||_2, its l1 norm, Var_pi[r_KL(x, .)] and
    max_y |r_KL(x, y)|: the quantities of Proposition 2 and Lemma 8 (traceable, so the tightness
    search differentiates through exactly what the checks evaluate)."""

    def phi_x(th):
        log_probs = problem.log_probs(th)
        values = _prompt_objective(
            log_probs, problem.ref_log_probs, problem.reward_rm, problem.kl_coef
        )
        return values[prompt]

    grad = jax.grad(phi_x)(theta)
    log_probs = problem.log_probs(theta)[prompt]
    r_kl = problem.reward_rm[prompt] - problem.kl_coef * (log_probs - problem.ref_log_probs[prompt])
    var = _reward_variance(jnp.exp(log_probs), r_kl)
    return (
        jnp.sqrt(jnp.sum(jnp.square(grad))),
        jnp.sum(jnp.abs(grad)),
        var,
        jnp.max(jnp.abs(r_kl)),
    )


@jax.jit
def _prompt_gradients(problem: Problem, params_t: jax.Array, prompt) -> tuple:
    """:func:`_gradient_terms` at each saved theta (a leading time axis)."""
    return jax.vmap(lambda theta: _gradient_terms(problem, theta, prompt))(params_t)


def proposition_2_rhs(max_abs_r_kl, length: int, jacobian, variance):
    """The right side of Proposition 2 of arXiv 2503.15477: 6 M^(1/3) L J Var_pi[r_KL]^(1/3), with
    M = max(1, max_y |r_KL(x, y)|) (the proposition needs |r_KL| <= M and M >= 1). Works on
    numbers and arrays alike (numpy or JAX); host values are checked (finite, >= 0, L >= 1)."""
    if not any(isinstance(v, jax.core.Tracer) for v in (max_abs_r_kl, jacobian, variance)):
        for name, value in (("max_abs_r_kl", max_abs_r_kl), ("jacobian", jacobian),
                            ("variance", variance)):  # fmt: skip
            arr = as_float_array(name, value)
            if np.any(arr < 0):
                raise ValueError(f"`{name}` must be >= 0; its minimum is {arr.min()}.")
        check_int("length", length)
    xp = jnp if isinstance(variance, jax.Array) else np
    big_m = xp.maximum(1.0, max_abs_r_kl)
    return 6.0 * big_m ** (1.0 / 3.0) * length * jacobian * xp.cbrt(variance)


def check_proposition_2(
    problem: Problem,
    prompt: int = 0,
    t_max: float = 1e4,
    *,
    num_times: int = 64,
    instance: str = "",
) -> Check:
    """Check the gradient bound of Proposition 2 of arXiv 2503.15477 along the flow.

    ||grad_theta phi(theta; x)||_2 <= 6 M^(1/3) L J_x Var_{pi_theta}[r_KL(x, .)]^(1/3),

    with M = max(1, max_y |r_KL(x, y)|) at each theta (the proposition needs |r_KL| <= M, M >= 1)
    and J_x the Jacobian norm at that theta (constant for the linear logit maps).
    The flow is sampled at 0 and ``num_times - 1`` log-spaced times up to ``t_max``; the Check
    reports measured = max over samples of (left side / right side) against bound = 1.
    """
    problem = check_problem(problem)
    claim = "Proposition 2"
    num_times = check_int("num_times", num_times, 3)
    t_max = check_float_scalar("t_max", t_max, positive=True)
    prompt = check_index("prompt", prompt, problem.num_prompts, "prompts")
    check_reward_range("reward_rm", np.asarray(problem.reward_rm), claim)
    save = np.concatenate([[0.0], np.geomspace(t_max * 1e-6, t_max, num_times - 1)])
    traj = gradient_flow(problem, t_max, save)
    params = problem.internal_params(to_device(traj.params))
    norms, _, variances, max_abs = (
        np.asarray(a) for a in _prompt_gradients(problem, params, prompt)
    )
    if getattr(problem.policy, "jacobian_moves", False):  # J_x at each saved theta
        jac = np.array([problem.policy.jacobian_norm(p, prompt) for p in np.asarray(params)])
    else:
        jac = np.full(len(save), problem.policy.jacobian_norm(problem.params0, prompt))
    rhs = proposition_2_rhs(max_abs, problem.policy.length, jac, variances)
    # where both sides vanish (a point mass) the bound holds with equality; report ratio 0
    ratio = np.where(rhs > 0, norms / np.where(rhs > 0, rhs, 1.0), np.where(norms > 0, np.inf, 0))
    worst = float(ratio.max())
    row = _upper_bound_check(
        claim,
        instance or _describe(problem, prompt),
        worst,
        1.0,
        {
            "kl_coef": float(problem.kl_coef),
            "length": problem.policy.length,
            "jacobian": float(jac.max()),
            "max_M": float(np.maximum(1.0, max_abs).max()),
            "t_max": t_max,
        },
    )
    if not np.any(rhs > 0):
        row = dataclasses.replace(
            row, vacuous="the right-hand side is 0 at every saved time (the flow does not move)"
        )
    return row


@dataclasses.dataclass(frozen=True)
class ExponentFit:
    """Least-squares slope of log t_gamma against log Var0, with its standard error.

    Attributes:
        slope, stderr: the fitted exponent and its standard error (from the residuals).
        intercept: the fitted log t_gamma at Var0 = 1.
        var0, t_gamma: the points used (finite t_gamma only).
        decades: log10 span of Var0 over the points.
    """

    slope: float
    stderr: float
    intercept: float
    var0: np.ndarray
    t_gamma: np.ndarray
    decades: float


def fit_exponent(var0, t_gamma) -> ExponentFit:
    """Fit log t_gamma = slope * log Var0 + intercept over the finite, positive points.

    Proposition 3 predicts slope <= -1/2 behaviour near its bound for tabular policies and Theorem 4
    a bound with exponent -1/3 for autoregressive ones; the fit reports what the instances show.
    """
    v = as_float_array("var0", var0, ndim=(1,))
    try:
        t = np.asarray(t_gamma, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`t_gamma` must be an array of times; got {t_gamma!r}.") from err
    if t.shape != v.shape or np.isnan(t).any():
        raise ValueError(
            f"`t_gamma` must be times (inf for unreached) shaped like `var0` {v.shape}; got "
            f"shape {t.shape}" + (" with NaN." if t.shape == v.shape else ".")
        )
    if np.any(v <= 0):
        raise ValueError(f"`var0` must be > 0; its minimum is {v.min():.3g}.")
    keep = np.isfinite(t) & (t > 0)
    if keep.sum() < 3:
        raise ValueError(f"`t_gamma` needs at least 3 finite points to fit; got {keep.sum()}.")
    x, y = np.log(v[keep]), np.log(t[keep])
    (slope, intercept), cov = np.polyfit(x, y, 1, cov="unscaled")
    resid = y - (slope * x + intercept)
    dof = max(1, keep.sum() - 2)
    stderr = float(math.sqrt(cov[0, 0] * float(resid @ resid) / dof))
    return ExponentFit(
        float(slope),
        stderr,
        float(intercept),
        v[keep],
        t[keep],
        float(np.log10(v[keep].max() / v[keep].min())),
    )
