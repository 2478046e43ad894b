"""Notebooks 05 and 06: the tabular analogue of Section 4.1 of arXiv 2503.15477 (Tables 1 and 2).

Bradley-Terry reward models fit to preference pairs sampled on- and off-policy, one accurate but
low-variance model built by hand, the ground truth; the increase after the exact flow (and RLOO)
correlated with each model's reward variance and accuracies, as Table 2 does.
"""

from __future__ import annotations

import contextlib
import dataclasses

import jax
import numpy as np

from theory_sim import _random, bradley_terry, rewards
from theory_sim._parallel import threaded_map
from theory_sim._validation import check_float_scalar, check_int, check_seed
from theory_sim.flow import gradient_flow
from theory_sim.metrics import (
    accuracy,
    harm_aware_accuracy,
    on_policy_accuracy,
    reward_variance,
    weighted_accuracy,
)
from theory_sim.policies import Autoregressive, Tabular, start_at
from theory_sim.problem import Problem
from theory_sim.stories._common import _pearson, _spearman

# Table 2 of arXiv 2503.15477 (Pythia-2.8B), the whole of it as theory.md section 5 quotes it:
# correlation with the increase after one epoch, over the reward models.
PAPER_TABLE_2 = {
    (measure, increase, kind): value
    for measure, values in {
        "variance": (0.982, 1.000, 0.834, 0.714),
        "on-policy accuracy": (-0.762, 0.143, -0.283, 0.200),
        "off-policy accuracy": (-0.933, -0.943, -0.507, -0.543),
        "on- and off-policy accuracy": (-0.870, -0.486, -0.397, 0.200),
        "variance and accuracy": (0.676, 0.886, 0.940, 0.828),
    }.items()
    for (increase, kind), value in zip(
        (
            ("proxy", "pearson"),
            ("proxy", "spearman"),
            ("ground truth", "pearson"),
            ("ground truth", "spearman"),
        ),
        values,
        strict=True,
    )
}


@dataclasses.dataclass(frozen=True)
class Section41:
    """The tabular analogue of Section 4.1 of arXiv 2503.15477.

    Attributes:
        table_1: per reward model (mean over seeds): variance (mean over prompts of Var_pi0 of the
            normalised reward), on- and off-policy accuracy, and the proxy and ground-truth
            increases after the horizon under the exact flow (and under RLOO).
        table_2: per (models, measure, increase, method): Pearson and Spearman correlation
            across the reward models (ground truth excluded; models "all" or without the
            hand-built one), mean and standard deviation over seeds, the number of seeds where
            each is positive ("pearson > 0") and negative, and the paper's value (the whole
            of its Table 2; None for the measures it does not report). Measures include the
            combined ones (see :func:`_measure`) and those of arXiv 2604.25872.
        times: [K] times of ``curves``; curves: {model: [K] mean over seeds of the ground-truth
            increase along the exact flow}.
        findings: the paper's qualitative claims, each with what the simulation shows.
    """

    table_1: list[dict]
    table_2: list[dict]
    times: np.ndarray
    curves: dict
    findings: list[dict]
    settings: dict


ON_POLICY_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)


_MEASURES = (
    "variance",
    "on-policy accuracy",
    "off-policy accuracy",
    "Acc-W",
    "HAcc",
    "HAcc-W",
    "on- and off-policy accuracy",
    "variance and accuracy",
)


# The hand-built model (perfectly accurate, variance 1e-6 on half the prompts); Table 2 is also
# reported without it, since the sign of the on-policy accuracy correlation depends on it.
HAND_BUILT = "accurate, low variance"


_WITHOUT_HAND_BUILT = f"without {HAND_BUILT!r}"  # the "models" value of those Table 2 rows


def _section_4_1_models(probs, r_gt, num_pairs, beta, key) -> dict:
    models = {}
    for i, frac in enumerate(ON_POLICY_FRACTIONS):
        pairs = bradley_terry.sample_preferences(
            probs, r_gt, num_pairs, frac, key=jax.random.fold_in(key, i), beta=beta
        )
        models[f"BT {round(100 * frac)}% on-policy"] = bradley_terry.fit_bradley_terry(
            pairs, *r_gt.shape
        )
    models[HAND_BUILT], _ = rewards.scale_prompts(r_gt, 0.5, 1e-3, key=jax.random.fold_in(key, 99))
    models["ground truth"] = r_gt
    return {name: bradley_terry.normalize_rewards(r, probs) for name, r in models.items()}


