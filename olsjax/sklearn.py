"""scikit-learn estimators: least squares as one transformer pass, and trained attention regression.

``TransformerOLSRegressor`` fits by *constructing* the one-layer linear
transformer of ``construct_ols`` from the training data (T1, T5, T7, T12) and
predicts with one ``forward`` pass that attends to that data: it is (weighted,
ridge) least squares, as accurate as the construction. ``AttentionRegressor``
is Goulet Coulombe's reading of OLS as attention (T4): queries and keys
``X L``, values the training targets, linear or softmax, initialised at the OLS
construction and trained with optax (``olsjax.train``).

Both compute in float64 whatever JAX's global 64-bit setting (inside
``jax.enable_x64(True)``), return float64 numpy arrays, and keep every fitted
attribute as a numpy array: JAX arrays would pickle to a device and come back
float32 in a process where 64-bit mode is off. No compiled function is kept
on an estimator; the library's module-level cores are jitted with ``ridge``
traced, so a grid over ridge values compiles once per shape.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._attention import softmax_attention
from ._construct import construct_ols, construct_regression_attention
from ._linalg import mm
from ._transformer import RegressionAttention, forward, regression_attention
from .train import train

#: The kinds of attention ``AttentionRegressor`` trains.
KINDS = ("linear", "softmax")
#: Adam steps between two looks at the training loss (the best iterate is kept).
CHUNK = 10


def expected_failed_checks(estimator) -> dict[str, str]:
    """The scikit-learn estimator checks ``estimator`` is expected to fail, with the reason for each.

    For ``parametrize_with_checks(..., expected_failed_checks=...)`` and
    ``check_estimator``. Only the default ``rcond=None`` fails anything: it
    refuses ``n_samples < n_features`` rather than pick one of the many
    least-squares solutions; with ``rcond`` set the check passes.
    """
    if getattr(estimator, "rcond", None) is not None or not isinstance(estimator, TransformerOLSRegressor):
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "fits 15 samples with 30 features: the least-squares solution is not unique, and "
            "rcond=None refuses (ValueError) instead of choosing one; with rcond set the minimum-norm "
            "fit (T6) passes this check"
        ),
    }


def _float64():
    """Compute in float64 whatever JAX's global setting (the estimators never change it)."""
    return jax.enable_x64(True)


def _host(tree):
    """Every array leaf of ``tree`` as a float64 numpy array (pickles without a device, stays float64)."""
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def _training_data(estimator, X, y):
    """``validate_data`` for ``fit``: float64 ``X`` and ``y`` (integer targets too; the library takes floats only)."""
    X, y = validate_data(estimator, X, y, dtype=np.float64, y_numeric=True, multi_output=True)
    return X, np.asarray(y, np.float64)


def _enough_rows(n: int, d: int, allowed: bool) -> None:
    """Refuse ``n < d`` unless ``allowed``, in scikit-learn's words (its checks match ``n_samples=1``)."""
    if n < d and not allowed:
        raise ValueError(
            f"n_samples={n} < n_features={d}: the least-squares solution is not unique; "
            "pass rcond (e.g. rcond=1e-10) for the minimum-norm solution"
        )


def _weighted(X, y, sample_weight, fit_intercept: bool):
    """Weighted least squares as plain least squares: rows scaled by ``√w``, centred at the weighted means.

    ``min Σ wᵢ‖yᵢ − xᵢβ − b‖²`` is ``min ‖√W(Y − x̄_w − (X − x̄_w)β)‖²`` with
    ``b = ȳ_w − x̄_w β``. Zero weights drop their rows; negative weights raise.
    A column constant to working precision among the kept rows (centred
    entries within ``n·ε`` of its largest) is set to exactly zero, the rule of
    the unweighted intercept (``_construct.centre``): collinear with the
    intercept, it is rank deficiency, not rounding residue to be blown up.

    **Returns:** ``(√W(X − x̄_w), √W(Y − ȳ_w), x̄_w, ȳ_w)`` (means ``None`` without an intercept).
    """
    w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    keep = w > 0
    X, y, w = X[keep], y[keep], w[keep]
    x_mean = y_mean = None
    if fit_intercept:
        x_mean, y_mean = w @ X / w.sum(), w @ y / w.sum()
        size = np.max(np.abs(X), axis=0)
        X, y = X - x_mean, y - y_mean
        X[:, np.max(np.abs(X), axis=0) <= len(X) * np.finfo(np.float64).eps * size] = 0
    root = np.sqrt(w)
    return root[:, None] * X, (root[:, None] if y.ndim == 2 else root) * y, x_mean, y_mean


