"""The core-redesign targets, measured in one run: ``python -m bench.targets [--quick] [-o FILE]``.

Each target compares two calls measured in the same process (medians of
repeated calls, after a warm-up), except the cold-compile targets, which each
run in a fresh interpreter. Public calls are timed as users make them: eager,
on numpy input, ending in ``jax.block_until_ready``. The report says, per
target, the measured ratio or count and whether it is met. ``--quick`` shrinks
every size (a smoke test of this script; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

_ROOT = Path(__file__).resolve().parent.parent


class Target(NamedTuple):
    """One line of the report: what, the measured value, the limit, and whether lower is better."""

    name: str
    value: float
    limit: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value <= self.limit


def median_seconds(call: Callable[[], Any], *, rounds: int, warmup: int = 2) -> float:
    """Median wall time of ``call`` over ``rounds`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ready(fn: Callable) -> Callable:
    return lambda *a: jax.block_until_ready(fn(*a))


def numpy_cholesky(x, y):
    """The one-pass floor: ``XᵀX``, ``XᵀY``, Cholesky, two triangular solves (numpy/LAPACK)."""
    c = np.linalg.cholesky(x.T @ x)
    return np.linalg.solve(c.T, np.linalg.solve(c, x.T @ y))


def large(n: int, d: int, rounds: int) -> tuple[list[Target], dict[str, float]]:
    """``n × d`` float64 on numpy input: the public calls against the numpy Cholesky floor."""
    import olsjax
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal((d, 1)) + 0.1 * rng.standard_normal((n, 1))
    params = olsjax.construct_ols(x, y)
    together = jax.jit(lambda a, b: olsjax.forward(olsjax.construct_ols(a, b), a, a))
    xj, yj = jax.device_put(x), jax.device_put(y)
    calls = {
        "numpy Cholesky (floor)": lambda: numpy_cholesky(x, y),
        "public forward (pre-built)": lambda: _ready(olsjax.forward)(params, x, x),
        "public construct_ols + forward": lambda: _ready(olsjax.forward)(olsjax.construct_ols(x, y), x, x),
        "construct_ols + forward jitted together (JAX input)": lambda: _ready(together)(xj, yj),
        "public lstsq": lambda: _ready(olsjax.lstsq)(x, y),
        "numpy.linalg.lstsq": lambda: np.linalg.lstsq(x, y, rcond=None),
        "scikit-learn LinearRegression": lambda: LinearRegression(fit_intercept=False).fit(x, y),
    }
    t = {name: median_seconds(call, rounds=rounds) for name, call in calls.items()}
    floor = t["numpy Cholesky (floor)"]
    olsjax_rows = [k for k in t if "public" in k or "jitted" in k]
    targets = [
        Target("n-large: public forward (pre-built) / numpy Cholesky", t["public forward (pre-built)"] / floor, 1.2),
        Target("n-large: public construct_ols + forward / numpy Cholesky", t["public construct_ols + forward"] / floor, 2.0),
        Target("n-large: construct_ols + forward jitted together / numpy Cholesky",
               t["construct_ols + forward jitted together (JAX input)"] / floor, 1.3),
        Target("n-large: public lstsq / numpy Cholesky", t["public lstsq"] / floor, 1.3),
        *(
            Target(f"n-large: {row} / {other} (must be ≥ 5x faster)", t[row] / t[other], 0.2)
            for row in olsjax_rows
            for other in ("numpy.linalg.lstsq", "scikit-learn LinearRegression")
        ),
    ]
    return targets, t


def batched(b: int, n: int, d: int, dtype: str, rounds: int) -> tuple[list[Target], dict[str, float]]:
    """``B`` tasks of ``n × d``: vmapped against stacked, stacked against batched Cholesky."""
    import olsjax

    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((b, n, d)), dtype)
    y = jnp.asarray(rng.standard_normal((b, n, 1)), dtype)

    def fit_predict(a, c):
        return olsjax.forward(olsjax.construct_ols(a, c), a, a)

    hi = jax.lax.Precision.HIGHEST

    def cholesky(a, c):
        g = jnp.matmul(jnp.swapaxes(a, -1, -2), a, precision=hi)
        return jsl.cho_solve(jsl.cho_factor(g), jnp.matmul(jnp.swapaxes(a, -1, -2), c, precision=hi))

    calls = {
        "stacked construct_ols + forward": jax.jit(fit_predict),
        "jax.vmap(construct_ols + forward)": jax.jit(jax.vmap(fit_predict)),
        "batched Cholesky (normal eqs)": jax.jit(cholesky),
    }
    t = {name: median_seconds(functools.partial(_ready(fn), x, y), rounds=rounds) for name, fn in calls.items()}
    tag = f"batched B={b} n={n} d={d} {dtype}"
    return [
        Target(f"{tag}: vmap / stacked", t["jax.vmap(construct_ols + forward)"] / t["stacked construct_ols + forward"], 1.3),
        Target(f"{tag}: stacked / batched Cholesky", t["stacked construct_ols + forward"] / t["batched Cholesky (normal eqs)"], 2.0),
    ], {f"{tag}: {k}": v for k, v in t.items()}


_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import olsjax
from olsjax import _construct, _transformer
rng = np.random.default_rng(0)
out = {}
if sys.argv[1] == "loop":
    x = rng.standard_normal((200, 5)); y = x @ rng.standard_normal(5) + 0.1 * rng.standard_normal(200)
    start = time.perf_counter()
    for n in range(100, 120):
        jax.block_until_ready(olsjax.forward(olsjax.construct_ols(x[:n], y[:n]), x[:n], x[:n]))
    out = dict(seconds=time.perf_counter() - start, construct=_construct._construct_ols._cache_size(),
               forward=_transformer._forward._cache_size())
else:
    d = int(sys.argv[2]); n = 4 * d
    x = rng.standard_normal((n, d)); y = rng.standard_normal(n)
    jax.block_until_ready(jax.numpy.ones(3) + 1)
    start = time.perf_counter()
    jax.block_until_ready(olsjax.construct_ols(x, y))
    out = dict(seconds=time.perf_counter() - start)
print(json.dumps(out))
"""


def _cold(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _COLD, *args], capture_output=True, text=True, check=True, cwd=_ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compiles(rounds: int) -> tuple[list[Target], dict[str, float]]:
    """Compile counts and cold times (fresh interpreters), and the warm latency of a small fit."""
    import olsjax
    from olsjax import _lstsq
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 5))
    y = x @ rng.standard_normal(5) + 0.1 * rng.standard_normal(200)
    before = _lstsq._lstsq._cache_size()
    for lam in np.logspace(-3, 1, 20):
        jax.block_until_ready(olsjax.lstsq(x[:150], y[:150], ridge=float(lam)))
    sweep = _lstsq._lstsq._cache_size() - before
    loop = _cold("loop")
    cold = {d: _cold("construct", str(d))["seconds"] for d in (5, 64)}
    warm = median_seconds(lambda: _ready(olsjax.forward)(olsjax.construct_ols(x, y), x, x), rounds=rounds * 20)
    sk = median_seconds(lambda: LinearRegression().fit(x, y).predict(x), rounds=rounds * 20)
    return [
        Target("ridge sweep (20 values): compilations of lstsq", sweep, 1, "compiles"),
        Target("20 n in 100..119 (d=5): construct_ols compilations", loop["construct"], 3, "compiles"),
        Target("20 n in 100..119 (d=5): forward compilations", loop["forward"], 3, "compiles"),
        Target("20 n in 100..119 (d=5): whole loop, cold", loop["seconds"], 3.0, "s"),
        *(Target(f"cold construct_ols compile, d={d} (n = 4d)", s, 0.5, "s") for d, s in cold.items()),
        Target("warm 200x5 construct_ols + forward / sklearn fit + predict", warm / sk, 1.0),
    ], {"warm 200x5 olsjax": warm, "warm 200x5 sklearn": sk}


def profile(b: int, n: int, d: int, dtype: str, rounds: int) -> str:
    """Where the missed targets' time goes: the batched pieces, the cold compile by route, small-fit latency."""
    import re

    import olsjax
    from olsjax import _checks, _construct, _linalg, _routes

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((b, n, d)), dtype)
    y = jnp.asarray(rng.standard_normal((b, n, 1)), dtype)
    hi = jax.lax.Precision.HIGHEST

    def gram_chol(a):
        return jnp.linalg.cholesky(jnp.matmul(jnp.swapaxes(a, -1, -2), a, precision=hi))

    params = olsjax.construct_ols(x, y)
    pieces = {
        "Gram + Cholesky (the batched-Cholesky floor's factor)": (gram_chol, (x,)),
        "singular values of C (Auto's estimate and the rank verdict)": (
            lambda a: _linalg.singular_values(gram_chol(a)), (x,)),
        "construct_ols (jitted)": (olsjax.construct_ols, (x, y)),
        "forward, pre-built (jitted)": (lambda p, a: olsjax.forward(p, a, a), (params, x)),
        "construct_ols + forward (jitted together)": (lambda a, c: olsjax.forward(olsjax.construct_ols(a, c), a, a), (x, y)),
    }
    lines = [f"Batched B={b} n={n} d={d} {dtype}, jitted pieces (median of {rounds}):", "",
             "| piece | ms |", "|---|---|"]
    for name, (fn, args) in pieces.items():
        compiled = jax.jit(fn)
        lines.append(f"| {name} | {1e3 * median_seconds(functools.partial(_ready(compiled), *args), rounds=rounds):.2f} |")
    lines += ["", "Cold trace + compile of `construct_ols`'s core by route (n = 112, d = 5, float64):", "",
              "| route | trace + lower s | XLA compile s | fusions |", "|---|---|---|---|"]
    xs, ys = jnp.zeros((112, 5)), jnp.zeros((112, 1))
    for route in (_routes.Auto(), _routes.Cholesky(), _routes.CholQR2(), _routes.SVD()):
        jax.clear_caches()
        start = time.perf_counter()
        lowered = _construct._construct_ols.lower(
            xs, ys, _checks.real_rows(100, np.float64), None, None, route=route,
            intercept=False, equilibrate=True, refine=2, vector=True)
        middle = time.perf_counter()
        text = lowered.compile().as_text()
        end = time.perf_counter()
        fusions = len(re.findall(r"^\s*\S*fusion\S* = ", text, re.M))
        lines.append(f"| {route.name} | {middle - start:.3f} | {end - middle:.3f} | {fusions} |")
    return "\n".join(lines) + "\n"


def report(targets: list[Target], times: dict[str, float], args: argparse.Namespace) -> str:
    """The targets and raw medians as markdown, with the environment and the command."""
    import olsjax

    env = (f"olsjax {olsjax.__version__}, jax {jax.__version__}, numpy {np.__version__}, "
           f"Python {platform.python_version()}, {platform.machine()}, {jax.devices()[0].device_kind}")
    lines = [f"Command: `python -m bench.targets{' --quick' if args.quick else ''}`; {env}.", "",
             "| target | measured | limit | |", "|---|---|---|---|"]
    for t in targets:
        value = f"{t.value:.3g}{t.unit if t.unit == 'x' else ' ' + t.unit}"
        lines.append(f"| {t.name} | {value} | ≤ {t.limit:g}{t.unit if t.unit == 'x' else ' ' + t.unit} "
                     f"| {'met' if t.met else 'MISSED'} |")
    lines += ["", "| call | median seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in times.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, not the targets")
    parser.add_argument("-o", "--output", help="also write the markdown here")
    parser.add_argument("--profile", action="store_true", help="only the profile of the missed targets")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    if args.profile:
        print(profile(*((16, 32, 4, "float32", 2) if args.quick else (2048, 128, 16, "float32", 15))))
        return 0
    if args.quick:
        parts = [large(2000, 8, 2), batched(16, 32, 4, "float64", 2), compiles(1)]
    else:
        parts = [large(1_000_000, 64, 7), batched(2048, 128, 16, "float32", 15),
                 batched(2048, 128, 16, "float64", 15), compiles(5)]
    targets = [t for part, _ in parts for t in part]
    times = {k: v for _, part in parts for k, v in part.items()}
    text = report(targets, times, args)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
