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

import numpy as np

from theory_sim._device import to_device
from theory_sim.policies._common import (
    _jit_log_params as _jit_log_params,
)
from theory_sim.policies._common import (
    _jit_log_probs as _jit_log_probs,
)
from theory_sim.policies._common import _strictly_positive
from theory_sim.policies.autoregressive import Autoregressive as Autoregressive
from theory_sim.policies.log_linear import LogLinear as LogLinear
from theory_sim.policies.neural import MLP as MLP
from theory_sim.policies.neural import Neural as Neural
from theory_sim.policies.neural import Transformer as Transformer
from theory_sim.policies.scaled import ScaledMLP as ScaledMLP
from theory_sim.policies.tabular import Tabular as Tabular

__all__ = [
    "MLP",
    "Autoregressive",
    "LogLinear",
    "Neural",
    "ScaledMLP",
    "Tabular",
    "Transformer",
    "start_at",
]


def start_at(policy, probs) -> tuple[np.ndarray, float]:
    """Parameters for ``policy`` whose probabilities are ``probs``, and the residual.

    residual = max_{x, y} |log pi_params(y|x) - log probs(y|x)|: round-off for tabular and
    autoregressive policies, the least-squares misfit for log-linear ones.

    Args:
        policy: a parameterisation.
        probs: [X, Y] (or [Y] for one prompt) strictly positive probabilities.

    Returns:
        (params in the layout ``Problem`` takes for ``init_logits``, residual).

    Examples:
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
    fitted = np.asarray(_jit_log_probs(policy, to_device(params))).reshape(target.shape)
    residual = float(np.max(np.abs(fitted - target)))
    if arr.ndim == 1:
        params = np.asarray(policy.squeeze(params))
    return params, residual
