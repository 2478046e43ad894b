"""Benchmarks for theory_sim; every number is a ratio against a baseline run in the same process.

    python bench/run.py            # all benchmarks but coldstart
    python bench/run.py flat       # one of: flat, long, batched, autoregressive, estimators,
                                   # sweep, sweep-mixed, cores, accuracy, neural, field, evaluate
    python bench/run.py coldstart [full]

flat:    t_gamma >= 1e6 on a flat landscape to relative accuracy 1e-6: adaptive flow against
         fixed-step Euler at the step size that accuracy needs (gradient evaluations, wall time).
batched: 256 single-prompt problems x 1000 outputs x 2000 Euler steps (float64): vmapped + jitted
         JAX against a vectorised numpy loop with the closed-form gradient and against numpy one
         problem at a time (measured on a subset; throughput is per problem-step).
autoregressive: exact gradient evaluations per second for V = 4, L = 8 and V = 2, L = 20 against
         a straightforward per-sequence numpy implementation (tests/per_sequence.py), and how the
         time per gradient grows with V^L (fitted exponent; linear is 1).
estimators: RLOO gradient estimates for 1000 seeds (k = 8 samples each, one prompt, Y = 100,
         tabular) vmapped and jitted against a numpy loop over seeds with the closed form
         grad log pi(y) = e_y - pi; samples per second.
long:    gradient_flow(problem, 1e12) with lambda = 0.1, X = 4, Y = 1000: gradient evaluations and
         wall time, against the evaluations fixed-step Euler needs at its largest stable step.
sweep:   128 sweep cells in one theory_sim.sweep.run_cells call (vmapped groups of cells of like
         estimated cost, on every core) against the same cells solved one at a time with
         time_to_gain and gradient_flow.
neural:  exact gradients per second for a transformer (V = 4, L = 6, width 32, depth 2) against
         the same gradient with every sequence run through the model on its own, beside the
         tabular autoregressive policy of the same V, L; time per gradient against V^L; the
         memory estimate and the refusal of a size that does not fit.
field:   the flow's vector field for tabular policies (pi and log pi - log pi* from one exp and
         one expm1 per element) in a fused loop of 1000 evaluations, against the general field
         (softmax, then the relative log-softmax) and against a hand-written plain-softmax field
         with one exp per element and no limit coordinates (the floor: it is not accurate near
         pi*); microseconds per evaluation of a batch.
coldstart: `theory-sim check --no-exponents` in a fresh process with an empty cache directory
         (XDG_CACHE_HOME pointed at a new temporary directory), then again with the cache it
         left (warm), and `reproduce --quick` cold: wall times, the first run against the second,
         and the programs each made ready (XLA compilations and reads from JAX's cache, counted
         by bench/count_programs.py). `coldstart full` adds `check` with its exponent fits and
         the full `reproduce`, both cold.
evaluate: theory-sim's score-dump evaluation at scale: 10^5 prompts x 64 responses x 8 reward
         models (a Parquet file of 6.4 million rows with gold scores) loaded and measured
         (accuracy, variance, all-equal fraction, quantiles, 2000-resample bootstrap intervals;
         not the flow), against reading the file alone with pandas; target under 60 s on two
         cores, peak memory a small multiple of the input's arrays.
cores:   a 512-cell sweep (run_sweep, chunks of 64) pinned to one core against the default
         (every core): throughput ratio, target >= 1.7x on 2 cores; the results must be equal.
"""

from __future__ import annotations

import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import theory_sim as ts
from theory_sim import flow
from theory_sim.objective import _jit_grad

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests"))
import per_sequence  # the tests' per-sequence oracle doubles as the baseline


def _best_of(fn, repeats=3):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _two_output_flat_instance(d0=-15.5, d1=2.0, delta=2.0):
    """Rewards (1, -1) with pi_0(good) = sigmoid(d0) ~ 2e-7: flat because the policy rarely
    samples the good output (Var0 ~ 7e-7), as in the paper, not because rewards are rescaled.
    The closed form (theory.md section 2) gives t_gamma from d0 to d1, here about 1.35e6."""
    t_star = ((d1 + math.sinh(d1)) - (d0 + math.sinh(d0))) / delta
    sig = lambda d: 1 / (1 + math.exp(-d))  # noqa: E731
    gamma = delta * (sig(d1) - sig(d0))
    problem = ts.Problem(np.array([d0, 0.0]), np.array([delta / 2, -delta / 2]))
    return problem, gamma, t_star, delta


def _counting(jitted, run):
    """(run(), gradient evaluations): a host callback in the vector field, in a fresh trace of
    ``jitted``. A batched call (vmap over prompts, the columns of a Jacobian) counts its size."""
    count = {"n": 0}
    original = flow.coordinates._field

    def counting_field(t, w, args):
        jax.debug.callback(
            lambda n: count.__setitem__("n", count["n"] + int(np.size(n))), jnp.ones(())
        )
        return original(t, w, args)

    # the solver looks the field up in the modules that call it
    users = (flow.solve, flow.crossing)
    for module in users:
        module._field = counting_field
    jitted.clear_cache()
    try:
        out = run()
    finally:
        for module in users:
            module._field = original
        jitted.clear_cache()
    return out, count["n"]


