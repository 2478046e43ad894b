"""The tabular dynamics themselves (arXiv 2503.15477): Lemma 9's closed form of d pi/dt along the
flow, and the two monotone quantities the proof of Proposition 4 rests on.

For a tabular policy the flow is d theta_x/dt = (1/|S|) pi (r_KL - E_pi r_KL) (theory.md section
2), and the softmax Jacobian turns it into Lemma 9:

    d pi(y|x)/dt = (pi(y|x) / |S|) [ pi(y|x) A(y) - sum_y' pi(y'|x)^2 A(y') ],
    A = r_KL(x, .) - E_{pi(.|x)} r_KL(x, .).

Along it every prompt's own objective phi(theta(t); x) = E_{pi_t} r_RM(x, .) - lambda KL(pi_t ||
pi_0) is non-decreasing (its time derivative is |S| ||grad_{theta_x} phi||^2 >= 0, since prompts
evolve independently), and so E_{pi_t} r_RM(x, .) >= phi(theta(t); x) >= phi(theta(0); x) =
E_{pi_0} r_RM(x, .) at every t.
"""

from __future__ import annotations

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
)
from theory_sim.flow import (
    DEFAULT_MAX_STEPS,
    default_save_ts,
    gradient_flow,
)
from theory_sim.flow.solve import _dense_solution
from theory_sim.metrics import _host_reward_variance
from theory_sim.problem import Problem, check_problem
from theory_sim.theorems._common import Check, _describe, _require_tabular

# Lemma 9's closed form is compared with the time derivative of the solver's dense output (Tsit5's
# fourth-order interpolant, differentiated by jax.jvp), solved at rtol 1e-12 for this check. That
# derivative's error is set by the solver's error in theta divided by its step, so it grows where
# the field is tiny: measured up to 2.5e-6 of max_y |d pi/dt| over 60 random instances with
# rewards scaled down to 1e-4. 2e-5 absorbs it, while a wrong factor (1/|S| dropped, pi(y) A(y)
# for pi(y)^2 A(y)) is off by order 1. Near the limit pi* both sides are tiny and the closed form,
# computed from log pi - log pi_0 directly, is only accurate to round-off of r_KL: LEMMA_9_FLOOR
# (about 450 ulp) of max |r_KL| / |S|.
LEMMA_9_RTOL = 2e-5
LEMMA_9_FLOOR = 1e-13
_DENSE_RTOL, _DENSE_ATOL = 1e-12, 1e-14
# phi(theta(t); x) and E_{pi_t} r_RM are computed from saved states with relative error of order
# the solver's rtol (1e-10); a fall smaller than 1e-9 (1 + |phi|) is round-off, any larger fall a
# failure of the claim.
MONOTONE_ATOL = 1e-9


def lemma_9_rate(log_probs, ref_log_probs, reward_rm, kl_coef: float, num_prompts: int):
    """d pi(y|x)/dt along the tabular flow in closed form (Lemma 9 of arXiv 2503.15477).

    d pi(y|x)/dt = (pi(y|x) / |S|) [pi(y|x) A(y) - sum_y' pi(y'|x)^2 A(y')], with the centred
    reward A = r_KL(x, .) - E_pi r_KL(x, .) and r_KL = r_RM - lambda (log pi - log pi_0).

    Args:
        log_probs, ref_log_probs, reward_rm: [..., Y] tables (log pi_t, log pi_0, r_RM).
        kl_coef: lambda.
        num_prompts: |S|.

    Returns:
        [..., Y]: d pi/dt.
    """
    log_probs = as_float_array("log_probs", log_probs)
    if log_probs.ndim < 1 or log_probs.shape[-1] < 2 or np.any(log_probs > 1e-12):
        raise ValueError(
            "`log_probs` must be log-probabilities [..., Y] with Y >= 2 (entries <= 0); got "
            f"shape {log_probs.shape}."
        )
    tables = [
        as_float_array(n, a)
        for n, a in (("ref_log_probs", ref_log_probs), ("reward_rm", reward_rm))
    ]
    for name, table in zip(("ref_log_probs", "reward_rm"), tables, strict=True):
        try:
            np.broadcast_shapes(table.shape, log_probs.shape)
        except ValueError:
            raise ValueError(
                f"`{name}` must broadcast against `log_probs` {log_probs.shape}; got {table.shape}."
            ) from None
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    num_prompts = check_int("num_prompts", num_prompts)
    return _lemma_9_rate(log_probs, *tables, kl_coef, num_prompts)


