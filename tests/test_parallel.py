"""theory_sim._parallel: independent work on every core, in order, stopping on errors."""

import threading
import time

import pytest

from theory_sim._parallel import num_workers, threaded_map


def test_results_come_in_order_from_several_threads():
    names = set()

    def slow_square(x):
        names.add(threading.current_thread().name)
        time.sleep(0.02 * (5 - x % 5))  # later items finish first
        return x * x

    assert list(threaded_map(slow_square, range(10), workers=2)) == [x * x for x in range(10)]
    assert len(names) == 2  # two threads did the work
    assert list(threaded_map(slow_square, [3], workers=4)) == [9]
    assert num_workers() >= 1


def test_an_error_stops_the_queue_and_reaches_the_caller():
    started = []

    def fail_at_two(x):
        started.append(x)
        time.sleep(0.05)
        if x == 2:
            raise ValueError("item 2")
        return x

    with pytest.raises(ValueError, match="item 2"):
        list(threaded_map(fail_at_two, range(40), workers=2))
    time.sleep(0.2)  # let the running items finish
    assert len(started) < 10  # the queued ones were dropped, not run


def test_an_error_in_the_callers_loop_drops_the_queue_when_closed():
    import contextlib

    started = []

    def record(x):
        started.append(x)
        time.sleep(0.05)
        return x

    with pytest.raises(KeyError), contextlib.closing(threaded_map(record, range(40), 2)) as out:
        for x in out:
            if x == 1:
                raise KeyError(x)
    time.sleep(0.2)
    assert len(started) < 10
