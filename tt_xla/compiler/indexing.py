"""Gather, scatter and dynamic slices as two canonical core ops (legalize builds them; fuse
stores them; lower_indexing.py lowers them into the loop IR).

Every StableHLO form becomes one of:

  gather(operand, indices)           shape = batch_shape + window_shape
  scatter(operand, indices, updates) shape = operand's; updates laid out batch_shape + window_shape

where `batch_shape` is the indices' shape without its index-vector dim, and the window is the
operand dims `window` (in order) with sizes `sizes[d]`. attrs:
  ivd        index_vector_dim of `indices` (== rank: one implicit component)
  start_map  for each index-vector component, the operand dim it starts
  batching   (operand dim, indices dim) pairs: the operand dim takes the batch coordinate
  window     operand dims in the window (the others have size 1 in `sizes`)
  sizes      slice/window size per operand dim
  mode       'clamp' (gather, dynamic_*: starts clamped into range, as the spec says) or
             'skip' (scatter: an update window that does not fit is dropped, as XLA does)
  body       scatter only: the update region as a scalar Graph of (current, update)

The StableHLO result layout (offset/update window dims at any position) is a transpose view of
the canonical one, so it costs no copy.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .graph import BITS, Graph, Node, toposort, transpose


def _dims(dn: dict, *keys: str) -> list[tuple[int, ...]]:
    """Dimension-number lists (an absent one is empty)."""
    return [tuple(int(d) for d in dn.get(k, ())) for k in keys]


def _canonical_perm(rank: int, window_dims: tuple[int, ...]) -> list[int]:
    """The dims of a StableHLO gather result / scatter updates tensor, ordered
    [batch dims..., window dims...] (each group in increasing order)."""
    batch = [d for d in range(rank) if d not in window_dims]
    return batch + list(window_dims)


def gather(operand: Node, indices: Node, dn: dict, slice_sizes: tuple[int, ...], shape: tuple[int, ...],
           loc: object) -> Node:
    offset_dims, collapsed, obatch, ibatch, start_map = _dims(dn, "offset_dims", "collapsed_slice_dims",
                                                              "operand_batching_dims", "start_indices_batching_dims",
                                                              "start_index_map")
    ivd = int(dn.get("index_vector_dim", 0))  # the attribute omits 0
    window = tuple(d for d in range(len(operand.shape)) if d not in collapsed and d not in obatch)
    batch_shape = tuple(s for d, s in enumerate(indices.shape) if d != ivd)
    canon = batch_shape + tuple(slice_sizes[d] for d in window)
    perm = _canonical_perm(len(shape), offset_dims)
    if tuple(canon) != tuple(shape[d] for d in perm):
        raise UnsupportedError(f"gather result {shape} does not match its dimension numbers", "stablehlo.gather", loc)
    g = Node("gather", [operand, indices], canon, operand.dtype,
             {"ivd": ivd, "start_map": start_map, "batching": tuple(zip(obatch, ibatch)), "window": window,
              "sizes": tuple(slice_sizes), "mode": "clamp"}, loc)
    return transpose(g, [int(v) for v in np.argsort(perm)], loc)


def scatter(operand: Node, indices: Node, updates: Node, dn: dict, body: Graph, loc: object) -> Node:
    uwd, inserted, obatch, ibatch, start_map = _dims(dn, "update_window_dims", "inserted_window_dims",
                                                     "input_batching_dims", "scatter_indices_batching_dims",
                                                     "scatter_dims_to_operand_dims")
    ivd = int(dn.get("index_vector_dim", 0))
    window = tuple(d for d in range(len(operand.shape)) if d not in inserted and d not in obatch)
    perm = _canonical_perm(len(updates.shape), uwd)
    u = transpose(updates, perm, loc)
    wshape = u.shape[len(u.shape) - len(uwd):]
    sizes = [1] * len(operand.shape)
    for d, s in zip(window, wshape):
        sizes[d] = s
    return Node("scatter", [operand, indices, u], operand.shape, operand.dtype,
                {"ivd": ivd, "start_map": start_map, "batching": tuple(zip(obatch, ibatch)), "window": window,
                 "sizes": tuple(sizes), "mode": "skip", "body": body}, loc)


def start_vector(starts: list[Node], loc: object) -> Node:
    """dynamic_slice's scalar start operands as one index vector (i64, so any integer types mix)."""
    parts = []
    for s in starts:
        s64 = s if s.dtype == "i64" else Node("convert", [s], (), "i64", {}, loc)
        parts.append(Node("reshape", [s64], (1,), "i64", {}, loc))
    return parts[0] if len(parts) == 1 else Node("concat", parts, (len(parts),), "i64", {"dim": 0}, loc)


