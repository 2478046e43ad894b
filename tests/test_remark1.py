"""The Remark 1 study (notebook 08): the scaled MLP's parameterisations and closed-form kernel,
the batched solver against theory_sim's own flow, and the stored instances of the conclusion."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory_sim as ts
from theory_sim.flow import gradient_flow, time_to_gain
from theory_sim.policies import Neural
from theory_sim.policies.scaled import layer_scales
from theory_sim.stories import remark_1
from theory_sim.stories.remark1 import _reward, solve_flows, study_policy

DATA = Path(__file__).parent / "data" / "remark_1.json"
FEATURES = np.random.default_rng(0).standard_normal((8, 8))


def test_layer_scales_match_the_table_and_coincide_at_width_one():
    # NTK: W_l = w_l / sqrt(fan_in), w ~ N(0, 1); mean field (muP): input sqrt(n/d), hidden 1,
    # output 1/sqrt(n), every w ~ N(0, 1/n)
    assert layer_scales("ntk", 4, 16, 2) == ((0.5, 0.25, 0.25), (1.0, 1.0, 1.0))
    assert layer_scales("mean_field", 4, 16, 2) == ((2.0, 1.0, 0.25), (0.25, 0.25, 0.25))
    assert layer_scales("ntk", 9, 1, 3) == layer_scales("mean_field", 9, 1, 3)
    with pytest.raises(ValueError, match="`parameterisation` must be one of"):
        layer_scales("standard", 4, 16, 2)


@pytest.mark.parametrize("parameterisation", ["ntk", "mean_field"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_closed_form_kernel_equals_the_jacobian_by_reverse_mode(parameterisation, depth):
    policy = ts.ScaledMLP(FEATURES, width=16, depth=depth, parameterisation=parameterisation,
                          key=1, base=np.linspace(-1, 1, 8))  # fmt: skip
    theta = policy.params + 0.3 * np.random.default_rng(2).standard_normal(policy.params.size)
    jac = jax.jacrev(lambda t: policy.logit_table(t)[0, 0])(jnp.asarray(theta))
    np.testing.assert_allclose(policy.gram(theta)[0], jac @ jac.T, rtol=1e-12, atol=1e-13)
    # the generic route of Neural (jacrev per prefix, eigvalsh) gives the same J
    np.testing.assert_allclose(policy.jacobian_norms(theta), Neural.jacobian_norms(policy, theta),
                               rtol=1e-12)  # fmt: skip


def test_starting_at_sets_the_policy_exactly_and_leaves_j0_alone():
    policy = ts.ScaledMLP(FEATURES, width=8, depth=2, parameterisation="mean_field", key=3)
    a, b = (study_policy("mean_field", 8, 2, 3, eps) for eps in (0.1, 1e-5))
    for eps, p in ((0.1, a), (1e-5, b)):
        probs = np.exp(np.asarray(p.log_probs(p.params)))[0]
        np.testing.assert_allclose(probs[0], eps, rtol=1e-12)
        np.testing.assert_allclose(probs[1:], (1 - eps) / 7, rtol=1e-12)
    assert a.jacobian_norm(a.params) == b.jacobian_norm(b.params)
    assert np.array_equal(a.params, b.params)
    with pytest.raises(ValueError, match="`probs` must be strictly positive with shape"):
        policy.starting_at(np.full(4, 0.25))
    with pytest.raises(ValueError, match="`base` must have shape"):
        ts.ScaledMLP(FEATURES, width=8, depth=1, base=np.zeros(3))


def test_mean_field_output_vanishes_with_width_and_ntk_output_does_not():
    # f_theta0 has standard deviation O(1) under NTK and O(n^(-1/2)) under mean field
    spread = {
        (p, n): np.std([ts.ScaledMLP(FEATURES, width=n, depth=1, parameterisation=p, key=k)
                        .logit_table(ts.ScaledMLP(FEATURES, width=n, depth=1, parameterisation=p,
                                                  key=k).params) for k in range(20)])
        for p in ("ntk", "mean_field") for n in (16, 1024)
    }  # fmt: skip
    assert 0.6 < spread[("ntk", 1024)] / spread[("ntk", 16)] < 1.6
    assert 0.06 < spread[("mean_field", 1024)] / spread[("mean_field", 16)] < 0.25  # 1/8


@pytest.mark.parametrize(("parameterisation", "depth"), [("ntk", 1), ("mean_field", 2)])
def test_batched_solver_agrees_with_theory_sims_own_flow(parameterisation, depth):
    # the study's vmapped Tsit5 (rtol 1e-8) against time_to_gain (rtol 1e-10) on the same flows,
    # lambda 0 and 0.01; J at t_gamma against reverse-mode J on gradient_flow's parameters at
    # that time (the other two pairings compile two more programs of each solver and add no path)
    policies = [study_policy(parameterisation, 8, depth, seed, 1e-2) for seed in (0, 1)]
    lams = [0.0, 0.01]
    flows = solve_flows(policies, lams, 0.5)
    for policy, lam, flow in zip(policies, lams, flows, strict=True):
        problem = ts.Problem(policy.params, _reward(), kl_coef=lam, policy=policy)
        t_gamma = time_to_gain(problem, 0.5)
        assert flow["t_gamma"] == pytest.approx(t_gamma, rel=1e-6)
        theta = gradient_flow(problem, t_gamma, [t_gamma]).params[-1]
        assert flow["jacobian"][-1] == pytest.approx(
            Neural.jacobian_norms(policy, np.asarray(theta)).max(), rel=1e-5
        )
        assert flow["jacobian"][0] == pytest.approx(policy.jacobian_norm(policy.params), rel=1e-12)


def test_out_of_reach_gains_are_refused_with_the_reason():
    # gamma above the largest gain of the family at eps = 0.1 (2 (1 - eps) = 1.8): refused before
    # solving; a lambda so large that pi*'s gain (0.0036) is below gamma: the stiff flow spends
    # its step budget short of the horizon, and the error says so with pi*'s gain
    policy = study_policy("ntk", 8, 1, 0, 0.1)
    with pytest.raises(RuntimeError, match=r"MAX_STEPS = 8192 .* KL-optimal policy's gain is "
                       r"0\.003629"):  # fmt: skip
        solve_flows([policy], [100.0], 0.5)
    with pytest.raises(ValueError, match=r"`gamma` must be below 1\.8"):
        remark_1(widths=(8,), depths=(1,), gamma=1.9)
    with pytest.raises(ValueError, match="`policies` must be a non-empty sequence"):
        solve_flows([ts.MLP(FEATURES, width=4, depth=1)], [0.0], 0.5)
    with pytest.raises(ValueError, match="`kl_coefs` must hold one lambda per policy"):
        solve_flows([policy], [0.0, 0.1], 0.5)
    with pytest.raises(ValueError, match="`policies` must share one network shape"):
        solve_flows([policy, study_policy("ntk", 16, 1, 0, 0.1)], [0.0, 0.0], 0.5)


def test_remark_1_refuses_bad_grids_before_computing():
    with pytest.raises(ValueError, match="`parameterisations` must be a non-empty subset"):
        remark_1(parameterisations=("standard",))
    with pytest.raises(ValueError, match="`seeds` must hold at least two seeds"):
        remark_1(seeds=(0,))
    with pytest.raises(ValueError, match="`widths`"):
        remark_1(widths=(0,))
    with pytest.raises(ValueError, match="`num_points`"):
        remark_1(num_points=2)


def _stored():
    return json.loads(DATA.read_text())


def test_stored_instances_are_reproduced_and_show_the_conclusion():
    """tests/data/remark_1.json holds rows of notebook 08's study (depth 1, widths 8 and 64, both
    parameterisations, lambda 0, five seeds, seven eps). Recomputed, every row agrees; and they
    show the conclusion: the slope is -1 within 0.01 (the tabular flow's) at both widths, J
    grows before t_gamma, and the growth falls with width under NTK but not under mean field."""
    stored = _stored()
    study = remark_1(widths=(8, 64), depths=(1,), kl_coefs=(0.0,), **stored["grid"])
    assert len(study.rows) == len(stored["rows"])
    for row, old in zip(study.rows, stored["rows"], strict=True):
        for key in ("parameterisation", "width", "seed", "eps"):
            assert row[key] == old[key]
        for key in ("t_gamma", "J_0", "J_t_gamma", "theorem_4_bound"):
            assert row[key] == pytest.approx(old[key], rel=1e-7), (key, row, old)
    fit = {(f["parameterisation"], f["width"]): f for f in study.fits}
    for f in fit.values():
        assert -1.01 < f["slope_low"] <= f["slope"] <= f["slope_high"] < -0.99
        assert f["J_ratio_min"] > 1.1 and f["min_bound_ratio"] > 1
    assert fit[("ntk", 64)]["J_ratio_median"] < fit[("ntk", 8)]["J_ratio_median"] - 0.5
    assert fit[("mean_field", 64)]["J_ratio_median"] > fit[("ntk", 64)]["J_ratio_median"] + 0.5
    assert study.references[0.0] == pytest.approx(-1.0, abs=0.01)


def test_stored_widest_rows_hold_theorem_4_and_the_j_growth():
    """The width-256 rows of the full study (stored): Theorem 4 holds on each with J_{t_gamma}
    (t_gamma / bound > 1), and J_{t_gamma} / J_0 under mean field exceeds NTK's on every seed.
    One of them is re-solved here with theory_sim's own adaptive solver."""
    wide = _stored()["widest"]
    assert all(r["t_gamma"] > r["theorem_4_bound"] for r in wide)
    by = {(r["parameterisation"], r["depth"], r["seed"]): r for r in wide}
    for (param, depth, seed), r in by.items():
        if param == "ntk":
            assert by[("mean_field", depth, seed)]["J_ratio"] > r["J_ratio"]
    r = next(r for r in wide if r["depth"] == 1 and r["parameterisation"] == "mean_field")
    policy = study_policy(r["parameterisation"], r["width"], r["depth"], r["seed"], r["eps"])
    problem = ts.Problem(policy.params, _reward(), kl_coef=r["kl_coef"], policy=policy)
    assert time_to_gain(problem, 0.5) == pytest.approx(r["t_gamma"], rel=1e-6)