def bench_flat():
    problem, gamma, exact, _ = _two_output_flat_instance()
    var0 = float(
        ts.reward_variance(
            np.exp(np.asarray(problem.ref_log_probs[0])), np.asarray(problem.reward_rm[0])
        )
    )
    print(f"[flat] two outputs, Var0 = {var0:.3g}, closed-form t_gamma = {exact:.6g}")

    adaptive, adaptive_evals = _counting(
        flow.crossing._gain_run, lambda: ts.time_to_gain_details(problem, gamma)
    )
    adaptive_err = abs(adaptive.time - exact) / exact
    ts.time_to_gain(problem, gamma)  # compile the uninstrumented solver
    t_adaptive, _ = _best_of(lambda: ts.time_to_gain(problem, gamma))

    # Euler is first order: error ~ C dt. Estimate C at a coarse step, then halve the step from
    # that estimate until the achieved error is at most 1e-6; report the step that achieved it.
    coarse = exact / 1e3
    horizon = 2 * exact  # Euler runs to its first crossing; t_max only bounds its step count
    err_coarse = (
        abs(ts.time_to_gain(problem, gamma, t_max=horizon, method="euler", dt=coarse) - exact)
        / exact
    )
    dt = min(coarse, 0.8 * coarse * 1e-6 / err_coarse)
    while True:
        start = time.perf_counter()
        euler = ts.time_to_gain_details(problem, gamma, t_max=horizon, method="euler", dt=dt)
        t_euler = time.perf_counter() - start
        if abs(euler.time - exact) / exact <= 1e-6:
            break
        dt /= 2
    euler_err = abs(euler.time - exact) / exact
    euler_evals = euler.num_steps + 1  # one gradient per step plus the bisection's direction
    print(
        f"[flat] adaptive: t = {adaptive.time:.10g}, rel. error {adaptive_err:.1e}, "
        f"{adaptive.num_steps} steps, {adaptive_evals} gradient evaluations, {t_adaptive * 1e3:.1f} ms"
    )
    print(
        f"[flat] euler:    t = {euler.time:.10g}, rel. error {euler_err:.1e}, dt = {dt:.3g}, "
        f"{euler_evals} gradient evaluations, {t_euler * 1e3:.1f} ms"
    )
    print(
        f"[flat] ratio: {euler_evals / adaptive_evals:.0f}x fewer gradient evaluations "
        f"(target >= 1000), {t_euler / t_adaptive:.0f}x less wall time"
    )


def bench_batched(batch=256, num_outputs=1000, steps=2000, dt=0.5, kl_coef=0.05, subset=8):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(batch, num_outputs))
    rewards = rng.uniform(-1, 1, (batch, num_outputs))
    problems = [ts.Problem(logits[i], rewards[i], kl_coef=kl_coef) for i in range(batch)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *problems)
    save = jnp.array([steps * dt])
    run = jax.jit(jax.vmap(lambda p: flow.euler._euler_path(p, save, dt)[0][0, 0]))
    run(stacked).block_until_ready()
    t_jax, out = _best_of(lambda: run(stacked).block_until_ready())

    def ref_log_probs(theta):
        m = theta.max(-1, keepdims=True)
        return theta - m - np.log(np.exp(theta - m).sum(-1, keepdims=True))

    def numpy_ascent(theta, r):
        """Gradient ascent with the closed form pi * (r_KL - E_pi r_KL), rows vectorised."""
        log_p0 = ref_log_probs(theta)
        for _ in range(steps):
            z = theta - theta.max(-1, keepdims=True)
            e = np.exp(z)
            s = e.sum(-1, keepdims=True)
            p = e / s
            r_kl = r - kl_coef * (z - np.log(s) - log_p0)
            theta = theta + dt * p * (r_kl - (p * r_kl).sum(-1, keepdims=True))
        return theta

    @jax.jit
    def hand_loop(theta, r):
        """The same ascent written by hand in JAX: one exp per element per step, the machine's
        limit for an exact step (the closed form needs pi, hence an exp of every logit)."""
        log_p0 = jax.nn.log_softmax(theta, axis=-1)

        def step(theta, _):
            z = theta - theta.max(-1, keepdims=True)
            e = jnp.exp(z)
            s = e.sum(-1, keepdims=True)
            p = e / s
            r_kl = r - kl_coef * (z - jnp.log(s) - log_p0)
            return theta + dt * p * (r_kl - (p * r_kl).sum(-1, keepdims=True)), None

        return jax.lax.scan(step, theta, None, length=steps)[0]

    hand_loop(logits, rewards).block_until_ready()
    t_hand, theta_hand = _best_of(lambda: hand_loop(logits, rewards).block_until_ready())
    t_vec, theta_np = _best_of(lambda: numpy_ascent(logits.copy(), rewards), repeats=2)
    t_one, _ = _best_of(
        lambda: [numpy_ascent(logits[i].copy(), rewards[i]) for i in range(subset)], repeats=1
    )
    agree = max(
        float(np.abs(np.asarray(out) - theta_np).max()),
        float(np.abs(np.asarray(out) - np.asarray(theta_hand)).max()),
    )
    work = batch * steps
    print(
        f"[batched] {batch} problems x {num_outputs} outputs x {steps} steps, float64, "
        f"{jax.device_count()} device(s); JAX and numpy agree to {agree:.1e}"
    )
    print(f"[batched] jax vmap+jit:      {t_jax:.2f} s  ({work / t_jax:.3g} problem-steps/s)")
    print(
        f"[batched] hand-written JAX closed-form loop: {t_hand:.2f} s  ({work / t_hand:.3g} problem-steps/s, {t_hand / (work * num_outputs) * 1e9:.2f} ns per element-step)"
    )
    print(f"[batched] numpy vectorised:  {t_vec:.2f} s  ({work / t_vec:.3g} problem-steps/s)")
    print(
        f"[batched] numpy one at a time ({subset} problems): {t_one:.2f} s  "
        f"({subset * steps / t_one:.3g} problem-steps/s)"
    )
    print(
        f"[batched] theory_sim / hand-written loop: {t_jax / t_hand:.2f}x the time (target <= 1.25)"
    )
    print(
        f"[batched] ratio vs vectorised numpy: {t_vec / t_jax:.1f}x (target >= 3); "
        f"vs one at a time: {(work / t_jax) / (subset * steps / t_one):.0f}x (target >= 50)"
    )


