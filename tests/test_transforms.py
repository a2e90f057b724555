"""JAX transformations and shape/dtype conventions of the public functions.

Every public function under ``jax.jit`` and ``jax.vmap`` gives the eager numbers;
leading batch dimensions equal a Python loop; vector targets give squeezed
results (``lstsq`` and ``forward`` alike); ``jax.grad`` through ``forward``
matches the analytic gradient; float32 stays float32 and float64 stays float64.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax

from ._problems import (
    BATCH,
    D,
    M,
    N,
    Q,
    SOLVE_ROUTES,
    WHITEN_ROUTES,
    assert_close,
    gaussian,
    j,
    np_ols,
    targets,
    well_conditioned,
)

K = 4  # hidden width of the hand-built transformers

# jit may fuse and reassociate, and vmap/batch dimensions switch LAPACK calls to batched
# kernels with different blocking: a few ulps × problem size (≤ n·d = 24-term sums) on κ = 2
# problems, ≲1e-14; 1e-12 leaves margin yet sits 10 orders below any real discrepancy.
TRANSFORM_TOL = 1e-12


def custom_transformer(seed: int, batch: tuple[int, ...] = ()) -> olsjax.LinearTransformer:
    """A LinearTransformer with Gaussian weights and biases (not a construction)."""
    g = lambda i, *shape: j(gaussian(100 * seed + i, (*batch, *shape)))  # noqa: E731
    return olsjax.LinearTransformer(
        w_q=g(0, D, K), w_k=g(1, D, K), w_v=g(2, D, K), w_ffn=g(3, K, K), w_p=g(4, K, M),
        b_q=g(5, K), b_k=g(6, K), b_v=g(7, K), b_out=g(8, M),
    )


def custom_regression_attention(seed: int, batch: tuple[int, ...] = ()) -> olsjax.RegressionAttention:
    g = lambda i, *shape: j(gaussian(100 * seed + 50 + i, (*batch, *shape)))  # noqa: E731
    return olsjax.RegressionAttention(w_q=g(0, D, K), w_k=g(1, D, K), b_q=g(2, K), b_k=g(3, K), intercept=True)


def np_transformer(p: olsjax.LinearTransformer, xs: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Forward pass of a single (unbatched) transformer in numpy, with intermediates."""
    a = {f: np.asarray(getattr(p, f)) for f in ("w_q", "w_k", "w_v", "w_ffn", "w_p", "b_q", "b_k", "b_v", "b_out")}
    qq, kk, vv = xs @ a["w_q"] + a["b_q"], x @ a["w_k"] + a["b_k"], x @ a["w_v"] + a["b_v"]
    hidden = qq @ kk.T @ vv / x.shape[0] @ a["w_ffn"]
    return {**a, "k": kk, "v": vv, "hidden": hidden, "out": hidden @ a["w_p"] + a["b_out"]}


# --- one table of cases for jit / vmap / batch -------------------------------------------------


class Case(NamedTuple):
    fn: Callable
    args: Callable[[tuple[int, ...]], tuple]  # batch shape -> arguments


def _xy(batch):
    return well_conditioned(11, batch=batch), targets(11, batch=batch)


def _x_xs(batch):
    return well_conditioned(12, n=Q, batch=batch), well_conditioned(11, batch=batch)


