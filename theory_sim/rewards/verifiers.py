"""Noisy verifiers of a 0/1 ground truth ("Rate or Fate? RLVeR", arXiv 2601.04411).

A verifier says "correct" for a correct output with probability 1 - FNR and for an incorrect one
with probability FPR. Its expected reward is an affine image of the ground truth,

    E[verdict | y] = FPR + (1 - FPR - FNR) r_G(y) = FPR + J r_G(y),

with slope Youden's J = TPR - FPR = 1 - FPR - FNR. The constant does not move the policy
gradient (it cancels against the baseline E_pi r), so under the exact flow the noisy verifier
is the clean one scaled by J: with lambda = 0 the flow of J r_G is the clean flow run J times
faster, t_gamma(J) = t_gamma(1) / J for J > 0, it never moves for J = 0, and for J < 0 it
optimises -r_G, so the ground truth falls (the three phases of arXiv 2601.04411's analysis,
there stated for sampled RLVR; here exact). With lambda > 0, grad(J E r - lambda KL) =
J grad(E r - (lambda / J) KL): the clean flow with KL coefficient lambda / J, J times faster.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import as_float_array, check_float_scalar

__all__ = ["noisy_verifier", "sample_verdicts", "youden_j"]


def _rates(false_positive, false_negative) -> tuple[float, float]:
    fpr = check_float_scalar("false_positive", false_positive, nonnegative=True)
    fnr = check_float_scalar("false_negative", false_negative, nonnegative=True)
    for name, value in (("false_positive", fpr), ("false_negative", fnr)):
        if value > 1:
            raise ValueError(f"`{name}` must be a rate in [0, 1]; got {value}.")
    return fpr, fnr


def _binary(name: str, correct) -> np.ndarray:
    table = as_float_array(name, correct)
    if not np.all(np.isin(table, (0.0, 1.0))):
        bad = table[~np.isin(table, (0.0, 1.0))].ravel()[0]
        raise ValueError(f"`{name}` must hold 0/1 correctness labels; found {bad!r}.")
    return table


def youden_j(false_positive: float, false_negative: float) -> float:
    """J = 1 - FPR - FNR, in [-1, 1]: the slope of a verifier's expected reward in r_G."""
    fpr, fnr = _rates(false_positive, false_negative)
    return 1.0 - fpr - fnr


def noisy_verifier(correct, false_positive: float, false_negative: float) -> np.ndarray:
    """The expected reward of a verifier with the given error rates on a 0/1 ground truth.

    r(y) = P(verdict "correct" | y) = FPR + (1 - FPR - FNR) r_G(y).

    Args:
        correct: the 0/1 ground truth r_G, any shape (e.g. [X, Y]).
        false_positive: FPR = P(verdict 1 | incorrect), in [0, 1].
        false_negative: FNR = P(verdict 0 | correct), in [0, 1].

    Returns:
        The expected verdict, shaped like ``correct``.

    Examples:
        >>> import numpy as np
        >>> from theory_sim.rewards import noisy_verifier
        >>> noisy_verifier(np.array([1.0, 0.0]), 0.25, 0.25).tolist()
        [0.75, 0.25]
    """
    table = _binary("correct", correct)
    fpr, fnr = _rates(false_positive, false_negative)
    return fpr + (1.0 - fpr - fnr) * table


def sample_verdicts(key: jax.Array, correct, false_positive, false_negative) -> jax.Array:
    """Draw one 0/1 verdict per entry of ``correct`` (the true labels of sampled outputs): a
    correct entry is rejected with probability FNR, an incorrect one accepted with probability
    FPR. Traceable (jit, vmap); the rates are not checked here (see :func:`noisy_verifier`)."""
    u = jax.random.uniform(key, jnp.shape(correct), jnp.float64)
    flip = jnp.where(correct > 0.5, u < false_negative, u < false_positive)
    return jnp.where(flip, 1.0 - correct, correct)
