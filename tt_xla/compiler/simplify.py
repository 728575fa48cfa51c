"""Pass 4: constant folding, algebraic identities, view canonicalization, CSE and dead code.

Dead code needs no work: graphs are walked from their outputs, so unreachable nodes vanish."""
from __future__ import annotations

import numpy as np

from .graph import ELEMENTWISE, FLOATS, INTS, Graph, Node, broadcast, const, np_dtype, scalar_const, transpose, users
from .rewrite import rewrite

_FOLD = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
    "neg": np.negative, "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
    "round_even": np.rint, "sqrt": np.sqrt, "and": np.bitwise_and, "or": np.bitwise_or,
    "xor": np.bitwise_xor,
}
_CMP = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
        "GT": np.greater, "GE": np.greater_equal}


def _fold(n: Node) -> Node | None:
    vals = [scalar_const(i) for i in n.inputs]
    if not n.inputs or any(v is None for v in vals):
        return None
    dt = np_dtype(n.dtype)
    wide = [np.asarray(v, np.float32) if n.dtype in ("bf16", "f16") else v for v in vals]
    with np.errstate(all="ignore"):
        if n.op in _FOLD and (n.dtype in FLOATS or n.op in ("add", "sub", "mul", "max", "min", "neg",
                                                           "abs", "and", "or", "xor")):
            if n.dtype in INTS and n.op in ("add", "sub", "mul", "neg"):
                r = _FOLD[n.op](*[v.astype(np.int64) for v in vals])  # wraps below
            else:
                r = _FOLD[n.op](*wide)
        elif n.op == "cmp" and not n.attrs["total"]:
            r = _CMP[n.attrs["dir"]](*wide)
        elif n.op == "select":
            r = vals[1] if bool(vals[0]) else vals[2]
        elif n.op == "convert" and not (n.inputs[0].dtype in FLOATS and n.dtype not in FLOATS):
            r = vals[0]
        elif n.op == "div" and n.dtype in FLOATS:
            r = np.divide(*wide)
        else:
            return None
        r = np.asarray(r).astype(dt) if n.dtype not in INTS else np.asarray(r).astype(np.int64).astype(dt)
    return const(r, n.dtype, n.shape, n.loc)


def _is(n: Node, v: float) -> bool:
    s = scalar_const(n)
    return s is not None and s.dtype.kind == "f" and float(s) == v and not np.signbit(s)


def _simplify(n: Node) -> Node:
    folded = _fold(n) if n.op not in ("const", "broadcast", "param", "iota") else None
    if folded is not None:
        return folded
    ins = n.inputs
    if n.op == "mul" and n.dtype in FLOATS:
        if _is(ins[1], 1.0):
            return ins[0]
        if _is(ins[0], 1.0):
            return ins[1]
    if n.op == "div" and n.dtype in FLOATS and ins[1].op == "broadcast":
        # a / broadcast(b) = a * broadcast(1 / b): one division per element of b, not of a.
        # XLA:CPU rewrites it the same way, so results (e.g. 7 / 3 = 2.3333335) match it.
        b = ins[1]
        src = b.inputs[0]
        recip = Node("div", [const(1.0, src.dtype, src.shape, n.loc), src], src.shape, src.dtype, {}, n.loc)
        bc = Node("broadcast", [recip], b.shape, b.dtype, dict(b.attrs), b.loc)
        return Node("mul", [ins[0], bc], n.shape, n.dtype, {}, n.loc)
    if n.op == "select" and ins[1] is ins[2]:
        return ins[1]
    if n.op == "select" and scalar_const(ins[0]) is not None:
        return ins[1] if bool(scalar_const(ins[0])) else ins[2]
    if n.op in ("add", "mul", "max", "min", "and", "or", "xor") and not n.attrs.get("fast") and \
            scalar_const(ins[0]) is not None and scalar_const(ins[1]) is None:
        return Node(n.op, [ins[1], ins[0]], n.shape, n.dtype, dict(n.attrs), n.loc)  # const second
    if n.op in ("max", "min") and ins[0] is ins[1]:
        return ins[0]
    if n.op == "convert" and ins[0].op == "convert" and ins[0].inputs[0].dtype == n.dtype \
            and _widens(n.dtype, ins[0].dtype):
        return ins[0].inputs[0]  # x -> wider -> x is exact
    if n.op == "broadcast":
        x = ins[0]
        if x.op == "broadcast":  # compose: out dim of x's input j = dims[x.dims[j]]
            dims = tuple(n.attrs["dims"][d] for d in x.attrs["dims"])
            return Node("broadcast", [x.inputs[0]], n.shape, n.dtype, {"dims": dims}, n.loc)
        if x.op == "const" and x.size == 1 and x.shape:
            return const(x.attrs["value"].reshape(()), n.dtype, n.shape, n.loc)
    if n.op == "reshape" and ins[0].op == "reshape":
        return Node("reshape", [ins[0].inputs[0]], n.shape, n.dtype, {}, n.loc)
    if n.op == "reshape" and scalar_const(ins[0]) is not None:
        return const(scalar_const(ins[0]), n.dtype, n.shape, n.loc)
    if n.op in ("transpose", "slice", "reverse") and scalar_const(ins[0]) is not None:
        return const(scalar_const(ins[0]), n.dtype, n.shape, n.loc)
    if n.op == "reduce":
        r = _trivial_reduce(n)
        if r is not None:
            return r
    if n.op == "transpose" and ins[0].op == "transpose":
        inner = ins[0].attrs["perm"]
        perm = tuple(inner[p] for p in n.attrs["perm"])
        if perm == tuple(range(len(perm))):
            return ins[0].inputs[0]
        return Node("transpose", [ins[0].inputs[0]], n.shape, n.dtype, {"perm": perm}, n.loc)
    return n


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


