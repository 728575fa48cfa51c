"""A small while loop as ONE kernel: its condition and body run as a loop inside the kernel.

A loop whose iterations are tiny (a fori_loop over a handful of scalars) costs, as pieces of a
control stream, a launch per piece, a branch, a copy per carried value and a jump per
iteration: far more than the work. When every value of the condition and the body is
elementwise work (the op table's rows), views of it (broadcast, reshape, transpose, slice,
reverse), iotas or constants, and every value is small, the loop compiles to one kernel that
runs on one core:

    DMA the carried state and the loop-invariant values DRAM -> SRAM
    up to CHUNK times:  evaluate the condition; if false: flag = 0, stop
                        evaluate the body into fresh SRAM (double buffer), then copy it over
                        the state
    DMA the state SRAM -> DRAM; write the flag (1: the chunk ran out, the loop goes on)

and the control stream is `top: LAUNCH loop; BRANCH flag -> top`. The trip count is still the
device's: the kernel decides when to stop from the values it computes. A chunk bounds the work
of one launch, so the step budget and cancel still stop a loop that never ends (the launch step
weighs CHUNK steps, see tt_ctl), and the cores count every iteration's vector instructions.

Indexing by scalars is in too: a gather that is a dynamic slice (one start per operand dim,
clamped) and a scatter of one window (dynamic_update_slice, or `x.at[i].set/add` with its
out-of-bounds starts skipped): each gets an SRAM array of its own, as do the operand, start
vector and update it reads. jax's LU pivots-to-permutation loop (`jnp.linalg.solve`, `lu`,
`det`) is such a loop: 11 launches an iteration on the general path.

Anything else (dots, reductions, other gathers and scatters, nested control flow, big values)
keeps the general path (control.py); this module returns None for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UnsupportedError
from ..hlo_parser import ir
from . import loopir as L
from .access import Access
from .cost import Figures
from .codegen import Emitter, Leaf, collect_leaves, load_expr, store_expr
from .dtypes import CTYPE
from .fuse import access_of, memoryless
from .lower import CHUNK
from .graph import ELEMENTWISE, VIEWS, Graph, Node, itemsize, toposort

MAX_ELEMS = CHUNK       # the most elements of any value in a fused loop: what one core computes anyway
CHUNK_WORK = 1 << 16    # element-ops one launch may do (cancel and the step budget act between launches)
MAX_CHUNK = 1024        # iterations one launch may run
LEAVES = {"param", "const", "iota"}


@dataclass
class FusedLoopKernel(L.LoopKernel):
    """A loop kernel whose C is generated here rather than rendered from loop IR: it has no IR
    for cost.py to walk, so it states its figures (vector ops per iteration)."""
    source: str = ""
    chunk: int = 1
    figures: Figures = Figures()

    @property
    def cost(self) -> Figures:
        return self.figures

    def format(self) -> str:
        head = (f"kernel {self.name}: a while loop on one core, up to {self.chunk} iterations per launch, "
                f"SRAM {self.sram_bytes} B/core, DMA {self.dma_bytes} B, {self.vector_ops} vector ops per iteration")
        return head + "\n" + self.source


INDEXED = ("gather", "scatter")


def _one_window(n: Node) -> bool:
    """Whether gather/scatter n reads or writes one window of its operand at a start vector
    (a dynamic slice, a dynamic_update_slice, `x.at[i].set`): what _indexed emits."""
    a, x, idx = n.attrs, n.inputs[0], n.inputs[1]
    rank = len(x.shape)
    if a.get("batching") or tuple(a.get("start_map", ())) != tuple(range(rank)) or a.get("ivd") != 0 \
            or idx.shape != (rank,) or not idx.dtype.startswith(("i", "ui")) or idx.dtype in ("i1", "ui64"):
        return False
    sizes, window = tuple(a["sizes"]), tuple(a["window"])
    if len(sizes) != rank or any(sizes[d] != 1 for d in range(rank) if d not in window) \
            or any(not 0 <= sz <= dim for sz, dim in zip(sizes, x.shape)):
        return False
    wshape = tuple(sizes[d] for d in window)
    if n.op == "gather":
        return a.get("mode") == "clamp" and n.shape == wshape
    return a.get("mode") in ("clamp", "skip") and n.inputs[2].shape == wshape and _combine(n) is not None


def _combine(n: Node) -> str | None:
    """A scatter's region as a C operator: "" overwrites, "+" adds; None for any other region."""
    body = n.attrs.get("body")
    if body is None or len(body.params) != 2 or len(body.outputs) != 1:
        return None
    out, (cur, new) = body.outputs[0], body.params
    if out is new:
        return ""
    if out.op == "add" and {i.id for i in out.inputs} == {cur.id, new.id} and n.dtype != "i1":
        return "+"
    return None