def _ar_problem(vocab, length, seed=0):
    policy = ts.Autoregressive(vocab, length)
    rng = np.random.default_rng(seed)
    params = rng.normal(size=(policy.num_prefixes, vocab))
    reward = rng.uniform(-1, 1, policy.num_sequences)
    return ts.Problem(params, reward, kl_coef=0.05, policy=policy), params


def _grad_rate(problem, params, min_seconds=1.0):
    theta = jnp.asarray(problem.internal_params(jnp.asarray(params)))
    _jit_grad(problem, theta).block_until_ready()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or count < 3:
        _jit_grad(problem, theta).block_until_ready()
        count += 1
    return count / (time.perf_counter() - start)


def _per_sequence_seconds(problem, vocab, length):
    args = (vocab, length, np.asarray(problem.reward_rm), np.asarray(problem.ref_log_probs), 0.05)
    start = time.perf_counter()
    per_sequence.gradient(np.asarray(problem.params0), *args)
    return time.perf_counter() - start


def bench_autoregressive():
    for vocab, length, measured_length in ((4, 8, 8), (2, 20, 14)):
        problem, params = _ar_problem(vocab, length)
        rate = _grad_rate(problem, params)
        # The per-sequence loop costs a constant per (sequence, token): measure it where it runs
        # in seconds and scale by V^L * L when the full size would take minutes.
        small, _ = _ar_problem(vocab, measured_length)
        seconds = _per_sequence_seconds(small, vocab, measured_length)
        seconds *= (vocab**length * length) / (vocab**measured_length * measured_length)
        how = "measured" if measured_length == length else f"extrapolated from L={measured_length}"
        print(
            f"[autoregressive] V={vocab} L={length} ({vocab**length} sequences): "
            f"{rate:.3g} gradients/s vs per-sequence numpy {1 / seconds:.3g}/s ({how}): "
            f"{rate * seconds:.0f}x"
        )
    sizes, seconds = [], []
    for length in range(10, 21, 2):
        problem, params = _ar_problem(2, length)
        sizes.append(2**length)
        seconds.append(1.0 / _grad_rate(problem, params, min_seconds=0.5))
    slope = np.polyfit(np.log(sizes), np.log(seconds), 1)[0]
    print(
        "[autoregressive] V=2, L=10..20: seconds per gradient "
        + ", ".join(f"{s:.2g}" for s in seconds)
        + f"; fitted exponent of time in V^L: {slope:.2f} (target: 1, linear)"
    )


