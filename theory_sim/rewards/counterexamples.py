"""The paper's counterexamples: the reward models of Theorems 5 and 6 of arXiv 2503.15477.

Theorem 5: a perfectly accurate reward model that teaches slowly (values in (0, 1/T), variance at
most 1/T^2) beside an inaccurate one that teaches fast. Theorem 6: two reward models whose ranking
as teachers flips with the initial policy. And the instance of arXiv 2604.25872's controlled
experiment, where a reward model's error makes it a better teacher than the ground truth.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_index,
    check_int,
    check_probabilities,
    check_reward_range,
)
from theory_sim.rewards.rankings import attainable_accuracies, ranking_with_accuracy


def _one_prompt_inputs(init_probs, reward_gt, gamma, claim):
    probs = check_probabilities("init_probs", init_probs, positive=True)
    if probs.ndim != 1:
        raise ValueError(f"`init_probs` must be 1-D (one prompt); got shape {probs.shape}.")
    r_gt = as_float_array("reward_gt", reward_gt)
    if r_gt.shape != probs.shape:
        raise ValueError(
            f"`reward_gt` must have shape {probs.shape} like `init_probs`; got {r_gt.shape}."
        )
    check_reward_range("reward_gt", r_gt, claim)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    return probs, r_gt, gamma


# The counterexamples' slow time grows like T and their variances like T^-2: beyond 1e12 the
# times leave every solver's reach (time_to_gain's default t_max is 1e12) and 1/T^2 nears
# float64's underflow in the bounds.
MAX_HORIZON = 1e12


def _check_horizon(value, name: str = "T") -> float:
    horizon = check_float_scalar(name, value)
    if not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"`{name}` must be in [1, {MAX_HORIZON:g}]; got {horizon}.")
    return horizon


def _rank_values(order_key: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values in (low, high), strictly increasing in ``order_key``, tied exactly where it ties."""
    levels, inverse = np.unique(order_key, return_inverse=True)
    if len(levels) == 1:
        return np.full(order_key.shape, 0.5 * (low + high))
    # levels at interior points low + (k + 1) (high - low) / (m + 1): strictly inside (low, high)
    grid = low + (high - low) * (np.arange(1, len(levels) + 1) / (len(levels) + 1))
    return grid[inverse]


def _rho(v0: float, gamma: float, r_best: float) -> float:
    return (v0 + gamma + 1.0) / (r_best + 1.0)


def _lambda_scale(init_probs: np.ndarray) -> float:
    """1/(2e) + 2 ln(1/min_y pi_0(y)), the denominator of the paper's lambda conditions."""
    return 1.0 / (2.0 * math.e) + 2.0 * math.log(1.0 / float(init_probs.min()))


@dataclasses.dataclass(frozen=True)
class Theorem5Models:
    """The two reward models of Theorem 5 of arXiv 2503.15477 for one prompt, with their bounds.

    Attributes:
        slow: [Y] the perfectly accurate, low-variance r_RM (values in (0, 1/T), r_G's order).
        fast: [Y] the inaccurate r'_RM (1 on y_gamma, values in (0, pi_0(y_gamma)) elsewhere, in
            the reverse order of r_G).
        y_gamma: the output the fast model singles out.
        rho: (E_pi0 r_G + gamma + 1) / (r_G(y_gamma) + 1), in (0, 1).
        slow_time_bound: 2 |S| (1 - e^(-gamma/2)) T, a lower bound on t_gamma under ``slow``.
        fast_time_bound: 4 |S| (1 - rho)^(-4) (1/pi_0(y_gamma) - 1/rho), an upper bound on t_gamma
            under ``fast`` when kl_coef <= ``fast_kl_limit``.
        fast_kl_limit: pi_0(y_gamma) (1 - rho)^4 / (8 (1/(2e) + 2 ln(1/min pi_0))).
    """

    slow: np.ndarray
    fast: np.ndarray
    y_gamma: int
    rho: float
    slow_time_bound: float
    fast_time_bound: float
    fast_kl_limit: float


