"""Rankings with a chosen accuracy: each attainable uniform accuracy over Y outputs, and one each.

Accuracy against r_G counts the pairs a ranking orders like r_G (ties must be ties); the attainable
values are found by an exact search over the counts of each tie group of r_G placed so far
(a reward model being an increasing sequence of tie blocks, each inside one group).
"""

from __future__ import annotations

import math

import numpy as np

from theory_sim._validation import (
    as_float_array,
    check_allocation,
    check_float_scalar,
)
from theory_sim.rewards.variance import with_variance

# The exact search visits every vector of per-group counts: prod_k (g_k + 1) states.
_MAX_SEARCH_STATES = 2**18


def _groups(reward_gt: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    levels, inverse = np.unique(reward_gt, return_inverse=True)
    return levels, [np.flatnonzero(inverse == k) for k in range(len(levels))]


def _reachable(sizes: tuple[int, ...]) -> dict:
    """For every vector of placed counts, the bitset of reachable correct-pair counts.

    A reward model is, without loss of generality, an increasing sequence of tie blocks, each
    inside one ground-truth tie group (a block mixing groups can be split by decreasing r_G
    without changing any pair's correctness). Appending a block of b outputs of group k to
    placed counts s adds b * sum_{j<k} s_j correct cross pairs and C(b, 2) correct ties.
    """
    reach = {tuple(0 for _ in sizes): 1}  # bit c set: c correct pairs reachable
    for state in np.ndindex(*(g + 1 for g in sizes)):
        bits = reach.get(state)
        if not bits:
            continue
        below = 0
        for k, g in enumerate(sizes):
            for b in range(1, g - state[k] + 1):
                nxt = (*state[:k], state[k] + b, *state[k + 1 :])
                gain = b * below + b * (b - 1) // 2
                reach[nxt] = reach.get(nxt, 0) | (bits << gain)
            below += state[k]
    return reach


def _search_size(sizes) -> int:
    return math.prod(g + 1 for g in sizes)


def attainable_accuracies(reward_gt) -> np.ndarray:
    """Every uniform-pair accuracy some reward model attains against ``reward_gt`` (one prompt).

    Without ties in r_G every count of correct pairs from 0 to n(n-1)/2 is attainable (inversion
    counts of permutations); with ties some are not (three tied outputs: 2 of 3 pairs cannot be
    correct). Computed exactly by the block search of :func:`ranking_with_accuracy`.

    Returns:
        Sorted accuracies k / (n(n-1)/2).
    """
    r_gt = as_float_array("reward_gt", reward_gt, ndim=(1,))
    n = r_gt.shape[0]
    if n < 2:
        raise ValueError(f"`reward_gt` needs at least 2 outputs; got {n}.")
    pairs = n * (n - 1) // 2
    check_allocation(
        f"`reward_gt` with {n} outputs has {pairs + 1} accuracies, which", 8.0 * (pairs + 1)
    )
    _, groups = _groups(r_gt)
    sizes = tuple(len(g) for g in groups)
    if max(sizes) == 1:
        return np.arange(pairs + 1) / pairs
    _require_searchable(sizes)
    bits = _reachable(sizes)[sizes]
    return np.array([c for c in range(pairs + 1) if bits >> c & 1]) / pairs


def nearest_attainable_accuracy(reward_gt, accuracy: float) -> float:
    """The attainable uniform-pair accuracy (:func:`attainable_accuracies`) closest to
    ``accuracy`` in [0, 1]: a value :func:`ranking_with_accuracy` accepts.

    Examples:
        >>> import numpy as np
        >>> from theory_sim.rewards import nearest_attainable_accuracy
        >>> nearest_attainable_accuracy(np.array([0.0, 1.0, 2.0]), 0.6)   # k / 3 pairs
        0.6666666666666666
    """
    acc = check_float_scalar("accuracy", accuracy, nonnegative=True)
    if acc > 1:
        raise ValueError(f"`accuracy` must be in [0, 1]; got {acc}.")
    options = attainable_accuracies(reward_gt)
    return float(options[np.argmin(np.abs(options - acc))])


def _require_searchable(sizes) -> None:
    if _search_size(sizes) > _MAX_SEARCH_STATES:
        raise ValueError(
            f"the exact search over tie blocks would visit {_search_size(sizes)} states (limit "
            f"{_MAX_SEARCH_STATES}); reduce the number of outputs or of tied groups."
        )


def ranking_with_accuracy(reward_gt, accuracy: float) -> np.ndarray:
    """Integer ranks (a reward model) with uniform-pair accuracy exactly ``accuracy`` against r_G.

    Ties in r_G count as the paper counts them (a tie in r_G is correct only if r_RM ties too).
    Any strictly increasing map of the ranks (e.g. :func:`with_variance`) keeps the accuracy.

    Args:
        reward_gt: r_G [Y] (one prompt).
        accuracy: in [0, 1]; must be attainable, else the error names the nearest attainable
            values (:func:`attainable_accuracies`).

    Returns:
        [Y] integer-valued ranks as floats (higher is better).

    Examples:
        >>> import numpy as np
        >>> from theory_sim import accuracy
        >>> from theory_sim.rewards import ranking_with_accuracy
        >>> r_gt = np.array([0.0, 1.0, 2.0, 3.0])
        >>> float(accuracy(ranking_with_accuracy(r_gt, 0.5), r_gt))
        0.5
    """
    r_gt = as_float_array("reward_gt", reward_gt, ndim=(1,))
    n = r_gt.shape[0]
    if n < 2:
        raise ValueError(f"`reward_gt` needs at least 2 outputs; got {n}.")
    acc = check_float_scalar("accuracy", accuracy, nonnegative=True)
    pairs = n * (n - 1) // 2
    target = round(acc * pairs)
    _, groups = _groups(r_gt)
    sizes = tuple(len(g) for g in groups)
    exact_count = abs(target - acc * pairs) < 1e-9 * pairs and 0 <= target <= pairs
    if max(sizes) == 1 and exact_count:
        return _lehmer_ranking(r_gt, pairs - target)
    if max(sizes) > 1:
        _require_searchable(sizes)
        reach = _reachable(sizes)
        if exact_count and reach[sizes] >> target & 1:
            return _blocks_to_ranks(_backtrack(reach, sizes, target), groups, n)
    options = attainable_accuracies(r_gt)
    below, above = options[options < acc], options[options > acc]
    nearest = ", ".join(f"{v:.6g}" for v in (*below[-1:], *above[:1]))
    raise ValueError(
        f"`accuracy` {acc:.6g} is not attainable against this `reward_gt` "
        f"({n} outputs, tie groups of sizes {sorted(sizes, reverse=True)[:5]}...); "
        f"nearest attainable: {nearest}."
    )


def _lehmer_ranking(r_gt: np.ndarray, inversions: int) -> np.ndarray:
    """A strict ranking of distinct r_G values with exactly ``inversions`` discordant pairs.

    Outputs are placed in increasing r_RM order; taking the j-th smallest (by r_G) of those left
    ranks it below j outputs with smaller r_G: j discordant pairs (a Lehmer code).
    """
    pool = [int(i) for i in np.argsort(r_gt)]
    order, remaining = [], inversions
    while pool:
        j = min(remaining, len(pool) - 1)
        order.append(pool.pop(j))
        remaining -= j
    ranks = np.empty(len(order))
    ranks[order] = np.arange(len(order))
    return ranks


def _backtrack(reach: dict, sizes: tuple[int, ...], target: int) -> list[tuple[int, int]]:
    """Blocks (group, size) in increasing r_RM order reaching exactly ``target`` correct pairs."""
    state, need, blocks = sizes, target, []
    while any(state):
        for k in range(len(sizes)):
            below = sum(state[:k])
            found = False
            for b in range(1, state[k] + 1):
                prev = (*state[:k], state[k] - b, *state[k + 1 :])
                gain = b * below + b * (b - 1) // 2
                if need >= gain and reach.get(prev, 0) >> (need - gain) & 1:
                    blocks.append((k, b))
                    state, need, found = prev, need - gain, True
                    break
            if found:
                break
    return blocks[::-1]


def _blocks_to_ranks(blocks, groups, n: int) -> np.ndarray:
    ranks = np.empty(n)
    taken = [0] * len(groups)
    for rank, (k, b) in enumerate(blocks):
        members = groups[k][taken[k] : taken[k] + b]
        ranks[members] = rank
        taken[k] += b
    return ranks


def accuracy_sweep(init_probs, reward_gt, accuracies, variance: float) -> np.ndarray:
    """Reward models with one fixed reward variance under pi and each requested accuracy.

    Row k = :func:`with_variance` (init_probs, :func:`ranking_with_accuracy` (r_G, acc_k),
    variance): the ranking sets the accuracy, the monotone transform then sets the variance
    without changing it. Together with :func:`variance_sweep` this fills a grid on the
    accuracy-variance plane.

    Returns:
        [K, Y].
    """
    values = as_float_array("accuracies", accuracies, ndim=(1,))
    rankings = []
    for a in values:
        try:
            rankings.append(ranking_with_accuracy(reward_gt, a))
        except ValueError as error:  # name the argument the caller gave
            raise ValueError(f"`accuracies` holds {a!r}: {error}") from None
    return np.stack([with_variance(init_probs, r, variance) for r in rankings])
