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
# # Attention and linear regression: one configuration, step by step
#
# M. Tang's post "Attention and Linear Regression" (2023) asks whether a trained
# `W_Q W_Kᵀ` learns the inverse covariance `Σ⁻¹`, whether whitening can be built in,
# and whether one can train a single `W = W_Q W_Kᵀ`. This notebook walks through one
# configuration of `olsjax experiment blog` with the library API: regression-like
# attention (no softmax) with a single trained `W` and the targets as values,
# on synthetic data with correlated features, next to ridge, OLS and the exact
# construction. The full grid is `olsjax experiment blog --out DIR` (see docs/blog.md).

# %%
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # float64 for this notebook; the library never sets it

import olsjax
from olsjax import data, models
from olsjax.plots import new
from olsjax.train import train

# %% [markdown]
# ## Data and baselines
# 240 rows, 5 features with correlation `ρ^|i−j|` (ρ = 0.8), noise σ = 0.5, a quarter held out.

# %%
split = data.synthetic(seed=0)
x, y, xt, yt = split.x_train, split.y_train, split.x_test, split.y_test
ridge = np.asarray(olsjax.lstsq(x, y, ridge=1e-3))
ols = np.asarray(olsjax.lstsq(x, y))
sigma_inv = np.linalg.inv(x.T @ x / len(x))
print("ridge test MSE", np.mean((xt @ ridge - yt) ** 2))

# %% [markdown]
# ## The exact reference: the construction is OLS (T4)
# With `W = Σ⁻¹` the model's effective coefficients `W XᵀY/n` are the OLS coefficients,
# and its predictions are OLS predictions, to rounding.

# %%
config = models.Config(models.Variant.REGRESSION, models.Tying.SINGLE, models.Values.TARGETS)
exact = models.constructed(config, x, y)
print("max |β_eff − β_OLS| =", np.abs(np.asarray(models.effective_weights(exact, config, x, y)) - ols).max())
print("max |f − X*β_OLS|   =", np.abs(np.asarray(models.apply(exact, config, xt, x, y)) - xt @ ols).max())

# %% [markdown]
# ## Training a single W with Adam
# Queries and context are the first 80% of the training rows; the rest validate
# (early stopping keeps the best parameters).

# %%
fit = round(0.8 * len(x))
xf, yf, xv, yv = (jnp.asarray(a) for a in (x[:fit], y[:fit], x[fit:], y[fit:]))


def mse(p, queries, targets):
    return jnp.mean((models.apply(p, config, queries, xf, yf) - targets) ** 2)


params = models.init(jax.random.key(0), config, d=5, m=1)
trained = train(lambda p: mse(p, xf, yf), params, steps=2000, learning_rate=1e-2, chunk=200,
                validation=lambda p: mse(p, xv, yv), patience=4, progress=False)
learned = trained.params
pred = np.asarray(models.apply(learned, config, xt, x, y))
print(f"best step {trained.best_step}; test MSE {np.mean((pred - yt) ** 2):.4f}")

# %% [markdown]
# ## Does W learn Σ⁻¹? Only where the data can see it (T4)
# For one target the predictions depend on `W` only through `W b`, `b = XᵀY/n`.
# Compare `W` with `Σ⁻¹` as a whole and along `b`:

# %%
w = np.asarray(models.bilinear(learned, config, x))
b = x.T @ y / len(x)
print("‖W − Σ⁻¹‖/‖Σ⁻¹‖       =", np.linalg.norm(w - sigma_inv) / np.linalg.norm(sigma_inv))
print("‖(W − Σ⁻¹)b‖/‖Σ⁻¹b‖   =", np.linalg.norm((w - sigma_inv) @ b) / np.linalg.norm(sigma_inv @ b))
effective = np.asarray(models.effective_weights(learned, config, x, y))
print("effective vs true     =", np.linalg.norm(effective - split.beta) / np.linalg.norm(split.beta))

# %% [markdown]
# Any `E` with `E b = 0` changes `W` without changing a single prediction, in or out of sample:

# %%
e = np.outer(np.arange(1.0, 6.0), np.ones(5))
e -= e @ b @ b.T / (b.T @ b)  # rows orthogonal to b: E b = 0
moved = {"w": learned["w"] + jnp.asarray(e)}
print("max change of predictions:", np.abs(np.asarray(models.apply(moved, config, xt, x, y)) - pred).max())

# %% [markdown]
# ## Softmax cannot extrapolate (T11)
# Every softmax output is a convex combination of the targets, so it stays in
# `[min Y, max Y]`; OLS does not. On queries three times the test queries:

# %%
soft = models.Config(models.Variant.SOFTMAX, models.Tying.SEPARATE, models.Values.TARGETS)
soft_params = train(lambda p: jnp.mean((models.apply(p, soft, xf, xf, yf) - yf) ** 2),
                    models.init(jax.random.key(1), soft, 5, 1), steps=600, learning_rate=2e-2,
                    chunk=200, progress=False).params
far = 3 * xt
truth = far @ split.beta
soft_far = np.asarray(models.apply(soft_params, soft, far, x, y))
print("range of Y:", y.min(), y.max())
print("softmax outputs:", soft_far.min(), soft_far.max(), " far MSE", np.mean((soft_far - truth) ** 2))
print("regression-like far MSE", np.mean((np.asarray(models.apply(learned, config, far, x, y)) - truth) ** 2))

# %%
fig, axes = new(1, 3, size=(3.4, 3.0))
top = np.abs(sigma_inv).max()
for ax, (title, m) in zip(axes[:2], [("trained W", w), ("Σ⁻¹", sigma_inv)]):
    image = ax.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top)
    ax.set_title(title)
fig.colorbar(image, ax=axes[:2])
axes[2].plot(truth, truth, "k:", lw=1, label="truth")
axes[2].plot(truth, soft_far, ".", label="softmax")
axes[2].plot(truth, np.asarray(models.apply(learned, config, far, x, y)), ".", label="single W")
axes[2].set(xlabel="true y at 3·x*", ylabel="prediction", title="extrapolating queries")
axes[2].legend()
fig
