"""T6 — rank deficiency *(olsjax)*.

Claim (THEOREMS.md): if ``rank X = r < d`` (including ``n < d``), replacing
``Λ^{-1/2}`` by the pseudo-inverse square root (zero on the null space, with a
documented tolerance) makes both forms return the minimum-norm least-squares
prediction ``X* X⁺ Y``. Without that, the construction must fail loudly, never
return garbage: every whitening route and every ``lstsq`` route raises
``ValueError`` eagerly, and under ``jax.jit`` the parameters are NaN.

olsjax spells the tolerance ``rcond``: singular values at or below
``rcond · s_max`` are treated as zero. Only the routes with the
``pseudo_inverse`` fact can do that (``eigh``, ``zca``, ``svd`` in both forms and
in ``lstsq``, and JAX's ``lstsq`` there); the others (``qr``, ``cholesky``,
``cholqr2``) refuse ``rcond`` with a ``ValueError``. The route sets below are
read off the registry ``olsjax.ROUTES``.

The cutoff. The Gram routes (``eigh``, ``zca``) see ``XᵀX``, whose exactly-zero
eigenvalues come out as ``±O(u·s_max²)``: a zero singular value is resolved
only down to about ``sqrt(c·u)·s_max`` ≈ 7e-8·s_max in float64 (2e-3 in
float32). The cutoff must sit well above that floor and well below the smallest
*nonzero* singular value. The generated designs are products of small integer
matrices (``testing.deficient_problems``), exactly rank-deficient in floating
point, with ``κ`` (largest over smallest nonzero singular value) below ~200 in
practice. ``RCOND = 1e-6`` is 10× above the float64 floor and thousands of times
below ``1/κ``; float32 uses ``RCOND32 = 1e-2``, 5× above its floor. Examples
whose smallest nonzero singular value is within 10× of the cutoff are outside
the claim and skipped by ``assume`` (float64: ``κ ≥ 1e5``, rare; float32:
``κ ≥ 10``, about 8 % of draws). olsjax itself raises any ``rcond`` to the
floor of its route (``√(d·ε)`` for the Gram routes); both cutoffs here are
above it, so the value passed is the value used.

Error bound: ``κ`` is the ratio of the extreme *nonzero* singular values and
``tan θ`` that of the problem; forward passes use ``p = 2`` (attention works
with the Gram of the whitened tokens ``X L``, and the Gram routes separate range
from null space only to ``u·κ²``); ``lstsq`` with a route that never forms
``XᵀX`` (``not route.forms_gram``: ``svd``/``lstsq``) uses ``p = 1`` with
the minimum-norm problem's condition ``2κ + κ² tan θ`` (the null-space term
of the perturbation doubles the ``κ`` of full-rank least squares; measured
errors reached 76·u at ``κ = 1.5``, just under 50·u·κ).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _plan import WHITENING, paper_ols
from hypothesis import assume, given

import olsjax
from olsjax import testing

#: Relative singular-value cutoff for float64 (see the module docstring).
RCOND = 1e-6
#: Relative singular-value cutoff for float32 (see the module docstring).
RCOND32 = 1e-2
#: Every concrete route (``"auto"`` runs one of them), from the registry.
CONCRETE = tuple(r for r in olsjax.ROUTES.values() if r.name != "auto")
#: Whitening routes / lstsq routes that can pseudo-invert (take ``rcond``).
PINV_FACTORS = tuple(r for r in WHITENING if r.pseudo_inverse)
PINV_METHODS = tuple(r for r in CONCRETE if r.pseudo_inverse)
#: Routes that refuse ``rcond``.
NO_PINV_ROUTES = tuple(r for r in CONCRETE if not r.pseudo_inverse)

#: Shapes from ``testing.DEFICIENT_SHAPES``; each (shape, m, route) compiles a
#: construction anew (~0.5 s), so each test draws from one or two of them:
#: 4×7 (``n < d``), 12×5 and 20×8 between them.
PAPER_SHAPES = ((4, 7),)
VALUES_SHAPES = ((20, 8),)
LSTSQ_SHAPES = ((4, 7),)
SHAPES32 = ((12, 5),)
#: float32 takes one Gram and one SVD factor (each compiles once, by name); every
#: pseudo-inverting factor is proved in float64.
FLOAT32_FACTORS = ("zca", "svd")
LOUD_SHAPES = ((12, 5), (4, 7))
F32_MAX_KAPPA = 10 ** testing.max_log10_kappa(np.float32, 2)


def _assume_separated(problem: testing.Problem, rcond: float) -> None:
    """The cutoff must lie well below the smallest nonzero singular value."""
    assume(1 / problem.kappa > 10 * rcond)


def _as(problem: testing.Problem, dtype) -> testing.Problem:
    """The problem in ``dtype``: the integer designs are exact in float32 too."""
    x, y, q = (np.asarray(a, dtype) for a in (problem.x, problem.y, problem.queries))
    return testing.Problem(x, y, q, problem.kappa, testing.tan_theta(x, y))


# --- both forms reproduce X* X⁺ Y ---------------------------------------------------


def _check_paper_form(problem: testing.Problem, rcond: float, factors=PINV_FACTORS) -> None:
    jx, jq = jnp.asarray(problem.x), jnp.asarray(problem.queries)
    expected = testing.exact_predict(problem.x, problem.y, problem.queries)
    for factor in factors:
        params = paper_ols(problem.x, problem.y, route=factor, rcond=rcond)
        testing.assert_within_bound(
            olsjax.forward(params, jq, jx), expected,
            kappa=problem.kappa, p=2, tan_theta=problem.tan_theta,
            what=f"paper form, factor {factor}: X* X⁺ Y",
        )


def _check_values_form(problem: testing.Problem, rcond: float, factors=PINV_FACTORS) -> None:
    jx, jy, jq = (jnp.asarray(a) for a in (problem.x, problem.y, problem.queries))
    expected = testing.exact_predict(problem.x, problem.y, problem.queries)
    for factor in factors:
        params = olsjax.construct_regression_attention(problem.x, route=factor, rcond=rcond)
        testing.assert_within_bound(
            olsjax.regression_attention(params, jq, jx, jy), expected,
            kappa=problem.kappa, p=2, tan_theta=problem.tan_theta,
            what=f"values form, factor {factor}: X* X⁺ Y",
        )


@given(problem=testing.deficient_problems(shapes=PAPER_SHAPES, targets=(2,)))
def test_paper_form_is_min_norm_float64(problem):
    _assume_separated(problem, RCOND)
    _check_paper_form(problem, RCOND)


@given(problem=testing.deficient_problems(shapes=VALUES_SHAPES, targets=(1, 2)))
def test_values_form_is_min_norm_float64(problem):
    _assume_separated(problem, RCOND)
    _check_values_form(problem, RCOND)


@given(problem=testing.deficient_problems(shapes=SHAPES32, targets=(2,)))
def test_both_forms_are_min_norm_float32(problem):
    # The float32 bound c·u·κ² is non-vacuous only up to κ ≈ 18 (testing.max_log10_kappa).
    assume(problem.kappa <= F32_MAX_KAPPA)
    _assume_separated(problem, RCOND32)
    problem = _as(problem, np.float32)
    _check_paper_form(problem, RCOND32, FLOAT32_FACTORS)
    _check_values_form(problem, RCOND32, FLOAT32_FACTORS)


@given(problem=testing.deficient_problems(shapes=LSTSQ_SHAPES, targets=(1,)))
def test_lstsq_returns_min_norm_coefficients(problem):
    _assume_separated(problem, RCOND)
    y = problem.y[:, 0]  # a vector target: β comes back as (d,)
    expected = testing.exact_lstsq(problem.x, y)
    for method in PINV_METHODS:
        beta = olsjax.lstsq(problem.x, y, route=method, rcond=RCOND)
        assert beta.shape == expected.shape
        if not method.forms_gram:
            # Minimum-norm β: Δβ = −X⁺ΔXβ + X⁺X⁺ᵀΔXᵀr + (I − X⁺X)ΔXᵀX⁺ᵀβ, whose
            # null-space term adds a second κ·ε (Wedin): the problem's condition
            # is 2κ + κ²·tanθ, i.e. the p = 1 bound with κ → 2κ, tanθ → tanθ/4.
            kappa, p, tan = 2 * problem.kappa, 1, problem.tan_theta / 4
        else:
            kappa, p, tan = problem.kappa, 2, problem.tan_theta
        testing.assert_within_bound(
            beta, expected, kappa=kappa, p=p, tan_theta=tan, what=f"lstsq method {method}: X⁺ Y",
        )


# --- without rcond: fail loudly ------------------------------------------------------

_JIT_CONSTRUCT = {
    f: jax.jit(functools.partial(olsjax.construct_ols, route=f)) for f in WHITENING
}


def _all_nan(tree) -> bool:
    return all(bool(jnp.all(jnp.isnan(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


@given(problem=testing.deficient_problems(shapes=LOUD_SHAPES, targets=(2,)))
def test_every_route_fails_loudly_without_rcond(problem):
    """Eagerly a ``ValueError`` from every route, in both forms and in
    ``lstsq``; ``construct_ols`` under ``jax.jit``: NaN everywhere (or the eager
    shape error for ``n < d``), never a finite answer. (``lstsq`` poisons its
    output the same way; its jit case is in ``tests/test_inputs.py``, left there
    to keep compilations down.)"""
    x, y = problem.x, problem.y
    jx, jy = jnp.asarray(x), jnp.asarray(y)
    for factor in WHITENING:
        with pytest.raises(ValueError, match="rank-deficient|not unique"):
            paper_ols(x, y, route=factor)
        with pytest.raises(ValueError, match="rank-deficient|not unique"):
            olsjax.construct_regression_attention(x, route=factor)
        if x.shape[0] < x.shape[1]:
            with pytest.raises(ValueError, match="not unique"):
                _JIT_CONSTRUCT[factor](jx, jy)
        else:
            assert _all_nan(_JIT_CONSTRUCT[factor](jx, jy)), factor
    for method in CONCRETE:
        with pytest.raises(ValueError, match="rank-deficient|not unique"):
            olsjax.lstsq(x, y, route=method)


@pytest.mark.parametrize("route", NO_PINV_ROUTES, ids=str)
def test_routes_without_pseudo_inverse_refuse_rcond(route):
    x = np.arange(12.0).reshape(4, 3)  # rank 2; refused before any computation
    y = np.ones((4, 1))
    if route.whitens:
        with pytest.raises(ValueError, match="rcond"):
            paper_ols(x, y, route=route, rcond=RCOND)
        with pytest.raises(ValueError, match="rcond"):
            olsjax.construct_regression_attention(x, route=route, rcond=RCOND)
    with pytest.raises(ValueError, match="rcond"):
        olsjax.lstsq(x, y, route=route, rcond=RCOND)


def _integer_design(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``deficient_problems``' recipe, 12×5 of rank 4, two targets (the shapes of
    ``test_every_route_fails_loudly_without_rcond``, so nothing compiles anew)."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(-3, 4, (12, 4)) @ rng.integers(-3, 4, (4, 5))).astype(np.float64)
    assert np.linalg.matrix_rank(x) == 4
    return x, rng.standard_normal((12, 2))


# Regression examples for a bug fixed in 4a1900f: qr and cholesky read the rank
# off |diag R| of an unpivoted factor (which does not reveal rank), and a Cholesky
# breakdown gave NaN that `min <= tol·max` never flagged. Before the fix, seed
# 1005 gave finite parameters from qr and cholesky in both forms and a finite β
# from lstsq qr; seed 1001 gave NaN parameters from cholesky without a
# ValueError and a finite β from lstsq qr and cholesky.
@pytest.mark.parametrize("seed", [1001, 1005])
@pytest.mark.parametrize("route", ["qr", "cholesky"])
def test_rank_deficiency_detected_on_designs_that_once_slipped_through(seed, route):
    x, y = _integer_design(seed)
    with pytest.raises(ValueError, match="rank-deficient"):
        paper_ols(x, y, route=route)
    with pytest.raises(ValueError, match="rank-deficient"):
        olsjax.construct_regression_attention(x, route=route)
    with pytest.raises(ValueError, match="rank-deficient"):
        olsjax.lstsq(x, y, route=route)


# --- falsification -------------------------------------------------------------------


# Under jax.jit the checked entry cannot raise: a hand-made factor with infinite
# entries (an exactly zero eigenvalue inverted) gives a NaN prediction, which the
# falsification counts as a miss, instead of forward's eager ValueError.
_forward = jax.jit(olsjax.forward)


def _forward_with_factor(params, l: np.ndarray, x, y, queries) -> np.ndarray:
    """The paper form with whitening factor ``l`` put in by hand: W_Q=W_K=W_V=L, W_P=LᵀXᵀY/n."""
    head = l.T @ (x.T @ y) / x.shape[0]
    jl = jnp.asarray(l)
    wrong = dataclasses.replace(params, w_q=jl, w_k=jl, w_v=jl, w_p=jnp.asarray(head))
    return np.asarray(_forward(wrong, jnp.asarray(queries), jnp.asarray(x)))


@given(problem=testing.deficient_problems(shapes=PAPER_SHAPES, targets=(2,)))
def test_falsification_plain_inverse_or_wrong_cutoff_is_wildly_wrong(problem):
    """Inverting the Gram's noise eigenvalues, or cutting off a genuine singular
    value, misses ``X* X⁺ Y`` by far more than 1e3× the bound."""
    _assume_separated(problem, RCOND)
    x, y, q = problem.x, problem.y, problem.queries
    n = x.shape[0]
    expected = testing.exact_predict(x, y, q)
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    params = paper_ols(x, y, route="eigh", rcond=RCOND)
    testing.assert_within_bound(
        olsjax.forward(params, jnp.asarray(q), jnp.asarray(x)), expected,
        kappa=problem.kappa, p=2, tan_theta=problem.tan_theta, what="pseudo-inverse, eigh",
    )
    lam, v = np.linalg.eigh(x.T @ x / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Plain inverse square root: the (rounded) zero eigenvalues are inverted too
        # (an exactly zero one gives inf, hence NaN: also a miss).
        plain = v / np.sqrt(np.abs(lam))
        error = testing.relative_error(_forward_with_factor(params, plain, x, y, q), expected)
    assert not error <= 1e3 * bound, f"plain inverse: error {error:.3e}, bound {bound:.3e}"
    # Wrong cutoff: also drop the smallest nonzero singular value.
    s = np.sqrt(np.clip(lam, 0, None))
    nonzero = s > RCOND * s.max()
    assume(nonzero.sum() >= 2)
    keep = nonzero & (s > 1.5 * s[nonzero].min())
    dropped = v * np.where(keep, 1 / np.where(keep, s, 1), 0)
    error = testing.relative_error(_forward_with_factor(params, dropped, x, y, q), expected)
    assert error > 1e3 * bound, f"cutoff too large: error {error:.3e}, bound {bound:.3e}"
