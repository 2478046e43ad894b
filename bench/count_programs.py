"""Run ``theory-sim ARGS`` and write to COUNTS_FILE the programs it made ready.

    python bench/count_programs.py COUNTS_FILE ARGS...
    python bench/count_programs.py --sites COUNTS_FILE ARGS...   # and print where they came from

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
import traceback

import jax

EVENTS = {
    "/jax/core/compile/backend_compile_duration": "compiled",
    "/jax/compilation_cache/cache_retrieval_time_sec": "read",
    "/jax/core/compile/jaxpr_trace_duration": "traced",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lowered",
}


def _call_site() -> str:
    """The innermost theory_sim frame of the current stack, as module:line:function (past the
    wrapper of theory_sim.cache, which every kept solver program is called through)."""
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename.replace(os.sep, "/")
        if "/theory_sim/" in path and "site-packages" not in path:
            module = path.split("/theory_sim/")[-1]
            if module != "cache.py":
                return f"{module}:{frame.lineno}:{frame.name}"
    return "?"


def _print_sites(programs) -> None:
    """Programs grouped by name and call site, the costliest first."""
    groups: dict = collections.defaultdict(lambda: [0, 0.0])
    for name, duration, site in programs:
        groups[(name, site)][0] += 1
        groups[(name, site)][1] += duration
    print(f"{len(programs)} programs, {sum(p[1] for p in programs):.1f} s of XLA", file=sys.stderr)
    for (name, site), (count, total) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        print(f"{count:4d} {total:7.2f} s  {name:32.32} {site}", file=sys.stderr)


def main() -> None:
    sites = sys.argv[1] == "--sites"
    out, args = sys.argv[1 + sites], sys.argv[2 + sites :]
    counts: collections.Counter = collections.Counter()
    seconds: collections.Counter = collections.Counter()
    programs: list = []  # (name, seconds, call site) of each program, with --sites

    def listener(event, duration, **kwargs):
        name = EVENTS.get(event)
        if name is not None:
            counts[name] += 1
            seconds[name] += duration
        if sites and name == "compiled":
            programs.append((kwargs.get("fun_name", "?"), duration, _call_site()))

    jax.monitoring.register_event_duration_secs_listener(listener)
    start = time.perf_counter()

    def write():
        record = {"counts": dict(counts), "seconds": dict(seconds)}
        record["wall"] = time.perf_counter() - start
        if sites:
            record["programs"] = programs
            _print_sites(programs)
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
