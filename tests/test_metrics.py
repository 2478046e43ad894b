import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import finite, probability_rows, tied_rewards

import theory_sim as ts

# Round-off: every metric is a sum of at most a few dozen float64 terms of size <= 1.
TOL = 1e-12


@given(probability_rows(), st.data())
def test_variance_equals_half_expected_squared_pair_difference(p, data):
    r = data.draw(hnp.arrays(np.float64, p.shape, elements=finite))
    pairwise = 0.5 * np.sum(p[:, None] * p[None, :] * (r[:, None] - r[None, :]) ** 2)
    direct = np.sum(p * (r - np.sum(p * r)) ** 2)
    v = float(ts.reward_variance(p, r))
    assert v == pytest.approx(pairwise, abs=TOL)
    assert v == pytest.approx(direct, abs=TOL)


@given(probability_rows(), st.data(), st.floats(-1e3, 1e3, allow_nan=False))
def test_variance_scales_with_square_and_ignores_shift(p, data, c):
    r = data.draw(hnp.arrays(np.float64, p.shape, elements=finite))
    v = float(ts.reward_variance(p, r))
    assert float(ts.reward_variance(p, c * r)) == pytest.approx(c**2 * v, rel=1e-9, abs=1e-300)
    assert float(ts.reward_variance(p, r + 0.7)) == pytest.approx(v, abs=TOL)


def test_variance_is_accurate_near_a_point_mass():
    # pi = (1 - e, e) with e = 1e-13: Var = e (1 - e) (r1 - r2)^2 exactly; a naive E r^2 - (E r)^2
    # loses every digit here.
    e = 1e-13
    p = np.array([1 - e, e])
    v = float(ts.reward_variance(p, np.array([0.3, -0.7])))
    assert v == pytest.approx(e * (1 - e), rel=1e-3)
    assert float(ts.expected_reward(p, np.array([0.3, -0.7]))) == pytest.approx(0.3 - e, abs=1e-16)


def test_metrics_are_per_prompt_and_drop_axis_for_one_prompt(rng):
    p = rng.dirichlet(np.ones(5), size=(3, 4))
    r = rng.uniform(-1, 1, (4, 5))
    assert ts.expected_reward(p, r).shape == (3, 4)
    assert ts.reward_variance(p[0], r).shape == (4,)
    assert ts.reward_variance(p[0, 0], r[0]).shape == ()
    assert ts.entropy(p).shape == (3, 4)


def test_accuracy_hand_worked_cases_with_ties():
    gt = np.array([0.0, 1.0, 2.0])
    assert float(ts.accuracy(np.array([0.0, 0.5, 0.9]), gt)) == 1.0
    # a tie in r_RM where r_G is strict is wrong: pairs (0,1) ok, (0,2) ok, (1,2) tied -> 2/3
    assert float(ts.accuracy(np.array([0.0, 0.5, 0.5]), gt)) == pytest.approx(2 / 3)
    # a tie in r_G must be a tie in r_RM
    gt_tied = np.array([1.0, 1.0, 0.0])
    assert float(ts.accuracy(np.array([2.0, 2.0, -1.0]), gt_tied)) == 1.0
    assert float(ts.accuracy(np.array([2.0, 2.1, -1.0]), gt_tied)) == pytest.approx(2 / 3)
    # reversed order: every pair wrong
    assert float(ts.accuracy(-gt, gt)) == 0.0
    # everything tied in both: every pair right
    assert float(ts.accuracy(np.zeros(4), np.ones(4))) == 1.0


@given(st.integers(2, 7).flatmap(lambda n: st.tuples(tied_rewards(n), tied_rewards(n))))
def test_accuracy_matches_brute_force_pair_count(rewards):
    rm, gt = rewards
    pairs = list(itertools.combinations(range(len(rm)), 2))
    correct = sum(np.sign(rm[i] - rm[j]) == np.sign(gt[i] - gt[j]) for i, j in pairs)
    assert float(ts.accuracy(rm, gt)) == pytest.approx(correct / len(pairs), abs=TOL)


