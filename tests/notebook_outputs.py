"""Execute the notebooks at full size and compare their text outputs with the committed ones.

The notebooks are committed executed, so a reader sees every table and figure without running
anything. ``python tests/notebook_outputs.py [NOTEBOOK ...]`` re-executes notebooks (all by
default) in a fresh kernel and saves them with their outputs; tests/test_notebooks.py executes
each again and compares, cell by cell:

* the text each cell prints or returns, with runs of whitespace and of dashes collapsed (table
  padding follows the numbers' widths), must be identical apart from its numbers;
* each number must agree with the committed one to one unit in the last digit printed (the
  larger of the two units): the runs are deterministic (CPU code paths pinned: see
  :func:`_pinned_kernels`), so this only absorbs round-off that flips a printed digit, while any
  change a reader could see in a value of three or more printed digits is a failure;
* a figure must be a figure in both (the pixels are not compared: they depend on the matplotlib
  version, not on the numbers);
* stderr (progress, JAX's compilation-cache warnings) is volatile and not compared; an error
  output fails the comparison.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# A number not glued to a word ("Var0" stays text), with optional sign, decimals and exponent.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
VOLATILE = [(re.compile(r"0x[0-9a-fA-F]+"), "0x?"), (re.compile(r"-{3,}"), "---")]


def _pinned_kernels() -> dict[str, str]:
    """Environment for the kernels: CPU code paths fixed to AVX2 on every x86-64 CPU that has it.

    Both OpenBLAS (numpy's and scipy's, and through scipy jaxlib's LAPACK calls) and XLA's CPU
    compiler choose their code for the CPU they run on, and AVX-512 code rounds differently from
    AVX2 code. The notebooks' nonconvex searches magnify that into visible digits: on one AVX-512
    machine, CMA-ES's eigendecompositions end notebook 09's Theorem 5 search at a slack of 6.952
    under OpenBLAS's AVX-512 kernels and 7.099 under its AVX2 (Haswell) ones, and notebook 08's
    fitted transformer reaches t_gamma = 1.561 with XLA's AVX-512 code and 1.543 with AVX2 (J_0
    38.8 and 39.5). Pinned to AVX2, the committed outputs reproduce digit for digit."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the libraries choose, and search outcomes may move
        return {}
    if not re.search(r"\bavx2\b", flags):
        return {}
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_max_isa=AVX2".strip()
    return {"OPENBLAS_CORETYPE": "Haswell", "XLA_FLAGS": xla_flags}


PINNED_KERNELS = _pinned_kernels()


def execute(path: Path) -> nbformat.NotebookNode:
    """``path`` executed top to bottom at full size in a fresh kernel (inline PNG figures)."""
    notebook = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend embeds the figures
    env["JUPYTER_PLATFORM_DIRS"] = "1"  # silences jupyter_core's migration notice
    env.update(PINNED_KERNELS)
    with tempfile.TemporaryDirectory() as workdir:
        client = NotebookClient(
            notebook,
            timeout=1800,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": workdir}},
        )
        client.execute(env=env)
    return notebook


def cell_outputs(notebook: nbformat.NotebookNode) -> list[list[tuple[str, str]]]:
    """Per code cell, its outputs as (kind, text): stdout merged, results and displays as text,
    figures as ``<figure>``, errors by name; stderr dropped."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs, stdout = [], ""
        for out in cell.get("outputs", []):
            kind = out["output_type"]
            if kind == "stream":
                stdout += out["text"] if out["name"] == "stdout" else ""
                continue
            if kind == "error":
                outputs.append(("error", f"{out['ename']}: {out['evalue']}"))
            elif "image/png" in out.get("data", {}):
                outputs.append(("figure", "<figure>"))
            else:
                outputs.append((kind, out.get("data", {}).get("text/plain", "")))
        cells.append(([("stdout", stdout)] if stdout else []) + outputs)
    return cells


def _unit(token: str) -> float:
    """One unit in the last digit of a printed number: 0.01 for "0.96", 10 for "1.53e+03"."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _split(text: str) -> tuple[str, list[str]]:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    skeleton = " ".join(NUMBER.sub("#", text).split())
    return skeleton, NUMBER.findall(text)


def differences(committed: nbformat.NotebookNode, fresh: nbformat.NotebookNode) -> list[str]:
    """Where the fresh run's outputs differ from the committed ones (empty when they agree)."""
    old, new = cell_outputs(committed), cell_outputs(fresh)
    if len(old) != len(new):
        return [f"{len(old)} code cells committed, {len(new)} executed"]
    found = []
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        where = f"code cell {index + 1}"
        found += [f"{where}: error output: {text}" for kind, text in b if kind == "error"]
        if [k for k, _ in a] != [k for k, _ in b]:
            found.append(f"{where}: outputs {[k for k, _ in a]} committed, {[k for k, _ in b]} now")
            continue
        for (_, text_a), (_, text_b) in zip(a, b, strict=True):
            (skeleton_a, numbers_a), (skeleton_b, numbers_b) = _split(text_a), _split(text_b)
            if skeleton_a != skeleton_b:
                found.append(f"{where}: text changed:\n{text_a}\n---- now ----\n{text_b}")
                continue
            for x, y in zip(numbers_a, numbers_b, strict=True):
                if abs(float(x) - float(y)) > 1.000001 * max(_unit(x), _unit(y)):
                    found.append(f"{where}: committed {x}, now {y}")
    return found


def main(paths: list[str]) -> None:
    for path in [Path(p) for p in paths] or NOTEBOOKS:
        print(f"executing {path.name}", flush=True)
        notebook = execute(path)
        errors = [text for cell in cell_outputs(notebook) for kind, text in cell if kind == "error"]
        if errors:
            raise SystemExit(f"{path.name}: {errors[0]}")
        nbformat.write(notebook, path)


if __name__ == "__main__":
    main(sys.argv[1:])
