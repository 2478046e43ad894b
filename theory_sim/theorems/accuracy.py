"""Accuracy is not enough (arXiv 2503.15477): Theorem 5's accurate-but-slow and
inaccurate-but-fast reward models, and Proposition 1 (Best-of-N, where accuracy does decide)."""

from __future__ import annotations

import numpy as np

from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_int,
    check_probabilities,
)
from theory_sim.metrics import _host_reward_variance, accuracy, best_of_n
from theory_sim.rewards import theorem_5_models
from theory_sim.theorems._common import (
    TIME_RTOL,
    Check,
    _one_prompt_time,
    _time_lower_bound_check,
    _upper_bound_check,
)


def check_theorem_5(
    init_probs,
    reward_gt,
    gamma: float,
    T: float,
    kl_coef: float | None = None,
    *,
    slow_accuracy: float | None = None,
    fast_accuracy: float | None = None,
    pair_weights=None,
    num_prompts: int = 1,
    instance: str = "",
) -> list[Check]:
    """Check Theorem 5 of arXiv 2503.15477 (accuracy is not enough) on one instance.

    Builds the models of :func:`theory_sim.rewards.theorem_5_models` and checks, for |S| identical
    copies of the prompt and a tabular policy started at pi_0: the slow model has accuracy 1 (or
    exactly ``slow_accuracy``), Var0 <= 1/T^2 and t_gamma >= 2|S|(1 - e^(-gamma/2)) T; the fast
    model has accuracy <= 2/|Y| (or exactly ``fast_accuracy``, with y_gamma ranked first) and
    t_gamma <= 4|S|(1 - rho)^(-4)(1/pi_0(y_gamma) - 1/rho).

    Under a distribution D over pairs (``pair_weights``) the slow model still has accuracy 1 (it
    orders every pair like r_G) and the fast model gets right at most the pairs that contain
    y_gamma (all others are in the reverse order of r_G, ties in r_G broken), so its accuracy is
    at most D({y_gamma, y} : y != y_gamma); for uniform D that is (|Y| - 1) / (|Y|(|Y| - 1)/2) =
    2/|Y|. With D = pi_0 x pi_0 (on-policy pairs) it is 2 pi_0(y_gamma)(1 - pi_0(y_gamma)) /
    (1 - sum_y pi_0(y)^2): small when pi_0 rarely samples y_gamma, whatever the speed.

    Args:
        kl_coef: lambda for both flows; default the fast model's limit
            pi_0(y_gamma)(1 - rho)^4 / (8 (1/(2e) + 2 ln(1/min pi_0))), the largest the fast
            bound allows. The slow half holds for every lambda >= 0: above the limit the fast
            time row is left out (its condition fails) and the other four rows are checked.
        slow_accuracy, fast_accuracy: attainable uniform-pair accuracies for the two models (see
            :func:`theory_sim.rewards.theorem_5_models`).
        pair_weights: optional weights [Y, Y] of D over pairs (see :func:`~theory_sim.accuracy`)
            for the two accuracy rows; not with ``slow_accuracy`` or ``fast_accuracy``.

    Returns:
        Five Checks: slow accuracy, slow Var0, slow time, fast accuracy, fast time (four above
        the fast model's lambda limit). The measured times are in each Check's details as
        ``t_slow`` / ``t_fast``.
    """
    claim = "Theorem 5"
    models = theorem_5_models(
        init_probs,
        reward_gt,
        gamma,
        T,
        accuracy=slow_accuracy,
        fast_accuracy=fast_accuracy,
        num_prompts=num_prompts,
    )
    probs, r_gt = np.asarray(init_probs, dtype=np.float64), np.asarray(reward_gt, np.float64)
    lam = (
        models.fast_kl_limit
        if kl_coef is None
        else check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    )
    n = probs.shape[0]
    if pair_weights is not None and (slow_accuracy is not None or fast_accuracy is not None):
        raise ValueError(
            "`pair_weights` and `slow_accuracy`/`fast_accuracy` cannot be combined: the "
            "attainable accuracies are uniform-pair accuracies."
        )
    weights = None if pair_weights is None else _pair_distribution(pair_weights, n)
    t_slow = _one_prompt_time(probs, models.slow, r_gt, lam, gamma, num_prompts, claim)
    t_fast = _one_prompt_time(probs, models.fast, r_gt, lam, gamma, num_prompts, claim)
    var_slow = float(_host_reward_variance(probs, models.slow))
    label = instance or f"Y={n} T={T:g} lambda={lam:.2g}"
    details = {
        "T": float(T),
        "gamma": float(gamma),
        "kl_coef": lam,
        "rho": models.rho,
        "y_gamma": models.y_gamma,
        "t_slow": t_slow,
        "t_fast": t_fast,
    }
    acc_slow = float(accuracy(models.slow, r_gt, weights))
    acc_fast = float(accuracy(models.fast, r_gt, weights))
    # accuracies are ratios of pair counts (or weight sums): exact up to round-off of the sums
    exact = 1e-12
    slow_target = 1.0 if slow_accuracy is None else float(slow_accuracy)
    if weights is not None:
        details = {**details, "pairs": "given distribution D"}
        # D's mass on the pairs {y_gamma, y}: row y_gamma of the normalised upper triangle
        fast_limit = float(weights[models.y_gamma].sum() + weights[:, models.y_gamma].sum())
    else:
        fast_limit = 2.0 / n
    if fast_accuracy is None:
        fast_row = Check(
            claim + ": fast model accuracy",
            label,
            acc_fast,
            fast_limit,
            "<=",
            acc_fast <= fast_limit + exact,
            details,
        )
    else:
        fast_row = Check(
            claim + ": fast model accuracy",
            label,
            acc_fast,
            float(fast_accuracy),
            "==",
            abs(acc_fast - float(fast_accuracy)) <= exact,
            {**details, "tolerance": exact},
        )
    rows = [
        Check(
            claim + ": slow model accuracy",
            label,
            acc_slow,
            slow_target,
            "==",
            abs(acc_slow - slow_target) <= exact,
            {**details, "tolerance": exact},
        ),
        _upper_bound_check(
            claim + ": slow model Var0", label, var_slow, 1.0 / float(T) ** 2, details
        ),
        _time_lower_bound_check(
            claim + ": slow model time", label, t_slow, models.slow_time_bound, details
        ),
        fast_row,
    ]
    if lam <= models.fast_kl_limit:
        rows.append(
            _upper_bound_check(
                claim + ": fast model time",
                label,
                t_fast,
                models.fast_time_bound,
                details,
                TIME_RTOL,
            )
        )
    return rows


