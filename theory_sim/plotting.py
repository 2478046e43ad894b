"""Matplotlib figures from results: every function accepts an optional ``ax`` and returns the
figure; nothing here computes a theoretical quantity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "plot_bound_check",
    "plot_exponent_fits",
    "plot_reward_curves",
    "plot_snr_study",
    "plot_sweep",
]


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
        return fig, ax
    return ax.figure, ax


def plot_bound_check(checks: Sequence, ax=None, title: str | None = None):
    """Measured t_gamma against its lower bound on log-log axes; a check holds above the diagonal.

    Checks whose target was not reached (t_gamma = inf) are drawn at the top edge as triangles.
    """
    fig, ax = _axes(ax)
    rows = [c for c in checks if c.relation == ">=" and np.isfinite(c.bound) and c.bound > 0]
    if not rows:
        ax.text(0.5, 0.5, "no finite bounds", ha="center", transform=ax.transAxes)
        return fig
    bound = np.array([c.bound for c in rows])
    measured = np.array([c.measured for c in rows])
    finite = np.isfinite(measured)
    top = max(measured[finite].max() if finite.any() else bound.max(), bound.max()) * 10
    lo = min(bound.min(), measured[finite].min() if finite.any() else bound.min()) / 3
    ax.plot([lo, top], [lo, top], color="0.4", lw=1, label="measured = bound")
    ax.scatter(bound[finite], measured[finite], s=18, color="tab:blue", label="measured t_gamma")
    if (~finite).any():
        ax.scatter(
            bound[~finite],
            np.full((~finite).sum(), top),
            marker="^",
            s=22,
            color="tab:orange",
            label="not reached (inf)",
        )
    failed = np.array([not c.holds for c in rows])
    if failed.any():
        ax.scatter(
            bound[failed],
            np.where(finite, measured, top)[failed],
            s=60,
            facecolors="none",
            edgecolors="red",
            label="fails",
        )
    ax.set(
        xscale="log", yscale="log", xlabel="bound", ylabel="measured", title=title or rows[0].claim
    )
    ax.legend(fontsize=8)
    return fig


def plot_reward_curves(traj, prompt: int = 0, ax=None):
    """Expected proxy and ground-truth reward against time (log axis) for one prompt."""
    fig, ax = _axes(ax)
    ts = np.asarray(traj.ts)
    keep = ts > 0
    for series, label in ((traj.expected_rm, "E r_RM"), (traj.expected_gt, "E r_G")):
        values = series if series.ndim == 1 else series[:, prompt]
        ax.plot(ts[keep], values[keep], label=label)
    ax.set(xscale="log", xlabel="time t", ylabel="expected reward")
    ax.legend()
    return fig


def plot_exponent_fits(fits: dict, ax=None):
    """t_gamma against Var0 on log-log axes for each labelled :class:`ExponentFit`, with its line.

    The legend gives each fitted slope and its standard error; the bounds' exponents are -1/2
    (Proposition 3, tabular) and -1/3 (Theorem 4, autoregressive).
    """
    fig, ax = _axes(ax)
    for label, fit in fits.items():
        (points,) = ax.plot(
            fit.var0,
            fit.t_gamma,
            "o",
            ms=4,
            label=f"{label}: slope {fit.slope:.3f} ± {fit.stderr:.1g}",
        )
        grid = np.geomspace(fit.var0.min(), fit.var0.max(), 50)
        ax.plot(grid, np.exp(fit.intercept) * grid**fit.slope, color=points.get_color(), lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="Var0 (reward variance under pi_0)",
        ylabel="t_gamma",
        title="Time to gain against initial reward variance",
    )
    ax.legend(fontsize=7)
    return fig


def plot_snr_study(rows, axes=None):
    """Estimators' SNR and the exact gradient norm against Var0 (log-log), one line per reward
    scale: rows from :func:`theory_sim.experiments.estimator_snr_study`."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    else:
        fig = axes[0].figure
    for scale in sorted({r["scale"] for r in rows}, reverse=True):
        sel = sorted((r for r in rows if r["scale"] == scale), key=lambda r: r["var0"])
        var0 = [r["var0"] for r in sel]
        axes[0].plot(var0, [r["exact_norm"] for r in sel], "o-", label=f"reward scale {scale:g}")
        for method, marker in (("reinforce", "s"), ("rloo", "o"), ("grpo", "^")):
            axes[1].plot(
                var0,
                [r[method] for r in sel],
                marker=marker,
                ls="-",
                label=f"{method}, scale {scale:g}",
            )
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="Var0",
        ylabel="||grad phi||",
        title="Exact gradient norm",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="Var0",
        ylabel="SNR of the estimate",
        title="Estimator signal-to-noise",
    )
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def _by_label(rows, key: str) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    return groups


def plot_sweep(rows, horizon: float | None = None, axes=None):
    """The standard figures of a sweep (rows of :func:`theory_sim.sweep.load_results`).

    Three panels, one colour per reward model and one marker per initial policy: the ground-truth
    gain at ``horizon`` (default the largest) against Var_pi0 r_RM and against accuracy, and
    t_gamma against Var_pi0 r_RM on log-log axes (cells that never reach the gain are left out).
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    else:
        fig = axes[0].figure
    if not rows:
        raise ValueError("`rows` is empty: nothing to plot.")
    horizons = sorted({r["horizon"] for r in rows})
    horizon = horizons[-1] if horizon is None else horizon
    if horizon not in horizons:
        raise ValueError(f"`horizon` must be one of {horizons}; got {horizon!r}.")
    at = [r for r in rows if r["horizon"] == horizon]
    markers = dict(zip(_by_label(at, "policy"), "os^Dv<>ph*", strict=False))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (model, sel) in enumerate(_by_label(at, "reward_model").items()):
        colour = colours[k % len(colours)]
        for policy, group in _by_label(sel, "policy").items():
            var = np.array([r["var_rm"] for r in group])
            gain = np.array([r["gain_gt"] for r in group])
            acc = np.array([r["accuracy"] for r in group])
            time = np.array([r["t_gamma"] for r in group])
            style = {"color": colour, "marker": markers.get(policy, "o"), "s": 22, "alpha": 0.8}
            axes[0].scatter(
                var, gain, label=model if policy == next(iter(markers)) else None, **style
            )
            axes[1].scatter(acc, gain, **style)
            finite = np.isfinite(time)
            axes[2].scatter(var[finite], time[finite], **style)
    for policy, marker in markers.items():
        axes[1].scatter([], [], marker=marker, color="0.3", label=f"pi_0: {policy}")
    axes[0].set(xscale="log", xlabel="Var_pi0 r_RM", ylabel=f"ground-truth gain at T={horizon:g}")
    axes[1].set(xlabel="accuracy (uniform pairs)", ylabel=f"ground-truth gain at T={horizon:g}")
    axes[2].set(xscale="log", yscale="log", xlabel="Var_pi0 r_RM", ylabel="t_gamma")
    axes[0].set_title("Gain against reward variance")
    axes[1].set_title("Gain against accuracy")
    axes[2].set_title("Time to gain against reward variance")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return fig
