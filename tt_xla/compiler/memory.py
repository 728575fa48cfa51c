"""Pass 7: memory placement. Inputs, outputs and constants have buffers of their own; every other
stored node gets an offset in one DRAM arena per executable, reusing space between buffers whose
lifetimes (first write .. last read, in schedule order) do not overlap. Inside a kernel,
intermediates never leave the core (registers / SRAM)."""
from __future__ import annotations

from dataclasses import dataclass

from .fuse import Kernel, reads

ALIGN = 64


@dataclass(frozen=True)
class Storage:
    kind: str     # 'in' | 'out' | 'const' | 'arena'
    index: int    # binding-relative index (for arena: 0)
    offset: int   # bytes


def plan_memory(order: list[Kernel], mat: set[int], params: list, outputs: list,
                consts: list) -> tuple[dict[int, Storage], int, int]:
    """(where each stored node lives, arena bytes, lower bound on arena bytes)."""
    where: dict[int, Storage] = {}
    for i, p in enumerate(params):
        where[p.id] = Storage("in", i, 0)
    for j, o in enumerate(outputs):
        where[o.id] = Storage("out", j, 0)
    for k, c in enumerate(consts):
        where[c.id] = Storage("const", k, 0)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    size: dict[int, int] = {}
    for t, k in enumerate(order):
        n = k.dest.src
        if n.id not in where:
            first.setdefault(n.id, t)
            last[n.id] = max(last.get(n.id, t), t)
            size[n.id] = n.nbytes
        for r in reads(k, mat):
            if r.id in first:
                last[r.id] = t
    # Greedy best fit, biggest first: place each buffer at the lowest offset that does not
    # overlap a buffer alive at the same time.
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    arena = 0
    for nid in sorted(first, key=lambda i: (-size[i], first[i])):
        lo, hi, sz = first[nid], last[nid], (size[nid] + ALIGN - 1) // ALIGN * ALIGN
        busy = sorted((o, e) for o, e, f, l in placed if not (l < lo or f > hi))
        off = 0
        for o, e in busy:
            if off + sz <= o:
                break
            off = max(off, e)
        placed.append((off, off + sz, lo, hi))
        where[nid] = Storage("arena", 0, off)
        arena = max(arena, off + sz)
    return where, arena, live_peak(len(order), first, last, size)


def live_peak(order_len: int, first: dict[int, int], last: dict[int, int], size: dict[int, int]) -> int:
    """The most bytes of arena buffers alive at one time: no placement can use less."""
    delta = [0] * (order_len + 1)
    for n in first:  # a sweep over lifetimes: +size where one starts, -size after it ends
        delta[first[n]] += size[n]
        delta[last[n] + 1] -= size[n]
    peak = live = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return peak
