"""Eigendecomposition of ``Σ = V Λ Vᵀ``: the paper's ``L = V Λ^{-1/2}`` and ZCA's ``V Λ^{-1/2} Vᵀ``.

Both form ``XᵀX`` (error ``∝ κ²``) and pseudo-invert (``rcond``, zero on the null space; T6).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from .._linalg import gram, gram_in_range, inv_sqrt, keep_mask, mm, mT, poison, scale_gram, scale_rows, xty
from ._base import Route, Solution, Whitening


def _eigh(g, b, n, ridge, rcond, scale):
    """``V``, ``Λ^{-1/2}`` of ``Σ_λ`` (0 where cut), ``D⁻¹B/n`` and the spectrum ``√(nΛ + λ)``."""
    lam, v = jnp.linalg.eigh(poison(scale_gram(g, scale), ~gram_in_range(g)) / n)
    shifted = lam if ridge is None else lam + ridge / n
    inv = inv_sqrt(shifted, keep_mask(jnp.sqrt(jnp.clip(lam, 0)), rcond))
    return v, inv, scale_rows(b, scale) / n, jnp.sqrt(jnp.clip(n * shifted, 0))


@dataclasses.dataclass(frozen=True)
class Eigh(Route):
    """The paper's factor (PCA whitening)."""

    name: ClassVar[str] = "eigh"
    forms_gram: ClassVar[bool] = True
    kappa_power: ClassVar[int] = 2
    pseudo_inverse: ClassVar[bool] = True
    from_gram: ClassVar[bool] = True

    def factor(self, v, inv):
        return v * inv[..., None, :]

    def whiten_gram(self, g, b, n, ridge, rcond, scale) -> Whitening:
        v, inv, b, spectrum = _eigh(g, b, n, ridge, rcond, scale)
        l = self.factor(v, inv)
        return Whitening(l, mm(mT(l), b), spectrum)

    def solve_gram(self, g, b, n, ridge, rcond, scale) -> Solution:
        v, inv, b, spectrum = _eigh(g, b, n, ridge, rcond, scale)
        return Solution(mm(v, (inv * inv)[..., :, None] * mm(mT(v), b)), spectrum)

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        return self.whiten_gram(gram(x), xty(x, y), n, ridge, rcond, scale)

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        return self.solve_gram(gram(x), xty(x, y), n, ridge, rcond, scale)


@dataclasses.dataclass(frozen=True)
class ZCA(Eigh):
    """ZCA whitening (the blog's): the symmetric factor ``V Λ^{-1/2} Vᵀ``."""

    name: ClassVar[str] = "zca"

    def factor(self, v, inv):
        return mm(v * inv[..., None, :], mT(v))
