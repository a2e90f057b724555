"""olsjax: ordinary least squares as a one-layer linear transformer, in JAX.

The library never changes JAX's global configuration: enable float64 yourself
(the ``jax_enable_x64`` option, or ``with jax.enable_x64(True):``).
"""

from ._attention import (
    linear_attention,
    linear_attention_matrix,
    linear_scores,
    softmax_attention,
    softmax_attention_matrix,
    softmax_scores,
)
from ._construct import construct_ols, construct_regression_attention
from ._linalg import AUTO_ROUTES, METHODS, condition_number, hat_matrix
from ._lstsq import lstsq
from ._transformer import (
    LinearTransformer,
    RegressionAttention,
    attention_matrix,
    effective_weights,
    forward,
    regression_attention,
)
from ._whiten import FACTORS, whiten

__version__ = "0.1.0"

__all__ = [
    "AUTO_ROUTES",
    "FACTORS",
    "METHODS",
    "LinearTransformer",
    "RegressionAttention",
    "attention_matrix",
    "condition_number",
    "construct_ols",
    "construct_regression_attention",
    "effective_weights",
    "forward",
    "hat_matrix",
    "linear_attention",
    "linear_attention_matrix",
    "linear_scores",
    "lstsq",
    "regression_attention",
    "softmax_attention",
    "softmax_attention_matrix",
    "softmax_scores",
    "whiten",
]
