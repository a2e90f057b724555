"""The ``--olsjax-size`` option, case generation for every suite, and run metadata.

Cases are generated size-major (every competitor of one problem size runs
back to back), so each group's data is built once and every competitor of a
group sits side by side in pytest-benchmark's tables and the report.
"""

from __future__ import annotations

import faulthandler
import importlib.metadata
import os
import platform

import jax
import pytest

from ._competitors import Competitor, attention_competitors, regression_competitors
from ._harness import PRESETS, Preset, Problem


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--olsjax-size",
        choices=sorted(PRESETS),
        default="cpu",
        help="benchmark problem sizes: smoke (CI, seconds), cpu (default, ~10 min on 2 cores), gpu",
    )


def preset_of(config: pytest.Config) -> Preset:
    """The preset named by ``--olsjax-size`` (``cpu`` when the option is not registered)."""
    return PRESETS[config.getoption("olsjax_size", default="cpu")]


@pytest.fixture(scope="session")
def preset(request: pytest.FixtureRequest) -> Preset:
    return preset_of(request.config)


@pytest.fixture(autouse=True)
def watchdog(preset: Preset):
    """Exit with every thread's traceback if one benchmark runs past the preset's limit.

    A wedged XLA call must fail the run loudly rather than hang CI: jaxlib 0.10.2
    deadlocks on CPU when concurrent batched LAPACK kernels (``ParallelBatchMap``)
    fill the intra-op pool, which the cpu preset's batch size stays below.
    """
    faulthandler.dump_traceback_later(preset.watchdog_s, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _cases(problems: tuple[Problem, ...], competitors: tuple[Competitor, ...]):
    return [pytest.param(p, c, id=f"{p.id}-{c.id}") for p in problems for c in competitors]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = set(metafunc.fixturenames)
    preset = preset_of(metafunc.config)
    if {"problem", "competitor"} <= names:
        suite = metafunc.module.SUITE
        if suite == "attention":
            cases = _cases(preset.attention, attention_competitors())
        elif suite == "compile":
            jitted = tuple(c for c in regression_competitors() if c.runtime == "jit")
            cases = _cases(preset.compile, jitted)
        else:
            cases = _cases(getattr(preset, suite), regression_competitors())
        metafunc.parametrize(("problem", "competitor"), cases)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _loadavg() -> tuple[float, ...] | None:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


LOAD_AT_START = pytest.StashKey[tuple[float, ...] | None]()


def pytest_configure(config: pytest.Config) -> None:
    # Other processes on a small machine skew every row: record the load before and after.
    config.stash[LOAD_AT_START] = _loadavg()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Versions, devices and load: what a reader needs to trust or redo the numbers."""
    machine_info["olsjax"] = {
        "preset": preset_of(config).name,
        "versions": {
            p: _version(p) for p in ("olsjax", "jax", "jaxlib", "numpy", "scipy", "scikit-learn", "lineax")
        },
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": config.stash.get(LOAD_AT_START, None),
        "loadavg_at_end": _loadavg(),
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "typechecked": bool(config.getoption("jaxtyping_packages", None)),
    }
