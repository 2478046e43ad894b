import math

import numpy as np
import pytest

import theory_sim as ts


def sigmoid(d):
    return 1.0 / (1.0 + math.exp(-d))


def two_output_case(d0, d1, t_star):
    """Rewards (delta/2, -delta/2) and gamma such that the closed form gives t_gamma = t_star.

    theory.md section 2: with d = theta_1 - theta_2, the time from d0 to d1 is
    [(d1 + sinh d1) - (d0 + sinh d0)] / (a - b).
    """
    delta = ((d1 + math.sinh(d1)) - (d0 + math.sinh(d0))) / t_star
    assert delta <= 2.0
    gamma = delta * (sigmoid(d1) - sigmoid(d0))
    problem = ts.Problem(np.array([d0, 0.0]), np.array([delta / 2, -delta / 2]))
    return problem, gamma


CLOSED_FORM_CASES = [
    (0.0, 0.009, 1e-2),
    (0.0, 0.9, 1.0),
    (-3.0, 1.0, 1e2),
    (2.0, 5.0, 1e4),
    (-1.0, 0.0, 1e6),
    (0.0, 2.0, 1e8),
    (-4.0, 3.0, 1e9),
]


@pytest.mark.parametrize(("d0", "d1", "t_star"), CLOSED_FORM_CASES)
def test_time_to_gain_matches_two_output_closed_form(d0, d1, t_star):
    problem, gamma = two_output_case(d0, d1, t_star)
    t = ts.time_to_gain(problem, gamma)
    # the solver (rtol 1e-10) lands within 5e-10 on these cases; 1e-8 leaves 20x room and is
    # 100x inside TIME_RTOL = 1e-6, the slack a time row of the checks allows (test_constants.py)
    assert t == pytest.approx(t_star, rel=1e-8)


def test_one_prompt_and_explicit_reward_agree():
    problem, gamma = two_output_case(-1.0, 1.0, 10.0)
    assert ts.time_to_gain(problem, gamma, reward=problem.reward_rm[0]) == pytest.approx(10.0)
    # an evaluated reward that the flow makes worse is never raised: inf
    assert ts.time_to_gain(problem, 0.01, reward=-problem.reward_rm[0], t_max=1e6) == math.inf
    # t_max shorter than t_gamma: inf
    assert ts.time_to_gain(problem, gamma, t_max=9.0) == math.inf


def test_objective_never_decreases_along_the_flow(rng):
    problem = ts.Problem(rng.normal(size=(3, 6)), rng.uniform(-1, 1, (3, 6)), kl_coef=0.05)
    traj = ts.gradient_flow(problem, t_max=1e4)
    # the saved phi values are exact functions of solver states; 1e-13 covers their round-off
    assert np.all(np.diff(traj.objective) >= -1e-13)
    assert traj.objective[-1] > traj.objective[0]
    assert traj.probs.shape == (129, 3, 6) and traj.kl.shape == (129, 3)
    np.testing.assert_allclose(traj.probs.sum(-1), 1.0, atol=1e-13)
    assert traj.kl[0].max() == 0.0 and np.all(traj.kl >= 0)


def test_flow_converges_to_the_kl_optimum(rng):
    p0 = rng.dirichlet(np.ones(5), size=2)
    r = rng.uniform(-1, 1, (2, 5))
    lam = 1.0
    problem = ts.Problem(np.log(p0), r, kl_coef=lam)
    traj = ts.gradient_flow(problem, t_max=1e4, save_ts=[0.0, 1e4])
    star = p0 * np.exp(r / lam)
    star /= star.sum(-1, keepdims=True)
    # convergence is exponential (rate ~ lambda min pi* / X, here > 2e-3); by t = 1e4 the gap is
    # far below the solver tolerance, so the probabilities agree to rtol-level accuracy.
    np.testing.assert_allclose(traj.probs[-1], star, atol=1e-8)


def test_identical_prompts_take_exactly_x_times_as_long(rng):
    logits = rng.normal(size=5)
    r_rm = 0.3 * rng.uniform(-1, 1, 5)
    r_gt = rng.uniform(-1, 1, 5)
    gamma = 0.5 * (r_rm.max() - np.exp(logits - np.logaddexp.reduce(logits)) @ r_rm)
    single = ts.Problem(logits, r_rm, kl_coef=0.0)
    t1 = ts.time_to_gain(single, gamma, reward=r_rm)
    for x in (2, 3, 7):
        many = ts.Problem(np.tile(logits, (x, 1)), np.tile(r_rm, (x, 1)), np.tile(r_gt, (x, 1)))
        tx = ts.time_to_gain(many, gamma, reward=np.tile(r_rm, (x, 1)), prompt=x - 1)
        assert tx == pytest.approx(x * t1, rel=1e-8)


