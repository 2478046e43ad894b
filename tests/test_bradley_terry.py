import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import probability_rows, tied_rewards

import theory_sim as ts
from theory_sim.bradley_terry import fit_bradley_terry, normalize_rewards, sample_preferences
from theory_sim.rewards import max_monotone_variance, scale_prompts, variance_sweep, with_variance


@given(
    st.integers(2, 8).flatmap(
        lambda n: st.tuples(probability_rows(num_outputs=n), tied_rewards(n))
    ),
    st.floats(-12.0, -0.01),
)
def test_with_variance_is_exact_and_keeps_the_ranking(case, log_fraction):
    probs, reward = case
    sup = max_monotone_variance(probs, reward)
    if sup == 0 or float(ts.reward_variance(probs, reward)) < 1e-300:
        return  # constant on the support: only variance 0 is reachable
    target = sup * 10.0**log_fraction
    try:
        out = with_variance(probs, reward, target)
    except ValueError as err:  # merged levels near the supremum are refused, never returned
        assert "too close to the supremum" in str(err)
        return
    assert float(ts.reward_variance(probs, out)) == pytest.approx(target, rel=1e-9)
    assert float(ts.accuracy(out, reward)) == 1.0
    assert out.min() >= -1 and out.max() <= 1


def test_max_monotone_variance_hand_computed():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    # splits put mass 0.9, 0.7 or 0.4 above: 4 p (1 - p) is largest at p = 0.4: 0.96
    assert max_monotone_variance(probs, np.array([0.0, 1.0, 2.0, 3.0])) == pytest.approx(0.96)
    with pytest.raises(ValueError, match=r"must be below 0\.96"):
        with_variance(probs, np.array([0.0, 1.0, 2.0, 3.0]), 0.97)


def test_variance_sweep_and_prompt_scaling(rng):
    probs, r_gt = rng.dirichlet(np.ones(5)), rng.uniform(-1, 1, 5)
    sweep = variance_sweep(probs, r_gt, [1e-8, 1e-4, 0.1])
    np.testing.assert_allclose(ts.reward_variance(probs, sweep), [1e-8, 1e-4, 0.1], rtol=1e-9)
    np.testing.assert_array_equal(ts.accuracy(sweep, np.tile(r_gt, (3, 1))), 1.0)
    reward = rng.uniform(-1, 1, (6, 4))
    scaled, mask = scale_prompts(reward, 0.5, key=jax.random.key(3))
    assert mask.sum() == 3
    np.testing.assert_allclose(scaled[mask], 1e-3 * reward[mask])
    np.testing.assert_array_equal(scaled[~mask], reward[~mask])
    again, mask2 = scale_prompts(reward, 0.5, key=jax.random.key(3))
    np.testing.assert_array_equal(again, scaled)
    np.testing.assert_array_equal(mask, mask2)


def test_pairs_are_reproducible_distinct_and_on_policy_as_asked(rng):
    probs = rng.dirichlet(np.ones(5), size=3)
    r_gt = rng.uniform(-1, 1, (3, 5))
    a = sample_preferences(probs, r_gt, 4000, 0.75, key=jax.random.key(0))
    b = sample_preferences(probs, r_gt, 4000, 0.75, key=jax.random.key(0))
    c = sample_preferences(probs, r_gt, 4000, 0.75, key=jax.random.key(1))
    np.testing.assert_array_equal(a.first, b.first)
    assert not np.array_equal(a.first, c.first)
    assert np.all(a.first != a.second)
    # binomial(4000, 0.75): 5 standard deviations is 0.034
    assert abs(a.on_policy.mean() - 0.75) < 0.034


def test_on_policy_pairs_follow_pi_times_pi_given_distinct():
    probs = np.array([0.6, 0.3, 0.1])
    pairs = sample_preferences(probs, np.zeros(3), 60_000, 1.0, key=jax.random.key(7))
    joint = np.outer(probs, probs)
    np.fill_diagonal(joint, 0.0)
    joint /= joint.sum()
    counts = np.zeros((3, 3))
    np.add.at(counts, (pairs.first, pairs.second), 1.0)
    freq = counts / counts.sum()
    # each cell is a binomial proportion; 5 standard errors
    tol = 5 * np.sqrt(joint * (1 - joint) / 60_000)
    assert np.all(np.abs(freq - joint) <= tol + 1e-12)


def test_deterministic_labels_follow_the_ground_truth(rng):
    r_gt = np.array([0.0, 0.5, 0.5, 1.0])
    pairs = sample_preferences(
        np.full(4, 0.25), r_gt, 500, 0.0, key=jax.random.key(2), labels="deterministic"
    )
    diff = r_gt[pairs.first] - r_gt[pairs.second]
    np.testing.assert_array_equal(
        pairs.first_wins, np.where(diff > 0, 1, np.where(diff < 0, 0, 0.5))
    )


def test_fit_recovers_the_ground_truth_up_to_an_affine_map_as_pairs_grow():
    rng = np.random.default_rng(11)
    probs = rng.dirichlet(np.ones(6), size=3)
    r_gt = rng.uniform(-1, 1, (3, 6))

    def affine_misfit(scores):
        out = []
        for x in range(3):
            design = np.stack([r_gt[x], np.ones(6)], 1)
            coef, *_ = np.linalg.lstsq(design, scores[x], rcond=None)
            out.append(np.sqrt(np.mean((design @ coef - scores[x]) ** 2)) / coef[0])
        return np.mean(out)

    misfits = [
        affine_misfit(
            fit_bradley_terry(
                sample_preferences(probs, r_gt, n, 0.0, key=jax.random.key(5), beta=3.0), 3, 6
            )
        )
        for n in (300, 3000, 30000)
    ]
    # maximum likelihood error shrinks like 1/sqrt(pairs): each 10x should cut it by ~3
    assert misfits[0] > misfits[1] > misfits[2]
    assert misfits[2] < 0.05


def test_normalize_rewards_exact_moments(rng):
    probs = rng.dirichlet(np.ones(4), size=2)
    reward = rng.normal(size=(2, 4))
    out = normalize_rewards(reward, probs)
    mean = np.mean(np.sum(probs * out, -1))
    var = np.mean(np.sum(probs * (out - mean) ** 2, -1))
    assert mean == pytest.approx(0.0, abs=1e-14) and var == pytest.approx(1.0)
    with pytest.raises(ValueError, match="constant"):
        normalize_rewards(np.ones((2, 4)), probs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_pairs": 0}, "`num_pairs` must be an integer >= 1"),
        ({"on_policy_fraction": 1.5}, r"`on_policy_fraction` must be in \[0, 1\]"),
        ({"labels": "soft"}, "`labels` must be"),
        ({"beta": 0.0}, "`beta` must be > 0"),
        ({"init_probs": np.array([1.0, 0.0, 0.0])}, "at least two outputs"),
    ],
)
def test_bad_input(kwargs, message):
    args = {
        "init_probs": np.full(3, 1 / 3),
        "reward_gt": np.zeros(3),
        "num_pairs": 10,
        "on_policy_fraction": 0.5,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        sample_preferences(**args, key=jax.random.key(0))
