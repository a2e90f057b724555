"""Constructions: data → transformer parameters that reproduce least squares.

Every construction goes through a route's *whitening factor* ``L`` with
``L Lᵀ = Σ_λ⁺``, ``Σ_λ = XᵀX/n + (λ/n)I`` (T3, ``_routes``). The paper
form (T1/T2) puts ``L`` in ``W_Q = W_K = W_V`` and the task in the head
``W_P``; the values-are-targets form (T4) needs only ``W_Q W_Kᵀ = Σ_λ⁻¹``.
By default ``construct_ols`` adds refinement layers (T12, as many as T13 needs) that cancel the
rounding error of the whitened Gram matrix.

These parameters are *data-dependent*: they are computed from the context
``(X, Y)`` they are meant to attend to. A forward pass with them reproduces
OLS exactly; it does not show that a transformer with fixed weights computes
OLS on arbitrary new contexts.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks, _stream
from ._checks import Data, Info
from ._linalg import identity, keep_mask, mm, mT, poison, unit_roundoff
from ._ranges import condition, default_layers, forward_limit, one_layer_limit
from ._lstsq import equilibration, floor_rcond, prepare_route, verdict
from ._routes import SVD, Route
from ._transformer import LinearTransformer, RegressionAttention


class Whitened(NamedTuple):
    """A route's whitening of the (centred) context, mapped back to the raw columns.

    ``l``, ``p``: ``L`` and ``P``; ``bias``: ``−x̄ L`` or ``None``; ``deficient``,
    ``rank``: the route's verdict; ``y_mean``: ``ȳ`` or ``None``; ``route``: the
    id of the route that ran; ``rcond``: the cutoff used (or ``None``);
    ``kappa``: ``κ̂``, the condition number the construction's accuracy range is
    judged by (``_ranges``): that of the kept singular values, times the
    digits centring lost (``centre``).
    """

    l: Any
    p: Any
    bias: Any
    deficient: Any
    rank: Any
    y_mean: Any
    route: Any
    rcond: Any
    kappa: Any


def ridge_head(p, l, n, ridge):
    """Output head ``W_P`` for the paper form with ridge (T5), the matrix ``M`` it inverts, and ``λ_min(M)``.

    With ``W_V = L_λ`` attention contributes ``M = L_λᵀ Σ L_λ = I − (λ/n) L_λᵀ L_λ``
    instead of ``I``, so ``W_P = M⁻¹ L_λᵀ XᵀY / n`` restores
    ``f = X* L_λ L_λᵀ XᵀY / n = X* β_λ``. ``M`` is invertible iff ``X`` has full
    rank; its smallest eigenvalue ``s_min²/(s_min² + λ)`` enters the accuracy range.
    """
    if ridge is None:
        return p, identity(l), jnp.ones(p.shape[:-2], p.dtype)
    m = identity(l) - (ridge / n) * mm(mT(l), l)
    return jnp.linalg.solve(m, p), m, jnp.linalg.eigvalsh(m)[..., 0]


def centre(x, y, n, intercept: bool):
    """``X``, ``Y`` minus their means over the real rows (padding rows stay zero), the means, and the digits lost.

    A column constant to working precision (its centred entries at most
    ``n·ε`` times its largest: the rounding of the mean) is collinear with the
    intercept; it is set to exactly zero, so the route sees the rank
    deficiency instead of rounding residue that equilibration would blow up to
    size one. Centring a nearly constant column loses ``log10 a_j`` digits,
    ``a_j = max|x_j| / max|x_j − x̄_j|``: ``max_j a_j`` (1 without an intercept)
    multiplies ``κ̂``, as ``κ([X, 1])`` would.
    """
    if not intercept:
        return x, y, None, None, jnp.ones((), x.dtype)
    rows = (jnp.arange(x.shape[-2], dtype=n.dtype) < n)[:, None]
    x_mean = jnp.sum(x, axis=-2, keepdims=True) / n
    y_mean = jnp.sum(y, axis=-2, keepdims=True) / n
    xc = jnp.where(rows, x - x_mean, 0)
    size, spread = jnp.max(jnp.abs(x), axis=-2), jnp.max(jnp.abs(xc), axis=-2)
    constant = spread <= n * 2 * unit_roundoff(x.dtype) * size
    xc = jnp.where(constant[..., None, :], 0, xc)
    lost = jnp.where(constant | (spread == 0), 1, size / jnp.where(spread == 0, 1, spread))
    return xc, jnp.where(rows, y - y_mean, 0), x_mean, y_mean, jnp.maximum(jnp.max(lost, axis=-1), 1)


def whitening(ran, scale, rcond, x_mean, lost) -> Whitened:
    """The route's ``L`` for raw ``X`` (``D⁻¹`` put back: ``X(D⁻¹L) = (XD⁻¹)L``), ``P``, the bias and the verdict."""
    l = ran.out.l if scale is None else ran.out.l / scale[..., :, None]
    deficient, rank = verdict(ran.out.spectrum, ran.tolerance, rcond)
    bias = None if x_mean is None else -mm(x_mean, l)[..., 0, :]
    kappa = condition(ran.out.spectrum, keep_mask(ran.out.spectrum, rcond)) * lost
    return Whitened(l, ran.out.p, bias, deficient, rank, None, ran.route, rcond, kappa)


