"""The flow at long horizons (convergence certificate, implicit tail) and exact first crossings.

Oracles: the closed form pi* = pi_0 exp(r_RM / lambda) / Z, an independent scipy solve of the
tabular flow with dense output, and a numpy Euler loop checked on a fine grid inside every step.
"""

import math

import jax
import numpy as np
import per_sequence
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.optimize import brentq
from scipy.special import logsumexp, xlogy

import theory_sim as ts
from theory_sim import flow as ts_flow
from theory_sim.objective import _grad

# Saved states past the convergence certificate must match pi* to this (issue's requirement);
# the certificate itself guarantees total variation 1e-10 (theory_sim.flow.limit._CERTIFIED_TV).
LIMIT_TOL = 1e-9


def random_problem(rng, x, y, lam, policy=None):
    return ts.Problem(rng.normal(size=(x, y)), rng.uniform(-1, 1, (x, y)), kl_coef=lam)


def assert_matches_limit(problem, traj, star):
    """Every saved state at t >= converged_at equals pi* (and its metrics) to LIMIT_TOL."""
    late = traj.ts >= traj.converged_at
    assert late.any()
    np.testing.assert_allclose(
        traj.probs[late], np.broadcast_to(star, traj.probs[late].shape), rtol=0, atol=LIMIT_TOL
    )
    r_rm, r_gt = np.asarray(problem.reward_rm), np.asarray(problem.reward_gt)
    star2 = star.reshape(r_rm.shape)
    ref = np.exp(np.asarray(problem.ref_log_probs))
    lam = float(problem.kl_coef)
    expected = {
        "expected_rm": (star2 * r_rm).sum(-1),
        "expected_gt": (star2 * r_gt).sum(-1),
        "variance_rm": (star2 * (r_rm - (star2 * r_rm).sum(-1, keepdims=True)) ** 2).sum(-1),
        "variance_gt": (star2 * (r_gt - (star2 * r_gt).sum(-1, keepdims=True)) ** 2).sum(-1),
        "kl": (xlogy(star2, star2) - star2 * np.log(ref)).sum(-1),  # pi* may underflow to 0
    }
    for name, value in expected.items():
        got = getattr(traj, name)[late].reshape(-1, r_rm.shape[0])
        np.testing.assert_allclose(
            got, np.broadcast_to(value, got.shape), rtol=0, atol=LIMIT_TOL, err_msg=name
        )
    phi_star = np.mean(lam * logsumexp(np.log(ref) + r_rm / lam, axis=-1))
    np.testing.assert_allclose(traj.objective[late], phi_star, rtol=0, atol=LIMIT_TOL)


@pytest.mark.parametrize("x", [4])  # X = 1 at Y = 1000 is bench/run.py long's per-prompt solve
def test_a_thousand_outputs_converge_to_the_limit_by_1e15(x):
    """Y = 1000, lambda = 1, pi_0 near uniform: the explicit budget (8,192 steps) ends just
    short of the certificate, the implicit solver (dense 1000 x 1000 Jacobian) finishes in a few
    steps, and every later state is pi* to 1e-9 (a stiffer Y = 1000 tail is bench/run.py long)."""
    rng = np.random.default_rng(1000 + x)
    problem = ts.Problem(
        0.3 * rng.normal(size=(x, 1000)), rng.uniform(-1, 1, (x, 1000)), kl_coef=1.0
    )
    traj = ts.gradient_flow(problem, 1e15, save_ts=np.geomspace(1e-3, 1e15, 37))
    assert traj.ended == "converged" and traj.converged_at < 1e8
    assert traj.num_steps < ts_flow.DEFAULT_MAX_STEPS
    assert_matches_limit(problem, traj, np.asarray(ts.kl_optimal_policy(problem)))


