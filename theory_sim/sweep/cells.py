"""A sweep's cells: each (policy, reward model, kl_coef, seed) built into a Problem from its seed.

Every cell draws r_G ~ U[-1, 1] from its seed, so every policy and reward model of a seed faces
the same ground truth; draws for many seeds are made in one call and prefetched.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._validation import check_index
from theory_sim.policies import start_at
from theory_sim.policies._common import _jit_log_probs
from theory_sim.problem import Problem
from theory_sim.sweep.config import NEURAL, FamilySpec, SweepConfig


def _initial_probs(spec: FamilySpec, r_gt: np.ndarray, normal: np.ndarray, softmax=None):
    """pi_0 [X, Y] of a policy family (see the module docstring); ``normal`` holds standard
    normal draws shaped like ``r_gt``; ``softmax``, when given, is their softmax at the family's
    logit_std, computed beforehand (see :func:`_prefetch`)."""
    if spec.family == "uniform":
        return np.full(r_gt.shape, 1.0 / r_gt.shape[-1])
    if spec.family == "init":
        return None  # the network's own initialisation (see _tables)
    probs = np.array(_softmax(spec.get("logit_std") * normal) if softmax is None else softmax)
    if spec.family == "rare_best":
        # the best output under r_G gets exactly `mass`; the rest keep their proportions
        best = np.argmax(r_gt, axis=-1)
        rows = np.arange(r_gt.shape[0])
        rest = 1.0 - probs[rows, best]
        probs = probs * ((1.0 - spec.get("mass")) / rest)[:, None]
        probs[rows, best] = spec.get("mass")
    return probs


def _reward_model(spec: FamilySpec, probs: np.ndarray, r_gt: np.ndarray, key, normal) -> np.ndarray:
    """r_RM [X, Y] of a reward-model family under pi_0 = ``probs``; ``key`` seeds the
    Bradley-Terry preferences, ``normal`` (standard normal draws from ``key``, shaped like
    ``r_gt``) is the noisy family's noise."""
    from theory_sim import bradley_terry, rewards

    if spec.family == "ground_truth":
        r_rm = r_gt.copy()
    elif spec.family == "scaled":
        r_rm = spec.get("factor") * r_gt
    elif spec.family == "noisy":
        r_rm = r_gt + spec.get("noise") * normal
    elif spec.family == "accuracy_variance":
        rows = []
        for p, g in zip(probs, r_gt, strict=True):
            ranking = rewards.ranking_with_accuracy(
                g, rewards.nearest_attainable_accuracy(g, spec.get("accuracy"))
            )
            # the cap is the ranking's own: its ties, not r_G's, bound what a monotone map reaches
            cap = 0.999 * rewards.max_monotone_variance(p, ranking)
            rows.append(rewards.with_variance(p, ranking, min(spec.get("variance"), cap)))
        r_rm = np.stack(rows)
    else:  # bradley_terry
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):  # key data (_prefetch)
            key = jax.random.wrap_key_data(key)
        pairs = bradley_terry.sample_preferences(
            probs, r_gt, int(spec.get("pairs")), spec.get("on_policy"), key=key
        )
        r_rm = bradley_terry.fit_bradley_terry(pairs, *r_gt.shape)
    if spec.normalize:
        r_rm = bradley_terry.normalize_rewards(r_rm, probs)
    return r_rm


@functools.partial(jax.jit, static_argnames=("shape",))
def _cell_draws(seed, p_index, r_index, shape):
    """r_G ~ U[-1, 1] from the seed, the reward model's key and the standard normal draws of the
    policy's and the reward model's keys, which their families use: one compiled call per
    shape (the same bits as the eager fold_in / uniform / normal calls it replaces, a tenth of
    their dispatch cost, which dominated building a cell)."""
    root = jax.random.key(seed)
    r_gt = jax.random.uniform(jax.random.fold_in(root, 0), shape, jnp.float64, -1, 1)
    k_pol = jax.random.fold_in(jax.random.fold_in(root, 1), p_index)
    k_rm = jax.random.fold_in(jax.random.fold_in(k_pol, 2), r_index)
    normals = (jax.random.normal(k_pol, shape, jnp.float64), jax.random.normal(k_rm, shape))
    return r_gt, k_rm, normals


@functools.partial(jax.jit, static_argnames=("shape",))
def _many_cell_draws(seeds, p_index, r_index, shape):
    """:func:`_cell_draws` for many seeds in one call, with the same bits."""
    return jax.vmap(lambda seed: _cell_draws(seed, p_index, r_index, shape))(seeds)


# jitted on its own, the softmax has the eager call's bits (fused with the draws it has not);
# on a stack of tables it gives each table the same bits as on its own
_softmax = jax.jit(functools.partial(jax.nn.softmax, axis=-1))


# (config, p_index, r_index, seed) -> a cell's draws, put here by _prefetch for _tables
_prefetched: dict = {}


_DRAW_BLOCK = 32  # seeds a call of _many_cell_draws


