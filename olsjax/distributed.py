"""Fits on row-sharded data: ``lstsq``, ``construct_ols`` and ``forward`` over a ``jax.sharding.Mesh``.

The rows of ``X`` (and ``Y``) are split over one or more mesh axes; every
device reduces its own rows with ``jax.shard_map`` and only ``d × d``-sized
results cross devices (or hosts, after ``jax.distributed.initialize``):

- the *fast route* sums the moments ``G = XᵀX``, ``B = XᵀY`` with a ``psum``
  and hands them to the same Gram entry points as streamed host inputs
  (``_lstsq_gram``, ``_construct_ols_gram``);
- the *stable route* is TSQR: each device takes the ``R`` factor of its rows of
  ``[X | Y]``, the factors are gathered and factored once more, and the top
  ``d`` rows ``[R | QᵀY]`` of the result pose the same least-squares problem
  (``RᵀR = XᵀX``, ``RᵀQᵀY = XᵀY``, the same column norms) in ``d`` rows, which
  the single-device core then solves. Row signs of ``R`` are not unique, but a
  sign flip of a row of ``[R | QᵀY]`` leaves that problem, hence ``β`` and the
  predictor, unchanged.

``"auto"`` reads the same condition estimate as on one device (from the
summed Gram matrix): Cholesky from the moments when it picks Cholesky, else
TSQR and the SVD of ``R`` (error ``∝ κ``; the SVD also gives the rank).
Routes that work from moments (``"cholesky"``, ``"eigh"``, ``"zca"``) take
the fast route, the others (``"qr"``, ``"svd"``, ``"cholqr2"``, ``"lstsq"``)
run on TSQR's ``R``. Refusals are those of the single-device calls.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from . import _checks
from ._checks import Data, Info
from ._construct import _construct_ols, _construct_ols_gram, _unscaled
from ._linalg import gram, xty
from ._lstsq import _lstsq, _lstsq_gram, prepare_route, unscaled
from ._ranges import default_layers, forward_limit
from ._routes import SVD, Auto, Route
from ._transformer import (
    LinearTransformer,
    _apply,
    _augmented_gram,
    _biased,
    _leaves,
    _projected_memory,
    _tokens,
    gram_memory,
    readout,
    refuse_diverging,
)

__all__ = ["construct_ols", "forward", "lstsq", "shard_rows"]

#: A mesh axis name, or several (rows split over their product).
Axis = Hashable | tuple[Hashable, ...]


# --- where the rows are -------------------------------------------------------------------


def _names(axis: Axis) -> tuple[Hashable, ...]:
    return axis if isinstance(axis, tuple) else (axis,)


def _devices_along(mesh: Mesh, axis: Axis) -> int:
    return int(np.prod([mesh.shape[a] for a in _names(axis)]))


def _check_axis(mesh: Any, axis: Axis, rows: int, name: str) -> None:
    """Refuse a mesh that is not a ``Mesh``, an axis it does not name, or rows that do not divide evenly."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    missing = [a for a in _names(axis) if a not in mesh.axis_names]
    if missing:
        raise ValueError(f"axis {axis!r} is not an axis of the mesh, whose axes are {mesh.axis_names}")
    devices = _devices_along(mesh, axis)
    if rows % devices:
        raise ValueError(
            f"{name} has {rows} rows, not divisible by the {devices} devices along mesh axis {axis!r}: "
            f"drop or add rows (zero rows in both X and Y change no least-squares answer, but change n)"
        )


