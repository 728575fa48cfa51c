"""Complex numbers, legalized away: every complex<f32>/complex<f64> value becomes a pair of real
tensors (re, im) of its component type while legalizing, so simplify, fusion, the loop IR, codegen
and the runtime only ever see real types.

In device memory a complex argument or result stays interleaved (complex64 = f32 pairs, as numpy
and jax store it): the graph sees it as a real tensor with a trailing dim of 2, read through two
slice views (zero-copy index maps) and written by one concat of the two parts. The math follows
XLA:CPU's elemental emitter (what CPU JAX computes): Smith's division with its corner cases,
|z| as max * sqrt(1 + (min/max)^2), tanh from expm1, sqrt/rsqrt/pow through |z| and atan2 with
the branch cuts and special values XLA gives them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .graph import ELEMENTWISE, Graph, Node, broadcast, const, ew, toposort

if TYPE_CHECKING:
    from .legalize import Legalizer

COMPONENT = {"complex<f32>": "f32", "complex<f64>": "f64"}


@dataclass(frozen=True)
class Pair:
    """A complex value while legalizing: its real and imaginary parts, real tensors."""
    re: Node
    im: Node

    def __getitem__(self, k: int) -> Node:
        return self.im if k else self.re


def is_complex(t: object) -> bool:
    return isinstance(t, ir.TensorType) and t.element in COMPONENT


def touches_complex(op: ir.Operation) -> bool:
    """Whether an op reads or writes a complex value (or its regions take complex arguments)."""
    if op.name.partition(".")[2] in ("real", "imag", "complex", "conj") and op.name.startswith(("stablehlo.", "chlo.", "mhlo.")):
        return True
    vals = list(op.operands) + list(op.results) + [a for r in op.regions for b in r.blocks for a in b.args]
    return any(is_complex(v.type) for v in vals)


# ----------------------------------------------------------------------------- function boundary
def split_param(i: int, shape: tuple[int, ...], element: str, loc: Any) -> tuple[Node, Pair]:
    """A complex argument: one real param of shape [..., 2] (the interleaved bytes as they are)
    and its parts as strided views of it."""
    t = COMPONENT[element]
    p = Node("param", [], shape + (2,), t, {"index": i}, loc)
    return p, Pair(*(_part_view(p, shape, k, loc) for k in (0, 1)))


def _part_view(p: Node, shape: tuple[int, ...], k: int, loc: Any) -> Node:
    s = Node("slice", [p], shape + (1,), p.dtype, {"start": (0,) * len(shape) + (k,),
                                                   "strides": (1,) * (len(shape) + 1)}, loc)
    return Node("reshape", [s], shape, p.dtype, {}, loc)


def interleave(z: Pair, loc: Any) -> Node:
    """A complex result: its parts written side by side into one real [..., 2] tensor, a concat
    whose two pieces each compute their part and store it with a stride of 2."""
    shape = z.re.shape
    memo: dict[int, Node] = {}
    cols = [_with_unit_dim(x, memo) for x in (z.re, z.im)]
    return Node("concat", cols, shape + (2,), z.re.dtype, {"dim": len(shape)}, loc)


def _with_unit_dim(n: Node, memo: dict[int, Node]) -> Node:
    """n with a trailing dim of 1, the reshape pushed down through elementwise ops to views and
    stored nodes: fusion computes a concat piece's elementwise work inside the piece's kernel,
    but a view over elementwise work would have to be stored first (one more kernel and DRAM
    round trip per part)."""
    if n.id in memo:
        return memo[n.id]
    shape = n.shape + (1,)
    if n.op in ELEMENTWISE:
        out = Node(n.op, [_with_unit_dim(i, memo) for i in n.inputs], shape, n.dtype, dict(n.attrs), n.loc)
    elif n.op in ("broadcast", "reshape", "iota"):  # their attributes stay valid with a new last dim
        out = Node(n.op, list(n.inputs), shape, n.dtype, dict(n.attrs), n.loc)
    else:
        out = Node("reshape", [n], shape, n.dtype, {}, n.loc)
    memo[n.id] = out
    return out


def flat(values: list[Node | Pair]) -> list[Node]:
    """Values as real tensors: a complex one as its two parts, in place."""
    out: list[Node] = []
    for v in values:
        out += [v.re, v.im] if isinstance(v, Pair) else [v]
    return out


def region_params(params: list[Node], types: list[object], loc: Any) -> tuple[list[Node], list[Node | Pair]]:
    """A region's block arguments, a complex one as two real scalar params (in place)."""
    flat_params: list[Node] = []
    values: list[Node | Pair] = []
    for p, t in zip(params, types):
        if is_complex(t):
            re, im = (Node("param", [], p.shape, COMPONENT[t.element], {}, loc) for _ in (0, 1))
            flat_params += [re, im]
            values.append(Pair(re, im))
        else:
            flat_params.append(p)
            values.append(p)
    for i, p in enumerate(flat_params):
        p.attrs["index"] = i
    return flat_params, values


