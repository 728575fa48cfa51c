"""Loop IR -> C: one table entry per micro-op. The renderer knows C syntax and the device's
kernel primitives (ttrt_kernel.h), nothing about ML ops: those arrive as Alu expressions."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from . import loopir as L
from .cost import _parse  # the IR's C index expressions, read as the cost model reads them


def _dma_read(u: L.DmaRead) -> str:
    if u.host == L.ONCE or (u.host == L.FIRST_USE and _linear(u)):
        return _host_read(u)
    if _short(u):
        return (f"tt_dma_read_run(core, ops, {u.operand.index}, {u.index}, {u.page} + {u.sram_index}, "
                f"{u.cb.esize}u, {u.count});")
    # the DRAM side by operand number and index (ttrt_kernel.h's tt_dma_read_op says why)
    return f"tt_dma_read_op(core, ops, {_dma_args(u)});"


def _dma_args(u: L.DmaRead | L.DmaWrite) -> str:
    """A DMA's operand, DRAM index, page address, pitches, element size and shape, as
    ttrt_kernel.h's tt_dma_read_op / tt_dma_write_op take them after `core, ops`."""
    return (f"{u.operand.index}, {u.index}, {u.page} + {u.sram_index}, {u.sram_pitch}, "
            f"{u.dram_pitch}, {u.cb.esize}u, {u.rows}, {u.count}, {u.stride}")


def _counted(u: L.DmaRead, src: str) -> str:
    return (f"tt_dma_read_counted(core, {src}, {u.cb.esize}u, {u.rows}, {u.count}, {u.stride});")


def _host_read(u: L.DmaRead) -> str:
    """A read the host performs elsewhere, counted here (the device model sees the same
    transfer). FIRST_USE: the run's DRAM address, for the Loads that copy each element into
    the page as they read it (a separate copy made reductions and row kernels wait for memory
    with nothing to compute meanwhile: softmax took 1.37x the time of kernels computing
    straight from DRAM); the count usually joins a batch (_Batch, K_DMA_COUNT). ONCE: the copy
    on the core's first work item only; the page keeps it."""
    src = f"p{u.operand.index} + ({u.index})"
    if u.host == L.ONCE and u.cb.ctype == u.operand.ctype:
        # prelude.c's helper: the copy on the first item, else the count at the same DRAM address
        # (ops[op] + index elements of the page's type, which is the operand's)
        return f"k_dma_read_once(core, ops, it == begin, {_dma_args(u)});"
    if u.host == L.ONCE:
        copy = _dma_read(replace(u, host=""))  # the same read as an ordinary copy
        return f"if (it == begin) {copy} else {_counted(u, src)}"
    return f"{_first_use_pointer(u)} {_counted(u, _src(u.page))}"


def _first_use_pointer(u: L.DmaRead) -> str:
    return f"const {u.cb.ctype} *restrict {_src(u.page)} = p{u.operand.index} + ({u.index});"


def _counted_here(u) -> bool:
    """A first-use read, whose Loads put each element into the page: only counted where it stands."""
    return isinstance(u, L.DmaRead) and u.host == L.FIRST_USE and _linear(u)


def _src(page: str) -> str:
    return f"dram_{page}"


def _linear(u: L.DmaRead) -> bool:
    """Page element i of the read is DRAM element index + i * stride: one run, or rows packed
    alike in the page and in DRAM (what a FIRST_USE read's Loads rely on)."""
    return (u.sram_index == "0" and u.stride != 0 and u.cb.ctype == u.operand.ctype
            and (u.rows == "1" or u.dram_pitch.isdigit() and u.sram_pitch.isdigit()
                 and int(u.dram_pitch) == int(u.sram_pitch) * u.stride))


