"""Independent pieces of work on every core, through threads.

Compiled JAX programs run without Python's global lock, so two threads each running their own
computations keep two cores busy: a 512-cell sweep runs 1.8x faster on two threads than on one
(``python bench/run.py cores``). Two forced XLA host devices gave 1.0x on the same sweep; a
likely reason is that a vmapped adaptive solve is one loop whose stopping condition spans the
whole batch, so its halves advance in lockstep rather than independently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def num_workers() -> int:
    """The cores this process may run on (its CPU affinity where the platform reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def threaded_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads (default :func:`num_workers`), results in order
    as they become available. An error or Ctrl-C in ``fn``, or closing the generator (wrap it in
    :func:`contextlib.closing` so an error in the caller's loop closes it at once), drops the
    items not yet started and waits for those running, then raises."""
    items = list(items)
    workers = min(num_workers() if workers is None else workers, max(1, len(items)))
    if workers == 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="theory_sim")
    try:
        yield from pool.map(fn, items)
    except BaseException:  # queued items are dropped; running ones finish before the raise,
        pool.shutdown(wait=True, cancel_futures=True)  # so nothing runs on behind the caller
        raise
    pool.shutdown()
