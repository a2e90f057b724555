# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Least squares on data spread over devices
#
# `olsjax.distributed` fits on a `jax.Array` whose **rows** are sharded over a
# `jax.sharding.Mesh`. Each device reduces its own rows inside `jax.shard_map`;
# only `d × d`-sized pieces cross devices:
#
# - the **fast route** sums `XᵀX` and `XᵀY` with a `psum` (Cholesky from the moments);
# - the **stable route** is TSQR: each device factors its rows of `[X | Y]`, the
#   `R` factors are gathered and factored again, and the SVD of the final `R`
#   gives `β` (error `∝ κ`, and the rank).
#
# `route="auto"` chooses between them by the same condition estimate as the
# single-device `olsjax.lstsq`. This notebook runs on **8 virtual CPU devices**,
# which must be requested before JAX starts its backend — so this is the first cell.

# %%
import os

import jax

jax.config.update("jax_num_cpu_devices", 8)  # before anything touches a device
jax.config.update("jax_enable_x64", True)  # olsjax never changes JAX's config itself

import time

import numpy as np

import olsjax
import olsjax.distributed as dist
from olsjax.testing import exact_lstsq, exact_predict, make_problem, relative_error

print(jax.devices())

# %% [markdown]
# ## A mesh, and rows placed on it
#
# `shard_rows(a, mesh, axis)` puts the rows of a host array on the devices along
# `axis` (here all 8). The row count must divide evenly.

# %%
mesh = jax.make_mesh((8,), ("rows",))
p = make_problem(np.random.default_rng(0), 800, 6, 2, kappa=1e3)
X = dist.shard_rows(p.x, mesh, "rows")
Y = dist.shard_rows(p.y, mesh, "rows")
print(X.sharding.spec, [s.data.shape for s in X.addressable_shards][:3], "...")

# %% [markdown]
# ## The sharded fit equals the single-device one
#
# At `κ = 10³` "auto" leaves Cholesky's range (`κ̂ ≤ 4`), so the sharded fit takes
# TSQR + SVD; the single-device call takes CholeskyQR2. Both meet the `p = 1`
# bound `c·u·κ` against the exact rational answer.

# %%
beta, info = dist.lstsq(X, Y, info=True)
single, single_info = olsjax.lstsq(p.x, p.y, info=True)
exact = exact_lstsq(p.x, p.y)
print(f"sharded: route {info.route_name}, rank {int(info.rank)}; single device: {single_info.route_name}")
print(f"relative error vs exact: sharded {relative_error(beta, exact):.1e}, single {relative_error(single, exact):.1e}")
print(f"bound c·u·κ = {200 * 2**-53 * 1e3:.1e}")

# %% [markdown]
# Well-conditioned data take the fast route: one `psum` of `d × (d + m)` numbers.

# %%
easy = make_problem(np.random.default_rng(1), 800, 6, 2, kappa=1.0)
Xe, Ye = dist.shard_rows(easy.x, mesh, "rows"), dist.shard_rows(easy.y, mesh, "rows")
beta_e, info_e = dist.lstsq(Xe, Ye, info=True)
print(info_e.route_name, f"{relative_error(beta_e, exact_lstsq(easy.x, easy.y)):.1e}")

# %% [markdown]
# ## The transformer, with a sharded context
#
# `construct_ols` builds the paper's parameters from the sharded data (replicated
# weights), and `forward` attends from the queries to the sharded context: the
# fast-weight state `S = KᵀV/n` is a `psum` of each device's `KᵀV`.

# %%
params = dist.construct_ols(X, Y)
pred = dist.forward(params, p.queries, X)
print(f"forward vs exact OLS prediction: {relative_error(pred, exact_predict(p.x, p.y, p.queries)):.1e}")
print(f"same parameters, unsharded forward: {relative_error(olsjax.forward(params, p.queries, p.x), pred):.1e}")

# %% [markdown]
# ## Refusals are the single-device ones
#
# Rank-deficient data raise the same error, word for word (and give NaN under a
# caller's `jit`, where `mesh=` and `axis=` must be passed since a tracer has no
# visible sharding).

