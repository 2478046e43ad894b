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

Compilation is only half the cost: before compiling, JAX traces the Python of each solver into
a program, about 3-5 s a shape for a diffrax solve with events, and the compilation cache cannot
skip that. So the solvers are also kept traced: :func:`traced_once` stores each traced program,
exported with :mod:`jax.export` (serialised StableHLO), in the ``exports`` folder of the same
directory, keyed by the function, the shapes, dtypes and static structure of its arguments, the
versions of JAX and the solver libraries, and a hash of theory_sim's own source. A later process
with the same key loads the program instead of tracing it; any change to theory_sim's code gives
new keys. Both caches are on exactly when :func:`enable_compilation_cache` has been called.

Each exported program is stored with a SHA-256 digest of its key, theory_sim's code version and
its bytes, checked on every load: a file that is damaged, altered in place or written by another
version is deleted with one warning and traced again. This protects against corruption and stale
code, not against an adversary: whoever can write the cache directory can write a program with a
matching digest, and so can run code as you (as with any cache of executable code, JAX's own
included, whose entries theory_sim does not verify). Keep the directory private.

Deleting the directory is always safe: the next run traces and compiles again. Each change to
theory_sim's code leaves the previous programs unused, so the ``exports`` folder is kept under
:data:`EXPORTS_MAX_BYTES`: past it, the programs least recently used (to within a day: a load
marks its file used when the mark is older than that) are deleted down to three quarters of it.
JAX's own cache grows without bound unless ``jax_compilation_cache_max_size`` is set (JAX then
needs the ``filelock`` package).

Programs held in memory cost memory maps (the sections of their linked code); Linux refuses a
process more maps than ``vm.max_map_count`` (65,530 by default), and LLVM aborts the process when
its next section is refused. A process that loads programs for hours would reach it (test workers
did), so :func:`traced_once` drops every program the process holds when it passes half that limit
(:func:`release_programs`); the cache reads back those needed again.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import os
import pickle
import re
import sys
import threading
import time
import warnings
import weakref
from importlib import metadata
from pathlib import Path

import jax

from theory_sim._device import to_device

__all__ = ["cache_directory", "enable_compilation_cache", "release_programs"]

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
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a directory path (a str or os.PathLike); got {path!r}.")
    directory = Path(path).expanduser() if path is not None else cache_directory()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    global _exports
    _exports = directory / "exports"
    return directory


# ------------------------------------------------------------------------ traced programs

_exports: Path | None = None  # where traced programs are kept; set by enable_compilation_cache
EXPORTS_MAX_BYTES = 1 << 30  # the exports folder's size before its least used programs go
_USED_RESOLUTION = 86_400.0  # seconds: a load re-marks its file used when the mark is older
_clearers: weakref.WeakSet = weakref.WeakSet()  # every traced_once function's clear_cache
_loads = itertools.count()  # programs traced_once loaded or compiled in this process


# The memory-map check of the module docstring. Each section of a program's linked code is a map
# of its own: the quick run of `theory-sim reproduce` leaves about 9,500 (about 65 a program); a
# crashed test worker's core dump held 65,532, and LLVM had aborted in RuntimeDyld's emitSection.
MAPS_FRACTION = 0.5
MAPS_CHECK_EVERY = 16


def _memory_maps() -> tuple[int, int] | None:
    """(memory maps this process holds, the kernel's limit), or None where /proc does not say."""
    try:
        with open("/proc/sys/vm/max_map_count", "rb") as f:
            limit = int(f.read())
        with open("/proc/self/maps", "rb") as f:  # about 1 ms per thousand maps
            return f.read().count(b"\n"), limit
    except (OSError, ValueError):
        return None


def release_programs(force: bool = False) -> bool:
    """Drop every compiled program this process holds (``jax.clear_caches()`` and the programs
    :func:`traced_once` loaded) when its memory maps pass :data:`MAPS_FRACTION` of the kernel's
    limit, or always with ``force``. Returns whether it did. :func:`traced_once` calls it every
    :data:`MAPS_CHECK_EVERY` programs it loads or compiles (with the cache off too), so a long
    session does not reach the limit."""
    if not isinstance(force, bool):
        raise TypeError(f"`force` must be True or False; got {force!r}.")
    if not force:
        maps = _memory_maps()
        if maps is None or maps[0] < MAPS_FRACTION * maps[1]:
            return False
    for clear in list(_clearers):
        clear()
    jax.clear_caches()
    return True


