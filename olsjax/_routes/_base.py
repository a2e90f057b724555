"""The route interface: one least-squares method as a small frozen object.

A route factors ``X`` (or its Gram matrix) once and from the factor either
*whitens* (``L`` with ``L Lᵀ = Σ_λ⁺``, ``P = Lᵀ XᵀY / n``; T1, T3) or *solves*
(``β`` by triangular solves, no explicit inverse). It carries its own facts:
whether it forms ``XᵀX`` (error ``∝ κ²``, rank resolved only to ``√(d·u)``),
whether it can pseudo-invert (``rcond``), whether it can whiten at all.
Modelled on lineax's ``AbstractLinearSolver``.

Arguments shared by every method: ``x`` ``(..., N, d)`` and ``y``
``(..., N, m)``, possibly with trailing zero rows; ``n`` the real row count
(a traced scalar); ``ridge`` ``λ`` and ``rcond`` as traced scalars, or
``None`` when absent; ``scale`` the powers of two ``D`` of column
equilibration, or ``None`` (the route then sees ``X D⁻¹``; callers map back).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._linalg import BOUND_C, unit_roundoff


class Whitening(NamedTuple):
    """A whitening factor and what it knows about the data.

    ``l``: ``L`` with ``L Lᵀ = Σ_λ⁺``; ``p``: ``Lᵀ XᵀY / n``; ``spectrum``:
    estimated singular values of ``X`` (stacked over ``√λ I`` with ridge).
    """

    l: Float[Array, "*b d d"]
    p: Float[Array, "*b d m"]
    spectrum: Float[Array, "*b d"]


class Solution(NamedTuple):
    """Coefficients ``β`` and the spectrum the route saw."""

    beta: Float[Array, "*b d m"]
    spectrum: Float[Array, "*b d"]


class Ran(NamedTuple):
    """What a route computed, the id (``ROUTE_NAMES`` index) of the route that ran, and its rank tolerance."""

    out: Whitening | Solution
    route: Int[Array, ""]
    tolerance: Float[Array, ""]


#: Every concrete route, by name; ``Info.route`` indexes this tuple.
ROUTE_NAMES: tuple[str, ...] = ("cholesky", "cholqr2", "qr", "svd", "eigh", "zca", "lstsq")


def route_id(route: "Route") -> int:
    """Position of a concrete route in ``ROUTE_NAMES``."""
    return ROUTE_NAMES.index(route.name)


@dataclasses.dataclass(frozen=True)
class Route(abc.ABC):
    """A least-squares route. Subclasses set the facts and implement ``whiten`` and ``solve``."""

    #: The name ``route=`` accepts and ``Info`` reports.
    name: ClassVar[str]
    #: Forms ``XᵀX``: error ``∝ κ²`` and rank resolved only down to ``√(d·u)·s_max``.
    forms_gram: ClassVar[bool]
    #: The power ``p`` of ``κ`` in the route's forward error ``c·u·κ^p`` (THEOREMS.md):
    #: 2 for routes whose answer inherits the rounding of ``XᵀX``, 1 for the others.
    kappa_power: ClassVar[int]
    #: Can return the minimum-norm answer of a rank-deficient problem (takes ``rcond``).
    pseudo_inverse: ClassVar[bool]
    #: Can build a whitening factor ``L`` (every route but JAX's ``lstsq``).
    whitens: ClassVar[bool] = True
    #: Works from the moments ``G = XᵀX``, ``B = XᵀY`` alone (``whiten_gram``,
    #: ``solve_gram``): large host inputs are then streamed in row blocks.
    from_gram: ClassVar[bool] = False

    def rank_tolerance(self, n, d: int, dtype):
        """Relative singular-value cutoff under which ``X`` counts as rank-deficient.

        Routes that never form ``XᵀX`` resolve singular values down to
        ``max(n, d)·ε·s_max`` (numpy's ``matrix_rank``). Gram routes square the
        spectrum, so they resolve only down to ``√(max(d, c)·ε)·s_max`` (``c``
        the bound's constant, ``BOUND_C``): below that their bound
        ``c·u·κ²`` exceeds ``1/2`` and the answer may be noise.
        ``n`` is a traced scalar inside the cores (an array comes back) or a
        Python ``int`` for static decisions (a Python ``float`` comes back).
        """
        eps = 2 * unit_roundoff(dtype)
        if self.forms_gram:
            tol = (max(d, BOUND_C) * eps) ** 0.5
        elif isinstance(n, int):
            return max(n, d) * eps
        else:
            return jnp.maximum(n, d).astype(dtype) * eps
        return tol if isinstance(n, int) else jnp.asarray(tol, dtype)

    def kappa_max(self, n: int, d: int, dtype) -> float:
        """The largest ``κ(X D⁻¹)`` the route accepts as full rank (``1 / rank_tolerance``), for ``n`` rows."""
        return 1 / self.rank_tolerance(n, d, dtype)

    @abc.abstractmethod
    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        """``L``, ``P`` and the spectrum of ``X D⁻¹``."""

    @abc.abstractmethod
    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        """``β`` of ``X D⁻¹`` (coefficients of the scaled columns) and the spectrum."""

    def whiten_gram(self, g, b, n, ridge, rcond, scale) -> Whitening:
        """``whiten`` from ``G = XᵀX`` and ``B = XᵀY`` (routes with ``from_gram``)."""
        raise NotImplementedError(f"route {self.name!r} needs X itself")

    def solve_gram(self, g, b, n, ridge, rcond, scale) -> Solution:
        """``solve`` from ``G = XᵀX`` and ``B = XᵀY`` (routes with ``from_gram``)."""
        raise NotImplementedError(f"route {self.name!r} needs X itself")

    def run_gram(self, method: str, g, b, n, ridge, rcond, scale) -> tuple[Ran, Bool[Array, ""]]:
        """``whiten_gram`` or ``solve_gram``, and whether that was the whole answer (``Auto``
        may need ``X`` after all: then the caller falls back to the route on ``X``)."""
        out = getattr(self, method + "_gram")(g, b, n, ridge, rcond, scale)
        ran = Ran(out, jnp.asarray(route_id(self)), self.rank_tolerance(n, g.shape[-1], g.dtype))
        return ran, jnp.asarray(True)

    def select(self, rcond) -> Route:
        """The concrete route that serves a request (``Auto`` may hand a pseudo-inverse to the SVD)."""
        del rcond
        return self

    def run(self, method: str, x, y, n, ridge, rcond, scale) -> Ran:
        """``whiten`` or ``solve`` (``method``), with the route that ran and its rank tolerance."""
        out = getattr(self, method)(x, y, n, ridge, rcond, scale)
        return Ran(out, jnp.asarray(route_id(self)), self.rank_tolerance(n, x.shape[-1], x.dtype))
