"""Gather and scatter kernels (indexing.py's canonical ops) lowered into the loop IR.

Indirect reads and writes are DMA, as a Tensix core does them with NoC reads: for each batch
position a kernel first DMAs that position's index vector into SRAM, loads it, computes the
window's start in the operand (clamped, or checked in range), and then moves the window's rows
by DMA at addresses computed from those loaded indices.

gather  work item = a block of output rows (a row = the window's innermost contiguous run):
        the rows are DMA'd from the operand straight into the output page, which leaves by one
        DMA.
scatter runs after a loop kernel has copied the operand into the result. Per update window row:
        DMA the update run and the current result run into SRAM, apply the update region
        element by element, DMA the run back. Updates are applied in index order, so conflicting
        updates are deterministic (the same result every run, the order XLA:CPU uses): work
        items split only what cannot conflict (the columns of a window dim no index moves, or
        everything when there is one window).
"""
from __future__ import annotations

import numpy as np

from . import loopir as L
from .access import collapse, row_major
from .codegen import load_expr, store_expr
from .dtypes import CTYPE, VTYPE
from .fuse import Kernel, read_access
from .graph import Node, itemsize
from .lower import CHUNK, MIN_BLOCK, IREmitter, _base, _check_fits, _decode, region_names

SCATTER_ITEMS = 16  # column strips of a scatter whose window has free columns (enough to spread over cores)


def _geometry(n: Node) -> tuple[tuple[int, ...], int, int, list[int]]:
    """(batch shape, components of an index vector, stride between them, indices dims that are
    batch dims) of a gather/scatter node."""
    idx = n.inputs[1]
    ivd = n.attrs["ivd"]
    ishape = idx.shape
    bdims = [d for d in range(len(ishape)) if d != ivd]
    return tuple(ishape[d] for d in bdims), (ishape[ivd] if ivd < len(ishape) else 1), bdims


def _window(n: Node, vecs: list[tuple[int, ...]]) -> tuple[list[int], list[tuple[int, ...]]]:
    """The window's shape collapsed with its access vectors: at least one dim (the innermost run)."""
    wshape = tuple(n.attrs["sizes"][d] for d in n.attrs["window"])
    cw, cv = collapse(wshape, vecs)
    if not cw:
        return [1], [(0,) for _ in vecs]
    return list(cw), cv


def _index_block(n: Node, mat: set[int], body: list, cbi: L.CircularBuffer, iop: L.Operand, bidx: list[str],
                 ostrides: tuple[int, ...], ooff: int) -> str:
    """Emit, for the batch position whose coordinates are `bidx`: DMA its index vector into
    SRAM, load it, compute the window's starts (clamped in 'clamp' mode) and `ob`, the window's
    first element in the operand (offset `ooff`, `ostrides` per operand dim). Returns the C
    condition under which the window is applied (in 'skip' mode: it fits in the operand)."""
    operand, idx = n.inputs[0], n.inputs[1]
    ia = read_access(idx, mat)
    _, nidx, bdims = _geometry(n)
    ivd = n.attrs["ivd"]
    coord = dict(zip(bdims, bidx))
    istride = ia.strides[ivd] if ivd < len(idx.shape) else 1
    body += [L.CbReserve(cbi, "ix"),
             L.DmaRead(cbi, "ix", "0", iop, _base(ia.offset, tuple(ia.strides[d] for d in bdims), bidx), str(nidx),
                       istride),
             L.CbPush(cbi), L.CbWait(cbi, "xix")]
    terms = [str(ooff)]
    ok = []
    for k, d in enumerate(n.attrs["start_map"]):
        hi = operand.shape[d] - n.attrs["sizes"][d]
        body.append(L.Load(f"sv{k}", "int64_t", "xix", str(k), "(int64_t)(" + load_expr(idx.dtype, "{ref}") + ")"))
        if n.attrs["mode"] == "clamp":
            body.append(L.Define(f"st{k}", "int64_t", f"(sv{k} < 0 ? 0 : sv{k} > {hi} ? (int64_t){hi} : sv{k})"))
        else:
            body.append(L.Define(f"st{k}", "int64_t", f"sv{k}"))
            ok.append(f"(sv{k} >= 0 && sv{k} <= {hi})")
        terms.append(f"st{k} * {ostrides[d]}")
    body.append(L.CbPop(cbi))
    terms += [f"{coord[i]} * {ostrides[d]}" for d, i in n.attrs["batching"]]
    body.append(L.Define("ob", "int64_t", " + ".join(terms)))
    return " && ".join(ok) or "1"


