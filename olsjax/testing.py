"""Testing support: generated regression problems, exact references, the error bound.

Like ``numpy.testing``, this module is public: ``proofs/``, ``tests/`` and
``olsjax verify`` use it, and so can users checking their own constructions.

- ``make_design``/``make_problem`` build ``X = U diag(s) Vᵀ`` with log-spaced
  singular values, so ``κ(X)`` is chosen, and targets ``Y = X B + noise``.
- ``exact_lstsq``/``exact_predict`` solve least squares in rational arithmetic
  (``fractions.Fraction``): every float is a dyadic rational, so the reference
  is the exact answer for the rounded data, independent of any floating-point
  code, including the code under test. Minimum-norm answers for rank-deficient
  ``X`` come from an exact full-rank factorisation.
- ``assert_within_bound`` checks THEOREMS.md's
  ``‖f − f_ref‖/‖f_ref‖ ≤ c·u·(κ^p + κ²·tan θ)``: ``p = 1`` for routes that
  never form ``XᵀX``, ``p = 2`` for those that do; the ``κ²·tan θ`` term is the
  unavoidable sensitivity of least squares to data with residual
  (Wedin; Higham, *Accuracy and Stability*, §20.1), zero for an exact fit.
- ``lre`` counts correct significant digits (the log relative error of
  McCullough and of NIST's StRD certified values).
- Hard problems with exact references, in the spirit of NIST StRD's linear
  regression data sets: raw monomial designs on a narrow interval away from 0
  (Filip: ``κ ≈ 1e15`` at degree 10), trending near-collinear regressors
  (Longley), integer exact fits (Wampler) and regression through the origin
  (NoInt1/NoInt2). Their ``queries`` are ``I``, so predictions at them are the
  coefficients ``β``; ``hard_suite`` is a fixed, named, seeded list of them.
- Hypothesis strategies (``problems``, ``deficient_problems``,
  ``hard_problems``) draw shapes from a small fixed set, so JIT compiles once
  per shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

import numpy as np

try:  # Hypothesis is a test dependency: strategies exist only where it is installed.
    from hypothesis import assume
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised only without the test extra
    st = None

#: The fixed set of ``(n, d)`` shapes property tests draw from.
SHAPES: tuple[tuple[int, int], ...] = ((8, 2), (12, 1), (16, 3), (33, 5), (64, 8))
#: Shapes for rank-deficient problems, ``n < d`` included.
DEFICIENT_SHAPES: tuple[tuple[int, int], ...] = ((6, 3), (12, 5), (4, 7), (20, 8))
#: Default constant ``c`` of the bound. Backward-stable QR/SVD/Cholesky have
#: backward error ``O(n·d·u)`` in the worst case. Measured on the fixed shapes:
#: most routes stay below ~20·u·κ^p, but LAPACK's SVD has a backward error
#: ``‖X v_i − s_i u_i‖`` up to ~85·u·s_max at 64×8, and the svd factor's weight
#: product (T3) reached 99.5·u at κ = 1 under the CI profile, so c = 200 gives a
#: factor 2 over the worst measured case. Wrong constructions miss by many orders
#: of magnitude more (every proof's falsification test asserts > 1e3 × bound).
DEFAULT_C = 200.0


class Problem(NamedTuple):
    """A regression problem: context ``x`` ``(n, d)``, targets ``y`` ``(n, m)``, ``queries`` ``(q, d)``.

    ``kappa`` is the condition number ``X`` was built with; ``tan_theta`` is
    ``‖Y − HY‖/‖HY‖`` (0 for an exact fit).
    """

    x: np.ndarray
    y: np.ndarray
    queries: np.ndarray
    kappa: float
    tan_theta: float


def unit_roundoff(dtype) -> float:
    """``u``, half the machine epsilon of ``dtype``."""
    return float(np.finfo(dtype).eps) / 2


def random_orthonormal(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n × k`` matrix with Haar-distributed orthonormal columns."""
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diagonal(r))


