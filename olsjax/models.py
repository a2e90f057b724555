"""One configurable attention model for the attention-vs-regression study (the blog).

A model reads queries ``X*`` against a context ``(X, Y)``; ``Config`` fixes its
structure along three axes (plus the whitening for the whitened variant):

- ``Variant``: ``SOFTMAX``, vanilla scaled dot-product attention
  ``softmax(QKᵀ/√k)·V``; ``REGRESSION``, regression-like attention without the
  softmax, ``QKᵀV/n`` (THEOREMS.md's linear attention); ``WHITENED``,
  regression-like attention on inputs whitened with the context's second
  moment ``Σ = XᵀX/n`` (``x ↦ xL``, ``LLᵀ = Σ⁻¹``: ZCA or PCA, T3);
- ``Tying``: ``SEPARATE`` ``W_Q``, ``W_K`` ``(d, d)``; ``SHARED``
  ``W_Q = W_K``; ``SINGLE``, one trained ``W = W_Q W_Kᵀ`` (Tang's third
  question: ``W_Q = W``, ``W_K = I``);
- ``Values``: ``TARGETS``, the values are the context targets ``Y`` (T4, the
  blog's form); ``PROJECTED``, values ``X W_V`` and a head ``W_P`` (the paper's
  form, T1).

Pure functions: ``init`` (seeded random parameters), ``constructed`` (the exact
construction, which equals OLS for the regression-like variants), ``apply``
(predictions), and for analysis ``bilinear`` (``W_Q W_Kᵀ`` in raw input
coordinates), ``attention``, ``scores`` and ``effective_weights``. Parameters
are a dict of arrays (a pytree); the config is static.
"""

from __future__ import annotations

import dataclasses
import enum
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ._attention import (
    linear_attention,
    linear_attention_matrix,
    linear_scores,
    softmax_attention,
    softmax_attention_matrix,
    softmax_scores,
)
from ._checks import Data
from ._construct import construct_ols, construct_regression_attention
from ._linalg import identity, mm, mT, xty


class Variant(enum.Enum):
    """How scores become attention weights, and on which inputs."""

    SOFTMAX = "softmax"
    REGRESSION = "regression"
    WHITENED = "whitened"


class Tying(enum.Enum):
    """How the query and key maps are parametrised."""

    SEPARATE = "separate"
    SHARED = "shared"
    SINGLE = "single"


class Values(enum.Enum):
    """What the attention averages: the targets (T4) or projected inputs with a head (T1)."""

    TARGETS = "targets"
    PROJECTED = "projected"


class Whitening(enum.Enum):
    """The whitening factor of ``Variant.WHITENED``: the value is the olsjax route that computes it."""

    ZCA = "zca"
    PCA = "eigh"


