"""Group estimators' expected update, exactly, and the flows it defines.

A group estimator draws G outputs y_1..y_G i.i.d. from pi(.|x) and updates
(1 / (G X)) sum_i A_i grad log pi(y_i|x), with an advantage A_i computed from the group's rewards
r_i = r_KL(x, y_i) (:func:`theory_sim.training.estimate_gradient` samples it). Its expectation
over groups is exact here. The samples are exchangeable, so

    E[update] = (1/X) sum_y pi(y) a(y) grad log pi(y),   a(y) = E[A_1 | y_1 = y],

which for a tabular policy is pi * (a - E_pi a) / X: the exact policy gradient of the effective
reward a, which depends on the policy. Per method:

* "reinforce" (A_i = r_i - E_pi r) and "rloo" (A_i = r_i - mean_{j != i} r_j): a = r - E_pi r,
  the exact gradient;
* "drgrpo" (Dr. GRPO, arXiv 2503.20783: A_i = r_i - mean_j r_j, no division by the group's
  standard deviation): a = ((G - 1) / G) (r - E_pi r), the exact gradient times (G - 1) / G;
* "grpo" (arXiv 2402.03300: A_i = (r_i - mean_j r_j) / (std_j r_j + eps), population standard
  deviation, and A = 0 for a group whose rewards all tie): a(y) is a sum over the G - 1 other
  samples' multisets, C(Y + G - 2, G - 1) count vectors c with multinomial probabilities
  (G - 1)! prod_y pi(y)^c_y / c_y!, each giving the group's mean and standard deviation in closed
  form. For 0/1 rewards this is the sum over the number of correct others k ~ Binomial(G - 1, p):
  a group with k correct of G has standard deviation sqrt(k (G - k)) / G, advantage
  sqrt((G - k) / k) for a correct sample and -sqrt(k / (G - k)) for an incorrect one, and no
  signal with probability p^G + (1 - p)^G.

For 0/1 rewards GRPO's expected update is therefore w(p) times the exact gradient, with
w(p) = a(correct) - a(incorrect) > 0: its flow is the exact flow with time reparametrised. As
p -> 0, w(p) -> sqrt(G - 1) (eps = 0): a rarely sampled good output stays as flat for GRPO as for
the exact flow, while a reward scaled by c leaves GRPO unchanged (eps = 0) where the exact flow
slows by 1/c.

:func:`expected_flow` and :func:`expected_time_to_gain` solve d theta / dt = E[update] with
diffrax's Tsit5 and PID controller, as :func:`theory_sim.gradient_flow` does, and find t_gamma by
event detection and Newton's method on the dense solution, as :func:`theory_sim.time_to_gain`
does; they work in theta directly, without the limit coordinates and certificates of
:mod:`theory_sim.flow` (those are built for the exact flow's limit pi*, which a biased estimator
does not share), so horizons are limited to where theta stays moderate (the solve reports when
it stops early).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.scipy.special import gammaln

from theory_sim._device import to_device
from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_index,
    check_int,
)
from theory_sim.estimators import _check_estimator, _check_verifier
from theory_sim.metrics import _expected_reward
from theory_sim.objective import _jit_grad
from theory_sim.problem import Problem, check_problem

__all__ = [
    "GROUP_METHODS",
    "GroupFlow",
    "expected_flow",
    "expected_time_to_gain",
    "expected_update",
    "group_weight",
    "no_signal_probability",
    "success_iterates",
]

GROUP_METHODS = ("reinforce", "rloo", "drgrpo", "grpo")
# compositions enumerated per prompt at most (GRPO's exact expectation); past it, refused
MAX_COMPOSITIONS = 2_000_000


@functools.lru_cache(maxsize=64)
def _compositions(total: int, parts: int) -> np.ndarray:
    """Every count vector of ``parts`` non-negative integers summing to ``total``, [M, parts]."""
    if parts == 1:
        return np.array([[total]], dtype=np.int64)
    rows = [
        np.concatenate([np.full((len(rest), 1), first), rest], axis=1)
        for first in range(total, -1, -1)
        for rest in [_compositions(total - first, parts - 1)]
    ]
    return np.concatenate(rows, axis=0)


def _grpo_weights(r, probs, group_size: int, eps: float, counts):
    """a(y) = E[A_1 | y_1 = y] for GRPO on one prompt (see the module docstring); ``counts``
    [M, Y] enumerates the other G - 1 samples."""
    c = counts.astype(r.dtype)
    log_p = jnp.where(probs > 0, jnp.log(jnp.where(probs > 0, probs, 1.0)), -jnp.inf)
    terms = jnp.where(c > 0, c * log_p, 0.0)
    log_w = gammaln(float(group_size)) - jnp.sum(gammaln(c + 1.0), axis=1) + jnp.sum(terms, 1)
    weight = jnp.exp(log_w)  # [M]
    # deviations of the others from r(y): d_j = r_j - r(y), for each first sample y
    s1 = c @ r  # sum of others' rewards
    s2 = c @ (r * r)
    others = group_size - 1.0
    sum_d = s1[:, None] - others * r[None, :]  # [M, Y]
    sum_d2 = s2[:, None] - 2.0 * r[None, :] * s1[:, None] + others * (r * r)[None, :]
    mean_d = sum_d / group_size  # m - r(y)
    var = jnp.maximum(sum_d2 / group_size - mean_d * mean_d, 0.0)
    differ = c @ (r[:, None] != r[None, :]).astype(r.dtype)  # others whose reward differs, [M, Y]
    tied = differ == 0
    adv = jnp.where(tied, 0.0, -mean_d / (jnp.sqrt(jnp.where(tied, 1.0, var)) + eps))
    return weight @ adv


def _weights(r, probs, method: str, group_size: int, eps: float, counts):
    """a(y) per output of one prompt [Y]."""
    centred = r - _expected_reward(probs, r)
    if method in ("reinforce", "rloo"):
        return centred
    if method == "drgrpo":
        return (group_size - 1.0) / group_size * centred
    return _grpo_weights(r, probs, group_size, eps, counts)


def _update(problem, params, method, group_size, eps, counts):
    log_probs, pullback = jax.vjp(problem.log_probs, params)
    probs = jnp.exp(log_probs)
    r_kl = jax.lax.stop_gradient(
        problem.reward_rm - problem.kl_coef * (log_probs - problem.ref_log_probs)
    )
    a = jax.vmap(lambda r, p: _weights(r, p, method, group_size, eps, counts))(r_kl, probs)
    return pullback(probs * a / problem.num_prompts)[0]


@functools.partial(jax.jit, static_argnames=("group_size",))
def _jit_noisy_grpo(problem, params, group_size, eps, fpr, fnr, counts):
    """GRPO's expected update when each sample's 0/1 label reaches the estimator through a
    verifier with rates (fpr, fnr): the verdict v of an output y is 1 with probability q(y)
    (1 - fnr if correct, fpr if not), so the rewards of a group are i.i.d. verdicts with
    P(1) = sum_y pi(y) q(y), and a(y) = q(y) a(1) + (1 - q(y)) a(0), where a(v) is GRPO's
    expected advantage of a sample whose verdict is v (the enumeration over the other G - 1
    verdicts, ``counts`` [G, 2])."""
    log_probs, pullback = jax.vjp(problem.log_probs, params)
    probs = jnp.exp(log_probs)

    def row(labels, p):
        q = jnp.where(labels > 0.5, 1.0 - fnr, fpr)
        accept = jnp.sum(p * q)
        a1, a0 = _grpo_weights(jnp.array([1.0, 0.0]), jnp.stack([accept, 1.0 - accept]),
                               group_size, eps, counts)  # fmt: skip
        return q * a1 + (1.0 - q) * a0

    a = jax.vmap(row)(problem.reward_rm, probs)
    return pullback(probs * a / problem.num_prompts)[0]


def _check_group(problem, method, group_size, eps, outputs: bool = True):
    """(method, G, eps, counts): counts [C(Y + G - 2, G - 1), Y] enumerates the other G - 1
    samples over the Y outputs for GRPO (refused past MAX_COMPOSITIONS); None for the other
    methods, or without ``outputs`` (the noisy verifier enumerates verdicts instead)."""
    group_size = _check_estimator(method, group_size, GROUP_METHODS, "group_size")
    eps = check_float_scalar("eps", eps, nonnegative=True)
    if method != "grpo" or not outputs:
        return method, group_size, eps, None
    size = math.comb(problem.num_outputs + group_size - 2, group_size - 1)
    if size > MAX_COMPOSITIONS:
        raise ValueError(
            f"GRPO's exact expectation enumerates C(Y + G - 2, G - 1) = {size:,} multisets "
            f"of the other samples for Y = {problem.num_outputs}, G = {group_size}; the "
            f"limit is {MAX_COMPOSITIONS:,}. Use fewer outputs or a smaller group."
        )
    return method, group_size, eps, to_device(_compositions(group_size - 1, problem.num_outputs))


@functools.partial(jax.jit, static_argnames=("method", "group_size"))
def _jit_update(problem, params, method, group_size, eps, counts):
    return _update(problem, params, method, group_size, eps, counts)


def expected_update(
    problem: Problem,
    params=None,
    *,
    method: str = "grpo",
    group_size: int = 8,
    eps: float = 0.0,
    verifier: tuple[float, float] | None = None,
) -> jax.Array:
    """The exact expectation over groups of G samples of a group estimator's update.

    See the module docstring for each method's advantage and the formula. The sampled estimator
    with the same method (:func:`theory_sim.training.estimate_gradient` with ``num_samples`` =
    G; its GRPO has eps = 0) averages to this.

    Args:
        problem: the :class:`~theory_sim.Problem` (any policy; r_KL as in the exact objective).
        params: the parameters (default the initial ones).
        method: "reinforce", "rloo", "drgrpo" or "grpo".
        group_size: G (>= 2 except for REINFORCE).
        eps: GRPO's epsilon in (r - mean) / (std + eps), >= 0.
        verifier: (FPR, FNR): ``reward_rm`` holds 0/1 labels (lambda = 0) and each sample is
            rewarded by a noisy verifier's verdict, as ``estimate_gradient(verifier=...)``
            samples it. REINFORCE, RLOO and Dr. GRPO are linear in the rewards, so their
            expectation is J = 1 - FPR - FNR times the clean one; GRPO's is computed exactly
            (the verdicts of a group are i.i.d. 0/1) and is not.

    Returns:
        The expected update, shaped like the parameters.
    """
    problem = check_problem(problem)
    params = problem.params0 if params is None else problem.check_params("params", params)
    noisy = verifier is not None
    method, group_size, eps, counts = _check_group(problem, method, group_size, eps, not noisy)
    j = 1.0
    if noisy:
        fpr, fnr = _check_verifier(problem, verifier)
        if float(problem.kl_coef) != 0.0:
            raise ValueError("`verifier` needs lambda = 0: a verdict carries no KL term.")
        j = 1.0 - fpr - fnr
        if method == "grpo":  # the verdicts of a group are i.i.d. 0/1: enumerate them
            verdicts = jnp.asarray(_compositions(group_size - 1, 2))
            out = _jit_noisy_grpo(problem, params, group_size, eps, fpr, fnr, verdicts)
            return problem.user_params(out)
    if method != "grpo":  # linear in the rewards: a multiple of the exact gradient
        factor = j * ((group_size - 1.0) / group_size if method == "drgrpo" else 1.0)
        return factor * problem.user_params(_jit_grad(problem, params))
    return problem.user_params(_jit_update(problem, params, method, group_size, eps, counts))


def group_weight(p: float, group_size: int, eps: float = 0.0) -> float:
    """w(p) = a(correct) - a(incorrect) for GRPO with 0/1 rewards and success probability p:
    its expected update is w(p) times the exact gradient (module docstring), by the sum over the
    number k ~ Binomial(G - 1, p) of correct others. w(p) -> sqrt(G - 1) as p -> 0 (eps = 0)."""
    p = check_float_scalar("p", p, nonnegative=True)
    if p > 1:
        raise ValueError(f"`p` must be a probability in [0, 1]; got {p}.")
    g = check_int("group_size", group_size, 2)
    eps = check_float_scalar("eps", eps, nonnegative=True)
    k = np.arange(g)  # correct others
    pmf = np.array([math.comb(g - 1, j) * p**j * (1 - p) ** (g - 1 - j) for j in k])

    def adv(correct_total, is_correct):
        tied = (correct_total == 0) | (correct_total == g)
        std = np.sqrt(correct_total * (g - correct_total)) / g
        mean = correct_total / g
        value = (float(is_correct) - mean) / (np.where(tied, 1.0, std) + eps)
        return np.where(tied, 0.0, value)

    return float(pmf @ adv(k + 1, True) - pmf @ adv(k, False))


def no_signal_probability(p: float, group_size: int) -> float:
    """P(a group of G 0/1 rewards all tie) = p^G + (1 - p)^G: GRPO's update is then zero."""
    p = check_float_scalar("p", p, nonnegative=True)
    if p > 1:
        raise ValueError(f"`p` must be a probability in [0, 1]; got {p}.")
    g = check_int("group_size", group_size, 1)
    return p**g + (1 - p) ** g


