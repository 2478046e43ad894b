import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import jax
import numpy as np
import pytest

from theory_sim import (
    accuracy,
    cli,
    gradient_flow,
    on_policy_accuracy,
    reward_variance,
    time_to_gain,
)
from theory_sim.sweep import (
    build_cell,
    load_config,
    load_results,
    parse_config,
    run_sweep,
)
from theory_sim.sweep.cells import _cell_draws, _initial_probs
from theory_sim.sweep.storage import _read_csv

SMALL = """\
chunk_size = 4

[problem]
prompts = 2
outputs = 5
gamma = 0.3
horizons = [0.5, 5.0]
t_max = 1e5

[grid]
seeds = [0, 1]
kl_coef = [0.0, 0.1]

[[policy]]
family = "random"
logit_std = 1.5

[[policy]]
name = "rare"
family = "rare_best"
mass = 0.01

[[reward_model]]
family = "ground_truth"

[[reward_model]]
family = "scaled"
factor = 0.05

[[reward_model]]
name = "bt"
family = "bradley_terry"
on_policy = 0.5
pairs = 60
normalize = true
"""
NUM_CELLS = 2 * 3 * 2 * 2


def assert_rows_close(rows, expected):
    """Equal labels; numbers equal to 1e-12: the same per-cell computation, in other batches."""
    assert len(rows) == len(expected)
    for a, b in zip(rows, expected, strict=True):
        for key, value in a.items():
            if isinstance(value, float) and math.isfinite(value):
                assert value == pytest.approx(b[key], rel=1e-12, abs=1e-15), key
            else:
                assert value == b[key], key


@pytest.fixture(scope="module")
def config():
    return parse_config(SMALL)


@pytest.fixture(scope="module")
def complete(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("complete")
    return out, run_sweep(config, out)


def test_results_are_tidy_and_match_independent_solves(config, complete):
    out, rows = complete
    assert len(rows) == NUM_CELLS * 2
    assert load_results(out) == rows
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["cells"] == NUM_CELLS and meta["seeds"] == [0, 1] and "jax" in meta["versions"]
    # every cell of a seed faces the same ground truth
    first = [
        build_cell(config, c)[0].reward_gt for c in range(NUM_CELLS) if rows[2 * c]["seed"] == 0
    ]
    assert all(np.array_equal(first[0], g) for g in first)
    for cell in (0, 5, NUM_CELLS - 1):
        problem, base = build_cell(config, cell)
        sel = [r for r in rows if r["cell"] == cell]
        assert all(r["solver_ok"] for r in sel)
        # the batched measures at pi_0 against the public metric functions
        pi0 = np.exp(np.asarray(problem.ref_log_probs))
        r_rm, r_gt = np.asarray(problem.reward_rm), np.asarray(problem.reward_gt)
        expected = {
            "var_rm": np.mean(reward_variance(pi0, r_rm)),
            "var_gt": np.mean(reward_variance(pi0, r_gt)),
            "accuracy": np.mean(accuracy(r_rm, r_gt)),
            "accuracy_on_policy": np.mean(on_policy_accuracy(pi0, r_rm, r_gt)),
        }
        for key, value in expected.items():
            assert sel[0][key] == pytest.approx(float(value), rel=1e-12, abs=1e-15), key
        # t_gamma by the one-problem solver (same rtol, so agreement is far below 1e-9)
        t = time_to_gain(problem, base["gamma"], t_max=config.t_max)
        assert sel[0]["t_gamma"] == pytest.approx(t, rel=1e-9) or t == sel[0]["t_gamma"]
        traj = gradient_flow(problem, max(config.horizons), save_ts=[0.0, *config.horizons])
        gains = (traj.expected_gt - traj.expected_gt[0]).mean(axis=-1)[1:]
        np.testing.assert_allclose([r["gain_gt"] for r in sel], gains, rtol=1e-8, atol=1e-12)


def test_seeds_change_the_numbers_and_repeat_them(config):
    a = build_cell(config, 0)[1]
    b = build_cell(config, 0)[1]
    c = build_cell(config, 1)[1]  # next seed, same families
    assert a == b
    assert a["seed"] != c["seed"] and a["gamma"] != c["gamma"]


def test_interrupted_sweep_resumes_without_recomputing(config, complete, tmp_path):
    class Stop(Exception):
        pass

    calls = []

    def stop_after_two_chunks(done, total):
        calls.append(done)
        if done >= 8:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(config, tmp_path, progress=stop_after_two_chunks, workers=2)
    assert not (tmp_path / "results.csv").exists()
    # two chunks reported (results come back in order, so the other thread may have saved later
    # chunks meanwhile); a chunk it had started is finished and kept before the error reaches
    # the caller: whole chunks are saved, and no worker thread runs on to change them
    saved = len({r["cell"] for r in load_results(tmp_path)})
    assert 8 <= saved <= NUM_CELLS and saved % 4 == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("theory_sim")]
    (tmp_path / "parts" / "part-999999.csv.tmp").write_text("cell,polic")  # a torn write
    resumed = []
    rows = run_sweep(config, tmp_path, progress=lambda d, n: resumed.append(d))
    assert resumed[0] == saved and resumed[-1] == NUM_CELLS  # started from the saved cells
    assert rows == complete[1]
    again = []
    assert run_sweep(config, tmp_path, progress=lambda d, n: again.append(d)) == rows
    assert again == [NUM_CELLS]