def _count_program() -> None:
    """Count a program about to be loaded or just compiled; every :data:`MAPS_CHECK_EVERY`-th
    one checks the memory maps (:func:`release_programs`)."""
    if next(_loads) % MAPS_CHECK_EVERY == MAPS_CHECK_EVERY - 1:
        release_programs()


@functools.cache
def _code_version() -> str:
    """A hash of theory_sim's source and of the libraries whose code a traced program holds.

    Under mutation testing (mutmut sets ``MUTANT_UNDER_TEST``) one source file holds every mutant
    and the environment picks one, so the mutant's name is part of the hash: a program traced
    under one mutant is never loaded under another."""
    digest = hashlib.sha256(os.environ.get("MUTANT_UNDER_TEST", "").encode())
    for name in ("jax", "jaxlib", "diffrax", "equinox", "optimistix", "lineax", "optax"):
        digest.update(f"{name}={metadata.version(name)};".encode())
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _structure(treedef) -> tuple:
    """A pytree structure with its static node data (policies, flags), for a cache key. Node data
    with a ``_cache_key()`` method is described by what it returns (a neural policy: its
    configuration, not its functions and arrays); a ``_cache_key`` that raises TypeError keeps
    the call out of the cache (code outside theory_sim, which the key's source hash misses)."""
    data = treedef.node_data()
    if data is None:
        node = None
    else:
        describe = getattr(data[1], "_cache_key", None)
        aux = describe() if callable(describe) else data[1]
        node = (data[0].__module__, data[0].__qualname__, aux)
    return node, tuple(_structure(child) for child in treedef.children())


def traced_once(fun=None, *, static_argnames: tuple[str, ...] = ()):
    """``jax.jit(fun, static_argnames=...)`` whose traced program is kept on disk across processes.

    Called with concrete arguments while the cache is on, the program for their shapes, dtypes,
    pytree structure and static arguments is loaded from the ``exports`` folder (or traced,
    exported and saved there once), then compiled through the persistent compilation cache. Inside
    another trace, with the cache off, or with arguments whose static structure cannot be pickled,
    it is plain ``jax.jit``. The results are the same program's either way.

    For theory_sim's own functions only: the key hashes theory_sim's source, not the caller's.
    """
    if fun is None:
        return functools.partial(traced_once, static_argnames=static_argnames)
    jitted = jax.jit(fun, static_argnames=static_argnames)
    loaded: dict[str, object] = {}  # key -> the exported program compiled, in this process
    loading: dict[str, threading.Lock] = {}  # two threads asking for one new program load it once
    signature = inspect.signature(fun)
    name = f"{fun.__module__}.{fun.__qualname__}"

    def compiled_here(*args, **kwargs):
        """``jitted``'s call; a program it compiles counts towards the next memory-map check, as
        a loaded one does (a call inside an enclosing trace compiles nothing of its own: jit's
        cache of compiled calls does not grow, and nothing is counted)."""
        held = jitted._cache_size()
        out = jitted(*args, **kwargs)
        if jitted._cache_size() > held:
            _count_program()
        return out

    @functools.wraps(fun)
    def call(*args, **kwargs):
        if _exports is None:
            return compiled_here(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        static = {k: bound.arguments.pop(k) for k in static_argnames}
        names = tuple(bound.arguments)
        leaves, treedef = jax.tree.flatten(tuple(bound.arguments.values()))
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return jitted(*args, **kwargs)  # part of an enclosing program
        if any(_spread(leaf) for leaf in leaves):
            return compiled_here(*args, **kwargs)
        leaves = [to_device(leaf) for leaf in leaves]
        avals = [(leaf.shape, str(leaf.dtype), leaf.weak_type) for leaf in leaves]
        try:
            described = pickle.dumps(
                (
                    name,
                    _code_version(),
                    jax.config.jax_enable_x64,
                    static,
                    names,
                    avals,
                    _structure(treedef),
                ),
            )  # _structure may raise TypeError too (see there)
        except (pickle.PicklingError, TypeError, AttributeError):
            return compiled_here(*args, **kwargs)
        key = f"{fun.__name__.strip('_')}-{hashlib.sha256(described).hexdigest()[:40]}"
        runner = loaded.get(key)
        if runner is None:
            with loading.setdefault(key, threading.Lock()):  # setdefault is atomic
                runner = loaded.get(key)
                if runner is None:
                    _count_program()
                    exported = _load_or_export(key, fun, static, names, treedef, leaves)
                    runner = jax.jit(exported.call).lower(*leaves).compile()
                    loaded[key] = runner
        return runner(*leaves)

    def clear_cache():
        jitted.clear_cache()
        loaded.clear()

    _clearers.add(clear_cache)

    # jax.jit's introspection, counting the programs this process holds either way
    call.lower, call.clear_cache = jitted.lower, clear_cache
    call._cache_size = lambda: jitted._cache_size() + len(loaded)
    return call


def _spread(leaf) -> bool:
    """Whether ``leaf`` is an array placed across several devices (a sweep over forced host
    devices). The key holds shapes, not shardings, and a program is exported for one device, so
    such a call is traced in this process by ``jax.jit``, which partitions it over the devices."""
    sharding = getattr(leaf, "sharding", None)
    return sharding is not None and len(sharding.device_set) > 1


def _load_or_export(key, fun, static, names, treedef, leaves):
    """The exported program ``key``: read from disk, else traced and saved."""
    from jax import export

    path = _exports / f"{key}.stablehlo"
    exported = None
    if path.exists():
        try:
            payload = _verified(path.read_bytes(), key, path)
        except OSError:  # just pruned by another process: trace again
            payload = None
        if payload is not None:
            try:
                exported = export.deserialize(bytearray(payload))
            except Exception:  # verified bytes JAX cannot read (a foreign JAX): trace again
                exported = None
            else:
                _mark_used(path)
    if exported is None:

        def flat(*flat_leaves):
            values = jax.tree.unflatten(treedef, flat_leaves)
            return fun(**dict(zip(names, values, strict=True)), **static)

        shapes = [jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.weak_type) for x in leaves]
        program = jax.jit(flat)
        # LAPACK calls (the implicit solver's and root finders' linear solves) have no
        # cross-version guarantee; the key pins the jaxlib version, so none is needed here.
        targets = set(re.findall(r"custom_call @(\w+)", program.lower(*shapes).as_text()))
        checks = [export.DisabledSafetyCheck.custom_call(t) for t in sorted(targets)]
        exported = export.export(program, disabled_checks=checks)(*shapes)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # one part file per thread: two threads may export the same program at once
            part = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.part")
            part.write_bytes(_sealed(bytes(exported.serialize()), key))
            os.replace(part, path)
        except OSError:  # a read-only cache: the program still runs, it is just not kept
            pass
        else:
            _prune_exports(path.parent)
    return exported


