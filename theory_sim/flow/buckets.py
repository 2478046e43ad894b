"""Bucketed shapes: one compiled solve serves every tabular problem of a bucket.

Each new array shape costs a solver program of its own (tracing and compiling a diffrax solve
with its events takes seconds), and most programs a session compiles differ only in shapes. So
the adaptive solvers pad a tabular or small autoregressive problem before solving it:

* outputs to the next power of two, at least ``MIN_OUTPUTS`` (past ``OUTPUT_STEP``, to the next
  multiple of it): added outputs get the logit
  ``ABSENT_LOGIT`` (probability exactly 0 under pi_0, along the flow and under pi*, see
  :mod:`.coordinates`) and a copy of the row's last reward (so max_y r and min_y r, which the
  unreachability certificate reads, are unchanged);
* the batch of one-prompt problems of a trajectory to the next power of two (at least 2 for up
  to ``OUTPUT_STEP`` outputs), with copies of the first prompt (a vmapped solve advances each
  prompt on its own: a copy changes no other);
* an autoregressive problem with 2 to 3 tokens and sequences of 2 to 4 tokens to the shape of
  ``Autoregressive(*AR_BUCKET)`` (81 sequences, 40 prefixes): each sequence is followed by token
  0s, every absent token gets the logit ``ABSENT_LOGIT`` (so every sequence through it has
  probability exactly 0), a prefix of the added levels reached by a real sequence puts all its
  mass on token 0 (logits (0, ABSENT_LOGIT, ...): its softmax has zero gradient, so it never
  moves and adds exactly log 1 = 0 to a sequence), and a prefix no real sequence reaches gets
  logits 0, the conditional log-probabilities the frame's base gives an all-absent subtree
  (so its state is 0, and stays 0: no mass reaches it). The step-size norm counts only the
  free parameters of reached prefixes (:func:`~theory_sim.flow.coordinates.free_parameters`),
  and the limit state's per-prefix mean only present tokens;
* save times to ``2^k + 1`` (at least ``MIN_SAVES``), with copies of the last time (every
  policy kind: save times are read off the dense interpolant and never steer the steps).

Every solver also takes the problem in :func:`canonical` form, so a one-prompt problem given as
[Y] tables shares the programs of the same problem given as [1, Y].

Every evaluation the solver makes (field, step-size norm, gain, certificates) is the unpadded
one to round-off, the added outputs carry exactly zero mass, and the padding is cut off before
results are returned. The padded program sums longer rows, which XLA may add in another order:
solves of hundreds of steps take the same steps and agree to 1e-13, while over thousands of
steps a step at the controller's margin can move and the two part by the solver's accuracy
(tests/test_buckets.py; docs/numerics.md). The implicit continuation of a stiff tail runs
unpadded (its Newton iterations measure convergence by a norm over every entry).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from theory_sim._device import power_of_two, to_device
from theory_sim.flow.coordinates import ABSENT_LOGIT
from theory_sim.policies import Autoregressive, Tabular

# Problems with up to this many outputs share one bucket. A floor of 16 would put all the
# check's tabular instances (2 to 10 outputs) in one bucket, but doubles a small problem's time
# per step (bench/run.py flat: 3.7-4.0 ms against 7.6-8.7 ms).
MIN_OUTPUTS = 8
# Past this many outputs, buckets are multiples of it rather than powers of two (padding costs
# at most this many outputs, a fraction 1024 / Y of the work).
OUTPUT_STEP = 1024
# Autoregressive problems with V in [2, V'] tokens and L in [2, L'] share the shape (V', L') (the
# check's V = 2, L = 3 and 4 and V = 3, L = 2; at most 81 / 4 of the unpadded work, small in
# absolute terms; L = 1 is a tabular policy and runs unpadded).
AR_BUCKET = (3, 4)
# Trajectories with up to this many save times share one bucket (the default grid has 129).
MIN_SAVES = 129


def output_bucket(num_outputs: int) -> int:
    """The padded output count of a tabular problem with ``num_outputs`` outputs: the next power
    of two (at least MIN_OUTPUTS) up to OUTPUT_STEP, then the next multiple of OUTPUT_STEP."""
    if num_outputs > OUTPUT_STEP:
        return -(-num_outputs // OUTPUT_STEP) * OUTPUT_STEP
    return power_of_two(num_outputs, MIN_OUTPUTS)


def save_bucket(num_saves: int) -> int:
    """The padded number of save times: 2^k + 1 >= max(num_saves, MIN_SAVES)."""
    return power_of_two(max(num_saves, MIN_SAVES) - 1, 1) + 1


def batch_bucket(size: int, num_outputs: int) -> int:
    """The padded size of a batch of ``size`` one-prompt problems with ``num_outputs`` outputs:
    the next power of two, at least 2 while the outputs fit one OUTPUT_STEP (one and two prompts
    then share a program; a second lane costs little next to a step's fixed cost)."""
    return power_of_two(size, 2 if num_outputs <= OUTPUT_STEP else 1)


def canonical(problem):
    """``problem`` as the solvers take it: with ``single_prompt`` False. The flag only shapes the
    results returned to the user (no solver reads it), but as static pytree structure it would
    make a traced program of its own for one-prompt problems given as [Y] tables."""
    children, _ = problem.tree_flatten()
    return type(problem).tree_unflatten(False, children)


def _ar_bucket(policy) -> Autoregressive | None:
    """The autoregressive policy whose shape ``policy``'s problems are padded to, or None."""
    vocab, length = policy.vocab_size, policy.length
    if 2 <= vocab <= AR_BUCKET[0] and 2 <= length <= AR_BUCKET[1] and (vocab, length) != AR_BUCKET:
        return Autoregressive(*AR_BUCKET)
    return None


def bucketed(problem) -> bool:
    """Whether the solvers pad ``problem`` (tabular policies, small autoregressive ones)."""
    policy = problem.policy
    if isinstance(policy, Autoregressive):
        return _ar_bucket(policy) is not None
    return isinstance(policy, Tabular)


@functools.cache
def _ar_layout(policy: Autoregressive):
    """Where ``policy``'s sequences and prefixes sit in its bucket's layout (module docstring):
    (sequences [Y], prefixes [P], forced [.]), indices of the padded sequences, of the padded
    prefix rows of policy's prefixes (level order) and of the added prefixes that real
    sequences reach."""
    padded = _ar_bucket(policy)
    vocab, big_v = policy.vocab_size, padded.vocab_size
    tokens = np.zeros((policy.num_sequences, padded.length), np.int64)
    tokens[:, : policy.length] = policy.sequences()

    def rows(level, v):
        """Row of each sequence's prefix of ``level`` tokens in a tree of ``v`` tokens."""
        offset = sum(v**i for i in range(level))
        return offset + tokens[:, :level] @ (v ** np.arange(level - 1, -1, -1, dtype=np.int64))

    sequences = tokens @ (big_v ** np.arange(padded.length - 1, -1, -1, dtype=np.int64))
    prefixes = np.zeros(policy.num_prefixes, np.int64)
    for level in range(policy.length):
        prefixes[rows(level, vocab)] = rows(level, big_v)
    forced = np.concatenate(
        [rows(level, big_v) for level in range(policy.length, padded.length)]
        + [np.zeros(0, np.int64)]
    )
    return sequences, prefixes, np.unique(forced)


def _pad_autoregressive(problem, *tables):
    """:func:`pad_outputs` for an autoregressive problem (module docstring)."""
    policy = problem.policy
    padded = _ar_bucket(policy)
    sequences, prefixes, forced = _ar_layout(policy)

    def sequence_table(table, fill=None):
        table = np.asarray(table)
        value = table[..., -1:] if fill is None else fill  # a copy of the row's last reward
        out = np.broadcast_to(value, (*table.shape[:-1], padded.num_sequences)).copy()
        out[..., sequences] = table
        return out

    params = np.asarray(problem.params0)
    theta = np.zeros((*params.shape[:-2], padded.num_prefixes, padded.vocab_size))
    theta[..., forced, 1:] = ABSENT_LOGIT
    theta[..., prefixes, :] = ABSENT_LOGIT
    theta[..., prefixes, : policy.vocab_size] = params
    out = type(problem).tree_unflatten(
        problem.single_prompt,
        [
            padded,
            to_device(theta),
            to_device(sequence_table(problem.reward_rm)),
            to_device(sequence_table(problem.reward_gt)),
            problem.kl_coef,
            to_device(sequence_table(problem.ref_log_probs, ABSENT_LOGIT)),
        ],
    )
    return (out, *(to_device(sequence_table(t)) for t in tables))


def cut_state(problem, state) -> np.ndarray:
    """A state or parameters of ``problem`` padded (:func:`pad_outputs`), [..., Y'] or
    [..., P', V'], cut back to ``problem``'s layout, on the host."""
    state = np.asarray(state)
    if isinstance(problem.policy, Autoregressive):
        prefixes = _ar_layout(problem.policy)[1]
        return state[..., prefixes, : problem.policy.vocab_size]
    return state[..., : problem.num_outputs]


def _pad_last(table, size: int, value=None) -> np.ndarray:
    """``table`` [..., Y] padded on its last axis to ``size`` with ``value`` (None: a copy of the
    last entry), on the host."""
    table = np.asarray(table)
    widths = [(0, 0)] * (table.ndim - 1) + [(0, size - table.shape[-1])]
    if value is None:
        return np.pad(table, widths, mode="edge")
    return np.pad(table, widths, constant_values=value)


def pad_outputs(problem, *tables, size: int | None = None):
    """(padded problem, *padded tables): a tabular problem (and reward tables [X, Y] laid out like
    its rewards) with its outputs padded to ``size`` (default :func:`output_bucket`), or a small
    autoregressive one padded to its bucket; see the module docstring. Built on the host and
    moved to the device in one transfer per leaf."""
    if isinstance(problem.policy, Autoregressive):
        return _pad_autoregressive(problem, *tables)
    size = output_bucket(np.shape(problem.reward_rm)[-1]) if size is None else size
    leaves, treedef = jax.tree.flatten(problem)
    logits = {id(problem.params0), id(problem.ref_log_probs)}
    rewards = {id(problem.reward_rm), id(problem.reward_gt)}
    padded = []
    for leaf in leaves:
        if id(leaf) in logits:
            padded.append(to_device(_pad_last(leaf, size, ABSENT_LOGIT)))
        elif id(leaf) in rewards:
            padded.append(to_device(_pad_last(leaf, size)))
        else:  # kl_coef
            padded.append(leaf)
    out = jax.tree.unflatten(treedef, padded)
    return (out, *(to_device(_pad_last(t, size)) for t in tables))


def prompt_slice(problem, table, prompt: int):
    """(one-prompt problem, table row [1, Y]) of prompt x of an expressive problem, sliced on the
    host (:func:`~theory_sim.flow.coordinates._prompt_problem`'s slices)."""

    def row(leaf):
        return leaf if np.ndim(leaf) == 0 else to_device(np.asarray(leaf)[prompt : prompt + 1])

    return jax.tree.map(row, problem), row(table)


def host_batch(problem):
    """:func:`~theory_sim.flow.solve._as_batch`'s batch, built on the host: one one-prompt
    problem per prompt [X, 1, ...] for an expressive policy, else a batch of one [1, ...]."""

    def split(leaf):
        leaf = np.asarray(leaf)
        if not problem.policy.expressive:
            return to_device(leaf[None])
        if leaf.ndim == 0:
            return to_device(np.full(problem.num_prompts, leaf))
        return to_device(leaf[:, None])

    return jax.tree.map(split, problem)


def host_params(problem, base, ws, ts) -> np.ndarray:
    """theta = base + w at the save times ``ts`` [T] from a solved batch (saved states ws
    [B, T, ...], bases [B, ...]), in the problem's layout [T, ...], with theta_0 itself at t = 0:
    :func:`~theory_sim.flow.solve._unbatch` then :func:`~theory_sim.flow.solve._params_at`,
    on the host."""
    ws, base = np.asarray(ws), np.asarray(base)
    if problem.policy.expressive:
        ws, base = np.moveaxis(ws[:, :, 0], 0, 1), base[:, 0]
    else:
        ws, base = ws[0], base[0]
    at_start = (np.asarray(ts) <= 0).reshape((-1,) + (1,) * (ws.ndim - 1))
    return np.where(at_start, np.asarray(problem.params0), base + ws)


def pad_batch(batch, size: int):
    """A pytree of arrays with a leading axis (a batch of problems, or parameters at save times)
    padded to ``size`` along it with copies of its first entry, on the host."""

    def grow(leaf):
        leaf = np.asarray(leaf)
        extra = np.repeat(leaf[:1], size - leaf.shape[0], axis=0)
        return to_device(np.concatenate([leaf, extra], axis=0))

    return jax.tree.map(grow, batch)


def pad_times(ts, size: int) -> np.ndarray:
    """Save times [T] padded to ``size`` with copies of the last."""
    ts = np.asarray(ts, np.float64)
    return np.concatenate([ts, np.full(size - len(ts), ts[-1])])