def _world(param, seed, num_prompts, num_outputs, pairs_per_prompt, beta, logit_std):
    """(pi_0 [X, Y], r_G [X, Y], {name: normalised r_RM [X, Y]}) of one seed (see
    :func:`section_4_1`)."""
    k_gt, k_pi, k_rm, _ = jax.random.split(jax.random.key(seed), 4)
    shape = (num_prompts, num_outputs)
    r_gt = _random.uniform(k_gt, shape, -1.0, 1.0)
    if isinstance(param, Autoregressive):
        logits = logit_std * _random.normal(
            k_pi, (num_prompts, param.num_prefixes, param.vocab_size)
        )
        probs = np.exp(np.asarray(param.log_probs(logits)))
    else:
        probs = np.asarray(jax.nn.softmax(logit_std * _random.normal(k_pi, shape), axis=-1))
    models = _section_4_1_models(probs, r_gt, pairs_per_prompt * num_prompts, beta, k_rm)
    return probs, r_gt, models


def section_4_1_world(
    seed: int = 0,
    *,
    num_prompts: int = 20,
    num_outputs: int = 16,
    pairs_per_prompt: int = 40,
    beta: float = 4.0,
    logit_std: float = 2.0,
):
    """One seed's tabular world of :func:`section_4_1`: r_G ~ U[-1, 1], pi_0 = softmax of
    N(0, logit_std^2) logits, and the reward models (five Bradley-Terry fits with 100 to 0 %
    on-policy pairs, the accurate low-variance model and r_G), each normalised under pi_0.

    Returns:
        (pi_0 [X, Y], r_G [X, Y], {name: r_RM [X, Y]}), the same arrays section_4_1 uses.
    """
    return _world(
        Tabular(), check_seed("seed", seed), check_int("num_prompts", num_prompts),
        check_int("num_outputs", num_outputs, 2), check_int("pairs_per_prompt", pairs_per_prompt),
        check_float_scalar("beta", beta, positive=True),
        check_float_scalar("logit_std", logit_std, nonnegative=True),
    )  # fmt: skip


