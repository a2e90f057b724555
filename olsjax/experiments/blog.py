"""The attention-vs-regression study (M. Tang's blog and its re-implementation), rerun with olsjax.

For each data mode (``olsjax.data.MODES``) and each model of
``olsjax.models.GRID`` (3 variants × 3 weight tyings × 2 value forms) a model
is trained with Adam (``olsjax.train``): queries and context are the fitting
rows, early stopping on a held-out fifth of the training rows that attends to
the fitting rows. It is then evaluated with the whole training set as context
against three baselines: ridge (``λ = 1e-3``, the blog's), OLS, and the
*constructed* transformer (``construct_ols``), the exact reference.

Metrics per configuration: train/test MSE; cosine similarity of test
predictions to ridge's; effective coefficients ``W Xᵀ V/n`` against the true
and the ridge weights; ``W = W_Q W_Kᵀ`` against ``Σ⁻¹`` overall, on the one
direction the data identify (``b = XᵀV/n``, T4) and the size of the part
they cannot see; and on *extrapolating* queries (the test queries times
``FAR``) the error and the share of outputs inside ``[min Y, max Y]``, where
every softmax output must lie (T11).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm  # the text bar, as olsjax.train (tqdm.auto warns without ipywidgets)

from .. import data, models, report
from .._construct import construct_ols, construct_regression_attention
from .._linalg import mm, mT
from .._lstsq import hat_matrix, lstsq
from .._transformer import forward
from ..testing import bound_power, error_bound, tan_theta
from ..train import train

TITLE = "Attention and linear regression: the blog's study against the exact construction"

#: The blog's ridge penalty.
RIDGE = 1e-3
#: The least-squares route of the baselines and the constructed reference.
ROUTE = "svd"
#: Extrapolating queries are the test queries times this factor.
FAR = 3.0
#: Share of the training rows that fit (queries and context); the rest validate.
FIT = 0.8
#: Rows and columns of the ``n × n`` matrices (``H``, ``A``, ``QKᵀ``) kept for the figures.
BLOCK = 24
#: Loss-curve points kept per run (evenly spaced steps).
CURVE = 200
#: Optimiser settings: CI size and full size.
SETTINGS = {
    True: dict(steps=600, chunk=100, patience=3, learning_rate=2e-2),
    False: dict(steps=6000, chunk=200, patience=8, learning_rate=1e-2),
}


def plan(quick: bool) -> list[tuple[str, models.Config]]:
    """``(data mode, config)`` pairs to train: the whole grid, or the CI subset ``QUICK_PLAN``."""
    if not quick:
        return [(mode, config) for mode in data.MODES for config in models.GRID]
    return [(mode, models.Config(variant, tying, values)) for mode, variants, forms in QUICK_PLAN
            for tying, values in forms for variant in variants]


#: For CI, where every fit compiles (~1 s): each variant with separate weights and values Y, Tang's
#: single W and the paper's projected values on the synthetic data; whitened attention on the others.
QUICK_PLAN = (
    ("synthetic", tuple(models.Variant), (("separate", "targets"), ("single", "targets"), ("separate", "projected"))),
    ("diabetes", (models.Variant.WHITENED,), (("separate", "targets"),)),
    ("sine", (models.Variant.WHITENED,), (("separate", "targets"),)),
)


def _drawn(quick: bool, mode: str, config: models.Config) -> bool:
    """Whether a configuration gets its own figure: all of them, or for CI the synthetic data's first form."""
    return not quick or (mode == "synthetic" and config == models.Config(config.variant))


def _mse(a, b) -> float:
    return float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))


