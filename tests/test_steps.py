"""Discrete steps with verifiable rewards (theory_sim.steps, arXiv 2510.08539), against
independent numpy computations on the enumerated sequences."""

import itertools
import math

import jax
import numpy as np
import pytest

import theory_sim as ts
from theory_sim import groups, steps
from theory_sim.theorems import verifiable


def _table(problem):
    """(features [Y, d], labels [Y]) of a one-prompt log-linear problem, on the host."""
    return np.asarray(problem.policy.features)[0], np.asarray(problem.reward_rm)[0]


def _probs(features, theta):
    z = features @ theta
    e = np.exp(z - z.max())
    return e / e.sum()


def _numpy_gradient(features, labels, theta):
    """grad p = F^T (pi (r - p)): the log-linear policy gradient of the success rate."""
    pi = _probs(features, theta)
    return features.T @ (pi * (labels - pi @ labels))


def _numpy_run(problem, rate, num_steps):
    features, labels = _table(problem)
    theta = np.asarray(problem.params0, dtype=float).copy()
    for _ in range(num_steps):
        theta = theta + rate * _numpy_gradient(features, labels, theta)
    return float(_probs(features, theta) @ labels)


@pytest.mark.parametrize(("length", "vocab", "success"), [(3, 2, 0.2), (4, 3, 0.05), (6, 2, 0.7)])
def test_shared_token_problem_is_the_product_policy(length, vocab, success):
    """pi(o) = prod_t softmax(a + b_t)[o_t], enumerated independently, and success = p0."""
    problem = steps.shared_token_problem(length, vocab, success)
    features, labels = _table(problem)
    theta = np.asarray(problem.params0)
    a, b = theta[:vocab], theta[vocab:].reshape(length, vocab)
    per_position = np.exp(a + b) / np.exp(a + b).sum(axis=1, keepdims=True)
    seqs = list(itertools.product(range(vocab), repeat=length))
    direct = np.array([np.prod([per_position[t, o[t]] for t in range(length)]) for o in seqs])
    np.testing.assert_allclose(_probs(features, theta), direct, rtol=1e-12, atol=0)
    assert labels.sum() == 1.0 and seqs[int(np.argmax(labels))] == (0,) * (length - 1) + (1,)
    assert math.isclose(float(direct @ labels), success, rel_tol=1e-12)


def test_gradient_gap_identity_against_autodiff():
    """grad p (jax.grad of the enumerated success rate) = p (1 - p) Delta, and Delta is the
    difference of the conditional mean scores computed per sequence in numpy."""
    problem = steps.shared_token_problem(5, 2, 0.3, target=[1, 0, 1, 1, 0])
    features, labels = _table(problem)
    theta = np.asarray(problem.params0)
    p, gap = steps.gradient_gap(problem)
    pi = _probs(features, theta)
    scores = features - pi @ features  # grad log pi(o) of a log-linear policy
    want = (pi * labels) @ scores / p - (pi * (1 - labels)) @ scores / (1 - p)
    np.testing.assert_allclose(gap, want, rtol=1e-12, atol=1e-14)

    def success(w):
        return jax.nn.softmax(problem.policy.features[0] @ w) @ problem.reward_rm[0]

    grad = np.asarray(jax.grad(success)(problem.params0))
    np.testing.assert_allclose(grad, p * (1 - p) * gap, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("length", "success"), [(4, 0.2), (5, 0.6), (7, 0.05)])
def test_improvement_threshold_is_the_first_root(length, success):
    """One numpy step of 0.999 eta raises p, of 1.001 eta does not; eta equals the closed form."""
    problem = steps.shared_token_problem(length, 2, success)
    features, labels = _table(problem)
    theta = np.asarray(problem.params0)
    eta = steps.improvement_threshold(problem)
    w = _numpy_gradient(features, labels, theta)

    def p(s):
        return float(_probs(features, theta + s * w) @ labels)

    start = p(0.0)
    assert all(p(f * eta) > start for f in (0.01, 0.3, 0.999))
    assert p(1.001 * eta) < start
    assert math.isclose(eta, steps.predicted_improvement_threshold(length, success), rel_tol=1e-8)


