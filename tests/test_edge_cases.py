"""No silent wrong answers: every public function either meets its bound or refuses, on any input.

One table (``CASES``): every public function × dtype × shape × value × option,
with ``jax_enable_x64`` on (``x64``) and off (``x32``), eagerly and under a
caller's ``jax.jit``. Each case asserts exactly one outcome
(``tests/_edge_cases.py``): a ``ValueError``/``TypeError`` naming the
argument at fault, a finite answer within the documented bound against an
exact reference, or (under ``jit`` only) NaN in the output. Whatever the
expected outcome, a returned result is also checked against the generic
invariant: never NaN eagerly, and never finite outside the case's bound.

Failures start with a tag in brackets (``[refusal missing]``, ``[finite
wrong answer]``, ``[silent NaN]``, ``[wrong exception type]``, ``[message
does not name the argument]``, ``[crash]``, ...) so that a run can be
grouped by class.

With x64 off, float64 numpy input is computed in float32: the library warns
(``UserWarning`` naming ``jax_enable_x64``) and the float32 bound applies.
Only the float32 exponent range is representable then, so float64 data scaled
to 1e±155 or 1e±300 must be refused, naming the argument.
"""

from __future__ import annotations

import math
import re
import warnings

import jax
import numpy as np
import pytest

import olsjax
from olsjax import testing

from ._edge_cases import (
    ARGS,
    ATTENTION,
    BAD_DTYPES,
    KAPPAS,
    OPTIONED,
    PINV,
    RANK,
    RCOND,
    ROUTED,
    SCALES,
    SOLVE,
    WHITEN,
    Bound,
    Case,
    NaNOut,
    Refuse,
    Routes,
    Traced,
    apply_ops,
    both,
    execute,
    kappa_verdict,
    power,
    base,
    reference,
    ridge_forward_verdict,
    select_rule,
    word,
)

CASES: list[Case] = []

# Route subsets where a case compiles a program of its own (a new shape or static option): one JIT
# compile per (function, route, shape, static options, dtype, x64 setting) dominates the run time, so
# every route is covered on the main 16 × 3 shape (shared by the NaN, scale, κ, constant- and
# duplicated-column cases) and representative routes elsewhere.
JIT = {"lstsq": ("auto", "svd", "qr", "cholesky"), "forward": ("auto", "svd"),
       "regression_attention": ("auto",), "hat_matrix": ("svd",)}
RIDGE = {"lstsq": ("auto", "qr", "svd", "cholesky", "lstsq"), "forward": ("auto", "svd", "cholesky"),
         "regression_attention": ("auto", "eigh"), "hat_matrix": ("svd",)}
RCOND_ROUTES = {"lstsq": ("auto", "svd", "eigh", "lstsq"), "forward": ("auto", "eigh"),
                "regression_attention": ("auto", "zca"), "hat_matrix": ("svd", "eigh")}
INTERCEPT = {"forward": ("auto", "qr", "svd", "eigh"), "regression_attention": ("auto", "cholesky")}
X32_DTYPES = ("int64", "float16", "bfloat16", "complex128")
JIT_DTYPES = ("int32", "bool", "bfloat16", "complex128")
#: Representative routes for the cheap sweeps of the values-are-targets form and the hat matrix.
SOME = ("auto", "qr", "svd", "cholesky", "eigh")


def cid(func, route, x64, jit, *detail) -> str:
    parts = [func] + ([str(route)] if route is not None else []) + ["x64" if x64 else "x32"] + (["jit"] if jit else [])
    return "-".join(parts + [str(d) for d in detail if d != ""])


def add(func, expect, *detail, route=None, data="main", opts=(), ops=(), dtype="float64", x64=True, jit=False,
        warn=False):
    CASES.append(Case(cid(func, route, x64, jit, *detail), func, data, expect, route=route, opts=tuple(opts),
                      ops=tuple(ops), dtype=dtype, x64=x64, jit=jit, warn=warn))


def default_route(func):
    return "auto" if func in ROUTED else None


def valid(func, route, opts=(), exp2=0, *, data="main", dtype="float64"):
    """The expected outcome of a valid call: its bound (or, for ``select_route``, its rule)."""
    o = dict(opts)
    if func == "select_route":
        x = np.asarray(apply_ops(Case("", func, data, None, dtype=dtype), ref=True)["X"], np.float64)
        compute = "float64" if dtype == "float64" else "float32"
        return Routes(select_rule(x, route, o.get("rcond"), compute))
    if func in ATTENTION or func == "condition_number":
        return Bound(1, exp2)
    return Bound(power(func, route, o), exp2)


