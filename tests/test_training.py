import jax
import numpy as np
import optax
import pytest

import theory_sim as ts
from theory_sim import estimators
from theory_sim import training as tr


@pytest.fixture
def problem(rng):
    return ts.Problem(rng.normal(size=(2, 5)), rng.uniform(-1, 1, (2, 5)), kl_coef=0.1)


def test_sgd_is_the_euler_flow(problem):
    result = tr.optimize(problem, optax.sgd(0.1), 100, save_every=10)
    euler = ts.gradient_flow(
        problem, 10.0, save_ts=np.arange(0, 10.01, 1.0), method="euler", dt=0.1
    )
    np.testing.assert_allclose(result.params, euler.params, atol=1e-13)
    assert np.all(np.diff(result.objective) > 0)
    assert result.expected_rm.shape == (11, 2)


def test_natural_gradient_is_the_gradient_over_pi(problem, rng):
    theta = rng.normal(size=(2, 5))
    probs = np.exp(theta - np.log(np.exp(theta).sum(-1, keepdims=True)))
    np.testing.assert_allclose(
        tr.natural_gradient(problem, theta),
        np.asarray(ts.tabular_gradient(problem, theta)) / probs,
        atol=1e-14,
    )
    # npg ascent is multiplicative weights: pi_1 proportional to pi_0 exp(eta * npg)
    result = tr.optimize(problem, optax.sgd(0.3), 1, direction="natural")
    theta0 = np.asarray(problem.params0)
    np.testing.assert_allclose(
        result.params[1],
        theta0 + 0.3 * np.asarray(tr.natural_gradient(problem, theta0)),
        atol=1e-14,
    )


@pytest.mark.parametrize("method", ["reinforce", "rloo"])
@pytest.mark.parametrize("policy", ["tabular", "autoregressive"])
def test_unbiased_estimators(method, policy, rng):
    if policy == "tabular":
        problem = ts.Problem(rng.normal(size=(2, 4)), rng.uniform(-1, 1, (2, 4)), kl_coef=0.2)
    else:
        ar = ts.Autoregressive(2, 2)
        problem = ts.Problem(
            rng.normal(size=(2, 3, 2)), rng.uniform(-1, 1, (2, 4)), kl_coef=0.2, policy=ar
        )
    theta = np.asarray(problem.user_params(problem.params0)) + 0.3
    exact = np.asarray(ts.policy_gradient(problem, theta))
    est = np.asarray(
        tr.estimate_gradient(
            problem,
            theta,
            key=jax.random.key(0),
            method=method,
            num_samples=4,
            num_estimates=40_000,
        )
    )
    stderr = est.std(axis=0) / np.sqrt(len(est))
    # 8 to 12 components at 4.5 standard errors: a false failure has probability ~1e-4
    assert np.all(np.abs(est.mean(axis=0) - exact) <= 4.5 * stderr + 1e-15)


def test_grpo_zero_variance_groups_and_scale_invariance(rng):
    probs = np.array([0.7, 0.2, 0.1])
    flat = ts.Problem(np.log(probs), np.full(3, 0.3))  # every group ties: no signal at all
    est = tr.estimate_gradient(
        flat, np.log(probs), key=jax.random.key(1), method="grpo", num_estimates=50
    )
    assert np.all(np.asarray(est) == 0.0)
    r = rng.uniform(-1, 1, 3)
    base = ts.Problem(np.log(probs), r)
    scaled = ts.Problem(np.log(probs), 1e-4 * r)
    kwargs = {"key": jax.random.key(2), "method": "grpo", "num_estimates": 20}
    # GRPO's normalisation divides the scale out (up to round-off in the standard deviation)
    np.testing.assert_allclose(
        tr.estimate_gradient(scaled, np.log(probs), **kwargs),
        tr.estimate_gradient(base, np.log(probs), **kwargs),
        atol=1e-10,
    )


