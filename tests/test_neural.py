"""Neural policies (theory_sim.policies.neural): the log-probability table against a
per-sequence reference, the Jacobian norm against a dense SVD, gradients against finite
differences, the fit of start_at, Theorem 4 on random instances, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory_sim as ts
from theory_sim.theorems import check_proposition_2, check_theorem_4


@pytest.fixture(scope="module")
def transformer():
    return ts.Transformer(3, 2, num_prompts=2, width=8, depth=1, heads=2, key=3)


def test_transformer_table_matches_a_per_sequence_reference(transformer):
    policy = transformer
    table = np.asarray(policy.log_probs(jnp.asarray(policy.params)))
    model = policy.model(jnp.asarray(policy.params))
    bos = policy.vocab_size
    for x in range(2):
        for i, seq in enumerate(ts.Autoregressive(3, 2).sequences()):
            # run the model on this one sequence: logits at position l predict y_l
            out = jax.nn.log_softmax(model(x, jnp.asarray([bos, *seq[:-1]])), axis=-1)
            reference = sum(float(out[pos, tok]) for pos, tok in enumerate(seq))
            assert table[x, i] == pytest.approx(reference, abs=1e-12)
    assert np.exp(table).sum(-1) == pytest.approx(1.0, abs=1e-12)


def test_generic_neural_policy_and_mlp_tables():
    def logits_fn(p, prompt, prefix, level):  # bigram: the last token (or a start row) decides
        last = jnp.where(level > 0, prefix[jnp.maximum(level - 1, 0)], 2)
        return p["w"][prompt, last]

    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 3, 2))
    policy = ts.Neural(logits_fn, {"w": w}, vocab_size=2, length=3)
    table = np.asarray(policy.log_probs(jnp.asarray(policy.params)))[0]
    for i, seq in enumerate(ts.Autoregressive(2, 3).sequences()):
        rows = [w[0, 2], w[0, seq[0]], w[0, seq[1]]]
        ref = sum(r[t] - np.log(np.exp(r).sum()) for r, t in zip(rows, seq, strict=True))
        assert table[i] == pytest.approx(ref, abs=1e-12)
    features = rng.normal(size=(2, 5, 3))
    mlp = ts.MLP(features, width=6, depth=2, key=1)
    model = mlp.model(jnp.asarray(mlp.params)) if hasattr(mlp, "model") else None
    table = np.asarray(mlp.log_probs(jnp.asarray(mlp.params)))
    logits = np.asarray(mlp.logit_table(jnp.asarray(mlp.params)))[:, 0, :]
    np.testing.assert_allclose(table, logits - np.log(np.exp(logits).sum(-1, keepdims=True)))
    assert model is None or callable(model)


@pytest.mark.parametrize("which", ["transformer", "mlp"])
def test_jacobian_norm_against_a_dense_svd(which, transformer):
    rng = np.random.default_rng(1)
    policy = transformer if which == "transformer" else ts.MLP(rng.normal(size=(2, 4, 3)), width=5)
    theta = jnp.asarray(policy.params) + 0.3 * rng.normal(size=policy.params.size)
    dense = np.asarray(jax.jacfwd(policy.logit_table)(theta))  # [X, P, V, n]
    svd = np.array([[np.linalg.norm(block, 2) for block in prompt] for prompt in dense])
    np.testing.assert_allclose(policy.jacobian_norms(np.asarray(theta)), svd, rtol=1e-10)
    assert policy.jacobian_norm(np.asarray(theta), 1) == pytest.approx(svd[1].max(), rel=1e-10)


def test_gradient_against_finite_differences(transformer):
    rng = np.random.default_rng(2)
    problem = ts.Problem(
        transformer.params, rng.uniform(-1, 1, (2, 9)), kl_coef=0.1, policy=transformer
    )
    theta = transformer.params + 0.2 * rng.normal(size=transformer.params.size)
    grad = np.asarray(ts.policy_gradient(problem, theta))
    for _ in range(3):
        d = rng.normal(size=theta.size)
        d /= np.linalg.norm(d)
        h = 1e-5
        fd = (ts.objective(problem, theta + h * d) - ts.objective(problem, theta - h * d)) / (2 * h)
        # central differences: error O(h^2) ~ 1e-10 times the third derivative, plus round-off
        # 1e-16 / h ~ 1e-11
        assert grad @ d == pytest.approx(fd, abs=1e-8)


def test_start_at_fits_a_table(transformer):
    rng = np.random.default_rng(3)
    target = rng.dirichlet(np.ones(9), size=2)
    params, residual = ts.start_at(transformer, target)
    assert residual <= 1e-5
    got = np.exp(np.asarray(transformer.log_probs(jnp.asarray(params))))
    np.testing.assert_allclose(got, target, rtol=1e-4)


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.3, 1.0, 3.0]), st.sampled_from([0.0, 0.05]))
def test_theorem_4_and_proposition_2_hold_on_random_transformers(seed, scale, lam):
    rng = np.random.default_rng(seed)
    # the transformer of theory-sim check and notebook 08: its solves are compiled once per run
    policy = ts.Transformer(2, 3, width=8, depth=1, heads=2, key=seed, init_scale=scale)
    r_rm = rng.uniform(-1, 1, 8) * 10.0 ** -rng.uniform(0, 3)
    problem = ts.Problem(policy.params, r_rm, rng.uniform(-1, 1, 8), kl_coef=lam, policy=policy)
    row = check_theorem_4(problem, 0.1, problem.reward_rm[0] / np.abs(r_rm).max(), t_max=1e3)
    assert row.holds, row
    assert row.details["jacobian"] >= row.details["jacobian_0"]  # a sup over [0, t_gamma]
    assert check_proposition_2(problem, t_max=10.0, num_times=129).holds


def test_neural_policies_refuse_bad_input():
    with pytest.raises(ValueError, match="`width` \\(6\\) must be divisible by `heads` \\(4\\)"):
        ts.Transformer(2, 2, width=6, heads=4)
    with pytest.raises(ValueError, match="`init_scale` must be a finite number > 0"):
        ts.Transformer(2, 2, width=4, heads=1, init_scale=0.0)
    with pytest.raises(TypeError, match="`key` must be an int seed or a JAX key"):
        ts.MLP(np.eye(3), key="seed")
    with pytest.raises(TypeError, match="`logits_fn` must be callable"):
        ts.Neural(None, {"w": np.zeros(2)}, vocab_size=2, length=1)
    with pytest.raises(ValueError, match="non-empty pytree of float arrays"):
        ts.Neural(lambda *a: a, {}, vocab_size=2, length=1)
    policy = ts.MLP(np.eye(3), width=4, depth=1)
    with pytest.raises(ValueError, match="flat vector of the policy's"):
        ts.Problem(np.zeros(3), np.zeros(3), policy=policy)
    with pytest.raises(ValueError, match=r"Transformer\(vocab_size=4, length=16\).* GiB"):
        ts.Transformer(4, 16, width=4, heads=1)  # 4^16 sequences: refused before it is built
    with pytest.raises(ValueError, match="too large to enumerate: V\\^L = 2\\^80"):
        ts.Transformer(4, 40, width=4, heads=1)


def test_trajectory_carries_the_jacobian():
    rng = np.random.default_rng(4)
    policy = ts.Transformer(2, 3, width=8, depth=1, heads=2, key=4)  # check's and notebook 08's
    problem = ts.Problem(policy.params, rng.uniform(-1, 1, 8), policy=policy)
    traj = ts.gradient_flow(problem, 5.0, jacobian=True)
    expected = [policy.jacobian_norm(p) for p in traj.params]
    np.testing.assert_allclose(traj.jacobian, expected, rtol=1e-12)
    assert traj.jacobian[0] != traj.jacobian[-1]  # it moves
    tabular = ts.gradient_flow(ts.Problem(np.zeros(3), [1.0, 0.0, -1.0]), 1.0, jacobian=True)
    assert np.all(tabular.jacobian == 1.0) and ts.gradient_flow(problem, 5.0).jacobian is None
    with pytest.raises(TypeError, match="`jacobian` must be True or False"):
        ts.gradient_flow(problem, 1.0, jacobian="yes")


def test_held_out_prompt_of_an_mlp_takes_j_along_the_flow():
    from theory_sim.theorems import check_theorem_4_held_out

    rng = np.random.default_rng(0)
    features, r = rng.normal(size=(3, 8, 4)), rng.uniform(-1, 1, (3, 8))
    train = ts.MLP(features[:2], width=16, depth=2, key=0)
    held = ts.MLP(features[2], width=16, depth=2, key=0)  # same parameters, a third prompt
    problem = ts.Problem(train.params, r[:2], policy=train)
    row = check_theorem_4_held_out(problem, held, r[2], 0.013, t_max=100.0)
    assert row.status == "holds"
    at_start = max(train.jacobian_norm(train.params), held.jacobian_norm(train.params))
    assert row.details["jacobian"] > 1.5 * at_start  # this flow's J grows: the sup is used


def _dense_jacobian_norm(policy, theta, prompt=None) -> float:
    """J at theta from jax.jacfwd of the whole logit table and a dense spectral norm per prefix:
    nothing shared with the policy's own reverse-mode Gram computation."""
    dense = np.asarray(jax.jacfwd(policy.logit_table)(jnp.asarray(theta)))  # [X, P, V, n]
    rows = dense if prompt is None else dense[prompt : prompt + 1]
    return max(np.linalg.norm(block, 2) for per_prompt in rows for block in per_prompt)


