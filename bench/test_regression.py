"""One large least-squares problem per group: every olsjax route against numpy, scipy, sklearn and JAX."""

from ._harness import run_case

SUITE = "regression"


def test_regression(benchmark, preset, problem, competitor):
    run_case(benchmark, preset, problem, competitor)
