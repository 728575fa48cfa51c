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

from .access import Access
from .dtypes import CTYPE, F8, NARROW_FLOATS, VTYPE, f8_args
from .fuse import access_of
from .graph import EXACT, FLOATS, SIGNED, UNSIGNED, VIEWS, Node
from .ops import rounding
from .ops import cost as op_cost, render as render_op

PRELUDE = (Path(__file__).parent / "prelude.c").read_text()


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
    if dt in F8:
        return f"k_f8_ld({ref}, {f8_args(dt)})"
    return {"bf16": f"k_bf16_ld({ref})", "f16": f"(float)({ref})", "i1": f"(int)({ref})"}.get(dt, ref)


def store_expr(dt: str, v: str) -> str:
    if dt in F8:
        return f"k_f8_st({rounding(dt, v)}, {f8_args(dt)})"
    return {"bf16": f"k_bf16_st(k_round_bf16({v}))", "f16": f"(_Float16)({v})", "i1": f"(uint8_t)({v})"}.get(dt, v)


def op_expr(n: Node, a: list[str]) -> str:
    """C expression for elementwise node n over input expressions a (value types): its row of
    the op table renders it."""
    return render_op(n, a)


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
        cost = 0
        if n.id in self.leaf_of:
            leaf = self.leaf_of[n.id]
            expr = self.leaf_value(leaf, self.index_of[n.id])
        else:
            args = [self.value(i) for i in n.inputs]
            src = n.inputs[0] if n.inputs else None
            if n.op == "convert" and n.dtype == "f32" and src.id in self.raw and not n.attrs.get("rounded"):
                args = [self.raw[src.id]]  # the op's f32 value, as XLA:CPU (see below)
            expr = op_expr(n, args)
            cost = op_cost(n.op)
            self.ops += cost
            if n.dtype in NARROW_FLOATS and n.op not in EXACT and n.op != "cmp" and \
                    (n.op != "convert" or src.dtype == "f32"):
                # round after every op (StableHLO semantics), keeping the f32 value for converts
                raw = f"{self.prefix}r{self.count}"
                self.count += 1
                self.define(raw, "float", args[0] if n.op == 'convert' else expr, cost)
                cost = 0
                if n.dtype not in F8 and (n.op != "convert" or n.attrs.get("computed")):
                    # XLA:CPU computes a bf16/f16 op in f32 and drops its own round trip when
                    # the result is converted to f32 (CPU JAX's (a + b).astype(f32) is the f32
                    # sum; a decomposition's final convert is such an op), but a user's
                    # f32 -> bf16 -> f32 round trip rounds; never through fp8
                    self.raw[n.id] = raw
                expr = rounding(n.dtype, raw)
        name = f"{self.prefix}{self.count}"
        self.count += 1
        self.define(name, VTYPE[n.dtype], expr, cost)
        self.names[n.id] = name
        return name

    def define(self, name: str, ctype: str, expr: str, cost: int = 0) -> None:
        """One named value costing `cost` vector instructions (the loop-IR lowering overrides
        this to emit IR ops)."""
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
                   stop: frozenset[int] = frozenset(), *,
                   through_root_view: bool = False) -> list[tuple[Node, Access]]:
    """(node as referenced, its access over that node's shape) for every leaf of the expression.
    Nodes in `stop` have values the caller provides. A stored view at the root is read from its
    own storage unless `through_root_view`: only the loop kernel that evaluates that view (or
    a piece of it) reads through it to its input, as the plan's `Kernel.reads` say. Any other reader must read
    the stored node, or memory planning (which follows those reads) may already have reused the
    input's storage."""
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
            a = access_of(n, mat - {n.id} if top and through_root_view and n.op in VIEWS else mat)
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
