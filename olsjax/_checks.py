"""The checked entry shared by every public function: validate → jitted core → NaN-poison → raise.

1. *Validate* shapes, dtypes and options eagerly, before tracing (also under a
   caller's ``jit``); inputs are not read here.
2. *Prepare*: numpy input goes to the device once, or not at all when it is
   large and the route works from moments (``_stream``); small inputs get their
   rows padded with zeros to a bucket (``bucket_rows``) so that a new ``n``
   rarely means a new compile; the real ``n`` travels as a traced scalar.
3. The *jitted core* computes the result and a ``Status`` in one pass:
   whether every output is finite (NaN/inf anywhere in the inputs reaches the
   products ``XᵀX``, ``XᵀY``, ``KᵀV``), whether the problem is rank-deficient
   to the route's working precision, the numerical rank and the route that
   ran. It poisons deficient entries with NaN, so under a caller's ``jit``
   nothing returns a finite wrong answer.
4. *Finish*: eagerly, one small transfer of the status; only when it is bad
   are the inputs scanned, to name the argument at fault in the error.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Bool, Float, Int

from ._routes import ROUTE_NAMES, Route

#: What public functions take as data: arrays (numpy, JAX) or nested lists of numbers.
Data = Union[ArrayLike, Sequence[Any]]

#: Inputs with at most this many rows are padded to a row bucket (``bucket_rows``).
BUCKET_MAX_ROWS = 1 << 16


class Status(NamedTuple):
    """What a jitted core reports beside its result (all arrays); ``ok`` is all an eager caller reads when it holds.

    ``kappa``: the condition estimate a construction's accuracy range is judged by (NaN where none is).
    """

    ok: Bool[Array, ""]
    finite: Bool[Array, ""]
    deficient: Bool[Array, "*b"]
    rank: Int[Array, "*b"]
    route: Int[Array, ""]
    kappa: Float[Array, "*b"]


def status(finite, deficient, rank, route, kappa=None) -> Status:
    """A ``Status`` with its summary ``ok = finite and nothing deficient``."""
    kappa = jnp.full(jnp.shape(rank), jnp.nan) if kappa is None else kappa
    return Status(finite & ~jnp.any(deficient), finite, deficient, rank, route, kappa)


class Limit(NamedTuple):
    """A construction's accuracy range beyond the route's rank floor (``_ranges``), for the refusal message."""

    kappa: float
    form: str
    advice: str


def output_status(out) -> Status:
    """The ``Status`` of a computation that runs no route (``forward``): only finiteness can fail."""
    return status(all_finite(out), jnp.zeros((), bool), jnp.zeros((), int), jnp.asarray(-1))


class Info(NamedTuple):
    """Diagnostics of a fit, as data (returned with ``info=True``).

    ``route``: index into ``olsjax.ROUTE_NAMES`` of the route that ran (one
    for a whole batch; ``"auto"`` reports its choice); ``rank``: numerical
    rank of each task's ``X`` at that route's working precision.
    """

    route: Int[Array, ""]
    rank: Int[Array, "*b"]

    @property
    def route_name(self) -> str:
        """The route's name (needs a concrete ``route``: not under ``jit``)."""
        return ROUTE_NAMES[int(self.route)]


def is_concrete(*arrays: Any) -> bool:
    """True when no argument is a tracer, so its values can be inspected."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


# --- 1. validation (shapes, dtypes, options; never values of arrays) ---------------------


def array(value: Any, name: str, *, min_ndim: int) -> np.ndarray | jax.Array:
    """``value`` as a float32/float64 array of at least ``min_ndim`` dimensions, not yet on the device."""
    a = value if isinstance(value, (jax.Array, np.ndarray)) else np.asarray(value)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {a.dtype}; "
            f"convert it first, e.g. {name}.astype('float64')"
        )
    if a.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {a.shape}")
    if 0 in a.shape[-2:]:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    if a.dtype == np.float64 and not jax.config.jax_enable_x64:
        warnings.warn(
            "float64 input, but JAX's 64-bit mode is off: olsjax computes in float32 "
            "(u = 6e-8, its own error bound). For float64, call "
            'jax.config.update("jax_enable_x64", True) at start-up, or run under '
            "`with jax.enable_x64(True):`",
            PrecisionWarning, stacklevel=_caller_level(),
        )
        fits_float32(a, name)
    return a


def fits_float32(a: np.ndarray, name: str) -> None:
    """Refuse float64 data that float32 cannot hold: entries above its maximum or below its smallest normal."""
    magnitude = np.abs(a[np.isfinite(a) & (a != 0)])
    f32 = np.finfo(np.float32)
    if magnitude.size and (magnitude.max() > f32.max or magnitude.min() < f32.tiny):
        raise ValueError(
            f"{name} has entries from {magnitude.min():.1e} to {magnitude.max():.1e}, outside "
            f"float32's normal range [{f32.tiny:.1e}, {f32.max:.1e}], and JAX's 64-bit mode is off: "
            'enable it (jax.config.update("jax_enable_x64", True)) or rescale the data'
        )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside olsjax: warnings point at the user's call."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class PrecisionWarning(UserWarning):
    """float64 input computed in float32 because JAX's 64-bit mode is off."""


