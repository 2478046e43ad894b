"""JAX's persistent compilation cache, shared by every theory_sim process on a machine.

Compiling the exact solvers (diffrax's adaptive loops with their events, vmapped over prompts)
costs seconds per shape, repeated in every process: the command line, each notebook kernel and
each test worker. :func:`enable_compilation_cache` points JAX's persistent cache at one directory,
so a shape compiled once is read back in milliseconds by every later process. The cache is keyed
by JAX on the program, the JAX version and the configuration (float64 included), so a stale entry
is never used. ``theory-sim`` turns it on for every subcommand, and so do the notebooks.

The directory, in order of precedence:

* the ``path`` argument;
* the environment variable ``THEORY_SIM_CACHE``: a directory, or ``off`` (also ``0``, ``false``,
  ``no`` or empty) to turn the cache off;
* ``$XDG_CACHE_HOME/theory_sim/jax``, else ``~/.cache/theory_sim/jax`` (``~/Library/Caches`` on
  macOS, ``%LOCALAPPDATA%`` on Windows).

Deleting the directory is always safe: the next run compiles again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax

__all__ = ["cache_directory", "enable_compilation_cache"]

ENV_VAR = "THEORY_SIM_CACHE"
_OFF = {"off", "0", "false", "no", ""}
# Cache every program: JAX's default threshold (1 s) leaves out the many small programs of a
# check run (about 390 of them, 80 ms each on average: 30 s of compilation per run).
MIN_COMPILE_SECONDS = 0.0


def cache_directory() -> Path | None:
    """The directory the cache uses by default, or None when ``THEORY_SIM_CACHE`` turns it off."""
    setting = os.environ.get(ENV_VAR)
    if setting is not None:
        return None if setting.strip().lower() in _OFF else Path(setting).expanduser()
    if sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "theory_sim" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (see the module docstring); return its directory.

    Call it before the first compilation of the process (JAX reads the setting once). Returns
    None, and changes nothing, when ``THEORY_SIM_CACHE=off`` and no ``path`` is given, or when
    the directory cannot be created (a read-only home, for example): the cache only saves time.
    """
    directory = Path(path).expanduser() if path is not None else cache_directory()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return directory
