"""Small, fixed-shape test problems and numpy-side comparison helpers.

Shapes come from a fixed set (N, D, M, Q, BATCH) so that every jitted library
function compiles a handful of times for the whole suite, not once per test.
Expected values are always computed here with numpy, never with olsjax.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import olsjax
from olsjax import testing

N, D, M, Q, BATCH = 8, 3, 2, 5, 2

# Route lists, derived from the routes' own facts (never a hand-kept copy of the registry).
#: Every concrete route: all of them solve (``lstsq``).
SOLVE_ROUTES: tuple[str, ...] = olsjax.ROUTE_NAMES
#: Concrete routes that build a whitening factor (``construct_*``, ``hat_matrix``).
WHITEN_ROUTES: tuple[str, ...] = tuple(
    name for name, r in olsjax.ROUTES.items() if r.whitens and name != "auto"
)
#: Concrete routes that return the minimum-norm answer (accept ``rcond``).
PINV_ROUTES: tuple[str, ...] = tuple(
    name for name in olsjax.ROUTE_NAMES if olsjax.ROUTES[name].pseudo_inverse
)
#: Condition number of every "well-conditioned" design built below.
KAPPA = 2.0


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def well_conditioned(seed: int, *, n: int = N, d: int = D, batch: tuple[int, ...] = (),
                     dtype=np.float64) -> np.ndarray:
    """``X`` with singular values spread evenly over ``[√n, KAPPA·√n]``: ``κ(X) = KAPPA`` exactly.

    Scaling by ``√n`` keeps ``Σ = XᵀX/n`` of order one.
    """
    g = rng(seed)
    out = np.empty((*batch, n, d))
    for idx in np.ndindex(*batch):
        u, _ = np.linalg.qr(g.standard_normal((n, d)))
        v, _ = np.linalg.qr(g.standard_normal((d, d)))
        s = np.linspace(KAPPA, 1.0, d) * np.sqrt(n)
        out[idx] = (u * s) @ v.T
    return out.astype(dtype)


def targets(seed: int, *, n: int = N, m: int | None = M, batch: tuple[int, ...] = (),
            dtype=np.float64) -> np.ndarray:
    """Gaussian targets ``(..., n, m)``, or ``(..., n)`` when ``m`` is None."""
    shape = (*batch, n) if m is None else (*batch, n, m)
    return rng(seed + 10_000).standard_normal(shape).astype(dtype)


def gaussian(seed: int, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    return rng(seed + 20_000).standard_normal(shape).astype(dtype)


def exact_low_rank(seed: int, *, n: int = N, d: int = 4, r: int = 2) -> np.ndarray:
    """``X = A B`` with small-integer ``A (n, r)``, ``B (r, d)``: rank exactly ``r`` in float64.

    Every entry is a small integer, so ``X`` is represented exactly and its
    rank is ``r`` with no rounding (checked by ``numpy.linalg.matrix_rank``).
    """
    g = rng(seed + 30_000)
    while True:
        a = g.integers(-3, 4, (n, r)).astype(np.float64)
        b = g.integers(-3, 4, (r, d)).astype(np.float64)
        x = a @ b
        if np.linalg.matrix_rank(x) == r:
            return x


def duplicated_column(seed: int) -> np.ndarray:
    """A well-conditioned ``(N, D)`` design with its first column appended again: ``(N, D+1)``, rank ``D``."""
    x = well_conditioned(seed)
    return np.concatenate([x, x[:, :1]], axis=1)


def np_ols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference least-squares coefficients from ``numpy.linalg.lstsq``, batched by a Python loop."""
    if x.ndim == 2:
        return np.linalg.lstsq(x, y, rcond=None)[0]
    return np.stack([np_ols(xi, yi) for xi, yi in zip(x, y)])


def np_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Closed-form ridge coefficients ``(XᵀX + λI)⁻¹XᵀY``."""
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def rel_err(actual, expected) -> float:
    """``testing.relative_error`` (which checks the shapes agree), refusing non-finite results."""
    assert np.all(np.isfinite(np.asarray(actual))), "non-finite entries in the result"
    return testing.relative_error(actual, expected)


def assert_close(actual, expected, tol: float) -> None:
    """Norm-wise relative error at most ``tol`` (entrywise checks would choke on near-zero entries)."""
    err = rel_err(actual, expected)
    assert err <= tol, f"relative error {err:.3e} exceeds {tol:.1e}"


def j(a) -> jnp.ndarray:
    """A numpy array as a JAX array, for the ``Float[Array, ...]``-annotated functions."""
    return jnp.asarray(a)
