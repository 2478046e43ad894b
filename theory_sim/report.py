"""Tables and files: markdown tables for notebooks and reports, and :func:`reproduce`, which writes
every figure and table of the notebooks (``theory-sim reproduce``).

``reproduce`` works in sections, one or two per notebook. A section that finishes (its tables
written, its figures drawn) is recorded in ``out/.reproduce.json`` with the SHA-256 of each of
its files, so an interrupted run resumes: a rerun with the same sizes and the same theory_sim
code keeps every recorded section whose files are intact and computes only the others. Changed
sizes or changed code start over, and the run says so.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["markdown_table", "reproduce", "write_csv"]


def _cell(value, digits: int) -> str:
    if value is None:  # a value that does not exist (a measure the paper does not report)
        return "–"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, digits: int = 4):
    """Rows of dicts as a markdown table (floats to ``digits`` significant digits, nan and None
    as "–")."""
    if not rows:
        raise ValueError("`rows` is empty: nothing to tabulate.")
    columns = list(rows[0]) if columns is None else list(columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, ""), digits) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_csv(path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Rows of dicts as a CSV file with a header (default columns: the first row's keys), floats
    in full precision. Written atomically (a temporary file, fsync, rename): a reader, or a rerun
    after an interruption, sees all the rows or none."""
    if not rows:
        raise ValueError("`rows` is empty: nothing to write.")
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0] if columns is None else columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


MANIFEST = ".reproduce.json"
QUICK_TIGHTNESS_EVALUATIONS = 16  # per claim; the notebook's 240 take minutes


@dataclasses.dataclass(frozen=True)
class _Section:
    """One section of the report: its tasks (run on the story threads) and the writer that turns
    their results into files and text, ``write(out, results, figure) -> (files, text)``."""

    name: str
    title: str
    notebook: str
    tasks: Callable[[Callable[[str], dict]], list[Callable]]
    write: Callable


