"""Validation of the dump measures where the truth is known (:mod:`.worlds`): interval coverage,
convergence of the estimates with K, and agreement of the predicted ranking with the exact one.
Notebook 10 and tests/test_evaluate.py run these."""

from __future__ import annotations

import numpy as np

from theory_sim._validation import check_int
from theory_sim.evaluate import worlds
from theory_sim.evaluate.measures import measure_dump
from theory_sim.evaluate.teaching import kendall_tau, predict
from theory_sim.evaluate.worlds import World, section_4_1

__all__ = [
    "coverage",
    "coverage_rows",
    "estimate_errors",
    "ranking_agreement",
    "validation_study",
]


def coverage(world: World, num_responses: int, replications: int = 200, *, resamples=1000):
    """{(model, measure): fraction of ``replications`` dumps (K = ``num_responses`` draws per
    prompt, seeds 0, 1, ...) whose interval covers the exact value of :meth:`World.exact`}."""
    replications = check_int("replications", replications)
    exact = world.exact(num_responses)
    hits = {}
    for rep in range(replications):
        for m in measure_dump(world.sample(num_responses, rep), resamples=resamples, seed=rep):
            if (m.model, m.name) in exact:
                hits.setdefault((m.model, m.name), []).append(
                    m.low <= exact[m.model, m.name] <= m.high
                )
    return {key: float(np.mean(v)) for key, v in hits.items()}


def estimate_errors(world: World, sizes, replications: int = 50, measures=("accuracy", "variance")):
    """{"K": sizes, measure: [len(sizes)]}: the mean over models and ``replications`` of
    |estimate - exact| for each K in ``sizes``."""
    out = {name: [] for name in measures}
    for k in sizes:
        exact = world.exact(int(k))
        errs = {name: [] for name in measures}
        for rep in range(check_int("replications", replications)):
            for m in measure_dump(world.sample(int(k), rep), resamples=100, seed=rep):
                if m.name in errs:
                    errs[m.name].append(abs(m.value - exact[m.model, m.name]))
        for name in measures:
            out[name].append(float(np.mean(errs[name])))
    return {"K": np.asarray(sizes), **{name: np.array(v) for name, v in out.items()}}


def ranking_agreement(seeds, num_responses: int = 16, *, gamma: float = 0.1, **world_options):
    """Per seed of the Section 4.1 world: Kendall's tau between the six reward models ranked by
    exact t_gamma (the flow on all outputs) and by the t_gamma predicted from a dump of K =
    ``num_responses`` draws per prompt; both with the mean gold gain ``gamma``.

    Returns:
        {"seeds": [...], "tau": [...], "exact": [[t per model]], "predicted": [[...]],
        "models": [names], "tau accuracy": [...], "tau variance": [...]}: the last two rank by
        the dump's accuracy and mean variance estimates instead of the predicted time.
    """
    out = {"seeds": [], "tau": [], "exact": [], "predicted": [], "models": None}
    for seed in seeds:
        world = section_4_1(seed, **world_options)
        exact = predict(world.probs, world.models, world.gold, gamma=gamma)
        dump = world.sample(num_responses, seed)
        guess = predict(dump.weights(), dump.scores, dump.gold, gamma=gamma)
        out["models"] = [t.model for t in exact]
        out["seeds"].append(seed)
        out["exact"].append([t.time for t in exact])
        out["predicted"].append([t.time for t in guess])
        speed = [-t.time for t in exact]
        out["tau"].append(kendall_tau(speed, [-t.time for t in guess]))
        # the dump's own measures as predictors of the exact ranking
        measured = {(m.model, m.name): m.value for m in measure_dump(dump, resamples=100)}
        for name in ("accuracy", "variance"):
            values = [measured[t.model, name] for t in exact]
            out.setdefault(f"tau {name}", []).append(kendall_tau(speed, values))
    return out


COVERAGE_WORLDS = ("random", "binary", "section_4_1", "theorem_5")


def coverage_rows(sizes=(8, 32), replications: int = 200) -> list[dict]:
    """One row per world of :data:`COVERAGE_WORLDS` (seed 0) and K in ``sizes``: the lowest and
    the mean coverage over its measures, and where the lowest is (notebook 10, section 2a)."""
    builders = {"random": worlds.random_world, "binary": worlds.binary_world,
                "section_4_1": worlds.section_4_1, "theorem_5": worlds.theorem_5_world}  # fmt: skip
    rows = []
    for key in COVERAGE_WORLDS:
        world = builders[key](0)
        for k in sizes:
            cover = coverage(world, k, replications)
            worst = min(cover, key=cover.get)
            mean = float(np.mean(list(cover.values())))
            rows.append({
                "world": world.name, "K": k, "measures": len(cover),
                "lowest coverage": cover[worst], "mean coverage": mean,
                "lowest at": f"{worst[1]} of {worst[0]!r}",
            })  # fmt: skip
    return rows


def validation_study(replications: int = 200, seeds=tuple(range(20)), error_replications=30):
    """Notebook 10's validation in one call (for ``theory-sim reproduce``): coverage rows,
    estimate errors against K on the random world (seed 5), and the ranking agreement."""
    sizes = [4, 8, 16, 32, 64, 128]
    return {
        "coverage": coverage_rows(replications=replications),
        "errors": estimate_errors(worlds.random_world(5), sizes, error_replications),
        "ranking": ranking_agreement(seeds, 16),
    }
