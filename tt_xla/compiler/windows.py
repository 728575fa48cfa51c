"""reduce_window and select_and_scatter in terms of the core ops (legalize builds these).

reduce_window is, as the StableHLO spec defines it, a reduce over the windows of the padded,
base-dilated operand: pad(x, init, low, high, interior = base_dilation - 1), then a `windows`
view (window dims ++ out dims, each an affine walk: out * stride + w * window_dilation, so no
copy) reduced over the window dims with the op's body. Its cumulative form (one dim's window
spans the whole dim, padded on one side: jnp.cumsum, cumprod, cummax, cummin, cumlogsumexp)
becomes a `scan` node instead: O(n) work per row (lower_scan.py), not O(n * window).

select_and_scatter (max pooling's gradient): a two-operand reduce over the windows of (operand,
flat position, -1 in the padding) picks, per window and in window order, the position its
select region chooses; a scatter then combines each source value into the result at that
position with the scatter region (windows without a position drop their value).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import indexing
from .graph import Graph, Node, broadcast, const, ew, scalar_const


def windows(x: Node, out: tuple[int, ...], wdims: tuple[int, ...], strides: tuple[int, ...],
            wdil: tuple[int, ...], loc: object) -> Node:
    """The view [window..., out...] of x: element (w, o) is x[o * stride + w * wdil]. Window dims
    first: the reduce over them is then a column reduction, whose DMA moves runs of the output's
    innermost dim (a pool's channels) rather than a window's few strided elements."""
    return Node("windows", [x], tuple(wdims) + tuple(out), x.dtype, {"strides": tuple(strides), "wdil": tuple(wdil)}, loc)


def _padded(x: Node, fill: Node, pad: np.ndarray, bdil: tuple[int, ...], loc: object) -> Node:
    if not pad.any() and all(b == 1 for b in bdil):
        return x
    low = tuple(int(v) for v in pad[:, 0])
    interior = tuple(b - 1 for b in bdil)
    shape = tuple(max(0, s + int(lo) + int(hi) + max(s - 1, 0) * it)
                  for s, (lo, hi), it in zip(x.shape, pad, interior))
    return Node("pad", [x, fill], shape, x.dtype, {"low": low, "interior": interior}, loc)


def _out_shape(pshape: tuple[int, ...], wdims, strides, wdil) -> tuple[int, ...]:
    return tuple(0 if p == 0 or (w - 1) * d + 1 > p else ((p - (w - 1) * d - 1) // s + 1)
                 for p, w, s, d in zip(pshape, wdims, strides, wdil))


def _scan_axis(x: Node, wdims, strides, bdil, wdil, pad: np.ndarray) -> tuple[int, bool] | None:
    """(axis, reverse) when the window is a cumulative one, else None."""
    if any(s != 1 for s in strides) or any(b != 1 for b in bdil) or any(d != 1 for d in wdil):
        return None
    big = [d for d, w in enumerate(wdims) if w != 1]
    if len(big) != 1:
        return None
    a = big[0]
    n = x.shape[a]
    if wdims[a] != n or any(pad[d].any() for d in range(len(wdims)) if d != a):
        return None
    if tuple(pad[a]) == (n - 1, 0):
        return a, False
    if tuple(pad[a]) == (0, n - 1):
        return a, True
    return None


def reduce_window(xs: list[Node], inits: list[Node], body: Graph, shapes: list[tuple[int, ...]], wdims, strides,
                  bdil, wdil, pad: np.ndarray, loc: object) -> list[Node]:
    n = len(xs)
    scan = _scan_axis(xs[0], wdims, strides, bdil, wdil, pad) if n == 1 else None
    if scan is not None and scalar_const(inits[0]) is not None and xs[0].size:
        a, rev = scan
        return [Node("scan", [xs[0], inits[0]], xs[0].shape, xs[0].dtype,
                     {"axis": a, "reverse": rev, "body": body}, loc)]
    rank = len(wdims)
    views = []
    for x, init in zip(xs, inits):
        p = _padded(x, init, pad, bdil, loc)
        out = _out_shape(p.shape, wdims, strides, wdil)
        if out != tuple(shapes[0]):
            raise UnsupportedError(f"reduce_window result {shapes[0]} does not match its window {out}",
                                   "stablehlo.reduce_window", loc)
        views.append(windows(p, out, wdims, strides, wdil, loc))
    axes = tuple(range(rank))
    return [Node("reduce", views + list(inits), tuple(shapes[i]), xs[i].dtype,
                 {"axes": axes, "body": body, "index": i, "n": n}, loc) for i in range(n)]


def _inline(region: Graph, args: list[Node]) -> list[Node]:
    """The region's outputs computed on `args` (scalar nodes of the enclosing body)."""
    env = {p.id: a for p, a in zip(region.params, args)}
    for m in region.nodes():
        if m.id not in env:
            env[m.id] = Node(m.op, [env[i.id] for i in m.inputs], m.shape, m.dtype, dict(m.attrs), m.loc)
    return [env[o.id] for o in region.outputs]


def select_and_scatter(x: Node, source: Node, init: Node, select: Graph, combine: Graph, wdims, strides,
                       pad: np.ndarray, loc: object) -> Node:
    rank = len(x.shape)
    if rank == 0:  # one window of one element: as a 1-element dim
        one = lambda n: Node("reshape", [n], (1,), n.dtype, {}, loc)
        r = select_and_scatter(one(x), one(source), init, select, combine, (1,), (1,), np.zeros((1, 2), np.int64), loc)
        return Node("reshape", [r], (), x.dtype, {}, loc)
    # the outer dims no window moves along (size 1, stride 1, no padding: a pool's batch) are the
    # scatter's batching dims, so windows of different coordinates there apply in parallel, each
    # item walking a contiguous slice; the selected position is a flat index over the other dims
    fixed = [wdims[d] == 1 and strides[d] == 1 and not pad[d].any() for d in range(rank)]
    nfree = next((d for d in range(rank) if not fixed[d]), rank - 1)
    free = list(range(nfree))
    moved = list(range(nfree, rank))
    msize = int(np.prod([x.shape[d] for d in moved], dtype=np.int64))
    it = "i32" if msize < 2 ** 31 - 1 else "i64"
    # each element's flat position among the moved dims, -1 in the padding (never selected)
    flat = None
    mstride = {d: int(np.prod([x.shape[e] for e in moved if e > d], dtype=np.int64)) for d in moved}
    for d in moved:
        term = Node("iota", [], x.shape, it, {"dim": d}, loc)
        if mstride[d] != 1:
            term = ew("mul", [term, const(mstride[d], it)], loc=loc)
        flat = term if flat is None else ew("add", [flat, term], loc=loc)
    flat = flat if flat is not None else const(0, it, x.shape, loc)
    ones = (1,) * rank
    px = _padded(x, const(0, x.dtype, (), loc), pad, ones, loc)
    pf = _padded(flat, const(-1, it, (), loc), pad, ones, loc)
    out = _out_shape(px.shape, wdims, strides, ones)
    if out != source.shape:
        raise UnsupportedError(f"select_and_scatter source {source.shape} does not match its windows {out}",
                               "stablehlo.select_and_scatter", loc)
    av, ai, xv, xi = (Node("param", [], (), dt, {"index": i}, loc) for i, dt in enumerate((x.dtype, it, x.dtype, it)))
    (keep,) = _inline(select, [av, xv])
    none_yet = Node("cmp", [ai, const(0, it)], (), "i1", {"dir": "LT", "total": False}, loc)
    valid = Node("cmp", [xi, const(0, it)], (), "i1", {"dir": "GE", "total": False}, loc)
    take = ew("or", [none_yet, ew("and", [valid, ew("not", [keep], loc=loc)], loc=loc)], loc=loc)
    body = Graph([av, ai, xv, xi], [Node("select", [take, xv, av], (), x.dtype, {}, loc),
                                    Node("select", [take, xi, ai], (), it, {}, loc)])
    axes = tuple(range(rank))
    views = [windows(px, out, wdims, strides, ones, loc), windows(pf, out, wdims, strides, ones, loc)]
    inits = [const(0, x.dtype, (), loc), const(-1, it, (), loc)]
    pos = Node("reduce", views + inits, out, it, {"axes": axes, "body": body, "index": 1, "n": 2}, loc)
    # a 1-component index into the moved dims flattened (a view of the result); -1 is skipped
    flat_shape = tuple(x.shape[:nfree]) + (int(np.prod(x.shape[nfree:], dtype=np.int64)),)
    idx = Node("reshape", [pos], out + (1,), it, {}, loc)
    base = broadcast(init, flat_shape, (), loc) if init.shape == () else Node("reshape", [init], flat_shape, x.dtype, {}, loc)
    dn = {"update_window_dims": (), "inserted_window_dims": (nfree,), "scatter_dims_to_operand_dims": (nfree,),
          "input_batching_dims": tuple(free), "scatter_indices_batching_dims": tuple(free), "index_vector_dim": rank}
    res = indexing.scatter(base, idx, source, dn, combine, loc)
    return Node("reshape", [res], x.shape, x.dtype, {}, loc)
