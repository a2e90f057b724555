"""Bad input to the second-stage functions: refused eagerly by name, NaN under ``jit``, never a wrong number.

Second stage: the attention layer (``linear_scores``, ``linear_attention_matrix``,
``linear_attention``, ``softmax_scores``, ``softmax_attention_matrix``,
``softmax_attention``) and the values-are-targets model (``regression_attention``,
``attention_matrix``, ``effective_weights``). Each table row is one function ×
one bad input → the exception type and the argument its message names. Also:
valid input (lists included) against numpy references, the softmax hard max
where the scores overflow, and ``jax.grad`` through both families.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax

from ._problems import BATCH, D, M, N, Q, assert_close, gaussian, j

K = 4  # hidden width of the hand-built RegressionAttention

# Products and sums of O(1) Gaussians with at most d·k·n ≈ 100 terms: a few ulps each,
# so 1e-13 relative catches a missing 1/n, bias or transpose by many orders.
TOL = 1e-13


def np_softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- the attention family, as uniform callables f(q, k, v) ------------------------------------


class Fn(NamedTuple):
    fn: Callable
    args: tuple[str, ...]  # the arguments it reads, of "q", "k", "v"
    reference: Callable  # numpy, unbatched (q, k, v) -> expected


def _causal_linear(q, k, v=None):
    a = np.tril(q @ k.T) / np.arange(1, len(q) + 1)[:, None]
    return a if v is None else a @ v


def _causal_softmax(q, k, v=None):
    s = np.where(np.tril(np.ones((len(q), len(k)))) > 0, q @ k.T / np.sqrt(q.shape[-1]), -np.inf)
    return np_softmax(s) if v is None else np_softmax(s) @ v


ATTENTION = {
    "linear_scores": Fn(lambda q, k, v: olsjax.linear_scores(q, k), ("q", "k"), lambda q, k, v: q @ k.T),
    "linear_attention_matrix": Fn(
        lambda q, k, v: olsjax.linear_attention_matrix(q, k), ("q", "k"), lambda q, k, v: q @ k.T / len(k)
    ),
    "linear_attention": Fn(olsjax.linear_attention, ("q", "k", "v"), lambda q, k, v: q @ k.T @ v / len(k)),
    "linear_attention_causal": Fn(
        lambda q, k, v: olsjax.linear_attention(q, k, v, causal=True), ("q", "k", "v"), _causal_linear
    ),
    "softmax_scores": Fn(
        lambda q, k, v: olsjax.softmax_scores(q, k, scale=0.7), ("q", "k"), lambda q, k, v: 0.7 * q @ k.T
    ),
    "softmax_attention_matrix": Fn(
        lambda q, k, v: olsjax.softmax_attention_matrix(q, k), ("q", "k"),
        lambda q, k, v: np_softmax(q @ k.T / np.sqrt(q.shape[-1])),
    ),
    "softmax_attention_matrix_causal": Fn(
        lambda q, k, v: olsjax.softmax_attention_matrix(q, k, causal=True), ("q", "k"),
        lambda q, k, v: _causal_softmax(q, k),
    ),
    "softmax_attention": Fn(
        olsjax.softmax_attention, ("q", "k", "v"), lambda q, k, v: np_softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v
    ),
    "softmax_attention_causal": Fn(
        lambda q, k, v: olsjax.softmax_attention(q, k, v, causal=True), ("q", "k", "v"), _causal_softmax
    ),
}
def _causal(name: str) -> bool:
    return name.endswith("causal")


def qkv(name: str, batch: tuple[int, ...] = (), dtype=np.float64):
    """Valid operands for ``name``: square (N queries) for the causal forms."""
    nq = N if _causal(name) else Q
    return (gaussian(40, (*batch, nq, D), dtype), gaussian(41, (*batch, N, D), dtype),
            gaussian(42, (*batch, N, M), dtype))


def _poke(a: np.ndarray, value: float, count: int = 1) -> np.ndarray:
    a = a.copy()
    a.reshape(-1)[:count] = value
    return a


# One bad input: (argument it names, a function (q, k, v) -> bad (q, k, v), exception, match).
class Bad(NamedTuple):
    arg: str
    make: Callable
    error: type
    match: str


def _replace(**changes):
    def make(q, k, v):
        ops = {"q": q, "k": k, "v": v}
        return tuple(change(ops) if (change := changes.get(n)) else ops[n] for n in ("q", "k", "v"))

    return make


BAD_QKV = {
    "nan_q": Bad("q", _replace(q=lambda o: _poke(o["q"], np.nan, 3)), ValueError,
                 r"^q contains 3 NaN or infinite entries"),
    "inf_k": Bad("k", _replace(k=lambda o: _poke(o["k"], np.inf)), ValueError, r"^k contains 1 NaN or infinite"),
    "neg_inf_k": Bad("k", _replace(k=lambda o: _poke(o["k"], -np.inf)), ValueError, r"^k contains 1 NaN"),
    "nan_v": Bad("v", _replace(v=lambda o: _poke(o["v"], np.nan)), ValueError, r"^v contains 1 NaN or infinite"),
    "int8_q": Bad("q", _replace(q=lambda o: o["q"].astype(np.int8)), TypeError, r"^q must be a float32 or float64"),
    "bool_k": Bad("k", _replace(k=lambda o: o["k"] > 0), TypeError, r"^k must be a float32 or float64.*bool"),
    "complex_v": Bad("v", _replace(v=lambda o: o["v"].astype(np.complex128)), TypeError,
                     r"^v must be a float32 or float64.*complex128"),
    "float16_q": Bad("q", _replace(q=lambda o: o["q"].astype(np.float16)), TypeError, r"^q must be .*float16"),
    "bfloat16_k": Bad("k", _replace(k=lambda o: jnp.asarray(o["k"], jnp.bfloat16)), TypeError,
                      r"^k must be .*bfloat16"),
    "float32_q": Bad("q", _replace(q=lambda o: o["q"].astype(np.float32)), TypeError,
                     r"^q and k must have the same dtype, got float32 and float64"),
    "float32_v": Bad("v", _replace(v=lambda o: o["v"].astype(np.float32)), TypeError,
                     r"^v and k must have the same dtype"),
    "width_k": Bad("k", _replace(k=lambda o: np.ones((N, D + 1))), ValueError,
                   r"^q and k must have the same width d: q has shape \(\d+, 3\), k has shape \(8, 4\)"),
    "rows_v": Bad("v", _replace(v=lambda o: o["v"][:-1]), ValueError,
                  r"^k and v must agree on batch dimensions and n.*k has shape \(8, 3\), v has shape \(7, 2\)"),
    "batch_k": Bad("k", _replace(k=lambda o: np.ones((BATCH, N, D))), ValueError,
                   r"^q and k must have the same leading batch dimensions.*k has shape \(2, 8, 3\)"),
    "batch_v": Bad("v", _replace(v=lambda o: np.ones((BATCH, N, M))), ValueError,
                   r"^k and v must agree on batch dimensions.*v has shape \(2, 8, 2\)"),
    "empty_k": Bad("k", _replace(k=lambda o: o["k"][:0], v=lambda o: o["v"][:0]), ValueError,
                   r"^k must not be empty, got shape \(0, 3\)"),
    "no_queries": Bad("q", _replace(q=lambda o: o["q"][:0]), ValueError, r"^q must not be empty"),
    "vector_q": Bad("q", _replace(q=lambda o: o["q"][0]), ValueError, r"^q must have at least 2 dimensions"),
}


# Every row applies to every function that reads the argument, causal forms included: each
# shape check comes before the causal one's query/key count.
ATTENTION_CASES = [(name, bad) for name in ATTENTION for bad in BAD_QKV if BAD_QKV[bad].arg in ATTENTION[name].args]


@pytest.mark.parametrize(("name", "bad"), ATTENTION_CASES)
def test_attention_refuses_bad_input_by_name(name, bad):
    case = BAD_QKV[bad]
    with pytest.raises(case.error, match=case.match):
        ATTENTION[name].fn(*case.make(*qkv(name)))


SCALED = {
    "softmax_scores": lambda q, k, v, **kw: olsjax.softmax_scores(q, k, **kw),
    "softmax_attention_matrix": lambda q, k, v, **kw: olsjax.softmax_attention_matrix(q, k, **kw),
    "softmax_attention": olsjax.softmax_attention,
}


@pytest.mark.parametrize("name", list(SCALED))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    ("scale", "error", "match"),
    [(np.nan, ValueError, r"^scale must be finite, got nan"),
     (np.inf, ValueError, r"^scale must be finite, got inf"),
     (-np.inf, ValueError, r"^scale must be finite"),
     (1j, TypeError, r"^scale must be a real number"),
     (np.complex128(2.0), TypeError, r"^scale must be a real number")],
)
def test_softmax_refuses_a_bad_scale(name, causal, scale, error, match):
    q, k, v = qkv("softmax_attention_causal" if causal else "softmax_attention")
    with pytest.raises(error, match=match):
        SCALED[name](q, k, v, scale=scale, causal=causal)


@pytest.mark.parametrize(("name", "arg"), [(n, a) for n, f in ATTENTION.items() for a in f.args])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_under_jit_non_finite_input_gives_non_finite_output(name, arg, value):
    ops = dict(zip("qkv", qkv(name)))
    ops[arg] = _poke(ops[arg], value)
    out = np.asarray(jax.jit(ATTENTION[name].fn)(*map(j, ops.values())))
    if value != value:  # NaN reaches the output as NaN, whichever function
        assert np.isnan(out).any()
    else:  # inf: inf or NaN (0·inf) through products; softmax weights are poisoned with NaN
        assert not np.isfinite(out).all()
        if name.startswith("softmax") and name != "softmax_scores" and arg != "v":
            assert np.isnan(out).any()


def test_softmax_poisons_inf_keys_that_would_only_get_weight_zero():
    # k[0] = -inf·e₀ gives score -inf (weight 0) for queries with q₀ > 0: a finite wrong answer
    # if not poisoned. Eagerly: refused by name; under jit: NaN.
    q, k, v = np.abs(gaussian(43, (Q, D))) + 0.1, gaussian(44, (N, D)), gaussian(45, (N, M))
    k[0, 0] = -np.inf
    with pytest.raises(ValueError, match=r"^k contains 1 NaN or infinite entries"):
        olsjax.softmax_attention(q, k, v)
    assert np.isnan(np.asarray(jax.jit(olsjax.softmax_attention)(j(q), j(k), j(v)))).all()


def test_traced_scale_passes_through_and_nan_scale_gives_nan():
    q, k, v = qkv("softmax_attention")
    f = jax.jit(lambda s: olsjax.softmax_attention(q, k, v, scale=s))
    assert_close(f(0.7), np_softmax(0.7 * q @ k.T) @ v, TOL)
    assert np.isnan(np.asarray(f(np.nan))).all()
    assert np.isnan(np.asarray(f(np.inf))).all()


@pytest.mark.parametrize("name", ["linear_scores", "linear_attention", "softmax_scores"])
def test_overflow_with_finite_input_is_refused(name):
    q, k, v = qkv(name)
    with pytest.raises(ValueError, match=r"overflowed although every input is finite"):
        ATTENTION[name].fn(q * 1e160, k * 1e160, v)


# --- valid input against numpy ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(ATTENTION))
def test_attention_matches_numpy(name):
    q, k, v = qkv(name)
    assert_close(ATTENTION[name].fn(j(q), j(k), j(v)), ATTENTION[name].reference(q, k, v), TOL)


@pytest.mark.parametrize("name", list(ATTENTION))
def test_lists_and_numpy_arrays_are_accepted_like_jax_arrays(name):
    q, k, v = qkv(name)
    expected = np.asarray(ATTENTION[name].fn(j(q), j(k), j(v)))
    # Same program on the same numbers: identical bits.
    np.testing.assert_array_equal(ATTENTION[name].fn(q, k, v), expected)
    np.testing.assert_array_equal(ATTENTION[name].fn(q.tolist(), k.tolist(), v.tolist()), expected)


@pytest.mark.parametrize("name", list(ATTENTION))
def test_leading_batch_dimensions_match_a_loop(name):
    q, k, v = qkv(name, batch=(BATCH,))
    out = np.asarray(ATTENTION[name].fn(j(q), j(k), j(v)))
    for b in range(BATCH):
        assert_close(out[b], ATTENTION[name].reference(q[b], k[b], v[b]), TOL)


def test_float32_softmax_attention():
    q, k, v = qkv("softmax_attention", dtype=np.float32)
    out = olsjax.softmax_attention(q, k, v)
    assert out.dtype == np.float32
    expected = ATTENTION["softmax_attention"].reference(*(a.astype(np.float64) for a in (q, k, v)))
    # u₃₂ = 6e-8 times a d = 3 product, the exp and an n = 8 average: ≲ 1e-6.
    assert_close(np.asarray(out, np.float64), expected, 1e-5)


# --- softmax where the scores overflow: the exact hard max ------------------------------------


@pytest.mark.parametrize(("dtype", "big"), [(np.float64, 1e160), (np.float32, 1e20)])
def test_softmax_is_the_exact_hard_max_where_scores_overflow(dtype, big):
    # Scores (·big²/√2) overflow: row 0 is (1, 3, 0, 3) — keys 0, 1, 3 all overflow to +inf,
    # but only 1 and 3 attain the maximum: half each. Row 1: key 2 alone. Row 2: (-1, -3, 0, -3),
    # a finite maximum 0 with the rest overflowing to -inf: key 2 alone.
    q = np.array([[1, 0], [0, 1], [-1, 0]], dtype) * dtype(big)
    k = np.array([[1, 0], [3, 0], [0, 2], [3, 0]], dtype) * dtype(big)
    v = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype)
    expected = np.array([[0, 0.5, 0, 0.5], [0, 0, 1, 0], [0, 0, 1, 0]], dtype)
    with np.errstate(over="ignore"):
        assert np.isinf(q @ k.T).any()  # the direct scores overflow
    np.testing.assert_array_equal(olsjax.softmax_attention_matrix(q, k), expected)
    np.testing.assert_array_equal(jax.jit(olsjax.softmax_attention_matrix)(j(q), j(k)), expected)
    # Halves of small integers: exact in either dtype.
    np.testing.assert_array_equal(olsjax.softmax_attention(q, k, v), expected @ v)
    with pytest.raises(ValueError, match=r"overflowed"):  # the scores themselves are out of range
        olsjax.softmax_scores(q, k)


def test_causal_softmax_hard_max_keeps_the_mask():
    big = 1e160
    q = np.array([[1, 0], [0, 1], [1, 1]]) * big
    k = np.array([[2, 0], [1, 0], [1, 1]]) * big
    # Row 0 sees key 0 only; row 1 sees (0, 0): a tie at a finite maximum; row 2 sees (2, 1, 2).
    expected = np.array([[1, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    np.testing.assert_array_equal(olsjax.softmax_attention_matrix(q, k, causal=True), expected)


def test_huge_scale_is_a_hard_max_and_tiny_scale_is_uniform():
    q, k, _ = qkv("softmax_attention_matrix")
    s = q @ k.T
    hard = (s == s.max(axis=-1, keepdims=True)).astype(float)
    np.testing.assert_array_equal(olsjax.softmax_attention_matrix(q, k, scale=1e300), hard)
    np.testing.assert_array_equal(olsjax.softmax_attention_matrix(q, k, scale=-1e300),
                                  (s == s.min(axis=-1, keepdims=True)).astype(float))
    # exp(±1e-300·s) rounds to 1: exactly uniform.
    np.testing.assert_array_equal(olsjax.softmax_attention_matrix(q, k, scale=1e-300), np.full(s.shape, 1 / N))
    np.testing.assert_array_equal(olsjax.softmax_attention_matrix(q, k, scale=0.0), np.full(s.shape, 1 / N))


# --- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_grad_through_softmax_attention(causal):
    q, k, v = qkv("softmax_attention_causal" if causal else "softmax_attention")
    g, s = gaussian(46, (len(q), M)), 0.7

    def loss(q, k, v, s):
        return jnp.sum(j(g) * olsjax.softmax_attention(q, k, v, scale=s, causal=causal))

    dq, dk, dv, ds = jax.grad(loss, argnums=(0, 1, 2, 3))(j(q), j(k), j(v), s)
    # Analytic: A = softmax(S), S = s·QKᵀ (masked); dA = G Vᵀ; dS = A ⊙ (dA − rowsum(A ⊙ dA)).
    mask = np.tril(np.ones((len(q), N))) > 0 if causal else np.ones((len(q), N), bool)
    a = np_softmax(np.where(mask, s * q @ k.T, -np.inf))
    da = g @ v.T
    dscores = a * (da - np.sum(a * da, axis=-1, keepdims=True))
    # A few ulps per product over d, n ≤ 8 terms.
    assert_close(dq, s * dscores @ k, TOL)
    assert_close(dk, s * dscores.T @ q, TOL)
    assert_close(dv, a.T @ g, TOL)
    assert_close(ds, np.sum(dscores * (q @ k.T)), TOL)


def test_grad_through_regression_attention():
    params, xs, x, y = regression_problem()
    g = gaussian(47, (Q, M))

    def loss(params, xs):
        return jnp.sum(j(g) * olsjax.regression_attention(params, xs, j(x), j(y)))

    dparams, dxs = jax.grad(loss, argnums=(0, 1))(params, j(xs))
    w_q, w_k, b_k = (np.asarray(a) for a in (params.w_q, params.w_k, params.b_k))
    memory = (x @ w_k + b_k).T @ y / N  # out = (X* W_Q + b_q) M + mean(Y)
    # A few ulps over products of ≤ d·k·n terms.
    assert_close(dxs, g @ memory.T @ w_q.T, TOL)
    assert_close(dparams.w_q, xs.T @ g @ memory.T, TOL)
    assert_close(dparams.b_q, np.sum(g @ memory.T, axis=0), TOL)


# --- the values-are-targets family: f(params, queries, context, targets) ----------------------


def regression_problem(batch: tuple[int, ...] = (), dtype=np.float64):
    """Gaussian ``RegressionAttention`` (biases, intercept) and Gaussian tokens: not a construction."""
    w = lambda i, *shape: jnp.asarray(gaussian(50 + i, shape, dtype))  # noqa: E731
    params = olsjax.RegressionAttention(w_q=w(0, D, K), w_k=w(1, D, K), b_q=w(2, K), b_k=w(3, K), intercept=True)
    return (params, gaussian(54, (*batch, Q, D), dtype), gaussian(55, (*batch, N, D), dtype),
            gaussian(56, (*batch, N, M), dtype))


def np_regression(params, xs, x, y) -> dict[str, np.ndarray]:
    """The three outputs for unbatched tokens, in numpy."""
    w_q, w_k, b_q, b_k = (np.asarray(getattr(params, f)) for f in ("w_q", "w_k", "b_q", "b_k"))
    keys = x @ w_k + b_k
    return {
        "regression_attention": (xs @ w_q + b_q) @ keys.T @ y / len(x) + y.mean(axis=0),
        "attention_matrix": (xs @ w_q + b_q) @ keys.T / len(x),
        "effective_weights": w_q @ keys.T @ y / len(x),
    }


MODEL = {
    "regression_attention": Fn(olsjax.regression_attention, ("params", "queries", "context", "targets"), None),
    "attention_matrix": Fn(lambda p, xs, x, y: olsjax.attention_matrix(p, xs, x), ("params", "queries", "context"), None),
    "effective_weights": Fn(lambda p, xs, x, y: olsjax.effective_weights(p, x, y), ("params", "context", "targets"), None),
}


def _tokens(**changes):
    def make(params, xs, x, y):
        ops = {"params": params, "queries": xs, "context": x, "targets": y}
        return tuple(change(ops) if (change := changes.get(n)) else ops[n] for n in ops)

    return make


def _params(**leaves):
    return lambda o: olsjax.RegressionAttention(**{
        "w_q": o["params"].w_q, "w_k": o["params"].w_k, "b_q": o["params"].b_q, "b_k": o["params"].b_k,
        "intercept": True, **leaves})


BAD_TOKENS = {
    "nan_queries": Bad("queries", _tokens(queries=lambda o: _poke(o["queries"], np.nan, 2)), ValueError,
                       r"^queries contains 2 NaN or infinite entries"),
    "inf_context": Bad("context", _tokens(context=lambda o: _poke(o["context"], np.inf)), ValueError,
                       r"^context contains 1 NaN or infinite entries"),
    "nan_targets": Bad("targets", _tokens(targets=lambda o: _poke(o["targets"], np.nan)), ValueError,
                       r"^targets contains 1 NaN or infinite entries"),
    "nan_w_k": Bad("params", _tokens(params=_params(w_k=jnp.asarray(_poke(gaussian(51, (D, K)), np.nan)))),
                   ValueError, r"^params.w_k contains 1 NaN or infinite entries"),
    "int8_queries": Bad("queries", _tokens(queries=lambda o: o["queries"].astype(np.int8)), TypeError,
                        r"^queries must be a float32 or float64"),
    "bool_context": Bad("context", _tokens(context=lambda o: o["context"] > 0), TypeError,
                        r"^context must be a float32 or float64.*bool"),
    "complex_targets": Bad("targets", _tokens(targets=lambda o: o["targets"] + 0j), TypeError,
                           r"^targets must be a float32 or float64.*complex128"),
    "float32_context": Bad("context", _tokens(context=lambda o: o["context"].astype(np.float32)), TypeError,
                           r"^context and params must have the same dtype"),
    "float32_targets": Bad("targets", _tokens(targets=lambda o: o["targets"].astype(np.float32)), TypeError,
                           r"^targets and context must have the same dtype"),
    "width_queries": Bad("queries", _tokens(queries=lambda o: np.ones((Q, D + 1))), ValueError,
                         r"^queries must have 3 columns \(params' d\), got shape \(5, 4\)"),
    "width_context": Bad("context", _tokens(context=lambda o: np.ones((N, D - 1))), ValueError,
                         r"^context must have 3 columns \(params' d\), got shape \(8, 2\)"),
    "rows_targets": Bad("targets", _tokens(targets=lambda o: o["targets"][:-1]), ValueError,
                        r"^targets must have shape \(\.\.\., n, m\) or \(\.\.\., n\) matching context \(8, 3\)"),
    "batch_targets": Bad("targets", _tokens(targets=lambda o: np.ones((BATCH, N, M))), ValueError,
                         r"^targets must have shape .* matching context \(8, 3\), got \(2, 8, 2\)"),
    "batch_queries": Bad("queries", _tokens(queries=lambda o: np.ones((BATCH, Q, D)),
                                            context=lambda o: np.ones((BATCH + 1, N, D)),
                                            targets=lambda o: np.ones((BATCH + 1, N, M))), ValueError,
                         r"^queries, context and params must have broadcastable leading batch dimensions"),
    "empty_context": Bad("context", _tokens(context=lambda o: o["context"][:0], targets=lambda o: o["targets"][:0]),
                         ValueError, r"^context must not be empty, got shape \(0, 3\)"),
    "no_queries": Bad("queries", _tokens(queries=lambda o: o["queries"][:0]), ValueError,
                      r"^queries must not be empty"),
    "w_k_shape": Bad("params", _tokens(params=_params(w_k=jnp.ones((D, K + 1)))), ValueError,
                     r"^params.w_q and params.w_k must both be \(d, k\), got shapes \(3, 4\) and \(3, 5\)"),
    "not_params": Bad("params", _tokens(params=lambda o: "weights"), TypeError, r"params"),
}

MODEL_CASES = [(name, bad) for name in MODEL for bad in BAD_TOKENS if BAD_TOKENS[bad].arg in MODEL[name].args]


@pytest.mark.parametrize(("name", "bad"), MODEL_CASES)
def test_model_refuses_bad_input_by_name(name, bad):
    case = BAD_TOKENS[bad]
    with pytest.raises(case.error, match=case.match):
        MODEL[name].fn(*case.make(*regression_problem()))


@pytest.mark.parametrize(("name", "arg"), [(n, a) for n, f in MODEL.items() for a in f.args if a != "params"])
def test_model_under_jit_nan_input_gives_nan_output(name, arg):
    params, *tokens = regression_problem()
    ops = dict(zip(("queries", "context", "targets"), tokens))
    ops[arg] = _poke(ops[arg], np.nan)
    out = jax.jit(MODEL[name].fn)(params, *map(j, ops.values()))
    assert np.isnan(np.asarray(out)).any()


@pytest.mark.parametrize("name", list(MODEL))
def test_model_matches_numpy(name):
    params, xs, x, y = regression_problem()
    expected = np_regression(params, xs, x, y)[name]
    assert_close(MODEL[name].fn(params, j(xs), j(x), j(y)), expected, TOL)
    # Lists read as numpy reads them: the same numbers, the same program.
    np.testing.assert_array_equal(
        MODEL[name].fn(params, xs.tolist(), x.tolist(), y.tolist()), MODEL[name].fn(params, xs, x, y)
    )


@pytest.mark.parametrize("name", ["regression_attention", "attention_matrix"])
def test_one_set_of_queries_against_a_batch_of_contexts(name):
    params, xs, x, y = regression_problem(batch=(BATCH,))
    out = np.asarray(MODEL[name].fn(params, j(xs[0]), j(x), j(y)))  # unbatched queries broadcast
    for b in range(BATCH):
        assert_close(out[b], np_regression(params, xs[0], x[b], y[b])[name], TOL)


def test_float32_regression_attention():
    params, xs, x, y = regression_problem(dtype=np.float32)
    out = olsjax.regression_attention(params, xs, x, y)
    assert out.dtype == np.float32
    as64 = olsjax.RegressionAttention(**{f: jnp.asarray(getattr(params, f), jnp.float64)
                                         for f in ("w_q", "w_k", "b_q", "b_k")}, intercept=True)
    expected = np_regression(as64, *(a.astype(np.float64) for a in (xs, x, y)))["regression_attention"]
    # u₃₂ = 6e-8 over sums of ≤ d·k·n ≈ 100 O(1) products, with cancellation: ≲ 1e-5.
    assert_close(np.asarray(out, np.float64), expected, 1e-4)