# A DMA of one contiguous run at most this long, its length a constant, is copied at the call site
# (ttrt_kernel.h's tt_dma_read_run / tt_dma_write_run: fixed-size vector moves, then a direct call
# to count it), not by the runtime's engine. Stencil kernels issue one such run per tap and output
# row (3x3/2 max pool, 3x3 depthwise: about ten per row of 64 f32); through the engine they took
# 1.35x as long on one host thread. A length known only at run time goes to the engine: the copy
# code it would need at every call site made the C compiler take 4-8% longer over a training
# step's kernels, for runs that are mostly long. 256 bytes: those stencil rows; 512 cost the C
# compiler up to 5% more over a training step's kernels (rows of 128 f32), measured under load.
SHORT_RUN_BYTES = 256


def _short(u: L.DmaRead | L.DmaWrite) -> bool:
    return (u.rows == "1" and u.stride == 1 and u.count.isdigit()
            and 0 < int(u.count) * u.cb.esize <= SHORT_RUN_BYTES)


# Op sets are tested by exact type (the IR's op classes have no subclasses; a set lookup is much
# cheaper than isinstance over a tuple, and render meets every op of every kernel)
_BINDS = frozenset((L.Define, L.Range, L.Var, L.Load, L.Alu))  # the ops that name a value


class _Unknown(Exception):
    """A name whose value is not one integer known here."""


def _item_values(k: L.LoopKernel) -> Callable[[str], int | None]:
    """value(text): the value of an IR index expression when it is one integer for every work item
    of `k`, else None. Evaluated as cost.py evaluates the IR (its parser: C's semantics), with
    `it` the vector of every work item; a name is known when one Define binds it (a range, a
    variable, a loaded value or a second Define make it unknown)."""
    once: dict[str, str | None] = {}
    for u in k.body:
        if type(u) in _BINDS:
            once[u.var] = u.expr if type(u) is L.Define and u.var not in once else None
    # (one item: its number as a plain integer, evaluated without numpy, to the same values)
    items = 0 if k.work_items == 1 else np.arange(k.work_items, dtype=np.int64) if 0 < k.work_items <= ITEMS_MAX \
        else None
    memo: dict[str, object] = {}

    def env(name: str):
        if name == "it" and items is not None:
            return items
        if name not in memo:
            text = once.get(name)
            try:
                memo[name] = _Unknown() if text is None else _parse(text).fn(env)
            except (_Unknown, ValueError):
                memo[name] = _Unknown()
        v = memo[name]
        if isinstance(v, _Unknown):
            raise _Unknown(name)
        return v

    def value(text: str) -> int | None:
        try:
            v = _parse(text).fn(env)
        except (_Unknown, ValueError):
            return None
        if type(v) is int:  # (no item in it: a plain integer)
            return v
        v = np.asarray(v)
        return int(v.flat[0]) if v.size and (v == v.flat[0]).all() else None
    return value


# Kernels with more work items than this are not looked at (the vector of items costs memory).
ITEMS_MAX = 1 << 20


class _Known:
    """known(text): the value of an index expression of `k` when it is one integer for every work
    item (else None), remembered; the kernel's evaluator (_item_values) is made when first needed.
    One per rendering: the counts _constant_counts folds and the fields a DMA batch writes are
    often the same expressions."""

    def __init__(self, k: L.LoopKernel):
        self.k = k
        self.value: Callable[[str], int | None] | None = None
        self.memo: dict[str, int | None] = {}

    def __call__(self, text: str) -> int | None:
        if text.lstrip("-").isdigit():
            return int(text)
        if text not in self.memo:
            if self.value is None:
                self.value = _item_values(self.k)
            self.memo[text] = self.value(text)
        return self.memo[text]


