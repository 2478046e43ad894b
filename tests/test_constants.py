"""Each check's constants and wiring, recomputed independently in numpy from the trajectory.

A check that reports measured = max over saved times of (left side / right side) would still
"hold" on most instances if a constant were 10 times too generous, so these tests rebuild both
sides from the flow's saved probabilities with the formulas of theory.md and compare the
reported numbers to 1e-9 relative: a constant multiplied or divided by 2, a changed exponent, or
the wrong variance (r_RM against the evaluated reward, one prompt's against the mean over
prompts) changes them by far more.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import theory_sim as ts
import theory_sim.theorems.accuracy as theorem_5_module
import theory_sim.theorems.flat as flat
from theory_sim.rewards import theorem_5_models
from theory_sim.theorems import (
    RATIO_RTOL,
    TIME_RTOL,
    check_lemma_10,
    check_proposition_2,
    check_proposition_3,
    check_proposition_3_trajectory,
    check_proposition_4,
    check_theorem_4,
    check_theorem_5,
    check_theorem_6,
    proposition_4_conditions,
    proposition_4_y_bad,
    theorem_4_bound,
)
from theory_sim.theorems._common import _time_lower_bound_check, _upper_bound_check


def _var(p, r):
    mean = (p * r).sum(-1, keepdims=True)
    return (p * (r - mean) ** 2).sum(-1)


@pytest.fixture
def two_prompts(rng):
    """X = 2, r_RM and r_G far apart (different variances), lambda > 0."""
    logits = rng.normal(size=(2, 6))
    r_rm = rng.uniform(-1, 1, (2, 6))
    r_gt = 0.3 * rng.uniform(-1, 1, (2, 6))
    return ts.Problem(logits, r_rm, r_gt, kl_coef=0.1)


def test_proposition_3_bound_is_wired_to_the_variance_of_r_rm(two_prompts):
    problem = two_prompts
    gamma = 0.05
    check = check_proposition_3(problem, gamma, prompt=1)
    pi0 = np.exp(np.asarray(problem.ref_log_probs))
    var_rm = _var(pi0, np.asarray(problem.reward_rm))[1]
    assert abs(var_rm - _var(pi0, np.asarray(problem.reward_gt))[1]) > 0.05  # they differ
    hand = 2 * 2 * (1 - math.exp(-gamma / 2)) / math.sqrt(var_rm)
    assert check.bound == pytest.approx(hand, rel=1e-12)
    assert check.holds and check.measured > check.bound


def test_theorem_4_bound_uses_the_mean_variance_over_prompts(rng):
    logits = rng.normal(size=(3, 5))
    r_rm = rng.uniform(-1, 1, (3, 5)) * np.array([[1.0], [0.01], [0.3]])  # very different
    problem = ts.Problem(logits, r_rm, rng.uniform(-1, 1, (3, 5)), kl_coef=0.2)
    check = check_theorem_4(problem, 0.02, prompt=1)
    pi0 = np.exp(np.asarray(problem.ref_log_probs))
    mean_var = _var(pi0, r_rm).mean()
    factor = min(1 - math.exp(-0.02 / 9), 1 - math.exp(-7 / (3 * 0.2)))
    hand = factor / (8 * 1**2 * 1**2) * mean_var ** (-1 / 3)
    assert check.bound == pytest.approx(hand, rel=1e-12)
    assert check.details["mean_var0"] == pytest.approx(mean_var, rel=1e-12)


def test_proposition_2_ratio_recomputed(two_prompts):
    problem = two_prompts
    t_max, num_times, prompt = 30.0, 12, 0
    check = check_proposition_2(problem, prompt, t_max, num_times=num_times)
    save = np.concatenate([[0.0], np.geomspace(t_max * 1e-6, t_max, num_times - 1)])
    traj = ts.gradient_flow(problem, t_max, save)
    p = traj.probs[:, prompt]
    log_p0 = np.asarray(problem.ref_log_probs[prompt])
    r_kl = np.asarray(problem.reward_rm[prompt]) - 0.1 * (np.log(p) - log_p0)
    # grad of phi(theta; x) for the tabular policy: pi (r_KL - E_pi r_KL), no 1/X
    grad = p * (r_kl - (p * r_kl).sum(-1, keepdims=True))
    big_m = np.maximum(1.0, np.abs(r_kl).max(-1))
    rhs = 6.0 * big_m ** (1 / 3) * 1 * 1 * np.cbrt(_var(p, r_kl))
    assert check.measured == pytest.approx((np.linalg.norm(grad, axis=-1) / rhs).max(), rel=1e-9)
    assert check.holds


def test_proposition_3_proof_bounds_recomputed(two_prompts):
    problem = two_prompts
    prompt, num_times = 1, 16
    variance, displacement = check_proposition_3_trajectory(problem, prompt, num_times=num_times)
    pi0 = np.exp(np.asarray(problem.ref_log_probs[prompt]))
    var0 = _var(pi0, np.asarray(problem.reward_rm[prompt]))
    horizon = 2 * 2 / math.sqrt(var0)
    times = np.geomspace(horizon * 1e-6, 0.99 * horizon, num_times)
    traj = ts.gradient_flow(problem, times[-1], times)
    u = math.sqrt(var0) * times / (2 * 2)
    p = traj.probs[:, prompt]
    r_kl = np.asarray(problem.reward_rm[prompt]) - 0.1 * (np.log(p) - np.log(pi0))
    var_ratio = _var(p, r_kl) / (var0 / (1 - u) ** 2)
    theta = np.asarray(problem.internal_params(np.asarray(traj.params)))[:, prompt]
    shift = np.linalg.norm(theta - np.asarray(problem.params0[prompt]), axis=-1)
    assert variance.measured == pytest.approx(var_ratio.max(), rel=1e-9)
    assert displacement.measured == pytest.approx(
        (shift / (2 * np.log(1 / (1 - u)))).max(), rel=1e-9
    )
    # tight at t -> 0: the variance ratio starts at 1 (u = 0), so a smaller bound would fail
    assert variance.measured == pytest.approx(1.0, abs=1e-4) and variance.holds


def test_lemma_10_rate_recomputed():
    """pi_t(y) <= pi_0(y) exp(rate t) with rate = (4 + 2 lambda ln(1/min pi_0)) / |S|: the rate
    and the reported worst ratio, recomputed from the saved probabilities."""
    probs = np.array([1e-4, 0.5, 0.3, 0.2 - 1e-4])
    reward = np.array([1.0, -1.0, -1.0, -1.0])
    for lam in (0.0, 0.3):
        problem = ts.Problem(np.log(probs), reward, kl_coef=lam)
        check = check_lemma_10(problem, num_times=64)
        rate = 4 + 2 * lam * math.log(1 / probs.min())
        assert check.details["rate"] == pytest.approx(rate, rel=1e-12)
        times = np.geomspace(1e-4, 5.0, 64) / rate
        traj = ts.gradient_flow(problem, times[-1], times)
        worst = np.exp(np.log(traj.probs) - np.log(probs) - rate * times[:, None]).max()
        assert check.measured == pytest.approx(worst, rel=1e-9) and check.holds


def _y_bad_instance(size: int, mass: float):
    """|Y+| = ``size`` good outputs (r_G = r_RM = 1) sharing pi_0 mass 0.6, one Y_bad output the
    reward model likes (r_RM = 0.7, r_G = -1) with pi_0 mass ``mass``, and two bad ones."""
    probs = np.array([0.6 / size] * size + [mass, 0.2, 0.2 - mass])
    r_gt = np.array([1.0] * size + [-1.0, -1.0, -1.0])
    r_rm = np.array([1.0] * size + [0.7, -1.0, -1.0])
    return probs, r_gt, r_rm


@pytest.mark.parametrize(
    ("size", "mass", "kl_coef"),
    [(1, 1e-5, 0.0), (1, 1e-5, 1e-3), (2, 1e-8, 0.0), (2, 1e-8, 1e-4), (3, 1e-11, 1e-5)],
)
def test_proposition_4_with_y_bad_hand_computed(size, mass, kl_coef):
    """theory_sim's derived Y_bad condition, recomputed from its formulas with |Y+| = m in
    {1, 2, 3}: c(q) = (1 - rho)(delta - q beta)/m - (beta q^2 + lambda (L + 1/e)) / pi_0(Y+),
    s(q), Lemma 10's growth 4 + 2 lambda L, the least admissible q, the mass limit and the lambda
    limit. A changed constant anywhere in them, or a lost 1/m, moves one of these numbers far
    outside the tolerances (with m = 2 a lost 1/m halves the time bound)."""
    probs, r_gt, r_rm = _y_bad_instance(size, mass)
    gamma, m = 0.1, size
    v_g, v_rm = probs @ r_gt, probs @ r_rm
    rho = (v_g + gamma + 1) / 2
    delta = (1 - rho) * (1 - v_rm)  # every output of Y+ has r_RM = 1: no spread
    beta, log_inv, p0 = 0.7 - v_rm, np.log(1 / mass), 0.6

    def s(q):
        c = (1 - rho) * (delta - q * beta) / m - (beta * q**2 + kl_coef * (log_inv + 1 / np.e)) / p0
        return (1 / p0 - 1 / rho) / c

    growth = 4 + 2 * kl_coef * log_inv
    y_plus = list(range(size))
    found = proposition_4_y_bad(probs, r_gt, r_rm, gamma, y_plus, kl_coef)
    assert found.mass == mass and found.reward_gap == pytest.approx(beta, rel=1e-14)
    assert found.kl_limit == pytest.approx((1 - rho) * delta * p0 / (m * (log_inv + 1 / np.e)))
    # the least q with Q_0 exp(growth s(q)) <= q: equality at the root
    assert mass * np.exp(growth * s(found.cap)) == pytest.approx(found.cap, rel=1e-9)
    assert mass * np.exp(growth * s(found.cap)) <= found.cap * (1 + 1e-12)  # its safe side
    assert found.time_bound == pytest.approx(s(found.cap), rel=1e-12)
    q_max = found.cap * 1.5
    while s(q_max) > 0:  # walk to c(q) = 0, where s blows up
        q_max *= 1.01
    grid = np.geomspace(1e-14, q_max / 1.01, 400_001)
    room = grid * np.exp(-growth * np.where(s(grid) > 0, s(grid), np.inf))
    assert found.mass_limit == pytest.approx(room.max(), rel=1e-6)
    check = check_proposition_4(probs, r_gt, r_rm, gamma, y_plus, kl_coef)
    assert check.claim == "Proposition 4 (Y_bad)" and check.holds and not check.vacuous
    assert check.bound == found.time_bound and 0.1 < check.measured / check.bound < 1


R_GT = np.array([-0.8, -0.5, 0.0, 0.3, 0.9, 1.0])
THEOREM_5 = (np.array([0.3, 0.25, 0.2, 0.15, 0.1]), np.array([-0.6, -0.1, 0.2, 0.5, 0.9]))


@pytest.mark.parametrize(
    "run",
    [
        lambda **kw: check_theorem_5(*THEOREM_5, 0.2, 10.0, 0.0, **kw),
        lambda **kw: check_theorem_6(R_GT, 0.1, 30.0, 0.2, **kw),
    ],
    ids=["Theorem 5", "Theorem 6"],
)
def test_time_rows_scale_with_the_number_of_prompts(run):
    # |S| identical prompts: the flow of each runs |S| times slower (the objective averages over
    # prompts) and every time bound carries the factor |S|, so both sides of a time row triple;
    # accuracy and Var0 rows do not move. The slack of these bounds (6x and more) hides a bound
    # built for one prompt beside times measured for three, so only the ratio shows it.
    default, one, three = run(), run(num_prompts=1), run(num_prompts=3)
    assert [(c.measured, c.bound) for c in default] == [(c.measured, c.bound) for c in one]
    for a, b in zip(one, three, strict=True):
        factor = 3.0 if a.claim.endswith("time") else 1.0
        assert b.bound == pytest.approx(factor * a.bound, rel=1e-12), a.claim
        assert b.measured == pytest.approx(factor * a.measured, rel=1e-7), a.claim


def test_theorem_6_passes_its_construction_on():
    # with y_gamma and y_gamma' exchanged, Pi and Pi' exchange roles and so do their rows
    default = check_theorem_6(R_GT, 0.1, 30.0, 0.2)
    swapped = check_theorem_6(R_GT, 0.1, 30.0, 0.2, y_gamma=4, y_gamma_prime=5)
    rows = [(c.measured, c.bound) for c in swapped]
    assert rows[:3] == [(c.measured, c.bound) for c in default[3:6]]
    assert rows[3:6] == [(c.measured, c.bound) for c in default[:3]]
    assert rows[:3] != rows[3:6]


def _concordant_share(r_model, r_gt, weights):
    """Weighted share of unordered pairs that r_model orders like r_gt (ties must be ties)."""
    hits = total = 0.0
    for i in range(len(r_gt)):
        for j in range(i + 1, len(r_gt)):
            w = weights[i, j] + weights[j, i]
            hits += w * (np.sign(r_model[i] - r_model[j]) == np.sign(r_gt[i] - r_gt[j]))
            total += w
    return hits / total


def test_theorem_5_accuracy_rows_hand_computed(rng):
    # the fast model's accuracy and its bound, 2/|Y| for uniform pairs and D's mass on the pairs
    # that contain y_gamma under a given D, counted pair by pair; the default lambda is the fast
    # model's limit (so the fast time row is present)
    probs, r_gt = THEOREM_5
    models = theorem_5_models(probs, r_gt, 0.2, 10.0)
    rows = {c.claim: c for c in check_theorem_5(probs, r_gt, 0.2, 10.0)}
    fast = rows["Theorem 5: fast model accuracy"]
    assert fast.bound == 2 / 5
    assert fast.measured == pytest.approx(_concordant_share(models.fast, r_gt, np.ones((5, 5))))
    assert fast.details["kl_coef"] == models.fast_kl_limit
    assert "Theorem 5: fast model time" in rows
    weights = rng.uniform(size=(5, 5))
    rows = {c.claim: c for c in check_theorem_5(probs, r_gt, 0.2, 10.0, pair_weights=weights)}
    fast = rows["Theorem 5: fast model accuracy"]
    sym = weights + weights.T
    mass = (sym[models.y_gamma].sum() - sym[models.y_gamma, models.y_gamma]) / np.triu(sym, 1).sum()
    assert fast.bound == pytest.approx(mass, rel=1e-12)
    assert fast.measured == pytest.approx(_concordant_share(models.fast, r_gt, weights), rel=1e-12)
    assert rows["Theorem 5: slow model accuracy"].measured == pytest.approx(1.0, abs=1e-12)


def test_theorem_5_accuracy_rows_can_fail(monkeypatch):
    # models whose accuracy is off the theorem's values must fail both accuracy rows: the rows
    # compare to within round-off (1e-12), not to within a loose tolerance
    monkeypatch.setattr(theorem_5_module, "accuracy", lambda *args: 0.5)
    rows = {c.claim: c for c in check_theorem_5(*THEOREM_5, 0.2, 10.0, 0.0)}
    assert not rows["Theorem 5: slow model accuracy"].holds
    assert not rows["Theorem 5: fast model accuracy"].holds
    rows = {c.claim: c for c in check_theorem_5(*THEOREM_5, 0.2, 10.0, 0.0, fast_accuracy=0.6)}
    assert not rows["Theorem 5: fast model accuracy"].holds


def test_proposition_2_rows_can_fail_and_can_be_vacuous(monkeypatch):
    # its slack is 6 sqrt 2 at best, so a verdict threshold of 2 instead of 1 would pass every
    # real instance: a right-hand side 20 times too small must fail the row
    problem = ts.Problem(np.log(np.array([0.5, 0.3, 0.2])), np.array([0.1, -0.4, 0.9]), kl_coef=0.1)
    row = check_proposition_2(problem)
    assert row.status == "holds" and row.bound == 1.0 and 0 < row.measured < 1 / (6 * math.sqrt(2))
    real = flat.proposition_2_rhs
    monkeypatch.setattr(flat, "proposition_2_rhs", lambda *args: real(*args) / 20)
    failing = check_proposition_2(problem)
    assert failing.status == "fails" and failing.measured == pytest.approx(20 * row.measured)
    monkeypatch.undo()
    # a constant reward with lambda = 0: no gradient and a right-hand side of 0, nothing compared
    still = check_proposition_2(ts.Problem(np.log(np.array([0.5, 0.3, 0.2])), np.full(3, 0.4)))
    assert still.measured == 0.0 and still.status == "vacuous"


def test_lemma_10_rate_is_divided_by_the_number_of_prompts():
    # the objective averages over |S| prompts, so each prompt's flow runs |S| times slower: with
    # two identical prompts the rate halves (a rate multiplied by |S| would still hold: looser)
    probs = np.array([1e-4, 0.5, 0.3, 0.2 - 1e-4])
    reward = np.array([1.0, -1.0, -1.0, -1.0])
    problem = ts.Problem(np.log(np.stack([probs, probs])), np.stack([reward, reward]), kl_coef=0.3)
    rate = (4 + 2 * 0.3 * math.log(1 / probs.min())) / 2
    assert check_lemma_10(problem, num_times=16).details["rate"] == pytest.approx(rate, rel=1e-12)


def test_proposition_4_conditions_hand_computed_with_a_spread_in_y_plus():
    # |Y+| = 2 with different r_RM values, so delta carries the spread term:
    # rho = (V_G + gamma + 1) / (min_{Y+} r_G + 1), delta = (1 - rho)(max_{Y+} r_RM - V_RM) -
    # spread, kl_limit = pi_0(Y+)(1 - rho) delta / (8 |Y+| (2 ln(1/min pi_0) + 1/(2e))), and the
    # time bound 4 |S| |Y+| / ((1 - rho) delta) (1/pi_0(Y+) - 1/rho)
    probs = np.array([0.1, 0.15, 0.35, 0.4])
    r_gt = np.array([0.9, 0.8, -0.5, -0.2])
    r_rm = np.array([0.9, 0.7, -0.6, -0.3])
    gamma, members = 0.2, [0, 1]
    v_g, v_rm, mass = probs @ r_gt, probs @ r_rm, probs[members].sum()
    rho = (v_g + gamma + 1) / (0.8 + 1)
    delta = (1 - rho) * (0.9 - v_rm) - 0.2
    scale = 2 * math.log(1 / 0.1) + 1 / (2 * math.e)
    got = proposition_4_conditions(probs, r_gt, r_rm, gamma, members, num_prompts=3)
    assert not got.reasons and got.y_bad == ()
    assert got.rho == pytest.approx(rho, rel=1e-12) and got.delta == pytest.approx(delta, rel=1e-12)
    assert got.kl_limit == pytest.approx(mass * (1 - rho) * delta / (8 * 2 * scale), rel=1e-12)
    bound = 4 * 3 * 2 / ((1 - rho) * delta) * (1 / mass - 1 / rho)
    assert got.time_bound == pytest.approx(bound, rel=1e-12)


@pytest.mark.parametrize(
    ("helper", "relation"),
    [
        (lambda *a: _upper_bound_check("c", "i", *a, {}), "<="),
        (lambda *a: _upper_bound_check("c", "i", *a, {}, TIME_RTOL), "<="),
        (lambda *a: _time_lower_bound_check("c", "i", *a, {}), ">="),
    ],
)
def test_every_bound_row_holds_exactly_within_its_tolerance(helper, relation):
    """Every upper- and lower-bound row of the checks is built by these two helpers. Their
    tolerances are pinned here by value, not read from the library: 1e-6 relative, 100x the
    solver's measured error on times (under 5e-10 against the closed form, test_flow.py) and far
    above the round-off of the exact ratios. A row 5e-7 past its bound holds; 2e-6 past, fails."""
    assert TIME_RTOL == 1e-6 and RATIO_RTOL == 1e-6
    sign = 1.0 if relation == "<=" else -1.0
    inside, outside = 3.0 * (1 + sign * 5e-7), 3.0 * (1 + sign * 2e-6)
    assert helper(inside, 3.0).holds and helper(inside, 3.0).relation == relation
    assert not helper(outside, 3.0).holds
    assert helper(3.0, 3.0).holds and helper(3.0 * (1 - sign), 3.0).holds


def test_the_other_verdict_tolerances_are_pinned():
    """Lemma 9 allows 2e-5 relative (its closed form against the solver's dense derivative, which
    agree to 5e-8 on the check's instances: 400x room); Proposition 4's monotone rows allow
    1e-9 (1 + max |phi|) for round-off of saved states; Theorem 5's accuracy rows 1e-12, the
    round-off of a ratio of pair counts: a row 2e-12 away fails, 5e-13 away holds."""
    from theory_sim.theorems import dynamics

    assert dynamics.LEMMA_9_RTOL == 2e-5 and dynamics.MONOTONE_ATOL == 1e-9
    acc = next(
        c
        for c in check_theorem_5(*THEOREM_5, 0.2, 10.0, 0.0)
        if c.claim.endswith("slow model accuracy")
    ).measured
    for offset, holds in ((5e-13, True), (2e-12, False)):
        rows = check_theorem_5(*THEOREM_5, 0.2, 10.0, 0.0, slow_accuracy=acc + offset)
        (row,) = [c for c in rows if c.claim.endswith("slow model accuracy")]
        assert row.holds is holds and row.details["tolerance"] == 1e-12


def test_theorem_5_and_6_variance_rows_report_the_papers_bounds():
    # Theorem 5: Var0 of the slow model <= 1/T^2; Theorem 6: Var0 of the mismatched model
    # <= 8/T^2 (the verdicts follow from the reported bounds by the test above)
    rows = {c.claim: c for c in check_theorem_5(*THEOREM_5, 0.2, 10.0, 0.0)}
    assert rows["Theorem 5: slow model Var0"].bound == 1 / 10.0**2
    models = theorem_5_models(*THEOREM_5, 0.2, 10.0)
    assert rows["Theorem 5: fast model time"].bound == models.fast_time_bound
    assert rows["Theorem 5: slow model time"].bound == models.slow_time_bound
    variance_rows = [c for c in check_theorem_6(R_GT, 0.1, 30.0, 0.2) if c.claim.endswith("Var0")]
    assert len(variance_rows) == 2 and all(c.bound == 8 / 30.0**2 for c in variance_rows)


@pytest.mark.parametrize("check", [check_proposition_3, check_theorem_4])
def test_time_checks_measure_the_reward_they_are_given(check, two_prompts):
    # t_gamma of the evaluated reward: r_G by default, r_RM (or any table) when passed
    gamma = 0.02
    given = check(two_prompts, gamma, reward=two_prompts.reward_rm)
    default = check(two_prompts, gamma)
    assert given.measured == pytest.approx(
        ts.time_to_gain(two_prompts, gamma, reward=two_prompts.reward_rm), rel=1e-9
    )
    assert default.measured == pytest.approx(ts.time_to_gain(two_prompts, gamma), rel=1e-9)
    assert abs(given.measured / default.measured - 1) > 1e-3


@pytest.mark.parametrize(
    ("length", "jacobian", "kl_coef", "gamma", "mean_var0", "factor"),
    [
        # min{1 - e^(-gamma/9), 1 - e^(-7/(3 lambda))}: the gain term binds ...
        (3, 2.5, 0.0, 0.3, 1e-3, -math.expm1(-0.3 / 9)),
        (3, 2.5, 0.05, 0.3, 1e-3, -math.expm1(-0.3 / 9)),
        # ... or, for a large lambda, the KL term (7/(3 lambda) = 0.0467 < gamma/9 = 0.2)
        (2, 0.4, 50.0, 1.8, 0.2, -math.expm1(-7 / (3 * 50.0))),
    ],
)
def test_theorem_4_bound_hand_computed(length, jacobian, kl_coef, gamma, mean_var0, factor):
    # L, J != 1 and both branches of the minimum, so every constant and exponent shows
    expected = factor / (8 * length**2 * jacobian**2) / mean_var0 ** (1 / 3)
    got = theorem_4_bound(length, jacobian, kl_coef, gamma, mean_var0)
    assert got == pytest.approx(expected, rel=1e-13)
    assert theorem_4_bound(length, jacobian, kl_coef, gamma, 0.0) == math.inf
    assert theorem_4_bound(length, jacobian, kl_coef, gamma, 1.0) == pytest.approx(
        expected * mean_var0 ** (1 / 3), rel=1e-13
    )


def test_proposition_2_rhs_hand_computed():
    # 6 M^(1/3) L J Var^(1/3) with M = max(1, max |r_KL|): M below and above 1, L and J != 1,
    # numpy and JAX inputs
    assert flat.proposition_2_rhs(0.5, 3, 2.5, 8e-3) == pytest.approx(6 * 3 * 2.5 * 0.2, rel=1e-14)
    assert flat.proposition_2_rhs(8.0, 2, 0.5, 1e-3) == pytest.approx(
        6 * 2 * 2 * 0.5 * 0.1, rel=1e-14
    )
    got = flat.proposition_2_rhs(jnp.array([0.5, 8.0]), 2, 0.5, jnp.array([8e-3, 1e-3]))
    np.testing.assert_allclose(
        np.asarray(got), [6 * 2 * 0.5 * 0.2, 6 * 2 * 2 * 0.5 * 0.1], rtol=1e-14
    )
