"""``olsjax.testing`` refuses bad input: the exact references and the problem generators.

Every refusal names the argument at fault and the bad shape or value. The
positive cases check answers written out by hand (or in integer arithmetic),
never from the code under test.

Under the test-time type-checking hook (``--jaxtyping-packages``), a wrongly
*typed* annotated scalar (``n=2.0`` for ``n: int``, ``ridge="a"``) is refused
by the hook before the library's own check, with a ``TypeError`` naming the
parameter (``parameter 'n'``, ``Actual value: 2.0``); without the hook the
library's ``TypeError`` says ``n must be an integer, got 2.0``. Both are
accepted by ``_names`` below. Float-annotated arguments get float test values,
so the value checks (``ValueError``) are the library's under both.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from olsjax import testing

X = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # 3 × 2, full column rank
Y = np.array([1.0, 4.0, 5.0])
Q = np.array([[1.0, 1.0]])
NAN, INF = math.nan, math.inf


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _names(arg: str) -> str:
    """The message names ``arg``: the library's messages start with it; the hook's say ``parameter 'arg'``."""
    return rf"^{re.escape(arg)}\b|parameter '{re.escape(arg)}'"


# (id, call, exception, argument named, regex the message must also contain: shapes or value)
REFUSALS = [
    # --- exact_lstsq -------------------------------------------------------
    ("lstsq-y-short", lambda: testing.exact_lstsq(X, Y[:-1]), ValueError, "y", r"\(3, 2\).*\(2,\)"),
    ("lstsq-y-long", lambda: testing.exact_lstsq(X, np.ones((4, 2))), ValueError, "y", r"\(3, 2\).*\(4, 2\)"),
    ("lstsq-x-1d", lambda: testing.exact_lstsq(Y, Y), ValueError, "x", r"2-D.*\(3,\)"),
    ("lstsq-x-3d", lambda: testing.exact_lstsq(X[None], Y), ValueError, "x", r"\(1, 3, 2\)"),
    ("lstsq-y-3d", lambda: testing.exact_lstsq(X, np.ones((3, 1, 1))), ValueError, "y", r"\(3, 1, 1\)"),
    ("lstsq-x-empty", lambda: testing.exact_lstsq(np.ones((0, 2)), np.ones(0)), ValueError, "x", "empty"),
    ("lstsq-x-no-cols", lambda: testing.exact_lstsq(np.ones((3, 0)), Y), ValueError, "x", "empty"),
    ("lstsq-y-no-cols", lambda: testing.exact_lstsq(X, np.ones((3, 0))), ValueError, "y", "empty"),
    ("lstsq-x-nan", lambda: testing.exact_lstsq(np.where(X == 2, NAN, X), Y), ValueError, "x", "NaN"),
    ("lstsq-x-inf", lambda: testing.exact_lstsq(np.where(X == 2, INF, X), Y), ValueError, "x", "infinite"),
    ("lstsq-y-nan", lambda: testing.exact_lstsq(X, [1.0, NAN, 5.0]), ValueError, "y", "NaN"),
    ("lstsq-y-neg-inf", lambda: testing.exact_lstsq(X, [1.0, -INF, 5.0]), ValueError, "y", "infinite"),
    ("lstsq-x-bool", lambda: testing.exact_lstsq(X.astype(bool), Y), TypeError, "x", "bool"),
    ("lstsq-x-complex", lambda: testing.exact_lstsq(X + 1j, Y), TypeError, "x", "complex"),
    ("lstsq-y-complex", lambda: testing.exact_lstsq(X, Y + 0j), TypeError, "y", "complex"),
    ("lstsq-x-str", lambda: testing.exact_lstsq([["1", "0"]], [1.0]), TypeError, "x", "<U1"),
    ("lstsq-y-object", lambda: testing.exact_lstsq(X, np.array([1, None, 2], object)), TypeError, "y", "object"),
    ("lstsq-y-object-float", lambda: testing.exact_lstsq(X, np.array([1.0, 2, 3], object)), TypeError, "y", "object"),
    ("lstsq-ridge-neg", lambda: testing.exact_lstsq(X, Y, ridge=-1.0), ValueError, "ridge", "-1.0"),
    ("lstsq-ridge-nan", lambda: testing.exact_lstsq(X, Y, ridge=NAN), ValueError, "ridge", "NaN"),
    ("lstsq-ridge-inf", lambda: testing.exact_lstsq(X, Y, ridge=INF), ValueError, "ridge", "infinite"),
    ("lstsq-ridge-str", lambda: testing.exact_lstsq(X, Y, ridge="a"), TypeError, "ridge", "'a'|<U1"),
    ("lstsq-ridge-complex", lambda: testing.exact_lstsq(X, Y, ridge=1j), TypeError, "ridge", "1j|complex"),
    # --- exact_predict -----------------------------------------------------
    ("predict-queries-width", lambda: testing.exact_predict(X, Y, np.ones((2, 3))), ValueError, "queries",
     r"\(3, 2\).*\(2, 3\)"),
    ("predict-queries-1d", lambda: testing.exact_predict(X, Y, np.ones(2)), ValueError, "queries", r"\(2,\)"),
    ("predict-queries-empty", lambda: testing.exact_predict(X, Y, np.ones((0, 2))), ValueError, "queries", "empty"),
    ("predict-queries-nan", lambda: testing.exact_predict(X, Y, [[NAN, 1.0]]), ValueError, "queries", "NaN"),
    ("predict-queries-bool", lambda: testing.exact_predict(X, Y, Q.astype(bool)), TypeError, "queries", "bool"),
    ("predict-y-short", lambda: testing.exact_predict(X, Y[:-1], Q), ValueError, "y", r"\(3, 2\).*\(2,\)"),
    ("predict-x-inf", lambda: testing.exact_predict(np.where(X == 1, INF, X), Y, Q), ValueError, "x", "infinite"),
    ("predict-ridge-neg", lambda: testing.exact_predict(X, Y, Q, ridge=-0.5), ValueError, "ridge", "-0.5"),
    # --- exact_hat_matrix --------------------------------------------------
    ("hat-x-1d", lambda: testing.exact_hat_matrix(Y), ValueError, "x", r"\(3,\)"),
    ("hat-x-empty", lambda: testing.exact_hat_matrix(np.ones((0, 2))), ValueError, "x", "empty"),
    ("hat-x-nan", lambda: testing.exact_hat_matrix(np.where(X == 2, NAN, X)), ValueError, "x", "NaN"),
    ("hat-x-complex", lambda: testing.exact_hat_matrix(X.astype(complex)), TypeError, "x", "complex"),
    ("hat-ridge-neg", lambda: testing.exact_hat_matrix(X, ridge=-1.0), ValueError, "ridge", "-1.0"),
    # --- exact_gram_inverse ------------------------------------------------
    ("gram-x-1d", lambda: testing.exact_gram_inverse(Y), ValueError, "x", r"\(3,\)"),
    ("gram-x-empty", lambda: testing.exact_gram_inverse(np.ones((0, 0))), ValueError, "x", "empty"),
    ("gram-x-inf", lambda: testing.exact_gram_inverse(np.where(X == 2, INF, X)), ValueError, "x", "infinite"),
    ("gram-x-str", lambda: testing.exact_gram_inverse(np.array([["a"]], object)), TypeError, "x", "object"),
    ("gram-x-bool", lambda: testing.exact_gram_inverse(np.ones((2, 1), bool)), TypeError, "x", "bool"),
    ("gram-x-deficient", lambda: testing.exact_gram_inverse([[1.0, 2.0], [2.0, 4.0]]), ValueError, "x",
     "singular"),
    # --- make_design -------------------------------------------------------
    ("design-kappa-half", lambda: testing.make_design(rng(), 8, 2, kappa=0.5), ValueError, "kappa", "0.5"),
    ("design-kappa-zero", lambda: testing.make_design(rng(), 8, 2, kappa=0.0), ValueError, "kappa", r"0\.0"),
    ("design-kappa-neg", lambda: testing.make_design(rng(), 8, 2, kappa=-10.0), ValueError, "kappa", "-10.0"),
    ("design-kappa-nan", lambda: testing.make_design(rng(), 8, 2, kappa=NAN), ValueError, "kappa", "NaN"),
    ("design-kappa-inf", lambda: testing.make_design(rng(), 8, 2, kappa=INF), ValueError, "kappa", "infinite"),
    ("design-kappa-str", lambda: testing.make_design(rng(), 8, 2, kappa="2"), TypeError, "kappa", "'2'|<U1"),
    ("design-n-zero", lambda: testing.make_design(rng(), 0, 2), ValueError, "n", "got 0"),
    ("design-d-neg", lambda: testing.make_design(rng(), 8, -1), ValueError, "d", "got -1"),
    ("design-n-float", lambda: testing.make_design(rng(), 8.0, 2), TypeError, "n", "8.0"),
    ("design-n-bool", lambda: testing.make_design(rng(), True, 2), TypeError, "n", "bool"),
    ("design-rank-zero", lambda: testing.make_design(rng(), 8, 3, rank=0), ValueError, "rank", "got 0"),
    ("design-rank-above", lambda: testing.make_design(rng(), 8, 3, rank=4), ValueError, "rank", r"\[1, 3\].*got 4"),
    ("design-rank-above-n", lambda: testing.make_design(rng(), 2, 3, rank=3), ValueError, "rank", "got 3"),
    # --- make_problem ------------------------------------------------------
    ("problem-kappa-half", lambda: testing.make_problem(rng(), 8, 2, kappa=0.5), ValueError, "kappa", "0.5"),
    ("problem-kappa-zero", lambda: testing.make_problem(rng(), 8, 2, kappa=0.0), ValueError, "kappa", r"0\.0"),
    ("problem-n-zero", lambda: testing.make_problem(rng(), 0, 2), ValueError, "n", "got 0"),
    ("problem-d-zero", lambda: testing.make_problem(rng(), 8, 0), ValueError, "d", "got 0"),
    ("problem-m-zero", lambda: testing.make_problem(rng(), 8, 2, 0), ValueError, "m", "got 0"),
    ("problem-queries-zero", lambda: testing.make_problem(rng(), 8, 2, queries=0), ValueError, "queries", "got 0"),
    ("problem-noise-neg", lambda: testing.make_problem(rng(), 8, 2, noise=-1e-3), ValueError, "noise", "-0.001"),
    ("problem-noise-nan", lambda: testing.make_problem(rng(), 8, 2, noise=NAN), ValueError, "noise", "NaN"),
    ("problem-dtype-int", lambda: testing.make_problem(rng(), 8, 2, dtype=np.int32), TypeError, "dtype", "int32"),
    ("problem-dtype-complex", lambda: testing.make_problem(rng(), 8, 2, dtype=np.complex128), TypeError, "dtype",
     "complex"),
    # --- the other generators ----------------------------------------------
    ("orthonormal-k-above-n", lambda: testing.random_orthonormal(rng(), 2, 3), ValueError, "k", r"\[1, 2\].*got 3"),
    ("orthonormal-k-zero", lambda: testing.random_orthonormal(rng(), 2, 0), ValueError, "k", "got 0"),
    ("tan-theta-y-short", lambda: testing.tan_theta(X, Y[:-1]), ValueError, "y", r"\(3, 2\).*\(2,\)"),
    ("poly-design-t-2d", lambda: testing.polynomial_design(X, 2), ValueError, "t", r"1-D.*\(3, 2\)"),
    ("poly-design-t-nan", lambda: testing.polynomial_design([1.0, NAN], 2), ValueError, "t", "NaN"),
    ("poly-design-degree-neg", lambda: testing.polynomial_design(Y, -1), ValueError, "degree", "got -1"),
    ("poly-degree-neg", lambda: testing.make_polynomial_problem(rng(), -1), ValueError, "degree", "got -1"),
    ("poly-degree-float", lambda: testing.make_polynomial_problem(rng(), 2.5), TypeError, "degree", "2.5"),
    ("poly-n-below-d", lambda: testing.make_polynomial_problem(rng(), 10, 5), ValueError, "n", r">= 11, got 5"),
    ("poly-noise-neg", lambda: testing.make_polynomial_problem(rng(), 3, noise=-1.0), ValueError, "noise", "-1.0"),
    ("poly-interval-reversed", lambda: testing.make_polynomial_problem(rng(), 3, interval=(3.0, 2.0)), ValueError,
     "interval", r"\(3\.0, 2\.0\)"),
    ("poly-interval-empty", lambda: testing.make_polynomial_problem(rng(), 3, interval=(2.0, 2.0)), ValueError,
     "interval", r"\(2\.0, 2\.0\)"),
    ("poly-interval-inf", lambda: testing.make_polynomial_problem(rng(), 3, interval=(2.0, INF)), ValueError,
     "interval", "infinite"),
    ("collinear-d-one", lambda: testing.make_collinear_problem(rng(), 16, 1), ValueError, "d", ">= 2, got 1"),
    ("collinear-n-below-d", lambda: testing.make_collinear_problem(rng(), 3, 7), ValueError, "n", ">= 7, got 3"),
    ("collinear-noise-inf", lambda: testing.make_collinear_problem(rng(), noise=INF), ValueError, "noise",
     "infinite"),
    ("exact-fit-d-zero", lambda: testing.make_exact_fit_problem(rng(), 21, 0), ValueError, "d", "got 0"),
    ("exact-fit-n-below-d", lambda: testing.make_exact_fit_problem(rng(), 3, 6), ValueError, "n", ">= 6, got 3"),
    ("noint-d-zero", lambda: testing.make_no_intercept_problem(rng(), 11, 0), ValueError, "d", "got 0"),
    ("noint-n-below-d", lambda: testing.make_no_intercept_problem(rng(), 1, 2), ValueError, "n", ">= 2, got 1"),
    ("noint-spread-neg", lambda: testing.make_no_intercept_problem(rng(), spread=-1e-4), ValueError, "spread",
     "-0.0001"),
]


@pytest.mark.parametrize(
    ("call", "exception", "arg", "detail"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refuses_bad_input_naming_the_argument(call, exception, arg, detail):
    with pytest.raises(exception, match=_names(arg)) as info:
        call()
    assert re.search(detail, str(info.value)), f"{info.value!s} does not contain {detail!r}"


# --- valid input still gives the exact answer ----------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32, np.float64])
def test_exact_lstsq_hand_solved(dtype):
    # x1 = 1, 2·x2 = 4, 0 = 5 (residual): β = (1, 2) by inspection.
    x = np.array([[1, 0], [0, 2], [0, 0]], dtype)
    y = np.array([1, 4, 5], dtype)
    beta = testing.exact_lstsq(x, y)
    assert beta.dtype == np.float64
    np.testing.assert_array_equal(beta, [1.0, 2.0])
    np.testing.assert_array_equal(testing.exact_lstsq(x, y[:, None]), [[1.0], [2.0]])


def test_exact_lstsq_ridge_and_minimum_norm():
    # [1; 1]: (XᵀX + 2)⁻¹ Xᵀy = (2 + 2)⁻¹ · 2 = 1/2.
    np.testing.assert_array_equal(testing.exact_lstsq([[1.0], [1.0]], [1.0, 1.0], ridge=2.0), [0.5])
    # Rank 1, XᵀX singular: the minimum-norm solution of b1 + b2 = 2 is (1, 1).
    np.testing.assert_array_equal(testing.exact_lstsq([[1.0, 1.0], [1.0, 1.0]], [2.0, 2.0]), [1.0, 1.0])
    # Zero ridge is allowed (its lower bound is inclusive).
    np.testing.assert_array_equal(testing.exact_lstsq(X, Y, ridge=0.0), [1.0, 2.0])


def test_exact_predict_and_hat_matrix():
    # β = (1, 2) from the hand-solved system; queries (1, 1) and (2, -1): 3 and 0.
    np.testing.assert_array_equal(testing.exact_predict(X, Y, [[1.0, 1.0], [2.0, -1.0]]), [3.0, 0.0])
    # H of the column (1, 1) is the averaging matrix; of X, the projector on the first two axes.
    np.testing.assert_array_equal(testing.exact_hat_matrix([[1.0], [1.0]]), np.full((2, 2), 0.5))
    np.testing.assert_array_equal(testing.exact_hat_matrix(X), np.diag([1.0, 1.0, 0.0]))


def test_exact_gram_inverse_keeps_integers_exact():
    # XᵀX = diag(1, 4) for X above.
    inverse = testing.exact_gram_inverse(X)
    assert inverse.tolist() == [[Fraction(1), Fraction(0)], [Fraction(0), Fraction(1, 4)]]
    # An object array of Python integers beyond float64's 2⁵³ is not rounded.
    big = 2**70 + 1
    assert testing.exact_gram_inverse(np.array([[big]], object))[0, 0] == Fraction(1, big**2)
    assert testing.exact_gram_inverse(np.array([[2**53 + 1]], np.int64))[0, 0] == Fraction(1, (2**53 + 1) ** 2)


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1e6])
def test_make_problem_reports_the_kappa_it_builds(kappa):
    p = testing.make_problem(rng(), 16, 3, 2, kappa=kappa, queries=4)
    assert p.kappa == kappa
    assert np.linalg.cond(p.x) == pytest.approx(kappa, rel=1e-8)
    assert (p.x.shape, p.y.shape, p.queries.shape) == ((16, 3), (16, 2), (4, 3))


def test_make_design_rank_at_its_bounds():
    s = np.linalg.svd(testing.make_design(rng(), 6, 3, kappa=100.0, rank=3), compute_uv=False)
    np.testing.assert_allclose(s, [1.0, 0.1, 0.01], rtol=1e-12)
    s = np.linalg.svd(testing.make_design(rng(), 6, 3, kappa=100.0, rank=1), compute_uv=False)
    np.testing.assert_allclose(s, [1.0, 0.0, 0.0], atol=1e-14)


def test_generators_accept_their_smallest_valid_sizes():
    assert testing.make_polynomial_problem(rng(), 0, 1).x.shape == (1, 1)
    assert testing.make_collinear_problem(rng(), 2, 2).x.shape == (2, 2)
    assert testing.make_exact_fit_problem(rng(), 1, 1).x.shape == (1, 1)
    assert testing.make_no_intercept_problem(rng(), 1, 1).x.shape == (1, 1)
    assert testing.random_orthonormal(rng(), 3, 3).shape == (3, 3)
