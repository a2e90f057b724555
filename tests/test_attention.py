"""Linear and softmax attention, their score and attention matrices, against naive numpy.

References are written out independently: explicit ``q @ k.T @ v / n`` products,
Python loops over prefixes for the causal forms, a hand-rolled softmax.
"""

from __future__ import annotations

import numpy as np
import pytest

import olsjax

from ._problems import BATCH, D, M, N, Q, assert_close, gaussian, j

# Plain products of O(1) Gaussians with at most d = 3 or n = 8 terms: a few ulps each,
# so 1e-13 relative is tight enough to catch a missing 1/n or transposed factor by 12 orders.
TOL = 1e-13


@pytest.fixture(scope="module")
def qkv():
    return gaussian(0, (Q, D)), gaussian(1, (N, D)), gaussian(2, (N, M))


@pytest.fixture(scope="module")
def square_qkv():
    return gaussian(3, (N, D)), gaussian(4, (N, D)), gaussian(5, (N, M))


def np_softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- linear ---------------------------------------------------------------------------------


def test_linear_attention_is_q_kT_v_over_n(qkv):
    q, k, v = qkv
    out = olsjax.linear_attention(j(q), j(k), j(v))
    assert_close(out, q @ k.T @ v / N, TOL)


def test_linear_scores_and_matrix(qkv):
    q, k, _ = qkv
    assert_close(olsjax.linear_scores(j(q), j(k)), q @ k.T, TOL)
    assert_close(olsjax.linear_attention_matrix(j(q), j(k)), q @ k.T / N, TOL)


def test_causal_linear_attention_row_t_averages_the_first_t_keys(square_qkv):
    q, k, v = square_qkv
    out = np.asarray(olsjax.linear_attention(j(q), j(k), j(v), causal=True))
    expected = np.stack(
        [np.mean([(q[t] @ k[i]) * v[i] for i in range(t + 1)], axis=0) for t in range(N)]
    )
    assert_close(out, expected, TOL)


def test_causal_linear_attention_matrix_is_masked_and_row_normalised(square_qkv):
    q, k, _ = square_qkv
    a = np.asarray(olsjax.linear_attention_matrix(j(q), j(k), causal=True))
    expected = np.tril(q @ k.T) / np.arange(1, N + 1)[:, None]
    assert_close(a, expected, TOL)
    assert np.all(a[np.triu_indices(N, 1)] == 0)


@pytest.mark.parametrize(
    "fn",
    [
        lambda q, k, v: olsjax.linear_attention(q, k, v, causal=True),
        lambda q, k, v: olsjax.linear_attention_matrix(q, k, causal=True),
        lambda q, k, v: olsjax.softmax_attention(q, k, v, causal=True),
        lambda q, k, v: olsjax.softmax_attention_matrix(q, k, causal=True),
        lambda q, k, v: olsjax.softmax_scores(q, k, causal=True),
    ],
    ids=["linear", "linear_matrix", "softmax", "softmax_matrix", "softmax_scores"],
)
def test_causal_attention_needs_as_many_queries_as_keys(fn, qkv):
    q, k, v = qkv
    with pytest.raises(ValueError, match=r"causal attention needs as many queries as keys, got 5 queries and 8 keys"):
        fn(j(q), j(k), j(v))


# --- softmax --------------------------------------------------------------------------------


def test_softmax_default_scale_is_inverse_sqrt_d(qkv):
    q, k, v = qkv
    s = q @ k.T / np.sqrt(D)
    assert_close(olsjax.softmax_scores(j(q), j(k)), s, TOL)
    assert_close(olsjax.softmax_attention_matrix(j(q), j(k)), np_softmax(s), TOL)
    assert_close(olsjax.softmax_attention(j(q), j(k), j(v)), np_softmax(s) @ v, TOL)


def test_softmax_explicit_scale(qkv):
    q, k, v = qkv
    s = 0.7 * q @ k.T
    assert_close(olsjax.softmax_scores(j(q), j(k), scale=0.7), s, TOL)
    assert_close(olsjax.softmax_attention(j(q), j(k), j(v), scale=0.7), np_softmax(s) @ v, TOL)


def test_softmax_rows_are_probability_vectors(qkv):
    q, k, v = qkv
    a = np.asarray(olsjax.softmax_attention_matrix(j(3.0 * q), j(k)))
    assert np.all(a >= 0)
    # A sum of 8 entries in [0, 1]: a few ulps.
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=0, atol=1e-14)
    # Hence each output coordinate is a convex combination of the values' coordinates.
    out = np.asarray(olsjax.softmax_attention(j(3.0 * q), j(k), j(v)))
    # Rounding can push a convex combination out by a few ulps of max|v|.
    assert np.all(out <= v.max(axis=0) + 1e-14) and np.all(out >= v.min(axis=0) - 1e-14)


def test_causal_softmax_puts_no_weight_above_the_diagonal(square_qkv):
    q, k, v = square_qkv
    scores = np.asarray(olsjax.softmax_scores(j(q), j(k), causal=True))
    upper = np.triu_indices(N, 1)
    assert np.all(np.isneginf(scores[upper]))
    a = np.asarray(olsjax.softmax_attention_matrix(j(q), j(k), causal=True))
    assert np.all(a[upper] == 0)
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=0, atol=1e-14)  # a few ulps over ≤ 8 terms
    out = np.asarray(olsjax.softmax_attention(j(q), j(k), j(v), causal=True))
    expected = np.stack(
        [np_softmax(q[t] @ k[: t + 1].T / np.sqrt(D)) @ v[: t + 1] for t in range(N)]
    )
    assert_close(out, expected, TOL)
    # The first query sees only the first key: its output is exactly that value.
    np.testing.assert_array_equal(out[0], v[0])


# --- batches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_batched_attention_equals_a_loop(causal):
    q, k, v = gaussian(6, (BATCH, N, D)), gaussian(7, (BATCH, N, D)), gaussian(8, (BATCH, N, M))
    lin = np.asarray(olsjax.linear_attention(j(q), j(k), j(v), causal=causal))
    soft = np.asarray(olsjax.softmax_attention(j(q), j(k), j(v), causal=causal))
    assert lin.shape == soft.shape == (BATCH, N, M)
    mask = np.tril(np.ones((N, N))) if causal else np.ones((N, N))
    counts = mask.sum(axis=-1, keepdims=True)
    for b in range(BATCH):
        s = q[b] @ k[b].T
        assert_close(lin[b], (mask * s / counts) @ v[b], TOL)
        w = np.where(mask > 0, s / np.sqrt(D), -np.inf)
        assert_close(soft[b], np_softmax(w) @ v[b], TOL)


def test_batched_matrices_and_scores():
    q, k = gaussian(9, (BATCH, Q, D)), gaussian(10, (BATCH, N, D))
    lin = np.asarray(olsjax.linear_attention_matrix(j(q), j(k)))
    soft = np.asarray(olsjax.softmax_attention_matrix(j(q), j(k), scale=0.5))
    assert lin.shape == soft.shape == (BATCH, Q, N)
    for b in range(BATCH):
        assert_close(lin[b], q[b] @ k[b].T / N, TOL)
        assert_close(soft[b], np_softmax(0.5 * q[b] @ k[b].T), TOL)
