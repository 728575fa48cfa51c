"""Tridiagonal solve: LAPACK ?gtsv (`lax.linalg.tridiagonal_solve`) as StableHLO loops.

JAX's CPU export emits `stablehlo.custom_call @lapack_{s,d,c,z}gtsv_ffi(dl, d, du, b)` with
dl, d, du [..., n] (dl[i] = A[i, i-1], dl[0] unused; du[i] = A[i, i+1], du[n-1] unused), b
[..., n, nrhs], and results (dl, d, du, x, info); jax keeps x and replaces it by NaN where info is
nonzero. Like linalg.py and eig.py, the call becomes a private function in ordinary StableHLO
text, verified and inlined with the call's location.

The algorithm is gtsv's own, so singular and nearly singular systems give what LAPACK gives:
Gaussian elimination with partial pivoting between adjacent rows. Step i keeps the current
(already modified) row i as (D, U, b) and compares it with the untouched row i+1: without an
interchange row i is final and row i+1 loses fact = dl/D of it; with one (|dl| > |D|), row i+1
becomes final (with a fill-in on the second superdiagonal) and what remains of row i is carried
on. A zero pivot sets info (the first such row, 1-based, as LAPACK's). Back substitution then
runs from the last row up. Both are `while` loops over rows on the control stream; every matrix
of the batch and every right-hand side move in lockstep. Complex systems compare |re| + |im|
and skip the elimination where dl is exactly 0, as cgtsv/zgtsv do. The dl/d/du results are the
operands unchanged (LAPACK's would hold the factors; jax discards them).
"""
from __future__ import annotations

import re

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .linalg import _Fn, _loop, _module, _t, expansion

_TARGET = re.compile(r"lapack_([sdcz])gtsv_ffi$")
_ELEMENT = {"s": "f32", "d": "f64", "c": "complex<f32>", "z": "complex<f64>"}
_REAL = {"complex<f32>": "f32", "complex<f64>": "f64"}


def handles(op: ir.Operation) -> bool:
    """Whether `op` is a LAPACK gtsv custom_call."""
    return op.name == "stablehlo.custom_call" and bool(_TARGET.match(str(op.attributes.get("call_target_name", ""))))


def expand(op: ir.Operation, loc: ir.Location | None) -> ir.Function:
    """The function computing `op` (same operands and results), parsed from StableHLO text; every
    op in it (and any error about it) carries `loc`, the user's line of the call."""
    target = str(op.attributes.get("call_target_name"))
    el = _ELEMENT[_TARGET.match(target).group(1)]
    types = [v.type for v in op.operands]
    rtypes = [r.type for r in op.results]
    if len(types) != 4 or len(rtypes) != 5 or any(
            not isinstance(t, ir.TensorType) or any(d is None for d in t.shape) for t in types + rtypes):
        raise UnsupportedError(f"{target} on operands of types {[str(t) for t in types]}", op.name, loc)
    b_shape = tuple(types[3].shape)
    if len(b_shape) < 2 or any(t.element != el for t in types) \
            or any(tuple(t.shape) != b_shape[:-1] for t in types[:3]):
        raise UnsupportedError(f"{target} on operands of types {[str(t) for t in types]}: want dl, d, du "
                               f"[..., n] and b [..., n, nrhs] of {el}", op.name, loc)
    nb = int(dict(op.attributes.get("mhlo.frontend_attributes", {}) or {}).get("num_batch_dims", len(b_shape) - 2))
    if nb != len(b_shape) - 2:
        raise UnsupportedError(f"@{target} with {nb} batch dims on a rank-{len(b_shape)} right-hand side",
                               op.name, loc)
    return expansion(_gtsv(b_shape, el), f"<tridiag {target}>", op, loc)


