"""Named experiments. ``check_suite`` is what ``theory-sim check`` runs: every available claim
checked on seeded random instances; ``exponent_study`` fits t_gamma against Var0."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import jax
import numpy as np

from theory_sim import _random
from theory_sim._parallel import threaded_map
from theory_sim._validation import check_seed
from theory_sim.instances import (
    counterexample_instance,
    neural_policy,
    random_problem,
    target_gain,
)
from theory_sim.metrics import reward_variance
from theory_sim.policies import Autoregressive, LogLinear, start_at
from theory_sim.problem import Problem
from theory_sim.rewards import beneficial_error_instance, theorem_5_models
from theory_sim.stories import (
    BENEFICIAL_STAR_PROBS,
    FLAT_FAMILIES,
    flat_landscape,
    theorem_6_story,
)
from theory_sim.theorems import (
    Check,
    ExponentFit,
    check_beneficial_error,
    check_gradient_gap,
    check_group_update,
    check_grpo_success,
    check_improvement_threshold,
    check_lemma_9,
    check_lemma_10,
    check_monotone_ascent,
    check_no_signal_probability,
    check_noisy_verifier,
    check_preference_metrics,
    check_proposition_1,
    check_proposition_2,
    check_proposition_3,
    check_proposition_3_trajectory,
    check_proposition_4,
    check_step_scaling,
    check_step_threshold,
    check_step_threshold_needs_sharing,
    check_theorem_4,
    check_theorem_4_held_out,
    check_theorem_5,
    proposition_4_conditions,
    proposition_4_y_bad,
)

__all__ = [
    "AR_SHAPES",
    "CHECK_SHAPES",
    "KL_COEFS",
    "check_suite",
    "counterexample_checks",
    "estimator_snr_study",
    "exponent_study",
    "step_checks",
    "verifiable_checks",
]

# A few shapes, cycled: each shape compiles once, so the suite's cost is dominated by solving.
CHECK_SHAPES = ((1, 2), (1, 5), (3, 4), (2, 10))
KL_COEFS = (0.0, 0.01, 0.1, 1.0)
# (prompts, vocabulary V, length L) of the autoregressive instances.
AR_SHAPES = ((1, 2, 3), (2, 3, 2), (1, 2, 4))


def _instances(seed: int, num_instances: int) -> Iterator[tuple[int, jax.Array]]:
    root = jax.random.key(check_seed("seed", seed))
    for i in range(num_instances):
        yield i, jax.random.fold_in(root, i)


def check_suite(
    seed: int = 0,
    num_instances: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> list[Check]:
    """Run every available check on ``num_instances`` seeded random instances.

    Tabular instance i uses shape CHECK_SHAPES[i % 4], lambda = KL_COEFS[(i // 4) % 4], a
    reward model scaled by 10^-u with u ~ U[0, 4] (reward variances from about 1e-9 to 1) and a
    random prompt. Each gamma is a random fraction in [0.05, 0.95] of a gain the flow is known to
    exceed (:func:`~theory_sim.instances.headroom`: the gain in the limit for expressive
    policies, the largest on a log grid otherwise), so the target is reached and the lower bound
    is tested; where the reward does not rise (r_G often falls under a random r_RM), of the
    largest gain the reward allows: t_gamma is then inf and the row is reported vacuous.

    Rows: Proposition 3 for r_G and r_RM on every tabular instance, and its two in-proof bounds
    along the flow of every fourth one. Theorem 4 for r_G and r_RM on the tabular instance
    (L = 1, J = 1) and on an autoregressive instance of shape AR_SHAPES[i % 3] with the same
    lambda. Every fourth instance (i % 4 == 1) adds Proposition 2 along the flows of that
    autoregressive instance, of a log-linear one (random features, d = 3) and of a neural one
    (:func:`_neural_instance`: J_x at each theta), and Theorem 4 for the log-linear one (with
    horizon t_max = 1e6: its flow can settle at a stationary point) and the neural one (t_max =
    1e4, J the sup of J_t over [0, t_gamma]).
    Lemma 9 (d pi/dt in closed form against autodiff through the solver) along the flow of every
    instance with i % 4 == 2; the two monotone facts of Proposition 4's proof and Theorem 4 at a
    prompt held out of a log-linear policy's training set (:func:`_held_out_rows`) on every one
    with i % 4 == 3. Then :func:`counterexample_checks` (Theorems 5 and 6) and
    :func:`verifiable_checks` (noisy verifiers, group estimators).

    Args:
        seed: root seed; same seed, same instances and numbers.
        num_instances: how many instances.
        progress: optional callback(done, total).

    Returns:
        A list of :class:`~theory_sim.theorems.Check`.
    """

    def run(task):  # an instance, or None for the counterexamples and the verifiable rewards
        if task is None:
            return counterexample_checks(seed) + verifiable_checks(seed)
        return _instance_checks(*task)

    parts = []
    # Instances are independent: one thread per core works through them; rows keep their order.
    with contextlib.closing(threaded_map(run, [*_instances(seed, num_instances), None])) as done:
        for rows in done:  # an error here closes the map at once: queued instances are dropped
            parts.append(rows)
            if progress is not None and len(parts) <= num_instances:
                progress(len(parts), num_instances)
    return [row for part in parts for row in part]


def _instance_checks(i: int, key) -> list[Check]:
    """The rows of random instance ``i`` of :func:`check_suite` (see its docstring)."""
    checks: list[Check] = []
    k_problem, k_draws = jax.random.split(key)
    num_prompts, num_outputs = CHECK_SHAPES[i % len(CHECK_SHAPES)]
    draws = _random.uniform(k_draws, (4,))
    problem = random_problem(
        num_prompts,
        num_outputs,
        key=k_problem,
        kl_coef=KL_COEFS[(i // len(CHECK_SHAPES)) % len(KL_COEFS)],
        rm_scale=10.0 ** (-4.0 * draws[0]),
    )
    prompt = int(draws[1] * num_prompts)
    for name, table, frac in (
        ("r_G", problem.reward_gt, draws[2]),
        ("r_RM", problem.reward_rm, draws[3]),
    ):
        gamma = target_gain(problem, prompt, table, 0.05 + 0.9 * float(frac))
        label = (
            f"#{i} X={num_prompts} Y={num_outputs} "
            f"lambda={float(problem.kl_coef):g} r={name} gamma={gamma:.2g}"
        )
        checks.append(check_proposition_3(problem, gamma, table, prompt, instance=label))
    if i % 4 == 0:
        label = f"#{i} X={num_prompts} Y={num_outputs} lambda={float(problem.kl_coef):g}"
        checks.extend(check_proposition_3_trajectory(problem, prompt, instance=label))
    checks.extend(_theorem_4_rows(i, k_draws, problem, prompt, f"tabular Y={num_outputs}"))
    ar_problem, ar_label = _autoregressive_instance(i, key)
    checks.extend(_theorem_4_rows(i, k_draws, ar_problem, 0, ar_label))
    if i % 4 == 1:
        checks.append(check_proposition_2(ar_problem, 0, instance=f"#{i} {ar_label}"))
        ll_problem, ll_label = _log_linear_instance(i, key)
        checks.append(check_proposition_2(ll_problem, 0, instance=f"#{i} {ll_label}"))
        # A log-linear flow may settle at a stationary point even with lambda = 0, where an
        # explicit solver cannot reach t_max = 1e12; a finite horizon keeps t_gamma exact.
        checks.extend(_theorem_4_rows(i, k_draws, ll_problem, 0, ll_label, t_max=1e6))
        nn_problem, nn_label = _neural_instance(i, key)
        # 129 save times: the same compiled solve as every other neural trajectory here
        text = f"#{i} {nn_label}"
        checks.append(check_proposition_2(nn_problem, 0, 10.0, num_times=129, instance=text))
        checks.extend(_theorem_4_rows(i, k_draws, nn_problem, 0, nn_label, t_max=1e4))
    label = f"#{i} X={num_prompts} Y={num_outputs} lambda={float(problem.kl_coef):g}"
    if i % 4 == 2:
        checks.append(check_lemma_9(problem, instance=label))
    if i % 4 == 3:
        checks.extend(check_monotone_ascent(problem, prompt, instance=label))
        checks.extend(_held_out_rows(i, key))
    return checks


def counterexample_checks(seed: int = 0) -> list[Check]:
    """Theorems 5 and 6 of arXiv 2503.15477 on a seeded instance with Y = 6 outputs.

    pi_0 ~ Dirichlet(1), r_G ~ U[-1, 1] (seeded). Theorem 5 for T in {10, 100, 1000} with
    gamma = 0.3 (max r_G - E_pi0 r_G), at lambda = 0 and at the largest lambda its fast bound
    allows, at T = 10 with lambda in {1e-3, 1e-2} (above that limit: the slow half, which holds
    for every lambda), at T = 100 with both models' accuracies set to 0.6, and at T = 100 with
    accuracy under on-policy pairs (D = pi_0 x pi_0); and "inaccurate model
    faster" at the smallest T where the bounds alone imply it (the fast model's upper bound
    below the slow model's lower bound), times 1.1. Theorem 6 with T = 30, the
    largest c in (0.2, 0.1, 0.05, 0.02) whose families share a V0 (the default V0), gamma half
    the gap between V0 and the second-best r_G, and |S| = 2.
    On the same instance: Proposition 4 with Y+ the two best outputs under r_G and r_RM their
    indicator (+1 on Y+, -1 elsewhere, so Y_bad is empty) at lambda = 0 and at its limit, and
    with a non-empty Y_bad and |Y+| in {1, 2, 3} (:func:`_y_bad_rows`);
    Proposition 1 for N in {2, 4, 16} over reward models that are not perfectly accurate (r_G
    with its two best outputs swapped, Theorem 5's fast model at T = 100, the reversed r_G and a
    random model), so that the bound is never compared with itself; Lemma 10 along two random
    tabular flows.
    """
    probs, r_gt = counterexample_instance(seed)
    k_p, _ = jax.random.split(
        jax.random.fold_in(jax.random.key(check_seed("seed", seed)), 10**6)
    )  # as the instance
    gamma = 0.3 * float(r_gt.max() - probs @ r_gt)
    checks = []
    for horizon in (10, 100, 1000):
        for lam in (0.0, None):
            checks += check_theorem_5(probs, r_gt, gamma, horizon, lam)
    # the slow half for lambda above the fast model's limit (the fast time row is left out)
    for lam in (1e-3, 1e-2):
        checks += check_theorem_5(probs, r_gt, gamma, 10, lam)
    # any attainable accuracy: 9 of 15 pairs for the slow model, 9 of 15 with y_gamma first for
    # the fast one (y_gamma is the best output, so its 5 pairs are right; 4 of the other 10)
    checks += check_theorem_5(probs, r_gt, gamma, 100, 0.0, slow_accuracy=0.6, fast_accuracy=0.6)
    # accuracy under on-policy pairs (pi_0 x pi_0) instead of uniform ones
    checks += check_theorem_5(
        probs,
        r_gt,
        gamma,
        100,
        0.0,
        pair_weights=np.outer(probs, probs),
        instance=f"Y={len(r_gt)} T=100 lambda=0 D=pi_0 x pi_0",
    )
    checks.append(_inaccurate_teaches_faster(probs, r_gt, gamma))
    checks += _other_reward_model_checks(probs, r_gt, gamma, k_p)
    try:
        return checks + theorem_6_story(seed, num_prompts=2).checks
    except ValueError:  # no c gives the two families a common V0 on this instance
        return checks


# (FPR, FNR) of the noisy-verifier rows: J = 1, 0.7, 0.4, 0.3, 0 and -0.1
VERIFIER_RATES = ((0.0, 0.0), (0.1, 0.2), (0.3, 0.3), (0.2, 0.5), (0.5, 0.5), (0.6, 0.5))


def verifiable_checks(seed: int = 0) -> list[Check]:
    """Verifiable 0/1 rewards on the seeded counterexample instance (Y = 6), its two best outputs
    under r_G correct: the noisy-verifier identity (J > 0) and no gain (J <= 0) for
    :data:`VERIFIER_RATES` at lambda in {0, 0.05} with gamma = 0.1 (arXiv 2601.04411); the
    enumerated expected update of REINFORCE, RLOO, Dr. GRPO and GRPO for G in {2, 4, 8} against
    their closed forms; the no-signal probability p^G + (1 - p)^G for the same G; iterated
    GRPO with a KL term to pi_0 (beta in {1, 4}, 30 steps) against its success recurrence and
    the reference's success probability (arXiv 2503.06639); the reward error that helps on the
    controlled experiment of arXiv 2604.25872 (pi_0(y*) in {0.05, 0.1, 0.15}, target
    E r_G = 0.9), and Acc-W, HAcc and HAcc-W against their pair enumeration on those instances
    and on the seeded one with the 0/1 labels as the reward model (ties on every pair of
    equal labels)."""
    probs, r_gt = counterexample_instance(seed)
    correct = np.zeros_like(r_gt)
    correct[np.argsort(r_gt)[-2:]] = 1.0
    rows = [
        check_noisy_verifier(probs, correct, fpr, fnr, 0.1, lam)
        for lam in (0.0, 0.05)
        for fpr, fnr in VERIFIER_RATES
    ]
    problem = Problem(np.log(probs), correct)
    for g in (2, 4, 8):
        rows += [check_group_update(problem, m, g) for m in ("reinforce", "rloo", "drgrpo", "grpo")]
        rows.append(check_no_signal_probability(probs, correct, g))
    for beta in (1.0, 4.0):
        rows += check_grpo_success(probs, correct, beta)
    rows.append(check_preference_metrics(probs, correct, r_gt, instance=f"seed {seed} Y=6 0/1"))
    for star in BENEFICIAL_STAR_PROBS:
        pi0, r_g, r_rm = beneficial_error_instance(star)
        rows.append(check_beneficial_error(pi0, r_g, r_rm, 0.9, instance=f"pi0(y*)={star:g}"))
        rows.append(check_preference_metrics(pi0, r_rm, r_g, instance=f"pi0(y*)={star:g}"))
    return rows + step_checks()


def step_checks(success: float = 0.2) -> list[Check]:
    """Discrete steps (arXiv 2510.08539) on the shared-token family over {0, 1}^L with initial
    success rate ``success``: the Gradient Gap identity (L = 8); the one-step threshold against
    its closed form (L = 4 and 8, exact; L = 8, GRPO with G = 8); the runs just below and just
    above the critical learning rate (L = 8, exact and GRPO); the critical rate at L = 8 against
    L = 4; and no threshold for the tabular autoregressive policy with the same target (L = 8)."""
    rows = [check_gradient_gap(8, success)]
    rows += [check_improvement_threshold(n, success) for n in (4, 8)]
    rows.append(check_improvement_threshold(8, success, "grpo"))
    for method in ("exact", "grpo"):
        rows += check_step_threshold(8, success, method)
    rows.append(check_step_scaling(4, 8, success))
    rows.append(check_step_threshold_needs_sharing(8, success))
    return rows


def _theorem_4_rows(i, key, problem, prompt, label, t_max: float = 1e12) -> list[Check]:
    fracs = _random.uniform(jax.random.fold_in(key, 4), (2,))
    rows = []
    for name, table, frac in (
        ("r_G", problem.reward_gt, fracs[0]),
        ("r_RM", problem.reward_rm, fracs[1]),
    ):
        gamma = target_gain(problem, prompt, table, 0.05 + 0.9 * float(frac), t_max)
        text = f"#{i} {label} lambda={float(problem.kl_coef):g} r={name} gamma={gamma:.2g}"
        rows.append(check_theorem_4(problem, gamma, table, prompt, t_max, instance=text))
    return rows


def _autoregressive_instance(i: int, key) -> tuple[Problem, str]:
    num_prompts, vocab, length = AR_SHAPES[i % len(AR_SHAPES)]
    policy = Autoregressive(vocab, length)
    k_probs, k_rm, k_gt, k_scale = jax.random.split(jax.random.fold_in(key, 1), 4)
    shape = (num_prompts, policy.num_sequences)
    probs = _random.dirichlet(k_probs, shape[1], (num_prompts,))
    params, _ = start_at(policy, probs)
    scale = 10.0 ** (-4.0 * float(_random.uniform(k_scale)))
    r_rm = scale * _random.uniform(k_rm, shape, -1.0, 1.0)
    r_gt = _random.uniform(k_gt, shape, -1.0, 1.0)
    lam = KL_COEFS[(i // len(CHECK_SHAPES)) % len(KL_COEFS)]
    problem = Problem(params, r_rm, r_gt, kl_coef=lam, policy=policy)
    return problem, f"AR X={num_prompts} V={vocab} L={length}"


def _held_out_rows(i: int, key) -> list[Check]:
    """Theorem 4 at a held-out prompt: a log-linear policy (d = 3, Y = 6) trained on two prompts,
    evaluated with r_G and r_RM on a third; gamma a random fraction in [0.05, 0.95] of the
    largest gain the held-out prompt reaches by t = 1e4 (vacuous where it never rises)."""
    k_feat, k_w, k_rm, k_gt, k_frac = jax.random.split(jax.random.fold_in(key, 3), 5)
    features = _random.normal(k_feat, (3, 6, 3))
    w = _random.normal(k_w, (3,))
    r_rm = _random.uniform(k_rm, (3, 6), -1.0, 1.0)
    r_gt = _random.uniform(k_gt, (3, 6), -1.0, 1.0)
    problem = Problem(w, r_rm[:2], r_gt[:2], policy=LogLinear(features[:2]))
    held_out = LogLinear(features[2])
    fracs = _random.uniform(k_frac, (2,))
    rows = []
    for name, row, frac in (("r_G", r_gt[2], fracs[0]), ("r_RM", r_rm[2], fracs[1])):
        start = float(np.exp(np.asarray(held_out.log_probs(w)))[0] @ row)
        peak = check_theorem_4_held_out(problem, held_out, row, 2.0).details["max_gain_seen"]
        reach = peak if peak > 1e-9 * float(np.ptp(row)) else float(row.max()) - start
        gamma = (0.05 + 0.9 * float(frac)) * reach
        text = f"#{i} log-linear X=2 Y=6 d=3 r={name} gamma={gamma:.2g}"  # claim: held-out
        rows.append(check_theorem_4_held_out(problem, held_out, row, gamma, instance=text))
    return rows


def _neural_instance(i: int, key) -> tuple[Problem, str]:
    """A neural policy at its seeded initialisation over eight outputs
    (:func:`~theory_sim.instances.neural_policy`): a transformer (V = 2, L = 3, width 8, depth 1)
    for i % 8 == 1, an MLP (width 16, depth 2) otherwise; init scale 0.3, 1 or 3 by i; r_G ~
    U[-1, 1], r_RM ~
    U[-1, 1] scaled by 10^-u, u ~ U[0, 3]; lambda = 0."""
    kind, width, depth = ("transformer", 8, 1) if i % 8 == 1 else ("mlp", 16, 2)
    scale = (0.3, 1.0, 3.0)[(i // 4) % 3]
    policy = neural_policy(kind, width, depth, scale, i)
    k_rm, k_gt, k_scale = jax.random.split(jax.random.fold_in(key, 5), 3)
    factor = 10.0 ** (-3.0 * float(_random.uniform(k_scale)))
    r_rm = factor * _random.uniform(k_rm, (8,), -1.0, 1.0)
    r_gt = _random.uniform(k_gt, (8,), -1.0, 1.0)
    problem = Problem(policy.params, r_rm, r_gt, policy=policy)
    return problem, f"{kind} w={width} d={depth} scale={scale:g}"


def _log_linear_instance(i: int, key) -> tuple[Problem, str]:
    k_feat, k_w, k_rm, k_gt = jax.random.split(jax.random.fold_in(key, 2), 4)
    num_outputs, dim = 6, 3
    policy = LogLinear(_random.normal(k_feat, (num_outputs, dim)))
    w = _random.normal(k_w, (dim,))
    r_rm = _random.uniform(k_rm, (num_outputs,), -1.0, 1.0)
    r_gt = _random.uniform(k_gt, (num_outputs,), -1.0, 1.0)
    problem = Problem(w, r_rm, r_gt, kl_coef=0.0, policy=policy)
    return problem, f"log-linear Y={num_outputs} d={dim}"


EXPONENT_FAMILIES = FLAT_FAMILIES


def exponent_study(
    policy: str = "tabular",
    family: str = "reward_scale",
    *,
    num_points: int = 13,
    decades: float = 6.0,
    seed: int = 0,
) -> ExponentFit:
    """The fitted log-log slope of t_gamma against Var0 over a family of instances: the ``fit`` of
    :func:`theory_sim.stories.flat_landscape` (same arguments; families "reward_scale" and
    "concentration"). Proposition 3 bounds t_gamma below by C Var0^(-1/2) (tabular) and Theorem 4
    by C' Var0^(-1/3)."""
    return flat_landscape(policy, family, num_points=num_points, decades=decades, seed=seed).fit


def _y_bad_rows(key) -> list[Check]:
    """Proposition 4 with a non-empty Y_bad (theory_sim's derived condition, whose rate c(q)
    carries 1/|Y+|): |Y+| = m in {1, 2, 3} good outputs (r_G = 1, r_RM = a in [0.6, 0.9]) sharing
    pi_0 mass p in [0.4, 0.7], one output the reward model rates highest but the ground truth
    lowest (r_RM = 1, r_G = -1: Y_bad), and a bad one (r_RM = r_G = -1); gamma a tenth of the gain
    to r_G = 1. Y_bad's initial mass is a quarter of the derived limit, at lambda = 0 and at a
    quarter of the derived lambda limit."""
    low, high = np.array([0.4, 0.6]), np.array([0.7, 0.9])
    p, a = (float(v) for v in _random.uniform(key, (2,), low, high))
    rows = []
    for size in (1, 2, 3):
        r_gt = np.array([1.0] * size + [-1.0, -1.0])
        r_rm = np.array([a] * size + [1.0, -1.0])
        y_plus = list(range(size))

        def instance(mass, size=size, r_gt=r_gt):
            probs = np.array([p / size] * size + [mass, 1.0 - p - mass])
            return probs, 0.1 * float(1.0 - probs @ r_gt)

        for share in (0.0, 0.25):  # lambda = 0, then a quarter of the derived lambda limit
            probs, gamma = instance(1e-12)
            limit = proposition_4_y_bad(probs, r_gt, r_rm, gamma, y_plus).mass_limit
            probs, gamma = instance(limit / 4)
            lam = share * proposition_4_y_bad(probs, r_gt, r_rm, gamma, y_plus).kl_limit
            for _ in range(4):  # with lambda > 0 the limit falls with the mass (L grows): settle
                limit = proposition_4_y_bad(probs, r_gt, r_rm, gamma, y_plus, lam).mass_limit
                probs, gamma = instance(limit / 4)
            name = (
                f"Y={size + 2} |Y+|={size} pi_0(Y_bad)={probs[size]:.3g} pi_0(Y+)={p:.3f} "
                f"lambda={lam:.3g}"
            )
            rows.append(check_proposition_4(probs, r_gt, r_rm, gamma, y_plus, lam, instance=name))
    return rows


def _other_reward_model_checks(probs, r_gt, gamma, key) -> list[Check]:
    y_plus = [int(y) for y in np.argsort(-r_gt)[:2]]
    indicator = -np.ones_like(r_gt)
    indicator[y_plus] = 1.0
    gamma4 = 0.5 * float(r_gt[y_plus].min() - probs @ r_gt)
    checks = [
        check_proposition_4(probs, r_gt, indicator, gamma4, y_plus, lam)
        for lam in (0.0, proposition_4_conditions(probs, r_gt, indicator, gamma4, y_plus).kl_limit)
    ]
    checks += _y_bad_rows(jax.random.fold_in(key, 3))
    models = theorem_5_models(probs, r_gt, gamma, 100)
    top_two_swapped = r_gt.copy()
    top_two_swapped[y_plus] = r_gt[y_plus[::-1]]
    tried = {  # none perfectly accurate: a perfectly accurate model would meet the bound exactly
        "top two swapped": top_two_swapped,
        "theorem 5 fast": models.fast,
        "reversed": -r_gt,
        "random": _random.uniform(key, r_gt.shape, -1.0, 1.0),
    }
    checks += [check_proposition_1(probs, r_gt, tried, n) for n in (2, 4, 16)]
    for lam, k in ((0.0, 1), (0.5, 2)):
        problem = random_problem(2, 5, key=jax.random.fold_in(key, k), kl_coef=lam)
        checks.append(check_lemma_10(problem, 1, instance=f"X=2 Y=5 lambda={lam:g}"))
    return checks


def _inaccurate_teaches_faster(probs, r_gt, gamma) -> Check:
    """Theorem 5's consequence: past T* = fast bound / (2(1 - e^(-gamma/2))), the inaccurate model
    must be faster; checked at 1.1 T* with measured t_fast / t_slow against 1."""
    base = theorem_5_models(probs, r_gt, gamma, 1.0)
    horizon = 1.1 * base.fast_time_bound / base.slow_time_bound  # slow bound is linear in T
    rows = check_theorem_5(probs, r_gt, gamma, horizon, 0.0)
    t_slow, t_fast = rows[0].details["t_slow"], rows[0].details["t_fast"]
    return Check(
        "Theorem 5: inaccurate model faster",
        f"Y={len(r_gt)} T={horizon:.3g} lambda=0",
        t_fast / t_slow,
        1.0,
        "<=",
        bool(t_fast < t_slow),
        {"t_fast": t_fast, "t_slow": t_slow, "T": horizon},
    )


def estimator_snr_study(
    good_masses=(1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
    *,
    reward_scales=(1.0, 1e-3),
    num_outputs: int = 4,
    num_samples: int = 8,
    num_estimates: int = 4000,
    seed: int = 0,
) -> list[dict]:
    """Signal-to-noise ratio of REINFORCE, RLOO and GRPO against the reward variance they face.

    One prompt; r = c (+1 on output 0, -1 elsewhere) for each scale c in ``reward_scales``; pi_0
    gives output 0 the mass eps in ``good_masses`` and spreads the rest evenly. At theta_0 each row
    reports Var0, the exact gradient norm and each estimator's SNR (||mean|| / rms deviation over
    ``num_estimates`` seeded estimates of ``num_samples`` samples). The defaults are the sizes
    notebook 07, ``theory-sim reproduce`` and the README's quoted SNRs all use.

    Returns:
        Rows {"eps", "scale", "var0", "exact_norm", "reinforce", "rloo", "grpo"}.
    """
    from theory_sim.training import ESTIMATORS, gradient_snr

    rows = []
    key = jax.random.key(seed)
    for scale in reward_scales:
        for eps in good_masses:
            probs = np.full(num_outputs, (1.0 - eps) / (num_outputs - 1))
            probs[0] = eps
            reward = np.full(num_outputs, -float(scale))
            reward[0] = float(scale)
            problem = Problem(np.log(probs), reward)
            row = {
                "eps": float(eps),
                "scale": float(scale),
                "var0": float(reward_variance(probs, reward)),
            }
            for i, method in enumerate(ESTIMATORS):
                stats = gradient_snr(
                    problem,
                    np.log(probs),
                    key=jax.random.fold_in(key, i),
                    num_samples=num_samples,
                    method=method,
                    num_estimates=num_estimates,
                )
                row[method] = stats["snr"]
                row["exact_norm"] = stats["exact_norm"]
            rows.append(row)
    return rows
