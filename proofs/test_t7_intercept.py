"""T7 — intercept *(olsjax)*.

Claim (THEOREMS.md): fitting with an intercept by (i) appending a column of
ones or (ii) centring ``X`` and ``Y``, running the construction, and adding the
mean of ``Y`` back, gives identical predictions, equal to OLS with intercept.

Route (i) is ``construct_ols([X, 1], Y)`` with queries ``[X*, 1]``; route (ii)
is ``construct_ols(X, Y, intercept=True)``, which centres inside and keeps the
means in the biases: ``b_q = b_k = b_v = −x̄ L`` and ``b_out = ȳ``. The
values-are-targets form has the same option
(``construct_regression_attention(X, intercept=True)``: key/query biases
``−x̄ L`` and ``ȳ`` added back). The reference is the exact OLS prediction on
the augmented design (``testing.exact_predict``); scikit-learn's
``LinearRegression(fit_intercept=True)`` checks that reference independently.

Data get a mean: ``X + 1μᵀ`` (``‖μ‖`` from ``{0, 1, 8}``; float32 ``{0, 1}``), ``Y + ȳ`` and
queries ``X* + 1μᵀ``, so that forgetting a mean is visible.

Error bound. ``κ`` is that of the augmented design ``[X, 1]`` (numpy's
``cond``), not ``problem.kappa``: a column of ones next to data with mean ``μ``
is nearly collinear with them, so ``κ([X, 1])`` is 4–8× ``κ(X)`` for ``μ = 0``
and up to ~250× for ``‖μ‖ = 8``. It bounds the centring route too: centring
in floating point makes errors relative to the *uncentred* magnitudes (measured:
with ``κ`` of the centred design the values form exceeds ``c = 50`` up to 3×;
with ``κ([X, 1])`` every route stays below 20·u·κ²). Forward passes use
``p = 2`` (attention works with the Gram of the whitened tokens). ``tan θ`` is
that of ``Y`` against the columns of ``[X, 1]``. The κ range drawn is lowered by
2.5 decades and examples whose ``κ([X, 1])`` still exceeds the non-vacuous
limit are skipped (``assume``).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from _plan import WHITENING, paper_ols
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression

import olsjax
from olsjax import testing

F64_CAP = testing.max_log10_kappa(np.float64, 2)
F32_CAP = testing.max_log10_kappa(np.float32, 2)
#: Shapes from ``testing.SHAPES``; each (shape, m, factor, dtype) and each route
#: compiles a construction anew (~0.5 s), so one shape per dtype.
SHAPES64 = ((16, 3),)
SHAPES32 = ((12, 1),)
#: float32 factors: one that forms XᵀX, one that does not (T5/T6 take the others).
FLOAT32_FACTORS = ("cholesky", "qr")


class Shifted:
    """A problem with means added, its augmented design, and the bound's ``κ``/``tan θ``."""

    def __init__(self, problem: testing.Problem, x_mean: float, y_mean: float):
        dtype = problem.x.dtype
        n, d = problem.x.shape
        mu = np.full(d, x_mean / math.sqrt(d))
        self.x = (problem.x + mu).astype(dtype)
        self.y = (problem.y + y_mean).astype(dtype)
        self.queries = (problem.queries + mu).astype(dtype)
        self.xa = np.hstack([self.x, np.ones((n, 1), dtype)])
        self.qa = np.hstack([self.queries, np.ones((len(self.queries), 1), dtype)])
        self.kappa = float(np.linalg.cond(self.xa.astype(np.float64)))
        self.tan_theta = testing.tan_theta(self.xa, self.y)
        self.dtype = dtype

    def assume_non_vacuous(self, cap: float) -> None:
        """Skip examples whose ``κ([X, 1])`` makes ``c·u·κ²`` exceed 1e-3."""
        assume(self.kappa <= 10**cap)

    def bound(self, *, c: float = testing.DEFAULT_C) -> float:
        return testing.error_bound(self.dtype, self.kappa, 2, c=c, tan_theta=self.tan_theta)

    def check(self, actual, expected, what: str, *, c: float = testing.DEFAULT_C) -> float:
        return testing.assert_within_bound(
            actual, expected, kappa=self.kappa, p=2, tan_theta=self.tan_theta,
            dtype=self.dtype, c=c, what=what,
        )

    def jnp(self, *names: str):
        return tuple(jnp.asarray(getattr(self, name)) for name in names)


