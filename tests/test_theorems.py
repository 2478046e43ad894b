import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory_sim as ts
from theory_sim.instances import random_problem
from theory_sim.theorems import (
    check_proposition_3,
    check_proposition_3_trajectory,
    proposition_3_bound,
)


def test_check_status_ratio_and_vacuity():
    from theory_sim.theorems import Check, tightest

    lower = Check("P", "a", 3.0, 2.0, ">=", True)
    assert (lower.ratio, lower.status, lower.vacuous) == (1.5, "holds", "")
    never = Check("P", "b", math.inf, 2.0, ">=", True)
    assert never.status == "vacuous" and "never reached" in never.vacuous
    assert never.ratio == math.inf
    assert Check("P", "c", 1.0, 0.0, ">=", True).status == "vacuous"  # a bound of 0
    assert Check("Q", "d", 1.0, math.inf, "<=", True).status == "vacuous"
    assert Check("Q", "e", 1.0, 2.0, "<=", False).status == "fails"
    assert math.isnan(Check("Q", "f", math.inf, math.inf, ">=", True).ratio)
    assert Check("P", "g", 2.5, 2.0, ">=", True).as_dict()["ratio"] == 1.25
    summary = tightest(
        [
            lower,
            never,
            Check("P", "g", 2.5, 2.0, ">=", True),
            Check("Q", "h", 0.5, 1.0, "<=", True),
            Check("Q", "i", 0.9, 1.0, "<=", True),
            Check("Q", "j", 1.5, 1.0, "<=", False),
            Check("R", "k", 0.98, 1.0, "==", True),
            Check("R", "l", 1.01, 1.0, "==", True),
            Check("Z", "m", 1e-18, 0.0, "<=", True),  # must not be positive: a bound of 0
            Check("Z", "n", 3e-17, 0.0, "<=", True),
            Check("Z", "o", 0.0, 0.0, "<=", True),
        ]
    )
    assert summary["P"] == {
        "relation": ">=",
        "holds": 2,
        "fails": 0,
        "vacuous": 1,
        "tightest": 1.25,
        "of": "ratio",
    }
    # no ratio to a bound of 0: the largest measured value instead
    assert summary["Z"]["of"] == "measured" and summary["Z"]["tightest"] == 3e-17
    assert summary["Q"]["tightest"] == 0.9 and summary["Q"]["fails"] == 1  # failures not ranked
    assert summary["R"]["tightest"] == pytest.approx(0.02)


def test_proposition_3_bound_hand_computed():
    # 2 |S| (1 - e^{-gamma/2}) / sqrt(Var0) with |S| = 3, gamma = 0.4, Var0 = 0.01
    assert proposition_3_bound(3, 0.01, 0.4) == pytest.approx(60 * (1 - math.exp(-0.2)))
    assert proposition_3_bound(1, 0.0, 0.4) == math.inf


def test_proposition_3_on_a_two_output_instance():
    # r_RM = (0.01, -0.01) under pi_0 = (1/2, 1/2): Var0 = 1e-4, bound = 200 (1 - e^{-gamma/2})
    problem = ts.Problem(np.zeros(2), np.array([0.01, -0.01]))
    check = check_proposition_3(problem, 0.005, reward=problem.reward_rm[0])
    assert check.bound == pytest.approx(200 * (1 - math.exp(-0.0025)))
    assert check.holds and check.measured >= check.bound
    assert check.details["var0"] == pytest.approx(1e-4)


# Shapes and lambdas are drawn from small sets so each shape compiles once.
SHAPES = [(1, 2), (1, 3), (2, 4), (3, 5), (1, 8), (2, 16)]


@settings(max_examples=300)
@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from(SHAPES),
    kl_coef=st.sampled_from([0.0, 1e-3, 0.05, 0.5]),
    log_scale=st.floats(0.0, 5.0),
    frac=st.floats(0.01, 1.0),
    evaluate_gt=st.booleans(),
)
def test_proposition_3_holds_on_random_instances(
    seed, shape, kl_coef, log_scale, frac, evaluate_gt
):
    problem = random_problem(
        *shape, key=jax.random.key(seed), kl_coef=kl_coef, logit_std=2.0, rm_scale=10.0**-log_scale
    )
    prompt = seed % shape[0]
    table = problem.reward_gt if evaluate_gt else problem.reward_rm
    row = np.asarray(table[prompt])
    p0 = np.exp(np.asarray(problem.ref_log_probs[prompt]))
    gamma = frac * (row.max() - p0 @ row)
    check = check_proposition_3(problem, gamma, table, prompt, t_max=1e10)
    assert check.holds, check


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_proof_bounds_hold_and_are_tight_at_the_start(kl_coef):
    problem = random_problem(2, 6, key=jax.random.key(3), kl_coef=kl_coef, rm_scale=0.1)
    variance, displacement = check_proposition_3_trajectory(problem, prompt=1)
    assert variance.holds and displacement.holds
    # at t -> 0 the variance bound is attained (Var_{pi_0}[r_KL] = Var0), so the ratio is ~1
    assert variance.measured == pytest.approx(1.0, abs=1e-3)
    assert 0 < displacement.measured <= 1.0


def test_rewards_outside_the_unit_interval_are_refused():
    problem = ts.Problem(np.zeros(3), np.array([2.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match=r"assumes rewards in \[-1, 1\].*`reward_rm` spans"):
        check_proposition_3(problem, 0.1)
    ok = ts.Problem(np.zeros(3), np.array([0.5, 0.0, -1.0]))
    with pytest.raises(ValueError, match=r"`reward` spans \[-3, 0\]"):
        check_proposition_3(ok, 0.1, reward=np.array([-3.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="`gamma` must be > 0"):
        check_proposition_3(ok, 0.0)