def bench_estimators(num_seeds=1000, num_samples=8, num_outputs=100):
    from theory_sim import training

    rng = np.random.default_rng(0)
    logits = rng.normal(size=num_outputs)
    reward = rng.uniform(-1, 1, num_outputs)
    problem = ts.Problem(logits, reward)
    key = jax.random.key(0)

    def run_jax():
        return training.estimate_gradient(
            problem, logits, key=key, num_samples=num_samples, num_estimates=num_seeds
        ).block_until_ready()

    run_jax()
    t_jax, est = _best_of(run_jax)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()

    def run_numpy():
        out = np.empty((num_seeds, num_outputs))
        for seed in range(num_seeds):
            samples = np.random.default_rng(seed).choice(num_outputs, size=num_samples, p=probs)
            r = reward[samples]
            adv = (r - r.mean()) * num_samples / (num_samples - 1)
            grad = -probs * adv.sum()
            np.add.at(grad, samples, adv)
            out[seed] = grad / num_samples
        return out

    t_np, est_np = _best_of(run_numpy, repeats=1)
    exact = np.asarray(ts.policy_gradient(problem, logits))
    spread = float(np.abs(np.asarray(est).mean(0) - exact).max())
    spread_np = float(np.abs(est_np.mean(0) - exact).max())
    total = num_seeds * num_samples
    print(
        f"[estimators] RLOO, {num_seeds} seeds x {num_samples} samples, Y={num_outputs}: "
        f"jax {total / t_jax:.3g} samples/s, numpy loop {total / t_np:.3g} samples/s: "
        f"{t_np / t_jax:.0f}x (target >= 20x; means within {spread:.1e} and {spread_np:.1e} of "
        "the exact gradient)"
    )


def _sweep_config(num_cells, chunk=16):
    """The benchmarks' sweep: Y = 12, random policies, noisy reward models, lambda in {0, 0.05}."""
    from theory_sim.sweep import parse_config

    return parse_config(
        f"""
        chunk_size = {chunk}
        [problem]
        outputs = 12
        horizons = [1.0, 10.0, 100.0]
        [grid]
        seeds = {list(range(num_cells // 2))}
        kl_coef = [0.0, 0.05]
        [[policy]]
        family = "random"
        logit_std = 2.0
        [[reward_model]]
        family = "noisy"
        """
    )


def bench_sweep(num_cells=128):
    """128 sweep cells through run_cells (t_gamma in vmapped groups of GROUP_SIZE cells of like
    estimated t_gamma, the paths in groups of PATH_GROUP_SIZE, on one thread per core, building
    the cells included) against the same cells prebuilt and solved one at a time (time_to_gain
    plus gradient_flow per cell); both compiled before timing, each the best of three. Target
    5x."""
    from theory_sim.sweep import build_cell, run_cells

    config = _sweep_config(num_cells)
    cells = list(range(num_cells))
    built = [build_cell(config, c) for c in cells]

    def one_at_a_time():
        out = []
        for problem, row in built:
            t = ts.time_to_gain(problem, row["gamma"], t_max=config.t_max)
            traj = ts.gradient_flow(problem, config.horizons[-1], save_ts=(0.0, *config.horizons))
            out.append((t, traj.expected_gt[-1]))
        return out

    from theory_sim.sweep.cells import _tables

    def batched():
        _tables.cache_clear()  # build every cell's tables inside the timing
        return run_cells(config, cells)

    batched()  # compile
    one_at_a_time()
    t_batch, rows = _best_of(batched)
    t_loop, ref = _best_of(one_at_a_time)
    times = np.array([r["t_gamma"] for r in rows[:: len(config.horizons)]])
    ref_times = np.array([t for t, _ in ref])
    finite = np.isfinite(ref_times)
    assert np.array_equal(finite, np.isfinite(times))
    worst = float(np.max(np.abs(times[finite] - ref_times[finite]) / ref_times[finite]))
    print(
        f"[sweep] {num_cells} cells (Y=12, t_gamma + 3 horizons) on {len(jax.local_devices())} "
        f"device(s): run_cells {t_batch:.3f} s (building the cells included), the same cells "
        f"prebuilt and solved one at a time {t_loop:.3f} s: {t_loop / t_batch:.1f}x (target >= "
        f"5x); t_gamma agree to {worst:.1e} ({int((~finite).sum())} never reached in both)"
    )


