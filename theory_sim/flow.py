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

Beyond a step: a solve also stops at every local maximum of the evaluated gain (a down-crossing of
its time derivative <grad g, field>), so a target that the gain reaches only inside one step is not
missed: a maximum below the target restarts the solve; one above it sends the solve back over its
last segment, up to the maximum, where bisection on the last step locates the crossing. Euler
segments are checked the same way (interior maximum by bisection on the slope's sign).

Long horizons. With lambda > 0 an expressive (tabular, autoregressive) flow converges to
pi* proportional to pi_0 exp(r_RM / lambda). Near it an explicit solver's step is capped by
stability, and round-off in the field would cap any solver's step. Therefore:

* The state is w = theta - base with base the normalised parameters of pi* (of pi_0 when
  lambda = 0; 0 for log-linear policies). Since r_KL - E_pi r_KL = -lambda (u - E_pi u) with
  u = log pi - log pi*, and u is computed from w by log1p/expm1 (``relative_log_probs``), the
  field is exactly 0 at the limit and accurate relative to the distance from it. Where
  log pi*(y|x) lies more than ``LIMIT_DEPTH`` = 1e4 below log pi_0(y|x) (r / lambda beyond 1e4),
  base follows pi* only down to that floor and u carries the rest as a fixed offset: measured
  from pi* itself, such a state would hold a huge constant plus the O(log t) it moves, losing
  up to a third of its digits (r / lambda = 1e13 made a solve stop after 73,728 steps). The field
  stays exact (the offset is added, not dropped); only its exact zero at a floored entry's limit
  is given up, which a flow would need log pi to fall by 1e4 to approach (log pi falls like
  -log t on a flat tail). The field is the
  closed-form cotangent (1/X) pi (r_KL - E_pi r_KL) on the log-probability table, pulled back
  through the parameterisation's VJP.
* Every prompt of an expressive policy is solved on its own, as prompts evolve independently.
* Certificate: phi(theta; x) = lambda ln Z_x - lambda KL(pi || pi*) never decreases, so
  K = KL(pi_t || pi*) bounds KL(pi_s || pi*) for every s >= t, and with it the total variation
  TV(pi_s, pi*) by :func:`_tv_bound`: the smaller of Pinsker's sqrt(K / 2) and a per-output bound
  that is far sharper when pi* spans many decades. Once that bound is at most 1e-10 (ten times
  inside the 1e-9 promised for saved states) the solve stops and every later save is the limit
  (``Trajectory.converged_at``). KL is summed as pi* f(u), f(u) = u expm1(u) - (expm1(u) - u), so
  values near 1e-20 are computed without cancellation.
* By the same bound, E_{pi_s} r <= E_{pi*} r + (max r - min r) TV for all later s, which
  proves a target unreachable (``GainTime.ended == "unreachable"``).
* When pi* spans many decades its smallest entries converge last and the certificate may not
  fire. After ``EXPLICIT_BUDGET`` explicit steps such a stiff tail is continued by Kvaerno5
  (L-stable, implicit, dense Jacobian) for problems of up to ``IMPLICIT_MAX_PARAMS`` parameters per
  prompt (``Trajectory.implicit_from``). A solve that still stops early raises RuntimeError saying
  where it stopped and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from functools import partial
from typing import NamedTuple

import diffrax
import equinox
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from theory_sim._device import to_device
from theory_sim._validation import (
    as_float_array,
    check_allocation,
    check_float_scalar,
    check_index,
    check_int,
)
from theory_sim.cache import traced_once
from theory_sim.metrics import _expected_reward, _kl_divergence, _reward_variance
from theory_sim.objective import _ascent, _grad, _probabilities, _prompt_objective
from theory_sim.policies import Tabular
from theory_sim.policies._common import _relative_softmax_parts
from theory_sim.problem import Problem, check_problem

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
# Euler's default cap: about a minute of small-problem steps. A run needing more, ceil(t_max / dt)
# steps, is refused before it starts (pass a larger ``max_steps`` to allow it).
EULER_MAX_STEPS = 10**8
# Newton on the event function stops when successive times agree to this relative precision.
_ROOT_RTOL = 1e-14
_BISECTION_STEPS = 80  # halves a step of length dt down to dt * 2**-80: below float64 resolution
# The convergence certificate: every later state within this total variation of pi*. Ten times
# below the 1e-9 that saved states past convergence are promised to match pi* by.
_CERTIFIED_TV = 1e-10
# Explicit steps tried before a stiff tail (lambda > 0) is handed to the implicit solver.
EXPLICIT_BUDGET = 2**13
# The implicit solver forms a dense Jacobian: 2048 parameters is 32 MiB and a fast LU.
IMPLICIT_MAX_PARAMS = 2048
# The smallest gain time_to_gain answers, in units of the gain's own round-off (see
# _check_resolvable): a gain 1e6 times its round-off gives t_gamma to about 1e-6.
GAIN_RESOLUTION = 1e6
# Local maxima of the gain below the target after which a time-to-gain solve gives up.
_MAX_SEGMENTS = 256
# The base follows log pi* down to log pi_0 - LIMIT_DEPTH: |w| stays near 1e4 at most, a
# round-off of 2e-12 in log-probabilities (50x below rtol); a flow would need log pi to fall
# by 1e4 to come near the floor (it falls like -log t on a flat tail).
LIMIT_DEPTH = 1.0e4


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
        ended: "t_max" (integrated to t_max) or "converged" (certified at ``converged_at`` to
            stay within total variation 1e-10 of pi*; later saves are the limit).
        converged_at: the certificate's time t_c, or inf.
        implicit_from: the time from which the stiff tail was integrated by the implicit solver
            (Kvaerno5), or inf if it never was.
        jacobian: [T] J_t, the largest spectral norm over prompts and prefixes of the logit
            map's Jacobian d f_theta(t) / d theta (Theorem 4 of arXiv 2503.15477), when asked for
            with ``gradient_flow(..., jacobian=True)``; else None.
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
    ended: str = "t_max"
    converged_at: float = math.inf
    implicit_from: float = math.inf
    jacobian: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class GainTime:
    """t_gamma with how it was computed.

    Attributes:
        time: t_gamma, or inf if the target was not reached by ``t_max``.
        reached: whether the target was reached.
        num_steps: integrator steps taken (accepted and rejected; Euler: steps of size dt).
        method: "adaptive" or "euler".
        ended: "reached"; "t_max" (not reached by t_max); "unreachable" (certified never to
            be reached: at once, without solving, when E_pi0 r + gamma is not below max_y r,
            which no softmax policy attains; or during the solve for lambda > 0 and an
            expressive policy); or "converged" (certified to
            stay within total variation 1e-10 of pi*, and the target lies within
            (max r - min r) 1e-10 of the limit E_{pi*} r: below the certificate's resolution,
            reported as not reached).
        implicit_from: when the stiff tail was continued by the implicit solver, from which
            time; else inf.
    """

    time: float
    reached: bool
    num_steps: int
    method: str
    ended: str = "reached"
    implicit_from: float = math.inf


# ----------------------------------------------------------------------------- the field


class _Frame(NamedTuple):
    """Where the flow's state w = theta - base is measured from (module docstring).

    base: parameters of pi_base; log_limit: log pi* [X, Y] (log pi_0's reference when
    lambda = 0); offset: log pi_base - log pi* [X, Y], 0 except where the limit is floored;
    shift: parameters of pi* minus base, 0 except where it is floored (for filling the limit).
    """

    base: jax.Array
    log_limit: jax.Array
    offset: jax.Array
    shift: jax.Array


def _coordinates(problem):
    """(frame, w0): the flow integrates w = theta - frame.base (module docstring).

    For an expressive policy, base holds normalised parameters of pi* (lambda > 0) or of pi_0
    (lambda = 0); for other policies base = 0. Where log pi*(y|x) < log pi_0(y|x) - LIMIT_DEPTH
    the base follows pi* only down to that floor, so |w| stays within LIMIT_DEPTH plus the
    distance the flow travels and the state keeps its precision; ``offset`` carries the rest.
    """
    policy = problem.policy
    zeros = jnp.zeros_like(problem.ref_log_probs)
    if not policy.expressive:
        base = jnp.zeros_like(problem.params0)
        return _Frame(base, problem.ref_log_probs, zeros, base), problem.params0
    lam = problem.kl_coef
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    log_star = jax.nn.log_softmax(problem.ref_log_probs + problem.reward_rm / safe_lam, axis=-1)
    floor = problem.ref_log_probs - LIMIT_DEPTH  # log pi_0
    floored = jnp.any(log_star < floor, axis=-1, keepdims=True) & (lam > 0)
    log_base = jnp.where(
        floored, jax.nn.log_softmax(jnp.maximum(log_star, floor), axis=-1), log_star
    )
    log_limit = jnp.where(lam > 0, log_star, problem.ref_log_probs)
    log_base = jnp.where(lam > 0, log_base, log_limit)
    base = policy.log_params(log_base)
    offset = jnp.where(floored, log_base - log_star, 0.0)
    shift = jnp.where(jnp.any(floored), policy.log_params(log_limit) - base, 0.0)
    return _Frame(base, log_limit, offset, shift), problem.params0 - base


def _limit_state(frame, w):
    """w at the limit of an expressive flow with lambda > 0: theta* + c per softmax block, where
    c is the block's mean of w, conserved because every block of the gradient sums to zero
    (for a floored frame, probabilities are pi*'s and c is the mean of w)."""
    return jnp.broadcast_to(jnp.mean(w, axis=-1, keepdims=True), w.shape) + frame.shift


def _relative_to_limit(problem, frame, w):
    """u = log pi_{base + w} - log pi* [X, Y], accurate near the limit (expressive policies)."""
    return problem.policy.relative_log_probs(w, frame.base) + frame.offset


def _field(t, w, args):
    """grad phi at theta = base + w: the closed-form cotangent (1/X) pi * (r_KL - E_pi r_KL) on the
    log-probability table, pulled back through the parameterisation's VJP.

    With lambda > 0 and an expressive policy, r_KL - E_pi r_KL = -lambda (u - E_pi u) with
    u = log pi - log pi* computed relative to the limit, so the field is exactly 0 at pi* and
    accurate relative to the distance from it (module docstring). Tabular policies take
    :func:`_tabular_field`, the same field in fewer operations.
    """
    del t
    problem, frame = args
    if isinstance(problem.policy, Tabular):
        return _tabular_field(problem, frame, w)
    return _pulled_back_field(problem, frame, w)


def _pulled_back_field(problem, frame, w):
    """:func:`_field` for any policy: the cotangent on the log-probability table, pulled back."""
    policy = problem.policy
    log_probs, probs, pull_back, mode = _probabilities(policy, frame.base + w)
    advantage = problem.reward_rm - problem.kl_coef * (log_probs - problem.ref_log_probs)
    if policy.expressive:
        relative = -problem.kl_coef * _relative_to_limit(problem, frame, w)
        advantage = jnp.where(problem.kl_coef > 0, relative, advantage)
    at_mode = None if mode is None else mode[0]
    return pull_back(_ascent(probs, advantage, problem.num_prompts, at_mode))


def _tabular_field(problem, frame, w):
    """:func:`_field` for a tabular policy (base normalised, pull-back the identity): pi and
    u = log pi - log pi* both come from :func:`_relative_softmax_parts`, one exp and one expm1
    per element (a plain softmax costs one exp), and with lambda = 0 the advantage is r_RM.
    In a fused loop it takes 0.82-0.88x the time of :func:`_pulled_back_field` on the same table
    (bench/run.py field; tests/test_long_horizons.py checks that the two agree)."""
    relative, shifted, e, total = _relative_softmax_parts(w, frame.base)
    lam = problem.kl_coef
    advantage = jnp.where(lam > 0, -lam * (relative + frame.offset), problem.reward_rm)
    return _ascent(e / total, advantage, problem.num_prompts, shifted == 0)


def _kl_to_limit(problem, frame, w):
    """KL(pi_theta(.|x) || pi*(.|x)) per prompt [X], accurate near the limit.

    sum_y pi*(y) f(u_y) with u = log pi - log pi* and f(u) = u e^u - e^u + 1 >= 0, taken as
    u expm1(u) - (expm1(u) - u) for |u| < 1 (no cancellation at the order u^2 of KL) and as
    pi u - pi + pi* elsewhere (no overflow).
    """
    u = _relative_to_limit(problem, frame, w)
    log_limit = frame.log_limit
    near = jnp.abs(u) < 1.0
    e = jnp.expm1(jnp.where(near, u, 0.0))
    star = jnp.exp(log_limit)
    probs = jnp.exp(log_limit + jnp.where(near, 0.0, u))
    terms = jnp.where(near, star * (u * e - (e - u)), probs * u - probs + star)
    return jnp.sum(terms, axis=-1)


def _tv_bound(kl, log_limit):
    """A bound on TV(pi, pi*) [X] for every pi with KL(pi || pi*) <= kl [X]; log_limit = log pi*.

    min(sqrt(K / 2), (1/2) sum_y delta_y) with delta_y = K + sqrt(K^2 + 2 K m_y) and
    m_y = min(pi*(y), 1 - pi*(y)). Per output y (data processing on the partition {y, not y}) the
    binary divergence kl(pi(y) || pi*(y)) is at most K, and kl(p || q) >= (p - q)^2 / (2 max(p, q))
    (integrate kl'' = 1 / (x (1 - x)) >= 1 / x twice from q), likewise with 1 - p and 1 - q; so
    |pi(y) - pi*(y)| = d satisfies d^2 <= 2 K (m_y + d), that is d <= delta_y. Where pi* puts
    1e-11 on some outputs the per-output bound is 1e-11 at K = 1e-13, where Pinsker's needs
    K = 2e-20: the certificate then fires decades earlier in t.
    """
    k = jnp.maximum(kl, 0.0)
    m = jnp.minimum(jnp.exp(log_limit), -jnp.expm1(log_limit))
    kk = k[..., None]
    per_output = 0.5 * jnp.sum(kk + jnp.sqrt(kk * kk + 2.0 * kk * m), axis=-1)
    return jnp.minimum(jnp.minimum(jnp.sqrt(k / 2.0), per_output), 1.0)


def _certified(problem, frame, w):
    """True when every later state is within _CERTIFIED_TV of pi* in total variation (so in
    each probability): expressive policies, lambda > 0, by :func:`_tv_bound` of KL(pi_t || pi*)
    (module docstring)."""
    kl = _kl_to_limit(problem, frame, w)
    tv = _tv_bound(kl, frame.log_limit)
    return (problem.kl_coef > 0) & jnp.all(tv <= _CERTIFIED_TV)


@contextlib.contextmanager
def _checks_without_callbacks():
    """Trace diffrax and optimistix with their run-time checks answered by NaN, not a callback.

    diffrax checks ``SaveAt(ts=...)``, and optimistix's bisection its bracket, at run time with
    ``equinox.error_if``, which raises through a host callback; JAX never writes a program with
    a host callback to its persistent compilation cache, so every process compiled each solve
    again (about 9 s a shape on two cores). Here the save times are sorted and clipped to
    [t0, t1] before the solve and a bisection is only asked for a crossing its step contains, so
    the checks never fire; their NaN form (equinox's documented ``on_error="nan"``) keeps the
    program cacheable. Only calls traced inside this block are affected (``on_error`` is part of
    equinox's jit key, so nothing cached here leaks into a caller's own programs).
    """
    global _checks_depth
    with _checks_lock:  # threads may trace at once: patched while any of them is inside
        if _checks_depth == 0:
            equinox.error_if = eqxi.error_if = partial(_error_if, on_error="nan")
        _checks_depth += 1
    try:
        yield
    finally:
        with _checks_lock:
            _checks_depth -= 1
            if _checks_depth == 0:
                equinox.error_if = eqxi.error_if = _error_if


_error_if = equinox.error_if
_checks_lock = threading.Lock()
_checks_depth = 0


def _solve(args, t0, w0, t1, rtol, atol, max_steps, saveat, event, implicit):
    """One adaptive solve of dw/dt = field from (t0, w0) to t1; ``saveat``'s times are given
    relative to t0, the solution's ``ts`` are absolute.

    Tsit5 by default; Kvaerno5 (L-stable, implicit, dense Jacobian) with ``implicit``. The solve
    runs in s = t - t0 (the field does not depend on t; event conditions see t): diffrax picks the
    first step itself, and where the field is tiny that step is 1e-6 in absolute terms, which
    from t0 = 4e14 (float64 spacing 0.06) is no step at all; a continued solve then stalled at
    t0 for ever (an autoregressive flow with lambda = 2.7e-5, found by a random search).
    """
    if event is not None:
        event = diffrax.Event(
            jax.tree.map(_shifted(t0), event.cond_fn, is_leaf=callable),
            event.root_finder,
            event.direction,
        )
    with _checks_without_callbacks():
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(_field),
            diffrax.Kvaerno5() if implicit else diffrax.Tsit5(),
            t0=0.0,
            t1=t1 - t0,
            dt0=None,
            y0=w0,
            args=args,
            saveat=saveat,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            event=event,
            max_steps=max_steps,
            throw=False,
        )
    if sol.ts is None:  # a dense solution only (from t0 = 0)
        return sol
    return equinox.tree_at(lambda s: s.ts, sol, jax.tree.map(lambda a: a + t0, sol.ts))