@pytest.mark.parametrize("lam", [1e-3, 0.05, 0.2, 1.0, 10.0])
@pytest.mark.parametrize(("x", "y"), [(1, 2), (4, 2), (1, 8), (4, 8)])
def test_tabular_flow_to_1e15(lam, x, y):
    rng = np.random.default_rng(int(1000 * lam) + 10 * x + y)
    problem = random_problem(rng, x, y, lam)
    traj = ts.gradient_flow(problem, 1e15)
    assert np.all(np.isfinite(traj.probs)) and np.all(np.isfinite(traj.objective))
    # phi never decreases; 1e-12 covers the solver's round-off on saved states
    assert np.all(np.diff(traj.objective) >= -1e-12)
    star = np.asarray(ts.kl_optimal_policy(problem))
    if lam >= 0.2:
        # pi* spreads over every output: the flow converges long before 1e15
        assert traj.ended == "converged" and traj.converged_at < 1e15
    if traj.ended == "converged":
        assert_matches_limit(problem, traj, star)
    else:
        # lambda = 1e-3: pi* sits within e^-100s of a vertex; a flow whose last outputs are not
        # within the per-output bound's reach by 1e15 ends at t_max
        assert lam < 0.2 and traj.ended == "t_max" and not math.isfinite(traj.converged_at)


def test_issue_examples_and_kl_optimum_at_long_horizons():
    rng = np.random.default_rng(0)
    problem = ts.Problem(rng.normal(size=(2, 6)), rng.uniform(-1, 1, (2, 6)), kl_coef=1.0)
    for p, t_max in ((problem, 1e7), (problem.with_kl_coef(0.2), 1e9)):
        traj = ts.gradient_flow(p, t_max)
        assert traj.ended == "converged"
        assert_matches_limit(p, traj, np.asarray(ts.kl_optimal_policy(p)))


def test_autoregressive_flow_to_1e15():
    rng = np.random.default_rng(5)
    policy = ts.Autoregressive(2, 3)
    for lam in (0.05, 1.0):
        params, _ = ts.start_at(policy, rng.dirichlet(np.ones(8), size=2))
        problem = ts.Problem(params, rng.uniform(-1, 1, (2, 8)), kl_coef=lam, policy=policy)
        traj = ts.gradient_flow(problem, 1e15)
        assert np.all(np.isfinite(traj.probs)) and np.all(np.diff(traj.objective) >= -1e-12)
        if lam == 1.0:
            assert traj.ended == "converged"
        else:
            # pi* spans e^-40 and more: its smallest entries are still converging at 1e15, which
            # the stiff solver integrates to (no certificate yet)
            assert traj.ended == "t_max" and math.isfinite(traj.implicit_from)
        if traj.ended == "converged":
            assert_matches_limit(problem, traj, np.asarray(ts.kl_optimal_policy(problem)))


@pytest.mark.parametrize("t_max", [1e12, 1e15])
def test_time_to_gain_with_kl_reachable_and_unreachable(t_max):
    rng = np.random.default_rng(7)
    ar = ts.Autoregressive(2, 2)
    ar_params, _ = ts.start_at(ar, rng.dirichlet(np.ones(4), size=2))
    problems = [
        random_problem(rng, 4, 8, 0.2),
        ts.Problem(ar_params, rng.uniform(-1, 1, (2, 4)), kl_coef=0.2, policy=ar),
    ]
    for problem in problems:
        star = np.asarray(ts.kl_optimal_policy(problem))
        p0 = np.exp(np.asarray(problem.ref_log_probs))
        r = np.asarray(problem.reward_rm)
        limit_gain = (star[1] * r[1]).sum() - (p0[1] * r[1]).sum()
        assert limit_gain > 0
        far = ts.time_to_gain_details(problem, limit_gain + 1e-3, reward=r, prompt=1, t_max=t_max)
        assert far.time == math.inf and far.ended == "unreachable"
        near = ts.time_to_gain_details(problem, 0.999 * limit_gain, reward=r, prompt=1, t_max=t_max)
        assert near.reached and near.ended == "reached"
        traj = ts.gradient_flow(problem, near.time, save_ts=[0.0, near.time])
        gain = traj.expected_rm[1, 1] - traj.expected_rm[0, 1]
        assert gain == pytest.approx(0.999 * limit_gain, rel=1e-7)


# ----------------------------------------------------------------------------- first crossings


