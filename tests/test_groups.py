"""Noisy verifiers and group estimators' expected updates: exact against closed forms and against
Monte Carlo, and the flows they define against the exact flow."""

import math

import jax
import numpy as np
import pytest

import theory_sim as ts
from theory_sim import groups, theorems
from theory_sim.groups import _compositions
from theory_sim.metrics import _host_expected_reward
from theory_sim.rewards import noisy_verifier, youden_j
from theory_sim.stories import group_exponents, verifier_phases

PROBS = np.array([0.05, 0.25, 0.3, 0.4])
CORRECT = np.array([1.0, 0.0, 0.0, 0.0])


def _million_groups(problem, params, g, seed, **options):
    """The mean of 10^6 sampled GRPO estimates (four batches) and its standard error."""
    total, square = 0.0, 0.0
    for i in range(4):
        est = np.asarray(ts.estimate_gradient(problem, params, key=jax.random.key(seed + i),
                                              num_samples=g, method="grpo",
                                              num_estimates=250_000, **options))  # fmt: skip
        total, square = total + est.sum(0), square + (est**2).sum(0)
    mean = total / 1e6
    return mean, np.sqrt((square / 1e6 - mean**2) / 1e6)


def _exact(problem):
    return np.asarray(ts.policy_gradient(problem, problem.user_params(problem.params0)))


@pytest.mark.parametrize("kl", [0.0, 0.3])
def test_unbiased_estimators_expect_the_exact_gradient_and_drgrpo_a_fraction(kl):
    problem = ts.Problem(np.log(PROBS), np.array([0.3, -0.2, 0.9, -1.0]), kl_coef=kl)
    params = np.log(PROBS) + np.array([0.1, -0.3, 0.2, 0.0])  # away from pi_0: r_KL != r_RM
    exact = np.asarray(ts.policy_gradient(problem, params))
    for method in ("reinforce", "rloo"):
        got = groups.expected_update(problem, params, method=method, group_size=6)
        np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-15)
    got = groups.expected_update(problem, params, method="drgrpo", group_size=6)
    np.testing.assert_allclose(got, 5 / 6 * exact, rtol=1e-12, atol=1e-15)


def test_grpo_on_binary_rewards_is_the_group_weight_times_the_gradient():
    problem = ts.Problem(np.log(PROBS), CORRECT)
    for g in (2, 5, 8):
        got = np.asarray(groups.expected_update(problem, method="grpo", group_size=g))
        np.testing.assert_allclose(got, groups.group_weight(0.05, g) * _exact(problem), rtol=1e-12)
    # p -> 0: w(p) -> sqrt(G - 1); and the weight is not constant (p = 0.5 differs)
    assert groups.group_weight(1e-9, 8) == pytest.approx(math.sqrt(7), rel=1e-7)
    assert abs(groups.group_weight(0.5, 8) - math.sqrt(7)) > 0.1


def test_group_identities():
    # the population std of k ones among G is sqrt(k (G - k)) / G
    for g in (2, 5, 8):
        for k in range(g + 1):
            group = np.r_[np.ones(k), np.zeros(g - k)]
            assert np.std(group) == pytest.approx(math.sqrt(k * (g - k)) / g, abs=1e-15)
    # P(all G rewards tie) = p^G + (1 - p)^G, against the multiset enumeration
    for g in (3, 6):
        counts = _compositions(g, len(PROBS))
        log_w = [math.lgamma(g + 1) - sum(math.lgamma(c + 1) for c in row)
                 + sum(c * math.log(p) for c, p in zip(row, PROBS, strict=True))
                 for row in counts]  # fmt: skip
        correct = counts @ CORRECT
        tied = (correct == 0) | (correct == g)
        assert np.sum(np.exp(log_w)[tied]) == pytest.approx(
            groups.no_signal_probability(0.05, g), rel=1e-12
        )
        assert np.sum(np.exp(log_w)) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(
    ("reward", "kl", "g"),
    [(CORRECT, 0.0, 8), (np.array([0.3, -0.2, 0.9, -1.0]), 0.2, 5)],
    ids=["binary", "general with KL"],
)
def test_grpo_expectation_matches_a_million_groups(reward, kl, g):
    # 10^6 sampled GRPO estimates: each coordinate of their mean within 4.5 standard errors of
    # the exact expectation (false alarm about 7e-6 per coordinate, 3e-5 per test)
    problem = ts.Problem(np.log(PROBS), reward, kl_coef=kl)
    params = np.log(PROBS) + np.array([0.2, 0.0, -0.1, 0.1])
    exact = np.asarray(groups.expected_update(problem, params, method="grpo", group_size=g))
    mean, se = _million_groups(problem, params, g, seed=0)
    assert np.all(np.abs(mean - exact) < 4.5 * se), (mean, exact, se)
    # and it is a different vector from the exact gradient (the test can tell them apart)
    grad = np.asarray(ts.policy_gradient(problem, params))
    assert np.any(np.abs(mean - grad) > 10 * se)


