"""Large host inputs are streamed in row blocks (``olsjax._stream``), and give the copied path's answers.

Above ``BUCKET_MAX_ROWS`` rows, numpy inputs to ``lstsq``, the constructions
and ``forward`` are not copied to the device whole: the Gram-family routes
read the moments ``XᵀX``, ``XᵀY`` accumulated block by block. The answers
must equal those of the same call on a JAX array (the copied path) and the
numpy reference; where the moments do not suffice (``Auto`` choosing a route
that needs ``X``, an intercept, a forward pass whose Gram order is not
accurate enough) the call falls back to the copy and must still be right.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax
from olsjax import _checks, _stream, testing

N = _checks.BUCKET_MAX_ROWS + 4321  # streamed, with a partial last block
D = 4


def _problem(seed: int, *, kappa: float = 1.0, m: int = 2):
    rng = np.random.default_rng(seed)
    x = testing.make_design(rng, N, D, kappa) * np.sqrt(N)  # rows of unit scale
    y = x @ rng.standard_normal((D, m)) + rng.standard_normal((N, m))
    return x, y


def _bound(x, y, p: int = 1) -> float:
    # The documented bound c·u·(κ^p + κ²·tanθ) of the route's answer against the exact one;
    # both paths are within it, so they differ by at most twice it.
    return 2 * testing.error_bound(np.float64, float(np.linalg.cond(x)), p, tan_theta=testing.tan_theta(x, y))


def test_inputs_of_this_size_are_streamed():
    x, y = _problem(0)
    assert _stream.streams(x, y)
    assert not _stream.streams(jnp.asarray(x), y)
    assert not _stream.streams(x[: _checks.BUCKET_MAX_ROWS], y[: _checks.BUCKET_MAX_ROWS])


@pytest.fixture(params=["host BLAS", "device blocks"])
def path(request, monkeypatch):
    """Both ways of taking moments: numpy's BLAS (the CPU backend's) and row blocks sent to
    the device (an accelerator's), which runs on the CPU too when told it is not the CPU."""
    if request.param == "device blocks":
        monkeypatch.setattr(_stream.jax, "default_backend", lambda: "accelerator")
    return request.param


def test_moments_equal_the_products(path):
    x, y = _problem(1)
    m = _stream.moments(x, y, sums=True)
    scale = np.abs(x).T @ np.abs(x)  # the rounding of a sum of products is relative to this
    u = testing.unit_roundoff(np.float64)
    assert np.all(np.abs(np.asarray(m.g) - x.T @ x) <= 2 * N * u * scale)  # blockwise sums: ≤ n·u each
    assert np.all(np.abs(np.asarray(m.b) - x.T @ y) <= 2 * N * u * (np.abs(x).T @ np.abs(y)))
    assert np.allclose(np.asarray(m.sums), x.sum(axis=0), rtol=0, atol=2 * N * u * np.abs(x).sum(axis=0).max())


@pytest.mark.parametrize("route", ["auto", "cholesky", "eigh", "zca", "qr"])
def test_lstsq_streamed_equals_copied_and_numpy(route, path):
    x, y = _problem(2)
    streamed, info = olsjax.lstsq(x, y, route=route, info=True)
    copied = olsjax.lstsq(jnp.asarray(x), jnp.asarray(y), route=route)
    reference = np.linalg.lstsq(x, y, rcond=None)[0]
    p = testing.bound_power(route)
    assert testing.relative_error(streamed, reference) <= _bound(x, y, p)
    assert testing.relative_error(streamed, copied) <= _bound(x, y, p)
    assert info.route_name == ("cholesky" if route == "auto" else route)


def test_auto_falls_back_to_the_copy_when_it_needs_x():
    # κ = 1e6: Auto's estimate is past Cholesky's range, so the moments do not suffice.
    x, y = _problem(3, kappa=1e6)
    beta, info = olsjax.lstsq(x, y, info=True)
    assert info.route_name in ("cholqr2", "svd")
    assert testing.relative_error(beta, np.linalg.lstsq(x, y, rcond=None)[0]) <= _bound(x, y)


def test_ridge_and_rcond_are_streamed_too():
    x, y = _problem(4)
    ridge = 10.0 * N
    expected = np.linalg.solve(x.T @ x + ridge * np.eye(D), x.T @ y)
    # Ridge shrinks κ; the bound at κ(X) is the conservative one.
    assert testing.relative_error(olsjax.lstsq(x, y, ridge=ridge), expected) <= _bound(x, y)
    minimum_norm = olsjax.lstsq(x, y, route="eigh", rcond=1e-6)
    assert testing.relative_error(minimum_norm, np.linalg.pinv(x) @ y) <= _bound(x, y, 2)


@pytest.mark.parametrize("intercept", [False, True])
def test_construct_and_forward_streamed_equal_ols(intercept, path):
    x, y = _problem(5)
    queries = np.random.default_rng(6).standard_normal((7, D))
    params = olsjax.construct_ols(x, y, intercept=intercept)
    design = np.hstack([x, np.ones((N, 1))]) if intercept else x
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    q = np.hstack([queries, np.ones((7, 1))]) if intercept else queries
    bound = _bound(design, y)
    assert testing.relative_error(olsjax.forward(params, queries, x), q @ beta) <= bound
    in_sample = olsjax.forward(params, x, x)  # queries streamed as well
    assert in_sample.shape == (N, 2)
    assert testing.relative_error(in_sample, design @ beta) <= bound


def test_vector_targets_and_values_are_targets_form(path):
    x, y = _problem(7, m=1)
    params = olsjax.construct_ols(x, y[:, 0])
    out = olsjax.forward(params, x, x)
    beta = np.linalg.lstsq(x, y[:, 0], rcond=None)[0]
    assert out.shape == (N,)
    assert testing.relative_error(out, x @ beta) <= _bound(x, y)
    attention = olsjax.construct_regression_attention(x)
    queries = np.random.default_rng(8).standard_normal((5, D))
    assert testing.relative_error(olsjax.regression_attention(attention, queries, x, y[:, 0]), queries @ beta) <= 2 * _bound(x, y)


def test_forward_falls_back_to_projections_when_the_gram_order_is_not_accurate():
    # κ = 1e7 on the qr route: the Gram order's error u·κ² cubed exceeds u, so forward
    # must take the projection order (and still meet the p = 1 bound of T12).
    x, y = _problem(9, kappa=1e7, m=1)
    params = olsjax.construct_ols(x, y, route="qr")
    queries = np.random.default_rng(10).standard_normal((5, D))
    expected = queries @ np.linalg.lstsq(x, y, rcond=None)[0]
    assert testing.relative_error(olsjax.forward(params, queries, x), expected) <= _bound(x, y)


def test_nan_in_a_streamed_input_is_named():
    x, y = _problem(11)
    y[N - 3, 1] = np.nan  # in the last, partial block
    with pytest.raises(ValueError, match="Y contains 1 NaN"):
        olsjax.lstsq(x, y)
    params = olsjax.construct_ols(x[:100], y[:100, :1])
    x[N - 10, 0] = np.inf
    with pytest.raises(ValueError, match="context contains 1 NaN"):
        olsjax.forward(params, x[:5], x)


def test_streamed_blocks_stay_few_in_flight(path):
    # One block at a time (or none, on the host): the moments of a large input hold no copy of it.
    assert _stream.BLOCK_ROWS * D * 8 < N * D * 8
    before = len(jax.live_arrays())
    _stream.moments(*_problem(12))
    assert len(jax.live_arrays()) - before <= 3  # the three moments themselves
