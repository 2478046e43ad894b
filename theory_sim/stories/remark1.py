"""Notebook 08: Remark 1 of arXiv 2503.15477. Does the Jacobian grow along a neural flow?

Theorem 4 bounds t_gamma >= min{1 - e^(-gamma/9), 1 - e^(-7/(3 lambda))} / (8 L^2 J^2) Var0^(-1/3)
with J = J_{t_gamma}, the sup of the logit map's Jacobian norm along the flow up to t_gamma; its
Remark 1 leaves open whether, for neural policies, J grows enough to offset a small reward
variance. :func:`remark_1` answers with a controlled study: bias-free tanh MLPs
(:class:`~theory_sim.policies.scaled.ScaledMLP`) of widths 8 to 256 and depths 1 and 2, in the NTK
and the mean-field (muP) parameterisation, lambda in {0, 0.01}, five seeds, and the flat-landscape
family at seven values of eps over four decades, with J_0 held fixed across eps.

The flows of one network shape, lambda and eps (one per seed) are solved in one vmapped adaptive
solve (diffrax Tsit5, rtol 1e-8, the crossing E r_G = E_pi0 r_G + gamma located by an event
with Newton root finding), and J_t = sqrt(lambda_max(J J^T)) is evaluated from the closed-form
kernel at the end of every accepted step, so J_{t_gamma} is the max over all of them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from theory_sim._validation import check_float_scalar, check_int, check_seed
from theory_sim.metrics import reward_variance
from theory_sim.policies import Tabular
from theory_sim.policies.scaled import (
    PARAMETERISATIONS,
    ScaledMLP,
    scaled_mlp_gram,
    scaled_mlp_logits,
)
from theory_sim.problem import Problem

# The study's grid (notebook 08 and `reproduce`): widths doubling from 8 to 256, depths 1 and 2,
# both parameterisations, lambda 0 and 0.01, five seeds, eps = 0.1 down four decades in 7 points.
REMARK_1_WIDTHS = (8, 16, 32, 64, 128, 256)
REMARK_1_DEPTHS = (1, 2)
REMARK_1_KL_COEFS = (0.0, 0.01)
REMARK_1_SEEDS = (0, 1, 2, 3, 4)
# Eight outputs with Gaussian features of dimension 8 (seeded per network); r = +1 on output 0,
# -1 elsewhere; pi_0(0) = eps and the rest uniform, so Var0 = 4 eps (1 - eps).
NUM_OUTPUTS = 8
FEATURE_DIM = 8
# Solver of the study: per-step relative tolerance 1e-8 (t_gamma agrees with theory_sim's own
# rtol-1e-10 solver within 1e-6, tests/test_remark1.py), horizon and step budget.
RTOL, ATOL = 1e-8, 1e-10
T_MAX = 1e9
MAX_STEPS = 8192


def _eps_grid(num_points: int, decades: float) -> np.ndarray:
    return 0.1 * 10.0 ** (-decades * np.arange(num_points) / (num_points - 1))


def _start(eps: float) -> np.ndarray:
    probs = np.full(NUM_OUTPUTS, (1 - eps) / (NUM_OUTPUTS - 1))
    probs[0] = eps
    return probs


def _reward() -> np.ndarray:
    reward = -np.ones(NUM_OUTPUTS)
    reward[0] = 1.0
    return reward


@functools.cache
def _network(parameterisation: str, width: int, depth: int, seed: int) -> ScaledMLP:
    features = np.random.default_rng([seed, 8]).standard_normal((NUM_OUTPUTS, FEATURE_DIM))
    return ScaledMLP(features, width=width, depth=depth, parameterisation=parameterisation,
                     key=seed)  # fmt: skip


def study_policy(parameterisation: str, width: int, depth: int, seed: int, eps: float):
    """The network of one flow of :func:`remark_1`: seeded features and weights, base logits
    giving pi_0 = (eps, (1 - eps)/7, ...); the same theta_0 (and J_0) for every eps (one
    network per parameterisation, shape and seed, built once)."""
    seed = check_seed("seed", seed)
    return _network(parameterisation, width, depth, seed).starting_at(_start(eps))


@functools.cache
def _solver(width: int, depth: int):
    """The vmapped solve of every flow of one network shape (multipliers are data, so one
    program serves both parameterisations)."""
    sizes = [width * FEATURE_DIM] + [width * width] * (depth - 1) + [width]
    shapes = [(width, FEATURE_DIM)] + [(width, width)] * (depth - 1) + [(width,)]

    def weights(theta):
        parts = jnp.split(theta, np.cumsum(sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, shapes, strict=True)]

    def logits(theta, a):
        return scaled_mlp_logits(weights(theta), a["mults"], a["features"]) + a["base"]

    def field(t, theta, a):  # d theta/dt = J^T [pi o (r_KL - E_pi r_KL)]
        z, pullback = jax.vjp(lambda th: logits(th, a), theta)
        log_pi = jax.nn.log_softmax(z)
        pi = jnp.exp(log_pi)
        r_kl = a["reward"] - a["kl_coef"] * (log_pi - a["log_pi0"])
        return pullback(pi * (r_kl - pi @ r_kl))[0]

    def gain(theta, a):
        return jax.nn.softmax(logits(theta, a)) @ a["reward"] - jnp.exp(a["log_pi0"]) @ a["reward"]

    def saved(t, theta, a):
        gram = scaled_mlp_gram(weights(theta), a["mults"], a["features"])
        return jnp.stack([gain(theta, a), jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(gram)[-1], 0))])

    def solve(theta0, a):
        event = diffrax.Event(lambda t, y, args, **_: gain(y, args) - args["gamma"],
                              optx.Newton(1e-10, 1e-12))  # fmt: skip
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Tsit5(), 0.0, T_MAX, None, theta0, args=a,
            saveat=diffrax.SaveAt(t0=True, steps=True, fn=saved),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
            max_steps=MAX_STEPS, event=event, throw=False,
        )  # fmt: skip
        return sol.ts, sol.ys, sol.stats["num_steps"]

    return jax.jit(jax.vmap(solve))


def solve_flows(policies, kl_coefs, gamma: float) -> list[dict]:
    """t_gamma and J_t along the flow for ScaledMLP policies of one shape, in one vmapped solve.

    Each flow: single prompt, r = +1 on output 0 and -1 elsewhere, pi_0 = the policy's start,
    lambda from ``kl_coefs``. Returns per flow "t_gamma" (inf if the gain is not reached by
    T_MAX), "ts" and "jacobian" (J_t at t = 0 and the end of every accepted step up to t_gamma),
    "gain_end" and "steps".
    """
    policies = list(policies)
    if not policies or not all(isinstance(p, ScaledMLP) and p.single_prompt for p in policies):
        raise ValueError("`policies` must be a non-empty sequence of one-prompt ScaledMLP.")
    if len(kl_coefs) != len(policies):
        raise ValueError(f"`kl_coefs` must hold one lambda per policy ({len(policies)}); got "
                         f"{len(kl_coefs)}.")  # fmt: skip
    first = policies[0]
    if any((p.width, p.depth, p.features.shape) != (first.width, first.depth,
           first.features.shape) for p in policies):  # fmt: skip
        raise ValueError("`policies` must share one network shape (width, depth, features).")
    args = {
        "features": np.stack([np.asarray(p.features[0]) for p in policies]),
        "base": np.stack([np.asarray(p.base[0]) for p in policies]),
        "mults": np.array([p.mults for p in policies]),
        "log_pi0": np.stack([np.asarray(p.log_probs(p.params))[0] for p in policies]),
        "reward": np.tile(_reward(), (len(policies), 1)),
        "kl_coef": np.asarray(kl_coefs, np.float64),
        "gamma": np.full(len(policies), gamma),
    }
    theta0 = np.stack([p.params for p in policies])
    ts, ys, steps = (np.asarray(v) for v in _solver(first.width, first.depth)(theta0, args))
    out = []
    for t, y, n, lam, log_pi0 in zip(ts, ys, steps, args["kl_coef"], args["log_pi0"], strict=True):
        keep = np.isfinite(t)
        t, y = t[keep], y[keep]
        reached = y[-1, 0] >= gamma - 1e-9 and t[-1] < T_MAX
        if not reached and t[-1] < T_MAX:  # stopped by the step budget, not at the horizon
            raise RuntimeError(
                f"a flow with lambda = {lam:g} stopped at t = {t[-1]:.4g} (gain {y[-1, 0]:.4g}) "
                f"after MAX_STEPS = {MAX_STEPS} steps, before the gain {gamma:g} or T_MAX = "
                f"{T_MAX:g}; the KL-optimal policy's gain is {_optimal_gain(log_pi0, lam):.4g}."
            )
        out.append({"t_gamma": float(t[-1]) if reached else math.inf, "ts": t,
                    "jacobian": y[:, 1], "gain_end": float(y[-1, 0]), "steps": int(n)})  # fmt: skip
    return out


def _optimal_gain(log_pi0, kl_coef: float) -> float:
    """The gain of pi* = softmax(log pi_0 + r / lambda), the maximiser of the objective (Lemma 1
    of arXiv 2503.15477's appendix); the reward's best output's for lambda = 0."""
    reward, pi0 = _reward(), np.exp(log_pi0)
    if kl_coef == 0:
        return float(reward.max() - pi0 @ reward)
    z = log_pi0 + reward / kl_coef
    star = np.exp(z - z.max())
    return float(star @ reward / star.sum() - pi0 @ reward)


def _slope(var0, times) -> float:
    x, y = np.log(var0), np.log(times)
    return float(np.polyfit(x, y, 1)[0])


@dataclasses.dataclass(frozen=True)
class Remark1:
    """Remark 1 of arXiv 2503.15477 as a study: t_gamma against Var0 for neural policies.

    Attributes:
        rows: one per flow: "parameterisation", "depth", "width", "kl_coef", "seed", "eps",
            "var0", "t_gamma", "J_0", "J_t_gamma" (max of J_t up to t_gamma), "J_ratio",
            "theorem_4_bound" (with J_t_gamma), "bound_ratio" (t_gamma / bound), "steps".
        fits: one per configuration (parameterisation, depth, width, kl_coef): "slope" (mean over
            seeds of the per-seed slope of log t_gamma on log Var0), "slope_low"/"slope_high"
            (95 % t-interval over seeds), "J_0" (median over seeds), "J_ratio_median",
            "J_ratio_min", "J_ratio_max" (over seeds, of the max over eps of J_t_gamma / J_0),
            "min_bound_ratio" (the smallest t_gamma / bound), "unreached" (flows without t_gamma).
        references: the tabular flow's slope on the same family, one per kl_coef.
        paths: (parameterisation, depth, width, kl_coef) -> (ts, J_t / J_0) of seed 0's flow at
            the smallest eps, for the figure of J along time.
        seconds: wall-clock time of the study.
    """

    rows: list
    fits: list
    references: dict
    paths: dict
    seconds: float

    def fit(self, parameterisation: str, depth: int, width: int, kl_coef: float) -> dict:
        """The fit of one configuration."""
        for f in self.fits:
            if (f["parameterisation"], f["depth"], f["width"], f["kl_coef"]) == (
                parameterisation, depth, width, kl_coef):  # fmt: skip
                return f
        raise KeyError((parameterisation, depth, width, kl_coef))


def _tabular_reference(eps_grid, kl_coef: float, gamma: float) -> float:
    from theory_sim.flow import time_to_gain

    times = [time_to_gain(Problem(np.log(_start(e)), _reward(), kl_coef=kl_coef,
                                  policy=Tabular()), gamma) for e in eps_grid]  # fmt: skip
    return _slope([reward_variance(_start(e), _reward()) for e in eps_grid], times)


def remark_1(
    widths=REMARK_1_WIDTHS,
    depths=REMARK_1_DEPTHS,
    parameterisations=PARAMETERISATIONS,
    kl_coefs=REMARK_1_KL_COEFS,
    seeds=REMARK_1_SEEDS,
    *,
    num_points: int = 7,
    decades: float = 4.0,
    gamma: float = 0.5,
    progress: bool = False,
) -> Remark1:
    """Does the Jacobian of a neural policy grow enough to offset a small reward variance?

    For every parameterisation, depth, width, lambda and seed, the flows from pi_0 = (eps,
    (1 - eps)/7, ...) for eps from 0.1 down ``decades`` decades (``num_points`` values), all from
    the same network theta_0 (only the fixed base logits change with eps, so J_0 is the same for
    every eps), with r = +1 on output 0 and -1 elsewhere (Var0 = 4 eps (1 - eps)). Measured:
    t_gamma, J_0, J_{t_gamma} (the max of J_t over the accepted steps up to t_gamma) and Theorem
    4's bound with J_{t_gamma}. Per configuration: the slope of log t_gamma on log Var0 fitted per
    seed, its mean and 95 % t-interval over seeds, and max_eps J_{t_gamma}/J_0 over seeds.

    Args:
        widths, depths: the network shapes (hidden width, hidden layers).
        parameterisations: a subset of ("ntk", "mean_field").
        kl_coefs: the values of lambda (>= 0).
        seeds: at least two seeds (for an interval).
        num_points, decades: the eps grid (at least 3 points).
        gamma: the gain E r_G - E_pi0 r_G to reach, in (0, 2 (1 - 0.1)).
        progress: print one line per network shape to stderr.
    """
    from theory_sim.theorems import theorem_4_bound

    started = time.perf_counter()
    widths = tuple(check_int("widths", w, 1) for w in widths)
    depths = tuple(check_int("depths", d, 1) for d in depths)
    parameterisations = tuple(parameterisations)
    bad = [p for p in parameterisations if p not in PARAMETERISATIONS]
    if bad or not parameterisations:
        raise ValueError(
            f"`parameterisations` must be a non-empty subset of {PARAMETERISATIONS}; got "
            f"{parameterisations!r}."
        )
    kl_coefs = tuple(check_float_scalar("kl_coefs", k, nonnegative=True) for k in kl_coefs)
    seeds = tuple(check_seed("seeds", s) for s in seeds)
    if not widths or not depths or not kl_coefs or len(seeds) < 2:
        raise ValueError("`widths`, `depths` and `kl_coefs` must be non-empty and `seeds` must "
                         f"hold at least two seeds; got {len(seeds)} seed(s).")  # fmt: skip
    num_points = check_int("num_points", num_points, 3)
    decades = check_float_scalar("decades", decades, positive=True)
    gamma = check_float_scalar("gamma", gamma, positive=True)
    if gamma >= 1.8:
        raise ValueError(f"`gamma` must be below 1.8 (the gain 2 (1 - eps) at eps = 0.1); got "
                         f"{gamma}.")  # fmt: skip
    eps_grid = _eps_grid(num_points, decades)
    var0 = np.array([reward_variance(_start(e), _reward()) for e in eps_grid])
    rows, fits, paths = [], [], {}
    for param in parameterisations:
        for depth in depths:
            for width in widths:
                tic = time.perf_counter()
                keys = [(lam, seed, e) for lam in kl_coefs for seed in seeds for e in eps_grid]
                # a vmapped solve steps every flow until its slowest has finished, and the step
                # count grows with 1/eps and lambda: the seeds of one (lambda, eps), alike in
                # steps, are solved together (a quarter of the work of one solve for all)
                solved = {}
                for lam in kl_coefs:
                    for e in eps_grid:
                        group = [study_policy(param, width, depth, s, e) for s in seeds]
                        flows = solve_flows(group, [lam] * len(seeds), gamma)
                        solved.update({(lam, s, e): f for s, f in zip(seeds, flows, strict=True)})
                flows = [solved[k] for k in keys]
                repeated = np.tile(var0, len(keys) // len(var0))
                for (lam, seed, e), flow, v in zip(keys, flows, repeated, strict=True):
                    j0, jmax = float(flow["jacobian"][0]), float(flow["jacobian"].max())
                    bound = theorem_4_bound(1, jmax, lam, gamma, v)
                    rows.append({"parameterisation": param, "depth": depth, "width": width,
                                 "kl_coef": lam, "seed": seed, "eps": float(e), "var0": float(v),
                                 "t_gamma": flow["t_gamma"], "J_0": j0, "J_t_gamma": jmax,
                                 "J_ratio": jmax / j0, "theorem_4_bound": bound,
                                 "bound_ratio": flow["t_gamma"] / bound,
                                 "steps": flow["steps"]})  # fmt: skip
                    if seed == seeds[0] and e == eps_grid[-1]:
                        paths[(param, depth, width, lam)] = (flow["ts"], flow["jacobian"] / j0)
                for lam in kl_coefs:
                    fits.append(_fit_configuration(rows, param, depth, width, lam, seeds))
                if progress:
                    print(f"remark_1: {param} depth {depth} width {width}: {len(keys)} flows in "
                          f"{time.perf_counter() - tic:.1f} s", file=sys.stderr)  # fmt: skip
    references = {lam: _tabular_reference(eps_grid, lam, gamma) for lam in kl_coefs}
    return Remark1(rows, fits, references, paths, time.perf_counter() - started)


def _fit_configuration(rows, param, depth, width, lam, seeds) -> dict:
    mine = [r for r in rows if (r["parameterisation"], r["depth"], r["width"], r["kl_coef"]) ==
            (param, depth, width, lam)]  # fmt: skip
    slopes, ratios, j0s = [], [], []
    for seed in seeds:
        part = [r for r in mine if r["seed"] == seed]
        reached = [r for r in part if math.isfinite(r["t_gamma"])]
        if len(reached) >= 3:
            slopes.append(_slope([r["var0"] for r in reached], [r["t_gamma"] for r in reached]))
        ratios.append(max(r["J_ratio"] for r in part))
        j0s.append(part[0]["J_0"])
    slopes = np.array(slopes)
    if len(slopes) >= 2:
        import scipy.stats  # here, not at import: it costs half a second of start-up

        quantile = scipy.stats.t.ppf(0.975, len(slopes) - 1)
        half = float(quantile * slopes.std(ddof=1) / math.sqrt(len(slopes)))
    else:
        half = math.nan
    mean = float(slopes.mean()) if len(slopes) else math.nan
    return {
        "parameterisation": param, "depth": depth, "width": width, "kl_coef": lam,
        "slope": mean, "slope_low": mean - half, "slope_high": mean + half,
        "seeds_fitted": len(slopes), "J_0": float(np.median(j0s)),
        "J_ratio_median": float(np.median(ratios)), "J_ratio_min": float(min(ratios)),
        "J_ratio_max": float(max(ratios)),
        "min_bound_ratio": min(r["bound_ratio"] for r in mine),
        "unreached": sum(not math.isfinite(r["t_gamma"]) for r in mine),
    }  # fmt: skip