def make_design(
    rng: np.random.Generator, n: int, d: int, kappa: float = 1.0, rank: int | None = None
) -> np.ndarray:
    """``X = U diag(s) Vᵀ`` with ``s`` log-spaced from 1 to ``1/kappa`` (``rank`` of them nonzero)."""
    r = min(n, d) if rank is None else rank
    s = np.zeros(min(n, d))
    s[:r] = np.logspace(0, -math.log10(kappa), r)
    k = min(n, d)
    return (random_orthonormal(rng, n, k) * s) @ random_orthonormal(rng, d, k).T


def make_problem(
    rng: np.random.Generator,
    n: int,
    d: int,
    m: int = 1,
    *,
    kappa: float = 1.0,
    noise: float = 1e-2,
    queries: int = 5,
    dtype=np.float64,
) -> Problem:
    """A full-rank problem with ``κ(X) = kappa``, ``Y = X B + noise·E`` and Gaussian queries.

    Queries are drawn in the row space scale of ``X`` (``Q Vᵀ`` with unit
    singular values): out-of-sample, but not dominated by one direction.
    """
    x = make_design(rng, n, d, kappa).astype(dtype)
    y = (x.astype(np.float64) @ rng.standard_normal((d, m)) + noise * rng.standard_normal((n, m)))
    q = rng.standard_normal((queries, d)) / math.sqrt(d)
    y, q = y.astype(dtype), q.astype(dtype)
    return Problem(x, y, q, float(kappa), tan_theta(x, y))


def tan_theta(x: np.ndarray, y: np.ndarray) -> float:
    """``‖Y − HY‖ / ‖HY‖``, the angle between ``Y`` and the column space of ``X`` (float64)."""
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fitted = x64 @ np.linalg.lstsq(x64, y64, rcond=None)[0]
    return float(np.linalg.norm(y64 - fitted) / max(np.linalg.norm(fitted), np.finfo(float).tiny))


def relative_error(actual, expected) -> float:
    """``‖actual − expected‖_F / ‖expected‖_F`` in float64 (absolute if ``expected`` is 0)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        raise ValueError(f"shapes differ: actual {a.shape}, expected {e.shape}")
    scale = np.linalg.norm(e)
    return float(np.linalg.norm(a - e) / (scale if scale > 0 else 1.0))


def column_scale(x) -> np.ndarray:
    """``diag D``: powers of two near the column maxima of ``X``, as olsjax's routes equilibrate."""
    _, exponent = np.frexp(np.abs(np.asarray(x, np.float64)).max(axis=0))
    return np.ldexp(1.0, exponent)


def equilibrated_condition_number(x) -> float:
    """``κ(X D⁻¹)`` (float64) with ``D = column_scale(X)``.

    The condition number that olsjax's equilibrating routes see. Their bound
    ``c·u·(κ(XD⁻¹) + …)`` holds for the scaled coefficients ``Dβ`` (compare
    ``D β̂`` with ``D β``): the unscaled ``β`` can be off by up to ``κ(D)`` more.
    """
    return float(np.linalg.cond(np.asarray(x, np.float64) / column_scale(x)))


def error_bound(dtype, kappa: float, p: int, *, c: float = DEFAULT_C, tan_theta: float = 0.0) -> float:
    """``c·u·(κ^p + κ²·tan θ)``: THEOREMS.md's bound with the least-squares residual term."""
    return c * unit_roundoff(dtype) * (kappa**p + kappa**2 * tan_theta)


def max_log10_kappa(dtype, p: int, *, c: float = DEFAULT_C, target: float = 1e-3) -> float:
    """Largest ``log10 κ`` for which the bound ``c·u·κ^p`` stays below ``target`` (non-vacuous)."""
    return math.log10(target / (c * unit_roundoff(dtype))) / p