def _constant_counts(k: L.LoopKernel, known: _Known) -> list:
    """The body with the count of each one-run DMA that is short and one integer for every item
    (the column block's `nc` when one block spans a row) written as that integer, for _short (a
    streamed write gets it too and still goes to the engine; the other DMAs' C is unchanged)."""
    at = [i for i, u in enumerate(k.body) if type(u) in _DMAS and u.rows == "1" and u.stride == 1
          and not u.count.isdigit() and not u.host]  # (a read the host does elsewhere is not copied here)
    if not at:
        return k.body
    body = list(k.body)
    for i in at:
        u = body[i]
        n = known(u.count)
        if n is not None and _short(w := replace(u, count=str(n))):
            body[i] = w
    return body


class _FirstUse:
    """Follows FIRST_USE reads from their DmaRead through the consumer's page: every Load of
    that page first copies its element from DRAM (as the DMA would have put it there). The page
    must be read by Loads only while it is held: anything else is a compiler bug. (Measured and
    not taken: Loads reading DRAM only and the page filled by a copy where it is popped cut the
    C compiler's work over a training step's program by a further 9%, but made the step 1.08-1.15x
    as slow on the host, and row_sum and softmax of f32[4096, 1024] 1.75-1.9x.)"""

    def __init__(self) -> None:
        self.by_cb: dict[str, L.DmaRead] = {}   # read, not yet waited for
        self.pages: dict[str, L.DmaRead] = {}   # consumer page -> its read

    def step(self, u) -> str:
        t = type(u)  # (the IR's op classes have no subclasses: a type test is an isinstance)
        if t is L.DmaRead and u.host == L.FIRST_USE and _linear(u):  # (else an ordinary copy)
            if u.cb.name in self.by_cb:
                raise AssertionError(f"first-use read {L._fmt(u)}: its page's last read was not waited for")
            self.by_cb[u.cb.name] = u
        elif t is L.CbWait and u.cb.name in self.by_cb:
            self.pages[u.page] = self.by_cb.pop(u.cb.name)
        elif t is L.CbPop:
            for page in [p for p, r in self.pages.items() if r.cb.name == u.cb.name]:
                del self.pages[page]
        elif t is L.Load and u.page in self.pages:
            r = self.pages[u.page]
            at = f"({u.index}) * {r.stride}" if r.stride != 1 else u.index
            if u.expr == "{ref}" and u.ctype == r.cb.ctype:
                # the element read from DRAM, then stored into the page: the same page, one memory
                # reference fewer in the loop for the C compiler's dependence analysis (about 1% of
                # its work over a training step's kernels)
                return f"const {u.ctype} {u.var} = {_src(r.page)}[{at}]; {u.page}[{u.index}] = {u.var};"
            return f"{u.page}[{u.index}] = {_src(r.page)}[{at}]; "
        elif self.pages and t in _WRITERS:
            text = " ".join(v if isinstance(v, str) else " ".join(map(str, v)) for v in vars(u).values()
                            if isinstance(v, (str, tuple)))
            if any(L._mentions(text, p) for p in self.pages):
                raise AssertionError(f"first-use page used by {L._fmt(u)}")
        return ""


_WRITERS = frozenset((L.Store, L.DmaWrite, L.MatMul, L.Call))  # ops that may touch a page other than by a Load


# Outputs at least this big are written by streaming (non-temporal) stores (tt_dma_write_op's `stream`):
# they are far larger than the host's L2 caches (1 MiB a core here), so the lines would be
# evicted before anything reads them, and a plain store reads each line in first. Measured on
# 4M f32 (one thread, under load): ReLU 0.63-0.77x and ELU 0.75-0.85x of their time with plain
# stores. Smaller outputs stay in the caches for the next kernel.
STREAM_MIN_BYTES = 4 << 20


def _streams(u: L.DmaWrite) -> bool:
    return u.stride == 1 and u.operand.node is not None and u.operand.node.nbytes >= STREAM_MIN_BYTES and \
        u.host != L.IN_PLACE