# ----------------------------------------------------------------------------- real arithmetic
class _Math:
    """Builders for the real ops the complex formulas are written in (one dtype, one loc)."""

    def __init__(self, dt: str, loc: Any) -> None:
        self.dt, self.loc = dt, loc

    def c(self, v: float) -> Node:
        return const(v, self.dt, (), self.loc)

    def op(self, name: str, *xs: Node, **attrs: Any) -> Node:
        return ew(name, list(xs), loc=self.loc, **attrs)

    def add(self, a: Node, b: Node) -> Node: return self.op("add", a, b)
    def sub(self, a: Node, b: Node) -> Node: return self.op("sub", a, b)
    def mul(self, a: Node, b: Node) -> Node: return self.op("mul", a, b)
    def div(self, a: Node, b: Node) -> Node: return self.op("div", a, b)
    def neg(self, a: Node) -> Node: return self.op("neg", a)
    def fma(self, a: Node, b: Node, c: Node) -> Node: return self.op("fma", a, b, c)
    def abs(self, a: Node) -> Node: return self.op("abs", a)
    def f(self, name: str, a: Node) -> Node: return self.op(name, a)

    def cmp(self, d: str, a: Node, b: Node) -> Node:
        return self.op("cmp", a, b, dir=d, total=False)

    def sel(self, p: Node, a: Node, b: Node) -> Node:
        return self.op("select", p, a, b)

    def and_(self, a: Node, b: Node) -> Node: return self.op("and", a, b)
    def or_(self, a: Node, b: Node) -> Node: return self.op("or", a, b)
    def not_(self, a: Node) -> Node: return self.op("xor", a, const(1, "i1", (), self.loc))
    def isnan(self, a: Node) -> Node: return self.cmp("NE", a, a)

    def copysign(self, mag: Node, sign: Node) -> Node:
        """|mag| with sign's sign bit (integer ops on the bits, as no row computes it)."""
        u = {"f32": "ui32", "f64": "ui64"}[self.dt]
        top = 1 << (32 if u == "ui32" else 64) - 1
        bits = [Node("bitcast", [x], x.shape, u, {}, self.loc) for x in (mag, sign)]
        mixed = self.op("or", self.op("and", bits[0], const(top - 1, u, (), self.loc)),
                        self.op("and", bits[1], const(top, u, (), self.loc)))
        return Node("bitcast", [mixed], mixed.shape, self.dt, {}, self.loc)

    def square_dekker(self, x: Node) -> tuple[Node, Node]:
        """x*x as an unevaluated sum hi + lo (Veltkamp's split of x into halves)."""
        hi = self.mul(x, x)
        t = self.mul(self.c(4097.0 if self.dt == "f32" else 134217729.0), x)
        xh = self.add(t, self.sub(x, t))
        xl = self.sub(x, xh)
        cross = self.mul(xh, xl)
        lo = self.add(self.add(self.add(self.add(self.neg(hi), self.mul(xh, xh)), cross), cross), self.mul(xl, xl))
        return hi, lo

    def sum_terms(self, terms: list[Node], fast: bool) -> Node:
        """A sum with the rounding error of each addition carried along (2Sum, or Fast2Sum when
        every term is at most the running sum in magnitude)."""
        hi, lows = terms[0], []
        for t in terms[1:]:
            s = self.add(hi, t)
            if fast:
                lows.append(self.sub(t, self.sub(s, hi)))
            else:
                bv = self.sub(s, hi)
                lows.append(self.add(self.sub(hi, self.sub(s, bv)), self.sub(t, bv)))
            hi = s
        low = lows[0]
        for x in lows[1:]:
            low = self.add(low, x)
        return self.add(hi, low)

    def hypot_scaled(self, mx: Node, mn: Node) -> Node:
        """hypot from max and min magnitudes: mx sqrt(1 + (mn/mx)^2), exact-ish near mn = 0."""
        r = self.div(mn, mx)
        r = self.mul(r, r)
        sqa = self.f("sqrt", self.add(self.c(1.0), r))
        near = self.and_(self.cmp("EQ", sqa, self.c(1.0)), self.cmp("GT", r, self.c(0.0)))
        return self.sel(self.cmp("EQ", mx, mn), self.mul(self.c(np.sqrt(2.0)), mx),
                        self.sel(near, self.add(mx, self.div(self.mul(mx, r), self.c(2.0))), self.mul(mx, sqa)))

    def log_hypot(self, mx: Node, mn: Node) -> Node:
        """log(hypot) as log(mx) + log1p((mn/mx)^2) / 2, with mn/mx = 1 when they are equal
        (both 0 or both inf)."""
        r = self.sel(self.cmp("EQ", mn, mx), self.c(1.0), self.div(mn, mx))
        return self.add(self.f("log", mx), self.mul(self.c(0.5), self.f("log1p", self.mul(r, r))))

    # XLA's |z| helper: (min, max, 1 + (min/max)^2) of |re|, |im|
    def abs_parts(self, z: Pair) -> tuple[Node, Node, Node]:
        ar, ai = self.abs(z.re), self.abs(z.im)
        mx, mn = self.op("max", ar, ai), self.op("min", ar, ai)
        d = self.div(mn, mx)
        return mn, mx, self.add(self.c(1.0), self.mul(d, d))

    def cabs(self, z: Pair) -> Node:
        mn, mx, q = self.abs_parts(z)
        r = self.mul(mx, self.f("sqrt", q))
        # (0, 0), (inf, inf) and NaN parts make r NaN: min is then the answer
        return self.sel(self.isnan(r), mn, r)


# ----------------------------------------------------------------------------- complex ops
def _mul(m: _Math, a: Pair, b: Pair) -> Pair:
    # fused where XLA:CPU's LLVM fuses (it decides inf * x + -inf cases: (inf, -2.5) * (3e38, 1)
    # has the imaginary part inf, not NaN)
    return Pair(m.fma(a.re, b.re, m.neg(m.mul(a.im, b.im))), m.fma(a.im, b.re, m.mul(a.re, b.im)))