# An export file: this header line, the SHA-256 (hex) of the key, the code version and the
# payload, a newline, then the serialised program.
_MAGIC = b"theory_sim export 1\n"


def _digest(payload: bytes, key: str) -> bytes:
    described = b"\0".join((key.encode(), _code_version().encode(), payload))
    return hashlib.sha256(described).hexdigest().encode()


def _sealed(payload: bytes, key: str) -> bytes:
    """``payload`` with the header that :func:`_verified` checks."""
    return _MAGIC + _digest(payload, key) + b"\n" + payload


def _verified(data: bytes, key: str, path: Path) -> bytes | None:
    """The program inside an export file whose digest matches its key, code version and content;
    otherwise None, after one warning and deleting the file (it is traced again)."""
    start = len(_MAGIC) + 65
    if data.startswith(_MAGIC) and data[start - 1 : start] == b"\n":
        payload = data[start:]
        if data[len(_MAGIC) : start - 1] == _digest(payload, key):
            return payload
    warnings.warn(
        f"theory_sim cache: the traced program {key} failed its digest check (damaged, altered "
        "or from another version); it is deleted and traced again.",
        RuntimeWarning,
        stacklevel=4,
    )
    try:
        path.unlink()
    except OSError:
        pass
    return None


def _mark_used(path: Path) -> None:
    """Mark an export read back as used now (its modification time), when the mark is more than
    :data:`_USED_RESOLUTION` old: the order :func:`_prune_exports` deletes in."""
    try:
        if time.time() - path.stat().st_mtime > _USED_RESOLUTION:
            os.utime(path)
    except OSError:  # pruned meanwhile, or a read-only cache
        pass


def _prune_exports(folder: Path, limit: int | None = None) -> None:
    """When the exported programs in ``folder`` exceed ``limit`` bytes (default
    :data:`EXPORTS_MAX_BYTES`), delete the least recently used (see :func:`_mark_used`) until
    they hold at most three quarters of it. Files another process deletes meanwhile are skipped,
    and a process that finds its program gone traces it again."""
    limit = EXPORTS_MAX_BYTES if limit is None else limit
    entries = []
    for path in folder.glob("*.stablehlo"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return
    for _, size, path in sorted(entries):
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        if total <= 0.75 * limit:
            return
