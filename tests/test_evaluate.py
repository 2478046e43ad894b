"""theory_sim.evaluate: score dumps read in every format, measures exact where the truth is known,
intervals that cover, the flow on the sampled support, the ranking it predicts, bad input."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from theory_sim import Problem, accuracy, on_policy_accuracy, reward_variance, time_to_gain
from theory_sim.evaluate import (
    Dump,
    evaluate,
    kendall_tau,
    load_dump,
    measure_dump,
    predict,
    validation,
    worlds,
    write_report,
)
from theory_sim.evaluate.dump import to_table
from theory_sim.evaluate.measures import _resampled_sums
from theory_sim.evaluate.teaching import teaching_time

# A dump written by hand: two models, gold scores, three prompts (3, 2 and 1 responses).
HAND = """prompt_id,response_id,gold,rm_a,rm_b,logprob
p1,r1,1.0,0.9,0.1,-0.5
p1,r2,0.0,0.2,0.1,-1.5
p1,r3,0.5,0.5,0.3,-2.0
p2,r1,0.0,0.1,0.8,-0.1
p2,r2,1.0,0.7,0.2,-2.5
p3,r1,1.0,0.3,0.3,-0.3
"""


def _hand_values():
    # p1: pairs (r1,r2), (r1,r3), (r2,r3); gold 1 > 0, 1 > 0.5, 0 < 0.5
    # rm_a 0.9 > 0.2, 0.9 > 0.5, 0.2 < 0.5: all agree -> 1; p2: 0.1 < 0.7 with 0 < 1 -> 1
    # rm_b p1: 0.1 = 0.1 (gold differs: wrong), 0.1 < 0.3 (gold 1 > 0.5: wrong), 0.1 < 0.3
    # (gold 0 < 0.5: right) -> 1/3; p2: 0.8 > 0.2 with 0 < 1: wrong -> 0
    acc = {"rm_a": (1.0 + 1.0) / 2, "rm_b": (1 / 3 + 0.0) / 2}
    # the "logprob" column is read as the policy's: the variance is exact under the
    # self-normalised weights on each prompt's responses, mean over p1 and p2
    w1, w2 = np.exp([-0.5, -1.5, -2.0]), np.exp([-0.1, -2.5])
    w1, w2 = w1 / w1.sum(), w2 / w2.sum()

    def var(w, s):
        return float(np.sum(w * (np.array(s) - np.dot(w, s)) ** 2))

    variance = {
        "rm_a": (var(w1, [0.9, 0.2, 0.5]) + var(w2, [0.1, 0.7])) / 2,
        "rm_b": (var(w1, [0.1, 0.1, 0.3]) + var(w2, [0.8, 0.2])) / 2,
    }
    return acc, variance


def _write(tmp_path, fmt):
    df = pd.read_csv(__import__("io").StringIO(HAND))
    path = tmp_path / f"dump.{fmt}"
    if fmt == "csv":
        path.write_text(HAND)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        df.to_json(path, orient="records")
    elif fmt == "parquet":
        df.to_parquet(path)
    elif fmt == "long.csv":
        ids = ["prompt_id", "response_id", "gold", "logprob"]
        long = df.melt(id_vars=ids, value_vars=["rm_a", "rm_b"], var_name="model",
                       value_name="score")  # fmt: skip
        long.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet", "long.csv"])
def test_every_format_gives_the_hand_computed_measures(tmp_path, fmt):
    dump = load_dump(_write(tmp_path, fmt))
    assert dump.models == ["rm_a", "rm_b"] and dump.logprob is not None
    assert list(dump.prompts) == ["p1", "p2"] and dump.excluded == (("p3", "one response"),)
    acc, var = _hand_values()
    got = {(m.model, m.name): m.value for m in measure_dump(dump, resamples=200)}
    for model in ("rm_a", "rm_b"):
        assert got[model, "accuracy"] == pytest.approx(acc[model], abs=1e-15)
        assert got[model, "variance"] == pytest.approx(var[model], rel=1e-14)


def test_npz_arrays_and_rewardbench_rows(tmp_path):
    # [P, K] arrays with NaN for a missing response: the same as the table, whose variance
    # without log-probabilities is the sample variance with divisor K - 1
    a = np.array([[0.9, 0.2, 0.5], [0.1, 0.7, np.nan]])
    b = np.array([[0.1, 0.1, 0.3], [0.8, 0.2, np.nan]])
    g = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, np.nan]])
    np.savez(tmp_path / "d.npz", rm_a=a, rm_b=b, gold=g)
    dump = load_dump(tmp_path / "d.npz", gold="gold")
    acc, _ = _hand_values()
    got = {(m.model, m.name): m.value for m in measure_dump(dump, resamples=200)}
    assert got["rm_b", "accuracy"] == pytest.approx(acc["rm_b"], abs=1e-15)
    sample = (np.var([0.9, 0.2, 0.5], ddof=1) + np.var([0.1, 0.7], ddof=1)) / 2
    assert got["rm_a", "variance"] == pytest.approx(sample, rel=1e-14)
    # RewardBench 2: chosen and rejected completions, scores listed chosen first; labels 1 / 0
    rows = pd.DataFrame({
        "id": ["q1", "q2"],
        "chosen": [["good"], ["good a", "good b"]],
        "rejected": [["bad 1", "bad 2", "bad 3"], ["bad"]],
        "scores_chosen": [[2.0], [0.5, -1.0]],
        "scores_rejected": [[1.0, 3.0, -2.0], [0.0]],
    })  # fmt: skip
    rows.to_json(tmp_path / "rb2.jsonl", orient="records", lines=True)
    rb = load_dump(tmp_path / "rb2.jsonl")
    assert rb.gold_is_label and rb.counts.tolist() == [4, 3]
    got = {(m.model, m.name): m.value for m in measure_dump(rb, resamples=200)}
    # q1: 2 > 1 and 2 > -2 right, 2 < 3 wrong, rejected pairs tied in gold but not in score:
    # 3 pairs wrong -> 2/6; q2: 0.5 > 0 right, -1 < 0 wrong, (0.5, -1) gold tie, wrong -> 1/3
    assert got["model", "accuracy"] == pytest.approx((2 / 6 + 1 / 3) / 2, abs=1e-15)
    # TPR at threshold 0: chosen scores 2 | 0.5, -1 -> (1/4 + 1/3) / (1/4 + 2/3); FPR alike
    assert got["model", "TPR"] == pytest.approx((1 / 4 + 1 / 3) / (1 / 4 + 2 / 3), rel=1e-14)
    assert got["model", "FPR"] == pytest.approx((2 / 4) / (3 / 4 + 1 / 3), rel=1e-14)
    assert got["model", "J"] == pytest.approx(got["model", "TPR"] - got["model", "FPR"])


def test_a_table_round_trips_and_packs_missing_responses(tmp_path):
    world = worlds.random_world(1, num_prompts=5, num_outputs=6)
    dump = world.sample(4, seed=3)
    for long in (False, True):
        again = load_dump(to_table(dump, long=long))
        assert again.models == dump.models
        for m in dump.models:
            np.testing.assert_array_equal(again.scores[m], dump.scores[m])
        np.testing.assert_array_equal(again.gold, dump.gold)
    # a response missing in the middle of an npz row is packed to the left, not cut off
    a = np.array([[1.0, np.nan, 2.0, 3.0], [1.0, 2.0, np.nan, np.nan]])
    d = load_dump({"m": a, "gold": a}, gold="gold")
    assert d.mask.shape == (2, 3) and d.counts.tolist() == [3, 2]
    np.testing.assert_array_equal(d.scores["m"][0], [1.0, 2.0, 3.0])


def test_on_the_support_with_log_probabilities_the_measures_are_exact():
    world = worlds.random_world(2, num_prompts=6, num_outputs=9)
    dump = world.support()
    got = {(m.model, m.name): m.value for m in measure_dump(dump, resamples=200)}
    for name, r in world.models.items():
        assert got[name, "on-policy accuracy"] == pytest.approx(
            float(np.mean(on_policy_accuracy(world.probs, r, world.gold))), abs=1e-13
        )
        assert got[name, "accuracy"] == pytest.approx(
            float(np.mean(accuracy(r, world.gold))), abs=1e-13
        )
        assert got[name, "variance"] == pytest.approx(
            float(np.mean(reward_variance(world.probs, r))), rel=1e-12
        )


def test_log_probabilities_are_self_normalised_per_prompt():
    # adding a constant to one prompt's log-probabilities (an unnormalised policy, or one that
    # puts mass outside the responses) changes nothing; a different relative weight does
    world = worlds.random_world(3, num_prompts=4, num_outputs=5)
    dump = world.support()
    shifted = Dump(dump.prompts, dump.mask, dump.scores, dump.gold,
                   dump.logprob - np.array([[3.0], [0.0], [7.5], [1.0]]) * dump.mask)  # fmt: skip
    np.testing.assert_allclose(shifted.weights(), dump.weights(), rtol=1e-14, atol=0)
    base = measure_dump(dump, resamples=200)
    same = measure_dump(shifted, resamples=200)
    for a, b in zip(base, same, strict=True):
        assert a.value == pytest.approx(b.value, rel=1e-12, abs=1e-15)
    lp = dump.logprob.copy()
    lp[0, 0] += 2.0
    moved = Dump(dump.prompts, dump.mask, dump.scores, dump.gold, lp)
    assert not np.allclose(moved.weights()[0], dump.weights()[0])


def test_bootstrap_matches_scipy_on_a_mean():
    # the resampled sums give scipy.stats.bootstrap's percentile interval of a mean, to Monte
    # Carlo accuracy (4000 resamples: the interval ends move by about 0.01 sd of the data)
    rng = np.random.default_rng(0)
    x = rng.exponential(size=300)
    sums = _resampled_sums(x[:, None], 4000, seed=1)[:, 0] / len(x)
    ours = np.quantile(sums, [0.025, 0.975])
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", random_state=2)
    ci = ref.confidence_interval
    sd = x.std() / math.sqrt(len(x))
    assert abs(ours[0] - ci.low) < 0.1 * sd and abs(ours[1] - ci.high) < 0.1 * sd


def test_same_seed_same_intervals_other_seed_other_intervals():
    dump = worlds.random_world(4).sample(8, seed=0)
    a, b = measure_dump(dump, seed=5), measure_dump(dump, seed=5)
    c = measure_dump(dump, seed=6)
    assert [m.low for m in a] == [m.low for m in b]
    boot = [(m.low, m.high) for m in a if m.name == "accuracy"]
    assert boot != [(m.low, m.high) for m in c if m.name == "accuracy"]


@pytest.mark.parametrize("num_responses", [8, 32])
def test_intervals_cover_the_exact_values(num_responses):
    # 200 replications per world: the 95 % intervals must cover in at least 90 % (a binomial
    # count of 200 at true coverage 0.95 falls below 181 with probability about 0.3 %)
    for world in (worlds.random_world(0), worlds.binary_world(0), worlds.section_4_1(0),
                  worlds.theorem_5_world(0)):  # fmt: skip
        cover = validation.coverage(world, num_responses, 200)
        names = {name for _, name in cover}
        assert {"accuracy", "variance", "all-equal fraction"} <= names
        if world.name.startswith("binary"):
            assert {"TPR", "FPR", "J"} <= names
        worst = min(cover, key=cover.get)
        assert cover[worst] >= 0.9, (world.name, worst, cover[worst])


def test_estimates_converge_as_k_grows():
    world = worlds.random_world(5)
    errors = validation.estimate_errors(world, [4, 16, 64], replications=30)
    assert list(errors["K"]) == [4, 16, 64]
    for name in ("accuracy", "variance"):
        err = errors[name]
        # unbiased estimators of a mean over 32 prompts: the error falls like K^(-1/2), so 16x
        # the responses should cut it by about 4; at least 2.5 leaves room for Monte Carlo noise
        assert err[0] / err[-1] > 2.5, (name, err)


def test_mean_gain_time_of_one_prompt_is_time_to_gain():
    # one prompt: the bracketing search on saved values against the event-based t_gamma
    world = worlds.random_world(6, num_prompts=1, num_outputs=7)
    r = world.models["noise 0.5"]
    r = r / np.max(np.abs(r))
    for kl in (0.0, 0.05):
        problem = Problem(np.log(world.probs), r, world.gold, kl_coef=kl)
        exact = time_to_gain(problem, 0.2)
        got, _ = teaching_time(world.probs, r, world.gold, 0.2, kl_coef=kl)
        assert got == pytest.approx(exact, rel=1e-6)


def test_absent_responses_change_no_time():
    # a prompt with fewer responses is padded with probability-0 outputs: the same t_gamma as
    # the same prompts without the padding (two prompts of 5 outputs, one cut to 3)
    world = worlds.random_world(7, num_prompts=2, num_outputs=5)
    probs = world.probs.copy()
    probs[1, 3:] = 0.0
    probs[1] /= probs[1].sum()
    r = world.models["noise 0.1"] / np.max(np.abs(world.models["noise 0.1"]))
    padded, _ = teaching_time(probs, r, world.gold, 0.1)
    rows = [(probs[0], r[0], world.gold[0]), (probs[1, :3], r[1, :3], world.gold[1, :3])]
    # prompts are independent: the mean gain is the mean of each prompt's own flow at t / |S|
    ts = np.linspace(0, 3 * padded, 4001)
    gains = []
    for p, rr, g in rows:
        traj = __import__("theory_sim").gradient_flow(Problem(np.log(p), rr, g), ts[-1] / 2,
                                                      save_ts=ts / 2)  # fmt: skip
        gains.append(np.asarray(traj.expected_gt) - traj.expected_gt[0])
    mean = np.mean(gains, axis=0)
    first = ts[np.argmax(mean >= 0.1)] / 2  # per prompt time, to the grid's resolution
    assert padded == pytest.approx(first, abs=2 * (ts[1] - ts[0]))


def test_theorem_6_ranking_flips_with_the_policy_in_the_dump():
    # Theorem 6 of arXiv 2503.15477: r_RM teaches fast from Pi, slowly from Pi'; the dump's
    # prediction (K = 16 samples) says so too, with r'_RM never moving from Pi (its samples
    # almost never include y_gamma', so its scores are constant)
    for prime in (False, True):
        world = worlds.theorem_6_world(0, num_prompts=8, prime=prime)
        dump = world.sample(16, seed=0)
        t = {x.model: x.time for x in predict(dump.weights(), dump.scores, dump.gold, gamma=0.05)}
        fast, slow = ("r'_RM (+1 on y_gamma')", "r_RM (+1 on y_gamma)")[:: 1 if prime else -1]
        assert t[fast] < t[slow] / 10, t


def test_theorem_5_accuracy_loses_to_variance_without_normalisation():
    # Theorem 5: the perfectly accurate model with values below 1/T is slow, the inaccurate one
    # fast; kept at their scales (normalise=False), the dump predicts this while accuracy ranks
    # them the other way
    world = worlds.theorem_5_world(0, num_prompts=8, T=100.0)
    dump = world.sample(16, seed=1)
    ev = evaluate(dump, gamma=0.05, normalise=False, resamples=200)
    t = {x.model: x.time for x in ev.teaching}
    assert t["inaccurate, fast"] < t["accurate, slow"] / 10
    # Proposition 3 on the support: each time at or above its bound (a theorem, so a failure
    # here is a bug in the flow, the scaling or the bound's reading for the mean gain)
    for x in ev.teaching:
        assert math.isfinite(x.bound) and x.time >= x.bound
    assert (
        ev.value("accurate, slow", "accuracy").value
        > ev.value("inaccurate, fast", "accuracy").value
    )
    assert ev.rankings["speed vs accuracy"] == pytest.approx(-1.0)


def test_predicted_ranking_agrees_with_the_exact_ranking():
    # item 4(c): six Section 4.1 models, K = 16, 20 seeds. Under a random ranking Kendall's tau
    # of 6 items has mean 0 and sd 0.36, so a mean over 20 seeds above 0.4 is 5 sd from chance
    out = validation.ranking_agreement(range(20), 16)
    tau = np.array(out["tau"])
    assert np.mean(tau) >= 0.4 and np.sum(tau > 0) >= 15, tau
    # the dump's accuracy carries no such information here (mean tau near 0), its variance does
    assert np.nanmean(out["tau accuracy"]) < 0.25 < np.mean(out["tau variance"])


def test_kendall_tau_handles_unreached_times():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert kendall_tau([-math.inf, 2, 3], [0, 5, 9]) == pytest.approx(1.0)
    assert kendall_tau([-math.inf, -math.inf, 3], [0, 1, 9]) == pytest.approx(
        stats.kendalltau([0, 0, 3], [0, 1, 9]).statistic
    )
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        (HAND.replace("rm_a", "rm a"), {"models": ["rm_a"]}, r"column 'rm_a'.*not in the dump"),
        (HAND, {"gold": "gold_score"}, r"column 'gold_score' \(the gold score, `gold`\)"),
        (HAND.replace("p1,r2,0.0,0.2", "p1,r2,0.0,abc"), {}, r"column 'rm_a': non-numeric.*row 1"),
        (HAND.replace("p2,r1,0.0,0.1", "p2,r1,0.0,"), {}, r"column 'rm_a': missing.*row 3"),
        (HAND.replace("p1,r3", "p1,r2"), {}, r"duplicate row 2 \(prompt 'p1', response 'r2'\)"),
        (HAND.replace("-1.5", "0.5"), {}, r"'logprob': log-prob.*row 1"),
        (HAND, {"gold_labels": True}, r"'gold': gold label other than 0 or 1; first at row 2"),
    ],
)
def test_bad_input_names_the_column_and_row(tmp_path, text, kwargs, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_dump(path, **kwargs)


def test_bad_sources_and_a_dump_without_pairs(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_dump(tmp_path / "missing.csv")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\.csv, \.jsonl"):
        load_dump(tmp_path / "d.txt")
    # a text column is left out and listed, not read as a model
    (tmp_path / "text.csv").write_text("prompt_id,response_id,text,m\na,1,hi,0.5\na,2,yo,0.2\n")
    assert load_dump(tmp_path / "text.csv").ignored == ("text",)
    (tmp_path / "one.csv").write_text("prompt_id,response_id,m\na,1,0.5\nb,1,0.2\n")
    with pytest.raises(ValueError, match="no prompt has two or more responses"):
        load_dump(tmp_path / "one.csv")
    with pytest.raises(ValueError, match=r"array 'g'.*not in the dump"):
        load_dump({"m": np.ones((2, 2))}, gold="g")
    with pytest.raises(ValueError, match="`resamples` must be an integer >= 100"):
        measure_dump(load_dump({"m": np.eye(2)}), resamples=10)
    with pytest.raises(ValueError, match="`ev` must be an Evaluation"):
        write_report({"not": "an evaluation"}, tmp_path / "out")
    ev = evaluate(load_dump({"m": np.eye(3), "g": np.eye(3)}, gold="g"), resamples=100)
    with pytest.raises(ValueError, match="`directory` must be a path"):
        write_report(ev, None)


def test_command_line_writes_the_report(tmp_path, capsys):
    from theory_sim import cli

    path = _write(tmp_path, "csv")
    out = tmp_path / "out"
    assert cli.main(["evaluate", str(path), "--logprob", "logprob", "--out", str(out),
                     "--resamples", "200"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "on-policy accuracy" in printed and "predicted t_gamma" in printed
    assert "excluded: 1 prompts with a single response" in printed
    report = (out / "report.md").read_text()
    assert "tabular analogue on the sampled support" in report and "'p3'" in report
    payload = json.loads((out / "evaluation.json").read_text())
    assert {m["name"] for m in payload["measures"]} >= {"accuracy", "on-policy accuracy",
                                                         "variance"}  # fmt: skip
    for fig in ("variance_accuracy.png", "prompt_variance.png", "teaching_times.png"):
        assert (out / fig).stat().st_size > 10_000
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", str(path), "--gold", "nope", "--out", str(out)])
    assert stop.value.code == 2
    assert "column 'nope' (the gold score, `gold`) is not in the dump" in capsys.readouterr().err
