"""``theory-sim``: the command line. It parses arguments and calls experiments and plotting."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from theory_sim._names import TIGHTNESS_CLAIMS
from theory_sim._tables import WIDTH, clip, exponents, format_number, status_counts, summary, table

__all__ = ["main"]

_BOUND_EXPONENT = {"tabular": "-1/2 (Proposition 3)", "autoregressive": "-1/3 (Theorem 4)"}


def _progress(done: int, total: int, what: str = "checking instance") -> None:
    """Progress on stderr (never mixed with the table or JSON on stdout)."""
    sys.stderr.write(f"\r{what} {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _exponents(seed: int) -> dict:
    from theory_sim.experiments import EXPONENT_FAMILIES, exponent_study

    studies = [(p, f) for p in ("tabular", "autoregressive") for f in EXPONENT_FAMILIES]
    fits = {}
    for done, (policy, family) in enumerate(studies):
        _progress(done, len(studies), "fitting exponents")
        fits[policy, family] = exponent_study(policy, family, seed=seed)
    _progress(len(studies), len(studies), "fitting exponents")
    return fits


def _exponent_rows(fits: dict) -> list[dict]:
    return [
        {
            "policy": policy,
            "family": family,
            "slope": fit.slope,
            "stderr": fit.stderr,
            "decades": fit.decades,
            "points": len(fit.var0),
            "bound_exponent": _BOUND_EXPONENT[policy],
        }
        for (policy, family), fit in fits.items()
    ]


def _write_figures(directory: str, checks, fits: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from theory_sim.plotting import plot_bound_check, plot_exponent_fits

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    for claim, name in (("Proposition 3", "proposition_3.png"), ("Theorem 4", "theorem_4.png")):
        figures[name] = plot_bound_check(
            [c for c in checks if c.claim == claim],
            title=rf"{claim}: $t_\gamma$ against its lower bound",
        )
    if fits:
        figures["exponents.png"] = plot_exponent_fits(
            {f"{policy}, {family}": fit for (policy, family), fit in fits.items()}
        )
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=130)
        print(f"figure: {out / name}", file=sys.stderr)


def _check(args) -> int:
    from theory_sim import experiments

    checks = experiments.check_suite(
        seed=args.seed, num_instances=args.instances, progress=_progress
    )
    fits = {} if args.no_exponents else _exponents(args.seed)
    failed = [c for c in checks if not c.holds]
    if args.json:
        from theory_sim import _json
        from theory_sim.theorems import tightest

        payload = {
            "summary": status_counts(checks),
            "claims": tightest(checks),
            "checks": [c.as_dict() for c in checks],
            "exponents": _exponent_rows(fits),
        }
        print(_json.dumps(payload, indent=1))
    else:
        from theory_sim.theorems import tightest

        print(table(checks, wide=args.wide))
        print("\n" + summary(checks, tightest(checks)))
        if fits:
            print("\n" + exponents(_exponent_rows(fits)))
    if args.figures is not None:
        _write_figures(args.figures, checks, fits)
    return 1 if failed else 0


def _bar(description: str, unit: str = "cell"):
    """A tqdm progress bar driven by ``(done, total)`` callbacks; closed when done reaches
    total (later calls are ignored)."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, desc=description, unit=unit)
        if bar.n >= bar.total:
            return
        bar.update(min(done, total) - bar.n)
        if done >= total:
            bar.close()

    return update


def _tightness(args) -> int:
    from theory_sim.theorems import TIGHTNESS_CLAIMS, search_tightness

    claims = args.claim or list(TIGHTNESS_CLAIMS)
    unknown = [c for c in claims if c not in TIGHTNESS_CLAIMS]
    if unknown:
        raise ValueError(f"--claim must be one of {list(TIGHTNESS_CLAIMS)}; got {unknown}.")
    if args.evaluations < 8:
        raise ValueError(f"--evaluations must be >= 8; got {args.evaluations}.")
    results = []
    for i, claim in enumerate(claims):
        update = _bar(f"tightness {i + 1}/{len(claims)} {claim}", unit="instance")
        found = search_tightness(
            claim,
            seed=args.seed,
            evaluations=args.evaluations,
            progress=lambda done, total, _, update=update: update(done, total),
        )
        update(args.evaluations, args.evaluations)
        results.append(found)
    if args.json:
        from theory_sim import _json

        print(_json.dumps([r.as_dict() for r in results], indent=1))
    else:
        print(_tightness_table(results))
    if args.figures is not None:
        from theory_sim.plotting import plot_tightness

        out = Path(args.figures)
        out.mkdir(parents=True, exist_ok=True)
        plot_tightness(results).savefig(out / "tightness.png", dpi=130)
        print(f"figure: {out / 'tightness.png'}", file=sys.stderr)
    return 1 if any(r.violated for r in results) else 0


