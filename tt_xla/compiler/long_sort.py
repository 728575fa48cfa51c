"""Sorts whose rows are longer than one core's SRAM holds: a chunk sort, then merge passes.

A `sort` node whose row does not fit a core's SRAM (lower_sort's buffers, sized for the target's
`sram_per_core`) becomes a chain of sort nodes the fusion pass gives a kernel each:

  chunk sort   attrs["chunk"] = C: every row cut into chunks of C (a power of two), each chunk
               sorted in one core's SRAM like a whole row (stable);
  merge passes attrs["merge"] = w, ["block"] = B: runs of w become sorted runs of 2w. A work
               item writes one block of B outputs of one pair of runs: it finds where its block
               starts on the merge path (a binary search over the two runs, reading single
               elements by DMA), DMAs the at most B elements of each run it can need into SRAM
               and merges them there. Every core merges an equal share, whatever the data.

Every operand of a multi-operand sort is carried through every pass (the comparator may read
any of them): one node per operand and pass, each reading all of the previous pass's operands.
So the chain is shared by all the sort's results; results nobody reads end one pass early (their
last pass is dead). Merges are stable (ties take the left run's element), as the chunk sort is.
"""
from __future__ import annotations

from .graph import Graph, Node, itemsize
from .rewrite import rewrite

CHUNK_MAX = 1 << 16  # a chunk sort's row: larger chunks give fewer merge passes, but fewer work items


def sort_bytes(dtypes: list[str], out: str, n: int) -> int:
    """SRAM bytes of a sort kernel over rows (or chunks) of n: every operand's row, the int32
    permutation (twice: ping-pong) and the output row (lower_sort.sort_buffers lays them out)."""
    from .lower_sort import sort_buffers
    from .loopir import sram_end
    return sram_end(sort_buffers(dtypes, out, n))


def merge_bytes(dtypes: list[str], out: str, block: int) -> int:
    """SRAM bytes of a merge pass's kernel over blocks of `block` outputs."""
    from .lower_sort import merge_buffers
    from .loopir import sram_end
    return sram_end(merge_buffers(dtypes, out, block))


def _pow2_fitting(fits, cap: int) -> int:
    """The largest power of two <= cap that fits (1 when not even 2 does)."""
    p = 0
    while (1 << (p + 1)) <= cap and fits(1 << (p + 1)):
        p += 1
    return 1 << p


def split_long_sorts(graph: Graph, sram_per_core: int) -> Graph:
    """Replace every sort whose rows do not fit `sram_per_core` by its chunk sort and merge passes."""
    chains: dict[tuple, list[Node]] = {}

    def fn(n: Node) -> Node:
        if n.op != "sort" or "chunk" in n.attrs or "merge" in n.attrs:
            return n
        row = n.shape[n.attrs["dim"]]
        dts = [x.dtype for x in n.inputs]
        widest = max(dts, key=itemsize)  # every result's kernel must fit, the widest's too
        if row <= 1 or sort_bytes(dts, widest, row) <= sram_per_core:
            return n
        key = (tuple(x.id for x in n.inputs), n.attrs["dim"], id(n.attrs["body"]))
        if key not in chains:
            chains[key] = _chain(n, dts, widest, sram_per_core)
        return chains[key][n.attrs["index"]]

    return rewrite(graph, fn)


def _chain(n: Node, dts: list[str], widest: str, sram: int) -> list[Node]:
    """The last pass's node of every operand of sort n (whose rows need merging)."""
    row = n.shape[n.attrs["dim"]]
    chunk = _pow2_fitting(lambda c: sort_bytes(dts, widest, c) <= sram, min(CHUNK_MAX, row))
    block = _pow2_fitting(lambda b: merge_bytes(dts, widest, b) <= sram, chunk)
    # a core too small for chunks of 2 gets chunks of 1 (every pass a merge); what does not fit
    # even then, lower_sort refuses with the sizes
    base = {"dim": n.attrs["dim"], "body": n.attrs["body"]}
    cur = [Node("sort", list(n.inputs), n.shape, x.dtype, {**base, "index": j, "chunk": chunk}, n.loc)
           for j, x in enumerate(n.inputs)]
    w = chunk
    while w < row:
        cur = [Node("sort", list(cur), n.shape, x.dtype, {**base, "index": j, "merge": w, "block": block}, n.loc)
               for j, x in enumerate(n.inputs)]
        w *= 2
    return cur
