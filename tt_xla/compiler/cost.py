"""A kernel's cost figures, computed by walking its loop IR: what its cores will count when it runs.

    vector_ops    the `VectorOps` events the cores issue (tile-wide vector instructions)
    alu_ops       its `Alu` ops weighted by the op table's vector-instruction cost, per element
                  (what those events summarize: vector_ops ~ alu_ops / 1024, per block rounded up)
    dma_bytes     DRAM <-> SRAM bytes of its `DmaRead`/`DmaWrite`s and of the matrix engine's
                  packing (each `MatMul` reads its m x K block of A and K x n block of B once)
    matrix_tiles  32x32x32 tile products of its `MatMul`s (the engine's count per call)
    sram_bytes    per core: the end of its circular buffers (the engine's share included)

The figures are for the whole launch: the body is evaluated for every work item `it` at once
(numpy vectors over the items), ranges by their trip counts. A range whose body's figures do
not depend on its variable costs trip count x body; one whose do (a last, shorter piece; a
merge's search) is stepped through. Index expressions are the IR's own C expressions, parsed
here (`Expr`), evaluated lazily: only those a figure needs. Where the data decides a count (a
value a kernel loaded, an accumulator `Var`), the figure is an upper bound: `K_MIN(x, data)` is
x, a comparison on data is 1; a count with no such bound is a compiler bug (ValueError).
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from . import loopir as L

CELLS = 1 << 16  # values per numpy vector when a range is stepped through (bounds memory and time)


@dataclass(frozen=True)
class Figures:
    vector_ops: int = 0
    dma_bytes: int = 0
    matrix_tiles: int = 0
    sram_bytes: int = 0
    alu_ops: int = 0


class _Data:
    """A value only the data decides (a loaded element, an accumulator): unknown at compile time."""

    def __repr__(self) -> str:
        return "data"


DATA = _Data()
Value = Any  # an int, a numpy int64 vector over the work items, or DATA


# ----------------------------------------------------------------------------- C expressions
_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*(?:->\w+)?)|(<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>!~&|^?:(),]))")
_CAST = re.compile(r"\(\s*(?:const\s+)?(?:u?int(?:8|16|32|64)_t|int|long|unsigned|size_t)\s*\)")
_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, "<=": 7, ">": 7, ">=": 7,
           "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}


def _cdiv(a, b):
    """C's integer division (truncating), 0 where b is 0 (never a count the IR divides by)."""
    if type(a) is int and type(b) is int:
        return 0 if b == 0 else abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    if type(b) is int and b > 0:  # (most: a vector over the items by a constant)
        q = np.abs(a) // b
        return np.where(np.less(a, 0), -q, q)
    b_ = np.where(np.equal(b, 0), 1, b)
    q = np.abs(a) // np.abs(b_)
    return np.where(np.equal(b, 0), 0, np.where((np.asarray(a) < 0) != (np.asarray(b_) < 0), -q, q))


def _ints(f: Callable) -> Callable:
    return lambda a, b: np.asarray(f(a, b)).astype(np.int64)


_OPS: dict[str, Callable] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": _cdiv,
    "%": lambda a, b: a - _cdiv(a, b) * b,
    "<<": np.left_shift, ">>": np.right_shift, "&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor,
    "<": _ints(np.less), "<=": _ints(np.less_equal), ">": _ints(np.greater), ">=": _ints(np.greater_equal),
    "==": _ints(np.equal), "!=": _ints(np.not_equal),
    "&&": _ints(lambda a, b: np.logical_and(a, b)), "||": _ints(lambda a, b: np.logical_or(a, b)),
}
_BOOL = {"<", "<=", ">", ">=", "==", "!=", "&&", "||"}
_PY: dict[str, Callable] = {  # the same on Python ints (operator's: no Python frame per op)
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _cdiv,
    "%": lambda a, b: a - _cdiv(a, b) * b, "<": lambda a, b: int(a < b), "<=": lambda a, b: int(a <= b),
    ">": lambda a, b: int(a > b), ">=": lambda a, b: int(a >= b), "==": lambda a, b: int(a == b),
    "!=": lambda a, b: int(a != b), "&&": lambda a, b: int(bool(a) and bool(b)),
    "||": lambda a, b: int(bool(a) or bool(b)),
}


