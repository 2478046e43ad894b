"""Notebook 04: the best teacher depends on the student (Theorem 6, Sec. 4.2, arXiv 2503.15477)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from theory_sim import _random, rewards
from theory_sim._validation import check_float_scalar, check_int, check_seed
from theory_sim.flow import gradient_flow
from theory_sim.instances import counterexample_instance
from theory_sim.metrics import accuracy, on_policy_accuracy, reward_variance
from theory_sim.problem import Problem
from theory_sim.stories._common import _kendall, _spearman
from theory_sim.theorems import (
    Check,
    check_theorem_6,
)


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
    T = check_float_scalar("T", T, positive=True)
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
    raise ValueError(
        f"`T` = {T:g} with seed {seed}: no c in (0.2, 0.1, 0.05, 0.02) gives both families a V0 "
        "(Theorem 6's construction needs a larger T)."
    )


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
    if horizon > 1e15:  # the flows' reach (tests/test_long_horizons.py)
        raise ValueError(f"`horizon` must be at most 1e15; got {horizon:g}.")
    key = jax.random.key(check_seed("seed", seed))
    k_gt, k_noise, k_pol = jax.random.split(key, 3)
    r_gt = _random.uniform(k_gt, (num_outputs,), -1.0, 1.0)
    noise = _random.normal(k_noise, (num_models, num_outputs))
    scales = np.linspace(0.1, 1.0, num_models)
    models = np.clip(r_gt + scales[:, None] * noise, -1.0, 1.0)
    names = [f"noise {s:.2f}" for s in scales]
    spreads = np.linspace(0.5, 4.0, num_policies)
    logits = spreads[:, None] * _random.normal(k_pol, (num_policies, num_outputs))
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