def whitened(x, y, n, ridge, rcond, route: Route, intercept: bool, equilibrate: bool) -> Whitened:
    """``whitening`` by ``route`` on the (centred) data, with the mean of ``Y``."""
    xc, yc, x_mean, y_mean, lost = centre(x, y, n, intercept)
    scale = equilibration(xc, route, equilibrate, ridge, rcond)
    rcond = floor_rcond(route, rcond, n, x.shape[-1], x.dtype)
    ran = route.run("whiten", xc, yc, n, ridge, rcond, scale)
    return whitening(ran, scale, rcond, x_mean, lost)._replace(y_mean=y_mean)


def whitened_gram(g, b, n, ridge, rcond, route: Route, equilibrate: bool):
    """``whitened`` from streamed moments (no intercept), and whether they sufficed."""
    scale = equilibration(None, route, equilibrate, ridge, rcond, g)
    rcond = floor_rcond(route, rcond, n, g.shape[-1], g.dtype)
    ran, complete = route.run_gram("whiten", g, b, n, ridge, rcond, scale)
    return whitening(ran, scale, rcond, None, jnp.ones((), g.dtype)), complete


def in_range(kappa, limit):
    """Whether ``κ̂ ≤ limit`` (False for NaN: a failed estimate is out of range)."""
    return kappa <= limit


def ols_params(w: Whitened, n, ridge, *, route: Route, refine: int, vector: bool):
    """The paper's parameters from a whitening (T1, T5 head, T7 biases, T12 layers), poisoned, and the status.

    Refused (poisoned) beyond the forward pass's accuracy range (``_ranges``).
    With ridge ``κ̂`` is that of ``[X; √λ I]``, and the head ``M⁻¹`` adds a
    second condition: ``κ̂/√λ_min(M)`` (about ``κ(X)``: ``M⁻¹`` amplifies the
    error of ``S`` on the directions ridge shrinks, a ``p = 1`` term) must stay
    within the ``p = 1`` floor ``1/(max(n, d)·ε)`` for the one-layer model, and ``κ̂/λ_min(M)`` (the
    contraction ``‖M⁻¹(S − M)‖`` over ``u``) within the refinement limit with
    layers; ``λ_min(M) ≤ d·ε`` is not resolved at all.
    """
    w_p, m, m_min = ridge_head(w.p, w.l, n, ridge)
    d, dtype = w.l.shape[-2], w.l.dtype
    deficient = w.deficient | ~in_range(w.kappa, forward_limit(route, refine, d, dtype))
    if ridge is not None:
        # M = I − (λ/n)LᵀL is formed by a subtraction: its eigenvalues below d·ε are noise.
        resolved = m_min > d * 2 * unit_roundoff(dtype)
        m_min = jnp.where(resolved, m_min, 0)  # κ̂ = inf: refused
        kappa = w.kappa / (jnp.sqrt(m_min) if refine == 0 else m_min)
        # κ̂/√λ_min(M) ≈ κ(X) enters linearly: the p = 1 floor, whatever the route.
        limit = 1 / SVD().rank_tolerance(n, d, dtype) if refine == 0 else forward_limit(route, refine, d, dtype)
        deficient = deficient | ~in_range(kappa, limit)
        w = w._replace(kappa=kappa)
    w_r = None if not refine else (identity(w.l) if ridge is None else jnp.linalg.inv(m))
    params = LinearTransformer(
        w_q=w.l, w_k=w.l, w_v=w.l, w_ffn=identity(w.l), w_p=w_p, b_q=w.bias, b_k=w.bias, b_v=w.bias,
        b_out=None if w.y_mean is None else w.y_mean[..., 0, :], w_r=w_r,
        refinements=refine, vector=vector,
    )
    params = poison(params, deficient)
    # NaN/inf in X reaches L, in Y reaches W_P: checking those two is enough.
    finite = _checks.all_finite((params.w_q, params.w_p))
    return params, _checks.status(finite, deficient, w.rank, w.route, w.kappa)


