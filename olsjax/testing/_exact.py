"""Exact least squares in rational arithmetic: one Gauss–Jordan elimination serves every reference.

Every float is a dyadic rational, so ``fractions.Fraction`` arithmetic on the
data gives the exact answer for the rounded data, independent of any
floating-point code, including the code under test. ``_rref`` is the only
elimination: ``_solve`` (Gauss–Jordan on ``[A | B]``), the rank factorisation
behind minimum-norm answers and ``exact_gram_inverse`` all go through it.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

Matrix = list[list[Fraction]]


def _fractions(a, dtype=np.float64) -> Matrix:
    """``a`` as rows of ``Fraction``, exactly, after conversion to ``dtype``.

    ``float64`` (the default) takes floats as they round to float64;
    ``object`` keeps Python integers (or ``Fraction``\\ s) of any size as they are.
    """
    return [[Fraction(v) for v in row] for row in np.atleast_2d(np.asarray(a, dtype)).tolist()]


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


def _beta(x, y, ridge: float) -> tuple[Matrix, bool]:
    """Exact ``β`` for float data, and whether ``y`` was a vector."""
    y2 = np.asarray(y, np.float64)
    vector = y2.ndim == 1
    return _exact_beta(_fractions(x), _fractions(y2[:, None] if vector else y2), Fraction(ridge)), vector


def _rounded(a: Matrix, vector: bool) -> np.ndarray:
    out = np.array([[float(v) for v in row] for row in a])
    return out[:, 0] if vector else out


def exact_lstsq(x, y, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``(XᵀX + λI)⁺XᵀY`` (minimum-norm if ``X`` is rank-deficient), rounded to float64.

    Rational arithmetic on the float data: for small problems (``n·d`` up to a
    few hundred) it takes milliseconds to a second.
    """
    beta, vector = _beta(x, y, ridge)
    return _rounded(beta, vector)


def exact_predict(x, y, queries, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``X* (XᵀX + λI)⁺XᵀY`` rounded to float64 (the product is taken exactly too)."""
    beta, vector = _beta(x, y, ridge)
    return _rounded(_matmul(_fractions(queries), beta), vector)


def exact_hat_matrix(x, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``X (XᵀX + λI)⁺ Xᵀ`` rounded to float64."""
    xa = np.asarray(x, np.float64)
    return exact_predict(xa, np.eye(len(xa)), xa, ridge=ridge)


def exact_gram_inverse(x) -> np.ndarray:
    """``(XᵀX)⁻¹`` exactly, as a ``d × d`` object array of ``Fraction`` (``X`` of full column rank).

    Gauss–Jordan on the ``d × d`` Gram matrix only, so much faster than
    ``exact_lstsq`` with many targets. ``x``: floats (taken exactly, every float
    is a dyadic rational) or an object array of Python integers.

    **Raises:** ``ValueError`` if ``XᵀX`` is singular.
    """
    xe = _fractions(x, object)
    g = _matmul(_transpose(xe), xe)
    return np.array(_solve(g, _identity(len(g))), dtype=object)
