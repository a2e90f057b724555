"""Hard problems with exact references, in the spirit of NIST StRD's linear regression data sets.

Raw monomial designs on a narrow interval away from 0 (Filip: ``κ ≈ 1e15`` at
degree 10), trending near-collinear regressors (Longley), integer exact fits
(Wampler) and regression through the origin (NoInt1/NoInt2). Their
``queries`` are ``I``, so predictions at them are the coefficients ``β``;
``hard_suite`` is a fixed, named, seeded list of them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._exact import _array, _scalar
from ._problems import Problem, tan_theta

#: The kinds of hard problem ``hard_problems`` draws from.
HARD_KINDS: tuple[str, ...] = ("polynomial", "collinear", "exact-fit", "no-intercept")
#: Polynomial degrees ``hard_problems`` draws from (``d = degree + 1``).
POLYNOMIAL_DEGREES: tuple[int, ...] = (3, 5, 8, 10)


class HardCase(NamedTuple):
    """A named hard problem: ``kind`` is one of ``HARD_KINDS``."""

    name: str
    kind: str
    problem: Problem


def polynomial_design(t, degree: int) -> np.ndarray:
    """The raw monomial (Vandermonde) design ``[1, t, t², …, t^degree]``, ``(n, degree + 1)`` float64.

    **Raises:** ``TypeError``/``ValueError`` unless ``t`` is a non-empty, finite,
    real 1-D array and ``degree`` an integer ``≥ 0``.
    """
    t = _array(t, "t", (1,)).astype(np.float64)
    degree = _scalar(degree, "degree", 0, integer=True)
    return np.vander(t, degree + 1, increasing=True)


def _hard_problem(x: np.ndarray, y: np.ndarray) -> Problem:
    """``Problem`` with queries ``I``, the raw 2-norm ``κ(X)`` and ``tan θ`` measured in float64."""
    return Problem(x, y, np.eye(x.shape[1]), float(np.linalg.cond(x)), tan_theta(x, y))


def _targets(rng: np.random.Generator, x: np.ndarray, noise: float) -> np.ndarray:
    """``y = X β + noise·rms(X β)·e`` ``(n, 1)``, with ``β`` and ``e`` standard normal."""
    signal = x @ rng.standard_normal((x.shape[1], 1))
    return signal + noise * np.sqrt(np.mean(signal**2)) * rng.standard_normal(signal.shape)


def make_polynomial_problem(
    rng: np.random.Generator,
    degree: int = 10,
    n: int = 24,
    interval: tuple[float, float] = (2.0, 3.3),
    *,
    noise: float = 1e-6,
) -> Problem:
    """A raw polynomial fit on a narrow interval away from 0, in the spirit of NIST's Filip.

    One abscissa is drawn uniformly in each of ``n`` equal parts of
    ``interval``, so ``κ`` varies little between seeds. The defaults were
    chosen for ``κ(X) ≈ 1e15`` at degree 10: ``10^14.8``–``10^15.3`` over
    1000 seeds (median ``10^15.0``; ``~7e11`` at degree 8, ``~2e7`` at
    degree 5). Targets as ``_targets`` with relative ``noise`` (``tan θ ≈
    noise``: a close fit, but not an exact one).

    **Raises:** ``ValueError`` unless ``degree ≥ 0``, ``n ≥ degree + 1``,
    ``interval`` is finite with ``low < high`` and ``noise`` is finite and
    ``≥ 0`` (``TypeError`` for non-integer sizes, non-real numbers).
    """
    degree = _scalar(degree, "degree", 0, integer=True)
    n = _scalar(n, "n", degree + 1, integer=True)
    noise = _scalar(noise, "noise", 0)
    bounds = _array(interval, "interval", (1,)).astype(np.float64)
    if bounds.shape != (2,) or not bounds[0] < bounds[1]:
        raise ValueError(f"interval must be (low, high) with low < high, got {interval!r}")
    low, high = bounds.tolist()
    t = low + (high - low) * (np.arange(n) + rng.uniform(size=n)) / n
    x = polynomial_design(t, degree)
    return _hard_problem(x, _targets(rng, x, noise))


def make_collinear_problem(
    rng: np.random.Generator, n: int = 16, d: int = 7, *, noise: float = 1e-3
) -> Problem:
    """Near-collinear trending regressors, in the spirit of NIST's Longley (16 × 7 by default).

    Columns: a constant, the year ``1947 + s`` (``s = 0, …, n − 1``) and
    ``d − 2`` series ``a + b·s + 0.05·b·e``: offsets ``a`` log-uniform in
    ``[1e2, 1e5]`` (Longley's columns range from ~100, the GNP deflator, to
    ~1e5, GNP and population), trends ``b ∈ [0.01, 0.05]·a`` per year and
    wiggles of 5% of a year's trend. Each series is then nearly affine in the
    year, so ``κ(X)`` is ``10^7.7``–``10^10.5`` (2000 seeds each, 16 × 3 to 16 × 7).
    Targets as ``_targets`` with relative ``noise`` (``tan θ ≈ noise``).

    **Raises:** ``ValueError`` unless ``n ≥ d ≥ 2`` and ``noise`` is finite
    and ``≥ 0`` (``TypeError`` for non-integer sizes, non-real ``noise``).
    """
    d = _scalar(d, "d", 2, integer=True)
    n = _scalar(n, "n", d, integer=True)
    noise = _scalar(noise, "noise", 0)
    s = np.arange(n, dtype=np.float64)
    offsets = 10.0 ** rng.uniform(2.0, 5.0, d - 2)
    trends = offsets * rng.uniform(0.01, 0.05, d - 2)
    series = offsets + trends * (s[:, None] + 0.05 * rng.standard_normal((n, d - 2)))
    x = np.column_stack([np.ones(n), 1947.0 + s, series])
    return _hard_problem(x, _targets(rng, x, noise))


def make_exact_fit_problem(rng: np.random.Generator, n: int = 21, d: int = 6) -> Problem:
    """An integer exact fit, in the spirit of NIST's Wampler1: ``y = X β`` exactly in float64.

    ``X = polynomial_design(t, d − 1)`` on ``n`` distinct integers ``t`` in
    ``[0, 2n)``, ``β`` integers in ``[−9, 9]``. Every entry of ``X``, every
    product and every partial sum of ``X β`` is an integer below ``2⁵³`` (checked),
    so all are exact in float64 in any summation order: the least-squares
    solution is exactly ``β`` and ``tan θ = 0`` (set exactly, not measured).
    ``κ(X)`` is ``10^7.7``–``10^10.4`` at the default 21 × 6 (2000 seeds,
    median ``10^8.3``), ``10^4.6``–``10^6.2`` at 21 × 4.

    **Raises:** ``ValueError`` unless ``n ≥ d ≥ 1``, or if ``n``, ``d`` are too
    large for exactness (``TypeError`` for non-integers).
    """
    d = _scalar(d, "d", 1, integer=True)
    n = _scalar(n, "n", d, integer=True)
    max_beta = 9  # |β_i| ≤ 9: one decimal digit
    if max_beta * d * (2 * n - 1) ** (d - 1) >= 2**53:  # bounds every |x_ij|, |y_i| and partial sum
        raise ValueError(f"{n} x {d} integer design is not exact in float64")
    t = np.sort(rng.choice(2 * n, n, replace=False))
    x = polynomial_design(t, d - 1)
    beta = rng.integers(-max_beta, max_beta + 1, (d, 1)).astype(np.float64)
    return Problem(x, x @ beta, np.eye(d), float(np.linalg.cond(x)), 0.0)


def make_no_intercept_problem(
    rng: np.random.Generator, n: int = 11, d: int = 2, *, spread: float = 1e-4
) -> Problem:
    """Regression through the origin, in the spirit of NIST's NoInt1: ``x = 60, …, 59 + n``.

    Column ``j`` is ``(j + 1)·x·(1 + spread·e)`` for ``j ≥ 1``: nearly
    proportional to the first, with ``κ(X) ∝ 1/spread`` (``10^4.1``–``10^4.9``
    over 2000 seeds for ``d = 2`` and the default; ``κ = 1`` for ``d = 1``). Targets ``y = x + 70 + e``
    (NoInt1's ``y = 130, …, 140`` plus unit noise): a line with an intercept
    fitted without one, so the residual is large.

    **Raises:** ``ValueError`` unless ``n ≥ d ≥ 1`` and ``spread`` is finite and
    ``≥ 0`` (``TypeError`` for non-integer sizes, non-real ``spread``).
    """
    d = _scalar(d, "d", 1, integer=True)
    n = _scalar(n, "n", d, integer=True)
    spread = _scalar(spread, "spread", 0)
    x1 = 60.0 + np.arange(n)
    jitter = np.hstack([np.zeros((n, 1)), spread * rng.standard_normal((n, d - 1))])
    x = x1[:, None] * (1.0 + np.arange(d)) * (1.0 + jitter)
    y = (x1 + 70.0 + rng.standard_normal(n))[:, None]
    return _hard_problem(x, y)


def hard_suite() -> list[HardCase]:
    """The fixed, named hard problems docs and the certificate report on (built when called).

    Each uses its own ``default_rng(0)`` (reproducible, and independent of the
    others): ``poly5``/``poly8``/``poly10`` (``κ ≈ 2e7, 7e11, 1e15``),
    ``collinear`` (Longley's 16 × 7), ``exact-int`` (21 × 6),
    ``noint`` (``d = 1``) and ``noint-collinear`` (``d = 2``).
    """
    def rng() -> np.random.Generator:
        return np.random.default_rng(0)

    return [
        *(HardCase(f"poly{g}", "polynomial", make_polynomial_problem(rng(), g)) for g in (5, 8, 10)),
        HardCase("collinear", "collinear", make_collinear_problem(rng())),
        HardCase("exact-int", "exact-fit", make_exact_fit_problem(rng())),
        HardCase("noint", "no-intercept", make_no_intercept_problem(rng(), d=1)),
        HardCase("noint-collinear", "no-intercept", make_no_intercept_problem(rng(), d=2)),
    ]
