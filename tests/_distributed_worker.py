"""Checks of ``olsjax.distributed`` that need several devices, run in a fresh interpreter.

The test process has already started JAX with one CPU device, so
``tests/test_distributed.py`` runs this script instead:

- ``checks``: 8 virtual CPU devices, every check below; prints one JSON object
  ``{check name: "ok" or the failure}`` on the last line of stdout;
- ``process ID PORT``: one of two processes joined by ``jax.distributed.initialize``
  on loopback, each with 2 CPU devices and half the rows; prints the same JSON.

The test-suite's JAX settings (float64, strict promotion, rank-promotion errors)
and its runtime type checks (jaxtyping with beartype) apply here too.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import jax

DEVICES = {"checks": 8, "process": 2}[sys.argv[1]]
jax.config.update("jax_num_cpu_devices", DEVICES)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
if sys.argv[1] == "process":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{sys.argv[3]}", num_processes=2,
                               process_id=int(sys.argv[2]), initialization_timeout=40)

import numpy as np  # noqa: E402
from jaxtyping import install_import_hook  # noqa: E402

with install_import_hook("olsjax", "beartype.beartype"):
    import olsjax  # noqa: E402
    from olsjax import distributed as dist  # noqa: E402
    from olsjax.testing import (  # noqa: E402
        assert_within_bound,
        bound_power,
        exact_lstsq,
        exact_predict,
        make_design,
        make_problem,
    )
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

#: The row count of the test problems: 8 devices × 8 rows (d + m ≤ 8, so every local QR is square).
N = 64
CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def problem(seed, kappa, dtype=np.float64, m=3, n=N, d=5):
    return make_problem(np.random.default_rng(seed), n, d, m, kappa=kappa, dtype=dtype)


def sharded(mesh, *arrays, axis="rows"):
    return [dist.shard_rows(a, mesh, axis) for a in arrays]


def raises(fn, *args, **kwargs) -> str:
    try:
        fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        return f"{type(e).__name__}: {e}"
    raise AssertionError(f"{fn.__name__} did not raise")


def expect(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# --- 8 virtual devices --------------------------------------------------------------------------


MESH = None


def mesh8():
    global MESH
    if MESH is None:
        MESH = jax.make_mesh((8,), ("rows",))
    return MESH


def equal_fits(mesh, seed, kappa, dtype, m, route="auto", axis="rows", *, construct=True):
    """Sharded β and predictor against the exact ones (the bound) and the single-device call (twice the bound)."""
    p = problem(seed, kappa, dtype, m)
    y = p.y[:, 0] if m == 1 else p.y
    x_s, y_s = sharded(mesh, p.x, y, axis=axis)
    beta, info = dist.lstsq(x_s, y_s, route=route, info=True)
    single, single_info = olsjax.lstsq(p.x, y, route=route, info=True)
    assert beta.shape == single.shape, (beta.shape, single.shape)
    chosen = olsjax.select_route(p.x, route=route)
    # The fast route is the single-device choice when that is Cholesky; else TSQR with the SVD of R.
    stable = route == "auto" and chosen.name != "cholesky"
    assert info.route_name == ("svd" if stable else chosen.name), (info.route_name, single_info.route_name)
    power = 1 if stable else bound_power(chosen)
    exact = exact_lstsq(p.x, y)
    kw = dict(kappa=kappa, p=power, dtype=dtype, tan_theta=p.tan_theta)
    assert_within_bound(np.asarray(beta), exact, **kw, what="sharded beta vs exact")
    assert_within_bound(np.asarray(beta), np.asarray(single), **kw, c=400.0, what="sharded vs one device")  # 2 x c=200
    if not construct:  # each construction compiles for a while on 2 cores: a few cover the paths
        return
    params = dist.construct_ols(x_s, y_s, route=route)
    pred = dist.forward(params, p.queries, x_s)
    pred_single = olsjax.forward(olsjax.construct_ols(p.x, y, route=route), p.queries, p.x)
    expected = exact_predict(p.x, y, p.queries)
    kw = dict(kappa=kappa, p=power, dtype=dtype)
    assert_within_bound(np.asarray(pred), expected, **kw, what="sharded forward vs exact")
    assert_within_bound(np.asarray(pred), np.asarray(pred_single), **kw, c=400.0, what="vs one device")
    # The sharded parameters on one device, with the context there: the same predictor.
    host = olsjax.forward(jax.device_get(params), p.queries, p.x)
    assert_within_bound(np.asarray(host), expected, **kw, what="sharded params, unsharded forward")


# Auto: Cholesky from the moments at κ = 1, TSQR beyond (CholeskyQR2's range on one device, then the SVD's).
for _dtype, _m, _kappas in ((np.float64, 3, (1.0, 1e3, 1e7)), (np.float32, 1, (1.0, 1e2))):
    for _kappa in _kappas:
        def _fit(dtype=_dtype, kappa=_kappa, m=_m):
            equal_fits(mesh8(), 0, kappa, dtype, m)
        _fit.__name__ = f"auto_{np.dtype(_dtype).name}_kappa{_kappa:g}_m{_m}"
        check(_fit)

# Every explicit route; constructions on one moment route (eigh) and one TSQR route (qr).
for _route in ("cholesky", "cholqr2", "qr", "svd", "eigh", "zca", "lstsq"):
    def _routed(route=_route):
        equal_fits(mesh8(), 1, 1e4, np.float64, 3, route=route, construct=route in ("qr", "eigh"))
    _routed.__name__ = f"route_{_route}_kappa1e4"
    check(_routed)


@check
def two_axis_mesh():
    """Rows over both axes of a 2 × 4 mesh, and over one axis (replicated over the other)."""
    mesh = jax.make_mesh((2, 4), ("a", "b"))
    equal_fits(mesh, 2, 1e5, np.float64, 3, axis=("a", "b"), construct=False)
    equal_fits(mesh, 3, 10.0, np.float64, 3, "cholesky", axis="b", construct=False)


@check
def sharded_queries_and_options():
    """Queries sharded too; ridge and rcond (minimum norm) against exact and numpy references."""
    mesh = mesh8()
    p = problem(4, 1e2)
    x_s, y_s = sharded(mesh, p.x, p.y)
    q = np.random.default_rng(5).standard_normal((16, 5))
    pred = dist.forward(dist.construct_ols(x_s, y_s), dist.shard_rows(q, mesh, "rows"), x_s)
    assert isinstance(pred.sharding, NamedSharding) and pred.sharding.spec[0] == "rows", pred.sharding
    assert_within_bound(np.asarray(pred), exact_predict(p.x, p.y, q), kappa=1e2, p=1)
    ridged = dist.lstsq(x_s, y_s, ridge=0.5)
    assert_within_bound(np.asarray(ridged), exact_lstsq(p.x, p.y, ridge=0.5), kappa=1e2, p=1)
    # Rank 3 of 5: the minimum-norm answer X⁺Y, from numpy's pseudo-inverse (well-conditioned kept part).
    x = make_design(np.random.default_rng(6), N, 5, kappa=10.0, rank=3)
    x_s = dist.shard_rows(x, mesh, "rows")
    minimum = dist.lstsq(x_s, y_s, rcond=1e-8)
    assert_within_bound(np.asarray(minimum), np.linalg.pinv(x, rcond=1e-8) @ p.y, kappa=10.0, p=1)
    params = dist.construct_ols(x_s, y_s, rcond=1e-8)
    assert_within_bound(np.asarray(dist.forward(params, q, x_s)), q @ np.linalg.pinv(x, rcond=1e-8) @ p.y,
                        kappa=10.0, p=1)


@check
def same_refusals():
    """Rank-deficient, out-of-range and non-finite data: the single-device error, word for word."""
    mesh = mesh8()
    p = problem(7, 1.0)
    x = make_design(np.random.default_rng(8), N, 5, rank=4)
    x_s, y_s = sharded(mesh, x, p.y)
    for route in ("auto", "cholesky", "qr"):
        assert raises(dist.lstsq, x_s, y_s, route=route) == raises(olsjax.lstsq, x, p.y, route=route), route
    assert raises(dist.construct_ols, x_s, y_s) == raises(olsjax.construct_ols, x, p.y)
    # κ = 1e9 is beyond the one-layer model's range (T13), within the SVD's: refused by the range check.
    hard = problem(9, 1e9)
    h_s, hy_s = sharded(mesh, hard.x, hard.y)
    mine = raises(dist.construct_ols, h_s, hy_s, refine=0)
    theirs = raises(olsjax.construct_ols, hard.x, hard.y, refine=0)
    expect(mine, "outside the accuracy range", "κ̂ =")
    assert mine.split("κ̂ =")[0] == theirs.split("κ̂ =")[0], (mine, theirs)  # κ̂ itself differs by rounding
    bad = p.x.copy()
    bad[3, 1], bad[40, 2] = np.nan, np.inf
    assert raises(dist.lstsq, *sharded(mesh, bad, p.y)) == raises(olsjax.lstsq, bad, p.y)
    assert raises(dist.forward, olsjax.construct_ols(p.x, p.y), p.queries, dist.shard_rows(bad, mesh, "rows")) \
        == raises(olsjax.forward, olsjax.construct_ols(p.x, p.y), p.queries, bad)
    for value in (np.int32, np.float16):
        expect(raises(dist.lstsq, p.x.astype(value), p.y, mesh=mesh, axis="rows"), "TypeError", "float32 or float64")
    expect(raises(dist.lstsq, x[:4], p.y[:4], mesh=mesh, axis="rows"), "divisible")  # 4 rows on 8 devices


@check
def under_jit():
    """Under a caller's jit (mesh and axis given): the eager answer, and NaN where eager would raise."""
    mesh = mesh8()
    p = problem(10, 1e3)
    x_s, y_s = sharded(mesh, p.x, p.y)
    fit = jax.jit(lambda a, b: dist.lstsq(a, b, mesh=mesh, axis="rows"))
    np.testing.assert_array_equal(np.asarray(fit(x_s, y_s)), np.asarray(dist.lstsq(x_s, y_s)))  # same program
    deficient = dist.shard_rows(make_design(np.random.default_rng(11), N, 5, rank=4), mesh, "rows")
    assert np.all(np.isnan(np.asarray(fit(deficient, y_s))))
    build = jax.jit(lambda a, b: dist.construct_ols(a, b, mesh=mesh, axis="rows"))
    run = jax.jit(lambda t, q, a: dist.forward(t, q, a, mesh=mesh, axis="rows"))
    assert_within_bound(np.asarray(run(build(x_s, y_s), p.queries, x_s)), exact_predict(p.x, p.y, p.queries),
                        kappa=1e3, p=1)
    assert np.all(np.isnan(np.asarray(run(build(deficient, y_s), p.queries, x_s))))


