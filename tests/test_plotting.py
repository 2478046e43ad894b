"""Every figure theory_sim draws, on small synthetic results, read as a reader would: a title, axis
labels, legends at a readable size that cover no data, and no two pieces of text on top of each
other (tick labels of one axis, titles, axis and colour-bar labels, legends, captions)."""

import itertools
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle

from theory_sim import plotting
from theory_sim.stories import FlatLandscape, Remark1
from theory_sim.theorems import Check, ExponentFit

MIN_LEGEND_POINTS = 7.0


def _points(ax) -> np.ndarray:
    """Display coordinates of every data point drawn in ``ax`` (markers, line vertices, bars)."""
    found = []
    for line in ax.get_lines():
        x, y = (np.asarray(v, float) for v in line.get_data())
        if x.size:
            found.append(ax.transData.transform(np.column_stack([x, y])))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            found.append(coll.get_offset_transform().transform(coll.get_offsets()))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_height() > 0:
            box = patch.get_window_extent()
            found.append(np.array([[box.x0, box.y1], [box.x1, box.y1]]))  # a bar's top
    if not found:
        return np.zeros((0, 2))
    pts = np.concatenate(found)
    return pts[np.isfinite(pts).all(axis=1)]


def _texts(fig, renderer):
    """(name, extent) of every visible piece of text that must not overlap another."""
    out = []
    for i, ax in enumerate(fig.axes):
        for name, text in (("title", ax.title), ("xlabel", ax.xaxis.label),
                           ("ylabel", ax.yaxis.label)):  # fmt: skip
            if text.get_visible() and text.get_text():
                out.append((f"axes {i} {name}", text.get_window_extent(renderer)))
        legend = ax.get_legend()
        if legend is not None:
            out.append((f"axes {i} legend", legend.get_window_extent(renderer)))
    for j, text in enumerate(fig.texts):
        if text.get_text():
            out.append((f"caption {j}", text.get_window_extent(renderer)))
    return out


def _check(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    data_axes = [ax for ax in fig.axes if len(_points(ax)) or ax.images]
    assert data_axes, "the figure draws nothing"
    for ax in data_axes:
        assert ax.get_title() or fig._suptitle, "an axes without a title"
        if not ax.images:  # a heat map's axes are labelled by its ticks and colour bar
            assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        legend = ax.get_legend()
        if legend is not None:
            sizes = [t.get_fontsize() for t in legend.get_texts()]
            assert min(sizes) >= MIN_LEGEND_POINTS, (ax.get_title(), sizes)
            box = legend.get_window_extent(renderer)
            for other in data_axes:
                pts = _points(other)
                inside = (
                    (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1)
                    & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
                )  # fmt: skip
                assert not inside.any(), f"the legend of {ax.get_title()!r} covers data"
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels()
                     if t.get_visible() and t.get_text()]  # fmt: skip
            for a, b in itertools.pairwise(boxes):
                assert not a.overlaps(b), f"tick labels collide on {ax.get_title()!r}"
    texts = _texts(fig, renderer)
    for i, (name_a, a) in enumerate(texts):
        for name_b, b in texts[i + 1 :]:
            assert not a.overlaps(b), f"{name_a} overlaps {name_b}"
    plt.close(fig)


def _checks():
    rng = np.random.default_rng(0)
    rows = []
    for kind in ("Tabular", "Autoregressive", "Transformer"):
        for _ in range(6):
            bound = 10.0 ** rng.uniform(-6, 1)
            rows.append(Check("Theorem 4", "i", bound * 10 ** rng.uniform(0, 4), bound, ">=",
                              True, {"policy": kind}))  # fmt: skip
    rows.append(Check("Theorem 4", "never", float("inf"), 0.3, ">=", True, {"policy": "Tabular"}))
    return rows


def _fit(slope: float, points: int = 7) -> ExponentFit:
    var0 = np.geomspace(1e-6, 1e-1, points)
    t = 3.0 * var0**slope
    return ExponentFit(slope, 1e-3, float(np.log(3.0)), var0, t, 5.0)


