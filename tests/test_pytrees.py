"""Parameter pytrees: array fields are leaves, ``route`` is static metadata naming the factor."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax

from ._problems import targets, well_conditioned

LT_FIELDS = ("w_q", "w_k", "w_v", "w_ffn", "w_p", "b_q", "b_k", "b_v", "b_out", "w_r")
RA_FIELDS = ("w_q", "w_k", "b_q", "b_k", "intercept")


@pytest.fixture(scope="module")
def xy():
    return well_conditioned(40), targets(40)


@pytest.mark.parametrize("factor", olsjax.FACTORS)
def test_linear_transformer_leaves_and_route(factor, xy):
    params = olsjax.construct_ols(*xy, factor=factor)
    assert isinstance(params, olsjax.LinearTransformer)
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == len(LT_FIELDS)
    for leaf, name in zip(leaves, LT_FIELDS):
        assert leaf is getattr(params, name)  # the leaves are the array fields, in field order
    assert params.route == factor
    assert not any(isinstance(leaf, str) for leaf in leaves)


@pytest.mark.parametrize("factor", olsjax.FACTORS)
def test_regression_attention_leaves_and_route(factor):
    # An (8, 4) design: the shape test_inputs compiles this construction for anyway.
    x = np.concatenate([well_conditioned(41), well_conditioned(42)[:, :1]], axis=1)
    params = olsjax.construct_regression_attention(x, factor=factor)
    assert isinstance(params, olsjax.RegressionAttention)
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == len(RA_FIELDS)
    for leaf, name in zip(leaves, RA_FIELDS):
        assert leaf is getattr(params, name)
    assert params.route == factor


def test_route_is_static_metadata_in_the_treedef(xy):
    a = olsjax.construct_ols(*xy, factor="qr")
    b = olsjax.construct_ols(*xy, factor="svd")
    # Same leaf shapes, different route: the tree structures must differ (route is aux data).
    assert [leaf.shape for leaf in jax.tree_util.tree_leaves(a)] == [
        leaf.shape for leaf in jax.tree_util.tree_leaves(b)
    ]
    assert jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b)
    assert "qr" in str(jax.tree_util.tree_structure(a))


def test_tree_map_and_unflatten_keep_the_route(xy):
    params = olsjax.construct_ols(*xy, factor="cholesky")
    doubled = jax.tree_util.tree_map(lambda leaf: 2 * leaf, params)
    assert doubled.route == "cholesky"
    np.testing.assert_array_equal(doubled.w_p, 2 * np.asarray(params.w_p))
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.route == "cholesky"
    assert all(x is y for x, y in zip(jax.tree_util.tree_leaves(rebuilt), leaves))


def test_route_survives_jit_as_a_static_value(xy):
    seen = []

    @jax.jit
    def route_and_head(params):
        seen.append(params.route)  # a Python string at trace time, not a tracer
        return params.w_p

    params = olsjax.construct_ols(*xy, factor="zca")
    np.testing.assert_array_equal(route_and_head(params), params.w_p)
    assert seen == ["zca"]


def test_hand_built_parameters_default_to_custom_route_and_are_frozen():
    z = jnp.zeros((3, 3))
    params = olsjax.RegressionAttention(z, z, jnp.zeros(3), jnp.zeros(3), jnp.zeros(()))
    assert params.route == "custom"
    assert len(jax.tree_util.tree_leaves(params)) == len(RA_FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.route = "qr"  # type: ignore[misc]
