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

Importing theory_sim turns on JAX's float64 mode (``jax_enable_x64``) for the whole process:
the theorems live at reward variances down to 1e-12 and times up to 1e8, beyond float32.
"""

import jax

# Float64 for the whole process (see the README): set before any array is created.
jax.config.update("jax_enable_x64", True)

from theory_sim.flow import GainTime as GainTime  # noqa: E402
from theory_sim.flow import Trajectory as Trajectory  # noqa: E402
from theory_sim.flow import default_save_ts as default_save_ts  # noqa: E402
from theory_sim.flow import gradient_flow as gradient_flow  # noqa: E402
from theory_sim.flow import time_to_gain as time_to_gain  # noqa: E402
from theory_sim.flow import time_to_gain_details as time_to_gain_details  # noqa: E402
from theory_sim.metrics import accuracy as accuracy  # noqa: E402
from theory_sim.metrics import best_of_n as best_of_n  # noqa: E402
from theory_sim.metrics import best_of_n_policy as best_of_n_policy  # noqa: E402
from theory_sim.metrics import entropy as entropy  # noqa: E402
from theory_sim.metrics import expected_reward as expected_reward  # noqa: E402
from theory_sim.metrics import kl_divergence as kl_divergence  # noqa: E402
from theory_sim.metrics import on_policy_accuracy as on_policy_accuracy  # noqa: E402
from theory_sim.metrics import reward_variance as reward_variance  # noqa: E402
from theory_sim.objective import kl_optimal_policy as kl_optimal_policy  # noqa: E402
from theory_sim.objective import objective as objective  # noqa: E402
from theory_sim.objective import policy_gradient as policy_gradient  # noqa: E402
from theory_sim.objective import prompt_objective as prompt_objective  # noqa: E402
from theory_sim.objective import tabular_gradient as tabular_gradient  # noqa: E402
from theory_sim.policies import MLP as MLP  # noqa: E402
from theory_sim.policies import Autoregressive as Autoregressive  # noqa: E402
from theory_sim.policies import LogLinear as LogLinear  # noqa: E402
from theory_sim.policies import Neural as Neural  # noqa: E402
from theory_sim.policies import Tabular as Tabular  # noqa: E402
from theory_sim.policies import Transformer as Transformer  # noqa: E402
from theory_sim.policies import start_at as start_at  # noqa: E402
from theory_sim.problem import Problem as Problem  # noqa: E402
from theory_sim.training import compare_methods as compare_methods  # noqa: E402
from theory_sim.training import estimate_gradient as estimate_gradient  # noqa: E402
from theory_sim.training import optimize as optimize  # noqa: E402
from theory_sim.training import sampled_optimize as sampled_optimize  # noqa: E402
from theory_sim.training import steps_to_gain as steps_to_gain  # noqa: E402

__version__ = "0.1.0"
