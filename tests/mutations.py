"""Targeted mutations of every bound's constants, exponents and variances.

``python tests/mutations.py [TEST ...]`` applies each mutation below alone to a copy of the
repository, runs the given tests there (default: the mutant's own list where it has one, else
tests/test_constants.py and tests/test_tightness.py) and prints KILLED or SURVIVED per mutant.
Each mutation is one kind a wrong transcription of the paper could be: a constant multiplied or
divided by 2, an exponent changed, the wrong variance (r_G for r_RM, one prompt's for the mean
over prompts), a lost 1/|Y+|, a loosened verdict tolerance, a Jacobian held at theta_0, the wrong
state handed to the implicit solver. ``SKIP=N``
starts at the N-th mutant. mutmut (``pip install mutmut``; ``[tool.mutmut]`` in pyproject.toml)
mutates every line instead, at about a mutant per 5 s here.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
MUTANTS = [
    (
        "theory_sim/theorems/flat.py",
        "return 2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0)",
        "return 1.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0)",
        "Prop 3 constant / 2",
    ),
    (
        "theory_sim/theorems/flat.py",
        "return 2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0)",
        "return 4.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0)",
        "Prop 3 constant x 2",
    ),
    (
        "theory_sim/theorems/flat.py",
        "return 2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / math.sqrt(var0)",
        "return 2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) / var0 ** (1.0 / 3.0)",
        "Prop 3 exponent -1/2 -> -1/3",
    ),
    (
        "theory_sim/theorems/_common.py",
        "return float(_host_reward_variance(probs, np.asarray(problem.reward_rm)[prompt]))",
        "return float(_host_reward_variance(probs, np.asarray(problem.reward_gt)[prompt]))",
        "Prop 3 variance of r_G instead of r_RM",
    ),
    (
        "theory_sim/theorems/flat.py",
        "return factor / (8.0 * length**2) / jacobian / jacobian * mean_var0 ** (-1.0 / 3.0)",
        "return factor / (4.0 * length**2) / jacobian / jacobian * mean_var0 ** (-1.0 / 3.0)",
        "Thm 4 constant 8 -> 4",
    ),
    (
        "theory_sim/theorems/flat.py",
        "return factor / (8.0 * length**2) / jacobian / jacobian * mean_var0 ** (-1.0 / 3.0)",
        "return factor / (8.0 * length**2) / jacobian / jacobian * mean_var0 ** (-1.0 / 2.0)",
        "Thm 4 exponent -1/3 -> -1/2",
    ),
    (
        "theory_sim/theorems/flat.py",
        "factor = -math.expm1(-gamma / 9.0)",
        "factor = -math.expm1(-gamma / 4.5)",
        "Thm 4 gamma/9 -> gamma/4.5",
    ),
    (
        "theory_sim/theorems/flat.py",
        "mean_var0 = float(var0.mean())\n    path = jacobian_path(problem, measured",
        "mean_var0 = float(var0[prompt])\n    path = jacobian_path(problem, measured",
        "Thm 4 own prompt's variance instead of the mean",
    ),
    (
        "theory_sim/theorems/flat.py",
        "return 6.0 * big_m ** (1.0 / 3.0) * length * jacobian * xp.cbrt(variance)",
        "return 3.0 * big_m ** (1.0 / 3.0) * length * jacobian * xp.cbrt(variance)",
        "Prop 2 constant 6 -> 3",
    ),
    (
        "theory_sim/theorems/flat.py",
        "return 6.0 * big_m ** (1.0 / 3.0) * length * jacobian * xp.cbrt(variance)",
        "return 6.0 * big_m ** (1.0 / 3.0) * length * jacobian * xp.sqrt(variance)",
        "Prop 2 exponent 1/3 -> 1/2",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "rate = (4.0 + 2.0 * lam * float(-log_p0.min())) / problem.num_prompts",
        "rate = (8.0 + 2.0 * lam * float(-log_p0.min())) / problem.num_prompts",
        "Lemma 10 rate 4 -> 8",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "rate = (4.0 + 2.0 * lam * float(-log_p0.min())) / problem.num_prompts",
        "rate = (4.0 + 1.0 * lam * float(-log_p0.min())) / problem.num_prompts",
        "Lemma 10 lambda term / 2",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "4.0 * num_prompts * len(members) / ((1.0 - rho) * delta) * (1.0 / mass - 1.0 / rho)",
        "2.0 * num_prompts * len(members) / ((1.0 - rho) * delta) * (1.0 / mass - 1.0 / rho)",
        "Prop 4 constant 4 -> 2",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "growth = 4.0 + 2.0 * lam * log_inv",
        "growth = 2.0 + 2.0 * lam * log_inv",
        "Prop 4 (Y_bad) Lemma 10's 4 -> 2",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "growth = 4.0 + 2.0 * lam * log_inv",
        "growth = 4.0 + 1.0 * lam * log_inv",
        "Prop 4 (Y_bad) Lemma 10's 2 lambda -> lambda",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "kl_part = lam * (log_inv + 1.0 / math.e)",
        "kl_part = lam * (2.0 * log_inv + 1.0 / math.e)",
        "Prop 4 (Y_bad) KL term L -> 2L",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "(beta * q * q + kl_part) / p0",
        "(0.5 * beta * q * q + kl_part) / p0",
        "Prop 4 (Y_bad) Y_bad's own term / 2",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "(1.0 - rho) * (delta - q * beta) / m",
        "(1.0 - rho) * (delta - 0.5 * q * beta) / m",
        "Prop 4 (Y_bad) Y_bad's pull on delta / 2",
    ),
    (
        "theory_sim/rewards/counterexamples.py",
        "fast_time_bound=4.0 * num_prompts * (1.0 - rho) ** -4 * (1.0 / p_g - 1.0 / rho),",
        "fast_time_bound=2.0 * num_prompts * (1.0 - rho) ** -4 * (1.0 / p_g - 1.0 / rho),",
        "Thm 5 fast constant 4 -> 2",
    ),
    (
        "theory_sim/rewards/counterexamples.py",
        "fast_time_bound=4.0 * num_prompts * (1.0 - rho) ** -4 * (1.0 / p_g - 1.0 / rho),",
        "fast_time_bound=4.0 * num_prompts * (1.0 - rho) ** -3 * (1.0 / p_g - 1.0 / rho),",
        "Thm 5 fast exponent -4 -> -3",
    ),
    (
        "theory_sim/rewards/counterexamples.py",
        "slow_time_bound=2.0 * num_prompts * (-math.expm1(-gamma / 2.0)) * horizon,",
        "slow_time_bound=4.0 * num_prompts * (-math.expm1(-gamma / 2.0)) * horizon,",
        "Thm 5 slow constant 2 -> 4",
    ),
    (
        "theory_sim/rewards/counterexamples.py",
        "return 2.0 * num_prompts * (1.0 - r) ** -3 * (1.0 / c - 1.0 / r)",
        "return 1.0 * num_prompts * (1.0 - r) ** -3 * (1.0 / c - 1.0 / r)",
        "Thm 6 fast constant 2 -> 1",
    ),
    (
        "theory_sim/theorems/tightness.py",
        "return l1, var**0.5",
        "return l1, var**0.5 / 2",
        "Lemma 8 bound / 2 (search)",
    ),
    # the kinds a mutation audit found unnoticed: |Y+| > 1, verdict tolerances, a Jacobian that
    # moves, the implicit hand-over of t_gamma (each with the tests that must notice it)
    (
        "theory_sim/theorems/teacher.py",
        "return (1.0 - rho) * (delta - q * beta) / m - (beta * q * q + kl_part) / p0",
        "return (1.0 - rho) * (delta - q * beta) - (beta * q * q + kl_part) / p0",
        "Prop 4 (Y_bad) rate without 1/|Y+|",
    ),
    (
        "theory_sim/theorems/teacher.py",
        "kl_limit = (1.0 - rho) * delta * p0 / (m * (log_inv + 1.0 / math.e))",
        "kl_limit = (1.0 - rho) * delta * p0 / (log_inv + 1.0 / math.e)",
        "Prop 4 (Y_bad) lambda limit without 1/|Y+|",
    ),
    (
        "theory_sim/theorems/_common.py",
        "TIME_RTOL = 1e-6",
        "TIME_RTOL = 1e-1",
        "time rows' tolerance x 1e5",
    ),
    (
        "theory_sim/theorems/_common.py",
        "RATIO_RTOL = 1e-6",
        "RATIO_RTOL = 1e-4",
        "ratio rows' tolerance x 100",
    ),
    (
        "theory_sim/theorems/dynamics.py",
        "LEMMA_9_RTOL = 2e-5",
        "LEMMA_9_RTOL = 2e-3",
        "Lemma 9's tolerance x 100",
    ),
    (
        "theory_sim/theorems/dynamics.py",
        "MONOTONE_ATOL = 1e-9",
        "MONOTONE_ATOL = 1e-6",
        "Prop 4 (proof) tolerance x 1000",
    ),
    (
        "theory_sim/theorems/accuracy.py",
        "    exact = 1e-12\n",
        "    exact = 1e-9\n",
        "Thm 5 accuracy tolerance x 1000",
    ),
    (
        "theory_sim/theorems/flat.py",
        "jac = float(path.max())",
        "jac = float(path[0])",
        "Thm 4 J_0 for the sup of J over [0, t_gamma]",
        ["tests/test_neural.py"],
    ),
    (
        "theory_sim/theorems/flat.py",
        "jac = np.array([problem.policy.jacobian_norm(p, prompt) for p in np.asarray(params)])",
        "jac = np.full(len(save), problem.policy.jacobian_norm(problem.params0, prompt))",
        "Prop 2 J at theta_0 at every time",
        ["tests/test_neural.py"],
    ),
    (
        "theory_sim/flow/crossing.py",
        't0, w, guard = out["t_end"], out["w_end"], out["guard"]',
        't0, guard = out["t_end"], out["guard"]',
        "time_to_gain hands the segment's starting state to the implicit solver",
        ["tests/test_long_horizons.py", "tests/test_flow.py"],
    ),
    (
        "theory_sim/metrics.py",
        "harmless = r < _host_expected_reward(p, r) if harm_aware",
        "harmless = r <= _host_expected_reward(p, r) if harm_aware",
        "HAcc: a rejected output at the mean counted harmless",
        ["tests/test_metrics.py"],
    ),
    (
        "theory_sim/metrics.py",
        "harmless = r < _host_expected_reward(p, r) if harm_aware",
        "harmless = r < np.mean(r) if harm_aware",
        "HAcc: the uniform mean for E_pi r_RM",
        ["tests/test_metrics.py"],
    ),
    (
        "theory_sim/metrics.py",
        "        w = p / p.max() if weighted else np.ones_like(p)",
        "        w = np.sqrt(p / p.max()) if weighted else np.ones_like(p)",
        "Acc-W: pair weight sqrt(pi(c) pi(r))",
        ["tests/test_metrics.py"],
    ),
    (
        "theory_sim/metrics.py",
        "    order = np.lexsort((-rm, gt))",
        "    order = np.lexsort((rm, gt))",
        "Acc-W: r_G ties counted as pairs (ascending r_RM inside a level)",
        ["tests/test_metrics.py"],
    ),
    (
        "theory_sim/theorems/verifiable.py",
        '"<=", bool(times[0] < times[1] * (1.0 - TIME_RTOL)), details,',
        '"<=", bool(times[0] <= times[1] * (1.0 + TIME_RTOL)), details,',
        "beneficial error: not faster counted as faster",
        ["tests/test_groups.py"],
    ),
    (
        "theory_sim/theorems/verifiable.py",
        "PAIR_ATOL = 1e-12",
        "PAIR_ATOL = 1e-8",
        "preference metrics tolerance x 10^4",
        ["tests/test_groups.py"],
    ),
    (
        "theory_sim/steps.py",
        "- log_sig(-(c - (length - 3) * x))",
        "- log_sig(-(c - (length - 2) * x))",
        "one-step threshold: last position moves by (L - 2) x",
        ["tests/test_steps.py"],
    ),
    (
        "theory_sim/steps.py",
        "return root / (2.0 * success * (1.0 - q))",
        "return root / (success * (1.0 - q))",
        "one-step threshold: x = s p (1 - q), the 2 lost",
        ["tests/test_steps.py"],
    ),
    (
        "theory_sim/steps.py",
        "probs * r / p - probs * (1.0 - r) / (1.0 - p)",
        "probs * r / p - probs * (1.0 - r) / p",
        "Gradient Gap: the failures' mean divided by p",
        ["tests/test_steps.py"],
    ),
    (
        "theory_sim/theorems/verifiable.py",
        "    bound /= scale\n",
        "",
        "GRPO's one-step threshold without 1 / w(p)",
        ["tests/test_steps.py"],
    ),
    (
        "theory_sim/theorems/verifiable.py",
        "CONVERGED, COLLAPSED = 0.99, 0.01",
        "CONVERGED, COLLAPSED = 0.5, 0.5",
        "step threshold verdicts loosened",
        ["tests/test_steps.py"],
    ),
    (
        "theory_sim/theorems/verifiable.py",
        "STEP_RTOL = 1e-8",
        "STEP_RTOL = 1e-3",
        "one-step threshold tolerance loosened",
        ["tests/test_steps.py"],
    ),
]


def run(work: Path, tests: list[str]) -> tuple[int, str]:
    """pytest in ``work`` (its theory_sim shadows the installed one: the working directory comes
    first on sys.path under ``python -m``); its exit code and last line."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        cwd=work,
        capture_output=True,
        text=True,
    )
    out = done.stdout.strip()
    return done.returncode, out.splitlines()[-1] if out else done.stderr[-300:]


def main() -> int:
    skip = int(os.environ.get("SKIP", "0"))
    tests = sys.argv[1:] or ["tests/test_constants.py", "tests/test_tightness.py"]
    survived = 0
    for path, old, new, name, *own in MUTANTS[skip:]:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "repo"
            ignore = shutil.ignore_patterns(".git", ".venv*", "mutants", "__pycache__")
            shutil.copytree(SRC, work, ignore=ignore)
            source = work / path
            text = source.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"{name}: the text to mutate is not found once in {path}")
            source.write_text(text.replace(old, new))
            code, last = run(work, sys.argv[1:] or (own[0] if own else tests))
        survived += code == 0
        print(f"{'KILLED  ' if code else 'SURVIVED'} {name}: {last}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
