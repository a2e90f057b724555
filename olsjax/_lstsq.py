"""Least squares by any route (``β``), the hat matrix, the condition number, and the route ``Auto`` picks.

Every function here follows the checked entry of ``_checks``: validate, one
module-level jitted core (``ridge`` and ``rcond`` traced, only their
presence static), poison, finish.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks, _stream
from ._checks import Data, Info
from ._linalg import column_scale, gram, is_deficient, mm, mT, numerical_rank, poison, scale_columns
from ._routes import ROUTE_NAMES, ROUTES, Auto, Ran, Route, as_route


def prepare_route(route: Route | str, rcond, *, whiten: bool) -> Route:
    """``route=`` as an object, refused if it cannot serve the request."""
    route = as_route(route)
    _checks.route_request(route.select(rcond), rcond, whiten=whiten)
    return route


def floor_rcond(route: Route, rcond, n, d: int, dtype):
    """``rcond`` raised to the smallest relative singular value the route resolves.

    Below ``rank_tolerance`` a singular value is rounding noise: inverting it
    returns garbage, so a smaller ``rcond`` (0 included) is treated as that floor.
    """
    if rcond is None:
        return None
    floor = jnp.maximum(rcond, route.select(rcond).rank_tolerance(n, d, dtype))
    return jnp.where((rcond >= 0) & (rcond < 1), floor, jnp.nan)  # a traced rcond outside [0, 1): NaN


def equilibration(x, route: Route, equilibrate: bool, ridge, rcond, g=None):
    """Column scale ``D``, or ``None``: off with ridge or ``rcond``, whose answers depend on the scale.

    Routes that form ``XᵀX`` read the column norms off its diagonal ``g`` (given,
    or formed here and merged by XLA with the route's own): no extra pass over ``X``.
    """
    if not equilibrate or ridge is not None or rcond is not None:
        return None
    if g is None and route.forms_gram:
        g = gram(x)
    return column_scale(x, g)


def verdict(spectrum, tolerance, rcond):
    """``(deficient, rank)``: deficiency counts only when a full-rank answer was asked for."""
    deficient = is_deficient(spectrum, tolerance)
    if rcond is not None:  # only an invalid (NaN) cutoff, from floor_rcond, is refused
        deficient = jnp.broadcast_to(jnp.isnan(rcond), deficient.shape)
    return deficient, numerical_rank(spectrum, tolerance)


def coefficients(ran: Ran, scale, rcond, vector: bool):
    """``β`` of the raw columns (``D⁻¹`` put back), poisoned where deficient, and the status."""
    beta, spectrum = ran.out
    if scale is not None:
        beta = beta / scale[..., :, None]
    deficient, rank = verdict(spectrum, ran.tolerance, rcond)
    beta = poison(beta, deficient)
    if vector:
        beta = beta[..., 0]
    return beta, _checks.status(_checks.all_finite(beta), deficient, rank, ran.route)


def unscaled(beta, px, py):
    """``β = P⁻¹ β̃ c`` for ``X = X̃ P``, ``Y = Ỹ c`` (``P`` per column ``(..., 1, d)`` or one number)."""
    return beta * py / (px if np.ndim(px) == 0 else np.swapaxes(px, -1, -2))


@functools.partial(jax.jit, static_argnames=("route", "equilibrate", "vector"))
def _lstsq(x, y, n, ridge, rcond, *, route, equilibrate, vector):
    scale = equilibration(x, route, equilibrate, ridge, rcond)
    rcond = floor_rcond(route, rcond, n, x.shape[-1], x.dtype)
    return coefficients(route.run("solve", x, y, n, ridge, rcond, scale), scale, rcond, vector)


@functools.partial(jax.jit, static_argnames=("route", "equilibrate", "vector"))
def _lstsq_gram(g, b, n, ridge, rcond, *, route, equilibrate, vector):
    """``_lstsq`` from streamed moments, and whether they sufficed (``Auto`` may need ``X``)."""
    scale = equilibration(None, route, equilibrate, ridge, rcond, g)
    rcond = floor_rcond(route, rcond, n, g.shape[-1], g.dtype)
    ran, complete = route.run_gram("solve", g, b, n, ridge, rcond, scale)
    return *coefficients(ran, scale, rcond, vector), complete


def lstsq(
    X: Data,
    Y: Data,
    *,
    route: Route | str = "auto",
    ridge: float | ArrayLike = 0.0,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
    info: bool = False,
) -> Float[Array, "*b d m"] | Float[Array, "*b d"] | tuple[Array, Info]:
    """Least-squares (or ridge) coefficients ``β = (XᵀX + λI)⁻¹XᵀY``.

    **Arguments:** ``X`` ``(..., n, d)``; ``Y`` ``(..., n, m)`` or ``(..., n)``;
    ``route``: a ``Route`` or its name (``olsjax.ROUTES``): ``"auto"``
    (default: Cholesky, CholeskyQR2 or SVD by a condition estimate, one route
    per batch), ``"qr"`` or ``"svd"`` (error ``∝ κ``), ``"cholqr2"`` (``∝ κ``
    up to ``κ ≈ u^{-1/2}``), ``"cholesky"``, ``"eigh"`` or ``"zca"`` of the
    Gram matrix (``∝ κ²``), ``"lstsq"`` (JAX's own); ``ridge``: ``λ ≥ 0``,
    traced (a sweep compiles once; ``jax.grad`` and ``jax.vmap`` over it work);
    ``rcond``: with a route that pseudo-inverts (``"svd"``, ``"eigh"``,
    ``"zca"``, ``"lstsq"``; ``"auto"`` takes the SVD), treat singular values
    below ``rcond·s_max`` as zero and return the minimum-norm solution ``X⁺Y``
    (raised to what the route resolves: ``max(n, d)·ε``, or ``√(max(d, 200)·ε)`` on Gram
    routes); traced too; ``equilibrate``: solve with columns scaled by powers of
    two (exact; not with ``ridge`` or ``rcond``); ``info``: also return ``Info``
    (the route that ran, the numerical rank).

    **Returns:** ``β`` of shape ``(..., d, m)``, or ``(..., d)`` for vector ``Y``.

    **Raises:** ``ValueError`` if ``X`` is rank-deficient (or ``n < d``) and
    neither ``rcond`` nor ``ridge > 0`` was given, or an input has NaN/inf;
    under ``jit`` such entries are NaN.
    """
    x, y, vector = _checks.design_and_targets(X, Y)
    route = prepare_route(route, rcond, whiten=False)
    ridge_, rcond_ = _checks.ridge_value(ridge, x.dtype), _checks.rcond_value(rcond, x.dtype)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None or ridge_ is not None)
    beta, status = _stream.run(
        _lstsq, _lstsq_gram, (x, y), (ridge_, rcond_),
        dict(route=route, equilibrate=bool(equilibrate), vector=vector),
        gram=route.select(rcond_).from_gram,
    )
    scales = _checks.rescaling(status, x, y, per_column=ridge_ is None and rcond_ is None)
    if scales is not None:  # XᵀX or XᵀY over- or underflowed: the same problem, exactly rescaled
        px, py = scales
        again = lstsq(x / px, (y / py)[..., 0] if vector else y / py, route=route,
                      ridge=ridge if ridge_ is None else ridge_ / px**2, rcond=rcond,
                      equilibrate=equilibrate, info=info)
        beta, more = again if info else (again, None)
        beta = unscaled(beta[..., None] if vector else beta, px, py)
        beta = beta[..., 0] if vector else beta
        return (beta, more) if info else beta
    beta = _checks.finish(beta, status, {"X": x, "Y": y}, route, x.shape, beta.dtype)
    return (beta, Info(status.route, status.rank)) if info else beta


@functools.partial(jax.jit, static_argnames=("route", "equilibrate"))
def _hat(x, n, ridge, rcond, *, route, equilibrate):
    scale = equilibration(x, route, equilibrate, ridge, rcond)
    rcond = floor_rcond(route, rcond, n, x.shape[-1], x.dtype)
    ran = route.run("whiten", x, x[..., :1], n, ridge, rcond, scale)
    z = mm(scale_columns(x, scale), ran.out.l) / jnp.sqrt(n)
    deficient, rank = verdict(ran.out.spectrum, ran.tolerance, rcond)
    h = poison(mm(z, mT(z)), deficient)
    return h, _checks.status(_checks.all_finite(h), deficient, rank, ran.route)


def hat_matrix(
    X: Data,
    *,
    route: Route | str = "svd",
    ridge: float | ArrayLike = 0.0,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
) -> Float[Array, "*b n n"]:
    """Hat (ridge smoother) matrix ``H_λ = X(XᵀX + λI)⁻¹Xᵀ = Z Zᵀ`` with ``Z = X L/√n``.

    **Arguments:** ``X`` ``(..., n, d)``; ``route``: any whitening route
    (default ``"svd"``: ``Z = U diag(s/√(s²+λ))``); ``ridge``, ``rcond`` and
    ``equilibrate`` as in ``lstsq`` (with ``rcond``, ``H = X X⁺``, the
    projector onto the column space).

    **Returns:** ``(..., n, n)``; ``trace H_λ = Σ s_i²/(s_i² + λ)``.
    """
    x = _checks.array(X, "X", min_ndim=2)
    route = prepare_route(route, rcond, whiten=True)
    ridge_, rcond_ = _checks.ridge_value(ridge, x.dtype), _checks.rcond_value(rcond, x.dtype)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None or ridge_ is not None)
    xd = _checks.to_device(x)
    n = _checks.real_rows(x.shape[-2], xd.dtype)
    h, status = _hat(xd, n, ridge_, rcond_, route=route, equilibrate=bool(equilibrate))
    px = _checks.rescaling(status, x, per_column=ridge_ is None and rcond_ is None)
    if px is not None:  # H(XP) = H(X) for P per column; with ridge one P and λ/P²
        return hat_matrix(x / px, route=route, ridge=ridge if ridge_ is None else ridge_ / px**2,
                          rcond=rcond, equilibrate=equilibrate)
    return _checks.finish(h, status, {"X": x}, route, x.shape, xd.dtype)


@jax.jit
def _condition_number(x):
    s = jnp.linalg.svd(x, compute_uv=False)
    return s[..., 0] / s[..., -1]


def condition_number(X: Data) -> Float[Array, "*b"]:
    """2-norm condition number ``κ(X) = s_max / s_min`` of ``X`` ``(..., n, d)``, from its SVD."""
    x = _checks.to_device(_checks.array(X, "X", min_ndim=2))
    if _checks.is_concrete(x):
        _checks.finite_input(x, "X")
    return _condition_number(x)


@functools.partial(jax.jit, static_argnames=("equilibrate",))
def _auto_choice(x, n, ridge, *, equilibrate):
    _, _, index = Auto().estimate(gram(x), n, ridge, equilibration(x, Auto(), equilibrate, ridge, None))
    return jnp.asarray([ROUTE_NAMES.index(r.name) for r in Auto.routes])[index]


def select_route(
    X: Data,
    *,
    route: Route | str = "auto",
    ridge: float | ArrayLike = 0.0,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
) -> Route:
    """The concrete route a call with these options runs on ``X``: what ``"auto"`` would pick.

    Eager only (it returns a Python object); under ``jit`` use ``info=True``.

    >>> olsjax.select_route(np.random.default_rng(0).standard_normal((100, 3)))
    Cholesky()
    """
    x = _checks.array(X, "X", min_ndim=2)
    rcond_ = _checks.rcond_value(rcond, x.dtype)
    ridge_ = _checks.ridge_value(ridge, x.dtype)
    route = as_route(route).select(rcond_)
    if not isinstance(route, Auto):
        return route
    xd = _checks.to_device(x)
    if not _checks.is_concrete(xd):
        raise TypeError("select_route reads the data: call it outside jit, or pass info=True to the fit")
    _checks.finite_input(x, "X")
    index = _auto_choice(xd, _checks.real_rows(x.shape[-2], xd.dtype), ridge_, equilibrate=bool(equilibrate))
    return ROUTES[ROUTE_NAMES[int(index)]]
