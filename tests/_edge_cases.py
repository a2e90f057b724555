"""The edge-case table of ``tests/test_edge_cases.py``: inputs, calls, exact references, expected outcomes.

Issue "No silent wrong answers: every public function either meets its bound or
refuses, on any input". Every case names one public call (a *function* below,
possibly a construction followed by the call that uses it), the inputs (a
fixed data set, cast, scaled, corrupted or re-shaped by *ops*), the options,
whether ``jax_enable_x64`` is on, whether the call runs under a caller's
``jax.jit``, and exactly one expected outcome:

- ``Refuse``: a ``ValueError``/``TypeError`` whose message names the argument
  at fault (or says ``rank-deficient``/``range``/``condition``);
- ``Bound``: a finite answer with ``relative_error ≤ c·u·(κ^p + κ²·tan θ)``
  (``testing.error_bound``) against an exact reference;
- ``NaNOut``: under ``jit`` only, an output with NaN in it (for ±inf inputs
  also ±inf: IEEE arithmetic carries an infinity through a product, and an
  infinite output is not a finite wrong answer);
- ``Routes``: ``select_route`` returns one of the concrete routes its
  documented rule allows.

Shapes come from a small fixed set (JIT compiles once per shape); data sets,
exact references and jitted wrappers are cached.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import olsjax
from olsjax import testing
from olsjax._routes import kappa_limit

# --- routes, read off the registry ------------------------------------------------------------

#: ``lstsq`` takes every route name and ``"auto"``.
SOLVE = ("auto", *olsjax.ROUTE_NAMES)
#: Constructions and ``hat_matrix`` need a whitening factor (``"lstsq"`` must be refused).
WHITEN = tuple(r for r in SOLVE if olsjax.ROUTES[r].whitens)
#: Routes that take ``rcond`` (minimum-norm answers).
PINV = tuple(r for r in SOLVE if olsjax.ROUTES[r].pseudo_inverse)
#: Whitening routes whose default (refined) forward pass meets p = 1 (T12).
T12_ROUTES = ("auto", "qr", "svd", "cholqr2")

#: Scale exponents: 2**515 ≈ 1.1e155, 2**997 ≈ 1.3e300 (float64); 2**66 ≈ 7.4e19, 2**116 ≈ 8.3e34 (float32).
#: Powers of two, so a scaled problem is exact and its answer is the unscaled one times a power of two.
SCALES = {
    "float64": {"1e+155": 515, "1e-155": -515, "1e+300": 997, "1e-300": -997},
    # Not 1e-35: entries of the scaled data would be subnormal, which XLA flushes to zero (README "Scale").
    "float32": {"1e+20": 66, "1e-20": -66, "1e+35": 116, "1e-30": -100},
}
KAPPAS = {
    "float64": (1.0, 1e3, 1e6, 1e9, 1e12, 1e15),
    "float32": (1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e7),
}
#: A case is classified "bound" or "refuse" only when κ is this factor away from the threshold
#: (rank tolerance or proven limit) that separates them; closer, the route's own estimate of κ
#: may fall on either side, and no case is generated.
MARGIN = 3.0
#: Relative cutoff for the minimum-norm cases: far above rounding (1e-16), far below the data (1e-1).
RCOND = 1e-10

BAD_DTYPES = ("int32", "int64", "bool", "float16", "bfloat16", "complex128", "object", "str")


def word(name: str) -> str:
    """A regex naming ``name`` as a word (single letters like ``q`` must not match inside words)."""
    return rf"\b{name}\b"


def both(a: str, b: str) -> str:
    """A regex requiring both names, in either order."""
    return rf"(?s)(\b{a}\b.*\b{b}\b|\b{b}\b.*\b{a}\b)"


RANK = "rank-deficient|range|condition"


# --- expected outcomes --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Refuse:
    exc: type
    match: str

    def __str__(self):
        names = "/".join(e.__name__ for e in (self.exc if isinstance(self.exc, tuple) else (self.exc,)))
        return f"{names} matching {self.match!r}"


@dataclasses.dataclass(frozen=True)
class Bound:
    """Finite, within ``error_bound(dtype, κ, p, tan_theta)`` of the reference; ``exp2``: the answer is the
    reference times ``2**exp2`` (exactly scaled problems); ``dtype``: whose ``u`` (None: the compute dtype)."""

    p: int
    exp2: int = 0
    dtype: str | None = None

    def __str__(self):
        return f"finite answer within the p = {self.p} bound"


@dataclasses.dataclass(frozen=True)
class NaNOut:
    allow_inf: bool = False

    def __str__(self):
        return "output containing NaN" + (" (or ±inf)" if self.allow_inf else "")


@dataclasses.dataclass(frozen=True)
class Routes:
    names: tuple[str, ...]

    def __str__(self):
        return f"select_route in {self.names}"


@dataclasses.dataclass(frozen=True)
class Traced:
    """An option value passed as an argument of the caller's ``jit`` (a tracer), not a constant."""

    value: Any


