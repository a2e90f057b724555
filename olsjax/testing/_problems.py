"""Generated regression problems with a chosen condition number."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

#: The fixed set of ``(n, d)`` shapes property tests draw from.
SHAPES: tuple[tuple[int, int], ...] = ((8, 2), (12, 1), (16, 3), (33, 5), (64, 8))
#: Shapes for rank-deficient problems, ``n < d`` included.
DEFICIENT_SHAPES: tuple[tuple[int, int], ...] = ((6, 3), (12, 5), (4, 7), (20, 8))


class Problem(NamedTuple):
    """A regression problem: context ``x`` ``(n, d)``, targets ``y`` ``(n, m)``, ``queries`` ``(q, d)``.

    ``kappa`` is the condition number ``X`` was built with; ``tan_theta`` is
    ``‖Y − HY‖/‖HY‖`` (0 for an exact fit).
    """

    x: np.ndarray
    y: np.ndarray
    queries: np.ndarray
    kappa: float
    tan_theta: float


def random_orthonormal(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n × k`` matrix with Haar-distributed orthonormal columns."""
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diagonal(r))


def make_design(
    rng: np.random.Generator, n: int, d: int, kappa: float = 1.0, rank: int | None = None
) -> np.ndarray:
    """``X = U diag(s) Vᵀ`` with ``s`` log-spaced from 1 to ``1/kappa`` (``rank`` of them nonzero)."""
    r = min(n, d) if rank is None else rank
    s = np.zeros(min(n, d))
    s[:r] = np.logspace(0, -math.log10(kappa), r)
    k = min(n, d)
    return (random_orthonormal(rng, n, k) * s) @ random_orthonormal(rng, d, k).T


def make_problem(
    rng: np.random.Generator,
    n: int,
    d: int,
    m: int = 1,
    *,
    kappa: float = 1.0,
    noise: float = 1e-2,
    queries: int = 5,
    dtype=np.float64,
) -> Problem:
    """A full-rank problem with ``κ(X) = kappa``, ``Y = X B + noise·E`` and Gaussian queries.

    Queries are drawn in the row space scale of ``X`` (``Q Vᵀ`` with unit
    singular values): out-of-sample, but not dominated by one direction.
    """
    x = make_design(rng, n, d, kappa).astype(dtype)
    y = (x.astype(np.float64) @ rng.standard_normal((d, m)) + noise * rng.standard_normal((n, m)))
    q = rng.standard_normal((queries, d)) / math.sqrt(d)
    y, q = y.astype(dtype), q.astype(dtype)
    return Problem(x, y, q, float(kappa), tan_theta(x, y))


def tan_theta(x: np.ndarray, y: np.ndarray) -> float:
    """``‖Y − HY‖ / ‖HY‖``, the angle between ``Y`` and the column space of ``X`` (float64)."""
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fitted = x64 @ np.linalg.lstsq(x64, y64, rcond=None)[0]
    return float(np.linalg.norm(y64 - fitted) / max(np.linalg.norm(fitted), np.finfo(float).tiny))
