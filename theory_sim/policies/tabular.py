"""The tabular softmax policy (Proposition 3, Theorems 5-6 of arXiv 2503.15477)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import as_float_array
from theory_sim.policies._common import _relative_log_softmax, _strictly_positive


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Tabular:
    """Tabular softmax policy: one free logit per (prompt, output).

    pi(y|x) = exp(theta[x, y]) / sum_y' exp(theta[x, y']),   theta of shape [X, Y].

    The parameterisation of Proposition 3 and Theorems 5-6 of arXiv 2503.15477; as the L = 1 case
    of Theorem 4 its logit function is theta[x] itself, so J = 1.

    Examples:
        >>> import numpy as np
        >>> from theory_sim import Tabular
        >>> Tabular().init_params(np.array([[0.5, 0.25, 0.25]])).round(3)
        array([[-0.693, -1.386, -1.386]])
    """

    expressive = True
    length = 1

    def log_probs(self, params: jax.Array) -> jax.Array:
        """log pi(y|x) = theta[x, y] - logsumexp_y' theta[x, y'], shape [X, Y]."""
        return jax.nn.log_softmax(params, axis=-1)

    def relative_log_probs(self, w: jax.Array, base: jax.Array) -> jax.Array:
        """log pi_{base + w} - log pi_base [X, Y], accurate near w = const (base normalised)."""
        return _relative_log_softmax(w, base)

    def log_params(self, log_probs: jax.Array) -> jax.Array:
        """Normalised logits reproducing a log-probability table [X, Y] exactly (log space)."""
        return jax.nn.log_softmax(log_probs, axis=-1)

    def check_params(self, name: str, params) -> tuple[np.ndarray, bool]:
        """Validate logits [X, Y] (or [Y] for one prompt, returned as [1, Y] with single=True)."""
        arr = as_float_array(name, params, ndim=(1, 2))
        single = arr.ndim == 1
        arr = arr[None, :] if single else arr
        if arr.shape[-1] < 2:
            raise ValueError(f"`{name}` must have at least 2 outputs; got shape {arr.shape}.")
        return arr, single

    def squeeze(self, params):
        return params[..., 0, :]

    def unsqueeze(self, params):
        return jnp.expand_dims(params, -2)

    def num_outputs(self, params) -> int:
        return int(params.shape[-1])

    def num_prompts(self, params) -> int:
        return int(params.shape[0])

    def init_params(self, probs) -> np.ndarray:
        """Logits log pi(y|x) [X, Y] reproducing ``probs`` [X, Y] exactly; entries must be > 0."""
        arr = _strictly_positive(probs)
        if arr.ndim not in (1, 2):
            raise ValueError(f"`probs` must be [Y] or [X, Y]; got shape {arr.shape}.")
        return np.log(arr[None] if arr.ndim == 1 else arr)

    def jacobian_norm(self, params, prompt: int | None = None) -> float:
        """J = 1: each logit vector is a free parameter block (a coordinate selection)."""
        return 1.0