def _gtsv(b_shape: tuple[int, ...], el: str) -> str:
    bs, n, k = b_shape[:-2], b_shape[-2], b_shape[-1]
    r = len(bs)
    real = _REAL.get(el, el)
    vs, s1, rr = bs + (n,), bs + (1,), bs + (1, k)
    args = [_t(vs, el)] * 3 + [_t(b_shape, el)]
    results = args + [_t(bs, "i32")]
    f = _Fn()
    if 0 in b_shape:
        return _module(args, results, f.lines, ["%arg0", "%arg1", "%arg2", "%arg3", f.const("0", "i32", bs)])
    zero_v = f.const("0", el, s1)
    # sub[i] = A[i+1, i] and sup[i] = A[i, i+1], each 0 past the matrix, so no step reads the
    # unused dl[0] / du[n-1]
    sub = f.concat([(f.part("%arg0", vs, el, 1, n), bs + (n - 1,)), (zero_v, s1)], r, el) if n > 1 else zero_v
    sup = f.concat([(f.part("%arg2", vs, el, 0, n - 1), bs + (n - 1,)), (zero_v, s1)], r, el) if n > 1 else zero_v
    zs = [f.const("0", "i32")] * r

    def row(g: _Fn, v: str, i: str) -> str:  # v[..., i] as [..., 1]
        return g.dslice(v, vs, el, zs + [i], s1)

    def rhs(g: _Fn, i: str, b: str = "%arg3") -> str:  # b[..., i, :] as [..., 1, nrhs]
        return g.dslice(b, b_shape, el, zs + [i, g.const("0", "i32")], rr)

    def wide(g: _Fn, x: str) -> str:  # a per-row scalar against a row of b
        return g.bcast(x, s1, el, rr, tuple(range(r + 1)))

    def mag(g: _Fn, x: str) -> str:  # LAPACK's pivot size: |x|, or |re| + |im| (cabs1) for complex
        if el == real:
            return g.un("abs", x, s1, el)
        parts = [g.un("abs", g(f"stablehlo.{p} {x} : ({_t(s1, el)}) -> {_t(s1, real)}"), s1, real)
                 for p in ("real", "imag")]
        return g.bin("add", *parts, s1, real)

    def is_zero(g: _Fn, x: str) -> str:
        return g.cmp("EQ", x, g.const("0", el, s1), s1, el)

    def zero_info(g: _Fn, info: str, bad: str, at: str) -> str:
        """info, or `at` (an i32 scalar) where it is still 0 and `bad` holds."""
        z = g.const("0", "i32", s1)
        first = g.bin("and", bad, g.cmp("EQ", info, z, s1, "i32"), s1, "i1")
        return g.sel(first, g.bcast(at, (), "i32", s1, ()), info, s1, "i32")

    def eliminate(g: _Fn, i: str, cur: list[str]) -> list[str]:
        d_cur, u_cur, b_cur, diag, upper, fill, bf, info = cur
        i1 = g.bin("add", i, g.const("1", "i32"), (), "i32")
        lo, dn, un, bn = row(g, sub, i), row(g, "%arg1", i1), row(g, sup, i1), rhs(g, i1)
        zero = g.const("0", el, s1)
        keep = g.cmp("GE", mag(g, d_cur), mag(g, lo), s1, real)  # no interchange (NaN: interchange, as LAPACK)
        mul = lambda a, b: g.bin("multiply", a, b, s1, el)  # noqa: E731
        mulb = lambda a, b: g.bin("multiply", wide(g, a), b, rr, el)  # noqa: E731
        fk, fs = g.bin("divide", lo, d_cur, s1, el), g.bin("divide", d_cur, lo, s1, el)
        d_k, b_k = g.bin("subtract", dn, mul(fk, u_cur), s1, el), g.bin("subtract", bn, mulb(fk, b_cur), rr, el)
        if el != real:  # cgtsv: a zero subdiagonal entry means no elimination at all
            nil = is_zero(g, lo)
            d_k, b_k = g.sel(nil, dn, d_k, s1, el), g.sel(g.bcast(nil, s1, "i1", rr, tuple(range(r + 1))), bn, b_k,
                                                           rr, el)
        keep_b = g.bcast(keep, s1, "i1", rr, tuple(range(r + 1)))
        # the final row i: the current one, or row i+1 moved up (its du the fill-in)
        at = zs + [i]
        diag = g.dupdate(diag, g.sel(keep, d_cur, lo, s1, el), vs, s1, el, at)
        upper = g.dupdate(upper, g.sel(keep, u_cur, dn, s1, el), vs, s1, el, at)
        fill = g.dupdate(fill, g.sel(keep, zero, un, s1, el), vs, s1, el, at)
        bf = g.dupdate(bf, g.sel(keep_b, b_cur, bn, rr, el), b_shape, rr, el, at + [g.const("0", "i32")])
        # the carried row i+1
        d_new = g.sel(keep, d_k, g.bin("subtract", u_cur, mul(fs, dn), s1, el), s1, el)
        u_new = g.sel(keep, un, g.un("negate", mul(fs, un), s1, el), s1, el)
        b_new = g.sel(keep_b, b_k, g.bin("subtract", b_cur, mulb(fs, bn), rr, el), rr, el)
        info = zero_info(g, info, g.bin("and", keep, is_zero(g, d_cur), s1, "i1"), i1)
        return [d_new, u_new, b_new, diag, upper, fill, bf, info]

    zero0 = f.const("0", "i32")
    init = [row(f, "%arg1", zero0), row(f, sup, zero0), rhs(f, zero0)] + \
        [f.const("0", el, vs)] * 3 + [f.const("0", el, b_shape), f.const("0", "i32", s1)]
    tys = [_t(s1, el), _t(s1, el), _t(rr, el)] + [_t(vs, el)] * 3 + [_t(b_shape, el), _t(s1, "i32")]
    d_last, _, b_last, diag, upper, fill, bf, info = _loop(f, n - 1, list(zip(init, tys)), eliminate)
    last = zs + [f.const(str(n - 1), "i32")]
    diag = f.dupdate(diag, d_last, vs, s1, el, last)  # the last row: its U and fill stay 0
    bf = f.dupdate(bf, b_last, b_shape, rr, el, last + [zero0])
    info = zero_info(f, info, is_zero(f, d_last), f.const(str(n), "i32"))

    def substitute(g: _Fn, j: str, cur: list[str]) -> list[str]:
        x1, x2, x = cur  # x[i+1], x[i+2] (0 past the end) and the solution so far
        i = g.bin("subtract", g.const(str(n - 1), "i32"), j, (), "i32")
        # (b - du x[i+1] - du2 x[i+2]) / d, in LAPACK's order
        t = g.bin("subtract", rhs(g, i, bf), g.bin("multiply", wide(g, row(g, upper, i)), x1, rr, el), rr, el)
        t = g.bin("subtract", t, g.bin("multiply", wide(g, row(g, fill, i)), x2, rr, el), rr, el)
        xi = g.bin("divide", t, wide(g, row(g, diag, i)), rr, el)
        return [xi, x1, g.dupdate(x, xi, b_shape, rr, el, zs + [i, g.const("0", "i32")])]

    z = f.const("0", el, rr)
    x = _loop(f, n, [(z, _t(rr, el)), (z, _t(rr, el)), (f.const("0", el, b_shape), _t(b_shape, el))],
              substitute)[2]
    info = f(f"stablehlo.reshape {info} : ({_t(s1, 'i32')}) -> {_t(bs, 'i32')}")
    return _module(args, results, f.lines, ["%arg0", "%arg1", "%arg2", x, info])
