"""chlo.ragged_dot: a dot_general whose lhs has one ragged dimension, cut into consecutive groups
by `group_sizes` (ChloOps.td). Three modes, by the kind of the ragged dimension:

1. a free (non-contracting) lhs dim m: [b, m, k] x [g, b, k, n] -> [b, m, n]; the rows of group j
   are multiplied by rhs group j (rows past the last group are 0);
2. a contracting dim k: [b, m, k] x [b, k, n] -> [g, b, m, n]; result j sums group j's k only;
3. a batch dim: an ordinary dot_general (the groups only partition the batch).

Modes 1 and 2 are one dot_general per group on the lhs masked to the group's range (a select on
an iota against the groups' running starts and ends), as CHLO's own legalization to StableHLO
writes it: so a masked-out row still meets inf/NaN in the other operand as 0 * inf, like
jax's CPU lowering. G products of the full size: fine for the few groups of a mixture of experts."""
from __future__ import annotations

from typing import Any

from ..errors import UnsupportedError
from .graph import Node, broadcast, const, ew


def ragged_dot(lhs: Node, rhs: Node, sizes: Node, dn: dict, shape: tuple[int, ...], dt: str, opname: str,
               loc: Any) -> Node:
    from .legalize import _ints, dot_general
    lb, rb, lc, rc, ragged, group = (list(_ints(dn.get(k, ()))) for k in (
        "lhs_batching_dimensions", "rhs_batching_dimensions", "lhs_contracting_dimensions",
        "rhs_contracting_dimensions", "lhs_ragged_dimensions", "rhs_group_dimensions"))
    if len(ragged) != 1 or len(group) > 1:
        raise UnsupportedError("ragged_dot needs one lhs ragged dimension and at most one rhs group "
                               "dimension", opname, loc)
    (r,) = ragged
    g = sizes.shape[-1]
    if r in lb:  # mode 3
        return dot_general(lhs, rhs, lb, rb, lc, rc, shape, dt, loc)
    # group j covers [start_j, end_j) of the ragged dim: running sums of the sizes, unrolled
    # over the (few) groups; a sizes tensor with leading batch dims gives per-batch ranges
    batch_of_sizes = sizes.shape[:-1]
    cuts = [const(0, sizes.dtype, batch_of_sizes, loc)]
    for j in range(g):
        size_j = Node("reshape", [Node("slice", [sizes], batch_of_sizes + (1,), sizes.dtype,
                                       {"start": (0,) * len(batch_of_sizes) + (j,),
                                        "strides": (1,) * (len(batch_of_sizes) + 1)}, loc)],
                      batch_of_sizes, sizes.dtype, {}, loc)
        cuts.append(ew("add", [cuts[-1], size_j], loc=loc))
    pos = Node("iota", [], lhs.shape, sizes.dtype, {"dim": r}, loc)
    zero = const(0, lhs.dtype, lhs.shape, loc)

    def masked(j: int) -> Node:
        lo, hi = (broadcast(c, lhs.shape, tuple(lb[:len(batch_of_sizes)]), loc) for c in (cuts[j], cuts[j + 1]))
        inside = ew("and", [ew("cmp", [lo, pos], loc=loc, dir="LE", total=False),
                            ew("cmp", [pos, hi], loc=loc, dir="LT", total=False)], loc=loc)
        return ew("select", [inside, lhs, zero], loc=loc)
    if r in lc:  # mode 2: result j over group j's contracting range, stacked in front
        one = shape[1:]
        parts = [Node("reshape", [dot_general(masked(j), rhs, lb, rb, lc, rc, one, dt, loc)], (1,) + one, dt, {}, loc)
                 for j in range(g)]
        return parts[0] if g == 1 else Node("concat", parts, shape, dt, {"dim": 0}, loc)
    if len(group) != 1:
        raise UnsupportedError("ragged_dot with a ragged free dimension needs an rhs group dimension", opname, loc)
    (gd,) = group
    drop = lambda ds: [d - (d > gd) for d in ds]  # noqa: E731  (rhs dims once the group dim is sliced away)
    out = None
    for j in range(g):
        start = tuple(j if d == gd else 0 for d in range(len(rhs.shape)))
        sl = Node("slice", [rhs], tuple(1 if d == gd else s for d, s in enumerate(rhs.shape)), rhs.dtype,
                  {"start": start, "strides": (1,) * len(rhs.shape)}, loc)
        rhs_j = Node("reshape", [sl], tuple(s for d, s in enumerate(rhs.shape) if d != gd), rhs.dtype, {}, loc)
        term = dot_general(masked(j), rhs_j, lb, drop(rb), lc, drop(rc), shape, dt, loc)
        out = term if out is None else ew("add", [out, term], loc=loc)
    return out if out is not None else const(0, dt, shape, loc)
