"""The scikit-learn estimators: sklearn's own checks, equality with LinearRegression/Ridge, float64, pickling,
Pipeline/GridSearchCV, pandas, and the trained attention regressor's start and training."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data, parametrize_with_checks

from olsjax import testing
from olsjax._construct import _construct_ols
from olsjax.sklearn import AttentionRegressor, TransformerOLSRegressor, expected_failed_checks

U64 = testing.unit_roundoff(np.float64)


@parametrize_with_checks(
    # The softmax kind differs only in _predict's branch, tested below: its own run of the checks
    # would double this module's time (every fit compiles its training loop, ~1 s on 2 cores).
    [TransformerOLSRegressor(), AttentionRegressor()],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_checks(estimator, check):
    check(estimator)


def test_expected_failure_is_the_refusal_and_rcond_passes_it():
    """The one listed failure is the p > n refusal; the minimum-norm fit passes the same check."""
    assert list(expected_failed_checks(TransformerOLSRegressor())) == ["check_sample_weight_equivalence_on_dense_data"]
    with pytest.raises(ValueError, match=r"n_samples=\d+ < n_features=30"):
        check_sample_weight_equivalence_on_dense_data("TransformerOLSRegressor", TransformerOLSRegressor())
    check_sample_weight_equivalence_on_dense_data("TransformerOLSRegressor", TransformerOLSRegressor(rcond=1e-10))
    assert expected_failed_checks(TransformerOLSRegressor(rcond=1e-10)) == {}
    assert expected_failed_checks(AttentionRegressor()) == {}


def _problem(seed, n=60, d=4, m=None):
    """A correlated design with offset columns (κ ≈ 1e2 after centring), targets with an intercept and noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ np.triu(np.ones((d, d))) + 3.0
    beta = rng.standard_normal((d,) if m is None else (d, m))
    y = X @ beta + 2.0 + 0.1 * rng.standard_normal((n,) if m is None else (n, m))
    w = rng.integers(0, 4, n).astype(np.float64)
    return X, y, w


def _bound(X, y, w, fit_intercept, ridge):
    """THEOREMS.md's ``c·u·(κ + κ² tan θ)`` for the weighted (ridge) problem, times 2: both fits carry it."""
    w = np.ones(len(X)) if w is None else w
    Xc, yc = X, y
    if fit_intercept:
        Xc, yc = X - w @ X / w.sum(), y - w @ y / w.sum()
    root = np.sqrt(w)
    A = np.vstack([root[:, None] * Xc, np.sqrt(ridge) * np.eye(X.shape[1])])
    b = np.concatenate([(root[:, None] if y.ndim == 2 else root) * yc, np.zeros((X.shape[1],) + y.shape[1:])])
    fit = A @ np.linalg.lstsq(A, b, rcond=None)[0]
    kappa = testing.equilibrated_condition_number(A)
    return 2 * testing.error_bound(np.float64, kappa, 1, tan_theta=np.linalg.norm(b - fit) / np.linalg.norm(fit))


CASES = [(i, r, w, None) for i in (True, False) for r in (0.0, 3.0) for w in (False, True)]


# Two targets on two cases only: each case compiles new shapes (seconds on 2 shared cores).
@pytest.mark.parametrize("fit_intercept, ridge, weighted, m", CASES + [(True, 0.0, True, 2), (False, 3.0, False, 2)])
def test_equals_linear_regression_and_ridge(fit_intercept, ridge, weighted, m):
    """coef_, intercept_ and predictions equal sklearn's, ``ridge`` being ``Ridge``'s ``alpha`` (no 1/n)."""
    X, y, w = _problem(0, m=m)
    sw = w if weighted else None
    ours = TransformerOLSRegressor(fit_intercept=fit_intercept, ridge=ridge).fit(X, y, sample_weight=sw)
    ref = (Ridge(alpha=ridge) if ridge else LinearRegression()).set_params(fit_intercept=fit_intercept)
    ref.fit(X, y, sample_weight=sw)
    bound = _bound(X, y, sw, fit_intercept, ridge)
    assert np.shape(ours.coef_) == np.shape(ref.coef_) and np.shape(ours.intercept_) == np.shape(ref.intercept_)
    both = lambda e: np.concatenate([np.ravel(e.coef_), np.ravel(e.intercept_)])  # noqa: E731
    assert testing.relative_error(both(ours), both(ref)) <= bound
    X_new = _problem(1)[0]
    assert testing.relative_error(ours.predict(X_new), ref.predict(X_new)) <= bound
    assert ours.predict(X_new).dtype == np.float64


