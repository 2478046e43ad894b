"""Figures of reward-model evaluation (:mod:`theory_sim.evaluate`: variance against accuracy,
per-prompt variance per model, predicted teaching times, estimates against K) and of verifiable
rewards (notebook 11: the noisy-verifier phase diagram, group estimators' exponents, the reward
error that helps, the critical learning rate of discrete steps)."""

from __future__ import annotations

import numpy as np

from theory_sim.plotting._common import (
    T_GAMMA,
    _axes,
    _inputs,
    _legend_below,
    _legend_outside,
    _note,
    _panels,
    _plain_log_ticks,
)

__all__ = [
    "plot_beneficial_errors",
    "plot_convergence",
    "plot_group_exponents",
    "plot_prompt_variance",
    "plot_step_thresholds",
    "plot_teaching_times",
    "plot_variance_accuracy",
    "plot_verifier_phases",
]


def _lookup(measures, name: str) -> dict:
    return {m.model: m for m in measures if m.name == name}


@_inputs("measures", "objects", "model", "name", "value", "low", "high", "level")
def plot_variance_accuracy(measures, *, accuracy: str = "accuracy", ax=None):
    """Mean reward variance under the policy against accuracy per model, with both intervals
    (``measures``: a list of :class:`~theory_sim.evaluate.Measure`)."""
    fig, ax = _axes(ax)
    acc, var = _lookup(measures, accuracy), _lookup(measures, "variance")
    for i, model in enumerate(m for m in var if m in acc):
        a, v = acc[model], var[model]
        ax.errorbar(
            a.value, v.value,
            xerr=[[a.value - a.low], [a.high - a.value]],
            yerr=[[v.value - v.low], [v.high - v.value]],
            fmt="o", color=f"C{i % 10}", capsize=3, label=model,
        )  # fmt: skip
    ax.set_xlabel(accuracy)
    ax.set_ylabel("mean reward variance under the policy")
    if all(v.low > 0 for v in var.values()):
        ax.set_yscale("log")
    _legend_outside(ax)
    level = next(iter(var.values())).level if var else 0.95
    _note(fig, f"bars: {round(100 * level)} % bootstrap intervals over prompts")
    return fig


@_inputs("per_prompt", "fits", "shape")
def plot_prompt_variance(per_prompt: dict, ax=None):
    """The distribution over prompts of each model's estimated reward variance
    (``per_prompt``: {model: [P] variances}); prompts with variance 0 are counted in the labels,
    since a log axis cannot show them."""
    fig, ax = _axes(ax)
    names = list(per_prompt)
    data, labels = [], []
    for name in names:
        v = np.asarray(per_prompt[name])
        zero = int(np.sum(v <= 0))
        data.append(v[v > 0] if np.any(v > 0) else np.array([np.nan]))
        labels.append(f"{name}\n({zero} at 0)" if zero else name)
    ax.boxplot(data, orientation="horizontal", tick_labels=labels, flierprops={"markersize": 2})
    ax.set_xscale("log")
    ax.set_xlabel("reward variance under the policy, per prompt")
    ax.invert_yaxis()  # models top to bottom in dump order
    ax.tick_params(axis="y", labelsize=7)
    return fig


