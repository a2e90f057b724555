"""The versions and machine a result was produced on, recorded with every certificate and experiment."""

from __future__ import annotations

import platform

import jax
import numpy as np

from . import __version__


def environment() -> dict[str, str]:
    """olsjax, jax, numpy and Python versions, the platform and JAX's first device."""
    return {
        "olsjax": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(jax.devices()[0]),
    }
