"""Figures of ``olsjax experiment paper`` (read from its results; nothing is computed here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report import Figure
from . import new, save

#: Floor of log-scaled error axes: exact zeros (converged to rounding) are drawn at this level.
FLOOR = 1e-17
SCALE_TICKS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _floor(values):
    return np.maximum(np.asarray(values, dtype=float), FLOOR)


def _series(run: dict, key: str):
    steps = [row["step"] for row in run["trajectory"]]
    return steps, [row[key] for row in run["trajectory"]]


def reachability(results: dict):
    """Four panels: the d = 1 slope (the paper's Figure 1), excess loss, coefficient error, W_QW_Kᵀ structure."""
    r = results["reachability"]
    runs = [x for x in r["runs"] if x["start_seed"] == 0]
    fig, ax = new(2, 2, size=(5.2, 3.6))
    for x in (x for x in runs if x["d"] == 1):
        ax[0, 0].plot(*_series(x, "first_coefficient"), label=x["name"])
    ols = next(x for x in runs if x["d"] == 1)["ols_coefficients"][0]
    ax[0, 0].axhline(ols, color="k", ls="--", lw=1, label=f"OLS β = {ols:.3f}")
    ax[0, 0].set(xlabel="epoch", ylabel="effective slope", title="(a) y = 2x + ε: slope → OLS")
    for x in runs:
        steps, loss = _series(x, "loss")
        ax[0, 1].semilogy(steps, _floor((np.asarray(loss) - x["ols_loss"]) / x["ols_loss"]), label=x["name"])
        ax[1, 0].semilogy(*_series(x, "coefficient_error"), label=x["name"])
    ax[0, 1].set(xlabel="epoch", ylabel="(loss − OLS loss) / OLS loss", title="(b) functional: excess loss")
    ax[1, 0].set(xlabel="epoch", ylabel="‖coef − β‖ / ‖β‖", title="(c) identified: effective coefficients")
    colours = iter(f"C{i}" for i in range(10))
    for x in runs:
        c = next(colours)
        if x["d"] == 1:
            continue
        if x["form"] == "paper":
            ax[1, 1].semilogy(*_series(x, "factor_error"), color=c, marker="s", ms=3, markevery=4,
                              label=f"{x['name']}: worst W Wᵀ of W_Q,K,V")
            continue
        ax[1, 1].semilogy(*_series(x, "wqk_error"), color=c, label=f"{x['name']}: all of W_QW_Kᵀ")
        if x["m"] < x["d"]:
            ax[1, 1].semilogy(*_series(x, "wqk_free_error"), color=c, ls=":", marker="^", ms=3, markevery=4,
                              label=f"{x['name']}: free part")
            steps, ident = _series(x, "wqk_identified_error")
            ax[1, 1].semilogy(steps, _floor(ident), color=c, ls="--", label=f"{x['name']}: identified part")
    ax[1, 1].set(xlabel="epoch", ylabel="relative distance to Σ⁻¹", title="(d) structure: W_QW_Kᵀ vs Σ⁻¹")
    for a in ax.flat:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return fig


def in_context(results: dict):
    """The η scan against the trained layer; distances during training; trained Γ against Γ* (anisotropic)."""
    r = results["in_context"]
    fig, ax = new(2, 2, size=(5.2, 3.6))
    for i, x in enumerate(r["runs"]):
        c = f"C{i}"
        ax[0, 0].semilogx(x["eta_scan"], x["eta_scan_loss"], color=c, label=f"plain GD, Σ {x['name']}")
        trained = next(m["loss"] for m in x["comparisons"] if m["method"] == "trained LSA")
        ax[0, 0].axhline(trained, color=c, ls="--", lw=1, label=f"trained LSA, Σ {x['name']}")
        ax[0, 1].semilogy(*_series(x, "to_gamma_star"), color=c, label=f"to Γ* (Ahn), Σ {x['name']}")
        ax[0, 1].semilogy(*_series(x, "to_sigma_inv"), color=c, ls=":", label=f"to Σ⁻¹, Σ {x['name']}")
    ax[0, 0].set(xlabel="η", ylabel="held-out loss", title="(a) one GD step: η scan vs trained layer")
    ax[0, 1].set(xlabel="step", ylabel="relative distance of W_QW_Kᵀ", title="(b) trained Γ → Γ*, not Σ⁻¹")
    aniso = r["runs"][-1]
    mats = np.asarray(aniso["trained_gamma"]), np.asarray(aniso["gamma_star"])
    top = max(np.abs(m).max() for m in mats)
    for a, m, t in zip(ax[1], mats, ("(c) trained W_QW_Kᵀ", "(d) Ahn et al.'s Γ*")):
        im = a.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top)
        a.set(title=f"{t}, Σ {aniso['name']}", xticks=[], yticks=[])
    fig.colorbar(im, ax=ax[1].tolist(), shrink=0.8)
    for a in ax[0]:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return fig


