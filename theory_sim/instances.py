"""Seeded random problem instances for property tests, checks and sweeps."""

from __future__ import annotations

import jax
import numpy as np

from theory_sim._validation import check_float_scalar, check_int
from theory_sim.problem import Problem

__all__ = ["random_problem"]


def random_problem(
    num_prompts: int,
    num_outputs: int,
    *,
    key: jax.Array,
    kl_coef: float = 0.0,
    logit_std: float = 1.0,
    rm_scale: float = 1.0,
) -> Problem:
    """A random tabular problem with r_G ~ U[-1, 1] and r_RM ~ rm_scale U[-1, 1].

    Initial logits are N(0, logit_std^2).

    ``rm_scale`` in (0, 1] shrinks the reward model's range and so its reward variance (by
    rm_scale^2): the knob that makes the objective flat. r_RM and r_G are drawn independently.

    Args:
        num_prompts: X >= 1.
        num_outputs: Y >= 2.
        key: a JAX random key (``jax.random.key(seed)``); same key, same instance.
        kl_coef: lambda >= 0.
        logit_std: spread of the initial logits, >= 0.
        rm_scale: scale of the reward model, in (0, 1].

    Example:
        >>> import jax
        >>> from theory_sim.instances import random_problem
        >>> random_problem(2, 5, key=jax.random.key(0)).reward_rm.shape
        (2, 5)
    """
    num_prompts, num_outputs = (
        check_int("num_prompts", num_prompts),
        check_int("num_outputs", num_outputs, 2),
    )
    logit_std = check_float_scalar("logit_std", logit_std, nonnegative=True)
    rm_scale = check_float_scalar("rm_scale", rm_scale, positive=True)
    if rm_scale > 1:
        raise ValueError(f"`rm_scale` must be in (0, 1] to keep r_RM in [-1, 1]; got {rm_scale}.")
    k_logits, k_rm, k_gt = jax.random.split(key, 3)
    shape = (int(num_prompts), int(num_outputs))
    logits = logit_std * np.asarray(jax.random.normal(k_logits, shape, dtype=np.float64))
    reward_rm = rm_scale * np.asarray(
        jax.random.uniform(k_rm, shape, dtype=np.float64, minval=-1.0, maxval=1.0)
    )
    reward_gt = np.asarray(
        jax.random.uniform(k_gt, shape, dtype=np.float64, minval=-1.0, maxval=1.0)
    )
    return Problem(logits, reward_rm, reward_gt, kl_coef=kl_coef)