@pytest.fixture(scope="module")
def growing():
    """An MLP flow (lambda = 0) whose J grows by 1.3x before E r_RM(x_0) gains 0.3."""
    rng = np.random.default_rng(0)
    features, r = rng.normal(size=(2, 8, 4)), rng.uniform(-1, 1, (2, 8))
    policy = ts.MLP(features, width=16, depth=2, key=0)
    return ts.Problem(policy.params, r, policy=policy)


def test_theorem_4_takes_the_sup_of_a_moving_jacobian(growing):
    from theory_sim.theorems import theorem_4_bound
    from theory_sim.theorems.flat import jacobian_grid

    problem, policy = growing, growing.policy
    row = check_theorem_4(problem, 0.3, problem.reward_rm, t_max=100.0)
    times = jacobian_grid(row.measured)
    params = ts.gradient_flow(problem, times[-1], times).params
    path = np.array([_dense_jacobian_norm(policy, th) for th in params])
    assert path.max() > 1.1 * path[0]  # J moves on this flow before t_gamma
    assert row.details["jacobian_0"] == pytest.approx(path[0], rel=1e-9)
    assert row.details["jacobian"] == pytest.approx(path.max(), rel=1e-9)  # the sup, not J_0
    var0 = np.asarray(ts.reward_variance(np.exp(problem.ref_log_probs), problem.reward_rm))
    bound = theorem_4_bound(1, path.max(), 0.0, 0.3, float(var0.mean()))
    assert row.bound == pytest.approx(bound, rel=1e-9) and row.holds