def bench_sweep_mixed(seeds=342):
    """4,104 cells of mixed difficulty (Y = 12; pi_0 random or with mass 1e-4 on the best
    output; r_RM = r_G or scaled by 1e-2 or 1e-4; lambda in {0, 0.05}; t_gamma from about 2 to
    5e6 or beyond t_max = 1e9): run_cells' cells per second (groups of GROUP_SIZE and
    PATH_GROUP_SIZE on one thread per core) against the same cells as one vmapped batch, which
    waits for its slowest cell, in one process."""
    from theory_sim import sweep
    from theory_sim.sweep import parse_config, run_cells

    config = parse_config(
        f"""
        [problem]
        outputs = 12
        horizons = [1.0, 100.0, 10000.0]
        t_max = 1e9
        [grid]
        seeds = {list(range(seeds))}
        kl_coef = [0.0, 0.05]
        [[policy]]
        family = "random"
        [[policy]]
        family = "rare_best"
        mass = 1e-4
        [[reward_model]]
        family = "ground_truth"
        [[reward_model]]
        family = "scaled"
        factor = 1e-2
        [[reward_model]]
        family = "scaled"
        factor = 1e-4
        """
    )
    cells = list(range(config.num_cells))
    run_cells(config, cells[:64])  # compile
    t_grouped, rows = _best_of(lambda: run_cells(config, cells), repeats=1)
    sizes = sweep.schedule.GROUP_SIZE, sweep.schedule.PATH_GROUP_SIZE
    sweep.schedule.GROUP_SIZE = sweep.schedule.PATH_GROUP_SIZE = len(cells)
    try:
        run_cells(config, cells[:64])  # compile the one-batch programs on a small batch first
        t_batch, rows_batch = _best_of(lambda: run_cells(config, cells), repeats=1)
    finally:
        sweep.schedule.GROUP_SIZE, sweep.schedule.PATH_GROUP_SIZE = sizes
    times = np.array([r["t_gamma"] for r in rows[::3]])
    other = np.array([r["t_gamma"] for r in rows_batch[::3]])
    both = np.isfinite(times) & np.isfinite(other)
    agree = np.array_equal(np.isfinite(times), np.isfinite(other))
    worst = float(np.max(np.abs(times[both] - other[both]) / times[both]))
    finite = times[np.isfinite(times)]
    print(
        f"[sweep-mixed] {len(cells)} cells (Y=12, t_gamma from {finite.min():.2g} to "
        f"{finite.max():.2g}, {int((~np.isfinite(times)).sum())} beyond t_max=1e9): groups of "
        f"{sizes[0]} and {sizes[1]} on threads {len(cells) / t_grouped:.0f} cells/s "
        f"({t_grouped:.1f} s), one "
        f"vmapped batch {len(cells) / t_batch:.0f} cells/s: {t_batch / t_grouped:.1f}x; "
        f"t_gamma agree to {worst:.1e} (the same cells reached: {agree})"
    )


def bench_long(num_prompts=4, num_outputs=1000, kl_coef=0.1, t_max=1e12, seed=0):
    """gradient_flow to t_max with lambda > 0: the convergence certificate and the implicit tail
    against fixed-step Euler at its largest stable step."""
    rng = np.random.default_rng(seed)
    problem = ts.Problem(
        rng.normal(size=(num_prompts, num_outputs)),
        rng.uniform(-1, 1, (num_prompts, num_outputs)),
        kl_coef=kl_coef,
    )
    start = time.perf_counter()
    traj = ts.gradient_flow(problem, t_max)
    wall = time.perf_counter() - start
    star = np.asarray(ts.kl_optimal_policy(problem))
    err = np.abs(traj.probs[-1] - star).max()
    # Work per prompt (each prompt is its own solve): Tsit5 makes 6 new field evaluations a step;
    # a Kvaerno5 step forms one dense Jacobian (Y columns, each a JVP costing about one field
    # evaluation) and takes about 7 stages x 2 chord iterations.
    explicit = (
        min(traj.num_steps, flow.EXPLICIT_BUDGET)
        if math.isfinite(traj.implicit_from)
        else traj.num_steps
    )
    implicit = traj.num_steps - explicit
    evals = 6 * explicit + (num_outputs + 14) * implicit
    # Euler near pi*: the field's Jacobian is -(lambda / X) (diag pi* - pi* pi*^T) per prompt, so
    # gradient ascent is stable for dt <= 2 / ((lambda / X) * its largest eigenvalue).
    top = max(np.linalg.eigvalsh(np.diag(q) - np.outer(q, q)).max() for q in star)
    dt_stable = 2.0 / (kl_coef / num_prompts * top)
    euler_steps = t_max / dt_stable
    # Euler's wall time from the cost of one exact gradient of the whole problem
    grad = jax.jit(lambda p, th: flow.coordinates._theta_field(p)(th))
    grad(problem, problem.params0).block_until_ready()
    per_grad, _ = _best_of(lambda: grad(problem, problem.params0).block_until_ready(), repeats=20)
    q_min = float(jax.nn.softmax(problem.ref_log_probs + problem.reward_rm / kl_coef, -1).min())
    print(
        f"[long] X={num_prompts}, Y={num_outputs}, lambda={kl_coef}, t_max={t_max:g} (pi* down to "
        f"{q_min:.1e}): ended {traj.ended!r}, converged_at {traj.converged_at:.3g}, implicit from "
        f"{traj.implicit_from:.3g}; per prompt {explicit} explicit + {implicit} implicit steps, "
        f"about {evals:.3g} gradient evaluations; {wall:.1f} s (compilation included); "
        f"max |pi_T - pi*| = {err:.1e}"
    )
    print(
        f"[long] fixed-step Euler at its largest stable step dt = {dt_stable:.3g}: "
        f"{euler_steps:.3g} gradient evaluations ({euler_steps / evals:.3g}x more), about "
        f"{euler_steps * per_grad / 3600:.3g} h at {per_grad * 1e6:.0f} us per gradient "
        f"({euler_steps * per_grad / wall:.3g}x the wall time)"
    )


