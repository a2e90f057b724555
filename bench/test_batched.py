"""In-context regression: ``B`` independent small problems per call, batched or vmapped."""

from ._harness import run_case

SUITE = "batched"


def test_batched(benchmark, preset, problem, competitor):
    run_case(benchmark, preset, problem, competitor)