def theorem_5_models(
    init_probs,
    reward_gt,
    gamma: float,
    T: float,
    *,
    y_gamma: int | None = None,
    accuracy: float | None = None,
    fast_accuracy: float | None = None,
    num_prompts: int = 1,
) -> Theorem5Models:
    """Build Theorem 5's accurate-but-slow and inaccurate-but-fast reward models (arXiv 2503.15477).

    Given pi_0, r_G in [-1, 1], gamma and an output y_gamma with r_G(y_gamma) > E_pi0 r_G + gamma:

    * slow: r_RM(y) = b_y with 0 < b_y < 1/T ordered exactly like r_G (ties too), so accuracy is 1,
      Var0 <= 1/T^2 and t_gamma >= 2|S|(1 - e^(-gamma/2)) T for every lambda >= 0;
    * fast: r'_RM(y_gamma) = 1 and r'_RM(y) = c_y in (0, pi_0(y_gamma)), distinct, in the reverse
      order of r_G; accuracy <= 2/|Y|, and if lambda <= ``fast_kl_limit`` then
      t_gamma <= 4|S|(1 - rho)^(-4) (1/pi_0(y_gamma) - 1/rho), whatever T.

    Args:
        init_probs: pi_0 [Y], strictly positive.
        reward_gt: r_G [Y] in [-1, 1].
        gamma: the gain, > 0.
        T: >= 1, the slowness parameter.
        y_gamma: the singled-out output (default: the best output under r_G).
        accuracy: the slow model's uniform-pair accuracy (default 1: r_G's own order); any
            attainable value (:func:`attainable_accuracies`), realised by the order of the b_y.
        fast_accuracy: the fast model's accuracy (default: c_y in the reverse order of r_G,
            accuracy <= 2/|Y|); any value attainable with y_gamma ranked first.
        num_prompts: |S|, for the time bounds (the models themselves are per prompt).

    Returns:
        A :class:`Theorem5Models`.

    Examples:
        >>> import numpy as np
        >>> from theory_sim.rewards import theorem_5_models
        >>> m = theorem_5_models(np.full(4, 0.25), np.array([-1.0, 0.0, 0.5, 1.0]), 0.5, T=10)
        >>> m.y_gamma, bool(m.slow.max() < 0.1), float(m.fast[3])
        (3, True, 1.0)
    """
    claim = "Theorem 5"
    probs, r_gt, gamma = _one_prompt_inputs(init_probs, reward_gt, gamma, claim)
    horizon = _check_horizon(T)
    num_prompts = check_int("num_prompts", num_prompts)
    n = probs.shape[0]
    y_g = int(np.argmax(r_gt)) if y_gamma is None else check_index("y_gamma", y_gamma, n, "outputs")
    v0 = float(probs @ r_gt)
    if not r_gt[y_g] > v0 + gamma:
        raise ValueError(
            f"{claim} needs r_G(y_gamma) > E_pi0 r_G + gamma; got r_G(y_gamma) = {r_gt[y_g]:.6g} "
            f"and E_pi0 r_G + gamma = {v0 + gamma:.6g}. Lower `gamma` or choose another `y_gamma`."
        )
    rho = _rho(v0, gamma, float(r_gt[y_g]))
    if not 0 < rho < 1:
        raise ValueError(f"{claim} needs rho in (0, 1); got rho = {rho:.6g}.")
    slow_order = r_gt if accuracy is None else ranking_with_accuracy(r_gt, accuracy)
    slow = _rank_values(slow_order, 0.0, 1.0 / horizon)
    others = np.arange(n) != y_g
    if fast_accuracy is None:
        # distinct values in the reverse order of r_G (ties in r_G broken by index)
        rest_order = np.empty(n - 1)
        rest_order[np.lexsort((np.arange(n - 1), -r_gt[others]))] = np.arange(n - 1)
    else:
        rest_order = _ranking_below_top(r_gt, y_g, fast_accuracy)
    fast = np.ones(n)
    fast[others] = _rank_values(rest_order, 0.0, float(probs[y_g]))
    p_g = float(probs[y_g])
    return Theorem5Models(
        slow=slow,
        fast=fast,
        y_gamma=y_g,
        rho=rho,
        slow_time_bound=2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) * horizon,
        fast_time_bound=4.0 * num_prompts * (1.0 - rho) ** -4 * (1.0 / p_g - 1.0 / rho),
        fast_kl_limit=p_g * (1.0 - rho) ** 4 / (8.0 * _lambda_scale(probs)),
    )