CASES = {
    "lstsq": Case(lambda x, y: olsjax.lstsq(x, y), _xy),
    "hat_matrix": Case(lambda x: olsjax.hat_matrix(x), lambda b: _xy(b)[:1]),
    "condition_number": Case(olsjax.condition_number, lambda b: _xy(b)[:1]),
    "construct_ols": Case(lambda x, y: olsjax.construct_ols(x, y, route="eigh"), _xy),
    "construct_regression_attention": Case(
        lambda x: olsjax.construct_regression_attention(x, route="svd", intercept=True),
        lambda b: _xy(b)[:1],
    ),
    # The whitening factor L (what olsjax.whiten returned in 0.1): W_Q of the one-layer construction.
    "whitening_factor": Case(
        lambda x, y: olsjax.construct_ols(x, y, route="cholesky", refine=0).w_q,
        lambda b: tuple(map(j, _xy(b))),
    ),
    "lstsq_ridge": Case(lambda x, y: olsjax.lstsq(x, y, route="qr", ridge=0.5), _xy),
    "forward": Case(
        olsjax.forward, lambda b: (custom_transformer(1, b), *map(j, _x_xs(b)))
    ),
    "attention_matrix": Case(
        olsjax.attention_matrix, lambda b: (custom_transformer(2, b), *map(j, _x_xs(b)))
    ),
    "regression_attention": Case(
        olsjax.regression_attention,
        lambda b: (custom_regression_attention(3, b), *map(j, _x_xs(b)), j(targets(11, batch=b))),
    ),
    "effective_weights": Case(
        olsjax.effective_weights, lambda b: (custom_regression_attention(4, b), *map(j, _xy(b)))
    ),
    "linear_attention": Case(
        lambda q, k, v: olsjax.linear_attention(q, k, v),
        lambda b: (j(gaussian(13, (*b, Q, D))), j(gaussian(14, (*b, N, D))), j(gaussian(15, (*b, N, M)))),
    ),
    "linear_attention_causal": Case(
        lambda q, k, v: olsjax.linear_attention(q, k, v, causal=True),
        lambda b: (j(gaussian(16, (*b, N, D))), j(gaussian(14, (*b, N, D))), j(gaussian(15, (*b, N, M)))),
    ),
    "linear_attention_matrix": Case(
        olsjax.linear_attention_matrix, lambda b: (j(gaussian(13, (*b, Q, D))), j(gaussian(14, (*b, N, D))))
    ),
    "softmax_attention": Case(
        lambda q, k, v: olsjax.softmax_attention(q, k, v, causal=True),
        lambda b: (j(gaussian(16, (*b, N, D))), j(gaussian(14, (*b, N, D))), j(gaussian(15, (*b, N, M)))),
    ),
    "softmax_attention_matrix": Case(
        lambda q, k: olsjax.softmax_attention_matrix(q, k, scale=0.3),
        lambda b: (j(gaussian(13, (*b, Q, D))), j(gaussian(14, (*b, N, D)))),
    ),
    "linear_scores": Case(
        olsjax.linear_scores, lambda b: (j(gaussian(13, (*b, Q, D))), j(gaussian(14, (*b, N, D))))
    ),
    "softmax_scores": Case(  # non-causal: causal scores hold -inf, compared in test_attention
        lambda q, k: olsjax.softmax_scores(q, k, scale=0.3),
        lambda b: (j(gaussian(13, (*b, Q, D))), j(gaussian(14, (*b, N, D)))),
    ),
}


def _compare(actual, expected, tol):
    """Same pytree structure (static fields and absent biases included), every leaf within ``tol``."""
    assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype
        if not np.any(e):  # an all-zero leaf has no relative error: it must stay exactly zero
            np.testing.assert_array_equal(a, e)
        else:
            assert_close(a, e, tol)


def _index(tree, b):
    return jax.tree_util.tree_map(lambda leaf: leaf[b], tree)


def _loop(case: Case, batched_args):
    """The eager function applied to each batch entry, results stacked: the reference."""
    outs = [case.fn(*_index(batched_args, b)) for b in range(BATCH)]
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *outs)