def _div(m: _Math, a: Pair, b: Pair) -> Pair:
    """Smith's algorithm (scale by the larger part of b), then XLA's fix-ups where it gives
    (NaN, NaN): a zero divisor, an infinite dividend over a finite divisor and the reverse."""
    zero, one, inf = m.c(0.0), m.c(1.0), m.c(np.inf)
    br_bi = m.div(b.re, b.im)
    den1 = m.add(b.im, m.mul(br_bi, b.re))
    bi_br = m.div(b.im, b.re)
    den2 = m.add(b.re, m.mul(bi_br, b.im))
    abr, abi = m.abs(b.re), m.abs(b.im)
    small_re = m.cmp("LT", abr, abi)
    cr = m.sel(small_re, m.div(m.add(m.mul(br_bi, a.re), a.im), den1),
               m.div(m.add(m.mul(bi_br, a.im), a.re), den2))
    ci = m.sel(small_re, m.div(m.sub(m.mul(br_bi, a.im), a.re), den1),
               m.div(m.sub(a.im, m.mul(bi_br, a.re)), den2))
    # 1: zero divisor, a dividend not all NaN: inf with b.re's sign times a
    zero_den = m.and_(m.and_(m.cmp("EQ", abr, zero), m.cmp("EQ", abi, zero)),
                      m.or_(m.not_(m.isnan(a.re)), m.not_(m.isnan(a.im))))
    sinf = m.copysign(inf, b.re)
    r1 = Pair(m.mul(sinf, a.re), m.mul(sinf, a.im))
    # 2: infinite dividend, finite divisor
    aar, aai = m.abs(a.re), m.abs(a.im)
    ar_inf, ai_inf = m.cmp("EQ", aar, inf), m.cmp("EQ", aai, inf)
    b_fin = m.and_(m.cmp("NE", abr, inf), m.cmp("NE", abi, inf))
    b_fin = m.and_(b_fin, m.and_(m.not_(m.isnan(b.re)), m.not_(m.isnan(b.im))))  # ONE: ordered
    case2 = m.and_(m.or_(ar_inf, ai_inf), b_fin)
    sr = m.copysign(m.sel(ar_inf, one, zero), a.re)
    si = m.copysign(m.sel(ai_inf, one, zero), a.im)
    r2 = Pair(m.mul(inf, m.add(m.mul(sr, b.re), m.mul(si, b.im))),
              m.mul(inf, m.sub(m.mul(si, b.re), m.mul(sr, b.im))))
    # 3: finite dividend, infinite divisor
    a_fin = m.and_(m.and_(m.cmp("NE", aar, inf), m.cmp("NE", aai, inf)),
                   m.and_(m.not_(m.isnan(a.re)), m.not_(m.isnan(a.im))))
    br_inf, bi_inf = m.cmp("EQ", abr, inf), m.cmp("EQ", abi, inf)
    case3 = m.and_(m.or_(br_inf, bi_inf), a_fin)
    tr = m.copysign(m.sel(br_inf, one, zero), b.re)
    ti = m.copysign(m.sel(bi_inf, one, zero), b.im)
    r3 = Pair(m.mul(zero, m.add(m.mul(a.re, tr), m.mul(a.im, ti))),
              m.mul(zero, m.sub(m.mul(a.im, tr), m.mul(a.re, ti))))
    both_nan = m.and_(m.isnan(cr), m.isnan(ci))
    out = []
    for k, c in enumerate((cr, ci)):
        fixed = m.sel(zero_den, r1[k], m.sel(case2, r2[k], m.sel(case3, r3[k], c)))
        out.append(m.sel(both_nan, fixed, c))
    return Pair(*out)


def _exp(m: _Math, z: Pair) -> Pair:
    """e^a (cos b + i sin b); a real argument (b = 0) keeps a zero imaginary part even when e^a
    is inf or NaN, and e^a overflowing while e^a cos b does not is computed as (e^(a/2))^2 cos b."""
    e = m.f("exp", z.re)
    h = m.f("exp", m.mul(z.re, m.c(0.5)))
    big = m.cmp("EQ", e, m.c(np.inf))
    cs, sn = m.f("cos", z.im), m.f("sin", z.im)
    re = m.sel(big, m.mul(m.mul(h, cs), h), m.mul(e, cs))
    im = m.sel(big, m.mul(m.mul(h, sn), h), m.mul(e, sn))
    return Pair(re, m.sel(m.cmp("EQ", z.im, m.c(0.0)), m.c(0.0), im))


def _log(m: _Math, z: Pair) -> Pair:
    """log|z| + i atan2(b, a). Near |z| = 1, log|z| = log1p(a^2 + b^2 - 1) / 2 with the squares
    in twice the precision (Dekker) and the sum compensated; elsewhere log(max) + log1p((min /
    max)^2) / 2, which neither overflows nor underflows (the StableHLO complex math expander's
    algorithm, which XLA:CPU and jax use)."""
    x, y = z.re, z.im
    yyh, yyl = m.square_dekker(y)
    xxh, xxl = m.square_dekker(x)
    gt = m.cmp("GT", yyh, xxh)
    s = m.sum_terms([m.c(-1.0), m.sel(gt, yyh, xxh), m.sel(gt, xxh, yyh), yyl, xxl], fast=True)
    ax, ay = m.abs(x), m.abs(y)
    far = m.log_hypot(m.op("max", ax, ay), m.op("min", ax, ay))
    near = m.mul(m.c(0.5), m.f("log1p", s))
    return Pair(m.sel(m.cmp("LT", m.abs(s), m.c(0.5)), near, far), m.op("atan2", y, x))


def _expm1(m: _Math, z: Pair) -> Pair:
    em1 = m.f("expm1", z.re)
    s = m.f("sin", m.mul(z.im, m.c(0.5)))
    cosm1 = m.mul(m.c(-2.0), m.mul(s, s))  # cos(b) - 1 without cancellation
    re = m.add(m.mul(em1, m.add(cosm1, m.c(1.0))), cosm1)
    im = m.sel(m.cmp("EQ", z.im, m.c(0.0)), m.c(0.0), m.mul(m.add(em1, m.c(1.0)), m.f("sin", z.im)))
    return Pair(re, im)


