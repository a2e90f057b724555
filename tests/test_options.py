"""Traced options and row buckets: the 0.2 promises about ``ridge``, ``rcond`` and ``n``.

``ridge`` and ``rcond`` are traced (only their presence is static): a sweep
compiles once, ``jax.grad`` and ``jax.vmap`` over them work and agree with
closed forms and loops. Small inputs are padded to row buckets, so twenty
consecutive ``n`` compile a handful of times with unchanged answers. A
concrete ``ridge=0`` is the no-ridge path; bad concrete values are named.

Compile counts read the jitted cores' caches (``_cache_size()``). Each
sweep uses a shape no other test uses, so its first call must compile exactly
once, and no later call of the sweep may compile again.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax
import olsjax._construct
import olsjax._lstsq
import olsjax._transformer
from olsjax._ranges import default_layers
from olsjax import testing

from ._problems import (
    BATCH,
    D,
    Q,
    SOLVE_ROUTES,
    WHITEN_ROUTES,
    assert_close,
    exact_low_rank,
    gaussian,
    j,
    np_ridge,
    rel_err,
    targets,
    well_conditioned,
)

RIDGES = np.geomspace(1e-3, 1e2, 20)


def _cache(fn) -> int:
    return fn._cache_size()


def _sweep_compiles(core, call, values) -> tuple[int, int]:
    """Compiles of ``core`` by the first call, and by every later one (should be 0)."""
    before = _cache(core)
    call(values[0])
    first = _cache(core) - before
    for v in values[1:]:
        call(v)
    return first, _cache(core) - before - first


# --- (a) a ridge sweep compiles once ---------------------------------------------------------------


def test_lstsq_ridge_sweep_compiles_once():
    # (19, 6): a shape only this test uses, so the first call must compile (once).
    x, y = gaussian(80, (19, 6)), gaussian(81, (19, 2))
    first, later = _sweep_compiles(olsjax._lstsq._lstsq, lambda r: olsjax.lstsq(x, y, ridge=float(r)), RIDGES)
    assert (first, later) == (1, 0)
    # And the sweep's answers are each ridge's own (not the first one's, reused).
    for r in RIDGES[::6]:
        # Gaussian 19 x 6 design, κ(XᵀX + λI) ≲ 30: Cholesky of the normal equations to ~u·κ·d.
        assert_close(olsjax.lstsq(x, y, ridge=float(r)), np_ridge(x, y, r), 1e-12)


def test_construct_regression_attention_ridge_sweep_compiles_once():
    x = gaussian(82, (19, 7))
    first, later = _sweep_compiles(
        olsjax._construct._construct_regression_attention,
        lambda r: olsjax.construct_regression_attention(x, ridge=float(r)),
        RIDGES,
    )
    assert (first, later) == (1, 0)


def test_construct_ols_ridge_sweep_compiles_once():
    x, y = gaussian(83, (19, 9)), gaussian(84, (19, 1))
    first, later = _sweep_compiles(
        olsjax._construct._construct_ols, lambda r: olsjax.construct_ols(x, y, ridge=float(r)), RIDGES
    )
    assert (first, later) == (1, 0)


# --- (b) jax.grad with respect to ridge ----------------------------------------------------------

LAM = 0.7


def _validation_problem():
    x, y = well_conditioned(85), targets(85)
    xv, yv = gaussian(86, (Q, D)), gaussian(87, (Q, 2))
    return x, y, xv, yv


def _analytic_dloss(x, y, xv, yv, lam: float) -> float:
    """d/dλ of ‖X_v β_λ − Y_v‖² with dβ/dλ = −(XᵀX + λI)⁻¹ β_λ, in numpy."""
    a = x.T @ x + lam * np.eye(x.shape[1])
    beta = np.linalg.solve(a, x.T @ y)
    dbeta = -np.linalg.solve(a, beta)
    return float(np.sum(2 * (xv @ beta - yv) * (xv @ dbeta)))


# κ(X) = 2, λ = 0.7 against s² ∈ [8, 32]: every route's derivative (reverse mode through its
# factorisation) lands within ~u·κ²·d of the closed form (measured ≤ 5e-15); 1e-12 is margin.
GRAD_TOL = 1e-12


@pytest.mark.parametrize("route", ("auto", *SOLVE_ROUTES))
def test_grad_of_validation_loss_wrt_ridge_through_lstsq(route):
    x, y, xv, yv = _validation_problem()

    def loss(lam):
        return jnp.sum((j(xv) @ olsjax.lstsq(x, y, route=route, ridge=lam) - j(yv)) ** 2)

    grad = float(jax.grad(loss)(LAM))
    expected = _analytic_dloss(x, y, xv, yv, LAM)
    assert abs(expected) > 1e-2  # a derivative worth checking
    assert abs(grad - expected) <= GRAD_TOL * abs(expected)
    # Under jit too (one compile for every λ).
    assert abs(float(jax.jit(jax.grad(loss))(LAM)) - expected) <= GRAD_TOL * abs(expected)


@pytest.mark.parametrize("route", ("auto", *WHITEN_ROUTES))
def test_grad_of_validation_loss_wrt_ridge_through_regression_attention(route):
    x, y, xv, yv = _validation_problem()

    def loss(lam):
        ra = olsjax.construct_regression_attention(x, route=route, ridge=lam)
        return jnp.sum((olsjax.regression_attention(ra, j(xv), j(x), j(y)) - j(yv)) ** 2)

    grad = float(jax.grad(loss)(LAM))
    expected = _analytic_dloss(x, y, xv, yv, LAM)
    assert abs(grad - expected) <= GRAD_TOL * abs(expected)


@pytest.mark.parametrize("route", ["auto", "svd"])
def test_grad_of_validation_loss_wrt_ridge_through_the_transformer(route):
    x, y, xv, yv = _validation_problem()

    def loss(lam):
        params = olsjax.construct_ols(x, y, route=route, ridge=lam)
        return jnp.sum((olsjax.forward(params, j(xv), j(x)) - j(yv)) ** 2)

    grad = float(jax.grad(loss)(LAM))
    expected = _analytic_dloss(x, y, xv, yv, LAM)
    # The ridge head W_P = M⁻¹ P adds one more well-conditioned solve (κ(M) ≤ 1 + λ/s²_min).
    assert abs(grad - expected) <= GRAD_TOL * abs(expected)


# --- (c) jax.vmap over ridge equals a loop -------------------------------------------------------


def test_vmap_over_ridge_equals_a_python_loop():
    x, y = well_conditioned(88), targets(88)
    ridges = RIDGES[::4]
    mapped = np.asarray(jax.vmap(lambda r: olsjax.lstsq(x, y, ridge=r))(jnp.asarray(ridges)))
    loop = np.stack([np.asarray(olsjax.lstsq(x, y, ridge=float(r))) for r in ridges])
    assert mapped.shape == (len(ridges), D, 2)
    for a, b, r in zip(mapped, loop, ridges):
        # κ = 2: a batched and an unbatched Cholesky of the same matrix, a few ulps apart.
        assert_close(a, b, 1e-13)
        assert_close(a, np_ridge(x, y, r), 1e-12)  # and each is its own λ's answer
    assert rel_err(loop[0], loop[-1]) > 1e-2  # the λ's differ enough to tell apart


def test_vmap_over_ridge_through_regression_attention_equals_a_loop():
    x, y = well_conditioned(89), targets(89)
    xs = gaussian(89, (Q, D))
    ridges = RIDGES[::4]

    def predict(r):
        ra = olsjax.construct_regression_attention(x, ridge=r)
        return olsjax.regression_attention(ra, j(xs), j(x), j(y))

    mapped = np.asarray(jax.vmap(predict)(jnp.asarray(ridges)))
    for a, r in zip(mapped, ridges):
        loop = np.asarray(predict(float(r)))
        assert_close(a, loop, 1e-13)  # same computation, batched: a few ulps
        assert_close(a, xs @ np_ridge(x, y, r), 1e-12)  # κ = 2: ~u·κ²·d


# --- (d) rcond is traced --------------------------------------------------------------------------

# Singular values of the κ = 2 design (d = 3) are s_max·(1, 0.75, 0.5): rcond = 0.6 cuts the
# smallest, 0.8 the two smaller ones, 1e-6 none. numpy's pinv takes the same cutoff (it drops
# s ≤ rcond·s_max, the library keeps s > rcond·s_max: no singular value sits on a cutoff).
RCONDS = np.asarray([1e-6, 0.6, 0.8])


def test_vmap_and_jit_over_rcond_with_the_svd():
    x, y = well_conditioned(90), targets(90)
    mapped = np.asarray(jax.vmap(lambda rc: olsjax.lstsq(x, y, route="svd", rcond=rc))(jnp.asarray(RCONDS)))
    jitted = jax.jit(lambda rc: olsjax.lstsq(x, y, route="svd", rcond=rc))
    for a, rc in zip(mapped, RCONDS):
        expected = np.linalg.pinv(x, rcond=rc) @ y
        # A truncated SVD of κ = 2 data: ~u·κ·n on the kept directions.
        assert_close(a, expected, 1e-12)
        assert_close(jitted(rc), expected, 1e-12)
        assert_close(a, olsjax.lstsq(x, y, route="svd", rcond=float(rc)), 1e-13)  # eager: a few ulps
    assert rel_err(mapped[0], mapped[2]) > 1e-2  # rcond is honoured, not ignored


def test_an_rcond_sweep_compiles_once():
    # (17, 6) with rcond: a program only this test builds.
    x, y = exact_low_rank(91, n=17, d=6, r=3), gaussian(92, (17, 2))
    first, later = _sweep_compiles(
        olsjax._lstsq._lstsq, lambda rc: olsjax.lstsq(x, y, route="svd", rcond=float(rc)), np.geomspace(1e-8, 1e-2, 10)
    )
    assert (first, later) == (1, 0)


# --- (e) twenty n, a few compiles -------------------------------------------------------------------


def test_twenty_row_counts_compile_at_most_three_times():
    core, fwd = olsjax._construct._construct_ols, olsjax._transformer._forward
    before = _cache(core), _cache(fwd)
    g = np.random.default_rng(93)
    for n in range(100, 120):
        p = testing.make_problem(g, n, 5, kappa=10.0)
        out = np.asarray(olsjax.forward(olsjax.construct_ols(p.x, p.y), p.queries, p.x))
        expected = p.queries @ np.linalg.lstsq(p.x, p.y, rcond=None)[0]
        assert out.shape == expected.shape
        # Zero padding rows change no product: the answer is that of the real n rows. Both this
        # and numpy's answer are within the documented bound c·u·(κ + κ²·tan θ) of the exact one.
        tol = 2 * testing.error_bound(np.float64, 10.0, 1, tan_theta=p.tan_theta)
        assert rel_err(out, expected) <= tol, n
    compiles = _cache(core) - before[0], _cache(fwd) - before[1]
    # Rows are padded to three significant bits: 100-112 → 112, 113-119 → 128 (two buckets).
    assert compiles[0] <= 3 and compiles[1] <= 3, compiles


def test_padding_rows_do_not_change_the_answer():
    # n = 100 is padded to 112 rows on the way in; under jit (tracers) it is not padded.
    p = testing.make_problem(np.random.default_rng(94), 100, 5, kappa=10.0)
    eager = olsjax.lstsq(p.x, p.y, route="qr")
    traced = jax.jit(lambda a, b: olsjax.lstsq(a, b, route="qr"))(p.x, p.y)
    # Householder QR of the same rows, with and without 12 trailing zero rows: the same
    # reflectors up to blocking, a few ulps times κ = 10.
    assert_close(eager, traced, 1e-13)


# --- (f) ridge = 0 and bad ridges ----------------------------------------------------------------


def test_concrete_zero_ridge_is_the_no_ridge_path():
    x, y = well_conditioned(95), targets(95)
    plain, zero = olsjax.construct_ols(x, y), olsjax.construct_ols(x, y, ridge=0.0)
    # The default refine without ridge: the layers for this shape (T13).
    assert plain.refinements == zero.refinements == default_layers(*x.shape, np.float64)
    assert jax.tree_util.tree_structure(plain) == jax.tree_util.tree_structure(zero)
    for a, b in zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(zero), strict=True):
        np.testing.assert_array_equal(a, b)  # the very same program: bit for bit
    np.testing.assert_array_equal(olsjax.lstsq(x, y, ridge=0), olsjax.lstsq(x, y))
    np.testing.assert_array_equal(olsjax.lstsq(x, y, ridge=np.float64(0.0)), olsjax.lstsq(x, y))
    # A positive ridge switches the default to the one-layer model.
    assert olsjax.construct_ols(x, y, ridge=0.5).refinements == 0
    # No ridge means full rank is required, exactly as without the argument.
    deficient = np.concatenate([x, x[:, :1]], axis=1)
    with pytest.raises(ValueError, match="rank-deficient"):
        olsjax.lstsq(deficient, y, ridge=0.0)


def test_traced_zero_ridge_is_a_ridge_of_zero():
    # Under jit the value is unknown when the program is built: it takes the ridge path
    # (refine 0), and λ = 0 then gives the OLS answer.
    x, y = well_conditioned(96), targets(96)
    params = jax.jit(lambda r: olsjax.construct_ols(x, y, ridge=r))(0.0)
    assert params.refinements == 0
    beta = jax.jit(lambda r: olsjax.lstsq(x, y, ridge=r))(0.0)
    # κ = 2: ~u·κ²·n for the default route.
    assert_close(beta, np.linalg.lstsq(x, y, rcond=None)[0], 1e-12)


ENTRIES = {
    "lstsq": lambda x, y, **kw: olsjax.lstsq(x, y, **kw),
    "construct_ols": lambda x, y, **kw: olsjax.construct_ols(x, y, **kw),
    "construct_regression_attention": lambda x, y, **kw: olsjax.construct_regression_attention(x, **kw),
    "hat_matrix": lambda x, y, **kw: olsjax.hat_matrix(x, **kw),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("ridge", [-1.0, -1e-300, np.nan, -np.inf, np.inf])
def test_negative_or_nan_ridge_is_named(entry, ridge):
    x, y = well_conditioned(97), targets(97)
    with pytest.raises(ValueError, match=r"ridge must be finite and >= 0, got"):
        ENTRIES[entry](x, y, ridge=ridge)


@pytest.mark.parametrize("route", ("auto", *SOLVE_ROUTES))
def test_a_traced_indefinite_ridge_gives_nan_not_a_finite_answer(route):
    # A traced λ is not validated; λ = −16 puts −λ inside the spectrum s² ∈ [8, 32] of X,
    # so Σ_λ is indefinite: documented to give NaN, never a finite wrong answer.
    x, y = well_conditioned(98), targets(98)
    s = np.linalg.svd(x, compute_uv=False)
    assert s[-1] ** 2 < 16 < s[0] ** 2
    beta = jax.jit(lambda r: olsjax.lstsq(x, y, route=route, ridge=r))(-16.0)
    assert np.all(np.isnan(np.asarray(beta)))


def test_batched_ridge_per_task():
    # A ridge of shape (B,) is one λ per task under vmap; the explicit batch matches.
    x, y = well_conditioned(99, batch=(BATCH,)), targets(99, batch=(BATCH,))
    ridges = jnp.asarray([0.1, 10.0])
    mapped = np.asarray(jax.vmap(lambda a, b, r: olsjax.lstsq(a, b, ridge=r))(x, y, ridges))
    for b in range(BATCH):
        # κ = 2: ~u·κ²·n.
        assert_close(mapped[b], np_ridge(x[b], y[b], float(ridges[b])), 1e-12)