def section_4_1(
    policy=None,
    *,
    num_prompts: int = 20,
    num_outputs: int = 16,
    seeds=tuple(range(20)),
    pairs_per_prompt: int = 40,
    beta: float = 4.0,
    logit_std: float = 2.0,
    kl_coef: float = 0.05,
    horizon: float | None = None,
    rloo_steps: int = 200,
    learning_rate: float | None = None,
    num_samples: int = 8,
) -> Section41:
    """Section 4.1 of arXiv 2503.15477 in the tabular world.

    Per seed: r_G ~ U[-1, 1] on X prompts and Y outputs (for an :class:`Autoregressive`
    ``policy``, Y = V^L sequences); pi_0 = softmax of N(0, logit_std^2) logits (for sequences,
    per-token logits, so pi_0 is a genuine autoregressive policy). Reward models: Bradley-Terry
    fits to ``pairs_per_prompt * X`` preference pairs (labels ~ sigmoid(beta (r_G(y) - r_G(y'))))
    of which 100/75/50/25/0 % are drawn on-policy from pi_0 and the rest uniformly; the perfectly
    accurate low-variance model (r_G scaled by 1e-3 on half the prompts); and r_G itself. Each is
    normalised to mean 0 and variance 1 under pi_0 (:func:`~theory_sim.bradley_terry.
    normalize_rewards`). Every model is optimised with lambda = ``kl_coef`` by the exact flow for
    ``horizon`` (default 2 X: phi averages the X prompts, so each prompt's share of the gradient
    is 1/X) and by RLOO (``rloo_steps`` steps of size ``learning_rate``, default horizon /
    rloo_steps so that the two cover the same time, with ``num_samples`` samples per prompt).

    Measures, as in the paper: variance = mean_x Var_pi0 r_RM (after normalisation); on-policy
    accuracy over pairs drawn from pi_0; off-policy accuracy over uniform pairs; the increases of
    mean_x E r_RM (proxy) and mean_x E r_G (ground truth) over the run. Beside them, the
    measures of arXiv 2604.25872 (Section 4) under pi_0, each a mean over prompts: Acc-W
    (:func:`~theory_sim.metrics.weighted_accuracy`), HAcc and HAcc-W
    (:func:`~theory_sim.metrics.harm_aware_accuracy`), whose claim is that they correlate with
    the ground-truth increase better than ranking accuracy.
    """
    from theory_sim.training import sampled_optimize

    param = Tabular() if policy is None else policy
    if not isinstance(param, Tabular | Autoregressive):
        raise ValueError(
            f"`policy` must be None, Tabular() or Autoregressive(V, L); got {policy!r}."
        )
    if isinstance(seeds, str) or not np.iterable(seeds):
        raise ValueError(f"`seeds` must be a list of seeds; got {seeds!r}.")
    seeds = tuple(check_seed("seeds", s) for s in seeds)
    if len(seeds) < 1:
        raise ValueError("`seeds` must name at least one seed.")
    pairs_per_prompt = check_int("pairs_per_prompt", pairs_per_prompt)
    num_outputs = (
        param.num_sequences
        if isinstance(param, Autoregressive)
        else check_int("num_outputs", num_outputs, 2)
    )
    beta = check_float_scalar("beta", beta, positive=True)
    logit_std = check_float_scalar("logit_std", logit_std, nonnegative=True)
    kl_coef = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    num_samples = check_int("num_samples", num_samples, 2)
    if learning_rate is not None:
        learning_rate = check_float_scalar("learning_rate", learning_rate, positive=True)
    num_prompts = check_int("num_prompts", num_prompts)
    rloo_steps = check_int("rloo_steps", rloo_steps)
    horizon = (
        2.0 * num_prompts
        if horizon is None
        else check_float_scalar("horizon", horizon, positive=True)
    )
    if learning_rate is None:
        learning_rate = horizon / rloo_steps
    times = np.concatenate([[0.0], np.geomspace(horizon * 1e-3, horizon, 40)])

    def one_seed(seed):  # the rows of one seed's reward models, and their r_G increase curves
        probs, r_gt, models = _world(param, seed, num_prompts, num_outputs, pairs_per_prompt,
                                     beta, logit_std)  # fmt: skip
        k_rl = jax.random.split(jax.random.key(seed), 4)[3]
        params, _ = start_at(param, probs)
        rows, gt_curves = {}, {}
        for i, (name, r_rm) in enumerate(models.items()):
            problem = Problem(params, r_rm, r_gt, kl_coef=kl_coef, policy=param)
            traj = gradient_flow(problem, horizon, save_ts=times)
            run = sampled_optimize(
                problem,
                learning_rate,
                rloo_steps,
                key=jax.random.fold_in(k_rl, i),
                num_samples=num_samples,
                save_every=rloo_steps,
            )
            gt_curves[name] = _mean_increase(traj.expected_gt)
            rows[name] = {
                "variance": float(np.mean(reward_variance(probs, r_rm))),
                "on-policy accuracy": float(np.mean(on_policy_accuracy(probs, r_rm, r_gt))),
                "off-policy accuracy": float(np.mean(accuracy(r_rm, r_gt))),
                "Acc-W": float(np.mean(weighted_accuracy(probs, r_rm, r_gt))),
                "HAcc": float(np.mean(harm_aware_accuracy(probs, r_rm, r_gt, weighted=False))),
                "HAcc-W": float(np.mean(harm_aware_accuracy(probs, r_rm, r_gt))),
                "proxy increase": float(_mean_increase(traj.expected_rm)[-1]),
                "ground-truth increase": float(gt_curves[name][-1]),
                "proxy increase (RLOO)": float(_mean_increase(run.expected_rm)[-1]),
                "ground-truth increase (RLOO)": float(_mean_increase(run.expected_gt)[-1]),
            }
        return rows, gt_curves

    # seeds are independent: one thread per core, results in seed order
    per_seed, curves = [], {}
    with contextlib.closing(threaded_map(one_seed, seeds)) as done:
        for rows, gt_curves in done:
            per_seed.append(rows)
            for name, curve in gt_curves.items():
                curves.setdefault(name, []).append(curve)
    names = list(per_seed[0])
    columns = list(per_seed[0][names[0]])
    table_1 = []
    for name in names:
        row = {"reward model": name}
        for col in columns:
            values = np.array([s[name][col] for s in per_seed])
            row[col] = float(values.mean())
            row[col + " sd"] = float(values.std())
        table_1.append(row)
    table_2 = _correlations(per_seed, [n for n in names if n != "ground truth"])
    mean_curves = {name: np.mean(curves[name], axis=0) for name in names}
    settings = {
        "policy": repr(param),
        "num_prompts": num_prompts,
        "num_outputs": num_outputs,
        "seeds": list(seeds),
        "pairs_per_prompt": pairs_per_prompt,
        "beta": beta,
        "logit_std": logit_std,
        "kl_coef": kl_coef,
        "horizon": horizon,
        "rloo_steps": rloo_steps,
        "learning_rate": learning_rate,
        "num_samples": num_samples,
    }
    findings = _findings(table_1, table_2, times, mean_curves)
    return Section41(table_1, table_2, times, mean_curves, findings, settings)


def _mean_increase(expected: np.ndarray) -> np.ndarray:
    """[K] mean over prompts of E_{pi_k} r - E_{pi_0} r, from expected rewards [K] or [K, X]."""
    e = np.asarray(expected).reshape(expected.shape[0], -1)
    return np.mean(e - e[0], axis=-1)


