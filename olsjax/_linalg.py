"""Least-squares linear algebra: factorisations, solvers, hat matrix.

Everything here is array-in/array-out, works on leading batch dimensions and
under ``jit``/``vmap``, and knows nothing about attention. Each route returns a
*spectrum*: estimates of the singular values of the matrix it inverts, from
which the callers decide whether the problem is rank-deficient to the working
precision of that route.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Bool, Float, Int, PyTree

from . import _checks

HIGHEST = jax.lax.Precision.HIGHEST

Method = Literal["auto", "qr", "svd", "cholesky", "cholqr2", "eigh", "lstsq"]
METHODS: tuple[str, ...] = ("qr", "svd", "cholesky", "cholqr2", "eigh", "lstsq")
#: Methods that form the Gram matrix ``XᵀX``: they resolve singular values only
#: down to ``√(d·u)·s_max``. Their error grows like ``κ(X)²``, except CholeskyQR2,
#: whose second pass restores ``∝ κ`` below ``cholqr2_kappa_limit``.
GRAM_METHODS: frozenset[str] = frozenset({"cholesky", "cholqr2", "eigh", "zca"})
#: What ``"auto"`` chooses from, cheapest first (``route_index`` picks one). Past
#: CholeskyQR2's limit it takes the SVD rather than QR: the same ``∝ κ`` bound, and
#: on the hard designs of docs/accuracy.md as accurate as LAPACK's gelsd, where QR
#: lost up to 0.7 digits.
AUTO_ROUTES: tuple[str, ...] = ("cholesky", "cholqr2", "svd")
#: ``"auto"`` takes plain Cholesky only below this condition estimate, where its
#: error ``c·u·κ²`` stays within a factor 4 of a QR route's ``c·u·κ``.
CHOLESKY_KAPPA = 4.0
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


def cholqr2_kappa_limit(n: int, d: int, dtype) -> float:
    """Largest ``κ`` for which CholeskyQR2 is proven as accurate as Householder QR.

    ``(24·u·(n·d + d(d+1)))^{-1/2}`` (Yamamoto, Nakatsukasa, Yanagisawa and
    Fukaya, *ETNA* 44, 2015, Theorem 3.3 with ``u`` the unit round-off): below
    it the first Cholesky cannot break down and the second pass makes ``Q``
    orthonormal to ``O(u)``. It is a sufficient condition, pessimistic by
    orders of magnitude in practice, which is the side ``"auto"`` should err on.
    """
    u = float(jnp.finfo(dtype).eps) / 2
    return (24 * u * (n * d + d * (d + 1))) ** -0.5


def route_index(
    kappa: Float[Array, "*b"], n: int, d: int, dtype
) -> Int[Array, ""]:
    """Index into ``AUTO_ROUTES`` for a condition estimate: one route for the whole batch.

    Cholesky up to ``CHOLESKY_KAPPA``, CholeskyQR2 up to ``cholqr2_kappa_limit``,
    the SVD beyond, and the SVD when the estimate is NaN (the Gram matrix was
    not numerically positive definite).
    """
    worst = jnp.max(kappa)
    return jnp.where(
        worst <= CHOLESKY_KAPPA, 0, jnp.where(worst <= cholqr2_kappa_limit(n, d, dtype), 1, 2)
    )


def column_scale(x: Float[Array, "*b n d"]) -> Float[Array, "*b d"]:
    """Powers of two ``D`` within a factor 2 of the column maxima ``max_i |X_ij|`` (1 for a zero column).

    Dividing by powers of two is exact, so ``X D⁻¹`` is the same problem with
    equilibrated columns: routes whose error depends on column scaling (SVD,
    Gram matrices) see ``κ(X D⁻¹)``, which can be orders of magnitude below
    ``κ(X)`` (raw polynomial designs). Maxima rather than 2-norms: no overflow.
    """
    _, exponent = jnp.frexp(jnp.max(jnp.abs(x), axis=-2))
    return jnp.ldexp(jnp.ones((), x.dtype), exponent)


def is_deficient(
    spectrum: Float[Array, "*b d"], tol: float | Float[Array, ""]
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


def numerical_rank(
    spectrum: Float[Array, "*b d"], tol: float | Float[Array, ""]
) -> Int[Array, "*b"]:
    """Number of singular values above ``tol`` times the largest; -1 if the factorisation failed."""
    count = jnp.sum(spectrum > tol * jnp.max(spectrum, axis=-1, keepdims=True), axis=-1)
    return jnp.where(jnp.any(jnp.isnan(spectrum), axis=-1), -1, count)


def poison(tree: PyTree, flag: Bool[Array, "*b"]) -> PyTree:
    """Replace every batch entry of ``tree`` where ``flag`` holds by NaN: loud under ``jit``."""

    def leaf(a):
        mask = flag.reshape(flag.shape + (1,) * (a.ndim - flag.ndim))
        return jnp.where(mask, jnp.nan, a)

    return jax.tree_util.tree_map(leaf, tree)


def xty(x: Float[Array, "*b n d"], y: Float[Array, "*b n m"]) -> Float[Array, "*b d m"]:
    """``XᵀY`` computed as ``(YᵀX)ᵀ``: XLA:CPU copies a transposed tall ``X`` for ``XᵀY``
    (a fresh ``n × d`` buffer, 9x the time at ``n = 10⁶``); transposing ``Y`` or the
    small result costs nothing when ``m ≤ d``. Same products and sums, same rounding."""
    return mT(mm(mT(y), x))


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


def check_pinv_route(route: str, rcond: float | None) -> None:
    """Only routes with a spectral decomposition can return a minimum-norm answer."""
    if rcond is not None and route not in PINV_METHODS:
        raise ValueError(
            f"rcond (minimum-norm solution) needs a spectral route, one of "
            f"{sorted(PINV_METHODS)}; {route!r} cannot pseudo-invert"
        )


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