def _log1p(m: _Math, z: Pair) -> Pair:
    """log|1 + z| + i atan2(b, 1 + a), |1 + z| by cases as the StableHLO expander does: huge z as
    log_hypot; z near -1 directly; elsewhere log1p(2a + a^2 + b^2) / 2 with Dekker squares and a
    compensated sum (no cancellation near a = -b^2/2)."""
    x, y = z.re, z.im
    one, half = m.c(1.0), m.c(0.5)
    ax, ay = m.abs(x), m.abs(y)
    mx, mn = m.op("max", ax, ay), m.op("min", ax, ay)
    largest = float(np.finfo(np.float32 if m.dt == "f32" else np.float64).max)
    xp1 = m.add(x, one)
    yyh, yyl = m.square_dekker(y)
    xxh, xxl = m.square_dekker(x)
    x2 = m.add(x, x)
    general = m.mul(half, m.f("log1p", m.sum_terms([x2, yyh, xxh, yyl, xxl], fast=False)))
    close = m.mul(half, m.f("log", m.add(m.mul(xp1, xp1), yyh)))
    re = m.sel(m.cmp("LT", m.add(m.abs(xp1), ay), m.c(0.2)), close, general)
    re = m.sel(m.cmp("GT", mx, m.c(np.sqrt(largest) * 0.01)), m.log_hypot(mx, mn), re)
    return Pair(re, m.op("atan2", y, xp1))


def _sincos(m: _Math, z: Pair, cos: bool) -> Pair:
    ey = m.f("exp", z.im)
    h, hn = m.mul(m.c(0.5), ey), m.div(m.c(0.5), ey)
    sinh, cosh = m.sub(h, hn), m.add(h, hn)
    sx, cx = m.f("sin", z.re), m.f("cos", z.re)
    if cos:
        return Pair(m.mul(cx, cosh), m.neg(m.mul(sx, sinh)))
    return Pair(m.mul(sx, cosh), m.mul(cx, sinh))


def _tanh(m: _Math, z: Pair, tan: bool = False) -> Pair:
    """tanh(a+bi) = (e^2a - e^-2a + 2i sin 2b) / (e^2a + e^-2a + 2 cos 2b), from expm1 so small
    a keeps its digits; tan(x+yi) = -i tanh(-y+xi)."""
    a, b = (m.neg(z.im), z.re) if tan else (z.re, z.im)
    two_a = m.add(a, a)
    e1, e2 = m.f("expm1", two_a), m.f("expm1", m.neg(two_a))
    cb, sb = m.f("cos", b), m.f("sin", b)
    four = m.c(4.0)
    den_sum = m.add(e1, e2)
    den = m.add(den_sum, m.mul(m.mul(cb, cb), four))
    im_num = m.mul(four, m.mul(cb, sb))
    inf = m.c(np.inf)
    re = m.sel(m.cmp("EQ", den_sum, inf), m.copysign(m.c(1.0), a), m.div(m.sub(e1, e2), den))
    im = m.div(im_num, den)
    a_inf = m.cmp("EQ", m.abs(a), inf)
    sin_nan = m.isnan(im_num)
    re = m.sel(m.and_(sin_nan, m.not_(a_inf)), m.c(np.nan), re)
    im = m.sel(m.or_(m.cmp("EQ", b, m.c(0.0)), m.and_(a_inf, sin_nan)), m.c(0.0), im)
    return Pair(im, m.neg(re)) if tan else Pair(re, im)


def _sqrt(m: _Math, z: Pair) -> Pair:
    """With u = sqrt((|z| + |a|) / 2): sqrt(z) = u + i b / 2u for a >= 0 and |b| / 2u + i sgn(b) u
    for a < 0, so neither part cancels; u is rescaled where |z| + |a| under- or overflows (the
    StableHLO complex math expander's algorithm, which XLA:CPU and jax use)."""
    x, y = z.re, z.im
    one, two, zero = m.c(1.0), m.c(2.0), m.c(0.0)
    sq2 = m.c(np.sqrt(2.0))
    ax, ay = m.abs(x), m.abs(y)
    eq, gt, lt = m.cmp("EQ", ax, ay), m.cmp("GT", ax, ay), m.cmp("LT", ax, ay)
    sq_ax, sq_ay = m.f("sqrt", ax), m.f("sqrt", ay)
    mx, mn = m.op("max", ax, ay), m.op("min", ax, ay)
    u_general = m.f("sqrt", m.add(m.div(m.hypot_scaled(mx, mn), two), m.div(ax, two)))
    bad = m.or_(m.cmp("EQ", u_general, zero), m.cmp("EQ", u_general, m.c(np.inf)))
    r0 = m.sel(eq, one, m.sel(lt, m.div(ax, ay), m.div(ay, ax)))
    ar0 = m.abs(r0)
    h = m.hypot_scaled(m.op("max", one, ar0), m.op("min", one, ar0))
    sq_1h, sq_rh = m.f("sqrt", m.add(one, h)), m.f("sqrt", m.add(r0, h))
    u_eq = m.div(m.mul(sq_ax, m.c(np.sqrt((1 + np.sqrt(2.0)) / 2) * np.sqrt(2.0))), sq2)
    u = m.sel(eq, u_eq, m.sel(bad, m.sel(gt, m.mul(sq_ax, m.div(sq_1h, sq2)), m.mul(sq_ay, m.div(sq_rh, sq2))),
                              u_general))
    ratio = m.sel(eq, one, m.sel(lt, m.div(sq_ax, sq_ay), m.div(sq_ay, sq_ax)))
    v = m.sel(eq, m.div(sq_ay, m.c(2 * np.sqrt((1 + np.sqrt(2.0)) / 2))),
              m.sel(bad, m.sel(gt, m.div(m.mul(sq_ay, ratio), m.mul(sq_1h, sq2)), m.div(sq_ay, m.mul(sq_rh, sq2))),
                    m.div(ay, m.mul(u_general, two))))
    yneg = m.cmp("LT", y, zero)
    re = m.sel(m.cmp("GE", x, zero), u, v)
    im = m.sel(m.cmp("LT", x, zero), m.sel(yneg, m.neg(u), u), m.sel(yneg, m.neg(v), v))
    return Pair(re, im)


