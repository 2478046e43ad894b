"""Bad input across modules: each call raises ValueError (TypeError for a wrong kind of object)
whose message names the argument, instead of a silent wrong answer, a raw error or a hang."""

import re
import time

import jax
import numpy as np
import optax
import pytest

import theory_sim as ts
from theory_sim import bradley_terry, cli, rewards, training
from theory_sim.theorems import (
    check_proposition_1,
    lemma_9_rate,
    proposition_3_bound,
    proposition_4_conditions,
    theorem_4_bound,
    tightest,
)

PROBS = np.array([0.4, 0.3, 0.2, 0.1])  # sums to 0.9999999999999999 in float64
R_GT = np.array([0.0, 1.0, 2.0, 3.0])
KEY = jax.random.key(0)


def _pairs(**changes):
    fields = {
        "prompt": np.array([0, 0]),
        "first": np.array([0, 1]),
        "second": np.array([1, 2]),
        "first_wins": np.array([1.0, 0.0]),
        "on_policy": np.array([True, False]),
    }
    fields.update(changes)
    return bradley_terry.PreferencePairs(**fields)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # a constant reward with probabilities that miss 1 by round-off: no variance to reach
        (lambda: rewards.with_variance(PROBS, np.ones(4), 0.1), ValueError, "`reward` is constant"),
        (lambda: proposition_3_bound(1, 0.01, float("nan")), ValueError, "`gamma`"),
        (lambda: proposition_3_bound(1, -0.01, 0.1), ValueError, "`var0`"),
        (lambda: proposition_3_bound(0, 0.01, 0.1), ValueError, "`num_prompts`"),
        (lambda: theorem_4_bound(0, 1.0, 0.0, 0.1, 0.01), ValueError, "`length`"),
        (lambda: theorem_4_bound(2, 0.0, 0.0, 0.1, 0.01), ValueError, "`jacobian`"),
        (lambda: theorem_4_bound(2, 1.0, -1.0, 0.1, 0.01), ValueError, "`kl_coef`"),
        (lambda: theorem_4_bound(2, 1.0, 0.0, float("nan"), 0.01), ValueError, "`gamma`"),
        (lambda: theorem_4_bound(2, 1.0, 0.0, 0.1, -1.0), ValueError, "`mean_var0`"),
        (lambda: check_proposition_1(PROBS, R_GT, {}, 2), ValueError, "`reward_models`"),
        # Lemma 9's rate is for log-probabilities over at least two outputs
        (
            lambda: lemma_9_rate(np.array([0.5, -1.0, -2.0, -3.0]), np.log(PROBS), R_GT, 0.1, 1),
            ValueError,
            "`log_probs`",
        ),
        (
            lambda: lemma_9_rate(np.zeros(1), np.zeros(1), np.ones(1), 0.1, 1),
            ValueError,
            "`log_probs`",
        ),
        (lambda: lemma_9_rate(np.float64(-1.0), -1.0, 1.0, 0.1, 1), ValueError, "`log_probs`"),
        (
            lambda: lemma_9_rate(np.log(PROBS), np.log(PROBS[:3]), R_GT, 0.1, 1),
            ValueError,
            "`ref_log_probs` must broadcast",
        ),
        (
            lambda: lemma_9_rate(np.log(PROBS), np.log(PROBS), R_GT[:3], 0.1, 1),
            ValueError,
            "`reward_rm` must broadcast",
        ),
        (lambda: tightest("rows"), TypeError, "`checks` must be a list of Check; got str"),
        # Proposition 4's conditions: one length, rewards in [-1, 1] (named)
        (
            lambda: proposition_4_conditions(PROBS / PROBS.sum(), R_GT / 3, R_GT[:3] / 3, 0.1, [3]),
            ValueError,
            "must be 1-D of one length",
        ),
        (
            lambda: proposition_4_conditions(
                np.full((2, 4), 0.25), np.zeros((2, 4)), np.zeros((2, 4)), 0.1, [3]
            ),
            ValueError,
            "must be 1-D of one length",
        ),
        (
            lambda: proposition_4_conditions(PROBS / PROBS.sum(), R_GT, R_GT / 3, 0.1, [3]),
            ValueError,
            "`reward_gt`",
        ),
        (
            lambda: proposition_4_conditions(PROBS / PROBS.sum(), R_GT / 3, R_GT, 0.1, [3]),
            ValueError,
            "`reward_rm`",
        ),
        (lambda: ts.default_save_ts(10.0, 1), ValueError, "`num`"),
        # negative |S| would give negative time bounds
        (
            lambda: rewards.theorem_5_models(
                PROBS / PROBS.sum(), R_GT / 3, 0.1, 10.0, num_prompts=-3
            ),
            ValueError,
            "`num_prompts`",
        ),
        # a one-hot off-policy distribution can only give pairs (0, 0)
        (
            lambda: bradley_terry.sample_preferences(
                PROBS / PROBS.sum(), R_GT, 10, 0.0, key=KEY, off_policy_probs=np.eye(4)[0]
            ),
            ValueError,
            "`off_policy_probs`",
        ),
        # a transposed reward table must not be reshaped silently
        (
            lambda: bradley_terry.sample_preferences(
                np.full((2, 3), 1 / 3), np.zeros((3, 2)), 10, 0.5, key=KEY
            ),
            ValueError,
            "`reward_gt`",
        ),
        # logits of +-1e308 are refused here, not later in the solver
        (lambda: ts.Problem(np.array([1e308, -1e308, 0.0]), R_GT[:3]), ValueError, "`init_logits`"),
        (lambda: ts.default_save_ts(10.0, -1), ValueError, "`num`"),
        (lambda: ts.Autoregressive(2, 1100), ValueError, "too large"),
        (lambda: ts.Autoregressive(2, 3).decode(2.7), ValueError, "`index`"),
        (lambda: ts.Autoregressive(2, 3).decode(8), ValueError, "`index`"),
        (lambda: bradley_terry.fit_bradley_terry("pairs", 1, 3), TypeError, "`pairs`"),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(first=np.array([-1, 1])), 1, 3),
            ValueError,
            "`pairs.first`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(prompt=np.array([0, 1])), 1, 3),
            ValueError,
            "`pairs.prompt`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(first_wins=np.array([5.0, 0.0])), 1, 3),
            ValueError,
            "`pairs.first_wins`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(
                _pairs(first_wins=np.array([np.nan, 0.0])), 1, 3
            ),
            ValueError,
            "`pairs.first_wins`",
        ),
        (
            lambda: bradley_terry.fit_bradley_terry(_pairs(second=np.array([1.0, 2.0])), 1, 3),
            ValueError,
            "`pairs.second`",
        ),
    ],
)
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_absurd_autoregressive_sizes_are_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"2\^1e\+06 sequences"):
        ts.Autoregressive(2, 10**6)
    assert time.perf_counter() - start < 1.0  # was minutes: the size itself was a huge sum