@_inputs("teaching", "objects", "model", "time", "bound")
def plot_teaching_times(teaching, ax=None):
    """Predicted t_gamma per model (log scale) beside Proposition 3's lower bound
    (``teaching``: a list of :class:`~theory_sim.evaluate.Teaching`); a model that does not
    reach the gain by the horizon is drawn at the axis edge with an arrow."""
    fig, ax = _axes(ax)
    times = np.array([t.time for t in teaching])
    finite = times[np.isfinite(times)]
    edge = finite.max() * 3 if len(finite) else 1.0
    y = np.arange(len(teaching))
    ax.barh(y, np.where(np.isfinite(times), times, edge), color="tab:blue", alpha=0.7,
            label=f"predicted {T_GAMMA}")  # fmt: skip
    for i, t in enumerate(teaching):
        if not np.isfinite(t.time):
            ax.annotate("not reached", (edge, i), xytext=(-4, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7, color="white")  # fmt: skip
    ax.scatter([t.bound for t in teaching], y, marker="|", s=200, color="black",
               label="Proposition 3 bound", zorder=3)  # fmt: skip
    ax.set_yticks(y, [t.model for t in teaching], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"{T_GAMMA} / |S| on the sampled support")
    ax.invert_yaxis()
    _legend_outside(ax)
    return fig


@_inputs("errors", "fits", "shape")
def plot_convergence(errors: dict, ax=None):
    """Mean absolute error of each estimate against the number of responses K per prompt
    (``errors``: {"K": [n], measure: [n]}, as :func:`theory_sim.evaluate.validation.
    estimate_errors` returns), with the K^(-1/2) reference slope."""
    if "K" not in errors:
        raise ValueError("`errors` must hold the sizes under the key 'K' beside each measure.")
    fig, ax = _axes(ax)
    sizes = np.asarray(errors["K"], np.float64)
    curves = {name: err for name, err in errors.items() if name != "K"}
    for name, err in curves.items():
        ax.plot(sizes, err, "o-", label=name)
    first = np.array([e[0] for e in curves.values()])
    ref = np.exp(np.mean(np.log(first[first > 0]))) if np.any(first > 0) else 1.0
    ax.plot(sizes, ref * np.sqrt(sizes[0] / sizes), "k--", lw=1, label=r"$\propto K^{-1/2}$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("responses per prompt K")
    ax.set_ylabel("mean |estimate - exact|")
    _legend_outside(ax)
    return fig


@_inputs("phases", "object", "rates", "time", "gain")
def plot_verifier_phases(phases, ax=None):
    """The Rate-or-Fate phase diagram (:func:`theory_sim.stories.verifier_phases`): log10 t_gamma
    over (FPR, FNR) where the ground truth is learned, and the sign of its gain elsewhere."""
    import matplotlib.pyplot as plt

    fig, ax = _axes(ax)
    rates = np.asarray(phases.rates)
    logt = np.where(np.isfinite(phases.time), np.log10(phases.time), np.nan)
    mesh = ax.pcolormesh(rates, rates, logt.T, shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=r"$\log_{10} t_\gamma$ (learned: $J > 0$)")
    for a, fpr in enumerate(rates):
        for b, fnr in enumerate(rates):
            if not np.isfinite(phases.time[a, b]):
                sign = "0" if abs(phases.gain[a, b]) < 1e-12 else "-"
                ax.text(fpr, fnr, sign, ha="center", va="center", fontsize=8, color="0.3")
    ax.plot(rates, 1 - rates, "k--", lw=1)
    ax.set_xlabel("false-positive rate FPR")
    ax.set_ylabel("false-negative rate FNR")
    ax.set_xlim(rates[0] - 0.05, rates[-1] + 0.05)
    ax.set_ylim(rates[0] - 0.05, rates[-1] + 0.05)
    _note(fig, "dashed: J = 1 - FPR - FNR = 0; '0': no gain, '-': the ground truth falls")
    plt.setp(ax.get_xticklabels(), fontsize=8)
    return fig


@_inputs("studies", "objects", "family", "var0", "times", "fits", "predicted")
def plot_group_exponents(studies, axes=None):
    """t_gamma against Var0 under the exact, Dr. GRPO and GRPO flows, one panel per family
    (``studies``: :class:`theory_sim.stories.GroupExponents` results), fitted slopes in the
    legend beside the predicted ones."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, len(studies), figsize=(5.2 * len(studies), 4.2),
                                 layout="constrained", squeeze=False)  # fmt: skip
        axes = axes[0]
    fig = axes[0].figure
    labels = {"exact": "exact flow", "drgrpo": "Dr. GRPO", "grpo": "GRPO"}
    for ax, study in zip(axes, studies, strict=True):
        for i, (flow, times) in enumerate(study.times.items()):
            fit = study.fits[flow]
            ax.loglog(
                study.var0,
                times,
                "os^"[i % 3] + "-",
                color=f"C{i}",
                label=(
                    f"{labels[flow]}: slope {fit.slope:.2f} (predicted {study.predicted[flow]:.2f})"
                ),
            )
        ax.set_xlabel(r"$\mathrm{Var}_{\pi_0}\, r_{\mathrm{RM}}$")
        ax.set_ylabel(T_GAMMA)
        ax.set_title(study.family.replace("_", " "), fontsize=10)
        ax.legend(fontsize=7)
    return fig


@_inputs("study", "object", "rows", "times", "curves", "target", "mediocre")
def plot_beneficial_errors(study, axes=None):
    """E_pi r_G along the exact flow trained on r_G and on the erring proxy r_RM, one panel per
    pi_0(y*) (``study``: :func:`theory_sim.stories.beneficial_errors`), with the target and
    y_med's reward dotted and each t_target marked."""
    fig, axes = _panels(axes, len(study.rows), width=4.2)
    t = np.asarray(study.times)[1:]
    for ax, row in zip(axes, study.rows, strict=True):
        star = row["pi0(y*)"]
        for i, (name, label) in enumerate((("r_G", "trained on $r_G$"),
                                           ("r_RM", "trained on the proxy $r_{RM}$"))):  # fmt: skip
            ax.semilogx(t, study.curves[star, name][1:], color=f"C{i}", label=label)
            if np.isfinite(row[f"t {name}"]) and row[f"t {name}"] <= t[-1]:
                ax.plot(row[f"t {name}"], study.target, "o", color=f"C{i}", ms=5)
        ax.axhline(study.target, color="0.4", ls=":", lw=1)
        ax.axhline(study.mediocre, color="0.7", ls=":", lw=1)
        speed = row["speed-up"]
        speed = f"{speed:,.0f}" if speed >= 100 else f"{speed:.3g}"
        ax.set_title(f"$\\pi_0(y^*) = {star:g}$: proxy {speed}x faster", fontsize=10)
        ax.set_xlabel("t")
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.02)
    axes[0].set_ylabel(r"$E_{\pi_t} r_G$")
    axes[0].legend(fontsize=8, loc="lower right")
    _note(fig, f"dotted: the target {study.target:g} and y_med's reward {study.mediocre:g}; dots: "
               "t_target (off the right edge where r_G gets there after the horizon)")  # fmt: skip
    return fig


@_inputs("study", "object", "lengths", "critical", "all_fail", "one_step", "long_lengths",
         "long_one_step", "successes", "critical_by_success", "one_step_by_success",
         "sampled_lengths", "rates", "collapse", "sampled_half", "sampled_by_success")  # fmt: skip
def plot_step_thresholds(study, axes=None):
    """The critical fixed learning rate on the shared-token family (``study``:
    :func:`theory_sim.stories.step_thresholds`): against L, with the band where runs that
    converge and runs that fail alternate, the one-step threshold (markers measured, line its
    closed form out to L = 1024) and the sampled runs' half-collapse rates; against the initial
    success rate; and the fraction of sampled runs that collapse against the rate."""
    fig, (by_length, by_success, sampled) = _panels(axes, 3, width=4.6)
    if axes is None:
        fig.set_figheight(5.6)
    names = {"exact": "exact update", "grpo": "GRPO (expected)"}
    for i, m in enumerate(("exact", "grpo")):
        color = f"C{i}"
        by_length.loglog(study.lengths, study.critical[m], "o-", color=color,
                         label=f"{names[m]}: critical rate")  # fmt: skip
        upper = np.where(np.isfinite(study.all_fail[m]), study.all_fail[m], np.nan)
        by_length.fill_between(study.lengths, study.critical[m], upper, color=color, alpha=0.15)
        by_length.loglog(study.lengths, study.one_step[m], "x", color=color,
                         label=f"{names[m]}: one-step threshold")  # fmt: skip
        by_success.semilogy(study.successes, study.critical_by_success[m], "o-", color=color,
                            label=f"{names[m]}: critical rate")  # fmt: skip
    by_length.loglog(study.long_lengths, study.long_one_step, "-", color="0.5", lw=1,
                     label="one-step threshold, closed form")  # fmt: skip
    for k, m in enumerate(("rloo", "grpo")):
        by_length.loglog(study.sampled_lengths, study.sampled_half[m], "s", mfc="none",
                         color=f"C{k + 2}", label=f"sampled {m.upper()}: half fail")  # fmt: skip
    ref = study.critical["exact"][0] * (study.lengths / study.lengths[0]) ** -1.0
    by_length.loglog(study.lengths, ref, ":", color="0.3", label="slope -1")
    by_length.set_xlabel("response length L")
    by_length.set_ylabel("learning rate")
    _legend_below(by_length, ncols=2)
    by_success.semilogy(study.successes, study.one_step_by_success, "-", color="0.5", lw=1,
                        label="one-step threshold (exact), closed form")  # fmt: skip
    for k, m in enumerate(("rloo", "grpo")):
        by_success.semilogy(study.successes, study.sampled_by_success[m], "s", mfc="none",
                            color=f"C{k + 2}", label=f"sampled {m.upper()}: half fail")  # fmt: skip
    by_success.set_xlabel("initial success rate $p_0$")
    by_success.set_ylabel("learning rate")
    by_success.set_title(f"L = {study.length}", fontsize=10)
    _plain_log_ticks(by_success.yaxis)
    _legend_below(by_success, ncols=1)
    for j, n in enumerate(study.sampled_lengths):
        for k, m in enumerate(("rloo", "grpo")):
            sampled.semilogx(study.rates, study.collapse[m][j], "-" if k == 0 else "--",
                             color=f"C{j + 4}", label=f"{m.upper()} L={n}")  # fmt: skip
    sampled.set_xlabel("learning rate")
    sampled.set_ylabel("fraction of sampled runs that fail")
    _legend_below(sampled, ncols=3)
    _note(fig, f"V = 2, target L - 1 zeros then a one, p0 = {study.success:g} (left), groups of "
               f"{study.group_size}, {study.num_steps} steps; a run fails when it ends below half "
               "its start; shaded: rates where failing and converging runs alternate")  # fmt: skip
    return fig
