import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from per_sequence import gradient as per_sequence_gradient
from per_sequence import sequence_probs

import theory_sim as ts
from theory_sim.theorems import (
    check_proposition_2,
    check_theorem_4,
    fit_exponent,
    theorem_4_bound,
)


def random_ar_problem(seed, num_prompts, vocab, length, kl_coef=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    policy = ts.Autoregressive(vocab, length)
    params = rng.normal(size=(num_prompts, policy.num_prefixes, vocab))
    shape = (num_prompts, policy.num_sequences)
    return ts.Problem(
        params,
        scale * rng.uniform(-1, 1, shape),
        rng.uniform(-1, 1, shape),
        kl_coef=kl_coef,
        policy=policy,
    )


def test_sequence_probabilities_match_the_per_sequence_product(rng):
    policy = ts.Autoregressive(3, 3)
    params = rng.normal(size=(2, policy.num_prefixes, 3))
    log_probs = np.asarray(policy.log_probs(params))
    np.testing.assert_allclose(np.exp(log_probs), sequence_probs(params, 3, 3), rtol=1e-13)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-14)


@settings(max_examples=20)
@given(
    st.integers(0, 10**6),
    st.sampled_from([(2, 3), (3, 2), (2, 1), (4, 2)]),
    st.sampled_from([0.0, 0.2]),
)
def test_autodiff_gradient_equals_per_prefix_closed_form(seed, shape, kl_coef):
    vocab, length = shape
    problem = random_ar_problem(seed, 2, vocab, length, kl_coef)
    theta = np.random.default_rng(seed + 1).normal(size=problem.params0.shape)
    expected = per_sequence_gradient(
        theta,
        vocab,
        length,
        np.asarray(problem.reward_rm),
        np.asarray(problem.ref_log_probs),
        kl_coef,
    )
    np.testing.assert_allclose(ts.policy_gradient(problem, theta), expected, atol=1e-13)


@pytest.mark.parametrize(("vocab", "length"), [(2, 3), (3, 2), (2, 1)])
def test_prefix_marginals_sum_the_sequences_through_each_prefix(rng, vocab, length):
    """log pi(prefix) in level order against the sum of pi over the sequences it starts."""
    policy = ts.Autoregressive(vocab, length)
    probs = rng.dirichlet(np.ones(policy.num_sequences), size=2)
    got = np.exp(np.asarray(policy.prefix_log_marginals(np.log(probs))))
    sequences = policy.sequences()
    want = []
    for level in range(length):
        for index in range(vocab**level):  # prefixes of a level in lexicographic order
            prefix = np.unravel_index(index, (vocab,) * level) if level else ()
            starts = np.all(sequences[:, :level] == np.asarray(prefix, int), axis=1)
            want.append(probs[:, starts].sum(axis=1))
    np.testing.assert_allclose(got, np.stack(want, axis=1), rtol=1e-13)


def test_length_one_equals_tabular(rng):
    logits = rng.normal(size=(3, 5))
    r_rm, r_gt = rng.uniform(-1, 1, (2, 3, 5))
    tab = ts.Problem(logits, r_rm, r_gt, kl_coef=0.1)
    ar = ts.Problem(logits[:, None, :], r_rm, r_gt, kl_coef=0.1, policy=ts.Autoregressive(5, 1))
    np.testing.assert_allclose(ar.ref_log_probs, tab.ref_log_probs, atol=1e-15)
    np.testing.assert_allclose(
        ts.policy_gradient(ar, logits[:, None, :])[:, 0],
        ts.policy_gradient(tab, logits),
        atol=1e-15,
    )
    traj_tab = ts.gradient_flow(tab, 50.0)
    traj_ar = ts.gradient_flow(ar, 50.0)
    np.testing.assert_allclose(traj_ar.probs, traj_tab.probs, atol=1e-12)
    assert ts.time_to_gain(ar, 0.05, prompt=2) == pytest.approx(
        ts.time_to_gain(tab, 0.05, prompt=2), rel=1e-12
    )


def test_flow_agrees_with_a_hand_written_flow_for_v2_l3(rng):
    problem = random_ar_problem(7, 1, 2, 3, kl_coef=0.05)
    args = (2, 3, np.asarray(problem.reward_rm), np.asarray(problem.ref_log_probs), 0.05)
    theta, dt, t_end = np.asarray(problem.params0), 1e-2, 5.0
    for _ in range(round(t_end / dt)):  # classical RK4 on the per-sequence gradient
        k1 = per_sequence_gradient(theta, *args)
        k2 = per_sequence_gradient(theta + dt / 2 * k1, *args)
        k3 = per_sequence_gradient(theta + dt / 2 * k2, *args)
        k4 = per_sequence_gradient(theta + dt * k3, *args)
        theta = theta + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    traj = ts.gradient_flow(problem, t_end, save_ts=[t_end])
    # RK4 global error O(dt^4) ~ 1e-8 here; the adaptive solver is at rtol 1e-10
    np.testing.assert_allclose(traj.params[-1], theta, atol=1e-7)