def tabular_field(logits, r_rm, lam):
    log_p0 = logits - np.logaddexp.reduce(logits)

    def field(t, theta):
        log_p = theta - np.logaddexp.reduce(theta)
        p = np.exp(log_p)
        r_kl = r_rm - lam * (log_p - log_p0)
        return p * (r_kl - p @ r_kl)

    return field


def gain_of(theta, r):
    return np.exp(theta - np.logaddexp.reduce(theta)) @ r


# r_RM prefers output 0 and ranks output 1 second; r_G rewards output 1 only, so E r_G rises while
# the flow moves mass towards outputs 0 and 1, then falls once output 0 wins (for sequences: 00
# and 01). Scaling r_RM (and lambda) by 1e-4 puts the peak near t ~ 1e4, where the solver's steps
# are much wider than the stretch of time the gain spends within 1e-6 of its maximum.
PEAK_LOGITS = np.zeros(3)
PEAK_R_GT = np.array([0.0, 1.0, 0.0])
PEAK_SCALE = 1e-4


def peak_case(policy, lam):
    """(problem, theta0 flat, field, gain) of a gain that rises and falls."""
    kl = lam * PEAK_SCALE
    if policy == "tabular":
        r_rm = PEAK_SCALE * np.array([1.0, 0.6, -1.0])
        problem = ts.Problem(PEAK_LOGITS, r_rm, PEAK_R_GT, kl_coef=kl)
        field = tabular_field(PEAK_LOGITS, r_rm, kl)
        return problem, PEAK_LOGITS, field, lambda th: gain_of(th, PEAK_R_GT)
    # V = 2, L = 2: sequences 00, 01, 10, 11; the per-sequence numpy oracle gives the field
    shape = (1, 3, 2)
    theta0 = np.zeros(6)
    r_rm = PEAK_SCALE * np.array([[1.0, 0.6, -1.0, -1.0]])
    r_gt = np.array([[0.0, 1.0, 0.0, 0.0]])
    ref = np.log(per_sequence.sequence_probs(theta0.reshape(shape), 2, 2))
    problem = ts.Problem(
        theta0.reshape(3, 2), r_rm[0], r_gt[0], kl_coef=kl, policy=ts.Autoregressive(2, 2)
    )

    def field(t, theta):
        return per_sequence.gradient(theta.reshape(shape), 2, 2, r_rm, ref, kl).ravel()

    def gain(theta):
        return float(per_sequence.sequence_probs(theta.reshape(shape), 2, 2)[0] @ r_gt[0])

    return problem, theta0, field, gain


def reference_peak(theta0, field, gain):
    """(time, gain increase, dense solution) at the first maximum of the gain, from scipy's
    DOP853 (the slope along the field by central differences: enough to find a flat maximum)."""

    def slope(t, theta):
        d = field(t, theta)
        h = 1e-6 / max(np.abs(d).max(), 1e-300)
        return (gain(theta + h * d) - gain(theta - h * d)) / (2 * h)

    slope.terminal, slope.direction = True, -1
    sol = solve_ivp(
        field, (0, 1e9), theta0, "DOP853", rtol=1e-13, atol=1e-14, events=slope, dense_output=True
    )
    return sol.t_events[0][0], gain(sol.y_events[0][0]) - gain(theta0), sol


@pytest.mark.parametrize("policy", ["tabular", "autoregressive"])
@pytest.mark.parametrize("lam", [0.0, 0.05])
@pytest.mark.parametrize("below", [1e-5, 1e-6])
def test_first_crossing_held_only_near_a_peak(policy, lam, below):
    problem, theta0, field, gain = peak_case(policy, lam)
    t_peak, peak_gain, sol = reference_peak(theta0, field, gain)
    gamma = peak_gain - below
    t_ref = brentq(
        lambda t: gain(sol.sol(t)) - gain(theta0) - gamma, 0.0, t_peak, xtol=1e-12, rtol=1e-14
    )
    found = ts.time_to_gain_details(problem, gamma, t_max=1e9)
    assert found.reached and found.time < t_peak
    # Near a maximum the crossing is ill-conditioned: an error e in the gain moves it by
    # e / g'(t). The solvers' gains agree to about 1e-10 (rtol 1e-10 on the logits), so allow
    # 1e-10 / g'(t_ref): 1e-3 to 4e-3 here, while the window above the target is 1e2 wide.
    h = 1e-3 * (t_peak - t_ref)
    slope = (gain(sol.sol(t_ref + h)) - gain(sol.sol(t_ref - h))) / (2 * h)
    assert found.time == pytest.approx(t_ref, abs=1e-10 / slope)
    # just above the peak: never reached
    assert ts.time_to_gain(problem, peak_gain + 1e-6, t_max=1e9) == math.inf


