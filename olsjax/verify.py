"""The theorem registry behind ``olsjax verify``: every claim, on a fixed seeded suite.

Each ``Claim`` measures one statement of THEOREMS.md for one route (or route
and form) on a ``Case`` (a seeded problem whose exact rational reference is
computed once) and returns a ``Measurement``: the quantity, the limit it must
respect and how. ``certify`` runs all claims across dtypes and reports, per
claim, route and dtype, the case closest to (or past) its limit. The property
tests in ``proofs/`` check the same statements on many more, randomly drawn,
problems; this is the quick certificate.

Callers must enable float64 (``jax.enable_x64``); the library never does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from . import testing
from ._attention import softmax_attention
from ._construct import construct_ols, construct_regression_attention
from ._routes import ROUTES
from ._transformer import attention_matrix, forward, regression_attention


@dataclasses.dataclass
class Case:
    """A seeded problem of the suite; exact references are computed on first use."""

    name: str
    problem: testing.Problem

    @functools.cached_property
    def fitted(self) -> np.ndarray:
        """Exact in-sample fitted values ``HY``."""
        p = self.problem
        return testing.exact_predict(p.x, p.y, p.x)

    @functools.cached_property
    def prediction(self) -> np.ndarray:
        """Exact out-of-sample prediction ``X*β`` (minimum-norm if ``X`` is deficient)."""
        p = self.problem
        return testing.exact_predict(p.x, p.y, p.queries)

    @functools.cached_property
    def ridge_prediction(self) -> np.ndarray:
        """Exact ridge prediction ``X*(XᵀX + λI)⁻¹XᵀY`` with ``λ = RIDGE``."""
        p = self.problem
        return testing.exact_predict(p.x, p.y, p.queries, ridge=RIDGE)

    @functools.cached_property
    def hat(self) -> np.ndarray:
        """Exact hat matrix ``H``."""
        return testing.exact_hat_matrix(self.problem.x)


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A measured value and the limit it must satisfy (``value ≤ limit``, or ``> limit`` if ``above``)."""

    value: float
    limit: float
    above: bool = False

    @property
    def passed(self) -> bool:
        return self.value > self.limit if self.above else self.value <= self.limit

    @property
    def margin(self) -> float:
        """How close to failing: ``value/limit`` for upper limits (larger is worse)."""
        if self.above:
            return -self.value
        return self.value / self.limit


def _bounded(actual, expected, *, kappa: float, p: int, dtype, tan_theta: float = 0.0):
    return Measurement(
        testing.relative_error(actual, expected),
        testing.error_bound(dtype, kappa, p, tan_theta=tan_theta),
    )


def _arrays(case: Case, dtype):
    p = case.problem
    return (jnp.asarray(p.x, dtype), jnp.asarray(p.y, dtype), jnp.asarray(p.queries, dtype))


#: The routes that build a whitening factor, from the registry (``"auto"`` chooses
#: among them): a new route joins every construction claim where it is registered.
WHITENING_ROUTES: tuple[str, ...] = tuple(
    r.name for r in ROUTES.values() if r.whitens and r.name != "auto"
)
#: Those that pseudo-invert (take ``rcond``): the rank-deficient claim T6.
PSEUDO_INVERSE_ROUTES: tuple[str, ...] = tuple(
    name for name in WHITENING_ROUTES if ROUTES[name].pseudo_inverse
)

# The forward pass forms (XL)ᵀ(XL)/n, a Gram matrix of whitened tokens, so every
# route's one-layer forward pass carries u·κ² (p = 2): its deviation from I (~u·κ) meets ‖X*L‖ ~ κ.
P_FORWARD = 2
RIDGE = 0.1  # relative to singular values in [1/κ, 1]: a visible but not dominant shrinkage


def _t1(case: Case, route: str, dtype) -> Measurement:
    x, y, _ = _arrays(case, dtype)
    out = forward(construct_ols(x, y, route=route, refine=0), x, x)
    pr = case.problem
    return _bounded(out, case.fitted, kappa=pr.kappa, p=P_FORWARD, dtype=dtype, tan_theta=pr.tan_theta)