def _tightness_table(results) -> str:
    """One line per claim (relation, slack, status, the tightest instance), then the slack by
    output-space size and the search behind each claim, within :data:`WIDTH` columns."""
    lines = [f"{'claim':<32} {'rel':<3} {'slack':>10}  {'status':<7}  tightest instance"]
    for r in results:
        lines.append(
            f"{r.claim:<32} {r.relation:<3} {format_number(r.slack):>10}  {r.check.status:<7}  "
            f"{clip(r.check.instance, WIDTH - 57)}"
        )
    lines += ["", "slack by size (smallest found; 1 = sharp, < 1 = violated):"]
    for r in results:
        sizes = ", ".join(f"{k}: {format_number(v)}" for k, v in r.by_size.items())
        lines.append(f"  {r.claim:<32} {sizes}")
    lines += ["", "search:"]
    lines += [f"  {r.claim:<32} {r.method}" for r in results]
    for r in results:
        if r.failures:
            lines.append(
                f"{r.claim}: {r.failures} instance(s) whose solve failed were skipped; the "
                f"first: {r.failure}"
            )
    return "\n".join(lines)


def _sweep(args) -> int:
    import jax

    from theory_sim.sweep import CONFIRM_SECONDS, load_config, run_sweep

    config = load_config(args.config)
    seconds = config.estimated_seconds()
    if seconds > CONFIRM_SECONDS and not args.yes:
        raise ValueError(
            f"this grid of {config.num_cells} cells x {config.prompts} prompt(s) x "
            f"{config.outputs} outputs is estimated at about {seconds / 3600:.2g} h on one device, "
            f"above the {CONFIRM_SECONDS / 3600:g} h that runs without asking; pass --yes to run "
            "it (saved cells survive an interruption) or shrink the grid."
        )
    if args.distributed:
        # None lets JAX detect them (Slurm, Open MPI, TPU pods); JAX_COORDINATOR_ADDRESS also works
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    try:
        rows = run_sweep(
            config,
            args.out,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            progress=_bar("sweep"),
            notice=_notice("sweep"),
        )
    finally:
        if args.distributed:  # not left to an exit handler: the console script skips those
            jax.distributed.shutdown()
    cells, total = len({r["cell"] for r in rows}), config.num_cells
    failed = _cells_with(rows, "solver failed")
    infeasible = _cells_with(rows, "infeasible")
    if infeasible:
        _notice("sweep")(
            f"{len(infeasible)} cell(s) infeasible for their seed, recorded in the results with "
            f"the reason (every measure NaN): {_first(infeasible)}"
        )
    if failed:
        _notice("sweep")(
            f"{len(failed)} cell(s) whose solve failed (t_gamma and gains NaN): {_first(failed)}"
            + ("" if args.keep_going else "; exit code 1 (--keep-going: 0)")
        )
    if cells == total:
        print(f"{cells} of {total} cells in {Path(args.out) / 'results.csv'}")
    else:  # other processes of a distributed sweep are still running
        print(
            f"{cells} of {total} cells saved in {Path(args.out) / 'parts'}; rerun the command "
            "once every process has finished to assemble results.csv"
        )
    return 1 if failed and not args.keep_going else 0


def _cells_with(rows, status: str) -> dict[int, str]:
    """{cell: status} of the rows whose status starts with ``status``."""
    return {r["cell"]: r["status"] for r in rows if r["status"].startswith(status)}


def _first(cells: dict[int, str], count: int = 3) -> str:
    shown = [f"cell {c} ({s})" if ":" in s else f"cell {c}" for c, s in list(cells.items())[:count]]
    return "; ".join(shown) + (f"; and {len(cells) - count} more" if len(cells) > count else "")


def _notice(command: str):
    """A one-line message on stderr, prefixed with the subcommand."""
    return lambda message: print(f"theory-sim {command}: {message}", file=sys.stderr)