def euler_first_crossing(logits, r_rm, r_gt, lam, gamma, dt, max_steps):
    """Independent Euler reference: numpy steps, every segment scanned on a 64-point grid."""
    field = tabular_field(logits, r_rm, lam)
    target = gain_of(logits, r_gt) + gamma
    theta = logits.copy()
    grid = np.linspace(0.0, dt, 65)
    for k in range(max_steps):
        d = field(0.0, theta)
        values = [gain_of(theta + tau * d, r_gt) - target for tau in grid]
        hit = np.flatnonzero(np.asarray(values) >= 0)
        if hit.size:
            j = hit[0]
            tau = brentq(
                lambda s, a=theta, b=d: gain_of(a + s * b, r_gt) - target,
                grid[j - 1],
                grid[j],
                xtol=1e-14,
            )
            return k * dt + tau
        theta = theta + dt * d
    return math.inf


@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_euler_first_crossing_inside_a_step(lam):
    r_rm = PEAK_SCALE * np.array([1.0, 0.6, -1.0])
    kl = lam * PEAK_SCALE
    dt = 400.0  # about 30 steps to the peak: Euler's own peak falls inside one step
    problem = ts.Problem(PEAK_LOGITS, r_rm, PEAK_R_GT, kl_coef=kl)
    # Euler's own peak gain, from a fine scan of its path
    field = tabular_field(PEAK_LOGITS, r_rm, kl)
    theta, best = PEAK_LOGITS.copy(), -np.inf
    for _ in range(60):
        d = field(0.0, theta)
        best = max(best, max(gain_of(theta + s * d, PEAK_R_GT) for s in np.linspace(0, dt, 2001)))
        theta = theta + dt * d
    gamma = best - gain_of(PEAK_LOGITS, PEAK_R_GT) - 1e-8
    t_ref = euler_first_crossing(PEAK_LOGITS, r_rm, PEAK_R_GT, kl, gamma, dt, 60)
    assert math.isfinite(t_ref) and t_ref % dt > 0
    got = ts.time_to_gain(problem, gamma, t_max=60 * dt, method="euler", dt=dt)
    assert got == pytest.approx(t_ref, rel=1e-9)


def _log_linear_problem(seed, num_prompts, kl_coef):
    rng = np.random.default_rng(seed)
    policy = ts.LogLinear(rng.normal(size=(num_prompts, 8, 3)))
    r_rm = rng.uniform(-1, 1, (num_prompts, 8))
    return ts.Problem(rng.normal(size=3), r_rm, kl_coef=kl_coef, policy=policy)