@check
def rescaled_extremes():
    """Columns near 2^±600, where XᵀX over/underflows: exactly rescaled and solved, as on one device."""
    p = problem(12, 10.0)
    x = p.x * np.ldexp(1.0, np.array([600, -600, 0, 300, -300]))
    beta = dist.lstsq(*sharded(mesh8(), x, p.y))
    assert_within_bound(np.asarray(beta) * np.ldexp(1.0, np.array([600, -600, 0, 300, -300]))[:, None],
                        exact_lstsq(p.x, p.y), kappa=10.0, p=1)


@check
def bad_sharding():
    """Unsharded input, no mesh axis, columns sharded, an axis the mesh lacks: clear errors."""
    mesh = mesh8()
    p = problem(13, 1.0)
    expect(raises(dist.lstsq, p.x, p.y), "X is not row-sharded", "host array", "shard_rows")
    expect(raises(dist.lstsq, jax.numpy.asarray(p.x), p.y), "X is not row-sharded", "SingleDeviceSharding")
    replicated = jax.device_put(p.x, NamedSharding(mesh, PartitionSpec()))
    expect(raises(dist.lstsq, replicated, p.y), "X is not row-sharded")
    expect(raises(dist.lstsq, p.x, p.y, mesh=mesh), "pass both mesh and axis")
    expect(raises(dist.lstsq, p.x, p.y, mesh=mesh, axis="cols"), "'cols' is not an axis of the mesh", "('rows',)")
    expect(raises(dist.shard_rows, p.x[:60], mesh, "rows"), "60 rows, not divisible by the 8 devices")
    grid = jax.make_mesh((2, 4), ("a", "b"))
    wide = np.random.default_rng(14).standard_normal((N, 8))
    both = jax.device_put(wide, NamedSharding(grid, PartitionSpec("a", "b")))
    expect(raises(dist.lstsq, both, p.y), "sharded by rows only")
    expect(raises(dist.forward, olsjax.construct_ols(p.x, p.y), p.queries, p.x), "context is not row-sharded")
    expect(raises(dist.lstsq, np.stack([p.x, p.x]), np.stack([p.y, p.y]), mesh=mesh, axis="rows"), "(n, d)")


