"""Every competitor, as a function of the problem's inputs, with the facts the harness needs.

JAX competitors are written once for any leading batch shape: olsjax and the
hand-written Gram routes batch natively (so the batched ``construct_ols`` with
``route="cholesky"`` *is* the batched-Cholesky path), ``jnp.linalg.lstsq``
and lineax are vmapped, and host solvers without batching loop over tasks in
Python.

olsjax appears twice: as users call it (``runtime="public"``: the eager
public functions on numpy arrays, input checks and the host-to-device
transfer included) and as jitted cores (``runtime="jit"``: the same
functions traced into one compiled call on device arrays, checks skipped).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import lineax as lx
import scipy.linalg
from sklearn.linear_model import LinearRegression

import olsjax

from ._harness import Runtime, WorkKind
from ._host import numpy_cholesky, numpy_lstsq, per_task

HIGHEST = jax.lax.Precision.HIGHEST
mm = functools.partial(jnp.matmul, precision=HIGHEST)

#: The ``route=`` defaults of ``construct_ols`` and ``lstsq`` (names in ``olsjax.ROUTES``).
DEFAULT_CONSTRUCT_ROUTE: str = inspect.signature(olsjax.construct_ols).parameters["route"].default
DEFAULT_LSTSQ_ROUTE: str = inspect.signature(olsjax.lstsq).parameters["route"].default
#: Routes ``construct_ols`` accepts (those that build a whitening factor, ``"auto"`` first), and ``lstsq``'s (all).
WHITENING_ROUTES: tuple[str, ...] = tuple(name for name, r in olsjax.ROUTES.items() if r.whitens)
LSTSQ_ROUTES: tuple[str, ...] = tuple(olsjax.ROUTES)


@dataclasses.dataclass(frozen=True)
class Competitor:
    """One row of a group: ``fn(*inputs, *prepare(*inputs))`` timed under ``runtime``.

    ``id`` names the row in pytest ids and in the report's targets (``aliases``
    adds e.g. ``lstsq.default``, ``jit.lstsq``); ``prepare`` builds extra
    arguments outside the timed region (the pre-built parameters) from the
    row's inputs (numpy arrays for ``host`` and ``public`` rows, device arrays
    otherwise); for ``jit`` rows it must be traceable, so the compile group
    can run it under ``jax.eval_shape``.
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
    """The pre-built parameters of ``prebuilt_forward`` (default route)."""
    return (olsjax.construct_ols(x, y),)


def construct_forward(route: str) -> Callable:
    """Fit and predict: ``forward(construct_ols(X, Y), X, X)`` (default refinement)."""

    def fn(x, y):
        return olsjax.forward(olsjax.construct_ols(x, y, route=route), x, x)

    return fn


def olsjax_lstsq(route: str) -> Callable:
    """``olsjax.lstsq`` by one route (its checks are skipped under ``jit``)."""
    return lambda x, y: olsjax.lstsq(x, y, route=route)


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


def lineax_solve(solver: lx.AbstractLinearSolver, *, normal: bool = False) -> Callable:
    """``lineax.linear_solve`` on ``X`` (QR, SVD) or on ``XᵀX`` tagged positive semidefinite (Cholesky).

    lineax solves for a vector: ``y`` must have one target column (``m = 1``),
    solved as ``y[..., 0]``. vmapped over leading batch axes; lineax's default
    ``throw=True`` (a failed solve raises) is kept, as a user would call it.
    """

    def one(x, y):
        if normal:
            operator = lx.MatrixLinearOperator(mm(x.T, x), lx.positive_semidefinite_tag)
            vector = mm(x.T, y[:, 0])
        else:
            operator, vector = lx.MatrixLinearOperator(x), y[:, 0]
        return lx.linear_solve(operator, vector, solver).value[:, None]

    def fn(x, y):
        if y.shape[-1] != 1:
            raise ValueError(f"lineax solves one right-hand side: Y must have m = 1 column, got shape {y.shape}")
        return _vmap_leading(one, x.ndim)(x, y)

    return fn


# --- Host competitors (numpy arrays in, numpy arrays out; numpy's own in _host) ------


def scipy_lstsq(x, y):
    """``scipy.linalg.lstsq`` with its defaults (gelsd, finiteness check); batches natively."""
    return scipy.linalg.lstsq(x, y)[0]


