import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import finite, logit

import theory_sim as ts

objective_module = importlib.import_module("theory_sim.objective")


@st.composite
def problems(draw, max_prompts=3, max_outputs=6):
    x = draw(st.integers(1, max_prompts))
    y = draw(st.integers(2, max_outputs))
    logits = draw(hnp.arrays(np.float64, (x, y), elements=logit))
    rm = draw(hnp.arrays(np.float64, (x, y), elements=finite))
    lam = draw(st.sampled_from([0.0, 0.01, 0.3, 2.0]))
    theta = draw(hnp.arrays(np.float64, (x, y), elements=logit))
    return ts.Problem(logits, rm, kl_coef=lam), theta


@given(problems())
def test_autodiff_gradient_equals_closed_form(case):
    problem, theta = case
    closed = np.asarray(ts.policy_gradient(problem, theta))  # the library's closed form
    auto = np.asarray(objective_module._autodiff_grad(problem, jnp.asarray(theta)))  # the oracle
    reference = np.asarray(ts.tabular_gradient(problem, theta))
    # all are O(1) sums of a few float64 terms; they differ only by round-off
    np.testing.assert_allclose(closed, auto, atol=1e-13)
    np.testing.assert_allclose(closed, reference, atol=1e-13)


@pytest.mark.parametrize("kl_coef", [0.0, 0.3])
@pytest.mark.parametrize("policy", ["autoregressive", "loglinear"])
def test_closed_form_pulled_back_equals_autodiff_for_every_parameterisation(policy, kl_coef, rng):
    """The cotangent pi (r_KL - E_pi r_KL) pulled back through the parameterisation's VJP is the
    gradient of phi for any parameterisation (the constant per prompt it drops is annihilated)."""
    if policy == "autoregressive":
        pol = ts.Autoregressive(3, 3)
        shape, outputs = (2, pol.num_prefixes, 3), pol.num_sequences
    else:
        pol = ts.LogLinear(rng.normal(size=(2, 7, 4)))
        shape, outputs = (4,), 7
    problem = ts.Problem(
        rng.normal(size=shape), rng.uniform(-1, 1, (2, outputs)), kl_coef=kl_coef, policy=pol
    )
    theta = problem.params0 + 0.5 * rng.normal(size=problem.params0.shape)
    closed = np.asarray(objective_module._grad(problem, theta))
    auto = np.asarray(objective_module._autodiff_grad(problem, theta))
    assert np.abs(auto).max() > 1e-3  # a gradient worth comparing
    np.testing.assert_allclose(closed, auto, atol=1e-13, rtol=1e-12)


