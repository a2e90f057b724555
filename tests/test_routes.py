"""Routes as objects: the registry, the facts each route carries, ``Info``, and ``Auto``.

The 0.2 promises checked here: every name in ``olsjax.ROUTES`` resolves
through ``route=`` exactly like its object; a route's facts
(``forms_gram``, ``pseudo_inverse``, ``whitens``) decide what it accepts and
how precisely it resolves rank; ``info=True`` reports the route that ran and
the numerical rank; parameters have one tree structure whatever the route
(eager or jitted), so ``jit(forward)`` compiles once; under ``jax.vmap``
``Auto`` stays *one* branch (a ``cond``, not a ``select_n`` over all three),
so its gradients are those of the branch that ran.
"""

from __future__ import annotations

import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import olsjax
from olsjax import testing
from olsjax._ranges import one_layer_limit
from olsjax._routes import CHOLESKY_KAPPA, kappa_limit

from ._problems import (
    BATCH,
    D,
    M,
    N,
    Q,
    SOLVE_ROUTES,
    WHITEN_ROUTES,
    assert_close,
    exact_low_rank,
    gaussian,
    j,
    rel_err,
    targets,
    well_conditioned,
)

ALL_NAMES = tuple(olsjax.ROUTES)
EPS64 = float(np.finfo(np.float64).eps)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- the registry ---------------------------------------------------------------------------


def test_registry_names_its_routes_and_the_concrete_ones():
    assert set(ALL_NAMES) == {"auto", *olsjax.ROUTE_NAMES}
    assert "auto" not in olsjax.ROUTE_NAMES
    for name, route in olsjax.ROUTES.items():
        assert isinstance(route, olsjax.Route)
        assert route.name == name
    # The public classes are the registry's classes.
    classes = {
        "auto": olsjax.Auto, "cholesky": olsjax.Cholesky, "cholqr2": olsjax.CholQR2, "qr": olsjax.QR,
        "svd": olsjax.SVD, "eigh": olsjax.Eigh, "zca": olsjax.ZCA, "lstsq": olsjax.JaxLstsq,
    }
    for name, cls in classes.items():
        assert type(olsjax.ROUTES[name]) is cls
        assert cls() == olsjax.ROUTES[name] and hash(cls()) == hash(olsjax.ROUTES[name])  # usable as a static arg
    assert olsjax.Auto.routes == (olsjax.Cholesky(), olsjax.CholQR2(), olsjax.SVD())


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_route_name_resolves_like_its_object(name):
    x, y = well_conditioned(60, batch=(BATCH,)), targets(60, batch=(BATCH,))
    by_name = olsjax.lstsq(x, y, route=name)
    by_object = olsjax.lstsq(x, y, route=type(olsjax.ROUTES[name])())
    # The same route, hence the same compiled program on the same data: bit for bit.
    np.testing.assert_array_equal(by_name, by_object)
    # κ = 2: every route, Gram ones included, is within ~u·κ²·n ≈ 1e-14 of numpy.
    for b in range(BATCH):
        assert_close(by_name[b], np.linalg.lstsq(x[b], y[b], rcond=None)[0], 1e-12)
    if olsjax.ROUTES[name].whitens:
        p_name = olsjax.construct_ols(x, y, route=name)
        p_object = olsjax.construct_ols(x, y, route=olsjax.ROUTES[name])
        for a, b in zip(jax.tree_util.tree_leaves(p_name), jax.tree_util.tree_leaves(p_object), strict=True):
            np.testing.assert_array_equal(a, b)
        ra_name = olsjax.construct_regression_attention(x, route=name)
        ra_object = olsjax.construct_regression_attention(x, route=olsjax.ROUTES[name])
        np.testing.assert_array_equal(ra_name.w_q, ra_object.w_q)