def test_expected_flows_against_the_exact_flow():
    problem = ts.Problem(np.log(PROBS), CORRECT)
    exact = ts.time_to_gain(problem, 0.5)
    rloo = groups.expected_time_to_gain(problem, 0.5, method="rloo", group_size=8)
    drgrpo = groups.expected_time_to_gain(problem, 0.5, method="drgrpo", group_size=8)
    assert rloo == pytest.approx(exact, rel=1e-8)
    assert drgrpo == pytest.approx(exact * 8 / 7, rel=1e-8)
    # GRPO on 0/1 rewards: the exact flow with time reparametrised by w(p(t)): its path in
    # probability space is the exact one, t_GRPO = integral of dt / w(p(t)) along the exact flow
    traj = ts.gradient_flow(problem, exact, save_ts=np.linspace(0, exact, 20001))
    p = traj.probs[:, 0]
    w = np.array([groups.group_weight(float(q), 8) for q in p])
    f = 1.0 / w
    integral = float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(traj.ts)))
    grpo = groups.expected_time_to_gain(problem, 0.5, method="grpo", group_size=8)
    assert grpo == pytest.approx(integral, rel=1e-6)
    flow = groups.expected_flow(problem, grpo, np.array([0.0, grpo]), method="grpo", group_size=8)
    assert flow.expected_gt[-1, 0] - flow.expected_gt[0, 0] == pytest.approx(0.5, abs=1e-7)


def test_noisy_verifier_is_affine_with_slope_j():
    assert noisy_verifier(CORRECT, 0.1, 0.2).tolist() == pytest.approx([0.8, 0.1, 0.1, 0.1])
    assert youden_j(0.1, 0.2) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="`false_positive` must be a rate in \\[0, 1\\]"):
        noisy_verifier(CORRECT, 1.5, 0.0)
    with pytest.raises(ValueError, match="`correct` must hold 0/1 correctness labels"):
        noisy_verifier(np.array([0.5, 1.0]), 0.1, 0.1)


@pytest.mark.parametrize("kl", [0.0, 0.05])
def test_noisy_verifier_phases_under_the_flow(kl):
    # Rate or Fate (arXiv 2601.04411), exactly: t_gamma(J) = t_gamma(1) / J with the clean flow's
    # lambda / J; J = 0 never moves; J < 0 lowers the ground truth
    clean = ts.Problem(np.log(PROBS), CORRECT, CORRECT, kl_coef=kl)
    for fpr, fnr in [(0.0, 0.0), (0.1, 0.2), (0.3, 0.1), (0.05, 0.6)]:
        j = youden_j(fpr, fnr)
        noisy = ts.Problem(np.log(PROBS), noisy_verifier(CORRECT, fpr, fnr), CORRECT, kl_coef=kl)
        scaled = clean.with_kl_coef(kl / j)
        assert ts.time_to_gain(noisy, 0.2) == pytest.approx(ts.time_to_gain(scaled, 0.2) / j,
                                                            rel=1e-6)  # fmt: skip
    flat = ts.Problem(np.log(PROBS), noisy_verifier(CORRECT, 0.4, 0.6), CORRECT, kl_coef=kl)
    assert ts.time_to_gain(flat, 0.01) == math.inf
    traj = ts.gradient_flow(flat, 10.0)
    np.testing.assert_allclose(traj.probs[-1], PROBS, rtol=1e-12)
    worse = ts.Problem(np.log(PROBS), noisy_verifier(CORRECT, 0.6, 0.5), CORRECT, kl_coef=kl)
    gain = ts.gradient_flow(worse, 20.0).expected_gt
    assert np.all(np.diff(gain) < 0)


