"""Standard JSON (RFC 8259) for everything theory_sim writes: no ``Infinity`` or ``NaN`` tokens.

Python's ``json`` writes non-finite floats as ``Infinity``/``NaN``, which strict parsers
(JavaScript's JSON.parse, Go, serde) reject and jq silently turns into 1.797e308. Here they are
written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (``float("inf")`` reads them back in
Python); numpy and JAX scalars and arrays become numbers and lists.
"""

from __future__ import annotations

import json
import math
from typing import Any

import jax
import numpy as np

from theory_sim import _device  # noqa: F401  (float64 on before any array is made)

__all__ = ["dumps", "strict"]


def strict(obj: Any) -> Any:
    """``obj`` with non-finite floats as "inf", "-inf" or "nan", recursively (see module)."""
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict(v) for v in obj]
    if isinstance(obj, np.ndarray | jax.Array):
        return strict(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def dumps(obj: Any, **kwargs) -> str:
    """``json.dumps`` of :func:`strict` ``(obj)``; ValueError if a non-finite float is left."""
    return json.dumps(strict(obj), allow_nan=False, **kwargs)
