"""SVD of ``X``: ``L = √n V S_λ⁻¹``. Never forms ``XᵀX`` (``∝ κ``) and pseudo-inverts (``rcond``)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from .._linalg import inv_sqrt, keep_mask, mm, mT, scale_columns, xty
from ._base import Route, Solution, Whitening


def _svd(x, y, ridge, rcond, scale):
    """``V``, ``UᵀY``, ``s``, ``1/√(s²+λ)`` (0 where cut by ``rcond``) and the spectrum ``√(s²+λ)``."""
    x = scale_columns(x, scale)
    if x.shape[-2] < x.shape[-1]:  # zero rows change nothing, and give d singular values (ridge: √λ)
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, x.shape[-1] - x.shape[-2]), (0, 0)])
        y = jnp.pad(y, [(0, 0)] * (y.ndim - 2) + [(0, x.shape[-2] - y.shape[-2]), (0, 0)])
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    squared = s * s if ridge is None else s * s + ridge
    inv = inv_sqrt(squared, keep_mask(s, rcond))
    return mT(vt), xty(u, y), s, inv, jnp.sqrt(squared)


@dataclasses.dataclass(frozen=True)
class SVD(Route):
    """Singular value decomposition (LAPACK ``gesdd``)."""

    name: ClassVar[str] = "svd"
    forms_gram: ClassVar[bool] = False
    kappa_power: ClassVar[int] = 1
    pseudo_inverse: ClassVar[bool] = True

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        v, uty, s, inv, spectrum = _svd(x, y, ridge, rcond, scale)
        l = v * (jnp.sqrt(n) * inv)[..., None, :]
        return Whitening(l, (s * inv / jnp.sqrt(n))[..., :, None] * uty, spectrum)

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        v, uty, s, inv, spectrum = _svd(x, y, ridge, rcond, scale)
        return Solution(mm(v, (s * inv * inv)[..., :, None] * uty), spectrum)
