"""Evaluate real reward models from score dumps: accuracy, reward variance under the policy,
verifier rates, and the teaching speed the exact flow predicts on the sampled support
(arXiv 2503.15477: a reward model is judged by the variance it induces, not its accuracy alone).

:func:`load_dump` reads a dump, :func:`measure_dump` gives every measure with an interval,
:func:`predict` runs the tabular flow on the support, :func:`evaluate` does all three and
:func:`write_report` writes report.md, JSON and figures (``theory-sim evaluate``).
:mod:`.worlds` builds dumps where the exact values are known.
"""

from theory_sim.evaluate.dump import Dump as Dump
from theory_sim.evaluate.dump import load_dump as load_dump
from theory_sim.evaluate.evaluation import Evaluation as Evaluation
from theory_sim.evaluate.evaluation import evaluate as evaluate
from theory_sim.evaluate.evaluation import write_report as write_report
from theory_sim.evaluate.measures import Measure as Measure
from theory_sim.evaluate.measures import measure_dump as measure_dump
from theory_sim.evaluate.teaching import Teaching as Teaching
from theory_sim.evaluate.teaching import kendall_tau as kendall_tau
from theory_sim.evaluate.teaching import predict as predict

__all__ = [
    "Dump",
    "Evaluation",
    "Measure",
    "Teaching",
    "evaluate",
    "kendall_tau",
    "load_dump",
    "measure_dump",
    "predict",
    "write_report",
]