def assert_within_bound(
    actual,
    expected,
    *,
    kappa: float,
    p: int,
    dtype=None,
    c: float = DEFAULT_C,
    tan_theta: float = 0.0,
    what: str = "result",
) -> float:
    """Assert ``relative_error(actual, expected) ≤ error_bound(...)``; return the error.

    **Arguments:** ``kappa`` ``κ(X)``; ``p`` 1 or 2 (see the module docstring);
    ``dtype`` whose ``u`` applies (default: that of ``actual``); ``c``;
    ``tan_theta`` of the problem; ``what`` names the quantity in the message.
    """
    dtype = np.asarray(actual).dtype if dtype is None else dtype
    err = relative_error(actual, expected)
    bound = error_bound(dtype, kappa, p, c=c, tan_theta=tan_theta)
    if not err <= bound:  # also catches NaN
        raise AssertionError(
            f"{what}: relative error {err:.3e} exceeds bound {bound:.3e} "
            f"= {c}·u·(κ^{p} + κ²·tanθ) with u={unit_roundoff(dtype):.3e}, κ={kappa:.3e}, "
            f"tanθ={tan_theta:.3e}"
        )
    return err


# --- exact rational arithmetic -------------------------------------------------

Matrix = list[list[Fraction]]


def _fractions(a) -> Matrix:
    return [[Fraction(float(v)) for v in row] for row in np.atleast_2d(np.asarray(a, np.float64))]


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    cols = list(zip(*b))
    return [[sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in cols] for row in a]


def _transpose(a: Matrix) -> Matrix:
    return [list(col) for col in zip(*a)]


def _rref(a: Matrix) -> tuple[Matrix, list[int]]:
    """Reduced row echelon form and pivot columns, exactly."""
    rows = [row[:] for row in a]
    pivots: list[int] = []
    r = 0
    for col in range(len(rows[0]) if rows else 0):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][col]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [v - f * w for v, w in zip(rows[i], rows[r])]
        pivots.append(col)
        r += 1
    return rows[:r], pivots


def _solve(a: Matrix, b: Matrix) -> Matrix:
    """``a⁻¹ b`` for square nonsingular ``a``, by Gauss–Jordan on ``[a | b]``."""
    d = len(a)
    reduced, pivots = _rref([ra + rb for ra, rb in zip(a, b)])
    if pivots[:d] != list(range(d)):
        raise ValueError("matrix is singular")
    return [row[d:] for row in reduced]


def _exact_beta(x: Matrix, y: Matrix, ridge: Fraction) -> Matrix:
    xt = _transpose(x)
    rank_factor, pivots = _rref(x)
    d = len(xt)
    if ridge or len(pivots) == d:
        g = _matmul(xt, x)
        for i in range(d):
            g[i][i] += ridge
        return _solve(g, _matmul(xt, y))
    # X = C F with C the pivot columns and F the nonzero rows of rref(X):
    # X⁺ = Fᵀ (F Fᵀ)⁻¹ (CᵀC)⁻¹ Cᵀ, the minimum-norm pseudo-inverse.
    c = _transpose([xt[j] for j in pivots])
    f = rank_factor
    ct = _transpose(c)
    inner = _solve(_matmul(ct, c), _matmul(ct, y))
    return _matmul(_transpose(f), _solve(_matmul(f, _transpose(f)), inner))


