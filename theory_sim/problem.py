"""The RLHF problem: a policy parameterisation, its initial parameters, two rewards and lambda.

All input validation happens here, once; the jitted code downstream assumes valid input.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from theory_sim._device import to_device
from theory_sim._validation import (
    _kind_error,
    as_float_array,
    check_fits,
    check_float_scalar,
    require_x64,
)
from theory_sim.policies import Tabular, _jit_log_probs

__all__ = ["Problem", "check_problem"]


@jax.tree_util.register_pytree_node_class
class Problem:
    """A KL-regularised RLHF problem over an enumerated output space (Sec. 2, arXiv 2503.15477).

    phi(theta) = mean_x [ E_{y~pi_theta(.|x)} r_RM(x, y) - lambda KL(pi_theta(.|x) || pi_0(.|x)) ]

    Prompts are uniform over the X rows, so each prompt's row of the gradient carries a factor
    1/X and every time scales with X, exactly as with |S| in the paper. The reference policy
    pi_0 is the initial policy.

    Args:
        init_logits: initial parameters of the policy. For the default tabular policy, logits of
            shape [X, Y], or [Y] for a single prompt (results then drop the prompt axis); for
            other parameterisations, see their ``check_params``.
        reward_rm: the proxy reward r_RM that is optimised, shape [X, Y] (or [Y]).
        reward_gt: the ground-truth reward r_G, same shape; defaults to ``reward_rm``.
        kl_coef: lambda >= 0, the KL coefficient.
        policy: the parameterisation (default :class:`~theory_sim.Tabular`).

    A Problem is a JAX pytree: its arrays (and the policy's, if any) are leaves.
    ``ref_log_probs`` holds log pi_0 [X, Y]. Jitted functions taking a Problem compile once per
    shape and are reused for every instance of that shape (including different ``kl_coef``).

    Examples:
        >>> import numpy as np
        >>> from theory_sim import Problem
        >>> problem = Problem(np.zeros(3), reward_rm=np.array([1.0, 0.0, -1.0]), kl_coef=0.1)
        >>> problem.num_prompts, problem.num_outputs
        (1, 3)
    """

    def __init__(
        self,
        init_logits: Any,
        reward_rm: Any,
        reward_gt: Any = None,
        kl_coef: float = 0.0,
        *,
        policy: Any = None,
    ):
        policy, single, params, rm, gt, lam = _validated(
            init_logits, reward_rm, reward_gt, kl_coef, policy
        )
        params0 = to_device(params)
        self._set(
            policy=policy,
            single_prompt=single,
            params0=params0,
            reward_rm=to_device(rm),
            reward_gt=to_device(gt),
            kl_coef=jnp.asarray(lam, dtype=jnp.float64),
            # log pi_0 is fixed for the problem's lifetime: computed once, not in every gradient.
            ref=_finite_ref(policy, params0, params),
        )

    @classmethod
    def _on_host(cls, init_logits, reward_rm, reward_gt, *, policy) -> Problem:
        """The same validated problem with numpy leaves (kl_coef 0): for code that stacks many
        problems on the host and moves the batch in one transfer (the sweep), where putting
        each problem's arrays on the device first costs more than building it."""
        policy, single, params, rm, gt, lam = _validated(
            init_logits, reward_rm, reward_gt, 0.0, policy
        )
        obj = object.__new__(cls)
        ref = np.asarray(_finite_ref(policy, params, params))
        obj._set(
            policy=policy,
            single_prompt=single,
            params0=params,
            reward_rm=rm,
            reward_gt=gt,
            kl_coef=np.float64(lam),
            ref=ref,
        )
        return obj

    def _set(self, *, policy, single_prompt, params0, reward_rm, reward_gt, kl_coef, ref):
        self.policy = policy
        self.single_prompt = single_prompt
        self.params0 = params0
        self.reward_rm = reward_rm
        self.reward_gt = reward_gt
        self.kl_coef = kl_coef
        self.ref_log_probs = ref

    # pytree protocol: unflattening bypasses validation (leaves may be tracers inside jit).
    def tree_flatten(self):
        children = (
            self.policy,
            self.params0,
            self.reward_rm,
            self.reward_gt,
            self.kl_coef,
            self.ref_log_probs,
        )
        return children, self.single_prompt

    @classmethod
    def tree_unflatten(cls, single_prompt, children):
        obj = object.__new__(cls)
        policy, params0, reward_rm, reward_gt, kl_coef, ref = children
        obj._set(
            policy=policy,
            single_prompt=single_prompt,
            params0=params0,
            reward_rm=reward_rm,
            reward_gt=reward_gt,
            kl_coef=kl_coef,
            ref=ref,
        )
        return obj

    @property
    def num_prompts(self) -> int:
        """X, the number of prompts (|S| in the paper)."""
        return int(self.reward_rm.shape[0])

    @property
    def num_outputs(self) -> int:
        """Y, the size of the enumerated output space (n = |Y| in the paper)."""
        return int(self.reward_rm.shape[1])

    def log_probs(self, params: jax.Array) -> jax.Array:
        """log pi_theta(y|x) as a [X, Y] table (internal layout, always with a prompt axis)."""
        return self.policy.log_probs(params)

    def with_kl_coef(self, kl_coef: float) -> Problem:
        """The same problem with another KL coefficient (validated)."""
        lam = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
        leaves, treedef = jax.tree_util.tree_flatten(self)
        out = jax.tree_util.tree_unflatten(treedef, leaves)
        out.kl_coef = jnp.asarray(lam, dtype=jnp.float64)
        return out

    def check_reward(self, name: str, reward: Any) -> jax.Array:
        """Validate a reward table against this problem and return it as [X, Y].

        A one-prompt problem accepts [Y] and its internal [1, Y] layout alike.
        """
        expected = (
            (self.num_outputs,) if self.single_prompt else (self.num_prompts, self.num_outputs)
        )
        if self.single_prompt and np.shape(reward) == (1, self.num_outputs):
            reward = reward[0]
        arr = _check_reward(name, reward, expected)
        return to_device(arr.reshape(self.num_prompts, self.num_outputs))

    def check_params(self, name: str, params: Any) -> jax.Array:
        """Validate user parameters shaped like ``init_logits`` and return the internal layout."""
        arr, single = self.policy.check_params(name, params)
        if arr.shape != self.params0.shape or single != self.single_prompt:
            raise ValueError(
                f"`{name}` must have shape {self.user_params_shape} to match "
                f"`init_logits`; got {np.shape(params)}."
            )
        return to_device(arr)

    def internal_params(self, params: jax.Array) -> jax.Array:
        """The inverse of :meth:`user_params` (no checks; leading axes such as time are kept)."""
        return self.policy.unsqueeze(params) if self.single_prompt else params

    @property
    def user_params_shape(self) -> tuple[int, ...]:
        """The shape of ``init_logits`` as the user gave it."""
        return tuple(self.user_params(self.params0).shape)

    def user_params(self, params: jax.Array) -> jax.Array:
        """Internal parameters (with leading axes, e.g. time) in the user's layout."""
        return self.policy.squeeze(params) if self.single_prompt else params

    def external(self, table: jax.Array) -> jax.Array:
        """Drop the prompt axis (the second to last) of a [..., X, Y] table for one prompt."""
        return table[..., 0, :] if self.single_prompt else table

    def __repr__(self) -> str:
        return (
            f"Problem(policy={self.policy!r}, prompts={self.num_prompts}, "
            f"outputs={self.num_outputs}, kl_coef={float(self.kl_coef):g})"
        )


def _validated(init_logits, reward_rm, reward_gt, kl_coef, policy):
    """The checked inputs of a :class:`Problem`: (policy, single, params, r_RM [X, Y],
    r_G [X, Y], lambda), host arrays."""
    require_x64()
    policy = Tabular() if policy is None else policy
    if not all(callable(getattr(policy, m, None)) for m in ("check_params", "log_probs")):
        raise TypeError(
            "`policy` must be a policy object (Tabular, Autoregressive, LogLinear, Transformer, "
            f"MLP, Neural) or None; got {policy!r}."
        )
    params, single = policy.check_params("init_logits", init_logits)
    num_outputs = policy.num_outputs(params)
    num_prompts = policy.num_prompts(params)
    check_fits(num_prompts, num_outputs, params.size, "this problem")
    expected = (num_outputs,) if single else (num_prompts, num_outputs)
    rm = _check_reward("reward_rm", reward_rm, expected)
    gt = rm if reward_gt is None else _check_reward("reward_gt", reward_gt, expected)
    lam = check_float_scalar("kl_coef", kl_coef, nonnegative=True)
    shape = (num_prompts, num_outputs)
    return policy, bool(single), params, rm.reshape(shape), gt.reshape(shape), lam


def _finite_ref(policy, params, host_params) -> jax.Array:
    """log pi_0 [X, Y] of ``params``, refused when some log-probability overflows to -inf.

    Tabular logits are normalised on the host (the log-softmax of Tabular.log_probs, in numpy):
    an eager JAX call would compile a program for each new shape."""
    if isinstance(policy, Tabular):
        logits = np.asarray(host_params, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # logits ~1e308 apart: -inf, below
            shifted = logits - logits.max(axis=-1, keepdims=True)
            ref = to_device(shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)))
    else:
        ref = _jit_log_probs(policy, params)
    if not np.all(np.isfinite(np.asarray(ref))):
        raise ValueError(
            "`init_logits` must give every output a positive probability; these logits are so "
            "far apart that some log-probabilities overflow to -inf (spread "
            f"{float(np.max(host_params)) - float(np.min(host_params)):.3g})."
        )
    return ref


def _check_reward(name: str, reward: Any, expected: tuple[int, ...]) -> np.ndarray:
    arr = as_float_array(name, reward)
    if arr.shape != expected:
        raise ValueError(
            f"`{name}` must have shape {expected} to match `init_logits`; got {arr.shape}."
        )
    return arr


def check_problem(value: Any, name: str = "problem") -> Problem:
    """Return ``value`` if it is a :class:`Problem`, else raise a TypeError naming ``name``."""
    if not isinstance(value, Problem):
        raise _kind_error(name, "a theory_sim.Problem", value)
    return value
