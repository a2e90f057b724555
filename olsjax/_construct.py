"""Constructions: data → transformer parameters that reproduce least squares.

Every construction goes through a route's *whitening factor* ``L`` with
``L Lᵀ = Σ_λ⁺``, ``Σ_λ = XᵀX/n + (λ/n)I`` (T3, ``_routes``). The paper
form (T1/T2) puts ``L`` in ``W_Q = W_K = W_V`` and the task in the head
``W_P``; the values-are-targets form (T4) needs only ``W_Q W_Kᵀ = Σ_λ⁻¹``.
By default ``construct_ols`` adds two refinement layers (T12) that cancel the
rounding error of the whitened Gram matrix.

These parameters are *data-dependent*: they are computed from the context
``(X, Y)`` they are meant to attend to. A forward pass with them reproduces
OLS exactly; it does not show that a transformer with fixed weights computes
OLS on arbitrary new contexts.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _stream
from ._checks import Info
from ._linalg import identity, mm, mT, poison
from ._lstsq import equilibration, floor_rcond, prepare_route, verdict
from ._routes import Route
from ._transformer import LinearTransformer, RegressionAttention


def ridge_head(p, l, n, ridge):
    """Output head ``W_P`` for the paper form with ridge (T5), the matrix ``M`` it inverts, and whether ``M`` is singular.

    With ``W_V = L_λ`` attention contributes ``M = L_λᵀ Σ L_λ = I − (λ/n) L_λᵀ L_λ``
    instead of ``I``, so ``W_P = M⁻¹ L_λᵀ XᵀY / n`` restores
    ``f = X* L_λ L_λᵀ XᵀY / n = X* β_λ``. ``M`` is invertible iff ``X`` has full rank.
    """
    if ridge is None:
        return p, identity(l), jnp.zeros(p.shape[:-2], bool)
    m = identity(l) - (ridge / n) * mm(mT(l), l)
    singular = jnp.linalg.eigvalsh(m)[..., 0] <= m.shape[-1] * jnp.finfo(m.dtype).eps
    return jnp.linalg.solve(m, p), m, singular


def centre(x, y, n, intercept: bool):
    """``X``, ``Y`` minus their means over the real rows (padding rows stay zero), and the means."""
    if not intercept:
        return x, y, None, None
    rows = (jnp.arange(x.shape[-2], dtype=n.dtype) < n)[:, None]
    x_mean = jnp.sum(x, axis=-2, keepdims=True) / n
    y_mean = jnp.sum(y, axis=-2, keepdims=True) / n
    return jnp.where(rows, x - x_mean, 0), jnp.where(rows, y - y_mean, 0), x_mean, y_mean


def whitening(ran, scale, rcond, x_mean):
    """The route's ``L`` for raw ``X`` (``D⁻¹`` put back: ``X(D⁻¹L) = (XD⁻¹)L``), ``P``, the bias and the verdict."""
    l = ran.out.l if scale is None else ran.out.l / scale[..., :, None]
    deficient, rank = verdict(ran.out.spectrum, ran.tolerance, rcond)
    bias = None if x_mean is None else -mm(x_mean, l)[..., 0, :]
    return l, ran.out.p, bias, deficient, rank


def whitened(x, y, n, ridge, rcond, route: Route, intercept: bool, equilibrate: bool):
    """``whitening`` by ``route`` on the (centred) data; also the mean of ``Y``, the route id and ``rcond`` used."""
    xc, yc, x_mean, y_mean = centre(x, y, n, intercept)
    scale = equilibration(xc, route, equilibrate, ridge, rcond)
    rcond = floor_rcond(route, rcond, n, x.shape[-1], x.dtype)
    ran = route.run("whiten", xc, yc, n, ridge, rcond, scale)
    return (*whitening(ran, scale, rcond, x_mean), y_mean, ran.route, rcond)


def whitened_gram(g, b, n, ridge, rcond, route: Route, equilibrate: bool):
    """``whitened`` from streamed moments (no intercept), and whether they sufficed."""
    scale = equilibration(None, route, equilibrate, ridge, rcond, g)
    rcond = floor_rcond(route, rcond, n, g.shape[-1], g.dtype)
    ran, complete = route.run_gram("whiten", g, b, n, ridge, rcond, scale)
    return (*whitening(ran, scale, rcond, None), None, ran.route, rcond), complete


