"""``python -m bench.targets --quick`` runs end to end and reports every target with a verdict."""

from __future__ import annotations

import re

from bench import targets


def test_quick_run_reports_every_target(capsys, tmp_path):
    out = tmp_path / "targets.md"
    assert targets.main(["--quick", "-o", str(out)]) == 0
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and ("met" in line or "MISSED" in line)]
    # 4 public/jitted-vs-floor rows, 8 "≥ 5x faster" rows, 2 batched, 7 compile/latency targets.
    assert len(rows) == 21
    assert all(re.search(r"\| (met|MISSED) \|$", row) for row in rows)
    assert "ridge sweep (20 values): compilations of lstsq | 1 compiles" in text


def test_target_verdicts_compare_with_the_limit():
    assert targets.Target("t", 1.29, 1.3).met
    assert not targets.Target("t", 1.31, 1.3).met


def test_profile_names_every_piece_and_route(capsys):
    assert targets.main(["--quick", "--profile"]) == 0
    text = capsys.readouterr().out
    for piece in ("singular values of C", "construct_ols + forward (jitted together)"):
        assert piece in text
    for route in ("auto", "cholesky", "cholqr2", "svd"):
        assert f"| {route} |" in text