def run_checks(names) -> dict[str, str]:
    results = {}
    for name in names:
        try:
            t0 = time.perf_counter()
            CHECKS[name]()
            print(name, round(time.perf_counter() - t0, 2), file=sys.stderr)
            results[name] = "ok"
        except Exception:  # reported to the test, which fails naming this check
            results[name] = traceback.format_exc(limit=4)
    return results


# --- two processes ----------------------------------------------------------------------------------


def process_checks() -> dict[str, str]:
    """Each process holds half the rows; the global fit must equal the single-device one."""
    pid = jax.process_index()
    mesh = jax.make_mesh((4,), ("rows",), devices=jax.devices())
    results = {"topology": "ok" if (jax.process_count(), len(jax.devices()), len(jax.local_devices())) == (2, 4, 2)
               else f"{jax.process_count()} processes, {jax.devices()}"}

    def glob(a):
        half = a.shape[0] // 2
        spec = PartitionSpec("rows", *(None,) * (a.ndim - 1))
        return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), a[pid * half:(pid + 1) * half],
                                                       a.shape)

    def fits(kappa):
        p = problem(20, kappa)  # same seed: every process builds the same problem, and keeps its half
        x_s, y_s = glob(p.x), glob(p.y)
        beta, info = dist.lstsq(x_s, y_s, info=True)
        stable = olsjax.select_route(p.x).name != "cholesky"
        assert info.route_name == ("svd" if stable else "cholesky"), info.route_name
        single = olsjax.lstsq(p.x, p.y)
        kw = dict(kappa=kappa, p=1 if stable else 2, tan_theta=p.tan_theta)
        assert_within_bound(np.asarray(beta), exact_lstsq(p.x, p.y), **kw)
        assert_within_bound(np.asarray(beta), np.asarray(single), c=400.0, **kw)  # both within c = 200
        pred = dist.forward(dist.construct_ols(x_s, y_s), p.queries, x_s)
        assert_within_bound(np.asarray(pred), exact_predict(p.x, p.y, p.queries), kappa=kappa, p=kw["p"])
        deficient = make_design(np.random.default_rng(21), N, 5, rank=4)
        assert raises(dist.lstsq, glob(deficient), y_s) == raises(olsjax.lstsq, deficient, p.y)

    for kappa in (1.0, 1e6):
        name = f"two_processes_kappa{kappa:g}"
        try:
            fits(kappa)
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc(limit=4)
    return results


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "checks":
        result = run_checks(sys.argv[2:] or list(CHECKS))
    else:
        result = process_checks()
    print(json.dumps(result), flush=True)
    if mode == "process":
        jax.distributed.shutdown()