def _shifted(t0):
    """An event condition of absolute time, called in time relative to t0."""

    def wrap(cond):
        return lambda t, y, args, **kwargs: cond(t + t0, y, args, **kwargs)

    return wrap


def _dense_solution(problem, t_max, rtol, atol, max_steps):
    """(base, diffrax Solution) of one explicit solve from theta_0 to t_max with dense output:
    theta(t) = base + sol.evaluate(t), differentiable in t (for use inside jit)."""
    frame, w0 = _coordinates(problem)
    saveat = diffrax.SaveAt(dense=True)
    sol = _solve((problem, frame), 0.0, w0, t_max, rtol, atol, max_steps, saveat, None, False)
    return frame.base, sol


def default_save_ts(t_max: float, num: int = 129) -> np.ndarray:
    """0 followed by ``num - 1`` log-spaced times from t_max * 1e-8 to t_max (just t_max for
    ``num`` = 2): the log-time grid."""
    t_max = check_float_scalar("t_max", t_max, positive=True)
    num = check_int("num", num, 2)
    later = np.geomspace(t_max * 1e-8, t_max, num - 1) if num > 2 else np.array([t_max])
    return np.concatenate([[0.0], later])


# ----------------------------------------------------------------------------- trajectories

# How a solve ended (status codes shared by the trajectory and time-to-gain solves).
_DONE, _CONVERGED, _STOPPED, _REACHED, _UNREACHABLE, _PEAK = range(6)


