"""Where the time goes in the CPU target rows: ``python -m bench.profile_targets [--n N --d D]``.

``--attention`` instead times linear attention from the preset's ``n`` to
``n = 2¹⁹`` beside an empty jitted call (the dispatch overhead), with log-log
slopes over both ranges: the linear-attention slope target.

Times the pieces of olsjax's routes on the CPU target problem (default
n=10^6, d=64, float64) beside the numpy/LAPACK pieces they compete with, and
counts minor page faults per call: on CPU every jitted call writes its outputs
and intermediates into freshly page-faulted memory, which numpy's in-place
BLAS calls mostly avoid. Prints markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import olsjax
from olsjax._linalg import column_scale, xty

from ._competitors import jax_cho_solve, numpy_cholesky
from ._harness import Problem, problem_data

mm = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)


def _m_t(a):
    return jnp.swapaxes(a, -1, -2)


def measure(call: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median seconds and minor page faults per call, after one untimed warm-up call."""
    call()
    times, faults = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(times), statistics.median(faults)


def jitted(fn: Callable, *args: Any) -> Callable[[], Any]:
    """A compiled call of ``fn(*args)`` that waits for its result."""
    compiled = jax.jit(fn).lower(*args).compile()
    return lambda: jax.block_until_ready(compiled(*args))


def forward_reassociated(params: olsjax.LinearTransformer, queries, context):
    """``forward`` with ``KᵀV`` from the Gram matrix: no ``n × d`` intermediates, ``2nd²`` FLOPs.

    ``KᵀV = W_Kᵀ XᵀX W_V + W_Kᵀ s b_vᵀ + b_k sᵀ W_V + n b_k b_vᵀ`` with ``s = Xᵀ1``;
    then ``f = X* (W_Q H) + b_qᵀ H + b_out`` with ``H = KᵀV W_FFN W_P / n``.
    A what-if for the report: one layer, no refinement, always through ``XᵀX``
    (``olsjax.forward`` takes the Gram order itself only where its error estimate allows).
    """
    n = context.shape[-2]
    s = jnp.sum(context, axis=-2)
    # Absent biases (None) are zero.
    b_q, b_k, b_v = (jnp.zeros(w.shape[-1], w.dtype) if b is None else b for w, b in (
        (params.w_q, params.b_q), (params.w_k, params.b_k), (params.w_v, params.b_v)))
    ktv = (
        mm(_m_t(params.w_k), mm(mm(_m_t(context), context), params.w_v))
        + jnp.outer(mm(s, params.w_k), b_v)
        + jnp.outer(b_k, mm(s, params.w_v))
        + n * jnp.outer(b_k, b_v)
    )
    head = mm(mm(ktv, params.w_ffn), params.w_p) / n
    out = mm(queries, mm(params.w_q, head)) + mm(b_q, head)
    return out if params.b_out is None else out + params.b_out


