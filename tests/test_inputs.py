"""Bad input to the data-taking entry points: a clear, eager error naming the argument.

Entry points: ``lstsq``, ``construct_ols`` (take ``X`` and ``Y``) and
``hat_matrix``, ``construct_regression_attention``, ``condition_number`` (take
``X`` only). Also: under ``jit`` a rank-deficient problem yields NaN, never a
finite wrong answer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax
from olsjax import testing
from olsjax._ranges import one_layer_limit

from ._problems import (
    BATCH,
    D,
    M,
    N,
    Q,
    SOLVE_ROUTES,
    WHITEN_ROUTES,
    assert_close,
    duplicated_column,
    targets,
    well_conditioned,
)

# --- the entry points, as uniform callables -------------------------------------------------


def _lstsq(x, y, **kw):
    return olsjax.lstsq(x, y, **kw)


def _construct_ols(x, y, **kw):
    return olsjax.construct_ols(x, y, **kw)


def _hat(x, y, **kw):
    return olsjax.hat_matrix(x, **kw)


def _regression_attention(x, y, **kw):
    return olsjax.construct_regression_attention(x, **kw)


def _condition(x, y, **kw):
    assert not kw
    return olsjax.condition_number(x)


XY = {"lstsq": _lstsq, "construct_ols": _construct_ols}
X_ONLY = {
    "hat_matrix": _hat,
    "construct_regression_attention": _regression_attention,
    "condition_number": _condition,
}
ALL = {**XY, **X_ONLY}
#: Entry points with ridge/rcond options and a full-rank requirement.
SOLVERS = {k: v for k, v in ALL.items() if k != "condition_number"}

all_entries = pytest.mark.parametrize("entry", list(ALL))
xy_entries = pytest.mark.parametrize("entry", list(XY))
solver_entries = pytest.mark.parametrize("entry", list(SOLVERS))


@pytest.fixture(scope="module")
def x():
    return well_conditioned(0)


@pytest.fixture(scope="module")
def y():
    return targets(0)


# --- shapes ---------------------------------------------------------------------------------


@xy_entries
@pytest.mark.parametrize("y_shape", [(N - 1, M), (N - 1,), (N + 1, M)])
def test_rows_of_x_and_y_must_match(entry, x, y_shape):
    y = np.ones(y_shape)
    with pytest.raises(ValueError, match=r"X and Y must agree on batch dimensions and n.*X has shape \(8, 3\)"):
        XY[entry](x, y)


@xy_entries
def test_batch_dimensions_must_match(entry):
    x = well_conditioned(1, batch=(BATCH,))
    y = targets(1, batch=(BATCH + 1,))
    with pytest.raises(ValueError, match=r"agree on batch dimensions.*\(2, 8, 3\).*\(3, 8, 2\)"):
        XY[entry](x, y)


@xy_entries
def test_unbatched_y_is_not_broadcast_over_a_batch_of_x(entry, y):
    # (n, m) targets next to (b, n, d) designs look like a batch of vectors: refused, not broadcast.
    with pytest.raises(ValueError, match=r"X and Y must agree"):
        XY[entry](well_conditioned(1, batch=(BATCH,)), y)


@xy_entries
def test_y_with_extra_dimensions_is_refused(entry, x):
    with pytest.raises(ValueError, match=r"Y must have shape \(\.\.\., n, m\) or \(\.\.\., n\)"):
        XY[entry](x, np.ones((BATCH, BATCH, N, M)))


@all_entries
@pytest.mark.parametrize("shape", [(N,), ()])
def test_x_needs_two_dimensions(entry, shape, y):
    with pytest.raises(ValueError, match=r"X must have at least 2 dimensions, got shape"):
        ALL[entry](np.ones(shape), y)


@xy_entries
def test_scalar_y_is_refused(entry, x):
    with pytest.raises(ValueError, match=r"Y must have at least 1 dimensions"):
        XY[entry](x, np.float64(1.0))


@all_entries
@pytest.mark.parametrize("shape", [(0, D), (N, 0), (0, 0)])
def test_empty_x_is_refused(entry, shape):
    with pytest.raises(ValueError, match=r"X must not be empty, got shape"):
        ALL[entry](np.ones(shape), np.ones((shape[0], M)))


@xy_entries
@pytest.mark.parametrize("shape", [(N, 0), (0,)])
def test_empty_y_is_refused(entry, x, shape):
    x = x if shape[0] else np.ones((0, D))
    name = "Y" if shape[0] else "X"  # with n = 0 the design is already empty and is named first
    with pytest.raises(ValueError, match=rf"{name} must not be empty"):
        XY[entry](x, np.ones(shape))


# --- values ---------------------------------------------------------------------------------


@all_entries
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_is_refused(entry, bad, x, y):
    x = x.copy()
    x[3, 1] = bad
    with pytest.raises(ValueError, match=r"X contains 1 NaN or infinite entries"):
        ALL[entry](x, y)


@xy_entries
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y_is_refused(entry, bad, x, y):
    y = y.copy()
    y[0, 0] = y[5, 1] = bad
    with pytest.raises(ValueError, match=r"Y contains 2 NaN or infinite entries"):
        XY[entry](x, y)


@xy_entries
def test_non_finite_vector_y_is_refused(entry, x):
    y = targets(0, m=None)
    y[2] = np.nan
    with pytest.raises(ValueError, match=r"Y contains 1 NaN"):
        XY[entry](x, y)


# --- dtypes ---------------------------------------------------------------------------------


@all_entries
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex128])
def test_non_real_float_x_is_a_type_error(entry, dtype, x, y):
    with pytest.raises(TypeError, match=r"X must be a float32 or float64 array, got dtype"):
        ALL[entry](x.astype(dtype), y)


@xy_entries
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_non_float_y_is_a_type_error(entry, dtype, x, y):
    with pytest.raises(TypeError, match=r"Y must be a float32 or float64 array, got dtype"):
        XY[entry](x, y.astype(dtype))


@xy_entries
@pytest.mark.parametrize(
    ("x_dtype", "y_dtype"), [(np.float32, np.float64), (np.float64, np.float32)]
)
def test_mixed_float_precisions_are_a_type_error(entry, x_dtype, y_dtype, x, y):
    pattern = rf"X and Y must have the same dtype, got {np.dtype(x_dtype)} and {np.dtype(y_dtype)}"
    with pytest.raises(TypeError, match=pattern):
        XY[entry](x.astype(x_dtype), y.astype(y_dtype))


@xy_entries
def test_dtype_and_shape_checks_also_fire_while_tracing(entry, x, y):
    # Shapes and dtypes are static, so the errors must come before any computation under jit too.
    fn = jax.jit(lambda a, b: XY[entry](a, b))
    with pytest.raises(TypeError, match=r"X and Y must have the same dtype"):
        fn(x.astype(np.float32), y)
    with pytest.raises(ValueError, match=r"X and Y must agree"):
        fn(x, y[:-1])


# --- rank ------------------------------------------------------------------------------------


@solver_entries
def test_fewer_rows_than_columns_needs_rcond(entry):
    x = well_conditioned(2).T.copy()  # (3, 8): n < d
    with pytest.raises(ValueError, match=r"X has n=3 rows and d=8 columns.*pass rcond"):
        SOLVERS[entry](x, targets(2, n=D))


def _routes(entry: str):
    names = ("auto", *(SOLVE_ROUTES if entry == "lstsq" else WHITEN_ROUTES))
    return [pytest.param(entry, name, id=f"{entry}-{name}") for name in names]


@pytest.mark.parametrize(
    ("entry", "route"),
    # construct_regression_attention shares whiten and the rank test with construct_ols:
    # one Gram, one orthogonal and the cholesky route (NaN on failure) suffice there.
    _routes("lstsq") + _routes("construct_ols")
    + [p for p in _routes("construct_regression_attention") if p.values[1] in ("eigh", "qr", "cholesky")]
    + [pytest.param("hat_matrix", None, id="hat_matrix")],
)
def test_exactly_rank_deficient_x_without_rcond_is_refused(entry, route):
    x = duplicated_column(3)  # (8, 4), rank 3
    kw = {} if route is None else {"route": route}
    try:
        SOLVERS[entry](x, targets(3), **kw)
    except ValueError as err:
        assert "X is rank-deficient" in str(err)
        # Cholesky of a singular Gram matrix (the first pass of both Cholesky routes) may
        # break down before a rank can be read off.
        assert "numerical rank 3 < d=4" in str(err) or (
            route in ("cholesky", "cholqr2") and "factorisation broke down" in str(err)
        )
        assert "rcond" in str(err)
    else:
        raise AssertionError(f"{entry}({route}) accepted a rank-deficient X without rcond")


def _numerically_singular() -> np.ndarray:
    """``X = Q R`` with ``R = [[1, 1e6, 0], [0, 1, 1e6], [0, 0, 1]]``: κ ≈ 1e18, numerical rank 2.

    Every diagonal entry of ``R`` is 1, so nothing on the diagonal of an unpivoted QR or
    Cholesky factor reveals that ``X`` is singular to working precision: the routes
    must look at the factor's singular values. Its columns differ in norm by 1e6:
    equilibrated, ``κ(X D⁻¹) ≈ 1e12`` and it is no longer singular.
    """
    q, _ = np.linalg.qr(np.random.default_rng(9).standard_normal((N, D)))
    return q @ np.array([[1.0, 1e6, 0.0], [0.0, 1.0, 1e6], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    ("entry", "route"),
    _routes("lstsq") + _routes("construct_ols")
    + [pytest.param("hat_matrix", None, id="hat_matrix")],
)
def test_numerically_singular_x_is_refused_by_every_route(entry, route):
    x = _numerically_singular()
    assert np.linalg.matrix_rank(x) == D - 1  # numpy agrees it is singular to working precision
    kw = {} if route is None else {"route": route}
    kw["equilibrate"] = False  # the raw X is what is singular (every route equilibrates, "lstsq" too)
    try:
        SOLVERS[entry](x, targets(9), **kw)
    except ValueError as err:
        assert "X is rank-deficient" in str(err)
    else:
        raise AssertionError(f"{entry}({route}) accepted a numerically singular X (κ ≈ 1e18)")


@pytest.mark.parametrize("route", ["auto", "qr", "svd"])
def test_equilibration_solves_the_badly_scaled_singular_looking_x(route):
    x, y = _numerically_singular(), targets(9)
    scaled = x / np.abs(x).max(axis=0)
    kappa = float(np.linalg.cond(scaled))
    assert 1e11 < kappa < 1e13 < np.linalg.cond(x)  # the premise: equilibration rescues it
    beta = olsjax.lstsq(x, y, route=route)
    # QR/SVD of the scaled X: c·u·κ(X D⁻¹), plus the residual term (targets are not an exact fit).
    testing.assert_within_bound(
        beta, testing.exact_lstsq(x, y), kappa=kappa, p=1, tan_theta=testing.tan_theta(scaled, y)
    )
    with pytest.raises(ValueError, match="rank-deficient"):
        olsjax.lstsq(x, y, route="cholesky")  # a Gram route still cannot resolve κ ≈ 1e12


def _good_and_deficient():
    """A batch of two (8, 4) designs: a full-rank one (κ ≈ 2.7) and one with a duplicated column."""
    good = np.concatenate([well_conditioned(4), well_conditioned(5)[:, :1]], axis=1)
    return np.stack([good, duplicated_column(4)]), targets(4, batch=(BATCH,))


def test_one_deficient_batch_entry_is_enough_to_refuse():
    x, y = _good_and_deficient()
    with pytest.raises(ValueError, match=r"X is rank-deficient.*numerical rank 3 < d=4"):
        olsjax.lstsq(x, y)


# --- options --------------------------------------------------------------------------------


# ``route`` is annotated ``Route | str``, so the jaxtyping import hook (pyproject addopts) lets
# any string through and the library's own ValueError is what users and tests see alike.


@solver_entries
@pytest.mark.parametrize("bad", ["lu", "pca", "Auto", "cholesky "])
def test_unknown_route_is_refused(entry, bad, x, y):
    with pytest.raises((TypeError, ValueError), match=r"route must be a Route object or one of 'auto', 'cholesky', .*; got"):
        SOLVERS[entry](x, y, route=bad)


@pytest.mark.parametrize("entry", ["construct_ols", "construct_regression_attention", "hat_matrix"])
def test_the_solve_only_route_cannot_whiten(entry, x, y):
    with pytest.raises(ValueError, match=r"route 'lstsq' builds no whitening factor"):
        SOLVERS[entry](x, y, route="lstsq")


@pytest.mark.parametrize("old", ["method", "factor"])
def test_the_0_1_keywords_are_gone(old, x, y):
    with pytest.raises(TypeError, match=old):
        olsjax.lstsq(x, y, **{old: "qr"})
    with pytest.raises(TypeError, match=old):
        olsjax.construct_ols(x, y, **{old: "qr"})


@solver_entries
@pytest.mark.parametrize("ridge", [-1.0, -1e-300, np.nan, np.inf])
def test_ridge_must_be_finite_and_non_negative(entry, ridge, x, y):
    with pytest.raises(ValueError, match=r"ridge must be finite and >= 0, got"):
        SOLVERS[entry](x, y, ridge=ridge)


@solver_entries
@pytest.mark.parametrize("rcond", [-0.1, 1.0, 2.0, np.nan])
def test_rcond_must_lie_in_unit_interval(entry, rcond, x, y):
    with pytest.raises(ValueError, match=r"rcond must be None or in \[0, 1\), got"):
        SOLVERS[entry](x, y, rcond=rcond)


@pytest.mark.parametrize(
    ("entry", "route"),
    [("lstsq", "qr"), ("lstsq", "cholesky"), ("construct_ols", "qr"), ("construct_ols", "cholesky"),
     ("construct_regression_attention", "qr"), ("construct_regression_attention", "cholesky")],
)
def test_rcond_needs_a_route_that_can_pseudo_invert(entry, route, x, y):
    kw = {"route": route}
    with pytest.raises(ValueError, match=rf"rcond \(minimum-norm solution\) needs a route that pseudo-inverts.*'{route}' cannot"):
        SOLVERS[entry](x, y, rcond=1e-6, **kw)


@solver_entries
def test_ridge_as_a_tracer_is_honoured(entry, x, y):
    # Since 0.2 ridge is traced (only its presence is static): a jitted ridge is the eager one.
    eager = SOLVERS[entry](x, y, ridge=0.5)
    jitted = jax.jit(lambda r: SOLVERS[entry](x, y, ridge=r))(0.5)
    assert jax.tree_util.tree_structure(jitted) == jax.tree_util.tree_structure(eager)
    for a, e in zip(jax.tree_util.tree_leaves(jitted), jax.tree_util.tree_leaves(eager)):
        # The same compiled core, called from inside another jit: fusion may differ by a few ulps.
        assert_close(a, e, 1e-13)


# --- under jit: NaN, never finite garbage ----------------------------------------------------
# Each jitted call gets a batch [full-rank, rank-deficient] of (8, 4) designs: the deficient
# entry must come out all-NaN, the full-rank one must match the eager call on it (whose
# compiled program the eager rank-deficiency tests above already built) and numpy.
# jit vs eager: same kernels, possibly fused differently: a few ulps × n = 8 → 1e-13.
# vs numpy: the good design has κ ≈ 2.7, Gram routes err ~u·κ²·n ≈ 1e-14; hence 1e-11 (the
# constructions add a forward pass through whitened tokens on top).


def test_jitted_lstsq_on_deficient_x_is_all_nan():
    beta = jax.jit(lambda a, b: olsjax.lstsq(a, b))(duplicated_column(3), targets(3))
    assert beta.shape == (D + 1, M)
    assert np.all(np.isnan(np.asarray(beta)))


@pytest.mark.parametrize("route", ("auto", *SOLVE_ROUTES))
def test_jitted_lstsq_poisons_only_the_deficient_entry(route):
    x, y = _good_and_deficient()
    beta, info = jax.jit(lambda a, b: olsjax.lstsq(a, b, route=route, info=True))(x, y)
    beta = np.asarray(beta)
    assert np.all(np.isnan(beta[1]))
    # Auto picks one route for the whole batch, from its worst task: the deficient design
    # (κ(C) huge or its Cholesky broken down) sends the batch to the SVD.
    ran = "svd" if route == "auto" else route
    assert info.route_name == ran
    assert int(info.rank[0]) == D + 1  # the deficient task's rank may be -1 (Cholesky broke down)
    assert_close(beta[0], olsjax.lstsq(x[0], y[0], route=ran), 1e-13)
    assert_close(beta[0], np.linalg.lstsq(x[0], y[0], rcond=None)[0], 1e-11)


def test_jitted_hat_matrix_poisons_only_the_deficient_entry():
    x, _ = _good_and_deficient()
    h = np.asarray(jax.jit(lambda a: olsjax.hat_matrix(a))(x))
    assert np.all(np.isnan(h[1]))
    assert_close(h[0], x[0] @ np.linalg.pinv(x[0]), 1e-11)


@pytest.mark.parametrize("route", ("auto", *WHITEN_ROUTES))
def test_jitted_constructions_predict_nan_only_for_the_deficient_entry(route):
    x, y = _good_and_deficient()
    xs = np.stack([np.concatenate([well_conditioned(6, n=Q), np.ones((Q, 1))], axis=1)] * BATCH)

    @jax.jit
    def predictions(a, b, queries):
        params = olsjax.construct_ols(a, b, route=route)
        ra = olsjax.construct_regression_attention(a, route=route)
        return olsjax.forward(params, queries, a), olsjax.regression_attention(ra, queries, a, b)

    expected = xs[0] @ np.linalg.lstsq(x[0], y[0], rcond=None)[0]
    for out in predictions(x, y, xs):
        out = np.asarray(out)
        assert out.shape == (BATCH, Q, M)
        assert np.all(np.isnan(out[1]))
        assert_close(out[0], expected, 1e-11)


def test_numpy_and_jax_arrays_are_accepted_alike(x, y):
    ref = np.linalg.lstsq(x, y, rcond=None)[0]
    # κ = 2 and auto takes Cholesky: error ~ u·κ²·n ≈ 4e-15, 1e-13 leaves ample margin.
    assert_close(olsjax.lstsq(x, y), ref, 1e-13)
    assert_close(olsjax.lstsq(jnp.asarray(x), jnp.asarray(y)), ref, 1e-13)


# --- automatic route ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kappa", "route"), [(1.5, "cholesky"), (1e4, "cholqr2"), (1e9, "svd")]
)
def test_auto_route_is_chosen_by_condition_and_reported_by_info(kappa, route):
    # cholesky up to κ = 4, cholqr2 up to its proven limit (~1e6 at 33 x 5 in float64), svd beyond.
    p = testing.make_problem(np.random.default_rng(5), 33, 5, kappa=kappa)
    assert olsjax.select_route(p.x).name == route
    assert olsjax.construct_ols(p.x, p.y, info=True)[1].route_name == route
    if kappa <= one_layer_limit(5, np.float64):  # T4 is a p = 2 form: it refuses beyond (T13)
        assert olsjax.construct_regression_attention(p.x, info=True)[1].route_name == route
    else:
        with pytest.raises(ValueError, match="accuracy range of the values-are-targets form"):
            olsjax.construct_regression_attention(p.x)
    assert olsjax.lstsq(p.x, p.y, info=True)[1].route_name == route


def test_auto_route_under_jit_is_chosen_on_device_and_reported_as_data():
    p = testing.make_problem(np.random.default_rng(5), 33, 5, kappa=1e9)

    @jax.jit
    def fit(x, y):
        params, info = olsjax.construct_ols(x, y, info=True)
        return olsjax.forward(params, x, x), info.route

    x, y = jnp.asarray(p.x), jnp.asarray(p.y)
    eager = olsjax.forward(olsjax.construct_ols(x, y), x, x)
    out, route = fit(x, y)
    np.testing.assert_allclose(out, eager, rtol=1e-12)  # same route, same rounding
    assert olsjax.ROUTE_NAMES[int(route)] == "svd"
    with pytest.raises(TypeError, match="select_route reads the data"):
        jax.jit(lambda a: olsjax.select_route(a).name)(x)


@pytest.mark.parametrize("refine", [-1, 1.5, "2"])
def test_refine_must_be_a_non_negative_integer(refine, x, y):
    with pytest.raises((TypeError, ValueError), match="refine"):
        olsjax.construct_ols(x, y, refine=refine)
