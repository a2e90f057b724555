"""Fast memory: recursive least squares (T9) and Hopfield energies and updates (T10).

*RLS.* ``rls(X, Y)`` returns the OLS coefficients ``β_t`` of every prefix
``X[:t], Y[:t]`` with ``t ≥ d`` (shorter prefixes have no unique solution and
are not returned), streaming one row at a time with a constant-size state.
The default, ``method="qr"``, is square-root RLS: the state is the triangular
factor ``R_t`` of ``X[:t] = Q_t R_t`` and ``z_t = Q_tᵀY[:t]``, updated by an
orthogonal (Householder) triangularisation of ``[R, z; x_tᵀ, y_tᵀ]`` and
solved ``R_t β_t = z_t`` per prefix: backward stable, so each ``β_t`` meets
the ``p = 1`` bound ``c·u·(κ_t + κ_t²·tan θ_t)`` like a QR solve.
``method="sherman-morrison"`` is the textbook update of ``P = (XᵀX)⁻¹``
(initialised from the first ``d`` rows by an inverse of their Gram matrix):
it works with ``XᵀX``, so its error grows at least like ``u·κ²``, and its
update of ``P`` accumulates rounding along the stream (measured past the
``p = 2`` bound, THEOREMS.md T9); it is there for comparison and for its
``O(d²)`` step (QR: ``O(d²(d + m))``).

*Hopfield.* Patterns are the rows ``x_μ`` of ``X`` ``(N, d)``; a state ``ξ``
is a row ``(d,)``. Energies and one synchronous update each:

- ``"quadratic"``: ``E = −½ Σ_μ (x_μᵀξ)²``, ``ξ ← sign(XᵀXξ)``: the sign of one
  linear-attention step (query ``ξ``, keys and values ``X``).
- ``"polynomial"``: ``E = −Σ_μ F(x_μᵀξ)``, ``F(z) = z^a`` (Krotov & Hopfield
  2016); unit ``i`` takes the sign of ``Σ_μ F(z_μ^{(i)} + x_μi) −
  F(z_μ^{(i)} − x_μi)``, ``z_μ^{(i)} = x_μᵀξ − x_μi ξ_i``, for all ``i`` at once
  from the same ``ξ`` (synchronous). For ``a = 2`` that is
  ``sign((XᵀX − diag XᵀX) ξ)``: the classical rule without self-coupling.
- ``"exponential"``: the modern continuous energy of Ramsauer et al. 2021,
  ``E = −β⁻¹ log Σ_μ exp(β x_μᵀξ) + ½ξᵀξ + β⁻¹ log N + ½M²``
  (``M = max_μ ‖x_μ‖``), and ``ξ ← Xᵀ softmax(βXξ)``: one softmax-attention
  step with scale ``β``. ``E`` never increases along this update (CCCP).

Binary updates keep a unit's current value where its field is exactly 0.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks
from ._attention import _softmax_matrix
from ._checks import Data
from ._gd import _positive, _steps
from ._linalg import gram, mm, mT, xty
from ._ranges import one_layer_limit
from ._routes import QR

# --- recursive least squares ---------------------------------------------------------------

RLS_METHODS = ("qr", "sherman-morrison")


def _qr_step(carry, row):
    """Triangularise ``[R, z; xᵀ, yᵀ]`` and keep its first ``d`` rows: the factor of one more row."""
    rz = carry
    x, y = row
    d = x.shape[-1]
    stacked = jnp.concatenate([rz, jnp.concatenate([x, y], axis=-1)[..., None, :]], axis=-2)
    rz = jnp.linalg.qr(stacked, mode="r")[..., :d, :]
    return rz, rz


def _rls_qr(x, y):
    d = x.shape[-1]
    rows = (jnp.moveaxis(x, -2, 0), jnp.moveaxis(y, -2, 0))
    start = jnp.zeros((*x.shape[:-2], d, d + y.shape[-1]), x.dtype)
    _, rz = jax.lax.scan(_qr_step, start, rows)
    rz = jnp.moveaxis(rz[d - 1 :], 0, -3)  # prefixes t = d..n: (..., n-d+1, d, d+m)
    r, z = rz[..., :d], rz[..., d:]
    beta = jax.scipy.linalg.solve_triangular(r, z, lower=False)
    s = jnp.linalg.svd(r, compute_uv=False)
    return beta, s[..., 0] / s[..., -1]


def _sm_step(carry, row):
    p, beta, g = carry
    x, y = row
    px = jnp.einsum("...ij,...j->...i", p, x, precision=jax.lax.Precision.HIGHEST)
    gain = px / (1 + jnp.sum(x * px, axis=-1, keepdims=True))
    residual = y - jnp.einsum("...j,...jm->...m", x, beta, precision=jax.lax.Precision.HIGHEST)
    beta = beta + gain[..., :, None] * residual[..., None, :]
    p = p - gain[..., :, None] * px[..., None, :]
    g = g + x[..., :, None] * x[..., None, :]
    return (p, beta, g), (beta, p, g)


def _rls_sherman_morrison(x, y):
    d = x.shape[-1]
    head_x, head_y = x[..., :d, :], y[..., :d, :]
    g = gram(head_x)
    p = jnp.linalg.inv(g)
    beta = mm(p, xty(head_x, head_y))
    rows = (jnp.moveaxis(x[..., d:, :], -2, 0), jnp.moveaxis(y[..., d:, :], -2, 0))
    _, (betas, ps, gs) = jax.lax.scan(_sm_step, (p, beta, g), rows)
    betas = jnp.concatenate([beta[None], betas], axis=0)
    ps = jnp.concatenate([p[None], ps], axis=0)
    gs = jnp.concatenate([g[None], gs], axis=0)
    # κ̂² = ‖G‖₂‖P‖₂ with P the running inverse; NaN/inf once P has broken down.
    kappa = jnp.sqrt(jnp.linalg.norm(gs, ord=2, axis=(-2, -1)) * jnp.linalg.norm(ps, ord=2, axis=(-2, -1)))
    return jnp.moveaxis(betas, 0, -3), jnp.moveaxis(kappa, 0, -1)


@functools.partial(jax.jit, static_argnames="method")
def _rls(x, y, limit, *, method):
    beta, kappa = (_rls_qr if method == "qr" else _rls_sherman_morrison)(x, y)
    bad = ~(kappa <= limit)  # NaN counts as bad
    return jnp.where(bad[..., None, None], jnp.nan, beta), kappa, jnp.any(bad)


def rls_limit(method: str, n: int, d: int, dtype) -> float:
    """The largest prefix condition number ``κ_t`` ``rls`` accepts: the QR route's rank floor, or the Gram floor."""
    if method == "qr":
        return QR().kappa_max(n, d, dtype)
    return one_layer_limit(d, dtype)