def _row_axis(a: Any, name: str, mesh: Mesh | None = None, axis: Axis | None = None) -> tuple[Mesh, Axis]:
    """The mesh and the axis (or axes) that split the rows of ``a``: given, or read off its sharding.

    **Raises:** ``ValueError`` when ``a`` is not row-sharded and no ``mesh``/``axis``
    was given, when its columns are sharded, or the rows do not divide evenly.
    """
    if (mesh is None) != (axis is None):
        raise ValueError("pass both mesh and axis, or neither (then they are read off X's sharding)")
    if mesh is None:
        sharding = getattr(a, "sharding", None) if _checks.is_concrete(a) else None
        spec = sharding.spec if isinstance(sharding, NamedSharding) else ()
        spec = tuple(spec) + (None,) * (a.ndim - len(spec))
        if not spec or spec[a.ndim - 2] is None:
            where = "under jit its sharding is not visible" if not _checks.is_concrete(a) else (
                f"its sharding is {sharding}" if sharding is not None else "it is a host array")
            raise ValueError(
                f"{name} is not row-sharded ({where}): place it with "
                f"olsjax.distributed.shard_rows({name}, mesh, axis), or pass mesh= and axis="
            )
        if spec[a.ndim - 1] is not None:
            raise ValueError(f"{name} must be sharded by rows only, got partition spec {sharding.spec}")
        mesh, axis = sharding.mesh, spec[a.ndim - 2]
    _check_axis(mesh, axis, a.shape[-2], name)
    return mesh, axis


def shard_rows(a: Data, mesh: Mesh, axis: Axis) -> jax.Array:
    """``a`` ``(n, d)`` or ``(n,)`` on ``mesh`` with its rows split over ``axis`` (replicated over other axes).

    One process only: with several (``jax.distributed.initialize``) each builds
    its rows into the global array with ``jax.make_array_from_process_local_data``.

    **Raises:** ``ValueError`` for an axis the mesh lacks or rows that do not divide evenly.
    """
    a = a if isinstance(a, (jax.Array, np.ndarray)) else np.asarray(a)
    if a.ndim not in (1, 2):
        raise ValueError(f"shard_rows takes an (n, d) or (n,) array, got shape {a.shape}")
    _check_axis(mesh, axis, a.shape[0], "the array")
    return jax.device_put(a, NamedSharding(mesh, PartitionSpec(axis, *(None,) * (a.ndim - 1))))


def _sharded_2d(X: Data, name: str) -> Any:
    x = _checks.array(X, name, min_ndim=2)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (n, d) on a mesh (one task; batch with vmap on one device), got {x.shape}")
    return x


# --- the reductions (inside shard_map: each device sees its own rows) ---------------------


def _row_spec(axis: Axis) -> PartitionSpec:
    return PartitionSpec(axis, None)


def _moments(x, y, *, mesh: Mesh, axis: Axis):
    """``(XᵀX, XᵀY)`` summed over the devices along ``axis``: one ``psum`` of ``d × (d + m)`` numbers."""
    def local(xl, yl):
        return jax.lax.psum((gram(xl), xty(xl, yl)), axis)
    return jax.shard_map(local, mesh=mesh, in_specs=(_row_spec(axis),) * 2, out_specs=PartitionSpec())(x, y)


def _tsqr(x, y, *, mesh: Mesh, axis: Axis):
    """``(R, QᵀY)`` of ``X = QR`` by TSQR: local ``R`` of ``[X | Y]``, gathered, factored again (on every device)."""
    d = x.shape[-1]

    def local(xl, yl):
        a = jnp.concatenate([xl, yl], axis=-1)
        if a.shape[-2] < a.shape[-1]:  # fewer local rows than columns: zero rows change no R
            a = jnp.pad(a, [(0, a.shape[-1] - a.shape[-2]), (0, 0)])
        r = jnp.linalg.qr(a, mode="r")
        r = jnp.linalg.qr(jax.lax.all_gather(r, axis, tiled=True), mode="r")
        return r[:d, :d], r[:d, d:]

    # check_vma off: the second QR runs on identical gathered data, so its result is replicated.
    spec = PartitionSpec()
    return jax.shard_map(local, mesh=mesh, in_specs=(_row_spec(axis),) * 2, out_specs=(spec, spec),
                         check_vma=False)(x, y)


