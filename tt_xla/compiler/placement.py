"""SRAM placement (optimization levels 1 and 2): which intermediates stay in the grid's SRAM
between the kernel that writes them and the last one that reads them, instead of going to DRAM.

A placed tensor is sharded over every core in whole 32x32 tiles (`shard_bytes`), so it takes
that many bytes of each core's SRAM for its lifetime (first write .. last read, in schedule
order), beside the circular buffers and matrix-engine blocks of the kernel running at each step.
The decision is made here, at compile time, against the device's SRAM per core: a tensor is
placed only if at every step of its lifetime the running kernel's SRAM plus the shards live then
fit; everything else stays in DRAM (spilled), so a program never fails at run time for lack of
SRAM. Each launch declares its kernel's SRAM plus the shards resident while it runs, and the
runtime checks that sum against the cores' SRAM when it loads the program.

The cost model: a placed tensor's operands are flagged TT_L1, so the cores' DMA to and from it
is NoC traffic (each core's own link, `noc_bytes_per_cycle`) rather than a share of the DRAM
bandwidth, and its bytes leave the DRAM counters. The model does not route: every shard is
charged as if it were one hop from the core that reads it (the layout the consumer wants). On the
host, SRAM is memory too: placed tensors live in a region of the executable's arena
(memory.plan_memory), so execution is the same at every level.

Level 1 places only what the next kernel alone consumes (a producer-consumer pair); level 2 any
intermediate, most DRAM bytes saved per byte-step of SRAM first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .fuse import Kernel, reads
from .graph import Node
from .memory import bound, lifetimes

TILE_ELEMS = 32 * 32


@dataclass(frozen=True)
class Placement:
    l1: frozenset[int] = frozenset()                       # ids of the nodes placed in SRAM
    resident: dict[int, int] = field(default_factory=dict)  # kernel index -> placed bytes per core live then


def shard_bytes(n: Node, ncores: int) -> int:
    """Bytes of each core's SRAM a tensor takes when sharded over `ncores` cores in whole tiles."""
    itemsize = n.nbytes // n.size if n.size else 0
    tiles = -(-n.size // TILE_ELEMS)
    return -(-tiles // ncores) * TILE_ELEMS * itemsize


def place(order: list[Kernel], mat: set[int], params: list, outputs: list, consts: list,
          kernel_sram: list[int], sram_per_core: int, ncores: int, level: int) -> Placement:
    """The intermediates to keep in SRAM at `level` (0: none). `kernel_sram[t]`: the SRAM per core
    kernel order[t] uses itself."""
    if level <= 0:
        return Placement()
    first, last, _ = lifetimes(order, mat, bound(params, outputs, consts))
    node: dict[int, Node] = {n.id: n for k in order for n in k.outputs}
    readers: dict[int, int] = {}
    for k in order:
        for r in reads(k, mat):
            readers[r.id] = readers.get(r.id, 0) + 1
    cands = [i for i in first if node[i].size and (level >= 2 or last[i] == first[i] + 1)]

    def saved(i: int) -> int:  # DRAM bytes a placement saves: the write and every read
        return node[i].nbytes * (1 + readers.get(i, 0))

    cands.sort(key=lambda i: (-saved(i) / (shard_bytes(node[i], ncores) * (last[i] - first[i] + 1)), first[i], i))
    used = list(kernel_sram)
    l1: set[int] = set()
    for i in cands:
        sz, steps = shard_bytes(node[i], ncores), range(first[i], last[i] + 1)
        if all(used[t] + sz <= sram_per_core for t in steps):
            l1.add(i)
            for t in steps:
                used[t] += sz
    return Placement(frozenset(l1), {t: used[t] - kernel_sram[t] for t in range(len(order))})