@partial(jax.jit, static_argnames=("max_steps", "implicit"))
def _path_segment(problem, save_ts, t0, w0, t_max, rtol, atol, max_steps, implicit=False):
    """Solve from (t0, w0) towards t_max and save w at ``save_ts`` (entries <= t0 hold w0).

    Ends at t_max (_DONE), at the convergence certificate (_CONVERGED: later saves are filled
    with the limit), or early (_STOPPED: step budget or failure; later saves are not valid).
    Returns (ws [T, ...], t_end, w_end, num_steps, status).
    """
    frame, _ = _coordinates(problem)
    args = (problem, frame)
    event = None
    if problem.policy.expressive:
        event = diffrax.Event(lambda t, y, args, **kw: _certified(problem, frame, y))
    ts = jnp.clip(save_ts, t0, t_max) - t0
    saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)])
    sol = _solve(args, t0, w0, t_max, rtol, atol, max_steps, saveat, event, implicit)
    ws, w_last = sol.ys
    t_end, w_end = sol.ts[1][-1], w_last[-1]
    converged = jnp.any(jnp.stack(jax.tree.leaves(sol.event_mask))) if event else jnp.bool_(False)
    done = sol.result == diffrax.RESULTS.successful
    status = jnp.where(done, _DONE, jnp.where(converged, _CONVERGED, _STOPPED))
    limit = _limit_state(frame, w_end)
    ws = jnp.where(converged & (save_ts > t_end).reshape((-1,) + (1,) * w0.ndim), limit, ws)
    return ws, t_end, w_end, sol.stats["num_steps"], status


