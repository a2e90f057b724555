"""Cholesky of the normal equations: ``Σ_λ = C Cᵀ``, ``L = C⁻ᵀ``. Forms ``XᵀX``: error ``∝ κ²``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .._linalg import gram, identity, mT, scale_gram, scale_rows, singular_values, xty
from ._base import Route, Solution, Whitening


def gram_cholesky(x, n, ridge, scale):
    """Lower ``C`` with ``C Cᵀ = Σ_λ = (D⁻¹XᵀXD⁻¹ + λI)/n``: the first pass of both Cholesky routes."""
    g = scale_gram(gram(x), scale)
    if ridge is not None:
        g = g + ridge * identity(x)
    return jnp.linalg.cholesky(g / n)


def spectrum(c, n):
    """Singular values of ``X`` (stacked over ``√λ I``) from ``C``: ``√n·σ(C)``."""
    return jnp.sqrt(n) * singular_values(c)


def whiten_from(c, x, y, n, scale) -> Whitening:
    """Whitening from a computed ``C`` (``Auto`` reuses its estimate's factor)."""
    c_inv = solve_triangular(c, identity(c), lower=True)
    p = solve_triangular(c, scale_rows(xty(x, y), scale) / n, lower=True)
    return Whitening(mT(c_inv), p, spectrum(c, n))


def solve_from(c, x, y, n, scale) -> Solution:
    """``β = C⁻ᵀC⁻¹ D⁻¹XᵀY / n`` by two triangular solves."""
    z = solve_triangular(c, scale_rows(xty(x, y), scale) / n, lower=True)
    return Solution(solve_triangular(c, z, lower=True, trans="T"), spectrum(c, n))


@dataclasses.dataclass(frozen=True)
class Cholesky(Route):
    """Cholesky factor of ``Σ_λ``: the cheapest route, ``∝ κ²``."""

    name: ClassVar[str] = "cholesky"
    forms_gram: ClassVar[bool] = True
    pseudo_inverse: ClassVar[bool] = False

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        return whiten_from(gram_cholesky(x, n, ridge, scale), x, y, n, scale)

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        return solve_from(gram_cholesky(x, n, ridge, scale), x, y, n, scale)
