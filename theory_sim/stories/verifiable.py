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
* :func:`step_thresholds`: discrete steps (Suk & Duan, arXiv 2510.08539) on the shared-token
  family over {0, 1}^L (:mod:`theory_sim.steps`): the critical fixed learning rate of the exact
  and expected GRPO updates against the response length L and the initial success rate, the
  one-step threshold measured and in closed form (out to L = 1024), fitted exponents in L, and
  the sampled RLOO and GRPO runs' collapse probability beside the exact critical rate.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from theory_sim import groups, steps
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
    "StepThresholds",
    "VerifierPhases",
    "group_exponents",
    "predicted_group_exponent",
    "step_thresholds",
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


@dataclasses.dataclass(frozen=True)
class StepThresholds:
    """Critical learning rates on the shared-token family (V = 2), exact and sampled.

    Attributes:
        lengths: [n] L at success rate ``success``; critical, all_fail, one_step:
            {"exact", "grpo": [n]} the first failing fixed rate, the rate from which every
            larger grid rate fails, and the one-step threshold (measured);
            predicted_one_step: [n] its closed form (exact update).
        slopes: {"exact", "grpo": the exponent of the critical rate in L, fitted over the
            lengths where it is finite (None with fewer than three)}; local_slopes:
            {method: {(L, L'): the exponent between consecutive such lengths}}.
        long_lengths, long_one_step: the closed-form one-step threshold out to L = 1024.
        successes: [m] initial success rates at length ``length``; critical_by_success:
            {"exact", "grpo": [m]}; one_step_by_success: [m] (closed form, exact).
        sampled_lengths, rates: [k], [R]; collapse: {"rloo", "grpo": [k, R]} the fraction of
            ``num_runs`` sampled runs (groups of G) that end below their start, with Wilson
            intervals ``collapse_ci`` [k, R, 2]; sampled_half: {method: [k]} the rate where the
            fraction crosses 1/2 (log interpolation; inf if it does not); sampled_by_success:
            {method: [m]} the same rate at L = ``length`` for each initial success rate.
        group_size, num_steps, num_runs, success, length: the settings.
    """

    lengths: np.ndarray
    critical: dict
    all_fail: dict
    one_step: dict
    predicted_one_step: np.ndarray
    slopes: dict
    local_slopes: dict
    long_lengths: np.ndarray
    long_one_step: np.ndarray
    successes: np.ndarray
    critical_by_success: dict
    one_step_by_success: np.ndarray
    sampled_lengths: np.ndarray
    rates: np.ndarray
    collapse: dict
    collapse_ci: dict
    sampled_half: dict
    sampled_by_success: dict
    group_size: int
    num_steps: int
    num_runs: int
    success: float
    length: int

    def rows(self) -> list[dict]:
        """One row per length: the exact and GRPO critical rates, the one-step thresholds and
        the sampled runs' half-fail rates, and the local exponent to the next length."""
        out = []
        for i, n in enumerate(self.lengths):
            row = {"L": int(n), "p0": self.success}
            for m in ("exact", "grpo"):
                row[f"critical {m}"] = float(self.critical[m][i])
                row[f"one-step {m}"] = float(self.one_step[m][i])
            row["one-step closed form"] = float(self.predicted_one_step[i])
            for m, local in self.local_slopes.items():
                ahead = [v for (a, _), v in local.items() if a == n]
                row[f"local exponent {m}"] = ahead[0] if ahead else math.nan
            for m, half in self.sampled_half.items():
                hit = np.flatnonzero(self.sampled_lengths == n)
                row[f"sampled {m} half-fail"] = float(half[hit[0]]) if hit.size else math.nan
            out.append(row)
        return out


def _lengths(name: str, values, least: int) -> np.ndarray:
    """At least ``least`` distinct increasing response lengths >= 1 (the family needs L >= 4 for
    a finite one-step threshold, but any L >= 1 runs)."""
    arr = np.asarray(values) if isinstance(values, list | tuple | np.ndarray) else None
    if (arr is None or arr.ndim != 1 or arr.size < least or arr.dtype.kind not in "iu"
            or np.any(arr < 1) or np.any(np.diff(arr) <= 0)):  # fmt: skip
        raise ValueError(f"`{name}` must be at least {least} increasing integers >= 1; got "
                         f"{values!r}.")  # fmt: skip
    return arr.astype(int)


def _half(rates, fractions) -> float:
    """The rate where ``fractions`` first reaches 1/2, interpolated in log rate."""
    hit = np.flatnonzero(fractions >= 0.5)
    if hit.size == 0:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(rates[0])
    a, b = fractions[i - 1], fractions[i]
    w = (0.5 - a) / (b - a)
    return float(np.exp(np.log(rates[i - 1]) + w * np.log(rates[i] / rates[i - 1])))


