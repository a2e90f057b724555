"""T2 — out-of-sample queries.

Claim (THEOREMS.md): With the same θ, ``f_θ(X*; X) = X* β`` for every query
matrix ``X*``: one forward pass predicts like the fitted OLS model. The
parameters depend on ``(X, Y)`` (the construction is data-dependent, as the
paper's referees point out); olsjax must say so plainly in its docs.

Verified for every whitening route of the registry (``_plan.WHITENING``) on
generated float64 and float32 problems, against the exact rational prediction
``testing.exact_predict``: for the problem's generic queries and, separately,
for the ``d`` right singular vectors of ``X`` as queries (the least-determined
direction included), whose predictions ``Vᵀβ`` measure the relative error of
the coefficients the forward pass implies, ``‖Vᵀ(β̂ − β)‖/‖Vᵀβ‖ = ‖β̂ − β‖/‖β‖``,
exactly. The data dependence is shown as a property:
the same θ attending to another context does not predict that context's OLS
fit. The bound uses ``p = 2`` for every factor: attention forms
``(XL)ᵀ(XL)/n``, a Gram matrix of whitened tokens whose deviation from ``I``
(``u·κ`` even for ``qr``/``svd``) is amplified by ``‖X*L‖ ~ κ``.
"""

from __future__ import annotations

import dataclasses

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


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_out_of_sample_forward_pass_predicts_like_ols(dtype, data):
    problem = data.draw(_problems(dtype), label="problem")
    d = problem.x.shape[1]
    # Generic queries, then one query along each right singular vector of X.
    principal = np.linalg.svd(problem.x.astype(np.float64))[2].astype(dtype)
    queries = np.concatenate([problem.queries, principal])
    expected = testing.exact_predict(problem.x, problem.y, queries)  # X* β, exactly
    x, q = jnp.asarray(problem.x), jnp.asarray(queries)
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        out = np.asarray(olsjax.forward(params, q, x))
        for rows, which in ((slice(None, -d), "generic"), (slice(-d, None), "principal")):
            # p = 2 for every factor (module docstring); tan θ: X*β itself moves by
            # u·κ²·tan θ when the data are rounded.
            testing.assert_within_bound(
                out[rows], expected[rows], kappa=problem.kappa, p=2, dtype=dtype,
                tan_theta=problem.tan_theta, what=f"f_θ(X*; X) vs X*β, {which} queries, {factor}",
            )


@given(problem=_problems(np.float64, max_log_kappa=2.0), seed=st.integers(0, 2**32 - 1))
def test_parameters_are_data_dependent(problem, seed):
    # θ is fitted to (X, Y): attending to another context (X', Y') of the same shape
    # does not give the OLS prediction on (X', Y'). forward never sees Y', so no
    # fixed θ can; T2 is a statement about data-dependent weights.
    n, d = problem.x.shape
    other = testing.make_problem(
        np.random.default_rng(seed), n, d, problem.y.shape[1], kappa=problem.kappa
    )
    expected = testing.exact_predict(other.x, other.y, problem.queries)
    bound = testing.error_bound(np.float64, other.kappa, 2, tan_theta=other.tan_theta)
    q, x_other = jnp.asarray(problem.queries), jnp.asarray(other.x)
    for factor in WHITENING:
        params = paper_ols(problem.x, problem.y, route=factor)
        err = testing.relative_error(olsjax.forward(params, q, x_other), expected)
        # 1e3 x bound (≲ 2e-7·(1 + tan θ) for κ ≤ 100): another context is O(1) off.
        assert err > 1e3 * bound, f"{factor}: θ(X, Y) predicted OLS on a new context ({err:.3e})"


# --- falsification ---------------------------------------------------------------

#: Falsification checks are demonstrations, and each example runs every wrong variant
#: on every factor: a quarter of the active profile's examples (at least 5) suffices.
FALSIFY = settings(max_examples=max(5, settings().max_examples // 4))


@FALSIFY
@given(problem=_FALSIFIABLE)
def test_falsification_wrong_constructions_miss_out_of_sample(problem):
    x, y = problem.x, problem.y
    n = x.shape[0]
    xty = x.T @ y
    lam, v = np.linalg.eigh(x.T @ x / n)
    expected = testing.exact_predict(x, y, problem.queries)
    bound = testing.error_bound(np.float64, problem.kappa, 2, tan_theta=problem.tan_theta)
    eigh = paper_ols(x, y, route="eigh")
    wrong = {}
    powers = (("VΛ^{-1} (wrong power)", v / lam), ("VΛ^{-1/4} (wrong power)", v / lam**0.25))
    for name, l in powers:
        wrong[name] = dataclasses.replace(
            eigh, w_q=jnp.asarray(l), w_k=jnp.asarray(l), w_v=jnp.asarray(l),
            w_p=jnp.asarray(l.T @ xty / n),
        )
    for factor in WHITENING:
        params = paper_ols(x, y, route=factor)
        wrong[f"missing 1/n in P, {factor}"] = dataclasses.replace(params, w_p=params.w_p * n)
        wrong[f"W_FFN = n·I (attention not averaged), {factor}"] = dataclasses.replace(
            params, w_ffn=params.w_ffn * n
        )
        if not isinstance(factor, olsjax.ZCA):  # the ZCA factor is symmetric: Lᵀ = L
            lt = np.asarray(params.w_q).T
            wrong[f"Lᵀ instead of L, {factor}"] = dataclasses.replace(
                params, w_q=jnp.asarray(lt), w_k=jnp.asarray(lt), w_v=jnp.asarray(lt),
                w_p=jnp.asarray(lt.T @ xty / n),
            )
    q, xj = jnp.asarray(problem.queries), jnp.asarray(x)
    for name, params in wrong.items():
        out = olsjax.forward(params, q, xj)
        err = testing.relative_error(out, expected)
        # 1e3: a wrong construction must not be within reach of any reasonable c.
        assert err > 1e3 * bound, f"{name}: error {err:.3e} is within 1e3 x bound {bound:.3e}"
        with pytest.raises(AssertionError, match="exceeds bound"):
            testing.assert_within_bound(
                out, expected, kappa=problem.kappa, p=2, tan_theta=problem.tan_theta, what=name
            )
