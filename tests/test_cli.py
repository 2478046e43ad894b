import json

import pytest

from theory_sim import cli, experiments
from theory_sim.theorems import Check


def test_check_prints_json_and_passes(capsys):
    assert cli.main(["check", "--instances", "2", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = payload["checks"]
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
    assert "Proposition 3" in out and "checks hold" in out
    assert (tmp_path / "proposition_3.png").stat().st_size > 0
    assert (tmp_path / "theorem_4.png").stat().st_size > 0
    failing = Check("Proposition 3", "fake", 1.0, 2.0, ">=", False)
    monkeypatch.setattr(experiments, "check_suite", lambda **kwargs: [failing])
    assert cli.main(["check", "--no-exponents"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_bad_arguments_exit_with_usage_error():
    with pytest.raises(SystemExit) as err:
        cli.main(["check", "--instances", "0"])
    assert err.value.code == 2