@partial(jax.jit, static_argnames=("max_steps",))
def _adaptive_path(problem, save_ts, t_max, rtol, atol, max_steps):
    """Parameters at ``save_ts`` in one jittable explicit solve (for vmapped sweeps): returns
    (params [T, ...], num_steps, ok); ok is False when a solve stopped early. The same
    computation as :func:`gradient_flow`'s first solve, so both give the same numbers."""
    batch, scale = _as_batch(problem)
    frame, w0 = jax.vmap(_coordinates)(batch)
    base = frame.base
    ws, _, _, steps, status = _path_segments(
        batch, save_ts / scale, jnp.zeros(w0.shape[0]), w0, t_max / scale, rtol, atol, max_steps
    )
    ws, base = _unbatch(problem, ws, base)
    return _params_at(problem, base, ws, save_ts), jnp.max(steps), jnp.all(status != _STOPPED)


def _unbatch(problem, ws, base):
    """Saved states [B, T, ...] and bases [B, ...] of :func:`_as_batch`'s batch as the problem's
    [T, ...] and [...] layouts."""
    if problem.policy.expressive:
        return jnp.moveaxis(ws[:, :, 0], 0, 1), base[:, 0]
    return ws[0], base[0]


_jit_coordinates = jax.jit(_coordinates)


def _theta_field(problem):
    """theta -> grad phi(theta) in closed form, for fixed-step (Euler) paths: one exp per
    element for tabular policies. Unlike the adaptive solver's field it is not written relative
    to pi*; near the limit it sits at a round-off floor, which a fixed step does not amplify."""
    return lambda theta: _grad(problem, theta)


def _params_at(problem, base, ws, save_ts):
    """theta = base + w at the save times, with theta_0 itself (not base + w_0) at t = 0."""
    at_start = (save_ts <= 0).reshape((-1,) + (1,) * (ws.ndim - 1))
    return jnp.where(at_start, problem.params0, base + ws)


def _implicit_eligible(problem) -> bool:
    """Whether a stiff tail may be continued by the implicit solver (a dense Jacobian small
    enough, and):

    * an expressive policy with lambda > 0: the field is written relative to pi* and is exact at
      the limit;
    * any other policy (log-linear): a flow that settles at a stationary point is stiff there
      (the Hessian's eigenvalues cap an explicit step), and an L-stable step size grows
      geometrically as it settles. The settled state is reproduced to 1e-12 against a
      converged fixed-step reference at t = 1e15 (tests/test_long_horizons.py).

    Expressive policies with lambda = 0 head to a vertex at infinity, which is not stiff.
    """
    if problem.params0.size > IMPLICIT_MAX_PARAMS:
        return False
    return float(problem.kl_coef) > 0 or not problem.policy.expressive


def _stopped_message(problem, what, t_end, t_max, steps, w_end) -> str:
    """Why an adaptive solve stopped before ``t_max`` without a certificate."""
    if not np.all(np.isfinite(np.asarray(w_end))):
        return (
            f"the {what} became non-finite at t = {t_end:g} after {steps} steps: the policy "
            "parameters overflowed (are `init_logits` or the rewards extreme?)."
        )
    head = f"the {what} stopped at t = {t_end:g} of t_max = {t_max:g} after {steps} steps"
    if not problem.policy.expressive:
        return (
            f"{head}: a {type(problem.policy).__name__} policy can settle at a stationary point "
            "with no closed form, where an explicit solver's step is capped by stability. The "
            f"implicit continuation handles up to {IMPLICIT_MAX_PARAMS} parameters; this problem "
            f"has {problem.params0.size}. Lower `t_max`, or raise `max_steps`."
        )
    if float(problem.kl_coef) == 0:
        return f"{head} (kl_coef = 0). Raise `max_steps`, or lower `t_max`."
    frame, _ = _jit_coordinates(problem)
    kl_all = _kl_to_limit(problem, frame, to_device(w_end))
    kl = float(jnp.max(kl_all))
    tv = float(jnp.max(_tv_bound(kl_all, frame.log_limit)))
    size = problem.params0.size
    return (
        f"{head}: the flow is still {kl:.3g} in KL from its limit pi* (a total variation of "
        f"at most {tv:.3g}; the certificate needs {_CERTIFIED_TV:g}), and its tail is stiff. "
        "The implicit continuation handles "
        f"up to {IMPLICIT_MAX_PARAMS} parameters; this problem has {size}. Lower `t_max`, or "
        "raise `max_steps`."
    )


@traced_once(static_argnames=("max_steps", "implicit"))
def _path_segments(batch, save_ts, t0, w0, t_max, rtol, atol, max_steps, implicit=False):
    """:func:`_path_segment` vmapped over a batch of problems, each from its own (t0, w0)."""

    def one(problem, start, w):
        return _path_segment(problem, save_ts, start, w, t_max, rtol, atol, max_steps, implicit)

    return jax.vmap(one)(batch, t0, w0)


_batch_coordinates = jax.jit(jax.vmap(_coordinates))


def _as_batch(problem):
    """(batch, scale): for an expressive policy, one one-prompt problem per prompt, whose flows
    run X times faster (so each prompt converges, and is certified, on its own); otherwise a
    batch of one."""
    if not problem.policy.expressive:
        return jax.tree.map(lambda a: a[None], problem), 1.0
    x = problem.num_prompts
    split = jax.tree.map(
        lambda a: jnp.broadcast_to(a, (x,)) if a.ndim == 0 else a[:, None], problem
    )
    return split, _batch_scale(problem)


def _batch_scale(problem) -> float:
    """:func:`_as_batch`'s time scale: X for an expressive policy, else 1."""
    return float(problem.num_prompts) if problem.policy.expressive else 1.0


# Outside a trace, each as one program (op by op they were several, each compiled per shape).
_jit_as_batch = jax.jit(lambda problem: _as_batch(problem)[0])


@jax.jit
def _jit_assemble(problem, base, ws, save_ts):
    """:func:`_unbatch` then :func:`_params_at`."""
    ws, base = _unbatch(problem, ws, base)
    return _params_at(problem, base, ws, save_ts)


