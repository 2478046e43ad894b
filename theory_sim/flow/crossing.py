"""t_gamma: the first time E_{pi_t} r(x, .) >= E_{pi_0} r(x, .) + gamma (Sec. 3, arXiv 2503.15477).

Found by event detection on the adaptive solution and Newton's method on its dense interpolant;
a solve also stops at every local maximum of the gain (a down-crossing of <grad g, field>), so a
target reached only inside one step is not missed: a maximum below the target restarts the solve,
one above it sends the solve back over its last segment, where bisection on the last step finds
the crossing. Euler's path is searched by :mod:`.euler`.
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

from theory_sim._validation import (
    check_choice,
    check_float_scalar,
    check_index,
)
from theory_sim.cache import traced_once
from theory_sim.flow.buckets import bucketed, canonical, cut_state, pad_outputs, prompt_slice
from theory_sim.flow.coordinates import (
    _coordinates,
    _field,
    _gain_value,
    _jit_coordinates,
    _prompt_problem,
    _prompt_rows,
)
from theory_sim.flow.euler import _check_dt, _euler_gain
from theory_sim.flow.limit import _certified, _unreachable
from theory_sim.flow.solve import (
    _CONVERGED,
    _DONE,
    _PEAK,
    _REACHED,
    _STOPPED,
    _UNREACHABLE,
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    EXPLICIT_BUDGET,
    _check_max_steps,
    _check_tolerances,
    _implicit_eligible,
    _solve,
    _stopped_message,
)
from theory_sim.metrics import _host_expected_reward
from theory_sim.problem import Problem, check_problem

# Newton on the event function stops when successive times agree to this relative precision.
_ROOT_RTOL = 1e-14


# The smallest gain time_to_gain answers, in units of the gain's own round-off (see
# _check_resolvable): a gain 1e6 times its round-off gives t_gamma to about 1e-6.
GAIN_RESOLUTION = 1e6


# Local maxima of the gain below the target after which a time-to-gain solve gives up.
_MAX_SEGMENTS = 256


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


def _out_of_reach(problem, table, prompt, gamma) -> bool:
    """Whether E_pi0 r + gamma >= max_y r at ``prompt``: never reached by any method, since
    E_pi r < max_y r for every softmax policy (all probabilities are positive). The margin leaves
    cases within round-off of the maximum to the solver."""
    # E_pi0 r on the host (log pi_0 is the problem's ref_log_probs): no program per shape
    probs0 = np.exp(np.asarray(problem.ref_log_probs)[prompt])
    start = float(_host_expected_reward(probs0, np.asarray(table)[prompt]))
    return gamma > float(np.max(np.asarray(table)[prompt])) - start + 1e-12 * (1.0 + abs(start))


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


_ENDED = {
    _REACHED: "reached",
    _DONE: "t_max",
    _UNREACHABLE: "unreachable",
    _CONVERGED: "converged",
}


def _check_resolvable(gamma: float, table, prompt: int, state) -> None:
    """Refuse a gain of the reward ``table``'s row ``prompt`` below what float64 resolves along
    the flow (both read on the host, where indexing costs no eager program).

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
        problem, table = prompt_slice(problem, table, prompt)  # on the host: no program
        prompt = 0
    problem = canonical(problem)
    eligible = _implicit_eligible(problem)
    unpadded = problem, table
    if bucketed(problem):  # explicit solves run in the problem's bucket (see .buckets)
        problem, table = pad_outputs(problem, table)
    # w_0 = theta_0 - base; base = 0 unless the policy is expressive (_coordinates)
    w = _jit_coordinates(problem)[1] if problem.policy.expressive else problem.params0
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
            if problem is not unpadded[0]:  # the implicit solver runs unpadded (.buckets)
                problem, table = unpadded
                w = cut_state(problem, w)
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
    method = check_choice("method", method, ("adaptive", "euler"))
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

    Examples:
        >>> import numpy as np
        >>> from theory_sim import Problem, time_to_gain
        >>> p = Problem(np.zeros(2), np.array([1.0, -1.0]))
        >>> round(time_to_gain(p, gamma=0.5), 6)    # closed form: d1 + sinh(d1) over 2
        1.215973
    """
    return time_to_gain_details(problem, gamma, reward, prompt, t_max, **solver_options).time
