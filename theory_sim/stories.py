"""The paper's stories as experiments: one function per figure or table of the notebooks.

Each returns plain results (dataclasses of arrays, lists of row dicts) that
:mod:`theory_sim.plotting` draws and :mod:`theory_sim.report` writes; the notebooks and
``theory-sim reproduce`` call the same functions, so what a notebook shows is what the command
writes, at the same sizes: every default here is the size the notebooks, ``reproduce`` and the
README's quoted numbers use. :data:`QUICK` holds the small sizes of ``reproduce --quick``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import jax
import numpy as np

from theory_sim import bradley_terry, rewards
from theory_sim._parallel import threaded_map
from theory_sim._validation import check_float_scalar, check_int
from theory_sim.flow import Trajectory, gradient_flow, time_to_gain
from theory_sim.instances import counterexample_instance, neural_policy
from theory_sim.metrics import accuracy, on_policy_accuracy, reward_variance
from theory_sim.policies import Autoregressive, Tabular, start_at
from theory_sim.problem import Problem
from theory_sim.theorems import (
    Check,
    ExponentFit,
    check_theorem_5,
    check_theorem_6,
    fit_exponent,
    proposition_3_bound,
    theorem_4_bound,
)

__all__ = [
    "PAPER_TABLE_2",
    "QUICK",
    "REMARK_1_MODELS",
    "REMARK_1_SCALES",
    "AccuracyVarianceGrid",
    "FlatLandscape",
    "Remark1",
    "Section41",
    "SequenceTeachers",
    "TeacherStudent",
    "Theorem5Story",
    "Theorem6Story",
    "accuracy_variance_grid",
    "counterexample_instance",
    "flat_landscape",
    "remark_1",
    "section_4_1",
    "sequence_teachers",
    "teacher_student",
    "theorem_5_story",
    "theorem_6_story",
    "top_sequences",
]

# Smoke sizes: what `reproduce --quick` runs (the notebooks run the full defaults).
QUICK = {
    "flat_landscape": {"num_points": 5, "decades": 4.0},
    "theorem_5_story": {"horizons": (10.0, 100.0)},
    "accuracy_variance_grid": {"num_accuracies": 3, "num_variances": 3},
    "teacher_student": {"num_policies": 3, "num_models": 4},
    "section_4_1": {"num_prompts": 6, "num_outputs": 8, "seeds": (0, 1), "rloo_steps": 50},
    "estimator_snr_study": {"good_masses": (1e-1, 1e-2, 1e-3), "num_estimates": 300},
    "remark_1": {"models": (("mlp", 8, 1),), "num_points": 3, "decades": 2.0},
}

# Table 2 of arXiv 2503.15477 (Pythia-2.8B), the whole of it as theory.md section 5 quotes it:
# correlation with the increase after one epoch, over the reward models.
PAPER_TABLE_2 = {
    (measure, increase, kind): value
    for measure, values in {
        "variance": (0.982, 1.000, 0.834, 0.714),
        "on-policy accuracy": (-0.762, 0.143, -0.283, 0.200),
        "off-policy accuracy": (-0.933, -0.943, -0.507, -0.543),
        "on- and off-policy accuracy": (-0.870, -0.486, -0.397, 0.200),
        "variance and accuracy": (0.676, 0.886, 0.940, 0.828),
    }.items()
    for (increase, kind), value in zip(
        (
            ("proxy", "pearson"),
            ("proxy", "spearman"),
            ("ground truth", "pearson"),
            ("ground truth", "spearman"),
        ),
        values,
        strict=True,
    )
}


def _fraction(name: str, value) -> float:
    value = check_float_scalar(name, value, positive=True)
    if value > 1:
        raise ValueError(f"`{name}` must be in (0, 1]; got {value}.")
    return value


# ----------------------------------------------------------------------------- flat landscape


@dataclasses.dataclass(frozen=True)
class FlatLandscape:
    """t_gamma against Var0 over a family of instances, with both lower bounds at each point.

    Attributes:
        policy, family: what was swept (see :func:`flat_landscape`).
        var0, t_gamma, gamma: [K] per instance.
        proposition_3: [K] 2(1 - e^(-gamma/2)) / sqrt(Var0) (tabular; nan for sequences).
        theorem_4: [K] min(1 - e^(-gamma/9), ...) / (8 L^2 J^2) Var0^(-1/3).
        fit: the least-squares slope of log t_gamma on log Var0.
    """

    policy: str
    family: str
    var0: np.ndarray
    t_gamma: np.ndarray
    gamma: np.ndarray
    proposition_3: np.ndarray
    theorem_4: np.ndarray
    fit: ExponentFit

    def rows(self) -> list[dict]:
        return [
            {
                "policy": self.policy,
                "family": self.family,
                "var0": float(v),
                "t_gamma": float(t),
                "gamma": float(g),
                "proposition_3_bound": float(p),
                "theorem_4_bound": float(b),
            }
            for v, t, g, p, b in zip(
                self.var0, self.t_gamma, self.gamma, self.proposition_3, self.theorem_4, strict=True
            )
        ]


FLAT_FAMILIES = ("reward_scale", "concentration")


def _concentrated(policy, eps: float, num_outputs: int) -> np.ndarray:
    """pi_0 with mass eps on output 0; for sequences, per-token mass eps^(1/L) on token 0."""
    if isinstance(policy, Tabular):
        probs = np.full(num_outputs, (1 - eps) / (num_outputs - 1))
        probs[0] = eps
        return probs
    token = eps ** (1.0 / policy.length)
    per_token = np.array([token, 1 - token])
    seqs = policy.sequences()
    return np.prod(per_token[seqs], axis=-1)


def flat_landscape(
    policy: str = "tabular",
    family: str = "concentration",
    *,
    num_points: int = 13,
    decades: float = 6.0,
    seed: int = 0,
) -> FlatLandscape:
    """t_gamma against Var0 with the bounds of Proposition 3 and Theorem 4 (arXiv 2503.15477).

    Eight outputs: a tabular softmax over Y = 8, or an autoregressive policy with V = 2, L = 3.
    lambda = 0. Var0 spans ``decades`` decades over ``num_points`` instances.

    Families:
        * "reward_scale": a seeded random pi_0 and r_G ~ U[-1, 1]; r_RM = c r_G with c shrinking.
          gamma is half the gain of r_G toward its value at the best output of r_RM.
        * "concentration": r = +1 on one output (for sequences, (0, ..., 0)) and -1 elsewhere,
          r_RM = r_G = r; pi_0 gives it mass eps (spread evenly over the others' prefixes for
          the autoregressive policy), eps shrinking; gamma = 0.5.

    Proposition 3 bounds t_gamma below by 2(1 - e^(-gamma/2)) Var0^(-1/2) (tabular policies) and
    Theorem 4 by min(1 - e^(-gamma/9), ...) / (8 L^2 J^2) Var0^(-1/3) (autoregressive, the
    tabular softmax being L = 1); the fit reports the exponent the instances actually show.
    """
    if policy not in ("tabular", "autoregressive"):
        raise ValueError(f"`policy` must be 'tabular' or 'autoregressive'; got {policy!r}.")
    if family not in FLAT_FAMILIES:
        raise ValueError(f"`family` must be one of {FLAT_FAMILIES}; got {family!r}.")
    num_points = check_int("num_points", num_points, 3)
    decades = check_float_scalar("decades", decades, positive=True)
    param = Tabular() if policy == "tabular" else Autoregressive(2, 3)
    num_outputs = 8
    rng_key = jax.random.key(seed)
    var0, times, gammas, prop3, thm4 = [], [], [], [], []
    for k in range(num_points):
        level = decades * k / (num_points - 1)  # Var0 falls by 10^level
        if family == "reward_scale":
            k_p, k_r = jax.random.split(rng_key)
            probs = np.asarray(jax.random.dirichlet(k_p, np.ones(num_outputs)))
            r_gt = np.asarray(jax.random.uniform(k_r, (num_outputs,), np.float64, -1.0, 1.0))
            r_rm = 10.0 ** (-level / 2) * r_gt
            gamma = 0.5 * (r_gt[np.argmax(r_rm)] - probs @ r_gt)
        else:
            eps = 0.1 * 10.0 ** (-level)
            r_gt = np.full(num_outputs, -1.0)
            r_gt[0] = 1.0
            r_rm = r_gt
            probs = _concentrated(param, eps, num_outputs)
            gamma = 0.5
        params, _ = start_at(param, probs)
        problem = Problem(params, r_rm, r_gt, policy=param)
        v = float(reward_variance(probs, r_rm))
        var0.append(v)
        gammas.append(float(gamma))
        times.append(time_to_gain(problem, gamma))
        prop3.append(proposition_3_bound(1, v, gamma) if policy == "tabular" else math.nan)
        jac = param.jacobian_norm(problem.params0)
        thm4.append(theorem_4_bound(param.length, jac, 0.0, gamma, v))
    return FlatLandscape(
        policy,
        family,
        np.array(var0),
        np.array(times),
        np.array(gammas),
        np.array(prop3),
        np.array(thm4),
        fit_exponent(var0, times),
    )


# ----------------------------------------------------------------------------- Remark 1

# (kind, width, depth): the neural parameterisations of :func:`remark_1` (transformers with
# width // 4 heads, MLPs over seeded features). Each new shape costs about a minute of
# compilation on two cores; these two are also the neural instances of ``theory-sim check``.
REMARK_1_MODELS = (("transformer", 8, 1), ("mlp", 16, 2))
REMARK_1_SCALES = (0.3, 3.0)


@dataclasses.dataclass(frozen=True)
class Remark1:
    """Remark 1 of arXiv 2503.15477 put to the test: t_gamma against Var0 for neural policies.

    Attributes:
        rows: one per (model, init scale, eps): "model", "init_scale", "eps", "var0",
            "t_gamma", "theorem_4_bound" (with J_{t_gamma}), "J_0", "J_t_gamma", "J_ratio"
            (J_{t_gamma} / J_0), "fit_residual" (of start_at).
        fits: one per (model, init scale): "model", "init_scale", "slope", "stderr", and the
            largest "J_ratio" seen; then the tabular and autoregressive slopes of
            :func:`flat_landscape` on the same family for comparison.
    """

    rows: list
    fits: list

    def series(self, model: str, init_scale: float) -> dict:
        """The rows of one (model, init scale) as arrays, in the order of ``eps``."""
        rows = [r for r in self.rows if r["model"] == model and r["init_scale"] == init_scale]
        return {k: np.array([r[k] for r in rows]) for k in rows[0] if k != "model"}


def remark_1(
    models=REMARK_1_MODELS,
    init_scales=REMARK_1_SCALES,
    *,
    num_points: int = 4,
    decades: float = 3.0,
    seed: int = 0,
) -> Remark1:
    """Does the Jacobian of a neural policy grow enough to offset a small reward variance?

    Remark 1 of arXiv 2503.15477 leaves it open; here it is measured exactly. The family is
    :func:`flat_landscape`'s "concentration": eight outputs (the V = 2, L = 3 sequences for a
    transformer, eight outputs with seeded features for an MLP), r_RM = r_G = +1 on output 0 and
    -1 elsewhere, pi_0 with mass eps on output 0 (per-token mass eps^(1/3) on token 0) fitted by
    :func:`~theory_sim.start_at`, eps from 0.1 down ``decades`` decades, lambda = 0, gamma = 0.5.
    For each model and init scale: t_gamma against Var0 = Var_{pi_0} r, the Theorem 4 bound with
    J_{t_gamma} (the sup of J_t over [0, t_gamma], :func:`~theory_sim.theorems.check_theorem_4`),
    J_{t_gamma} / J_0, and the fitted slope of log t_gamma on log Var0 beside the tabular and
    autoregressive ones.
    """
    from theory_sim.theorems import check_theorem_4

    num_points = check_int("num_points", num_points, 3)
    decades = check_float_scalar("decades", decades, positive=True)
    models = tuple(models)
    if not models or not all(
        isinstance(m, tuple) and len(m) == 3 and m[0] in ("transformer", "mlp") for m in models
    ):
        raise ValueError(
            "`models` must be a non-empty sequence of (kind, width, depth) with kind "
            f"'transformer' or 'mlp'; got {models!r}."
        )
    init_scales = tuple(init_scales)
    if not init_scales:
        raise ValueError("`init_scales` must hold at least one init scale.")
    target = np.full(8, -1.0)
    target[0] = 1.0
    rows, fits = [], []
    for kind, width, depth in models:
        label = f"{kind} w={width} d={depth}"
        for scale in init_scales:
            policy = neural_policy(kind, width, depth, float(scale), seed)
            part = []
            for k in range(num_points):
                eps = 0.1 * 10.0 ** (-decades * k / (num_points - 1))
                params, residual = start_at(policy, _concentrated(Autoregressive(2, 3), eps, 8))
                problem = Problem(params, target, policy=policy)
                var0 = float(reward_variance(np.exp(problem.ref_log_probs[0]), target))
                row = check_theorem_4(problem, 0.5, t_max=1e10)
                part.append(
                    {
                        "model": label,
                        "init_scale": float(scale),
                        "eps": eps,
                        "var0": var0,
                        "t_gamma": row.measured,
                        "theorem_4_bound": row.bound,
                        "J_0": row.details["jacobian_0"],
                        "J_t_gamma": row.details["jacobian"],
                        "J_ratio": row.details["jacobian"] / row.details["jacobian_0"],
                        "fit_residual": residual,
                    }
                )
            fit = fit_exponent([r["var0"] for r in part], [r["t_gamma"] for r in part])
            fits.append(
                {
                    "model": label,
                    "init_scale": float(scale),
                    "slope": fit.slope,
                    "stderr": fit.stderr,
                    "max J_ratio": max(r["J_ratio"] for r in part),
                }
            )
            rows.extend(part)
    for name in ("tabular", "autoregressive"):
        land = flat_landscape(name, "concentration", num_points=num_points, decades=decades)
        fits.append(
            {
                "model": name,
                "init_scale": math.nan,
                "slope": land.fit.slope,
                "stderr": land.fit.stderr,
                "max J_ratio": 1.0,
            }
        )
    return Remark1(rows, fits)


# ----------------------------------------------------------------------------- Theorem 5


@dataclasses.dataclass(frozen=True)
class Theorem5Story:
    """Theorem 5 across T, and both models' ground-truth curves at one T.

    Attributes:
        rows: one dict per T: T, t_slow, slow_bound (lower), t_fast, fast_bound (upper), the two
            models' accuracies and Var0.
        slow, fast: :class:`~theory_sim.Trajectory` under the accurate-slow and inaccurate-fast
            models at ``curve_T`` (E r_G in ``expected_gt``).
        target: E_pi0 r_G + gamma, the level t_gamma waits for.
        checks: the :class:`~theory_sim.theorems.Check` rows behind ``rows``.
    """

    rows: list[dict]
    slow: Trajectory
    fast: Trajectory
    curve_T: float
    gamma: float
    target: float
    checks: list[Check]


def theorem_5_story(
    horizons=(10.0, 100.0, 1000.0), *, curve_T: float = 100.0, seed: int = 0
) -> Theorem5Story:
    """Theorem 5 of arXiv 2503.15477 on :func:`counterexample_instance` (lambda = 0, gamma = 0.3
    of the headroom max r_G - E_pi0 r_G): the perfectly accurate model's t_gamma grows like T while
    the inaccurate model's stays below a T-free bound."""
    probs, r_gt = counterexample_instance(seed)
    gamma = 0.3 * float(r_gt.max() - probs @ r_gt)
    rows, checks = [], []
    for horizon in horizons:
        found = check_theorem_5(probs, r_gt, gamma, horizon, 0.0)
        checks += found
        by = {c.claim.removeprefix("Theorem 5: "): c for c in found}
        fast = rewards.theorem_5_models(probs, r_gt, gamma, horizon).fast
        rows.append(
            {
                "T": float(horizon),
                "t_slow": by["slow model time"].measured,
                "slow_bound": by["slow model time"].bound,
                "t_fast": by["fast model time"].measured,
                "fast_bound": by["fast model time"].bound,
                "accuracy_slow": by["slow model accuracy"].measured,
                "accuracy_fast": by["fast model accuracy"].measured,
                "var0_slow": by["slow model Var0"].measured,
                "var0_fast": float(reward_variance(probs, fast)),  # not one of the checks
            }
        )
    models = rewards.theorem_5_models(probs, r_gt, gamma, curve_T)
    known = {r["T"]: r["t_slow"] for r in rows}
    t_slow = known.get(float(curve_T)) or time_to_gain(
        Problem(np.log(probs), models.slow, r_gt), gamma
    )
    t_max = 10.0 * max(t_slow, 1.0)
    slow, fast = (
        gradient_flow(Problem(np.log(probs), r_rm, r_gt), t_max)
        for r_rm in (models.slow, models.fast)
    )
    return Theorem5Story(rows, slow, fast, curve_T, gamma, float(probs @ r_gt) + gamma, checks)


