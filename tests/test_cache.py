"""The persistent compilation cache: where it lives, how to turn it off, and that it is used."""

import os
import subprocess
import sys
from pathlib import Path

import jax

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
