"""``forward`` on a context the parameters were not built from: the refinement layers refuse where they diverge.

The layers compute ``a₀ Σ_{i≤k} (I − W_R S)^i`` (T12). On the construction's
own context ``‖I − W_R S‖ ≈ u·κ``; on another one (the distribution-shift
experiment) it can exceed 1, and the series then amplifies ``I − W_R S``
geometrically: a finite, meaningless answer (errors of 1e18 were measured)
unless ``forward`` refuses. The one-layer model has no such limit.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import olsjax
import olsjax.distributed as dist

RNG = np.random.default_rng(0)
X0 = RNG.standard_normal((50, 4))
Y0 = X0 @ RNG.standard_normal((4, 1))
Q = RNG.standard_normal((5, 4))
PARAMS = olsjax.construct_ols(X0, Y0)  # default refinement layers


def network(params, queries, context):
    """The k-layer network of T12, evaluated independently in numpy: ``X*W_Q S T W_FFN W_P``."""
    s = (context @ params.w_k).T @ (context @ params.w_v) / len(context)
    t = np.eye(len(s))
    for _ in range(params.refinements):
        t = np.eye(len(s)) + t @ (np.eye(len(s)) - np.asarray(params.w_r) @ s)
    return queries @ params.w_q @ s @ t @ params.w_ffn @ params.w_p


def rho(params, context):
    """``‖(I − A)A‖₂/‖A‖₂`` with ``A = W_R S``: for symmetric PSD ``A``, ``max eig(A) − 1`` once that passes 1."""
    a = np.asarray(params.w_r) @ ((context @ params.w_k).T @ (context @ params.w_v) / len(context))
    return np.linalg.norm(a - a @ a, 2) / np.linalg.norm(a, 2)


def test_own_context_is_far_inside():
    assert PARAMS.refinements > 0 and rho(PARAMS, X0) < 1e-12  # ≈ u·κ, κ ≈ 2 here


def test_a_contracting_foreign_context_is_the_network():
    x = 1.1 * X0 + 0.02 * RNG.standard_normal(X0.shape)  # close to the source: A ≈ 1.2·I
    assert 0.05 < rho(PARAMS, x) < 0.5
    out = np.asarray(olsjax.forward(PARAMS, Q, x))
    # float64 evaluation of a contracting series of ~a dozen 4 × 4 products: agreement to 1e-12
    np.testing.assert_allclose(out, network(PARAMS, Q, x), rtol=1e-12)


def test_a_diverging_context_is_refused_eagerly_and_nan_under_jit():
    x = 4.0 * X0  # A = W_R S = 16·I: the layers multiply by I − A = −15·I per layer
    assert rho(PARAMS, x) == pytest.approx(15.0)
    with pytest.raises(ValueError, match=r"refinement layers diverge on this context: ‖\(I − A\)A‖₂/‖A‖₂ = 15"):
        olsjax.forward(PARAMS, Q, x)
    assert np.all(np.isnan(jax.jit(olsjax.forward)(PARAMS, Q, x)))
    # Without the refusal the answer is finite and off by ~15^k: the check is what stops it.
    assert np.all(np.isfinite(network(PARAMS, Q, x)))
    assert np.abs(network(PARAMS, Q, x)).max() > 1e6 * np.abs(Q @ np.linalg.lstsq(x, Y0 * 4, rcond=None)[0]).max()


def test_only_the_diverging_tasks_of_a_batch_are_nan():
    out = jax.jit(olsjax.forward)(PARAMS, Q, np.stack([X0, 4.0 * X0]))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))


def test_the_one_layer_model_applies_anywhere():
    one = dataclasses.replace(PARAMS, refinements=0)
    out = np.asarray(olsjax.forward(one, Q, 4.0 * X0))
    np.testing.assert_allclose(out, network(one, Q, 4.0 * X0), rtol=1e-13)  # one product chain, float64


def test_a_minimum_norm_construction_is_not_refused_off_its_range():
    # rcond drops a direction: A = I on the range of S and 0 off it, where I − A = 1 is harmless.
    x = np.c_[X0[:, :3], X0[:, :1] + X0[:, 1:2]]  # exactly rank 3
    params = olsjax.construct_ols(x, Y0, rcond=1e-10)
    assert rho(params, x) < 1e-12
    beta = np.linalg.pinv(x) @ Y0
    # the minimum-norm prediction, p = 1 bound of a well-conditioned rank-3 problem: 1e-12 is 1e3·u·κ
    np.testing.assert_allclose(olsjax.forward(params, Q, x), Q @ beta, rtol=1e-12, atol=1e-12)


def test_nan_input_is_still_named_first():
    x = 4.0 * X0
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="context contains 1 NaN"):
        olsjax.forward(PARAMS, Q, x)


def test_the_sharded_forward_refuses_the_same_way():
    mesh = jax.make_mesh((1,), ("rows",))
    with pytest.raises(ValueError, match="refinement layers diverge on this context"):
        dist.forward(PARAMS, Q, dist.shard_rows(4.0 * X0, mesh, "rows"))
