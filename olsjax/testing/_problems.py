"""Generated regression problems with a chosen condition number."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ._exact import _design_and_targets, _scalar

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
    """``n × k`` matrix with Haar-distributed orthonormal columns.

    **Raises:** ``ValueError`` unless ``1 ≤ k ≤ n`` (``TypeError`` for non-integers).
    """
    n = _scalar(n, "n", 1, integer=True)
    k = _scalar(k, "k", 1, n, integer=True)
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diagonal(r))


def make_design(
    rng: np.random.Generator, n: int, d: int, kappa: float = 1.0, rank: int | None = None
) -> np.ndarray:
    """``X = U diag(s) Vᵀ`` with ``s`` log-spaced from 1 to ``1/kappa`` (``rank`` of them nonzero).

    **Raises:** ``ValueError`` unless ``n, d ≥ 1``, ``kappa`` is finite and
    ``≥ 1`` and ``1 ≤ rank ≤ min(n, d)`` (``TypeError`` for non-integer sizes,
    non-real ``kappa``).
    """
    n, d = _scalar(n, "n", 1, integer=True), _scalar(d, "d", 1, integer=True)
    kappa = _scalar(kappa, "kappa", 1)
    k = min(n, d)
    r = k if rank is None else _scalar(rank, "rank", 1, k, integer=True)
    s = np.zeros(k)
    s[:r] = np.logspace(0, -math.log10(kappa), r)
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

    **Raises:** ``ValueError`` unless ``n, d, m, queries ≥ 1``, ``kappa`` is
    finite and ``≥ 1`` and ``noise`` finite and ``≥ 0``; ``TypeError`` for
    non-integer sizes, non-real ``kappa``/``noise`` or a ``dtype`` that is
    not floating.
    """
    m = _scalar(m, "m", 1, integer=True)
    noise = _scalar(noise, "noise", 0)
    queries = _scalar(queries, "queries", 1, integer=True)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {dtype!r}")
    x = make_design(rng, n, d, kappa).astype(dtype)
    y = (x.astype(np.float64) @ rng.standard_normal((d, m)) + noise * rng.standard_normal((n, m)))
    q = rng.standard_normal((queries, d)) / math.sqrt(d)
    y, q = y.astype(dtype), q.astype(dtype)
    return Problem(x, y, q, float(kappa), tan_theta(x, y))


def tan_theta(x: np.ndarray, y: np.ndarray) -> float:
    """``‖Y − HY‖ / ‖HY‖``, the angle between ``Y`` and the column space of ``X`` (float64).

    **Raises:** ``TypeError``/``ValueError`` for ``x`` ``(n, d)``, ``y`` ``(n,)``
    or ``(n, m)`` as ``exact_lstsq``.
    """
    x64, y64 = (a.astype(np.float64) for a in _design_and_targets(x, y))
    fitted = x64 @ np.linalg.lstsq(x64, y64, rcond=None)[0]
    return float(np.linalg.norm(y64 - fitted) / max(np.linalg.norm(fitted), np.finfo(float).tiny))