@pytest.mark.parametrize("bad", ["LU", "chol", "auto ", ""])
def test_a_bad_route_name_lists_every_name(bad):
    x, y = well_conditioned(0), targets(0)
    for call in (
        lambda: olsjax.lstsq(x, y, route=bad),
        lambda: olsjax.construct_ols(x, y, route=bad),
        lambda: olsjax.construct_regression_attention(x, route=bad),
        lambda: olsjax.hat_matrix(x, route=bad),
        lambda: olsjax.select_route(x, route=bad),
    ):
        with pytest.raises(ValueError, match=r"route must be a Route object or one of") as err:
            call()
        message = str(err.value)
        assert all(repr(name) in message for name in ALL_NAMES), message
        assert f"got {bad!r}" in message


# --- route facts ------------------------------------------------------------------------------

#: The facts as the 0.2 API documents them (``forms_gram``, ``pseudo_inverse``, ``whitens``).
DOCUMENTED = {
    # name: (forms_gram, pseudo_inverse, whitens)
    "auto": (True, True, True),
    "cholesky": (True, False, True),
    "cholqr2": (True, False, True),
    "qr": (False, False, True),
    "svd": (False, True, True),
    "eigh": (True, True, True),
    "zca": (True, True, True),
    "lstsq": (False, True, False),
}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_route_facts_are_the_documented_ones(name):
    r = olsjax.ROUTES[name]
    assert (r.forms_gram, r.pseudo_inverse, r.whitens) == DOCUMENTED[name]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_rcond_is_accepted_exactly_by_the_pseudo_inverting_routes(name):
    x, y = exact_low_rank(61), targets(61)  # (8, 4), rank 2
    route = olsjax.ROUTES[name]
    if route.pseudo_inverse:
        beta = olsjax.lstsq(x, y, route=name, rcond=1e-6)
        # Minimum-norm answer of an integer rank-2 design (s_1/s_2 small): ~u·κ² at worst.
        assert_close(beta, np.linalg.pinv(x) @ y, 1e-11)
    else:
        with pytest.raises(ValueError, match=rf"needs a route that pseudo-inverts.*{name!r} cannot"):
            olsjax.lstsq(x, y, route=name, rcond=1e-6)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_whitening_is_accepted_exactly_by_the_whitening_routes(name):
    x, y = well_conditioned(62), targets(62)
    if olsjax.ROUTES[name].whitens:
        params = olsjax.construct_ols(x, y, route=name, refine=0)
        l = np.asarray(params.w_q)
        # L Lᵀ = Σ⁻¹ with κ(Σ) = 4: ~u·κ(Σ)·d, 1e-12 is generous.
        assert_close(l @ l.T, np.linalg.inv(x.T @ x / N), 1e-12)
        olsjax.hat_matrix(x, route=name)
    else:
        for call in (
            lambda: olsjax.construct_ols(x, y, route=name),
            lambda: olsjax.construct_regression_attention(x, route=name),
            lambda: olsjax.hat_matrix(x, route=name),
        ):
            with pytest.raises(ValueError, match=rf"route {name!r} builds no whitening factor"):
                call()


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if olsjax.ROUTES[n].pseudo_inverse])
def test_rcond_zero_is_raised_to_what_the_route_resolves(name):
    # rcond = 0 asks to invert every singular value, but those of an exactly rank-2 design that
    # should be zero come out as rounding noise (~ε·s_max, or √ε·s_max through XᵀX). The route
    # floors rcond at its rank_tolerance, so the noise is cut and the answer is still X⁺Y.
    x, y = exact_low_rank(76), targets(76)
    beta, info = olsjax.lstsq(x, y, route=name, rcond=0.0, info=True)
    assert int(info.rank) == 2
    # Integer rank-2 design with small s_1/s_2: ~u·κ_r² even on Gram routes.
    assert_close(beta, np.linalg.pinv(x) @ y, 1e-11)


