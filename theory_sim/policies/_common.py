"""What the parameterisations share: validation of probability tables, the relative log-softmax
of the flow's limit coordinates, and jitted wrappers of the protocol's two table maps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import as_float_array, check_probabilities


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
    return _relative_softmax_parts(w, log_q)[0]


def _relative_softmax_parts(w: jax.Array, log_q: jax.Array):
    """(log softmax(log_q + w) - log_q, shifted, e, total): the relative log-softmax and the
    softmax itself, pi = e / total, log pi = shifted - log total, from one exp and one expm1 per
    element.

    With d = w - w_mode (0 at a mode of log_q + w, so log_q + d <= log_q(mode) <= 0 and no exp
    overflows), shifted = log_q + d - log_q(mode) <= 0 is 0 exactly at the modes, e = exp(shifted)
    and total = sum e. The log-normaliser log sum_y q_y e^{d_y} is log1p(s) with
    s = sum_y q_y expm1(d_y) (exact near d = const; outputs with d >= 1 contribute
    q_y e^{d_y} - q_y = e_y q(mode) - q_y) when |s| < 1/2, else log total + log q(mode).
    """
    z = log_q + w
    w_mode = jnp.max(
        jnp.where(z == jnp.max(z, axis=-1, keepdims=True), w, -jnp.inf), axis=-1, keepdims=True
    )
    d = w - w_mode
    lifted = log_q + d
    log_q_mode = jnp.max(lifted, axis=-1, keepdims=True)
    shifted = lifted - log_q_mode
    e = jnp.exp(shifted)
    total = jnp.sum(e, axis=-1, keepdims=True)
    near = d < 1.0
    q = jnp.exp(log_q)
    excess = jnp.where(near, q * jnp.expm1(jnp.where(near, d, 0.0)), e * jnp.exp(log_q_mode) - q)
    s = jnp.sum(excess, axis=-1, keepdims=True)  # sum_y q_y e^{d_y} - 1
    small = jnp.abs(s) < 0.5
    log_norm = jnp.where(small, jnp.log1p(jnp.where(small, s, 0.0)), jnp.log(total) + log_q_mode)
    return d - log_norm, shifted, e, total


# One compiled program per policy and shape (a policy is static or a pytree), rather than one
# per eager operation: the command line's instances build many small shapes.
_jit_log_probs = jax.jit(lambda policy, params: policy.log_probs(params))
_jit_log_params = jax.jit(lambda policy, log_probs: policy.log_params(log_probs))


class _VectorParams:
    """The protocol's parameter handling for parameterisations whose parameters are one vector
    shared by every prompt (log-linear, neural): no prompt axis to squeeze or add."""

    def _check_vector(self, name: str, params, size: int, what: str) -> tuple[np.ndarray, bool]:
        """Validate a 1-D float vector of ``size`` entries; ``what`` says what it should be."""
        arr = as_float_array(name, params, ndim=(1,))
        if arr.shape != (size,):
            raise ValueError(f"`{name}` must {what}; got shape {arr.shape}.")
        return arr, self.single_prompt

    def squeeze(self, params):
        return params

    def unsqueeze(self, params):
        return params