def rls(
    X: Data, Y: Data, *, method: str = "qr"
) -> Float[Array, "*b prefixes d m"] | Float[Array, "*b prefixes d"]:
    """Recursive least squares: the OLS coefficients of every prefix ``t = d..n``, streamed row by row.

    ``β_t = (X[:t]ᵀX[:t])⁻¹X[:t]ᵀY[:t]``; the state is ``O(d·(d + m))``
    whatever ``n`` (module docstring for the two methods).

    **Arguments:** ``X`` ``(..., n, d)`` with ``n ≥ d``; ``Y`` ``(..., n, m)``
    or ``(..., n)``; ``method``: ``"qr"`` (default, square-root RLS,
    backward stable, ``p = 1``) or ``"sherman-morrison"`` (the rank-one update
    of ``(XᵀX)⁻¹``, for comparison: no error bound, it drifts on
    ill-conditioned streams, THEOREMS.md T9).

    **Returns:** ``(..., n − d + 1, d, m)`` (``(..., n − d + 1, d)`` for a
    vector ``Y``): entry ``t − d`` holds ``β_t``. Prefixes ``t < d`` are not
    returned: their least-squares solution is not unique.

    **Raises:** ``ValueError`` for ``n < d``, an unknown method, NaN/inf (naming
    ``X`` or ``Y``), or a prefix whose condition estimate exceeds the method's
    range (``rls_limit``: ``1/(max(n, d)·ε)`` for QR, ``(max(d, 200)·ε)^{-1/2}``
    for Sherman–Morrison), i.e. numerically rank-deficient for it; under
    ``jit`` those prefixes are NaN. ``TypeError`` for bad dtypes.
    """
    if method not in RLS_METHODS:
        raise ValueError(f"method must be one of {RLS_METHODS}, got {method!r}")
    x, y, vector = _checks.design_and_targets(X, Y)
    n, d = x.shape[-2:]
    if n < d:
        raise ValueError(f"X has n={n} rows and d={d} columns: rls needs n >= d (a prefix of rank d)")
    limit = rls_limit(method, n, d, x.dtype)
    beta, kappa, bad = _rls(x, y, np.asarray(limit, jax.dtypes.canonicalize_dtype(x.dtype)), method=method)
    if _checks.is_concrete(bad) and bool(bad):
        _checks.finite_input(x, "X")
        _checks.finite_input(y, "Y")
        flat = np.asarray(kappa).reshape(-1, kappa.shape[-1])
        task, first = divmod(int(np.argmax(~(flat <= limit))), flat.shape[-1])
        raise ValueError(
            f"prefix t={first + d} of X (task {task}) is numerically rank-deficient for rls method "
            f"{method!r}: its condition estimate κ̂ = {flat[task, first]:.2e} exceeds {limit:.2e} "
            f"(dtype {x.dtype})" + ("; method='qr' accepts up to "
                                    f"{rls_limit('qr', n, d, x.dtype):.2e}" if method != "qr" else "")
        )
    return beta[..., 0] if vector else beta