def sklearn_fit(x, y):
    """scikit-learn ``LinearRegression`` without intercept (the same problem as the others)."""
    return LinearRegression(fit_intercept=False).fit(x, y).coef_


# --- Registries --------------------------------------------------------------------


def _default_tag(name: str, default: str) -> str:
    return f"{name}, default" if name == default else name


def public_competitors() -> tuple[Competitor, ...]:
    """olsjax as users call it: the eager public functions on numpy arrays, each result awaited."""
    return (
        Competitor(
            "public.lstsq",
            f"olsjax.lstsq [{DEFAULT_LSTSQ_ROUTE}] public call, numpy input",
            "fit",
            "public",
            olsjax.lstsq,
        ),
        Competitor(
            "public.construct+forward",
            f"olsjax construct_ols+forward [{DEFAULT_CONSTRUCT_ROUTE}] public calls, numpy input",
            "fit+predict",
            "public",
            construct_forward(DEFAULT_CONSTRUCT_ROUTE),
        ),
        Competitor(
            "public.forward",
            "olsjax.forward (pre-built θ) public call, numpy input",
            "predict",
            "public",
            prebuilt_forward,
            prepare=construct_params,
        ),
    )


def regression_competitors() -> tuple[Competitor, ...]:
    """Every competitor of the regression suites (single and batched), olsjax first."""
    jitted = (
        Competitor(
            "forward.prebuilt",
            "olsjax.forward (pre-built θ) jitted core",
            "predict",
            "jit",
            prebuilt_forward,
            prepare=construct_params,
            aliases=("jit.forward",),
        ),
        *(
            Competitor(
                f"construct+forward.{r}",
                f"olsjax construct_ols+forward [{_default_tag(r, DEFAULT_CONSTRUCT_ROUTE)}] jitted together",
                "fit+predict",
                "jit",
                construct_forward(r),
                aliases=("construct+forward.default", "jit.construct+forward")
                if r == DEFAULT_CONSTRUCT_ROUTE else (),
            )
            for r in WHITENING_ROUTES
        ),
        *(
            Competitor(
                f"lstsq.{r}",
                f"olsjax.lstsq [{_default_tag(r, DEFAULT_LSTSQ_ROUTE)}] jitted core",
                "fit",
                "jit",
                olsjax_lstsq(r),
                aliases=("lstsq.default", "jit.lstsq") if r == DEFAULT_LSTSQ_ROUTE else (),
            )
            for r in LSTSQ_ROUTES
        ),
        Competitor(
            "lstsq.eager",
            f"olsjax.lstsq [{DEFAULT_LSTSQ_ROUTE}] public call, JAX input",
            "fit",
            "eager",
            olsjax.lstsq,
        ),
    )
    others = (
        Competitor("jnp.linalg.lstsq", "jnp.linalg.lstsq (vmapped if batched)", "fit", "jit", jnp_lstsq),
        Competitor("jax.cho_solve", "jax.scipy cho_solve (normal eqs)", "fit", "jit", jax_cho_solve),
        Competitor("jax.cholqr2", "CholeskyQR2 in JAX", "fit", "jit", jax_cholesky_qr2),
        Competitor("lineax.qr", "lineax QR (vmapped if batched)", "fit", "jit", lineax_solve(lx.QR())),
        Competitor("lineax.svd", "lineax SVD (vmapped if batched)", "fit", "jit", lineax_solve(lx.SVD())),
        Competitor(
            "lineax.cholesky",
            "lineax Cholesky (normal eqs, vmapped if batched)",
            "fit",
            "jit",
            lineax_solve(lx.Cholesky(), normal=True),
        ),
        Competitor("numpy.lstsq", "numpy.linalg.lstsq", "fit", "host", per_task(numpy_lstsq)),
        Competitor("scipy.lstsq", "scipy.linalg.lstsq", "fit", "host", scipy_lstsq),
        Competitor("sklearn", "sklearn LinearRegression", "fit", "host", per_task(sklearn_fit)),
        Competitor("numpy.cholesky", "numpy Cholesky (normal eqs)", "fit", "host", numpy_cholesky),
    )
    return public_competitors() + jitted + others


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