@pytest.mark.parametrize("name", list(CASES))
def test_jit_matches_eager(name):
    case = CASES[name]
    args = case.args(())
    _compare(jax.jit(case.fn)(*args), case.fn(*args), TRANSFORM_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_jit_of_vmap_matches_a_loop_of_eager_calls(name):
    # jit(vmap(f)) exercises both transformations with one compilation per case (plain vmap
    # would compile primitive by primitive); the library skips its value checks for any
    # tracer, batching or jitting alike, so nothing is lost by nesting them.
    case = CASES[name]
    args = case.args((BATCH,))
    _compare(jax.jit(jax.vmap(case.fn))(*args), _loop(case, args), TRANSFORM_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_leading_batch_dimensions_match_a_loop(name):
    case = CASES[name]
    args = case.args((BATCH,))
    _compare(case.fn(*args), _loop(case, args), TRANSFORM_TOL)


def test_two_leading_batch_dimensions():
    x, y = well_conditioned(20, batch=(BATCH, 3)), targets(20, batch=(BATCH, 3))
    beta = np.asarray(olsjax.lstsq(x, y))
    assert beta.shape == (BATCH, 3, D, M)
    for idx in np.ndindex(BATCH, 3):
        # κ = 2, auto takes Cholesky (error ~u·κ²·n ≈ 1e-14 with κ² = 4); 1e-12 is generous.
        assert_close(beta[idx], np.linalg.lstsq(x[idx], y[idx], rcond=None)[0], 1e-12)


# --- vector targets ---------------------------------------------------------------------------


# The squeeze happens in the core, identically for every route; "lstsq" is the one route
# with its own batching code (an explicit vmap per batch dimension).
@pytest.mark.parametrize(("route", "batch"), [("qr", ()), ("lstsq", (BATCH,))])
def test_vector_targets_give_vector_coefficients(route, batch):
    x, y = well_conditioned(21, batch=batch), targets(21, m=None, batch=batch)
    beta = olsjax.lstsq(x, y, route=route)
    assert beta.shape == (*batch, D)
    # The vector case must be the (n, 1) case squeezed, bit for bit: same program, same data.
    np.testing.assert_array_equal(beta, olsjax.lstsq(x, y[..., None], route=route)[..., 0])
    # κ = 2: backward-stable routes are within ~u·κ·n of numpy.
    assert_close(beta, np_ols(x, y[..., None])[..., 0], 1e-12)


def test_vector_targets_build_a_single_output_transformer():
    x, y = well_conditioned(21), targets(21, m=None)
    xs = well_conditioned(22, n=Q)
    vec, col = olsjax.construct_ols(x, y), olsjax.construct_ols(x, y[:, None])
    assert vec.vector and not col.vector  # the only difference: a static flag
    for a, b in zip(jax.tree_util.tree_leaves(vec), jax.tree_util.tree_leaves(col), strict=True):
        np.testing.assert_array_equal(a, b)  # same program on the same numbers: identical leaves
    assert vec.w_p.shape == (D, 1)
    out = olsjax.forward(vec, j(xs), j(x))
    assert out.shape == (Q,)  # documented: a vector Y gives (q,) predictions, like lstsq gives (d,)
    np.testing.assert_array_equal(out, olsjax.forward(col, j(xs), j(x))[:, 0])
    # κ = 2 and the default route is Cholesky plus two refinement layers: ~u·κ·n relative.
    assert_close(out, xs @ np.linalg.lstsq(x, y, rcond=None)[0], 1e-12)


def test_vector_targets_in_regression_attention():
    x, y = well_conditioned(21), targets(21, m=None)
    xs = well_conditioned(22, n=Q)
    ra = olsjax.construct_regression_attention(x)
    out = olsjax.regression_attention(ra, j(xs), j(x), j(y))
    assert out.shape == (Q,)
    np.testing.assert_array_equal(out, olsjax.regression_attention(ra, j(xs), j(x), j(y[:, None]))[:, 0])
    w = olsjax.effective_weights(ra, j(x), j(y))
    assert w.shape == (D,)
    # κ = 2, one whitening factor from Cholesky of Σ (κ(Σ) = 4): ~u·κ²·n, 1e-12 is generous.
    assert_close(out, xs @ np.linalg.lstsq(x, y, rcond=None)[0], 1e-12)
    assert_close(w, np.linalg.lstsq(x, y, rcond=None)[0], 1e-12)


# --- gradients --------------------------------------------------------------------------------


def test_grad_of_constructed_forward_wrt_queries_is_beta():
    # f = X* β for the construction, so d(Σ f)/dX* = 1 βᵀ with 1 the (q, m) ones.
    x, y = well_conditioned(23), targets(23)
    xs = well_conditioned(24, n=Q)
    params = olsjax.construct_ols(x, y)
    grad = jax.grad(lambda q: jnp.sum(olsjax.forward(params, q, j(x))))(j(xs))
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    # κ = 2 and the gradient is the same linear map as the forward pass: ~u·κ·n.
    assert_close(grad, np.ones((Q, M)) @ beta.T, 1e-12)


def test_grad_of_forward_matches_analytic_for_any_weights():
    p = custom_transformer(5)
    xs, x = well_conditioned(25, n=Q), well_conditioned(26)
    ref = np_transformer(p, xs, x)
    loss = lambda params, q: jnp.sum(olsjax.forward(params, q, j(x)))  # noqa: E731
    # Products of a handful of O(1)-O(10) Gaussian matrices: ~1e-15 relative, 1e-13 has margin.
    assert_close(olsjax.forward(p, j(xs), j(x)), ref["out"], 1e-13)
    g_params, g_q = jax.jit(jax.grad(loss, argnums=(0, 1)))(p, j(xs))
    ones = np.ones((Q, M))
    # f = (X* W_Q + b_q) C + b_out with C = Kᵀ V W_FFN W_P / n, so d(Σf)/dX* = 1 Cᵀ W_Qᵀ.
    c = ref["k"].T @ ref["v"] @ ref["w_ffn"] @ ref["w_p"] / N
    assert_close(g_q, ones @ c.T @ ref["w_q"].T, 1e-13)
    # f = hidden · W_P + b_out: d(Σf)/dW_P = hiddenᵀ 1 and d(Σf)/db_out = q·1.
    assert_close(g_params.w_p, ref["hidden"].T @ ones, 1e-13)
    np.testing.assert_array_equal(g_params.b_out, np.full(M, float(Q)))
    assert jax.tree_util.tree_structure(g_params) == jax.tree_util.tree_structure(p)


# --- dtypes -----------------------------------------------------------------------------------

# float32 accuracy: u = 6e-8 and κ² = 4 for Gram routes, times n = 8: errors ≲ 2e-6; 1e-5
# keeps margin and still fails for any float16-like downcast or wrong formula.
F32_TOL = 1e-5


@pytest.mark.parametrize("route", ("auto", *SOLVE_ROUTES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstsq_keeps_the_dtype(route, dtype):
    # Batched, the shape test_linalg compiles the float64 routes for.
    x, y = well_conditioned(27, batch=(BATCH,), dtype=dtype), targets(27, batch=(BATCH,), dtype=dtype)
    beta = olsjax.lstsq(x, y, route=route)
    assert beta.dtype == dtype
    ref = np_ols(x.astype(np.float64), y.astype(np.float64))
    assert_close(np.asarray(beta, np.float64), ref, F32_TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_other_solvers_keep_the_dtype(dtype):
    x, y = well_conditioned(27, dtype=dtype), targets(27, dtype=dtype)
    assert olsjax.lstsq(x, y, ridge=0.5).dtype == dtype
    assert olsjax.lstsq(x, y[:, 0]).dtype == dtype
    assert olsjax.hat_matrix(x, ridge=0.5).dtype == dtype
    assert olsjax.condition_number(x).dtype == dtype
    x64 = x.astype(np.float64)
    # condition number from an SVD: relative error ~ u·κ, far below F32_TOL.
    assert float(olsjax.condition_number(x)) == pytest.approx(np.linalg.cond(x64), rel=F32_TOL)


@pytest.mark.parametrize("route", ("auto", *WHITEN_ROUTES))
def test_constructions_keep_float32(route):
    x, y = well_conditioned(28, dtype=np.float32), targets(28, dtype=np.float32)
    xs = well_conditioned(29, n=Q, dtype=np.float32)
    # intercept and ridge exercise the centring, bias and ridge-head code paths too.
    params = olsjax.construct_ols(x, y, route=route, ridge=0.5, intercept=True)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {np.dtype(np.float32)}
    out = olsjax.forward(params, j(xs), j(x))
    assert out.dtype == np.float32
    # And the float32 numbers are right: ridge-with-intercept prediction in float64 numpy.
    x64, y64, xs64 = (a.astype(np.float64) for a in (x, y, xs))
    xm, ym = x64.mean(0), y64.mean(0)
    beta = np.linalg.solve((x64 - xm).T @ (x64 - xm) + 0.5 * np.eye(D), (x64 - xm).T @ (y64 - ym))
    assert_close(np.asarray(out, np.float64), (xs64 - xm) @ beta + ym, F32_TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regression_attention_keeps_the_dtype(dtype):
    x, y = well_conditioned(28, dtype=dtype), targets(28, dtype=dtype)
    ra = olsjax.construct_regression_attention(x, route="svd", intercept=True)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(ra)} == {np.dtype(dtype)}
    assert olsjax.regression_attention(ra, j(x), j(x), j(y)).dtype == dtype
    assert olsjax.effective_weights(ra, j(x), j(y)).dtype == dtype


def test_constructions_keep_float64():
    # The float64 construction tests elsewhere compare values; here only that nothing downcasts.
    x, y = well_conditioned(28), targets(28)
    for route in ("auto", *WHITEN_ROUTES):
        params = olsjax.construct_ols(x, y, route=route)
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {np.dtype(np.float64)}
        assert olsjax.forward(params, j(x), j(x)).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_keeps_the_dtype(dtype):
    q, k, v = (j(gaussian(30 + i, s, dtype)) for i, s in enumerate([(N, D), (N, D), (N, M)]))
    for causal in (False, True):
        assert olsjax.linear_attention(q, k, v, causal=causal).dtype == dtype
        assert olsjax.linear_attention_matrix(q, k, causal=causal).dtype == dtype
        assert olsjax.softmax_attention(q, k, v, causal=causal).dtype == dtype
        assert olsjax.softmax_attention_matrix(q, k, causal=causal).dtype == dtype
        assert olsjax.softmax_scores(q, k, causal=causal).dtype == dtype
    assert olsjax.linear_scores(q, k).dtype == dtype
