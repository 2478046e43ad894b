import hashlib
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

import theory_sim as ts
from theory_sim import _figures as figures_module
from theory_sim import cli, stories
from theory_sim._figures import Figures
from theory_sim.report import markdown_table


def test_flat_landscape_points_respect_both_bounds():
    land = stories.flat_landscape("tabular", "reward_scale", num_points=4, decades=3.0)
    # reward scaling is an exact time rescaling: t_gamma sqrt(Var0) is constant
    np.testing.assert_allclose(
        land.t_gamma * np.sqrt(land.var0), land.t_gamma[0] * np.sqrt(land.var0[0]), rtol=1e-7
    )
    assert np.all(land.t_gamma >= land.proposition_3) and np.all(land.t_gamma >= land.theorem_4)
    seq = stories.flat_landscape("autoregressive", "concentration", num_points=3, decades=2.0)
    assert np.all(np.isnan(seq.proposition_3)) and np.all(seq.t_gamma >= seq.theorem_4)
    assert len(seq.rows()) == 3 and seq.rows()[0]["policy"] == "autoregressive"
    with pytest.raises(ValueError, match="`family` must be one of"):
        stories.flat_landscape("tabular", "temperature")


def test_theorem_5_story_separates_the_two_models():
    story = stories.theorem_5_story((10.0, 100.0), curve_T=10.0)
    assert all(c.holds for c in story.checks)
    slow = [r["t_slow"] for r in story.rows]
    fast = [r["t_fast"] for r in story.rows]
    assert slow[1] / slow[0] == pytest.approx(10.0, rel=1e-6)  # r_RM = T^-1 b: time scales with T
    assert fast[0] == pytest.approx(fast[1], rel=1e-9)  # the fast model does not depend on T
    assert all(r["accuracy_slow"] == 1.0 and r["accuracy_fast"] <= 2 / 6 for r in story.rows)
    # the curves cross the target at the measured t_gamma (the flow is saved on a grid)
    for traj, time in (
        (story.slow, story.rows[0]["t_slow"]),
        (story.fast, story.rows[0]["t_fast"]),
    ):
        assert traj.expected_gt[traj.ts < 0.99 * time].max() < story.target
        assert traj.expected_gt[traj.ts > 1.01 * time].min() > story.target


def test_accuracy_variance_grid_is_exact_and_variance_dominates():
    grid = stories.accuracy_variance_grid(num_accuracies=3, num_variances=3, num_outputs=6)
    assert grid.t_gamma.shape == (len(grid.accuracies), 3)
    assert grid.accuracies[-1] == 1.0 and np.all(np.diff(grid.variances) > 0)
    # more variance, less time along every accuracy row
    assert np.all(np.diff(grid.t_gamma, axis=1) < 0)
    assert len(grid.rows()) == grid.t_gamma.size


def test_theorem_6_story_flips_the_ranking():
    story = stories.theorem_6_story()
    assert story.times[0, 0] < story.times[0, 1] and story.times[1, 1] < story.times[1, 0]
    assert all(c.holds for c in story.checks)


def test_teacher_student_matches_independent_flows():
    study = stories.teacher_student(num_policies=2, num_models=3, num_outputs=5, horizon=3.0)
    assert study.gain.shape == study.variance.shape == (2, 3)
    assert np.all(np.abs(study.spearman_variance) <= 1) and np.allclose(np.diag(study.kendall), 1)
    assert len(study.best) == 2 and set(study.best) <= set(study.models)


def test_section_4_1_tables_and_rloo_agree_with_the_flow():
    study = stories.section_4_1(
        num_prompts=4, num_outputs=6, seeds=(0, 1), rloo_steps=40, num_samples=32
    )
    names = [r["reward model"] for r in study.table_1]
    assert names[-2:] == ["accurate, low variance", "ground truth"] and len(names) == 7
    by = {r["reward model"]: r for r in study.table_1}
    assert by["ground truth"]["on-policy accuracy"] == pytest.approx(1.0, abs=1e-12)
    assert by["accurate, low variance"]["off-policy accuracy"] == 1.0
    for row in study.table_1:
        # 32 samples per prompt over 40 steps: RLOO follows the flow to a few percent of the gain
        assert row["ground-truth increase (RLOO)"] == pytest.approx(
            row["ground-truth increase"], abs=0.2 * abs(row["ground-truth increase"]) + 0.01
        )
    # (all models, without the hand-built one) x (proxy, ground truth) x (flow, RLOO) x 8 measures
    assert len(study.table_2) == 2 * 2 * 2 * 8
    assert all(-1 <= r["pearson"] <= 1 and -1 <= r["spearman"] <= 1 for r in study.table_2)
    for kind in ("pearson", "spearman"):
        assert all(r[f"{kind} > 0"] + r[f"{kind} < 0"] <= 2 for r in study.table_2)
        quoted = {
            (r["measure"], r["increase"], kind): r["paper " + kind]
            for r in study.table_2
            if r["paper " + kind] is not None
        }
        assert quoted == {k: v for k, v in stories.PAPER_TABLE_2.items() if k[2] == kind}
    assert len(stories.PAPER_TABLE_2) == 20  # the whole of the paper's Table 2
    assert len(study.findings) == 6 and study.curves["ground truth"][0] == 0.0
    for row in study.table_1:
        # no ties in these rewards: Acc-W is the on-policy accuracy; HAcc-W forgives more
        assert row["Acc-W"] == pytest.approx(row["on-policy accuracy"], abs=1e-12)
        assert row["HAcc-W"] >= row["Acc-W"] - 1e-12
    again = stories.section_4_1(
        num_prompts=4, num_outputs=6, seeds=(0, 1), rloo_steps=40, num_samples=32
    )
    assert again.table_1 == study.table_1


