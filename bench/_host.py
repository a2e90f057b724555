"""numpy-only host solvers: importable without JAX, scipy or scikit-learn (``bench.memory`` loads only these)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def per_task(fn: Callable) -> Callable:
    """``fn`` on each task of a stacked ``(B, n, d)`` problem, results stacked; plain call when 2-D."""

    def looped(x, y):
        if x.ndim == 2:
            return fn(x, y)
        return np.stack([fn(a, b) for a, b in zip(x, y, strict=True)])

    return looped


def numpy_lstsq(x, y):
    """``numpy.linalg.lstsq`` (LAPACK gelsd)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def numpy_cholesky(x, y):
    """Normal equations in numpy: ``XᵀX`` (BLAS syrk), Cholesky, two solves with the factor."""
    g, b = np.swapaxes(x, -1, -2) @ x, np.swapaxes(x, -1, -2) @ y
    c = np.linalg.cholesky(g)
    return np.linalg.solve(np.swapaxes(c, -1, -2), np.linalg.solve(c, b))
