"""The problem plan shared by the paper-form proofs (T1–T3), and the paper's construction.

Each (shape, m, dtype, route) is one XLA compilation of the construction and
those dominate the run time, so ``m`` is tied to the shape: float64 runs every
fixed shape, two with ``m = 1`` (the usual case) and three with ``m = 3``;
float32 (same code path, its own ``u``) runs ``d = 2`` and ``d = 5`` with ``m = 2``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import olsjax
from olsjax import testing


def paper_ols(x, y, **options) -> olsjax.LinearTransformer:
    """``construct_ols`` without refinement layers: the paper's one-layer model, which T1–T7 are about."""
    return olsjax.construct_ols(x, y, refine=0, **options)


#: Every concrete route that builds a whitening factor ``L`` (T3: all rotations of the
#: paper's ``eigh``), from the registry: a new route is proved as soon as it is registered.
#: ``"auto"`` is not a factor of its own: it runs one of ``olsjax.Auto.routes``.
WHITENING: tuple[olsjax.Route, ...] = tuple(
    r for r in olsjax.ROUTES.values() if r.whitens and r.name != "auto"
)


def factor_power(route: olsjax.Route) -> int:
    """``κ`` power carried by the factor ``L`` itself (T1's lemmas, T4's attention matrix): the route's fact.

    ``route.kappa_power`` (via ``testing.bound_power``): ``p = 2`` for a route
    that builds ``L`` from the rounded Gram matrix (its rounding ``u‖Σ‖`` is
    amplified by ``‖L‖² = ‖Σ⁻¹‖``), ``p = 1`` for one that factors ``X`` itself
    backward-stably, and for CholeskyQR2, whose second pass repairs the Gram
    matrix below ``kappa_limit`` (Yamamoto et al. 2015) — which every problem
    drawn for the p = 2 range is below (``κ`` up to
    ``10**testing.max_log10_kappa(dtype, 2)``: 2.1e5 in float64, where the limit is
    ≥ 8e5 on ``testing.SHAPES``; 9.2 in float32, limit ≥ 60).
    """
    return testing.bound_power(route)


DTYPES = (np.float64, np.float32)
#: ``(shapes, targets)`` to draw from, per dtype.
PLAN = {
    np.float64: ((((12, 1), (33, 5)), (1,)), (((8, 2), (16, 3), (64, 8)), (3,))),
    np.float32: ((((8, 2), (33, 5)), (2,)),),
}


def problems(dtype, *, max_log_kappa=None, min_d=1):
    """Generated problems of ``dtype`` following ``PLAN``, with ``d ≥ min_d``."""
    if max_log_kappa is None:
        # κ up to where c·u·κ² reaches 1e-3: beyond it the p = 2 bound would say nothing.
        max_log_kappa = testing.max_log10_kappa(dtype, 2)
    return st.one_of([
        testing.problems(
            shapes=[shape for shape in shapes if shape[1] >= min_d], targets=targets,
            dtype=dtype, max_log_kappa=max_log_kappa,
        )
        for shapes, targets in PLAN[dtype]
    ])


#: Well-conditioned float64 problems, where the bound is ~2e-10 or less, for the
#: falsification tests. d > 1 and κ ≥ 2: for d = 1, or κ = 1 (Σ = I/n), a
#: transposed or rotated factor (Lᵀ, O L) is a valid factor too.
FALSIFIABLE = problems(np.float64, max_log_kappa=2.0, min_d=2).filter(
    lambda problem: problem.kappa >= 2.0
)
