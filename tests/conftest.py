"""Test configuration: float64, strict dtype promotion and Hypothesis profiles.

Profiles: "ci" (default) is deterministic (derandomized, no example database, no deadline) so a
green run stays green; "thorough" runs many more examples: HYPOTHESIS_PROFILE=thorough pytest.
"""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

import theory_sim  # noqa: F401  (turns on float64)
from theory_sim.cache import enable_compilation_cache

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


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