# --- Hopfield --------------------------------------------------------------------------------

ENERGIES = ("quadratic", "polynomial", "exponential")


def _sign(field, previous):
    """``sign(field)``, keeping ``previous`` where the field is exactly zero."""
    return jnp.where(field > 0, 1, jnp.where(field < 0, -1, previous)).astype(previous.dtype)


def _polynomial_field(x, xi, degree: int):
    """``Σ_μ F(z_μ^{(i)} + x_μi) − F(z_μ^{(i)} − x_μi)`` for every unit ``i``: ``(B, d)``."""
    z = mm(xi, mT(x))  # (B, N)
    x = x[None]
    rest = z[..., :, None] - x * xi[..., None, :]  # (B, N, d): z without unit i
    return jnp.sum((rest + x) ** degree - (rest - x) ** degree, axis=-2)


def _update(x, xi, energy: str, degree: int, beta):
    if energy == "quadratic":
        # One linear-attention step, scores then values, times N: (ξᵀXᵀ)X. Without the 1/N,
        # ±1 data stay integers, exact, so a zero field (a tie) is exactly zero.
        return _sign(mm(mm(xi, mT(x)), x), xi)
    if energy == "polynomial":
        return _sign(_polynomial_field(x, xi, degree), xi)
    return mm(_softmax_matrix(xi, x, beta, False), x)


def _energy(x, xi, energy: str, degree: int, beta):
    z = mm(xi, mT(x))
    if energy == "quadratic":
        return -0.5 * jnp.sum(z * z, axis=-1)
    if energy == "polynomial":
        return -jnp.sum(z**degree, axis=-1)
    n = x.shape[-2]
    big = jnp.max(jnp.sum(x * x, axis=-1))
    lse = jax.scipy.special.logsumexp(beta * z, axis=-1)
    return (-lse + math.log(n)) / beta + 0.5 * jnp.sum(xi * xi, axis=-1) + 0.5 * big


@functools.partial(jax.jit, static_argnames=("energy", "degree"))
def _hopfield_energy(x, xi, beta, *, energy, degree):
    out = _energy(x, xi, energy, degree, beta)
    return out, _checks.output_status(out)


