"""Solving a sweep's cells in groups: vmapped over like cells, sharded over devices.

t_gamma is solved in groups of like estimated t_gamma (a coarse log-time flow orders the cells,
hardest first), so one slow cell does not hold a whole group; the paths at the horizons are
solved in groups of their own.
"""

from __future__ import annotations

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from theory_sim._parallel import num_workers, threaded_map
from theory_sim.cache import traced_once
from theory_sim.flow import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    EXPLICIT_BUDGET,
)
from theory_sim.flow.crossing import _adaptive_gain
from theory_sim.flow.solve import _adaptive_path
from theory_sim.flow.trajectory import _path_metrics
from theory_sim.metrics import _pair_accuracy, _reward_variance
from theory_sim.problem import Problem
from theory_sim.sweep.config import SweepConfig


@traced_once(static_argnames=("max_steps",))
def _run_gains(batch, gammas, t_max, rtol, atol, max_steps):
    """For a stacked batch of problems: t_gamma of prompt 0 and whether its solve ended (not
    stopped early). Kept traced across processes (see :func:`theory_sim.cache.traced_once`):
    tracing it costs seconds, a neural policy's over ten."""

    def one(problem, gamma):
        time, _, _, ok = _adaptive_gain(
            problem, problem.reward_gt, 0, gamma, t_max, rtol, atol, max_steps
        )
        return time, ok

    return jax.vmap(one)(batch, gammas)


@traced_once(static_argnames=("max_steps",))
def _run_paths(batch, save_ts, rtol, atol, max_steps):
    """For a stacked batch of problems: the measures at pi_0 (means over prompts), the mean
    gains of r_RM and r_G at ``save_ts[1:]`` and whether the solve ended (kept traced, as
    :func:`_run_gains`)."""

    def at_start(problem):
        probs = jnp.exp(problem.ref_log_probs)
        uniform = jnp.ones(probs.shape[-1:] * 2, probs.dtype)
        pair = jax.vmap(_pair_accuracy)
        return {
            "var_rm": jnp.mean(_reward_variance(probs, problem.reward_rm)),
            "var_gt": jnp.mean(_reward_variance(probs, problem.reward_gt)),
            "accuracy": jnp.mean(
                jax.vmap(lambda a, b: _pair_accuracy(a, b, uniform))(
                    problem.reward_rm, problem.reward_gt
                )
            ),
            "accuracy_on_policy": jnp.mean(
                pair(problem.reward_rm, problem.reward_gt, probs[:, :, None] * probs[:, None, :])
            ),
        }

    def one(problem):
        params, _, ok = _adaptive_path(problem, save_ts, save_ts[-1], rtol, atol, max_steps)
        _, e_rm, e_gt, *_ = _path_metrics(problem, params)
        gain_rm = jnp.mean(e_rm - e_rm[0], axis=-1)
        gain_gt = jnp.mean(e_gt - e_gt[0], axis=-1)
        return at_start(problem), gain_rm[1:], gain_gt[1:], ok

    return jax.vmap(one)(batch)


# A vmapped adaptive solve takes as many steps as the slowest of its cells needs, so run_cells
# solves each cell's t_gamma and its path to the last horizon in separate vmapped groups: the
# t_gamma solves in groups of GROUP_SIZE cells of like estimated t_gamma (a cell's steps there
# vary from 10 to 400: they grow with log t_gamma; see _estimated_times), the paths, whose steps
# vary less (13 to 170 on the benchmark), in larger groups of PATH_GROUP_SIZE, since a step of a
# group costs about 20 us plus 3 us a cell (Y = 12). Each group is padded to its size so that one
# compiled program serves all, and the groups run on one thread per core, the hardest first so
# that the threads finish together. Measured on the 128 cells of bench/run.py sweep (Y = 12,
# 2 cores, AVX-512; the solves only, medians): one program for both solves in grid-order groups
# of 8, 0.085 s; in estimated order, groups of 8 and 12, 0.067 and 0.059 s; separate programs
# with groups of 12 and 32, 0.050 s (of 8 and 32, 0.061 s; of 12 and 64, 0.054 s).
GROUP_SIZE = 12


