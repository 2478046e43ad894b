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
    check_problem,
    check_reward_range,
)
from theory_sim.flow import (
    gradient_flow,
)
from theory_sim.metrics import _jit_reward_variance
from theory_sim.problem import Problem
from theory_sim.rewards import theorem_6_instance
from theory_sim.theorems._common import (
    RATIO_RTOL,
    TIME_RTOL,
    Check,
    _describe,
    _one_prompt_time,
    _require_tabular,
    _time_lower_bound_check,
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
        var_other = float(_jit_reward_variance(probs, mismatched))
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
            Check(
                f"{claim}: matching model time",
                label,
                t_match,
                fast_bound,
                "<=",
                bool(t_match <= fast_bound * (1.0 + TIME_RTOL)),
                details,
            ),
            Check(
                f"{claim}: mismatched model Var0",
                label,
                var_other,
                8.0 / float(T) ** 2,
                "<=",
                var_other <= 8.0 / float(T) ** 2 * (1 + RATIO_RTOL),
                details,
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
    return Check(
        claim,
        instance or _describe(problem, prompt),
        worst,
        1.0,
        "<=",
        worst <= 1.0 + RATIO_RTOL,
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
    ``y_bad_mass``; the paper's exact limit is not restated here, so only Y_bad = {} is certain).
    """
    probs = check_probabilities("init_probs", init_probs)
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

    Refuses instances whose conditions fail, with the failing ones named; only instances with
    Y_bad empty are accepted (the paper's Y_bad mass limit is not restated in this project's
    specification, and an empty Y_bad satisfies it whatever it is).
    """
    claim = "Proposition 4"
    cond = proposition_4_conditions(
        init_probs, reward_gt, reward_rm, gamma, y_plus, num_prompts=num_prompts
    )
    if cond.reasons:
        raise ValueError(f"{claim}'s conditions fail: " + "; ".join(cond.reasons) + ".")
    if cond.y_bad:
        raise ValueError(
            f"{claim} is only checked with Y_bad empty; for `y_plus` = {y_plus!r}, Y_bad = "
            f"{cond.y_bad} with initial mass {cond.y_bad_mass:.4g}."
        )
    if not 0 <= kl_coef <= cond.kl_limit:
        raise ValueError(f"`kl_coef` must be in [0, {cond.kl_limit:.4g}]; got {kl_coef}.")
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
    return Check(
        claim,
        instance
        or f"Y={probs.size} |Y+|={len(check_indices('y_plus', y_plus, probs.size, 'outputs'))}",
        measured,
        cond.time_bound,
        "<=",
        bool(measured <= cond.time_bound * (1.0 + TIME_RTOL)),
        {
            "rho": cond.rho,
            "delta": cond.delta,
            "kl_coef": float(kl_coef),
            "kl_limit": cond.kl_limit,
        },
    )
