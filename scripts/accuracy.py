"""Minimum LRE of every olsjax route and of the usual solvers on ``testing.hard_suite``.

    pip install ".[test]" statsmodels   # statsmodels for this table only
    python scripts/accuracy.py -o docs/accuracy.md   # rewrites the generated part only

LRE (``testing.lre``) is the number of correct significant digits of the
coefficients against the exact rational least-squares solution of the float
data, minimum over coefficients (15.95 = every float64 digit). A route that
refuses the problem (rank-deficient to its working precision) is marked
``refused``: it raised an error instead of returning digits it does not have.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy
import scipy.linalg
import sklearn
from sklearn.linear_model import LinearRegression

import olsjax
from olsjax import testing

Solver = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _forward(**options) -> Solver:
    # The hard problems' queries are I: the forward pass returns the coefficients.
    def solve(x, y):
        params = olsjax.construct_ols(x, y, **options)
        return np.asarray(olsjax.forward(params, jnp.eye(x.shape[1]), jnp.asarray(x)))

    return solve


def _statsmodels() -> Solver | None:
    try:
        import statsmodels.api as sm
    except ImportError:
        return None
    return lambda x, y: np.column_stack([sm.OLS(y[:, j], x).fit().params for j in range(y.shape[1])])


def solvers() -> dict[str, Solver | None]:
    """Every row of the table; ``None`` where the package is not installed."""
    rows: dict[str, Solver | None] = {
        "olsjax forward, default (auto, refine=None: 13-14 layers here)": _forward(),
    }
    for name, route in olsjax.ROUTES.items():
        if route.whitens and name != "auto":
            rows[f"olsjax forward, route={name}"] = _forward(route=name)
    rows["olsjax forward, qr, one layer (refine=0)"] = _forward(route="qr", refine=0)
    rows["paper: eigh, one layer, no equilibration"] = _forward(route="eigh", refine=0, equilibrate=False)
    for name in olsjax.ROUTES:
        rows[f"olsjax.lstsq, route={name}"] = lambda x, y, r=name: np.asarray(olsjax.lstsq(x, y, route=r))
    rows["numpy.linalg.lstsq (rcond=None)"] = lambda x, y: np.linalg.lstsq(x, y, rcond=None)[0]
    rows["scipy.linalg.lstsq (gelsd)"] = lambda x, y: scipy.linalg.lstsq(x, y)[0]
    rows["scikit-learn LinearRegression"] = lambda x, y: LinearRegression(fit_intercept=False).fit(x, y).coef_.T
    rows["statsmodels OLS (pinv)"] = _statsmodels()
    return rows


def measure(cases: list[testing.HardCase]) -> dict[str, list[float | None]]:
    """LRE per solver and case (``None``: refused)."""
    exact = [testing.exact_lstsq(c.problem.x, c.problem.y) for c in cases]
    table: dict[str, list[float | None]] = {}
    for name, solve in solvers().items():
        if solve is None:
            continue
        row: list[float | None] = []
        for case, beta in zip(cases, exact, strict=True):
            x, y = case.problem.x, case.problem.y
            y2 = y if y.ndim == 2 else y[:, None]
            try:
                est = np.asarray(solve(x, y2)).reshape(beta.shape)
            except ValueError:
                row.append(None)
                continue
            row.append(testing.lre(est, beta))
        table[name] = row
        print(f"  {name}", file=sys.stderr)
    return table


def markdown(cases: list[testing.HardCase], table: dict[str, list[float | None]]) -> str:
    """The table and the problem facts, as markdown."""
    names = [c.name for c in cases]
    lines = [
        "| problem | kind | n × d | κ(X) | κ(XD⁻¹) | tan θ |",
        "|---|---|---|---|---|---|",
    ]
    for c in cases:
        p = c.problem
        lines.append(
            f"| {c.name} | {c.kind} | {p.x.shape[0]} × {p.x.shape[1]} | {p.kappa:.1e} | "
            f"{testing.equilibrated_condition_number(p.x):.1e} | {p.tan_theta:.1e} |"
        )
    lines += ["", "| solver | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name, row in table.items():
        cells = ["refused" if v is None else f"{v:.1f}" for v in row]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> str:
    """Versions and machine, for the header of the generated page."""
    return (
        f"Generated {datetime.date.today().isoformat()} by `python scripts/accuracy.py` on "
        f"{platform.machine()} {platform.platform()}, Python {platform.python_version()}, "
        f"olsjax {olsjax.__version__}, jax {jax.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}"
        + _statsmodels_version()
        + f", backend {jax.default_backend()}, float64."
    )


def _statsmodels_version() -> str:
    with contextlib.suppress(ImportError):
        import statsmodels

        return f", statsmodels {statsmodels.__version__}"
    return " (statsmodels not installed: its row is left out)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", help="write the markdown table here (default: stdout)")
    args = parser.parse_args(argv)
    with jax.enable_x64(True):
        cases = testing.hard_suite()
        print(f"measuring {len(cases)} problems:", file=sys.stderr)
        text = environment() + "\n\n" + markdown(cases, measure(cases)) + "\n"
    if args.output:
        write_between_markers(args.output, text)
    else:
        print(text)


BEGIN, END = "<!-- generated by scripts/accuracy.py: begin -->", "<!-- generated: end -->"


def write_between_markers(path: str, text: str) -> None:
    """Replace what lies between ``BEGIN`` and ``END`` in ``path`` (the whole file if it has no markers)."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        text = head + BEGIN + "\n" + text + END + rest.split(END, 1)[1]
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