def _exact_gradient(theta, ref_logits, reward, kl_coef, digits=60):
    """The tabular gradient (1/X) pi (r_KL - E_pi r_KL) of one prompt in decimal arithmetic with
    ``digits`` significant digits: an oracle without float64's cancellation."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = digits

        def log_softmax(v):
            v = [Decimal(float(x)) for x in v]
            top = max(v)
            log_z = top + sum((x - top).exp() for x in v).ln()
            return [x - log_z for x in v]

        log_p, log_p0 = log_softmax(theta), log_softmax(ref_logits)
        p = [x.exp() for x in log_p]
        lam = Decimal(float(kl_coef))
        a = [
            Decimal(float(r)) - lam * (lp - lq)
            for r, lp, lq in zip(reward, log_p, log_p0, strict=True)
        ]
        mean = sum(pi * ai for pi, ai in zip(p, a, strict=True))
        return np.array([float(pi * (ai - mean)) for pi, ai in zip(p, a, strict=True)])


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_gradient_near_a_point_mass_is_accurate_in_every_entry(kl_coef):
    """At pi = 1 - 4e-18 on one output the mode's entry of the gradient is about 1e-17 while
    r_KL is O(1): centred at its mean, r_KL's round-off there is the size of the entry (relative
    errors 0.11 and 1 with lambda = 0.1 and 0); centred at the mode (objective._grad), every
    entry is within a relative 1e-13 of the exact value."""
    theta = np.array([40.0, 0.0, 1.0, -1.0, 0.5])
    ref_logits = np.array([0.0, 0.3, -0.2, 0.1, 0.0])
    reward = np.array([0.3, 1.0, -0.5, 0.2, 0.9])
    problem = ts.Problem(ref_logits, reward, kl_coef=kl_coef)
    got = np.asarray(objective_module._grad(problem, jnp.asarray(theta[None])))[0]
    exact = _exact_gradient(theta, ref_logits, reward, kl_coef)
    assert 1e-18 < abs(exact[0]) < 1e-16  # the mode's entry is tiny
    np.testing.assert_allclose(got, exact, rtol=1e-13, atol=0)


@given(problems(max_prompts=2, max_outputs=4))
def test_gradient_matches_central_finite_differences(case):
    problem, theta = case
    grad = np.asarray(ts.policy_gradient(problem, theta))
    h = 1e-6
    fd = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[idx] = h
        fd[idx] = (ts.objective(problem, theta + e) - ts.objective(problem, theta - e)) / (2 * h)
    # central differences: truncation O(h^2 * phi''') ~ 1e-12 plus round-off eps/h ~ 1e-10
    np.testing.assert_allclose(grad, fd, atol=1e-8)


@given(problems())
def test_lemma_8_l1_gradient_at_most_std_of_r_kl(case):
    problem, theta = case
    x_count = problem.num_prompts
    grad = np.asarray(ts.policy_gradient(problem, theta)) * x_count  # per-prompt phi(.; x)
    log_p = theta - np.log(np.exp(theta).sum(-1, keepdims=True))
    log_p0 = np.asarray(problem.ref_log_probs)
    r_kl = np.asarray(problem.reward_rm) - float(problem.kl_coef) * (log_p - log_p0)
    var = np.asarray(ts.reward_variance(np.exp(log_p), r_kl))
    l1 = np.abs(grad).sum(-1)
    assert np.all(l1 <= np.sqrt(var) * (1 + 1e-9) + 1e-15)


def test_prompts_are_independent(rng):
    logits = rng.normal(size=(3, 4))
    problem = ts.Problem(logits, rng.uniform(-1, 1, (3, 4)), kl_coef=0.2)
    theta = rng.normal(size=(3, 4))
    base = np.asarray(ts.policy_gradient(problem, theta))
    moved = theta.copy()
    moved[1] += rng.normal(size=4)
    other = np.asarray(ts.policy_gradient(problem, moved))
    np.testing.assert_allclose(other[[0, 2]], base[[0, 2]], atol=1e-15)
    # softmax is invariant to shifting a row, and so is the gradient
    np.testing.assert_allclose(ts.policy_gradient(problem, theta + 5.0), base, atol=1e-14)


def test_objective_value_closed_form():
    p0 = np.array([0.5, 0.25, 0.25])
    r = np.array([1.0, 0.0, -1.0])
    problem = ts.Problem(np.log(p0), r, kl_coef=0.5)
    theta = np.log(np.array([0.2, 0.3, 0.5]))
    pi = np.exp(theta)
    expected = pi @ r - 0.5 * np.sum(pi * np.log(pi / p0))
    assert ts.objective(problem, theta) == pytest.approx(expected, abs=1e-15)
    assert float(ts.prompt_objective(problem, theta)) == pytest.approx(expected, abs=1e-15)


def test_gradient_compiles_once_per_shape(rng):
    # New instances of one size (other logits, rewards and kl_coef) reuse the compiled gradient.
    objective_module._jit_grad.clear_cache()
    for lam in (0.0, 0.1, 1.0):
        problem = ts.Problem(rng.normal(size=(2, 5)), rng.uniform(-1, 1, (2, 5)), kl_coef=lam)
        ts.policy_gradient(problem, rng.normal(size=(2, 5)))
    assert objective_module._jit_grad._cache_size() == 1
    problem = ts.Problem(rng.normal(size=(2, 6)), rng.uniform(-1, 1, (2, 6)))
    ts.policy_gradient(problem, rng.normal(size=(2, 6)))
    assert objective_module._jit_grad._cache_size() == 2


def test_gradient_is_float64():
    problem = ts.Problem(np.zeros(3, dtype=np.float32), np.array([1.0, 0.0, 0.0], np.float32))
    assert ts.policy_gradient(problem, np.zeros(3)).dtype == jnp.float64


def test_bad_logits_raise():
    problem = ts.Problem(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`logits` must have shape \(2, 3\)"):
        ts.policy_gradient(problem, np.zeros(3))
    with pytest.raises(ValueError, match="`logits` must be finite"):
        ts.policy_gradient(problem, np.full((2, 3), np.inf))
    one = ts.Problem(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"`logits` must have shape \(3,\)"):
        ts.policy_gradient(one, np.zeros((1, 3)))


def test_kl_optimal_policy_is_a_stationary_point(rng):
    problem = ts.Problem(rng.normal(size=(2, 5)), rng.uniform(-1, 1, (2, 5)), kl_coef=0.3)
    star = np.asarray(ts.kl_optimal_policy(problem))
    grad = np.asarray(ts.policy_gradient(problem, np.log(star)))
    np.testing.assert_allclose(grad, 0.0, atol=1e-15)
    with pytest.raises(ValueError, match="kl_coef"):
        ts.kl_optimal_policy(problem.with_kl_coef(0.0))


def test_x64_is_required(monkeypatch):
    monkeypatch.setattr(jax.config, "read", lambda name: False)
    with pytest.raises(RuntimeError, match="float64"):
        ts.Problem(np.zeros(2), np.zeros(2))