def _lemma_9_rate(log_probs, ref_log_probs, reward_rm, kl_coef, num_prompts):
    """:func:`lemma_9_rate` on the host, in numpy (its inputs are host tables; eager JAX would
    compile a program for each operation and shape)."""
    log_probs, ref_log_probs, reward_rm = (
        np.asarray(a, np.float64) for a in (log_probs, ref_log_probs, reward_rm)
    )
    probs = np.exp(log_probs)
    r_kl = reward_rm - float(kl_coef) * (log_probs - ref_log_probs)
    centred = r_kl - np.sum(probs * r_kl, axis=-1, keepdims=True)
    second = np.sum(probs**2 * centred, axis=-1, keepdims=True)
    return probs * (probs * centred - second) / num_prompts


@partial(jax.jit, static_argnames=("max_steps",))
def _dense_rates(problem: Problem, ts, t_max, max_steps):
    """(log pi_t [T, X, Y], d pi_t/dt by autodiff [T, X, Y], ok) from one dense solve to t_max.

    The derivative is jax.jvp of t -> softmax(theta(t)) through the solver's dense interpolant.
    """
    base, sol = _dense_solution(problem, t_max, _DENSE_RTOL, _DENSE_ATOL, max_steps)

    def probs_at(t):
        return jnp.exp(problem.log_probs(base + sol.evaluate(t)))

    def one(t):
        probs, rate = jax.jvp(probs_at, (t,), (jnp.ones_like(t),))
        return jnp.log(probs), rate

    log_probs, rates = jax.vmap(one)(ts)
    return log_probs, rates, sol.result == diffrax.RESULTS.successful


def check_lemma_9(
    problem: Problem, t_max: float | None = None, *, num_times: int = 16, instance: str = ""
) -> Check:
    """Check Lemma 9 of arXiv 2503.15477: :func:`lemma_9_rate` against autodiff through the
    solver, at ``num_times`` log-spaced times in [1e-6 t_max, t_max], on every prompt.

    The autodiff side is the time derivative of pi(theta(t)) with theta(t) the solver's dense
    (interpolated) solution, so it shares nothing with the closed form but the flow itself.

    Args:
        problem: a tabular problem.
        t_max: the horizon; default 4 |S| / sqrt(max_x Var0(x)), where the flow has moved, and
            at most 20 |S| / lambda, where an expressive flow with lambda > 0 has all but
            settled (beyond it the explicit solver's step is capped by stiffness).

    Returns:
        A Check with relation "==": at the entry (time, prompt, output) where the two sides
        differ most, measured = the closed form and bound = autodiff; it holds when every
        deviation is at most LEMMA_9_RTOL times that time's max |d pi/dt| plus the round-off
        floor LEMMA_9_FLOOR max |r_KL| / |S|.
    """
    problem = check_problem(problem)
    claim = "Lemma 9"
    _require_tabular(problem, claim)
    num_times = check_int("num_times", num_times, 2)
    if t_max is None:
        var0 = float(
            np.max(
                _host_reward_variance(np.exp(problem.ref_log_probs), np.asarray(problem.reward_rm))
            )
        )
        if var0 <= 0:
            raise ValueError(
                "`problem` has zero reward variance at every prompt: the flow does not move."
            )
        t_max = 4.0 * problem.num_prompts / math.sqrt(var0)
        if float(problem.kl_coef) > 0:
            t_max = min(t_max, 20.0 * problem.num_prompts / float(problem.kl_coef))
    t_max = check_float_scalar("t_max", t_max, positive=True)
    ts = np.geomspace(1e-6 * t_max, t_max, num_times)
    log_probs, autodiff, ok = _dense_rates(problem, to_device(ts), t_max, DEFAULT_MAX_STEPS)
    if not bool(ok):
        raise RuntimeError(
            f"{claim}: the dense solve to t_max = {t_max:g} did not finish in "
            f"{DEFAULT_MAX_STEPS} steps (with lambda > 0 the tail is stiff: lower `t_max` to "
            "where the flow still moves, about |S| / lambda)."
        )
    closed = _lemma_9_rate(
        log_probs, problem.ref_log_probs, problem.reward_rm, problem.kl_coef, problem.num_prompts
    )
    autodiff = np.asarray(autodiff)
    r_kl = np.asarray(problem.reward_rm) - float(problem.kl_coef) * (
        np.asarray(log_probs) - np.asarray(problem.ref_log_probs)
    )
    floor = LEMMA_9_FLOOR * np.abs(r_kl).max(axis=(1, 2), keepdims=True) / problem.num_prompts
    scale = np.abs(autodiff).max(axis=(1, 2), keepdims=True)
    allowed = LEMMA_9_RTOL * scale + floor
    excess = np.abs(closed - autodiff) / np.maximum(allowed, 1e-300)
    worst = np.unravel_index(int(np.argmax(excess)), closed.shape)
    rel = float(np.max(np.abs(closed - autodiff) / np.maximum(scale, 1e-300)))
    vacuous = "" if float(scale.max()) > 0 else "d pi/dt is 0 on both sides: the flow does not move"
    return Check(
        claim,
        instance
        or f"X={problem.num_prompts} Y={problem.num_outputs} lambda={float(problem.kl_coef):g}",
        float(closed[worst]),
        float(autodiff[worst]),
        "==",
        bool(excess.max() <= 1.0),
        {
            "max_relative_deviation": rel,
            "max_deviation_over_allowed": float(excess.max()),
            "tolerance": f"{LEMMA_9_RTOL:g} relative",
            "t_max": t_max,
            "at_time": float(ts[worst[0]]),
        },
        vacuous,
    )