def test_no_one_step_threshold_for_three_tokens_or_fewer():
    """With L <= 3 the last position's gap moves by -(L - 3) x >= 0: every step raises p."""
    for length in (2, 3):
        problem = steps.shared_token_problem(length, 2, 0.2)
        assert steps.improvement_threshold(problem, high=1e4) == math.inf
        assert steps.predicted_improvement_threshold(length, 0.2) == math.inf


def test_grpo_threshold_is_the_exact_one_over_its_weight():
    """GRPO's expected update is w(p) times the gradient for 0/1 rewards."""
    problem = steps.shared_token_problem(6, 2, 0.4)
    exact = steps.improvement_threshold(problem)
    for g in (2, 5, 8):
        grpo = steps.improvement_threshold(problem, method="grpo", group_size=g)
        assert math.isclose(grpo * groups.group_weight(0.4, g), exact, rel_tol=1e-8)
    drgrpo = steps.improvement_threshold(problem, method="drgrpo", group_size=4)
    assert math.isclose(drgrpo * 3 / 4, exact, rel_tol=1e-8)


def test_critical_learning_rate_against_numpy_runs():
    """Well below the band the numpy run converges; from the band's top on it collapses; and
    the bisected bracket is within rtol."""
    problem = steps.shared_token_problem(5, 2, 0.2)
    found = steps.critical_learning_rate(problem, 300, rtol=1e-3)
    assert found.below < found.learning_rate <= found.below * (1 + 1e-3)
    assert found.learning_rate <= found.all_fail < math.inf
    start = found.start
    assert math.isclose(start, 0.2, rel_tol=1e-12)
    assert _numpy_run(problem, 0.5 * found.learning_rate, 300) > 0.99
    assert _numpy_run(problem, 1.5 * found.all_fail, 300) < steps.FAIL_FRACTION * start
    assert found.success_below >= steps.FAIL_FRACTION * start > found.success_above


def test_critical_learning_rate_none_when_every_rate_converges():
    found = steps.critical_learning_rate(steps.shared_token_problem(2, 2, 0.2), 50, high=100.0)
    assert found.learning_rate == math.inf and found.success_above is None


def test_the_threshold_is_a_property_of_the_update_scale():
    """Dr. GRPO's expected update is (G - 1)/G times the gradient: on the rate grid scaled by
    G / (G - 1) its runs are the exact update's runs (up to round-off), so its critical rate is
    the exact one times G / (G - 1). (The grids must match: inside the band where failing and
    converging rates alternate, the first failure found depends on the grid.)"""
    problem = steps.shared_token_problem(5, 2, 0.2)
    exact = steps.critical_learning_rate(problem, 200, rtol=1e-6)
    dr = steps.critical_learning_rate(problem, 200, method="drgrpo", group_size=4, rtol=1e-6,
                                      low=0.1 * 4 / 3, high=1e3 * 4 / 3)  # fmt: skip
    assert math.isclose(dr.learning_rate, exact.learning_rate * 4 / 3, rel_tol=2e-6)


def test_collapse_probability_is_seeded_and_bracketed():
    problem = steps.shared_token_problem(4, 2, 0.2)
    rates = np.array([0.5, 300.0])
    one, ci = steps.collapse_probability(problem, rates, 200, key=jax.random.key(0), num_runs=16)
    again, _ = steps.collapse_probability(problem, rates, 200, key=jax.random.key(0), num_runs=16)
    np.testing.assert_array_equal(one, again)
    assert one[0] == 0.0 and one[1] > 0.5  # a small rate never fails, a huge one mostly does
    assert np.all((ci[:, 0] <= one) & (one <= ci[:, 1]))
    other = [steps.collapse_probability(problem, [300.0], 200, key=jax.random.key(s),
                                        num_runs=16)[0][0] for s in range(1, 4)]  # fmt: skip
    assert len({one[1], *other}) > 1  # different seeds, different runs


