"""olsjax.models: the configurable attention model against numpy references and the OLS construction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from olsjax import models
from olsjax.testing import error_bound, make_problem, tan_theta
from olsjax.train import train

LINEAR = [c for c in models.GRID if c.linear]
RNG_SEED = 0


@pytest.fixture(scope="module")
def problem():
    """A well-conditioned problem (κ = 10) with out-of-sample queries."""
    return make_problem(np.random.default_rng(RNG_SEED), 40, 4, 1, kappa=10.0, noise=0.1, queries=7)


def _softmax(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numpy_apply(params, config, q, x, y):
    """An independent reference of ``apply`` in numpy (float64)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    if config.variant is models.Variant.WHITENED:
        lam, v = np.linalg.eigh(x.T @ x / len(x))
        l = v @ np.diag(lam**-0.5) @ v.T if config.whitening is models.Whitening.ZCA else v @ np.diag(lam**-0.5)
        q, x = q @ l, x @ l
    w_q, w_k = {
        models.Tying.SEPARATE: lambda: (p["w_q"], p["w_k"]),
        models.Tying.SHARED: lambda: (p["w_qk"], p["w_qk"]),
        models.Tying.SINGLE: lambda: (p["w"], np.eye(len(p["w"]))),
    }[config.tying]()
    scores = (q @ w_q) @ (x @ w_k).T
    a = _softmax(scores / np.sqrt(w_q.shape[1])) if config.variant is models.Variant.SOFTMAX else scores / len(x)
    if config.values is models.Values.TARGETS:
        return a @ y
    return a @ (x @ p["w_v"]) @ p["w_p"]


@pytest.mark.parametrize("config", models.GRID, ids=lambda c: c.name)
def test_apply_matches_numpy(problem, config):
    params = models.init(jax.random.key(1), config, 4, 1)
    got = np.asarray(models.apply(params, config, problem.queries, problem.x, problem.y))
    expected = _numpy_apply(params, config, problem.queries, problem.x, problem.y)
    # Two float64 evaluations of a few 4 × 4 and 40-term products (and an eigendecomposition
    # of a κ² = 100 matrix when whitened): agreement to ~1e-13 relative; 1e-11 leaves margin.
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-11 * np.abs(expected).max())


@pytest.mark.parametrize("config", LINEAR, ids=lambda c: c.name)
def test_regression_like_at_the_construction_is_ols(problem, config):
    params = models.constructed(config, problem.x, problem.y)
    beta = np.linalg.lstsq(problem.x, problem.y, rcond=None)[0]
    pred = np.asarray(models.apply(params, config, problem.queries, problem.x, problem.y))
    bound = error_bound(np.float64, problem.kappa, 2, tan_theta=tan_theta(problem.x, problem.y))
    err = np.linalg.norm(pred - problem.queries @ beta) / np.linalg.norm(problem.queries @ beta)
    assert err <= bound, f"{config.name}: {err:.2e} > bound {bound:.2e}"
    eff = np.asarray(models.effective_weights(params, config, problem.x, problem.y))
    err = np.linalg.norm(eff - beta) / np.linalg.norm(beta)
    assert err <= bound, f"effective weights of {config.name}: {err:.2e} > bound {bound:.2e}"


def test_bilinear_at_the_construction_is_the_inverse_second_moment(problem):
    sigma_inv = np.linalg.inv(problem.x.T @ problem.x / len(problem.x))
    bound = error_bound(np.float64, problem.kappa, 2)  # an inverse Gram matrix: p = 2
    for config in LINEAR:
        w = np.asarray(models.bilinear(models.constructed(config, problem.x, problem.y), config, problem.x))
        assert np.linalg.norm(w - sigma_inv) / np.linalg.norm(sigma_inv) <= bound, config.name


@pytest.mark.parametrize("tying", list(models.Tying), ids=lambda t: t.value)
def test_softmax_rows_sum_to_one_and_outputs_stay_in_the_target_range(problem, tying):
    config = models.Config(models.Variant.SOFTMAX, tying)
    params = models.init(jax.random.key(2), config, 4, 1)
    a = np.asarray(models.attention(params, config, problem.queries, problem.x))
    assert a.shape == (7, 40) and np.all(a >= 0)
    # A sum of 40 positive rounded terms: within 40 u of one.
    np.testing.assert_allclose(a.sum(axis=1), 1, rtol=0, atol=40 * 2**-53)
    far = 100 * problem.queries  # extrapolating queries: OLS leaves [min Y, max Y] here, softmax cannot (T11)
    out = np.asarray(models.apply(params, config, far, problem.x, problem.y))
    lo, hi = problem.y.min(), problem.y.max()
    slack = 1e-12 * (hi - lo)  # a convex combination, rounded
    assert np.all(out >= lo - slack) and np.all(out <= hi + slack)
    beta = np.linalg.lstsq(problem.x, problem.y, rcond=None)[0]
    assert np.any((far @ beta < lo) | (far @ beta > hi))


