"""Run ``theory-sim ARGS`` and write to COUNTS_FILE the programs it made ready.

    python bench/count_programs.py COUNTS_FILE ARGS...

Every program JAX makes ready counts (solver programs, and the small programs that eager jnp
calls outside jit compile per shape alike): ``compiled`` counts
``/jax/core/compile/backend_compile_duration`` events, which JAX records for every program,
whether XLA compiled it or it was read back from the persistent compilation cache; ``read``
counts the latter. With an empty cache directory every program is compiled. Also the seconds spent in tracing, lowering and compiling. Used by
``bench/run.py coldstart``, which runs it in fresh processes.
"""

import collections
import json
import os
import sys
import time

import jax

EVENTS = {
    "/jax/core/compile/backend_compile_duration": "compiled",
    "/jax/compilation_cache/cache_retrieval_time_sec": "read",
    "/jax/core/compile/jaxpr_trace_duration": "traced",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lowered",
}


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    counts: collections.Counter = collections.Counter()
    seconds: collections.Counter = collections.Counter()

    def listener(event, duration, **kwargs):
        name = EVENTS.get(event)
        if name is not None:
            counts[name] += 1
            seconds[name] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    start = time.perf_counter()

    def write():
        record = {"counts": dict(counts), "seconds": dict(seconds)}
        record["wall"] = time.perf_counter() - start
        with open(out, "w") as f:
            json.dump(record, f)

    exit_now = os._exit  # the CLI ends with os._exit (see theory_sim.cli.run)

    def exiting(code):
        write()
        exit_now(code)

    os._exit = exiting
    from theory_sim.cli import run

    sys.argv = ["theory-sim", *args]
    try:
        run()
    finally:
        write()


if __name__ == "__main__":
    main()
