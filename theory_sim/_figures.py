"""Figures drawn and written on a process of their own, for :func:`theory_sim.report.reproduce`.

Matplotlib's drawing and saving is seconds of Python (about 5 s for ``reproduce``'s ten figures
in PNG and PDF), and Python's global lock lets one thread run Python at a time: drawn next to the
stories' threads, the figures hold up the stories' own Python (tracing, loading programs), which
is most of a quick run. A child process draws them on the other core instead. It is a plain
``python -c`` running :func:`_serve`, not a :mod:`multiprocessing` process, whose ``spawn`` runs
the caller's main script again in the child (a script calling ``reproduce`` without an
``if __name__ == "__main__"`` guard would run twice). The parent sends each figure's plotting
function name, result (pickled) and file name down the child's stdin; the child answers each
with None or the error's traceback.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

from theory_sim._parallel import num_workers

FORMATS = ("png", "pdf")


def save(fig, out: Path, name: str, formats: tuple[str, ...] = FORMATS) -> list[str]:
    """Write ``fig`` as out/name.png (and .pdf) and close it; return the files' names. The layout
    is solved once, for the first file: later files reuse its positions instead of solving it
    again (half of the time saving took).

    Matplotlib warns when placing a legend at loc="best" takes over a second of wall time; the
    figures are drawn while the stories compute on every core, so that warning is about the
    machine's load, not the figure, and is not shown."""
    import matplotlib.pyplot as plt

    names = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message='Creating legend with loc="best" can be slow')
        for suffix in formats:
            fig.savefig(out / f"{name}.{suffix}", dpi=150)
            fig.set_layout_engine("none")
            names.append(f"{name}.{suffix}")
    plt.close(fig)
    return names


def draw(plot: str, result, out: Path, name: str, formats: tuple[str, ...] = FORMATS) -> list[str]:
    """Draw ``theory_sim.plotting.<plot>(result)`` and :func:`save` it as out/name."""
    import matplotlib

    matplotlib.use("Agg")
    from theory_sim import plotting

    return save(getattr(plotting, plot)(result), Path(out), name, formats)


class Figures:
    """Draws figures on a child process (with more than one core) or here (with one), so that
    ``figures(plot, result, name)`` returns at once with the names of the files it will write.
    Leaving its ``with`` block waits for every figure asked for, also after Ctrl-C (the child
    ignores it and finishes), then raises a RuntimeError naming the first figure that failed,
    unless the block is already raising. ``formats``: the files written per figure."""

    def __init__(self, out: Path, formats: tuple[str, ...] = FORMATS):
        self.out, self.formats, self.asked, self.child = Path(out), formats, [], None
        if num_workers() > 1:
            root = str(Path(__file__).resolve().parent.parent)  # this theory_sim, installed or not
            serve = (
                f"import sys\nif {root!r} not in sys.path: sys.path.insert(0, {root!r})\n"
                f"from theory_sim._figures import _serve\n_serve({formats!r})"
            )
            self.child = subprocess.Popen(
                [sys.executable, "-c", serve], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )

    def __call__(self, plot: str, result, name: str) -> list[str]:
        if self.child is None:
            return draw(plot, result, self.out, name, self.formats)
        self.asked.append(name)
        try:
            pickle.dump((plot, result, self.out, name), self.child.stdin)
            self.child.stdin.flush()
        except BrokenPipeError:
            pass  # the child has died; leaving the block says so
        return [f"{name}.{suffix}" for suffix in self.formats]

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, kind, error, trace) -> None:
        failures = self._wait()
        if failures and kind is None:
            name, why = failures[0]
            raise RuntimeError(f"figure {name!r} was not written:\n{why}")

    def _wait(self) -> list[tuple[str, str]]:
        """Wait for the child to draw every figure asked for; return those that failed."""
        if self.child is None:
            return []
        failures = []
        with self.child:  # closes the pipes and waits for the child
            try:
                self.child.stdin.close()
            except BrokenPipeError:
                pass
            for name in self.asked:
                try:
                    error = pickle.load(self.child.stdout)
                except EOFError:
                    code = self.child.wait()
                    failures.append((name, f"the figure process ended (exit code {code}) first"))
                    break
                if error is not None:
                    failures.append((name, error))
        return failures


def _warm_up(formats: tuple[str, ...]) -> None:
    """Import matplotlib and theory_sim.plotting and draw one small figure with a math label
    into memory, once, while the parent is still computing its first result: the first real
    figure then no longer carries the imports, the fonts and the mathtext parser's setup."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import theory_sim.plotting  # noqa: F401

    fig, ax = plt.subplots(figsize=(1, 1), layout="constrained")
    ax.loglog([1.0, 10.0], [1.0, 10.0], label=r"$t_\gamma$")
    ax.set_xlabel(r"$\mathrm{Var}_{\pi_0} r$")
    ax.legend()
    for suffix in formats:
        fig.savefig(io.BytesIO(), format=suffix, dpi=150)
    plt.close(fig)


def _serve(formats: tuple[str, ...] = FORMATS) -> None:
    """The child: draw each figure read from stdin (in ``formats``, warmed up first) and answer
    each on stdout; when stdin closes, end the process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    source, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the replies
    _warm_up(formats)
    while True:
        try:
            task = pickle.load(source)
        except EOFError:  # every answer is flushed: end without tearing matplotlib down (0.4 s)
            os._exit(0)
        try:
            draw(*task, formats)
            error = None
        except Exception:
            error = traceback.format_exc()
        pickle.dump(error, replies)
        replies.flush()