@functools.partial(jax.jit, static_argnames=("energy", "degree", "steps"))
def _hopfield_retrieve(x, xi, beta, *, energy, degree, steps):
    out = jax.lax.fori_loop(0, steps, lambda _, s: _update(x, s, energy, degree, beta), xi)
    return out, _checks.output_status(out)


def _hopfield_inputs(patterns, state, name, energy, degree, beta):
    if energy not in ENERGIES:
        raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
    x = _checks.array(patterns, "patterns", min_ndim=2)
    if x.ndim != 2:
        raise ValueError(f"patterns must have shape (N, d), got {x.shape}")
    xi = _checks.array(state, name, min_ndim=1)
    _checks.same_dtype(xi, x, name, "patterns")
    if xi.shape[-1] != x.shape[-1]:
        raise ValueError(f"{name} must have shape (..., d) with d={x.shape[-1]} (patterns {x.shape}), got {xi.shape}")
    if xi.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {xi.shape}")
    degree = _steps(degree, "degree")
    if degree < 2:
        raise ValueError(f"degree must be an integer >= 2, got {degree!r}")
    beta = _positive(beta, "beta", jax.dtypes.canonicalize_dtype(x.dtype))
    return x, xi, degree, beta


def hopfield_energy(
    patterns: Data, state: Data, *, energy: str = "quadratic", degree: int = 3, beta: ArrayLike = 1.0
) -> Float[Array, "*b"]:
    """The Hopfield energy ``E(ξ)`` of ``state`` for stored ``patterns`` (module docstring for the three).

    **Arguments:** ``patterns`` ``(N, d)``: the rows ``x_μ``; ``state``
    ``(..., d)``: one or many ``ξ``; ``energy``: ``"quadratic"``,
    ``"polynomial"`` (``F(z) = z^degree``, ``degree ≥ 2``, static) or
    ``"exponential"`` (inverse temperature ``beta > 0``, may be traced).

    **Returns:** ``(...)``, one energy per state.

    **Raises:** ``ValueError`` naming the argument for shapes, NaN/inf, an
    unknown ``energy`` or a bad ``degree``/``beta``; ``TypeError`` for dtypes.
    """
    x, xi, degree, beta = _hopfield_inputs(patterns, state, "state", energy, degree, beta)
    flat = jnp.reshape(jnp.asarray(xi), (-1, xi.shape[-1]))
    out, status = _hopfield_energy(jnp.asarray(x), flat, beta, energy=energy, degree=degree)
    return _checks.finish(out, status, dict(patterns=x, state=xi), dtype=x.dtype).reshape(xi.shape[:-1])


def hopfield_retrieve(
    patterns: Data, cues: Data, *, energy: str = "quadratic", degree: int = 3, beta: ArrayLike = 1.0,
    steps: int = 1,
) -> Float[Array, "*b d"]:
    """``steps`` synchronous Hopfield updates of every cue (module docstring for the three rules).

    ``"quadratic"``: ``ξ ← sign(XᵀXξ)``; ``"polynomial"``: the Krotov–Hopfield
    unit rule for ``F(z) = z^degree``, all units at once; ``"exponential"``:
    ``ξ ← Xᵀ softmax(βXξ)``. Binary rules return ``±1`` (a unit with zero
    field keeps its value).

    **Arguments:** as ``hopfield_energy``, with ``cues`` ``(..., d)`` for the
    state; ``steps``: the number of updates, a positive integer (static).

    **Returns:** ``(..., d)``, the states after ``steps`` updates.

    **Raises:** as ``hopfield_energy``; also for ``steps`` not a positive integer.
    """
    x, xi, degree, beta = _hopfield_inputs(patterns, cues, "cues", energy, degree, beta)
    steps = _steps(steps)
    flat = jnp.reshape(jnp.asarray(xi), (-1, xi.shape[-1]))
    out, status = _hopfield_retrieve(jnp.asarray(x), flat, beta, energy=energy, degree=degree, steps=steps)
    return _checks.finish(out, status, dict(patterns=x, cues=xi), dtype=x.dtype).reshape(xi.shape)
