"""The error bound ``c·u·(κ^p + κ²·tan θ)``, relative error, log relative error, equilibration.

``p`` comes from a route's facts, in one place: ``bound_power``.
"""

from __future__ import annotations

import math

import numpy as np

from .._linalg import BOUND_C
from .._routes import Route, as_route

#: Default constant ``c`` of the bound. Backward-stable QR/SVD/Cholesky have
#: backward error ``O(n·d·u)`` in the worst case. Measured on the fixed shapes:
#: most routes stay below ~20·u·κ^p, but LAPACK's SVD has a backward error
#: ``‖X v_i − s_i u_i‖`` up to ~85·u·s_max at 64×8, and the svd factor's weight
#: product (T3) reached 99.5·u at κ = 1 under the CI profile, so c = 200 gives a
#: factor 2 over the worst measured case. Wrong constructions miss by many orders
#: of magnitude more (every proof's falsification test asserts > 1e3 × bound).
DEFAULT_C = BOUND_C
#: ``−log10 u`` for float64, ``u = 2⁻⁵³``: a float64 result cannot carry more
#: correct digits than this, so ``lre`` reports it for an exact match.
LRE_CAP = -math.log10(2.0**-53)


def unit_roundoff(dtype) -> float:
    """``u``, half the machine epsilon of ``dtype``."""
    return float(np.finfo(dtype).eps) / 2


def bound_power(route: Route | str) -> int:
    """The power ``p`` of ``κ`` in a route's bound (``route.kappa_power``) for its solve (``lstsq``).

    ``route``: a ``Route`` object or its name (``olsjax.ROUTES``). The one place
    proofs and tests derive ``p`` from a route's facts: 2 for Cholesky, eigh
    and ZCA; 1 for QR, SVD, JAX's lstsq, CholeskyQR2 (below its proven limit,
    Yamamoto et al. 2015) and ``"auto"`` (Cholesky only at ``κ ≤ 4``).
    """
    return as_route(route).kappa_power


def relative_error(actual, expected) -> float:
    """``‖actual − expected‖_F / ‖expected‖_F`` in float64 (absolute if ``expected`` is 0)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        raise ValueError(f"shapes differ: actual {a.shape}, expected {e.shape}")
    scale = np.linalg.norm(e)
    return float(np.linalg.norm(a - e) / (scale if scale > 0 else 1.0))


def column_scale(x) -> np.ndarray:
    """``diag D``: the powers of two ``D_j ≤ ‖x_j‖₂ < 2D_j`` olsjax's routes equilibrate with (1 for a zero column).

    Computed independently of the library (numpy, float64).
    """
    norms = np.linalg.norm(np.asarray(x, np.float64), axis=0)
    _, exponent = np.frexp(norms)
    return np.where(norms > 0, np.ldexp(1.0, exponent - 1), 1.0)


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

    **Arguments:** ``kappa`` ``κ(X)``; ``p`` 1 or 2 (``bound_power`` of the
    route); ``dtype`` whose ``u`` applies (default: that of ``actual``); ``c``;
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