def _pair_distribution(pair_weights, n: int) -> np.ndarray:
    """``pair_weights`` [Y, Y] as a distribution over unordered pairs: symmetrised, diagonal
    dropped, kept on the upper triangle and normalised to sum 1 (validated)."""
    w = as_float_array("pair_weights", pair_weights, ndim=(2,))
    if w.shape != (n, n):
        raise ValueError(f"`pair_weights` must have shape {(n, n)}; got {w.shape}.")
    if np.any(w < 0):
        raise ValueError(f"`pair_weights` must be non-negative; its minimum is {w.min():.3g}.")
    upper = np.triu(w + w.T, k=1)
    total = float(upper.sum())
    if not total > 0:
        raise ValueError(
            "`pair_weights` must put positive weight on some pair of distinct outputs."
        )
    return upper / total


def check_proposition_1(
    init_probs, reward_gt, reward_models: dict, n: int, *, instance: str = ""
) -> Check:
    """Check Proposition 1 of arXiv 2503.15477: a perfectly accurate reward model maximises the
    expected ground-truth reward of Best-of-N, whose value is E[max_i r_G(y_i)].

    measured = the largest Best-of-N value among ``reward_models`` (name -> [Y] table), bound =
    the value of r_G itself (a perfectly accurate model); holds when measured <= bound.
    """
    if not isinstance(reward_models, dict) or not reward_models:
        raise ValueError(
            "`reward_models` must be a non-empty dict of name -> [Y] reward table; "
            f"got {reward_models!r}."
        )
    init_probs = check_probabilities("init_probs", init_probs)
    if init_probs.ndim != 1:
        raise ValueError(f"`init_probs` must be 1-D [Y]; got shape {init_probs.shape}.")
    reward_gt = as_float_array("reward_gt", reward_gt, ndim=(1,))
    if reward_gt.shape != init_probs.shape:
        raise ValueError(
            f"`reward_gt` must have shape {init_probs.shape} like `init_probs`; got "
            f"{reward_gt.shape}."
        )
    n = check_int("n", n)
    best_value = float(best_of_n(init_probs, reward_gt, reward_gt, n))
    values = {
        name: float(best_of_n(init_probs, r, reward_gt, n)) for name, r in reward_models.items()
    }
    top = max(values.values())
    accurate = [name for name, r in reward_models.items() if float(accuracy(r, reward_gt)) == 1.0]
    if n == 1:
        vacuous = "N = 1: Best-of-1 is E_pi0 r_G whatever the reward model"
    elif accurate:
        vacuous = f"{', '.join(accurate)} is perfectly accurate: the bound is compared with itself"
    else:
        vacuous = ""
    # both sides are exact sums of at most Y terms; 1e-12 covers their round-off
    return Check(
        "Proposition 1",
        instance or f"N={n} Y={len(np.asarray(reward_gt))}",
        top,
        best_value,
        "<=",
        top <= best_value + 1e-12,
        {"values": values, "n": n},
        vacuous,
    )
