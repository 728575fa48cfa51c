"""Lowered kernels on disk, by structural key (kernel_key.py): a compile whose kernel was lowered
before, by this compiler, in any program, takes its loop IR, C and cost figures from the store
instead of lowering, rendering and walking it again (about 0.5 ms a kernel, the larger part of
a warm compile's time once gcc is cached).

One file per key, named by a digest of the compiler's own source and the key, so a changed
compiler never reads what an older one wrote. Like the kernel library cache (toolchain.py),
the store does not trust its files: each holds a digest of its bytes and the whole key; a file
that is short, altered, of another key or unreadable is a miss (the kernel is lowered again
and the file rewritten). Files are written under temporary names and renamed into place. The
data is plain (marshal of tuples, strings, numbers and bytes), never code.
"""
from __future__ import annotations

import functools
import hashlib
import marshal
import os
from dataclasses import astuple, fields
from pathlib import Path

from ..files import atomic_write
from . import loopir as L
from .cost import Figures
from .graph import Node
from .kernel_key import ServedKernel
from .render import anonymous, named

FORMAT = 1
_MARSHAL = 2  # marshal version 2 has no back-references: equal data gives equal bytes
_DIGEST = 16

_TYPES = {c.__name__: c for c in (L.Range, L.End, L.Define, L.Var, L.Assign, L.DmaRead, L.DmaWrite,
                                   L.DmaPrefetch, L.CbReserve, L.CbWait, L.CbPush, L.CbPop, L.Load, L.Store,
                                   L.Alu, L.VectorOps, L.MatMul, L.Call)}
_FIELDS = {name: tuple(f.name for f in fields(c)) for name, c in _TYPES.items()}
# the fields that hold a circular buffer or an operand (stored as references: lists)
_REFS = {name: tuple(i for i, f in enumerate(fields(c)) if f.type in ("CircularBuffer", "Operand"))
         for name, c in _TYPES.items()}

stats = {"hits": 0, "misses": 0, "rejected": 0}  # process-wide (tests read them)


@functools.lru_cache(maxsize=None)
def compiler_digest() -> bytes:
    """The compiler's source (every module of this package, bfp8.py): what maps a key to IR, C
    and figures."""
    here = Path(__file__).parent
    h = hashlib.blake2b(digest_size=_DIGEST)
    h.update(FORMAT.to_bytes(4, "little"))
    for f in sorted(here.glob("*.py")) + sorted(here.glob("*.c")) + [here.parent / "bfp8.py"]:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.digest()


class KernelStore:
    def __init__(self, directory: Path | str, deferred: bool = False):
        """`deferred`: `save` only queues a kernel and `flush` writes the queue; the client
        flushes once gcc's processes building the program's library are started (the toolchain's
        `meanwhile`), where it costs no time."""
        self.dir = str(directory)
        self._named = hashlib.blake2b(compiler_digest(), digest_size=_DIGEST)  # (copied per key)
        self.deferred = deferred
        self.pending: list[tuple] = []

    def _path(self, key: tuple) -> str | None:
        h = self._named.copy()
        try:
            h.update(marshal.dumps(key, _MARSHAL))
        except ValueError:  # a value marshal cannot write: such a kernel is not stored
            return None
        return os.path.join(self.dir, f"lk-{h.hexdigest()}.bin")

    def load(self, key: tuple, nodes: list[Node], name: str) -> tuple[L.LoopKernel, str] | None:
        """The stored kernel of `key` with its operands bound to `nodes` (the kernel's nodes in
        key order) and named `name`, and its C; None when there is none to trust."""
        path = self._path(key)
        try:
            if path is None:
                raise OSError("no file name")
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            stats["misses"] += 1
            return None
        try:
            payload = data[_DIGEST:]
            if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != data[:_DIGEST]:
                raise ValueError("digest")
            rec = marshal.loads(payload)
            if rec[0] != FORMAT or rec[1] != key:
                raise ValueError("another key")
            got = _decode(rec, nodes, name)
        except (ValueError, EOFError, TypeError, IndexError, KeyError):
            stats["rejected"] += 1
            return None
        stats["hits"] += 1
        return got

    def save(self, key: tuple, lk: L.LoopKernel, nodes: list[Node], code: str) -> None:
        """Store `lk` (its operands bind nodes of `nodes`) and its C (when deferred: at the next
        `flush`). A store that cannot be written (read-only, full) is only a lost speed-up."""
        if self.deferred:
            self.pending.append((key, lk, nodes, code))
        else:
            self._write(key, lk, nodes, code)

    def flush(self) -> None:
        """Write the kernels `save` queued."""
        pending, self.pending = self.pending, []
        for item in pending:
            self._write(*item)

    def _write(self, key: tuple, lk: L.LoopKernel, nodes: list[Node], code: str) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            record = _encode(key, lk, nodes, code)
            payload = marshal.dumps(record, _MARSHAL)
        except (KeyError, ValueError):  # an operand binds a node outside the key, or a value marshal
            return                      # cannot write: such a kernel is not stored
        if marshal.loads(payload) != record:  # a value marshal writes as another (a numpy scalar,
            return                            # as bytes): it would not come back as it was
        try:
            atomic_write(path, hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload)
        except OSError:
            pass


def _encode(key: tuple, lk: L.LoopKernel, nodes: list[Node], code: str) -> tuple:
    at = {n.id: i for i, n in enumerate(nodes)}
    cb_at = {id(cb): i for i, cb in enumerate(lk.cbs)}

    def operand(o: L.Operand) -> list:  # (a list: tuples are field values)
        return ["op", o.index, o.ctype, o.writes, at[o.node.id]]

    def value(v):
        if isinstance(v, L.CircularBuffer):
            return ["cb", cb_at[id(v)]]
        if isinstance(v, L.Operand):
            return operand(v)
        return v

    body = tuple((type(u).__name__,) + tuple(value(getattr(u, f)) for f in _FIELDS[type(u).__name__])
                 for u in lk.body)
    cbs = tuple((cb.name, cb.ctype, cb.esize, cb.page_elems, cb.npages, cb.offset) for cb in lk.cbs)
    figures = astuple(lk.cost)
    return (FORMAT, key, anonymous(code, lk.name), lk.work_items, tuple(lk.ops), lk.kind,
            tuple(operand(o) for o in lk.operands), cbs, body, figures)


def _decode(rec: tuple, nodes: list[Node], name: str) -> tuple[L.LoopKernel, str]:
    _, _, code, work_items, ops, kind, operands, cbs, body, figures = rec
    made: dict[tuple, L.Operand] = {}

    def operand(v: list) -> L.Operand:
        t = tuple(v)
        o = made.get(t)
        if o is None:
            o = made[t] = L.Operand(v[1], v[2], v[3], nodes[v[4]])
        return o

    bufs = [L.CircularBuffer(*cb) for cb in cbs]

    def ir() -> list[L.UOp]:  # (on first use: the record passed its digest and key checks)
        out = []
        for u in body:
            cls = _TYPES[u[0]]
            refs = _REFS[u[0]]
            if refs:
                vals = list(u[1:])
                for i in refs:
                    v = vals[i]
                    vals[i] = bufs[v[1]] if v[0] == "cb" else operand(v)
                out.append(cls(*vals))
            else:
                out.append(cls(*u[1:]))
        return out
    lk = ServedKernel(name, [operand(o) for o in operands], bufs, ir, work_items, list(ops), kind, Figures(*figures))
    return lk, named(code, name)
