"""The dataflow compiler: StableHLO (parsed) -> one C program for the device.

Passes, each a plain function over a plain IR, in this order:
  inline_calls -> legalize -> decompose -> simplify -> fuse (plan) -> schedule
  -> lower (each kernel to the loop IR; cost.py computes its figures from it) -> render (C)
  -> place (SRAM, levels 1-2) -> plan_memory
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..hlo_parser import ir, parse_module
from .codegen import PRELUDE
from .loopir import Alu, LoopKernel
from .kernel_key import binds_keyed, kernel_key, rebind
from .kernel_store import KernelStore
from .lower import lower_kernel
from .render import anonymous, named, render

from .decompose import decompose
from .fuse import Kernel, plan
from .graph import Graph, Node, np_dtype
from .inline import inline_calls
from .legalize import legalize
from .long_sort import split_long_sorts
from .memory import Storage, plan_memory
from .options import CompilerOptions
from .placement import place
from .program import DEFAULT_SRAM_PER_CORE, CompiledProgram, KernelInfo, TensorSpec, part
from .schedule import schedule
from .simplify import simplify
from ..errors import UnsupportedError
from ..hlo_parser.verify import verify

KERNEL_ATTR = '__attribute__((visibility("hidden"))) '  # kernels link across parts
DEFAULT_NCORES = 64  # the n150's 8x8 grid
# Lowering a kernel that a structural key (kernel_key.py) served anyway, and refusing a difference:
# the test suite turns this on (tests/conftest.py), so every repeated kernel of every test program
# checks that the key holds all that lowering reads.
CHECK_KERNEL_KEYS = False

__all__ = ["compile_module", "compile_text", "compile_graph", "assemble", "CompiledProgram", "KernelInfo", "TensorSpec",
           "optimize"]


def optimize(module: ir.Module, dump: Callable[[str, Any], None] | None = None) -> Graph:
    """The graph-level passes: what fusion and codegen see. The module is verified first, so
    no pass (and no generated kernel) ever sees a program that breaks a StableHLO rule.
    `dump(stage, ir)` (for `stages.ir_text`) sees the IR after each pass."""
    verify(module)
    see = dump or (lambda stage, x: None)
    fn = inline_calls(module)
    see("inlined", fn)
    return optimize_function(fn, see)


def optimize_function(fn: ir.Function, see: Callable[[str, Any], None] = lambda stage, x: None) -> Graph:
    """The graph-level passes over a call-free function (verified as part of its module)."""
    graph = legalize(fn)
    see("legalized", graph)
    graph = simplify(graph)
    see("simplified", graph)
    graph = decompose(graph)
    see("decomposed", graph)
    graph = simplify(graph)
    see("optimized", graph)
    return graph


def check_reads(k: Kernel, lk: LoopKernel) -> None:
    """The lowered kernel binds only what schedule and memory planning were told it reads (the
    plan's `Kernel.reads`) and what it writes. Memory planning gives a buffer's space away after
    its last planned reader, so any other operand would be read from reused memory: a wrong
    answer, not an error. A disagreement is a compiler bug; refuse it here."""
    planned = {r.id for r in k.reads} | {o.id for o in k.outputs}
    extra = [o.node for o in lk.operands if o.node.id not in planned]
    if extra:
        raise AssertionError(f"{lk.name} binds {[(n.op, n.id) for n in extra]}, which fusion does not "
                             f"list among its reads {sorted(planned)}")


HOT_TILES = 4096  # 4M element-ops or 16 MiB moved: about 0.5 ms of host time at -O2


def _hot(k: LoopKernel, runs: int = 1) -> bool:
    """Whether a kernel does enough work (tile-wide vector ops plus tiles of operand bytes it
    moves, times its launches per call: `runs`, a loop body's known trip count) that -O2's
    faster loops beat the compile time they cost. The matrix engine's own work is in the
    runtime, already optimized, so matrix tiles do not count."""
    return runs * _work(k) >= HOT_TILES


COLD_TILES = 1024  # 1M element-ops or 4 MiB moved: about 0.1 ms of host time


def _cold(k: LoopKernel) -> bool:
    """Whether a kernel does so little work (as _hot weighs it) that the passes toolchain.LEVELS'
    "cold" drops could not repay their compile time."""
    return _work(k) < COLD_TILES


def _work(k: LoopKernel) -> int:
    """A launch's work in tiles: its tile-wide vector ops plus the tiles of operand bytes it moves."""
    return k.vector_ops + sum(o.node.nbytes for o in k.operands) // 4096


def compile_text(text: str, filename: str = "<module>", sram_per_core: int = DEFAULT_SRAM_PER_CORE,
                 options: CompilerOptions = CompilerOptions(), ncores: int = DEFAULT_NCORES) -> CompiledProgram:
    return compile_module(parse_module(text, filename), sram_per_core, options, ncores)


def compile_module(module: ir.Module, sram_per_core: int = DEFAULT_SRAM_PER_CORE,
                   options: CompilerOptions = CompilerOptions(), ncores: int = DEFAULT_NCORES,
                   store: KernelStore | None = None) -> CompiledProgram:
    """`sram_per_core`, `ncores`: the target device's SRAM per core (every kernel's buffers are
    sized to it) and cores. The module is verified before any pass runs (see optimize). `options`
    (compiler/options.py): optimization_level 1 and 2 keep intermediates in SRAM (placement.py;
    with control flow, within each straight-line piece). `store`: lowered kernels on disk, by
    structural key (kernel_store.py; the client passes its cache directory's)."""
    verify(module)
    fn = inline_calls(module)
    from . import control  # control flow: the program becomes several graphs and a control stream
    asked, named = options.bfp8_args(len(fn.args))
    if control.has_control(fn):
        return control.compile_function(fn, sram_per_core, ncores, options.optimization_level, asked, named, store)
    seg = compile_graph(fn, sram_per_core, ncores=ncores, level=options.optimization_level, bfp8_args=asked,
                        bfp8_named=named, store=store)
    nin, nout, nconst = len(seg.params), len(seg.outputs), len(seg.consts)

    def binding(node: Node) -> tuple[int, int]:
        s = seg.storage(node)
        base = {"in": 0, "out": nin, "const": nin + nout, "arena": nin + nout + nconst}[s.kind]
        return base + s.index, s.offset

    binding_bytes = [seg.packed.get(n.id, n.nbytes) for n in seg.params] + [n.nbytes for n in seg.outputs] + \
                    [n.nbytes for n in seg.consts] + [seg.arena]
    source, kernels = assemble([(seg.codes, binding)], binding_bytes, l1=seg.l1, resident=seg.resident,
                               packed=seg.packed)
    return CompiledProgram(
        source=source,
        # from the signature: a complex value is a real [..., 2] tensor inside (complex_split.py)
        inputs=[TensorSpec(tuple(a.type.shape), np_dtype(a.type.element)) for a in fn.args],
        outputs=[TensorSpec(tuple(t.shape), np_dtype(t.element)) for t in fn.result_types],
        constants=[np.ascontiguousarray(c.attrs["value"]) for c in seg.consts],
        arena_bytes=seg.arena,
        kernels=kernels,
        binding_bytes=binding_bytes,
        live_peak_bytes=seg.live,
        input_formats=tuple("bfp8" if n.id in seg.packed else "" for n in seg.params),
    )


@dataclass
class Segment:
    """One graph compiled to kernels: its params, outputs and constants (in binding order), where
    each stored node lives (memory.Storage) and its arena bytes; the kernels' IR and C in launch
    order."""
    params: list[Node]
    outputs: list[Node]
    consts: list[Node]
    where: dict[int, Storage]
    arena: int
    live: int
    codes: list[tuple[LoopKernel, str]]
    l1: frozenset[int] = frozenset()  # nodes placed in SRAM (placement.py)
    resident: dict[str, int] | None = None  # kernel name -> SRAM per core of placed tensors live at it
    packed: dict[int, int] = field(default_factory=dict)  # params stored as bfp8 -> their packed bytes
    # the fusion plan's kernel of each of `codes` and the stored node ids (for alias.py)
    fused: list[Kernel] = field(default_factory=list)
    materialized: set[int] = field(default_factory=set)

    def storage(self, node: Node) -> Storage:
        # an empty tensor's producer launches nothing, so it has no place: any binding will do
        return self.where[node.id] if node.size else self.where.get(node.id, Storage("arena", 0, 0))


def _check_served(k: Kernel, lk: LoopKernel, code: str, name: str, mat: set[int], sram_per_core: int,
                  ncores: int, bfp8: frozenset[int]) -> None:
    """Raise unless `lk`/`code`, served by `k`'s key, equal `k` lowered afresh (CHECK_KERNEL_KEYS)."""
    fresh = lower_kernel(k, name, mat, sram_per_core, ncores, bfp8)
    fresh_code = render(fresh) if fresh.work_items > 0 else ""
    same = (fresh_code == code and fresh.work_items == lk.work_items and fresh.cbs == lk.cbs
            and fresh.ops == lk.ops and fresh.kind == lk.kind and fresh.cost == lk.cost and fresh.body == lk.body
            and [(o.index, o.node.id if o.node is not None else None) for o in fresh.operands]
            == [(o.index, o.node.id if o.node is not None else None) for o in lk.operands])
    if not same:
        raise AssertionError(f"kernel {name}: its structural key (kernel_key.py) served a lowering that differs "
                             "from lowering it afresh: the key misses something lowering reads")


def compile_graph(fn: ir.Function, sram_per_core: int, prefix: str = "k", ncores: int = DEFAULT_NCORES,
                  level: int = 0, bfp8_args: frozenset[int] = frozenset(), bfp8_named: bool = False,
                  store: KernelStore | None = None) -> Segment:
    """A call-free function (no control flow) through every pass down to C; kernels are named
    `{prefix}{i}_{op}`. `level`: the optimization level (SRAM placement from 1). `bfp8_args`: the
    argument positions to store as bfp8 where they are weights (lower.bfp8_weight); when
    `bfp8_named`, one that is not is refused. `store`: lowered kernels on disk (kernel_store.py)."""
    graph = split_long_sorts(optimize_function(fn), sram_per_core)  # rows past one core's SRAM
    p = plan(graph)
    order = schedule(p)
    params, outputs = p.graph.params, p.graph.outputs
    consts = p.consts(order)
    packed = _bfp8_weights(fn, params, order, p.materialized, bfp8_args, bfp8_named)
    codes: list[tuple[LoopKernel, str]] = []  # (IR, C)
    fused: list[Kernel] = []  # (codes' fusion kernels)
    lowered = []
    bfp8 = frozenset(packed)
    # Repeated layers repeat kernels: one whose structural key (kernel_key.py) equals an earlier
    # one's takes that one's loop IR, C and cost figures (the cost walk is about 1 ms a kernel).
    done: dict[tuple, tuple[LoopKernel, list[Node], str]] = {}
    attrs_of: dict[int, tuple] = {}
    figures: dict[tuple, Any] = {}  # a kernel's code and launch -> its cost figures
    for i, k in enumerate(order):
        name = f"{prefix}{i}_{k.root.op}"
        keyed = kernel_key(k, p.materialized, sram_per_core, ncores, bfp8, attrs_of)
        hit = done.get(keyed[0]) if keyed else None
        stored = store.load(keyed[0], keyed[1], name) if hit is None and keyed and store else None
        if hit is not None:
            first, then, code = hit
            lk = rebind(first, then, keyed[1], name)
            code = named(anonymous(code, first.name), name)
        elif stored is not None:
            lk, code = stored
            done[keyed[0]] = (lk, keyed[1], code)
        if hit is not None or stored is not None:
            if CHECK_KERNEL_KEYS:
                _check_served(k, lk, code, name, p.materialized, sram_per_core, ncores, bfp8)
        else:
            lk = lower_kernel(k, name, p.materialized, sram_per_core, ncores, bfp8)
            code = render(lk) if lk.work_items > 0 else ""
            if code:
                # kernels of different keys may still do the same (the C, work items, buffers
                # and op costs equal): then the cost walk runs once for them too
                same = (anonymous(code, name), lk.work_items,
                        tuple((c.esize, c.page_elems, c.npages, c.offset) for c in lk.cbs),
                        tuple([u.cost for u in lk.body if type(u) is Alu]))  # (Alu has no subclasses)
                if same in figures:
                    lk.cost = figures[same]  # (LoopKernel.cost is a cached property: this is its value)
                else:
                    figures[same] = lk.cost
            if keyed and binds_keyed(lk, keyed[1]):
                done[keyed[0]] = (lk, keyed[1], code)
                if store:
                    store.save(keyed[0], lk, keyed[1], code)
        check_reads(k, lk)
        lowered.append(lk)
        if lk.work_items > 0:
            codes.append((lk, code))
            fused.append(k)
    # placement needs each kernel's own SRAM, so it runs after lowering (a kernel's code never
    # depends on where its operands live: that is in the launch descriptor)
    pl = place(order, p.materialized, params, outputs, consts, [lk.sram_bytes for lk in lowered],
               sram_per_core, ncores, level)
    where, arena, live = plan_memory(order, p.materialized, params, outputs, consts, pl.l1)
    resident = {lk.name: pl.resident[i] for i, lk in enumerate(lowered) if pl.resident.get(i)}
    return Segment(params, outputs, consts, where, arena, live, codes, pl.l1, resident, packed, fused,
                   p.materialized)


def _bfp8_weights(fn: ir.Function, params: list[Node], order: list[Kernel], mat: set[int], asked: frozenset[int],
                  named: bool) -> dict[int, int]:
    """{param node id: packed bytes} of the asked arguments that every kernel reading them reads
    as a bfp8 weight (lower.bfp8_weight); a named argument that is not one is refused."""
    from .lower import bfp8_weight
    from ..bfp8 import packed_nbytes
    out: dict[int, int] = {}
    for i in sorted(asked):
        if i >= len(params):
            raise UnsupportedError(f"compiler option weight_format names argument {i}; the function takes "
                                   f"{len(params)}", "func.func", fn.loc)
        n = params[i]
        readers = [k for k in order if any(r is n for r in k.reads)]
        if n.size and readers and all(bfp8_weight(k, mat, n) for k in readers):
            out[n.id] = packed_nbytes(n.shape)
        elif named:
            raise bfp8_refusal(i, f"{n.dtype}{list(n.shape)}", fn.args[i].loc or fn.loc)
    return out


def bfp8_refusal(i: int, what: str, loc: object) -> UnsupportedError:
    """The error for argument i, named as bfp8 in compiler_options, that is not a weight."""
    return UnsupportedError(f"argument {i} ({what}) cannot be stored as bfp8: only an argument read solely as the "
                            "right-hand [K, N] operand of f32 or bf16 matmuls (x @ w) can", "func.func", loc)


Binding = Callable[[Node], tuple[int, int]]  # a stored node -> (binding, byte offset)


def assemble(segments: list[tuple[list[tuple[LoopKernel, str]], Binding]], binding_bytes: list[int],
             steps: list[str] | None = None, l1: frozenset[int] = frozenset(),
             resident: dict[str, int] | None = None, packed: dict[int, int] | None = None,
             runs: dict[str, int] | None = None) -> tuple[str, list[KernelInfo]]:
    """The program's C source: every segment's kernels as launches, in order, their operands placed
    by the segment's binding function, and the control stream `steps` (tt_ctl initializers whose
    LAUNCH arguments index those launches) when there is one. Operands of the nodes in `l1` are
    flagged TT_L1 (placed in SRAM; node ids are unique across segments) and a launch declares the SRAM its kernel uses
    plus `resident[name]`, the placed tensors' shards live while it runs. `runs[name]`: a
    kernel's launches per call where the control stream runs it more than once."""
    resident = resident or {}
    # Pieces between part markers compile on their own (the toolchain may build them in
    # parallel): kernels have external, hidden linkage and the descriptor declares them.
    # A kernel's code holds shapes, strides and math, never where its operands live (that is in
    # the descriptor), so repeated layers share functions: each distinct body is emitted once,
    # at -O2 if any launch of it has much work (see _hot), "cold" if every launch has little.
    codes = [(c, body, binding) for seg, binding in segments for c, body in seg]
    src = [PRELUDE, ""]
    launches = []
    desc = []
    fn_of: dict[str, str] = {}
    fns = [fn_of.setdefault(anonymous(body, c.name), c.name) for c, body, _ in codes]
    hot: dict[str, bool] = {}
    # cold only in a straight-line program: a loop body's kernel runs once per iteration
    cold: dict[str, bool] = {}
    for (c, _, _), fn in zip(codes, fns):
        hot[fn] = hot.get(fn, False) or _hot(c, (runs or {}).get(c.name, 1))
        cold[fn] = cold.get(fn, not steps) and _cold(c)
    for (c, body, binding), fn in zip(codes, fns):
        if fn == c.name:
            level = "O2" if hot[fn] else "cold" if cold[fn] else "O1"
            src.append(part(level) + KERNEL_ATTR + body.removeprefix("static "))
            desc.append(f"{KERNEL_ATTR}void {c.name}(const tt_core *, void *const *, int64_t, int64_t);")
        ops = []
        for o in c.operands:
            b, off = binding(o.node)
            access = (2 if o.writes else 1) | (4 if o.node.id in l1 else 0)
            ops.append(f"{{{b}u, {access}u, {off}ull, {(packed or {}).get(o.node.id, o.node.nbytes)}ull}}")
        desc.append(f"static const tt_operand {c.name}_ops[] = {{{', '.join(ops)}}};")
        launches.append(f'  {{"{c.name}", {fn}, {c.work_items}, {len(ops)}u, {c.name}_ops, '
                        f'{c.vector_ops}ull, {c.matrix_tiles}ull, {c.sram_bytes + resident.get(c.name, 0)}ull}}')
    nb = len(binding_bytes)
    src.append(part("O1"))
    src.extend(desc)
    src.append(f"static const uint64_t binding_bytes[{nb}] = {{{', '.join(f'{b}ull' for b in binding_bytes)}}};")
    if launches:
        src.append("static const tt_launch launches[] = {\n" + ",\n".join(launches) + "\n};")
    if steps:
        src.append("static const tt_ctl steps[] = {\n" + ",\n".join(f"  {t}" for t in steps) + "\n};")
    src.append("static const tt_program_desc program = {TT_ABI_VERSION, %du, binding_bytes, %du, %s, %du, %s};"
               % (nb, len(launches), "launches" if launches else "NULL", len(steps or ()),
                  "steps" if steps else "NULL"))
    src.append("const tt_program_desc *tt_program_entry(void) { return &program; }\n")
    kernels = [KernelInfo(c.name, c.kind, tuple(c.ops), c.work_items, c.vector_ops, c.matrix_tiles,
                          c.sram_bytes + resident.get(c.name, 0), c.dma_bytes, c.format) for c, _, _ in codes]
    return "\n".join(src), kernels
