"""Bad inputs to the T8–T10 functions raise clear errors naming the argument; float32 works with x64 off."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import olsjax

RNG = np.random.default_rng(0)
X, Y, Q = RNG.standard_normal((10, 3)), RNG.standard_normal((10, 2)), RNG.standard_normal((4, 3))
PATTERNS = np.where(RNG.standard_normal((5, 8)) > 0, 1.0, -1.0)
GD = olsjax.construct_gd(3, 2, eta=0.1, steps=2)
#: A float for an integer option: ValueError from olsjax, or TypeError from the annotation's runtime check.
INTEGER = (TypeError, ValueError)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: olsjax.construct_gd(3, 2, eta=0.0), ValueError, "eta"),
        (lambda: olsjax.construct_gd(3, 2, eta=float("nan")), ValueError, "eta"),
        (lambda: olsjax.construct_gd(3, 2, eta=np.array([0.1, 0.2])), ValueError, "eta"),
        (lambda: olsjax.construct_gd(3, 2, eta=1j), TypeError, "eta"),
        (lambda: olsjax.construct_gd(3, 2, eta=0.1, steps=0), ValueError, "steps"),
        (lambda: olsjax.construct_gd(3, 2, eta=0.1, steps=1.5), INTEGER, "steps"),
        (lambda: olsjax.construct_gd(0, 2, eta=0.1), ValueError, "d must"),
        (lambda: olsjax.construct_gd(3, -1, eta=0.1), ValueError, "m must"),
        (lambda: olsjax.construct_gd(3, 2, eta=0.1, preconditioner=np.eye(4)), ValueError, "preconditioner"),
        (lambda: olsjax.construct_gd(3, 2, eta=0.1, preconditioner=np.full((3, 3), np.nan)), ValueError,
         "preconditioner contains"),
        (lambda: olsjax.construct_gd(3, 2, eta=0.1, preconditioner=np.eye(3, dtype=int)), TypeError,
         "preconditioner"),
        (lambda: olsjax.construct_gd(3, 2, eta=0.1, dtype=np.int32), TypeError, "dtype"),
        (lambda: olsjax.in_context_tokens(X, Y, Q[:, :2]), ValueError, "queries"),
        (lambda: olsjax.in_context_tokens(X, Y[:9], Q), ValueError, "X and Y"),
        (lambda: olsjax.in_context_tokens(X, Y, Q.astype(np.float32)), TypeError, "queries"),
        (lambda: olsjax.in_context_tokens(X.astype(int), Y, Q), TypeError, "X must"),
        (lambda: olsjax.predict_in_context(GD, np.where(X > 1, np.nan, X), Y, Q), ValueError, "X contains"),
        (lambda: olsjax.predict_in_context(GD, X, np.where(Y > 1, np.inf, Y), Q), ValueError, "Y contains"),
        (lambda: olsjax.predict_in_context(GD, X, Y[:, :1], Q), ValueError, "params.w_q"),
        (lambda: olsjax.predict_in_context("gd", X, Y, Q), TypeError, "params"),
        (lambda: olsjax.recurrent_linear_attention(X, X, Y, chunk=0), ValueError, "chunk"),
        (lambda: olsjax.recurrent_linear_attention(X, X, Y, chunk=2.0), INTEGER, "chunk"),
        (lambda: olsjax.recurrent_linear_attention(X, X[:9], Y), ValueError, "as many queries as keys"),
        (lambda: olsjax.recurrent_linear_attention(X, X, np.where(Y > 1, np.nan, Y)), ValueError, "v contains"),
        (lambda: olsjax.rls(X, Y, method="kalman"), ValueError, "method"),
        (lambda: olsjax.rls(X[:2], Y[:2]), ValueError, "n >= d"),
        (lambda: olsjax.rls(np.where(X > 1, np.nan, X), Y), ValueError, "X contains"),
        (lambda: olsjax.rls(X, Y.astype(np.float32)), TypeError, "X and Y"),
        (lambda: olsjax.rls(np.ones((10, 3)), Y), ValueError, "rank-deficient"),
        (lambda: olsjax.hopfield_retrieve(PATTERNS, PATTERNS[:2], energy="cubic"), ValueError, "energy"),
        (lambda: olsjax.hopfield_retrieve(PATTERNS, PATTERNS[:2, :5]), ValueError, "cues"),
        (lambda: olsjax.hopfield_retrieve(PATTERNS[None], PATTERNS[:2]), ValueError, "patterns"),
        (lambda: olsjax.hopfield_retrieve(PATTERNS, PATTERNS[:2], steps=0), ValueError, "steps"),
        (lambda: olsjax.hopfield_retrieve(PATTERNS, PATTERNS[:2], energy="polynomial", degree=1), ValueError,
         "degree"),
        (lambda: olsjax.hopfield_retrieve(PATTERNS, PATTERNS[:2], energy="exponential", beta=-1.0), ValueError,
         "beta"),
        (lambda: olsjax.hopfield_energy(PATTERNS, PATTERNS[:2].astype(np.float32)), TypeError, "state"),
        (lambda: olsjax.hopfield_energy(PATTERNS, np.where(PATTERNS[:2] > 0, np.nan, 1.0)), ValueError,
         "state contains"),
        (lambda: olsjax.hopfield_energy(PATTERNS.astype(np.int8), PATTERNS[:2]), TypeError, "patterns"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_options_are_traced_and_sweeps_compile_once():
    # eta and beta are traced: a vmapped sweep runs as one computation and matches the loop.
    etas = np.array([0.05, 0.1, 0.2])
    sweep = jax.vmap(lambda e: olsjax.predict_in_context(olsjax.construct_gd(3, 2, eta=e, steps=3), X, Y, Q))(etas)
    for eta, out in zip(etas, sweep):
        np.testing.assert_allclose(out, olsjax.predict_in_context(olsjax.construct_gd(3, 2, eta=eta, steps=3), X, Y, Q),
                                   rtol=1e-12)  # same operations, possibly fused differently: a few ulps
    betas = np.array([0.5, 2.0])
    many = jax.vmap(lambda b: olsjax.hopfield_retrieve(PATTERNS, PATTERNS[:2], energy="exponential", beta=b))(betas)
    assert many.shape == (2, 2, 8)


def test_jit_returns_nan_not_a_wrong_answer():
    bad = np.where(X > 1, np.nan, X)
    out = jax.jit(lambda a: olsjax.predict_in_context(GD, a, Y, Q))(bad)
    assert np.all(np.isnan(out))
    assert np.all(np.isnan(jax.jit(olsjax.rls)(np.ones((10, 3)), Y)))


def test_single_cue_and_vector_targets():
    assert olsjax.hopfield_retrieve(PATTERNS, PATTERNS[0]).shape == (8,)
    assert olsjax.hopfield_energy(PATTERNS, PATTERNS[0]).shape == ()
    assert olsjax.predict_in_context(olsjax.construct_gd(3, 1, eta=0.1), X, Y[:, 0], Q).shape == (4,)
    assert olsjax.rls(X, Y[:, 0]).shape == (8, 3)


def test_float32_with_x64_off():
    x32, y32, q32 = (a.astype(np.float32) for a in (X, Y, Q))
    with jax.enable_x64(False):
        gd = olsjax.construct_gd(3, 2, eta=0.1, steps=2)
        out = olsjax.predict_in_context(gd, x32, y32, q32)
        assert out.dtype == np.float32
        w64 = np.zeros((3, 2))  # two explicit steps in float64 numpy
        for _ in range(2):
            w64 = w64 - 0.1 * X.T @ (X @ w64 - Y) / 10
        # float32: a few ulps of the entries' size (|q|·|W| ≈ 1)
        np.testing.assert_allclose(out, Q @ w64, atol=1e-5)
        assert olsjax.rls(x32, y32).dtype == np.float32
        assert olsjax.recurrent_linear_attention(x32, x32, y32, chunk=3).dtype == np.float32
        p32 = PATTERNS.astype(np.float32)
        assert olsjax.hopfield_retrieve(p32, p32[:2], energy="exponential").dtype == np.float32
        assert olsjax.hopfield_energy(p32, p32[:2], energy="exponential").dtype == np.float32