def dynamic_slice(x: Node, starts: list[Node], sizes: tuple[int, ...], loc: object) -> Node:
    if not x.shape:
        return x
    rank = len(x.shape)
    return Node("gather", [x, start_vector(starts, loc)], tuple(sizes), x.dtype,
                {"ivd": 0, "start_map": tuple(range(rank)), "batching": (), "window": tuple(range(rank)),
                 "sizes": tuple(sizes), "mode": "clamp"}, loc)


def dynamic_update_slice(x: Node, update: Node, starts: list[Node], loc: object) -> Node:
    if not x.shape:
        return update
    rank = len(x.shape)
    cur, new = (Node("param", [], (), x.dtype, {"index": i}, loc) for i in range(2))
    return Node("scatter", [x, start_vector(starts, loc), update], x.shape, x.dtype,
                {"ivd": 0, "start_map": tuple(range(rank)), "batching": (), "window": tuple(range(rank)),
                 "sizes": update.shape, "mode": "clamp", "body": Graph([cur, new], [new])}, loc)


def _container(dtypes: list[str]) -> str:
    """One element type that holds every operand's bits: theirs when they agree, else the
    widest unsigned integer (bool as a byte)."""
    if len(set(dtypes)) == 1:
        return dtypes[0]
    return f"ui{max(8, *(BITS[d] for d in dtypes))}"


def _pack(x: Node, c: str, loc: object) -> Node:
    """x's bits in container type c (zero-extended)."""
    if x.dtype == c:
        return x
    if x.dtype == "i1":
        return Node("convert", [x], x.shape, c, {}, loc)
    u = f"ui{BITS[x.dtype]}"
    b = x if x.dtype == u else Node("bitcast", [x], x.shape, u, {}, loc)
    return b if u == c else Node("convert", [b], x.shape, c, {}, loc)


def _unpack(x: Node, dt: str, loc: object) -> Node:
    """The inverse of _pack: a container value back to dt."""
    if x.dtype == dt:
        return x
    if dt == "i1":
        return Node("convert", [x], x.shape, dt, {}, loc)
    u = f"ui{BITS[dt]}"
    n = x if x.dtype == u else Node("convert", [x], x.shape, u, {}, loc)
    return n if dt == u else Node("bitcast", [n], x.shape, dt, {}, loc)


def _packed_region(body: Graph, dtypes: list[str], c: str) -> Graph:
    """The update region over container values: params unpacked to their types, results packed."""
    if all(d == c for d in dtypes):
        return body
    params = [Node("param", [], (), c, {"index": i}, p.loc) for i, p in enumerate(body.params)]
    new = {p.id: _unpack(q, dtypes[i % len(dtypes)], p.loc) for i, (p, q) in enumerate(zip(body.params, params))}
    for n in toposort(body.outputs, body.params):
        if n.id not in new:
            new[n.id] = Node(n.op, [new[i.id] for i in n.inputs], n.shape, n.dtype, dict(n.attrs), n.loc)
    return Graph(params, [_pack(new[o.id], c, o.loc) for o in body.outputs])


def scatter_many(operands: list[Node], indices: Node, updates: list[Node], dn: dict, body: Graph,
                 loc: object) -> list[Node]:
    """A scatter of N operands (the region maps N current values and N updates to N results):
    one scatter over the operands stacked along a new last dim (interleaved, in a container type
    when their types differ), whose kernel applies the region to the N values of an element at
    once (attrs['stack'] = N); the results are that dim's slices."""
    nops = len(operands)
    dts = [x.dtype for x in operands]
    c = _container(dts)
    rank, urank = len(operands[0].shape), len(updates[0].shape)

    def stack(xs: list[Node]) -> Node:
        parts = [Node("reshape", [_pack(x, c, loc)], x.shape + (1,), c, {}, loc) for x in xs]
        return Node("concat", parts, xs[0].shape + (nops,), c, {"dim": len(xs[0].shape)}, loc)
    dn = dict(dn)
    dn["update_window_dims"] = tuple(int(d) for d in dn.get("update_window_dims", ())) + (urank,)
    s = scatter(stack(operands), indices, stack(updates), dn, _packed_region(body, dts, c), loc)
    s.attrs["stack"] = nops
    outs = []
    for j, dt in enumerate(dts):
        sl = Node("slice", [s], s.shape[:-1] + (1,), c, {"start": (0,) * rank + (j,), "strides": (1,) * (rank + 1)}, loc)
        outs.append(_unpack(Node("reshape", [sl], s.shape[:-1], c, {}, loc), dt, loc))
    return outs
