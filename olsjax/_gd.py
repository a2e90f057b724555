"""Gradient-descent and Newton steps as linear self-attention layers on in-context tokens (T8, vO).

Tokens are rows ``e_i = [x_i, y_i]`` for the ``n`` context points and
``e* = [x*, 0]`` for each query (``in_context_tokens``). A layer is linear
self-attention with a residual, keys and values read from the context tokens
only ("queries are not keys"), every token a query:

    E ← E + (E W_Q)(C W_K)ᵀ(C W_V) W_P / n,      C = the context rows of E.

``construct_gd`` sets ``W_Q`` to ``P`` on the ``x`` block (``I`` without a
preconditioner), ``W_K`` to ``I`` there, ``W_V`` to ``−I`` on the ``y`` block
and ``W_P`` to ``η I`` on the ``y`` block, zero elsewhere. The layer subtracts
``x_j ΔW`` from every ``y``-slot with ``ΔW = η P Σ_i x_iᵀ r_i / n``, where
``r_i`` is the context slot's content: the running residual ``y_i − x_i W``.
So the context slots hold the residuals of the iterate, and the query slots,
which start at ``0 = −x* W₀``, hold ``−x* W_k`` after ``k`` layers: ``k``
steps ``W ← W − η P ∇ℓ(W)`` of ``ℓ(W) = ‖XW − Y‖²/(2n)`` from ``W₀ = 0``.

**Sign convention** (von Oswald et al.'s): the query ``y``-slot holds *minus*
the prediction; ``predict_in_context`` returns the prediction ``x* W_k``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks
from ._attention import linear_memory
from ._checks import Data
from ._linalg import mm
from ._transformer import Leaf, _pytree


@_pytree(meta=("steps",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class GDTransformer:
    """A residual stack of linear self-attention layers on in-context tokens (T8).

    **Fields:** ``w_q``, ``w_k``, ``w_v``, ``w_p``: ``(steps, d+m, d+m)``, the
    query, key, value and output projections of each layer (row convention,
    ``E W``). Static: ``steps``, the number of layers. Every array is a leaf,
    so a stack can be trained, vmapped or differentiated like any pytree;
    ``construct_gd`` builds the one that runs gradient descent.
    """

    w_q: Leaf
    w_k: Leaf
    w_v: Leaf
    w_p: Leaf
    steps: int = 1


def _positive(value, name: str, dtype):
    """A concrete finite ``value > 0`` as a scalar of ``dtype``; a traced one is taken as given."""
    if jnp.iscomplexobj(value):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not _checks.is_concrete(value):
        if jnp.shape(value) != ():
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}")
        return jnp.asarray(value, dtype)
    if np.shape(value) != ():
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
    number = _checks._number(value, name)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return np.asarray(number, dtype)


def _steps(value, name: str = "steps") -> int:
    steps = _checks.count(value, name)
    if steps < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return steps


def _blocks(d: int, m: int, xx, yy):
    """``[[xx, 0], [0, yy]]`` from a ``(d, d)`` and an ``(m, m)`` block."""
    top = jnp.concatenate([xx, jnp.zeros((d, m), xx.dtype)], axis=-1)
    bottom = jnp.concatenate([jnp.zeros((m, d), yy.dtype), yy], axis=-1)
    return jnp.concatenate([top, bottom], axis=-2)


@functools.partial(jax.jit, static_argnames=("d", "m"))
def _gd_layer(eta, preconditioner, *, d: int, m: int) -> dict[str, Array]:
    """One layer's ``W_Q, W_K, W_V, W_P`` (compiled once per ``d, m``, whatever the number of layers)."""
    dtype = eta.dtype
    eye_d, eye_m = jnp.eye(d, dtype=dtype), jnp.eye(m, dtype=dtype)
    zero_d, zero_m = jnp.zeros((d, d), dtype), jnp.zeros((m, m), dtype)
    # x_j P x_iᵀ is the score of query j and key i: P on the query side, I on the key side.
    return dict(
        w_q=_blocks(d, m, eye_d if preconditioner is None else preconditioner, zero_m),
        w_k=_blocks(d, m, eye_d, zero_m),
        w_v=_blocks(d, m, zero_d, -eye_m),
        w_p=_blocks(d, m, zero_d, eta * eye_m),
    )


def construct_gd(
    d: int, m: int, *, eta: ArrayLike, steps: int = 1, preconditioner: Data | None = None, dtype=None
) -> GDTransformer:
    """Linear self-attention layers whose query slots run ``steps`` steps of (preconditioned) gradient descent.

    Each layer is one step ``W ← W − η P ∇ℓ(W)``, ``ℓ(W) = ‖XW − Y‖²/(2n)``,
    from ``W₀ = 0``; with ``P = Σ⁻¹ = (XᵀX/n)⁻¹`` and ``η = 1`` one layer is
    the Newton step, i.e. OLS (T8, T4). The query ``y``-slot holds minus the
    prediction (module docstring); ``predict_in_context`` reads it.

    **Arguments:** ``d``, ``m``: widths of ``x`` and ``y``; ``eta``: the step
    size, finite and ``> 0`` (may be traced); ``steps``: the number of layers
    (static, ``≥ 1``); ``preconditioner``: ``P``, a ``(d, d)`` float array, or
    ``None`` for ``I``; ``dtype``: float32/float64 of the weights (default:
    ``preconditioner``'s, else JAX's default float).

    **Returns:** a ``GDTransformer`` with ``steps`` identical layers.

    **Raises:** ``ValueError`` for ``d``, ``m``, ``steps`` not positive
    integers, a non-positive or non-finite ``eta``, a preconditioner of the
    wrong shape or with NaN/inf; ``TypeError`` for other dtypes.
    """
    d, m, steps = _steps(d, "d"), _steps(m, "m"), _steps(steps)
    if preconditioner is not None:
        preconditioner = _checks.array(preconditioner, "preconditioner", min_ndim=2)
        if preconditioner.shape != (d, d):
            raise ValueError(f"preconditioner must have shape (d, d) = {(d, d)}, got {preconditioner.shape}")
        if _checks.is_concrete(preconditioner):
            _checks.finite_input(preconditioner, "preconditioner")
        if dtype is not None and np.dtype(dtype) != preconditioner.dtype:
            raise TypeError(f"dtype {np.dtype(dtype)} differs from the preconditioner's {preconditioner.dtype}")
        dtype = preconditioner.dtype
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    eta = _positive(eta, "eta", dtype)
    layer = _gd_layer(jnp.asarray(eta, dtype), preconditioner, d=d, m=m)
    return GDTransformer(**{k: jnp.broadcast_to(w, (steps, *w.shape)) for k, w in layer.items()}, steps=steps)


