"""Cold compile time (trace, lower, XLA compile) of every jitted competitor, apart from run time."""

from ._harness import run_compile_case

SUITE = "compile"


def test_compile(benchmark, preset, problem, competitor):
    run_compile_case(benchmark, preset, problem, competitor)