def same_dtype(a, b, name_a: str, name_b: str) -> None:
    """Refuse silent dtype promotion between two inputs."""
    canonical = jax.dtypes.canonicalize_dtype
    if canonical(a.dtype) != canonical(b.dtype):
        raise TypeError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")


def design_and_targets(x_value: Any, y_value: Any) -> tuple[Any, Any, bool]:
    """``X (..., n, d)`` and ``Y``, either ``(..., n, m)`` or a vector ``(..., n)``.

    **Returns:** ``(X, Y as (..., n, m), whether Y was a vector)``, host or device arrays.
    """
    x = array(x_value, "X", min_ndim=2)
    y = array(y_value, "Y", min_ndim=1)
    same_dtype(x, y, "X", "Y")
    vector = y.ndim == x.ndim - 1
    if vector:
        y = y[..., None]
    if y.ndim != x.ndim:
        raise ValueError(f"Y must have shape (..., n, m) or (..., n) matching X {x.shape}, got {y.shape}")
    if y.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"X and Y must agree on batch dimensions and n: X has shape {x.shape}, "
            f"Y has shape {y.shape[:-1] if vector else y.shape}"
        )
    return x, y, vector


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def ridge_value(ridge: Any, dtype) -> np.ndarray | jax.Array | None:
    """``λ`` as a traced scalar, or ``None`` for a concrete 0 (no ridge: a different, static path).

    Concrete values must be finite and ``≥ 0``; a traced ``λ`` is taken as given
    (a negative one makes ``Σ_λ`` indefinite: NaN, never a finite wrong answer).
    """
    if is_concrete(ridge):
        value = _number(ridge, "ridge")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
        if value == 0:
            return None
        return np.asarray(value, jax.dtypes.canonicalize_dtype(dtype))
    return jnp.asarray(ridge, dtype)


def rcond_value(rcond: Any, dtype) -> np.ndarray | jax.Array | None:
    """``None`` (full rank required) or a relative cutoff in ``[0, 1)`` as a traced scalar."""
    if rcond is None:
        return None
    if is_concrete(rcond):
        value = _number(rcond, "rcond")
        if not 0 <= value < 1:
            raise ValueError(f"rcond must be None or in [0, 1), got {rcond!r}")
        return np.asarray(value, jax.dtypes.canonicalize_dtype(dtype))
    return jnp.asarray(rcond, dtype)


def count(value: Any, name: str) -> int:
    """A non-negative Python ``int`` (``bool`` counts as 0 or 1)."""
    if isinstance(value, float) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def route_request(route: Route, rcond, *, whiten: bool) -> None:
    """Refuse what a route cannot do: pseudo-invert without the ability, or whiten without a factor."""
    if whiten and not route.whitens:
        raise ValueError(f"route {route.name!r} builds no whitening factor; choose another route")
    if rcond is not None and not route.pseudo_inverse:
        raise ValueError(
            f"rcond (minimum-norm solution) needs a route that pseudo-inverts, e.g. 'svd'; "
            f"route {route.name!r} cannot"
        )


def full_rank_shape(shape: tuple[int, ...], *, allowed: bool) -> None:
    """``n >= d`` unless a rank-deficient answer was asked for (``allowed``)."""
    n, d = shape[-2:]
    if n < d and not allowed:
        raise ValueError(
            f"X has n={n} rows and d={d} columns: with n < d the least-squares solution is "
            "not unique; pass rcond (e.g. rcond=1e-6) for the minimum-norm solution"
        )


# --- 2. preparation: to the device once, rows in buckets -------------------------------


