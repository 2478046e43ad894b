"""The flow's coordinates and its vector field (Section 2 of arXiv 2503.15477).

The state is w = theta - base, with base the normalised parameters of the limit pi* (of pi_0 when
lambda = 0; 0 for log-linear policies), floored at ``LIMIT_DEPTH`` below log pi_0. The field is
the closed-form cotangent (1/X) pi (r_KL - E_pi r_KL) on the log-probability table, written with
u = log pi - log pi* so that it is exactly 0 at the limit, pulled back through the
parameterisation's VJP (tabular policies take a field with one exp and one expm1 per element).
Also the per-prompt slices of a problem (prompts of an expressive policy evolve independently)
and the evaluated gain E_{pi_theta(.|x)} r(x, .).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory_sim.metrics import _expected_reward
from theory_sim.objective import _ascent, _grad, _probabilities
from theory_sim.policies import Tabular
from theory_sim.policies._common import _relative_softmax_parts

# An absent output: a log-probability so far below every other that its probability is exactly
# 0 in float64 (exp underflows), under pi_0, along the whole flow (its field pi (A - E A) is
# exactly 0, so its logit never moves) and under pi*. Padding a tabular problem to a bucketed
# output count (:mod:`.buckets`) adds outputs at this logit; sums over outputs are unchanged
# by them, and the few computations that would count them (the step-size controller's RMS norm,
# the total-variation bound's per-output terms, the mean of a softmax block) leave out every
# output whose log-probability lies below ABSENT_BELOW, padded or not.
ABSENT_LOGIT = -1.0e300
ABSENT_BELOW = -1.0e299


def _present(log_table):
    """Which outputs of a log-probability table [..., Y] are present (not absent: see
    ABSENT_LOGIT)."""
    return log_table > ABSENT_BELOW


# The base follows log pi* down to log pi_0 - LIMIT_DEPTH: |w| stays near 1e4 at most, a
# round-off of 2e-12 in log-probabilities (50x below rtol); a flow would need log pi to fall
# by 1e4 to come near the floor (it falls like -log t on a flat tail).
LIMIT_DEPTH = 1.0e4


class _Frame(NamedTuple):
    """Where the flow's state w = theta - base is measured from (module docstring).

    base: parameters of pi_base; log_limit: log pi* [X, Y] (log pi_0's reference when
    lambda = 0); offset: log pi_base - log pi* [X, Y], 0 except where the limit is floored;
    shift: parameters of pi* minus base, 0 except where it is floored (for filling the limit).
    """

    base: jax.Array
    log_limit: jax.Array
    offset: jax.Array
    shift: jax.Array


def _coordinates(problem):
    """(frame, w0): the flow integrates w = theta - frame.base (module docstring).

    For an expressive policy, base holds normalised parameters of pi* (lambda > 0) or of pi_0
    (lambda = 0); for other policies base = 0. Where log pi*(y|x) < log pi_0(y|x) - LIMIT_DEPTH
    the base follows pi* only down to that floor, so |w| stays within LIMIT_DEPTH plus the
    distance the flow travels and the state keeps its precision; ``offset`` carries the rest.
    """
    policy = problem.policy
    zeros = jnp.zeros_like(problem.ref_log_probs)
    if not policy.expressive:
        base = jnp.zeros_like(problem.params0)
        return _Frame(base, problem.ref_log_probs, zeros, base), problem.params0
    lam = problem.kl_coef
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    log_star = jax.nn.log_softmax(problem.ref_log_probs + problem.reward_rm / safe_lam, axis=-1)
    floor = problem.ref_log_probs - LIMIT_DEPTH  # log pi_0
    below = (log_star < floor) & _present(problem.ref_log_probs)
    floored = jnp.any(below, axis=-1, keepdims=True) & (lam > 0)
    log_base = jnp.where(
        floored, jax.nn.log_softmax(jnp.maximum(log_star, floor), axis=-1), log_star
    )
    log_limit = jnp.where(lam > 0, log_star, problem.ref_log_probs)
    log_base = jnp.where(lam > 0, log_base, log_limit)
    base = policy.log_params(log_base)
    offset = jnp.where(floored, log_base - log_star, 0.0)
    shift = jnp.where(jnp.any(floored), policy.log_params(log_limit) - base, 0.0)
    return _Frame(base, log_limit, offset, shift), problem.params0 - base


def free_parameters(policy, frame):
    """The parameters of an autoregressive state that can move [X, P, V]: present tokens of
    prefixes with positive probability under the frame's limit and more than one present token
    (all of them, unpadded). Padded ones (:mod:`.buckets`) never move, and the step-size norm
    leaves them out, as it leaves out absent outputs of a tabular state."""
    reached = _present(policy.prefix_log_marginals(frame.log_limit))[..., None]
    tokens = _present(frame.base) & reached
    return tokens & (jnp.sum(tokens, axis=-1, keepdims=True) > 1)


def _limit_state(frame, w):
    """w at the limit of an expressive flow with lambda > 0: theta* + c per softmax block, where
    c is the block's mean of w over its present outputs, conserved because every block of the
    gradient sums to zero (for a floored frame, probabilities are pi*'s and c is the mean of w;
    an absent output's w never moves and stays 0)."""
    if w.shape != frame.log_limit.shape:  # blocks are not outputs (autoregressive prefixes)
        present = _present(frame.base)  # present tokens of each prefix (padded: see .buckets)
    else:
        present = _present(frame.log_limit)
    total = jnp.sum(jnp.where(present, w, 0.0), axis=-1, keepdims=True)
    mean = total / jnp.sum(present, axis=-1, keepdims=True).astype(w.dtype)
    return jnp.where(present, mean + frame.shift, w)


def _relative_to_limit(problem, frame, w):
    """u = log pi_{base + w} - log pi* [X, Y], accurate near the limit (expressive policies)."""
    return problem.policy.relative_log_probs(w, frame.base) + frame.offset


def _field(t, w, args):
    """grad phi at theta = base + w: the closed-form cotangent (1/X) pi * (r_KL - E_pi r_KL) on the
    log-probability table, pulled back through the parameterisation's VJP.

    With lambda > 0 and an expressive policy, r_KL - E_pi r_KL = -lambda (u - E_pi u) with
    u = log pi - log pi* computed relative to the limit, so the field is exactly 0 at pi* and
    accurate relative to the distance from it (module docstring). Tabular policies take
    :func:`_tabular_field`, the same field in fewer operations.
    """
    del t
    problem, frame = args
    if isinstance(problem.policy, Tabular):
        return _tabular_field(problem, frame, w)
    return _pulled_back_field(problem, frame, w)


def _pulled_back_field(problem, frame, w):
    """:func:`_field` for any policy: the cotangent on the log-probability table, pulled back."""
    policy = problem.policy
    log_probs, probs, pull_back, mode = _probabilities(policy, frame.base + w)
    advantage = problem.reward_rm - problem.kl_coef * (log_probs - problem.ref_log_probs)
    if policy.expressive:
        relative = -problem.kl_coef * _relative_to_limit(problem, frame, w)
        advantage = jnp.where(problem.kl_coef > 0, relative, advantage)
    at_mode = None if mode is None else mode[0]
    return pull_back(_ascent(probs, advantage, problem.num_prompts, at_mode))


def _tabular_field(problem, frame, w):
    """:func:`_field` for a tabular policy (base normalised, pull-back the identity): pi and
    u = log pi - log pi* both come from :func:`_relative_softmax_parts`, one exp and one expm1
    per element (a plain softmax costs one exp), and with lambda = 0 the advantage is r_RM.
    In a fused loop it takes 0.82-0.88x the time of :func:`_pulled_back_field` on the same table
    (bench/run.py field; tests/test_long_horizons.py checks that the two agree)."""
    relative, shifted, e, total = _relative_softmax_parts(w, frame.base)
    lam = problem.kl_coef
    advantage = jnp.where(lam > 0, -lam * (relative + frame.offset), problem.reward_rm)
    return _ascent(e / total, advantage, problem.num_prompts, shifted == 0)


_jit_coordinates = jax.jit(_coordinates)


def _theta_field(problem):
    """theta -> grad phi(theta) in closed form, for fixed-step (Euler) paths: one exp per
    element for tabular policies. Unlike the adaptive solver's field it is not written relative
    to pi*; near the limit it sits at a round-off floor, which a fixed step does not amplify."""
    return lambda theta: _grad(problem, theta)


_batch_coordinates = jax.jit(jax.vmap(_coordinates))


def _gain_value(problem, params, reward, prompt):
    """E_{pi_theta(.|x)} r(x, .) for the chosen prompt x."""
    probs = jnp.exp(problem.log_probs(params))
    return _expected_reward(probs[prompt], reward[prompt])


_jit_gain_value = jax.jit(_gain_value)


def _prompt_rows(table, prompt):
    """Row ``prompt`` of a table with a leading prompt axis, keeping the axis (prompt may be
    traced)."""
    return jax.lax.dynamic_slice_in_dim(table, prompt, 1, axis=0)


def _prompt_problem(problem, prompt):
    """The one-prompt problem of prompt x (expressive policies: prompts evolve independently).

    Its flow runs X times faster than prompt x's in the full problem: theta_x(t) = theta(t / X).
    """
    return jax.tree.map(lambda a: a if a.ndim == 0 else _prompt_rows(a, prompt), problem)