def compute_x(data, dtype, x64) -> np.ndarray:
    """``X`` as the library computes with it (float32 when x64 is off)."""
    x = apply_ops(Case("", "lstsq", data, None, dtype=dtype), ref=True)["X"]
    return np.asarray(x, np.float32 if (dtype == "float32" or not x64) else np.float64)


# --- 1. dtypes ----------------------------------------------------------------------------------

for func, names in ARGS.items():
    route, data = default_route(func), ("attn" if func in ATTENTION else "main")
    for arg in names:
        if arg == "X" and func in ("effective_weights", "attention_matrix"):
            continue  # the same construction as regression_attention's
        for bad in BAD_DTYPES:
            for x64 in ((True, False) if bad in X32_DTYPES else (True,)):
                add(func, Refuse(TypeError, word(arg)), bad, arg, route=route, data=data,
                    ops=[("cast", arg, bad)], x64=x64)
            if bad in JIT_DTYPES:
                add(func, Refuse(TypeError, word(arg)), bad, arg, route=route, data=data,
                    ops=[("cast", arg, bad)], jit=True)
        # Python nested lists of floats: README "Types": numpy makes them float64 (computed in float32,
        # with a warning, when x64 is off).
        for x64 in (True, False):
            add(func, valid(func, route), "list", arg, route=route, data=data, ops=[("cast", arg, "list")],
                x64=x64, warn=not x64)

# Mixed float32/float64 between arguments (x64 on: with x64 off float64 input is float32 anyway).
MIXED = {
    "lstsq": [("X", both("X", "Y")), ("Y", both("X", "Y"))],
    "forward": [("queries", word("queries")), ("context", word("context"))],
    "regression_attention": [("queries", word("queries")), ("targets", word("targets"))],
    "effective_weights": [("targets", word("targets"))],
    "attention_matrix": [("queries", word("queries"))],
    "linear_attention": [("q", word("q")), ("v", word("v"))],
    "softmax_attention": [("q", word("q")), ("v", word("v"))],
    "linear_attention_matrix": [("q", word("q"))],
    "softmax_attention_matrix": [("k", word("k"))],
}
for func, items in MIXED.items():
    for arg, match in items:
        for jit in (False, True):
            add(func, Refuse(TypeError, match), "mixed32", arg, route=default_route(func),
                data="attn" if func in ATTENTION else "main", ops=[("cast", arg, "float32")], jit=jit)

# Low precision attention (every argument float16/bfloat16): README "Types" refuses float16/bfloat16.
for func in ATTENTION:
    for low in ("float16", "bfloat16"):
        for x64 in (True, False):
            add(func, Refuse(TypeError, r"\bq\b|\bk\b|\bv\b"), low, data="attn", dtype=low, x64=x64)

# --- 2. shapes --------------------------------------------------------------------------------

