"""Named experiments. ``check_suite`` is what ``theory-sim check`` runs: every available claim
checked on seeded random instances."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import numpy as np

from theory_sim.instances import random_problem
from theory_sim.metrics import _expected_reward
from theory_sim.objective import kl_optimal_policy
from theory_sim.problem import Problem
from theory_sim.theorems import Check, check_proposition_3, check_proposition_3_trajectory

__all__ = ["CHECK_SHAPES", "KL_COEFS", "check_suite"]

# A few shapes, cycled: each shape compiles once, so the suite's cost is dominated by solving.
CHECK_SHAPES = ((1, 2), (1, 5), (3, 4), (2, 10))
KL_COEFS = (0.0, 0.01, 0.1, 1.0)


def _instances(seed: int, num_instances: int) -> Iterator[tuple[int, jax.Array]]:
    root = jax.random.key(seed)
    for i in range(num_instances):
        yield i, jax.random.fold_in(root, i)


def check_suite(
    seed: int = 0,
    num_instances: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> list[Check]:
    """Run every available check on ``num_instances`` seeded random instances.

    Instance i uses shape CHECK_SHAPES[i % 4], lambda = KL_COEFS[(i // 4) % 4], a reward model
    scaled by 10^-u with u ~ U[0, 4] (reward variances from about 1e-9 to 1), a random prompt and
    gamma a random fraction in [0.05, 0.95] of the gain the flow achieves in the limit (toward pi*
    for lambda > 0, toward the best output of r_RM for lambda = 0); where that limit gain is not
    positive, the same fraction of the largest gain the reward allows (t_gamma is then inf). Each
    instance contributes Proposition 3 for r_G and for r_RM; every fourth one also the two
    in-proof bounds along its trajectory.

    Args:
        seed: root seed; same seed, same instances and numbers.
        num_instances: how many instances.
        progress: optional callback(done, total).

    Returns:
        A list of :class:`~theory_sim.theorems.Check`.
    """
    checks: list[Check] = []
    for i, key in _instances(seed, num_instances):
        k_problem, k_draws = jax.random.split(key)
        num_prompts, num_outputs = CHECK_SHAPES[i % len(CHECK_SHAPES)]
        draws = np.asarray(jax.random.uniform(k_draws, (4,), dtype=np.float64))
        problem = random_problem(
            num_prompts,
            num_outputs,
            key=k_problem,
            kl_coef=KL_COEFS[(i // len(CHECK_SHAPES)) % len(KL_COEFS)],
            rm_scale=10.0 ** (-4.0 * draws[0]),
        )
        prompt = int(draws[1] * num_prompts)
        probs0 = np.exp(np.asarray(problem.ref_log_probs[prompt]))
        limit = _limit_policy(problem, prompt)
        for name, table, frac in (
            ("r_G", problem.reward_gt, draws[2]),
            ("r_RM", problem.reward_rm, draws[3]),
        ):
            row = np.asarray(table[prompt])
            start = float(_expected_reward(probs0, row))
            headroom = float(_expected_reward(limit, row)) - start
            headroom = headroom if headroom > 0 else float(row.max()) - start
            gamma = (0.05 + 0.9 * frac) * headroom
            label = (
                f"#{i} X={num_prompts} Y={num_outputs} "
                f"lambda={float(problem.kl_coef):g} r={name} gamma={gamma:.2g}"
            )
            checks.append(check_proposition_3(problem, gamma, table, prompt, instance=label))
        if i % 4 == 0:
            label = f"#{i} X={num_prompts} Y={num_outputs} lambda={float(problem.kl_coef):g}"
            checks.extend(check_proposition_3_trajectory(problem, prompt, instance=label))
        if progress is not None:
            progress(i + 1, num_instances)
    return checks


def _limit_policy(problem: Problem, prompt: int) -> np.ndarray:
    """Where the tabular flow of ``prompt`` heads: pi* for lambda > 0, else the best r_RM output
    (a unique argmax for rewards drawn from a continuous distribution)."""
    if float(problem.kl_coef) > 0:
        return np.asarray(kl_optimal_policy(problem)).reshape(problem.num_prompts, -1)[prompt]
    return np.eye(problem.num_outputs)[int(np.argmax(np.asarray(problem.reward_rm[prompt])))]