# ----------------------------------------------------------------------------- accuracy-variance


@dataclasses.dataclass(frozen=True)
class AccuracyVarianceGrid:
    """t_gamma over reward models with accuracy and Var0 set independently.

    Attributes:
        accuracies: [A] exact uniform-pair accuracies (attainable values nearest the request).
        variances: [V] Var_pi0 r_RM.
        t_gamma: [A, V] time for E r_G to gain gamma (inf: never, the model's optimum is worse).
        gamma: the gain.
    """

    accuracies: np.ndarray
    variances: np.ndarray
    t_gamma: np.ndarray
    gamma: float

    def rows(self) -> list[dict]:
        return [
            {"accuracy": float(a), "var0": float(v), "t_gamma": float(self.t_gamma[i, j])}
            for i, a in enumerate(self.accuracies)
            for j, v in enumerate(self.variances)
        ]


def accuracy_variance_grid(
    *,
    num_accuracies: int = 6,
    num_variances: int = 7,
    num_outputs: int = 8,
    gamma_fraction: float = 0.2,
    seed: int = 0,
) -> AccuracyVarianceGrid:
    """t_gamma on a grid of the accuracy-variance plane (Theorem 5's message, beyond its pair).

    One prompt, pi_0 ~ Dirichlet(1) and r_G ~ U[-1, 1] (seeded, :func:`counterexample_instance`);
    accuracies evenly spaced from 0.5 to 1 (each rounded to the nearest attainable value), Var0
    log-spaced from 1e-5 up to half the largest variance every ranking can reach under pi_0;
    each reward model is :func:`theory_sim.rewards.accuracy_sweep`'s (a ranking with the
    accuracy, then a monotone map to the variance). gamma = ``gamma_fraction`` (max r_G -
    E_pi0 r_G); lambda = 0.
    """
    num_accuracies = check_int("num_accuracies", num_accuracies, 2)
    num_variances = check_int("num_variances", num_variances, 2)
    gamma_fraction = _fraction("gamma_fraction", gamma_fraction)
    probs, r_gt = counterexample_instance(seed, num_outputs)
    gamma = gamma_fraction * float(r_gt.max() - probs @ r_gt)
    wanted = np.linspace(0.5, 1.0, num_accuracies)
    accs = np.unique([rewards.nearest_attainable_accuracy(r_gt, a) for a in wanted])
    rankings = [rewards.ranking_with_accuracy(r_gt, a) for a in accs]
    ceiling = min(rewards.max_monotone_variance(probs, r) for r in rankings)
    variances = np.geomspace(1e-5, 0.5 * ceiling, num_variances)
    times = np.empty((len(accs), num_variances))
    for i, ranking in enumerate(rankings):
        for j, v in enumerate(variances):
            r_rm = rewards.with_variance(probs, ranking, v)
            times[i, j] = time_to_gain(Problem(np.log(probs), r_rm, r_gt), gamma, t_max=1e9)
    return AccuracyVarianceGrid(accs, variances, times, gamma)