S = "set"
SHAPES = {
    "lstsq": [
        ("X1d", [(S, "X", (16,))], word("X")),
        ("X0rows", [(S, "X", (0, 3)), (S, "Y", (0, 2))], word("X")),
        ("X0cols", [(S, "X", (16, 0))], word("X")),
        ("Y0cols", [(S, "Y", (16, 0))], word("Y")),
        ("nmismatch", [(S, "Y", (15, 2))], both("X", "Y")),
        ("nmismatch-vecY", [(S, "Y", (15,))], both("X", "Y")),
        ("batch-mismatch", [(S, "X", (2, 16, 3)), (S, "Y", (3, 16, 2))], both("X", "Y")),
        ("batchX-unbatchedY", [(S, "X", (2, 16, 3))], both("X", "Y")),
    ],
    "forward": [
        ("X1d", [(S, "X", (16,))], word("X")),
        ("nmismatch", [(S, "Y", (15, 2))], both("X", "Y")),
        ("X0rows", [(S, "X", (0, 3)), (S, "Y", (0, 2)), (S, "context", (16, 3))], word("X")),
        ("queries-width", [(S, "queries", (5, 4))], word("queries")),
        ("context-width", [(S, "context", (16, 4))], word("context")),
        ("queries1d", [(S, "queries", (3,))], word("queries")),
        ("context0rows", [(S, "context", (0, 3))], word("context")),
    ],
    "regression_attention": [
        ("X1d", [(S, "X", (16,))], word("X")),
        ("queries-width", [(S, "queries", (5, 4))], word("queries")),
        ("context-width", [(S, "context", (16, 4))], word("context")),
        ("targets-nmismatch", [(S, "targets", (15, 2))], word("targets")),
        ("targets0cols", [(S, "targets", (16, 0))], word("targets")),
        ("context0rows", [(S, "context", (0, 3)), (S, "targets", (0, 2))], word("context")),
    ],
    "effective_weights": [
        ("context-width", [(S, "context", (16, 4))], word("context")),
        ("targets-nmismatch", [(S, "targets", (15, 2))], word("targets")),
    ],
    "attention_matrix": [
        ("queries-width", [(S, "queries", (5, 4))], word("queries")),
        ("context-width", [(S, "context", (16, 4))], word("context")),
    ],
    **{f: [("X1d", [(S, "X", (16,))], word("X")), ("X0rows", [(S, "X", (0, 3))], word("X")),
           ("X0cols", [(S, "X", (16, 0))], word("X"))]
       for f in ("hat_matrix", "condition_number", "select_route")},
}
QK = r"\bq\b|\bk\b"
for func in ATTENTION:
    values = func in ("linear_attention", "softmax_attention")
    SHAPES[func] = [
        ("q1d", [(S, "q", (3,))], word("q")),
        ("k1d", [(S, "k", (16,))], word("k")),
        ("q-width", [(S, "q", (5, 4))], QK),
        ("d0", [(S, "q", (5, 0)), (S, "k", (16, 0))], QK),
        ("k0rows", [(S, "k", (0, 3))] + ([(S, "v", (0, 2))] if values else []), word("k")),
        ("batch-mismatch", [(S, "q", (2, 5, 3)), (S, "k", (3, 16, 3))] + ([(S, "v", (3, 16, 2))] if values else []),
         QK),
    ] + ([("v1d", [(S, "v", (16,))], word("v")), ("kv-nmismatch", [(S, "v", (15, 2))], r"\bk\b|\bv\b")]
         if values else [])
for func, items in SHAPES.items():
    for detail, ops, match in items:
        for jit in (False, True):
            add(func, Refuse(ValueError, match), detail, route=default_route(func),
                data="attn" if func in ATTENTION else "main", ops=ops, jit=jit)
# Batched parameters: queries or context whose batch differs from the parameters'.
for func, arg in [("forward", "queries"), ("forward", "context"), ("regression_attention", "queries"),
                  ("regression_attention", "context"), ("attention_matrix", "queries")]:
    shape = (3, 5, 3) if arg == "queries" else (3, 16, 3)
    ops = [(S, arg, shape)] + ([(S, "targets", (3, 16, 2))] if arg == "context" and func != "forward" else [])
    add(func, Refuse(ValueError, word(arg)), f"batch-mismatch-{arg}", route="qr", data="batch", ops=ops)
# Causal attention needs as many queries as keys.
for func in ("linear_attention", "softmax_attention", "linear_attention_matrix", "softmax_attention_matrix"):
    add(func, Refuse(ValueError, QK + "|queries|keys"), "causal-q-neq-k", data="attn", opts=[("causal", True)])

# --- 3. NaN and inf in each argument ------------------------------------------------------------


def non_finite(func, route, arg, *, data="main", dtype="float64", x64=True, jit_too=True, opts=()):
    jit_too = jit_too and route in JIT.get(func, (route,))
    tag = "" if dtype == "float64" else dtype[-2:]
    for bad in ("nan", "inf"):
        add(func, Refuse(ValueError, word(arg)), f"{tag}{bad}-{arg}", route=route, data=data, ops=[(bad, arg)],
            dtype=dtype, x64=x64, opts=opts)
        if jit_too:
            add(func, NaNOut(allow_inf=bad == "inf"), f"{tag}{bad}-{arg}", route=route, data=data, ops=[(bad, arg)],
                dtype=dtype, x64=x64, jit=True, opts=opts)


for route in SOLVE:
    for arg in ("X", "Y"):
        non_finite("lstsq", route, arg)
for route in WHITEN:
    for arg in ("X", "Y"):
        non_finite("forward", route, arg)
    non_finite("regression_attention", route, "X")
    non_finite("hat_matrix", route, "X")
for arg in ("queries", "context"):
    non_finite("forward", "auto", arg)
    non_finite("forward", "qr", arg, opts=[("refine", 0)])
    non_finite("attention_matrix", "auto", arg)
for arg in ("queries", "context", "targets"):
    non_finite("regression_attention", "auto", arg)
for arg in ("context", "targets"):
    non_finite("effective_weights", "auto", arg)
non_finite("condition_number", None, "X")
for func in ATTENTION:
    for arg in ARGS[func]:
        non_finite(func, None, arg, data="attn")
        non_finite(func, None, arg, data="attn", x64=False, jit_too=False)
