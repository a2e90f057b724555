# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # scikit-learn estimators: OLS as one transformer pass, and trained attention regression
#
# `olsjax.sklearn` wraps the constructions as scikit-learn regressors.
#
# * `TransformerOLSRegressor`: `fit` *constructs* the one-layer linear transformer
#   of `olsjax.construct_ols` from the training data; `predict` is one `forward`
#   pass in which the queries attend to the training rows. It is
#   `LinearRegression` (or `Ridge(alpha=ridge)`), with `sample_weight`.
# * `AttentionRegressor`: Goulet Coulombe's "OLS as an attention mechanism":
#   queries and keys `X L`, values the training targets, linear or softmax,
#   initialised at the OLS construction and trained with optax.
#
# Both compute in float64 whatever JAX's 64-bit setting, so this notebook does
# not touch `jax.config`. The data: scikit-learn's bundled diabetes set (442
# patients, 10 standardised features), as a pandas frame.

# %%
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from olsjax.sklearn import AttentionRegressor, TransformerOLSRegressor

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
X_train.shape, X_test.shape

# %% [markdown]
# ## One forward pass is the least-squares prediction
#
# The fitted transformer holds `W_Q = W_K = W_V = L` with `L Lᵀ = (XᵀX/n)⁻¹`
# (after centring, for the intercept), the head `W_P` and refinement layers;
# `predict` attends from the test rows to the training rows. `coef_` and
# `intercept_` are read off the transformer (the forward pass of unit and zero
# queries). They agree with `LinearRegression` to rounding.

# %%
ols = TransformerOLSRegressor().fit(X_train, y_train)
ref = LinearRegression().fit(X_train, y_train)
print("feature names kept:", list(ols.feature_names_in_[:4]), "...")
print("max |Δ prediction| / max |prediction|:",
      np.abs(ols.predict(X_test) - ref.predict(X_test)).max() / np.abs(ref.predict(X_test)).max())
print("max |Δ coef| / max |coef|:", np.abs(ols.coef_ - ref.coef_).max() / np.abs(ref.coef_).max())
print("test R²:", ols.score(X_test, y_test), "dtype:", ols.predict(X_test).dtype)

# %% [markdown]
# ## Ridge and sample weights
#
# `ridge` is `λ` in `(XᵀX + λI)β = XᵀY`, scikit-learn's `Ridge(alpha)`
# convention (no `1/n`). `sample_weight` is weighted least squares: rows are
# scaled by `√w` and centred at the weighted means; zero weights drop rows,
# negative weights raise.

# %%
w = np.random.default_rng(0).integers(0, 4, len(X_train)).astype(float)
for alpha in (0.0, 10.0):
    ours = TransformerOLSRegressor(ridge=alpha).fit(X_train, y_train, sample_weight=w)
    theirs = (Ridge(alpha=alpha) if alpha else LinearRegression()).fit(X_train, y_train, sample_weight=w)
    gap = np.abs(ours.predict(X_test) - theirs.predict(X_test)).max() / np.abs(theirs.predict(X_test)).max()
    print(f"ridge={alpha:5}: relative gap to sklearn with sample_weight {gap:.1e}")

# %% [markdown]
# ## In a Pipeline, under GridSearchCV
#
# `ridge` is a traced value in olsjax's jitted core, so a grid over it compiles
# the construction once per fold size, not once per value.

# %%
pipe = Pipeline([("scale", StandardScaler()), ("reg", TransformerOLSRegressor())])
search = GridSearchCV(pipe, {"reg__ridge": list(np.logspace(-2, 3, 6))}, cv=5).fit(X_train, y_train)
print("best ridge:", search.best_params_["reg__ridge"], " CV R²:", round(search.best_score_, 4))
print("test R²:", round(search.score(X_test, y_test), 4))

# %% [markdown]
# ## Attention regression, trained from the OLS construction
#
# With `steps=0` the linear attention regressor *is* the construction: its
# predictions are the OLS predictions (T4). OLS minimises the in-sample error,
# so training the linear kind from there keeps the start (`best_step_ = 0`).
# The softmax kind starts as a kernel smoother whose kernel is the whitened
# inner product, and training with Adam learns that kernel; the regressor
# keeps the best iterate, so the training loss never goes up.

# %%
linear0 = AttentionRegressor(steps=0).fit(X_train, y_train)
print("linear, 0 steps vs OLS:",
      np.abs(linear0.predict(X_test) - ref.predict(X_test)).max() / np.abs(ref.predict(X_test)).max())
linear = AttentionRegressor(steps=50).fit(X_train, y_train)
print("linear, 50 steps: best step", linear.best_step_, " test R²", round(linear.score(X_test, y_test), 4))
soft = AttentionRegressor(kind="softmax", steps=200, learning_rate=3e-3).fit(X_train, y_train)
print("softmax: training MSE", round(soft.loss_curve_[0]), "->", round(soft.loss_),
      " test R²", round(soft.score(X_test, y_test), 4))
