# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training reachability and Hopfield capacity
#
# Two parts of `olsjax experiment paper`, small enough to run here:
#
# 1. train the values-are-targets attention layer (THEOREMS.md T4) from a random start on
#    `y = xᵀB + ε` and watch what converges to OLS — and what does not;
# 2. store random ±1 patterns and retrieve them with the classical, polynomial and
#    exponential Hopfield rules (T10).
#
# The full experiment (both model forms, in-context learning, distribution shift, fast
# memory) is `olsjax experiment paper --out DIR`; its findings are in `docs/paper.md`.

# %%
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import olsjax
from olsjax.train import train

# %% [markdown]
# ## 1. Training reaches OLS — in function, not in every weight
#
# One context of `n = 100` rows, `d = 3` features, one target. The model is
# `f(X*) = X* W_Q W_Kᵀ XᵀY / n`; the in-sample loss is minimised by any `W = W_Q W_Kᵀ` with
# `W XᵀY = Σ⁻¹ XᵀY`, so only the direction `b = XᵀY/n` of `W` is identified.

# %%
rng = np.random.default_rng(0)
n, d = 100, 3
X = rng.standard_normal((n, d))
Y = X @ rng.standard_normal((d, 1)) + 0.5 * rng.standard_normal((n, 1))
beta = np.linalg.lstsq(X, Y, rcond=None)[0]
sigma_inv = np.linalg.inv(X.T @ X / n)

k1, k2 = jax.random.split(jax.random.key(0))
start = olsjax.RegressionAttention(
    w_q=jax.random.normal(k1, (d, d)) / np.sqrt(d), w_k=jax.random.normal(k2, (d, d)) / np.sqrt(d)
)


def loss(p):
    return jnp.mean((olsjax.regression_attention(p, X, X, Y) - Y) ** 2)


import optax

trained = train(loss, start, steps=1000, optimizer=optax.adam(optax.cosine_decay_schedule(0.03, 1000)))
print(f"loss {trained.losses[0]:.3f} -> {trained.losses[-1]:.6f}; OLS loss {np.mean((X @ beta - Y) ** 2):.6f}")

# %% [markdown]
# The effective coefficients (the blog's effective weights) reach `β`; `W_Q W_Kᵀ` does not
# reach `Σ⁻¹` — except along `b`:

# %%
p = trained.params
coef = np.asarray(olsjax.effective_weights(p, X, Y))
W = np.asarray(p.w_q @ p.w_k.T)
b = X.T @ Y / n
free = np.eye(d) - b @ b.T / (b.T @ b)
rel = lambda a, r: np.linalg.norm(a - r) / np.linalg.norm(r)  # noqa: E731
print(f"effective coefficients vs β:      {rel(coef, beta):.1e}")
print(f"W b vs Σ⁻¹ b (identified):        {rel(W @ b, sigma_inv @ b):.1e}")
print(f"W vs Σ⁻¹ (all of it):             {rel(W, sigma_inv):.2f}")
print(f"W(I − bbᵀ/‖b‖²) vs Σ⁻¹(…) (free): {rel(W @ free, sigma_inv @ free):.2f}")

# %% [markdown]
# A perturbation along the free directions changes nothing the data can see: this is why
# trained models are compared by their effective coefficients (T4).

# %%
E = rng.standard_normal((d, d)) @ free  # E b = 0
moved = olsjax.RegressionAttention(w_q=p.w_q @ p.w_k.T + E, w_k=jnp.eye(d))
queries = rng.standard_normal((5, d))
gap = np.max(np.abs(olsjax.regression_attention(moved, queries, X, Y) - olsjax.regression_attention(p, queries, X, Y)))
print(f"largest change of a prediction: {gap:.1e}")

# %% [markdown]
# ## 2. Hopfield capacity: classical, polynomial, exponential
#
# `N` random ±1 patterns in `d = 32` dimensions; each cue is a stored pattern with 3 of its
# 32 signs flipped; success means every sign is restored.

# %%
d = 32


def success_rate(N, energy, cues=64):
    patterns = rng.choice([-1.0, 1.0], size=(N, d))
    which = rng.integers(0, N, cues)
    cue = patterns[which].copy()
    flips = np.argsort(rng.random((cues, d)), axis=1)[:, :3]
    np.put_along_axis(cue, flips, -np.take_along_axis(cue, flips, axis=1), axis=1)
    steps = 1 if energy == "exponential" else 3
    out = np.asarray(olsjax.hopfield_retrieve(patterns, cue, energy=energy, steps=steps))
    return np.mean(np.all(np.sign(out) == patterns[which], axis=1))


for N in (4, 16, 64, 256):
    rates = {e: success_rate(N, e) for e in ("quadratic", "polynomial", "exponential")}
    print(f"N = {N:4d} (N/d = {N / d:5.2f}): " + ", ".join(f"{e} {r:.2f}" for e, r in rates.items()))

# %% [markdown]
# The classical rule fails well below `N = d` (about `0.14·d` in the large-`d` theory), the
# cubic energy holds to about `N = 2·d` here (capacity `∝ d²`), and the exponential energy — one
# softmax-attention step — still retrieves every pattern at `N = 8·d`.