def test_euler_is_gradient_ascent(rng):
    problem = ts.Problem(rng.normal(size=(2, 4)), rng.uniform(-1, 1, (2, 4)), kl_coef=0.1)
    dt = 0.05
    theta = np.asarray(problem.params0)
    manual = [theta]
    for _ in range(40):
        theta = theta + dt * np.asarray(ts.policy_gradient(problem, theta))
        manual.append(theta)
    ts_grid = dt * np.arange(41)
    traj = ts.gradient_flow(problem, t_max=ts_grid[-1], save_ts=ts_grid, method="euler", dt=dt)
    np.testing.assert_allclose(traj.params, np.stack(manual), atol=1e-13)
    assert traj.num_steps == 40


def test_euler_converges_at_order_one(rng):
    problem = ts.Problem(rng.normal(size=4), rng.uniform(-1, 1, 4), kl_coef=0.05)
    start = float(ts.prompt_objective(problem, problem.params0[0]))
    gamma = 0.3 * (problem.reward_rm.max() - start)
    exact = ts.time_to_gain(problem, gamma, reward=problem.reward_rm[0])
    dts = exact * np.array([1e-2, 5e-3, 2.5e-3, 1.25e-3])
    errors = [
        abs(
            ts.time_to_gain(
                problem, gamma, reward=problem.reward_rm[0], t_max=2 * exact, method="euler", dt=dt
            )
            - exact
        )
        for dt in dts
    ]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.1)
    # and the saved trajectory converges at order one too
    t_max = 2 * exact
    ref = ts.gradient_flow(problem, t_max, save_ts=[t_max]).params[-1]
    errs = [
        np.abs(
            ts.gradient_flow(problem, t_max, [t_max], method="euler", dt=dt).params[-1] - ref
        ).max()
        for dt in dts
    ]
    assert np.polyfit(np.log(dts), np.log(errs), 1)[0] == pytest.approx(1.0, abs=0.1)


def test_unreachable_targets_are_proven_with_kl(rng):
    p0 = rng.dirichlet(np.ones(4))
    r = rng.uniform(-1, 1, 4)
    lam = 0.1
    problem = ts.Problem(np.log(p0), r, kl_coef=lam)
    star = p0 * np.exp(r / lam)
    star /= star.sum()
    limit_gain = star @ r - p0 @ r
    reached = ts.time_to_gain_details(problem, 0.999 * limit_gain)
    assert reached.reached and np.isfinite(reached.time)
    beyond = ts.time_to_gain_details(problem, 1.001 * limit_gain)
    assert beyond.time == math.inf and not beyond.reached
    assert beyond.num_steps < 10_000  # stopped by the certificate, far before t_max = 1e12


