"""``theory-sim``: the command line. It parses arguments and calls experiments and plotting."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

__all__ = ["main"]

_BOUND_EXPONENT = {"tabular": "-1/2 (Proposition 3)", "autoregressive": "-1/3 (Theorem 4)"}


def _format_number(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4g}"


def _table(checks) -> str:
    header = ("claim", "instance", "measured", "rel", "bound", "holds")
    rows = [
        (
            c.claim,
            c.instance,
            _format_number(c.measured),
            c.relation,
            _format_number(c.bound),
            "yes" if c.holds else "NO",
        )
        for c in checks
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"\rchecking instance {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _exponents(seed: int) -> dict:
    from theory_sim.experiments import EXPONENT_FAMILIES, exponent_study

    return {
        (policy, family): exponent_study(policy, family, seed=seed)
        for policy in ("tabular", "autoregressive")
        for family in EXPONENT_FAMILIES
    }


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
            title=f"{claim}: t_gamma against its lower bound",
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
        seed=args.seed, num_instances=args.instances, progress=None if args.json else _progress
    )
    fits = {} if args.no_exponents else _exponents(args.seed)
    failed = [c for c in checks if not c.holds]
    if args.json:
        payload = {"checks": [c.as_dict() for c in checks], "exponents": _exponent_rows(fits)}
        print(json.dumps(payload, indent=1, default=float))
    else:
        print(_table(checks))
        print(
            f"\n{len(checks) - len(failed)} of {len(checks)} checks hold"
            + (f"; {len(failed)} FAIL" if failed else ".")
        )
        if fits:
            print("\nExponents: fitted slope of log t_gamma against log Var0 (lambda = 0)")
            for row in _exponent_rows(fits):
                print(
                    f"  {row['policy']:<15} {row['family']:<13} slope {row['slope']:+.4f} "
                    f"± {row['stderr']:.2g} over {row['decades']:.1f} decades "
                    f"({row['points']} points); bound's exponent {row['bound_exponent']}"
                )
    if args.figures is not None:
        _write_figures(args.figures, checks, fits)
    return 1 if failed else 0


def _bar(description: str):
    """A tqdm progress bar driven by ``(done, total)`` callbacks."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, desc=description, unit="cell")
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def _sweep(args) -> int:
    import jax

    from theory_sim.sweep import load_config, run_sweep

    config = load_config(args.config)
    if args.distributed:
        # None lets JAX detect them (Slurm, Open MPI, TPU pods); JAX_COORDINATOR_ADDRESS also works
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    rows = run_sweep(
        config,
        args.out,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        progress=_bar("sweep"),
    )
    cells, total = len({r["cell"] for r in rows}), config.num_cells
    if cells == total:
        print(f"{cells} of {total} cells in {Path(args.out) / 'results.csv'}")
    else:  # other processes of a distributed sweep are still running
        print(
            f"{cells} of {total} cells saved in {Path(args.out) / 'parts'}; rerun the command "
            "once every process has finished to assemble results.csv"
        )
    return 0


def _plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from theory_sim.plotting import plot_sweep
    from theory_sim.sweep import load_results

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = plot_sweep(load_results(args.results), horizon=args.horizon)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="theory-sim",
        description="Exact checks of the theory of arXiv 2503.15477 on tabular RLHF instances.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check every available claim on seeded random instances")
    check.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    check.add_argument(
        "--instances", type=int, default=24, help="number of random instances (default 24)"
    )
    check.add_argument("--json", action="store_true", help="print the checks as JSON")
    check.add_argument(
        "--figures", metavar="DIR", default=None, help="also write figures (PNG) to DIR"
    )
    check.add_argument(
        "--no-exponents",
        action="store_true",
        help="skip the exponent fits of t_gamma against Var0",
    )
    repro = sub.add_parser(
        "reproduce", help="every figure and table of the notebooks, with a markdown report"
    )
    repro.add_argument("--out", required=True, help="directory for figures, tables and report.md")
    repro.add_argument("--quick", action="store_true", help="smoke sizes (about a minute)")
    sweep = sub.add_parser(
        "sweep", help="run (or resume) a grid of cells described by a TOML config"
    )
    sweep.add_argument("config", help="the sweep's TOML file (see examples/sweep.toml)")
    sweep.add_argument("--out", required=True, help="results directory (resumed if it exists)")
    sweep.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() and split the cells across its processes",
    )
    sweep.add_argument("--coordinator", default=None, help="with --distributed: HOST:PORT")
    sweep.add_argument("--num-processes", type=int, default=None, help="with --distributed")
    sweep.add_argument("--process-id", type=int, default=None, help="with --distributed")
    plot = sub.add_parser("plot", help="the standard figures of a sweep's saved results")
    plot.add_argument("results", help="a sweep's results directory")
    plot.add_argument("--out", required=True, help="directory for the figures")
    plot.add_argument(
        "--horizon", type=float, default=None, help="horizon of the gain panels (default largest)"
    )
    args = parser.parse_args(argv)
    try:
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
    except ValueError as err:
        parser.exit(2, f"theory-sim {args.command}: error: {err}\n")
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
