"""Scan kernels (windows.py's `scan`: the cumulative reduce_window forms) lowered into the loop
IR. O(n) work per scanned row: one accumulator per column, updated with the body in order.

The operand is stored row-major ([outer, n, inner] around the scanned axis):
  inner == 1  a work item is one row; the row comes into SRAM by DMA in pieces of up to 1024
              elements, the accumulator walks each piece (backwards for a reverse scan) into
              the output page, which leaves by DMA;
  inner > 1   a work item is a strip of up to 256 columns of one outer index: for each step of
              the axis the strip's run is DMA'd in, the column accumulators are updated and
              stored, and the run leaves by DMA.
"""
from __future__ import annotations

import numpy as np

from . import loopir as L
from .codegen import literal, load_expr, store_expr
from .dtypes import CTYPE, VTYPE
from .fuse import Kernel, read_access
from .graph import itemsize, scalar_const
from .lower import CHUNK, IREmitter, region_names
from .lower_indexing import fit_blocks

STRIP = 256  # columns per work item of a scan over a non-innermost axis


def lower_scan(mat: set[int], k: Kernel, name: str, sram_budget: int) -> L.LoopKernel:
    node = k.root
    x = node.inputs[0]
    xa = read_access(x, mat)
    a, rev, region = node.attrs["axis"], node.attrs["reverse"], node.attrs["body"]
    shape = node.shape
    n = shape[a]
    outer = int(np.prod(shape[:a], dtype=np.int64))
    inner = int(np.prod(shape[a + 1:], dtype=np.int64))
    dt = node.dtype
    init = literal(scalar_const(node.inputs[1]), dt)
    xop = L.Operand(0, CTYPE[x.dtype], False, xa.src)
    dop = L.Operand(1, CTYPE[dt], True, node)
    xoff, doff = xa.offset, k.dest.offset
    width = min(inner, STRIP) if inner > 1 else CHUNK

    def make(w: int) -> list[L.CircularBuffer]:
        cbs = [L.CircularBuffer("cbx", CTYPE[x.dtype], itemsize(x.dtype), w),
               L.CircularBuffer("cbo", CTYPE[dt], itemsize(dt), w)]
        L.place(cbs)
        return cbs
    cbs, width = fit_blocks(make, width, sram_budget, name, "scan", node)
    cbx, cbo = cbs
    body: list = []
    em = IREmitter(set(), {}, {}, {}, body)
    em.prefix = "bod"

    def step(acc: str, at: str, count: str, loop: list) -> None:
        """The run of `count` DMA'd in at element `at` is scanned into the output page (`loop`
        opens the loop over it, `j` the element's index in the run; acc updated per element)
        and DMA'd out to the same place."""
        em.names.update(region_names(region, [acc, "xv"]))
        body.extend([L.CbReserve(cbx, "xin"), L.DmaRead(cbx, "xin", "0", xop, f"{xoff} + {at}", count, 1),
                     L.CbPush(cbx), L.CbWait(cbx, "xs"), L.CbReserve(cbo, "out"), *loop,
                     L.Load("xv", VTYPE[x.dtype], "xs", "j", load_expr(x.dtype, "{ref}"))])
        v = em.value(region.outputs[0])
        body.extend([L.Assign(acc, v), L.Store("out", "j", store_expr(dt, acc)), L.End(),
                     L.CbPop(cbx), L.CbPush(cbo), L.CbWait(cbo, "res"),
                     L.DmaWrite(cbo, "res", "0", dop, f"{doff} + {at}", count, 1), L.CbPop(cbo)])
    if inner == 1:
        items = outer
        body += [L.Var("acc", VTYPE[dt], init),
                 L.Range("pc", "0", str(n), step=width), L.Define("np_", "int64_t", f"K_MIN((int64_t){width}, {n} - pc)"),
                 L.Define("s0", "int64_t", f"{n} - pc - np_" if rev else "pc")]
        step("acc", f"it * {n} + s0", "np_",
             [L.Range("jj", "0", "np_"), L.Define("j", "int64_t", "np_ - 1 - jj" if rev else "jj")])
        body.append(L.End())
        nvec = f"{em.ops} * (({n} + 1023) / 1024)"
    else:
        per = -(-inner // width)
        items = outer * per
        body += [L.Define("o", "int64_t", f"it / {per}"), L.Define("c0", "int64_t", f"(it % {per}) * {width}"),
                 L.Define("nc", "int64_t", f"K_MIN((int64_t){width}, {inner} - c0)"),
                 L.Var("acc", VTYPE[dt], n=width), L.Range("j", "0", "nc"), L.Assign("acc[j]", init), L.End(),
                 L.Range("t", "0", str(n)), L.Define("tt", "int64_t", f"{n - 1} - t" if rev else "t"),
                 L.Define("row", "int64_t", f"(o * {n} + tt) * {inner} + c0")]
        step("acc[j]", "row", "nc", [L.Range("j", "0", "nc")])
        body.append(L.End())
        nvec = f"{em.ops} * (({n} * nc + 1023) / 1024)"
    if em.ops:
        body.append(L.VectorOps(nvec))
    return L.LoopKernel(name, [xop, dop], cbs, body, items if node.size else 0,
                        ["scan"] + [m.op for m in region.nodes() if m.op not in ("param", "const")], "scan")