def _routed(gram_core, core, x, y, n, args, *, route: Route, mesh: Mesh, axis: Axis, **options):
    """``gram_core`` on the summed moments, falling back (for ``Auto``) to ``core`` on TSQR's ``R``."""
    def stable(route):
        r, qty = _tsqr(x, y, mesh=mesh, axis=axis)
        return core(r, qty, n, *args, route=route, **options)

    if not route.from_gram:
        return stable(route)
    *result, complete = gram_core(*_moments(x, y, mesh=mesh, axis=axis), n, *args, route=route, **options)
    if not isinstance(route, Auto):
        return tuple(result)
    return jax.lax.cond(complete, lambda: tuple(result), lambda: stable(SVD()))


_STATIC = ("route", "mesh", "axis", "equilibrate", "vector")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _fit_lstsq(x, y, n, ridge, rcond, *, route, mesh, axis, equilibrate, vector):
    return _routed(_lstsq_gram, _lstsq, x, y, n, (ridge, rcond), route=route, mesh=mesh, axis=axis,
                   equilibrate=equilibrate, vector=vector)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "refine"))
def _fit_ols(x, y, n, ridge, rcond, *, route, mesh, axis, equilibrate, vector, refine):
    return _routed(_construct_ols_gram, _construct_ols, x, y, n, (ridge, rcond), route=route, mesh=mesh,
                   axis=axis, equilibrate=equilibrate, vector=vector, refine=refine, intercept=False)


# --- eager checks on data no single device holds --------------------------------------------


@jax.jit
def _nonfinite(a):
    return jnp.sum(~jnp.isfinite(a))


@jax.jit
def _column_max(a):
    return jnp.max(jnp.abs(a), axis=-2, keepdims=True)


def _finish(result, status, inputs: dict[str, Any], *rest):
    """``_checks.finish``, naming a non-finite input from a count taken on the devices (no gather)."""
    if _checks.is_concrete(status.ok) and not bool(status.ok):
        for name, a in inputs.items():
            bad = int(_nonfinite(a))
            if bad:
                raise ValueError(f"{name} contains {bad} NaN or infinite entries")
    return _checks.finish(result, status, dict.fromkeys(inputs), *rest)


def _rescaling(status, x, y, *, per_column: bool):
    """``_checks.rescaling`` from the column maxima (taken on the devices): all it reads of ``X``, ``Y``."""
    if not _checks.is_concrete(status.ok) or bool(status.ok):
        return None
    return _checks.rescaling(status, np.asarray(_column_max(x)), np.asarray(_column_max(y)), per_column=per_column)


@jax.jit
def _divided(x, y, px, py):
    return x / px, y / py


def _on_mesh(tree, mesh: Mesh, spec: PartitionSpec):
    """Device arrays committed elsewhere (e.g. one device) moved onto ``mesh``; the rest as they are."""
    devices = set(mesh.devices.flat)

    def move(a):
        if isinstance(a, jax.Array) and _checks.is_concrete(a) and a.sharding.device_set != devices:
            return jax.device_put(a, NamedSharding(mesh, PartitionSpec(*spec[: a.ndim])))
        return a
    return jax.tree.map(move, tree)


def _prepared(X, Y, route, ridge, rcond, mesh, axis, *, whiten: bool):
    x, y, vector = _checks.design_and_targets(_sharded_2d(X, "X"), Y)
    mesh, axis = _row_axis(x, "X", mesh, axis)
    y = _on_mesh(y, mesh, _row_spec(axis))
    route = prepare_route(route, rcond, whiten=whiten)
    ridge_, rcond_ = _checks.ridge_value(ridge, x.dtype), _checks.rcond_value(rcond, x.dtype)
    return x, y, vector, mesh, axis, route, ridge_, rcond_


# --- public entry points ------------------------------------------------------------------------


