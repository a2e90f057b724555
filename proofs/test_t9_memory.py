"""T9 — slow and fast memory: causal linear attention as a recurrence; recursive least squares.

Claims (THEOREMS.md):

- Causal linear attention computed in parallel (masked ``QKᵀ``, row ``t``
  divided by ``t``) equals the recurrence ``S_t = S_{t−1} + k_t v_tᵀ``,
  ``o_t = q_tᵀS_t/t`` to rounding, for every chunk size of the chunked form
  (parallel inside a chunk, the state carried between chunks), and the state
  carried is ``d × m`` whatever ``n``.
- Streaming OLS: recursive least squares equals batch OLS on every prefix
  ``t ≥ d``. The default square-root (QR-updated) RLS meets the ``p = 1``
  bound ``c·u·(κ_t + κ_t²·tan θ_t)`` on every prefix (``κ_t``, ``tan θ_t``
  those of the prefix); the textbook Sherman–Morrison update does not.

References are independent of the code under test: numpy float64 cumulative
sums for the recurrence, exact rational least squares
(``testing.exact_lstsq``) for every prefix of small problems, and
``numpy.linalg.lstsq`` in float64 for the long ill-conditioned streams.

*The recurrence bound.* Each output entry is a sum of ``≤ t·d`` products
``q_tj k_ij v_il`` (in either order of summation), so its rounding error is at
most ``γ_{t+d}·(|q_t|ᵀ Σ_{i≤t}|k_i||v_i|ᵀ)/t`` (Higham, §3.1), with
``γ_k = k·u/(1 − k·u)``. We assert it with the factor 2 of two
such computations (the code's and, for float64, the reference's), i.e.
``|o − o_ref| ≤ 2(n + d)·u·M`` entrywise, ``M`` the masked product of absolute values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import olsjax
from olsjax import _memory, testing

N, D, M = 23, 4, 3  # a prime n, so chunk sizes 2, 3, 7 leave a partial last chunk
#: Each chunk size is one compilation: float64 runs them all, float32 (same code, its own u)
#: a partial last chunk and a single chunk.
CHUNKS = {np.float64: (1, 2, 3, 7, N, N + 9), np.float32: (7, N)}


def causal_reference(q, k, v):
    """``o_t = q_tᵀ(Σ_{i≤t} k_i v_iᵀ)/t`` and the entrywise scale ``M`` of the bound, in float64 numpy."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    t = np.arange(1, q.shape[-2] + 1)[:, None]
    states = np.cumsum(k[..., :, :, None] * v[..., :, None, :], axis=-3)  # (..., n, d, m)
    out = np.einsum("...nd,...ndm->...nm", q, states) / t
    absolute = np.cumsum(np.abs(k)[..., :, :, None] * np.abs(v)[..., :, None, :], axis=-3)
    return out, np.einsum("...nd,...ndm->...nm", np.abs(q), absolute) / t


def assert_recurrence(out, q, k, v, dtype):
    expected, scale = causal_reference(q, k, v)
    n, d = q.shape[-2:]
    bound = 2 * (n + d) * testing.unit_roundoff(dtype) * scale  # module docstring
    excess = np.abs(np.asarray(out, np.float64) - expected) - bound
    assert np.all(excess <= 0), f"worst excess {excess.max():.2e} over the entrywise bound"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from((1e-3, 1.0, 1e3)))
def test_recurrent_equals_parallel_causal_for_every_chunk(dtype, seed, scale):
    rng = np.random.default_rng(seed)
    q, k = (scale * rng.standard_normal((2, N, D)).astype(dtype) for _ in range(2))
    v = rng.standard_normal((2, N, M)).astype(dtype)
    parallel = olsjax.linear_attention(q, k, v, causal=True)
    assert_recurrence(parallel, q, k, v, dtype)
    for chunk in CHUNKS[dtype]:
        out = olsjax.recurrent_linear_attention(q, k, v, chunk=chunk)
        assert out.shape == (2, N, M) and out.dtype == dtype
        assert_recurrence(out, q, k, v, dtype)


def _avals(jaxpr):
    """Every intermediate shape in ``jaxpr`` and its sub-jaxprs (scan bodies, jit calls)."""
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            yield var.aval.shape
        for value in eqn.params.values():
            sub = getattr(value, "jaxpr", value)
            if hasattr(sub, "eqns"):
                yield from _avals(sub)


def test_state_is_constant_size():
    rng = np.random.default_rng(9)
    n, chunk = 96, 8
    q, k = rng.standard_normal((2, n, D))
    v = rng.standard_normal((n, M))
    out, state = olsjax.recurrent_linear_attention(q, k, v, chunk=chunk, state=True)
    assert state.shape == (D, M)
    assert np.abs(np.asarray(state) - k.T @ v).max() <= 2 * (n + D) * testing.unit_roundoff(np.float64) * (np.abs(k).T @ np.abs(v)).max()
    # No n × n (nor n × chunk) intermediate: the scan carries (d, m), a chunk works on (chunk, chunk).
    jaxpr = jax.make_jaxpr(lambda a, b, c: _chunked(a, b, c, chunk))(q, k, v).jaxpr
    widest = max(min(s[-2:]) for s in _avals(jaxpr) if len(s) >= 2)
    assert widest <= chunk
    # The check can fail: the parallel causal form builds the n × n masked matrix.
    parallel = jax.make_jaxpr(lambda a, b, c: olsjax._attention._linear_attention(a, b, c, causal=True))(q, k, v).jaxpr
    assert max(min(s[-2:]) for s in _avals(parallel) if len(s) >= 2) == n


