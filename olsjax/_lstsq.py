"""Least squares by any whitening route: ``β = L P`` (T1(d)), or JAX's own solver.

A whitening factor ``L`` (``L Lᵀ = Σ_λ⁻¹``) and ``P = Lᵀ XᵀY / n`` give the
coefficients as ``β = L P`` (T1(d)), so ``lstsq`` and ``construct_ols`` share
every route, the column equilibration and the rank verdict of ``_whiten``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks
from ._linalg import (
    METHODS,
    Method,
    is_deficient,
    mm,
    numerical_rank,
    poison,
    rank_tolerance,
    ridge_augment,
)
from ._whiten import check_route, whiten_checked


def _jnp_lstsq(x, y, ridge, rcond):
    """``jnp.linalg.lstsq`` (vmapped over batch axes) and the singular values it saw."""
    if ridge:
        x, y = ridge_augment(x, y, ridge)
    solve = functools.partial(jnp.linalg.lstsq, rcond=rcond)
    for _ in range(x.ndim - 2):
        solve = jax.vmap(solve)
    beta, _, _, s = solve(x, y)
    tol = rank_tolerance("lstsq", *x.shape[-2:], x.dtype)
    return beta, is_deficient(s, tol) & (rcond is None), numerical_rank(s, tol)


@functools.partial(jax.jit, static_argnames=("method", "ridge", "rcond", "equilibrate"))
def _lstsq(x, y, method, ridge, rcond, equilibrate):
    if method == "lstsq":
        beta, deficient, rank = _jnp_lstsq(x, y, ridge, rcond)
    else:
        w, _, deficient, rank = whiten_checked(x, y, method, ridge, rcond, equilibrate)
        beta = mm(w.l, w.p)
    return poison(beta, deficient), deficient, rank


def lstsq(
    X: ArrayLike,
    Y: ArrayLike,
    *,
    method: Method = "auto",
    ridge: float = 0.0,
    rcond: float | None = None,
    equilibrate: bool = True,
) -> Float[Array, "*b d m"] | Float[Array, "*b d"]:
    """Least-squares (or ridge) coefficients ``β = (XᵀX + λI)⁻¹XᵀY``.

    **Arguments:** ``X`` ``(..., n, d)``; ``Y`` ``(..., n, m)`` or ``(..., n)``;
    ``method``: ``"auto"`` (default: Cholesky, CholeskyQR2 or SVD by a
    condition estimate, as in ``construct_ols``), ``"qr"`` or ``"svd"``
    (error ``∝ κ``), ``"cholqr2"`` (``∝ κ`` up to ``κ ≈ u^{-1/2}``),
    ``"cholesky"`` or ``"eigh"`` of the Gram matrix (``∝ κ²``), ``"lstsq"``
    (JAX's own, never equilibrated); ``ridge``: ``λ ≥ 0``; ``rcond``: with
    ``"svd"``, ``"eigh"`` or ``"lstsq"`` (``"auto"`` becomes ``"svd"``), treat
    singular values below ``rcond·s_max`` as zero and return the minimum-norm
    solution ``X⁺Y`` (``rcond`` is raised to what the route can resolve:
    ``max(n, d)·ε``, or ``√(d·ε)`` for ``"eigh"``); ``equilibrate``: solve
    with columns scaled by powers of two (exact; not with ``ridge`` or ``rcond``).

    **Returns:** ``β`` of shape ``(..., d, m)``, or ``(..., d)`` for vector ``Y``.

    **Raises:** ``ValueError`` if ``X`` is rank-deficient (or ``n < d``) and
    neither ``rcond`` nor ``ridge > 0`` was given; under ``jit`` such entries are NaN.
    """
    x, y, vector = _checks.design_and_targets(X, Y)
    method, ridge, rcond = check_route(
        x, method, METHODS, "method", ridge, rcond, ridge_rescues=True
    )
    beta, deficient, rank = _lstsq(x, y, method, ridge, rcond, bool(equilibrate))
    _checks.raise_if_deficient(deficient, rank, x, method)
    return beta[..., 0] if vector else beta
