"""Parameter pytrees and forward passes of the one-layer linear transformer.

``LinearTransformer`` is the model of THEOREMS.md,
``f_θ(X*; X) = LinAttn(X* W_Q, X W_K, X W_V) · W_FFN · W_P``, with optional
projection biases and an output bias (zero unless an intercept is fitted),
and optionally a second, refinement layer (T12) that reads the same context.
``RegressionAttention`` is the values-are-targets form (T4): the context's
targets are the values, so only ``W_Q`` and ``W_K`` are parameters.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._attention import linear_attention, linear_attention_matrix, linear_memory
from ._linalg import identity, mm

# Leaves are arrays, but JAX rebuilds pytrees with placeholders (ArgInfo while
# lowering, None or object() inside transformations), so they are not typed at
# runtime; the shapes are in the docstrings.
Leaf = Any


def _pytree(cls, meta: tuple[str, ...] = ("route",)):
    data = [f.name for f in dataclasses.fields(cls) if f.name not in meta]
    return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=list(meta))


def _project(x: Array, w: Array, b: Array) -> Array:
    return mm(x, w) + b[..., None, :]


@functools.partial(_pytree, meta=("refinements", "route"))
@dataclasses.dataclass(frozen=True)
class LinearTransformer:
    """Weights of a one-layer linear transformer (slow memory).

    **Fields:** ``w_q``, ``w_k``, ``w_v``: ``(d, k)`` projections; ``w_ffn``:
    ``(k, k)``; ``w_p``: ``(k, m)`` output head; ``b_q``, ``b_k``, ``b_v``:
    ``(k,)`` projection biases; ``b_out``: ``(m,)`` output bias; ``w_r``:
    ``(k, k)`` query map of the refinement layers, or ``None``. Any leading
    batch dimensions. Static metadata (not leaves): ``refinements``, the
    number of refinement layers (0: the paper's one-layer model), and
    ``route``, the construction that produced it.

    A refinement layer (T12) is a residual block on the attention output:
    with ``a₀ = LinAttn(Q, K, V)`` from the first layer, layer ``j + 1`` maps
    ``a_j ↦ a_j + (a₀ − LinAttn(a_j W_R, K, V))``, the residual of the head
    system ``S w = W_R⁻¹ W_P`` (``S = KᵀV/n``) read through attention: one step
    of iterative refinement per layer, all reading the same keys and values.
    """

    w_q: Leaf
    w_k: Leaf
    w_v: Leaf
    w_ffn: Leaf
    w_p: Leaf
    b_q: Leaf
    b_k: Leaf
    b_v: Leaf
    b_out: Leaf
    w_r: Leaf = None
    refinements: int = 0
    route: str = "custom"


@_pytree
@dataclasses.dataclass(frozen=True)
class RegressionAttention:
    """Values-are-targets attention (T4): ``LinAttn(X* W_Q + b_q, X W_K + b_k, Y)``.

    **Fields:** ``w_q``, ``w_k``: ``(d, k)``; ``b_q``, ``b_k``: ``(k,)``;
    ``intercept``: ``(,)`` 0 or 1, weight of the mean of the context targets
    added to every prediction. ``route`` as in ``LinearTransformer``.
    """

    w_q: Leaf
    w_k: Leaf
    b_q: Leaf
    b_k: Leaf
    intercept: Leaf
    route: str = "custom"


def forward(
    params: LinearTransformer,
    queries: Float[Array, "*b q d"],
    context: Float[Array, "*b n d"],
) -> Float[Array, "*b q m"]:
    """One forward pass ``f_θ(X*; X)``: attend from ``queries`` to ``context``.

    **Arguments:** ``params``; ``queries`` ``X*`` ``(..., q, d)``; ``context``
    ``X`` ``(..., n, d)``.

    **Returns:** ``(..., q, m)`` = ``a W_FFN W_P + b_out`` with
    ``a = LinAttn(X*W_Q+b_q, XW_K+b_k, XW_V+b_v)`` after
    ``params.refinements`` refinement layers.

    Computed in fast-weight order: every layer is linear in its input and
    reads the same fast memory ``S = KᵀV/n``, so ``a_j = a₀ T_j`` with
    ``T₀ = I``, ``T_{j+1} = I + T_j (I − W_R S)``, and the ``d × d`` maps are
    composed first; the queries meet one ``d × m`` matrix ``S T W_FFN W_P``.
    """
    q = _project(queries, params.w_q, params.b_q)
    k = _project(context, params.w_k, params.b_k)
    memory = linear_memory(k, _project(context, params.w_v, params.b_v))
    eye = refined = identity(memory)
    for _ in range(params.refinements):
        refined = eye + refined - mm(mm(refined, params.w_r), memory)
    head = mm(memory, mm(mm(refined, params.w_ffn), params.w_p))
    return mm(q, head) + params.b_out[..., None, :]


def attention_matrix(
    params: LinearTransformer | RegressionAttention,
    queries: Float[Array, "*b q d"],
    context: Float[Array, "*b n d"],
) -> Float[Array, "*b q n"]:
    """The ``q × n`` linear-attention matrix ``(X*W_Q+b_q)(XW_K+b_k)ᵀ / n`` of either model."""
    q = _project(queries, params.w_q, params.b_q)
    k = _project(context, params.w_k, params.b_k)
    return linear_attention_matrix(q, k)


def regression_attention(
    params: RegressionAttention,
    queries: Float[Array, "*b q d"],
    context: Float[Array, "*b n d"],
    targets: Float[Array, "*b n m"],
) -> Float[Array, "*b q m"]:
    """Values-are-targets forward pass: attend from ``queries`` to ``(context, targets)``.

    **Returns:** ``(..., q, m)`` = ``LinAttn(X*W_Q+b_q, XW_K+b_k, Y) + intercept·mean(Y)``.
    """
    q = _project(queries, params.w_q, params.b_q)
    k = _project(context, params.w_k, params.b_k)
    mean = jnp.mean(targets, axis=-2, keepdims=True)
    return linear_attention(q, k, targets) + params.intercept[..., None, None] * mean


def effective_weights(
    params: RegressionAttention,
    context: Float[Array, "*b n d"],
    targets: Float[Array, "*b n m"],
) -> Float[Array, "*b d m"]:
    """The blog's effective coefficients ``W_Q W_Kᵀ XᵀY / n`` (with ``X`` shifted by the key bias)."""
    k = _project(context, params.w_k, params.b_k)
    return mm(params.w_q, linear_memory(k, targets))
