"""Eager input validation shared by the public functions.

Shapes, dtypes and options are checked before any computation, also while
tracing under ``jit``. Values (NaN/inf, rank) can only be checked on concrete
arrays: under a user's ``jit`` the constructions instead return NaN where the
problem is rank-deficient, so nothing returns a finite wrong answer.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def is_concrete(*arrays: Any) -> bool:
    """True when no argument is a tracer, so its values can be inspected."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def as_float_array(value: Any, name: str, *, min_ndim: int) -> Array:
    """``value`` as a floating JAX array of at least ``min_ndim`` dimensions, or a clear error."""
    array = value if isinstance(value, jax.Array) else jnp.asarray(np.asarray(value))
    if array.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {array.dtype}; "
            f"convert it first, e.g. {name}.astype('float64')"
        )
    if array.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {array.shape}"
        )
    if 0 in array.shape[-2:]:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if is_concrete(array):
        bad = int(jnp.size(array) - jnp.sum(jnp.isfinite(array)))
        if bad:
            raise ValueError(f"{name} contains {bad} NaN or infinite entries")
    return array


def check_same_dtype(a: Array, b: Array, name_a: str, name_b: str) -> None:
    """Refuse silent dtype promotion between two inputs."""
    if a.dtype != b.dtype:
        raise TypeError(
            f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}"
        )


def design(value: Any, name: str = "X") -> Array:
    """A design/token matrix ``(..., n, d)``."""
    return as_float_array(value, name, min_ndim=2)


def design_and_targets(x_value: Any, y_value: Any) -> tuple[Array, Array, bool]:
    """``X (..., n, d)`` and ``Y``, either ``(..., n, m)`` or a vector ``(..., n)``.

    **Returns:** ``(X, Y as (..., n, m), whether Y was a vector)``.
    """
    x = design(x_value, "X")
    y = as_float_array(y_value, "Y", min_ndim=1)
    check_same_dtype(x, y, "X", "Y")
    vector = y.ndim == x.ndim - 1
    if vector:
        y = y[..., None]
    if y.ndim != x.ndim:
        raise ValueError(
            f"Y must have shape (..., n, m) or (..., n) matching X {x.shape}, got {y.shape}"
        )
    if y.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"X and Y must agree on batch dimensions and n: X has shape {x.shape}, "
            f"Y has shape {y.shape if not vector else y.shape[:-1]}"
        )
    return x, y, vector


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def check_ridge(ridge: Any) -> float:
    """A finite, non-negative Python float (static under ``jit``)."""
    if isinstance(ridge, jax.Array) and not is_concrete(ridge):
        raise TypeError("ridge must be a Python float; it is a static argument")
    value = _number(ridge, "ridge")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
    return value


def check_rcond(rcond: Any) -> float | None:
    """``None`` (full rank required) or a relative cutoff in ``[0, 1)``."""
    if rcond is None:
        return None
    value = _number(rcond, "rcond")
    if not 0 <= value < 1:
        raise ValueError(f"rcond must be None or in [0, 1), got {rcond!r}")
    return value


def check_count(value: Any, name: str) -> int:
    """A non-negative Python ``int`` (``bool`` counts as 0 or 1)."""
    if isinstance(value, float) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_full_rank_shape(x: Array, *, allowed: bool) -> None:
    """``n >= d`` unless a rank-deficient answer was asked for (``allowed``)."""
    n, d = x.shape[-2:]
    if n < d and not allowed:
        raise ValueError(
            f"X has n={n} rows and d={d} columns: with n < d the least-squares solution is "
            "not unique; pass rcond (e.g. rcond=1e-6) for the minimum-norm solution"
        )


def raise_if_deficient(deficient: Array, rank: Array, x: Array, route: str) -> None:
    """After an eager computation, turn the route's rank flag into a clear error."""
    if not is_concrete(deficient) or not bool(jnp.any(deficient)):
        return
    d = x.shape[-1]
    worst = int(jnp.min(rank))
    why = "its factorisation broke down" if worst < 0 else f"numerical rank {worst} < d={d}"
    raise ValueError(
        f"X is rank-deficient to the working precision of route {route!r} "
        f"({why}, dtype {x.dtype}); pass rcond for the "
        "minimum-norm solution, add ridge > 0, or use factor/method 'qr' or 'svd' "
        "if X is full rank but ill-conditioned"
    )
