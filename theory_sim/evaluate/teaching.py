"""The teaching speed a reward model predicts: the exact flow on a dump's sampled support.

Each prompt's responses form a tabular output space. pi_0 is the distribution they stand for
(:meth:`Dump.weights`: 1/K_p each, or the self-normalised policy probabilities), r_RM a reward
model's scores and r_G the gold scores. The tabular policy is optimised by the exact gradient
flow of the KL-regularised objective (Section 2 of arXiv 2503.15477) and the teaching time is

    t_gamma = inf{t : mean_x (E_{pi_t} r_G(x, .) - E_{pi_0} r_G(x, .)) >= gamma},

the first time the mean gold gain over prompts reaches gamma. This is the tabular analogue on the
sampled support, not the time an LLM would take: it keeps what the theory says decides the speed
(each prompt's reward variance under pi_0 and where the model's maximisers sit) and drops
generalisation across responses and prompts.

Scales. Reward models are compared at one scale: each is shifted and scaled to mean 0 and
variance 1 under pi_0 over all prompts (as Section 4.1 of the paper normalises its reward models,
:func:`theory_sim.bradley_terry.normalize_rewards`; ``normalise=False`` skips this and keeps the
models' relative scales), and then all are divided by one common c,
the largest |normalised score| of any model, so that every r_RM lies in [-1, 1] as Proposition 3
assumes. Gold scores outside [-1, 1] are mapped affinely onto it (0/1 labels are kept). Times are
reported per prompt, t / |S| (the flow of |S| prompts gives each prompt's row a 1/|S| share of
the gradient).

Proposition 3 bound for the mean gain: a mean gain of gamma needs some prompt with gain >= gamma,
so t_gamma >= min_x 2|S|(1 - e^(-gamma/2)) / sqrt(Var0(x)) = 2|S|(1 - e^(-gamma/2)) /
sqrt(max_x Var0(x)), with Var0 the variance of the scaled r_RM under pi_0.

The crossing is found on the flow's saved values: a log-spaced grid of ``grid`` times up to the
horizon brackets the first save at or above gamma, two more solves on ``grid`` evenly spaced
times inside the bracket narrow it by grid^2, and linear interpolation inside the last bracket
gives t_gamma (to about 1e-8 relative with the default 129 times; a gain that rises above gamma
and falls back between two saves of the first grid, about 6 % apart, is not seen).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from theory_sim._validation import (
    as_float_array,
    check_float_scalar,
    check_int,
    check_probabilities,
)
from theory_sim.bradley_terry import normalize_rewards
from theory_sim.flow import gradient_flow
from theory_sim.flow.coordinates import ABSENT_LOGIT
from theory_sim.metrics import _host_reward_variance
from theory_sim.problem import Problem

__all__ = ["Teaching", "default_gamma", "kendall_tau", "predict", "scaled_models", "teaching_time"]


@dataclasses.dataclass(frozen=True)
class Teaching:
    """The predicted teaching time of one reward model.

    Attributes:
        model: its name.
        time: t_gamma / |S| (inf when the mean gold gain stays below gamma up to the horizon).
        bound: Proposition 3's lower bound on it, 2 (1 - e^(-gamma/2)) / sqrt(max_x Var0(x)).
        final_gain: the mean gold gain at the horizon.
        var0: mean_x Var0(x) of the scaled r_RM.
    """

    model: str
    time: float
    bound: float
    final_gain: float
    var0: float


def _gold_in_range(gold: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Gold scores mapped affinely onto [-1, 1] unless they already lie there."""
    g = gold[present]
    if g.min() >= -1.0 and g.max() <= 1.0:
        return gold
    mid, half = (g.max() + g.min()) / 2.0, (g.max() - g.min()) / 2.0
    return (gold - mid) / half if half > 0 else np.zeros_like(gold)


def scaled_models(probs: np.ndarray, models: dict, normalise: bool = True) -> dict:
    """Each [X, Y] reward table normalised under ``probs`` (``normalise``; else as given), all
    divided by one common scale so that every value lies in [-1, 1] (see the module docstring)."""
    present = probs > 0
    normed = {}
    for name, r in models.items():
        r = np.where(present, r, 0.0)
        if not normalise:
            normed[name] = r
            continue
        try:
            normed[name] = normalize_rewards(r, probs)
        except ValueError:  # a constant model: no signal anywhere
            normed[name] = np.zeros_like(probs)
    c = max(float(np.max(np.abs(np.where(present, r, 0.0)))) for r in normed.values())
    return {name: r / c if c > 0 else r for name, r in normed.items()}


def default_gamma(probs: np.ndarray, gold: np.ndarray, fraction: float = 0.25) -> float:
    """``fraction`` of the mean gold headroom, mean_x (max_y r_G - E_pi0 r_G), on the support."""
    present = probs > 0
    g = _gold_in_range(gold, present)
    top = np.max(np.where(present, g, -np.inf), axis=1)
    return float(fraction * np.mean(top - np.sum(probs * g, axis=1)))


def _mean_gain(problem, start, ts) -> np.ndarray:
    traj = gradient_flow(problem, float(ts[-1]), save_ts=ts)
    e = np.asarray(traj.expected_gt).reshape(len(ts), -1)
    return np.mean(e - start, axis=1)


