"""Pass 4: constant folding, algebraic identities, view canonicalization, CSE and dead code.

Folding and identities are rewrite patterns (PATTERNS), read per node op; facts about ops
(folds, commutativity, idempotence) come from the op table.

Dead code needs no work: graphs are walked from their outputs, so unreachable nodes vanish."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .graph import ELEMENTWISE, FLOATS, Graph, Node, broadcast, const, scalar_const, transpose
from .ops import OPS, fold
from .rewrite import rewrite

Rewrite = Callable[[Node], "Node | None"]


@dataclass(frozen=True)
class Pattern:
    """A rewrite for nodes whose op is in `ops`: the replacement, or None if it does not apply."""
    ops: frozenset[str]
    rewrite: Rewrite


class Patterns:
    """Rewrites node by node (like tinygrad's PatternMatcher, in plain Python): the first
    pattern for the node's op that returns a replacement wins."""

    def __init__(self, patterns: list[Pattern]):
        self.by_op: dict[str, list[Rewrite]] = {}
        for p in patterns:
            for op in p.ops:
                self.by_op.setdefault(op, []).append(p.rewrite)

    def __call__(self, n: Node) -> Node:
        for rw in self.by_op.get(n.op, ()):
            r = rw(n)
            if r is not None:
                return r
        return n


def _is(n: Node, v: float) -> bool:
    s = scalar_const(n)
    return s is not None and s.dtype.kind == "f" and float(s) == v and not np.signbit(s)


def _fold(n: Node) -> Node | None:
    """An elementwise op on scalar constants is a constant (its op table row folds it)."""
    vals = [scalar_const(i) for i in n.inputs]
    if not n.inputs or any(v is None for v in vals):
        return None
    r = fold(n, vals)
    return None if r is None else const(r, n.dtype, n.shape, n.loc)


def _mul_one(n: Node) -> Node | None:
    if n.dtype in FLOATS:
        if _is(n.inputs[1], 1.0):
            return n.inputs[0]
        if _is(n.inputs[0], 1.0):
            return n.inputs[1]
    return None


def _scaled_offset(n: Node) -> Node | None:
    """(a + c1) * c2 with c2 a power of two and a bounded is one FMA, a * c2 + c1 c2, with the
    same bits: scaling by 2^k commutes with rounding away from overflow and underflow (GELU's
    0.5 (1 + tanh(.)))."""
    from .ranges import value_range  # ranges reads the op table through graph
    if n.dtype != "f32" or n.inputs[0].op != "add":
        return None
    c2, c1 = scalar_const(n.inputs[1]), scalar_const(n.inputs[0].inputs[1])
    if c2 is None or c1 is None:
        return None
    c2, c1 = float(c2), float(c1)
    if not (np.isfinite(c2) and c2 != 0 and np.frexp(c2)[0] in (0.5, -0.5) and 2.0 ** -60 < abs(c2) < 2.0 ** 60
            and np.isfinite(c1) and (c1 == 0 or 2.0 ** -60 < abs(c1) < 2.0 ** 60)):
        return None
    a = n.inputs[0].inputs[0]
    lo, hi = value_range(a)
    if not (-2.0 ** 60 < lo and hi < 2.0 ** 60):
        return None
    return Node("fma", [a, const(c2, "f32", n.shape, n.loc), const(c1 * c2, "f32", n.shape, n.loc)],
                n.shape, n.dtype, {}, n.loc)


def _div_broadcast(n: Node) -> Node | None:
    """a / broadcast(b) = a * broadcast(1 / b): one division per element of b, not of a.
    XLA:CPU rewrites it the same way, so results (e.g. 7 / 3 = 2.3333335) match it."""
    a, b = n.inputs
    if n.dtype not in FLOATS or b.op != "broadcast":
        return None
    src = b.inputs[0]
    recip = Node("div", [const(1.0, src.dtype, src.shape, n.loc), src], src.shape, src.dtype, {}, n.loc)
    bc = Node("broadcast", [recip], b.shape, b.dtype, dict(b.attrs), b.loc)
    return Node("mul", [a, bc], n.shape, n.dtype, {}, n.loc)


def _select_same(n: Node) -> Node | None:
    return n.inputs[1] if n.inputs[1] is n.inputs[2] else None


def _select_nested(n: Node) -> Node | None:
    """select(p, a, select(p, b, c)) is select(p, a, c) (and the mirror image): ELU's
    select(x > 0, x, expm1(...)) around the select(x > 0, 0, expm1(x)) decompose makes."""
    p, a, b = n.inputs
    if b.op == "select" and b.inputs[0] is p:
        return Node("select", [p, a, b.inputs[2]], n.shape, n.dtype, dict(n.attrs), n.loc)
    if a.op == "select" and a.inputs[0] is p:
        return Node("select", [p, a.inputs[1], b], n.shape, n.dtype, dict(n.attrs), n.loc)
    return None


def _select_const(n: Node) -> Node | None:
    p = scalar_const(n.inputs[0])
    return None if p is None else (n.inputs[1] if bool(p) else n.inputs[2])


def _const_second(n: Node) -> Node | None:
    a, b = n.inputs
    if n.attrs.get("fast") or scalar_const(a) is None or scalar_const(b) is not None:
        return None
    return Node(n.op, [b, a], n.shape, n.dtype, dict(n.attrs), n.loc)


def _idempotent(n: Node) -> Node | None:
    return n.inputs[0] if n.inputs[0] is n.inputs[1] else None


def _convert_roundtrip(n: Node) -> Node | None:
    x = n.inputs[0]
    if x.op == "convert" and x.inputs[0].dtype == n.dtype and _widens(n.dtype, x.dtype):
        return x.inputs[0]  # x -> wider -> x is exact
    return None


def _broadcast(n: Node) -> Node | None:
    x = n.inputs[0]
    if x.op == "broadcast":  # compose: out dim of x's input j = dims[x.dims[j]]
        dims = tuple(n.attrs["dims"][d] for d in x.attrs["dims"])
        return Node("broadcast", [x.inputs[0]], n.shape, n.dtype, {"dims": dims}, n.loc)
    if x.op == "const" and x.size == 1 and x.shape:
        return const(x.attrs["value"].reshape(()), n.dtype, n.shape, n.loc)
    return None


def _reshape_reshape(n: Node) -> Node | None:
    x = n.inputs[0]
    return Node("reshape", [x.inputs[0]], n.shape, n.dtype, {}, n.loc) if x.op == "reshape" else None


def _view_of_scalar(n: Node) -> Node | None:
    """A view of a broadcast scalar constant is that scalar broadcast to the view's shape."""
    c = scalar_const(n.inputs[0])
    return None if c is None else const(c, n.dtype, n.shape, n.loc)


def _transpose_transpose(n: Node) -> Node | None:
    x = n.inputs[0]
    if x.op != "transpose":
        return None
    inner = x.attrs["perm"]
    perm = tuple(inner[p] for p in n.attrs["perm"])
    if perm == tuple(range(len(perm))):
        return x.inputs[0]
    return Node("transpose", [x.inputs[0]], n.shape, n.dtype, {"perm": perm}, n.loc)


def _trivial_reduce(n: Node) -> Node | None:
    """A reduce that combines nothing is elementwise: over no elements it is its init, over
    one element per result it is body(init, x) once (so a sum of -0.0 is +0.0, as in XLA)."""
    k = n.attrs["n"]
    xs, inits = n.inputs[:k], n.inputs[k:]
    sizes = [xs[0].shape[a] for a in n.attrs["axes"]]
    if 0 in sizes and n.size:
        return broadcast(inits[n.attrs["index"]], n.shape, ())
    if any(s != 1 for s in sizes):
        return None
    body: Graph = n.attrs["body"]
    if any(b.op not in ELEMENTWISE and b.op not in ("param", "const") for b in body.nodes()):
        return None
    # the body's scalar nodes, rebuilt at the result's shape
    env: dict[int, Node] = {}
    for b in body.params:
        i = b.attrs["index"]
        src = broadcast(inits[i], n.shape, ()) if i < k else \
            Node("reshape", [xs[i - k]], n.shape, xs[i - k].dtype, {}, n.loc)
        env[b.id] = src
    for b in body.nodes():
        if b.id in env:
            continue
        if b.op == "const":
            env[b.id] = broadcast(b, n.shape, ())
        else:
            env[b.id] = Node(b.op, [env[i.id] for i in b.inputs], n.shape, b.dtype, dict(b.attrs), n.loc)
    return env[body.outputs[n.attrs["index"]].id]


def _ops(*names: str) -> frozenset[str]:
    return frozenset(names)


# In order: for a node, the first pattern of its op that applies wins.
PATTERNS = Patterns([
    Pattern(frozenset(OPS), _fold),
    Pattern(_ops("mul"), _mul_one),
    Pattern(_ops("mul"), _scaled_offset),
    Pattern(_ops("div"), _div_broadcast),
    Pattern(_ops("select"), _select_same),
    Pattern(_ops("select"), _select_const),
    Pattern(_ops("select"), _select_nested),
    Pattern(frozenset(k for k, op in OPS.items() if op.commutative), _const_second),  # constants second
    Pattern(frozenset(k for k, op in OPS.items() if op.idempotent), _idempotent),
    Pattern(_ops("convert"), _convert_roundtrip),
    Pattern(_ops("broadcast"), _broadcast),
    Pattern(_ops("reshape"), _reshape_reshape),
    Pattern(_ops("reshape", "transpose", "slice", "reverse"), _view_of_scalar),
    Pattern(_ops("reduce"), _trivial_reduce),
    Pattern(_ops("transpose"), _transpose_transpose),
])


def _dot_dims(d: Node) -> tuple[int, int, int, int]:
    """A product's batch, contracting, lhs-free and rhs-free dim counts."""
    nb = len(d.attrs["lhs_batching_dimensions"])
    nc = len(d.attrs["lhs_contracting_dimensions"])
    return nb, nc, len(d.inputs[0].shape) - nb - nc, len(d.inputs[1].shape) - nb - nc


def transposed_dots(graph: Graph) -> Graph:
    """transpose(dot(a, b)) that swaps the two free-dim groups is dot(b, a): the matrix engine
    writes the product in the layout its one user wants (XLA's transpose folding), and the copy
    kernel is gone. Operand layouts are legalize's canonical [batch, free, contracting] and
    [batch, contracting, free], so both operands only get (view) transposes."""
    return _transposed_dots(graph, graph.nodes())


def _transposed_dots(graph: Graph, nodes: list[Node]) -> Graph:
    """transposed_dots given the graph's nodes (`Graph.nodes()`)."""
    turned = [n for n in nodes if n.op == "transpose" and n.inputs[0].op == "dot"]
    if not turned:
        return graph  # (most rounds: no transposed product, so no readers to count)
    # the readers of those products only (a reader reading one twice counts twice)
    reads = dict.fromkeys((n.inputs[0].id for n in turned), 0)
    for n in nodes:
        for i in n.inputs:
            if i.id in reads:
                reads[i.id] += 1
    outs = {o.id for o in graph.outputs}
    single = {i for i, c in reads.items() if c == 1 and i not in outs}

    def swaps(n: Node) -> bool:  # a transpose of a single-use product that swaps its free dims
        if n.op != "transpose" or n.inputs[0].id not in single:
            return False
        nb, nc, nl, nr = _dot_dims(n.inputs[0])
        return list(n.attrs["perm"]) == list(range(nb)) + list(range(nb + nl, nb + nl + nr)) + list(range(nb, nb + nl))
    if not any(swaps(n) for n in turned):
        return graph  # nothing to fold (most rounds): skip the rebuild

    def fold(n: Node) -> Node:
        if not swaps(n):
            return n
        d = n.inputs[0]
        a, b = d.inputs
        nb, nc, nl, nr = _dot_dims(d)
        batch = list(range(nb))
        b2 = transpose(b, batch + list(range(nb + nc, nb + nc + nr)) + list(range(nb, nb + nc)), n.loc)
        a2 = transpose(a, batch + list(range(nb + nl, nb + nl + nc)) + list(range(nb, nb + nl)), n.loc)
        attrs = {"lhs_batching_dimensions": tuple(batch), "rhs_batching_dimensions": tuple(batch),
                 "lhs_contracting_dimensions": tuple(range(nb + nr, nb + nr + nc)),
                 "rhs_contracting_dimensions": tuple(range(nb, nb + nc))}
        return Node("dot", [b2, a2], n.shape, d.dtype, attrs, d.loc)
    return rewrite(graph, fold)


def _widens(narrow: str, wide: str) -> bool:
    order = {"bf16": ("f32", "f64"), "f16": ("f32", "f64"), "f32": ("f64",)}
    return wide in order.get(narrow, ())


def _key(n: Node, bodies: dict[int, tuple]) -> tuple | None:
    """n's CSE key. `bodies`: id of a reduce body Graph -> (the body, its body_key), for one
    simplify call (a node rebuilt with new inputs keeps its body)."""
    if n.op == "param":
        return None
    if not n.attrs:  # (most nodes)
        return (n.op, n.dtype, n.shape, tuple([i.id for i in n.inputs]), ())
    attrs = []
    for k, v in sorted(n.attrs.items()):
        if isinstance(v, np.ndarray):
            if v.size > 64:
                return ("big-const", n.id)
            v = (v.dtype.str, v.shape, v.tobytes())
        elif isinstance(v, Graph):
            b = bodies.get(id(v))
            if b is None:  # (the body is kept with its key: its id is not reused meanwhile)
                b = bodies[id(v)] = (v, body_key(v))
            v = b[1]
        elif not isinstance(v, (int, float, str, bool, tuple, type(None))):
            v = id(v)
        attrs.append((k, v))
    return (n.op, n.dtype, n.shape, tuple([i.id for i in n.inputs]), tuple(attrs))


def body_key(g: Graph) -> tuple:
    """Structural identity of a reduce body, so equal reductions written twice are merged."""
    order = g.nodes()
    pos = {n.id: i for i, n in enumerate(order)}
    return tuple((n.op, n.dtype, tuple(pos[i.id] for i in n.inputs), n.attrs.get("index"),
                  n.attrs.get("dir"), n.attrs["value"].tobytes() if n.op == "const" else None)
                 for n in order) + (tuple(pos[o.id] for o in g.outputs),)


def cse(graph: Graph, keys: dict[int, tuple | None] | None = None, order: list[Node] | None = None,
        bodies: dict[int, tuple] | None = None) -> Graph:
    """Equal nodes (op, type, inputs, attributes) merged into the first one met. `keys`: node id ->
    its key, kept by the caller across rounds (a node not rebuilt keeps its key), and `bodies`
    the reduce bodies' keys likewise (see _key). `order`: the graph's nodes (`Graph.nodes()`)
    when the caller has them."""
    seen: dict[tuple, Node] = {}
    keys = {} if keys is None else keys
    bodies = {} if bodies is None else bodies

    def visit(n: Node) -> Node:
        k = keys.get(n.id, keys)  # (keys itself: not looked at yet)
        if k is keys:
            k = keys[n.id] = _key(n, bodies)
        if k is None:
            return n
        return seen.setdefault(k, n)
    return rewrite(graph, visit, order=order)


def simplify(graph: Graph) -> Graph:
    # Rounds to a fixed point. Most nodes come through a round as they were (same object, same
    # inputs), so what a round learns about them holds in the next: their CSE key, and that no
    # pattern applies to them (patterns read only the node and what it reads).
    keys: dict[int, tuple | None] = {}
    bodies: dict[int, tuple] = {}
    settled: set[int] = set()

    def patterns(n: Node) -> Node:
        if n.id in settled:
            return n
        r = PATTERNS(n)
        if r is n:
            settled.add(n.id)
        return r
    for round_ in range(3):
        # A graph whose outputs are the same nodes is the same graph (nodes are not changed in
        # place), so its node order is known: each round walks the graph once, not three times.
        nodes = graph.nodes()
        folded = _transposed_dots(graph, nodes)
        rewritten = rewrite(folded, patterns, order=nodes if folded is graph else None)
        same = folded is graph and _same_outputs(rewritten, graph)
        if same and round_ > 0:
            # a fixed point: the graph is the last round's CSE result, in which no two nodes
            # have one key (CSE merged them as it met them), so CSE would leave it as it is
            return rewritten
        new = cse(rewritten, keys, order=nodes if same else None, bodies=bodies)
        if _same_outputs(new, graph):
            return new  # a fixed point: nothing was rewritten
        graph = new
    return graph


def _same_outputs(a: Graph, b: Graph) -> bool:
    return all(x is y for x, y in zip(a.outputs, b.outputs))
