"""What every check shares: :class:`Check`, its tolerances, :func:`tightest` and the helpers
that measure t_gamma for a time bound."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from theory_sim._validation import (
    check_reward_range,
)
from theory_sim.flow import (
    DEFAULT_ATOL,
    DEFAULT_MAX_STEPS,
    DEFAULT_RTOL,
)
from theory_sim.flow.crossing import _gain_arguments, _solve_gain
from theory_sim.metrics import _host_reward_variance
from theory_sim.policies import Tabular
from theory_sim.problem import Problem

# t_gamma is computed with relative error below 1e-9 (solver rtol 1e-10; measured against the
# two-output closed form in tests/test_flow.py). A measured time may therefore undershoot a tight
# bound by round-off; 1e-6 of slack absorbs that and is far below any genuine violation.
TIME_RTOL = 1e-6
# Trajectory quantities (variances, parameter norms) are solver outputs with errors of order rtol
# relative to their size; 1e-6 relative slack on their ratio to the bound covers them.
RATIO_RTOL = 1e-6


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of checking one claim on one instance.

    Attributes:
        claim: the paper's result, e.g. "Proposition 3".
        instance: a short description of the instance.
        measured: the measured side (e.g. t_gamma).
        bound: the paper's side.
        relation: ">=" (measured must be at least bound), "<=" or "==" (equal up to round-off).
        holds: whether measured relation bound holds within the stated tolerance.
        details: everything else worth reporting (Var0, gamma, lambda, ...).
        vacuous: why the row could not have failed, or "" when it tests something. Set by the
            check where only it knows (a Best-of-N comparison that includes a perfectly accurate
            model); filled in here for the generic cases: a lower bound against an infinite
            measurement (t_gamma = inf: the target is never reached), a lower bound <= 0, an
            infinite upper bound.

    Derived: ``ratio`` = measured / bound and ``status``, one of "holds", "fails", "vacuous".
    """

    claim: str
    instance: str
    measured: float
    bound: float
    relation: str
    holds: bool
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    vacuous: str = ""

    def __post_init__(self):
        if not self.vacuous:
            object.__setattr__(self, "vacuous", _vacuity(self.measured, self.bound, self.relation))

    @property
    def ratio(self) -> float:
        """measured / bound: >= 1 where a lower bound holds, <= 1 where an upper bound holds; the
        closer to 1, the tighter. nan when both sides are 0 or both infinite."""
        measured, bound = float(self.measured), float(self.bound)
        if bound == 0.0:
            return math.nan if measured == 0.0 else math.copysign(math.inf, measured)
        if math.isinf(measured) and math.isinf(bound):
            return math.nan
        return measured / bound

    @property
    def status(self) -> str:
        """ "fails" if the claim does not hold, else "vacuous" if it could not have failed, else
        "holds"."""
        if not self.holds:
            return "fails"
        return "vacuous" if self.vacuous else "holds"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio, "status": self.status}


def _vacuity(measured: float, bound: float, relation: str) -> str:
    """Why ``measured relation bound`` cannot fail, or "" (see :class:`Check`)."""
    measured, bound = float(measured), float(bound)
    if relation == ">=":
        if measured == math.inf:
            return "measured is inf (the target is never reached): a lower bound holds trivially"
        if bound <= 0.0:
            return "the lower bound is <= 0"
    if relation == "<=" and bound == math.inf:
        return "the upper bound is inf"
    return ""


