"""The persistent compilation cache: where it lives, how to turn it off, and that it is used."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from theory_sim import cache as cache_module
from theory_sim.cache import ENV_VAR, cache_directory, enable_compilation_cache


def test_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert cache_directory() == tmp_path / "theory_sim" / "jax"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    assert cache_directory() == tmp_path / "elsewhere"
    for off in ("off", "0", "False", ""):
        monkeypatch.setenv(ENV_VAR, off)
        assert cache_directory() is None
        before = jax.config.jax_compilation_cache_dir
        assert enable_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir == before  # nothing changed


def test_the_test_session_uses_the_cache():
    directory = cache_directory()
    if directory is not None:
        assert jax.config.jax_compilation_cache_dir == str(directory)


def test_a_second_process_reads_what_the_first_compiled(tmp_path):
    """Two processes compile the same program: the first writes an entry, the second finds it
    and writes nothing new."""
    script = (
        "import jax, jax.numpy as jnp\n"
        "from theory_sim.cache import enable_compilation_cache\n"
        "hits = []\n"
        "jax.monitoring.register_event_listener(\n"
        "    lambda event, **kw: hits.append(event) if event.endswith('cache_hits') else None)\n"
        "enable_compilation_cache()\n"
        "print(float(jax.jit(lambda x: jnp.sin(x) * 3.0 + x**2)(jnp.arange(5.0)).sum()))\n"
        "print(len(hits))\n"
    )
    env = {**os.environ, ENV_VAR: str(tmp_path / "cache")}
    outputs, entries = [], []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
        entries.append(sorted(p.name for p in Path(tmp_path / "cache").iterdir()))
    (value0, hits0), (value1, hits1) = (o.split() for o in outputs)
    assert value0 == value1 and int(hits0) == 0 and int(hits1) >= 1
    assert len(entries[0]) >= 1 and entries[1] == entries[0]


def _callbacks(lowered) -> list[str]:
    """The host-callback custom calls in a lowered program (JAX never caches such a program)."""
    return [line for line in lowered.as_text().splitlines() if "callback" in line]


def test_the_solvers_compile_to_cacheable_programs():
    """Every adaptive solve (trajectory, implicit tail, time to gain and the crossing's bisection)
    lowers without a host callback, so the persistent cache can store it; diffrax's and
    optimistix's own argument checks would otherwise add one each."""
    import jax.numpy as jnp

    from theory_sim import flow
    from theory_sim.instances import random_problem

    problem = random_problem(1, 5, key=jax.random.key(0)).with_kl_coef(0.1)
    batch, _ = flow.solve._as_batch(problem)
    _, w = flow.coordinates._batch_coordinates(batch)
    save_ts = jnp.asarray(flow.default_save_ts(10.0, 5))
    reward = problem.reward_rm
    _, w0 = flow.coordinates._coordinates(problem)
    lowered = {
        "trajectory": flow.solve._path_segments.lower(
            batch, save_ts, jnp.zeros(1), w, 10.0, 1e-10, 1e-12, 64
        ),
        "implicit tail": flow.solve._path_segments.lower(
            batch, save_ts, jnp.zeros(1), w, 10.0, 1e-10, 1e-12, 64, implicit=True
        ),
        "time to gain": flow.crossing._gain_run.lower(
            problem, reward, 0, 0.1, 0.0, w0, -1.0, 10.0, 1e-10, 1e-12, 64
        ),
        "crossing": flow.crossing._refine_crossing.lower(
            problem, reward, 0, 0.1, 0.0, w0, 1.0, 1e-10, 1e-12, 64, False
        ),
    }
    found = {name: _callbacks(program) for name, program in lowered.items()}
    assert not any(found.values()), found
    # the check sees a callback where one is: equinox's error_if in its raising form
    import equinox

    raising = jax.jit(lambda x: equinox.error_if(x, x < 0, "negative")).lower(jnp.ones(3))
    assert _callbacks(raising)


def test_traced_programs_are_kept_and_read_back(tmp_path):
    """A second process reads the first one's traced solver programs (no new export is written)
    and gets bitwise the same numbers; a torn export file is traced again, not trusted."""
    script = (
        "import numpy as np, jax\n"
        "from theory_sim.cache import enable_compilation_cache\n"
        "enable_compilation_cache()\n"
        "import theory_sim as ts\n"
        "from theory_sim.instances import random_problem\n"
        "p = random_problem(2, 5, key=jax.random.key(3)).with_kl_coef(0.05)\n"
        "tr = ts.gradient_flow(p, 10.0)\n"
        "print(repr(float(np.asarray(tr.probs).sum() * 1e6)), repr(ts.time_to_gain(p, 0.05)))\n"
    )
    env = {**os.environ, ENV_VAR: str(tmp_path / "cache")}
    exports = tmp_path / "cache" / "exports"

    def run():
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout, {p.name: p.stat().st_mtime_ns for p in exports.iterdir()}

    first, files = run()
    assert {name.split("-")[0] for name in files} >= {"path_segments", "gain_run"}
    second, files_again = run()
    assert second == first and files_again == files  # read back, nothing traced again
    torn = sorted(files)[0]
    (exports / torn).write_bytes(b"not a program")
    third, files_third = run()
    assert third == first and files_third[torn] != files[torn]  # re-exported over the torn file


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Power:
    """Static pytree data (a policy is one): part of a traced program's key."""

    k: int


def _scaled_power(x, power, n):
    return x**power.k * n


def test_traced_once_keys_on_static_arguments_and_structure(tmp_path, monkeypatch):
    """Programs differing only in a static argument, or in static pytree data, are different
    programs; the same call with the cache off gives the same numbers."""
    import jax.numpy as jnp

    from theory_sim import cache

    traced = cache.traced_once(_scaled_power, static_argnames=("n",))
    monkeypatch.setattr(cache, "_exports", tmp_path / "exports")
    x = jnp.arange(1.0, 4.0)
    got = [traced(x, Power(k), n=n) for k, n in ((2, 1.0), (3, 1.0), (2, 2.0))]
    expected = [x**2, x**3, 2 * x**2]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(e))
    assert len(list((tmp_path / "exports").iterdir())) == 3
    monkeypatch.setattr(cache, "_exports", None)
    np.testing.assert_array_equal(np.asarray(traced(x, Power(3), n=1.0)), np.asarray(x**3))