def test_section_4_1_refuses_other_policies():
    with pytest.raises(ValueError, match="`policy` must be None, Tabular"):
        stories.section_4_1(ts.LogLinear(np.eye(3)), seeds=(0,))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stories.accuracy_variance_grid(num_accuracies=1), "`num_accuracies` must be"),
        (lambda: stories.accuracy_variance_grid(gamma_fraction=1.5), "`gamma_fraction` must be"),
        (lambda: stories.counterexample_instance(0, 1), "`num_outputs` must be"),
        (lambda: stories.teacher_student(num_models=1), "`num_models` must be"),
        (lambda: stories.teacher_student(horizon=-1.0), "`horizon` must be"),
        (lambda: stories.section_4_1(seeds=()), "`seeds` must name"),
        (lambda: stories.section_4_1(seeds=(0.5,)), "`seeds` must be an integer"),
        (lambda: stories.section_4_1(pairs_per_prompt=0), "`pairs_per_prompt` must be"),
        (lambda: stories.section_4_1(rloo_steps=0), "`rloo_steps` must be"),
        (lambda: stories.sequence_teachers(horizon=0.0), "`horizon` must be"),
        (lambda: stories.top_sequences(ts.Autoregressive(2, 2), np.full(4, 0.25), {}, k=0), "`k`"),
        (lambda: stories.theorem_5_story((0.5,)), r"`horizons` must be in \[1, 1e\+12\]"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_top_sequences_decode_and_sort():
    policy = ts.Autoregressive(2, 3)
    probs = np.arange(1.0, 9.0) / 36.0
    rows = stories.top_sequences(policy, probs, {"r": np.arange(8.0)}, k=3)
    assert [r["sequence"] for r in rows] == ["1 1 1", "1 1 0", "1 0 1"]
    assert [r["r"] for r in rows] == [7.0, 6.0, 5.0]


def test_sequence_teachers_flat_model_moves_less():
    seq = stories.sequence_teachers(2, 3, horizon=10.0)
    assert seq.accuracy["accurate, flat"] == 1.0 and seq.accuracy["noisy"] < 1.0
    gain = {n: f.expected_gt[-1] - f.expected_gt[0] for n, f in seq.flows.items()}
    assert gain["noisy"] > gain["accurate, flat"] > 0


def test_markdown_table():
    text = markdown_table(
        [{"a": 1.23456, "b": math.nan, "c": "x"}, {"a": math.inf, "b": 2, "c": "y"}], digits=3
    )
    assert text.splitlines() == [
        "| a | b | c |",
        "|---|---|---|",
        "| 1.23 | – | x |",
        "| inf | 2 | y |",
    ]
    with pytest.raises(ValueError, match="empty"):
        markdown_table([])


def _interrupted_reproduce(tmp_path, capsys, monkeypatch):
    """reproduce --quick stopped by Ctrl-C in its second section (the flat landscape)."""
    real = stories.flat_landscape

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stories, "flat_landscape", interrupt)
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path)]) == 130
    monkeypatch.setattr(stories, "flat_landscape", real)
    return [line for line in capsys.readouterr().err.splitlines() if line]


def test_ctrl_c_in_reproduce_keeps_the_finished_sections(tmp_path, capsys, monkeypatch):
    err = _interrupted_reproduce(tmp_path, capsys, monkeypatch)
    assert err[-1] == (
        f"theory-sim reproduce: interrupted; the sections finished so far are kept in {tmp_path}; "
        "run the same command again to resume"
    )
    assert all(line.startswith("reproduce: ") for line in err[:-1])  # progress, no traceback
    assert (tmp_path / "quickstart.png").stat().st_size > 0
    manifest = json.loads((tmp_path / ".reproduce.json").read_text())
    assert list(manifest["sections"]) == ["quickstart"]
    assert manifest["sections"]["quickstart"]["files"] == {
        "quickstart.png": hashlib.sha256((tmp_path / "quickstart.png").read_bytes()).hexdigest()
    }