def test_proposition_2_takes_the_jacobian_at_each_time(growing):
    problem, policy = growing, growing.policy
    t_max, num_times = 20.0, 9
    row = check_proposition_2(problem, t_max=t_max, num_times=num_times)
    save = np.concatenate([[0.0], np.geomspace(t_max * 1e-6, t_max, num_times - 1)])
    params = ts.gradient_flow(problem, t_max, save).params
    r = np.asarray(problem.reward_rm)[0]

    def phi(th):  # phi(theta; x_0) with lambda = 0
        return jnp.exp(policy.log_probs(th)[0]) @ r

    ratios, jacobians = [], []
    for th in np.asarray(params):
        pi = np.exp(np.asarray(policy.log_probs(jnp.asarray(th)))[0])
        norm = np.linalg.norm(np.asarray(jax.grad(phi)(jnp.asarray(th))))
        jac = _dense_jacobian_norm(policy, th, prompt=0)
        rhs = 6.0 * 1.0 * 1 * jac * (pi @ r**2 - (pi @ r) ** 2) ** (1 / 3)  # M = 1, L = 1
        ratios.append(norm / rhs)
        jacobians.append(jac)
    assert max(jacobians) > 1.1 * jacobians[0]
    assert row.details["jacobian"] == pytest.approx(max(jacobians), rel=1e-9)
    assert row.measured == pytest.approx(max(ratios), rel=1e-7) and row.holds
