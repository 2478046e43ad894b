"""What every figure of :mod:`theory_sim.plotting` shares: the check of its inputs, mathtext
labels, legends outside the data, captions and tick formats."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import numpy as np


def _fields(name: str, value, kind: str, names: tuple[str, ...]) -> None:
    """Refuse ``value`` unless it has the fields ``names``: as attributes ("object"), as the
    attributes of every item of a non-empty sequence ("objects"), as the keys of every dict of a
    non-empty sequence ("rows"), or as the attributes of every value of a dict ("fits")."""
    if kind == "object":
        items = [value]
    elif kind == "fits":
        items = list(value.values()) if isinstance(value, dict) and value else None
    else:
        ok = isinstance(value, Sequence) and not isinstance(value, str)
        if ok and not len(value):
            raise ValueError(f"`{name}` is empty: nothing to plot.")
        items = list(value) if ok else None
    has = (lambda x, f: isinstance(x, dict) and f in x) if kind == "rows" else hasattr
    if items is None or not all(has(x, f) for x in items for f in names):
        what = {
            "object": "an object",
            "objects": "a non-empty sequence of objects",
            "rows": "a non-empty sequence of dicts",
            "fits": "a non-empty dict of objects",
        }
        raise TypeError(
            f"`{name}` must be {what[kind]} with {', '.join(names)} (as theory_sim's results "
            f"have); got {type(value).__name__}."
        )  # fmt: skip


def _inputs(name: str, kind: str, *names: str):
    """Check a plotting function's results argument ``name`` (see :func:`_fields`) and its
    ``ax``/``axes`` (None or matplotlib axes) before drawing."""

    def wrap(fun):
        signature = inspect.signature(fun)

        @functools.wraps(fun)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            _fields(name, bound.arguments[name], kind, names)
            for axis_name in ("ax", "axes"):
                given = bound.arguments.get(axis_name)
                if given is not None and not all(
                    hasattr(a, "plot") for a in np.atleast_1d(np.asarray(given, dtype=object))
                ):
                    raise TypeError(
                        f"`{axis_name}` must be None or matplotlib axes; got {given!r}."
                    )
            return fun(*args, **kwargs)

        return checked

    return wrap


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
        return fig, ax
    return ax.figure, ax


# Mathtext labels shared by every figure.
T_GAMMA = r"$t_\gamma$"


VAR0 = r"$\mathrm{Var}_{\pi_0}\, r_{\mathrm{RM}}$"


# Readable names of the flat-landscape families (stories.FLAT_FAMILIES).
FAMILY = {
    "reward_scale": r"$r_{\mathrm{RM}} = c\, r_G$, $c$ shrinking",
    "concentration": r"$\pi_0$ mass $\varepsilon$ on the good output",
}


LEGEND_SIZE = 8


def _legend_outside(ax, **kwargs):
    """A legend to the right of the axes, where it covers no data."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
        fontsize=LEGEND_SIZE, **kwargs,
    )  # fmt: skip


def _legend_below(ax, ncols: int = 2, **kwargs):
    """A legend under the axes, a fixed 40 points below its bottom edge (past the tick labels and
    the x label at any axes height), where it covers no data."""
    from matplotlib.transforms import offset_copy

    below = offset_copy(ax.transAxes, fig=ax.figure, y=-40.0, units="points")
    return ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, borderaxespad=0.0,
        ncols=ncols, fontsize=LEGEND_SIZE, **kwargs,
    )  # fmt: skip


def _plain_log_ticks(axis) -> None:
    """Ticks at 1, 2 and 5 per decade labelled as plain numbers (0.05, 0.1, 0.2), for a log axis
    spanning about a decade, where matplotlib's minor labels (3x10^-1, 4x10^-1) collide."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _note(fig, text: str) -> None:
    """A caption under the figure (what the markers mean, what is off scale)."""
    fig.text(0.01, 0.005, text, ha="left", va="bottom", fontsize=7, color="0.25", wrap=True)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(rect=(0.0, 0.06, 1.0, 0.94))


_KINDS = {  # a policy's class name -> its kind's label, colour and marker
    "Tabular": ("tabular", "tab:blue", "o"),
    "Autoregressive": ("autoregressive", "tab:orange", "s"),
    "LogLinear": ("log-linear", "tab:green", "^"),
    "Transformer": ("transformer", "tab:purple", "D"),
    "MLP": ("MLP", "tab:brown", "v"),
    "Neural": ("neural", "tab:pink", "P"),
}


def _panels(axes, count: int, width: float = 5.0):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, count, figsize=(width * count, 4.2), layout="constrained")
        return fig, np.atleast_1d(axes)
    axes = np.atleast_1d(axes)
    return axes[0].figure, axes


def _family(name: str) -> str:
    """The readable name of a flat-landscape family, or the name itself."""
    return FAMILY.get(name, name)


def _bound_styles(ax, styles) -> None:
    """Legend entries for line styles shared by every colour (e.g. the bounds)."""
    for style, label in styles:
        ax.plot([], [], style, color="0.3", lw=1.2, label=label)


def _by_label(rows, key: str) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    return groups


def _bound_exponent(label: str) -> tuple[float, str]:
    """The exponent of Var0 in the bound for a fit's policy: Theorem 4's -1/3 for
    autoregressive (or neural) labels, Proposition 3's -1/2 otherwise."""
    if "autoregressive" in label:
        return -1.0 / 3.0, "-1/3"
    return -0.5, "-1/2"
