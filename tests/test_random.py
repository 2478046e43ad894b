"""theory_sim._random: the same numbers as jax.random, from bucketed draws."""

import itertools

import jax
import numpy as np
import pytest

from theory_sim import _random

SHAPES = [(), (1,), (2,), (4,), (3, 6), (3, 6, 3), (8, 4), (5, 7), (17,), (2, 40), (3, 15, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", range(3))
def test_draws_are_jax_randoms_bit_for_bit(shape, seed):
    for key in (jax.random.key(seed), jax.random.PRNGKey(seed + 7)):
        want = jax.random.uniform(key, shape, np.float64, -1.0, 1.0)
        got = _random.uniform(key, shape, -1.0, 1.0)
        assert got.shape == shape and got.dtype == np.float64
        np.testing.assert_array_equal(got, np.asarray(want))
        np.testing.assert_array_equal(
            _random.uniform(key, shape), np.asarray(jax.random.uniform(key, shape, np.float64))
        )
        want = jax.random.normal(key, shape, np.float64)
        np.testing.assert_array_equal(_random.normal(key, shape), np.asarray(want))


@pytest.mark.parametrize("seed", range(20))
def test_array_bounds_are_jax_randoms_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    low = rng.uniform(-5, 1, 3)
    high = low + rng.uniform(1e-9, 7, 3)
    key = jax.random.key(seed)
    want = jax.random.uniform(key, (3,), np.float64, low, high)
    np.testing.assert_array_equal(_random.uniform(key, (3,), low, high), np.asarray(want))
    want = jax.random.uniform(key, (4, 3), np.float64, low, high)
    np.testing.assert_array_equal(_random.uniform(key, (4, 3), low, high), np.asarray(want))


@pytest.mark.parametrize(("outputs", "shape"), list(itertools.product((2, 6, 9), ((), (1,), (4,)))))
def test_dirichlet_is_jax_dirichlet_bit_for_bit(outputs, shape):
    key = jax.random.key(outputs)
    want = jax.random.dirichlet(key, np.ones(outputs), shape, np.float64)
    got = _random.dirichlet(key, outputs, shape)
    assert got.shape == (*shape, outputs)
    np.testing.assert_array_equal(got, np.asarray(want))


def test_one_program_serves_a_bucket_of_shapes():
    """Every shape of up to MIN_DRAW values draws MIN_DRAW values: a second shape in the bucket
    compiles nothing (the point of the module)."""
    key = jax.random.key(0)
    _random.uniform(key, (3,))
    compiled = []
    listener = lambda event, duration, **kw: (  # noqa: E731
        compiled.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
    )
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        _random.uniform(key, (2, 5), -3.0, 2.0)
        _random.uniform(key, (64,))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiled == []


def test_draw_sizes():
    assert [_random.draw_size(n) for n in (0, 1, 64, 65, 1000)] == [64, 64, 64, 128, 1024]
    step = _random.DRAW_STEP
    assert _random.draw_size(step) == step
    assert _random.draw_size(step + 1) == 2 * step
    assert _random.draw_size(5 * step - 3) == 5 * step


def test_draws_follow_jax_random_without_partitionable_threefry():
    """With jax_threefry_partitionable off a draw's values depend on its shape: each draw is then
    taken at its own shape, and the numbers are still jax.random's."""
    key = jax.random.key(5)
    jax.config.update("jax_threefry_partitionable", False)
    try:
        pairs = [
            (
                _random.uniform(key, (3, 5), -1.0, 1.0),
                jax.random.uniform(key, (3, 5), np.float64, -1.0, 1.0),
            ),
            (_random.normal(key, (7,)), jax.random.normal(key, (7,), np.float64)),
            (
                _random.dirichlet(key, 6, (2,)),
                jax.random.dirichlet(key, np.ones(6), (2,), np.float64),
            ),
        ]
        bucketed = np.asarray(jax.random.uniform(key, (64,), np.float64))[:7]
        shaped = np.asarray(jax.random.uniform(key, (7,), np.float64))
    finally:
        jax.config.update("jax_threefry_partitionable", True)
    for got, want in pairs:
        np.testing.assert_array_equal(got, np.asarray(want))
    assert not np.array_equal(bucketed, shaped)  # the case the fallback exists for
