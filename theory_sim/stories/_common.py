"""What the stories share: the smoke sizes of ``reproduce --quick`` and rank correlations.

Pearson's r, Spearman's rho (Pearson on average ranks) and Kendall's tau-b, written out so that
a nan among the values gives a nan, as scipy.stats does.
"""

from __future__ import annotations

import numpy as np

from theory_sim._validation import check_float_scalar

# Smoke sizes: what `reproduce --quick` runs (the notebooks run the full defaults).
QUICK = {
    "flat_landscape": {"num_points": 5, "decades": 4.0},
    "theorem_5_story": {"horizons": (10.0, 100.0)},
    "accuracy_variance_grid": {"num_accuracies": 3, "num_variances": 3},
    "teacher_student": {"num_policies": 3, "num_models": 4},
    "section_4_1": {"num_prompts": 6, "num_outputs": 8, "seeds": (0, 1), "rloo_steps": 50},
    "estimator_snr_study": {"good_masses": (1e-1, 1e-2, 1e-3), "num_estimates": 300},
    "remark_1": {"widths": (8, 16), "depths": (1,), "seeds": (0, 1), "num_points": 4, "decades": 2},
    "validation_study": {"replications": 10, "seeds": (0, 1), "error_replications": 3},
    "verifier_phases": {"rates": (0.0, 0.3, 0.6), "horizon": 5.0},
    "group_exponents": {"num_points": 3, "decades": 1.0},
    "step_thresholds": {
        "lengths": (4, 6, 8),
        "successes": (0.1, 0.4, 0.8),
        "sampled_lengths": (4, 8),
        "num_runs": 32,
    },
}


def _fraction(name: str, value) -> float:
    value = check_float_scalar(name, value, positive=True)
    if value > 1:
        raise ValueError(f"`{name}` must be in (0, 1]; got {value}.")
    return value


def _pearson(x, y) -> float:
    """Pearson's r: the cosine of the centred x and y."""
    x, y = (np.asarray(v, np.float64) - np.mean(v) for v in (x, y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.clip(x @ y / np.sqrt((x @ x) * (y @ y)), -1.0, 1.0))


def _ranks(x) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank: #{x_j < x_i} + (#{x_j = x_i} + 1) / 2; all nan
    if any x is nan, so that rho is nan (scipy's default)."""
    x = np.asarray(x, np.float64)
    ranks = np.sum(x[None, :] < x[:, None], axis=1) + (np.sum(x[None, :] == x[:, None], 1) + 1) / 2
    return ranks if not np.isnan(x).any() else np.full(len(x), np.nan)


def _spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the ranks."""
    return _pearson(_ranks(x), _ranks(y))


def _kendall(x, y) -> float:
    """Kendall's tau-b: sum s_x s_y / sqrt(sum s_x^2 sum s_y^2) over pairs i < j, with
    s_x = sign(x_i - x_j) (ties give 0 and leave the denominator)."""
    x, y = (np.asarray(v, np.float64) for v in (x, y))
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(sx @ sy / np.sqrt((sx @ sx) * (sy @ sy)))