# %%
deficient = p.x.copy()
deficient[:, 5] = deficient[:, 0] + deficient[:, 1]
for fit, args in ((dist.lstsq, (dist.shard_rows(deficient, mesh, "rows"), Y)), (olsjax.lstsq, (deficient, p.y))):
    try:
        fit(*args)
    except ValueError as e:
        print(f"{fit.__module__}: {e}")

# %% [markdown]
# ## Meshes with more than one axis
#
# Rows may be split over several axes (here all 8 devices of a 2 × 4 mesh), or
# over one axis and replicated over the other.

# %%
grid = jax.make_mesh((2, 4), ("hosts", "chips"))
X2 = dist.shard_rows(p.x, grid, ("hosts", "chips"))
Y2 = dist.shard_rows(p.y, grid, ("hosts", "chips"))
print(X2.sharding.spec, f"{relative_error(dist.lstsq(X2, Y2), exact):.1e}")

# %% [markdown]
# ## Several hosts
#
# Across machines (or processes), every process calls
# `jax.distributed.initialize` first and contributes its own rows with
# `jax.make_array_from_process_local_data`; the calls above are unchanged. On
# CPUs the collectives between processes need gloo. Save as `fit.py` and run
# `python fit.py 0 & python fit.py 1` (on one machine; on several, use the first
# host's address):
#
# ```python
# import sys, jax, numpy as np
# jax.config.update("jax_enable_x64", True)
# jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU only
# jax.distributed.initialize(coordinator_address="127.0.0.1:12355", num_processes=2,
#                            process_id=int(sys.argv[1]))
# from jax.sharding import NamedSharding, PartitionSpec
# import olsjax.distributed as dist
#
# mesh = jax.make_mesh((jax.device_count(),), ("rows",))
# rows = NamedSharding(mesh, PartitionSpec("rows", None))
# rng = np.random.default_rng(jax.process_index())          # this process's own rows
# x_local = rng.standard_normal((1000, 8))
# y_local = x_local @ np.arange(1.0, 9.0)[:, None] + 0.01 * rng.standard_normal((1000, 1))
# X = jax.make_array_from_process_local_data(rows, x_local)  # global (2000, 8)
# Y = jax.make_array_from_process_local_data(rows, y_local)
# print(jax.process_index(), dist.lstsq(X, Y)[:, 0])         # the same β on every process
# ```
#
# `tests/test_distributed.py` runs this pattern with two processes on loopback.

# %% [markdown]
# ## How the sharded fit scales with devices (and what 8 virtual devices on few cores can show)
#
# The fit on the first 1, 2, 4 and 8 devices, median of repeated calls after a
# warm-up (compile) call. **Virtual CPU devices share the machine's cores**: on a
# 2-core machine 8 devices run on the same 2 cores, so the table measures the
# overhead of splitting and collecting, not a speed-up. Set
# `OLSJAX_SCALING_ROWS` (e.g. `1048576`) to time larger data; docs/distributed.md
# has a measured table.

# %%
rows = int(os.environ.get("OLSJAX_SCALING_ROWS", 1 << 13))
d, repeats = 16, 5
rng = np.random.default_rng(2)
xs = rng.standard_normal((rows, d))
ys = xs @ rng.standard_normal((d, 1))


def median_seconds(fit, *args):
    jax.block_until_ready(fit(*args))  # compile outside the timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fit(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


table = []
for k in (1, 2, 4, 8):
    sub = jax.make_mesh((k,), ("rows",), devices=jax.devices()[:k])
    a, b = dist.shard_rows(xs, sub, "rows"), dist.shard_rows(ys, sub, "rows")
    table.append((k, *(median_seconds(lambda a, b, r=r: dist.lstsq(a, b, route=r), a, b)
                       for r in ("cholesky", "qr"))))
print(f"n = {rows}, d = {d}, {os.cpu_count()} CPU cores, float64, median of {repeats}")
print("devices  psum+Cholesky (ms)  TSQR+QR (ms)")
for k, fast, stable in table:
    print(f"{k:7d}  {1e3 * fast:18.2f}  {1e3 * stable:12.2f}")
