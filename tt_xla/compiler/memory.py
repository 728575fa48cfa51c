"""Pass 7: memory placement. Inputs, outputs and constants have buffers of their own; every other
stored node gets an offset in one DRAM arena per executable, reusing space between buffers whose
lifetimes (first write .. last read, in schedule order) do not overlap. Inside a kernel,
intermediates never leave the core (registers / SRAM). Intermediates that SRAM placement
(placement.py) keeps in the grid's SRAM get offsets in a region of their own after the DRAM part
of the arena: on the host, SRAM is memory too, and the launches flag those operands TT_L1."""
from __future__ import annotations

from dataclasses import dataclass

from .fuse import Kernel

ALIGN = 64


@dataclass(frozen=True)
class Storage:
    kind: str     # 'in' | 'out' | 'const' | 'arena'
    index: int    # binding-relative index (for arena: 0)
    offset: int   # bytes


def plan_memory(order: list[Kernel], mat: set[int], params: list, outputs: list,
                consts: list, l1: frozenset[int] = frozenset()) -> tuple[dict[int, Storage], int, int]:
    """(where each stored node lives, arena bytes, lower bound on arena bytes). Nodes in `l1`
    (placed in SRAM) share a region after the DRAM ones."""
    where = bound(params, outputs, consts)
    first, last, size = lifetimes(order, mat, where)
    dram, arena = best_fit([n for n in first if n not in l1], first, last, size)
    sram, sram_bytes = best_fit([n for n in first if n in l1], first, last, size)
    for nid, off in dram.items():
        where[nid] = Storage("arena", 0, off)
    for nid, off in sram.items():
        where[nid] = Storage("arena", 0, arena + off)
    return where, arena + sram_bytes, live_peak(len(order), first, last, size)


def bound(params: list, outputs: list, consts: list) -> dict[int, Storage]:
    """The nodes with buffers of their own: inputs, outputs, constants."""
    where: dict[int, Storage] = {}
    for i, p in enumerate(params):
        where[p.id] = Storage("in", i, 0)
    for j, o in enumerate(outputs):
        where[o.id] = Storage("out", j, 0)
    for k, c in enumerate(consts):
        where[c.id] = Storage("const", k, 0)
    return where


def lifetimes(order: list[Kernel], mat: set[int], where: dict[int, Storage]
              ) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """For every stored node not in `where`: the kernel writing it first, the last reading it
    (indices into `order`), its bytes. (`mat`, the stored set, is no longer needed: the plan's
    kernels carry their reads.)"""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    size: dict[int, int] = {}
    for t, k in enumerate(order):
        for n in k.outputs:
            if n.id not in where:
                first.setdefault(n.id, t)
                last[n.id] = max(last.get(n.id, t), t)
                size[n.id] = n.nbytes
        for r in k.reads:
            if r.id in first:
                last[r.id] = t
    return first, last, size


def best_fit(ids: list[int], first: dict[int, int], last: dict[int, int], size: dict[int, int]
             ) -> tuple[dict[int, int], int]:
    """Offsets for `ids` in one region, and its bytes."""
    # Greedy best fit, biggest first: place each buffer at the lowest offset that does not
    # overlap a buffer alive at the same time.
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offsets: dict[int, int] = {}
    arena = 0
    for nid in sorted(ids, key=lambda i: (-size[i], first[i])):
        lo, hi, sz = first[nid], last[nid], (size[nid] + ALIGN - 1) // ALIGN * ALIGN
        busy = sorted((o, e) for o, e, f, l in placed if not (l < lo or f > hi))
        off = 0
        for o, e in busy:
            if off + sz <= o:
                break
            off = max(off, e)
        placed.append((off, off + sz, lo, hi))
        offsets[nid] = off
        arena = max(arena, off + sz)
    return offsets, arena


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
