"""Gradient flow d theta/dt = grad phi(theta) and the time to gain gamma.

Section 2 of arXiv 2503.15477.

Two integrators share one vector field:

* ``method="adaptive"`` (default): diffrax's Tsit5 with a PID step-size controller at rtol 1e-10.
  Flat landscapes (tiny reward variance) make the field tiny, so the controller takes huge steps:
  times up to 1e8 and beyond cost a few hundred gradient evaluations.
* ``method="euler"``: theta_{k+1} = theta_k + dt grad phi(theta_k), exactly gradient ascent with
  step size dt; between steps the path is the straight segment (Euler's own continuous extension).

t_gamma, the first time with E_{pi_t} r(x, .) >= E_{pi_0} r(x, .) + gamma, is found by event
detection on the adaptive solution and root finding (Newton) on its dense interpolant; for Euler
by bisection on the segment where the crossing happens. It is +inf when not reached by t_max.

With lambda > 0 the flow converges to pi* proportional to pi_0 exp(r_RM / lambda), and near it the
explicit solver's step is capped by stability, so a long horizon cannot be integrated step by step.
The adaptive solver therefore also stops once the target is provably out of reach: from
E_pi r_RM - lambda KL(pi || pi_0) = lambda ln Z - lambda KL(pi || pi*) and phi never decreasing,
every later policy pi_s satisfies KL(pi_s || pi*) <= (phi* - phi(t)) / lambda, so by Pinsker
|E_{pi_s} r - E_{pi*} r| <= (max r - min r) sqrt((phi* - phi(t)) / (2 lambda)) for all s >= t.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from theory_sim._validation import as_float_array, check_float_scalar, check_index, check_int
from theory_sim.metrics import _expected_reward, _kl_divergence, _reward_variance
from theory_sim.objective import _grad, _prompt_objective
from theory_sim.problem import Problem

__all__ = [
    "GainTime",
    "Trajectory",
    "default_save_ts",
    "gradient_flow",
    "time_to_gain",
    "time_to_gain_details",
]

# Solver tolerances. On the two-output closed form (theory.md section 2) rtol 1e-10 gives relative
# errors in t_gamma below 1e-9 for t_gamma from 1e-2 to 1e9 (tests/test_flow.py).
DEFAULT_RTOL = 1e-10
DEFAULT_ATOL = 1e-12
DEFAULT_MAX_STEPS = 2**16
# Newton on the event function stops when successive times agree to this relative precision.
_ROOT_RTOL = 1e-14
_BISECTION_STEPS = 80  # halves a step of length dt down to dt * 2**-80: below float64 resolution


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """A solved gradient flow, saved at times ``ts``.

    Shapes drop the prompt axis X for a one-prompt problem.

    Attributes:
        ts: [T] save times.
        params: [T, X, Y] policy parameters (logits for the tabular policy).
        probs: [T, X, Y] pi_t(y|x).
        expected_rm, expected_gt: [T, X] E_{pi_t} r_RM and E_{pi_t} r_G.
        variance_rm, variance_gt: [T, X] Var_{pi_t} r_RM and Var_{pi_t} r_G.
        kl: [T, X] KL(pi_t || pi_0).
        objective: [T] phi(theta_t).
        num_steps: integrator steps taken (accepted and rejected).
        method: "adaptive" or "euler".
    """

    ts: np.ndarray
    params: np.ndarray
    probs: np.ndarray
    expected_rm: np.ndarray
    expected_gt: np.ndarray
    variance_rm: np.ndarray
    variance_gt: np.ndarray
    kl: np.ndarray
    objective: np.ndarray
    num_steps: int
    method: str


@dataclasses.dataclass(frozen=True)
class GainTime:
    """t_gamma with how it was computed.

    Attributes:
        time: t_gamma, or inf if the target was not reached by ``t_max``.
        reached: whether the target was reached.
        num_steps: integrator steps taken (accepted and rejected; Euler: steps of size dt).
        method: "adaptive" or "euler".
    """

    time: float
    reached: bool
    num_steps: int
    method: str


def _field(t, params, problem):
    del t
    return _grad(problem, params)


def _adaptive_solve(problem, t_max, rtol, atol, max_steps, saveat, event=None):
    """The adaptive flow: Tsit5 with a PID controller from theta_0 over [0, t_max]."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_field),
        diffrax.Tsit5(),
        t0=0.0,
        t1=t_max,
        dt0=None,
        y0=problem.params0,
        args=problem,
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        event=event,
        max_steps=max_steps,
        throw=False,
    )


def default_save_ts(t_max: float, num: int = 129) -> np.ndarray:
    """0 followed by ``num - 1`` log-spaced times from t_max * 1e-8 to t_max: the log-time grid."""
    t_max = check_float_scalar("t_max", t_max, positive=True)
    return np.concatenate([[0.0], np.geomspace(t_max * 1e-8, t_max, num - 1)])


