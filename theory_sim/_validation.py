"""Input validation shared by every public entry point.

Validation happens once, at the boundary (``Problem`` construction and the public wrappers);
jitted code paths assume valid input and carry no checks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from theory_sim import _device  # noqa: F401  (float64 on before any array is made)

__all__ = [
    "as_float_array",
    "check_allocation",
    "check_fits",
    "check_float_scalar",
    "check_index",
    "check_int",
    "check_key",
    "check_optimizer",
    "check_probabilities",
    "check_reward_range",
    "estimate_memory_bytes",
    "memory_limit_bytes",
    "require_x64",
]


def require_x64() -> None:
    """Raise if JAX's float64 mode was switched off after ``theory_sim`` was imported."""
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "theory_sim needs float64: jax_enable_x64 was switched off after import. "
            "Call jax.config.update('jax_enable_x64', True) before using theory_sim."
        )


def as_float_array(name: str, value: Any, *, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 numpy array, or raise a ValueError naming ``name``.

    Arrays that carry an integer, boolean or complex dtype are refused (a float is needed and a
    silent cast would hide a mistake); Python scalars and nested lists are converted.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        kind = np.dtype(dtype).kind
        if kind != "f":
            raise ValueError(
                f"`{name}` must have a floating-point dtype; got dtype {np.dtype(dtype).name}."
            )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be an array of real numbers; got {value!r}.") from err
    if ndim is not None and arr.ndim not in ndim:
        expected = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"`{name}` must be {expected}; got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"`{name}` must be finite; entry {tuple(int(i) for i in bad)} is {arr[tuple(bad)]}."
        )
    return arr


def check_float_scalar(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a Python float after checking it is a real scalar in range."""
    dtype = getattr(value, "dtype", None)
    numeric = isinstance(value, (int, float)) or (
        dtype is not None and np.dtype(dtype).kind in "fiu"
    )
    if isinstance(value, bool) or not numeric:
        raise ValueError(f"`{name}` must be a real number; got {value!r}.")
    try:
        arr = np.asarray(value)
        if arr.shape != ():
            raise ValueError
        out = float(arr)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be a real scalar; got {value!r}.") from err
    if math.isnan(out) or (math.isinf(out) and not allow_inf):
        raise ValueError(f"`{name}` must be finite; got {out}.")
    if positive and not out > 0:
        raise ValueError(f"`{name}` must be > 0; got {out}.")
    if nonnegative and not out >= 0:
        raise ValueError(f"`{name}` must be >= 0; got {out}.")
    return out


def _kind_error(name: str, expected: str, value: Any) -> TypeError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return TypeError(f"`{name}` must be {expected}; got {type(value).__name__} {shown}.")


def check_key(value: Any, name: str = "key") -> jax.Array:
    """Return ``value`` if it is a JAX PRNG key (``jax.random.key(seed)``, or a legacy
    ``jax.random.PRNGKey(seed)``: uint32 [2]), else raise a TypeError."""
    dtype = getattr(value, "dtype", None)
    shape = getattr(value, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    legacy = dtype is not None and not typed and dtype == np.uint32 and shape == (2,)
    if not (isinstance(value, jax.Array) and ((typed and shape == ()) or legacy)):
        raise _kind_error(name, "one JAX PRNG key, such as jax.random.key(0)", value)
    return value


def check_optimizer(value: Any, name: str = "optimizer"):
    """Return ``value`` if it is an optax GradientTransformation (``init`` and ``update``)."""
    if not (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        raise _kind_error(name, "an optax GradientTransformation, such as optax.sgd(0.1)", value)
    return value


def check_int(name: str, value: Any, low: int = 1) -> int:
    """Return ``value`` as an int >= ``low`` or raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}; got {value!r}.")
    return int(value)


def check_choice(name: str, value: Any, choices) -> str:
    """Return ``value`` if it is one of the strings ``choices``, else raise a ValueError naming
    ``name`` (an array or other object is refused, never compared element-wise)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}; got {value!r}.")
    return value


def check_path(name: str, value: Any) -> Path:
    """``value`` as a Path if it is a str or os.PathLike, else a TypeError naming ``name``."""
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"`{name}` must be a path (a str or os.PathLike); got {value!r}.")
    return Path(value)


# The largest seed jax.random.key accepts (a C long).
MAX_SEED = 2**63 - 1


def check_seed(name: str, value: Any) -> int:
    """Return ``value`` as an int seed in [0, MAX_SEED] or raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer seed in [0, 2**63 - 1]; got {value!r}.")
    if not 0 <= int(value) <= MAX_SEED:
        raise ValueError(f"`{name}` must be an integer seed in [0, 2**63 - 1]; got {value}.")
    return int(value)


