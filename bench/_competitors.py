"""Every competitor, as a function of the problem's inputs, with the facts the harness needs.

JAX competitors are written once for any leading batch shape: olsjax and the
hand-written Gram routes batch natively (so the batched ``construct_ols`` with
``factor="cholesky"`` *is* the batched-Cholesky path), ``jnp.linalg.lstsq``
is vmapped, and host solvers without batching loop over tasks in Python.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import scipy.linalg
from sklearn.linear_model import LinearRegression

import olsjax

from ._harness import Runtime, WorkKind

HIGHEST = jax.lax.Precision.HIGHEST
mm = functools.partial(jnp.matmul, precision=HIGHEST)

DEFAULT_FACTOR: str = inspect.signature(olsjax.construct_ols).parameters["factor"].default
DEFAULT_METHOD: str = inspect.signature(olsjax.lstsq).parameters["method"].default


@dataclasses.dataclass(frozen=True)
class Competitor:
    """One row of a group: ``fn(*inputs, *prepare(*inputs))`` timed under ``runtime``.

    ``id`` names the row in pytest ids and in the report's targets (``aliases``
    adds e.g. ``lstsq.default``); ``prepare`` builds extra arguments outside
    the timed region (the pre-built parameters) and must be traceable, so the
    compile group can run it under ``jax.eval_shape``.
    """

    id: str
    label: str
    work: WorkKind
    runtime: Runtime
    fn: Callable
    prepare: Callable | None = None
    aliases: tuple[str, ...] = ()


def _m_t(a):
    return jnp.swapaxes(a, -1, -2)


def _vmap_leading(fn: Callable, ndim: int, core: int = 2) -> Callable:
    """``fn`` vmapped over every axis before its last ``core`` axes."""
    for _ in range(ndim - core):
        fn = jax.vmap(fn)
    return fn


# --- JAX competitors (pure; jitted by the harness) ---------------------------------


def prebuilt_forward(x, y, params):
    """In-sample predictions from parameters built before the timed region."""
    del y
    return olsjax.forward(params, x, x)


def construct_params(x, y):
    """The pre-built parameters of ``prebuilt_forward`` (default factor)."""
    return (olsjax.construct_ols(x, y),)


def construct_forward(factor: str) -> Callable:
    """Fit and predict in one call: ``forward(construct_ols(X, Y), X, X)`` (default refinement)."""

    def fn(x, y):
        return olsjax.forward(olsjax.construct_ols(x, y, factor=factor), x, x)

    return fn


def olsjax_lstsq(method: str) -> Callable:
    """``olsjax.lstsq`` by one method (its checks are skipped under ``jit``)."""
    return lambda x, y: olsjax.lstsq(x, y, method=method)


def jnp_lstsq(x, y):
    """``jnp.linalg.lstsq`` (SVD-based), vmapped over batch axes."""
    return _vmap_leading(lambda a, b: jnp.linalg.lstsq(a, b)[0], x.ndim)(x, y)


def jax_cho_solve(x, y):
    """Normal equations by ``jax.scipy.linalg.cho_solve``: ``(XᵀX)⁻¹XᵀY``."""
    return jsl.cho_solve(jsl.cho_factor(mm(_m_t(x), x)), mm(_m_t(x), y))


def jax_cholesky_qr2(x, y):
    """CholeskyQR2 least squares: two Cholesky-QR passes, error ``∝ κ`` for ``κ ≲ u^{-1/2}``.

    ``R₁ = chol(XᵀX)``, ``Q₁ = X R₁⁻¹``, ``R₂ = chol(Q₁ᵀQ₁)``; then
    ``β = R₁⁻¹ R₂⁻¹ R₂⁻ᵀ Q₁ᵀ Y``. Only matmuls and small triangular solves:
    the batched-GPU-friendly alternative to vmapped QR/SVD.
    """
    r1 = _m_t(jnp.linalg.cholesky(mm(_m_t(x), x)))
    q1t = jsl.solve_triangular(r1, _m_t(x), trans="T", lower=False)
    r2 = _m_t(jnp.linalg.cholesky(mm(q1t, _m_t(q1t))))
    z = jsl.solve_triangular(r2, mm(q1t, y), trans="T", lower=False)
    return jsl.solve_triangular(r1, jsl.solve_triangular(r2, z, lower=False), lower=False)


# --- Host competitors (numpy arrays in, numpy arrays out) ---------------------------


def per_task(fn: Callable) -> Callable:
    """``fn`` on each task of a stacked ``(B, n, d)`` problem, results stacked; plain call when 2-D."""

    def looped(x, y):
        if x.ndim == 2:
            return fn(x, y)
        return np.stack([fn(a, b) for a, b in zip(x, y, strict=True)])

    return looped


def numpy_lstsq(x, y):
    """``numpy.linalg.lstsq`` (LAPACK gelsd)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def scipy_lstsq(x, y):
    """``scipy.linalg.lstsq`` with its defaults (gelsd, finiteness check); batches natively."""
    return scipy.linalg.lstsq(x, y)[0]