# --- the case ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    func: str
    data: str
    expect: Any
    route: str | None = None
    opts: tuple = ()
    ops: tuple = ()
    dtype: str = "float64"
    x64: bool = True
    jit: bool = False
    warn: bool = False

    @property
    def compute_dtype(self) -> str:
        if self.dtype in ("float16", "bfloat16"):
            return self.dtype
        return "float64" if self.x64 and self.dtype == "float64" else "float32"


#: Which arguments each function takes (after the construction, for the two-step calls).
ARGS = {
    "lstsq": ("X", "Y"),
    "forward": ("X", "Y", "queries", "context"),
    "regression_attention": ("X", "queries", "context", "targets"),
    "effective_weights": ("X", "context", "targets"),
    "attention_matrix": ("X", "queries", "context"),
    "hat_matrix": ("X",),
    "condition_number": ("X",),
    "select_route": ("X",),
    "linear_attention": ("q", "k", "v"),
    "softmax_attention": ("q", "k", "v"),
    "linear_attention_matrix": ("q", "k"),
    "softmax_attention_matrix": ("q", "k"),
}
ATTENTION = ("linear_attention", "softmax_attention", "linear_attention_matrix", "softmax_attention_matrix")
ROUTED = ("lstsq", "forward", "regression_attention", "effective_weights", "attention_matrix", "hat_matrix",
          "select_route")
#: Functions whose construction takes ``ridge``/``rcond``/``route`` (the option-checking entry points).
OPTIONED = ("lstsq", "forward", "regression_attention", "hat_matrix", "select_route")


# --- data ---------------------------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@functools.lru_cache(maxsize=None)
def base(key: str) -> dict[str, np.ndarray]:
    """The float64 data set ``key`` (never mutated: callers copy)."""
    if key in ("main", "vec"):
        p = testing.make_problem(_rng(1), 16, 3, 2, kappa=10.0, noise=1e-2)
        out = {"X": p.x, "Y": p.y, "queries": p.queries}
        if key == "vec":
            out["Y"] = p.y[:, 0].copy()
        return out
    if key.startswith("kappa"):
        # noise = 0: Y = fl(X B), tan θ ~ u, so the bound is c·u·κ^p up to κ ~ 1/u.
        p = testing.make_problem(_rng(2), 16, 3, 2, kappa=float(key[5:]), noise=0.0)
        return {"X": p.x, "Y": p.y, "queries": p.queries}
    if key in ("const", "const7"):
        # A column of 0.1s (n = 16, or n = 7 as in the issue), d = 3: with intercept=True it is zero
        # after centring, up to the rounding of the mean (n · 0.1 is not exact in binary), which
        # equilibration must not blow up.
        n = 16 if key == "const" else 7
        g = _rng(3)
        x = np.column_stack([g.standard_normal((n, 2)), np.full(n, 0.1)])
        y = x @ g.standard_normal((3, 2)) + 0.5 + 1e-2 * g.standard_normal((n, 2))
        q = np.column_stack([g.standard_normal((5, 2)), np.full(5, 0.1)])  # in the row space of [1, X]
        return {"X": x, "Y": y, "queries": q}
    if key == "dup":
        # The main design's first two columns and the first again: 16 × 3 (the main compile), rank 2.
        m = base("main")
        return {"X": np.column_stack([m["X"][:, :2], m["X"][:, 0]]), "Y": m["Y"], "queries": m["queries"]}
    if key in ("main4", "short"):
        p = testing.make_problem(_rng(5), 16, 4, 2, kappa=10.0, noise=1e-2)
        out = {"X": p.x, "Y": p.y, "queries": p.queries}
        if key == "short":  # lstsq(X[:3], Y[:3], ridge=0.5): n < d
            out = {"X": p.x[:3].copy(), "Y": p.y[:3].copy(), "queries": p.queries}
        return out
    if key == "wide":
        g = _rng(6)
        return {"X": g.standard_normal((3, 5)), "Y": g.standard_normal((3, 2)),
                "queries": g.standard_normal((5, 5))}
    if key == "batch":
        g = _rng(7)
        xs = np.stack([testing.make_design(g, 16, 3, 10.0) for _ in range(2)])
        return {"X": xs, "Y": g.standard_normal((2, 16, 2)), "queries": g.standard_normal((2, 5, 3))}
    if key == "attn":
        g = _rng(8)
        return {"q": g.standard_normal((5, 3)), "k": g.standard_normal((16, 3)), "v": g.standard_normal((16, 2))}
    if key == "attn_causal":
        g = _rng(9)
        return {"q": g.standard_normal((16, 3)), "k": g.standard_normal((16, 3)), "v": g.standard_normal((16, 2))}
    raise KeyError(key)