def _dma_write(u: L.DmaWrite) -> str:
    if u.host == L.IN_PLACE:  # (the engine wrote the block there: the transfer is counted as the engine counts it,
        # by the header's out-of-line copy of the count: inline, its range tests were a quarter of
        # the C compiler's work on a product kernel)
        e = u.cb.esize
        return (f"tt__dma_at(core, (const char *)ops[{u.operand.index}] + ({u.index}) * {e}, "
                f"(uint64_t)({u.rows}) * ({u.count}) * {e}u);")
    if _short(u) and not _streams(u):
        return (f"tt_dma_write_run(core, ops, {u.operand.index}, {u.index}, {u.page} + {u.sram_index}, "
                f"{u.cb.esize}u, {u.count});")
    return f"tt_dma_write_op(core, ops, {_dma_args(u)}, {int(_streams(u))});"


class _Rings:
    """Circular-buffer pages as plain SRAM addresses. The protocol is checked at compile time
    (loopir.check_cb_protocol), so nothing is checked at run time; and a ring that is empty may
    be rewound (which page comes next is free when none is in use). A ring is empty at the start
    of every work item, and, if it is empty where a range starts, at the start of every
    iteration of that range (its body must leave the ring as it found it). So the slot of every
    page op whose ring was empty at the start of its innermost range (or of the work item) is
    known statically: a constant address the C compiler folds. Rendering every page with run-time
    counters took it 1.6x as long over a training step's kernels. Any other ring keeps two
    counters per work item, the back one (`_t`, reserve/push) and the front one (`_h`,
    wait/pop). Pages are not `restrict`: a ring's producer and consumer pages are the same
    memory, often both in scope."""

    def __init__(self, k: L.LoopKernel):
        self.cbs = k.cbs
        self.dynamic: set[str] = set()
        self.at: dict[str, int | None] = {}  # page -> its byte offset in SRAM when static (else None)
        self._find_dynamic(k.body)
        self._reset()

    def _find_dynamic(self, body: list) -> None:
        """A dry run over the body that follows only what decides which rings need counters (each
        ring's state, and which were empty where each range started); `step` then renders with
        the set complete."""
        state = {cb.name: (0, False) for cb in self.cbs}
        frames: list[tuple[dict, set[str]]] = []
        for u in body:
            t = type(u)
            if t is L.Range:
                frames.append((dict(state), _empty_rings(state)))
            elif t is L.End:
                state = frames.pop()[0]
            elif t in _CB_OPS:
                name = u.cb.name
                if frames and name not in frames[-1][1] and u.cb.npages > 1:
                    self.dynamic.add(name)
                state[name] = _ring_after(t, state[name])

    def _reset(self) -> None:
        self.count: dict[tuple[str, str], int] = {}
        self.state: dict[str, tuple[int, bool]] = {cb.name: (0, False) for cb in self.cbs}
        self.frames: list[tuple[dict, dict, set[str]]] = []

    def declare(self) -> list[str]:
        """Start of a work item: every ring empty, rewound."""
        self._reset()
        return [f"uint32_t {cb.name}_t = 0, {cb.name}_h = 0;" for cb in self.cbs if cb.name in self.dynamic]

    def step(self, u) -> str:
        """Follow u; the C for a circular-buffer op ("" for others and for static pushes/pops)."""
        t = type(u)
        if t not in _RING_OPS:
            return ""
        if t is L.Range:
            empty = _empty_rings(self.state)
            self.frames.append((dict(self.count), dict(self.state), empty))
            for n in empty:
                self.count[n, "t"] = self.count[n, "h"] = 0
            return ""
        if t is L.End:
            self.count, self.state, _ = self.frames.pop()
            return ""
        cb = u.cb
        end = "t" if t is L.CbReserve or t is L.CbPush else "h"
        self.state[cb.name] = _ring_after(t, self.state[cb.name])
        if t is L.CbPush or t is L.CbPop:
            self.count[cb.name, end] = self.count.get((cb.name, end), 0) + 1
            return f"++{cb.name}_{end};" if cb.name in self.dynamic else ""
        if cb.name in self.dynamic:
            slot = f" + ({cb.name}_{end} % {cb.npages}u) * {cb.page_bytes}u"
            self.at[u.page] = None
        else:
            at = self.count.get((cb.name, end), 0) % cb.npages * cb.page_bytes
            slot = f" + {at}u" if at else ""
            self.at[u.page] = cb.offset + at
        return f"{cb.ctype} *{u.page} = ({cb.ctype} *)(sram_ + {cb.offset}u{slot});"


