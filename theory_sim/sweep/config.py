"""A sweep's configuration: the TOML schema, its parsing and validation into a frozen SweepConfig.

Every key is checked once, here, with messages that name the file, the table and the key; the
cost estimate (``SweepConfig.estimated_seconds``) lets the command line ask before a long run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib

import jax
import numpy as np

from theory_sim import _random
from theory_sim._validation import MAX_SEED, check_fits, check_index, check_path
from theory_sim.policies import MLP, Autoregressive, Tabular, Transformer

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
        features = _random.normal(jax.random.fold_in(key, 1), shape)
        return MLP(features, key=key, init_scale=net["init_scale"], **sizes)

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
    if not isinstance(text, str):
        raise TypeError(f"`text` must be the config's TOML text (a str); got {text!r}.")
    if not isinstance(path, str):
        raise TypeError(f"`path` must be a str (the name errors give the config); got {path!r}.")
    src = _Source(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: `text` is not valid TOML: {err}") from None
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
    seeds = _number_list(
        src, "grid", "seeds", grid.get("seeds", [0]), integer=True, low=0, high=MAX_SEED
    )
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
    path = check_path("path", path)
    if not path.is_file():
        raise ValueError(f"`config` must be a TOML file; {str(path)!r} does not exist.")
    return parse_config(path.read_text(), str(path))
