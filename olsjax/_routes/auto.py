"""``Auto``: the cheapest route that a condition estimate says is accurate, one for a whole batch.

After lineax's ``AutoLinearSolver``. The Cholesky factor ``C`` of ``Σ_λ`` is
computed once; its condition number ``κ̂ = κ(C)`` (an estimate of ``κ(X D⁻¹)``)
picks Cholesky (``κ̂ ≤ CHOLESKY_KAPPA``), CholeskyQR2 (``κ̂`` below its proven
limit) or the SVD (beyond, or when ``C`` broke down); Cholesky and CholeskyQR2
reuse ``C`` as their first pass. The choice is made on the device by
``lax.switch``, from the worst task of the batch, explicit or under
``jax.vmap`` (``batch_max``), so only one branch ever runs. With ``rcond``
(a minimum-norm answer) only the SVD can pseudo-invert, so it is the choice.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from .._linalg import gram, singular_values, worst, xty
from . import cholesky, cholqr2
from ._base import Ran, Route, Solution, Whitening, route_id
from .cholesky import Cholesky
from .cholqr2 import CholQR2
from .svd import SVD

#: ``Auto`` takes plain Cholesky only below this condition estimate, where its
#: error ``c·u·κ²`` stays within a factor 4 of a QR route's ``c·u·κ``.
CHOLESKY_KAPPA = 4.0


@dataclasses.dataclass(frozen=True)
class Auto(Route):
    """Cholesky, CholeskyQR2 or the SVD, chosen per call (per batch) from ``κ(C)``."""

    name: ClassVar[str] = "auto"
    forms_gram: ClassVar[bool] = True  # its estimate does; the chosen route's own facts apply after
    kappa_power: ClassVar[int] = 1  # Cholesky only at κ ≤ 4, where u·κ² ≤ 4·u·κ
    pseudo_inverse: ClassVar[bool] = True  # by choosing the SVD
    from_gram: ClassVar[bool] = True  # when it chooses Cholesky; else run_gram says it needs X
    #: What ``Auto`` chooses from, cheapest first. Past CholeskyQR2's limit it takes
    #: the SVD rather than QR: the same ``∝ κ`` bound, and on the hard designs of
    #: docs/accuracy.md as accurate as LAPACK's gelsd, where QR lost up to 0.7 digits.
    routes: ClassVar[tuple[Route, ...]] = (Cholesky(), CholQR2(), SVD())

    def estimate(self, g, n, ridge, scale):
        """``C``, its singular values and the index into ``routes`` for the batch's worst ``κ(C)``."""
        c = cholesky.factor(g, n, ridge, scale)
        s = singular_values(c)
        kappa = worst(s[..., 0] / s[..., -1])
        limit = cholqr2.kappa_limit(n, g.shape[-1], g.dtype)
        index = jnp.where(kappa <= CHOLESKY_KAPPA, 0, jnp.where(kappa <= limit, 1, 2))
        return c, s, index

    def kappa_max(self, n: int, d: int, dtype) -> float:
        """The largest ``κ`` any of its routes accepts (the SVD's)."""
        return max(r.kappa_max(n, d, dtype) for r in self.routes)

    def select(self, rcond) -> Route:
        """The route for a request: itself, or the SVD when ``rcond`` asks for a pseudo-inverse."""
        return self if rcond is None else SVD()

    def _ran(self, out, index, n, d, dtype) -> Ran:
        ids = jnp.asarray([route_id(r) for r in self.routes])
        # The base floors: Auto's own choice keeps CholeskyQR2 below its limit.
        tols = jnp.stack([Route.rank_tolerance(r, n, d, dtype) for r in self.routes])
        return Ran(out, ids[index], tols[index])

    def run(self, method, x, y, n, ridge, rcond, scale) -> Ran:
        if rcond is not None:
            return SVD().run(method, x, y, n, ridge, rcond, scale)
        b = xty(x, y)
        c, s, index = self.estimate(gram(x), n, ridge, scale)
        first = {
            "whiten": (lambda: cholesky.whiten_from(c, s, b, n, scale),
                       lambda: cholqr2.whiten_from(c, x, y, n, ridge, scale)),
            "solve": (lambda: cholesky.solve_from(c, s, b, n, scale),
                      lambda: cholqr2.solve_from(c, x, y, n, ridge, scale)),
        }[method]
        out = jax.lax.switch(index, (*first, lambda: getattr(SVD(), method)(x, y, n, ridge, None, scale)))
        return self._ran(out, index, n, x.shape[-1], x.dtype)

    def run_gram(self, method, g, b, n, ridge, rcond, scale):
        """Cholesky from the moments when that is the choice; otherwise ``complete`` is False."""
        c, s, index = self.estimate(g, n, ridge, scale)
        out = getattr(cholesky, method + "_from")(c, s, b, n, scale)
        return self._ran(out, jnp.zeros_like(index), n, g.shape[-1], g.dtype), index == 0

    def whiten(self, x, y, n, ridge, rcond, scale) -> Whitening:
        return self.run("whiten", x, y, n, ridge, rcond, scale).out

    def solve(self, x, y, n, ridge, rcond, scale) -> Solution:
        return self.run("solve", x, y, n, ridge, rcond, scale).out