def test_forms_gram_decides_which_routes_resolve_kappa_1e10():
    # κ = 1e10 > u^{-1/2}: a route that forms XᵀX sees κ² = 1e20 > 1/u and must refuse
    # (rank tolerance √(d·ε) ≈ 3e-8 > 1/κ); one that factors X resolves it (max(n, d)·ε ≈ 7e-15).
    p = testing.make_problem(rng(63), 33, 5, kappa=1e10, noise=0.0)
    exact = testing.exact_lstsq(p.x, p.y)
    for name in SOLVE_ROUTES:
        route = olsjax.ROUTES[name]
        if route.forms_gram:
            with pytest.raises(ValueError, match="rank-deficient"):
                olsjax.lstsq(p.x, p.y, route=name, equilibrate=False)
        else:
            beta = olsjax.lstsq(p.x, p.y, route=name, equilibrate=False)
            # An exact fit (tan θ = 0): the documented bound c·u·κ^p with p = 1.
            testing.assert_within_bound(beta, exact, kappa=1e10, p=1, tan_theta=p.tan_theta)


@pytest.mark.parametrize("name", olsjax.ROUTE_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_tolerance_follows_forms_gram(name, dtype):
    route = olsjax.ROUTES[name]
    eps = float(np.finfo(dtype).eps)
    for n, d in ((100, 5), (3, 8)):
        tol = route.rank_tolerance(jnp.asarray(n, dtype), d, dtype)
        assert jnp.asarray(tol).dtype == dtype
        # Gram routes resolve singular values down to √(max(d, c)·ε), c = 200 the bound's constant
        # (c·u·κ² ≤ 1/2 there); the others to max(n, d)·ε (numpy's matrix_rank). Written out here;
        # equal up to the rounding of one float operation.
        expected = math.sqrt(max(d, 200) * eps) if route.forms_gram else max(n, d) * eps
        if name == "cholqr2":  # and no further than its proven limit (Yamamoto et al.)
            expected = max(expected, 1 / float(kappa_limit(n, d, dtype)))
        assert float(tol) == pytest.approx(expected, rel=4 * eps)


def test_kappa_limit_is_the_cholqr2_theorem():
    # Yamamoto et al. (2015), Thm 3.3: κ ≤ (24·u·(n·d + d(d+1)))^{-1/2}, u = ε/2.
    for n, d in ((33, 5), (100, 5), (1000, 20)):
        expected = (24 * (EPS64 / 2) * (n * d + d * (d + 1))) ** -0.5
        assert float(kappa_limit(n, d, np.float64)) == pytest.approx(expected, rel=1e-14)
    assert 1e6 < float(kappa_limit(33, 5, np.float64)) < 2e6  # "~1e6 at 33 x 5" (test_inputs)


def _estimate_index(x) -> int:
    """The index into ``Auto.routes`` that ``Auto.estimate`` returns for the raw (unscaled) ``x``.

    ``estimate`` reads the moments: the Gram matrix ``G = XᵀX`` (not ``X``), the real row
    count ``n``, no ridge and no column scale; its last output is the index.
    """
    xd = jnp.asarray(x)
    out = olsjax.Auto().estimate(xd.T @ xd, jnp.asarray(x.shape[-2], xd.dtype), None, None)
    return int(out[-1])


@pytest.mark.parametrize(
    ("kappa", "index"),
    # Either side of each threshold, by a factor 2-3 (κ(C) = κ(X) up to u·κ² relative):
    # CHOLESKY_KAPPA = 4 and kappa_limit(33, 5) ≈ 1.4e6.
    [(1.0, 0), (CHOLESKY_KAPPA / 2, 0), (CHOLESKY_KAPPA * 2, 1), (1e3, 1), (5e5, 1), (4e6, 2), (1e10, 2)],
)
def test_auto_estimate_thresholds(kappa, index):
    x = testing.make_design(rng(64), 33, 5, kappa=kappa)
    assert _estimate_index(x) == index
    assert olsjax.select_route(x, equilibrate=False) == olsjax.Auto.routes[index]


# --- Auto's choice and Info ---------------------------------------------------------------------


@pytest.mark.parametrize(("kappa", "name"), [(1.0, "cholesky"), (1e3, "cholqr2"), (1e10, "svd")])
def test_auto_picks_by_condition(kappa, name):
    p = testing.make_problem(rng(65), 100, 5, kappa=kappa, noise=0.0)
    assert olsjax.select_route(p.x) == olsjax.ROUTES[name]
    beta, info = olsjax.lstsq(p.x, p.y, info=True)
    assert info.route_name == name
    assert olsjax.construct_ols(p.x, p.y, info=True)[1].route_name == name
    if kappa <= one_layer_limit(5, np.float64):  # T4, a p = 2 form, refuses beyond (T13)
        assert olsjax.construct_regression_attention(p.x, info=True)[1].route_name == name
    # And the choice is accurate: within the bound of the route that ran (an exact fit).
    testing.assert_within_bound(
        beta, testing.exact_lstsq(p.x, p.y), kappa=kappa, p=testing.bound_power(name), tan_theta=p.tan_theta
    )


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("kappa", [1.0, 1e3])
def test_info_names_what_select_route_says(name, kappa):
    x = testing.make_design(rng(66), 33, 5, kappa=kappa)
    y = gaussian(66, (33, 2))
    expected = olsjax.select_route(x, route=name)
    assert expected.name in olsjax.ROUTE_NAMES  # always a concrete route
    if name != "auto":
        assert expected == olsjax.ROUTES[name]
    _, info = olsjax.lstsq(x, y, route=name, info=True)
    assert info.route_name == expected.name
    assert int(info.route) == olsjax.ROUTE_NAMES.index(expected.name)
    assert int(info.rank) == 5
    if olsjax.ROUTES[name].whitens:
        assert olsjax.construct_ols(x, y, route=name, info=True)[1].route_name == expected.name


@pytest.mark.parametrize("name", ("auto", *(r for r in SOLVE_ROUTES if olsjax.ROUTES[r].pseudo_inverse)))
def test_info_rank_of_a_rank_deficient_x_with_rcond(name):
    # A batch of an exactly rank-2 and an exactly rank-3 (8, 4) integer design.
    x = np.stack([exact_low_rank(67, r=2), exact_low_rank(68, r=3)])
    y = targets(67, batch=(BATCH,))
    assert [np.linalg.matrix_rank(a) for a in x] == [2, 3]
    assert olsjax.select_route(x, route=name, rcond=1e-6).name == ("svd" if name == "auto" else name)
    beta, info = olsjax.lstsq(x, y, route=name, rcond=1e-6, info=True)
    assert info.rank.shape == (BATCH,) and info.route.shape == ()
    np.testing.assert_array_equal(info.rank, [2, 3])
    assert info.route_name == ("svd" if name == "auto" else name)  # auto hands rcond to the SVD
    for b in range(BATCH):
        # Integer designs, small s_1/s_r: the minimum-norm answer to ~u·κ_r² even on Gram routes.
        assert_close(beta[b], np.linalg.pinv(x[b]) @ y[b], 1e-11)
    if olsjax.ROUTES[name].whitens:
        _, info = olsjax.construct_ols(x, y, route=name, rcond=1e-6, info=True)
        np.testing.assert_array_equal(info.rank, [2, 3])


def test_info_under_jit_is_data():
    x, y = well_conditioned(69), targets(69)
    beta, info = jax.jit(lambda a, b: olsjax.lstsq(a, b, route="qr", info=True))(x, y)
    assert isinstance(info, olsjax.Info)
    assert info.route_name == "qr" and int(info.rank) == D


# --- pytree structure and compiles ------------------------------------------------------------------


@pytest.mark.parametrize("name", ("auto", *WHITEN_ROUTES))
@pytest.mark.parametrize("intercept", [False, True])
def test_eager_and_jitted_constructions_have_the_same_tree_structure(name, intercept):
    x, y = well_conditioned(70), targets(70)
    for yy in (y, y[:, 0]):  # matrix and vector targets
        eager = olsjax.construct_ols(x, yy, route=name, intercept=intercept)
        jitted = jax.jit(lambda a, b: olsjax.construct_ols(a, b, route=name, intercept=intercept))(x, yy)
        assert jax.tree_util.tree_structure(eager) == jax.tree_util.tree_structure(jitted)
        for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted), strict=True):
            # The same core, traced once more inside a jit: a few ulps of κ = 2 data.
            assert_close(a, b, 1e-13)
    eager = olsjax.construct_regression_attention(x, route=name, intercept=intercept)
    jitted = jax.jit(lambda a: olsjax.construct_regression_attention(a, route=name, intercept=intercept))(x)
    assert jax.tree_util.tree_structure(eager) == jax.tree_util.tree_structure(jitted)