def lstsq(
    X: Data,
    Y: Data,
    *,
    mesh: Mesh | None = None,
    axis: Axis | None = None,
    route: Route | str = "auto",
    ridge: float | ArrayLike = 0.0,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
    info: bool = False,
) -> Float[Array, "d m"] | Float[Array, " d"] | tuple[Array, Info]:
    """``olsjax.lstsq`` on row-sharded data: ``β = (XᵀX + λI)⁻¹XᵀY`` from per-device reductions.

    **Arguments:** ``X`` ``(n, d)``, a ``jax.Array`` whose rows are sharded over
    mesh axes (``shard_rows``, ``jax.make_array_from_process_local_data``), or
    any array with ``mesh`` and ``axis`` (needed under ``jit``, where the
    sharding is not visible); ``Y`` ``(n, m)`` or ``(n,)``, resharded like
    ``X`` if it is not; ``route``, ``ridge``, ``rcond``, ``equilibrate``,
    ``info``: as in ``olsjax.lstsq``.

    **Returns:** ``β`` ``(d, m)`` or ``(d,)``, replicated on the mesh.

    **Raises:** what ``olsjax.lstsq`` raises, and ``ValueError`` for data that
    are not row-sharded, an axis the mesh lacks, or rows that do not divide evenly.
    """
    x, y, vector, mesh, axis, route, ridge_, rcond_ = _prepared(X, Y, route, ridge, rcond, mesh, axis,
                                                                whiten=False)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None or ridge_ is not None)
    beta, status = _fit_lstsq(x, y, _checks.real_rows(x.shape[-2], x.dtype), ridge_, rcond_, route=route,
                              mesh=mesh, axis=axis, equilibrate=bool(equilibrate), vector=vector)
    scales = _rescaling(status, x, y, per_column=ridge_ is None and rcond_ is None)
    if scales is not None:  # XᵀX or XᵀY over- or underflowed: the same problem, exactly rescaled
        px, py = scales
        xs, ys = _divided(x, y, px, py)
        again = lstsq(xs, ys[..., 0] if vector else ys, mesh=mesh, axis=axis, route=route,
                      ridge=ridge if ridge_ is None else ridge_ / px**2, rcond=rcond,
                      equilibrate=equilibrate, info=info)
        beta, more = again if info else (again, None)
        beta = unscaled(beta[..., None] if vector else beta, px, py)
        beta = beta[..., 0] if vector else beta
        return (beta, more) if info else beta
    beta = _finish(beta, status, {"X": x, "Y": y}, route, x.shape, beta.dtype)
    return (beta, Info(status.route, status.rank)) if info else beta


def construct_ols(
    X: Data,
    Y: Data,
    *,
    mesh: Mesh | None = None,
    axis: Axis | None = None,
    route: Route | str = "auto",
    ridge: float | ArrayLike = 0.0,
    rcond: float | ArrayLike | None = None,
    equilibrate: bool = True,
    refine: int | None = None,
    info: bool = False,
) -> LinearTransformer | tuple[LinearTransformer, Info]:
    """``olsjax.construct_ols`` on row-sharded data: ``W_Q = W_K = W_V = L``, ``W_P = Lᵀ XᵀY / n``.

    **Arguments:** ``X``, ``Y``, ``mesh``, ``axis`` as in ``lstsq`` above;
    ``route``, ``ridge``, ``rcond``, ``equilibrate``, ``refine``, ``info`` as
    in ``olsjax.construct_ols`` (no ``intercept``: centre the data first).

    **Returns:** a ``LinearTransformer`` with replicated weights, for
    ``olsjax.forward`` or (context sharded) ``olsjax.distributed.forward``.

    **Raises:** what ``olsjax.construct_ols`` raises, and the sharding errors of ``lstsq`` above.
    """
    x, y, vector, mesh, axis, route, ridge_, rcond_ = _prepared(X, Y, route, ridge, rcond, mesh, axis,
                                                                whiten=True)
    _checks.full_rank_shape(x.shape, allowed=rcond_ is not None)
    dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    if refine is None:
        refine = 0 if ridge_ is not None else default_layers(x.shape[-2], x.shape[-1], dtype)
    refine = _checks.count(refine, "refine")
    params, status = _fit_ols(x, y, _checks.real_rows(x.shape[-2], x.dtype), ridge_, rcond_, route=route,
                              mesh=mesh, axis=axis, equilibrate=bool(equilibrate), vector=vector, refine=refine)
    limit = _checks.Limit(
        forward_limit(route.select(rcond_), refine, x.shape[-1], dtype),
        f"the forward pass with refine={refine}" + ("" if ridge_ is None else " and ridge (T5)"),
        "pass refine=None (the default covers the route's whole range)" if ridge_ is None
        else "pass refine=0 or a larger ridge, or use lstsq",
    )
    scales = _rescaling(status, x, y, per_column=ridge_ is None and rcond_ is None)
    if scales is not None:  # as in lstsq: exactly rescaled, then mapped back
        px, py = scales
        xs, ys = _divided(x, y, px, py)
        again = construct_ols(xs, ys[..., 0] if vector else ys, mesh=mesh, axis=axis, route=route,
                              ridge=ridge if ridge_ is None else ridge_ / px**2, rcond=rcond,
                              equilibrate=equilibrate, refine=refine, info=info)
        params, more = again if info else (again, None)
        params = _unscaled(params, px, py)
        return (params, more) if info else params
    params = _finish(params, status, {"X": x, "Y": y}, route, x.shape, dtype, limit)
    return (params, Info(status.route, status.rank)) if info else params