def test_start_at_is_exact_for_tabular_and_autoregressive(rng):
    probs = rng.dirichlet(np.ones(16), size=3)
    for policy in (ts.Tabular(), ts.Autoregressive(2, 4), ts.Autoregressive(4, 2)):
        params, residual = ts.start_at(policy, probs)
        assert residual < 1e-12
        problem = ts.Problem(params, np.zeros((3, 16)), policy=policy)
        np.testing.assert_allclose(np.exp(problem.ref_log_probs), probs, rtol=1e-12)
    params, residual = ts.start_at(ts.Autoregressive(2, 4), probs[0])
    assert params.shape == (15, 2) and residual < 1e-12


def test_log_linear_fit_reports_its_residual(rng):
    features = rng.normal(size=(2, 6, 3))
    policy = ts.LogLinear(features)
    w_true = rng.normal(size=3)
    representable = np.exp(np.asarray(policy.log_probs(w_true)))
    w, residual = ts.start_at(policy, representable)
    assert residual < 1e-10
    np.testing.assert_allclose(w, w_true, atol=1e-9)
    _, residual = ts.start_at(policy, rng.dirichlet(np.ones(6), size=2))
    assert residual > 1e-3  # 10 free log-probabilities, 3 weights: not representable
    assert policy.jacobian_norm(w) == pytest.approx(
        max(np.linalg.svd(features[i], compute_uv=False)[0] for i in range(2))
    )


def test_log_linear_gradient_by_chain_rule(rng):
    features = rng.normal(size=(2, 5, 3))
    problem = ts.Problem(
        rng.normal(size=3), rng.uniform(-1, 1, (2, 5)), kl_coef=0.3, policy=ts.LogLinear(features)
    )
    w = rng.normal(size=3)
    logits = np.einsum("xyd,d->xy", features, w)
    # a tabular problem with the same reference policy, evaluated at the same logits
    tab = ts.Problem(np.asarray(problem.ref_log_probs), np.asarray(problem.reward_rm), kl_coef=0.3)
    expected = np.einsum("xy,xyd->d", np.asarray(ts.tabular_gradient(tab, logits)), features)
    np.testing.assert_allclose(ts.policy_gradient(problem, w), expected, atol=1e-14)


def test_sequence_indexing_round_trips():
    policy = ts.Autoregressive(3, 4)
    seqs = policy.sequences()
    assert seqs.shape == (81, 4)
    for i in (0, 1, 17, 80):
        assert policy.index(policy.decode(i)) == i
        assert tuple(seqs[i]) == policy.decode(i)
    assert policy.decode(5, alphabet="abc") == "aabc"
    with pytest.raises(ValueError, match="`sequence` must be 4 tokens"):
        policy.index((0, 3, 0, 0))
    with pytest.raises(ValueError, match="`index` must be in"):
        policy.decode(81)
    with pytest.raises(ValueError, match="`alphabet` must have 3"):
        policy.decode(0, alphabet="ab")


