"""Matplotlib figures from results: every function accepts an optional ``ax`` and returns the
figure; nothing here computes a theoretical quantity."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import numpy as np

__all__ = [
    "plot_accuracy_variance",
    "plot_bound_check",
    "plot_exponent_fits",
    "plot_flat_landscape",
    "plot_remark_1",
    "plot_reward_curves",
    "plot_section_4_1",
    "plot_snr_study",
    "plot_sweep",
    "plot_teacher_student",
    "plot_theorem_5",
    "plot_theorem_6",
    "plot_tightness",
]


def _fields(name: str, value, kind: str, names: tuple[str, ...]) -> None:
    """Refuse ``value`` unless it has the fields ``names``: as attributes ("object"), as the
    attributes of every item of a non-empty sequence ("objects"), as the keys of every dict of a
    non-empty sequence ("rows"), or as the attributes of every value of a dict ("fits")."""
    if kind == "object":
        items = [value]
    elif kind == "fits":
        items = list(value.values()) if isinstance(value, dict) and value else None
    else:
        ok = isinstance(value, Sequence) and not isinstance(value, str)
        if ok and not len(value):
            raise ValueError(f"`{name}` is empty: nothing to plot.")
        items = list(value) if ok else None
    has = (lambda x, f: isinstance(x, dict) and f in x) if kind == "rows" else hasattr
    if items is None or not all(has(x, f) for x in items for f in names):
        what = {
            "object": "an object",
            "objects": "a non-empty sequence of objects",
            "rows": "a non-empty sequence of dicts",
            "fits": "a non-empty dict of objects",
        }
        raise TypeError(
            f"`{name}` must be {what[kind]} with {', '.join(names)} (as theory_sim's results "
            f"have); got {type(value).__name__}."
        )  # fmt: skip


def _inputs(name: str, kind: str, *names: str):
    """Check a plotting function's results argument ``name`` (see :func:`_fields`) and its
    ``ax``/``axes`` (None or matplotlib axes) before drawing."""

    def wrap(fun):
        @functools.wraps(fun)
        def checked(*args, **kwargs):
            bound = inspect.signature(fun).bind(*args, **kwargs)
            _fields(name, bound.arguments[name], kind, names)
            for axis_name in ("ax", "axes"):
                given = bound.arguments.get(axis_name)
                if given is not None and not all(
                    hasattr(a, "plot") for a in np.atleast_1d(np.asarray(given, dtype=object))
                ):
                    raise TypeError(
                        f"`{axis_name}` must be None or matplotlib axes; got {given!r}."
                    )
            return fun(*args, **kwargs)

        return checked

    return wrap


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
        return fig, ax
    return ax.figure, ax


# Mathtext labels shared by every figure.
T_GAMMA = r"$t_\gamma$"
VAR0 = r"$\mathrm{Var}_{\pi_0}\, r_{\mathrm{RM}}$"
# Readable names of the flat-landscape families (stories.FLAT_FAMILIES).
FAMILY = {
    "reward_scale": r"$r_{\mathrm{RM}} = c\, r_G$, $c$ shrinking",
    "concentration": r"$\pi_0$ mass $\varepsilon$ on the good output",
}
LEGEND_SIZE = 8


def _legend_outside(ax, **kwargs):
    """A legend to the right of the axes, where it covers no data."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
        fontsize=LEGEND_SIZE, **kwargs,
    )  # fmt: skip


def _legend_below(ax, ncols: int = 2, **kwargs):
    """A legend under the axes, a fixed 40 points below its bottom edge (past the tick labels and
    the x label at any axes height), where it covers no data."""
    from matplotlib.transforms import offset_copy

    below = offset_copy(ax.transAxes, fig=ax.figure, y=-40.0, units="points")
    return ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, borderaxespad=0.0,
        ncols=ncols, fontsize=LEGEND_SIZE, **kwargs,
    )  # fmt: skip