def _ring_after(t: type, st: tuple[int, bool]) -> tuple[int, bool]:
    """A ring's (pages filled, a page reserved) after a circular-buffer op of type t."""
    filled, reserved = st
    if t is L.CbPush:
        return filled + 1, False
    if t is L.CbPop:
        return filled - 1, reserved
    return (filled, True) if t is L.CbReserve else st


def _empty_rings(state: dict[str, tuple[int, bool]]) -> set[str]:
    return {n for n, st in state.items() if st == (0, False)}


# k_dma_desc's flags (prelude.c's K_DMA_ONCE, K_DMA_WRITE, K_DMA_STREAM, K_DMA_COUNT)
K_DMA_ONCE, K_DMA_WRITE, K_DMA_STREAM, K_DMA_COUNT = 1, 2, 4, 8


class _Batch:
    """The DMAs a kernel issues at one point, issued by one call: prelude.c's k_dma_batch walks a
    static table of their descriptors (the fields known for every work item written in it, the
    others passed as an array of values). An engine call site per DMA cost the C compiler about
    3.5 M instructions (12 arguments around a call), and a kernel reads several operands at one
    point (a rows kernel's inputs, the counts of a reduction's first-use runs); even one
    DMA costs it less so (6 arguments), once per work item (in a loop a lone DMA keeps its own
    call). A DMA joins when the engine would move it and its page is
    at a fixed place in SRAM; a short run (_short) too when the kernel issues its short runs once
    per work item (a reduction's results: the copy at the call site cost the C compiler about 5 M
    instructions, and the host nothing measurable once an item), not also in a loop (a stencil's
    taps, about ten a row, and its results: those stay copies at the call site). Ops that touch
    no memory (page pointers, index definitions, event counts) may come between the DMAs;
    anything else issues the pending ones first, in program order (the engine sees the same
    transfers in the same order as from one call each)."""

    def __init__(self, k: L.LoopKernel, body: list, rings: _Rings, known: _Known):
        self.k = k
        self.rings = rings
        self.known_value = known  # (the value of an index expression when one integer for every work item)
        self.pending: list[L._Dma] = []
        depth, self.runs_in_loops = 0, False
        for u in body:
            t = type(u)
            if t is L.Range:
                depth += 1
            elif t is L.End:
                depth -= 1
            elif depth > 0 and t in _DMAS and _short(u):
                self.runs_in_loops = True
                break

    def joins(self, u: L._Dma, depth: int) -> bool:
        if _counted_here(u):  # (a count only: K_DMA_COUNT)
            return self.rings.at.get(u.page) is not None
        if isinstance(u, L.DmaRead):
            copy = not u.host or u.host == L.FIRST_USE and not _linear(u)  # (as _dma_read renders them)
            engine = copy and (not _short(u) or self._once_an_item(depth)) or \
                u.host == L.ONCE and u.cb.ctype == u.operand.ctype
        else:
            engine = u.host != L.IN_PLACE and (not _short(u) or _streams(u) or self._once_an_item(depth))
        return engine and self.rings.at.get(u.page) is not None and self.known_value(u.sram_index) is not None

    def _once_an_item(self, depth: int) -> bool:
        return depth == 2 and not self.runs_in_loops  # (2: the work item's loop, in render)

    def flush(self, depth: int) -> str:
        if not self.pending:
            return ""
        if len(self.pending) == 1 and depth > 2:
            # one DMA inside a loop: its own call, one call less each time round (a walk of one
            # row per output made a sum over rows of 8 f32 2.5x as slow on the host)
            u = self.pending.pop()
            return _counted(u, _src(u.page)) if _counted_here(u) else RULES[type(u)](u)
        rows, values, once = [], [], False
        for u in self.pending:
            flags = 0
            if isinstance(u, L.DmaWrite):
                flags = K_DMA_WRITE | (K_DMA_STREAM if _streams(u) else 0)
            elif _counted_here(u):
                flags = K_DMA_COUNT
            elif u.host == L.ONCE:
                flags, once = K_DMA_ONCE, True
            fields, live = [], 0
            for j, text in enumerate((u.index, u.sram_pitch, u.dram_pitch, u.rows, u.count)):
                v = self.known_value(text)
                if v is None:
                    live |= 1 << j
                    values.append(f"(int64_t)({text})")
                fields.append(str(v or 0))
            page = self.rings.at[u.page] + self.known_value(u.sram_index) * u.cb.esize
            rows.append(f"{{{u.operand.index}, {flags}, {live}, {u.cb.esize}, {page}, "
                        f"{{{', '.join(fields)}, {u.stride}}}}}")
        self.pending = []
        v = f"(const int64_t[]){{{', '.join(values)}}}" if values else "0"
        return (f"{{ static const k_dma_desc d_[] = {{{', '.join(rows)}}}; "
                f"k_dma_batch(core, ops, {'it == begin' if once else '0'}, {len(rows)}, d_, {v}); }}")


