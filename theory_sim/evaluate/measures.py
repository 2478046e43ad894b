"""Accuracy, reward variance and verifier rates of reward models from a score dump, with
bootstrap intervals over prompts (Section 3 of arXiv 2503.15477 defines the measures).

Per prompt p with responses k = 1..K_p, scores s, gold g and weights w (:meth:`Dump.weights`):

* accuracy: the fraction of pairs k != l of responses on which sign(s_k - s_l) equals
  sign(g_k - g_l), sign(0) = 0, so a gold tie must be a score tie (as :func:`theory_sim.accuracy`).
  For responses sampled from the policy this U-statistic is an unbiased estimate of the accuracy
  over two independent draws from the policy (identical responses, if any, count as agreeing
  ties).
* on-policy accuracy (log-probabilities given): the same pairs weighted by w_k w_l, i.e.
  :func:`theory_sim.on_policy_accuracy` of the policy restricted to the responses.
* reward variance: without log-probabilities, the sample variance with divisor K_p - 1, which is
  unbiased for Var_pi r because it equals the mean of (s_k - s_l)^2 / 2 over pairs k != l of
  independent draws; with log-probabilities the responses are a fixed candidate set and the
  variance is exact on it, sum_k w_k (s_k - sum_l w_l s_l)^2.
* the fraction of prompts whose scores are all equal (no signal: the flow does not move them),
  with the exact (Clopper-Pearson) binomial interval.
* for 0/1 gold labels, the verifier's rates with the decision s > threshold:
  TPR = sum_p sum_k w 1[g=1, s>thr] / sum_p sum_k w 1[g=1], FPR likewise over g = 0, and
  Youden's J = TPR - FPR.

The model-level value is the mean over prompts (rates: the ratio of sums above). Intervals are
percentile bootstrap intervals over prompts (prompts resampled with replacement, B resamples, all
measures from the same resamples); quantiles of the per-prompt variance get distribution-free
order-statistic intervals (binomial ranks), which need no resampling.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from theory_sim._device import to_device
from theory_sim._validation import check_float_scalar, check_int, check_seed
from theory_sim.evaluate.dump import Dump
from theory_sim.metrics import _host_reward_variance

__all__ = ["Measure", "measure_dump", "per_prompt", "prompt_variance"]

QUANTILES = (0.1, 0.5, 0.9)
# prompts per block of the fused pair kernel: [block, K, K] comparisons at a time
_BLOCK_ENTRIES = 2**22


@dataclasses.dataclass(frozen=True)
class Measure:
    """A measure of one reward model with its interval (``low``, ``high``) at ``level``."""

    model: str
    name: str
    value: float
    low: float
    high: float
    level: float
    note: str = ""


def _agree(s, g):
    """[K, K] whether sign(s_k - s_l) == sign(g_k - g_l) for one prompt (the diagonal agrees)."""
    return jnp.sign(s[:, None] - s[None, :]) == jnp.sign(g[:, None] - g[None, :])


@jax.jit
def _pair_counts(s, g, m):
    """Per prompt: the number of ordered pairs k != l of present responses that agree."""
    block = max(1, _BLOCK_ENTRIES // s.shape[-1] ** 2)

    def row(a):
        s, g, m = a
        both = m[:, None] & m[None, :]
        return jnp.sum(_agree(s, g) & both, dtype=jnp.int64) - jnp.sum(m, dtype=jnp.int64)

    return jax.lax.map(row, (s, g, m), batch_size=block)


@jax.jit
def _pair_weights(s, g, w):
    """Per prompt: sum over ordered pairs k != l that agree of w_k w_l."""
    block = max(1, _BLOCK_ENTRIES // s.shape[-1] ** 2)

    def row(a):
        s, g, w = a
        return w @ jnp.where(_agree(s, g), 1.0, 0.0) @ w - jnp.sum(w * w)

    return jax.lax.map(row, (s, g, w), batch_size=block)


def prompt_variance(dump: Dump, model: str, weights: np.ndarray | None = None) -> np.ndarray:
    """[P] each prompt's reward variance (module docstring): the variance under the weights
    w = :meth:`Dump.weights` (absent responses weigh 0), times K_p / (K_p - 1) for sampled
    responses (no log-probabilities), which makes it the unbiased sample variance."""
    w = dump.weights() if weights is None else weights
    plug_in = _host_reward_variance(w, dump.scores[model])
    if dump.logprob is not None:
        return plug_in
    n = dump.counts.astype(np.float64)
    return plug_in * n / (n - 1.0)


def per_prompt(dump: Dump, model: str, threshold: float | None = None) -> dict:
    """Per-prompt statistics of one model: {name: [P]} (see the module docstring)."""
    s, m = dump.scores[model], dump.mask
    w = dump.weights()
    n = dump.counts.astype(np.float64)
    out = {}
    if dump.gold is not None:
        s_dev, g_dev = to_device(s), to_device(dump.gold)
        agree = np.asarray(_pair_counts(s_dev, g_dev, to_device(m)), dtype=np.float64)
        out["accuracy"] = agree / (n * (n - 1.0))
        if dump.logprob is not None:
            pair_mass = 1.0 - np.sum(w * w, axis=1)
            agree_w = np.asarray(_pair_weights(s_dev, g_dev, to_device(w)))
            valid = pair_mass > 1e-12  # a prompt whose mass sits on one response has no pair
            out["on-policy accuracy"] = np.where(valid, agree_w / np.where(valid, pair_mass, 1), 0)
            out["_valid"] = valid.astype(np.float64)
    out["variance"] = prompt_variance(dump, model, w)
    hi = np.max(np.where(m, s, -np.inf), axis=1)
    lo = np.min(np.where(m, s, np.inf), axis=1)
    out["all equal"] = (hi == lo).astype(np.float64)
    if dump.gold_is_label:
        thr = _threshold(s[m]) if threshold is None else threshold
        say = (s > thr) & m
        g = dump.gold == 1.0
        out["_tp"], out["_pos"] = np.sum(w * (say & g), 1), np.sum(w * (g & m), 1)
        out["_fp"], out["_neg"] = np.sum(w * (say & ~g), 1), np.sum(w * (~g & m), 1)
        out["_threshold"] = np.full(len(n), thr)
    return out


def _threshold(scores: np.ndarray) -> float:
    """The verifier's decision threshold: 0.5 for scores within [0, 1], else 0."""
    return 0.5 if scores.min() >= 0.0 and scores.max() <= 1.0 else 0.0


