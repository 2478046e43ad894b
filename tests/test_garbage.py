"""Random garbage never returns silently: every public function of theory_sim and its modules
(rewards, theorems, training, policies and their methods, bradley_terry, stories, sweep, cache;
test_every_public_callable_is_covered enumerates them from the modules), called with one
argument of a valid call replaced by garbage (None, strings, NaN, infinities, negative or huge
numbers, empty arrays, arrays of the wrong rank or of NaN), either raises ValueError or TypeError
whose message names that argument, or returns a result with no NaN in it (the garbage was a
legal value)."""

import dataclasses
import re

import jax
import matplotlib.figure
import matplotlib.pyplot
import numpy as np
import optax
import pytest
import test_plotting as tp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theory_sim as ts
from theory_sim import (
    bradley_terry,
    cache,
    estimators,
    evaluate,
    flow,
    groups,
    metrics,
    plotting,
    policies,
    rewards,
    steps,
    stories,
    sweep,
    theorems,
    training,
)
from theory_sim.evaluate import worlds
from theory_sim.instances import counterexample_instance

PI = np.array([0.4, 0.3, 0.2, 0.1])
R_GT = np.array([-1.0, -0.3, 0.4, 1.0])
R_RM = np.array([-0.8, 0.1, 0.3, 0.9])
PROBLEM = ts.Problem(np.log(PI), R_RM, R_GT)
LOGITS = np.log(PI)
KEY = jax.random.key(0)
PAIRS = bradley_terry.sample_preferences(PI[None], R_GT[None], 8, 0.5, key=KEY)
UNIFORM6, LINEAR6 = np.full(6, 1 / 6), np.linspace(0, 1, 6)
PROPOSITION_4 = {  # a Proposition 4 instance whose conditions hold, Y_bad empty
    "init_probs": np.array([0.1, 0.1, 0.4, 0.4]),
    "reward_gt": np.array([1.0, 0.8, -0.5, 0.0]),
    "reward_rm": np.array([1.0, 1.0, -1.0, -1.0]),
    "gamma": 0.2,
    "y_plus": [0, 1],
}
CHECK = theorems.Check("claim", "x", 1.0, 2.0, "<=", True)