def test_tied_weights_stay_tied(problem):
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    for tying in (models.Tying.SHARED, models.Tying.SINGLE):
        config = models.Config(models.Variant.REGRESSION, tying)
        params = models.init(jax.random.key(3), config, 4, 1)
        trained = train(lambda p: jnp.mean((models.apply(p, config, x, x, y) - y) ** 2), params,  # noqa: B023
                        steps=20, chunk=10, progress=False).params
        w_q, w_k = (np.asarray(a) for a in models.query_key(trained, config))
        assert not np.array_equal(w_q, np.asarray(models.query_key(params, config)[0]))  # it did train
        np.testing.assert_array_equal(w_k, w_q if tying is models.Tying.SHARED else np.eye(4))


def test_zca_and_pca_whitening_give_the_same_predictor(problem):
    zca = models.Config(models.Variant.WHITENED, models.Tying.SINGLE, whitening="zca")
    pca = models.Config(models.Variant.WHITENED, models.Tying.SINGLE, whitening=models.Whitening.PCA)
    l_zca, l_pca = (np.asarray(models.whitener(c, problem.x)) for c in (zca, pca))
    sigma_inv = np.linalg.inv(problem.x.T @ problem.x / len(problem.x))
    bound = error_bound(np.float64, problem.kappa, 2)  # factors of an inverse Gram matrix: p = 2
    for l in (l_zca, l_pca):
        assert np.linalg.norm(l @ l.T - sigma_inv) / np.linalg.norm(sigma_inv) <= bound
    np.testing.assert_allclose(l_zca, l_zca.T, atol=bound * np.abs(l_zca).max())  # ZCA is symmetric
    # W = c·I commutes with the rotation between the two factors: the same predictor (2·OLS here).
    params = {"w": 2.0 * jnp.eye(4)}
    out = [np.asarray(models.apply(params, c, problem.queries, problem.x, problem.y)) for c in (zca, pca)]
    ols = problem.queries @ np.linalg.lstsq(problem.x, problem.y, rcond=None)[0]
    for o in out:
        assert np.linalg.norm(o - 2 * ols) / np.linalg.norm(2 * ols) <= bound


def test_init_is_seeded_and_shaped():
    config = models.Config("regression", "separate", "projected")
    a, b = models.init(jax.random.key(4), config, 3, 2), models.init(jax.random.key(4), config, 3, 2)
    assert set(a) == {"w_q", "w_k", "w_v", "w_p"} and a["w_p"].shape == (3, 2) and a["w_q"].shape == (3, 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["w_q"], models.init(jax.random.key(5), config, 3, 2)["w_q"])


def test_float32_works_with_its_own_bound(problem):
    config = models.Config("whitened", "separate", "targets")
    params = models.init(jax.random.key(6), config, 4, 1, dtype=jnp.float32)
    q, x, y = (a.astype(np.float32) for a in (problem.queries, problem.x, problem.y))
    got = np.asarray(models.apply(params, config, q, x, y))
    assert got.dtype == np.float32
    expected = _numpy_apply(params, config, q.astype(np.float64), x.astype(np.float64), y.astype(np.float64))
    # float32 (u ≈ 6e-8) through a whitening of a κ² = 100 Gram matrix: c·u·κ² = 200·6e-8·100 ≈ 1e-3.
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= error_bound(np.float32, problem.kappa, 2)


def test_config_and_params_are_checked(problem):
    with pytest.raises(ValueError, match="variant must be a Variant or one of"):
        models.Config("linear")
    with pytest.raises(ValueError, match="tying must be"):
        models.Config("softmax", "tied")
    with pytest.raises(TypeError, match="config must be an olsjax.models.Config|parameter .config."):
        models.parameter_names("softmax/separate/targets")
    config = models.Config("regression", "shared")
    with pytest.raises(ValueError, match=r"params for regression/shared/targets must be a dict with keys \['w_qk'\]"):
        models.apply({"w_q": jnp.eye(4), "w_k": jnp.eye(4)}, config, problem.queries, problem.x, problem.y)
    with pytest.raises(ValueError, match="d must be a positive int"):
        models.init(jax.random.key(0), config, 0, 1)
    with pytest.raises(ValueError, match="no effective weights"):
        models.effective_weights({"w": jnp.eye(4)}, models.Config("softmax", "single"), problem.x, problem.y)
    with pytest.raises(ValueError, match=r"context must have shape \(rows, 4\)"):
        models.apply({"w_qk": jnp.eye(4)}, config, problem.queries, problem.x[:, :3], problem.y)
    assert models.Config("whitened", "single", "projected").name == "whitened/single/projected"
    assert len(models.GRID) == 18 and len(set(models.GRID)) == 18
