"""Matplotlib figures from results: every function accepts an optional ``ax`` (or ``axes``) and
returns the figure; nothing here computes a theoretical quantity. :mod:`.checks` draws the
checks' figures, :mod:`.stories` the notebooks'; both share :mod:`._common`."""

from theory_sim.plotting.checks import (
    plot_bound_check as plot_bound_check,
)
from theory_sim.plotting.checks import (
    plot_exponent_fits as plot_exponent_fits,
)
from theory_sim.plotting.checks import (
    plot_flat_landscape as plot_flat_landscape,
)
from theory_sim.plotting.checks import (
    plot_reward_curves as plot_reward_curves,
)
from theory_sim.plotting.checks import (
    plot_tightness as plot_tightness,
)
from theory_sim.plotting.evaluate import (
    plot_beneficial_errors as plot_beneficial_errors,
)
from theory_sim.plotting.evaluate import (
    plot_convergence as plot_convergence,
)
from theory_sim.plotting.evaluate import (
    plot_group_exponents as plot_group_exponents,
)
from theory_sim.plotting.evaluate import (
    plot_prompt_variance as plot_prompt_variance,
)
from theory_sim.plotting.evaluate import (
    plot_step_thresholds as plot_step_thresholds,
)
from theory_sim.plotting.evaluate import (
    plot_teaching_times as plot_teaching_times,
)
from theory_sim.plotting.evaluate import (
    plot_variance_accuracy as plot_variance_accuracy,
)
from theory_sim.plotting.evaluate import (
    plot_verifier_phases as plot_verifier_phases,
)
from theory_sim.plotting.remark1 import (
    plot_remark_1 as plot_remark_1,
)
from theory_sim.plotting.remark1 import (
    plot_remark_1_paths as plot_remark_1_paths,
)
from theory_sim.plotting.stories import (
    plot_accuracy_variance as plot_accuracy_variance,
)
from theory_sim.plotting.stories import (
    plot_section_4_1 as plot_section_4_1,
)
from theory_sim.plotting.stories import (
    plot_snr_study as plot_snr_study,
)
from theory_sim.plotting.stories import (
    plot_sweep as plot_sweep,
)
from theory_sim.plotting.stories import (
    plot_teacher_student as plot_teacher_student,
)
from theory_sim.plotting.stories import (
    plot_theorem_5 as plot_theorem_5,
)
from theory_sim.plotting.stories import (
    plot_theorem_6 as plot_theorem_6,
)

__all__ = [
    "plot_accuracy_variance",
    "plot_beneficial_errors",
    "plot_bound_check",
    "plot_convergence",
    "plot_exponent_fits",
    "plot_flat_landscape",
    "plot_group_exponents",
    "plot_prompt_variance",
    "plot_remark_1",
    "plot_remark_1_paths",
    "plot_reward_curves",
    "plot_section_4_1",
    "plot_snr_study",
    "plot_step_thresholds",
    "plot_sweep",
    "plot_teacher_student",
    "plot_teaching_times",
    "plot_theorem_5",
    "plot_theorem_6",
    "plot_tightness",
    "plot_variance_accuracy",
    "plot_verifier_phases",
]