# ----------------------------------------------------------------------------- Theorem 6


@dataclasses.dataclass(frozen=True)
class Theorem6Story:
    """Theorem 6's two policies and two reward models.

    Attributes:
        times: [2, 2] t_gamma, rows the initial policy (from Pi, from Pi'), columns the reward
            model (r_RM, r'_RM).
        checks: the Theorem 6 rows of :func:`~theory_sim.theorems.check_theorem_6`.
    """

    times: np.ndarray
    checks: list[Check]
    T: float
    c: float
    gamma: float


def theorem_6_story(seed: int = 0, T: float = 30.0, *, num_prompts: int = 1) -> Theorem6Story:
    """Theorem 6 of arXiv 2503.15477 on :func:`counterexample_instance`: the faster of two reward
    models flips with the initial policy. c is the largest of (0.2, 0.1, 0.05, 0.02) for which
    both families share V0, gamma half the room between V0 and the second-best r_G, lambda at each
    family's limit (the theorem's condition), ``num_prompts`` identical prompts."""
    _, r_gt = counterexample_instance(seed)
    for c in (0.2, 0.1, 0.05, 0.02):
        try:
            v0 = rewards.theorem_6_instance(r_gt, 1e-9, T, c).v0
        except ValueError:
            continue
        gamma = 0.5 * (float(np.sort(r_gt)[-2]) - v0)
        checks = check_theorem_6(r_gt, gamma, T, c, num_prompts=num_prompts)
        times = np.empty((2, 2))
        for row, name in enumerate(("Pi", "Pi'")):
            d = next(x.details for x in checks if x.instance.endswith(f"from {name}"))
            # columns are (r_RM, r'_RM): from Pi, r_RM matches; from Pi', r'_RM does
            times[row] = (
                (d["t_matching"], d["t_mismatched"])
                if row == 0
                else (d["t_mismatched"], d["t_matching"])
            )
        return Theorem6Story(times, checks, T, c, gamma)
    raise ValueError(f"seed {seed}: no c in (0.2, 0.1, 0.05, 0.02) gives both families a V0.")