def _rsqrt(m: _Math, z: Pair) -> Pair:
    mn, mx, q = m.abs_parts(z)
    one = m.c(1.0)
    r = m.mul(m.div(one, m.f("sqrt", mx)), m.div(one, m.f("sqrt", m.f("sqrt", q))))
    r = m.sel(m.isnan(r), m.div(one, m.f("sqrt", mn)), r)
    t = m.mul(m.op("atan2", z.im, z.re), m.c(-0.5))
    cs, sn = m.f("cos", t), m.f("sin", t)
    zero, inf = m.c(0.0), m.c(np.inf)
    zz = m.and_(m.cmp("EQ", z.im, zero), m.cmp("EQ", z.re, zero))
    edge = m.or_(m.and_(m.cmp("EQ", m.abs(z.im), inf), m.isnan(z.re)), m.cmp("EQ", m.abs(z.re), inf))
    re = m.sel(zz, inf, m.sel(edge, m.copysign(zero, z.re), m.mul(r, cs)))
    im = m.sel(zz, m.c(np.nan), m.sel(edge, m.neg(m.copysign(zero, z.im)), m.mul(r, sn)))
    return Pair(re, im)


def _pow(m: _Math, x: Pair, y: Pair) -> Pair:
    """|x|^c e^(-d arg x) (cos q + i sin q), q = c arg x + d ln|x|, with Kahan's special cases
    as XLA orders them: 0^c, x^0 = 1, 1^y = 1, inf^c."""
    a, b, c, d = x.re, x.im, y.re, y.im
    zero, one, inf = m.c(0.0), m.c(1.0), m.c(np.inf)
    ab = m.cabs(x)
    arg = m.op("atan2", b, a)
    coeff = m.mul(m.op("pow", ab, c), m.f("exp", m.mul(m.neg(d), arg)))
    q = m.fma(c, arg, m.mul(d, m.f("log", ab)))  # fused as XLA:CPU does: c arg may overflow alone
    res = Pair(m.mul(coeff, m.f("cos", q)), m.mul(coeff, m.f("sin", q)))
    d0 = m.cmp("EQ", d, zero)
    c0 = m.cmp("EQ", c, zero)
    cases = [  # (condition, result), the first that holds wins
        (m.and_(m.and_(m.cmp("EQ", a, inf), m.cmp("EQ", b, zero)), m.and_(d0, m.cmp("LT", c, zero))), (zero, zero)),
        (m.and_(m.and_(m.cmp("EQ", a, inf), m.cmp("EQ", b, zero)), m.and_(d0, m.cmp("GT", c, zero))), (inf, zero)),
        (m.and_(m.cmp("EQ", a, one), m.cmp("EQ", b, zero)), (one, zero)),
        (m.and_(c0, d0), (one, zero)),
        (m.and_(m.and_(m.cmp("EQ", ab, zero), d0), m.cmp("LE", zero, c)), (m.sel(c0, one, zero), zero)),
    ]
    out = [res.re, res.im]
    for cond, val in reversed(cases):
        out = [m.sel(cond, v, o) for v, o in zip(val, out)]
    return Pair(*out)


def _sign(m: _Math, z: Pair) -> Pair:
    r = m.cabs(z)
    z0 = m.cmp("EQ", r, m.c(0.0))
    return Pair(m.sel(z0, m.c(0.0), m.div(z.re, r)), m.sel(z0, m.c(0.0), m.div(z.im, r)))


def _atan2(m: _Math, y: Pair, x: Pair) -> Pair:
    """atan2(y, x) = -i log((x + i y) / sqrt(x^2 + y^2)), every step the complex op XLA:CPU's
    elemental emitter uses (so i y and -i log are full complex multiplies: 0 * inf parts are NaN
    there too)."""
    zero, one = m.c(0.0), m.c(1.0)
    add = BINARY["add"]
    r = _sqrt(m, add(m, _mul(m, x, x), _mul(m, y, y)))
    q = _div(m, add(m, x, _mul(m, Pair(zero, one), y)), r)
    return _mul(m, Pair(zero, m.c(-1.0)), _log(m, q))


UNARY: dict[str, Callable[[_Math, Pair], Pair | Node]] = {
    "exponential": _exp, "log": _log, "exponential_minus_one": _expm1, "log_plus_one": _log1p,
    "sine": lambda m, z: _sincos(m, z, False), "cosine": lambda m, z: _sincos(m, z, True),
    "tanh": _tanh, "tan": lambda m, z: _tanh(m, z, tan=True), "sqrt": _sqrt, "rsqrt": _rsqrt,
    "sign": _sign, "abs": lambda m, z: m.cabs(z), "conj": lambda m, z: Pair(z.re, m.neg(z.im)),
    "negate": lambda m, z: Pair(m.neg(z.re), m.neg(z.im)),
}
BINARY: dict[str, Callable[[_Math, Pair, Pair], Pair]] = {
    "add": lambda m, a, b: Pair(m.add(a.re, b.re), m.add(a.im, b.im)),
    "subtract": lambda m, a, b: Pair(m.sub(a.re, b.re), m.sub(a.im, b.im)),
    "multiply": _mul, "divide": _div, "power": _pow, "atan2": _atan2,
}
# ops that act on each part alone: legalized twice, once per part, by legalize's own handler
PER_PART = {"reshape", "transpose", "slice", "broadcast_in_dim", "reverse", "concatenate", "pad", "select",
            "dynamic_slice", "dynamic_update_slice", "gather", "optimization_barrier", "copy"}


def _as_pair(v: Node | Pair, m: _Math) -> Pair:
    return v if isinstance(v, Pair) else Pair(v, const(0.0, v.dtype, v.shape, m.loc))


