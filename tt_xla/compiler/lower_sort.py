"""Sort kernels lowered into the loop IR: a compiler-built merge sort on each core's SRAM, and
merge passes across cores for rows longer than one core's SRAM holds (long_sort.py).

A `sort` node (legalize: one per result of a possibly multi-operand stablehlo.sort) is one
kernel whose work item is one row along the sorted dimension (or, with attrs["chunk"], one
chunk of a row): every operand's row comes into SRAM by DMA; a permutation (an int32 page of 2 x
the row, ping-ponged between its halves) is merge-sorted bottom-up, log2(n) passes, each merge
branch-free (take the left run's element unless the comparator says the right one is less:
stable); then the result operand's row is gathered through the permutation into the output page
and leaves by DMA. The comparator region is emitted inline (JAX's total-order float comparator
included).

A merge pass (attrs["merge"] = w) turns sorted runs of w into sorted runs of 2w; its work item is
one block of attrs["block"] outputs of one pair of runs (see long_sort.py).
"""
from __future__ import annotations

import numpy as np

from . import loopir as L
from .codegen import load_expr, store_expr
from .dtypes import CTYPE, VTYPE
from .access import row_major
from .fuse import Kernel, read_access
from .graph import itemsize
from .lower import IREmitter, _base, _check_fits, _decode, region_names


def sort_buffers(dtypes: list[str], out: str, n: int) -> list[L.CircularBuffer]:
    """A sort kernel's SRAM over rows (chunks) of n, placed: each operand's row, the permutation
    (2 x n int32), the output row."""
    cbs = [L.CircularBuffer(f"cbx{j}", CTYPE[dt], itemsize(dt), n, 1) for j, dt in enumerate(dtypes)]
    cbs += [L.CircularBuffer("cbix", "int32_t", 4, 2 * n, 1), L.CircularBuffer("cbo", CTYPE[out], itemsize(out), n, 1)]
    L.place(cbs)
    return cbs


def merge_buffers(dtypes: list[str], out: str, block: int) -> list[L.CircularBuffer]:
    """A merge pass's SRAM, placed: per operand a probe page (the two elements one binary-search
    step compares) and the block's share of each run; the output block."""
    cbs = []
    for j, dt in enumerate(dtypes):
        cbs += [L.CircularBuffer(f"cbp{j}", CTYPE[dt], itemsize(dt), 2, 1),
                L.CircularBuffer(f"cba{j}", CTYPE[dt], itemsize(dt), block, 1),
                L.CircularBuffer(f"cbb{j}", CTYPE[dt], itemsize(dt), block, 1)]
    cbs.append(L.CircularBuffer("cbo", CTYPE[out], itemsize(out), block, 1))
    L.place(cbs)
    return cbs