def test_a_figure_that_fails_on_the_figure_process_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(figures_module, "num_workers", lambda: 2)  # the child, even on one core
    with pytest.raises(RuntimeError, match=r"figure 'broken' was not written:(.|\n)*Error"):
        with Figures(tmp_path) as figures:
            assert figures.child is not None  # drawn on a process of their own
            assert figures("plot_snr_study", [{"not": "a study"}], "broken") == [
                "broken.png",
                "broken.pdf",
            ]
    with pytest.raises(KeyboardInterrupt):  # an error already on its way is not replaced
        with Figures(tmp_path) as figures:
            figures("plot_snr_study", [{"not": "a study"}], "broken")
            raise KeyboardInterrupt
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("formats", [("png", "pdf"), ("png",)])
def test_the_figure_process_writes_the_formats_asked_for(tmp_path, monkeypatch, formats):
    monkeypatch.setattr(figures_module, "num_workers", lambda: 2)  # the child, even on one core
    traj = ts.gradient_flow(ts.Problem(np.zeros(2), np.array([1.0, -1.0])), 1.0)
    with Figures(tmp_path, formats) as figures:
        names = figures("plot_reward_curves", traj, "curves")
    assert names == [f"curves.{suffix}" for suffix in formats]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert all((tmp_path / name).stat().st_size > 1000 for name in names)


@pytest.mark.slow
def test_reproduce_quick_resumes_and_writes_every_artefact(tmp_path, capsys, monkeypatch):
    _interrupted_reproduce(tmp_path, capsys, monkeypatch)
    kept = (tmp_path / "quickstart.png").stat().st_mtime_ns
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "resuming: 1 finished section(s) kept (quickstart)" in err
    assert (tmp_path / "quickstart.png").stat().st_mtime_ns == kept  # not computed again
    report = (tmp_path / "report.md").read_text()
    linked = [line.split("(")[-1].rstrip(")") for line in report.splitlines() if "](" in line]
    assert len(linked) == 38  # 19 figures and 19 tables
    for name in linked:
        assert (tmp_path / name).stat().st_size > 0, name
    assert not list(tmp_path.glob("*.pdf"))  # quick writes PNG only
    for number in range(1, 12):  # every notebook
        assert f"`notebooks/{number:02d}_" in report
    # a damaged file is computed again; other sizes start over
    (tmp_path / "tightness.csv").write_text("edited")
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "section tightness: a file is missing or changed; computing it again" in err
    assert "resuming: 11 finished section(s) kept" in err
    assert (tmp_path / "tightness.csv").read_text() != "edited"


def test_reproduce_starts_over_with_other_sizes_or_code(tmp_path):
    from theory_sim.report import _kept_sections

    said = []
    (tmp_path / "a.csv").write_text("1")
    digest = hashlib.sha256(b"1").hexdigest()
    entry = {"files": {"a.csv": digest}, "text": ""}
    run = {"quick": True, "code": "abc"}
    (tmp_path / ".reproduce.json").write_text(json.dumps({"run": run, "sections": {"s": entry}}))
    assert _kept_sections(tmp_path, run, said.append) == {"s": entry}
    assert _kept_sections(tmp_path, {**run, "quick": False}, said.append) == {}
    assert _kept_sections(tmp_path, {**run, "code": "def"}, said.append) == {}
    (tmp_path / ".reproduce.json").write_text("{")
    assert _kept_sections(tmp_path, run, said.append) == {}
    assert said == [
        "resuming: 1 finished section(s) kept (s)",
        f"{tmp_path} holds a run with other sizes: starting over",
        f"{tmp_path} holds a run with another version of theory_sim: starting over",
        f"{tmp_path / '.reproduce.json'} is damaged: starting over",
    ]


def test_section_4_1_combined_measures_hand_computed():
    from theory_sim.stories.section41 import _measure

    rows = {
        "a": {"variance": 1.0, "on-policy accuracy": 0.5, "off-policy accuracy": 0.7},
        "b": {"variance": 3.0, "on-policy accuracy": 0.9, "off-policy accuracy": 0.5},
    }
    names = ["a", "b"]
    combined = _measure(rows, names, "on- and off-policy accuracy")
    np.testing.assert_allclose(combined, [0.6, 0.7])
    # z-scores across two models are -1 and +1; variance (1, 3) and accuracy (0.6, 0.7) agree
    np.testing.assert_allclose(_measure(rows, names, "variance and accuracy"), [-1.0, 1.0])
    rows["b"]["on-policy accuracy"] = 0.3  # now accuracy (0.6, 0.4) opposes variance
    np.testing.assert_allclose(_measure(rows, names, "variance and accuracy"), [0.0, 0.0])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 12).flatmap(
        lambda n: st.tuples(*(st.lists(st.integers(-3, 3), min_size=n, max_size=n),) * 2)
    )
)
def test_correlations_are_scipys(pair):
    # small integers: ties are common, which is where rank correlations differ in their details
    # (average ranks for Spearman, tau-b rather than tau-a for Kendall)
    x, y = (np.array(v, np.float64) for v in pair)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input, and gives nan
        expected = (
            scipy_stats.pearsonr(x, y).statistic,
            scipy_stats.spearmanr(x, y).statistic,
            scipy_stats.kendalltau(x, y).statistic,
        )
    found = (
        stories._common._pearson(x, y),
        stories._common._spearman(x, y),
        stories._common._kendall(x, y),
    )
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)
    x[0] = np.nan  # nan in, nan out, as in scipy
    assert np.isnan(
        [
            stories._common._pearson(x, y),
            stories._common._spearman(x, y),
            stories._common._kendall(x, y),
        ]
    ).all()
