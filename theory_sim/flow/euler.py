"""Euler's method: theta_{k+1} = theta_k + dt grad phi(theta_k), gradient ascent with step dt.

Between steps the path is the straight segment (Euler's own continuous extension), so t_gamma on
it is found by bisection on the segment where the crossing happens, and a maximum of the gain
inside a segment by bisection on the sign of its slope.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from theory_sim._validation import (
    check_float_scalar,
)
from theory_sim.flow.coordinates import _gain_value, _theta_field
from theory_sim.flow.solve import _check_max_steps

# Euler's default cap: about a minute of small-problem steps. A run needing more, ceil(t_max / dt)
# steps, is refused before it starts (pass a larger ``max_steps`` to allow it).
EULER_MAX_STEPS = 10**8


_BISECTION_STEPS = 80  # halves a step of length dt down to dt * 2**-80: below float64 resolution


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
