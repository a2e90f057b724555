"""Memory bandwidth of this machine, measured in the same run: the bound every row's GB/s is read against.

Three large ``x + 1`` (read and write every byte once; a pure copy may be
elided): numpy into a preallocated output, JAX into a fresh output buffer (as
every jitted call does), and JAX in place on a donated buffer. The gap between
the last two is the cost of allocating (page-faulting) output memory.
"""

import jax
import numpy as np
import pytest

from ._harness import Problem, problem_data, record, run_benchmark

SUITE = "bandwidth"


def _add_one(a):
    return a + 1


def _calls(engine: str, host: np.ndarray, device: jax.Array):
    if engine == "numpy":
        out = np.empty_like(host)
        return "numpy add(x, 1, out=)", "host", lambda: np.add(host, 1, out=out)
    if engine == "jax":
        fresh = jax.jit(_add_one)
        return "jax x + 1 (jit, new output)", "jit", lambda: fresh(device).block_until_ready()
    donated = jax.jit(_add_one, donate_argnums=0)
    state = [device + 0]  # a private buffer: donation consumes it, each call hands on its output

    def call():
        state[0] = donated(state[0]).block_until_ready()

    return "jax x + 1 (jit, donated, in place)", "jit", call


@pytest.mark.parametrize("engine", ["numpy", "jax", "jax-donated"])
def test_bandwidth(benchmark, preset, engine):
    elements = preset.bandwidth_mib * 2**20 // 4
    p = Problem("bandwidth", elements, 1, "float32")
    benchmark.group = "memory bandwidth"
    (host,), (device,) = problem_data(p)
    label, runtime, call = _calls(engine, host, device)
    median = run_benchmark(benchmark, preset, call)
    record(benchmark, p, "copy", median, id=f"bandwidth.{engine}", aliases=[], competitor=label,
           runtime=runtime, series=f"bandwidth: {label}", compile_s=None)
