"""Small array kernels: products at HIGHEST precision, Gram matrices, scaling, rank.

Pure array-in/array-out, any leading batch dimensions, no knowledge of routes
or attention. ``n`` arguments are the number of *real* rows: inputs may carry
trailing zero rows (row buckets, ``_checks.bucket_rows``), which leave every
product ``XᵀX``, ``XᵀY`` and every factor's ``R`` or singular values unchanged.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jaxtyping import Array, Bool, Float, Int, PyTree

HIGHEST = jax.lax.Precision.HIGHEST

#: The constant ``c`` of THEOREMS.md's bound ``c·u·(κ^p + κ²·tan θ)``, which the
#: accuracy ranges (``_ranges``) and the Gram routes' rank floor are set against;
#: ``olsjax.testing.DEFAULT_C`` is this number (why 200: see there).
BOUND_C = 200.0

mm = functools.partial(jnp.matmul, precision=HIGHEST)


def mT(a: Float[Array, "*b r c"]) -> Float[Array, "*b c r"]:
    """Transpose of the last two axes."""
    return jnp.swapaxes(a, -1, -2)


def identity(like: Float[Array, "*b r d"]) -> Float[Array, "*b d d"]:
    """Identity of size ``d``, with the batch shape and dtype of ``like``."""
    d = like.shape[-1]
    return jnp.broadcast_to(jnp.eye(d, dtype=like.dtype), (*like.shape[:-2], d, d))


def unit_roundoff(dtype) -> float:
    """``u``, half the machine epsilon of ``dtype``."""
    return float(jnp.finfo(dtype).eps) / 2


def xty(x: Float[Array, "*b n d"], y: Float[Array, "*b n m"]) -> Float[Array, "*b d m"]:
    """``XᵀY`` computed as ``(YᵀX)ᵀ``: XLA:CPU copies a transposed tall ``X`` for ``XᵀY``
    (a fresh ``n × d`` buffer, 9x the time at ``n = 10⁶``); transposing ``Y`` or the
    small result costs nothing when ``m ≤ d``. Same products and sums, same rounding."""
    return mT(mm(mT(y), x))


def gram(x: Float[Array, "*b n d"]) -> Float[Array, "*b d d"]:
    """``XᵀX`` (unnormalised)."""
    return mm(mT(x), x)


def power_of_two_below(v: Float[Array, "*b d"]) -> Float[Array, "*b d"]:
    """``2^⌊log₂ v⌋`` for positive normal ``v`` (exponent bits only: exact, cheap to compile); 1 elsewhere."""
    int_type = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[v.dtype.itemsize]
    finfo = jnp.finfo(v.dtype)
    mask = ((1 << finfo.nexp) - 1) << finfo.nmant
    p = jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(v, int_type) & mask, v.dtype)
    return jnp.where((p > 0) & jnp.isfinite(p), p, jnp.ones((), v.dtype))


def column_scale(
    x: Float[Array, "*b n d"] | None, g: Float[Array, "*b d d"] | None = None
) -> Float[Array, "*b d"]:
    """Powers of two ``D`` with ``D_j ≤ ‖x_j‖₂ < 2D_j`` (1 for a zero column): exact column equilibration.

    Dividing by powers of two is exact, so ``X D⁻¹`` is the same problem with
    columns of norm in ``[1, 2)``: routes whose error depends on column scaling
    (SVD, Gram matrices) see ``κ(X D⁻¹)``, within ``√d`` of the best diagonal
    scaling (van der Sluis) and orders of magnitude below ``κ(X)`` on raw
    polynomial designs. With the Gram matrix ``g = XᵀX`` at hand the norms are
    its diagonal (no extra pass over ``X``; ``x`` may then be ``None``; a
    diagonal out of range leaves ``D = 1`` and ``gram_in_range`` says so).
    From ``x`` the norm is taken of ``x`` over its column maxima, so it neither
    overflows nor underflows at any scale.
    """
    if g is not None:
        return power_of_two_below(jnp.sqrt(jnp.diagonal(g, axis1=-2, axis2=-1)))
    top = power_of_two_below(jnp.max(jnp.abs(x), axis=-2))
    return top * power_of_two_below(jnp.sqrt(jnp.sum(jnp.square(x / top[..., None, :]), axis=-2)))


def gram_in_range(g: Float[Array, "*b d d"]) -> Bool[Array, "*b"]:
    """Whether ``G = XᵀX`` neither overflowed nor lost digits to underflow: each diagonal entry is 0 or in ``[tiny/ε, ∞)``.

    Products below ``tiny`` are subnormal and lose relative precision; a column
    whose squared norm reaches ``tiny/ε`` carries those losses only at the level
    of its rounding. Off the diagonal ``|G_ij| ≤ √(G_ii G_jj)``.
    """
    diag = jnp.diagonal(g, axis1=-2, axis2=-1)
    finfo = jnp.finfo(g.dtype)
    ok = (diag == 0) | ((diag >= finfo.tiny / finfo.eps) & (diag < jnp.inf))
    return jnp.all(ok, axis=-1)


def scale_gram(g: Float[Array, "*b d d"], scale: Float[Array, "*b d"] | None) -> Float[Array, "*b d d"]:
    """``D⁻¹ G D⁻¹``: the Gram matrix of ``X D⁻¹`` from that of ``X`` (exact for powers of two)."""
    return g if scale is None else g / (scale[..., :, None] * scale[..., None, :])


def scale_rows(b: Float[Array, "*b d m"], scale: Float[Array, "*b d"] | None) -> Float[Array, "*b d m"]:
    """``D⁻¹ B``: ``(X D⁻¹)ᵀY`` from ``XᵀY``."""
    return b if scale is None else b / scale[..., :, None]


def scale_columns(x: Float[Array, "*b n d"], scale: Float[Array, "*b d"] | None) -> Float[Array, "*b n d"]:
    """``X D⁻¹``, formed only by routes that factor ``X`` itself."""
    return x if scale is None else x / scale[..., None, :]


def ridge_augment(
    x: Float[Array, "*b n d"], y: Float[Array, "*b n m"], ridge: Float[Array, ""]
) -> tuple[Float[Array, "*b n+d d"], Float[Array, "*b n+d m"]]:
    """Stack ``√λ·I`` under ``X`` and zeros under ``Y``: ridge as plain least squares."""
    d, m = x.shape[-1], y.shape[-1]
    root = jnp.sqrt(ridge).astype(x.dtype) * identity(x)
    zeros = jnp.zeros((*y.shape[:-2], d, m), y.dtype)
    return jnp.concatenate([x, root], -2), jnp.concatenate([y, zeros], -2)


def inv_sqrt(values: Float[Array, "*b d"], keep: Bool[Array, "*b d"]) -> Float[Array, "*b d"]:
    """``values^{-1/2}`` where ``keep``, zero elsewhere (the pseudo-inverse square root)."""
    safe = jnp.where(keep, values, 1)
    return jnp.where(keep, 1 / jnp.sqrt(safe), 0)


def keep_mask(spectrum: Float[Array, "*b d"], rcond: Float[Array, ""] | None) -> Bool[Array, "*b d"]:
    """Which singular values to invert: all of them, or those above ``rcond·s_max``."""
    if rcond is None:
        return jnp.ones(spectrum.shape, bool)
    return spectrum > rcond * jnp.max(spectrum, axis=-1, keepdims=True)


def singular_values(r: Float[Array, "*b d d"]) -> Float[Array, "*b d"]:
    """Singular values of a triangular factor: a reliable rank estimate, unlike ``|diag R|``.

    ``O(d³)``, negligible next to the ``O(n·d²)`` factorisation it comes from.
    """
    return jnp.linalg.svd(r, compute_uv=False)


def is_deficient(spectrum: Float[Array, "*b d"], tol: Float[Array, ""]) -> Bool[Array, "*b"]:
    """True where the smallest singular value is at most ``tol`` times the largest, or NaN.

    A failed factorisation (Cholesky of a matrix that is not numerically
    positive definite) yields NaN, which counts as deficient.
    """
    return ~(jnp.min(spectrum, axis=-1) > tol * jnp.max(spectrum, axis=-1))


def numerical_rank(spectrum: Float[Array, "*b d"], tol: Float[Array, ""]) -> Int[Array, "*b"]:
    """Number of singular values above ``tol`` times the largest; -1 if the factorisation failed."""
    count = jnp.sum(spectrum > tol * jnp.max(spectrum, axis=-1, keepdims=True), axis=-1)
    return jnp.where(jnp.any(jnp.isnan(spectrum), axis=-1), -1, count)


def poison(tree: PyTree, flag: Bool[Array, "*b"]) -> PyTree:
    """Replace every batch entry of ``tree`` where ``flag`` holds by NaN: loud under ``jit``."""

    def leaf(a):
        if a is None or not jnp.issubdtype(a.dtype, jnp.floating):
            return a
        mask = flag.reshape(flag.shape + (1,) * (a.ndim - flag.ndim))
        return jnp.where(mask, jnp.nan, a)

    return jax.tree_util.tree_map(leaf, tree)


@custom_vmap
def batch_max(value: Float[Array, "*b"]) -> Float[Array, "*b"]:
    """Identity, except under ``jax.vmap``, where it returns the maximum over the mapped axis, unbatched.

    The worst case of a batch decides a data-dependent choice (a route, an
    evaluation order) once for the whole batch, so that under ``vmap`` a
    ``lax.switch`` stays one branch instead of becoming a ``select`` that runs
    every branch. Reduce ``value`` over explicit batch axes afterwards
    (``jnp.max``); pass it through ``stop_gradient`` first (no derivative).
    """
    return value


@batch_max.def_vmap
def _batch_max_rule(axis_size, in_batched, value):
    del axis_size
    (batched,) = in_batched
    return (jnp.max(value, axis=0) if batched else value), False


def worst(value: Float[Array, "*b"]) -> Float[Array, ""]:
    """The maximum of ``value`` over every batch axis, explicit or ``vmap``-ed; NaN if any is NaN."""
    return jnp.max(batch_max(jax.lax.stop_gradient(value)))
