"""Cholesky of the normal equations: ``Σ_λ = C Cᵀ``, ``L = C⁻ᵀ``. Forms ``XᵀX``: error ``∝ κ²``.

Works from the moments ``G = XᵀX``, ``B = XᵀY`` alone (``from_gram``), so
large host inputs can be streamed to it in row blocks.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .._linalg import gram, gram_in_range, identity, mT, poison, scale_gram, scale_rows, singular_values, xty
from ._base import Route, Solution, Whitening


def factor(g, n, ridge, scale):
    """Lower ``C`` with ``C Cᵀ = Σ_λ = (D⁻¹GD⁻¹ + λI)/n``: the first pass of both Cholesky routes.

    NaN (a breakdown, refused as deficient) where ``G`` over- or underflowed (``gram_in_range``).
    """
    g = poison(scale_gram(g, scale), ~gram_in_range(g))
    if ridge is not None:
        g = g + ridge * identity(g)
    return jnp.linalg.cholesky(g / n)


def inverse_and_solve(c, rhs):
    """``(C⁻¹, C⁻¹ rhs)`` from one triangular solve against ``[I, rhs]``.

    One kernel, not two: jaxlib 0.10.2 on CPU deadlocks when two independent
    batched triangular solves run concurrently on a 2-thread pool (B = 2048).
    """
    d = c.shape[-1]
    both = solve_triangular(c, jnp.concatenate([identity(c), rhs], axis=-1), lower=True)
    return both[..., :d], both[..., d:]


def whiten_from(c, s, b, n, scale) -> Whitening:
    """Whitening from ``C``, its singular values ``s`` and ``B = XᵀY`` (``Auto`` reuses its estimate's ``C``)."""
    c_inv, p = inverse_and_solve(c, scale_rows(b, scale) / n)
    return Whitening(mT(c_inv), p, jnp.sqrt(n) * s)


def solve_from(c, s, b, n, scale) -> Solution:
    """``β = C⁻ᵀC⁻¹ D⁻¹B / n`` by two triangular solves."""
    z = solve_triangular(c, scale_rows(b, scale) / n, lower=True)
    return Solution(solve_triangular(c, z, lower=True, trans="T"), jnp.sqrt(n) * s)


@dataclasses.dataclass(frozen=True)
class Cholesky(Route):
    """Cholesky factor of ``Σ_λ``: the cheapest route, ``∝ κ²``."""

    name: ClassVar[str] = "cholesky"
    forms_gram: ClassVar[bool] = True
    kappa_power: ClassVar[int] = 2
    pseudo_inverse: ClassVar[bool] = False
    from_gram: ClassVar[bool] = True

    def whiten_gram(self, g, b, n, ridge, rcond, scale) -> Whitening:
        c = factor(g, n, ridge, scale)
        return whiten_from(c, singular_values(c), b, n, scale)

    def solve_gram(self, g, b, n, ridge, rcond, scale) -> Solution:
        c = factor(g, n, ridge, scale)
        return solve_from(c, singular_values(c), b, n, scale)

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        return self.whiten_gram(gram(x), xty(x, y), n, ridge, rcond, scale)

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        return self.solve_gram(gram(x), xty(x, y), n, ridge, rcond, scale)