@dataclasses.dataclass(frozen=True)
class GroupFlow:
    """The flow of an expected group update, saved at ``ts``.

    Attributes:
        ts: [T] times; params: [T, ...]; probs: [T, X, Y]; expected_rm, expected_gt: [T, X].
        method, group_size, eps: the estimator; num_steps: solver steps.
    """

    ts: np.ndarray
    params: np.ndarray
    probs: np.ndarray
    expected_rm: np.ndarray
    expected_gt: np.ndarray
    method: str
    group_size: int
    eps: float
    num_steps: int


_RTOL, _ATOL = 1e-10, 1e-10


def _term(method, group_size):
    def field(t, theta, args):
        problem, eps, counts = args
        return _update(problem, theta, method, group_size, eps, counts)

    return diffrax.ODETerm(field)


@functools.partial(jax.jit, static_argnames=("method", "group_size", "max_steps"))
def _solve_path(problem, ts, method, group_size, eps, counts, max_steps):
    sol = diffrax.diffeqsolve(
        _term(method, group_size), diffrax.Tsit5(), 0.0, ts[-1], None, problem.params0,
        args=(problem, eps, counts), saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=_RTOL, atol=_ATOL),
        max_steps=max_steps, throw=False,
    )  # fmt: skip
    return sol.ys, sol.stats["num_steps"], sol.result == diffrax.RESULTS.successful


