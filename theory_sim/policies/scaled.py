"""A tanh MLP policy in the NTK or the mean-field (muP) parameterisation, over fixed base logits.

Remark 1 of arXiv 2503.15477 asks whether J, the Jacobian norm of the logit map in Theorem 4,
grows along a neural flow enough to offset a small reward variance. Theory of wide networks
says the answer depends on the parameterisation: in the NTK parameterisation (Jacot et al.,
2018) the kernel J J^T freezes as the width n grows (relative change O(n^(-1/2))), in the
mean-field / maximal-update parameterisation (muP, Yang & Hu, 2021) it keeps moving at every
width. :class:`ScaledMLP` makes both exactly comparable.

    f_theta(y) = m_D+1 w_D+1 . tanh(m_D W_D ... tanh(m_1 W_1 phi(y)))     (no biases)
    log pi(y) = log_softmax(f_theta + base)(y)

with features phi(y) in R^d, hidden width n, D hidden layers and trainable w_l ~ N(0, s_l^2).
Gradient flow runs on the w_l with unit rate, so the multipliers m_l and init scales s_l are the
whole parameterisation ("abc-parameterisation" of Yang & Hu with the learning rate absorbed into
m_l: W = m w moves at rate m^2):

=========== ================== ================ ==================
layer        NTK (m, s)         mean field (m, s)   rate of W, init var of W (mean field)
=========== ================== ================ ==================
input        (1/sqrt(d), 1)     (sqrt(n/d), 1/sqrt(n))  n/d, 1/d
hidden       (1/sqrt(n), 1)     (1, 1/sqrt(n))          1, 1/n
output       (1/sqrt(n), 1)     (1/sqrt(n), 1/sqrt(n))  1/n, 1/n^2
=========== ================== ================ ==================

The two coincide at n = 1; in both the kernel J J^T is O(1) at initialisation, so J_0 stays of
order one at every width and t_gamma is comparable across widths.

``base`` is a fixed (not trained) logit offset. It sets the starting policy without moving the
network: :meth:`ScaledMLP.starting_at` picks base = log probs - f_theta0, so pi_theta0 = probs
exactly while J_0 (which does not depend on base) is the same for every starting policy.

The Jacobian norm is computed in closed form: J J^T [Y, Y] is the sum over layers of
m_l^2 (Delta_l Delta_l^T) o (A_l-1 A_l-1^T), with A_l-1 the layer's input activations and
Delta_l the derivative of f with respect to its pre-activations, one forward and one backward
pass for all outputs at once (:func:`scaled_mlp_gram`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim import _random
from theory_sim._validation import as_float_array, check_int
from theory_sim.policies.neural import MLP, Neural, _features, _key

__all__ = ["PARAMETERISATIONS", "ScaledMLP", "layer_scales", "scaled_mlp_gram", "scaled_mlp_logits"]

PARAMETERISATIONS = ("ntk", "mean_field")


def layer_scales(parameterisation: str, input_dim: int, width: int, depth: int):
    """(multipliers m_l, init standard deviations s_l), each a tuple of depth + 1 floats."""
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(
            f"`parameterisation` must be one of {PARAMETERISATIONS}; got {parameterisation!r}."
        )
    d, n = check_int("input_dim", input_dim, 1), check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    root = math.sqrt(n)
    if parameterisation == "ntk":
        return (1 / math.sqrt(d),) + (1 / root,) * depth, (1.0,) * (depth + 1)
    return (root / math.sqrt(d),) + (1.0,) * (depth - 1) + (1 / root,), (1 / root,) * (depth + 1)


def _forward(weights, mults, features):
    """Pre-activations [Y, n] of each hidden layer and the logits [Y]."""
    pre, h = [], features
    for w, m in zip(weights[:-1], mults[:-1], strict=True):
        pre.append(m * h @ w.T)
        h = jnp.tanh(pre[-1])
    return pre, mults[-1] * h @ weights[-1]


def scaled_mlp_logits(weights, mults, features) -> jax.Array:
    """f_theta(y) for every row of ``features`` [Y, d]: [Y] (without the base logits)."""
    return _forward(weights, mults, features)[1]


def scaled_mlp_gram(weights, mults, features) -> jax.Array:
    """J J^T [Y, Y] with J = d f_theta / d (w_1, ..., w_D+1), exactly, layer by layer."""
    pre, _ = _forward(weights, mults, features)
    acts = [features] + [jnp.tanh(p) for p in pre]
    gram = mults[-1] ** 2 * acts[-1] @ acts[-1].T
    delta = mults[-1] * weights[-1] * (1 - acts[-1] ** 2)  # d f / d pre-activation of layer D
    for layer in range(len(pre) - 1, -1, -1):
        a = acts[layer]
        gram = gram + mults[layer] ** 2 * (delta @ delta.T) * (a @ a.T)
        if layer:
            delta = mults[layer] * (delta @ weights[layer]) * (1 - a**2)
    return gram


class ScaledMLP(Neural):
    """A bias-free tanh MLP in the NTK or mean-field (muP) parameterisation, plus fixed base logits.

    pi(y|x) = softmax_y(m_D+1 w_D+1 . tanh(... tanh(m_1 W_1 phi(x, y))) + base(x, y))

    Args:
        features: [Y, d] (one prompt) or [X, Y, d] finite floats, Y >= 2.
        width: hidden width n.
        depth: hidden layers D.
        parameterisation: "ntk" or "mean_field" (see the module docstring's table).
        key: seed (int) or JAX key of the initialisation (w_l ~ N(0, s_l^2)).
        base: fixed logits [Y] or [X, Y] added to the network's (default 0); not trained.

    Examples:
        >>> import numpy as np, theory_sim as ts
        >>> from theory_sim.policies.scaled import ScaledMLP
        >>> policy = ScaledMLP(np.eye(4), width=8, depth=1, parameterisation="mean_field")
        >>> start = policy.starting_at([0.1, 0.3, 0.3, 0.3])
        >>> np.round(np.exp(start.log_probs(start.params)), 12).tolist()
        [[0.1, 0.3, 0.3, 0.3]]
    """

    def __init__(self, features, *, width=32, depth=2, parameterisation="ntk", key=0, base=None):
        arr, single = _features(features)
        width, depth = check_int("width", width, 1), check_int("depth", depth, 1)
        mults, stds = layer_scales(parameterisation, arr.shape[-1], width, depth)
        shapes = [(width, arr.shape[-1])] + [(width, width)] * (depth - 1) + [(width,)]
        keys = jax.random.split(_key(key), depth + 1)
        weights = [s * _random.normal(k, shape)
                   for s, k, shape in zip(stds, keys, shapes, strict=True)]  # fmt: skip
        base = np.zeros(arr.shape[:2]) if base is None else as_float_array("base", base)
        if base.shape not in (arr.shape[1:2], arr.shape[:2]):
            raise ValueError(
                f"`base` must have shape {arr.shape[1:2]} or {arr.shape[:2]} (the features' "
                f"outputs); got {base.shape}."
            )
        self.width, self.depth, self.parameterisation = width, depth, parameterisation
        self.mults = mults
        self.features = jnp.asarray(arr)
        self.base = jnp.asarray(np.broadcast_to(base, arr.shape[:2]))
        self._setup(weights, arr.shape[1], 1, None if single else arr.shape[0], None,
                    (width, depth, parameterisation))  # fmt: skip

    _leaves = ("features", "base")  # equal structure, not equal values, makes equal policies
    _pass_bytes = MLP._pass_bytes

    def _cache_key(self):
        """What the traced programs depend on: the configuration (features and base are leaves)."""
        return ("ScaledMLP", *self._spec[1:4], self.single_prompt, self.width, self.depth,
                self.parameterisation)  # fmt: skip

    def _prefix_logits(self, tree, prompt, prefix, level):
        return scaled_mlp_logits(tree, self.mults, self.features[prompt]) + self.base[prompt]

    def logit_table(self, theta) -> jax.Array:
        weights = self.unflatten(theta)
        f = jax.vmap(lambda x: scaled_mlp_logits(weights, self.mults, x))(self.features)
        return (f + self.base)[:, None, :]

    def gram(self, theta) -> jax.Array:
        """J J^T per prompt: [X, Y, Y] (:func:`scaled_mlp_gram`)."""
        theta = self.check_params("theta", theta)[0]
        weights = self.unflatten(jnp.asarray(theta))
        return jax.vmap(lambda x: scaled_mlp_gram(weights, self.mults, x))(self.features)

    def jacobian_norms(self, params) -> np.ndarray:
        """J per prompt from the closed-form kernel: sqrt(largest eigenvalue of J J^T), [X, 1]."""
        theta = self.check_params("params", params)[0]
        return np.sqrt(np.maximum(np.linalg.eigvalsh(np.asarray(self.gram(theta)))[:, -1:], 0))

    def starting_at(self, probs) -> ScaledMLP:
        """The same network (same theta_0, same J_0) with base logits giving pi_theta0 = probs."""
        arr = as_float_array("probs", probs)
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.shape != tuple(self.base.shape) or np.any(arr <= 0):
            raise ValueError(
                f"`probs` must be strictly positive with shape {tuple(self.base.shape)} (or "
                f"{tuple(self.base.shape[1:])} for one prompt); got {arr.shape}."
            )
        f0 = np.asarray(self.logit_table(jnp.asarray(self.params)))[:, 0, :] - np.asarray(self.base)
        base = jnp.asarray(np.log(arr / arr.sum(-1, keepdims=True)) - f0)
        return type(self).tree_unflatten(self, (self.features, base))
