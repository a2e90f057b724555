"""T8 — gradient descent and Newton steps are attention layers (vO).

Claim (THEOREMS.md): on tokens ``e_i = [x_i, y_i]`` (context) and
``e* = [x*, 0]`` (queries), ``k`` stacked linear self-attention layers with a
residual stream, ``E ← E + (E W_Q)(C W_K)ᵀ(C W_V) W_P / n`` (keys and values
from the context rows ``C`` only), built by ``olsjax.construct_gd``, leave
``−x* W_k`` in each query's ``y``-slot, ``W_k`` the ``k``-th iterate of
``W ← W − η P ∇ℓ(W)``, ``ℓ(W) = ‖XW − Y‖²/(2n)``, ``W₀ = 0``. With
``P = Σ⁻¹``, ``η = 1`` one layer is the Newton step: OLS.

Verified against an independent numpy implementation of explicit gradient
descent (float64), for ``k = 1..8``, ``η = α/λ_max(Σ)`` with ``α ∈ (0, 2)``
(a contraction, the regime where GD converges), ``P = I`` and a random
symmetric positive definite ``P`` (then ``η = α/λ_max(PΣ)``), and batched
tasks. The Newton step is checked against the exact rational OLS prediction
(``testing.exact_predict``) with the ``p = 2`` bound (``Σ`` is formed).

*The GD bound.* Each layer computes ``ΔW_j = η P Xᵀr_j/n`` and subtracts
``x ΔW_j`` from every slot; each such product carries a rounding error of at
most ``γ·u`` (``γ = O(n + d)``) relative to
``η‖P‖(‖Σ‖‖W_j‖ + ‖XᵀY‖/n)``, the size of its terms. The residual map
``I − ηXPXᵀ/n`` has norm ``≤ 1`` for ``η ≤ 2/λ_max(PΣ)``, so errors made at
step ``j`` are not amplified later and add up over ``k`` steps:

    ‖f − X*W_k‖_F ≤ c·u·k·η‖P‖₂(‖Σ‖₂·max_j‖W_j‖_F + ‖XᵀY‖_F/n)·‖X*‖_F,   c = 200,

with every quantity on the right taken from the numpy reference. Float32
uses the same bound with its own ``u`` (reference still float64).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import olsjax
from olsjax import testing

#: Each (shape, m, k) is one compilation of the scanned layers, and those dominate the run
#: time: float64 runs k = 1..8 on two shapes (m tied to the shape); float32 (same code,
#: its own u) one shape and k = 1, 4, 8.
STEPS = {np.float64: range(1, 9), np.float32: (1, 4, 8)}
PLAN = {np.float64: (((12, 1), 1), ((33, 5), 2)), np.float32: (((33, 5), 2),)}


def explicit_gd(x, y, eta, steps, p=None):
    """The iterates ``W_1..W_steps`` of ``W ← W − ηP Xᵀ(XW − Y)/n`` from 0, in float64 numpy."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, d = x.shape
    p = np.eye(d) if p is None else p
    w = np.zeros((d, y.shape[1]))
    out = []
    for _ in range(steps):
        w = w - eta * p @ (x.T @ (x @ w - y)) / n
        out.append(w)
    return out


def gd_scale(x, y, q, eta, iterates, p=None) -> float:
    """``k·η‖P‖₂(‖Σ‖₂·max_j‖W_j‖_F + ‖XᵀY‖_F/n)·‖X*‖_F`` (module docstring)."""
    x, y, q = (np.asarray(a, np.float64) for a in (x, y, q))
    n = len(x)
    pn = 1.0 if p is None else np.linalg.norm(p, 2)
    sigma = np.linalg.norm(x.T @ x / n, 2)
    w = max(np.linalg.norm(it) for it in iterates)
    return len(iterates) * eta * pn * (sigma * w + np.linalg.norm(x.T @ y) / n) * np.linalg.norm(q)


def gd_error_ratio(params, x, y, q, eta, steps, p=None, dtype=np.float64) -> float:
    """``‖f − X*W_k‖_F / (c·u·scale)``: at most 1 when the claim holds."""
    iterates = explicit_gd(x, y, eta, steps, p)
    out = np.asarray(olsjax.predict_in_context(params, x, y, q), np.float64)
    err = np.linalg.norm(out - np.asarray(q, np.float64) @ iterates[-1])
    return err / (testing.DEFAULT_C * testing.unit_roundoff(dtype) * gd_scale(x, y, q, eta, iterates, p))


def spd(rng, d, kappa=10.0) -> np.ndarray:
    """A symmetric positive definite preconditioner with condition number ``kappa``."""
    v = testing.random_orthonormal(rng, d, d)
    return v @ np.diag(np.logspace(0, -np.log10(kappa), d)) @ v.T


