"""A Griffe extension for the API reference: theory_sim's docstrings are plain text with
Google sections and a few Sphinx roles; mkdocstrings renders them as Markdown. Before rendering,
this turns ``:func:`~a.b.name``` (and :mod:, :class:, :data:, :meth:, :attr:) into ```name```
and escapes the asterisks of formulas (pi*, a * b) so that Markdown does not read them as
emphasis. Code spans, fenced blocks, doctest examples and list bullets are left as they are."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:mod|func|class|data|meth|attr|obj|exc):`(~?)([^`]+)`")
BULLET = re.compile(r"^(\s*)\* ")


def _role(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target.lstrip('.')}`"


def _escape_line(line: str) -> str:
    """Asterisks outside code spans escaped; a leading list bullet kept."""
    bullet = BULLET.match(line)
    head, rest = (line[: bullet.end()], line[bullet.end() :]) if bullet else ("", line)
    parts = rest.split("`")
    parts[::2] = [part.replace("*", r"\*") for part in parts[::2]]  # outside code spans
    return head + "`".join(parts)


def plain(text: str) -> str:
    """``text`` with roles as code spans and emphasis-free asterisks (see the module doc)."""
    text = ROLE.sub(_role, text)
    out, fenced, doctest = [], False, False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
        elif stripped.startswith(">>>"):
            doctest = True
        elif not stripped:
            doctest = False
        out.append(line if fenced or doctest or stripped.startswith("```") else _escape_line(line))
    return "\n".join(out)


class PlainDocstrings(griffe.Extension):
    """Applies :func:`plain` to every docstring Griffe loads."""

    def on_instance(self, *, node, obj, agent, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
