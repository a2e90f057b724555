"""Least-squares routes, one file each; ``as_route`` resolves ``route=`` (an object or its name)."""

from __future__ import annotations

from ._base import ROUTE_NAMES, Ran, Route, Solution, Whitening, route_id
from .auto import CHOLESKY_KAPPA, Auto
from .cholesky import Cholesky
from .cholqr2 import CholQR2, kappa_limit
from .eigh import ZCA, Eigh
from .jax_lstsq import JaxLstsq
from .qr import QR
from .svd import SVD

#: Every route ``route=`` accepts, by name: the concrete ones and ``"auto"``.
ROUTES: dict[str, Route] = {
    r.name: r for r in (Auto(), Cholesky(), CholQR2(), QR(), SVD(), Eigh(), ZCA(), JaxLstsq())
}
assert set(ROUTES) - {"auto"} == set(ROUTE_NAMES)


def as_route(route: Route | str, name: str = "route") -> Route:
    """``route`` as a ``Route`` object: itself, or the one its name names; a clear error otherwise."""
    if isinstance(route, Route):
        return route
    if isinstance(route, str) and route in ROUTES:
        return ROUTES[route]
    raise ValueError(
        f"{name} must be a Route object or one of {', '.join(map(repr, ROUTES))}; got {route!r}"
    )


__all__ = [
    "CHOLESKY_KAPPA", "QR", "ROUTES", "ROUTE_NAMES", "SVD", "ZCA", "Auto", "CholQR2", "Cholesky",
    "Eigh", "JaxLstsq", "Ran", "Route", "Solution", "Whitening", "as_route", "kappa_limit", "route_id",
]