class Expr:
    """One C integer expression of the IR, compiled to a function of an environment (a name ->
    Value lookup). `names` are the variables it reads."""

    def __init__(self, text: str):
        self.text = text
        src = _CAST.sub(" ", text)
        self.toks: list[str] = []
        pos = 0
        while pos < len(src):
            m = _TOKEN.match(src, pos)
            if m is None or m.end() == pos:
                if src[pos:].strip() == "":
                    break
                raise ValueError(f"cost: cannot read {text!r} at {src[pos:]!r}")
            self.toks.append(m.group(1) or m.group(2) or m.group(3))
            pos = m.end()
        self.names: set[str] = set()
        self.at = 0
        self.fn = self._ternary()
        if self.at != len(self.toks):
            raise ValueError(f"cost: cannot read {text!r}")
        del self.toks

    def __call__(self, env: Callable[[str], Value]) -> Value:
        return self.fn(env)

    # precedence climbing: ternary > binary > unary > primary
    def _peek(self) -> str | None:
        return self.toks[self.at] if self.at < len(self.toks) else None

    def _take(self, want: str | None = None) -> str:
        t = self._peek()
        if t is None or (want is not None and t != want):
            raise ValueError(f"cost: cannot read {self.text!r}")
        self.at += 1
        return t

    def _ternary(self) -> Callable:
        c = self._binary(1)
        if self._peek() != "?":
            return c
        self._take("?")
        a = self._ternary()
        self._take(":")
        b = self._ternary()

        def f(env):
            cv, av, bv = c(env), a(env), b(env)
            if cv is DATA:   # the larger arm bounds it
                return DATA if DATA in (av, bv) else np.maximum(av, bv)
            if av is DATA or bv is DATA:
                return DATA
            return np.where(np.not_equal(cv, 0), av, bv)
        return f

    def _binary(self, level: int) -> Callable:
        lhs = self._unary()
        while (op := self._peek()) in _BINARY and _BINARY[op] >= level:
            self._take()
            rhs = self._binary(_BINARY[op] + 1)
            lhs = self._apply(op, lhs, rhs)
        return lhs

    @staticmethod
    def _apply(op: str, lhs: Callable, rhs: Callable) -> Callable:
        g, py = _OPS[op], _PY.get(op)

        def f(env):
            a, b = lhs(env), rhs(env)
            if type(a) is int and type(b) is int and py is not None:  # (most of them: no numpy)
                return py(a, b)
            if a is DATA or b is DATA:
                return 1 if op in _BOOL else DATA  # a condition is at most 1
            return g(a, b)
        return f

    def _unary(self) -> Callable:
        t = self._peek()
        if t in ("-", "!", "~", "+"):
            self._take()
            x = self._unary()
            g = {"-": np.negative, "!": lambda v: np.asarray(np.logical_not(v)).astype(np.int64),
                 "~": np.invert, "+": lambda v: v}[t]
            return lambda env: (1 if t == "!" else DATA) if (v := x(env)) is DATA else g(v)
        return self._primary()

    def _primary(self) -> Callable:
        t = self._take()
        if t == "(":
            x = self._ternary()
            self._take(")")
            return x
        if t[0].isdigit():
            v = int(t, 0)
            return lambda env: v
        if self._peek() == "(":  # K_MIN / K_MAX
            self._take("(")
            args = [self._ternary()]
            while self._peek() == ",":
                self._take(",")
                args.append(self._ternary())
            self._take(")")
            if t not in ("K_MIN", "K_MAX") or len(args) != 2:
                raise ValueError(f"cost: {t}() in {self.text!r}")
            pick = np.minimum if t == "K_MIN" else np.maximum

            def call(env):
                a, b = args[0](env), args[1](env)
                if a is DATA or b is DATA:  # the known side bounds a minimum
                    return b if a is DATA and t == "K_MIN" else a if t == "K_MIN" and b is DATA else DATA
                return pick(a, b)
            return call
        self.names.add(t)
        return lambda env: env(t)


@lru_cache(maxsize=8192)
def _parse(text: str) -> Expr:
    """Expressions repeat across kernels (`nc`, `r1 - r0`, ...): each is parsed once."""
    return Expr(text)


