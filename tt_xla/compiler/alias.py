"""Input/output aliasing: whether a kernel may write a result over the memory of a value it reads.

The control stream uses it to write a loop body's result straight into its carried slot (as
XLA's buffer assignment aliases a while body's parameter and result) instead of into a fresh
slot copied over the carried one after the body. Writing over a value is safe at a kernel when
every other reader of the value has run before it, and the kernel itself reads the value at most
at the element it writes: element i of its iteration reads element i and nothing else. A kernel
reading other positions (a transpose, a reverse, a shifted slice, a gather, a reduction) could
read an element some other block of the same launch has already overwritten.
"""
from __future__ import annotations

import math

from .access import Access, apply_view, row_major
from .fuse import Kernel, access_of, memoryless
from .graph import ELEMENTWISE, VIEWS, Node


def _is_identity(a: Access, shape: tuple[int, ...]) -> bool:
    """Element i (row-major over `shape`) of the access is element i of its source."""
    return a.offset == 0 and all(s == t for s, t, d in zip(a.strides, row_major(shape), shape) if d > 1)


def _leaf_accesses(k: Kernel, mat: set[int]) -> list[Access] | None:
    """Every access through which the loop kernel k reads memory (or an iota), or None when some
    read is not an affine access (then nothing is assumed about it)."""
    out: list[Access] = []
    seen: set[int] = set()
    todo = [(r, True) for r in k.roots()]
    while todo:
        n, root = todo.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        if root and n.op in VIEWS:  # a stored view's kernel reads through the view
            a = access_of(n.inputs[0], mat)
            a = None if a is None else apply_view(n, a)
        elif (root or n.id not in mat) and n.op in ELEMENTWISE:
            todo.extend((i, False) for i in n.inputs)
            continue
        elif n.id in mat or memoryless(n) or n.op in VIEWS:
            a = access_of(n, mat)
        else:
            return None
        if a is None:
            return None
        out.append(a)
    return out


def writes_over(k: Kernel, out: Node, src: Node, mat: set[int]) -> bool:
    """Whether `k` may store `out` in `src`'s memory: k is an elementwise loop kernel storing
    `out` densely over its iteration space (in src's element size and count), and each read it
    makes of `src` is of the element it writes."""
    if k.kind != "loop" or k.epilogue is not None or out.size != src.size or \
            out.nbytes != src.nbytes or out.size != math.prod(k.shape):
        return False
    dests = [a for a in (k.dest, *k.extra) if a.src is out]
    if len(dests) != 1 or not _is_identity(dests[0], k.shape):
        return False
    reads = _leaf_accesses(k, mat)
    return reads is not None and all(_is_identity(a, k.shape) for a in reads if a.src is src)

