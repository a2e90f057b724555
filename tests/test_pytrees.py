"""Parameter pytrees: array fields are leaves (``None`` biases are absent), structure is static.

Since 0.2 the parameters carry no diagnostics: nothing in their tree
structure depends on the route that built them, so ``jit(forward)`` compiles
once per shape whatever the route. Only ``refinements``, ``vector`` and
``RegressionAttention.intercept`` are static.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax
from olsjax._ranges import default_layers

from ._problems import WHITEN_ROUTES, targets, well_conditioned

LT_FIELDS = ("w_q", "w_k", "w_v", "w_ffn", "w_p", "b_q", "b_k", "b_v", "b_out", "w_r")
#: The leaves of a default construction: no intercept (biases None), two refinement layers (w_r).
LT_DEFAULT_LEAVES = ("w_q", "w_k", "w_v", "w_ffn", "w_p", "w_r")
RA_FIELDS = ("w_q", "w_k", "b_q", "b_k")


@pytest.fixture(scope="module")
def xy():
    return well_conditioned(40), targets(40)


@pytest.mark.parametrize("route", ("auto", *WHITEN_ROUTES))
def test_linear_transformer_leaves(route, xy):
    params = olsjax.construct_ols(*xy, route=route)
    assert isinstance(params, olsjax.LinearTransformer)
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == len(LT_DEFAULT_LEAVES)
    for leaf, name in zip(leaves, LT_DEFAULT_LEAVES):
        assert leaf is getattr(params, name)  # the leaves are the array fields, in field order
    for name in ("b_q", "b_k", "b_v", "b_out"):
        assert getattr(params, name) is None  # no intercept: zero biases are absent, not zeros
    # The default layers depend on the shape and dtype only (T13), not on the route.
    assert (params.refinements, params.vector) == (default_layers(*xy[0].shape, np.float64), False)
    assert not hasattr(params, "route")
    assert not any(isinstance(leaf, str) for leaf in leaves)


def test_intercept_fills_every_bias_leaf(xy):
    params = olsjax.construct_ols(*xy, intercept=True)
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == len(LT_FIELDS)
    for leaf, name in zip(leaves, LT_FIELDS):
        assert leaf is getattr(params, name)


@pytest.mark.parametrize("route", ("auto", *WHITEN_ROUTES))
def test_regression_attention_leaves(route):
    # An (8, 4) design: the shape test_inputs compiles this construction for anyway.
    x = np.concatenate([well_conditioned(41), well_conditioned(42)[:, :1]], axis=1)
    params = olsjax.construct_regression_attention(x, route=route)
    assert isinstance(params, olsjax.RegressionAttention)
    assert jax.tree_util.tree_leaves(params) == [params.w_q, params.w_k]
    assert params.b_q is None and params.b_k is None and params.intercept is False
    centred = olsjax.construct_regression_attention(x, route=route, intercept=True)
    leaves = jax.tree_util.tree_leaves(centred)
    assert len(leaves) == len(RA_FIELDS)
    for leaf, name in zip(leaves, RA_FIELDS):
        assert leaf is getattr(centred, name)
    assert centred.intercept is True  # a static bool, not a leaf


def test_tree_structure_does_not_depend_on_the_route(xy):
    # Every concrete route (and auto) gives the same treedef: the route is no longer aux data.
    structures = {
        jax.tree_util.tree_structure(olsjax.construct_ols(*xy, route=r)) for r in ("auto", *WHITEN_ROUTES)
    }
    assert len(structures) == 1
    ra = {
        jax.tree_util.tree_structure(olsjax.construct_regression_attention(xy[0], route=r))
        for r in ("auto", *WHITEN_ROUTES)
    }
    assert len(ra) == 1


def test_static_fields_are_in_the_treedef(xy):
    x, y = xy
    base = jax.tree_util.tree_structure(olsjax.construct_ols(x, y))
    # refinements, vector and the presence of biases each change the structure.
    assert jax.tree_util.tree_structure(olsjax.construct_ols(x, y, refine=1)) != base
    assert jax.tree_util.tree_structure(olsjax.construct_ols(x, y[:, 0])) != base
    assert jax.tree_util.tree_structure(olsjax.construct_ols(x, y, intercept=True)) != base
    z = jnp.zeros((3, 3))
    assert jax.tree_util.tree_structure(
        olsjax.RegressionAttention(w_q=z, w_k=z, intercept=True)
    ) != jax.tree_util.tree_structure(olsjax.RegressionAttention(w_q=z, w_k=z))


def test_tree_map_and_unflatten_keep_the_static_fields(xy):
    params = olsjax.construct_ols(*xy, route="cholesky", refine=1)
    doubled = jax.tree_util.tree_map(lambda leaf: 2 * leaf, params)
    assert (doubled.refinements, doubled.vector) == (1, False)
    assert doubled.b_q is None  # None stays None: it is not a leaf
    np.testing.assert_array_equal(doubled.w_p, 2 * np.asarray(params.w_p))
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.refinements == 1
    assert all(x is y for x, y in zip(jax.tree_util.tree_leaves(rebuilt), leaves))


def test_static_fields_survive_jit_as_python_values(xy):
    seen = []

    @jax.jit
    def head(params):
        seen.append((params.refinements, params.vector, params.b_q))  # Python values at trace time
        return params.w_p

    params = olsjax.construct_ols(*xy, route="zca")
    np.testing.assert_array_equal(head(params), params.w_p)
    assert seen == [(default_layers(*xy[0].shape, np.float64), False, None)]


def test_hand_built_parameters_are_keyword_only_and_frozen():
    z = jnp.zeros((3, 3))
    params = olsjax.RegressionAttention(w_q=z, w_k=z)
    assert params.b_q is None and params.b_k is None and params.intercept is False
    assert len(jax.tree_util.tree_leaves(params)) == 2
    with pytest.raises(TypeError):
        olsjax.RegressionAttention(z, z)  # type: ignore[misc]  # keyword-only
    with pytest.raises(TypeError):
        olsjax.LinearTransformer(z, z, z, z, z)  # type: ignore[misc]
    lt = olsjax.LinearTransformer(w_q=z, w_k=z, w_v=z, w_ffn=z, w_p=z)
    assert (lt.refinements, lt.vector, lt.w_r, lt.b_out) == (0, False, None, None)
    assert len(jax.tree_util.tree_leaves(lt)) == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.intercept = True  # type: ignore[misc]