def test_snr_ignores_reward_scale_but_collapses_with_rare_good_outputs():
    r = np.array([1.0, -1.0, -1.0, -1.0])

    def snr(probs, reward):
        problem = ts.Problem(np.log(probs), reward)
        return tr.gradient_snr(problem, np.log(probs), key=jax.random.key(3), num_estimates=4000)[
            "snr"
        ]

    probs = np.array([0.3, 0.3, 0.2, 0.2])
    # scaling r_RM scales every estimate: the SNR is unchanged although the variance falls 1e6x
    assert snr(probs, 1e-3 * r) == pytest.approx(snr(probs, r), rel=1e-9)
    values = []
    for eps in (1e-1, 1e-2, 1e-3):
        rest = (1 - eps) / 3
        values.append(snr(np.array([eps, rest, rest, rest]), r))
    # rare good output: the mean gradient shrinks like eps, the noise like sqrt(eps / k)
    assert values[0] > 2 * values[1] > 4 * values[2]


def test_steps_to_gain_and_comparison(problem):
    sgd = tr.steps_to_gain(problem, optax.sgd(0.1), 0.05, reward=problem.reward_rm)
    t = ts.time_to_gain(problem, 0.05, reward=problem.reward_rm)
    assert abs(sgd * 0.1 - t) < 0.1 + 0.05 * t  # Euler with a small step tracks the flow
    assert tr.steps_to_gain(problem, optax.sgd(0.1), 50.0, max_steps=100) == np.inf
    out = tr.compare_methods(
        problem, 0.05, 0.5, key=jax.random.key(0), reward=problem.reward_rm, num_estimates=200
    )
    assert {"flow", "sgd", "adam", "natural", "reinforce", "rloo", "grpo", "rloo_snr"} <= set(out)
    assert out["var0"] > 0 and np.isfinite(out["rloo"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda p: tr.estimate_gradient(p, p.params0, key=jax.random.key(0), method="ppo"),
            "`method` must be one of",
        ),
        (
            lambda p: tr.estimate_gradient(p, p.params0, key=jax.random.key(0), num_samples=1),
            "`num_samples` must be an integer >= 2 for rloo",
        ),
        (lambda p: tr.optimize(p, optax.sgd(0.1), 10, save_every=3), "multiple of"),
        (lambda p: tr.optimize(p, optax.sgd(0.1), 10, direction="mirror"), "`direction` must"),
        (lambda p: tr.steps_to_gain(p, optax.sgd(0.1), 0.0), "`gamma` must be > 0"),
        (
            lambda p: tr.sampled_steps_to_gain(p, 0.1, -1.0, key=jax.random.key(0)),
            "`learning_rate` must be > 0",
        ),
        (
            lambda p: tr.sampled_steps_to_gain(p, 0.1, 0.5, key=jax.random.key(0), max_steps=0),
            "`max_steps` must be an integer >= 1",
        ),
        (
            lambda p: tr.estimate_gradient(p, p.params0, key=jax.random.key(0), num_estimates=0),
            "`num_estimates` must be an integer >= 1",
        ),
    ],
)
def test_bad_input(problem, call, message):
    with pytest.raises(ValueError, match=message):
        call(problem)


def test_natural_gradient_needs_a_tabular_policy():
    ar = ts.Problem(np.zeros((3, 2)), np.zeros(4), policy=ts.Autoregressive(2, 2))
    with pytest.raises(ValueError, match="Tabular policy"):
        tr.natural_gradient(ar, np.zeros((3, 2)))


def test_snr_is_zero_when_no_estimate_carries_signal():
    # the good output has mass 1e-12: no sample of 50 x 8 draws hits it, every RLOO group ties
    probs = np.array([1e-12, 0.5 - 5e-13, 0.5 - 5e-13])
    problem = ts.Problem(np.log(probs), np.array([1.0, -1.0, -1.0]))
    stats = tr.gradient_snr(problem, np.log(probs), key=jax.random.key(0), num_estimates=50)
    assert stats["snr"] == 0.0 and stats["mean_norm"] == 0.0 and stats["exact_norm"] > 0