def bench_accuracy(num_outputs=2**20, table_outputs=2**12, seed=0):
    """Uniform and on-policy accuracy at Y = 2^20 by the sorted count, against the [Y, Y]
    pair-table form at Y = 2^12 (the largest it handles comfortably) in the same process, and
    against one float64 sort of Y elements (the floor of any comparison-based count)."""
    import tracemalloc

    from theory_sim.metrics import _accuracy_rows

    rng = np.random.default_rng(seed)
    rm = rng.normal(size=num_outputs)
    gt = rm + rng.normal(size=num_outputs)
    p = rng.dirichlet(np.ones(num_outputs))
    tracemalloc.start()
    t_uniform, acc = _best_of(lambda: float(ts.accuracy(rm, gt)), repeats=2)
    t_on_policy, acc_pi = _best_of(lambda: float(ts.on_policy_accuracy(p, rm, gt)), repeats=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_sort, _ = _best_of(lambda: np.sort(rm), repeats=3)
    small = slice(0, table_outputs)
    ones = jnp.ones((1, table_outputs, table_outputs))
    args = (jnp.asarray(rm[None, small]), jnp.asarray(gt[None, small]), ones)
    _accuracy_rows(*args).block_until_ready()  # compile
    t_table, _ = _best_of(lambda: _accuracy_rows(*args).block_until_ready())
    t_sorted_small, _ = _best_of(lambda: float(ts.accuracy(rm[small], gt[small])))
    table_gib = num_outputs**2 * 8 / 2**30
    print(
        f"[accuracy] Y = {num_outputs}: uniform {t_uniform:.2f} s (accuracy {acc:.6f}), on-policy "
        f"{t_on_policy:.2f} s (on-policy accuracy {acc_pi:.6f}); peak memory {peak / 2**20:.0f} MiB (a [Y, Y] float64 table: "
        f"{table_gib:,.0f} GiB); {t_uniform / t_sort:.0f}x one np.sort of Y floats ({t_sort:.3f} s)"
    )
    print(
        f"[accuracy] Y = {table_outputs}: sorted count {t_sorted_small * 1e3:.1f} ms against the "
        f"pair table {t_table * 1e3:.1f} ms ({t_table / t_sorted_small:.1f}x); the table grows as "
        f"Y^2, so at Y = {num_outputs} it would need about "
        f"{t_table * (num_outputs / table_outputs) ** 2:.0f} s"
    )


def bench_cores(num_cells=512, chunk=64):
    """run_sweep pinned to one core (CPU affinity: every thread of the process, XLA's included,
    shares it) against the default on every core, same cells, fresh output directories; both
    compiled before timing."""
    import os
    import tempfile

    from theory_sim._parallel import num_workers
    from theory_sim.sweep import run_sweep

    config = _sweep_config(num_cells, chunk)
    cores = num_workers()

    def sweep():
        with tempfile.TemporaryDirectory() as out:
            return run_sweep(config, out)

    def one_core():
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(allowed)})
        try:
            return sweep()
        finally:
            os.sched_setaffinity(0, allowed)

    sweep()  # compile
    t_one, rows_one = _best_of(one_core, repeats=1)
    t_all, rows_all = _best_of(sweep, repeats=1)
    same = [{k: r[k] for k in ("cell", "t_gamma", "gain_gt")} for r in rows_one] == [
        {k: r[k] for k in ("cell", "t_gamma", "gain_gt")} for r in rows_all
    ]
    print(
        f"[cores] {num_cells}-cell sweep (Y=12, chunks of {chunk}): 1 core {t_one:.2f} s "
        f"({num_cells / t_one:.0f} cells/s), {cores} cores {t_all:.2f} s "
        f"({num_cells / t_all:.0f} cells/s): {t_one / t_all:.2f}x (target >= 1.7x on 2 cores); "
        f"results identical: {same}"
    )


def _transformer_problem(vocab, length, width=32, depth=2, heads=4, seed=0):
    policy = ts.Transformer(vocab, length, width=width, depth=depth, heads=heads, key=seed)
    reward = np.random.default_rng(seed).uniform(-1, 1, policy.num_sequences)
    return ts.Problem(policy.params, reward, kl_coef=0.05, policy=policy), policy


def _naive_transformer_grad(problem, policy):
    """The same objective's gradient with every one of the V^L sequences run through the model
    on its own (no prefix shared): the straightforward way to get the table."""
    from theory_sim.objective import _prompt_objective

    v = policy.vocab_size
    seqs = jnp.asarray(policy._tree.sequences())
    inputs = jnp.concatenate([jnp.full((seqs.shape[0], 1), v, seqs.dtype), seqs[:, :-1]], axis=1)

    def log_probs(theta):
        model = policy.model(theta)
        out = jax.nn.log_softmax(jax.vmap(lambda s: model(0, s))(inputs), axis=-1)  # [Y, L, V]
        picked = jnp.take_along_axis(out, seqs[:, :, None], axis=-1)[..., 0]
        return jnp.sum(picked, axis=-1)[None]

    def phi(theta):
        return _prompt_objective(
            log_probs(theta), problem.ref_log_probs, problem.reward_rm, problem.kl_coef
        ).mean()

    return jax.jit(jax.grad(phi))


