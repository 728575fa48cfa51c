"""Sort kernels lowered into the loop IR: a compiler-built merge sort on each core's SRAM.

A `sort` node (legalize: one per result of a possibly multi-operand stablehlo.sort) is one
kernel whose work item is one row along the sorted dimension: every operand's row comes into
SRAM by DMA; a permutation (an int32 page of 2 x the row, ping-ponged between its halves) is
merge-sorted bottom-up, log2(n) passes, each merge branch-free (take the left run's element
unless the comparator says the right one is less: stable); then the result operand's row is
gathered through the permutation into the output page and leaves by DMA. The comparator region
is emitted inline (JAX's total-order float comparator included). A row must fit a core's SRAM;
a longer one is refused with the sizes.
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


def lower_sort(mat: set[int], k: Kernel, name: str, sram_budget: int) -> L.LoopKernel:
    node = k.root
    xs = node.inputs
    d, want, region = node.attrs["dim"], node.attrs["index"], node.attrs["body"]
    shape = node.shape
    n = shape[d]
    others = [i for i in range(len(shape)) if i != d]
    outer_shape = [shape[i] for i in others]
    outer = int(np.prod(outer_shape, dtype=np.int64))
    accs = [read_access(x, mat) for x in xs]
    ops: dict[int, L.Operand] = {}
    for a, x in zip(accs, xs):
        if a.src.id not in ops:
            ops[a.src.id] = L.Operand(len(ops), CTYPE[a.src.dtype], False, a.src)
    dop = L.Operand(len(ops), CTYPE[node.dtype], True, node)
    cbs = [L.CircularBuffer(f"cbx{j}", CTYPE[x.dtype], itemsize(x.dtype), n, 1) for j, x in enumerate(xs)]
    cbs += [L.CircularBuffer("cbix", "int32_t", 4, 2 * n, 1), L.CircularBuffer("cbo", CTYPE[node.dtype], itemsize(node.dtype), n, 1)]
    L.place(cbs)
    _check_fits(cbs, sram_budget, name, f"sort of rows of {n}", node)
    cbix, cbo = cbs[-2], cbs[-1]
    npass = max(0, int(np.ceil(np.log2(n)))) if n > 1 else 0
    body: list = []
    idx = _decode("it", outer_shape, "s", body)
    for j, (a, x) in enumerate(zip(accs, xs)):
        body += [L.CbReserve(cbs[j], f"w{j}"),
                 L.DmaRead(cbs[j], f"w{j}", "0", ops[a.src.id], _base(a.offset, tuple(a.strides[i] for i in others), idx),
                           str(n), a.strides[d]),
                 L.CbPush(cbs[j]), L.CbWait(cbs[j], f"x{j}")]
    body += [L.CbReserve(cbix, "ix"), L.Range("mk", "0", str(n)), L.Store("ix", "mk", "(int32_t)mk"), L.End()]
    em = IREmitter(set(), {}, {}, {}, body)
    em.prefix = "cmp"
    if npass:
        body += [L.Range("ps", "0", str(npass)), L.Define("wd", "int64_t", "(int64_t)1 << ps"),
                 L.Define("so", "int64_t", f"(ps & 1) * {n}"), L.Define("dof", "int64_t", f"{n} - so"),
                 L.Range("blk", "0", f"({n} + 2 * wd - 1) / (2 * wd)"),
                 L.Define("lo", "int64_t", "blk * 2 * wd"), L.Define("mid", "int64_t", f"K_MIN(lo + wd, (int64_t){n})"),
                 L.Define("hi", "int64_t", f"K_MIN(lo + 2 * wd, (int64_t){n})"),
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
    fin = (npass & 1) * n
    x = xs[want]
    body += [L.CbReserve(cbo, "out"), L.Range("mk", "0", str(n)),
             L.Load("pi", "int32_t", "ix", f"{fin} + mk"),
             L.Load("ov", VTYPE[x.dtype], f"x{want}", "pi", load_expr(x.dtype, "{ref}")),
             L.Store("out", "mk", store_expr(node.dtype, "ov")), L.End(),
             L.CbPush(cbix), L.CbWait(cbix, "ixd"), L.CbPop(cbix)]
    body += [L.CbPop(cbs[j]) for j in range(len(xs))]
    rm = row_major(shape)
    body += [L.CbPush(cbo), L.CbWait(cbo, "res"),
             L.DmaWrite(cbo, "res", "0", dop, _base(k.dest.offset, tuple(rm[i] for i in others), idx), str(n), rm[d]),
             L.CbPop(cbo)]
    vec = (em.ops + 4) * -(-outer * n * npass // 1024)
    if vec:
        body.append(L.VectorOps(str(vec // max(outer, 1) or 1)))
    dma = outer * n * (sum(itemsize(x.dtype) for x in xs) + itemsize(node.dtype))
    return L.LoopKernel(name, list(ops.values()) + [dop], cbs, body, outer if node.size else 0, vec, dma, 0,
                        ["sort"], "sort")
