"""``python -m bench.memory`` at a small ``n``: it runs every call and prints the whole table.

A smoke test of the tool, not a measurement: no number is checked beyond its form.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench import memory

ROOT = Path(__file__).resolve().parents[1]


def test_memory_table_has_every_call():
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--n", "10000", "--d", "8"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = {
        cells[0]: cells[1:]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| call")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert list(rows) == list(memory.CALLS)
    for cells in rows.values():
        assert re.fullmatch(r"-?[\d,]+\.\d MiB", cells[0]) and re.fullmatch(r"-?\d+\.\d\d", cells[1])
    assert "n = 10,000, d = 8, float64" in done.stdout