def _ranking_below_top(r_gt: np.ndarray, top: int, accuracy: float) -> np.ndarray:
    """Ranks of the outputs other than ``top`` such that, with ``top`` ranked first, the
    uniform-pair accuracy against r_G is exactly ``accuracy``.

    With ``top`` first, its pairs are correct exactly when r_G(y) < r_G(top); the other outputs
    must supply the remaining correct pairs among themselves.
    """
    n = r_gt.shape[0]
    pairs, rest = n * (n - 1) // 2, np.delete(r_gt, top)
    from_top = int(np.sum(rest < r_gt[top]))
    rest_pairs = (n - 1) * (n - 2) // 2
    acc = check_float_scalar("fast_accuracy", accuracy, nonnegative=True)
    needed = acc * pairs - from_top
    options = (attainable_accuracies(rest) * rest_pairs + from_top) / pairs
    if rest_pairs == 0 or not np.any(np.abs(options - acc) < 1e-9):
        below, above = options[options < acc], options[options > acc]
        nearest = ", ".join(f"{v:.6g}" for v in (*below[-1:], *above[:1]))
        raise ValueError(
            f"`fast_accuracy` {acc:.6g} is not attainable with y_gamma ranked "
            f"first; nearest attainable: {nearest}."
        )
    return ranking_with_accuracy(rest, needed / rest_pairs)


@dataclasses.dataclass(frozen=True)
class Theorem6Instance:
    """Theorem 6 of arXiv 2503.15477 for one prompt: two reward models and two initial policies.

    Attributes:
        reward_rm, reward_rm_prime: [Y] +1 on y_gamma (resp. y_gamma'), -1 elsewhere.
        init_probs, init_probs_prime: [Y] policies in Pi (resp. Pi'): E r_G = V0,
            pi(y_gamma') <= T^-2 and pi(y_gamma) >= c (resp. with y_gamma, y_gamma' swapped).
        y_gamma, y_gamma_prime: the two good outputs.
        v0: V0, the initial expected ground-truth reward of both families.
        rho, rho_prime: (V0 + gamma + 1) / (r_G(y) + 1) for y = y_gamma, y_gamma'.
        fast_time_bound, fast_time_bound_prime: 2|S|(1 - rho)^(-3)(1/c - 1/rho): t_gamma under the
            matching reward model (r_RM from Pi, r'_RM from Pi') is at most this when
            kl_coef <= the matching ``kl_limit``.
        kl_limit, kl_limit_prime: c (1 - rho)^3 / (16 (1/(2e) + 2 ln(1/min pi_0))).
        slow_time_bound: (|S| / sqrt 2)(1 - e^(-gamma/2)) T: t_gamma under the mismatched model is
            at least this (its Var0 <= 8/T^2).
    """

    reward_rm: np.ndarray
    reward_rm_prime: np.ndarray
    init_probs: np.ndarray
    init_probs_prime: np.ndarray
    y_gamma: int
    y_gamma_prime: int
    v0: float
    rho: float
    rho_prime: float
    fast_time_bound: float
    fast_time_bound_prime: float
    kl_limit: float
    kl_limit_prime: float
    slow_time_bound: float


def _policy_in_family(r_gt, v0, good, bad, c, horizon) -> np.ndarray:
    """A full-support policy with E r_G = v0, pi(bad) = T^-2 and pi(good) = c."""
    n = r_gt.shape[0]
    rest = np.setdiff1d(np.arange(n), [good, bad])
    mass = 1.0 - c - horizon**-2
    need = v0 - c * r_gt[good] - horizon**-2 * r_gt[bad]  # sum_{rest} pi r_G must equal this
    if mass <= 0 or rest.size == 0:
        raise ValueError(
            f"no room for the other outputs: c + T^-2 = {c + horizon**-2:.6g} >= 1 "
            "or there are only two outputs; lower `c`, raise `T` or add outputs."
        )
    target = need / mass  # the mean of r_G over the other outputs
    lo, hi = rest[np.argmin(r_gt[rest])], rest[np.argmax(r_gt[rest])]
    if not r_gt[lo] < target < r_gt[hi]:
        raise ValueError(
            f"no policy in the family has E r_G = V0 = {v0:.6g}: with pi(y_gamma) = {c:.6g} and "
            f"pi(y_gamma') = T^-2 the other outputs would need a mean r_G of {target:.6g}, "
            f"strictly between what they reach ({r_gt[lo]:.6g} and {r_gt[hi]:.6g})."
        )
    # Mix the lowest and highest of the other outputs to hit the mean, plus a small uniform share
    # eta that keeps every probability positive; eta shrinks until the mean stays reachable.
    eta = 0.1
    while True:
        base = eta * np.full(rest.size, 1.0 / rest.size)
        base_mean = float(base @ r_gt[rest])
        alpha = (target - base_mean - (1 - eta) * r_gt[lo]) / ((1 - eta) * (r_gt[hi] - r_gt[lo]))
        if 0 < alpha < 1:
            break
        eta /= 10
    probs = np.zeros(n)
    probs[rest] = mass * base
    probs[lo] += mass * (1 - eta) * (1 - alpha)
    probs[hi] += mass * (1 - eta) * alpha
    probs[good], probs[bad] = c, horizon**-2
    return probs