def _plain_log_ticks(axis) -> None:
    """Ticks at 1, 2 and 5 per decade labelled as plain numbers (0.05, 0.1, 0.2), for a log axis
    spanning about a decade, where matplotlib's minor labels (3x10^-1, 4x10^-1) collide."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _note(fig, text: str) -> None:
    """A caption under the figure (what the markers mean, what is off scale)."""
    fig.text(0.01, 0.005, text, ha="left", va="bottom", fontsize=7, color="0.25", wrap=True)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(rect=(0.0, 0.06, 1.0, 0.94))


_KINDS = {  # a policy's class name -> its kind's label, colour and marker
    "Tabular": ("tabular", "tab:blue", "o"),
    "Autoregressive": ("autoregressive", "tab:orange", "s"),
    "LogLinear": ("log-linear", "tab:green", "^"),
    "Transformer": ("transformer", "tab:purple", "D"),
    "MLP": ("MLP", "tab:brown", "v"),
    "Neural": ("neural", "tab:pink", "P"),
}


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


def _bound_exponent(label: str) -> tuple[float, str]:
    """The exponent of Var0 in the bound for a fit's policy: Theorem 4's -1/3 for
    autoregressive (or neural) labels, Proposition 3's -1/2 otherwise."""
    if "autoregressive" in label:
        return -1.0 / 3.0, "-1/3"
    return -0.5, "-1/2"


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


@_inputs("rows", "rows", "scale", "eps", "exact_norm", "reinforce", "rloo", "grpo")
def plot_snr_study(rows, axes=None):
    """The exact gradient norm and the estimators' SNR against the good output's mass eps under
    pi_0 (log-log), one line style per reward scale: rows from
    :func:`theory_sim.experiments.estimator_snr_study`.

    Against eps (not Var0, which moves with the scale squared) the scale invariance shows
    directly: the gradient norm shifts by the scale, while every estimator's SNR line for one
    scale lies on the other's. An SNR of exactly 0 (no sample in any estimate drew the good
    output, so every estimate is 0) cannot be drawn on a log axis and is left out.
    """
    fig, axes = _panels(axes, 2)
    scales = sorted({r["scale"] for r in rows}, reverse=True)
    styles = {scale: ("-", "--", ":", "-.")[i % 4] for i, scale in enumerate(scales)}
    methods = {"reinforce": ("REINFORCE", "tab:blue", "s"), "rloo": ("RLOO", "tab:orange", "o"),
               "grpo": ("GRPO", "tab:green", "^")}  # fmt: skip
    for i, (scale, ls) in enumerate(styles.items()):
        sel = sorted((r for r in rows if r["scale"] == scale), key=lambda r: r["eps"])
        eps = np.array([r["eps"] for r in sel])
        axes[0].plot(eps, [r["exact_norm"] for r in sel], "o", ls=ls, color="0.3",
                     label=f"scale {scale:g}")  # fmt: skip
        for method, (name, colour, marker) in methods.items():
            snr = np.array([r[method] for r in sel])
            shown = snr > 0
            # later scales: larger open markers, visible around the first scale's filled ones
            axes[1].plot(eps[shown], snr[shown], marker=marker, ls=ls, color=colour,
                         ms=6 + 4 * i, mfc=colour if i == 0 else "none",
                         label=name if i == 0 else None)  # fmt: skip
    for i, (scale, ls) in enumerate(styles.items()):
        axes[1].plot([], [], marker="o", ls=ls, color="0.3", ms=6 + 4 * i,
                     mfc="0.3" if i == 0 else "none", label=f"reward scale {scale:g}")  # fmt: skip
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel=r"mass $\varepsilon$ of the good output under $\pi_0$",
        ylabel=r"$\|\nabla \phi(\theta_0)\|$",
        title="Exact gradient norm: shrinks with the scale",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel=r"mass $\varepsilon$ of the good output under $\pi_0$",
        ylabel="SNR of the estimate",
        title="Estimator SNR: the same at every scale",
    )
    axes[0].legend(fontsize=LEGEND_SIZE, title="reward scale", title_fontsize=LEGEND_SIZE)
    _legend_outside(axes[1], title="estimator; reward scale", title_fontsize=LEGEND_SIZE)
    if len(scales) > 1:
        _note(fig, "Right: the open markers (smaller reward scales) lie on the filled ones: "
                   "rescaling r_RM leaves every estimator's SNR unchanged.")  # fmt: skip
    return fig


def _by_label(rows, key: str) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    return groups


