"""The ``olsjax`` command: the certificate's table, JSON, exit status and progress."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

import olsjax
from olsjax import cli, verify


def test_verify_passes_writes_json_and_reports_progress(tmp_path, capsys):
    path = tmp_path / "cert.json"
    status = cli.main(["verify", "--claims", "T2", "--dtype", "float64", "--json", str(path)])
    out, err = capsys.readouterr()
    assert status == 0
    routes = verify.WHITENING_ROUTES
    k = len(routes)
    assert f"{k}/{k} checks passed" in out
    assert f"[  {k}/{k}] T2 {routes[-1]} float64" in err  # progress goes to stderr
    payload = json.loads(path.read_text())
    assert payload["passed"] is True
    assert [r["route"] for r in payload["rows"]] == list(routes)
    for row in payload["rows"]:
        assert row["claim"] == "T2" and row["dtype"] == "float64"
        assert 0 <= row["value"] <= row["limit"]
    assert payload["environment"]["jax"]


def test_a_failing_claim_fails_the_command(monkeypatch, capsys):
    def broken(case, route, dtype):
        return verify.Measurement(1.0, 1e-12)

    claim = dataclasses.replace(verify.CLAIMS[0], measure=broken, routes=("qr",))
    monkeypatch.setattr(verify, "CLAIMS", (claim,))
    assert cli.main(["verify", "--dtype", "float64"]) == 1
    out, _ = capsys.readouterr()
    assert "FAIL" in out and "0/1 checks passed" in out


def test_unknown_claim_is_refused():
    with pytest.raises(SystemExit, match="no claim matches"):
        cli.main(["verify", "--claims", "T99"])


def test_measurement_relations():
    assert verify.Measurement(1e-16, 1e-15).passed
    assert not verify.Measurement(float("nan"), 1e-15).passed  # NaN never passes
    assert verify.Measurement(0.5, 0.0, above=True).passed
    assert not verify.Measurement(0.0, 0.0, above=True).passed


def test_whitening_routes_come_from_the_registry():
    assert set(verify.WHITENING_ROUTES) == {
        name for name, r in olsjax.ROUTES.items() if r.whitens and name != "auto"
    }
    assert "lstsq" not in verify.WHITENING_ROUTES and "auto" not in verify.WHITENING_ROUTES
    assert set(verify.PSEUDO_INVERSE_ROUTES) == {"svd", "eigh", "zca"}


def test_bench_report_is_not_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench-report"])
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run(
        [sys.executable, "-m", "olsjax", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("olsjax ")
