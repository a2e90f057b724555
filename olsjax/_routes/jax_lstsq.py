"""JAX's own ``jnp.linalg.lstsq`` (SVD-based): solves, but builds no whitening factor."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from .._linalg import ridge_augment, scale_columns
from ._base import Route, Solution, Whitening


@dataclasses.dataclass(frozen=True)
class JaxLstsq(Route):
    """``jnp.linalg.lstsq``, vmapped over batch axes; ``rcond`` as JAX defines it."""

    name: ClassVar[str] = "lstsq"
    forms_gram: ClassVar[bool] = False
    kappa_power: ClassVar[int] = 1
    pseudo_inverse: ClassVar[bool] = True
    whitens: ClassVar[bool] = False

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        raise TypeError("route 'lstsq' (jnp.linalg.lstsq) solves but builds no whitening factor")

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        x = scale_columns(x, scale)
        if ridge is not None:
            x, y = ridge_augment(x, y, ridge)

        def one(a, b):
            beta, _, _, s = jnp.linalg.lstsq(a, b, rcond=rcond)
            return beta, s

        for _ in range(x.ndim - 2):
            one = jax.vmap(one)
        beta, s = one(x, y)
        return Solution(beta, s)