def _adaptive_trajectory(problem, ts, t_max, rtol, atol, max_steps):
    """(params [T, ...], num_steps, converged_at, implicit_from) for :func:`gradient_flow`.

    Explicit solves of at most EXPLICIT_BUDGET steps each (one compiled solve whatever
    ``max_steps``), continued from where they stop until ``max_steps`` steps in all; a stiff tail
    that :func:`_implicit_eligible` admits is handed to the implicit solver instead.
    """
    batch, scale = _jit_as_batch(problem), _batch_scale(problem)
    eligible = _implicit_eligible(_prompt_problem(problem, 0) if scale > 1 else problem)
    save_ts, horizon = np.asarray(ts, np.float64) / scale, t_max / scale
    frame, w = _batch_coordinates(batch)
    base = frame.base
    tail = (-1,) + (1,) * (w.ndim - 1)
    # the bookkeeping between solves is numpy: as eager JAX it cost a compiled program per shape
    t_end = np.zeros(w.shape[0])
    stopped = np.ones(w.shape[0], bool)
    ws, status, steps, implicit, implicit_from = None, None, 0, False, math.inf
    while True:
        start = np.where(stopped, t_end, horizon)  # prompts that have ended: an empty solve
        more, t_new, w_new, extra, new_status = _path_segments(
            batch,
            save_ts,
            start,
            w,
            horizon,
            rtol,
            atol,
            max_steps if implicit else min(max_steps, EXPLICIT_BUDGET),
            implicit=implicit,
        )
        more, t_new, w_new, new_status = (np.asarray(a) for a in (more, t_new, w_new, new_status))
        if ws is None:
            ws, t_end, w, status = more, t_new, w_new, new_status
        else:
            later = (save_ts[None, :] > start[:, None]) & stopped[:, None]
            ws = np.where(later.reshape(later.shape + (1,) * (w.ndim - 1)), more, ws)
            t_end = np.where(stopped, t_new, t_end)
            status = np.where(stopped, new_status, status)
            w = np.where(stopped.reshape(tail), w_new, w)
        steps += int(np.max(np.asarray(extra)))
        stopped = status == _STOPPED
        if implicit or not stopped.any() or not np.all(np.isfinite(w)):
            break
        if eligible:
            implicit = True
            implicit_from = float(np.min(np.asarray(t_end)[stopped])) * scale
        elif steps >= max_steps:
            break
    t_end = t_end * scale
    if stopped.any():
        i = int(np.argmax(stopped))
        one = jax.tree.map(lambda a: a[i], batch)
        raise RuntimeError(
            _stopped_message(one, "adaptive solve", float(t_end[i]), t_max, steps, w[i])
        )
    converged_at = float(t_end.max()) if (status == _CONVERGED).all() else math.inf
    ts = np.asarray(ts, np.float64)
    return _jit_assemble(problem, base, ws, ts), steps, converged_at, implicit_from


@jax.jit
def _euler_path(problem, save_ts, dt):
    grad = _theta_field(problem)

    def advance(carry, s):
        k, theta = carry
        k_target = jnp.floor(s / dt).astype(jnp.int64)

        def step(c):
            return c[0] + 1, c[1] + dt * grad(c[1])

        k, theta = jax.lax.while_loop(lambda c: c[0] < k_target, step, (k, theta))
        # Euler's continuous extension: the straight segment from theta_k along grad phi(theta_k).
        saved = theta + (s - k.astype(s.dtype) * dt) * grad(theta)
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


# A trajectory's memory per save time, in float64 copies of the parameters and of the [X, Y]
# probability table: the saved states, their merge across continued solves, theta = base + w and
# the caller's layout (parameters); the probabilities and the metrics' log-probabilities (tables).
# Measured peaks: 5.2 copies of [T, X, Y] per save time for tabular policies (Y = 2e5 with
# T = 129 and 257; X = 4, Y = 5e4), where this counts 6.
_SAVED_PARAM_COPIES = 3
_SAVED_TABLE_COPIES = 3


def _check_saved_size(problem, ts, what: str) -> None:
    """Refuse, before solving, a trajectory whose saved states would not fit in memory."""
    per_save = (
        _SAVED_PARAM_COPIES * problem.params0.size
        + _SAVED_TABLE_COPIES * problem.num_prompts * problem.num_outputs
    )
    check_allocation(
        f"{what} ({len(ts)} times, each saving {problem.num_prompts} prompt(s) x "
        f"{problem.num_outputs} outputs)",
        8.0 * len(ts) * per_save,
    )


def gradient_flow(
    problem: Problem,
    t_max: float,
    save_ts=None,
    *,
    method: str = "adaptive",
    dt: float | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    max_steps: int | None = None,
    jacobian: bool = False,
) -> Trajectory:
    """Solve the gradient flow d theta/dt = grad phi(theta), theta(0) = theta_0, on [0, t_max].

    Section 2 of arXiv 2503.15477 (the paper's dynamics). phi never decreases along the flow.

    Args:
        problem: the :class:`~theory_sim.Problem`.
        t_max: final time, > 0.
        save_ts: [T] non-decreasing times in [0, t_max]; default :func:`default_save_ts`
            (0 and 128 log-spaced times, so plots on log-time axes are well sampled). A
            trajectory keeps about six float64 copies of the probability table per save time;
            one that would exceed half of physical memory is refused with a ValueError before
            the solve starts (for one prompt and Y = 10^7 outputs, 129 save times need 58 GiB:
            ask for fewer times).
        method: "adaptive" (Tsit5 + PID controller) or "euler" (gradient ascent with step ``dt``).
        dt: Euler step size (required for "euler").
        rtol, atol: adaptive tolerances on theta (on w = theta - theta* relative to the limit, see
            the module docstring).
        max_steps: cap on steps (default 2**16 adaptive, EULER_MAX_STEPS = 1e8 Euler). An
            adaptive solve that reaches it without reaching t_max or the convergence certificate
            (and cannot be continued by the implicit solver) raises RuntimeError saying where and
            why it stopped; an Euler run that would need more than ``max_steps`` steps,
            ceil(t_max / dt), is refused with a ValueError before it starts.
        jacobian: also compute J_t at every save time (``Trajectory.jacobian``): constant for
            the linear logit maps, moving for neural policies (one Jacobian per prefix per save
            time: V reverse passes each).

    Returns:
        A :class:`Trajectory`.

    Example:
        >>> import numpy as np
        >>> from theory_sim import Problem, gradient_flow
        >>> traj = gradient_flow(Problem(np.zeros(2), np.array([1.0, -1.0])), t_max=10.0)
        >>> traj.probs.shape, bool(traj.expected_rm[-1] > 0.9)
        ((129, 2), True)
    """
    problem = check_problem(problem)
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
    _check_saved_size(problem, ts, "the default save_ts" if save_ts is None else "`save_ts`")
    converged_at = implicit_from = math.inf
    if method == "adaptive":
        rtol, atol = _check_tolerances(rtol, atol)
        params, num_steps, converged_at, implicit_from = _adaptive_trajectory(
            problem, ts, t_max, rtol, atol, _check_max_steps(max_steps)
        )
    elif method == "euler":
        step = _check_dt(dt, t_max, max_steps)
        params, num_steps = _euler_path(problem, to_device(ts), step)
    else:
        raise ValueError(f"`method` must be 'adaptive' or 'euler'; got {method!r}.")
    if not isinstance(jacobian, bool):
        raise TypeError(f"`jacobian` must be True or False; got {type(jacobian).__name__}.")
    probs, e_rm, e_gt, v_rm, v_gt, kl, phi = _path_metrics(problem, params)
    ext = problem.external
    jac = None
    if jacobian:
        policy = problem.policy
        if getattr(policy, "jacobian_moves", False):
            jac = np.array([policy.jacobian_norm(p) for p in np.asarray(params)])
        else:
            jac = np.full(len(ts), policy.jacobian_norm(problem.params0))

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
        ended="converged" if math.isfinite(converged_at) else "t_max",
        converged_at=converged_at,
        implicit_from=implicit_from,
        jacobian=jac,
    )