def test_a_directory_of_another_config_is_refused(config, complete):
    other = parse_config(SMALL.replace("seeds = [0, 1]", "seeds = [0, 2]"))
    with pytest.raises(ValueError, match="different config"):
        run_sweep(other, complete[0])


def test_process_split_covers_every_cell_once(config, complete, tmp_path):
    for index in (0, 1):
        run_sweep(config, tmp_path, process_index=index, process_count=2)
    assert load_results(tmp_path) == complete[1]
    with pytest.raises(ValueError, match="process_index"):
        run_sweep(config, tmp_path, process_index=2, process_count=2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("outputs = 5", "outputs = 1"), r"line 5: `outputs` must be >= 2"),
        (("kl_coef = [0.0, 0.1]", "kl_coef = [0.0, -0.1]"), r"line 12: `kl_coef` must be >= 0"),
        (("logit_std = 1.5", "logit_sd = 1.5"), r"line 16: unknown key `logit_sd`"),
        (("mass = 0.01", "mass = 0.0"), r"line 21: `mass` must be > 0.0 and <= 1.0"),
        (('family = "scaled"', 'family = "scaledd"'), r"line 27: `family` must be one of"),
        (("pairs = 60", "pairs = 6.5"), r"line 34: `pairs` must be an integer"),
        (("normalize = true", 'normalize = "yes"'), r"line 35: `normalize` must be true or"),
        (("horizons = [0.5, 5.0]", "horizons = [0.5, 5.0"), r"not valid TOML.*line 8"),
        (("[grid]", "[grids]"), r"line 10: unknown key `grids`"),
        (("t_max = 1e5", "t_max = 1.0"), r"line 7: `horizons` must be at most t_max = 1"),
        (("seeds = [0, 1]", "seeds = [0, 1, 0]"), r"line 11: `seeds` must not repeat"),
        (("kl_coef = [0.0, 0.1]", "kl_coef = [0.1, 0.1]"), r"line 12: `kl_coef` must not repeat"),
        (("outputs = 5", "outputs = 10000000000"), r"line 5: a chunk of 4 cells .* too large"),
        (("outputs = 5", "outputs = 30000000"), r"line 5: a chunk of 4 cells .* too large"),
        (('name = "bt"', 'name = "rare"'), None),  # names are per table: allowed
        (('name = "rare"', ""), None),
    ],
)
def test_config_errors_name_the_key_and_line(edit, message):
    text = SMALL.replace(*edit)
    if message is None:
        parse_config(text)
        return
    with pytest.raises(ValueError, match=message):
        parse_config(text, "sweep.toml")


def test_missing_file_and_duplicate_names():
    with pytest.raises(ValueError, match="does not exist"):
        load_config("no/such/file.toml")
    twice = SMALL + '\n[[reward_model]]\nname = "bt"\nfamily = "noisy"\n'
    with pytest.raises(ValueError, match=r"line 37: two \[\[reward_model\]\] tables share"):
        parse_config(twice)


