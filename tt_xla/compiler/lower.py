"""Fusion groups -> loop IR (loopir.py). One lowering per kernel kind; today: loop kernels
(elementwise, movement, stored transposes).

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

import numpy as np

from ..errors import UnsupportedError
from . import loopir as L
from .access import Access, collapse
from .codegen import CHUNK, CTYPE, TILE, VTYPE, Emitter, Generator, Leaf, collect_leaves, load_expr, store_expr
from .fuse import Kernel, memoryless
from .graph import VIEWS, Node, itemsize

MIN_BLOCK = 32  # elements: the smallest block a loop kernel is re-blocked to before it is refused


class IREmitter(Emitter):
    """codegen's expression emitter, writing loop-IR ops: each value an Alu, each stored leaf a
    Load from its SRAM page."""

    def __init__(self, mat: set[int], index_of: dict[int, str], leaf_of: dict[int, Leaf],
                 page_of: dict[int, str], body: list):
        super().__init__(mat, index_of, leaf_of, [], "")
        self.page_of, self.body = page_of, body

    def define(self, name: str, ctype: str, expr: str) -> None:
        self.body.append(L.Alu(name, ctype, expr))

    def leaf_value(self, leaf: Leaf, index: str) -> str:
        if memoryless(leaf.acc.src):
            return Emitter.leaf_value(leaf, index)
        name = f"ld{self.count}"
        self.count += 1
        self.body.append(L.Load(name, VTYPE[leaf.dt], self.page_of[id(leaf)], index,
                                load_expr(leaf.dt, "{ref}")))
        return name


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


def lower_loop(gen: Generator, k: Kernel, name: str, sram_budget: int) -> tuple[L.LoopKernel, str]:
    """(the kernel's IR, its kind: 'elementwise' or 'movement')."""
    mat = gen.mat
    computed = k.root is k.dest.src and k.root.op not in VIEWS and k.root.op not in ("iota", "const")
    leaves = collect_leaves(k.root, computed, mat)
    dest = k.dest
    opmap = gen.operands_for(leaves, dest.src)
    nodes = {a.src.id: a.src for _, a in leaves}
    nodes[dest.src.id] = dest.src
    size = int(np.prod(k.shape, dtype=np.int64))
    shape, vecs = collapse(k.shape, [a.strides for _, a in leaves] + [dest.strides])
    offs = [a.offset for _, a in leaves] + [dest.offset]
    rank = len(shape)
    inner = shape[-1] if rank else 1
    outer_shape = list(shape[:-1])
    outer = int(np.prod(outer_shape, dtype=np.int64)) if rank > 1 else 1
    inner_st = [v[-1] if rank else 0 for v in vecs]
    transposed = rank >= 2 and any(v[-1] not in (0, 1) and abs(v[-2]) == 1 and a.src.op != "iota"
                                   for v, (_, a) in zip(vecs, leaves))
    operands = [L.Operand(i, CTYPE[nodes[nid].dtype], nid == dest.src.id) for nid, i in opmap.items()]
    op_of = {nid: operands[i] for nid, i in opmap.items()}
    stored = [j for j, (_, a) in enumerate(leaves) if not memoryless(a.src)]
    # one circular buffer per stored input (leaves of the same node share the node's operand,
    # but each view of it gets its own buffer: a view is a different walk over DRAM)
    kind = "elementwise" if computed else "movement"

    def plan(block: int) -> tuple[str, int, int, list[str], dict[int, str]]:
        """(mode, rows per block, columns per block, ...) for a block of about `block` elements."""
        if transposed:
            return "tile", TILE, TILE, [], {}
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

    def sizes(block: int) -> tuple[list[L.CircularBuffer], str, int, int]:
        mode, rb, w, _, _ = plan(block)
        cbs = []
        for n_, j in enumerate(stored):
            n, a = leaves[j]
            lay = layout(j, mode)
            rowconst = all(s == 0 for s in vecs[j][:-1]) if rank else True
            rows = 1 if (rowconst and lay == "row") else rb
            cols = (1 if inner_st[j] == 0 else w) if lay == "row" else w
            cbs.append(L.CircularBuffer(f"cb{n_}", CTYPE[n.dtype], itemsize(n.dtype), rows * cols))
        cbs.append(L.CircularBuffer("cbout", CTYPE[dest.src.dtype], itemsize(dest.src.dtype), rb * w))
        L.place(cbs)
        return cbs, mode, rb, w

    block = CHUNK
    cbs, mode, rb, w = sizes(block)
    while max(c.offset + c.bytes for c in cbs) > sram_budget and block > MIN_BLOCK and mode != "tile":
        block //= 2
        cbs, mode, rb, w = sizes(block)
    need = max(c.offset + c.bytes for c in cbs)
    if need > sram_budget:
        raise UnsupportedError(
            f"kernel {name} ({kind} of {', '.join(gen._ops(k.root)[-4:]) or k.root.op}) needs {need} bytes of SRAM "
            f"per core for {len(cbs)} circular buffers of its smallest block; the device's cores have {sram_budget}",
            k.root.op, k.root.loc)
    out_cb = cbs[-1]
    in_cb = dict(zip(stored, cbs))

    body: list = []
    if mode == "tile":
        rows2, o2 = shape[-2], int(np.prod(shape[:-2], dtype=np.int64))
        ti, tj = -(-rows2 // TILE), -(-inner // TILE)
        items = o2 * ti * tj
        body += [L.Define("o2", "int64_t", f"it / {ti * tj}"), L.Define("t", "int64_t", f"it % {ti * tj}"),
                 L.Define("r0", "int64_t", f"o2 * {rows2} + (t / {tj}) * {TILE}"),
                 L.Define("r1", "int64_t", f"o2 * {rows2} + K_MIN((t / {tj}) * {TILE} + {TILE}, (int64_t){rows2})"),
                 L.Define("c0", "int64_t", f"(t % {tj}) * {TILE}"),
                 L.Define("c1", "int64_t", f"K_MIN(c0 + {TILE}, (int64_t){inner})")]
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
        for j in col_leaves:
            op = op_of[leaves[j][1].src.id]
            body.append(L.Range("c", "c0", "c1"))
            body.append(L.DmaRead(in_cb[j], page_in[j], f"(c - c0) * {TILE}", op,
                                  f"{_base(offs[j], vecs[j][:-1], idx)} + c * {vecs[j][-1]}", "r1 - r0", vecs[j][-2]))
            body.append(L.End())
    once = [j for j in row_leaves if rowconst[j]]
    per_row = [j for j in row_leaves if not rowconst[j]]
    for j in once:
        op = op_of[leaves[j][1].src.id]
        cnt = "1" if inner_st[j] == 0 else "nc"
        body.append(L.DmaRead(in_cb[j], page_in[j], "0", op, f"{offs[j]} + c0 * {inner_st[j]}", cnt, inner_st[j]))
    if per_row:
        body.append(L.Range("r", "r0", "r1"))
        idx = _decode("r", outer_shape, "", body)
        for j in per_row:
            op = op_of[leaves[j][1].src.id]
            wj = 1 if inner_st[j] == 0 else w
            cnt = "1" if inner_st[j] == 0 else "nc"
            body.append(L.DmaRead(in_cb[j], page_in[j], f"(r - r0) * {wj}", op,
                                  f"{_base(offs[j], vecs[j][:-1], idx)} + c0 * {inner_st[j]}", cnt, inner_st[j]))
        body.append(L.End())
    for j in stored:
        body.append(L.CbPush(in_cb[j]))

    # ---- compute: SRAM -> SRAM
    page_of: dict[int, str] = {}  # id(Leaf) -> its SRAM page (two views of one node: two pages)
    for j in stored:
        body.append(L.CbWait(in_cb[j], f"x{page_in[j]}"))
    body.append(L.CbReserve(out_cb, "out"))
    single = not computed and len(leaves) == 1 and itemsize(k.root.dtype) == 4 and stored == [0] \
        and mode == "tile" and layout(0, mode) == "col" and vecs[1][-1] == 1
    ops_per_elem = 1
    if single:
        # a stored transpose: 8x8 register transposes over the tile, scalar edges
        src = f"x{page_in[0]}"
        body += [L.Define("nr", "int64_t", "r1 - r0"), L.Define("fr", "int64_t", "nr & ~7"),
                 L.Define("fc", "int64_t", "nc & ~7"),
                 L.Range("rr", "0", "fr / 8"), L.Range("cc", "0", "fc / 8"),
                 L.Call("tt_transpose8x8_b32", (f"{src} + cc * 8 * {TILE} + rr * 8", str(TILE),
                                                f"out + rr * 8 * {TILE} + cc * 8", str(TILE))),
                 L.End(), L.End(),
                 L.Range("rr", "0", "nr"), L.Range("cc", "(rr < fr ? fc : 0)", "nc"),
                 L.Store("out", f"rr * {TILE} + cc", f"{src}[cc * {TILE} + rr]"),
                 L.End(), L.End()]
    else:
        iota = [j for j, (_, a) in enumerate(leaves) if a.src.op == "iota"]
        body.append(L.Range("r", "r0", "r1"))
        idx = _decode("r", outer_shape, "v", body) if iota else []
        index_of: dict[int, str] = {}
        leaf_of: dict[int, Leaf] = {}
        for j, (n, a) in enumerate(leaves):
            leaf_of[n.id] = Leaf(a, n.dtype, opmap.get(a.src.id, -1))
            if j in in_cb:
                page_of[id(leaf_of[n.id])] = f"x{page_in[j]}"
            if j in iota:
                body.append(L.Define(f"ib{j}", "int64_t", _base(offs[j], vecs[j][:-1], idx)))
                index_of[n.id] = f"ib{j} + j * {inner_st[j]}" if inner_st[j] else f"ib{j}"
            elif j in in_cb:
                if layout(j, mode) == "col":
                    index_of[n.id] = f"(j - c0) * {TILE} + (r - r0)"
                else:
                    row = "0" if rowconst[j] else f"(r - r0) * {1 if inner_st[j] == 0 else w}"
                    index_of[n.id] = row if inner_st[j] == 0 else f"{row} + (j - c0)"
            else:
                index_of[n.id] = "0"  # scalar constant
        body.append(L.Range("j", "c0", "c1", "GCC ivdep"))
        em = IREmitter(mat, index_of, leaf_of, page_of, body)
        val = em.value(k.root)
        ops_per_elem = max(em.ops, 1)
        body.append(L.Store("out", f"(r - r0) * {w} + (j - c0)", store_expr(k.root.dtype, val)))
        body += [L.End(), L.End()]
    for j in stored:
        body.append(L.CbPop(in_cb[j]))
    body.append(L.CbPush(out_cb))
    body.append(L.VectorOps(f"{ops_per_elem} * (((r1 - r0) * nc + {TILE * TILE - 1}) / {TILE * TILE})"))

    # ---- writer: SRAM -> DRAM
    body.append(L.CbWait(out_cb, "res"))
    body.append(L.Range("r", "r0", "r1"))
    idx = _decode("r", outer_shape, "w", body)
    dop = op_of[dest.src.id]
    body.append(L.DmaWrite(out_cb, "res", f"(r - r0) * {w}", dop,
                           f"{_base(offs[-1], vecs[-1][:-1], idx)} + c0 * {inner_st[-1]}", "nc", inner_st[-1]))
    body.append(L.End())
    body.append(L.CbPop(out_cb))

    # figures for the whole launch, from the blocking above
    tiles = -(-size // (TILE * TILE))
    dma = size * itemsize(dest.src.dtype)
    for j in stored:
        if rowconst[j] and layout(j, mode) == "row":
            elems = (items if size else 0) * (w if inner_st[j] else 1)  # one row per block
        else:
            elems = size if inner_st[j] != 0 or layout(j, mode) == "col" else size // max(inner, 1) * -(-inner // w)
        dma += elems * itemsize(leaves[j][0].dtype)
    lk = L.LoopKernel(name, operands, cbs, body, items if size else 0, ops_per_elem * tiles, dma, 0, gen._ops(k.root))
    return lk, kind


def operand_nodes(gen: Generator, k: Kernel) -> list[tuple[Node, int]]:
    """(stored node, access flags) per operand of a loop kernel, in operand order."""
    computed = k.root is k.dest.src and k.root.op not in VIEWS and k.root.op not in ("iota", "const")
    leaves = collect_leaves(k.root, computed, gen.mat)
    opmap = gen.operands_for(leaves, k.dest.src)
    nodes: dict[int, Node] = {a.src.id: a.src for _, a in leaves}
    nodes[k.dest.src.id] = k.dest.src
    return gen._operand_list(opmap, nodes, k.dest.src)


__all__ = ["lower_loop", "operand_nodes", "IREmitter", "Access"]
