"""Pass 2: StableHLO ops -> the core op set of graph.py.

Each handler follows the op's definition in the StableHLO spec. Anything else is refused with
the op's name and the user's source line (UnsupportedError)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser import ir
from . import complex_split, indexing, narrow, windows
from .conv import convolution
from .dtypes import E8M0, NARROW_INTS
from .graph import BITS, FLOATS, Graph, Node, broadcast, const, ew, np_dtype, transpose
from .ops import BY_HLO
from .rng import rng_bit_generator
from .special import FUNCTIONS as SPECIAL_FUNCTIONS, expand as expand_special, mulhi64

SUPPORTED_TYPES = {"i1", "i8", "i16", "i32", "i64", "ui8", "ui16", "ui32", "ui64",
                   "f16", "bf16", "f32", "f64"} | FLOATS  # FLOATS: with the fp8 types


class Legalizer:
    def __init__(self) -> None:
        self.env: dict[int, Node] = {}

    def value(self, v: ir.Value) -> Node:
        return self.env[id(v)]

    def run(self, fn: ir.Function) -> Graph:
        params = []
        for i, a in enumerate(fn.args):
            if complex_split.is_complex(a.type):  # interleaved in memory: a real [..., 2] param
                p, self.env[id(a)] = complex_split.split_param(i, tuple(a.type.shape), a.type.element, fn.loc)
                params.append(p)
                continue
            shape, dt = _tensor(a.type, "func.func", _argument(fn, i, a))
            p = Node("param", [], shape, narrow.storage(a.type.element, dt), {"index": i}, fn.loc)
            params.append(p)
            self.env[id(a)] = narrow.load(p, a.type.element, fn.loc)
        outputs: list[Node] = []
        for op in fn.body.ops:
            if op.name == "func.return":
                outputs = [complex_split.interleave(x, op.loc) if isinstance(x, complex_split.Pair)
                           else narrow.store(x, getattr(v.type, "element", ""), op.loc)
                           for x, v in ((self.value(v), v) for v in op.operands)]
                break
            self.op(op)
        return Graph(params, outputs)

    def op(self, op: ir.Operation) -> None:
        if complex_split.touches_complex(op):  # complex values become (re, im) pairs of real nodes
            for r, n in zip(op.results, complex_split.legalize_op(self, op)):
                self.env[id(r)] = n
            return
        dialect, _, name = op.name.partition(".")
        handler: Callable | None = None
        if dialect in ("stablehlo", "chlo", "mhlo"):
            if name in BY_HLO:
                handler = Legalizer._elementwise
            elif dialect == "chlo" and name in SPECIAL_FUNCTIONS:
                handler = Legalizer._special
            elif dialect == "chlo" and name.startswith("broadcast_") and \
                    (name[len("broadcast_"):] in BY_HLO or name[len("broadcast_"):] in SPECIAL_FUNCTIONS
                     or name in ("broadcast_compare", "broadcast_select")):
                handler = Legalizer._broadcasting
            else:
                handler = getattr(Legalizer, "_" + name, None)
        if handler is None:
            raise UnsupportedError("operation is not supported by tt-xla", op.name, op.loc)
        if name == "convolution" and any(getattr(v.type, "element", None) == "i1" for v in op.operands):
            # A boolean product is an OR of ANDs; the matrix engine would sum them.
            raise UnsupportedError(f"{name} of booleans (i1)", op.name, op.loc)
        for r in op.results:  # every result must be a tensor of a supported element type
            _tensor(r.type, op.name, op.loc)
        if narrow.touches(op):  # int4/uint4, e8m0: computed wider, brought back after each op
            results = narrow.legalize_op(self, op, lambda: _as_list(handler(self, op)))
        else:
            results = handler(self, op)
        if isinstance(results, Node):
            results = [results]
        for r, n in zip(op.results, results):
            n.loc = n.loc or op.loc
            self.env[id(r)] = n

    # ------------------------------------------------------------------ helpers
    def _ins(self, op: ir.Operation) -> list[Node]:
        for v in op.operands:
            _tensor(v.type, op.name, op.loc)
        return [self.value(v) for v in op.operands]

    def _result(self, op: ir.Operation, i: int = 0) -> tuple[tuple[int, ...], str]:
        return _tensor(op.results[i].type, op.name, op.loc)

    # ------------------------------------------------------------------ elementwise
    def _elementwise(self, op: ir.Operation, ins: list[Node] | None = None, name: str | None = None) -> Node:
        """Any op with a row in the op table (ops.py): the row says which operand types it
        takes and which attributes it keeps."""
        name = name or op.name.split(".", 1)[1]
        row = BY_HLO[name]
        ins = self._ins(op) if ins is None else ins
        shape, dt = self._result(op)
        src = ins[0].dtype
        if (row.operands == "int" and src in FLOATS) or (row.operands == "float" and src not in FLOATS):
            raise UnsupportedError(f"{name} on {src}", op.name, op.loc)
        attrs = {}
        for k in row.hlo_attrs:
            if k not in op.attributes:
                raise UnsupportedError(f"{name} without its {k} attribute", op.name, op.loc)
            attrs[k] = int(_int(op.attributes[k]))
        return Node(row.name, ins, shape, dt, attrs, op.loc)

    def _broadcasting(self, op: ir.Operation) -> Node:
        """chlo.broadcast_<op>: the operands are broadcast to the result's shape (a lower-rank
        operand by `broadcast_dimensions`, else aligned to the trailing dims; size-1 dims
        expand, as in numpy), then it is <op>."""
        shape, _ = self._result(op)
        given = op.attributes.get("broadcast_dimensions")
        ins = []
        for x in self._ins(op):
            lower = len(x.shape) < len(shape)
            dims = _ints(given) if lower and given is not None else \
                tuple(range(len(shape) - len(x.shape), len(shape)))
            if len(dims) != len(x.shape) or any(x.shape[j] not in (1, shape[d]) for j, d in enumerate(dims)):
                raise UnsupportedError(f"operand of shape {x.shape} does not broadcast to {shape} "
                                       f"by dims {dims}", op.name, op.loc)
            ins.append(broadcast(x, shape, dims, op.loc))
        inner = op.name.split(".", 1)[1][len("broadcast_"):]
        if inner in SPECIAL_FUNCTIONS:
            return self._special(op, ins, inner)
        if inner == "select":
            return self._select(op, ins)
        return self._compare(op, ins) if inner == "compare" else self._elementwise(op, ins, inner)

    def _special(self, op: ir.Operation, ins: list[Node] | None = None, name: str | None = None) -> Node:
        """CHLO's special functions (lgamma, digamma, erf_inv, zeta, ...): special.py."""
        _, dt = self._result(op)
        return expand_special(name or op.name.split(".", 1)[1], self._ins(op) if ins is None else ins, dt, op.loc)

    def _square(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        return ew("mul", [x, x], loc=op.loc)

    def _mulhi(self, op: ir.Operation) -> Node:
        """chlo.mulhi: the high half of the double-width product (integers up to 32 bits, whose
        product fits a 64-bit lane; 64-bit ones by 32-bit halves, special.mulhi64)."""
        a, b = self._ins(op)
        _, dt = self._result(op)
        if dt in FLOATS or dt == "i1":
            raise UnsupportedError(f"mulhi on {dt} (integers only)", op.name, op.loc)
        if BITS[dt] == 64:
            return mulhi64(a, b, op.loc)
        wide = "ui64" if dt.startswith("u") else "i64"
        prod = ew("mul", [ew("convert", [a], dtype=wide, loc=op.loc), ew("convert", [b], dtype=wide, loc=op.loc)])
        shift = const(BITS[dt], wide, prod.shape, op.loc)
        return ew("convert", [ew("shr_a" if wide == "i64" else "shr_l", [prod, shift])], dtype=dt, loc=op.loc)

    def _constant_like(self, op: ir.Operation) -> Node:
        """chlo.constant_like: the scalar `value` splat to the operand's shape."""
        shape, dt = self._result(op)
        attr = op.attributes.get("value")
        if isinstance(attr, (ir.FloatAttr, ir.IntegerAttr)):
            value = attr.value
        elif isinstance(attr, ir.DenseElements) and attr.values.size == 1:
            value = attr.values.reshape(())
        else:
            raise UnsupportedError("constant_like without a scalar value", op.name, op.loc)
        return const(np.asarray(value).astype(np_dtype(dt)), dt, shape, op.loc)

    def _compare(self, op: ir.Operation, ins: list[Node] | None = None) -> Node:
        a, b = self._ins(op) if ins is None else ins
        direction = op.attributes["comparison_direction"].value
        ctype = op.attributes.get("compare_type")
        total = ctype is not None and ctype.value == "TOTALORDER"
        return Node("cmp", [a, b], a.shape, "i1", {"dir": direction, "total": total}, op.loc)

    def _select(self, op: ir.Operation, ins: list[Node] | None = None) -> Node:
        p, a, b = self._ins(op) if ins is None else ins
        if p.shape != a.shape:
            p = broadcast(p, a.shape, (), op.loc)
        return Node("select", [p, a, b], a.shape, a.dtype, {}, op.loc)

    def _clamp(self, op: ir.Operation) -> Node:
        lo, x, hi = self._ins(op)
        lo = lo if lo.shape == x.shape else broadcast(lo, x.shape, (), op.loc)
        hi = hi if hi.shape == x.shape else broadcast(hi, x.shape, (), op.loc)
        return ew("min", [ew("max", [x, lo], loc=op.loc), hi], loc=op.loc)

    def _convert(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        _, dt = self._result(op)
        return x if dt == x.dtype else Node("convert", [x], x.shape, dt, {}, op.loc)

    def _bitcast_convert(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        shape, dt = self._result(op)
        if "i1" in (dt, x.dtype):
            raise UnsupportedError("bitcast_convert of i1", op.name, op.loc)
        if shape == x.shape:
            return x if dt == x.dtype else Node("bitcast", [x], shape, dt, {}, op.loc)
        return _bitcast_resize(x, shape, dt, op.loc)

    def _optimization_barrier(self, op: ir.Operation) -> list[Node]:
        # Honoured: a computed operand goes through a "barrier" copy that fusion always stores
        # (fuse.plan), so its value is materialized and what reads the results reads that copy:
        # nothing is fused or CSE'd across (jax.checkpoint's recomputation stays a recomputation).
        # Parameters and constants are stored already.
        return [x if x.op in ("param", "const", "iota") else Node("copy", [x], x.shape, x.dtype, {"barrier": True}, op.loc)
                for x in self._ins(op)]

    def _rng_bit_generator(self, op: ir.Operation) -> list[Node]:
        (state,) = self._ins(op)
        shape, dt = self._result(op, 1)
        algorithm = op.attributes.get("rng_algorithm")
        return rng_bit_generator(algorithm.value if algorithm else "DEFAULT", state, shape, dt, op.loc)

    # ------------------------------------------------------------------ leaves
    def _constant(self, op: ir.Operation) -> Node:
        attr = op.attributes["value"]
        shape, dt = self._result(op)
        if getattr(attr, "is_splat", False) and all(shape):
            # parsed as one element: broadcast it, never materialize (it may be 1 GB of 1.0)
            return const(np.asarray(attr.splat_value).astype(np_dtype(dt)), dt, shape, op.loc)
        values = np.asarray(attr.values).astype(np_dtype(dt), copy=False).reshape(shape)
        flat = values.reshape(-1)
        if flat.size and (flat.view(np.uint8).reshape(flat.size, -1) == flat[:1].view(np.uint8)).all():
            return const(flat[0], dt, shape, op.loc)  # a splat: one scalar, broadcast (bitwise equal)
        return Node("const", [], shape, dt, {"value": values}, op.loc)

    def _iota(self, op: ir.Operation) -> Node:
        shape, dt = self._result(op)
        return Node("iota", [], shape, dt, {"dim": int(_int(op.attributes["iota_dimension"]))}, op.loc)

    # ------------------------------------------------------------------ views and movement
    def _broadcast_in_dim(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        shape, _ = self._result(op)
        return broadcast(x, shape, _ints(op.attributes["broadcast_dimensions"]), op.loc)

    def _reshape(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        shape, _ = self._result(op)
        return x if shape == x.shape else Node("reshape", [x], shape, x.dtype, {}, op.loc)

    def _transpose(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        perm = _ints(op.attributes["permutation"])
        shape, _ = self._result(op)
        if perm == tuple(range(len(perm))):
            return x
        return Node("transpose", [x], shape, x.dtype, {"perm": perm}, op.loc)

    def _slice(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        shape, _ = self._result(op)
        start = _ints(op.attributes["start_indices"])
        strides = _ints(op.attributes.get("strides", (1,) * len(start)))
        if shape == x.shape:
            return x
        return Node("slice", [x], shape, x.dtype, {"start": start, "strides": strides}, op.loc)

    def _reverse(self, op: ir.Operation) -> Node:
        (x,) = self._ins(op)
        dims = _ints(op.attributes["dimensions"])
        dims = tuple(d for d in dims if x.shape[d] > 1)
        return x if not dims else Node("reverse", [x], x.shape, x.dtype, {"dims": dims}, op.loc)

    def _concatenate(self, op: ir.Operation) -> Node:
        ins = self._ins(op)
        shape, dt = self._result(op)
        dim = int(_int(op.attributes["dimension"]))
        ins = [i for i in ins if i.shape[dim] > 0] or ins[:1]
        if len(ins) == 1:
            return ins[0]
        return Node("concat", ins, shape, dt, {"dim": dim}, op.loc)

    def _pad(self, op: ir.Operation) -> Node:
        x, v = self._ins(op)
        shape, dt = self._result(op)
        low = _ints(op.attributes["edge_padding_low"])
        interior = _ints(op.attributes["interior_padding"])
        return Node("pad", [x, v], shape, dt, {"low": low, "interior": interior}, op.loc)

    # ------------------------------------------------------------------ reductions, dot
    def _reduce(self, op: ir.Operation) -> list[Node]:
        ins = self._ins(op)
        n = len(ins) // 2
        axes = tuple(sorted(_ints(op.attributes["dimensions"])))
        graph = _region(op, self)
        results = []
        for i in range(n):
            shape, dt = self._result(op, i)
            results.append(Node("reduce", list(ins), shape, dt,
                                {"axes": axes, "body": graph, "index": i, "n": n}, op.loc))
        return results

    def _dot_general(self, op: ir.Operation) -> Node:
        a, b = self._ins(op)
        shape, dt = self._result(op)
        dn = op.attributes["dot_dimension_numbers"]
        f = dn.fields if hasattr(dn, "fields") else dn
        lb, rb, lc, rc = (list(_ints(f.get(k, ()))) for k in (
            "lhs_batching_dimensions", "rhs_batching_dimensions",
            "lhs_contracting_dimensions", "rhs_contracting_dimensions"))
        return product(a, b, lb, rb, lc, rc, shape, dt, op.loc)

    def _ragged_dot(self, op: ir.Operation) -> Node:
        """chlo.ragged_dot: one masked dot_general per group (ragged.py)."""
        from .ragged import ragged_dot
        return ragged_dot(*self._ins(op), _fields(op.attributes["ragged_dot_dimension_numbers"]),
                          *self._result(op), op.name, op.loc)

    def _dot(self, op: ir.Operation) -> Node:
        a, b = self._ins(op)
        shape, dt = self._result(op)
        return product(a, b, [], [], [len(a.shape) - 1], [0], shape, dt, op.loc)

    def _convolution(self, op: ir.Operation) -> Node:
        return convolution(op, *self._ins(op), *self._result(op))

    # ------------------------------------------------------------------ indexing (indexing.py)
    def _gather(self, op: ir.Operation) -> Node:
        x, idx = self._ins(op)
        shape, _ = self._result(op)
        return indexing.gather(x, idx, _fields(op.attributes["dimension_numbers"]),
                               _ints(op.attributes["slice_sizes"]), shape, op.loc)

    def _scatter(self, op: ir.Operation) -> Node | list[Node]:
        ins = self._ins(op)
        if len(ins) != 3:
            n = (len(ins) - 1) // 2
            return indexing.scatter_many(ins[:n], ins[n], ins[n + 1:], _fields(op.attributes["scatter_dimension_numbers"]),
                                         _region(op, self), op.loc)
        return indexing.scatter(*ins, _fields(op.attributes["scatter_dimension_numbers"]), _region(op, self),
                                op.loc)

    def _dynamic_slice(self, op: ir.Operation) -> Node:
        x, *starts = self._ins(op)
        return indexing.dynamic_slice(x, starts, _ints(op.attributes["slice_sizes"]), op.loc)

    def _dynamic_update_slice(self, op: ir.Operation) -> Node:
        x, upd, *starts = self._ins(op)
        return indexing.dynamic_update_slice(x, upd, starts, op.loc)

    def _sort(self, op: ir.Operation) -> list[Node]:
        """One `sort` node per result (each kernel sorts the row's permutation and writes its
        operand; results nobody reads are never computed). Sorting is always stable."""
        ins = self._ins(op)
        dim = int(_int(op.attributes.get("dimension", -1)))
        dim = dim % len(ins[0].shape) if ins[0].shape else 0
        body = _region(op, self)
        if not ins[0].shape:
            return ins
        return [Node("sort", list(ins), x.shape, x.dtype, {"dim": dim, "index": i, "body": body}, op.loc)
                for i, x in enumerate(ins)]

    def _top_k(self, op: ir.Operation) -> list[Node]:
        """chlo.top_k: a stable sort of (x, its positions) along the last dim by value, greatest
        first (total order: NaN above +inf, +0 above -0), and the first k of each row."""
        (x,) = self._ins(op)
        (vshape, _), (ishape, idt) = self._result(op, 0), self._result(op, 1)
        last = len(x.shape) - 1
        pos = Node("iota", [], x.shape, idt, {"dim": last}, op.loc)
        a, b, ia, ib = (Node("param", [], (), dt, {"index": i}, op.loc) for i, dt in enumerate((x.dtype, x.dtype, idt, idt)))
        gt = Node("cmp", [a, b], (), "i1", {"dir": "GT", "total": x.dtype in FLOATS}, op.loc)
        body = Graph([a, b, ia, ib], [gt])
        out = []
        for i, (src, shape) in enumerate(((x, vshape), (pos, ishape))):
            s = Node("sort", [x, pos], x.shape, src.dtype, {"dim": last, "index": i, "body": body}, op.loc)
            out.append(s if shape == x.shape else Node("slice", [s], shape, src.dtype,
                                                       {"start": (0,) * len(shape), "strides": (1,) * len(shape)}, op.loc))
        return out

    # ------------------------------------------------------------------ windows (windows.py)
    def _window_attrs(self, op: ir.Operation, rank: int) -> tuple:
        a = op.attributes
        wd = _ints(a["window_dimensions"])
        st = _ints(a["window_strides"]) if "window_strides" in a else (1,) * rank
        bd = _ints(a["base_dilations"]) if "base_dilations" in a else (1,) * rank
        wdil = _ints(a["window_dilations"]) if "window_dilations" in a else (1,) * rank
        pad = np.asarray(a["padding"].values, dtype=np.int64).reshape(rank, 2) if "padding" in a else \
            np.zeros((rank, 2), np.int64)
        return wd, st, bd, wdil, pad

    def _reduce_window(self, op: ir.Operation) -> list[Node]:
        ins = self._ins(op)
        n = len(ins) // 2
        wd, st, bd, wdil, pad = self._window_attrs(op, len(ins[0].shape))
        shapes = [self._result(op, i)[0] for i in range(n)]
        return windows.reduce_window(ins[:n], ins[n:], _region(op, self), shapes, wd, st, bd, wdil, pad, op.loc)

    def _select_and_scatter(self, op: ir.Operation) -> Node:
        x, source, init = self._ins(op)
        wd, st, _, _, pad = self._window_attrs(op, len(x.shape))
        return windows.select_and_scatter(x, source, init, _region(op, self, 0), _region(op, self, 1), wd, st, pad,
                                          op.loc)


def dot_general(a: Node, b: Node, lb: list[int], rb: list[int], lc: list[int], rc: list[int],
                shape: tuple[int, ...], dt: str, loc: object) -> Node:
    """A dot_general as the core "dot": batch dims lb/rb, contracting dims lc/rc."""
    # Canonical operand layouts, lhs [batch, free, contracting] and rhs [batch, contracting,
    # free]: each group is then one run of dims the matrix engine can stride through (the
    # transposes are views; fusion copies only when a group's strides do not merge).
    lf = [d for d in range(len(a.shape)) if d not in lb + lc]
    rf = [d for d in range(len(b.shape)) if d not in rb + rc]
    a = transpose(a, lb + lf + lc, loc)
    b = transpose(b, rb + rc + rf, loc)
    nb, nc = len(lb), len(lc)
    attrs = {"lhs_batching_dimensions": tuple(range(nb)), "rhs_batching_dimensions": tuple(range(nb)),
             "lhs_contracting_dimensions": tuple(range(nb + len(lf), nb + len(lf) + nc)),
             "rhs_contracting_dimensions": tuple(range(nb, nb + nc))}
    return Node("dot", [a, b], shape, dt, attrs, loc)


def product(a: Node, b: Node, lb: list[int], rb: list[int], lc: list[int], rc: list[int],
            shape: tuple[int, ...], dt: str, loc: object) -> Node:
    """A dot_general whose result type may differ from its operands', as XLA allows: a boolean
    product is an OR of ANDs (XLA's PRED dot: an i32 count of true terms, != 0; into a wider
    result, the operands are converted first); integers into a float result are multiplied and
    summed in f32 (f64 for f64) and rounded once."""
    if a.dtype == "i1" or b.dtype == "i1":
        wide = "i32" if dt == "i1" else dt
    elif dt in FLOATS and a.dtype not in FLOATS:
        wide = "f64" if dt == "f64" else "f32"
    else:
        return dot_general(a, b, lb, rb, lc, rc, shape, dt, loc)
    a, b = (x if x.dtype == wide else Node("convert", [x], x.shape, wide, {}, loc) for x in (a, b))
    d = dot_general(a, b, lb, rb, lc, rc, shape, wide, loc)
    if dt == "i1":
        return Node("cmp", [d, const(0, wide, shape, loc)], shape, "i1", {"dir": "NE", "total": False}, loc)
    return d if dt == wide else Node("convert", [d], shape, dt, {}, loc)


def _fields(dn: object) -> dict:
    return dn.fields if hasattr(dn, "fields") else dn  # type: ignore[return-value]


def _captured(region: ir.Region) -> list:
    """Every operand of the ops in `region`, nested regions included."""
    out = []
    for block in region.blocks:
        for bop in block.ops:
            out += bop.operands
            for r in bop.regions:
                out += _captured(r)
    return out


def _region(op: ir.Operation, outer: Legalizer, which: int = 0) -> Graph:
    """An op's scalar region (a reduce's or scatter's body, a function of its block arguments)
    legalized into its own scalar Graph; the kernels emit it as straight-line code. It may use
    scalar constants of the enclosing function (jax hoists them out of the region)."""
    block = op.regions[which].blocks[0]
    body = Legalizer()
    body.env = {}
    for v in _captured(op.regions[which]):  # only what the body reads: the outer env is the whole program
        got = outer.env.get(id(v))
        if got is not None and all(x.op == "const" and x.shape == () for x in complex_split.flat([got])):
            body.env[id(v)] = got
    params, values = [], []
    for i, a in enumerate(block.args):
        shape, dt = (a.type.shape, "f32") if complex_split.is_complex(a.type) else _tensor(a.type, op.name, op.loc)
        p = Node("param", [], shape, dt, {"index": i}, op.loc)
        params.append(p)
    params, values = complex_split.region_params(params, [a.type for a in block.args], op.loc)
    for a, v in zip(block.args, values):
        body.env[id(a)] = v
    outs: list[Node] = []
    for bop in block.ops:
        if any(id(v) not in body.env for v in bop.operands):
            # Valid StableHLO (regions may capture), but a region here is a scalar function of
            # its arguments and the function's scalar constants alone.
            raise UnsupportedError("a region using a value defined outside it (other than a scalar "
                                   "constant)", op.name, op.loc)
        if bop.name in ("stablehlo.return", "func.return", "mhlo.return"):
            outs = complex_split.flat([body.value(v) for v in bop.operands])
            break
        body.op(bop)
    return Graph(params, outs)




def _argument(fn: ir.Function, i: int, a: ir.Value) -> str:
    """Where a function argument is, for errors: no op wrote it, so name it (jax puts the
    Python parameter's name in the argument's loc) and its position when the text has one."""
    loc = a.loc or ir.Location()
    where = f" at {loc.file}:{loc.line}:{loc.col}" if loc.file else ""
    named = f" '{loc.name}'" if loc.name else ""
    return f"argument {i}{named} ({a.name}) of @{fn.name}{where}"


_TENSORS: dict[ir.TensorType, tuple[tuple[int, ...], str]] = {}  # supported types met -> _tensor's answer


def _tensor(t: object, opname: str, loc: object) -> tuple[tuple[int, ...], str]:
    """A supported tensor type's shape and the element type the graph computes it in."""
    known = _TENSORS.get(t) if type(t) is ir.TensorType else None  # (most calls: a few types, met often)
    if known is not None:
        return known
    if not isinstance(t, ir.TensorType):
        raise UnsupportedError(f"values of type {t} are not supported", opname, loc)
    if any(d is None for d in t.shape):
        raise UnsupportedError(f"dynamic shape {t} is not supported", opname, loc)
    if t.element not in SUPPORTED_TYPES and t.element not in NARROW_INTS and t.element != E8M0:
        raise UnsupportedError(f"element type {t.element} is not supported", opname, loc)
    known = tuple(int(d) for d in t.shape), "f32" if t.element == E8M0 else NARROW_INTS.get(t.element, t.element)
    if len(_TENSORS) < 4096:
        _TENSORS[t] = known
    return known


def _as_list(r: Node | list[Node]) -> list[Node]:
    return [r] if isinstance(r, Node) else list(r)


def _int(v: object) -> int:
    return v.value if isinstance(v, ir.IntegerAttr) else int(v)  # type: ignore[arg-type]


def _ints(v: object) -> tuple[int, ...]:
    if isinstance(v, ir.DenseElements):
        return tuple(int(x) for x in np.asarray(v.values).reshape(-1))
    return tuple(_int(x) for x in v)  # type: ignore[union-attr]


def legalize(fn: ir.Function) -> Graph:
    return Legalizer().run(fn)


def _bitcast_resize(x: Node, shape: tuple[int, ...], dt: str, loc: object) -> Node:
    """bitcast_convert between widths, little-endian, from shifts, masks and an OR-reduction:
    a wide element is split along a new last dim, or the last dim is packed into one."""
    wi, wo = BITS[x.dtype], BITS[dt]
    ui, uo = f"ui{wi}", f"ui{wo}"

    def as_uint(n: Node, u: str) -> Node:
        return n if n.dtype == u else Node("bitcast", [n], n.shape, u, {}, loc)

    if wo < wi:  # split: out[..., k] = bits k*wo .. of x
        u = broadcast(as_uint(x, ui), shape, tuple(range(len(x.shape))), loc)
        shift = ew("mul", [Node("iota", [], shape, ui, {"dim": len(shape) - 1}, loc), const(wo, ui)])
        part = Node("convert", [ew("shr_l", [u, shift])], shape, uo, {}, loc)
        return part if dt == uo else Node("bitcast", [part], shape, dt, {}, loc)
    u = Node("convert", [as_uint(x, ui)], x.shape, uo, {}, loc)
    shift = ew("mul", [Node("iota", [], x.shape, uo, {"dim": len(x.shape) - 1}, loc), const(wi, uo)])
    parts = ew("shl", [u, shift])
    a, b = (Node("param", [], (), uo, {"index": i}, loc) for i in range(2))
    body = Graph([a, b], [Node("or", [a, b], (), uo, {}, loc)])
    packed = Node("reduce", [parts, const(0, uo)], shape, uo,
                  {"axes": (len(x.shape) - 1,), "body": body, "index": 0, "n": 1}, loc)
    return packed if dt == uo else Node("bitcast", [packed], shape, dt, {}, loc)
