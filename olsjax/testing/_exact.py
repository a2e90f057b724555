"""Exact least squares in rational arithmetic: one Gauss–Jordan elimination serves every reference.

Every float is a dyadic rational, so ``fractions.Fraction`` arithmetic on the
data gives the exact answer for the rounded data, independent of any
floating-point code, including the code under test. ``_rref`` is the only
elimination: ``_solve`` (Gauss–Jordan on ``[A | B]``), the rank factorisation
behind minimum-norm answers and ``exact_gram_inverse`` all go through it.

Inputs are checked first (``_array``, ``_scalar``; the generators use them
too): real floating or integer arrays, or object arrays of exact rationals
(Python ``int``, ``Fraction``), of the documented rank, non-empty and finite.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import jax.numpy as jnp
import numpy as np

Matrix = list[list[Fraction]]


# ``ndims`` is unannotated: a runtime type checker (beartype, under the test-time
# hook) samples variadic tuples with ``random``, which Hypothesis forbids in the
# strategies that call the generators.
def _array(value, name: str, ndims) -> np.ndarray:
    """``value`` as a numpy array of a real dtype, ``ndim`` in the tuple ``ndims``, non-empty and finite.

    **Raises:** ``TypeError`` for bool, complex, string or other object data
    (object arrays of exact rationals pass); ``ValueError`` for a wrong rank,
    no entries, or NaN/inf — each naming ``name``.
    """
    a = np.asarray(value)
    exact = a.dtype == object and all(
        isinstance(v, numbers.Rational) and not isinstance(v, bool) for v in a.flat
    )
    if not (exact or jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)):
        raise TypeError(f"{name} must have a real floating or integer dtype, got {a.dtype}")
    if a.ndim not in ndims:
        ranks = " or ".join(f"{k}-D" for k in ndims)
        raise ValueError(f"{name} must be {ranks}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    if not exact and not np.isfinite(a).all():
        raise ValueError(f"{name} contains {a.size - np.isfinite(a).sum()} NaN or infinite entries")
    return a


def _scalar(value, name: str, low: int | float, high: int | float = math.inf, *, integer: bool = False):
    """``value`` as a Python ``int`` (``integer``) or number, checked to be real, finite and in ``[low, high]``.

    **Raises:** ``TypeError`` if it is not a real (or, with ``integer``, an
    integer) scalar; ``ValueError`` if it is NaN/inf or out of range — each
    naming ``name`` and the value.
    """
    a = _array(value, name, (0,))
    if integer and a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = a.item()
    if not low <= v <= high:
        where = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {where}, got {value!r}")
    return v


def _design_and_targets(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``x`` ``(n, d)`` and ``y`` ``(n,)`` or ``(n, m)`` with the same ``n``."""
    xa, ya = _array(x, "x", (2,)), _array(y, "y", (1, 2))
    if ya.shape[0] != xa.shape[0]:
        raise ValueError(
            f"y must have as many rows as x: x has shape {xa.shape}, y has shape {ya.shape}"
        )
    return xa, ya


def _fractions(a: np.ndarray) -> Matrix:
    """A checked 2-D array as rows of ``Fraction``, exactly.

    Integers and object rationals are taken as they are (any size); floats
    through float64, which holds every float16/32/64 value exactly.
    """
    values = a.tolist() if a.dtype.kind in "iuO" else a.astype(np.float64).tolist()
    return [[Fraction(v) for v in row] for row in values]


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    cols = list(zip(*b))
    return [[sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in cols] for row in a]


def _transpose(a: Matrix) -> Matrix:
    return [list(col) for col in zip(*a)]


def _identity(d: int) -> Matrix:
    return [[Fraction(int(i == j)) for j in range(d)] for i in range(d)]


def _rref(a: Matrix) -> tuple[Matrix, list[int]]:
    """Reduced row echelon form and pivot columns, exactly."""
    rows = [row[:] for row in a]
    pivots: list[int] = []
    r = 0
    for col in range(len(rows[0]) if rows else 0):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][col]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [v - f * w for v, w in zip(rows[i], rows[r])]
        pivots.append(col)
        r += 1
    return rows[:r], pivots


def _solve(a: Matrix, b: Matrix) -> Matrix:
    """``a⁻¹ b`` for square nonsingular ``a``, by Gauss–Jordan on ``[a | b]``."""
    d = len(a)
    reduced, pivots = _rref([ra + rb for ra, rb in zip(a, b)])
    if pivots[:d] != list(range(d)):
        raise ValueError("matrix is singular")
    return [row[d:] for row in reduced]


