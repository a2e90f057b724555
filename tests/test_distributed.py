"""``olsjax.distributed``: sharded fits equal the single-device ones, on 8 virtual devices and across two processes.

This process already runs JAX with one CPU device, so the multi-device checks
run in fresh interpreters (``tests/_distributed_worker.py``): one with 8
virtual devices doing every check, and a pair joined by
``jax.distributed.initialize`` on loopback. Each reports JSON on its last
line of stdout. Errors that need no second device are checked here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import olsjax
from olsjax import distributed as dist
from olsjax.testing import assert_within_bound, exact_lstsq, make_problem

WORKER = Path(__file__).with_name("_distributed_worker.py")
#: The 8-device run takes ~40 s of CPU on 2 idle cores (mostly compiling); the limit allows a busy machine.
CHECKS_TIMEOUT = 600
#: The two-process run (startup, gloo handshake, the fits; after the 8-device run is awaited):
#: killed and failed beyond this.
PROCESS_TIMEOUT = 60


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the worker sets its own device count
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=WORKER.parent.parent)


def _report(proc: subprocess.Popen, timeout: float) -> tuple[dict[str, str], str]:
    """The worker's JSON report and its stderr; the worker is killed and the test failed past ``timeout``."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"worker {proc.args[2:]} exceeded {timeout} s; stderr:\n{proc.communicate()[1][-3000:]}")
    lines = stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"worker {proc.args[2:]} printed nothing (exit {proc.returncode}); stderr:\n{stderr[-4000:]}")
    return json.loads(lines[-1]), stderr


def _failures(report: dict[str, str]) -> str:
    return "\n\n".join(f"{name}:\n{outcome}" for name, outcome in report.items() if outcome != "ok")


@pytest.fixture(scope="module")
def workers():
    """The 8-device worker and the two-process pair, started together: on 2 cores their compiles overlap."""
    port = str(_free_port())
    procs = {"checks": _start("checks"), "process": [_start("process", str(i), port) for i in range(2)]}
    yield procs
    for p in [procs["checks"], *procs["process"]]:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_sharded_fits_equal_single_device_on_8_devices(workers):
    report, stderr = _report(workers["checks"], CHECKS_TIMEOUT)
    assert len(report) >= 18, sorted(report)  # every check ran (a worker that skipped some would pass silently)
    assert not _failures(report), _failures(report)
    assert workers["checks"].returncode == 0, stderr[-4000:]


def test_sharded_fit_equals_single_device_across_two_processes(workers):
    for i, proc in enumerate(workers["process"]):
        report, stderr = _report(proc, PROCESS_TIMEOUT)
        assert set(report) == {"topology", "two_processes_kappa1", "two_processes_kappa1e+06"}, report
        assert not _failures(report), f"process {i}:\n{_failures(report)}"
        assert proc.returncode == 0, stderr[-4000:]


# --- on this process's one device -----------------------------------------------------------


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((1,), ("rows",))


def test_one_device_mesh_equals_exact(mesh):
    p = make_problem(np.random.default_rng(0), 32, 4, 2, kappa=1e3)
    beta = dist.lstsq(dist.shard_rows(p.x, mesh, "rows"), dist.shard_rows(p.y, mesh, "rows"))
    # TSQR then the SVD of R (auto past Cholesky's range): the p = 1 bound.
    assert_within_bound(np.asarray(beta), exact_lstsq(p.x, p.y), kappa=1e3, p=1, tan_theta=p.tan_theta)


def test_inputs_not_on_a_mesh_are_refused(mesh):
    p = make_problem(np.random.default_rng(1), 16, 3)
    with pytest.raises(ValueError, match="X is not row-sharded .*host array.*shard_rows"):
        dist.lstsq(p.x, p.y)
    with pytest.raises(ValueError, match="X is not row-sharded .*SingleDeviceSharding"):
        dist.lstsq(jax.numpy.asarray(p.x), p.y)
    with pytest.raises(ValueError, match="pass both mesh and axis"):
        dist.lstsq(p.x, p.y, axis="rows")
    with pytest.raises(ValueError, match="'cols' is not an axis of the mesh"):
        dist.lstsq(p.x, p.y, mesh=mesh, axis="cols")
    with pytest.raises(TypeError, match="mesh"):  # beartype's check under pytest, olsjax's own without
        dist.shard_rows(p.x, "rows", "rows")
    with pytest.raises(ValueError, match=r"shard_rows takes an \(n, d\) or \(n,\) array"):
        dist.shard_rows(np.zeros((2, 4, 3)), mesh, "rows")
    with pytest.raises(ValueError, match="context is not row-sharded"):
        dist.forward(olsjax.construct_ols(p.x, p.y), p.queries, p.x)


def test_bad_values_are_refused_before_any_reduction(mesh):
    p = make_problem(np.random.default_rng(2), 16, 3)
    with pytest.raises(TypeError, match="X must be a float32 or float64 array"):
        dist.lstsq(p.x.astype(np.int64), p.y, mesh=mesh, axis="rows")
    with pytest.raises(TypeError, match="X and Y must have the same dtype"):
        dist.lstsq(p.x, p.y.astype(np.float32), mesh=mesh, axis="rows")
    with pytest.raises(ValueError, match="n=2 rows and d=3 columns"):
        dist.lstsq(p.x[:2], p.y[:2], mesh=mesh, axis="rows")
    with pytest.raises(ValueError, match="ridge must be finite and >= 0"):
        dist.lstsq(p.x, p.y, mesh=mesh, axis="rows", ridge=-1.0)
    with pytest.raises(ValueError, match="rcond .* needs a route that pseudo-inverts"):
        dist.lstsq(p.x, p.y, mesh=mesh, axis="rows", route="qr", rcond=1e-6)
