"""Metamorphic tests of the parser and the printer over the corpus in tests/data/corpus (exported
from JAX programs by tools/export_corpus.py, plus hand-written stablehlo-opt-style text):

    parse(text) == parse(print(parse(text)))
    parse(text) == parse(text re-flowed)   for three re-flowings: every whitespace run one space,
                                           a line break between every two tokens, and a comment
                                           between every two tokens.

"==" is structural (ops, operand wiring, types, attributes by value and bits, regions,
locations); value names do not matter. Also: sub-byte and small-float literals, splats kept
unmaterialized, size bounds, the per-pass ir_text dumps.
"""
from __future__ import annotations

import pathlib
import re
import struct
import tracemalloc

import ml_dtypes
import numpy as np
import pytest

from tt_xla.hlo_parser import ParseError, ir, parse_module, print_module
from tt_xla.hlo_parser.lexer import split_tokens

CORPUS = sorted((pathlib.Path(__file__).parent / "data" / "corpus").glob("*.mlir"))


# ----------------------------------------------------------------------------- structure
def _tokens(text: str) -> tuple[str, ...]:
    """Raw text kept by the parser (opaque attributes and types) compared token by token."""
    return tuple(atoms(text))


def canon_type(t):
    if isinstance(t, ir.OpaqueType):
        return ("opaque", _tokens(t.text))
    if isinstance(t, ir.TupleType):
        return ("tuple", tuple(canon_type(x) for x in t.types))
    if isinstance(t, ir.FunctionType):
        return ("fn", tuple(map(canon_type, t.inputs)), tuple(map(canon_type, t.results)))
    return t


def canon_attr(v):
    if isinstance(v, ir.DenseElements):
        values = np.ascontiguousarray(v.values)
        return ("dense", str(v.type), values.dtype.str, values.tobytes())
    if isinstance(v, ir.StructAttr):
        return ("struct", v.name, tuple((k, canon_attr(x)) for k, x in sorted(v.fields.items())))
    if isinstance(v, ir.FloatAttr):
        return ("float", struct.pack("<d", v.value), v.type)
    if isinstance(v, ir.OpaqueAttr):
        return ("opaque", _tokens(v.text))
    if isinstance(v, ir.TypeAttr):
        return ("type", canon_type(v.type))
    if isinstance(v, dict):
        return ("dict", tuple((k, canon_attr(x)) for k, x in sorted(v.items())))
    if isinstance(v, list):
        return ("list", tuple(canon_attr(x) for x in v))
    if isinstance(v, tuple):
        return ("array", getattr(v, "element", None), tuple(canon_attr(x) for x in v))
    if isinstance(v, float):
        return ("pyfloat", struct.pack("<d", v))
    return (type(v).__name__, v)


def structure(m: ir.Module):
    ids: dict[int, int] = {}

    def define(v: ir.Value):
        ids[id(v)] = len(ids)
        return canon_type(v.type)

    def block(b: ir.Block, args: list[ir.Value]):
        return (tuple(define(a) for a in args), tuple(op_(o) for o in b.ops))

    def op_(o: ir.Operation):
        operands = tuple(ids[id(v)] for v in o.operands)
        regions = tuple(tuple(block(b, b.args) for b in r.blocks) for r in o.regions)
        results = tuple(define(r) for r in o.results)
        return (o.name, operands, results, canon_attr(o.attributes), regions, o.loc)

    fns = []
    for f in m.functions.values():
        ids.clear()
        fns.append((f.name, f.visibility, tuple(map(canon_type, f.result_types)),
                    canon_attr(f.arg_attrs), canon_attr(f.result_attrs), f.loc, block(f.body, f.args)))
    return (m.name, canon_attr(m.attributes), tuple(fns))


# ----------------------------------------------------------------------------- re-flowing
def atoms(text: str) -> list[str]:
    return split_tokens(text)


REFLOW = {
    "spaces": " ",
    "newlines": "\n",
    "comments": " // a comment: ) > ] } \" loc(\n",
}


@pytest.fixture(scope="module", params=CORPUS, ids=[p.name for p in CORPUS])
def corpus_module(request):
    text = request.param.read_text()
    return text, parse_module(text)


def test_corpus_is_there():
    names = {p.name for p in CORPUS}
    assert len(names) >= 20 and "handwritten_pretty_forms.mlir" in names


def test_print_then_parse_is_identity(corpus_module):
    text, m = corpus_module
    printed = print_module(m)
    again = parse_module(printed)
    assert structure(again) == structure(m)
    assert print_module(again) == printed  # the printer is a fixed point


@pytest.mark.parametrize("how", sorted(REFLOW))
def test_reflowed_text_parses_the_same(corpus_module, how):
    text, m = corpus_module
    reflowed = REFLOW[how].join(atoms(text))
    if how != "spaces":
        assert "\n" in reflowed and reflowed.count("\n") >= len(atoms(text)) - 1
    assert structure(parse_module(reflowed)) == structure(m)