def test_integer_weights_repeat_rows_zero_weights_drop_them():
    """Weight k equals k copies of the row (sklearn's LinearRegression on the repeated data is the reference)."""
    X, y, w = _problem(2)
    ours = TransformerOLSRegressor().fit(X, y, sample_weight=w)
    ref = LinearRegression().fit(np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int)))
    assert testing.relative_error(ours.predict(X), ref.predict(X)) <= _bound(X, y, w, True, 0.0)
    kept = w > 0
    subset = TransformerOLSRegressor().fit(X[kept], y[kept], sample_weight=w[kept])
    # The same rows, scaled and centred identically: equal up to the rounding of the two runs (κ ≈ 1e2).
    np.testing.assert_allclose(subset.predict(X), ours.predict(X), rtol=1e-12)


def test_negative_weights_raise():
    X, y, w = _problem(3)
    w[4] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        TransformerOLSRegressor().fit(X, y, sample_weight=w)


def test_refusals_stay():
    """Rank-deficient or p > n data is refused without rcond, and rcond gives the minimum-norm fit (T6)."""
    X, y, _ = _problem(4)
    X = np.column_stack([X, X[:, 0] + X[:, 1]])
    with pytest.raises(ValueError, match="rank-deficient"):
        TransformerOLSRegressor().fit(X, y)
    ours = TransformerOLSRegressor(rcond=1e-10).fit(X, y)
    ref = LinearRegression().fit(X, y)  # scipy's gelsd: the minimum-norm solution
    # κ of the kept part is ≈ 1e2: 1e-11 is three digits above the bound's u·κ², far below any wrong answer.
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-11)
    X[:, -1] = 3.3  # weighted mean off by an ulp (residue 4e-16): zeroed, so rank deficiency, as unweighted
    with pytest.raises(ValueError, match="rank-deficient"):
        TransformerOLSRegressor().fit(X, y, sample_weight=np.linspace(0.5, 2.0, len(X)))
    with pytest.raises(ValueError, match="n_samples=3 < n_features=4"):
        TransformerOLSRegressor().fit(X[:3, :4], y[:3])


_X64_OFF = textwrap.dedent(
    """
    import pickle, warnings
    import jax, numpy as np
    assert not jax.config.jax_enable_x64
    from olsjax.sklearn import AttentionRegressor, TransformerOLSRegressor
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)); y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.01 * rng.standard_normal(40)
    A = np.column_stack([X, np.ones(40)])
    expected = A @ np.linalg.lstsq(A, y, rcond=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PrecisionWarning: the estimators compute in float64
        for est in (TransformerOLSRegressor(), AttentionRegressor(steps=0)):
            est.fit(X, y)
            for fitted in (est, pickle.loads(pickle.dumps(est))):
                pred = fitted.predict(X)
                assert pred.dtype == np.float64, pred.dtype
                leaves = jax.tree_util.tree_leaves(fitted.params_)
                assert all(type(a) is np.ndarray and a.dtype == np.float64 for a in leaves)
                err = np.abs(pred - expected).max() / np.abs(expected).max()
                # float32 would be off by ~1e-7; float64 by ~1e-15 (κ ≈ 1)
                assert err < 1e-12, err
    print("ok")
    """
)


def test_float64_with_x64_off_and_pickle():
    """In a fresh interpreter with JAX's default (x64 off): float64 predictions, also after pickling."""
    out = subprocess.run([sys.executable, "-c", _X64_OFF], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


@pytest.fixture(scope="module")
def softmax():
    """One trained softmax regressor and its training data, shared: every fit compiles its training loop."""
    X, y, _ = _problem(11)
    return AttentionRegressor(kind="softmax", steps=60).fit(X, y), X, y


def test_pickle_round_trip(softmax):
    X, y, _ = _problem(5)
    for estimator in (TransformerOLSRegressor(ridge=1.0).fit(X, y), softmax[0]):
        again = pickle.loads(pickle.dumps(estimator))
        assert all(type(a) is np.ndarray for a in jax.tree_util.tree_leaves(again.params_))
        np.testing.assert_array_equal(again.predict(X), estimator.predict(X))


def test_pipeline_and_grid_search_match_ridge():
    """A ridge grid in a Pipeline picks Ridge's alpha with Ridge's cross-validation scores."""
    X, y, _ = _problem(6, n=80)
    grid = [0.01, 1.0, 30.0, 300.0]
    ours = GridSearchCV(Pipeline([("scale", StandardScaler()), ("reg", TransformerOLSRegressor())]),
                        {"reg__ridge": grid}, cv=4)
    ref = GridSearchCV(Pipeline([("scale", StandardScaler()), ("reg", Ridge())]), {"reg__alpha": grid}, cv=4)
    ours.fit(X, y)
    ref.fit(X, y)
    assert ours.best_params_["reg__ridge"] == ref.best_params_["reg__alpha"]
    # R² on held-out folds of a well-conditioned problem: agreement to rounding (κ ≈ 1e2, ~1e-14 measured).
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], rtol=1e-10)