# ----------------------------------------------------------------------------- time to gain


def _gain_value(problem, params, reward, prompt):
    """E_{pi_theta(.|x)} r(x, .) for the chosen prompt x."""
    probs = jnp.exp(problem.log_probs(params))
    return _expected_reward(probs[prompt], reward[prompt])


_jit_gain_value = jax.jit(_gain_value)


def _out_of_reach(problem, table, prompt, gamma) -> bool:
    """Whether E_pi0 r + gamma >= max_y r at ``prompt``: never reached by any method, since
    E_pi r < max_y r for every softmax policy (all probabilities are positive). The margin leaves
    cases within round-off of the maximum to the solver."""
    start = float(_jit_gain_value(problem, problem.params0, table, prompt))
    return gamma > float(np.max(np.asarray(table)[prompt])) - start + 1e-12 * (1.0 + abs(start))


def _unreachable(problem, frame, w, reward, prompt, target):
    """True when no later policy on the flow can reach ``target``.

    Always when target > max_y r(x, y). With lambda > 0, for any policy
    phi = mean_x [lambda ln Z_x - lambda KL(pi(.|x) || pi*_x)] and phi never decreases along the
    flow, so every later policy has KL_x(s) <= X (phi* - phi(t)) / lambda for each prompt x; an
    expressive policy also has KL_x(s) <= KL_x(t) directly (see :func:`_certified`), computed
    without cancellation. With TV from :func:`_tv_bound`,
    E_{pi_s} r <= E_{pi*} r + (max r - min r) TV.
    """
    r = reward[prompt]
    lam = problem.kl_coef
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    log_star = jax.nn.log_softmax(problem.ref_log_probs + problem.reward_rm / safe_lam, axis=-1)
    if problem.policy.expressive:
        kl = _kl_to_limit(problem, frame, w)[prompt]
    else:
        log_probs = problem.log_probs(frame.base + w)
        phi = _prompt_objective(log_probs, problem.ref_log_probs, problem.reward_rm, lam)
        phi_star = safe_lam * jax.nn.logsumexp(
            problem.ref_log_probs + problem.reward_rm / safe_lam, -1
        )
        kl = problem.num_prompts * jnp.maximum(jnp.mean(phi_star - phi), 0.0) / safe_lam
    tv = _tv_bound(kl, log_star)[prompt]
    ceiling = _expected_reward(jnp.exp(log_star[prompt]), r) + (jnp.max(r) - jnp.min(r)) * tv
    return (target > jnp.max(r)) | ((lam > 0) & (ceiling < target))


@traced_once(static_argnames=("max_steps", "implicit"))
def _gain_run(
    problem, reward, prompt, gamma, t0, w0, guard, t_max, rtol, atol, max_steps, implicit=False
):
    """The first time E_{pi_t} r(x, .) reaches E_{pi_0} r(x, .) + gamma, from (t0, w0) on.

    A solve stops at the first of: an up-crossing of the target at a step end (located by
    Newton on the dense interpolant), a local maximum of the gain g(t) (a down-crossing of
    dg/dt = <grad_w g, field>, located the same way), the unreachability certificate, the
    convergence certificate, or t_max. A maximum below the target restarts the solve there
    (maxima within a relative 1e-10 of it are skipped: ``guard``); a maximum at or above it means
    the target was crossed inside the last step: status _PEAK, and :func:`_refine_crossing`
    locates the crossing on the segment from (t_start, w_start) to t_end. So a target held only
    inside one step is never missed.

    Returns a dict: time (inf unless reached), status, t_start, w_start, t_end, w_end, guard,
    num_steps.
    """
    frame, _ = _coordinates(problem)
    base, args = frame.base, (problem, frame)
    target = _gain_value(problem, problem.params0, reward, prompt) + gamma
    root_finder = optx.Newton(rtol=_ROOT_RTOL, atol=_ROOT_RTOL)

    def gain(w):
        return _gain_value(problem, base + w, reward, prompt)

    def slope(w):
        return jax.jvp(gain, (w,), (_field(None, w, args),))[1]

    def segment(t_start, w_start, t1, guard):
        conds = [
            lambda t, y, args, **k: gain(y) - target,
            lambda t, y, args, **k: jnp.where(t <= guard, -1.0, slope(y)),
        ]
        conds.append(
            lambda t, y, args, **k: _unreachable(problem, frame, y, reward, prompt, target)
        )
        directions = [True, False, None]
        if problem.policy.expressive:
            conds.append(lambda t, y, args, **k: _certified(problem, frame, y))
            directions.append(None)
        event = diffrax.Event(tuple(conds), root_finder, tuple(directions))
        sol = _solve(
            args,
            t_start,
            w_start,
            t1,
            rtol,
            atol,
            max_steps,
            diffrax.SaveAt(t1=True),
            event,
            implicit,
        )
        masks = list(sol.event_mask) + [jnp.bool_(False)] * (4 - len(conds))
        done = sol.result == diffrax.RESULTS.successful
        status = jnp.select(
            [masks[0], masks[1], masks[2], masks[3], done],
            [_REACHED, _PEAK, _UNREACHABLE, _CONVERGED, _DONE],
            _STOPPED,
        )
        return sol.ts[-1], sol.ys[-1], sol.stats["num_steps"], status

    def again(c):
        return (c["status"] == _PEAK) & (c["gain"] < target) & (c["segments"] < _MAX_SEGMENTS)

    def body(c):
        t_end, w_end, steps, status = segment(c["t_end"], c["w_end"], t_max, c["guard"])
        return {
            "t_start": c["t_end"],
            "w_start": c["w_end"],
            "t_end": t_end,
            "w_end": w_end,
            "guard": t_end + 1e-10 * jnp.abs(t_end),
            "num_steps": c["num_steps"] + steps,
            "status": status,
            "gain": gain(w_end),
            "segments": c["segments"] + 1,
        }

    start = {
        "t_start": t0,
        "w_start": w0,
        "t_end": t0,
        "w_end": w0,
        "guard": guard,
        "num_steps": jnp.int64(0),
        "status": jnp.int64(_PEAK),
        "gain": -jnp.inf,
        "segments": jnp.int64(0),
    }
    c = jax.lax.while_loop(again, body, start)
    peak_above = (c["status"] == _PEAK) & (c["gain"] >= target)
    too_many = (c["status"] == _PEAK) & ~peak_above
    # _PEAK is returned only for a maximum at or above the target: see _refine_crossing.
    status = jnp.where(too_many, _STOPPED, c["status"])
    return {
        "time": jnp.where(status == _REACHED, c["t_end"], jnp.inf),
        "status": status,
        "t_start": c["t_start"],
        "w_start": c["w_start"],
        "t_end": c["t_end"],
        "w_end": c["w_end"],
        "guard": c["guard"],
        "num_steps": c["num_steps"],
    }


