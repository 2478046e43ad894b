"""Reward models with a chosen reward variance under pi_0 and the same ranking.

A strictly increasing map of r keeps its accuracy (theory.md section 3) and moves Var_{pi_0}[r]
from 0 up to the largest a monotone map of that ranking reaches; scaling a prompt's reward by c
scales its variance by c^2.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_key,
    check_probabilities,
)


def _variance(probs: np.ndarray, values: np.ndarray) -> float:
    return float(probs @ np.square(values - probs @ values))


def max_monotone_variance(init_probs, reward) -> float:
    """Supremum of Var_pi f(r) over strictly increasing f into [-1, 1] (not attained).

    A [-1, 1]-valued variable has the most variance as a two-point +-1 variable; strictly
    increasing maps approach any split of r's levels into a lower and an upper part, so the
    supremum is max over splits of 4 p (1 - p), p the pi-mass of the upper part.
    """
    probs = check_probabilities("init_probs", init_probs)
    rew = as_float_array("reward", reward)
    if probs.ndim != 1 or rew.shape != probs.shape:
        raise ValueError(
            f"`init_probs` and `reward` must be 1-D of one length (one prompt); got shapes "
            f"{probs.shape} and {rew.shape}."
        )
    levels, inverse = np.unique(rew, return_inverse=True)
    mass = np.bincount(inverse.ravel(), weights=probs.ravel(), minlength=len(levels))
    upper = 1.0 - np.cumsum(mass)[:-1]  # mass above each split between consecutive levels
    return float(np.max(4.0 * upper * (1.0 - upper))) if len(levels) > 1 else 0.0


def with_variance(init_probs, reward, variance: float) -> np.ndarray:
    """A strictly increasing transform of ``reward`` into [-1, 1] with Var_pi = ``variance``.

    Strictly increasing transforms keep every pairwise order (and tie), so the accuracy against
    any ground truth is unchanged (Section 3 of arXiv 2503.15477), while the reward variance under
    pi_0, which sets the speed of the flow, is chosen freely.

    Up to the affine limit Var(r) (2 / (max r - min r))^2 the map is affine, r -> a (r - mid r),
    which scales the variance by a^2. Above it, levels are pushed toward +-1 by
    r -> tanh(s (z - t)) (rescaled onto [-1, 1]), z the affinely standardised reward and t the
    split that maximises 4 p (1 - p); s is found by bisection. Targets must stay below
    :func:`max_monotone_variance`.

    Args:
        init_probs: pi [Y] (one prompt).
        reward: [Y] the ranking to keep (e.g. r_G for an accuracy-1 model).
        variance: the requested Var_pi, >= 0.

    Returns:
        [Y] values in [-1, 1].

    Examples:
        >>> import numpy as np
        >>> from theory_sim.rewards import with_variance
        >>> probs, r = np.full(4, 0.25), np.array([0.0, 1.0, 2.0, 3.0])
        >>> out = with_variance(probs, r, 1e-6)
        >>> float(probs @ (out - probs @ out) ** 2)
        1e-06
    """
    probs = check_probabilities("init_probs", init_probs)
    rew = as_float_array("reward", reward, ndim=(1,))
    if probs.shape != rew.shape or probs.ndim != 1:
        raise ValueError(
            f"`init_probs` and `reward` must be 1-D of one length; got {probs.shape} "
            f"and {rew.shape}."
        )
    target = check_float_scalar("variance", variance, nonnegative=True)
    base = _variance(probs, rew)
    if target == 0:
        return np.zeros_like(rew)
    support = rew[probs > 0]
    if base <= 0 or support.max() == support.min():  # exact test: round-off in base is not 0
        raise ValueError(
            "`reward` is constant on the support of `init_probs`: no increasing "
            "transform has positive variance."
        )
    mid, span = 0.5 * (rew.max() + rew.min()), rew.max() - rew.min()
    affine_limit = base * (2.0 / span) ** 2
    if target <= affine_limit:
        return math.sqrt(target / base) * (rew - mid)
    sup = max_monotone_variance(probs, rew)
    if not target < sup:
        raise ValueError(
            f"`variance` must be below {sup:.6g}, the supremum over strictly "
            f"increasing maps into [-1, 1]; got {target:.6g}."
        )
    levels, inverse = np.unique(rew, return_inverse=True)
    mass = np.bincount(inverse, weights=probs, minlength=len(levels))
    upper = 1.0 - np.cumsum(mass)[:-1]
    split = int(np.argmax(upper * (1.0 - upper)))
    z = (rew - rew.min()) / span
    t = 0.5 * (z[inverse == split][0] + z[inverse == split + 1][0])

    def shaped(s: float) -> np.ndarray:
        g = np.tanh(s * (z - t))
        return -1.0 + 2.0 * (g - g.min()) / (g.max() - g.min())

    lo, hi = 1e-6, 1.0
    while _variance(probs, shaped(hi)) < target:
        hi *= 2.0
        if hi > 1e8:
            raise ValueError(
                f"`variance` {target:.6g} is too close to the supremum {sup:.6g} "
                "to be reached with distinct float64 levels."
            )
    for _ in range(200):
        s_mid = 0.5 * (lo + hi)
        if _variance(probs, shaped(s_mid)) < target:
            lo = s_mid
        else:
            hi = s_mid
    out = shaped(hi)
    if len(np.unique(out)) != len(levels):
        raise ValueError(
            f"`variance` {target:.6g} is too close to the supremum {sup:.6g}: "
            "levels merge in float64."
        )
    return out


def variance_sweep(init_probs, reward, variances) -> np.ndarray:
    """Reward models with one fixed ranking (hence one accuracy) and each requested variance.

    Returns:
        [K, Y], row k = :func:`with_variance` (init_probs, reward, variances[k]).
    """
    values = as_float_array("variances", variances, ndim=(1,))
    rows = []
    for k, v in enumerate(values):
        try:
            rows.append(with_variance(init_probs, reward, v))
        except ValueError as err:
            if "`variance`" not in str(err):
                raise
            raise ValueError(f"`variances`[{k}]: {err}") from None
    return np.stack(rows)


def scale_prompts(reward, fraction: float, factor: float = 1e-3, *, key: jax.Array):
    """Scale the rewards of a random ``fraction`` of prompts by ``factor``.

    The paper's "perfectly accurate, low variance" reward model (Section 4.1 of
    arXiv 2503.15477) is r_G scaled by 0.001 on half of the prompts: accuracy is unchanged
    (scaling by a positive factor is strictly increasing) and the variance on the scaled prompts
    falls by factor^2.

    Args:
        reward: [X, Y].
        fraction: in [0, 1]; round(fraction * X) prompts are scaled.
        factor: > 0.
        key: a JAX random key choosing the prompts.

    Returns:
        (scaled reward [X, Y], mask [X] of the scaled prompts).
    """
    rew = as_float_array("reward", reward, ndim=(2,))
    fraction = check_float_scalar("fraction", fraction, nonnegative=True)
    if fraction > 1:
        raise ValueError(f"`fraction` must be in [0, 1]; got {fraction}.")
    factor = check_float_scalar("factor", factor, positive=True)
    count = round(fraction * rew.shape[0])
    chosen = np.asarray(jax.random.permutation(check_key(key), rew.shape[0]))[:count]
    mask = np.zeros(rew.shape[0], dtype=bool)
    mask[chosen] = True
    return np.where(mask[:, None], factor * rew, rew), mask
