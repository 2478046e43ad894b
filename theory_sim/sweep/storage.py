"""A sweep's files: the tidy result columns, part files with their checksums, and reading them back.

Finished chunks are written atomically to ``OUT/parts/`` with a ``.sum`` beside each: the
part's row count, its SHA-256, the digest of the canonical config that produced it
(:meth:`SweepConfig.digest`) and a digest of the cells it holds. A part whose bytes do not match
its checksum is reported and recomputed; a part of another config is never used.
``OUT/results.csv`` is assembled from the verified parts, one row per cell and horizon, with
``OUT/results.csv.sum`` (the same fields) beside it; a results file that does not match its sum
is not trusted.
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

from theory_sim._validation import check_path
from theory_sim.report import file_sha256, write_csv

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


FOREIGN = "belongs to a sweep of a different config"


def _cells_digest(rows: list[dict]) -> str:
    """SHA-256 of the sorted cell indices ``rows`` hold: which cells a file claims to cover."""
    cells = sorted({int(r["cell"]) for r in rows})
    return hashlib.sha256(",".join(map(str, cells)).encode()).hexdigest()


def _write_checked(path: Path, rows: list[dict], config_digest: str, sum_path: Path) -> None:
    """``rows`` as ``path`` (CSV), then its row count, SHA-256 and config digest as
    ``sum_path``; both written atomically, the checksum last, so a file without a valid
    checksum is never trusted."""
    write_csv(path, rows, COLUMNS)
    summary = {
        "rows": len(rows),
        "sha256": file_sha256(path),
        "config_digest": config_digest,
        "cells_digest": _cells_digest(rows),
    }
    tmp = sum_path.with_name(sum_path.name + ".tmp")
    tmp.write_text(json.dumps(summary))
    os.replace(tmp, sum_path)


def _write_part(path: Path, rows: list[dict], config_digest: str) -> None:
    """A chunk's rows as ``path`` with ``path``.sum (see :func:`_write_checked`)."""
    _write_checked(path, rows, config_digest, path.with_suffix(".sum"))


def write_results(path: Path, rows: list[dict], config_digest: str) -> None:
    """A sweep's ``results.csv`` with ``results.csv.sum`` beside it."""
    _write_checked(path, rows, config_digest, path.with_name(path.name + ".sum"))


def _load_checked(path: Path, sum_path: Path, config_digest: str | None):
    """(rows, "") for a file that matches its checksum (and ``config_digest`` when given), or
    ([], what is wrong with it)."""
    try:
        summary = json.loads(sum_path.read_text())
        rows_expected, digest = int(summary["rows"]), str(summary["sha256"])
        origin, cells = str(summary["config_digest"]), str(summary["cells_digest"])
    except FileNotFoundError:
        return [], "has no checksum (its run was interrupted while writing it?)"
    except (ValueError, KeyError, TypeError):
        return [], "has a damaged checksum file"
    if config_digest is not None and origin != config_digest:
        return [], FOREIGN
    if file_sha256(path) != digest:
        return [], "does not match its checksum (truncated or edited)"
    try:
        rows = _read_csv(path)
    except (KeyError, ValueError) as err:  # pragma: no cover - a matching checksum was written
        return [], f"cannot be read ({err})"
    if len(rows) != rows_expected:  # pragma: no cover - as above
        return [], f"holds {len(rows)} rows, not {rows_expected}"
    if _cells_digest(rows) != cells:  # another part's bytes under this part's name
        return [], "holds other cells than its checksum names"
    return rows, ""


def _load_part(path: Path, config_digest: str | None = None) -> tuple[list[dict], str]:
    """(rows, "") for an intact part (of the config ``config_digest``, when given), or ([], what
    is wrong with it)."""
    return _load_checked(path, path.with_suffix(".sum"), config_digest)


def _read_parts(
    parts: Path,
    notice: Callable[[str], None],
    drop=lambda path: False,
    config_digest: str | None = None,
) -> list[dict]:
    """The rows of every intact part in ``parts`` (of the config ``config_digest`` when given);
    each damaged part is reported to ``notice`` and, when ``drop(path)``, deleted so that its
    cells are computed again. A part of another config is refused with a ValueError: it is
    another run's work, never this one's to use or to delete."""
    rows = []
    for path in sorted(parts.glob("part-*.csv")) if parts.is_dir() else []:
        part, damage = _load_part(path, config_digest)
        if damage == FOREIGN:
            raise ValueError(
                f"`out` {str(parts.parent)!r} holds {path.name}, a part of a sweep of a different "
                "config; choose another directory or remove it."
            )
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


def _trusted_results(directory: Path, notice: Callable[[str], None], instead: str):
    """The rows of ``directory``/results.csv when it matches results.csv.sum; None when there is
    no such file, or when it does not match (reported to ``notice``, followed by ``instead``)."""
    final = directory / "results.csv"
    if not final.is_file():
        return None
    rows, damage = _load_checked(final, final.with_name(final.name + ".sum"), None)
    if not damage:
        return rows
    notice(f"{final} {damage}; {instead}.")
    return None


def load_results(directory, *, notice: Callable[[str], None] | None = None) -> list[dict]:
    """The rows of a sweep's ``results.csv`` when it matches ``results.csv.sum``; otherwise
    (an unfinished sweep, or a results file truncated or edited, which is reported to ``notice``;
    default: a RuntimeWarning naming it) the rows of its intact parts, a damaged part skipped and
    reported the same way."""
    directory = check_path("directory", directory)
    notice = notice or _warn
    rows = _trusted_results(directory, notice, "reading the sweep's verified parts instead")
    if rows is not None:
        return rows
    rows = _read_parts(directory / "parts", notice)
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
