"""A straightforward per-sequence numpy implementation of autoregressive policies.

Independent of theory_sim's prefix-tree code: every sequence's probability is the product of its
tokens' conditional probabilities, and the gradient is the score-function sum over sequences.
Used as a test oracle and as the benchmark baseline.
"""

import itertools

import numpy as np


def prefix_row(prefix, vocab):
    """Row of a prefix in the level-ordered parameter table."""
    offset = sum(vocab**i for i in range(len(prefix)))
    index = 0
    for token in prefix:
        index = index * vocab + token
    return offset + index


def conditionals(params):
    """softmax over the last axis of [X, P, V] logits."""
    e = np.exp(params - params.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sequence_probs(params, vocab, length):
    cond = conditionals(params)
    seqs = list(itertools.product(range(vocab), repeat=length))
    probs = np.ones((params.shape[0], len(seqs)))
    for i, seq in enumerate(seqs):
        for level, token in enumerate(seq):
            probs[:, i] *= cond[:, prefix_row(seq[:level], vocab), token]
    return probs


def gradient(params, vocab, length, reward, ref_log_probs, kl_coef):
    """grad phi = (1/X) sum_y pi(y) (r_KL(y) - E r_KL) grad log pi(y), per sequence."""
    cond = conditionals(params)
    probs = sequence_probs(params, vocab, length)
    r_kl = reward - kl_coef * (np.log(probs) - ref_log_probs)
    advantage = r_kl - np.sum(probs * r_kl, -1, keepdims=True)
    grad = np.zeros_like(params)
    for i, seq in enumerate(itertools.product(range(vocab), repeat=length)):
        for level, token in enumerate(seq):
            row = prefix_row(seq[:level], vocab)
            score = -cond[:, row, :].copy()
            score[:, token] += 1.0
            grad[:, row, :] += (probs[:, i] * advantage[:, i])[:, None] * score
    return grad / params.shape[0]