def _eligible(g: Graph) -> bool:
    for n in g.nodes():
        if n.op in INDEXED:
            if not _one_window(n):
                return False
        elif n.op == "concat":  # a start vector of several scalars
            if len(n.shape) != 1:
                return False
        elif n.op not in LEAVES and n.op not in ELEMENTWISE and (n.op not in VIEWS or n.op == "windows"):
            return False
        if n.size > MAX_ELEMS:
            return False
    return True


def _stored(g: Graph) -> list[Node]:
    """Nodes with an SRAM array of their own: computed nodes a view reads, gathers and scatters,
    and what those read that is not an array already (the rest of the elementwise work is
    recomputed in the loop nest of each array or result that reads it)."""
    out: dict[int, Node] = {}
    for n in g.nodes():
        if n.op in VIEWS:
            x = n.inputs[0]
            while x.op in VIEWS:
                x = x.inputs[0]
            if x.op in ELEMENTWISE or x.op in INDEXED or x.op == "concat":
                out.setdefault(x.id, x)
        if n.op in INDEXED or n.op == "concat":
            out.setdefault(n.id, n)
            for i in n.inputs:
                if not (i.op == "param" or (i.op == "const" and i.shape)):
                    out.setdefault(i.id, i)
    return list(out.values())


def _indexed(n: Node, dst: str, arr: Callable[[Node], str], lines: list[str], ind: str) -> None:
    """dst = gather/scatter n (a _one_window one), its operand, starts and update read from their
    row-major SRAM arrays (`arr`). Starts are clamped into [0, dim - size], as dynamic_slice's
    are; a "skip" scatter whose window would leave the operand writes nothing, as XLA's."""
    x, idx = n.inputs[0], n.inputs[1]
    a, rank = n.attrs, len(x.shape)
    sizes, window = tuple(a["sizes"]), tuple(a["window"])
    xst = _row_major(x.shape)
    lines.append(f"{ind}{{")
    s = [f"s{d}_" for d in range(rank)]
    skip = n.op == "scatter" and a["mode"] == "skip"
    for d in range(rank):
        hi = x.shape[d] - sizes[d]
        lines.append(f"{ind}  int64_t {s[d]} = (int64_t){arr(idx)}[{d}];")
        if not skip:
            lines.append(f"{ind}  {s[d]} = {s[d]} < 0 ? 0 : {s[d]} > {hi} ? {hi} : {s[d]};")
    wshape = tuple(sizes[d] for d in window)
    it = [f"j{k}_" for k in range(len(window))]
    at_x = " + ".join([f"({s[d]} + {it[window.index(d)]}) * {xst[d]}" if d in window else f"{s[d]} * {xst[d]}"
                       for d in range(rank)]) or "0"
    wst = _row_major(wshape)
    at_w = " + ".join(f"{j} * {st}" for j, st in zip(it, wst)) or "0"
    if n.op == "scatter":
        if x.size:
            lines.append(f"{ind}  memcpy({dst}, {arr(x)}, {x.nbytes}ull);")
        if skip:
            ok = " && ".join(f"{s[d]} >= 0 && {s[d]} <= {x.shape[d] - sizes[d]}" for d in range(rank)) or "1"
            lines.append(f"{ind}  if ({ok})")
    body = ind + "  " + "  " * len(window)
    for k, w in enumerate(wshape):
        lines.append(f"{ind}  {'  ' * k}for (int64_t {it[k]} = 0; {it[k]} < {w}; ++{it[k]})")
    if n.op == "gather":
        lines.append(f"{body}  {dst}[{at_w}] = {arr(x)}[{at_x}];")
    else:
        op, u = _combine(n), f"{arr(n.inputs[2])}[{at_w}]"
        if op == "+":  # in the value type: bf16 and float8 are stored as their bits
            add = f"({load_expr(n.dtype, f'{dst}[{at_x}]')} + {load_expr(n.dtype, u)})"
            lines.append(f"{body}  {dst}[{at_x}] = {store_expr(n.dtype, add)};")
        else:
            lines.append(f"{body}  {dst}[{at_x}] = {u};")
    lines.append(f"{ind}}}")


