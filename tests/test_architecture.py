"""The layers of docs/architecture.md hold in the code (import-linter's layers contract in
pyproject.toml), the page lists every module the contract names, and no module outgrows one
concept."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())", "--no-cache"]  # fmt: skip
MAX_LINES = 600  # DESIGN.md: past about 600 lines a module becomes a package by concept


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return [[m.strip() for m in layer.split("|")] for layer in contract["layers"]]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(LINT, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_imports_follow_the_layers():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_import_against_the_layers_is_caught(tmp_path):
    # the same package with one import pointing up: the ground floor importing the command line
    shutil.copytree(ROOT / "theory_sim", tmp_path / "theory_sim")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    validation = tmp_path / "theory_sim" / "_validation.py"
    validation.write_text(validation.read_text() + "\nimport theory_sim.cli  # noqa: E402\n")
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert "BROKEN" in result.stdout and "theory_sim._validation -> theory_sim.cli" in result.stdout


def test_every_module_is_in_a_layer_and_on_the_architecture_page():
    named = {m for layer in _layers() for m in layer}
    package = ROOT / "theory_sim"
    present = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    present |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert named == present
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", page, re.MULTILINE))
    layers = _layers()
    assert len(rows) == len(layers)
    for number, modules in zip(range(len(layers), 0, -1), layers, strict=True):
        listed = [m.strip(" `/") for m in rows[str(number)].split("\\|")]
        assert listed == modules, f"layer {number} on the page: {listed}, in pyproject: {modules}"


def test_no_module_outgrows_one_concept():
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / "theory_sim").rglob("*.py")
    }
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


def test_every_module_that_uses_jax_turns_on_float64_first():
    """Float64 is switched on in theory_sim._device; every module that imports JAX reaches it
    through its own imports, so no array of theory_sim is ever made in float32."""
    import grimp

    graph = grimp.build_graph("theory_sim", include_external_packages=True)
    users = {m for m in graph.modules if graph.direct_import_exists(importer=m, imported="jax")}
    assert len(users) > 20  # the graph saw the imports
    missing = {
        m
        for m in users - {"theory_sim._device"}
        if not graph.chain_exists(importer=m, imported="theory_sim._device")
    }
    assert missing == set()


def test_the_package_and_the_command_line_start_without_jax():
    code = (
        "import sys, theory_sim, theory_sim.cli; assert 'jax' not in sys.modules\n"
        "sys.argv = ['theory-sim', '--help']\n"
        "try:\n    theory_sim.cli.main()\nexcept SystemExit:\n    pass\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
        "theory_sim.Problem  # the first public name loads the computing modules\n"
        "import jax; assert jax.config.read('jax_enable_x64')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: theory-sim" in result.stdout
