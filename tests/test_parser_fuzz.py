"""Parser fuzzing (bounded; the long run is `tools/fuzz_parser.py --cases 100000`): mutations of
real module text either parse or raise ParseError with a position, never an internal error."""
from __future__ import annotations

import importlib.util
import pathlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location(
    "fuzz_parser", pathlib.Path(__file__).resolve().parent.parent / "tools" / "fuzz_parser.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)
TEXTS = fuzz.corpus()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(0, 2**32 - 1))
def test_mutations_parse_or_raise_parse_error(seed):
    rng = random.Random(seed)
    fuzz.check(fuzz.mutate(rng.choice(TEXTS), rng))


def test_check_catches_internal_errors(monkeypatch):
    """The fuzz oracle can fail: an internal error surfacing as ParseError is reported."""
    import tt_xla.hlo_parser.parser as p

    def boom(self, *a, **k):
        raise KeyError("x")

    monkeypatch.setattr(p.Parser, "_p_compare", boom)
    with pytest.raises(AssertionError, match="internal parser error"):
        fuzz.check(next(t for t in TEXTS if "stablehlo.compare  " in t))


# Inputs the fuzzer found (each was an internal error or a hang before it was fixed).
FOUND = [
    # a window padding value past int64 (OverflowError in numpy)
    "func.func @main(%a: tensor<1x4x4x1xf32>, %b: tensor<3x3x1x1xf32>) -> tensor<1x4x4x1xf32> {\n"
    "  %0 = stablehlo.convolution(%a, %b) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], "
    "window = {pad = [[18446744073709551615, 1], [1, 1]]} : (tensor<1x4x4x1xf32>, tensor<3x3x1x1xf32>) "
    "-> tensor<1x4x4x1xf32>\n  return %0 : tensor<1x4x4x1xf32>\n}",
    # an integer type of absurd width in an attribute (OverflowError computing its range)
    'func.func @main() -> () {\n  "x.y"() {a = 1 : i' + "9" * 5000 + '} : () -> ()\n  return\n}',
    'func.func @main() -> () {\n  "x.y"() {a = 1 : i99999999} : () -> ()\n  return\n}',
    # integers of 5000 digits where a result count, a location line or a conv spatial dim goes
    "func.func @main() -> () {\n  %0:" + "9" * 5000 + ' = "x.y"() : () -> ()\n  return\n}',
    'func.func @main() -> () {\n  "x.y"() : () -> () loc("f.py":' + "9" * 5000 + ':1)\n  return\n}',
    # a signed hex element (a negative bit pattern)
    'func.func @main() -> () {\n  %0 = stablehlo.constant dense<-0x00168282702> : tensor<4x8xf32>\n  return\n}',
    'func.func @main() -> () {\n  %0 = stablehlo.constant dense<[-0x1, 2]> : tensor<2xi8>\n  return\n}',
    # a message quoting an opaque type with line breaks in it (the error must stay one line)
    'func.func @main(%a: tensor<2xf32>) -> () {\n  %0 = "x.y"(%a) : !tensor<\n2\nx5x1xf32\n>\n  return\n}',
]


@pytest.mark.parametrize("text", FOUND)
def test_found_cases(text):
    fuzz.check(text)
