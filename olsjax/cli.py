"""The ``olsjax`` command: ``verify`` prints the certificate of THEOREMS.md's claims; ``experiment`` runs one."""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np

from . import __version__, verify
from ._environment import environment
from .experiments import NAMES as EXPERIMENTS
from .experiments import run_experiment as run


def _progress(stream):
    interactive = stream.isatty()

    def report(i: int, total: int, label: str) -> None:
        line = f"[{i:>3}/{total}] {label}"
        if interactive:
            stream.write(f"\r{line:<60}" + ("\n" if i == total else ""))
        elif i == total or i % 10 == 0:
            stream.write(line + "\n")
        stream.flush()

    return report


def format_table(rows: list[verify.Row]) -> str:
    """The certificate as a plain-text table, one line per claim, route and dtype."""
    header = ("claim", "statement", "route", "dtype", "measured", "must be", "")
    body = [
        (
            r.claim,
            r.statement,
            r.route,
            r.dtype,
            f"{r.value:.2e}",
            f"{'>' if r.above else '≤'} {r.limit:.2e}",
            "PASS" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), rule, *(fmt.format(*line) for line in body)])


def run_verify(args: argparse.Namespace) -> int:
    """Run the certificate; exit status 1 if any claim fails."""
    claims = [c for c in verify.CLAIMS if not args.claims or c.id in args.claims]
    if not claims:
        raise SystemExit(f"olsjax verify: no claim matches {args.claims}; known: "
                         f"{sorted({c.id for c in verify.CLAIMS})}")
    start = time.perf_counter()
    # float64 is the verification dtype; enabled for this run only, not globally.
    with jax.enable_x64(True):
        rows = verify.certify(claims, args.dtype, progress=_progress(sys.stderr))
    seconds = time.perf_counter() - start
    failed = [r for r in rows if not r.passed]
    print(format_table(rows))
    print(
        f"\n{len(rows) - len(failed)}/{len(rows)} checks passed in {seconds:.1f} s "
        f"(bound: relative error ≤ {verify.testing.DEFAULT_C:g}·u·(κ^p + κ²·tanθ); "
        f"worst case of each row shown)"
    )
    if args.json:
        payload = {
            "environment": environment(),
            "seconds": seconds,
            "passed": not failed,
            "rows": [vars(r) | {"passed": r.passed} for r in rows],
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
    return 1 if failed else 0


def run_experiment(args: argparse.Namespace) -> int:
    """Run one experiment into ``--out``; progress on stderr, the report's path on stdout."""
    if args.seed < 0:
        raise SystemExit(f"olsjax experiment: --seed must be non-negative, got {args.seed}")
    results = run(args.name, out=args.out, quick=args.quick, seed=args.seed)
    print(f"{args.name}: {results['metadata']['seconds']} s; report: {args.out}/report.html")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``olsjax`` command."""
    top = argparse.ArgumentParser(prog="olsjax", description=__doc__)
    top.add_argument("--version", action="version", version=f"olsjax {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify every claim of THEOREMS.md and print the certificate")
    v.add_argument("--json", metavar="PATH", help="also write the certificate as JSON")
    v.add_argument("--dtype", nargs="+", choices=verify.DTYPES, default=list(verify.DTYPES))
    v.add_argument("--claims", nargs="+", metavar="ID", help="only these claims, e.g. T1 T4")
    v.set_defaults(run=run_verify)
    e = sub.add_parser("experiment", help="run an experiment; write results.json, figures and report.html")
    e.add_argument("name", choices=EXPERIMENTS, help="paper: the paper's second half; blog: attention vs regression")
    e.add_argument("--out", metavar="DIR", required=True, help="folder for the outputs (created if missing)")
    e.add_argument("--quick", action="store_true", help="CI size: seconds to a minute, same pipeline")
    e.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    e.set_defaults(run=run_experiment)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``olsjax`` console script."""
    args = parser().parse_args(argv)
    return args.run(args)