def fit_blocks(make, p: int, budget: int, name: str, what: str, node: Node) -> tuple[list[L.CircularBuffer], int]:
    """The circular buffers `make(p)` for the largest block p (halving from `p`, down to
    MIN_BLOCK) that fits the core's SRAM; refused, with the sizes, when none does."""
    cbs = make(p)
    while L.sram_end(cbs) > budget and p > MIN_BLOCK:
        p //= 2
        cbs = make(p)
    _check_fits(cbs, budget, name, what, node)
    return cbs, p


def _empty(name: str, n: Node, kind: str) -> L.LoopKernel:
    return L.LoopKernel(name, [], [], [], 0, ops=[n.op], kind=kind)


def lower_gather(mat: set[int], k: Kernel, name: str, sram_budget: int) -> L.LoopKernel:
    n = k.root
    operand, idx = n.inputs
    size = int(np.prod(n.shape, dtype=np.int64))
    if size == 0:
        return _empty(name, n, "gather")
    oa, ia = read_access(operand, mat), read_access(idx, mat)
    batch, nidx, _ = _geometry(n)
    B = int(np.prod(batch, dtype=np.int64))
    cw, (ov,) = _window(n, [tuple(oa.strides[d] for d in n.attrs["window"])])
    R, inner = int(np.prod(cw[:-1], dtype=np.int64)), cw[-1]
    ops = {oa.src.id: L.Operand(0, CTYPE[operand.dtype], False, oa.src)}
    ops.setdefault(ia.src.id, L.Operand(len(ops), CTYPE[idx.dtype], False, ia.src))
    dop = L.Operand(len(ops), CTYPE[n.dtype], True, n)
    oop, iop = ops[oa.src.id], ops[ia.src.id]

    def make(p: int) -> list[L.CircularBuffer]:
        page = max(1, p // inner) * inner if inner <= p else p
        cbs = [L.CircularBuffer("cbi", CTYPE[idx.dtype], itemsize(idx.dtype), nidx),
               L.CircularBuffer("cbo", CTYPE[n.dtype], itemsize(n.dtype), page)]
        L.place(cbs)
        return cbs
    (cbi, cbo), p = fit_blocks(make, CHUNK, sram_budget, name, "gather", n)
    cbs = [cbi, cbo]
    body: list = []
    if inner <= p:
        rb = max(1, p // inner)
        items = -(-(B * R) // rb)
        body += [L.Define("q0", "int64_t", f"it * {rb}"), L.Define("q1", "int64_t", f"K_MIN(q0 + {rb}, (int64_t){B * R})"),
                 L.Define("c0", "int64_t", "0"), L.Define("c1", "int64_t", str(inner))]
    else:
        per = -(-inner // p)
        items = B * R * per
        body += [L.Define("q0", "int64_t", f"it / {per}"), L.Define("q1", "int64_t", "q0 + 1"),
                 L.Define("c0", "int64_t", f"(it % {per}) * {p}"), L.Define("c1", "int64_t", f"K_MIN(c0 + {p}, (int64_t){inner})")]
    body += [L.Define("nc", "int64_t", "c1 - c0"), L.CbReserve(cbo, "out"),
             L.Range("b", f"q0 / {R}", f"(q1 - 1) / {R} + 1")]
    bidx = _decode("b", list(batch), "g", body)
    _index_block(n, mat, body, cbi, iop, bidx, oa.strides, oa.offset)
    body.append(L.Range("r", f"(q0 - b * {R} > 0 ? q0 - b * {R} : 0)", f"K_MIN(q1 - b * {R}, (int64_t){R})"))
    widx = _decode("r", cw[:-1], "w", body)
    body += [L.DmaRead(cbo, "out", "(b * %d + r - q0) * nc" % R, oop, f"ob + {_base(0, ov[:-1], widx)} + c0 * {ov[-1]}",
                       "nc", ov[-1]),
             L.End(), L.End(),
             L.CbPush(cbo), L.CbWait(cbo, "res"),
             L.DmaWrite(cbo, "res", "0", dop, f"{k.dest.offset} + q0 * {inner} + c0", "(q1 - q0) * nc", 1),
             L.CbPop(cbo)]
    return L.LoopKernel(name, list(ops.values()) + [dop], cbs, body, items, ["gather"], "gather")


def lower_scatter(mat: set[int], k: Kernel, name: str, sram_budget: int) -> L.LoopKernel:
    n = k.root
    operand, idx, upd = n.inputs
    batch, nidx, bdims = _geometry(n)
    B = int(np.prod(batch, dtype=np.int64))
    nb = len(batch)
    ua, ia = read_access(upd, mat), read_access(idx, mat)
    rs = row_major(n.shape)
    window = n.attrs["window"]
    cw, (rv, uv) = _window(n, [tuple(rs[d] for d in window), ua.strides[nb:]])
    R, inner = int(np.prod(cw[:-1], dtype=np.int64)), cw[-1]
    if B * R * inner == 0 or n.size == 0:
        return _empty(name, n, "scatter")
    ops = {ia.src.id: L.Operand(0, CTYPE[idx.dtype], False, ia.src)}
    ops.setdefault(ua.src.id, L.Operand(len(ops), CTYPE[upd.dtype], False, ua.src))
    dop = L.Operand(len(ops), CTYPE[n.dtype], True, n)
    iop, uop = ops[ia.src.id], ops[ua.src.id]
    # the operand dims the window's innermost run walks: if no index moves them (or the window
    # is the whole dim, so the only start that fits is 0), different columns never conflict
    run, acc = [], 1
    for d in reversed(window):
        if acc >= inner:
            break
        if n.attrs["sizes"][d] > 1:
            run.append(d)
            acc *= n.attrs["sizes"][d]
    free = all(d not in n.attrs["start_map"] or n.attrs["sizes"][d] == operand.shape[d] for d in run)

    def make(p: int) -> list[L.CircularBuffer]:
        cbs = [L.CircularBuffer("cbi", CTYPE[idx.dtype], itemsize(idx.dtype), nidx),
               L.CircularBuffer("cbu", CTYPE[upd.dtype], itemsize(upd.dtype), p),
               L.CircularBuffer("cbr", CTYPE[n.dtype], itemsize(n.dtype), p),
               L.CircularBuffer("cbo", CTYPE[n.dtype], itemsize(n.dtype), p)]
        L.place(cbs)
        return cbs
    cbs, p = fit_blocks(make, min(CHUNK, inner), sram_budget, name, "scatter", n)
    stack = n.attrs.get("stack", 1)  # several operands, interleaved (indexing.scatter_many)
    if stack > 1:  # blocks hold whole elements: the N values the region takes together
        p = max(stack, p // stack * stack)
        cbs = make(p)
    cbi, cbu, cbr, cbo = cbs
    body: list = []
    # batch positions of different batching coordinates (operand_batching_dims) write disjoint
    # slices of the result: each such coordinate can be its own item, its windows applied in order
    bat_dims = {i for _, i in n.attrs["batching"]}
    bat = [j for j, d in enumerate(bdims) if d in bat_dims]
    bat_items = int(np.prod([batch[j] for j in bat], dtype=np.int64))
    cwid = min(p, max(stack, max(MIN_BLOCK, -(-inner // SCATTER_ITEMS)) // stack * stack))
    per_item = B  # batch positions one item walks
    if B == 1:  # one window: nothing conflicts, every row and column strip is its own item
        per = -(-inner // p)
        items = R * per
        body += [L.Define("rlo", "int64_t", f"it / {per}"), L.Define("rhi", "int64_t", "rlo + 1"),
                 L.Define("C0", "int64_t", f"(it % {per}) * {p}"), L.Define("C1", "int64_t", f"K_MIN(C0 + {p}, (int64_t){inner})")]
    elif bat_items > 1 and (not free or bat_items >= -(-inner // cwid)):
        items, per_item = bat_items, B // bat_items
        body += [L.Define("rlo", "int64_t", "0"), L.Define("rhi", "int64_t", str(R)),
                 L.Define("C0", "int64_t", "0"), L.Define("C1", "int64_t", str(inner))]
    elif free:
        items = -(-inner // cwid)
        body += [L.Define("rlo", "int64_t", "0"), L.Define("rhi", "int64_t", str(R)),
                 L.Define("C0", "int64_t", f"it * {cwid}"), L.Define("C1", "int64_t", f"K_MIN(C0 + {cwid}, (int64_t){inner})")]
    else:  # windows may overlap anywhere: one item applies them all, in order
        items = 1
        body += [L.Define("rlo", "int64_t", "0"), L.Define("rhi", "int64_t", str(R)),
                 L.Define("C0", "int64_t", "0"), L.Define("C1", "int64_t", str(inner))]
    if per_item == B:
        body.append(L.Range("b", "0", str(B)))
        bidx = _decode("b", list(batch), "g", body)
    else:  # the item's batching coordinates, then its other batch dims in order
        rest = [j for j in range(nb) if j not in bat]
        hidx = _decode("it", [batch[j] for j in bat], "h", body)
        body.append(L.Range("b", "0", str(per_item)))
        gidx = _decode("b", [batch[j] for j in rest], "g", body)
        pos = dict(zip(bat, hidx)) | dict(zip(rest, gidx))
        bidx = [pos[j] for j in range(nb)]
    ok = _index_block(n, mat, body, cbi, iop, bidx, rs, k.dest.offset)
    ubase = _base(ua.offset, ua.strides[:nb], bidx)
    body += [L.Define("rend", "int64_t", f"({ok}) ? rhi : rlo"), L.Range("r", "rlo", "rend")]
    widx = _decode("r", cw[:-1], "w", body)
    uix = f"{ubase} + {_base(0, uv[:-1], widx)} + c0 * {uv[-1]}"
    rix = f"ob + {_base(0, rv[:-1], widx)} + c0 * {rv[-1]}"
    body += [L.Range("c0", "C0", "C1", step=p), L.Define("c1", "int64_t", f"K_MIN(c0 + {p}, C1)"),
             L.Define("nc", "int64_t", "c1 - c0"),
             L.CbReserve(cbu, "up"), L.DmaRead(cbu, "up", "0", uop, uix, "nc", uv[-1]), L.CbPush(cbu),
             L.CbReserve(cbr, "cur"), L.DmaRead(cbr, "cur", "0", dop, rix, "nc", rv[-1]), L.CbPush(cbr),
             L.CbWait(cbu, "xup"), L.CbWait(cbr, "xcur"), L.CbReserve(cbo, "out"),
             L.Range("j", "0", "nc", step=stack)]
    for q in range(stack):
        body += [L.Load(f"x_{q}", VTYPE[n.dtype], "xcur", f"j + {q}", load_expr(n.dtype, "{ref}")),
                 L.Load(f"u_{q}", VTYPE[upd.dtype], "xup", f"j + {q}", load_expr(upd.dtype, "{ref}"))]
    region = n.attrs["body"]
    em = IREmitter(set(), {}, {}, {}, body)
    em.prefix = "bod"
    em.names.update(region_names(region, [f"x_{q}" for q in range(stack)] + [f"u_{q}" for q in range(stack)]))
    vals = [em.value(o) for o in region.outputs]  # all computed before any is stored
    body += [L.Store("out", f"j + {q}", store_expr(n.dtype, v)) for q, v in enumerate(vals)]
    body += [L.End(),
             L.CbPop(cbu), L.CbPop(cbr), L.CbPush(cbo), L.CbWait(cbo, "res"),
             L.DmaWrite(cbo, "res", "0", dop, rix, "nc", rv[-1]), L.CbPop(cbo),
             L.End(), L.End(), L.End()]
    if em.ops:
        body.append(L.VectorOps(f"{em.ops} * ((rhi - rlo) * (C1 - C0) * {per_item} + 1023) / 1024"))
    return L.LoopKernel(name, list(ops.values()) + [dop], cbs, body, items,
                        ["scatter"] + [o.op for o in region.nodes() if o.op != "param"], "scatter")


LOWER = {"gather": lower_gather, "scatter": lower_scatter}
