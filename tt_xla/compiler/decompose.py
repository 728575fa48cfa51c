"""Pass 3: math functions -> device primitives (mul, fma, rint, shifts, bitcasts, selects).

The device has no exp or log unit worth the name, so every transcendental becomes a short,
branch-free sequence: range reduction on the exponent bits plus a polynomial. All of them are
written once here for f32; bf16/f16 are computed in f32 and rounded back; f64 keeps the op (the
code generator evaluates it in double precision).
"""
from __future__ import annotations

import math

from .graph import Graph, Node, const, ew
from .ranges import value_range
from .rewrite import rewrite

TRANSCENDENTAL = {"exp", "expm1", "log", "log1p", "tanh", "logistic", "erf", "rsqrt",
                  "round_away", "exp2"}
LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125     # ln 2 split so n*LN2_HI is exact for |n| < 2^11
LN2_LO = 1.428606765330187e-06


class E:
    """A tiny expression builder over f32 nodes, so decompositions read like math."""

    def __init__(self, node: Node):
        self.n = node

    @staticmethod
    def c(v: float, like: "E", dtype: str = "f32") -> "E":
        return E(const(v, dtype, like.n.shape))

    def _op(self, op: str, other: "E | float", **kw) -> "E":
        o = other if isinstance(other, E) else E.c(other, self, self.n.dtype)
        return E(ew(op, [self.n, o.n], **kw))

    def __add__(self, o): return self._op("add", o)
    def __sub__(self, o): return self._op("sub", o)
    def __mul__(self, o): return self._op("mul", o)
    def __truediv__(self, o): return self._op("div", o)
    def __rsub__(self, o): return E.c(o, self, self.n.dtype)._op("sub", self)
    def __rtruediv__(self, o): return E.c(o, self, self.n.dtype)._op("div", self)
    __radd__ = __add__
    __rmul__ = __mul__
    def __neg__(self): return E(ew("neg", [self.n]))
    # Guards: NaN in self propagates, signed zeros don't matter here, so one compare+blend
    def max(self, o): return self._op("max", o, fast=True)
    def min(self, o): return self._op("min", o, fast=True)
    def range(self) -> tuple[float, float]: return value_range(self.n)
    def cmp(self, d: str, o) -> "E": return self._op("cmp", o, dtype="i1", dir=d, total=False)
    def __and__(self, o): return self._op("and", o)
    def __or__(self, o): return self._op("or", o)
    def __lshift__(self, k: int): return self._op("shl", k)
    def __rshift__(self, k: int): return self._op("shr_a", k)
    def u(self, op: str) -> "E": return E(ew(op, [self.n]))
    def to(self, dt: str, fast: bool = False) -> "E":
        return E(ew("convert", [self.n], dtype=dt, fast=fast))
    def bits(self) -> "E": return E(ew("bitcast", [self.n], dtype="i32"))
    def f32(self) -> "E": return E(ew("bitcast", [self.n], dtype="f32"))

    def fma(self, b: "E | float", c: "E | float") -> "E":
        b = b if isinstance(b, E) else E.c(b, self)
        c = c if isinstance(c, E) else E.c(c, self)
        return E(ew("fma", [self.n, b.n, c.n]))


def select(p: E, a: "E | float", b: "E | float") -> E:
    a = a if isinstance(a, E) else E.c(a, p, "f32")
    b = b if isinstance(b, E) else E.c(b, p, "f32")
    return E(ew("select", [p.n, a.n, b.n]))


def horner(x: E, coeffs: list[float]) -> E:
    """coeffs from the highest power down."""
    p = E.c(coeffs[0], x)
    for c in coeffs[1:]:
        p = p.fma(x, c)
    return p


def pow2i(n: E) -> E:
    """2**n for an f32 holding an integer in [-126, 127], built from exponent bits."""
    return ((n.to("i32", fast=True) + 127) << 23).f32()


def _reduce_exp(x: E, cap: bool = True) -> tuple[E, E]:
    """x = n*ln2 + r, |r| <= ln2/2 (n capped at 127 so 2**n stays finite)."""
    n = (x * LOG2E).u("round_even")
    n = n.min(127.0) if cap else n
    r = n.fma(-LN2_HI, x)
    r = n.fma(-LN2_LO, r)
    return n, r


# e^r on |r| <= ln2/2: a degree-6 near-minimax polynomial (Lawson-weighted Chebyshev fit, max
# relative error 1.9e-9 in exact arithmetic, < 1 ulp evaluated in f32): one FMA less than Taylor.
EXP_POLY = [0.0013836845755577087, 0.008374815806746483, 0.04166822507977486,
            0.16666419804096222, 0.49999991059303284, 1.0, 1.0]
EXPM1_TAIL = [1 / math.factorial(k + 2) for k in range(6, -1, -1)]    # (e^r-1-r)/r^2


