"""Seeded draws from :mod:`jax.random`, the same numbers from a handful of compiled programs.

``jax.random.uniform(key, shape)`` called outside jit compiles (or reads from the persistent
cache) one program per shape, and the instance builders of ``theory-sim check`` and the stories
ask for dozens of small shapes: about 30 programs and 15 s of a cold check went to drawing
numbers. JAX's Threefry generator is counter-based, and with ``jax_threefry_partitionable`` (on
by default) the value at position i of a draw of shape S depends only on the key and on i's
position in S's row-major order. So a draw of n values equals the first n values of a draw of any
m >= n values from the same key, bit for bit: these functions draw a bucketed flat size
(:func:`draw_size`) and return the first n values in the shape asked for, on the host.
``tests/test_random.py`` checks bit-for-bit equality with ``jax.random`` over shapes, keys and
ranges.

Dirichlet draws are log-gamma draws (per value, from its own split key) normalised by a softmax
over the last axis, as :func:`jax.random.dirichlet` computes them; the log-gamma draws are
bucketed, and only the small softmax is compiled per shape.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._device import power_of_two

# Draws of up to this many values share power-of-two sizes (at least MIN_DRAW: every draw of the
# check's instances fits one bucket); larger draws are rounded up to a multiple of it (at most
# DRAW_STEP values drawn in vain, a small fraction).
DRAW_STEP = 2**16
MIN_DRAW = 64


def draw_size(n: int) -> int:
    """The number of values drawn for a request of ``n``: the next power of two (at least
    MIN_DRAW) up to DRAW_STEP, then the next multiple of DRAW_STEP."""
    if n > DRAW_STEP:
        return -(-n // DRAW_STEP) * DRAW_STEP
    return power_of_two(n, MIN_DRAW)


def _bucketed() -> bool:
    """Whether a draw's values depend only on their positions (JAX's default
    ``jax_threefry_partitionable``); otherwise each draw is taken at its own shape."""
    return bool(jax.config.jax_threefry_partitionable)


def _first(draw, shape) -> np.ndarray:
    """The first prod(shape) values of ``draw`` in ``shape``, on the host."""
    shape = tuple(int(s) for s in shape)
    return np.asarray(draw)[: math.prod(shape)].reshape(shape)


def uniform(key, shape=(), minval=0.0, maxval=1.0) -> np.ndarray:
    """``jax.random.uniform(key, shape, float64, minval, maxval)``, bit for bit (module
    docstring). Bounds broadcast against ``shape``; array bounds are laid out like the draw
    (jax.random's affine map may fuse its multiply and add, so it is left to jax.random)."""
    shape = tuple(int(s) for s in shape)
    if not _bucketed():
        return np.asarray(jax.random.uniform(key, shape, jnp.float64, minval, maxval))
    size = draw_size(math.prod(shape))
    if np.ndim(minval) or np.ndim(maxval):
        minval, maxval = (
            np.resize(np.broadcast_to(np.asarray(b, np.float64), shape).ravel(), size)
            for b in (minval, maxval)
        )
    return _first(jax.random.uniform(key, (size,), jnp.float64, minval, maxval), shape)


def normal(key, shape=()) -> np.ndarray:
    """``jax.random.normal(key, shape, float64)``, bit for bit (module docstring)."""
    if not _bucketed():
        return np.asarray(jax.random.normal(key, tuple(shape), jnp.float64))
    n = math.prod(int(s) for s in shape)
    return _first(jax.random.normal(key, (draw_size(n),), jnp.float64), shape)


def dirichlet(key, num_outputs: int, shape=()) -> np.ndarray:
    """``jax.random.dirichlet(key, ones(num_outputs), shape, float64)``: Dirichlet(1, ..., 1)
    draws [*shape, num_outputs], bit for bit (module docstring)."""
    if not _bucketed():
        ones = np.ones(int(num_outputs))
        return np.asarray(jax.random.dirichlet(key, ones, tuple(shape), jnp.float64))
    full = (*(int(s) for s in shape), int(num_outputs))
    n = math.prod(full)
    log_gamma = jax.random.loggamma(key, jax.device_put(np.ones(draw_size(n))))
    return np.asarray(_softmax(jax.device_put(_first(log_gamma, full))))


# one small program per shape (eager, a softmax is five programs per shape)
_softmax = jax.jit(partial(jax.nn.softmax, axis=-1))
