"""The paper's stories as experiments: one function per figure or table of the notebooks.

Each returns plain results (dataclasses of arrays, lists of row dicts) that
:mod:`theory_sim.plotting` draws and :mod:`theory_sim.report` writes; the notebooks and
``theory-sim reproduce`` call the same functions, so what a notebook shows is what the command
writes, at the same sizes: every default here is the size the notebooks, ``reproduce`` and the
README's quoted numbers use. :data:`QUICK` holds the small sizes of ``reproduce --quick``.

One module per notebook: :mod:`.landscape` (02), :mod:`.accuracy` (03), :mod:`.teacher` (04),
:mod:`.section41` (05, 06), :mod:`.sequences` (06), :mod:`.remark1` (08), :mod:`.verifiable` and
:mod:`.imperfect` (11).
"""

from theory_sim.instances import counterexample_instance as counterexample_instance
from theory_sim.stories._common import QUICK as QUICK
from theory_sim.stories.accuracy import AccuracyVarianceGrid as AccuracyVarianceGrid
from theory_sim.stories.accuracy import Theorem5Story as Theorem5Story
from theory_sim.stories.accuracy import accuracy_variance_grid as accuracy_variance_grid
from theory_sim.stories.accuracy import theorem_5_story as theorem_5_story
from theory_sim.stories.imperfect import BENEFICIAL_STAR_PROBS as BENEFICIAL_STAR_PROBS
from theory_sim.stories.imperfect import BeneficialErrors as BeneficialErrors
from theory_sim.stories.imperfect import beneficial_errors as beneficial_errors
from theory_sim.stories.landscape import FLAT_FAMILIES as FLAT_FAMILIES
from theory_sim.stories.landscape import FlatLandscape as FlatLandscape
from theory_sim.stories.landscape import flat_landscape as flat_landscape
from theory_sim.stories.remark1 import REMARK_1_DEPTHS as REMARK_1_DEPTHS
from theory_sim.stories.remark1 import REMARK_1_KL_COEFS as REMARK_1_KL_COEFS
from theory_sim.stories.remark1 import REMARK_1_SEEDS as REMARK_1_SEEDS
from theory_sim.stories.remark1 import REMARK_1_WIDTHS as REMARK_1_WIDTHS
from theory_sim.stories.remark1 import Remark1 as Remark1
from theory_sim.stories.remark1 import remark_1 as remark_1
from theory_sim.stories.section41 import HAND_BUILT as HAND_BUILT
from theory_sim.stories.section41 import ON_POLICY_FRACTIONS as ON_POLICY_FRACTIONS
from theory_sim.stories.section41 import PAPER_TABLE_2 as PAPER_TABLE_2
from theory_sim.stories.section41 import Section41 as Section41
from theory_sim.stories.section41 import section_4_1 as section_4_1
from theory_sim.stories.section41 import section_4_1_world as section_4_1_world
from theory_sim.stories.sequences import SequenceTeachers as SequenceTeachers
from theory_sim.stories.sequences import sequence_teachers as sequence_teachers
from theory_sim.stories.sequences import top_sequences as top_sequences
from theory_sim.stories.teacher import TeacherStudent as TeacherStudent
from theory_sim.stories.teacher import Theorem6Story as Theorem6Story
from theory_sim.stories.teacher import teacher_student as teacher_student
from theory_sim.stories.teacher import theorem_6_story as theorem_6_story
from theory_sim.stories.verifiable import GroupExponents as GroupExponents
from theory_sim.stories.verifiable import StepThresholds as StepThresholds
from theory_sim.stories.verifiable import VerifierPhases as VerifierPhases
from theory_sim.stories.verifiable import group_exponents as group_exponents
from theory_sim.stories.verifiable import step_thresholds as step_thresholds
from theory_sim.stories.verifiable import verifier_phases as verifier_phases

__all__ = [
    "BENEFICIAL_STAR_PROBS",
    "PAPER_TABLE_2",
    "QUICK",
    "REMARK_1_DEPTHS",
    "REMARK_1_KL_COEFS",
    "REMARK_1_SEEDS",
    "REMARK_1_WIDTHS",
    "AccuracyVarianceGrid",
    "BeneficialErrors",
    "FlatLandscape",
    "GroupExponents",
    "Remark1",
    "Section41",
    "SequenceTeachers",
    "StepThresholds",
    "TeacherStudent",
    "Theorem5Story",
    "Theorem6Story",
    "VerifierPhases",
    "accuracy_variance_grid",
    "beneficial_errors",
    "counterexample_instance",
    "flat_landscape",
    "group_exponents",
    "remark_1",
    "section_4_1",
    "section_4_1_world",
    "sequence_teachers",
    "step_thresholds",
    "teacher_student",
    "theorem_5_story",
    "theorem_6_story",
    "top_sequences",
    "verifier_phases",
]