def exp(x: E) -> E:
    """No selects: x is clamped to where e^x under- or overflows anyway, and 2^n is applied as
    two factors so that the extremes round to 0 and inf by themselves (NaN passes the clamps)."""
    lo, hi = x.range()
    xc = x.max(-104.0) if lo < -104.0 else x
    xc = xc.min(89.0) if hi > 89.0 else xc
    n, r = _reduce_exp(xc, cap=False)
    p = horner(r, EXP_POLY)
    if lo >= -87.0 and hi <= 88.0:
        return p * pow2i(n)
    ni = n.to("i32", fast=True)
    half = ni >> 1
    s1 = ((half + 127) << 23).f32()
    s2 = ((ni - half + 127) << 23).f32()
    return (p * s1) * s2


def exp2(x: E) -> E:
    xc = x.max(-126.0).min(128.0)
    n = xc.u("round_even").min(127.0)
    r = (xc - n) * math.log(2)
    y = horner(r, EXP_POLY) * pow2i(n)
    y = select(x.cmp("GE", 128.0), math.inf, y)
    return select(x.cmp("LT", -126.0), 0.0, y)


def expm1(x: E) -> E:
    lo, hi = x.range()   # ELU's argument is select(x > 0, 0, x): hi = 0, no overflow guard
    xc = x.max(-88.0) if lo < -87.0 else x
    xc = xc.min(88.72284) if hi > 88.72284 else xc
    n, r = _reduce_exp(xc, hi > 88.0)
    if lo < -87.0:
        n = n.max(-126.0)
    pm1 = (r * r).fma(horner(r, EXPM1_TAIL), r)     # e^r - 1, exact as r -> 0
    s = pow2i(n)
    y = s.fma(pm1, s - 1.0)                          # s*(1+pm1) - 1
    return select(x.cmp("GT", 88.72284), math.inf, y) if hi > 88.72284 else y


def log(x: E) -> E:
    tiny = x.cmp("LT", 1.1754943508222875e-38)
    xs = select(tiny, x * 8388608.0, x)              # lift denormals into the normal range
    b = xs.bits()
    e = ((b >> 23) - 127).to("f32", fast=True) - select(tiny, 23.0, 0.0)
    m = ((b & 0x007FFFFF) | 0x3F800000).f32()        # mantissa in [1, 2)
    big = m.cmp("GT", 1.4142135623730951)
    m = select(big, m * 0.5, m)
    e = select(big, e + 1.0, e)
    f = m - 1.0
    s = f / (f + 2.0)                                 # log(1+f) = 2 atanh(s)
    z = s * s
    l1p = (s + s) * horner(z, [1 / 9, 1 / 7, 1 / 5, 1 / 3, 1.0])
    y = e.fma(LN2_HI, e.fma(LN2_LO, l1p))
    y = select(x.cmp("EQ", math.inf), math.inf, y)
    y = select(x.cmp("EQ", 0.0), -math.inf, y)
    return select(x.cmp("LT", 0.0) | x.cmp("NE", x), math.nan, y)


def log1p(x: E) -> E:
    u = x + 1.0
    d = u - 1.0
    y = select(d.cmp("EQ", 0.0), x, log(u) * (x / d))   # corrects the rounding of 1+x
    return select(x.cmp("EQ", math.inf), math.inf, y)


def copysign(mag: E, sign: E) -> E:
    return ((mag.bits() & 0x7FFFFFFF) | (sign.bits() & -0x80000000)).f32()


def tanh(x: E) -> E:
    a = x.u("abs").min(9.0)                          # tanh(9) rounds to 1 in f32
    e = expm1(a + a)
    return copysign(e / (e + 2.0), x)


def logistic(x: E) -> E:
    return 1.0 / (exp(-x) + 1.0)


ERF_SMALL = [(-1) ** k / (math.factorial(k) * (2 * k + 1)) * 2 / math.sqrt(math.pi) for k in range(7, -1, -1)]
AS_P, AS_A = 0.3275911, [1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592]


def erf(x: E) -> E:
    a = x.u("abs").min(4.0)
    small = x * horner(x * x, ERF_SMALL)             # Maclaurin series, |x| < 0.5
    t = 1.0 / a.fma(AS_P, 1.0)                       # Abramowitz & Stegun 7.1.26
    big = 1.0 - t * horner(t, AS_A) * exp(-(a * a))
    return select(a.cmp("LT", 0.5), small, copysign(big, x))


def rsqrt(x: E) -> E:
    return 1.0 / x.u("sqrt")


def round_away(x: E) -> E:
    t = x.u("trunc")
    half = (x - t).u("abs").cmp("GE", 0.5)
    return select(half, t + copysign(E.c(1.0, x), x), t)


RULES = {"exp": exp, "expm1": expm1, "log": log, "log1p": log1p, "tanh": tanh,
         "logistic": logistic, "erf": erf, "rsqrt": rsqrt, "round_away": round_away, "exp2": exp2}


def _decompose(n: Node) -> Node:
    if n.op not in RULES or n.dtype == "f64":
        return n
    x = n.inputs[0]
    if x.dtype != "f32":  # from the rounded bf16/f16 value, as XLA:CPU upcasts math inputs
        x = ew("convert", [x], dtype="f32", rounded=True)
    y = RULES[n.op](E(x)).n
    if n.dtype != "f32":
        y = ew("convert", [y], dtype=n.dtype)
    y.loc = n.loc
    return y


def decompose(graph: Graph) -> Graph:
    return rewrite(graph, _decompose)

