"""How close the paper's constants are to sharp: a seeded adversarial search per bound.

For each bound of arXiv 2503.15477 with a constant in it (Lemma 8, Propositions 2, 3 and 4,
Theorem 4, the fast bounds of Theorems 5 and 6, Lemma 10) :func:`search_tightness` looks for the
instance on which the bound is closest to its measured side. The figure of merit is the slack

    slack = measured / bound   for a lower bound (t_gamma >= bound),
    slack = bound / measured   for an upper bound (measured <= bound),

>= 1 where the claim holds and 1 where it is sharp on that instance; a constant c in the bound
could be multiplied by the smallest slack found and still hold on every instance tried. A slack
below 1 is a violation: the search reports it as a failing :class:`Check` with its instance,
never drops it.

Two searches, by what the measured side is:

* Lemma 8 (||grad phi(.; x)||_1 <= sqrt(Var_pi r_KL)) and Proposition 2
  (||grad phi(.; x)||_2 <= 6 M^(1/3) L J Var_pi[r_KL]^(1/3)) are inequalities at one point
  (theta, pi_0, r_RM, lambda). Both sides are smooth functions of the instance, so the search is
  Adam (optax) on log slack from seeded random starts, vmapped, differentiating with JAX through
  exactly the function the checks evaluate (:func:`~theory_sim.theorems.flat._gradient_terms`).
  Every theta is admissible: the propositions hold at every theta, and the states of a flow from
  pi_0 are some of them.
* The time bounds measure t_gamma (or a maximum along a flow) with an adaptive solve: a first
  passage time, piecewise smooth in the instance, with branches where targets become unreachable
  or conditions fail. The search is CMA-ES (``cma``, Hansen's reference implementation, seeded)
  over an unconstrained vector decoded into a valid instance (probabilities by softmax, rewards by
  tanh into (-1, 1), gamma as a fraction of the reachable gain, lambda as a fraction of the
  claim's limit where it has one). Instances whose conditions fail, or whose row is vacuous
  (t_gamma = inf), score a fixed penalty. Each evaluation calls the same ``check_*`` function as
  ``theory-sim check``, so the tightest instance is reported by the code that checks it.

Reductions: the tabular time bounds are searched with |S| = 1. Prompts evolve independently and
every time and every bound scales exactly with |S| (theory.md, Section 2), so the slack does not
depend on |S|. Theorem 4 is searched with one prompt: a second prompt only enters through the
mean of Var0 over prompts, which with t_gamma scaled by |S| = 2 loosens the bound.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory_sim import _names as names
from theory_sim import _random
from theory_sim._names import require_same
from theory_sim._validation import check_choice, check_int, check_seed
from theory_sim.instances import target_gain
from theory_sim.policies import Autoregressive, Tabular
from theory_sim.problem import Problem
from theory_sim.rewards import theorem_5_models
from theory_sim.theorems._common import Check, _upper_bound_check
from theory_sim.theorems.accuracy import check_theorem_5
from theory_sim.theorems.flat import (
    _prompt_gradients,
    check_proposition_3,
    check_theorem_4,
    proposition_2_rhs,
)
from theory_sim.theorems.teacher import (
    check_lemma_10,
    check_proposition_4,
    check_theorem_6,
    proposition_4_conditions,
)
from theory_sim.training import _optax_promotion

# log slack given to an instance that tests nothing (conditions fail, t_gamma = inf): far above
# any real instance's (slacks seen are below 1e6, log 14), finite so that CMA-ES can rank it.
PENALTY = 50.0


@dataclasses.dataclass(frozen=True)
class Tightest:
    """The tightest instance a search found for one claim.

    Attributes:
        claim: the claim's row name in ``theory-sim check``.
        relation: ">=" (lower bound) or "<=" (upper bound).
        slack: measured/bound (lower) or bound/measured (upper) at the tightest instance: >= 1
            where the claim holds, 1 where it is sharp, < 1 a violation.
        check: the claim's :class:`Check` at that instance (its status says holds or fails).
        instance: the inputs that rebuild it (lists of floats), by the claim's own names.
        method: "Adam" or "CMA-ES", with its budget.
        evaluations: instances evaluated.
        by_size: the smallest slack found per output-space size.
        history: the best slack so far after each generation (CMA-ES) or step block (Adam).
        failures: instances whose solve raised (skipped, not scored), with the first message
            in ``failure``; each is a defect of the solver on that instance, worth reporting.
    """

    claim: str
    relation: str
    slack: float
    check: Check
    instance: dict[str, Any]
    method: str
    evaluations: int
    by_size: dict[str, float]
    history: tuple[float, ...]
    failures: int = 0
    failure: str = ""

    @property
    def violated(self) -> bool:
        return not self.check.holds

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["check"] = self.check.as_dict()
        out["violated"] = self.violated
        return out


def slack(check: Check) -> float:
    """measured/bound for a lower bound, bound/measured for an upper bound (see module)."""
    ratio = check.ratio
    if check.relation == ">=":
        return ratio
    return 1.0 / ratio if ratio != 0 else math.inf


# ---------------------------------------------------------------------------------------------
# decoding an unconstrained vector into an instance (CMA-ES)


def _probs(z: np.ndarray) -> np.ndarray:
    logits = np.clip(z, -20.0, 20.0)  # min probability >= e^-40 / Y: finite logits
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _unit(z) -> float:
    return float(1.0 / (1.0 + math.exp(-float(np.clip(z, -30.0, 30.0)))))


def _lambda(z) -> float:
    """lambda = 10^z on [1e-6, 10], and exactly 0 below (a fraction of the search space)."""
    return 0.0 if z < -6.0 else float(10.0 ** min(float(z), 1.0))


def _gain_fraction(z, reward, probs) -> float:
    """gamma as a fraction in (0, 1) of the largest gain max_y r(y) - E_pi0 r."""
    return _unit(z) * (float(reward.max()) - float(probs @ reward))


def _reachable(z, problem: Problem, table) -> float:
    """gamma as a fraction in (0, 1) of the gain the flow reaches (the limit policy's gain: the
    instances of ``theory-sim check`` choose their targets the same way), so that most decoded
    instances test the bound instead of scoring the penalty."""
    return target_gain(problem, 0, table, _unit(z))


def _tabular(probs, r_rm, r_gt=None, kl_coef=0.0) -> Problem:
    r_gt = r_rm if r_gt is None else r_gt
    return Problem(np.log(probs)[None], r_rm[None], r_gt[None], kl_coef=kl_coef)


def _proposition_3(z, n):
    probs, r_rm, r_gt = _probs(z[:n]), np.tanh(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n])
    problem = _tabular(probs, r_rm, r_gt, _lambda(z[3 * n + 1]))
    gamma = _reachable(z[3 * n], problem, problem.reward_gt)
    inst = {"init_probs": probs, "reward_rm": r_rm, "reward_gt": r_gt, "gamma": gamma}
    inst["kl_coef"] = float(problem.kl_coef)
    return [check_proposition_3(problem, gamma)], inst


def _theorem_4(z, size):
    vocab, length = size
    n = vocab**length
    probs, r_rm, r_gt = _probs(z[:n]), np.tanh(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n])
    lam = _lambda(z[3 * n + 1])
    policy = Autoregressive(vocab, length)
    problem = Problem(
        policy.init_params(probs[None]), r_rm[None], r_gt[None], kl_coef=lam, policy=policy
    )
    gamma = _reachable(z[3 * n], problem, problem.reward_gt)
    inst = {"init_probs": probs, "reward_rm": r_rm, "reward_gt": r_gt, "gamma": gamma}
    inst.update(kl_coef=lam, vocab_size=vocab, length=length)
    return [check_theorem_4(problem, gamma)], inst


def _theorem_5_fast(z, n):
    probs, r_gt = _probs(z[:n]), np.tanh(z[n : 2 * n])
    gamma = _gain_fraction(z[2 * n], r_gt, probs)
    limit = theorem_5_models(probs, r_gt, gamma, 10.0).fast_kl_limit
    lam = _unit(z[2 * n + 1]) * limit
    rows = check_theorem_5(probs, r_gt, gamma, 10.0, lam)
    inst = {"init_probs": probs, "reward_gt": r_gt, "gamma": gamma, "kl_coef": lam, "T": 10.0}
    return [r for r in rows if r.claim == "Theorem 5: fast model time"], inst


def _theorem_6_matching(z, n):
    r_gt = np.tanh(z[:n])
    top = np.sort(r_gt)
    gamma = _unit(z[n]) * float(top[-2] - top[0])
    T = 1.0 + math.exp(float(np.clip(z[n + 1], -5.0, 8.0)))
    c = _unit(z[n + 2]) * (1.0 - T**-2)  # room for the other outputs: c + T^-2 < 1
    rows = check_theorem_6(r_gt, gamma, T, c)
    inst = {"reward_gt": r_gt, "gamma": gamma, "T": T, "c": c}
    return [r for r in rows if r.claim == "Theorem 6: matching model time"], inst


def _proposition_4(z, n):
    probs, r_gt, r_rm = _probs(z[:n]), np.tanh(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n])
    # Y+ = every output above r_RM's mean, so Y_bad is empty (the only Y_bad checked)
    y_plus = tuple(int(y) for y in np.flatnonzero(r_rm > probs @ r_rm))
    if not y_plus:
        raise ValueError("r_RM is constant: Y+ is empty")
    gap = float(r_gt[list(y_plus)].min()) - float(probs @ r_gt)
    if gap <= 0:
        raise ValueError("no gamma > 0 is below the gap of Y+")
    gamma = _unit(z[3 * n]) * gap
    limit = proposition_4_conditions(probs, r_gt, r_rm, gamma, y_plus).kl_limit
    lam = _unit(z[3 * n + 1]) * max(limit, 0.0)
    check = check_proposition_4(probs, r_gt, r_rm, gamma, y_plus, lam)
    inst = {"init_probs": probs, "reward_gt": r_gt, "reward_rm": r_rm, "gamma": gamma}
    inst.update(y_plus=list(y_plus), kl_coef=lam)
    return [check], inst


def _lemma_10(z, n):
    probs, r_rm, lam = _probs(z[:n]), np.tanh(z[n : 2 * n]), _lambda(z[2 * n])
    inst = {"init_probs": probs, "reward_rm": r_rm, "kl_coef": lam}
    row = check_lemma_10(_tabular(probs, r_rm, kl_coef=lam))
    # measured on the exponent (see check_lemma_10): the ratio itself is sharp at t -> 0
    used = row.details["exponent_fraction"]
    return [_upper_bound_check(row.claim, row.instance, used, row.bound, row.details)], inst


@dataclasses.dataclass(frozen=True)
class _Search:
    """A claim's search: its relation, sizes and, for CMA-ES, the dimension of the vector and
    the decoder-and-check (None: the pointwise Adam search)."""

    relation: str
    sizes: tuple
    dim: Callable[[Any], int] | None = None
    evaluate: Callable[[np.ndarray, Any], tuple[list[Check], dict]] | None = None


def _outputs(size) -> int:
    return size if isinstance(size, int) else size[0] ** size[1]


# The sizes: Y in {2, 3, 6} for tabular policies (Theorem 6 in {4, 6}: with Y = 3 the two
# families share one other output, and a common V0 needs r_G(y_gamma) = r_G(y_gamma')), (V, L) in
# {(2, 1), (2, 2), (2, 3)} for Theorem 4's autoregressive policies; the tabular time bounds all
# solve for shapes [1, Y], so the compiled solves are shared between claims.
SEARCHES: dict[str, _Search] = {
    "Lemma 8": _Search("<=", (2, 3, 6)),
    "Proposition 2": _Search("<=", (2, 3, 6, (2, 2))),
    "Proposition 3": _Search(">=", (2, 3, 6), lambda n: 3 * n + 2, _proposition_3),
    "Theorem 4": _Search(">=", ((2, 1), (2, 2), (2, 3)), lambda s: 3 * _outputs(s) + 2, _theorem_4),
    "Theorem 5: fast model time": _Search("<=", (2, 3, 6), lambda n: 2 * n + 2, _theorem_5_fast),
    "Theorem 6: matching model time": _Search("<=", (4, 6), lambda n: n + 3, _theorem_6_matching),
    "Proposition 4": _Search("<=", (2, 3, 6), lambda n: 3 * n + 2, _proposition_4),
    "Lemma 10": _Search("<=", (2, 3, 6), lambda n: 2 * n + 1, _lemma_10),
}
TIGHTNESS_CLAIMS = tuple(SEARCHES)
require_same("TIGHTNESS_CLAIMS", names.TIGHTNESS_CLAIMS, TIGHTNESS_CLAIMS)  # the CLI lists these


def _size_label(size) -> str:
    return f"Y={size}" if isinstance(size, int) else f"V={size[0]} L={size[1]}"


def _log_slack(rows: list[Check]) -> tuple[float, Check | None]:
    """The smallest log slack over a claim's rows (PENALTY if none tests anything)."""
    best, best_row = PENALTY, None
    for row in rows:
        if row.status == "vacuous":
            continue
        s = slack(row)
        if math.isnan(s) or s <= 0 or math.isinf(s):
            continue
        if math.log(s) < best:
            best, best_row = math.log(s), row
    return best, best_row