# name -> (function, a valid call's keyword arguments)
CALLS = {
    "accuracy": (ts.accuracy, {"reward_rm": R_RM, "reward_gt": R_GT}),
    "on_policy_accuracy": (ts.on_policy_accuracy, {"pi": PI, "reward_rm": R_RM, "reward_gt": R_GT}),
    "weighted_accuracy": (ts.weighted_accuracy, {"pi": PI, "reward_rm": R_RM, "reward_gt": R_GT}),
    "harm_aware_accuracy": (
        ts.harm_aware_accuracy,
        {"pi": PI, "reward_rm": R_RM, "reward_gt": R_GT},
    ),
    "best_of_n": (ts.best_of_n, {"pi": PI, "reward_rm": R_RM, "reward_gt": R_GT, "n": 3}),
    "best_of_n_policy": (ts.best_of_n_policy, {"pi": PI, "reward_rm": R_RM, "n": 3}),
    "entropy": (ts.entropy, {"pi": PI}),
    "expected_reward": (ts.expected_reward, {"pi": PI, "reward": R_GT}),
    "reward_variance": (ts.reward_variance, {"pi": PI, "reward": R_GT}),
    "kl_divergence": (ts.kl_divergence, {"pi": PI, "pi_ref": PI[::-1]}),
    "default_save_ts": (ts.default_save_ts, {"t_max": 10.0, "num": 5}),
    "Problem": (
        ts.Problem,
        {"init_logits": LOGITS, "reward_rm": R_RM, "reward_gt": R_GT, "kl_coef": 0.1},
    ),
    "Autoregressive": (ts.Autoregressive, {"vocab_size": 2, "length": 2}),
    "LogLinear": (ts.LogLinear, {"features": np.eye(4)[:, :3]}),
    "start_at": (ts.start_at, {"policy": ts.Tabular(), "probs": PI}),
    "kl_optimal_policy": (ts.kl_optimal_policy, {"problem": PROBLEM.with_kl_coef(0.5)}),
    "objective": (ts.objective, {"problem": PROBLEM, "logits": LOGITS}),
    "prompt_objective": (ts.prompt_objective, {"problem": PROBLEM, "logits": LOGITS}),
    "policy_gradient": (ts.policy_gradient, {"problem": PROBLEM, "logits": LOGITS}),
    "tabular_gradient": (ts.tabular_gradient, {"problem": PROBLEM, "logits": LOGITS}),
    "gradient_flow": (ts.gradient_flow, {"problem": PROBLEM, "t_max": 5.0}),
    "time_to_gain": (ts.time_to_gain, {"problem": PROBLEM, "gamma": 0.1, "t_max": 1e3}),
    "time_to_gain_details": (
        ts.time_to_gain_details,
        {"problem": PROBLEM, "gamma": 0.1, "t_max": 1e3},
    ),
    "optimize": (
        training.optimize,
        {"problem": PROBLEM, "optimizer": optax.sgd(0.1), "num_steps": 3},
    ),
    "steps_to_gain": (
        training.steps_to_gain,
        {"problem": PROBLEM, "optimizer": optax.sgd(0.5), "gamma": 0.1, "max_steps": 200},
    ),
    "sampled_optimize": (
        training.sampled_optimize,
        {"problem": PROBLEM, "learning_rate": 0.1, "num_steps": 3, "key": KEY},
    ),
    "sampled_steps_to_gain": (
        training.sampled_steps_to_gain,
        {"problem": PROBLEM, "gamma": 0.1, "learning_rate": 0.5, "key": KEY, "max_steps": 200},
    ),
    "estimate_gradient": (
        training.estimate_gradient,
        {"problem": PROBLEM, "logits": LOGITS, "key": KEY, "num_samples": 4},
    ),
    "gradient_snr": (
        training.gradient_snr,
        {"problem": PROBLEM, "logits": LOGITS, "key": KEY, "num_estimates": 50},
    ),
    "natural_gradient": (training.natural_gradient, {"problem": PROBLEM, "logits": LOGITS}),
    "compare_methods": (
        training.compare_methods,
        {
            "problem": PROBLEM,
            "gamma": 0.1,
            "learning_rate": 0.5,
            "key": KEY,
            "max_steps": 200,
            "num_estimates": 20,
        },
    ),
    "accuracy_sweep": (
        rewards.accuracy_sweep,
        {"init_probs": PI, "reward_gt": R_GT, "accuracies": [0.5, 1.0], "variance": 0.1},
    ),
    "attainable_accuracies": (rewards.attainable_accuracies, {"reward_gt": R_GT}),
    "max_monotone_variance": (rewards.max_monotone_variance, {"init_probs": PI, "reward": R_GT}),
    "nearest_attainable_accuracy": (
        rewards.nearest_attainable_accuracy,
        {"reward_gt": R_GT, "accuracy": 0.6},
    ),
    "ranking_with_accuracy": (
        rewards.ranking_with_accuracy,
        {"reward_gt": R_GT, "accuracy": 0.5},
    ),
    "scale_prompts": (
        rewards.scale_prompts,
        {"reward": np.stack([R_GT, R_RM]), "fraction": 0.5, "key": KEY},
    ),
    "theorem_5_models": (
        rewards.theorem_5_models,
        {
            "init_probs": np.full(6, 1 / 6),
            "reward_gt": LINEAR6,
            "gamma": 0.1,
            "T": 10.0,
        },
    ),
    "theorem_6_instance": (
        rewards.theorem_6_instance,
        {"reward_gt": LINEAR6, "gamma": 0.1, "T": 30.0, "c": 0.2},
    ),
    "variance_sweep": (
        rewards.variance_sweep,
        {"init_probs": PI, "reward": R_GT, "variances": [0.01, 0.1]},
    ),
    "with_variance": (rewards.with_variance, {"init_probs": PI, "reward": R_GT, "variance": 0.1}),
    "check_lemma_10": (theorems.check_lemma_10, {"problem": PROBLEM, "num_times": 4}),
    "check_lemma_9": (theorems.check_lemma_9, {"problem": PROBLEM, "t_max": 10.0, "num_times": 4}),
    "lemma_9_rate": (
        theorems.lemma_9_rate,
        {
            "log_probs": np.log(PI),
            "ref_log_probs": np.log(PI[::-1]),
            "reward_rm": R_RM,
            "kl_coef": 0.1,
            "num_prompts": 2,
        },
    ),
    "check_monotone_ascent": (
        theorems.check_monotone_ascent,
        {"problem": PROBLEM.with_kl_coef(0.1), "prompt": 0, "t_max": 100.0},
    ),
    "check_theorem_4_held_out": (
        theorems.check_theorem_4_held_out,
        {
            "problem": ts.Problem(
                np.array([0.3, -0.2]),
                np.array([[1.0, 0.0, -1.0], [-0.5, 0.5, 0.0]]),
                policy=ts.LogLinear(np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]] * 2)),
            ),
            "held_out": ts.LogLinear(np.array([[0.5, 0.0], [0.0, 1.0], [-1.0, 1.0]])),
            "reward": np.array([0.2, -0.4, 0.9]),
            "gamma": 0.05,
            "t_max": 100.0,
        },
    ),
    "check_proposition_1": (
        theorems.check_proposition_1,
        {"init_probs": PI, "reward_gt": R_GT, "reward_models": {"a": R_RM, "b": R_GT}, "n": 2},
    ),
    "check_proposition_2": (
        theorems.check_proposition_2,
        {"problem": PROBLEM, "t_max": 10.0, "num_times": 4},
    ),
    "check_proposition_3": (
        theorems.check_proposition_3,
        {"problem": PROBLEM, "gamma": 0.1, "t_max": 1e3},
    ),
    "check_proposition_3_trajectory": (
        theorems.check_proposition_3_trajectory,
        {"problem": PROBLEM, "num_times": 4},
    ),
    "check_proposition_4": (theorems.check_proposition_4, PROPOSITION_4),
    "check_theorem_4": (theorems.check_theorem_4, {"problem": PROBLEM, "gamma": 0.1, "t_max": 1e3}),
    "check_theorem_5": (
        theorems.check_theorem_5,
        {
            "init_probs": np.full(6, 1 / 6),
            "reward_gt": LINEAR6,
            "gamma": 0.1,
            "T": 10.0,
            "pair_weights": np.outer(np.full(6, 1 / 6), np.full(6, 1 / 6)),
        },
    ),
    "check_theorem_6": (
        theorems.check_theorem_6,
        {"reward_gt": LINEAR6, "gamma": 0.1, "T": 30.0, "c": 0.2},
    ),
    "fit_exponent": (
        theorems.fit_exponent,
        {"var0": [1e-1, 1e-2, 1e-3], "t_gamma": [1.0, 3.0, 10.0]},
    ),
    "proposition_3_bound": (
        theorems.proposition_3_bound,
        {"num_prompts": 1, "var0": 0.1, "gamma": 0.1},
    ),
    "proposition_4_conditions": (theorems.proposition_4_conditions, PROPOSITION_4),
    "proposition_4_y_bad": (theorems.proposition_4_y_bad, {**PROPOSITION_4, "kl_coef": 0.0}),
    "theorem_4_bound": (
        theorems.theorem_4_bound,
        {"length": 2, "jacobian": 1.0, "kl_coef": 0.0, "gamma": 0.1, "mean_var0": 0.1},
    ),
    "tightest": (theorems.tightest, {"checks": [CHECK]}),
    "sample_preferences": (
        bradley_terry.sample_preferences,
        {
            "init_probs": PI[None],
            "reward_gt": R_GT[None],
            "num_pairs": 8,
            "on_policy_fraction": 0.5,
            "key": KEY,
        },
    ),
    "fit_bradley_terry": (
        bradley_terry.fit_bradley_terry,
        {"pairs": PAIRS, "num_prompts": 1, "num_outputs": 4, "steps": 20},
    ),
    "normalize_rewards": (bradley_terry.normalize_rewards, {"reward": R_RM, "init_probs": PI}),
}