def _sections() -> list[_Section]:
    import jax

    from theory_sim import stories
    from theory_sim.experiments import estimator_snr_study
    from theory_sim.flow import gradient_flow
    from theory_sim.instances import random_problem
    from theory_sim.policies import Autoregressive
    from theory_sim.theorems import tightness_search

    def quickstart(size):
        problem = random_problem(1, 10, key=jax.random.key(0), logit_std=1.5)
        return [lambda: gradient_flow(problem, 100.0)]

    def flat(size):
        return [
            functools.partial(stories.flat_landscape, policy, family, **size("flat_landscape"))
            for policy in ("tabular", "autoregressive")
            for family in stories.FLAT_FAMILIES
        ]

    def section_4_1(policy):
        return lambda size: [functools.partial(stories.section_4_1, policy, **size("section_4_1"))]

    def evaluation(size):
        from pathlib import Path

        from theory_sim.evaluate import evaluate, validation

        example = Path(__file__).resolve().parents[1] / "examples" / "reward_dump.csv"
        tasks = [functools.partial(validation.validation_study, **size("validation_study"))]
        return tasks + ([functools.partial(evaluate, example)] if example.is_file() else [])

    def tightness(size):
        evaluations = size("tightness").get("evaluations", 240)
        return [functools.partial(tightness_search, seed=0, evaluations=evaluations)]

    return [
        _Section("quickstart", "1. Quickstart: reward against time", "01_quickstart.ipynb",
                 quickstart, _write_quickstart),
        _Section("flat_landscape", "2. Flat landscape: t_gamma against Var0 with both bounds",
                 "02_flat_landscape.ipynb", flat, _write_flat),
        _Section("theorem_5", "3. Accuracy is not enough (Theorem 5)",
                 "03_accuracy_is_not_enough.ipynb",
                 lambda size: [
                     functools.partial(stories.theorem_5_story, **size("theorem_5_story")),
                     functools.partial(stories.accuracy_variance_grid,
                                       **size("accuracy_variance_grid")),
                 ], _write_theorem_5),
        _Section("theorem_6", "4. The teacher depends on the student (Theorem 6)",
                 "04_teacher_depends_on_student.ipynb",
                 lambda size: [
                     stories.theorem_6_story,
                     functools.partial(stories.teacher_student, **size("teacher_student")),
                 ], _write_theorem_6),
        _Section("section_4_1_tabular", "5. Section 4.1 in the tabular world (tabular policy)",
                 "05_section_4_1.ipynb", section_4_1(None),
                 functools.partial(_write_section_4_1, "tabular")),
        _Section("section_4_1_autoregressive",
                 "6. Section 4.1 in the tabular world (autoregressive policy)",
                 "06_autoregressive.ipynb", section_4_1(Autoregressive(2, 4)),
                 functools.partial(_write_section_4_1, "autoregressive")),
        _Section("sequences", "6b. Autoregressive teachers, sequences decoded",
                 "06_autoregressive.ipynb", lambda size: [stories.sequence_teachers],
                 _write_sequences),
        _Section("estimators", "7. Sampled estimators", "07_estimators_snr.ipynb",
                 lambda size: [functools.partial(estimator_snr_study,
                                                 **size("estimator_snr_study"))],
                 _write_estimators),
        _Section("remark_1", "8. Neural policies: does the Jacobian grow enough? (Remark 1)",
                 "08_neural_policies.ipynb",
                 lambda size: [functools.partial(stories.remark_1, **size("remark_1"))],
                 _write_remark_1),
        _Section("tightness", "9. How sharp the constants are (the tightness search)",
                 "09_tightness.ipynb", tightness, _write_tightness),
        _Section("evaluate", "10. Reward models judged from score dumps",
                 "10_evaluate_reward_models.ipynb", evaluation, _write_evaluation),
        _Section("verifiable", "11. Verifiable rewards, noisy verifiers and GRPO",
                 "11_verifiable_rewards_and_grpo.ipynb",
                 lambda size: [
                     functools.partial(stories.verifier_phases, **size("verifier_phases")),
                     functools.partial(stories.group_exponents, "concentration",
                                       **size("group_exponents")),
                     functools.partial(stories.group_exponents, "reward_scale",
                                       **size("group_exponents")),
                     stories.beneficial_errors,
                     functools.partial(stories.step_thresholds, **size("step_thresholds")),
                 ], _write_verifiable),
    ]  # fmt: skip


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes: how reproduce and sweeps tell an intact file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _kept_sections(out: Path, run: dict, say: Callable[[str], None]) -> dict:
    """The sections a previous run recorded in ``out``'s manifest that this run can keep: same
    sizes and code, every file present with its recorded digest. Says what it keeps or why it
    starts over."""
    path = out / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
        recorded = dict(manifest["sections"])
    except (ValueError, KeyError, TypeError):
        say(f"{path} is damaged: starting over")
        return {}
    if manifest.get("run") != run:
        why = "other sizes" if manifest.get("run", {}).get("quick") != run["quick"] else (
            "another version of theory_sim")  # fmt: skip
        say(f"{out} holds a run with {why}: starting over")
        return {}
    kept = {}
    for name, entry in recorded.items():
        files = entry.get("files", {})
        if all((out / f).is_file() and file_sha256(out / f) == d for f, d in files.items()):
            kept[name] = entry
        else:
            say(f"section {name}: a file is missing or changed; computing it again")
    if kept:
        say(f"resuming: {len(kept)} finished section(s) kept ({', '.join(kept)})")
    return kept


