"""Neural policies: logits non-linear in theta, so the Jacobian J of Theorem 4 moves along the flow.

Every other parameterisation here has logits linear in theta and a constant J. Theorem 4 of
arXiv 2503.15477 is stated for any autoregressive policy with J_{t_gamma} the sup of
||d f_theta(t)(x, y_<l) / d theta||_2 over prompts, prefixes and t in [0, t_gamma], and its Remark 1
asks whether, for neural parameterisations, J grows enough to offset a small reward variance. With
the outputs enumerated, theory_sim can answer exactly.

* :class:`Neural` makes a policy of any JAX function ``logits_fn(params, prompt, prefix, level)
  -> [V]`` (params any pytree of float arrays; ``prefix`` an int array whose first ``level``
  entries are the tokens so far).
* :class:`Transformer`: a small pre-norm causal transformer over token sequences (learned token,
  position and prompt embeddings), whose next-token logits for every prefix of every one of the
  V^L sequences come from one batched pass over the V^(L-1) longest prefixes (a causal model's
  output at position l depends on the first l tokens only, so each shorter prefix is read off the
  first longest prefix that extends it).
* :class:`MLP`: logits(x, y) = mlp(features[x, y]), the non-linear counterpart of LogLinear.

They plug into the policy protocol of :mod:`theory_sim.policies` (a log-probability table
[X, Y]), so the flow, t_gamma, metrics, checks and training work unchanged. The flow moves one
flat float64 vector theta (``policy.params`` is its seeded initial value): the pytree of float
arrays is raveled in a fixed order and unraveled inside ``log_probs``.

Why Equinox (DESIGN: prefer the well-kept library of the field, and pure pytrees throughout). An
Equinox model is itself a pytree, like every other object in theory_sim; ``eqx.partition``
splits it into the float arrays the flow moves and the static rest, and ``eqx.combine`` puts them
back, with no separate state or ``apply`` step. So a model composes directly with diffrax (by the
same author and with the same pytree conventions), ``jax.vmap`` over prompts and prefixes,
``jax.jvp``/``jax.vjp`` for the Jacobian and :func:`~theory_sim.cache.traced_once`. Flax's linen
keeps parameters apart from the module and its NNX holds mutable state: either would need an
adapter where Equinox needs none.

Initialisation is seeded (``key``, an int or a JAX key) and in float64; ``init_scale``
multiplies the initial parameter vector (the scale Remark 1's question depends on).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory_sim._device import to_device
from theory_sim._validation import (
    as_float_array,
    check_allocation,
    check_fits,
    check_index,
    check_int,
)
from theory_sim.cache import traced_once
from theory_sim.policies._common import _strictly_positive, _VectorParams
from theory_sim.policies.autoregressive import Autoregressive

__all__ = ["MLP", "Neural", "Transformer"]

# start_at for neural policies: L-BFGS on sum_x KL(probs(.|x) || pi_theta(.|x)) until every
# log-probability is within FIT_TOL of its target (the residual start_at reports) or FIT_STEPS.
FIT_TOL = 1e-6
FIT_STEPS = 2000
# Prefixes per batch when Jacobians are formed (V x n floats each): bounds their memory.
_JACOBIAN_BATCH = 64


def _key(key) -> jax.Array:
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    raise TypeError(f"`key` must be an int seed or a JAX key; got {type(key).__name__}.")


def _to_float64(tree):
    return jax.tree.map(
        lambda a: jnp.asarray(a, jnp.float64) if eqx.is_inexact_array(a) else a, tree
    )


def _prefix_rows(vocab_size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """All P prefixes in the level order of :class:`Autoregressive`: tokens [P, max(L-1, 1)]
    (padded with 0) and lengths [P]."""
    width = max(length - 1, 1)
    rows, levels = [], []
    for level in range(length):
        grid = np.indices((vocab_size,) * level).reshape(level, -1).T if level else np.zeros((1, 0))
        for prefix in grid.astype(np.int32):
            rows.append(np.pad(prefix, (0, width - level)))
            levels.append(level)
    return np.asarray(rows, np.int32).reshape(-1, width), np.asarray(levels, np.int32)


class Neural(_VectorParams):
    """A policy of any JAX function of (params, prompt, prefix) giving next-token logits.

    pi(y|x) = prod_{l=1..L} softmax(logits_fn(params, x, y_<l, l - 1))[y_l]

    Args:
        logits_fn: ``logits_fn(params, prompt, prefix, level) -> [V]``; ``prompt`` an int
            scalar, ``prefix`` an int array [max(L - 1, 1)] whose first ``level`` entries are the
            tokens y_1..y_level (the rest 0), ``level`` an int scalar in [0, L). It is vmapped
            over every (prompt, prefix), so it must be traceable (jnp operations, no Python
            control flow on the arguments).
        params: the initial parameters, any pytree of float arrays (an Equinox model filtered
            with ``eqx.filter(model, eqx.is_inexact_array)``, a dict of arrays, ...).
        vocab_size, length: V and L (Y = V^L sequences, in :class:`Autoregressive`'s order).
        num_prompts: X; None (the default) for one prompt whose results drop the prompt axis
            (rewards [Y]), like a one-prompt table for the other parameterisations.

    ``policy.params`` is the flat float64 vector theta the flow moves;
    ``policy.unflatten(theta)`` gives the pytree back.

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> import theory_sim as ts
        >>> def logits_fn(p, prompt, prefix, level):   # a bigram model: last token -> logits
        ...     last = jnp.where(level > 0, prefix[jnp.maximum(level - 1, 0)], 2)
        ...     return p["table"][prompt, last]
        >>> policy = ts.Neural(logits_fn, {"table": np.zeros((1, 3, 2))}, vocab_size=2, length=3)
        >>> problem = ts.Problem(policy.params, np.linspace(-1, 1, 8), policy=policy)
        >>> problem.num_outputs, policy.params.size      # 8 sequences, a 1 x 3 x 2 table
        (8, 6)
    """

    expressive = False
    jacobian_moves = True  # J_t depends on theta: Theorem 4 takes its sup along the flow

    def __init__(
        self,
        logits_fn: Callable,
        params,
        *,
        vocab_size: int,
        length: int,
        num_prompts: int | None = None,
    ):
        if not callable(logits_fn):
            raise TypeError(f"`logits_fn` must be callable; got {type(logits_fn).__name__}.")
        self._setup(params, vocab_size, length, num_prompts, logits_fn)

    # ------------------------------------------------------------------ construction helpers
    def _setup(self, params, vocab_size, length, num_prompts, logits_fn, extra=()):
        self.vocab_size = check_int("vocab_size", vocab_size, 1)
        self.length = check_int("length", length, 1)
        self.single_prompt = num_prompts is None
        self._num_prompts = 1 if num_prompts is None else check_int("num_prompts", num_prompts, 1)
        name = f"{type(self).__name__}(vocab_size={self.vocab_size}, length={self.length})"
        if self.length * math.log2(max(self.vocab_size, 1)) > 40:
            raise ValueError(
                f"{name} is too large to enumerate: V^L = 2^"
                f"{self.length * math.log2(self.vocab_size):.4g} sequences."
            )
        # refuse before anything of size V^L is built, with this model's own estimate
        check_allocation(f"{name} over {self._num_prompts} prompt(s)", self._pass_bytes())
        self._tree = Autoregressive(self.vocab_size, self.length)  # the prefix tree's layout
        leaves, treedef = jax.tree.flatten(params)
        if not leaves or not all(eqx.is_inexact_array_like(a) for a in leaves):
            raise ValueError("`params` must be a non-empty pytree of float arrays.")
        arrays = [np.asarray(a, np.float64) for a in leaves]
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise ValueError("`params` must be finite.")
        self._treedef = treedef
        self._shapes = tuple(a.shape for a in arrays)
        self._logits_fn = logits_fn
        self.params = np.concatenate([a.ravel() for a in arrays])
        self._spec = (type(self).__name__, self.vocab_size, self.length, self._num_prompts,
                      treedef, self._shapes, logits_fn, *extra)  # fmt: skip
        prefixes, levels = _prefix_rows(self.vocab_size, self.length)
        self._prefixes, self._levels = jnp.asarray(prefixes), jnp.asarray(levels)
        check_fits(self._num_prompts, self.num_sequences, self.params.size, repr(self))

    @property
    def _num_prefixes(self) -> int:
        v, length = self.vocab_size, self.length
        return length if v == 1 else (v**length - 1) // (v - 1)

    def _pass_bytes(self) -> float:
        """Estimated bytes of one gradient (forward and backward pass) of the logit table."""
        return 8.0 * 8 * self._num_prompts * self._num_prefixes * self.vocab_size

    # ------------------------------------------------------------------ pytree and hashing
    def __eq__(self, other):
        return type(other) is type(self) and other._spec == self._spec

    def __hash__(self):
        return hash(self._spec)

    # array attributes that are pytree leaves (an MLP's features): traced and vmapped like any
    # other leaf, so policies that differ only in them share compiled programs
    _leaves: tuple[str, ...] = ()

    def tree_flatten(self):
        return tuple(getattr(self, name) for name in self._leaves), self

    @classmethod
    def tree_unflatten(cls, aux, children):
        if not aux._leaves:
            return aux
        obj = object.__new__(cls)
        obj.__dict__.update(aux.__dict__)
        for name, value in zip(aux._leaves, children, strict=True):
            setattr(obj, name, value)
        return obj

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node_class(cls)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(V={self.vocab_size}, L={self.length}, "
            f"X={self._num_prompts}, {self.params.size} parameters)"
        )

    # ------------------------------------------------------------------ the protocol
    @property
    def num_sequences(self) -> int:
        return self._tree.num_sequences

    def unflatten(self, theta):
        """The parameter pytree of a flat vector theta [n]."""
        parts, start = [], 0
        for shape in self._shapes:
            size = math.prod(shape)
            parts.append(jnp.reshape(theta[start : start + size], shape))
            start += size
        return jax.tree.unflatten(self._treedef, parts)

    def _prefix_logits(self, tree, prompt, prefix, level):
        return self._logits_fn(tree, prompt, prefix, level)

    def logit_table(self, theta) -> jax.Array:
        """Next-token logits f_theta(x, y_<l) for every prompt and prefix: [X, P, V]."""
        tree = self.unflatten(theta)
        one = jax.vmap(lambda x, p, lv: self._prefix_logits(tree, x, p, lv), (None, 0, 0))
        prompts = jnp.arange(self._num_prompts)
        return jax.vmap(lambda x: one(x, self._prefixes, self._levels))(prompts)

    def log_probs(self, params: jax.Array) -> jax.Array:
        """log pi(y|x) for all V^L sequences: [X, V^L]."""
        return self._tree._accumulate(jax.nn.log_softmax(self.logit_table(params), axis=-1))

    def check_params(self, name: str, params) -> tuple[np.ndarray, bool]:
        """Validate a flat parameter vector [n]."""
        what = (
            f"be a flat vector of the policy's {self.params.size} parameters (like `policy.params`)"
        )
        return self._check_vector(name, params, self.params.size, what)

    def num_outputs(self, params) -> int:
        return self.num_sequences

    def num_prompts(self, params) -> int:
        return self._num_prompts

    def init_params(self, probs) -> np.ndarray:
        """Parameters whose policy is close to ``probs`` [X, Y]: L-BFGS (optax) on
        sum_x KL(probs(.|x) || pi_theta(.|x)) from ``self.params``, until every log-probability is
        within FIT_TOL of its target or FIT_STEPS steps; :func:`start_at` reports the residual."""
        arr = _strictly_positive(probs)
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.shape != (self._num_prompts, self.num_sequences):
            raise ValueError(
                f"`probs` must have shape {(self._num_prompts, self.num_sequences)}; got "
                f"{arr.shape}."
            )
        # optax's L-BFGS mixes int32 and int64 counters internally: trace it under standard
        # promotion whatever the caller set (our own code is checked under strict promotion)
        with jax.numpy_dtype_promotion("standard"):
            return np.asarray(_fit(self, jnp.asarray(self.params), jnp.asarray(np.log(arr))))

    def jacobian_norms(self, params) -> np.ndarray:
        """||d f_theta(x, prefix) / d theta||_2 for every prompt and prefix: [X, P].

        Exact: each prefix's Jacobian [V, n] is formed by reverse mode (V vector-Jacobian
        products) and its spectral norm is sqrt of the largest eigenvalue of J J^T [V, V].
        """
        theta = jnp.asarray(self.check_params("params", params)[0])
        return np.asarray(_jacobian_norms(self, theta))

    def jacobian_norm(self, params, prompt: int | None = None) -> float:
        """J at theta: the largest norm over prefixes of ``prompt`` (of every prompt if None)."""
        norms = self.jacobian_norms(params)
        if prompt is None:
            return float(norms.max())
        return float(norms[check_index("prompt", prompt, len(norms), "prompts")].max())

    def _cache_key(self):
        # theory_sim.cache keys traced programs by theory_sim's source; a user's ``logits_fn``
        # is outside it (an edited function would hit a stale program), so it is never cached
        raise TypeError("a Neural policy's logits_fn is not covered by the cache key")


jax.tree_util.register_pytree_node_class(Neural)


@jax.jit
def _jacobian_norms(policy: Neural, theta):
    tree_of = policy.unflatten

    def norm(x, prefix, level):
        jac = jax.jacrev(lambda th: policy._prefix_logits(tree_of(th), x, prefix, level))(theta)
        gram = jac @ jac.T
        return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(gram)[-1], 0.0))

    def per_prompt(x):
        return jax.lax.map(
            lambda args: norm(x, *args),
            (policy._prefixes, policy._levels),
            batch_size=_JACOBIAN_BATCH,
        )

    return jax.lax.map(per_prompt, jnp.arange(policy._num_prompts))


@traced_once  # tracing L-BFGS through a transformer takes about a second a shape
def _fit(policy: Neural, theta0, target):
    probs = jnp.exp(target)

    def loss(theta):
        return jnp.sum(probs * (target - policy.log_probs(theta)))

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        theta, state, i = carry
        value, grad = value_and_grad(theta, state=state)
        updates, state = solver.update(grad, state, theta, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(theta, updates), state, i + 1

    def unfinished(carry):
        theta, _, i = carry
        residual = jnp.max(jnp.abs(policy.log_probs(theta) - target))
        return (i < FIT_STEPS) & (residual > FIT_TOL)

    theta, _, _ = jax.lax.while_loop(unfinished, step, (theta0, solver.init(theta0), 0))
    return theta


class _Block(eqx.Module):
    norm1: eqx.nn.LayerNorm
    attention: eqx.nn.MultiheadAttention
    norm2: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, width: int, heads: int, key):
        k1, k2 = jax.random.split(key)
        self.norm1 = eqx.nn.LayerNorm(width)
        self.attention = eqx.nn.MultiheadAttention(heads, width, key=k1)
        self.norm2 = eqx.nn.LayerNorm(width)
        self.mlp = eqx.nn.MLP(width, width, 4 * width, 1, activation=jax.nn.gelu, key=k2)

    def __call__(self, h, mask):
        x = jax.vmap(self.norm1)(h)
        h = h + self.attention(x, x, x, mask)
        return h + jax.vmap(self.mlp)(jax.vmap(self.norm2)(h))


class _TransformerModel(eqx.Module):
    tokens: eqx.nn.Embedding
    positions: eqx.nn.Embedding
    prompts: eqx.nn.Embedding
    blocks: list
    norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear

    def __init__(self, vocab_size, length, num_prompts, width, depth, heads, key):
        keys = jax.random.split(key, depth + 4)
        self.tokens = eqx.nn.Embedding(vocab_size + 1, width, key=keys[0])  # + BOS
        self.positions = eqx.nn.Embedding(length, width, key=keys[1])
        self.prompts = eqx.nn.Embedding(num_prompts, width, key=keys[2])
        self.blocks = [_Block(width, heads, k) for k in keys[4:]]
        self.norm = eqx.nn.LayerNorm(width)
        self.head = eqx.nn.Linear(width, vocab_size, key=keys[3])

    def __call__(self, prompt, tokens):
        """Logits [n, V] at every position of ``tokens`` [n] (BOS first), causally masked."""
        n = tokens.shape[0]
        h = jax.vmap(self.tokens)(tokens) + jax.vmap(self.positions)(jnp.arange(n))
        h = h + self.prompts(prompt)
        mask = jnp.tril(jnp.ones((n, n), bool))
        for block in self.blocks:
            h = block(h, mask)
        return jax.vmap(self.head)(jax.vmap(self.norm)(h))


class Transformer(Neural):
    """A small causal transformer policy over token sequences (pre-norm blocks of multi-head
    self-attention and a 4x-wide GELU MLP; learned token, position and prompt embeddings).

    pi(y|x) = prod_l softmax(T_theta(x, [BOS, y_1..y_{l-1}])_l)[y_l]

    The logits of every prefix of every sequence come from one batched pass over the V^(L-1)
    sequences [BOS, y_1..y_{L-1}]: the output at position l of the first sequence extending a
    prefix of length l is that prefix's logits (causal masking), so no sequence is run twice.

    Args:
        vocab_size, length: V and L.
        num_prompts: X (each prompt has a learned embedding added at every position); None (the
            default) for one prompt whose results drop the prompt axis.
        width: the model width (divisible by ``heads``).
        depth: the number of blocks.
        heads: attention heads.
        key: seed (int) or JAX key of the initialisation.
        init_scale: multiplies the initial parameter vector.

    Examples:
        >>> import theory_sim as ts
        >>> policy = ts.Transformer(2, 3, width=8, depth=1, heads=2, key=0)
        >>> problem = ts.Problem(policy.params, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0],
        ...                      policy=policy)
        >>> problem.num_outputs, policy.params.size
        (8, 930)
    """

    def __init__(
        self,
        vocab_size: int,
        length: int,
        *,
        num_prompts: int | None = None,
        width: int = 32,
        depth: int = 2,
        heads: int = 4,
        key=0,
        init_scale: float = 1.0,
    ):
        width, depth, heads = (check_int(n, v, 1) for n, v in
                               (("width", width), ("depth", depth), ("heads", heads)))  # fmt: skip
        if width % heads:
            raise ValueError(f"`width` ({width}) must be divisible by `heads` ({heads}).")
        scale = _init_scale(init_scale)
        model = _to_float64(
            _build(_TransformerModel)(
                check_int("vocab_size", vocab_size, 1), check_int("length", length, 1),
                1 if num_prompts is None else check_int("num_prompts", num_prompts, 1),
                width, depth, heads, _key(key),
            )
        )  # fmt: skip
        params, static = eqx.partition(model, eqx.is_inexact_array)
        params = jax.tree.map(lambda a: to_device(scale * np.asarray(a)), params)
        self.width, self.depth, self.heads, self.init_scale = width, depth, heads, scale
        self._static = static
        self._setup(params, vocab_size, length, num_prompts, None, (width, depth, heads))
        longest = np.indices((vocab_size,) * (length - 1)).reshape(length - 1, -1).T
        self._sequences = jnp.asarray(
            np.concatenate([np.full((longest.shape[0], 1), vocab_size), longest], axis=1)
            if length > 1
            else np.full((1, 1), vocab_size),
            jnp.int32,
        )

    def _pass_bytes(self) -> float:
        # activations kept for the backward pass: about 24 floats per (position, width unit) and
        # the attention weights, per (prompt, longest prefix)
        rows = self._num_prompts * self.vocab_size ** max(self.length - 1, 0)
        per = self.length * (24 * self.width + 2 * self.heads * self.length) * self.depth
        return 8.0 * rows * per

    def model(self, theta) -> _TransformerModel:
        """The Equinox model at a flat parameter vector theta."""
        return eqx.combine(self.unflatten(theta), self._static)

    def _cache_key(self):
        """What the traced programs depend on: the configuration (theory_sim's own code)."""
        return ("Transformer", *self._spec[1:4], self.single_prompt, self.width, self.depth,
                self.heads)  # fmt: skip

    def _prefix_logits(self, tree, prompt, prefix, level):
        model = eqx.combine(tree, self._static)
        bos = jnp.full((1,), self.vocab_size, prefix.dtype)
        tokens = jnp.concatenate([bos, prefix])[: self.length]
        return model(prompt, tokens)[level]

    def logit_table(self, theta) -> jax.Array:
        model = self.model(theta)
        v, length = self.vocab_size, self.length
        out = jax.vmap(lambda x: jax.vmap(lambda s: model(x, s))(self._sequences))(
            jnp.arange(self._num_prompts)
        )  # [X, V^(L-1), L, V]
        levels = [out[:, :: v ** (length - 1 - level), level, :] for level in range(length)]
        return jnp.concatenate(levels, axis=1)


class MLP(Neural):
    """A multilayer perceptron over given prompt/output features: the non-linear LogLinear.

    pi(y|x) = softmax_y(mlp_theta(features[x, y])),   features [X, Y, d] (or [Y, d]).

    Args:
        features: [X, Y, d] or [Y, d] finite floats, Y >= 2.
        width: hidden width.
        depth: hidden layers (tanh).
        key: seed (int) or JAX key of the initialisation.
        init_scale: multiplies the initial parameter vector.

    Examples:
        >>> import numpy as np, theory_sim as ts
        >>> policy = ts.MLP(np.eye(4), width=8, depth=1, key=0)
        >>> ts.Problem(policy.params, [1.0, 0.0, 0.0, -1.0], policy=policy).num_outputs
        4
    """

    def __init__(self, features, *, width: int = 32, depth: int = 2, key=0, init_scale=1.0):
        arr, single = _features(features)
        width, depth = check_int("width", width, 1), check_int("depth", depth, 1)
        scale = _init_scale(init_scale)
        mlp = _to_float64(
            _build(eqx.nn.MLP)(arr.shape[-1], "scalar", width, depth, jnp.tanh, key=_key(key))
        )
        params, static = eqx.partition(mlp, eqx.is_inexact_array)
        params = jax.tree.map(lambda a: to_device(scale * np.asarray(a)), params)
        self.width, self.depth, self.init_scale = width, depth, scale
        self._static = static
        self.features = jnp.asarray(arr)
        self._setup(params, arr.shape[1], 1, None if single else arr.shape[0], None, (width, depth))

    def _pass_bytes(self) -> float:
        return 8.0 * 4 * self._num_prompts * self.vocab_size * self.width * self.depth

    _leaves = ("features",)  # equal structure, not equal values, makes equal policies

    def _cache_key(self):
        """What the traced programs depend on: the configuration (the features are a leaf)."""
        return ("MLP", *self._spec[1:4], self.single_prompt, self.width, self.depth)

    def _prefix_logits(self, tree, prompt, prefix, level):
        mlp = eqx.combine(tree, self._static)
        return jax.vmap(mlp)(self.features[prompt])

    def logit_table(self, theta) -> jax.Array:
        mlp = eqx.combine(self.unflatten(theta), self._static)
        return jax.vmap(jax.vmap(mlp))(self.features)[:, None, :]


def _features(features) -> tuple[np.ndarray, bool]:
    """Per-output features as [X, Y, d] with Y >= 2 (a [Y, d] table gets a prompt axis), and
    whether they had none (one prompt)."""
    arr = as_float_array("features", features, ndim=(2, 3))
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if arr.shape[1] < 2:
        raise ValueError(f"`features` must have at least 2 outputs; got shape {arr.shape}.")
    return arr, single


def _build(constructor):
    """The model constructor as one compiled program (eagerly, Equinox's random initialisation
    compiles dozens of small programs: seconds per model)."""
    return eqx.filter_jit(constructor)


def _init_scale(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"`init_scale` must be a number; got {type(value).__name__}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`init_scale` must be a finite number > 0; got {value}.")
    return float(value)
