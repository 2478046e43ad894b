"""Hypothesis strategies shared by the tests."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, width=64)
logit = st.floats(-6.0, 6.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def probability_rows(draw, num_outputs=None, min_outputs=2, max_outputs=8):
    """A strictly positive probability vector [Y] from softmax of bounded logits."""
    n = draw(st.integers(min_outputs, max_outputs)) if num_outputs is None else num_outputs
    logits = draw(hnp.arrays(np.float64, (n,), elements=logit))
    p = np.exp(logits - logits.max())
    return p / p.sum()


@st.composite
def tied_rewards(draw, num_outputs):
    """Rewards in [-1, 1] drawn from a few levels, so ties are common.

    Levels lie on a grid of spacing 1/64, so distinct levels stay distinct (and strictly ordered)
    after the monotone transforms the tests apply in float64.
    """
    levels = draw(st.lists(st.integers(-64, 64).map(lambda k: k / 64), min_size=1, max_size=4))
    return np.array(
        draw(st.lists(st.sampled_from(levels), min_size=num_outputs, max_size=num_outputs)),
        dtype=np.float64,
    )
