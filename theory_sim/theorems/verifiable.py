"""Checks for verifiable 0/1 rewards: noisy verifiers ("Rate or Fate? RLVeR", arXiv 2601.04411)
and the exact expected update of group estimators (GRPO, arXiv 2402.03300; Dr. GRPO,
arXiv 2503.20783), as rows of ``theory-sim check``.

* Noisy verifier, J > 0: t_gamma under the verifier's expected reward FPR + J r_G equals
  t_gamma(clean, lambda / J) / J. arXiv 2601.04411 states the phases for sampled RLVR
  qualitatively (learning slows with the noise and reverses past J = 0); here the statement is
  the exact identity of the flows, checked to the solver's accuracy.
* Noisy verifier, J <= 0: the ground truth's gain at the horizon is <= 0 (exactly 0 for J = 0).
* Group update: the enumerated expected update (:func:`theory_sim.groups.expected_update`, a sum
  over multisets of the other samples) against the closed forms for 0/1 rewards: the gradient
  for REINFORCE and RLOO, (G - 1)/G of it for Dr. GRPO, w(p) times it for GRPO (w from the
  binomial sum over the correct others, :func:`theory_sim.groups.group_weight`).
* GRPO no-signal probability: the enumerated probability that all G rewards tie against
  p^G + (1 - p)^G.
* Beneficial reward error (arXiv 2604.25872, Section 3.3): on its controlled experiment, the
  proxy that errs on the mediocre output reaches a ground-truth target sooner than the ground
  truth itself. The paper shows it with 50,000 exact-gradient steps of size 0.1; here the
  statement is t_target(r_RM) < t_target(r_G) on the exact flow, both times reported.
* Acc-W, HAcc, HAcc-W (arXiv 2604.25872, Section 4): the O(Y log^2 Y) sorted counts of
  :mod:`theory_sim.metrics` against the enumeration of preference pairs.
* Discrete steps (Suk & Duan, arXiv 2510.08539; :mod:`theory_sim.steps`) on the shared-token
  family over V^L: the Gradient Gap identity grad p = p (1 - p) Delta; the one-step improvement
  threshold found on the enumerated objective against its closed form, and GRPO's against the
  exact one divided by w(p); the fixed-step runs just below the critical learning rate converge
  and those just above it collapse (the paper's "below it, learning converges, whereas above
  it, performance collapses", made quantitative: success >= 0.99 against <= 0.01 after 1,000
  steps); the critical rate falls from L = 4 to L = 8 (their prediction that it shrinks with
  the response length); and under the tabular autoregressive policy, with nothing shared
  between positions, no run and no single step lowers the success rate.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from theory_sim import groups, steps
from theory_sim._validation import (
    as_float_array,
    check_choice,
    check_float_scalar,
    check_int,
    check_probabilities,
)
from theory_sim.flow import gradient_flow, time_to_gain
from theory_sim.metrics import _host_expected_reward, harm_aware_accuracy, weighted_accuracy
from theory_sim.objective import _jit_grad, kl_optimal_policy
from theory_sim.problem import Problem, check_problem
from theory_sim.rewards import noisy_verifier, youden_j
from theory_sim.rewards.verifiers import _binary
from theory_sim.theorems._common import TIME_RTOL, Check

__all__ = [
    "GROUP_RTOL",
    "PAIR_ATOL",
    "check_beneficial_error",
    "check_gradient_gap",
    "check_group_update",
    "check_grpo_success",
    "check_improvement_threshold",
    "check_no_signal_probability",
    "check_noisy_verifier",
    "check_preference_metrics",
    "check_step_scaling",
    "check_step_threshold",
    "check_step_threshold_needs_sharing",
]

# The enumerated expectation and the closed forms are each sums of at most a few thousand
# float64 terms of size up to sqrt(G) |grad|: their round-off is below 1e-13 relative; 1e-11
# leaves a margin and is far below the smallest difference a wrong weight makes (a GRPO weight
# w(p) off by a factor (G - 1)/G, say, is 10 % or more).
GROUP_RTOL = 1e-11


# Acc-W, HAcc and HAcc-W are ratios of sums of at most Y^2 products of probabilities, summed in
# two different orders by the sorted count and by the enumeration: their round-off is a few
# units of 1e-16 per term; 1e-12 absolute leaves a margin and is far below one pair's share of
# the weight on the instances checked (at least 1e-4).
PAIR_ATOL = 1e-12


# With J = 0 the reward is constant and the flow does not move, but E_pi r_G at the two times is
# computed from two logit vectors that differ by the solver's round-off: the gain is zero to
# about Y eps max|r_G| (1.7e-16 measured with lambda = 0.05); 1e-12 absolute allows for it and
# is far below the gains of J < 0 (-0.04 at J = -0.1 here).
GAIN_ATOL = 1e-12


# The one-step threshold is bisected on the enumerated objective until its bracket is within
# 1e-9 (relative) and its closed form is Brent's root to 1e-14: they agreed to 4.4e-10 at worst
# over L in 4..8 and p in {0.05, 0.2, 0.6}. 1e-8 leaves a margin and is far below what a wrong
# coefficient does (the last position's (L - 3) x written (L - 2) x moves it by 10 % or more).
STEP_RTOL = 1e-8

# A fixed-step run "converges" when its success rate after the run is at least CONVERGED and
# "collapses" when it is at most COLLAPSED. Just below the critical rate the runs of the check
# end at 0.9995 or more after 1,000 steps, just above it at 1e-4 or less.
CONVERGED, COLLAPSED = 0.99, 0.01


def check_noisy_verifier(
    probs, correct, false_positive: float, false_negative: float, gamma: float,
    kl_coef: float = 0.0, *, horizon: float = 10.0, instance: str = "",
) -> Check:  # fmt: skip
    """One prompt with pi_0 = ``probs`` and 0/1 ground truth ``correct``, trained on a verifier
    with the given error rates (:func:`theory_sim.rewards.noisy_verifier`). J > 0: t_gamma equals
    t_gamma(clean, lambda / J) / J within TIME_RTOL; J <= 0: the ground truth's gain at
    ``horizon`` is at most 0."""
    j = youden_j(false_positive, false_negative)
    probs, correct = _one_prompt(probs, correct)
    horizon = check_float_scalar("horizon", horizon, positive=True)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    reward = noisy_verifier(correct, false_positive, false_negative)
    noisy = Problem(np.log(probs), reward, correct, kl_coef=kl_coef)
    label = instance or (
        f"Y={len(probs)} FPR={false_positive:g} FNR={false_negative:g} J={j:.2g} "
        f"lambda={kl_coef:g} gamma={gamma:g}"
    )
    details = {"J": j, "false_positive": false_positive, "false_negative": false_negative,
               "kl_coef": kl_coef, "gamma": gamma}  # fmt: skip
    if j > 1e-12:
        clean = Problem(np.log(probs), correct, correct, kl_coef=kl_coef / j)
        measured = time_to_gain(noisy, gamma)
        bound = time_to_gain(clean, gamma) / j
        holds = math.isclose(measured, bound, rel_tol=TIME_RTOL)
        details["tolerance"] = f"{TIME_RTOL:g} relative"
        return Check("Noisy verifier: t(J) = t(1)/J", label, measured,
                     bound, "==", bool(holds), details)  # fmt: skip
    traj = gradient_flow(noisy, horizon, save_ts=np.array([0.0, horizon]))
    gain = float(traj.expected_gt[-1] - traj.expected_gt[0])
    details.update(horizon=horizon, tolerance=f"{GAIN_ATOL:g} absolute")
    return Check("Noisy verifier: J <= 0, no gain", label, gain, 0.0, "<=",
                 bool(gain <= GAIN_ATOL), details)  # fmt: skip


def _one_prompt(probs, correct) -> tuple[np.ndarray, np.ndarray]:
    """pi_0 (strictly positive, 1-D) and 0/1 labels of its shape."""
    probs = check_probabilities("probs", probs, positive=True)
    correct = _binary("correct", correct)
    if probs.ndim != 1 or correct.shape != probs.shape:
        raise ValueError(
            f"`probs` and `correct` must be 1-D of one shape (one prompt); got {probs.shape} "
            f"and {correct.shape}."
        )
    return probs, correct


def _predicted(problem, method, group_size):
    """The closed form for 0/1 rewards with lambda = 0 (module docstring)."""
    grad = np.asarray(problem.user_params(_jit_grad(problem, problem.params0)))
    if method in ("reinforce", "rloo"):
        return grad
    if method == "drgrpo":
        return (group_size - 1) / group_size * grad
    probs = np.exp(np.asarray(problem.ref_log_probs))[0]
    p = float(np.sum(probs[np.asarray(problem.reward_rm)[0] == 1.0]))
    return groups.group_weight(p, group_size) * grad


def check_group_update(problem: Problem, method: str, group_size: int, *, instance="") -> Check:
    """The enumerated expected update of ``method`` at pi_0 against its closed form for a
    one-prompt problem with 0/1 r_RM and lambda = 0; the row shows the coordinate where the two
    differ most, relative to the largest coordinate."""
    problem = check_problem(problem)
    group_size = check_int("group_size", group_size, 2)
    labels = np.asarray(problem.reward_rm)
    if (
        problem.num_prompts != 1
        or float(problem.kl_coef) != 0.0
        or not np.all(np.isin(labels, (0.0, 1.0)))
    ):
        raise ValueError(
            "`problem` must have one prompt, lambda = 0 and 0/1 rewards for the closed forms."
        )
    got = np.asarray(groups.expected_update(problem, method=method, group_size=group_size))
    want = _predicted(problem, method, group_size)
    scale = float(np.max(np.abs(want)))
    worst = int(np.argmax(np.abs(got - want)))
    deviation = float(np.max(np.abs(got - want))) / scale if scale > 0 else 0.0
    vacuous = "" if scale > 0 else "the gradient is 0: every estimator's update is 0"
    return Check(
        "Group update (0/1 rewards)",
        instance or f"Y={problem.num_outputs} {method} G={group_size}",
        float(got.ravel()[worst]),
        float(want.ravel()[worst]),
        "==",
        bool(deviation <= GROUP_RTOL),
        {
            "method": method,
            "group_size": group_size,
            "max_relative_deviation": deviation,
            "tolerance": f"{GROUP_RTOL:g} relative",
        },
        vacuous,
    )


def check_no_signal_probability(probs, correct, group_size: int, *, instance="") -> Check:
    """P(all G rewards of a group tie), enumerated over the multisets of G outputs, against
    p^G + (1 - p)^G with p the probability of a correct output."""
    probs, correct = _one_prompt(probs, correct)
    group_size = check_int("group_size", group_size, 1)
    if math.comb(len(probs) + group_size - 1, group_size) > groups.MAX_COMPOSITIONS:
        raise ValueError(f"`group_size` = {group_size} needs too many multisets of {len(probs)} "
                         f"outputs (limit {groups.MAX_COMPOSITIONS:,}).")  # fmt: skip
    counts = groups._compositions(group_size, len(probs))
    log_w = (math.lgamma(group_size + 1) - np.sum([[math.lgamma(c + 1) for c in row]
             for row in counts], axis=1) + counts @ np.log(probs))  # fmt: skip
    right = counts @ correct
    tied = (right == 0) | (right == group_size)
    measured = float(np.sum(np.exp(log_w)[tied]))
    bound = groups.no_signal_probability(float(probs @ correct), group_size)
    return Check(
        "GRPO no-signal probability",
        instance or f"Y={len(probs)} p={float(probs @ correct):.3g} G={group_size}",
        measured, bound, "==", math.isclose(measured, bound, rel_tol=GROUP_RTOL),
        {"group_size": group_size, "tolerance": f"{GROUP_RTOL:g} relative"},
    )  # fmt: skip


def check_grpo_success(probs, correct, beta: float, steps: int = 30, eps: float = 1e-8,
                       *, instance: str = "") -> list[Check]:  # fmt: skip
    """Iterated GRPO with a KL term to pi_0 = ``probs`` (:func:`theory_sim.groups.
    success_iterates`, arXiv 2503.06639's reference-KL variant): each step's policy computed as
    the exact maximiser of E_pi A - beta KL(pi || pi_0) by :func:`theory_sim.kl_optimal_policy`
    with the whitened reward A of the previous policy. Rows: its success probability after
    ``steps`` steps against the recurrence h (equal to 1e-12 relative), and that probability
    against p_ref (amplified: at least p_ref)."""
    probs, correct = _one_prompt(probs, correct)
    beta = check_float_scalar("beta", beta, positive=True)
    steps = check_int("steps", steps, 1)
    predicted = groups.success_iterates(float(probs @ correct), beta, steps, eps)
    policy = probs
    for _ in range(steps):
        p = float(policy @ correct)
        whitened = (correct - p) / math.sqrt(p * (1.0 - p) + eps)
        problem = Problem(np.log(probs), whitened, kl_coef=beta)
        policy = np.asarray(kl_optimal_policy(problem))
    measured = float(policy @ correct)
    label = instance or f"Y={len(probs)} p_ref={predicted[0]:.3g} beta={beta:g} n={steps}"
    details = {"beta": beta, "steps": steps, "eps": eps, "tolerance": "1e-12 relative"}
    return [
        Check("GRPO success recurrence (arXiv 2503.06639)", label, measured, float(predicted[-1]),
              "==", math.isclose(measured, predicted[-1], rel_tol=1e-12), details),
        Check("GRPO success amplification: p_n >= p_ref", label, measured, float(predicted[0]),
              ">=", measured >= predicted[0], {"beta": beta, "steps": steps}),
    ]  # fmt: skip


def check_beneficial_error(probs, reward_gt, reward_rm, target: float, *, instance="") -> Check:
    """The reward error that helps (arXiv 2604.25872, Section 3.3), on one prompt with
    pi_0 = ``probs`` and lambda = 0: t_target, the first time E_pi r_G >= ``target``, when the
    flow follows ``reward_rm`` (measured) against when it follows r_G itself (bound). Holds when
    the proxy is faster by more than the solver's TIME_RTOL; vacuous if r_G never gets there."""
    probs = check_probabilities("probs", probs, positive=True)
    r_gt, r_rm = (as_float_array(n, v) for n, v in (("reward_gt", reward_gt),
                                                    ("reward_rm", reward_rm)))  # fmt: skip
    if probs.ndim != 1 or r_gt.shape != probs.shape or r_rm.shape != probs.shape:
        raise ValueError(f"`probs`, `reward_gt` and `reward_rm` must be 1-D of one shape (one "
                         f"prompt); got {probs.shape}, {r_gt.shape} and {r_rm.shape}.")  # fmt: skip
    target = check_float_scalar("target", target)
    start = float(_host_expected_reward(probs, r_gt))
    if not start < target < float(r_gt.max()):
        raise ValueError(f"`target` must lie between E_pi0 r_G = {start:.6g} and max r_G = "
                         f"{float(r_gt.max()):.6g}; got {target:g}.")  # fmt: skip
    times = [time_to_gain(Problem(np.log(probs), r, r_gt), target - start) for r in (r_rm, r_gt)]
    details = {"target": target, "E_pi0 r_G": start, "speed-up": times[1] / times[0],
               "Acc-W": float(weighted_accuracy(probs, r_rm, r_gt)),
               "HAcc-W": float(harm_aware_accuracy(probs, r_rm, r_gt)),
               "tolerance": f"{TIME_RTOL:g} relative"}  # fmt: skip
    return Check(
        "Beneficial reward error: t(r_RM) < t(r_G)",
        instance or f"Y={len(probs)} pi0={np.round(probs, 3).tolist()} target={target:g}",
        times[0], times[1], "<=", bool(times[0] < times[1] * (1.0 - TIME_RTOL)), details,
    )  # fmt: skip


def check_preference_metrics(probs, reward_rm, reward_gt, *, instance="") -> Check:
    """Acc-W, HAcc-W and HAcc (:mod:`theory_sim.metrics`, arXiv 2604.25872) of one prompt by
    their sorted counts against the enumeration of the [Y, Y] preference pairs; the row shows the
    metric where the two differ most."""
    probs = check_probabilities("probs", probs)
    rm, gt = (as_float_array(n, v) for n, v in (("reward_rm", reward_rm),
                                                ("reward_gt", reward_gt)))  # fmt: skip
    if probs.ndim != 1 or rm.shape != probs.shape or gt.shape != probs.shape:
        raise ValueError(f"`probs`, `reward_rm` and `reward_gt` must be 1-D of one shape (one "
                         f"prompt); got {probs.shape}, {rm.shape} and {gt.shape}.")  # fmt: skip
    pairs = gt[:, None] > gt[None, :]  # (chosen, rejected)
    right = rm[:, None] > rm[None, :]
    harmless = (rm < _host_expected_reward(probs, rm))[None, :]
    found = {}
    for name, weighted, harm in (("Acc-W", True, False), ("HAcc-W", True, True),
                                 ("HAcc", False, True)):  # fmt: skip
        w = np.outer(probs, probs) if weighted else np.ones_like(pairs, dtype=np.float64)
        enumerated = float(np.sum(w * pairs * (right | (harm & harmless))) / np.sum(w * pairs))
        sorted_count = float(weighted_accuracy(probs, rm, gt) if not harm else
                             harm_aware_accuracy(probs, rm, gt, weighted=weighted))  # fmt: skip
        found[name] = (sorted_count, enumerated)
    worst = max(found, key=lambda n: abs(found[n][0] - found[n][1]))
    measured, bound = found[worst]
    return Check(
        "Acc-W, HAcc, HAcc-W: sorted = enumerated",
        instance or f"Y={len(probs)} worst={worst}",
        measured, bound, "==", abs(measured - bound) <= PAIR_ATOL,
        {**{n: v[0] for n, v in found.items()}, "tolerance": f"{PAIR_ATOL:g} absolute"},
    )  # fmt: skip


def _step_label(length, success, method, instance):
    return instance or f"L={length} V=2 p0={success:g} {method}"


def check_gradient_gap(length: int, success: float, *, instance: str = "") -> Check:
    """grad p against p (1 - p) Delta on :func:`theory_sim.steps.shared_token_problem`: the row
    shows the coordinate where the two differ most, relative to the largest coordinate."""
    problem = steps.shared_token_problem(length, 2, success)
    p, gap = steps.gradient_gap(problem)
    grad = np.asarray(problem.user_params(_jit_grad(problem, problem.params0)))
    want = p * (1.0 - p) * gap
    worst = int(np.argmax(np.abs(grad - want)))
    deviation = float(np.max(np.abs(grad - want)) / np.max(np.abs(want)))
    return Check(
        "Gradient Gap: grad p = p(1-p) Delta", _step_label(length, success, "", instance).strip(),
        float(grad[worst]), float(want[worst]), "==", bool(deviation <= GROUP_RTOL),
        {"p": p, "|Delta|": float(np.linalg.norm(gap)), "max_relative_deviation": deviation,
         "tolerance": f"{GROUP_RTOL:g} relative"},
    )  # fmt: skip


def check_improvement_threshold(
    length: int, success: float, method: str = "exact", group_size: int = 8, *, instance=""
) -> Check:
    """The one-step improvement threshold of ``method``'s expected update, found on the
    enumerated objective (:func:`theory_sim.steps.improvement_threshold`), against the closed
    form (:func:`theory_sim.steps.predicted_improvement_threshold`), divided by GRPO's w(p) for
    "grpo" (its expected update is w(p) times the gradient)."""
    problem = steps.shared_token_problem(length, 2, success)
    measured = steps.improvement_threshold(problem, method=method, group_size=group_size)
    bound = steps.predicted_improvement_threshold(length, success)
    scale = groups.group_weight(success, group_size) if method == "grpo" else 1.0
    bound /= scale
    holds = math.isclose(measured, bound, rel_tol=STEP_RTOL) if math.isfinite(bound) else (
        measured == bound)  # fmt: skip
    return Check(
        "One-step threshold (arXiv 2510.08539)", _step_label(length, success, method, instance),
        measured, bound, "==", bool(holds),
        {"method": method, "group_size": group_size, "w(p)": scale,
         "tolerance": f"{STEP_RTOL:g} relative"},
    )  # fmt: skip


def _critical(length, success, method, num_steps) -> steps.StepThreshold:
    """The critical rate of the shared-token family, computed once per settings for the rows
    that share it (the threshold rows and the scaling row at the same length)."""
    return _cached_critical(
        check_int("length", length), check_float_scalar("success", success, positive=True),
        check_choice("method", method, steps.STEP_METHODS), check_int("num_steps", num_steps),
    )  # fmt: skip


@functools.lru_cache(maxsize=16)
def _cached_critical(length: int, success: float, method: str, num_steps: int):
    problem = steps.shared_token_problem(length, 2, success)
    return steps.critical_learning_rate(problem, num_steps, method=method)


def check_step_threshold(
    length: int, success: float, method: str = "exact", num_steps: int = 1000, *, instance=""
) -> list[Check]:
    """Fixed-step runs of ``method``'s expected update on the shared-token family at the
    critical learning rate (:func:`theory_sim.steps.critical_learning_rate`): the run just below
    it converges (success >= CONVERGED after ``num_steps`` steps) and the run just above it
    collapses (success <= COLLAPSED)."""
    found = _critical(length, success, method, num_steps)
    label = _step_label(length, success, method, instance)
    details = {
        "critical rate": found.learning_rate,
        "below": found.below,
        "all fail from": found.all_fail,
        "num_steps": num_steps,
        "start": found.start,
    }
    if not math.isfinite(found.learning_rate):
        why = "no learning rate up to 1e3 makes the run fail"
        return [Check("Step threshold: below converges", label, found.success_below, CONVERGED,
                      ">=", False, details, why)]  # fmt: skip
    return [
        Check("Step threshold: below converges", label, found.success_below, CONVERGED, ">=",
              bool(found.success_below >= CONVERGED), details),
        Check("Step threshold: above collapses", label, found.success_above, COLLAPSED, "<=",
              bool(found.success_above <= COLLAPSED), details),
    ]  # fmt: skip


def check_step_scaling(
    short: int, long: int, success: float, method: str = "exact", num_steps: int = 1000
) -> Check:
    """The critical learning rate at response length ``long`` against that at ``short`` (same
    initial success rate): Suk & Duan's prediction that it shrinks with the length."""
    short, long = check_int("short", short), check_int("long", long)
    if long <= short:
        raise ValueError(f"`long` must exceed `short`; got short={short}, long={long}.")
    rates = [_critical(n, success, method, num_steps).learning_rate for n in (short, long)]
    finite = all(math.isfinite(r) for r in rates)
    details = {"method": method, "num_steps": num_steps}
    if finite:
        details["exponent"] = math.log(rates[1] / rates[0]) / math.log(long / short)
    return Check(
        "Critical step falls with L (arXiv 2510.08539)",
        f"L={long} vs L={short} V=2 p0={success:g} {method}", rates[1], rates[0], "<=",
        bool(rates[1] <= rates[0]), details,
        "" if finite else "no learning rate up to 1e3 makes a run fail at one of the lengths",
    )  # fmt: skip


def check_step_threshold_needs_sharing(length: int, success: float, high: float = 1e4) -> Check:
    """The same target and initial success rate under the tabular autoregressive policy (one
    softmax per prefix, :func:`theory_sim.steps.prefix_token_problem`): no 1,000-step run of the
    exact update at any of 64 fixed learning rates up to ``high`` ends below its start, and no
    single step up to 1e6 lowers p (the tilt argument in that function's docstring). Measured:
    the lowest final success rate over the rates, against the start."""
    high = check_float_scalar("high", high, positive=True)
    problem = steps.prefix_token_problem(length, 2, success)
    found = steps.critical_learning_rate(problem, 1000, high=high)
    one_step = steps.improvement_threshold(problem, high=1e6)
    lowest = float(np.min(found.finals))
    return Check(
        "No step threshold without shared parameters",
        _step_label(length, success, "exact", "") + " tabular AR", lowest, found.start, ">=",
        bool(lowest >= found.start and one_step == math.inf),
        {"one-step threshold": one_step, "critical rate": found.learning_rate, "high": high,
         "num_steps": 1000},
    )  # fmt: skip
