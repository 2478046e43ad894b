"""Lemma 9 (d pi/dt in closed form) and the monotone quantities of Proposition 4's proof.

Each check is run where it holds and, with one thing changed, where it must fail: a check that
cannot fail tests nothing.
"""

import dataclasses

import jax
import numpy as np
import pytest

import theory_sim as ts
from theory_sim.instances import random_problem
from theory_sim.theorems import check_lemma_9, check_monotone_ascent, dynamics, lemma_9_rate

RATE = dynamics._lemma_9_rate  # what check_lemma_9 calls, before any monkeypatch


def test_lemma_9_rate_hand_computed_on_two_outputs():
    # pi = (p, 1 - p), r = (a, b), lambda = 0: d pi_1/dt = 2 (a - b) p^2 (1 - p)^2 / |S|
    # (the softmax of d = theta_1 - theta_2 with dd/dt = 2 (a - b) p (1 - p) / |S|)
    p, a, b, num_prompts = 0.3, 0.8, -0.4, 3
    log_probs = np.log([p, 1 - p])
    rate = np.asarray(lemma_9_rate(log_probs, log_probs, np.array([a, b]), 0.0, num_prompts))
    expected = 2 * (a - b) * p**2 * (1 - p) ** 2 / num_prompts
    np.testing.assert_allclose(rate, [expected, -expected], rtol=1e-14)
    # with lambda > 0, r_KL = r - lambda log(pi / pi_0): at pi_0' with log ratio (u, v)
    lam, ref = 0.5, np.log([0.6, 0.4])
    r_kl = np.array([a, b]) - lam * (log_probs - ref)
    rate = np.asarray(lemma_9_rate(log_probs, ref, np.array([a, b]), lam, 1))
    expected = 2 * (r_kl[0] - r_kl[1]) * p**2 * (1 - p) ** 2
    np.testing.assert_allclose(rate, [expected, -expected], rtol=1e-13)


@pytest.mark.parametrize(("shape", "lam"), [((3, 4), 0.0), ((3, 4), 0.1), ((2, 10), 1.0)])
def test_lemma_9_holds_against_autodiff_through_the_solver(shape, lam):
    problem = _problem(shape, lam)
    check = check_lemma_9(problem)
    assert check.status == "holds", check
    assert check.details["max_relative_deviation"] < dynamics.LEMMA_9_RTOL


def _problem(shape, lam, scale=1.0):
    return random_problem(*shape, key=jax.random.key(11), kl_coef=lam, rm_scale=scale)


@pytest.mark.parametrize(
    "mutant",
    [
        lambda lp, ref, r, lam, s: 2.0 * RATE(lp, ref, r, lam, s),  # constant doubled
        lambda lp, ref, r, lam, s: RATE(lp, ref, r, lam, 1),  # 1/|S| dropped
        lambda lp, ref, r, lam, s: RATE(lp, ref, r, 0.0, s),  # r_RM for r_KL
    ],
    ids=["times 2", "without 1/|S|", "r_RM instead of r_KL"],
)
def test_lemma_9_check_fails_on_a_wrong_formula(monkeypatch, mutant):
    problem = _problem((3, 4), 0.1)
    monkeypatch.setattr(dynamics, "_lemma_9_rate", mutant)
    assert check_lemma_9(problem).status == "fails"


def test_lemma_9_refuses_what_it_cannot_check():
    flat = ts.Problem(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="zero reward variance at every prompt"):
        check_lemma_9(flat)
    policy = ts.LogLinear(np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="tabular"):
        check_lemma_9(ts.Problem(np.zeros(2), np.array([1.0, 0.0, -1.0]), policy=policy))


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_phi_never_falls_and_r_rm_stays_above_its_start(lam):
    problem = _problem((2, 10), lam, scale=0.5)
    for prompt in (0, 1):
        rows = check_monotone_ascent(problem, prompt)
        assert [r.status for r in rows] == ["holds", "holds"], rows
        assert rows[0].details["phi_end"] > rows[0].details["phi_0"]


def test_monotone_check_fails_when_the_flow_runs_backwards(monkeypatch):
    # the same trajectory read backwards in time: phi then falls, and so does E r_RM
    problem = _problem((2, 10), 0.3, scale=0.5)
    real = dynamics.gradient_flow

    def backwards(*args, **kwargs):
        traj = real(*args, **kwargs)
        return dataclasses.replace(
            traj, expected_rm=traj.expected_rm[::-1], kl=traj.kl[::-1], probs=traj.probs[::-1]
        )

    monkeypatch.setattr(dynamics, "gradient_flow", backwards)
    assert [r.status for r in check_monotone_ascent(problem, 0)] == ["fails", "fails"]
