"""Tables and files: markdown tables for notebooks and reports, and :func:`reproduce`, which writes
every figure and table of the notebooks (``theory-sim reproduce``)."""

from __future__ import annotations

import contextlib
import csv
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["markdown_table", "reproduce", "write_csv"]


def _cell(value, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, digits: int = 4):
    """Rows of dicts as a markdown table (floats to ``digits`` significant digits, nan as "–")."""
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


def reproduce(out, *, quick: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """Run every story of the notebooks and write its figures (PNG, PDF), tables (CSV) and a
    markdown report linking them, ``out/report.md``. ``quick`` uses :data:`stories.QUICK` sizes
    and writes the figures as PNG only (the report shows the PNGs; PDF, for papers, costs a third
    of the figures' drawing time, which is a fifth of a quick run's CPU).

    Returns:
        The path of the report.
    """
    import jax

    from theory_sim import stories
    from theory_sim._figures import FORMATS, Figures
    from theory_sim._parallel import threaded_map
    from theory_sim.experiments import estimator_snr_study
    from theory_sim.flow import gradient_flow
    from theory_sim.instances import random_problem
    from theory_sim.policies import Autoregressive

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def size(name: str) -> dict:
        return stories.QUICK.get(name, {}) if quick else {}

    sections: list[str] = [
        "# theory_sim: the paper's stories, reproduced",
        "",
        f"Sizes: {'quick (smoke)' if quick else 'full'}. Each section names the notebook that "
        "tells the same story; every number is exact (float64) unless marked RLOO.",
    ]
    started = time.perf_counter()

    def step(title: str) -> None:
        if progress is not None:
            progress(f"{title} ({time.perf_counter() - started:.0f} s)")

    def section(title: str, notebook: str, files: list[str], text: str = "") -> None:
        sections.extend(["", f"## {title}", "", f"Notebook: `notebooks/{notebook}`.", ""])
        if text:
            sections.extend([text, ""])
        for name in files:
            if name.endswith(".png"):
                sections.append(f"![{name}]({name})")
            elif not name.endswith(".pdf"):
                sections.append(f"- [{name}]({name})")

    # The stories are independent: they run on one thread per core, in this order, while this
    # thread writes each one's tables as soon as it is done and asks for its figures, which a
    # process of their own draws (see theory_sim._figures).
    tasks = [
        lambda: gradient_flow(random_problem(1, 10, key=jax.random.key(0), logit_std=1.5), 100.0),
        *(
            functools.partial(stories.flat_landscape, policy, family, **size("flat_landscape"))
            for policy in ("tabular", "autoregressive")
            for family in stories.FLAT_FAMILIES
        ),
        functools.partial(stories.theorem_5_story, **size("theorem_5_story")),
        functools.partial(stories.accuracy_variance_grid, **size("accuracy_variance_grid")),
        stories.theorem_6_story,
        functools.partial(stories.teacher_student, **size("teacher_student")),
        functools.partial(stories.section_4_1, None, **size("section_4_1")),
        functools.partial(stories.section_4_1, Autoregressive(2, 4), **size("section_4_1")),
        stories.sequence_teachers,
        functools.partial(estimator_snr_study, **size("estimator_snr_study")),
        functools.partial(stories.remark_1, **size("remark_1")),
    ]
    figures = Figures(out, ("png",) if quick else FORMATS)
    with figures, contextlib.closing(threaded_map(lambda t: t(), tasks)) as done:
        _write_sections(out, done, step, section, figures)

    report = out / "report.md"
    report.write_text("\n".join(sections) + "\n")
    step("done")
    return report


def _write_sections(out: Path, done, step, section, figure) -> None:
    """Write the tables of :func:`reproduce`'s stories, taken from ``done`` in the order its tasks
    list them, ask ``figure`` for their figures, and add their report sections."""
    from theory_sim import stories

    step("quickstart")
    files = figure("plot_reward_curves", next(done), "quickstart")
    section("1. Quickstart: reward against time", "01_quickstart.ipynb", files)

    step("flat landscape")
    lands = [next(done) for _ in range(2 * len(stories.FLAT_FAMILIES))]
    rows = [r for land in lands for r in land.rows()]
    write_csv(out / "flat_landscape.csv", rows)
    files = figure("plot_flat_landscape", lands, "flat_landscape")
    fits = [
        {"policy": x.policy, "family": x.family, "slope": x.fit.slope, "stderr": x.fit.stderr}
        for x in lands
    ]
    section(
        "2. Flat landscape: t_gamma against Var0 with both bounds",
        "02_flat_landscape.ipynb",
        [*files, "flat_landscape.csv"],
        markdown_table(fits) + f"\n\nEvery point at or above both bounds: "
        f"{all(r['t_gamma'] >= r['theorem_4_bound'] for r in rows)}.",
    )

    step("accuracy is not enough")
    story5 = next(done)
    write_csv(out / "theorem_5.csv", story5.rows)
    files = figure("plot_theorem_5", story5, "theorem_5")
    grid = next(done)
    write_csv(out / "accuracy_variance.csv", grid.rows())
    files += figure("plot_accuracy_variance", grid, "accuracy_variance")
    section(
        "3. Accuracy is not enough (Theorem 5)",
        "03_accuracy_is_not_enough.ipynb",
        [*files, "theorem_5.csv", "accuracy_variance.csv"],
        markdown_table(story5.rows),
    )

    step("the teacher depends on the student")
    story6 = next(done)
    files = figure("plot_theorem_6", story6, "theorem_6")
    student = next(done)
    rows6 = [
        {"initial policy": f"policy {p}", "best teacher": best}
        | {m: float(student.gain[p, i]) for i, m in enumerate(student.models)}
        for p, best in enumerate(student.best)
    ]
    write_csv(out / "teacher_student.csv", rows6)
    files += figure("plot_teacher_student", student, "teacher_student")
    flip = [{"from": f, "t(r_RM)": t[0], "t(r'_RM)": t[1]} for f, t in zip(
        ("Pi", "Pi'"), story6.times, strict=True)]  # fmt: skip
    section(
        "4. The teacher depends on the student (Theorem 6)",
        "04_teacher_depends_on_student.ipynb",
        [*files, "teacher_student.csv"],
        markdown_table(flip) + "\n\n" + markdown_table(rows6, digits=3),
    )

    for label, notebook, number in (
        ("tabular", "05_section_4_1.ipynb", "5"),
        ("autoregressive", "06_autoregressive.ipynb", "6"),
    ):
        step(f"Section 4.1 ({label})")
        study = next(done)
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
        section(
            f"{number}. Section 4.1 in the tabular world ({label} policy)",
            notebook,
            [*files, f"{name}_table_1.csv", f"{name}_table_2.csv"],
            "Table 1 analogue (mean over seeds)\n\n"
            + markdown_table(study.table_1, columns_1, 3)
            + "\n\nTable 2 analogue (correlation across reward models, mean over seeds)\n\n"
            + markdown_table(study.table_2, columns_2, 3)
            + "\n\nThe paper's findings against the simulation\n\n"
            + markdown_table(study.findings),
        )

    step("sequences")
    seq = next(done)
    rows_seq = [{"teacher": name} | row for name, t in seq.tables.items() for row in t]
    write_csv(out / "sequences.csv", rows_seq)
    section(
        "6b. Autoregressive teachers, sequences decoded",
        "06_autoregressive.ipynb",
        ["sequences.csv"],
        markdown_table(rows_seq, digits=3),
    )

    step("estimators")
    snr = next(done)
    write_csv(out / "estimators_snr.csv", snr)
    files = figure("plot_snr_study", snr, "estimators_snr")
    section("7. Sampled estimators", "07_estimators_snr.ipynb", [*files, "estimators_snr.csv"])

    step("neural policies (Remark 1)")
    study = next(done)
    write_csv(out / "remark_1.csv", study.rows)
    files = figure("plot_remark_1", study, "remark_1")
    section(
        "8. Neural policies: does the Jacobian grow enough? (Remark 1)",
        "08_neural_policies.ipynb",
        [*files, "remark_1.csv"],
        markdown_table(study.fits, digits=3),
    )