def check_index(name: str, value: Any, size: int, what: str) -> int:
    """Return ``value`` as an int in ``range(size)`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer index; got {value!r}.")
    if not 0 <= int(value) < size:
        raise ValueError(f"`{name}` must be in [0, {size - 1}] ({size} {what}); got {value}.")
    return int(value)


def check_indices(name: str, value: Any, size: int, what: str) -> tuple[int, ...]:
    """One index or an iterable of them as a sorted tuple of distinct ints in ``range(size)``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"`{name}` must be an output index or a collection of them; got {value!r}.")
    indices = sorted({check_index(name, v, size, what) for v in np.asarray(value).ravel().tolist()})
    if not indices:
        raise ValueError(f"`{name}` must name at least one of the {size} {what}; got none.")
    return tuple(indices)


# Rows of a probability table may miss 1 by accumulated round-off; a float32 softmax misses by
# about 1e-7, so 1e-6 accepts any honestly normalised table and still catches unnormalised ones.
PROBABILITY_SUM_TOLERANCE = 1e-6


def check_probabilities(name: str, value: Any, *, positive: bool = False) -> np.ndarray:
    """Return ``value`` as a float64 table whose last axis is a probability vector (every entry
    strictly positive with ``positive``: claims with ln(1/min pi_0) in their constants)."""
    arr = as_float_array(name, value)
    if arr.ndim < 1:
        raise ValueError(f"`{name}` must have an output axis; got a scalar.")
    if np.any(arr < 0):
        raise ValueError(f"`{name}` must be non-negative; its minimum is {arr.min()}.")
    if positive and np.any(arr <= 0):
        raise ValueError(f"`{name}` must be strictly positive; its minimum is {arr.min()}.")
    if np.any(arr > 1.0 + PROBABILITY_SUM_TOLERANCE):  # before summing: huge entries overflow
        raise ValueError(f"`{name}` must hold probabilities <= 1; its maximum is {arr.max()}.")
    worst = float(np.max(np.abs(arr.sum(axis=-1) - 1.0)))
    if worst > PROBABILITY_SUM_TOLERANCE:
        raise ValueError(
            f"`{name}` must sum to 1 over its last axis (within {PROBABILITY_SUM_TOLERANCE}); "
            f"a row is off by {worst:.3g}."
        )
    return arr


def check_reward_range(name: str, reward: np.ndarray, claim: str) -> None:
    """Refuse rewards outside [-1, 1] for a claim whose constants assume that range."""
    lo, hi = float(np.min(reward)), float(np.max(reward))
    if lo < -1.0 or hi > 1.0:
        raise ValueError(
            f"{claim} assumes rewards in [-1, 1]; `{name}` spans [{lo:.6g}, {hi:.6g}]. "
            "Rescale it (for example divide by its largest absolute value)."
        )


# Peak working set of a flow, in float64 copies: the adaptive solver keeps about ten copies of the
# parameters (Tsit5 stages, error estimate, interpolation); the objective, its gradient and the
# metrics keep about sixteen [X, Y] tables (log-probabilities, probabilities, r_KL, cotangents).
_PARAM_COPIES = 12
_TABLE_COPIES = 16


def memory_limit_bytes() -> int:
    """The largest working set theory_sim accepts: half of this machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def estimate_memory_bytes(num_prompts: int, num_outputs: int, num_params: int) -> int:
    """Estimated peak bytes of a gradient flow on X prompts, Y outputs and that many parameters."""
    return 8 * (_PARAM_COPIES * num_params + _TABLE_COPIES * num_prompts * num_outputs)


def check_allocation(what: str, nbytes: float) -> None:
    """Refuse, before allocating, a request whose estimated memory exceeds the limit. ``what``
    names the arguments that set the size, e.g. "`num_pairs` = 10^9 pairs"."""
    limit = memory_limit_bytes()
    if nbytes > limit:
        raise ValueError(
            f"{what} would need about {nbytes / 2**30:.3g} GiB, above the limit of "
            f"{limit / 2**30:.3g} GiB (half of physical memory). Ask for less."
        )


def check_fits(num_prompts: int, num_outputs: int, num_params: int, what: str) -> None:
    """Refuse, before allocating, a problem whose estimated working set exceeds the limit."""
    need, limit = estimate_memory_bytes(num_prompts, num_outputs, num_params), memory_limit_bytes()
    if need > limit:
        raise ValueError(
            f"{what} is too large to enumerate: about {need / 2**30:.3g} GiB estimated for "
            f"{num_prompts} prompt(s) x {num_outputs} outputs, above the limit of "
            f"{limit / 2**30:.3g} GiB (half of physical memory)."
        )
