"""lstsq, ridge, hat matrix, minimum-norm solutions and condition numbers against numpy.

Every design here is either well-conditioned with ``κ(X) = 2`` exactly (so the
float64 error bound ``c·u·κ²`` of THEOREMS.md is ~1e-15 even for Gram routes)
or exactly rank-deficient with small-integer entries.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import olsjax

from ._problems import (
    BATCH,
    D,
    KAPPA,
    M,
    N,
    PINV_ROUTES,
    Q,
    SOLVE_ROUTES,
    WHITEN_ROUTES,
    assert_close,
    exact_low_rank,
    gaussian,
    j,
    np_ols,
    np_ridge,
    rel_err,
    targets,
    well_conditioned,
)

#: Every route ``lstsq`` takes: the concrete ones and ``"auto"``.
routes = pytest.mark.parametrize("route", ("auto", *SOLVE_ROUTES))
# κ = 2: the worst (Gram) routes err by ~u·κ²·n ≈ 1e-14; 1e-12 is 100× above that, far
# below the O(1) error of any wrong formula.
TOL = 1e-12
LAM = 0.5


def test_designs_have_the_advertised_conditioning():
    # The tolerances in this module lean on κ(X) = 2: check it rather than assume it.
    for seed in range(3):
        # Built from exact singular values; numpy's SVD recovers their ratio to a few ulps.
        assert np.linalg.cond(well_conditioned(seed)) == pytest.approx(KAPPA, rel=1e-12)
    assert np.linalg.matrix_rank(exact_low_rank(0)) == 2


# Batched problems throughout: each route then compiles once for this module, and every
# batch entry is compared with numpy on its own.


@routes
def test_lstsq_matches_numpy(route):
    x, y = well_conditioned(1, batch=(BATCH,)), targets(1, batch=(BATCH,))
    beta = np.asarray(olsjax.lstsq(x, y, route=route))
    assert beta.shape == (BATCH, D, M)
    for b in range(BATCH):
        assert_close(beta[b], np.linalg.lstsq(x[b], y[b], rcond=None)[0], TOL)


@routes
def test_lstsq_residual_is_orthogonal_to_the_columns(route):
    # Normal equations Xᵀ(Y − Xβ) = 0, scaled by ‖X‖‖Y‖; an independent check of optimality.
    x, y = well_conditioned(2, batch=(BATCH,)), targets(2, batch=(BATCH,))
    beta = np.asarray(olsjax.lstsq(x, y, route=route))
    for b in range(BATCH):
        scale = np.linalg.norm(x[b]) * np.linalg.norm(y[b])
        # Backward-stable solvers leave Xᵀr at u·‖X‖‖Y‖ times a small factor (κ² for Gram routes).
        assert np.linalg.norm(x[b].T @ (y[b] - x[b] @ beta[b])) <= 1e-13 * scale


@routes
def test_ridge_matches_closed_form(route):
    x, y = well_conditioned(0), targets(0)
    beta = olsjax.lstsq(x, y, route=route, ridge=LAM)
    assert_close(beta, np_ridge(x, y, LAM), TOL)
    # The ridge term must actually act: the OLS answer is far from the ridge one.
    assert rel_err(np_ols(x, y), np_ridge(x, y, LAM)) > 1e-3


@pytest.mark.parametrize("route", ["qr", "svd"])
def test_ridge_allows_fewer_rows_than_columns(route):
    x = well_conditioned(3).T.copy()  # (3, 8)
    y = targets(3, n=D)
    # (XᵀX + λI) has eigenvalues in [λ, 4n+λ]: κ ≤ 65, so 1e-12 is still 100× the rounding bound.
    assert_close(olsjax.lstsq(x, y, route=route, ridge=LAM), np_ridge(x, y, LAM), 1e-12)


def test_hat_matrix_matches_numpy():
    x = well_conditioned(0)
    h = olsjax.hat_matrix(x)
    assert_close(h, x @ np.linalg.solve(x.T @ x, x.T), TOL)


def test_ridge_hat_matrix_matches_closed_form():
    x = well_conditioned(0)
    h = olsjax.hat_matrix(x, ridge=LAM)
    expected = x @ np.linalg.solve(x.T @ x + LAM * np.eye(D), x.T)
    assert_close(h, expected, TOL)
    # trace H_λ = Σ s²/(s²+λ) (effective degrees of freedom), from numpy's singular values.
    s = np.linalg.svd(x, compute_uv=False)
    # A sum of n = 8 diagonal entries each within ~1e-15: 1e-12 absolute is ample.
    assert np.trace(np.asarray(h)) == pytest.approx(np.sum(s**2 / (s**2 + LAM)), abs=1e-12)


def test_hat_matrix_batched_matches_numpy_per_problem():
    x = well_conditioned(4, batch=(BATCH,))
    h = np.asarray(olsjax.hat_matrix(x))
    assert h.shape == (BATCH, N, N)
    for b in range(BATCH):
        assert_close(h[b], x[b] @ np.linalg.pinv(x[b]), TOL)


# rcond = 1e-6 clears both the SVD routes' noise floor (~u·s_max) and the Gram route's
# (~sqrt(u)·s_max, since eigh sees s², see the report on rcond=1e-10 with eigh), while the
# smallest non-zero singular value of these integer designs is O(1) s_max.
RCOND = 1e-6


@pytest.mark.parametrize("route", ("auto", *PINV_ROUTES))
def test_rcond_gives_the_minimum_norm_solution(route):
    x, y = exact_low_rank(5), targets(5)
    beta = olsjax.lstsq(x, y, route=route, rcond=RCOND)
    # The min-norm solution is well-conditioned on the range of X (s_max/s_r ≈ 2-10 here):
    # errors ~ u·κ_r² ≤ 1e-13 even for eigh, 1e-11 leaves margin for the discarded directions.
    assert_close(beta, np.linalg.pinv(x) @ y, 1e-11)


@pytest.mark.parametrize("route", PINV_ROUTES)
def test_rcond_with_fewer_rows_than_columns(route):
    x = well_conditioned(6).T.copy()  # (3, 8): full row rank, infinitely many solutions
    y = targets(6, n=D)
    beta = olsjax.lstsq(x, y, route=route, rcond=RCOND)
    # κ of the (3, 8) design is 2; Gram route squares it: ~u·4·8, so 1e-12 is generous.
    assert_close(beta, np.linalg.pinv(x) @ y, 1e-12)


def _suggested_rcond(x, y) -> float:
    """The rcond that the library's own n < d error message recommends."""
    with pytest.raises(ValueError, match=r"pass rcond") as info:
        olsjax.lstsq(x, y)
    return float(re.search(r"rcond=([0-9.e+-]+)\)", str(info.value)).group(1))


