"""Notebook 11, last part: a reward error that helps (arXiv 2604.25872, Section 3.3), exactly.

The paper's controlled experiment (:func:`theory_sim.rewards.beneficial_error_instance`): five
outputs, y* best (r_G = 1) but unlikely (pi_0(y*) = p*), y_med mediocre (0.8) and likely (0.5),
three bad ones (-1); the proxy ranks y_med with the bad outputs. The paper trains with 50,000
exact-gradient steps of size 0.1 and shows the proxy-trained policy ahead in ground-truth reward.
Here the same comparison is made as times: t_target, the first time E_pi r_G >= target, on the
exact flow (to 1e-6) and on Euler's path with the paper's step (inf where the paper's 50,000
steps do not get there), with the harm-aware metrics that explain it: every error of the proxy
has its rejected output below E_pi0 r_RM, so HAcc-W = 1 while Acc-W is 0.17 to 0.42.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from theory_sim._validation import as_float_array, check_float_scalar
from theory_sim.flow import gradient_flow, time_to_gain
from theory_sim.metrics import harm_aware_accuracy
from theory_sim.problem import Problem
from theory_sim.rewards import beneficial_error_instance
from theory_sim.theorems import check_beneficial_error

__all__ = ["BENEFICIAL_STAR_PROBS", "BeneficialErrors", "beneficial_errors"]

# pi_0(y*) of the paper's three runs
BENEFICIAL_STAR_PROBS = (0.05, 0.1, 0.15)


@dataclasses.dataclass(frozen=True)
class BeneficialErrors:
    """Training on r_G against training on the erring proxy, per pi_0(y*).

    Attributes:
        rows: per pi_0(y*): E_pi0 r_G; the proxy's Acc-W, HAcc-W and HAcc under pi_0;
            t_target under r_G and under r_RM on the exact flow and on Euler's path with step
            ``step`` up to ``horizon`` (inf: not reached), and the exact flow's speed-up
            t(r_G) / t(r_RM).
        times: [K] saved times; curves: {(pi_0(y*), "r_G" or "r_RM"): [K] E_pi r_G along the
            exact flow trained on that reward}.
        target, horizon, step: the settings; mediocre: y_med's ground-truth reward (0.8), the
            level a policy trained on r_G stalls at.
    """

    rows: list[dict]
    times: np.ndarray
    curves: dict
    target: float
    horizon: float
    step: float
    mediocre: float


def beneficial_errors(
    star_probs=BENEFICIAL_STAR_PROBS,
    *,
    target: float = 0.9,
    horizon: float = 5000.0,
    step: float = 0.1,
) -> BeneficialErrors:
    """The controlled experiment of arXiv 2604.25872 for each pi_0(y*) in ``star_probs``
    (lambda = 0): ground-truth curves to ``horizon`` and the times to reach E r_G = ``target``.
    The defaults are the paper's: three runs, 50,000 steps of size 0.1 (t = 5,000)."""
    stars = as_float_array("star_probs", star_probs, ndim=(1,))
    if stars.size == 0 or np.any(stars <= 0.0) or np.any(stars >= 0.5):
        raise ValueError(f"`star_probs` must be probabilities in (0, 0.5) (y_med holds 0.5); got "
                         f"{stars.tolist()}.")  # fmt: skip
    target = check_float_scalar("target", target)
    if not 0.8 < target < 1.0:
        raise ValueError(f"`target` must lie in (0.8, 1) (above y_med's reward, below y*'s); "
                         f"got {target:g}.")  # fmt: skip
    horizon = check_float_scalar("horizon", horizon, positive=True)
    step = check_float_scalar("step", step, positive=True)
    if horizon / step > 1e7:
        raise ValueError(f"`horizon` / `step` = {horizon / step:.3g} Euler steps per run; the "
                         f"limit is 1e7.")  # fmt: skip
    times = np.concatenate([[0.0], np.geomspace(horizon * 1e-5, horizon, 80)])
    rows, curves = [], {}
    for star in stars.tolist():
        probs, r_gt, r_rm = beneficial_error_instance(star)
        check = check_beneficial_error(probs, r_gt, r_rm, target)  # both exact-flow times
        start = check.details["E_pi0 r_G"]
        row = {"pi0(y*)": star, "E_pi0 r_G": start, "Acc-W": check.details["Acc-W"],
               "HAcc-W": check.details["HAcc-W"],
               "HAcc": float(harm_aware_accuracy(probs, r_rm, r_gt, weighted=False))}  # fmt: skip
        for name, reward, exact in (("r_G", r_gt, check.bound), ("r_RM", r_rm, check.measured)):
            problem = Problem(np.log(probs), reward, r_gt)
            row[f"t {name}"] = exact
            row[f"t {name} (Euler)"] = time_to_gain(problem, target - start, t_max=horizon,
                                                    method="euler", dt=step)  # fmt: skip
            traj = gradient_flow(problem, horizon, save_ts=times)
            curves[star, name] = np.asarray(traj.expected_gt).ravel()
        row["speed-up"] = check.details["speed-up"]
        rows.append(row)
    mediocre = float(r_gt[1])  # y_med's reward, the same in every instance
    return BeneficialErrors(rows, times, curves, target, horizon, step, mediocre)