def cast(a: np.ndarray, dtype: str) -> Any:
    if dtype == "list":
        return a.tolist()
    if dtype == "object":
        return a.astype(object)
    if dtype == "str":
        return a.astype(str)
    if dtype == "bfloat16":
        return a.astype(jnp.bfloat16)
    return a.astype(dtype)


def apply_ops(case: Case, *, ref: bool = False) -> dict[str, Any]:
    """The call's arguments: the data set in the case's dtype, after the case's ops.

    ``ref=True``: the data the *reference* is computed from (the case's dtype only for
    dtypes that are computed as they are: float64 input under x64 off keeps float64).
    ``context``/``targets`` are ``X``/``Y`` unless an op sets them.
    """
    data = base(case.data)
    dtype = case.dtype
    if ref and dtype not in ("float32", "float16", "bfloat16"):
        dtype = "float64"
    elif not ref and dtype not in ("float64", "float32", "float16", "bfloat16"):
        dtype = "float64"  # bad dtypes are applied by a "cast" op to one argument only
    a = {k: cast(v, dtype) for k, v in data.items()}
    if "X" in a:
        a.setdefault("context", None)
        a.setdefault("targets", None)
    for op in case.ops:
        kind, name, *rest = op
        if kind == "scale":
            names = {"X": ("X", "queries"), "Y": ("Y",)}.get(name, (name,))
            for n in names:
                a[n] = np.ldexp(a[n], rest[0]).astype(a[n].dtype)
        elif ref:
            continue  # NaN, casts and shapes never reach a reference
        elif kind in ("nan", "inf"):
            src = a[name] if a.get(name) is not None else a[{"context": "X", "targets": "Y"}[name]]
            bad = np.array(src, copy=True)
            bad[(1,) * bad.ndim] = np.nan if kind == "nan" else np.inf
            a[name] = bad
        elif kind == "cast":
            src = a[name] if a.get(name) is not None else a[{"context": "X", "targets": "Y"}[name]]
            a[name] = cast(np.asarray(src, np.float64) if rest[0] in ("list", "object", "str") else src, rest[0])
        elif kind == "set":  # a new array of shape rest[0] (standard normal, seeded by the shape)
            shape = rest[0]
            fill = _rng(sum(shape) + 7 * len(shape)).standard_normal(shape)
            a[name] = fill.astype(rest[1] if len(rest) > 1 else dtype)
        else:
            raise ValueError(op)
    if "X" in a:
        if a["context"] is None:
            a["context"] = a["X"]
        if a["targets"] is None:
            a["targets"] = a["Y"]
    return a


# --- calls --------------------------------------------------------------------------------------


def _poison(params):
    leaf = params.w_p if isinstance(params, olsjax.LinearTransformer) else params.w_q
    bad = leaf.at[(0,) * leaf.ndim].set(jnp.nan)
    field = "w_p" if isinstance(params, olsjax.LinearTransformer) else "w_q"
    return dataclasses.replace(params, **{field: bad})


