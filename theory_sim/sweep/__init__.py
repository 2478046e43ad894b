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

The package, by concept: :mod:`.config` (the TOML schema and its validation), :mod:`.cells`
(building each cell's problem from its seed), :mod:`.schedule` (grouping, vmapping and sharding
the solves), :mod:`.run` (chunks, resuming, several processes), :mod:`.storage` (parts, checksums
and results).

Results: ``OUT/results.csv`` (tidy: one row per cell and horizon) and ``OUT/metadata.json``
(config, versions, devices). Finished chunks are saved atomically in ``OUT/parts/``; a rerun of the
same config into the same directory computes only the missing cells.
"""

from theory_sim.sweep.cells import build_cell as build_cell
from theory_sim.sweep.config import CONFIRM_SECONDS as CONFIRM_SECONDS
from theory_sim.sweep.config import FamilySpec as FamilySpec
from theory_sim.sweep.config import SweepConfig as SweepConfig
from theory_sim.sweep.config import load_config as load_config
from theory_sim.sweep.config import parse_config as parse_config
from theory_sim.sweep.run import run_cells as run_cells
from theory_sim.sweep.run import run_sweep as run_sweep
from theory_sim.sweep.storage import COLUMNS as COLUMNS
from theory_sim.sweep.storage import load_results as load_results

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