def tightest(checks) -> dict[str, dict[str, Any]]:
    """Per claim: counts by status and the tightest ratio among the rows that hold.

    Tightest means the smallest measured/bound for a lower bound (">="), the largest for an upper
    bound ("<="), and for an equality the largest relative deviation |ratio - 1|. Vacuous and
    failing rows do not enter the ratio (a failing row is reported as such).
    """
    if not isinstance(checks, list | tuple):
        raise TypeError(f"`checks` must be a list of Check; got {type(checks).__name__}.")
    if not all(isinstance(c, Check) for c in checks):
        raise TypeError("`checks` must be a list of Check; it holds other objects.")
    summary: dict[str, dict[str, Any]] = {}
    for c in checks:
        entry = summary.setdefault(
            c.claim,
            {
                "relation": c.relation,
                "holds": 0,
                "fails": 0,
                "vacuous": 0,
                "tightest": math.nan,
                "of": "measured" if float(c.bound) == 0.0 else "ratio",
            },
        )
        entry[c.status] += 1
        ratio = float(c.measured) if entry["of"] == "measured" else c.ratio
        if c.status != "holds" or math.isnan(ratio):
            continue
        if c.relation == "==":
            ratio = abs(ratio - 1.0)
        best = entry["tightest"]
        if math.isnan(best):
            entry["tightest"] = ratio
        elif c.relation == ">=":
            entry["tightest"] = min(best, ratio)
        else:
            entry["tightest"] = max(best, ratio)
    return summary


def _initial_variance(problem: Problem, prompt: int) -> float:
    probs = np.exp(np.asarray(problem.ref_log_probs)[prompt])
    return float(_host_reward_variance(probs, np.asarray(problem.reward_rm)[prompt]))


def _require_tabular(problem: Problem, claim: str) -> None:
    if not isinstance(problem.policy, Tabular):
        raise ValueError(f"{claim} is about tabular policies; `problem` uses {problem.policy!r}.")


def _gain_time(problem: Problem, gamma, reward, prompt, t_max, claim: str):
    """Validated (gamma, prompt, t_max) and the measured t_gamma for a time lower bound.

    Both rewards must lie in [-1, 1], the range the bounds' constants assume.
    """
    gamma, table, prompt, t_max = _gain_arguments(problem, gamma, reward, prompt, t_max)
    check_reward_range("reward_rm", np.asarray(problem.reward_rm), claim)
    check_reward_range("reward", np.asarray(table), claim)
    measured = _solve_gain(
        problem,
        table,
        prompt,
        gamma,
        t_max,
        "adaptive",
        None,
        DEFAULT_RTOL,
        DEFAULT_ATOL,
        DEFAULT_MAX_STEPS,
    ).time
    return gamma, prompt, t_max, measured


def _time_lower_bound_check(claim, instance, measured, bound, details) -> Check:
    """A row for t_gamma >= bound: holds within the solver's relative accuracy TIME_RTOL."""
    return Check(
        claim=claim,
        instance=instance,
        measured=measured,
        bound=bound,
        relation=">=",
        holds=bool(measured >= bound * (1.0 - TIME_RTOL)),
        details=details,
    )


def _upper_bound_check(claim, instance, measured, bound, details, rtol=RATIO_RTOL) -> Check:
    """A row for measured <= bound: holds within the relative tolerance ``rtol`` (RATIO_RTOL for
    quantities exact to round-off, TIME_RTOL for solved times). Every upper-bound row with a
    relative tolerance is built here, so each bound's value is written once and its verdict
    follows from it (a strict comparison, or an absolute tolerance on exact sums, is its own)."""
    return Check(
        claim=claim,
        instance=instance,
        measured=measured,
        bound=bound,
        relation="<=",
        holds=bool(measured <= bound * (1.0 + rtol)),
        details=details,
    )


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=-1, keepdims=True)
    return m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True))


def _describe(problem: Problem, prompt: int) -> str:
    return (
        f"X={problem.num_prompts} Y={problem.num_outputs} "
        f"lambda={float(problem.kl_coef):g} x={prompt}"
    )


def _one_prompt_time(
    init_probs, reward_rm, reward_gt, kl_coef, gamma, num_prompts, claim: str
) -> float:
    """t_gamma of r_G for |S| identical copies of one prompt, tabular policy started at pi_0."""
    logits = np.tile(np.log(init_probs), (num_prompts, 1))
    problem = Problem(
        logits,
        np.tile(reward_rm, (num_prompts, 1)),
        np.tile(reward_gt, (num_prompts, 1)),
        kl_coef=kl_coef,
    )
    return _gain_time(problem, gamma, None, 0, 1e12, claim)[3]
