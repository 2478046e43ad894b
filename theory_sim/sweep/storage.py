"""A sweep's files: the tidy result columns, part files with their checksums, and reading them back.

Finished chunks are written atomically to ``OUT/parts/`` with a ``.sum`` beside each; a part
whose bytes do not match its checksum is reported and recomputed. ``OUT/results.csv`` is
assembled from the parts, one row per cell and horizon.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import os
import platform
import warnings
from collections.abc import Callable
from pathlib import Path

from theory_sim.report import write_csv

COLUMNS = (
    "cell",
    "policy",
    "reward_model",
    "kl_coef",
    "seed",
    "var_rm",
    "var_gt",
    "accuracy",
    "accuracy_on_policy",
    "gamma",
    "t_gamma",
    "horizon",
    "gain_rm",
    "gain_gt",
    "solver_ok",
    "status",
)


# status: "ok"; "solver failed" (the solve stopped early: t_gamma and gains are NaN; "solver
# failed: REASON" when solving the cell again on its own was refused, e.g. a gain below float64's
# resolution); or
# "infeasible: REASON" (the cell's reward model cannot be built for its seed, e.g. a variance
# above what a monotone map of that seed's r_G reaches: every measure is NaN).
OK, FAILED, INFEASIBLE = "ok", "solver failed", "infeasible"


_TYPES = {"cell": int, "seed": int, "policy": str, "reward_model": str, "status": str}


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        parsed = {}
        for key in COLUMNS:
            value = row[key]
            if key == "solver_ok":
                parsed[key] = value == "True"
            else:
                parsed[key] = _TYPES.get(key, float)(value)
        out.append(parsed)
    return out


def _write_part(path: Path, rows: list[dict]) -> None:
    """A chunk's rows as ``path`` (CSV), then its row count and SHA-256 as ``path``.sum; both
    written atomically, the checksum last, so a part without a valid checksum is never trusted."""
    write_csv(path, rows, COLUMNS)
    summary = {"rows": len(rows), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    tmp = path.with_suffix(".sum.tmp")
    tmp.write_text(json.dumps(summary))
    os.replace(tmp, path.with_suffix(".sum"))


def _load_part(path: Path) -> tuple[list[dict], str]:
    """(rows, "") for an intact part, or ([], what is wrong with it)."""
    try:
        summary = json.loads(path.with_suffix(".sum").read_text())
        rows_expected, digest = int(summary["rows"]), str(summary["sha256"])
    except FileNotFoundError:
        return [], "has no checksum (its run was interrupted while writing it?)"
    except (ValueError, KeyError, TypeError):
        return [], "has a damaged checksum file"
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        return [], "does not match its checksum (truncated or edited)"
    try:
        rows = _read_csv(path)
    except (KeyError, ValueError) as err:  # pragma: no cover - a matching checksum was written
        return [], f"cannot be read ({err})"
    if len(rows) != rows_expected:  # pragma: no cover - as above
        return [], f"holds {len(rows)} rows, not {rows_expected}"
    return rows, ""


def _read_parts(parts: Path, notice: Callable[[str], None], drop=lambda path: False) -> list[dict]:
    """The rows of every intact part in ``parts``; each damaged part is reported to ``notice``
    and, when ``drop(path)``, deleted so that its cells are computed again."""
    rows = []
    for path in sorted(parts.glob("part-*.csv")) if parts.is_dir() else []:
        part, damage = _load_part(path)
        if damage:
            again = drop(path)
            notice(f"{path} {damage}; " + ("recomputing its cells." if again else "skipped."))
            if again:
                path.unlink(missing_ok=True)
                path.with_suffix(".sum").unlink(missing_ok=True)
        rows += part
    return sorted(rows, key=lambda r: (r["cell"], r["horizon"]))


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def load_results(directory, *, notice: Callable[[str], None] | None = None) -> list[dict]:
    """The rows of a sweep's ``results.csv`` or, for an unfinished sweep, of its intact parts
    (a damaged part is skipped and reported to ``notice``; default: a RuntimeWarning)."""
    directory = Path(directory)
    final = directory / "results.csv"
    if final.is_file():
        return _read_csv(final)
    rows = _read_parts(directory / "parts", notice or _warn)
    if not rows:
        raise ValueError(f"`results` must be a sweep directory; {str(directory)!r} has no results.")
    return rows


def _versions() -> dict:
    names = ("theory_sim", "jax", "jaxlib", "diffrax", "optax", "numpy")
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
            out[name] = "unknown"
    return out
