"""Sweeps: a grid over initial policies, reward models, kl_coef and seeds, run as vmapped,
sharded computations over groups of cells on every core and saved by chunk so that an
interrupted sweep resumes.

A sweep is described by a TOML file (see ``examples/sweep.toml``)::

    [problem]
    policy = "tabular"        # or "autoregressive", with vocab = V and length = L; or a neural
                              # policy (below)
    prompts = 1               # X
    outputs = 16              # Y (tabular)
    gamma = 0.25              # t_gamma's gain, as a fraction of max r_G - E_pi0 r_G on prompt 0
    horizons = [1.0, 10.0, 100.0]
    t_max = 1e6

    [grid]
    seeds = [0, 1, 2]
    kl_coef = [0.0, 0.05]

    [[policy]]                # uniform | random (logit_std) | rare_best (mass, logit_std)
    family = "random"
    logit_std = 2.0

    [[reward_model]]          # ground_truth | scaled (factor) | noisy (noise)
    family = "scaled"         # | accuracy_variance (accuracy, variance)
    factor = 0.01             # | bradley_terry (on_policy, pairs); any: normalize = true

Neural policies (:mod:`theory_sim.policies.neural`): ``policy = "transformer"`` with ``vocab``,
``length``, ``width`` (16), ``depth`` (1), ``heads`` (2) and ``init_scale`` (1.0); or
``policy = "mlp"`` with ``outputs``, ``features`` (d, 4: each cell's features [X, Y, d] are
standard normal draws from its seed), ``width`` (16), ``depth`` (2) and ``init_scale``. A cell's
network is initialised from its seed (and policy index). The policy family ``init`` (neural
policies only) takes pi_0 as that initialisation; any other family is fitted to its pi_0 table by
:func:`~theory_sim.start_at` (L-BFGS, to 1e-6 in log-probability where the network can), and the
measures at pi_0 are those of the fitted network.

accuracy_variance asks for an attainable uniform accuracy nearest ``accuracy`` and a variance under
pi_0 of ``variance``, capped at 0.999 of the largest a monotone map of that ranking reaches (the
measured ``var_rm`` column reports what each cell got). A cell whose reward model still cannot be
built for its seed is recorded with ``status`` "infeasible: REASON" and NaN measures.

Each cell (policy, reward model, kl_coef, seed) draws r_G ~ U[-1, 1] from its seed alone, so every
policy and reward model of a seed faces the same ground truth. It records, at pi_0, the mean over
prompts of Var r_RM, Var r_G, uniform and on-policy accuracy; t_gamma of prompt 0 (inf when not
reached by t_max); and at each horizon T the mean gains E_{pi_T} r - E_{pi_0} r of r_RM and r_G.

Results: ``OUT/results.csv`` (tidy: one row per cell and horizon) and ``OUT/metadata.json``
(config, versions, devices). Finished chunks are saved atomically in ``OUT/parts/``; a rerun of the
same config into the same directory computes only the missing cells.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from theory_sim import _json
from theory_sim._parallel import num_workers, threaded_map
from theory_sim._validation import check_fits, check_index, check_int
from theory_sim.cache import traced_once
from theory_sim.flow import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    EXPLICIT_BUDGET,
    _adaptive_gain,
    _adaptive_path,
    _path_metrics,
    gradient_flow,
    time_to_gain,
)
from theory_sim.metrics import _pair_accuracy, _reward_variance
from theory_sim.policies import MLP, Autoregressive, Tabular, Transformer, start_at
from theory_sim.policies._common import _jit_log_probs
from theory_sim.problem import Problem
from theory_sim.report import write_csv

__all__ = [
    "COLUMNS",
    "FamilySpec",
    "SweepConfig",
    "build_cell",
    "load_config",
    "load_results",
    "parse_config",
    "run_cells",
    "run_sweep",
]

POLICY_FAMILIES = {
    "uniform": {},
    "random": {"logit_std": 1.0},
    "rare_best": {"mass": 1e-3, "logit_std": 1.0},
    "init": {},
}
NEURAL = {  # [problem] keys of the neural policies and their defaults
    "transformer": {"width": 16, "depth": 1, "heads": 2, "init_scale": 1.0},
    "mlp": {"features": 4, "width": 16, "depth": 2, "init_scale": 1.0},
}
POLICIES = ("tabular", "autoregressive", *NEURAL)
REWARD_FAMILIES = {
    "ground_truth": {},
    "scaled": {"factor": 0.01},
    "noisy": {"noise": 0.5},
    "accuracy_variance": {"accuracy": 0.8, "variance": 0.05},
    "bradley_terry": {"on_policy": 1.0, "pairs": 200},
}
FAMILIES = {"policy": POLICY_FAMILIES, "reward_model": REWARD_FAMILIES}
# bench/run.py sweep: 128 cells of one prompt x 12 outputs in 0.28 s with building on 2 cores
# (2.2 ms a cell, about 9e-5 s per cell x prompt x output x solve, two solves a cell; twice that
# on one core); 2e-4 keeps the estimate on the slow side. The command line asks for --yes above
# CONFIRM_SECONDS.
SECONDS_PER_UNIT = 2e-4
# Neural cells, warm caches: a transformer (V = 2, L = 3, width 8, 930 parameters) 2.4 s a cell
# (1.6e-4 s per unit and parameter), an MLP (Y = 6, width 8, 113 parameters) 0.8 s, mostly
# fitting pi_0 (examples of tests/test_sweep.py's neural configs, 16 cells each).
NEURAL_CELL_SECONDS = 1.0
CONFIRM_SECONDS = 3600.0
COLUMNS = (
    "cell",
    "policy",
    "reward_model",
    "kl_coef",
    "seed",
    "var_rm",
    "var_gt",
    "accuracy",
    "accuracy_on_policy",
    "gamma",
    "t_gamma",
    "horizon",
    "gain_rm",
    "gain_gt",
    "solver_ok",
    "status",
)
# status: "ok"; "solver failed" (the solve stopped early: t_gamma and gains are NaN; "solver
# failed: REASON" when solving the cell again on its own was refused, e.g. a gain below float64's
# resolution); or
# "infeasible: REASON" (the cell's reward model cannot be built for its seed, e.g. a variance
# above what a monotone map of that seed's r_G reaches: every measure is NaN).
OK, FAILED, INFEASIBLE = "ok", "solver failed", "infeasible"


# ----------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """One ``[[policy]]`` or ``[[reward_model]]`` table: a family and its parameters.

    ``FAMILIES[table][family]`` lists each family's parameters and their defaults; ``normalize``
    (reward models only) rescales r_RM to mean 0 and variance 1 under pi_0.
    """

    table: str
    name: str
    family: str
    params: tuple[tuple[str, float], ...] = ()
    normalize: bool = False

    def get(self, key: str) -> float:
        return dict(self.params).get(key, FAMILIES[self.table][self.family].get(key))


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep: the problem shape, the grid and the families (see the module docstring)."""

    policy: str
    prompts: int
    outputs: int
    vocab: int
    length: int
    gamma: float
    horizons: tuple[float, ...]
    t_max: float
    seeds: tuple[int, ...]
    kl_coefs: tuple[float, ...]
    policies: tuple[FamilySpec, ...]
    reward_models: tuple[FamilySpec, ...]
    chunk_size: int = 16
    network: tuple[tuple[str, float], ...] = ()  # a neural policy's [problem] keys

    @property
    def grid_shape(self) -> tuple[int, int, int, int]:
        """(policies, reward models, kl_coefs, seeds): cell indices run over it in C order."""
        return (len(self.policies), len(self.reward_models), len(self.kl_coefs), len(self.seeds))

    @property
    def num_cells(self) -> int:
        return math.prod(self.grid_shape)

    def estimated_seconds(self) -> float:
        """A rough, deliberately slow-side estimate of the sweep's solving time on one device:
        :data:`SECONDS_PER_UNIT` per cell x prompt x output x solve (t_gamma and the path); for a
        neural policy, per parameter as well (one gradient costs about one pass per parameter),
        plus :data:`NEURAL_CELL_SECONDS` a cell for building and fitting its network."""
        units = self.num_cells * self.prompts * self.outputs * 2
        if self.policy not in NEURAL:
            return SECONDS_PER_UNIT * units
        size = self.parameterisation().params.size
        return SECONDS_PER_UNIT * units * (1 + size) + NEURAL_CELL_SECONDS * self.num_cells

    def cell(self, index: int) -> tuple[int, int, float, int]:
        """(policy index, reward-model index, kl_coef, seed) of cell ``index``."""
        index = check_index("cell", index, self.num_cells, "cells")
        p, r, k, s = (int(i) for i in np.unravel_index(index, self.grid_shape))
        return p, r, self.kl_coefs[k], self.seeds[s]

    def parameterisation(self, seed: int = 0, p_index: int = 0):
        """The cell's policy: a neural one is initialised from (seed, policy index)."""
        if self.policy == "tabular":
            return Tabular()
        if self.policy == "autoregressive":
            return Autoregressive(self.vocab, self.length)
        net = dict(self.network)
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 3), p_index)
        sizes = {k: int(net[k]) for k in ("width", "depth")}
        if self.policy == "transformer":
            return Transformer(
                self.vocab,
                self.length,
                num_prompts=self.prompts,
                heads=int(net["heads"]),
                key=key,
                init_scale=net["init_scale"],
                **sizes,
            )
        shape = (self.prompts, self.outputs, int(net["features"]))
        features = jax.random.normal(jax.random.fold_in(key, 1), shape, jnp.float64)
        return MLP(np.asarray(features), key=key, init_scale=net["init_scale"], **sizes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        fields = self.as_dict()
        if not fields["network"]:  # configs without a network keep their digest (and outputs)
            del fields["network"]
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Source:
    """The TOML text, to name the line of a key in error messages."""

    def __init__(self, text: str, path: str):
        self.lines = text.splitlines()
        self.path = path

    def line(self, table: str, key: str | None = None, index: int = 0) -> int | None:
        """1-based line of ``key`` in the ``index``-th [table] or [[table]], else its header."""
        current, seen, header_line = None, -1, None
        for number, raw in enumerate(self.lines, 1):
            text = raw.split("#", 1)[0].strip()
            header = re.fullmatch(r"\[\[?\s*([\w.-]+)\s*\]\]?", text)
            if header:
                current = header.group(1)
                if current == table:
                    seen += 1
                    if seen == index:
                        header_line = number
                continue
            if key is None or current != table or seen != index:
                continue
            if re.match(rf"{re.escape(key)}\s*=", text):
                return number
        if table == "" and key is not None:  # top-level keys come before any header
            for number, raw in enumerate(self.lines, 1):
                name = re.escape(key)
                if re.match(rf"\s*({name}\s*=|\[\[?\s*{name}\s*\]\]?)", raw):
                    return number
        return header_line

    def error(self, message: str, table: str, key: str | None = None, index: int = 0):
        number = self.line(table, key, index)
        where = f"{self.path}, line {number}" if number else self.path
        return ValueError(f"{where}: {message}")


def _number(src, table, index, key, value, *, integer=False, low=None, high=None, open_low=False):
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise src.error(f"`{key}` must be {what}; got {value!r}.", table, key, index)
    if integer and not isinstance(value, int):
        raise src.error(f"`{key}` must be an integer; got {value!r}.", table, key, index)
    value = int(value) if integer else float(value)
    if not math.isfinite(value):
        raise src.error(f"`{key}` must be finite; got {value!r}.", table, key, index)
    too_low = low is not None and (value <= low if open_low else value < low)
    if too_low or (high is not None and value > high):
        lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f"<= {high}"
        rule = " and ".join(s for s in (lo, hi) if s)
        raise src.error(f"`{key}` must be {rule}; got {value!r}.", table, key, index)
    return value


def _keys(src, table, index, data: dict, allowed) -> None:
    for key in data:
        if key not in allowed:
            raise src.error(
                f"unknown key `{key}` {f'in [{table}]' if table else 'at the top level'}; "
                f"expected one of {sorted(allowed)}.",
                table,
                key,
                index,
            )


_LIMITS = {  # (integer, low, high, open_low) for every family parameter
    "logit_std": (False, 0.0, None, False),
    "mass": (False, 0.0, 1.0, True),
    "factor": (False, 0.0, None, True),
    "noise": (False, 0.0, None, False),
    "accuracy": (False, 0.0, 1.0, False),
    "variance": (False, 0.0, None, True),
    "on_policy": (False, 0.0, 1.0, False),
    "pairs": (True, 1, None, False),
}


def _family(src, table: str, index: int, data: dict):
    families = FAMILIES[table]
    if "family" not in data:
        raise src.error(f"[[{table}]] number {index + 1} needs a `family`.", table, None, index)
    family = data["family"]
    if family not in families:
        raise src.error(
            f"`family` must be one of {sorted(families)}; got {family!r}.", table, "family", index
        )
    allowed = {"family", "name", *families[family]} | (
        {"normalize"} if table == "reward_model" else set()
    )
    _keys(src, table, index, data, allowed)
    params = []
    for key in families[family]:
        if key in data:
            integer, low, high, open_low = _LIMITS[key]
            value = _number(
                src,
                table,
                index,
                key,
                data[key],
                integer=integer,
                low=low,
                high=high,
                open_low=open_low,
            )
            params.append((key, value))
    default = family + "".join(f" {k}={v:g}" for k, v in params)
    name = data.get("name", default)
    if not isinstance(name, str) or not name:
        raise src.error(f"`name` must be a non-empty string; got {name!r}.", table, "name", index)
    return name, family, tuple(params)


def _number_list(src, table, key, value, **limits) -> tuple:
    if not isinstance(value, list) or not value:
        raise src.error(f"`{key}` must be a non-empty list; got {value!r}.", table, key)
    return tuple(_number(src, table, 0, key, v, **limits) for v in value)


def parse_config(text: str, path: str = "<config>") -> SweepConfig:
    """Parse and validate a sweep's TOML text; errors are ValueErrors naming the key and line."""
    src = _Source(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    _keys(src, "", 0, data, {"problem", "grid", "policy", "reward_model", "chunk_size"})
    for table in ("problem", "grid"):
        if not isinstance(data.get(table), dict):
            raise src.error(f"a [{table}] table is required.", table)
    for table in ("policy", "reward_model"):
        if not isinstance(data.get(table), list) or not data[table]:
            raise src.error(f"at least one [[{table}]] table is required.", table)
    prob = data["problem"]
    kind = prob.get("policy", "tabular")
    if kind not in POLICIES:
        raise src.error(
            f"`policy` must be one of {list(POLICIES)}; got {kind!r}.", "problem", "policy"
        )
    allowed = {"policy", "prompts", "outputs", "vocab", "length", "gamma", "horizons", "t_max"}
    _keys(src, "problem", 0, prob, allowed | set(NEURAL.get(kind, {})))
    network = _network(src, kind, prob)
    need = ("outputs",) if kind in ("tabular", "mlp") else ("vocab", "length")
    for key in need:
        if key not in prob:
            raise src.error(f"[problem] needs `{key}` for a {kind} policy.", "problem")
    shape = {
        key: _number(src, "problem", 0, key, prob[key], integer=True, low=low)
        for key, low in (("prompts", 1), ("outputs", 2), ("vocab", 2), ("length", 1))
        if key in prob
    }
    vocab, length = shape.get("vocab", 0), shape.get("length", 0)
    outputs = shape["outputs"] if kind in ("tabular", "mlp") else vocab**length
    horizons = _number_list(
        src, "problem", "horizons", prob.get("horizons", [10.0]), low=0.0, open_low=True
    )
    t_max = _number(src, "problem", 0, "t_max", prob.get("t_max", 1e6), low=0.0, open_low=True)
    if max(horizons) > t_max:
        raise src.error(
            f"`horizons` must be at most t_max = {t_max:g} (the solve stops there); got "
            f"{max(horizons):g}. Raise `t_max` or drop the horizon.",
            "problem",
            "horizons",
        )
    gamma = _number(
        src, "problem", 0, "gamma", prob.get("gamma", 0.25), low=0.0, high=1.0, open_low=True
    )
    grid = data["grid"]
    _keys(src, "grid", 0, grid, {"seeds", "kl_coef"})
    seeds = _number_list(src, "grid", "seeds", grid.get("seeds", [0]), integer=True, low=0)
    kl_coefs = _number_list(src, "grid", "kl_coef", grid.get("kl_coef", [0.0]), low=0.0)
    for table, key, values in (
        ("problem", "horizons", horizons),
        ("grid", "seeds", seeds),
        ("grid", "kl_coef", kl_coefs),
    ):
        if len(set(values)) != len(values):
            raise src.error(
                f"`{key}` must not repeat a value (repeats make duplicate cells); got "
                f"{list(values)}.",
                table,
                key,
            )
    chunk_cells = _number(src, "", 0, "chunk_size", data.get("chunk_size", 16), integer=True, low=1)
    prompts = shape.get("prompts", 1)
    try:  # refuse before anything is allocated: a chunk holds chunk_size cells' tables
        check_fits(
            chunk_cells * prompts,
            int(outputs),
            chunk_cells * prompts * int(outputs),
            f"a chunk of {chunk_cells} cells with {prompts} prompt(s) x {outputs} outputs",
        )
    except ValueError as err:
        where = "outputs" if kind in ("tabular", "mlp") else "length"
        raise src.error(str(err), "problem", where) from None
    policies = tuple(
        FamilySpec("policy", *_family(src, "policy", i, d)) for i, d in enumerate(data["policy"])
    )
    for i, spec in enumerate(policies):
        if spec.family == "init" and kind not in NEURAL:
            raise src.error(
                f"family 'init' (pi_0 = a network's initialisation) needs a neural policy "
                f"({' or '.join(repr(k) for k in NEURAL)}); [problem] has {kind!r}.",
                "policy",
                "family",
                i,
            )
    rewards = []
    for i, d in enumerate(data["reward_model"]):
        normalize = d.get("normalize", False)
        if not isinstance(normalize, bool):
            raise src.error(
                f"`normalize` must be true or false; got {normalize!r}.",
                "reward_model",
                "normalize",
                i,
            )
        rewards.append(FamilySpec("reward_model", *_family(src, "reward_model", i, d), normalize))
    for table, specs in (("policy", policies), ("reward_model", rewards)):
        names = [s.name for s in specs]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise src.error(f"two [[{table}]] tables share the name {name!r}.", table, None, i)
    return SweepConfig(
        policy=kind,
        prompts=shape["prompts"] if "prompts" in shape else 1,
        outputs=int(outputs),
        vocab=int(vocab),
        length=int(length),
        gamma=gamma,
        horizons=tuple(sorted(horizons)),
        t_max=t_max,
        seeds=seeds,
        kl_coefs=kl_coefs,
        policies=policies,
        reward_models=tuple(rewards),
        chunk_size=chunk_cells,
        network=network,
    )


def _network(src, kind: str, prob: dict) -> tuple[tuple[str, float], ...]:
    """A neural policy's [problem] keys with their defaults (empty for other policies)."""
    values = []
    for key, default in NEURAL.get(kind, {}).items():
        scale = key == "init_scale"
        value = _number(
            src, "problem", 0, key, prob.get(key, default), integer=not scale, low=0 if scale
            else 1, open_low=scale,
        )  # fmt: skip
        values.append((key, value))
    net = dict(values)
    if kind == "transformer" and net["width"] % net["heads"]:
        raise src.error(
            f"`width` ({net['width']}) must be divisible by `heads` ({net['heads']}).",
            "problem",
            "width",
        )
    return tuple(values)


def load_config(path) -> SweepConfig:
    """Read and parse a sweep's TOML file (:func:`parse_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`config` must be a TOML file; {str(path)!r} does not exist.")
    return parse_config(path.read_text(), str(path))


# ----------------------------------------------------------------------------- cells


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


def build_cell(config: SweepConfig, cell: int) -> tuple[Problem, dict]:
    """The :class:`~theory_sim.Problem` of one cell and its measures at pi_0.

    Returns:
        (problem, row) with row holding the cell's labels and gamma (absolute, for prompt 0);
        :func:`run_cells` adds the measures.
    """
    problem, kl_coef, row = _cell(config, cell)
    return jax.device_put(problem).with_kl_coef(kl_coef), row


# ----------------------------------------------------------------------------- running


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


def run_cells(config: SweepConfig, cells: list[int], devices=None) -> list[dict]:
    """Run the given cells as vmapped computations sharded over ``devices``.

    Each cell's t_gamma is solved in a group of :data:`GROUP_SIZE` cells of like estimated
    t_gamma and its path to the last horizon in a group of :data:`PATH_GROUP_SIZE` (see there),
    each group padded (by repeating its last cell) to that size, a multiple of the number of
    devices, so that one compiled program serves every group and every device holds the same
    number of cells; the padding is dropped from the results. The numbers do not depend on the
    grouping: each cell's solve is its own.

    Returns:
        The tidy rows (:data:`COLUMNS`), one per cell and horizon.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    built, infeasible = [], []
    prefetched = _prefetch(config, cells)
    for c in cells:
        try:
            built.append(_cell(config, c))
        except ValueError as err:  # the seed's tables cannot give this reward model
            p_index, r_index, _, seed = config.cell(c)
            where = (
                f"[[reward_model]] {r_index + 1} ({config.reward_models[r_index].name}) under "
                f"[[policy]] {p_index + 1} ({config.policies[p_index].name}), seed {seed}"
            )
            infeasible.append((c, f"{where}: {err}"))
    for key in prefetched:  # those of tables built before, still cached
        _prefetched.pop(key, None)
    rows = [row for c, reason in infeasible for row in _infeasible_rows(config, c, reason)]
    if not built:
        return sorted(rows, key=lambda r: (r["cell"], r["horizon"]))
    start, times, gain_rm, gain_gt, ok = _solve_grouped(config, built, devices)
    save_ts = np.asarray((0.0, *config.horizons))
    times, gain_rm, gain_gt, ok = (np.array(a) for a in (times, gain_rm, gain_gt, ok))
    # A cell whose explicit solve stopped early (a stiff tail of a lambda > 0 flow) is solved
    # again on its own, where the implicit continuation and per-prompt certificates apply.
    reasons = {}  # why a cell solved again on its own was refused
    for i in np.flatnonzero(~np.asarray(ok[: len(built)])):
        problem, kl_coef, row = built[i]
        problem = jax.device_put(problem).with_kl_coef(kl_coef)
        try:
            times[i] = time_to_gain(problem, row["gamma"], problem.reward_gt, 0, config.t_max)
            traj = gradient_flow(problem, float(save_ts[-1]), np.asarray(save_ts))
        except RuntimeError:
            continue
        except ValueError as err:  # a gain below float64's resolution (see time_to_gain)
            reasons[i] = " ".join(str(err).split())
            continue
        for name, table in (("rm", traj.expected_rm), ("gt", traj.expected_gt)):
            table = table.reshape(len(save_ts), -1)
            gains = (table - table[0]).mean(axis=-1)[1:]
            (gain_rm if name == "rm" else gain_gt)[i] = gains
        ok[i] = True
    for i, (_, _, base) in enumerate(built):
        status = OK if ok[i] else f"{FAILED}: {reasons[i]}" if i in reasons else FAILED
        for h, horizon in enumerate(config.horizons):
            rows.append(
                {
                    **base,
                    **{key: float(value[i]) for key, value in start.items()},
                    "t_gamma": float(times[i]) if ok[i] else math.nan,
                    "horizon": horizon,
                    "gain_rm": float(gain_rm[i, h]) if ok[i] else math.nan,
                    "gain_gt": float(gain_gt[i, h]) if ok[i] else math.nan,
                    "solver_ok": bool(ok[i]),
                    "status": status,
                }
            )
    return sorted(rows, key=lambda r: (r["cell"], r["horizon"]))


def _infeasible_rows(config: SweepConfig, cell: int, reason: str) -> list[dict]:
    """The rows of a cell that cannot be built: its labels, NaN measures and the reason."""
    labels = _labels(config, cell) | {
        "solver_ok": False,
        "status": f"{INFEASIBLE}: {' '.join(reason.split())}",
    }
    nan = {k: math.nan for k in COLUMNS if k not in labels}
    return [nan | labels | {"horizon": h} for h in config.horizons]


_TYPES = {"cell": int, "seed": int, "policy": str, "reward_model": str, "status": str}


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        parsed = {}
        for key in COLUMNS:
            value = row[key]
            if key == "solver_ok":
                parsed[key] = value == "True"
            else:
                parsed[key] = _TYPES.get(key, float)(value)
        out.append(parsed)
    return out


def _write_part(path: Path, rows: list[dict]) -> None:
    """A chunk's rows as ``path`` (CSV), then its row count and SHA-256 as ``path``.sum; both
    written atomically, the checksum last, so a part without a valid checksum is never trusted."""
    write_csv(path, rows, COLUMNS)
    summary = {"rows": len(rows), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    tmp = path.with_suffix(".sum.tmp")
    tmp.write_text(json.dumps(summary))
    os.replace(tmp, path.with_suffix(".sum"))


def _load_part(path: Path) -> tuple[list[dict], str]:
    """(rows, "") for an intact part, or ([], what is wrong with it)."""
    try:
        summary = json.loads(path.with_suffix(".sum").read_text())
        rows_expected, digest = int(summary["rows"]), str(summary["sha256"])
    except FileNotFoundError:
        return [], "has no checksum (its run was interrupted while writing it?)"
    except (ValueError, KeyError, TypeError):
        return [], "has a damaged checksum file"
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        return [], "does not match its checksum (truncated or edited)"
    try:
        rows = _read_csv(path)
    except (KeyError, ValueError) as err:  # pragma: no cover - a matching checksum was written
        return [], f"cannot be read ({err})"
    if len(rows) != rows_expected:  # pragma: no cover - as above
        return [], f"holds {len(rows)} rows, not {rows_expected}"
    return rows, ""


def _read_parts(parts: Path, notice: Callable[[str], None], drop=lambda path: False) -> list[dict]:
    """The rows of every intact part in ``parts``; each damaged part is reported to ``notice``
    and, when ``drop(path)``, deleted so that its cells are computed again."""
    rows = []
    for path in sorted(parts.glob("part-*.csv")) if parts.is_dir() else []:
        part, damage = _load_part(path)
        if damage:
            again = drop(path)
            notice(f"{path} {damage}; " + ("recomputing its cells." if again else "skipped."))
            if again:
                path.unlink(missing_ok=True)
                path.with_suffix(".sum").unlink(missing_ok=True)
        rows += part
    return sorted(rows, key=lambda r: (r["cell"], r["horizon"]))


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def load_results(directory, *, notice: Callable[[str], None] | None = None) -> list[dict]:
    """The rows of a sweep's ``results.csv`` or, for an unfinished sweep, of its intact parts
    (a damaged part is skipped and reported to ``notice``; default: a RuntimeWarning)."""
    directory = Path(directory)
    final = directory / "results.csv"
    if final.is_file():
        return _read_csv(final)
    rows = _read_parts(directory / "parts", notice or _warn)
    if not rows:
        raise ValueError(f"`results` must be a sweep directory; {str(directory)!r} has no results.")
    return rows


def _versions() -> dict:
    names = ("theory_sim", "jax", "jaxlib", "diffrax", "optax", "numpy")
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
            out[name] = "unknown"
    return out


def run_sweep(
    config: SweepConfig,
    out,
    *,
    devices=None,
    process_index: int = 0,
    process_count: int = 1,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> list[dict]:
    """Run (or resume) a sweep into the directory ``out``; return all rows of ``results.csv``.

    Cells already saved in ``out/parts`` by an earlier run of the same config are not recomputed.
    With ``process_count`` > 1 (several hosts, e.g. after ``jax.distributed.initialize()``), this
    process runs the cells with index = ``process_index`` (mod ``process_count``) on its local
    devices and writes its own parts; ``results.csv`` is assembled once every cell is saved.

    Args:
        config: a :class:`SweepConfig` (:func:`load_config`).
        out: the results directory (created if needed).
        devices: devices to shard over; default all local devices.
        progress: called with (cells done, cells of this process) after every chunk.
        notice: called with a message for each damaged part found (it is recomputed); default
            a RuntimeWarning.
        workers: chunks solved at once, each on its own thread; default one per core this
            process may use. The numbers do not depend on it.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"`process_index` must be in [0, {process_count}); got {process_index}.")
    if workers is not None:
        workers = check_int("workers", workers, 1)
    notice = notice or _warn
    out = Path(out)
    parts = out / "parts"
    meta_path = out / "metadata.json"
    devices = list(jax.local_devices() if devices is None else devices)
    meta = {
        "config": config.as_dict(),
        "config_digest": config.digest(),
        "cells": config.num_cells,
        "seeds": list(config.seeds),
        "versions": _versions(),
        "devices": [str(d) for d in devices],
        "process_count": process_count,
        "columns": list(COLUMNS),
    }
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())
        except ValueError as err:
            raise ValueError(
                f"`out` {str(out)!r} has a damaged metadata.json ({err}); it cannot tell which "
                "config its parts belong to, so choose another directory or remove it."
            ) from None
        if not isinstance(old, dict) or old.get("config_digest") != meta["config_digest"]:
            raise ValueError(
                f"`out` {str(out)!r} holds a sweep of a different config; choose another "
                "directory or remove it."
            )
    parts.mkdir(parents=True, exist_ok=True)
    if process_index == 0 and not meta_path.is_file():
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(_json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)
    mine = list(range(process_index, config.num_cells, process_count))

    def mine_to_redo(path: Path) -> bool:  # a part holds one process's cells; it redoes them
        return int(path.stem.split("-")[1]) % process_count == process_index

    done = {r["cell"] for r in _read_parts(parts, notice, mine_to_redo)}
    todo = [c for c in mine if c not in done]
    finished = len(mine) - len(todo)
    # a chunk is a multiple of the device count, so no device idles on padding mid-sweep
    size = max(config.chunk_size, len(devices))
    size -= size % len(devices)
    if progress is not None:
        progress(finished, len(mine))

    def solve(chunk: list[int]) -> int:  # each chunk is saved by the thread that solves it
        _write_part(parts / f"part-{chunk[0]:06d}.csv", run_cells(config, chunk, devices))
        return len(chunk)

    # chunks are independent: one thread per core (see theory_sim._parallel)
    chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
    with contextlib.closing(threaded_map(solve, chunks, workers)) as counts:
        for count in counts:  # an error here closes the map at once: queued chunks are dropped
            finished += count
            if progress is not None:
                progress(finished, len(mine))
    final = out / "results.csv"
    if final.is_file():
        return _read_csv(final)
    rows = _read_parts(parts, notice)
    if len({r["cell"] for r in rows}) == config.num_cells:
        write_csv(final, rows, COLUMNS)
    return rows
