"""The experiments: one module per experiment, run by ``olsjax experiment NAME``.

Each experiment module (``olsjax.experiments.<name>``) defines

- ``TITLE``: the report's title;
- ``run(*, quick: bool, seed: int, progress: bool | None) -> dict``: the
  results as plain JSON data (numbers, lists, strings), seeded and
  reproducible; ``quick`` is the CI size (seconds, not minutes);
- ``sections(results, figures) -> list[report.Section]``: the report's text
  and tables, composed from ``results`` (no computing) and the figures;

and its plotting module ``olsjax.plots.<name>`` defines
``draw(results, out: Path) -> dict[str, report.Figure]`` (PNG files; no
computing). Experiments never draw and plots never compute.

``run_experiment`` ties them together: it writes ``results.json`` (the
results plus the seed, settings, versions and run time), the PNGs and a
self-contained ``report.html`` into one folder.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import jax

from .. import report
from .._environment import environment

#: Experiment names known to ``olsjax experiment``.
NAMES = ("paper", "blog")


def run_experiment(name: str, *, out: str | Path, quick: bool = False, seed: int = 0,
                   progress: bool | None = None) -> dict:
    """Run experiment ``name`` and write ``results.json``, its figures and ``report.html`` into ``out``.

    **Returns:** the results dict as written to ``results.json``. **Raises:**
    ``ValueError`` for an unknown ``name`` or a negative ``seed``.
    """
    if name not in NAMES:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(NAMES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    experiment = importlib.import_module(f"{__name__}.{name}")
    plots = importlib.import_module(f"olsjax.plots.{name}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # Experiments choose their dtypes explicitly; float64 must be available to them.
    with jax.enable_x64(True):
        results = experiment.run(quick=quick, seed=seed, progress=progress)
    metadata = {
        "experiment": name,
        "quick": quick,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "environment": environment(),
    }
    results = {"metadata": metadata, **results}
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    figures = plots.draw(results, out)
    report.write(out / "report.html", experiment.TITLE, experiment.sections(results, figures), metadata)
    return results
