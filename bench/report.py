"""Markdown tables, target verdicts and a log-log figure from the pytest-benchmark JSON of ``bench/``.

Reads the file written by ``pytest --benchmark-only --benchmark-json=FILE``:
each benchmark's median, and the facts ``bench/`` puts in ``extra_info``
(``competitor``, ``id``, ``suite``, ``n``, ``gbps``, ``gflops``, ``series``,
...). Rows of one group are compared with the group's fastest; GB/s is read
against the fastest copy of the run's ``memory bandwidth`` group; rows of one
``series`` (equal in everything but ``n``) get a fitted log-log slope; each
public call (numpy input, eager checks) is set beside the jitted core it wraps.

Command line, from the repository root::

    python -m bench.report RESULTS.json [-o REPORT.md] [--figure PNG [--figure-link URL]] [--bandwidth GB/s]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

#: A fitted slope within this distance of the expected exponent counts as met.
SLOPE_TOLERANCE = 0.25
#: Suites whose rows are not run times of a problem of size ``n``.
NOT_SCALING = frozenset({"bandwidth", "compile"})
#: What users call, against the jitted core it wraps: ``(public id, core id, what)``.
PUBLIC_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("public.lstsq", "jit.lstsq", "olsjax.lstsq"),
    ("public.construct+forward", "jit.construct+forward", "construct_ols + forward"),
    ("public.forward", "jit.forward", "olsjax.forward (pre-built θ)"),
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark: its group, display name, median seconds, rounds and ``extra_info``."""

    group: str
    name: str
    median: float
    rounds: int
    info: dict[str, Any]

    @property
    def ids(self) -> tuple[str, ...]:
        """The competitor id and its aliases (e.g. ``lstsq.qr`` and ``lstsq.default``)."""
        return (str(self.info.get("id", self.name)), *self.info.get("aliases", ()))


def load_rows(data: dict[str, Any]) -> list[Row]:
    """The rows of a pytest-benchmark JSON document, in run order."""
    return [
        Row(
            group=b.get("group") or "(no group)",
            name=str(b.get("extra_info", {}).get("competitor", b["name"])),
            median=float(b["stats"]["median"]),
            rounds=int(b["stats"]["rounds"]),
            info=dict(b.get("extra_info", {})),
        )
        for b in data["benchmarks"]
    ]


