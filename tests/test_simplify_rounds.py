"""simplify's rounds keep what the last round learned about nodes it did not rebuild (their CSE
key, that no pattern applies: simplify.py). That memo must not change the result: on the suite's
programs, simplify gives the graph that plain rounds (every pattern tried on every node, every
key computed afresh) give."""
from __future__ import annotations

import importlib
import pathlib

import pytest

from tt_xla.compiler import decompose, inline_calls, legalize
from tt_xla.compiler.kernel_key import graph_key
from tt_xla.compiler.rewrite import rewrite
from tt_xla.hlo_parser import parse_module

S = importlib.import_module("tt_xla.compiler.simplify")  # (the package exports the function as `simplify`)
DATA = pathlib.Path(__file__).parent / "data"
PROGRAMS = sorted(p for p in DATA.glob("*.mlir") if not p.name.startswith("control"))


def _plain(graph):
    """simplify's rounds without its memo."""
    for _ in range(3):
        new = S.cse(rewrite(S.transposed_dots(graph), S.PATTERNS))
        if all(a is b for a, b in zip(new.outputs, graph.outputs)):
            return new
        graph = new
    return graph


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_simplify_gives_what_plain_rounds_give(path):
    graph = legalize(inline_calls(parse_module(path.read_text())))
    for _ in range(2):  # as optimize_function: simplify, decompose, simplify
        got, want = S.simplify(graph), _plain(graph)
        assert graph_key(got) == graph_key(want)
        graph = decompose(got)


def test_the_comparison_sees_a_difference():
    graph = legalize(inline_calls(parse_module((DATA / "norms.mlir").read_text())))
    assert graph_key(S.simplify(graph)) != graph_key(graph)  # legalize's graph is not simplified yet