def _measure(seed_rows: dict, names: list[str], measure: str) -> np.ndarray:
    """One measure across the reward models ``names`` of one seed.

    The combined measures of Table 2: "on- and off-policy accuracy" is the mean of the two
    accuracies; "variance and accuracy" is the mean of the variance and that combined accuracy,
    each standardised across the models (z-scores), since the two live on different scales.
    """

    def column(key):
        return np.array([seed_rows[n][key] for n in names])

    if measure == "on- and off-policy accuracy":
        return 0.5 * (column("on-policy accuracy") + column("off-policy accuracy"))
    if measure == "variance and accuracy":
        parts = [column("variance"), _measure(seed_rows, names, "on- and off-policy accuracy")]
        return 0.5 * sum((p - p.mean()) / p.std() for p in parts)
    return column(measure)


def _correlations(per_seed: list[dict], names: list[str]) -> list[dict]:
    """Table 2 rows: per (models, measure, increase, method), Pearson and Spearman correlation
    across the reward models, their mean and standard deviation over seeds and the number of
    seeds where each is positive and negative; with every proxy model, and without the
    hand-built one."""
    rows = []
    model_sets = {"all": names, _WITHOUT_HAND_BUILT: [n for n in names if n != HAND_BUILT]}
    for models, chosen in model_sets.items():
        for increase in ("proxy", "ground truth"):
            for method in ("flow", "RLOO"):
                col = ("proxy increase" if increase == "proxy" else "ground-truth increase") + (
                    "" if method == "flow" else " (RLOO)"
                )
                for measure in _MEASURES:
                    found = {"pearson": [], "spearman": []}
                    for seed_rows in per_seed:
                        x = _measure(seed_rows, chosen, measure)
                        y = np.array([seed_rows[n][col] for n in chosen])
                        found["pearson"].append(_pearson(x, y))
                        found["spearman"].append(_spearman(x, y))
                    row = {"models": models, "measure": measure, "increase": increase}
                    row["method"] = method
                    for kind, values in found.items():
                        values = np.array(values)
                        row[kind] = float(values.mean())
                        row[kind + " sd"] = float(values.std())
                        row[kind + " > 0"] = int((values > 0).sum())
                        row[kind + " < 0"] = int((values < 0).sum())
                        row["paper " + kind] = PAPER_TABLE_2.get((measure, increase, kind))
                    rows.append(row)
    return rows


def _findings(table_1, table_2, times, curves) -> list[dict]:
    by_name = {r["reward model"]: r for r in table_1}
    proxies = [n for n in by_name if n != "ground truth"]
    slowest = min(proxies, key=lambda n: by_name[n]["ground-truth increase"])

    def row(measure, increase, models="all"):
        return next(
            r
            for r in table_2
            if (r["models"], r["measure"], r["increase"], r["method"])
            == (models, measure, increase, "flow")
        )

    def corr(measure, increase, models="all"):
        r = row(measure, increase, models)
        seeds = r["pearson > 0"] + r["pearson < 0"]
        return f"{r['pearson']:+.3f} ({r['pearson > 0']} of {seeds} seeds positive)"

    without = _WITHOUT_HAND_BUILT

    early = [
        (float(t), n)
        for k, t in enumerate(times)
        if t > 0
        for n in proxies
        if curves[n][k] > curves["ground truth"][k]
    ]
    return [
        {
            "paper": "reward variance correlates strongly with the increase (Pearson 0.982 proxy, "
            "0.834 ground truth)",
            "simulation": f"Pearson {corr('variance', 'proxy')} proxy, "
            f"{corr('variance', 'ground truth')} ground truth",
        },
        {
            "paper": "accuracy correlates weakly or negatively with the ground-truth increase "
            "(on-policy -0.283, off-policy -0.507)",
            "simulation": f"on-policy {corr('on-policy accuracy', 'ground truth')}, "
            f"off-policy {corr('off-policy accuracy', 'ground truth')}",
        },
        {
            "paper": "(footnote) accuracy correlating negatively is not always the case",
            "simulation": "without the hand-built model: on-policy "
            f"{corr('on-policy accuracy', 'ground truth', without)}, off-policy "
            f"{corr('off-policy accuracy', 'ground truth', without)}",
        },
        {
            "paper": "(arXiv 2604.25872) harm-aware accuracy typically correlates better with "
            "the ground-truth increase than ranking accuracy",
            "simulation": f"HAcc-W {corr('HAcc-W', 'ground truth')}, HAcc "
            f"{corr('HAcc', 'ground truth')}, Acc-W {corr('Acc-W', 'ground truth')}; without the "
            f"hand-built model HAcc-W {corr('HAcc-W', 'ground truth', without)}, Acc-W "
            f"{corr('Acc-W', 'ground truth', without)}",
        },
        {
            "paper": "the perfectly accurate, low-variance model is the slowest teacher",
            "simulation": f"slowest by ground-truth increase: {slowest}",
        },
        {
            "paper": "early on, a proxy reward model beats optimising the ground truth directly",
            "simulation": (
                f"yes: {early[0][1]} is ahead at t = {early[0][0]:.3g}"
                if early
                else "no proxy model is ahead of the ground truth at any saved time"
            ),
        },
    ]
