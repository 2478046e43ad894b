"""gradient_flow: the flow d theta/dt = grad phi(theta) saved at given times, with its metrics.

Section 2 of arXiv 2503.15477. The adaptive path (default) or Euler's; every saved state carries
E_{pi_t} r_RM, E_{pi_t} r_G, their variances, KL(pi_t || pi_0) and phi, and optionally J_t.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._device import to_device
from theory_sim._validation import (
    as_float_array,
    check_allocation,
    check_float_scalar,
)
from theory_sim.flow.buckets import (
    batch_bucket,
    bucketed,
    canonical,
    cut_state,
    host_batch,
    host_params,
    output_bucket,
    pad_batch,
    pad_outputs,
    pad_times,
    prompt_slice,
    save_bucket,
)
from theory_sim.flow.coordinates import _batch_coordinates
from theory_sim.flow.euler import _check_dt, _euler_path
from theory_sim.flow.solve import (
    _CONVERGED,
    _STOPPED,
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    EXPLICIT_BUDGET,
    _batch_scale,
    _check_max_steps,
    _check_tolerances,
    _implicit_eligible,
    _path_segments,
    _stopped_message,
    default_save_ts,
)
from theory_sim.metrics import _expected_reward, _kl_divergence, _reward_variance
from theory_sim.objective import _prompt_objective
from theory_sim.problem import Problem, check_problem


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


def _adaptive_trajectory(problem, ts, t_max, rtol, atol, max_steps):
    """(params [T, ...], num_steps, converged_at, implicit_from) for :func:`gradient_flow`.

    Explicit solves of at most EXPLICIT_BUDGET steps each (one compiled solve whatever
    ``max_steps``), continued from where they stop until ``max_steps`` steps in all; a stiff tail
    that :func:`_implicit_eligible` admits is handed to the implicit solver instead.
    """
    scale = _batch_scale(problem)
    one = prompt_slice(problem, problem.reward_rm, 0)[0] if scale > 1 else problem
    eligible = _implicit_eligible(one)
    save_ts, horizon = np.asarray(ts, np.float64) / scale, t_max / scale
    batch = host_batch(canonical(problem))
    size = (problem.num_prompts, len(save_ts), problem.num_outputs)  # X, T, Y
    unpadded = batch, save_ts
    save_ts = pad_times(save_ts, save_bucket(size[1]))  # every policy kind (see .buckets)
    padded = bucketed(problem)
    if padded:  # explicit solves run in the problem's bucket (see .buckets)
        batch = pad_batch(pad_outputs(batch)[0], batch_bucket(size[0], size[2]))
    if problem.policy.expressive:
        frame, w = _batch_coordinates(batch)
        base = frame.base
    else:  # base = 0 and w_0 = theta_0 (_coordinates), on the host
        w = np.asarray(batch.params0)
        base = np.zeros_like(w)
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
            if padded:  # the implicit solver runs unpadded (see .buckets)
                padded, (batch, save_ts) = False, unpadded
                ws, w, t_end, status, base = _cut(problem, size, ws, w, t_end, status, base)
                stopped = status == _STOPPED
        elif steps >= max_steps:
            break
    if padded:
        ws, w, t_end, status, base = _cut(problem, size, ws, w, t_end, status, base)
        stopped = status == _STOPPED
        batch = unpadded[0]
    ws = np.asarray(ws)[:, : size[1]]  # the padded save times of other policies
    t_end = t_end * scale
    if stopped.any():
        i = int(np.argmax(stopped))
        one = jax.tree.map(lambda a: a[i], batch)
        raise RuntimeError(
            _stopped_message(one, "adaptive solve", float(t_end[i]), t_max, steps, w[i])
        )
    converged_at = float(t_end.max()) if (status == _CONVERGED).all() else math.inf
    ts = np.asarray(ts, np.float64)
    params = host_params(problem, base, ws, ts)  # on the host: no program per shape
    return to_device(params), steps, converged_at, implicit_from


def _cut(problem, size, ws, w, t_end, status, base):
    """The padded solve's arrays cut back to the problem's X prompts, T save times and layout
    (:mod:`.buckets`)."""
    x, t, _ = size
    ws = cut_state(problem, np.asarray(ws)[:x, :t])
    w, base = cut_state(problem, np.asarray(w)[:x]), cut_state(problem, np.asarray(base)[:x])
    return ws, w, np.asarray(t_end)[:x], np.asarray(status)[:x], base


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
    """Refuse, before solving, a trajectory whose saved states would not fit in memory (a
    tabular problem's in its bucketed shape, which the solver holds: see .buckets)."""
    params, table, saves = problem.params0.size, problem.num_prompts * problem.num_outputs, len(ts)
    if bucketed(problem):
        size = batch_bucket(problem.num_prompts, problem.num_outputs)
        size *= output_bucket(problem.num_outputs)
        params = table = size
        saves = save_bucket(saves)
    per_save = _SAVED_PARAM_COPIES * params + _SAVED_TABLE_COPIES * table
    check_allocation(
        f"{what} ({len(ts)} times, each saving {problem.num_prompts} prompt(s) x "
        f"{problem.num_outputs} outputs)",
        8.0 * saves * per_save,
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

    Examples:
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
    # in the solvers' form and the save-time bucket (one program per bucket), cut on the host
    metrics = _path_metrics(canonical(problem), pad_batch(params, save_bucket(len(ts))))
    probs, e_rm, e_gt, v_rm, v_gt, kl, phi = (np.asarray(a)[: len(ts)] for a in metrics)
    params = np.asarray(params)
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