def expected_flow(
    problem: Problem,
    t_max: float,
    save_ts=None,
    *,
    method: str = "grpo",
    group_size: int = 8,
    eps: float = 0.0,
    max_steps: int = 2**16,
) -> GroupFlow:
    """Solve d theta / dt = :func:`expected_update` (theta) on [0, t_max].

    Args:
        problem, method, group_size, eps: as in :func:`expected_update`.
        t_max: the horizon, > 0.
        save_ts: non-decreasing times in [0, t_max] (default 0 and 128 log-spaced times).
        max_steps: the solver's step cap; reaching it raises a RuntimeError.
    """
    problem = check_problem(problem)
    method, group_size, eps, counts = _check_group(problem, method, group_size, eps)
    t_max = check_float_scalar("t_max", t_max, positive=True)
    if save_ts is None:
        save_ts = np.concatenate([[0.0], np.geomspace(t_max * 1e-6, t_max, 128)])
    ts = as_float_array("save_ts", save_ts, ndim=(1,))
    if len(ts) == 0 or np.any(np.diff(ts) < 0) or ts[0] < 0 or ts[-1] > t_max:
        raise ValueError("`save_ts` must be non-decreasing times in [0, t_max].")
    ys, steps, ok = _solve_path(problem, ts, method, group_size, eps, counts,
                                check_int("max_steps", max_steps))  # fmt: skip
    if not bool(ok):
        raise RuntimeError(
            f"the {method} flow's solve stopped after {int(steps)} steps before t = {t_max:g}: "
            "raise max_steps or shorten the horizon."
        )
    log_probs = np.asarray(jax.vmap(problem.log_probs)(ys))
    probs = np.exp(log_probs)
    rm, gt = np.asarray(problem.reward_rm), np.asarray(problem.reward_gt)
    return GroupFlow(
        ts=ts,
        params=np.asarray(ys),
        probs=probs,
        expected_rm=np.sum(probs * rm, axis=-1),
        expected_gt=np.sum(probs * gt, axis=-1),
        method=method,
        group_size=group_size,
        eps=eps,
        num_steps=int(steps),
    )


