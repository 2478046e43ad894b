"""Names the command line shows in its help, kept free of JAX so that ``--help`` answers at once.

The modules that implement them check at import that they match (a mismatch is an ImportError
naming both lists), so the help never lists a name the library does not have.
"""

from __future__ import annotations

__all__ = ["TIGHTNESS_CLAIMS", "require_same"]

# the bounds whose constants the tightness search probes (theory_sim.theorems.tightness)
TIGHTNESS_CLAIMS = (
    "Lemma 8",
    "Proposition 2",
    "Proposition 3",
    "Theorem 4",
    "Theorem 5: fast model time",
    "Theorem 6: matching model time",
    "Proposition 4",
    "Lemma 10",
)


def require_same(name: str, listed: tuple, implemented: tuple) -> None:
    """Raise ImportError unless the names listed here are the ones a module implements."""
    if tuple(listed) != tuple(implemented):
        raise ImportError(
            f"theory_sim._names.{name} lists {list(listed)}, but the library implements "
            f"{list(implemented)}."
        )
