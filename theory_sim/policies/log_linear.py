"""The log-linear policy: logits linear in one weight vector shared by every prompt."""

from __future__ import annotations

import jax
import numpy as np

from theory_sim._device import to_device
from theory_sim._validation import as_float_array, check_index
from theory_sim.policies._common import _strictly_positive, _VectorParams


@jax.tree_util.register_pytree_node_class
class LogLinear(_VectorParams):
    """Log-linear policy: logits = features @ w, one weight vector shared by all prompts.

    pi(y|x) = softmax_y(phi(x, y) . w),   features phi of shape [X, Y, d], w of shape [d].

    Its logit function f_w(x) = phi(x) w is linear, so J = max_x ||phi(x)||_2 (the spectral norm of
    the [Y, d] feature matrix), the constant of Theorem 4 and Proposition 2 of arXiv 2503.15477.
    Not every policy is reachable (``expressive`` is False).

    Args:
        features: [X, Y, d] (or [Y, d] for a single prompt), finite floats, Y >= 2.
    """

    expressive = False
    length = 1

    def __init__(self, features):
        arr = as_float_array("features", features, ndim=(2, 3))
        self.single_prompt = arr.ndim == 2
        arr = arr[None] if self.single_prompt else arr
        if arr.shape[1] < 2:
            raise ValueError(f"`features` must have at least 2 outputs; got shape {arr.shape}.")
        self.features = to_device(arr)  # no program compiled for the transfer

    def tree_flatten(self):
        return (self.features,), self.single_prompt

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.features, obj.single_prompt = children[0], aux
        return obj

    def __repr__(self) -> str:
        return f"LogLinear(features of shape {tuple(self.features.shape)})"

    @property
    def dim(self) -> int:
        return int(self.features.shape[-1])

    def log_probs(self, params: jax.Array) -> jax.Array:
        return jax.nn.log_softmax(self.features @ params, axis=-1)

    def check_params(self, name: str, params) -> tuple[np.ndarray, bool]:
        """Validate weights [d]."""
        what = f"have shape ({self.dim},) like the features' last axis"
        return self._check_vector(name, params, self.dim, what)

    def num_outputs(self, params) -> int:
        return int(self.features.shape[1])

    def num_prompts(self, params) -> int:
        return int(self.features.shape[0])

    def init_params(self, probs) -> np.ndarray:
        """Least-squares weights: min_w sum_x || (phi(x) w + c_x) - log probs(x) ||^2 over w, c.

        The per-prompt shifts c_x (softmax ignores them) are removed by centring over outputs;
        :func:`start_at` reports the residual.
        """
        arr = _strictly_positive(probs)
        arr = arr[None] if arr.ndim == 1 else arr
        feats = np.asarray(self.features)
        if arr.shape != feats.shape[:2]:
            raise ValueError(
                f"`probs` must have shape {feats.shape[:2]} like the features; got {arr.shape}."
            )
        target = np.log(arr)
        target = target - target.mean(-1, keepdims=True)
        design = feats - feats.mean(1, keepdims=True)
        w, *_ = np.linalg.lstsq(design.reshape(-1, self.dim), target.reshape(-1), rcond=None)
        return w

    def jacobian_norm(self, params, prompt: int | None = None) -> float:
        """J = ||phi(x)||_2 for ``prompt`` x, or the max over prompts; independent of w."""
        norms = np.linalg.norm(np.asarray(self.features), ord=2, axis=(1, 2))
        if prompt is None:
            return float(norms.max())
        return float(norms[check_index("prompt", prompt, len(norms), "prompts")])