def ols_params(whitened, n, ridge, *, refine: int, vector: bool):
    """The paper's parameters from a whitening (T1, T5 head, T7 biases, T12 layers), poisoned, and the status."""
    l, p, bias, deficient, rank, y_mean, ran, rcond = whitened
    w_p, m, singular = ridge_head(p, l, n, ridge)
    if rcond is None:
        deficient = deficient | singular
    w_r = None if not refine else (identity(l) if ridge is None else jnp.linalg.inv(m))
    params = LinearTransformer(
        w_q=l, w_k=l, w_v=l, w_ffn=identity(l), w_p=w_p, b_q=bias, b_k=bias, b_v=bias,
        b_out=None if y_mean is None else y_mean[..., 0, :], w_r=w_r,
        refinements=refine, vector=vector,
    )
    params = poison(params, deficient)
    # NaN/inf in X reaches L, in Y reaches W_P: checking those two is enough.
    return params, _checks.status(_checks.all_finite((params.w_q, params.w_p)), deficient, rank, ran)


_OLS_STATIC = ("route", "intercept", "equilibrate", "refine", "vector")


@functools.partial(jax.jit, static_argnames=_OLS_STATIC)
def _construct_ols(x, y, n, ridge, rcond, *, route, intercept, equilibrate, refine, vector):
    w = whitened(x, y, n, ridge, rcond, route, intercept, equilibrate)
    return ols_params(w, n, ridge, refine=refine, vector=vector)


@functools.partial(jax.jit, static_argnames=_OLS_STATIC)
def _construct_ols_gram(g, b, n, ridge, rcond, *, route, intercept, equilibrate, refine, vector):
    del intercept  # streamed only without one: centring in the moments would cancel digits
    w, complete = whitened_gram(g, b, n, ridge, rcond, route, equilibrate)
    return *ols_params(w, n, ridge, refine=refine, vector=vector), complete


def construct_ols(
    X: ArrayLike,
    Y: ArrayLike,
    *,
    route: Route | str = "auto",
    ridge: float | ArrayLike = 0.0,
    intercept: bool = False,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
    refine: int | None = None,
    info: bool = False,
) -> LinearTransformer | tuple[LinearTransformer, Info]:
    """Parameters ``θ`` with ``forward(θ, X*, X) = X* β`` (T1, T2, T12).

    The paper's construction: ``W_Q = W_K = W_V = L`` with ``L Lᵀ = Σ⁻¹``,
    ``W_FFN = I``, ``W_P = Lᵀ XᵀY / n``; by default followed by two refinement
    layers (T12) that make the forward pass as accurate as its route's solve. The
    parameters are computed from this ``(X, Y)``: the forward pass reproduces
    OLS for this context, with any queries.

    **Arguments:** ``X`` ``(..., n, d)``; ``Y`` ``(..., n, m)`` or ``(..., n)``;
    ``route``: a whitening route or its name, as in ``lstsq`` (not
    ``"lstsq"``); ``"eigh"`` is the paper's ``L = VΛ^{-1/2}``, ``"zca"`` the
    blog's; ``ridge``: ``λ`` (traced), fit ridge regression with a corrected
    head (T5); ``intercept``: centre ``X`` and ``Y`` and put the means in the
    biases (T7); ``rcond``: with a route that pseudo-inverts (``"auto"``
    takes the SVD), use the pseudo-inverse square root and reproduce the
    minimum-norm ``X* X⁺Y`` (T6); ``equilibrate``: whiten ``X D⁻¹`` with ``D``
    powers of two near the column maxima and put ``D⁻¹`` back into ``L``
    (exact; not with ``ridge`` or ``rcond``); ``refine``: number of
    refinement layers after the first (0: the paper's one-layer model; each
    layer multiplies the first-order error ``‖S − M‖ ≈ u·κ`` into the result
    once more). Default: 2, or 0 with ``ridge``, where ``‖L‖ ≤ √(n/λ)``
    already keeps the one-layer error small and ``W_R = M⁻¹`` (``κ(M)`` up to
    ``s₁²/λ``) would add more rounding than it removes; ``info``: also return
    ``Info`` (the route that ran, the numerical rank).

    **Returns:** a ``LinearTransformer`` (``vector`` set for a vector ``Y``).

    **Raises:** ``ValueError`` when ``X`` is rank-deficient to the route's
    working precision and ``rcond`` is not given, or an input has NaN/inf
    (NaN parameters under ``jit``).
    """
    x, y, vector = _checks.design_and_targets(X, Y)
    route = prepare_route(route, rcond, whiten=True)
    ridge_, rcond_ = _checks.ridge_value(ridge, x.dtype), _checks.rcond_value(rcond, x.dtype)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None)
    refine = _checks.count((0 if ridge_ is not None else 2) if refine is None else refine, "refine")
    params, status = _stream.run(
        _construct_ols, _construct_ols_gram, (x, y), (ridge_, rcond_),
        dict(route=route, intercept=bool(intercept), equilibrate=bool(equilibrate),
             refine=refine, vector=vector),
        gram=route.select(rcond_).from_gram and not intercept,
    )
    params = _checks.finish(params, status, {"X": x, "Y": y}, route, x.shape, params.w_q.dtype)
    return (params, Info(status.route, status.rank)) if info else params