def test_step_rows_hold_and_fail_on_a_wrong_constant(monkeypatch):
    rows = [verifiable.check_gradient_gap(6, 0.2), verifiable.check_improvement_threshold(6, 0.2),
            verifiable.check_improvement_threshold(6, 0.2, "grpo"),
            *verifiable.check_step_threshold(6, 0.2, num_steps=400),
            verifiable.check_step_scaling(4, 6, 0.2, num_steps=400)]  # fmt: skip
    assert [r.status for r in rows] == ["holds"] * len(rows)
    # the tolerances, pinned by value (their justification is at their definition): 1e-8
    # relative for the one-step threshold, 0.99 and 0.01 for the runs either side
    assert verifiable.STEP_RTOL == 1e-8 and (verifiable.CONVERGED, verifiable.COLLAPSED) == (
        0.99, 0.01) and steps.FAIL_FRACTION == 0.5  # fmt: skip
    real = steps.predicted_improvement_threshold
    for offset, status in ((5e-9, "holds"), (2e-8, "fails")):
        monkeypatch.setattr(steps, "predicted_improvement_threshold",
                            lambda n, p, k=offset: real(n, p) * (1 + k))  # fmt: skip
        assert verifiable.check_improvement_threshold(6, 0.2).status == status
    monkeypatch.setattr(groups, "group_weight", lambda p, g: 1.0)
    assert verifiable.check_improvement_threshold(6, 0.2, "grpo").status == "fails"


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: steps.shared_token_problem(0), "length"),
        (lambda: steps.shared_token_problem(4, 1), "vocab"),
        (lambda: steps.shared_token_problem(4, 2, 1.0), "success"),
        (lambda: steps.shared_token_problem(4, 2, 0.2, target=[0, 1, 2, 0]), "target"),
        (lambda: steps.shared_token_problem(17, 2), "length"),
        (lambda: steps.gradient_gap(ts.Problem(np.zeros(3), np.array([0.0, 0.5, 1.0]))),
         "problem"),
        (lambda: steps.critical_learning_rate(steps.shared_token_problem(4), method="ppo"),
         "method"),
        (lambda: steps.critical_learning_rate(steps.shared_token_problem(4), rtol=1e-20), "rtol"),
        (lambda: steps.critical_learning_rate(steps.shared_token_problem(4), low=5.0, high=1.0),
         "high"),
        (lambda: steps.critical_learning_rate(steps.shared_token_problem(16), 10**6),
         "num_steps"),
        (lambda: steps.collapse_probability(steps.shared_token_problem(4), [-1.0],
                                            key=jax.random.key(0)), "learning_rates"),
        (lambda: steps.collapse_probability(steps.shared_token_problem(4), [0.0],
                                            key=jax.random.key(0)), "learning_rates"),
        (lambda: steps.collapse_probability(steps.shared_token_problem(16), [1.0], 10**4,
                                            key=jax.random.key(0), num_runs=64), "num_steps"),
        (lambda: steps.improvement_threshold(
            ts.Problem(np.zeros(2), np.array([0.0, 1.0]), kl_coef=0.1)), "problem"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_by_name(call, named):
    with pytest.raises(ValueError, match=f"`{named}`"):
        call()


def test_step_thresholds_story_agrees_with_its_parts():
    """The story's rows are the functions' results, its exponents are the log-log slopes, and
    a rate that cannot be reached leaves no NaN (a length without a failing rate is dropped
    from the fits)."""
    from theory_sim import stories

    study = stories.step_thresholds((3, 4, 6, 8), (0.2, 0.6), length=4, sampled_lengths=(4,),
                                    rates=(1.0, 300.0), num_steps=200, num_runs=8)  # fmt: skip
    direct = steps.critical_learning_rate(steps.shared_token_problem(6, 2, 0.2), 200)
    assert study.critical["exact"][2] == direct.learning_rate
    assert study.one_step["exact"][0] == math.inf  # L = 3
    np.testing.assert_allclose(study.one_step["exact"][1:], study.predicted_one_step[1:],
                               rtol=1e-8)  # fmt: skip
    finite = np.isfinite(study.critical["exact"])
    n, rate = study.lengths[finite], study.critical["exact"][finite]
    slope = np.polyfit(np.log(n), np.log(rate), 1)[0]
    assert math.isclose(study.slopes["exact"], slope, rel_tol=1e-9)
    for (a, b), value in study.local_slopes["exact"].items():
        ra, rb = (rate[list(n).index(x)] for x in (a, b))
        assert math.isclose(value, math.log(rb / ra) / math.log(b / a), rel_tol=1e-12)
    rows = study.rows()
    assert [r["L"] for r in rows] == [3, 4, 6, 8]
    assert rows[1]["sampled rloo half-fail"] == study.sampled_half["rloo"][0]


def test_prefix_token_problem_matches_the_shared_start_and_never_falls():
    """Same initial sequence probabilities as the shared family (both give each position's
    target token q), and along numpy's own fixed-step runs of the exact update p never falls,
    at any rate (the tilt argument of prefix_token_problem's docstring)."""
    shared, prefix = steps.shared_token_problem(5, 2, 0.3), steps.prefix_token_problem(5, 2, 0.3)
    np.testing.assert_allclose(np.exp(np.asarray(prefix.ref_log_probs)),
                               np.exp(np.asarray(shared.ref_log_probs)), rtol=1e-12)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(prefix.reward_rm), np.asarray(shared.reward_rm))
    success = jax.jit(steps._success)
    for rate in (1.0, 1e2, 1e4):
        theta = np.asarray(prefix.user_params(prefix.params0))  # [P, V], one prompt
        p = [float(success(prefix, theta[None]))]
        for _ in range(30):
            theta = theta + rate * np.asarray(ts.policy_gradient(prefix, theta))
            p.append(float(success(prefix, theta[None])))
        assert np.all(np.diff(p) >= -1e-15), (rate, p)
    assert steps.improvement_threshold(prefix, high=1e6) == math.inf
    row = verifiable.check_step_threshold_needs_sharing(5, 0.3, high=1e3)
    assert row.status == "holds"
    # the same row on the shared family would fail: its runs do fall
    assert steps.critical_learning_rate(shared, 1000, high=1e3).learning_rate < 1e3


