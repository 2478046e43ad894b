"""Notebook 11: verifiable 0/1 rewards, noisy verifiers and group estimators, exactly.

Two studies:

* :func:`verifier_phases`: a verifier with false-positive rate FPR and false-negative rate FNR on
  a 0/1 ground truth, over a grid of rates. Its expected reward is FPR + J r_G with
  J = 1 - FPR - FNR (:mod:`theory_sim.rewards.verifiers`), so the exact flow learns J times
  faster than with the clean labels (and with lambda / J for lambda), not at all when J = 0, and
  backwards when J < 0: the three phases that "Rate or Fate? RLVeR" (arXiv 2601.04411) finds
  for sampled RLVR, here as exact times and gains.
* :func:`group_exponents`: does group normalisation undo the flat landscape? The exponent of
  t_gamma in Var0 under the flows of the expected GRPO and Dr. GRPO updates
  (:mod:`theory_sim.groups`) on notebook 02's two families, beside the exact flow's. The
  expected updates predict it: Dr. GRPO is (G - 1)/G times the exact gradient, so its exponents
  are the exact flow's; GRPO with 0/1-valued rewards is w(p) times the exact gradient with
  w(p) -> sqrt(G - 1) as p -> 0, so a rarely sampled good output leaves its exponent at the
  exact flow's, while GRPO is invariant under scaling the reward (eps = 0), so the
  reward-scale family gives exponent 0.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from theory_sim import groups
from theory_sim._validation import (
    as_float_array,
    check_choice,
    check_float_scalar,
    check_int,
    check_seed,
)
from theory_sim.flow import gradient_flow, time_to_gain
from theory_sim.metrics import reward_variance
from theory_sim.policies import Tabular
from theory_sim.problem import Problem
from theory_sim.rewards import noisy_verifier, youden_j
from theory_sim.stories.landscape import FLAT_FAMILIES, MAX_DECADES, family_instance
from theory_sim.theorems import ExponentFit, fit_exponent

__all__ = [
    "GROUP_FLOWS",
    "GroupExponents",
    "VerifierPhases",
    "group_exponents",
    "predicted_group_exponent",
    "verifier_phases",
]

GROUP_FLOWS = ("exact", "drgrpo", "grpo")


@dataclasses.dataclass(frozen=True)
class VerifierPhases:
    """The flow under noisy verifiers over a grid of error rates.

    Attributes:
        rates: [N] the grid of FPR (and of FNR) values.
        j: [N, N] Youden's J per (FPR, FNR).
        time: [N, N] t_gamma of the ground truth under the verifier's expected reward (inf where
            J <= 0).
        predicted: [N, N] t_gamma(clean, lambda / J) / J (inf where J <= 0: never).
        gain: [N, N] the ground-truth gain at ``horizon``: positive, zero or negative.
        gamma, kl_coef, horizon: the settings.
    """

    rates: np.ndarray
    j: np.ndarray
    time: np.ndarray
    predicted: np.ndarray
    gain: np.ndarray
    gamma: float
    kl_coef: float
    horizon: float


def verifier_phases(
    rates=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    *,
    gamma: float = 0.2,
    kl_coef: float = 0.0,
    horizon: float = 20.0,
) -> VerifierPhases:
    """The Rate-or-Fate phase diagram (arXiv 2601.04411) under the exact flow: one prompt, four
    outputs, pi_0 = (0.05, 0.25, 0.3, 0.4), the first output correct."""
    rates = as_float_array("rates", rates, ndim=(1,))
    if np.any(rates < 0) or np.any(rates > 1):
        raise ValueError(f"`rates` must be error rates in [0, 1]; got {rates.tolist()}.")
    gamma = check_float_scalar("gamma", gamma, positive=True)
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    horizon = check_float_scalar("horizon", horizon, positive=True)
    probs = np.array([0.05, 0.25, 0.3, 0.4])
    correct = np.array([1.0, 0.0, 0.0, 0.0])
    clean = Problem(np.log(probs), correct, correct, kl_coef=kl_coef)
    n = len(rates)
    j, time, gain = (np.full((n, n), math.nan) for _ in range(3))
    predicted = np.full((n, n), math.inf)
    clean_times = {}  # t_gamma(clean, lambda / J), one solve per distinct lambda / J
    for a, fpr in enumerate(rates):
        for b, fnr in enumerate(rates):
            j[a, b] = youden_j(fpr, fnr)
            noisy = Problem(np.log(probs), noisy_verifier(correct, fpr, fnr), correct,
                            kl_coef=kl_coef)  # fmt: skip
            time[a, b] = time_to_gain(noisy, gamma)
            if j[a, b] > 1e-12:
                lam = kl_coef / j[a, b]
                if lam not in clean_times:
                    clean_times[lam] = time_to_gain(clean.with_kl_coef(lam), gamma)
                predicted[a, b] = clean_times[lam] / j[a, b]
            traj = gradient_flow(noisy, horizon, save_ts=np.array([0.0, horizon]))
            gain[a, b] = traj.expected_gt[-1] - traj.expected_gt[0]
    return VerifierPhases(rates, j, time, predicted, gain, gamma, kl_coef, horizon)


@dataclasses.dataclass(frozen=True)
class GroupExponents:
    """t_gamma against Var0 under the exact flow and the expected group updates' flows.

    Attributes:
        family: "concentration" or "reward_scale" (notebook 02).
        var0: [K]; times: {flow: [K] t_gamma}; fits: {flow: ExponentFit};
        predicted: {flow: the predicted slope} (see :func:`predicted_group_exponent`);
        group_size: G (GRPO's eps is 0).
    """

    family: str
    var0: np.ndarray
    times: dict
    fits: dict
    predicted: dict
    group_size: int

    def rows(self) -> list[dict]:
        return [
            {"family": self.family, "flow": flow, "slope": fit.slope, "stderr": fit.stderr,
             "predicted": self.predicted[flow], "points": len(fit.var0)}
            for flow, fit in self.fits.items()
        ]  # fmt: skip


def predicted_group_exponent(flow: str, family: str, var0, exact_times, p0, group_size) -> float:
    """The slope the expected update predicts (module docstring, eps = 0):

    * Dr. GRPO: the exact flow's slope (its update is (G - 1)/G times the gradient);
    * GRPO, reward-scale family: 0 (scaling r leaves every GRPO advantage unchanged);
    * GRPO, concentration family (0/1-valued reward): its flow is the exact one slowed by
      1 / w(p), and a rare good output spends its time near p = p_0, so t_GRPO ~ t_exact / w(p_0):
      the slope of log(t_exact / w(p_0)) on log Var0, which tends to the exact slope as
      p_0 -> 0 (w -> sqrt(G - 1)).
    """
    exact = fit_exponent(var0, exact_times).slope
    if flow in ("exact", "drgrpo"):
        return exact
    if family == "reward_scale":
        return 0.0
    weights = np.array([groups.group_weight(float(p), group_size) for p in p0])
    return fit_exponent(var0, np.asarray(exact_times) / weights).slope


def group_exponents(
    family: str = "concentration",
    *,
    group_size: int = 8,
    num_points: int = 7,
    decades: float = 4.0,
    seed: int = 0,
) -> GroupExponents:
    """Fit the exponent of t_gamma in Var0 under the exact, Dr. GRPO and GRPO (eps = 0) flows
    (tabular, eight outputs, lambda = 0, G = ``group_size``) on a notebook 02 family; Var0 spans
    ``decades`` decades over ``num_points`` instances."""
    family = check_choice("family", family, FLAT_FAMILIES)
    group_size = check_int("group_size", group_size, 2)
    num_points = check_int("num_points", num_points, 3)
    decades = check_float_scalar("decades", decades, positive=True)
    if decades > MAX_DECADES:
        raise ValueError(f"`decades` must be at most {MAX_DECADES:g}, as for flat_landscape; "
                         f"got {decades:g}.")  # fmt: skip
    key = jax.random.key(check_seed("seed", seed))
    var0, p0, times = [], [], {flow: [] for flow in GROUP_FLOWS}
    for k in range(num_points):
        level = decades * k / (num_points - 1)
        probs, r_rm, r_gt, gamma = family_instance(Tabular(), family, level, key)
        problem = Problem(np.log(probs), r_rm, r_gt)
        var0.append(float(reward_variance(probs, r_rm)))
        p0.append(float(np.sum(probs[r_rm == r_rm.max()])))
        times["exact"].append(time_to_gain(problem, gamma))
        for flow in ("drgrpo", "grpo"):
            times[flow].append(groups.expected_time_to_gain(
                problem, gamma, method=flow, group_size=group_size))  # fmt: skip
    var0 = np.array(var0)
    times = {flow: np.array(t) for flow, t in times.items()}
    fits: dict[str, ExponentFit] = {flow: fit_exponent(var0, t) for flow, t in times.items()}
    predicted = {flow: predicted_group_exponent(flow, family, var0, times["exact"], p0, group_size)
                 for flow in GROUP_FLOWS}  # fmt: skip
    return GroupExponents(family, var0, times, fits, predicted, group_size)
