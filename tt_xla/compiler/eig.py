"""Eigensolvers: LAPACK ?syevd (`jnp.linalg.eigh`) and ?gesdd/?gesvd (`jnp.linalg.svd`, hence
`lstsq`, `pinv`, `matrix_rank`, `norm(ord=2)`) as StableHLO loops.

Like linalg.py, each custom_call becomes a private function written in ordinary StableHLO text,
verified and inlined with the call's location; nothing in the runtime knows about it. Both
routines are cyclic Jacobi methods in the parallel (round-robin) ordering: the indices are kept
as a top half and a bottom half, pair i is (top i, bottom i), so one step rotates n/2 disjoint
pairs of the whole batch at once with elementwise work on four half-size blocks; then a fixed
permutation (slices and a concat) moves to the next pairing. n - 1 steps are a sweep (every pair
once, and the permutation back to the identity); sweeps repeat (a while loop on the control
stream) until every matrix of the batch has converged. eigh sweeps a batch of 16 or more with
its dims last (see _syevd).

- eigh (two-sided Jacobi): A <- J^T A J zeroes a_pq for every pair; V <- V J. Eigenvalues are
  the diagonal, sorted ascending with their vectors, as LAPACK returns them.
- svd (one-sided Jacobi, Hestenes): W <- W J makes columns p and q of W orthogonal (the same
  rotation, computed from |w_p|^2, |w_q|^2, w_p . w_q); V <- V J. Singular values are the
  column norms, U the normalised columns, sorted descending. U is completed to an orthonormal
  basis (full_matrices, or zero singular values) by a Householder QR of it, emitted as the
  geqrf/orgqr custom_calls linalg.py expands. A wide matrix is done as its transpose.

Inputs are scaled by their largest magnitude (no overflow in the squares) and an odd n is
padded with a decoupled zero row/column. A matrix with a NaN or inf gets `info` 1, so jax's own
post-processing turns its results into NaN, as LAPACK's do. Complex targets (c/z: heevd,
gesdd, gesvd) run the same sweeps on the real and imaginary parts (see _syevd, _gesdd).
"""
from __future__ import annotations

import math
import re

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .linalg import _Fn, _module, _t, expansion

_TARGET = re.compile(r"lapack_([sdcz])(syevd|heevd|gesdd|gesvd)_ffi$")
MAX_SWEEPS = 30  # Jacobi converges quadratically: 6-12 sweeps in practice; this bounds a bad case
# Convergence: every off-diagonal entry (eigh: the off-diagonal norm) below this many ulps of
# the entries it couples; the rounding of one sweep leaves about that much behind.
_EPS = {"f32": 2.0 ** -23, "f64": 2.0 ** -52}
_PARTS = {"complex<f32>": "f32", "complex<f64>": "f64"}  # a complex matrix is worked on as two real ones
_LAST_FROM = 16  # eigh sweeps a batch of at least this many matrices with its dims last (see _syevd)


def handles(op: ir.Operation) -> bool:
    """Whether `op` is a LAPACK eigensolver custom_call this module expands (or refuses by name)."""
    return op.name == "stablehlo.custom_call" and bool(_TARGET.match(str(op.attributes.get("call_target_name", ""))))


def expand(op: ir.Operation, loc: ir.Location | None) -> ir.Function:
    """The function computing `op` (same operands and results), parsed from StableHLO text; every
    op in it (and any error about it) carries `loc`, the user's line of the call."""
    target = str(op.attributes.get("call_target_name"))
    kind, routine = _TARGET.match(target).groups()
    types = [v.type for v in op.operands]
    rtypes = [r.type for r in op.results]
    if len(types) != 1 or any(not isinstance(t, ir.TensorType) or any(d is None for d in t.shape)
                              for t in types + rtypes) or len(types[0].shape) < 2:
        raise UnsupportedError(f"{target} on operands of types {[str(t) for t in types]}", op.name, loc)
    a_t = types[0]
    if a_t.element != {"s": "f32", "d": "f64", "c": "complex<f32>", "z": "complex<f64>"}[kind]:
        raise UnsupportedError(f"{target} on {a_t.element}", op.name, loc)
    nb = int(dict(op.attributes.get("mhlo.frontend_attributes", {}) or {}).get("num_batch_dims", len(a_t.shape) - 2))
    if nb != len(a_t.shape) - 2:
        raise UnsupportedError(f"@{target} with {nb} batch dims on a rank-{len(a_t.shape)} operand", op.name, loc)
    cfg = op.attributes.get("mhlo.backend_config", {}) or {}
    flags = {k: chr(int(getattr(v, "value", v))) for k, v in dict(cfg).items()}
    if routine in ("syevd", "heevd"):
        if a_t.shape[-1] != a_t.shape[-2]:
            raise UnsupportedError(f"{target}: matrix of shape {list(a_t.shape)} is not square", op.name, loc)
        text = _syevd(a_t, flags)
    else:
        shape = tuple(a_t.shape)
        if len(rtypes) != 5 or tuple(rtypes[1].shape) != shape[:-2] + (min(shape[-2:]),):
            raise UnsupportedError(f"{target}: results {[str(t) for t in rtypes]} do not fit an operand {a_t}",
                                   op.name, loc)
        text = _gesdd(a_t, rtypes, flags)
    return expansion(text, f"<eig {target}>", op, loc)