def exact_lstsq(x, y, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``(XᵀX + λI)⁺XᵀY`` (minimum-norm if ``X`` is rank-deficient), rounded to float64.

    Rational arithmetic on the float data: for small problems (``n·d`` up to a
    few hundred) it takes milliseconds to a second.
    """
    y2 = np.asarray(y, np.float64)
    vector = y2.ndim == 1
    beta = _exact_beta(_fractions(x), _fractions(y2[:, None] if vector else y2), Fraction(ridge))
    out = np.array([[float(v) for v in row] for row in beta])
    return out[:, 0] if vector else out


def exact_predict(x, y, queries, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``X* (XᵀX + λI)⁺XᵀY`` rounded to float64 (the product is taken exactly too)."""
    y2 = np.asarray(y, np.float64)
    vector = y2.ndim == 1
    beta = _exact_beta(_fractions(x), _fractions(y2[:, None] if vector else y2), Fraction(ridge))
    pred = np.array([[float(v) for v in row] for row in _matmul(_fractions(queries), beta)])
    return pred[:, 0] if vector else pred


def exact_hat_matrix(x, *, ridge: float = 0.0) -> np.ndarray:
    """Exact ``X (XᵀX + λI)⁺ Xᵀ`` rounded to float64."""
    xa = np.asarray(x, np.float64)
    return exact_predict(xa, np.eye(len(xa)), xa, ridge=ridge)


# --- hard problems: NIST StRD-style designs, log relative error ----------------

#: ``−log10 u`` for float64, ``u = 2⁻⁵³``: a float64 result cannot carry more
#: correct digits than this, so ``lre`` reports it for an exact match.
LRE_CAP = -math.log10(2.0**-53)
#: The kinds of hard problem ``hard_problems`` draws from.
HARD_KINDS: tuple[str, ...] = ("polynomial", "collinear", "exact-fit", "no-intercept")
#: Polynomial degrees ``hard_problems`` draws from (``d = degree + 1``).
POLYNOMIAL_DEGREES: tuple[int, ...] = (3, 5, 8, 10)


class HardCase(NamedTuple):
    """A named hard problem: ``kind`` is one of ``HARD_KINDS``."""

    name: str
    kind: str
    problem: Problem


def lre(estimate, exact) -> float:
    """Log relative error: correct significant digits, ``min_i −log10(|est_i − exact_i|/|exact_i|)``.

    Conventions (McCullough; NIST StRD): where ``exact_i = 0`` the absolute
    error ``−log10|est_i|`` is used; each entry is clipped to ``[0, LRE_CAP]``,
    so a zero error counts ``LRE_CAP`` and an error of 100% or more counts 0
    ("no correct digits"); any NaN or inf in ``estimate`` gives 0.

    **Arguments:** ``estimate`` and ``exact``, arrays of the same shape.
    **Returns:** the minimum over entries, computed in float64.
    **Raises:** ``ValueError`` if the shapes differ or ``exact`` is not finite.
    """
    est, ref = np.asarray(estimate, np.float64), np.asarray(exact, np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"shapes differ: estimate {est.shape}, exact {ref.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError("exact reference is not finite")
    if not np.all(np.isfinite(est)):
        return 0.0
    scale = np.where(ref == 0, 1.0, np.abs(ref))
    with np.errstate(divide="ignore", over="ignore"):  # ±inf digits are clipped below
        digits = -np.log10(np.abs(est - ref) / scale)
    return float(np.clip(digits, 0.0, LRE_CAP).min())


def polynomial_design(t, degree: int) -> np.ndarray:
    """The raw monomial (Vandermonde) design ``[1, t, t², …, t^degree]``, ``(n, degree + 1)`` float64."""
    return np.vander(np.asarray(t, np.float64), degree + 1, increasing=True)


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
    """
    low, high = interval
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
    """
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

    **Raises:** ``ValueError`` if ``n``, ``d`` are too large for exactness.
    """
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
    """
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


def exact_gram_inverse(x) -> np.ndarray:
    """``(XᵀX)⁻¹`` exactly, as a ``d × d`` object array of ``Fraction`` (``X`` of full column rank).

    Gauss–Jordan on the ``d × d`` Gram matrix only, so much faster than
    ``exact_lstsq`` with many targets. ``x``: floats (taken exactly, every float
    is a dyadic rational) or an object array of Python integers.
    """
    xe = np.vectorize(Fraction, otypes=[object])(np.asarray(x, dtype=object))
    d = xe.shape[1]
    m = np.concatenate([xe.T @ xe, np.vectorize(Fraction, otypes=[object])(np.eye(d, dtype=int))], axis=1)
    for col in range(d):  # XᵀX is positive definite: every pivot is nonzero
        m[col] = m[col] / m[col, col]
        for row in range(d):
            if row != col:
                m[row] = m[row] - m[row, col] * m[col]
    return m[:, d:]


# --- Hypothesis strategies ----------------------------------------------------

if st is not None:
    # Unparametrised Sequence annotations: runtime type checkers (beartype under the
    # test-time jaxtyping hook) sample container items with the `random` module,
    # which Hypothesis forbids inside strategies.

    @st.composite
    def problems(
        draw,
        *,
        shapes: Sequence = SHAPES,
        targets: Sequence = (1, 2, 3),
        max_log_kappa: float = 6.0,
        noise: Sequence = (0.0, 1e-3, 1.0),
        dtype=np.float64,
    ) -> Problem:
        """Full-rank problems with a shape from ``shapes``, ``m`` from ``targets``,
        ``log10 κ`` uniform in ``[0, max_log_kappa]`` and a noise level from ``noise``."""
        n, d = draw(st.sampled_from(shapes))
        m = draw(st.sampled_from(targets))
        log_kappa = draw(st.floats(0.0, max_log_kappa, allow_nan=False))
        level = draw(st.sampled_from(noise))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        return make_problem(rng, n, d, m, kappa=10.0**log_kappa, noise=level, dtype=dtype)

    @st.composite
    def deficient_problems(
        draw,
        *,
        shapes: Sequence = DEFICIENT_SHAPES,
        targets: Sequence = (1, 2),
    ) -> Problem:
        """Exactly rank-deficient problems: ``X = A B`` with small integer ``A`` (``n×r``),
        ``B`` (``r×d``), ``r < min(n, d)``, so the rank is exact in floating point.

        ``kappa`` is the ratio of the largest to the smallest *nonzero* singular value.
        """
        n, d = draw(st.sampled_from(shapes))
        m = draw(st.sampled_from(targets))
        r = draw(st.integers(1, min(n, d) - 1))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = (rng.integers(-3, 4, (n, r)) @ rng.integers(-3, 4, (r, d))).astype(np.float64)
        y = rng.standard_normal((n, m))
        q = rng.standard_normal((5, d))
        s = np.linalg.svd(x, compute_uv=False)
        assume(s[0] > 0)
        nonzero = s[s > s[0] * max(n, d) * np.finfo(float).eps]
        return Problem(x, y, q, float(nonzero[0] / nonzero[-1]), tan_theta(x, y))

    @st.composite
    def hard_problems(draw, *, kinds: Sequence = HARD_KINDS, max_degree: int = 10) -> Problem:
        """Hard problems (queries ``I``) of a kind from ``kinds``: polynomials of a degree from
        ``POLYNOMIAL_DEGREES`` up to ``max_degree``, 16 × 4 or 16 × 7 collinear, 21 × 4 or
        21 × 6 exact fits, or ``d = 1`` or ``2`` through the origin, each from a drawn seed."""
        kind = draw(st.sampled_from(kinds))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if kind == "polynomial":
            degrees = [g for g in POLYNOMIAL_DEGREES if g <= max_degree]
            return make_polynomial_problem(rng, draw(st.sampled_from(degrees)))
        if kind == "collinear":
            return make_collinear_problem(rng, d=draw(st.sampled_from((4, 7))))
        if kind == "exact-fit":
            return make_exact_fit_problem(rng, d=draw(st.sampled_from((4, 6))))
        if kind == "no-intercept":
            return make_no_intercept_problem(rng, d=draw(st.sampled_from((1, 2))))
        raise ValueError(f"unknown kind {kind!r}; expected one of {HARD_KINDS}")
