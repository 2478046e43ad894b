"""The teacher depends on the student (arXiv 2503.15477): Theorem 6, Proposition 4's sufficient
condition for a fast increase, and Lemma 10 (how fast a probability can grow)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_index,
    check_indices,
    check_int,
    check_probabilities,
    check_reward_range,
)
from theory_sim.flow import (
    gradient_flow,
)
from theory_sim.metrics import _host_reward_variance
from theory_sim.problem import Problem, check_problem
from theory_sim.rewards import theorem_6_instance
from theory_sim.theorems._common import (
    TIME_RTOL,
    Check,
    _describe,
    _one_prompt_time,
    _require_tabular,
    _time_lower_bound_check,
    _upper_bound_check,
)


def check_theorem_6(
    reward_gt,
    gamma: float,
    T: float,
    c: float,
    *,
    num_prompts: int = 1,
    instance: str = "",
    **construction,
) -> list[Check]:
    """Check Theorem 6 of arXiv 2503.15477 (the best reward model depends on the policy).

    Builds :func:`theory_sim.rewards.theorem_6_instance` and, from a policy in Pi and one in Pi'
    (tabular, |S| identical prompts, lambda at each family's limit), checks the matching reward
    model's time against its upper bound, the mismatched one's Var0 <= 8/T^2 and time against
    its lower bound, and that the faster reward model differs between the two families.

    Returns:
        Seven Checks: for each family, the matching model's time, the mismatched model's Var0 and
        its time; then "ranking flips", with measured = max over the two families of
        t_gamma(matching) / t_gamma(mismatched) against bound 1: below 1 exactly when each
        family's own reward model is the faster teacher, so the ranking flips between them.
    """
    claim = "Theorem 6"
    inst = theorem_6_instance(reward_gt, gamma, T, c, num_prompts=num_prompts, **construction)
    r_gt = np.asarray(reward_gt, dtype=np.float64)
    checks, faster_matches = [], []
    families = (
        (
            "Pi",
            inst.init_probs,
            inst.reward_rm,
            inst.reward_rm_prime,
            inst.fast_time_bound,
            inst.kl_limit,
        ),
        (
            "Pi'",
            inst.init_probs_prime,
            inst.reward_rm_prime,
            inst.reward_rm,
            inst.fast_time_bound_prime,
            inst.kl_limit_prime,
        ),
    )
    for name, probs, matching, mismatched, fast_bound, lam in families:
        t_match = _one_prompt_time(probs, matching, r_gt, lam, gamma, num_prompts, claim)
        t_other = _one_prompt_time(probs, mismatched, r_gt, lam, gamma, num_prompts, claim)
        var_other = float(_host_reward_variance(probs, mismatched))
        label = instance or f"Y={r_gt.shape[0]} T={T:g} c={c:g}"
        label = f"{label} from {name}"
        details = {
            "T": float(T),
            "gamma": float(gamma),
            "c": float(c),
            "kl_coef": lam,
            "t_matching": t_match,
            "t_mismatched": t_other,
        }
        checks += [
            _upper_bound_check(
                f"{claim}: matching model time", label, t_match, fast_bound, details, TIME_RTOL
            ),
            _upper_bound_check(
                f"{claim}: mismatched model Var0", label, var_other, 8.0 / float(T) ** 2, details
            ),
            _time_lower_bound_check(
                f"{claim}: mismatched model time", label, t_other, inst.slow_time_bound, details
            ),
        ]
        faster_matches.append(t_match / t_other)
    worst = max(faster_matches)
    checks.append(
        Check(
            f"{claim}: ranking flips",
            instance or f"Y={r_gt.shape[0]} T={T:g} c={c:g}",
            worst,
            1.0,
            "<=",
            worst < 1.0,
            {"t_ratio_Pi": faster_matches[0], "t_ratio_Pi_prime": faster_matches[1]},
        )
    )
    return checks


def check_lemma_10(
    problem: Problem, prompt: int = 0, *, num_times: int = 64, instance: str = ""
) -> Check:
    """Check Lemma 10 of arXiv 2503.15477 along the flow of a tabular problem.

    pi_t(A|x) <= pi_0(A|x) exp((4 + 2 lambda ln(1/min_y pi_0(y|x))) t / |S|) for every set A.

    The ratio pi_t(A)/pi_0(A) is at most the largest single-output ratio, so singletons are the
    worst sets. Sampled at ``num_times`` log-spaced times up to where the exponent reaches 5;
    measured = max over samples of max_y pi_t(y) / (pi_0(y) exp(...)) against bound 1.
    """
    problem = check_problem(problem)
    claim = "Lemma 10"
    num_times = check_int("num_times", num_times, 2)
    _require_tabular(problem, claim)
    prompt = check_index("prompt", prompt, problem.num_prompts, "prompts")
    check_reward_range("reward_rm", np.asarray(problem.reward_rm), claim)
    log_p0 = np.asarray(problem.ref_log_probs[prompt])
    lam = float(problem.kl_coef)
    rate = (4.0 + 2.0 * lam * float(-log_p0.min())) / problem.num_prompts
    ts = np.geomspace(1e-4, 5.0, num_times) / rate
    traj = gradient_flow(problem, ts[-1], ts)
    probs = traj.probs if problem.single_prompt else traj.probs[:, prompt, :]
    growth = np.log(probs) - log_p0
    log_ratio = growth - rate * ts[:, None]
    worst = float(np.exp(log_ratio.max()))
    # the same inequality read on the exponent: ln(pi_t(y)/pi_0(y)) / (rate t) <= 1. Near t = 0
    # both sides of the ratio tend to 1, so the ratio is sharp there whatever the rate; the
    # exponent's fraction is what a wrong rate changes (the tightness search uses it)
    used = float((growth / (rate * ts[:, None])).max())
    return _upper_bound_check(
        claim,
        instance or _describe(problem, prompt),
        worst,
        1.0,
        {"kl_coef": lam, "rate": rate, "exponent_fraction": used},
    )


@dataclasses.dataclass(frozen=True)
class Proposition4Conditions:
    """The quantities and conditions of Proposition 4 of arXiv 2503.15477 for one prompt.

    Attributes:
        rho: (V_G(0) + gamma + 1) / (min_{Y+} r_G + 1).
        delta: (1 - rho)(max_{Y+} r_RM - V_RM(0)) - max_{y, y' in Y+} |r_RM(y) - r_RM(y')|.
        kl_limit: pi_0(Y+)(1 - rho) delta / (8 |Y+| (2 ln(1/min pi_0) + 1/(2e))).
        y_bad: outputs outside Y+ with r_RM > V_RM(0); ``y_bad_mass`` their pi_0 mass.
        time_bound: 4 |S| |Y+| / ((1 - rho) delta) (1/pi_0(Y+) - 1/rho).
        reasons: the conditions that fail (empty when all the stated ones hold).
    """

    rho: float
    delta: float
    kl_limit: float
    y_bad: tuple[int, ...]
    y_bad_mass: float
    time_bound: float
    reasons: tuple[str, ...]


def proposition_4_conditions(
    init_probs, reward_gt, reward_rm, gamma: float, y_plus, *, num_prompts: int = 1
) -> Proposition4Conditions:
    """Evaluate the conditions of Proposition 4 of arXiv 2503.15477 (a sufficient condition for
    a fast increase of the ground-truth reward) for a set Y+ of outputs.

    Conditions: every y in Y+ has r_G(y) > V_G(0) + gamma and r_RM(y) > V_RM(0); rho in (0, 1);
    delta > 0; lambda <= ``kl_limit``; and a small enough initial mass on Y_bad (reported as
    ``y_bad_mass``; the paper's exact limit is not restated here: :func:`proposition_4_y_bad`
    derives a sufficient one and the bound it gives).
    """
    probs = check_probabilities("init_probs", init_probs, positive=True)
    r_gt = as_float_array("reward_gt", reward_gt)
    r_rm = as_float_array("reward_rm", reward_rm)
    if probs.ndim != 1 or r_gt.shape != probs.shape or r_rm.shape != probs.shape:
        raise ValueError(
            "`init_probs`, `reward_gt` and `reward_rm` must be 1-D of one length; "
            f"got {probs.shape}, {r_gt.shape}, {r_rm.shape}."
        )
    check_reward_range("reward_gt", r_gt, "Proposition 4")
    check_reward_range("reward_rm", r_rm, "Proposition 4")
    members = list(check_indices("y_plus", y_plus, probs.shape[0], "outputs"))
    gamma = check_float_scalar("gamma", gamma, positive=True)
    if gamma > 2:
        raise ValueError(f"`gamma` must be at most 2 (rewards lie in [-1, 1]); got {gamma}.")
    v_g, v_rm = float(probs @ r_gt), float(probs @ r_rm)
    mass = float(probs[members].sum())
    rho = (v_g + gamma + 1.0) / (float(r_gt[members].min()) + 1.0)
    spread = float(r_rm[members].max() - r_rm[members].min())
    delta = (1.0 - rho) * (float(r_rm[members].max()) - v_rm) - spread
    scale = 2.0 * math.log(1.0 / float(probs.min())) + 1.0 / (2.0 * math.e)
    kl_limit = mass * (1.0 - rho) * delta / (8.0 * len(members) * scale)
    y_bad = tuple(int(y) for y in np.flatnonzero(r_rm > v_rm) if y not in members)
    reasons = []
    if not np.all(r_gt[members] > v_g + gamma):
        reasons.append("some y in Y+ has r_G(y) <= V_G(0) + gamma")
    if not np.all(r_rm[members] > v_rm):
        reasons.append("some y in Y+ has r_RM(y) <= V_RM(0)")
    if not 0 < rho < 1:
        reasons.append(f"rho = {rho:.4g} is not in (0, 1)")
    if not delta > 0:
        reasons.append(f"delta = {delta:.4g} is not > 0")
    bound = (
        4.0 * num_prompts * len(members) / ((1.0 - rho) * delta) * (1.0 / mass - 1.0 / rho)
        if not reasons
        else math.nan
    )
    return Proposition4Conditions(
        rho, delta, kl_limit, y_bad, float(probs[list(y_bad)].sum()), bound, tuple(reasons)
    )


@dataclasses.dataclass(frozen=True)
class Proposition4YBad:
    """theory_sim's derived form of Proposition 4 of arXiv 2503.15477 for any Y_bad (empty or not).

    The paper asks for "a small enough initial mass on Y_bad"; its limit is not restated in this
    project's specification, so theory_sim derives its own sufficient condition from the flow
    (proof in :func:`proposition_4_y_bad`).

    Attributes:
        mass: Q_0 = pi_0(Y_bad).
        reward_gap: beta = max_{Y_bad} r_RM - V_RM(0) (0 when Y_bad is empty).
        mass_limit: the largest Q_0 for which the condition can hold, max over q of
            q exp(-(4 + 2 lambda L) s(q)) (inf when Y_bad is empty: nothing to limit).
        cap: the q used, the least one with Q_0 exp((4 + 2 lambda L) s(q)) <= q (0 when Y_bad is
            empty); pi_t(Y_bad) stays below it until the bound.
        rate: c(q), the rate at which 1/pi_t(Y+) falls in s = t/|S|.
        kl_limit: the lambda below which c(0) > 0, (1 - rho) delta pi_0(Y+) / (|Y+| (L + 1/e)).
        time_bound: |S| (1/pi_0(Y+) - 1/rho) / c(q); inf when the conditions fail.
    """

    mass: float
    reward_gap: float
    mass_limit: float
    cap: float
    rate: float
    kl_limit: float
    time_bound: float


def proposition_4_y_bad(
    init_probs,
    reward_gt,
    reward_rm,
    gamma: float,
    y_plus,
    kl_coef: float = 0.0,
    *,
    num_prompts: int = 1,
) -> Proposition4YBad:
    """Proposition 4 of arXiv 2503.15477 with a non-empty Y_bad: theory_sim's sufficient
    condition on pi_0(Y_bad) and the time bound it gives (tabular policy, |S| identical prompts).

    Notation: P = pi_t(Y+), Q = pi_t(Y_bad), m = |Y+|, L = ln(1/min pi_0), s = t/|S|,
    beta = max_{Y_bad} r_RM - V_RM(0), rho and delta as in Proposition 4. For any q >= 0 let

        c(q) = (1 - rho)(delta - q beta)/m - (beta q^2 + lambda (L + 1/e)) / pi_0(Y+),
        s(q) = (1/pi_0(Y+) - 1/rho) / c(q).

    Claim: if c(q) > 0 and Q_0 exp((4 + 2 lambda L) s(q)) <= q, then
    t_gamma <= |S| s(q). The function takes the least such q (the tightest bound).

    Proof. With A(y) = r_RM(y) - V - lambda(ln(pi/pi_0)(y) - KL), the flow gives (Lemma 9)
    dP/ds = (1 - P) sum_{Y+} pi^2 A - P sum_{not Y+} pi^2 A. Because phi is non-decreasing,
    V(t) >= V_RM(0) + lambda KL >= V_RM(0), so outputs outside Y+ and Y_bad have r_RM - V <= 0,
    and those in Y_bad have r_RM - V <= beta. Writing V through P and Q, every y in Y+ has
    r_RM(y) - V >= (1 - P)(max_{Y+} r_RM - V_RM(0)) - Q beta - spread >= delta - Q beta while
    P <= rho. The KL part of dP/ds is at least -lambda P (1 - P)(L + 1/e) (using
    ln(pi/pi_0) <= L, x ln x >= -1/e and KL <= L). With sum_{Y+} pi^2 >= P^2/m and
    sum_{Y_bad} pi^2 <= Q^2: while P <= rho, Q <= q and P >= pi_0(Y+),
    dP/ds >= c(q) P^2, so P never falls below pi_0(Y+) and 1/P falls at rate c(q), reaching
    1/rho by s(q). Lemma 10 keeps Q <= Q_0 exp((4 + 2 lambda L) s) <= q until then. Once
    P >= rho, E r_G >= rho(min_{Y+} r_G + 1) - 1 = V_G(0) + gamma. With Y_bad empty (q = 0) the
    bound is |S| m (1/pi_0(Y+) - 1/rho) / ((1 - rho) delta - m lambda (L + 1/e) / pi_0(Y+)):
    at lambda = 0 a quarter of the paper's, and within its lambda limit at most a third.

    Raises:
        ValueError: if the stated conditions of Proposition 4 on Y+, rho or delta fail.
    """
    from scipy import optimize

    cond = proposition_4_conditions(
        init_probs, reward_gt, reward_rm, gamma, y_plus, num_prompts=num_prompts
    )
    if cond.reasons:
        raise ValueError("Proposition 4's conditions fail: " + "; ".join(cond.reasons) + ".")
    lam = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    probs = np.asarray(init_probs, dtype=np.float64)
    r_rm = np.asarray(reward_rm, dtype=np.float64)
    members = list(check_indices("y_plus", y_plus, probs.size, "outputs"))
    m, p0, rho, delta = len(members), float(probs[members].sum()), cond.rho, cond.delta
    log_inv = math.log(1.0 / float(probs.min()))
    growth = 4.0 + 2.0 * lam * log_inv  # Lemma 10's rate in s = t/|S|
    beta = float(r_rm[list(cond.y_bad)].max() - probs @ r_rm) if cond.y_bad else 0.0
    kl_limit = (1.0 - rho) * delta * p0 / (m * (log_inv + 1.0 / math.e))
    distance = 1.0 / p0 - 1.0 / rho

    def rate(q):
        kl_part = lam * (log_inv + 1.0 / math.e)
        return (1.0 - rho) * (delta - q * beta) / m - (beta * q * q + kl_part) / p0

    def log_room(q):  # ln q - growth s(q): the condition reads ln Q_0 <= log_room(q)
        return math.log(q) - growth * distance / rate(q)

    def result(mass_limit, cap):
        c = rate(cap)
        bound = num_prompts * distance / c if c > 0 else math.inf
        return Proposition4YBad(
            cond.y_bad_mass, beta, float(mass_limit), float(cap), float(c), kl_limit, bound
        )

    if not rate(0.0) > 0:
        return result(0.0, 0.0)
    if not cond.y_bad:
        return result(math.inf, 0.0)
    # c(q) > 0 on [0, q_max): the positive root of c(q) = 0, a quadratic in q
    a2, a1, a0 = beta / p0, (1.0 - rho) * beta / m, rate(0.0)
    q_max = 2.0 * a0 / (a1 + math.sqrt(a1 * a1 + 4.0 * a2 * a0))
    # log_room is concave (ln q concave; 1/c convex where the concave c is positive): one peak
    peak = optimize.minimize_scalar(
        lambda q: -log_room(q),
        bounds=(q_max * 1e-12, q_max * (1 - 1e-12)),
        method="bounded",
        options={"xatol": q_max * 1e-13},
    ).x
    mass_limit = math.exp(log_room(peak))
    mass = cond.y_bad_mass
    if mass > mass_limit:
        return dataclasses.replace(result(mass_limit, peak), time_bound=math.inf)
    # log_room(mass) < ln(mass) <= log_room(peak): the least admissible q lies in between
    cap = optimize.brentq(
        lambda q: log_room(q) - math.log(mass), mass, peak, xtol=1e-300, rtol=1e-14
    )
    if log_room(cap) < math.log(mass):  # the root to round-off: step to its safe side
        cap = cap * (1 + 1e-12) if log_room(cap * (1 + 1e-12)) >= math.log(mass) else peak
    return result(mass_limit, cap)


def check_proposition_4(
    init_probs,
    reward_gt,
    reward_rm,
    gamma: float,
    y_plus,
    kl_coef: float = 0.0,
    *,
    num_prompts: int = 1,
    instance: str = "",
) -> Check:
    """Check t_gamma <= 4|S||Y+| / ((1-rho) delta) (1/pi_0(Y+) - 1/rho) (Proposition 4 of
    arXiv 2503.15477) for a tabular policy started at pi_0, on |S| identical prompts.

    With Y_bad empty the paper's bound is checked (claim "Proposition 4", lambda up to its
    ``kl_limit``), and theory_sim's derived bound from :func:`proposition_4_y_bad` is reported
    beside it in the details. With Y_bad non-empty the paper's mass limit is not restated in this
    project's specification, so the derived condition and bound are checked instead (claim
    "Proposition 4 (Y_bad)"). Refuses instances whose conditions fail, with the failing ones
    named: for a non-empty Y_bad, an initial mass above the derived limit or a lambda at which
    the derived rate is not positive.
    """
    cond = proposition_4_conditions(
        init_probs, reward_gt, reward_rm, gamma, y_plus, num_prompts=num_prompts
    )
    claim = "Proposition 4 (Y_bad)" if cond.y_bad else "Proposition 4"
    if cond.reasons:
        raise ValueError(f"{claim}'s conditions fail: " + "; ".join(cond.reasons) + ".")
    derived = proposition_4_y_bad(
        init_probs, reward_gt, reward_rm, gamma, y_plus, kl_coef, num_prompts=num_prompts
    )
    if cond.y_bad:
        if not derived.rate > 0:
            raise ValueError(
                f"`kl_coef` must be below {derived.kl_limit:.4g} for {claim} (the derived rate "
                f"c(0) is not positive above it); got {kl_coef}."
            )
        if not math.isfinite(derived.time_bound):
            raise ValueError(
                f"{claim}'s mass condition fails: for `y_plus` = {y_plus!r}, Y_bad = "
                f"{cond.y_bad} has initial mass {derived.mass:.4g}, above the limit "
                f"{derived.mass_limit:.4g} of theory_sim's derived condition."
            )
        bound = derived.time_bound
    else:
        if not 0 <= kl_coef <= cond.kl_limit:
            raise ValueError(f"`kl_coef` must be in [0, {cond.kl_limit:.4g}]; got {kl_coef}.")
        bound = cond.time_bound
    probs = np.asarray(init_probs, dtype=np.float64)
    measured = _one_prompt_time(
        probs,
        np.asarray(reward_rm, np.float64),
        np.asarray(reward_gt, np.float64),
        kl_coef,
        gamma,
        num_prompts,
        claim,
    )
    return _upper_bound_check(
        claim,
        instance
        or f"Y={probs.size} |Y+|={len(check_indices('y_plus', y_plus, probs.size, 'outputs'))}",
        measured,
        bound,
        {
            "rho": cond.rho,
            "delta": cond.delta,
            "kl_coef": float(kl_coef),
            "kl_limit": derived.kl_limit if cond.y_bad else cond.kl_limit,
            "derived_bound": derived.time_bound,
            "y_bad_mass": derived.mass,
            "y_bad_mass_limit": derived.mass_limit,
        },
        TIME_RTOL,
    )
