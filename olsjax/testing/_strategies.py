"""Hypothesis strategies: problems drawn from small fixed sets of shapes, so JIT compiles once per shape.

Hypothesis is a test dependency: the strategies exist only where it is
installed (``st`` is ``None`` otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._hard import (
    HARD_KINDS,
    POLYNOMIAL_DEGREES,
    make_collinear_problem,
    make_exact_fit_problem,
    make_no_intercept_problem,
    make_polynomial_problem,
)
from ._problems import DEFICIENT_SHAPES, SHAPES, Problem, make_problem, tan_theta

try:  # Hypothesis is a test dependency: strategies exist only where it is installed.
    from hypothesis import assume
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised only without the test extra
    st = None

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