@_inputs("rows", "rows", "horizon", "policy", "reward_model", "kl_coef", "var_rm")  # non-empty
def plot_sweep(rows, horizon: float | None = None, axes=None):
    """The standard figures of a sweep (rows of :func:`theory_sim.sweep.load_results`).

    Three panels, one colour per reward model, one marker per initial policy and one marker size
    per kl_coef (larger for larger lambda): the ground-truth gain at ``horizon`` (default the
    largest) against Var_pi0 r_RM and against accuracy, and t_gamma against Var_pi0 r_RM on
    log-log axes (cells that never reach the gain are left out).
    """
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("`rows` is empty: nothing to plot.")
    horizons = sorted({r["horizon"] for r in rows})
    if horizon is not None and (
        isinstance(horizon, bool) or not isinstance(horizon, int | float | np.number)
    ):
        raise TypeError(f"`horizon` must be a number (one of {horizons}) or None; got {horizon!r}.")
    horizon = horizons[-1] if horizon is None else horizon
    if horizon not in horizons:
        raise ValueError(f"`horizon` must be one of {horizons}; got {horizon!r}.")
    fig, axes = _panels(axes, 3)
    at = [r for r in rows if r["horizon"] == horizon]
    markers = dict(zip(_by_label(at, "policy"), "os^Dv<>ph*", strict=False))
    kls = sorted({float(r["kl_coef"]) for r in at})
    sizes = {kl: 12.0 + 40.0 * i / max(len(kls) - 1, 1) for i, kl in enumerate(kls)}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (model, sel) in enumerate(_by_label(at, "reward_model").items()):
        colour = colours[k % len(colours)]
        for policy, group in _by_label(sel, "policy").items():
            var = np.array([r["var_rm"] for r in group])
            gain = np.array([r["gain_gt"] for r in group])
            acc = np.array([r["accuracy"] for r in group])
            time = np.array([r["t_gamma"] for r in group])
            size = np.array([sizes[float(r["kl_coef"])] for r in group])
            style = {"color": colour, "marker": markers.get(policy, "o"), "s": size, "alpha": 0.7}
            axes[0].scatter(
                var, gain, label=model if policy == next(iter(markers)) else None, **style
            )
            axes[1].scatter(acc, gain, **style)
            finite = np.isfinite(time)
            axes[2].scatter(var[finite], time[finite], **{**style, "s": size[finite]})
    for policy, marker in markers.items():
        axes[1].scatter([], [], marker=marker, color="0.3", label=rf"$\pi_0$: {policy}")
    for kl, size in sizes.items():
        axes[2].scatter([], [], marker="o", s=size, color="0.5", label=rf"$\lambda$ = {kl:g}")
    axes[0].set(xscale="log", xlabel=VAR0, ylabel=f"ground-truth gain at $T$ = {horizon:g}")
    axes[1].set(xlabel="accuracy (uniform pairs)", ylabel=f"ground-truth gain at $T$ = {horizon:g}")
    axes[2].set(xscale="log", yscale="log", xlabel=VAR0, ylabel=f"{T_GAMMA} (time to gain)")
    axes[0].set_title("Gain against reward variance")
    axes[1].set_title("Gain against accuracy")
    axes[2].set_title("Time to gain against reward variance")
    for ax, title in zip(
        axes,
        ("reward model (colour)", "initial policy (marker)", r"$\lambda$ (marker size)"),
        strict=True,
    ):
        _legend_below(ax, ncols=2, title=title, title_fontsize=LEGEND_SIZE)
    return fig


def _panels(axes, count: int, width: float = 5.0):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, count, figsize=(width * count, 4.2), layout="constrained")
        return fig, np.atleast_1d(axes)
    axes = np.atleast_1d(axes)
    return axes[0].figure, axes


def _family(name: str) -> str:
    """The readable name of a flat-landscape family, or the name itself."""
    return FAMILY.get(name, name)


def _bound_styles(ax, styles) -> None:
    """Legend entries for line styles shared by every colour (e.g. the bounds)."""
    for style, label in styles:
        ax.plot([], [], style, color="0.3", lw=1.2, label=label)


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