non_finite("select_route", "auto", "X", jit_too=False)
add("select_route", Refuse(TypeError, "jit"), "reads-data", route="auto", jit=True)
# x64 off: float64 input refused eagerly; float32 input under jit gives NaN.
for func in ("lstsq", "forward", "regression_attention", "hat_matrix"):
    for arg in [a for a in ("X", "Y") if a in ARGS[func]]:
        non_finite(func, "auto", arg, x64=False, jit_too=False)
        non_finite(func, "auto", arg, dtype="float32", x64=False)
        non_finite(func, "svd", arg, dtype="float32")
# Non-finite parameters (e.g. built under a caller's jit from deficient data), then used eagerly.
for func in ("forward", "regression_attention", "attention_matrix"):
    add(func, Refuse(ValueError, word("params")), "nan-params", route="auto", opts=[("nan_params", True)])
    add(func, NaNOut(), "nan-params", route="auto", opts=[("nan_params", True)], jit=True)

# --- 4. exactly scaled data (powers of two) --------------------------------------------------------


def exp2_of(func, sx, sy):
    if func in ("lstsq", "effective_weights"):
        return sy - sx
    if func in ("forward", "regression_attention"):
        return sy
    return 0


def scaled(func, route, dtype, *, x64=True, jit=False, which=("X", "Y", "XY"), opts=()):
    compute = "float32" if dtype == "float32" or not x64 else "float64"
    for label, e in SCALES[compute].items():
        for w in which:
            if w == "Y" and "Y" not in ARGS[func] and func not in ("regression_attention", "effective_weights"):
                continue
            sx, sy = (e if "X" in w else 0), (e if "Y" in w else 0)
            ops = [("scale", n, e) for n in w]
            add(func, valid(func, route, opts, exp2_of(func, sx, sy), dtype=dtype), f"{dtype[-2:]}scale{w}{label}",
                route=route, ops=ops, dtype=dtype, x64=x64, jit=jit, warn=dtype == "float64" and not x64,
                opts=opts)


for route in SOLVE:
    scaled("lstsq", route, "float64")
for route in SOME:
    scaled("lstsq", route, "float32")
    scaled("regression_attention", route, "float64")
    scaled("hat_matrix", route, "float64", which=("X",))
for route in WHITEN:
    scaled("forward", route, "float64")
for route in ("auto", "svd"):
    scaled("forward", route, "float32")
for route in ("auto", "svd"):
    scaled("lstsq", route, "float64", jit=True)
    scaled("effective_weights", route, "float64")
    scaled("attention_matrix", route, "float64", which=("X",))
    scaled("regression_attention", route, "float32")
    scaled("lstsq", route, "float64", x64=False)  # float64 input, float32 range: computed with a warning
scaled("forward", "auto", "float64", jit=True)
scaled("forward", "auto", "float64", x64=False)
scaled("hat_matrix", "svd", "float32", which=("X",))
for func in ("condition_number", "select_route"):
    scaled(func, default_route(func), "float64", which=("X",))
    scaled(func, default_route(func), "float32", which=("X",))
# x64 off, float64 data scaled beyond the float32 range: not representable where it is computed.
for func in ("lstsq", "forward"):
    for label, e in SCALES["float64"].items():
        for w, match in (("X", word("X")), ("Y", word("Y")), ("XY", r"\bX\b|\bY\b")):
            add(func, Refuse(ValueError, match), f"64scale{w}{label}", route="auto", ops=[("scale", n, e) for n in w],
                x64=False)
# Attention: homogeneous in v (and in q, k for linear attention); q·2^s with k·2^-s keeps the scores.
for dtype in ("float64", "float32"):
    for label, e in SCALES[dtype].items():
        for func in ATTENTION:
            lin, values = func.startswith("linear"), func in ("linear_attention", "softmax_attention")
            variants = [("qk", [("scale", "q", e), ("scale", "k", -e)], 0), ("q", [("scale", "q", e)], e if lin else 0)]
            if values:
                variants.append(("v", [("scale", "v", e)], e))
            for w, ops, exp2 in variants:
                add(func, Bound(1, exp2), f"{dtype[-2:]}scale{w}{label}", data="attn", ops=ops, dtype=dtype)

# --- 5. condition number from 1 to 1e15 (float64), 1 to 1e7 (float32) ---------------------------------