def check_monotone_ascent(
    problem: Problem, prompt: int = 0, t_max: float = 1e6, *, instance: str = ""
) -> list[Check]:
    """Check the two monotone facts in the proof of Proposition 4 of arXiv 2503.15477 along the
    tabular flow, on the 129-point log-time grid to ``t_max``:

    * phi(theta(t); x) = E_{pi_t} r_RM(x, .) - lambda KL(pi_t(.|x) || pi_0(.|x)) never decreases;
    * E_{pi_t} r_RM(x, .) >= E_{pi_0} r_RM(x, .) at every t.

    Returns:
        Two Checks with relation "<=" against bound 0: measured = the largest fall of phi between
        consecutive save times, and the largest shortfall E_{pi_0} r_RM - E_{pi_t} r_RM. Each
        holds when it is at most MONOTONE_ATOL (1 + max |phi|) (round-off of the saved states).
    """
    problem = check_problem(problem)
    claim = "Proposition 4 (proof)"
    _require_tabular(problem, claim)
    prompt = check_index("prompt", prompt, problem.num_prompts, "prompts")
    t_max = check_float_scalar("t_max", t_max, positive=True)
    traj = gradient_flow(problem, t_max, default_save_ts(t_max))
    expected = np.asarray(traj.expected_rm).reshape(len(traj.ts), -1)[:, prompt]
    kl = np.asarray(traj.kl).reshape(len(traj.ts), -1)[:, prompt]
    phi = expected - float(problem.kl_coef) * kl
    fall = float(np.max(np.maximum(phi[:-1] - phi[1:], 0.0)))
    shortfall = float(np.max(np.maximum(expected[0] - expected, 0.0)))
    tol = MONOTONE_ATOL * (1.0 + float(np.abs(phi).max()))
    label = instance or _describe(problem, prompt)
    details = {
        "t_max": t_max,
        "phi_0": float(phi[0]),
        "phi_end": float(phi[-1]),
        "tolerance": tol,
        "kl_coef": float(problem.kl_coef),
    }
    return [
        Check(claim + ": phi non-decreasing", label, fall, 0.0, "<=", fall <= tol,
              details),
        Check(claim + ": E r_RM above its start", label, shortfall, 0.0, "<=",
              shortfall <= tol, details),
    ]  # fmt: skip
