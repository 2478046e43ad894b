"""Policy parameterisations: each maps its parameters to a log-probability table [X, Y].

Every exact quantity in theory_sim is a function of that table, so a parameterisation only has to
say how its parameters become log-probabilities. Parameterisations are JAX pytrees: the tabular
and autoregressive ones are static (hashable configuration only), the log-linear one carries its
feature array as a leaf.

A parameterisation provides:

* ``log_probs(params) -> [X, Y]``: log pi(y|x), computed in log space (log-softmax);
* ``check_params(name, params) -> (np.ndarray, bool)``: validate user parameters and return them
  in the internal layout, and whether the user gave a single prompt (no prompt axis);
* ``squeeze(params)`` / ``unsqueeze(params)``: internal layout to and from the user's
  one-prompt layout (leading axes kept);
* ``num_prompts(params)`` / ``num_outputs(params)``: X and Y;
* ``init_params(probs) -> params``: parameters reproducing a probability table [X, Y] (exactly for
  tabular and autoregressive policies, by least squares for log-linear ones);
* ``jacobian_norm(params, prompt=None) -> float``: J, the spectral norm of d f_theta / d theta
  for the logit function f (Theorem 4 and Proposition 2 of arXiv 2503.15477; J_x for one prompt),
  and ``length`` L. All three parameterisations here have logits linear in theta, so J does not
  change along a trajectory;
* ``expressive``: True when every full-support policy is reachable (then the KL-regularised
  maximiser pi* proportional to pi_0 exp(r/lambda) is the flow's limit). Expressive policies also
  provide ``log_params(log_probs)`` (parameters of a log-probability table, exactly, in log space)
  and ``relative_log_probs(w, base) = log pi_{base + w} - log pi_base`` accurate near w = const,
  with which :mod:`theory_sim.flow` integrates relative to the limit, certifies convergence and
  proves targets unreachable.

:func:`start_at` turns any of them into "start the flow at these probabilities" and reports the
residual max |log pi_params - log probs|.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import (
    as_float_array,
    check_fits,
    check_index,
    check_int,
    check_probabilities,
)

__all__ = ["Autoregressive", "LogLinear", "Tabular", "start_at"]


def _strictly_positive(probs) -> np.ndarray:
    arr = check_probabilities("probs", probs)
    if np.any(arr <= 0):
        raise ValueError(
            "`probs` must be strictly positive to be reached by finite logits; "
            f"its minimum is {arr.min()}."
        )
    return arr


def _relative_log_softmax(w: jax.Array, log_q: jax.Array) -> jax.Array:
    """log softmax(log_q + w) - log_q along the last axis, for normalised log-probabilities log_q.

    Exactly 0 where w is constant along the axis and accurate to round-off relative to the
    spread of w near it (log1p of sum q expm1(w - w_mode)); far from it, a logsumexp. The flow's
    field in coordinates relative to its limit uses it, so that the field vanishes at the limit
    instead of sitting at a round-off floor (see :mod:`theory_sim.flow`).
    """
    mode = jnp.argmax(log_q + w, axis=-1, keepdims=True)
    d = w - jnp.take_along_axis(w, mode, axis=-1)
    near = d < 1.0
    q = jnp.exp(log_q)
    # log_q + d <= log_q[mode] <= 0 by the choice of the mode, so exp never overflows
    excess = jnp.where(
        near,
        q * jnp.expm1(jnp.where(near, d, 0.0)),
        jnp.exp(log_q + jnp.where(near, 0.0, d)) - q,
    )
    s = jnp.sum(excess, axis=-1, keepdims=True)  # sum_y q_y e^{d_y} - 1
    small = jnp.abs(s) < 0.5
    log_norm = jnp.where(
        small,
        jnp.log1p(jnp.where(small, s, 0.0)),
        jax.nn.logsumexp(log_q + d, axis=-1, keepdims=True),
    )
    return d - log_norm


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Tabular:
    """Tabular softmax policy: one free logit per (prompt, output).

    pi(y|x) = exp(theta[x, y]) / sum_y' exp(theta[x, y']),   theta of shape [X, Y].

    The parameterisation of Proposition 3 and Theorems 5-6 of arXiv 2503.15477; as the L = 1 case
    of Theorem 4 its logit function is theta[x] itself, so J = 1.

    Example:
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
        return np.log(arr[None] if arr.ndim == 1 else arr)

    def jacobian_norm(self, params, prompt: int | None = None) -> float:
        """J = 1: each logit vector is a free parameter block (a coordinate selection)."""
        return 1.0


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Autoregressive:
    """Autoregressive policy over token sequences, one free logit vector per (prompt, prefix).

    pi(y|x) = prod_{l=1..L} softmax(theta[x, prefix(y_<l)])[y_l],   y = (y_1..y_L) in [V]^L.

    The tabular-per-prefix case of Eq. 2 in arXiv 2503.15477 (Theorem 4 with J = 1). Parameters
    have shape [X, P, V] with P = 1 + V + ... + V^(L-1) prefixes in level order: the prefix
    (y_1..y_l) sits at row (V^l - 1)/(V - 1) + sum_i y_i V^(l-i). Sequences are enumerated in
    lexicographic order, sequence index = sum_i y_i V^(L-i) (:meth:`index`, :meth:`sequences`).

    log pi over all V^L sequences is built level by level from cumulative sums of conditional
    log-probabilities: O(V^L) work, no loop over sequences.

    Args:
        vocab_size: V >= 1.
        length: L >= 1.

    Example:
        >>> from theory_sim import Autoregressive
        >>> policy = Autoregressive(vocab_size=2, length=3)
        >>> policy.num_prefixes, policy.num_sequences, policy.decode(5)
        (7, 8, (1, 0, 1))
    """

    vocab_size: int
    length: int
    expressive = True

    def __post_init__(self):
        check_int("vocab_size", self.vocab_size, 1)
        check_int("length", self.length, 1)
        # V^L computed in log space first: no huge integers (and no minutes-long sums) for absurd
        # sizes; 2^62 sequences is far beyond any memory, so the message is the same limit.
        if self.length * math.log2(max(self.vocab_size, 1)) > 62:
            raise ValueError(
                f"Autoregressive(vocab_size={self.vocab_size}, length={self.length}) is too large "
                f"to enumerate: V^L = 2^{self.length * math.log2(self.vocab_size):.4g} sequences, "
                "beyond 2^62 (and far beyond memory)."
            )
        # Refuse before anything of size V^L is allocated.
        check_fits(
            1,
            self.num_sequences,
            self.num_prefixes * self.vocab_size,
            f"Autoregressive(vocab_size={self.vocab_size}, length={self.length})",
        )

    @property
    def num_sequences(self) -> int:
        """Y = V^L."""
        return self.vocab_size**self.length

    @property
    def num_prefixes(self) -> int:
        """P = sum_{l < L} V^l, the number of (prefix) logit vectors per prompt."""
        v = self.vocab_size
        return self.length if v == 1 else (v**self.length - 1) // (v - 1)

    def _offset(self, level: int) -> int:
        return sum(self.vocab_size**i for i in range(level))

    def log_probs(self, params: jax.Array) -> jax.Array:
        """log pi(y|x) for all V^L sequences, [X, V^L], by cumulative sums over the prefix tree."""
        return self._accumulate(jax.nn.log_softmax(params, axis=-1))

    def relative_log_probs(self, w: jax.Array, base: jax.Array) -> jax.Array:
        """log pi_{base + w} - log pi_base over sequences, [X, V^L], accurate near w = const per
        prefix (``base`` holds normalised conditional log-probabilities)."""
        return self._accumulate(_relative_log_softmax(w, base))

    def _accumulate(self, conditional: jax.Array) -> jax.Array:
        """Sum per-prefix tables [X, P, V] along every sequence's path: [X, V^L]."""
        v = self.vocab_size
        total = jnp.zeros((*conditional.shape[:-2], 1), conditional.dtype)
        for level in range(self.length):
            start, count = self._offset(level), v**level
            step = conditional[..., start : start + count, :]  # [X, V^l, V]
            total = (total[..., :, None] + step).reshape((*conditional.shape[:-2], count * v))
        return total

    def log_params(self, log_probs: jax.Array) -> jax.Array:
        """Conditional log-probabilities log pi(y_l | x, y_<l) [X, P, V] reproducing a
        log-probability table [X, V^L] exactly: prefix marginals by logsumexp, bottom-up, in log
        space (entries far below float64's smallest probability keep their logs)."""
        v, levels, marginal = self.vocab_size, [], log_probs
        for level in reversed(range(self.length)):
            children = marginal.reshape(log_probs.shape[0], v**level, v)
            parents = jax.nn.logsumexp(children, axis=-1)
            levels.append(children - parents[..., None])
            marginal = parents
        return jnp.concatenate(levels[::-1], axis=1)

    def check_params(self, name: str, params) -> tuple[np.ndarray, bool]:
        """Validate logits [X, P, V] (or [P, V] for one prompt)."""
        arr = as_float_array(name, params, ndim=(2, 3))
        single = arr.ndim == 2
        arr = arr[None] if single else arr
        expected = (self.num_prefixes, self.vocab_size)
        if arr.shape[1:] != expected:
            raise ValueError(
                f"`{name}` must have shape (X, {expected[0]}, {expected[1]}) or {expected} for "
                f"V = {self.vocab_size}, L = {self.length}; got {np.shape(params)}."
            )
        return arr, single

    def squeeze(self, params):
        return params[..., 0, :, :]

    def unsqueeze(self, params):
        return jnp.expand_dims(params, -3)

    def num_outputs(self, params) -> int:
        return self.num_sequences

    def num_prompts(self, params) -> int:
        return int(params.shape[0])

    def init_params(self, probs) -> np.ndarray:
        """Per-prefix logits log pi(y_l | x, y_<l) reproducing ``probs`` [X, V^L] exactly.

        Prefix marginals are summed bottom-up, conditionals are their ratios (:meth:`log_params`).
        """
        arr = _strictly_positive(probs)
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.shape[-1] != self.num_sequences:
            raise ValueError(
                f"`probs` must have V^L = {self.num_sequences} outputs; got {arr.shape[-1]}."
            )
        return np.asarray(_jit_log_params(self, np.log(arr)))

    def jacobian_norm(self, params, prompt: int | None = None) -> float:
        """J = 1: each logit vector is a free parameter block (a coordinate selection)."""
        return 1.0

    def index(self, sequence) -> int:
        """Flat index of a token sequence (y_1..y_L): sum_i y_i V^(L-i)."""
        seq = tuple(int(t) for t in sequence)
        if len(seq) != self.length or any(not 0 <= t < self.vocab_size for t in seq):
            raise ValueError(
                f"`sequence` must be {self.length} tokens in [0, {self.vocab_size - 1}]; "
                f"got {sequence!r}."
            )
        out = 0
        for token in seq:
            out = out * self.vocab_size + token
        return out

    def decode(self, index: int, alphabet: str | None = None):
        """The tokens of sequence ``index``; with ``alphabet`` (a character per token), a string."""
        index = check_index("index", index, self.num_sequences, "sequences")
        tokens, rest = [], int(index)
        for _ in range(self.length):
            rest, token = divmod(rest, self.vocab_size)
            tokens.append(token)
        tokens.reverse()
        if alphabet is None:
            return tuple(tokens)
        if len(alphabet) != self.vocab_size:
            raise ValueError(
                f"`alphabet` must have {self.vocab_size} characters; got {alphabet!r}."
            )
        return "".join(alphabet[t] for t in tokens)

    def sequences(self) -> np.ndarray:
        """All sequences as a [V^L, L] integer table, row i being sequence index i."""
        grids = np.indices((self.vocab_size,) * self.length).reshape(self.length, -1)
        return grids.T


