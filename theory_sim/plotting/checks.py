"""Figures of the checks: measured t_gamma against its bound, the exponent fits, the flat
landscape, reward along one flow, and the tightness search's slack."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theory_sim.plotting._common import (
    _KINDS,
    LEGEND_SIZE,
    T_GAMMA,
    VAR0,
    _axes,
    _bound_exponent,
    _bound_styles,
    _family,
    _inputs,
    _legend_outside,
    _note,
)


@_inputs("checks", "objects", "claim", "relation", "bound", "measured", "holds", "details")
def plot_bound_check(checks: Sequence, ax=None, title: str | None = None):
    """Measured t_gamma against its lower bound on log-log axes; a check holds above the diagonal.

    One colour and marker per policy kind (``details["policy"]``, tabular when absent). Checks
    whose target was never reached (t_gamma = inf, vacuous) cannot be placed on the axis: they
    are drawn as open triangles on the top edge, at their bound, and the caption says so.
    """
    if title is not None and not isinstance(title, str):
        raise TypeError(f"`title` must be a str or None; got {title!r}.")
    fig, ax = _axes(ax)
    if ax.figure.get_figwidth() < 6.5:
        fig.set_size_inches(6.8, 4.4)
    rows = [c for c in checks if c.relation == ">=" and np.isfinite(c.bound) and c.bound > 0]
    if not rows:
        ax.text(0.5, 0.5, "no finite bounds", ha="center", transform=ax.transAxes)
        return fig
    bound = np.array([c.bound for c in rows])
    measured = np.array([c.measured for c in rows])
    finite = np.isfinite(measured)
    # each axis spans its own data; the y axis reaches down to the largest bound, so the diagonal
    # (where a row would fail) crosses the lower right whatever the margin
    x_lo, x_hi = bound.min() / 2, bound.max() * 2
    y_lo = min(measured[finite].min() if finite.any() else np.inf, bound.max()) / 2
    y_hi = max(measured[finite].max() if finite.any() else bound.max(), bound.max()) * 2
    top = y_hi * 1.6  # the off-scale row of unreached targets, just above the data
    ax.plot([x_lo, x_hi], [x_lo, x_hi], color="0.4", lw=1, label="measured = bound")
    kinds = np.array([c.details.get("policy", "Tabular") for c in rows])
    for kind in dict.fromkeys(kinds):
        label, colour, marker = _KINDS.get(kind, (kind, "0.3", "o"))
        sel = kinds == kind
        ax.scatter(bound[sel & finite], measured[sel & finite], s=16, color=colour,
                   marker=marker, alpha=0.8, label=f"{label} ({(sel & finite).sum()})")  # fmt: skip
        if (sel & ~finite).any():
            ax.scatter(bound[sel & ~finite], np.full((sel & ~finite).sum(), top), marker="^",
                       s=26, facecolors="none", edgecolors=colour)  # fmt: skip
    if (~finite).any():
        ax.scatter([], [], marker="^", s=26, facecolors="none", edgecolors="0.3",
                   label=f"never reached ({(~finite).sum()}), vacuous")  # fmt: skip
    failed = np.array([not c.holds for c in rows])
    if failed.any():
        ax.scatter(bound[failed], np.where(finite, measured, top)[failed], s=70,
                   facecolors="none", edgecolors="red", label="fails")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlim=(x_lo, x_hi), ylim=(y_lo, top * 1.4),
           xlabel="the bound (paper's side)", ylabel=f"measured {T_GAMMA}",
           title=title or f"{rows[0].claim}: measured against bound")  # fmt: skip
    _legend_outside(ax, title="policy (rows)", title_fontsize=LEGEND_SIZE)
    if (~finite).any():
        _note(
            fig,
            r"Triangles on the top edge: targets the flow never reaches ($t_\gamma = \infty$), "
            "placed at their bound; such rows are vacuous.",
        )
    return fig


@_inputs("traj", "object", "ts", "expected_rm", "expected_gt")
def plot_reward_curves(traj, prompt: int = 0, ax=None):
    """Expected proxy and ground-truth reward against time (log axis) for one prompt.

    The flow climbs r_RM by construction (Proposition 4's proof: E_pi_t r_RM never falls with
    lambda = 0); r_G moves only as far as r_RM agrees with it, so it may fall."""
    fig, ax = _axes(ax)
    ts = np.asarray(traj.ts)
    keep = ts > 0
    for series, label in (
        (traj.expected_rm, r"$\mathbb{E}_{\pi_t} r_{\mathrm{RM}}$ (optimised)"),
        (traj.expected_gt, r"$\mathbb{E}_{\pi_t} r_G$ (ground truth)"),
    ):
        values = series if series.ndim == 1 else series[:, prompt]
        ax.plot(ts[keep], values[keep], label=label)
    ax.set(xscale="log", xlabel="time $t$", ylabel="expected reward",
           title="Reward along the gradient flow")  # fmt: skip
    ax.legend(fontsize=LEGEND_SIZE, loc="best")
    _note(fig, "The flow raises the reward model's reward; the ground truth follows only as far "
               "as the two agree, and can fall.")  # fmt: skip
    return fig


@_inputs("fits", "fits", "var0", "t_gamma", "slope", "stderr", "intercept")
def plot_exponent_fits(fits: dict, ax=None, bound_exponents: dict | None = None):
    """t_gamma against Var0 on log-log axes for each labelled :class:`ExponentFit`, with its line,
    and beside it a dashed guide with the bound's exponent through the same first point.

    The legend gives each fitted slope and its standard error next to the bound's exponent:
    -1/2 (Proposition 3, tabular) and -1/3 (Theorem 4, autoregressive), chosen from the label,
    or given per label in ``bound_exponents`` as (exponent, text).
    """
    fig, ax = _axes(ax)
    if ax.figure.get_figwidth() < 9:
        fig.set_size_inches(10.0, 4.6)
    for label, fit in fits.items():
        exponent, text = (bound_exponents or {}).get(label) or _bound_exponent(label)
        shown = ", ".join(_family(part) for part in label.split(", "))
        (points,) = ax.plot(
            fit.var0, fit.t_gamma, "o", ms=4,
            label=f"{shown}\nslope {fit.slope:.3f} ± {fit.stderr:.1g} (bound {text})",
        )  # fmt: skip
        colour = points.get_color()
        grid = np.geomspace(fit.var0.min(), fit.var0.max(), 50)
        ax.plot(grid, np.exp(fit.intercept) * grid**fit.slope, color=colour, lw=1)
        anchor = np.argmin(fit.var0)
        guide = fit.t_gamma[anchor] * (grid / fit.var0[anchor]) ** exponent
        ax.plot(grid, guide, "--", color=colour, lw=0.8, alpha=0.7)
    ax.plot([], [], "--", color="0.4", lw=0.8, label="slope of the bound's exponent")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=VAR0,
        ylabel=T_GAMMA,
        title="Fitted slopes against the bounds' exponents",
    )
    _legend_outside(ax, title="policy, family: fitted slope", title_fontsize=LEGEND_SIZE)
    return fig


@_inputs("landscapes", "objects", "policy", "family", "var0", "t_gamma", "fit")
def plot_flat_landscape(landscapes: Sequence, ax=None):
    """t_gamma against Var0 (log-log) for each :class:`~theory_sim.stories.FlatLandscape`, with
    its Proposition 3 bound (dashed, tabular only) and Theorem 4 bound (dotted) in its colour.

    One legend entry per landscape (its policy, family and fitted slope) and one per bound's line
    style, outside the axes. The title names the policies shown, so two such figures in one
    notebook differ."""
    fig, ax = _axes(ax)
    if ax.figure.get_figwidth() < 8:
        fig.set_size_inches(8.6, 4.4)
    policies = " and ".join(dict.fromkeys(land.policy for land in landscapes))
    dashed = False
    for land in landscapes:
        order = np.argsort(land.var0)
        v = land.var0[order]
        (points,) = ax.plot(
            v, land.t_gamma[order], "o-", ms=4,
            label=f"{land.policy}, {_family(land.family)}\nfitted slope {land.fit.slope:.3f}",
        )  # fmt: skip
        colour = points.get_color()
        if np.isfinite(land.proposition_3).any():
            dashed = True
            ax.plot(v, land.proposition_3[order], "--", color=colour, lw=1)
        ax.plot(v, land.theorem_4[order], ":", color=colour, lw=1.2)
    styles = [("--", "Proposition 3 bound")] if dashed else []
    _bound_styles(ax, [*styles, (":", "Theorem 4 bound")])
    title = f"Flat landscape, {policies} policy:\ntime to gain grows as {VAR0} shrinks"
    ax.set(xscale="log", yscale="log", xlabel=VAR0, ylabel=f"{T_GAMMA} (time to gain)",
           title=title)  # fmt: skip
    _legend_outside(ax)
    return fig


@_inputs("results", "objects", "claim", "slack", "violated", "by_size")
def plot_tightness(results: Sequence, ax=None):
    """The slack of each bound at its tightest instance found (log scale; 1 = sharp), one marker
    per output-space size searched, from :func:`theory_sim.theorems.tightness_search`."""
    fig, ax = _axes(ax)
    if ax.figure.get_figwidth() < 8:
        fig.set_size_inches(9.0, 4.4)
    names = [r.claim.replace(": ", ":\n") for r in results]
    y = np.arange(len(results))
    sizes = sorted({k for r in results for k in r.by_size}, key=str)
    markers = dict(zip(sizes, "os^DvP<>", strict=False))
    for r_index, r in enumerate(results):
        for size, value in r.by_size.items():
            if np.isfinite(value):
                ax.plot(value, r_index, markers.get(size, "o"), color="0.6", ms=5, mfc="none")
        colour = "C3" if r.violated else "C0"
        ax.plot(r.slack, r_index, "|", color=colour, ms=16, mew=2.5)
    for size, marker in markers.items():
        ax.plot([], [], marker, color="0.6", mfc="none", label=size)
    ax.plot([], [], "|", color="C0", ms=12, mew=2.5, label="tightest")
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_ylabel("bound of the paper")
    ax.invert_yaxis()
    ax.set_xlabel(r"slack: measured/bound (lower) or bound/measured (upper); 1 = sharp")
    ax.set_title("How sharp are the paper's constants? (tightest instance found)")
    _legend_outside(ax, title="output space searched", title_fontsize=LEGEND_SIZE)
    return fig