# ----------------------------------------------------------------------------- trajectories


@partial(jax.jit, static_argnames=("max_steps",))
def _adaptive_path(problem, save_ts, t_max, rtol, atol, max_steps):
    sol = _adaptive_solve(problem, t_max, rtol, atol, max_steps, diffrax.SaveAt(ts=save_ts))
    return sol.ys, sol.stats["num_steps"], sol.result == diffrax.RESULTS.successful


@jax.jit
def _euler_path(problem, save_ts, dt):
    def advance(carry, s):
        k, theta = carry
        k_target = jnp.floor(s / dt).astype(jnp.int64)

        def step(c):
            return c[0] + 1, c[1] + dt * _grad(problem, c[1])

        k, theta = jax.lax.while_loop(lambda c: c[0] < k_target, step, (k, theta))
        # Euler's continuous extension: the straight segment from theta_k along grad phi(theta_k).
        saved = theta + (s - k.astype(s.dtype) * dt) * _grad(problem, theta)
        return (k, theta), saved

    (num_steps, _), params = jax.lax.scan(advance, (jnp.int64(0), problem.params0), save_ts)
    return params, num_steps


@jax.jit
def _path_metrics(problem, params):
    def one(theta):
        log_probs = problem.log_probs(theta)
        probs = jnp.exp(log_probs)
        per_prompt = _prompt_objective(
            log_probs, problem.ref_log_probs, problem.reward_rm, problem.kl_coef
        )
        return (
            probs,
            _expected_reward(probs, problem.reward_rm),
            _expected_reward(probs, problem.reward_gt),
            _reward_variance(probs, problem.reward_rm),
            _reward_variance(probs, problem.reward_gt),
            _kl_divergence(probs, jnp.exp(problem.ref_log_probs)),
            jnp.mean(per_prompt),
        )

    return jax.vmap(one)(params)


