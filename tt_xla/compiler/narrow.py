"""Element types computed in a wider type and brought back to their own after every op:
int4/uint4 (ml_dtypes' int4/uint4; MLIR i4/ui4) in bytes, f8E8M0FNU (ml_dtypes' float8_e8m0fnu,
a power of two 2^(b - 127) per byte, 0xFF NaN) in f32. legalize sees their compute type
(dtypes.NARROW_INTS, E8M0); this module converts at the function boundary and after each op.

A 4-bit value is computed in the byte type of its signedness (i4 in i8, sign-extended; ui4 in ui8,
0..15) and brought back into its 4 bits after every op that can leave them (arithmetic, shifts,
bitwise not, converts, products), as XLA:CPU computes in 4 bits: wrapping for integer results,
saturating for a float converted to it. In memory a function argument or result holds one value
per byte in its low nibble, as numpy stores ml_dtypes.int4 (-1 is 0x0F): arguments are
sign-extended on read (any upper bits ignored), results stored as the nibble. Intermediates are
ordinary bytes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .dtypes import BITS as BITS_OF, E8M0, FLOATS, NARROW_INTS
from .graph import Node, const, ew

if TYPE_CHECKING:
    from .legalize import Legalizer

# ops that only move, select or compare values already in range: nothing to wrap
_KEEPS_RANGE = {"reshape", "transpose", "broadcast_in_dim", "slice", "reverse", "concatenate", "pad",
                "select", "dynamic_slice", "dynamic_update_slice", "gather", "scatter", "sort", "maximum",
                "minimum", "clamp", "optimization_barrier", "copy", "constant", "compare", "and", "or",
                "xor", "broadcast_select", "reduce_window", "select_and_scatter", "get_tuple_element",
                "tuple", "real_dynamic_slice"}


def _is_narrow(t: object) -> bool:
    return isinstance(t, ir.TensorType) and (t.element in NARROW_INTS or t.element == E8M0)


def storage(element: str, dt: str) -> str:
    """The type a function argument of `element` is bound as (dt: its compute type)."""
    return "ui8" if element == E8M0 else dt


def touches(op: ir.Operation) -> bool:
    return any(_is_narrow(v.type) for v in list(op.operands) + list(op.results))


def wrap(x: Node, element: str, loc: Any) -> Node:
    """x (a byte type) brought into the 4 bits of `element`: i4 sign-extends its low nibble, ui4
    keeps it."""
    if element == "ui4":
        return ew("and", [x, const(15, x.dtype, (), loc)], loc=loc)
    four = const(4, x.dtype, (), loc)
    return ew("shr_a", [ew("shl", [x, four], loc=loc), four], loc=loc)


def load(p: Node, element: str, loc: Any) -> Node:
    """A function argument as computed: an int4's nibble sign- or zero-extended, an e8m0 byte
    decoded."""
    if element == E8M0:
        return _e8m0_decode(p, loc)
    return wrap(p, element, loc) if element in NARROW_INTS else p


def store(x: Node, element: str, loc: Any) -> Node:
    """A function result as numpy holds it: an int4's low nibble, an e8m0's byte."""
    if element == E8M0:
        return _e8m0_encode(x, loc)
    return ew("and", [x, const(15, x.dtype, (), loc)], loc=loc) if element in NARROW_INTS else x


# f8E8M0FNU, as XLA:CPU and ml_dtypes convert (checked over every f32 bit pattern class): a
# float that is not > 0 (zero, negative, NaN) and anything from 2^127 * 1.5 up is NaN (0xFF); a
# normal f32 takes its exponent, rounded up when its mantissa is at least half; a subnormal one
# is 2^-127 (byte 0) up to and including 2^-127 exactly, 2^-126 (byte 1) above.
def _e8m0_encode(x: Node, loc: Any) -> Node:
    u = lambda v: const(v, "ui32", (), loc)  # noqa: E731
    bits = Node("bitcast", [x], x.shape, "ui32", {}, loc)
    e = ew("shr_l", [bits, u(23)], loc=loc)
    m = ew("and", [bits, u(0x7FFFFF)], loc=loc)
    half = u(0x400000)
    up = ew("select", [ew("cmp", [e, u(0)], loc=loc, dir="EQ", total=False),
                       ew("cmp", [m, half], loc=loc, dir="GT", total=False),
                       ew("cmp", [m, half], loc=loc, dir="GE", total=False)], loc=loc)
    code = ew("min", [ew("add", [e, ew("convert", [up], dtype="ui32", loc=loc)], loc=loc), u(255)], loc=loc)
    # x > 0 on the bits (a subnormal is > 0 here, not flushed to zero as float compares do)
    positive = ew("cmp", [Node("bitcast", [x], x.shape, "i32", {}, loc), const(0, "i32", (), loc)], loc=loc,
                  dir="GT", total=False)
    code = ew("select", [positive, code, u(255)], loc=loc)
    return ew("convert", [code], dtype="ui8", loc=loc)


def _e8m0_decode(b: Node, loc: Any) -> Node:
    """byte -> f32: 0xFF NaN, 0 the subnormal 2^-127, else the exponent bits b << 23."""
    wide = ew("convert", [b], dtype="ui32", loc=loc)
    bits = ew("select", [ew("cmp", [wide, const(0, "ui32", (), loc)], loc=loc, dir="EQ", total=False),
                         const(0x400000, "ui32", (), loc),
                         ew("select", [ew("cmp", [wide, const(255, "ui32", (), loc)], loc=loc, dir="EQ", total=False),
                                       const(0x7FC00000, "ui32", (), loc),
                                       ew("shl", [wide, const(23, "ui32", (), loc)], loc=loc)], loc=loc)], loc=loc)
    return Node("bitcast", [bits], bits.shape, "f32", {}, loc)


def e8m0_round(x: Node, loc: Any) -> Node:
    """An f32 rounded to the nearest e8m0 value (as f32)."""
    return _e8m0_decode(_e8m0_encode(x, loc), loc)


def legalize_op(lg: "Legalizer", op: ir.Operation, build: Callable[[], list[Node]]) -> list[Node]:
    """An op on i4/ui4: legalize's own nodes (`build`, computed in bytes) corrected to 4-bit
    semantics: the ops whose byte result differs from the 4-bit one are built here, every result
    that may leave its 4 bits is wrapped."""
    name = op.name.partition(".")[2]
    loc = op.loc
    ins = [lg.env[id(v)] for v in op.operands]
    el_in = [getattr(v.type, "element", None) for v in op.operands]
    el_out = [getattr(r.type, "element", None) for r in op.results]
    if E8M0 in el_in + el_out:
        return _e8m0_op(op, name, ins, el_in, el_out, build)
    if name == "bitcast_convert":
        if set(el_in + el_out) <= set(NARROW_INTS):
            dt = NARROW_INTS[el_out[0]]
            return [wrap(Node("bitcast", [ins[0]], ins[0].shape, dt, {}, loc), el_out[0], loc)]
        raise UnsupportedError(f"bitcast_convert between {el_in[0]} and {el_out[0]} (4-bit values are "
                               "not packed here)", op.name, loc)
    results = build()
    if el_in and el_in[0] in NARROW_INTS:
        x = ins[0]
        nib = ew("and", [x, const(15, x.dtype, (), loc)], loc=loc)  # the value's 4 bits, 0..15
        # (popcnt is XLA:CPU's on the sign-extended byte, as legalize builds it: popcnt(-1) = 8
        # wrapped to -8)
        if name == "count_leading_zeros":
            results = [ew("sub", [ew("clz", [nib], loc=loc), const(4, x.dtype, (), loc)], loc=loc)]
        elif name == "shift_right_logical":
            results = [ew("shr_l", [nib, ins[1]], loc=loc)]
        elif name == "shift_right_arithmetic" and el_in[0] == "ui4":  # on the bits, sign bit 3
            signed = wrap(Node("bitcast", [x], x.shape, "i8", {}, loc), "i4", loc)
            amount = Node("bitcast", [ins[1]], ins[1].shape, "i8", {}, loc)
            results = [Node("bitcast", [ew("shr_a", [signed, amount], loc=loc)], x.shape, "ui8", {}, loc)]
    if name == "convert" and el_out[0] in NARROW_INTS and (el_in[0] in FLOATS):
        # a float saturates to the 4-bit range (NaN is 0): the byte convert saturated to the
        # byte's, clamp it to the nibble's
        lo, hi = (-8, 7) if el_out[0] == "i4" else (0, 15)
        n = results[0]
        return [ew("min", [ew("max", [n, const(lo, n.dtype, (), loc)], loc=loc), const(hi, n.dtype, (), loc)],
                   loc=loc)]
    if name in _KEEPS_RANGE:
        return results
    return [wrap(n, el, loc) if el in NARROW_INTS else n for n, el in zip(results, el_out)]


def _e8m0_op(op: ir.Operation, name: str, ins: list[Node], el_in: list, el_out: list,
             build: Callable[[], list[Node]]) -> list[Node]:
    """An op on f8E8M0FNU values (f32 inside): every e8m0 result rounded to the format, except
    those of ops that only move or compare values."""
    if name == "bitcast_convert":
        if el_in[0] != el_out[0] and BITS_OF.get(el_in[0] if el_out[0] == E8M0 else el_out[0]) == 8:
            if el_out[0] == E8M0:  # a byte's bits as e8m0: decode them
                return [_e8m0_decode(Node("bitcast", [ins[0]], ins[0].shape, "ui8", {}, op.loc), op.loc)]
            return [Node("bitcast", [_e8m0_encode(ins[0], op.loc)], ins[0].shape, NARROW_INTS.get(el_out[0], el_out[0]),
                         {}, op.loc)]
        raise UnsupportedError(f"bitcast_convert between {el_in[0]} and {el_out[0]}", op.name, op.loc)
    if name == "convert" and el_out[0] == E8M0 and el_in[0] == "f64":
        # f64 -> f32 -> e8m0 would round twice (an f64 just under a tie would round up)
        raise UnsupportedError("convert from f64 to f8E8M0FNU", op.name, op.loc)
    results = build()
    if name == "convert" and el_out[0] == E8M0 and results[0].op == "convert":
        # bf16/f16 -> f32 here is the value itself: codegen must not use the f32 it was rounded from
        results[0].attrs["rounded"] = True
    if name in ("maximum", "minimum", "clamp"):
        # XLA:CPU compares with denormals read as zero: 2^-127 (the f32 subnormal 0x400000) out of
        # max(2^-127, 2^-127) is a zero, which is NaN in e8m0
        return [ew("select", [ew("cmp", [Node("bitcast", [n], n.shape, "ui32", {}, op.loc),
                                         const(0x400000, "ui32", (), op.loc)], loc=op.loc, dir="EQ", total=False),
                              const(np.nan, "f32", (), op.loc), n], loc=op.loc) for n in results]
    if name in _KEEPS_RANGE - {"and", "or", "xor"}:
        return results
    return [e8m0_round(n, op.loc) if el == E8M0 else n for n, el in zip(results, el_out)]