@functools.partial(jax.jit, static_argnames=("method", "group_size", "max_steps"))
def _solve_gain(problem, reward, prompt, gamma, t_max, method, group_size, eps, counts,
                max_steps):  # fmt: skip
    def gain(theta):
        probs = jnp.exp(problem.log_probs(theta))
        return _expected_reward(probs[prompt], reward[prompt])

    target = gain(problem.params0) + gamma
    event = diffrax.Event(
        lambda t, y, args, **k: gain(y) - target,
        optx.Newton(rtol=1e-14, atol=1e-14),
        True,
    )
    sol = diffrax.diffeqsolve(
        _term(method, group_size), diffrax.Tsit5(), 0.0, t_max, None, problem.params0,
        args=(problem, eps, counts), saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=_RTOL, atol=_ATOL),
        max_steps=max_steps, throw=False, event=event,
    )  # fmt: skip
    hit = sol.event_mask if not isinstance(sol.event_mask, tuple) else sol.event_mask[0]
    return sol.ts[-1], hit, sol.stats["num_steps"], sol.result


def expected_time_to_gain(
    problem: Problem,
    gamma: float,
    *,
    method: str = "grpo",
    group_size: int = 8,
    eps: float = 0.0,
    reward=None,
    prompt: int = 0,
    t_max: float = 1e12,
    max_steps: int = 2**16,
) -> float:
    """t_gamma of the expected group update's flow: the first time E_{pi_t} r(x, .) reaches
    E_{pi_0} r(x, .) + gamma (``reward`` default r_G), or inf if not by ``t_max``.

    The crossing is an up-crossing at a step end located by Newton's method on the dense
    solution (as :func:`theory_sim.time_to_gain`; a target reached and left inside one step is
    not seen here). A solve that reaches ``max_steps`` first raises a RuntimeError.
    """
    problem = check_problem(problem)
    method, group_size, eps, counts = _check_group(problem, method, group_size, eps)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    t_max = check_float_scalar("t_max", t_max, positive=True)
    prompt = check_index("prompt", prompt, problem.num_prompts, "prompts")
    table = problem.reward_gt if reward is None else problem.check_reward("reward", reward)
    max_steps = check_int("max_steps", max_steps)
    time, hit, steps, result = _solve_gain(
        problem, table, prompt, gamma, t_max, method, group_size, eps, counts, max_steps
    )
    if bool(hit):
        return float(time)
    if result == diffrax.RESULTS.successful:
        return math.inf
    raise RuntimeError(
        f"the {method} flow's time-to-gain solve stopped after {int(steps)} steps at t = "
        f"{float(time):.4g} before reaching gamma = {gamma:g} or t_max = {t_max:g}: raise "
        "max_steps."
    )


