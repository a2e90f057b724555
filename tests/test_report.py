"""``olsjax.report`` and the experiment runner: one self-contained HTML file, and the runner's contract."""

from __future__ import annotations

import json
import re

import pytest

from olsjax import plots, report
from olsjax.experiments import run_experiment


def _figure(tmp_path):
    fig, ax = plots.new()
    ax.plot([0, 1], [1, 0])
    return plots.save(fig, tmp_path, "line", "a <falling> line")


def test_report_is_self_contained_and_escaped(tmp_path):
    sections = [
        report.Section(
            "Results & more",
            text=["x < y"],
            tables=[report.Table([{"name": "a", "value": 0.000123456, "n": 3, "ok": True}], caption="t")],
            figures=[_figure(tmp_path)],
        )
    ]
    page = report.render("Title", sections, {"seed": 0})
    assert page.startswith("<!DOCTYPE html>")
    assert "Results &amp; more" in page and "x &lt; y" in page and "a &lt;falling&gt; line" in page
    assert "<td>0.000123</td>" in page and "<td>3</td>" in page and "<td>True</td>" in page
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', page)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched: viewable offline


def test_unknown_experiment_and_bad_seed_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        run_experiment("nope", out=tmp_path)
    with pytest.raises(ValueError, match="seed"):
        run_experiment("paper", out=tmp_path, seed=-1)


def test_runner_writes_results_figures_and_report(tmp_path, monkeypatch):
    import types

    fake = types.SimpleNamespace(
        TITLE="Fake",
        run=lambda *, quick, seed, progress: {"value": seed + 1.5},
        sections=lambda results, figures: [report.Section("S", [f"value {results['value']}"], (), list(figures.values()))],
    )
    fake_plots = types.SimpleNamespace(draw=lambda results, out: {"line": _figure(out)})
    modules = {"olsjax.experiments.fake": fake, "olsjax.plots.fake": fake_plots}
    monkeypatch.setattr("olsjax.experiments.NAMES", ("fake",))
    monkeypatch.setattr("olsjax.experiments.importlib.import_module", modules.__getitem__)
    results = run_experiment("fake", out=tmp_path / "out", seed=2)
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written == results and written["value"] == 3.5
    assert written["metadata"]["seed"] == 2 and written["metadata"]["environment"]["jax"]
    assert (tmp_path / "out" / "line.png").stat().st_size > 1000
    assert "value 3.5" in (tmp_path / "out" / "report.html").read_text()