def groups(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows by group, groups in run order, rows fastest first."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.group, []).append(row)
    return {g: sorted(rs, key=lambda r: r.median) for g, rs in out.items()}


def bandwidth_gbps(rows: Sequence[Row]) -> float | None:
    """The measured memory bandwidth: the fastest copy of the ``bandwidth`` suite, if any."""
    rates = [float(r.info["gbps"]) for r in rows if r.info.get("suite") == "bandwidth"]
    return max(rates) if rates else None


def fit_slope(ns: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of ``log t`` against ``log n``: the exponent ``p`` in ``t ∝ n^p``."""
    return float(np.polyfit(np.log(ns), np.log(seconds), 1)[0])


@dataclasses.dataclass(frozen=True)
class Series:
    """Rows equal in everything but ``n``, with their fitted log-log slope."""

    key: str
    ids: tuple[str, ...]
    ns: tuple[float, ...]
    medians: tuple[float, ...]
    slope: float

    @property
    def panel(self) -> str:
        """What the series shares with its neighbours in a figure panel (suite, sizes, dtype)."""
        return self.key.split(": ", 1)[0]

    @property
    def label(self) -> str:
        """The competitor part of the key."""
        return self.key.split(": ", 1)[-1]


def scaling_series(rows: Sequence[Row]) -> list[Series]:
    """Every series with at least two distinct ``n``, ordered by key."""
    by_key: dict[str, list[Row]] = {}
    for row in rows:
        if row.info.get("suite") not in NOT_SCALING and "series" in row.info:
            by_key.setdefault(str(row.info["series"]), []).append(row)
    out = []
    for key, rs in sorted(by_key.items()):
        rs = sorted(rs, key=lambda r: r.info["n"])
        ns = tuple(float(r.info["n"]) for r in rs)
        if len(set(ns)) < 2:
            continue
        medians = tuple(r.median for r in rs)
        out.append(Series(key, rs[0].ids, ns, medians, fit_slope(ns, medians)))
    return out


Kind = Literal["speedup", "within", "bandwidth", "slope"]


@dataclasses.dataclass(frozen=True)
class Target:
    """A speed target of the benchmarks issue, checked against measured rows.

    ``where``: ``extra_info`` values the rows must have; ``subject`` and
    ``reference``: competitor ids. ``speedup``: reference time / subject time
    ``≥ threshold``; ``within``: subject / reference ``≤ threshold``;
    ``bandwidth``: subject GB/s / measured bandwidth ``≥ threshold``;
    ``slope``: fitted exponent within ``SLOPE_TOLERANCE`` of ``threshold``.
    """

    text: str
    where: dict[str, Any]
    subject: str
    kind: Kind
    threshold: float
    reference: str | None = None


_GPU_BATCH = dict(suite="batched", B=16384, n=128, d=16, dtype="float32", platform="gpu")
_CPU_FIT = dict(suite="regression", n=10**6, d=64, dtype="float64", platform="cpu")

TARGETS: tuple[Target, ...] = (
    Target("GPU batched: pre-built forward ≥ 70% of bandwidth", _GPU_BATCH, "forward.prebuilt", "bandwidth", 0.70),
    *(
        Target(
            f"GPU batched: construct+forward [{f}] ≥ 1000× faster than vmapped jnp.linalg.lstsq",
            _GPU_BATCH, f"construct+forward.{f}", "speedup", 1000.0, "jnp.linalg.lstsq",
        )
        for f in ("default", "cholesky")
    ),
    *(
        Target(
            f"GPU batched: construct+forward [{f}] within 1.5× of batched Cholesky (normal eqs)",
            _GPU_BATCH, f"construct+forward.{f}", "within", 1.5, "jax.cho_solve",
        )
        for f in ("default", "cholesky")
    ),
    Target("CPU n=10⁶ d=64 float64: default olsjax fit, jitted core, ≥ 4× faster than numpy.linalg.lstsq",
           _CPU_FIT, "lstsq.default", "speedup", 4.0, "numpy.lstsq"),
    Target("CPU n=10⁶ d=64 float64: default olsjax fit, jitted core, ≥ 4× faster than scikit-learn",
           _CPU_FIT, "lstsq.default", "speedup", 4.0, "sklearn"),
    Target("CPU n=10⁶ d=64 float64: default olsjax fit, jitted core, within 1.5× of numpy Cholesky (normal eqs)",
           _CPU_FIT, "lstsq.default", "within", 1.5, "numpy.cholesky"),
    # The same targets for what users call: olsjax.lstsq on numpy arrays, checks and transfer included.
    Target("CPU n=10⁶ d=64 float64: olsjax.lstsq public call (numpy input) ≥ 4× faster than numpy.linalg.lstsq",
           _CPU_FIT, "public.lstsq", "speedup", 4.0, "numpy.lstsq"),
    Target("CPU n=10⁶ d=64 float64: olsjax.lstsq public call (numpy input) ≥ 4× faster than scikit-learn",
           _CPU_FIT, "public.lstsq", "speedup", 4.0, "sklearn"),
    Target("CPU n=10⁶ d=64 float64: olsjax.lstsq public call (numpy input) within 1.5× of numpy Cholesky",
           _CPU_FIT, "public.lstsq", "within", 1.5, "numpy.cholesky"),
    Target("linear attention: time ∝ n¹", dict(suite="attention"), "linear", "slope", 1.0),
    Target("softmax attention: time ∝ n²", dict(suite="attention"), "softmax", "slope", 2.0),
)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A target against one group (or series): the measured value and whether it meets the target."""

    target: Target
    where: str
    measured: float | None
    met: bool | None


def _matches(info: dict[str, Any], where: dict[str, Any]) -> bool:
    return all(info.get(k) == v for k, v in where.items())


def _ratio_verdicts(t: Target, rows: Sequence[Row], bandwidth: float | None) -> list[Verdict]:
    verdicts = []
    for group, rs in groups([r for r in rows if _matches(r.info, t.where)]).items():
        subject = next((r for r in rs if t.subject in r.ids), None)
        reference = next((r for r in rs if t.reference in r.ids), None)
        if subject is None or (t.kind != "bandwidth" and reference is None):
            continue
        if t.kind == "bandwidth":
            value = None if bandwidth is None else float(subject.info["gbps"]) / bandwidth
        elif t.kind == "speedup":
            value = reference.median / subject.median
        else:
            value = subject.median / reference.median
        met = None if value is None else (value <= t.threshold if t.kind == "within" else value >= t.threshold)
        verdicts.append(Verdict(t, group, value, met))
    return verdicts


def evaluate(t: Target, rows: Sequence[Row], bandwidth: float | None) -> list[Verdict]:
    """Verdicts of target ``t`` on every matching group or series; one "not measured" if none match."""
    if t.kind == "slope":
        matching = [r for r in rows if _matches(r.info, t.where)]
        verdicts = [
            Verdict(t, s.panel, s.slope, abs(s.slope - t.threshold) <= SLOPE_TOLERANCE)
            for s in scaling_series(matching)
            if t.subject == s.ids[0]
        ]
    else:
        verdicts = _ratio_verdicts(t, rows, bandwidth)
    return verdicts or [Verdict(t, "not measured in this run", None, None)]


@dataclasses.dataclass(frozen=True)
class Overhead:
    """A public call and the jitted core it wraps, timed in the same group."""

    group: str
    what: str
    public: Row
    core: Row

    @property
    def ratio(self) -> float:
        """Public time / core time: what the checks, the transfer and the dispatch cost."""
        return self.public.median / self.core.median


def public_overheads(rows: Sequence[Row]) -> list[Overhead]:
    """Every ``PUBLIC_PAIRS`` pair measured in one group, groups in run order."""
    out = []
    for group, rs in groups(rows).items():
        for public_id, core_id, what in PUBLIC_PAIRS:
            public = next((r for r in rs if public_id in r.ids), None)
            core = next((r for r in rs if core_id in r.ids), None)
            if public is not None and core is not None:
                out.append(Overhead(group, what, public, core))
    return out


def format_seconds(seconds: float) -> str:
    """Three significant digits in s, ms, µs or ns."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _number(value: Any, spec: str) -> str:
    return "—" if value is None else format(float(value), spec)


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def group_table(rs: Sequence[Row], bandwidth: float | None) -> str:
    """One group as markdown: median, ratio to the fastest, GB/s and its share of bandwidth, GFLOP/s."""
    fastest = min(r.median for r in rs)
    if rs[0].info.get("suite") == "compile":
        header = ("competitor", "compile (median)", "× fastest", "of which trace+lower", "rounds")
        body = [
            (r.name, format_seconds(r.median), f"{r.median / fastest:.2f}",
             format_seconds(float(r.info["lower_s"])) if "lower_s" in r.info else "—", str(r.rounds))
            for r in rs
        ]
        return _table(header, body)
    header = ("competitor", "median", "× fastest", "GB/s", "% of bandwidth", "GFLOP/s", "compile", "rounds")
    body = []
    for r in rs:
        gbps = r.info.get("gbps")
        share = None if gbps is None or bandwidth is None else 100 * float(gbps) / bandwidth
        compile_s = r.info.get("compile_s")
        body.append((
            r.name,
            format_seconds(r.median),
            f"{r.median / fastest:.2f}",
            _number(gbps, ".3g"),
            _number(share, ".3g"),
            _number(r.info.get("gflops") or None, ".3g"),
            "—" if compile_s is None else format_seconds(float(compile_s)),
            str(r.rounds),
        ))
    return _table(header, body)


def targets_table(verdicts: Sequence[Verdict]) -> str:
    """Targets as markdown: measured value, threshold and met/missed."""
    symbol = {"speedup": "≥ {:g}×", "within": "≤ {:g}×", "bandwidth": "≥ {:.0%}", "slope": "{:g} ± %g" % SLOPE_TOLERANCE}
    shown = {"speedup": "{:.3g}×", "within": "{:.3g}×", "bandwidth": "{:.1%}", "slope": "{:.2f}"}
    body = [
        (
            v.target.text,
            v.where,
            "—" if v.measured is None else shown[v.target.kind].format(v.measured),
            symbol[v.target.kind].format(v.target.threshold),
            {True: "**met**", False: "**missed**", None: "not measured"}[v.met],
        )
        for v in verdicts
    ]
    return _table(("target", "measured on", "measured", "target", "verdict"), body)


def slopes_table(series: Sequence[Series]) -> str:
    """Fitted log-log slopes as markdown."""
    body = [
        (s.key, f"{s.ns[0]:.3g} – {s.ns[-1]:.3g}", str(len(s.ns)), f"{s.slope:.2f}")
        for s in series
    ]
    return _table(("series", "n range", "points", "slope"), body)


def overhead_table(overheads: Sequence[Overhead]) -> str:
    """Public calls against their jitted cores as markdown: both medians, the ratio and the difference."""
    body = [
        (
            o.group,
            o.what,
            format_seconds(o.public.median),
            format_seconds(o.core.median),
            f"{o.ratio:.2f}",
            ("+" if o.public.median >= o.core.median else "−")
            + format_seconds(abs(o.public.median - o.core.median)),
        )
        for o in overheads
    ]
    header = ("group", "call", "public call, numpy input", "jitted core", "public / core", "difference")
    return _table(header, body)


def _environment(data: dict[str, Any], bandwidth: float | None) -> list[str]:
    machine = data.get("machine_info", {})
    extra = machine.get("olsjax", {})
    cpu = machine.get("cpu", {})
    lines = [
        f"- run: {data.get('datetime', '?')}, preset `{extra.get('preset', '?')}`, "
        f"backend {extra.get('backend', '?')} ({', '.join(extra.get('devices', [])) or '?'})",
        f"- machine: {cpu.get('brand_raw', machine.get('processor', '?'))}, "
        f"{extra.get('cpu_count', cpu.get('count', '?'))} CPUs, Python {machine.get('python_version', '?')}",
    ]
    versions = extra.get("versions")
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines.append(
        "- memory bandwidth (fastest copy in this run): "
        + ("not measured" if bandwidth is None else f"{bandwidth:.3g} GB/s")
    )
    return lines


def markdown(data: dict[str, Any], bandwidth: float | None = None, figure: str | None = None) -> str:
    """The whole report: environment, targets, slopes, figure link and one table per group."""
    rows = load_rows(data)
    bandwidth = bandwidth if bandwidth is not None else bandwidth_gbps(rows)
    series = scaling_series(rows)
    verdicts = [v for t in TARGETS for v in evaluate(t, rows, bandwidth)]
    parts = ["## Environment", "\n".join(_environment(data, bandwidth)), "## Targets", targets_table(verdicts)]
    overheads = public_overheads(rows)
    if overheads:
        parts += ["## Public calls against their jitted cores", overhead_table(overheads)]
    if series:
        parts += ["## Scaling in n (log-log slopes)", slopes_table(series)]
    if figure:
        parts.append(f"![time against n, log-log]({figure})")
    for group, rs in groups(rows).items():
        parts += [f"### {group}", group_table(rs, bandwidth)]
    return "\n\n".join(parts) + "\n"


def plot(series: Sequence[Series], path: str | Path) -> None:
    """Log-log time against ``n``, one panel per suite/size/dtype, fitted slopes in the legend.

    matplotlib is optional: it is imported here, not at module import.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[Series]] = {}
    for s in series:
        panels.setdefault(s.panel, []).append(s)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.5 * len(panels)), squeeze=False)
    for ax, (panel, members) in zip(axes[:, 0], panels.items(), strict=True):
        palette = plt.get_cmap("tab10")
        for i, s in enumerate(members):
            # Ten colours, then a new marker and line style per ten: no two series look alike.
            colour = palette(i % palette.N)
            marker, style = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))[(i // palette.N) % 4]
            ns = np.asarray(s.ns)
            ax.loglog(ns, s.medians, marker, color=colour, label=f"{s.label} (slope {s.slope:.2f})")
            intercept = np.mean(np.log(s.medians) - s.slope * np.log(ns))
            ax.loglog(ns, np.exp(intercept + s.slope * np.log(ns)), style, color=colour, lw=1)
        ax.set_title(panel)
        ax.set_xlabel("n")
        ax.set_ylabel("median time (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m bench.report``."""
    parser.add_argument("results", type=Path, help="pytest-benchmark JSON (pytest --benchmark-json=FILE)")
    parser.add_argument("-o", "--output", type=Path, help="write the markdown here (default: stdout)")
    parser.add_argument("--figure", type=Path, help="also draw the log-log figure to this PNG (needs matplotlib)")
    parser.add_argument(
        "--figure-link",
        help="how the markdown links the figure (default: the --figure path as given)",
    )
    parser.add_argument(
        "--bandwidth", type=float, help="memory bandwidth in GB/s (default: measured in the same run)"
    )


def run(args: argparse.Namespace) -> int:
    """Write the report (and figure); exit code 0, or 2 if the results cannot be read."""
    try:
        data = json.loads(Path(args.results).read_text())
        load_rows(data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"bench.report: cannot read {args.results}: {error}", file=sys.stderr)
        return 2
    link = None
    series = scaling_series(load_rows(data))
    if args.figure is not None and not series:
        print("bench.report: no series with two or more n; no figure drawn", file=sys.stderr)
    elif args.figure is not None:
        plot(series, args.figure)
        link = args.figure_link or str(args.figure)
    text = markdown(data, args.bandwidth, link)
    if args.output is None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.report RESULTS.json [options]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
