"""Worlds where the truth is known: dumps sampled from theory_sim's own instances, and the exact
values that the measures of :mod:`.measures` estimate.

A :class:`World` holds pi_0 [X, Y], a gold reward r_G [X, Y] and reward models {name: [X, Y]}.
:meth:`World.sample` draws K responses per prompt from pi_0 (independently, so a response may
repeat), as a policy's samples would be scored; :meth:`World.support` lists every output once
with its log-probability. :meth:`World.exact` gives what each measure estimates:

* accuracy over two independent draws y, y' from pi_0: s + (1 - s) acc_pi with s = sum_y pi(y)^2
  (a repeated response is a tie in both rewards, which agrees) and acc_pi the on-policy accuracy
  given y != y' (:func:`theory_sim.on_policy_accuracy`); on the support, the uniform-pair
  :func:`theory_sim.accuracy` and acc_pi itself;
* the mean over prompts of Var_pi0 r_RM;
* the probability that K draws all score alike, sum_v P(r_RM = v)^K, averaged over prompts;
* for 0/1 gold, TPR = sum_x sum_y pi 1[g=1, r>thr] / sum_x sum_y pi 1[g=1], FPR alike.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from theory_sim import _random
from theory_sim._validation import check_int, check_seed
from theory_sim.evaluate.dump import Dump
from theory_sim.evaluate.measures import _threshold
from theory_sim.instances import counterexample_instance
from theory_sim.metrics import accuracy, on_policy_accuracy, reward_variance
from theory_sim.rewards import theorem_5_models, theorem_6_instance
from theory_sim.stories import section_4_1_world

__all__ = [
    "World",
    "binary_world",
    "random_world",
    "section_4_1",
    "theorem_5_world",
    "theorem_6_world",
]


@dataclasses.dataclass(frozen=True)
class World:
    """pi_0 [X, Y], gold [X, Y] and reward models {name: [X, Y]}."""

    name: str
    probs: np.ndarray
    gold: np.ndarray
    models: dict

    def sample(self, num_responses: int, seed: int) -> Dump:
        """A dump of K = ``num_responses`` independent draws from pi_0 per prompt, each scored
        by every model and the gold reward (no log-probabilities: the draws are the policy's
        samples)."""
        k = check_int("num_responses", num_responses, 2)
        rng = np.random.default_rng(check_seed("seed", seed))
        cdf = np.cumsum(self.probs, axis=1)
        u = rng.random((self.probs.shape[0], k)) * cdf[:, -1:]
        idx = np.minimum(
            np.array(
                [np.searchsorted(c, row, side="right") for c, row in zip(cdf, u, strict=True)]
            ),
            self.probs.shape[1] - 1,
        )
        take = lambda r: np.take_along_axis(r, idx, axis=1)  # noqa: E731
        return Dump(
            prompts=np.array([str(x) for x in range(self.probs.shape[0])]),
            mask=np.ones(idx.shape, dtype=bool),
            scores={m: take(r) for m, r in self.models.items()},
            gold=take(self.gold),
            source=f"{self.name}, K = {k}, seed {seed}",
        )

    def support(self) -> Dump:
        """A dump listing every output with positive probability once, with log pi_0."""
        mask = self.probs > 0
        with np.errstate(divide="ignore"):
            logprob = np.where(mask, np.log(self.probs), 0.0)
        fill = lambda r: np.where(mask, r, 0.0)  # noqa: E731
        return Dump(
            prompts=np.array([str(x) for x in range(self.probs.shape[0])]),
            mask=mask,
            scores={m: fill(r) for m, r in self.models.items()},
            gold=fill(self.gold),
            logprob=logprob,
            source=f"{self.name}, support",
        )

    def exact(self, num_responses: int | None = None, threshold: float | None = None) -> dict:
        """{(model, measure): exact value} of what the dump measures estimate: for K =
        ``num_responses`` independent draws, or (None) for :meth:`support`."""
        p, g = self.probs, self.gold
        square = np.sum(p * p, axis=1)
        out = {}
        labels = bool(np.all(np.isin(g, (0.0, 1.0))))
        for m, r in self.models.items():
            on = np.asarray(on_policy_accuracy(p, r, g))
            var = np.asarray(reward_variance(p, r))
            if num_responses is None:
                out[m, "accuracy"] = float(np.mean(np.asarray(accuracy(r, g))))
                out[m, "on-policy accuracy"] = float(np.mean(on))
            else:
                out[m, "accuracy"] = float(np.mean(square + (1 - square) * on))
                alike = [
                    sum(np.sum(p[x][r[x] == v]) ** num_responses for v in np.unique(r[x]))
                    for x in range(p.shape[0])
                ]
                out[m, "all-equal fraction"] = float(np.mean(alike))
            out[m, "variance"] = float(np.mean(var))
            if labels:
                thr = _threshold(r) if threshold is None else threshold
                say = r > thr
                out[m, "TPR"] = float(np.sum(p * (say & (g == 1))) / np.sum(p * (g == 1)))
                out[m, "FPR"] = float(np.sum(p * (say & (g == 0))) / np.sum(p * (g == 0)))
                out[m, "J"] = out[m, "TPR"] - out[m, "FPR"]
        return out


def section_4_1(seed: int = 0, **options) -> World:
    """The Section 4.1 world (:func:`theory_sim.stories.section_4_1_world`) with its six reward
    models (the five Bradley-Terry fits and the accurate low-variance model; r_G is the gold)."""
    probs, r_gt, models = section_4_1_world(seed, **options)
    models = {k: v for k, v in models.items() if k != "ground truth"}
    return World(f"Section 4.1, seed {seed}", probs, r_gt, models)


def _prompts(build, num_prompts: int, seed: int):
    """Rows of ``build(instance seed)`` for consecutive instance seeds, skipping instances the
    construction refuses (its preconditions fail), until ``num_prompts`` rows."""
    rows, s = [], 0
    while len(rows) < num_prompts:
        try:
            rows.append(build(seed * 10**4 + s))
        except ValueError:
            pass
        s += 1
        if s > 100 * num_prompts:
            raise ValueError("too few instances satisfy the construction's preconditions.")
    return [np.stack(col) for col in zip(*rows, strict=True)]


def theorem_5_world(
    seed: int = 0, num_prompts: int = 16, num_outputs: int = 6, T: float = 100.0, gamma=0.1
) -> World:
    """Theorem 5's pair on every prompt (its own counterexample instance): the perfectly
    accurate slow model and the inaccurate fast one (arXiv 2503.15477)."""

    def build(s):
        probs, r_gt = counterexample_instance(s, num_outputs)
        m = theorem_5_models(probs, r_gt, gamma, T)
        return probs, r_gt, m.slow, m.fast

    probs, gold, slow, fast = _prompts(build, check_int("num_prompts", num_prompts), seed)
    models = {"accurate, slow": slow, "inaccurate, fast": fast}
    return World(f"Theorem 5, seed {seed}", probs, gold, models)


def theorem_6_world(
    seed: int = 0,
    num_prompts: int = 16,
    num_outputs: int = 6,
    T: float = 100.0,
    gamma: float = 0.1,
    c: float = 0.2,
    prime: bool = False,
) -> World:
    """Theorem 6's two reward models with pi_0 from the family Pi (``prime``: from Pi'), where
    r_RM (resp. r'_RM) teaches fast and the other slowly (arXiv 2503.15477)."""

    def build(s):
        r_gt = counterexample_instance(s, num_outputs)[1]
        inst = theorem_6_instance(r_gt, gamma, T, c)
        probs = inst.init_probs_prime if prime else inst.init_probs
        return probs, r_gt, inst.reward_rm, inst.reward_rm_prime

    probs, gold, rm, rm_prime = _prompts(build, check_int("num_prompts", num_prompts), seed)
    models = {"r_RM (+1 on y_gamma)": rm, "r'_RM (+1 on y_gamma')": rm_prime}
    return World(f"Theorem 6 ({'Pi prime' if prime else 'Pi'}), seed {seed}", probs, gold, models)


def _random_tables(seed, num_prompts, num_outputs):
    key = jax.random.key(check_seed("seed", seed))
    k_pi, k_gt, k_noise = jax.random.split(key, 3)
    shape = (check_int("num_prompts", num_prompts), check_int("num_outputs", num_outputs, 2))
    probs = np.asarray(jax.nn.softmax(2.0 * _random.normal(k_pi, shape), axis=-1))
    r_gt = _random.uniform(k_gt, shape, -1.0, 1.0)
    noise = _random.normal(k_noise, shape)
    return probs, r_gt, noise


def random_world(seed: int = 0, num_prompts: int = 32, num_outputs: int = 16) -> World:
    """pi_0 = softmax(2 N(0, 1)), r_G ~ U[-1, 1]; models r_G plus Gaussian noise of scale 0.1,
    0.5 and 2 (less accurate as the noise grows), and r_G / 100 (as accurate, less variance)."""
    probs, r_gt, noise = _random_tables(seed, num_prompts, num_outputs)
    models = {f"noise {s:g}": r_gt + s * noise for s in (0.1, 0.5, 2.0)}
    models["r_G / 100"] = r_gt / 100.0
    return World(f"random, seed {seed}", probs, r_gt, models)


def binary_world(seed: int = 0, num_prompts: int = 32, num_outputs: int = 16) -> World:
    """0/1 gold labels 1[r_G > 0] with r_G ~ U[-1, 1]; models: 0/1 verifiers that flip the label
    of a fixed random 10 % and 30 % of the outputs, and r_G plus noise of scale 0.5 (a
    continuous score, decided at 0)."""
    probs, r_gt, noise = _random_tables(seed, num_prompts, num_outputs)
    gold = (r_gt > 0).astype(np.float64)
    u = _random.uniform(jax.random.fold_in(jax.random.key(seed), 7), gold.shape)
    models = {f"verifier, {round(100 * f)}% flipped": np.where(u < f, 1 - gold, gold)
              for f in (0.1, 0.3)}  # fmt: skip
    models["score r_G + noise 0.5"] = r_gt + 0.5 * noise
    return World(f"binary, seed {seed}", probs, gold, models)