def kappa_cases(func, route, dtype, *, x64=True, jit=False, opts=()):
    for kappa in KAPPAS["float32" if dtype == "float32" or not x64 else "float64"]:
        data = f"kappa{kappa:g}"
        label = f"{dtype[-2:]}kappa{kappa:.0e}" + "".join(f"-{k}{v}" for k, v in opts)
        warn = dtype == "float64" and not x64
        if func in ("condition_number", "select_route"):
            add(func, valid(func, route, opts, data=data, dtype=dtype if x64 else "float32"), label, route=route,
                data=data, dtype=dtype, x64=x64, jit=jit, warn=warn)
            continue
        verdict = kappa_verdict(func, route, compute_x(data, dtype, x64),
                                "float32" if dtype == "float32" or not x64 else "float64", dict(opts))
        if verdict is None:
            continue
        if verdict == "bound":
            expect = valid(func, route, opts)
        else:
            expect = NaNOut() if jit else Refuse(ValueError, RANK)
        add(func, expect, label, route=route, data=data, dtype=dtype, x64=x64, jit=jit,
            warn=warn and verdict == "bound",
            opts=opts)


for route in SOLVE:
    kappa_cases("lstsq", route, "float64")
for route in SOME:
    kappa_cases("lstsq", route, "float32")
for route in WHITEN:
    kappa_cases("forward", route, "float64")
for route in ("auto", "qr", "svd", "cholesky", "cholqr2"):
    kappa_cases("forward", route, "float32")
for route in SOME:
    kappa_cases("regression_attention", route, "float64")
    kappa_cases("hat_matrix", route, "float64")
for route in ("auto", "svd"):
    kappa_cases("forward", route, "float64", opts=[("refine", 0)])
for route in ("auto", "svd", "eigh"):
    kappa_cases("regression_attention", route, "float32")
    kappa_cases("hat_matrix", route, "float32")
for route in ("auto", "svd"):
    kappa_cases("effective_weights", route, "float64")
    kappa_cases("attention_matrix", route, "float64")
for route in ("auto", "svd", "qr", "cholesky"):
    kappa_cases("lstsq", route, "float64", jit=True)
    kappa_cases("lstsq", route, "float64", x64=False)
for route in ("auto", "svd"):
    kappa_cases("forward", route, "float64", jit=True)
    kappa_cases("forward", route, "float64", x64=False)
for func in ("condition_number", "select_route"):
    for dtype in ("float64", "float32"):
        kappa_cases(func, default_route(func), dtype)
    kappa_cases(func, default_route(func), "float64", x64=False)

# --- 6. structure: constant, duplicated and missing columns; intercept; vector targets ------------------

# A constant column (0.1s; n = 16 shares the main compile, n = 7 as in the issue) is a column like any
# other without an intercept, and zero after centring with one: rank-deficient, whatever its rounding
# residue (16·0.1 and 7·0.1 are not exact in binary) becomes under equilibration.
for route in WHITEN:
    for func in ("forward", "regression_attention"):
        add(func, valid(func, route), "const-col", route=route, data="const")
for func, routes in INTERCEPT.items():
    for route in routes:
        add(func, Refuse(ValueError, RANK), "const-col-intercept", route=route, data="const",
            opts=[("intercept", True)])
        add(func, valid(func, route, [("intercept", True)]), "intercept", route=route, opts=[("intercept", True)])
for func in ("forward", "regression_attention"):
    add(func, NaNOut(), "const-col-intercept", route="svd", data="const", opts=[("intercept", True)], jit=True)
for route in SOLVE:
    add("lstsq", valid("lstsq", route), "const-col", route=route, data="const")
add("forward", Refuse(ValueError, RANK), "const7-col-intercept", route="auto", data="const7",
    opts=[("intercept", True)])
# With rcond, the minimum-norm fit through [1, X]: unique at queries whose constant column is 0.1.
for func in ("forward", "regression_attention"):
    for route in RCOND_ROUTES[func]:
        opts = [("intercept", True), ("rcond", RCOND)]
        add(func, valid(func, route, opts), "const-col-intercept-rcond", route=route, data="const", opts=opts)
for dtype, x64 in (("float32", True), ("float64", False), ("float32", False)):
    add("forward", Refuse(ValueError, RANK), f"{dtype[-2:]}const-col-intercept", route="svd", data="const",
        opts=[("intercept", True)], dtype=dtype, x64=x64)
    add("forward", valid("forward", "auto"), f"{dtype[-2:]}const-col", route="auto", data="const", dtype=dtype,
        x64=x64, warn=dtype == "float64" and not x64)