def regression_params(whitened, intercept: bool):
    """Values-are-targets parameters ``W_Q = W_K = L`` from a whitening, poisoned, and the status."""
    l, _, bias, deficient, rank, _, ran, _ = whitened
    params = poison(RegressionAttention(w_q=l, w_k=l, b_q=bias, b_k=bias, intercept=intercept), deficient)
    return params, _checks.status(_checks.all_finite(params.w_q), deficient, rank, ran)


@functools.partial(jax.jit, static_argnames=("route", "intercept", "equilibrate"))
def _construct_regression_attention(x, n, ridge, rcond, *, route, intercept, equilibrate):
    return regression_params(whitened(x, x[..., :1], n, ridge, rcond, route, intercept, equilibrate), intercept)


@functools.partial(jax.jit, static_argnames=("route", "intercept", "equilibrate"))
def _construct_regression_attention_gram(g, n, ridge, rcond, *, route, intercept, equilibrate):
    w, complete = whitened_gram(g, g[..., :1], n, ridge, rcond, route, equilibrate)
    return *regression_params(w, intercept), complete


def construct_regression_attention(
    X: ArrayLike,
    *,
    route: Route | str = "auto",
    ridge: float | ArrayLike = 0.0,
    intercept: bool = False,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
    info: bool = False,
) -> RegressionAttention | tuple[RegressionAttention, Info]:
    """Values-are-targets parameters with ``W_Q W_Kᵀ = Σ_λ⁻¹`` (T4, T5): OLS for every ``Y``.

    ``regression_attention(θ, X*, X, Y)`` then equals the (ridge) prediction
    ``X*(XᵀX + λI)⁻¹XᵀY`` for any targets ``Y``, and the in-sample attention
    matrix is the hat matrix. Only ``X`` is needed: the targets are the values.

    **Arguments:** as ``construct_ols`` without ``Y`` and ``refine``;
    ``ridge > 0`` also allows rank-deficient ``X`` (``Σ_λ`` is invertible).

    **Returns:** a ``RegressionAttention`` (and ``Info`` with ``info=True``).
    """
    x = _checks.array(X, "X", min_ndim=2)
    route = prepare_route(route, rcond, whiten=True)
    ridge_, rcond_ = _checks.ridge_value(ridge, x.dtype), _checks.rcond_value(rcond, x.dtype)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None or ridge_ is not None)
    params, status = _stream.run(
        _construct_regression_attention, _construct_regression_attention_gram, (x,), (ridge_, rcond_),
        dict(route=route, intercept=bool(intercept), equilibrate=bool(equilibrate)),
        gram=route.select(rcond_).from_gram and not intercept,
    )
    params = _checks.finish(params, status, {"X": x}, route, x.shape, params.w_q.dtype)
    return (params, Info(status.route, status.rank)) if info else params
