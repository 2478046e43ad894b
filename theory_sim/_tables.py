"""The checks as plain text: the grouped table ``theory-sim check`` prints within :data:`WIDTH`
columns, its ``--wide`` form, and counts by status. Pure formatting over objects with the fields
of :class:`theory_sim.theorems.Check` (``claim``, ``instance``, ``measured``, ``relation``,
``bound``, ``ratio``, ``status``, ``details``); it computes nothing."""

from __future__ import annotations

import math

STATUSES = ("holds", "fails", "vacuous")


def format_number(x: float) -> str:
    return "inf" if math.isinf(x) else ("nan" if math.isnan(x) else f"{x:.4g}")


RELATION = {">=": "lower bound", "<=": "upper bound", "==": "equality"}
WIDTH = 100  # the default table fits a terminal this wide; --wide prints every label whole
INSTANCE_WIDTH = 44


def ratio_text(check) -> str:
    """measured / bound, or "-" where it says nothing: a bound of 0 (the row is decided by its
    tolerance) or two infinite sides."""
    ratio = check.ratio
    return "-" if math.isnan(ratio) or float(check.bound) == 0.0 else format_number(ratio)


def status_text(check) -> str:
    return check.status.upper() if check.status == "fails" else check.status


def tolerance_text(group) -> str:
    """The tolerance the rows of one claim are decided by, when they state one and share it
    (to the one significant digit printed)."""

    def shown(tol) -> str:
        try:
            return f"{float(tol):.1g}"
        except (TypeError, ValueError):
            return str(tol)

    tolerances = {shown(c.details["tolerance"]) for c in group if "tolerance" in c.details}
    return f"; tolerance {tolerances.pop()}" if len(tolerances) == 1 else ""


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(checks, wide: bool = False) -> str:
    """The checks as text: one block per claim (a heading, then a row per instance) within
    :data:`WIDTH` columns, or with ``wide`` one row per check with its claim and whole label."""
    if wide:
        header = ("claim", "instance", "measured", "rel", "bound", "ratio", "status")
        rows = [
            (c.claim, c.instance, format_number(c.measured), c.relation,
             format_number(c.bound), ratio_text(c), status_text(c))
            for c in checks
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(line.rstrip() for line in lines)
    groups: dict[str, list] = {}
    for c in checks:
        groups.setdefault(c.claim, []).append(c)
    cols = (
        f"  {'instance':<{INSTANCE_WIDTH}}  {'measured':>10}  rel  {'bound':>10}  "
        f"{'ratio':>9}  status"
    )
    lines = []
    for claim, group in groups.items():
        relation = group[0].relation
        tally = counts(group)
        heading = f"{claim}: {RELATION.get(relation, relation)}{tolerance_text(group)}"
        gap = max(WIDTH - len(heading) - len(tally), 2)
        lines += ["", heading + " " * gap + tally if gap < WIDTH else heading, cols]
        for c in group:
            lines.append(
                f"  {clip(c.instance, INSTANCE_WIDTH):<{INSTANCE_WIDTH}}  "
                f"{format_number(c.measured):>10}  {c.relation:<3}  "
                f"{format_number(c.bound):>10}  {ratio_text(c):>9}  {status_text(c)}"
            )
    return "\n".join(lines[1:])


def status_counts(checks) -> dict[str, int]:
    """{status: number of checks} for every status, zeros included."""
    statuses = [c.status for c in checks]
    return {s: statuses.count(s) for s in STATUSES}


def counts(checks) -> str:
    """Counts by status over ``checks``, e.g. "212 hold, 0 fail, 18 vacuous"."""
    words = {"holds": "hold", "fails": "fail", "vacuous": "vacuous"}
    return ", ".join(f"{n} {words[s]}" for s, n in status_counts(checks).items())