def step_thresholds(
    lengths=(4, 5, 6, 7, 8, 10, 12),
    successes=(0.05, 0.1, 0.2, 0.4, 0.6, 0.8),
    *,
    success: float = 0.2,
    length: int = 6,
    sampled_lengths=(4, 6, 8),
    rates=None,
    group_size: int = 8,
    num_steps: int = 1000,
    num_runs: int = 64,
    seed: int = 0,
) -> StepThresholds:
    """The critical fixed learning rate on :func:`theory_sim.steps.shared_token_problem`
    (V = 2) against L (at initial success rate ``success``) and against the initial success rate
    (at L = ``length``), for the exact update and GRPO's expected update (groups of
    ``group_size``), with the fitted exponent in L; the one-step threshold measured and in closed
    form; and the fraction of ``num_runs`` sampled RLOO and GRPO runs that collapse at each of
    ``rates`` (default 12 rates from 1 to 300) for ``sampled_lengths`` and, at L = ``length``,
    for each initial success rate."""
    lengths = _lengths("lengths", lengths, 3)
    sampled_lengths = _lengths("sampled_lengths", sampled_lengths, 1)
    successes = as_float_array("successes", successes, ndim=(1,))
    if np.any(successes <= 0) or np.any(successes >= 1):
        raise ValueError(f"`successes` must lie in (0, 1); got {successes.tolist()}.")
    success = check_float_scalar("success", success, positive=True)
    group_size = check_int("group_size", group_size, 2)
    rates = (
        np.geomspace(1.0, 300.0, 12) if rates is None else as_float_array("rates", rates, ndim=(1,))
    )
    if np.any(rates <= 0):
        raise ValueError(f"`rates` must be positive learning rates; got {rates.tolist()}.")
    key = jax.random.key(check_seed("seed", seed))
    methods = ("exact", "grpo")
    critical = {m: [] for m in methods}
    all_fail = {m: [] for m in methods}
    one_step = {m: [] for m in methods}
    for n in lengths:
        problem = steps.shared_token_problem(int(n), 2, success)
        for m in methods:
            found = steps.critical_learning_rate(problem, num_steps, method=m,
                                                 group_size=group_size)  # fmt: skip
            critical[m].append(found.learning_rate)
            all_fail[m].append(found.all_fail)
            one_step[m].append(steps.improvement_threshold(problem, method=m,
                                                           group_size=group_size))  # fmt: skip
    critical = {m: np.array(v) for m, v in critical.items()}
    slopes, local = {}, {}
    for m, v in critical.items():
        finite = np.isfinite(v)
        n, rate = lengths[finite], v[finite]
        slopes[m] = fit_exponent(n.astype(float), rate).slope if finite.sum() >= 3 else None
        local[m] = {(int(n[i]), int(n[i + 1])): float(np.log(rate[i + 1] / rate[i])
                                                      / np.log(n[i + 1] / n[i]))
                    for i in range(len(n) - 1)}  # fmt: skip
    by_success = {m: [] for m in methods}
    for p in successes:
        problem = steps.shared_token_problem(length, 2, float(p))
        for m in methods:
            by_success[m].append(steps.critical_learning_rate(
                problem, num_steps, method=m, group_size=group_size).learning_rate)  # fmt: skip
    long_lengths = np.unique(np.geomspace(4, 1024, 25).round().astype(int))

    def sampled(m, n, p, salt):
        return steps.collapse_probability(steps.shared_token_problem(n, 2, p), rates, num_steps,
                                          key=jax.random.fold_in(key, salt), method=m,
                                          num_samples=group_size, num_runs=num_runs)  # fmt: skip

    collapse, intervals, half, half_by_success = {}, {}, {}, {}
    for m in ("rloo", "grpo"):
        rows = [sampled(m, int(n), success, int(n)) for n in sampled_lengths]
        collapse[m] = np.array([r[0] for r in rows])
        intervals[m] = np.array([r[1] for r in rows])
        half[m] = np.array([_half(rates, f) for f in collapse[m]])
        half_by_success[m] = np.array([_half(rates, sampled(m, length, float(p), 1000 + i)[0])
                                       for i, p in enumerate(successes)])  # fmt: skip
    return StepThresholds(
        lengths, critical, {m: np.array(v) for m, v in all_fail.items()},
        {m: np.array(v) for m, v in one_step.items()},
        np.array([steps.predicted_improvement_threshold(int(n), success) for n in lengths]),
        slopes, local, long_lengths,
        np.array([steps.predicted_improvement_threshold(int(n), success) for n in long_lengths]),
        successes, {m: np.array(v) for m, v in by_success.items()},
        np.array([steps.predicted_improvement_threshold(length, float(p)) for p in successes]),
        sampled_lengths, rates, collapse, intervals, half, half_by_success, group_size,
        num_steps, num_runs,
        success, length,
    )  # fmt: skip