AR = ts.Autoregressive(2, 2)
LL = ts.LogLinear(np.eye(4)[:, :3])
MLP = ts.MLP(np.eye(4)[None, :, :3], width=4, depth=1, key=0)
SCALED = ts.ScaledMLP(np.eye(4)[:, :3], width=4, depth=2, parameterisation="mean_field", key=0)
TRANSFORMER = ts.Transformer(2, 2, width=4, depth=1, heads=1, key=0)
SWEEP_TEXT = """
[problem]
outputs = 4
gamma = 0.3
horizons = [1.0]
t_max = 1e3
[grid]
seeds = [0]
kl_coef = [0.0]
[[policy]]
family = "uniform"
[[reward_model]]
family = "ground_truth"
"""
SWEEP = sweep.parse_config(SWEEP_TEXT)
AR_PROBS = np.full(4, 0.25)

# policies' methods: (policy, method name) -> a valid call's keyword arguments
METHODS = {
    (ts.Tabular(), "init_params"): {"probs": PI},
    (ts.Tabular(), "jacobian_norm"): {"params": LOGITS[None], "prompt": 0},
    (AR, "init_params"): {"probs": AR_PROBS},
    (AR, "index"): {"sequence": [1, 0]},
    (AR, "decode"): {"index": 2, "alphabet": "ab"},
    (AR, "jacobian_norm"): {"params": np.zeros((1, 3, 2)), "prompt": 0},
    (LL, "init_params"): {"probs": PI},
    (LL, "jacobian_norm"): {"params": np.zeros(3), "prompt": 0},
    (MLP, "jacobian_norm"): {"params": np.asarray(MLP.params), "prompt": 0},
    (MLP, "jacobian_norms"): {"params": np.asarray(MLP.params)},
    (SCALED, "jacobian_norm"): {"params": np.asarray(SCALED.params), "prompt": 0},
    (SCALED, "jacobian_norms"): {"params": np.asarray(SCALED.params)},
    (SCALED, "starting_at"): {"probs": PI},
    (SCALED, "gram"): {"theta": np.asarray(SCALED.params)},
    (TRANSFORMER, "jacobian_norm"): {"params": np.asarray(TRANSFORMER.params), "prompt": 0},
    (PROBLEM, "with_kl_coef"): {"kl_coef": 0.2},
}
for (owner, method), kwargs in METHODS.items():
    CALLS[f"{type(owner).__name__}.{method}"] = (getattr(owner, method), kwargs)