def test_structure_sees_differences():
    """The comparison can fail: a changed attribute, operand order, type or location shows."""
    text = (pathlib.Path(__file__).parent / "data" / "corpus" / "jax_mlp.mlir").read_text()
    base = structure(parse_module(text))
    assert "contracting_dims = [1] x [0]" in text
    assert structure(parse_module(text.replace("contracting_dims = [1] x [0]", "contracting_dims = [0] x [1]", 1))) != base
    assert structure(parse_module(text.replace("stablehlo.add", "stablehlo.subtract", 1))) != base
    m = parse_module(text)
    op = next(o for o in m.main.body.ops if o.name == "stablehlo.dot_general")
    op.operands.reverse()
    assert structure(m) != base


def test_printed_text_is_valid_mlir():
    """MLIR's own parser (and verifier) accepts what we print for every module jax exported."""
    pytest.importorskip("jax")
    from jax._src.interpreters import mlir as jmlir
    from jax._src.lib.mlir import ir as mir

    for path in CORPUS:
        if not path.name.startswith("jax_"):
            continue
        printed = print_module(parse_module(path.read_text()))
        with jmlir.make_ir_context():
            mir.Module.parse(printed)


# ----------------------------------------------------------------------------- the issue's examples
def test_dot_general_and_convolution_across_lines():
    m = parse_module((CORPUS[0].parent / "handwritten_line_breaks.mlir").read_text())
    dot, conv = m.main.body.ops[:2]
    assert dot.name == "stablehlo.dot_general" and len(dot.results) == 1
    dn = dot.attributes["dot_dimension_numbers"].fields
    assert dn["lhs_batching_dimensions"] == (0,) and dn["rhs_contracting_dimensions"] == (1,)
    assert conv.attributes["window_strides"] == (1, 1)
    assert conv.attributes["padding"].values.tolist() == [[1, 1], [1, 1]]
    assert conv.attributes["feature_group_count"] == 1


def test_chlo_top_k():
    m = parse_module("func.func @main(%x: tensor<16xf32>) -> tensor<2xf32> {\n"
                     "  %0:2 = chlo.top_k(%x, k = 2) : tensor<16xf32> -> (tensor<2xf32>, tensor<2xi32>)\n"
                     "  return %0#0 : tensor<2xf32>\n}")
    op = m.main.body.ops[0]
    assert op.name == "chlo.top_k" and [v.name for v in op.operands] == ["%x"]
    assert op.attributes["k"].value == 2 and [str(r.type) for r in op.results] == ["tensor<2xf32>", "tensor<2xi32>"]


# ----------------------------------------------------------------------------- element types
def _consts(name: str) -> list[ir.DenseElements]:
    m = parse_module((CORPUS[0].parent / name).read_text())
    return [op.attributes["value"] for op in m.main.body.ops if op.name == "stablehlo.constant"]


def test_sub_byte_and_small_float_literals():
    c = _consts("handwritten_small_types.mlir")
    assert c[0].values.dtype == ml_dtypes.int4 and c[0].values.astype(int).tolist() == [-8, -1, 0, 7]
    assert c[1].values.astype(int).tolist() == [0, 1, 14, 15] and c[1].values.dtype == ml_dtypes.uint4
    assert c[2].values.astype(int).tolist() == [-2, 1] and c[3].values.astype(int).tolist() == [0, 3]
    assert c[4] == c[0] and c[5] == c[0]  # hex bytes and hex elements: the same values
    assert c[6].values.astype(float).tolist() == [0.5, -6.0, 1.5, 0.0]
    assert c[7].values.astype(float).tolist() == [0.5, -6.0, 1.0, 0.0]
    assert c[8].values.astype(float).tolist() == [7.5, -0.125]
    assert c[9].values.astype(float).tolist() == [28.0, -0.0625]
    assert c[10].values.astype(float).tolist() == [1.0, 0.25, 128.0]
    assert c[11].values.astype(float).tolist() == [448.0, -0.5]
    assert c[12].values.astype(float).tolist() == [57344.0, float(np.array([0x7C], np.uint8).view(ml_dtypes.float8_e5m2)[0])]
    assert c[18].is_splat and c[18].values.astype(int).tolist() == [3] * 8
    assert c[19].is_splat and c[19].values.astype(int).tolist() == [12] * 8
    assert c[21].values.tolist() == [-1, -1] and c[22] == c[21]  # signless: the bit pattern


@pytest.mark.parametrize("body, message", [
    ("dense<16> : tensor<2xi4>", "out of range for i4"),
    ("dense<-9> : tensor<2xi4>", "out of range for i4"),
    ("dense<-1> : tensor<2xui4>", "out of range for ui4"),
    ("dense<[0x10, 0]> : tensor<2xi4>", "too wide for i4"),
    ('dense<"0x1000"> : tensor<2xi4>', "wider than i4's 4 bits"),
    ("dense<[0x10]> : tensor<1xf4E2M1FN>", "too wide for f4E2M1FN"),
    ("dense<4> : tensor<2xi2>", "out of range for i2"),
])
def test_small_type_literals_out_of_range(body, message):
    with pytest.raises(ParseError, match=re.escape(message)) as e:
        parse_module(f"func.func @main() -> () {{\n  %0 = stablehlo.constant {body}\n  return\n}}")
    assert e.value.line == 2