class TransformerOLSRegressor(RegressorMixin, BaseEstimator):
    """Least squares fitted by constructing a one-layer linear transformer; predictions are one forward pass.

    ``fit`` builds ``construct_ols(X, y)`` (T1, T2): ``W_Q = W_K = W_V = L`` with
    ``L Lᵀ = (XᵀX/n + (λ/n)I)⁻¹``, the head ``W_P``, the intercept's biases
    (T7) and the refinement layers (T12). ``predict(X*)`` is
    ``forward(params_, X*, context_)``: attention from the queries to the
    training rows, equal to ``X*β + b`` of ``LinearRegression`` (``ridge=0``)
    or ``Ridge(alpha=ridge)``.

    **Arguments:** ``fit_intercept``: fit ``b`` (centre ``X`` and ``y``, T7);
    ``ridge``: ``λ ≥ 0`` penalising ``λ‖β‖²``, scikit-learn's ``Ridge(alpha)``
    convention (``(XᵀX + λI)β = XᵀY``, not ``XᵀX/n``); ``route``: the
    whitening route (``olsjax.ROUTES``); ``rcond``: ``None`` requires full
    rank (rank-deficient or too ill-conditioned ``X`` raises ``ValueError``);
    a cutoff in ``[0, 1)`` gives the minimum-norm solution (T6).

    **Fitted attributes:** ``params_`` (a ``LinearTransformer`` of numpy
    arrays), ``context_`` (the rows it attends to: ``X``, or ``√W(X − x̄_w)``
    with ``sample_weight``), ``coef_`` ``(n_features,)`` or
    ``(n_targets, n_features)`` and ``intercept_``, read off the transformer
    when asked for (small forward passes), ``n_features_in_``,
    ``feature_names_in_`` (pandas input).
    """

    # No annotations on __init__: scikit-learn stores any value and validates in fit.
    def __init__(self, *, fit_intercept=True, ridge=0.0, route="auto", rcond=None):
        self.fit_intercept = fit_intercept
        self.ridge = ridge
        self.route = route
        self.rcond = rcond

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Construct the transformer from ``(X, y)``; ``sample_weight`` ``wᵢ ≥ 0`` weights row ``i``'s squared error.

        **Returns:** ``self``. **Raises:** ``ValueError`` for ``n_samples <
        n_features`` or rank-deficient / too ill-conditioned ``X`` without
        ``rcond``, negative weights, and whatever ``construct_ols`` refuses.
        """
        X, y = _training_data(self, X, y)
        shift = None
        if sample_weight is not None:
            X, y, *shift = _weighted(X, y, sample_weight, self.fit_intercept)
        _enough_rows(len(X), X.shape[1], self.rcond is not None)
        with _float64():
            params = construct_ols(
                X, y, route=self.route, ridge=self.ridge, rcond=self.rcond,
                intercept=bool(self.fit_intercept) and shift is None,
            )
            if shift is not None and shift[0] is not None:  # the weighted means in the biases (T7)
                x_mean, y_mean = shift
                params = dataclasses.replace(params, b_q=-x_mean @ np.asarray(params.w_q), b_out=np.atleast_1d(y_mean))
        self.params_, self.context_ = _host(params), X
        return self

    @property
    def coef_(self):
        """``β`` read off the transformer: the forward pass of the unit queries without the biases."""
        check_is_fitted(self, "params_")
        bare = dataclasses.replace(self.params_, b_q=None, b_out=None)
        with _float64():
            coef = np.asarray(forward(bare, np.eye(self.n_features_in_), self.context_), np.float64)
        return coef if coef.ndim == 1 else coef.T

    @property
    def intercept_(self):
        """``b``: the forward pass of the zero query (``0.0`` without ``fit_intercept``, as ``LinearRegression``)."""
        check_is_fitted(self, "params_")
        if not self.fit_intercept:
            return 0.0
        with _float64():
            b = np.asarray(forward(self.params_, np.zeros((1, self.n_features_in_)), self.context_), np.float64)[0]
        return float(b) if b.ndim == 0 else b

    def predict(self, X):
        """One forward pass ``forward(params_, X, context_)``: float64 ``(n,)`` or ``(n, n_targets)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        with _float64():
            return np.asarray(forward(self.params_, X, self.context_), np.float64)


def _predict(params: RegressionAttention, kind: str, queries, context, targets):
    """Values-are-targets attention from ``queries`` to ``(context, targets)``: linear (T4) or softmax."""
    if kind == "linear":
        return regression_attention(params, queries, context, targets)
    q, k = mm(queries, params.w_q), mm(context, params.w_k)
    if params.b_q is not None:
        q, k = q + params.b_q[None, :], k + params.b_k[None, :]
    v = targets if targets.ndim == 2 else targets[:, None]
    out = softmax_attention(q, k, v)
    return out if targets.ndim == 2 else out[:, 0]