def test_legal_edge_inputs_still_work():
    assert ts.Autoregressive(1, 5).num_prefixes == 5  # V = 1: one prefix per level
    assert ts.Autoregressive(3, 4).num_prefixes == 1 + 3 + 9 + 27
    assert ts.Autoregressive(2, 3).decode(np.int64(5)) == (1, 0, 1)
    np.testing.assert_allclose(ts.default_save_ts(10.0, 2), [0.0, 10.0])
    fitted = bradley_terry.fit_bradley_terry(_pairs(), 1, 3, steps=10)
    assert fitted.shape == (1, 3) and np.all(np.isfinite(fitted))


PROBLEM = ts.Problem(np.log(PROBS / PROBS.sum()), R_GT / 3.0)
LOGITS = np.log(PROBS / PROBS.sum())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # each would allocate tens of GiB to TiB; the estimate is refused before anything runs
        (lambda: ts.estimate_gradient(PROBLEM, LOGITS, key=KEY, num_samples=10**9),
         "`num_estimates` x `num_samples`"),
        (lambda: training.gradient_snr(PROBLEM, LOGITS, key=KEY, num_estimates=10**10),
         "`num_estimates` x `num_samples`"),
        (lambda: bradley_terry.sample_preferences(PROBS, R_GT, 10**11, 0.5, key=KEY),
         "`num_pairs`"),
        (lambda: rewards.attainable_accuracies(np.arange(10.0**6)), "`reward_gt` with 1000000"),
        (lambda: ts.optimize(PROBLEM, optax.sgd(0.1), 10**11), "`num_steps` / `save_every`"),
        # a trajectory's saved states: 58 GiB at Y = 10^7 with the default 129 times; 447 GiB
        # for 10^7 times at Y = 1000, by Euler as by the adaptive solver
        (lambda: ts.gradient_flow(ts.Problem(np.zeros(10**7), np.ones(10**7)), 1.0),
         "the default save_ts (129 times, each saving 1 prompt(s) x 10000000 outputs)"),
        (lambda: ts.gradient_flow(ts.Problem(np.zeros(1000), np.ones(1000)), 1.0,
                                  np.linspace(0.0, 1.0, 10**7), method="euler", dt=0.1),
         "`save_ts` (10000000 times"),
    ],
)  # fmt: skip
def test_sizes_are_refused_before_anything_is_allocated(call, message):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"{re.escape(message)}.* GiB, above the limit"):
        call()
    assert time.perf_counter() - start < 5.0


def test_learning_rates_and_optimisers_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="`learning_rate` must be > 0"):
        ts.compare_methods(PROBLEM, 0.1, 0.0, key=KEY)  # was a ZeroDivisionError after the flow
    with pytest.raises(ValueError, match="`optimizer` made the parameters non-finite by step 1"):
        ts.optimize(PROBLEM, optax.sgd(float("nan")), 5)  # returned NaN rewards
    with pytest.raises(TypeError, match="`optimizer` must be an optax GradientTransformation"):
        ts.optimize(PROBLEM, "adam", 5)
    with pytest.raises(TypeError, match=r"`problem` must be a theory_sim\.Problem; got str"):
        ts.gradient_flow("problem", 1.0)
    with pytest.raises(TypeError, match="`key` must be one JAX PRNG key"):
        ts.estimate_gradient(PROBLEM, LOGITS, key=0)
    with pytest.raises(TypeError, match="`policy` must be a parameterisation"):
        ts.start_at("tabular", PROBS / PROBS.sum())