PATH_GROUP_SIZE = 32


# _estimated_times' largest step in s = log(1 + t), largest move of a logit in a step, and
# most steps.
_ESTIMATE_STEP = 1.0


_ESTIMATE_MOVE = 1.0


_ESTIMATE_MAX_STEPS = 256


def _estimated_times(built: list, t_max: float) -> np.ndarray:
    """A coarse estimate of each built cell's t_gamma, to group cells of like cost: inf when the
    estimate does not reach the target by t_max. Never a result, only an order.

    It integrates the tabular flow of prompt 0 from pi_0's table (whatever the policy),
    dtheta/dt = (1/X) pi (a - E_pi a) with a = r_RM - lambda (log pi - log pi_0), in log-time
    s = log(1 + t), where the right-hand side v = (1 + t) dtheta/dt stays O(1) once pi
    concentrates (1 - pi_best ~ 1 / t for lambda = 0). Each cell takes linearly implicit midpoint
    steps, theta += h v / (1 + h d) with d = (1 + t) lambda pi / X the diagonal of v's decay
    (stable where lambda pulls pi to pi* faster than a step), of h = :data:`_ESTIMATE_STEP` or
    less, so that no logit moves by more than :data:`_ESTIMATE_MOVE` (a late transition, such as
    a rare best output taking over at t ~ 1e6, happens within a small range of s). All cells
    advance together, in numpy (about 2 ms for 128 cells of 12 outputs); a cell still short of
    its target after :data:`_ESTIMATE_MAX_STEPS` steps is estimated at inf.
    """
    first = [problem for problem, _, _ in built]
    log_p0 = np.stack([np.asarray(p.ref_log_probs)[0] for p in first])
    r_rm = np.stack([np.asarray(p.reward_rm)[0] for p in first])
    r_gt = np.stack([np.asarray(p.reward_gt)[0] for p in first])
    lam = np.array([kl for _, kl, _ in built], np.float64)[:, None]
    per_prompt = 1.0 / np.array([p.num_prompts for p in first], np.float64)[:, None]  # 1 / X
    target = np.sum(np.exp(log_p0) * r_gt, axis=1) + [row["gamma"] for _, _, row in built]
    times = np.full(len(built), np.inf)
    cells = np.arange(len(built))  # the cells still on their way, whose rows the arrays hold
    theta, s, s_max = log_p0.copy(), np.zeros(len(built)), math.log1p(t_max)

    def rates(theta, s):  # v and d at (theta, s)
        scale = np.exp(s)[:, None] * per_prompt  # (1 + t) / X
        z = theta - theta.max(axis=1, keepdims=True)
        log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        p = np.exp(log_p)
        a = r_rm - lam * (log_p - log_p0)
        return scale * p * (a - np.sum(p * a, axis=1, keepdims=True)), scale * lam * p

    for _ in range(_ESTIMATE_MAX_STEPS):
        v, d = rates(theta, s)
        move = np.max(np.abs(v) / (1.0 + _ESTIMATE_STEP * d), axis=1)
        h = np.minimum(_ESTIMATE_STEP, _ESTIMATE_MOVE / np.maximum(move, 1e-300))
        h = np.minimum(h, s_max - s)[:, None]
        half = theta + 0.5 * h * v / (1.0 + 0.5 * h * d)
        v, d = rates(half, s + 0.5 * h[:, 0])
        theta = theta + h * v / (1.0 + h * d)
        s = s + h[:, 0]
        z = theta - theta.max(axis=1, keepdims=True)
        p = np.exp(z)
        reached = np.sum(p * r_gt, axis=1) >= target * np.sum(p, axis=1)
        times[cells[reached]] = np.expm1(s[reached])
        going = ~reached & (s < s_max)
        if not going.all():
            if not going.any():
                break
            cells, theta, s, log_p0, r_rm, r_gt, lam, per_prompt, target = (
                x[going] for x in (cells, theta, s, log_p0, r_rm, r_gt, lam, per_prompt, target)
            )
    return times


