"""Peak memory a call adds beyond its input: ``python -m bench.memory [--n N] [--d D]``.

Each call runs in a fresh interpreter (one subprocess per call, so no call
inherits another's allocations or compiled programs). The child imports
everything, starts JAX, creates ``X`` ``(n, d)`` and ``Y`` ``(n, 1)`` in
float64 numpy arrays (as the benchmarks do), and reads the peak resident set
size (``resource.getrusage(...).ru_maxrss``) before and after the call. The
difference is the memory the call adds beyond its input; the table gives it
in MiB and as a multiple of the size of ``X``.

The first call includes tracing and compiling. Where Linux lets a process
reset its peak (``/proc/self/clear_refs``), the peak is also reset before
the input is measured and again before a repeat call, whose column is the
steady-state cost; elsewhere that column is "—". JAX runs on the CPU
(``JAX_PLATFORMS=cpu``): the resident set is host memory. Not part of the
pytest run: at the default ``n = 10⁶``, ``d = 64`` ``X`` alone is 488 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The calls measured, by label, in table order; each takes numpy ``(X, Y)``.
CALLS: tuple[str, ...] = (
    "olsjax.lstsq",
    "olsjax construct_ols+forward",
    "numpy.linalg.lstsq",
    "numpy Cholesky (normal eqs)",
)

_ROOT = Path(__file__).resolve().parent.parent
_MIB = 2**20


def _call(label: str) -> Callable[[Any, Any], Any]:
    """The call named ``label``: olsjax's public calls on numpy input (awaited), or a numpy solver.

    Only what the call needs is imported: a numpy row's process never loads JAX.
    """
    if label.startswith("numpy"):
        from ._host import numpy_cholesky, numpy_lstsq

        return numpy_lstsq if label == "numpy.linalg.lstsq" else numpy_cholesky
    import jax

    import olsjax

    jax.config.update("jax_enable_x64", True)
    jax.block_until_ready(jax.numpy.ones(8) + 1)  # start the backend before the baseline
    if label == "olsjax.lstsq":
        return lambda x, y: jax.block_until_ready(olsjax.lstsq(x, y))
    return lambda x, y: jax.block_until_ready(olsjax.forward(olsjax.construct_ols(x, y), x, x))


def peak_bytes() -> int:
    """Peak resident set size of this process (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak() -> bool:
    """Reset the peak resident set size to the current one (Linux ≥ 4.0); whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def measure(label: str, n: int, d: int) -> dict[str, Any]:
    """In this process: the peak ``label`` adds to ``(X, Y)``, first call and (if resettable) repeat call."""
    import numpy as np

    call = _call(label)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal((d, 1)) + 0.1 * rng.standard_normal((n, 1))
    resettable = reset_peak()
    before = peak_bytes()
    call(x, y)
    first = peak_bytes() - before
    repeat = None
    if resettable and reset_peak():
        before = peak_bytes()
        call(x, y)
        repeat = peak_bytes() - before
    return dict(call=label, n=n, d=d, x_bytes=x.nbytes, first=first, repeat=repeat)


def run_child(label: str, n: int, d: int) -> dict[str, Any]:
    """``measure`` in a fresh interpreter; its JSON result."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    argv = [sys.executable, "-m", "bench.memory", "--child", label, "--n", str(n), "--d", str(d)]
    done = subprocess.run(argv, cwd=_ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {label!r} failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / _MIB:,.1f} MiB"


def _times(value: int | None, x_bytes: int) -> str:
    return "—" if value is None else f"{value / x_bytes:.2f}"


def table(results: list[dict[str, Any]]) -> str:
    """The measurements as markdown, one row per call, with a line naming the problem."""
    n, d, x_bytes = results[0]["n"], results[0]["d"], results[0]["x_bytes"]
    lines = [
        f"Peak memory added beyond the input, n = {n:,}, d = {d}, float64 numpy input "
        f"(X = {_mib(x_bytes)}); ru_maxrss, one fresh process per call, JAX on CPU.",
        "",
        "| call | added peak, first call | / size of X | added peak, repeat call | / size of X |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['call']} | {_mib(r['first'])} | {_times(r['first'], x_bytes)} "
            f"| {_mib(r['repeat'])} | {_times(r['repeat'], x_bytes)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure every call and print the table (or, with ``--child``, measure one and print JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows of X (default 10⁶)")
    parser.add_argument("--d", type=int, default=64, help="columns of X (default 64)")
    parser.add_argument("--child", choices=CALLS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.n, args.d)))
        return 0
    sys.stdout.write(table([run_child(label, args.n, args.d) for label in CALLS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
