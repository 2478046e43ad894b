"""Figures of the Remark 1 study (:func:`~theory_sim.stories.remark_1`, notebook 08): the fitted
slope of log t_gamma on log Var0 and the growth of J against width, Theorem 4's bound against the
measured times, and J_t / J_0 along representative flows."""

from __future__ import annotations

import numpy as np

from theory_sim.plotting._common import (
    LEGEND_SIZE,
    T_GAMMA,
    VAR0,
    _inputs,
    _legend_below,
    _panels,
    _plain_log_ticks,
)

_PARAMS = {"ntk": ("NTK", "tab:blue"), "mean_field": ("mean field (muP)", "tab:red")}
_DEPTH_STYLE = {1: "-", 2: "--", 3: ":"}


def _label(param: str) -> tuple[str, str]:
    return _PARAMS.get(param, (param, "0.3"))


@_inputs("study", "object", "rows", "fits", "references")
def plot_remark_1(study, axes=None):
    """Three panels: the slope of log t_gamma on log Var0 against width (95 % interval over
    seeds; filled markers lambda = 0, open markers lambda > 0; grey lines the tabular flow's
    slopes); max_t J_t / J_0 up to t_gamma against width (median over seeds, bars from the
    smallest to the largest seed); and the measured t_gamma (median over seeds) with Theorem 4's
    bound (dotted) against Var0 at the widest width, lambda = 0."""
    fig, (left, middle, right) = _panels(axes, 3)
    fits = study.fits
    lams = sorted({f["kl_coef"] for f in fits})
    for (param, depth), group in _groups(fits).items():
        name, colour = _label(param)
        style = _DEPTH_STYLE.get(depth, "-.")
        for i, lam in enumerate(lams):
            sel = sorted((f for f in group if f["kl_coef"] == lam), key=lambda f: f["width"])
            if not sel:
                continue
            w = np.array([f["width"] for f in sel]) * (1.0 + 0.06 * i)  # side by side
            slope = np.array([f["slope"] for f in sel])
            err = np.array([[f["slope"] - f["slope_low"], f["slope_high"] - f["slope"]]
                            for f in sel]).T  # fmt: skip
            face = colour if i == 0 else "white"
            left.errorbar(w, slope, yerr=err, fmt="o" + style, color=colour, mfc=face, ms=4,
                          capsize=2, lw=1,
                          label=f"{name}, depth {depth}" if i == 0 else None)  # fmt: skip
            if i == 0:
                mid = np.array([f["J_ratio_median"] for f in sel])
                low, high = (np.array([f[k] for f in sel]) for k in ("J_ratio_min", "J_ratio_max"))
                bars = np.stack([mid - low, high - mid])
                middle.errorbar(w, mid, yerr=bars, fmt="o" + style, color=colour, ms=4,
                                capsize=2, lw=1)  # fmt: skip
    for lam, slope in study.references.items():
        left.axhline(slope, color="0.5", lw=0.8, ls="-" if lam == 0 else ":")
    left.plot([], [], "o", color="0.3", label=r"$\lambda = 0$ (filled)")
    left.plot([], [], "o", color="0.3", mfc="white", label=r"$\lambda > 0$ (open)")
    left.plot([], [], color="0.5", lw=0.8, label="tabular flow (grey)")
    left.set(xscale="log", xlabel="width", ylabel=rf"slope of $\log$ {T_GAMMA} on $\log$ Var$_0$",
             title="Slope over seeds (95 % interval)")  # fmt: skip
    left.set_xticks(sorted({f["width"] for f in fits}), [str(w) for w in
                    sorted({f["width"] for f in fits})])  # fmt: skip
    _legend_below(left, ncols=2)
    middle.axhline(1.0, color="0.5", lw=0.8)
    middle.set(xscale="log", yscale="log", xlabel="width",
               ylabel=r"$J_{t_\gamma} / J_0$ (largest over $\varepsilon$)",
               title=r"Growth of $J$ before $t_\gamma$ ($\lambda = 0$)")  # fmt: skip
    _plain_log_ticks(middle.yaxis)
    middle.set_xticks(left.get_xticks(), [str(int(w)) for w in left.get_xticks()])
    _times_and_bounds(study, right)
    return fig


def _groups(fits) -> dict:
    groups: dict = {}
    for f in fits:
        groups.setdefault((f["parameterisation"], f["depth"]), []).append(f)
    return groups


def _times_and_bounds(study, ax) -> None:
    rows = [r for r in study.rows if r["kl_coef"] == min(x["kl_coef"] for x in study.rows)]
    widest = max(r["width"] for r in rows)
    for (param, depth), _ in _groups(study.fits).items():
        name, colour = _label(param)
        style = _DEPTH_STYLE.get(depth, "-.")
        sel = [r for r in rows if (r["parameterisation"], r["depth"], r["width"]) ==
               (param, depth, widest)]  # fmt: skip
        var0 = np.array(sorted({r["var0"] for r in sel}))
        t = [np.median([r["t_gamma"] for r in sel if r["var0"] == v]) for v in var0]
        b = [np.median([r["theorem_4_bound"] for r in sel if r["var0"] == v]) for v in var0]
        ax.plot(var0, t, "o" + style, color=colour, ms=3, label=f"{name}, depth {depth}")
        ax.plot(var0, b, ":", color=colour, lw=1)
    ax.plot([], [], ":", color="0.3", label=r"Theorem 4 bound with $J_{t_\gamma}$")
    ax.set(xscale="log", yscale="log", xlabel=VAR0, ylabel=T_GAMMA,
           title=f"Measured time and bound, width {widest}, " r"$\lambda = 0$")  # fmt: skip
    _legend_below(ax, ncols=1)


@_inputs("study", "object", "paths")
def plot_remark_1_paths(study, axes=None):
    """J_t / J_0 against t / t_gamma (linear, so the flat start's share of t_gamma shows) along
    the flow of seed 0 at the smallest eps (lambda = 0), one panel per parameterisation, one
    colour per width (light to dark), one line style per depth."""
    import matplotlib as mpl

    params = list(dict.fromkeys(k[0] for k in study.paths))
    fig, axes = _panels(axes, len(params))
    widths = sorted({k[2] for k in study.paths})
    lam = min(k[3] for k in study.paths)
    cmap = mpl.colormaps["viridis_r"]
    for ax, param in zip(axes, params, strict=False):
        for (p, depth, width, kl), (ts, ratio) in study.paths.items():
            if p != param or kl != lam or len(ts) < 2:
                continue
            colour = cmap(0.15 + 0.8 * widths.index(width) / max(len(widths) - 1, 1))
            ax.plot(ts / ts[-1], ratio, _DEPTH_STYLE.get(depth, "-."), color=colour,
                    lw=1.2, label=f"width {width}, depth {depth}")  # fmt: skip
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set(xlim=(0, 1), yscale="log", xlabel=r"$t / t_\gamma$", ylabel=r"$J_t / J_0$",
               title=f"{_label(param)[0]}: J along the flattest flow")  # fmt: skip
        _plain_log_ticks(ax.yaxis)
        ax.legend(fontsize=LEGEND_SIZE, ncols=2, loc="upper left")
    return fig
