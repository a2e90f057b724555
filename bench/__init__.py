"""pytest-benchmark suites for olsjax; run with ``pytest --benchmark-only [--olsjax-size=...]``."""
