"""Matplotlib figures of the experiments' results: one module per experiment.

Each module has functions ``results → matplotlib.figure.Figure`` (to show in a
notebook) and ``draw(results, out) → dict[str, report.Figure]`` (PNG files for
the report). Plots never compute: they read the plain results an experiment
returned. Figures are built with ``matplotlib.figure.Figure``, not pyplot, so
nothing here touches matplotlib's global backend or figure registry.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure as MplFigure

from ..report import Figure

#: Resolution of every PNG (sharp in a report, small enough to embed).
DPI = 110


def new(rows: int = 1, cols: int = 1, *, size: tuple[float, float] = (4.5, 3.4), **kwargs):
    """A ``(figure, axes)`` pair of ``rows × cols`` panels of ``size`` inches each (axes squeezed as pyplot's)."""
    fig = MplFigure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=True, **kwargs)
    return fig, axes


def save(fig: MplFigure, out: Path, name: str, caption: str) -> Figure:
    """Write ``fig`` as ``out/name.png`` and return the report's ``Figure``."""
    path = Path(out) / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    return Figure(path=path, caption=caption)
