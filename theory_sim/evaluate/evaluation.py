"""One call from a dump to every measure, the predicted teaching speed and the rankings, and the
report ``theory-sim evaluate`` writes (report.md, evaluation.json, figures)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from theory_sim._json import dumps
from theory_sim._validation import check_float_scalar, check_int, check_seed
from theory_sim.evaluate.dump import Dump, load_dump
from theory_sim.evaluate.measures import Measure, measure_dump, prompt_variance
from theory_sim.evaluate.teaching import default_gamma, kendall_tau, predict

__all__ = ["Evaluation", "evaluate", "write_report"]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Everything :func:`evaluate` found.

    Attributes:
        measures: every :class:`Measure` of every model, with its interval.
        teaching: the predicted t_gamma of every model (empty without gold scores).
        rankings: Kendall's tau between the ranking by predicted speed and the rankings by
            accuracy and by variance ({"speed vs accuracy": tau, ...}); empty with one model.
        prompt_variance: {model: [P] per-prompt variance estimates}.
        summary: the dump's size, exclusions and the settings used.
    """

    measures: list
    teaching: list
    rankings: dict
    prompt_variance: dict
    summary: dict

    def value(self, model: str, name: str) -> Measure:
        """The :class:`Measure` called ``name`` of ``model``."""
        for m in self.measures:
            if m.model == model and m.name == name:
                return m
        raise KeyError(f"no measure {name!r} for model {model!r}.")


def evaluate(
    dump,
    *,
    gamma: float | None = None,
    kl_coef: float = 0.0,
    flow_prompts: int = 256,
    horizon: float = 1e5,
    resamples: int = 2000,
    level: float = 0.95,
    threshold: float | None = None,
    seed: int = 0,
    normalise: bool = True,
    progress=None,
) -> Evaluation:
    """Measure every reward model of a dump and predict its teaching speed.

    Args:
        dump: a :class:`Dump` or anything :func:`load_dump` reads.
        gamma: the mean gold gain for t_gamma (default: a quarter of the mean gold headroom on
            the flow's prompts, :func:`~theory_sim.evaluate.teaching.default_gamma`).
        kl_coef: lambda >= 0 of the flow.
        flow_prompts: the flow runs on at most this many prompts, drawn with ``seed`` without
            replacement (the report says how many); the measures use every prompt.
        horizon: the flow's horizon per prompt.
        resamples, level, threshold: as in :func:`measure_dump`.
        seed: the bootstrap's and the prompt draw's seed.
        normalise: normalise each model under pi_0 before the flow (see :func:`predict`).
        progress: optional callable (done, total, what) for the flow's progress.
    """
    if not isinstance(dump, Dump):
        try:
            dump = load_dump(dump)
        except ValueError as err:
            raise ValueError(f"`dump`: {err}") from None
    flow_prompts = check_int("flow_prompts", flow_prompts, 1)
    seed = check_seed("seed", seed)
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    measures = measure_dump(dump, resamples=resamples, level=level, seed=seed, threshold=threshold)
    weights = dump.weights()
    variances = {m: prompt_variance(dump, m, weights) for m in dump.models}
    summary = {
        "source": dump.source,
        "prompts": dump.num_prompts,
        "responses": int(dump.counts.sum()),
        "responses per prompt": [int(dump.counts.min()), int(dump.counts.max())],
        "excluded prompts": [list(e) for e in dump.excluded],
        "ignored columns": list(dump.ignored),
        "models": dump.models,
        "gold": "labels" if dump.gold_is_label else ("scores" if dump.gold is not None else None),
        "weights": "self-normalised policy probabilities"
        if dump.logprob is not None
        else "uniform over the sampled responses",
        "level": level,
        "resamples": resamples,
        "seed": seed,
    }
    teaching, rankings = [], {}
    if dump.gold is not None:
        rng = np.random.default_rng(seed)
        rows = np.arange(dump.num_prompts)
        if dump.num_prompts > flow_prompts:
            rows = np.sort(rng.choice(dump.num_prompts, flow_prompts, replace=False))
        probs = weights[rows]
        gold = dump.gold[rows]
        if gamma is None:
            gamma = default_gamma(probs, gold)
        models = {m: s[rows] for m, s in dump.scores.items()}
        teaching = predict(probs, models, gold, gamma=gamma, kl_coef=kl_coef, horizon=horizon,
                           normalise=normalise, progress=progress)  # fmt: skip
        speed = [-t.time for t in teaching]
        acc = "on-policy accuracy" if dump.logprob is not None else "accuracy"
        by = {m.model: m.value for m in measures if m.name == acc}
        var = {m.model: m.value for m in measures if m.name == "variance"}
        if len(teaching) > 1:  # a ranking needs two models
            rankings = {
                f"speed vs {acc}": kendall_tau(speed, [by[t.model] for t in teaching]),
                "speed vs variance": kendall_tau(speed, [var[t.model] for t in teaching]),
            }
        summary.update(
            {
                "flow prompts": len(rows),
                "gamma": gamma,
                "kl_coef": kl_coef,
                "horizon": horizon,
                "normalised": normalise,
            }
        )
    return Evaluation(measures, teaching, rankings, variances, summary)


