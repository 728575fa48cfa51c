"""Loop IR -> C: one table entry per micro-op. The renderer knows C syntax and the device's
kernel primitives (ttrt_kernel.h), nothing about ML ops: those arrive as Alu expressions."""
from __future__ import annotations

from typing import Callable

from . import loopir as L


def _dma_read(u: L.DmaRead) -> str:
    return (f"tt_dma_read_strided(core, {u.page} + {u.sram_index}, p{u.operand.index} + ({u.index}), "
            f"{u.cb.esize}u, {u.count}, {u.stride});")


# Outputs at least this big are written by streaming (non-temporal) stores, tt_dma_write_stream:
# they are far larger than the host's L2 caches (1 MiB a core here), so the lines would be
# evicted before anything reads them, and a plain store reads each line in first. Measured on
# 4M f32 (one thread, under load): ReLU 0.63-0.77x and ELU 0.75-0.85x of their time with plain
# stores. Smaller outputs stay in the caches for the next kernel.
STREAM_MIN_BYTES = 4 << 20


def _streams(u: L.DmaWrite) -> bool:
    return u.stride == 1 and u.operand.node is not None and u.operand.node.nbytes >= STREAM_MIN_BYTES


def _dma_write(u: L.DmaWrite) -> str:
    fn = "tt_dma_write_stream" if _streams(u) else "tt_dma_write_strided"
    return (f"{fn}(core, p{u.operand.index} + ({u.index}), {u.page} + {u.sram_index}, "
            f"{u.cb.esize}u, {u.count}, {u.stride});")


RULES: dict[type, Callable] = {
    L.Range: lambda u: (f"_Pragma(\"{u.pragma}\") " if u.pragma else "") +
    f"for ({u.var_type} {u.var} = {u.start}; {u.var} < {u.end}; " + (f"++{u.var}) {{" if u.step == 1 else f"{u.var} += {u.step}) {{"),
    L.Var: lambda u: f"{u.ctype} {u.var}" + (f"[{u.n}]" if u.n else "") + (f" = {u.init};" if u.init else ";"),
    L.Assign: lambda u: f"{u.target} = {u.expr};",
    L.End: lambda u: "}",
    L.Define: lambda u: f"const {u.ctype} {u.var} = {u.expr};",
    L.DmaRead: _dma_read,
    L.DmaWrite: _dma_write,
    L.DmaPrefetch: lambda u: f"tt_dma_prefetch(p{u.operand.index}, {u.index}, {u.esize}u, {u.count});",
    L.CbReserve: lambda u: f"{u.cb.ctype} *restrict {u.page} = ({u.cb.ctype} *)tt_cb_reserve_back(core, &{u.cb.name});",
    L.CbPush: lambda u: f"tt_cb_push_back(&{u.cb.name});",
    L.CbWait: lambda u: f"{u.cb.ctype} *restrict {u.page} = ({u.cb.ctype} *)tt_cb_wait_front(core, &{u.cb.name});",
    L.CbPop: lambda u: f"tt_cb_pop_front(&{u.cb.name});",
    L.Load: lambda u: f"const {u.ctype} {u.var} = {u.expr.format(ref=f'{u.page}[{u.index}]')};",
    L.Store: lambda u: f"{u.page}[{u.index}] = {u.expr};",
    L.Alu: lambda u: f"const {u.ctype} {u.var} = {u.expr};",
    L.VectorOps: lambda u: f"tt_vector_ops(core, (uint64_t)({u.count}));",
    L.MatMul: lambda u: (f"{u.fn}(core, {u.m}, {u.n}, {u.k}, p{u.a.index} + ({u.a_index}), {u.a_rs}, {u.a_cs}, "
                         f"p{u.b.index} + ({u.b_index}), {u.b_rs}, {u.b_cs}, {u.page}, {u.c_rs});"),
    L.Call: lambda u: f"{u.fn}({', '.join(u.args)});",
}


def render(k: L.LoopKernel) -> str:
    """The kernel as one C function `static void name(core, ops, begin, end)`."""
    # The core's counters are counted in a local copy and added once at the end: cores that run
    # at the same time on different host threads would otherwise share their cache lines.
    lines = [f"static void {k.name}(const tt_core *core_, void *const *ops, int64_t begin, int64_t end) {{",
             "  uint64_t counts_[TT_CORE_NCOUNTERS] = {0};",
             "  tt_core local_ = *core_;",
             "  local_.counters = counts_;",
             "  const tt_core *core = &local_;"]
    for o in k.operands:
        const = "" if o.writes else "const "
        lines.append(f"  {const}{o.ctype} *restrict p{o.index} = ({const}{o.ctype} *)ops[{o.index}];")
    for cb in k.cbs:
        lines.append(f"  tt_cb {cb.name};")
        lines.append(f"  tt_cb_init(core, &{cb.name}, {cb.offset}u, {cb.page_bytes}u, {cb.npages}u);")
    lines.append("  for (int64_t it = begin; it < end; ++it) {")
    depth = 2
    for u in k.body:
        if isinstance(u, L.End):
            depth -= 1
        lines.append("  " * depth + RULES[type(u)](u))
        if isinstance(u, L.Range):
            depth += 1
    lines.append("  }")
    if any(isinstance(u, L.DmaWrite) and _streams(u) for u in k.body):
        lines.append("  tt_dma_stream_fence();")  # streamed stores are weakly ordered
    lines += ["  for (int i = 0; i < TT_CORE_NCOUNTERS; ++i) core_->counters[i] += counts_[i];", "}"]
    return "\n".join(lines)
