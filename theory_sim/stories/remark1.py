"""Notebook 08: Remark 1 of arXiv 2503.15477. Does the Jacobian grow along a neural flow?

Theorem 4 bounds t_gamma with J, the supremum of the logit map's Jacobian norm along the flow; the
paper leaves open whether J grows enough to offset a low reward variance. Flows of neural policies
on the flat-landscape families, with J_t measured along each.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from theory_sim._validation import check_float_scalar, check_int
from theory_sim.instances import neural_policy
from theory_sim.metrics import reward_variance
from theory_sim.policies import Autoregressive, start_at
from theory_sim.problem import Problem
from theory_sim.stories.landscape import _concentrated, flat_landscape
from theory_sim.theorems import (
    fit_exponent,
)

# (kind, width, depth): the neural parameterisations of :func:`remark_1` (transformers with
# width // 4 heads, MLPs over seeded features). Each new shape costs about a minute of
# compilation on two cores; these two are also the neural instances of ``theory-sim check``.
REMARK_1_MODELS = (("transformer", 8, 1), ("mlp", 16, 2))


REMARK_1_SCALES = (0.3, 3.0)


@dataclasses.dataclass(frozen=True)
class Remark1:
    """Remark 1 of arXiv 2503.15477 put to the test: t_gamma against Var0 for neural policies.

    Attributes:
        rows: one per (model, init scale, eps): "model", "init_scale", "eps", "var0",
            "t_gamma", "theorem_4_bound" (with J_{t_gamma}), "J_0", "J_t_gamma", "J_ratio"
            (J_{t_gamma} / J_0), "fit_residual" (of start_at).
        fits: one per (model, init scale): "model", "init_scale", "slope", "stderr", and the
            largest "J_ratio" seen; then the tabular and autoregressive slopes of
            :func:`flat_landscape` on the same family for comparison.
    """

    rows: list
    fits: list

    def series(self, model: str, init_scale: float) -> dict:
        """The rows of one (model, init scale) as arrays, in the order of ``eps``."""
        rows = [r for r in self.rows if r["model"] == model and r["init_scale"] == init_scale]
        return {k: np.array([r[k] for r in rows]) for k in rows[0] if k != "model"}


def remark_1(
    models=REMARK_1_MODELS,
    init_scales=REMARK_1_SCALES,
    *,
    num_points: int = 4,
    decades: float = 3.0,
    seed: int = 0,
) -> Remark1:
    """Does the Jacobian of a neural policy grow enough to offset a small reward variance?

    Remark 1 of arXiv 2503.15477 leaves it open; here it is measured exactly. The family is
    :func:`flat_landscape`'s "concentration": eight outputs (the V = 2, L = 3 sequences for a
    transformer, eight outputs with seeded features for an MLP), r_RM = r_G = +1 on output 0 and
    -1 elsewhere, pi_0 with mass eps on output 0 (per-token mass eps^(1/3) on token 0) fitted by
    :func:`~theory_sim.start_at`, eps from 0.1 down ``decades`` decades, lambda = 0, gamma = 0.5.
    For each model and init scale: t_gamma against Var0 = Var_{pi_0} r, the Theorem 4 bound with
    J_{t_gamma} (the sup of J_t over [0, t_gamma], :func:`~theory_sim.theorems.check_theorem_4`),
    J_{t_gamma} / J_0, and the fitted slope of log t_gamma on log Var0 beside the tabular and
    autoregressive ones.
    """
    from theory_sim.theorems import check_theorem_4

    num_points = check_int("num_points", num_points, 3)
    decades = check_float_scalar("decades", decades, positive=True)
    models = tuple(models)
    if not models or not all(
        isinstance(m, tuple) and len(m) == 3 and m[0] in ("transformer", "mlp") for m in models
    ):
        raise ValueError(
            "`models` must be a non-empty sequence of (kind, width, depth) with kind "
            f"'transformer' or 'mlp'; got {models!r}."
        )
    init_scales = tuple(init_scales)
    if not init_scales:
        raise ValueError("`init_scales` must hold at least one init scale.")
    target = np.full(8, -1.0)
    target[0] = 1.0
    rows, fits = [], []
    for kind, width, depth in models:
        label = f"{kind} w={width} d={depth}"
        for scale in init_scales:
            policy = neural_policy(kind, width, depth, float(scale), seed)
            part = []
            for k in range(num_points):
                eps = 0.1 * 10.0 ** (-decades * k / (num_points - 1))
                params, residual = start_at(policy, _concentrated(Autoregressive(2, 3), eps, 8))
                problem = Problem(params, target, policy=policy)
                var0 = float(reward_variance(np.exp(problem.ref_log_probs[0]), target))
                row = check_theorem_4(problem, 0.5, t_max=1e10)
                part.append(
                    {
                        "model": label,
                        "init_scale": float(scale),
                        "eps": eps,
                        "var0": var0,
                        "t_gamma": row.measured,
                        "theorem_4_bound": row.bound,
                        "J_0": row.details["jacobian_0"],
                        "J_t_gamma": row.details["jacobian"],
                        "J_ratio": row.details["jacobian"] / row.details["jacobian_0"],
                        "fit_residual": residual,
                    }
                )
            fit = fit_exponent([r["var0"] for r in part], [r["t_gamma"] for r in part])
            fits.append(
                {
                    "model": label,
                    "init_scale": float(scale),
                    "slope": fit.slope,
                    "stderr": fit.stderr,
                    "max J_ratio": max(r["J_ratio"] for r in part),
                }
            )
            rows.extend(part)
    for name in ("tabular", "autoregressive"):
        land = flat_landscape(name, "concentration", num_points=num_points, decades=decades)
        fits.append(
            {
                "model": name,
                "init_scale": math.nan,
                "slope": land.fit.slope,
                "stderr": land.fit.stderr,
                "max J_ratio": 1.0,
            }
        )
    return Remark1(rows, fits)