def _fmt(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.4g}"


def _markdown(ev: Evaluation) -> str:
    s = ev.summary
    lo, hi = s["responses per prompt"]
    lines = [
        "# Reward-model evaluation",
        "",
        f"Dump: `{s['source']}`: {s['prompts']} prompts, {s['responses']} responses "
        f"({lo} to {hi} per prompt), models: {', '.join(s['models'])}.",
        f"Excluded: {len(s['excluded prompts'])} prompts with a single response"
        + (f" (first: {s['excluded prompts'][0][0]!r})." if s["excluded prompts"] else "."),
        f"Columns left out (no numeric value): {', '.join(s['ignored columns']) or 'none'}.",
        f"Responses stand for the policy with weights: {s['weights']}.",
        "",
        "## Measures",
        "",
        f"Each value is a mean over prompts with a {round(100 * s['level'])} % interval "
        f"(percentile bootstrap over prompts, {s['resamples']} resamples, seed {s['seed']}; "
        "the all-equal fraction has an exact binomial interval and the variance quantiles "
        "order-statistic intervals). The variance is the unbiased sample variance "
        "(divisor K - 1) of each prompt's scores, or, with log-probabilities, the exact "
        "variance under the self-normalised policy on the responses.",
        "",
        "| model | measure | value | interval | note |",
        "|---|---|---|---|---|",
    ]
    for m in ev.measures:
        lines.append(
            f"| {m.model} | {m.name} | {_fmt(m.value)} | [{_fmt(m.low)}, {_fmt(m.high)}] | "
            f"{m.note} |"
        )
    if ev.teaching:
        lines += [
            "",
            "## Predicted teaching speed",
            "",
            "The tabular analogue on the sampled support: each prompt's responses are its output "
            "space, pi_0 the weights above, and the exact gradient flow (arXiv 2503.15477, "
            f"Section 2; lambda = {s['kl_coef']:g}) runs on {s['flow prompts']} prompts until "
            f"the mean gold gain reaches gamma = {s['gamma']:.4g}. Reward models are "
            + (
                "normalised to mean 0 and variance 1 under pi_0 and "
                if s["normalised"]
                else "kept at their relative scales and "
            )
            + "share one scale in [-1, 1]; times are per "
            "prompt (t / |S|). Proposition 3 bounds each time from below. This is not the time "
            "an LLM would take: it keeps each prompt's reward variance and the models' "
            "maximisers, and drops generalisation across responses.",
            "",
            "| model | predicted t_gamma | Proposition 3 bound | mean Var0 | gain at horizon |",
            "|---|---|---|---|---|",
        ]
        for t in sorted(ev.teaching, key=lambda t: t.time):
            lines.append(
                f"| {t.model} | {_fmt(t.time)} | {_fmt(t.bound)} | {_fmt(t.var0)} | "
                f"{_fmt(t.final_gain)} |"
            )
        if ev.rankings:
            lines += ["", "Kendall's tau between the ranking by predicted speed and:", ""]
            lines += [f"* {k.split(' vs ')[1]}: {_fmt(v)}" for k, v in ev.rankings.items()]
    lines += ["", "Figures: variance_accuracy.png, prompt_variance.png"]
    if ev.teaching:
        lines[-1] += ", teaching_times.png"
    return "\n".join(lines) + "\n"


def write_report(ev: Evaluation, directory) -> Path:
    """Write report.md, evaluation.json and the figures into ``directory``; returns its path."""
    if not isinstance(ev, Evaluation):
        raise ValueError(f"`ev` must be an Evaluation (see evaluate); got {type(ev).__name__}.")
    if not isinstance(directory, str | Path):
        raise ValueError(f"`directory` must be a path; got {directory!r}.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from theory_sim.plotting import (
        plot_prompt_variance,
        plot_teaching_times,
        plot_variance_accuracy,
    )

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(_markdown(ev))
    payload = {
        "summary": ev.summary,
        "measures": [dataclasses.asdict(m) for m in ev.measures],
        "teaching": [dataclasses.asdict(t) for t in ev.teaching],
        "rankings": ev.rankings,
    }
    (out / "evaluation.json").write_text(dumps(payload, indent=1))
    acc = (
        "on-policy accuracy"
        if any(m.name == "on-policy accuracy" for m in ev.measures)
        else ("accuracy")
    )
    figures = {"prompt_variance.png": plot_prompt_variance(ev.prompt_variance)}
    if any(m.name == acc for m in ev.measures):
        figures["variance_accuracy.png"] = plot_variance_accuracy(ev.measures, accuracy=acc)
    if ev.teaching:
        figures["teaching_times.png"] = plot_teaching_times(ev.teaching)
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
    return out