def test_sampled_optimize_steps_are_unbiased_and_seeded(problem):
    """One RLOO step from theta_0 averages (over 4000 seeds) to eta * exact gradient."""
    eta = 0.5
    exact = eta * np.asarray(ts.policy_gradient(problem, problem.user_params(problem.params0)))
    steps = []
    for seed in range(4000):
        run = tr.sampled_optimize(problem, eta, 1, key=jax.random.key(seed), num_samples=4)
        steps.append(run.params[1] - run.params[0])
    steps = np.asarray(steps)
    stderr = steps.std(axis=0) / np.sqrt(len(steps))
    assert np.all(np.abs(steps.mean(axis=0) - exact) <= 4.5 * stderr + 1e-15)
    a = tr.sampled_optimize(problem, eta, 20, key=jax.random.key(1), save_every=5)
    b = tr.sampled_optimize(problem, eta, 20, key=jax.random.key(1), save_every=5)
    c = tr.sampled_optimize(problem, eta, 20, key=jax.random.key(2), save_every=5)
    assert np.array_equal(a.params, b.params) and not np.array_equal(a.params, c.params)
    assert a.expected_gt.shape[0] == 5 and list(a.steps) == [0, 5, 10, 15, 20]
    with pytest.raises(ValueError, match="multiple of `save_every`"):
        tr.sampled_optimize(problem, eta, 7, key=jax.random.key(0), save_every=2)
    with pytest.raises(ValueError, match="num_samples"):
        tr.sampled_optimize(problem, eta, 2, key=jax.random.key(0), num_samples=1)


@pytest.mark.parametrize("policy", ["tabular", "autoregressive"])
def test_closed_form_runs_match_autodiff_runs(policy, rng):
    """optimize and the Euler flow step with the closed-form gradient; the same runs stepped with
    autodiff's gradient of phi (the oracle) agree to round-off after 200 steps."""
    from theory_sim.objective import _autodiff_grad

    pol = ts.Tabular() if policy == "tabular" else ts.Autoregressive(2, 3)
    shape = (2, 6) if policy == "tabular" else (2, pol.num_prefixes, 2)
    outputs = 6 if policy == "tabular" else 8
    reward = rng.uniform(-1, 1, (2, outputs))
    problem = ts.Problem(rng.normal(size=shape), reward, kl_coef=0.1, policy=pol)
    lr, steps = 0.5, 200
    run = tr.optimize(problem, optax.sgd(lr), steps, save_every=steps)
    theta = problem.params0
    oracle = jax.jit(_autodiff_grad)
    for _ in range(steps):
        theta = theta + lr * oracle(problem, theta)
    final = np.asarray(problem.internal_params(jax.numpy.asarray(run.params[-1])))
    assert np.abs(final - np.asarray(theta)).max() < 1e-12
    assert np.abs(np.asarray(theta) - np.asarray(problem.params0)).max() > 0.1  # it moved
    euler = ts.gradient_flow(problem, steps * lr, [0.0, steps * lr], method="euler", dt=lr)
    euler_final = np.asarray(problem.internal_params(jax.numpy.asarray(euler.params[-1])))
    assert np.abs(euler_final - np.asarray(theta)).max() < 1e-12


def test_inverse_cdf_sampling_draws_each_output_with_its_probability():
    probs = np.array([[0.5, 0.0, 0.2, 0.3, 0.0], [0.0, 0.0, 0.0, 0.999, 0.001]])
    n = 200_000
    samples = np.asarray(estimators._sample(jax.random.key(3), jax.numpy.asarray(probs), n))
    counts = np.stack([np.bincount(row, minlength=5) for row in samples]) / n
    assert counts[0, 1] == 0 and counts[0, 4] == 0 and counts[1, :3].sum() == 0  # never drawn
    # binomial standard errors; 5 of them would flag a wrong distribution, not noise
    np.testing.assert_array_less(
        np.abs(counts - probs), 5 * np.sqrt(probs * (1 - probs) / n) + 1e-12
    )
    other = np.asarray(estimators._sample(jax.random.key(4), jax.numpy.asarray(probs), n))
    assert not np.array_equal(samples, other)  # different seeds, different draws