# ----------------------------------------------------------------------------- legalize hook
def legalize_op(lg: "Legalizer", op: ir.Operation) -> list[Node | Pair]:
    """An op that touches a complex value, as real nodes; complex results as Pairs."""
    from .legalize import _int, _tensor
    dialect, _, name = op.name.partition(".")
    if name.startswith("broadcast_") and dialect == "chlo":
        raise UnsupportedError("chlo broadcasting ops on complex values", op.name, op.loc)
    ins = [lg.env[id(v)] for v in op.operands]
    shape_dt = [_shape_dt(r.type, op) for r in op.results]
    pairs = [v for v in ins if isinstance(v, Pair)]
    types = [v.type for v in list(op.operands) + list(op.results) if is_complex(v.type)]
    m = _Math(COMPONENT[types[0].element] if types else "f32", op.loc)  # the formulas' real type
    if name == "complex":
        re, im = ins
        return [Pair(re, im)]
    if name in ("real", "imag"):
        (x,) = ins
        if isinstance(x, Pair):
            return [x[name == "imag"]]
        return [x if name == "real" else const(0.0, x.dtype, x.shape, op.loc)]
    if name == "conj" and not pairs:  # of a real value: itself
        return ins
    if name in PER_PART:
        return _per_part(lg, op, ins, shape_dt)
    if name in UNARY and len(ins) == 1 and pairs:
        return [UNARY[name](m, ins[0])]
    if name in BINARY and len(ins) == 2:
        return [BINARY[name](m, _as_pair(ins[0], m), _as_pair(ins[1], m))]
    if name == "compare":
        return [_compare(m, op, _as_pair(ins[0], m), _as_pair(ins[1], m))]
    if name == "convert":
        return [_convert(m, op, ins[0], shape_dt[0])]
    if name in ("constant",):
        return [_constant(op, op.results[0].type)]
    if name in ("dot_general", "dot", "convolution"):
        return [_dot(lg, op, ins, shape_dt[0])]
    if name == "iota":
        shape, t = shape_dt[0]
        return [Pair(Node("iota", [], shape, t, {"dim": _int(op.attributes["iota_dimension"])}, op.loc),
                     const(0.0, t, shape, op.loc))]
    if name in ("reduce", "reduce_window", "sort"):
        return _regioned(lg, op, name, ins)
    if name == "bitcast_convert":
        return [_bitcast(lg, op, ins[0], shape_dt[0])]
    if name == "scatter" and len(ins) == 3:
        return [_scatter(lg, op, ins)]
    for v in list(op.operands) + list(op.results):
        if not is_complex(v.type):
            _tensor(v.type, op.name, op.loc)  # an unsupported real type is the error to report first
    raise UnsupportedError(f"{name} on complex values is not supported", op.name, op.loc)


def _shape_dt(t: object, op: ir.Operation) -> tuple[tuple[int, ...], str]:
    from .legalize import _tensor
    if is_complex(t):
        if any(d is None for d in t.shape):
            raise UnsupportedError(f"dynamic shape {t} is not supported", op.name, op.loc)
        return tuple(int(d) for d in t.shape), COMPONENT[t.element]
    return _tensor(t, op.name, op.loc)


def _view(lg: "Legalizer", ins: list[Node], results: list[tuple[tuple[int, ...], str]]) -> "Legalizer":
    """A stand-in Legalizer whose op handlers see `ins` as the operands and `results` as the result
    types: legalize's own handler then builds the real op."""
    from .legalize import Legalizer

    class View(Legalizer):
        def _ins(self, op: ir.Operation) -> list[Node]:
            return list(ins)

        def _result(self, op: ir.Operation, i: int = 0) -> tuple[tuple[int, ...], str]:
            return results[i]

    v = View()
    v.env = lg.env
    return v


def _handler(op: ir.Operation) -> Callable:
    from .legalize import BY_HLO, Legalizer
    name = op.name.partition(".")[2]
    return (lambda lg, o: Legalizer._elementwise(lg, o)) if name in BY_HLO else getattr(Legalizer, "_" + name)


def _per_part(lg: "Legalizer", op: ir.Operation, ins: list[Node | Pair],
              shape_dt: list[tuple[tuple[int, ...], str]]) -> list[Node | Pair]:
    outs = []
    for k in (0, 1):
        r = _handler(op)(_view(lg, [v[k] if isinstance(v, Pair) else v for v in ins], shape_dt), op)
        outs.append(r if isinstance(r, list) else [r])
    return [Pair(a, b) if is_complex(res.type) else a for a, b, res in zip(outs[0], outs[1], op.results)]


def _compare(m: _Math, op: ir.Operation, a: Pair, b: Pair) -> Node:
    d = op.attributes["comparison_direction"].value
    if d not in ("EQ", "NE"):
        raise UnsupportedError(f"compare {d} of complex values (only EQ and NE are defined)", op.name, op.loc)
    parts = [m.cmp(d, a[k], b[k]) for k in (0, 1)]
    return m.and_(*parts) if d == "EQ" else m.or_(*parts)


def _convert(m: _Math, op: ir.Operation, x: Node | Pair, out: tuple[tuple[int, ...], str]) -> Node | Pair:
    shape, dt = out
    cast = lambda n: n if n.dtype == dt else Node("convert", [n], n.shape, dt, {}, op.loc)  # noqa: E731
    if is_complex(op.results[0].type):
        if isinstance(x, Pair):
            return Pair(cast(x.re), cast(x.im))
        return Pair(cast(x), const(0.0, dt, shape, op.loc))
    return cast(x.re)  # complex -> real keeps the real part, as XLA does