@dataclasses.dataclass(frozen=True)
class TeacherStudent:
    """Fixed reward models taught to several initial policies.

    Attributes:
        models: [M] reward-model names. accuracy: [M] uniform-pair accuracy (policy-free).
        variance: [P, M] Var_pi0 r_RM under each policy. on_policy: [P, M] on-policy accuracy.
        gain: [P, M] ground-truth gain E_pi_T r_G - E_pi0 r_G after the horizon T.
        spearman_variance, spearman_accuracy: [P] rank correlation of the gain with the variance
            and with the accuracy, across models, under each policy.
        kendall: [P, P] Kendall tau between policies' rankings of the models by gain.
    """

    models: list[str]
    accuracy: np.ndarray
    variance: np.ndarray
    on_policy: np.ndarray
    gain: np.ndarray
    spearman_variance: np.ndarray
    spearman_accuracy: np.ndarray
    kendall: np.ndarray
    horizon: float

    @property
    def best(self) -> list[str]:
        """The fastest teacher for each policy."""
        return [self.models[int(i)] for i in np.argmax(self.gain, axis=1)]


def teacher_student(
    *,
    num_policies: int = 6,
    num_models: int = 8,
    num_outputs: int = 12,
    horizon: float = 5.0,
    seed: int = 0,
) -> TeacherStudent:
    """The same reward models, different students (Section 4.2 and Theorem 6 of arXiv
    2503.15477, with nothing hand-built).

    One prompt, r_G ~ U[-1, 1]. Reward models: r_G plus Gaussian noise of standard deviations
    spread over [0.1, 1] (each clipped to [-1, 1]), fixed once. Initial policies: softmax of
    N(0, s^2) logits with s spread over [0.5, 4], so some are near-uniform and some peaked on
    different outputs. lambda = 0; every pair runs the exact flow for ``horizon``.
    """
    num_policies = check_int("num_policies", num_policies, 2)
    num_models = check_int("num_models", num_models, 2)
    num_outputs = check_int("num_outputs", num_outputs, 2)
    horizon = check_float_scalar("horizon", horizon, positive=True)
    key = jax.random.key(seed)
    k_gt, k_noise, k_pol = jax.random.split(key, 3)
    r_gt = np.asarray(jax.random.uniform(k_gt, (num_outputs,), np.float64, -1.0, 1.0))
    noise = np.asarray(jax.random.normal(k_noise, (num_models, num_outputs), np.float64))
    scales = np.linspace(0.1, 1.0, num_models)
    models = np.clip(r_gt + scales[:, None] * noise, -1.0, 1.0)
    names = [f"noise {s:.2f}" for s in scales]
    spreads = np.linspace(0.5, 4.0, num_policies)
    logits = spreads[:, None] * np.asarray(
        jax.random.normal(k_pol, (num_policies, num_outputs), np.float64)
    )
    acc = np.array([float(accuracy(m, r_gt)) for m in models])
    var = np.empty((num_policies, num_models))
    on_pol = np.empty_like(var)
    gain = np.empty_like(var)
    for p, row in enumerate(logits):
        probs = np.asarray(jax.nn.softmax(row))
        for m, r_rm in enumerate(models):
            var[p, m] = float(reward_variance(probs, r_rm))
            on_pol[p, m] = float(on_policy_accuracy(probs, r_rm, r_gt))
            traj = gradient_flow(Problem(row, r_rm, r_gt), horizon, save_ts=[0.0, horizon])
            gain[p, m] = traj.expected_gt[-1] - traj.expected_gt[0]
    rho_var = np.array([_spearman(var[p], gain[p]) for p in range(num_policies)])
    rho_acc = np.array([_spearman(acc, gain[p]) for p in range(num_policies)])
    kendall = np.array([[_kendall(a, b) for b in gain] for a in gain])
    return TeacherStudent(names, acc, var, on_pol, gain, rho_var, rho_acc, kendall, horizon)