def _prefetch(config: SweepConfig, cells: list[int]) -> list:
    """Draw the random numbers of the given cells' tables, one compiled call (and one for the
    softmax of a random pi_0) for each :data:`_DRAW_BLOCK` seeds of a policy and reward model,
    with the same bits as :func:`_cell_draws`, which takes three calls a cell (0.12 ms);
    :func:`_tables` takes them from here. Returns the keys put here, for the caller to drop once
    the tables are built."""
    wanted: dict = {}
    for cell in cells:
        p_index, r_index, _, seed = config.cell(cell)
        wanted.setdefault((p_index, r_index), set()).add(seed)
    shape, keys = (config.prompts, config.outputs), []
    for (p_index, r_index), seeds in wanted.items():
        seeds, spec, parts = sorted(seeds), config.policies[p_index], []
        random = spec.family in ("random", "rare_best")  # pi_0 = softmax(logit_std z_pol)
        for begin in range(0, len(seeds), _DRAW_BLOCK):  # the last block padded: one program
            block = np.resize(seeds[begin : begin + _DRAW_BLOCK], _DRAW_BLOCK)
            r_gt, k_rm, (z_pol, z_rm) = _many_cell_draws(block, p_index, r_index, shape)
            part = [r_gt, jax.random.key_data(k_rm), z_pol, z_rm]
            if random:
                part.append(_softmax(spec.get("logit_std") * np.asarray(z_pol)))
            parts.append(part)
        columns = [np.concatenate([np.asarray(x) for x in col]) for col in zip(*parts, strict=True)]
        for i, seed in enumerate(seeds):
            key = (config, p_index, r_index, seed)
            row = [column[i] for column in columns]
            _prefetched[key] = tuple(row) if random else (*row, None)  # (..., softmax)
            keys.append(key)
    return keys


@functools.lru_cache(maxsize=1024)
def _tables(config, p_index, r_index, seed):
    """The problem of a cell at kl_coef = 0 (validated once for all its kl_coef values), r_G and
    pi_0 as arrays: shared by the cell's kl_coef values, so cached."""
    pol, rm = config.policies[p_index], config.reward_models[r_index]
    param = config.parameterisation(seed, p_index)
    shape = (config.prompts, config.outputs)
    drawn = _prefetched.pop((config, p_index, r_index, seed), None)
    if drawn is None:
        r_gt, k_rm, (z_pol, z_rm) = _cell_draws(seed, p_index, r_index, shape)
        r_gt, softmax = np.asarray(r_gt), None
    else:
        r_gt, k_rm, z_pol, z_rm, softmax = drawn
        r_gt = r_gt.copy()  # its own array: cached and marked read-only below
    probs = _initial_probs(pol, r_gt, np.asarray(z_pol), softmax)
    if probs is None:
        params = param.params
    elif config.policy in NEURAL:
        params, _ = start_at(param, probs)
    else:  # exact: the residual start_at would report is round-off
        params = param.init_params(probs)
    if config.policy in NEURAL:  # pi_0 is the network's (fitted or initial) policy
        probs = np.exp(np.asarray(_jit_log_probs(param, jnp.asarray(params)))).reshape(shape)
    r_rm = _reward_model(rm, probs, r_gt, k_rm, np.asarray(z_rm))
    # host leaves: run_cells stacks the cells' tables and moves each batch in one transfer
    problem = Problem._on_host(params, r_rm, r_gt, policy=param)
    for table in (r_gt, probs):
        table.setflags(write=False)  # cached: shared between cells
    return problem, r_gt, probs


def _cell(config: SweepConfig, cell: int) -> tuple[Problem, float, dict]:
    """(the cell's problem at kl_coef = 0, its kl_coef, its row): see :func:`build_cell`."""
    p_index, r_index, kl_coef, seed = config.cell(cell)
    problem, r_gt, probs = _tables(config, p_index, r_index, seed)
    headroom = float(r_gt[0].max() - probs[0] @ r_gt[0])
    return problem, kl_coef, _labels(config, cell) | {"gamma": config.gamma * headroom}


def _labels(config: SweepConfig, cell: int) -> dict:
    """The columns that name a cell: its index, policy, reward model, kl_coef and seed."""
    p_index, r_index, kl_coef, seed = config.cell(cell)
    return {
        "cell": cell,
        "policy": config.policies[p_index].name,
        "reward_model": config.reward_models[r_index].name,
        "kl_coef": kl_coef,
        "seed": seed,
    }


def check_config(config) -> SweepConfig:
    """``config`` if it is a :class:`SweepConfig`, else a TypeError naming it."""
    if not isinstance(config, SweepConfig):
        raise TypeError(
            f"`config` must be a SweepConfig (parse_config or load_config); got {config!r}."
        )
    return config


def check_cells(config: SweepConfig, cells) -> list[int]:
    """``cells`` as a list of cell indices of ``config``, else a ValueError naming it."""
    if isinstance(cells, str) or not np.iterable(cells):
        raise ValueError(f"`cells` must be a list of cell indices; got {cells!r}.")
    return [check_index("cells", c, config.num_cells, "cells") for c in cells]


def build_cell(config: SweepConfig, cell: int) -> tuple[Problem, dict]:
    """The :class:`~theory_sim.Problem` of one cell and its measures at pi_0.

    Returns:
        (problem, row) with row holding the cell's labels and gamma (absolute, for prompt 0);
        :func:`run_cells` adds the measures.
    """
    check_config(config)
    problem, kl_coef, row = _cell(config, cell)
    return jax.device_put(problem).with_kl_coef(kl_coef), row