def _common_v0(r_gt, y_g, y_h, c, horizon) -> float:
    """Midpoint of the V0 values reachable by both families with masses c and T^-2 pinned."""
    rest = np.setdiff1d(np.arange(r_gt.shape[0]), [y_g, y_h])
    mass = 1.0 - c - horizon**-2
    if mass <= 0:
        raise ValueError(
            f"no room for the other outputs: c + T^-2 = {c + horizon**-2:.6g} >= 1; "
            "lower `c` or raise `T`."
        )
    lo, hi = mass * r_gt[rest].min(), mass * r_gt[rest].max()
    shift = (c * r_gt[y_g] + horizon**-2 * r_gt[y_h], c * r_gt[y_h] + horizon**-2 * r_gt[y_g])
    low, high = max(shift) + lo, min(shift) + hi
    if not low < high:
        raise ValueError(
            f"no V0 is reachable from both families with c = {c:g}: r_G(y_gamma) and "
            f"r_G(y_gamma') differ too much for the other outputs' range to absorb; lower `c`."
        )
    return 0.5 * (low + high)


def theorem_6_instance(
    reward_gt,
    gamma: float,
    T: float,
    c: float,
    *,
    v0: float | None = None,
    y_gamma: int | None = None,
    y_gamma_prime: int | None = None,
    num_prompts: int = 1,
) -> Theorem6Instance:
    """Build Theorem 6's reward models and initial policies (arXiv 2503.15477): the best reward
    model depends on the policy.

    r_RM = +1 on y_gamma and -1 elsewhere; r'_RM = +1 on y_gamma' and -1 elsewhere. For pi_0 in
    Pi = {E r_G = V0, pi(y_gamma') <= T^-2, pi(y_gamma) >= c}, r_RM is fast (t_gamma at most
    2|S|(1-rho)^(-3)(1/c - 1/rho) for small lambda) and r'_RM slow (Var0 <= 8/T^2, t_gamma at
    least (|S|/sqrt 2)(1 - e^(-gamma/2)) T); from Pi' the roles swap.

    Args:
        reward_gt: r_G [Y] in [-1, 1], Y >= 3.
        gamma: the gain, > 0.
        T: >= 1.
        c: the mass of the good output in each family, in (0, 1).
        v0: the initial expected ground-truth reward V0. Default: the midpoint of the values both
            families can reach with pi(y_gamma) = c and pi(y_gamma') = T^-2 (an error says when
            no common value exists: lower c).
        y_gamma, y_gamma_prime: two distinct outputs with r_G > V0 + gamma (default: the two
            best under r_G).
        num_prompts: |S|, for the time bounds.

    Returns:
        A :class:`Theorem6Instance`; its policies are probability tables, so ``start_at`` gives
        parameters for any parameterisation.
    """
    claim = "Theorem 6"
    r_gt = as_float_array("reward_gt", reward_gt, ndim=(1,))
    check_reward_range("reward_gt", r_gt, claim)
    n = r_gt.shape[0]
    if n < 3:
        raise ValueError(f"`reward_gt` needs at least 3 outputs; got {n}.")
    gamma = check_float_scalar("gamma", gamma, positive=True)
    horizon = _check_horizon(T)
    num_prompts = check_int("num_prompts", num_prompts)
    c = check_float_scalar("c", c, positive=True)
    if not c < 1:
        raise ValueError(f"`c` must be in (0, 1); got {c}.")
    ranked = np.argsort(-r_gt, kind="stable")
    y_g = int(ranked[0]) if y_gamma is None else check_index("y_gamma", y_gamma, n, "outputs")
    y_h = (
        int(ranked[1])
        if y_gamma_prime is None
        else check_index("y_gamma_prime", y_gamma_prime, n, "outputs")
    )
    if y_g == y_h:
        raise ValueError(f"`y_gamma` and `y_gamma_prime` must differ; both are {y_g}.")
    v0 = _common_v0(r_gt, y_g, y_h, c, horizon) if v0 is None else check_float_scalar("v0", v0)
    for name, y in (("y_gamma", y_g), ("y_gamma_prime", y_h)):
        if not r_gt[y] > v0 + gamma:
            raise ValueError(
                f"{claim} needs r_G({name}) > V0 + gamma; got r_G = {r_gt[y]:.6g} and "
                f"V0 + gamma = {v0 + gamma:.6g}. Lower `gamma` or `v0`."
            )
    pi = _policy_in_family(r_gt, v0, y_g, y_h, c, horizon)
    pi_prime = _policy_in_family(r_gt, v0, y_h, y_g, c, horizon)
    rho, rho_prime = _rho(v0, gamma, float(r_gt[y_g])), _rho(v0, gamma, float(r_gt[y_h]))
    for name, value in (("rho", rho), ("rho'", rho_prime)):
        if not 0 < value < 1:
            raise ValueError(f"{claim} needs {name} in (0, 1); got {value:.6g}.")
    if not c < min(rho, rho_prime):
        raise ValueError(
            f"{claim}'s fast bound needs c < rho; got c = {c} and "
            f"rho = {rho:.6g}, rho' = {rho_prime:.6g}."
        )
    indicator = np.full(n, -1.0)
    r_rm, r_rm_prime = indicator.copy(), indicator.copy()
    r_rm[y_g], r_rm_prime[y_h] = 1.0, 1.0

    def fast_bound(r):
        return 2.0 * num_prompts * (1.0 - r) ** -3 * (1.0 / c - 1.0 / r)

    def kl_limit(r, probs):
        return c * (1.0 - r) ** 3 / (16.0 * _lambda_scale(probs))

    return Theorem6Instance(
        reward_rm=r_rm,
        reward_rm_prime=r_rm_prime,
        init_probs=pi,
        init_probs_prime=pi_prime,
        y_gamma=y_g,
        y_gamma_prime=y_h,
        v0=float(v0),
        rho=rho,
        rho_prime=rho_prime,
        fast_time_bound=fast_bound(rho),
        fast_time_bound_prime=fast_bound(rho_prime),
        kl_limit=kl_limit(rho, pi),
        kl_limit_prime=kl_limit(rho_prime, pi_prime),
        slow_time_bound=num_prompts / math.sqrt(2.0) * (-math.expm1(-gamma / 2.0)) * horizon,
    )


