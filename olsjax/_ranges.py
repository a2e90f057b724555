"""Accuracy ranges: the condition numbers over which each construction meets its bound.

A route accepts ``κ̂ = κ(X D⁻¹)`` up to ``route.kappa_max`` (its rank floor).
The paper's forward pass adds its own limit (THEOREMS.md T13): the attention
state ``S = KᵀV/n`` carries an error ``‖E‖ ≤ c_E·u·κ``, which ``k``
refinement layers reduce to ``‖E‖^{k+1}``, amplified by ``κ`` on the query side. So

- with ``k ≥ 1`` layers on a ``p = 1`` route the forward pass meets the
  ``p = 1`` bound ``c·u·κ`` while the remainder stays within half of it,
  ``(c_E·u·κ)^{k+1}·κ ≤ (c/2)·u·κ``, i.e. for
  ``κ ≤ refinement_limit(k) = (c·u/2)^{1/(k+1)} / (c_E·u)``;
- the one-layer model (``k = 0``), the values-are-targets form (T4) and the
  Gram routes are ``p = 2`` forms: their bound ``c·u·κ²`` stays below ``1/2``
  for ``κ ≤ (max(d, c)·ε)^{-1/2}`` (``one_layer_limit``), the Gram routes'
  own rank floor.

Beyond its limit a construction refuses (NaN under ``jit``). The default
number of layers is the fewest that cover every route's whole range.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._linalg import BOUND_C, unit_roundoff
from ._routes import SVD, Cholesky, Route

#: ``c_E`` in ``‖S − M‖ ≤ c_E·u·κ``: measured up to 3.96 (20 × 4 designs, svd route,
#: 40 seeds at κ = 1e4; about 1 at κ ≥ 1e10); 8 leaves a factor 2.
STATE_ERROR = 8.0
#: The most refinement layers the default adds: the limit tends to ``1/(c_E·u) = 1/(4ε)``
#: as ``k`` grows; 64 layers (6.9e14 in float64) cover the SVD's rank floor
#: ``1/(max(n, d)·ε)`` from ``max(n, d) = 7`` on (float32: 5). Below, no number of
#: layers can: the default refuses the top of that range. Each layer costs two ``k × k`` products.
MAX_LAYERS = 64


def refinement_limit(layers: int, dtype) -> float:
    """Largest ``κ`` at which ``layers ≥ 1`` refinement layers keep the ``p = 1`` bound."""
    u = unit_roundoff(dtype)
    return (BOUND_C * u / 2) ** (1 / (layers + 1)) / (STATE_ERROR * u)


def one_layer_limit(d: int, dtype) -> float:
    """Largest ``κ`` at which a ``p = 2`` form's bound ``c·u·κ²`` stays below 1/2: ``(max(d, c)·ε)^{-1/2}``."""
    return Cholesky().kappa_max(d, d, dtype)  # a Gram route's floor (it does not depend on n)


def forward_limit(route: Route, layers: int, d: int, dtype) -> float:
    """The ``κ`` up to which ``construct_ols(..., refine=layers)`` meets its bound (before the route's own floor)."""
    if layers == 0 or route.kappa_power == 2:
        return one_layer_limit(d, dtype)
    return refinement_limit(layers, dtype)


def default_layers(n: int, d: int, dtype) -> int:
    """The fewest layers (at least 2) whose limit covers the widest range any route accepts for ``n`` rows.

    That range is the rank floor of the routes that never form ``XᵀX``,
    ``1/(max(n, d)·ε)``; Gram routes accept less and get the same layers, so
    the parameters' structure, and ``jit(forward)``'s compilation, do not
    depend on the route.
    """
    need = SVD().kappa_max(n, d, dtype)
    return next((k for k in range(2, MAX_LAYERS) if refinement_limit(k, dtype) >= need), MAX_LAYERS)


def condition(spectrum, keep) -> jnp.ndarray:
    """``κ̂ = s_max / s_min`` over the singular values kept (all, or those above ``rcond``); inf if none."""
    smallest = jnp.min(jnp.where(keep, spectrum, jnp.inf), axis=-1)
    return jnp.max(spectrum, axis=-1) / smallest
