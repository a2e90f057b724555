"""The README's Python examples run as written and print what the README says."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_quickstart_and_traced_options_run_and_print_what_the_comments_say():
    blocks = _blocks()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # The first two blocks: the quick start, then the traced-options example using its names.
        exec(compile(blocks[0] + "\n" + blocks[1], str(README), "exec"), {})
    lines = out.getvalue().splitlines()
    # The README promises ~1e-15: the same predictor to rounding (κ ≈ 1.3, p = 1 bound c·u·κ ≈ 3e-14).
    assert float(lines[0]) < 3e-14
    assert lines[1] == "Cholesky()"
    assert lines[2] == "svd 5"


def test_grid_search_example_matches_ridge():
    import numpy as np
    from sklearn.linear_model import Ridge

    blocks = _blocks()
    grid = next(b for b in blocks if "GridSearchCV" in b)
    names: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(blocks[0] + "\n" + grid, str(README), "exec"), names)
    best = names["search"].best_estimator_
    ridge = Ridge(alpha=best.ridge).fit(names["X"], names["Y"][:, 0])
    # κ(X) ≈ 1.3: both solvers agree to the p = 1 bound, far inside 1e-12.
    np.testing.assert_allclose(best.coef_, ridge.coef_, rtol=1e-12)
    assert best.coef_.dtype == np.float64