@_inputs("study", "object", "rows", "fits", "series")
def plot_remark_1(study, axes=None):
    """Remark 1 (:func:`~theory_sim.stories.remark_1`): t_gamma against Var0 for each neural model
    and init scale with its Theorem 4 bound using J_{t_gamma} (dotted), and J_{t_gamma} / J_0.
    One colour per (model, init scale) in both panels; the legend sits outside the right panel."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(13.0, 4.6), layout="constrained")
    fig, (left, right) = _panels(axes, 2)
    slopes = {(f["model"], f["init_scale"]): f["slope"] for f in study.fits}
    for model in dict.fromkeys(r["model"] for r in study.rows):
        for scale in dict.fromkeys(r["init_scale"] for r in study.rows if r["model"] == model):
            s = study.series(model, scale)
            order = np.argsort(s["var0"])
            label = f"{model}, init scale {scale:g}: slope {slopes[(model, scale)]:.2f}"
            (line,) = left.plot(s["var0"][order], s["t_gamma"][order], "o-", ms=3)
            colour = line.get_color()
            left.plot(s["var0"][order], s["theorem_4_bound"][order], ":", color=colour, lw=1)
            right.plot(s["var0"][order], s["J_ratio"][order], "o-", ms=3, color=colour,
                       label=label)  # fmt: skip
    references = ", ".join(
        f"{f['model']} {f['slope']:.2f}"
        for f in study.fits
        if f["model"] in ("tabular", "autoregressive")
    )
    left.set(xscale="log", yscale="log", xlabel=VAR0, ylabel=T_GAMMA,
             title=f"Neural policies: time to gain (dotted: Theorem 4 with $J_{{t_\\gamma}}$)\n"
                   f"reference slopes: {references}")  # fmt: skip
    right.axhline(1.0, color="grey", lw=0.8)
    right.plot([], [], ":", color="0.3", lw=1, label="(left) Theorem 4 bound")
    right.set(xscale="log", xlabel=VAR0, ylabel=r"$J_{t_\gamma} / J_0$",
              title="How much the Jacobian grows before $t_\\gamma$")  # fmt: skip
    _legend_outside(right, title="model, init scale: fitted slope", title_fontsize=LEGEND_SIZE)
    return fig


@_inputs("story", "object", "rows", "slow", "fast", "target", "curve_T")
def plot_theorem_5(story, axes=None):
    """Theorem 5: both models' t_gamma against T with their bounds; E r_G against time at one T."""
    fig, axes = _panels(axes, 2)
    T = np.array([r["T"] for r in story.rows])
    for key, bound, label, colour in (
        ("t_slow", "slow_bound", "accurate (acc. 1), low variance", "tab:blue"),
        ("t_fast", "fast_bound", "inaccurate, high variance", "tab:red"),
    ):
        axes[0].plot(T, [r[key] for r in story.rows], "o-", color=colour, label=label)
        kind = "lower" if key == "t_slow" else "upper"
        axes[0].plot(
            T, [r[bound] for r in story.rows], "--", color=colour, lw=1, label=f"{kind} bound"
        )
    axes[0].set(xscale="log", yscale="log", xlabel=r"$T$ (the construction's parameter)",
                ylabel=f"{T_GAMMA} (time to gain)")  # fmt: skip
    axes[0].set_title("Accuracy is not enough (Theorem 5)")
    _legend_below(axes[0])
    for traj, label, colour in (
        (story.slow, "accurate, low variance", "tab:blue"),
        (story.fast, "inaccurate, high variance", "tab:red"),
    ):
        keep = traj.ts > 0
        axes[1].plot(traj.ts[keep], traj.expected_gt[keep], color=colour, label=label)
    axes[1].axhline(
        story.target, color="0.4", lw=1, ls="--", label=r"$\mathbb{E}_{\pi_0} r_G + \gamma$"
    )
    axes[1].set(xscale="log", xlabel="time $t$", ylabel=r"$\mathbb{E}_{\pi_t} r_G$ (ground truth)")
    axes[1].set_title(f"Ground-truth reward along the flow, $T$ = {story.curve_T:g}")
    axes[1].legend(fontsize=LEGEND_SIZE, loc="upper left")
    return fig


@_inputs("grid", "object", "accuracies", "variances", "t_gamma")
def plot_accuracy_variance(grid, ax=None):
    """Heat map of log10 t_gamma over accuracy (rows) and Var0 (columns); "never" where the
    ground-truth gain is not reached."""
    fig, ax = _axes(ax)
    values = np.log10(np.where(np.isfinite(grid.t_gamma), grid.t_gamma, np.nan))
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis_r")
    fig.colorbar(image, ax=ax, label=r"$\log_{10} t_\gamma$")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = "never" if np.isnan(values[i, j]) else f"{values[i, j]:.1f}"
            bright = np.isnan(values[i, j]) or image.norm(values[i, j]) < 0.5  # yellow end
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="k" if bright else "w")
    ax.set_xticks(range(len(grid.variances)), [f"{v:.0e}" for v in grid.variances], fontsize=7)
    ax.set_yticks(range(len(grid.accuracies)), [f"{a:.2f}" for a in grid.accuracies])
    ax.set(
        xlabel=VAR0,
        ylabel="accuracy",
        title="Time to gain on the accuracy-variance plane",
    )
    return fig