def bench_neural(vocab=4, length=6):
    problem, policy = _transformer_problem(vocab, length)
    rate = _grad_rate(problem, policy.params)
    naive = _naive_transformer_grad(problem, policy)
    theta = jnp.asarray(policy.params)
    np.testing.assert_allclose(naive(theta), _jit_grad(problem, theta), rtol=1e-9, atol=1e-13)
    naive(theta).block_until_ready()
    t_naive, _ = _best_of(lambda: naive(theta).block_until_ready())
    ar_problem, ar_params = _ar_problem(vocab, length)
    ar_rate = _grad_rate(ar_problem, ar_params)
    print(
        f"[neural] transformer V={vocab} L={length} ({vocab**length} sequences), width 32, depth 2, "
        f"{policy.params.size} parameters: {rate:.3g} exact gradients/s; every sequence run on its "
        f"own: {1 / t_naive:.3g}/s ({rate * t_naive:.1f}x); tabular autoregressive of the same V, L "
        f"({ar_problem.params0.size} parameters): {ar_rate:.3g}/s ({ar_rate / rate:.0f}x faster)"
    )
    print(
        f"[neural] estimated memory of one gradient: {policy._pass_bytes() / 2**20:.1f} MiB; "
        "a transformer with V=4, L=14 is refused before it is built:"
    )
    try:
        ts.Transformer(4, 14, width=32, depth=2, heads=4)
    except ValueError as error:
        print(f"[neural]   {error}")
    sizes, seconds = [], []
    for size in range(6, 13, 2):
        problem, policy = _transformer_problem(2, size)
        sizes.append(2**size)
        seconds.append(1.0 / _grad_rate(problem, policy.params, min_seconds=0.5))
    slope = np.polyfit(np.log(sizes), np.log(seconds), 1)[0]
    print(
        "[neural] transformer V=2, L=6..12: seconds per gradient "
        + ", ".join(f"{s:.2g}" for s in seconds)
        + f"; fitted exponent of time in V^L: {slope:.2f} (linear in the V^(L-1) prefixes run: 1)"
    )


def bench_field(loops=1000):
    """The tabular field against the general one and a plain softmax field (module docstring)."""

    def plain(problem, frame, w):  # one exp per element; r_KL from log pi, as without a limit
        theta = frame.base + w
        z = theta - jnp.max(theta, axis=-1, keepdims=True)
        e = jnp.exp(z)
        total = jnp.sum(e, axis=-1, keepdims=True)
        probs = e / total
        advantage = problem.reward_rm - problem.kl_coef * (z - problem.ref_log_probs)
        centred = advantage - jnp.sum(probs * advantage, axis=-1, keepdims=True)
        return probs * centred / problem.num_prompts

    fields = {
        "tabular": flow.coordinates._tabular_field,
        "general": flow.coordinates._pulled_back_field,
        "plain softmax": plain,
    }
    for num_prompts, num_outputs, batch in [(1, 12, 8), (1, 12, 32), (1, 100, 8), (4, 1000, 1)]:
        rng = np.random.default_rng(0)
        problems = [
            ts.Problem(
                2 * rng.normal(size=(num_prompts, num_outputs)),
                rng.uniform(-1, 1, (num_prompts, num_outputs)),
                kl_coef=0.1,
            )
            for _ in range(batch)
        ]
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *problems)
        frames, w0 = jax.vmap(flow.coordinates._coordinates)(stacked)
        micros = {}
        for name, field in fields.items():

            def run(stacked, frames, w, field=field):
                one = jax.vmap(lambda p, f, w: field(p, f, w))
                return jax.lax.fori_loop(
                    0, loops, lambda i, w: w + 1e-3 * one(stacked, frames, w), w
                )

            args = (stacked, frames, w0)
            run = jax.jit(run)
            run(*args).block_until_ready()
            seconds, _ = _best_of(
                lambda run=run, args=args: run(*args).block_until_ready(), repeats=5
            )
            micros[name] = 1e6 * seconds / loops
        print(
            f"[field] X={num_prompts} Y={num_outputs}, {batch} problem(s) per call: "
            + ", ".join(f"{name} {us:.2f} us" for name, us in micros.items())
            + f"; tabular {micros['general'] / micros['tabular']:.2f}x the general field, "
            f"{micros['tabular'] / micros['plain softmax']:.2f}x the plain softmax's time"
        )


def _command_cold(args, cache_home):
    """(wall seconds, counts) of ``theory-sim ARGS`` in a fresh process using ``cache_home`` as
    XDG_CACHE_HOME (THEORY_SIM_CACHE unset, so the cache lives there)."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "THEORY_SIM_CACHE"}
    env["XDG_CACHE_HOME"] = str(cache_home)
    counter = Path(__file__).with_name("count_programs.py")
    with tempfile.TemporaryDirectory() as scratch:
        counts_file = Path(scratch) / "counts.json"
        extra = ["--out", str(Path(scratch) / "out")] if args[0] == "reproduce" else []
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(counter), str(counts_file), *args, *extra],
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"theory-sim {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return wall, json.loads(counts_file.read_text())


_EVALUATE_CHILD = """
import resource, sys, time
start = time.perf_counter()
if sys.argv[2] == "read":
    import pandas as pd
    pd.read_parquet(sys.argv[1])
    extra = ""
