"""Exact per-prompt quantities of a policy's probability table (Section 3 of arXiv 2503.15477).

Every function takes tables whose last axis enumerates the outputs, shape [..., Y] (typically
[X, Y] or [T, X, Y]), and returns one number per row, shape [...]: a scalar for a 1-D table.

Sums are taken relative to the reward of the row's most probable output. Algebraically this
changes nothing (probabilities sum to 1); numerically it removes the cancellation in r - E_pi r
when pi is nearly a point mass, which is where the theorems' long times live.

The public functions validate their input; the underscored ones are the jit-safe kernels used
inside the flow and take no checks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import entr, rel_entr

from theory_sim._device import to_device
from theory_sim._validation import as_float_array, check_int, check_probabilities

__all__ = [
    "accuracy",
    "best_of_n",
    "best_of_n_policy",
    "entropy",
    "expected_reward",
    "harm_aware_accuracy",
    "kl_divergence",
    "on_policy_accuracy",
    "reward_variance",
    "weighted_accuracy",
]


# ----------------------------------------------------------------------------- kernels (no checks)


def _centered(probs, reward, xp=jnp) -> tuple:
    """(c, E_pi c, r_m) with c = r - r_m and r_m the reward of the most probable output; ``xp``
    is jax.numpy (traceable) or numpy (on the host: no compiled program per shape)."""
    mode = xp.argmax(probs, axis=-1, keepdims=True)
    r_mode = xp.take_along_axis(reward, mode, axis=-1)
    centered = reward - r_mode
    return centered, xp.sum(probs * centered, axis=-1), r_mode[..., 0]


def _expected_reward(probs, reward, xp=jnp):
    _, mean_c, r_mode = _centered(probs, reward, xp)
    return r_mode + mean_c


def _reward_variance(probs, reward, xp=jnp):
    centered, mean_c, _ = _centered(probs, reward, xp)
    return xp.sum(probs * xp.square(centered - mean_c[..., None]), axis=-1)


def _host_expected_reward(probs, reward) -> np.ndarray:
    """:func:`_expected_reward` in numpy, for host values (an eager JAX call would compile a
    program for each new shape)."""
    return _expected_reward(np.asarray(probs, np.float64), np.asarray(reward, np.float64), np)


def _host_reward_variance(probs, reward) -> np.ndarray:
    """:func:`_reward_variance` in numpy, for host values."""
    return _reward_variance(np.asarray(probs, np.float64), np.asarray(reward, np.float64), np)


def _kl_divergence(probs: jax.Array, ref_probs: jax.Array) -> jax.Array:
    # rel_entr gives 0 log 0 = 0 and +inf where the reference has no mass.
    return jnp.sum(rel_entr(probs, ref_probs), axis=-1)


def _entropy(probs: jax.Array) -> jax.Array:
    return jnp.sum(entr(probs), axis=-1)


def _pair_accuracy(reward_rm: jax.Array, reward_gt: jax.Array, weights: jax.Array) -> jax.Array:
    """Weighted agreement of sign(r_RM(y) - r_RM(y')) with sign(r_G(y) - r_G(y')) for one row.

    ``weights`` [Y, Y] is symmetrised; the diagonal (y = y') is ignored.
    """
    agree = jnp.sign(reward_rm[:, None] - reward_rm[None, :]) == jnp.sign(
        reward_gt[:, None] - reward_gt[None, :]
    )
    w = 0.5 * (weights + weights.T) * (1.0 - jnp.eye(weights.shape[-1], dtype=weights.dtype))
    return jnp.sum(jnp.where(agree, w, 0.0)) / jnp.sum(w)


def _dominance(b: np.ndarray, w: np.ndarray, v: np.ndarray | None = None) -> float:
    """sum_{i < j, b_i < b_j} v_i w_j (v = w by default) for integer ranks 0 <= b < n, in
    O(n log^2 n) time and O(n) memory: a bottom-up merge sort. Every pair i < j lies in sibling
    blocks (left, right) at exactly one level; there, with each block already sorted by b, every
    right element counts the v-weight of its left sibling's elements of smaller rank by binary
    search (vectorised over all blocks), and then each pair of blocks is merged by a stable sort
    of their two sorted runs."""
    n = b.shape[0]
    v = w if v is None else v
    total, size = 0.0, 1
    pos = np.arange(n)
    while size < n:
        pair = pos // (2 * size)
        left = (pos // size) % 2 == 0
        key = pair * (n + 1) + b  # ranks are < n: keys of different pairs never interleave
        keys = key[left]  # sorted: blocks in order, each sorted by b
        cum = np.concatenate([[0.0], np.cumsum(v[left])])
        right_key, right_pair = key[~left], pair[~left]
        below = cum[np.searchsorted(keys, right_key, side="left")]
        start = cum[np.searchsorted(keys, right_pair * (n + 1), side="left")]
        total += float(np.dot(w[~left], below - start))
        order = np.argsort(key, kind="stable")
        b, w, v = b[order], w[order], v[order]
        size *= 2
    return total


def _preference_accuracy(rm, gt, w, harmless) -> float:
    """One row of :func:`weighted_accuracy` / :func:`harm_aware_accuracy`, exactly, without a
    [Y, Y] table: over the preference pairs (c, r) with r_G(c) > r_G(r), weight w(c) w(r), the
    share with r_RM(c) > r_RM(r) or ``harmless[r]``.

    The denominator is sum_r w(r) W_above(r), W_above(r) = sum of w over outputs with a larger
    r_G (a sort and a suffix sum). The numerator is the same sum over harmless r, plus the
    strictly concordant pairs with r not harmless: with the outputs sorted by (r_G ascending,
    r_RM descending) and b the dense rank of r_RM, those are exactly the i < j with b_i < b_j
    (inside one r_G level b never rises, so ground-truth ties are never counted), counted by
    :func:`_dominance` with weight w (1 - harmless) on the rejected side. O(Y log^2 Y) time.
    """
    order = np.argsort(gt, kind="stable")
    suffix = np.concatenate([np.cumsum(w[order][::-1])[::-1], [0.0]])
    above = suffix[np.searchsorted(gt[order], gt, side="right")]
    total = float(np.dot(w, above))
    if total <= 0.0:
        return np.nan
    free = float(np.dot(np.where(harmless, w, 0.0), above))
    order = np.lexsort((-rm, gt))
    b = np.unique(rm, return_inverse=True)[1].ravel()[order]
    concordant = _dominance(b, w[order], np.where(harmless, 0.0, w)[order])
    return (free + concordant) / total


def _product_accuracy(rm: np.ndarray, gt: np.ndarray, w: np.ndarray) -> float:
    """:func:`accuracy` of one row with pair weights w(y) w(y'), exactly, without a [Y, Y] table.

    A pair agrees when it is tied in both rewards or strictly concordant. With a = r_RM and b = r_G
    as dense ranks and the outputs sorted by (a, b): concordant = D - (pairs sharing a, with
    different b), where D = sum over i < j with b_i < b_j (:func:`_dominance`) counts every pair
    from different a-groups that is concordant and every pair inside an a-group with b_i < b_j.
    Group sums use sum_{i<j in g} w_i w_j = ((sum w)^2 - sum w^2) / 2. O(Y log^2 Y) time.
    """
    a = np.unique(rm, return_inverse=True)[1].ravel()
    b = np.unique(gt, return_inverse=True)[1].ravel()

    def pairs_within(groups):
        s1 = np.bincount(groups, weights=w)
        s2 = np.bincount(groups, weights=w * w)
        return float(np.sum((s1 * s1 - s2) / 2.0))

    tied_both = pairs_within(np.unique(a * (b.max() + 1) + b, return_inverse=True)[1].ravel())
    same_a = pairs_within(a)
    order = np.lexsort((b, a))
    concordant = _dominance(b[order], w[order]) - (same_a - tied_both)
    total = (float(np.sum(w)) ** 2 - float(np.sum(w * w))) / 2.0
    return (concordant + tied_both) / total


def _product_accuracy_rows(rm, gt, w, lead: tuple[int, ...]) -> jax.Array:
    """:func:`_product_accuracy` of each row of [N, Y] tables (w None: uniform weights), shaped
    ``lead`` on the host before it goes to the device (an eager reshape would compile a program
    per shape)."""
    ones = np.ones(rm.shape[-1])
    out = [_product_accuracy(rm[i], gt[i], ones if w is None else w[i]) for i in range(rm.shape[0])]
    return to_device(np.array(out, dtype=np.float64).reshape(lead))


# Rows are processed in batches so the [Y, Y] comparison tables of a batch take at most ~2**24
# entries (128 MiB in float64) whatever X is.
_PAIR_BATCH_ENTRIES = 2**24


@jax.jit
def _accuracy_rows(reward_rm, reward_gt, weights):
    """:func:`_pair_accuracy` of each row of [N, Y] tables with [N, Y, Y] pair weights."""
    batch = max(1, _PAIR_BATCH_ENTRIES // reward_rm.shape[-1] ** 2)
    return jax.lax.map(
        lambda a: _pair_accuracy(*a), (reward_rm, reward_gt, weights), batch_size=batch
    )


# ----------------------------------------------------------------------------- public API


def expected_reward(pi, reward) -> jax.Array:
    """Expected reward per prompt, E_{y~pi(.|x)} r(x, y).

    Args:
        pi: probability table [..., Y] (each row sums to 1).
        reward: reward table with the same last axis Y as ``pi`` (never broadcast over
            outputs); its leading axes broadcast with ``pi``'s.

    Returns:
        [...]: one value per row (a scalar for 1-D ``pi``).

    Examples:
        >>> import numpy as np
        >>> from theory_sim import expected_reward
        >>> float(expected_reward(np.array([0.5, 0.5]), np.array([1.0, 0.0])))
        0.5
    """
    probs, rew = _probs_and_table("pi", pi, "reward", reward)
    return _jit_expected_reward(probs, rew)


def reward_variance(pi, reward) -> jax.Array:
    """Reward variance per prompt, the quantity that governs optimisation speed.

    Var_{y~pi(.|x)}[r(x, y)] = E_pi (r - E_pi r)^2 = 1/2 E_{y, y' iid pi} (r(y) - r(y'))^2.

    Section 3 of arXiv 2503.15477; Proposition 3 and Theorem 4 bound the time to gain by its
    value at the initial policy.

    Args:
        pi: probability table [..., Y].
        reward: reward table with the same last axis Y as ``pi`` (never broadcast over
            outputs); its leading axes broadcast with ``pi``'s (one policy against many reward
            models, or the reverse).

    Returns:
        [...]: one value per row (a scalar for 1-D ``pi``).

    Examples:
        >>> import numpy as np
        >>> from theory_sim import reward_variance
        >>> float(reward_variance(np.array([0.5, 0.5]), np.array([1.0, -1.0])))
        1.0
    """
    probs, rew = _probs_and_table("pi", pi, "reward", reward)
    return _jit_reward_variance(probs, rew)


def kl_divergence(pi, pi_ref) -> jax.Array:
    """KL(pi(.|x) || pi_ref(.|x)) = sum_y pi(y) ln(pi(y) / pi_ref(y)) per prompt, with 0 ln 0 = 0.

    Args:
        pi, pi_ref: probability tables [..., Y] of the same shape.

    Returns:
        [...]: non-negative; +inf where ``pi`` puts mass on an output ``pi_ref`` excludes.
    """
    probs = check_probabilities("pi", pi)
    ref = check_probabilities("pi_ref", pi_ref)
    if ref.shape != probs.shape:
        raise ValueError(f"`pi_ref` must have shape {probs.shape} like `pi`; got {ref.shape}.")
    return _jit_kl(to_device(probs), to_device(ref))


def entropy(pi) -> jax.Array:
    """Shannon entropy -sum_y pi(y) ln pi(y) per prompt (natural log, 0 ln 0 = 0)."""
    return _jit_entropy(to_device(check_probabilities("pi", pi)))


def accuracy(reward_rm, reward_gt, pair_weights=None) -> jax.Array:
    """Pairwise ranking accuracy of a reward model per prompt (Section 3 of arXiv 2503.15477).

    acc = sum_{y<y'} w(y,y') 1[sign(r_RM(y) - r_RM(y')) == sign(r_G(y) - r_G(y'))]
          / sum_{y<y'} w(y,y')

    with sign(0) = 0, so a tie in r_G must be a tie in r_RM to count as correct. By default w = 1
    on every unordered pair of distinct outputs (the paper's uniform accuracy). The value is
    invariant under strictly increasing transforms of ``reward_rm``.

    Args:
        reward_rm: reward-model table [..., Y].
        reward_gt: ground-truth table of the same shape.
        pair_weights: optional non-negative weights [..., Y, Y] (broadcastable); they are
            symmetrised and the diagonal is ignored. Must put positive weight on some pair.

    Returns:
        [...]: accuracies in [0, 1] (a scalar for 1-D input).

    Cost: with the default weights, O(Y log^2 Y) time and O(Y) memory per row (a weighted count
    of concordant pairs by sorting, exact for Y up to 2^20 and beyond); with ``pair_weights``,
    O(Y^2) time and memory per row (rows are batched to bound memory).

    Examples:
        >>> import numpy as np
        >>> from theory_sim import accuracy
        >>> float(accuracy(np.array([0.0, 0.5, 0.5]), np.array([0.0, 1.0, 2.0])))  # tie is wrong
        0.6666666666666666
    """
    rm = as_float_array("reward_rm", reward_rm)
    gt = as_float_array("reward_gt", reward_gt)
    if rm.ndim < 1 or rm.shape[-1] < 2:
        raise ValueError(f"`reward_rm` needs an output axis of size >= 2; got shape {rm.shape}.")
    if gt.shape != rm.shape:
        raise ValueError(
            f"`reward_gt` must have shape {rm.shape} like `reward_rm`; got {gt.shape}."
        )
    lead, num_outputs = rm.shape[:-1], rm.shape[-1]
    flat_rm, flat_gt = rm.reshape(-1, num_outputs), gt.reshape(-1, num_outputs)
    if pair_weights is None:
        return _product_accuracy_rows(flat_rm, flat_gt, None, lead)
    weights = _check_pair_weights(pair_weights, rm.shape).reshape(-1, num_outputs, num_outputs)
    out = _accuracy_rows(to_device(flat_rm), to_device(flat_gt), to_device(weights))
    return to_device(np.asarray(out).reshape(lead))  # reshaped on the host: no program per shape


def on_policy_accuracy(pi, reward_rm, reward_gt) -> jax.Array:
    """Accuracy over pairs drawn from pi x pi, given y != y' (Section 3 of arXiv 2503.15477).

    acc_pi = sum_{y != y'} pi(y) pi(y') 1[agree] / sum_{y != y'} pi(y) pi(y')

    Args:
        pi: probability table [..., Y]; each row needs mass on at least two outputs.
        reward_rm, reward_gt: reward tables of ``pi``'s shape.

    Returns:
        [...]: accuracies in [0, 1].

    Cost: O(Y log^2 Y) time and O(Y) memory per row (the weights are a product, so the weighted
    count of agreeing pairs needs no [Y, Y] table; see :func:`accuracy`).
    """
    probs, rm, gt = _policy_tables(pi, reward_rm, reward_gt)
    if np.any(np.sum(probs > 0, axis=-1) < 2):
        raise ValueError(
            "`pi` must put mass on at least two outputs in every row for on-policy pairs to exist."
        )
    lead, num_outputs = probs.shape[:-1], probs.shape[-1]
    flat = [np.asarray(t).reshape(-1, num_outputs) for t in (rm, gt, probs)]
    return _product_accuracy_rows(*flat, lead)


def weighted_accuracy(pi, reward_rm, reward_gt) -> jax.Array:
    """Acc-W of arXiv 2604.25872 (Section 4): ranking accuracy on preference pairs, each pair
    weighted by its probability under the policy.

    Acc-W = sum_{r_G(c) > r_G(r)} pi(c) pi(r) 1[r_RM(c) > r_RM(r)]
            / sum_{r_G(c) > r_G(r)} pi(c) pi(r)

    A preference pair is ordered by the ground truth (c chosen, r rejected): outputs tied in r_G
    form no pair, and a tie in r_RM on a pair is an error, as in the paper's reference code
    (``acc_w``, where a pair's weight is its probability normalised over the pairs). It differs
    from :func:`on_policy_accuracy` only in those two conventions for ties.

    Args:
        pi: probability table [..., Y].
        reward_rm, reward_gt: reward tables of ``pi``'s shape; every row needs two outputs of
            positive probability with different r_G.

    Returns:
        [...]: values in [0, 1].

    Cost: O(Y log^2 Y) time and O(Y) memory per row, exact (no [Y, Y] table; see
    :func:`_preference_accuracy`).

    Examples:
        >>> import numpy as np
        >>> from theory_sim import weighted_accuracy
        >>> pi = np.array([0.05, 0.5, 0.15, 0.15, 0.15])
        >>> r_gt, r_rm = np.array([1, 0.8, -1, -1, -1]), np.array([1.0, -1, -1, -1, -1])
        >>> round(float(weighted_accuracy(pi, r_rm, r_gt)), 4)  # only pairs with y_0 are right
        0.1743
    """
    return _preference_rows(pi, reward_rm, reward_gt, weighted=True, harm_aware=False)


def harm_aware_accuracy(pi, reward_rm, reward_gt, *, weighted: bool = True) -> jax.Array:
    """HAcc-W (``weighted``) and HAcc of arXiv 2604.25872 (Section 4): ranking accuracy that
    forgives the errors a policy gradient does not act on.

    HAcc-W = sum_{r_G(c) > r_G(r)} pi(c) pi(r) 1[r_RM(c) > r_RM(r)  or  r_RM(r) < E_pi r_RM]
             / sum_{r_G(c) > r_G(r)} pi(c) pi(r)

    and HAcc the same with weight 1 on every preference pair (the threshold E_pi r_RM is the
    policy's mean proxy reward in both, as in the paper's reference code, ``hacc_w`` and
    ``hacc``). The reason, stated here for a tabular policy: the proxy's policy gradient moves
    each logit at d theta_y/dt = pi(y) (r_RM(y) - E_pi r_RM), so an output whose proxy reward lies
    below the policy's mean loses logit whether or not r_RM ranks it correctly against a better
    one; such a ranking error does not pull the policy towards the rejected output. Pairs are
    ordered by r_G as in :func:`weighted_accuracy` (r_G ties form no pair; r_RM ties on a pair
    are errors), and HAcc-W >= Acc-W.

    Args:
        pi: probability table [..., Y] (the policy that is trained).
        reward_rm, reward_gt: reward tables of ``pi``'s shape; every row needs two outputs with
            different r_G (of positive probability when ``weighted``).
        weighted: pairs weighted by pi(c) pi(r) (HAcc-W) or uniformly (HAcc).

    Returns:
        [...]: values in [0, 1].

    Cost: O(Y log^2 Y) time and O(Y) memory per row, exact.

    Examples:
        >>> import numpy as np
        >>> from theory_sim import harm_aware_accuracy
        >>> pi = np.array([0.05, 0.5, 0.15, 0.15, 0.15])
        >>> r_gt, r_rm = np.array([1, 0.8, -1, -1, -1]), np.array([1.0, -1, -1, -1, -1])
        >>> float(harm_aware_accuracy(pi, r_rm, r_gt))  # every error's rejected output is below
        1.0
    """
    if not isinstance(weighted, bool | np.bool_):
        raise ValueError(f"`weighted` must be True or False; got {weighted!r}.")
    return _preference_rows(pi, reward_rm, reward_gt, weighted=bool(weighted), harm_aware=True)


def _policy_tables(pi, reward_rm, reward_gt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (pi, r_RM, r_G) as arrays of one shape [..., Y]."""
    probs = check_probabilities("pi", pi)
    rm = as_float_array("reward_rm", reward_rm)
    if rm.shape != probs.shape:
        raise ValueError(f"`reward_rm` must have shape {probs.shape} like `pi`; got {rm.shape}.")
    gt = as_float_array("reward_gt", reward_gt)
    if gt.shape != probs.shape:
        raise ValueError(f"`reward_gt` must have shape {probs.shape} like `pi`; got {gt.shape}.")
    return np.asarray(probs), np.asarray(rm), np.asarray(gt)


def _preference_rows(pi, reward_rm, reward_gt, *, weighted: bool, harm_aware: bool) -> jax.Array:
    """:func:`_preference_accuracy` of every row (weights pi / max pi: the value is a ratio, and
    the scaling keeps products of small probabilities from underflowing first)."""
    probs, rm, gt = _policy_tables(pi, reward_rm, reward_gt)
    lead, num_outputs = probs.shape[:-1], probs.shape[-1]
    flat = [t.reshape(-1, num_outputs) for t in (probs, rm, gt)]
    out = []
    for p, r, g in zip(*flat, strict=True):
        w = p / p.max() if weighted else np.ones_like(p)
        harmless = r < _host_expected_reward(p, r) if harm_aware else np.zeros(len(r), bool)
        out.append(_preference_accuracy(r, g, w, harmless))
    out = np.array(out, dtype=np.float64)
    if np.any(np.isnan(out)):
        what = "of positive probability " if weighted else ""
        raise ValueError(
            f"`reward_gt` must differ between two outputs {what}in every row for preference "
            f"pairs to exist; rows {np.flatnonzero(np.isnan(out)).tolist()} have none."
        )
    return to_device(out.reshape(lead))


def _check_pair_weights(pair_weights, shape: tuple[int, ...]) -> np.ndarray:
    w = as_float_array("pair_weights", pair_weights)
    target = shape + shape[-1:]
    try:
        w = np.broadcast_to(w, target)
    except ValueError as err:
        raise ValueError(
            f"`pair_weights` must be broadcastable to {target} (rewards' shape plus [Y]); "
            f"got {np.shape(pair_weights)}."
        ) from err
    if np.any(w < 0):
        raise ValueError(f"`pair_weights` must be non-negative; its minimum is {w.min()}.")
    off_diagonal = w * (1.0 - np.eye(shape[-1]))
    if np.any(off_diagonal.sum(axis=(-2, -1)) <= 0):
        raise ValueError(
            "`pair_weights` must put positive weight on some pair of distinct outputs."
        )
    return w


def _probs_and_table(pname, pi, rname, reward) -> tuple[jax.Array, jax.Array]:
    """Both tables broadcast to one shape [..., Y] (e.g. one pi against many reward models)."""
    probs = check_probabilities(pname, pi)
    rew = as_float_array(rname, reward)
    if rew.ndim == 0 or rew.shape[-1] != probs.shape[-1]:  # leading axes broadcast, Y never
        raise ValueError(
            f"`{rname}` must have {probs.shape[-1]} outputs along its last axis like `{pname}` "
            f"(rewards are not broadcast over outputs); got shape {rew.shape}."
        )
    try:
        shape = np.broadcast_shapes(probs.shape, rew.shape)
    except ValueError as err:
        raise ValueError(
            f"`{rname}` must be broadcastable with `{pname}`'s shape {probs.shape}; "
            f"got {rew.shape}."
        ) from err
    if shape[-1] != probs.shape[-1]:
        raise ValueError(
            f"`{rname}` must have {probs.shape[-1]} outputs like `{pname}`; got shape {rew.shape}."
        )
    return to_device(np.broadcast_to(probs, shape)), to_device(np.broadcast_to(rew, shape))


_jit_expected_reward = jax.jit(_expected_reward)
_jit_reward_variance = jax.jit(_reward_variance)
_jit_kl = jax.jit(_kl_divergence)
_jit_entropy = jax.jit(_entropy)


def best_of_n_policy(pi, reward_rm, n: int) -> np.ndarray:
    """The Best-of-N policy: the law of the r_RM-best of N i.i.d. samples from pi, exactly.

    Ties in r_RM among the best samples are broken uniformly, so given the best level l the output
    is distributed as pi restricted to that level. With F(l) = P_pi(r_RM <= l) and F(l-) =
    P_pi(r_RM < l):

        pi_N(y) = pi(y) / pi(level(y)) * (F(level(y))^N - F(level(y)-)^N).

    Args:
        pi: probability table [..., Y].
        reward_rm: reward-model table of the same shape.
        n: N >= 1 samples.

    Returns:
        [..., Y] probabilities (numpy).
    """
    probs = check_probabilities("pi", pi)
    rm = as_float_array("reward_rm", reward_rm)
    if rm.shape != probs.shape:
        raise ValueError(f"`reward_rm` must have shape {probs.shape} like `pi`; got {rm.shape}.")
    n = check_int("n", n)
    flat_p = probs.reshape(-1, probs.shape[-1])
    flat_r = rm.reshape(flat_p.shape)
    out = np.empty_like(flat_p)
    for row, (p_row, r_row) in enumerate(zip(flat_p, flat_r, strict=True)):
        levels, inverse = np.unique(r_row, return_inverse=True)
        level_mass = np.bincount(inverse, weights=p_row, minlength=len(levels))
        upper = np.minimum(np.cumsum(level_mass), 1.0)  # F(l)
        lower = upper - level_mass  # F(l-)
        # F^N - G^N = F^N (1 - (G/F)^N), computed in logs so mass near 1 keeps its digits
        with np.errstate(divide="ignore"):
            log_f, log_g = np.log(upper), np.log(np.maximum(lower, 0.0))
        top = np.exp(n * log_f) * -np.expm1(n * (log_g - log_f))
        share = np.divide(
            p_row, level_mass[inverse], out=np.zeros_like(p_row), where=level_mass[inverse] > 0
        )
        out[row] = share * top[inverse]
    return out.reshape(probs.shape)


def best_of_n(pi, reward_rm, reward_gt, n: int) -> np.ndarray:
    """Expected ground-truth reward of Best-of-N sampling with a reward model, exactly.

    E[r_G(y*)], y* the r_RM-best of N i.i.d. samples from pi (ties broken uniformly), computed from
    :func:`best_of_n_policy` by order statistics over the finite output space. Proposition 1 of
    arXiv 2503.15477: a perfectly accurate reward model maximises it, with value
    E[max_i r_G(y_i)].

    Returns:
        [...] one value per prompt.

    Examples:
        >>> import numpy as np
        >>> from theory_sim import best_of_n
        >>> r = np.array([0.0, 1.0])
        >>> float(best_of_n(np.array([0.5, 0.5]), r, r, 2))  # 1 - P(both samples are output 0)
        0.75
    """
    gt = as_float_array("reward_gt", reward_gt)
    law = best_of_n_policy(pi, reward_rm, n)
    if gt.shape != law.shape:
        raise ValueError(f"`reward_gt` must have shape {law.shape} like `pi`; got {gt.shape}.")
    return np.sum(law * gt, axis=-1)
