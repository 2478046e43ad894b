"""Test configuration: float64, strict dtype promotion and Hypothesis profiles.

Profiles: "ci" (default) is deterministic (derandomized, no example database, no deadline) so a
green run stays green; "thorough" runs many more examples: HYPOTHESIS_PROFILE=thorough pytest.
"""

import itertools
import os

import jax
import pytest
from hypothesis import HealthCheck, settings

import theory_sim  # noqa: F401  (turns on float64)
from theory_sim.cache import enable_compilation_cache, release_programs

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
# One persistent compilation cache for every test worker, notebook kernel and CLI subprocess
# (THEORY_SIM_CACHE picks the directory or turns it off; see theory_sim.cache).
enable_compilation_cache()

settings.register_profile(
    "ci",
    database=None,
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    database=None,
    deadline=None,
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_tests_run = itertools.count(1)


def pytest_runtest_teardown(item):
    """Every 25 tests, a worker past half its memory-map limit drops the compiled programs it
    holds (see theory_sim.cache.release_programs): traced_once checks only when it loads a
    program, and a worker also holds hundreds compiled by plain jax.jit."""
    if next(_tests_run) % 25 == 0:
        release_programs()


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