def gradient_flow(
    problem: Problem,
    t_max: float,
    save_ts=None,
    *,
    method: str = "adaptive",
    dt: float | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> Trajectory:
    """Solve the gradient flow d theta/dt = grad phi(theta), theta(0) = theta_0, on [0, t_max].

    Section 2 of arXiv 2503.15477 (the paper's dynamics). phi never decreases along the flow.

    Args:
        problem: the :class:`~theory_sim.Problem`.
        t_max: final time, > 0.
        save_ts: [T] non-decreasing times in [0, t_max]; default :func:`default_save_ts`
            (0 and 128 log-spaced times, so plots on log-time axes are well sampled).
        method: "adaptive" (Tsit5 + PID controller) or "euler" (gradient ascent with step ``dt``).
        dt: Euler step size (required for "euler").
        rtol, atol: adaptive tolerances on theta.
        max_steps: cap on adaptive steps; exceeding it raises RuntimeError.

    Returns:
        A :class:`Trajectory`.

    Example:
        >>> import numpy as np
        >>> from theory_sim import Problem, gradient_flow
        >>> traj = gradient_flow(Problem(np.zeros(2), np.array([1.0, -1.0])), t_max=10.0)
        >>> traj.probs.shape, bool(traj.expected_rm[-1] > 0.9)
        ((129, 2), True)
    """
    t_max = check_float_scalar("t_max", t_max, positive=True)
    if save_ts is None:
        ts = default_save_ts(t_max)
    else:
        ts = as_float_array("save_ts", save_ts, ndim=(1,))
        if np.any(np.diff(ts) < 0):
            raise ValueError("`save_ts` must be non-decreasing.")
        if ts[0] < 0 or ts[-1] > t_max:
            raise ValueError(
                f"`save_ts` must lie in [0, t_max] = [0, {t_max:g}]; got [{ts[0]:g}, {ts[-1]:g}]."
            )
    if method == "adaptive":
        rtol, atol = _check_tolerances(rtol, atol)
        params, num_steps, ok = _adaptive_path(
            problem, jnp.asarray(ts), t_max, rtol, atol, _check_max_steps(max_steps)
        )
        if not bool(ok):
            raise RuntimeError(
                f"the adaptive solve stopped before t_max = {t_max:g} after {int(num_steps)} "
                "steps. "
                "With kl_coef > 0 the flow settles at pi* and its tail is stiff for an explicit "
                "solver: lower `t_max` (the limit is pi* proportional to pi_0 exp(r_RM/kl_coef)), "
                "or raise `max_steps`."
            )
    elif method == "euler":
        step = _check_dt(dt, t_max)
        params, num_steps = _euler_path(problem, jnp.asarray(ts), step)
    else:
        raise ValueError(f"`method` must be 'adaptive' or 'euler'; got {method!r}.")
    probs, e_rm, e_gt, v_rm, v_gt, kl, phi = _path_metrics(problem, params)
    ext = problem.external

    def per_prompt(a):
        return np.asarray(a[:, 0] if problem.single_prompt else a)

    return Trajectory(
        ts=ts,
        params=np.asarray(problem.user_params(params)),
        probs=np.asarray(ext(probs)),
        expected_rm=per_prompt(e_rm),
        expected_gt=per_prompt(e_gt),
        variance_rm=per_prompt(v_rm),
        variance_gt=per_prompt(v_gt),
        kl=per_prompt(kl),
        objective=np.asarray(phi),
        num_steps=int(num_steps),
        method=method,
    )


# ----------------------------------------------------------------------------- time to gain


def _gain_value(problem, params, reward, prompt):
    """E_{pi_theta(.|x)} r(x, .) for the chosen prompt x."""
    probs = jnp.exp(problem.log_probs(params))
    return _expected_reward(probs[prompt], reward[prompt])


def _provably_unreachable(problem, params, reward, prompt, target):
    """True when no later policy on the flow can reach ``target`` (module docstring; lambda > 0).

    Only meaningful for expressive parameterisations, whose flow converges to pi*.
    """
    lam = problem.kl_coef
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    ref = problem.ref_log_probs[prompt]
    r_rm = problem.reward_rm[prompt]
    log_unnorm = ref + r_rm / safe_lam
    log_z = jax.nn.logsumexp(log_unnorm)
    phi_star = safe_lam * log_z
    log_probs = problem.log_probs(params)[prompt]
    phi_now = _prompt_objective(log_probs[None], ref[None], r_rm[None], lam)[0]
    tv = jnp.minimum(1.0, jnp.sqrt(jnp.maximum(phi_star - phi_now, 0.0) / (2.0 * safe_lam)))
    r = reward[prompt]
    ceiling = _expected_reward(jnp.exp(log_unnorm - log_z), r) + (jnp.max(r) - jnp.min(r)) * tv
    return (lam > 0) & (ceiling < target)


@partial(jax.jit, static_argnames=("max_steps",))
def _adaptive_gain(problem, reward, prompt, gamma, t_max, rtol, atol, max_steps):
    target = _gain_value(problem, problem.params0, reward, prompt) + gamma

    def gain_fn(t, y, args, **kwargs):
        del t, args, kwargs
        return _gain_value(problem, y, reward, prompt) - target

    def unreachable_fn(t, y, args, **kwargs):
        del t, args, kwargs
        return _provably_unreachable(problem, y, reward, prompt, target)

    cond_fn = (gain_fn, unreachable_fn) if problem.policy.expressive else (gain_fn,)
    event = diffrax.Event(
        cond_fn,
        root_finder=optx.Newton(rtol=_ROOT_RTOL, atol=_ROOT_RTOL),
        direction=(True,) + (None,) * (len(cond_fn) - 1),
    )
    sol = _adaptive_solve(
        problem, t_max, rtol, atol, max_steps, diffrax.SaveAt(t1=True), event=event
    )
    reached = sol.event_mask[0]
    ok = (sol.result == diffrax.RESULTS.successful) | jnp.any(jnp.stack(sol.event_mask))
    time = jnp.where(reached, sol.ts[-1], jnp.inf)
    return time, reached, sol.stats["num_steps"], ok


@jax.jit
def _euler_gain(problem, reward, prompt, gamma, t_max, dt):
    target = _gain_value(problem, problem.params0, reward, prompt) + gamma
    max_k = jnp.ceil(t_max / dt).astype(jnp.int64)

    def not_done(c):
        k, _, _, value = c
        return (value < target) & (k < max_k)

    def step(c):
        k, theta, _, _ = c
        new = theta + dt * _grad(problem, theta)
        return k + 1, new, theta, _gain_value(problem, new, reward, prompt)

    start = _gain_value(problem, problem.params0, reward, prompt)
    k, _, prev, value = jax.lax.while_loop(
        not_done, step, (jnp.int64(0), problem.params0, problem.params0, start)
    )
    reached = value >= target
    # The crossing lies on the last segment prev + tau * grad(prev), tau in (0, dt]: bisect on tau.
    direction = _grad(problem, prev)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = _gain_value(problem, prev + mid * direction, reward, prompt) >= target
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    _, tau = jax.lax.fori_loop(0, _BISECTION_STEPS, bisect, (jnp.float64(0.0), dt))
    time = (k - 1).astype(tau.dtype) * dt + tau
    return jnp.where(reached & (time <= t_max), time, jnp.inf), reached, k


def time_to_gain_details(
    problem: Problem,
    gamma: float,
    reward=None,
    prompt: int = 0,
    t_max: float = 1e12,
    *,
    method: str = "adaptive",
    dt: float | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> GainTime:
    """Like :func:`time_to_gain`, returning a :class:`GainTime` with the solver's step count."""
    gamma, table, prompt, t_max = _gain_arguments(problem, gamma, reward, prompt, t_max)
    return _solve_gain(problem, table, prompt, gamma, t_max, method, dt, rtol, atol, max_steps)


def _gain_arguments(problem, gamma, reward, prompt, t_max):
    """Validated (gamma, reward table [X, Y], prompt, t_max); the reward defaults to r_G."""
    gamma = check_float_scalar("gamma", gamma, positive=True)
    t_max = check_float_scalar("t_max", t_max, positive=True)
    table = problem.reward_gt if reward is None else problem.check_reward("reward", reward)
    prompt = check_index("prompt", prompt, problem.num_prompts, "prompts")
    return gamma, table, prompt, t_max


def _solve_gain(
    problem, table, prompt, gamma, t_max, method, dt, rtol, atol, max_steps
) -> GainTime:
    """t_gamma for a validated reward ``table`` [X, Y] and validated scalars."""
    if method == "adaptive":
        rtol, atol = _check_tolerances(rtol, atol)
        time, reached, steps, ok = _adaptive_gain(
            problem, table, prompt, gamma, t_max, rtol, atol, _check_max_steps(max_steps)
        )
        if not bool(ok):
            raise RuntimeError(
                f"the adaptive solve stopped after {int(steps)} steps before reaching the target "
                f"or t_max = {t_max:g}: the flow has settled near a stationary point, where an "
                "explicit solver's step is capped by stability. With kl_coef > 0 and a tabular "
                "or autoregressive policy this means the target lies within round-off of the "
                "limit E_{pi*} r; a log-linear policy can settle even with kl_coef = 0. Lower "
                "`t_max` (t_gamma is then inf if not reached), or raise `max_steps`."
            )
    elif method == "euler":
        step = _check_dt(dt, t_max)
        time, reached, steps = _euler_gain(problem, table, prompt, gamma, t_max, step)
    else:
        raise ValueError(f"`method` must be 'adaptive' or 'euler'; got {method!r}.")
    return GainTime(
        time=float(time),
        reached=bool(reached) and math.isfinite(float(time)),
        num_steps=int(steps),
        method=method,
    )


def time_to_gain(
    problem: Problem,
    gamma: float,
    reward=None,
    prompt: int = 0,
    t_max: float = 1e12,
    **solver_options,
) -> float:
    """t_gamma: the first time the expected reward of prompt x has risen by gamma along the flow.

    t_gamma = inf{t >= 0 : E_{pi_t(.|x)} r(x, .) >= E_{pi_0(.|x)} r(x, .) + gamma}

    Section 3 of arXiv 2503.15477; Proposition 3 and Theorems 4-6 bound it. Found by event
    detection on the adaptive gradient flow and Newton root finding on its dense interpolant
    (relative error below 1e-6 against the two-output closed form for t_gamma in [1e-2, 1e8]).

    Args:
        problem: the :class:`~theory_sim.Problem`; the flow optimises its ``reward_rm``.
        gamma: the gain, > 0.
        reward: the evaluated reward: a table shaped like ``reward_rm``; default ``reward_gt``.
        prompt: index of the prompt x.
        t_max: horizon, > 0; inf is returned when the target is not reached by then.
        **solver_options: ``method`` ("adaptive" or "euler"), ``dt``, ``rtol``, ``atol``,
            ``max_steps`` as in :func:`gradient_flow`.

    Returns:
        t_gamma as a float (inf when not reached).

    Example:
        >>> import numpy as np
        >>> from theory_sim import Problem, time_to_gain
        >>> p = Problem(np.zeros(2), np.array([1.0, -1.0]))
        >>> round(time_to_gain(p, gamma=0.5), 6)    # closed form: d1 + sinh(d1) over 2
        1.215973
    """
    return time_to_gain_details(problem, gamma, reward, prompt, t_max, **solver_options).time


def _check_tolerances(rtol, atol) -> tuple[float, float]:
    rtol = check_float_scalar("rtol", rtol, positive=True)
    atol = check_float_scalar("atol", atol, positive=True)
    return rtol, atol


def _check_max_steps(max_steps) -> int:
    return check_int("max_steps", max_steps)


def _check_dt(dt, t_max: float) -> float:
    if dt is None:
        raise ValueError("`dt` is required with method='euler'.")
    step = check_float_scalar("dt", dt, positive=True)
    if step > t_max:
        raise ValueError(f"`dt` must be at most t_max = {t_max:g}; got {step:g}.")
    return step
