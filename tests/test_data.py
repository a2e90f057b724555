"""olsjax.data: shapes, seeding, the Toeplitz correlation, diabetes standardisation, argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from olsjax import data


def test_synthetic_shapes_and_true_weights():
    s = data.synthetic(0, n=100, d=4, noise=0.0, test_fraction=0.25)
    assert s.x_train.shape == (75, 4) and s.x_test.shape == (25, 4)
    assert s.y_train.shape == (75, 1) and s.y_test.shape == (25, 1)
    assert s.beta.shape == (4, 1) and s.x_train.dtype == np.float64
    # Without noise the targets are X β: only the rounding of one product of 4 terms.
    np.testing.assert_allclose(s.y_train, s.x_train @ s.beta, rtol=0, atol=1e-13)
    np.testing.assert_allclose(s.y_test, s.x_test @ s.beta, rtol=0, atol=1e-13)


@pytest.mark.parametrize("make", [data.synthetic, data.sine, data.diabetes], ids=["synthetic", "sine", "diabetes"])
def test_same_seed_same_data_other_seed_other_data(make):
    a, b, c = make(3), make(3), make(4)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)


def test_toeplitz_correlation_holds_empirically():
    rho, d, n = 0.6, 4, 20000
    s = data.synthetic(1, n=n, d=d, rho=rho, test_fraction=0.5)
    x = np.concatenate([s.x_train, s.x_test])
    expected = np.array([[rho ** abs(i - j) for j in range(d)] for i in range(d)])
    # The sample correlation's standard error is (1 − r²)/√n ≤ 1/√20000 ≈ 0.007: 4 of them.
    np.testing.assert_allclose(np.corrcoef(x, rowvar=False), expected, rtol=0, atol=0.03)
    # Unit variances too (standard error √(2/n) ≈ 0.01: 4 of them).
    np.testing.assert_allclose(x.var(0), np.ones(d), rtol=0, atol=0.04)


def test_negative_rho_alternates_signs():
    s = data.synthetic(2, n=20000, d=3, rho=-0.5, test_fraction=0.5)
    c = np.corrcoef(s.x_train, rowvar=False)
    # Same standard-error argument as above (n = 10000 here: 4 × 0.01).
    np.testing.assert_allclose([c[0, 1], c[0, 2]], [-0.5, 0.25], atol=0.04)


def test_diabetes_standardised_with_training_statistics():
    from sklearn.datasets import load_diabetes

    s = data.diabetes(0)
    assert s.x_train.shape[1] == 10 and s.x_train.shape[0] + s.x_test.shape[0] == 442
    assert s.x_test.shape[0] == round(0.25 * 442) and s.beta is None
    # Float64 sums of ~330 standardised values: means vanish to ~1e-15, not exactly.
    np.testing.assert_allclose(s.x_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(s.x_train.std(0), 1, atol=1e-12)
    np.testing.assert_allclose([s.y_train.mean(), s.y_train.std()], [0, 1], atol=1e-12)
    assert abs(s.x_test.mean()) > 1e-6  # the test rows were not standardised by their own statistics
    # Every column, train and test rows together, is an increasing affine image of the raw column.
    raw = load_diabetes(scaled=False)
    ours = np.concatenate([s.x_train, s.x_test])
    for j in range(10):
        a = np.sort(raw.data[:, j])
        b = np.sort(ours[:, j])
        slope, intercept = np.polyfit(a, b, 1)
        assert slope > 0
        # Residual of an exact affine map: rounding of the standardisation only.
        np.testing.assert_allclose(slope * a + intercept, b, atol=1e-9)
    a, b = np.sort(raw.target), np.sort(np.concatenate([s.y_train, s.y_test])[:, 0])
    slope, intercept = np.polyfit(a, b, 1)
    np.testing.assert_allclose(slope * a + intercept, b, atol=1e-9)  # as for the columns
    assert slope > 0


def test_sine_is_bounded_without_noise():
    s = data.sine(0, n=50, d=2, noise=0.0)
    assert s.beta is None and s.x_train.shape == (38, 2)
    assert np.all(np.abs(np.concatenate([s.y_train, s.y_test])) <= 1)


def test_sine_is_as_nonlinear_as_documented():
    s = data.sine(0, n=40000, d=3, noise=0.0, test_fraction=0.5)
    x, y = s.x_train, s.y_train
    fitted = x @ np.linalg.lstsq(x, y, rcond=None)[0]
    explained = 1 - np.mean((y - fitted) ** 2) / np.mean(y**2)
    # 48% in closed form (a = 1.5); sampling error of a ratio of means over 20000 rows is ~1%.
    assert abs(explained - 0.48) < 0.03


def test_hard_design_split():
    s = data.hard("collinear", 0)
    assert s.x_train.shape[1] == 7 and s.x_train.shape[0] + s.x_test.shape[0] == 16
    with pytest.raises(ValueError, match="unknown hard design 'nope'"):
        data.hard("nope", 0)


def test_load_modes():
    assert data.load("synthetic", 0).x_train.shape == (180, 5)
    assert data.load("sine", 0).x_train.shape == (180, 3)
    with pytest.raises(ValueError, match="unknown data mode"):
        data.load("mnist", 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(rho=1.0), ValueError, "rho must be in"),
        (dict(rho=-1.0), ValueError, "rho must be in"),
        (dict(rho=math.nan), ValueError, "rho must be finite"),
        (dict(noise=-0.1), ValueError, "noise must be >= 0"),
        (dict(test_fraction=0.0), ValueError, "test_fraction must be in"),
        (dict(test_fraction=1.0), ValueError, "test_fraction must be in"),
        (dict(n=4, test_fraction=0.05), ValueError, "leaves 0 of 4 rows"),
        (dict(n=1), ValueError, "n must be at least 2"),
        (dict(d=0), ValueError, "d must be at least 1"),
        # Under the tests' runtime type checker the annotation catches these first.
        (dict(n=10.5), TypeError, "n must be an int|parameter 'n'"),
        (dict(rho="0.5"), TypeError, "rho must be a real number|parameter 'rho'"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.synthetic(0, **kwargs)


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="seed must be at least 0"):
        data.sine(-1)
    with pytest.raises(TypeError, match="seed must be an int|parameter 'seed'"):
        data.diabetes(1.5)