def shift(results: dict):
    """Error against OLS on the new context as the context is rescaled (left) and shifted (right)."""
    r = results["shift"]
    fig, ax = new(1, 2, size=(5.2, 3.8))
    nan = lambda v: np.nan if v is None else v  # noqa: E731  (every task refused: no point drawn)
    for m in r["settings"]["methods"]:
        refused = any(x[m] is None for x in r["scaled"] + r["shifted"])
        label = f"{m} (line ends: every task refused)" if refused else m
        ax[0].loglog([x["scale"] for x in r["scaled"]], _floor([nan(x[m]) for x in r["scaled"]]), "o-", ms=3,
                     label=label)
        ax[1].semilogy([x["shift"] for x in r["shifted"]], _floor([nan(x[m]) for x in r["shifted"]]), "o-",
                       ms=3, label=label)
    for a in ax:
        a.set_ylim(FLOOR, 1e3)
    ax[0].set_xticks(SCALE_TICKS, [f"{t:g}" for t in SCALE_TICKS], minor=False)
    ax[0].set_xticks([], minor=True)
    ax[0].set(xlabel="scale a (x = a·z)", ylabel="median ‖pred − OLS‖ / ‖OLS‖", title="rescaled contexts")
    ax[1].set(xlabel="shift s (x = z + s·e)", ylabel="median ‖pred − OLS‖ / ‖OLS‖", title="shifted contexts")
    for a in ax:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return fig


def hopfield(results: dict):
    """Success rate against N/d for every rule and width."""
    r = results["hopfield"]
    fig, ax = new(1, 1, size=(7.5, 4.6))
    styles = {"quadratic": "o-", "polynomial": "s-", "exponential": "^-"}
    dims = r["settings"]["dims"]
    for c in r["curves"]:
        colour = f"C{dims.index(c['d'])}"
        ax.semilogx(np.asarray(c["n"]) / c["d"], c["success"], styles[c["rule"]], color=colour, ms=4,
                    label=f"{c['rule']}, d = {c['d']}")
    ax.axvline(0.138, color="k", ls=":", lw=1, label="0.138 (classical)")
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set(xlabel="stored patterns per dimension N/d", ylabel="exact retrieval rate",
           title=f"Hopfield retrieval from cues with {r['settings']['flip_fraction']:.0%} flipped signs")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below: curves fill the axes
    ax.grid(alpha=0.3)
    return fig


def memory(results: dict):
    """Bytes held and time per token against the context length n, both forms."""
    rows = results["memory"]["rows"]
    fig, ax = new(1, 2, size=(5.2, 3.8))
    ns = [x["n"] for x in rows]
    for key in rows[0]:
        if "(" in key:  # the byte counts
            ax[0].loglog(ns, [x[key] for x in rows], "o-", ms=3, label=key)
    for key, style in (("parallel seconds per token", "o-"), ("recurrent seconds per token", "s-")):
        pts = [(x["n"], x[key]) for x in rows if key in x]
        ax[1].loglog(*zip(*pts), style, ms=4, label=key.replace(" seconds per token", " form"))
    ax[0].set(xlabel="tokens n", ylabel="bytes", title="memory: n² and n·(d+m) vs constant d·m")
    ax[1].set(xlabel="tokens n", ylabel="seconds per token (median)", title="time per token")
    for a in ax:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return fig


FIGURES = {
    "reachability": (reachability, "Training reachability: (a) the d = 1 slope, (b) excess loss, "
                     "(c) effective coefficients, (d) W_QW_Kᵀ against Σ⁻¹, identified and free parts"),
    "in_context": (in_context, "Trained linear self-attention vs one GD step; the trained preconditioner "
                   "converges to Ahn et al.'s Γ*"),
    "shift": (shift, "Fixed parameters under distribution shift against rebuilding from the new context"),
    "hopfield": (hopfield, "Hopfield retrieval: classical, polynomial and exponential energies"),
    "memory": (memory, "Fast memory: the recurrent state's constant size against the growing context"),
}


def draw(results: dict, out: Path) -> dict[str, Figure]:
    """Every figure as ``out/paper_<name>.png``."""
    return {name: save(plot(results), out, f"paper_{name}", caption) for name, (plot, caption) in FIGURES.items()}
