"""Eigensolvers: LAPACK ?syevd (`jnp.linalg.eigh`) and ?gesdd/?gesvd (`jnp.linalg.svd`, hence
`lstsq`, `pinv`, `matrix_rank`, `norm(ord=2)`) as StableHLO loops.

Like linalg.py, each custom_call becomes a private function written in ordinary StableHLO text,
verified and inlined with the call's location; nothing in the runtime knows about it. Both
routines are one-sided (Hestenes) Jacobi in a parallel ordering: one step rotates n/2 disjoint
pairs of vectors of the whole batch at once (w_p, w_q made orthogonal by the rotation computed
from |w_p|^2, |w_q|^2 and w_p^H w_q), with elementwise work on half-size blocks, written
straight into the next pairing's order by a fixed permutation (a concat of rotated pieces).
n - 1 steps are a sweep (every pair once, and the permutation back to the identity); sweeps
repeat (a while loop on the control stream) until every matrix of the batch has its vectors
orthogonal. The ordering is the round robin (_RoundRobin: pair i is (top i, bottom i), a move
of five pieces) or, for eigh's stack of a power-of-two count (at least 4), the Singer ordering
(_Singer: pair i is (2i, 2i + 1); one kernel moves the vectors and sums the next step's pairs).

- eigh: the vectors are the columns of W = (A + mu I) V, mu above A's spectral radius, so
  they end as sigma_j v_j and V needs no carrying (see _syevd); one step of Ogita-Aishima
  refinement (matrix products) then brings the vectors and eigenvalues to A's rounding, two
  Newton-Schulz steps V (3I - V^H V) / 2 make V orthonormal to rounding, and they are sorted
  ascending, as LAPACK returns them.
- svd: W <- W J on A's columns and V <- V J; then one Newton-Schulz step makes V orthonormal
  to rounding and W is recomputed as A V. Singular values are the column norms, U the
  normalised columns, sorted descending. U is completed to an orthonormal basis
  (full_matrices, or zero singular values) by a Householder QR of it, emitted as the
  geqrf/orgqr custom_calls linalg.py expands. A wide matrix is done as its transpose.

Inputs are scaled by their largest magnitude (no overflow in the squares) and an odd n is
padded with a decoupled zero row/column. A matrix with a NaN or inf gets `info` 1, so jax's own
post-processing turns its results into NaN, as LAPACK's do. Complex targets (c/z: heevd,
gesdd, gesvd) run the same sweeps on the real and imaginary parts (see _syevd, _gesdd).
"""
from __future__ import annotations

import math
import re
from typing import Callable

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .linalg import _Fn, _if, _module, _t, expansion

_TARGET = re.compile(r"lapack_([sdcz])(syevd|heevd|gesdd|gesvd)_ffi$")
UNROLL = 9  # Jacobi steps a loop iteration (63 = 7 x 9 for n = 64)
ORTHO_STEPS = 2  # Newton-Schulz steps after eigh's refinement (see _syevd)
ORTHO_AGAIN = 1e-5  # ... and one more where the last started further than this from orthonormal
# A sweep in which some pair was rotated by more than about this angle (|w_p^H w_q| above it
# times |w_p| |w_q| when visited) leaves the vectors far from orthogonal (quadratic convergence:
# about its square), so the test after it (a Gram product) is skipped; the last one or two
# sweeps' rotations are far smaller.
QUIET = 1e-2
MAX_SWEEPS = 30  # Jacobi converges quadratically: 6-12 sweeps in practice; this bounds a bad case
# Convergence: every pair's |w_p^H w_q| below this many ulps (times k) of |w_p| |w_q|; the
# rounding of one sweep leaves about that much behind.
_EPS = {"f32": 2.0 ** -23, "f64": 2.0 ** -52}
_PARTS = {"complex<f32>": "f32", "complex<f64>": "f64"}  # a complex matrix is worked on as two real ones


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

    def region(self, prefix: str) -> "_Em":  # (linalg._if's branches: the shared counter names them)
        return _Em(self)

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

    def stored(self, x: str, shape: tuple[int, ...], el: str) -> str:
        """`x` computed once into memory of its own (an optimization barrier): what reads it then
        reads it row-major, not through the view or expression `x` is made of."""
        return self(f"stablehlo.optimization_barrier {x} : {_t(shape, el)}")

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
def _rotated(f: _Em, own: list[str], other: list[str], cb: str, sb: list[str], top: bool,
             part: tuple[int, ...], el: str) -> list[str]:
    """A pair's rotation applied to one side, per part: c x_p - s x_q for the pair's first vector
    (`top`), s' x_p + c x_q for its second (`own` is the side's vector, `other` its partner; s
    and s' are [re, im] for a complex rotation)."""
    def mul(u: str, w: str) -> str:
        return f.bin("multiply", u, w, part, el)

    if len(own) == 1:
        so = [mul(sb[0], other[0])]
    else:  # (sr + i si)(or + i oi)
        so = [f.bin("subtract", mul(sb[0], other[0]), mul(sb[1], other[1]), part, el),
              f.bin("add", mul(sb[0], other[1]), mul(sb[1], other[0]), part, el)]
    return [f.bin("subtract" if top else "add", mul(cb, o), w, part, el) for o, w in zip(own, so)]


# A side of the pairs' new values, computed in a piece's shape from inputs seen through `view`
# (a half-shaped name -> that name in the piece): one elementwise node per part.
Side = Callable[[bool, Callable[[str], str], tuple[int, ...]], list[str]]


