"""JAX's configuration for theory_sim (float64) and host arrays onto the device.

Every module of theory_sim that computes imports this one (directly or through
:mod:`theory_sim._validation`), so float64 is on before any of them creates an array: the
theorems live at reward variances down to 1e-12 and times up to 1e8, beyond float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)


def to_device(x: Any) -> jax.Array:
    """``x`` as a JAX array, the same value and dtype as ``jnp.asarray(x)``.

    JAX 0.10's ``jnp.asarray`` of a host (numpy) array runs a small jitted program, compiled
    (or read from the persistent cache) once per shape and dtype in every process: a run of
    ``theory-sim check`` paid for 42 of them, and ``jnp.asarray`` of a Python scalar one per
    dtype. ``jax.device_put`` copies without a program, and keeps a Python scalar's weak type
    (the same dtype and weak type as ``jnp.asarray``). JAX arrays and tracers go through
    ``jnp.asarray`` unchanged.
    """
    if isinstance(x, jax.Array):
        return jnp.asarray(x)
    if isinstance(x, (bool, int, float, complex)):
        return jax.device_put(x)
    return jax.device_put(np.asarray(x))


def power_of_two(n: int, minimum: int = 1) -> int:
    """The smallest power of two >= max(n, minimum): the bucketed sizes that let one compiled
    program serve many shapes (:mod:`theory_sim.flow.buckets`, :mod:`theory_sim._random`)."""
    return 1 << (max(n, minimum) - 1).bit_length()
