"""``theory-sim``: the command line. It parses arguments and calls experiments and plotting."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

__all__ = ["main"]


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


def _check(args) -> int:
    from theory_sim.experiments import check_suite

    checks = check_suite(
        seed=args.seed, num_instances=args.instances, progress=None if args.json else _progress
    )
    failed = [c for c in checks if not c.holds]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=1, default=float))
    else:
        print(_table(checks))
        print(
            f"\n{len(checks) - len(failed)} of {len(checks)} checks hold"
            + (f"; {len(failed)} FAIL" if failed else ".")
        )
    if args.figures is not None:
        import matplotlib

        matplotlib.use("Agg")
        from theory_sim.plotting import plot_bound_check

        out = Path(args.figures)
        out.mkdir(parents=True, exist_ok=True)
        fig = plot_bound_check(
            [c for c in checks if c.claim == "Proposition 3"],
            title="Proposition 3: t_gamma against its lower bound",
        )
        path = out / "proposition_3.png"
        fig.savefig(path, dpi=130)
        print(f"figure: {path}", file=sys.stderr)
    return 1 if failed else 0


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
    args = parser.parse_args(argv)
    if args.command == "check":
        if args.instances < 1:
            parser.error("--instances must be >= 1")
        return _check(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