def teaching_time(
    probs,
    reward_rm: np.ndarray,
    reward_gt: np.ndarray,
    gamma: float,
    *,
    kl_coef: float = 0.0,
    horizon: float = 1e5,
    grid: int = 129,
) -> tuple[float, float]:
    """(t_gamma / |S|, mean gold gain at the horizon) of the exact tabular flow from pi_0 =
    ``probs`` [X, Y] (zeros: outputs absent from a prompt) with r_RM ``reward_rm`` and the mean
    gold gain of ``reward_gt`` (both [X, Y], already in [-1, 1]); ``horizon`` is per prompt."""
    probs = np.asarray(probs, np.float64)
    present = probs > 0
    num_prompts = probs.shape[0]
    with np.errstate(divide="ignore"):
        logits = np.where(present, np.log(probs), ABSENT_LOGIT)
    fill = lambda r: np.where(present, r, 0.0)  # noqa: E731 (absent outputs: probability 0)
    problem = Problem(logits, fill(reward_rm), fill(reward_gt), kl_coef=kl_coef)
    start = np.sum(probs * fill(reward_gt), axis=1)
    ts = np.concatenate([[0.0], np.geomspace(1e-4, horizon, grid - 1)]) * num_prompts
    gain = _mean_gain(problem, start, ts)
    final = float(gain[-1])
    for refinement in range(3):
        above = np.flatnonzero(gain >= gamma)
        if len(above) == 0:
            return math.inf, final
        i = int(above[0])
        if refinement == 2:  # linear interpolation in the last bracket
            lo, hi, g_lo, g_hi = ts[i - 1], ts[i], gain[i - 1], gain[i]
            return float(lo + (gamma - g_lo) * (hi - lo) / (g_hi - g_lo)) / num_prompts, final
        ts = np.linspace(ts[i - 1], ts[i], grid)
        gain = _mean_gain(problem, start, ts)
    raise AssertionError("unreachable")  # pragma: no cover


def predict(
    probs,
    models: dict,
    gold,
    *,
    gamma: float | None = None,
    kl_coef: float = 0.0,
    horizon: float = 1e5,
    grid: int = 129,
    normalise: bool = True,
    progress=None,
) -> list[Teaching]:
    """:func:`teaching_time` of every reward model in ``models`` ({name: [X, Y]}) on the
    support of ``probs``, at one scale (:func:`scaled_models`), with Proposition 3's bound.

    Args:
        probs: pi_0 [X, Y], zeros where a prompt has no such response.
        models: {name: [X, Y] scores}.
        gold: [X, Y] gold scores (mapped onto [-1, 1] if outside).
        gamma: the mean gold gain (default :func:`default_gamma`).
        kl_coef: lambda >= 0.
        horizon: per-prompt horizon (> 0).
        grid: save times per solve (>= 9).
        normalise: normalise each model to mean 0 and variance 1 under pi_0 first (as RLHF
            pipelines whiten rewards); False keeps the models' relative scales, so a model that
            is slow because its scores are small (Theorem 5's accurate model) stays slow.
        progress: optional callable (done, total, what), called after each model.
    """
    probs = check_probabilities("probs", probs)
    if probs.ndim != 2:
        raise ValueError(f"`probs` must be [X, Y] (prompts, outputs); got shape {probs.shape}.")
    if not isinstance(models, dict) or not models:
        raise ValueError(
            f"`models` must be a non-empty dict of [X, Y] score tables; got {models!r}."
        )
    models = {str(k): as_float_array(f"models[{k!r}]", v) for k, v in models.items()}
    gold = as_float_array("gold", gold)
    for name, table in (*((f"models[{k!r}]", v) for k, v in models.items()), ("gold", gold)):
        if table.shape != probs.shape:
            raise ValueError(
                f"`{name}` must have the shape {probs.shape} of `probs`; got {table.shape}."
            )
    present = probs > 0
    gold = _gold_in_range(gold, present)
    gamma = default_gamma(probs, gold) if gamma is None else gamma
    gamma = check_float_scalar("gamma", gamma, positive=True)
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    horizon = check_float_scalar("horizon", horizon, positive=True)
    grid = check_int("grid", grid, 9)
    out = []
    for i, (name, r) in enumerate(scaled_models(probs, models, normalise).items()):
        if progress is not None:
            progress(i, len(models), "predicting teaching times")
        var0 = _host_reward_variance(probs, r)
        bound = (
            2.0 * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0.max())
            if var0.max() > 0
            else math.inf
        )
        time, final = teaching_time(
            probs, r, gold, gamma, kl_coef=kl_coef, horizon=horizon, grid=grid
        )
        out.append(Teaching(name, time, bound, final, float(var0.mean())))
    if progress is not None:
        progress(len(models), len(models), "predicting teaching times")
    return out


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two orderings given as scores (larger = ranked higher; inf and
    -inf allowed, ties allowed); nan when either is constant."""
    out = []
    for name, value in (("a", a), ("b", b)):
        try:
            arr = np.asarray(value, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must be a 1-D array of scores; got {value!r}.") from None
        if arr.ndim != 1 or np.isnan(arr).any():
            raise ValueError(f"`{name}` must be a 1-D array of scores without NaN; got {value!r}.")
        out.append(arr)
    a, b = out
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(
            f"`a` and `b` must score the same items, two or more; got {len(a)}, {len(b)}."
        )
    ra, rb = stats.rankdata(a), stats.rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return math.nan
    return float(stats.kendalltau(ra, rb).statistic)