@pytest.mark.parametrize("method", ["reinforce", "rloo"])
def test_sampled_estimators_under_the_noise_channel_scale_by_j(method):
    # E[estimate with noisy verdicts] = J E[estimate with clean labels] = J grad (unbiased
    # estimators): 2e5 estimates, every coordinate within 4.5 standard errors
    problem = ts.Problem(np.log(PROBS), CORRECT)
    fpr, fnr = 0.2, 0.3
    est = np.asarray(ts.estimate_gradient(problem, np.log(PROBS), key=jax.random.key(7),
                                          num_samples=4, method=method, num_estimates=200_000,
                                          verifier=(fpr, fnr)))  # fmt: skip
    se = est.std(0) / np.sqrt(len(est))
    target = youden_j(fpr, fnr) * _exact(problem)
    assert np.all(np.abs(est.mean(0) - target) < 4.5 * se)
    assert np.any(np.abs(est.mean(0) - _exact(problem)) > 10 * se)  # J = 0.5 is seen


def test_bad_group_arguments():
    problem = ts.Problem(np.log(PROBS), CORRECT)
    with pytest.raises(ValueError, match="`group_size` must be an integer >= 2 for grpo"):
        groups.expected_update(problem, method="grpo", group_size=1)
    with pytest.raises(ValueError, match="`method` must be one of"):
        groups.expected_update(problem, method="ppo")
    with pytest.raises(ValueError, match="`eps` must be"):
        groups.expected_update(problem, eps=-1.0)
    with pytest.raises(ValueError, match="limit is 2,000,000"):
        groups.expected_update(ts.Problem(np.zeros(40), np.linspace(-1, 1, 40)), group_size=12)
    with pytest.raises(ValueError, match="`verifier` needs 0/1 correctness labels"):
        ts.estimate_gradient(ts.Problem(np.zeros(3), np.array([0.5, 0.0, 1.0])), np.zeros(3),
                             key=jax.random.key(0), verifier=(0.1, 0.1))  # fmt: skip
    with pytest.raises(ValueError, match="`p` must be a probability"):
        groups.group_weight(1.5, 8)
    # the checks on one prompt name the argument that is not 0/1 or not of pi_0's shape
    with pytest.raises(ValueError, match="`correct`"):
        theorems.check_no_signal_probability(PROBS, np.array([0.5, 0.0, 0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="`probs` and `correct` must be 1-D of one shape"):
        theorems.check_grpo_success(PROBS, CORRECT[:3], 1.0)


def test_verifier_phase_diagram_has_three_phases():
    phases = verifier_phases(rates=(0.0, 0.3, 0.5, 0.7), horizon=10.0)
    learned, flat, falls = phases.j > 1e-12, np.abs(phases.j) < 1e-12, phases.j < -1e-12
    assert learned.sum() == 10 and flat.sum() == 3 and falls.sum() == 3
    np.testing.assert_allclose(phases.time[learned], phases.predicted[learned], rtol=1e-6)
    assert np.all(np.isinf(phases.time[~learned]))
    assert np.all(phases.gain[learned] > 0) and np.all(phases.gain[falls] < 0)
    assert np.all(phases.gain[flat] == 0.0)


def test_group_exponents_match_the_expected_update_predictions():
    # four points over two decades: Dr. GRPO's slope is the exact one (its update is 7/8 of
    # the gradient, so its times are 8/7 of the exact ones); GRPO's reward-scale slope is 0
    # (scale invariance, exact up to the solver); GRPO's concentration slope is within 0.03 of
    # the w(p_0) prediction (it neglects w's change along the path, about 1 % of a decade)
    conc = group_exponents("concentration", num_points=4, decades=2.0)
    scale = group_exponents("reward_scale", num_points=4, decades=2.0)
    np.testing.assert_allclose(conc.times["drgrpo"], conc.times["exact"] * 8 / 7, rtol=1e-6)
    np.testing.assert_allclose(scale.times["drgrpo"], scale.times["exact"] * 8 / 7, rtol=1e-6)
    assert abs(scale.fits["grpo"].slope) < 1e-6 and scale.predicted["grpo"] == 0.0
    assert abs(scale.fits["exact"].slope + 0.5) < 1e-6
    assert abs(conc.fits["grpo"].slope - conc.predicted["grpo"]) < 0.03
    assert conc.fits["grpo"].slope < -0.9  # the rare output keeps GRPO's landscape flat


def test_expected_update_under_a_noisy_verifier():
    # REINFORCE, RLOO and Dr. GRPO are linear in the rewards: J times the clean expectation.
    # GRPO's exact noisy expectation matches 10^6 sampled groups (4.5 standard errors) and is not
    # J times its clean one (0.483 of it here, J = 0.5); a noiseless verifier changes nothing.
    problem = ts.Problem(np.log(PROBS), CORRECT)
    j = youden_j(0.2, 0.3)
    for method in ("reinforce", "rloo", "drgrpo"):
        clean = np.asarray(groups.expected_update(problem, method=method, group_size=4))
        noisy = groups.expected_update(problem, method=method, group_size=4, verifier=(0.2, 0.3))
        np.testing.assert_allclose(noisy, j * clean, rtol=1e-13)
    clean = np.asarray(groups.expected_update(problem, method="grpo", group_size=4))
    noisy = np.asarray(groups.expected_update(problem, method="grpo", group_size=4,
                                              verifier=(0.2, 0.3)))  # fmt: skip
    same = groups.expected_update(problem, method="grpo", group_size=4, verifier=(0.0, 0.0))
    np.testing.assert_allclose(same, clean, rtol=1e-13)
    mean, se = _million_groups(problem, np.log(PROBS), 4, seed=20, verifier=(0.2, 0.3))
    assert np.all(np.abs(mean - noisy) < 4.5 * se)
    ratio = noisy / clean
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)  # still a multiple of the gradient
    assert abs(ratio[0] - j) > 0.01
    with pytest.raises(ValueError, match="`verifier`: `false_negative` must be a rate in \\[0, 1"):
        groups.expected_update(problem, verifier=(0.1, 1.5))
    with pytest.raises(ValueError, match="`verifier` needs lambda = 0"):
        groups.expected_update(problem.with_kl_coef(0.1), verifier=(0.1, 0.1))
    with pytest.raises(ValueError, match="`verifier` needs 0/1 correctness labels"):
        groups.expected_update(ts.Problem(np.log(PROBS), PROBS), verifier=(0.1, 0.1))


def test_grpo_success_recurrence_and_amplification():
    # the recurrence against each step's exact KL-regularised maximiser (check_grpo_success),
    # every iterate above p_ref, and the iterates settling at a fixed point of h
    for beta in (1.0, 4.0):
        rows = theorems.check_grpo_success(PROBS, CORRECT, beta, steps=40)
        assert all(r.status == "holds" for r in rows)
        p = groups.success_iterates(0.05, beta, 200)
        assert np.all(p[1:] > 0.05)
        assert abs(p[-1] - p[-2]) < 1e-12
    with pytest.raises(ValueError, match="`p_ref` must be a probability in \\(0, 1\\)"):
        groups.success_iterates(1.0, 1.0)


def _target_time(probs, reward, r_gt, target):
    """t at which E r_G first reaches ``target`` on the tabular flow d theta/dt = pi (r - E_pi r),
    by scipy's DOP853 with an event: a solver independent of theory_sim's."""
    from scipy.integrate import solve_ivp

    def field(t, theta):
        p = np.exp(theta - theta.max())
        p /= p.sum()
        return p * (reward - p @ reward)

    def hit(t, theta):
        p = np.exp(theta - theta.max())
        return p @ r_gt / p.sum() - target

    hit.terminal, hit.direction = True, 1.0
    sol = solve_ivp(field, (0.0, 1e6), np.log(probs), "DOP853", events=hit, rtol=1e-12,
                    atol=1e-14)  # fmt: skip
    return float(sol.t_events[0][0])


@pytest.mark.parametrize("star", [0.05, 0.1, 0.15])
def test_beneficial_error_rows_against_an_independent_solve(star):
    """arXiv 2604.25872's controlled experiment: the proxy reaches E r_G = 0.9 sooner than r_G
    (by 2,010x, 90x and 14x); both times agree with scipy to 1e-6, HAcc-W is 1 and Acc-W < 1."""
    probs, r_gt, r_rm = ts.rewards.beneficial_error_instance(star)
    row = theorems.check_beneficial_error(probs, r_gt, r_rm, 0.9)
    assert row.status == "holds"
    assert row.measured == pytest.approx(_target_time(probs, r_rm, r_gt, 0.9), rel=1e-6)
    assert row.bound == pytest.approx(_target_time(probs, r_gt, r_gt, 0.9), rel=1e-6)
    assert row.details["HAcc-W"] == 1.0 and row.details["Acc-W"] < 0.5
    assert row.relation == "<=" and row.instance.startswith("Y=5 ")
    assert set(row.details) == {"target", "E_pi0 r_G", "speed-up", "Acc-W", "HAcc-W", "tolerance"}
    assert row.details["speed-up"] == row.bound / row.measured
    # a proxy whose error is harmful (y_med above y*) never gets there: the row fails
    harmful = np.array([0.8, 1.0, -1.0, -1.0, -1.0])
    assert theorems.check_beneficial_error(probs, r_gt, harmful, 0.9).status == "fails"
    # the ground truth against itself is not faster: the row fails
    assert theorems.check_beneficial_error(probs, r_gt, r_gt, 0.9).status == "fails"
    with pytest.raises(ValueError, match="`target` must lie between"):
        theorems.check_beneficial_error(probs, r_gt, r_rm, 1.0)
    with pytest.raises(ValueError, match="`target` must lie between"):
        theorems.check_beneficial_error(
            probs, r_gt, r_rm, float(_host_expected_reward(probs, r_gt))
        )
    with pytest.raises(ValueError, match="must be 1-D of one shape"):
        theorems.check_beneficial_error(probs, r_gt, r_rm[:4], 0.9)
    with pytest.raises(ValueError, match="`star_prob` must be in"):
        ts.rewards.beneficial_error_instance(0.5)


def test_beneficial_error_instance_is_the_papers_configuration():
    """The reference code's configs (princeton-pli/imperfect-rewards, controlled_loglin_pg):
    initial logits log(p*), log(0.5) and three equal ones, r_G = (1, 0.8, -1, -1, -1) and the
    proxy (1, -1, -1, -1, -1); at p* = 0.05 the times to E r_G = 0.9 are 16.70 under the proxy
    and 33,564.7 under r_G (scipy's DOP853 agrees to 1e-9)."""
    probs, r_gt, r_rm = ts.rewards.beneficial_error_instance(0.05)
    np.testing.assert_allclose(np.log(probs), [-2.99573227355, -0.69314718056,
                                               *[-1.89711998489] * 3], rtol=1e-11)  # fmt: skip
    np.testing.assert_array_equal(r_gt, [1.0, 0.8, -1.0, -1.0, -1.0])
    np.testing.assert_array_equal(r_rm, [1.0, -1.0, -1.0, -1.0, -1.0])
    row = theorems.check_beneficial_error(probs, r_gt, r_rm, 0.9)
    assert row.measured == pytest.approx(16.70018043, rel=1e-6)
    assert row.bound == pytest.approx(33564.72913, rel=1e-6)


def test_preference_metric_rows_notice_a_wrong_count(monkeypatch):
    """The row holds on the seeded instance with ties, and fails when the sorted count is off by
    1e-9 (far below any pair's weight, far above the 1e-12 round-off allowance)."""
    probs, r_gt = ts.stories.counterexample_instance(0)
    labels = (r_gt >= np.sort(r_gt)[-2]).astype(np.float64)
    row = theorems.check_preference_metrics(probs, labels, r_gt)
    assert row.status == "holds" and row.relation == "==" and row.instance
    # each metric is the one named: Acc-W 0.619 (ties between labels are errors), HAcc-W 0.948
    # (the ties among the wrong answers are harmless), HAcc 0.933
    assert row.details["Acc-W"] == float(ts.weighted_accuracy(probs, labels, r_gt))
    assert row.details["HAcc-W"] == float(ts.harm_aware_accuracy(probs, labels, r_gt))
    assert row.details["HAcc"] == float(ts.harm_aware_accuracy(probs, labels, r_gt, weighted=False))
    assert row.details["Acc-W"] < 0.7 < row.details["HAcc"] < row.details["HAcc-W"]
    from theory_sim.theorems import verifiable

    real = verifiable.harm_aware_accuracy
    monkeypatch.setattr(verifiable, "harm_aware_accuracy", lambda *a, **k: real(*a, **k) + 1e-9)
    assert theorems.check_preference_metrics(probs, labels, r_gt).status == "fails"


def test_grpo_success_rows_state_their_relations_and_notice_a_small_deviation(monkeypatch):
    """The recurrence row is an equality at 1e-12 relative and the amplification row a lower
    bound; a recurrence off by 1e-10 relative (inside a looser 1e-9) makes the first row fail."""
    rows = theorems.check_grpo_success(PROBS, CORRECT, 1.0, steps=10)
    assert [r.relation for r in rows] == ["==", ">="]
    assert all(r.instance and r.status == "holds" for r in rows)
    assert rows[0].details["tolerance"] == "1e-12 relative"
    assert rows[1].measured > rows[1].bound == pytest.approx(0.05)
    real = groups.success_iterates
    monkeypatch.setattr(groups, "success_iterates", lambda *a, **k: real(*a, **k) * (1 + 1e-10))
    assert theorems.check_grpo_success(PROBS, CORRECT, 1.0, steps=10)[0].status == "fails"


def test_verifiable_rows_of_check():
    """The 48 rows ``theory-sim check`` runs on verifiable and imperfect rewards and discrete
    steps: each names its instance, states its relation and (equalities) its tolerance, and none
    fails."""
    from theory_sim.experiments import verifiable_checks

    rows = verifiable_checks(0)
    assert len(rows) == 48 and not [r for r in rows if r.status == "fails"]
    assert {r.claim for r in rows} == {
        "Noisy verifier: t(J) = t(1)/J", "Noisy verifier: J <= 0, no gain",
        "Group update (0/1 rewards)", "GRPO no-signal probability",
        "GRPO success recurrence (arXiv 2503.06639)", "GRPO success amplification: p_n >= p_ref",
        "Beneficial reward error: t(r_RM) < t(r_G)", "Acc-W, HAcc, HAcc-W: sorted = enumerated",
        "Gradient Gap: grad p = p(1-p) Delta", "One-step threshold (arXiv 2510.08539)",
        "Step threshold: below converges", "Step threshold: above collapses",
        "Critical step falls with L (arXiv 2510.08539)",
        "No step threshold without shared parameters",
    }  # fmt: skip
    for r in rows:
        assert r.instance and r.relation in ("==", "<=", ">=")
        assert r.relation != "==" or "tolerance" in r.details, r.claim