def call(func: str, a: dict[str, Any], route: str | None, opts: dict[str, Any]):
    """The public call of ``func`` on arguments ``a`` (``route`` and ``opts`` go to the construction)."""
    opts = dict(opts)
    nan_params = opts.pop("nan_params", False)
    fwd = {k: opts.pop(k) for k in ("causal", "scale") if k in opts}
    r = {} if route is None else {"route": route}
    if func == "lstsq":
        return olsjax.lstsq(a["X"], a["Y"], **r, **opts)
    if func == "forward":
        params = olsjax.construct_ols(a["X"], a["Y"], **r, **opts)
        if nan_params:
            params = _poison(params)
        return olsjax.forward(params, a["queries"], a["context"])
    if func in ("regression_attention", "effective_weights", "attention_matrix"):
        params = olsjax.construct_regression_attention(a["X"], **r, **opts)
        if nan_params:
            params = _poison(params)
        if func == "regression_attention":
            return olsjax.regression_attention(params, a["queries"], a["context"], a["targets"])
        if func == "effective_weights":
            return olsjax.effective_weights(params, a["context"], a["targets"])
        return olsjax.attention_matrix(params, a["queries"], a["context"])
    if func == "hat_matrix":
        return olsjax.hat_matrix(a["X"], **r, **opts)
    if func == "condition_number":
        return olsjax.condition_number(a["X"])
    if func == "select_route":
        return olsjax.select_route(a["X"], **r, **opts)
    fn = getattr(olsjax, func)
    args = (a["q"], a["k"], a["v"]) if func in ("linear_attention", "softmax_attention") else (a["q"], a["k"])
    return fn(*args, **fwd)


@functools.lru_cache(maxsize=None)
def jitted(func: str, route: str | None, opts: tuple, names: tuple[str, ...], traced: tuple[str, ...]):
    """``jax.jit`` of the public call, cached so that one wrapper compiles once per shape and dtype."""
    static = {k: v for k, v in opts if k not in traced}

    def run(*args):
        a = dict(zip(names, args[: len(names)]))
        return call(func, a, route, {**static, **dict(zip(traced, args[len(names):]))})

    return jax.jit(run)


def execute(case: Case):
    """Build the inputs (inside the case's x64 setting) and make the call, eagerly or under ``jit``."""
    a = apply_ops(case)
    if case.func in ATTENTION:  # annotated jax.Array: pass device arrays unless the case is about the type
        a = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) and v.dtype.kind not in "OUS" else v)
             for k, v in a.items()}
    opts = dict(case.opts)
    if not case.jit:
        return call(case.func, a, case.route, {k: (v.value if isinstance(v, Traced) else v) for k, v in opts.items()})
    names = ARGS[case.func]
    traced = tuple(k for k, v in case.opts if isinstance(v, Traced))
    fn = jitted(case.func, case.route, tuple((k, v) for k, v in case.opts if not isinstance(v, Traced))
                + tuple((k, None) for k in traced), names, traced)
    return fn(*(a[n] for n in names), *(opts[k].value for k in traced))


# --- exact references ------------------------------------------------------------------------


def _fr(a) -> np.ndarray:
    return np.vectorize(Fraction, otypes=[object])(np.asarray(a, np.float64))


def _float(a: np.ndarray) -> np.ndarray:
    return np.vectorize(float, otypes=[np.float64])(a)


def _augment(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x])


def _eff_kappa(x: np.ndarray, cut: float) -> float:
    s = np.linalg.svd(np.asarray(x, np.float64), compute_uv=False)
    kept = s[s > cut * s[0]]
    return float(kept[0] / kept[-1])


def _ridge_kappa(x: np.ndarray, ridge: float) -> float:
    s = np.linalg.svd(np.asarray(x, np.float64), compute_uv=False)
    s = np.concatenate([s, np.zeros(x.shape[1] - len(s))])
    return float(math.sqrt((s[0] ** 2 + ridge) / (s[-1] ** 2 + ridge)))


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0)


@dataclasses.dataclass(frozen=True)
class Reference:
    expected: np.ndarray
    kappa: float
    tan_theta: float = 0.0
    #: Multiply rows of actual and expected by this (``D``: equilibrated coefficients ``Dβ``).
    rows: np.ndarray | None = None
    routes: tuple[str, ...] = ()
    #: Computed from the scaled data itself (the answer is then compared as it is, no ``exp2``).
    scaled: bool = False


def _opts(case: Case) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Traced) else v) for k, v in case.opts}


