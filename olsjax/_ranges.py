"""Accuracy ranges: the condition numbers over which each construction meets its bound.

A route accepts ``κ̂ = κ(X D⁻¹)`` up to ``route.kappa_max`` (its rank floor).
The paper's forward pass adds its own limit (THEOREMS.md T12, "Accuracy
range"): the attention state ``S = KᵀV/n`` carries an error
``‖E‖ ≤ c_E·u·κ``, which ``k`` refinement layers reduce to ``‖E‖^{k+1}``
times the amplification ``κ``. So

- with ``k ≥ 1`` layers on a ``p = 1`` route the forward pass meets the
  ``p = 1`` bound for ``(c_E·u·κ)^{k+1}·κ ≤ u·κ``, i.e.
  ``κ ≤ refinement_limit(k) = u^{-k/(k+1)} / c_E``;
- the one-layer model (``k = 0``), the values-are-targets form (T4) and the
  Gram routes are ``p = 2`` forms: their bound ``c·u·κ²`` says something only
  for ``κ ≤ (d·ε)^{-1/2}`` (``one_layer_limit``), the Gram routes' own rank floor.

Beyond its limit a construction refuses (NaN under ``jit``). The default
number of layers is the fewest that cover every route's whole range.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._linalg import unit_roundoff
from ._routes import SVD, Route

#: ``c_E`` in ``‖S − M‖ ≤ c_E·u·κ``. Measured at most 1.2 (20 × 4 designs, κ up to
#: 1e14, svd route); 4 leaves a margin for wider designs.
STATE_ERROR = 4.0
#: The most refinement layers the default adds. As ``k`` grows the limit tends to
#: ``1/(c_E·u)``; 24 layers reach 80% of it (``u^{-24/25}``), the SVD's rank floor
#: for ``n ≥ 6`` in float64. Each layer costs two ``k × k`` products.
MAX_LAYERS = 24


def refinement_limit(layers: int, dtype) -> float:
    """Largest ``κ`` at which ``layers ≥ 1`` refinement layers keep the ``p = 1`` bound."""
    u = unit_roundoff(dtype)
    return u ** (-layers / (layers + 1)) / STATE_ERROR


def one_layer_limit(d: int, dtype) -> float:
    """Largest ``κ`` at which a ``p = 2`` form's bound ``c·u·κ²`` is informative: ``(d·ε)^{-1/2}``."""
    return (d * 2 * unit_roundoff(dtype)) ** -0.5


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