else:
    from theory_sim.evaluate import load_dump, measure_dump
    dump = load_dump(sys.argv[1])
    loaded = time.perf_counter() - start
    measures = measure_dump(dump)
    extra = f" {loaded} {len(measures)}"
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, extra)
"""


def bench_evaluate(num_prompts=100_000, num_responses=64, num_models=8, seed=0):
    import subprocess
    import tempfile

    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = num_prompts * num_responses
    gold = rng.uniform(-1, 1, rows)
    table = {
        "prompt_id": np.repeat(np.arange(num_prompts), num_responses),
        "response_id": np.tile(np.arange(num_responses), num_prompts),
        "gold": gold,
    }
    for m in range(num_models):
        table[f"rm{m}"] = gold + rng.normal(0, 0.2 * (m + 1), rows)
    input_bytes = rows * (3 + num_models) * 8

    def child(path, what):  # a fresh process: its own time and peak memory
        out = subprocess.run(
            [sys.executable, "-c", _EVALUATE_CHILD, path, what],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return [float(x) for x in out]

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/dump.parquet"
        pd.DataFrame(table).to_parquet(path)
        del table
        read = min((child(path, "read") for _ in range(2)), key=lambda r: r[0])
        full = child(path, "evaluate")
    total, peak, loaded, count = full
    print(
        f"evaluate: {num_prompts} prompts x {num_responses} responses x {num_models} models "
        f"({rows / 1e6:.1f} M rows, {input_bytes / 2**20:.0f} MiB as float64 arrays), each in "
        "a fresh process"
    )
    print(
        f"  read the Parquet file alone:   {read[0]:6.2f} s, peak memory {read[1] / 2**20:5.0f} MiB"
    )
    print(f"  load_dump (read + arrays):     {loaded:6.2f} s")
    print(
        f"  load_dump + measure_dump:      {total:6.2f} s, peak memory {peak / 2**20:5.0f} MiB "
        f"({int(count)} measures, 2000 bootstrap resamples)"
    )
    print(
        f"  ratio to reading alone: {total / read[0]:.1f}x time, {peak / read[1]:.1f}x memory; "
        f"peak memory {peak / input_bytes:.1f}x the input's arrays; "
        f"target < 60 s: {'met' if total < 60 else 'NOT met'}"
    )


def bench_coldstart(*options):
    import tempfile

    def line(label, wall, counts):
        # JAX times every program it makes ready as a compilation, read from its cache or not
        c, s = counts["counts"], counts["seconds"]
        programs, read = c.get("compiled", 0), c.get("read", 0)
        return (
            f"  {label:<28} {wall:7.1f} s   {programs:4d} programs ({programs - read:4d} "
            f"compiled, {read:4d} read from the cache); XLA {s.get('compiled', 0.0):6.1f} s, "
            f"tracing {s.get('traced', 0.0):5.1f} s"
        )

    print("coldstart (fresh processes; cold = empty cache directory)")
    with tempfile.TemporaryDirectory() as home:
        cold, cold_counts = _command_cold(["check", "--no-exponents"], home)
        print(line("check --no-exponents, cold", cold, cold_counts))
        warm, warm_counts = _command_cold(["check", "--no-exponents"], home)
        print(line("check --no-exponents, warm", warm, warm_counts))
    print(f"  first run / second run: {cold / warm:.2f}x")
    with tempfile.TemporaryDirectory() as home:
        quick, quick_counts = _command_cold(["reproduce", "--quick"], home)
        print(line("reproduce --quick, cold", quick, quick_counts))
    if "full" in options:
        with tempfile.TemporaryDirectory() as home:
            full_check, counts = _command_cold(["check"], home)
            print(line("check, cold", full_check, counts))
        with tempfile.TemporaryDirectory() as home:
            full, counts = _command_cold(["reproduce"], home)
            print(line("reproduce, cold", full, counts))
        print(f"  reproduce --quick cold / reproduce cold: {quick / full:.2f}")


BENCHMARKS = {
    "accuracy": bench_accuracy,
    "flat": bench_flat,
    "long": bench_long,
    "batched": bench_batched,
    "autoregressive": bench_autoregressive,
    "estimators": bench_estimators,
    "sweep": bench_sweep,
    "sweep-mixed": bench_sweep_mixed,
    "cores": bench_cores,
    "neural": bench_neural,
    "field": bench_field,
    "evaluate": bench_evaluate,
    "coldstart": bench_coldstart,
}

if __name__ == "__main__":
    names = sys.argv[1:] or [name for name in BENCHMARKS if name != "coldstart"]
    if names[:1] == ["coldstart"]:  # its own options follow: `coldstart full`
        bench_coldstart(*names[1:])
        sys.exit(0)
    for name in names:
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
        BENCHMARKS[name]()
