"""Testing support: generated regression problems, exact references, the error bound.

Like ``numpy.testing``, this package is public: ``proofs/``, ``tests/`` and
``olsjax verify`` use it, and so can users checking their own constructions.
One idea per module:

- ``_problems``: ``make_design``/``make_problem`` build ``X = U diag(s) Vᵀ``
  with log-spaced singular values, so ``κ(X)`` is chosen, and targets
  ``Y = X B + noise``.
- ``_exact``: ``exact_lstsq``/``exact_predict``/``exact_hat_matrix``/
  ``exact_gram_inverse`` solve least squares in rational arithmetic
  (``fractions.Fraction``): every float is a dyadic rational, so the reference
  is the exact answer for the rounded data, independent of any floating-point
  code, including the code under test. Minimum-norm answers for rank-deficient
  ``X`` come from an exact full-rank factorisation. One Gauss–Jordan
  elimination serves them all.
- ``_bounds``: ``assert_within_bound`` checks THEOREMS.md's
  ``‖f − f_ref‖/‖f_ref‖ ≤ c·u·(κ^p + κ²·tan θ)``: ``p = 1`` for routes that
  never form ``XᵀX``, ``p = 2`` for those that do (``bound_power(route)``,
  from the route's ``forms_gram``); the ``κ²·tan θ`` term is the
  unavoidable sensitivity of least squares to data with residual
  (Wedin; Higham, *Accuracy and Stability*, §20.1), zero for an exact fit.
  ``lre`` counts correct significant digits (the log relative error of
  McCullough and of NIST's StRD certified values).
- ``_hard``: hard problems with exact references, in the spirit of NIST StRD's
  linear regression data sets: raw monomial designs on a narrow interval away
  from 0 (Filip: ``κ ≈ 1e15`` at degree 10), trending near-collinear
  regressors (Longley), integer exact fits (Wampler) and regression through
  the origin (NoInt1/NoInt2). Their ``queries`` are ``I``, so predictions at
  them are the coefficients ``β``; ``hard_suite`` is a fixed, named, seeded
  list of them.
- ``_strategies``: Hypothesis strategies (``problems``, ``deficient_problems``,
  ``hard_problems``) draw shapes from a small fixed set, so JIT compiles once
  per shape. They exist only where Hypothesis is installed.
"""

from __future__ import annotations

from . import _strategies
from ._bounds import (
    DEFAULT_C,
    LRE_CAP,
    assert_within_bound,
    bound_power,
    column_scale,
    equilibrated_condition_number,
    error_bound,
    lre,
    max_log10_kappa,
    relative_error,
    unit_roundoff,
)
from ._exact import exact_gram_inverse, exact_hat_matrix, exact_lstsq, exact_predict
from ._hard import (
    HARD_KINDS,
    POLYNOMIAL_DEGREES,
    HardCase,
    hard_suite,
    make_collinear_problem,
    make_exact_fit_problem,
    make_no_intercept_problem,
    make_polynomial_problem,
    polynomial_design,
)
from ._problems import (
    DEFICIENT_SHAPES,
    SHAPES,
    Problem,
    make_design,
    make_problem,
    random_orthonormal,
    tan_theta,
)

__all__ = [
    "DEFAULT_C",
    "DEFICIENT_SHAPES",
    "HARD_KINDS",
    "LRE_CAP",
    "POLYNOMIAL_DEGREES",
    "SHAPES",
    "HardCase",
    "Problem",
    "assert_within_bound",
    "bound_power",
    "column_scale",
    "equilibrated_condition_number",
    "error_bound",
    "exact_gram_inverse",
    "exact_hat_matrix",
    "exact_lstsq",
    "exact_predict",
    "hard_suite",
    "lre",
    "make_collinear_problem",
    "make_design",
    "make_exact_fit_problem",
    "make_no_intercept_problem",
    "make_polynomial_problem",
    "make_problem",
    "max_log10_kappa",
    "polynomial_design",
    "random_orthonormal",
    "relative_error",
    "tan_theta",
    "unit_roundoff",
]

if _strategies.st is not None:
    from ._strategies import deficient_problems, hard_problems, problems

    __all__ += ["deficient_problems", "hard_problems", "problems"]