def _landscape(policy: str, family: str, slope: float) -> FlatLandscape:
    fit = _fit(slope)
    tabular = policy == "tabular"
    return FlatLandscape(
        policy, family, fit.var0, fit.t_gamma, np.full(7, 0.5),
        0.1 * fit.var0**-0.5 if tabular else np.full(7, np.nan), 1e-3 * fit.var0 ** (-1 / 3), fit,
    )  # fmt: skip


def _trajectory():
    ts = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 60)])
    rise = 1 / (1 + 1 / ts.clip(1e-12))
    return SimpleNamespace(ts=ts, expected_rm=-0.1 + 0.8 * rise, expected_gt=0.05 - 0.8 * rise)


def _sweep_rows():
    rng = np.random.default_rng(1)
    return [
        {"policy": p, "reward_model": m, "kl_coef": kl, "horizon": 10.0,
         "var_rm": 10 ** rng.uniform(-4, 0), "gain_gt": rng.uniform(-0.2, 1),
         "accuracy": rng.uniform(0.6, 1), "t_gamma": 10 ** rng.uniform(0, 3)}
        for p in ("uniform", "peaked") for m in ("ground truth", "flat", "noisy")
        for kl in (0.0, 0.1) for _ in range(3)
    ]  # fmt: skip


def _snr_rows():
    return [
        {"scale": s, "eps": e, "exact_norm": s * e, "reinforce": 3 * e**0.5,
         "rloo": 2.5 * e**0.5, "grpo": 2 * e**0.6}
        for s in (1.0, 1e-3) for e in (1e-3, 1e-2, 1e-1)
    ]  # fmt: skip


def _remark_1():
    rows, fits, paths = [], [], {}
    for param, slope in (("ntk", -1.0), ("mean_field", -0.98)):
        for depth in (1, 2):
            for width in (8, 64):
                for lam in (0.0, 0.01):
                    fits.append(
                        {
                            "parameterisation": param,
                            "depth": depth,
                            "width": width,
                            "kl_coef": lam,
                            "slope": slope,
                            "slope_low": slope - 0.02,
                            "slope_high": slope + 0.02,
                            "J_ratio_median": 1 + 8 / width,
                            "J_ratio_min": 1 + 4 / width,
                            "J_ratio_max": 1 + 16 / width,
                        }
                    )
                    ts = np.geomspace(1e-3, 10.0, 20)
                    paths[(param, depth, width, lam)] = (np.r_[0.0, ts], 1 + np.r_[0.0, ts] / 40)
                    for eps in (1e-3, 1e-2, 1e-1):
                        var0 = 4 * eps * (1 - eps)
                        rows.append(
                            {
                                "parameterisation": param,
                                "depth": depth,
                                "width": width,
                                "kl_coef": lam,
                                "var0": var0,
                                "t_gamma": 2 * var0**slope,
                                "theorem_4_bound": 1e-3 * var0 ** (-1 / 3),
                            }
                        )
    return Remark1(rows, fits, {0.0: -1.0, 0.01: -1.0}, paths, 1.0)  # fmt: skip


def _theorem_5():
    rows = [{"T": T, "t_slow": 15.0 * T, "slow_bound": 0.25 * T, "t_fast": 9.7,
             "fast_bound": 3400.0} for T in (10.0, 100.0, 1000.0)]  # fmt: skip
    slow, fast = _trajectory(), _trajectory()
    fast.expected_gt = 0.86 * (1 - 1 / (1 + fast.ts / 10))
    slow.expected_gt = 0.84 * (1 - 1 / (1 + slow.ts / 1500))
    return SimpleNamespace(rows=rows, slow=slow, fast=fast, target=0.25, curve_T=100.0)