def _t2(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    out = forward(construct_ols(x, y, route=route, refine=0), q, x)
    pr = case.problem
    return _bounded(out, case.prediction, kappa=pr.kappa, p=P_FORWARD, dtype=dtype, tan_theta=pr.tan_theta)


def _t3(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    params = construct_ols(x, y, route=route, refine=0)
    d = x.shape[-1]
    o = jnp.asarray(testing.random_orthonormal(np.random.default_rng(3), d, d), dtype)
    rotated = dataclasses.replace(
        params, w_q=params.w_q @ o, w_k=params.w_k @ o, w_v=params.w_v @ o, w_p=o.T @ params.w_p
    )
    pr = case.problem
    out = forward(rotated, q, x)
    return _bounded(out, case.prediction, kappa=pr.kappa, p=P_FORWARD, dtype=dtype, tan_theta=pr.tan_theta)


def _t4(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    out = regression_attention(construct_regression_attention(x, route=route), q, x, y)
    pr = case.problem
    return _bounded(out, case.prediction, kappa=pr.kappa, p=P_FORWARD, dtype=dtype, tan_theta=pr.tan_theta)


def _t4_hat(case: Case, route: str, dtype) -> Measurement:
    x, _, _ = _arrays(case, dtype)
    a = attention_matrix(construct_regression_attention(x, route=route), x, x)
    return _bounded(a, case.hat, kappa=case.problem.kappa, p=P_FORWARD, dtype=dtype)


def _t5(case: Case, route: str, dtype) -> Measurement:
    name, form = route.split("/")
    x, y, q = _arrays(case, dtype)
    if form == "paper":
        out = forward(construct_ols(x, y, route=name, ridge=RIDGE, refine=0), q, x)
    else:
        out = regression_attention(construct_regression_attention(x, route=name, ridge=RIDGE), q, x, y)
    pr = case.problem
    # κ(X) bounds the ridge condition number sqrt((s₁²+λ)/(s_d²+λ)) from above.
    return _bounded(out, case.ridge_prediction, kappa=pr.kappa, p=P_FORWARD, dtype=dtype, tan_theta=pr.tan_theta)


# Gram routes resolve s_i/s_max only down to ~sqrt(d·u) (6e-4 in float32, 3e-8 in
# float64); the suite's integer designs have nonzero s_i/s_max above 5e-3.
RCOND = {"float64": 1e-6, "float32": 2e-3}


def _t6(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    rcond = RCOND[np.dtype(dtype).name]
    out = forward(construct_ols(x, y, route=route, rcond=rcond, refine=0), q, x)
    pr = case.problem
    return _bounded(out, case.prediction, kappa=pr.kappa, p=P_FORWARD, dtype=dtype, tan_theta=pr.tan_theta)


def _t7(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    out = forward(construct_ols(x, y, route=route, intercept=True, refine=0), q, x)
    pr = case.problem
    ones = np.ones((pr.x.shape[0], 1))
    augmented = np.hstack([pr.x.astype(np.float64), ones])
    expected = testing.exact_predict(augmented, pr.y, np.hstack([pr.queries, ones[: len(pr.queries)]]))
    kappa = float(np.linalg.cond(augmented))  # the intercept changes the conditioning
    tan = testing.tan_theta(augmented, pr.y)
    return _bounded(out, expected, kappa=kappa, p=P_FORWARD, dtype=dtype, tan_theta=tan)


def _t12(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    out = forward(construct_ols(x, y, route=route), q, x)
    pr = case.problem
    return _bounded(out, case.prediction, kappa=pr.kappa, p=1, dtype=dtype, tan_theta=pr.tan_theta)


def _t12_hard(case: Case, route: str, dtype) -> Measurement:
    # Queries are I: the forward pass returns β. Equilibration is exact, so the p = 1
    # bound holds with the κ of the column-scaled design, for the scaled coefficients Dβ.
    x, y, q = _arrays(case, dtype)
    pr = case.problem
    d = testing.column_scale(pr.x)[:, None]
    out = d * np.asarray(forward(construct_ols(x, y), q, x))
    kappa = testing.equilibrated_condition_number(pr.x)
    return _bounded(out, d * case.prediction, kappa=kappa, p=1, dtype=dtype, tan_theta=pr.tan_theta)


def _t11_softmax(case: Case, route: str, dtype) -> Measurement:
    x, y, q = _arrays(case, dtype)
    rng = np.random.default_rng(11)
    d = x.shape[-1]
    w_q, w_k = (jnp.asarray(rng.standard_normal((d, d)), dtype) for _ in range(2))
    out = np.asarray(softmax_attention(q @ w_q, x @ w_k, y), np.float64)
    y64 = case.problem.y.astype(np.float64)
    lo, hi = y64.min(axis=0), y64.max(axis=0)
    excursion = np.maximum(out - hi, lo - out).max(axis=0) / (hi - lo)
    # Convex combinations stay inside up to rounding of the weights: u per key.
    return Measurement(float(max(excursion.max(), 0.0)), x.shape[-2] * testing.unit_roundoff(dtype))


def _t11_escape(case: Case, route: str, dtype) -> Measurement:
    x, y, _ = _arrays(case, dtype)
    beta = testing.exact_lstsq(case.problem.x, case.problem.y)
    y64 = case.problem.y.astype(np.float64)
    lo, hi = y64.min(axis=0), y64.max(axis=0)
    # A query along β, scaled so that x*ᵀβ lands twice as far out as the data reach.
    direction = beta[:, 0] / np.linalg.norm(beta[:, 0]) ** 2
    query = 2 * max(abs(lo[0]), abs(hi[0])) * direction[None, :]
    out = np.asarray(forward(construct_ols(x, y, route=route), jnp.asarray(query, dtype), x))[0, 0]
    return Measurement(float(max(out - hi[0], lo[0] - out) / (hi[0] - lo[0])), 0.0, above=True)


DTYPES = ("float64", "float32")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A statement of THEOREMS.md, the routes and dtypes it is checked on and its measurement."""

    id: str
    statement: str
    routes: tuple[str, ...]
    measure: Callable[[Case, str, type], Measurement]
    suite: str = "full_rank"
    dtypes: tuple[str, ...] = DTYPES


# T1–T7 check the paper's one-layer model (refine=0); T12 the refinement layers.
CLAIMS: tuple[Claim, ...] = (
    Claim("T1", "in-sample forward pass f(X; X) = HY (OLS fitted values)", WHITENING_ROUTES, _t1),
    Claim("T2", "out-of-sample forward pass f(X*; X) = X*β", WHITENING_ROUTES, _t2),
    Claim("T3", "rotated factor L·O gives the same forward pass", WHITENING_ROUTES, _t3),
    Claim("T4", "values-are-targets attention, W_Q W_Kᵀ = Σ⁻¹, predicts X*β", WHITENING_ROUTES, _t4),
    Claim("T4", "in-sample attention matrix X Σ⁻¹ Xᵀ / n = H", WHITENING_ROUTES, _t4_hat),
    Claim(
        "T5",
        f"ridge (λ={RIDGE}) in both forms predicts X*(XᵀX+λI)⁻¹XᵀY",
        tuple(f"{r}/{form}" for form in ("paper", "values") for r in WHITENING_ROUTES),
        _t5,
    ),
    Claim(
        "T6",
        "rank-deficient X with rcond: minimum-norm prediction X*X⁺Y",
        PSEUDO_INVERSE_ROUTES,
        _t6,
        suite="deficient",
    ),
    Claim("T7", "intercept by centring = OLS on [X, 1]", WHITENING_ROUTES, _t7),
    Claim(
        "T12",
        "refinement layers: forward pass f(X*; X) = X*β with error ∝ κ (p = 1)",
        # Routes whose solve is ∝ κ: the refinement layers make the forward pass as accurate.
        ("auto", "qr", "svd", "cholqr2"),
        _t12,
    ),
    Claim(
        "T12",
        "hard designs: default forward pass gives Dβ to the equilibrated p = 1 bound",
        ("auto",),
        _t12_hard,
        suite="hard",
        dtypes=("float64",),
    ),
    Claim("T11", "softmax attention output stays in [min Y, max Y]", ("softmax",), _t11_softmax),
    Claim("T11", "OLS (forward pass) leaves [min Y, max Y] on extrapolating queries", ("qr",), _t11_escape),
)

def _informative(problem: testing.Problem) -> bool:
    """Whether the equilibrated float64 bound says anything (≤ 1e-3) about a hard problem."""
    kappa = testing.equilibrated_condition_number(problem.x)
    return testing.error_bound(np.float64, kappa, 1, tan_theta=problem.tan_theta) <= 1e-3


def suite(kind: str, dtype) -> list[Case]:
    """The fixed, seeded cases of the certificate for ``kind`` (``full_rank``/``deficient``/``hard``)."""
    if kind == "hard":
        # float64 only; poly8/poly10 are left out where the bound is vacuous (docs/accuracy.md).
        return [Case(c.name, c.problem) for c in testing.hard_suite() if _informative(c.problem)]
    if kind == "deficient":
        rows = [((12, 5), 3, 1), ((4, 7), 2, 2)]
        cases = []
        for seed, ((n, d), r, m) in enumerate(rows):
            rng = np.random.default_rng(100 + seed)
            x = (rng.integers(-3, 4, (n, r)) @ rng.integers(-3, 4, (r, d))).astype(dtype)
            y = rng.standard_normal((n, m)).astype(dtype)
            s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
            s = s[s > s[0] * 1e-10]
            q = rng.standard_normal((5, d)).astype(dtype)
            cases.append(Case(f"rank {r} of {n}x{d}", testing.Problem(x, y, q, float(s[0] / s[-1]), testing.tan_theta(x, y))))
        return cases
    # float32 stays where the κ² bound is informative (c·u·κ² ≤ 1e-3).
    kappas = (1.0, 1e2, 1e4) if np.dtype(dtype) == np.float64 else (1.0, 10.0)
    return [
        Case(
            f"33x5, kappa={k:g}",
            testing.make_problem(np.random.default_rng(i), 33, 5, 2, kappa=k, noise=1e-2, dtype=dtype),
        )
        for i, k in enumerate(kappas)
    ]


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the certificate: the worst case of a claim on one route and dtype."""

    claim: str
    statement: str
    route: str
    dtype: str
    case: str
    value: float
    limit: float
    above: bool
    passed: bool


def _worst(claim: Claim, route: str, dtype: str, cases: Sequence[Case]) -> Row:
    results = [(claim.measure(case, route, np.dtype(dtype).type), case.name) for case in cases]
    failed = [r for r in results if not r[0].passed]
    m, name = failed[0] if failed else max(results, key=lambda r: r[0].margin)
    return Row(claim.id, claim.statement, route, dtype, name, m.value, m.limit, m.above, m.passed)


def jobs(claims: Iterable[Claim], dtypes: Iterable[str]) -> list[tuple[Claim, str, str]]:
    """Every (claim, route, dtype) the certificate checks, in order."""
    return [(c, r, dt) for dt in dtypes for c in claims for r in c.routes if dt in c.dtypes]


def certify(
    claims: Sequence[Claim] = CLAIMS,
    dtypes: Sequence[str] = DTYPES,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Row]:
    """Run every claim on every route and dtype; ``progress(i, total, label)`` after each."""
    todo = jobs(claims, dtypes)
    cases = {key: suite(*key) for key in {(c.suite, dt) for c, _, dt in todo}}
    rows = []
    for i, (claim, route, dt) in enumerate(todo, 1):
        rows.append(_worst(claim, route, dt, cases[claim.suite, dt]))
        if progress is not None:
            progress(i, len(todo), f"{claim.id} {route} {dt}")
    return rows