def _exact_scaling(case: Case, dtype: str) -> bool:
    """Whether every scale op of the case is exact on the data (no entry pushed into the subnormals)."""
    data = base(case.data)
    for kind, name, *rest in case.ops:
        if kind != "scale":
            continue
        for n in {"X": ("X", "queries"), "Y": ("Y",)}.get(name, (name,)):
            a = cast(data[n], dtype)
            s = np.ldexp(a, rest[0]).astype(a.dtype)
            if not np.array_equal(np.ldexp(s, -rest[0]).astype(a.dtype), a):
                return False
    return True


def reference(case: Case) -> Reference:
    """The exact answer, κ and tan θ of the case's problem (cached).

    Scaled data: the unscaled reference times ``2**exp2`` when the scaling is exact (κ, tan θ and
    the answer's digits are scale-invariant); otherwise, and for softmax with ``q`` scaled alone
    (not homogeneous), the reference of the scaled data itself (κ still from the unscaled data).
    """
    dtype = case.dtype if case.dtype in ("float32", "float16", "bfloat16") else "float64"
    scale_ops = tuple(op for op in case.ops if op[0] == "scale")
    own = scale_ops and (not _exact_scaling(case, dtype) or (
        case.func.startswith("softmax") and not any(op[1] == "k" for op in scale_ops)
        and any(op[1] == "q" for op in scale_ops)))
    o = _opts(case)
    return _reference(case.func, case.data, dtype, case.route, o.get("ridge", 0.0), o.get("rcond"),
                      o.get("intercept", False), o.get("causal", False), scale_ops if own else (),
                      case.compute_dtype)


@functools.lru_cache(maxsize=None)
def _reference(func, data, dtype, route, ridge, rcond, intercept, causal, ops, compute) -> Reference:
    if ops:
        ref = _reference(func, data, dtype, route, ridge, rcond, intercept, causal, (), compute)
        a = apply_ops(Case("ref", func, data, None, dtype=dtype, ops=ops), ref=True)
        expected = _answer(func, a, float(ridge or 0.0), intercept, causal)
        return dataclasses.replace(ref, expected=expected, scaled=True)
    a = apply_ops(Case("ref", func, data, None, dtype=dtype), ref=True)
    if func in ATTENTION:
        return Reference(_answer(func, a, 0.0, False, causal), _attention_kappa(func, a))
    x = np.asarray(a["X"], np.float64)
    y = np.asarray(a["Y"], np.float64)
    ridge = float(ridge or 0.0)
    equilibrated = ridge == 0 and rcond is None
    kx = _centred(x) if intercept else x
    if ridge:
        kappa = _ridge_kappa(kx, ridge)
    elif rcond is not None:  # exactly rank-deficient data: the kept singular values are far from the cut
        kappa = _eff_kappa(kx, max(rcond, 1e-13))
    else:
        kappa = max(float(np.linalg.cond(kx)), testing.equilibrated_condition_number(kx))
    if intercept:  # README (ranges): centring loses max|x_j| / max|x_j − x̄_j| digits
        kappa *= centring_loss(x)
    tan = testing.tan_theta(_augment(x) if intercept else x, y.reshape(len(x), -1))
    if ridge and func == "lstsq" and route in ("qr", "lstsq"):
        # These routes solve ridge as plain least squares on [X; √λI] (README): their bound is that
        # problem's, whose residual term tan θ grows like √λ/‖X‖ (1e150 at λ = 1e300).
        root, y2 = np.sqrt(ridge) * np.eye(x.shape[1]), y.reshape(len(x), -1)
        tan = testing.tan_theta(np.vstack([x, root]), np.vstack([y2, np.zeros((x.shape[1], y2.shape[1]))]))
    expected = _answer(func, a, ridge, intercept, causal)
    if func == "select_route":
        return Reference(expected, kappa, routes=select_rule(x, route, rcond, compute))
    if func == "condition_number":
        return Reference(expected, float(np.linalg.cond(x)))
    if func in ("hat_matrix", "attention_matrix"):
        return Reference(expected, kappa)
    if func in ("lstsq", "effective_weights") and equilibrated:
        # THEOREMS T12: the equilibrated bound is for Dβ, with κ(XD⁻¹)
        return Reference(expected, testing.equilibrated_condition_number(x), tan, rows=testing.column_scale(x))
    return Reference(expected, kappa, tan)