@given(
    st.integers(2, 7).flatmap(lambda n: st.tuples(tied_rewards(n), tied_rewards(n))),
    st.sampled_from(["exp", "cube", "affine", "arctan"]),
)
def test_accuracy_invariant_under_strictly_increasing_transforms(rewards, name):
    rm, gt = rewards
    transform = {
        "exp": np.exp,
        "cube": lambda x: x**3 + x,
        "affine": lambda x: 3.0 * x - 0.2,
        "arctan": np.arctan,
    }[name]
    assert float(ts.accuracy(transform(rm), gt)) == float(ts.accuracy(rm, gt))


def test_accuracy_pair_weights_and_on_policy(rng):
    rm = np.array([0.0, 1.0, 2.0, 3.0])
    gt = np.array([0.0, 1.0, 3.0, 2.0])  # only the pair (2, 3) is misordered
    w = np.zeros((4, 4))
    w[2, 3] = 1.0
    assert float(ts.accuracy(rm, gt, w)) == 0.0  # all weight on the wrong pair
    w[0, 1] = 3.0
    assert float(ts.accuracy(rm, gt, w)) == pytest.approx(0.75)
    # weights are symmetrised: putting the same weight on (3, 2) instead changes nothing
    assert float(ts.accuracy(rm, gt, w.T)) == pytest.approx(0.75)
    p = rng.dirichlet(np.ones(4))
    wrong = 2 * p[2] * p[3]
    total = 1.0 - np.sum(p**2)
    assert float(ts.on_policy_accuracy(p, rm, gt)) == pytest.approx(1 - wrong / total, rel=1e-12)


def test_accuracy_batched_rows_equal_row_by_row(rng):
    rm = rng.integers(0, 3, (5, 6)).astype(np.float64)
    gt = rng.integers(0, 3, (5, 6)).astype(np.float64)
    batched = np.asarray(ts.accuracy(rm, gt))
    rows = [float(ts.accuracy(rm[i], gt[i])) for i in range(5)]
    np.testing.assert_allclose(batched, rows, atol=TOL)


@given(
    st.integers(2, 40).flatmap(
        lambda n: st.tuples(tied_rewards(n), tied_rewards(n), probability_rows(num_outputs=n))
    ),
    st.integers(0, 39),
)
def test_sorted_count_equals_the_pair_table(data, zero):
    """The O(Y log^2 Y) count (default and on-policy weights) against the explicit [Y, Y] form,
    with ties in both rewards and a zero in pi."""
    rm, gt, p = data
    p = p.copy()
    if len(p) > 2:
        p[zero % len(p)] = 0.0
        p /= p.sum()
    table = np.outer(p, p)
    np.testing.assert_allclose(
        float(ts.on_policy_accuracy(p, rm, gt)), float(ts.accuracy(rm, gt, table)), atol=TOL
    )
    ones = np.ones((len(p), len(p)))
    np.testing.assert_allclose(
        float(ts.accuracy(rm, gt)), float(ts.accuracy(rm, gt, ones)), atol=TOL
    )


def test_accuracy_at_two_to_the_eighteen_outputs_has_its_exact_value():
    """Y = 2^18 (a [Y, Y] table would take 512 GiB): r_RM is r_G with k disjoint adjacent
    swaps and one block of m ties, so exactly k + m (m - 1) / 2 of the Y (Y - 1) / 2 pairs are
    wrong, under uniform pairs and under a uniform pi alike."""
    y, k, m = 2**18, 1000, 50
    gt = np.arange(y, dtype=np.float64)
    rm = gt.copy()
    swaps = np.arange(k) * 4 + 10
    rm[swaps], rm[swaps + 1] = gt[swaps + 1], gt[swaps]
    rm[-m:] = rm[-m]
    expected = 1.0 - (k + m * (m - 1) / 2) / (y * (y - 1) / 2)
    assert float(ts.accuracy(rm, gt)) == pytest.approx(expected, abs=1e-15)
    uniform = np.full(y, 1.0 / y)
    assert float(ts.on_policy_accuracy(uniform, rm, gt)) == pytest.approx(expected, abs=1e-13)


