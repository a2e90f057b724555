"""Problem sizes, presets, data, work models and the timing loop shared by every suite.

Conventions (DESIGN.md): compile and one warm-up call happen outside the timed
region, every timed call ends in ``jax.block_until_ready``, nothing asserts a
time, and the facts needed to read a row (sizes, bytes, FLOPs, GB/s, GFLOP/s,
compile seconds) go into ``benchmark.extra_info``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import jax
import numpy as np

if TYPE_CHECKING:
    from ._competitors import Competitor

Suite = Literal["regression", "batched", "attention", "bandwidth"]
#: How a competitor runs: ``jit``, compiled ahead of time on device arrays; ``public``, olsjax's public
#: eager call on numpy arrays (what users call: checks and transfer included); ``eager``, the same call on
#: device arrays; ``host``, numpy/scipy/sklearn on numpy arrays.
Runtime = Literal["jit", "public", "eager", "host"]
#: Work models: what a row computes, which fixes its nominal bytes and FLOPs (see ``work``).
WorkKind = Literal["fit", "predict", "fit+predict", "linear-attention", "quadratic-attention", "copy"]


class Problem(NamedTuple):
    """One problem size: ``n`` tokens/rows of ``d`` features (``m`` targets), optionally ``batch`` tasks."""

    suite: Suite
    n: int
    d: int
    dtype: str
    batch: int | None = None
    m: int = 1

    @property
    def tasks(self) -> int:
        """Number of independent problems (1 when unbatched)."""
        return self.batch or 1

    @property
    def lead(self) -> tuple[int, ...]:
        """Leading batch shape of every input array."""
        return () if self.batch is None else (self.batch,)

    @property
    def label(self) -> str:
        """Human-readable size, also the benchmark group."""
        b = "" if self.batch is None else f"B={short(self.batch)} "
        return f"{self.suite} {b}n={short(self.n)} d={self.d} {self.dtype}"

    @property
    def id(self) -> str:
        """Compact size for pytest ids."""
        b = "" if self.batch is None else f"B{short(self.batch)}-"
        return f"{b}n{short(self.n)}-d{self.d}-{self.dtype.replace('float', 'f')}"


def short(k: int) -> str:
    """``1000000 → '1e6'``, ``2500000 → '2.5e6'``; small or irregular numbers unchanged."""
    if k < 10_000:
        return str(k)
    exponent = int(math.floor(math.log10(k)))
    mantissa = k / 10**exponent
    return f"{mantissa:g}e{exponent}" if float(f"{mantissa:g}") * 10**exponent == k else str(k)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named set of problem sizes and a timing budget (``--olsjax-size``)."""

    name: str
    regression: tuple[Problem, ...]
    batched: tuple[Problem, ...]
    attention: tuple[Problem, ...]
    #: Problems whose jitted competitors also get a cold-compile group.
    compile: tuple[Problem, ...]
    bandwidth_mib: int
    #: Timed seconds aimed at per row; slow rows still get ``min_rounds``.
    budget_s: float
    min_rounds: int
    max_rounds: int
    compile_rounds: int
    #: Seconds after which one benchmark is declared wedged and the run exits with a traceback.
    watchdog_s: float

    def rounds_for(self, seconds: float) -> int:
        """Rounds that fill the budget for a call of ``seconds``, clamped to the preset's bounds."""
        wanted = int(self.budget_s / max(seconds, 1e-9))
        return max(self.min_rounds, min(self.max_rounds, wanted))


def _grid(suite: Suite, ns, ds, dtypes, batch: int | None = None) -> tuple[Problem, ...]:
    return tuple(
        Problem(suite, n, d, dt, batch) for dt in dtypes for d in ds for n in ns
    )


F32, F64 = "float32", "float64"

