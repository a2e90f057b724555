"""T1 — OLS is a one-layer linear transformer (the paper's main theorem).

Claim (THEOREMS.md): Let ``X`` have full column rank. Put ``L = V Λ^{-1/2}``,
``P = Lᵀ XᵀY / n``, and ``W_Q = W_K = W_V = L``, ``W_FFN = I``, ``W_P = P``.
Then in-sample ``f_θ(X; X) = H Y``, the OLS fitted values.

Lemmas that the proof goes through, each verified on its own:

- (a) whitening: ``Lᵀ Σ L = I``; (b) ``L Lᵀ = Σ⁻¹``;
- (c) with ``Z = X L``: ``Z Zᵀ Z / n = Z`` (attention acts as the identity on
  whitened tokens);
- (d) ``L P = β``: the output head holds the task ("slow memory").

Verified for the paper's factor (``route="eigh"``) and every other whitening
route of the registry ``olsjax.ROUTES`` (``_plan.WHITENING``; T3: they are
rotations of it), on generated float64 and float32 problems, against
references that share no code with olsjax: exact rational least squares
(``testing.exact_*``), exact rational products, or the closed-form right-hand
side of the identity (``I`` for (a), ``Z`` for (c)).

Powers of ``κ`` in the bound ``c·u·(κ^p + κ²·tan θ)``:

- Forward passes use ``p = 2`` for every factor: attention forms
  ``(XW_K)ᵀ(XW_V)/n``, a Gram matrix of whitened tokens, whose deviation from
  ``I`` (``u·κ`` even for QR/SVD) is amplified by ``‖X*L‖ ~ κ`` for a generic
  query. In-sample the queries are the whitened context itself
  (``‖XL‖ = √n``, no amplification), so the Gram-free factors ``qr`` and
  ``svd`` also meet ``p = 1`` there; that stronger statement is asserted too.
- The lemmas carry ``p = 2`` for the factors that build ``L`` from the rounded
  Gram matrix (``route.forms_gram``: ``eigh``, ``zca``, ``cholesky``; its
  rounding ``u·‖Σ‖`` is amplified by ``‖L‖² = ‖Σ⁻¹‖``) and ``p = 1`` for
  ``qr``/``svd``, which factor ``X`` itself backward-stably
  (``XL/√n = Q + O(u·κ)``), and for ``cholqr2``, whose second pass repairs
  the Gram matrix below its proven limit (``_plan.factor_power``).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _plan import DTYPES, WHITENING, factor_power, paper_ols
from _plan import FALSIFIABLE as _FALSIFIABLE
from _plan import problems as _problems
from hypothesis import given, settings
from hypothesis import strategies as st

import olsjax
from olsjax import testing

HIGHEST = jax.lax.Precision.HIGHEST


def _lemma_power(route: olsjax.Route) -> int:
    """``κ`` power carried by lemmas (a)-(d) for ``route`` (module docstring)."""
    return factor_power(route)


def _exact(a) -> np.ndarray:
    """``a`` as an object array of exact rationals (every float is a dyadic rational)."""
    return np.vectorize(Fraction, otypes=[object])(np.asarray(a, np.float64))


def _exact_whitened_gram(x, l) -> np.ndarray:
    """``Lᵀ Σ L = (XL)ᵀ(XL)/n`` in exact arithmetic on the float ``x`` and ``l``, rounded once."""
    z = _exact(x) @ _exact(l)
    return ((z.T @ z) / x.shape[0]).astype(np.float64)


def _exact_sigma_inverse(x) -> np.ndarray:
    """``Σ⁻¹ = n (XᵀX)⁻¹`` exactly, rounded once to float64 (``exact_lstsq(x, eye(n))``
    would give ``X⁺`` but is ~20x slower on the 64 × 8 shape)."""
    return (x.shape[0] * testing.exact_gram_inverse(x)).astype(np.float64)


def _draw(data, dtype) -> testing.Problem:
    return data.draw(_problems(dtype), label="problem")


# --- the theorem ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_in_sample_forward_pass_is_the_ols_fitted_values(dtype, data):
    problem = _draw(data, dtype)
    x = jnp.asarray(problem.x)
    fitted = testing.exact_predict(problem.x, problem.y, problem.x)  # H Y, exactly
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        out = olsjax.forward(params, x, x)
        # p = 2 for every factor: the forward pass forms a Gram matrix of whitened
        # tokens (module docstring); tan θ: H Y itself is that sensitive to rounding.
        testing.assert_within_bound(
            out, fitted, kappa=problem.kappa, p=2, dtype=dtype,
            tan_theta=problem.tan_theta, what=f"f_θ(X; X) vs H Y, factor={factor}",
        )
        if _lemma_power(factor) == 1:
            # p = 1 in-sample for qr/svd (and cholqr2, repaired): the queries are X itself,
            # XL/√n = Q + O(u·κ) has norm 1, so the Gram error u·κ of the whitened tokens
            # is not amplified.
            testing.assert_within_bound(
                out, fitted, kappa=problem.kappa, p=1, dtype=dtype,
                tan_theta=problem.tan_theta, what=f"f_θ(X; X) vs H Y (p=1), factor={factor}",
            )


# --- the lemmas ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_lemma_a_whitening_l_transpose_sigma_l_is_identity(dtype, data):
    problem = _draw(data, dtype)
    d = problem.x.shape[1]
    for factor in WHITENING:
        l = paper_ols(problem.x, problem.y, route=factor).w_q
        whitened = _exact_whitened_gram(problem.x, l)  # exact, so all error is in L
        # Gram factors: p = 2 (eigh/Cholesky of the rounded Σ, error u‖Σ‖·‖L‖²);
        # qr/svd: p = 1 (XL/√n is the computed Q or U up to backward error u·κ).
        testing.assert_within_bound(
            whitened, np.eye(d), kappa=problem.kappa, p=_lemma_power(factor), dtype=dtype,
            what=f"Lᵀ Σ L vs I, factor={factor}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_lemma_b_l_l_transpose_is_sigma_inverse(dtype, data):
    problem = _draw(data, dtype)
    sigma_inv = _exact_sigma_inverse(problem.x)
    for factor in WHITENING:
        l = paper_ols(problem.x, problem.y, route=factor).w_q
        llt = jnp.matmul(l, l.T, precision=HIGHEST)
        # Gram factors: p = 2 (a rounding u‖Σ‖ of Σ moves Σ⁻¹ by u·κ² relatively).
        # qr/svd: p = 1 — a backward error δX moves (XᵀX)⁻¹ by 2‖X⁺‖‖δX‖‖(XᵀX)⁻¹‖,
        # i.e. u·κ relatively, and R⁻¹ by substitution has residual ‖R·R⁻¹ − I‖ ≲ u·κ.
        testing.assert_within_bound(
            llt, sigma_inv, kappa=problem.kappa, p=_lemma_power(factor), dtype=dtype,
            what=f"L Lᵀ vs Σ⁻¹, factor={factor}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_lemma_c_attention_is_the_identity_on_whitened_tokens(dtype, data):
    problem = _draw(data, dtype)
    x = jnp.asarray(problem.x)
    for factor in WHITENING:
        l = paper_ols(problem.x, problem.y, route=factor).w_q
        z = jnp.matmul(x, l, precision=HIGHEST)
        attended = olsjax.linear_attention(z, z, z)  # Z ZᵀZ / n
        # Z(ZᵀZ/n) − Z = Z(ZᵀZ/n − I): the relative error is that of lemma (a) plus
        # the rounding of Z = XL (u‖X‖‖L‖ = u·κ relative to ‖Z‖ = √n): same powers.
        testing.assert_within_bound(
            attended, z, kappa=problem.kappa, p=_lemma_power(factor), dtype=dtype,
            what=f"Z ZᵀZ/n vs Z, factor={factor}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_lemma_d_l_times_head_is_beta(dtype, data):
    problem = _draw(data, dtype)
    beta = testing.exact_lstsq(problem.x, problem.y)
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        lp = jnp.matmul(params.w_q, params.w_p, precision=HIGHEST)
        # Gram factors: p = 2, this is the normal-equations solve (Σ⁻¹ XᵀY/n).
        # qr: R⁻¹QᵀY, svd: VS⁻¹UᵀY — the stable least-squares solves, p = 1.
        # tan θ: β itself moves by u·κ²·tan θ under rounding of the data (Wedin).
        testing.assert_within_bound(
            lp, beta, kappa=problem.kappa, p=_lemma_power(factor), dtype=dtype,
            tan_theta=problem.tan_theta, what=f"L P vs β, factor={factor}",
        )


# --- falsification ---------------------------------------------------------------

#: Falsification checks are demonstrations, and each example runs every wrong variant
#: on every factor: a quarter of the active profile's examples (at least 5) suffices.
FALSIFY = settings(max_examples=max(5, settings().max_examples // 4))


def _wrong_constructions(problem: testing.Problem):
    """``(name, params)``: slightly wrong versions of the paper-form construction."""
    x, y = problem.x, problem.y
    n = x.shape[0]
    xty = x.T @ y
    lam, v = np.linalg.eigh(x.T @ x / n)
    l_pow = v / lam  # V Λ^{-1} instead of V Λ^{-1/2}
    eigh = paper_ols(x, y, route="eigh")
    yield "L = VΛ^{-1} (wrong power)", dataclasses.replace(
        eigh, w_q=jnp.asarray(l_pow), w_k=jnp.asarray(l_pow), w_v=jnp.asarray(l_pow),
        w_p=jnp.asarray(l_pow.T @ xty / n),
    )
    for factor in WHITENING:
        params = paper_ols(x, y, route=factor)
        yield f"P = LᵀXᵀY (missing 1/n), {factor}", dataclasses.replace(params, w_p=params.w_p * n)
        yield f"W_V = I (W_V ≠ L), {factor}", dataclasses.replace(
            params, w_v=jnp.eye(x.shape[1], dtype=x.dtype)
        )
        if not isinstance(factor, olsjax.ZCA):  # the ZCA factor is symmetric: Lᵀ = L
            lt = np.asarray(params.w_q).T
            yield f"Lᵀ instead of L (transposed), {factor}", dataclasses.replace(
                params, w_q=jnp.asarray(lt), w_k=jnp.asarray(lt), w_v=jnp.asarray(lt),
                w_p=jnp.asarray(lt.T @ xty / n),
            )


@FALSIFY
@given(problem=_FALSIFIABLE)
def test_falsification_wrong_constructions_miss_by_orders_of_magnitude(problem):
    x = jnp.asarray(problem.x)
    fitted = testing.exact_predict(problem.x, problem.y, problem.x)
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    for name, params in _wrong_constructions(problem):
        out = olsjax.forward(params, x, x)
        err = testing.relative_error(out, fitted)
        # 1e3: a wrong construction must not be within reach of any reasonable c.
        assert err > 1e3 * bound, f"{name}: error {err:.3e} is within 1e3 x bound {bound:.3e}"
        with pytest.raises(AssertionError, match="exceeds bound"):
            testing.assert_within_bound(
                out, fitted, kappa=problem.kappa, p=2, tan_theta=problem.tan_theta, what=name
            )


@FALSIFY
@given(problem=_FALSIFIABLE)
def test_falsification_wrong_power_breaks_lemmas_a_and_c(problem):
    n, d = problem.x.shape
    lam, v = np.linalg.eigh(problem.x.T @ problem.x / n)
    l_pow = v / lam  # V Λ^{-1}: Lᵀ Σ L = Λ^{-1}, far from I since Λ ≤ 1/n here
    bound = testing.error_bound(np.float64, problem.kappa, 2)
    err_a = testing.relative_error(_exact_whitened_gram(problem.x, l_pow), np.eye(d))
    z = jnp.asarray(problem.x @ l_pow)
    err_c = testing.relative_error(olsjax.linear_attention(z, z, z), z)
    # 1e3: as above; both lemmas must expose the wrong power, not just the end result.
    assert err_a > 1e3 * bound, f"lemma (a) missed the wrong power: {err_a:.3e} vs {bound:.3e}"
    assert err_c > 1e3 * bound, f"lemma (c) missed the wrong power: {err_c:.3e} vs {bound:.3e}"