def _preference_pairs(p, rm, gt, weighted, harm_aware):
    """Acc-W / HAcc / HAcc-W by the definition: every ordered pair (c, r) with r_G(c) > r_G(r).
    The mean is taken relative to r_RM(0), so a constant r_RM has itself as its mean."""
    mean = rm[0] + math.fsum(p * (rm - rm[0])) / math.fsum(p)
    num = den = 0.0
    for c, r in itertools.permutations(range(len(p)), 2):
        if gt[c] > gt[r]:
            w = p[c] * p[r] if weighted else 1.0
            den += w
            num += w * (rm[c] > rm[r] or (harm_aware and rm[r] < mean))
    return num / den


@given(
    st.integers(2, 30).flatmap(
        lambda n: st.tuples(tied_rewards(n), tied_rewards(n), probability_rows(num_outputs=n))
    )
)
def test_preference_metrics_equal_the_pair_enumeration(data):
    """Acc-W, HAcc-W and HAcc (arXiv 2604.25872) by the O(Y log^2 Y) sorted count against the
    enumeration of preference pairs, with ties in both rewards (r_G ties are no pair, r_RM ties
    an error; a tie with the mean is not below it)."""
    rm, gt, p = data
    if len(np.unique(gt)) < 2:
        return
    for got, weighted, harm_aware in (
        (ts.weighted_accuracy(p, rm, gt), True, False),
        (ts.harm_aware_accuracy(p, rm, gt), True, True),
        (ts.harm_aware_accuracy(p, rm, gt, weighted=False), False, True),
    ):
        assert float(got) == pytest.approx(_preference_pairs(p, rm, gt, weighted, harm_aware),
                                           abs=TOL)  # fmt: skip
        if harm_aware:
            assert float(got) >= float(ts.weighted_accuracy(p, rm, gt)) - TOL or not weighted


def test_preference_metrics_on_the_beneficial_error_instance():
    """Hand-computed on the instance of arXiv 2604.25872's controlled experiment (pi_0(y*) =
    0.05): the 7 preference pairs are (y*, y_med), (y*, bad) x 3 and (y_med, bad) x 3 with
    weights 0.025, 0.0075 x 3 and 0.075 x 3; r_RM gets the first four right and ties the last
    three, whose rejected outputs lie below E_pi r_RM = -0.9, so every error is harmless."""
    pi = np.array([0.05, 0.5, 0.15, 0.15, 0.15])
    gt = np.array([1.0, 0.8, -1.0, -1.0, -1.0])
    rm = np.array([1.0, -1.0, -1.0, -1.0, -1.0])
    assert float(ts.weighted_accuracy(pi, rm, gt)) == pytest.approx(0.0475 / 0.2725, rel=1e-14)
    assert float(ts.harm_aware_accuracy(pi, rm, gt)) == 1.0
    assert float(ts.harm_aware_accuracy(pi, rm, gt, weighted=False)) == 1.0
    # bad outputs above the mean turn the three (y_med, bad) errors harmful: HAcc = 4 / 7
    rm_high = np.array([1.0, -1.0, 0.5, 0.5, 0.5])  # E r = -0.225: only y_med is below it
    assert float(ts.harm_aware_accuracy(pi, rm_high, gt, weighted=False)) == pytest.approx(4 / 7)
    # the ground truth itself is right on every pair
    assert float(ts.weighted_accuracy(pi, gt, gt)) == pytest.approx(1.0, rel=1e-14)


def test_preference_metrics_at_two_to_the_seventeen_outputs_have_their_exact_values():
    """Y = 2^17 (the pair enumeration would hold 2^33 pairs): r_RM is r_G with k disjoint
    adjacent swaps under a uniform pi, so Acc-W misses exactly k of the Y (Y - 1) / 2 preference
    pairs, and HAcc-W forgives the swaps whose rejected output (proxy reward i + 1) lies below
    the mean (Y - 1) / 2."""
    y, k = 2**17, 3000
    gt = np.arange(y, dtype=np.float64)
    rm = gt.copy()
    swaps = np.arange(k) * 40 + 7
    rm[swaps], rm[swaps + 1] = gt[swaps + 1], gt[swaps]
    pi = np.full(y, 1.0 / y)
    pairs = y * (y - 1) / 2
    assert float(ts.weighted_accuracy(pi, rm, gt)) == pytest.approx(1 - k / pairs, abs=1e-15)
    harmful = np.sum(swaps + 1 >= (y - 1) / 2)
    assert 0 < harmful < k
    assert float(ts.harm_aware_accuracy(pi, rm, gt)) == pytest.approx(1 - harmful / pairs,
                                                                      abs=1e-15)  # fmt: skip


