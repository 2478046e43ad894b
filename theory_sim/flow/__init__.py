"""Gradient flow d theta/dt = grad phi(theta) and the time to gain gamma.

Section 2 of arXiv 2503.15477. The package, by concept:

* :mod:`.coordinates`: the state w = theta - base, the vector field, per-prompt slices;
* :mod:`.limit`: the certified limit (KL and total-variation bounds on every later state);
* :mod:`.solve`: adaptive solves (Tsit5, then Kvaerno5 for a stiff tail) in segments;
* :mod:`.euler`: Euler's path and the crossing on its segments;
* :mod:`.trajectory`: :func:`gradient_flow` and :class:`Trajectory`;
* :mod:`.crossing`: :func:`time_to_gain`, :class:`GainTime` and the first-crossing search.

Two integrators share one vector field:

* ``method="adaptive"`` (default): diffrax's Tsit5 with a PID step-size controller at rtol 1e-10.
  Flat landscapes (tiny reward variance) make the field tiny, so the controller takes huge steps:
  times up to 1e8 and beyond cost a few hundred gradient evaluations.
* ``method="euler"``: theta_{k+1} = theta_k + dt grad phi(theta_k), exactly gradient ascent with
  step size dt; between steps the path is the straight segment (Euler's own continuous extension).

t_gamma, the first time with E_{pi_t} r(x, .) >= E_{pi_0} r(x, .) + gamma, is found by event
detection on the adaptive solution and root finding (Newton) on its dense interpolant; for Euler
by bisection on the segment where the crossing happens. It is +inf when not reached by t_max.

Beyond a step: a solve also stops at every local maximum of the evaluated gain (a down-crossing of
its time derivative <grad g, field>), so a target that the gain reaches only inside one step is not
missed: a maximum below the target restarts the solve; one above it sends the solve back over its
last segment, up to the maximum, where bisection on the last step locates the crossing. Euler
segments are checked the same way (interior maximum by bisection on the slope's sign).

Long horizons. With lambda > 0 an expressive (tabular, autoregressive) flow converges to
pi* proportional to pi_0 exp(r_RM / lambda). Near it an explicit solver's step is capped by
stability, and round-off in the field would cap any solver's step. Therefore:

* The state is w = theta - base with base the normalised parameters of pi* (of pi_0 when
  lambda = 0; 0 for log-linear policies). Since r_KL - E_pi r_KL = -lambda (u - E_pi u) with
  u = log pi - log pi*, and u is computed from w by log1p/expm1 (``relative_log_probs``), the
  field is exactly 0 at the limit and accurate relative to the distance from it. Where
  log pi*(y|x) lies more than ``LIMIT_DEPTH`` = 1e4 below log pi_0(y|x) (r / lambda beyond 1e4),
  base follows pi* only down to that floor and u carries the rest as a fixed offset: measured
  from pi* itself, such a state would hold a huge constant plus the O(log t) it moves, losing
  up to a third of its digits, enough to stall an explicit solve at r / lambda = 1e13. The field
  stays exact (the offset is added, not dropped); only its exact zero at a floored entry's limit
  is given up, which a flow would need log pi to fall by 1e4 to approach (log pi falls like
  -log t on a flat tail). The field is the
  closed-form cotangent (1/X) pi (r_KL - E_pi r_KL) on the log-probability table, pulled back
  through the parameterisation's VJP.
* Every prompt of an expressive policy is solved on its own, as prompts evolve independently.
* Certificate: phi(theta; x) = lambda ln Z_x - lambda KL(pi || pi*) never decreases, so
  K = KL(pi_t || pi*) bounds KL(pi_s || pi*) for every s >= t, and with it the total
  variation TV(pi_s, pi*) (:mod:`.limit`): the smaller of Pinsker's sqrt(K / 2) and a
  per-output bound that is far sharper when pi* spans many decades. Once that bound is at
  most 1e-10 (ten times inside the 1e-9 promised for saved states) the solve stops and every
  later save is the limit
  (``Trajectory.converged_at``). KL is summed as pi* f(u), f(u) = u expm1(u) - (expm1(u) - u), so
  values near 1e-20 are computed without cancellation.
* By the same bound, E_{pi_s} r <= E_{pi*} r + (max r - min r) TV for all later s, which
  proves a target unreachable (``GainTime.ended == "unreachable"``).
* When pi* spans many decades its smallest entries converge last and the certificate may not
  fire. After ``EXPLICIT_BUDGET`` explicit steps such a stiff tail is continued by Kvaerno5
  (L-stable, implicit, dense Jacobian) for problems of up to ``IMPLICIT_MAX_PARAMS`` parameters per
  prompt (``Trajectory.implicit_from``). A solve that still stops early raises RuntimeError saying
  where it stopped and why.
"""

from theory_sim.flow.coordinates import LIMIT_DEPTH as LIMIT_DEPTH
from theory_sim.flow.crossing import GAIN_RESOLUTION as GAIN_RESOLUTION
from theory_sim.flow.crossing import GainTime as GainTime
from theory_sim.flow.crossing import time_to_gain as time_to_gain
from theory_sim.flow.crossing import time_to_gain_details as time_to_gain_details
from theory_sim.flow.euler import EULER_MAX_STEPS as EULER_MAX_STEPS
from theory_sim.flow.solve import DEFAULT_ATOL as DEFAULT_ATOL
from theory_sim.flow.solve import DEFAULT_MAX_STEPS as DEFAULT_MAX_STEPS
from theory_sim.flow.solve import DEFAULT_RTOL as DEFAULT_RTOL
from theory_sim.flow.solve import EXPLICIT_BUDGET as EXPLICIT_BUDGET
from theory_sim.flow.solve import IMPLICIT_MAX_PARAMS as IMPLICIT_MAX_PARAMS
from theory_sim.flow.solve import default_save_ts as default_save_ts
from theory_sim.flow.trajectory import Trajectory as Trajectory
from theory_sim.flow.trajectory import gradient_flow as gradient_flow

__all__ = [
    "GainTime",
    "Trajectory",
    "default_save_ts",
    "gradient_flow",
    "time_to_gain",
    "time_to_gain_details",
]