def _plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from theory_sim.plotting import plot_sweep
    from theory_sim.sweep import load_results

    def notice(message: str) -> None:  # a results file that does not match its checksum
        print(f"theory-sim plot: {message}", file=sys.stderr)

    rows = load_results(args.results, notice=notice)
    fig = plot_sweep(rows, horizon=args.horizon)  # validates first
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        fig.savefig(out / f"sweep.{suffix}", dpi=150)
    print(f"wrote {out / 'sweep.png'} and {out / 'sweep.pdf'}")
    return 0


def _reproduce(args) -> int:
    from theory_sim.report import reproduce

    def say(message: str) -> None:
        sys.stderr.write(f"reproduce: {message}\n")

    report = reproduce(args.out, quick=args.quick, progress=say)
    print(f"wrote {report}")
    return 0


def _evaluate(args) -> int:
    from theory_sim.evaluate import evaluate, load_dump, write_report

    dump = load_dump(args.dump, gold=args.gold, logprob=args.logprob, models=args.model,
                     prompt=args.prompt, response=args.response,
                     gold_labels=args.labels)  # fmt: skip
    ev = evaluate(
        dump, gamma=args.gamma, kl_coef=args.kl_coef, flow_prompts=args.flow_prompts,
        resamples=args.resamples, threshold=args.threshold, seed=args.seed,
        normalise=not args.no_normalise, progress=_progress,
    )  # fmt: skip
    out = write_report(ev, args.out)
    rows = [m for m in ev.measures if not m.name.startswith("variance q")]
    width = max(len(m.model) for m in rows)
    for m in rows:
        print(f"{m.model:<{width}}  {m.name:<20} {format_number(m.value):>10}  "
              f"[{format_number(m.low)}, {format_number(m.high)}]")  # fmt: skip
    for t in sorted(ev.teaching, key=lambda t: t.time):
        print(f"{t.model:<{width}}  {'predicted t_gamma':<20} {format_number(t.time):>10}  "
              f"(Proposition 3 bound {format_number(t.bound)})")  # fmt: skip
    for name, tau in ev.rankings.items():
        print(f"Kendall tau, {name}: {format_number(tau)}")
    if dump.excluded:
        print(f"excluded: {len(dump.excluded)} prompts with a single response")
    print(f"report: {out / 'report.md'}")
    return 0


def _interrupted(args) -> str:
    """One line for Ctrl-C: what is kept and how to go on."""
    if args.command == "sweep":
        return (
            f"the cells already saved in {Path(args.out) / 'parts'} are kept; run the same "
            "command again to resume"
        )
    if args.command == "reproduce":
        return (
            f"the sections finished so far are kept in {args.out}; run the same command again "
            "to resume"
        )
    if args.command in ("check", "tightness"):
        return "nothing was saved; run it again"
    return "nothing was written"


_CHECK_HELP = """Check every claim of arXiv 2503.15477 that theory_sim covers: Propositions 1-4,
Theorems 4-6 and Lemmas 9-10, on seeded random instances (tabular policies with lambda in {0, 0.01,
0.1, 1}; autoregressive, log-linear, transformer and MLP policies; a prompt held out of a
log-linear policy's training set) and on the paper's counterexamples (Theorems 5 and 6,
Propositions 1 and 4). The table has one block per claim; each row shows the measured side, the
paper's bound, their ratio and a status: holds, FAILS, or vacuous (a row that could not have
failed, such as a lower bound on a target the flow never reaches). Rows decided by a tolerance
(equalities, bounds of 0) state it in their claim's heading. Then fits the exponent of t_gamma
against Var0 and compares it with the bounds' exponents. Exit code 1 if any row fails. Progress
goes to stderr, the table or JSON to stdout."""

_REPRODUCE_HELP = """Run every story of the notebooks 01-09 (quickstart, flat landscapes,
accuracy is not enough, the teacher depends on the student, Section 4.1 for tabular and
autoregressive policies, estimator SNR, neural policies and Remark 1, the tightness search) and
write their figures (PNG and PDF), tables (CSV) and a markdown report to --out. A run that is
interrupted keeps the sections it finished (recorded with checksums in --out/.reproduce.json);
the same command again resumes, and starts over if the sizes or theory_sim's code changed."""

