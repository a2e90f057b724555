"""Large host (numpy) inputs, read in place or streamed to the device in row blocks, never copied whole.

A fresh ``n × d`` device buffer costs a copy and a page fault per page: at
``n = 10⁶``, ``d = 64`` that is as long as the whole solve. The routes that
work from the moments ``G = XᵀX``, ``B = XᵀY`` (``Route.from_gram``) and the
Gram-first forward pass need only those: ``moments`` takes them where the
data are (numpy's BLAS on the CPU backend; blocks of ``BLOCK_ROWS`` rows sent
to an accelerator, whose allocator reuses the block buffers), and
``affine`` applies ``Q W + c`` the same way. The sums are taken in a
different order than one device product would, which changes only rounding.
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
from ._linalg import gram, mm, xty

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
    """``XᵀX``, ``XᵀY`` (if ``y`` is given) and the column sums (if ``sums``) of host arrays.

    On the CPU backend numpy's BLAS takes them in place (``XᵀX`` as a
    symmetric rank-k update: half the flops of the general product XLA:CPU
    runs, and no copy of ``X``); on an accelerator the rows go to the device
    block by block. Either way only ``d × d`` results are transferred.
    """
    dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    if jax.default_backend() == "cpu":
        xt = np.swapaxes(x, -1, -2)
        return Moments(
            jax.device_put((xt @ x).astype(dtype)),
            None if y is None else jax.device_put((xt @ y).astype(dtype)),
            jax.device_put(x.sum(axis=-2).astype(dtype)) if sums else None,
        )
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


@jax.jit
def _affine(q, w, c):
    return mm(q, w) + c


def affine(q: np.ndarray, w: Array, c: Array) -> Array:
    """``Q W + c`` for a large host ``Q`` (``(..., q, d)``) and small ``W``, ``c``, without copying ``Q`` whole.

    numpy's BLAS on the CPU backend (only the ``q × m`` result is
    transferred); row blocks on an accelerator.
    """
    dtype = jax.dtypes.canonicalize_dtype(q.dtype)
    if jax.default_backend() == "cpu":
        return jax.device_put((q @ np.asarray(w, q.dtype) + np.asarray(c, q.dtype)).astype(dtype))
    out = [jax.block_until_ready(_affine(block, w, c)) for block in blocks(q)]  # one block in flight
    return jax.lax.slice_in_dim(jnp.concatenate(out, axis=-2), 0, q.shape[-2], axis=-2)


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
