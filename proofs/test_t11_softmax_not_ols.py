"""T11 — softmax attention is not OLS *(olsjax)*.

Claim (THEOREMS.md): every row of a softmax attention matrix is a probability
vector, so each output coordinate lies in ``[min_i Y_i, max_i Y_i]`` for any
weights and any queries. OLS extrapolates: exhibit, for generated data, queries
whose OLS prediction leaves that interval, so no softmax single layer with
values ``Y`` can equal OLS there. Softmax attention does approach a kernel
smoother; document where it approximates OLS and where it cannot.

What is proved here:

1. The interval property, for random ``W_Q``, ``W_K``, scales and queries
   (float64 and float32).
2. For every generated problem, the query ``X* = t·β_j/‖β_j‖`` with
   ``t = 2·max|Y_j|/‖β_j‖`` has exact OLS prediction ``2·max|Y_j|`` in
   coordinate ``j``, at least ``max|Y_j|`` above the interval; softmax (any
   weights, including the OLS whitening) stays inside, so it misses by that gap.
3. Small scale: ``softmax(s·QKᵀ)Y`` tends to the mean ``Ȳ`` — a constant,
   whatever the query — with ``|out − Ȳ| ≤ (e^{s·R_z} − 1)·max|Y − Ȳ|``, ``R_z``
   the range of the query's scores over the keys.
4. Where softmax *does* approximate OLS: with the OLS-with-intercept scores
   ``z_i = (x* − x̄) Σ_c⁻¹ (x_i − x̄)ᵀ`` (``construct_regression_attention(X,
   intercept=True)``), ``d/ds softmax(s·z)·Y`` at ``s = 0`` is
   ``(1/n) Σ z_i (y_i − Ȳ) = (x* − x̄) β_c``, so the affine read-out
   ``Ȳ + (out − Ȳ)/s`` is the OLS-with-intercept prediction up to the Taylor
   remainder ``s·R_y·R_z²/8`` (third cumulant bound: ``|f''| ≤ R_y·Var(z) ≤
   R_y·R_z²/4``). So softmax matches OLS only in its linear regime, only with
   a read-out that amplifies by ``1/s``, and the error grows with ``R_z²``, i.e.
   with how far the query extrapolates; the raw layer output never leaves the
   interval.

Falsification: linear attention (the values-are-targets OLS construction, the
same values ``Y``) does leave the interval at the queries of 2, and equals OLS
there within the bound.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import olsjax
from olsjax import testing

#: Shapes from ``testing.SHAPES`` (softmax runs eagerly: one set of op
#: compilations per shape and dtype, and one construction per shape).
SHAPES64 = ((33, 5),)
SHAPES32 = ((16, 3),)

#: κ ≤ 1e3: the OLS bound c·u·κ²(1 + tan θ) stays ≤ 1e-6, so a miss of order
#: one is "orders of magnitude" beyond it.
WELL_CONDITIONED = 3.0


def _slack(n: int, dtype, y: np.ndarray) -> np.ndarray:
    """Rounding of a softmax average, per column: the weights sum to ``1 ± (n+2)u``
    and the weighted sum adds ``n·u·max|y|``; twice that for headroom."""
    return 2 * (n + 2) * testing.unit_roundoff(dtype) * np.max(np.abs(y), axis=0)


def _softmax(q, k, y, scale: float) -> np.ndarray:
    return np.asarray(
        olsjax.softmax_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(y), scale=scale)
    )


# --- 1. the interval property --------------------------------------------------------


def _check_interval(problem: testing.Problem, seed: int, log_w: float, log_s: float, t: float):
    dtype = problem.x.dtype
    n, d = problem.x.shape
    rng = np.random.default_rng(seed)
    w_q, w_k = (rng.standard_normal((d, d)) * 10.0**log_w for _ in range(2))
    q = (t * problem.queries @ w_q).astype(dtype)
    k = (problem.x @ w_k).astype(dtype)
    out = _softmax(q, k, problem.y, 10.0**log_s)
    slack = _slack(n, dtype, problem.y)
    low, high = problem.y.min(axis=0), problem.y.max(axis=0)
    assert np.all(np.isfinite(out)), "softmax attention returned inf/NaN"
    assert np.all(out >= low - slack), (out.min(axis=0), low)
    assert np.all(out <= high + slack), (out.max(axis=0), high)


@given(
    problem=testing.problems(shapes=SHAPES64),
    seed=st.integers(0, 2**32 - 1),
    log_w=st.floats(-2, 1),
    log_s=st.floats(-3, 2),
    t=st.sampled_from((1.0, 100.0)),
)
def test_softmax_output_stays_in_target_interval_float64(problem, seed, log_w, log_s, t):
    _check_interval(problem, seed, log_w, log_s, t)


@given(
    problem=testing.problems(shapes=SHAPES32, dtype=np.float32),
    seed=st.integers(0, 2**32 - 1),
    log_w=st.floats(-2, 1),
    log_s=st.floats(-3, 2),
    t=st.sampled_from((1.0, 100.0)),
)
def test_softmax_output_stays_in_target_interval_float32(problem, seed, log_w, log_s, t):
    _check_interval(problem, seed, log_w, log_s, t)


# --- 2. OLS leaves the interval; falsification: linear attention does too -------------


def _extrapolating_queries(problem: testing.Problem) -> np.ndarray:
    """Row j: ``t_j·β_j/‖β_j‖`` with ``t_j = 2·max|Y_j|/‖β_j‖`` (exact β)."""
    beta = testing.exact_lstsq(problem.x, problem.y)
    norms = np.linalg.norm(beta, axis=0)
    scale = 2 * np.max(np.abs(problem.y), axis=0) / norms**2
    return (beta * scale).T


@given(
    problem=testing.problems(shapes=SHAPES64, max_log_kappa=WELL_CONDITIONED),
    seed=st.integers(0, 2**32 - 1),
    log_s=st.floats(-3, 2),
)
def test_ols_leaves_the_interval_where_softmax_cannot(problem, seed, log_s):
    """OLS predicts ``2·max|Y_j|`` at the extrapolating query; softmax misses by the gap."""
    n, d = problem.x.shape
    m = problem.y.shape[1]
    queries = _extrapolating_queries(problem)
    ols = testing.exact_predict(problem.x, problem.y, queries)
    high, top = problem.y.max(axis=0), np.max(np.abs(problem.y), axis=0)
    diagonal = ols[np.arange(m), np.arange(m)]
    # By construction OLS predicts 2·max|Y_j| in coordinate j (exactly, up to rounding).
    np.testing.assert_allclose(diagonal, 2 * top, rtol=1e-9)  # 1e-9: float64 rounding of β, t
    gap = diagonal - high
    assert np.all(gap >= top * (1 - 1e-9))  # at least max|Y_j| above the interval
    slack = _slack(n, np.float64, problem.y)
    # Softmax with random weights and with the OLS whitening L as W_Q = W_K:
    rng = np.random.default_rng(seed)
    whitening = np.asarray(olsjax.construct_regression_attention(problem.x).w_q)
    for w_q, w_k in ((rng.standard_normal((d, d)), rng.standard_normal((d, d))),
                     (whitening, whitening)):
        out = _softmax(queries @ w_q, problem.x @ w_k, problem.y, 10.0**log_s)
        miss = diagonal - out[np.arange(m), np.arange(m)]
        assert np.all(miss >= gap - slack), (miss, gap)
        bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
        # Falsification standard: softmax misses OLS by more than 1e3× the OLS bound.
        assert testing.relative_error(out, ols) > 1e3 * bound


@given(
    problem=testing.problems(shapes=SHAPES64, max_log_kappa=WELL_CONDITIONED),
)
def test_falsification_linear_attention_leaves_the_interval(problem):
    """The interval property fails for linear attention with the same values ``Y``."""
    n = problem.x.shape[0]
    m = problem.y.shape[1]
    queries = _extrapolating_queries(problem)
    ols = testing.exact_predict(problem.x, problem.y, queries)
    params = olsjax.construct_regression_attention(problem.x)
    out = np.asarray(olsjax.regression_attention(
        params, jnp.asarray(queries), jnp.asarray(problem.x), jnp.asarray(problem.y)
    ))
    testing.assert_within_bound(
        out, ols, kappa=problem.kappa, p=2, tan_theta=problem.tan_theta,
        what="linear attention at the extrapolating queries",
    )
    high, slack = problem.y.max(axis=0), _slack(n, np.float64, problem.y)
    assert np.all(out[np.arange(m), np.arange(m)] > high + slack)


# --- 3. small scale: the mean of Y, whatever the query --------------------------------


@given(
    problem=testing.problems(shapes=SHAPES64),
    seed=st.integers(0, 2**32 - 1),
    log_s=st.floats(-8, -2),
    t=st.sampled_from((1.0, 100.0)),
)
def test_softmax_tends_to_the_mean_as_scale_vanishes(problem, seed, log_s, t):
    """``|softmax(s·QKᵀ)Y − Ȳ| ≤ (e^{s·R_z} − 1)·max|Y − Ȳ|``: a constant as ``s → 0``."""
    n, d = problem.x.shape
    rng = np.random.default_rng(seed)
    q = t * problem.queries @ rng.standard_normal((d, d))
    k = problem.x @ rng.standard_normal((d, d))
    s = 10.0**log_s
    out = _softmax(q, k, problem.y, s)
    z = q @ k.T
    u = testing.unit_roundoff(np.float64)
    # Scores are rounded by at most d·u·‖q‖‖k_i‖ (Cauchy–Schwarz); twice that for headroom.
    score_error = 2 * d * u * np.linalg.norm(q, axis=1) * np.max(np.linalg.norm(k, axis=1))
    spread = z.max(axis=1) - z.min(axis=1) + 2 * score_error
    mean = problem.y.mean(axis=0)
    deviation = np.max(np.abs(problem.y - mean), axis=0)
    # Weights lie in [e^{-sR}/n, e^{sR}/n], so |Σ(a_i − 1/n)(y_i − Ȳ)| ≤ (e^{sR} − 1)·max|y − Ȳ|.
    limit = np.expm1(s * spread)[:, None] * deviation[None, :] + _slack(n, np.float64, problem.y)
    assert np.all(np.abs(out - mean) <= limit), np.max(np.abs(out - mean) / limit)


# --- 4. the linear regime: softmax with an affine read-out approximates OLS ----------


@given(
    problem=testing.problems(shapes=SHAPES64, max_log_kappa=1.0),
    log_eps=st.floats(-5, -2),
)
def test_softmax_linearisation_is_ols_with_intercept(problem, log_eps):
    """``Ȳ + (softmax(s·z)Y − Ȳ)/s`` tends to the OLS-with-intercept prediction:
    error ≤ s·R_y·R_z²/8 plus rounding."""
    n, d = problem.x.shape
    params = olsjax.construct_regression_attention(problem.x, intercept=True)
    w_q, b_q = np.asarray(params.w_q), np.asarray(params.b_q)
    w_k, b_k = np.asarray(params.w_k), np.asarray(params.b_k)
    q, k = problem.queries @ w_q + b_q, problem.x @ w_k + b_k
    z = q @ k.T
    spread = z.max(axis=1) - z.min(axis=1)  # R_z per query
    s = 10.0**log_eps / float(np.max(spread)) ** 2  # s·R_z² = ε: well inside the linear regime
    out = _softmax(q, k, problem.y, s)
    mean = problem.y.mean(axis=0)
    readout = mean + (out - mean) / s
    ones = np.ones((n, 1))
    query_ones = np.ones((len(problem.queries), 1))
    expected = testing.exact_predict(
        np.hstack([problem.x, ones]), problem.y, np.hstack([problem.queries, query_ones])
    )
    u = testing.unit_roundoff(np.float64)
    y_range = problem.y.max(axis=0) - problem.y.min(axis=0)
    taylor = s * spread[:, None] ** 2 * y_range[None, :] / 8
    # The softmax average's rounding, amplified by the 1/s of the read-out.
    rounding = _slack(n, np.float64, problem.y)[None, :] / s
    # Rounded scores shift the first-order term by at most R_y·δz, δz ≤ 2·d·u·‖q‖‖k_i‖.
    scores = 2 * d * u * np.linalg.norm(q, axis=1) * np.max(np.linalg.norm(k, axis=1))
    # The whitening itself is OLS to within c·u·κ²([X, 1])·(1 + tan θ) (T7's bound).
    xa = np.hstack([problem.x, ones])
    construction = testing.error_bound(
        np.float64, float(np.linalg.cond(xa)), 2, tan_theta=testing.tan_theta(xa, problem.y)
    ) * np.linalg.norm(expected)
    limit = taylor + rounding + scores[:, None] * y_range[None, :] + construction
    error = np.abs(readout - expected)
    assert np.all(error <= limit), np.max(error / limit)