def test_preference_metrics_invariances_and_batches(rng):
    """Acc-W is invariant under strictly increasing maps of r_RM, HAcc-W under positive affine
    ones (E_pi r_RM moves with them); rows of a batch equal the rows alone."""
    p = rng.dirichlet(np.ones(6), size=4)
    rm, gt = rng.normal(size=(4, 6)), rng.integers(0, 3, (4, 6)).astype(np.float64)
    gt[:, 0], gt[:, 1] = 0.0, 1.0
    acc_w = np.asarray(ts.weighted_accuracy(p, rm, gt))
    np.testing.assert_array_equal(acc_w, np.asarray(ts.weighted_accuracy(p, np.exp(rm), gt)))
    hacc_w = np.asarray(ts.harm_aware_accuracy(p, rm, gt))
    np.testing.assert_array_equal(hacc_w, np.asarray(ts.harm_aware_accuracy(p, 3 * rm - 1, gt)))
    rows = [float(ts.harm_aware_accuracy(p[i], rm[i], gt[i])) for i in range(4)]
    np.testing.assert_array_equal(hacc_w, rows)
    assert np.all(hacc_w >= acc_w)


@given(probability_rows(num_outputs=5), probability_rows(num_outputs=5))
def test_kl_nonnegative_and_zero_on_the_diagonal(p, q):
    assert float(ts.kl_divergence(p, q)) >= 0.0
    assert float(ts.kl_divergence(p, p)) == pytest.approx(0.0, abs=TOL)
    assert float(ts.entropy(p)) >= 0.0


def test_kl_and_entropy_with_zeros():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    assert float(ts.kl_divergence(p, q)) == pytest.approx(np.log(2.0))
    assert float(ts.kl_divergence(q, p)) == np.inf
    assert float(ts.entropy(p)) == pytest.approx(np.log(2.0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ts.reward_variance(np.array([0.5, 0.6]), np.zeros(2)), "`pi` must sum to 1"),
        (lambda: ts.reward_variance(np.array([1.5, -0.5]), np.zeros(2)), "non-negative"),
        (
            lambda: ts.reward_variance(np.array([0.5, 0.5]), np.zeros(3)),
            "`reward` must have 2 outputs",
        ),
        (lambda: ts.expected_reward(np.array([0.5, 0.5]), np.array([np.nan, 0])), "finite"),
        (lambda: ts.expected_reward(np.array([0.5, 0.5]), np.array([1, 0])), "floating-point"),
        (lambda: ts.expected_reward(np.array([0.5, 0.5]), np.array([1j, 0])), "floating-point"),
        (lambda: ts.accuracy(np.zeros(3), np.zeros(4)), "`reward_gt` must have shape"),
        (lambda: ts.accuracy(np.zeros(3), np.zeros(3), np.zeros((3, 3))), "positive weight"),
        (lambda: ts.accuracy(np.zeros(3), np.zeros(3), -np.ones((3, 3))), "non-negative"),
        (lambda: ts.accuracy(np.zeros(3), np.zeros(3), np.ones((2, 2))), "broadcastable"),
        (lambda: ts.on_policy_accuracy(np.array([1.0, 0.0]), np.zeros(2), np.zeros(2)), "two"),
        (lambda: ts.kl_divergence(np.array([0.5, 0.5]), np.array([1.0])), "`pi_ref` must"),
        (lambda: ts.weighted_accuracy(np.ones(2) / 2, np.zeros(2), np.ones(2)), "`reward_gt`"),
        (
            lambda: ts.weighted_accuracy(np.array([1.0, 0, 0]), np.zeros(3), np.arange(3.0)),
            "positive probability",
        ),
        (lambda: ts.harm_aware_accuracy(np.ones(2) / 2, np.zeros(3), np.ones(2)), "`reward_rm`"),
        (
            lambda: ts.harm_aware_accuracy(np.ones(2) / 2, np.zeros(2), np.eye(2)[0], weighted=1),
            "`weighted` must be True or False",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
