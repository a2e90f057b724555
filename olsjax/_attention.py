"""Linear and softmax attention, and their attention/score matrices.

Queries ``q`` are ``(..., q, d)``, keys ``k`` are ``(..., n, d)``, values ``v``
are ``(..., n, m)``: float32 or float64 arrays (numpy arrays and nested lists
are accepted, as ``numpy.asarray`` reads them) of one dtype, with equal
leading batch dimensions (not broadcast: batch with ``jax.vmap`` to share an
operand). Linear attention averages over keys (``Q Kᵀ V / n``, THEOREMS.md
notation); its causal form averages over the keys seen so far (row ``t``
divides by ``t``).
``recurrent_linear_attention`` computes that causal form as a recurrence over
a constant-size state ``S_t = S_{t−1} + k_t v_tᵀ`` (T9), in chunks.

Every public function is the checked entry of ``_checks``. Shapes, dtypes and
``scale`` are validated first, also under a caller's ``jit`` (they are static):
``TypeError`` for a dtype other than float32/float64, mixed dtypes or a
non-real ``scale``; ``ValueError`` naming the arguments for mismatched widths,
rows or batch dimensions, an empty operand (no queries, keys, features or
value columns) or a non-finite ``scale``. A jitted core then computes the
result and its finiteness in one fused reduction; only when that fails are the
inputs scanned, to raise a ``ValueError`` naming the one with NaN/inf (or
saying that the result overflowed). Under a caller's ``jit`` values are not
read: non-finite input gives non-finite (NaN or inf) output, never a finite
wrong answer.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks
from ._checks import Data
from ._linalg import mm, mT, xty

# --- validation (shapes, dtypes, scale; never values of arrays) ---------------------------


def _qkv(q, k, v=None, *, causal: bool):
    """``q``, ``k`` (and ``v``) as float arrays of one dtype with matching shapes; ``v`` may be ``None``."""
    q = _checks.array(q, "q", min_ndim=2)
    k = _checks.array(k, "k", min_ndim=2)
    _checks.same_dtype(q, k, "q", "k")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same width d: q has shape {q.shape}, k has shape {k.shape}")
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same leading batch dimensions: q has shape {q.shape}, k has shape {k.shape}"
        )
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"causal attention needs as many queries as keys, got {q.shape[-2]} queries "
            f"and {k.shape[-2]} keys"
        )
    if v is not None:
        v = _checks.array(v, "v", min_ndim=2)
        _checks.same_dtype(v, k, "v", "k")
        if v.shape[:-1] != k.shape[:-1]:
            raise ValueError(
                f"k and v must agree on batch dimensions and n (one value row per key): "
                f"k has shape {k.shape}, v has shape {v.shape}"
            )
    return q, k, v


def _scale(scale, d: int, dtype):
    """``s`` as a scalar of ``dtype`` for the core (traced, so every scale compiles once); ``1/√d`` for ``None``.

    A concrete scale must be a finite real number; a traced one is taken as
    given (NaN/inf then give NaN, never a finite wrong answer).
    """
    dtype = jax.dtypes.canonicalize_dtype(dtype)
    if scale is None:
        return np.asarray(d**-0.5, dtype)
    if jnp.iscomplexobj(scale):
        raise TypeError(f"scale must be a real number, got {scale!r}")
    if not _checks.is_concrete(scale):
        if jnp.shape(scale) != ():
            raise ValueError(f"scale must be a scalar, got shape {jnp.shape(scale)}")
        return jnp.asarray(scale, dtype)
    value = _checks._number(scale, "scale")
    if not math.isfinite(value):
        raise ValueError(f"scale must be finite, got {scale!r}")
    return np.asarray(value, dtype)


def _finish(out, status, **inputs):
    """``_checks.finish`` for a result that runs no route: NaN/inf named by argument, else overflow."""
    return _checks.finish(out, status, inputs, dtype=out.dtype)


# --- cores: pure functions of validated arrays --------------------------------------------


def _causal_mask(shape: tuple[int, ...]) -> Array:
    """Lower-triangular mask over the last two axes, broadcast to ``shape``."""
    return jnp.broadcast_to(jnp.tril(jnp.ones(shape[-2:], bool)), shape)


def _linear_matrix(
    q: Float[Array, "... nq d"], k: Float[Array, "... nk d"], causal: bool
) -> Float[Array, "... nq nk"]:
    """``QKᵀ/n`` or its causal form; batch dimensions broadcast (``attention_matrix`` relies on it)."""
    scores = mm(q, mT(k))
    if not causal:
        return scores / k.shape[-2]
    counts = jnp.arange(1, q.shape[-2] + 1, dtype=q.dtype)[:, None]
    return jnp.where(_causal_mask(scores.shape), scores, 0) / jnp.broadcast_to(counts, scores.shape)


def linear_memory(
    k: Float[Array, "*b nk d"], v: Float[Array, "*b nk m"]
) -> Float[Array, "*b d m"]:
    """The fast memory ``S = KᵀV / n`` (T9): the whole context, summarised in ``d × m`` (unchecked)."""
    return xty(k, v) / k.shape[-2]


def _pow2(e, dtype):
    """``2^e`` exactly, for integers ``e`` in the normal exponent range of ``dtype`` (its exponent bits)."""
    info = jnp.finfo(dtype)
    ints = {4: jnp.int32, 8: jnp.int64}[info.dtype.itemsize]
    return jax.lax.bitcast_convert_type((e.astype(ints) + (info.maxexp - 1)) << info.nmant, dtype)


def _exponent(a, lo: int, hi: int):
    """``⌊log₂ a⌋`` for positive ``a``, clipped to ``[lo, hi]``; ``a = 0`` gives ``max(lo, -1)``."""
    return jnp.clip(jnp.frexp(a)[1] - 1, lo, hi)


def _times_pow2(x, e):
    """``x·2^e`` exactly up to the result's own overflow/underflow, for ``|e|`` up to thrice the exponent range.

    Four factors with exponents of one sign: the partial products move
    monotonically towards the result, so none overflows or underflows first.
    """
    part = jnp.sign(e) * (jnp.abs(e) // 4)
    for _ in range(3):
        x = x * _pow2(part, x.dtype)
    return x * _pow2(e - 3 * part, x.dtype)


def _softmax_matrix(
    q: Float[Array, "*b nq d"], k: Float[Array, "*b nk d"], scale: Float[Array, ""], causal: bool
) -> Float[Array, "*b nq nk"]:
    """``softmax(s·QKᵀ)`` row by row, exact also where the scores themselves overflow.

    With powers of two ``2^{e_q}`` (per query row), ``2^{e_k}`` (per batch) and
    ``s = μ·2^{e_s}``, the scores are ``2^{e_q+e_k+e_s}·T`` with ``T = μ·Q'K'ᵀ``
    of order ``d``; the row shift ``T − max T`` is taken there and only then
    scaled back (exactly), so a row whose scores exceed the float range is its
    hard max (one-hot, or uniform over exact ties) instead of ``inf − inf``.
    In range this is the usual computation scaled by powers of two (exact):
    only ``μ`` is rounded into ``Q'`` rather than into the scores, an ulp
    either way. Rows that see NaN/inf in ``q`` or ``k`` are NaN.
    """
    top = jnp.finfo(q.dtype).maxexp - 1
    aq = jax.lax.stop_gradient(jnp.max(jnp.abs(q), axis=-1, keepdims=True))
    ak = jax.lax.stop_gradient(jnp.max(jnp.abs(k), axis=(-2, -1), keepdims=True))
    eq, ek = _exponent(aq, 0, top), _exponent(ak, 0, top)  # only ever scale down
    es = _exponent(jax.lax.stop_gradient(jnp.abs(scale)), 1 - top, top)
    t = mm(q / _pow2(eq, q.dtype) * (scale / _pow2(es, q.dtype)), mT(k / _pow2(ek, k.dtype)))
    if causal:
        t = jnp.where(_causal_mask(t.shape), t, -jnp.inf)
    # One t for the max and the shift: XLA may otherwise recompute it per use (an FMA
    # here, none there), and an ulp of disagreement at the max is scaled by 2^(eq+ek+es).
    t = jax.lax.optimization_barrier(t)
    shift = jax.lax.stop_gradient(jnp.max(t, axis=-1, keepdims=True))
    e = jnp.exp(_times_pow2(t - shift, eq + ek + es))
    a = e / jnp.sum(e, axis=-1, keepdims=True)
    # Non-finite q or k may reach the scores only as -inf (weight 0) or a hard max: poison.
    return jnp.where(jnp.isfinite(aq) & jnp.isfinite(ak), a, jnp.nan)


@jax.jit
def _linear_scores(q, k):
    out = mm(q, mT(k))
    return out, _checks.output_status(out)


@functools.partial(jax.jit, static_argnames="causal")
def _linear_attention_matrix(q, k, *, causal):
    out = _linear_matrix(q, k, causal)
    return out, _checks.output_status(out)


@functools.partial(jax.jit, static_argnames="causal")
def _linear_attention(q, k, v, *, causal):
    out = mm(_linear_matrix(q, k, True), v) if causal else mm(q, linear_memory(k, v))
    return out, _checks.output_status(out)


@functools.partial(jax.jit, static_argnames="causal")
def _softmax_scores(q, k, scale, *, causal):
    out = mm(q, mT(k)) * scale
    if not causal:
        return out, _checks.output_status(out)
    mask = _causal_mask(out.shape)
    return jnp.where(mask, out, -jnp.inf), _checks.output_status(jnp.where(mask, out, 0))


@functools.partial(jax.jit, static_argnames="causal")
def _softmax_attention_matrix(q, k, scale, *, causal):
    out = _softmax_matrix(q, k, scale, causal)
    return out, _checks.output_status(out)


@functools.partial(jax.jit, static_argnames="causal")
def _softmax_attention(q, k, v, scale, *, causal):
    out = mm(_softmax_matrix(q, k, scale, causal), v)
    return out, _checks.output_status(out)


def _chunked_causal(
    q: Float[Array, "*b n d"], k: Float[Array, "*b n d"], v: Float[Array, "*b n m"], chunk: int
) -> tuple[Float[Array, "*b n m"], Float[Array, "*b d m"]]:
    """Causal ``o_t = q_tᵀ S_t / t`` with ``S_t = S_{t−1} + k_t v_tᵀ``, ``chunk`` rows at a time.

    Rows are padded with zeros to whole chunks (zero keys and values add
    nothing to ``S``; padded outputs are dropped). Inside a chunk the masked
    parallel form; between chunks only the ``d × m`` state is carried.
    """
    *batch, n, d = q.shape
    m = v.shape[-1]
    chunks = -(-n // chunk)
    pad = [(0, 0)] * len(batch) + [(0, chunks * chunk - n), (0, 0)]

    def split(a):  # (..., n, w) -> (chunks, ..., chunk, w): the scan runs over the leading axis
        a = jnp.pad(a, pad).reshape(*batch, chunks, chunk, a.shape[-1])
        return jnp.moveaxis(a, -3, 0)

    mask = jnp.tril(jnp.ones((chunk, chunk), bool))

    def step(state, block):
        qc, kc, vc = block
        inside = mm(jnp.where(mask, mm(qc, mT(kc)), 0), vc)
        return state + xty(kc, vc), mm(qc, state) + inside

    start = jnp.zeros((*batch, d, m), q.dtype)
    state, out = jax.lax.scan(step, start, (split(q), split(k), split(v)))
    out = jnp.moveaxis(out, 0, -3).reshape(*batch, chunks * chunk, m)[..., :n, :]
    counts = jnp.arange(1, n + 1, dtype=q.dtype)[:, None]
    return out / jnp.broadcast_to(counts, out.shape), state


@functools.partial(jax.jit, static_argnames="chunk")
def _recurrent_linear_attention(q, k, v, *, chunk):
    out, state = _chunked_causal(q, k, v, chunk)
    return (out, state), _checks.output_status((out, state))


# --- public: validate → jitted core → finish ----------------------------------------------


def linear_scores(q: Data, k: Data) -> Float[Array, "*b nq nk"]:
    """Raw scores ``Q Kᵀ`` ``(..., nq, nk)``."""
    q, k, _ = _qkv(q, k, causal=False)
    return _finish(*_linear_scores(q, k), q=q, k=k)


def linear_attention_matrix(q: Data, k: Data, *, causal: bool = False) -> Float[Array, "*b nq nk"]:
    """The matrix ``A`` with ``LinAttn(Q, K, V) = A V``: ``QKᵀ/n``, or masked ``QKᵀ/t`` if causal."""
    q, k, _ = _qkv(q, k, causal=causal)
    return _finish(*_linear_attention_matrix(q, k, causal=causal), q=q, k=k)


def linear_attention(q: Data, k: Data, v: Data, *, causal: bool = False) -> Float[Array, "*b nq m"]:
    """Linear attention ``Q (KᵀV) / n``; never forms the ``nq × nk`` matrix unless causal.

    **Arguments:** ``q``, ``k``, ``v`` as in the module docstring; ``causal``
    restricts query ``t`` to keys ``1..t`` and averages over them (needs as
    many queries as keys).

    **Returns:** ``(..., nq, m)``.

    **Raises:** as the module docstring says (bad dtype: ``TypeError``; bad
    shape, NaN/inf input or overflow: ``ValueError`` naming the argument).
    """
    q, k, v = _qkv(q, k, v, causal=causal)
    return _finish(*_linear_attention(q, k, v, causal=causal), q=q, k=k, v=v)


def softmax_scores(
    q: Data, k: Data, *, scale: ArrayLike | None = None, causal: bool = False
) -> Float[Array, "*b nq nk"]:
    """Scaled scores ``s·QKᵀ`` (``s = 1/√d`` by default), ``-inf`` above the diagonal if causal.

    Scores beyond the float range raise eagerly (inf under ``jit``); the
    attention matrix and attention stay exact there.
    """
    q, k, _ = _qkv(q, k, causal=causal)
    s = _scale(scale, q.shape[-1], q.dtype)
    return _finish(*_softmax_scores(q, k, s, causal=causal), q=q, k=k)


def softmax_attention_matrix(
    q: Data, k: Data, *, scale: ArrayLike | None = None, causal: bool = False
) -> Float[Array, "*b nq nk"]:
    """Row-stochastic attention matrix ``softmax(s·QKᵀ)``, exact where the scores overflow (a hard max)."""
    q, k, _ = _qkv(q, k, causal=causal)
    s = _scale(scale, q.shape[-1], q.dtype)
    return _finish(*_softmax_attention_matrix(q, k, s, causal=causal), q=q, k=k)


def softmax_attention(
    q: Data, k: Data, v: Data, *, scale: ArrayLike | None = None, causal: bool = False
) -> Float[Array, "*b nq m"]:
    """Softmax attention ``softmax(s·QKᵀ) V`` with row-wise softmax and scale ``s``.

    **Arguments:** ``q``, ``k``, ``v`` as in the module docstring; ``scale``
    (a finite real number, may be traced) defaults to ``1/√d``; ``causal``
    masks keys after the query's position.

    **Returns:** ``(..., nq, m)``; every row is a convex combination of rows of
    ``v``. Where ``s·QKᵀ`` exceeds the float range the weights are still exact:
    each such row picks its largest score (uniform over exact ties).

    **Raises:** as ``linear_attention``; also for a non-finite or non-real ``scale``.
    """
    q, k, v = _qkv(q, k, v, causal=causal)
    s = _scale(scale, q.shape[-1], q.dtype)
    return _finish(*_softmax_attention(q, k, v, s, causal=causal), q=q, k=k, v=v)


def recurrent_linear_attention(
    q: Data, k: Data, v: Data, *, chunk: int = 64, state: bool = False
) -> Float[Array, "*b n m"] | tuple[Float[Array, "*b n m"], Float[Array, "*b d m"]]:
    """Causal linear attention as a recurrence over a constant-size state (T9, fast memory).

    ``S_t = S_{t−1} + k_t v_tᵀ``, ``o_t = q_tᵀ S_t / t``: the normalisation of
    ``linear_attention(q, k, v, causal=True)``, which it equals to rounding.
    Computed ``chunk`` rows at a time: the masked parallel form inside a chunk,
    the ``d × m`` state carried between chunks by ``lax.scan``, so memory is
    ``O(chunk² + chunk·(d + m) + d·m)`` per batch element, never ``n × n``.

    **Arguments:** ``q``, ``k``, ``v`` as in the module docstring, with as many
    queries as keys; ``chunk``: rows per chunk, a positive integer (static;
    values above ``n`` act as ``n``); ``state``: also return the final state.

    **Returns:** ``(..., n, m)``; with ``state=True``, also ``S_n = KᵀV``
    ``(..., d, m)`` (unnormalised).

    **Raises:** as ``linear_attention``; ``ValueError`` for a ``chunk`` that is
    not a positive integer.
    """
    q, k, v = _qkv(q, k, v, causal=True)
    size = _checks.count(chunk, "chunk")
    if size < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    result, status = _recurrent_linear_attention(q, k, v, chunk=min(size, q.shape[-2]))
    out, final = _checks.finish(result, status, dict(q=q, k=k, v=v), dtype=q.dtype)
    return (out, final) if state else out