# A duplicated column (16 × 3, rank 2): refused without rcond, the minimum-norm answer with it.
DEFICIENT = {"lstsq": SOLVE, "forward": WHITEN, "regression_attention": WHITEN, "hat_matrix": WHITEN}
for func, routes in DEFICIENT.items():
    for route in routes:
        add(func, Refuse(ValueError, RANK), "dup-col", route=route, data="dup")
        if route in JIT[func]:
            add(func, NaNOut(), "dup-col", route=route, data="dup", jit=True)
        if route in RCOND_ROUTES[func]:
            opts = [("rcond", RCOND)]
            add(func, valid(func, route, opts), "dup-col-rcond", route=route, data="dup", opts=opts)
        if route in RIDGE[func]:
            # ridge > 0 makes the problem well posed (T5) ...
            opts = [("ridge", 0.5)]
            if func == "forward":  # ... but the paper form's head needs M = I − (λ/n)LᵀL invertible (README)
                add(func, Refuse(ValueError, RANK + r"|\bX\b"), "dup-col-ridge0.5", route=route, data="dup",
                    opts=opts)
            else:
                add(func, valid(func, route, opts), "dup-col-ridge0.5", route=route, data="dup", opts=opts)
            # ... unless the ridge is negligible at working precision.
            add(func, Refuse(ValueError, RANK), "dup-col-ridge1e-300", route=route, data="dup",
                opts=[("ridge", 1e-300)])
for route in ("auto", "svd", "cholesky"):
    add("lstsq", Refuse(ValueError, RANK), "32dup-col", route=route, data="dup", dtype="float32")
    add("lstsq", Refuse(ValueError, RANK), "dup-col", route=route, data="dup", x64=False)
add("lstsq", valid("lstsq", "svd", [("rcond", 1e-4)]), "32dup-col-rcond", route="svd", data="dup",
    dtype="float32", opts=[("rcond", 1e-4)])

# n < d (3 × 5): refused naming X without rcond (not even a tracer can change a shape) ...
NARROW = {"lstsq": ("auto", "svd"), "forward": ("svd",), "regression_attention": ("auto",), "hat_matrix": ("svd",)}
for func, routes in DEFICIENT.items():
    for route in [r for r in routes if r in ("auto", "svd", "qr", "eigh")]:
        for jit in (False, True):
            add(func, Refuse(ValueError, word("X")), "n<d", route=route, data="wide", jit=jit)
    for route in NARROW[func]:  # ... the minimum-norm answer with it (T6)
        opts = [("rcond", RCOND)]
        add(func, valid(func, route, opts), "n<d-rcond", route=route, data="wide", opts=opts)
# ... and with ridge: lstsq(X[:3], Y[:3], ridge=0.5) is the unique ridge solution; the paper form
# needs full rank for its head (README ranges), so construct_ols refuses.
SHORT = {"lstsq": ("auto", "svd", "cholesky"), "forward": ("auto", "svd"),
         "regression_attention": ("auto",), "hat_matrix": ("svd",)}
for func, routes in SHORT.items():
    for route in routes:
        opts = [("ridge", 0.5)]
        if func == "forward":
            add(func, Refuse(ValueError, RANK + r"|\bX\b"), "n<d-ridge0.5", route=route, data="short", opts=opts)
        else:
            add(func, valid(func, route, opts), "n<d-ridge0.5", route=route, data="short", opts=opts)

# Vector targets: (d,) coefficients, (q,) predictions.
for func, route in (("lstsq", "svd"), ("forward", "qr"), ("regression_attention", "svd"),
                    ("effective_weights", "svd")):
    add(func, valid(func, route), "vecY", route=route, data="vec")

# Causal attention with as many queries as keys.
for func in ATTENTION:
    add(func, Bound(1), "causal", data="attn_causal", opts=[("causal", True)])

# --- 7. options ----------------------------------------------------------------------------------