def _cosine(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _relative(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def _inside(pred, y) -> float:
    """Share of ``pred`` in ``[min y, max y]`` (a softmax output may exceed it by rounding: ``1e-9`` of the range)."""
    lo, hi = float(np.min(y)), float(np.max(y))
    slack = 1e-9 * (hi - lo)
    pred = np.asarray(pred)
    return float(np.mean((pred >= lo - slack) & (pred <= hi + slack)))


def _grid(a, digits: int = 5) -> list:
    """A matrix as nested lists, rounded for a compact ``results.json``."""
    return np.round(np.asarray(a, np.float64), digits).tolist()


def _far(split: data.Split, ridge: np.ndarray):
    """Extrapolating queries, their reference predictions, and where a reference leaves ``[min Y, max Y]``."""
    far = FAR * split.x_test
    reference = far @ (split.beta if split.beta is not None else ridge)
    y = split.y_train
    return far, reference, (reference < y.min()) | (reference > y.max())


def _outside_mse(pred, reference, outside) -> float:
    """MSE over the queries whose reference leaves ``[min Y, max Y]`` (0 if there are none)."""
    return _mse(pred[outside], reference[outside]) if outside.any() else 0.0


def _baselines(split: data.Split) -> dict:
    """Ridge, OLS and the constructed transformer on ``split``, and what the figures need of the data."""
    x, y, xt, yt = split.x_train, split.y_train, split.x_test, split.y_test
    # The SVD route throughout: backward stable (p = 1), and one compile per shape where "auto" compiles three.
    ridge, ols = np.asarray(lstsq(x, y, ridge=RIDGE, route=ROUTE)), np.asarray(lstsq(x, y, route=ROUTE))
    constructed = np.asarray(forward(construct_ols(x, y, route=ROUTE), xt, x))
    kappa, tan = float(np.linalg.cond(x)), tan_theta(x, y)
    far, far_reference, outside = _far(split, ridge)
    l = construct_regression_attention(x, route="eigh", equilibrate=False)  # as models.constructed
    return {
        "n_train": x.shape[0], "n_test": xt.shape[0], "d": x.shape[1], "kappa": kappa, "tan_theta": tan,
        "beta_true": None if split.beta is None else split.beta[:, 0].tolist(),
        "beta_ridge": ridge[:, 0].tolist(), "beta_ols": ols[:, 0].tolist(),
        "ridge": {"train_mse": _mse(x @ ridge, y), "test_mse": _mse(xt @ ridge, yt),
                  "far_mse": _mse(far @ ridge, far_reference), "inside_far": _inside(far @ ridge, y),
                  "far_outside_mse": _outside_mse(far @ ridge, far_reference, outside)},
        # T11: every softmax output with values Y lies in [min Y, max Y], so on the queries whose
        # reference lies outside, its MSE is at least the mean squared distance to that interval.
        "far_outside_share": float(outside.mean()),
        "softmax_floor": _outside_mse(np.clip(far_reference, y.min(), y.max()), far_reference, outside),
        "ols": {"train_mse": _mse(x @ ols, y), "test_mse": _mse(xt @ ols, yt)},
        "constructed": {
            "test_mse": _mse(constructed, yt),
            "relative_error_vs_ols": _relative(constructed, xt @ ols),
            # THEOREMS.md's bound for the route (T12: the forward pass is as accurate as its solve).
            "bound": error_bound(np.float64, kappa, bound_power(ROUTE), tan_theta=tan),
        },
        "far_reference": "true weights" if split.beta is not None else "ridge predictions",
        "sigma_inv": _grid(mm(l.w_q, mT(l.w_q))),
        "hat": _grid(hat_matrix(x, ridge=RIDGE, route=ROUTE)[:BLOCK, :BLOCK]),
    }


def _fit(config: models.Config, split: data.Split, key, settings: dict):
    """Train ``config`` on the fitting rows with early stopping on the validation rows; also the initial parameters."""
    n_fit = round(FIT * split.x_train.shape[0])
    x, y = jnp.asarray(split.x_train[:n_fit]), jnp.asarray(split.y_train[:n_fit])
    xv, yv = jnp.asarray(split.x_train[n_fit:]), jnp.asarray(split.y_train[n_fit:])
    params = models.init(key, config, x.shape[1], y.shape[1])

    def loss(p):
        return jnp.mean((models.apply(p, config, x, x, y) - y) ** 2)

    def validation(p):
        return jnp.mean((models.apply(p, config, xv, x, y) - yv) ** 2)

    trained = train(loss, params, validation=validation, progress=False, description=config.name, **settings)
    return trained, params


def _curve(values: np.ndarray) -> tuple[list, list]:
    steps = np.unique(np.linspace(0, len(values) - 1, min(CURVE, len(values))).astype(int))
    return (steps + 1).tolist(), np.asarray(values)[steps].tolist()


def _evaluate(config: models.Config, params, initial, split: data.Split, base: dict) -> dict:
    """Every metric of one trained model (``initial``: its parameters before training), the training set as context."""
    x, y, xt, yt = split.x_train, split.y_train, split.x_test, split.y_test
    ridge = np.asarray(base["beta_ridge"])[:, None]
    far, far_reference, outside = _far(split, ridge)
    # One call for the three query sets: one set of compiled kernels per data mode, shared by every config.
    pred = np.asarray(models.apply(params, config, np.concatenate([x, xt, far]), x, y))
    pred = dict(zip(("train", "test", "far"), np.split(pred, [len(x), len(x) + len(xt)])))
    w = np.asarray(models.bilinear(params, config, x))
    sigma_inv = np.asarray(base["sigma_inv"])
    b = x.T @ np.asarray(models.value_targets(params, config, x, y)) / x.shape[0]
    seen = b @ b.T / (b.T @ b)  # projector on the identified direction (m = 1)
    metrics = {
        "train_mse": _mse(pred["train"], y),
        "test_mse": _mse(pred["test"], yt),
        "test_mse_over_ridge": _mse(pred["test"], yt) / base["ridge"]["test_mse"],
        "cosine_to_ridge": _cosine(pred["test"], xt @ ridge),
        "far_mse": _mse(pred["far"], far_reference),
        "far_outside_mse": _outside_mse(pred["far"], far_reference, outside),
        "inside_far": _inside(pred["far"], y),
        "inside_test": _inside(pred["test"], y),
        "w_vs_sigma_inv": _relative(w, sigma_inv),
        "w_unidentified": float(np.linalg.norm(w - w @ seen) / np.linalg.norm(w)),
    }
    if config.values is models.Values.TARGETS:
        # With values Y the data fix W b = β_eff, nothing else (T4). With projected values even
        # that is not fixed: W trades scale with W_V W_P, so these two are left out there.
        w0 = np.asarray(models.bilinear(initial, config, x))
        metrics["w_identified_error"] = _relative(w @ b, sigma_inv @ b)
        # How far training moved the unseen part from its initial value. A single W's loss gradient
        # is rank one, (·)bᵀ, so plain gradient descent would leave it where it started.
        unseen = np.eye(len(b)) - seen
        metrics["w_unidentified_moved"] = _relative((w - w0) @ unseen, w0 @ unseen)
    effective = None
    if config.linear:
        effective = np.asarray(models.effective_weights(params, config, x, y))[:, 0]
        metrics["effective_vs_ridge"] = _relative(effective, ridge[:, 0])
        if split.beta is not None:
            metrics["effective_vs_true"] = _relative(effective, split.beta[:, 0])
    block = x[:BLOCK]
    return {
        "metrics": metrics,
        "effective": None if effective is None else effective.tolist(),
        "w": _grid(w),
        "attention": _grid(np.asarray(models.attention(params, config, block, x))[:, :BLOCK]),
        "scores": _grid(np.asarray(models.scores(params, config, block, x))[:, :BLOCK]),
    }


def run(*, quick: bool, seed: int, progress: bool | None) -> dict:
    """Train and evaluate every configuration of the grid on every data mode (see the module docstring)."""
    settings = SETTINGS[quick]
    splits = {mode: data.load(mode, seed) for mode in data.MODES}
    bases = {mode: _baselines(split) for mode, split in splits.items()}
    key = jax.random.key(seed)
    runs = []
    pairs = plan(quick)
    with tqdm(total=len(pairs), desc="blog", disable=None if progress is None else not progress) as bar:
        for mode, config in pairs:
            bar.set_postfix_str(f"{mode} {config.name}")
            split = splits[mode]
            trained, initial = _fit(config, split, jax.random.fold_in(key, len(runs)), settings)
            steps, losses = _curve(trained.losses)
            runs.append({
                "data": mode, "variant": config.variant.value, "tying": config.tying.value,
                "values": config.values.value, "name": config.name, "figure": _drawn(quick, mode, config),
                "best_step": trained.best_step, "steps_run": len(trained.losses),
                "stopped_early": trained.stopped_early,
                "loss_steps": steps, "losses": losses,
                "validation_steps": trained.validation_steps.tolist(),
                "validation": trained.validation.tolist(),
                **_evaluate(config, trained.params, initial, split, bases[mode]),
            })
            bar.update()
    return {
        "settings": {**settings, "ridge": RIDGE, "far": FAR, "fit_share": FIT, "block": BLOCK,
                     "modes": list(data.MODES), "grid": [c.name for c in models.GRID]},
        "data": bases,
        "runs": runs,
    }


def _baseline_rows(results: dict) -> list[dict]:
    rows = []
    for mode, base in results["data"].items():
        c = base["constructed"]
        rows.append({
            "data": mode, "n train": base["n_train"], "n test": base["n_test"], "d": base["d"],
            "κ(X)": base["kappa"], "ridge test MSE": base["ridge"]["test_mse"],
            "OLS test MSE": base["ols"]["test_mse"], "constructed test MSE": c["test_mse"],
            "constructed vs OLS": c["relative_error_vs_ols"], "bound": c["bound"],
            "far references outside [min Y, max Y]": base["far_outside_share"],
            "ridge far MSE there": base["ridge"]["far_outside_mse"], "softmax floor there (T11)": base["softmax_floor"],
        })
    return rows


def _accuracy_rows(results: dict) -> list[dict]:
    rows = []
    for r in results["runs"]:
        m = r["metrics"]
        rows.append({
            "data": r["data"], "model": r["name"], "train MSE": m["train_mse"], "test MSE": m["test_mse"],
            "test / ridge": m["test_mse_over_ridge"], "cos to ridge": m["cosine_to_ridge"],
            "far MSE": m["far_mse"], "far MSE outside": m["far_outside_mse"],
            "inside (far)": m["inside_far"], "best step": r["best_step"],
        })
    return rows


def _weight_rows(results: dict) -> list[dict]:
    rows = []
    for r in results["runs"]:
        m = r["metrics"]
        rows.append({
            "data": r["data"], "model": r["name"],
            "β_eff vs true": m.get("effective_vs_true", "–"), "β_eff vs ridge": m.get("effective_vs_ridge", "–"),
            "W vs Σ⁻¹": m["w_vs_sigma_inv"], "W b vs Σ⁻¹ b": m.get("w_identified_error", "–"),
            "unidentified part of W": m["w_unidentified"], "its change": m.get("w_unidentified_moved", "–"),
        })
    return rows


def sections(results: dict, figures: dict) -> list[report.Section]:
    """The report: set-up, the summary figure, baselines, accuracy and weight tables, one figure per configuration."""
    s = results["settings"]
    intro = report.Section(
        "Set-up",
        text=[
            "Three data modes (synthetic linear data with Toeplitz-correlated features and known weights; "
            "scikit-learn's diabetes data, standardised with training statistics; a sine toy, nonlinear) × "
            "three attention variants (softmax; regression-like, no softmax; regression-like on whitened inputs) × "
            "three weight tyings (separate W_Q, W_K; shared W_Q = W_K; one trained W = W_Q W_Kᵀ) × two value "
            "forms (values Y, T4; values X W_V with a head W_P, T1).",
            f"Each model is trained with Adam (learning rate {s['learning_rate']:g}, at most {s['steps']} steps) on "
            f"{s['fit_share']:.0%} of the training rows, which are both its queries and its context; the other "
            "training rows are queries for early stopping. Evaluation uses the whole training set as context. "
            f"Baselines: ridge (λ = {s['ridge']:g}), OLS, and the constructed transformer (construct_ols), "
            "which reproduces OLS exactly (T1, T2). Extrapolating queries are the test queries times "
            f"{s['far']:g}; their reference is the true weights where known, else ridge's predictions.",
        ],
    )
    baselines = report.Section(
        "Baselines and the exact reference",
        text=["The constructed transformer's test predictions against OLS's, relative error, beside "
              "THEOREMS.md's bound c·u·(κ + κ²·tan θ) for the SVD route (T12: the forward pass is as accurate as "
              "its solve). On the extrapolating queries whose reference leaves [min Y, max Y], every softmax "
              "model with values Y errs by at least the distance to that interval (T11): its 'floor'."],
        tables=[report.Table(_baseline_rows(results))],
    )
    summary = report.Section(
        "Test MSE across the grid",
        text=["Each model's test MSE divided by ridge's: below 1 beats ridge."],
        figures=[figures["summary"]] if "summary" in figures else [],
    )
    accuracy = report.Section(
        "Accuracy of every configuration",
        text=["'far MSE': on the extrapolating queries; 'far MSE outside': on those whose reference leaves "
              "[min Y, max Y]; 'inside (far)': share of extrapolating predictions within [min Y, max Y], where "
              "every softmax output with values Y must lie (T11). 'best step': the parameters kept by early stopping."],
        tables=[report.Table(_accuracy_rows(results))],
    )
    weights = report.Section(
        "What the weights learned (T4)",
        text=["β_eff = W Xᵀ V / n (regression-like models only: softmax predictions are not linear in the "
              "queries). 'W b vs Σ⁻¹ b' compares W = W_Q W_Kᵀ with Σ⁻¹ on the only direction the data identify "
              "(b = Xᵀ Y / n, T4; values Y only: projected values trade W's scale with the head); 'unidentified "
              "part of W' is ‖W (I − P_b)‖ / ‖W‖, invisible to every prediction; 'its change': how far training "
              "moved that part from its random start."],
        tables=[report.Table(_weight_rows(results))],
    )
    per_mode = [
        report.Section(f"Configurations on the {mode} data",
                       figures=[f for name, f in figures.items() if name.startswith(f"{mode}-")])
        for mode in s["modes"]
    ]
    return [intro, summary, baselines, accuracy, weights, *per_mode]
