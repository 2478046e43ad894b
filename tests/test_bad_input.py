"""Bad input across modules: each call raises ValueError (TypeError for a wrong kind of object)
whose message names the argument, instead of a silent wrong answer, a raw error or a hang."""

import time

import numpy as np
import pytest

import theory_sim as ts
from theory_sim import bradley_terry, rewards
from theory_sim.theorems import check_proposition_1, proposition_3_bound, theorem_4_bound

PROBS = np.array([0.4, 0.3, 0.2, 0.1])  # sums to 0.9999999999999999 in float64
R_GT = np.array([0.0, 1.0, 2.0, 3.0])


def _pairs(**changes):
    fields = {
        "prompt": np.array([0, 0]),
        "first": np.array([0, 1]),
        "second": np.array([1, 2]),
        "first_wins": np.array([1.0, 0.0]),
        "on_policy": np.array([True, False]),
    }
    fields.update(changes)
    return bradley_terry.PreferencePairs(**fields)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # a constant reward with probabilities that miss 1 by round-off used to return zeros
        (lambda: rewards.with_variance(PROBS, np.ones(4), 0.1), ValueError, "`reward` is constant"),
        (lambda: proposition_3_bound(1, 0.01, float("nan")), ValueError, "`gamma`"),
        (lambda: proposition_3_bound(1, -0.01, 0.1), ValueError, "`var0`"),
        (lambda: proposition_3_bound(0, 0.01, 0.1), ValueError, "`num_prompts`"),
        (lambda: theorem_4_bound(0, 1.0, 0.0, 0.1, 0.01), ValueError, "`length`"),
        (lambda: theorem_4_bound(2, 0.0, 0.0, 0.1, 0.01), ValueError, "`jacobian`"),
        (lambda: theorem_4_bound(2, 1.0, -1.0, 0.1, 0.01), ValueError, "`kl_coef`"),
        (lambda: theorem_4_bound(2, 1.0, 0.0, float("nan"), 0.01), ValueError, "`gamma`"),
        (lambda: theorem_4_bound(2, 1.0, 0.0, 0.1, -1.0), ValueError, "`mean_var0`"),
        (lambda: check_proposition_1(PROBS, R_GT, {}, 2), ValueError, "`reward_models`"),
        (lambda: ts.default_save_ts(10.0, 1), ValueError, "`num`"),
        (lambda: ts.default_save_ts(10.0, -1), ValueError, "`num`"),
        (lambda: ts.Autoregressive(2, 1100), ValueError, "too large"),
        (lambda: ts.Autoregressive(2, 3).decode(2.7), ValueError, "`index`"),
        (lambda: ts.Autoregressive(2, 3).decode(8), ValueError, "`index`"),
        (lambda: bradley_terry.fit_bradley_terry("pairs", 1, 3), TypeError, "`pairs`"),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(first=np.array([-1, 1])), 1, 3),
            ValueError,
            "`pairs.first`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(prompt=np.array([0, 1])), 1, 3),
            ValueError,
            "`pairs.prompt`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(first_wins=np.array([5.0, 0.0])), 1, 3),
            ValueError,
            "`pairs.first_wins`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(
                _pairs(first_wins=np.array([np.nan, 0.0])), 1, 3
            ),
            ValueError,
            "`pairs.first_wins`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(second=np.array([1.0, 2.0])), 1, 3),
            ValueError,
            "`pairs.second`",
        ),
    ],
)
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_absurd_autoregressive_sizes_are_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"2\^1e\+06 sequences"):
        ts.Autoregressive(2, 10**6)
    assert time.perf_counter() - start < 1.0  # was minutes: the size itself was a huge sum


def test_legal_edge_inputs_still_work():
    assert ts.Autoregressive(1, 5).num_prefixes == 5  # V = 1: one prefix per level
    assert ts.Autoregressive(3, 4).num_prefixes == 1 + 3 + 9 + 27
    assert ts.Autoregressive(2, 3).decode(np.int64(5)) == (1, 0, 1)
    np.testing.assert_allclose(ts.default_save_ts(10.0, 2), [0.0, 10.0])
    fitted = bradley_terry.fit_bradley_terry(_pairs(), 1, 3, steps=10)
    assert fitted.shape == (1, 3) and np.all(np.isfinite(fitted))