def _hardest_first(built: list, t_max: float) -> np.ndarray:
    """The cells' indices ordered by :func:`_estimated_times`, the latest first (ties and inf
    in their given order)."""
    times = np.nan_to_num(_estimated_times(built, t_max), posinf=np.finfo(np.float64).max)
    return np.argsort(-times, kind="stable")


def _group_size(target: int, num_cells: int, devices: list) -> int:
    """``target`` cells a group (at most num_cells), at least one per device and a multiple of
    the number of devices, so that every device holds the same number of cells."""
    size = max(min(target, num_cells), len(devices))
    return size + (-size) % len(devices)


def _solve_grouped(config: SweepConfig, built: list, devices: list):
    """:func:`_run_gains` and :func:`_run_paths` over ``built`` in groups (see
    :data:`GROUP_SIZE`), solved on one thread per core. Returns (start, times, gain_rm,
    gain_gt, ok) in the order of ``built``."""
    save_ts = jnp.asarray((0.0, *config.horizons))
    default = jax.devices()[0] if jax.config.jax_default_device is None else None
    on_default = len(devices) == 1 and devices[0] == default

    def groups(order, target):
        size = _group_size(target, len(built), devices)
        return [(list(order[i : i + size]), size) for i in range(0, len(built), size)]

    gain_groups = groups(_hardest_first(built, config.t_max), GROUP_SIZE)
    kl_coefs = np.array([kl for _, kl, _ in built])
    path_groups = groups(np.argsort(kl_coefs, kind="stable"), PATH_GROUP_SIZE)
    workers = num_workers()
    jobs = [("gain", *g) for g in gain_groups[:workers]] + [("path", *g) for g in path_groups]
    jobs += [("gain", *g) for g in gain_groups[workers:]]

    def solve(job):
        kind, group, size = job
        group = group + [group[-1]] * (size - len(group))  # padding, dropped below
        batch = _stack([built[i][0] for i in group], [built[i][1] for i in group])
        gammas = np.array([built[i][2]["gamma"] for i in group])
        if not on_default:  # on the default device alone the call places the batch: 0.4 ms less
            batch, gammas = _shard((batch, gammas), devices)
        rtol, atol, budget = DEFAULT_RTOL, DEFAULT_ATOL, EXPLICIT_BUDGET
        if kind == "gain":
            out = _run_gains(batch, gammas, config.t_max, rtol, atol, budget)
        else:
            out = _run_paths(batch, save_ts, rtol, atol, budget)
        return jax.device_get(out)

    # groups are independent: one thread per core (see theory_sim._parallel)
    with contextlib.closing(threaded_map(solve, jobs)) as solved:
        pieces = list(solved)

    def gather(kind):  # the results of one program's groups, in the order of built
        mine = [(job[1], piece) for job, piece in zip(jobs, pieces, strict=True) if job[0] == kind]
        cells = np.concatenate([group for group, _ in mine])

        def join(*leaves):
            solved = [leaf[: len(group)] for leaf, (group, _) in zip(leaves, mine, strict=True)]
            return np.concatenate(solved)[np.argsort(cells)]

        return jax.tree.map(join, *[piece for _, piece in mine])

    times, ok_gain = gather("gain")
    start, gain_rm, gain_gt, ok_path = gather("path")
    return start, times, gain_rm, gain_gt, ok_gain & ok_path


def _stack(problems: list[Problem], kl_coefs: list[float]) -> Problem:
    """The problems as one batch (host arrays, placed by :func:`_shard` in one transfer a leaf),
    with the given kl_coef values."""
    batch = jax.tree.map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *problems)
    batch.kl_coef = np.asarray(kl_coefs, np.float64)
    return batch


def _shard(batch, devices):
    """Place the batch's leading axis across ``devices`` (one mesh axis, "cells")."""
    mesh = Mesh(np.asarray(devices), ("cells",))
    return jax.device_put(batch, NamedSharding(mesh, PartitionSpec("cells")))