@pytest.mark.parametrize("elem", ["ui2", "f4E2M1FN", "f6E3M2FN"])  # fp8: test_fp8.py; i4, e8m0: test_int4.py, test_e8m0.py
def test_compiler_refuses_small_types_clearly(elem):
    from tt_xla.compiler import compile_text
    from tt_xla.errors import UnsupportedError

    text = (f"func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {{\n"
            f"  %c = stablehlo.constant dense<1> : tensor<4x{elem}>\n"
            f"  %f = stablehlo.convert %c : (tensor<4x{elem}>) -> tensor<4xf32>\n"
            f"  %r = stablehlo.add %x, %f : tensor<4xf32>\n  return %r : tensor<4xf32>\n}}")
    with pytest.raises(UnsupportedError, match=f"element type {elem}") as e:
        compile_text(text, "small.mlir")
    assert "small.mlir" in str(e.value) or "stablehlo" in str(e.value)


# ----------------------------------------------------------------------------- bounded allocation
def test_splat_is_not_materialized():
    text = ("func.func @main(%x: tensor<268435456xf32>) -> tensor<268435456xf32> {\n"
            "  %c = stablehlo.constant dense<1.0> : tensor<268435456xf32>\n"
            "  %r = stablehlo.add %x, %c : tensor<268435456xf32>\n  return %r : tensor<268435456xf32>\n}")
    tracemalloc.start()
    try:
        m = parse_module(text)
        c = m.main.body.ops[0].attributes["value"]
        assert c.is_splat and float(c.splat_value) == 1.0 and c.values.shape == (268435456,)
        assert c.values.strides == (0,)  # a broadcast view, not 1 GiB
        from tt_xla.compiler.legalize import legalize
        from tt_xla.compiler.inline import inline_calls
        g = legalize(inline_calls(m))
        assert g.outputs[0].shape == (268435456,)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()
    printed = print_module(m)
    assert len(printed) < 4000 and structure(parse_module(printed)) == structure(m)


def test_huge_types_cost_nothing_to_parse():
    """Tensors bigger than the device are the verifier's to refuse; reading them costs the
    parser only what the text costs (a splat is one element, a wrong-sized literal is an error
    before anything is allocated)."""
    tracemalloc.start()
    try:
        m = parse_module("func.func @main() -> () {\n  %0 = stablehlo.constant dense<1.0> : "
                         "tensor<65536x65536x4xf32>\n  return\n}")
        assert m.main.body.ops[0].attributes["value"].is_splat
        with pytest.raises(ParseError, match="dense literal has shape"):
            parse_module("func.func @main() -> () {\n  %0 = stablehlo.constant dense<[1.0, 2.0]> : "
                         "tensor<65536x65536x4xf32>\n  return\n}")
        with pytest.raises(ParseError, match="hex dense literal has 8 bytes"):
            parse_module('func.func @main() -> () {\n  %0 = stablehlo.constant dense<"0x0000000000000000"> : '
                         "tensor<65536x65536x4xf32>\n  return\n}")
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("text, message", [
    ("%0 = stablehlo.constant dense<1.0> : tensor<99999999999999999999xf32>", "is too large"),
    ('%0 = "stablehlo.iota"() {iota_dimension = 99999999999999999999 : i64} : () -> tensor<4xi32>',
     "out of range for i64"),
    ("%0 = stablehlo.iota dim = " + "9" * 5000 + " : tensor<4xi32>", "integer literal too long"),
    ("%0 = stablehlo.constant dense<" + "9" * 5000 + "> : tensor<4xi32>", "too long"),
    ('%0 = "stablehlo.iota"() {iota_dimension = 1 : i8, x = 300 : i8} : () -> tensor<4xi32>', "out of range for i8"),
])
def test_absurd_sizes_are_refused(text, message):
    with pytest.raises(ParseError, match=re.escape(message)) as e:
        parse_module(f"func.func @main() -> () {{\n  {text}\n  return\n}}")
    assert e.value.line == 2


# ----------------------------------------------------------------------------- ir_text
def test_ir_text_every_stage():
    import tt_xla
    from tt_xla.compiler.stages import STAGES

    text = (CORPUS[0].parent / "jax_mlp.mlir").read_text()
    exe = tt_xla.compile(text)
    parsed = exe.ir_text("parsed")
    assert structure(parse_module(parsed)) == structure(parse_module(text))
    inlined = exe.ir_text("inlined")
    assert '"stablehlo.dot_general"' in inlined and "func.call" not in inlined
    legal = exe.ir_text("legalized")
    assert re.search(r"= dot\(%0, %1\) : f32\[4, 16\]", legal)
    assert "tanh(" in exe.ir_text("simplified") or "erf(" in exe.ir_text("simplified")
    final = exe.ir_text("optimized")
    assert "erf(" not in final and "tanh(" not in final  # decompose rewrote the transcendental
    sched = exe.ir_text("scheduled")
    assert "// kernels, in launch order" in sched and "kernel 0:" in sched and "[stored]" in sched
    assert len(STAGES) == 7
    with pytest.raises(ValueError, match="unknown stage"):
        exe.ir_text("nope")