def test_two_threads_asking_for_one_new_program_load_it_once(tmp_path, monkeypatch):
    """The first call of a shape loads (or traces) and compiles its program once, however many
    threads make it at the same time; a second shape has its own program."""
    import threading
    import time

    import jax.numpy as jnp

    from theory_sim import cache

    traced = cache.traced_once(_scaled_power, static_argnames=("n",))
    monkeypatch.setattr(cache, "_exports", tmp_path / "exports")
    loads = []
    load = cache._load_or_export

    def slow_load(key, *args):
        loads.append(key)
        time.sleep(0.2)  # every thread has asked by now
        return load(key, *args)

    monkeypatch.setattr(cache, "_load_or_export", slow_load)
    x = jnp.arange(1.0, 4.0)
    results = [None] * 4
    start = threading.Barrier(4)

    def ask(i):
        start.wait()
        results[i] = traced(x if i < 3 else x[:2], Power(2), n=1.0)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 2 and len(set(loads)) == 2  # one load per shape
    for result in results[:3]:
        np.testing.assert_array_equal(np.asarray(result), np.asarray(x**2))
    np.testing.assert_array_equal(np.asarray(results[3]), np.asarray(x[:2] ** 2))


@pytest.mark.skipif(cache_module._memory_maps() is None, reason="no /proc memory maps here")
def test_releasing_programs_unmaps_their_linked_code():
    """Each compiled CPU program holds memory maps (its linked sections); a process holding too
    many is aborted by LLVM when the kernel refuses the next one. Releasing the programs gives
    the maps back."""
    import jax.numpy as jnp

    before = cache_module._memory_maps()[0]
    programs = [jax.jit(lambda x, k=k: jnp.sin(x * k) + jnp.cumsum(x) ** k) for k in range(40)]
    for program in programs:
        program(jnp.ones(5)).block_until_ready()
    held = cache_module._memory_maps()[0] - before
    assert held > 40  # several maps a program
    assert cache_module.release_programs(force=True)
    assert cache_module._memory_maps()[0] - before < held / 2


@pytest.fixture
def crowded(monkeypatch):
    """A traced_once function in a process holding 600 memory maps of 1000, checked at every
    new program."""
    monkeypatch.setattr(cache_module, "MAPS_CHECK_EVERY", 1)
    monkeypatch.setattr(cache_module, "_memory_maps", lambda: (600, 1000))
    return cache_module.traced_once(_scaled_power, static_argnames=("n",))


@pytest.mark.parametrize("cache_on", [True, False])
def test_traced_once_drops_its_programs_past_the_maps_threshold(
    crowded, cache_on, tmp_path, monkeypatch
):
    """Past MAPS_FRACTION of the limit a new program (loaded, or compiled with the cache off)
    makes the check drop the programs held; below it they are kept. Dropped programs are read
    back, or compiled again, with the same numbers."""
    import jax.numpy as jnp

    monkeypatch.setattr(cache_module, "_exports", tmp_path / "exports" if cache_on else None)
    x = jnp.arange(1.0, 4.0)
    # 600 maps of 1000: kept, then dropped (a load checks before it, a compilation after it)
    for fraction, held in ((0.7, 2), (0.5, 1 if cache_on else 0)):
        monkeypatch.setattr(cache_module, "MAPS_FRACTION", fraction)
        crowded.clear_cache()
        first = crowded(x, Power(2), n=1.0)
        second = crowded(x[:2], Power(2), n=1.0)
        assert crowded._cache_size() == held
        np.testing.assert_array_equal(np.asarray(first), np.asarray(x**2))
        np.testing.assert_array_equal(np.asarray(second), np.asarray(x[:2] ** 2))
        np.testing.assert_array_equal(np.asarray(crowded(x, Power(2), n=1.0)), np.asarray(first))