def _member(kind: type[enum.Enum], value, name: str):
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(repr(m.value) for m in kind)
        raise ValueError(f"{name} must be a {kind.__name__} or one of {known}, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class Config:
    """The structure of a model (static, hashable). Strings are accepted and converted to the enums.

    **Raises:** ``ValueError`` naming the field for an unknown value.
    """

    variant: Variant | str = Variant.REGRESSION
    tying: Tying | str = Tying.SEPARATE
    values: Values | str = Values.TARGETS
    whitening: Whitening | str = Whitening.ZCA

    def __post_init__(self):
        for field, kind in (("variant", Variant), ("tying", Tying), ("values", Values), ("whitening", Whitening)):
            object.__setattr__(self, field, _member(kind, getattr(self, field), field))

    @property
    def name(self) -> str:
        """``variant/tying/values``, e.g. ``"whitened/shared/targets"``."""
        return f"{self.variant.value}/{self.tying.value}/{self.values.value}"

    @property
    def linear(self) -> bool:
        """Whether predictions are linear in the queries (no softmax): effective weights exist."""
        return self.variant is not Variant.SOFTMAX


#: The study's grid: 3 variants × 3 tyings × 2 value forms.
GRID: tuple[Config, ...] = tuple(Config(v, t, val) for v in Variant for t in Tying for val in Values)

_KEYS = {Tying.SEPARATE: ("w_q", "w_k"), Tying.SHARED: ("w_qk",), Tying.SINGLE: ("w",)}


def _config(config) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config must be an olsjax.models.Config, got {type(config).__name__}")
    return config


def parameter_names(config: Config) -> tuple[str, ...]:
    """The keys of ``config``'s parameter dict."""
    config = _config(config)
    return _KEYS[config.tying] + (("w_v", "w_p") if config.values is Values.PROJECTED else ())


def _params(params, config: Config) -> dict:
    expected = set(parameter_names(config))
    if not isinstance(params, dict) or set(params) != expected:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params for {config.name} must be a dict with keys {sorted(expected)}, got {got}")
    return params


def init(key: jax.Array, config: Config, d: int, m: int, *, dtype=None) -> PyTree:
    """Random parameters ``N(0, 1/d)`` for inputs of width ``d`` and ``m`` target columns.

    **Arguments:** ``key``: a ``jax.random`` key; ``config``; ``d``, ``m``
    ``≥ 1``; ``dtype``: float32 or float64 (default: float64 in JAX's x64
    mode, float32 otherwise).

    **Returns:** a dict of ``(d, d)`` maps (and ``w_v`` ``(d, d)``, ``w_p``
    ``(d, m)`` with projected values).
    """
    config = _config(config)
    for name, value in (("d", d), ("m", m)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    names = parameter_names(config)
    keys = jax.random.split(key, len(names))
    shapes = {"w_p": (d, m)}
    return {
        name: jax.random.normal(k, shapes.get(name, (d, d)), dtype) / math.sqrt(d)
        for name, k in zip(names, keys)
    }


def whitener(config: Config, context: Data) -> Float[Array, "d d"] | None:
    """``L`` with ``L Lᵀ = Σ⁻¹`` of the context (ZCA or PCA) for the whitened variant, else ``None``."""
    if config.variant is not Variant.WHITENED:
        return None
    return construct_regression_attention(context, route=config.whitening.value, equilibrate=False).w_q


def _width(a, name: str, d: int) -> None:
    if jnp.ndim(a) != 2 or jnp.shape(a)[-1] != d:
        raise ValueError(f"{name} must have shape (rows, {d}) for these parameters, got {jnp.shape(a)}")


def _inputs(config: Config, queries, context, d: int):
    """Queries and context as the model sees them: whitened by the context's ``L`` for ``WHITENED``.

    **Raises:** ``ValueError`` unless both are ``(rows, d)`` for the parameters' width ``d``.
    """
    _width(queries, "queries", d)
    _width(context, "context", d)
    l = whitener(config, context)
    if l is None:
        return queries, context
    return mm(queries, l), mm(context, l)


def query_key(params: PyTree, config: Config) -> tuple[Float[Array, "d k"], Float[Array, "d k"]]:
    """``(W_Q, W_K)`` of the model (the same array twice when shared; ``(W, I)`` for a single ``W``)."""
    params = _params(params, _config(config))
    if config.tying is Tying.SEPARATE:
        return params["w_q"], params["w_k"]
    if config.tying is Tying.SHARED:
        return params["w_qk"], params["w_qk"]
    return params["w"], identity(params["w"])


def bilinear(params: PyTree, config: Config, context: Data) -> Float[Array, "d d"]:
    """``W_Q W_Kᵀ`` acting on raw inputs: ``L W_Q W_Kᵀ Lᵀ`` for the whitened variant (compare with ``Σ⁻¹``)."""
    w_q, w_k = query_key(params, config)
    _width(context, "context", w_q.shape[0])
    w = mm(w_q, mT(w_k))
    l = whitener(config, context)
    return w if l is None else mm(mm(l, w), mT(l))


def _values(params, config: Config, context, targets):
    return targets if config.values is Values.TARGETS else mm(context, params["w_v"])


def apply(
    params: PyTree,
    config: Config,
    queries: Data,
    context: Data,
    targets: Data,
) -> Float[Array, "q m"]:
    """Predictions at ``queries`` from the context ``(X, Y)``.

    ``A V`` (``· W_P`` with projected values), where ``A = softmax(QKᵀ/√k)``
    or ``QKᵀ/n``, ``Q = X* W_Q``, ``K = X W_K`` (inputs whitened first for
    ``WHITENED``) and ``V = Y`` or ``X W_V``.

    **Raises:** ``TypeError``/``ValueError`` as ``olsjax.linear_attention``
    for bad shapes or dtypes; ``ValueError`` for parameters that do not match
    ``config``.
    """
    w_q, w_k = query_key(params, config)
    q, x = _inputs(config, queries, context, w_q.shape[0])
    q, k, v = mm(q, w_q), mm(x, w_k), _values(params, config, x, targets)
    out = softmax_attention(q, k, v) if config.variant is Variant.SOFTMAX else linear_attention(q, k, v)
    return out if config.values is Values.TARGETS else mm(out, params["w_p"])


def _projected(params, config, queries, context):
    w_q, w_k = query_key(params, config)
    q, x = _inputs(config, queries, context, w_q.shape[0])
    return mm(q, w_q), mm(x, w_k)


def attention(
    params: PyTree, config: Config, queries: Data, context: Data
) -> Float[Array, "q n"]:
    """The attention matrix ``A`` (``softmax(QKᵀ/√k)``, rows summing to one, or ``QKᵀ/n``)."""
    q, k = _projected(params, config, queries, context)
    return softmax_attention_matrix(q, k) if config.variant is Variant.SOFTMAX else linear_attention_matrix(q, k)


def scores(
    params: PyTree, config: Config, queries: Data, context: Data
) -> Float[Array, "q n"]:
    """The scores before normalisation: ``QKᵀ/√k`` (softmax) or the raw ``QKᵀ``."""
    q, k = _projected(params, config, queries, context)
    return softmax_scores(q, k) if config.variant is Variant.SOFTMAX else linear_scores(q, k)


def value_targets(
    params: PyTree, config: Config, context: Data, targets: Data
) -> Float[Array, "n m"]:
    """What the attention weights average, mapped to outputs: ``Y``, or ``X W_V W_P`` (whitened ``X`` if so)."""
    params = _params(params, _config(config))
    if config.values is Values.TARGETS:
        return jnp.asarray(targets)
    _, x = _inputs(config, context, context, params["w_v"].shape[0])
    return mm(_values(params, config, x, targets), params["w_p"])


def effective_weights(
    params: PyTree, config: Config, context: Data, targets: Data
) -> Float[Array, "d m"]:
    """The coefficients ``β_eff = W Xᵀ V / n`` of a regression-like model: ``apply = X* β_eff`` exactly.

    ``W`` is ``bilinear`` (raw coordinates), ``V`` is ``value_targets``: with
    ``W = Σ⁻¹`` and ``V = Y`` this is OLS (T4).

    **Raises:** ``ValueError`` for the softmax variant, whose predictions are
    not linear in the queries.
    """
    if _config(config).variant is Variant.SOFTMAX:
        raise ValueError(f"{config.name} has no effective weights: softmax attention is not linear in the queries")
    v = value_targets(params, config, context, targets)
    x = jnp.asarray(context)
    return mm(bilinear(params, config, x), xty(x, v)) / x.shape[-2]


def constructed(
    config: Config, context: Data, targets: Data
) -> PyTree:
    """Parameters at the exact construction: OLS for the regression-like variants (T1, T4).

    ``W_Q = W_K = L`` (``L Lᵀ = Σ⁻¹`` of the inputs the model sees, by
    ``olsjax.construct_regression_attention``), ``W = Σ⁻¹`` for a single
    ``W``; with projected values ``W_V = L``, ``W_P = Lᵀ XᵀY/n`` from
    ``olsjax.construct_ols`` (one layer). The same parameters in a softmax
    model are only a starting point: no softmax model equals OLS (T11).
    """
    config = _config(config)
    _, x = _inputs(config, context, context, jnp.shape(context)[-1])
    l = construct_regression_attention(x, route="eigh", equilibrate=False).w_q
    params = {
        Tying.SEPARATE: {"w_q": l, "w_k": l},
        Tying.SHARED: {"w_qk": l},
        Tying.SINGLE: {"w": mm(l, mT(l))},
    }[config.tying]
    if config.values is Values.PROJECTED:
        theta = construct_ols(x, targets, route="eigh", refine=0, equilibrate=False)
        params = params | {"w_v": theta.w_v, "w_p": theta.w_p}
    return params
