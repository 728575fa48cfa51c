"""Fusion groups -> loop IR (loopir.py). One lowering per kernel kind: loop kernels
(elementwise, movement, stored transposes), reductions, products.

The dataflow of a loop kernel on its core, per work item (a block of rows x columns of the
kernel's collapsed iteration space):

    reader:  for each stored input: reserve a page of its circular buffer, DMA the block's
             elements DRAM -> SRAM (one strided run per row; a transposed read per column, so
             the DMA reads DRAM contiguously), push the page
    compute: wait for the input pages and reserve an output page, evaluate the fused
             expression element by element from SRAM into the output page, pop the inputs,
             push the output, report the vector instructions issued
    writer:  wait for the output page, DMA it SRAM -> DRAM, pop it

Pages are sized so every buffer of the kernel fits the core's SRAM (`sram_budget`): a block
shrinks until it does; a kernel that cannot fit even one small block is refused, naming the
kernel and the sizes.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..bfp8 import TILE_BYTES as BFP8_TILE_BYTES  # = TT_BFP8_TILE_BYTES in ttrt_kernel.h
from ..errors import UnsupportedError
from . import loopir as L
from .access import Access, collapse, row_major
from .codegen import Emitter, Leaf, _simple_combiner, _with_nan, collect_leaves, literal, load_expr, store_expr
from .dtypes import CTYPE, VTYPE
from .fuse import (Kernel, LhsLayout, _same_order, access_of, dot_groups, dot_out_groups, group_strides,
                   inline_tree, lhs_layout, memoryless)
from .graph import FLOATS, VIEWS, Node, itemsize
from .ops import convert_expr

CHUNK = 1024       # elements per block of a loop kernel (1 tile): its pages (4 KiB of f32 each) stay in
                   # the host's L1 (one host thread, ELU on 4M f32: about 1.3x faster than 4096)
LINE_BYTES = 64    # the host's cache line: a rows kernel's first-use reads ask for the next block a line at a time
LINE_MAX_OPS = 8   # ...when its math is at most this many vector ops an element
TILE = 32          # the device's tile edge
# Edge of the blocks a loop kernel with a transposed read (a stored transpose) works in: 2x2
# device tiles. Its reads are runs of one block edge from as many DRAM rows, so the longer the
# edge the fewer rows (pages, lines) per byte; 64 measured 0.55x the time of 32 for f32[2048,
# 2048].T (one process, under load; 128 was no better). TILE when there would be fewer blocks
# than cores, or SRAM is short.
TILE_BLOCK = 64
STRIP = 8          # rows of a transposed column page turned at a time (an 8x8 register transpose's)
# Accumulators per reduction: one 512-bit vector of f32. With 64 (four vectors) the C compiler
# kept the lanes in memory, a load and a store per vector per step (its unroller leaves a
# vector loop of 2-4 trips alone), which made a row sum of f32[4096, 1024] take 1.5x as long
# (one thread, under load).
LANES = 16
MIN_BLOCK = 32     # elements: the smallest block a loop kernel is re-blocked to before it is refused
MM_BLOCK_M, MM_BLOCK_N = 256, 512  # C block per work item: B is packed once per block row
MM_MIN_ITEMS = 64                  # ...but at least one per core (default: the n150's 64) when the product allows
MM_SRAM_BYTES = 768 * 1024         # = TT_MM_SRAM_BYTES: the most SRAM the matrix engine packs into
MM_SRAM_MIN = 32 * 1024            # = TT_MIN_SRAM_PER_CORE / 2: the least it can pack into
BFP8_CHUNK = 512        # rows of K a product unpacks at a time (halved until its pages fit)


def operands_for(leaves: list[tuple[Node, Access]], dest: Node | None) -> dict[int, int]:
    """{stored node id: operand index} for a kernel's leaves, then its destination."""
    idx: dict[int, int] = {}
    for _, a in leaves:
        if not memoryless(a.src):
            idx.setdefault(a.src.id, len(idx))
    if dest is not None:
        idx.setdefault(dest.id, len(idx))
    return idx


def fused_ops(root: Node, mat: set[int]) -> list[str]:
    """The core ops computed in root's kernel, inputs first (KernelInfo.ops)."""
    out: list[str] = []
    seen: set[int] = set()

    def walk(n: Node, top: bool) -> None:
        if n.id in seen or (not top and n.id in mat):
            return
        seen.add(n.id)
        for i in n.inputs:
            walk(i, False)
        if n.op not in ("const", "param"):
            out.append(n.op)
    walk(root, True)
    return out


def epilogue_inputs(k: Kernel, mat: set[int]) -> tuple[frozenset[int], list[tuple[Node, Access]]]:
    """(ids that stand for the finished reduce/dot result, the epilogue's other leaves)."""
    _, direct = inline_tree(k.epilogue, mat)
    alias = frozenset({x.id for x in direct if _same_order(x) is k.root} | {k.root.id})
    return alias, collect_leaves(k.epilogue, True, mat, alias)


def _check_fits(cbs: list[L.CircularBuffer], budget: int, name: str, what: str, node: Node) -> None:
    """Refuse, naming the kernel and the sizes, a kernel whose smallest blocks overflow SRAM."""
    need = L.sram_end(cbs)
    if need > budget:
        raise UnsupportedError(
            f"kernel {name} ({what}) needs {need} bytes of SRAM per core for the {len(cbs)} circular buffers of "
            f"its smallest block; the device's cores have {budget}", node.op, node.loc)


def lower_kernel(k: Kernel, name: str, mat: set[int], sram_budget: int, ncores: int = MM_MIN_ITEMS,
                 bfp8: frozenset[int] = frozenset()) -> L.LoopKernel:
    """The kernel's loop IR (its `kind`: 'elementwise' | 'movement' | 'reduce' | 'matmul' | 'gather' |
    'scatter' | 'scan' | 'sort'). `ncores`: the target's cores, which a product's work splits over;
    `bfp8`: the ids of weights stored as bfp8 (each read only where `bfp8_weight` allows)."""
    if k.kind == "dot":
        return lower_dot(mat, k, name, sram_budget, ncores, bfp8)
    if k.kind == "reduce":
        return lower_reduce(mat, k, name, sram_budget, ncores)
    if k.kind in ("gather", "scatter"):
        from .lower_indexing import LOWER  # (they build on this module's helpers)
        return LOWER[k.kind](mat, k, name, sram_budget)
    if k.kind == "scan":
        from .lower_scan import lower_scan
        return lower_scan(mat, k, name, sram_budget)
    if k.kind == "sort":
        from .lower_sort import lower_sort
        return lower_sort(mat, k, name, sram_budget)
    return lower_loop(mat, k, name, sram_budget, ncores)


class IREmitter(Emitter):
    """codegen's expression emitter, writing loop-IR ops: each value an Alu, each stored leaf a
    Load from its SRAM page."""

    def __init__(self, mat: set[int], index_of: dict[int, str], leaf_of: dict[int, Leaf],
                 page_of: dict[int, str], body: list):
        super().__init__(mat, index_of, leaf_of, [], "")
        self.page_of, self.body = page_of, body

    def define(self, name: str, ctype: str, expr: str, cost: int = 0) -> None:
        self.body.append(L.Alu(name, ctype, expr, cost))

    def leaf_value(self, leaf: Leaf, index: str) -> str:
        if memoryless(leaf.acc.src):
            return Emitter.leaf_value(leaf, index)
        name = f"ld{self.count}"
        self.count += 1
        self.body.append(L.Load(name, VTYPE[leaf.dt], self.page_of[id(leaf)], index,
                                load_expr(leaf.dt, "{ref}")))
        return name


def region_names(region, values: list[str]) -> dict[int, str]:
    """The C names of a region's (reduce, scatter or scan body's) params, given their values,
    and of its scalar constants (literals)."""
    names = {p.id: v for p, v in zip(region.params, values)}
    names.update({c.id: literal(c.attrs["value"], c.dtype) for c in region.nodes() if c.op == "const"})
    return names


def _decode(row: str, outer: list[int], tag: str, body: list) -> list[str]:
    """Index variables of the outer dims for flat row `row` (emits their definitions)."""
    if not outer:
        return []
    names = [f"{tag}i{d}" for d in range(len(outer))]
    q = row
    for d in reversed(range(len(outer))):
        if d == 0:
            body.append(L.Define(names[d], "int64_t", f"{q}" if len(outer) == 1 else f"{q} % {outer[0]}"))
        else:
            body.append(L.Define(names[d], "int64_t", f"({q}) % {outer[d]}"))
            nq = f"{tag}q{d}"
            body.append(L.Define(nq, "int64_t", f"({q}) / {outer[d]}"))
            q = nq
    return names


def _base(off: int, vec: tuple[int, ...], idx: list[str]) -> str:
    terms = [str(off)] + [f"{i} * {v}" for i, v in zip(idx, vec) if v != 0]
    return " + ".join(terms)


def _contiguous_second_last(shape: tuple[int, ...], vecs: list[tuple[int, ...]], read: list[int],
                            nl: int) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """The loop's dims reordered (its elements are independent: any order computes the same)
    so that a read whose contiguous dim is neither of the last two, while every result is
    written along the last, has it second to last: a stored transpose, read by tiles (the
    alternative is a strided gather of the inner dim, one line per element; fft's concatenate
    pieces that turn 16-wide runs of one axis into runs of another)."""
    rank = len(shape)
    if rank < 3 or any(v[-1] != 1 for v in vecs[nl:]):
        return shape, vecs
    for j in read:
        v = vecs[j]
        if v[-1] in (0, 1) or abs(v[-2]) == 1:
            continue
        d = next((d for d in range(rank - 2) if abs(v[d]) == 1), None)
        if d is None:
            continue
        perm = [i for i in range(rank - 1) if i != d] + [d, rank - 1]
        return collapse(tuple(shape[i] for i in perm), [tuple(w[i] for i in perm) for w in vecs])
    return shape, vecs


def _interleaved_pair(dests: list[Access], vecs: list[tuple[int, ...]], offs: list[int]) -> bool:
    """Whether a kernel's two results are the two halves of pairs in one stored node (a complex
    result's real and imaginary parts, fuse._merge_pieces): the same walk, the second one element
    after the first, every run stride 2. Then one page holds them interleaved and one dense DMA
    writes each run, where two writes of every other element took as long as the rest of the
    copy (rfft2_1024's result)."""
    return len(dests) == 2 and dests[0].src is dests[1].src and vecs[0] == vecs[1] and \
        offs[1] == offs[0] + 1 and len(vecs[0]) > 0 and vecs[0][-1] == 2


def _pairs(leaves: list, stored: list[int], vecs: list[tuple[int, ...]], offs: list[int], inner_st: list[int],
           rank: int) -> dict[int, tuple[int, int]]:
    """Leaves read as pairs: two walks of one stored node alike but for the second starting one
    element after the first, every run stride 2 (a complex input's real and imaginary parts).
    Then one dense DMA brings both into one page, where each reads every other element, in
    place of two DMAs each gathering every other element. {each leaf of a pair: (the first, 0
    or 1)}."""
    out: dict[int, tuple[int, int]] = {}
    for j1 in stored:
        for j0 in stored:
            if j0 not in out and j1 not in out and j0 != j1 and rank and inner_st[j0] == 2 and \
                    leaves[j0][1].src is leaves[j1][1].src and vecs[j0] == vecs[j1] and offs[j1] == offs[j0] + 1:
                out[j0], out[j1] = (j0, 0), (j0, 1)
    return {j: v for j, v in out.items() if v[1] == 1}