class _Gen:
    """The kernel's C: SRAM arrays p<i> (carried state, invariants, constants, stored
    intermediates, next values) and one loop nest per computed array."""

    def __init__(self) -> None:
        self.sram = 0
        self.decls: list[str] = []
        self.name_of: dict[int, int] = {}  # node id -> array number
        self.narrays = 0

    def array(self, dt: str, size: int, node: Node | None = None) -> str:
        i = self.narrays
        self.narrays += 1
        ct = CTYPE[dt]
        self.decls.append(f"  {ct} *restrict p{i} = ({ct} *)(sram + {self.sram});")
        self.sram += (max(size, 1) * itemsize(dt) + L.SRAM_ALIGN - 1) // L.SRAM_ALIGN * L.SRAM_ALIGN
        if node is not None:
            self.name_of[node.id] = i
        return f"p{i}"

    def nest(self, root: Node, dst: str, stored: set[int], lines: list[str], ind: str) -> int:
        """dst[e] = root's element e, for every e (row-major); returns the vector instructions
        per element."""
        computed = root.op not in VIEWS and root.op not in LEAVES
        leaves = collect_leaves(root, computed, stored)
        rank = len(root.shape)
        idx = [f"i{d}" for d in range(rank)]
        for d, n in enumerate(root.shape):
            lines.append(f"{ind}{'  ' * d}for (int64_t i{d} = 0; i{d} < {n}; ++i{d})")
        inner = ind + "  " * rank
        lines.append(f"{inner}{{")

        def at(a: Access) -> str:
            terms = [str(a.offset)] + [f"{i} * {s}" for i, s in zip(idx, a.strides) if s]
            return " + ".join(terms)
        index_of = {n.id: at(a) for n, a in leaves}
        leaf_of = {n.id: Leaf(a, n.dtype, -1 if memoryless(a.src) else self.name_of[a.src.id]) for n, a in leaves}
        body: list[str] = []
        em = Emitter(stored, index_of, leaf_of, body, inner + "  ")
        v = em.value(root)
        flat = " + ".join([f"i{d} * {s}" for d, s in enumerate(_row_major(root.shape)) if root.shape[d] > 1]) or "0"
        lines += body
        lines.append(f"{inner}  {dst}[{flat}] = {store_expr(root.dtype, v)};")
        lines.append(f"{inner}}}")
        return em.ops


def _row_major(shape: tuple[int, ...]) -> list[int]:
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= max(d, 1)
    return st[::-1]


