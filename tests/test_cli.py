import json

import pytest

from theory_sim import cli, experiments
from theory_sim.theorems import Check


def _strict_json(text: str):
    """json.loads that rejects the non-standard tokens Infinity, -Infinity and NaN."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_strict_parser_rejects_infinity():
    with pytest.raises(ValueError, match="Infinity"):
        _strict_json(json.dumps({"t": float("inf")}))


def test_check_prints_json_and_passes(capsys):
    assert cli.main(["check", "--instances", "2", "--json"]) == 0
    captured = capsys.readouterr()
    payload = _strict_json(captured.out)  # progress went to stderr, not into the JSON
    assert "checking instance 2/2" in captured.err and "fitting exponents 4/4" in captured.err
    rows = payload["checks"]
    # every row reports its ratio and status; the summary counts the statuses
    statuses = [r["status"] for r in rows]
    assert set(statuses) <= {"holds", "vacuous"}
    assert payload["summary"] == {s: statuses.count(s) for s in ("holds", "fails", "vacuous")}
    assert statuses.count("holds") > 0.8 * len(rows)
    for r in rows:
        if r["status"] == "vacuous":
            assert r["vacuous"]
        elif isinstance(r["bound"], float) and r["bound"] != 0:
            assert r["ratio"] == pytest.approx(r["measured"] / r["bound"], rel=1e-12)
    prop3 = payload["claims"]["Proposition 3"]
    assert prop3["relation"] == ">=" and prop3["tightest"] >= 1.0
    assert prop3["holds"] == sum(
        r["claim"] == "Proposition 3" and r["status"] == "holds" for r in rows
    )
    assert {r["claim"] for r in rows} >= {
        "Proposition 3",
        "Proposition 3 (proof): variance growth",
        "Theorem 4",
        "Proposition 2",
    }
    fits = {(e["policy"], e["family"]): e for e in payload["exponents"]}
    assert len(fits) == 4 and all(e["decades"] >= 5.9 for e in fits.values())
    # time rescaling makes the reward-scale family's exponent exactly -1/2
    assert fits["tabular", "reward_scale"]["slope"] == pytest.approx(-0.5, abs=1e-6)
    assert all(r["holds"] for r in rows)
    assert all({"measured", "bound", "relation", "instance"} <= r.keys() for r in rows)


def test_check_is_reproducible_and_seed_dependent():
    a = experiments.check_suite(seed=5, num_instances=2)
    b = experiments.check_suite(seed=5, num_instances=2)
    c = experiments.check_suite(seed=6, num_instances=2)
    assert [x.measured for x in a] == [x.measured for x in b]
    assert [x.measured for x in a] != [x.measured for x in c]


def test_check_table_figure_and_failure_exit_code(tmp_path, capsys, monkeypatch):
    args = ["check", "--instances", "1", "--no-exponents", "--figures", str(tmp_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "Proposition 3" in out and "0 fail" in out and "Tightest ratio per claim" in out
    assert (tmp_path / "proposition_3.png").stat().st_size > 0
    assert (tmp_path / "theorem_4.png").stat().st_size > 0
    failing = Check("Proposition 3", "fake", 1.0, 2.0, ">=", False)
    monkeypatch.setattr(experiments, "check_suite", lambda **kwargs: [failing])
    assert cli.main(["check", "--no-exponents"]) == 1
    out = capsys.readouterr().out
    assert "FAILS" in out and "0 hold, 1 fail, 0 vacuous" in out


def test_version_and_subcommand_descriptions(capsys):
    from theory_sim import __version__

    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"theory-sim {__version__}"
    for command, phrase in (
        ("check", "vacuous"),
        ("reproduce", "markdown report"),
        ("sweep", "resumes"),
        ("plot", "one marker per initial policy"),
        ("tightness", "1 is sharp, below 1 a violation"),
    ):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert phrase in " ".join(capsys.readouterr().out.split())


def test_plot_creates_nothing_when_its_input_is_bad(tmp_path, capsys):
    out = tmp_path / "figures"
    with pytest.raises(SystemExit) as stop:
        cli.main(["plot", str(tmp_path / "missing"), "--out", str(out)])
    assert stop.value.code == 2 and "must be a sweep directory" in capsys.readouterr().err
    assert not out.exists()


def test_bad_arguments_exit_with_usage_error():
    with pytest.raises(SystemExit) as err:
        cli.main(["check", "--instances", "0"])
    assert err.value.code == 2


def test_console_script_flushes_its_output_and_exits_with_the_code():
    """The console script (cli.run) ends the process with os._exit after main: what main wrote
    to a pipe arrives whole, and its exit code, argparse's included, is the process's."""
    import os
    import subprocess
    import sys

    # output to a pipe is block-buffered, unless PYTHONUNBUFFERED says otherwise
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

    def console(*args):
        script = "from theory_sim.cli import run\nrun()"
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )

    done = console("check", "--instances", "1", "--no-exponents", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _strict_json(done.stdout)["checks"]  # the whole document, flushed before the exit
    done = console("check", "--instances", "0")
    assert done.returncode == 2 and "--instances must be >= 1" in done.stderr
    done = console("--version")
    assert done.returncode == 0 and done.stdout.startswith("theory-sim ")
