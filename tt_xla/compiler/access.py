"""Views as index maps. A kernel never copies for a broadcast, transpose, slice, reverse or
(most) reshapes: it reads the source buffer with an offset and one stride per iteration dim.
Iota is the same kind of thing: its value is an affine function of the index."""
from __future__ import annotations

from dataclasses import dataclass

from .graph import Node


@dataclass(frozen=True)
class Access:
    src: Node                  # a materialized node, or an iota node (then the value is the index)
    offset: int                # in elements
    strides: tuple[int, ...]   # elements per step of each dim of the viewed shape


def row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


def base_access(n: Node) -> Access:
    if n.op == "iota":
        st = [0] * len(n.shape)
        st[n.attrs["dim"]] = 1
        return Access(n, 0, tuple(st))
    return Access(n, 0, row_major(n.shape))


def apply_view(v: Node, a: Access) -> Access | None:
    """The access of view node v given the access of its input (None: not expressible)."""
    src_shape = v.inputs[0].shape
    if v.op == "broadcast":
        st = [0] * len(v.shape)
        for j, d in enumerate(v.attrs["dims"]):
            if src_shape[j] == v.shape[d]:
                st[d] = a.strides[j]
        return Access(a.src, a.offset, tuple(st))
    if v.op == "transpose":
        return Access(a.src, a.offset, tuple(a.strides[p] for p in v.attrs["perm"]))
    if v.op == "slice":
        off = a.offset + sum(s * t for s, t in zip(v.attrs["start"], a.strides))
        return Access(a.src, off, tuple(t * k for t, k in zip(a.strides, v.attrs["strides"])))
    if v.op == "reverse":
        st, off = list(a.strides), a.offset
        for d in v.attrs["dims"]:
            off += (src_shape[d] - 1) * st[d]
            st[d] = -st[d]
        return Access(a.src, off, tuple(st))
    if v.op == "windows":  # [window..., out...] of reduce_window: w * window_dilation + out * stride
        return Access(a.src, a.offset, tuple(t * d for t, d in zip(a.strides, v.attrs["wdil"])) +
                      tuple(t * s for t, s in zip(a.strides, v.attrs["strides"])))
    if v.op == "reshape":
        st = reshape_strides(src_shape, a.strides, v.shape)
        return None if st is None else Access(a.src, a.offset, st)
    raise AssertionError(v.op)


def reshape_strides(old: tuple[int, ...], strides: tuple[int, ...],
                    new: tuple[int, ...]) -> tuple[int, ...] | None:
    """Strides that view `old` (with `strides`) as shape `new`, or None if that needs a copy.
    Old and new dims are matched in groups of equal product; each old group must be one
    contiguous run, which the new group's dims then split."""
    if 0 in old or 0 in new:
        return row_major(new)
    o = [(d, s) for d, s in zip(old, strides) if d != 1]
    keep = [i for i, d in enumerate(new) if d != 1]
    nd = [new[i] for i in keep]
    out = [0] * len(new)
    i = j = 0
    while i < len(o) and j < len(nd):
        pi, pj, i2, j2 = o[i][0], nd[j], i + 1, j + 1
        while pi != pj:
            if pi < pj:
                pi *= o[i2][0]
                i2 += 1
            else:
                pj *= nd[j2]
                j2 += 1
        if any(o[k][1] != o[k + 1][1] * o[k + 1][0] for k in range(i, i2 - 1)):
            return None
        st = o[i2 - 1][1]
        for k in range(j2 - 1, j - 1, -1):
            out[keep[k]] = st
            st *= nd[k]
        i, j = i2, j2
    return tuple(out)


def collapse(shape: tuple[int, ...], vectors: list[tuple[int, ...]]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """Drop size-1 dims and merge neighbours that every access walks contiguously."""
    keep = [d for d, n in enumerate(shape) if n != 1]
    shp = [shape[d] for d in keep]
    vecs = [[v[d] for d in keep] for v in vectors]
    d = len(shp) - 2
    while d >= 0:
        if all(v[d] == v[d + 1] * shp[d + 1] for v in vecs):
            shp[d] *= shp[d + 1]
            del shp[d + 1]
            for v in vecs:
                v[d] = v[d + 1]
                del v[d + 1]
        d -= 1
    return tuple(shp), [tuple(v) for v in vecs]
