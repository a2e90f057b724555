"""CholeskyQR2: Cholesky-QR twice; forms ``XᵀX`` but repairs it (``∝ κ`` below ``kappa_limit``)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .._linalg import gram, identity, mm, mT, singular_values, unit_roundoff, xty
from ._base import Route, Solution, Whitening
from . import cholesky


def kappa_limit(n, d: int, dtype):
    """Largest ``κ`` for which CholeskyQR2 is proven as accurate as Householder QR.

    ``(24·u·(n·d + d(d+1)))^{-1/2}`` (Yamamoto, Nakatsukasa, Yanagisawa and
    Fukaya, *ETNA* 44, 2015, Theorem 3.3): below it the first Cholesky cannot
    break down and the second pass makes ``Q`` orthonormal to ``O(u)``. A
    sufficient condition, pessimistic in practice: the side ``Auto`` should err on.
    """
    return (24 * unit_roundoff(dtype) * (n * d + d * (d + 1))) ** -0.5


def _second_pass(c1, x, y, n, ridge, scale):
    """``Q₁ = X D⁻¹ R₁⁻¹/√n`` (``R₁ = C₁ᵀ``), ``R₂ = C₂ᵀ`` from ``Q₁ᵀQ₁ (+ λ R₁⁻ᵀR₁⁻¹/n)``.

    Returns ``T = R₁⁻¹``, ``C₂`` and ``Q₁ᵀ Y/√n`` (``P = R₂⁻ᵀ`` of it). Ridge rows ``√λ·I``
    under ``X`` enter only through ``λ·R₁⁻ᵀR₁⁻¹``.
    """
    t = mT(solve_triangular(c1, identity(c1), lower=True))
    q1 = mm(x, t if scale is None else t / scale[..., :, None]) / jnp.sqrt(n)
    g2 = gram(q1)
    if ridge is not None:
        g2 = g2 + (ridge / n) * mm(mT(t), t)
    c2 = jnp.linalg.cholesky(g2)
    return t, c2, xty(q1, y) / jnp.sqrt(n)


def _spectrum(c1, c2, n):
    return jnp.sqrt(n) * singular_values(mm(mT(c2), mT(c1)))


def whiten_from(c1, x, y, n, ridge, scale) -> Whitening:
    """``L = R₁⁻¹R₂⁻¹``, ``P = R₂⁻ᵀQ₁ᵀY/√n``."""
    t, c2, qty = _second_pass(c1, x, y, n, ridge, scale)
    c2_inv, p = cholesky.inverse_and_solve(c2, qty)
    return Whitening(mm(t, mT(c2_inv)), p, _spectrum(c1, c2, n))


def solve_from(c1, x, y, n, ridge, scale) -> Solution:
    """``β = R₁⁻¹ R₂⁻¹ P`` by triangular solves."""
    _, c2, qty = _second_pass(c1, x, y, n, ridge, scale)
    z = solve_triangular(c2, solve_triangular(c2, qty, lower=True), lower=True, trans="T")
    return Solution(solve_triangular(c1, z, lower=True, trans="T"), _spectrum(c1, c2, n))


@dataclasses.dataclass(frozen=True)
class CholQR2(Route):
    """CholeskyQR2 (Yamamoto et al. 2015): matmuls and small Cholesky factors only."""

    name: ClassVar[str] = "cholqr2"
    forms_gram: ClassVar[bool] = True
    kappa_power: ClassVar[int] = 1  # below kappa_limit, the range it accepts
    pseudo_inverse: ClassVar[bool] = False

    def rank_tolerance(self, n, d: int, dtype):
        """``1 / kappa_limit``: beyond its proven limit CholeskyQR2 refuses (``Auto`` then takes the SVD)."""
        floor = super().rank_tolerance(n, d, dtype)
        limit = 1 / kappa_limit(n, d, dtype)
        return max(floor, limit) if isinstance(n, int) else jnp.maximum(floor, jnp.asarray(limit, dtype))

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        return whiten_from(cholesky.factor(gram(x), n, ridge, scale), x, y, n, ridge, scale)

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        return solve_from(cholesky.factor(gram(x), n, ridge, scale), x, y, n, ridge, scale)