RULES: dict[type, Callable] = {
    L.Range: lambda u: (f"_Pragma(\"{u.pragma}\") " if u.pragma else "") +
    f"for ({u.var_type} {u.var} = {u.start}; {u.var} < {u.end}; " + (f"++{u.var}) {{" if u.step == 1 else f"{u.var} += {u.step}) {{"),
    L.Var: lambda u: f"{u.ctype} {u.var}" + (f"[{u.n}]" if u.n else "") + (f" = {u.init};" if u.init else ";"),
    L.Assign: lambda u: f"{u.target} = {u.expr};",
    L.End: lambda u: "}",
    L.Define: lambda u: f"const {u.ctype} {u.var} = {u.expr};",
    L.DmaRead: _dma_read,
    L.DmaWrite: _dma_write,
    L.DmaPrefetch: lambda u: (f"tt_dma_prefetch_line(p{u.operand.index}, {u.index}, {u.esize}u);" if u.line else
                              f"tt_dma_prefetch(p{u.operand.index}, {u.index}, {u.esize}u, {u.count});" if u.rows == "1" else
                              f"tt_dma_prefetch_block(p{u.operand.index}, {u.index}, {u.esize}u, {u.count}, {u.rows}, {u.pitch});"),
    L.Load: lambda u: f"const {u.ctype} {u.var} = {u.expr.format(ref=f'{u.page}[{u.index}]')};",
    L.Store: lambda u: f"{u.page}[{u.index}] = {u.expr};",
    L.Alu: lambda u: f"const {u.ctype} {u.var} = {u.expr};",
    L.VectorOps: lambda u: f"tt_vector_ops(core, (uint64_t)({u.count}));",
    L.MatMul: lambda u: (f"{u.fn}(core, {u.m}, {u.n}, {u.k}, {u.a_page or f'p{u.a.index}'} + ({u.a_index}), {u.a_rs}, {u.a_cs}, "
                         f"{u.b_page or f'p{u.b.index}'} + ({u.b_index}), {u.b_rs}, {u.b_cs}, {u.page}, {u.c_rs});"),
    L.Call: lambda u: f"{u.fn}({', '.join(u.args)});",
}


_CB_OPS = frozenset((L.CbReserve, L.CbPush, L.CbWait, L.CbPop))
_DMAS = frozenset((L.DmaRead, L.DmaWrite))
# ops that touch no SRAM or DRAM data: pending DMAs (_Batch) may be issued after them
_QUIET = _CB_OPS | _DMAS | {L.Define, L.VectorOps}
_RING_OPS = _CB_OPS | {L.Range, L.End}  # what _Rings follows


