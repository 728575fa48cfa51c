"""A kernel's structural key, computed before lowering: two fusion kernels with equal keys lower
to the same loop IR and C (up to the kernel's name and the graph nodes its operands bind), so
the second takes the first's lowering, C and cost figures instead of recomputing them. Repeated
layers repeat kernels: in a 2-layer transformer's value_and_grad, 60 of its 121.

The key is what lowering reads: the fused nodes (op, shape, element type, attributes, which
inputs they take) in the order the kernel's walk meets them, numbered by that order so that
sharing is kept (x + x is not x + y), down to the stored nodes it reads, of which it sees only
the shape, element type, that they are stored, and whether they are bfp8 weights; the plan's
fields (kind, iteration shape, destination and extra results with their offsets and strides,
reads); and the target's SRAM per core and cores. A node whose attributes hold a value this
module cannot spell gives no key: that kernel is lowered on its own.
"""
from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from . import loopir as L
from .fuse import Kernel, memoryless
from .graph import Graph, Node

BIG_CONST = 64  # elements: a bigger constant value enters a key as a digest of its bytes


class _NoKey(Exception):
    """An attribute value with no spelling in a key."""


def _value(v: Any) -> Any:
    """An attribute value as plain, exactly comparable data (-0.0 and NaNs told apart)."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return ("f", struct.pack("<d", v))
    if isinstance(v, (tuple, list)):
        return (type(v).__name__,) + tuple(_value(x) for x in v)
    if isinstance(v, np.ndarray) or isinstance(v, np.generic):
        a = np.asarray(v)
        data = a.tobytes()
        if a.size > BIG_CONST:
            import hashlib
            data = hashlib.blake2b(data, digest_size=20).digest()
        return ("nd", a.dtype.str, a.shape, data)
    if isinstance(v, Graph):
        return graph_key(v)
    if isinstance(v, dict):
        return ("d",) + tuple((k, _value(x)) for k, x in sorted(v.items()))
    raise _NoKey(type(v).__name__)


def graph_key(g: Graph) -> tuple:
    """A region's (reduce, sort, scan body's) whole structure."""
    pos: dict[int, int] = {}
    rows = []
    for n in g.nodes():
        pos[n.id] = len(pos)
        rows.append((n.op, n.shape, n.dtype, _attrs(n), tuple(pos[i.id] for i in n.inputs)))
    return ("g", tuple(rows), tuple(pos[p.id] for p in g.params), tuple(pos[o.id] for o in g.outputs))


def _attrs(n: Node) -> tuple:
    if not n.attrs:  # (most nodes)
        return ()
    return tuple((k, _value(v)) for k, v in sorted(n.attrs.items()))


def kernel_key(k: Kernel, mat: set[int], sram_budget: int, ncores: int, bfp8: frozenset[int],
               attrs_of: dict[int, tuple]) -> tuple[tuple, list[Node]] | None:
    """(the key, the kernel's nodes in key order), or None when a node's attributes have no
    spelling. `attrs_of` memoizes node attributes across the kernels of one compile (a stored
    node is read by several)."""
    starts = [k.root, k.dest.src, *(a.src for a in k.extra), *k.extra_roots] + \
        ([k.epilogue] if k.epilogue is not None else [])
    open_ = {n.id for n in starts}
    pos: dict[int, int] = {}
    order: list[Node] = []
    rows: list[tuple] = []
    try:
        for s in starts:
            _walk(s, mat, open_, pos, order, rows, bfp8, attrs_of)
        for r in k.reads or ():
            _walk(r, mat, open_, pos, order, rows, bfp8, attrs_of)
    except _NoKey:
        return None
    at = pos.__getitem__
    plan = (k.kind, k.shape, at(k.root.id), None if k.epilogue is None else at(k.epilogue.id),
            tuple((at(a.src.id), a.offset, a.strides) for a in (k.dest, *k.extra)), tuple(at(r.id) for r in k.extra_roots),
            None if k.reads is None else tuple(at(r.id) for r in k.reads))
    return (plan, tuple(rows), sram_budget, ncores), order


def _walk(top: Node, mat: set[int], open_: set[int], pos: dict[int, int], order: list[Node], rows: list[tuple],
          bfp8: frozenset[int], attrs_of: dict[int, tuple]) -> None:
    """Number the nodes under `top` in post order (inputs first). A stored node is a leaf
    (lowering reads it by DMA, knowing its shape and type) unless the kernel computes it (a
    start), it is a reshape or broadcast (fusion's same-order test looks through those) or its
    value is known without memory (an iota, a scalar constant: lowering writes it as code)."""
    if top.id in pos:
        return
    stack = [_entry(top, mat, open_)]
    while stack:
        n, inside, rest = stack[-1]
        for c in rest:
            if c.id not in pos:
                stack.append(_entry(c, mat, open_))
                break
        else:
            stack.pop()
            if n.id in pos:
                continue
            pos[n.id] = len(order)
            order.append(n)
            if inside:
                a = attrs_of.get(n.id)
                if a is None:
                    a = attrs_of[n.id] = _attrs(n)
                rows.append((n.op, n.shape, n.dtype, n.id in mat, n.id in bfp8, a, tuple([pos[c.id] for c in n.inputs])))
            else:
                rows.append((n.op, n.shape, n.dtype, n.id in bfp8))


def _entry(n: Node, mat: set[int], open_: set[int]) -> tuple:
    """(n, whether the kernel looks inside it, its inputs to walk) for _walk's stack (a module
    function: a closure made per _walk call cost more than the call)."""
    inside = n.id in open_ or n.id not in mat or n.op in _SEEN_THROUGH or memoryless(n)
    return n, inside, iter(n.inputs) if inside else _NONE


_SEEN_THROUGH = frozenset(("reshape", "broadcast"))  # (fusion's same-order test looks through them)
_NONE = iter(())  # (an exhausted iterator: shared by every leaf)


class ServedKernel(L.LoopKernel):
    """A kernel served by its key (`rebind`; kernel_store.py's loads) with its cost figures: its
    body, which only printing (`format`), profiling and the suite's key check read, is built by
    `make_body` on first use, not for every served kernel of every compile."""

    def __init__(self, name: str, operands: list[L.Operand], cbs: list[L.CircularBuffer],
                 make_body: Callable[[], list[L.UOp]], work_items: int, ops: list[str], kind: str,
                 cost: Any):
        self._make_body = make_body
        super().__init__(name, operands, cbs, None, work_items, ops, kind)  # type: ignore[arg-type]
        self.__dict__["cost"] = cost  # (a cached property: its value)

    @property  # type: ignore[override]
    def body(self) -> list[L.UOp]:
        body = self.__dict__.get("_body")
        if body is None:
            body = self.__dict__["_body"] = self._make_body()
        return body

    @body.setter
    def body(self, value: list[L.UOp] | None) -> None:
        self.__dict__["_body"] = value


def rebind(lk: L.LoopKernel, then: list[Node], now: list[Node], name: str) -> L.LoopKernel:
    """The lowering `lk` of a kernel whose nodes in key order were `then`, for the kernel with
    the same key whose nodes are `now`, named `name`: its operands bind the matching nodes of
    `now`; its buffers, body and cost figures are the same."""
    at = {n.id: i for i, n in enumerate(then)}
    # (built directly: dataclasses.replace costs several times as much, for every served kernel)
    operands = [L.Operand(o.index, o.ctype, o.writes, now[at[o.node.id]]) for o in lk.operands]
    by_index = {o.index: o for o in operands}
    return ServedKernel(name, operands, lk.cbs, lambda: [_rebound(u, by_index) for u in lk.body],
                        lk.work_items, lk.ops, lk.kind, lk.cost)


def binds_keyed(lk: L.LoopKernel, then: list[Node]) -> bool:
    """Whether every operand of `lk` binds a node of its key (what `rebind` maps)."""
    ids = {n.id for n in then}
    return all(o.node is not None and o.node.id in ids for o in lk.operands)


def _rebound(u: L.UOp, ops: dict[int, L.Operand]) -> L.UOp:
    if isinstance(u, (L.DmaRead, L.DmaWrite, L.DmaPrefetch)):
        return replace(u, operand=ops[u.operand.index])
    if isinstance(u, L.MatMul):
        return replace(u, a=ops[u.a.index], b=ops[u.b.index])
    return u
