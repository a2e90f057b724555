"""Experiment 3 of ``paper``: fixed parameters under a shifted or rescaled context distribution.

Source distribution: ``x ~ N(0, I_d)``. Parameters are built once on one
source context ``(X₀, Y₀)`` and then applied, unchanged, to new tasks whose
contexts are rescaled (``x = a·z``) or shifted (``x = z + s·e``, ``e`` a unit
vector), with fresh coefficients ``β' ~ N(0, I)`` and targets
``Y' = X'β' + ε``. The error is that against OLS fitted on the new context
(``numpy.linalg.lstsq``), on queries from the new distribution. Compared:

- the values-are-targets construction of ``X₀`` (``W_Q W_Kᵀ = Σ₀⁻¹``): exact only while ``Σ' = Σ₀``;
- the paper form constructed on ``(X₀, Y₀)``, the paper's one layer and with the default
  refinement layers (T12): its head ``W_P`` holds the old task (slow memory), so it never
  reads the new targets; the refinement layers, which invert ``S = I`` to rounding,
  form a series in ``I − W_R S`` that diverges once ``‖I − W_R S‖ ≥ 1`` on the new
  context, where ``forward`` refuses (NaN under ``jit``): their error is the median over
  the tasks it accepts, and the share it refuses is reported beside it;
- the data-independent GD construction, one step with ``η = n/(n + d + 1)``
  (Ahn et al.'s optimum for ``Σ = I``: what training on the source converges to, experiment 2);
- the construction rebuilt from each new context: exact by T2 (rounding error only).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import (
    construct_gd,
    construct_ols,
    construct_regression_attention,
    forward,
    predict_in_context,
    regression_attention,
)

D, N, QUERIES = 4, 50, 16
NOISE = 0.1
SCALES = np.geomspace(0.25, 4.0, 9)
SHIFTS = np.linspace(0.0, 4.0, 9)
METHODS = ("targets form, built on source", "paper form (one layer), built on source",
           "paper form + refinement layers, built on source", "GD step, η = n/(n+d+1)",
           "rebuilt on each new context")
#: ``forward`` under ``jit``: a task whose refinement layers diverge is NaN, not an error for the batch.
_forward_or_nan = jax.jit(forward)

#: The share of tasks on which ``forward`` refuses the refinement layers (they diverge there).
REFUSED = "refinement layers refused"


def _contexts(rng, tasks: int, scale: float, shift: float):
    e = np.ones(D) / np.sqrt(D)
    draw = lambda rows: scale * rng.standard_normal((tasks, rows, D)) + shift * e  # noqa: E731
    x, xq = draw(N), draw(QUERIES)
    beta = rng.standard_normal((tasks, D, 1))
    return x, x @ beta + NOISE * rng.standard_normal((tasks, N, 1)), xq


def errors(source: dict, x: np.ndarray, y: np.ndarray, xq: np.ndarray) -> dict[str, float | None]:
    """Median over tasks of ``‖pred − X*β'_OLS‖/‖X*β'_OLS‖`` for every method (``None``: every task refused).

    Also ``REFUSED``: the share of tasks on which the refinement layers refuse.
    """
    beta = np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(x, y)])
    reference = xq @ beta
    preds = {
        METHODS[0]: regression_attention(source["targets"], xq, x, y),
        METHODS[1]: forward(source["paper"], xq, x),
        METHODS[2]: _forward_or_nan(source["refined"], xq, x),
        METHODS[3]: predict_in_context(source["gd"], jnp.asarray(x), jnp.asarray(y), jnp.asarray(xq)),
        METHODS[4]: regression_attention(construct_regression_attention(x), xq, x, y),
    }
    errs = {k: np.linalg.norm(np.asarray(p).reshape(reference.shape) - reference, axis=(1, 2))
            / np.linalg.norm(reference, axis=(1, 2)) for k, p in preds.items()}
    accepted = ~np.isnan(errs[METHODS[2]])
    return {**{k: float(np.median(e[accepted] if k == METHODS[2] else e)) if accepted.any() or k != METHODS[2]
               else None for k, e in errs.items()},
            REFUSED: float(1 - accepted.mean())}


def run(*, quick: bool, seed: int, progress) -> dict:
    """Experiment 3: error against OLS on the new context, as the context is rescaled, then shifted."""
    del progress  # seconds: nothing to show
    tasks = 64 if quick else 512
    rng = np.random.default_rng([seed, 3])
    x0, y0, _ = _contexts(rng, 1, 1.0, 0.0)
    source = {"targets": construct_regression_attention(x0[0]), "paper": construct_ols(x0[0], y0[0], refine=0),
              "refined": construct_ols(x0[0], y0[0]),
              "gd": construct_gd(D, 1, eta=jnp.asarray(N / (N + D + 1)))}
    scaled = [{"scale": float(a), **errors(source, *_contexts(rng, tasks, a, 0.0))} for a in SCALES]
    shifted = [{"shift": float(s), **errors(source, *_contexts(rng, tasks, 1.0, s))} for s in SHIFTS]
    return {
        "settings": {"d": D, "n": N, "queries_per_task": QUERIES, "tasks_per_point": tasks, "noise": NOISE,
                     "source": "x ~ N(0, I)", "shift_direction": "(1, …, 1)/√d", "methods": list(METHODS),
                     "refused": REFUSED},
        "scaled": scaled,
        "shifted": shifted,
    }
