"""Running a sweep: the cells of a config solved in chunks, each chunk saved as it finishes.

A rerun of the same config into the same directory computes only the missing cells; several
processes (``--distributed``) share the cells of one directory.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from theory_sim import _json
from theory_sim._parallel import threaded_map
from theory_sim._validation import check_int
from theory_sim.flow import (
    gradient_flow,
    time_to_gain,
)
from theory_sim.sweep.cells import _cell, _labels, _prefetch, _prefetched, check_cells, check_config
from theory_sim.sweep.config import SweepConfig
from theory_sim.sweep.schedule import _solve_grouped
from theory_sim.sweep.storage import (
    COLUMNS,
    FAILED,
    INFEASIBLE,
    OK,
    _read_parts,
    _trusted_results,
    _versions,
    _warn,
    _write_part,
    write_results,
)


def run_cells(config: SweepConfig, cells: list[int], devices=None) -> list[dict]:
    """Run the given cells as vmapped computations sharded over ``devices``.

    Each cell's t_gamma is solved in a group of :data:`GROUP_SIZE` cells of like estimated
    t_gamma and its path to the last horizon in a group of :data:`PATH_GROUP_SIZE` (see there),
    each group padded (by repeating its last cell) to that size, a multiple of the number of
    devices, so that one compiled program serves every group and every device holds the same
    number of cells; the padding is dropped from the results. The numbers do not depend on the
    grouping: each cell's solve is its own.

    Returns:
        The tidy rows (:data:`COLUMNS`), one per cell and horizon.
    """
    cells = check_cells(check_config(config), cells)
    devices = list(jax.local_devices() if devices is None else devices)
    built, infeasible = [], []
    prefetched = _prefetch(config, cells)
    for c in cells:
        try:
            built.append(_cell(config, c))
        except ValueError as err:  # the seed's tables cannot give this reward model
            p_index, r_index, _, seed = config.cell(c)
            where = (
                f"[[reward_model]] {r_index + 1} ({config.reward_models[r_index].name}) under "
                f"[[policy]] {p_index + 1} ({config.policies[p_index].name}), seed {seed}"
            )
            infeasible.append((c, f"{where}: {err}"))
    for key in prefetched:  # those of tables built before, still cached
        _prefetched.pop(key, None)
    rows = [row for c, reason in infeasible for row in _infeasible_rows(config, c, reason)]
    if not built:
        return sorted(rows, key=lambda r: (r["cell"], r["horizon"]))
    start, times, gain_rm, gain_gt, ok = _solve_grouped(config, built, devices)
    save_ts = np.asarray((0.0, *config.horizons))
    times, gain_rm, gain_gt, ok = (np.array(a) for a in (times, gain_rm, gain_gt, ok))
    # A cell whose explicit solve stopped early (a stiff tail of a lambda > 0 flow) is solved
    # again on its own, where the implicit continuation and per-prompt certificates apply.
    reasons = {}  # why a cell solved again on its own was refused
    for i in np.flatnonzero(~np.asarray(ok[: len(built)])):
        problem, kl_coef, row = built[i]
        problem = jax.device_put(problem).with_kl_coef(kl_coef)
        try:
            times[i] = time_to_gain(problem, row["gamma"], problem.reward_gt, 0, config.t_max)
            traj = gradient_flow(problem, float(save_ts[-1]), np.asarray(save_ts))
        except RuntimeError:
            continue
        except ValueError as err:  # a gain below float64's resolution (see time_to_gain)
            reasons[i] = " ".join(str(err).split())
            continue
        for name, table in (("rm", traj.expected_rm), ("gt", traj.expected_gt)):
            table = table.reshape(len(save_ts), -1)
            gains = (table - table[0]).mean(axis=-1)[1:]
            (gain_rm if name == "rm" else gain_gt)[i] = gains
        ok[i] = True
    for i, (_, _, base) in enumerate(built):
        status = OK if ok[i] else f"{FAILED}: {reasons[i]}" if i in reasons else FAILED
        for h, horizon in enumerate(config.horizons):
            rows.append(
                {
                    **base,
                    **{key: float(value[i]) for key, value in start.items()},
                    "t_gamma": float(times[i]) if ok[i] else math.nan,
                    "horizon": horizon,
                    "gain_rm": float(gain_rm[i, h]) if ok[i] else math.nan,
                    "gain_gt": float(gain_gt[i, h]) if ok[i] else math.nan,
                    "solver_ok": bool(ok[i]),
                    "status": status,
                }
            )
    return sorted(rows, key=lambda r: (r["cell"], r["horizon"]))


def _infeasible_rows(config: SweepConfig, cell: int, reason: str) -> list[dict]:
    """The rows of a cell that cannot be built: its labels, NaN measures and the reason."""
    labels = _labels(config, cell) | {
        "solver_ok": False,
        "status": f"{INFEASIBLE}: {' '.join(reason.split())}",
    }
    nan = {k: math.nan for k in COLUMNS if k not in labels}
    return [nan | labels | {"horizon": h} for h in config.horizons]


def run_sweep(
    config: SweepConfig,
    out,
    *,
    devices=None,
    process_index: int = 0,
    process_count: int = 1,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> list[dict]:
    """Run (or resume) a sweep into the directory ``out``; return all rows of ``results.csv``.

    Cells already saved in ``out/parts`` by an earlier run of the same config are not recomputed.
    With ``process_count`` > 1 (several hosts, e.g. after ``jax.distributed.initialize()``), this
    process runs the cells with index = ``process_index`` (mod ``process_count``) on its local
    devices and writes its own parts; ``results.csv`` is assembled once every cell is saved.

    Args:
        config: a :class:`SweepConfig` (:func:`load_config`).
        out: the results directory (created if needed).
        devices: devices to shard over; default all local devices.
        progress: called with (cells done, cells of this process) after every chunk.
        notice: called with a message for each damaged part found (it is recomputed); default
            a RuntimeWarning.
        workers: chunks solved at once, each on its own thread; default one per core this
            process may use. The numbers do not depend on it.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"`process_index` must be in [0, {process_count}); got {process_index}.")
    if workers is not None:
        workers = check_int("workers", workers, 1)
    notice = notice or _warn
    out = Path(out)
    parts = out / "parts"
    meta_path = out / "metadata.json"
    devices = list(jax.local_devices() if devices is None else devices)
    meta = {
        "config": config.as_dict(),
        "config_digest": config.digest(),
        "cells": config.num_cells,
        "seeds": list(config.seeds),
        "versions": _versions(),
        "devices": [str(d) for d in devices],
        "process_count": process_count,
        "columns": list(COLUMNS),
    }
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())
        except ValueError as err:
            raise ValueError(
                f"`out` {str(out)!r} has a damaged metadata.json ({err}); it cannot tell which "
                "config its parts belong to, so choose another directory or remove it."
            ) from None
        if not isinstance(old, dict) or old.get("config_digest") != meta["config_digest"]:
            raise ValueError(
                f"`out` {str(out)!r} holds a sweep of a different config; choose another "
                "directory or remove it."
            )
    parts.mkdir(parents=True, exist_ok=True)
    digest = meta["config_digest"]
    _claim_config(out, digest, process_index)
    if process_index == 0 and not meta_path.is_file():
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(_json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)
    mine = list(range(process_index, config.num_cells, process_count))

    def mine_to_redo(path: Path) -> bool:  # a part holds one process's cells; it redoes them
        return int(path.stem.split("-")[1]) % process_count == process_index

    done = {r["cell"] for r in _read_parts(parts, notice, mine_to_redo, digest)}
    todo = [c for c in mine if c not in done]
    finished = len(mine) - len(todo)
    # a chunk is a multiple of the device count, so no device idles on padding mid-sweep
    size = max(config.chunk_size, len(devices))
    size -= size % len(devices)
    if progress is not None:
        progress(finished, len(mine))

    def solve(chunk: list[int]) -> int:  # each chunk is saved by the thread that solves it
        _write_part(parts / f"part-{chunk[0]:06d}.csv", run_cells(config, chunk, devices), digest)
        return len(chunk)

    # chunks are independent: one thread per core (see theory_sim._parallel)
    chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
    with contextlib.closing(threaded_map(solve, chunks, workers)) as counts:
        for count in counts:  # an error here closes the map at once: queued chunks are dropped
            finished += count
            if progress is not None:
                progress(finished, len(mine))
    rows = _trusted_results(out, notice, "assembling it again from the verified parts")
    if rows is not None:
        return rows
    rows = _read_parts(parts, notice, config_digest=digest)
    if len({r["cell"] for r in rows}) == config.num_cells:
        write_results(out / "results.csv", rows, digest)
    return rows


def _claim_config(out: Path, digest: str, process_index: int) -> None:
    """Record that process ``process_index`` runs the config ``digest`` in ``out/processes/``,
    and refuse to go on when any process of this directory has recorded another config (two
    hosts of one distributed sweep started with different configs, or a new config run into an
    old directory whose metadata.json was removed)."""
    folder = out / "processes"
    folder.mkdir(parents=True, exist_ok=True)

    def refuse_others() -> None:
        for path in sorted(folder.glob("process-*.digest")):
            try:
                theirs = path.read_text().strip()
            except OSError:  # pragma: no cover - removed meanwhile
                continue
            if theirs != digest:
                raise ValueError(
                    f"`out` {str(out)!r}: {path.name} ran a different config (digest "
                    f"{theirs[:12]}, this one {digest[:12]}); every process of a sweep must run "
                    "the same config. Choose another directory or remove it."
                )

    refuse_others()  # before claiming: an old run of another config is never overwritten
    mine = folder / f"process-{process_index}.digest"
    tmp = mine.with_name(mine.name + f".{os.getpid()}.tmp")
    tmp.write_text(digest)
    os.replace(tmp, mine)
    refuse_others()  # after: a host that claimed meanwhile with another config
