"""Notebook 06: which sequences each teacher pushes up, for autoregressive policies over V^L."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from theory_sim import _random
from theory_sim._validation import (
    check_float_scalar,
    check_int,
    check_probabilities,
    check_seed,
)
from theory_sim.flow import gradient_flow
from theory_sim.metrics import accuracy, reward_variance
from theory_sim.policies import Autoregressive
from theory_sim.problem import Problem


def top_sequences(policy: Autoregressive, probs, columns: dict, k: int = 5) -> list[dict]:
    """The ``k`` likeliest sequences under ``probs`` [V^L], decoded, with a value per column.

    Args:
        policy: the :class:`Autoregressive` parameterisation (decodes indices to tokens).
        probs: [V^L] probabilities of one prompt.
        columns: name -> [V^L] table (e.g. other policies' probabilities, r_G, r_RM).
    """
    if not isinstance(policy, Autoregressive):
        raise TypeError(f"`policy` must be an Autoregressive policy; got {policy!r}.")
    p = check_probabilities("probs", probs)
    if p.shape != (policy.num_sequences,):
        raise ValueError(f"`probs` must have shape ({policy.num_sequences},); got {p.shape}.")
    if not isinstance(columns, dict):
        raise TypeError(f"`columns` must be a dict of name -> [V^L] table; got {columns!r}.")
    for name, table in columns.items():
        if np.shape(table) != p.shape:
            raise ValueError(
                f"`columns`[{name!r}] must have shape {p.shape}; got {np.shape(table)}."
            )
    order = np.argsort(-p, kind="stable")[: check_int("k", k)]
    return [
        {
            "sequence": " ".join(str(int(t)) for t in policy.decode(int(i))),
            "probability": float(p[i]),
            **{name: float(np.asarray(v)[i]) for name, v in columns.items()},
        }
        for i in order
    ]


@dataclasses.dataclass(frozen=True)
class SequenceTeachers:
    """Two teachers for one autoregressive student (:func:`sequence_teachers`).

    Attributes:
        policy: the :class:`Autoregressive` parameterisation.
        accuracy, variance: {model: uniform-pair accuracy, Var_pi0 r_RM}.
        flows: {model: :class:`~theory_sim.Trajectory`} over sequences.
        tables: {model: :func:`top_sequences` of pi_T, with pi_0, r_G and r_RM columns}.
    """

    policy: Autoregressive
    accuracy: dict
    variance: dict
    flows: dict
    tables: dict
    horizon: float


def sequence_teachers(
    vocab_size: int = 3, length: int = 3, *, horizon: float = 30.0, seed: int = 0, k: int = 5
) -> SequenceTeachers:
    """Accuracy against variance for an autoregressive policy over V^L sequences.

    pi_0 has N(0, 1.5^2) per-token logits; r_G ~ U[-1, 1] over sequences. Teachers: "accurate,
    flat" = 0.05 r_G (accuracy 1, Var0 scaled by 1/400) and "noisy" = r_G + N(0, 0.5^2) noise
    clipped to [-1, 1] (less accurate, more variance). lambda = 0; exact flows to ``horizon``.
    """
    policy = Autoregressive(vocab_size, length)
    horizon = check_float_scalar("horizon", horizon, positive=True)
    if horizon > 1e15:  # the flows' reach (tests/test_long_horizons.py)
        raise ValueError(f"`horizon` must be at most 1e15; got {horizon:g}.")
    k_pi, k_gt, k_noise = jax.random.split(jax.random.key(check_seed("seed", seed)), 3)
    logits = 1.5 * _random.normal(k_pi, (policy.num_prefixes, vocab_size))
    probs0 = np.exp(np.asarray(policy.log_probs(logits)))
    shape = (policy.num_sequences,)
    r_gt = _random.uniform(k_gt, shape, -1.0, 1.0)
    noise = _random.normal(k_noise, shape)
    models = {"accurate, flat": 0.05 * r_gt, "noisy": np.clip(r_gt + 0.5 * noise, -1.0, 1.0)}
    acc, var, flows, tables = {}, {}, {}, {}
    for name, r_rm in models.items():
        acc[name] = float(accuracy(r_rm, r_gt))
        var[name] = float(reward_variance(probs0, r_rm))
        flows[name] = gradient_flow(Problem(logits, r_rm, r_gt, policy=policy), horizon)
        columns = {"pi_0": probs0, "r_G": r_gt, "r_RM": r_rm}
        tables[name] = top_sequences(policy, flows[name].probs[-1], columns, k)
    return SequenceTeachers(policy, acc, var, flows, tables, horizon)
