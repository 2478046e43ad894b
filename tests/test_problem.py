import numpy as np
import pytest

import theory_sim as ts


def test_defaults_and_shapes():
    problem = ts.Problem(np.zeros((2, 3)), np.ones((2, 3)))
    assert (problem.num_prompts, problem.num_outputs) == (2, 3)
    np.testing.assert_array_equal(problem.reward_gt, problem.reward_rm)
    assert float(problem.kl_coef) == 0.0
    single = ts.Problem([0.0, 1.0], [1.0, 0.0], [0.0, 1.0], kl_coef=0.5)
    assert single.single_prompt and single.num_prompts == 1
    assert "kl_coef=0.5" in repr(single)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward_rm": np.zeros((3,))}, r"`reward_rm` must have shape \(2, 3\)"),
        ({"reward_gt": np.zeros((2, 4))}, r"`reward_gt` must have shape \(2, 3\)"),
        ({"init_logits": np.array([[0.0, np.nan, 0.0]] * 2)}, "`init_logits` must be finite"),
        ({"reward_rm": np.full((2, 3), np.inf)}, "`reward_rm` must be finite"),
        ({"kl_coef": -0.1}, "`kl_coef` must be >= 0"),
        ({"kl_coef": float("nan")}, "`kl_coef` must be finite"),
        ({"kl_coef": "0.1"}, "`kl_coef` must be a real"),
        ({"init_logits": np.zeros((2, 3), dtype=np.int64)}, "`init_logits` must have a floating"),
        ({"reward_rm": np.zeros((2, 3), dtype=np.complex128)}, "`reward_rm` must have a floating"),
        ({"reward_gt": np.zeros((2, 3), dtype=bool)}, "`reward_gt` must have a floating"),
        ({"init_logits": np.zeros((2, 3, 1))}, "`init_logits` must be 1-D or 2-D"),
        ({"init_logits": np.zeros((2, 1)), "reward_rm": np.zeros((2, 1))}, "at least 2 outputs"),
    ],
)
def test_bad_input(kwargs, message):
    args = {"init_logits": np.zeros((2, 3)), "reward_rm": np.zeros((2, 3))} | kwargs
    with pytest.raises(ValueError, match=message):
        ts.Problem(**args)


def test_problem_is_a_pytree_with_static_policy():
    import jax

    problem = ts.Problem(np.zeros((2, 3)), np.ones((2, 3)), kl_coef=0.3)
    leaves, treedef = jax.tree_util.tree_flatten(problem)
    assert len(leaves) == 5
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.policy == problem.policy and float(rebuilt.kl_coef) == 0.3