def _constant(op: ir.Operation, t: ir.TensorType) -> Pair:
    attr = op.attributes["value"]
    shape = tuple(int(d) for d in t.shape)
    dt = COMPONENT[t.element]
    np_t = np.float32 if dt == "f32" else np.float64
    if getattr(attr, "is_splat", False) and all(shape):
        v = complex(np.asarray(attr.splat_value))
        return Pair(const(np_t(v.real), dt, shape, op.loc), const(np_t(v.imag), dt, shape, op.loc))
    values = np.asarray(attr.values).astype(np.complex64 if dt == "f32" else np.complex128).reshape(shape)
    return Pair(*(Node("const", [], shape, dt, {"value": np.ascontiguousarray(p)}, op.loc)
                  for p in (values.real, values.imag)))


def _dot(lg: "Legalizer", op: ir.Operation, ins: list[Node | Pair], out: tuple[tuple[int, ...], str]) -> Pair:
    """A complex product as XLA:CPU computes it, which decides which parts of a result with
    infinite, NaN or overflowing terms are inf and which NaN (measured against jax on random
    operands with edge parts). A vector . vector product, and a batched one where an operand has
    no free dims, is a loop there that forms every complex term, then sums them: elementwise
    work at the size of the larger operand (_dot_by_terms). Any other product is Eigen's: four
    real products (ar br - ai bi, ar bi + ai br), here on the matrix engine, then scaled by
    alpha = 1 + 0i with a complex multiply, which makes a part NaN wherever the other part is
    inf or NaN. Still approximate: a vector . matrix product and small matrices agree with
    XLA:CPU on most but not all such edge cases (its choice of loop and FMA contraction there
    is not either model)."""
    from .legalize import Legalizer
    name = op.name.partition(".")[2]
    m = _Math(out[1], op.loc)
    if name in ("dot_general", "dot"):
        dims = _dot_dims(op, ins)
        lb, rb, lc, rc = dims
        shapes = [v.re.shape if isinstance(v, Pair) else v.shape for v in ins]
        free = [[d for d in range(len(s)) if d not in b + c] for s, b, c in ((shapes[0], lb, lc), (shapes[1], rb, rc))]
        if not any(free) or (lb and not all(free)):
            return _dot_by_terms(m, ins, dims, free, out)
    handler = getattr(Legalizer, "_" + name)
    a, b = ins

    def prod(x: Node | None, y: Node | None) -> Node | None:
        if x is None or y is None:
            return None
        return handler(_view(lg, [x, y], [out]), op)

    def part(v: Node | Pair, k: int) -> Node | None:
        return v[k] if isinstance(v, Pair) else (v if k == 0 else None)

    def combine(p: Node | None, q: Node | None, sub: bool) -> Node:
        if p is None and q is None:
            return const(0.0, out[1], out[0], op.loc)
        if q is None:
            return p
        if p is None:
            return m.neg(q) if sub else q
        return m.sub(p, q) if sub else m.add(p, q)

    re = combine(prod(part(a, 0), part(b, 0)), prod(part(a, 1), part(b, 1)), True)
    im = combine(prod(part(a, 0), part(b, 1)), prod(part(a, 1), part(b, 0)), False)
    if name == "convolution":
        return Pair(re, im)
    zero = m.c(0.0)
    return Pair(m.sub(re, m.mul(im, zero)), m.add(im, m.mul(re, zero)))  # (re, im) * (1 + 0i)


def _dot_dims(op: ir.Operation, ins: list[Node | Pair]) -> tuple[list[int], list[int], list[int], list[int]]:
    """(lhs batch, rhs batch, lhs contracting, rhs contracting) dims of a dot_general or dot."""
    from .legalize import _ints
    if op.name.endswith(".dot"):
        a = ins[0]
        return [], [], [len((a.re if isinstance(a, Pair) else a).shape) - 1], [0]
    dn = op.attributes["dot_dimension_numbers"]
    f = dn.fields if hasattr(dn, "fields") else dn
    return tuple(list(_ints(f.get(k, ()))) for k in (  # type: ignore[return-value]
        "lhs_batching_dimensions", "rhs_batching_dimensions", "lhs_contracting_dimensions", "rhs_contracting_dimensions"))


def _dot_by_terms(m: _Math, ins: list[Node | Pair], dims: tuple[list[int], ...], free: list[list[int]],
                  out: tuple[tuple[int, ...], str]) -> Pair:
    """sum over the contracting dims of the complex products a * b, both operands laid out as
    [batch, lhs free, rhs free, contracting] (broadcast views; one side has no free elements)."""
    from .graph import transpose
    lb, rb, lc, rc = dims
    shape, dt = out
    cast = lambda x: x if x.dtype == dt else Node("convert", [x], x.shape, dt, {}, m.loc)  # noqa: E731
    a, b = (Pair(cast(v.re), cast(v.im)) if isinstance(v, Pair) else _as_pair(cast(v), m) for v in ins)
    nb, nl, nr, nc = len(lb), len(free[0]), len(free[1]), len(lc)
    full = shape + tuple(a.re.shape[d] for d in lc)
    lay_a = tuple(range(nb + nl)) + tuple(range(nb + nl + nr, nb + nl + nr + nc))
    lay_b = tuple(range(nb)) + tuple(range(nb + nl, nb + nl + nr + nc))
    a = Pair(*(broadcast(transpose(x, lb + free[0] + lc, m.loc), full, lay_a, m.loc) for x in (a.re, a.im)))
    b = Pair(*(broadcast(transpose(x, rb + free[1] + rc, m.loc), full, lay_b, m.loc) for x in (b.re, b.im)))
    t = _mul(m, a, b)
    axes = tuple(range(len(shape), len(full)))
    parts = []
    for x in (t.re, t.im):
        p, q = (Node("param", [], (), dt, {"index": i}, m.loc) for i in (0, 1))
        body = Graph([p, q], [ew("add", [p, q], loc=m.loc)])
        parts.append(Node("reduce", [x, m.c(0.0)], shape, dt, {"axes": axes, "body": body, "index": 0, "n": 1}, m.loc))
    return Pair(*parts)