def test_time_to_gain_reaches_the_target(rng):
    problem = ts.Problem(
        rng.normal(size=(2, 6)),
        rng.uniform(-1, 1, (2, 6)),
        rng.uniform(-1, 1, (2, 6)),
        kl_coef=0.01,
    )
    gamma = 0.05
    t = ts.time_to_gain(problem, gamma, prompt=1, reward=problem.reward_rm)
    traj = ts.gradient_flow(problem, t, save_ts=[0.0, t])
    gain = traj.expected_rm[1, 1] - traj.expected_rm[0, 1]
    assert gain == pytest.approx(gamma, rel=1e-7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: ts.time_to_gain(p, 0.0), "`gamma` must be > 0"),
        (lambda p: ts.time_to_gain(p, -1.0), "`gamma` must be > 0"),
        (lambda p: ts.time_to_gain(p, 0.1, prompt=2), r"`prompt` must be in \[0, 1\]"),
        (lambda p: ts.time_to_gain(p, 0.1, prompt=1.0), "`prompt` must be an integer"),
        (lambda p: ts.time_to_gain(p, 0.1, t_max=0.0), "`t_max` must be > 0"),
        (lambda p: ts.time_to_gain(p, 0.1, reward=np.zeros(3)), r"`reward` must have shape"),
        (lambda p: ts.time_to_gain(p, 0.1, method="rk4"), "`method` must be"),
        (lambda p: ts.time_to_gain(p, 0.1, method="euler"), "`dt` is required"),
        (lambda p: ts.time_to_gain(p, 0.1, method="euler", dt=-1.0), "`dt` must be > 0"),
        (lambda p: ts.time_to_gain(p, 0.1, rtol=0.0), "`rtol` must be > 0"),
        (lambda p: ts.time_to_gain(p, 0.1, max_steps=0), "`max_steps` must be"),
        (lambda p: ts.gradient_flow(p, -1.0), "`t_max` must be > 0"),
        (lambda p: ts.gradient_flow(p, 1.0, save_ts=[0.0, 2.0]), r"`save_ts` must lie"),
        (lambda p: ts.gradient_flow(p, 1.0, save_ts=[0.5, 0.1]), "non-decreasing"),
        (lambda p: ts.gradient_flow(p, 1.0, method="euler", dt=2.0), "`dt` must be at most"),
        # refused up front, not a 1e13-step hang: the default t_max is 1e12
        (lambda p: ts.time_to_gain(p, 1e-3, method="euler", dt=0.1), "needs 1e\\+13 steps"),
        (lambda p: ts.gradient_flow(p, 1e6, method="euler", dt=1e-6), "above `max_steps`"),
        (
            lambda p: ts.gradient_flow(p, 10.0, method="euler", dt=1.0, max_steps=5),
            "needs 10 steps, above `max_steps` = 5",
        ),
    ],
)
def test_bad_input(call, message):
    problem = ts.Problem(np.zeros((2, 3)), np.array([[1.0, 0.0, 0.0]] * 2))
    with pytest.raises(ValueError, match=message):
        call(problem)


def test_max_steps_exhaustion_is_reported():
    problem, gamma = two_output_case(-4.0, 3.0, 1e9)
    with pytest.raises(RuntimeError, match="max_steps"):
        ts.time_to_gain(problem, gamma, max_steps=5)


@pytest.mark.parametrize("case", ["tabular", "tabular kl", "autoregressive"])
def test_gains_below_float64_resolution_are_refused_and_those_above_are_accurate(case):
    # The gain E_t r - E_0 r is resolved to delta = eps max|r| (1 + max|w_0|); time_to_gain
    # refuses gamma < 1e6 delta and is accurate to 1e-6 above it. The reference is t/gamma
    # fitted by a quadratic in gamma on [1e-5, 4e-5] (where the solver is accurate to about
    # 1e-9) and extrapolated down. At gamma = 1e-20 the target E_0 r + gamma is E_0 r in float64
    # (t_gamma would be 0), and at 1e-15 t_gamma is 5% off.
    from theory_sim import flow

    rng = np.random.default_rng(1)
    reward = rng.uniform(-1.0, 1.0, 8)
    if case == "autoregressive":
        policy = ts.Autoregressive(2, 3)
        problem = ts.Problem(2.0 * rng.normal(size=(7, 2)), reward, policy=policy)
    else:
        problem = ts.Problem(rng.normal(size=8), reward, kl_coef=0.05 if "kl" in case else 0.0)
    _, w0 = flow.coordinates._jit_coordinates(problem)
    delta = np.finfo(np.float64).eps * np.abs(reward).max() * (1 + np.abs(np.asarray(w0)).max())
    threshold = flow.GAIN_RESOLUTION * delta
    assert 1e-10 < threshold < 1e-8  # lambda = 0.05 puts the frame at pi*, 20 logits away
    euler = {"method": "euler", "dt": 0.01, "t_max": 1.0}
    for gamma, method in ((0.5 * threshold, {}), (1e-20, euler)):
        with pytest.raises(ValueError, match=r"`gamma` = .* is below what float64 resolves"):
            ts.time_to_gain(problem, gamma, **method)
    gammas = np.array([4e-5, 2e-5, 1e-5])
    fit = np.polyfit(gammas, [ts.time_to_gain(problem, g) / g for g in gammas], 2)
    gamma = 2.0 * threshold
    expected = gamma * np.polyval(fit, gamma)
    assert ts.time_to_gain(problem, gamma) == pytest.approx(expected, rel=1e-6)