def _loss(params: RegressionAttention, kind: str, context, targets):
    """In-sample mean squared error of the attention predictions (the context attends to itself)."""
    return jnp.mean(jnp.square(_predict(params, kind, context, context, targets) - targets))


def _linear_loss(params: RegressionAttention, data):
    return _loss(params, "linear", *data)


def _softmax_loss(params: RegressionAttention, data):
    return _loss(params, "softmax", *data)


#: Module-level losses of ``(params, (X, y))``: ``train`` reuses one compiled loop across fits.
_LOSSES = {"linear": _linear_loss, "softmax": _softmax_loss}


class AttentionRegressor(RegressorMixin, BaseEstimator):
    """Regression by attention to the training data, trained from the OLS construction (Goulet Coulombe).

    The prediction for a query ``x*`` is a weighted sum of the training targets,
    the weights computed from queries ``x* W_Q + b_q`` and keys ``X W_K + b_k``:
    ``linear``: ``(x*W_Q)(XW_K)ᵀ y / n`` (+ ``ȳ`` with an intercept), which at
    ``W_Q = W_K = L`` is exactly the OLS (ridge) prediction (T4, T5, T7);
    ``softmax``: ``softmax((x*W_Q)(XW_K)ᵀ/√d) y``, a kernel smoother whose
    kernel starts as the whitened inner product. ``fit`` initialises
    ``W_Q = W_K = L`` (``construct_regression_attention``) and runs ``steps``
    Adam steps on the in-sample mean squared error, keeping the best iterate
    (the start included, judged every ``CHUNK`` steps): training never
    increases the training loss. For ``linear`` with ``ridge=0`` the start is
    already the minimum (OLS minimises that error), so it is kept; with
    ``ridge`` training moves towards OLS; ``softmax`` learns its kernel.

    **Arguments:** ``kind``: ``"linear"`` or ``"softmax"``; ``fit_intercept``,
    ``ridge``, ``route``, ``rcond``: of the initial construction, as in
    ``TransformerOLSRegressor``; ``steps``: Adam steps (0: the construction
    itself); ``learning_rate``.

    **Fitted attributes:** ``params_`` (a ``RegressionAttention`` of numpy
    arrays), ``context_``, ``targets_`` (the training data, attended to by
    ``predict``), ``loss_curve_`` (the training loss before each step),
    ``loss_`` (that of ``params_``), ``best_step_`` (the step ``params_`` were
    taken at; 0: the construction), ``n_features_in_``, ``feature_names_in_``.
    """

    def __init__(
        self, *, kind="linear", fit_intercept=True, ridge=0.0, route="auto", rcond=None, steps=50, learning_rate=1e-2
    ):
        self.kind = kind
        self.fit_intercept = fit_intercept
        self.ridge = ridge
        self.route = route
        self.rcond = rcond
        self.steps = steps
        self.learning_rate = learning_rate

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_params(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}")

    def fit(self, X, y):
        """Construct ``W_Q = W_K = L`` from ``X`` and train ``steps`` Adam steps on ``(X, y)``.

        **Returns:** ``self``. **Raises:** ``ValueError`` for a bad ``kind`` or
        ``steps``, ``n_samples < n_features`` without ``rcond`` or ``ridge``,
        whatever ``construct_regression_attention`` refuses, or a training loss
        that became non-finite.
        """
        self._check_params()
        X, y = _training_data(self, X, y)
        _enough_rows(len(X), X.shape[1], self.rcond is not None or self.ridge != 0)
        with _float64():
            params = construct_regression_attention(
                X, route=self.route, ridge=self.ridge, rcond=self.rcond, intercept=bool(self.fit_intercept)
            )
            loss = functools.partial(_LOSSES[self.kind], data=(X, y))
            best, curve, best_step = float(loss(params)), np.zeros(0), 0
            if self.steps:
                # Adam normalises its steps: near a minimum it circles at the scale of the learning
                # rate (from OLS, the linear kind's minimum, it leaves it). Keep the best iterate,
                # judged by the training loss itself after every chunk, or the start.
                trained = train(
                    _LOSSES[self.kind], params, data=(X, y), steps=int(self.steps),
                    learning_rate=self.learning_rate, validation=loss, chunk=CHUNK, progress=False,
                )
                curve = trained.losses
                if trained.validation.min() < best:
                    params, best, best_step = trained.params, float(trained.validation.min()), trained.best_step
        self.params_, self.context_, self.targets_ = _host(params), X, y
        self.loss_curve_, self.loss_, self.best_step_ = np.asarray(curve, np.float64), best, best_step
        return self

    def predict(self, X):
        """Attention from ``X`` to the training data: float64 ``(n,)`` or ``(n, n_targets)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        with _float64():
            return np.asarray(_predict(self.params_, self.kind, X, self.context_, self.targets_), np.float64)
