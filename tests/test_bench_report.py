"""The benchmark report on a small hand-made pytest-benchmark document.

Every expected number (ratios, bandwidth shares, speed-ups, slopes) is worked
out by hand in the comments, not with the code under test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report as bench_report

ROOT = Path(__file__).resolve().parents[1]
CPU_GROUP = "regression n=1e6 d=64 float64"
CPU_SIZE = dict(suite="regression", n=10**6, d=64, dtype="float64", platform="cpu")


def bench(group, competitor, cid, median, rounds=3, aliases=(), **info):
    return {
        "group": group,
        "name": f"test_x[{cid}]",
        "stats": {"median": median, "rounds": rounds},
        "extra_info": dict(competitor=competitor, id=cid, aliases=list(aliases), **info),
    }


def attention(n, cid, median):
    return bench(
        f"attention n={n} d=64 float32", cid, cid, median,
        suite="attention", n=n, d=64, dtype="float32", series=f"attention d=64 float32: {cid}",
    )


DOCUMENT = {
    "datetime": "2026-01-01T00:00:00",
    "machine_info": {"python_version": "3.11", "olsjax": {"preset": "unit", "backend": "cpu"}},
    "benchmarks": [
        # Bandwidth: the faster copy (20 GB/s) is the limit.
        bench("memory bandwidth", "jax copy", "bandwidth.jax", 0.1, suite="bandwidth", gbps=10.0),
        bench("memory bandwidth", "numpy copy", "bandwidth.numpy", 0.05, suite="bandwidth", gbps=20.0),
        # Fastest is numpy Cholesky at 0.4 s: ratios 0.5/0.4 = 1.25, 1.0/0.4 = 2.5, 3.0/0.4 = 7.5.
        bench(CPU_GROUP, "olsjax.lstsq [qr, default]", "lstsq.qr", 0.5, aliases=("lstsq.default", "jit.lstsq"),
              gbps=5.0, gflops=16.4, compile_s=0.2, **CPU_SIZE),
        bench(CPU_GROUP, "numpy.linalg.lstsq", "numpy.lstsq", 3.0, gbps=0.8, gflops=2.7, **CPU_SIZE),
        bench(CPU_GROUP, "sklearn", "sklearn", 1.0, gbps=2.5, gflops=8.2, **CPU_SIZE),
        bench(CPU_GROUP, "numpy Cholesky", "numpy.cholesky", 0.4, gbps=6.25, gflops=20.5, **CPU_SIZE),
        # The public call on numpy input takes 0.6 s against its jitted core's 0.5 s: 1.2×, +100 ms.
        bench(CPU_GROUP, "olsjax.lstsq public call, numpy input", "public.lstsq", 0.6, **CPU_SIZE),
        # Linear attention doubles with n (slope log 2 / log 2 = 1); softmax grows 8× per doubling (slope 3).
        *(attention(n, "linear", t) for n, t in ((1000, 1e-3), (2000, 2e-3), (4000, 4e-3))),
        *(attention(n, "softmax", t) for n, t in ((1000, 1e-3), (2000, 8e-3), (4000, 64e-3))),
        bench("compile regression n=1e6 d=64 float64", "olsjax.lstsq [qr, default]", "lstsq.qr", 0.3,
              suite="compile", n=10**6, lower_s=0.1, series="compile regression: lstsq"),
    ],
}


def table_rows(markdown: str, heading: str) -> dict[str, list[str]]:
    """The markdown table under ``heading``, as first cell → remaining cells."""
    lines = markdown.split(heading + "\n", 1)[1].strip().splitlines()
    out = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


@pytest.fixture
def rows():
    return bench_report.load_rows(DOCUMENT)


def test_bandwidth_is_the_fastest_copy(rows):
    assert bench_report.bandwidth_gbps(rows) == 20.0


def test_group_table_ratios_and_bandwidth_share():
    text = bench_report.markdown(DOCUMENT)
    table = table_rows(text, f"### {CPU_GROUP}")
    # Columns: median, × fastest, GB/s, % of bandwidth, GFLOP/s, compile, rounds; fastest first.
    assert list(table) == [
        "numpy Cholesky", "olsjax.lstsq [qr, default]", "olsjax.lstsq public call, numpy input", "sklearn",
        "numpy.linalg.lstsq",
    ]
    assert table["olsjax.lstsq [qr, default]"] == ["500 ms", "1.25", "5", "25", "16.4", "200 ms", "3"]
    assert table["sklearn"][:4] == ["1 s", "2.50", "2.5", "12.5"]  # 2.5 / 20 = 12.5 %
    assert table["numpy.linalg.lstsq"][:2] == ["3 s", "7.50"]
    assert table["numpy Cholesky"][:4] == ["400 ms", "1.00", "6.25", "31.2"]  # 6.25 / 20 = 31.25 %, 3 digits


def test_targets(rows):
    verdicts = {
        v.target.text: v for t in bench_report.TARGETS for v in bench_report.evaluate(t, rows, 20.0)
    }
    cpu = "CPU n=10⁶ d=64 float64: "
    numpy_target = verdicts[cpu + "default olsjax fit, jitted core, ≥ 4× faster than numpy.linalg.lstsq"]
    assert numpy_target.measured == pytest.approx(6.0) and numpy_target.met  # 3.0 / 0.5
    sklearn_target = verdicts[cpu + "default olsjax fit, jitted core, ≥ 4× faster than scikit-learn"]
    assert sklearn_target.measured == pytest.approx(2.0) and sklearn_target.met is False  # 1.0 / 0.5
    within = verdicts[cpu + "default olsjax fit, jitted core, within 1.5× of numpy Cholesky (normal eqs)"]
    assert within.measured == pytest.approx(1.25) and within.met  # 0.5 / 0.4
    public = "olsjax.lstsq public call (numpy input) "
    public_numpy = verdicts[cpu + public + "≥ 4× faster than numpy.linalg.lstsq"]
    assert public_numpy.measured == pytest.approx(5.0) and public_numpy.met  # 3.0 / 0.6
    public_within = verdicts[cpu + public + "within 1.5× of numpy Cholesky"]
    assert public_within.measured == pytest.approx(1.5) and public_within.met  # 0.6 / 0.4, at the limit
    gpu = verdicts["GPU batched: pre-built forward ≥ 70% of bandwidth"]
    assert gpu.measured is None and gpu.met is None


def test_slopes(rows):
    slopes = {s.label: s.slope for s in bench_report.scaling_series(rows)}
    # Compile and bandwidth rows are not run times against n: no series of their own.
    assert slopes == {"linear": pytest.approx(1.0), "softmax": pytest.approx(3.0)}
    verdicts = [v for t in bench_report.TARGETS if t.kind == "slope" for v in bench_report.evaluate(t, rows, None)]
    assert [(v.target.subject, v.met) for v in verdicts] == [("linear", True), ("softmax", False)]


def test_public_calls_beside_their_cores(rows):
    overheads = bench_report.public_overheads(rows)
    # Only olsjax.lstsq has both rows in the document (the compile group has no public row).
    assert [(o.group, o.what) for o in overheads] == [(CPU_GROUP, "olsjax.lstsq")]
    assert overheads[0].ratio == pytest.approx(1.2)  # 0.6 / 0.5
    table = table_rows(bench_report.markdown(DOCUMENT), "## Public calls against their jitted cores")
    assert table[CPU_GROUP] == ["olsjax.lstsq", "600 ms", "500 ms", "1.20", "+100 ms"]


def test_compile_group_shows_trace_share():
    table = table_rows(bench_report.markdown(DOCUMENT), "### compile regression n=1e6 d=64 float64")
    assert table["olsjax.lstsq [qr, default]"] == ["300 ms", "1.00", "100 ms", "3"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-5, "45.6 µs"), (7e-8, "70 ns")]
)
def test_format_seconds(seconds, text):
    assert bench_report.format_seconds(seconds) == text


def _args(*argv):
    parser = argparse.ArgumentParser()
    bench_report.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_run_writes_markdown_and_figure(tmp_path):
    pytest.importorskip("matplotlib")
    results, output, figure = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.png"
    results.write_text(json.dumps(DOCUMENT))
    assert bench_report.run(_args(results, "-o", output, "--figure", figure, "--figure-link", "r.png")) == 0
    assert figure.stat().st_size > 0
    assert "![time against n, log-log](r.png)" in output.read_text()


def test_run_reports_unreadable_input(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    assert bench_report.run(_args(missing)) == 2
    assert "cannot read" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    # The command line is `python -m bench.report`, run from the repository root.
    results = tmp_path / "r.json"
    results.write_text(json.dumps(DOCUMENT))
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"### {CPU_GROUP}" in done.stdout