def lower_sort(mat: set[int], k: Kernel, name: str, sram_budget: int) -> L.LoopKernel:
    if "merge" in k.root.attrs:
        return lower_merge(mat, k, name, sram_budget)
    node = k.root
    xs = node.inputs
    d, want, region = node.attrs["dim"], node.attrs["index"], node.attrs["body"]
    shape = node.shape
    n = shape[d]
    c = min(node.attrs.get("chunk", n), n)  # the row's length in SRAM
    nch = -(-n // c) if n else 1
    others = [i for i in range(len(shape)) if i != d]
    outer_shape = [shape[i] for i in others]
    outer = int(np.prod(outer_shape, dtype=np.int64))
    accs = [read_access(x, mat) for x in xs]
    ops: dict[int, L.Operand] = {}
    for a, x in zip(accs, xs):
        if a.src.id not in ops:
            ops[a.src.id] = L.Operand(len(ops), CTYPE[a.src.dtype], False, a.src)
    dop = L.Operand(len(ops), CTYPE[node.dtype], True, node)
    cbs = sort_buffers([x.dtype for x in xs], node.dtype, c)
    what = f"sort of rows of {n}" if c == n else f"sort of chunks of {c} of rows of {n}"
    _check_fits(cbs, sram_budget, name, what, node)
    cbix, cbo = cbs[-2], cbs[-1]
    npass = max(0, int(np.ceil(np.log2(c)))) if c > 1 else 0
    body: list = [L.Define("srow", "int64_t", f"it / {nch}"), L.Define("c0", "int64_t", f"(it % {nch}) * {c}"),
                  L.Define("nn", "int64_t", f"K_MIN((int64_t){c}, {n} - c0)")]
    idx = _decode("srow", outer_shape, "s", body)
    for j, (a, x) in enumerate(zip(accs, xs)):
        body += [L.CbReserve(cbs[j], f"w{j}"),
                 L.DmaRead(cbs[j], f"w{j}", "0", ops[a.src.id],
                           _base(a.offset, tuple(a.strides[i] for i in others), idx) + f" + c0 * {a.strides[d]}",
                           "nn", a.strides[d]),
                 L.CbPush(cbs[j]), L.CbWait(cbs[j], f"x{j}")]
    body += [L.CbReserve(cbix, "ix"), L.Range("mk", "0", "nn"), L.Store("ix", "mk", "(int32_t)mk"), L.End()]
    em = IREmitter(set(), {}, {}, {}, body)
    em.prefix = "cmp"
    if npass:
        body += [L.Range("ps", "0", str(npass)), L.Define("wd", "int64_t", "(int64_t)1 << ps"),
                 L.Define("so", "int64_t", f"(ps & 1) * {c}"), L.Define("dof", "int64_t", f"{c} - so"),
                 L.Range("blk", "0", "(nn + 2 * wd - 1) / (2 * wd)"),
                 L.Define("lo", "int64_t", "blk * 2 * wd"), L.Define("mid", "int64_t", "K_MIN(lo + wd, nn)"),
                 L.Define("hi", "int64_t", "K_MIN(lo + 2 * wd, nn)"),
                 L.Var("mi", "int64_t", "lo"), L.Var("mj", "int64_t", "mid"),
                 L.Range("mk", "lo", "hi"),
                 L.Define("la", "int", "mi < mid"), L.Define("ra", "int", "mj < hi"),
                 L.Load("il", "int32_t", "ix", "so + K_MIN(mi, mid - 1)"),
                 L.Load("ir", "int32_t", "ix", "so + (ra ? mj : lo)")]
        names = []
        for j, x in enumerate(xs):  # the comparator's (lhs, rhs) = (right run's, left run's)
            body += [L.Load(f"ra{j}", VTYPE[x.dtype], f"x{j}", "ir", load_expr(x.dtype, "{ref}")),
                     L.Load(f"lb{j}", VTYPE[x.dtype], f"x{j}", "il", load_expr(x.dtype, "{ref}"))]
            names += [f"ra{j}", f"lb{j}"]
        em.names.update(region_names(region, names))
        lt = em.value(region.outputs[0])
        body += [L.Define("tl", "int", f"la && (!ra || !({lt}))"),
                 L.Store("ix", "dof + mk", "tl ? il : ir"),
                 L.Assign("mi", "mi + tl"), L.Assign("mj", "mj + !tl"),
                 L.End(), L.End(), L.End()]
    fin = (npass & 1) * c
    x = xs[want]
    body += [L.CbReserve(cbo, "out"), L.Range("mk", "0", "nn"),
             L.Load("pi", "int32_t", "ix", f"{fin} + mk"),
             L.Load("ov", VTYPE[x.dtype], f"x{want}", "pi", load_expr(x.dtype, "{ref}")),
             L.Store("out", "mk", store_expr(node.dtype, "ov")), L.End(),
             L.CbPush(cbix), L.CbWait(cbix, "ixd"), L.CbPop(cbix)]
    body += [L.CbPop(cbs[j]) for j in range(len(xs))]
    rm = row_major(shape)
    body += [L.CbPush(cbo), L.CbWait(cbo, "res"),
             L.DmaWrite(cbo, "res", "0", dop, _base(k.dest.offset, tuple(rm[i] for i in others), idx) + f" + c0 * {rm[d]}",
                        "nn", rm[d]),
             L.CbPop(cbo)]
    items = outer * nch
    vec = (em.ops + 4) * -(-items * c * npass // 1024)
    if vec:
        body.append(L.VectorOps(str(vec // max(items, 1) or 1)))
    return L.LoopKernel(name, list(ops.values()) + [dop], cbs, body, items if node.size else 0,
                        ["sort"], "sort")


def lower_merge(mat: set[int], k: Kernel, name: str, sram_budget: int) -> L.LoopKernel:
    """One merge pass: runs of w (sorted by the previous pass) become runs of 2w. Work item: one
    block of B outputs of one pair (A, B') of runs. Its start on the merge path (i from A, t - i
    from B') is the least i such that B'[t-1-i] < A[i] fails nowhere before it: a binary search of
    log2(w) single-element DMAs per operand; then the at most B elements of each run that the
    block can take come into SRAM and a stable branch-free merge writes the block."""
    node = k.root
    xs = node.inputs
    d, want, region = node.attrs["dim"], node.attrs["index"], node.attrs["body"]
    w, blk = node.attrs["merge"], node.attrs["block"]
    shape = node.shape
    n = shape[d]
    nb = -(-n // blk)
    others = [i for i in range(len(shape)) if i != d]
    outer_shape = [shape[i] for i in others]
    outer = int(np.prod(outer_shape, dtype=np.int64))
    accs = [read_access(x, mat) for x in xs]
    ops: dict[int, L.Operand] = {}
    for a in accs:
        if a.src.id not in ops:
            ops[a.src.id] = L.Operand(len(ops), CTYPE[a.src.dtype], False, a.src)
    dop = L.Operand(len(ops), CTYPE[node.dtype], True, node)
    cbs = merge_buffers([x.dtype for x in xs], node.dtype, blk)
    _check_fits(cbs, sram_budget, name, f"merge of runs of {w} of rows of {n}", node)
    cbo = cbs[-1]
    body: list = [L.Define("srow", "int64_t", f"it / {nb}"), L.Define("t0", "int64_t", f"(it % {nb}) * {blk}"),
                  L.Define("pl", "int64_t", f"t0 / {2 * w} * {2 * w}"),  # the pair's first element
                  L.Define("lena", "int64_t", f"K_MIN((int64_t){w}, {n} - pl)"),
                  L.Define("lenb", "int64_t", f"K_MIN((int64_t){w}, {n} - pl - lena)"),
                  L.Define("t", "int64_t", "t0 - pl"),
                  L.Define("m", "int64_t", f"K_MIN((int64_t){blk}, lena + lenb - t)")]
    idx = _decode("srow", outer_shape, "s", body)
    rows = []  # each operand's (row base index expression, stride along d)
    for a in accs:
        rows.append((_base(a.offset, tuple(a.strides[i] for i in others), idx), a.strides[d]))

    def compare(tag: str, lhs: str, rhs: str) -> str:
        """The comparator on (run B' element, run A element) already in SRAM pages: B' < A."""
        names = []
        for j, x in enumerate(xs):
            body.extend([L.Load(f"{tag}b{j}", VTYPE[x.dtype], f"{lhs}{j}", f"{tag}ib", load_expr(x.dtype, "{ref}")),
                         L.Load(f"{tag}a{j}", VTYPE[x.dtype], f"{rhs}{j}", f"{tag}ia", load_expr(x.dtype, "{ref}"))])
            names += [f"{tag}b{j}", f"{tag}a{j}"]
        em = IREmitter(set(), {}, {}, {}, body)
        em.prefix = f"{tag}c"
        em.names.update(region_names(region, names))
        return em.value(region.outputs[0]), em.ops

    # binary search on the merge path (steps past convergence move nothing: count 0)
    steps = int(np.ceil(np.log2(w + 1))) + 1
    for j in range(len(xs)):
        body.append(L.CbReserve(cbs[3 * j], f"pr{j}"))
    body += [L.Var("slo", "int64_t", "t > lenb ? t - lenb : 0"), L.Var("shi", "int64_t", "K_MIN(t, lena)"),
             L.Range("bs", "0", str(steps)),
             L.Define("smid", "int64_t", "(slo + shi) >> 1"), L.Define("act", "int", "slo < shi"),
             L.Define("pa", "int64_t", "act ? smid : 0"), L.Define("pb", "int64_t", "act ? t - smid - 1 : 0"),
             L.Define("bsia", "int64_t", "0"), L.Define("bsib", "int64_t", "1")]
    for j, ((base, s), a) in enumerate(zip(rows, accs)):
        body += [L.DmaRead(cbs[3 * j], f"pr{j}", "0", ops[a.src.id], f"{base} + (pl + pa) * {s}", "act", s),
                 L.DmaRead(cbs[3 * j], f"pr{j}", "1", ops[a.src.id], f"{base} + (pl + lena + pb) * {s}", "act", s)]
    lt, _ = compare("bs", "pr", "pr")
    body += [L.Assign("slo", f"act && !({lt}) ? smid + 1 : slo"), L.Assign("shi", f"act && ({lt}) ? smid : shi"),
             L.End()]
    for j in range(len(xs)):
        body += [L.CbPush(cbs[3 * j]), L.CbWait(cbs[3 * j], f"prd{j}"), L.CbPop(cbs[3 * j])]
    # the block's share of each run into SRAM, then the merge
    body += [L.Define("na", "int64_t", f"K_MIN((int64_t){blk}, lena - slo)"),
             L.Define("nbb", "int64_t", f"K_MIN((int64_t){blk}, lenb - (t - slo))")]
    for j, ((base, s), a) in enumerate(zip(rows, accs)):
        ca, cb = cbs[3 * j + 1], cbs[3 * j + 2]
        body += [L.CbReserve(ca, f"wa{j}"), L.DmaRead(ca, f"wa{j}", "0", ops[a.src.id], f"{base} + (pl + slo) * {s}", "na", s),
                 L.CbPush(ca), L.CbWait(ca, f"ma{j}"),
                 L.CbReserve(cb, f"wb{j}"),
                 L.DmaRead(cb, f"wb{j}", "0", ops[a.src.id], f"{base} + (pl + lena + t - slo) * {s}", "nbb", s),
                 L.CbPush(cb), L.CbWait(cb, f"mb{j}")]
    body += [L.CbReserve(cbo, "out"), L.Var("mi", "int64_t", "0"), L.Var("mj", "int64_t", "0"),
             L.Range("mk", "0", "m"),
             L.Define("la", "int", "mi < na"), L.Define("ra", "int", "mj < nbb"),
             L.Define("mgia", "int64_t", "la ? mi : 0"), L.Define("mgib", "int64_t", "ra ? mj : 0")]
    lt, cops = compare("mg", "mb", "ma")
    body += [L.Define("tl", "int", f"la && (!ra || !({lt}))"),
             L.Store("out", "mk", store_expr(node.dtype, f"tl ? mga{want} : mgb{want}")),
             L.Assign("mi", "mi + tl"), L.Assign("mj", "mj + !tl"), L.End()]
    for j in range(len(xs)):
        body += [L.CbPop(cbs[3 * j + 1]), L.CbPop(cbs[3 * j + 2])]
    rm = row_major(shape)
    body += [L.CbPush(cbo), L.CbWait(cbo, "res"),
             L.DmaWrite(cbo, "res", "0", dop,
                        _base(k.dest.offset, tuple(rm[i] for i in others), idx) + f" + t0 * {rm[d]}", "m", rm[d]),
             L.CbPop(cbo)]
    items = outer * nb
    per_item = (cops + 4) * -(-blk // 1024) + steps
    body.append(L.VectorOps(str(per_item)))
    return L.LoopKernel(name, list(ops.values()) + [dop], cbs, body, items if node.size else 0, ["sort"], "sort")