def lower_loop(mat: set[int], k: Kernel, name: str, sram_budget: int, ncores: int = MM_MIN_ITEMS) -> L.LoopKernel:
    """An elementwise or movement kernel."""
    computed = k.root is k.dest.src and k.root.op not in VIEWS and k.root.op not in ("iota", "const")
    dests = [k.dest, *k.extra]  # a multi-output kernel (fuse._multi_output, _merge_pieces)
    roots = k.roots()  # each dest's values
    leaves = collect_leaves(k.root, computed, mat, through_root_view=True)
    for q, e in enumerate(k.extra):  # their leaves, each once (two roots reading one node share its page);
        seen = {n.id for n, _ in leaves}  # an earlier result they read is its value in the loop
        done = frozenset(d.src.id for d in dests[:q + 1])
        leaves += [(n, a) for n, a in collect_leaves(roots[q + 1], True, mat, done) if n.id not in seen]
    opmap = operands_for(leaves, None)
    for d in dests:
        opmap.setdefault(d.src.id, len(opmap))
    nodes = {a.src.id: a.src for _, a in leaves}
    nodes.update((d.src.id, d.src) for d in dests)
    nl = len(leaves)  # vecs, offs and inner_st: the leaves', then each dest's
    size = int(np.prod(k.shape, dtype=np.int64))
    shape, vecs = _contiguous_second_last(*collapse(k.shape, [a.strides for _, a in leaves] + [d.strides for d in dests]),
                                          [j for j, (_, a) in enumerate(leaves) if a.src.op != "iota"], len(leaves))
    offs = [a.offset for _, a in leaves] + [d.offset for d in dests]
    rank = len(shape)
    inner = shape[-1] if rank else 1
    outer_shape = list(shape[:-1])
    outer = int(np.prod(outer_shape, dtype=np.int64)) if rank > 1 else 1
    inner_st = [v[-1] if rank else 0 for v in vecs]
    transposed = rank >= 2 and any(v[-1] not in (0, 1) and abs(v[-2]) == 1 and a.src.op != "iota"
                                   for v, (_, a) in zip(vecs, leaves))
    paired = _interleaved_pair(dests, vecs[nl:], offs[nl:]) and not transposed
    written = {d.src.id for d in dests}
    operands = [L.Operand(i, CTYPE[nodes[nid].dtype], nid in written, nodes[nid]) for nid, i in opmap.items()]
    op_of = {nid: operands[i] for nid, i in opmap.items()}
    stored = [j for j, (_, a) in enumerate(leaves) if not memoryless(a.src)]
    # one circular buffer per stored input (leaves of the same node share the node's operand,
    # but each view of it gets its own buffer: a view is a different walk over DRAM), except
    # that the second of a pair (a complex input's parts) shares the first's: `half`
    half = {} if transposed else _pairs(leaves, stored, vecs, offs, inner_st, rank)
    stored = [j for j in stored if j not in half]
    kind = "elementwise" if computed else "movement"

    def plan(block: int) -> tuple[str, int, int, list[str], dict[int, str]]:
        """(mode, rows per block, columns per block, ...) for a block of about `block` elements."""
        if transposed:
            return "tile", te, te, [], {}
        if inner >= 2 * block:
            return "chunk", 1, block, [], {}
        return "rows", max(1, block // max(inner, 1)), inner, [], {}

    # layouts: 'col' pages hold a tile column-major (a transposed read DMAs columns, which are
    # contiguous in DRAM); 'row' pages hold the block row-major; a row-invariant leaf (all outer
    # strides 0) holds one row; a column-invariant leaf (inner stride 0) one element per row
    def layout(j: int, mode: str) -> str:
        v = vecs[j]
        if mode == "tile" and v[-1] not in (0, 1) and abs(v[-2]) == 1:
            return "col"
        return "row"

    heads = {h for h, _ in half.values()}

    def run_read(j: int) -> tuple[str, int, int]:
        """(count, DRAM stride, page elements a row) of stored leaf j's read of a row's run: one
        element of a row-invariant leaf, both parts of a pair's head densely."""
        if j in heads:
            return "2 * nc", 1, 2 * w
        return ("1", 0, 1) if inner_st[j] == 0 else ("nc", inner_st[j], w)

    def turned(j: int, mode: str) -> bool:
        """A 4-byte column page that a computed kernel reads: STRIP rows at a time transposed in
        SRAM by 8x8 register blocks into a small row-major page just before the math reads them
        as vectors, instead of gathering down the columns (jax's symmetrisation (A + A^T) / 2,
        f32[1024, 1024], one thread: ~4x a plain pass before; a whole turned page instead of a
        strip cost L1 room and was slower inside eigh). A movement kernel's one column page is
        transposed straight into its output page (`single`)."""
        return layout(j, mode) == "col" and itemsize(leaves[j][0].dtype) == 4 and not single_ok and turning[0]

    def sizes(block: int) -> tuple[list[L.CircularBuffer], str, int, int]:
        mode, rb, w, _, _ = plan(block)
        cbs = []
        for n_, j in enumerate(stored):
            n, a = leaves[j]
            lay = layout(j, mode)
            rowconst = all(s == 0 for s in vecs[j][:-1]) if rank else True
            rows = 1 if (rowconst and lay == "row") else rb
            cols = (1 if inner_st[j] == 0 else w) if lay == "row" else w
            cbs.append(L.CircularBuffer(f"cb{n_}", CTYPE[n.dtype], itemsize(n.dtype),
                                        rows * cols * (2 if j in heads else 1)))
        for q, d in enumerate(dests[:1] if paired else dests):  # (a pair: one page holds both, interleaved)
            cbs.append(L.CircularBuffer(f"cbout{q or ''}", CTYPE[d.src.dtype], itemsize(d.src.dtype),
                                        rb * w * (2 if paired else 1)))
        for n_, j in enumerate(stored):  # a column page's row-major copy (see `turned` below)
            if turned(j, mode):
                cbs.append(L.CircularBuffer(f"cbt{n_}", cbs[n_].ctype, cbs[n_].esize, STRIP * w, 1))
        L.place(cbs)
        return cbs, mode, rb, w

    single_ok = not computed and len(leaves) == 1 and itemsize(k.root.dtype) == 4 and stored == [0] \
        and transposed and vecs[1][-1] == 1
    block, te, turning = CHUNK, TILE_BLOCK, [True]
    cbs, mode, rb, w = sizes(block)
    if mode == "tile":
        # big blocks only when there are enough of them for every core (small transposes keep
        # their work split, and so their modeled time) and they fit
        nblocks = int(np.prod(shape[:-2], dtype=np.int64)) * -(-shape[-2] // te) * -(-inner // te)
        if nblocks < ncores or L.sram_end(cbs) > sram_budget:
            te = TILE
            cbs, mode, rb, w = sizes(block)
        if L.sram_end(cbs) > sram_budget:  # a small SRAM: the math gathers down the columns
            turning[0] = False
            cbs, mode, rb, w = sizes(block)
    while L.sram_end(cbs) > sram_budget and block > MIN_BLOCK and mode != "tile":
        block //= 2
        cbs, mode, rb, w = sizes(block)
    _check_fits(cbs, sram_budget, name, f"{kind} of {', '.join(fused_ops(k.root, mat)[-4:]) or k.root.op}", k.root)
    out_cbs = cbs[len(stored):len(stored) + (1 if paired else len(dests))]
    turn_cb = {j: next(cb for cb in cbs if cb.name == f"cbt{n_}") for n_, j in enumerate(stored) if turned(j, mode)}
    outs = ["out"] + [f"out{q}" for q in range(1, len(out_cbs))]  # their pages
    in_cb = dict(zip(stored, cbs))

    body: list = []
    if mode == "tile":
        rows2, o2 = shape[-2], int(np.prod(shape[:-2], dtype=np.int64))
        ti, tj = -(-rows2 // te), -(-inner // te)
        items = o2 * ti * tj
        body += [L.Define("o2", "int64_t", f"it / {ti * tj}"), L.Define("t", "int64_t", f"it % {ti * tj}"),
                 L.Define("r0", "int64_t", f"o2 * {rows2} + (t / {tj}) * {te}"),
                 L.Define("r1", "int64_t", f"o2 * {rows2} + K_MIN((t / {tj}) * {te} + {te}, (int64_t){rows2})"),
                 L.Define("c0", "int64_t", f"(t % {tj}) * {te}"),
                 L.Define("c1", "int64_t", f"K_MIN(c0 + {te}, (int64_t){inner})")]
    elif mode == "chunk":
        per_row = -(-inner // w)
        items = outer * per_row
        body += [L.Define("r0", "int64_t", f"it / {per_row}"), L.Define("r1", "int64_t", "r0 + 1"),
                 L.Define("c0", "int64_t", f"(it % {per_row}) * {w}"),
                 L.Define("c1", "int64_t", f"K_MIN(c0 + {w}, (int64_t){inner})")]
    else:
        items = -(-outer // rb)
        body += [L.Define("r0", "int64_t", f"it * {rb}"), L.Define("r1", "int64_t", f"K_MIN(r0 + {rb}, (int64_t){outer})"),
                 L.Define("c0", "int64_t", "0"), L.Define("c1", "int64_t", f"{inner}")]
    body.append(L.Define("nc", "int64_t", "c1 - c0"))

    # ---- reader: DRAM -> SRAM pages
    page_in = {j: f"in{n_}" for n_, j in enumerate(stored)}
    for j in stored:
        body.append(L.CbReserve(in_cb[j], page_in[j]))
    row_leaves = [j for j in stored if layout(j, mode) == "row"]
    col_leaves = [j for j in stored if layout(j, mode) == "col"]
    rowconst = {j: (all(s == 0 for s in vecs[j][:-1]) if rank else True) for j in stored}
    if col_leaves:
        idx = _decode("r0", outer_shape, "s", body)
        for j in col_leaves:  # the tile's columns, contiguous in DRAM: one block transfer
            op = op_of[leaves[j][1].src.id]
            body.append(L.DmaRead(in_cb[j], page_in[j], "0", op, f"{_base(offs[j], vecs[j][:-1], idx)} + c0 * {vecs[j][-1]}",
                                  "r1 - r0", vecs[j][-2], "nc", str(vecs[j][-1]), str(te)))
            # the next tile's columns (this tile row's next, if any), fetched by the host while
            # this one is transposed: its reads are short runs far apart, slow one after another
            body.append(L.DmaPrefetch(op, f"{_base(offs[j], vecs[j][:-1], idx)} + (c0 + {te}) * {vecs[j][-1]}", "r1 - r0",
                                      itemsize(leaves[j][0].dtype), f"K_MIN({te}, {inner} - (c0 + {te}))",
                                      str(vecs[j][-1])))
    once = [j for j in row_leaves if rowconst[j]]
    per_row = [j for j in row_leaves if not rowconst[j]]
    # A chunk of a long row is one run the compute loop reads once, in order: the host copies
    # each element into the page as it first reads it (FIRST_USE), so the math overlaps the DRAM
    # reads and the host's own prefetcher streams them. Copied first, the block waited on memory
    # with nothing to compute, then computed from L1, and ELU on 4M f32 took 1.1-1.2x the time
    # of the pre-loop-IR tree's loop over DRAM; now ELU, ReLU, GELU and exp take 0.85-0.90x the
    # time of the copy first (one host thread, interleaved in one process, under load).
    chunk_first = [j for j in row_leaves if mode == "chunk" and inner_st[j] != 0 and j not in heads]
    for j in once:  # the same block for every item of a rows kernel (c0 = 0): the host copies it once per core
        op = op_of[leaves[j][1].src.id]
        cnt, st, _ = run_read(j)
        body.append(L.DmaRead(in_cb[j], page_in[j], "0", op, f"{offs[j]} + c0 * {inner_st[j]}", cnt, st,
                              host=L.ONCE if mode == "rows" else L.FIRST_USE if j in chunk_first else ""))
    # the block's rows are one block transfer per input when they are one affine walk: one outer
    # dim, a chunk of one row, a tile (whose rows never cross its outer index) or a block of rows
    # that never crosses the innermost outer dim (eigh's pairs: [pairs, batch, n]), else one
    # transfer per row
    affine = len(outer_shape) <= 1 or mode in ("chunk", "tile") or mode == "rows" and outer_shape[-1] % rb == 0
    first_use: list[int] = []  # a rows kernel's
    if per_row and affine:
        idx = _decode("r0", outer_shape, "", body)
        for j in per_row:
            op = op_of[leaves[j][1].src.id]
            cnt, st, wj = run_read(j)
            pitch = str(vecs[j][-2]) if outer_shape else "0"
            # a block of whole rows, packed in the page as in DRAM, read once by the compute loop
            # below: the host copies each element there
            first = mode == "rows" and inner_st[j] != 0 and int(pitch) == wj * inner_st[j] and j not in heads
            first_use += [j] if first else []
            body.append(L.DmaRead(in_cb[j], page_in[j], "0", op, f"{_base(offs[j], vecs[j][:-1], idx)} + c0 * {inner_st[j]}",
                                  cnt, st, *(("r1 - r0", pitch, str(wj)) if mode != "chunk" else ()),
                                  host=L.FIRST_USE if first or j in chunk_first else ""))
    elif per_row:
        body.append(L.Range("r", "r0", "r1"))
        idx = _decode("r", outer_shape, "", body)
        for j in per_row:
            op = op_of[leaves[j][1].src.id]
            cnt, st, wj = run_read(j)
            body.append(L.DmaRead(in_cb[j], page_in[j], f"(r - r0) * {wj}", op,
                                  f"{_base(offs[j], vecs[j][:-1], idx)} + c0 * {inner_st[j]}", cnt, st))
        body.append(L.End())
    for j in stored:
        body.append(L.CbPush(in_cb[j]))

    # ---- compute: SRAM -> SRAM
    page_of: dict[int, str] = {}  # id(Leaf) -> its SRAM page (two views of one node: two pages)
    for j in stored:
        body.append(L.CbWait(in_cb[j], f"x{page_in[j]}"))
    for cb, page in zip(out_cbs, outs):
        body.append(L.CbReserve(cb, page))
    single = single_ok and mode == "tile" and layout(0, mode) == "col"
    ops_per_elem = 1

    def turn(src: str, dst: str) -> list:
        """The tile's column page src as rows in page dst: 8x8 register transposes, scalar edges."""
        return [L.Range("rr", "0", "fr / 8"), L.Range("cc", "0", "fc / 8"),
                L.Call("tt_transpose8x8_b32", (f"{src} + cc * 8 * {te} + rr * 8", str(te),
                                               f"{dst} + rr * 8 * {te} + cc * 8", str(te))),
                L.End(), L.End(),
                L.Range("rr", "0", "nr"), L.Range("cc", "(rr < fr ? fc : 0)", "nc"),
                L.Store(dst, f"rr * {te} + cc", f"{src}[cc * {te} + rr]"),
                L.End(), L.End()]
    if single or turn_cb:
        body += [L.Define("nr", "int64_t", "r1 - r0"), *([L.Define("fr", "int64_t", "nr & ~7")] if single else []),
                 L.Define("fc", "int64_t", "nc & ~7")]
    if single:  # a stored transpose
        body += turn(f"x{page_in[0]}", "out")
    else:
        iota = [j for j, (_, a) in enumerate(leaves) if a.src.op == "iota"]
        if turn_cb:  # by strips of STRIP rows, each first turned from the column pages (stays in L1)
            body += [L.Range("rs", "0", "nr", step=STRIP), L.Define("re", "int64_t", f"K_MIN(rs + {STRIP}, nr)"),
                     L.Define("sf", "int64_t", f"re - rs == {STRIP} ? fc : 0")]
            for j, cb in turn_cb.items():
                src, dst = f"x{page_in[j]}", f"t{page_in[j]}"
                body += [L.CbReserve(cb, dst), L.Range("cc", "0", f"sf / {STRIP}"),
                         L.Call("tt_transpose8x8_b32", (f"{src} + cc * {STRIP} * {te} + rs", str(te),
                                                        f"{dst} + cc * {STRIP}", str(te))),
                         L.End(), L.Range("rr", "0", "re - rs"), L.Range("cc", "sf", "nc"),
                         L.Store(dst, f"rr * {te} + cc", f"{src}[cc * {te} + rs + rr]"), L.End(), L.End(),
                         L.CbPush(cb), L.CbWait(cb, f"xt{page_in[j]}")]
            body.append(L.Range("r", "r0 + rs", "r0 + re"))
        else:
            body.append(L.Range("r", "r0", "r1"))
        idx = _decode("r", outer_shape, "v", body) if iota else []
        index_of: dict[int, str] = {}
        leaf_of: dict[int, Leaf] = {}
        for j, (n, a) in enumerate(leaves):
            leaf_of[n.id] = Leaf(a, n.dtype, opmap.get(a.src.id, -1))
            h, q = half.get(j, (j, 0))  # (the second of a pair: the odd elements of its first's page)
            if h in in_cb:
                page_of[id(leaf_of[n.id])] = f"x{page_in[h]}"
            if j in iota:
                body.append(L.Define(f"ib{j}", "int64_t", _base(offs[j], vecs[j][:-1], idx)))
                index_of[n.id] = f"ib{j} + j * {inner_st[j]}" if inner_st[j] else f"ib{j}"
            elif h in heads:
                row = "0" if rowconst[h] else f"(r - r0) * {w}"
                index_of[n.id] = f"({row} + (j - c0)) * 2 + {q}"
            elif j in turn_cb:
                page_of[id(leaf_of[n.id])] = f"xt{page_in[j]}"
                index_of[n.id] = f"(r - r0 - rs) * {te} + (j - c0)"
            elif j in in_cb:
                if layout(j, mode) == "col":
                    index_of[n.id] = f"(j - c0) * {te} + (r - r0)"
                else:
                    row = "0" if rowconst[j] else f"(r - r0) * {1 if inner_st[j] == 0 else w}"
                    index_of[n.id] = row if inner_st[j] == 0 else f"{row} + (j - c0)"
            else:
                index_of[n.id] = "0"  # scalar constant
        # (a chunk's first-use inputs need no read-ahead hint: the loop reads them in order, and
        # the host's prefetcher streams them. Asking for the next chunk in sub-blocks of 256 as
        # well, as when a chunk was copied first, made ELU, ReLU, GELU and ELU's composite form on
        # 4M f32 take 1.02-1.45x the time, one host thread, under load)
        lines = [j for j in first_use if outer_shape and leaves[j][0].nbytes > PREFETCH_MIN_BYTES]
        if lines:
            # as a reduction's runs (lower_reduce): a block's first-use copy leaves its page's
            # stores pending behind its last DRAM loads, so each block would start from an empty
            # memory pipeline; the same line of the next block is asked for with each line of
            # this one (layernorm's normalizing kernel, f32[4096, 1024]: 0.75-0.85x its time, one
            # thread, under load). Only for light math (LINE_MAX_OPS, checked below): a heavier
            # body hides the memory time itself, and there the split loop cost more than it saved
            # (softmax's exp(x - max) / sum: 1.08-1.14x)
            split_at = len(body)
            pidx = _decode("r", outer_shape, "pf", body)
            step = LINE_BYTES // max(itemsize(leaves[j][0].dtype) for j in lines)
            body.append(L.Range("jb", "c0", "c1", step=step))
            for j in lines:
                n, a = leaves[j]
                body.append(L.DmaPrefetch(op_of[a.src.id], f"{_base(offs[j], vecs[j][:-1], pidx)} + {rb} * {vecs[j][-2]} + jb",
                                          "1", itemsize(n.dtype), line=True))
            # (a whole number of lines per row: a constant trip count, one vector and no tail. The
            # count is spelled from 0: under -fwrapv `j < jb + step` may wrap, so gcc kept a trip
            # count test and a scalar loop beside the vector for every line; layernorm's normalizing
            # kernel was twice base's instructions)
            if inner % step == 0:
                body += [L.Range("jl", "0", str(step), "GCC ivdep", var_type="int"), L.Define("j", "int64_t", "jb + jl")]
            else:
                body.append(L.Range("j", "jb", f"K_MIN(jb + {step}, c1)", "GCC ivdep"))
        else:
            body.append(L.Range("j", "c0", "c1", "GCC ivdep"))
        em = IREmitter(mat, index_of, leaf_of, page_of, body)
        for q, root in enumerate(roots):
            page, at = (outs[0], f"((r - r0) * {w} + (j - c0)) * 2 + {q}") if paired else \
                (outs[q], f"(r - r0) * {w} + (j - c0)")
            body.append(L.Store(page, at, store_expr(root.dtype, em.value(root))))
            em.raw.pop(root.id, None)  # a later result reading it sees the stored (rounded) value
        ops_per_elem = max(em.ops, 1)
        if lines and em.ops > LINE_MAX_OPS:  # the plain loop after all (above)
            loop = next(u for u in body[split_at:] if isinstance(u, L.Range) and u.var in ("j", "jl"))
            end = body.index(loop) + (2 if loop.var == "jl" else 1)  # (with its Define of j)
            body[split_at:end] = [L.Range("j", "c0", "c1", "GCC ivdep")]
            lines = []
        body += [L.End(), L.End()] + ([L.End()] if lines else [])
        if turn_cb:
            body += [L.CbPop(cb) for cb in turn_cb.values()] + [L.End()]
    for j in stored:
        body.append(L.CbPop(in_cb[j]))
    for cb in out_cbs:
        body.append(L.CbPush(cb))
    if mode == "tile":  # per device tile of the block, as when blocks were tiles
        body.append(L.VectorOps(f"{ops_per_elem} * (((r1 - r0 + {TILE - 1}) / {TILE}) * ((nc + {TILE - 1}) / {TILE}))"))
    else:
        body.append(L.VectorOps(f"{ops_per_elem} * (((r1 - r0) * nc + {TILE * TILE - 1}) / {TILE * TILE})"))

    # ---- writer: SRAM -> DRAM
    res = ["res"] + [f"res{q}" for q in range(1, len(out_cbs))]
    for cb, page in zip(out_cbs, res):
        body.append(L.CbWait(cb, page))
    if affine:
        idx = _decode("r0", outer_shape, "w", body)
    else:
        body.append(L.Range("r", "r0", "r1"))
        idx = _decode("r", outer_shape, "w", body)
    for q, (d, cb, page) in enumerate(zip(dests, out_cbs, res)):
        dop, j = op_of[d.src.id], nl + q
        # (a pair: both results' elements, interleaved, are one dense run of 2 nc)
        cnt, st, ww = ("2 * nc", 1, 2 * w) if paired else ("nc", inner_st[j], w)
        if affine:
            pitch = str(vecs[j][-2]) if outer_shape else "0"
            body.append(L.DmaWrite(cb, page, "0", dop, f"{_base(offs[j], vecs[j][:-1], idx)} + c0 * {inner_st[j]}",
                                   cnt, st, *(("r1 - r0", pitch, str(ww)) if mode != "chunk" else ())))
        else:
            body.append(L.DmaWrite(cb, page, f"(r - r0) * {ww}", dop,
                                   f"{_base(offs[j], vecs[j][:-1], idx)} + c0 * {inner_st[j]}", cnt, st))
    if not affine:
        body.append(L.End())
    for cb in out_cbs:
        body.append(L.CbPop(cb))

    return L.LoopKernel(name, operands, cbs, body, items if size else 0,
                        [op for root in roots for op in fused_ops(root, mat)], kind)


# ----------------------------------------------------------------------------- reductions
PIECE = 4096  # elements of one reduced run DMA'd at a time (a multiple of LANES)
SHORT_RUN = 256  # runs at most this long are read a work item's rows at a time (see lower_reduce)
COLS = 256    # kept columns per work item of a column reduction
PREFETCH_BYTES = 4096  # read ahead of a reduction's piece: a page, well inside the host's L1
PREFETCH_MIN_BYTES = 1 << 20  # ...of an operand bigger than the host's L2 (1 MiB a core here)


def _lane_ir(simple: tuple, dt: str, acc: str, nan: str, v: str) -> list:
    """One accumulation step. Float max/min use a plain compare in the hot loop and track NaN
    on the side (the exact NaN/-0 rules are applied once, when the lanes are combined)."""
    if simple[2] is None:
        return [L.Assign(acc, simple[0](dt, acc, v))]
    return [L.Assign(acc, simple[2](acc, v)), L.Assign(nan, f"{nan} | ({v} != {v})")]


def lower_reduce(mat: set[int], k: Kernel, name: str, sram_budget: int, ncores: int = MM_MIN_ITEMS) -> L.LoopKernel:
    """A reduction: each work item reduces a group of outputs (or, for a column reduction, a
    strip of kept columns); the reduced runs come into SRAM by DMA in pieces, results leave by
    one DMA per item."""
    r = k.root
    n_ops, idx_out, rbody = r.attrs["n"], r.attrs["index"], r.attrs["body"]
    operands, inits = r.inputs[:n_ops], r.inputs[n_ops:]
    # sibling reductions (fuse._sibling_reductions): one operand and init each, in one loop; then
    # elementwise values over the operand's space the loop stores too (fuse._reductions_with_stores)
    rs = [x for x in k.roots() if x.op == "reduce"]
    stores = list(zip(k.roots()[len(rs):], (k.dest, *k.extra)[len(rs):]))
    if len(rs) > 1:
        operands, inits = [x.inputs[0] for x in rs], [x.inputs[1] for x in rs]
    in_shape = operands[0].shape
    axes = r.attrs["axes"]
    kept = [d for d in range(len(in_shape)) if d not in axes]
    perm = kept + list(axes)
    leaves: list[tuple[Node, Access]] = []
    # (a stored value's root is computed here, stored node or not)
    for o, top in [(o, False) for o in operands] + [(x, True) for x, _ in stores]:
        for lf in collect_leaves(o, top, mat):
            if all(lf[0] is not x[0] for x in leaves):
                leaves.append(lf)
    init_leaves: list[tuple[Node, Access]] = []
    for i in inits:
        for lf in collect_leaves(i, False, mat):
            if all(lf[0] is not x[0] for x in init_leaves):
                init_leaves.append(lf)
    dest = k.dest
    dests = [dest, *k.extra][:len(rs)]
    opmap = operands_for(leaves + init_leaves, dest.src)
    for d in dests[1:] + [a for _, a in stores]:
        opmap.setdefault(d.src.id, len(opmap))
    nodes = {a.src.id: a.src for _, a in leaves + init_leaves}
    nodes.update((d.src.id, d.src) for d in dests + [a for _, a in stores])
    written = set(nodes) - {a.src.id for _, a in leaves + init_leaves}
    operands_ir = [L.Operand(i, CTYPE[nodes[nid].dtype], nid in written, nodes[nid]) for nid, i in opmap.items()]
    op_of = {nid: operands_ir[i] for nid, i in opmap.items()}
    pshape = tuple(in_shape[d] for d in perm)
    nk = len(kept)
    # the results' strides (a result stored into a concat, fuse._reductions_into_concats, has its
    # own), then the stored values', then the operands': `di` and `si` index them in `vecs`
    # (an epilogue's result may drop the reduction's size-1 dims: stored whole, row-major)
    out_st = [tuple(d.strides) if len(d.strides) == len(r.shape) else tuple(row_major(r.shape)) for d in dests]
    whole = all(st == tuple(row_major(r.shape)) for st in out_st)
    vecs = [tuple(a.strides[d] for d in perm) for _, a in leaves] + \
        [tuple(a.strides[d] for d in perm) for _, a in stores] + [st + (0,) * len(axes) for st in out_st]
    si, di = len(leaves), len(leaves) + len(stores)
    kshape, kvecs = collapse(pshape[:nk], [v[:nk] for v in vecs])
    ashape, avecs = collapse(pshape[nk:], [v[nk:] for v in vecs])
    if not ashape:  # nothing (or only size-1 dims) reduced: one step per output
        ashape, avecs = (1,), [(0,) for _ in avecs]
    offs = [a.offset for _, a in leaves] + [a.offset for _, a in stores] + [d.offset for d in dests]
    n_out = int(np.prod(r.shape, dtype=np.int64))
    n_red = int(np.prod(ashape, dtype=np.int64))
    simple = _simple_combiner(rbody) if n_ops == 1 else None
    combiners = [_simple_combiner(x.attrs["body"]) for x in rs] if len(rs) > 1 else [simple]
    inner_reduced = bool(axes) and (not kept or max(axes) > max(kept))
    col = not inner_reduced and len(kshape) > 0 and simple is not None
    dts = [o.dtype for o in operands]
    stored = [j for j, (_, a) in enumerate(leaves) if not memoryless(a.src)]
    init_stored = [j for j, (_, a) in enumerate(init_leaves) if not memoryless(a.src)]
    last = ashape[-1]
    run = COLS if col else last  # elements one DMA brings per leaf

    def make_cbs(piece: int, per: int) -> list[L.CircularBuffer]:
        cbs = [L.CircularBuffer(f"cb{t}", CTYPE[leaves[j][0].dtype], itemsize(leaves[j][0].dtype),
                                per if j in per_row else 1 if avecs[j][-1] == 0 and not col else piece)
               for t, j in enumerate(stored)]
        cbs += [L.CircularBuffer(f"cbi{t}", CTYPE[init_leaves[j][0].dtype], itemsize(init_leaves[j][0].dtype), 1, 1)
                for t, j in enumerate(init_stored)]
        cbs += [L.CircularBuffer(f"cbst{q}", CTYPE[x.dtype], itemsize(x.dtype), piece) for q, (x, _) in enumerate(stores)]
        cbs += [L.CircularBuffer(f"cbout{_sfx(i)}", CTYPE[d.src.dtype], itemsize(d.src.dtype), per)
                for i, d in enumerate(dests)]
        L.place(cbs)
        return cbs

    piece = min(PIECE, max(run, 1)) if not col else max(1, min(COLS, kshape[-1]))  # (an empty kept dim: no items)
    per_item = 1 if col else max(1, CHUNK // max(n_red, 1))
    if not col and -(-n_out // max(1, PIECE // max(n_red, 1))) >= ncores:
        # outputs enough for every core at a piece's worth of elements an item: an item's fixed
        # costs (its result DMA and event count, the loop setup) then weigh on 4096 elements
        # rather than 1024 (row reductions of f32[4096, 1024]: 0.8-0.95x their time, one thread)
        per_item = max(1, PIECE // max(n_red, 1))
    # a value per output, the same along the reduced run (layernorm's mean in its variance, eigh's
    # c and s per pair): read for the item's outputs at once by one DMA, not one DMA per output
    # (the item's outputs in one run of the last kept dim: see below)
    if (stores or not whole) and not col and len(kshape) > 1:
        # results and stored rows go out an item's at a time, so its rows keep to one run of the
        # last kept dim (eigh's batch of 4 matrices: 4 rows an item, not 16 over two runs)
        per_item = math.gcd(per_item, kshape[-1])
    per_row = [j for j in stored if per_item > 1 and kshape and kvecs[j][-1] != 0 and not any(avecs[j])]
    per_out = piece if col else per_item
    # Short runs (rows of 64 f32: eigh's pair products, a sum over a short last dim) come in by one
    # DMA per operand for the item's rows, not one per output: with a DMA per 256-byte run a
    # row sum of f32[4096, 64] took 2x the time of f32[256, 1024].
    rows_alike = not col and len(ashape) == 1 and last <= SHORT_RUN and \
        all(avecs[j][-1] != 0 and (not kvecs[j] or kvecs[j][-1] == last * avecs[j][-1]) for j in stored
            if j not in per_row)  # (rows packed alike in DRAM and the page: the host's first-use read)

    def blocks() -> bool:  # (an item's outputs differ in the last kept index only)
        return rows_alike and 1 < per_item and last <= piece and (len(kshape) < 2 or kshape[-1] % per_item == 0)
    block = blocks()
    cbs = make_cbs(per_item * last if block else piece, per_out)
    # (rows of at most LANES: the piece is the row and cannot shrink, the item's rows must)
    while L.sram_end(cbs) > sram_budget and (piece > LANES or per_item > 1):
        piece = max(LANES, piece // 2) if piece > LANES else piece
        per_item = max(1, per_item // 2)
        per_out = piece if col else per_item
        block = blocks()
        cbs = make_cbs(per_item * last if block else piece, per_out)
    if (stores or not whole) and not col and not block and per_item > 1:
        # an item's results (and stored rows) are written by one DMA each: it must keep to one
        # run of the last kept dim, as a block does, or else be one row
        per_item = per_out = 1
        cbs = make_cbs(piece, per_out)
    if per_row and len(kshape) > 1 and not block and per_item > 1:  # (outputs in more than one run)
        per_row = []
        cbs = make_cbs(piece, per_out)
    assert not stores or not col and len(ashape) == 1 and all(avecs[si + q] == (1,) for q in range(len(stores))), \
        "stored values are rows of the reduced run"
    _check_fits(cbs, sram_budget, name, "reduce", r)
    cb_of = dict(zip(stored, cbs))
    icb_of = dict(zip(init_stored, cbs[len(stored):]))
    st_cbs = cbs[len(stored) + len(init_stored):len(cbs) - len(dests)]
    out_cbs = cbs[len(cbs) - len(dests):]
    out_cb = out_cbs[0]
    assert len(rs) == 1 or not col and all(combiners), "sibling reductions are row reductions with lanes"
    body: list = []

    # init values: scalars (a stored one comes in by a one-element DMA)
    ipage: dict[int, str] = {}
    for t, j in enumerate(init_stored):
        a = init_leaves[j][1]
        body.append(L.CbReserve(icb_of[j], f"iw{t}"))
        body.append(L.DmaRead(icb_of[j], f"iw{t}", "0", op_of[a.src.id], str(a.offset), "1", 0))
        body.append(L.CbPush(icb_of[j]))
        body.append(L.CbWait(icb_of[j], f"ir{t}"))
    ileaf = {n.id: Leaf(a, n.dtype, opmap.get(a.src.id, -1)) for n, a in init_leaves}
    for t, j in enumerate(init_stored):
        ipage[id(ileaf[init_leaves[j][0].id])] = f"ir{t}"
    ie = IREmitter(mat, {n.id: "0" for n, _ in init_leaves}, ileaf, ipage, body)
    ie.prefix = "init"
    init_vals = [ie.value(i) for i in inits]

    def leaf_setup(index_of_fn) -> tuple[dict[int, str], dict[int, Leaf], dict[int, str]]:
        index_of, leaf_of, page_of = {}, {}, {}
        for j, (n, a) in enumerate(leaves):
            leaf_of[n.id] = Leaf(a, n.dtype, opmap.get(a.src.id, -1))
            index_of[n.id] = index_of_fn(j)
            if j in cb_of:
                page_of[id(leaf_of[n.id])] = f"x{j}"
        return index_of, leaf_of, page_of

    def dma_in(j: int, base: str, count: str, stride: int, host: str = "") -> None:
        body.append(L.CbReserve(cb_of[j], f"w{j}"))
        body.append(L.DmaRead(cb_of[j], f"w{j}", "0", op_of[leaves[j][1].src.id], base,
                              "1" if stride == 0 else count, stride, host=host if stride else ""))
        body.append(L.CbPush(cb_of[j]))
        body.append(L.CbWait(cb_of[j], f"x{j}"))

    def write(cb: L.CircularBuffer, page: str, node: Node, base: str, count: str, rows: str = "1",
              dram_pitch: str = "0", sram_pitch: str = "0") -> None:  # a page of stored values out
        body.extend([L.CbPush(cb), L.CbWait(cb, f"{page}r"),
                      L.DmaWrite(cb, f"{page}r", "0", op_of[node.id], base, count, 1, rows, dram_pitch, sram_pitch),
                     L.CbPop(cb)])

    def iota_base(j: int, kidx: list[str], aidx: list[str], kv: list, av: list) -> str:
        return _base(offs[j], tuple(kv) + tuple(av), kidx + aidx)

    for i, cb in enumerate(out_cbs):
        body.append(L.CbReserve(cb, f"out{_sfx(i)}"))
    if col:
        kin = kshape[-1]
        kouter = list(kshape[:-1])
        per = -(-kin // piece)
        items = int(np.prod(kouter, dtype=np.int64)) * per if n_out else 0
        body += [L.Define("ro", "int64_t", f"it / {per}"), L.Define("c0", "int64_t", f"(it % {per}) * {piece}"),
                 L.Define("c1", "int64_t", f"K_MIN(c0 + {piece}, (int64_t){kin})"), L.Define("nc", "int64_t", "c1 - c0"),
                 L.Var("acc", VTYPE[dts[0]], n=piece), L.Var("nanv", "int", n=piece),
                 L.Range("j", "0", "nc"), L.Assign("acc[j]", simple[1](dts[0])), L.Assign("nanv[j]", "0"), L.End()]
        kidx = _decode("ro", kouter, "k", body)
        aidx = [f"a{d}" for d in range(len(ashape))]
        for d, n in enumerate(ashape):
            body.append(L.Range(f"a{d}", "0", str(n)))
        for j in stored:
            base = f"{_base(offs[j], kvecs[j][:-1] + avecs[j], kidx + aidx)} + c0 * {kvecs[j][-1]}"
            dma_in(j, base, "nc", kvecs[j][-1])
        for j, (_, a) in enumerate(leaves):
            if a.src.op == "iota":
                body.append(L.Define(f"ib{j}", "int64_t", _base(offs[j], kvecs[j][:-1] + avecs[j], kidx + aidx)))

        def col_index(j: int) -> str:
            if leaves[j][1].src.op == "iota":
                return f"ib{j} + j * {kvecs[j][-1]}" if kvecs[j][-1] else f"ib{j}"
            if j in cb_of:
                return "(j - c0)" if kvecs[j][-1] else "0"
            return "0"
        index_of, leaf_of, page_of = leaf_setup(col_index)
        body.append(L.Range("j", "c0", "c1", "GCC ivdep"))
        em = IREmitter(mat, index_of, leaf_of, page_of, body)
        v = em.value(operands[0])
        body += _lane_ir(simple, dts[0], "acc[j - c0]", "nanv[j - c0]", v)
        body.append(L.End())
        for j in stored:
            body.append(L.CbPop(cb_of[j]))
        body += [L.End() for _ in ashape]
        body.append(L.Range("j", "0", "nc"))
        res = simple[0](dts[0], init_vals[0], "acc[j]")
        if simple[2] is not None:
            res = _with_nan(res, "nanv[j]", dts[0])
        val, vdt = _finish_ir(mat, k, res, body)
        body.append(L.Store("out", "j", store_expr(vdt, val)))
        body.append(L.End())
        vec_ops = em.ops
        nvec = f"{vec_ops + 1} * ((nc * {n_red} + 1023) / 1024)"
        oidx = _decode("ro", kouter, "o", body)
        out_count = "nc"
        out_at = [(f"{_base(dest.offset, kvecs[di][:-1], oidx)} + c0 * {kvecs[di][-1]}", kvecs[di][-1])]
    else:
        items = -(-n_out // per_item) if n_out else 0
        body += [L.Define("o0", "int64_t", f"it * {per_item}"),
                 L.Define("o1", "int64_t", f"K_MIN(o0 + {per_item}, (int64_t){n_out})")]
        blocked = [j for j in stored if j not in per_row] if block else []
        # the kept indices of the item's first output: where its per-row reads, its blocks, its
        # stored rows and its results (not whole) start, each in one run of the last kept dim
        first = _decode("o0", list(kshape), "b", body) \
            if kshape and (per_row or blocked or block and stores or not whole) else []
        for j in per_row:
            dma_in(j, _base(offs[j], kvecs[j], first), "o1 - o0", kvecs[j][-1])
        if blocked:  # the item's outputs differ in the last kept index only (see `block`)
            for j in blocked:
                body.append(L.CbReserve(cb_of[j], f"w{j}"))
                body.append(L.DmaRead(cb_of[j], f"w{j}", "0", op_of[leaves[j][1].src.id],
                                      _base(offs[j], kvecs[j], first), str(last), avecs[j][-1], "o1 - o0",
                                      str(kvecs[j][-1] if kvecs[j] else last * avecs[j][-1]), str(last), L.FIRST_USE))
                body.append(L.CbPush(cb_of[j]))
                body.append(L.CbWait(cb_of[j], f"x{j}"))
        if block:  # an item's stored rows: one page, written by one block DMA after its rows
            body += [L.CbReserve(cb, f"st{q}") for q, cb in enumerate(st_cbs)]
        body.append(L.Range("o", "o0", "o1"))
        kidx = _decode("o", list(kshape), "k", body) if kshape else []
        aouter = [f"a{d}" for d in range(len(ashape) - 1)]
        lanes = simple is not None

        def store_ir(em: IREmitter, var: str) -> list:  # the stored values at element `var` of the piece
            at = f"(o - o0) * {last} + {var}" if block else var
            return [L.Store(f"st{q}", at, store_expr(x.dtype, em.value(x))) for q, (x, _) in enumerate(stores)]
        if lanes:
            for i, sim in enumerate(combiners):
                body.append(L.Var(f"lane{_sfx(i)}", VTYPE[dts[i]], n=LANES))
                if sim[2] is not None:
                    body.append(L.Var(f"nanv{_sfx(i)}", "int", n=LANES))
            body.append(L.Range("l", "0", str(LANES), var_type="int"))
            for i, sim in enumerate(combiners):
                body.append(L.Assign(f"lane{_sfx(i)}[l]", sim[1](dts[i])))
                if sim[2] is not None:
                    body.append(L.Assign(f"nanv{_sfx(i)}[l]", "0"))
            body.append(L.End())
        else:
            accs = [f"acc{i}" for i in range(n_ops)]
            for i in range(n_ops):
                body.append(L.Var(accs[i], VTYPE[inits[i].dtype], init_vals[i]))
        for d in range(len(ashape) - 1):
            body.append(L.Range(f"a{d}", "0", str(ashape[d])))
        one_piece = piece >= last  # (most reductions: no loop over pieces, less C to compile)
        if one_piece:
            body += [L.Define("pc", "int64_t", "0"), L.Define("np_", "int64_t", str(last))]
        else:
            body.append(L.Range("pc", "0", str(last), step=piece))
            body.append(L.Define("np_", "int64_t", f"K_MIN((int64_t){piece}, {last} - pc)"))
        if not block:  # a row's piece of stored values, written after it
            body += [L.CbReserve(cb, f"st{q}") for q, cb in enumerate(st_cbs)]
        for j in [j for j in stored if j not in per_row and j not in blocked]:  # each element is read once,
            # by the loop over the run: the host copies it there
            base = f"{_base(offs[j], kvecs[j] + avecs[j][:-1], kidx + aouter)} + pc * {avecs[j][-1]}"
            dma_in(j, base, "np_", avecs[j][-1], L.FIRST_USE)
        # ask the host to fetch the DRAM of the next run while this piece is reduced (a host core
        # runs its DMA and its math one after the other; this lets the next DMA's reads overlap
        # this math). Only for operands beyond the host's L2 whose runs move (not one run read by
        # every output): others are in the caches already, and the C compiler's time is better
        # spent elsewhere. A run further on is asked for whole, by one call; a run right after
        # this one (the next piece, or the next row of rows side by side), a line at a time below.
        lines_ahead: list[L.DmaPrefetch] = []  # (asked for inside the lane loop below)
        for j in stored:
            src = leaves[j][1].src
            adjacent = not one_piece or (len(ashape) == 1 and bool(kvecs[j]) and kvecs[j][-1] == last)
            if not (avecs[j][-1] == 1 and src.nbytes > PREFETCH_MIN_BYTES and any(kvecs[j] + avecs[j][:-1])):
                continue
            here = f"{_base(offs[j], kvecs[j] + avecs[j][:-1], kidx + aouter)} + pc"
            if not adjacent:
                nxt = f"{here} + np_"
                ahead = max(1, PREFETCH_BYTES // itemsize(src.dtype))
                body.append(L.DmaPrefetch(op_of[src.id], nxt, f"K_MIN((int64_t){ahead}, {src.size} - ({nxt}))",
                                          itemsize(src.dtype)))
            elif simple is not None and piece >= LANES:
                # The next run follows this one, but the host's stream prefetcher alone does not
                # keep it coming: a run's FIRST_USE copy leaves the page's stores pending behind
                # its last DRAM loads, and the loads after the loop (the combine, an epilogue's
                # constant, spills) wait behind them, so each run started from an empty memory
                # pipeline (the mean of f32[4096, 1024]: 2.0-2.4x the time of the same loop
                # without an epilogue). One line of the next run is asked for with each line of
                # this one: layernorm's reductions 0.65x and 0.9x their time, a plain row sum and
                # softmax's unchanged (one thread, CPU time, under load); a call per run asking for
                # the whole next run made softmax's 1.3x slower.
                lines_ahead.append(L.DmaPrefetch(op_of[src.id], f"{here} + jj + {piece if not one_piece else last}", "1",
                                                 itemsize(src.dtype), line=True))
        for j, (_, a) in enumerate(leaves):
            if a.src.op == "iota":
                body.append(L.Define(f"ib{j}", "int64_t",
                                     f"{_base(offs[j], kvecs[j] + avecs[j][:-1], kidx + aouter)} + pc * {avecs[j][-1]}"))

        def row_index(var: str):
            def f(j: int) -> str:
                s = avecs[j][-1]
                if leaves[j][1].src.op == "iota":
                    return f"ib{j} + ({var}) * {s}" if s else f"ib{j}"
                if j in cb_of:
                    if j in blocked:
                        return f"(o - o0) * {last} + ({var})"
                    return f"({var})" if s else "(o - o0)" if j in per_row else "0"
                return "0"
            return f
        if lanes:
            # the run in LANES-wide steps, then its tail, each only if the lengths need it (less
            # C for the C compiler: reductions are most of a training step's kernels)
            body.append(L.Define("jm", "int64_t", f"np_ / {LANES} * {LANES}"))
            if piece >= LANES:
                body.append(L.Range("jj", "0", "jm", step=LANES))
                body += lines_ahead
                body.append(L.Range("l", "0", str(LANES), "omp simd", var_type="int"))
                index_of, leaf_of, page_of = leaf_setup(row_index("jj + l"))
                em = IREmitter(mat, index_of, leaf_of, page_of, body)
                for i, sim in enumerate(combiners):  # (work the results share is computed once)
                    body += _lane_ir(sim, dts[i], f"lane{_sfx(i)}[l]", f"nanv{_sfx(i)}[l]", em.value(operands[i]))
                body += store_ir(em, "jj + l")
                body += [L.End(), L.End()]
            if last % LANES or piece % LANES:
                body.append(L.Range("jj", "jm", "np_"))
                index_of, leaf_of, page_of = leaf_setup(row_index("jj"))
                em = IREmitter(mat, index_of, leaf_of, page_of, body)
                for i, sim in enumerate(combiners):
                    body += _lane_ir(sim, dts[i], f"lane{_sfx(i)}[0]", f"nanv{_sfx(i)}[0]", em.value(operands[i]))
                body += store_ir(em, "jj")
                body.append(L.End())
        else:
            body.append(L.Range("jj", "0", "np_"))
            index_of, leaf_of, page_of = leaf_setup(row_index("jj"))
            em = IREmitter(mat, index_of, leaf_of, page_of, body)
            xs = [em.value(o) for o in operands]
            be = IREmitter(set(), {}, {}, {}, body)
            be.prefix = "bod"
            be.names.update(region_names(rbody, accs + xs))
            res_ = [be.value(o) for o in rbody.outputs]
            body += [L.Assign(a, v) for a, v in zip(accs, res_)]
            body += store_ir(em, "jj")
            body.append(L.End())
        for j in stored:
            if j not in per_row and j not in blocked:
                body.append(L.CbPop(cb_of[j]))
        if not block:
            for q, (cb, (_, a)) in enumerate(zip(st_cbs, stores)):
                write(cb, f"st{q}", a.src, f"{_base(offs[si + q], kvecs[si + q], kidx)} + pc", "np_")
        if not one_piece:
            body.append(L.End())  # pc
        body += [L.End() for _ in range(len(ashape) - 1)]
        if lanes:
            results = []
            for i, sim in enumerate(combiners):
                acc, lane, nan = f"acc{_sfx(i)}", f"lane{_sfx(i)}", f"nan{_sfx(i)}_"
                if block:
                    # short runs: the lanes folded in halves (4 dependent steps, each a vector op),
                    # not one by one into acc (16 dependent adds an output: most of a row sum
                    # of f32[4096, 64]'s time)
                    w = LANES // 2
                    while w:
                        body.append(L.Range("l", "0", str(w), var_type="int"))
                        body.append(L.Assign(f"{lane}[l]", sim[0](dts[i], f"{lane}[l]", f"{lane}[l + {w}]")))
                        if sim[2] is not None:
                            body.append(L.Assign(f"nanv{_sfx(i)}[l]", f"nanv{_sfx(i)}[l] | nanv{_sfx(i)}[l + {w}]"))
                        body.append(L.End())
                        w //= 2
                body.append(L.Var(acc, VTYPE[dts[i]], init_vals[i]))
                folded = "1" if block else str(LANES)
                body += [L.Range("l", "0", folded, var_type="int"),
                         L.Assign(acc, sim[0](dts[i], acc, f"{lane}[l]")), L.End()]
                results.append(acc)
                if sim[2] is not None:
                    body += [L.Var(nan, "int", "0"), L.Range("l", "0", folded, var_type="int"),
                             L.Assign(nan, f"{nan} | nanv{_sfx(i)}[l]"), L.End()]
                    results[-1] = _with_nan(acc, nan, dts[i])
            result = results[0]
            vec_ops = em.ops + len(rs) - 1
        else:
            result = accs[idx_out]
            vec_ops = em.ops + 1
        val, vdt = _finish_ir(mat, k, result, body)
        body.append(L.Store("out", "o - o0", store_expr(vdt, val)))
        for i in range(1, len(rs)):
            body.append(L.Store(f"out{i}", "o - o0", store_expr(rs[i].dtype, results[i])))
        body.append(L.End())  # o
        for j in per_row + blocked:
            body.append(L.CbPop(cb_of[j]))
        if block:
            for q, (cb, (_, a)) in enumerate(zip(st_cbs, stores)):
                write(cb, f"st{q}", a.src, _base(offs[si + q], kvecs[si + q], first), str(last), "o1 - o0",
                      str(kvecs[si + q][-1] if kvecs[si + q] else 0), str(last))
        nvec = f"{vec_ops + 1} * (((o1 - o0) * {n_red} + 1023) / 1024)"
        out_count = "o1 - o0"
        out_at = [(f"{d.offset} + o0", 1) if whole else
                  (_base(d.offset, kvecs[di + i], first), kvecs[di + i][-1] if kvecs[di + i] else 1)
                  for i, d in enumerate(dests)]
    for cb in out_cbs:
        body.append(L.CbPush(cb))
    body.append(L.VectorOps(nvec))
    for t, j in enumerate(init_stored):
        body.append(L.CbPop(icb_of[j]))
    for i, (cb, d, (base, stride)) in enumerate(zip(out_cbs, dests, out_at)):
        body.append(L.CbWait(cb, f"res{_sfx(i)}"))
        body.append(L.DmaWrite(cb, f"res{_sfx(i)}", "0", op_of[d.src.id], base, out_count, stride))
        body.append(L.CbPop(cb))
    ops = fused_ops(k.epilogue if k.epilogue is not None else r, mat)
    for x in rs[1:] + [x for x, _ in stores]:
        ops += [o for o in fused_ops(x, mat) if o not in ops]
    return L.LoopKernel(name, operands_ir, cbs, body, items, ops, "reduce")


def _sfx(i: int) -> str:
    """The name suffix of a reduce kernel's i-th result's variables (none for the first)."""
    return str(i) if i else ""


def _finish_ir(mat: set[int], k: Kernel, result: str, body: list) -> tuple[str, str]:
    """The value to store: the reduction result, or the epilogue applied to it (epilogues of
    reductions read only constants besides the result)."""
    r = k.root
    body.append(L.Define("res_", VTYPE[r.dtype], result))
    if k.epilogue is None:
        return "res_", r.dtype
    alias, leaves = epilogue_inputs(k, mat)
    assert all(memoryless(a.src) for _, a in leaves), "a reduction epilogue reads memory"
    em = IREmitter(mat, {n.id: "0" for n, _ in leaves}, {n.id: Leaf(a, n.dtype, -1) for n, a in leaves}, {}, body)
    em.prefix = "epi"
    em.names.update({a: "res_" for a in alias})
    return em.value(k.epilogue), k.epilogue.dtype


# ----------------------------------------------------------------------------- products
def _row_offset(row: str, lay: LhsLayout) -> str:
    """The offset of A's row `row` when its rows are gathered (lay.outer around lay.row_count)."""
    return f"{_mixed(f'({row} / {lay.row_count})', lay.outer)} + ({row} % {lay.row_count}) * {lay.row}"


def _mixed(var: str, progs: tuple[tuple[int, int], ...]) -> str:
    """The offset of index `var` in a mixed radix ((count, stride) per run, outermost first)."""
    terms, inner = [], 1
    for count, stride in reversed(progs):
        terms.append(f"(({var} / {inner}) % {count}) * {stride}" if inner > 1 else f"({var} % {count}) * {stride}")
        inner *= count
    return " + ".join(reversed(terms)) or "0"


def mm_sram(sram_per_core: int) -> int:
    """The matrix engine's share of a core's SRAM (= ttrt_kernel.h's TT_MM_SRAM)."""
    return min(sram_per_core // 2, MM_SRAM_BYTES)


def _multicast(items: int, mb: int, a: L.Operand, ls: list[int], b: L.Operand, rs: list[int], K: int,
               packed_n: int = 0, per_batch: int = 0, a_end: str | None = None) -> tuple[list, list]:
    """Panel reuse, as tt-metal's multicast matmuls do it. The cores run their work items in
    waves: the runtime gives core c the items [c * items / ncores, (c + 1) * items / ncores), and
    an item's wave is its place in its core's range. In a wave, the A row panel of a block row is
    read from DRAM once, by the core of its first block there, and multicast over the NoC to the
    cores of the row's other blocks; likewise each B column panel. The receiving cores mark the
    panels (tt_multicast), so the engine's reads of them count as NoC, not DRAM, bytes. The items
    need not split evenly over the cores (p150's 140). A B shared by every batch (stride 0: the
    kernel of a convolution batched over output rows; `per_batch` items a batch) is received
    from any earlier core whose item in the same wave has the same block column, whatever its
    batch. `a_end`: the last element of a row of A past its first, when not (K - 1) * ls[2]
    (K segments). (uops before the engine call, after it)"""
    if min(ls[1], ls[2], rs[1], rs[2]) < 0:  # a reversed view: its panel is not one address range
        return [], []
    a_end = f"ao + (m - 1) * {ls[1]} + {(K - 1) * ls[2] if a_end is None else a_end} + 1"
    b_lo, b_end = "bo", f"bo + (n - 1) * {rs[1]} + {K - 1} * {rs[2]} + 1"
    if packed_n:  # B as bfp8 tiles (packed_n tiles a row): the block column's tiles, first to last
        b_lo = f"(n0 / {TILE}) * {BFP8_TILE_BYTES}"
        b_end = f"({(-(-K // TILE) - 1) * packed_n} + (n0 + n + {TILE - 1}) / {TILE}) * {BFP8_TILE_BYTES}"

    # items take row blocks first (item t: block row t % mb, block column t / mb): an item
    # receives its A panel when an earlier item of its block row (t - k mb) runs in the same wave
    # (on an earlier core; the first of them reads DRAM), its B panel likewise from an earlier
    # item of its block column (t - k). Evenly split, that is t - mb when the wave length divides
    # mb, and t - q (q items per core) in the column. prelude.c's k_multicast finds such items
    # (the runtime's tt_multicast_mark) and marks the panels: one call,
    # so no product kernel carries those loops or the conditional marks in its C.
    before: list = []
    brx = "-1"  # (k_multicast: B's from its block column)
    if per_batch and rs[0] == 0 and items > per_batch:
        # a B shared by every batch: the earlier cores' items of this wave, whatever their batch
        # (split(c) = c * items / ncores, as tt__split)
        before += [L.Define("mn_", "int64_t", "(int64_t)core->ncores"), L.Define("mw_", "int64_t", f"tt__wave(it, {items}, mn_)"),
                   L.Var("mbr_", "int", "0"),
                   L.Range("mk_", "0", f"((it + 1) * mn_ + {items - 1}) / {items} - 1"),
                   L.Define("mi_", "int64_t", f"mk_ * {items} / mn_ + mw_"),
                   L.Assign("mbr_", f"mbr_ | (mi_ < (mk_ + 1) * {items} / mn_ && "
                                    f"(mi_ % {per_batch}) / {mb} == t / {mb})"), L.End()]
        brx = "mbr_"
    before.append(L.Call("k_multicast", ("core", "it", str(items), str(mb), "t", brx,
                                         f"p{a.index} + ao", f"p{a.index} + {a_end}",
                                         f"p{b.index} + {b_lo}", f"p{b.index} + {b_end}")))
    after = [L.Call("tt_multicast", ("core", str(s), "NULL", "NULL")) for s in (0, 1)]
    return before, after


def _bfp8_product(cbs: list[L.CircularBuffer], fn: str, K: int, tn: int, kc: int, a: L.Operand, ls: list[int],
                  w: L.Operand, bd: str) -> list:
    """The engine's product of an item's A block and its B block stored as bfp8 (`tn` tiles a
    row of B), K in chunks of kc: per chunk the block's packed tiles are DMA'd into SRAM (one
    run per tile row: a row's tiles are contiguous), unpacked there (tt_unpack_bfp8) and fed to
    the engine; the first chunk's product lands in the block's page, later ones in a partial
    page added into it. Page c_ is reserved by the caller."""
    cbq, cbu, cbp = (next(cb for cb in cbs if cb.name == n) for n in ("cbq", "cbu", "cbp"))
    tb = BFP8_TILE_BYTES
    return [L.Define("tn_", "int64_t", f"(n + {TILE - 1}) / {TILE}"),
            L.Range("kq_", "0", str(-(-K // kc))),
            L.Define("kk_", "int64_t", f"kq_ * {kc}"), L.Define("kn_", "int64_t", f"K_MIN((int64_t){kc}, {K} - kk_)"),
            L.Define("tk_", "int64_t", f"(kn_ + {TILE - 1}) / {TILE}"),
            L.CbReserve(cbq, "q_"), L.Range("r_", "0", "tk_"),
            L.DmaRead(cbq, "q_", f"r_ * tn_ * {tb}", w, f"((kk_ / {TILE} + r_) * {tn} + n0 / {TILE}) * {tb}",
                      f"tn_ * {tb}", 1),
            L.End(), L.CbPush(cbq), L.CbWait(cbq, "qw_"),
            L.CbReserve(cbu, "u_"),
            L.Call("tt_unpack_bfp8", ("qw_", "tk_", "tn_", "tn_", "u_", f"tn_ * {TILE}", "1" if bd == "bf16" else "0")),
            L.CbPush(cbu), L.CbWait(cbu, "uw_"), L.CbReserve(cbp, "pp_"),
            L.MatMul(fn, "m", "n", "kn_", a, f"ao + kk_ * {ls[2]}", ls[1], ls[2], w, "0", f"tn_ * {TILE}", 1,
                     "kq_ ? pp_ : c_", "n", b_page="uw_"),
            L.CbPush(cbp), L.CbWait(cbp, "pw_"),
            L.Range("e_", "0", "(kq_ ? m * n : 0)", "GCC ivdep"), L.Assign("c_[e_]", "c_[e_] + pw_[e_]"), L.End(),
            L.VectorOps("kq_ ? (m * n + 1023) / 1024 : 0"),
            L.CbPop(cbp), L.CbPop(cbu), L.CbPop(cbq), L.End()]


def bfp8_weight(k: Kernel, mat: set[int], node: Node) -> bool:
    """Whether kernel k reads `node` only as what bfp8 storage serves: the right-hand [K, N]
    operand of a product on the matrix engine, read row-major from its start (`x @ w`)."""
    if k.kind != "dot" or len(node.shape) != 2:
        return False
    r = k.root
    lhs, rhs = r.inputs
    (lb, lf, lc), (rb, rf, rc) = dot_groups(r)
    la, ra = access_of(lhs, mat), access_of(rhs, mat)
    if ra is None or la is None or ra.src is not node or la.src is node or rb or \
            group_strides(lhs.shape, la, [lb, lf, lc]) is None:  # (an A in K segments: packed B is one K)
        return False
    if k.epilogue is not None and any(a.src is node for _, a in epilogue_inputs(k, mat)[1]):
        return False
    K, N = node.shape
    rs = group_strides(rhs.shape, ra, [rb, rf, rc])
    engine = lhs.dtype == rhs.dtype == "f32" and r.dtype == "f32" or lhs.dtype == rhs.dtype == "bf16" and \
        r.dtype in ("f32", "bf16")
    # (a unit dim has no stride of its own: [K, 1] and [1, N] weights are row-major whatever it says)
    return bool(engine and rs is not None and ra.offset == 0 and (rs[1] == 1 or N == 1) and (rs[2] == N or K == 1) and
                int(np.prod([rhs.shape[d] for d in rc], dtype=np.int64)) == K and
                int(np.prod([rhs.shape[d] for d in rf], dtype=np.int64)) == N)


def lower_dot(mat: set[int], k: Kernel, name: str, sram_budget: int, ncores: int = MM_MIN_ITEMS,
              bfp8: frozenset[int] = frozenset()) -> L.LoopKernel:
    """A product: each work item is a bm x bn block of one batch. The engine packs the operand
    blocks into its share of SRAM and writes the f32 block into a page after it; an epilogue
    (bias, activation, residual) runs on that page row by row with its other inputs brought in
    by DMA; each finished row leaves by DMA. Products the engine does not take (integer, f64,
    mixed) run a scalar loop over DMA'd rows and columns."""
    r = k.root
    lhs, rhs = r.inputs
    (lb, lf, lc), (rb, rf, rc) = dot_groups(r)
    la, ra = access_of(lhs, mat), access_of(rhs, mat)
    ls = group_strides(lhs.shape, la, [lb, lf, lc])
    rs = group_strides(rhs.shape, ra, [rb, rf, rc])
    # an A read in place through a mixed-radix batch or in K segments (fuse.lhs_layout)
    lay = lhs_layout(lhs.shape, la, [lb, lf, lc]) if ls is None else None
    if lay is not None:
        ls = [0, lay.row, lay.col]
    assert ls is not None and rs is not None
    B = int(np.prod([lhs.shape[d] for d in lb], dtype=np.int64))
    M = int(np.prod([lhs.shape[d] for d in lf], dtype=np.int64))
    K = int(np.prod([lhs.shape[d] for d in lc], dtype=np.int64))
    N = int(np.prod([rhs.shape[d] for d in rf], dtype=np.int64))
    dest = k.dest
    # the result's [batch, row, column] strides where it is stored: row-major, or a
    # transpose's layout (fuse._stores_through_transpose) with columns still contiguous
    out_groups = dot_out_groups(r)
    cs = group_strides(r.shape, dest, out_groups)
    assert cs is not None and cs[2] in (0, 1)
    alias, epi_leaves = epilogue_inputs(k, mat) if k.epilogue is not None else (frozenset(), [])
    opmap: dict[int, int] = {}
    for a in (la, ra):
        opmap.setdefault(a.src.id, len(opmap))
    for _, a in epi_leaves:
        if not memoryless(a.src):
            opmap.setdefault(a.src.id, len(opmap))
    opmap.setdefault(dest.src.id, len(opmap))
    nodes = {la.src.id: la.src, ra.src.id: ra.src, dest.src.id: dest.src}
    nodes.update({a.src.id: a.src for _, a in epi_leaves})
    ad, bd, od = lhs.dtype, rhs.dtype, r.dtype
    engine = ad == bd == "f32" and od == "f32" or ad == bd == "bf16" and od in ("f32", "bf16")
    # a bfp8 weight: its packed tiles are DMA'd into SRAM and unpacked there, K in chunks of kc
    packed = engine and ra.src.id in bfp8 and bfp8_weight(k, mat, ra.src)
    operands = [L.Operand(i, "uint8_t" if packed and nid == ra.src.id else CTYPE[nodes[nid].dtype],
                          nid == dest.src.id, nodes[nid]) for nid, i in opmap.items()]
    op_of = {nid: operands[i] for nid, i in opmap.items()}
    kc = min(BFP8_CHUNK, -(-K // TILE) * TILE)
    out_dt = k.epilogue.dtype if k.epilogue is not None else od
    stored = [j for j, (_, a) in enumerate(epi_leaves) if not memoryless(a.src)]
    # Rows of A that overlap in memory (a convolution's patches as a windows view: each row K
    # values starting ls[1] < K apart) are DMA'd once as their span into a page the engine reads,
    # instead of the engine packing every row's K values from DRAM: the patches form in SRAM.
    gather = lay is not None and bool(lay.outer)  # rows gathered into a page (fuse.LhsLayout)
    segs, seg_len = (lay.segs, lay.seg_len) if lay is not None and lay.segs > 1 and not gather else (1, K)
    a_span = engine and not packed and ls[2] == 1 and 0 < ls[1] < seg_len and not gather

    def make_cbs(bm: int, bn: int) -> list[L.CircularBuffer]:
        base = max(mm_sram(sram_budget), MM_SRAM_MIN)
        bm, bn = max(1, min(bm, M)), max(1, min(bn, N))  # a block is never bigger than the product
        cbs = []
        if engine:
            cbs.append(L.CircularBuffer("cbc", "float", 4, bm * bn, 1))
        else:
            cbs += [L.CircularBuffer("cba", CTYPE[ad], itemsize(ad), K), L.CircularBuffer("cbb", CTYPE[bd], itemsize(bd), K)]
            base = 0
        cbs += [L.CircularBuffer(f"cb{t}", CTYPE[epi_leaves[j][0].dtype], itemsize(epi_leaves[j][0].dtype), bn)
                for t, j in enumerate(stored)]
        if packed:  # the packed tiles of a K chunk of B's block, them unpacked, a chunk's partial C
            cbs += [L.CircularBuffer("cbq", "uint8_t", 1, kc // TILE * -(-bn // TILE) * BFP8_TILE_BYTES, 1),
                    L.CircularBuffer("cbu", CTYPE[bd], itemsize(bd), kc * -(-bn // TILE) * TILE, 1),
                    L.CircularBuffer("cbp", "float", 4, bm * bn, 1)]
        if segs > 1:  # a segment's partial product, added into the block
            cbs.append(L.CircularBuffer("cbp", "float", 4, bm * bn, 1))
        if a_span:  # one span per segment, `pitch` apart
            cbs.append(L.CircularBuffer("cba", CTYPE[ad], itemsize(ad), segs * ((bm - 1) * ls[1] + seg_len), 1))
        if gather:  # the block's rows of A, K each
            cbs.append(L.CircularBuffer("cba", CTYPE[ad], itemsize(ad), bm * K, 1))
        cbs.append(L.CircularBuffer("cbout", CTYPE[dest.src.dtype], itemsize(dest.src.dtype), bn))
        L.place(cbs, base)
        return cbs

    # big blocks pack B once per block row (host speed); small products still get split into
    # enough work items to occupy the target's grid (and the host threads); all of it fits the SRAM
    bm, bn = MM_BLOCK_M, MM_BLOCK_N
    while B * -(-M // bm) * -(-N // bn) < ncores and (bm > 32 or bn > 64):
        if bm > 32 and (bm >= bn or bn <= 64):
            bm //= 2
        else:
            bn //= 2
    cbs = make_cbs(bm, bn)
    while L.sram_end(cbs) > sram_budget and (bm > (1 if gather else 8) or bn > (32 if packed else 8) or
                                             packed and kc > TILE):
        if packed and kc > TILE:
            kc = max(TILE, kc // 2 // TILE * TILE)
        elif bm >= bn and bm > (1 if gather else 8) or packed and bn <= 32:
            bm //= 2
        else:
            bn //= 2
        cbs = make_cbs(bm, bn)
    if a_span and L.sram_end(cbs) > sram_budget:  # no room for the span page: the engine packs A
        a_span = False
        cbs = make_cbs(bm, bn)
    _check_fits(cbs, sram_budget, name, f"matmul {M}x{K} @ {K}x{N}", r)
    mb, nbk = -(-M // bm), -(-N // bn)
    items = B * mb * nbk if M and N else 0
    body: list = [L.Define("b", "int64_t", f"it / {mb * nbk}"), L.Define("t", "int64_t", f"it % {mb * nbk}"),
                  # row blocks vary fastest: a core's (and a host thread's) items in turn share
                  # their B block, which the engine then packs once (engine_select.c)
                  L.Define("m0", "int64_t", f"(t % {mb}) * {bm}"), L.Define("n0", "int64_t", f"(t / {mb}) * {bn}"),
                  L.Define("m", "int64_t", f"K_MIN((int64_t){bm}, {M} - m0)"),
                  L.Define("n", "int64_t", f"K_MIN((int64_t){bn}, {N} - n0)"),
                  L.Define("ao", "int64_t", f"{la.offset} + {_mixed('b', lay.batch) if lay else f'b * {ls[0]}'} + "
                                            f"{_row_offset('m0', lay) if gather else f'm0 * {ls[1]}'}"),
                  L.Define("bo", "int64_t", f"{ra.offset} + b * {rs[0]} + n0 * {rs[1]}"),
                  L.Define("co", "int64_t", f"{dest.offset} + b * {cs[0]} + m0 * {cs[1]} + n0")]
    out_cb = cbs[-1]
    dop = op_of[dest.src.id]
    ops_per = 0
    in_place = engine and not packed and segs == 1 and k.epilogue is None and od == "f32" and cs[2] in (0, 1)
    if engine and packed:
        cbc = cbs[0]
        fn = "tt_matmul_f32" if ad == "f32" else "tt_matmul_bf16"
        mcast = _multicast(items, mb, op_of[la.src.id], ls, op_of[ra.src.id], rs, K, packed_n=-(-N // TILE))
        body += mcast[0] + [L.CbReserve(cbc, "c_")] + _bfp8_product(
            cbs, fn, K, -(-N // TILE), kc, op_of[la.src.id], ls, op_of[ra.src.id], bd) + \
            [L.CbPush(cbc)] + mcast[1] + [L.CbWait(cbc, "cblk"), L.Range("i", "0", "m")]
    elif engine:
        cbc = cbs[0]
        fn = "tt_matmul_f32" if ad == "f32" else "tt_matmul_bf16"
        a_end = None
        if segs > 1 or gather:  # a row's last element, past its first
            a_end = f"{(lay.segs - 1) * lay.seg_stride + lay.seg_len - 1}"
        if gather:  # and the block's last row past its first (less what _multicast adds)
            a_end = f"{_row_offset('(m0 + m - 1)', lay)} - ({_row_offset('m0', lay)}) - (m - 1) * {ls[1]} + {a_end}"
        mcast = _multicast(items, mb, op_of[la.src.id], ls, op_of[ra.src.id], rs, K, per_batch=mb * nbk, a_end=a_end)
        # an f32 block nothing is applied to is computed by the host's engine straight into its
        # DRAM place (its page stays reserved, and its DMA counted, for the model): staging it in
        # the core's SRAM and copying it out took a third of an FFT level's host time
        mm = L.MatMul(fn, "m", "n", K, op_of[la.src.id], "ao", ls[1], ls[2], op_of[ra.src.id], "bo", rs[2], rs[1],
                      *((f"((float *)ops[{dop.index}] + co)", str(cs[1])) if in_place else ("c_", "n")))
        span, unspan = [], []
        pitch = (max(1, min(bm, M)) - 1) * ls[1] + seg_len   # (as make_cbs sizes the page)
        if a_span:
            cba = next(cb for cb in cbs if cb.name == "cba")
            read = L.DmaRead(cba, "wa", "0", op_of[la.src.id], "ao", f"(m - 1) * {ls[1]} + {seg_len}", 1)
            if segs > 1:  # each segment's span (a convolution's input row) into its part of the page
                read = replace(read, rows=str(segs), dram_pitch=str(lay.seg_stride), sram_pitch=str(pitch))
            span = [L.CbReserve(cba, "wa"), read, L.CbPush(cba), L.CbWait(cba, "xa")]
            unspan = [L.CbPop(cba)]
            mm = replace(mm, a_index="0", a_page="xa")
        if gather:
            # each run of the block's rows within one innermost progression (a convolution's
            # output row), segment by segment: K values a row, the patches of im2col formed in SRAM
            cba, rc = next(cb for cb in cbs if cb.name == "cba"), lay.row_count
            span = [L.CbReserve(cba, "wa"), L.Range("q_", f"m0 / {rc}", f"(m0 + m - 1) / {rc} + 1"),
                    L.Define("lo_", "int64_t", f"(q_ * {rc} < m0 ? m0 : q_ * {rc})"),
                    L.Define("hi_", "int64_t", f"K_MIN(m0 + m, (q_ + 1) * {rc})"),
                    L.Range("sg_", "0", str(lay.segs)),
                    L.DmaRead(cba, "wa", f"(lo_ - m0) * {K} + sg_ * {lay.seg_len}", op_of[la.src.id],
                              f"{la.offset} + {_mixed('b', lay.batch)} + {_mixed('q_', lay.outer)} + "
                              f"(lo_ - q_ * {rc}) * {lay.row} + sg_ * {lay.seg_stride}",
                              str(lay.seg_len), 1, rows="hi_ - lo_", dram_pitch=str(lay.row), sram_pitch=str(K)),
                    L.End(), L.End(), L.CbPush(cba), L.CbWait(cba, "xa")]
            unspan = [L.CbPop(cba)]
            mm = replace(mm, a_index="0", a_page="xa", a_rs=K, a_cs=1)
        if segs > 1:
            # the engine per K segment: the first into the block, the others into a partial
            # page added into it (as the engine accumulates over K chunks into its page)
            cbp = next(cb for cb in cbs if cb.name == "cbp")
            mm = replace(mm, k=seg_len, page="sg_ ? pp_ : c_",
                         a_index=f"sg_ * {pitch}" if a_span else f"ao + sg_ * {lay.seg_stride}",
                         b_index=f"bo + sg_ * {seg_len * rs[2]}")
            prod = [L.Range("sg_", "0", str(segs)), L.CbReserve(cbp, "pp_"), mm, L.CbPush(cbp), L.CbWait(cbp, "pw_"),
                    L.Range("e_", "0", "(sg_ ? m * n : 0)", "GCC ivdep"), L.Assign("c_[e_]", "c_[e_] + pw_[e_]"),
                    L.End(), L.VectorOps("sg_ ? (m * n + 1023) / 1024 : 0"), L.CbPop(cbp), L.End()]
        else:
            prod = [mm]
        body += mcast[0] + span + [L.CbReserve(cbc, "c_"), *prod, L.CbPush(cbc)] + unspan + mcast[1] + \
            [L.CbWait(cbc, "cblk"), L.Range("i", "0", "m")]
    if engine and k.epilogue is None and od == "f32":
        # nothing to apply: the engine's f32 block leaves by one block DMA straight from its page
        body.pop()  # (so no row loop)
        body += [L.DmaWrite(cbc, "cblk", "0", dop, "co", "n", cs[2] or 1, rows="m", dram_pitch=str(cs[1]), sram_pitch="n",
                            host=L.IN_PLACE if in_place else ""),
                 L.CbPop(cbc)]
    elif engine:
        pages = {}
        rows_at = len(body) - 1  # the row loop's Range: inputs the same for every row load before it
        once: list[int] = []
        for t, j in enumerate(stored):
            n_, a = epi_leaves[j]
            g = group_strides(r.shape, a, out_groups) or [0, 0, 0]
            cb = cbs[1 + t]
            load = [L.CbReserve(cb, f"w{t}"),
                    L.DmaRead(cb, f"w{t}", "0", op_of[a.src.id], f"{a.offset} + b * {g[0]} + (m0 + i) * {g[1]} + n0 * {g[2]}",
                              "1" if g[2] == 0 else "n", g[2]),
                    L.CbPush(cb), L.CbWait(cb, f"x{t}")]
            if g[1] == 0:  # (a per-column bias or scale: DMA'd once per block, not once per row)
                load[1] = replace(load[1], index=f"{a.offset} + b * {g[0]} + n0 * {g[2]}")
                body[rows_at:rows_at] = load
                rows_at += len(load)
                once.append(t)
            else:
                body += load
            pages[j] = (f"x{t}", g[2])
        body += [L.CbReserve(out_cb, "orow"), L.Range("j", "0", "n", "GCC ivdep"),
                 L.Load("res_", "float", "cblk", "i * n + j", "k_round_bf16({ref})" if od == "bf16" else "{ref}")]
        val = "res_"
        if k.epilogue is not None:
            index_of, leaf_of, page_of = {}, {}, {}
            for j, (n_, a) in enumerate(epi_leaves):
                leaf_of[n_.id] = Leaf(a, n_.dtype, -1)
                if j in pages:
                    page_of[id(leaf_of[n_.id])] = pages[j][0]
                    index_of[n_.id] = "j" if pages[j][1] else "0"
                else:
                    g = group_strides(r.shape, a, out_groups) or [0, 0, 0]  # an iota: its index
                    index_of[n_.id] = f"({a.offset} + b * {g[0]} + (m0 + i) * {g[1]} + (n0 + j) * {g[2]})"
            em = IREmitter(mat, index_of, leaf_of, page_of, body)
            em.prefix = "epi"
            em.names.update({a_: "res_" for a_ in alias})
            val = em.value(k.epilogue)
            ops_per = em.ops
        body += [L.Store("orow", "j", store_expr(out_dt, val)), L.End()]
        body += [L.CbPop(cbs[1 + t]) for t in range(len(stored)) if t not in once]
        body += [L.CbPush(out_cb), L.CbWait(out_cb, "ores"),
                 L.DmaWrite(out_cb, "ores", "0", dop, f"co + i * {cs[1]}", "n", cs[2] or 1), L.CbPop(out_cb),
                 L.End()] + [L.CbPop(cbs[1 + t]) for t in once] + [L.CbPop(cbc)]
        if ops_per:
            body.append(L.VectorOps(f"{ops_per} * ((m * n + 1023) / 1024)"))
    else:
        cba, cbb = cbs[0], cbs[1]
        accT = "double" if "f64" in (ad, od) else ("float" if od in FLOATS else VTYPE[od])
        acc_dt = "f64" if accT == "double" else ("f32" if accT == "float" else od)
        conv_a = convert_expr(ad, od if od not in FLOATS else acc_dt, load_expr(ad, "xa[q]"))
        conv_b = convert_expr(bd, od if od not in FLOATS else acc_dt, load_expr(bd, "xb[q]"))
        fin = convert_expr(acc_dt, od, "acc") if od in FLOATS else "acc"
        body += [L.Range("i", "0", "m"),
                 L.CbReserve(cba, "wa"), L.DmaRead(cba, "wa", "0", op_of[la.src.id], f"ao + i * {ls[1]}", str(K), ls[2]),
                 L.CbPush(cba), L.CbWait(cba, "xa"), L.CbReserve(out_cb, "orow"),
                 L.Range("j", "0", "n"),
                 L.CbReserve(cbb, "wb"), L.DmaRead(cbb, "wb", "0", op_of[ra.src.id], f"bo + j * {rs[1]}", str(K), rs[2]),
                 L.CbPush(cbb), L.CbWait(cbb, "xb"),
                 L.Var("acc", accT, "0"), L.Range("q", "0", str(K)),
                 L.Assign("acc", f"({accT})(acc + ({accT})({conv_a}) * ({accT})({conv_b}))"), L.End(),
                 L.Store("orow", "j", store_expr(od, fin)), L.CbPop(cbb), L.End(),
                 L.CbPop(cba), L.CbPush(out_cb), L.CbWait(out_cb, "ores"),
                 L.DmaWrite(out_cb, "ores", "0", dop, f"co + i * {cs[1]}", "n", cs[2] or 1), L.CbPop(out_cb), L.End()]
    fused = fused_ops(k.epilogue, mat) if k.epilogue is not None else ["dot"]
    return L.LoopKernel(name, operands, cbs, body, items, fused, "matmul")
