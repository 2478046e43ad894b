"""Every notebook, executed at full size in a fresh kernel, prints what its committed outputs
show (numbers to one unit in the last printed digit; see tests/notebook_outputs.py)."""

import copy

import nbformat
import pytest
from notebook_outputs import NOTEBOOKS, _unit, cell_outputs, differences, execute


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_committed_outputs(path):
    committed = nbformat.read(path, as_version=4)
    figures = [k for cell in cell_outputs(committed) for k, _ in cell if k == "figure"]
    assert figures, f"{path.name} is committed without its figures"
    found = differences(committed, execute(path))
    assert not found, "\n".join(found)


def _printed(*texts):
    notebook = nbformat.v4.new_notebook()
    for text in texts:
        cell = nbformat.v4.new_code_cell("")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        notebook.cells.append(cell)
    return notebook


def test_unit_is_one_in_the_last_printed_digit():
    assert _unit("0.96") == pytest.approx(0.01)
    assert _unit("1.53e+03") == pytest.approx(10.0)
    assert _unit("15265") == 1.0
    assert _unit("-2.5e-05") == pytest.approx(1e-6)


def test_comparison_tolerates_a_flipped_last_digit_and_nothing_more():
    committed = _printed("RLOO SNR 0.956 at eps 1e-1 | t | 1.526e+04 |\n")
    assert not differences(committed, _printed("RLOO SNR 0.957 at eps 1e-1 | t | 1.527e+04 |\n"))
    assert differences(committed, _printed("RLOO SNR 0.958 at eps 1e-1 | t | 1.526e+04 |\n"))
    assert differences(committed, _printed("RLOO SNR 0.956 at eps 1e-1 | t | 1.528e+04 |\n"))
    assert differences(committed, _printed("GRPO SNR 0.956 at eps 1e-1 | t | 1.526e+04 |\n"))
    # table padding and separator widths follow the numbers' widths; they are not compared
    assert not differences(_printed("| a |\n|---|\n| 10 |"), _printed("| a  |\n|----|\n|  10 |"))


def test_comparison_sees_missing_figures_and_errors():
    committed = _printed("x")
    fresh = copy.deepcopy(committed)
    fresh.cells[0].outputs.append(
        nbformat.v4.new_output("display_data", data={"image/png": "", "text/plain": "<Figure>"})
    )
    assert differences(committed, fresh)
    broken = copy.deepcopy(committed)
    broken.cells[0].outputs.append(
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])
    )
    assert any("error" in d for d in differences(committed, broken))
