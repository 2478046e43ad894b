"""Reward-model constructions that trade accuracy against reward variance.

The paper's point (arXiv 2503.15477) is that these are different axes: accuracy is a property of
the reward model's ranking, reward variance of the ranking together with the policy, and the
second decides how fast the gradient flow moves. Every construction here takes one prompt's
tables (1-D over the Y outputs, which may be token sequences), checks its preconditions and says
which one fails.

By concept: :mod:`.counterexamples` (Theorems 5 and 6, and the reward error that helps of
arXiv 2604.25872), :mod:`.variance` (a chosen variance,
the same ranking), :mod:`.rankings` (a chosen accuracy), :mod:`.verifiers` (noisy 0/1 verifiers).
"""

from theory_sim.rewards.counterexamples import Theorem5Models as Theorem5Models
from theory_sim.rewards.counterexamples import Theorem6Instance as Theorem6Instance
from theory_sim.rewards.counterexamples import (
    beneficial_error_instance as beneficial_error_instance,
)
from theory_sim.rewards.counterexamples import theorem_5_models as theorem_5_models
from theory_sim.rewards.counterexamples import theorem_6_instance as theorem_6_instance
from theory_sim.rewards.rankings import accuracy_sweep as accuracy_sweep
from theory_sim.rewards.rankings import attainable_accuracies as attainable_accuracies
from theory_sim.rewards.rankings import nearest_attainable_accuracy as nearest_attainable_accuracy
from theory_sim.rewards.rankings import ranking_with_accuracy as ranking_with_accuracy
from theory_sim.rewards.variance import max_monotone_variance as max_monotone_variance
from theory_sim.rewards.variance import scale_prompts as scale_prompts
from theory_sim.rewards.variance import variance_sweep as variance_sweep
from theory_sim.rewards.variance import with_variance as with_variance
from theory_sim.rewards.verifiers import noisy_verifier as noisy_verifier
from theory_sim.rewards.verifiers import sample_verdicts as sample_verdicts
from theory_sim.rewards.verifiers import youden_j as youden_j

__all__ = [
    "Theorem5Models",
    "Theorem6Instance",
    "accuracy_sweep",
    "attainable_accuracies",
    "beneficial_error_instance",
    "max_monotone_variance",
    "nearest_attainable_accuracy",
    "noisy_verifier",
    "ranking_with_accuracy",
    "sample_verdicts",
    "scale_prompts",
    "theorem_5_models",
    "theorem_6_instance",
    "variance_sweep",
    "with_variance",
    "youden_j",
]
