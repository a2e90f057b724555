"""Whitening factors: ``L`` with ``L Lᵀ = Σ_λ⁺`` and ``P = Lᵀ XᵀY / n`` by every route.

``Σ_λ = XᵀX/n + (λ/n)I`` (T3). The routes are the paper's eigendecomposition,
ZCA, the inverse Cholesky factor, CholeskyQR2, the inverse R of
``X/√n = QR``, and ``√n V S⁻¹`` from the SVD; ``"auto"`` picks the cheapest
of Cholesky, CholeskyQR2 and the SVD that a condition estimate says is accurate.
``L P = β``, so least squares (``lstsq``) and the constructions share them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Float, Int

from . import _checks
from ._linalg import (
    AUTO_ROUTES,
    check_pinv_route,
    column_scale,
    effective_rcond,
    gram,
    identity,
    inv_sqrt,
    is_deficient,
    keep_mask,
    mm,
    mT,
    numerical_rank,
    rank_tolerance,
    ridge_augment,
    route_index,
    singular_values,
    xty,
)

Factor = Literal["auto", "eigh", "zca", "cholesky", "cholqr2", "qr", "svd"]
#: The concrete whitening factors; ``"auto"`` chooses one of ``AUTO_ROUTES`` per call.
FACTORS: tuple[str, ...] = ("eigh", "zca", "cholesky", "cholqr2", "qr", "svd")


class Whitening(NamedTuple):
    """A whitening factor and what it knows about the data.

    ``l``: ``L`` with ``L Lᵀ = Σ_λ⁺``; ``p``: ``Lᵀ XᵀY / n`` (computed without
    ``XᵀY`` where the route allows); ``spectrum``: estimated singular values of
    ``X`` (stacked over ``√λ I`` when ridge > 0).
    """

    l: Float[Array, "*b d d"]
    p: Float[Array, "*b d m"]
    spectrum: Float[Array, "*b d"]


# Gram routes never form X D⁻¹: powers of two commute exactly with every product,
# so Σ and XᵀY of the scaled design are those of X with the scale divided out.


def _scaled_gram(x, scale):
    g = gram(x)
    return g if scale is None else g / (scale[..., :, None] * scale[..., None, :])


def _scaled_xty(x, y, scale):
    b = xty(x, y)
    return b if scale is None else b / scale[..., :, None]


def _scaled_design(x, scale):
    return x if scale is None else x / scale[..., None, :]


def _spectral(x, y, ridge, rcond, zca, scale):
    n = x.shape[-2]
    lam, v = jnp.linalg.eigh(_scaled_gram(x, scale))
    keep = keep_mask(jnp.sqrt(jnp.clip(lam, 0)), rcond)
    l = v * inv_sqrt(lam + ridge / n, keep)[..., None, :]
    if zca:
        l = mm(l, mT(v))
    p = mm(mT(l), _scaled_xty(x, y, scale)) / n
    return Whitening(l, p, jnp.sqrt(jnp.clip(n * lam + ridge, 0)))


def _gram_cholesky(x, ridge, scale):
    """Lower ``C`` with ``C Cᵀ = Σ_λ``: the first pass of both Cholesky routes."""
    return jnp.linalg.cholesky(_scaled_gram(x, scale) + (ridge / x.shape[-2]) * identity(x))


def _cholesky(x, y, c, scale):
    n = x.shape[-2]
    c_inv = solve_triangular(c, identity(x), lower=True)
    p = solve_triangular(c, _scaled_xty(x, y, scale) / n, lower=True)
    return Whitening(mT(c_inv), p, math.sqrt(n) * singular_values(c))


def _cholqr2(x, y, ridge, c1, scale):
    """CholeskyQR2: ``Q₁ = (X/√n) R₁⁻¹`` with ``R₁ = C₁ᵀ``, then a second Cholesky of ``Q₁ᵀQ₁``.

    The second pass makes ``Q = Q₁R₂⁻¹`` orthonormal to ``O(u)`` when
    ``κ ≤ cholqr2_kappa_limit``; ``L = R₁⁻¹R₂⁻¹``, ``P = R₂⁻ᵀQ₁ᵀY/√n``. Ridge
    rows ``√λ·I`` under ``X`` enter only through ``λ·R₁⁻ᵀR₁⁻¹``.
    """
    n = x.shape[-2]
    t = mT(solve_triangular(c1, identity(x), lower=True))
    q1 = mm(x, t if scale is None else t / scale[..., :, None]) / math.sqrt(n)
    c2 = jnp.linalg.cholesky(mm(mT(q1), q1) + (ridge / n) * mm(mT(t), t))
    l = mm(t, mT(solve_triangular(c2, identity(x), lower=True)))
    p = solve_triangular(c2, xty(q1, y) / math.sqrt(n), lower=True)
    return Whitening(l, p, math.sqrt(n) * singular_values(mm(mT(c2), mT(c1))))


def _qr(x, y, ridge):
    n = x.shape[-2]
    if ridge:
        x, y = ridge_augment(x, y, ridge)
    q, r = jnp.linalg.qr(x / math.sqrt(n))
    l = solve_triangular(r, identity(r), lower=False)
    p = xty(q, y) / math.sqrt(n)
    return Whitening(l, p, math.sqrt(n) * singular_values(r))


def _svd(x, y, ridge, rcond):
    n = x.shape[-2]
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    root = jnp.sqrt(s * s + ridge)
    scale = inv_sqrt(root * root, keep_mask(s, rcond))
    l = mT(vt) * (math.sqrt(n) * scale)[..., None, :]
    p = (s * scale / math.sqrt(n))[..., :, None] * xty(u, y)
    return Whitening(l, p, root)


def whiten(
    x: Float[Array, "*b n d"],
    y: Float[Array, "*b n m"],
    factor: str,
    ridge: float = 0.0,
    rcond: float | None = None,
    scale: Float[Array, "*b d"] | None = None,
) -> Whitening:
    """Whitening factor ``L`` (``L Lᵀ = Σ_λ⁺``) and ``P = Lᵀ XᵀY / n`` of ``X D⁻¹`` by the named factor.

    ``scale``: the powers of two ``D`` (``column_scale``), or ``None`` for
    ``D = I``. Low level: no validation of values and no floor on ``rcond``;
    the constructions above it do both.
    """
    _checks.check_choice(factor, FACTORS, "factor")
    if factor in ("eigh", "zca"):
        return _spectral(x, y, ridge, rcond, factor == "zca", scale)
    if factor == "cholesky":
        return _cholesky(x, y, _gram_cholesky(x, ridge, scale), scale)
    if factor == "cholqr2":
        return _cholqr2(x, y, ridge, _gram_cholesky(x, ridge, scale), scale)
    if factor == "qr":
        return _qr(_scaled_design(x, scale), y, ridge)
    return _svd(_scaled_design(x, scale), y, ridge, rcond)


def whiten_auto(
    x: Float[Array, "*b n d"],
    y: Float[Array, "*b n m"],
    ridge: float = 0.0,
    scale: Float[Array, "*b d"] | None = None,
) -> tuple[Whitening, Int[Array, ""]]:
    """Whitening of ``X D⁻¹`` by the cheapest safe route of ``AUTO_ROUTES``, and the index of the route used.

    The Cholesky factor of ``Σ_λ`` is computed once: its condition number is
    the estimate (``route_index``) and, when Cholesky or CholeskyQR2 is chosen,
    their first pass. One route serves the whole batch; only it is executed.
    """
    c = _gram_cholesky(x, ridge, scale)
    s = singular_values(c)
    index = route_index(s[..., 0] / s[..., -1], *x.shape[-2:], x.dtype)
    branches = (
        lambda: _cholesky(x, y, c, scale),
        lambda: _cholqr2(x, y, ridge, c, scale),
        lambda: _svd(_scaled_design(x, scale), y, ridge, None),
    )
    return jax.lax.switch(index, branches), index


def _route_tolerance(factor: str, index, shape, dtype):
    if factor != "auto":
        return rank_tolerance(factor, *shape, dtype)
    return jnp.asarray([rank_tolerance(r, *shape, dtype) for r in AUTO_ROUTES], dtype)[index]


def whiten_checked(x, y, factor, ridge, rcond, equilibrate):
    """``whiten`` (or ``whiten_auto``) of ``X D⁻¹`` with ``L`` mapped back to ``X`` (``D⁻¹ L``),
    the route index (-1 unless auto), and the route's rank verdict: ``(w, index, deficient, rank)``.

    ``XL = (XD⁻¹)(DL)``, so the factor of the scaled problem serves the raw one.
    Scaling is skipped with ridge or ``rcond``, whose answers depend on the column scale.
    """
    scale = column_scale(x) if equilibrate and not ridge and rcond is None else None
    if factor == "auto":
        w, index = whiten_auto(x, y, ridge, scale)
    else:
        w, index = whiten(x, y, factor, ridge, rcond, scale), jnp.asarray(-1)
    tol = _route_tolerance(factor, index, x.shape[-2:], x.dtype)
    deficient = is_deficient(w.spectrum, tol) & (rcond is None)
    rank = numerical_rank(w.spectrum, tol)
    if scale is not None:
        w = w._replace(l=w.l / scale[..., :, None])
    return w, index, deficient, rank


def check_route(
    x: Array, route: str, choices: tuple[str, ...], name: str, ridge, rcond, *, ridge_rescues: bool
) -> tuple[str, float, float | None]:
    """Validated ``(route, ridge, rcond)``: ``"auto"`` becomes ``"svd"`` with ``rcond``, which is floored.

    Full column rank is required unless ``rcond`` is given, or ``ridge > 0`` where ``ridge_rescues``.
    """
    factor = _checks.check_choice(route, ("auto", *choices), name)
    ridge, rcond = _checks.check_ridge(ridge), _checks.check_rcond(rcond)
    if factor == "auto" and rcond is not None:
        factor = "svd"  # auto's routes are triangular factors, which cannot pseudo-invert
    check_pinv_route(factor, rcond)
    _checks.check_full_rank_shape(x, allowed=rcond is not None or (ridge_rescues and ridge > 0))
    return factor, ridge, effective_rcond(factor, x, rcond)


def settle(params, factor: str, index):
    """Name the route ``"auto"`` chose (``"auto:svd"``…) once its index is concrete."""
    if factor != "auto" or not _checks.is_concrete(index):
        return params
    return dataclasses.replace(params, route=f"auto:{AUTO_ROUTES[int(index)]}")