PRESETS: dict[str, Preset] = {
    # CI: seconds, every code path once per dtype.
    "smoke": Preset(
        name="smoke",
        regression=_grid("regression", [2000], [8], [F32, F64]),
        batched=_grid("batched", [16], [4], [F32], batch=8),
        attention=_grid("attention", [64, 128, 256], [16], [F32, F64]),
        compile=_grid("batched", [16], [4], [F64], batch=8),
        bandwidth_mib=16,
        budget_s=0.01,
        min_rounds=1,
        max_rounds=5,
        compile_rounds=1,
        watchdog_s=120,
    ),
    # The 2-core CPU run of docs/benchmarks.md: every competitor at n = 10^6, d = 64 (the
    # targets), smaller n elsewhere so that the whole preset fits in about ten minutes.
    "cpu": Preset(
        name="cpu",
        regression=(
            _grid("regression", [10_000, 100_000, 1_000_000], [64], [F64])
            + _grid("regression", [1_000_000], [16], [F64])
            + _grid("regression", [10_000], [256], [F64])
            + _grid("regression", [100_000], [64], [F32])
        ),
        # B = 64: with larger batches (B = 128 in float64, 256 in float32) jaxlib 0.10.2's
        # batched LAPACK kernels deadlock on 2 cores (docs/benchmarks.md, "Known problems").
        batched=_grid("batched", [128], [16], [F32, F64], batch=64),
        attention=_grid("attention", [512, 1024, 2048, 4096, 8192], [64], [F32]),
        compile=_grid("regression", [1_000_000], [64], [F64]),
        bandwidth_mib=256,
        budget_s=1.0,
        min_rounds=2,
        max_rounds=100,
        compile_rounds=2,
        watchdog_s=900,
    ),
    # One H100/H200: the sizes, including B=16384 in-context regression.
    "gpu": Preset(
        name="gpu",
        regression=(
            _grid("regression", [100_000, 1_000_000, 10_000_000], [64], [F32, F64])
            + _grid("regression", [10_000_000], [16], [F32, F64])
            + _grid("regression", [1_000_000], [256], [F32, F64])
        ),
        batched=_grid("batched", [128], [16], [F32, F64], batch=16384),
        attention=_grid("attention", [1024, 2048, 4096, 8192, 16384, 32768], [64], [F32]),
        compile=_grid("regression", [10_000_000], [64], [F32])
        + _grid("batched", [128], [16], [F32], batch=16384),
        bandwidth_mib=4096,
        budget_s=1.0,
        min_rounds=3,
        max_rounds=200,
        compile_rounds=3,
        watchdog_s=900,
    ),
}


class Data(NamedTuple):
    """The same inputs twice: numpy arrays for host competitors, JAX arrays for the rest."""

    host: tuple[np.ndarray, ...]
    device: tuple[jax.Array, ...]


@functools.lru_cache(maxsize=1)
def problem_data(problem: Problem, seed: int = 0) -> Data:
    """Inputs for ``problem``: ``(X, Y)`` with ``Y = Xβ + noise``, attention ``(Q, K, V)``, or one array to copy.

    Cached for one problem at a time: the cases run size-major, and a 10^6×256
    design should not outlive its group.
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(problem.dtype)
    shape = (*problem.lead, problem.n, problem.d)
    if problem.suite in ("attention", "bandwidth"):
        count = 3 if problem.suite == "attention" else 1
        host = tuple(rng.standard_normal(shape, dtype=dtype) for _ in range(count))
    else:
        x = rng.standard_normal(shape, dtype=dtype)
        beta = rng.standard_normal((*problem.lead, problem.d, problem.m), dtype=dtype)
        noise = rng.standard_normal((*problem.lead, problem.n, problem.m), dtype=dtype)
        host = (x, x @ beta + np.asarray(0.1, dtype) * noise)
    # Transfers finish here, not inside the first (warm-up or prepare) call.
    return Data(host, jax.block_until_ready(tuple(jax.device_put(a) for a in host)))


class Work(NamedTuple):
    """Nominal bytes moved and floating-point operations of one call."""

    bytes: float
    flops: float


def work(kind: WorkKind, p: Problem) -> Work:
    """Nominal work of one call, per the row's work model.

    Bytes are the compulsory traffic (read every input once, write every
    output once), so GB/s over the measured bandwidth is the fraction of the
    memory-bound limit. FLOPs are a fixed count per work model, the same for
    every competitor in a group, so GFLOP/s ratios are speed ratios:
    a fit counts the normal equations (``2nd² + 2ndm + d³/3``), a prediction
    counts the forward pass's matmuls (three projections, ``KᵀV``,
    ``Q(KᵀV)``, FFN: ``12nd²``, and the head ``2ndm``).
    """
    s = np.dtype(p.dtype).itemsize
    n, d, m, b = p.n, p.d, p.m, p.tasks
    fit = Work(s * b * (n * d + n * m + d * m), b * (2 * n * d * d + 2 * n * d * m + d**3 / 3))
    predict = Work(s * b * (n * d + n * m), b * (12 * n * d * d + 2 * n * d * m))
    if kind == "fit":
        return fit
    if kind == "predict":
        return predict
    if kind == "fit+predict":
        return Work(s * b * (n * d + 2 * n * m), fit.flops + predict.flops)
    if kind == "linear-attention":
        # Q, K, V in, one output; Kᵀ V then Q (KᵀV).
        return Work(s * b * 4 * n * d, b * 4 * n * d * d)
    if kind == "quadratic-attention":
        # Same compulsory traffic (a fused kernel keeps the n×n scores on chip); QKᵀ then A V.
        return Work(s * b * 4 * n * d, b * 4 * n * n * d)
    # copy: read and write every byte once.
    return Work(2 * s * b * n * d, 0.0)


def compile_jit(fn: Callable, args: tuple) -> tuple[Callable, float]:
    """``jax.jit(fn)`` lowered and compiled for ``args``, and the seconds that took."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def timed_call(fn: Callable, args: tuple) -> Callable[[], Any]:
    """A no-argument call of ``fn(*args)`` that returns only when the result is ready."""
    return lambda: jax.block_until_ready(fn(*args))