def centring_loss(x: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    centred = np.abs(x - x.mean(axis=0)).max(axis=0)
    return float(np.max(np.abs(x).max(axis=0) / np.where(centred > 0, centred, np.inf)))


def _answer(func, a, ridge, intercept, causal) -> np.ndarray:
    """The exact (rational) answer of ``func`` on the data ``a`` (float64 numpy for softmax)."""
    if func in ATTENTION:
        return _attention_answer(func, a, causal)
    x = np.asarray(a["X"], np.float64)
    if func == "select_route":
        return np.zeros(0)
    if func == "condition_number":
        return np.asarray(np.linalg.cond(x))
    if func == "hat_matrix":
        return testing.exact_hat_matrix(x, ridge=ridge)
    q = np.asarray(a["queries"], np.float64)
    if func == "attention_matrix":
        return testing.exact_predict(x, np.eye(len(x)), q, ridge=ridge)
    y = np.asarray(a["Y"], np.float64)
    if func in ("lstsq", "effective_weights"):
        return testing.exact_lstsq(x, y, ridge=ridge)
    if intercept:
        return testing.exact_predict(_augment(x), y, _augment(q), ridge=ridge)
    return testing.exact_predict(x, y, q, ridge=ridge)


def _attention_answer(func, a, causal) -> np.ndarray:
    """Exact (rational) linear attention; float64 numpy softmax (no closed form)."""
    q, k = (np.asarray(a[n], np.float64) for n in ("q", "k"))
    n = len(k)
    if func.startswith("linear"):
        scores = _fr(q) @ _fr(k).T
        if causal:
            counts = np.arange(1, len(q) + 1)[:, None]
            mat = np.where(np.tril(np.ones((len(q), n), bool)), scores, Fraction(0)) / counts
        else:
            mat = scores / n
        if func == "linear_attention_matrix":
            return _float(mat)
        return _float(mat @ _fr(np.asarray(a["v"], np.float64)))
    scores = (q @ k.T) * q.shape[-1] ** -0.5
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape, bool)), scores, -np.inf)
    w = np.exp(scores - scores.max(axis=-1, keepdims=True))
    mat = w / w.sum(axis=-1, keepdims=True)
    if func == "softmax_attention_matrix":
        return mat
    return mat @ np.asarray(a["v"], np.float64)


def _attention_kappa(func, a) -> float:
    """Condition of the product (normwise): ``‖q‖‖k‖‖v‖/(n‖out‖)``;
    softmax: ``1 + s·max‖q_i‖·max‖k_j‖``
    (the absolute error of a score is relative in ``exp``) times ``‖A‖‖V‖/‖out‖``."""
    q, k = (np.asarray(a[n], np.float64) for n in ("q", "k"))
    n = len(k)
    out = _attention_answer(func, a, False)
    if func == "linear_attention_matrix":
        return max(1.0, float(np.linalg.norm(q) * np.linalg.norm(k) / (n * np.linalg.norm(out))))
    if func == "linear_attention":
        v = np.asarray(a["v"], np.float64)
        return max(1.0, float(np.linalg.norm(q) * np.linalg.norm(k) * np.linalg.norm(v) / (n * np.linalg.norm(out))))
    kappa = 1.0 + q.shape[-1] ** -0.5 * np.linalg.norm(q, axis=-1).max() * np.linalg.norm(k, axis=-1).max()
    if func == "softmax_attention_matrix":
        return float(kappa)
    mat = _attention_answer("softmax_attention_matrix", a, False)
    v = np.asarray(a["v"], np.float64)
    return float(kappa * np.linalg.norm(mat) * np.linalg.norm(v) / np.linalg.norm(out))


def select_rule(x: np.ndarray, route: str | None, rcond, dtype: str) -> tuple[str, ...]:
    """The routes ``select_route`` may return: ``Auto``'s documented rule on ``κ(XD⁻¹)`` (README, routes).

    Cholesky at ``κ ≤ 4``, CholeskyQR2 below its proven limit, the SVD beyond (or with ``rcond``);
    within a factor 1.5 of a threshold either neighbour.
    """
    if route not in (None, "auto"):
        return (route,)
    if rcond is not None:
        return ("svd",)
    n, d = x.shape
    kappa = testing.equilibrated_condition_number(x)
    limit = float(kappa_limit(n, d, np.dtype(dtype)))
    out = []
    if kappa <= 4 * 1.5:
        out.append("cholesky")
    if 4 / 1.5 <= kappa <= limit * 1.5:
        out.append("cholqr2")
    if kappa >= limit / 1.5:
        out.append("svd")
    return tuple(out)