@pytest.mark.parametrize(
    ("entry", "route"),
    [
        ("lstsq", "svd"),
        ("lstsq", "eigh"),
        ("construct_ols", "svd"),
        ("construct_ols", "zca"),
    ],
)
def test_the_rcond_the_error_message_suggests_gives_the_minimum_norm_answer(entry, route):
    x = well_conditioned(6).T.copy()  # (3, 8): n < d, full row rank
    y = targets(6, n=D)
    rcond = _suggested_rcond(x, y)
    assert 0 < rcond < 1
    expected = np.linalg.pinv(x) @ y
    if entry == "lstsq":
        got, want = olsjax.lstsq(x, y, route=route, rcond=rcond), expected
    else:
        xs = gaussian(7, (Q, N))  # out-of-sample queries reach the null space of X
        params = olsjax.construct_ols(x, y, route=route, rcond=rcond)
        got, want = olsjax.forward(params, j(xs), j(x)), xs @ expected
    # κ = 2 on the row space; even a Gram route is good to ~u·κ²·d ≈ 1e-14 there. Keeping a
    # noise direction instead gives O(1) errors.
    assert_close(got, want, 1e-10)


def test_hat_matrix_with_rcond_projects_onto_the_column_space():
    x = exact_low_rank(5)
    h = olsjax.hat_matrix(x, rcond=RCOND)
    # Projector onto a 2-d column space, from an SVD: entries good to a few ulps.
    assert_close(h, x @ np.linalg.pinv(x), 1e-13)
    assert np.trace(np.asarray(h)) == pytest.approx(2.0, abs=1e-12)  # trace H = rank X


def test_condition_number_matches_numpy():
    x = well_conditioned(0)
    skewed = x * np.array([1.0, 1e3, 1e-3])  # κ around 1e6-1e7: a non-trivial value
    for a in (x, skewed, x.T.copy()):
        # Both are s_max/s_min from an SVD; relative error ~ u·κ·small factor, below 1e-9 for κ ≤ 1e7.
        assert float(olsjax.condition_number(a)) == pytest.approx(np.linalg.cond(a), rel=1e-9)


def test_condition_number_batched():
    x = np.stack([well_conditioned(0), well_conditioned(1) * np.array([1.0, 10.0, 100.0])])
    c = np.asarray(olsjax.condition_number(x))
    assert c.shape == (BATCH,)
    # SVD-based on both sides: a few ulps times κ (≤ ~1e3 here).
    np.testing.assert_allclose(c, [np.linalg.cond(x[0]), np.linalg.cond(x[1])], rtol=1e-12)


@pytest.mark.parametrize("route", ("auto", *WHITEN_ROUTES))
def test_constructed_transformer_predicts_like_numpy_ols(route):
    x, y = well_conditioned(0), targets(0)
    xs = well_conditioned(8, n=5)
    params = olsjax.construct_ols(x, y, route=route)
    assert_close(olsjax.forward(params, j(xs), j(x)), xs @ np.linalg.lstsq(x, y, rcond=None)[0], TOL)


def test_regression_attention_with_intercept_predicts_like_numpy_ols():
    x, y = well_conditioned(0), targets(0)
    xs = well_conditioned(8, n=5)
    ra = olsjax.construct_regression_attention(x, route="svd", intercept=True)
    ones = np.ones((N, 1))
    coef = np.linalg.lstsq(np.concatenate([ones, x], axis=1), y, rcond=None)[0]
    expected = coef[0] + xs @ coef[1:]
    # Centring adds a column of ones to the design: κ grows a little above 2, still ~1e-15 errors.
    assert_close(olsjax.regression_attention(ra, j(xs), j(x), j(y)), expected, TOL)


@pytest.mark.parametrize("route", WHITEN_ROUTES)
def test_one_layer_construction_holds_the_whitening_factor(route):
    # The whitening factor is W_Q = W_K = W_V of the paper's one-layer construction (refine=0),
    # with P = Lᵀ XᵀY / n in the head when there is no ridge.
    x, y = well_conditioned(0), targets(0)
    params = olsjax.construct_ols(x, y, route=route, refine=0)
    l, p = np.asarray(params.w_q), np.asarray(params.w_p)
    np.testing.assert_array_equal(params.w_k, l)
    np.testing.assert_array_equal(params.w_v, l)
    assert params.w_r is None and params.refinements == 0
    sigma = x.T @ x / N
    # Σ has κ = 4 here; L Lᵀ = Σ⁻¹ and P = Lᵀ XᵀY/n to ~u·κ², so 1e-12 is generous.
    assert_close(l @ l.T, np.linalg.inv(sigma), TOL)
    assert_close(p, l.T @ x.T @ y / N, TOL)
