"""T5 — ridge regression.

Claim (THEOREMS.md): replace ``Σ`` by ``Σ + (λ/n) I``. Values-are-targets
form: the output is the ridge prediction ``X* (XᵀX + λI)⁻¹ XᵀY``; the in-sample
attention matrix is the ridge smoother ``H_λ`` with
``trace H_λ = Σ_i λ_i / (λ_i + λ)`` (``λ_i`` the eigenvalues of ``XᵀX``), the
effective degrees of freedom. Paper form: with ``W_V = L_λ`` the identity of
T1(c) no longer holds; the head ``W_P`` that restores exact equality is
``W_P = M⁻¹ L_λᵀ XᵀY / n`` with ``M = L_λᵀ Σ L_λ = I − (λ/n) L_λᵀ L_λ``
(``olsjax._construct.ridge_head``): then
``f = X* L_λ M M⁻¹ L_λᵀ XᵀY / n = X* β_λ``.

How λ is varied. The tests keep ``λ = RIDGE`` fixed (one exactly
representable value; ``ridge`` is traced since olsjax 0.2, so another value
would not compile anew) and scale the design by an exact power of two,
``X ↦ 2ᵏ X`` (no rounding: the data stay the same floats up to the exponent).
Generated designs have singular values in ``[1/κ, 1]``, so the ratio
``λ / s_max²`` runs over ``RIDGE · 4^{-k}`` ≈ 5e-4 … 32 for ``k ∈ [-4, 4]``:
from almost OLS to heavy shrinkage. ``(2ᵏX, λ)`` is the problem
``(X, λ/4ᵏ)`` with ``β`` rescaled, so this covers the range of ridge
strengths without rounding λ.

Error bounds (THEOREMS.md, "What verified means"):

- Forward passes use ``p = 2``: attention multiplies whitened tokens,
  ``(X* L)(X L)ᵀ``, i.e. it works with the Gram of ``X L``; rounding in ``X L``
  is relative to ``‖X‖‖L‖``, so errors grow like ``u·κ²`` for every factor.
- The values form and ``H_λ`` are bounded with ``κ(X)`` itself (ridge never
  conditions the problem worse than OLS on the same ``X``). The tighter
  ``κ_λ = sqrt((s_max² + λ)/(s_min² + λ))`` of the augmented design
  ``[X; √λ I]`` is *not* used there: with it, the ``svd`` factor exceeds
  ``c = 50`` (measured up to ≈110·u·κ_λ²(1 + tan θ_λ)): LAPACK's SVD has a
  backward error ``‖X v_i − s_i u_i‖`` of up to ~85·u·s_max on these shapes,
  and when ridge flattens ``L`` on the small directions nothing absorbs it.
- The paper form's corrected head stores ``M⁻¹ P = L_λ⁻¹ β_OLS``: the
  *unregularised* coefficients in whitened coordinates, which attention then
  shrinks again through ``M``. Rounding relative to ``‖β_OLS‖`` thus shows in
  a prediction of size ``‖β_λ‖``. Its bound adds the term
  ``κ_λ² · ρ · (1 + tan θ_λ)`` with ``ρ = ‖β_OLS‖ / ‖β_λ‖`` and ``tan θ_λ`` of
  the augmented least-squares problem ``[X; √λ I] β ≈ [Y; 0]``. ``ρ`` is up
  to ``1 + λ/s_min²``, beyond ``κ²`` once ``λ > s_max²``: without this term
  the error reached 77·u·κ(X)²(1 + tan θ) at ``κ ≈ 2``, ``λ = 10·s_max²``.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from _plan import WHITENING, paper_ols
from hypothesis import given
from hypothesis import strategies as st

import olsjax
from olsjax import testing

#: Fixed ridge λ (exactly representable in float32 and float64, and ≠ 1 so
#: that λ, λ² and √λ differ).
RIDGE = 0.125
#: Exponents k of the exact design scaling 2ᵏ: λ/s_max² = RIDGE·4^{-k}.
SCALE_EXPONENTS = st.integers(-4, 4)
#: Ridge strong enough to matter: λ/s_max² ≥ RIDGE (k ≤ 0).
STRONG_RIDGE_EXPONENTS = st.integers(-4, 0)

#: Shapes, all from ``testing.SHAPES``. Every (shape, m, route, dtype) compiles
#: a construction anew (~0.5 s), so each test draws from one or two shapes and the
#: tests between them cover d = 1, 2, 3, 5. The exact smoother costs O(n²d)
#: rational products, so it is checked on the smaller shapes.
VALUES_SHAPES64 = ((8, 2), (33, 5))
SMOOTHER_SHAPES64 = ((8, 2),)
SHAPES32 = ((16, 3),)
PAPER_SHAPES64 = ((33, 5),)
PAPER_SHAPES32 = ((12, 1),)

#: float32 runs two routes per form (by name), one that forms XᵀX and one that
#: does not, each compiled once; every whitening route is proved in float64, and
#: T6/T7 take other routes in float32.
FLOAT32_VALUES_FACTORS = ("zca", "qr")
FLOAT32_PAPER_FACTORS = ("eigh", "svd")

F64_KAPPA = testing.max_log10_kappa(np.float64, 2)
F32_KAPPA = testing.max_log10_kappa(np.float32, 2)


def _scaled(problem: testing.Problem, k: int) -> np.ndarray:
    """The design ``2ᵏ X`` in the problem's dtype (exact: only the exponent changes)."""
    return problem.x * problem.x.dtype.type(2.0**k)