CALLS |= {
    "flat_landscape": (
        stories.flat_landscape,
        {"policy": "tabular", "family": "concentration", "num_points": 3, "decades": 1.0},
    ),
    "theorem_5_story": (stories.theorem_5_story, {"horizons": (10.0,), "curve_T": 10.0}),
    "accuracy_variance_grid": (
        stories.accuracy_variance_grid,
        {"num_accuracies": 2, "num_variances": 2, "num_outputs": 4, "gamma_fraction": 0.2},
    ),
    "theorem_6_story": (stories.theorem_6_story, {"seed": 1, "T": 30.0, "num_prompts": 1}),
    "teacher_student": (
        stories.teacher_student,
        {"num_policies": 2, "num_models": 2, "num_outputs": 4, "horizon": 2.0, "seed": 0},
    ),
    "sequence_teachers": (
        stories.sequence_teachers,
        {"vocab_size": 2, "length": 2, "horizon": 5.0, "seed": 0, "k": 2},
    ),
    "top_sequences": (
        stories.top_sequences,
        {"policy": AR, "probs": AR_PROBS, "columns": {"r": np.arange(4.0)}, "k": 2},
    ),
    "counterexample_instance": (counterexample_instance, {"seed": 0, "num_outputs": 6}),
    "section_4_1": (
        stories.section_4_1,
        {
            "num_prompts": 2,
            "num_outputs": 4,
            "seeds": (0,),
            "pairs_per_prompt": 8,
            "rloo_steps": 3,
        },
    ),
    "parse_config": (sweep.parse_config, {"text": SWEEP_TEXT, "path": "sweep.toml"}),
    "build_cell": (sweep.build_cell, {"config": SWEEP, "cell": 0}),
    "run_cells": (sweep.run_cells, {"config": SWEEP, "cells": [0]}),
    "proposition_2_rhs": (
        theorems.proposition_2_rhs,
        {"max_abs_r_kl": 0.5, "length": 1, "jacobian": 1.0, "variance": 0.1},
    ),
    "release_programs": (cache.release_programs, {"force": False}),
}

