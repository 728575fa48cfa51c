"""Pass 8: code generation. Every kernel becomes a C function over a range of work items; the
program descriptor (ttrt_kernel.h) lists the launches with their operands and cost figures.

Inner loops are written so the host compiler vectorizes them: unit-stride or broadcast loads,
straight-line math, selects instead of branches, fixed-width lane accumulators for reductions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UnsupportedError
from .access import Access
from .fuse import access_of
from .ranges import float_const
from .graph import BITS, EXACT, FLOATS, INTS, SIGNED, UNSIGNED, VIEWS, Node

PRELUDE = (Path(__file__).parent / "prelude.c").read_text()

CTYPE = {"f32": "float", "f64": "double", "bf16": "uint16_t", "f16": "_Float16", "i1": "uint8_t",
         "i8": "int8_t", "i16": "int16_t", "i32": "int32_t", "i64": "int64_t", "ui8": "uint8_t",
         "ui16": "uint16_t", "ui32": "uint32_t", "ui64": "uint64_t"}
VTYPE = dict(CTYPE, bf16="float", f16="float", i1="int")
UTYPE = {"i8": "uint8_t", "i16": "uint16_t", "i32": "uint32_t", "i64": "uint64_t"}
CMP = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
LIBM = {"exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p", "tanh": "tanh",
        "erf": "erf", "sin": "sin", "cos": "cos", "tan": "tan", "cbrt": "cbrt", "atan": "atan",
        "exp2": "exp2", "round_away": "round"}


def literal(value: np.ndarray, dt: str) -> str:
    v = value.item() if hasattr(value, "item") else value
    if dt in FLOATS:
        v = float(v)
        suffix = "" if dt == "f64" else "f"
        if math.isnan(v):
            return "NAN" if dt != "f64" else "((double)NAN)"
        if math.isinf(v):
            return ("-" if v < 0 else "") + ("INFINITY" if dt != "f64" else "((double)INFINITY)")
        return f"({v.hex()}{suffix})" if v != 0 or not math.copysign(1, v) < 0 else f"(-0.0{suffix})"
    if dt == "i1":
        return "1" if v else "0"
    if dt in UNSIGNED:
        return f"(({CTYPE[dt]}){int(v)}ULL)"
    iv = int(v)
    if dt == "i64" and iv == -(2 ** 63):
        return "INT64_MIN"
    return f"(({CTYPE[dt]}){iv}LL)"


def load_expr(dt: str, ref: str) -> str:
    return {"bf16": f"k_bf16_ld({ref})", "f16": f"(float)({ref})", "i1": f"(int)({ref})"}.get(dt, ref)


def store_expr(dt: str, v: str) -> str:
    return {"bf16": f"k_bf16_st(k_round_bf16({v}))", "f16": f"(_Float16)({v})", "i1": f"(uint8_t)({v})"}.get(dt, v)


def rounding(dt: str, v: str) -> str:
    return {"bf16": f"k_round_bf16({v})", "f16": f"k_round_f16({v})"}.get(dt, v)


def _fsuffix(dt: str) -> str:
    return "" if dt == "f64" else "f"


def op_expr(n: Node, a: list[str]) -> str:
    """C expression for elementwise node n over input expressions a (value types)."""
    op, dt = n.op, n.dtype
    src = n.inputs[0].dtype if n.inputs else dt
    fl = dt in FLOATS
    d = dt == "f64"
    if op in ("add", "sub", "mul"):  # signed overflow wraps: kernels are built with -fwrapv
        sym = {"add": "+", "sub": "-", "mul": "*"}[op]
        return f"({VTYPE[dt]})({a[0]} {sym} {a[1]})"
    if op == "div":
        return f"({a[0]} / {a[1]})" if fl else f"k_{_ik(dt)}_div({a[0]}, {a[1]})"
    if op == "rem":
        return f"fmod{_fsuffix(dt)}({a[0]}, {a[1]})" if fl else f"k_{_ik(dt)}_rem({a[0]}, {a[1]})"
    if op in ("max", "min"):
        if fl and n.attrs.get("fast"):  # NaN in a propagates; used by guards in decompositions
            return f"({a[0]} < {a[1]} ? {a[1]} : {a[0]})" if op == "max" else f"({a[1]} < {a[0]} ? {a[1]} : {a[0]})"
        c = float_const(n.inputs[1])
        if fl and c is not None and not math.isnan(c) and (c != 0 or math.copysign(1, c) == (1 if op == "max" else -1)):
            # against a constant that is not the "wrong" zero: one compare, NaN in a kept
            return f"(!({a[0]} {'<=' if op == 'max' else '>='} {a[1]}) ? {a[0]} : {a[1]})"
        if fl:
            return f"k_{op}{'d' if d else 'f'}({a[0]}, {a[1]})"
        return f"({a[0]} {'>' if op == 'max' else '<'} {a[1]} ? {a[0]} : {a[1]})"
    if op == "fma":
        return f"fma{_fsuffix(dt)}({a[0]}, {a[1]}, {a[2]})"
    if op == "neg":
        return f"(-{a[0]})" if fl else f"({CTYPE[dt]})(-{a[0]})"
    if op == "abs":
        if fl:
            return f"fabs{_fsuffix(dt)}({a[0]})"
        return f"({a[0]} < 0 ? ({CTYPE[dt]})(-{a[0]}) : {a[0]})"
    if op in ("sqrt", "floor", "ceil", "trunc"):
        return f"{op}{_fsuffix(dt)}({a[0]})"
    if op == "round_even":
        return f"rint{_fsuffix(dt)}({a[0]})"
    if op == "sign":
        if fl:
            return f"k_sign{'d' if d else 'f'}({a[0]})"
        return f"({CTYPE[dt]})(({a[0]} > 0) - ({a[0]} < 0))"
    if op == "is_finite":
        return f"(({a[0]} - {a[0]}) == ({a[0]} - {a[0]}))"
    if op == "not":
        return f"({a[0]} ^ 1)" if dt == "i1" else f"({CTYPE[dt]})(~{a[0]})"
    if op in ("and", "or", "xor"):
        sym = {"and": "&", "or": "|", "xor": "^"}[op]
        return f"({VTYPE[dt]})({a[0]} {sym} {a[1]})"
    if op in ("shl", "shr_l", "shr_a"):
        bits = BITS[dt]
        u = UTYPE.get(dt, CTYPE[dt])
        oob = f"((uint64_t)({a[1]}) >= {bits}u)"
        if op == "shl":
            return f"({oob} ? ({CTYPE[dt]})0 : ({CTYPE[dt]})(({u}){a[0]} << {a[1]}))"
        if op == "shr_l":
            return f"({oob} ? ({CTYPE[dt]})0 : ({CTYPE[dt]})(({u}){a[0]} >> {a[1]}))"
        st = CTYPE[dt].replace("uint", "int")  # sign-fill by the top bit, also for unsigned types
        return f"({CTYPE[dt]})(({st}){a[0]} >> ({oob} ? {bits - 1} : {a[1]}))"
    if op == "popcnt":
        return f"({CTYPE[dt]})k_popcnt64((uint64_t)({UTYPE.get(dt, CTYPE[dt])}){a[0]})"
    if op == "clz":
        return f"({CTYPE[dt]})k_clz64((uint64_t)({UTYPE.get(dt, CTYPE[dt])}){a[0]}, {BITS[dt]})"
    if op == "cmp":
        x, y = a
        if n.attrs.get("total") and src in FLOATS:
            x, y = _total_key(src, x), _total_key(src, y)
        return f"({x} {CMP[n.attrs['dir']]} {y})"
    if op == "select":
        return f"({a[0]} ? {a[1]} : {a[2]})"
    if op == "copy":
        return a[0]
    if op == "convert":
        return convert_expr(src, dt, a[0], fast=n.attrs.get("fast", False))
    if op == "bitcast":
        return bitcast_expr(src, dt, a[0])
    if op in ("pow", "atan2"):
        return f"{op}{_fsuffix(dt)}({a[0]}, {a[1]})" if fl else _ipow(dt, a)
    if op in LIBM and fl:
        return f"{LIBM[op]}{_fsuffix(dt)}({a[0]})"
    if op == "logistic" and fl:
        return f"(1.0 / (1.0 + exp(-{a[0]})))"
    if op == "rsqrt" and fl:
        return f"(1.0 / sqrt({a[0]}))"
    raise UnsupportedError(f"{op} on {dt} is not supported", op, n.loc)




def _ipow(dt: str, a: list[str]) -> str:
    raise UnsupportedError(f"integer power on {dt} is not supported")


def _ik(dt: str) -> str:
    return dt.replace("ui", "u")


def _total_key(dt: str, x: str) -> str:
    if dt == "f64":
        return f"({{k_b64 t_; t_.f = {x}; t_.i ^ (int64_t)((uint64_t)(t_.i >> 63) >> 1);}})"
    return f"(__extension__({{k_b32 t_; t_.f = (float)({x}); t_.i ^ (int32_t)((uint32_t)(t_.i >> 31) >> 1);}}))"


def convert_expr(src: str, dt: str, x: str, fast: bool = False) -> str:
    if dt == "i1":
        return f"({x} != 0)"
    if src in FLOATS and dt in INTS:
        if fast:
            return f"({CTYPE[dt]})({x})"
        return f"k_{'d' if src == 'f64' else 'f'}2{_ik(dt).replace('i', 'i', 1)}({x})"
    if dt in ("bf16", "f16"):
        return f"(float)({x})" if fast else rounding(dt, f"(float)({x})")
    return f"({VTYPE[dt]})({x})"


def bitcast_expr(src: str, dt: str, x: str) -> str:
    if BITS[src] != BITS[dt]:
        raise UnsupportedError(f"bitcast from {src} to {dt}")
    if src in ("bf16", "f16") or dt in ("bf16", "f16"):  # via the 16 raw bits
        if src == "bf16":
            bits = f"(uint16_t)(__extension__({{k_b32 t_; t_.f = {x}; t_.u >> 16;}}))"
        elif src == "f16":
            bits = f"(__extension__({{union {{ _Float16 h; uint16_t u; }} t_; t_.h = (_Float16)({x}); t_.u;}}))"
        else:
            bits = f"(uint16_t)({x})"
        if dt == "bf16":
            return f"(__extension__({{k_b32 t_; t_.u = (uint32_t){bits} << 16; t_.f;}}))"
        if dt == "f16":
            return f"(__extension__({{union {{ _Float16 h; uint16_t u; }} t_; t_.u = {bits}; (float)t_.h;}}))"
        return f"({CTYPE[dt]}){bits}"
    if BITS[src] == 32:
        fld = {"f32": "f", "i32": "i", "ui32": "u"}
        return f"(__extension__({{k_b32 t_; t_.{fld[src]} = {x}; t_.{fld[dt]};}}))"
    if BITS[src] == 64:
        fld = {"f64": "f", "i64": "i", "ui64": "u"}
        return f"(__extension__({{k_b64 t_; t_.{fld[src]} = {x}; t_.{fld[dt]};}}))"
    return f"({CTYPE[dt]})({x})"  # 8/16-bit integers: same bits, C conversion wraps


# ----------------------------------------------------------------------------- emitter
@dataclass
class Leaf:
    acc: Access
    dt: str
    operand: int      # index into the kernel's operand pointers (-1: iota/scalar const)


class Emitter:
    """Straight-line C for an expression DAG at one iteration point. Leaves are read with index
    expressions the caller provides (one per Access); nodes are emitted once each."""

    def __init__(self, mat: set[int], index_of: dict[int, str], leaf_of: dict[int, Leaf],
                 lines: list[str], indent: str, prefix: str = "v"):
        self.prefix = prefix
        self.mat, self.index_of, self.leaf_of = mat, index_of, leaf_of
        self.lines, self.indent = lines, indent
        self.names: dict[int, str] = {}
        self.raw: dict[int, str] = {}
        self.ops = 0
        self.count = 0  # C names are numbered per kernel so equal programs give equal source

    def value(self, n: Node) -> str:
        if n.id in self.names:
            return self.names[n.id]
        if n.id in self.leaf_of:
            leaf = self.leaf_of[n.id]
            expr = self.leaf_value(leaf, self.index_of[n.id])
        else:
            args = [self.value(i) for i in n.inputs]
            src = n.inputs[0] if n.inputs else None
            if n.op == "convert" and n.dtype == "f32" and src.id in self.raw and not n.attrs.get("rounded"):
                args = [self.raw[src.id]]  # convert(convert(x: f32 -> bf16) -> f32) is x, as in XLA
            expr = op_expr(n, args)
            self.ops += 1
            if n.dtype in ("bf16", "f16") and n.op not in EXACT and n.op != "cmp" and \
                    (n.op != "convert" or src.dtype == "f32"):
                # round after every op (StableHLO semantics), keeping the f32 value for converts
                raw = f"{self.prefix}r{self.count}"
                self.count += 1
                self.define(raw, "float", args[0] if n.op == 'convert' else expr)
                self.raw[n.id] = raw
                expr = rounding(n.dtype, raw)
        name = f"{self.prefix}{self.count}"
        self.count += 1
        self.define(name, VTYPE[n.dtype], expr)
        self.names[n.id] = name
        return name

    def define(self, name: str, ctype: str, expr: str) -> None:
        """One named value (the loop-IR lowering overrides this to emit IR ops)."""
        self.lines.append(f"{self.indent}const {ctype} {name} = {expr};")

    @staticmethod
    def leaf_value(leaf: Leaf, index: str) -> str:
        src = leaf.acc.src
        if src.op == "const" and src.shape == ():
            return literal(src.attrs["value"], src.dtype)
        if src.op == "iota":
            return f"({VTYPE[leaf.dt]})({index})"
        return load_expr(leaf.dt, f"p{leaf.operand}[{index}]")


def collect_leaves(root: Node, is_root_computed: bool, mat: set[int],
                   stop: frozenset[int] = frozenset()) -> list[tuple[Node, Access]]:
    """(node as referenced, its access over that node's shape) for every leaf of the expression.
    Nodes in `stop` have values the caller provides."""
    out: list[tuple[Node, Access]] = []
    seen: set[int] = set(stop)

    def walk(n: Node, top: bool) -> None:
        if n.id in seen:
            return
        seen.add(n.id)
        computed = (top and is_root_computed) or (n.id not in mat and n.op not in VIEWS
                                                   and n.op not in ("iota", "const"))
        if computed and n.op not in VIEWS and n.op not in ("iota", "const", "param"):
            for i in n.inputs:
                walk(i, False)
        else:
            a = access_of(n, mat) if not (top and n.id in mat and n.op in VIEWS) else access_of(n, mat - {n.id})
            assert a is not None, n
            out.append((n, a))
    walk(root, True)
    return out


# ----------------------------------------------------------------------------- kernels
def _with_nan(expr: str, flag: str, dt: str) -> str:
    if dt not in FLOATS:
        return expr
    nan = "((double)NAN)" if dt == "f64" else "NAN"
    return f"({flag} ? {nan} : {expr})"


def _simple_combiner(body) -> tuple | None:
    """(combine(dt, acc, x) -> C, identity(dt) -> C) when the body is one associative op of its
    two params, else None."""
    if len(body.outputs) != 1:
        return None
    o = body.outputs[0]
    a, b = body.params
    if o.op not in ("add", "mul", "max", "min", "and", "or", "xor") or {i.id for i in o.inputs} != {a.id, b.id}:
        return None
    op = o.op

    def combine(dt: str, acc: str, x: str) -> str:
        dummy = Node(op, [o.inputs[0], o.inputs[1]], (), dt)
        return op_expr(dummy, [acc, x])

    def identity(dt: str) -> str:
        if op == "add" or op in ("or", "xor"):
            return literal(np.array(-0.0 if dt in FLOATS else 0), dt)
        if op == "mul":
            return literal(np.array(1), dt)
        if op == "and":
            return "1" if dt == "i1" else literal(np.array(-1), dt) if dt in SIGNED else f"(({CTYPE[dt]})~0ULL)"
        big = op == "min"
        if dt in FLOATS:
            return ("INFINITY" if big else "(-INFINITY)") if dt != "f64" else ("((double)INFINITY)" if big else "(-(double)INFINITY)")
        if dt == "i1":
            return "1" if big else "0"
        info = np.iinfo(np.dtype(CTYPE[dt].replace("_t", "")))
        return literal(np.array(info.max if big else info.min), dt)
    hot = None
    if op in ("max", "min") and o.dtype in FLOATS:
        fn = f"k_{op}z{'d' if o.dtype == 'f64' else 'f'}"
        hot = lambda acc, x: f"{fn}({acc}, {x})"
    return combine, identity, hot