def _exact_beta(x: Matrix, y: Matrix, ridge: Fraction) -> Matrix:
    xt = _transpose(x)
    rank_factor, pivots = _rref(x)
    d = len(xt)
    if ridge or len(pivots) == d:
        g = _matmul(xt, x)
        for i in range(d):
            g[i][i] += ridge
        return _solve(g, _matmul(xt, y))
    # X = C F with C the pivot columns and F the nonzero rows of rref(X):
    # X⁺ = Fᵀ (F Fᵀ)⁻¹ (CᵀC)⁻¹ Cᵀ, the minimum-norm pseudo-inverse.
    c = _transpose([xt[j] for j in pivots])
    f = rank_factor
    ct = _transpose(c)
    inner = _solve(_matmul(ct, c), _matmul(ct, y))
    return _matmul(_transpose(f), _solve(_matmul(f, _transpose(f)), inner))


def _beta(x: np.ndarray, y: np.ndarray, ridge) -> tuple[Matrix, bool]:
    """Exact ``β`` for checked ``x``, ``y``, and whether ``y`` was a vector."""
    vector = y.ndim == 1
    lam = Fraction(_scalar(ridge, "ridge", 0))
    return _exact_beta(_fractions(x), _fractions(y[:, None] if vector else y), lam), vector


def _rounded(a: Matrix, vector: bool) -> np.ndarray:
    out = np.array([[float(v) for v in row] for row in a])
    return out[:, 0] if vector else out


def exact_lstsq(x, y, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``(XᵀX + λI)⁺XᵀY`` (minimum-norm if ``X`` is rank-deficient), rounded to float64.

    Rational arithmetic on the float data: for small problems (``n·d`` up to a
    few hundred) it takes milliseconds to a second.

    **Arguments:** ``x`` ``(n, d)``; ``y`` ``(n,)`` or ``(n, m)``; ``ridge`` ``λ ≥ 0``.
    **Returns:** ``β``, ``(d,)`` or ``(d, m)`` as ``y``.
    **Raises:** ``TypeError`` for non-real (bool, complex, string) data or ``ridge``;
    ``ValueError`` for a wrong rank, empty or non-finite input, ``y`` with
    other than ``n`` rows, or ``ridge`` negative or not finite.
    """
    beta, vector = _beta(*_design_and_targets(x, y), ridge)
    return _rounded(beta, vector)


def exact_predict(x, y, queries, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``X* (XᵀX + λI)⁺XᵀY`` rounded to float64 (the product is taken exactly too).

    **Arguments:** as ``exact_lstsq``; ``queries`` ``X*`` ``(q, d)``.
    **Returns:** ``(q,)`` or ``(q, m)`` as ``y``.
    **Raises:** as ``exact_lstsq``, and ``ValueError`` if ``queries`` is not
    2-D with ``d`` columns (or ``TypeError``, empty, non-finite as the others).
    """
    xa, ya = _design_and_targets(x, y)
    qa = _array(queries, "queries", (2,))
    if qa.shape[1] != xa.shape[1]:
        raise ValueError(
            f"queries must have as many columns as x: x has shape {xa.shape}, queries has shape {qa.shape}"
        )
    beta, vector = _beta(xa, ya, ridge)
    return _rounded(_matmul(_fractions(qa), beta), vector)


def exact_hat_matrix(x, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``X (XᵀX + λI)⁺ Xᵀ`` rounded to float64.

    **Raises:** ``TypeError``/``ValueError`` for ``x`` or ``ridge`` as ``exact_lstsq``.
    """
    xa = _array(x, "x", (2,))
    return exact_predict(xa, np.eye(len(xa)), xa, ridge=ridge)


def exact_gram_inverse(x) -> np.ndarray:
    """``(XᵀX)⁻¹`` exactly, as a ``d × d`` object array of ``Fraction`` (``X`` of full column rank).

    Gauss–Jordan on the ``d × d`` Gram matrix only, so much faster than
    ``exact_lstsq`` with many targets. ``x``: floats (taken exactly, every float
    is a dyadic rational), integers, or an object array of Python integers.

    **Raises:** ``TypeError``/``ValueError`` for ``x`` as ``exact_lstsq``;
    ``ValueError`` if ``XᵀX`` is singular (``x`` rank-deficient).
    """
    xa = _array(x, "x", (2,))
    xe = _fractions(xa)
    g = _matmul(_transpose(xe), xe)
    try:
        return np.array(_solve(g, _identity(len(g))), dtype=object)
    except ValueError:
        raise ValueError(f"x {xa.shape} is rank-deficient: XᵀX is singular") from None