def render(k: L.LoopKernel) -> str:
    """The kernel as one C function `static void name(core, ops, begin, end)`. A kernel whose
    circular buffers are misused is a compiler bug, refused here."""
    bad = L.check_cb_protocol(k)
    if bad:
        raise AssertionError("circular-buffer protocol: " + "; ".join(bad[:5]))
    # The kernel counts straight into its core's counters (a cache line of their own, device.c):
    # a private copy of the core per kernel was about 5% of the C compiler's time over a training
    # step's kernels.
    lines = [f"static void {k.name}(const tt_core *core, void *const *ops, int64_t begin, int64_t end) {{"]
    decl = len(lines)  # operand pointers go here, for those the body names (DMA names them by number)
    if k.cbs:
        lines.append("  char *const sram_ = (char *)core->sram;")
    rings = _Rings(k)
    if any(type(u) is L.DmaRead and u.host == L.ONCE and u.cb.name in rings.dynamic for u in k.body):
        raise AssertionError(f"{k.name}: a read done once per core into a page that moves")
    first = _FirstUse()
    known = _Known(k)
    body = _constant_counts(k, known)
    batch = _Batch(k, body, rings, known)
    lines.append("  for (int64_t it = begin; it < end; ++it) {")
    lines += ["    " + d for d in rings.declare()]
    depth = 2

    def emit(text: str) -> None:
        if text:
            lines.append("  " * depth + text)
    for u in body:
        t = type(u)
        if t not in _QUIET and batch.pending:
            emit(batch.flush(depth))
        if t is L.End:
            depth -= 1
        text = rings.step(u) if t in _RING_OPS else ""  # (it follows the ranges too)
        fill = first.step(u) if t is L.DmaRead or first.by_cb or first.pages else ""  # (else nothing to follow)
        if t is L.Load and fill.endswith(";"):  # (a first-use Load, rendered whole)
            text = fill
        elif t in _DMAS:
            if batch.joins(u, depth):
                if _counted_here(u):
                    emit(_first_use_pointer(u))  # (the Loads read DRAM through it)
                batch.pending.append(u)
                continue
            if not _counted_here(u):
                emit(batch.flush(depth))
            text = RULES[t](u)
        elif t is L.VectorOps and (n := batch.known_value(u.count)) is not None:
            text = f"tt_vector_ops(core, {n}u);"  # (the count the lowering wrote, folded: less for the C compiler)
        elif t not in _CB_OPS:
            text = fill + RULES[t](u)
        if text:  # (emit, inline: once per op)
            lines.append("  " * depth + text)
        if t is L.Range:
            depth += 1
    emit(batch.flush(depth))
    text = "\n".join(lines[decl:])
    pointers = []
    for o in k.operands:  # (a false match, p1 in p12, only declares a pointer gcc drops)
        if f"p{o.index}" in text:
            const = "" if o.writes else "const "
            pointers.append(f"  {const}{o.ctype} *restrict p{o.index} = ({const}{o.ctype} *)ops[{o.index}];")
    lines[decl:decl] = pointers
    lines.append("  }")
    if any(type(u) is L.DmaWrite and _streams(u) for u in k.body):
        lines.append("  tt_dma_stream_fence();")  # streamed stores are weakly ordered
    lines.append("}")
    return "\n".join(lines)


def anonymous(code: str, name: str) -> str:
    """A kernel's C with its name, which its definition spells once as ` name(`, written `@`
    (no C name): kernels that differ only in name then compare equal."""
    return code.replace(f" {name}(", " @(", 1)


def named(code: str, name: str) -> str:
    """The C `anonymous` made, named `name`."""
    return code.replace(" @(", f" {name}(", 1)