def test_ridge_grid_compiles_once():
    """Ridge is traced: a grid of 3 values and one of 7 compile the construction core once per row bucket."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((100, 7))  # d = 7: no other test compiles this shape
    y = X @ rng.standard_normal(7)
    before = _construct_ols._cache_size()
    GridSearchCV(TransformerOLSRegressor(), {"ridge": [0.1, 1.0, 10.0]}, cv=5, refit=False).fit(X, y)
    after_three = _construct_ols._cache_size()
    GridSearchCV(TransformerOLSRegressor(), {"ridge": list(np.logspace(-3, 3, 7))}, cv=5, refit=False).fit(X, y)
    assert after_three - before == 1  # five folds of 80 rows, three ridge values: one compile
    assert _construct_ols._cache_size() == after_three


def test_pandas_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y, _ = _problem(8)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    for est in (TransformerOLSRegressor(), AttentionRegressor(steps=0)):
        est.fit(frame, pd.Series(y, name="y"))
        assert list(est.feature_names_in_) == list(frame.columns)
        with pytest.warns(UserWarning, match="does not have valid feature names"):  # sklearn's own warning
            plain = est.predict(frame.to_numpy())
        np.testing.assert_array_equal(est.predict(frame), plain)
        with pytest.raises(ValueError, match="feature names"):
            est.predict(frame[frame.columns[::-1]])


@pytest.mark.parametrize("ridge", [0.0, 3.0])
def test_attention_starts_at_ols(ridge):
    """With 0 steps the attention regressor is the construction: LinearRegression's / Ridge's predictions."""
    X, y, _ = _problem(9, m=2)
    ours = AttentionRegressor(steps=0, ridge=ridge).fit(X, y)
    ref = (Ridge(alpha=ridge) if ridge else LinearRegression()).fit(X, y)
    X_new = _problem(10)[0]
    # values-are-targets is a p = 2 form (T4, T13): the bound with κ².
    bound = 2 * testing.error_bound(np.float64, testing.equilibrated_condition_number(X - X.mean(0)) ** 2, 1)
    assert testing.relative_error(ours.predict(X_new), ref.predict(X_new)) <= bound


@pytest.mark.parametrize("kind, ridge", [("linear", 0.0), ("linear", 30.0), ("softmax", 0.0)])
def test_training_does_not_increase_the_loss(kind, ridge, softmax):
    est, X, y = softmax if kind == "softmax" else (None, *_problem(11)[:2])
    est = est or AttentionRegressor(kind=kind, ridge=ridge, steps=60).fit(X, y)
    mse = np.mean((est.predict(X) - y) ** 2)  # the training loss, recomputed from predictions
    np.testing.assert_allclose(est.loss_, mse, rtol=1e-12)  # the same sums in another order
    assert est.loss_ <= est.loss_curve_[0]
    if kind == "linear" and ridge == 0:
        assert est.best_step_ == 0  # OLS minimises the in-sample error: the start is kept
    else:
        assert est.loss_ < 0.9 * est.loss_curve_[0] and est.best_step_ > 0  # training helped


def test_softmax_prediction_by_hand(softmax):
    """The softmax kind's predictions from its fitted parameters, in numpy."""
    est, X, y = softmax
    X_new = _problem(12)[0]
    p = est.params_
    scores = (X_new @ p.w_q + p.b_q) @ (X @ p.w_k + p.b_k).T / np.sqrt(X.shape[1])
    a = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected = (a / a.sum(axis=1, keepdims=True)) @ y
    np.testing.assert_allclose(est.predict(X_new), expected, rtol=1e-12)  # exp and sums: a few ulps times n


@pytest.mark.parametrize("params, match", [(dict(kind="cubic"), "kind"), (dict(steps=-1), "steps"),
                                           (dict(steps=2.5), "steps")])
def test_bad_parameters_raise(params, match):
    X, y, _ = _problem(13)
    with pytest.raises(ValueError, match=match):
        AttentionRegressor(**params).fit(X, y)