@traced_once(static_argnames=("max_steps", "implicit"))
def _refine_crossing(
    problem, reward, prompt, gamma, t_start, w_start, t_peak, rtol, atol, max_steps, implicit
):
    """The crossing inside the last step before a maximum at t_peak that reached the target.

    The segment from (t_start, w_start) is solved again up to the maximum, so its last step ends
    above the target; bisection, not Newton, locates the crossing there, since the gain's slope
    vanishes at the maximum where a Newton search would start. Returns (time, num_steps).
    """
    frame, _ = _coordinates(problem)
    target = _gain_value(problem, problem.params0, reward, prompt) + gamma
    event = diffrax.Event(
        lambda t, y, args, **k: _gain_value(problem, frame.base + y, reward, prompt) - target,
        optx.Bisection(rtol=_ROOT_RTOL, atol=_ROOT_RTOL),
        True,
    )
    sol = _solve(
        (problem, frame),
        t_start,
        w_start,
        t_peak,
        rtol,
        atol,
        max_steps,
        diffrax.SaveAt(t1=True),
        event,
        implicit,
    )
    return sol.ts[-1], sol.stats["num_steps"]


@partial(jax.jit, static_argnames=("max_steps",))
def _adaptive_gain(problem, reward, prompt, gamma, t_max, rtol, atol, max_steps):
    """t_gamma in one jittable explicit run (for vmapped sweeps): (time, reached, steps, ok).

    The same computation as :func:`time_to_gain_details`'s first solve (one prompt's problem for
    an expressive policy), so both give the same numbers."""
    scale = 1.0
    if problem.policy.expressive and problem.num_prompts > 1:
        scale = float(problem.num_prompts)
        problem, reward = _prompt_problem(problem, prompt), _prompt_rows(reward, prompt)
        prompt = 0
    _, w0 = _coordinates(problem)
    out = _gain_run(
        problem, reward, prompt, gamma, 0.0, w0, -1.0, t_max / scale, rtol, atol, max_steps
    )
    reached = out["status"] == _REACHED
    # a crossing inside a step before a maximum is refined outside (run_cells re-solves the cell)
    ok = (out["status"] != _STOPPED) & (out["status"] != _PEAK)
    return out["time"] * scale, reached, out["num_steps"], ok


def _prompt_rows(table, prompt):
    """Row ``prompt`` of a table with a leading prompt axis, keeping the axis (prompt may be
    traced)."""
    return jax.lax.dynamic_slice_in_dim(table, prompt, 1, axis=0)


@jax.jit
def _jit_prompt_slices(problem, table, prompt):
    """(:func:`_prompt_problem`, :func:`_prompt_rows` of ``table``) as one program."""
    return _prompt_problem(problem, prompt), _prompt_rows(table, prompt)


def _prompt_problem(problem, prompt):
    """The one-prompt problem of prompt x (expressive policies: prompts evolve independently).

    Its flow runs X times faster than prompt x's in the full problem: theta_x(t) = theta(t / X).
    """
    return jax.tree.map(lambda a: a if a.ndim == 0 else _prompt_rows(a, prompt), problem)


_ENDED = {
    _REACHED: "reached",
    _DONE: "t_max",
    _UNREACHABLE: "unreachable",
    _CONVERGED: "converged",
}


def _check_resolvable(gamma: float, table, prompt: int, state) -> None:
    """Refuse a gain of the reward ``table``'s row ``prompt`` below what float64 resolves along
    the flow (both read on the host: indexing the device array was an eager program, 49 us a
    call against 8 us).

    The gain E_t r - E_0 r is a difference of two expected rewards of size up to
    m = max_y |r(x, y)|, each rounded to about eps m, and the state it is computed from moves
    from a state of size up to s = max |state| (theta_0, or w_0 = theta_0 - base in the
    adaptive solver's frame), so a change of theta below eps s is lost. The gain is therefore
    resolved to about delta = eps m (1 + s); measured errors in t_gamma times gamma (the gain's
    error at the crossing) were 1e-17 to 1e-14 on tabular and autoregressive instances with
    lambda in {0, 1e-3, 0.05} and logits of scale 1 to 8, below delta by 10 to 100 times. A
    gamma below GAIN_RESOLUTION delta would give t_gamma to worse than about 1e-6 relative (at
    gamma = 1e-20 on such an instance, E_0 r + gamma rounds to E_0 r and t_gamma came out 0).
    """
    m = float(np.max(np.abs(np.asarray(table)[prompt])))
    s = float(np.max(np.abs(np.asarray(state))))
    delta = np.finfo(np.float64).eps * m * (1.0 + s)
    if gamma < GAIN_RESOLUTION * delta:
        raise ValueError(
            f"`gamma` = {gamma:.3g} is below what float64 resolves here: the gain "
            f"E_t r - E_0 r is known to about eps max|r(x, .)| (1 + max|state|) = {delta:.2g} "
            f"(max|r(x, .)| = {m:.3g}, max|state| = {s:.3g}), and t_gamma needs gamma >= "
            f"{GAIN_RESOLUTION:g} times that, {GAIN_RESOLUTION * delta:.2g}, to be accurate to "
            "about 1e-6. Ask for a larger gain."
        )