@pytest.mark.parametrize(("seed", "num_prompts", "kl_coef"), [(0, 1, 0.2), (1, 2, 0.2)])
def test_log_linear_flows_settle_and_reach_1e15(seed, num_prompts, kl_coef):
    """A log-linear flow with lambda > 0 that settles at a stationary point (no closed form):
    past settling, every saved state up to t = 1e15 matches a converged fixed-step reference.

    Reference: Euler with dt = 0.5 (stable here) for 1e5 steps. Euler's fixed points are exactly
    the field's zeros whatever dt, and its last 1,000 steps do not move theta at all in float64,
    so it sits on the stationary point to well within 1e-7."""
    problem = _log_linear_problem(seed, num_prompts, kl_coef)
    dt, steps = 0.5, 100_000
    reference = ts.gradient_flow(
        problem, dt * steps, save_ts=[dt * (steps - 1000), dt * steps], method="euler", dt=dt
    ).params
    assert np.abs(reference[1] - reference[0]).max() < 1e-13
    save = np.geomspace(1e-2, 1e15, 35)
    traj = ts.gradient_flow(problem, 1e15, save_ts=save)
    assert traj.ended == "t_max" and math.isfinite(traj.implicit_from)
    assert traj.num_steps < ts_flow.DEFAULT_MAX_STEPS
    settled = save >= 2 * dt * steps
    assert settled.sum() >= 20
    expected = np.broadcast_to(reference[1], traj.params[settled].shape)
    np.testing.assert_allclose(traj.params[settled], expected, atol=1e-7, rtol=0)
    assert np.all(np.diff(traj.objective) >= -1e-12)  # phi never decreases
    # t_gamma with t_max = 1e15 for a target below the settled gain: found, and the flow's
    # gain at that time is the target
    gain = traj.expected_rm[-1, 0] - traj.expected_rm[0, 0]
    assert gain > 0
    t_gamma = ts.time_to_gain(problem, 0.9 * gain, reward=problem.reward_rm, t_max=1e15)
    at = ts.gradient_flow(problem, t_gamma, save_ts=[0.0, t_gamma]).expected_rm[:, 0]
    assert at[1] - at[0] == pytest.approx(0.9 * gain, rel=1e-7)


def test_a_log_linear_flow_that_drifts_to_infinity_reaches_1e15():
    """With lambda = 0.2 this instance's maximiser lies at infinity (a face of the simplex whose
    reward gain outweighs its bounded KL): w grows like log t, which is not stiff."""
    problem = _log_linear_problem(2, 2, 0.2)
    save = np.geomspace(1e-2, 1e15, 35)
    traj = ts.gradient_flow(problem, 1e15, save_ts=save)
    assert traj.ended == "t_max" and np.all(np.isfinite(traj.params))
    assert np.all(np.diff(traj.objective) >= -1e-12)
    assert np.abs(traj.params[-1]).max() > np.abs(traj.params[-10]).max()  # still drifting


def test_log_linear_targets_beyond_the_certificates_are_refused_at_once():
    rng = np.random.default_rng(3)
    policy = ts.LogLinear(rng.normal(size=(2, 6, 3)))
    problem = ts.Problem(rng.normal(size=3), rng.uniform(-1, 1, (2, 6)), kl_coef=0.2, policy=policy)
    r = np.asarray(problem.reward_rm)
    start = (np.exp(np.asarray(problem.ref_log_probs[0])) * r[0]).sum()
    # above max r (for any policy), and above E_{pi*} r plus the Pinsker bound from phi's gap
    for gamma in (r[0].max() - start + 1e-3, 0.6):
        for t_max in (1e12, 1e15):
            out = ts.time_to_gain_details(problem, gamma, reward=r, t_max=t_max)
            assert out.ended == "unreachable" and out.time == math.inf and out.num_steps <= 10
    reached = ts.time_to_gain_details(problem, 0.01, reward=r, t_max=1e15)
    traj = ts.gradient_flow(problem, reached.time, save_ts=[0.0, reached.time])
    assert traj.expected_rm[1, 0] - traj.expected_rm[0, 0] == pytest.approx(0.01, rel=1e-7)


def test_a_stopped_solve_says_why_without_guessing():
    problem = ts.Problem(np.array([-4.0, 0.0]), np.array([0.5, -0.5]))
    with pytest.raises(RuntimeError, match=r"after \d+ steps \(kl_coef = 0\)"):
        ts.gradient_flow(problem, 1e9, max_steps=5)
    # logits whose log-probabilities overflow are refused up front, not inside the solve
    with pytest.raises(ValueError, match="`init_logits` must give every output a positive"):
        ts.Problem(np.array([1e308, -1e308]), np.array([1.0, -1.0]))


