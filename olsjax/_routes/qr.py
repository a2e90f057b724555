"""Householder QR of ``X/√n``: ``L = R⁻¹``. Never forms ``XᵀX``: error ``∝ κ``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .._linalg import identity, ridge_augment, scale_columns, singular_values, xty
from ._base import Route, Solution, Whitening


def _qr(x, y, n, ridge, scale):
    x = scale_columns(x, scale)
    if ridge is not None:
        x, y = ridge_augment(x, y, ridge)
    q, r = jnp.linalg.qr(x / jnp.sqrt(n))
    return r, xty(q, y) / jnp.sqrt(n), jnp.sqrt(n) * singular_values(r)


@dataclasses.dataclass(frozen=True)
class QR(Route):
    """Householder QR (LAPACK ``geqrf``)."""

    name: ClassVar[str] = "qr"
    forms_gram: ClassVar[bool] = False
    kappa_power: ClassVar[int] = 1
    pseudo_inverse: ClassVar[bool] = False

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        r, p, spectrum = _qr(x, y, n, ridge, scale)
        return Whitening(solve_triangular(r, identity(r), lower=False), p, spectrum)

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        r, p, spectrum = _qr(x, y, n, ridge, scale)
        return Solution(solve_triangular(r, p, lower=False), spectrum)
