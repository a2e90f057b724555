"""Constructions: data → transformer parameters that reproduce least squares.

Every construction goes through a *whitening factor* ``L`` with
``L Lᵀ = Σ_λ⁺``, ``Σ_λ = XᵀX/n + (λ/n)I`` (T3, ``_whiten``). The paper
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
from jaxtyping import Array, Bool, Float

from . import _checks
from ._linalg import identity, mm, mT, poison
from ._transformer import LinearTransformer, RegressionAttention
from ._whiten import FACTORS, Factor, Whitening, check_route, settle, whiten_checked


def ridge_head(
    w: Whitening, n: int, ridge: float
) -> tuple[Float[Array, "*b d m"], Float[Array, "*b d d"], Bool[Array, "*b"]]:
    """Output head ``W_P`` for the paper form with ridge (T5), the matrix it inverts, and whether that is singular.

    With ``W_V = L_λ`` attention contributes ``M = L_λᵀ Σ L_λ = I − (λ/n) L_λᵀ L_λ``
    instead of ``I``, so ``W_P = M⁻¹ L_λᵀ XᵀY / n`` restores
    ``f = X* L_λ L_λᵀ XᵀY / n = X* β_λ``. ``M`` is invertible iff ``X`` has full rank.
    """
    if not ridge:
        return w.p, identity(w.l), jnp.zeros(w.p.shape[:-2], bool)
    m = identity(w.l) - (ridge / n) * mm(mT(w.l), w.l)
    singular = jnp.linalg.eigvalsh(m)[..., 0] <= m.shape[-1] * jnp.finfo(m.dtype).eps
    return jnp.linalg.solve(m, w.p), m, singular


def _centre(x, y, intercept):
    if not intercept:
        zero = jnp.zeros(x.shape[:-2] + (1, x.shape[-1]), x.dtype)
        return x, y, zero, jnp.zeros(y.shape[:-2] + (1, y.shape[-1]), y.dtype)
    x_mean = jnp.mean(x, axis=-2, keepdims=True)
    y_mean = jnp.mean(y, axis=-2, keepdims=True)
    return x - x_mean, y - y_mean, x_mean, y_mean


@functools.partial(
    jax.jit, static_argnames=("factor", "ridge", "intercept", "rcond", "equilibrate", "refine")
)
def _construct_ols(x, y, factor, ridge, intercept, rcond, equilibrate, refine):
    xc, yc, x_mean, y_mean = _centre(x, y, intercept)
    w, index, deficient, rank = whiten_checked(xc, yc, factor, ridge, rcond, equilibrate)
    head, m, singular = ridge_head(w, x.shape[-2], ridge)
    deficient = deficient | (singular & (rcond is None))
    bias = -mm(x_mean, w.l)[..., 0, :]
    w_r = (jnp.linalg.inv(m) if ridge else m) if refine else None
    params = LinearTransformer(
        w.l, w.l, w.l, identity(w.l), head, bias, bias, bias, y_mean[..., 0, :], w_r,
        refinements=refine, route=factor,
    )
    return poison(params, deficient), deficient, rank, index


def construct_ols(
    X: ArrayLike,
    Y: ArrayLike,
    *,
    factor: Factor = "auto",
    ridge: float = 0.0,
    intercept: bool = False,
    rcond: float | None = None,
    equilibrate: bool = True,
    refine: int | None = None,
) -> LinearTransformer:
    """Parameters ``θ`` with ``forward(θ, X*, X) = X* β`` (T1, T2, T12).

    The paper's construction: ``W_Q = W_K = W_V = L`` with ``L Lᵀ = Σ⁻¹``,
    ``W_FFN = I``, ``W_P = Lᵀ XᵀY / n``; by default followed by two refinement
    layers (T12) that make the forward pass as accurate as its route's solve. The
    parameters are computed from this ``(X, Y)``: the forward pass reproduces
    OLS for this context, with any queries.

    **Arguments:** ``X`` ``(..., n, d)``; ``Y`` ``(..., n, m)`` or ``(..., n)``;
    ``factor``: ``"auto"`` (default: Cholesky, CholeskyQR2 or SVD, whichever
    is cheapest among those a condition estimate says are accurate),
    ``"eigh"`` (the paper's, ``L = VΛ^{-1/2}``), ``"zca"``, ``"cholesky"``
    (these three form ``XᵀX``: error ``∝ κ²``), ``"cholqr2"`` (forms
    ``XᵀX``, then repairs it; ``∝ κ`` up to ``κ ≈ u^{-1/2}``), ``"qr"`` or
    ``"svd"`` (these never do); ``ridge``: ``λ``, fit ridge regression with a
    corrected head (T5); ``intercept``: centre ``X`` and ``Y`` and put the
    means in the biases (T7); ``rcond``: with ``"eigh"``, ``"zca"`` or
    ``"svd"`` (``"auto"`` becomes ``"svd"``), use the pseudo-inverse square
    root and reproduce the minimum-norm ``X* X⁺Y`` (T6); singular values below
    ``rcond·s_max`` count as zero, and ``rcond`` is raised to what the factor
    resolves (``√(d·ε)`` for the Gram factors); ``equilibrate``: whiten
    ``X D⁻¹`` with ``D`` powers of two near the column maxima, and put
    ``D⁻¹`` back into ``L`` (exact; not with ``ridge`` or ``rcond``, whose
    answers depend on the scale); ``refine``: number of refinement layers
    after the first (0: the paper's one-layer model; each layer multiplies
    the first-order error ``‖S − M‖ ≈ u·κ`` into the result once more).
    Default: 2, or 0 with ``ridge > 0``, where ``‖L‖ ≤ √(n/λ)`` already keeps
    the one-layer error small and ``W_R = M⁻¹`` (``κ(M)`` up to ``s₁²/λ``)
    would add more rounding than it removes, except on the ``svd`` route.

    **Returns:** a ``LinearTransformer`` (for a vector ``Y``, ``m = 1``);
    ``route`` is the factor used: ``"auto:cholqr2"`` etc. when ``"auto"``
    chose (``"auto"`` under ``jit``, where the choice is made on the device).

    **Raises:** ``ValueError`` when ``X`` is rank-deficient to the route's
    working precision and ``rcond`` is not given (NaN parameters under ``jit``).
    """
    x, y, _ = _checks.design_and_targets(X, Y)
    factor, ridge, rcond = check_route(x, factor, FACTORS, "factor", ridge, rcond, ridge_rescues=False)
    refine = _checks.check_count((0 if ridge else 2) if refine is None else refine, "refine")
    params, deficient, rank, index = _construct_ols(
        x, y, factor, ridge, bool(intercept), rcond, bool(equilibrate), refine
    )
    _checks.raise_if_deficient(deficient, rank, x, factor)
    return settle(params, factor, index)


@functools.partial(
    jax.jit, static_argnames=("factor", "ridge", "intercept", "rcond", "equilibrate")
)
def _construct_regression_attention(x, factor, ridge, intercept, rcond, equilibrate):
    xc, _, x_mean, _ = _centre(x, x[..., :1], intercept)
    w, index, deficient, rank = whiten_checked(
        xc, xc[..., :1], factor, ridge, rcond, equilibrate
    )
    bias = -mm(x_mean, w.l)[..., 0, :]
    weight = jnp.full(x.shape[:-2], float(intercept), x.dtype)
    params = RegressionAttention(w.l, w.l, bias, bias, weight, route=factor)
    return poison(params, deficient), deficient, rank, index


def construct_regression_attention(
    X: ArrayLike,
    *,
    factor: Factor = "auto",
    ridge: float = 0.0,
    intercept: bool = False,
    rcond: float | None = None,
    equilibrate: bool = True,
) -> RegressionAttention:
    """Values-are-targets parameters with ``W_Q W_Kᵀ = Σ_λ⁻¹`` (T4, T5): OLS for every ``Y``.

    ``regression_attention(θ, X*, X, Y)`` then equals the (ridge) prediction
    ``X*(XᵀX + λI)⁻¹XᵀY`` for any targets ``Y``, and the in-sample attention
    matrix is the hat matrix. Only ``X`` is needed: the targets are the values.

    **Arguments:** as ``construct_ols`` without ``Y`` and ``refine``;
    ``ridge > 0`` also allows rank-deficient ``X`` (``Σ_λ`` is invertible).

    **Returns:** a ``RegressionAttention``.
    """
    x = _checks.design(X)
    factor, ridge, rcond = check_route(
        x, factor, FACTORS, "factor", ridge, rcond, ridge_rescues=True
    )
    params, deficient, rank, index = _construct_regression_attention(
        x, factor, ridge, bool(intercept), rcond, bool(equilibrate)
    )
    _checks.raise_if_deficient(deficient, rank, x, factor)
    return settle(params, factor, index)