def bucket_rows(n: int) -> int:
    """``n`` rounded up to three significant bits (at most 25% more rows), up to ``BUCKET_MAX_ROWS``.

    100…112 → 112, 113…128 → 128: twenty consecutive ``n`` compile at most
    twice. Larger inputs keep their ``n`` (a compile is cheap next to the
    solve, and padding would copy them).
    """
    if n > BUCKET_MAX_ROWS:
        return n
    step = 1 << max(n.bit_length() - 3, 0)
    return -(-n // step) * step


def to_device(a: np.ndarray | jax.Array, rows: int | None = None) -> jax.Array:
    """``a`` on the device, with zero rows appended up to ``rows`` (axis -2): one copy at most."""
    if isinstance(a, np.ndarray):  # device_put: 4x jnp.asarray's speed on host arrays
        if rows is not None and rows != a.shape[-2]:
            padded = np.zeros((*a.shape[:-2], rows, a.shape[-1]), a.dtype)
            padded[..., : a.shape[-2], :] = a
            a = padded
        return jax.device_put(a)
    if rows is None or rows == a.shape[-2] or not is_concrete(a):
        return jnp.asarray(a)
    pad = [(0, 0)] * a.ndim
    pad[-2] = (0, rows - a.shape[-2])
    return jnp.pad(a, pad)


def real_rows(n: int, dtype) -> np.ndarray:
    """The real row count as a scalar argument of the core (traced, so every bucket compiles once)."""
    return np.asarray(n, jax.dtypes.canonicalize_dtype(dtype))


def rows_of(*arrays) -> tuple[int, int]:
    """The real row count of the first array and the bucket to pad to (unpadded under tracing)."""
    n = arrays[0].shape[-2]
    return n, (bucket_rows(n) if is_concrete(*arrays) else n)


# --- 3./4. status and finish -------------------------------------------------------------


def all_finite(tree) -> Bool[Array, ""]:
    """Whether every floating leaf of ``tree`` is finite (one fused reduction per leaf)."""
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(a.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def finite_input(a, name: str) -> None:
    """Raise naming ``name`` if the concrete array ``a`` has NaN or infinite entries (the slow path)."""
    bad = int(np.size(a) - np.count_nonzero(np.isfinite(np.asarray(a))))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite entries")


def finish(
    result, status: Status, inputs: dict[str, Any], route: Route | None = None, shape=(), dtype=None,
    limit: Limit | None = None,
):
    """``result``, or (eagerly) a clear error naming the input, the rank or the range at fault.

    Under tracing the status cannot be read: the core has already poisoned
    deficient entries with NaN.
    """
    if not is_concrete(status.ok) or bool(status.ok):
        return result
    _, finite, deficient, rank, ran, kappa = jax.device_get(status)
    for name, a in inputs.items():
        if a is not None:
            finite_input(a, name)
    if route is not None and np.any(deficient):
        worst = int(np.min(rank))
        d = shape[-1]
        beyond = np.asarray(kappa)[np.asarray(deficient)]
        if limit is not None and worst >= min(shape[-2:]) and not np.all(np.isnan(beyond)):
            raise ValueError(
                f"X is outside the accuracy range of {limit.form}: its condition estimate "
                f"κ̂ = {np.nanmax(beyond):.2e} exceeds {limit.kappa:.2e} (dtype {dtype})"
                + ("; inf: ridge swamps XᵀX beyond working precision" if np.isinf(np.nanmax(beyond)) else "")
                + f", where the error bound would say nothing; {limit.advice}"
            )
        why = "its factorisation broke down" if worst < 0 else f"numerical rank {worst} < d={d}"
        chosen = ROUTE_NAMES[int(ran)]
        which = repr(route.name) if chosen == route.name else f"{route.name!r} (which ran {chosen!r})"
        raise ValueError(
            f"X is rank-deficient to the working precision of route {which} ({why}, dtype "
            f"{dtype}); pass rcond for the minimum-norm solution, add ridge > 0, or use "
            "route='qr' or 'svd' if X is full rank but ill-conditioned"
        )
    raise ValueError(
        "the result overflowed although every input is finite: rescale "
        + ", ".join(name for name in inputs if not name.startswith("params."))
        + " (their products exceed the range of " + str(dtype) + ")"
    )


# --- 5. inputs out of the range where products are safe: one rescaled retry ----------------


def _powers_of_two(a, axis):
    """``2^⌊log₂ max|a|⌋`` over ``axis`` (1 where the maximum is 0)."""
    top = np.max(np.abs(a), axis=axis, keepdims=axis is not None)
    _, exponent = np.frexp(np.where(top > 0, top, 1))
    return np.ldexp(np.ones_like(top), exponent - 1)


def rescaling(status: Status, x, y=None, *, per_column: bool):
    """Powers of two ``(P, c)`` that bring ``X`` and ``Y`` to entries of size ``[1, 2)``, or ``None``.

    Only after a failed eager call (``status`` bad) whose inputs are finite but
    badly scaled: column maxima outside ``[2^(-e/4), 2^(e/4)]`` (``e`` the
    largest exponent: ``1e±77`` in float64, ``1e±9`` in float32), where ``XᵀX``
    or ``XᵀY`` may over- or underflow. Dividing by powers of two is exact, so
    the rescaled problem is the same one. ``P`` is per column, or one number
    when the answer depends on the scale of ``X`` (``ridge``, ``rcond``:
    ``per_column=False``); ``c`` is per target column.
    """
    if not is_concrete(status.ok) or bool(status.ok):
        return None
    arrays = [np.asarray(a) for a in (x, y) if a is not None]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        return None
    limit = 2.0 ** (jnp.finfo(jax.dtypes.canonicalize_dtype(arrays[0].dtype)).maxexp // 4)
    scales = [_powers_of_two(a, -2 if (per_column or a is not arrays[0]) else None) for a in arrays]
    if all(np.all((p >= 1 / limit) & (p <= limit)) for p in scales):
        return None
    return tuple(scales) if y is not None else scales[0]
