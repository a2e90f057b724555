"""Figures of the attention-vs-regression study (``olsjax.experiments.blog``): they read results, never compute.

``summary``: test MSE over ridge's across the whole grid. ``configuration``:
one trained model against the exact references: the ridge hat matrix ``H``
beside the learned attention matrix ``A`` (one colour scale), the raw scores,
``W = W_Q W_Kᵀ`` beside ``Σ⁻¹`` (one colour scale), the loss curves and the
effective weights beside the true and ridge weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from ..report import Figure

from . import new, save

_MAP = "RdBu_r"


def _name(run: dict) -> str:
    return f"{run['data']}-{run['name'].replace('/', '-')}"


def _matrices(fig, axes, panels, title_size=9):
    """``panels``: groups of ``(title, matrix)`` drawn on one symmetric colour scale per group."""
    i = 0
    for group in panels:
        top = max(float(np.max(np.abs(m))) for _, m in group) or 1.0
        for title, m in group:
            image = axes[i].imshow(np.asarray(m), cmap=_MAP, vmin=-top, vmax=top)
            axes[i].set_title(title, fontsize=title_size)
            axes[i].set_xticks([])
            axes[i].set_yticks([])
            i += 1
        fig.colorbar(image, ax=axes[i - len(group) : i], shrink=0.8)


def configuration(results: dict, run: dict):
    """One configuration: ``H | A``, ``QKᵀ``, ``W | Σ⁻¹``, loss curves, effective vs true vs ridge weights."""
    base = results["data"][run["data"]]
    fig, axes = new(2, 5, size=(2.4, 2.3))
    block = len(run["attention"])
    _matrices(fig, axes[0], [
        [(f"ridge hat matrix H\n(first {block} rows)", base["hat"]), ("learned attention A", run["attention"])],
        [("raw scores QKᵀ" + ("/√k" if run["variant"] == "softmax" else ""), run["scores"])],
        [("W = W_Q W_Kᵀ", run["w"]), ("Σ⁻¹", base["sigma_inv"])],
    ])
    grid = axes[1, 0].get_gridspec()
    for ax in axes[1]:
        ax.remove()
    curves = fig.add_subplot(grid[1, 0:2])
    curves.semilogy(run["loss_steps"], run["losses"], label="training")
    curves.semilogy(run["validation_steps"], run["validation"], "o-", ms=3, label="validation")
    curves.axhline(base["ridge"]["train_mse"], color="k", ls=":", lw=1, label="ridge (train)")
    curves.axvline(run["best_step"], color="grey", ls="--", lw=1, label="kept")
    # Labels at 1, 2, 3 and 5 per decade: readable whether the curves span a tenth of a decade or three.
    curves.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    curves.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    curves.yaxis.set_minor_formatter(NullFormatter())
    curves.set(xlabel="Adam step", ylabel="MSE", title="loss curves")
    # A log axis spanning less than a decade gets no major ticks: label the minor ones too.
    for axis in (curves.yaxis.set_major_formatter, curves.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%.3g"))
    curves.legend(fontsize=7)
    bars = fig.add_subplot(grid[1, 2:5])
    series = [("true", base["beta_true"]), ("ridge", base["beta_ridge"]), ("effective W XᵀV/n", run["effective"])]
    series = [(label, v) for label, v in series if v is not None]
    d = len(base["beta_ridge"])
    width = 0.8 / len(series)
    for j, (label, v) in enumerate(series):
        bars.bar(np.arange(d) + (j - (len(series) - 1) / 2) * width, v, width, label=label)
    bars.set_xticks(np.arange(d), [f"x{i + 1}" for i in range(d)])
    bars.axhline(0, color="k", lw=0.5)
    bars.set(title="coefficients" + ("" if run["effective"] is not None else " (softmax: no effective weights)"))
    bars.legend(fontsize=7)
    m = run["metrics"]
    fig.suptitle(f"{run['data']}: {run['name']}  (test MSE {m['test_mse']:.3g}, "
                 f"ridge {base['ridge']['test_mse']:.3g})", fontsize=11)
    return fig


def summary(results: dict):
    """Test MSE over ridge's test MSE for every configuration (rows) and data mode (columns), log colours."""
    modes = results["settings"]["modes"]
    names = results["settings"]["grid"]
    table = np.full((len(names), len(modes)), np.nan)
    for run in results["runs"]:
        table[names.index(run["name"]), modes.index(run["data"])] = run["metrics"]["test_mse_over_ridge"]
    fig, ax = new(size=(6.0, 7.5))
    norm = LogNorm(vmin=min(np.nanmin(table), 0.9), vmax=max(np.nanmax(table), 2))  # ridge level inside the scale
    image = ax.imshow(table, cmap="viridis", norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(table):
        if np.isnan(value):  # not trained in this run (the CI grid is smaller)
            continue
        ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=8,
                color="white" if value < np.sqrt(np.nanmax(table)) else "black")
    ax.set_xticks(range(len(modes)), modes)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title("test MSE / ridge test MSE (1 = ridge level)")
    fig.colorbar(image, ax=ax)
    return fig


def draw(results: dict, out: Path) -> dict[str, Figure]:
    """Write the summary and one figure per configuration (those the experiment marked) as PNGs into ``out``."""
    figures = {"summary": save(summary(results), out, "summary",
                               "Test MSE relative to ridge's, every configuration and data mode.")}
    for run in (r for r in results["runs"] if r["figure"]):
        name = _name(run)
        figures[name] = save(configuration(results, run), out, name,
                             f"{run['data']} data, {run['name']}: H | A, scores, W | Σ⁻¹, losses, coefficients.")
    return figures
