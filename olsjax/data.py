"""Data sets of the attention-vs-regression study: seeded, each a train/test ``Split``.

Three modes, as in the blog's re-implementation ("Everything is matter"):

- ``synthetic``: linear data with known true weights, ``y = Xβ + noise·e``,
  rows of ``X`` Gaussian with Toeplitz correlation ``corr(x_i, x_j) = ρ^|i−j|``;
- ``diabetes``: scikit-learn's diabetes data (442 × 10, shipped with the
  package), split at random by the seed, then features and target
  standardised with the *training* means and standard deviations (the test
  rows never inform the scaling);
- ``sine``: a nonlinear toy, ``y = sin(Xβ) + noise·e``: no linear model is
  right, so attention and regression are compared where both are wrong.

``hard`` splits one of ``olsjax.testing.hard_suite``'s ill-conditioned
designs the same way. Every array is float64, targets are ``(n, 1)``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .testing import hard_suite

#: The data modes of ``load``, in the order the experiment runs them.
MODES = ("synthetic", "diabetes", "sine")


@dataclasses.dataclass(frozen=True)
class Split:
    """A train/test split. ``beta``: the true weights ``(d, 1)`` where the data are linear, else ``None``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    beta: np.ndarray | None = None


def _int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _noise(noise) -> float:
    noise = _real(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    return noise


def _split(name, x, y, seed: int, test_fraction, beta=None) -> Split:
    """Rows shuffled by ``seed``; the last ``round(test_fraction·n)`` (at least one each side) are the test set."""
    fraction = _real(test_fraction, "test_fraction")
    if not 0 < fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {fraction}")
    n = x.shape[0]
    n_test = round(fraction * n)
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_fraction={fraction} leaves {n_test} of {n} rows for testing; need 1 to {n - 1}")
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[: n - n_test], order[n - n_test :]
    return Split(name, x[train], y[train], x[test], y[test], beta)


def toeplitz_correlation(d: int, rho: float) -> np.ndarray:
    """``C_ij = ρ^|i−j|`` ``(d, d)``: positive definite for ``|ρ| < 1``."""
    lags = np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    return rho**lags


def synthetic(
    seed: int, *, n: int = 240, d: int = 5, rho: float = 0.8, noise: float = 0.5, test_fraction: float = 0.25
) -> Split:
    """Linear data ``y = Xβ + noise·e`` with rows ``x ~ N(0, C)``, ``C_ij = ρ^|i−j|``, ``β, e ~ N(0, I)``.

    **Arguments:** ``seed``: of every draw (and of the split); ``n`` rows
    before the split; ``d`` features; ``rho`` in ``(−1, 1)``; ``noise`` ``≥ 0``
    (standard deviation of the additive noise); ``test_fraction`` in ``(0, 1)``.

    **Returns:** a ``Split`` with ``beta`` the true weights.

    **Raises:** ``ValueError`` naming the argument for ``n < 2``, ``d < 1``,
    ``|rho| ≥ 1``, ``noise < 0``, a fraction outside ``(0, 1)`` or one that
    leaves an empty side; ``TypeError`` for non-integer sizes or seed, or non-real numbers.
    """
    seed, n, d = _int(seed, "seed", 0), _int(n, "n", 2), _int(d, "d", 1)
    rho, noise = _real(rho, "rho"), _noise(noise)
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")
    rng = np.random.default_rng(seed)
    beta = rng.standard_normal((d, 1))  # drawn first: the same weights for every n
    x = rng.standard_normal((n, d)) @ np.linalg.cholesky(toeplitz_correlation(d, rho)).T
    y = x @ beta + noise * rng.standard_normal((n, 1))
    return _split("synthetic", x, y, seed, test_fraction, beta)


def _standardised(split: Split) -> Split:
    """Features and target centred and scaled by the training rows' means and standard deviations."""
    xm, xs = split.x_train.mean(0), split.x_train.std(0)
    ym, ys = split.y_train.mean(0), split.y_train.std(0)
    return dataclasses.replace(
        split,
        x_train=(split.x_train - xm) / xs, x_test=(split.x_test - xm) / xs,
        y_train=(split.y_train - ym) / ys, y_test=(split.y_test - ym) / ys,
    )


def diabetes(seed: int, *, test_fraction: float = 0.25) -> Split:
    """scikit-learn's diabetes data (442 × 10), split by ``seed``, standardised with training statistics.

    **Raises:** ``ValueError`` for a ``test_fraction`` outside ``(0, 1)``.
    """
    from sklearn.datasets import load_diabetes  # shipped with scikit-learn: no download

    seed = _int(seed, "seed", 0)
    raw = load_diabetes(scaled=False)
    x, y = raw.data.astype(np.float64), raw.target.astype(np.float64)[:, None]
    return _standardised(_split("diabetes", x, y, seed, test_fraction))


def sine(
    seed: int, *, n: int = 240, d: int = 3, frequency: float = 1.5, noise: float = 0.1, test_fraction: float = 0.25
) -> Split:
    """The nonlinear toy ``y = sin(a·Xβ) + noise·e``, ``x, e ~ N(0, I)``, ``β`` a random unit vector, ``a = frequency``.

    ``z = Xβ`` is standard normal; the best linear fit of ``sin(az)``
    explains ``a²e^{−a²}/((1 − e^{−2a²})/2)`` of its variance: 48% at the
    default ``a = 1.5``. No true linear weights (``beta`` is ``None``).

    **Raises:** as ``synthetic``.
    """
    seed, n, d, noise = _int(seed, "seed", 0), _int(n, "n", 2), _int(d, "d", 1), _noise(noise)
    frequency = _real(frequency, "frequency")
    rng = np.random.default_rng(seed)
    beta = rng.standard_normal((d, 1))
    beta /= np.linalg.norm(beta)
    x = rng.standard_normal((n, d))
    y = np.sin(frequency * (x @ beta)) + noise * rng.standard_normal((n, 1))
    return _split("sine", x, y, seed, test_fraction)


def hard(name: str, seed: int, *, test_fraction: float = 0.25) -> Split:
    """One of ``olsjax.testing.hard_suite``'s designs (``"poly5"``, ``"collinear"``, …), split by ``seed``.

    **Raises:** ``ValueError`` for an unknown ``name`` (listing the known ones).
    """
    seed = _int(seed, "seed", 0)
    cases = {case.name: case for case in hard_suite()}
    if name not in cases:
        raise ValueError(f"unknown hard design {name!r}; known: {', '.join(cases)}")
    problem = cases[name].problem
    return _split(name, problem.x, problem.y, seed, test_fraction)


def load(mode: str, seed: int) -> Split:
    """The experiment's data set ``mode`` (one of ``MODES``) with the defaults above.

    **Raises:** ``ValueError`` for an unknown ``mode``.
    """
    loaders = {"synthetic": synthetic, "diabetes": diabetes, "sine": sine}
    if mode not in loaders:
        raise ValueError(f"unknown data mode {mode!r}; known: {', '.join(MODES)}")
    return loaders[mode](seed)
