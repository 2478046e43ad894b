"""Matplotlib figures from results: every function accepts an optional ``ax`` and returns the
figure; nothing here computes a theoretical quantity."""

from __future__ import annotations

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


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
        return fig, ax
    return ax.figure, ax


# Mathtext labels shared by every figure.
T_GAMMA = r"$t_\gamma$"
VAR0 = r"$\mathrm{Var}_{\pi_0}\, r_{\mathrm{RM}}$"


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
    ax.scatter(bound[finite], measured[finite], s=18, color="tab:blue", label=f"measured {T_GAMMA}")
    if (~finite).any():
        ax.scatter(
            bound[~finite],
            np.full((~finite).sum(), top),
            marker="^",
            s=22,
            color="tab:orange",
            label="not reached (inf): vacuous",
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
    for series, label in (
        (traj.expected_rm, r"$\mathbb{E}_{\pi_t} r_{\mathrm{RM}}$"),
        (traj.expected_gt, r"$\mathbb{E}_{\pi_t} r_G$"),
    ):
        values = series if series.ndim == 1 else series[:, prompt]
        ax.plot(ts[keep], values[keep], label=label)
    ax.set(xscale="log", xlabel="time $t$", ylabel="expected reward")
    ax.legend()
    return fig


def _bound_exponent(label: str) -> tuple[float, str]:
    """The exponent of Var0 in the bound for a fit's policy: Theorem 4's -1/3 for
    autoregressive (or neural) labels, Proposition 3's -1/2 otherwise."""
    if "autoregressive" in label:
        return -1.0 / 3.0, "-1/3"
    return -0.5, "-1/2"


def plot_exponent_fits(fits: dict, ax=None, bound_exponents: dict | None = None):
    """t_gamma against Var0 on log-log axes for each labelled :class:`ExponentFit`, with its line,
    and beside it a dashed guide with the bound's exponent through the same first point.

    The legend gives each fitted slope and its standard error next to the bound's exponent:
    -1/2 (Proposition 3, tabular) and -1/3 (Theorem 4, autoregressive), chosen from the label,
    or given per label in ``bound_exponents`` as (exponent, text).
    """
    fig, ax = _axes(ax)
    for label, fit in fits.items():
        exponent, text = (bound_exponents or {}).get(label) or _bound_exponent(label)
        (points,) = ax.plot(
            fit.var0,
            fit.t_gamma,
            "o",
            ms=4,
            label=f"{label}: slope {fit.slope:.3f} ± {fit.stderr:.1g} (bound {text})",
        )
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
    ax.legend(fontsize=7)
    return fig


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
    colours = {"reinforce": "tab:blue", "rloo": "tab:orange", "grpo": "tab:green"}
    for scale, ls in styles.items():
        sel = sorted((r for r in rows if r["scale"] == scale), key=lambda r: r["eps"])
        eps = np.array([r["eps"] for r in sel])
        axes[0].plot(
            eps, [r["exact_norm"] for r in sel], "o", ls=ls, color="0.3", label=f"scale {scale:g}"
        )
        for method, marker in (("reinforce", "s"), ("rloo", "o"), ("grpo", "^")):
            snr = np.array([r[method] for r in sel])
            shown = snr > 0
            axes[1].plot(
                eps[shown],
                snr[shown],
                marker=marker,
                ls=ls,
                color=colours[method],
                mfc="none" if ls != "-" else colours[method],
                label=f"{method}, scale {scale:g}",
            )
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

    Three panels, one colour per reward model, one marker per initial policy and one marker size
    per kl_coef (larger for larger lambda): the ground-truth gain at ``horizon`` (default the
    largest) against Var_pi0 r_RM and against accuracy, and t_gamma against Var_pi0 r_RM on
    log-log axes (cells that never reach the gain are left out).
    """
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("`rows` is empty: nothing to plot.")
    horizons = sorted({r["horizon"] for r in rows})
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
    axes[0].set(xscale="log", xlabel=VAR0, ylabel=f"ground-truth gain at T={horizon:g}")
    axes[1].set(xlabel="accuracy (uniform pairs)", ylabel=f"ground-truth gain at T={horizon:g}")
    axes[2].set(xscale="log", yscale="log", xlabel=VAR0, ylabel=T_GAMMA)
    axes[0].set_title("Gain against reward variance")
    axes[1].set_title("Gain against accuracy")
    axes[2].set_title("Time to gain against reward variance")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7, title="kl_coef (marker size)", title_fontsize=7)
    return fig


def _panels(axes, count: int, width: float = 5.0):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, count, figsize=(width * count, 4.2), layout="constrained")
        return fig, np.atleast_1d(axes)
    axes = np.atleast_1d(axes)
    return axes[0].figure, axes


def plot_flat_landscape(landscapes: Sequence, ax=None):
    """t_gamma against Var0 (log-log) for each :class:`~theory_sim.stories.FlatLandscape`, with
    its Proposition 3 bound (dashed, tabular only) and Theorem 4 bound (dotted) on the same axes.
    The title names the policies shown, so two such figures in one notebook differ."""
    fig, ax = _axes(ax)
    policies = " and ".join(dict.fromkeys(land.policy for land in landscapes))
    for land in landscapes:
        order = np.argsort(land.var0)
        v = land.var0[order]
        (points,) = ax.plot(
            v,
            land.t_gamma[order],
            "o-",
            ms=4,
            label=f"{land.policy}, {land.family}: slope {land.fit.slope:.3f}",
        )
        colour = points.get_color()
        if np.isfinite(land.proposition_3).any():
            ax.plot(v, land.proposition_3[order], "--", color=colour, lw=1, label="Prop. 3 bound")
        ax.plot(v, land.theorem_4[order], ":", color=colour, lw=1.2, label="Thm. 4 bound")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=VAR0,
        ylabel=T_GAMMA,
        title=f"Flat landscape ({policies} policy): time to gain",
    )
    ax.legend(fontsize=7)
    return fig


def plot_remark_1(study, axes=None):
    """Remark 1 (:func:`~theory_sim.stories.remark_1`): t_gamma against Var0 for each neural model
    and init scale with its Theorem 4 bound using J_{t_gamma} (dotted), and J_{t_gamma} / J_0."""
    fig, (left, right) = _panels(axes, 2, width=5.5)
    slopes = {(f["model"], f["init_scale"]): f["slope"] for f in study.fits}
    for model in dict.fromkeys(r["model"] for r in study.rows):
        for scale in dict.fromkeys(r["init_scale"] for r in study.rows if r["model"] == model):
            s = study.series(model, scale)
            order = np.argsort(s["var0"])
            label = f"{model}, scale {scale:g}: slope {slopes[(model, scale)]:.2f}"
            (line,) = left.plot(s["var0"][order], s["t_gamma"][order], "o-", ms=3, label=label)
            colour = line.get_color()
            left.plot(s["var0"][order], s["theorem_4_bound"][order], ":", color=colour, lw=1)
            right.plot(s["var0"][order], s["J_ratio"][order], "o-", ms=3, color=colour)
    references = ", ".join(
        f"{f['model']} {f['slope']:.2f}"
        for f in study.fits
        if f["model"] in ("tabular", "autoregressive")
    )
    title = f"Neural policies (dotted: Thm. 4 with J_t_gamma)\nslopes of {references}"
    left.set(xscale="log", yscale="log", xlabel=VAR0, ylabel=T_GAMMA, title=title)
    left.legend(fontsize=6)
    right.axhline(1.0, color="grey", lw=0.8)
    right.set(xscale="log", xlabel=VAR0, ylabel="J_t_gamma / J_0",
              title="How much the Jacobian grows before t_gamma")  # fmt: skip
    return fig


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
    axes[0].set(xscale="log", yscale="log", xlabel="T", ylabel=T_GAMMA)
    axes[0].set_title("Accuracy is not enough (Theorem 5)")
    axes[0].legend(fontsize=7)
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
    axes[1].set_title(f"Ground-truth reward, T = {story.curve_T:g}")
    axes[1].legend(fontsize=7)
    return fig


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


def plot_theorem_6(story, ax=None):
    """Theorem 6: t_gamma (log) of both reward models from a policy in Pi and one in Pi'."""
    fig, ax = _axes(ax)
    x = np.arange(2)
    for col, (label, colour) in enumerate((("r_RM", "tab:blue"), ("r'_RM", "tab:orange"))):
        ax.bar(x + (col - 0.5) * 0.38, story.times[:, col], 0.38, color=colour, label=label)
    ax.set_xticks(x, ["pi_0 in Pi", "pi_0 in Pi'"])
    ax.set(yscale="log", ylabel=T_GAMMA, title="The teacher depends on the student (Theorem 6)")
    ax.legend(fontsize=8)
    return fig


def plot_teacher_student(study, axes=None):
    """Each reward model's rank (by ground-truth gain) under each initial policy, and the gain
    against Var_pi0 r_RM, one colour per policy."""
    fig, axes = _panels(axes, 2, 5.5)
    ranks = np.argsort(np.argsort(-study.gain, axis=1), axis=1) + 1
    image = axes[0].imshow(ranks, cmap="RdYlGn_r", aspect="auto")
    for p in range(ranks.shape[0]):
        for m in range(ranks.shape[1]):
            axes[0].text(m, p, str(ranks[p, m]), ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=axes[0], label="rank (1 = best teacher)")
    axes[0].set_xticks(range(len(study.models)), study.models, rotation=60, fontsize=7)
    axes[0].set_yticks(range(ranks.shape[0]), [f"policy {p}" for p in range(ranks.shape[0])])
    axes[0].set_title("Ranking of the same reward models")
    for p in range(study.gain.shape[0]):
        axes[1].plot(study.variance[p], study.gain[p], "o", ms=4, label=f"policy {p}")
    axes[1].set(
        xscale="log",
        xlabel=VAR0,
        ylabel=f"ground-truth gain at T={study.horizon:g}",
        title="Gain follows variance under each policy",
    )
    axes[1].legend(fontsize=7)
    return fig


def plot_section_4_1(study, axes=None):
    """The tabular Section 4.1: ground-truth increase against reward variance (one point per
    reward model), and the mean ground-truth increase along the exact flow."""
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
    axes[0].legend(fontsize=7)
    keep = study.times > 0
    for name, curve in study.curves.items():
        style = {"color": "k", "lw": 2} if name == "ground truth" else {}
        axes[1].plot(study.times[keep], curve[keep], label=name, **style)
    axes[1].set(xscale="log", xlabel="time $t$", ylabel="ground-truth increase")
    axes[1].set_title("Ground-truth increase along the flow")
    axes[1].legend(fontsize=7)
    return fig


def plot_tightness(results: Sequence, ax=None):
    """The slack of each bound at its tightest instance found (log scale; 1 = sharp), one marker
    per output-space size searched, from :func:`theory_sim.theorems.tightness_search`."""
    fig, ax = _axes(ax)
    if ax.figure.get_figwidth() < 7:
        fig.set_size_inches(7.5, 4.2)
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
    ax.invert_yaxis()
    ax.set_xlabel(r"slack: measured/bound (lower) or bound/measured (upper); 1 = sharp")
    ax.set_title("How sharp are the paper's constants? (tightest instance found)")
    ax.legend(fontsize=7, loc="lower right", ncols=2)
    return fig
