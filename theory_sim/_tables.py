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
INSTANCE_WIDTH = 49
# The 100-column table writes the paper's symbols for the long names in instance labels.
_SYMBOLS = (("lambda=", "\u03bb="), ("gamma=", "\u03b3="), ("pi_0(", "\u03c0\u2080("))


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
    """``text`` with the paper's symbols for lambda, gamma and pi_0 and, when longer than
    ``width``, its middle cut out ("..") so that its start (the instance) and its last word (the
    target, gamma=...) both stay."""
    for name, symbol in _SYMBOLS:
        text = text.replace(name, symbol)
    if len(text) <= width:
        return text
    tail = text.rsplit(" ", 1)[-1][: width // 2]
    return text[: width - len(tail) - 2] + ".." + tail


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
        gap = WIDTH - len(heading) - len(tally)
        top = (
            [heading + " " * gap + tally]
            if gap >= 2
            else [heading, " " * (WIDTH - len(tally)) + tally]
        )
        lines += ["", *top, cols]
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


def summary(checks, claims: dict) -> str:
    """The counts over ``checks``, then a row per claim: its relation, its tightest row (the
    entries of :func:`theory_sim.theorems.tightest`, passed as ``claims``) and its counts."""
    lines = [
        f"{counts(checks)} (of {len(checks)} checks)",
        "",
        f"{'tightest row per claim':<48}  rel  {'tightest':<23}  hold  fail  vacuous",
    ]
    for claim, entry in claims.items():
        value = format_number(entry["tightest"])
        if entry["of"] == "measured":
            tight = f"max {value} (bound 0)"
        elif entry["relation"] == "==":
            tight = f"max |ratio-1| {value}"
        else:
            tight = f"{'min' if entry['relation'] == '>=' else 'max'} ratio {value}"
        lines.append(
            f"  {claim:<46}  {entry['relation']:<3}  {tight:<23}  {entry['holds']:>4}  "
            f"{entry['fails']:>4}  {entry['vacuous']:>7}"
        )
    return "\n".join(lines)


def exponents(rows) -> str:
    """The exponent fits (rows with "policy", "family", "slope", "stderr", "decades", "points",
    "bound_exponent"), one line each under a heading."""
    lines = [
        "Exponents: fitted slope of log t_gamma on log Var0 (lambda = 0)",
        f"  {'policy':<15} {'family':<14} {'slope ± stderr':<20} decades  points  bound's exponent",
    ]
    for row in rows:
        fit = f"{row['slope']:+.4f} ± {row['stderr']:.2g}"
        lines.append(
            f"  {row['policy']:<15} {row['family']:<14} {fit:<20} {row['decades']:>7.1f}  "
            f"{row['points']:>6}  {row['bound_exponent']}"
        )
    return "\n".join(lines)