@settings(max_examples=12)
@given(
    seed=st.integers(0, 2**31 - 1),
    log_lam=st.floats(np.log(0.05), np.log(10.0)),
    logit_scale=st.floats(0.0, 3.0),
)
def test_long_flows_reach_their_limit_on_random_instances(seed, log_lam, logit_scale):
    rng = np.random.default_rng(seed)
    lam = float(np.exp(log_lam))
    problem = ts.Problem(
        logit_scale * rng.normal(size=(2, 5)), rng.uniform(-1, 1, (2, 5)), kl_coef=lam
    )
    traj = ts.gradient_flow(problem, 1e15, save_ts=np.geomspace(1e-2, 1e15, 18))
    assert np.all(np.diff(traj.objective) >= -1e-12)
    if traj.ended == "converged":
        assert_matches_limit(problem, traj, np.asarray(ts.kl_optimal_policy(problem)))
    else:
        # not certified by 1e15 only when pi* spans many decades; the last state is still close
        star = np.asarray(ts.kl_optimal_policy(problem))
        assert star.min() < 1e-8
        np.testing.assert_allclose(traj.probs[-1], star, atol=1e-6)


@pytest.mark.parametrize("lam", [1e-13, 1e-8])
def test_a_limit_too_deep_to_reach_keeps_the_state_precise(lam):
    # r / lambda ~ 1e7-1e12: log pi*(bad) is far below anything float64 can hold beside log pi_0
    # in one coordinate. Measured from pi* itself, the state lost a third of its digits and the
    # solve stopped at t = 9e7 after 73,728 steps (a Theorem 5 instance from the tightness
    # search). The flow is the lambda = 0 flow to within lambda * |log pi / pi_0| <= 4e-7 in
    # the advantage (relative 1e-6 in t_gamma at lambda = 1e-8, 1e-11 at 1e-13).
    d0, d1, t_star = -18.0, -10.0, 1e8
    delta = ((d1 + math.sinh(d1)) - (d0 + math.sinh(d0))) / t_star
    gamma = delta * (1 / (1 + math.exp(-d1)) - 1 / (1 + math.exp(-d0)))
    problem = ts.Problem(np.array([d0, 0.0]), np.array([delta / 2, -delta / 2]), kl_coef=lam)
    gain = ts.time_to_gain_details(problem, gamma, t_max=1e15)
    assert gain.time == pytest.approx(t_star, rel=1e-9 if lam < 1e-10 else 1e-5)
    assert gain.num_steps < 2000
    free = ts.gradient_flow(problem.with_kl_coef(0.0), 1e15, save_ts=np.geomspace(1, 1e15, 16))
    traj = ts.gradient_flow(problem, 1e15, save_ts=np.geomspace(1, 1e15, 16))
    assert traj.ended == "t_max" and traj.num_steps < 4000
    np.testing.assert_allclose(traj.probs, free.probs, rtol=0, atol=1e-9 if lam < 1e-10 else 1e-5)


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.05, 10.0, 1e-6])
@pytest.mark.parametrize("y", [2, 8, 1000])
def test_the_tabular_field_is_the_pulled_back_field(lam, y):
    # the tabular shortcut (one exp and one expm1 per element) against the general field on the
    # same table: at pi_0, at random states, 1e-9 from the limit (where both are accurate
    # relative to the distance, so they agree relative to the field there) and at the limit
    # (exactly 0); lambda = 1e-6 with r / lambda up to 1e6 floors the frame (nonzero offset)
    rng = np.random.default_rng(y)
    problem = ts.Problem(rng.normal(size=(3, y)) * 3, rng.uniform(-1, 1, (3, y)), kl_coef=lam)
    frame, w0 = ts_flow.coordinates._coordinates(problem)
    assert bool(np.any(np.asarray(frame.offset) != 0)) == (lam == 1e-6)
    limit = ts_flow.coordinates._limit_state(frame, w0)
    states = [w0, w0 + rng.normal(size=w0.shape), limit + 1e-9 * rng.normal(size=w0.shape)]
    fast = jax.jit(lambda w: ts_flow.coordinates._tabular_field(problem, frame, w))
    general = jax.jit(lambda w: ts_flow.coordinates._pulled_back_field(problem, frame, w))
    for i, w in enumerate(states):
        a, b = np.asarray(fast(w)), np.asarray(general(w))
        assert np.abs(a).max() > 0 or (i == 2 and lam == 1e-6)  # a floored pi* is a point mass
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
        assert np.all(np.abs(a.sum(axis=-1)) <= 1e-15 * np.abs(a).max() * y)
    if lam > 0 and lam != 1e-6:
        assert np.all(np.asarray(fast(limit)) == 0.0)