for func in OPTIONED:
    # A string is not a number: TypeError or ValueError (the README names only the numeric cases).
    for value, exc in ((-1.0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
                       ("0.1", (TypeError, ValueError))):
        add(func, Refuse(exc, word("ridge")), f"ridge{value}", route="auto", opts=[("ridge", value)])
        if func in ("lstsq", "forward"):
            add(func, Refuse(exc, word("ridge")), f"ridge{value}", route="auto", opts=[("ridge", value)], jit=True)
    for value in (-1.0, 1.0, float("nan")):
        add(func, Refuse(ValueError, word("rcond")), f"rcond{value}", route="auto", opts=[("rcond", value)])
    for bad in ("lu", "Auto", 3):
        add(func, Refuse((TypeError, ValueError) if bad == 3 else ValueError, word("route")), f"route-{bad}",
            route=bad)
    if func != "select_route":
        for route in [r for r in SOLVE if r not in PINV]:
            add(func, Refuse(ValueError, word("rcond")), "rcond-needs-pinv", route=route, opts=[("rcond", 1e-6)])
for func in ("forward", "regression_attention", "effective_weights", "attention_matrix", "hat_matrix"):
    add(func, Refuse(ValueError, word("route")), "solve-only-route", route="lstsq")
for route in ("auto", "svd"):
    # README "Shapes and options": a refine that is not a non-negative integer is a ValueError; a
    # non-int one also violates the annotation `int | None`, which a type checker (beartype, at test
    # time) refuses first with a TypeError naming refine.
    for value, exc in ((-1, ValueError), (1.5, (TypeError, ValueError)), ("2", (TypeError, ValueError))):
        for jit in (False, True):
            add("forward", Refuse(exc, word("refine")), f"refine{value}", route=route, opts=[("refine", value)],
                jit=jit)
for func in ("softmax_attention", "softmax_attention_matrix"):
    for value, exc in ((float("nan"), ValueError), (float("inf"), ValueError), ("1", (TypeError, ValueError))):
        add(func, Refuse(exc, word("scale")), f"scale{value}", data="attn", opts=[("scale", value)])

# Huge and tiny ridge on full-rank data: well-posed, exact references (Fraction(1e300), Fraction(1e-300)).
# The paper form with ridge has its own range (README): λ_min(M) > d·ε, M = I − (λ/n)LᵀL; a huge
# ridge leaves M ≈ 0 there, so it refuses.
for func, routes in RIDGE.items():
    for route in routes:
        for value in (1e300, 1e-300, 0.5):
            opts = [("ridge", value)]
            verdict = "bound"
            if func == "forward":
                verdict = ridge_forward_verdict(base("main")["X"], value, "float64")
            if verdict == "bound":
                add(func, valid(func, route, opts), f"ridge{value:g}", route=route, opts=opts)
            elif verdict == "refuse":
                add(func, Refuse(ValueError, RANK), f"ridge{value:g}", route=route, opts=opts)
# Traced options under a caller's jit: values cannot be checked, so bad ones must give NaN.
for func, routes in (("lstsq", ("auto", "cholesky")), ("forward", ("svd",))):
    for route in routes:
        for value in (-1.0, float("nan"), float("inf")):
            add(func, NaNOut(allow_inf=value == float("inf")), f"traced-ridge{value}", route=route,
                opts=[("ridge", Traced(value))], jit=True)
        add(func, valid(func, route, [("ridge", 0.5)]), "traced-ridge0.5", route=route,
            opts=[("ridge", Traced(0.5))], jit=True)
for route in ("auto", "eigh"):
    for value in (-1.0, float("nan")):
        add("lstsq", NaNOut(), f"traced-rcond{value}", route=route, data="dup", opts=[("rcond", Traced(value))],
            jit=True)

_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), sorted({i for i in _ids if _ids.count(i) > 1})[:10]


# --- the test ---------------------------------------------------------------------------------------


def _describe(out) -> str:
    a = np.asarray(out, np.float64)
    if np.all(np.isfinite(a)):
        return f"a finite answer of shape {a.shape}"
    return f"an answer of shape {a.shape} with {int(np.isnan(a).sum())} NaN and {int(np.isinf(a).sum())} inf entries"


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """``testing.relative_error`` after scaling both by one power of two (exact): no over- or underflow."""
    top = float(np.max(np.abs(expected))) if expected.size else 0.0
    e = math.frexp(top)[1] if top > 0 else 0
    return testing.relative_error(np.ldexp(actual, -e), np.ldexp(expected, -e))


def _check_bound(case: Case, out, compute: str) -> str | None:
    """``None`` if the answer meets the case's bound, else the failure."""
    expect: Bound = case.expect
    ref = reference(case)
    a = np.asarray(out, np.float64)
    if a.shape != ref.expected.shape:
        return f"[wrong shape] got {a.shape}, the reference has {ref.expected.shape}"
    if np.any(np.isnan(a)):
        return f"[silent NaN] expected {expect}; got {_describe(out)}" + (" under jit" if case.jit else "")
    if not np.all(np.isfinite(a)):
        return f"[non-finite answer] expected {expect}; got {_describe(out)}"
    if not ref.scaled:
        a = np.ldexp(a, -expect.exp2)
    e = ref.expected
    if ref.rows is not None:
        rows = ref.rows.reshape((-1,) + (1,) * (a.ndim - 1))
        a, e = a * rows, e * rows
    err = _relative_error(a, e)
    dtype = expect.dtype or compute
    u = testing.unit_roundoff(np.dtype(dtype) if dtype != "bfloat16" else jax.numpy.bfloat16)
    # κ past 1/u makes the bound vacuous (≥ c) anyway; capping it keeps κ² finite.
    kappa = min(ref.kappa, 1 / u)
    bound = testing.error_bound(np.dtype(dtype) if dtype != "bfloat16" else jax.numpy.bfloat16, kappa, expect.p,
                                tan_theta=ref.tan_theta)
    if not err <= bound:
        return (f"[finite wrong answer] relative error {err:.3e} > bound {bound:.3e} "
                f"(p = {expect.p}, κ = {kappa:.3e}, tan θ = {ref.tan_theta:.1e}, u of {dtype})")
    return None


