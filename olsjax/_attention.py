"""Linear and softmax attention, and their attention/score matrices.

Queries ``q`` are ``(..., q, d)``, keys ``k`` are ``(..., n, d)``, values ``v``
are ``(..., n, m)``, with the same leading batch dimensions. Linear attention
averages over keys (``Q Kᵀ V / n``, THEOREMS.md notation); its causal form
averages over the keys seen so far (row ``t`` divides by ``t``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._linalg import mm, mT, xty


def _causal_mask(shape: tuple[int, ...]) -> Array:
    """Lower-triangular mask over the last two axes, broadcast to ``shape``."""
    return jnp.broadcast_to(jnp.tril(jnp.ones(shape[-2:], bool)), shape)


def _check_causal(q: Array, k: Array) -> None:
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"causal attention needs as many queries as keys, got {q.shape[-2]} queries "
            f"and {k.shape[-2]} keys"
        )


def linear_scores(
    q: Float[Array, "*b nq d"], k: Float[Array, "*b nk d"]
) -> Float[Array, "*b nq nk"]:
    """Raw scores ``Q Kᵀ``."""
    return mm(q, mT(k))


def linear_attention_matrix(
    q: Float[Array, "*b nq d"], k: Float[Array, "*b nk d"], *, causal: bool = False
) -> Float[Array, "*b nq nk"]:
    """The matrix ``A`` with ``LinAttn(Q, K, V) = A V``: ``QKᵀ/n``, or masked ``QKᵀ/t`` if causal."""
    scores = linear_scores(q, k)
    if not causal:
        return scores / k.shape[-2]
    _check_causal(q, k)
    counts = jnp.arange(1, q.shape[-2] + 1, dtype=q.dtype)[:, None]
    return jnp.where(_causal_mask(scores.shape), scores, 0) / jnp.broadcast_to(counts, scores.shape)


def linear_memory(
    k: Float[Array, "*b nk d"], v: Float[Array, "*b nk m"]
) -> Float[Array, "*b d m"]:
    """The fast memory ``S = KᵀV / n`` (T9): the whole context, summarised in ``d × m``."""
    return xty(k, v) / k.shape[-2]


def linear_attention(
    q: Float[Array, "*b nq d"],
    k: Float[Array, "*b nk d"],
    v: Float[Array, "*b nk m"],
    *,
    causal: bool = False,
) -> Float[Array, "*b nq m"]:
    """Linear attention ``Q (KᵀV) / n``; never forms the ``nq × nk`` matrix unless causal.

    **Arguments:** ``q``, ``k``, ``v`` as in the module docstring; ``causal``
    restricts query ``t`` to keys ``1..t`` and averages over them.

    **Returns:** ``(..., nq, m)``.
    """
    if causal:
        return mm(linear_attention_matrix(q, k, causal=True), v)
    return mm(q, linear_memory(k, v))


def softmax_scores(
    q: Float[Array, "*b nq d"],
    k: Float[Array, "*b nk d"],
    *,
    scale: float | None = None,
    causal: bool = False,
) -> Float[Array, "*b nq nk"]:
    """Scaled scores ``s·QKᵀ`` (``s = 1/√d`` by default), ``-inf`` above the diagonal if causal."""
    s = q.shape[-1] ** -0.5 if scale is None else scale
    scores = linear_scores(q, k) * s
    if not causal:
        return scores
    _check_causal(q, k)
    return jnp.where(_causal_mask(scores.shape), scores, -jnp.inf)


def softmax_attention_matrix(
    q: Float[Array, "*b nq d"],
    k: Float[Array, "*b nk d"],
    *,
    scale: float | None = None,
    causal: bool = False,
) -> Float[Array, "*b nq nk"]:
    """Row-stochastic attention matrix ``softmax(s·QKᵀ)``."""
    return jax.nn.softmax(softmax_scores(q, k, scale=scale, causal=causal), axis=-1)


def softmax_attention(
    q: Float[Array, "*b nq d"],
    k: Float[Array, "*b nk d"],
    v: Float[Array, "*b nk m"],
    *,
    scale: float | None = None,
    causal: bool = False,
) -> Float[Array, "*b nq m"]:
    """Softmax attention ``softmax(s·QKᵀ) V`` with row-wise softmax and scale ``s``.

    **Arguments:** ``q``, ``k``, ``v`` as in the module docstring; ``scale``
    defaults to ``1/√d``; ``causal`` masks keys after the query's position.

    **Returns:** ``(..., nq, m)``; every row is a convex combination of rows of ``v``.
    """
    return mm(softmax_attention_matrix(q, k, scale=scale, causal=causal), v)