def _memory(params, context, n, *, mesh: Mesh, axis: Axis):
    """``S = KᵀV/n`` from the devices' rows, in the evaluation order ``forward`` picks (``_use_gram``)."""
    def local(params, xl):
        sums = jax.lax.psum(jnp.sum(xl, axis=-2), axis) if _biased(params) else None
        s, use_gram = gram_memory(params, _augmented_gram(jax.lax.psum(gram(xl), axis), sums, n))
        projected = lambda: jax.lax.psum(_projected_memory(params, xl, n), axis)  # noqa: E731
        return jax.lax.cond(use_gram, lambda: s, projected)

    specs = (jax.tree.map(lambda _: PartitionSpec(), params), _row_spec(axis))
    return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=PartitionSpec())(params, context)


#: ``_memory`` compiled once, for the eager explanation of a refused forward pass.
_memory_jit = jax.jit(_memory, static_argnames=("mesh", "axis"))


@functools.partial(jax.jit, static_argnames=("mesh", "axis"))
def _forward(params, queries, context, n, *, mesh, axis):
    w, c = readout(params, _memory(params, context, n, mesh=mesh, axis=axis))
    out = _apply(queries, w, c, vector=params.vector)
    return out, _checks.output_status(out)


def forward(
    params: LinearTransformer,
    queries: Data,
    context: Data,
    *,
    mesh: Mesh | None = None,
    axis: Axis | None = None,
) -> Float[Array, "q m"] | Float[Array, " q"]:
    """``olsjax.forward`` with a row-sharded context: the fast-weight state ``S`` is a ``psum``.

    **Arguments:** ``params`` (replicated, e.g. from ``construct_ols`` above);
    ``queries`` ``(q, d)``, replicated or sharded; ``context`` ``(n, d)``
    row-sharded as ``X`` in ``lstsq`` above (or with ``mesh`` and ``axis``).

    **Returns:** ``(q, m)`` (``(q,)`` if ``params.vector``), sharded like the queries.

    **Raises:** as ``olsjax.forward``, and the sharding errors of ``lstsq`` above.
    """
    q, x = _tokens(params, queries, context, kinds=(LinearTransformer,))
    if x.ndim != 2 or q.ndim != 2 or params.w_q.ndim != 2:
        raise ValueError(f"queries, context and params must be unbatched on a mesh, got {q.shape}, {x.shape}")
    mesh, axis = _row_axis(x, "context", mesh, axis)
    params, q = _on_mesh((params, q), mesh, PartitionSpec())
    n = _checks.real_rows(x.shape[-2], x.dtype)
    out, status = _forward(params, q, x, n, mesh=mesh, axis=axis)
    inputs = {"queries": q, "context": x, **{k: v for k, v in _leaves(params).items() if v is not None}}
    if params.refinements and _checks.is_concrete(status.ok) and not bool(status.ok):
        memory = _memory_jit(params, x, n, mesh=mesh, axis=axis)
        refuse_diverging(params, memory, inputs)
    return _finish(out, status, inputs)
