"""Large host (numpy) inputs, streamed to the device in row blocks instead of copied whole.

A fresh ``n × d`` device buffer costs a copy and a page fault per page: at
``n = 10⁶``, ``d = 64`` that is as long as the whole solve. The routes that
work from the moments ``G = XᵀX``, ``B = XᵀY`` (``Route.from_gram``) and the
Gram-first forward pass need only those, so ``moments`` accumulates them over
blocks of ``BLOCK_ROWS`` rows (the allocator reuses the block buffers) and
``map_rows`` applies a row-wise map the same way. No copy of ``X`` is made; the
sums are taken in a different order than one product would, which changes
only rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import BUCKET_MAX_ROWS, real_rows, rows_of, to_device
from ._linalg import gram, xty

#: Rows per block: 8 MiB per block at ``d = 64`` in float64.
BLOCK_ROWS = 1 << 14


class Moments(NamedTuple):
    """``G = XᵀX``, ``B = XᵀY`` (or ``None``) and the column sums of ``X`` (or ``None``)."""

    g: Float[Array, "*b d d"]
    b: Float[Array, "*b d m"] | None
    sums: Float[Array, "*b d"] | None


def streams(*arrays) -> bool:
    """Whether these inputs are streamed: all host arrays, with more rows than are ever bucketed."""
    return all(isinstance(a, np.ndarray) for a in arrays) and arrays[0].shape[-2] > BUCKET_MAX_ROWS


def blocks(a: np.ndarray) -> Iterator[jax.Array]:
    """``a`` on the device ``BLOCK_ROWS`` rows at a time; the last block is padded with zero rows."""
    n = a.shape[-2]
    for start in range(0, n, BLOCK_ROWS):
        block = a[..., start : start + BLOCK_ROWS, :]
        if block.shape[-2] < BLOCK_ROWS:
            padded = np.zeros((*a.shape[:-2], BLOCK_ROWS, a.shape[-1]), a.dtype)
            padded[..., : block.shape[-2], :] = block
            block = padded
        yield jax.device_put(np.ascontiguousarray(block))  # device_put: 4x jnp.asarray's speed on host arrays


@functools.partial(jax.jit, donate_argnums=0)
def _accumulate(m: Moments, x: Array, y: Array | None) -> Moments:
    return Moments(
        m.g + gram(x),
        None if y is None else m.b + xty(x, y),
        None if m.sums is None else m.sums + jnp.sum(x, axis=-2),
    )


def moments(x: np.ndarray, y: np.ndarray | None = None, *, sums: bool = False) -> Moments:
    """``XᵀX``, ``XᵀY`` (if ``y`` is given) and the column sums (if ``sums``) of host arrays, block by block."""
    dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    lead, d = x.shape[:-2], x.shape[-1]
    m = Moments(
        jnp.zeros((*lead, d, d), dtype),
        None if y is None else jnp.zeros((*lead, d, y.shape[-1]), dtype),
        jnp.zeros((*lead, d), dtype) if sums else None,
    )
    ys = blocks(y) if y is not None else iter(lambda: None, 0)
    for xb, yb in zip(blocks(x), ys):
        # Waiting for each block keeps one in flight: without it, async dispatch
        # would queue every block's copy and hold most of X on the device at once.
        m = jax.block_until_ready(_accumulate(m, xb, yb))
    return m


def map_rows(fn: Callable[..., Array], q: np.ndarray, *args) -> Array:
    """``fn(q_block, *args)`` over row blocks of the host array ``q``, concatenated along the rows."""
    rows = q.shape[-2]
    out = [jax.block_until_ready(fn(block, *args)) for block in blocks(q)]  # one block in flight
    axis = out[0].ndim - 1 if out[0].ndim < q.ndim else out[0].ndim - 2
    whole = jnp.concatenate(out, axis=axis)
    return jax.lax.slice_in_dim(whole, 0, rows, axis=axis)


def run(core: Callable, gram_core: Callable, arrays: tuple, args: tuple, options: dict, *, gram: bool):
    """``core(*arrays on the device, n, *args)``, or ``gram_core(*moments, n, *args)`` when streamed.

    The moments are used when ``gram`` allows (the route works from them) and
    the inputs are large host arrays; ``gram_core`` also says whether they
    sufficed (``Auto`` may need ``X`` after all), else ``core`` runs on a copy.
    Returns what the core returns: ``(result, status)``.
    """
    n, rows = rows_of(*arrays)
    dtype = arrays[0].dtype
    if gram and streams(*arrays):
        m = moments(*arrays)
        given = (m.g,) if len(arrays) == 1 else (m.g, m.b)
        *result, complete = gram_core(*given, real_rows(n, dtype), *args, **options)
        if bool(complete):
            return tuple(result)
    return core(*(to_device(a, rows) for a in arrays), real_rows(n, dtype), *args, **options)
