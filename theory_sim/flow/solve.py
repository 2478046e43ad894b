"""Adaptive solves: diffrax's Tsit5 with a PID controller, then Kvaerno5 for a stiff tail.

Every solve runs from (t0, w0) to t1 in the coordinates of :mod:`.coordinates`; trajectories are
solved in segments, each stopped by the certificate of :mod:`.limit`. After ``EXPLICIT_BUDGET``
explicit steps a stiff tail (lambda > 0, pi* spanning many decades) is continued by the L-stable
implicit Kvaerno5 (dense Jacobian) for problems of up to ``IMPLICIT_MAX_PARAMS`` parameters per
prompt. Prompts of an expressive policy are solved as a batch of one-prompt problems.
"""

from __future__ import annotations

import contextlib
import threading
from functools import partial

import diffrax
import equinox
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from theory_sim._device import to_device
from theory_sim._validation import (
    check_float_scalar,
    check_int,
)
from theory_sim.cache import traced_once
from theory_sim.flow.coordinates import (
    _coordinates,
    _field,
    _jit_coordinates,
    _limit_state,
    _present,
    free_parameters,
)
from theory_sim.flow.limit import _CERTIFIED_TV, _certified, _kl_to_limit, _tv_bound
from theory_sim.policies import Autoregressive, Tabular

# Solver tolerances. On the two-output closed form (theory.md section 2) rtol 1e-10 gives relative
# errors in t_gamma below 1e-9 for t_gamma from 1e-2 to 1e9 (tests/test_flow.py).
DEFAULT_RTOL = 1e-10


DEFAULT_ATOL = 1e-12


DEFAULT_MAX_STEPS = 2**16


# Explicit steps tried before a stiff tail (lambda > 0) is handed to the implicit solver.
EXPLICIT_BUDGET = 2**13


# The implicit solver forms a dense Jacobian: 2048 parameters is 32 MiB and a fast LU.
IMPLICIT_MAX_PARAMS = 2048


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
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, norm=_norm(args)),
            event=event,
            max_steps=max_steps,
            throw=False,
        )
    if sol.ts is None:  # a dense solution only (from t0 = 0)
        return sol
    return equinox.tree_at(lambda s: s.ts, sol, jax.tree.map(lambda a: a + t0, sol.ts))


def _norm(args):
    """The step-size controller's norm: diffrax's RMS norm (optimistix.rms_norm), over the present
    outputs only for a tabular state (absent ones, see ABSENT_LOGIT, have error exactly 0 and
    would only dilute the mean), the same value as rms_norm when every output is present; over
    the free parameters only for an autoregressive state (:func:`.coordinates.free_parameters`;
    rms_norm's value to the bit when all are free, as they are unpadded)."""
    problem, frame = args
    policy = problem.policy
    if isinstance(policy, Autoregressive) and policy.vocab_size > 1:
        # the free parameters only (padded prefixes never move: see .buckets), as optimistix's
        # RMS norm computes it, so an unpadded state's norm is rms_norm's to the bit
        free = free_parameters(policy, frame)

        def free_norm(x):
            if jax.tree.structure(x) != jax.tree.structure(0.0) or x.shape != free.shape:
                return optx.rms_norm(x)
            count = jnp.sum(free).astype(x.dtype)
            return optx.two_norm(jnp.where(free, x, 0.0)) / jnp.sqrt(count)

        return free_norm
    if not isinstance(policy, Tabular):
        return optx.rms_norm
    present = _present(frame.log_limit)

    def norm(x):
        if jax.tree.structure(x) != jax.tree.structure(0.0) or x.shape != present.shape:
            return optx.rms_norm(x)
        squares = jnp.sum(jnp.square(jnp.where(present, x, 0.0)))
        return jnp.sqrt(squares / jnp.sum(present).astype(x.dtype))

    return norm


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


def _check_tolerances(rtol, atol) -> tuple[float, float]:
    rtol = check_float_scalar("rtol", rtol, positive=True)
    atol = check_float_scalar("atol", atol, positive=True)
    return rtol, atol


def _check_max_steps(max_steps, default: int = DEFAULT_MAX_STEPS) -> int:
    return default if max_steps is None else check_int("max_steps", max_steps)