class _RoundRobin:
    """The parallel (round-robin) ordering for any even count 2h of vectors: pair i is (i, h + i)
    (the top and bottom halves); after a step index 0 stays and the others move one place round
    the cycle top 1 .. top h-1, bottom h-1 .. bottom 0, so after 2h - 1 steps every pair has met
    once and the order is back where it started. The move is a concat of five pieces.

    Along `axis` of `shape`, index i is the `unit` rows i unit .. (i + 1) unit (eigh's stack:
    one per matrix of the batch); with `unit` 1, the leading dims are a batch (svd)."""

    def half(self, shape: tuple[int, ...], axis: int, unit: int) -> tuple[int, ...]:
        """The shape of one side of the pairs (of `halves`): `shape` with `axis` halved."""
        return shape[:axis] + (shape[axis] // 2,) + shape[axis + 1:]

    def pair_dims(self, shape: tuple[int, ...], axis: int, unit: int) -> tuple[int, ...]:
        """The dims of `half(shape)` a per-pair value ([batch, h] or, stacked, [h unit]) spans."""
        return tuple(range(len(shape) - 2)) + (axis,) if unit == 1 else (axis,)

    def halves(self, f: _Em, p: str, shape: tuple[int, ...], el: str, axis: int, unit: int) -> tuple[str, str]:
        """(the pairs' first vectors, their second ones): views of `p`, each of shape `half`."""
        n = shape[axis]
        return f.slice(p, shape, el, axis, 0, n // 2), f.slice(p, shape, el, axis, n // 2, n)

    def follow(self, f: _Em, side: Side, half: tuple[int, ...], el: str, axis: int, unit: int) -> list[str]:
        """The pairs' new vectors (per part) in the next pairing's order, each piece of the move
        computed by `side` from views of its inputs, so one fused kernel per piece."""
        pieces = []
        for lo, hi, top in _next_pairing(half[axis] // unit):
            part = half[:axis] + ((hi - lo) * unit,) + half[axis + 1:]
            pieces.append((side(top, lambda v, lo=lo, hi=hi: f.slice(v, half, el, axis, lo * unit, hi * unit), part),
                           part))
        return [f.concat([(vs[i], part) for vs, part in pieces], el, axis) for i in range(len(pieces[0][0]))]


def _next_pairing(h: int) -> list[tuple[int, int, bool]]:
    """The round-robin move as pieces (lo, hi, from the top half?) of the two halves, in order."""
    if h < 2:
        return [(0, h, True), (0, h, False)]
    order = [(0, 1, True), (0, 1, False), (1, h - 1, True), (1, h, False), (h - 1, h, True)]
    return [(lo, hi, top) for lo, hi, top in order if hi > lo]


class _Singer:
    """An ordering for k = 2^m vectors (m >= 2) whose move is one kernel that also computes the
    next step's dot products. Pair j is places (2j, 2j + 1) (P_j, Q_j); after a step the pairs'
    first vectors take places 0 .. h-1 in order (h = k/2), their second ones places h .. 2h-1
    with the place's bits in `flip` toggled. As a map of places that is
    p -> (p >> 1) ^ (p odd ? h | flip : 0), a linear map over GF(2)^m chosen (`singer_flip`) to
    cycle every nonzero place through all 2^m - 1 of them (a Singer cycle: multiplication by a
    primitive element of GF(2^m), in a bit-reversed basis). So the vectors paired at step t are
    those whose numbers differ by M^-t (1), a different difference each step: over 2^m - 1 steps
    every pair meets once and the order is back where it started.

    The next step's pairs are made of this step's pairs two by two: new pair J (< h/2) is the
    first vectors of pairs 2J and 2J + 1, new pair h/2 + (J ^ flip >> 1) their second ones. So
    one loop over J computes the four rotated vectors of pairs 2J, 2J + 1, stores them, and sums
    the products of the two new pairs they make (|w_p|^2, |w_q|^2, w_p^H w_q): the move and the
    next step's sums are one kernel reading the vectors once (fuse._reductions_with_stores), and
    a step is two launches (that one and the rotations' c, s).

    Only eigh's stack uses it: the vectors along axis 0 of [k U, M], U rows each (the batch).
    Rows are kept as [4, 2, .., 2, U, M]: place bits (m-1, 0, m-2, .., 1) outermost first, so
    the four kinds of place (top or bottom half, even or odd) are the four pieces of the move's
    concat, each ordered by its place's bits m-2..1; a bit the move toggles is a dim of 2 the
    piece is stored reversed along. Per-pair values (the sums, c, s) are [2, .., 2, U]: pair j's
    bits m-2..0, then the batch."""

    def __init__(self, k: int) -> None:
        self.m = k.bit_length() - 1
        self.flip = singer_flip(self.m)
        self.bits = (self.m - 1, 0) + tuple(range(self.m - 2, 0, -1))  # the carry's place bits, outermost first

    def carry(self, unit: int, n: int) -> tuple[int, ...]:
        return (4,) + (2,) * (self.m - 2) + (unit, n)

    def sums_shape(self, unit: int) -> tuple[int, ...]:
        return (2,) * (self.m - 1) + (unit,)

    def _turn(self, f: _Em, x: str, unit: int, n: int, el: str, to_carry: bool) -> str:
        """[k U, n] in place order (bits m-1 .. 0) -> the carry (`bits` order), or back."""
        m = self.m
        split = (2,) * m + (unit, n)
        perm = [m - 1 - b for b in self.bits]  # the place-order dim of each carry dim
        src, dst = (2 ** m * unit, n), self.carry(unit, n)
        if not to_carry:
            perm, src, dst = [perm.index(d) for d in range(m)], dst, src
        return f.reshape(f.transpose(f.reshape(x, src, split, el), split, el, tuple(perm) + (m, m + 1)), split,
                         dst, el)

    def to_carry(self, f: _Em, x: str, unit: int, n: int, el: str) -> str:
        return self._turn(f, x, unit, n, el, True)

    def from_carry(self, f: _Em, x: str, unit: int, n: int, el: str) -> str:
        return self._turn(f, x, unit, n, el, False)

    def pick(self, f: _Em, x: str, fixed: dict[int, int], unit: int, n: int, el: str,
             shape: tuple[int, ...]) -> str:
        """The vectors of carry `x` whose place bits in `fixed` have those values, a view of
        `shape` (the other bits, most significant first: bit 0 fixed, their dims keep their
        order)."""
        bits = (2,) * self.m + (unit, n)
        v = f.reshape(x, self.carry(unit, n), bits, el)
        cur = bits
        for bit, val in fixed.items():
            d = self.bits.index(bit)
            v = f.slice(v, cur, el, d, val, val + 1)
            cur = cur[:d] + (1,) + cur[d + 1:]
        return f.reshape(v, cur, shape, el)

    def sums(self, f: _Em, x: list[str], unit: int, n: int, el: str) -> list[str]:
        """(|P_j|^2, |Q_j|^2, P_j^H Q_j as [re] or [re, im]) of every pair of carry `x`."""
        shape = (2,) * (self.m - 1) + (unit, n)
        p, q = ([self.pick(f, v, {0: e}, unit, n, el, shape) for v in x] for e in (0, 1))
        return [_norm2(f, p, shape, el), _norm2(f, q, shape, el)] + _dots(f, p, q, shape, el)

    def step(self, f: _Em, x: list[str], sums: list[str], hits: str, unit: int, n: int,
             el: str) -> list[str]:
        """One step: every pair rotated by the rotation its `sums` give, the rotated vectors
        moved to the next pairing, and their sums; returns (x per part, sums, hits with the
        pairs whose rotation was not QUIET marked)."""
        m, ss = self.m, self.sums_shape(unit)
        c, cols, hits = _pair_rotation(f, sums, ss, el, hits)
        it = (1,) + (2,) * (m - 2) + (unit, n)  # pairs of pairs J, then the batch and the entries
        pc = it[:-1]

        def at(v: str, e: int) -> str:  # a per-pair value at pair 2J + e, over `it`
            j0 = m - 2  # the dim of pair bit 0 (j's lowest bit) in `ss`
            r = f.reshape(f.slice(v, ss, el, j0, e, e + 1), ss[:j0] + (1, unit), pc, el)
            return f.bcast(r, pc, el, it, tuple(range(len(pc))))

        a, b = {}, {}
        for e in (0, 1):  # pair 2J + e: its place bit 1 is e
            p = [self.pick(f, v, {0: 0, 1: e}, unit, n, el, it) for v in x]
            q = [self.pick(f, v, {0: 1, 1: e}, unit, n, el, it) for v in x]
            cb = at(c, e)
            a[e] = _rotated(f, p, q, cb, [at(v, e) for v in cols[0]], True, it, el)
            b[e] = _rotated(f, q, p, cb, [at(v, e) for v in cols[1]], False, it, el)
        # b[e] goes to place h + ((2J + e) ^ flip): even or odd by e ^ (flip & 1), at J ^ (flip >> 1)
        f0, rest = self.flip & 1, self.flip >> 1
        rev = [1 + (m - 3 - t) for t in range(m - 2) if rest >> t & 1]

        def bottom(v: str, shape: tuple[int, ...]) -> str:
            return f.reverse(v, rev, shape, el) if rev else v

        new = [f.concat([(a[0][i], it), (a[1][i], it), (bottom(b[f0][i], it), it), (bottom(b[1 - f0][i], it), it)],
                        el, 0) for i in range(len(x))]
        top = [_norm2(f, a[0], it, el), _norm2(f, a[1], it, el)] + _dots(f, a[0], a[1], it, el)
        bot = [_norm2(f, b[f0], it, el), _norm2(f, b[1 - f0], it, el)] + _dots(f, b[f0], b[1 - f0], it, el)
        nxt = [f.concat([(t, pc), (bottom(u, pc), pc)], el, 0) for t, u in zip(top, bot)]
        return new + nxt + [hits]  # (nxt: [2] + pc[1:], which is ss)


def _norm2(f: _Em, w: list[str], shape: tuple[int, ...], el: str, axis: int = -1) -> str:
    """|w|^2 of the vectors along `axis` of `w` ([x] or [re, im])."""
    sq = f.bin("multiply", w[0], w[0], shape, el)
    if len(w) == 2:
        sq = f.bin("add", sq, f.bin("multiply", w[1], w[1], shape, el), shape, el)
    return f.reduce("add", sq, f.const("0", el), shape, el, axis % len(shape))


def _dots(f: _Em, u: list[str], w: list[str], shape: tuple[int, ...], el: str, axis: int = -1) -> list[str]:
    """u^H w along `axis`: [re] or, complex, [re, im]."""
    def red(x: str) -> str:
        return f.reduce("add", x, f.const("0", el), shape, el, axis % len(shape))

    def mul(p: str, q: str) -> str:
        return f.bin("multiply", p, q, shape, el)

    if len(u) == 1:
        return [red(mul(u[0], w[0]))]
    return [red(f.bin("add", mul(u[0], w[0]), mul(u[1], w[1]), shape, el)),
            red(f.bin("subtract", mul(u[0], w[1]), mul(u[1], w[0]), shape, el))]


def _pair_rotation(f: _Em, sums: list[str], shape: tuple[int, ...], el: str, hits: str | None = None):
    """(c, (s' of the first vectors, s' of the second ones) per part, hits) of the rotations the
    pairs' sums (|w_p|^2, |w_q|^2, w_p^H w_q as [re] or [re, im]) give, per pair of `shape`;
    hits (given the sweep's so far): also 1 where the rotation is by more than QUIET (see QUIET)."""
    pp, qq, *g = sums
    if len(g) == 2:  # w_p^H w_q = |gamma| e: the phase turned away
        gr, gi = g
        mag = f.un("sqrt", f.bin("add", f.bin("multiply", gr, gr, shape, el), f.bin("multiply", gi, gi, shape, el),
                                 shape, el), shape, el)
        live = f.cmp("GT", mag, f.const("0", el, shape), shape, el)
        e = [f.sel(live, f.bin("divide", gr, mag, shape, el), f.const("1", el, shape), shape, el),
             f.sel(live, f.bin("divide", gi, mag, shape, el), f.const("0", el, shape), shape, el)]
    else:
        mag = g[0]
    c, s = _rotation(f, pp, qq, mag, shape, el)
    if len(g) == 2:  # W J: s conj(e) into the first vector, s e into the second one
        se = [f.bin("multiply", s, e[0], shape, el), f.bin("multiply", s, e[1], shape, el)]
        cols = ([se[0], f.un("negate", se[1], shape, el)], se)
    else:
        cols = ([s], [s])
    if hits is not None:
        loud = f.cmp("GT", f.bin("multiply", mag, mag, shape, el),
                     f.bin("multiply", f.const(repr(QUIET * QUIET), el, shape), f.bin("multiply", pp, qq, shape, el),
                           shape, el), shape, el)
        hits = f.bin("maximum", hits, f.sel(loud, f.const("1", el, shape), f.const("0", el, shape), shape, el),
                     shape, el)
    return c, cols, hits


def singer_flip(m: int) -> int:
    """The bits `flip` (fewest set) making p -> (p >> 1) ^ (p odd ? 2^(m-1) | flip : 0) cycle
    through all 2^m - 1 nonzero m-bit places (see _Singer); one exists for every m (a primitive
    polynomial of degree m)."""
    h = 1 << (m - 1)
    for flip in sorted(range(h), key=lambda v: (bin(v).count("1"), v)):
        p, steps = 1, 0
        while True:
            p = (p >> 1) ^ ((h | flip) if p & 1 else 0)
            steps += 1
            if p == 1 or steps >= 2 * h:
                break
        if p == 1 and steps == 2 * h - 1:
            return flip
    raise AssertionError(f"no Singer cycle on {m} bits")


def _ordering(k: int) -> "_RoundRobin | _Singer":
    """The Singer ordering where k is a power of two, at least 4, else the round robin."""
    return _Singer(k) if k >= 4 and k & (k - 1) == 0 else _RoundRobin()


def _rotate(f: _Em, order: _RoundRobin, x: list[str], shape: tuple[int, ...], el: str, c: str,
            top_s: list[str], bot_s: list[str], axis: int, unit: int) -> list[str]:
    """The pairs of `x` ([x] or [re, im]) rotated (c, s, s' as in _rotated, per pair) and written
    straight into `order`'s next pairing."""
    half = order.half(shape, axis, unit)
    dims = order.pair_dims(shape, axis, unit)
    hs = tuple(half[d] for d in dims)
    top, bot = (list(v) for v in zip(*(order.halves(f, p, shape, el, axis, unit) for p in x)))
    cb, *ts = [f.bc(v, hs, el, half, dims) for v in [c] + top_s]
    bs = [f.bc(v, hs, el, half, dims) for v in bot_s]

    def side(first: bool, view, part: tuple[int, ...]) -> list[str]:
        a, b = [view(p) for p in top], [view(p) for p in bot]
        return _rotated(f, a if first else b, b if first else a, view(cb), [view(s) for s in (ts if first else bs)],
                        first, part, el)

    return order.follow(f, side, half, el, axis, unit)


def _rotation(f: _Em, pp: str, qq: str, pq: str, shape: tuple[int, ...], el: str) -> tuple[str, str]:
    """(c, s) of the Jacobi rotation zeroing pq of [[pp, pq], [pq, qq]] (Golub & Van Loan's
    sym.schur2): J = [[c, s], [-s, c]], J^T [[pp, pq], [pq, qq]] J diagonal, s / c the tangent
    of the smaller of the two angles; no rotation where pq is 0."""
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
    return c, f.bin("multiply", t, c, shape, el)


def _diag(f: _Em, x: str, shape: tuple[int, ...], el: str) -> str:
    """The diagonal of square [.., k, k] x, as [.., k] (a masked row sum: shapes stay static)."""
    r = len(shape)
    m = f.cmp("EQ", f.iota(shape, r - 2), f.iota(shape, r - 1), shape, "i32")
    return f.reduce("add", f.sel(m, x, f.const("0", el, shape), shape, el), f.const("0", el), shape, el, r - 1)


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


def _sweeps(f: _Em, carried: list[tuple[str, str]], k: int, step, converged,
            fresh: list[tuple[Callable[[_Em], str], str]] = ()) -> tuple[list[str], str | None]:
    """Jacobi sweeps of k - 1 steps each (k even) while `converged(g, names)` (an i1 scalar: the
    whole batch has converged) is false and fewer than MAX_SWEEPS ran. `fresh`: (value, type) of
    further values the steps carry, made anew each sweep (after `carried` in the names `step`
    and `converged` see). Returns the carried values and the i1 scalar "converged" (None: no
    sweep was needed): vectors left far from orthogonal would make the Newton-Schulz steps
    after the sweeps diverge, so a batch that did not converge gets `info` 1 (NaN results),
    as LAPACK reports a failure to converge."""
    if k < 2:
        return [v for v, _ in carried], None

    def cond(c: _Em, a: list[str]) -> str:
        more = c.cmp("LT", a[0], c.const(str(MAX_SWEEPS), "i32"), (), "i32")
        return c.bin("and", more, c.un("not", a[1], (), "i1"), (), "i1")

    def steps(g: _Em, j: str, cur: list[str]) -> list[str]:
        for _ in range(per):
            cur = step(g, j, cur)
        return cur

    # A loop iteration copies its carried values to their slots (the control stream's double
    # buffer): UNROLL steps an iteration make that one copy of the vectors per UNROLL steps.
    per = min(UNROLL, k - 1)
    rounds, rest = divmod(k - 1, per)

    def body(g: _Em, a: list[str]) -> list[str]:
        new = [v for v in a[2:]] + [init(g) for init, _ in fresh]
        types = [t for _, t in carried] + [t for _, t in fresh]
        if rounds > 1:
            new = _fori(g, rounds, list(zip(new, types)), steps)
        elif rounds == 1:
            new = steps(g, g.const("0", "i32"), new)
        for _ in range(rest):
            new = step(g, g.const("0", "i32"), new)
        return [g.bin("add", a[0], g.const("1", "i32"), (), "i32"), converged(g, new)] + new[:len(carried)]

    init = [(f.const("0", "i32"), "tensor<i32>"), (f.const("false", "i1"), "tensor<i1>")]
    out = _while(f, init + carried, cond, body)
    return out[2:], out[1]


def _unconverged(f: _Em, bad: str, done: str | None, bs: tuple[int, ...]) -> str:
    """`bad` [batch] with every matrix marked when the sweeps did not converge (`done` false)."""
    if done is None:
        return bad
    return f.bin("or", bad, f.bcast(f.un("not", done, (), "i1"), (), "i1", bs, ()), bs, "i1")


def _info(f: _Em, bad: str, bs: tuple[int, ...]) -> str:
    return f.sel(bad, f.const("1", "i32", bs), f.const("0", "i32", bs), bs, "i32")


# --------------------------------------------------------------------------- syevd (eigh)
def _syevd(a_t: ir.TensorType, flags: dict[str, str]) -> str:
    """LAPACK ?syevd / ?heevd: eigenvalues ascending and orthonormal eigenvectors (columns) of the
    symmetric (Hermitian) matrix the `uplo` triangle stands for, `info` per matrix.

    One-sided (Hestenes) Jacobi on B = A + mu I, mu above A's spectral radius (1.125 ||A||_F), so
    B is positive definite and its singular vectors are A's eigenvectors: rotations make the
    columns of W = B V orthogonal, and then column j of W is sigma_j v_j, so V is W's normalised
    columns and need not be carried. A step rotates one matrix, not three (A's rows, A's columns
    and V, as two-sided Jacobi does). W is carried transposed (its columns as rows: X = W^T), so
    a pair is two contiguous rows and each pair's dot products are row reductions. The sweeps'
    rounding is mu's scale, not A's: one refinement step (_refine) takes it away, and gives the
    eigenvalues as Rayleigh quotients v^H A v (not sigma - mu, whose rounding is mu's too)."""
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
    # stored once: its transposed half is a slow read, and _prepare reads it twice
    parts = [f.stored(p, shape, el) for p in parts]
    a, scale, bad = _prepare(f, parts, shape, el)
    sq = [f.reduce_all("add", f.bin("multiply", p, p, shape, el), "0", shape, el, (r - 2, r - 1)) for p in a]
    fro = f.un("sqrt", sq[0] if len(a) == 1 else f.bin("add", sq[0], sq[1], bs, el), bs, el)
    # a zero matrix (all the scaled one can be below ||A||_F = 1) gets mu = 1: B = I
    mu = f.bin("maximum", f.bin("multiply", fro, f.const("1.125", el, bs), bs, el), f.const("1", el, bs), bs, el)
    x = [f.bin("add", a[0], f.bin("multiply", f.eye(shape, el), f.bcast(mu, bs, el, shape, whole), shape, el),
               shape, el)]
    if cplx:  # X = W^T = B^T = conj(B)
        x.append(f.un("negate", a[1], shape, el))
    k = n + n % 2  # an odd n gets a zero row and column: it pairs with nothing (its rotations are I)
    ks = bs + (k, k)
    if k != n:
        x = [f.pad(p, shape, el, (0,) * (r - 2) + (1, 1)) for p in x]
    tol2 = (k * _EPS[el]) ** 2

    # The sweeps see the vectors of the whole batch as one stack, [k B, k]: row j B + b is vector j
    # of matrix b. A pair's pieces are then whole row ranges of a 2-D array, which the kernels
    # copy in blocks, where batch-first [B, k, k] slices are B short runs each (2.4x slower).
    nb, nx = math.prod(bs), len(x)
    cube, flat = (nb, k, k), (k * nb, k)

    def stacked(g: _Em, p: str) -> str:
        return g.reshape(g.transpose(g.reshape(p, ks, cube, el), cube, el, (1, 0, 2)), (k, nb, k), flat, el)

    def batched(g: _Em, p: str) -> str:  # back to [B, k, k]
        return g.transpose(g.reshape(p, flat, (k, nb, k), el), (k, nb, k), el, (1, 0, 2))

    x = [stacked(f, p) for p in x]
    order = _ordering(k)
    if isinstance(order, _Singer):  # the loop keeps the vectors as the move writes them, and each pair's sums
        hs = order.sums_shape(nb)
        x = [order.to_carry(f, p, nb, k, el) for p in x]
        sums = order.sums(f, x, nb, k, el)

        def step(g: _Em, j: str, cur: list[str]) -> list[str]:
            return order.step(g, cur[:nx], cur[nx:nx + len(sums)], cur[-1], nb, k, el)

        def unstack(g: _Em, p: str) -> str:
            return batched(g, order.from_carry(g, p, nb, k, el))

        carried = [(p, _t(order.carry(nb, k), el)) for p in x] + [(v, _t(hs, el)) for v in sums]
    else:
        hs = order.half((k * nb,), 0, nb)  # per pair

        def step(g: _Em, j: str, cur: list[str]) -> list[str]:
            return _hestenes(g, cur[:nx], flat, el, 0, [], unit=nb, order=order, hits=cur[-1])

        def unstack(g: _Em, p: str) -> str:
            return batched(g, p)

        carried = [(p, _t(flat, el)) for p in x]

    def gram_test(g: _Em, cur: list[str]) -> str:
        return _orthogonal(g, [unstack(g, p) for p in cur[:nx]], cube, el, 2, tol2)

    def converged(g: _Em, cur: list[str]) -> str:  # (cur[-1]: the sweep's hits)
        loud = g.reduce_all("maximum", cur[-1], "0", hs, el, tuple(range(len(hs))))
        quiet = g.cmp("EQ", loud, g.const("0", el), (), el)
        return _if(g, quiet, ["tensor<i1>"], lambda b: [gram_test(b, cur)], lambda b: [b.const("false", "i1")])[0]

    x, done = _sweeps(f, carried, k, step, converged, [(lambda g: g.const("0", el, hs), _t(hs, el))])
    x, bad = x[:nx], _unconverged(f, bad, done, bs)
    x = [f.reshape(unstack(f, p), cube, ks, el) for p in x]
    if k != n:
        x = [f.slice(f.slice(p, ks, el, r - 2, 0, n), bs + (n, k), el, r - 1, 0, n) for p in x]
    sums = [f.reduce("add", f.bin("multiply", p, p, shape, el), f.const("0", el), shape, el, r - 1) for p in x]
    sigma = f.un("sqrt", sums[0] if len(x) == 1 else f.bin("add", sums[0], sums[1], bs + (n,), el), bs + (n,), el)
    # V = X^T with its columns normalised (sigma >= mu - rho(A) > 0)
    sb = f.bcast(sigma, bs + (n,), el, shape, whole + (r - 1,))
    v = [f.bin("divide", f.transpose_last(p, shape, el), sb, shape, el) for p in x]
    v, w = _refine(f, a, v, shape, el, f.bin("multiply", mu, f.const(repr(16 * _EPS[el]), el, bs), bs, el))
    # The step is quadratic in V's error, not in its orthogonality: V + V E with E's rotation
    # part K (|K_ij| up to eps mu / gap, 1/16 at a gap of delta) has V^H V - I = K^H K, up to
    # 4e-3 at n = 64. Two Newton-Schulz steps square that twice, to rounding (LAPACK's level).
    for _ in range(ORTHO_STEPS - 1):
        v = _orthonormalise(f, v, shape, el)
    # A third step where the last one started further than ORTHO_AGAIN from orthonormal (about
    # its square is left): a graded spectrum (eigenvalues 1e-6 .. 1) left 1e-5 .. 8e-5 after
    # two, LAPACK 1.3e-6; the benchmark's matrices start the second step at 4e-7.
    v, gram = _orthonormalise(f, v, shape, el, with_gram=True)
    dev = [f.bin("subtract", gram[0], f.eye(shape, el), shape, el)] + gram[1:]  # V^H V - I, per part
    far = f.cmp("GT", f.reduce_all("maximum", f.un("abs", dev[0], shape, el) if len(dev) == 1 else
                                   f.bin("maximum", f.un("abs", dev[0], shape, el), f.un("abs", dev[1], shape, el),
                                         shape, el), "0", shape, el, tuple(range(r))),
                f.const(repr(ORTHO_AGAIN), el), (), el)
    v = _if(f, far, [_t(shape, el)] * len(v), lambda b: _orthonormalise(b, v, shape, el), lambda b: v)
    w = f.bin("multiply", w, f.bcast(scale, bs, el, bs + (n,), whole), bs + (n,), el)
    # ascending, as a stable sort: column i goes to its rank, the number of values before it
    # (smaller, or equal in an earlier column), and V's columns move by one product with the
    # permutation's 0/1 matrix, the values by a masked maximum (both exact; a sort of the values
    # with their column numbers was two sort kernels)
    wi, wj = (f.bcast(w, bs + (n,), el, shape, whole + (d,)) for d in (r - 2, r - 1))
    row, col = f.iota(shape, r - 2), f.iota(shape, r - 1)
    before = f.bin("or", f.cmp("LT", wj, wi, shape, el),
                   f.bin("and", f.cmp("EQ", wj, wi, shape, el), f.cmp("LT", col, row, shape, "i32"), shape, "i1"),
                   shape, "i1")
    rank = f.reduce("add", f.convert(before, shape, "i1", "i32"), f.const("0", "i32"), shape, "i32", r - 1)
    onehot = f.cmp("EQ", f.bcast(rank, bs + (n,), "i32", shape, whole + (r - 2,)), col, shape, "i32")
    ninf = "0xFF800000" if el == "f32" else "0xFFF0000000000000"
    w = f.reduce("maximum", f.sel(onehot, wi, f.const(ninf, el, shape), shape, el), f.const(ninf, el), shape, el, r - 2)
    pm = [f.convert(onehot, shape, "i1", el)]
    v = [_matmul(f, [p], pm, shape, el)[0] for p in v]
    vec = f(f"stablehlo.complex {v[0]}, {v[1]} : {_t(shape, io)}") if cplx else v[0]
    return _module([_t(shape, io)], results, f.lines, [vec, w, _info(f, bad, bs)])


def _matmul(f: _Em, p: list[str], q: list[str], shape: tuple[int, ...], el: str, adjoint: bool = False,
            pshape: tuple[int, ...] | None = None) -> list[str]:
    """p q (p^H q with `adjoint`) of batch-first square matrices of `shape`, each [x] or complex
    [re, im]; with `pshape`, p is [.., m, n] and q [.., n, n] (no adjoint), p q is [.., m, n]."""
    r = len(shape)
    bd = ", ".join(map(str, range(r - 2)))
    ca = r - 2 if adjoint else r - 1
    ps = pshape or shape

    def dot(u: str, w: str) -> str:
        return f(f"stablehlo.dot_general {u}, {w}, batching_dims = [{bd}] x [{bd}], contracting_dims = "
                 f"[{ca}] x [{r - 2}] : ({_t(ps, el)}, {_t(shape, el)}) -> {_t(ps, el)}")

    if len(p) == 1:
        return [dot(p[0], q[0])]
    sgn = "add" if adjoint else "subtract"  # conj(p): the imaginary part's sign flips
    return [f.bin(sgn, dot(p[0], q[0]), dot(p[1], q[1]), ps, el),
            f.bin("subtract" if adjoint else "add", dot(p[0], q[1]), dot(p[1], q[0]), ps, el)]


def _refine(f: _Em, a: list[str], v: list[str], shape: tuple[int, ...], el: str,
            delta: str) -> tuple[list[str], str]:
    """(V, eigenvalues [batch, n]) after one step of Ogita and Aishima's refinement (2018) of
    the approximate eigenvectors `v` of Hermitian `a`, all matrix products: with S = V^H A V and
    R = I - V^H V, lambda_i = s_ii / (1 - r_ii) and V += V E, E_ij = (s_ij + lambda_j r_ij) /
    (lambda_j - lambda_i), or r_ij / 2 within a cluster (|lambda_j - lambda_i| <= `delta`
    [batch]) and on the diagonal. The sweeps' rounding is mu's scale (eps mu / gap in a vector):
    this brings it to A's, as two-sided Jacobi and LAPACK have it."""
    r = len(shape)
    bs, n = shape[:-2], shape[-1]
    whole = tuple(range(r - 2))
    s = _matmul(f, v, _matmul(f, a, v, shape, el), shape, el, adjoint=True)
    # S is Hermitian in exact arithmetic; its rounding is not, and (s_ij - s_ji) / gap would go
    # into E's symmetric part, V's orthogonality (E + E^H = R needs s_ij = conj(s_ji))
    sd = _diag(f, s[0], shape, el)  # (S + S^H)/2 has S's real diagonal, exactly: read S without the transpose
    s = [f.bin("multiply", f.bin("add", p, q, shape, el), f.const("0.5", el, shape), shape, el)
         for p, q in zip(s, [f.stored(q, shape, el) for q in _adjoint(f, s, shape, el)])]
    g = _matmul(f, v, v, shape, el, adjoint=True)
    rr = [f.bin("subtract", f.eye(shape, el), g[0], shape, el)] + [f.un("negate", p, shape, el) for p in g[1:]]
    lam = f.bin("divide", sd,
                f.bin("subtract", f.const("1", el, bs + (n,)), _diag(f, rr[0], shape, el), bs + (n,), el),
                bs + (n,), el)
    lj = f.bcast(lam, bs + (n,), el, shape, whole + (r - 1,))
    gap = f.bin("subtract", lj, f.bcast(lam, bs + (n,), el, shape, whole + (r - 2,)), shape, el)
    apart = f.cmp("GT", f.un("abs", gap, shape, el), f.bcast(delta, bs, el, shape, whole), shape, el)
    half = f.const("0.5", el, shape)
    e = [f.sel(apart, f.bin("divide", f.bin("add", sp, f.bin("multiply", lj, rp, shape, el), shape, el), gap,
                                      shape, el),
               f.bin("multiply", rp, half, shape, el), shape, el) for sp, rp in zip(s, rr)]
    return [f.bin("add", p, q, shape, el) for p, q in zip(v, _matmul(f, v, e, shape, el))], lam


def _orthonormalise(f: _Em, v: list[str], shape: tuple[int, ...], el: str, with_gram: bool = False):
    """V (3 I - V^H V) / 2: one Newton-Schulz step towards the nearest orthonormal matrix, which
    squares V^H V - I (two batched products). `with_gram`: (that, V^H V by parts)."""
    g = _matmul(f, v, v, shape, el, adjoint=True)
    m = [f.bin("subtract", f.bin("multiply", f.eye(shape, el), f.const("1.5", el, shape), shape, el),
               f.bin("multiply", g[0], f.const("0.5", el, shape), shape, el), shape, el)]
    m += [f.bin("multiply", p, f.const("-0.5", el, shape), shape, el) for p in g[1:]]
    out = _matmul(f, v, m, shape, el)
    return (out, g) if with_gram else out


def _hestenes(g: _Em, x: list[str], shape: tuple[int, ...], el: str, axis: int,
              extra: list[tuple[list[str], tuple[int, ...]]], unit: int = 1,
              order: _RoundRobin | None = None, hits: str | None = None) -> list[str]:
    """One step of one-sided Jacobi on the vectors laid along `axis` of batch-first `x` ([x] or
    complex [re, im]; the other matrix axis holds their entries): pair (w_p, w_q) is rotated so
    that w_p^H w_q = 0 (the rotation of [[|w_p|^2, g], [conj(g), |w_q|^2]], turning the phase of
    g = |g| e away for complex), then the next pairing of `order` (default the round robin).
    Every `extra` (parts, shape) is rotated the same way along the same axis (svd's V). |w_p|^2,
    |w_q|^2 and w_p^H w_q are row reductions of the same vectors: one kernel reading them once
    (fuse._sibling_reductions; carrying the norms, updated by the rotation, took a kernel more
    a step and was no faster). `unit`: see _RoundRobin. With `hits` (per pair, in the half's
    shape), the last result is hits marked where this step's rotation was not QUIET."""
    order = order or _RoundRobin()
    r = len(shape)
    red = 2 * r - 3 - axis  # the other of the last two axes
    h = shape[axis] // (2 * unit)
    half = order.half(shape, axis, unit)  # one vector of each pair
    red += len(half) - r if red > axis else 0
    vb = shape[:-2] if unit == 1 else ()  # the per-pair vectors' batch dims
    ns = vb + (2 * h * unit,)
    hs = order.half(ns, len(vb), unit)
    top, bot = (list(v) for v in zip(*(order.halves(g, p, shape, el, axis, unit) for p in x)))
    sums = [_norm2(g, top, half, el, red), _norm2(g, bot, half, el, red)] + _dots(g, top, bot, half, el, red)
    c, cols, hits = _pair_rotation(g, sums, hs, el, hits)
    out = _rotate(g, order, x, shape, el, c, *cols, axis, unit)
    for parts, eshape in extra:
        out += _rotate(g, order, parts, eshape, el, c, *cols, axis, unit)
    return out + ([hits] if hits is not None else [])


def _orthogonal(g: _Em, x: list[str], shape: tuple[int, ...], el: str, red: int, tol2: float) -> str:
    """Whether the vectors of batch-first `x` (their entries along axis `red`, one of the last
    two) are orthogonal to `tol2`: |w_p^H w_q|^2 <= tol2 |w_p|^2 |w_q|^2 for every p != q of
    every matrix (an i1 scalar), the |w_p|^2 the Gram's diagonal."""
    r = len(shape)
    whole = tuple(range(r - 2))
    k = shape[2 * r - 3 - red]
    bs, vs = shape[:-2], shape[:-2] + (k, k)
    bd = ", ".join(map(str, whole))

    def gram(p: str, q: str) -> str:
        return g(f"stablehlo.dot_general {p}, {q}, batching_dims = [{bd}] x [{bd}], contracting_dims = "
                 f"[{red}] x [{red}] : ({_t(shape, el)}, {_t(shape, el)}) -> {_t(vs, el)}")

    gr = gram(x[0], x[0])
    g2 = g.bin("multiply", gr, gr, vs, el)
    if len(x) == 2:  # W^H W = Wr^T Wr + Wi^T Wi + i (Wr^T Wi - Wi^T Wr)
        gr = g.bin("add", gr, gram(x[1], x[1]), vs, el)
        gi = g.bin("subtract", gram(x[0], x[1]), gram(x[1], x[0]), vs, el)
        g2 = g.bin("add", g.bin("multiply", gr, gr, vs, el), g.bin("multiply", gi, gi, vs, el), vs, el)
    d = _diag(g, gr, vs, el)
    dd = g.bin("multiply", g.bcast(d, bs + (k,), el, vs, whole + (r - 2,)),
               g.bcast(d, bs + (k,), el, vs, whole + (r - 1,)), vs, el)
    off = g.cmp("NE", g.iota(vs, r - 2), g.iota(vs, r - 1), vs, "i32")
    viol = g.bin("and", off, g.cmp("GT", g2, g.bin("multiply", g.const(repr(tol2), el, vs), dd, vs, el), vs, el),
                 vs, "i1")
    # per matrix first: a reduction to one scalar runs on one core
    more = g.reduce_all("or", g.reduce_all("or", viol, "false", vs, "i1", (r - 2, r - 1)), "false", bs, "i1", whole)
    return g.un("not", more, (), "i1")


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
    xs, vs = bs + (big, k), bs + (k, k)
    a = x
    if k != kk:
        x = [f.pad(p, ws, el, (0,) * (r - 1) + (1,)) for p in x]
    v = [f.eye(vs, el)] + ([f.const("0", el, vs)] if cplx else [])
    tol2 = (big * _EPS[el]) ** 2
    nx = len(x)

    def step(g: _Em, j: str, cur: list[str]) -> list[str]:
        return _hestenes(g, cur[:nx], xs, el, r - 1, [(cur[nx:], vs)])

    def converged(g: _Em, cur: list[str]) -> str:
        return _orthogonal(g, cur[:nx], xs, el, r - 2, tol2)

    out, done = _sweeps(f, [(p, _t(xs, el)) for p in x] + [(p, _t(vs, el)) for p in v], k, step, converged)
    bad = _unconverged(f, bad, done, bs)
    x, v = out[:nx], out[nx:]
    sq = bs + (kk, kk)
    if k != kk:
        x = [f.slice(p, xs, el, r - 1, 0, kk) for p in x]
        v = [f.slice(f.slice(p, vs, el, r - 2, 0, kk), bs + (kk, k), el, r - 1, 0, kk) for p in v]
    # V is a product of ~8 k rotations: its columns drift from orthonormal by their rounding
    # (1e-5 at k = 64), and so do W's from A V. One Newton-Schulz step makes V orthonormal to
    # rounding, and W is taken afresh as A V (3 batched products), as LAPACK's A = U S V^H holds.
    v = _orthonormalise(f, v, sq, el)
    x = _matmul(f, a, v, sq, el, pshape=ws)
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