def test_sharded_over_two_devices_gives_the_same_numbers(config, complete, tmp_path):
    """Two forced host devices: the batch is split across them and the numbers do not change."""
    script = (
        "import jax, theory_sim, json, sys\n"
        "from theory_sim.cache import enable_compilation_cache\n"
        "enable_compilation_cache()  # the tests' cache, as every other process of the suite\n"
        "from theory_sim.sweep import parse_config, run_sweep\n"
        "assert len(jax.local_devices()) == 2, jax.local_devices()\n"
        f"rows = run_sweep(parse_config({SMALL!r}), sys.argv[1])\n"
        "print(json.dumps(len(rows)))\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert len(meta["devices"]) == 2
    assert_rows_close(load_results(tmp_path), complete[1])


def test_one_thread_or_one_per_core_give_the_same_numbers(config, complete, tmp_path):
    """Chunks solved on several threads at once (the default) or one after another: the same
    rows; a worker count below 1 is refused before anything is written."""
    small_chunks = dataclasses.replace(config, chunk_size=4)  # 6 chunks for the threads
    assert_rows_close(run_sweep(small_chunks, tmp_path / "threads"), complete[1])
    assert_rows_close(run_sweep(small_chunks, tmp_path / "one", workers=1), complete[1])
    with pytest.raises(ValueError, match="`workers`"):
        run_sweep(config, tmp_path / "none", workers=0)
    assert not (tmp_path / "none").exists()


def test_cli_sweep_and_plot(tmp_path, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text(SMALL.replace("seeds = [0, 1]", "seeds = [3]"))
    out = tmp_path / "run"
    assert cli.main(["sweep", str(config), "--out", str(out)]) == 0
    assert f"{NUM_CELLS // 2} of {NUM_CELLS // 2} cells" in capsys.readouterr().out
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "sweep.png").stat().st_size > 10_000
    assert (tmp_path / "fig" / "sweep.pdf").is_file()
    config.write_text(SMALL.replace("gamma = 0.3", "gamma = 3"))
    with pytest.raises(SystemExit) as stop:
        cli.main(["sweep", str(config), "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2
    assert "line 6: `gamma` must be > 0.0 and <= 1.0" in capsys.readouterr().err


def test_ctrl_c_keeps_the_saved_cells_and_a_rerun_resumes(tmp_path, capsys, monkeypatch):
    config = tmp_path / "sweep.toml"
    config.write_text(SMALL)  # 6 chunks: after the first, at most one more per thread is saved
    out = tmp_path / "run"

    def interrupting(description):
        def update(done, total):
            if done > 0:  # after the first chunk is saved
                raise KeyboardInterrupt

        return update

    monkeypatch.setattr(cli, "_bar", interrupting)
    assert cli.main(["sweep", str(config), "--out", str(out)]) == 130
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert err == [
        f"theory-sim sweep: interrupted; the cells already saved in {out / 'parts'} are kept; "
        "run the same command again to resume"
    ]
    saved = {r["cell"] for p in (out / "parts").glob("*.csv") for r in _read_csv(p)}
    assert 0 < len(saved) < NUM_CELLS
    monkeypatch.undo()
    assert cli.main(["sweep", str(config), "--out", str(out)]) == 0
    assert f"{NUM_CELLS} of {NUM_CELLS} cells" in capsys.readouterr().out


def test_plot_and_load_refuse_bad_input(complete, tmp_path):
    from theory_sim.plotting import plot_sweep

    with pytest.raises(ValueError, match="`rows` is empty"):
        plot_sweep([])
    with pytest.raises(ValueError, match="`horizon` must be one of"):
        plot_sweep(complete[1], horizon=7.0)
    with pytest.raises(ValueError, match="`results` must be a sweep directory"):
        load_results(tmp_path)


def test_example_config_parses():
    example = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"
    config = load_config(example)
    assert config.num_cells == 3 * 6 * 2 * 4
    # cell indices run over (policy, reward model, kl_coef, seed) in C order
    assert config.cell(0) == (0, 0, 0.0, 0)
    assert config.cell(config.num_cells - 1) == (2, 5, 0.05, 3)
    assert config.cell(9) == (0, 1, 0.0, 1)
    with pytest.raises(ValueError, match="`cell` must be in"):
        config.cell(config.num_cells)


def test_two_processes_with_jax_distributed_split_the_cells(config, tmp_path):
    """The README's multi-host recipe, on one machine: two processes joined by
    jax.distributed each run their half of the cells into one directory."""
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "sweep.toml"
    # Without the Bradley-Terry model (run in process by the other tests): process 1 compiles
    # every program on every run (its device's global id is 1, which is in each program's cache
    # key, and JAX writes the persistent cache only from process 0), and the fits' programs
    # were 10 s of its 22 s.
    text = SMALL.replace("seeds = [0, 1]", "seeds = [4]")
    path.write_text(text[: text.index('[[reward_model]]\nname = "bt"')])
    out = tmp_path / "run"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "theory_sim.cli", "sweep", str(path), "--out", str(out),
             "--distributed", "--coordinator", f"localhost:{port}", "--num-processes", "2",
             "--process-id", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    parities = [{r["cell"] % 2 for r in _read_csv(p)} for p in (out / "parts").glob("*.csv")]
    assert all(len(p) == 1 for p in parities) and {0, 1} == set().union(*parities)
    # a rerun assembles results.csv if neither process saw the other's last part
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 0
    assert (out / "results.csv").is_file()
    assert_rows_close(
        load_results(out), run_sweep(parse_config(path.read_text()), tmp_path / "one")
    )


def test_example_with_long_horizons_and_kl_has_numbers_in_every_column(tmp_path):
    # Horizons up to 1e9 with lambda > 0: cells converge (certificate) or have stiff tails that the
    # per-cell implicit continuation integrates; none may end as NaN.
    example = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"
    text = example.read_text()
    text = text.replace("horizons = [1.0, 10.0, 100.0]", "horizons = [1.0, 1e3, 1e6, 1e9]")
    text = text.replace("t_max = 1e6", "t_max = 1e9")
    text = text.replace("seeds = [0, 1, 2, 3]", "seeds = [0]")
    text = text.replace("kl_coef = [0.0, 0.05]", "kl_coef = [0.05, 0.2]")
    # the example's policies and its first three reward models (Bradley-Terry fits add only time)
    text = text[: text.index('[[reward_model]]\nname = "acc 0.7')]
    config = parse_config(text)
    rows = run_sweep(config, tmp_path)
    assert len(rows) == config.num_cells * 4
    for row in rows:
        assert row["solver_ok"], row
        for key, value in row.items():
            if isinstance(value, float):
                assert not math.isnan(value), (key, row)
                # only t_gamma may be infinite (target not reached by t_max)
                assert key == "t_gamma" or math.isfinite(value), (key, row)


def _copy_parts(source: Path, target: Path) -> None:
    (target / "parts").mkdir(parents=True)
    (target / "metadata.json").write_bytes((source / "metadata.json").read_bytes())
    for path in (source / "parts").iterdir():
        (target / "parts" / path.name).write_bytes(path.read_bytes())


def test_damaged_parts_are_recomputed_and_said_so(config, complete, tmp_path):
    _copy_parts(complete[0], tmp_path)
    parts = sorted((tmp_path / "parts").glob("part-*.csv"))
    assert len(parts) == NUM_CELLS // config.chunk_size and all(
        p.with_suffix(".sum").is_file() for p in parts
    )
    # truncated at a row boundary: still valid CSV, so only the checksum can tell
    lines = parts[0].read_text().splitlines(keepends=True)
    parts[0].write_text("".join(lines[:-2]))
    parts[1].with_suffix(".sum").unlink()  # written, its checksum never was
    parts[2].with_suffix(".sum").write_text("{not json")
    notices = []
    with pytest.warns(RuntimeWarning) as warned:
        assert len(load_results(tmp_path)) == NUM_CELLS * 2 - 3 * 2 * config.chunk_size
    assert len(warned) == 3 and all("skipped" in str(w.message) for w in warned)
    rows = run_sweep(config, tmp_path, notice=notices.append)
    assert rows == complete[1]
    assert len(notices) == 3 and all("recomputing its cells" in n for n in notices)
    assert "does not match its checksum" in notices[0] and str(parts[0]) in notices[0]
    assert "has no checksum" in notices[1] and "damaged checksum" in notices[2]
    again = []
    run_sweep(config, tmp_path, notice=again.append)
    assert not again  # the recomputed parts carry valid checksums


def _first_cell_stops(monkeypatch):
    """Make the batched t_gamma solve of each group's first cell stop early, so that the cell is
    solved again on its own; the groups are taken in grid order (not by estimated t_gamma)."""
    from theory_sim import sweep

    run = sweep.schedule._run_gains

    def first_fails(*args, **kwargs):
        times, ok = run(*args, **kwargs)
        return times, ok.at[0].set(False)

    monkeypatch.setattr(sweep.schedule, "_run_gains", first_fails)
    in_grid_order = lambda built, t_max: np.arange(len(built))  # noqa: E731
    monkeypatch.setattr(sweep.schedule, "_hardest_first", in_grid_order)


def test_infeasible_and_failed_cells_are_recorded_and_reported(tmp_path, capsys, monkeypatch):
    from theory_sim import sweep

    config = tmp_path / "sweep.toml"
    config.write_text(SMALL.replace("seeds = [0, 1]", "seeds = [3]"))
    build = sweep.run._cell

    def build_or_refuse(cfg, cell):
        if cell == 2:
            raise ValueError("`variance` must be below 0.197607; got 0.2.")
        return build(cfg, cell)

    def stopped(*args, **kwargs):
        raise RuntimeError("stopped")

    monkeypatch.setattr(sweep.run, "_cell", build_or_refuse)
    _first_cell_stops(monkeypatch)
    monkeypatch.setattr(sweep.run, "time_to_gain", stopped)
    out = tmp_path / "run"
    assert cli.main(["sweep", str(config), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 cell(s) infeasible for their seed" in err and "cell 2 (infeasible: [[reward" in err
    assert "cell(s) whose solve failed" in err and "exit code 1 (--keep-going: 0)" in err
    rows = load_results(out)
    assert len(rows) == NUM_CELLS // 2 * 2
    refused = [r for r in rows if r["cell"] == 2]
    assert all(r["status"].startswith("infeasible: [[reward_model]] 2 (") for r in refused)
    assert all("seed 3: `variance` must be below" in r["status"] for r in refused)
    assert all(math.isnan(r["var_rm"]) and math.isnan(r["gain_gt"]) for r in refused)
    failed = {r["cell"] for r in rows if r["status"] == "solver failed"}
    assert failed == {0, 4, 8}  # the first cell of each chunk of four (cell 2 never ran)
    assert all(math.isnan(r["t_gamma"]) for r in rows if r["cell"] in failed)
    assert all(r["status"] == "ok" for r in rows if r["cell"] not in failed | {2})
    assert cli.main(["sweep", str(config), "--out", str(out), "--keep-going"]) == 0


def test_a_cell_refused_when_solved_on_its_own_is_failed_with_the_reason(tmp_path, monkeypatch):
    # A cell whose batched solve stopped is solved again by time_to_gain, which refuses a gain
    # below float64's resolution with a ValueError: the sweep goes on and the row says why.
    from theory_sim import sweep

    config = sweep.parse_config(SMALL.replace("seeds = [0, 1]", "seeds = [3]"))

    def refused(*args, **kwargs):
        raise ValueError("`gamma` = 1e-20 is below what float64 resolves here:\n ...")

    _first_cell_stops(monkeypatch)
    monkeypatch.setattr(sweep.run, "time_to_gain", refused)
    rows = sweep.run_cells(config, [0, 1])
    assert {r["status"] for r in rows if r["cell"] == 0} == {
        "solver failed: `gamma` = 1e-20 is below what float64 resolves here: ..."
    }
    assert all(math.isnan(r["t_gamma"]) for r in rows if r["cell"] == 0)
    assert {r["status"] for r in rows if r["cell"] == 1} == {"ok"}


def test_filesystem_errors_are_one_line_and_bad_configs_create_nothing(tmp_path, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text(SMALL.replace("seeds = [0, 1]", "seeds = [3]"))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as stop:
        cli.main(["sweep", str(config), "--out", str(blocker / "run")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("theory-sim sweep: error: Not a directory")
    assert str(blocker / "run") in err[0]
    config.write_text(SMALL.replace("t_max = 1e5", "t_max = -1"))
    with pytest.raises(SystemExit):
        cli.main(["sweep", str(config), "--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()


def test_a_grid_estimated_beyond_an_hour_asks_for_yes(tmp_path, capsys):
    seeds = ", ".join(str(s) for s in range(200))
    big = SMALL.replace("seeds = [0, 1]", f"seeds = [{seeds}]").replace(
        "outputs = 5", "outputs = 4000"
    )
    config = tmp_path / "big.toml"
    config.write_text(big)
    assert parse_config(big).estimated_seconds() > 3600  # 2400 cells x 2 prompts x 4000 outputs
    with pytest.raises(SystemExit) as stop:
        cli.main(["sweep", str(config), "--out", str(tmp_path / "run")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "estimated at about" in err and "pass --yes" in err
    assert not (tmp_path / "run").exists()
    assert parse_config(SMALL).estimated_seconds() < 1.0  # the tests' grid asks nothing


def test_a_damaged_metadata_file_is_refused_in_one_line(config, tmp_path, capsys):
    (tmp_path / "metadata.json").write_text('{"config_digest": "abc", trunc')
    with pytest.raises(ValueError, match=r"damaged metadata\.json"):
        run_sweep(config, tmp_path)
    assert not (tmp_path / "parts").exists()


def test_group_size_changes_no_number(monkeypatch):
    """run_cells solves its cells in vmapped groups of GROUP_SIZE on one thread per core; every
    cell's solve is its own, so groups of 2 (on threads) and one group of all the cells give
    the same rows to 1e-9, the accuracy t_gamma is solved to (batches of other sizes compile to
    other fused loops, whose results differ by round-off)."""
    from theory_sim import sweep

    config = parse_config(SMALL)
    cells = list(range(NUM_CELLS))
    monkeypatch.setattr(sweep.schedule, "GROUP_SIZE", 2)
    monkeypatch.setattr(sweep.schedule, "PATH_GROUP_SIZE", 2)
    small = sweep.run_cells(config, cells)
    monkeypatch.setattr(sweep.schedule, "GROUP_SIZE", NUM_CELLS)
    monkeypatch.setattr(sweep.schedule, "PATH_GROUP_SIZE", NUM_CELLS)
    whole = sweep.run_cells(config, cells)
    assert [r["cell"] for r in small] == [r["cell"] for r in whole]
    for a, b in zip(small, whole, strict=True):
        for key in ("t_gamma", "gain_rm", "gain_gt", "var_rm", "accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-300, nan_ok=True), key


def test_tables_drawn_in_blocks_have_the_bits_of_one_cell_at_a_time(monkeypatch):
    """run_cells draws its cells' random numbers in blocks of seeds (sweep.cells._prefetch): every
    table (pi_0 of the random and rare_best families, r_G, the Bradley-Terry fit from the reward
    model's key, the problem's log pi_0) is bit for bit the table drawn for its cell alone, also
    across a padded last block."""
    from theory_sim import sweep

    monkeypatch.setattr(sweep.cells, "_DRAW_BLOCK", 3)  # seeds 0-4: a full block and a padded one
    config = parse_config(SMALL.replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3, 4]"))
    cells = list(range(config.num_cells))

    def tables():
        keys = [config.cell(c) for c in cells]  # (p_index, r_index, kl_coef, seed)
        return [sweep.cells._tables(config, p, r, seed) for p, r, _, seed in keys]

    sweep.cells._tables.cache_clear()
    alone = tables()
    sweep.cells._tables.cache_clear()
    keys = sweep.cells._prefetch(config, cells)
    assert len(keys) == len(set(keys)) == 2 * 3 * 5
    drawn = tables()
    assert not sweep.cells._prefetched  # every prefetched draw was taken
    sweep.cells._tables.cache_clear()
    for (p_a, gt_a, probs_a), (p_b, gt_b, probs_b) in zip(alone, drawn, strict=True):
        leaves = zip(jax.tree.leaves(p_a), jax.tree.leaves(p_b), strict=True)
        for a, b in [(gt_a, gt_b), (probs_a, probs_b), *leaves]:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(("d0", "d1"), [(-15.5, 2.0), (-5.0, 0.0), (-2.0, 3.0), (-10.0, -3.0)])
def test_estimated_t_gamma_is_within_a_factor_two_of_the_closed_form(d0, d1):
    """run_cells groups cells by sweep.schedule._estimated_times, a coarse flow in log-time: on two
    outputs with rewards (1, -1) it lands within a factor 2 of the closed form
    t = ((d1 + sinh d1) - (d0 + sinh d0)) / 2 from logit gap d0 to d1 (theory.md section 2),
    including a late take-over (d0 = -15.5: pi_0(best) = 2e-7, t ~ 1.3e6) that fixed steps in
    log-time jump over."""
    from theory_sim import Problem, sweep

    t_star = ((d1 + math.sinh(d1)) - (d0 + math.sinh(d0))) / 2.0
    gamma = 2.0 * (1 / (1 + math.exp(-d1)) - 1 / (1 + math.exp(-d0)))
    problem = Problem(np.array([d0, 0.0]), np.array([1.0, -1.0]), np.array([1.0, -1.0]))
    (estimate,) = sweep.schedule._estimated_times([(problem, 0.0, {"gamma": gamma})], 1e12)
    assert 0.5 < estimate / t_star < 2.0, (estimate, t_star)
    # a target beyond the reach of t_max is estimated at inf
    (estimate,) = sweep.schedule._estimated_times([(problem, 0.0, {"gamma": gamma})], t_star / 10)
    assert estimate == math.inf


def test_cells_are_grouped_by_estimated_t_gamma(config):
    """The cells' order for grouping puts the slowest estimated first, and the estimates follow
    the solved t_gamma: Spearman above 0.8 on the SMALL grid's 24 cells."""
    from theory_sim import sweep

    cells = list(range(NUM_CELLS))
    built = [sweep.run._cell(config, c) for c in cells]
    estimates = sweep.schedule._estimated_times(built, config.t_max)
    order = sweep.schedule._hardest_first(built, config.t_max)
    assert sorted(order) == cells
    ranked = np.nan_to_num(estimates[order], posinf=1e300)
    assert np.all(np.diff(ranked) <= 0)
    rows = sweep.run_cells(config, cells)[:: len(config.horizons)]
    solved = np.nan_to_num([r["t_gamma"] for r in rows], posinf=1e300)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731 (no ties here)
    assert np.corrcoef(rank(np.nan_to_num(estimates, posinf=1e300)), rank(solved))[0, 1] > 0.8


NEURAL = """\
[problem]
policy = "{policy}"
{size}
width = 4
depth = 1
gamma = 0.25
horizons = [1.0, 50.0]
t_max = 1e5

[grid]
seeds = [0, 1]
kl_coef = [0.0, 0.05]

[[policy]]
family = "init"

[[policy]]
family = "random"
logit_std = 0.5

[[reward_model]]
family = "scaled"
factor = 0.1
"""


@pytest.mark.parametrize(
    ("policy", "size"),
    [("transformer", "vocab = 2\nlength = 2\nheads = 1"), ("mlp", "outputs = 4")],
)
def test_neural_policies_as_a_sweep_family(policy, size, tmp_path):
    config = parse_config(NEURAL.format(policy=policy, size=size))
    rows = run_sweep(config, tmp_path)
    assert len(rows) == 8 * 2 and all(r["solver_ok"] and r["status"] == "ok" for r in rows)
    # a cell's network comes from its seed: seeds differ, repeats agree
    a, b = build_cell(config, 0)[0], build_cell(config, 1)[0]
    assert not np.allclose(a.params0, b.params0)
    np.testing.assert_array_equal(build_cell(config, 0)[0].params0, a.params0)
    for cell in (0, 7):  # pi_0 = the initialisation; pi_0 fitted to a random table, kl = 0.05
        problem, base = build_cell(config, cell)
        sel = [r for r in rows if r["cell"] == cell]
        pi0 = np.exp(np.asarray(problem.ref_log_probs))
        assert sel[0]["var_rm"] == pytest.approx(np.mean(reward_variance(pi0, problem.reward_rm)))
        t = time_to_gain(problem, base["gamma"], t_max=config.t_max)
        assert math.isfinite(t) and sel[0]["t_gamma"] == pytest.approx(t, rel=1e-9)
        traj = gradient_flow(problem, max(config.horizons), save_ts=[0.0, *config.horizons])
        gains = (traj.expected_gt - traj.expected_gt[0]).mean(axis=-1)[1:]
        np.testing.assert_allclose([r["gain_gt"] for r in sel], gains, rtol=1e-8, atol=1e-12)
    # the random family is fitted: the network's pi_0 is its table to start_at's tolerance
    problem, base = build_cell(config, 4)
    r_gt, _, (normal, _) = _cell_draws(0, 1, 0, (1, problem.num_outputs))
    target = _initial_probs(config.policies[1], np.asarray(r_gt), np.asarray(normal))
    assert base["policy"] == "random logit_std=0.5"
    np.testing.assert_allclose(problem.ref_log_probs, np.log(target), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("width = 4", "width = 3\nheads = 2"), r"line 5: `width` \(3\) must be divisible"),
        (("width = 4", "widht = 4"), r"line 5: unknown key `widht`"),
        (("depth = 1", "depth = 0"), r"line 6: `depth` must be >= 1"),
    ],
)
def test_neural_config_errors_name_the_key_and_line(edit, message):
    text = NEURAL.format(policy="transformer", size="vocab = 2\nlength = 2").replace(*edit)
    with pytest.raises(ValueError, match=message):
        parse_config(text, "sweep.toml")
    tabular = SMALL.replace("[[policy]]", '[[policy]]\nfamily = "init"\n\n[[policy]]', 1)
    with pytest.raises(ValueError, match=r"family 'init' .* needs a neural policy"):
        parse_config(tabular, "sweep.toml")


def test_the_cell_programs_are_kept_traced_across_processes(tmp_path, monkeypatch):
    """run_cells's two vmapped programs (t_gamma and the path) are exported once (seconds of
    tracing, over ten for a transformer) and read back by a later process: here the process's
    own copies are dropped and the same cells give the same rows with no new export written."""
    from theory_sim import cache, sweep

    def drop():  # as a new process would start
        sweep.schedule._run_gains.clear_cache()
        sweep.schedule._run_paths.clear_cache()

    monkeypatch.setattr(cache, "_exports", tmp_path / "exports")
    config, cells = parse_config(SMALL), [0, 5]
    drop()
    try:
        first = sweep.run_cells(config, cells)
        files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "exports").glob("*")}
        for name in ("run_gains-", "run_paths-"):
            assert any(file.startswith(name) for file in files), sorted(files)
        drop()
        again = sweep.run_cells(config, cells)
        assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "exports").glob("*")} == files
        assert_rows_close(again, first)
    finally:
        drop()  # the exports above go with tmp_path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_parts_of_another_config_are_never_used(config, complete, tmp_path):
    """A finished sweep of kl_coef [0.0, 0.1] whose metadata.json was deleted, then a config
    asking for [0.0, 0.05] run into the same directory: refused, whether or not the record of the
    processes is there; the old parts stay as they were."""
    other = parse_config(SMALL.replace("kl_coef = [0.0, 0.1]", "kl_coef = [0.0, 0.05]"))
    assert other.digest() != config.digest()
    out = _copy(complete[0], tmp_path / "sweep")
    (out / "metadata.json").unlink()
    parts = {p.name: p.read_bytes() for p in (out / "parts").iterdir()}
    with pytest.raises(ValueError, match="ran a different config"):
        run_sweep(other, out)
    shutil.rmtree(out / "processes")
    with pytest.raises(ValueError, match="a part of a sweep of a different config"):
        run_sweep(other, out)
    assert {p.name: p.read_bytes() for p in (out / "parts").iterdir()} == parts


def test_two_hosts_with_different_configs_are_refused(config, tmp_path):
    """Process 0 of a two-process sweep runs one config; process 1, started on the same shared
    directory with another, refuses before computing anything, and results.csv never mixes them."""
    other = parse_config(SMALL.replace("kl_coef = [0.0, 0.1]", "kl_coef = [0.0, 0.05]"))
    run_sweep(config, tmp_path, process_index=0, process_count=2)
    before = sorted(p.name for p in (tmp_path / "parts").iterdir())
    with pytest.raises(ValueError, match="holds a sweep of a different config"):
        run_sweep(other, tmp_path, process_index=1, process_count=2)
    (tmp_path / "metadata.json").unlink()  # as if process 0 had not written it yet
    with pytest.raises(ValueError, match=r"process-0\.digest ran a different config"):
        run_sweep(other, tmp_path, process_index=1, process_count=2)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == before
    rows = run_sweep(config, tmp_path, process_index=1, process_count=2)  # the right config
    assert len(rows) == NUM_CELLS * 2 and {r["kl_coef"] for r in rows} == {0.0, 0.1}


@pytest.mark.parametrize("damage", ["truncated", "edited"])
def test_a_results_file_that_lies_is_not_trusted(complete, config, tmp_path, damage):
    """results.csv cut at a row boundary, or with one value changed: load_results (and so
    `theory-sim plot`) names it and reads the verified parts instead; run_sweep assembles it
    again from them."""
    out = _copy(complete[0], tmp_path / "sweep")
    final = out / "results.csv"
    lines = final.read_text().splitlines(keepends=True)
    if damage == "truncated":
        final.write_text("".join(lines[:-5]))
    else:
        final.write_text("".join(lines).replace(lines[3].split(",")[5], "0.123456", 1))
    notices = []
    assert load_results(out, notice=notices.append) == complete[1]
    assert len(notices) == 1 and str(final) in notices[0] and "checksum" in notices[0]
    with pytest.warns(RuntimeWarning, match="results.csv does not match its checksum"):
        load_results(out)
    assert run_sweep(config, out, notice=notices.append) == complete[1]
    assert "assembling it again" in notices[-1]
    assert load_results(out, notice=notices.append) == complete[1] and len(notices) == 2


def test_a_part_holding_other_cells_than_its_sum_names_is_not_used(complete, tmp_path):
    """Another part's bytes (with their own SHA-256 and row count) under a part's name: the
    digest of the cells the sum names does not match, so the part is reported and skipped."""
    out = _copy(complete[0], tmp_path / "sweep")
    (out / "results.csv").unlink()
    first, second = sorted((out / "parts").glob("part-*.csv"))[:2]
    forged = json.loads(first.with_suffix(".sum").read_text())
    other = json.loads(second.with_suffix(".sum").read_text())
    first.write_bytes(second.read_bytes())
    forged |= {"sha256": other["sha256"], "rows": other["rows"]}
    first.with_suffix(".sum").write_text(json.dumps(forged))
    notices = []
    rows = load_results(out, notice=notices.append)
    assert len(notices) == 1 and first.name in notices[0] and "other cells" in notices[0]
    assert len(rows) == len(complete[1]) - other["rows"]
