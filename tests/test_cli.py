import json

import pytest

from theory_sim import _tables, cli, experiments
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
    assert "Proposition 3: lower bound" in out and "0 fail" in out
    assert "tightest row per claim" in out
    table = out.split("\n\n")[0].splitlines()
    assert max(len(line) for line in out.splitlines()) <= _tables.WIDTH  # summary included
    assert not [line for line in table if line.endswith(" holds") and " nan " in line]
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
        ("check", "autoregressive, log-linear, transformer and MLP policies"),
        ("check", "--wide"),
        ("reproduce", "markdown report"),
        ("reproduce", "the tightness search"),
        ("reproduce", "resumes"),
        ("tightness", "'Lemma 8', 'Proposition 2', 'Proposition 3', 'Theorem 4'"),
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


LONG = "Proposition 4 (proof): E r_RM above its start, again"


def test_the_table_fits_100_columns_and_states_tolerances():
    rows = [
        Check("Lemma 9", "#2 X=3 Y=4 lambda=0", 1.0, 1.0, "==", True, {"tolerance": "2e-05 rel"}),
        Check("Monotone", "#3 X=2 Y=10 lambda=0", 0.0, 0.0, "<=", True, {"tolerance": 1.2e-9}),
        Check("Monotone", "#7 X=2 Y=10 lambda=0.01", 2e-18, 0.0, "<=", True, {"tolerance": 1e-9}),
        Check("Theorem 4", "#1 " + "x" * 80 + " gamma=0.5", 10.0, 2.0, ">=", True),
        Check(LONG, "#4", 1.0, 2.0, "<=", True, {"tolerance": 1e-9}),
        Check("Theorem 4", "#2 never reached", float("inf"), 2.0, ">=", True),
    ]
    table = _tables.table(rows)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= _tables.WIDTH
    assert lines[0].startswith("Lemma 9: equality; tolerance 2e-05 rel")
    assert next(line for line in lines if line.startswith("Monotone")).startswith(
        "Monotone: upper bound; tolerance 1e-09"
    )  # one significant digit: the rows share it
    bound_zero = [line for line in lines if "X=2 Y=10" in line]
    assert all(line.split()[-2] == "-" for line in bound_zero)  # no ratio where the bound is 0
    # a long label keeps its start and its target (lambda, gamma as symbols), whole with --wide
    assert "  #1 " + "x" * 30 in table and "x..\u03b3=0.5 " in table
    wide = _tables.table(rows, wide=True)
    assert "#1 " + "x" * 80 + " gamma=0.5" in wide and "Theorem 4" in wide.splitlines()[-1]
    assert any(" vacuous" in line and "inf" in line for line in lines)
    heading = lines.index(LONG + ": upper bound; tolerance 1e-09")
    assert lines[heading + 1].endswith(" 1 hold, 0 fail, 0 vacuous")  # its own line when long


def test_help_and_version_answer_without_jax():
    import subprocess
    import sys

    for args in (["--help"], ["--version"], ["check", "--help"], ["tightness", "--help"]):
        probe = (
            "import sys, theory_sim.cli as c\n"
            f"try:\n    c.main({args!r})\nexcept SystemExit:\n    pass\n"
            "assert 'jax' not in sys.modules\n"
        )
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert done.returncode == 0, (args, done.stderr[-2000:])


@pytest.mark.parametrize("delay", [1.0, 3.0, 8.0])
def test_ctrl_c_at_any_moment_ends_with_one_line_and_130(delay):
    """SIGINT while JAX imports, while the solvers compile and while instances are checked."""
    import signal
    import subprocess
    import sys
    import time

    script = "from theory_sim.cli import run\nrun()"
    child = subprocess.Popen(
        [sys.executable, "-c", script, "check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    if child.returncode == 0:  # finished before the signal: nothing to check
        pytest.skip("the run finished first")
    assert child.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("theory-sim") and "interrupted" in last