# --------------------------------------------------------------------------- emitter
class _Em(_Fn):
    """linalg's emitter with one name counter shared by a function and all its regions, so names
    stay unique through nested loops; plus the few ops linalg's does not emit."""

    def __init__(self, parent: "_Em | None" = None) -> None:
        self.lines: list[str] = []
        self._count = parent._count if parent is not None else [0]

    @property
    def n(self) -> int:  # type: ignore[override]
        return self._count[0]

    @n.setter
    def n(self, v: int) -> None:
        self._count[0] = v

    def slice(self, x: str, shape: tuple[int, ...], el: str, axis: int, lo: int, hi: int, stride: int = 1) -> str:
        rng = ", ".join(f"{lo}:{hi}:{stride}" if d == axis else f"0:{s}" for d, s in enumerate(shape))
        out = shape[:axis] + (-(-(hi - lo) // stride),) + shape[axis + 1:]
        return self(f"stablehlo.slice {x} [{rng}] : ({_t(shape, el)}) -> {_t(out, el)}")

    def concat(self, parts: list[tuple[str, tuple[int, ...]]], el: str, axis: int) -> str:
        parts = [(x, s) for x, s in parts if s[axis]]
        if len(parts) == 1:
            return parts[0][0]
        out = list(parts[0][1])
        out[axis] = sum(s[axis] for _, s in parts)
        return self(f"stablehlo.concatenate {', '.join(x for x, _ in parts)}, dim = {axis} : "
                    f"({', '.join(_t(s, el) for _, s in parts)}) -> {_t(tuple(out), el)}")

    def reshape(self, x: str, src: tuple[int, ...], out: tuple[int, ...], el: str) -> str:
        return self(f"stablehlo.reshape {x} : ({_t(src, el)}) -> {_t(out, el)}")

    def convert(self, x: str, shape: tuple[int, ...], src: str, el: str) -> str:
        return self(f"stablehlo.convert {x} : ({_t(shape, src)}) -> {_t(shape, el)}")

    def pad(self, x: str, shape: tuple[int, ...], el: str, high: tuple[int, ...]) -> str:
        out = tuple(s + h for s, h in zip(shape, high))
        z = ", ".join("0" for _ in shape)
        return self(f"stablehlo.pad {x}, {self.const('0', el)}, low = [{z}], high = [{', '.join(map(str, high))}], "
                    f"interior = [{z}] : ({_t(shape, el)}, {_t((), el)}) -> {_t(out, el)}")

    def bc(self, x: str, src: tuple[int, ...], el: str, shape: tuple[int, ...], dims: tuple[int, ...]) -> str:
        return x if src == shape else self.bcast(x, src, el, shape, dims)

    def reduce_all(self, op: str, x: str, init: str, shape: tuple[int, ...], el: str, dims: tuple[int, ...]) -> str:
        if not dims:
            return x
        out = tuple(s for d, s in enumerate(shape) if d not in dims)
        return self(f"stablehlo.reduce({x} init: {self.const(init, el)}) applies stablehlo.{op} across dimensions = "
                    f"[{', '.join(map(str, dims))}] : ({_t(shape, el)}, {_t((), el)}) -> {_t(out, el)}")

    def transpose(self, x: str, shape: tuple[int, ...], el: str, perm: tuple[int, ...]) -> str:
        out = tuple(shape[p] for p in perm)
        dims = ", ".join(map(str, perm))
        return self(f"stablehlo.transpose {x}, dims = [{dims}] : ({_t(shape, el)}) -> {_t(out, el)}")

    def eye(self, shape: tuple[int, ...], el: str) -> str:
        r = len(shape)
        return self.convert(self.cmp("EQ", self.iota(shape, r - 2), self.iota(shape, r - 1), shape, "i32"),
                            shape, "i1", el)

    def sort_cols(self, key: str, xs: list[str], shape: tuple[int, ...], el: str, direction: str) -> list[str]:
        """Sorts the last dim of (key, *xs) by key (stable), `direction` LT ascending / GT descending."""
        self.n += 1
        tag = self.n
        s = _t((), el)
        t = ", ".join([_t(shape, el)] * (1 + len(xs)))
        args = ", ".join(f"%x{tag}_{i}{ab}: {s}" for i in range(1 + len(xs)) for ab in "ab")
        self.lines.append(
            f'%s{tag}:{1 + len(xs)} = "stablehlo.sort"({", ".join([key] + xs)}) <{{dimension = {len(shape) - 1} : i64, '
            f"is_stable = true}}> ({{\n   ^bb0({args}):\n"
            f"    %p{tag} = stablehlo.compare {direction}, %x{tag}_0a, %x{tag}_0b, FLOAT : ({s}, {s}) -> tensor<i1>\n"
            f"    stablehlo.return %p{tag} : tensor<i1>\n   }}) : ({t}) -> ({t})")
        return [f"%s{tag}#{i}" for i in range(1 + len(xs))]


def _while(f: _Em, carried: list[tuple[str, str]], cond, body) -> list[str]:
    """A stablehlo.while over `carried` (name, type) pairs; `cond(g, names)` emits the predicate,
    `body(g, names)` the new values, each into its own region."""
    f.n += 1
    tag = f.n
    args = [f"%a{tag}_{i}" for i in range(len(carried))]
    types = ", ".join(t for _, t in carried)
    c, g = _Em(f), _Em(f)
    p = cond(c, args)
    new = body(g, args)
    inits = ", ".join(f"{a} = {v}" for a, (v, _) in zip(args, carried))
    f.lines.append(
        f"%w{tag}:{len(carried)} = stablehlo.while({inits}) : {types}\n   cond {{\n    " + "\n    ".join(c.lines) +
        f"\n    stablehlo.return {p} : tensor<i1>\n   }} do {{\n    " + "\n    ".join(g.lines) +
        f"\n    stablehlo.return {', '.join(new)} : {types}\n   }}")
    return [f"%w{tag}#{i}" for i in range(len(carried))]


def _fori(f: _Em, n: int, carried: list[tuple[str, str]], body) -> list[str]:
    """`for j in range(n)` over `carried`; `body(g, j, names)` returns the new names."""
    def cond(c: _Em, a: list[str]) -> str:
        return c.cmp("LT", a[0], c.const(str(n), "i32"), (), "i32")

    def step(g: _Em, a: list[str]) -> list[str]:
        return [g.bin("add", a[0], g.const("1", "i32"), (), "i32")] + body(g, a[0], a[1:])

    return _while(f, [(f.const("0", "i32"), "tensor<i32>")] + carried, cond, step)[1:]


# --------------------------------------------------------------------------- Jacobi pieces
def _rotate_pairs(f: _Em, x: list[str], shape: tuple[int, ...], el: str, c: str, top_s: list[str],
                  bot_s: list[str], axis: int, last: bool = False) -> list[str]:
    """One step along `axis` (2h long, pair i is (i, h + i); c and the s's are [batch, h]): the
    pairs' rotation (J^T x for rows, x J for columns: slices i and h + i become c x_i - s x_h+i
    and s' x_i + c x_h+i), then the next pairing of the parallel ordering: index 0 stays, the
    others move one place round the cycle top 1 .. top h-1, bottom h-1 .. bottom 0, so after
    2h - 1 steps every pair has met once and the order is back where it started. The permuted
    result is written directly as a concat of rotated slices of `x`, so it is one fused kernel
    per piece. `x` is [x] for a real matrix, [re, im] for a complex one (then s and s' are
    [re, im] too: a complex rotation's s e^{i phi} and its conjugate). With `last` the batch dims
    come after the matrix's two (x [k, k, *batch], c [h, *batch]: see _syevd)."""
    r, h = len(shape), shape[axis] // 2
    bs = shape[2:] if last else shape[:-2]
    vax = 0 if last else r - 2  # the vectors' pair axis

    def vec(m: int) -> tuple[int, ...]:
        return (m,) + bs if last else bs + (m,)

    dims = (axis,) + tuple(range(2, r)) if last else tuple(range(r - 2)) + (axis,)

    def piece(lo: int, hi: int, top: bool) -> list[tuple[str, tuple[int, ...]]]:
        """Rows (or columns) lo..hi of the rotated top (bottom) half, per part."""
        part = list(shape)
        part[axis] = hi - lo
        part = tuple(part)
        cb, *sb = [f.bc(f.slice(v, vec(h), el, vax, lo, hi), vec(hi - lo), el, part, dims)
                   for v in [c] + (top_s if top else bot_s)]
        a = [f.slice(p, shape, el, axis, lo, hi) for p in x]
        b = [f.slice(p, shape, el, axis, h + lo, h + hi) for p in x]
        mul = lambda u, w: f.bin("multiply", u, w, part, el)  # noqa: E731
        other = b if top else a  # the part s multiplies: s x_h+i (top) or s' x_i (bottom)
        if len(x) == 1:
            so = [mul(sb[0], other[0])]
        else:  # (sr + i si)(or + i oi)
            so = [f.bin("subtract", mul(sb[0], other[0]), mul(sb[1], other[1]), part, el),
                  f.bin("add", mul(sb[0], other[1]), mul(sb[1], other[0]), part, el)]
        own = a if top else b
        return [(f.bin("subtract" if top else "add", mul(cb, o), w, part, el), part) for o, w in zip(own, so)]

    pieces = [piece(lo, hi, top) for lo, hi, top in _next_pairing(h)]
    return [f.concat([pc[i] for pc in pieces], el, axis) for i in range(len(x))]


def _next_pairing(h: int) -> list[tuple[int, int, bool]]:
    """The round-robin move as pieces (lo, hi, from the top half?) of the two halves, in order."""
    if h < 2:
        return [(0, h, True), (0, h, False)]
    order = [(0, 1, True), (0, 1, False), (1, h - 1, True), (1, h, False), (h - 1, h, True)]
    return [(lo, hi, top) for lo, hi, top in order if hi > lo]


def _rotation(f: _Em, pp: str, qq: str, pq: str, shape: tuple[int, ...], el: str) -> tuple[str, str, str]:
    """(c, s, t) of the Jacobi rotation zeroing pq of [[pp, pq], [pq, qq]] (Golub & Van Loan's
    sym.schur2): J = [[c, s], [-s, c]], J^T [[pp, pq], [pq, qq]] J diagonal, t = s / c, the
    smaller of the two angles; no rotation where pq is 0."""
    two = f.const("2", el, shape)
    one = f.const("1", el, shape)
    zero = f.const("0", el, shape)
    theta = f.bin("divide", f.bin("subtract", qq, pp, shape, el), f.bin("multiply", two, pq, shape, el), shape, el)
    big = f.cmp("GT", f.un("abs", theta, shape, el), f.const("1e15" if el == "f32" else "1e150", el, shape), shape, el)
    root = f.un("sqrt", f.bin("add", one, f.bin("multiply", theta, theta, shape, el), shape, el), shape, el)
    root = f.sel(big, f.un("abs", theta, shape, el), root, shape, el)  # sqrt(1 + theta^2) without overflow
    sign = f.sel(f.cmp("GE", theta, zero, shape, el), one, f.un("negate", one, shape, el), shape, el)
    t = f.bin("divide", sign, f.bin("add", f.un("abs", theta, shape, el), root, shape, el), shape, el)
    t = f.sel(f.cmp("EQ", pq, zero, shape, el), zero, t, shape, el)
    c = f.un("rsqrt", f.bin("add", one, f.bin("multiply", t, t, shape, el), shape, el), shape, el)
    return c, f.bin("multiply", t, c, shape, el), t


def _diag(f: _Em, x: str, shape: tuple[int, ...], el: str, axes: tuple[int, int] | None = None) -> str:
    """The diagonal of square [.., k, k] x, as [.., k] (a masked row sum: shapes stay static);
    `axes` name the matrix's row and column axes when they are not the last two."""
    r = len(shape)
    ra, ca = axes or (r - 2, r - 1)
    m = f.cmp("EQ", f.iota(shape, ra), f.iota(shape, ca), shape, "i32")
    return f.reduce("add", f.sel(m, x, f.const("0", el, shape), shape, el), f.const("0", el), shape, el, ca)


def _prepare(f: _Em, parts: list[str], shape: tuple[int, ...], el: str) -> tuple[list[str], str, str]:
    """(the matrix / scale with non-finite matrices zeroed, scale [batch], bad [batch] i1), the
    matrix as [x] or a complex one as [re, im]: scale is the largest magnitude of a part (1 for
    a zero matrix), so squares cannot overflow; bad marks a NaN or inf."""
    r = len(shape)
    bs = shape[:-2]
    mags = [f.reduce_all("maximum", f.un("abs", a, shape, el), "0", shape, el, (r - 2, r - 1)) for a in parts]
    amax = mags[0] if len(mags) == 1 else f.bin("maximum", mags[0], mags[1], bs, el)
    inf = f.const("0x7F800000" if el == "f32" else "0x7FF0000000000000", el, bs)
    bad = f.un("not", f.cmp("LT", amax, inf, bs, el), bs, "i1")  # NaN compares false too
    zero, one = f.const("0", el, bs), f.const("1", el, bs)
    scale = f.sel(f.bin("or", bad, f.cmp("EQ", amax, zero, bs, el), bs, "i1"), one, amax, bs, el)
    whole = tuple(range(r - 2))
    out = []
    for a in parts:
        x = f.bin("divide", a, f.bcast(scale, bs, el, shape, whole), shape, el)
        out.append(f.sel(f.bcast(bad, bs, "i1", shape, whole), f.const("0", el, shape), x, shape, el))
    return out, scale, bad


def _sweeps(f: _Em, carried: list[tuple[str, str]], k: int, step, converged) -> list[str]:
    """Jacobi sweeps of k - 1 steps each (k even) while `converged(g, names)` (an i1 scalar: the
    whole batch has converged) is false and fewer than MAX_SWEEPS ran."""
    if k < 2:
        return [v for v, _ in carried]

    def cond(c: _Em, a: list[str]) -> str:
        more = c.cmp("LT", a[0], c.const(str(MAX_SWEEPS), "i32"), (), "i32")
        return c.bin("and", more, c.un("not", a[1], (), "i1"), (), "i1")

    def body(g: _Em, a: list[str]) -> list[str]:
        new = _fori(g, k - 1, [(v, t) for v, (_, t) in zip(a[2:], carried)], step)
        return [g.bin("add", a[0], g.const("1", "i32"), (), "i32"), converged(g, new)] + new

    init = [(f.const("0", "i32"), "tensor<i32>"), (f.const("false", "i1"), "tensor<i1>")]
    return _while(f, init + carried, cond, body)[2:]


def _info(f: _Em, bad: str, bs: tuple[int, ...]) -> str:
    return f.sel(bad, f.const("1", "i32", bs), f.const("0", "i32", bs), bs, "i32")


# --------------------------------------------------------------------------- syevd (eigh)
def _syevd(a_t: ir.TensorType, flags: dict[str, str]) -> str:
    """LAPACK ?syevd / ?heevd: eigenvalues ascending and orthonormal eigenvectors (columns) of the
    symmetric (Hermitian) matrix the `uplo` triangle stands for, `info` per matrix. A complex
    matrix is worked on as its real and imaginary parts; each pair's rotation then first turns
    the phase of a_pq away (J = [[c, s e], [-s conj(e)], c]], e = a_pq / |a_pq|)."""
    shape, io = tuple(a_t.shape), a_t.element
    el = _PARTS.get(io, io)  # the real type the work is done in
    cplx = el != io
    bs, n, r = shape[:-2], shape[-1], len(shape)
    whole = tuple(range(r - 2))
    f = _Em()
    results = [_t(shape, io), _t(bs + (n,), el), _t(bs, "i32")]
    if 0 in shape:
        return _module([_t(shape, io)], results, f.lines,
                       ["%arg0", f.const("0", el, bs + (n,)), f.const("0", "i32", bs)])
    row, col = f.iota(shape, r - 2), f.iota(shape, r - 1)
    keep = f.cmp("GE" if flags.get("uplo", "L") == "L" else "LE", row, col, shape, "i32")
    if cplx:  # the Hermitian matrix: the other triangle conjugated, the diagonal's imaginary part ignored
        re = f(f"stablehlo.real %arg0 : ({_t(shape, io)}) -> {_t(shape, el)}")
        im = f(f"stablehlo.imag %arg0 : ({_t(shape, io)}) -> {_t(shape, el)}")
        parts = [f.sel(keep, re, f.transpose_last(re, shape, el), shape, el),
                 f.sel(keep, im, f.un("negate", f.transpose_last(im, shape, el), shape, el), shape, el)]
        parts[1] = f.sel(f.cmp("EQ", row, col, shape, "i32"), f.const("0", el, shape), parts[1], shape, el)
    else:
        parts = [f.sel(keep, "%arg0", f.transpose_last("%arg0", shape, el), shape, el)]
    x, scale, bad = _prepare(f, parts, shape, el)
    k = n + n % 2  # an odd n gets a zero row and column: it pairs with nothing (its rotations are I)
    h = k // 2
    ks = bs + (k, k)
    if k != n:
        x = [f.pad(p, shape, el, (0,) * (r - 2) + (1, 1)) for p in x]
    # A batch is swept with its dims last ([k, k, *batch]): every slice, row or column, is then
    # whole runs of `batch` contiguous numbers, where batch-first column pieces are short strided
    # runs (64 64x64 f32: 0.55x the host CPU time). A lone matrix, or a few (8 are faster
    # batch-first), stay batch-first, where a batch-last run would be too short.
    last = bool(bs) and math.prod(bs) >= _LAST_FROM
    if last:
        x = [f.transpose(p, ks, el, (r - 2, r - 1) + whole) for p in x]
        ks = (k, k) + bs
    ra, ca = (0, 1) if last else (r - 2, r - 1)  # the row and column axes
    va = 0 if last else r - 2  # the pair axis of per-pair vectors

    def vec(m: int) -> tuple[int, ...]:
        return (m,) + bs if last else bs + (m,)

    eye = f.convert(f.cmp("EQ", f.iota(ks, ra), f.iota(ks, ca), ks, "i32"), ks, "i1", el)
    v = [eye] + ([f.const("0", el, ks)] if cplx else [])
    hs, ds = vec(h), vec(k)
    tol2 = (k * _EPS[el]) ** 2
    nx = len(x)

    def step(g: _Em, j: str, cur: list[str]) -> list[str]:
        x, v, d = cur[:nx], cur[nx:2 * nx], cur[-1]
        # the pairs' off-diagonal entries: a strided slice of the flattened matrix (the
        # top-right block's diagonal), so nothing reads the whole matrix to find h numbers
        pq = [g.slice(g.reshape(p, ks, vec(k * k), el), vec(k * k), el, va, h, h + (h - 1) * (k + 1) + 1, k + 1)
              for p in x]
        pp, qq = g.slice(d, ds, el, va, 0, h), g.slice(d, ds, el, va, h, k)
        if cplx:
            mag = g.un("sqrt", g.bin("add", g.bin("multiply", pq[0], pq[0], hs, el),
                                     g.bin("multiply", pq[1], pq[1], hs, el), hs, el), hs, el)
            live = g.cmp("GT", mag, g.const("0", el, hs), hs, el)
            e = [g.sel(live, g.bin("divide", pq[0], mag, hs, el), g.const("1", el, hs), hs, el),
                 g.sel(live, g.bin("divide", pq[1], mag, hs, el), g.const("0", el, hs), hs, el)]
        else:
            mag = pq[0]
        c, s, t = _rotation(g, pp, qq, mag, hs, el)
        if cplx:
            se = [g.bin("multiply", s, e[0], hs, el), g.bin("multiply", s, e[1], hs, el)]
            sc = [se[0], g.un("negate", se[1], hs, el)]  # s conj(e)
            rows, cols = (se, sc), (sc, se)  # J^H x: s e and s conj(e); x J: the other way round
        else:
            rows = cols = ([s], [s])
        x = _rotate_pairs(g, _rotate_pairs(g, x, ks, el, c, *rows, ra, last), ks, el, c, *cols, ca, last)
        # the diagonal is carried apart, updated exactly (a_pp - t |a_pq|, a_qq + t |a_pq|, as
        # Jacobi codes do): x's own diagonal is never read, the rounding of the rotation
        # formula does not accumulate into the eigenvalues
        tp = g.bin("multiply", t, mag, hs, el)
        halves = {True: g.bin("subtract", pp, tp, hs, el), False: g.bin("add", qq, tp, hs, el)}
        d = g.concat([(g.slice(halves[top], hs, el, va, lo, hi), vec(hi - lo))
                      for lo, hi, top in _next_pairing(h)], el, va)
        return x + _rotate_pairs(g, v, ks, el, c, *cols, ca, last) + [d]

    def converged(g: _Em, cur: list[str]) -> str:
        x, d = cur[:nx], cur[-1]
        off_diag = g.cmp("NE", g.iota(ks, ra), g.iota(ks, ca), ks, "i32")
        offs = [g.reduce_all("add", g.sel(off_diag, g.bin("multiply", p, p, ks, el), g.const("0", el, ks), ks, el),
                             "0", ks, el, (ra, ca)) for p in x]
        off = offs[0] if nx == 1 else g.bin("add", offs[0], offs[1], bs, el)
        tot = g.bin("add", off, g.reduce("add", g.bin("multiply", d, d, ds, el), g.const("0", el), ds, el, va),
                    bs, el)
        more = g.cmp("GT", off, g.bin("multiply", g.const(repr(tol2), el, bs), tot, bs, el), bs, el)
        return g.un("not", g.reduce_all("or", more, "false", bs, "i1", whole), (), "i1")

    d = _diag(f, x[0], ks, el, (ra, ca))
    out = _sweeps(f, [(p, _t(ks, el)) for p in x + v] + [(d, _t(ds, el))], k, step, converged)
    v, w = out[nx:2 * nx], out[-1]
    if last:  # back to batch-first
        v = [f.transpose(p, ks, el, tuple(range(2, r)) + (0, 1)) for p in v]
        w = f.transpose(w, ds, el, tuple(range(1, r - 1)) + (0,))
        ks, ds = bs + (k, k), bs + (k,)
    if k != n:
        w = f.slice(w, bs + (k,), el, r - 2, 0, n)
        v = [f.slice(f.slice(p, ks, el, r - 2, 0, n), bs + (n, k), el, r - 1, 0, n) for p in v]
    w = f.bin("multiply", w, f.bcast(scale, bs, el, bs + (n,), whole), bs + (n,), el)
    keys, *v = f.sort_cols(f.bcast(w, bs + (n,), el, shape, whole + (r - 1,)), v, shape, el, "LT")
    w = f.reshape(f.slice(keys, shape, el, r - 2, 0, 1), bs + (1, n), bs + (n,), el)
    vec = f(f"stablehlo.complex {v[0]}, {v[1]} : {_t(shape, io)}") if cplx else v[0]
    return _module([_t(shape, io)], results, f.lines, [vec, w, _info(f, bad, bs)])


# --------------------------------------------------------------------------- gesdd / gesvd (svd)
def _gesdd(a_t: ir.TensorType, rtypes: list[ir.TensorType], flags: dict[str, str]) -> str:
    """LAPACK ?gesdd / ?gesvd: A = U diag(s) V^H, s descending, U [m, m] (mode A) or [m, k] (S),
    V^H [n, n] or [k, n]; mode N computes s only (U and V^H are left zero, jax ignores them). A
    complex matrix is worked on as its real and imaginary parts (each rotation turning the phase
    of w_p^H w_q away, as eigh's do)."""
    shape, io = tuple(a_t.shape), a_t.element
    el = _PARTS.get(io, io)
    cplx = el != io
    bs, m, n, r = shape[:-2], shape[-2], shape[-1], len(shape)
    whole = tuple(range(r - 2))
    kk = min(m, n)
    f = _Em()
    u_t, vt_t = rtypes[2], rtypes[3]
    results = [_t(shape, io), _t(bs + (kk,), el), str(u_t), str(vt_t), _t(bs, "i32")]
    mode = flags.get("mode", "A")
    if 0 in shape:
        return _module([_t(shape, io)], results, f.lines,
                       ["%arg0", f.const("0", el, bs + (kk,)), f.const("0", io, tuple(u_t.shape)),
                        f.const("0", io, tuple(vt_t.shape)), f.const("0", "i32", bs)])
    wide = m < n
    parts = [f(f"stablehlo.{p} %arg0 : ({_t(shape, io)}) -> {_t(shape, el)}") for p in ("real", "imag")] \
        if cplx else ["%arg0"]
    if wide:  # done as A^H
        parts = _adjoint(f, parts, shape, el)
    big = max(m, n)  # the working matrix is big x kk, tall
    ws = bs + (big, kk)
    x, scale, bad = _prepare(f, parts, ws, el)
    k = kk + kk % 2
    h = k // 2
    xs, vs, hs = bs + (big, k), bs + (k, k), bs + (h,)
    if k != kk:
        x = [f.pad(p, ws, el, (0,) * (r - 1) + (1,)) for p in x]
    v = [f.eye(vs, el)] + ([f.const("0", el, vs)] if cplx else [])
    tol2 = (big * _EPS[el]) ** 2
    nx = len(x)

    def step(g: _Em, j: str, cur: list[str]) -> list[str]:
        x, v = cur[:nx], cur[nx:]
        half = bs + (big, h)
        top = [g.slice(p, xs, el, r - 1, 0, h) for p in x]
        bot = [g.slice(p, xs, el, r - 1, h, k) for p in x]

        def dot(p: str, q: str) -> str:
            return g.reduce("add", g.bin("multiply", p, q, half, el), g.const("0", el), half, el, r - 2)

        def norm2(w: list[str]) -> str:
            return dot(w[0], w[0]) if nx == 1 else g.bin("add", dot(w[0], w[0]), dot(w[1], w[1]), hs, el)

        if cplx:  # w_p^H w_q = |gamma| e
            gr = g.bin("add", dot(top[0], bot[0]), dot(top[1], bot[1]), hs, el)
            gi = g.bin("subtract", dot(top[0], bot[1]), dot(top[1], bot[0]), hs, el)
            mag = g.un("sqrt", g.bin("add", g.bin("multiply", gr, gr, hs, el), g.bin("multiply", gi, gi, hs, el),
                                     hs, el), hs, el)
            live = g.cmp("GT", mag, g.const("0", el, hs), hs, el)
            e = [g.sel(live, g.bin("divide", gr, mag, hs, el), g.const("1", el, hs), hs, el),
                 g.sel(live, g.bin("divide", gi, mag, hs, el), g.const("0", el, hs), hs, el)]
        else:
            mag = dot(top[0], bot[0])
        c, s, _ = _rotation(g, norm2(top), norm2(bot), mag, hs, el)
        if cplx:  # W J: s conj(e) into the top column, s e into the bottom one
            se = [g.bin("multiply", s, e[0], hs, el), g.bin("multiply", s, e[1], hs, el)]
            cols = ([se[0], g.un("negate", se[1], hs, el)], se)
        else:
            cols = ([s], [s])
        return _rotate_pairs(g, x, xs, el, c, *cols, r - 1) + _rotate_pairs(g, v, vs, el, c, *cols, r - 1)

    def converged(g: _Em, cur: list[str]) -> str:
        x = cur[:nx]
        bd = ", ".join(map(str, whole))

        def gram(p: str, q: str) -> str:
            return g(f"stablehlo.dot_general {p}, {q}, batching_dims = [{bd}] x [{bd}], contracting_dims = "
                     f"[{r - 2}] x [{r - 2}] : ({_t(xs, el)}, {_t(xs, el)}) -> {_t(vs, el)}")

        gr = gram(x[0], x[0])
        g2 = g.bin("multiply", gr, gr, vs, el)
        if cplx:  # W^H W = Wr^T Wr + Wi^T Wi + i (Wr^T Wi - Wi^T Wr)
            gr = g.bin("add", gr, gram(x[1], x[1]), vs, el)
            gi = g.bin("subtract", gram(x[0], x[1]), gram(x[1], x[0]), vs, el)
            g2 = g.bin("add", g.bin("multiply", gr, gr, vs, el), g.bin("multiply", gi, gi, vs, el), vs, el)
        d = _diag(g, gr, vs, el)
        dd = g.bin("multiply", g.bcast(d, bs + (k,), el, vs, whole + (r - 2,)),
                   g.bcast(d, bs + (k,), el, vs, whole + (r - 1,)), vs, el)
        off = g.cmp("NE", g.iota(vs, r - 2), g.iota(vs, r - 1), vs, "i32")
        viol = g.cmp("GT", g2, g.bin("multiply", g.const(repr(tol2), el, vs), dd, vs, el), vs, el)
        more = g.reduce_all("or", g.bin("and", off, viol, vs, "i1"), "false", vs, "i1", tuple(range(r)))
        return g.un("not", more, (), "i1")

    out = _sweeps(f, [(p, _t(xs, el)) for p in x] + [(p, _t(vs, el)) for p in v], k, step, converged)
    x, v = out[:nx], out[nx:]
    sq = bs + (kk, kk)
    if k != kk:
        x = [f.slice(p, xs, el, r - 1, 0, kk) for p in x]
        v = [f.slice(f.slice(p, vs, el, r - 2, 0, kk), bs + (kk, k), el, r - 1, 0, kk) for p in v]
    sums = [f.reduce("add", f.bin("multiply", p, p, ws, el), f.const("0", el), ws, el, r - 2) for p in x]
    sv = f.un("sqrt", sums[0] if nx == 1 else f.bin("add", sums[0], sums[1], bs + (kk,), el), bs + (kk,), el)
    svb = f.bcast(sv, bs + (kk,), el, ws, whole + (r - 1,))
    live = f.cmp("GT", svb, f.const("0", el, ws), ws, el)
    u = [f.sel(live, f.bin("divide", p, svb, ws, el), f.const("0", el, ws), ws, el) for p in x]
    _, *u = f.sort_cols(svb, u, ws, el, "GT")
    keys, *v = f.sort_cols(f.bcast(sv, bs + (kk,), el, sq, whole + (r - 1,)), v, sq, el, "GT")
    sv = f.reshape(f.slice(keys, sq, el, r - 2, 0, 1), bs + (1, kk), bs + (kk,), el)
    sv = f.bin("multiply", sv, f.bcast(scale, bs, el, bs + (kk,), whole), bs + (kk,), el)
    info = _info(f, bad, bs)
    if mode == "N":
        return _module([_t(shape, io)], results, f.lines,
                       ["%arg0", sv, f.const("0", io, tuple(u_t.shape)), f.const("0", io, tuple(vt_t.shape)), info])
    ucols = big if mode == "A" else kk
    u = _complete(f, u, ws, el, ucols) if cplx else [_complete_qr(f, u[0], ws, el, ucols)]
    if wide:  # A^H = U' S V'^H: U = V', V^H = U'^H
        u, vt = v, _adjoint(f, u, bs + (big, ucols), el)
    else:
        vt = _adjoint(f, v, sq, el)

    def join(p: list[str], t: ir.TensorType) -> str:
        return f(f"stablehlo.complex {p[0]}, {p[1]} : {t}") if cplx else p[0]

    return _module([_t(shape, io)], results, f.lines, ["%arg0", sv, join(u, u_t), join(vt, vt_t), info])


def _adjoint(f: _Em, parts: list[str], shape: tuple[int, ...], el: str) -> list[str]:
    """The conjugate transpose of the last two dims of [x] or [re, im]."""
    t = [f.transpose_last(p, shape, el) for p in parts]
    out = shape[:-2] + (shape[-1], shape[-2])
    return t if len(t) == 1 else [t[0], f.un("negate", t[1], out, el)]


def _complete(f: _Em, u: list[str], shape: tuple[int, ...], el: str, cols: int) -> list[str]:
    """Complex `u` (parts [re, im]; orthonormal columns, or zero where the singular value is 0)
    made `cols` orthonormal columns by Gram-Schmidt (twice, for orthogonality to rounding):
    first u's own columns in place (column j stays u_j where u_j is a unit vector orthogonal to
    the ones before), then the standard basis vectors e_0 .. e_m-1 fill the empty columns, each
    taken when its residual is above 1 / sqrt(2m) (some always is while a column is empty: the
    residuals' squares sum to the number of missing dimensions)."""
    r = len(shape)
    bs, m, kk = shape[:-2], shape[-2], shape[-1]
    full, cs, col1 = bs + (m, cols), bs + (cols,), bs + (m, 1)
    whole = tuple(range(r - 2))
    # the candidates: u's columns, then the standard basis
    cand = [f.concat([(u[0], shape), (f.eye(bs + (m, m), el), bs + (m, m))], el, r - 1),
            f.concat([(u[1], shape), (f.const("0", el, bs + (m, m)), bs + (m, m))], el, r - 1)]
    call = bs + (m, kk + m)
    q0 = [f.const("0", el, full), f.const("0", el, full)]
    tau2 = 1.0 / (2 * m)  # the residual threshold, squared

    def step(g: _Em, j: str, cur: list[str]) -> list[str]:
        q = cur
        z = [g.const("0", "i32")] * (len(bs) + 1)
        w = [g.dslice(p, call, el, z + [j], col1) for p in cand]
        for _ in range(2):  # w -= Q (Q^H w)
            wb = [g.bcast(p, col1, el, full, tuple(range(r))) for p in w]
            # Q^H w per column: sum_a conj(q_a) w_a
            pr = g.reduce("add", g.bin("add", g.bin("multiply", q[0], wb[0], full, el),
                                       g.bin("multiply", q[1], wb[1], full, el), full, el), g.const("0", el),
                          full, el, r - 2)
            pi = g.reduce("add", g.bin("subtract", g.bin("multiply", q[0], wb[1], full, el),
                                       g.bin("multiply", q[1], wb[0], full, el), full, el), g.const("0", el),
                          full, el, r - 2)
            prb, pib = (g.bcast(p, cs, el, full, whole + (r - 1,)) for p in (pr, pi))
            # Q coefficient: (qr + i qi)(pr + i pi), summed over the columns
            sr = g.reduce("add", g.bin("subtract", g.bin("multiply", q[0], prb, full, el),
                                       g.bin("multiply", q[1], pib, full, el), full, el), g.const("0", el),
                          full, el, r - 1)
            si = g.reduce("add", g.bin("add", g.bin("multiply", q[0], pib, full, el),
                                       g.bin("multiply", q[1], prb, full, el), full, el), g.const("0", el),
                          full, el, r - 1)
            w = [g.bin("subtract", p, g.reshape(t, bs + (m,), col1, el), col1, el) for p, t in zip(w, (sr, si))]
        nrm = g.un("sqrt", g.reduce("add", g.bin("add", g.bin("multiply", w[0], w[0], col1, el),
                                                g.bin("multiply", w[1], w[1], col1, el), col1, el),
                                    g.const("0", el), col1, el, r - 2), bs + (1,), el)
        # the slot: column j for u's own columns, else the first empty one
        filled = g.reduce("add", g.bin("add", g.bin("multiply", q[0], q[0], full, el),
                                       g.bin("multiply", q[1], q[1], full, el), full, el), g.const("0", el),
                          full, el, r - 2)
        ci = g.iota(cs, r - 2)
        empty = g.sel(g.cmp("LT", filled, g.const("0.25", el, cs), cs, el), ci, g.const(str(cols), "i32", cs),
                      cs, "i32")
        first = g.reduce("minimum", empty, g.const(str(cols), "i32"), cs, "i32", r - 2)
        jb = g.bcast(j, (), "i32", bs, ())
        slot = g.sel(g.cmp("LT", jb, g.const(str(kk), "i32", bs), bs, "i32"), jb, first, bs, "i32")
        thresh = g.const(repr(tau2 ** 0.5), el, bs + (1,))
        take = g.reshape(g.cmp("GT", nrm, thresh, bs + (1,), el), bs + (1,), bs, "i1")
        put = g.bin("and", g.cmp("EQ", g.iota(full, r - 1), g.bcast(slot, bs, "i32", full, whole), full, "i32"),
                    g.bcast(take, bs, "i1", full, whole), full, "i1")
        nb = g.bcast(nrm, bs + (1,), el, full, whole + (r - 1,))
        return [g.sel(put, g.bin("divide", g.bcast(p, col1, el, full, tuple(range(r))), nb, full, el), qq,
                      full, el) for p, qq in zip(w, q)]

    return _fori(f, kk + m, [(p, _t(full, el)) for p in q0], step)


def _complete_qr(f: _Em, u: str, shape: tuple[int, ...], el: str, cols: int) -> str:
    """`u`'s (orthonormal or zero) columns, zero-padded to `cols`, made an orthonormal basis by a
    Householder QR (linalg.py's geqrf and orgqr): Q's column j is +-u_j where u_j is a unit vector
    orthogonal to the ones before it (the sign is R's diagonal's), any unit vector orthogonal to
    those before where u_j is zero."""
    r = len(shape)
    bs, m, kk = shape[:-2], shape[-2], shape[-1]
    full = bs + (m, cols)
    if cols != kk:
        u = f.pad(u, shape, el, (0,) * (r - 1) + (cols - kk,))
    pre = "s" if el == "f32" else "d"
    nb = f'mhlo.frontend_attributes = {{num_batch_dims = "{r - 2}"}}'
    f.n += 1
    qr = f"%q{f.n}"
    f.lines.append(f"{qr}:2 = stablehlo.custom_call @lapack_{pre}geqrf_ffi({u}) {{{nb}}} : ({_t(full, el)}) -> "
                   f"({_t(full, el)}, {_t(bs + (cols,), el)})")
    q = f(f"stablehlo.custom_call @lapack_{pre}orgqr_ffi({qr}#0, {qr}#1) {{{nb}}} : "
          f"({_t(full, el)}, {_t(bs + (cols,), el)}) -> {_t(full, el)}")
    d = _diag(f, f.slice(qr + "#0", full, el, r - 2, 0, cols), bs + (cols, cols), el)
    cs = bs + (cols,)
    sign = f.sel(f.cmp("LT", d, f.const("0", el, cs), cs, el), f.const("-1", el, cs), f.const("1", el, cs), cs, el)
    return f.bin("multiply", q, f.bcast(sign, cs, el, full, tuple(range(r - 2)) + (r - 1,)), full, el)