# ----------------------------------------------------------------------------- Section 4.1


@dataclasses.dataclass(frozen=True)
class Section41:
    """The tabular analogue of Section 4.1 of arXiv 2503.15477.

    Attributes:
        table_1: per reward model (mean over seeds): variance (mean over prompts of Var_pi0 of the
            normalised reward), on- and off-policy accuracy, and the proxy and ground-truth
            increases after the horizon under the exact flow (and under RLOO).
        table_2: per (models, measure, increase, method): Pearson and Spearman correlation
            across the reward models (ground truth excluded; models "all" or without the
            hand-built one), mean and standard deviation over seeds, the number of seeds where
            each is positive ("pearson > 0") and negative, and the paper's value (the whole of
            its Table 2). Measures include the combined ones (see :func:`_measure`).
        times: [K] times of ``curves``; curves: {model: [K] mean over seeds of the ground-truth
            increase along the exact flow}.
        findings: the paper's qualitative claims, each with what the simulation shows.
    """

    table_1: list[dict]
    table_2: list[dict]
    times: np.ndarray
    curves: dict
    findings: list[dict]
    settings: dict


ON_POLICY_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)
_MEASURES = (
    "variance",
    "on-policy accuracy",
    "off-policy accuracy",
    "on- and off-policy accuracy",
    "variance and accuracy",
)
# The hand-built model (perfectly accurate, variance 1e-6 on half the prompts); Table 2 is also
# reported without it, since the sign of the on-policy accuracy correlation depends on it.
HAND_BUILT = "accurate, low variance"
_WITHOUT_HAND_BUILT = f"without {HAND_BUILT!r}"  # the "models" value of those Table 2 rows


def _section_4_1_models(probs, r_gt, num_pairs, beta, key) -> dict:
    models = {}
    for i, frac in enumerate(ON_POLICY_FRACTIONS):
        pairs = bradley_terry.sample_preferences(
            probs, r_gt, num_pairs, frac, key=jax.random.fold_in(key, i), beta=beta
        )
        models[f"BT {round(100 * frac)}% on-policy"] = bradley_terry.fit_bradley_terry(
            pairs, *r_gt.shape
        )
    models[HAND_BUILT], _ = rewards.scale_prompts(r_gt, 0.5, 1e-3, key=jax.random.fold_in(key, 99))
    models["ground truth"] = r_gt
    return {name: bradley_terry.normalize_rewards(r, probs) for name, r in models.items()}


