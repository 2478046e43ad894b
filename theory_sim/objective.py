"""The KL-regularised RLHF objective phi and its exact gradient (Section 2 of arXiv 2503.15477).

phi(theta) = mean_x E_{y~pi_theta(.|x)} r_KL(x, y; theta),
r_KL(x, y; theta) = r_RM(x, y) - lambda ln(pi_theta(y|x) / pi_0(y|x)).

phi is maximised throughout theory_sim. The gradient comes from autodiff through the
parameterisation's log-probability table, so every parameterisation gets it for free; the tabular
closed form is kept as an independent oracle for tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from theory_sim.metrics import _centered
from theory_sim.policies import Tabular
from theory_sim.problem import Problem, check_problem

__all__ = [
    "kl_optimal_policy",
    "objective",
    "policy_gradient",
    "prompt_objective",
    "tabular_gradient",
]


def _prompt_objective(log_probs, ref_log_probs, reward, kl_coef) -> jax.Array:
    """phi(theta; x) = E_pi r_KL(x, .) per prompt, [X, Y] tables -> [X].

    Taken relative to r_KL at the most probable output: exact because probabilities sum to 1,
    and it keeps the gradient pi * (r_KL - E_pi r_KL) free of cancellation near a point mass.
    """
    probs = jnp.exp(log_probs)
    r_kl = reward - kl_coef * (log_probs - ref_log_probs)
    _, mean_c, r_mode = _centered(probs, r_kl)
    return r_mode + mean_c


def _objective(problem: Problem, params: jax.Array) -> jax.Array:
    log_probs = problem.log_probs(params)
    per_prompt = _prompt_objective(
        log_probs, problem.ref_log_probs, problem.reward_rm, problem.kl_coef
    )
    return jnp.mean(per_prompt)


def _exp_shifted(params):
    """(z, e, sum e) with z = theta - max theta per row and e = exp z [X, Y] ([X, 1] for the sum):
    one exp per element, no overflow, and z = 0 exactly at the mode(s)."""
    shifted = params - jnp.max(params, axis=-1, keepdims=True)
    e = jnp.exp(shifted)
    return shifted, e, jnp.sum(e, axis=-1, keepdims=True)


def _probabilities(policy, params):
    """(log pi, pi, pull_back, mode) at ``params``: pull_back maps a cotangent on the [X, Y]
    table of log-probabilities to one on the parameters (the parameterisation's VJP); mode is
    (a mask of the most probable outputs, minus their log pi [X, 1]), or None (then
    :func:`_ascent` finds them).

    For :class:`~theory_sim.Tabular` policies both tables come from one exp per element (logits
    shifted by their maximum give pi and log pi together, and the mode is where the shift is 0),
    and the pull-back is the identity: the VJP of log-softmax is g - pi sum_y g, and every
    cotangent used here sums to zero per prompt.
    """
    if isinstance(policy, Tabular):
        shifted, e, total = _exp_shifted(params)
        log_norm = jnp.log(total)
        return shifted - log_norm, e / total, lambda g: g, (shifted == 0, log_norm)
    log_probs, vjp = jax.vjp(policy.log_probs, params)
    return log_probs, jnp.exp(log_probs), lambda g: vjp(g)[0], None


def _ascent(probs, advantage, num_prompts, at_mode=None):
    """The cotangent of phi on log pi: (1/X) pi * (A - E_pi A) per prompt, for the advantage
    A = r_KL (or anything differing from it by a constant per prompt). With ``at_mode`` (a mask
    of the most probable outputs) A is centred first at its value there (the largest of them
    when tied: one max-reduction, cheaper than their mean's sum and count): any constant is
    exact, and that one removes the cancellation near a point mass."""
    if at_mode is None:
        centered, mean_c, _ = _centered(probs, advantage)
    else:
        centered = advantage - _at_mode(at_mode, advantage)
        mean_c = jnp.sum(probs * centered, axis=-1)
    return probs * (centered - mean_c[..., None]) / num_prompts


def _at_mode(at_mode, values):
    """The largest of ``values`` [X, Y] over the outputs marked by ``at_mode`` (at least one per
    prompt): [X, 1]."""
    return jnp.max(jnp.where(at_mode, values, -jnp.inf), axis=-1, keepdims=True)


def _grad(problem: Problem, params: jax.Array) -> jax.Array:
    """grad_theta phi in closed form (theory.md section 2): the cotangent (1/X) pi (r_KL - E_pi
    r_KL) on the log-probability table, pulled back through the parameterisation. It is the
    derivative of phi(log pi) = mean_x sum_y pi (r - lambda (log pi - log pi_0)), which is
    pi (r_KL - lambda), up to a multiple of pi per prompt, which every pull-back annihilates
    (sum_y pi d log pi = 0). Autodiff of :func:`_objective` is the test oracle."""
    lam, fixed = problem.kl_coef, problem.reward_rm + problem.kl_coef * problem.ref_log_probs
    if not isinstance(problem.policy, Tabular):
        log_probs, probs, pull_back, _ = _probabilities(problem.policy, params)
        return pull_back(_ascent(probs, fixed - lam * log_probs, problem.num_prompts))
    # Tabular (pull-back the identity), in two passes over the table: with z = theta - max theta,
    # e = exp z and A = r_KL - (lambda log sum e, a constant per prompt) = fixed - lambda z,
    # centred at the mode (where z = 0, so A = fixed there) against cancellation near a point
    # mass: grad = e (C - sum(e C) / sum e) / (X sum e), C = A - A_mode. No log and no log pi
    # table: as fast as a hand-written closed-form loop (bench/run.py batched).
    shifted, e, total = _exp_shifted(params)
    centered = fixed - lam * shifted - _at_mode(shifted == 0, fixed)
    mean_c = jnp.sum(e * centered, axis=-1, keepdims=True) / total
    return e * (centered - mean_c) / (total * problem.num_prompts)


_autodiff_grad = jax.grad(_objective, argnums=1)
_jit_objective = jax.jit(_objective)
_jit_grad = jax.jit(_grad)


def objective(problem: Problem, logits) -> float:
    """The objective phi (Section 2 of arXiv 2503.15477).

    phi(theta) = mean_x [E_pi r_RM(x, .) - lambda KL(pi(.|x) || pi_0(.|x))]

    Args:
        problem: the :class:`~theory_sim.Problem`.
        logits: parameters shaped like ``problem``'s ``init_logits`` ([X, Y] or [Y] if tabular).

    Returns:
        The scalar phi(theta).
    """
    problem = check_problem(problem)
    return float(_jit_objective(problem, problem.check_params("logits", logits)))


def prompt_objective(problem: Problem, logits) -> jax.Array:
    """phi(theta; x) = E_{pi(.|x)} r_KL(x, .) for every prompt: [X] (a scalar for one prompt)."""
    problem = check_problem(problem)
    params = problem.check_params("logits", logits)
    values = _jit_prompt_objective(problem, params)
    return values[0] if problem.single_prompt else values


@jax.jit
def _jit_prompt_objective(problem: Problem, params):
    return _prompt_objective(
        problem.log_probs(params), problem.ref_log_probs, problem.reward_rm, problem.kl_coef
    )


def policy_gradient(problem: Problem, logits) -> jax.Array:
    """The exact gradient grad_theta phi(theta), by autodiff, shaped like ``logits``.

    Compiled once per (problem shape, parameterisation): repeated calls on instances of the same
    size reuse the compiled code.

    Args:
        problem: the :class:`~theory_sim.Problem`.
        logits: parameters shaped like ``problem``'s ``init_logits``.

    Returns:
        Array shaped like ``logits``.

    Examples:
        >>> import numpy as np
        >>> from theory_sim import Problem, policy_gradient
        >>> p = Problem(np.zeros(2), np.array([1.0, -1.0]))
        >>> policy_gradient(p, np.zeros(2)).tolist()   # pi * (r - E_pi r)
        [0.5, -0.5]
    """
    problem = check_problem(problem)
    params = problem.check_params("logits", logits)
    return problem.user_params(_jit_grad(problem, params))


def tabular_gradient(problem: Problem, logits) -> jax.Array:
    """Closed-form tabular gradient, an oracle independent of autodiff (theory.md section 2).

    grad_{theta[x]} phi = (1/X) pi(.|x) * (r_KL(x, .) - E_{pi(.|x)} r_KL(x, .)).

    Only for the :class:`~theory_sim.Tabular` parameterisation.
    """
    problem = check_problem(problem)
    if not isinstance(problem.policy, Tabular):
        raise ValueError(
            f"`problem` must use the Tabular policy for the closed form; got {problem.policy!r}."
        )
    params = problem.check_params("logits", logits)
    return problem.user_params(_jit_tabular_gradient(problem, params))


@jax.jit
def _jit_tabular_gradient(problem: Problem, params):
    log_probs = jax.nn.log_softmax(params, axis=-1)
    probs = jnp.exp(log_probs)
    r_kl = problem.reward_rm - problem.kl_coef * (log_probs - problem.ref_log_probs)
    mean = jnp.sum(probs * r_kl, axis=-1, keepdims=True)
    return probs * (r_kl - mean) / problem.num_prompts


@jax.jit
def _kl_optimal(ref_log_probs, reward, lam):
    return jax.nn.softmax(ref_log_probs + reward / lam, axis=-1)


def kl_optimal_policy(problem: Problem) -> jax.Array:
    """The maximiser of phi for lambda > 0 over all policies (theory.md section 2).

    pi*(y|x) = pi_0(y|x) exp(r_RM(x, y) / lambda) / Z(x),   and phi* = mean_x lambda ln Z(x).

    For an expressive parameterisation (tabular) it is the limit of the gradient flow.

    Returns:
        [X, Y] probabilities ([Y] for a one-prompt problem).
    """
    problem = check_problem(problem)
    lam = float(problem.kl_coef)
    if lam <= 0:
        raise ValueError("`problem.kl_coef` must be > 0 for pi* to exist; got 0.")
    return problem.external(_kl_optimal(problem.ref_log_probs, problem.reward_rm, lam))