def test_a_target_above_the_maximum_reward_is_answered_at_once():
    # Euler would otherwise take its whole budget of steps to find nothing
    details = ts.time_to_gain_details(PROBLEM, 5.0, method="euler", dt=0.1)
    assert details.time == np.inf and details.ended == "unreachable" and details.num_steps == 0
    assert ts.steps_to_gain(PROBLEM, optax.sgd(0.1), 5.0) == np.inf
    # just below the headroom the solver runs and the target is reached in finite time
    headroom = float(R_GT.max() / 3.0 - PROBS / PROBS.sum() @ (R_GT / 3.0))
    assert np.isfinite(ts.time_to_gain(PROBLEM, 0.5 * headroom))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--instances", "0"], "--instances must be >= 1"),
        (["check", "--seed", "x"], "argument --seed: invalid int value"),
        (["sweep", "no/such.toml", "--out", "o"], "no/such.toml"),
        (["plot", "no/such/dir", "--out", "o"], "`results` must be a sweep directory"),
        (["reproduce"], "the following arguments are required: --out"),
        (["reproduce", "--out", "/dev/null/x"], "/dev/null/x"),
    ],
)
def test_every_subcommand_refuses_bad_arguments_in_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _listed_bad_inputs():
    """The inputs a harness of bad calls found reaching users as a traceback from inside or a
    silent answer: each (call, exception type, the argument its message must name)."""
    from theory_sim import stories, theorems
    from theory_sim.theorems.flat import jacobian_grid

    ar, ll = ts.Autoregressive(2, 2), ts.LogLinear(np.eye(4)[:, :3])
    problem = ts.Problem(np.log(PROBS), np.array([-0.8, 0.1, 0.3, 0.9]))
    six = (np.full(6, 1 / 6), np.linspace(0, 1, 6), 0.1, 10.0)
    return {
        "Problem(policy='tabular')": (
            lambda: ts.Problem(np.zeros(3), np.zeros(3), policy="tabular"), TypeError, "policy"),
        "index with float tokens": (lambda: ar.index([1.5, 0.0]), TypeError, "sequence"),
        "index with a float": (lambda: ar.index(1.5), TypeError, "sequence"),
        "index with a 2-D sequence": (lambda: ar.index([[1, 0]]), TypeError, "sequence"),
        "Tabular.init_params 3-D": (
            lambda: ts.Tabular().init_params(np.full((2, 2, 2), 0.5)), ValueError, "probs"),
        "LogLinear.jacobian_norm(prompt=5)": (
            lambda: ll.jacobian_norm(np.zeros(3), prompt=5), ValueError, "prompt"),
        "reward_variance, one reward": (
            lambda: ts.reward_variance(PROBS, np.array([1.0])), ValueError, "reward"),
        "expected_reward, scalar reward": (
            lambda: ts.expected_reward(PROBS, 1.0), ValueError, "reward"),
        "gradient_snr(num_estimates=1)": (
            lambda: training.gradient_snr(problem, np.log(PROBS), key=KEY, num_estimates=1),
            ValueError, "num_estimates"),
        "check_theorem_5(kl_coef='a')": (
            lambda: theorems.check_theorem_5(*six, kl_coef="a"), ValueError, "kl_coef"),
        "check_theorem_5(kl_coef=[0.0])": (
            lambda: theorems.check_theorem_5(*six, kl_coef=[0.0]), ValueError, "kl_coef"),
        "jacobian_grid(t_end=nan)": (lambda: jacobian_grid(float("nan")), ValueError, "t_end"),
        "flat_landscape(seed=nan)": (
            lambda: stories.flat_landscape(seed=float("nan")), ValueError, "seed"),
        "sequence_teachers(seed=2**64)": (
            lambda: stories.sequence_teachers(seed=2**64), ValueError, "seed"),
        "top_sequences(policy=1.0)": (
            lambda: stories.top_sequences(1.0, np.full(4, 0.25), {}), TypeError, "policy"),
        "top_sequences with short probs": (
            lambda: stories.top_sequences(ar, np.full(2, 0.5), {}), ValueError, "probs"),
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(_listed_bad_inputs()))
def test_listed_bad_inputs_are_refused_naming_the_argument(name):
    call, error, argument = _listed_bad_inputs()[name]
    with pytest.raises(error, match=f"`{argument}`"):
        call()


def test_a_seed_too_large_for_jax_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["check", "--seed", "99999999999999999999999", "--no-exponents"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("theory-sim check: error: `seed` must be an integer seed")
