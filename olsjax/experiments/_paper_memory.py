"""Experiment 5 of ``paper``: slow vs fast memory — a constant-size state against the growing context (T9).

Causal linear attention over ``n`` tokens, computed two ways that agree to
rounding: the parallel (masked) form ``olsjax.linear_attention(q, k, v,
causal=True)``, which materialises the ``n × n`` attention matrix, and the
recurrent form ``olsjax.recurrent_linear_attention(q, k, v, chunk=c)``, which
carries the ``d × m`` state ``S_t = Σ_{i≤t} k_i v_iᵀ`` between chunks. Memory
is exact arithmetic from shapes (bytes of the buffers each form must hold);
time is the median of repeated calls, warmed up (compiled) outside the timed
region, each ended by ``jax.block_until_ready``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from .. import linear_attention, recurrent_linear_attention

D = M = 16
CHUNK = 64
DTYPE = jnp.float32
#: The parallel form holds n² entries: stop it where that would crowd a shared 2-core machine.
PARALLEL_MAX = 4096


def bytes_needed(n: int, itemsize: int) -> dict[str, int]:
    """Bytes each form must hold for ``n`` tokens (the dominant buffers, from their shapes)."""
    return {
        "parallel attention matrix (n²)": n * n * itemsize,
        "context cache K, V (n·(d+m))": n * (D + M) * itemsize,
        "recurrent state S (d·m)": D * M * itemsize,
        "recurrent chunk buffers (c² + c·(d+m))": (CHUNK * CHUNK + CHUNK * (D + M)) * itemsize,
    }


def _median_seconds(f, repeats: int) -> float:
    jax.block_until_ready(f())  # compile and warm up outside the timed region
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(*, quick: bool, seed: int, progress) -> dict:
    """Experiment 5: bytes and seconds per token of both forms as ``n`` grows."""
    del progress
    ns, repeats = ((256, 1024, 4096), 5) if quick else ((256, 1024, 4096, 16384, 65536), 15)
    key = jax.random.key(seed)
    rows = []
    for n in ns:
        q, k, v = (jax.random.normal(s, (n, D if i < 2 else M), DTYPE)
                   for i, s in enumerate(jax.random.split(jax.random.fold_in(key, n), 3)))
        row = {"n": n, **bytes_needed(n, jnp.dtype(DTYPE).itemsize)}
        recurrent = _median_seconds(lambda: recurrent_linear_attention(q, k, v, chunk=CHUNK), repeats)
        row["recurrent seconds per token"] = recurrent / n
        if n <= PARALLEL_MAX:
            parallel = _median_seconds(lambda: linear_attention(q, k, v, causal=True), repeats)
            row["parallel seconds per token"] = parallel / n
            out_r = recurrent_linear_attention(q, k, v, chunk=CHUNK)
            out_p = linear_attention(q, k, v, causal=True)
            row["max relative difference"] = float(jnp.max(jnp.abs(out_r - out_p)) / jnp.max(jnp.abs(out_p)))
        rows.append(row)
    return {
        "settings": {"d": D, "m": M, "chunk": CHUNK, "dtype": jnp.dtype(DTYPE).name, "repeats": repeats,
                     "parallel_max_n": PARALLEL_MAX, "timing": "median, warmed up, block_until_ready"},
        "rows": rows,
    }