def _seconds(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run_benchmark(benchmark, preset: Preset, call: Callable[[], Any]) -> float:
    """Warm up ``call`` untimed, then time it for the preset's rounds; return the median seconds."""
    warmup = _seconds(call)
    # The first call can be slow for one-off reasons (page faults, lazy init): when it was
    # cheap, estimate the rounds from a second call instead.
    estimate = warmup if warmup > preset.budget_s / 3 else _seconds(call)
    rounds = preset.rounds_for(estimate)
    benchmark.extra_info.update(warmup_s=warmup, rounds=rounds)
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
    return benchmark.stats.stats.median


def size_facts(p: Problem) -> dict[str, Any]:
    """The problem size and platform of a row, as ``extra_info`` fields."""
    return dict(suite=p.suite, n=p.n, d=p.d, m=p.m, B=p.batch, dtype=p.dtype, platform=jax.default_backend())


def competitor_facts(c: Competitor, p: Problem) -> dict[str, Any]:
    """Who a row is: ``id`` and ``aliases`` for the report's targets, ``competitor`` for display."""
    return dict(id=c.id, aliases=list(c.aliases), competitor=c.label, runtime=c.runtime, series=series(p, c))


def record(benchmark, p: Problem, kind: WorkKind, median_s: float, **facts: Any) -> None:
    """Problem size, work, GB/s and GFLOP/s of a finished row into ``extra_info``."""
    w = work(kind, p)
    benchmark.extra_info.update(
        size_facts(p),
        work=kind,
        bytes=w.bytes,
        flops=w.flops,
        gbps=w.bytes / median_s / 1e9,
        gflops=w.flops / median_s / 1e9,
        **facts,
    )


def make_call(c: Competitor, data: Data) -> tuple[Callable[[], Any], float | None]:
    """The timed call of competitor ``c`` on ``data``, and its compile seconds if jitted.

    Host and public rows get the numpy arrays, the others the device arrays;
    ``prepare`` (e.g. building the parameters) runs here, outside the timed region.
    """
    inputs = data.host if c.runtime in ("host", "public") else data.device
    args = inputs + (jax.block_until_ready(c.prepare(*inputs)) if c.prepare else ())
    if c.runtime == "host":  # numpy results are ready on return
        return (lambda: c.fn(*args)), None
    if c.runtime != "jit":
        return timed_call(c.fn, args), None
    # Cold: another group may have compiled the same function and shapes (the compile group does).
    jax.clear_caches()
    compiled, seconds = compile_jit(c.fn, args)
    return timed_call(compiled, args), seconds


def series(p: Problem, c: Competitor) -> str:
    """Everything but ``n`` that identifies a row: rows of one series differ only in ``n``."""
    b = "" if p.batch is None else f" B={short(p.batch)}"
    return f"{p.suite}{b} d={p.d} {p.dtype}: {c.label}"


def run_case(benchmark, preset: Preset, p: Problem, c: Competitor) -> None:
    """Time competitor ``c`` on problem ``p`` as one row of the group ``p.label``."""
    benchmark.group = p.label
    call, compile_s = make_call(c, problem_data(p))
    median = run_benchmark(benchmark, preset, call)
    record(benchmark, p, c.work, median, compile_s=compile_s, **competitor_facts(c, p))


def abstract_inputs(p: Problem, c: Competitor) -> tuple:
    """Shape-only ``(X, Y, *prepared)`` of a regression competitor: compiling needs no data."""
    x = jax.ShapeDtypeStruct((*p.lead, p.n, p.d), np.dtype(p.dtype))
    y = jax.ShapeDtypeStruct((*p.lead, p.n, p.m), np.dtype(p.dtype))
    return (x, y) + (jax.eval_shape(c.prepare, x, y) if c.prepare else ())


def run_compile_case(benchmark, preset: Preset, p: Problem, c: Competitor) -> None:
    """Cold trace + lower + XLA compile of ``c`` on ``p`` (caches cleared before every round)."""
    benchmark.group = f"compile {p.label}"
    args = abstract_inputs(p, c)
    lower_times = []

    def compile_cold():
        start = time.perf_counter()
        lowered = jax.jit(c.fn).lower(*args)
        lower_times.append(time.perf_counter() - start)
        return lowered.compile()

    benchmark.pedantic(compile_cold, setup=jax.clear_caches, rounds=preset.compile_rounds)
    # Tracing and lowering are Python; the rest of each round is XLA's compiler.
    benchmark.extra_info.update(lower_s=float(np.median(lower_times)))
    facts = {**size_facts(p), **competitor_facts(c, p)}
    # Not a run-time row: its own suite and series, so no slope mixes compile and run times.
    facts.update(suite="compile", runtime="compile", series=f"compile {facts['series']}")
    benchmark.extra_info.update(facts)