# Two autoregressive flows (V = 2, L = 3) from a random search over lambda, reward scale and pi_0
STALLED = {  # lambda = 2.7e-5, rewards of order 1e-3: pi_t(y_1 = 0) ~ 1e-11 while pi* wants it
    "params": [[[-1.14569, -0.382732], [-0.011255, -4.492592], [-0.14457, -2.005408],
                [-12.983349, -2e-06], [-3.5e-05, -10.261857], [-13.940727, -1e-06],
                [-0.000823, -7.10308]]],
    "r": [-0.00100386, -0.0006038, 0.00027502, 0.00079623, -0.000961, -0.00020229, 0.00022281,
          0.00011379],
    "kl_coef": 2.704616514476856e-05,
}  # fmt: skip
DECADES = {  # lambda = 0.044: pi* spans 1e-71 to 1
    "params": [[[-1.62354, -0.219649], [-0.515633, -0.909123], [-5.350739, -0.004756],
                [-0.267129, -1.450617], [-0.638345, -0.751128], [-0.923346, -0.50615],
                [-0.102613, -2.327659]]],
    "r": [2.81398413, -1.55181493, -0.06057675, 2.62591582, 3.14306471, -3.15363095, -1.21216999,
          3.90394136],
    "kl_coef": 0.04417763316457179,
}  # fmt: skip


def test_a_flow_whose_limit_spans_decades_is_certified_by_the_per_output_bound():
    # Pinsker needs KL(pi_t || pi*) <= 2e-20; the per-output bound certifies 1e-10 in every
    # probability at KL ~ 1e-13 here, at t = 1.1e13 instead of beyond 1e15 (before: RuntimeError)
    problem = ts.Problem(
        np.array(DECADES["params"]), np.array([DECADES["r"]]), kl_coef=DECADES["kl_coef"],
        policy=ts.Autoregressive(2, 3),
    )  # fmt: skip
    traj = ts.gradient_flow(problem, 1e15)
    assert traj.ended == "converged" and traj.converged_at < 1e14 and traj.num_steps < 2000
    assert_matches_limit(problem, traj, np.asarray(ts.kl_optimal_policy(problem)))


def test_a_continued_solve_far_from_t_0_takes_real_steps():
    # the explicit budget runs out between 1e13 and 1e15 (where depends on round-off in the field:
    # 4.2e14, then 2.8e13); diffrax's own first step (1e-6 where the field is tiny) is below
    # float64's spacing beyond t ~ 1e10, so the continuation stalled at that t for ever
    problem = ts.Problem(
        np.array(STALLED["params"]), np.array([STALLED["r"]]), kl_coef=STALLED["kl_coef"],
        policy=ts.Autoregressive(2, 3),
    )  # fmt: skip
    traj = ts.gradient_flow(problem, 1e15, save_ts=np.geomspace(1e12, 1e15, 12))
    assert traj.ended == "t_max" and 1e10 < traj.implicit_from < 1e15
    assert np.all(np.diff(traj.objective) >= -1e-15)
    # against scipy's Radau (implicit, stiff) on the plain gradient theta' = grad phi(theta)
    shape = problem.params0.shape
    field = jax.jit(lambda th: _grad(problem, th.reshape(shape)).ravel())
    jacobian = jax.jit(jax.jacfwd(lambda th: _grad(problem, th.reshape(shape)).ravel()))
    ref = solve_ivp(
        lambda t, th: np.asarray(field(th)),
        (0.0, 1e15),
        np.asarray(problem.params0).ravel(),
        method="Radau",
        t_eval=traj.ts,
        rtol=1e-10,
        atol=1e-12,
        jac=lambda t, th: np.asarray(jacobian(th)),
    )
    log_probs = jax.jit(problem.log_probs)
    probs = np.stack([np.exp(log_probs(th.reshape(shape))) for th in ref.y.T])
    np.testing.assert_allclose(traj.probs, probs, rtol=0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), y=st.integers(2, 40), spread=st.floats(0.0, 60.0))