_OLS_STATIC = ("route", "intercept", "equilibrate", "refine", "vector")


@functools.partial(jax.jit, static_argnames=_OLS_STATIC)
def _construct_ols(x, y, n, ridge, rcond, *, route, intercept, equilibrate, refine, vector):
    w = whitened(x, y, n, ridge, rcond, route, intercept, equilibrate)
    return ols_params(w, n, ridge, route=route.select(rcond), refine=refine, vector=vector)


@functools.partial(jax.jit, static_argnames=_OLS_STATIC)
def _construct_ols_gram(g, b, n, ridge, rcond, *, route, intercept, equilibrate, refine, vector):
    del intercept  # streamed only without one: centring in the moments would cancel digits
    w, complete = whitened_gram(g, b, n, ridge, rcond, route, equilibrate)
    return *ols_params(w, n, ridge, route=route.select(rcond), refine=refine, vector=vector), complete


def construct_ols(
    X: Data,
    Y: Data,
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
    ``W_FFN = I``, ``W_P = Lᵀ XᵀY / n``; by default followed by refinement
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
    once more). Default: the fewest layers, at least 2, whose accuracy range
    covers everything any route accepts (``_ranges.default_layers``: for
    ``n = 20, 1000, 10⁶`` rows 19, 5, 2 in float64, whatever the route), or 0
    with ``ridge``, where ``‖L‖ ≤ √(n/λ)`` already keeps the one-layer error
    small and ``W_R = M⁻¹`` (``κ(M)`` up to ``s₁²/λ``) would add more
    rounding than it removes; ``info``: also return ``Info`` (the route that
    ran, the numerical rank).

    **Returns:** a ``LinearTransformer`` (``vector`` set for a vector ``Y``).

    **Raises:** ``ValueError`` when ``X`` is rank-deficient to the route's
    working precision and ``rcond`` is not given, when its condition
    estimate is beyond the accuracy range of ``refine`` layers (README,
    "Accuracy, honestly"; T13), or an input has NaN/inf (NaN parameters
    under ``jit``).
    """
    x, y, vector = _checks.design_and_targets(X, Y)
    route = prepare_route(route, rcond, whiten=True)
    ridge_, rcond_ = _checks.ridge_value(ridge, x.dtype), _checks.rcond_value(rcond, x.dtype)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None)
    dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    chosen = route.select(rcond_)
    if refine is None:
        refine = 0 if ridge_ is not None else default_layers(x.shape[-2], x.shape[-1], dtype)
    refine = _checks.count(refine, "refine")
    params, status = _stream.run(
        _construct_ols, _construct_ols_gram, (x, y), (ridge_, rcond_),
        dict(route=route, intercept=bool(intercept), equilibrate=bool(equilibrate),
             refine=refine, vector=vector),
        gram=route.select(rcond_).from_gram and not intercept,
    )
    limit = _checks.Limit(
        forward_limit(chosen, refine, x.shape[-1], dtype),
        f"the forward pass with refine={refine}" + ("" if ridge_ is None else " and ridge (T5)"),
        "pass refine=None (the default covers the route's whole range)" if ridge_ is None
        else "pass refine=0 or a larger ridge, or use lstsq",
    )
    scales = _checks.rescaling(status, x, y, per_column=ridge_ is None and rcond_ is None)
    if scales is not None:  # XᵀX or XᵀY over- or underflowed: the same problem, exactly rescaled
        px, py = scales
        again = construct_ols(
            x / px, (y / py)[..., 0] if vector else y / py, route=route,
            ridge=ridge if ridge_ is None else ridge_ / px**2, intercept=intercept, rcond=rcond,
            equilibrate=equilibrate, refine=refine, info=info,
        )
        params, more = again if info else (again, None)
        params = _unscaled(params, px, py)
        return (params, more) if info else params
    params = _checks.finish(params, status, {"X": x, "Y": y}, route, x.shape, dtype, limit)
    return (params, Info(status.route, status.rank)) if info else params


def _unscaled(params, px, py=None):
    """Parameters for ``X = X̃ P``, ``Y = Ỹ c`` from those for ``X̃``, ``Ỹ``: ``W ↦ P⁻¹W`` on the
    projections; ``W_P``, ``b_out`` times ``c``. Biases ``−x̄L`` and the attention state are unchanged."""
    rows = px if np.ndim(px) == 0 else np.swapaxes(px, -1, -2)
    fields = {"w_q": params.w_q / rows, "w_k": params.w_k / rows}
    if py is not None:
        fields.update(w_v=params.w_v / rows, w_p=params.w_p * py,
                      b_out=None if params.b_out is None else params.b_out * py[..., 0, :])
    return dataclasses.replace(params, **fields)


def regression_params(w: Whitened, intercept: bool):
    """Values-are-targets parameters ``W_Q = W_K = L`` from a whitening, poisoned, and the status.

    A ``p = 2`` form on every route (the output inherits the rounding of ``S``
    unrefined): refused beyond ``one_layer_limit``, as the Gram routes are.
    """
    deficient = w.deficient | ~in_range(w.kappa, one_layer_limit(w.l.shape[-2], w.l.dtype))
    params = poison(RegressionAttention(w_q=w.l, w_k=w.l, b_q=w.bias, b_k=w.bias, intercept=intercept), deficient)
    return params, _checks.status(_checks.all_finite(params.w_q), deficient, w.rank, w.route, w.kappa)


@functools.partial(jax.jit, static_argnames=("route", "intercept", "equilibrate"))
def _construct_regression_attention(x, n, ridge, rcond, *, route, intercept, equilibrate):
    return regression_params(whitened(x, x[..., :1], n, ridge, rcond, route, intercept, equilibrate), intercept)


@functools.partial(jax.jit, static_argnames=("route", "intercept", "equilibrate"))
def _construct_regression_attention_gram(g, n, ridge, rcond, *, route, intercept, equilibrate):
    w, complete = whitened_gram(g, g[..., :1], n, ridge, rcond, route, equilibrate)
    return *regression_params(w, intercept), complete


def construct_regression_attention(
    X: Data,
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

    A ``p = 2`` form on every route (nothing refines the state ``S``): it
    refuses ``κ̂ > (d·ε)^{-1/2}`` as the Gram routes do (T13).

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
    dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    limit = _checks.Limit(
        one_layer_limit(x.shape[-1], dtype), "the values-are-targets form (p = 2, T4)",
        "construct_ols reaches the route's whole range with refinement layers; lstsq gives β",
    )
    px = _checks.rescaling(status, x, per_column=ridge_ is None and rcond_ is None)
    if px is not None:
        again = construct_regression_attention(
            x / px, route=route, ridge=ridge if ridge_ is None else ridge_ / px**2, intercept=intercept,
            rcond=rcond, equilibrate=equilibrate, info=info,
        )
        return (_unscaled(again[0], px), again[1]) if info else _unscaled(again, px)
    params = _checks.finish(params, status, {"X": x}, route, x.shape, dtype, limit)
    return (params, Info(status.route, status.rank)) if info else params
