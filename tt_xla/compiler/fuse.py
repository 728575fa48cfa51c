"""Pass 5: fusion. Decide which nodes live in memory; everything else is recomputed inside the
kernels that read it. One kernel per materialized node (two for pad, one per operand for
concat), except that elementwise kernels over one shape sharing an input become one kernel
with several results (`_multi_output`).

A node is materialized (written to DRAM by a kernel) when it is a graph output, a reduce, a dot,
a concat or pad, a non-scalar constant or a param; when a view reads it (views are index maps
over memory, see access.py); when a dot reads it; or when inlining it into every kernel that
reads it would cost more than RECOMPUTE_BUDGET extra ops per element. So relu(x) - relu(1 -
exp(x)) and the expm1/select form of ELU are each one kernel, and softmax is three (max, sum of
exp, exp / sum): the exp is recomputed rather than stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .access import Access, apply_view, base_access, reshape_strides, row_major
from .graph import ELEMENTWISE, VIEWS, Graph, Node, scalar_const, toposort, users
from .ops import cost as op_cost

RECOMPUTE_BUDGET = 64  # extra primitive ops per element accepted to avoid a DRAM round trip
ALWAYS = {"param", "reduce", "dot", "concat", "pad", "gather", "scatter", "scan", "sort"}
GATHER_MAX_K = 16384  # K of a product whose A rows are gathered into SRAM: one row's page fits any core
INDEXED = ("gather", "scatter", "sort")  # kernels that address their operands by indices they compute
OWN_KIND = INDEXED + ("scan",)   # nodes whose kernel kind is their op


@dataclass(eq=False)
class Kernel:
    """One launch of the fusion plan. kind 'loop': `root` evaluated over `shape` and stored
    through `dest`; 'reduce' / 'dot' / 'gather' / 'scatter' / 'scan' / 'sort': root is that node
    and dest its storage. `reads` (set by `plan`, once the stored set is final) are the stored
    nodes it reads, in first-use order: schedule, memory planning, placement and the lowering's
    check take them from here rather than walking the graph again."""
    kind: str
    root: Node
    shape: tuple[int, ...]
    dest: Access
    epilogue: Node | None = None   # reduce kernels: elementwise node applied to the result
    reads: tuple[Node, ...] | None = None
    # loop kernels: further elementwise results over the same iteration space, each computed in
    # the same loop and stored row-major (multi-output fusion, `_multi_output`), or further
    # concat pieces reading the same elements, each stored through its own access
    # (`_merge_pieces`: then `extra_roots` are the pieces' values)
    extra: tuple[Access, ...] = ()
    extra_roots: tuple[Node, ...] = ()

    @property
    def writes(self) -> Node:
        """The stored node it writes (a concat or pad takes several kernels, each a part); with
        `extra`, the first of its outputs."""
        return self.dest.src

    @property
    def outputs(self) -> tuple[Node, ...]:
        """Every stored node it writes: `writes`, then the extra results."""
        return (self.dest.src, *(a.src for a in self.extra))

    def roots(self) -> tuple[Node, ...]:
        """The node each output's values come from, in `dest`, `extra` order."""
        return (self.root, *(self.extra_roots or (a.src for a in self.extra)))


@dataclass
class Plan:
    """The fusion plan: the graph, the ids of the nodes stored in memory, the kernels (with their
    kinds, reads and writes) in topological order."""
    graph: Graph
    materialized: set[int]
    kernels: list[Kernel]

    def consts(self, order: list[Kernel]) -> list[Node]:
        """The dense constants the kernels in `order` read, in first-read order (their bindings)."""
        out: dict[int, Node] = {}
        for k in order:
            for r in k.reads:
                if r.op == "const" and is_data(r):
                    out.setdefault(r.id, r)
        return list(out.values())


def is_data(n: Node) -> bool:
    """Nodes whose storage is bound from outside (inputs, constants): no kernel writes them."""
    return n.op == "param" or (n.op == "const" and n.shape != ())


def memoryless(n: Node) -> bool:
    """Leaves a kernel computes from the index (iota) or writes as a literal (scalar const)."""
    return n.op == "iota" or (n.op == "const" and n.shape == ())


def access_of(n: Node, mat: set[int]) -> Access | None:
    """How a kernel reads n: through views down to a stored node, an iota or a scalar const."""
    if n.id in mat or memoryless(n):
        return base_access(n)
    if n.op in VIEWS:
        a = access_of(n.inputs[0], mat)
        return None if a is None else apply_view(n, a)
    return None


def read_access(n: Node, mat: set[int]) -> Access | None:
    """access_of, except that a stored iota is read from its storage (row-major), not
    recomputed: for kernels that DMA their operands (gather, scatter, sort, scan)."""
    if n.op == "iota" and n.id in mat:
        return Access(n, 0, row_major(n.shape))
    return access_of(n, mat)


def dot_groups(n: Node) -> list[list[list[int]]]:
    """For each dot operand, its dims grouped [batch, free, contracting] in canonical order."""
    a = n.attrs
    lhs, rhs = n.inputs
    lb, rb = list(a["lhs_batching_dimensions"]), list(a["rhs_batching_dimensions"])
    lc, rc = list(a["lhs_contracting_dimensions"]), list(a["rhs_contracting_dimensions"])
    lf = [d for d in range(len(lhs.shape)) if d not in lb + lc]
    rf = [d for d in range(len(rhs.shape)) if d not in rb + rc]
    return [[lb, lf, lc], [rb, rf, rc]]