def _section_4_1():
    models = ["BT 100% on-policy", "BT 0% on-policy", "accurate, low variance", "ground truth"]
    table = [{"reward model": m, "variance": 0.55 + 0.05 * i, "variance sd": 0.05,
              "ground-truth increase": 0.10 + 0.01 * i, "ground-truth increase sd": 0.02}
             for i, m in enumerate(models)]  # fmt: skip
    times = np.concatenate([[0.0], np.geomspace(1e-2, 12, 40)])
    curves = {m: (0.01 + 0.001 * i) * times for i, m in enumerate(models)}
    return SimpleNamespace(table_1=table, times=times, curves=curves)


# the results the other figures draw, also used by tests/test_garbage.py
FIGURES_INPUTS = {
    "teacher_student": SimpleNamespace(
        gain=np.random.default_rng(2).uniform(-0.2, 0.6, (3, 8)),
        variance=10 ** np.random.default_rng(3).uniform(-1.3, -0.3, (3, 8)),
        models=[f"noisy r_G, noise {n:.2f}" for n in np.linspace(0.1, 1.0, 8)],
        horizon=5.0,
    ),
    "theorem_6": SimpleNamespace(times=np.array([[2.0, 346.0], [345.0, 2.9]])),
    "accuracy_variance": SimpleNamespace(
        accuracies=np.array([0.5, 0.75, 1.0]),
        variances=np.array([1e-5, 2e-3, 0.5]),
        t_gamma=np.array([[2e3, 1e2, np.inf], [1.5e3, 1e2, 8.0], [1e3, 60.0, 5.0]]),
    ),
    "tightness": [
        SimpleNamespace(claim=c, slack=s, violated=False, by_size={"Y=2": s, "Y=3": 2 * s})
        for c, s in (("Lemma 8", 1.0), ("Theorem 5: fast model time", 10.9), ("Theorem 4", 1.4e3))
    ],
}

FIGURES = {
    "remark_1": lambda: plotting.plot_remark_1(_remark_1()),
    "remark_1_paths": lambda: plotting.plot_remark_1_paths(_remark_1()),
    "theorem_5": lambda: plotting.plot_theorem_5(_theorem_5()),
    "section_4_1": lambda: plotting.plot_section_4_1(_section_4_1()),
    "bound_check": lambda: plotting.plot_bound_check(_checks()),
    "reward_curves": lambda: plotting.plot_reward_curves(_trajectory()),
    "flat_landscape": lambda: plotting.plot_flat_landscape(
        [
            _landscape(p, f, s)
            for p, f, s in (
                ("tabular", "reward_scale", -0.5),
                ("tabular", "concentration", -1.0),
                ("autoregressive", "reward_scale", -0.5),
                ("autoregressive", "concentration", -0.9),
            )
        ]
    ),
    "exponent_fits": lambda: plotting.plot_exponent_fits(
        {"tabular, reward_scale": _fit(-0.5), "autoregressive, concentration": _fit(-0.9)}
    ),
    "snr_study": lambda: plotting.plot_snr_study(_snr_rows()),
    "sweep": lambda: plotting.plot_sweep(_sweep_rows()),
    **{
        name: (lambda name=name: getattr(plotting, f"plot_{name}")(FIGURES_INPUTS[name]))
        for name in FIGURES_INPUTS
    },
}


@pytest.mark.parametrize("name", FIGURES)
def test_figure_reads(name):
    _check(FIGURES[name]())


def test_the_reading_catches_a_legend_over_data_and_colliding_labels():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50), "o", label="points")
    ax.set(title="t", xlabel="x", ylabel="y")
    ax.legend(loc="center", fontsize=8)
    with pytest.raises(AssertionError, match="covers data"):
        _check(fig)
    fig, ax = plt.subplots(figsize=(1.5, 3))
    ax.plot([1e-6, 1e3], [1, 2])
    ax.set(title="t", xlabel="x", ylabel="y", xscale="log")
    ax.set_xticks(10.0 ** np.arange(-6, 4), [f"{v:.0e}" for v in 10.0 ** np.arange(-6, 4)])
    with pytest.raises(AssertionError, match="tick labels collide"):
        _check(fig)