def section_4_1(
    policy=None,
    *,
    num_prompts: int = 20,
    num_outputs: int = 16,
    seeds=tuple(range(20)),
    pairs_per_prompt: int = 40,
    beta: float = 4.0,
    logit_std: float = 2.0,
    kl_coef: float = 0.05,
    horizon: float | None = None,
    rloo_steps: int = 200,
    learning_rate: float | None = None,
    num_samples: int = 8,
) -> Section41:
    """Section 4.1 of arXiv 2503.15477 in the tabular world.

    Per seed: r_G ~ U[-1, 1] on X prompts and Y outputs (for an :class:`Autoregressive`
    ``policy``, Y = V^L sequences); pi_0 = softmax of N(0, logit_std^2) logits (for sequences,
    per-token logits, so pi_0 is a genuine autoregressive policy). Reward models: Bradley-Terry
    fits to ``pairs_per_prompt * X`` preference pairs (labels ~ sigmoid(beta (r_G(y) - r_G(y'))))
    of which 100/75/50/25/0 % are drawn on-policy from pi_0 and the rest uniformly; the perfectly
    accurate low-variance model (r_G scaled by 1e-3 on half the prompts); and r_G itself. Each is
    normalised to mean 0 and variance 1 under pi_0 (:func:`~theory_sim.bradley_terry.
    normalize_rewards`). Every model is optimised with lambda = ``kl_coef`` by the exact flow for
    ``horizon`` (default 2 X: phi averages the X prompts, so each prompt's share of the gradient
    is 1/X) and by RLOO (``rloo_steps`` steps of size ``learning_rate``, default horizon /
    rloo_steps so that the two cover the same time, with ``num_samples`` samples per prompt).

    Measures, as in the paper: variance = mean_x Var_pi0 r_RM (after normalisation); on-policy
    accuracy over pairs drawn from pi_0; off-policy accuracy over uniform pairs; the increases of
    mean_x E r_RM (proxy) and mean_x E r_G (ground truth) over the run.
    """
    from theory_sim.training import sampled_optimize

    param = Tabular() if policy is None else policy
    if not isinstance(param, Tabular | Autoregressive):
        raise ValueError(
            f"`policy` must be None, Tabular() or Autoregressive(V, L); got {policy!r}."
        )
    seeds = tuple(check_int("seeds", s, 0) for s in seeds)
    if len(seeds) < 1:
        raise ValueError("`seeds` must name at least one seed.")
    pairs_per_prompt = check_int("pairs_per_prompt", pairs_per_prompt)
    num_outputs = param.num_sequences if isinstance(param, Autoregressive) else num_outputs
    num_prompts = check_int("num_prompts", num_prompts)
    rloo_steps = check_int("rloo_steps", rloo_steps)
    horizon = (
        2.0 * num_prompts
        if horizon is None
        else check_float_scalar("horizon", horizon, positive=True)
    )
    if learning_rate is None:
        learning_rate = horizon / rloo_steps
    times = np.concatenate([[0.0], np.geomspace(horizon * 1e-3, horizon, 40)])

    def one_seed(seed):  # the rows of one seed's reward models, and their r_G increase curves
        key = jax.random.key(seed)
        k_gt, k_pi, k_rm, k_rl = jax.random.split(key, 4)
        shape = (num_prompts, num_outputs)
        r_gt = np.asarray(jax.random.uniform(k_gt, shape, np.float64, -1.0, 1.0))
        if isinstance(param, Autoregressive):
            logits = logit_std * np.asarray(
                jax.random.normal(k_pi, (num_prompts, param.num_prefixes, param.vocab_size))
            )
            probs = np.exp(np.asarray(param.log_probs(logits)))
        else:
            probs = np.asarray(
                jax.nn.softmax(logit_std * np.asarray(jax.random.normal(k_pi, shape)), axis=-1)
            )
        params, _ = start_at(param, probs)
        models = _section_4_1_models(probs, r_gt, pairs_per_prompt * num_prompts, beta, k_rm)
        rows, gt_curves = {}, {}
        for i, (name, r_rm) in enumerate(models.items()):
            problem = Problem(params, r_rm, r_gt, kl_coef=kl_coef, policy=param)
            traj = gradient_flow(problem, horizon, save_ts=times)
            run = sampled_optimize(
                problem,
                learning_rate,
                rloo_steps,
                key=jax.random.fold_in(k_rl, i),
                num_samples=num_samples,
                save_every=rloo_steps,
            )
            gt_curves[name] = _mean_increase(traj.expected_gt)
            rows[name] = {
                "variance": float(np.mean(reward_variance(probs, r_rm))),
                "on-policy accuracy": float(np.mean(on_policy_accuracy(probs, r_rm, r_gt))),
                "off-policy accuracy": float(np.mean(accuracy(r_rm, r_gt))),
                "proxy increase": float(_mean_increase(traj.expected_rm)[-1]),
                "ground-truth increase": float(gt_curves[name][-1]),
                "proxy increase (RLOO)": float(_mean_increase(run.expected_rm)[-1]),
                "ground-truth increase (RLOO)": float(_mean_increase(run.expected_gt)[-1]),
            }
        return rows, gt_curves

    # seeds are independent: one thread per core, results in seed order
    per_seed, curves = [], {}
    with contextlib.closing(threaded_map(one_seed, seeds)) as done:
        for rows, gt_curves in done:
            per_seed.append(rows)
            for name, curve in gt_curves.items():
                curves.setdefault(name, []).append(curve)
    names = list(per_seed[0])
    columns = list(per_seed[0][names[0]])
    table_1 = []
    for name in names:
        row = {"reward model": name}
        for col in columns:
            values = np.array([s[name][col] for s in per_seed])
            row[col] = float(values.mean())
            row[col + " sd"] = float(values.std())
        table_1.append(row)
    table_2 = _correlations(per_seed, [n for n in names if n != "ground truth"])
    mean_curves = {name: np.mean(curves[name], axis=0) for name in names}
    settings = {
        "policy": repr(param),
        "num_prompts": num_prompts,
        "num_outputs": num_outputs,
        "seeds": list(seeds),
        "pairs_per_prompt": pairs_per_prompt,
        "beta": beta,
        "logit_std": logit_std,
        "kl_coef": kl_coef,
        "horizon": horizon,
        "rloo_steps": rloo_steps,
        "learning_rate": learning_rate,
        "num_samples": num_samples,
    }
    findings = _findings(table_1, table_2, times, mean_curves)
    return Section41(table_1, table_2, times, mean_curves, findings, settings)