def _check_route(case: Case, out) -> str | None:
    """``select_route`` names the route the fit runs (``lstsq(..., info=True)`` on the same inputs) and, on
    unscaled data, the one ``Auto``'s documented rule allows; where the fit refuses, the rule alone."""
    if not isinstance(out, olsjax.Route) or isinstance(out, olsjax.Auto):
        return f"[wrong route] expected a concrete route; got {out!r}"
    ran = None
    with jax.enable_x64(case.x64), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = apply_ops(case)
        try:
            ran = olsjax.lstsq(a["X"], a["Y"], route=case.route, info=True, **dict(case.opts))[1].route_name
        except ValueError:
            pass
    if ran is not None and out.name != ran:
        return f"[wrong route] select_route says {out!r}, the fit ran {ran!r}"
    scaled = any(op[0] == "scale" for op in case.ops)
    allowed = reference(case).routes  # the rule in the dtype the call computes in
    if (ran is None or not scaled) and out.name not in allowed:
        return f"[wrong route] expected select_route in {allowed}; got {out!r}"
    return None


def _internal(exc: BaseException) -> bool:
    """A jaxtyping error about a private function: the library's own annotations, not the caller's input."""
    m = re.search(r"checking the (?:parameters|return value) of (olsjax[\w.]*)\.(\w+)", str(exc))
    return bool(m) and (m.group(2) not in olsjax.__all__ or m.group(2).startswith("_"))


def _outcome(case: Case):
    with jax.enable_x64(case.x64):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = execute(case)
                if not isinstance(out, olsjax.Route):
                    out = np.asarray(jax.device_get(out)).astype(np.float64)
                exc = None
            except Exception as err:  # noqa: BLE001 - classified below
                out, exc = None, err
    x64_warned = any(issubclass(w.category, UserWarning) and "jax_enable_x64" in str(w.message) for w in caught)
    return out, exc, x64_warned


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_edge_case(case: Case):
    out, exc, x64_warned = _outcome(case)
    expect = case.expect
    compute = case.compute_dtype
    failure = None
    if isinstance(expect, Refuse):
        if exc is None:
            got = out if isinstance(out, olsjax.Route) else _describe(out)
            failure = f"[refusal missing] expected {expect}; got {got}"
            if isinstance(out, np.ndarray) and not case.jit and np.any(np.isnan(out)):
                failure = f"[refusal missing: silent NaN] expected {expect}; got {_describe(out)}"
        elif not isinstance(exc, (ValueError, TypeError)) or _internal(exc):
            failure = f"[crash] expected {expect}; got {type(exc).__name__}: {exc}"
        elif not isinstance(exc, expect.exc):
            failure = f"[wrong exception type] expected {expect}; got {type(exc).__name__}: {exc}"
        elif not re.search(expect.match, str(exc)):
            failure = f"[message does not name the argument] expected {expect}; got {type(exc).__name__}: {exc}"
    elif exc is not None:
        kind = "[spurious refusal]" if isinstance(exc, (ValueError, TypeError)) and not _internal(exc) else "[crash]"
        failure = f"{kind} expected {expect}; got {type(exc).__name__}: {exc}"
    elif isinstance(expect, NaNOut):
        a = np.asarray(out, np.float64)
        if np.all(np.isfinite(a)):
            failure = f"[finite wrong answer under jit] expected {expect}; got {_describe(out)}"
        elif not np.any(np.isnan(a)) and not expect.allow_inf:
            failure = f"[inf where NaN was expected] got {_describe(out)}"
    elif isinstance(expect, Routes):
        failure = _check_route(case, out)
    else:
        failure = _check_bound(case, out, compute)
    if failure is None and case.warn and not x64_warned:
        failure = "[x64 warning missing] float64 input computed in float32 without a UserWarning naming jax_enable_x64"
    assert failure is None, failure
