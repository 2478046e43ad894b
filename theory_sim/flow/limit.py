"""The certified limit: bounds that hold for every later state of a flow with lambda > 0.

phi(theta; x) = lambda ln Z_x - lambda KL(pi || pi*) never decreases along the flow (Lemma 9 of
arXiv 2503.15477), so K = KL(pi_t || pi*) bounds KL(pi_s || pi*) for every s >= t and with it the
total variation TV(pi_s, pi*) (:func:`_tv_bound`). A solve stops once that bound is at most
``_CERTIFIED_TV`` = 1e-10 (every later save is the limit), and a target above
E_{pi*} r + (max r - min r) TV is proven unreachable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from theory_sim.flow.coordinates import _present, _relative_to_limit
from theory_sim.metrics import _expected_reward
from theory_sim.objective import _prompt_objective

# The convergence certificate: every later state within this total variation of pi*. Ten times
# below the 1e-9 that saved states past convergence are promised to match pi* by.
_CERTIFIED_TV = 1e-10


def _kl_to_limit(problem, frame, w):
    """KL(pi_theta(.|x) || pi*(.|x)) per prompt [X], accurate near the limit.

    sum_y pi*(y) f(u_y) with u = log pi - log pi* and f(u) = u e^u - e^u + 1 >= 0, taken as
    u expm1(u) - (expm1(u) - u) for |u| < 1 (no cancellation at the order u^2 of KL) and as
    pi u - pi + pi* elsewhere (no overflow).
    """
    u = _relative_to_limit(problem, frame, w)
    log_limit = frame.log_limit
    near = jnp.abs(u) < 1.0
    e = jnp.expm1(jnp.where(near, u, 0.0))
    star = jnp.exp(log_limit)
    probs = jnp.exp(log_limit + jnp.where(near, 0.0, u))
    terms = jnp.where(near, star * (u * e - (e - u)), probs * u - probs + star)
    return jnp.sum(terms, axis=-1)


def _tv_bound(kl, log_limit):
    """A bound on TV(pi, pi*) [X] for every pi with KL(pi || pi*) <= kl [X]; log_limit = log pi*.

    min(sqrt(K / 2), (1/2) sum_y delta_y) with delta_y = K + sqrt(K^2 + 2 K m_y) and
    m_y = min(pi*(y), 1 - pi*(y)). Per output y (data processing on the partition {y, not y}) the
    binary divergence kl(pi(y) || pi*(y)) is at most K, and kl(p || q) >= (p - q)^2 / (2 max(p, q))
    (integrate kl'' = 1 / (x (1 - x)) >= 1 / x twice from q), likewise with 1 - p and 1 - q; so
    |pi(y) - pi*(y)| = d satisfies d^2 <= 2 K (m_y + d), that is d <= delta_y. Where pi* puts
    1e-11 on some outputs the per-output bound is 1e-11 at K = 1e-13, where Pinsker's needs
    K = 2e-20: the certificate then fires decades earlier in t.
    """
    k = jnp.maximum(kl, 0.0)
    m = jnp.minimum(jnp.exp(log_limit), -jnp.expm1(log_limit))
    kk = k[..., None]
    terms = kk + jnp.sqrt(kk * kk + 2.0 * kk * m)
    # an absent output (see ABSENT_LOGIT) has pi = pi* = 0 exactly at every time: delta_y = 0
    per_output = 0.5 * jnp.sum(jnp.where(_present(log_limit), terms, 0.0), axis=-1)
    return jnp.minimum(jnp.minimum(jnp.sqrt(k / 2.0), per_output), 1.0)


def _certified(problem, frame, w):
    """True when every later state is within _CERTIFIED_TV of pi* in total variation (so in
    each probability): expressive policies, lambda > 0, by :func:`_tv_bound` of KL(pi_t || pi*)
    (module docstring)."""
    kl = _kl_to_limit(problem, frame, w)
    tv = _tv_bound(kl, frame.log_limit)
    return (problem.kl_coef > 0) & jnp.all(tv <= _CERTIFIED_TV)


def _unreachable(problem, frame, w, reward, prompt, target):
    """True when no later policy on the flow can reach ``target``.

    Always when target > max_y r(x, y). With lambda > 0, for any policy
    phi = mean_x [lambda ln Z_x - lambda KL(pi(.|x) || pi*_x)] and phi never decreases along the
    flow, so every later policy has KL_x(s) <= X (phi* - phi(t)) / lambda for each prompt x; an
    expressive policy also has KL_x(s) <= KL_x(t) directly (see :func:`_certified`), computed
    without cancellation. With TV from :func:`_tv_bound`,
    E_{pi_s} r <= E_{pi*} r + (max r - min r) TV.
    """
    r = reward[prompt]
    lam = problem.kl_coef
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    log_star = jax.nn.log_softmax(problem.ref_log_probs + problem.reward_rm / safe_lam, axis=-1)
    if problem.policy.expressive:
        kl = _kl_to_limit(problem, frame, w)[prompt]
    else:
        log_probs = problem.log_probs(frame.base + w)
        phi = _prompt_objective(log_probs, problem.ref_log_probs, problem.reward_rm, lam)
        phi_star = safe_lam * jax.nn.logsumexp(
            problem.ref_log_probs + problem.reward_rm / safe_lam, -1
        )
        kl = problem.num_prompts * jnp.maximum(jnp.mean(phi_star - phi), 0.0) / safe_lam
    tv = _tv_bound(kl, log_star)[prompt]
    ceiling = _expected_reward(jnp.exp(log_star[prompt]), r) + (jnp.max(r) - jnp.min(r)) * tv
    return (target > jnp.max(r)) | ((lam > 0) & (ceiling < target))
