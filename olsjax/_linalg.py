"""Least-squares linear algebra: factorisations, solvers, hat matrix.

Everything here is array-in/array-out, works on leading batch dimensions and
under ``jit``/``vmap``, and knows nothing about attention. Each route returns a
*spectrum*: estimates of the singular values of the matrix it inverts, from
which the callers decide whether the problem is rank-deficient to the working
precision of that route.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.typing import ArrayLike
from jaxtyping import Array, Bool, Float, Int, PyTree

from . import _checks

HIGHEST = jax.lax.Precision.HIGHEST

Method = Literal["qr", "svd", "cholesky", "eigh", "lstsq"]
METHODS: tuple[str, ...] = ("qr", "svd", "cholesky", "eigh", "lstsq")
#: Methods that form the Gram matrix ``XᵀX``: their error grows like ``κ(X)²``.
GRAM_METHODS: frozenset[str] = frozenset({"cholesky", "eigh", "zca"})
#: Methods that can return the minimum-norm solution of a rank-deficient problem.
PINV_METHODS: frozenset[str] = frozenset({"svd", "eigh", "lstsq", "zca"})

mm = functools.partial(jnp.matmul, precision=HIGHEST)


def mT(a: Float[Array, "*b r c"]) -> Float[Array, "*b c r"]:
    """Transpose of the last two axes."""
    return jnp.swapaxes(a, -1, -2)


def identity(like: Float[Array, "*b r d"]) -> Float[Array, "*b d d"]:
    """Identity of size ``d``, with the batch shape and dtype of ``like``."""
    d = like.shape[-1]
    return jnp.broadcast_to(jnp.eye(d, dtype=like.dtype), (*like.shape[:-2], d, d))


def rank_tolerance(method: str, n: int, d: int, dtype) -> float:
    """Relative singular-value cutoff under which ``X`` counts as rank-deficient.

    Routes that never form ``XᵀX`` resolve singular values down to
    ``max(n, d)·u·s_max`` (numpy's ``matrix_rank``). Gram routes square the
    spectrum, so they resolve only down to ``sqrt(d·u)·s_max``: below that the
    relative error bound ``u·κ²`` exceeds ``1/d`` and the answer is noise.
    """
    u = float(jnp.finfo(dtype).eps)
    return (d * u) ** 0.5 if method in GRAM_METHODS else max(n, d) * u


def effective_rcond(route: str, x: Array, rcond: float | None) -> float | None:
    """``rcond`` raised to the smallest relative singular value ``route`` resolves.

    Below ``rank_tolerance`` a singular value is rounding noise: inverting it
    returns garbage, so a smaller ``rcond`` (0 included) is treated as that floor.
    """
    if rcond is None:
        return None
    return max(rcond, rank_tolerance(route, *x.shape[-2:], x.dtype))


def is_deficient(
    spectrum: Float[Array, "*b d"], tol: float
) -> Bool[Array, "*b"]:
    """True where the smallest singular value is at most ``tol`` times the largest, or NaN.

    A failed factorisation (Cholesky of a matrix that is not numerically
    positive definite) yields NaN, which counts as deficient.
    """
    return ~(jnp.min(spectrum, axis=-1) > tol * jnp.max(spectrum, axis=-1))


def singular_values(r: Float[Array, "*b d d"]) -> Float[Array, "*b d"]:
    """Singular values of a triangular factor: a reliable rank estimate, unlike ``|diag R|``.

    ``O(d³)``, negligible next to the ``O(n·d²)`` factorisation it comes from.
    """
    return jnp.linalg.svd(r, compute_uv=False)


def numerical_rank(spectrum: Float[Array, "*b d"], tol: float) -> Int[Array, "*b"]:
    """Number of singular values above ``tol`` times the largest; -1 if the factorisation failed."""
    count = jnp.sum(spectrum > tol * jnp.max(spectrum, axis=-1, keepdims=True), axis=-1)
    return jnp.where(jnp.any(jnp.isnan(spectrum), axis=-1), -1, count)


def poison(tree: PyTree, flag: Bool[Array, "*b"]) -> PyTree:
    """Replace every batch entry of ``tree`` where ``flag`` holds by NaN: loud under ``jit``."""

    def leaf(a):
        mask = flag.reshape(flag.shape + (1,) * (a.ndim - flag.ndim))
        return jnp.where(mask, jnp.nan, a)

    return jax.tree_util.tree_map(leaf, tree)


def gram(x: Float[Array, "*b n d"]) -> Float[Array, "*b d d"]:
    """Empirical second-moment matrix ``Σ = XᵀX / n``."""
    return mm(mT(x), x) / x.shape[-2]


def ridge_augment(
    x: Float[Array, "*b n d"], y: Float[Array, "*b n m"], ridge: float
) -> tuple[Float[Array, "*b n+d d"], Float[Array, "*b n+d m"]]:
    """Stack ``√λ·I`` under ``X`` and zeros under ``Y``: ridge as plain least squares."""
    d, m = x.shape[-1], y.shape[-1]
    root = jnp.sqrt(ridge) * identity(x)
    zeros = jnp.zeros((*y.shape[:-2], d, m), y.dtype)
    return jnp.concatenate([x, root], -2), jnp.concatenate([y, zeros], -2)


def inv_sqrt(
    values: Float[Array, "*b d"], keep: Bool[Array, "*b d"]
) -> Float[Array, "*b d"]:
    """``values^{-1/2}`` where ``keep``, zero elsewhere (the pseudo-inverse square root)."""
    safe = jnp.where(keep, values, 1)
    return jnp.where(keep, 1 / jnp.sqrt(safe), 0)


def keep_mask(spectrum: Float[Array, "*b d"], rcond: float | None) -> Bool[Array, "*b d"]:
    """Which singular values to invert: all of them, or those above ``rcond·s_max``."""
    if rcond is None:
        return jnp.ones(spectrum.shape, bool)
    return spectrum > rcond * jnp.max(spectrum, axis=-1, keepdims=True)


class Solution(NamedTuple):
    """Coefficients of a least-squares fit and the spectrum its route inverted."""

    beta: Float[Array, "*b d m"]
    spectrum: Float[Array, "*b d"]


def _lstsq_qr(x, y, ridge):
    if ridge:
        x, y = ridge_augment(x, y, ridge)
    q, r = jnp.linalg.qr(x)
    beta = solve_triangular(r, mm(mT(q), y), lower=False)
    return Solution(beta, singular_values(r))


def _lstsq_svd(x, y, ridge, rcond):
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    keep = keep_mask(s, rcond)
    filt = jnp.where(keep, s / jnp.where(keep, s * s + ridge, 1), 0)
    beta = mm(mT(vt), filt[..., None] * mm(mT(u), y))
    return Solution(beta, jnp.sqrt(s * s + ridge))


def _lstsq_cholesky(x, y, ridge):
    c = jnp.linalg.cholesky(mm(mT(x), x) + ridge * identity(x))
    z = solve_triangular(c, mm(mT(x), y), lower=True)
    beta = solve_triangular(mT(c), z, lower=False)
    return Solution(beta, singular_values(c))


def _lstsq_eigh(x, y, ridge, rcond):
    lam, v = jnp.linalg.eigh(mm(mT(x), x))
    s = jnp.sqrt(jnp.clip(lam, 0))
    keep = keep_mask(s, rcond)
    inv = jnp.where(keep, 1 / jnp.where(keep, lam + ridge, 1), 0)
    beta = mm(v, inv[..., None] * mm(mT(v), mm(mT(x), y)))
    return Solution(beta, jnp.sqrt(jnp.clip(lam + ridge, 0)))


def _lstsq_jnp(x, y, ridge, rcond):
    if ridge:
        x, y = ridge_augment(x, y, ridge)
    solve = functools.partial(jnp.linalg.lstsq, rcond=rcond)
    for _ in range(x.ndim - 2):
        solve = jax.vmap(solve)
    beta, _, _, s = solve(x, y)
    return Solution(beta, s)


def solve_lstsq(
    x: Float[Array, "*b n d"],
    y: Float[Array, "*b n m"],
    method: str,
    ridge: float,
    rcond: float | None,
) -> Solution:
    """Least-squares coefficients ``(XᵀX + λI)⁺XᵀY`` by the named route."""
    if method == "qr":
        return _lstsq_qr(x, y, ridge)
    if method == "svd":
        return _lstsq_svd(x, y, ridge, rcond)
    if method == "cholesky":
        return _lstsq_cholesky(x, y, ridge)
    if method == "eigh":
        return _lstsq_eigh(x, y, ridge, rcond)
    return _lstsq_jnp(x, y, ridge, rcond)


def hat(
    x: Float[Array, "*b n d"], ridge: float, rcond: float | None
) -> tuple[Float[Array, "*b n n"], Float[Array, "*b d"]]:
    """Hat (smoother) matrix ``X(XᵀX + λI)⁺Xᵀ = U diag(s²/(s²+λ)) Uᵀ`` from the SVD of ``X``."""
    u, s, _ = jnp.linalg.svd(x, full_matrices=False)
    keep = keep_mask(s, rcond)
    shrink = jnp.where(keep, s * s / jnp.where(keep, s * s + ridge, 1), 0)
    return mm(u * shrink[..., None, :], mT(u)), jnp.sqrt(s * s + ridge)


def condition_number(X: ArrayLike) -> Float[Array, "*b"]:
    """2-norm condition number ``κ(X) = s_max / s_min`` of ``X`` ``(..., n, d)``, from its SVD."""
    s = jnp.linalg.svd(_checks.design(X), compute_uv=False)
    return s[..., 0] / s[..., -1]


@functools.partial(jax.jit, static_argnames=("method", "ridge", "rcond"))
def _lstsq_checked(x, y, method, ridge, rcond):
    beta, spectrum = solve_lstsq(x, y, method, ridge, rcond)
    tol = rank_tolerance(method, *x.shape[-2:], x.dtype)
    deficient = is_deficient(spectrum, tol) & (rcond is None)
    return poison(beta, deficient), deficient, numerical_rank(spectrum, tol)


def check_pinv_route(route: str, rcond: float | None) -> None:
    """Only routes with a spectral decomposition can return a minimum-norm answer."""
    if rcond is not None and route not in PINV_METHODS:
        raise ValueError(
            f"rcond (minimum-norm solution) needs a spectral route, one of "
            f"{sorted(PINV_METHODS)}; {route!r} cannot pseudo-invert"
        )


def lstsq(
    X: ArrayLike,
    Y: ArrayLike,
    *,
    method: Method = "qr",
    ridge: float = 0.0,
    rcond: float | None = None,
) -> Float[Array, "*b d m"] | Float[Array, "*b d"]:
    """Least-squares (or ridge) coefficients ``β = (XᵀX + λI)⁻¹XᵀY``.

    **Arguments:** ``X`` ``(..., n, d)``; ``Y`` ``(..., n, m)`` or ``(..., n)``;
    ``method``: ``"qr"`` (default; error ``∝ κ``), ``"svd"``, ``"cholesky"`` or
    ``"eigh"`` of the Gram matrix (error ``∝ κ²``), ``"lstsq"`` (JAX's own);
    ``ridge``: ``λ ≥ 0``; ``rcond``: with ``"svd"``, ``"eigh"`` or ``"lstsq"``,
    treat singular values below ``rcond·s_max`` as zero and return the
    minimum-norm solution ``X⁺Y`` (``rcond`` is raised to what the route can
    resolve: ``max(n, d)·ε``, or ``√(d·ε)`` for ``"eigh"``).

    **Returns:** ``β`` of shape ``(..., d, m)``, or ``(..., d)`` for vector ``Y``.

    **Raises:** ``ValueError`` if ``X`` is rank-deficient (or ``n < d``) and
    neither ``rcond`` nor ``ridge > 0`` was given; under ``jit`` such entries are NaN.
    """
    x, y, vector = _checks.design_and_targets(X, Y)
    method = _checks.check_choice(method, METHODS, "method")
    ridge, rcond = _checks.check_ridge(ridge), _checks.check_rcond(rcond)
    check_pinv_route(method, rcond)
    _checks.check_full_rank_shape(x, allowed=rcond is not None or ridge > 0)
    rcond = effective_rcond(method, x, rcond)
    beta, deficient, rank = _lstsq_checked(x, y, method, ridge, rcond)
    _checks.raise_if_deficient(deficient, rank, x, method)
    return beta[..., 0] if vector else beta


@functools.partial(jax.jit, static_argnames=("ridge", "rcond"))
def _hat_checked(x, ridge, rcond):
    h, spectrum = hat(x, ridge, rcond)
    tol = rank_tolerance("svd", *x.shape[-2:], x.dtype)
    deficient = is_deficient(spectrum, tol) & (rcond is None)
    return poison(h, deficient), deficient, numerical_rank(spectrum, tol)


def hat_matrix(
    X: ArrayLike, *, ridge: float = 0.0, rcond: float | None = None
) -> Float[Array, "*b n n"]:
    """Hat (ridge smoother) matrix ``H_λ = X(XᵀX + λI)⁻¹Xᵀ``, computed from the SVD of ``X``.

    **Arguments:** ``X`` ``(..., n, d)``; ``ridge`` ``λ ≥ 0``; ``rcond`` as in
    ``lstsq`` (then ``H = X X⁺``, the projector onto the column space).

    **Returns:** ``(..., n, n)``; ``trace H_λ = Σ s_i²/(s_i² + λ)``.
    """
    x = _checks.design(X)
    ridge, rcond = _checks.check_ridge(ridge), _checks.check_rcond(rcond)
    _checks.check_full_rank_shape(x, allowed=rcond is not None or ridge > 0)
    h, deficient, rank = _hat_checked(x, ridge, effective_rcond("svd", x, rcond))
    _checks.raise_if_deficient(deficient, rank, x, "svd")
    return h