def test_two_to_the_twenty_sequences_enumerate_exactly():
    policy = ts.Autoregressive(2, 20)
    params = np.zeros((policy.num_prefixes, 2))
    params[0] = [0.3, -0.3]  # only the first token is biased
    reward = np.zeros(policy.num_sequences)
    reward[: policy.num_sequences // 2] = 1.0  # sequences starting with token 0
    problem = ts.Problem(params, reward, policy=policy)
    p_first = 1 / (1 + np.exp(-0.6))
    probs = np.exp(np.asarray(problem.ref_log_probs[0]))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(ts.expected_reward(probs, reward)) == pytest.approx(p_first, rel=1e-12)
    grad = np.asarray(ts.policy_gradient(problem, params))
    # only the root prefix moves: d/d theta_root = pi(a) (r(a) - E r) for the first token
    np.testing.assert_allclose(
        grad[0], [p_first * (1 - p_first), -p_first * (1 - p_first)], rtol=1e-10
    )
    assert np.abs(grad[1:]).max() < 1e-15


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ts.Autoregressive(0, 3), "`vocab_size` must be an integer >= 1"),
        (lambda: ts.Autoregressive(2, 0), "`length` must be an integer >= 1"),
        (lambda: ts.Autoregressive(2.0, 3), "`vocab_size` must be an integer"),
        (lambda: ts.Autoregressive(4, 20), r"too large to enumerate: about .* GiB .* limit of"),
        (
            lambda: ts.Problem(np.zeros((3, 2)), np.zeros(7), policy=ts.Autoregressive(2, 2)),
            r"`reward_rm` must have shape \(4,\)",
        ),
        (
            lambda: ts.Problem(np.zeros((4, 2)), np.zeros(4), policy=ts.Autoregressive(2, 2)),
            r"`init_logits` must have shape \(X, 3, 2\) or \(3, 2\)",
        ),
        (lambda: ts.LogLinear(np.zeros((2, 3, 4, 5))), "`features` must be 2-D or 3-D"),
        (lambda: ts.LogLinear(np.zeros((1, 3))), "at least 2 outputs"),
        (
            lambda: ts.Problem(np.zeros(2), np.zeros(4), policy=ts.LogLinear(np.zeros((4, 3)))),
            r"`init_logits` must have shape \(3,\)",
        ),
        (lambda: ts.start_at(ts.Tabular(), np.array([0.5, 0.5, 0.0])), "strictly positive"),
        (lambda: ts.start_at(ts.Autoregressive(2, 2), np.ones(3) / 3), "V\\^L = 4 outputs"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_theorem_4_bound_hand_computed():
    # min{1 - e^{-0.1}, 1} / (8 * 4 * 1) * (1e-3)^{-1/3} with L = 2, J = 1, lambda = 0, gamma = 0.9
    assert theorem_4_bound(2, 1.0, 0.0, 0.9, 1e-3) == pytest.approx((1 - np.exp(-0.1)) / 32 * 10.0)
    # with lambda = 7/3 the second term 1 - e^{-1} is the smaller one for gamma = 9
    assert theorem_4_bound(1, 2.0, 7 / 3, 9.0, 1.0) == pytest.approx((1 - np.exp(-1)) / 32)
    assert theorem_4_bound(1, 1.0, 0.0, 0.5, 0.0) == np.inf


@settings(max_examples=30)
@given(
    st.integers(0, 10**6),
    st.sampled_from([(1, 2, 3), (2, 3, 2), (1, 2, 4)]),
    st.sampled_from([0.0, 0.01, 0.5]),
    st.floats(0.0, 4.0),
    st.booleans(),
)
def test_theorem_4_holds_on_random_autoregressive_instances(
    seed, shape, kl_coef, log_scale, evaluate_gt
):
    problem = random_ar_problem(seed, *shape, kl_coef=kl_coef, scale=10.0**-log_scale)
    table = problem.reward_gt if evaluate_gt else problem.reward_rm
    p0 = np.exp(np.asarray(problem.ref_log_probs[0]))
    gamma = 0.3 * (np.asarray(table[0]).max() - p0 @ np.asarray(table[0]))
    check = check_theorem_4(problem, gamma, table, 0, t_max=1e10)
    assert check.holds, check


@pytest.mark.parametrize("kl_coef", [0.0, 0.2])
def test_proposition_2_holds_along_flows(kl_coef, rng):
    ar = random_ar_problem(3, 2, 2, 3, kl_coef=kl_coef)
    ll = ts.Problem(
        rng.normal(size=3),
        rng.uniform(-1, 1, (2, 6)),
        kl_coef=kl_coef,
        policy=ts.LogLinear(rng.normal(size=(2, 6, 3))),
    )
    for problem in (ar, ll):
        check = check_proposition_2(problem, prompt=1, t_max=1e3)
        assert check.holds and 0 < check.measured <= 1.0, check


def test_fit_exponent_recovers_a_known_power_law():
    var0 = np.geomspace(1e-8, 1e-1, 9)
    fit = fit_exponent(var0, 3.0 * var0**-0.4)
    assert fit.slope == pytest.approx(-0.4, abs=1e-12)
    assert fit.stderr < 1e-10 and fit.decades == pytest.approx(7.0)
    noisy = fit_exponent(var0, 3.0 * var0**-0.4 * np.exp(0.1 * np.sin(np.arange(9))))
    assert noisy.stderr > 1e-3
    with pytest.raises(ValueError, match="at least 3 finite points"):
        fit_exponent(var0[:3], [1.0, np.inf, 2.0])


def test_reward_scale_exponent_is_exactly_one_half():
    # r_RM = c r_G makes the flow a time rescaling by c, so t_gamma is proportional to Var0^(-1/2)
    from theory_sim.experiments import exponent_study

    fit = exponent_study("autoregressive", "reward_scale", num_points=5)
    assert fit.slope == pytest.approx(-0.5, abs=1e-7) and fit.decades == pytest.approx(6.0)


def test_problem_with_static_policy_compiles_once_per_shape(rng):
    import importlib

    flow_module = importlib.import_module("theory_sim.flow.crossing")
    flow_module._gain_run.clear_cache()
    for seed in range(3):
        problem = random_ar_problem(seed, 1, 2, 3, kl_coef=0.1 * seed)
        ts.time_to_gain(problem, 0.01, reward=problem.reward_rm)
    assert flow_module._gain_run._cache_size() == 1


def _shared_weights_problem(seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(3, 6, 3))
    r_rm, r_gt = rng.uniform(-1, 1, (3, 6)), rng.uniform(-1, 1, (3, 6))
    problem = ts.Problem(rng.normal(size=3), r_rm[:2], r_gt[:2], policy=ts.LogLinear(features[:2]))
    return problem, features, r_rm, r_gt


def test_held_out_theorem_4_matches_the_training_machinery():
    # a "held-out" prompt with a training prompt's features is that prompt: same t_gamma
    from theory_sim.theorems import check_theorem_4, check_theorem_4_held_out

    for seed in range(3):
        problem, features, _, r_gt = _shared_weights_problem(seed)
        gamma = (
            0.5
            * check_theorem_4_held_out(problem, ts.LogLinear(features[1]), r_gt[1], 2.0).details[
                "max_gain_seen"
            ]
        )
        if gamma <= 0:
            continue
        held = check_theorem_4_held_out(problem, ts.LogLinear(features[1]), r_gt[1], gamma)
        inside = check_theorem_4(problem, gamma, r_gt[:2], prompt=1, t_max=1e4)
        assert held.measured == pytest.approx(inside.measured, rel=1e-9)
        assert held.bound == pytest.approx(inside.bound, rel=1e-12)  # same J, same mean Var0


def test_held_out_theorem_4_holds_and_can_fail(monkeypatch):
    from theory_sim.theorems import check_theorem_4_held_out, flat

    problem, features, r_rm, _ = _shared_weights_problem(0)
    held = ts.LogLinear(features[2])
    peak = check_theorem_4_held_out(problem, held, r_rm[2], 2.0).details["max_gain_seen"]
    assert peak > 0.02  # the held-out prompt moves with the shared weights
    check = check_theorem_4_held_out(problem, held, r_rm[2], 0.5 * peak)
    assert check.status == "holds" and check.measured < 1e4
    # the mean variance is over S only: the held-out prompt's reward does not enter the bound
    pi0 = np.exp(np.asarray(problem.ref_log_probs))
    var_s = ((pi0 * (r_rm[:2] - (pi0 * r_rm[:2]).sum(-1, keepdims=True)) ** 2).sum(-1)).mean()
    assert check.details["mean_var0_S"] == pytest.approx(var_s, rel=1e-12)
    # a bound far too large is reported as a failure
    monkeypatch.setattr(flat, "theorem_4_bound", lambda *a: 1e6 * ts.theorems.theorem_4_bound(*a))
    assert check_theorem_4_held_out(problem, held, r_rm[2], 0.5 * peak).status == "fails"


def test_held_out_theorem_4_refuses_bad_input():
    from theory_sim.theorems import check_theorem_4_held_out

    problem, features, r_rm, _ = _shared_weights_problem(0)
    tabular = ts.Problem(np.zeros((2, 6)), r_rm[:2])
    with pytest.raises(ValueError, match="parameters shared across prompts"):
        check_theorem_4_held_out(tabular, ts.LogLinear(features[2]), r_rm[2], 0.1)
    with pytest.raises(ValueError, match="one prompt over the problem's 6 outputs"):
        check_theorem_4_held_out(problem, ts.LogLinear(features[:2]), r_rm[2], 0.1)
    with pytest.raises(ValueError, match="accept the problem's parameters"):
        check_theorem_4_held_out(problem, ts.LogLinear(features[2, :, :2]), r_rm[2], 0.1)
    with pytest.raises(ValueError, match="`reward` must have shape"):
        check_theorem_4_held_out(problem, ts.LogLinear(features[2]), r_rm[2, :5], 0.1)
    with pytest.raises(TypeError, match="`held_out` must be a parameterisation"):
        check_theorem_4_held_out(problem, features[2], r_rm[2], 0.1)