def beneficial_error_instance(star_prob: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The controlled experiment of arXiv 2604.25872 (Section 3.3): a reward error that helps.

    Five outputs (the reference code's one-hot features, so a tabular policy): y* best, y_med
    mediocre and likely, three bad ones.

        pi_0 = (p*, 0.5, (0.5 - p*)/3, (0.5 - p*)/3, (0.5 - p*)/3)
        r_G  = (1, 0.8, -1, -1, -1)
        r_RM = (1, -1, -1, -1, -1)

    The proxy errs on y_med, ranking it with the bad outputs. Trained on r_G the policy first
    moves to the likely y_med and stalls near E r_G = 0.8 while p* grows; trained on r_RM it
    moves to y* at once. Every error's rejected output lies below E_pi0 r_RM, so HAcc-W = 1
    while Acc-W < 1 (:func:`theory_sim.metrics.harm_aware_accuracy`). The paper runs
    p* in {0.05, 0.1, 0.15}.

    Returns:
        (pi_0 [5], r_G [5], r_RM [5]).
    """
    star_prob = check_float_scalar("star_prob", star_prob, positive=True)
    if star_prob >= 0.5:
        raise ValueError(f"`star_prob` must be in (0, 0.5) (y_med holds 0.5); got {star_prob:g}.")
    probs = np.array([star_prob, 0.5, *[(0.5 - star_prob) / 3.0] * 3])
    return probs, np.array([1.0, 0.8, -1.0, -1.0, -1.0]), np.array([1.0, -1.0, -1.0, -1.0, -1.0])
