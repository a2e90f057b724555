"""``olsjax.testing``'s hard problems (NIST StRD-style) and the log relative error ``lre``.

Expected values are literals or computed here with numpy and integer
arithmetic; the exact references come from ``exact_lstsq``/``exact_predict``
(rational arithmetic), never from the generators under test.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings

from olsjax import testing

#: Seeds each generator's documented κ range is checked on.
SEEDS = range(10)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def svd_kappa(x: np.ndarray) -> float:
    s = np.linalg.svd(x, compute_uv=False)
    return float(s[0] / s[-1])


def suite() -> dict[str, testing.HardCase]:
    return {case.name: case for case in testing.hard_suite()}


# --- lre ---------------------------------------------------------------------


def test_lre_cap_is_float64_digits():
    # 53 bits × log10(2), written out independently of the module's expression.
    assert testing.LRE_CAP == pytest.approx(15.954589770191003, rel=1e-15)


def test_lre_exact_match_is_cap():
    exact = np.array([1.5, -2.0, 3e-300, 0.0])
    assert testing.lre(exact.copy(), exact) == testing.LRE_CAP


def test_lre_one_digit():
    # 1.1 − 1.0 = 0.1 up to one rounding of 1.1 (relative 1e-16): −log10 is 1 to ~1e-15.
    assert testing.lre(np.array([1.1]), np.array([1.0])) == pytest.approx(1.0, abs=1e-12)


def test_lre_zero_exact_entry_uses_absolute_error():
    # |1e-5 − 0| = 1e-5 exactly as a float: 5 digits; a relative error would be infinite.
    assert testing.lre(np.array([1e-5]), np.array([0.0])) == pytest.approx(5.0, abs=1e-12)


def test_lre_clips_to_cap_and_zero():
    assert testing.lre(np.array([1e-20]), np.array([0.0])) == testing.LRE_CAP
    assert testing.lre(np.array([10.0]), np.array([1.0])) == 0.0  # 900% error: no digits
    assert testing.lre(np.array([-1.0]), np.array([1.0])) == 0.0  # wrong sign


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_lre_non_finite_estimate_is_zero(bad):
    # Against 0, not a finite stand-in: replacing NaN by 0 would score LRE_CAP here.
    assert testing.lre(np.array([1.0, bad]), np.array([1.0, 0.0])) == 0.0


def test_lre_is_minimum_over_entries():
    # Relative errors 1e-3 and 1e-7 (to ~1e-13 after rounding): the worse entry decides.
    est = np.array([[1.0 + 1e-3], [2.0 + 2e-7]])
    assert testing.lre(est, np.array([[1.0], [2.0]])) == pytest.approx(3.0, abs=1e-9)
    assert testing.lre(est[::-1], np.array([[2.0], [1.0]])) == pytest.approx(3.0, abs=1e-9)


def test_lre_rejects_shape_mismatch_and_non_finite_reference():
    with pytest.raises(ValueError, match="shapes differ"):
        testing.lre(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="not finite"):
        testing.lre(np.zeros(2), np.array([0.0, np.nan]))


# --- generators ----------------------------------------------------------------


def test_polynomial_design_is_vandermonde():
    expected = np.array([[1.0, 2.0, 4.0, 8.0], [1.0, 3.0, 9.0, 27.0]])
    np.testing.assert_array_equal(testing.polynomial_design([2.0, 3.0], 3), expected)


def check_layout(p: testing.Problem, n: int, d: int) -> None:
    """Shapes, queries ``I``, finiteness and the recorded raw κ of a hard problem."""
    assert p.x.shape == (n, d) and p.y.shape == (n, 1)
    assert p.x.dtype == p.y.dtype == np.float64
    np.testing.assert_array_equal(p.queries, np.eye(d))
    assert np.all(np.isfinite(p.x)) and np.all(np.isfinite(p.y))
    # κ is documented as np.linalg.cond(x), itself s_max/s_min from the same LAPACK SVD.
    assert p.kappa == pytest.approx(svd_kappa(p.x), rel=1e-12)


@pytest.mark.parametrize(
    ("degree", "low", "high"),
    # Documented: ~2e7, ~7e11 and 10^14.8–10^15.3 over 1000 seeds; the task's range at degree 10.
    [(5, 1e6, 1e8), (8, 1e11, 1e13), (10, 1e14, 1e16)],
)
def test_polynomial_problem(degree, low, high):
    for seed in SEEDS:
        p = testing.make_polynomial_problem(rng(seed), degree)
        check_layout(p, 24, degree + 1)
        assert low <= p.kappa <= high, (seed, p.kappa)
        t = p.x[:, 1]
        assert 2.0 <= t.min() and t.max() <= 3.3  # the default interval, away from 0
        np.testing.assert_array_equal(p.x[:, 0], 1.0)
        # Relative noise 1e-6: not an exact fit, but a close one (factor 10 either way).
        assert 1e-7 < p.tan_theta < 1e-5


def test_polynomial_problem_is_deterministic():
    a, b = (testing.make_polynomial_problem(rng(7), 8) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)


@pytest.mark.parametrize("d", [4, 7])
def test_collinear_problem(d):
    for seed in SEEDS:
        p = testing.make_collinear_problem(rng(seed), d=d)
        check_layout(p, 16, d)
        assert 1e7 <= p.kappa <= 1e11, (seed, p.kappa)  # documented: 10^7.7–10^10.5
        np.testing.assert_array_equal(p.x[:, 0], 1.0)
        np.testing.assert_array_equal(p.x[:, 1], 1947.0 + np.arange(16))


@pytest.mark.parametrize(("d", "low", "high"), [(4, 1e4, 1e7), (6, 1e7, 1e11)])
def test_exact_fit_problem_recovers_integer_beta(d, low, high):
    # Documented κ: 10^4.6–10^6.2 at d = 4, 10^7.7–10^10.4 at d = 6.
    for seed in SEEDS[:3]:  # each exact solve takes milliseconds
        p = testing.make_exact_fit_problem(rng(seed), d=d)
        check_layout(p, 21, d)
        assert low <= p.kappa <= high, (seed, p.kappa)
        assert p.tan_theta == 0.0
        xi, yi = p.x.astype(np.int64), p.y.astype(np.int64)
        np.testing.assert_array_equal(xi, p.x)  # integer data ...
        np.testing.assert_array_equal(yi, p.y)
        assert np.abs(p.y).max() < 2**53  # ... exactly representable
        assert np.linalg.matrix_rank(p.x) == d  # full rank: the solution is unique
        beta = testing.exact_lstsq(p.x, p.y)
        bi = beta.astype(np.int64)
        np.testing.assert_array_equal(bi, beta)  # an integer vector ...
        np.testing.assert_array_equal(xi @ bi, yi)  # ... fitting y exactly, in integer arithmetic


def test_exact_fit_problem_refuses_inexact_sizes():
    with pytest.raises(ValueError, match="not exact"):
        testing.make_exact_fit_problem(rng(0), n=21, d=12)  # 9·12·41¹¹ > 2⁵³


def test_no_intercept_problem():
    x1 = 60.0 + np.arange(11)  # NoInt1's abscissae
    one = testing.make_no_intercept_problem(rng(0), d=1)
    check_layout(one, 11, 1)
    np.testing.assert_array_equal(one.x[:, 0], x1)
    assert one.kappa == pytest.approx(1.0, abs=1e-15)  # one column: κ = 1 up to a rounding
    # A line with intercept 70 fitted through the origin leaves a residual of several percent.
    assert one.tan_theta > 1e-2
    for seed in SEEDS:
        p = testing.make_no_intercept_problem(rng(seed), d=2)
        check_layout(p, 11, 2)
        np.testing.assert_array_equal(p.x[:, 0], x1)
        assert not np.any(np.all(p.x == p.x[0], axis=0))  # no constant (intercept) column
        assert 1e4 <= p.kappa <= 1e5, (seed, p.kappa)  # documented: 10^4.1–10^4.9


# --- the fixed suite -----------------------------------------------------------


def test_suite_names_kinds_and_reproducibility():
    cases = testing.hard_suite()
    names = [c.name for c in cases]
    assert names == ["poly5", "poly8", "poly10", "collinear", "exact-int", "noint", "noint-collinear"]
    assert {c.kind for c in cases} == set(testing.HARD_KINDS)
    for a, b in zip(cases, testing.hard_suite()):
        np.testing.assert_array_equal(a.problem.x, b.problem.x)
        np.testing.assert_array_equal(a.problem.y, b.problem.y)
        assert a.problem.x is not b.problem.x  # built on each call, not cached


def test_suite_poly10_has_kappa_1e15():
    p = suite()["poly10"].problem
    assert 1e14 <= p.kappa <= 1e16
    assert 1e14 <= svd_kappa(p.x) <= 1e16


def test_suite_exact_references_are_fast_and_queries_give_beta():
    for case in testing.hard_suite():
        p = case.problem
        start = time.perf_counter()
        beta = testing.exact_lstsq(p.x, p.y)
        elapsed = time.perf_counter() - start
        # Measured ≤ 35 ms (poly10); 1 s leaves a 30× margin for a loaded machine.
        assert elapsed < 1.0, (case.name, elapsed)
        assert np.all(np.isfinite(beta))
        # Predictions at queries I are the coefficients themselves, exactly.
        np.testing.assert_array_equal(testing.exact_predict(p.x, p.y, p.queries), beta)


def test_suite_poly10_defeats_numpy_lstsq():
    p = suite()["poly10"].problem
    exact = testing.exact_lstsq(p.x, p.y)
    estimate = np.linalg.lstsq(p.x, p.y, rcond=None)[0]
    # u·κ ≈ 0.1 alone leaves at most ~1 digit; measured LRE 0. Fewer than 4 means hard.
    assert testing.lre(estimate, exact) < 4


def test_suite_easy_case_is_solved_by_numpy():
    # Contrast (so the LRE measure discriminates): κ = 1 leaves numpy all but a few ulps.
    p = suite()["noint"].problem
    estimate = np.linalg.lstsq(p.x, p.y, rcond=None)[0]
    assert testing.lre(estimate, testing.exact_lstsq(p.x, p.y)) > 14


# --- Hypothesis strategy ---------------------------------------------------------


@settings(max_examples=12)  # each example is cheap numpy; a dozen covers all four kinds often
@given(testing.hard_problems())
def test_hard_problems_strategy(p):
    n, d = p.x.shape
    assert p.y.shape == (n, 1) and n >= d
    np.testing.assert_array_equal(p.queries, np.eye(d))
    assert np.all(np.isfinite(p.x)) and np.all(np.isfinite(p.y))
    assert math.isfinite(p.kappa) and p.kappa >= 1.0 - 1e-12  # κ ≥ 1, up to rounding
    assert math.isfinite(p.tan_theta) and p.tan_theta >= 0.0


@settings(max_examples=5)  # only two degrees to hit
@given(testing.hard_problems(kinds=("polynomial",), max_degree=5))
def test_hard_problems_respects_max_degree(p):
    assert p.x.shape[1] in (4, 6)  # degrees 3 and 5


@settings(max_examples=5)  # the zero is set, not measured: a few draws suffice
@given(testing.hard_problems(kinds=("exact-fit",)))
def test_hard_problems_exact_fit_kind(p):
    assert p.tan_theta == 0.0


def test_hard_problems_rejects_unknown_kind():
    @settings(max_examples=1)  # the first draw raises
    @given(testing.hard_problems(kinds=("bogus",)))
    def draw(p):
        pass

    with pytest.raises(ValueError, match="unknown kind"):
        draw()


def test_exact_gram_inverse_is_exact_for_floats_and_integers():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 4))
    ints = rng.integers(-5, 6, (9, 4)).astype(object)
    for a in (x, ints):
        inverse = testing.exact_gram_inverse(a)
        exact = np.vectorize(Fraction, otypes=[object])(np.asarray(a, dtype=object))
        # (XᵀX)⁻¹ XᵀX = I with no rounding at all: every entry is a Fraction.
        assert (inverse @ (exact.T @ exact) == np.eye(4, dtype=int)).all()
