"""T4 — values-are-targets form (the blog's "regression-like attention", GC).

Claim (THEOREMS.md): With values ``Y`` instead of ``X W_V``, write
``W = W_Q W_Kᵀ``. Then ``LinAttn(X* W_Q, X W_K, Y) = X* β`` for every ``X*``
iff ``W XᵀY = Σ⁻¹ XᵀY``. So ``W = Σ⁻¹`` suffices, and is necessary only if
this must hold for every target ``Y`` (or ``XᵀY`` has rank ``d``). For a single
target (``m = 1``) the data identify ``W`` only along ``XᵀY``: any ``W + E``
with ``E XᵀY = 0`` predicts identically, in and out of sample. Verify both
directions, including the non-identifiability (a perturbed ``W`` that leaves
every prediction unchanged); it is why a trained ``W_Q W_Kᵀ`` need not converge
to ``Σ⁻¹`` and why comparisons of trained models must use effective
coefficients. In-sample, with ``W = Σ⁻¹``, the attention matrix ``X W Xᵀ / n``
equals ``H``. Properties of ``H`` to verify: symmetric, idempotent,
``trace H = rank X``, eigenvalues in {0, 1}, residual ``Y − HY`` orthogonal to
the columns of ``X``. The blog's "effective weights" ``W_Q W_Kᵀ XᵀY / n`` equal
``β`` exactly.

Verified with ``olsjax.construct_regression_attention`` (``W_Q = W_K = L``,
``W = L Lᵀ = Σ⁻¹``) for every whitening route of the registry
(``_plan.WHITENING``), on generated float64 and float32 problems, against
exact rational references
(``testing.exact_predict``/``exact_lstsq``/``exact_hat_matrix``) or closed
forms (``β = I`` for ``Y = X``; ``0`` for ``Xᵀ(Y − HY)``; ``{0, 1}`` for the
spectrum). The two directions of the "iff" and the non-identifiability are
checked in float64 on well-conditioned problems, where "unchanged" (within
``c·u·κ²``) and "changed" (``O(1)``) are many orders of magnitude apart.

Powers of ``κ``: predictions and effective weights form ``XᵀY`` and ``Σ⁻¹``
(``p = 2`` for every factor). The attention matrix ``Z Zᵀ / n`` with
``Z = X L`` and the properties that rest on ``ZᵀZ/n = I`` (idempotence, trace,
spectrum) carry T1 lemma (a)'s powers (``_plan.factor_power``): ``p = 2`` for
the Gram factors (``route.forms_gram``: ``eigh``, ``zca``, ``cholesky``),
``p = 1`` for ``qr``/``svd`` and for ``cholqr2`` (repaired below its limit).
The residual orthogonality ``Xᵀ(I − H)Y = (Σ − ΣWΣ)·nβ`` is ``p = 1`` for
every factor: a backward-stable ``W = (Σ + E)⁻¹`` gives ``Σ − ΣWΣ ≈ E ~ u‖Σ‖``.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _plan import WHITENING, factor_power
from hypothesis import given, settings
from hypothesis import strategies as st

import olsjax
from olsjax import testing

HIGHEST = jax.lax.Precision.HIGHEST
DTYPES = (np.float64, np.float32)
#: Each (shape, dtype, route) is one XLA compilation of the construction (the targets
#: are not an input to it, so m is free), and those dominate the run time: float64 runs
#: every fixed shape, float32 (same code path, its own u) two of them, d = 2 and d = 5.
SHAPES = {np.float64: testing.SHAPES, np.float32: ((8, 2), (33, 5))}


def _problems(dtype):
    # κ up to where c·u·κ² reaches 1e-3: beyond it the p = 2 bound would say nothing.
    return testing.problems(
        shapes=SHAPES[dtype], dtype=dtype, max_log_kappa=testing.max_log10_kappa(dtype, 2)
    )


def _attention_power(route: olsjax.Route) -> int:
    """``κ`` power of ``Z Zᵀ/n`` and its projector properties for ``route`` (docstring)."""
    return factor_power(route)


def _mm(a, b):
    return jnp.matmul(a, b, precision=HIGHEST)


def _exact_hat(x) -> np.ndarray:
    """Exact ``H = X(XᵀX)⁻¹Xᵀ`` rounded once: ``testing.exact_hat_matrix``, ~15x faster.

    ``H`` does not change when ``X`` is scaled, so ``A = X·2^k`` is taken as an
    integer matrix; with ``D`` the common denominator of ``(AᵀA)⁻¹`` (Gauss–Jordan
    in rationals, ``d × d`` only) and ``N = D·(AᵀA)⁻¹``, ``H = A N Aᵀ / D`` is one
    integer product and one correctly rounded ``int / int`` per entry.
    """
    entries = [Fraction(v) for v in np.asarray(x, np.float64).ravel().tolist()]
    scale = max(f.denominator for f in entries)  # a power of two: every float is dyadic
    a = np.array([int(f * scale) for f in entries], dtype=object).reshape(np.shape(x))
    inverse = testing.exact_gram_inverse(a)
    denominator = math.lcm(*(f.denominator for f in inverse.ravel()))
    numerators = np.array([[int(f * denominator) for f in row] for row in inverse], dtype=object)
    product = a @ numerators @ a.T
    return np.array([[v / denominator for v in row] for row in product], dtype=np.float64)


# --- W = Σ⁻¹ suffices --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_values_are_targets_attention_predicts_like_ols(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    k = problem.queries.shape[0]
    queries = np.concatenate([problem.queries, problem.x])  # out of sample, then in sample
    expected = testing.exact_predict(problem.x, problem.y, queries)
    q, x, y = (jnp.asarray(a) for a in (queries, problem.x, problem.y))
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        out = np.asarray(olsjax.regression_attention(params, q, x, y))
        for rows, which in ((slice(None, k), "X* β"), (slice(k, None), "H Y")):
            # p = 2 for every factor: X* W (XᵀY)/n with W = L Lᵀ = Σ⁻¹ rounds XᵀY and
            # amplifies it by ‖X*Σ⁻¹‖; tan θ: the exact answer's own sensitivity.
            testing.assert_within_bound(
                out[rows], expected[rows], kappa=problem.kappa, p=2, dtype=dtype,
                tan_theta=problem.tan_theta, what=f"LinAttn(X*W_Q, XW_K, Y) vs {which}, {factor}",
            )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_effective_weights_are_beta(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    beta = testing.exact_lstsq(problem.x, problem.y)
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        # "Exactly" in exact arithmetic; in floating point W_Q W_Kᵀ XᵀY/n = Σ⁻¹XᵀY/n is
        # the normal-equations solve: p = 2 for every factor, tan θ for β's sensitivity.
        testing.assert_within_bound(
            olsjax.effective_weights(params, x, y), beta, kappa=problem.kappa, p=2, dtype=dtype,
            tan_theta=problem.tan_theta, what=f"W_Q W_Kᵀ XᵀY/n vs β, {factor}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_in_sample_attention_matrix_is_the_hat_matrix(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    hat = _exact_hat(problem.x)  # = testing.exact_hat_matrix(problem.x), faster
    x = jnp.asarray(problem.x)
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        # Z Zᵀ/n with Z = XL: Gram factors p = 2, qr/svd/cholqr2 p = 1 (Z/√n = Q + O(u·κ)).
        testing.assert_within_bound(
            olsjax.attention_matrix(params, x, x), hat, kappa=problem.kappa,
            p=_attention_power(factor), dtype=dtype, what=f"X W Xᵀ/n vs H, {factor}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_attention_matrix_has_the_properties_of_the_hat_matrix(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    n, d = problem.x.shape
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    spectrum = np.concatenate([np.zeros(n - d), np.ones(d)])  # H: d ones, n − d zeros
    x64, y64 = problem.x.astype(np.float64), problem.y.astype(np.float64)
    norms = np.linalg.norm(x64, 2) * np.linalg.norm(y64)
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        a = olsjax.attention_matrix(params, x, x)
        p = _attention_power(factor)
        check = dict(kappa=problem.kappa, dtype=dtype)
        # Symmetric: queries and keys are the same XL, so only the order of summation
        # could differ; no κ enters at all, p = 1 is the smallest power the spec has.
        testing.assert_within_bound(a.T, a, p=1, what=f"symmetry, {factor}", **check)
        # Idempotent, trace = rank = d, spectrum {0, 1}: each measures ZᵀZ/n − I
        # (lemma (a)), so the same powers as the attention matrix itself.
        testing.assert_within_bound(_mm(a, a), a, p=p, what=f"A² = A, {factor}", **check)
        testing.assert_within_bound(
            jnp.trace(a)[None], np.array([d], np.float64), p=p, what=f"trace = d, {factor}",
            **check,
        )
        testing.assert_within_bound(
            jnp.linalg.eigvalsh(a), spectrum, p=p, what=f"eigenvalues in {{0, 1}}, {factor}",
            **check,
        )
        # Xᵀ(Y − AY), relative to ‖X‖‖Y‖: p = 1 for every factor (module docstring).
        residual = _mm(x.T, y - _mm(a, y))
        testing.assert_within_bound(
            np.asarray(residual, np.float64) / norms, np.zeros(residual.shape), p=1,
            what=f"Xᵀ(Y − AY) = 0, {factor}", **check,
        )


# --- W is identified only along XᵀY -----------------------------------------------

# m = 1, d > 1 (for d = 1, XᵀY spans R^d and W is identified), κ ≤ 100: the bound is
# c·u·κ²·(1 + tan θ) ≤ 2.2e-10·(1 + tan θ) (c = 200), far below the O(1) changes to see.
_SINGLE_TARGET = testing.problems(
    shapes=[shape for shape in testing.SHAPES if shape[1] > 1], targets=(1,), max_log_kappa=2.0
)


def _rank_one(rng: np.random.Generator, d: int, scale: float, orthogonal_to=None) -> np.ndarray:
    """A random ``a bᵀ`` with ``‖a bᵀ‖₂ = scale``; ``b ⟂ orthogonal_to`` when given."""
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    if orthogonal_to is not None:
        # b from an orthonormal basis of the complement (SVD of cᵀ): bᵀc = O(u‖b‖‖c‖)
        # always, where projecting a random b out of c cancels when b is nearly ∥ c.
        complement = np.linalg.svd(orthogonal_to[None, :])[2][1:]
        b = complement.T @ rng.standard_normal(d - 1)
    return np.outer(a, b) * (scale / (np.linalg.norm(a) * np.linalg.norm(b)))


def _with_w(params, w):
    """Values-are-targets attention with ``W_Q = w``, ``W_K = I``, so ``W_Q W_Kᵀ = w``."""
    return dataclasses.replace(params, w_q=jnp.asarray(w), w_k=jnp.eye(w.shape[0], dtype=w.dtype))


@given(problem=_SINGLE_TARGET, seed=st.integers(0, 2**32 - 1))
def test_single_target_identifies_w_only_along_xty(problem, seed):
    rng = np.random.default_rng(seed)
    k = problem.queries.shape[0]
    queries = np.concatenate([problem.queries, problem.x])
    expected = testing.exact_predict(problem.x, problem.y, queries)
    beta = testing.exact_lstsq(problem.x, problem.y)
    xty = (problem.x.T @ problem.y)[:, 0]
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    q, x, y = (jnp.asarray(a) for a in (queries, problem.x, problem.y))
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        w = np.asarray(_mm(params.w_q, params.w_k.T))  # Σ⁻¹
        norm = np.linalg.norm(w, 2)
        # E XᵀY = 0 and ‖E‖ = ‖W‖: as large as W itself, yet invisible.
        invisible = _with_w(params, w + _rank_one(rng, w.shape[0], norm, orthogonal_to=xty))
        out = np.asarray(olsjax.regression_attention(invisible, q, x, y))
        for rows, which in ((slice(None, k), "out of sample"), (slice(k, None), "in sample")):
            # p = 2 and tan θ as for W itself: E XᵀY is zero up to rounding, u‖E‖‖XᵀY‖.
            testing.assert_within_bound(
                out[rows], expected[rows], kappa=problem.kappa, p=2,
                tan_theta=problem.tan_theta, what=f"W + E predictions, {which}, {factor}",
            )
        # The identified quantity: the effective coefficients are still β (same bound).
        testing.assert_within_bound(
            olsjax.effective_weights(invisible, x, y), beta, kappa=problem.kappa, p=2,
            tan_theta=problem.tan_theta, what=f"W + E effective weights, {factor}",
        )
        # ...while W + E itself is nowhere near Σ⁻¹ (‖E‖_F ≥ ‖W‖_F/√d, d ≤ 8).
        assert testing.relative_error(invisible.w_q, w) > 0.3
        # A generic E of the same size is seen: predictions move by O(1).
        visible = _with_w(params, w + _rank_one(rng, w.shape[0], norm))
        err = testing.relative_error(olsjax.regression_attention(visible, q, x, y), expected)
        # 1e3 x bound: "changed" must be unmistakable, not a rounding effect.
        assert err > 1e3 * bound, f"{factor}: a generic E went unseen ({err:.3e} vs {bound:.3e})"


@given(problem=_SINGLE_TARGET, seed=st.integers(0, 2**32 - 1))
def test_w_is_identified_when_xty_has_rank_d(problem, seed):
    # Targets Y = X: XᵀY = nΣ has rank d and β = I exactly, so the reference X* needs
    # no arithmetic. W = Σ⁻¹ predicts it; the W + E that was invisible for the
    # problem's own y (E Xᵀy = 0) now predicts X*(I + EΣ), visibly wrong.
    rng = np.random.default_rng(seed)
    x, q = jnp.asarray(problem.x), jnp.asarray(problem.queries)
    xty = (problem.x.T @ problem.y)[:, 0]
    bound = testing.error_bound(np.float64, problem.kappa, 2)
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        # p = 2 as for any prediction; tan θ = 0 since Y = X lies in the column space.
        testing.assert_within_bound(
            olsjax.regression_attention(params, q, x, x), problem.queries, kappa=problem.kappa,
            p=2, what=f"W = Σ⁻¹ with Y = X, {factor}",
        )
        w = np.asarray(_mm(params.w_q, params.w_k.T))
        e = _rank_one(rng, w.shape[0], np.linalg.norm(w, 2), orthogonal_to=xty)
        err = testing.relative_error(
            olsjax.regression_attention(_with_w(params, w + e), q, x, x), problem.queries
        )
        # 1e3 x bound: W ≠ Σ⁻¹ must be exposed by a target with rank-d XᵀY.
        assert err > 1e3 * bound, f"{factor}: W + E passed for Y = X ({err:.3e} vs {bound:.3e})"


# --- falsification ---------------------------------------------------------------

#: Falsification checks are demonstrations, and each example runs every wrong variant
#: on every factor: a quarter of the active profile's examples (at least 5) suffices.
FALSIFY = settings(max_examples=max(5, settings().max_examples // 4))

# Well-conditioned float64 problems, where c·u·κ² ≤ 2.2e-10 (c = 200). d > 1 and
# κ ≥ 2: for d = 1, or κ = 1 (Σ = I/n), the transposed factor Lᵀ is a valid factor too.
_FALSIFIABLE = testing.problems(
    shapes=[shape for shape in testing.SHAPES if shape[1] > 1], max_log_kappa=2.0
).filter(lambda problem: problem.kappa >= 2.0)


@FALSIFY
@given(problem=_FALSIFIABLE)
def test_falsification_wrong_w_misses_by_orders_of_magnitude(problem):
    n = problem.x.shape[0]
    expected = testing.exact_predict(problem.x, problem.y, problem.queries)
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    q, x, y = (jnp.asarray(a) for a in (problem.queries, problem.x, problem.y))
    lam, v = np.linalg.eigh(problem.x.T @ problem.x / n)  # built by hand, not by olsjax
    template = olsjax.construct_regression_attention(problem.x, route="eigh")
    wrong = {"W = Σ^{-1/2} (wrong power)": _with_w(template, (v / np.sqrt(lam)) @ v.T)}
    for factor in WHITENING:
        params = olsjax.construct_regression_attention(problem.x, route=factor)
        wrong[f"W = (XᵀX)⁻¹ (missing 1/n), {factor}"] = dataclasses.replace(
            params, w_q=params.w_q / n
        )
        if not isinstance(factor, olsjax.ZCA):  # the ZCA factor is symmetric: Lᵀ = L
            wrong[f"W = LᵀL (transposed factor), {factor}"] = dataclasses.replace(
                params, w_q=params.w_q.T, w_k=params.w_k.T
            )
    for name, params in wrong.items():
        out = olsjax.regression_attention(params, q, x, y)
        err = testing.relative_error(out, expected)
        # 1e3: a wrong W must not be within reach of any reasonable c.
        assert err > 1e3 * bound, f"{name}: error {err:.3e} is within 1e3 x bound {bound:.3e}"
        with pytest.raises(AssertionError, match="exceeds bound"):
            testing.assert_within_bound(
                out, expected, kappa=problem.kappa, p=2, tan_theta=problem.tan_theta, what=name
            )
        # The projector property fails too: the in-sample matrix is no longer idempotent.
        a = olsjax.attention_matrix(params, x, x)
        idem = testing.relative_error(_mm(a, a), a)
        assert idem > 1e3 * testing.error_bound(np.float64, problem.kappa, 2), f"{name}: A² = A"
