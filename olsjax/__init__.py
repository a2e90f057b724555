"""olsjax: ordinary least squares as a one-layer linear transformer, in JAX.

The library never changes JAX's global configuration: enable float64 yourself
(the ``jax_enable_x64`` option, or ``with jax.enable_x64(True):``).
"""

from ._attention import (
    linear_attention,
    linear_attention_matrix,
    linear_scores,
    recurrent_linear_attention,
    softmax_attention,
    softmax_attention_matrix,
    softmax_scores,
)
from ._checks import Info, PrecisionWarning
from ._construct import construct_ols, construct_regression_attention
from ._gd import GDTransformer, construct_gd, in_context_tokens, predict_in_context
from ._lstsq import condition_number, hat_matrix, lstsq, select_route
from ._memory import hopfield_energy, hopfield_retrieve, rls
from ._routes import (
    QR,
    ROUTE_NAMES,
    ROUTES,
    SVD,
    ZCA,
    Auto,
    CholQR2,
    Cholesky,
    Eigh,
    JaxLstsq,
    Route,
)
from ._transformer import (
    LinearTransformer,
    RegressionAttention,
    attention_matrix,
    effective_weights,
    forward,
    regression_attention,
)

__version__ = "0.2.0"

__all__ = [
    "QR",
    "ROUTES",
    "ROUTE_NAMES",
    "SVD",
    "ZCA",
    "Auto",
    "CholQR2",
    "Cholesky",
    "Eigh",
    "GDTransformer",
    "Info",
    "JaxLstsq",
    "LinearTransformer",
    "PrecisionWarning",
    "RegressionAttention",
    "Route",
    "attention_matrix",
    "condition_number",
    "construct_gd",
    "construct_ols",
    "construct_regression_attention",
    "effective_weights",
    "forward",
    "hat_matrix",
    "hopfield_energy",
    "hopfield_retrieve",
    "in_context_tokens",
    "linear_attention",
    "linear_attention_matrix",
    "linear_scores",
    "lstsq",
    "predict_in_context",
    "recurrent_linear_attention",
    "regression_attention",
    "rls",
    "select_route",
    "softmax_attention",
    "softmax_attention_matrix",
    "softmax_scores",
]