def _ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _values(sums: dict) -> dict:
    """Model-level measures from sums over prompts (each entry [...] over resamples)."""
    out = {}
    count = sums["_count"]
    if "accuracy" in sums:
        out["accuracy"] = sums["accuracy"] / count
    if "on-policy accuracy" in sums:
        out["on-policy accuracy"] = _ratio(sums["on-policy accuracy"], sums["_valid"])
    out["variance"] = sums["variance"] / count
    out["all-equal fraction"] = sums["all equal"] / count
    if "_tp" in sums:
        out["TPR"] = _ratio(sums["_tp"], sums["_pos"])
        out["FPR"] = _ratio(sums["_fp"], sums["_neg"])
        out["J"] = out["TPR"] - out["FPR"]
    return out


def _resampled_sums(columns: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """[B, C] sums of the [P, C] per-prompt columns over B bootstrap resamples of the prompts:
    counts c [B, P] ~ Multinomial(P, 1/P) (as indices drawn with replacement), sums = c @ X."""
    rng = np.random.default_rng(seed)
    num = columns.shape[0]
    out = np.empty((resamples, columns.shape[1]))
    chunk = max(1, 2**24 // num)
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        idx = rng.integers(0, num, size=(b, num)) + num * np.arange(b)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * num).reshape(b, num)
        out[start : start + b] = counts @ columns
    return out


def _clopper_pearson(count: int, total: int, level: float) -> tuple[float, float]:
    """The exact binomial interval for a proportion count / total. For a mean of independent
    Bernoulli(q_x) with unequal q_x it is conservative (their sum's variance is at most the
    binomial's with the same mean), where a percentile bootstrap of a rare event collapses to
    [0, 0]."""
    ci = stats.binomtest(count, total).proportion_ci(level, method="exact")
    return float(ci.low), float(ci.high)


def _quantile_interval(values: np.ndarray, q: float, level: float) -> tuple[float, float, float]:
    """The q-quantile of ``values`` with a distribution-free interval: order statistics whose
    ranks are the binomial(P, q) quantiles at (1 -+ level) / 2."""
    x = np.sort(values)
    n = len(x)
    lo = int(stats.binom.ppf((1 - level) / 2, n, q))
    hi = int(stats.binom.ppf((1 + level) / 2, n, q)) + 1
    return float(np.quantile(x, q)), float(x[max(lo - 1, 0)]), float(x[min(hi - 1, n - 1)])


def measure_dump(
    dump: Dump,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    threshold: float | None = None,
) -> list[Measure]:
    """Every measure of every reward model in ``dump``, with intervals.

    Args:
        dump: a :class:`Dump` (gold scores are needed for the accuracies, 0/1 gold labels for
            TPR, FPR and J).
        resamples: bootstrap resamples B (>= 100).
        level: the intervals' confidence level, in (0, 1).
        seed: the bootstrap's seed (same seed, same intervals).
        threshold: the verifier decision s > threshold for TPR/FPR (default 0.5 when a model's
            scores lie in [0, 1], else 0).

    Returns:
        A list of :class:`Measure`, models in dump order.
    """
    if not isinstance(dump, Dump):
        raise ValueError(f"`dump` must be a Dump (see load_dump); got {type(dump).__name__}.")
    resamples = check_int("resamples", resamples, 100)
    level = check_float_scalar("level", level, positive=True)
    if level >= 1:
        raise ValueError(f"`level` must be in (0, 1); got {level}.")
    seed = check_seed("seed", seed)
    if threshold is not None:
        threshold = check_float_scalar("threshold", threshold)
    cols = {model: per_prompt(dump, model, threshold) for model in dump.models}
    names = {m: [k for k in c if k != "_threshold"] + ["_count"] for m, c in cols.items()}
    table = np.stack(
        [cols[m][k] if k != "_count" else np.ones(dump.num_prompts) for m in dump.models
         for k in names[m]], axis=1,
    )  # fmt: skip
    # one set of resampled prompts for every model: their intervals are computed jointly
    boot_all = _resampled_sums(table, resamples, seed)
    alpha = (1 - level) / 2
    results, at = [], 0
    for model in dump.models:
        width = len(names[model])
        point = _values(dict(zip(names[model], table[:, at : at + width].sum(axis=0), strict=True)))
        boot = _values(dict(zip(names[model], boot_all[:, at : at + width].T, strict=True)))
        at += width
        for name, value in point.items():
            b = boot[name][np.isfinite(boot[name])]
            low, high = np.quantile(b, [alpha, 1 - alpha]) if len(b) else (math.nan,) * 2
            note = ""
            if name == "all-equal fraction":  # a count of prompts: exact binomial interval
                count = round(value * dump.num_prompts)
                low, high = _clopper_pearson(count, dump.num_prompts, level)
                note = "Clopper-Pearson interval"
            if name in ("TPR", "FPR", "J"):
                note = f"decision: score > {cols[model]['_threshold'][0]:g}"
            results.append(Measure(model, name, float(value), float(low), float(high), level, note))
        for q in QUANTILES:
            value, low, high = _quantile_interval(cols[model]["variance"], q, level)
            note = "order-statistic interval"
            results.append(
                Measure(model, f"variance q{round(100 * q)}", value, low, high, level, note)
            )
    return results
