"""Control flow: stablehlo.while, if and case become the runtime's control stream.

A function with control flow is cut at its control ops into straight-line pieces; each piece is an
ordinary graph, compiled like an entry function (`compile_graph`: fused, scheduled, memory
planned, lowered). Values that cross a cut (loop-carried values, branch results, anything a
later piece reads) live in *slots* of a state area at the start of the arena; every piece's own
intermediates share the rest of the arena, since pieces run one at a time. The stream then says
what runs when:

    while:  COPY init -> S;  top: [cond piece] -> P;  BRANCH_IF_ZERO P -> exit;
            [body piece] -> T;  COPY T -> S;  JUMP top;  exit:
    if:     BRANCH_IF_ZERO pred -> else;  [true piece] -> R;  JUMP end;  else: [false piece] -> R
    case:   [idx == k pieces] -> P_k;  BRANCH P_k -> branch k ...;  default: the last branch

The body writes its results to fresh slots T and they are copied to S after it (double
buffering: a body may read any carried value after writing another), unless nothing reads the old
value after the result's writer (`_in_place`): then it is written over it; a result that is its own
carried value unchanged stays in place with no copy. Trip counts and conditions are device
values: nothing returns to the host until the whole function is done.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .graph import Node, np_dtype
from .memory import ALIGN
from .program import CompiledProgram, TensorSpec
from ..bfp8 import packed_nbytes

CONTROL = frozenset({"stablehlo.while", "stablehlo.if", "stablehlo.case"})
# Ops whose result is larger than what they read: cheaper to recompute in their readers than to
# hoist out of a loop and read back from DRAM every iteration.
EXPANDING = frozenset({"stablehlo.broadcast_in_dim", "stablehlo.broadcast"})


def has_control(fn: ir.Function) -> bool:
    return any(op.name in CONTROL for op in fn.body.ops)


@dataclass(frozen=True)
class Place:
    """Where a value crossing a cut lives: an entry input or output binding, or a state slot."""
    kind: str   # 'in' | 'out' | 'state'
    index: int  # binding-relative index ('state': 0)
    offset: int
    nbytes: int


def _nbytes(t: object, opname: str, loc: object) -> int:
    if not isinstance(t, ir.TensorType) or any(d is None for d in t.shape):
        raise UnsupportedError(f"value of type {t} carried across control flow", opname, loc)
    return int(np.prod(t.shape, dtype=np.int64)) * np_dtype(t.element).itemsize


def _is_leaf(op: ir.Operation, leaves: dict[int, ir.Operation]) -> bool:
    """A constant, iota, or broadcast of a leaf: cloned into every piece that reads it (it fuses
    there as an immediate or an index map), never stored across a cut."""
    if op.regions or len(op.results) != 1:
        return False
    if op.name in ("stablehlo.constant", "stablehlo.iota"):
        return True
    return op.name in EXPANDING and all(id(v) in leaves for v in op.operands)


def _free(op: ir.Operation, out: dict[int, ir.Value]) -> None:
    """Adds the values op reads that it does not define (its regions' captures included)."""
    for v in op.operands:
        out.setdefault(id(v), v)
    for region in op.regions:
        for block in region.blocks:
            inner: dict[int, ir.Value] = {}
            for o in block.ops:
                _free(o, inner)
            defined = {id(a) for a in block.args} | {id(r) for o in block.ops for r in o.results}
            for k, v in inner.items():
                if k not in defined:
                    out.setdefault(k, v)


def _add_leaf(v: ir.Value, consts: dict[int, ir.Operation], out: dict[int, ir.Operation]) -> None:
    """Adds the leaf op defining v to `out`, after the leaves it reads. (A module function: a
    recursive closure is a reference cycle holding the whole builder until the next collection.)"""
    op = consts[id(v)]
    if id(op) not in out:
        for a in op.operands:
            _add_leaf(a, consts, out)
        out[id(op)] = op


class _Builder:
    def __init__(self, sram_per_core: int, ncores: int, level: int, bfp8: frozenset[int] = frozenset(),
                 store=None) -> None:
        self.sram, self.ncores, self.level = sram_per_core, ncores, level
        self.store = store  # lowered kernels on disk (kernel_store.py), or None
        self.bfp8 = bfp8  # entry inputs to store as bfp8 where every piece reads them as a weight
        self.pieces: list[tuple[object, list[Place], list[Place]]] = []  # (Segment, params, outputs)
        self.steps: list[list] = []            # ['launch', piece, k(, weight)] | ['branch', Place, target, if_zero]
        self.state = 0                         # | ['jump', target] | ['copy', dst Place, src Place]
        # id(value) -> the leaf op defining it (constants, iotas, broadcasts of them: _is_leaf)
        self.consts: dict[int, ir.Operation] = {}
        self.inplace: dict[int, Place] = {}  # loop body result -> its carried slot
        self.trips = 1  # runs of the code being built per call: the enclosing loops' known trip counts
        self.runs: dict[str, int] = {}  # kernel name -> its launches per call, where more than one
        # The slots the block being built may overwrite once their value is dead: the ones it
        # allocates, and a loop body's changed carried slots (written again before they are read).
        self.owned: set[Place] = set()
        self.later: set[int] = set()  # ids of the values needed after the control op being built

    # ------------------------------------------------------------------ places and steps
    def slot(self, t: object, opname: str, loc: object) -> Place:
        n = _nbytes(t, opname, loc)
        p = Place("state", 0, self.state, n)
        self.state += (n + ALIGN - 1) // ALIGN * ALIGN
        self.owned.add(p)
        return p

    def emit(self, step: list) -> list:
        self.steps.append(step)
        return step

    def copy(self, src: Place, dst: Place) -> None:
        if src != dst and dst.nbytes:
            self.emit(["copy", dst, src])

    def place(self, env: dict[int, Place], v: ir.Value, op: ir.Operation) -> Place:
        """Where v is; an outer leaf (a constant...), which has no place (the pieces reading it
        clone it), is written to a slot first."""
        if id(v) not in env and id(v) in self.consts:
            self.piece([], env, [v], [self.slot(v.type, op.name, op.loc)])
        return self.where(env, v, op)

    def where(self, env: dict[int, Place], v: ir.Value, op: ir.Operation) -> Place:
        if id(v) not in env:
            raise UnsupportedError(f"value %{v.name} is not defined here", op.name, op.loc)
        return env[id(v)]

    # ------------------------------------------------------------------ blocks and pieces
    def block(self, ops: list[ir.Operation], env: dict[int, Place], ret_places: list[Place]) -> None:
        """Runs a block's ops (the last one returns its results) into ret_places."""
        body, rets = ops[:-1], ops[-1].operands
        need: list[set[int]] = [set() for _ in range(len(body) + 1)]
        need[-1] = {id(v) for v in rets}
        for i in range(len(body) - 1, -1, -1):
            free: dict[int, ir.Value] = {}
            _free(body[i], free)
            need[i] = need[i + 1] | set(free)
        piece: list[ir.Operation] = []
        for i, op in enumerate(body):
            if op.name not in CONTROL:
                piece.append(op)
                if _is_leaf(op, self.consts):
                    self.consts[id(op.results[0])] = op
                continue
            # Leaves are not stored across the cut (a splat constant would become a materialized
            # array): the pieces that read them clone them (see piece), and one the control op
            # itself needs (a loop's initial value, a predicate) gets a slot then (see place).
            exports = [r for o in piece for r in o.results if id(r) in need[i] and id(r) not in self.consts]
            self.piece(piece, env, exports, [self.slot(r.type, op.name, op.loc) for r in exports])
            piece = []
            # (a nested block's results are not this loop body's: only _while sets its own)
            saved, self.inplace, self.later = self.inplace, {}, need[i + 1]
            getattr(self, "_" + op.name.split(".")[1])(op, env)
            self.inplace = saved
        self.piece(piece, env, list(rets), ret_places, ops[-1])

    def piece(self, ops: list[ir.Operation], env: dict[int, Place], exports: list[ir.Value],
              places: list[Place], ret: ir.Operation | None = None) -> None:
        """Compiles straight-line ops whose `exports` go to `places` (one launch per kernel)."""
        from . import compile_graph
        defined = {id(r) for o in ops for r in o.results}
        for j, v in enumerate(exports):  # a loop body result already in its carried slot stays there
            slot = self.inplace.get(id(v)) if ret is not None else None
            if slot is not None and env.get(id(v)) == slot and slot not in places:
                places[j] = slot

        def clone(v: ir.Value) -> bool:  # an outer leaf: the piece computes it (an immediate)
            return id(v) not in defined and id(v) not in env and id(v) in self.consts
        pairs = [(v, p) for v, p in zip(exports, places)
                 if id(v) in defined or clone(v) or self.where(env, v, ret or ops[-1]) != p]
        if pairs:
            free: dict[int, ir.Value] = {}
            for o in ops:
                _free(o, free)
            for v, _ in pairs:
                free.setdefault(id(v), v)
            args = [v for k, v in free.items() if k not in defined and not clone(v)]
            clones = self._clones([v for v in free.values() if clone(v)])
            at = ret or (ops[-1] if ops else None)
            arg_places = [self.where(env, v, at) for v in args]
            fn = ir.Function(f"piece{len(self.pieces)}", args, [v.type for v, _ in pairs],
                             ir.Block([], clones + ops + [ir.Operation("func.return", [v for v, _ in pairs], [])]))
            bfp8 = frozenset(j for j, p in enumerate(arg_places) if p.kind == "in" and p.index in self.bfp8)
            seg = compile_graph(fn, self.sram, prefix=f"p{len(self.pieces)}k", ncores=self.ncores, level=self.level,
                                bfp8_args=bfp8, store=self.store)
            skip: set[int] = set()
            if ret is not None:
                skip, moved = self._in_place(seg, arg_places, pairs)
                for j, slot in moved.items():
                    places[places.index(pairs[j][1])] = slot
                    pairs[j] = (pairs[j][0], slot)
            n = len(self.pieces)
            self.pieces.append((seg, arg_places, [p for _, p in pairs]))
            for k in range(len(seg.codes)):
                if k not in skip:
                    self.emit(["launch", n, k])
                    if self.trips > 1:
                        self.runs[seg.codes[k][0].name] = self.trips
        for v, p in zip(exports, places):
            env[id(v)] = p

    def _clones(self, values: list[ir.Value]) -> list[ir.Operation]:
        """The leaf ops defining `values`, with the leaves they read (a broadcast's constant),
        each once, operands first."""
        out: dict[int, ir.Operation] = {}
        for v in values:
            _add_leaf(v, self.consts, out)
        return list(out.values())

    def _in_place(self, seg: object, arg_places: list[Place],
                  pairs: list[tuple[ir.Value, Place]]) -> tuple[set[int], dict[int, Place]]:
        """A loop body's result is written straight into its carried slot, so the COPY after the
        body is skipped, when nothing reads the carried value after the result overwrites it
        (aliasing as XLA's buffer assignment does a while's parameter and result):
        - the result is the carried value updated in place (dynamic_update_slice, scatter: the
          kernels copy the operand into the result, then write the update) and that copy is the
          only kernel reading the carried value: the copy is skipped too;
        - or every other kernel reading the carried value runs before the result's first writer,
          and that writer reads it only at the element it writes (alias.writes_over: elementwise,
          not a transpose, reverse, shift or reduction of it).
        Returns (the kernels to skip, {result index: its carried slot})."""
        from .alias import writes_over
        skip: set[int] = set()
        moved: dict[int, Place] = {}
        for j, (v, _) in enumerate(pairs):
            slot = self.inplace.get(id(v))
            if slot is None:
                continue
            out = seg.outputs[j]
            # the carried value under every name the piece reads it by (an inner loop's result
            # it leaves unchanged is the same slot)
            params = [seg.params[i] for i, p in enumerate(arg_places) if p == slot]
            if slot in moved.values() or not out.size or out.nbytes != slot.nbytes or out.op == "param":
                continue
            readers = [k for k, (lk, _) in enumerate(seg.codes)
                       if any(not o.writes and any(o.node is q for q in params) for o in lk.operands)]
            writers = [k for k, (lk, _) in enumerate(seg.codes) if any(o.node is out and o.writes for o in lk.operands)]
            lk = seg.codes[readers[0]][0] if len(readers) == 1 else None
            if lk is not None and not lk.ops and len(lk.operands) == 2 and lk.operands[1].writes and \
                    lk.operands[1].node is out:  # a plain copy of the carried value into the result
                skip.add(readers[0])
                moved[j] = slot
            elif writers and all(r < writers[0] or r == writers[0] and len(params) == 1 and
                                 writes_over(seg.fused[r], out, params[0], seg.materialized) for r in readers):
                moved[j] = slot  # (later writers, a scatter's or a concat's, read none of it)
        return skip, moved

    # ------------------------------------------------------------------ control ops
    def _while(self, op: ir.Operation, env: dict[int, Place]) -> None:
        cond, body = (r.blocks[0] for r in op.regions)
        # A carried value the body returns unchanged is the init value in every iteration (jax
        # passes a loop's closed-over values so, a weight among them): it stays where it is, with
        # no slot or copy (a bfp8 weight is not even its native bytes). Work reading only such
        # values and outer ones is done once, before the loop.
        same = [r is a for a, r in zip(body.args, body.ops[-1].operands)]
        carried = [self.place(env, v, op) if f else self._carry(v, op, env) for v, f in zip(op.operands, same)]
        for v, s, f in zip(op.operands, carried, same):
            if not f:
                self.copy(self.place(env, v, op), s)
        fixed = {id(a): s for a, s, f in zip(body.args, carried, same) if f}
        scope = env | fixed
        ops = self._hoist(body.ops, scope)
        env.update((k, p) for k, p in scope.items() if k not in fixed)  # the hoisted results
        if self._fused_while(op, cond, body, ops, carried, env):
            return
        top = len(self.steps)
        inner = dict(env) | {id(a): s for a, s in zip(cond.args, carried)}
        pred = self.slot(cond.ops[-1].operands[0].type, op.name, op.loc)
        owned, self.owned = self.owned, set()  # (a region knows nothing of what its op's block reads later)
        self.block(cond.ops, inner, [pred])
        self.owned = owned
        exit_ = self.emit(["branch", pred, None, True])
        inner = dict(env) | {id(a): s for a, s in zip(body.args, carried)}
        rets = ops[-1].operands
        nxt = [s if r is a else self.slot(a.type, op.name, op.loc)
               for r, a, s in zip(rets, body.args, carried)]
        trips, owned = self.trips, self.owned  # (block() saves and restores `inplace` around this op)
        self.inplace = {id(r): s for r, a, s in zip(rets, body.args, carried) if r is not a}
        self.trips *= _trip_count(op, same, self.consts) or 1
        self.owned = {s for s, f in zip(carried, same) if not f}
        self.block(ops, inner, nxt)
        self.trips, self.owned = trips, owned | self.owned
        for t, s in zip(nxt, carried):
            self.copy(t, s)
        self.emit(["jump", top])
        exit_[2] = len(self.steps)
        for r, s in zip(op.results, carried):
            env[id(r)] = s

    def _carry(self, v: ir.Value, op: ir.Operation, env: dict[int, Place]) -> Place:
        """The slot a while carries a changed value in: where its initial value is, when the
        block owns that slot and nothing reads the value after the loop starts (not a later op,
        not the loop's regions directly, no other name of that slot), so no COPY runs; else a
        fresh one."""
        src = env.get(id(v))
        if src is None or src not in self.owned or src.nbytes != _nbytes(v.type, op.name, op.loc):
            return self.slot(v.type, op.name, op.loc)
        reads: dict[int, ir.Value] = {}  # what the loop's regions read directly, its other operands
        for region in op.regions:
            for o in region.blocks[0].ops:
                _free(o, reads)
        others = [id(w) for w in op.operands]
        others.remove(id(v))  # (v passed twice, the other one unchanged: that one is read in src)
        if id(v) in self.later or id(v) in reads or id(v) in others or \
                any(env.get(k) == src for k in (*self.later, *reads, *others)):
            return self.slot(v.type, op.name, op.loc)
        self.owned.discard(src)  # (one loop's slot now)
        return src

    def _fused_while(self, op: ir.Operation, cond: ir.Block, body: ir.Block, ops: list[ir.Operation],
                     carried: list[Place], env: dict[int, Place]) -> bool:
        """The loop as one kernel that iterates on a core (fused_loop.py) when its condition and
        body are small elementwise work: `top: LAUNCH loop; BRANCH flag -> top`."""
        if any(o.name in CONTROL for o in cond.ops + ops):
            return False
        free: dict[int, ir.Value] = {}
        for o in cond.ops + ops:
            _free(o, free)
        inside = {id(a) for a in cond.args + body.args} | {id(r) for o in cond.ops + ops for r in o.results}
        outer = [v for k, v in free.items() if k not in inside]
        # outer constants are cloned into the loop (immediates the loop's code folds), the
        # other outer values are the kernel's loop-invariant inputs
        clones = self._clones([v for v in outer if id(v) in self.consts])
        outer = [v for v in outer if id(v) not in self.consts]
        fns = []
        for blk, rest, name in ((cond, cond.ops, "cond"), (body, ops, "body")):
            ret = ir.Operation("func.return", list(rest[-1].operands), [])
            fns.append(ir.Function(f"loop_{name}", list(blk.args) + outer,
                                   [v.type for v in rest[-1].operands], ir.Block([], clones + rest[:-1] + [ret])))
        from .fused_loop import fuse_while
        n = len(self.pieces)
        got = fuse_while(fns[0], fns[1], len(carried), self.sram, prefix=f"p{n}k")
        if got is None:
            return False
        seg, changed = got
        flag = self.slot(ir.TensorType((), "i1"), op.name, op.loc)
        self.pieces.append((seg, carried + [self.where(env, v, op) for v in outer],
                            [flag] + [carried[i] for i in changed]))
        top = len(self.steps)
        self.emit(["launch", n, 0, seg.codes[0][0].chunk])
        self.emit(["branch", flag, top, False])
        for r, s in zip(op.results, carried):
            env[id(r)] = s
        return True

    def _hoist(self, ops: list[ir.Operation], env: dict[int, Place]) -> list[ir.Operation]:
        """Computes the body's loop-invariant ops (all they read is defined outside the loop, or
        invariant) once, before the loop; returns the rest. Leaves (constants, iota) stay: inside
        the body they fuse into their readers as immediates; so do broadcasts (jax.random's
        threefry broadcasts its key words to the counters' shape: hoisted, each would be a
        materialized array read back every iteration instead of a scalar read in place)."""
        invariant: set[int] = set()
        hoisted, rest = [], []
        folded: set[int] = set()  # results of work on outer constants alone (a broadcast of one)
        for op in ops[:-1]:
            free: dict[int, ir.Value] = {}
            _free(op, free)
            if op.name not in CONTROL and op.operands and all(k in self.consts or k in folded for k in free):
                # stays in the loop, where it folds into immediates; a hoisted op reading it
                # computes it too
                folded.update(id(r) for r in op.results)
                hoisted.append(op)
                rest.append(op)
            elif op.name not in CONTROL and op.name not in EXPANDING and op.operands and \
                    all(k in env or k in invariant or k in self.consts or k in folded for k in free):
                hoisted.append(op)
                invariant.update(id(r) for r in op.results)
            else:
                rest.append(op)
        if any(id(r) in invariant for op in hoisted for r in op.results):
            used: dict[int, ir.Value] = {}
            for op in rest + ops[-1:]:
                _free(op, used)
            exports = [r for op in hoisted for r in op.results if id(r) in used and id(r) in invariant]
            self.piece(hoisted, env, exports, [self.slot(r.type, "stablehlo.while", None) for r in exports])
        return rest + ops[-1:]

    def _branches(self, op: ir.Operation, env: dict[int, Place], preds: list[Place]) -> None:
        """Runs region k when preds[k] is nonzero (the first such), else the last region."""
        results = [self.slot(r.type, op.name, op.loc) for r in op.results]
        jumps = [self.emit(["branch", p, None, False]) for p in preds]
        ends = []
        for k in [len(op.regions) - 1] + list(range(len(preds))):
            if k < len(preds):
                jumps[k][2] = len(self.steps)
            owned, self.owned = self.owned, set()  # (as a loop's condition)
            self.block(op.regions[k].blocks[0].ops, dict(env), results)
            self.owned = owned
            ends.append(self.emit(["jump", None]))
        for j in ends:
            j[1] = len(self.steps)
        for r, s in zip(op.results, results):
            env[id(r)] = s

    def _if(self, op: ir.Operation, env: dict[int, Place]) -> None:
        # regions: (true, false); "the last region" is the false one
        self._branches(op, env, [self.place(env, op.operands[0], op)])

    def _case(self, op: ir.Operation, env: dict[int, Place]) -> None:
        # index k < 0 or >= N runs the last branch (StableHLO spec): compute idx == k on the device
        idx = op.operands[0]
        ops, preds = [], []
        i1 = ir.TensorType((), "i1")
        for k in range(len(op.regions) - 1):
            c = ir.Value(f"case_k{k}", idx.type)
            ops.append(ir.Operation("stablehlo.constant", [], [c],
                                    {"value": ir.DenseElements(idx.type, np.array(k))}, loc=op.loc))
            eq = ir.Value(f"case_eq{k}", i1)
            ops.append(ir.Operation("stablehlo.compare", [idx, c], [eq],
                                    {"comparison_direction": ir.EnumAttr("stablehlo", "comparison_direction", "EQ")},
                                    loc=op.loc))
            preds.append(eq)
        places = [self.slot(i1, op.name, op.loc) for _ in preds]
        self.piece(ops, env, preds, places)
        self._branches(op, env, places)


def _int_const(v: ir.Value, consts: dict[int, ir.Operation]) -> int | None:
    op = consts.get(id(v))
    if op is None or op.name != "stablehlo.constant" or v.type.shape != () or \
            np.dtype(op.attributes["value"].values.dtype).kind not in "iu":
        return None
    return int(op.attributes["value"].values)


def _trip_count(op: ir.Operation, same: list[bool], consts: dict[int, ir.Operation]) -> int | None:
    """The iterations of a counted while (fori_loop: `i < n` with i from a constant, stepped by
    a constant 1, and n a constant or a carried value the body leaves unchanged whose initial
    value is one), or None when the data decide."""
    cond, body = (r.blocks[0] for r in op.regions)
    defs = {id(r): o for o in cond.ops + body.ops for r in o.results}
    test = defs.get(id(cond.ops[-1].operands[0]))
    if test is None or test.name != "stablehlo.compare" or test.attributes["comparison_direction"].value != "LT":
        return None
    i, n = test.operands
    if i not in cond.args:
        return None
    k = cond.args.index(i)
    end = _int_const(op.operands[cond.args.index(n)], consts) if n in cond.args and same[cond.args.index(n)] \
        else _int_const(n, defs)  # (_int_const takes constants only)
    start = _int_const(op.operands[k], consts)
    step = defs.get(id(body.ops[-1].operands[k]))
    if end is None or start is None or step is None or step.name != "stablehlo.add" or \
            body.args[k] not in step.operands:
        return None
    one = [v for v in step.operands if v is not body.args[k]]
    if len(one) != 1 or _int_const(one[0], defs) != 1:
        return None
    return max(0, end - start)


def _packed_uses(b: _Builder) -> dict[int, list[bool]]:
    """For each entry input asked for as bfp8: per use (a piece's kernels reading it, a COPY or
    BRANCH step), whether that use reads it packed."""
    uses: dict[int, list[bool]] = {i: [] for i in b.bfp8}
    for seg, params, _ in b.pieces:
        for node, p in zip(seg.params, params):
            if p.kind == "in" and p.index in uses and \
                    any(o.node is node for lk, _ in seg.codes for o in lk.operands):
                uses[p.index].append(node.id in getattr(seg, "packed", {}))
    for s in b.steps:
        for p in (s[2],) if s[0] == "copy" else (s[1],) if s[0] == "branch" else ():
            if p.kind == "in" and p.index in uses:
                uses[p.index].append(False)
    return uses


def compile_function(main: ir.Function, sram_per_core: int, ncores: int, level: int = 0,
                     bfp8_args: frozenset[int] = frozenset(), bfp8_named: bool = False,
                     store=None) -> CompiledProgram:
    """An entry function with control flow (calls inlined, in its regions too) as pieces and a
    control stream. At `level` 1-2 each piece places its own intermediates in SRAM (a piece's
    placed tensors live only while its launches run: what crosses pieces is in DRAM slots).
    `bfp8_args`: the inputs to store as bfp8 where they are weights: each piece packs the ones it
    reads only as weights; an input some piece (or a COPY) reads natively is built again
    unpacked, and refused when `bfp8_named`."""
    from . import assemble, bfp8_refusal
    for i in sorted(bfp8_args):
        if i >= len(main.args):
            raise UnsupportedError(f"compiler option weight_format names argument {i}; the function takes "
                                   f"{len(main.args)}", "func.func", main.loc)
    asked = frozenset(bfp8_args)
    while True:
        b = _Builder(sram_per_core, ncores, level, asked, store)
        env = {id(a): Place("in", i, 0, _nbytes(a.type, "func.func", main.loc)) for i, a in enumerate(main.args)}
        ops = main.body.ops
        outs = [Place("out", j, 0, _nbytes(v.type, "func.return", main.loc)) for j, v in enumerate(ops[-1].operands)]
        b.block(ops, env, outs)
        uses = _packed_uses(b)
        if bfp8_named:
            for i in sorted(i for i, u in uses.items() if not (u and all(u))):
                a = main.args[i]
                raise bfp8_refusal(i, f"{a.type.element}{list(a.type.shape)}", a.loc or main.loc)
        mixed = {i for i, u in uses.items() if any(u) and not all(u)}
        if not mixed:
            break
        asked -= mixed  # (a smaller set each time: this ends)
    packed = {i for i, u in uses.items() if u and all(u)}
    nodes = {n: v for seg, _, _ in b.pieces for n, v in getattr(seg, "packed", {}).items()}

    consts: list[Node] = []
    const_base = []
    for seg, _, _ in b.pieces:
        const_base.append(len(consts))
        consts += seg.consts
    state = (b.state + ALIGN - 1) // ALIGN * ALIGN
    arena = state + max((seg.arena for seg, _, _ in b.pieces), default=0)
    nin, nout = len(main.args), len(outs)
    arena_b = nin + nout + len(consts)

    def bind(p: Place) -> tuple[int, int]:
        return {"in": p.index, "out": nin + p.index, "state": arena_b}[p.kind], p.offset

    segments = []
    for (seg, params, outputs), cb in zip(b.pieces, const_base):
        def binding(node: Node, seg=seg, params=params, outputs=outputs, cb=cb) -> tuple[int, int]:
            s = seg.storage(node)
            if s.kind == "in":
                return bind(params[s.index])
            if s.kind == "out":
                return bind(outputs[s.index])
            if s.kind == "const":
                return nin + nout + cb + s.index, 0
            return arena_b, state + s.offset
        segments.append((seg.codes, binding))
    first = [0]
    for seg, _, _ in b.pieces:
        first.append(first[-1] + len(seg.codes))
    steps = []
    for s in b.steps:
        if s[0] == "launch":
            weight = s[3] if len(s) > 3 else 0  # a launch that runs a loop's iterations weighs them
            steps.append(f"{{TT_CTL_LAUNCH, {first[s[1]] + s[2]}u, 0, 0, 0, 0, {weight}ull, 0, 0}}")
        elif s[0] == "jump":
            steps.append(f"{{TT_CTL_JUMP, {s[1]}u, 0, 0, 0, 0, 0, 0, 0}}")
        elif s[0] == "branch":
            bb, off = bind(s[1])
            flag = "TT_BRANCH_IF_ZERO" if s[3] else "0"
            steps.append(f"{{TT_CTL_BRANCH, {s[2]}u, {bb}u, 0, {off}ull, 0, {s[1].nbytes}ull, {flag}, 0}}")
        else:
            (db, doff), (sb, soff) = bind(s[1]), bind(s[2])
            steps.append(f"{{TT_CTL_COPY, 0, {db}u, {sb}u, {doff}ull, {soff}ull, {s[1].nbytes}ull, 0, 0}}")
    binding_bytes = [packed_nbytes(tuple(a.type.shape)) if i in packed else _nbytes(a.type, "func.func", main.loc)
                     for i, a in enumerate(main.args)] + [p.nbytes for p in outs] + [c.nbytes for c in consts] + [arena]
    l1 = frozenset().union(*(seg.l1 for seg, _, _ in b.pieces))  # node ids are unique across pieces
    resident = {name: n for seg, _, _ in b.pieces for name, n in (seg.resident or {}).items()}
    source, kernels = assemble(segments, binding_bytes, steps or ["{TT_CTL_HALT, 0, 0, 0, 0, 0, 0, 0, 0}"],
                               l1=l1, resident=resident, packed=nodes, runs=b.runs)
    return CompiledProgram(
        source=source,
        inputs=[TensorSpec(tuple(a.type.shape), np_dtype(a.type.element)) for a in main.args],
        outputs=[TensorSpec(tuple(v.type.shape), np_dtype(v.type.element)) for v in ops[-1].operands],
        constants=[np.ascontiguousarray(c.attrs["value"]) for c in consts],
        arena_bytes=arena,
        kernels=kernels,
        binding_bytes=binding_bytes,
        live_peak_bytes=state + max((seg.live for seg, _, _ in b.pieces), default=0),
        input_formats=tuple("bfp8" if i in packed else "" for i in range(nin)),
    )
