"""The compiler's core IR: a DAG of single-result nodes over a small op set.

Op set (tinygrad-sized on purpose):
  leaves       param, const, iota
  elementwise  the rows of the op table (ops.py): arithmetic, math, bitwise, cmp, select,
               convert, bitcast, ...
  views        broadcast, reshape, transpose, slice, reverse        (index maps, never compute)
  movement     concat, pad                                          (write regions of an output)
  reductions   reduce (one result of a possibly variadic reduce, body is a scalar Graph)
  matrix       dot (dot_general dimension numbers)
Element types are MLIR spellings ('f32', 'bf16', 'i1', 'ui32', ...). Values of bf16/f16 type are
computed in f32 and rounded after every inexact op, as XLA does on CPU.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dtypes import BITS, FLOATS, INTS, SIGNED, UNSIGNED  # noqa: F401  (re-exported)
from .ops import OPS, result_dtype

# The elementwise op sets, derived from the op table (ops.py: one row per op)
UNARY = {name for name, op in OPS.items() if op.arity == 1}
BINARY = {name for name, op in OPS.items() if op.arity == 2}
ELEMENTWISE = set(OPS)
VIEWS = {"broadcast", "reshape", "transpose", "slice", "reverse", "windows"}  # windows: windows.py
# ops whose f32 result is exact in any float width (no rounding needed for bf16/f16)
EXACT = {name for name, op in OPS.items() if op.exact}

_ids = itertools.count()


@dataclass(eq=False)
class Node:
    op: str
    inputs: list["Node"]
    shape: tuple[int, ...]
    dtype: str
    attrs: dict[str, Any] = field(default_factory=dict)
    loc: Any = None
    id: int = field(default_factory=_ids.__next__)  # (the counter's own method: no Python frame per node)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * itemsize(self.dtype)

    def __repr__(self) -> str:
        ins = ",".join(f"%{i.id}" for i in self.inputs)
        return f"%{self.id}={self.op}({ins}):{self.dtype}{list(self.shape)}"


@dataclass(eq=False)
class Graph:
    params: list[Node]
    outputs: list[Node]

    def nodes(self) -> list[Node]:
        """All nodes reachable from the outputs, in a topological order (inputs first)."""
        return toposort(self.outputs, self.params)


def toposort(roots: list[Node], extra: list[Node] = ()) -> list[Node]:
    """`extra`, then every node the roots reach, inputs first: depth first, inputs in order."""
    order: list[Node] = []
    seen: set[int] = set()
    for p in extra:
        if p.id not in seen:
            seen.add(p.id)
            order.append(p)
    for r in roots:
        if r.id in seen:
            continue
        stack = [(r, iter(r.inputs))]  # a node and its inputs not yet looked at
        while stack:
            n, rest = stack[-1]
            for c in rest:
                if c.id not in seen:
                    stack.append((c, iter(c.inputs)))
                    break
            else:
                stack.pop()
                if n.id not in seen:
                    seen.add(n.id)
                    order.append(n)
    return order


def users(nodes: list[Node]) -> dict[int, list[Node]]:
    out: dict[int, list[Node]] = {n.id: [] for n in nodes}
    for n in nodes:
        for i in n.inputs:
            out.setdefault(i.id, []).append(n)
    return out


def scalar_const(n: Node) -> np.ndarray | None:
    """The value of a scalar constant, seen through broadcasts of it (else None)."""
    while n.op == "broadcast":
        n = n.inputs[0]
    return n.attrs["value"] if n.op == "const" and n.shape == () else None


def itemsize(dtype: str) -> int:
    return 1 if dtype == "i1" else BITS[dtype] // 8


def np_dtype(dtype: str) -> np.dtype:
    from ..hlo_parser.ir import numpy_dtype
    return numpy_dtype(dtype)


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


# --------------------------------------------------------------------------- builder helpers
def const(value: Any, dtype: str, shape: tuple[int, ...] = (), loc: Any = None) -> Node:
    arr = np.asarray(value, dtype=np_dtype(dtype))
    if shape and arr.ndim == 0:
        return broadcast(Node("const", [], (), dtype, {"value": arr}, loc), shape, ())
    return Node("const", [], tuple(arr.shape), dtype, {"value": arr}, loc)


def broadcast(x: Node, shape: tuple[int, ...], dims: tuple[int, ...], loc: Any = None) -> Node:
    if tuple(x.shape) == tuple(shape) and tuple(dims) == tuple(range(len(shape))):
        return x
    return Node("broadcast", [x], tuple(shape), x.dtype, {"dims": tuple(dims)}, loc or x.loc)


def transpose(x: Node, perm: list[int], loc: Any = None) -> Node:
    if list(perm) == list(range(len(perm))):
        return x
    return Node("transpose", [x], tuple(x.shape[p] for p in perm), x.dtype, {"perm": tuple(perm)}, loc or x.loc)


def ew(op: str, inputs: list[Node], dtype: str | None = None, loc: Any = None, **attrs: Any) -> Node:
    """An elementwise node; scalar-shaped inputs are broadcast to the common shape."""
    shape = max((i.shape for i in inputs), key=len)
    ins = [i if i.shape == shape else broadcast(i, shape, ()) for i in inputs]
    dt = dtype or result_dtype(op, [i.dtype for i in inputs])
    return Node(op, ins, shape, dt, dict(attrs), loc or inputs[-1].loc)