# every figure, on the synthetic results of tests/test_plotting.py
CALLS |= {
    "plot_bound_check": (plotting.plot_bound_check, {"checks": tp._checks(), "title": "t"}),
    "plot_reward_curves": (plotting.plot_reward_curves, {"traj": tp._trajectory(), "prompt": 0}),
    "plot_exponent_fits": (plotting.plot_exponent_fits, {"fits": {"tabular": tp._fit(-0.5)}}),
    "plot_snr_study": (plotting.plot_snr_study, {"rows": tp._snr_rows()}),
    "plot_sweep": (plotting.plot_sweep, {"rows": tp._sweep_rows(), "horizon": 10.0}),
    "plot_flat_landscape": (
        plotting.plot_flat_landscape,
        {"landscapes": [tp._landscape("tabular", "reward_scale", -0.5)]},
    ),
    "plot_remark_1": (plotting.plot_remark_1, {"study": tp._remark_1()}),
    "plot_remark_1_paths": (plotting.plot_remark_1_paths, {"study": tp._remark_1()}),
    "plot_theorem_5": (plotting.plot_theorem_5, {"story": tp._theorem_5()}),
    "plot_section_4_1": (plotting.plot_section_4_1, {"study": tp._section_4_1()}),
    **{name: (getattr(plotting, name), {arg: make()}) for name, arg, make in (
        ("plot_accuracy_variance", "grid", lambda: tp.FIGURES_INPUTS["accuracy_variance"]),
        ("plot_theorem_6", "story", lambda: tp.FIGURES_INPUTS["theorem_6"]),
        ("plot_teacher_student", "study", lambda: tp.FIGURES_INPUTS["teacher_student"]),
        ("plot_tightness", "results", lambda: tp.FIGURES_INPUTS["tightness"]),
    )},
}  # fmt: skip