def _adaptive_gain_time(problem, table, prompt, gamma, t_max, rtol, atol, max_steps):
    """(time, ended, num_steps, implicit_from) for :func:`time_to_gain_details`; solves are
    continued as in :func:`_adaptive_trajectory`."""
    scale = 1.0
    if problem.policy.expressive and problem.num_prompts > 1:
        scale = float(problem.num_prompts)
        problem, table, prompt = *_jit_prompt_slices(problem, table, prompt), 0
    eligible = _implicit_eligible(problem)
    _, w = _jit_coordinates(problem)
    _check_resolvable(gamma, table, prompt, w)
    horizon = t_max / scale
    t0, guard, steps, implicit, implicit_from = 0.0, -1.0, 0, False, math.inf
    while True:
        out = _gain_run(
            problem,
            table,
            prompt,
            gamma,
            t0,
            w,
            guard,
            horizon,
            rtol,
            atol,
            max_steps if implicit else min(max_steps, EXPLICIT_BUDGET),
            implicit=implicit,
        )
        steps += int(out["num_steps"])
        if int(out["status"]) == _PEAK:
            budget = max_steps if implicit else min(max_steps, EXPLICIT_BUDGET)
            time, extra = _refine_crossing(
                problem,
                table,
                prompt,
                gamma,
                out["t_start"],
                out["w_start"],
                out["t_end"],
                rtol,
                atol,
                budget,
                implicit,
            )
            return float(time) * scale, "reached", steps + int(extra), implicit_from
        t0, w, guard = out["t_end"], out["w_end"], out["guard"]
        if implicit or int(out["status"]) != _STOPPED or not np.all(np.isfinite(np.asarray(w))):
            break
        if eligible:
            implicit, implicit_from = True, float(t0) * scale
        elif steps >= max_steps:
            break
    status = int(out["status"])
    if status == _STOPPED:
        raise RuntimeError(
            _stopped_message(
                problem,
                "time-to-gain solve",
                float(out["t_end"]) * scale,
                t_max,
                steps,
                out["w_end"],
            )
        )
    return float(out["time"]) * scale, _ENDED[status], steps, implicit_from


@jax.jit
def _euler_gain(problem, reward, prompt, gamma, t_max, dt):
    """First crossing along Euler's path: the straight segments theta_k + tau grad phi(theta_k).

    Besides the segment ends, a segment whose gain rises at its start and falls at its end has an
    interior maximum, located by bisection on the sign of the gain's slope; if it reaches the
    target, the crossing lies before it on that segment. So a target held only inside one step
    is never missed.
    """
    target = _gain_value(problem, problem.params0, reward, prompt) + gamma
    max_k = jnp.ceil(t_max / dt).astype(jnp.int64)
    grad = _theta_field(problem)

    def gain_on(theta, direction, tau):
        return _gain_value(problem, theta + tau * direction, reward, prompt)

    def slope_on(theta, direction, tau):
        return jax.jvp(lambda s: gain_on(theta, direction, s), (tau,), (jnp.ones_like(tau),))[1]

    def bisect(inside, lo, hi):
        """Shrink [lo, hi] keeping ``inside(lo)`` False and ``inside(hi)`` True."""

        def halve(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            hit = inside(mid)
            return jnp.where(hit, lo, mid), jnp.where(hit, mid, hi)

        return jax.lax.fori_loop(0, _BISECTION_STEPS, halve, (lo, hi))

    def not_done(c):
        k, _, _, value, peak = c
        return (value < target) & ~jnp.isfinite(peak) & (k < max_k)

    def step(c):
        k, theta, _, _, _ = c
        direction = grad(theta)
        new = theta + dt * direction
        value = gain_on(theta, direction, dt)
        interior = (
            (value < target)
            & (slope_on(theta, direction, 0.0) > 0)
            & (slope_on(theta, direction, dt) < 0)
        )

        def peak(_):
            _, top = bisect(lambda tau: slope_on(theta, direction, tau) <= 0, jnp.float64(0), dt)
            return jnp.where(gain_on(theta, direction, top) >= target, top, jnp.inf)

        peak_tau = jax.lax.cond(interior, peak, lambda _: jnp.float64(jnp.inf), None)
        return k + 1, new, theta, value, peak_tau

    start = _gain_value(problem, problem.params0, reward, prompt)
    k, _, prev, value, peak_tau = jax.lax.while_loop(
        not_done,
        step,
        (jnp.int64(0), problem.params0, problem.params0, start, jnp.float64(jnp.inf)),
    )
    reached = (value >= target) | jnp.isfinite(peak_tau)
    # The crossing lies on the last segment, before its maximum if that is what reached the target.
    direction = grad(prev)
    hi = jnp.where(jnp.isfinite(peak_tau), peak_tau, dt)
    _, tau = bisect(lambda tau: gain_on(prev, direction, tau) >= target, jnp.float64(0.0), hi)
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
    max_steps: int | None = None,
) -> GainTime:
    """Like :func:`time_to_gain`, returning a :class:`GainTime` with the solver's step count."""
    problem = check_problem(problem)
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
    implicit_from = math.inf
    if method not in ("adaptive", "euler"):
        raise ValueError(f"`method` must be 'adaptive' or 'euler'; got {method!r}.")
    if _out_of_reach(problem, table, prompt, gamma):
        return GainTime(math.inf, False, 0, method, "unreachable")
    if method == "adaptive":
        rtol, atol = _check_tolerances(rtol, atol)
        time, ended, steps, implicit_from = _adaptive_gain_time(
            problem, table, prompt, gamma, t_max, rtol, atol, _check_max_steps(max_steps)
        )
    elif method == "euler":
        step = _check_dt(dt, t_max, max_steps)
        _check_resolvable(gamma, table, prompt, problem.params0)
        time, _, steps = _euler_gain(problem, table, prompt, gamma, t_max, step)
        time, steps = float(time), int(steps)
        ended = "reached" if math.isfinite(time) else "t_max"
    else:
        raise ValueError(f"`method` must be 'adaptive' or 'euler'; got {method!r}.")
    return GainTime(
        time=time,
        reached=math.isfinite(time),
        num_steps=steps,
        method=method,
        ended=ended,
        implicit_from=implicit_from,
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
        gamma: the gain, > 0, and at least GAIN_RESOLUTION = 1e6 times the float64 round-off
            of the gain, about eps max|r(x, .)| (1 + the largest |parameter| of the solver's
            state): smaller gains are refused with a ValueError saying the limit (for rewards
            in [-1, 1] and unit logits it is about 1e-9; 2e-7 with lambda = 1e-3, whose frame
            sits at pi*, a thousand logits away).
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


def _check_max_steps(max_steps, default: int = DEFAULT_MAX_STEPS) -> int:
    return default if max_steps is None else check_int("max_steps", max_steps)


def _check_dt(dt, t_max: float, max_steps=None) -> float:
    """The Euler step, after refusing a run of more than ``max_steps`` steps up front."""
    if dt is None:
        raise ValueError("`dt` is required with method='euler'.")
    step = check_float_scalar("dt", dt, positive=True)
    if step > t_max:
        raise ValueError(f"`dt` must be at most t_max = {t_max:g}; got {step:g}.")
    limit = _check_max_steps(max_steps, EULER_MAX_STEPS)
    needed = math.ceil(t_max / step)
    if needed > limit:
        raise ValueError(
            f"Euler with dt = {step:g} to t_max = {t_max:g} needs {needed:.3g} steps, above "
            f"`max_steps` = {limit:.3g}: raise `dt` or `max_steps`, lower `t_max`, or use "
            "method='adaptive'."
        )
    return step