def _whitened_gap(p: float, eps: float) -> float:
    """1 / sqrt(p (1 - p) + eps): the gap between the whitened rewards of a correct and an
    incorrect output when the success probability is p."""
    return 1.0 / math.sqrt(p * (1.0 - p) + eps)


def success_iterates(p_ref: float, beta: float, steps: int = 100, eps: float = 1e-8) -> np.ndarray:
    """The success probabilities p_0 = p_ref, p_1, ... of iterated GRPO with a KL term to pi_ref
    (the reference-KL variant of arXiv 2503.06639, derived here from its setup): step n
    maximises E_pi A_{n-1} - beta KL(pi || pi_ref), where A_{n-1} is the 0/1 reward whitened
    by the previous policy's success probability, (r - p) / sqrt(p (1 - p) + eps). The maximiser
    is pi_ref exp(A_{n-1} / beta) / Z, so

        p_n = h(p_{n-1}),
        h(p) = p_ref / (p_ref + (1 - p_ref) exp(-1 / (beta sqrt(p (1 - p) + eps)))).

    h(p) > p_ref for every p, so every iterate and the fixed point p* exceed p_ref: success is
    amplified. (The paper's own statement of the recurrence was not available here to compare
    symbol by symbol; :func:`theory_sim.theorems.check_grpo_success` checks this form against
    the exact KL-regularised maximiser of :func:`theory_sim.kl_optimal_policy`.)
    """
    p_ref = check_float_scalar("p_ref", p_ref, positive=True)
    if p_ref >= 1:
        raise ValueError(f"`p_ref` must be a probability in (0, 1); got {p_ref}.")
    beta = check_float_scalar("beta", beta, positive=True)
    eps = check_float_scalar("eps", eps, positive=True)
    steps = check_int("steps", steps, 1)
    out = [p_ref]
    for _ in range(steps):
        odds = (1.0 - p_ref) / p_ref * math.exp(-_whitened_gap(out[-1], eps) / beta)
        out.append(1.0 / (1.0 + odds))
    return np.array(out)