def _tiles(n: Node) -> int:
    return -(-n.size // 1024)


def fuse_while(cond_fn: ir.Function, body_fn: ir.Function, ncarried: int, sram_budget: int, prefix: str):
    """The loop `while cond(x): x = body(x)` as one kernel, or None when it does not qualify.
    Both functions take (carried..., invariants...), the same values in the same order; cond
    returns the predicate, body the next carried values. Returns (Segment, changed): the
    segment's params are the functions' arguments, its outputs the flag (i1: the loop goes on)
    and then the carried values the body changes, `changed` (their indices)."""
    from . import Segment, optimize_function
    from .memory import Storage
    try:
        gc, gb = optimize_function(cond_fn), optimize_function(body_fn)
    except UnsupportedError:
        return None  # the general path reports it, naming the op
    if not (_eligible(gc) and _eligible(gb)) or len(gc.params) != len(gb.params):
        return None
    for g in (gc, gb):
        stored = {p.id for p in g.params} | {n.id for n in g.nodes() if n.op == "const" and n.shape}
        stored |= {n.id for n in _stored(g)}
        for n in g.nodes():
            if n.op in VIEWS and access_of(n, stored) is None:
                return None  # a reshape no index map expresses
    changed = [i for i, o in enumerate(gb.outputs[:ncarried]) if o is not gb.params[i]]

    gen = _Gen()
    params = gb.params
    for p, q in zip(params, gc.params):
        gen.array(p.dtype, p.size, p)
        gen.name_of[q.id] = gen.name_of[p.id]
    consts: list[Node] = []
    for g in (gc, gb):
        for n in g.nodes():
            if n.op == "const" and n.shape and n.id not in gen.name_of:
                consts.append(n)
                gen.array(n.dtype, n.size, n)
    loads = [(f"p{gen.name_of[n.id]}", k, n.nbytes) for k, n in enumerate(params + consts)]
    flag = gen.array("i1", 1)
    nxt = {i: gen.array(gb.outputs[i].dtype, gb.outputs[i].size) for i in changed}

    def block(g: Graph, roots: list[tuple[Node, str]], ind: str) -> tuple[list[str], int, int]:
        """(C lines, vector instructions, element-ops) of one evaluation of g's roots."""
        stored = {p.id for p in g.params} | {c.id for c in consts}
        lines: list[str] = []
        vops = work = 0
        mids = _stored(g)
        for m in mids:
            if m.id not in gen.name_of:
                gen.array(m.dtype, m.size, m)
        stored |= {m.id for m in mids}
        mid_ids = {x.id for x in mids}
        for n, dst in [(m, f"p{gen.name_of[m.id]}") for m in toposort(mids) if m.id in mid_ids] + roots:
            # a gather, scatter or concat is always an array of its own: as a root, it is copied
            own = n.id in gen.name_of and dst == f"p{gen.name_of[n.id]}"
            if n.op in INDEXED and own:
                _indexed(n, dst, lambda v: f"p{gen.name_of[v.id]}", lines, ind)
                ops = 1  # a copy of the operand (scatter) and the window's moves, an instruction a tile
                work += 2 * max(n.size, 1) if n.op == "scatter" else max(n.size, 1)
            elif n.op == "concat" and own:  # its pieces, arrays of their own, one after another
                at = 0
                for q in n.inputs:
                    if q.size:
                        lines.append(f"{ind}memcpy({dst} + {at}, p{gen.name_of[q.id]}, {q.nbytes}ull);")
                    at += q.size
                ops = 1
                work += max(n.size, 1)
            elif n.id in mid_ids and not own:
                lines.append(f"{ind}memcpy({dst}, p{gen.name_of[n.id]}, {n.nbytes}ull);")
                ops = 1
                work += max(n.size, 1)
            else:
                # (a view with an array of its own is read through to its input here)
                ops = gen.nest(n, dst, stored - {n.id} if own else stored, lines, ind)
                work += max(ops, 1) * max(n.size, 1)
            vops += ops * _tiles(n)
        return lines, vops, work

    cond_lines, cond_vops, cond_work = block(gc, [(gc.outputs[0], flag)], "    ")
    body_lines, body_vops, body_work = block(gb, [(gb.outputs[i], nxt[i]) for i in changed], "    ")
    chunk = max(1, min(MAX_CHUNK, CHUNK_WORK // max(1, cond_work + body_work)))
    if gen.sram > sram_budget:
        return None

    outs = [Node("loop_flag", [], (), "i1")] + [Node("loop_state", [], gb.outputs[i].shape, gb.outputs[i].dtype)
                                                for i in changed]
    name = f"{prefix}0_while"
    nin = len(params) + len(consts)
    src = [f"void {name}(const tt_core *core_, void *const *ops, int64_t begin, int64_t end) {{",
           "  if (begin >= end) return;",
           "  uint64_t counts_[TT_CORE_NCOUNTERS] = {0};",
           "  tt_core local_ = *core_;",
           "  local_.counters = counts_;",
           "  const tt_core *core = &local_;",
           "  char *const sram = (char *)core->sram;"] + gen.decls
    src += [f"  tt_dma_read(core, {p}, ops[{k}], {b}ull);" for p, k, b in loads if b]
    src += ["  int64_t n_ = 0;",
            "  int go_ = 1;",
            f"  for (; n_ < {chunk}; ++n_) {{"] + cond_lines + \
           [f"    if (!{flag}[0]) {{", "      go_ = 0;", "      break;", "    }"] + body_lines
    src += [f"    memcpy(p{gen.name_of[params[i].id]}, {nxt[i]}, {params[i].nbytes});" for i in changed
            if params[i].nbytes]
    src += ["  }",
            f"  {flag}[0] = (uint8_t)go_;",
            f"  tt_dma_write(core, ops[{nin}], {flag}, 1);"]
    src += [f"  tt_dma_write(core, ops[{nin + 1 + j}], p{gen.name_of[params[i].id]}, {params[i].nbytes}ull);"
            for j, i in enumerate(changed) if params[i].nbytes]
    src += [f"  counts_[TT_CORE_VECTOR_OPS] += (uint64_t)n_ * {body_vops}u + (uint64_t)(n_ + !go_) * {cond_vops}u;",
            "  tt_core_add_counters(core_, counts_);",
            "}"]
    source = "\n".join(src)

    where: dict[int, Storage] = {}
    operands: list[L.Operand] = []
    for k, n in enumerate(params):
        where[n.id] = Storage("in", k, 0)
        operands.append(L.Operand(k, CTYPE[n.dtype], False, n))
    for k, n in enumerate(consts):
        where[n.id] = Storage("const", k, 0)
        operands.append(L.Operand(len(params) + k, CTYPE[n.dtype], False, n))
    for j, n in enumerate(outs):
        where[n.id] = Storage("out", j, 0)
        operands.append(L.Operand(nin + j, CTYPE[n.dtype], True, n))
    dma = sum(b for _, _, b in loads) + sum(n.nbytes for n in outs)
    lk = FusedLoopKernel(name, operands, [], [], 1, ["while"], "loop", source=source, chunk=chunk,
                         figures=Figures(cond_vops + body_vops, dma, 0, gen.sram))
    return Segment(list(params), outs, consts, where, 0, 0, [(lk, source)]), changed