def _augmented_problem(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge as plain least squares: ``[X; √λ I] β ≈ [Y; 0]`` (float64)."""
    d, m = x.shape[1], y.shape[1]
    a = np.vstack([x.astype(np.float64), math.sqrt(RIDGE) * np.eye(d)])
    b = np.vstack([y.astype(np.float64), np.zeros((d, m))])
    return a, b


def _paper_form_bound_terms(problem: testing.Problem, x: np.ndarray) -> tuple[float, float]:
    """``(κ_eff, tanθ_eff)`` with ``κ_eff²(1 + tanθ_eff) = κ²(1 + tanθ) + κ_λ²ρ(1 + tanθ_λ)``.

    ``assert_within_bound`` takes one ``(κ, tanθ)`` pair; the paper form's bound
    is the sum of THEOREMS.md's term for ``X`` and the corrected head's term
    (module docstring), so both are folded into one pair exactly.
    """
    a, b = _augmented_problem(x, problem.y)
    kappa_ridge = float(np.linalg.cond(a))
    tan_ridge = testing.tan_theta(a, b)
    beta_ols = np.linalg.lstsq(x.astype(np.float64), problem.y.astype(np.float64), rcond=None)[0]
    beta_ridge = np.linalg.lstsq(a, b, rcond=None)[0]
    rho = float(np.linalg.norm(beta_ols) / np.linalg.norm(beta_ridge))
    k2 = problem.kappa**2 + kappa_ridge**2 * rho
    tan = (problem.kappa**2 * problem.tan_theta + kappa_ridge**2 * rho * tan_ridge) / k2
    return math.sqrt(k2), tan


def _effective_dof(x: np.ndarray) -> float:
    """``Σ λ_i/(λ_i + λ)`` with ``λ_i = s_i²`` from numpy's SVD (independent of olsjax)."""
    s2 = np.linalg.svd(x.astype(np.float64), compute_uv=False) ** 2
    return float(np.sum(s2 / (s2 + RIDGE)))


# --- values-are-targets form -------------------------------------------------------


def _check_values_form(problem: testing.Problem, k: int, factors=WHITENING) -> None:
    x = _scaled(problem, k)
    jx, jy, jq = jnp.asarray(x), jnp.asarray(problem.y), jnp.asarray(problem.queries)
    expected = testing.exact_predict(x, problem.y, problem.queries, ridge=RIDGE)
    for factor in factors:
        params = olsjax.construct_regression_attention(x, route=factor, ridge=RIDGE)
        testing.assert_within_bound(
            olsjax.regression_attention(params, jq, jx, jy), expected,
            kappa=problem.kappa, p=2, tan_theta=problem.tan_theta,
            what=f"values form, factor {factor}: X*(XᵀX+λI)⁻¹XᵀY",
        )


def _check_smoother(problem: testing.Problem, k: int, factors=WHITENING) -> None:
    x = _scaled(problem, k)
    jx = jnp.asarray(x)
    n = x.shape[0]
    smoother = testing.exact_hat_matrix(x, ridge=RIDGE)
    dof = _effective_dof(x)
    # The exact smoother's trace is the effective degrees of freedom (checks the
    # formula itself; the float64 SVD's error is far below c·u·κ²).
    testing.assert_within_bound(
        np.trace(smoother), dof, kappa=problem.kappa, p=2, dtype=np.float64,
        what="trace of exact H_λ vs Σ s_i²/(s_i²+λ)",
    )
    for factor in factors:
        params = olsjax.construct_regression_attention(x, route=factor, ridge=RIDGE)
        attention = olsjax.attention_matrix(params, jx, jx)
        assert attention.shape == (n, n)
        testing.assert_within_bound(
            attention, smoother, kappa=problem.kappa, p=2,
            what=f"in-sample attention matrix, factor {factor}: H_λ",
        )
        testing.assert_within_bound(
            jnp.trace(attention), dof, kappa=problem.kappa, p=2,
            what=f"trace of the attention matrix, factor {factor}: effective dof",
        )


@given(
    problem=testing.problems(shapes=VALUES_SHAPES64, targets=(1, 2), max_log_kappa=F64_KAPPA),
    k=SCALE_EXPONENTS,
)
def test_values_form_is_ridge_float64(problem, k):
    _check_values_form(problem, k)


@given(
    problem=testing.problems(shapes=SMOOTHER_SHAPES64, targets=(1,), max_log_kappa=F64_KAPPA),
    k=SCALE_EXPONENTS,
)
def test_attention_matrix_is_ridge_smoother_float64(problem, k):
    _check_smoother(problem, k)


@given(
    problem=testing.problems(
        shapes=SHAPES32, targets=(1, 2), max_log_kappa=F32_KAPPA, dtype=np.float32
    ),
    k=SCALE_EXPONENTS,
)
def test_values_form_and_smoother_float32(problem, k):
    _check_values_form(problem, k, FLOAT32_VALUES_FACTORS)
    _check_smoother(problem, k, FLOAT32_VALUES_FACTORS)


# --- paper form: the corrected head ------------------------------------------------

def _check_paper_form(problem: testing.Problem, k: int, factors=WHITENING) -> None:
    x = _scaled(problem, k)
    jx, jq = jnp.asarray(x), jnp.asarray(problem.queries)
    expected = testing.exact_predict(x, problem.y, problem.queries, ridge=RIDGE)
    kappa, tan = _paper_form_bound_terms(problem, x)
    for factor in factors:
        params = paper_ols(x, problem.y, route=factor, ridge=RIDGE)
        testing.assert_within_bound(
            olsjax.forward(params, jq, jx), expected, kappa=kappa, p=2, tan_theta=tan,
            what=f"paper form with corrected head, factor {factor}: X* β_λ",
        )


@given(
    problem=testing.problems(shapes=PAPER_SHAPES64, targets=(2,), max_log_kappa=F64_KAPPA),
    k=SCALE_EXPONENTS,
)
def test_paper_form_corrected_head_is_ridge_float64(problem, k):
    _check_paper_form(problem, k)


@given(
    problem=testing.problems(
        shapes=PAPER_SHAPES32, targets=(2,), max_log_kappa=F32_KAPPA, dtype=np.float32
    ),
    k=SCALE_EXPONENTS,
)
def test_paper_form_corrected_head_is_ridge_float32(problem, k):
    _check_paper_form(problem, k, FLOAT32_PAPER_FACTORS)


@given(
    problem=testing.problems(shapes=PAPER_SHAPES64, targets=(2,), max_log_kappa=1.0),
    k=STRONG_RIDGE_EXPONENTS,
)
def test_t1c_identity_fails_with_ridge_and_head_restores_equality(problem, k):
    """``Z Zᵀ Z / n = Z M ≠ Z`` for ``Z = X L_λ``, by far more than the bound; with
    the corrected head the in-sample forward pass is still exactly ``H_λ Y``."""
    x = _scaled(problem, k)
    n = x.shape[0]
    s = np.linalg.svd(x, compute_uv=False)
    # Z(ZᵀZ/n) − Z = −(λ/n) Z L_λᵀL_λ scales the i-th singular direction of Z by
    # λ/(s_i² + λ), so the relative defect lies between these two numbers.
    low, high = RIDGE / (s[0] ** 2 + RIDGE), RIDGE / (s[-1] ** 2 + RIDGE)
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    in_sample = testing.exact_predict(x, problem.y, x, ridge=RIDGE)
    kappa, tan = _paper_form_bound_terms(problem, x)
    for factor in WHITENING:
        params = paper_ols(x, problem.y, route=factor, ridge=RIDGE)
        z = x @ np.asarray(params.w_v)
        defect = testing.relative_error(z @ (z.T @ z) / n, z)
        # 1e-6: rounding slack on an O(1) quantity for κ ≤ 10 (errors ~1e-14).
        assert low * (1 - 1e-6) <= defect <= high * (1 + 1e-6), (factor, low, defect, high)
        # Falsification standard: a broken identity misses by more than 1e3× the bound.
        assert defect > 1e3 * bound, f"{factor}: T1(c) defect {defect:.3e} ≤ 1e3×{bound:.3e}"
        testing.assert_within_bound(
            olsjax.forward(params, jnp.asarray(x), jnp.asarray(x)), in_sample,
            kappa=kappa, p=2, tan_theta=tan,
            what=f"in-sample paper form, factor {factor}: H_λ Y",
        )


# --- falsification -----------------------------------------------------------------


@given(
    problem=testing.problems(shapes=PAPER_SHAPES64, targets=(2,), max_log_kappa=1.0),
    k=STRONG_RIDGE_EXPONENTS,
)
def test_falsification_uncorrected_head_misses_ridge(problem, k):
    """The T1 head ``W_P = L_λᵀ XᵀY / n`` (no ``M⁻¹``) misses ``X* β_λ`` by orders of magnitude."""
    x = _scaled(problem, k)
    jx, jq = jnp.asarray(x), jnp.asarray(problem.queries)
    n = x.shape[0]
    expected = testing.exact_predict(x, problem.y, problem.queries, ridge=RIDGE)
    kappa, tan = _paper_form_bound_terms(problem, x)
    bound = testing.error_bound(np.float64, kappa, 2, tan_theta=tan)
    for factor in WHITENING:
        params = paper_ols(x, problem.y, route=factor, ridge=RIDGE)
        # T1's head P = L_λᵀXᵀY/n built from the ridge factor L_λ = W_V, without M⁻¹.
        head = np.asarray(params.w_v).T @ (x.T @ problem.y) / n
        uncorrected = dataclasses.replace(params, w_p=jnp.asarray(head))
        # The correct construction passes; the uncorrected head must miss by > 1e3× the bound.
        testing.assert_within_bound(
            olsjax.forward(params, jq, jx), expected, kappa=kappa, p=2, tan_theta=tan,
            what=f"corrected head, factor {factor}",
        )
        error = testing.relative_error(olsjax.forward(uncorrected, jq, jx), expected)
        assert error > 1e3 * bound, (
            f"{factor}: uncorrected head error {error:.3e} is within 1e3× bound {bound:.3e}"
        )
