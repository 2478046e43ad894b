"""One function per result of arXiv 2503.15477, each returning a :class:`Check`.

A Check carries both sides of the inequality, the relation between them and the instance, never a
bare bool. Tolerances only absorb numerical error and each is explained where it is set.

The checks are split by the paper's sections: :mod:`.flat` (Propositions 2-3, Theorem 4 at
training and held-out prompts, the exponent fits), :mod:`.dynamics` (Lemma 9 and the monotone
quantities in Proposition 4's proof), :mod:`.accuracy` (Theorem 5, Proposition 1) and
:mod:`.teacher` (Theorem 6, Proposition 4, Lemma 10); :mod:`.tightness` searches for the
instances on which each bound is sharpest; :mod:`._common` holds :class:`Check` and
what the checks share. Every public name is importable from ``theory_sim.theorems``.
"""

from theory_sim.theorems._common import (
    RATIO_RTOL as RATIO_RTOL,
)
from theory_sim.theorems._common import (
    TIME_RTOL as TIME_RTOL,
)
from theory_sim.theorems._common import (
    Check as Check,
)
from theory_sim.theorems._common import (
    tightest as tightest,
)
from theory_sim.theorems.accuracy import (
    check_proposition_1 as check_proposition_1,
)
from theory_sim.theorems.accuracy import (
    check_theorem_5 as check_theorem_5,
)
from theory_sim.theorems.dynamics import (
    check_lemma_9 as check_lemma_9,
)
from theory_sim.theorems.dynamics import (
    check_monotone_ascent as check_monotone_ascent,
)
from theory_sim.theorems.dynamics import (
    lemma_9_rate as lemma_9_rate,
)
from theory_sim.theorems.flat import (
    ExponentFit as ExponentFit,
)
from theory_sim.theorems.flat import (
    check_proposition_2 as check_proposition_2,
)
from theory_sim.theorems.flat import (
    check_proposition_3 as check_proposition_3,
)
from theory_sim.theorems.flat import (
    check_proposition_3_trajectory as check_proposition_3_trajectory,
)
from theory_sim.theorems.flat import (
    check_theorem_4 as check_theorem_4,
)
from theory_sim.theorems.flat import (
    check_theorem_4_held_out as check_theorem_4_held_out,
)
from theory_sim.theorems.flat import (
    fit_exponent as fit_exponent,
)
from theory_sim.theorems.flat import (
    proposition_2_rhs as proposition_2_rhs,
)
from theory_sim.theorems.flat import (
    proposition_3_bound as proposition_3_bound,
)
from theory_sim.theorems.flat import (
    theorem_4_bound as theorem_4_bound,
)
from theory_sim.theorems.teacher import (
    Proposition4Conditions as Proposition4Conditions,
)
from theory_sim.theorems.teacher import (
    Proposition4YBad as Proposition4YBad,
)
from theory_sim.theorems.teacher import (
    check_lemma_10 as check_lemma_10,
)
from theory_sim.theorems.teacher import (
    check_proposition_4 as check_proposition_4,
)
from theory_sim.theorems.teacher import (
    check_theorem_6 as check_theorem_6,
)
from theory_sim.theorems.teacher import (
    proposition_4_conditions as proposition_4_conditions,
)
from theory_sim.theorems.teacher import (
    proposition_4_y_bad as proposition_4_y_bad,
)
from theory_sim.theorems.tightness import (
    TIGHTNESS_CLAIMS as TIGHTNESS_CLAIMS,
)
from theory_sim.theorems.tightness import (
    Tightest as Tightest,
)
from theory_sim.theorems.tightness import (
    recheck as recheck,
)
from theory_sim.theorems.tightness import (
    search_tightness as search_tightness,
)
from theory_sim.theorems.tightness import (
    tightness_search as tightness_search,
)
from theory_sim.theorems.verifiable import check_beneficial_error as check_beneficial_error
from theory_sim.theorems.verifiable import check_gradient_gap as check_gradient_gap
from theory_sim.theorems.verifiable import check_group_update as check_group_update
from theory_sim.theorems.verifiable import check_grpo_success as check_grpo_success
from theory_sim.theorems.verifiable import (
    check_improvement_threshold as check_improvement_threshold,
)
from theory_sim.theorems.verifiable import (
    check_no_signal_probability as check_no_signal_probability,
)
from theory_sim.theorems.verifiable import check_noisy_verifier as check_noisy_verifier
from theory_sim.theorems.verifiable import (
    check_preference_metrics as check_preference_metrics,
)
from theory_sim.theorems.verifiable import check_step_scaling as check_step_scaling
from theory_sim.theorems.verifiable import check_step_threshold as check_step_threshold
from theory_sim.theorems.verifiable import (
    check_step_threshold_needs_sharing as check_step_threshold_needs_sharing,
)

__all__ = [
    "TIGHTNESS_CLAIMS",
    "Check",
    "ExponentFit",
    "Proposition4Conditions",
    "Proposition4YBad",
    "Tightest",
    "check_beneficial_error",
    "check_gradient_gap",
    "check_group_update",
    "check_grpo_success",
    "check_improvement_threshold",
    "check_lemma_9",
    "check_lemma_10",
    "check_monotone_ascent",
    "check_no_signal_probability",
    "check_noisy_verifier",
    "check_preference_metrics",
    "check_proposition_1",
    "check_proposition_2",
    "check_proposition_3",
    "check_proposition_3_trajectory",
    "check_proposition_4",
    "check_step_scaling",
    "check_step_threshold",
    "check_step_threshold_needs_sharing",
    "check_theorem_4",
    "check_theorem_4_held_out",
    "check_theorem_5",
    "check_theorem_6",
    "fit_exponent",
    "lemma_9_rate",
    "proposition_2_rhs",
    "proposition_3_bound",
    "proposition_4_conditions",
    "proposition_4_y_bad",
    "recheck",
    "search_tightness",
    "theorem_4_bound",
    "tightest",
    "tightness_search",
]