_SWEEP_HELP = """Run a grid of cells (policy x reward model x kl_coef x seed) described by a TOML
file and write one tidy row per cell and horizon to --out/results.csv. Cells are saved as they
finish, with a checksum, so an interrupted sweep resumes where it stopped when the same command
is run again (a damaged part is recomputed); with --distributed the cells are split across
jax.distributed processes. A cell infeasible for its seed is recorded with the reason; a cell
whose solve fails is reported, and the exit code is 1 unless --keep-going."""

_TIGHTNESS_HELP = """Search, per bound of arXiv 2503.15477 with a constant in it (Lemma 8,
Propositions 2, 3 and 4, Theorem 4, the fast bounds of Theorems 5 and 6, Lemma 10), for the
instance on which the bound is sharpest: Adam through the exact quantities for the pointwise
bounds, seeded CMA-ES over tabular and autoregressive instances for the time bounds. Prints the
slack (measured/bound for a lower bound, bound/measured for an upper one: 1 is sharp, below 1 a
violation) with the instance. Exit code 1 if any bound is violated. Progress goes to stderr."""

_PLOT_HELP = """Draw the standard figures of a finished sweep from its results directory: the
ground-truth gain at --horizon against Var_pi0 r_RM and against accuracy, and t_gamma against
Var_pi0 r_RM, one colour per reward model and one marker per initial policy (sweep.png, .pdf)."""


_EVALUATE_HELP = """Measure reward models from a score dump (one row per prompt and response,
a score column per model, optionally gold scores or 0/1 labels and the policy's
log-probabilities): accuracy, reward variance under the policy and verifier rates with bootstrap
intervals over prompts, and the teaching time each model predicts by the exact tabular flow on
the sampled responses (arXiv 2503.15477: variance, not accuracy alone, decides the speed).
Writes report.md, evaluation.json and figures to --out."""


