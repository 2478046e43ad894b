"""Figures of the notebooks' stories: Theorems 5 and 6, the accuracy-variance plane, the
teacher-student ranking, Section 4.1, the estimators' SNR and sweeps."""

from __future__ import annotations

import numpy as np

from theory_sim.plotting._common import (
    LEGEND_SIZE,
    T_GAMMA,
    VAR0,
    _axes,
    _by_label,
    _inputs,
    _legend_below,
    _legend_outside,
    _note,
    _panels,
    _plain_log_ticks,
)


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