@jax.tree_util.register_pytree_node_class
class LogLinear:
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
        self.features = jnp.asarray(arr)

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
        arr = as_float_array(name, params, ndim=(1,))
        if arr.shape != (self.dim,):
            raise ValueError(
                f"`{name}` must have shape ({self.dim},) like the features' last "
                f"axis; got {arr.shape}."
            )
        return arr, self.single_prompt

    def squeeze(self, params):
        return params

    def unsqueeze(self, params):
        return params

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
        return float(norms.max() if prompt is None else norms[prompt])


# One compiled program per policy and shape (a policy is static or a pytree), rather than one
# per eager operation: the command line's instances build many small shapes.
_jit_log_probs = jax.jit(lambda policy, params: policy.log_probs(params))
_jit_log_params = jax.jit(lambda policy, log_probs: policy.log_params(log_probs))


def start_at(policy, probs) -> tuple[np.ndarray, float]:
    """Parameters for ``policy`` whose probabilities are ``probs``, and the residual.

    residual = max_{x, y} |log pi_params(y|x) - log probs(y|x)|: round-off for tabular and
    autoregressive policies, the least-squares misfit for log-linear ones.

    Args:
        policy: a parameterisation.
        probs: [X, Y] (or [Y] for one prompt) strictly positive probabilities.

    Returns:
        (params in the layout ``Problem`` takes for ``init_logits``, residual).

    Example:
        >>> import numpy as np
        >>> from theory_sim import Autoregressive, start_at
        >>> params, residual = start_at(Autoregressive(2, 2), np.array([0.1, 0.2, 0.3, 0.4]))
        >>> params.shape, residual < 1e-12
        ((3, 2), True)
    """
    if not all(callable(getattr(policy, m, None)) for m in ("init_params", "log_probs", "squeeze")):
        shown = repr(policy) if len(repr(policy)) <= 60 else repr(policy)[:57] + "..."
        raise TypeError(
            "`policy` must be a parameterisation such as Tabular(), Autoregressive(V, L) or "
            f"LogLinear(features); got {type(policy).__name__} {shown}."
        )
    params = policy.init_params(probs)
    arr = _strictly_positive(probs)
    target = np.log(arr.reshape(-1, arr.shape[-1]))
    fitted = np.asarray(_jit_log_probs(policy, jnp.asarray(params))).reshape(target.shape)
    residual = float(np.max(np.abs(fitted - target)))
    if arr.ndim == 1:
        params = np.asarray(policy.squeeze(params))
    return params, residual
