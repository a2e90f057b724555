"""Attention scaling in ``n``: linear vs softmax, causal vs not (log-log slopes 1 and 2 expected)."""

from ._harness import run_case

SUITE = "attention"


def test_attention(benchmark, preset, problem, competitor):
    run_case(benchmark, preset, problem, competitor)