def test_a_call_inside_another_trace_counts_nothing(crowded, monkeypatch):
    """Inside an enclosing trace a traced_once function compiles nothing of its own."""
    import jax.numpy as jnp

    x = jnp.arange(1.0, 4.0)
    monkeypatch.setattr(cache_module, "_exports", None)
    checks = []
    monkeypatch.setattr(cache_module, "release_programs", lambda force=False: checks.append(1))
    inside = jax.jit(lambda y: crowded(y, Power(3), n=1.0))(x)  # part of an enclosing program
    np.testing.assert_array_equal(np.asarray(inside), np.asarray(x**3))
    assert not checks  # nothing compiled on its own, so nothing counted


def test_exports_past_their_limit_lose_the_least_recently_used(tmp_path):
    """Past the limit, the exports folder loses its least recently used programs (oldest mark
    first) down to three quarters of the limit; at or under it, nothing goes."""
    folder = tmp_path / "exports"
    folder.mkdir()
    for i in range(8):  # 100 bytes each, used at times 1000, 1001, ... (oldest first)
        path = folder / f"p{i}.stablehlo"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000.0 + i, 1000.0 + i))
    (folder / "other.txt").write_bytes(b"y" * 10_000)  # not an export: never counted or deleted
    cache_module._prune_exports(folder, limit=800)
    assert len(list(folder.glob("*.stablehlo"))) == 8
    cache_module._prune_exports(folder, limit=500)  # 800 > 500: down to <= 375, the 3 newest
    assert sorted(p.name for p in folder.glob("*.stablehlo")) == [
        "p5.stablehlo",
        "p6.stablehlo",
        "p7.stablehlo",
    ]
    assert (folder / "other.txt").exists()


def test_a_load_marks_its_export_used_and_a_new_export_prunes(tmp_path, monkeypatch):
    """An export read back more than a day after its mark is marked used again (and within the
    day it is left alone, so reading changes nothing); writing a new export prunes the folder,
    the least recently used first."""
    import jax.numpy as jnp

    from theory_sim import cache

    monkeypatch.setattr(cache, "_exports", tmp_path / "exports")
    traced = cache.traced_once(_scaled_power, static_argnames=("n",))
    x = jnp.arange(1.0, 4.0)
    traced(x, Power(2), n=1.0)
    (path,) = (tmp_path / "exports").glob("*.stablehlo")
    size = path.stat().st_size
    old = path.stat().st_mtime - 2 * 86_400
    os.utime(path, (old, old))
    traced.clear_cache()  # as a new process would start: the program is read back
    traced(x, Power(2), n=1.0)
    marked = path.stat().st_mtime
    assert marked > old + 86_400
    traced.clear_cache()
    traced(x, Power(2), n=1.0)
    assert path.stat().st_mtime == marked  # marked within the day: not touched again
    stale = tmp_path / "exports" / "stale.stablehlo"
    stale.write_bytes(b"z" * size)
    os.utime(stale, (old, old))
    monkeypatch.setattr(cache, "EXPORTS_MAX_BYTES", int(2.85 * size))
    traced(x, Power(3), n=1.0)  # a new export: 3 files of about `size` > 2.85 size, 2 < 2.14
    names = {p.name for p in (tmp_path / "exports").glob("*.stablehlo")}
    assert "stale.stablehlo" not in names and path.name in names and len(names) == 2


def test_an_altered_program_is_deleted_and_traced_again(tmp_path, monkeypatch):
    """A program file whose bytes were changed in place (a constant edited, one bit flipped, the
    header's digest or the file cut short) fails its digest: one warning, the file is deleted,
    the program traced again, and the numbers are those of the untouched program."""
    import jax.numpy as jnp

    from theory_sim import cache

    monkeypatch.setattr(cache, "_exports", tmp_path / "exports")
    traced = cache.traced_once(_scaled_power, static_argnames=("n",))
    x = jnp.arange(3.0)
    expected = np.asarray(traced(x, Power(2), n=3))
    (path,) = (tmp_path / "exports").glob("*.stablehlo")
    good = path.read_bytes()
    assert good.startswith(cache._MAGIC)
    at = len(good) // 2
    for bad in (
        good[:at] + bytes([good[at] ^ 1]) + good[at + 1 :],  # one bit of the program
        good[: len(cache._MAGIC)] + b"0" * 64 + good[len(cache._MAGIC) + 64 :],  # the digest
        good[: len(good) - 10],  # cut short
        good[len(cache._MAGIC) + 65 :],  # a bare program without the header
    ):
        traced.clear_cache()  # a new process: nothing held in memory
        path.write_bytes(bad)
        with pytest.warns(RuntimeWarning, match="failed its digest check"):
            got = np.asarray(traced(x, Power(2), n=3))
        np.testing.assert_array_equal(got, expected)
        assert path.read_bytes() != bad and path.read_bytes().startswith(cache._MAGIC)
    monkeypatch.setattr(cache, "_exports", None)
