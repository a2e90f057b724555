"""SVD of ``X``: ``L = √n V S_λ⁻¹``. Never forms ``XᵀX`` (``∝ κ``) and pseudo-inverts (``rcond``)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from .._linalg import keep_mask, mm, mT, scale_columns, xty
from ._base import Route, Solution, Whitening


def _svd(x, y, ridge, rcond, scale):
    """``V``, ``UᵀY``, ``s``, ``1/√(s²+λ)`` (0 where cut by ``rcond``) and the spectrum ``√(s²+λ)``.

    Never squares ``s``: at any scale of ``X`` that LAPACK's SVD accepts, nothing over- or underflows.
    """
    x = scale_columns(x, scale)
    if x.shape[-2] < x.shape[-1]:  # zero rows change nothing, and give d singular values (ridge: √λ)
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, x.shape[-1] - x.shape[-2]), (0, 0)])
        y = jnp.pad(y, [(0, 0)] * (y.ndim - 2) + [(0, x.shape[-2] - y.shape[-2]), (0, 0)])
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    root = s if ridge is None else jnp.hypot(s, jnp.sqrt(ridge))  # √(s²+λ) without forming s²
    keep = keep_mask(s, rcond) & (root > 0)
    inv = jnp.where(keep, 1 / jnp.where(keep, root, 1), 0)
    return mT(vt), xty(u, y), s, inv, root


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
        return Solution(mm(v, (s * inv * inv)[..., :, None] * uty), spectrum)  # (s·inv)·inv: no s²