def _mean_increase(expected: np.ndarray) -> np.ndarray:
    """[K] mean over prompts of E_{pi_k} r - E_{pi_0} r, from expected rewards [K] or [K, X]."""
    e = np.asarray(expected).reshape(expected.shape[0], -1)
    return np.mean(e - e[0], axis=-1)


def _measure(seed_rows: dict, names: list[str], measure: str) -> np.ndarray:
    """One measure across the reward models ``names`` of one seed.

    The combined measures of Table 2: "on- and off-policy accuracy" is the mean of the two
    accuracies; "variance and accuracy" is the mean of the variance and that combined accuracy,
    each standardised across the models (z-scores), since the two live on different scales.
    """

    def column(key):
        return np.array([seed_rows[n][key] for n in names])

    if measure == "on- and off-policy accuracy":
        return 0.5 * (column("on-policy accuracy") + column("off-policy accuracy"))
    if measure == "variance and accuracy":
        parts = [column("variance"), _measure(seed_rows, names, "on- and off-policy accuracy")]
        return 0.5 * sum((p - p.mean()) / p.std() for p in parts)
    return column(measure)


# The three correlations of the tables, on a handful of reward models or policies each. They are
# scipy.stats' pearsonr, spearmanr and kendalltau (tau-b) to round-off (tests/test_stories.py
# checks it, ties included), written here because importing scipy.stats costs 0.5 s of CPU, 4%
# of `reproduce --quick`'s. Constant input gives nan, as in scipy.