def test_collapse_probability_counts_the_runs_of_sampled_optimize():
    """Each run is training.sampled_optimize from one of the split keys (same method, group,
    steps): the fractions are the counts of those runs that end below half their start."""
    from theory_sim import training

    problem = steps.shared_token_problem(4, 2, 0.3)
    key, runs = jax.random.key(3), 6
    # at 40 the two estimators fail on different runs (4 of 6 for RLOO, 6 of 6 for GRPO)
    for method, rate in (("grpo", 40.0), ("rloo", 40.0)):
        got, _ = steps.collapse_probability(problem, [rate], 120, key=key, method=method,
                                            num_samples=4, num_runs=runs)  # fmt: skip
        finals = [training.sampled_optimize(problem, rate, 120, key=k, method=method,
                                            num_samples=4, save_every=120).expected_gt[-1]
                  for k in jax.random.split(key, runs)]  # fmt: skip
        assert got[0] == np.mean(np.array(finals) < steps.FAIL_FRACTION * 0.3)


def test_gradient_gap_row_reports_its_deviation(monkeypatch):
    """With Delta made 1e-6 too large, the row fails, reports a relative deviation of 1e-6 and
    shows a coordinate of the largest |p (1 - p) Delta|; it asks for the success rate given."""
    row = verifiable.check_gradient_gap(5, 0.35)
    assert row.status == "holds" and row.instance == "L=5 V=2 p0=0.35"
    assert math.isclose(row.details["p"], 0.35, rel_tol=1e-12)
    real = steps.gradient_gap

    def off(problem):
        p, gap = real(problem)
        return p, gap * (1 + 1e-6)

    monkeypatch.setattr(steps, "gradient_gap", off)
    p, gap = real(steps.shared_token_problem(5, 2, 0.35))
    want = p * (1 - p) * gap
    row = verifiable.check_gradient_gap(5, 0.35)
    assert row.status == "fails"
    assert math.isclose(row.details["max_relative_deviation"], 1e-6 / (1 + 1e-6), rel_tol=1e-6)
    # the largest |p (1 - p) Delta| (two coordinates of opposite sign tie on this family)
    assert math.isclose(abs(row.bound), np.max(np.abs(want)) * (1 + 1e-6), rel_tol=1e-12)