def _regioned(lg: "Legalizer", op: ir.Operation, name: str, ins: list[Node | Pair]) -> list[Node | Pair]:
    """reduce, reduce_window and sort: the complex operands as two real ones each, the region's
    complex arguments as two real params (legalize._region), results re-paired."""
    from .legalize import Legalizer
    if name != "sort" and len(ins) == 2:
        split = _reduce_per_part(lg, op, name, ins)
        if split is not None:
            return [split]
    results = []
    for r in op.results:
        s, dt = _shape_dt(r.type, op)
        results += [(s, dt)] * (2 if is_complex(r.type) else 1)
    outs = getattr(Legalizer, "_" + name)(_view(lg, flat(ins), results), op)
    if name == "sort":
        _sort_params(outs, op)
    it = iter(outs)
    return [Pair(next(it), next(it)) if is_complex(r.type) else next(it) for r in op.results]


def _sort_params(outs: list[Node], op: ir.Operation) -> None:
    """A sort comparator takes (lhs, rhs) per operand; its flattened params are (lhs.re, lhs.im,
    rhs.re, rhs.im) for a complex operand: reorder them to (lhs.re, rhs.re, lhs.im, rhs.im), the
    order of the flattened operands."""
    body: Graph = outs[0].attrs["body"] if outs and outs[0].op == "sort" else None
    if body is None:
        return
    it = iter(body.params)
    order: list[Node] = []
    for v in op.operands:
        if is_complex(v.type):
            lre, lim, rre, rim = (next(it) for _ in range(4))
            order += [lre, rre, lim, rim]
        else:
            order += [next(it), next(it)]
    body.params[:] = order
    for i, p in enumerate(order):
        p.attrs["index"] = i


def _per_part_regions(body: Graph) -> list[Graph] | None:
    """A region over one complex value, params (a.re, a.im, b.re, b.im) and outputs (re, im), as
    one real region per part when each output part reads only the same part of its arguments
    (add, set, max of parts...), else None (multiply mixes them)."""
    if len(body.params) != 4 or len(body.outputs) != 2:
        return None
    regions = []
    for k in (0, 1):
        a, b = body.params[k], body.params[2 + k]
        used = {n.id for n in toposort([body.outputs[k]]) if n.op == "param"}
        if not used <= {a.id, b.id}:
            return None
        regions.append(Graph([a, b], [body.outputs[k]]))
    for r in regions:  # passes read a region param's position from its index
        for i, p in enumerate(r.params):
            p.attrs["index"] = i
    return regions


def _scatter(lg: "Legalizer", op: ir.Operation, ins: list[Node | Pair]) -> Pair:
    """A scatter whose region treats the parts apart (set, add) is one real scatter per part; one
    whose region mixes them (multiply, max and min by jax's lexicographic order) is one scatter of
    the two parts stacked (indexing.scatter_many), its region seeing (a.re, a.im, b.re, b.im)."""
    from . import indexing
    from .legalize import _fields, _region
    operand, idx, upd = ins
    if isinstance(idx, Pair):
        raise UnsupportedError("scatter with complex indices", op.name, op.loc)
    body = _region(op, lg)
    regions = _per_part_regions(body)
    m = _Math(COMPONENT[op.operands[0].type.element], op.loc)
    dn = _fields(op.attributes["scatter_dimension_numbers"])
    operand, upd = _as_pair(operand, m), _as_pair(upd, m)
    if regions is None:
        return Pair(*indexing.scatter_many([operand.re, operand.im], idx, [upd.re, upd.im], dn, body, op.loc))
    return Pair(*(indexing.scatter(operand[k], idx, upd[k], dn, regions[k], op.loc) for k in (0, 1)))


def _reduce_per_part(lg: "Legalizer", op: ir.Operation, name: str, ins: list[Node | Pair]) -> Pair | None:
    """A reduce or reduce_window of one complex operand whose region keeps the parts apart (a
    sum): one real reduction per part, each with the fast paths of a single reduction (a
    cumulative sum becomes an O(n) scan rather than a window per element)."""
    from . import windows
    from .legalize import _ints, _region
    x, init = ins
    if not (isinstance(x, Pair) and isinstance(init, Pair)):
        return None
    regions = _per_part_regions(_region(op, lg))
    if regions is None:
        return None
    shape, dt = _shape_dt(op.results[0].type, op)
    if name == "reduce":
        axes = tuple(sorted(_ints(op.attributes["dimensions"])))
        return Pair(*(Node("reduce", [x[k], init[k]], shape, dt, {"axes": axes, "body": regions[k], "index": 0, "n": 1},
                           op.loc) for k in (0, 1)))
    attrs = lg._window_attrs(op, len(x.re.shape))
    return Pair(*(windows.reduce_window([x[k]], [init[k]], regions[k], [shape], *attrs, op.loc)[0] for k in (0, 1)))


def _bitcast(lg: "Legalizer", op: ir.Operation, x: Node | Pair, out: tuple[tuple[int, ...], str]) -> Node | Pair:
    """bitcast_convert through the interleaved layout: a complex value is its component type
    with a trailing dim of 2 (as in memory), which legalize's own bitcast then reinterprets."""
    from .legalize import Legalizer
    if isinstance(x, Pair):
        x = interleave(x, op.loc)
    shape, dt = out
    if not is_complex(op.results[0].type):
        return Legalizer._bitcast_convert(_view(lg, [x], [out]), op)
    pairs = Legalizer._bitcast_convert(_view(lg, [x], [(shape + (2,), dt)]), op)
    return Pair(*(_part_view(pairs, shape, k, op.loc) for k in (0, 1)))