def _pearson(x, y) -> float:
    """Pearson's r: the cosine of the centred x and y."""
    x, y = (np.asarray(v, np.float64) - np.mean(v) for v in (x, y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.clip(x @ y / np.sqrt((x @ x) * (y @ y)), -1.0, 1.0))


def _ranks(x) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank: #{x_j < x_i} + (#{x_j = x_i} + 1) / 2; all nan
    if any x is nan, so that rho is nan (scipy's default)."""
    x = np.asarray(x, np.float64)
    ranks = np.sum(x[None, :] < x[:, None], axis=1) + (np.sum(x[None, :] == x[:, None], 1) + 1) / 2
    return ranks if not np.isnan(x).any() else np.full(len(x), np.nan)


def _spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the ranks."""
    return _pearson(_ranks(x), _ranks(y))


def _kendall(x, y) -> float:
    """Kendall's tau-b: sum s_x s_y / sqrt(sum s_x^2 sum s_y^2) over pairs i < j, with
    s_x = sign(x_i - x_j) (ties give 0 and leave the denominator)."""
    x, y = (np.asarray(v, np.float64) for v in (x, y))
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(sx @ sy / np.sqrt((sx @ sx) * (sy @ sy)))


def _correlations(per_seed: list[dict], names: list[str]) -> list[dict]:
    """Table 2 rows: per (models, measure, increase, method), Pearson and Spearman correlation
    across the reward models, their mean and standard deviation over seeds and the number of
    seeds where each is positive and negative; with every proxy model, and without the
    hand-built one."""
    rows = []
    model_sets = {"all": names, _WITHOUT_HAND_BUILT: [n for n in names if n != HAND_BUILT]}
    for models, chosen in model_sets.items():
        for increase in ("proxy", "ground truth"):
            for method in ("flow", "RLOO"):
                col = ("proxy increase" if increase == "proxy" else "ground-truth increase") + (
                    "" if method == "flow" else " (RLOO)"
                )
                for measure in _MEASURES:
                    found = {"pearson": [], "spearman": []}
                    for seed_rows in per_seed:
                        x = _measure(seed_rows, chosen, measure)
                        y = np.array([seed_rows[n][col] for n in chosen])
                        found["pearson"].append(_pearson(x, y))
                        found["spearman"].append(_spearman(x, y))
                    row = {"models": models, "measure": measure, "increase": increase}
                    row["method"] = method
                    for kind, values in found.items():
                        values = np.array(values)
                        row[kind] = float(values.mean())
                        row[kind + " sd"] = float(values.std())
                        row[kind + " > 0"] = int((values > 0).sum())
                        row[kind + " < 0"] = int((values < 0).sum())
                        row["paper " + kind] = PAPER_TABLE_2.get(
                            (measure, increase, kind), math.nan
                        )
                    rows.append(row)
    return rows


def _findings(table_1, table_2, times, curves) -> list[dict]:
    by_name = {r["reward model"]: r for r in table_1}
    proxies = [n for n in by_name if n != "ground truth"]
    slowest = min(proxies, key=lambda n: by_name[n]["ground-truth increase"])

    def row(measure, increase, models="all"):
        return next(
            r
            for r in table_2
            if (r["models"], r["measure"], r["increase"], r["method"])
            == (models, measure, increase, "flow")
        )

    def corr(measure, increase, models="all"):
        r = row(measure, increase, models)
        seeds = r["pearson > 0"] + r["pearson < 0"]
        return f"{r['pearson']:+.3f} ({r['pearson > 0']} of {seeds} seeds positive)"

    without = _WITHOUT_HAND_BUILT

    early = [
        (float(t), n)
        for k, t in enumerate(times)
        if t > 0
        for n in proxies
        if curves[n][k] > curves["ground truth"][k]
    ]
    return [
        {
            "paper": "reward variance correlates strongly with the increase (Pearson 0.982 proxy, "
            "0.834 ground truth)",
            "simulation": f"Pearson {corr('variance', 'proxy')} proxy, "
            f"{corr('variance', 'ground truth')} ground truth",
        },
        {
            "paper": "accuracy correlates weakly or negatively with the ground-truth increase "
            "(on-policy -0.283, off-policy -0.507)",
            "simulation": f"on-policy {corr('on-policy accuracy', 'ground truth')}, "
            f"off-policy {corr('off-policy accuracy', 'ground truth')}",
        },
        {
            "paper": "(footnote) accuracy correlating negatively is not always the case",
            "simulation": "without the hand-built model: on-policy "
            f"{corr('on-policy accuracy', 'ground truth', without)}, off-policy "
            f"{corr('off-policy accuracy', 'ground truth', without)}",
        },
        {
            "paper": "the perfectly accurate, low-variance model is the slowest teacher",
            "simulation": f"slowest by ground-truth increase: {slowest}",
        },
        {
            "paper": "early on, a proxy reward model beats optimising the ground truth directly",
            "simulation": (
                f"yes: {early[0][1]} is ahead at t = {early[0][0]:.3g}"
                if early
                else "no proxy model is ahead of the ground truth at any saved time"
            ),
        },
    ]


# ----------------------------------------------------------------------------- sequences


def top_sequences(policy: Autoregressive, probs, columns: dict, k: int = 5) -> list[dict]:
    """The ``k`` likeliest sequences under ``probs`` [V^L], decoded, with a value per column.

    Args:
        policy: the :class:`Autoregressive` parameterisation (decodes indices to tokens).
        probs: [V^L] probabilities of one prompt.
        columns: name -> [V^L] table (e.g. other policies' probabilities, r_G, r_RM).
    """
    p = np.asarray(probs)
    order = np.argsort(-p, kind="stable")[: check_int("k", k)]
    return [
        {
            "sequence": " ".join(str(int(t)) for t in policy.decode(int(i))),
            "probability": float(p[i]),
            **{name: float(np.asarray(v)[i]) for name, v in columns.items()},
        }
        for i in order
    ]


@dataclasses.dataclass(frozen=True)
class SequenceTeachers:
    """Two teachers for one autoregressive student (:func:`sequence_teachers`).

    Attributes:
        policy: the :class:`Autoregressive` parameterisation.
        accuracy, variance: {model: uniform-pair accuracy, Var_pi0 r_RM}.
        flows: {model: :class:`~theory_sim.Trajectory`} over sequences.
        tables: {model: :func:`top_sequences` of pi_T, with pi_0, r_G and r_RM columns}.
    """

    policy: Autoregressive
    accuracy: dict
    variance: dict
    flows: dict
    tables: dict
    horizon: float


def sequence_teachers(
    vocab_size: int = 3, length: int = 3, *, horizon: float = 30.0, seed: int = 0, k: int = 5
) -> SequenceTeachers:
    """Accuracy against variance for an autoregressive policy over V^L sequences.

    pi_0 has N(0, 1.5^2) per-token logits; r_G ~ U[-1, 1] over sequences. Teachers: "accurate,
    flat" = 0.05 r_G (accuracy 1, Var0 scaled by 1/400) and "noisy" = r_G + N(0, 0.5^2) noise
    clipped to [-1, 1] (less accurate, more variance). lambda = 0; exact flows to ``horizon``.
    """
    policy = Autoregressive(vocab_size, length)
    horizon = check_float_scalar("horizon", horizon, positive=True)
    k_pi, k_gt, k_noise = jax.random.split(jax.random.key(seed), 3)
    logits = 1.5 * np.asarray(
        jax.random.normal(k_pi, (policy.num_prefixes, vocab_size), np.float64)
    )
    probs0 = np.exp(np.asarray(policy.log_probs(logits)))
    shape = (policy.num_sequences,)
    r_gt = np.asarray(jax.random.uniform(k_gt, shape, np.float64, -1.0, 1.0))
    noise = np.asarray(jax.random.normal(k_noise, shape, np.float64))
    models = {"accurate, flat": 0.05 * r_gt, "noisy": np.clip(r_gt + 0.5 * noise, -1.0, 1.0)}
    acc, var, flows, tables = {}, {}, {}, {}
    for name, r_rm in models.items():
        acc[name] = float(accuracy(r_rm, r_gt))
        var[name] = float(reward_variance(probs0, r_rm))
        flows[name] = gradient_flow(Problem(logits, r_rm, r_gt, policy=policy), horizon)
        columns = {"pi_0": probs0, "r_G": r_gt, "r_RM": r_rm}
        tables[name] = top_sequences(policy, flows[name].probs[-1], columns, k)
    return SequenceTeachers(policy, acc, var, flows, tables, horizon)
