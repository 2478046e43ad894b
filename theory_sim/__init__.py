"""theory_sim: exact simulation of RLHF optimisation for the theory of arXiv 2503.15477.

Start with :class:`Problem` (a policy, a reward model r_RM, a ground truth r_G and lambda), then
:func:`gradient_flow` for the trajectory and :func:`time_to_gain` for t_gamma; the metrics
(:func:`reward_variance`, :func:`accuracy`, :func:`best_of_n`, ...) act on probability tables.
Policies: :class:`Tabular`, :class:`Autoregressive`, :class:`LogLinear` and :func:`start_at`.
Reward models: :mod:`theory_sim.rewards` (accuracy and variance set independently, the paper's
counterexamples) and :mod:`theory_sim.bradley_terry`. Discrete and sampled optimisation:
:mod:`theory_sim.training`. The checks in :mod:`theory_sim.theorems` compare measured quantities
against the paper's bounds; :mod:`theory_sim.experiments` runs them as ``theory-sim check`` does.
The paper's stories (the notebooks' figures and tables) are :mod:`theory_sim.stories`, drawn by
:mod:`theory_sim.plotting` and written by :func:`theory_sim.report.reproduce`; grids of runs from
a TOML file are :mod:`theory_sim.sweep`.

theory_sim turns on JAX's float64 mode (``jax_enable_x64``) for the whole process as soon as
any of its modules that compute loads (the first use of a name below, or ``import
theory_sim.flow`` and the like; at once if JAX is already imported): the theorems live at
reward variances down to 1e-12 and times up to 1e8, beyond float32. The names below are loaded
on first use, so ``import theory_sim`` and ``theory-sim --help`` do not import JAX.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

__version__ = "0.1.0"

# public name -> the module that defines it, loaded on first use (PEP 562)
_EXPORTS = {
    "accuracy": "theory_sim.metrics",
    "Autoregressive": "theory_sim.policies",
    "best_of_n": "theory_sim.metrics",
    "best_of_n_policy": "theory_sim.metrics",
    "compare_methods": "theory_sim.training",
    "default_save_ts": "theory_sim.flow",
    "entropy": "theory_sim.metrics",
    "estimate_gradient": "theory_sim.estimators",
    "expected_reward": "theory_sim.metrics",
    "GainTime": "theory_sim.flow",
    "gradient_flow": "theory_sim.flow",
    "harm_aware_accuracy": "theory_sim.metrics",
    "kl_divergence": "theory_sim.metrics",
    "kl_optimal_policy": "theory_sim.objective",
    "LogLinear": "theory_sim.policies",
    "MLP": "theory_sim.policies",
    "Neural": "theory_sim.policies",
    "objective": "theory_sim.objective",
    "on_policy_accuracy": "theory_sim.metrics",
    "optimize": "theory_sim.training",
    "policy_gradient": "theory_sim.objective",
    "Problem": "theory_sim.problem",
    "prompt_objective": "theory_sim.objective",
    "reward_variance": "theory_sim.metrics",
    "sampled_optimize": "theory_sim.training",
    "ScaledMLP": "theory_sim.policies",
    "start_at": "theory_sim.policies",
    "steps_to_gain": "theory_sim.training",
    "Tabular": "theory_sim.policies",
    "tabular_gradient": "theory_sim.objective",
    "time_to_gain": "theory_sim.flow",
    "time_to_gain_details": "theory_sim.flow",
    "Trajectory": "theory_sim.flow",
    "Transformer": "theory_sim.policies",
    "weighted_accuracy": "theory_sim.metrics",
}

__all__ = sorted(_EXPORTS)

if "jax" in sys.modules:  # arrays may exist already: float64 from now on, as the docstring says
    importlib.import_module("theory_sim._device")


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # ts.theorems, ts.rewards, ...
    raise AttributeError(f"module 'theory_sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """theory_sim's module object: loading the submodule ``theory_sim.objective`` sets the
    package's attribute of that name, which would hide the function ``objective``; the
    function keeps the name, and the submodule stays importable by its full name."""

    def __setattr__(self, name: str, value) -> None:
        if name == "objective" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
