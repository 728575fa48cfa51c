"""The loop IR: what a kernel does on one core, as a flat list of typed micro-ops between fusion
and C (in the spirit of tinygrad's UOps).

A kernel's DRAM operands are reached only through DMA ops (`DmaRead` / `DmaWrite`) that move a
run of elements between DRAM (operand base + a computed element index, which may be any C
index expression, including one computed from data a kernel has already read) and a page of a
circular buffer in the core's SRAM. Compute reads and writes SRAM pages only (`Load`/`Store`
with computed indices); `Alu` ops are C expressions built by codegen's `op_expr`. Ranges nest
(`Range` ... `End`). `render.py` turns a `LoopKernel` into C; `check_dma_only` is the invariant
the tests assert for every kernel the suite compiles.

Index and scalar expressions are C expression strings over the IR's own variables: they are
integer arithmetic the renderer passes through, while everything that touches memory or costs
device time is a typed op the cost figures are computed from. Operand i is the C pointer `p<i>`;
no IR variable takes such a name (that is how `check_dma_only` finds DRAM accesses).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

SRAM_ALIGN = 64


@dataclass(frozen=True)
class Operand:
    """A kernel operand: DRAM bound by the launch (ops[index] in the kernel's signature)."""
    index: int
    ctype: str
    writes: bool
    node: object = field(default=None, compare=False)  # the stored graph node it binds (for memory planning)


@dataclass
class CircularBuffer:
    """A ring of `npages` pages of `page_elems` elements in the core's SRAM, at `offset`."""
    name: str
    ctype: str
    esize: int
    page_elems: int
    npages: int = 2          # double-buffered: a DMA may fill one page while compute uses the other
    offset: int = 0          # bytes from the start of the core's SRAM (set by `place`)

    @property
    def page_bytes(self) -> int:
        return -(-self.page_elems * self.esize // SRAM_ALIGN) * SRAM_ALIGN

    @property
    def bytes(self) -> int:
        return self.page_bytes * self.npages


# ----------------------------------------------------------------------------- micro-ops
@dataclass(frozen=True)
class Range:
    var: str
    start: str
    end: str
    pragma: str = ""         # e.g. "GCC ivdep" on loops the host compiler should vectorize
    step: int = 1
    var_type: str = "int64_t"


@dataclass(frozen=True)
class End:
    pass


@dataclass(frozen=True)
class Define:
    """`const ctype var = expr;` (index arithmetic, scalars)."""
    var: str
    ctype: str
    expr: str


@dataclass(frozen=True)
class Var:
    """A mutable scalar or (n > 0) an array of n in registers: accumulators, lanes."""
    var: str
    ctype: str
    init: str = ""
    n: int = 0


@dataclass(frozen=True)
class Assign:
    """target = expr (an accumulator update; target may index a Var array)."""
    target: str
    expr: str


@dataclass(frozen=True)
class _Dma:
    """`count` elements, `stride` elements apart in DRAM operand[index...], to or from a dense
    run at page[sram_index...] in SRAM (a page of cb). A block transfer moves `rows` such runs,
    `dram_pitch` elements apart in DRAM and `sram_pitch` apart in the page (a tile, a block of
    rows: one DMA instead of one per row)."""
    cb: CircularBuffer
    page: str                # SRAM pointer variable
    sram_index: str          # element offset in the page
    operand: Operand
    index: str               # element index in the operand (any index expression, data-dependent too)
    count: str
    stride: int
    rows: str = "1"
    dram_pitch: str = "0"
    sram_pitch: str = "0"
    # How the host performs a read (the device model counts the same transfer either way; see
    # render.py): "" copies the run here; FIRST_USE copies each element into the page in the
    # Load that reads it (one pass over the data on the host, the page still filled); ONCE
    # copies on a core's first work item only (a block every item reads alike: the page keeps it).
    # A write IN_PLACE is already where it goes (the matrix engine computed the block straight
    # into DRAM; its page only holds the model's SRAM): counted, not copied.
    host: str = ""


FIRST_USE, ONCE, IN_PLACE = "first_use", "once", "in_place"


class DmaRead(_Dma):
    """DRAM -> SRAM."""


class DmaWrite(_Dma):
    """SRAM -> DRAM."""


@dataclass(frozen=True)
class DmaPrefetch:
    """A hint that a coming DmaRead will read `count` elements of `esize` bytes at
    operand[index...]: the host starts fetching them into its caches while the core computes
    (a host core runs its reader and compute one after the other, so without it a kernel pays
    its memory time on top of its math). Moves no data; the device model counts nothing."""
    operand: Operand
    index: str
    count: str
    esize: int
    rows: str = "1"          # a block: `rows` such runs, `pitch` elements apart
    pitch: str = "0"
    line: bool = False       # just the cache line holding element `index`, asked for inline (count
                             # unused): one instruction inside a hot loop, where a call would cost more


@dataclass(frozen=True)
class _CbPage:
    cb: CircularBuffer
    page: str


class CbReserve(_CbPage):
    """Producer side: the back page of cb, as `page` (a pointer to cb's element type)."""


class CbWait(_CbPage):
    """Consumer side: the front page of cb, as `page`."""


@dataclass(frozen=True)
class _Cb:
    cb: CircularBuffer


class CbPush(_Cb):
    """Producer side: the reserved page is filled."""


class CbPop(_Cb):
    """Consumer side: the front page is used up."""


@dataclass(frozen=True)
class Load:
    """var = page[index] read from SRAM, converted to the value type by `expr` (a template
    with {ref} for the element reference: bf16 bits become a float, ...)."""
    var: str
    ctype: str
    page: str
    index: str
    expr: str = "{ref}"


@dataclass(frozen=True)
class Store:
    page: str
    index: str
    expr: str


@dataclass(frozen=True)
class Alu:
    """One vector-engine instruction per element: var = expr (from codegen.op_expr), costing
    `cost` vector instructions (the op table's; 0 for a rounding or a renaming)."""
    var: str
    ctype: str
    expr: str
    cost: int = 0


@dataclass(frozen=True)
class VectorOps:
    """An event for the cost model: the core issued `count` tile-wide vector instructions."""
    count: str


@dataclass(frozen=True)
class MatMul:
    """The matrix engine: page[i * c_rs + j] = sum_q A[a_index + i*a_rs + q*a_cs] * B[b_index +
    q*b_rs + j*b_cs] for an m x n block, into SRAM. The engine's packer is its DMA: it reads the
    operand blocks from DRAM into the engine's share of SRAM, counting the bytes. With `b_page`,
    B is that SRAM page instead (a block the kernel unpacked: no DMA), `b` only names the weight;
    with `a_page`, A is read from that page (overlapping patch rows DMA'd in once) likewise."""
    fn: str                  # tt_matmul_f32 | tt_matmul_bf16
    m: str
    n: str
    k: int | str
    a: Operand
    a_index: str
    a_rs: int
    a_cs: int
    b: Operand
    b_index: str
    b_rs: int
    b_cs: int
    page: str
    c_rs: str
    b_page: str = ""
    a_page: str = ""


@dataclass(frozen=True)
class Call:
    """A device primitive on SRAM (the data-movement engine's 8x8 transpose, the matrix
    engine): `fn(args...)`."""
    fn: str
    args: tuple[str, ...]


UOp = Range | End | Define | Var | Assign | DmaRead | DmaWrite | DmaPrefetch | CbReserve | CbPush | CbWait | CbPop | Load | Store | Alu | \
    VectorOps | MatMul | Call


@dataclass
class LoopKernel:
    """One kernel: operands, SRAM circular buffers, and the body run for each work item `it`
    in [begin, end). Its cost figures (`cost`: vector instructions, DMA bytes and matrix tiles
    for the whole launch, SRAM bytes per core) are computed from this IR by cost.py."""
    name: str
    operands: list[Operand]
    cbs: list[CircularBuffer]
    body: list[UOp]
    work_items: int
    ops: list[str] = field(default_factory=list)
    kind: str = ""           # 'elementwise' | 'movement' | 'reduce' | 'matmul' | 'gather' | ...

    @cached_property
    def cost(self):
        from .cost import figures  # (cost.py walks this module's ops)
        return figures(self)

    @property
    def vector_ops(self) -> int:
        return self.cost.vector_ops

    @property
    def dma_bytes(self) -> int:
        return self.cost.dma_bytes

    @property
    def matrix_tiles(self) -> int:
        return self.cost.matrix_tiles

    @property
    def sram_bytes(self) -> int:
        return self.cost.sram_bytes

    def alu_count(self) -> int:
        return sum(1 for u in self.body if isinstance(u, Alu))

    def format(self) -> str:
        """The IR as text, one op a line, nested by range (what `exe.kernels()` shows)."""
        lines = [f"kernel {self.name}: {self.work_items} work items, SRAM {self.sram_bytes} B/core, "
                 f"DMA {self.dma_bytes} B, {self.vector_ops} vector ops"]
        for o in self.operands:
            lines.append(f"  operand p{o.index}: {o.ctype} {'write' if o.writes else 'read'}")
        for cb in self.cbs:
            lines.append(f"  cb {cb.name}: {cb.npages} x {cb.page_elems} {cb.ctype} @ sram+{cb.offset}")
        depth = 1
        for u in self.body:
            if isinstance(u, End):
                depth -= 1
                continue
            lines.append("  " * depth + _fmt(u))
            if isinstance(u, Range):
                depth += 1
        return "\n".join(lines)


def _fmt(u: UOp) -> str:
    if isinstance(u, Range):
        return f"range {u.var} in [{u.start}, {u.end})" + (f" step {u.step}" if u.step != 1 else "")
    if isinstance(u, (DmaRead, DmaWrite)):
        block = f" x{u.rows} rows (dram pitch {u.dram_pitch}, sram pitch {u.sram_pitch})" if u.rows != "1" else ""
        if isinstance(u, DmaRead):
            host = f" (host copies {u.host.replace('_', ' ')})" if u.host else ""
            return f"dma_read {u.cb.name}:{u.page}[{u.sram_index}] <- p{u.operand.index}[{u.index}] x{u.count} stride {u.stride}{block}{host}"
        host = " (host: in place)" if u.host == IN_PLACE else ""
        return f"dma_write p{u.operand.index}[{u.index}] <- {u.cb.name}:{u.page}[{u.sram_index}] x{u.count} stride {u.stride}{block}{host}"
    if isinstance(u, DmaPrefetch):
        block = f" x{u.rows} rows (pitch {u.pitch})" if u.rows != "1" else ""
        return f"dma_prefetch p{u.operand.index}[{u.index}] " + ("(its line)" if u.line else f"x{u.count}{block}")
    if isinstance(u, (CbReserve, CbWait)):
        return f"{'cb_reserve_back' if isinstance(u, CbReserve) else 'cb_wait_front'} {u.cb.name} -> {u.page}"
    if isinstance(u, (CbPush, CbPop)):
        return f"{'cb_push_back' if isinstance(u, CbPush) else 'cb_pop_front'} {u.cb.name}"
    if isinstance(u, Load):
        return f"{u.var} = load {u.page}[{u.index}]"
    if isinstance(u, Store):
        return f"store {u.page}[{u.index}] = {u.expr}"
    if isinstance(u, Alu):
        return f"{u.var} = alu {u.expr}"
    if isinstance(u, Var):
        return f"var {u.var}{f'[{u.n}]' if u.n else ''}: {u.ctype}" + (f" = {u.init}" if u.init else "")
    if isinstance(u, Assign):
        return f"{u.target} <- {u.expr}"
    if isinstance(u, Define):
        return f"{u.var} = {u.expr}"
    if isinstance(u, VectorOps):
        return f"vector_ops += {u.count}"
    if isinstance(u, MatMul):
        return (f"{u.page}[{u.m} x {u.n}] = {u.fn} {u.a_page or f'p{u.a.index}'}[{u.a_index}] ({u.a_rs}, {u.a_cs}) @ "
                f"{u.b_page or f'p{u.b.index}'}[{u.b_index}] ({u.b_rs}, {u.b_cs}), K {u.k}")
    if isinstance(u, Call):
        return f"call {u.fn}({', '.join(u.args)})"
    return type(u).__name__.lower()


def place(cbs: list[CircularBuffer], base: int = 0) -> int:
    """Lay the circular buffers out one after another in SRAM from `base`; returns the end."""
    off = base
    for cb in cbs:
        cb.offset = off
        off += cb.bytes
    return off


def sram_end(cbs: list[CircularBuffer]) -> int:
    """The SRAM bytes from the start of a core's SRAM that the buffers take."""
    return max((cb.offset + cb.bytes for cb in cbs), default=0)


def check_dma_only(k: LoopKernel) -> list[str]:
    """Violations of the dataflow rule: DRAM operands are touched only by DMA ops (and the
    matrix engine's packer, its DMA), and memory ops address SRAM pages that a circular-buffer
    op produced. Empty when the kernel is sound."""
    pages = {u.page for u in k.body if isinstance(u, (CbReserve, CbWait))}
    operands = {f"p{o.index}" for o in k.operands}
    bad = []
    for u in k.body:
        if isinstance(u, (Load, Store)) and u.page not in pages:  # (a page may be written by a Call)
            bad.append(f"{k.name}: {_fmt(u)} does not address an SRAM page")
        text = " ".join(str(v) for v in vars(u).values() if isinstance(v, str))
        if not isinstance(u, (DmaRead, DmaWrite, DmaPrefetch, MatMul)) and any(_mentions(text, p) for p in operands):
            bad.append(f"{k.name}: {_fmt(u)} touches a DRAM operand outside DMA")
    return bad


def check_cb_protocol(k: LoopKernel) -> list[str]:
    """Violations of the circular-buffer protocol, found at compile time: a core runs its reader,
    compute and writer in program order, so a reserve on a full ring or a wait on an empty one
    would hang it. Each buffer's state (pages filled, a page reserved) is followed through the
    body; a range's body must leave every buffer as it found it (so any trip count, zero
    included, is sound) and a work item must leave them empty. Empty when the kernel is sound;
    the renderer then turns every page into a plain SRAM address (no runtime state or checks)."""
    bad: list[str] = []
    state = {cb.name: (0, False) for cb in k.cbs}
    npages = {cb.name: cb.npages for cb in k.cbs}
    stack: list[tuple[str, dict]] = []
    for u in k.body:
        if type(u) not in _PROTOCOL_OPS:  # (most ops; the op classes have no subclasses)
            continue
        if isinstance(u, Range):
            stack.append((u.var, dict(state)))
        elif isinstance(u, End):
            if not stack:
                return bad + [f"{k.name}: an end without a range"]
            var, before = stack.pop()
            if state != before:
                bad.append(f"{k.name}: range {var} leaves its circular buffers unbalanced ({before} -> {state})")
                state = before
        elif isinstance(u, (CbReserve, CbPush, CbWait, CbPop)):
            name = u.cb.name
            if name not in state:
                bad.append(f"{k.name}: {_fmt(u)} on a buffer the kernel does not declare")
                continue
            filled, reserved = state[name]
            if isinstance(u, CbReserve):
                if reserved or filled >= npages[name]:
                    bad.append(f"{k.name}: {_fmt(u)} on a full ring (would hang)")
                reserved = True
            elif isinstance(u, CbPush):
                if not reserved:
                    bad.append(f"{k.name}: {_fmt(u)} without a reserved page")
                reserved, filled = False, filled + 1
            elif isinstance(u, CbWait):
                if filled < 1:
                    bad.append(f"{k.name}: {_fmt(u)} on an empty ring (would hang)")
            elif filled < 1:
                bad.append(f"{k.name}: {_fmt(u)} on an empty ring")
            else:
                filled -= 1
            state[name] = (filled, reserved)
    if stack:
        bad.append(f"{k.name}: range {stack[-1][0]} is not closed")
    left = {n: s for n, s in state.items() if s != (0, False)}
    if left:
        bad.append(f"{k.name}: a work item leaves circular buffers in use: {left}")
    return bad


_PROTOCOL_OPS = frozenset((Range, End, CbReserve, CbPush, CbWait, CbPop))  # what check_cb_protocol follows


def _mentions(text: str, name: str) -> bool:
    import re
    return re.search(rf"\b{name}\b", text) is not None