def test_the_total_variation_bound_holds(seed, y, spread):
    rng = np.random.default_rng(seed)
    log_star = rng.normal(size=y) * spread
    log_star -= np.logaddexp.reduce(log_star)
    star = np.exp(log_star)
    for scale in (1e-12, 1e-6, 1e-2, 1.0):
        pi = np.exp(log_star + scale * rng.normal(size=y))
        pi /= pi.sum()
        # KL summed as pi* f(u), f(u) = u e^u - e^u + 1, without cancellation (as the flow does)
        u = np.log(pi) - log_star
        e = np.expm1(u)
        kl = float(np.sum(np.where(np.abs(u) < 1, star * (u * e - (e - u)), pi * u - pi + star)))
        bound = float(ts_flow.limit._tv_bound(np.array([max(kl, 0.0)]), log_star[None])[0])
        # 1e-13: round-off of two separately normalised float64 distributions (what KL cannot
        # see), a thousand times below the 1e-10 the certificate uses the bound for
        assert 0.5 * np.abs(pi - star).sum() <= bound * (1 + 1e-9) + 1e-13


def _radau_gain_time(problem, reward, gamma, t_max):
    """t_gamma from scipy's Radau (implicit, stiff) on the plain gradient theta' = grad phi(theta)
    with an event at the gain: an integrator sharing nothing with theory_sim's but the field."""
    shape = problem.params0.shape
    field = jax.jit(lambda th: _grad(problem, th.reshape(shape)).ravel())
    jacobian = jax.jit(jax.jacfwd(lambda th: _grad(problem, th.reshape(shape)).ravel()))
    log_probs = jax.jit(problem.log_probs)
    r = np.asarray(reward)

    def gain(t, th):
        return float(np.exp(log_probs(th.reshape(shape)))[0] @ r[0]) - start - gamma

    start = float(np.exp(log_probs(problem.params0))[0] @ r[0])
    gain.terminal, gain.direction = True, 1.0
    ref = solve_ivp(
        lambda t, th: np.asarray(field(th)), (0.0, t_max), np.asarray(problem.params0).ravel(),
        method="Radau", rtol=1e-11, atol=1e-13, jac=lambda t, th: np.asarray(jacobian(th)),
        events=gain,
    )  # fmt: skip
    (times,) = ref.t_events
    return float(times[0])


@pytest.mark.parametrize("kind", ["tabular", "log-linear", "log-linear, more features"])
def test_time_to_gain_crosses_after_the_implicit_hand_over(kind, monkeypatch):
    """With the explicit budget cut to 24 steps the solve hands its state to the implicit solver
    long before the target: the crossing found after the hand-over matches scipy's Radau, and so
    does the crossing found with the default budget (all explicit). The tabular solve is padded
    to its bucket until the hand-over and unpadded after it; a log-linear state with more
    parameters than outputs is handed over whole."""
    rng = np.random.default_rng(11)
    if kind == "tabular":
        problem = ts.Problem(2 * rng.normal(size=(1, 6)), rng.uniform(-1, 1, (1, 6)), kl_coef=0.05)
    elif kind == "log-linear":
        problem = _log_linear_problem(0, 1, 0.2)
    else:
        policy = ts.LogLinear(rng.normal(size=(1, 4, 6)))
        problem = ts.Problem(rng.normal(size=6), rng.uniform(-1, 1, (1, 4)), kl_coef=0.2,
                             policy=policy)  # fmt: skip
    r = np.asarray(problem.reward_rm)
    t_max = 1e6
    settled = ts.gradient_flow(problem, t_max, save_ts=[0.0, t_max]).expected_rm[:, 0]
    gamma = 0.8 * float(settled[1] - settled[0])
    expected = _radau_gain_time(problem, r, gamma, t_max)
    default = ts.time_to_gain_details(problem, gamma, reward=r, t_max=t_max)
    assert default.time == pytest.approx(expected, rel=1e-6)
    monkeypatch.setattr(ts_flow.crossing, "EXPLICIT_BUDGET", 24)
    found = ts.time_to_gain_details(problem, gamma, reward=r, t_max=t_max)
    assert found.implicit_from < found.time  # handed over with the target still ahead
    assert found.time == pytest.approx(expected, rel=1e-6)
