"""int4 and uint4 (ml_dtypes' int4/uint4; MLIR i4/ui4), legalized onto bytes.

A 4-bit value is computed in the byte type of its signedness (i4 in i8, sign-extended; ui4 in ui8,
0..15) and brought back into its 4 bits after every op that can leave them (arithmetic, shifts,
bitwise not, converts, products), as XLA:CPU computes in 4 bits: wrapping for integer results,
saturating for a float converted to it. In memory a function argument or result holds one value
per byte in its low nibble, as numpy stores ml_dtypes.int4 (-1 is 0x0F): arguments are
sign-extended on read (any upper bits ignored), results stored as the nibble. Intermediates are
ordinary bytes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .dtypes import FLOATS, NARROW_INTS
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
    return isinstance(t, ir.TensorType) and t.element in NARROW_INTS


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
    """A function argument as computed: its nibble sign- or zero-extended."""
    return wrap(p, element, loc) if element in NARROW_INTS else p


def store(x: Node, element: str, loc: Any) -> Node:
    """A function result as numpy's int4/uint4 hold it: the value's low nibble."""
    return ew("and", [x, const(15, x.dtype, (), loc)], loc=loc) if element in NARROW_INTS else x


def legalize_op(lg: "Legalizer", op: ir.Operation, build: Callable[[], list[Node]]) -> list[Node]:
    """An op on i4/ui4: legalize's own nodes (`build`, computed in bytes) corrected to 4-bit
    semantics: the ops whose byte result differs from the 4-bit one are built here, every result
    that may leave its 4 bits is wrapped."""
    name = op.name.partition(".")[2]
    loc = op.loc
    ins = [lg.env[id(v)] for v in op.operands]
    el_in = [getattr(v.type, "element", None) for v in op.operands]
    el_out = [getattr(r.type, "element", None) for r in op.results]
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