def _tokens(x, y, queries):
    zeros = jnp.zeros((*queries.shape[:-1], y.shape[-1]), y.dtype)
    context = jnp.concatenate([x, y], axis=-1)
    return jnp.concatenate([context, jnp.concatenate([queries, zeros], axis=-1)], axis=-2)


def _check_tokens(x_value, y_value, q_value):
    x, y, vector = _checks.design_and_targets(x_value, y_value)
    queries = _checks.array(q_value, "queries", min_ndim=2)
    _checks.same_dtype(queries, x, "queries", "X")
    if queries.shape[-1] != x.shape[-1] or queries.shape[:-2] != x.shape[:-2]:
        raise ValueError(
            f"queries must have shape (..., q, d) with X's batch dimensions and d: X has shape "
            f"{x.shape}, queries {queries.shape}"
        )
    return x, y, queries, vector


@jax.jit
def _in_context_tokens(x, y, queries):
    out = _tokens(x, y, queries)
    return out, _checks.output_status(out)


def in_context_tokens(X: Data, Y: Data, queries: Data) -> Float[Array, "*b tokens width"]:
    """The token matrix ``[[X, Y], [X*, 0]]`` of von Oswald et al.: context rows, then query rows.

    **Arguments:** ``X`` ``(..., n, d)``, ``Y`` ``(..., n, m)`` or ``(..., n)``,
    ``queries`` ``(..., q, d)``, float32/float64 of one dtype, same batch dimensions.

    **Returns:** ``(..., n + q, d + m)``.

    **Raises:** ``TypeError``/``ValueError`` naming the argument (dtype, shape, NaN/inf).
    """
    x, y, queries, _ = _check_tokens(X, Y, queries)
    return _checks.finish(*_in_context_tokens(x, y, queries), dict(X=x, Y=y, queries=queries), dtype=x.dtype)


def _layer(n: int):
    def apply(e, w):
        w_q, w_k, w_v, w_p = w
        context = e[..., :n, :]
        # The linear-attention core: (E W_Q)·[(C W_K)ᵀ(C W_V)/n], keys and values from the context.
        attn = mm(mm(e, w_q), linear_memory(mm(context, w_k), mm(context, w_v)))
        return e + mm(attn, w_p), None

    return apply


@jax.jit
def _predict(params: GDTransformer, x, y, queries):
    n, d = x.shape[-2:]
    e = _tokens(x, y, queries)
    weights = tuple(w.astype(x.dtype) for w in (params.w_q, params.w_k, params.w_v, params.w_p))
    e, _ = jax.lax.scan(_layer(n), e, weights)
    out = -e[..., n:, d:]  # the query slot holds minus the prediction
    return out, _checks.output_status(out)


def predict_in_context(params: GDTransformer, X: Data, Y: Data, queries: Data) -> Float[Array, "*b q m"] | Float[Array, "*b q"]:
    """Predictions at ``queries`` of the attention stack ``params`` run on the tokens of ``(X, Y, queries)``.

    Runs the layers on ``in_context_tokens(X, Y, queries)`` and returns minus
    the queries' ``y``-slots (the sign convention of ``construct_gd``). With
    ``construct_gd(d, m, eta=η, steps=k)`` this is ``X* W_k``, ``W_k`` the
    ``k``-th gradient-descent iterate on each task's context.

    **Arguments:** ``params``: a ``GDTransformer`` (its weights are cast to the
    data's dtype); ``X``, ``Y``, ``queries`` as ``in_context_tokens``: any
    leading batch dimensions (one task each).

    **Returns:** ``(..., q, m)``, or ``(..., q)`` for a vector ``Y``.

    **Raises:** ``TypeError``/``ValueError`` naming the argument (dtype, shape,
    NaN/inf, weights that do not match ``d + m``); ``ValueError`` on overflow.
    """
    if not isinstance(params, GDTransformer):
        raise TypeError(f"params must be a GDTransformer (see construct_gd), got {type(params).__name__}")
    x, y, queries, vector = _check_tokens(X, Y, queries)
    width = x.shape[-1] + y.shape[-1]
    for name in ("w_q", "w_k", "w_v", "w_p"):
        shape = jnp.shape(getattr(params, name))
        if shape != (params.steps, width, width):
            raise ValueError(
                f"params.{name} must have shape (steps, d+m, d+m) = {(params.steps, width, width)} "
                f"for X with d={x.shape[-1]} and Y with m={y.shape[-1]}, got {shape}"
            )
    inputs = dict(X=x, Y=y, queries=queries, **{f"params.{k}": getattr(params, k) for k in ("w_q", "w_k", "w_v", "w_p")})
    out = _checks.finish(*_predict(params, x, y, queries), inputs, dtype=x.dtype)
    return out[..., 0] if vector else out
