"""Policy parameterisations: each maps its parameters to a log-probability table [X, Y].

Every exact quantity in theory_sim is a function of that table, so a parameterisation only has to
say how its parameters become log-probabilities. A parameterisation is a small frozen (hashable)
object holding static configuration; the parameters themselves are plain arrays.

A parameterisation provides:

* ``log_probs(params) -> [X, Y]``: log pi(y|x), computed in log space (log-softmax);
* ``check_params(name, params) -> (np.ndarray, bool)``: validate user parameters and return them
  as a float64 array with a prompt axis, and whether the user gave a single prompt (no prompt axis);
* ``num_outputs(params) -> int``: Y, the size of the enumerated output space;
* ``from_probs(probs) -> params``: parameters reproducing a given probability table;
* ``expressive``: True when every policy with full support is reachable (then the KL-regularised
  maximiser pi* proportional to pi_0 exp(r/lambda) is the flow's limit, which the time-to-gain
  solver uses to prove a target unreachable).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from theory_sim._validation import as_float_array, check_probabilities

__all__ = ["Tabular"]


@dataclasses.dataclass(frozen=True)
class Tabular:
    """Tabular softmax policy: one free logit per (prompt, output).

    pi(y|x) = exp(theta[x, y]) / sum_y' exp(theta[x, y']),   theta of shape [X, Y].

    This is the parameterisation of Proposition 3 and Theorems 5-6 of arXiv 2503.15477 (its
    Jacobian is the identity, J = 1).

    Example:
        >>> import numpy as np
        >>> from theory_sim import Tabular
        >>> Tabular().from_probs(np.array([[0.5, 0.25, 0.25]])).round(3)
        array([[-0.693, -1.386, -1.386]])
    """

    expressive: bool = dataclasses.field(default=True, init=False, repr=False)

    def log_probs(self, params: jax.Array) -> jax.Array:
        """log pi(y|x) = theta[x, y] - logsumexp_y' theta[x, y'], shape [X, Y]."""
        return jax.nn.log_softmax(params, axis=-1)

    def check_params(self, name: str, params) -> tuple[np.ndarray, bool]:
        """Validate logits [X, Y] (or [Y] for one prompt, returned as [1, Y] with single=True)."""
        arr = as_float_array(name, params, ndim=(1, 2))
        single = arr.ndim == 1
        arr = arr[None, :] if single else arr
        if arr.shape[-1] < 2:
            raise ValueError(f"`{name}` must have at least 2 outputs; got shape {arr.shape}.")
        return arr, single

    def num_outputs(self, params) -> int:
        return int(params.shape[-1])

    def from_probs(self, probs) -> np.ndarray:
        """Logits log pi(y|x) reproducing ``probs`` [X, Y] exactly; every entry must be > 0."""
        arr = check_probabilities("probs", probs)
        if np.any(arr <= 0):
            raise ValueError(
                "`probs` must be strictly positive to be reached by finite logits; "
                f"its minimum is {arr.min()}."
            )
        return np.log(arr)
