"""T3 — the construction is unique only up to rotation *(olsjax)*.

Claim (THEOREMS.md): Any ``L`` with ``L Lᵀ = Σ⁻¹`` gives the same forward
pass, with ``P = Lᵀ XᵀY / n``. Equivalently ``L ↦ L O`` for any orthogonal
``O``. Valid factors include: eigendecomposition of ``Σ`` (the paper's, "PCA
whitening"), ZCA whitening ``V Λ^{-1/2} Vᵀ`` (the blog's), the inverse
Cholesky factor ``R⁻¹`` with ``Σ = RᵀR``, the inverse R-factor of
``X/√n = QR``, and ``V S⁻¹ √n`` from the SVD ``X = U S Vᵀ``. All must agree to
rounding. What the forward pass determines is only the product
``W_Q W_Kᵀ Σ W_V W_FFN W_P = β``; inside the paper's family
(``W_Q = W_K = W_V = L``) that means ``L Lᵀ = Σ⁻¹`` and ``L P = β``.

Verified on generated float64 and float32 problems: the whitening routes of
the registry (``_plan.WHITENING``) agree with the exact prediction
(``testing.exact_predict``) and with each other; ``L ↦ L O`` for a
Haar-random orthogonal ``O`` with ``P = (L O)ᵀ XᵀY / n`` leaves the forward
pass unchanged; and the weight product equals the exact ``β`` for every
factor, rotated or not. (``L Lᵀ = Σ⁻¹`` and ``L P = β`` for every factor are
T1's lemmas (b) and (d).) The
falsification checks show that a non-orthogonal ``O``, a rotation on the wrong
side, or a head ``P`` not rotated with ``L`` breaks the forward pass.

Every forward pass and every product containing ``Σ`` uses ``p = 2``: attention
(or the explicit ``Σ``) forms a Gram matrix whose rounding is amplified by
``‖X*L‖ ~ κ`` (T1/T2). Two computed answers that each lie within the bound of
the exact one differ by at most twice the bound, so pairwise agreement is
checked with ``c = 2·DEFAULT_C`` (triangle inequality, not slack).
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _plan import DTYPES, WHITENING, paper_ols
from _plan import FALSIFIABLE as _FALSIFIABLE
from _plan import problems as _problems
from hypothesis import given, settings
from hypothesis import strategies as st

import olsjax
from olsjax import testing

HIGHEST = jax.lax.Precision.HIGHEST
#: Two answers each within c·u·κ² of the exact one are within 2c·u·κ² of each other.
PAIRWISE_C = 2 * testing.DEFAULT_C


def _mm(a, b):
    return jnp.matmul(a, b, precision=HIGHEST)


def _paper_form(params, l, x, y):
    """``params`` with ``W_Q = W_K = W_V = l`` and its head ``P = lᵀ XᵀY / n``."""
    head = _mm(l.T, _mm(x.T, y)) / x.shape[0]
    return dataclasses.replace(params, w_q=l, w_k=l, w_v=l, w_p=head)


def _weight_product(params, x):
    """``W_Q W_Kᵀ Σ W_V W_FFN W_P`` with ``Σ = XᵀX / n``, in the dtype of the weights."""
    sigma = _mm(x.T, x) / x.shape[0]
    w = _mm(params.w_q, params.w_k.T)
    return _mm(w, _mm(sigma, _mm(params.w_v, _mm(params.w_ffn, params.w_p))))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_all_factors_agree_with_each_other_and_with_ols(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    expected = testing.exact_predict(problem.x, problem.y, problem.queries)
    q, x = jnp.asarray(problem.queries), jnp.asarray(problem.x)
    outs = {}
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        outs[factor] = olsjax.forward(params, q, x)
        # p = 2 for every factor (module docstring); tan θ: X*β's own sensitivity.
        testing.assert_within_bound(
            outs[factor], expected, kappa=problem.kappa, p=2, dtype=dtype,
            tan_theta=problem.tan_theta, what=f"{factor} vs exact X*β",
        )
    for f, g in itertools.combinations(WHITENING, 2):
        # 2c: both are within c·u·κ² of X*β (asserted above); triangle inequality.
        testing.assert_within_bound(
            outs[f], outs[g], kappa=problem.kappa, p=2, dtype=dtype, c=PAIRWISE_C,
            tan_theta=problem.tan_theta, what=f"{f} vs {g}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_rotating_the_factor_leaves_the_forward_pass_unchanged(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed of O")
    d = problem.x.shape[1]
    o = jnp.asarray(testing.random_orthonormal(np.random.default_rng(seed), d, d), dtype)
    expected = testing.exact_predict(problem.x, problem.y, problem.queries)
    q, x, y = (jnp.asarray(a) for a in (problem.queries, problem.x, problem.y))
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        rotated = _paper_form(params, _mm(params.w_q, o), x, y)  # L ↦ L O, P = (L O)ᵀXᵀY/n
        out, out_rotated = olsjax.forward(params, q, x), olsjax.forward(rotated, q, x)
        # p = 2: a forward pass (module docstring); the rotated head forms XᵀY, whose
        # rounding moves X*β by u·κ²·(1 + tan θ) relatively — inside the same bound.
        testing.assert_within_bound(
            out_rotated, expected, kappa=problem.kappa, p=2, dtype=dtype,
            tan_theta=problem.tan_theta, what=f"L O forward vs exact X*β, {factor}",
        )
        # 2c: both passes are within c·u·κ² of X*β; triangle inequality.
        testing.assert_within_bound(
            out_rotated, out, kappa=problem.kappa, p=2, dtype=dtype, c=PAIRWISE_C,
            tan_theta=problem.tan_theta, what=f"L O forward vs L forward, {factor}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_weight_product_is_beta_for_every_factor_and_rotation(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed of O")
    d = problem.x.shape[1]
    o = jnp.asarray(testing.random_orthonormal(np.random.default_rng(seed), d, d), dtype)
    beta = testing.exact_lstsq(problem.x, problem.y)
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        rotated = _paper_form(params, _mm(params.w_q, o), x, y)
        for which, p in (("L", params), ("L O", rotated)):
            # p = 2: the product contains Σ = XᵀX/n explicitly; its rounding u‖Σ‖
            # is amplified by ‖W_Q W_Kᵀ‖ = ‖Σ⁻¹‖. tan θ: β's own sensitivity.
            testing.assert_within_bound(
                _weight_product(p, x), beta, kappa=problem.kappa, p=2, dtype=dtype,
                tan_theta=problem.tan_theta,
                what=f"W_Q W_Kᵀ Σ W_V W_FFN W_P vs β, {factor}, {which}",
            )


# --- falsification ---------------------------------------------------------------

#: Falsification checks are demonstrations, and each example runs every wrong variant
#: on every factor: a quarter of the active profile's examples (at least 5) suffices.
FALSIFY = settings(max_examples=max(5, settings().max_examples // 4))

#: A non-orthogonality of 0.1%: (1+ε)O scales the forward pass by (1+ε)⁴.
EPSILON = 1e-3


@FALSIFY
@given(problem=_FALSIFIABLE, seed=st.integers(0, 2**32 - 1))
def test_falsification_only_orthogonal_right_rotations_are_invisible(problem, seed):
    d = problem.x.shape[1]
    o = jnp.asarray(testing.random_orthonormal(np.random.default_rng(seed), d, d))
    expected = testing.exact_predict(problem.x, problem.y, problem.queries)
    beta = testing.exact_lstsq(problem.x, problem.y)
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    q, x, y = (jnp.asarray(a) for a in (problem.queries, problem.x, problem.y))
    head_eigh = paper_ols(problem.x, problem.y, route="eigh").w_p
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        l = params.w_q
        wrong = {
            "L (1+ε) O, not orthogonal": _paper_form(params, _mm(l, o) * (1 + EPSILON), x, y),
            "O L, rotated on the wrong side": _paper_form(params, _mm(o, l), x, y),
        }
        if factor.name != "eigh":
            # A valid L with the paper's head: P must be rotated along with L.
            wrong["L of this factor, P of eigh"] = dataclasses.replace(params, w_p=head_eigh)
        for name, bad in wrong.items():
            for what, actual, reference in (
                ("forward", olsjax.forward(bad, q, x), expected),
                ("weight product", _weight_product(bad, x), beta),
            ):
                err = testing.relative_error(actual, reference)
                # 1e3: a wrong construction must not be within reach of any reasonable c.
                assert err > 1e3 * bound, f"{factor}, {name}, {what}: {err:.3e} vs {bound:.3e}"
                with pytest.raises(AssertionError, match="exceeds bound"):
                    testing.assert_within_bound(
                        actual, reference, kappa=problem.kappa, p=2,
                        tan_theta=problem.tan_theta, what=name,
                    )