def group_strides(shape: tuple[int, ...], acc: Access, groups: list[list[int]]) -> list[int] | None:
    """One stride per group of dims, or None when a group is not one arithmetic progression."""
    if 0 in shape:
        return [0] * len(groups)  # nothing is read
    out = []
    for g in groups:
        runs = progressions(shape, acc, g)
        if len(runs) > 1:
            return None
        out.append(runs[0][1] if runs else 0)
    return out


def progressions(shape: tuple[int, ...], acc: Access, dims: list[int]) -> list[tuple[int, int]]:
    """dims (outermost first) merged into arithmetic progressions: (count, stride) per run."""
    out: list[tuple[int, int]] = []
    for d in dims:
        if shape[d] == 1:
            continue
        if out and out[-1][1] == acc.strides[d] * shape[d]:
            out[-1] = (out[-1][0] * shape[d], acc.strides[d])
        else:
            out.append((shape[d], acc.strides[d]))
    return out


@dataclass(frozen=True)
class LhsLayout:
    """A product's A read where it lies when its dims do not merge into [batch, row, K]
    progressions: batch index b is mixed-radix over `batch` ((count, stride), outermost first:
    a convolution's (image, output row) of a strided or padded input), and K is `segs` runs
    of `seg_len` contiguous values `seg_stride` apart (a convolution's leading taps, each an
    input row's KW x C patch, the rows' windows overlapping: `row` < `seg_len`). With `outer`,
    the rows too are mixed-radix, `outer` progressions around `row_count` rows `row` apart (a
    convolution's (image, output row, output column)): the product gathers each block's rows,
    segment by segment, into an SRAM page (its patches formed there, as im2col would store them)."""
    batch: tuple[tuple[int, int], ...]
    row: int
    col: int
    segs: int = 1
    seg_stride: int = 0
    seg_len: int = 0
    outer: tuple[tuple[int, int], ...] = ()
    row_count: int = 0


def lhs_layout(shape: tuple[int, ...], acc: Access, groups: list[list[int]]) -> LhsLayout | None:
    """How the matrix engine reads a product's A in place (lower.lower_dot), or None when it
    must be copied. Only for an A that group_strides does not describe."""
    b, f, c = (progressions(shape, acc, g) for g in groups)
    if len(c) > 2 or 0 in shape:
        return None
    if len(f) > 1:  # gathered rows: K segments of contiguous runs (a convolution's patches) only
        if len(c) < 2 or c[1][1] != 1:
            return None
        (segs, seg_stride), (seg_len, _) = c
        if segs * seg_len > GATHER_MAX_K:
            return None
        return LhsLayout(tuple(b), f[-1][1], 1, segs, seg_stride, seg_len, tuple(f[:-1]), f[-1][0])
    row = f[0][1] if f else 0
    if len(c) < 2:
        return LhsLayout(tuple(b), row, c[0][1] if c else 0)
    (segs, seg_stride), (seg_len, col) = c
    if col != 1 or not segments_pay(segs, seg_len, row):
        return None
    return LhsLayout(tuple(b), row, col, segs, seg_stride, seg_len)