def sklearn_fit(x, y):
    """scikit-learn ``LinearRegression`` without intercept (the same problem as the others)."""
    return LinearRegression(fit_intercept=False).fit(x, y).coef_


def numpy_cholesky(x, y):
    """Normal equations in numpy: ``XᵀX`` (BLAS syrk), Cholesky, two solves with the factor."""
    g, b = np.swapaxes(x, -1, -2) @ x, np.swapaxes(x, -1, -2) @ y
    c = np.linalg.cholesky(g)
    return np.linalg.solve(np.swapaxes(c, -1, -2), np.linalg.solve(c, b))


# --- Registries --------------------------------------------------------------------


def _default_tag(name: str, default: str) -> str:
    return f"{name}, default" if name == default else name


def regression_competitors() -> tuple[Competitor, ...]:
    """Every competitor of the regression suites (single and batched), olsjax first."""
    olsjax_rows = (
        Competitor(
            "forward.prebuilt",
            "olsjax.forward (pre-built θ)",
            "predict",
            "jit",
            prebuilt_forward,
            prepare=construct_params,
        ),
        *(
            Competitor(
                f"construct+forward.{f}",
                f"olsjax construct_ols+forward [{_default_tag(f, DEFAULT_FACTOR)}]",
                "fit+predict",
                "jit",
                construct_forward(f),
                aliases=("construct+forward.default",) if f == DEFAULT_FACTOR else (),
            )
            for f in ("auto", *olsjax.FACTORS)
        ),
        *(
            Competitor(
                f"lstsq.{m}",
                f"olsjax.lstsq [{_default_tag(m, DEFAULT_METHOD)}]",
                "fit",
                "jit",
                olsjax_lstsq(m),
                aliases=("lstsq.default",) if m == DEFAULT_METHOD else (),
            )
            for m in ("auto", *olsjax.METHODS)
        ),
        Competitor(
            "lstsq.eager",
            f"olsjax.lstsq [{DEFAULT_METHOD}] public call, eager checks",
            "fit",
            "eager",
            olsjax.lstsq,
        ),
    )
    others = (
        Competitor("jnp.linalg.lstsq", "jnp.linalg.lstsq (vmapped if batched)", "fit", "jit", jnp_lstsq),
        Competitor("jax.cho_solve", "jax.scipy cho_solve (normal eqs)", "fit", "jit", jax_cho_solve),
        Competitor("jax.cholqr2", "CholeskyQR2 in JAX", "fit", "jit", jax_cholesky_qr2),
        Competitor("numpy.lstsq", "numpy.linalg.lstsq", "fit", "host", per_task(numpy_lstsq)),
        Competitor("scipy.lstsq", "scipy.linalg.lstsq", "fit", "host", scipy_lstsq),
        Competitor("sklearn", "sklearn LinearRegression", "fit", "host", per_task(sklearn_fit)),
        Competitor("numpy.cholesky", "numpy Cholesky (normal eqs)", "fit", "host", numpy_cholesky),
    )
    return olsjax_rows + others


def attention_competitors() -> tuple[Competitor, ...]:
    """Linear vs softmax attention, causal and not: ``Q, K, V`` in, ``(n, d)`` out."""
    rows = []
    for causal in (False, True):
        tag = ".causal" if causal else ""
        name = " (causal)" if causal else ""
        rows.append(
            Competitor(
                f"linear{tag}",
                f"olsjax.linear_attention{name}",
                # The causal form masks the n×n score matrix: quadratic work.
                "quadratic-attention" if causal else "linear-attention",
                "jit",
                functools.partial(olsjax.linear_attention, causal=causal),
            )
        )
        rows.append(
            Competitor(
                f"softmax{tag}",
                f"olsjax.softmax_attention{name}",
                "quadratic-attention",
                "jit",
                functools.partial(olsjax.softmax_attention, causal=causal),
            )
        )
    return tuple(rows)