def _check_routes(
    s: Shifted, *, sklearn: bool, appended: bool = True, factors=WHITENING
) -> None:
    expected = testing.exact_predict(s.xa, s.y, s.qa)
    jx, jy, jq, jxa, jqa = s.jnp("x", "y", "queries", "xa", "qa")
    if sklearn:
        model = LinearRegression(fit_intercept=True).fit(s.x, s.y)
        reference = model.predict(s.queries)
        s.check(reference, expected, "scikit-learn LinearRegression vs exact [X, 1] OLS")
    for factor in factors:
        centred_params = paper_ols(s.x, s.y, route=factor, intercept=True)
        centred = olsjax.forward(centred_params, jq, jx)
        s.check(centred, expected, f"(ii) centred with means in biases, factor {factor}")
        if appended:
            ones = paper_ols(s.xa, s.y, route=factor)
            with_ones = olsjax.forward(ones, jqa, jxa)
            s.check(with_ones, expected, f"(i) column of ones, factor {factor}")
            # Both routes are within c·u·κ² of the exact prediction: 2c (triangle inequality).
            s.check(with_ones, centred, f"(i) vs (ii), factor {factor}", c=2 * testing.DEFAULT_C)
        if sklearn:
            # Library and scikit-learn each within c·u·κ² of exact: 2c (triangle inequality).
            s.check(centred, reference, f"(ii) vs scikit-learn, factor {factor}",
                    c=2 * testing.DEFAULT_C)
        values_params = olsjax.construct_regression_attention(s.x, route=factor, intercept=True)
        values = olsjax.regression_attention(values_params, jq, jx, jy)
        s.check(values, expected, f"values form with intercept, factor {factor}")


@given(
    problem=testing.problems(shapes=SHAPES64, targets=(2,), max_log_kappa=F64_CAP - 2.5),
    x_mean=st.sampled_from((0.0, 1.0, 8.0)),
    y_mean=st.sampled_from((0.0, 100.0)),
)
def test_intercept_routes_agree_with_ols_float64(problem, x_mean, y_mean):
    s = Shifted(problem, x_mean, y_mean)
    s.assume_non_vacuous(F64_CAP)
    _check_routes(s, sklearn=True)


@given(
    problem=testing.problems(
        shapes=SHAPES32, targets=(1,), max_log_kappa=0.3, dtype=np.float32
    ),
    x_mean=st.sampled_from((0.0, 1.0)),
    y_mean=st.sampled_from((0.0, 100.0)),
)
def test_intercept_routes_agree_with_ols_float32(problem, x_mean, y_mean):
    # κ([X, 1]) is 4–8× κ(X) here; the float32 bound is non-vacuous up to κ ≈ 18.
    # Route (i) in float32 is construct_ols on a full-rank design, T1/T2's float32
    # path; here float32 checks what is specific to T7: centring, biases, ȳ, with
    # one Gram and one orthogonal factor (every factor is proved in float64).
    s = Shifted(problem, x_mean, y_mean)
    s.assume_non_vacuous(F32_CAP)
    _check_routes(s, sklearn=False, appended=False, factors=FLOAT32_FACTORS)


# --- falsification -------------------------------------------------------------------


@given(problem=testing.problems(shapes=SHAPES64, targets=(2,), max_log_kappa=1.0))
def test_falsification_forgetting_a_mean_misses_by_orders_of_magnitude(problem):
    """Large means (‖μ‖ = 8, ȳ = 1000); each wrong variant must miss by > 1e3× the bound."""
    s = Shifted(problem, 8.0, 1000.0)
    expected = testing.exact_predict(s.xa, s.y, s.qa)
    limit = 1e3 * s.bound()
    jx, jy, jq, jxa = s.jnp("x", "y", "queries", "xa")
    zeros_q = jnp.asarray(np.hstack([s.queries, np.zeros((len(s.queries), 1))]))
    for factor in WHITENING:
        params = paper_ols(s.x, s.y, route=factor, intercept=True)
        s.check(olsjax.forward(params, jq, jx), expected, f"correct centred route, factor {factor}")
        wrong = {
            "mean of Y not added back (b_out = 0)": olsjax.forward(
                dataclasses.replace(params, b_out=jnp.zeros_like(params.b_out)), jq, jx
            ),
            "queries not centred (b_q = 0)": olsjax.forward(
                dataclasses.replace(params, b_q=jnp.zeros_like(params.b_q)), jq, jx
            ),
        }
        ones = paper_ols(s.xa, s.y, route=factor)
        wrong["queries without their column of ones"] = olsjax.forward(ones, zeros_q, jxa)
        values = olsjax.construct_regression_attention(s.x, route=factor, intercept=True)
        assert values.intercept is True  # the static flag the wrong variant turns off
        wrong["values form without ȳ (intercept off)"] = olsjax.regression_attention(
            dataclasses.replace(values, intercept=False), jq, jx, jy
        )
        for name, prediction in wrong.items():
            error = testing.relative_error(prediction, expected)
            assert error > limit, f"{factor}, {name}: error {error:.3e} ≤ 1e3×bound {limit:.3e}"