def transposed_dots(graph: Graph) -> Graph:
    """transpose(dot(a, b)) that swaps the two free-dim groups is dot(b, a): the matrix engine
    writes the product in the layout its one user wants (XLA's transpose folding), and the copy
    kernel is gone. Operand layouts are legalize's canonical [batch, free, contracting] and
    [batch, contracting, free], so both operands only get (view) transposes."""
    nodes = graph.nodes()
    use = users(nodes)
    outs = {o.id for o in graph.outputs}
    single = {n.id for n in nodes if n.op == "dot" and n.id not in outs and len(use[n.id]) == 1}

    def fold(n: Node) -> Node:
        if n.op != "transpose" or n.inputs[0].id not in single:
            return n
        d = n.inputs[0]
        a, b = d.inputs
        nb = len(d.attrs["lhs_batching_dimensions"])
        nc = len(d.attrs["lhs_contracting_dimensions"])
        nl = len(a.shape) - nb - nc
        nr = len(b.shape) - nb - nc
        batch = list(range(nb))
        if list(n.attrs["perm"]) != batch + list(range(nb + nl, nb + nl + nr)) + list(range(nb, nb + nl)):
            return n
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


def _key(n: Node) -> tuple | None:
    if n.op == "param":
        return None
    attrs = []
    for k, v in sorted(n.attrs.items()):
        if isinstance(v, np.ndarray):
            if v.size > 64:
                return ("big-const", n.id)
            v = (v.dtype.str, v.shape, v.tobytes())
        elif isinstance(v, Graph):
            v = body_key(v)
        elif not isinstance(v, (int, float, str, bool, tuple, type(None))):
            v = id(v)
        attrs.append((k, v))
    return (n.op, n.dtype, n.shape, tuple(i.id for i in n.inputs), tuple(attrs))


def body_key(g: Graph) -> tuple:
    """Structural identity of a reduce body, so equal reductions written twice are merged."""
    order = g.nodes()
    pos = {n.id: i for i, n in enumerate(order)}
    return tuple((n.op, n.dtype, tuple(pos[i.id] for i in n.inputs), n.attrs.get("index"),
                  n.attrs.get("dir"), n.attrs["value"].tobytes() if n.op == "const" else None)
                 for n in order) + (tuple(pos[o.id] for o in g.outputs),)


def cse(graph: Graph) -> Graph:
    seen: dict[tuple, Node] = {}

    def visit(n: Node) -> Node:
        k = _key(n)
        if k is None:
            return n
        return seen.setdefault(k, n)
    return rewrite(graph, visit)


def simplify(graph: Graph) -> Graph:
    for _ in range(3):
        new = cse(rewrite(transposed_dots(graph), _simplify))
        if all(a is b for a, b in zip(new.outputs, graph.outputs)):
            return new  # a fixed point: nothing was rewritten
        graph = new
    return graph