def _cma_search(claim: str, search: _Search, seed: int, evaluations: int, progress) -> Tightest:
    import cma

    per_size = max(evaluations // len(search.sizes), 8)
    best, best_z = (math.inf, None, None, None), None
    by_size, history, used, failures, failure = {}, [], 0, 0, ""
    for k, size in enumerate(search.sizes):
        dim = search.dim(size)
        size_best, size_used, restart = math.inf, 0, 0
        # restarts from a new point until the size's budget is spent (CMA-ES stops by itself
        # once its step has shrunk below its tolerances)
        while size_used < per_size:
            options = {
                # cma reads seed 0 as "from the clock": shifted, every seed is reproducible
                "seed": 1 + seed * 1009 + k + 7919 * restart,
                "maxfevals": per_size - size_used,
                "verbose": -9,
                "verb_log": 0,
                "verb_disp": 0,
            }
            start = np.random.default_rng([seed, k, restart]).normal(size=dim)
            es = cma.CMAEvolutionStrategy(start, 1.0, options)
            while not es.stop():
                zs = es.ask()
                scores = []
                for z in zs:
                    try:
                        rows, inst = search.evaluate(np.asarray(z), size)
                    except ValueError:  # the decoded instance fails the claim's conditions
                        rows, inst = [], None
                    except RuntimeError as err:  # a solve that failed: counted, not scored
                        rows, inst = [], None
                        failures += 1
                        failure = (
                            failure or f"{_size_label(size)} z={np.asarray(z).tolist()}: {err}"
                        )
                    score, row = _log_slack(rows)
                    scores.append(score)
                    if row is not None and score < best[0]:
                        best, best_z = (score, row, inst, size), np.array(z)
                    size_best = min(size_best, score)
                with warnings.catch_warnings():
                    # cma warns when a whole generation scores the same penalty; it then widens
                    # its step by itself, which is the right response here
                    warnings.simplefilter("ignore", UserWarning)
                    es.tell(zs, scores)
                used += len(zs)
                size_used += len(zs)
                history.append(math.exp(best[0]) if best[1] is not None else math.inf)
                if progress is not None:
                    progress(min(used, evaluations), evaluations, claim)
            restart += 1
        by_size[_size_label(size)] = math.exp(size_best) if size_best < PENALTY else math.inf
    score, row, inst, size = best
    if row is None:
        raise RuntimeError(
            f"the tightness search for {claim} found no instance that tests the bound in "
            f"{used} evaluations; raise `evaluations`."
        )
    inst = {
        k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in inst.items()
    }
    inst.update(size=_size_label(size), z=best_z.tolist())
    return Tightest(
        claim,
        search.relation,
        slack(row),
        row,
        inst,
        f"CMA-ES ({per_size} evaluations per size)",
        used,
        by_size,
        tuple(history),
        failures,
        failure,
    )


# ---------------------------------------------------------------------------------------------
# the pointwise bounds (Adam through the exact quantities)


def _pointwise_template(size) -> Problem:
    """A valid problem of the size (its policy and parameter shape are what the search uses)."""
    if isinstance(size, int):
        policy, n = Tabular(), size
        params = np.zeros((1, n))
    else:
        policy, n = Autoregressive(*size), _outputs(size)
        params = policy.init_params(np.full((1, n), 1.0 / n))
    return Problem(params, np.zeros((1, n)), policy=policy)


def _pointwise_split(z, shape, n):
    """z -> (theta_0 = pi_0's parameters, theta, r_RM, lambda): theta = theta_0 + a shift."""
    p = int(np.prod(shape))
    ref = jnp.reshape(z[:p], shape)
    theta = ref + jnp.reshape(z[p : 2 * p], shape)
    reward = jnp.tanh(z[2 * p : 2 * p + n])[None]
    lam = jnp.exp(jnp.clip(z[2 * p + n], -12.0, 3.0))
    return ref, theta, reward, lam


def _pointwise_problem(policy, ref, reward, lam) -> Problem:
    # a Problem's pytree constructor (no validation: the leaves may be tracers)
    children = (policy, ref, reward, reward, lam, policy.log_probs(ref))
    return Problem.tree_unflatten(False, children)


def _pointwise_sides(claim: str, terms, length: int, jacobian):
    """(left side, right side) of Lemma 8 (||grad||_1 <= Var^(1/2)) or Proposition 2 from
    :func:`~theory_sim.theorems.flat._gradient_terms`' (l2, l1, Var, max |r_KL|); numbers or
    traced arrays alike."""
    l2, l1, var, max_abs = terms
    if claim == "Lemma 8":
        return l1, var**0.5
    return l2, proposition_2_rhs(max_abs, length, jacobian, var)


def _pointwise_log_slack(claim: str, policy, shape, n, z):
    ref, theta, reward, lam = _pointwise_split(z, shape, n)
    problem = _pointwise_problem(policy, ref, reward, lam)
    terms = jax.tree_util.tree_map(lambda a: a[0], _prompt_gradients(problem, theta[None], 0))
    # J = 1 for tabular and autoregressive logits (a coordinate selection)
    lhs, rhs = _pointwise_sides(claim, terms, policy.length, 1.0)
    return jnp.log(rhs) - jnp.log(lhs)


@functools.partial(jax.jit, static_argnames=("claim", "shape", "n", "steps"))
def _descend(claim, policy, shape, n, z0, steps):
    """``steps`` Adam steps (rate 0.05) on the log slack from each start (the rows of ``z0``):
    (final points, the slack along each run [starts, steps], the final slacks). Compiled once
    per claim and size, not per search."""
    optimiser = optax.adam(0.05)

    def loss(z):
        return _pointwise_log_slack(claim, policy, shape, n, z)

    def descend(z_start):
        def step(carry, _):
            z, state = carry
            value, grad = jax.value_and_grad(loss)(z)
            # a start that reaches a point mass (Var = 0: 0/0) stops where it is
            grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
            updates, state = optimiser.update(grad, state, z)
            return (optax.apply_updates(z, updates), state), value

        init = (z_start, optimiser.init(z_start))
        (z, _), values = jax.lax.scan(step, init, None, length=steps)
        return z, values, loss(z)

    return jax.vmap(descend)(z0)


def _pointwise_check(claim: str, template: Problem, z, size) -> tuple[Check, dict]:
    """The claim's Check at the instance z decodes to, on a validated Problem."""
    shape, n, policy = template.params0.shape, template.num_outputs, template.policy
    ref, theta, reward, lam = (np.asarray(a) for a in _pointwise_split(jnp.asarray(z), shape, n))
    problem = Problem(ref, reward, kl_coef=float(lam), policy=policy)
    terms = tuple(
        float(np.asarray(a)[0]) for a in _prompt_gradients(problem, jnp.asarray(theta)[None], 0)
    )
    jac = policy.jacobian_norm(problem.params0, 0)
    label = f"{_size_label(size)} lambda={float(lam):.3g}"
    details = {"kl_coef": float(lam), "variance": terms[2], "max_abs_r_kl": terms[3]}
    if claim == "Proposition 2":
        details.update(length=policy.length, jacobian=jac)
    lhs, rhs = (float(side) for side in _pointwise_sides(claim, terms, policy.length, jac))
    # both sides vanish at a point mass: the bound holds with equality there (ratio 0)
    ratio = lhs / rhs if rhs > 0 else (math.inf if lhs > 0 else 0.0)
    check = _upper_bound_check(claim, label, ratio, 1.0, details)
    inst = {
        "ref_params": ref.tolist(),
        "params": theta.tolist(),
        "reward_rm": reward.tolist(),
        "kl_coef": float(lam),
        "size": _size_label(size),
        "z": np.asarray(z).tolist(),
    }
    return check, inst


def _adam_search(claim, search: _Search, seed, evaluations, progress, steps=200) -> Tightest:
    # one start costs far less than one solve of a time bound: a quarter of the budget in
    # starts, each run for ``steps`` Adam steps
    starts = max(evaluations // (4 * len(search.sizes)), 4)
    best = (math.inf, None, None)
    by_size, history, used = {}, [], 0
    for k, size in enumerate(search.sizes):
        template = _pointwise_template(size)
        policy, shape, n = template.policy, template.params0.shape, template.num_outputs
        # theta_0 and theta (each the policy's parameter count), r_RM and lambda
        dim = 2 * int(np.prod(shape)) + n + 1
        key = jax.random.fold_in(jax.random.key(seed), k)
        z0 = _random.normal(key, (starts, dim))
        with _optax_promotion():
            zs, values, finals = _descend(claim, policy, shape, n, z0, steps)
        finals = np.asarray(finals)
        finals = np.where(np.isfinite(finals), finals, np.inf)
        i = int(np.argmin(finals))
        check, inst = _pointwise_check(claim, template, np.asarray(zs[i]), size)
        size_slack = slack(check)
        by_size[_size_label(size)] = size_slack
        if size_slack < best[0]:
            best = (size_slack, check, inst)
        trace = np.asarray(values)
        trace = np.where(np.isfinite(trace), trace, np.inf).min(axis=0)
        history += [float(min(math.exp(v), best[0])) for v in trace[:: max(steps // 20, 1)]]
        used += starts * steps
        if progress is not None:
            progress(evaluations * (k + 1) // len(search.sizes), evaluations, claim)
    return Tightest(
        claim,
        search.relation,
        best[0],
        best[1],
        best[2],
        f"Adam ({starts} starts x {steps} steps per size)",
        used,
        by_size,
        tuple(history),
    )


def _parse_size(label: str):
    parts = dict(p.split("=") for p in label.split())
    return int(parts["Y"]) if "Y" in parts else (int(parts["V"]), int(parts["L"]))


def recheck(claim: str, instance: dict) -> Check:
    """The claim's Check, recomputed from a :class:`Tightest`'s ``instance`` (its ``size`` and
    search vector ``z``): the tightest instances are kept as regression tests this way."""
    claim = check_choice("claim", claim, SEARCHES)
    size, z = _parse_size(instance["size"]), np.asarray(instance["z"], dtype=np.float64)
    search = SEARCHES[claim]
    if search.evaluate is None:
        return _pointwise_check(claim, _pointwise_template(size), z, size)[0]
    rows = search.evaluate(z, size)[0]
    return min(rows, key=slack)


def search_tightness(
    claim: str, *, seed: int = 0, evaluations: int = 240, sizes=None, progress=None
) -> Tightest:
    """The tightest instance found for one claim (see the module for the searches).

    Args:
        claim: one of :data:`TIGHTNESS_CLAIMS`.
        seed: the search's seed: the same seed gives the same instance and numbers.
        evaluations: the budget, split over the claim's sizes: instances for CMA-ES; for Adam,
            evaluations / 4 starts (at least 4 per size) of 200 steps each.
        sizes: a subset of the claim's sizes to search (default all; see :data:`SEARCHES`).
        progress: optional callable(done, total, claim).

    Returns:
        A :class:`Tightest`; ``violated`` is True (and ``check.holds`` False) if the slack found is
        below 1 by more than the check's tolerance.
    """
    claim = check_choice("claim", claim, SEARCHES)
    seed = check_seed("seed", seed)
    evaluations = check_int("evaluations", evaluations, 8)
    search = SEARCHES[claim]
    if sizes is not None:
        sizes = tuple(s if isinstance(s, int) else tuple(s) for s in sizes)
        if not sizes or any(s not in search.sizes for s in sizes):
            raise ValueError(
                f"`sizes` must be a non-empty subset of {list(search.sizes)} for {claim}; "
                f"got {list(sizes)}."
            )
        search = dataclasses.replace(search, sizes=sizes)
    if search.evaluate is None:
        return _adam_search(claim, search, seed, evaluations, progress)
    return _cma_search(claim, search, seed, evaluations, progress)


def tightness_search(
    claims=None, *, seed: int = 0, evaluations: int = 240, progress=None
) -> list[Tightest]:
    """:func:`search_tightness` for each claim (default all of :data:`TIGHTNESS_CLAIMS`)."""
    claims = TIGHTNESS_CLAIMS if claims is None else tuple(claims)
    return [
        search_tightness(c, seed=seed, evaluations=evaluations, progress=progress) for c in claims
    ]
