"""Parameter pytrees and forward passes of the one-layer linear transformer.

``LinearTransformer`` is the model of THEOREMS.md,
``f_θ(X*; X) = LinAttn(X* W_Q, X W_K, X W_V) · W_FFN · W_P``, with optional
projection biases and an output bias (present when an intercept is fitted),
and optionally refinement layers (T12) that read the same context.
``RegressionAttention`` is the values-are-targets form (T4): the context's
targets are the values, so only ``W_Q`` and ``W_K`` are parameters.

Both are frozen, keyword-only dataclasses registered as pytrees: every array
is a leaf (``None`` for an absent bias); only structure (the number of
refinement layers, whether the targets were a vector, whether an intercept is
added) is static, so ``jit(forward)`` compiles once per shape whatever route
built the parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks, _stream
from ._checks import Data
from ._attention import _linear_matrix
from ._linalg import gram, identity, mm, mT, unit_roundoff, worst, xty
from ._ranges import STATE_ERROR

# Leaves are arrays, but JAX rebuilds pytrees with placeholders (ArgInfo while
# lowering, None or object() inside transformations), so they are not typed at
# runtime; the shapes are in the docstrings.
Leaf = Any

#: The Gram-first evaluation order of ``forward`` is taken when its predicted
#: error is within this factor of the projection order's (see ``_use_gram``).
GRAM_SLACK = 8.0


def _pytree(meta: tuple[str, ...]):
    def register(cls):
        data = [f.name for f in dataclasses.fields(cls) if f.name not in meta]
        return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=list(meta))

    return register


@_pytree(meta=("refinements", "vector"))
@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearTransformer:
    """Weights of a one-layer linear transformer (slow memory).

    **Fields:** ``w_q``, ``w_k``, ``w_v``: ``(d, k)`` projections; ``w_ffn``:
    ``(k, k)``; ``w_p``: ``(k, m)`` output head; ``b_q``, ``b_k``, ``b_v``:
    ``(k,)`` projection biases and ``b_out``: ``(m,)`` output bias, each
    ``None`` for zero; ``w_r``: ``(k, k)`` query map of the refinement layers,
    or ``None``. Any leading batch dimensions. Static: ``refinements``, the
    number of refinement layers (0: the paper's one-layer model), and
    ``vector``, whether ``forward`` returns ``(..., q)`` (``m = 1``, fitted to
    a vector ``Y``) rather than ``(..., q, m)``.

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
    b_q: Leaf = None
    b_k: Leaf = None
    b_v: Leaf = None
    b_out: Leaf = None
    w_r: Leaf = None
    refinements: int = 0
    vector: bool = False


@_pytree(meta=("intercept",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class RegressionAttention:
    """Values-are-targets attention (T4): ``LinAttn(X* W_Q + b_q, X W_K + b_k, Y)``.

    **Fields:** ``w_q``, ``w_k``: ``(d, k)``; ``b_q``, ``b_k``: ``(k,)`` or
    ``None``. Static: ``intercept``, whether the mean of the context targets is
    added to every prediction (T7).
    """

    w_q: Leaf
    w_k: Leaf
    b_q: Leaf = None
    b_k: Leaf = None
    intercept: bool = False


def _augment(w, b):
    """``[W; bᵀ]`` ``(d+1, k)``: weights of the token ``[x, 1]``; ``W`` itself without a bias."""
    return w if b is None else jnp.concatenate([w, b[..., None, :]], axis=-2)


def _augmented_gram(g, sums, n):
    """``Ĝ = [X, 1]ᵀ[X, 1] / n`` from ``G = XᵀX`` and the column sums over the real rows, or ``G / n``."""
    if sums is None:
        return g / n
    sums = sums[..., :, None]
    corner = jnp.broadcast_to(n, (*g.shape[:-2], 1, 1)).astype(g.dtype)
    return jnp.concatenate(
        [jnp.concatenate([g, sums], -1), jnp.concatenate([mT(sums), corner], -1)], -2
    ) / n


def _fro(a):
    return jnp.sqrt(jnp.sum(a * a, axis=(-2, -1)))


def _use_gram(g, wk, wv, s, layers: int, dtype):
    """Whether ``S = Ŵ_Kᵀ Ĝ Ŵ_V`` (one pass over the context, no ``n × k`` buffer) is accurate enough.

    First-order error estimates of ``S`` (Frobenius norms, relative to ``‖S‖``):
    from the Gram matrix, ``δ_g = u‖Ŵ_K‖‖Ŵ_V‖‖Ĝ‖`` (``≈ u·κ²`` for a whitening
    ``L``); from the projections ``K = XW_K``, ``V = XW_V``,
    ``δ_p = u‖Ĝ‖^½(‖Ŵ_K‖‖V‖ + ‖K‖‖Ŵ_V‖)/√n`` (``≈ u·κ``). ``layers − 1``
    refinement layers raise an error ``δ`` in ``S`` to ``(c_E·δ)^layers`` in
    the output (``c_E = STATE_ERROR``, T13), so the Gram order is taken when
    ``(c_E·δ_g)^layers`` stays within ``GRAM_SLACK·(u + (c_E·δ_p)^layers)``:
    with two refinement layers (three passes), up to ``κ ≈ u^{-1/3}/2`` (~1e5
    in float64). One decision
    for the whole batch (``worst``), so under ``vmap`` only one order runs.
    """
    u = unit_roundoff(dtype)
    gn = _fro(g)
    tiny = jnp.finfo(dtype).tiny
    kn = jnp.sqrt(jnp.maximum(jnp.trace(mm(mT(wk), mm(g, wk)), axis1=-2, axis2=-1), 0))
    vn = jnp.sqrt(jnp.maximum(jnp.trace(mm(mT(wv), mm(g, wv)), axis1=-2, axis2=-1), 0))
    sn = jnp.maximum(_fro(s), tiny)
    delta_g = u * _fro(wk) * _fro(wv) * gn / sn
    delta_p = u * jnp.sqrt(gn) * (_fro(wk) * vn + kn * _fro(wv)) / sn
    # c_E: the estimates are first order; refinement converges only while c_E·δ < 1 (T13).
    ratio = (STATE_ERROR * delta_g) ** layers / (GRAM_SLACK * (u + (STATE_ERROR * delta_p) ** layers))
    return worst(jnp.where(jnp.isnan(ratio), jnp.inf, ratio)) <= 1


def _projected_memory(params, context, n):
    """``S = KᵀV/n`` from the projections ``K = XW_K + b_k``, ``V = XW_V + b_v`` (padding rows masked)."""
    rows = jnp.arange(context.shape[-2], dtype=n.dtype) < n

    def project(w, b):
        p = mm(context, w)
        return p if b is None else p + jnp.where(rows[:, None], b[..., None, :], 0)

    return xty(project(params.w_k, params.b_k), project(params.w_v, params.b_v)) / n


def _biased(params) -> bool:
    return params.b_k is not None or params.b_v is not None


def gram_memory(params, g):
    """``S = Ŵ_Kᵀ Ĝ Ŵ_V`` from the augmented Gram matrix, and whether that order is accurate enough."""
    wk, wv = _augment(params.w_k, params.b_k), _augment(params.w_v, params.b_v)
    if _biased(params):  # a bias on one side only still needs the augmented row on both
        zero = lambda w: jnp.concatenate([w, jnp.zeros_like(w[..., :1, :])], -2)  # noqa: E731
        wk = wk if params.b_k is not None else zero(wk)
        wv = wv if params.b_v is not None else zero(wv)
    s = mm(mT(wk), mm(g, wv))
    return s, _use_gram(g, wk, wv, s, params.refinements + 1, g.dtype)


def fast_memory(params, context, n):
    """The fast-weight state ``S = KᵀV/n`` in the evaluation order ``_use_gram`` picks."""
    sums = jnp.sum(context, axis=-2) if _biased(params) else None
    s, use_gram = gram_memory(params, _augmented_gram(gram(context), sums, n))
    return jax.lax.cond(use_gram, lambda: s, lambda: _projected_memory(params, context, n))


def head(params: LinearTransformer, memory):
    """``S T W_FFN W_P`` with ``T₀ = I``, ``T_{j+1} = I + T_j (I − W_R S)`` (the refinement layers)."""
    eye = identity(memory)

    def layer(_, refined):
        return eye + refined - mm(mm(refined, params.w_r), memory)

    # A loop, not an unrolled stack: the default may add tens of layers (T13), one compiled body.
    refined = jax.lax.fori_loop(0, params.refinements, layer, eye) if params.refinements else eye
    return mm(memory, mm(mm(refined, params.w_ffn), params.w_p))


def contraction(params: LinearTransformer, memory):
    """``‖(I − A)A‖₂ / ‖A‖₂`` per task ``(*b)``, ``A = W_R S``: the refinement layers converge where it is ``< 1``.

    The layers sum the series ``Σ_i (I − A)^i`` (T12), and only its action on
    the range of ``A`` reaches the output (a minimum-norm construction has
    ``A = I`` on the range, 0 off it). For the ``A`` of a construction
    (similar to a symmetric positive semi-definite matrix) this ratio is
    ``max a − 1`` once the largest eigenvalue ``a`` passes 1, so ``< 1`` is
    exactly where the series converges on the range. On the context the
    parameters were built from it is ``≈ c_E·u·κ`` (T13); on another context
    it can pass 1. 0 without layers, or where ``S = 0``. When a Frobenius
    bound already puts every task of the batch below 1 that bound is
    returned instead (the exact 2-norms cost a batched SVD).
    """
    if not params.refinements:
        return jnp.zeros(memory.shape[:-2], memory.dtype)
    a = mm(params.w_r, memory)
    e, tiny = a - mm(a, a), jnp.finfo(a.dtype).tiny
    # ‖E‖₂ ≤ ‖E‖_F and ‖A‖₂ ≥ ‖A‖_F/√k: a bound that is ≪ 1 on the construction's own
    # context, where the exact 2-norms (a batched SVD) would only confirm it.
    bound = _fro(e) * math.sqrt(a.shape[-1]) / jnp.maximum(_fro(a), tiny)
    norm = lambda m: jnp.linalg.norm(m, ord=2, axis=(-2, -1))  # noqa: E731
    exact = lambda: norm(e) / jnp.maximum(norm(a), tiny)  # noqa: E731
    return jax.lax.cond(worst(jnp.where(jnp.isnan(bound), jnp.inf, bound)) < 1, lambda: bound, exact)


def readout(params: LinearTransformer, memory):
    """``(W, c)`` with ``f(X*) = X* W + c``: ``W = W_Q H``, ``c = b_q H + b_out``, ``H`` the head.

    NaN for a task whose refinement layers diverge on this context (``contraction ≥ 1``):
    the layers would amplify ``I − W_R S`` geometrically, a finite wrong answer.
    """
    h = head(params, memory)
    c = jnp.zeros(h.shape[:-2] + (1, h.shape[-1]), h.dtype)
    if params.b_q is not None:
        c = c + mm(params.b_q[..., None, :], h)
    if params.b_out is not None:
        c = c + params.b_out[..., None, :]
    w = mm(params.w_q, h)
    if params.refinements:
        converges = (contraction(params, memory) < 1)[..., None, None]
        w, c = jnp.where(converges, w, jnp.nan), jnp.where(converges, c, jnp.nan)
    return w, c


def refuse_diverging(params: LinearTransformer, memory, inputs: dict[str, Any]) -> None:
    """Eagerly, after a non-finite forward pass: raise if the refinement layers diverge on this context.

    Inputs with NaN/inf are named first (``_checks.finish`` would say the same).
    """
    rho = np.asarray(jax.device_get(contraction(params, memory)))
    if not np.any(rho >= 1):
        return
    for name, a in inputs.items():
        if a is not None:
            _checks.finite_input(a, name)
    raise ValueError(
        f"the refinement layers diverge on this context: ‖(I − A)A‖₂/‖A‖₂ = {np.nanmax(rho):.3g} ≥ 1 "
        f"for A = W_R S "
        f"({np.count_nonzero(rho >= 1)} of {rho.size} task(s)), so it is not the context params were "
        "built from; construct_ols(context, targets) gives OLS on it (T2), and "
        "dataclasses.replace(params, refinements=0) applies the one-layer model as a fixed predictor"
    )


@functools.partial(jax.jit, static_argnames="vector")
def _apply(queries, w, c, *, vector: bool):
    out = mm(queries, w) + c
    return out[..., 0] if vector else out


_memory = jax.jit(fast_memory)


@jax.jit
def _forward(params, queries, context, n):
    w, c = readout(params, fast_memory(params, context, n))
    out = _apply(queries, w, c, vector=params.vector)
    return out, _checks.output_status(out)


@jax.jit
def _forward_gram(params, g, sums, n):
    """``readout`` from streamed moments, and whether the Gram order was accurate enough to use."""
    s, use_gram = gram_memory(params, _augmented_gram(g, sums, n))
    return *readout(params, s), use_gram


def _tokens(params, queries, context, kinds=(LinearTransformer, RegressionAttention)):
    """Validated ``queries`` (or ``None``) and ``context``: float arrays of the parameters' dtype and width ``d``.

    Leading batch dimensions of the tokens and of ``W_Q``, ``W_K`` must
    broadcast together (e.g. one set of queries against a batch of contexts).
    """
    if not isinstance(params, kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise TypeError(f"params must be a {names}, got {type(params).__name__}")
    w_q, w_k = params.w_q, params.w_k
    _checks.same_dtype(w_k, w_q, "params.w_k", "params.w_q")
    if w_q.ndim < 2 or w_k.shape[-2:] != w_q.shape[-2:]:
        raise ValueError(f"params.w_q and params.w_k must both be (d, k), got shapes {w_q.shape} and {w_k.shape}")
    tokens = {name: _checks.array(a, name, min_ndim=2)
              for name, a in (("queries", queries), ("context", context)) if a is not None}
    for name, a in tokens.items():
        _checks.same_dtype(a, w_q, name, "params")
        if a.shape[-1] != w_q.shape[-2]:
            raise ValueError(f"{name} must have {w_q.shape[-2]} columns (params' d), got shape {a.shape}")
    shapes = {**tokens, "params.w_q": w_q, "params.w_k": w_k}
    try:
        jnp.broadcast_shapes(*(a.shape[:-2] for a in shapes.values()))
    except ValueError:
        got = ", ".join(f"{name} {a.shape}" for name, a in shapes.items())
        raise ValueError(
            f"{', '.join(tokens)} and params must have broadcastable leading batch dimensions, got {got}"
        ) from None
    return tokens.get("queries"), tokens["context"]


def _leaves(params) -> dict[str, Any]:
    return {f"params.{f.name}": getattr(params, f.name) for f in dataclasses.fields(params)
            if isinstance(getattr(params, f.name), (jax.Array, type(None)))}


def forward(
    params: LinearTransformer,
    queries: Data,
    context: Data,
) -> Float[Array, "*b q m"] | Float[Array, "*b q"]:
    """One forward pass ``f_θ(X*; X)``: attend from ``queries`` to ``context``.

    **Arguments:** ``params``; ``queries`` ``X*`` ``(..., q, d)``; ``context``
    ``X`` ``(..., n, d)``.

    **Returns:** ``(..., q, m)`` (``(..., q)`` if ``params.vector``) =
    ``a W_FFN W_P + b_out`` with ``a = LinAttn(X*W_Q+b_q, XW_K+b_k, XW_V+b_v)``
    after ``params.refinements`` refinement layers.

    Computed in fast-weight order: every layer is linear in its input and reads
    the same fast memory ``S = KᵀV/n``, so the ``k × k`` maps are composed
    first and the queries meet one ``d × m`` matrix ``W_Q S T W_FFN W_P``.
    ``S`` comes from the Gram matrix of the context (one pass, no projected
    copy) when its error estimate allows, from the projections otherwise
    (``_use_gram``): either way the T12 bound holds.

    On a context other than the one the parameters were built from, the
    refinement layers' series in ``I − A``, ``A = W_R S``, may diverge: where
    ``‖(I − A)A‖₂ ≥ ‖A‖₂`` (``contraction``) the pass refuses (NaN under
    ``jit``) instead of returning a geometrically amplified answer; the
    one-layer model (``refinements=0``) has no such limit.

    **Raises:** ``ValueError`` naming the input if the output is not finite
    (NaN/inf in ``queries``, ``context`` or ``params``), or saying that the
    refinement layers diverge on this context.
    """
    q, x = _tokens(params, queries, context)
    out = _streamed_forward(params, q, x) if _stream.streams(x) else None
    if out is None:
        n, rows = _checks.rows_of(x)
        xd = _checks.to_device(x, rows)
        qd = xd if q is x else _checks.to_device(q, _checks.rows_of(q)[1])
        out, status = _forward(params, qd, xd, _checks.real_rows(n, x.dtype))
    else:
        status = _checks.output_status(out)
    inputs = {"queries": q, "context": x, **_leaves(params)}
    if params.refinements and _checks.is_concrete(status.ok) and not bool(status.ok):
        n, rows = _checks.rows_of(x)
        refuse_diverging(params, _memory(params, _checks.to_device(x, rows), _checks.real_rows(n, x.dtype)), inputs)
    out = _checks.finish(out, status, inputs)
    real = q.shape[-2]
    if out.shape[-2 + params.vector] != real:
        out = out[..., :real] if params.vector else out[..., :real, :]
    return out


def _streamed_forward(params, q, x):
    """``forward`` on a large host context without copying it, or ``None`` if the Gram order is not accurate enough."""
    m = _stream.moments(x, sums=_biased(params))
    w, c, use_gram = _forward_gram(params, m.g, m.sums, _checks.real_rows(x.shape[-2], x.dtype))
    if not bool(use_gram):
        return None
    if _stream.streams(q):
        out = _stream.affine(q, w, c)
        return out[..., 0] if params.vector else out
    return _apply(_checks.to_device(q), w, c, vector=params.vector)


def attention_matrix(
    params: LinearTransformer | RegressionAttention, queries: Data, context: Data
) -> Float[Array, "*b q n"]:
    """The ``q × n`` linear-attention matrix ``(X*W_Q+b_q)(XW_K+b_k)ᵀ / n`` of either model.

    **Raises:** as ``regression_attention``.
    """
    q, x = _tokens(params, queries, context)
    out, status = _attention_matrix(params, q, x)
    return _checks.finish(out, status, {"queries": q, "context": x, **_leaves(params)}, dtype=out.dtype)


@jax.jit
def _attention_matrix(params, queries, context):
    out = _linear_matrix(_project(queries, params.w_q, params.b_q), _project(context, params.w_k, params.b_k), False)
    return out, _checks.output_status(out)


def _project(x, w, b):
    """``XW + b`` (batch dimensions of ``X`` and the parameters broadcast; no implicit rank promotion)."""
    p = mm(x, w)
    return p if b is None else p + jnp.broadcast_to(b[..., None, :], p.shape)


@functools.partial(jax.jit, static_argnames="vector")
def _regression_attention(params, queries, context, targets, *, vector: bool):
    memory = xty(_project(context, params.w_k, params.b_k), targets) / context.shape[-2]
    out = mm(_project(queries, params.w_q, params.b_q), memory)
    if params.intercept:
        out = out + jnp.broadcast_to(jnp.mean(targets, axis=-2, keepdims=True), out.shape)
    out = out[..., 0] if vector else out
    return out, _checks.output_status(out)


def _targets(context, targets):
    """``targets`` as ``(..., n, m)`` matching the validated ``context`` ``(..., n, d)``, and whether it was a vector."""
    y = _checks.array(targets, "targets", min_ndim=1)
    _checks.same_dtype(y, context, "targets", "context")
    vector = y.ndim == context.ndim - 1
    y2 = y[..., None] if vector else y
    if y2.shape[:-1] != context.shape[:-1]:
        raise ValueError(
            f"targets must have shape (..., n, m) or (..., n) matching context {context.shape}, got {y.shape}"
        )
    return y2, vector


def regression_attention(
    params: RegressionAttention, queries: Data, context: Data, targets: Data
) -> Float[Array, "*b q m"] | Float[Array, "*b q"]:
    """Values-are-targets forward pass: attend from ``queries`` to ``(context, targets)``.

    **Arguments:** ``queries`` ``X*`` ``(..., q, d)``, ``context`` ``X``
    ``(..., n, d)``, ``targets`` ``Y`` ``(..., n, m)`` or ``(..., n)``: float32
    or float64 arrays (or lists) of the parameters' dtype; ``X`` and ``Y``
    with equal leading dimensions, broadcasting with those of ``X*`` and the
    parameters.

    **Returns:** ``(..., q, m)`` = ``LinAttn(X*W_Q+b_q, XW_K+b_k, Y) (+ mean(Y) with intercept)``;
    ``(..., q)`` for vector ``targets``.

    **Raises:** ``TypeError`` for another dtype or mixed dtypes; ``ValueError``
    naming the argument for a wrong width, row count or batch shape, an empty
    input, or (eagerly) NaN/inf in an input or an overflowing result. Under a
    caller's ``jit`` values are not read: the output is then non-finite instead.
    """
    q, x = _tokens(params, queries, context, kinds=(RegressionAttention,))
    y, vector = _targets(x, targets)
    out, status = _regression_attention(params, q, x, y, vector=vector)
    return _checks.finish(
        out, status, {"queries": q, "context": x, "targets": y, **_leaves(params)}, dtype=out.dtype
    )


@functools.partial(jax.jit, static_argnames="vector")
def _effective_weights(params, context, targets, *, vector: bool):
    out = mm(params.w_q, xty(_project(context, params.w_k, params.b_k), targets) / context.shape[-2])
    out = out[..., 0] if vector else out
    return out, _checks.output_status(out)


def effective_weights(
    params: RegressionAttention, context: Data, targets: Data
) -> Float[Array, "*b d m"] | Float[Array, "*b d"]:
    """The blog's effective coefficients ``W_Q W_Kᵀ XᵀY / n`` (with ``X`` shifted by the key bias).

    **Raises:** as ``regression_attention``.
    """
    _, x = _tokens(params, None, context, kinds=(RegressionAttention,))
    y, vector = _targets(x, targets)
    out, status = _effective_weights(params, x, y, vector=vector)
    return _checks.finish(out, status, {"context": x, "targets": y, **_leaves(params)}, dtype=out.dtype)
