"""Autoregressive policies over token sequences with one free logit vector per prefix (Eq. 2 and
Theorem 4 of arXiv 2503.15477)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import as_float_array, check_fits, check_index, check_int
from theory_sim.policies._common import (
    _jit_log_params,
    _relative_log_softmax,
    _strictly_positive,
)


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

    Examples:
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
        return self._bottom_up(log_probs)[0]

    def prefix_log_marginals(self, log_probs: jax.Array) -> jax.Array:
        """log pi(y_<l | x) of every prefix [X, P], in the parameters' level order (the empty
        prefix first, log 1 = 0), from a log-probability table [X, V^L] by logsumexp, bottom-up."""
        return self._bottom_up(log_probs)[1]

    def _bottom_up(self, log_probs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(conditional log-probabilities [X, P, V], prefix log-marginals [X, P])."""
        v, levels, parents_by_level, marginal = self.vocab_size, [], [], log_probs
        for level in reversed(range(self.length)):
            children = marginal.reshape(log_probs.shape[0], v**level, v)
            parents = jax.nn.logsumexp(children, axis=-1)
            levels.append(children - parents[..., None])
            parents_by_level.append(parents)
            marginal = parents
        return (
            jnp.concatenate(levels[::-1], axis=1),
            jnp.concatenate(parents_by_level[::-1], axis=1),
        )

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
        """Flat index of a token sequence (y_1..y_L): sum_i y_i V^(L-i); tokens are integers."""
        try:
            tokens = list(np.asarray(sequence, dtype=object)) if np.ndim(sequence) == 1 else None
        except (TypeError, ValueError):
            tokens = None
        if tokens is None or any(
            isinstance(t, bool) or not isinstance(t, (int, np.integer)) for t in tokens
        ):
            raise TypeError(
                f"`sequence` must be a sequence of {self.length} integer tokens; got {sequence!r}."
            )
        seq = tuple(int(t) for t in tokens)
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
        if not isinstance(alphabet, str | list | tuple) or not all(
            isinstance(c, str) for c in alphabet
        ):
            raise TypeError(
                f"`alphabet` must be a string (a character per token); got {alphabet!r}."
            )
        if len(alphabet) != self.vocab_size:
            raise ValueError(
                f"`alphabet` must have {self.vocab_size} characters; got {alphabet!r}."
            )
        return "".join(alphabet[t] for t in tokens)

    def sequences(self) -> np.ndarray:
        """All sequences as a [V^L, L] integer table, row i being sequence index i."""
        grids = np.indices((self.vocab_size,) * self.length).reshape(self.length, -1)
        return grids.T
