"""Bucketed shapes (theory_sim.flow.buckets): padding a tabular problem changes no result.

Padding adds outputs with probability exactly 0 (ABSENT_LOGIT), copies of the first prompt to a
batch and copies of the last save time. Each evaluation the solver makes (coordinates, field,
step-size norm, gain, KL to the limit, total-variation bound, certificates, limit state) is
compared on padded and unpadded states; the solves themselves are compared through the public
functions with padding turned off.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory_sim as ts
from theory_sim.flow import buckets, crossing, trajectory
from theory_sim.flow.coordinates import (
    ABSENT_LOGIT,
    _coordinates,
    _field,
    _gain_value,
    _limit_state,
    free_parameters,
)
from theory_sim.flow.limit import _certified, _kl_to_limit, _tv_bound, _unreachable
from theory_sim.flow.solve import _norm

# Evaluations: the padded and unpadded programs differ only in the length of their reductions,
# which XLA may sum in another order; a few ulps. A wrong mask (an absent output counted in a
# mean, a norm or a bound) changes them by a factor of Y / bucket, at least 1/16 here.
EVAL_RTOL = 1e-14


def _problem(rng, num_prompts, num_outputs, kl_coef):
    shape = (num_prompts, num_outputs)
    return ts.Problem(
        2.0 * rng.normal(size=shape),
        rng.uniform(-1, 1, shape),
        rng.uniform(-1, 1, shape),
        kl_coef=kl_coef,
    )


def test_bucket_sizes():
    assert [buckets.output_bucket(n) for n in (2, 7, 8, 9, 16, 17, 1000, 1025, 5000)] == [
        8, 8, 8, 16, 16, 32, 1024, 2048, 5120,
    ]  # fmt: skip
    assert [buckets.save_bucket(n) for n in (2, 64, 129, 130, 257, 258)] == [
        129, 129, 129, 257, 257, 513,
    ]  # fmt: skip
    assert [buckets.batch_bucket(n, 8) for n in (1, 2, 3, 5)] == [2, 2, 4, 8]
    assert [buckets.batch_bucket(n, 5000) for n in (1, 2, 3)] == [1, 2, 4]


@pytest.mark.parametrize("kl_coef", [0.0, 0.05, 2.0])
@pytest.mark.parametrize("num_outputs", [2, 5, 9, 13])
def test_every_evaluation_is_unchanged_by_padding(num_outputs, kl_coef):
    rng = np.random.default_rng(num_outputs)
    problem = _problem(rng, 2, num_outputs, kl_coef)
    reward = problem.reward_gt
    padded, padded_reward = buckets.pad_outputs(problem, reward)
    size = padded.num_outputs
    assert size == buckets.output_bucket(num_outputs) > num_outputs

    def evaluations(problem, reward, w):
        frame, w0 = _coordinates(problem)
        w = w0 + w
        target = _gain_value(problem, problem.params0, reward, 0) + 0.1
        return {
            "base": frame.base,
            "w0": w0,
            "field": _field(None, w, (problem, frame)),
            "norm": _norm((problem, frame))(w),
            "gain": _gain_value(problem, frame.base + w, reward, 1),
            "kl": _kl_to_limit(problem, frame, w),
            "tv": _tv_bound(_kl_to_limit(problem, frame, w), frame.log_limit),
            "limit": _limit_state(frame, w),
            "certified": _certified(problem, frame, w),
            "unreachable": _unreachable(problem, frame, w, reward, 1, target),
        }

    step = rng.normal(size=(2, num_outputs))
    plain = jax.jit(evaluations)(problem, reward, jnp.asarray(step))
    wide = jax.jit(evaluations)(
        padded, padded_reward, jnp.asarray(np.pad(step, ((0, 0), (0, size - num_outputs))))
    )
    for name in ("base", "w0", "field", "limit"):
        np.testing.assert_allclose(
            wide[name][..., :num_outputs], plain[name], rtol=EVAL_RTOL, atol=0, err_msg=name
        )
    for name in ("norm", "gain", "kl", "tv", "certified", "unreachable"):
        np.testing.assert_allclose(wide[name], plain[name], rtol=EVAL_RTOL, atol=0, err_msg=name)
    # the added outputs: logits at ABSENT_LOGIT, no field, and a state that never moves
    assert np.all(np.asarray(padded.params0)[:, num_outputs:] == ABSENT_LOGIT)
    assert np.all(np.asarray(wide["field"])[:, num_outputs:] == 0.0)
    assert np.all(np.asarray(wide["w0"])[:, num_outputs:] == 0.0)
    assert np.all(np.exp(np.asarray(padded.log_probs(padded.params0)))[:, num_outputs:] == 0.0)


def _unpadded(monkeypatch):
    for module in (crossing, trajectory):
        monkeypatch.setattr(module, "bucketed", lambda problem: False)


def _reached_instance(rng, num_outputs, kl_coef):
    """A one-prompt problem and a gain its flow reaches: rewards spread over [-1, 1] with the
    best output rare under pi_0."""
    logits = rng.normal(size=num_outputs)
    reward = np.linspace(-1.0, 1.0, num_outputs)[rng.permutation(num_outputs)]
    logits[np.argmax(reward)] -= 3.0
    problem = ts.Problem(logits, reward, kl_coef=kl_coef)
    start = float(np.exp(np.asarray(problem.ref_log_probs[0])) @ reward)
    return problem, 0.5 * (1.0 - start) if kl_coef == 0 else 0.2 * (1.0 - start)


@pytest.mark.parametrize("kl_coef", [0.0, 0.01])
@pytest.mark.parametrize("num_outputs", [2, 3, 6, 11])
def test_t_gamma_is_unchanged_by_padding(monkeypatch, num_outputs, kl_coef):
    rng = np.random.default_rng(10 + num_outputs)
    problem, gamma = _reached_instance(rng, num_outputs, kl_coef)
    padded = ts.time_to_gain_details(problem, gamma)
    _unpadded(monkeypatch)
    plain = ts.time_to_gain_details(problem, gamma)
    assert padded.reached and plain.reached
    assert math.isclose(padded.time, plain.time, rel_tol=1e-13)
    assert padded.num_steps == plain.num_steps


@pytest.mark.parametrize(
    ("num_prompts", "num_outputs", "kl_coef", "t_max", "num_saves"),
    [(1, 3, 0.0, 50.0, 129), (3, 5, 0.05, 200.0, 40), (2, 9, 1.0, 1e3, 7), (5, 2, 0.5, 1e3, 129)],
)
def test_trajectories_are_unchanged_by_padding(
    monkeypatch, num_prompts, num_outputs, kl_coef, t_max, num_saves
):
    """Short horizons: the padded and unpadded solves take the same steps, and every saved
    quantity agrees to 1e-13 (certified convergence included: the last two instances reach it)."""
    rng = np.random.default_rng(num_prompts * 100 + num_outputs)
    problem = _problem(rng, num_prompts, num_outputs, kl_coef)
    save = np.concatenate([[0.0], np.geomspace(1e-3, t_max, num_saves - 1)])
    padded = ts.gradient_flow(problem, t_max, save)
    _unpadded(monkeypatch)
    plain = ts.gradient_flow(problem, t_max, save)
    assert padded.num_steps == plain.num_steps
    assert padded.ended == plain.ended
    assert padded.converged_at == pytest.approx(plain.converged_at, rel=1e-13)
    assert padded.params.shape == plain.params.shape
    scale = np.maximum(1.0, np.abs(plain.params))
    assert np.max(np.abs(padded.params - plain.params) / scale) < 1e-13
    for name in ("probs", "expected_rm", "expected_gt", "variance_rm", "kl", "objective"):
        np.testing.assert_allclose(
            getattr(padded, name), getattr(plain, name), rtol=1e-13, atol=1e-15, err_msg=name
        )


def test_long_horizons_agree_to_the_solver_accuracy(monkeypatch):
    """Over thousands of steps the last-bit differences of the longer reductions can move a step
    that sat at the controller's margin, and the two solves part by the solver's accuracy (rtol
    1e-10 per step): probabilities agree to 1e-8, as two runs on different CPUs would."""
    rng = np.random.default_rng(1)
    problem = _problem(rng, 2, 9, 0.05)
    padded = ts.gradient_flow(problem, 1e6)
    _unpadded(monkeypatch)
    plain = ts.gradient_flow(problem, 1e6)
    np.testing.assert_allclose(padded.probs, plain.probs, rtol=1e-8, atol=1e-12)


def test_padded_outputs_carry_no_mass_along_the_flow():
    rng = np.random.default_rng(7)
    problem = _problem(rng, 2, 3, 0.1)
    padded, _ = buckets.pad_outputs(problem, problem.reward_gt)
    traj = ts.gradient_flow(padded, 1e3)
    assert np.all(traj.probs[:, :, 3:] == 0.0)
    assert np.all(traj.params[:, :, 3:] == ABSENT_LOGIT)
    np.testing.assert_allclose(traj.probs.sum(axis=-1), 1.0, rtol=1e-14)


def test_one_program_serves_a_bucket():
    """t_gamma for 2 to 8 outputs: one compiled time-to-gain solve, not seven."""
    crossing._gain_run.clear_cache()  # this process's programs (the disk cache stays)
    before = crossing._gain_run._cache_size()
    rng = np.random.default_rng(3)
    for num_outputs in range(2, 9):
        problem, gamma = _reached_instance(rng, num_outputs, 0.0)
        ts.time_to_gain(problem, gamma)
    assert crossing._gain_run._cache_size() - before == 1


def _autoregressive(vocab, length, num_prompts, kl_coef, seed):
    rng = np.random.default_rng(seed)
    policy = ts.Autoregressive(vocab, length)
    probs = rng.dirichlet(np.ones(policy.num_sequences), size=num_prompts)
    params, _ = ts.start_at(policy, probs)
    shape = (num_prompts, policy.num_sequences)
    return ts.Problem(
        params, rng.uniform(-1, 1, shape), rng.uniform(-1, 1, shape), kl_coef=kl_coef,
        policy=policy,
    )  # fmt: skip


AR_CASES = [
    (2, 3, 1, 0.0, 300.0),
    (3, 2, 2, 0.05, 300.0),
    (2, 4, 1, 0.05, 300.0),
    (2, 2, 2, 1.0, 300.0),
    (3, 3, 1, 0.0, 300.0),
    (2, 3, 2, 2.0, 1e4),  # certified convergence at t = 1.9e3: later saves are the limit state
]


@pytest.mark.parametrize(("vocab", "length", "num_prompts", "kl_coef", "t_max"), AR_CASES)
def test_autoregressive_solves_are_unchanged_by_padding(
    monkeypatch, vocab, length, num_prompts, kl_coef, t_max
):
    """Autoregressive problems padded to Autoregressive(3, 4): t_gamma and a trajectory agree
    with the unpadded solves to 1e-13 with the same steps taken (measured: 4e-14 at most over
    up to 230 steps)."""
    seed = 5 if t_max > 1e3 else 10 * vocab + length
    problem = _autoregressive(vocab, length, num_prompts, kl_coef, seed)
    assert buckets.bucketed(problem)
    r = np.asarray(problem.reward_rm[0])
    start = float(np.exp(np.asarray(problem.ref_log_probs[0])) @ r)
    gamma = 0.3 * (float(r.max()) - start)
    padded = ts.time_to_gain_details(problem, gamma, problem.reward_rm)
    path = ts.gradient_flow(problem, t_max)
    _unpadded(monkeypatch)
    plain = ts.time_to_gain_details(problem, gamma, problem.reward_rm)
    plain_path = ts.gradient_flow(problem, t_max)
    assert padded.num_steps == plain.num_steps and padded.ended == plain.ended
    if math.isfinite(plain.time):
        assert math.isclose(padded.time, plain.time, rel_tol=1e-13)
    assert path.num_steps == plain_path.num_steps and path.ended == plain_path.ended
    assert path.params.shape == plain_path.params.shape
    # 550 steps into a stiff tail the two part by round-off drift (1e-11 at most, where the
    # certificate fires 1e-6 apart in t); the limit states saved after it agree to 1e-13
    rtol = 1e-13 if t_max <= 300 else 1e-9
    scale = np.maximum(1.0, np.abs(plain_path.params))
    assert np.max(np.abs(path.params - plain_path.params) / scale) < rtol
    assert np.max(np.abs(path.params[-1] - plain_path.params[-1]) / scale[-1]) < 1e-13
    for name in ("probs", "expected_rm", "expected_gt", "variance_rm", "kl", "objective"):
        np.testing.assert_allclose(
            getattr(path, name), getattr(plain_path, name), rtol=rtol, atol=1e-15, err_msg=name
        )


def test_padded_sequences_carry_no_mass_and_padded_prefixes_never_move():
    problem = _autoregressive(2, 3, 1, 0.1, 3)
    padded, _ = buckets.pad_outputs(problem, problem.reward_gt)
    assert padded.policy == ts.Autoregressive(3, 4)
    sequences, prefixes, forced = buckets._ar_layout(problem.policy)
    traj = ts.gradient_flow(padded, 1e3)
    absent = np.setdiff1d(np.arange(81), sequences)
    assert np.all(traj.probs[..., absent] == 0.0)
    np.testing.assert_allclose(traj.probs[..., sequences].sum(axis=-1), 1.0, rtol=1e-14)
    # the forced and unreached prefixes keep their logits at every save time
    fixed = np.setdiff1d(np.arange(40), prefixes)
    assert np.all(traj.params[:, 0, fixed] == np.asarray(padded.params0)[0, fixed])
    assert set(forced) <= set(fixed) and len(fixed) == 40 - 7
    np.testing.assert_array_equal(
        buckets.cut_state(problem, padded.params0), np.asarray(problem.params0)
    )


def test_free_parameters_are_the_unpadded_ones():
    problem = _autoregressive(2, 3, 1, 0.05, 4)
    padded, _ = buckets.pad_outputs(problem, problem.reward_gt)
    free = np.asarray(free_parameters(padded.policy, _coordinates(padded)[0]))
    assert free.sum() == problem.params0.size == 14
    np.testing.assert_array_equal(buckets.cut_state(problem, free), np.ones((1, 7, 2), bool))
    plain = np.asarray(free_parameters(problem.policy, _coordinates(problem)[0]))
    assert plain.all()


def test_one_program_serves_the_autoregressive_bucket():
    """t_gamma for V = 2, L = 3 and 4 and V = 3, L = 2: one compiled solve, not three."""
    crossing._gain_run.clear_cache()
    before = crossing._gain_run._cache_size()
    for vocab, length in ((2, 3), (2, 4), (3, 2)):
        problem = _autoregressive(vocab, length, 1, 0.0, vocab + length)
        ts.time_to_gain(problem, 0.05, problem.reward_rm)
    assert crossing._gain_run._cache_size() - before == 1