def pieces(p: Problem) -> dict[str, dict[str, Callable[[], Any]]]:
    """The calls to time, by table: the default (auto) fit, the QR fit, construct vs forward."""
    (x_np, y_np), (x, y) = problem_data(p)
    params = olsjax.construct_ols(x, y)
    q_mat = jax.block_until_ready(jnp.linalg.qr(x)[0])
    check = jitted(forward_reassociated, params, x, x)()
    reference = jitted(olsjax.forward, params, x, x)()
    if not np.allclose(check, reference, rtol=1e-6, atol=1e-8 * float(jnp.max(jnp.abs(reference)))):
        raise AssertionError("forward_reassociated disagrees with olsjax.forward")
    scale = jax.block_until_ready(column_scale(x))
    return {
        "Default fit (auto: the Cholesky route on this well-conditioned X) against the normal equations": {
            "olsjax.lstsq [auto, default] (whole, jitted)": jitted(lambda a, b: olsjax.lstsq(a, b), x, y),
            "olsjax.lstsq [auto], equilibrate=False": jitted(
                lambda a, b: olsjax.lstsq(a, b, equilibrate=False), x, y
            ),
            "olsjax.lstsq [cholesky] (whole, jitted)": jitted(
                lambda a, b: olsjax.lstsq(a, b, route="cholesky"), x, y
            ),
            "equilibration: column maxima of X": jitted(column_scale, x),
            "equilibration: X / D (one fresh n×d output)": jitted(lambda a, s: a / s, x, scale),
            "XᵀX in XLA (jitted dot, HIGHEST)": jitted(lambda a: mm(_m_t(a), a), x),
            "XᵀY in XLA (jitted dot)": jitted(lambda a, b: mm(_m_t(a), b), x, y),
            "XᵀY as (YᵀX)ᵀ (olsjax's xty)": jitted(xty, x, y),
            "XᵀX in numpy (x.T @ x: BLAS syrk, half the FLOPs)": lambda: x_np.T @ x_np,
            "XᵀX in numpy as a general GEMM (np.dot of a copied Xᵀ)": functools.partial(
                np.dot, np.ascontiguousarray(x_np.T), x_np
            ),
            "jax.scipy cho_solve (normal eqs)": jitted(jax_cho_solve, x, y),
            "numpy Cholesky (normal eqs)": lambda: numpy_cholesky(x_np, y_np),
        },
        "QR fit against numpy/LAPACK": {
            "olsjax.lstsq [qr] (whole, jitted)": jitted(
                lambda a, b: olsjax.lstsq(a, b, route="qr"), x, y
            ),
            "jnp.linalg.qr(X), reduced: layout copy + geqrf + orgqr + copy back": jitted(jnp.linalg.qr, x),
            "jnp.linalg.qr(X, mode='r'): layout copy + geqrf": jitted(
                functools.partial(jnp.linalg.qr, mode="r"), x
            ),
            "Qᵀy given Q (XLA dot)": jitted(lambda a, b: mm(_m_t(a), b), q_mat, y),
            "numpy.linalg.qr(X, mode='r')": lambda: np.linalg.qr(x_np, mode="r"),
            "numpy.linalg.lstsq (gelsd, whole)": lambda: np.linalg.lstsq(x_np, y_np, rcond=None),
        },
        "construct_ols + forward, split": {
            "construct_ols [auto, default]": jitted(lambda a, b: olsjax.construct_ols(a, b), x, y),
            "construct_ols [auto], refine=0": jitted(
                lambda a, b: olsjax.construct_ols(a, b, refine=0), x, y
            ),
            "construct_ols [cholesky]": jitted(
                lambda a, b: olsjax.construct_ols(a, b, route="cholesky"), x, y
            ),
            "forward (pre-built θ, 2 refinement layers)": jitted(olsjax.forward, params, x, x),
            "forward (pre-built θ, one layer)": jitted(
                olsjax.forward, olsjax.construct_ols(x, y, refine=0), x, x
            ),
            "forward reassociated (what-if: KᵀV from XᵀX)": jitted(forward_reassociated, params, x, x),
            "jax x + 1 over X (one fresh n×d output)": jitted(lambda a: a + 1, x),
        },
    }


def report(p: Problem, repeats: int) -> str:
    """Markdown tables: median seconds and minor page faults per call, with the machine's load."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    out = [f"Profile of `{p.label}` (median of {repeats} after a warm-up; load average {load})"]
    for title, calls in pieces(p).items():
        rows = ["| call | median | minor page faults / call |", "|---|---|---|"]
        for name, call in calls.items():
            seconds, faults = measure(call, repeats)
            rows.append(f"| {name} | {seconds:.3g} s | {faults:,.0f} |")
        out += [f"#### {title}", "\n".join(rows)]
    return "\n\n".join(out) + "\n"


def attention_scaling(repeats: int) -> str:
    """Markdown: linear attention (d = 64, float32) against n, the dispatch overhead, and slopes."""
    rng = np.random.default_rng(0)
    attend = jax.jit(olsjax.linear_attention)
    empty = jax.jit(lambda q, k, v: q[:1, :1] + 1)
    ns = [512, 2048, 8192, 32768, 131072, 524288]
    rows, times = ["| n | linear attention | empty jitted call |", "|---|---|---|"], []
    for n in ns:
        q, k, v = (jnp.asarray(rng.standard_normal((n, 64)), jnp.float32) for _ in range(3))
        seconds, _ = measure(lambda q=q, k=k, v=v: jax.block_until_ready(attend(q, k, v)), repeats)
        overhead, _ = measure(lambda q=q, k=k, v=v: jax.block_until_ready(empty(q, k, v)), repeats)
        times.append(seconds)
        rows.append(f"| {n} | {seconds * 1e6:,.0f} µs | {overhead * 1e6:,.0f} µs |")
    small = np.polyfit(np.log(ns[:3]), np.log(times[:3]), 1)[0]
    large = np.polyfit(np.log(ns[2:]), np.log(times[2:]), 1)[0]
    return "\n".join(rows) + f"\n\nslope n = 512…8192: {small:.2f}; n = 8192…524288: {large:.2f}\n"


def main(argv: list[str] | None = None) -> None:
    """Print the profile tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attention", action="store_true", help="linear-attention scaling instead")
    args = parser.parse_args(argv)
    if args.attention:
        print(attention_scaling(max(args.repeats, 30)))
        return
    jax.config.update("jax_enable_x64", True)
    print(report(Problem("regression", args.n, args.d, args.dtype), args.repeats))


if __name__ == "__main__":
    main()