@_inputs("story", "object", "times")
def plot_theorem_6(story, ax=None):
    """Theorem 6: t_gamma (log) of both reward models from a policy in Pi and one in Pi'."""
    fig, ax = _axes(ax)
    x = np.arange(2)
    for col, (label, colour) in enumerate(
        ((r"$r_{\mathrm{RM}}$", "tab:blue"), (r"$r'_{\mathrm{RM}}$", "tab:orange"))
    ):
        ax.bar(x + (col - 0.5) * 0.38, story.times[:, col], 0.38, color=colour, label=label)
    ax.set_xticks(x, [r"$\pi_0 \in \Pi$", r"$\pi_0 \in \Pi'$"])
    ax.set(yscale="log", ylabel=f"{T_GAMMA} (time to gain)", xlabel="initial policy",
           title="The teacher depends on the student (Theorem 6)")  # fmt: skip
    ax.legend(fontsize=LEGEND_SIZE, title="reward model", title_fontsize=LEGEND_SIZE)
    return fig


@_inputs("study", "object", "gain", "variance", "models", "horizon")
def plot_teacher_student(study, axes=None):
    """Each reward model's rank (by ground-truth gain, 1 = best) under each initial policy, with a
    discrete colour bar, and the gain against Var_pi0 r_RM, one colour per policy."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), layout="constrained",
                                 gridspec_kw={"width_ratios": (1.15, 1.0)})  # fmt: skip
    fig, axes = _panels(axes, 2)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(wspace=0.08)  # room between the colour bar's label and the next panel
    ranks = np.argsort(np.argsort(-study.gain, axis=1), axis=1) + 1  # [policy, model]
    count = ranks.shape[1]
    cmap = plt.get_cmap("RdYlGn_r", count)
    norm = BoundaryNorm(np.arange(0.5, count + 1.5), cmap.N)
    # one row per reward model (names read horizontally), one column per initial policy
    image = axes[0].imshow(ranks.T, cmap=cmap, norm=norm, aspect="auto")
    for p in range(ranks.shape[0]):
        for m in range(count):
            axes[0].text(p, m, str(ranks[p, m]), ha="center", va="center", fontsize=8)
    bar = fig.colorbar(image, ax=axes[0], ticks=np.arange(1, count + 1), pad=0.02)
    bar.set_label("rank (1 = best teacher)", labelpad=2)
    axes[0].set_yticks(range(count), study.models, fontsize=8)
    axes[0].set_xticks(range(ranks.shape[0]), [rf"$\pi_0$ #{p}" for p in range(ranks.shape[0])])
    axes[0].set(xlabel="initial policy", ylabel="reward model")
    axes[0].set_title("Rank of the same reward models\nunder each initial policy")
    for p in range(study.gain.shape[0]):
        axes[1].plot(study.variance[p], study.gain[p], "o", ms=4, label=rf"$\pi_0$ #{p}")
    axes[1].set(
        xscale="log",
        xlabel=VAR0,
        ylabel=f"ground-truth gain at $T$ = {study.horizon:g}",
        title="Gain follows variance under each policy",
    )
    _plain_log_ticks(axes[1].xaxis)
    _legend_outside(axes[1], title="initial policy", title_fontsize=LEGEND_SIZE)
    return fig


@_inputs("study", "object", "table_1", "times", "curves")
def plot_section_4_1(study, axes=None):
    """The tabular Section 4.1: ground-truth increase against reward variance (one point per
    reward model), and the mean ground-truth increase along the exact flow; one colour per reward
    model in both panels, named in one legend right of the second."""
    fig, axes = _panels(axes, 2, 5.5)
    for row in study.table_1:
        axes[0].errorbar(
            row["variance"],
            row["ground-truth increase"],
            xerr=row["variance sd"],
            yerr=row["ground-truth increase sd"],
            fmt="o",
            ms=5,
            capsize=2,
            label=row["reward model"],
        )
    axes[0].set(
        xlabel=r"reward variance (mean over prompts of $\mathrm{Var}_{\pi_0} r_{\mathrm{RM}}$)",
        ylabel="ground-truth increase",
        title="Increase against variance (mean ± sd over seeds)",
    )
    keep = study.times > 0
    for name, curve in study.curves.items():
        style = {"color": "k", "lw": 2} if name == "ground truth" else {}
        axes[1].plot(study.times[keep], curve[keep], label=name, **style)
    axes[1].set(xscale="log", xlabel="time $t$", ylabel="ground-truth increase")
    axes[1].set_title("Ground-truth increase along the flow")
    _legend_outside(axes[1], title="reward model", title_fontsize=LEGEND_SIZE)
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