def main(argv: list[str] | None = None) -> int:
    from theory_sim import __version__

    parser = argparse.ArgumentParser(
        prog="theory-sim",
        description="Exact checks of the theory of arXiv 2503.15477 on tabular RLHF instances.",
    )
    parser.add_argument("--version", action="version", version=f"theory-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check",
        help="check every available claim on seeded random instances",
        description=_CHECK_HELP,
    )
    check.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    check.add_argument(
        "--instances", type=int, default=24, help="number of random instances (default 24)"
    )
    check.add_argument("--json", action="store_true", help="print the checks as JSON")
    check.add_argument(
        "--wide",
        action="store_true",
        help=f"one row per check with its claim and whole instance label (default: a block per "
        f"claim within {WIDTH} columns)",
    )
    check.add_argument(
        "--figures", metavar="DIR", default=None, help="also write figures (PNG) to DIR"
    )
    check.add_argument(
        "--no-exponents",
        action="store_true",
        help="skip the exponent fits of t_gamma against Var0",
    )
    repro = sub.add_parser(
        "reproduce",
        help="every figure and table of the notebooks, with a markdown report",
        description=_REPRODUCE_HELP,
    )
    repro.add_argument("--out", required=True, help="directory for figures, tables and report.md")
    repro.add_argument(
        "--quick",
        action="store_true",
        help="smoke sizes (16 tightness evaluations per claim instead of 240), figures as PNG only",
    )
    sweep = sub.add_parser(
        "sweep",
        help="run (or resume) a grid of cells described by a TOML config",
        description=_SWEEP_HELP,
    )
    sweep.add_argument("config", help="the sweep's TOML file (see examples/sweep.toml)")
    sweep.add_argument("--out", required=True, help="results directory (resumed if it exists)")
    sweep.add_argument(
        "--yes",
        action="store_true",
        help="run a grid estimated to take more than an hour without asking",
    )
    sweep.add_argument(
        "--keep-going",
        action="store_true",
        help="exit 0 even if some cells' solves failed (they are reported either way)",
    )
    sweep.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() and split the cells across its processes",
    )
    sweep.add_argument("--coordinator", default=None, help="with --distributed: HOST:PORT")
    sweep.add_argument("--num-processes", type=int, default=None, help="with --distributed")
    sweep.add_argument("--process-id", type=int, default=None, help="with --distributed")
    tight = sub.add_parser(
        "tightness",
        help="search for the instances on which each bound is sharpest",
        description=_TIGHTNESS_HELP,
    )
    tight.add_argument("--seed", type=int, default=0, help="the searches' seed (default 0)")
    tight.add_argument(
        "--evaluations",
        type=int,
        default=240,
        help="instances per claim, split over its sizes (default 240)",
    )
    tight.add_argument(
        "--claim",
        action="append",
        default=None,
        help="a claim to search (repeatable; default all), one of: "
        + ", ".join(repr(c) for c in TIGHTNESS_CLAIMS),
    )
    tight.add_argument("--json", action="store_true", help="print the results as JSON")
    tight.add_argument(
        "--figures", metavar="DIR", default=None, help="also write tightness.png to DIR"
    )
    plot = sub.add_parser(
        "plot", help="the standard figures of a sweep's saved results", description=_PLOT_HELP
    )
    plot.add_argument("results", help="a sweep's results directory")
    plot.add_argument("--out", required=True, help="directory for the figures")
    plot.add_argument(
        "--horizon", type=float, default=None, help="horizon of the gain panels (default largest)"
    )
    ev = sub.add_parser(
        "evaluate", help="measure reward models from a score dump", description=_EVALUATE_HELP
    )
    ev.add_argument("dump", help="the dump: .csv, .jsonl, .json, .parquet or .npz")
    ev.add_argument("--out", required=True, help="directory for report.md, JSON and figures")
    ev.add_argument("--gold", default=None, help="gold score or 0/1 label column (default: gold)")
    ev.add_argument(
        "--labels",
        action="store_true",
        help="the gold column holds 0/1 labels: any other value is an error",
    )
    ev.add_argument("--logprob", default=None, help="the policy's log-probability column")
    ev.add_argument(
        "--model",
        action="append",
        default=None,
        help="a score column (repeatable; default every other numeric column)",
    )
    ev.add_argument("--prompt", default="prompt_id", help="prompt id column (default prompt_id)")
    ev.add_argument("--response", default="response_id",
                    help="response id column (default response_id)")  # fmt: skip
    ev.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="mean gold gain for t_gamma (default a quarter of the headroom)",
    )
    ev.add_argument("--kl-coef", type=float, default=0.0, help="lambda of the flow (default 0)")
    ev.add_argument(
        "--flow-prompts",
        type=int,
        default=256,
        help="prompts the flow runs on (default 256, drawn with --seed)",
    )
    ev.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    ev.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="verifier decision score > THRESHOLD (default 0.5 for [0, 1], else 0)",
    )
    ev.add_argument("--seed", type=int, default=0, help="bootstrap and prompt-draw seed")
    ev.add_argument("--no-normalise", action="store_true",
                    help="keep the models' relative scales in the flow (default: each normalised "
                    "to mean 0, variance 1 under the policy)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        from theory_sim.cache import enable_compilation_cache  # JAX's import: Ctrl-C is caught

        enable_compilation_cache()
        if args.command == "check":
            if args.instances < 1:
                parser.error("--instances must be >= 1")
            return _check(args)
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "tightness":
            return _tightness(args)
        if args.command == "evaluate":
            return _evaluate(args)
    except ValueError as err:
        parser.exit(2, f"theory-sim {args.command}: error: {err}\n")
    except OSError as err:  # a path that cannot be read or written: one line naming it
        where = f": {err.filename!r}" if err.filename else ""
        parser.exit(2, f"theory-sim {args.command}: error: {err.strerror or err}{where}\n")
    except KeyboardInterrupt:
        sys.stderr.write(f"\ntheory-sim {args.command}: interrupted; {_interrupted(args)}\n")
        return 130
    return 2  # pragma: no cover - argparse rejects unknown commands


def run() -> None:
    """The ``theory-sim`` console script: :func:`main`, then end the process at once.

    Once the command's output is written and flushed, nothing is left to do but tear the
    interpreter down, and JAX's part of that (its exit handler drops every compiled program it
    holds, a hundred or more after ``reproduce`` or ``check``, and unloading them and the modules
    follows) took 0.9 s of a 10 s ``reproduce --quick``. So the process ends with ``os._exit``
    after flushing, as mypy's command line does; :func:`main` itself, called from Python, returns.
    """
    try:
        code = main()
    except SystemExit as stop:  # argparse's --help, --version and usage errors
        code = stop.code
    except KeyboardInterrupt:  # before a subcommand started: nothing was written
        sys.stderr.write("\ntheory-sim: interrupted; nothing was written\n")
        code = 130
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