def _chunked(q, k, v, chunk):
    return olsjax._attention._chunked_causal(q, k, v, chunk)


# --- recursive least squares ------------------------------------------------------------

#: (shape, m): one compilation each.
RLS_PLAN = (((12, 3), 1), ((16, 4), 2))


def prefix_ratios(beta, x, y, reference) -> np.ndarray:
    """``error/bound`` of every prefix ``t = d..n`` (``p = 1`` bound with the prefix's κ and tan θ)."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    d = x.shape[1]
    ratios = []
    for t in range(d, len(x) + 1):
        xt, yt = x64[:t], y64[:t]
        bound = testing.error_bound(x.dtype, np.linalg.cond(xt), 1, tan_theta=testing.tan_theta(xt, yt))
        ratios.append(testing.relative_error(beta[t - d], reference(xt, yt)) / bound)
    return np.nan_to_num(np.array(ratios), nan=np.inf)  # NaN: no answer, as bad as any


def exact(x, y):
    return testing.exact_lstsq(x, y)


def lstsq(x, y):
    return np.linalg.lstsq(x, y, rcond=None)[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_rls_is_ols_on_every_prefix(dtype, data):
    shape, m = data.draw(st.sampled_from(RLS_PLAN))
    pr = data.draw(testing.problems(shapes=(shape,), targets=(m,), dtype=dtype,
                                    max_log_kappa=testing.max_log10_kappa(dtype, 1)))
    beta = np.asarray(olsjax.rls(pr.x, pr.y))
    n, d = pr.x.shape
    assert beta.shape == (n - d + 1, d, pr.y.shape[1])
    ratios = prefix_ratios(beta, pr.x, pr.y, exact)
    assert np.all(ratios <= 1), f"worst prefix: {ratios.max():.2e} × the p = 1 bound"


def test_rls_batched_and_vector_targets():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 16, 4))
    y = rng.standard_normal((3, 16))
    beta = np.asarray(olsjax.rls(x, y))
    assert beta.shape == (3, 13, 4)
    for i in range(3):
        assert np.all(prefix_ratios(beta[i][..., None], x[i], y[i][:, None], exact) <= 1)


#: Ill-conditioned streams (κ = 1e4, exact fits, 30 × 4): Sherman–Morrison works with
#: (XᵀX)⁻¹ and accumulates its update's rounding; measured 231×, 6.4e3× and 4.1e5× the
#: p = 1 bound on seeds 0-2, square-root RLS at most 0.005× (docs/memory.md).
DRIFT_SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", DRIFT_SEEDS)
def test_sherman_morrison_drifts_where_qr_does_not(seed):
    pr = testing.make_problem(np.random.default_rng(seed), 30, 4, 2, kappa=1e4, noise=0.0)
    stable = prefix_ratios(np.asarray(olsjax.rls(pr.x, pr.y)), pr.x, pr.y, lstsq)
    naive = prefix_ratios(np.asarray(olsjax.rls(pr.x, pr.y, method="sherman-morrison")), pr.x, pr.y, lstsq)
    assert stable.max() <= 1
    assert naive.max() > 100  # fails the bound the stable variant meets, by orders of magnitude


def test_rls_refuses_rank_deficient_prefix():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 3))
    x[:6, 2] = x[:6, 0]  # the first six rows span only two directions
    with pytest.raises(ValueError, match=r"prefix t=3 .*rank-deficient"):
        olsjax.rls(x, rng.standard_normal(12))
    # Under jit the refused prefixes are NaN, the rest still OLS.
    beta = np.asarray(jax.jit(olsjax.rls)(x, rng.standard_normal(12)))
    assert np.all(np.isnan(beta[:4])) and np.all(np.isfinite(beta[4:]))


_RIGHT_QR_STEP = _memory._qr_step


def _wrong_qr_step(carry, row):
    # Drops the new target: the factor of X is right, Qᵀy is not.
    x, y = row
    return _RIGHT_QR_STEP(carry, (x, jnp.zeros_like(y)))


def _wrong_sm_step(carry, row):
    # The gain without its denominator 1 + xᵀPx.
    p, beta, g = carry
    x, y = row
    px = p @ x
    beta = beta + px[:, None] * (y - x @ beta)[None, :]
    p = p - px[:, None] * px[None, :]
    g = g + x[:, None] * x[None, :]
    return (p, beta, g), (beta, p, g)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the wrong update diverges
@pytest.mark.parametrize("method", ["qr", "sherman-morrison"])
def test_falsification_wrong_update(method, monkeypatch):
    pr = testing.make_problem(np.random.default_rng(4), 16, 4, 1, kappa=10.0, noise=0.1)
    x, y = jnp.asarray(pr.x), jnp.asarray(pr.y)
    core = _memory._rls_qr if method == "qr" else _memory._rls_sherman_morrison
    right, _ = core(x, y)  # the unjitted core, so that the patched step is traced
    assert prefix_ratios(np.asarray(right), pr.x, pr.y, exact).max() <= 1
    monkeypatch.setattr(_memory, "_qr_step" if method == "qr" else "_sm_step",
                        _wrong_qr_step if method == "qr" else _wrong_sm_step)
    wrong, _ = core(x, y)
    assert prefix_ratios(np.asarray(wrong), pr.x, pr.y, exact).max() > 1e3
