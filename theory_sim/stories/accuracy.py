"""Notebook 03: accuracy is not enough (Theorem 5, arXiv 2503.15477); accuracy against variance."""

from __future__ import annotations

import dataclasses

import numpy as np

from theory_sim import rewards
from theory_sim._validation import check_int
from theory_sim.flow import Trajectory, gradient_flow, time_to_gain
from theory_sim.instances import counterexample_instance
from theory_sim.metrics import reward_variance
from theory_sim.problem import Problem
from theory_sim.rewards.counterexamples import _check_horizon
from theory_sim.stories._common import _fraction
from theory_sim.theorems import (
    Check,
    check_theorem_5,
)


@dataclasses.dataclass(frozen=True)
class Theorem5Story:
    """Theorem 5 across T, and both models' ground-truth curves at one T.

    Attributes:
        rows: one dict per T: T, t_slow, slow_bound (lower), t_fast, fast_bound (upper), the two
            models' accuracies and Var0.
        slow, fast: :class:`~theory_sim.Trajectory` under the accurate-slow and inaccurate-fast
            models at ``curve_T`` (E r_G in ``expected_gt``).
        target: E_pi0 r_G + gamma, the level t_gamma waits for.
        checks: the :class:`~theory_sim.theorems.Check` rows behind ``rows``.
    """

    rows: list[dict]
    slow: Trajectory
    fast: Trajectory
    curve_T: float
    gamma: float
    target: float
    checks: list[Check]


def theorem_5_story(
    horizons=(10.0, 100.0, 1000.0), *, curve_T: float = 100.0, seed: int = 0
) -> Theorem5Story:
    """Theorem 5 of arXiv 2503.15477 on :func:`counterexample_instance` (lambda = 0, gamma = 0.3
    of the headroom max r_G - E_pi0 r_G): the perfectly accurate model's t_gamma grows like T while
    the inaccurate model's stays below a T-free bound."""
    curve_T = _check_horizon(curve_T, "curve_T")
    if isinstance(horizons, str) or not np.iterable(horizons) or not len(horizons):
        raise ValueError(f"`horizons` must be a non-empty list of T values; got {horizons!r}.")
    horizons = [_check_horizon(T, "horizons") for T in horizons]
    probs, r_gt = counterexample_instance(seed)
    gamma = 0.3 * float(r_gt.max() - probs @ r_gt)
    rows, checks = [], []
    for horizon in horizons:
        found = check_theorem_5(probs, r_gt, gamma, horizon, 0.0)
        checks += found
        by = {c.claim.removeprefix("Theorem 5: "): c for c in found}
        fast = rewards.theorem_5_models(probs, r_gt, gamma, horizon).fast
        rows.append(
            {
                "T": float(horizon),
                "t_slow": by["slow model time"].measured,
                "slow_bound": by["slow model time"].bound,
                "t_fast": by["fast model time"].measured,
                "fast_bound": by["fast model time"].bound,
                "accuracy_slow": by["slow model accuracy"].measured,
                "accuracy_fast": by["fast model accuracy"].measured,
                "var0_slow": by["slow model Var0"].measured,
                "var0_fast": float(reward_variance(probs, fast)),  # not one of the checks
            }
        )
    models = rewards.theorem_5_models(probs, r_gt, gamma, curve_T)
    known = {r["T"]: r["t_slow"] for r in rows}
    t_slow = known.get(float(curve_T)) or time_to_gain(
        Problem(np.log(probs), models.slow, r_gt), gamma
    )
    t_max = 10.0 * max(t_slow, 1.0)
    slow, fast = (
        gradient_flow(Problem(np.log(probs), r_rm, r_gt), t_max)
        for r_rm in (models.slow, models.fast)
    )
    return Theorem5Story(rows, slow, fast, curve_T, gamma, float(probs @ r_gt) + gamma, checks)


@dataclasses.dataclass(frozen=True)
class AccuracyVarianceGrid:
    """t_gamma over reward models with accuracy and Var0 set independently.

    Attributes:
        accuracies: [A] exact uniform-pair accuracies (attainable values nearest the request).
        variances: [V] Var_pi0 r_RM.
        t_gamma: [A, V] time for E r_G to gain gamma (inf: never, the model's optimum is worse).
        gamma: the gain.
    """

    accuracies: np.ndarray
    variances: np.ndarray
    t_gamma: np.ndarray
    gamma: float

    def rows(self) -> list[dict]:
        return [
            {"accuracy": float(a), "var0": float(v), "t_gamma": float(self.t_gamma[i, j])}
            for i, a in enumerate(self.accuracies)
            for j, v in enumerate(self.variances)
        ]


def accuracy_variance_grid(
    *,
    num_accuracies: int = 6,
    num_variances: int = 7,
    num_outputs: int = 8,
    gamma_fraction: float = 0.2,
    seed: int = 0,
) -> AccuracyVarianceGrid:
    """t_gamma on a grid of the accuracy-variance plane (Theorem 5's message, beyond its pair).

    One prompt, pi_0 ~ Dirichlet(1) and r_G ~ U[-1, 1] (seeded, :func:`counterexample_instance`);
    accuracies evenly spaced from 0.5 to 1 (each rounded to the nearest attainable value), Var0
    log-spaced from 1e-5 up to half the largest variance every ranking can reach under pi_0;
    each reward model is :func:`theory_sim.rewards.accuracy_sweep`'s (a ranking with the
    accuracy, then a monotone map to the variance). gamma = ``gamma_fraction`` (max r_G -
    E_pi0 r_G); lambda = 0.
    """
    num_accuracies = check_int("num_accuracies", num_accuracies, 2)
    num_variances = check_int("num_variances", num_variances, 2)
    gamma_fraction = _fraction("gamma_fraction", gamma_fraction)
    probs, r_gt = counterexample_instance(seed, num_outputs)
    gamma = gamma_fraction * float(r_gt.max() - probs @ r_gt)
    wanted = np.linspace(0.5, 1.0, num_accuracies)
    accs = np.unique([rewards.nearest_attainable_accuracy(r_gt, a) for a in wanted])
    rankings = [rewards.ranking_with_accuracy(r_gt, a) for a in accs]
    ceiling = min(rewards.max_monotone_variance(probs, r) for r in rankings)
    variances = np.geomspace(1e-5, 0.5 * ceiling, num_variances)
    times = np.empty((len(accs), num_variances))
    for i, ranking in enumerate(rankings):
        for j, v in enumerate(variances):
            r_rm = rewards.with_variance(probs, ranking, v)
            times[i, j] = time_to_gain(Problem(np.log(probs), r_rm, r_gt), gamma, t_max=1e9)
    return AccuracyVarianceGrid(accs, variances, times, gamma)
