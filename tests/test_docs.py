"""The README and the documentation site: their examples run as written, the site builds with
warnings as errors, and the built pages (home, an API page, a notebook) read right."""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
README_LINES = 200


def _blocks(page: Path, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(page.read_text()) if lang == language]


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES
    for link in re.findall(r"\]\(((?:docs/|LICENSE)[^)#]*)", "\n".join(lines)):
        assert (ROOT / link).exists(), link


def test_code_blocks_paste_as_they_are():
    """No prompt or printed output inside a code block: what the copy button copies runs."""
    for page in PAGES:
        for language in ("python", "bash"):
            for code in _blocks(page, language):
                assert not re.search(r"^(>>>|\.\.\.|\$) ", code, re.MULTILINE), (page, code)


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if _blocks(p, "python")],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_python_examples_run(page):
    """Each page's Python blocks, in order, in one fresh interpreter: as a reader pastes them."""
    code = "\n".join(_blocks(page, "python"))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


class _Page(HTMLParser):
    """What a reader sees of a built page: its title, images, anchors (ids), text, and the text
    of each code or pre element whole (highlighting splits code into many spans)."""

    def __init__(self):
        super().__init__()
        self.title, self.images, self.code, self.text = "", [], [], []
        self.ids: set[str] = set()
        self._in, self._code = [], []

    def handle_starttag(self, tag, attrs):
        self._in.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        if dict(attrs).get("id"):
            self.ids.add(dict(attrs)["id"])
        if tag in ("code", "pre"):
            self._code.append([])

    def handle_endtag(self, tag):
        if tag in ("code", "pre") and self._code:
            self.code.append("".join(self._code.pop()))
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if "title" in self._in:
            self.title += data
        for buffer in self._code:
            buffer.append(data)
        if "script" not in self._in and "style" not in self._in:
            self.text.append(data)


def _read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


ERRORS = re.compile(r"Traceback|Error:|Exception|could not be found|Could not collect")


def test_home_page(site):
    home = _read(site / "index.html")
    assert home.title.startswith("theory_sim")
    assert "images/flat_landscape.png" in home.images
    assert (site / "images" / "flat_landscape.png").stat().st_size > 20_000
    assert any("theory-sim check" in c for c in home.code)
    assert not ERRORS.search(" ".join(home.text))
    assert 'data-md-component="content"' in (site / "index.html").read_text()
    # the copy button of mkdocs-material is on
    assert "content.code.copy" in (site / "index.html").read_text()


def test_an_api_page(site):
    api = _read(site / "api" / "flow" / "index.html")
    assert api.title.startswith("flow")
    text = " ".join(api.text)
    for name in (
        "theory_sim.flow.trajectory.gradient_flow",
        "theory_sim.flow.crossing.time_to_gain",
    ):
        assert name in api.ids, name  # each function's heading, anchored at its full path
    assert "Proposition 3 and Theorems 4-6 bound it" in text  # a docstring, rendered
    # Sphinx roles become code, formulas' asterisks stay asterisks (docs/_ext/plain_docstrings.py)
    assert ":func:" not in text and ":mod:" not in text and "trajectory" in api.code
    assert "log pi*(y|x)" in text
    assert any("time_to_gain(p, gamma=0.5)" in c for c in api.code)  # its example, as code
    assert not ERRORS.search(text)


def test_a_notebook_page(site):
    page = _read(site / "notebooks" / "02_flat_landscape" / "index.html")
    assert "Flat landscape" in page.title
    assert sum(src.startswith("data:image/png") for src in page.images) >= 2  # its figures
    assert any("flat_landscape(" in c for c in page.code)
    assert "| policy | family | slope | stderr |" in " ".join(page.text)  # its printed output
    assert not ERRORS.search(" ".join(page.text))