def test_jit_of_forward_compiles_once_for_every_route():
    # A shape no other test uses (n = 37, d = 9, q = 3): the first call compiles, the others must not.
    g = rng(71)
    x, y = g.standard_normal((37, 9)), g.standard_normal((37, 2))
    xs = g.standard_normal((3, 9))
    params = [olsjax.construct_ols(x, y, route=name) for name in ("auto", *WHITEN_ROUTES)]
    assert len({jax.tree_util.tree_structure(p) for p in params}) == 1
    expected = xs @ np.linalg.lstsq(x, y, rcond=None)[0]

    users_jit = jax.jit(olsjax.forward)
    before = olsjax._transformer._forward._cache_size()
    for p in params:
        # Random 37 x 9 Gaussian design, κ ≈ 3: every route's forward pass to ~u·κ²·n.
        assert_close(users_jit(p, xs, x), expected, 1e-12)
        assert_close(olsjax.forward(p, xs, x), expected, 1e-12)
    assert users_jit._cache_size() == 1
    assert olsjax._transformer._forward._cache_size() - before == 1


# --- Auto under vmap: one branch -----------------------------------------------------------------


def _equations(jaxpr):
    """Every equation of ``jaxpr``, recursing into sub-jaxprs (pjit bodies, cond branches)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    yield from _equations(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    yield from _equations(sub)


def _three_way(fn, *args) -> tuple[int, int, str]:
    """Three-branch ``cond``s (Auto's switch) and three-case ``select_n``s (a switch that ran every branch)."""
    closed = jax.make_jaxpr(fn)(*args)
    eqns = list(_equations(closed.jaxpr))
    conds = sum(1 for e in eqns if e.primitive.name == "cond" and len(e.params["branches"]) == 3)
    selects = sum(1 for e in eqns if e.primitive.name == "select_n" and len(e.invars) == 4)
    return conds, selects, str(closed)


def test_the_three_way_detector_sees_a_switch_that_became_a_select():
    # Control: under vmap, a lax.switch on a *batched* index runs every branch and picks with
    # select_n; the detector below must flag exactly that.
    def switch(i, v):
        return jax.lax.switch(i, (lambda: v, lambda: 2 * v, lambda: 3 * v))

    conds, selects, _ = _three_way(jax.vmap(switch), jnp.asarray([0, 2]), jnp.ones(2))
    assert (conds, selects) == (0, 1)
    conds, selects, text = _three_way(switch, jnp.asarray(1), jnp.ones(()))
    assert (conds, selects) == (1, 0) and "cond[" in text


def _mixed_batch(seed: int, kappas=(1.0, 1e3), n: int = 33, d: int = 5):
    g = rng(seed)
    x = np.stack([testing.make_design(g, n, d, kappa=k) for k in kappas])
    y = g.standard_normal((len(kappas), n, M))
    xs = g.standard_normal((len(kappas), Q, d)) / math.sqrt(d)
    return x, y, xs


def test_vmapped_auto_runs_one_branch_and_equals_the_stacked_call():
    x, y, xs = _mixed_batch(72)

    def fit_predict(a, b, q):
        return olsjax.forward(olsjax.construct_ols(a, b), q, a)

    conds, selects, text = _three_way(jax.vmap(fit_predict), x, y, xs)
    assert "cond[" in text
    assert conds == 1, "Auto's lax.switch is gone from the vmapped program"
    assert selects == 0, "Auto's three branches are combined by select_n: every branch runs"

    vmapped = np.asarray(jax.vmap(fit_predict)(x, y, xs))
    stacked = np.asarray(fit_predict(x, y, xs))  # one (B, n, d) call, rows padded to a bucket
    # Both are one route (the worst task, κ = 1e3, decides: CholeskyQR2, error ∝ κ) evaluated
    # twice with different blocking (the stacked call pads 33 rows to 40): each within
    # ~c·u·κ ≈ 2e-11 of the truth, measured 5e-14 apart.
    for b in range(BATCH):
        assert_close(vmapped[b], stacked[b], 1e-11)
    _, info = olsjax.construct_ols(x, y, info=True)
    assert info.route_name == "cholqr2"
    routes = jax.vmap(lambda a, b: olsjax.construct_ols(a, b, info=True)[1].route)(x, y)
    np.testing.assert_array_equal(routes, olsjax.ROUTE_NAMES.index("cholqr2"))  # one route, every task


def test_vmapped_auto_lstsq_and_regression_attention_stay_one_branch():
    x, y, xs = _mixed_batch(73)
    conds, selects, _ = _three_way(jax.vmap(lambda a, b: olsjax.lstsq(a, b)), x, y)
    assert (conds, selects) == (1, 0)
    conds, selects, _ = _three_way(jax.vmap(lambda a: olsjax.construct_regression_attention(a).w_q), x)
    assert (conds, selects) == (1, 0)


def test_grad_through_vmapped_auto_is_finite_on_a_mixed_batch():
    # A well-conditioned task next to one with κ = 1e6: Auto takes one route for both (the
    # worst decides), and only that branch is differentiated.
    x, y, _ = _mixed_batch(74, kappas=(1.0, 1e6))

    def loss(a):
        beta = jax.vmap(lambda xi, yi: olsjax.lstsq(xi, yi, route="auto"))(a, y)
        return jnp.sum(beta**2)

    grad = np.asarray(jax.grad(loss)(jnp.asarray(x)))
    assert grad.shape == x.shape
    assert np.all(np.isfinite(grad))
    ran = olsjax.select_route(x)
    assert ran.name != "cholesky"  # κ = 1e6 rules plain Cholesky out
    # The well-conditioned task's gradient is the analytic one: L = ‖β‖², W = (XᵀX)⁻¹·2β,
    # dL/dX = r Wᵀ − X W βᵀ with r = Y − Xβ (κ = 1: the backward pass of a ∝κ route is accurate
    # to ~c·u·n; 1e-10 leaves margin for the Gram product inside CholeskyQR2).
    a, b = x[0], y[0]
    beta = np.linalg.solve(a.T @ a, a.T @ b)
    w = np.linalg.solve(a.T @ a, 2 * beta)
    analytic = (b - a @ beta) @ w.T - a @ w @ beta.T
    assert_close(grad[0], analytic, 1e-10)
    # The ill-conditioned task: the same gradient as through the chosen route itself.
    alone = jax.grad(lambda xi: jnp.sum(olsjax.lstsq(xi, y[1], route=ran) ** 2))(jnp.asarray(x[1]))
    # Same route, same data; the batch is only a different blocking: the gradient's
    # sensitivity is ~κ² = 1e12 times u, so agreement to 1e-3 is what rounding allows.
    assert rel_err(grad[1], alone) < 1e-3


def test_hat_matrix_takes_a_route():
    x = well_conditioned(75)
    expected = x @ np.linalg.solve(x.T @ x, x.T)
    for name in ("auto", *WHITEN_ROUTES):
        # κ = 2: H = Z Zᵀ to ~u·κ²·n on every route.
        assert_close(olsjax.hat_matrix(x, route=name), expected, 1e-12)
    assert_close(olsjax.hat_matrix(j(x)), expected, 1e-12)  # default: the SVD