# ----------------------------------------------------------------------------- the walk
@dataclass
class _Node:
    """A range and its body as a tree (the IR is flat)."""
    op: L.Range | None
    body: list  # UOps and _Nodes
    costs: bool = False  # whether it holds an op with a figure (_COSTS), at any depth


# the ops that have a figure (the IR's op classes have no subclasses: a type test is an isinstance)
_COSTS = frozenset((L.VectorOps, L.DmaRead, L.DmaWrite, L.MatMul, L.Alu))


def _tree(body: list) -> _Node:
    root = _Node(None, [])
    stack = [root]
    for u in body:
        t = type(u)
        if t is L.Range:
            n = _Node(u, [])
            stack[-1].body.append(n)
            stack.append(n)
        elif t is L.End:
            done = stack.pop()
            if done.costs:
                stack[-1].costs = True
        else:
            stack[-1].body.append(u)
            if t in _COSTS:
                stack[-1].costs = True
    for i in range(len(stack) - 1, 0, -1):  # (ranges left open: as if closed at the end)
        if stack[i].costs:
            stack[i - 1].costs = True
    return root


class _Walker:
    def __init__(self, k: L.LoopKernel):
        self.k = k
        self.esize = {o.index: _ESIZE.get(o.ctype, 1) for o in k.operands}
        self.deps: dict[int, frozenset[str]] = {}  # id(_Node) -> free names its figures read

    @staticmethod
    def expr(text: str) -> Expr:
        return _parse(text)

    # the names a block's figures read, with the block's own Defines expanded
    def free(self, node: _Node) -> frozenset[str]:
        got = self.deps.get(id(node))
        if got is not None:
            return got
        need: set[str] = set()
        local: dict[str, set[str]] = {}  # a Define in the block -> what it reads

        def uses(texts: list[str]) -> set[str]:
            out: set[str] = set()
            for t in texts:
                out |= self.expr(t).names
            return out

        for u in node.body:
            t = type(u)
            if t is L.Define:
                local[u.var] = set()
                continue
            if t is _Node:
                inner = set(self.free(u))
                if inner or u.costs:
                    inner |= uses([u.op.start, u.op.end])
                inner.discard(u.op.var)
                need |= inner
            elif t in _COSTS:
                need |= uses(_cost_texts(u))
        # expand the block's Defines (in reverse: a Define reads only earlier names)
        for u in reversed(node.body):
            if type(u) is L.Define and u.var in need:
                need.discard(u.var)
                need |= self.expr(u.expr).names
        self.deps[id(node)] = frozenset(need)
        return self.deps[id(node)]

    def run(self, node: _Node, scope: dict[str, Any], weight) -> np.ndarray:
        """[vector_ops, dma_bytes, matrix_tiles, alu_ops] of one pass through the block, summed
        over the items with `weight` (how many times each item passes through it; 0: not at all).
        scope: name -> Value, or a Define not evaluated yet (with the lookup of its block)."""
        total = np.zeros(4, dtype=np.int64)
        scope = dict(scope)

        def env(name: str) -> Value:
            v = scope.get(name, _UNBOUND)
            if v is _UNBOUND:
                raise ValueError(f"cost: {self.k.name} reads {name!r}, which the IR does not define")
            if isinstance(v, _Lazy):
                v = scope[name] = _parse(v.text).fn(v.env)
            return v

        def value(text: str) -> np.ndarray | int:
            v = _parse(text).fn(env)  # (.fn: one call less than the Expr)
            if type(v) is int:  # (most counts: one number for every item)
                return v if v > 0 else 0
            if v is DATA:
                raise ValueError(f"cost: {self.k.name}: {text!r} is decided by the data, with no bound")
            return np.maximum(np.asarray(v, dtype=np.int64), 0)

        # A count that is one number for every item weighs sum(weight) (summed once); the Alus'
        # costs add up first, then weigh it once (integers: the same figure as op by op)
        wsum = None
        alu = 0
        for u in node.body:
            t = type(u)
            if t is L.Alu:
                alu += u.cost
            elif t is L.Define:
                scope[u.var] = _Lazy(u.expr, env)
            elif t is L.Var or t is L.Load:
                scope[u.var] = DATA
            elif t is L.VectorOps:
                c = value(u.count)
                if type(c) is int:
                    if wsum is None:
                        wsum = int(weight.sum())  # (weight: always an int64 array)
                    total[0] += c * wsum
                else:
                    total[0] += (c * weight).sum()
            elif t is L.DmaRead or t is L.DmaWrite:
                c, r = value(u.count), value(u.rows)
                if type(c) is int and type(r) is int:
                    if wsum is None:
                        wsum = int(weight.sum())  # (weight: always an int64 array)
                    total[1] += c * r * wsum * u.cb.esize
                else:
                    total[1] += (c * r * weight).sum() * u.cb.esize
            elif t is L.MatMul:
                m, n, k = value(u.m), value(u.n), value(str(u.k))
                live = ((m > 0) & (n > 0)) * weight
                total[2] += np.sum(live * (-(-m // 32)) * (-(-n // 32)) * -(-k // 32))
                b_esize = 0 if u.b_page else self.esize[u.b.index]  # a B page already in SRAM: no DMA
                a_esize = 0 if u.a_page else self.esize[u.a.index]
                total[1] += np.sum(live * (m * k * a_esize + k * n * b_esize))
            elif t is _Node and u.costs:
                r = u.op
                start, end = _parse(r.start).fn(env), _parse(r.end).fn(env)
                if start is DATA or end is DATA:
                    raise ValueError(f"cost: {self.k.name}: range {r.var}'s bounds are decided by the data")
                if type(start) is int and type(end) is int:  # (most ranges: plain integers)
                    trip = max(-(-(end - start) // r.step), 0)
                else:
                    trip = np.maximum(-(-(np.asarray(end) - start) // r.step), 0)
                inner = dict(scope)
                if r.var not in self.free(u):  # trip count x one pass
                    inner[r.var] = start
                    total += self.run(u, inner, trip * weight)
                else:  # stepped through, a new leading axis per step (chunks of at most CELLS values)
                    live = np.asarray(weight) > 0
                    steps = int(np.max(np.where(live, trip, 0), initial=0))
                    shape = np.broadcast(np.asarray(start), trip, np.asarray(weight)).shape
                    chunk = max(1, CELLS // max(1, int(np.prod(shape))))
                    for t0 in range(0, steps, chunk):
                        at = np.arange(t0, min(t0 + chunk, steps), dtype=np.int64).reshape((-1,) + (1,) * len(shape))
                        inner[r.var] = np.asarray(start) + at * r.step
                        total += self.run(u, inner, (trip > at) * weight)
        if alu:
            total[3] += alu * (int(weight.sum()) if wsum is None else wsum)
        return total


class _Lazy:
    """A Define not evaluated yet: its text and the lookup of its block. (A plain class: the walk
    makes one per Define per pass through a block.)"""
    __slots__ = ("text", "env")

    def __init__(self, text: str, env: Callable[[str], Value]):
        self.text, self.env = text, env


_UNBOUND = object()
_NP = {"float": "f4", "double": "f8", "uint16_t": "u2", "int16_t": "i2", "uint8_t": "u1", "int8_t": "i1",
       "int32_t": "i4", "uint32_t": "u4", "int64_t": "i8", "uint64_t": "u8", "_Float16": "f2", "bool": "u1"}
_ESIZE = {c: np.dtype(t).itemsize for c, t in _NP.items()}  # (any other type: 1 byte, as "u1")


def _cost_texts(u) -> list[str]:
    if isinstance(u, L.VectorOps):
        return [u.count]
    if isinstance(u, (L.DmaRead, L.DmaWrite)):
        return [u.count, u.rows]
    if isinstance(u, L.MatMul):
        return [u.m, u.n, str(u.k)]
    return []


def figures(k: L.LoopKernel) -> Figures:
    """The kernel's figures for one launch (see the module docstring)."""
    if k.work_items <= 0:
        return Figures(sram_bytes=L.sram_end(k.cbs))
    w = _Walker(k)
    it = np.arange(k.work_items, dtype=np.int64)
    # (one item: its number as a plain integer, so its expressions evaluate without numpy)
    v, dma, tiles, alu = (int(x) for x in w.run(_tree(k.body), {"it": 0 if k.work_items == 1 else it},
                                                np.ones_like(it)))
    return Figures(v, dma, tiles, L.sram_end(k.cbs), alu)
