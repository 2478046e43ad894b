"""Host arrays onto the device without compiling anything."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def to_device(x: Any) -> jax.Array:
    """``x`` as a JAX array, the same value and dtype as ``jnp.asarray(x)``.

    JAX 0.10's ``jnp.asarray`` of a host (numpy) array runs a small jitted program, compiled
    (or read from the persistent cache) once per shape and dtype in every process: a run of
    ``theory-sim check`` paid for 42 of them. ``jax.device_put`` copies without a program. JAX
    arrays, tracers and Python scalars (weakly typed) go through ``jnp.asarray`` unchanged.
    """
    if isinstance(x, (jax.Array, bool, int, float, complex)):
        return jnp.asarray(x)
    return jax.device_put(np.asarray(x))
