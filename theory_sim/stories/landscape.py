"""Notebook 02: the flat landscape. t_gamma against Var0 on two families of instances.

Proposition 3 and Theorem 4 of arXiv 2503.15477: t_gamma >= 2|S|(1 - exp(-gamma/2)) / sqrt(Var0)
(exponent -1/2) and the autoregressive bound with exponent -1/3. Two families lower the reward
variance under pi_0: scaling the reward model (``reward_scale``) and giving the one good output
less mass under pi_0 (``concentration``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from theory_sim import _random
from theory_sim._validation import check_choice, check_float_scalar, check_int, check_seed
from theory_sim.flow import time_to_gain
from theory_sim.metrics import reward_variance
from theory_sim.policies import Autoregressive, Tabular, start_at
from theory_sim.problem import Problem
from theory_sim.theorems import (
    ExponentFit,
    fit_exponent,
    proposition_3_bound,
    theorem_4_bound,
)


@dataclasses.dataclass(frozen=True)
class FlatLandscape:
    """t_gamma against Var0 over a family of instances, with both lower bounds at each point.

    Attributes:
        policy, family: what was swept (see :func:`flat_landscape`).
        var0, t_gamma, gamma: [K] per instance.
        proposition_3: [K] 2(1 - e^(-gamma/2)) / sqrt(Var0) (tabular; nan for sequences).
        theorem_4: [K] min(1 - e^(-gamma/9), ...) / (8 L^2 J^2) Var0^(-1/3).
        fit: the least-squares slope of log t_gamma on log Var0.
    """

    policy: str
    family: str
    var0: np.ndarray
    t_gamma: np.ndarray
    gamma: np.ndarray
    proposition_3: np.ndarray
    theorem_4: np.ndarray
    fit: ExponentFit

    def rows(self) -> list[dict]:
        return [
            {
                "policy": self.policy,
                "family": self.family,
                "var0": float(v),
                "t_gamma": float(t),
                "gamma": float(g),
                "proposition_3_bound": float(p),
                "theorem_4_bound": float(b),
            }
            for v, t, g, p, b in zip(
                self.var0, self.t_gamma, self.gamma, self.proposition_3, self.theorem_4, strict=True
            )
        ]


FLAT_FAMILIES = ("reward_scale", "concentration")
# The widest span of Var0 the landscapes reach: at 12 decades the concentration family's rarest
# instance is not reached by t = 1e12, leaving two points to fit.
MAX_DECADES = 10.0


def _concentrated(policy, eps: float, num_outputs: int) -> np.ndarray:
    """pi_0 with mass eps on output 0; for sequences, per-token mass eps^(1/L) on token 0."""
    if isinstance(policy, Tabular):
        probs = np.full(num_outputs, (1 - eps) / (num_outputs - 1))
        probs[0] = eps
        return probs
    token = eps ** (1.0 / policy.length)
    per_token = np.array([token, 1 - token])
    seqs = policy.sequences()
    return np.prod(per_token[seqs], axis=-1)


def family_instance(param, family: str, level: float, key, num_outputs: int = 8):
    """(pi_0, r_RM, r_G, gamma) of ``family`` with Var0 lowered by 10^``level`` (see
    :func:`flat_landscape`): shared by the landscapes of notebooks 02 and 11."""
    if family == "reward_scale":
        k_p, k_r = jax.random.split(key)
        probs = _random.dirichlet(k_p, num_outputs)
        r_gt = _random.uniform(k_r, (num_outputs,), -1.0, 1.0)
        r_rm = 10.0 ** (-level / 2) * r_gt
        return probs, r_rm, r_gt, 0.5 * (r_gt[np.argmax(r_rm)] - probs @ r_gt)
    r_gt = np.full(num_outputs, -1.0)
    r_gt[0] = 1.0
    return _concentrated(param, 0.1 * 10.0 ** (-level), num_outputs), r_gt, r_gt, 0.5


def flat_landscape(
    policy: str = "tabular",
    family: str = "concentration",
    *,
    num_points: int = 13,
    decades: float = 6.0,
    seed: int = 0,
) -> FlatLandscape:
    """t_gamma against Var0 with the bounds of Proposition 3 and Theorem 4 (arXiv 2503.15477).

    Eight outputs: a tabular softmax over Y = 8, or an autoregressive policy with V = 2, L = 3.
    lambda = 0. Var0 spans ``decades`` decades over ``num_points`` instances.

    Families:
        * "reward_scale": a seeded random pi_0 and r_G ~ U[-1, 1]; r_RM = c r_G with c shrinking.
          gamma is half the gain of r_G toward its value at the best output of r_RM.
        * "concentration": r = +1 on one output (for sequences, (0, ..., 0)) and -1 elsewhere,
          r_RM = r_G = r; pi_0 gives it mass eps (spread evenly over the others' prefixes for
          the autoregressive policy), eps shrinking; gamma = 0.5.

    Proposition 3 bounds t_gamma below by 2(1 - e^(-gamma/2)) Var0^(-1/2) (tabular policies) and
    Theorem 4 by min(1 - e^(-gamma/9), ...) / (8 L^2 J^2) Var0^(-1/3) (autoregressive, the
    tabular softmax being L = 1); the fit reports the exponent the instances actually show.
    """
    policy = check_choice("policy", policy, ("tabular", "autoregressive"))
    family = check_choice("family", family, FLAT_FAMILIES)
    num_points = check_int("num_points", num_points, 3)
    decades = check_float_scalar("decades", decades, positive=True)
    if decades > MAX_DECADES:
        raise ValueError(
            f"`decades` must be at most {MAX_DECADES:g} (beyond, the rarest instances' t_gamma "
            f"passes the solver's horizon and too few points remain to fit); got {decades:g}."
        )
    param = Tabular() if policy == "tabular" else Autoregressive(2, 3)
    num_outputs = 8
    rng_key = jax.random.key(check_seed("seed", seed))
    var0, times, gammas, prop3, thm4 = [], [], [], [], []
    for k in range(num_points):
        level = decades * k / (num_points - 1)  # Var0 falls by 10^level
        probs, r_rm, r_gt, gamma = family_instance(param, family, level, rng_key, num_outputs)
        params, _ = start_at(param, probs)
        problem = Problem(params, r_rm, r_gt, policy=param)
        v = float(reward_variance(probs, r_rm))
        var0.append(v)
        gammas.append(float(gamma))
        times.append(time_to_gain(problem, gamma))
        prop3.append(proposition_3_bound(1, v, gamma) if policy == "tabular" else math.nan)
        jac = param.jacobian_norm(problem.params0)
        thm4.append(theorem_4_bound(param.length, jac, 0.0, gamma, v))
    return FlatLandscape(
        policy,
        family,
        np.array(var0),
        np.array(times),
        np.array(gammas),
        np.array(prop3),
        np.array(thm4),
        fit_exponent(var0, times),
    )
