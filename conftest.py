"""Test-wide JAX and Hypothesis set-up for tests/, proofs/ and bench/.

Float64 is the verification dtype; strict dtype promotion and rank-promotion
errors catch silent up-casts and accidental broadcasts in the library. The
library itself never touches ``jax.config``: only tests and the CLI do.
"""

import gc
import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Generated problems are small but each example compiles or runs linear algebra:
# no deadline, and the data-generation health check would fire on ill-conditioned draws.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each module.

    Each holds memory maps: the edge-case table alone leaves ~11,700, and a
    whole run passed Linux's limit of 65,530, where XLA's compiler segfaulted
    (CI, in proofs/test_t6 after tests/). Clearing brings a process back to
    ~700; the next module recompiles only what it uses.
    """
    yield
    jax.clear_caches()
    gc.collect()
