"""The numbers the README and the findings page (docs/findings.md) quote, against the runs they
quote.

Notebook numbers are checked against the committed notebook outputs, which
tests/test_notebooks.py checks against a fresh full-size run; `theory-sim check` numbers are
checked against a fresh run of the command at its defaults (seed 0). A README number agrees
with a measured one when both round to the same value at the coarser of their two precisions
(half a unit in the last digit of either): "0.96" quotes 0.956, not 0.0924.
"""

import dataclasses
import json
import re
from pathlib import Path

import nbformat
import pytest
from notebook_outputs import NOTEBOOKS, NUMBER, _unit, cell_outputs

from theory_sim import _tables
from theory_sim.theorems import Check

ROOT = Path(__file__).resolve().parents[1]
# the README and the findings page it links to, as one text with single spaces
README = " ".join(
    " ".join((ROOT / name).read_text().split()) for name in ("README.md", "docs/findings.md")
)
# README numbers may carry thousands separators ("15,265"); a sign is kept only where it is one
QUOTED = re.compile(r"(?<![\w.,])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

# (notebook, a README fragment whose every number that notebook prints)
NOTEBOOK_QUOTES = [
    ("11_verifiable_rewards_and_grpo", "(GRPO slope 0.000 against the exact flow's -0.500)"),
    ("11_verifiable_rewards_and_grpo", "good output (slope -0.982 against -1.001)"),
    ("11_verifiable_rewards_and_grpo", "within 1.6e-10 on all 55 cells with"),
    ("11_verifiable_rewards_and_grpo", "(gains -0.0054 to -0.0251 by t = 20)"),
    ("11_verifiable_rewards_and_grpo", "average to 0.502 +- 0.004 of the clean"),
    ("11_verifiable_rewards_and_grpo", "GRPO's to 0.485 +- 0.003, exactly 0.4828 by"),
    ("11_verifiable_rewards_and_grpo", "expectation for J = 0.50 (exactly 0.5000)"),
    ("11_verifiable_rewards_and_grpo", "E r_G = 0.9 2,010 times sooner"),
    ("11_verifiable_rewards_and_grpo", "(HAcc-W 1, Acc-W 0.1743)"),
    ("11_verifiable_rewards_and_grpo", "increase at -0.330 (Acc-W -0.412, variance +0.794)"),
    ("11_verifiable_rewards_and_grpo", "16.7 against 33,564.7 at pi_0(y*) = 0.05"),
    ("11_verifiable_rewards_and_grpo", "HAcc-W at -0.330 (5 of 20 seeds positive)"),
    (
        "11_verifiable_rewards_and_grpo",
        "HAcc-W +0.638 (18 of 20 seeds positive), Acc-W +0.649 and variance +0.727",
    ),
    ("11_verifiable_rewards_and_grpo", "12.0 against 1,077 at 0.1, 10.1 against 140 at 0.15"),
    ("11_verifiable_rewards_and_grpo", "length (83.3 at L = 4, 34.81 at L = 8)"),
    ("11_verifiable_rewards_and_grpo", "(30.07 at L = 12); notebook 11"),
    ("11_verifiable_rewards_and_grpo", "(47.71, 17.73 and 14.58 for GRPO's expected update)"),
    ("11_verifiable_rewards_and_grpo", "The overall fit is L^-0.91 (GRPO L^-0.979)"),
    ("11_verifiable_rewards_and_grpo", "flattens to -0.07 between L = 10 and 12"),
    ("11_verifiable_rewards_and_grpo", "bottoms at 7.24 at L = 16 and rises to 12.22 at L = 1,024"),
    ("11_verifiable_rewards_and_grpo", "fail at 33.12, 29.54 and 22.02 for L = 4, 6 and 8"),
    ("11_verifiable_rewards_and_grpo", "between 27.33 and 36.23 (RLOO) and 10.96 and 17.22 (GRPO)"),
    ("10_evaluate_reward_models", "(Kendall tau mean 0.56), the dump's variance ranks"),
    (
        "10_evaluate_reward_models",
        "the models about as well (0.55) and its accuracy not at all (-0.00)",
    ),
    ("10_evaluate_reward_models", "Kendall tau mean 0.56, positive on 18 of 20 seeds"),
    ("10_evaluate_reward_models", "(mean 0.55, positive on 20 of 20)"),
    ("10_evaluate_reward_models", "(accuracy 1.000, predicted t 776)"),
    ("10_evaluate_reward_models", "(accuracy 0.503, t 8.47)"),
    ("01_quickstart", "(2.78 -> 278)"),
    ("03_accuracy_is_not_enough", "(accurate model 153, 1,526, 15,265; inaccurate model 9.7"),
    (
        "03_accuracy_is_not_enough",
        "by 10^2.2 to 10^2.4, across the accuracy axis by at most 10^0.5",
    ),
    ("04_teacher_depends_on_student", "(2.0 vs 346 from Pi, 345 vs 2.9 from Pi')"),
    ("04_teacher_depends_on_student", "rankings runs from -0.57 to 0.71"),
    (
        "04_teacher_depends_on_student",
        "(Spearman 0.24 to 1.0) rather than the accuracy (-0.30 to 0.42)",
    ),
    ("05_section_4_1", "| reward variance | +0.73, 20 of 20 (0.982) | +0.79, 20 of 20 (0.834) |"),
    (
        "05_section_4_1",
        "| on-policy accuracy | -0.23, 6 of 20 (-0.762) | -0.41, 5 of 20 (-0.283) |",
    ),
    (
        "05_section_4_1",
        "| off-policy accuracy | -0.56, 0 of 20 (-0.933) | -0.78, 0 of 20 (-0.507) |",
    ),
    ("05_section_4_1", "| -0.48, 2 of 20 (-0.870) | -0.69, 1 of 20 (-0.397) |"),
    ("05_section_4_1", "| +0.32, 17 of 20 (0.676) | +0.14, 10 of 20 (0.940) |"),
    ("05_section_4_1", "| reward variance | +0.68, 19 of 20 | +0.73, 20 of 20 |"),
    ("05_section_4_1", "| on-policy accuracy | +0.33, 15 of 20 | +0.65, 19 of 20 |"),
    ("05_section_4_1", "| off-policy accuracy | -0.52, 2 of 20 | -0.57, 1 of 20 |"),
    ("05_section_4_1", "(0.085 against 0.10 to 0.125 for the Bradley-Terry models)"),
    ("06_autoregressive", "(V = 2, L = 4: +0.63 ground truth, 18 of 20 seeds)"),
    ("07_estimators_snr", "(RLOO SNR 0.94, 0.28, 0.081, 0.027 for eps = 1e-1 to 1e-4;"),
    ("08_neural_policies", "1.29 to 0.09 from width 8 to 256 at depth 1, 1.80 to 0.29 at depth 2"),
    ("08_neural_policies", "does not fall (1.45 to 2.30)"),
    ("08_neural_policies", "is -0.994 to -1.003 at lambda = 0 in all 24 configurations"),
    ("08_neural_policies", "(95 % intervals within +-0.005; tabular -1.001)"),
    ("08_neural_policies", "J_t / J_0 is at most 1.13 at widths 64 and 256"),
    ("08_neural_policies", "(mean-field flows 1.1x to 1.4x faster)"),
    ("08_neural_policies", "the neural slopes steepen to -1.02 to -1.07"),
    ("08_neural_policies", "holds on every flow, by factors 970 to 3e7"),
    ("08_neural_policies", "stays at 2.5-2.7x under mean field"),
    ("09_tightness", "Proposition 2 has slack 8.485 = 6"),
    ("09_tightness", "Proposition 3 comes within 2.214 of its bound"),
    ("09_tightness", "Theorem 4 is loose by 162.4 at best (L = 1) and 1580 at L = 3"),
    ("09_tightness", "by 7.099 (Theorem 5), 5.969 (Theorem 6) and 8.089"),
    ("09_tightness", "(slack 6.846)"),
]


def _quoted(text: str) -> list[str]:
    return [n.replace(",", "") for n in QUOTED.findall(text)]


def _agrees(quoted: str, measured: float | str) -> bool:
    """Both round to the same value at the coarser precision of the two."""
    unit = max(_unit(quoted), _unit(measured) if isinstance(measured, str) else 0.0)
    return abs(float(quoted) - float(measured)) <= 0.5 * unit * (1 + 1e-9)


def _printed(stem: str) -> list[str]:
    (path,) = [p for p in NOTEBOOKS if p.stem == stem]
    cells = cell_outputs(nbformat.read(path, as_version=4))
    return [n for cell in cells for _, text in cell for n in NUMBER.findall(text)]


@pytest.mark.parametrize(("stem", "fragment"), NOTEBOOK_QUOTES)
def test_readme_quotes_the_committed_notebook(stem, fragment):
    assert fragment in README, "the README no longer says this; update NOTEBOOK_QUOTES"
    printed = _printed(stem)
    missing = [q for q in _quoted(fragment) if not any(_agrees(q, n) for n in printed)]
    assert not missing, f"{stem} prints no number that {missing} quotes"


def test_quote_matching_is_rounding_at_the_coarser_precision():
    assert _quoted("153, 1,526, 15,265; -0.57 to 0.71, 1e-1") == [
        "153", "1526", "15265", "-0.57", "0.71", "1e-1"
    ]  # fmt: skip
    assert _agrees("0.96", "0.956") and _agrees("15265", "1.526e+04") and _agrees("9.7", "9.667")
    assert not _agrees("0.96", "0.0924") and not _agrees("0.11", "0.0924")
    assert not _agrees("0.03", "0.0218") and not _agrees("278", "276.4")


def _check_numbers(fragment: str) -> list[float]:
    assert fragment in README, "the README no longer says this; update the test"
    return [float(q) for q in _quoted(fragment)]


@pytest.mark.slow
def test_readme_quotes_theory_sim_check(capsys):
    from theory_sim import cli

    # the exponent table is quoted from notebook 02's fits (the same computation as check's,
    # compared with a fresh run by tests/test_notebooks.py); the rest needs the check itself
    assert cli.main(["check", "--json", "--no-exponents"]) == 0
    run = json.loads(capsys.readouterr().out)
    summary = run["summary"]
    for fragment, at in (
        ("checks 345 rows: 308 hold, 0 fail and 37 are vacuous", 0),  # the findings page
        ("reports 308 of 345 rows holding, 0 failing and 37 vacuous", 1),  # the README
    ):
        numbers = _check_numbers(fragment)
        total, (holds, fails, vacuous) = numbers.pop(at), numbers
        assert (holds, fails, vacuous) == (summary["holds"], summary["fails"], summary["vacuous"])
        assert total == len(run["checks"])

    tightest = {claim: entry["tightest"] for claim, entry in run["claims"].items()}
    for fragment, claim in [
        ("Lemma 10 0.9999", "Lemma 10"),
        ("variance-growth bound 1.0", "Proposition 3 (proof): variance growth"),
        ("Proposition 1 0.95", "Proposition 1"),
        ("Proposition 3 3.7", "Proposition 3"),
        ("Theorem 5's slow time 62", "Theorem 5: slow model time"),
        ("Theorem 4 457", "Theorem 4"),
        ("(52,185 at held-out prompts)", "Theorem 4 (held-out prompt)"),
        ("they differ by 4.9e-8 relative", "Lemma 9"),
        ("Proposition 2 0.04", "Proposition 2"),
        ("at most 0.25 of the derived bound", "Proposition 4 (Y_bad)"),
    ]:
        (*_, quoted) = _quoted(fragment)
        assert _agrees(quoted, tightest[claim]), (claim, quoted, tightest[claim])
    (fall,) = _check_numbers("largest fall below 1e-15, round-off")
    for claim in ("phi non-decreasing", "E r_RM above its start"):
        assert tightest["Proposition 4 (proof): " + claim] < fall
    fast5, fast6 = _quoted("(at most 0.003 and 0.01 of the bound)")
    assert _agrees(fast5, tightest["Theorem 5: fast model time"])
    assert _agrees(fast6, tightest["Theorem 6: matching model time"])

    def measured(claim):
        return [c["measured"] for c in run["checks"] if c["claim"] == claim]

    fast_lo, fast_hi, slow_lo, slow_hi, _, _ = _quoted(
        "reaches the gain in 9.5 to 9.7 time units against 153 to 15,779 for the accurate one "
        "as T runs from 10 to 1000"
    )
    fast, slow = measured("Theorem 5: fast model time"), measured("Theorem 5: slow model time")
    assert _agrees(fast_lo, min(fast)) and _agrees(fast_hi, max(fast))
    assert _agrees(slow_lo, min(slow)) and _agrees(slow_hi, max(slow))
    (ratio,) = _check_numbers("ranking flips with time ratios below 0.01")
    assert max(measured("Theorem 6: ranking flips")) < ratio

    # the README's sample of the table: every line of it is a line `check` prints
    fields = {f.name for f in dataclasses.fields(Check)}
    checks = [
        Check(**{k: float(v) if k in ("measured", "bound") else v for k, v in row.items()
                 if k in fields})
        for row in run["checks"]
    ]  # fmt: skip
    printed = set(_tables.table(checks).splitlines())
    printed.add(f"{_tables.counts(checks)} (of {len(checks)} checks)")
    readme = (ROOT / "README.md").read_text()
    (sample,) = re.findall(r"```text\n(Proposition 3: lower bound.*?)```", readme, re.DOTALL)
    shown = [line for line in sample.splitlines() if line != "[...]"]
    assert len(shown) >= 8
    assert [line for line in shown if line not in printed] == []


def test_readme_exponent_table_quotes_notebook_02():
    """| policy | family | slope +- stderr | against notebook 02's fit table (same fits as check)."""
    (path,) = [p for p in NOTEBOOKS if p.stem == "02_flat_landscape"]
    (text,) = [
        t
        for cell in cell_outputs(nbformat.read(path, as_version=4))
        for _, t in cell
        if "| policy | family | slope | stderr |" in t
    ]
    fits = re.findall(
        r"\| (tabular|autoregressive) \| (\w+) \| ([-\d.e+]+) \| ([-\d.e+]+) \|", text
    )
    assert len(fits) == 4
    for policy, family, slope_value, stderr_value in fits:
        name = "tabular, Y = 8" if policy == "tabular" else "autoregressive, V = 2, L = 3"
        label = {"reward_scale": "r_RM = c r_G", "concentration": "pi_0 mass eps"}[family]
        match = re.search(
            rf"\| {re.escape(name)} \| {re.escape(label)}[^|]*\| ([-+.\de]+) \+- (<?)([.\de-]+) \|",
            README,
        )
        assert match, (name, label)
        slope, below, stderr = match.groups()
        assert _agrees(slope, slope_value), (name, label, slope, slope_value)
        # a round-off stderr is quoted as a bound ("<1e-11"): its digits are the machine's
        assert float(stderr_value) < float(stderr) if below else _agrees(stderr, stderr_value)
