"""Constructions: data → transformer parameters that reproduce least squares.

Every construction goes through a *whitening factor* ``L`` with
``L Lᵀ = Σ_λ⁺``, ``Σ_λ = XᵀX/n + (λ/n)I`` (T3): the paper's eigendecomposition,
ZCA, the inverse Cholesky factor, the inverse R of ``X/√n = QR``, or
``√n V S⁻¹`` from the SVD. The paper form (T1/T2) puts ``L`` in
``W_Q = W_K = W_V`` and the task in the head ``W_P``; the values-are-targets
form (T4) needs only ``W_Q W_Kᵀ = Σ_λ⁻¹``.

These parameters are *data-dependent*: they are computed from the context
``(X, Y)`` they are meant to attend to. A forward pass with them reproduces
OLS exactly; it does not show that a transformer with fixed weights computes
OLS on arbitrary new contexts.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.typing import ArrayLike
from jaxtyping import Array, Bool, Float

from . import _checks
from ._linalg import (
    check_pinv_route,
    effective_rcond,
    gram,
    identity,
    inv_sqrt,
    is_deficient,
    keep_mask,
    mm,
    mT,
    numerical_rank,
    poison,
    rank_tolerance,
    ridge_augment,
    singular_values,
)
from ._transformer import LinearTransformer, RegressionAttention

Factor = Literal["eigh", "zca", "cholesky", "qr", "svd"]
FACTORS: tuple[str, ...] = ("eigh", "zca", "cholesky", "qr", "svd")


class Whitening(NamedTuple):
    """A whitening factor and what it knows about the data.

    ``l``: ``L`` with ``L Lᵀ = Σ_λ⁺``; ``p``: ``Lᵀ XᵀY / n`` (computed without
    ``XᵀY`` where the route allows); ``spectrum``: estimated singular values of
    ``X`` (stacked over ``√λ I`` when ridge > 0).
    """

    l: Float[Array, "*b d d"]
    p: Float[Array, "*b d m"]
    spectrum: Float[Array, "*b d"]


def _spectral(x, y, ridge, rcond, zca):
    n = x.shape[-2]
    lam, v = jnp.linalg.eigh(gram(x))
    keep = keep_mask(jnp.sqrt(jnp.clip(lam, 0)), rcond)
    l = v * inv_sqrt(lam + ridge / n, keep)[..., None, :]
    if zca:
        l = mm(l, mT(v))
    p = mm(mT(l), mm(mT(x), y)) / n
    return Whitening(l, p, jnp.sqrt(jnp.clip(n * lam + ridge, 0)))


def _cholesky(x, y, ridge):
    n = x.shape[-2]
    c = jnp.linalg.cholesky(gram(x) + (ridge / n) * identity(x))
    c_inv = solve_triangular(c, identity(x), lower=True)
    p = solve_triangular(c, mm(mT(x), y) / n, lower=True)
    return Whitening(mT(c_inv), p, math.sqrt(n) * singular_values(c))


def _qr(x, y, ridge):
    n = x.shape[-2]
    if ridge:
        x, y = ridge_augment(x, y, ridge)
    q, r = jnp.linalg.qr(x / math.sqrt(n))
    l = solve_triangular(r, identity(r), lower=False)
    p = mm(mT(q), y) / math.sqrt(n)
    return Whitening(l, p, math.sqrt(n) * singular_values(r))


def _svd(x, y, ridge, rcond):
    n = x.shape[-2]
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    root = jnp.sqrt(s * s + ridge)
    scale = inv_sqrt(root * root, keep_mask(s, rcond))
    l = mT(vt) * (math.sqrt(n) * scale)[..., None, :]
    p = (s * scale / math.sqrt(n))[..., :, None] * mm(mT(u), y)
    return Whitening(l, p, root)


def whiten(
    x: Float[Array, "*b n d"],
    y: Float[Array, "*b n m"],
    factor: str,
    ridge: float = 0.0,
    rcond: float | None = None,
) -> Whitening:
    """Whitening factor ``L`` (``L Lᵀ = Σ_λ⁺``) and ``P = Lᵀ XᵀY / n`` by the named factor.

    Low level: no validation of values and no floor on ``rcond``; the
    constructions above it do both.
    """
    _checks.check_choice(factor, FACTORS, "factor")
    if factor in ("eigh", "zca"):
        return _spectral(x, y, ridge, rcond, zca=factor == "zca")
    if factor == "cholesky":
        return _cholesky(x, y, ridge)
    if factor == "qr":
        return _qr(x, y, ridge)
    return _svd(x, y, ridge, rcond)


def ridge_head(
    w: Whitening, n: int, ridge: float
) -> tuple[Float[Array, "*b d m"], Bool[Array, "*b"]]:
    """Output head ``W_P`` for the paper form with ridge (T5), and whether it is singular.

    With ``W_V = L_λ`` attention contributes ``M = L_λᵀ Σ L_λ = I − (λ/n) L_λᵀ L_λ``
    instead of ``I``, so ``W_P = M⁻¹ L_λᵀ XᵀY / n`` restores
    ``f = X* L_λ L_λᵀ XᵀY / n = X* β_λ``. ``M`` is invertible iff ``X`` has full rank.
    """
    if not ridge:
        return w.p, jnp.zeros(w.p.shape[:-2], bool)
    m = identity(w.l) - (ridge / n) * mm(mT(w.l), w.l)
    singular = jnp.linalg.eigvalsh(m)[..., 0] <= m.shape[-1] * jnp.finfo(m.dtype).eps
    return jnp.linalg.solve(m, w.p), singular


def _centre(x, y, intercept):
    if not intercept:
        zero = jnp.zeros(x.shape[:-2] + (1, x.shape[-1]), x.dtype)
        return x, y, zero, jnp.zeros(y.shape[:-2] + (1, y.shape[-1]), y.dtype)
    x_mean = jnp.mean(x, axis=-2, keepdims=True)
    y_mean = jnp.mean(y, axis=-2, keepdims=True)
    return x - x_mean, y - y_mean, x_mean, y_mean


def _deficiency(w: Whitening, factor, shape, dtype, rcond):
    tol = rank_tolerance(factor, *shape, dtype)
    return is_deficient(w.spectrum, tol) & (rcond is None), numerical_rank(w.spectrum, tol)


@functools.partial(jax.jit, static_argnames=("factor", "ridge", "intercept", "rcond"))
def _construct_ols(x, y, factor, ridge, intercept, rcond):
    xc, yc, x_mean, y_mean = _centre(x, y, intercept)
    w = whiten(xc, yc, factor, ridge, rcond)
    head, singular = ridge_head(w, x.shape[-2], ridge)
    deficient, rank = _deficiency(w, factor, x.shape[-2:], x.dtype, rcond)
    deficient = deficient | (singular & (rcond is None))
    bias = -mm(x_mean, w.l)[..., 0, :]
    params = LinearTransformer(
        w.l, w.l, w.l, identity(w.l), head, bias, bias, bias, y_mean[..., 0, :], route=factor
    )
    return poison(params, deficient), deficient, rank


def _check_construction(x, factor, ridge, rcond, *, needs_full_rank):
    factor = _checks.check_choice(factor, FACTORS, "factor")
    ridge, rcond = _checks.check_ridge(ridge), _checks.check_rcond(rcond)
    check_pinv_route(factor, rcond)
    _checks.check_full_rank_shape(x, allowed=rcond is not None or not needs_full_rank)
    return factor, ridge, effective_rcond(factor, x, rcond)


def construct_ols(
    X: ArrayLike,
    Y: ArrayLike,
    *,
    factor: Factor = "qr",
    ridge: float = 0.0,
    intercept: bool = False,
    rcond: float | None = None,
) -> LinearTransformer:
    """Parameters ``θ`` with ``forward(θ, X*, X) = X* β`` (T1, T2): the paper's construction.

    ``W_Q = W_K = W_V = L`` with ``L Lᵀ = Σ⁻¹``, ``W_FFN = I``,
    ``W_P = Lᵀ XᵀY / n``. The parameters are computed from this ``(X, Y)``:
    the forward pass reproduces OLS for this context, with any queries.

    **Arguments:** ``X`` ``(..., n, d)``; ``Y`` ``(..., n, m)`` or ``(..., n)``;
    ``factor``: ``"eigh"`` (the paper's, ``L = VΛ^{-1/2}``), ``"zca"``,
    ``"cholesky"`` (these three form ``XᵀX``), ``"qr"`` (default) or ``"svd"``
    (these never do); ``ridge``: ``λ``, fit ridge regression with a corrected
    head (T5); ``intercept``: centre ``X`` and ``Y`` and put the means in the
    biases (T7); ``rcond``: with ``"eigh"``, ``"zca"`` or ``"svd"``, use the
    pseudo-inverse square root and reproduce the minimum-norm ``X* X⁺Y`` (T6);
    singular values below ``rcond·s_max`` count as zero, and ``rcond`` is
    raised to what the factor resolves (``√(d·ε)`` for the Gram factors).

    **Returns:** a ``LinearTransformer`` (for a vector ``Y``, ``m = 1``);
    ``route`` is the factor used.

    **Raises:** ``ValueError`` when ``X`` is rank-deficient to the route's
    working precision and ``rcond`` is not given (NaN parameters under ``jit``).
    """
    x, y, _ = _checks.design_and_targets(X, Y)
    factor, ridge, rcond = _check_construction(x, factor, ridge, rcond, needs_full_rank=True)
    params, deficient, rank = _construct_ols(x, y, factor, ridge, bool(intercept), rcond)
    _checks.raise_if_deficient(deficient, rank, x, factor)
    return params


@functools.partial(jax.jit, static_argnames=("factor", "ridge", "intercept", "rcond"))
def _construct_regression_attention(x, factor, ridge, intercept, rcond):
    xc, _, x_mean, _ = _centre(x, x[..., :1], intercept)
    w = whiten(xc, xc[..., :1], factor, ridge, rcond)
    deficient, rank = _deficiency(w, factor, x.shape[-2:], x.dtype, rcond)
    bias = -mm(x_mean, w.l)[..., 0, :]
    weight = jnp.full(x.shape[:-2], float(intercept), x.dtype)
    params = RegressionAttention(w.l, w.l, bias, bias, weight, route=factor)
    return poison(params, deficient), deficient, rank


def construct_regression_attention(
    X: ArrayLike,
    *,
    factor: Factor = "qr",
    ridge: float = 0.0,
    intercept: bool = False,
    rcond: float | None = None,
) -> RegressionAttention:
    """Values-are-targets parameters with ``W_Q W_Kᵀ = Σ_λ⁻¹`` (T4, T5): OLS for every ``Y``.

    ``regression_attention(θ, X*, X, Y)`` then equals the (ridge) prediction
    ``X*(XᵀX + λI)⁻¹XᵀY`` for any targets ``Y``, and the in-sample attention
    matrix is the hat matrix. Only ``X`` is needed: the targets are the values.

    **Arguments:** as ``construct_ols`` without ``Y``; ``ridge > 0`` also
    allows rank-deficient ``X`` (``Σ_λ`` is invertible).

    **Returns:** a ``RegressionAttention``.
    """
    x = _checks.design(X)
    factor, ridge, rcond = _check_construction(x, factor, ridge, rcond, needs_full_rank=ridge == 0)
    params, deficient, rank = _construct_regression_attention(
        x, factor, ridge, bool(intercept), rcond
    )
    _checks.raise_if_deficient(deficient, rank, x, factor)
    return params