# verifiable rewards, group estimators and score dumps
CORRECT = np.array([0.0, 0.0, 0.0, 1.0])
BINARY = ts.Problem(np.log(PI), CORRECT)
DUMP = worlds.random_world(0, num_prompts=4, num_outputs=5).sample(4, seed=0)
WORLD = worlds.random_world(0, num_prompts=2, num_outputs=4)
EVALUATION = evaluate.evaluate(DUMP, resamples=100, flow_prompts=4)
CALLS |= {
    "noisy_verifier": (rewards.noisy_verifier,
                       {"correct": CORRECT, "false_positive": 0.1, "false_negative": 0.2}),
    "youden_j": (rewards.youden_j, {"false_positive": 0.1, "false_negative": 0.2}),
    "check_noisy_verifier": (theorems.check_noisy_verifier, {
        "probs": PI, "correct": CORRECT, "false_positive": 0.1, "false_negative": 0.2,
        "gamma": 0.1}),
    "check_group_update": (theorems.check_group_update,
                           {"problem": BINARY, "method": "grpo", "group_size": 4}),
    "check_no_signal_probability": (theorems.check_no_signal_probability,
                                    {"probs": PI, "correct": CORRECT, "group_size": 4}),
    "check_beneficial_error": (theorems.check_beneficial_error,
                               {"probs": PI, "reward_gt": R_GT, "reward_rm": R_RM, "target": 0.5}),
    "check_preference_metrics": (theorems.check_preference_metrics,
                                 {"probs": PI, "reward_rm": R_RM, "reward_gt": R_GT}),
    "beneficial_error_instance": (rewards.beneficial_error_instance, {"star_prob": 0.1}),
    "expected_update": (groups.expected_update,
                        {"problem": BINARY, "method": "grpo", "group_size": 4, "eps": 0.0}),
    "expected_flow": (groups.expected_flow, {"problem": BINARY, "t_max": 2.0, "group_size": 3}),
    "expected_time_to_gain": (groups.expected_time_to_gain,
                              {"problem": BINARY, "gamma": 0.2, "group_size": 3, "t_max": 100.0}),
    "group_weight": (groups.group_weight, {"p": 0.2, "group_size": 4, "eps": 0.0}),
    "success_iterates": (groups.success_iterates, {"p_ref": 0.2, "beta": 1.0, "steps": 5}),
    "check_grpo_success": (theorems.check_grpo_success,
                           {"probs": PI, "correct": CORRECT, "beta": 1.0, "steps": 3}),
    "no_signal_probability": (groups.no_signal_probability, {"p": 0.2, "group_size": 4}),
    "section_4_1_world": (stories.section_4_1_world,
                          {"seed": 0, "num_prompts": 2, "num_outputs": 4, "pairs_per_prompt": 4}),
    "verifier_phases": (stories.verifier_phases, {"rates": (0.0, 0.6), "horizon": 2.0}),
    "group_exponents": (stories.group_exponents,
                        {"family": "reward_scale", "num_points": 3, "decades": 1.0}),
    "load_dump": (evaluate.load_dump, {"source": {"m": np.eye(3), "g": np.eye(3)}, "gold": "g"}),
    "measure_dump": (evaluate.measure_dump, {"dump": DUMP, "resamples": 100, "seed": 1}),
    "predict": (evaluate.predict, {"probs": WORLD.probs, "models": WORLD.models,
                                   "gold": WORLD.gold, "gamma": 0.05}),
    "evaluate": (evaluate.evaluate, {"dump": DUMP, "resamples": 100, "flow_prompts": 2}),
    "kendall_tau": (evaluate.kendall_tau, {"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]}),
    "plot_variance_accuracy": (plotting.plot_variance_accuracy, {"measures": EVALUATION.measures}),
    "plot_prompt_variance": (plotting.plot_prompt_variance,
                             {"per_prompt": EVALUATION.prompt_variance}),
    "plot_teaching_times": (plotting.plot_teaching_times, {"teaching": EVALUATION.teaching}),
    "plot_convergence": (plotting.plot_convergence, {"errors": {
        "K": np.array([4, 8, 16]), "accuracy": np.array([0.1, 0.07, 0.05])}}),
    "plot_verifier_phases": (plotting.plot_verifier_phases,
                             {"phases": stories.verifier_phases(rates=(0.0, 0.6), horizon=2.0)}),
    "plot_group_exponents": (plotting.plot_group_exponents, {"studies": [stories.group_exponents(
        "reward_scale", num_points=3, decades=1.0)]}),
    "beneficial_errors": (stories.beneficial_errors,
                          {"star_probs": (0.15,), "target": 0.9, "horizon": 50.0, "step": 0.5}),
    "plot_beneficial_errors": (plotting.plot_beneficial_errors, {"study": stories.beneficial_errors(
        (0.15,), horizon=50.0, step=0.5)}),
}  # fmt: skip

# discrete steps (theory_sim.steps)
SHARED = steps.shared_token_problem(4, 2, 0.2)
SMALL_STEPS = {
    "lengths": (4, 5, 6),
    "successes": (0.2, 0.5),
    "sampled_lengths": (4,),
    "rates": (1.0, 100.0),
    "num_steps": 100,
    "num_runs": 4,
}
CALLS |= {
    "shared_token_problem": (steps.shared_token_problem,
                             {"length": 4, "vocab": 2, "success": 0.2, "target": [0, 0, 0, 1]}),
    "prefix_token_problem": (steps.prefix_token_problem,
                             {"length": 4, "vocab": 2, "success": 0.2, "target": [0, 0, 0, 1]}),
    "check_step_threshold_needs_sharing": (theorems.check_step_threshold_needs_sharing,
                                           {"length": 4, "success": 0.2, "high": 100.0}),
    "gradient_gap": (steps.gradient_gap, {"problem": SHARED, "params": SHARED.params0}),
    "critical_learning_rate": (steps.critical_learning_rate, {
        "problem": SHARED, "num_steps": 100, "method": "grpo", "group_size": 4, "eps": 0.0,
        "low": 0.1, "high": 1e3, "rtol": 1e-2}),
    "improvement_threshold": (steps.improvement_threshold, {
        "problem": SHARED, "method": "exact", "group_size": 4, "eps": 0.0, "high": 1e4,
        "rtol": 1e-6}),
    "predicted_improvement_threshold": (steps.predicted_improvement_threshold,
                                        {"length": 6, "success": 0.3}),
    "collapse_probability": (steps.collapse_probability, {
        "problem": SHARED, "learning_rates": [1.0, 50.0], "num_steps": 50,
        "key": jax.random.key(0), "method": "grpo", "num_samples": 4, "num_runs": 4}),
    "check_gradient_gap": (theorems.check_gradient_gap, {"length": 4, "success": 0.2}),
    "check_improvement_threshold": (theorems.check_improvement_threshold,
                                    {"length": 5, "success": 0.2, "method": "grpo",
                                     "group_size": 4}),
    "check_step_threshold": (theorems.check_step_threshold,
                             {"length": 5, "success": 0.2, "method": "exact", "num_steps": 100}),
    "check_step_scaling": (theorems.check_step_scaling,
                           {"short": 4, "long": 5, "success": 0.2, "num_steps": 100}),
    "step_thresholds": (stories.step_thresholds, SMALL_STEPS),
    "plot_step_thresholds": (plotting.plot_step_thresholds,
                             {"study": stories.step_thresholds(**SMALL_STEPS)}),
}  # fmt: skip

# Public callables the garbage test does not call, each with the reason.
EXEMPT = {
    # result records: built by theory_sim's functions, which validate what goes into them
    **dict.fromkeys(
        [
            "Check",
            "ExponentFit",
            "GainTime",
            "Trajectory",
            "OptimizationResult",
            "Tightest",
            "Proposition4Conditions",
            "Proposition4YBad",
            "Theorem5Models",
            "Theorem6Instance",
            "FlatLandscape",
            "Theorem5Story",
            "AccuracyVarianceGrid",
            "Remark1",
            "Section41",
            "SequenceTeachers",
            "TeacherStudent",
            "Theorem6Story",
            "PreferencePairs",
            "SweepConfig",
            "FamilySpec",
            "GroupExponents",
            "StepThreshold",
            "StepThresholds",
            "BeneficialErrors",
            "VerifierPhases",
            "GroupFlow",
            "Measure",
            "Teaching",
            "Evaluation",
            "Dump",
        ],
        "a result record built by theory_sim",
    ),
    # policies as constructors are covered by CALLS["Autoregressive"], ["LogLinear"] and
    # tests/test_neural.py's refusals; their methods by METHODS above
    "Tabular": "takes no arguments",
    "MLP": "constructor refusals in tests/test_neural.py",
    "ScaledMLP": "constructor refusals in tests/test_remark1.py",
    "Transformer": "constructor refusals in tests/test_neural.py",
    "Neural": "constructor refusals in tests/test_neural.py",
    # minutes per call even at small sizes, or a whole directory of files
    "search_tightness": "a search (seconds per call); its arguments in tests/test_tightness.py",
    "tightness_search": "a search over every claim; its arguments in tests/test_tightness.py",
    "recheck": "rebuilds a searched instance; its refusals in tests/test_tightness.py",
    "remark_1": "solves 35 to 70 flows per network shape (seconds a call); its refusals in "
    "tests/test_remark1.py",
    "run_sweep": "writes a directory; its refusals in tests/test_sweep.py",
    "write_report": "writes a directory (a garbage string would become one); its refusals in "
    "tests/test_evaluate.py",
    "load_config": "reads a file; its refusals in tests/test_sweep.py",
    "load_results": "reads a directory; its refusals in tests/test_sweep.py",
    "cache_directory": "takes no arguments",
    "enable_compilation_cache": "changes the process's JAX configuration",
    "sample_verdicts": "a traceable kernel (jit, vmap), unchecked by design; noisy_verifier and "
    "estimate_gradient(verifier=...) check the rates",
}

GARBAGE = [
    None,
    "text",
    object(),
    float("nan"),
    float("inf"),
    -float("inf"),
    -1,
    -0.5,
    0,
    1e300,
    [],
    np.zeros((2, 2, 2)),
    np.array([np.nan, 0.5]),
    np.full(4, np.inf),
    1j,
]
garbage = st.sampled_from(GARBAGE) | hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
)


def _has_nan(result) -> bool:
    if result is None:  # an absent optional result (Trajectory.jacobian), not a NaN
        return False
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    if isinstance(result, dict):
        return any(_has_nan(v) for v in result.values())
    if isinstance(result, list | tuple):
        return any(_has_nan(v) for v in result)
    try:
        array = np.asarray(result, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(np.isnan(array).any())


def _public_callables() -> dict[str, object]:
    """Every public callable of theory_sim's modules (their ``__all__``) and every public method
    of the policy classes, by name."""
    found = {}
    for module in (ts, rewards, theorems, training, bradley_terry, metrics, policies, stories,
                   flow, sweep, cache, plotting, estimators, groups, evaluate, steps):  # fmt: skip
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and not (isinstance(value, type) and issubclass(value, Exception)):
                found[name] = value
    for cls in (ts.Tabular, ts.Autoregressive, ts.LogLinear, ts.MLP, ts.Transformer, ts.ScaledMLP):
        for name, value in vars(cls).items():
            if callable(value) and not name.startswith("_"):
                found[f"{cls.__name__}.{name}"] = value
    return found


# methods that take only what their policy's own functions pass inside the solvers (traced
# arrays of the right shape) or nothing a user chooses; they are not an input boundary.
# check_params validates an argument on a caller's behalf, naming it by the caller's `name`.
PLUMBING = {
    "check_params",
    "log_probs", "relative_log_probs", "log_params", "prefix_log_marginals", "num_outputs",
    "num_prompts", "squeeze",
    "unsqueeze", "tree_flatten", "tree_unflatten", "unflatten", "logit_table", "model",
    "sequences",
}  # fmt: skip


def test_every_public_callable_is_covered():
    """A public function or method the garbage test does not call must be exempt, with a
    reason; adding one to a module's __all__ without either fails here."""
    uncovered = []
    for name, value in _public_callables().items():
        method = name.split(".")[-1]
        called = any(value is f or getattr(f, "__func__", None) is value for f, _ in CALLS.values())
        if not (called or name in CALLS or name in EXEMPT or method in PLUMBING):
            uncovered.append(name)
    assert uncovered == []


# stories and sweeps run whole computations per call: fewer examples
SLOW = {"flat_landscape", "theorem_5_story", "accuracy_variance_grid", "theorem_6_story",
        "teacher_student", "sequence_teachers", "run_cells", "build_cell",
        "section_4_1", "group_exponents", "verifier_phases", "evaluate",
        "plot_group_exponents", "beneficial_errors", "step_thresholds", "plot_step_thresholds",
        "check_step_scaling", "check_step_threshold", "critical_learning_rate",
        "check_step_threshold_needs_sharing"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=25)
@given(data=st.data())
def test_garbage_is_refused_or_harmless(name, data):
    if name in SLOW and data.draw(st.integers(0, 4), label="thin") != 0:
        return  # a fifth of the examples
    function, valid = CALLS[name]
    argument = data.draw(st.sampled_from(sorted(valid)), label="argument")
    value = data.draw(garbage, label="garbage")
    try:
        result = function(**(valid | {argument: value}))
        if isinstance(result, matplotlib.figure.Figure):
            matplotlib.pyplot.close(result)
    except (ValueError, TypeError) as error:
        # named in backticks, or as a word of a condition that fails ("V_G(0) + gamma")
        named = f"`{argument}" in str(error) or re.search(rf"\b{argument}\b", str(error))
        assert named, f"{type(error).__name__} without `{argument}`: {error}"
        return
    assert not _has_nan(result), f"{name}({argument}={value!r}) returned NaN: {result!r}"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_valid_calls_are_valid(name):
    function, valid = CALLS[name]
    result = function(**valid)
    if isinstance(result, matplotlib.figure.Figure):
        matplotlib.pyplot.close(result)  # a worker warns (an error here) past 20 open figures
    assert not _has_nan(result)