def reproduce(out, *, quick: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """Run every story of the notebooks and write its figures (PNG, PDF), tables (CSV) and a
    markdown report linking them, ``out/report.md``. ``quick`` uses :data:`stories.QUICK` sizes
    (and 16 tightness evaluations per claim instead of the notebook's 240) and writes the figures
    as PNG only (the report shows the PNGs; PDF, for papers, costs a third of the figures'
    drawing time).

    Every notebook is covered, 01 to 11 (10's example dump where examples/ is present). A run
    that is interrupted keeps the sections it finished; the same call again resumes (see the
    module docstring).

    Returns:
        The path of the report.
    """
    from theory_sim import stories
    from theory_sim._figures import FORMATS, Figures
    from theory_sim._parallel import threaded_map
    from theory_sim.cache import _code_version

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def say(text: str) -> None:
        if progress is not None:
            progress(f"{text} ({time.perf_counter() - started:.0f} s)")

    def size(name: str) -> dict:
        if name == "tightness":
            return {"evaluations": QUICK_TIGHTNESS_EVALUATIONS} if quick else {}
        return stories.QUICK.get(name, {}) if quick else {}

    run = {"quick": bool(quick), "code": _code_version()}
    sections = _sections()
    kept = _kept_sections(out, run, say)
    todo = [(s, s.tasks(size)) for s in sections if s.name not in kept]
    finished: dict[str, dict] = {}
    figures = Figures(out, ("png",) if quick else FORMATS)
    # The stories are independent: they run on one thread per core, in this order, while this
    # thread writes each section's tables as soon as its results are in and asks for its
    # figures, which a process of their own draws (see theory_sim._figures). Leaving the
    # figures' block waits for every figure asked for, also after Ctrl-C, so every section
    # written by then is whole and is recorded.
    try:
        with (
            figures,
            contextlib.closing(
                threaded_map(lambda t: t(), [t for _, tasks in todo for t in tasks])
            ) as done,
        ):
            for section, tasks in todo:
                say(section.title)
                results = [next(done) for _ in tasks]
                files, text = section.write(out, results, figures)
                finished[section.name] = {"files": files, "text": text}
    finally:
        recorded = {**kept}
        for name, entry in finished.items():
            digests = {f: file_sha256(out / f) for f in entry["files"] if (out / f).is_file()}
            if len(digests) == len(entry["files"]):
                recorded[name] = {"files": digests, "text": entry["text"]}
        tmp = out / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps({"run": run, "sections": recorded}, indent=1))
        os.replace(tmp, out / MANIFEST)

    lines = [
        "# theory_sim: the paper's stories, reproduced",
        "",
        f"Sizes: {'quick (smoke)' if quick else 'full'}. Each section names the notebook that "
        "tells the same story; every number is exact (float64) unless marked RLOO.",
    ]
    for section in sections:
        entry = recorded[section.name]
        lines += ["", f"## {section.title}", "", f"Notebook: `notebooks/{section.notebook}`.", ""]
        if entry["text"]:
            lines += [entry["text"], ""]
        for name in entry["files"]:
            if name.endswith(".png"):
                lines.append(f"![{name}]({name})")
            elif not name.endswith(".pdf"):
                lines.append(f"- [{name}]({name})")
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    say("done")
    return report


def _write_quickstart(out: Path, results, figure):
    return figure("plot_reward_curves", results[0], "quickstart"), ""


def _write_flat(out: Path, lands, figure):
    rows = [r for land in lands for r in land.rows()]
    write_csv(out / "flat_landscape.csv", rows)
    files = figure("plot_flat_landscape", lands, "flat_landscape")
    fits = [
        {"policy": x.policy, "family": x.family, "slope": x.fit.slope, "stderr": x.fit.stderr}
        for x in lands
    ]
    text = markdown_table(fits) + (
        "\n\nEvery point at or above both bounds: "
        f"{all(r['t_gamma'] >= r['theorem_4_bound'] for r in rows)}."
    )
    return [*files, "flat_landscape.csv"], text


def _write_theorem_5(out: Path, results, figure):
    story5, grid = results
    write_csv(out / "theorem_5.csv", story5.rows)
    files = figure("plot_theorem_5", story5, "theorem_5")
    write_csv(out / "accuracy_variance.csv", grid.rows())
    files += figure("plot_accuracy_variance", grid, "accuracy_variance")
    return [*files, "theorem_5.csv", "accuracy_variance.csv"], markdown_table(story5.rows)


def _write_theorem_6(out: Path, results, figure):
    story6, student = results
    files = figure("plot_theorem_6", story6, "theorem_6")
    rows6 = [
        {"initial policy": f"policy {p}", "best teacher": best}
        | {m: float(student.gain[p, i]) for i, m in enumerate(student.models)}
        for p, best in enumerate(student.best)
    ]
    write_csv(out / "teacher_student.csv", rows6)
    files += figure("plot_teacher_student", student, "teacher_student")
    flip = [{"from": f, "t(r_RM)": t[0], "t(r'_RM)": t[1]} for f, t in zip(
        ("Pi", "Pi'"), story6.times, strict=True)]  # fmt: skip
    text = markdown_table(flip) + "\n\n" + markdown_table(rows6, digits=3)
    return [*files, "teacher_student.csv"], text


def _write_section_4_1(label: str, out: Path, results, figure):
    (study,) = results
    name = f"section_4_1_{label}"
    write_csv(out / f"{name}_table_1.csv", study.table_1)
    write_csv(out / f"{name}_table_2.csv", study.table_2)
    files = figure("plot_section_4_1", study, name)
    columns_1 = [c for c in study.table_1[0] if not c.endswith(" sd")]
    columns_2 = [
        "models",
        "measure",
        "increase",
        "method",
        "pearson",
        "pearson > 0",
        "paper pearson",
        "spearman",
        "spearman > 0",
        "paper spearman",
    ]
    text = (
        "Table 1 analogue (mean over seeds)\n\n"
        + markdown_table(study.table_1, columns_1, 3)
        + "\n\nTable 2 analogue (correlation across reward models, mean over seeds)\n\n"
        + markdown_table(study.table_2, columns_2, 3)
        + "\n\nThe paper's findings against the simulation\n\n"
        + markdown_table(study.findings)
    )
    return [*files, f"{name}_table_1.csv", f"{name}_table_2.csv"], text