def _task(draw, dtype):
    (n, d), m = draw(st.sampled_from(PLAN[dtype]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    log_kappa = draw(st.floats(0.0, 3.0))
    pr = testing.make_problem(rng, n, d, m, kappa=10.0**log_kappa, noise=1.0, dtype=dtype)
    alpha = draw(st.floats(0.05, 1.95))
    return pr, rng, alpha


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_k_layers_are_k_gd_steps(dtype, data):
    pr, rng, alpha = _task(data.draw, dtype)
    d, m = pr.x.shape[1], pr.y.shape[1]
    precondition = data.draw(st.booleans())
    p = spd(rng, d).astype(dtype) if precondition else None
    x64 = pr.x.astype(np.float64)
    sigma = x64.T @ x64 / len(x64)
    lam = np.max(np.abs(np.linalg.eigvals(sigma if p is None else p.astype(np.float64) @ sigma)))
    eta = float(alpha / lam)
    for k in STEPS[dtype]:
        params = olsjax.construct_gd(d, m, eta=eta, steps=k, preconditioner=p, dtype=dtype)
        ratio = gd_error_ratio(params, pr.x, pr.y, pr.queries, eta, k, None if p is None else p.astype(np.float64), dtype)
        assert ratio <= 1.0, f"k={k}: error {ratio:.2e} × the bound"


def _newton(x, dtype):
    """``P = Σ⁻¹ = n (XᵀX)⁻¹``, exact then rounded once (independent of the library)."""
    inverse = testing.exact_gram_inverse(x) * len(x)
    return np.vectorize(float)(inverse).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_newton_step_is_ols(dtype, data):
    (n, d), m = data.draw(st.sampled_from(PLAN[dtype]))
    pr = data.draw(testing.problems(shapes=((n, d),), targets=(m,), dtype=dtype,
                                    max_log_kappa=testing.max_log10_kappa(dtype, 2)))
    params = olsjax.construct_gd(d, m, eta=1.0, preconditioner=_newton(pr.x, dtype))
    out = olsjax.predict_in_context(params, pr.x, pr.y, pr.queries)
    expected = testing.exact_predict(pr.x, pr.y, pr.queries)
    # p = 2: Σ⁻¹ is that of the formed Gram matrix (THEOREMS.md, "What verified means").
    testing.assert_within_bound(out, expected, kappa=pr.kappa, p=2, dtype=dtype, tan_theta=pr.tan_theta)


def test_batched_tasks_are_independent_gd_runs():
    rng = np.random.default_rng(8)
    b, n, d, m, k = 6, 33, 5, 2, 5
    xs = rng.standard_normal((b, n, d))
    ys = xs @ rng.standard_normal((b, d, m)) + 0.1 * rng.standard_normal((b, n, m))
    qs = rng.standard_normal((b, 4, d))
    eta = 0.4  # λ_max(Σ) ≈ (1 + √(d/n))² ≈ 1.9 for these Gaussians: 0.4 keeps αη < 2
    params = olsjax.construct_gd(d, m, eta=eta, steps=k)
    out = np.asarray(olsjax.predict_in_context(params, xs, ys, qs))
    assert out.shape == (b, 4, m)
    for i in range(b):
        iterates = explicit_gd(xs[i], ys[i], eta, k)
        bound = testing.DEFAULT_C * testing.unit_roundoff(np.float64) * gd_scale(xs[i], ys[i], qs[i], eta, iterates)
        assert np.linalg.norm(out[i] - qs[i] @ iterates[-1]) <= bound


def test_query_slot_holds_minus_the_prediction():
    # The sign convention, read off the tokens themselves: one layer on e* = [x*, 0].
    rng = np.random.default_rng(1)
    x, y, q = rng.standard_normal((10, 3)), rng.standard_normal((10, 1)), rng.standard_normal((2, 3))
    params = olsjax.construct_gd(3, 1, eta=0.5)
    e = np.asarray(olsjax.in_context_tokens(x, y, q))
    assert e.shape == (12, 4) and np.array_equal(e[10:, 3], np.zeros(2)) and np.array_equal(e[:10, 3], y[:, 0])
    pred = np.asarray(olsjax.predict_in_context(params, x, y, q))
    np.testing.assert_allclose(pred, q @ (0.5 * x.T @ y / 10), rtol=1e-13)  # one step: X*·ηXᵀY/n (T4 with ηI)


# --- falsification: each wrong construction misses the bound by orders of magnitude -----


def _wrong(params, name):
    w = {k: np.array(getattr(params, k)) for k in ("w_q", "w_k", "w_v", "w_p")}
    if name == "sign":  # +I on the value block: the slots move up the gradient
        w["w_v"] = -w["w_v"]
    elif name == "1/n":  # the layer sums over the context instead of averaging
        w["w_p"] = w["w_p"] * 33
    elif name == "transposed":  # Pᵀ on the query side instead of P
        w["w_q"] = np.swapaxes(w["w_q"], -1, -2)
    return dataclasses.replace(params, **w)


@pytest.mark.parametrize("name", ["sign", "1/n", "transposed"])
def test_falsification(name):
    rng = np.random.default_rng(80)
    pr = testing.make_problem(rng, 33, 5, 2, kappa=10.0, noise=1.0)
    # A non-symmetric preconditioner, so that transposing its block changes the step.
    p = spd(rng, 5) + 0.3 * rng.standard_normal((5, 5))
    sigma = pr.x.T @ pr.x / 33
    eta = float(0.5 / np.max(np.abs(np.linalg.eigvals(p @ sigma))))
    params = olsjax.construct_gd(5, 2, eta=eta, steps=3, preconditioner=p)
    assert gd_error_ratio(params, pr.x, pr.y, pr.queries, eta, 3, p) <= 1.0  # the right one passes
    assert gd_error_ratio(_wrong(params, name), pr.x, pr.y, pr.queries, eta, 3, p) > 1e3