def segments_pay(segs: int, seg_len: int, row: int) -> bool:
    """Whether the engine reads an A of `segs` K segments in place (conv.py asks before it
    builds one): only where the rows overlap (0 < row stride < seg_len), so that each segment
    is DMA'd once as a span, and only where splitting K costs the engine no more 32-deep
    tiles than one K would."""
    return 0 < row < seg_len and segs * -(-seg_len // 32) <= -(-segs * seg_len // 32)


def _cost(n: Node, mat: set[int]) -> int:
    """Vector instructions computed inline for n: the op table's cost of the distinct
    elementwise nodes of its inline tree."""
    return sum(op_cost(t.op) for t in inline_tree(n, mat)[0] if t.op in ELEMENTWISE)


def _distinct_outputs(graph: Graph) -> Graph:
    """Every output gets storage of its own: inputs, constants and repeats are copied."""
    seen: set[int] = set()
    outs = []
    for o in graph.outputs:
        if is_data(o) or o.id in seen:
            o = Node("copy", [o], o.shape, o.dtype, {}, o.loc)
        seen.add(o.id)
        outs.append(o)
    return Graph(graph.params, outs)


def _pad_interior(p: Node) -> tuple[Node, int, tuple[int, ...]] | None:
    """The operand region that lands in pad's result: (root to evaluate, dest offset, strides)."""
    x = p.inputs[0]
    rm = row_major(p.shape)
    start, count, off, strides = [], [], 0, []
    for d, (n, lo, it) in enumerate(zip(x.shape, p.attrs["low"], p.attrs["interior"])):
        step = it + 1
        i0 = max(0, -(lo // step)) if lo < 0 else 0   # first operand index landing at >= 0
        i1 = min(n - 1, (p.shape[d] - 1 - lo) // step)  # last one landing inside the result
        if i1 < i0:
            return None
        start.append(i0)
        count.append(i1 - i0 + 1)
        off += (lo + i0 * step) * rm[d]
        strides.append(step * rm[d])
    root = x
    if tuple(count) != x.shape:
        root = Node("slice", [x], tuple(count), x.dtype,
                    {"start": tuple(start), "strides": (1,) * len(start)}, p.loc)
    return root, off, tuple(strides)


def plan(graph: Graph) -> Plan:
    graph = _distinct_outputs(graph)
    nodes = toposort(graph.outputs, graph.params)
    pads = {n.id: _pad_interior(n) for n in nodes if n.op == "pad"}
    use = users(nodes)
    mat: set[int] = {o.id for o in graph.outputs}
    mat |= {n.id for n in nodes if n.op in ALWAYS or is_data(n) or n.attrs.get("barrier")}  # (legalize)

    def ensure(s: Node) -> None:
        """Make s readable through an Access, materializing as little as possible."""
        if s.op in VIEWS:
            ensure_view(s)
        elif access_of(s, mat) is None:
            mat.add(s.id)

    def ensure_view(v: Node) -> None:
        """v's index map must compose with its input's (even when v itself is stored: its
        kernel reads through it)."""
        ensure(v.inputs[0])
        if apply_view(v, access_of(v.inputs[0], mat)) is None:  # a reshape strides cannot do
            mat.add(v.inputs[0].id)

    for n in nodes:
        if n.op in VIEWS:
            readers = use.get(n.id, [])
            if n.id in mat or not readers or \
                    not all(u.op == "concat" and (_reshaped_piece(u, n, mat) is not None or
                                                  _reversed_piece(u, n, mat) is not None) for u in readers):
                ensure_view(n)
        elif n.op == "dot":
            for j, (opnd, groups) in enumerate(zip(n.inputs, dot_groups(n))):
                ensure(opnd)
                a = access_of(opnd, mat)
                # (the engine reads an A of a mixed-radix batch or K segments in place)
                in_place = group_strides(opnd.shape, a, groups) is not None or \
                    j == 0 and _engine_dot(n) and lhs_layout(opnd.shape, a, groups) is not None
                if not in_place or memoryless(a.src):
                    # copy to a layout the matrix engine can stride through (an iota or a
                    # broadcast scalar constant has no memory at all)
                    mat.add(opnd.id)
        elif n.op == "reduce":
            for init in n.inputs[n.attrs["n"]:]:
                ensure(init)
        elif n.op == "pad":
            ensure(n.inputs[1])
            if pads[n.id] is not None:
                ensure(pads[n.id][0])
        elif n.op == "concat":
            for x in n.inputs:
                if x.op in VIEWS and _reshaped_piece(n, x, mat) is None and _reversed_piece(n, x, mat) is None:
                    ensure(x)
        elif n.op == "scan":  # the scan kernel walks its operand row-major
            ensure(n.inputs[0])
            mat.add(n.inputs[0].id)
        elif n.op in INDEXED:
            # read through their accesses (any non-zero strides: a DMA of a stride-0 run moves
            # one element, as a broadcast reads it, and these kernels read their runs as dense
            # rows); scatter's operand is only copied into the result by a loop kernel, so it
            # may be a broadcast
            for j, x in enumerate(n.inputs):
                ensure(x)
                a = access_of(x, mat)
                if (memoryless(a.src) or any(s == 0 and d > 1 for s, d in zip(a.strides, x.shape))) and \
                        not (n.op == "scatter" and j == 0):
                    mat.add(x.id)

    # Recompute or store: count the kernels each elementwise node would be inlined into.
    kernels_of: dict[int, set[int]] = {}
    for n in reversed(nodes):
        if n.id in mat:
            kernels_of[n.id] = {n.id}
            continue
        ks: set[int] = set()
        for u in use.get(n.id, []):
            ks |= kernels_of.get(u.id, {u.id})
        kernels_of[n.id] = ks
        if n.op in ELEMENTWISE and len(ks) > 1 and \
                _cost(n, mat) * (len(ks) - 1) > RECOMPUTE_BUDGET:
            mat.add(n.id)
            kernels_of[n.id] = {n.id}

    outputs = {o.id for o in graph.outputs}
    inner = _inner_concats(nodes, use, mat, outputs)
    _split_products(nodes, use, mat, outputs)
    epilogue = _epilogues(nodes, use, mat, outputs)
    through = _stores_through_transpose(nodes, use, mat, outputs)
    into = _reductions_into_concats(nodes, use, mat, outputs, {r.id for r in epilogue.values()})
    kernels: list[Kernel] = []
    for n in nodes:
        if n.id in into:
            kernels.append(Kernel("reduce", n, n.shape, into[n.id]))
            continue
        if n.id in epilogue:
            r = epilogue[n.id]
            kernels.append(Kernel(r.op, r, n.shape, base_access(n), n))
            continue
        if n.id in through:
            d, dest = through[n.id]
            kernels.append(Kernel("dot", d, d.shape, dest))
            continue
        if n.id not in mat or is_data(n):
            continue
        whole = base_access(n) if n.op != "iota" else Access(n, 0, row_major(n.shape))
        if n.op in ("reduce", "dot", "gather", "scan", "sort"):
            kernels.append(Kernel(n.op, n, n.shape, whole))
        elif n.op == "scatter":  # the operand copied into the result, then the updates applied in place
            kernels.append(Kernel("loop", n.inputs[0], n.shape, whole))
            kernels.append(Kernel("scatter", n, n.shape, whole))
        elif n.op == "concat":
            todo = [(n, 0)]  # (a concat whose pieces n stores, its first element's offset in n)
            while todo:
                c, base = todo.pop()
                dim, off = c.attrs["dim"], 0
                for x in c.inputs:
                    start = base + off * whole.strides[dim]
                    off += x.shape[dim]
                    if x.id in inner:
                        todo.append((x, start))
                        continue
                    if _stored_reduction(x).id in into:
                        continue  # (its reduction's kernel stores it here)
                    # (strides in n, the concat storing: c's own only when c is n)
                    st, rev = _reshaped_piece(c, x, mat, whole.strides), _reversed_piece(c, x, mat, whole.strides)
                    if rev is not None:
                        root, st = x.inputs[0], rev[1]
                        start += rev[0]
                    else:
                        root, st = (x, whole.strides) if st is None else (x.inputs[0], st)
                    kernels.append(Kernel("loop", root, root.shape, Access(n, start, st)))
        elif n.op == "pad":
            fill = Node("broadcast", [n.inputs[1]], n.shape, n.dtype, {"dims": ()}, n.loc)
            kernels.append(Kernel("loop", fill, n.shape, whole))
            if pads[n.id] is not None:
                root, off, strides = pads[n.id]
                kernels.append(Kernel("loop", root, root.shape, Access(n, off, strides)))
        else:
            kernels.append(Kernel("loop", n, n.shape, whole))
    for k in kernels:
        k.reads = tuple(_reads(k, mat))
    kernels = _merge_pieces(_multi_output(kernels, mat, outputs), mat)
    return Plan(graph, mat, _reductions_with_stores(_sibling_reductions(kernels, mat), mat))


def reads(k: Kernel, mat: set[int]) -> list[Node]:
    """The stored nodes kernel k reads: the plan's (for callers that still pass the stored set)."""
    return list(k.reads) if k.reads is not None else _reads(k, mat)


def _reads(k: Kernel, mat: set[int]) -> list[Node]:
    """The stored nodes kernel k reads (its leaves), in first-use order."""
    out: dict[int, Node] = {}
    seen: set[int] = set()
    _walk_reads(k.root, k.root is k.dest.src or k.root.op in VIEWS or k.epilogue is not None, mat, seen, out)
    if k.epilogue is not None:
        seen.discard(k.epilogue.id)
        _walk_reads(k.epilogue, True, mat, seen, out)
    for r in k.roots()[1:]:
        _walk_reads(r, True, mat, seen, out)
    for o in k.outputs:
        out.pop(o.id, None)
    return list(out.values())


# (module functions, not recursive closures: a closure calling itself is a reference cycle that
# keeps what it captured alive until the next garbage collection, which compiles made slow)
def _walk_reads(n: Node, root: bool, mat: set[int], seen: set[int], out: dict[int, Node]) -> None:
    if n.id in seen:
        return
    seen.add(n.id)
    if not root and (n.id in mat):
        out[n.id] = n
    elif n.op in VIEWS:
        _walk_reads(n.inputs[0], False, mat, seen, out)
    elif n.op in ELEMENTWISE or n.op in ("reduce", "dot") or n.op in OWN_KIND:
        for i in n.inputs:
            _walk_reads(i, False, mat, seen, out)


def inline_tree(n: Node, mat: set[int]) -> tuple[list[Node], list[Node]]:
    """(the nodes computed inside n's kernel, the stored or leaf nodes they read directly)."""
    tree: list[Node] = []
    leaves: list[Node] = []
    _walk_tree(n, True, mat, set(), tree, leaves)
    return tree, leaves


def _walk_tree(m: Node, top: bool, mat: set[int], seen: set[int], tree: list[Node], leaves: list[Node]) -> None:
    if m.id in seen:
        return
    seen.add(m.id)
    if top or (m.id not in mat and m.op in ELEMENTWISE):
        tree.append(m)
        for i in m.inputs:
            _walk_tree(i, False, mat, seen, tree, leaves)
    else:
        leaves.append(m)


def _epilogues(nodes: list[Node], use: dict[int, list[Node]], mat: set[int],
               outputs: set[int]) -> dict[int, Node]:
    """Elementwise work on a reduction's or a matmul's result runs in that kernel, at the store:
    max(-inf, reduce_max(x)) in softmax, sum / n in a mean, rsqrt(var + eps) in a layernorm,
    gelu(x @ w + b) in an MLP layer. Returns {stored elementwise node: the reduce or dot it
    finishes}; that node is no longer stored. Reduction epilogues read only constants besides
    the result; matmul epilogues may read any tensor laid out like the product (bias, residual)."""
    out: dict[int, Node] = {}
    for n in nodes:
        if n.id not in mat or n.op not in ELEMENTWISE:
            continue
        tree, leaves = inline_tree(n, mat)
        stripped = [_strip_same_order(x) for x in leaves]
        bases = [b for b, _ in stripped]
        heads = {b.id: b for b in bases if b.op in ("reduce", "dot") and b.size == n.size}
        if len(heads) != 1:
            continue
        (r,) = heads.values()
        if r.op == "dot":
            if not _engine_dot(r):
                continue  # epilogues ride on the matrix engine's f32 block only
            groups = dot_out_groups(r)
            accesses = [access_of(x, mat) for x in leaves]
            others_ok = r.shape == n.shape and all(
                b is r and x.shape == n.shape or
                (a is not None and x.shape == n.shape and group_strides(n.shape, a, groups) is not None)
                for x, b, a in zip(leaves, bases, accesses))
        else:
            others_ok = all(b is r or scalar_const(x) is not None for x, b in zip(leaves, bases))
        inside = {t.id for t in tree}  # computed in n's kernel (its stored leaves are not)
        chain = {v.id for b, views in stripped if b is r for v in views}
        private = all(u.id in inside for t in tree if t is not n for u in use.get(t.id, [])) and \
            not any(v in mat for v in chain)  # a stored view of the result needs it stored too
        if r.id not in outputs and others_ok and private and all(r is not q for q in out.values()) and \
                all(u.id in inside or u.id in chain for v in [r.id, *chain] for u in use.get(v, [])):
            out[n.id] = r
            mat.discard(r.id)
    return out


def _engine_dot(r: Node) -> bool:
    """Whether the matrix engine computes product r (its f32 block is what an epilogue rides on)."""
    da, db = (i.dtype for i in r.inputs)
    return da == db == "f32" and r.dtype == "f32" or da == db == "bf16" and r.dtype in ("f32", "bf16")


def _split_products(nodes: list[Node], use: dict[int, list[Node]], mat: set[int], outputs: set[int]) -> None:
    """An elementwise node finishing two or more products, as a residual block's
    relu(bn(conv(h)) + bn(shortcut(x))), can be the epilogue of one of them only. The largest
    elementwise subtree that depends on each other product alone (its bn and its rounding to
    bf16) is stored instead, so that it becomes that product's own epilogue and the node reads
    its narrow result: each product's f32 block never reaches DRAM."""
    for n in nodes:
        if n.id not in mat or n.op not in ELEMENTWISE:
            continue
        tree, leaves = inline_tree(n, mat)
        heads = {b.id: b for b in (_same_order(x) for x in leaves)
                 if b.op == "dot" and b.size == n.size and b.shape == n.shape}
        if len(heads) < 2 or not all(_engine_dot(h) for h in heads.values()):
            continue
        inside = {t.id for t in tree}

        def private(v: Node) -> bool:  # read only by n's kernel (maybe through same-order views)
            return v.id not in outputs and all(u.id in inside or (u.id not in mat and u.op in ("reshape", "broadcast")
                                                                  and private(u)) for u in use.get(v.id, []))
        if not all(private(h) for h in heads.values()):
            continue  # a product stored anyway (read elsewhere, an output) gains nothing
        deps: dict[int, frozenset[int]] = {}

        def dep(m: Node) -> frozenset[int]:
            if m.id not in deps:
                if m.id in inside:
                    deps[m.id] = frozenset().union(*(dep(i) for i in m.inputs))
                else:
                    b = _same_order(m)
                    deps[m.id] = frozenset((b.id,)) if b.id in heads else frozenset()
            return deps[m.id]
        dep(n)
        for h in list(heads)[1:]:  # the first product keeps n as its epilogue
            for t in tree:
                if t is not n and deps[t.id] == {h} and t.shape == n.shape and \
                        all(u.id in inside for u in use.get(t.id, [])) and \
                        any(deps[u.id] != {h} for u in use.get(t.id, [])):
                    mat.add(t.id)


def _inner_concats(nodes: list[Node], use: dict[int, list[Node]], mat: set[int], outputs: set[int]) -> set[int]:
    """Concats read only as a piece of another concat, whose pieces that concat stores in place
    (so a concatenate of concatenates, as a matrix assembled from row panels of blocks, copies
    each block once, not once a level); taken out of `mat`. Not a pair's concat (a dim of 2, see
    _piece_reads) or one with a piece stored through a reshape or a reversal (their strides are
    their own concat's)."""
    out: set[int] = set()
    for n in nodes:
        us = use.get(n.id, [])
        if n.op != "concat" or n.id in outputs or n.attrs.get("barrier") or len(us) != 1 or \
                us[0].op != "concat" or sum(x is n for x in us[0].inputs) != 1 or \
                2 in (n.shape[n.attrs["dim"]], us[0].shape[us[0].attrs["dim"]]) or \
                any(_reshaped_piece(n, x, mat) is not None or _reversed_piece(n, x, mat) is not None for x in n.inputs):
            continue
        out.add(n.id)
    mat.difference_update(out)
    return out


def _reshaped_piece(n: Node, x: Node, mat: set[int], rm: tuple[int, ...] | None = None) -> tuple[int, ...] | None:
    """Piece x of concat n that reshapes a value no strides can view in x's shape (an axis
    whose digits are read through a transpose: fft's complex result) is computed in its input's
    shape and stored through the reshape: the strides in n (laid out by `rm`, default n's row-major
    strides) of that input's dims, else None."""
    a = access_of(x.inputs[0], mat) if x.op == "reshape" else None
    if a is None or apply_view(x, a) is not None:
        return None
    return reshape_strides(x.shape, rm or row_major(n.shape), x.inputs[0].shape)


def _reversed_piece(n: Node, x: Node, mat: set[int],
                    rm: tuple[int, ...] | None = None) -> tuple[int, tuple[int, ...]] | None:
    """Piece x of concat n that reverses a value computed in its own kernel (eigh's Singer move)
    is computed unreversed and stored through the reversed strides, so that it reads its inputs
    as a piece beside it may (see _merge_pieces): (the offset of its first element from the
    piece's start, its strides in n), else None. Only outer dims: rows and their runs keep
    positive strides. `rm`: n's layout, as in _reshaped_piece."""
    y = x.inputs[0] if x.op == "reverse" else None
    dims = x.attrs.get("dims", ()) if y is not None else ()
    if y is None or y.id in mat or y.op not in ELEMENTWISE or any(d >= len(x.shape) - 2 for d in dims):
        return None
    return _reversed_strides(x.shape, dims, rm or row_major(n.shape))


def _reversed_strides(shape: tuple[int, ...], dims, strides: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(the offset of element 0, the strides) of a walk over `strides` reversed along `dims`."""
    return (sum((shape[d] - 1) * strides[d] for d in dims),
            tuple(-st if d in dims else st for d, st in enumerate(strides)))


def _stored_reduction(x: Node) -> Node:
    """The reduction a concat piece is, directly or reversed; else x."""
    y = x.inputs[0] if x.op == "reverse" else x
    return y if y.op == "reduce" else x


def _reductions_into_concats(nodes: list[Node], use: dict[int, list[Node]], mat: set[int], outputs: set[int],
                             epilogued: set[int]) -> dict[int, Access]:
    """A reduction read only as a piece of a stored concat, directly or through a reverse read by
    nothing else, is stored by its own kernel straight into the concat (eigh's next pairs' sums:
    the second half's reversed), not stored and then copied by a piece kernel. Returns {its id:
    its access in the concat} and takes those reductions out of `mat`."""
    out: dict[int, Access] = {}
    for n in nodes:
        if n.op != "concat" or n.id not in mat:
            continue
        rm, dim, off = row_major(n.shape), n.attrs["dim"], 0
        for x in n.inputs:
            start = off * rm[dim]
            off += x.shape[dim]
            y = _stored_reduction(x)
            if y.op != "reduce" or y.id not in mat or y.id in outputs or y.id in epilogued or \
                    y.attrs["n"] != 1 or x.size == 0 or len(use.get(y.id, [])) != 1 or \
                    len(use.get(x.id, [])) != 1 or x.id in outputs or sum(i is x for i in n.inputs) != 1:
                continue
            first, strides = _reversed_strides(x.shape, x.attrs["dims"], rm) if x is not y else (0, rm)
            out[y.id] = Access(n, start + first, strides)  # (reversed: through negative strides)
    mat.difference_update(out)
    return out


def _piece_reads(k: Kernel, mat: set[int]) -> frozenset | None:
    """The elements a concat piece's kernel reads (its leaves' accesses) when it may share its
    loop with another piece reading the same ones, else None (so for a piece reading an iota or
    a constant too: not needed yet)."""
    r = k.root  # (a stored root is a copy of it, not computed here)
    if k.kind != "loop" or k.extra or k.dest.src.op != "concat" or r.id in mat:
        return None
    c = k.dest.src
    if r.op in VIEWS and c.shape[c.attrs["dim"]] == 2:
        # a pair of copies of the same walk over one stored node at other offsets: the real and
        # imaginary parts of a complex result (complex_split.interleave), or of a complex input
        # stacked (fft's (re, im) axis). One loop: lower.py reads such a pair by one dense read
        # and stores the parts of a complex result interleaved by one dense write (two kernels,
        # each writing every other element, took 2.2x as long: rfft2_1024's result)
        # (only the two pieces of one concat: they read one node, at offsets of their own)
        a = access_of(r, mat)
        return None if a is None or memoryless(a.src) else frozenset({("pair", c.id, a.src.id, a.strides)})
    if r.op not in ELEMENTWISE:
        return None
    out = set()
    for x in inline_tree(r, mat)[1]:
        a = access_of(x, mat)
        if a is None or memoryless(a.src):
            return None
        out.add((a.src.id, a.offset, a.strides))
    return frozenset(out)


def _merge_pieces(kernels: list[Kernel], mat: set[int]) -> list[Kernel]:
    """Concat pieces over the same shape that read the same elements (eigh's two rotated sides of
    each pair of vectors) become one loop kernel storing each piece through its own access, so
    their inputs are read once, not once a piece. The kernel takes the first piece's place: the
    others read nothing it does not."""
    first: dict[tuple, int] = {}
    out: list[Kernel] = []
    for k in kernels:
        key = _piece_reads(k, mat)
        j = first.get((k.shape, key)) if key is not None else None
        if j is not None and len(out[j].extra) + 1 < MAX_OUTPUTS:
            m = out[j]
            out[j] = replace(m, extra=m.extra + (k.dest,), extra_roots=m.roots()[1:] + (k.root,))
            continue
        if key is not None:
            first[(k.shape, key)] = len(out)
        out.append(k)
    return out


def _stores_through_transpose(nodes: list[Node], use: dict[int, list[Node]], mat: set[int],
                              outputs: set[int]) -> dict[int, tuple[Node, Access]]:
    """A product whose one reader is a stored transpose is written straight into the
    transpose's storage when its columns stay contiguous there (the matrix engine writes rows
    at any stride): attention's (heads, seq, dh) product stored as (seq, heads, dh) for the
    output projection. Returns {transpose id: (dot, the dot's access into that storage)}."""
    out: dict[int, tuple[Node, Access]] = {}
    for n in nodes:
        d = n.inputs[0] if n.op == "transpose" else None
        if d is None or n.id not in mat or d.op != "dot" or d.id not in mat or d.id in outputs or \
                len(use.get(d.id, [])) != 1:
            continue
        rm = row_major(n.shape)
        strides = [0] * len(d.shape)
        for i, p in enumerate(n.attrs["perm"]):
            strides[p] = rm[i]
        dest = Access(n, 0, tuple(strides))
        g = group_strides(d.shape, dest, dot_out_groups(d))
        if g is not None and g[2] in (0, 1):
            out[n.id] = (d, dest)
            mat.discard(d.id)
    return out


MAX_OUTPUTS = 4    # results of one multi-output loop kernel
MAX_SIBLINGS = 8   # results of one reduce kernel (each a value per row, kept in registers: eigh's two new pairs' sums)
MAX_OPERANDS = 12  # its stored inputs and outputs: each a stream of pages the host keeps in cache
STORES_MIN_ROWS = 64   # rows a reduction needs to take in loop kernels' stores (a work item a core of the n150)...
STORES_SMALL = 1 << 16  # ...unless the loop is this many elements at most


def _merges(k: Kernel) -> bool:
    """Whether k may share its loop with others: an elementwise result computed over its own
    shape and stored whole, row-major (so every output walks the iteration space alike); not an
    optimization barrier's copy (nothing is fused across one)."""
    r = k.root
    return k.kind == "loop" and r is k.dest.src and r.op not in VIEWS and r.op not in ("iota", "const") and \
        r.size > 0 and k.dest == base_access(r) and not r.attrs.get("barrier")


def _through_views(k: Kernel, mat: set[int]) -> set[int]:
    """The stored nodes k's expression reads through a view (at other indices than its own)."""
    out = set()
    for x in inline_tree(k.root, mat)[1]:
        if x.id not in mat and x.op in VIEWS:
            while x.id not in mat and x.op in VIEWS:
                x = x.inputs[0]
            out.add(x.id)
    return out


def _multi_output(kernels: list[Kernel], mat: set[int], keep: set[int]) -> list[Kernel]:
    """Multi-output fusion: elementwise kernels over the same shape that read a stored node in
    common become one loop kernel writing all their results, so that input is read from DRAM
    once (f(x, y) -> (x*y + 1, exp(x) - y): DRAM bytes = inputs + outputs). A kernel reading
    another's result at its own index (an output an elementwise consumer also reads, as Adam's
    new m and v in the parameter update) joins it too and takes that value from the loop rather
    than from DRAM. Work the results share is computed once (the emitter names each node
    once). Kernels are joined only when no other chain of kernels (merged ones included) leads
    from one to the other, so the kernel graph stays acyclic; the result is in topological
    order again, and a kernel's results are in the order they are computed. A stored result
    that only its own kernel reads is dropped from the stored set `mat` (`keep`: the graph's
    outputs, never dropped)."""
    writers: dict[int, list[int]] = {}  # stored node id -> indices of the kernels writing it (parts)
    readers: dict[int, list[int]] = {}  # stored node id -> indices of the kernels reading it
    for i, k in enumerate(kernels):
        for o in k.outputs:
            writers.setdefault(o.id, []).append(i)
        for r in k.reads:
            readers.setdefault(r.id, []).append(i)
    group = list(range(len(kernels)))  # kernel index -> its group's first kernel
    members: dict[int, list[int]] = {i: [i] for i in range(len(kernels))}

    def outputs(g: int) -> set[int]:
        return {o.id for m in members[g] for o in kernels[m].outputs}

    def reaches(g: int, t: int) -> bool:
        """Whether a chain of kernel groups leads from group g to kernel t, other than t
        reading g's results directly."""
        todo, seen = [g], {g}
        while todo:
            h = todo.pop()
            for m in members[h]:
                for o in kernels[m].outputs:
                    for j in readers.get(o.id, ()):
                        q = group[j]
                        if j == t and h == g:
                            continue  # the direct read, checked by the caller
                        if q == group[t]:
                            return True
                        if q not in seen:
                            seen.add(q)
                            todo.append(q)
        return False

    def operands(g: int) -> set[int]:
        return {n.id for m in members[g] for n in kernels[m].reads} | outputs(g)

    by_read: dict[int, list[int]] = {}  # stored node id -> groups of mergeable kernels reading or writing it
    for i, k in enumerate(kernels):
        if not _merges(k):
            continue
        for g in dict.fromkeys(g for r in k.reads for g in by_read.get(r.id, ())):
            direct = {r.id for r in k.reads} & outputs(g)
            if g != group[i] and kernels[g].shape == k.shape and len(members[g]) < MAX_OUTPUTS and \
                    len(operands(g) | operands(i)) <= MAX_OPERANDS and \
                    not direct & _through_views(k, mat) and not reaches(g, i):
                members[g].append(i)
                del members[i]
                group[i] = g
                break
        for n in (*k.reads, *k.outputs):
            lst = by_read.setdefault(n.id, [])
            if group[i] not in lst:
                lst.append(group[i])
    # a result only its own kernel reads (an intermediate stored because two kernels shared it)
    # is no longer stored: the roots reading it compute it, once (the last result of a kernel
    # always has readers outside it, or is a graph output)
    for g, ms in members.items():
        for m in ms[:-1] if len(ms) > 1 else ():
            o = kernels[m].root
            if o.id not in keep and readers.get(o.id) and \
                    all(group[j] == g for j in readers[o.id]):
                ms.remove(m)
                mat.discard(o.id)
    merged: dict[int, Kernel] = {}
    for g, ms in members.items():
        k = kernels[ms[0]]
        if len(ms) > 1 or ms[0] != g:
            k = replace(k, extra=tuple(kernels[m].dest for m in ms[1:]))
            k.reads = tuple(_reads(k, mat))
        merged[g] = k
    # topological order (stable): a group runs after the groups writing what it reads
    deps = {g: {group[w] for r in k.reads for w in writers.get(r.id, ())} - {g} for g, k in merged.items()}
    out: list[Kernel] = []
    done: set[int] = set()
    pending = sorted(members)
    while pending:
        g = next(g for g in pending if deps[g] <= done)
        pending.remove(g)
        done.add(g)
        out.append(merged[g])
    return out


def _sibling_key(k: Kernel) -> tuple | None:
    """What reductions may share k's loop must have alike: the reduced operand's shape, the axes,
    the result's shape and the stored nodes read; None when k takes no siblings (a column
    reduction, a variadic one, a combiner of more than one op, an epilogue)."""
    from .codegen import _simple_combiner  # (codegen reads fuse's accesses: imported here)
    r = k.root
    if k.kind != "reduce" or k.epilogue is not None or k.extra or r.attrs["n"] != 1 or not k.reads or \
            _simple_combiner(r.attrs["body"]) is None:
        return None
    shape, axes = r.inputs[0].shape, tuple(r.attrs["axes"])
    kept = [d for d in range(len(shape)) if d not in axes]
    if not axes or kept and max(kept) > max(axes) or 0 in shape:
        return None  # a column reduction walks kept strips: one result per strip only
    return shape, axes, r.shape, frozenset(n.id for n in k.reads)


def _sibling_reductions(kernels: list[Kernel], mat: set[int]) -> list[Kernel]:
    """Row reductions of one operand space reading the same stored nodes (eigh's |w_p|^2,
    |w_q|^2 and w_p^T w_q of each pair; sum(x) beside max(x)) become one reduce kernel with
    several results (`extra`, lower.lower_reduce), so the operands are read once, not once a
    result. The kernel takes the first one's place: the others read nothing written after it."""
    first: dict[tuple, int] = {}
    out: list[Kernel] = []
    for k in kernels:
        key = _sibling_key(k)
        j = first.get(key) if key is not None else None
        if j is not None and len(out[j].extra) + 1 < MAX_SIBLINGS and \
                len(key[3] | {o.id for o in (*out[j].outputs, k.writes)}) <= MAX_OPERANDS:
            m = replace(out[j], extra=out[j].extra + (k.dest,), extra_roots=out[j].roots()[1:] + (k.root,))
            m.reads = tuple(_reads(m, mat))
            out[j] = m
            continue
        if key is not None:
            first[key] = len(out)
        out.append(k)
    return out


def _stores_alongside(k: Kernel) -> bool:
    """Whether loop kernel k's results may be stored by a row reduction over its iteration space
    (lower.lower_reduce): elementwise values, each stored in runs along the last dim."""
    return k.kind == "loop" and k.epilogue is None and len(k.shape) > 0 and k.shape[-1] > 0 and \
        all(r.op in ELEMENTWISE and not r.attrs.get("barrier") for r in k.roots()) and \
        all(a.strides[-1] == 1 for a in (k.dest, *k.extra))


def _reductions_with_stores(kernels: list[Kernel], mat: set[int]) -> list[Kernel]:
    """A row reduction over the last dim and loop kernels over the reduced operand's shape that
    read the same stored nodes become one reduce kernel that also stores the loops' values
    (after its reductions in `extra`): eigh's move, storing the rotated vectors, and the next
    step's sums of products of those vectors are one kernel reading the vectors once. Reading
    the same nodes, written before either, neither reads what the other writes, so the kernel
    takes the place of the first of them."""
    loops: dict[tuple, list[int]] = {}
    for i, k in enumerate(kernels):
        if _stores_alongside(k):
            loops.setdefault((k.shape, frozenset(n.id for n in k.reads)), []).append(i)
    out: list[Kernel | None] = list(kernels)
    taken: set[int] = set()
    for i, k in enumerate(kernels):
        r = k.root
        if k.kind != "reduce" or k.epilogue is not None or not k.reads or \
                any(x.op != "reduce" or x.attrs["n"] != 1 for x in k.roots()):
            continue
        shape = r.inputs[0].shape
        rows = math.prod(shape[:-1])
        if tuple(r.attrs["axes"]) != (len(shape) - 1,) or rows < STORES_MIN_ROWS and rows * shape[-1] > STORES_SMALL:
            continue  # (a large loop split among a few rows' work items would leave cores idle)
        take = [j for j in loops.get((shape, frozenset(n.id for n in k.reads)), ()) if j not in taken]
        if not take:
            continue
        dests = [a for j in take for a in (kernels[j].dest, *kernels[j].extra)]
        roots = [x for j in take for x in kernels[j].roots()]
        if len({n.id for n in k.reads} | {o.id for o in k.outputs} | {a.src.id for a in dests}) > MAX_OPERANDS:
            continue
        m = replace(k, extra=k.extra + tuple(dests), extra_roots=k.roots()[1:] + tuple(roots))
        m.reads = k.reads
        at = min([i] + take)
        taken.update(take)
        for j in [i] + take:
            out[j] = None
        out[at] = m
    return [k for k in out if k is not None]


def dot_out_groups(d: Node) -> list[list[int]]:
    """The dims of a dot's result grouped as [batch, lhs free, rhs free]."""
    (lb, lf, _), (_, rf, _) = dot_groups(d)
    nb, nl = len(lb), len(lf)
    return [list(range(nb)), list(range(nb, nb + nl)), list(range(nb + nl, nb + nl + len(rf)))]


def _strip_same_order(x: Node) -> tuple[Node, list[Node]]:
    """x with reshapes and unit-dim broadcasts stripped (they keep the row-major element
    order), and the views stripped."""
    chain = []
    while x.op in ("reshape", "broadcast") and x.size == x.inputs[0].size and \
            (x.op == "reshape" or list(x.attrs["dims"]) == sorted(x.attrs["dims"])):
        chain.append(x)
        x = x.inputs[0]
    return x, chain


def _same_order(x: Node) -> Node:
    return _strip_same_order(x)[0]