def _write_sequences(out: Path, results, figure):
    (seq,) = results
    rows_seq = [{"teacher": name} | row for name, t in seq.tables.items() for row in t]
    write_csv(out / "sequences.csv", rows_seq)
    return ["sequences.csv"], markdown_table(rows_seq, digits=3)


def _write_estimators(out: Path, results, figure):
    (snr,) = results
    write_csv(out / "estimators_snr.csv", snr)
    files = figure("plot_snr_study", snr, "estimators_snr")
    return [*files, "estimators_snr.csv"], ""


def _write_remark_1(out: Path, results, figure):
    (study,) = results
    write_csv(out / "remark_1.csv", study.rows)
    write_csv(out / "remark_1_fits.csv", study.fits)
    files = [*figure("plot_remark_1", study, "remark_1"),
             *figure("plot_remark_1_paths", study, "remark_1_paths")]  # fmt: skip
    shown = ("parameterisation", "depth", "width", "kl_coef", "slope", "slope_low", "slope_high",
             "J_ratio_median", "min_bound_ratio")  # fmt: skip
    table = markdown_table([{k: f[k] for k in shown} for f in study.fits], digits=3)
    return [*files, "remark_1.csv", "remark_1_fits.csv"], table


def _write_evaluation(out: Path, results, figure):
    study = results[0]
    write_csv(out / "evaluate_coverage.csv", study["coverage"])
    ranking = study["ranking"]
    rows = [{"seed": s, "tau (predicted t)": a, "tau (accuracy)": b, "tau (variance)": c}
            for s, a, b, c in zip(ranking["seeds"], ranking["tau"], ranking["tau accuracy"],
                                  ranking["tau variance"], strict=True)]  # fmt: skip
    write_csv(out / "evaluate_ranking.csv", rows)
    files = figure("plot_convergence", study["errors"], "evaluate_convergence")
    text = markdown_table(study["coverage"], digits=3) + "\n\n" + markdown_table(rows, digits=2)
    if len(results) > 1:  # the example dump of examples/ (a source checkout)
        ev = results[1]
        files += figure("plot_variance_accuracy", ev.measures, "evaluate_variance_accuracy")
        files += figure("plot_teaching_times", ev.teaching, "evaluate_teaching_times")
    return [*files, "evaluate_coverage.csv", "evaluate_ranking.csv"], text


def _write_verifiable(out: Path, results, figure):
    phases, *studies, beneficial, thresholds = results
    rows = [
        {"false_positive": float(a), "false_negative": float(b), "J": float(phases.j[i, k]),
         "t_gamma": float(phases.time[i, k]), "t_gamma(1) / J": float(phases.predicted[i, k]),
         "gain": float(phases.gain[i, k])}
        for i, a in enumerate(phases.rates) for k, b in enumerate(phases.rates)
    ]  # fmt: skip
    write_csv(out / "verifier_phases.csv", rows)
    fits = [row for study in studies for row in study.rows()]
    write_csv(out / "group_exponents.csv", fits)
    files = figure("plot_verifier_phases", phases, "verifier_phases")
    files += figure("plot_group_exponents", studies, "group_exponents")
    write_csv(out / "beneficial_errors.csv", beneficial.rows)
    files += figure("plot_beneficial_errors", beneficial, "beneficial_errors")
    step_rows = thresholds.rows()
    write_csv(out / "step_thresholds.csv", step_rows)
    files += figure("plot_step_thresholds", thresholds, "step_thresholds")
    text = "\n\n".join(markdown_table(t, digits=d) for t, d in
                       ((fits, 3), (beneficial.rows, 4), (step_rows, 3)))  # fmt: skip
    names = ["verifier_phases.csv", "group_exponents.csv", "beneficial_errors.csv",
             "step_thresholds.csv"]  # fmt: skip
    return [*files, *names], text


def _write_tightness(out: Path, results, figure):
    (found,) = results
    rows = [
        {
            "claim": r.claim,
            "relation": r.relation,
            "slack": r.slack,
            "status": r.check.status,
            "tightest instance": r.check.instance,
        }
        for r in found
    ]
    write_csv(out / "tightness.csv", rows)
    files = figure("plot_tightness", found, "tightness")
    return [*files, "tightness.csv"], markdown_table(rows)