# --- classification by κ ---------------------------------------------------------------------


def resolution(func: str, route: str, n: int, d: int, dtype: str, opts: dict[str, Any]) -> float:
    """Largest ``κ(XD⁻¹)`` a call answers within its bound; beyond it the call must refuse.

    README "Accuracy, honestly" (ranges, T13): ``lstsq``/``hat_matrix`` and the default forward pass
    accept the route's whole range — routes that never form ``XᵀX``: the rank floor
    ``1/(max(n, d)·ε)``; Gram routes ``(d·ε)^{-1/2}``; CholeskyQR2 its proven limit (Yamamoto et
    al.); ``"auto"`` the SVD's floor. ``p = 2`` forms — ``refine=0``, values-are-targets (T4) —
    ``(d·ε)^{-1/2}``, as do the Gram routes anywhere.
    """
    eps = float(np.finfo(dtype).eps)
    gram = 1 / math.sqrt(d * eps)
    if func in ("regression_attention", "effective_weights", "attention_matrix") or (
            func == "forward" and opts.get("refine") == 0):
        return gram
    if route in ("auto", "qr", "svd", "lstsq"):
        return 1 / (max(n, d) * eps)
    if route == "cholqr2":
        return min(gram, float(kappa_limit(n, d, np.dtype(dtype))))
    return gram


def kappa_verdict(func: str, route: str, x: np.ndarray, dtype: str, opts: dict[str, Any] | None = None) -> str | None:
    """``"bound"``, ``"refuse"`` or ``None`` (too close to call) for the default (equilibrating) call."""
    kappa = testing.equilibrated_condition_number(np.asarray(x, np.float64))
    limit = resolution(func, route, *x.shape, dtype, opts or {})
    if kappa <= limit / MARGIN:
        return "bound"
    if kappa >= limit * MARGIN:
        return "refuse"
    return None


def ridge_forward_verdict(x: np.ndarray, ridge: float, dtype: str) -> str | None:
    """The paper form with ``ridge`` (README ranges): ``κ_λ ≤ (d·ε)^{-1/2}`` and ``λ_min(M) > d·ε``,
    ``M = I − (λ/n)LᵀL`` with eigenvalues ``s_i²/(s_i² + λ)`` (zero for a null direction)."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    eps = float(np.finfo(dtype).eps)
    s = np.linalg.svd(x, compute_uv=False)
    s = np.concatenate([s, np.zeros(d - len(s))])
    m_min = float(np.min(s**2 / (s**2 + ridge)))
    kappa = _ridge_kappa(x, ridge)
    floor = 1 / (max(n, d) * eps)
    gram = 1 / math.sqrt(d * eps)
    if m_min > MARGIN * d * eps and kappa * MARGIN <= gram and kappa / math.sqrt(m_min) * MARGIN <= floor:
        return "bound"
    if m_min * MARGIN < d * eps or kappa > MARGIN * gram:
        return "refuse"
    return None


def power(func: str, route: str, opts: dict[str, Any]) -> int:
    """``p`` of the documented bound: the route's ``kappa_power`` for ``lstsq``/``hat_matrix``; the forward
    pass p = 1 only for T12's routes with refinement layers (default; 0 with ridge on Gram routes), else 2;
    values-are-targets (T4) p = 2."""
    r = olsjax.ROUTES[route]
    if func in ("regression_attention", "effective_weights", "attention_matrix"):
        return 2
    if func == "forward":
        refine = opts.get("refine")
        ridge = opts.get("ridge")
        if ridge is not None and (isinstance(ridge, Traced) or ridge):
            return 2  # README ranges: the paper form with ridge (default refine=0) is p = 2 in κ_λ
        if refine == 0:
            return 2
        return 1 if route in T12_ROUTES else 2
    if func == "lstsq" and opts.get("rcond") is not None and route == "auto":
        return 1
    return r.kappa_power
