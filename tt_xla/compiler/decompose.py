"""Pass 3: math functions -> device primitives (mul, fma, floor, shifts, bitcasts, selects).

The device has no exp or log unit worth the name, so every transcendental becomes a short,
branch-free sequence: range reduction on the exponent bits plus a polynomial or rational of the
lowest degree that keeps it within ~3e-7 relative error (docs/math.md has the measured errors
and op counts). All of them are written once here for f32; bf16/f16 are computed in f32 and
rounded back; f64 keeps the op (the code generator evaluates it in double precision).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .graph import Graph, Node, const, ew, toposort, users
from .ranges import float_const, value_range
from .rewrite import rewrite

TRANSCENDENTAL = {"exp", "expm1", "log", "log1p", "tanh", "logistic", "erf", "rsqrt",
                  "round_away", "exp2"}
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
LN2_HI = 0.693145751953125     # ln 2 split so n*LN2_HI is exact for |n| < 2^11
LN2_LO = 1.428606765330187e-06
# Adding 1.5*2^23 to a float of magnitude < 2^22 rounds it to an integer n and leaves n in the
# low mantissa bits; with 127 more, the low 9 bits of the sum's bits are n + 127, which a shift
# by 23 turns into 2^n (0 for n = -127, inf for n = 128). So one add (or FMA) replaces rint, the
# float->int conversion and the bias add, and 2^n costs one shift.
SHIFTER = 12582912.0 + 127.0
TINY = 1.1754943508222875e-38  # smallest normal f32: smaller inputs read as zero (DAZ)
# The coefficients below come from tools/minimax.py (minimax fits, rounded to f32); tools/ulp.py
# measures the kernels built from them (table in docs/math.md).


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
    # Unordered: a NaN operand gives either operand (one host instruction, prelude.c), for guards
    # whose NaN reaches the result another way
    def max_u(self, o): return self._op("max", o, fast="unordered")
    def min_u(self, o): return self._op("min", o, fast="unordered")

    def clamp(self, lo: float | None, hi: float | None) -> "E":
        """max(x, lo) then min(., hi), NaN in x propagating; a None bound is not applied. Both
        bounds are one `clamp` node: four host instructions where two selects take five to eight."""
        if lo is not None and hi is not None:
            return E(ew("clamp", [self.n, E.c(lo, self).n, E.c(hi, self).n]))
        return self.max(lo) if lo is not None else self.min(hi) if hi is not None else self

    def range(self) -> tuple[float, float]:
        n = self.n
        while n.op == "convert" and n.dtype == "f32" and n.inputs[0].dtype in ("bf16", "f16"):
            n = n.inputs[0]  # widening is exact: bf16 ELU's argument is still known <= 0
        return value_range(n)
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
        b = b if isinstance(b, E) else E.c(b, self, self.n.dtype)
        c = c if isinstance(c, E) else E.c(c, self, self.n.dtype)
        return E(ew("fma", [self.n, b.n, c.n]))


def select(p: E, a: "E | float", b: "E | float") -> E:
    a = a if isinstance(a, E) else E.c(a, p, "f32")
    b = b if isinstance(b, E) else E.c(b, p, "f32")
    return E(ew("select", [p.n, a.n, b.n]))


def horner(x: E, coeffs: list[float]) -> E:
    """The polynomial with `coeffs` (highest power first) at x, by FMAs, computed in x's type
    (f32 here; special.py's f64 paths in f64)."""
    p = E.c(coeffs[0], x, x.n.dtype)
    for c in coeffs[1:]:
        p = p.fma(x, c)
    return p


def pow2_shifted(t: E) -> E:
    """2^n from t = n + SHIFTER (n an integer in [-127, 128]): one shift, see SHIFTER."""
    return (t.bits() << 23).f32()


# floor(x/ln2 + 2^-20): a tiny negative x still gets n = 0 and r = x, so e^-tiny rounds to 1 (with
# n = -1 it would be P(ln2 - tiny)/2, an ulp below). The overflow edge moves by 2^-20 ln2, less
# than the spacing of f32 there.
FLOOR_BIAS = 2.0 ** -20
# e^r = 1 + r*Q(r) on r in [0, ln2] (fitted on [-1e-3, ln2 + 1e-3] for the roundings), degree 5: 1.7e-7 relative in f32 (degree 4: 3e-6). The
# constant 1 is exact so that e^0 = 1.
EXP_POLY = [0.0116749731823802, 0.03905441612005234, 0.16755898296833038, 0.49987006187438965,
            1.0000059604644775, 1.0]
# (e^r - 1)/r on |r| <= ln2/2, degree 5: 1.5e-7 relative (degree 4: 5.8e-7)
EXPM1_POLY = [0.001388886827044189, 0.008369275368750095, 0.041667141020298004,
              0.16666504740715027, 0.4999999701976776, 1.0]


@dataclass(frozen=True)
class Precision:
    """The approximations for one result type. bf16 keeps 8 significant bits, so its results
    need ~2^-13 relative error, not f32's 2^-22: lower degrees and one-FMA reductions (then
    rounding to bf16 agrees with XLA's f32-then-round in all but ~2% of values, by one bf16 ulp)."""
    exp: list[float]
    expm1: list[float]
    tanh: tuple[float, list[float], list[float]]   # clamp, P, Q
    exact_ln2: bool


# bf16: e^r degree 3 (8.6e-5), (e^r - 1)/r degree 3 (2.1e-5), tanh 3/3 on |x| <= 4 (1.5e-5; bf16
# rounds tanh(4) to 1)
BF16_MATH = Precision(
    exp=[0.2315235137939453, 0.47373154759407043, 1.002854347229004, 1.0],
    expm1=[0.04160967469215393, 0.1675010770559311, 0.5000167489051819, 1.0],
    tanh=(4.0, [0.0007758832070976496, 0.10550951212644577, 1.0],
          [0.013805992901325226, 0.4387723505496979, 1.0]),
    exact_ln2=False)


def exp(x: E, negate: bool = False, prec: Precision | None = None, nan_free: bool = False) -> E:
    p, s = exp_parts(x, negate, prec, nan_free)
    return p * s


def exp_parts(x: E, negate: bool = False, prec: Precision | None = None, nan_free: bool = False) -> tuple[E, E]:
    """(P(r), 2^n) with e^x = P(r) 2^n (e^-x when negate), so `1 + e^x` can be one FMA.
    e^x (e^-x when negate) = 2^n e^r with n = floor(x/ln2), r in [0, ln2): then 2^n is normal
    exactly when the result is, and n = -127 (result below the smallest normal: 0 under FTZ) and
    n = 128 (overflow: inf) come out of the exponent bits by themselves, so no select is needed.
    The guards only keep n in [-127, 128], each only where the argument's range needs it. 12
    vector ops plus the guards. e^-x folds the sign into the constants (r = -(x + n ln2) and
    P(-r) has the odd coefficients negated).
    NaN: the underflow guard keeps it (a compare and a blend on the host) and r is computed from
    its result, so a NaN x gives a NaN r; the overflow guard, which only n reads, is unordered (one
    instruction): past it r = x - 128 ln2 > 0, P(r) >= 1 and the result is P(r) * inf = inf.
    `nan_free`: the caller's result is NaN for a NaN x whatever this returns (GELU's x / (1 + e)),
    so both guards are unordered and r comes from their result."""
    lo, hi = x.range()
    if negate:
        lo, hi = -hi, -lo      # the range of -x
    sign = -1.0 if negate else 1.0

    def at_least(v: E, b: float, unordered: bool) -> E:   # sign * v >= b
        if negate:
            return v.min_u(-b) if unordered else v.min(-b)
        return v.max_u(b) if unordered else v.max(b)

    xl = at_least(x, -88.0, nan_free) if lo < -88.0 else x      # keeps n >= -127
    xc = (xl.max_u(-88.75) if negate else xl.min_u(88.75)) if hi > 88.75 else xl   # n <= 128
    if nan_free:
        xl = xc
    prec = prec or F32_MATH
    n = xc.fma(sign * LOG2E, FLOOR_BIAS).u("floor")
    r = n.fma(-sign * LN2_LO, n.fma(-sign * LN2_HI, xl)) if prec.exact_ln2 else n.fma(-sign * LN2, xl)
    poly = [c * sign ** (len(prec.exp) - 1 - k) for k, c in enumerate(prec.exp)]    # P(sign * r)
    return horner(r, poly), pow2_shifted(n + SHIFTER)


def exp2(x: E) -> E:
    """2^x = 2^n e^((x - n) ln2), n = floor(x): exp's scheme with an exact reduction."""
    xc = x.clamp(-127.0, 128.0)
    n = (xc + FLOOR_BIAS).u("floor")
    return horner((xc - n) * LN2, EXP_POLY) * pow2_shifted(n + SHIFTER)


def with_sign_of(y: E, x: E) -> E:
    """y with x's sign bit ORed in: for functions whose result has the sign of x (expm1, log1p),
    this gives f(-0) = -0 whatever the host compiler does with zeros' signs."""
    return (y.bits() | (x.bits() & -0x80000000)).f32()


def _expm1_core(x: E, exact_ln2: bool, poly: list[float] = EXPM1_POLY) -> E:
    """e^x - 1 for x in [-88, 88]: n = rint(x/ln2), r = x - n ln2 in [-ln2/2, ln2/2] (so r = x
    exactly near 0), s = 2^n (0 for n = -127), result s(1 + (e^r - 1)) - 1. Written so the sign of
    a zero survives with no extra op: e^r - 1 = r * P(r), and for n = 0 the last FMA adds
    -(1 - s) = -0 (an FMA with a negated addend is an exact fused multiply-subtract; never
    negate an FMA's result: compilers turn -(a*b + c) into -a*b - c, which is +0 where it should
    be -0)."""
    t = x.fma(LOG2E, SHIFTER)   # n + SHIFTER with n = rint(x/ln2)
    n, s = t - SHIFTER, pow2_shifted(t)
    # One FMA with ln2 rounded to f32 is off by n * 1.9e-9 in r; when n <= 0 that error is
    # scaled by s <= 1/2 against a result >= 0.29 in magnitude, so it is below 1e-8 relative.
    r = n.fma(-LN2, x) if not exact_ln2 else n.fma(-LN2_LO, n.fma(-LN2_HI, x))
    return s.fma(r * horner(r, poly), -(1.0 - s))


def _expm1_halved(x: E, poly: list[float] = EXPM1_POLY) -> E:
    """e^x - 1 for x in [-88, 88.8] without 2^128: g = 2(e^(x/2) - 1), then e^x - 1 = g + g^2/4.
    x/2 itself is never formed (it would flush below 2^-125): n = rint(x/(2 ln2)), r2 = x - 2n ln2,
    and 2(e^(r2/2) - 1) = r2 P(r2/2), the halving folded into P's coefficients. (-0 gets its sign
    back at the end: with 2s - 2 an FMA, the host compiler may rewrite its zero's sign.)"""
    t = x.fma(LOG2E / 2, SHIFTER)
    n, s = t - SHIFTER, pow2_shifted(t)
    r2 = n.fma(-2 * LN2_LO, n.fma(-2 * LN2_HI, x))
    p = [c * 0.5 ** (len(poly) - 1 - k) for k, c in enumerate(poly)]
    g = s.fma(r2 * horner(r2, p), s.fma(2.0, -2.0))          # s (2 + r2 P) - 2
    return with_sign_of(g * g.fma(0.25, 1.0), x)


def _nonpositive_part(x: E) -> tuple[Node, E] | None:
    """(p, y) when x is select(p, 0, y) with p = y > 0 (or y >= 0), as ELU writes the argument of
    its expm1: the lanes where p holds are 0 and the others y <= 0 or NaN."""
    n = x.n
    zero = float_const(n.inputs[1]) if n.op == "select" else None
    if zero != 0.0 or math.copysign(1.0, zero) < 0:   # expm1(-0) would be -0
        return None
    p, y = n.inputs[0], n.inputs[2]
    if p.op == "cmp" and p.attrs.get("dir") in ("GT", "GE") and p.inputs[0] is y and float_const(p.inputs[1]) == 0.0:
        return p, E(y)
    return None


def expm1(x: E, prec: Precision | None = None) -> E:
    prec = prec or F32_MATH
    part = _nonpositive_part(x)
    if part is not None:
        # expm1(select(p, 0, y)) = select(p, 0, expm1(y)), and expm1(y) is only read where y <= 0
        # (or NaN): so it needs only the lower clamp, and no select before it (ELU: 19 -> 14 ops;
        # simplify merges ELU's outer select(p, x, .) with this one)
        p, y = part
        return select(E(p), 0.0, _expm1_core(y.max(-88.0), False, prec.expm1))
    lo, hi = x.range()   # ELU's argument is select(x > 0, 0, x): hi = 0, no overflow handling
    low = -88.0 if lo < -88.0 else None        # keeps n >= -127: 2^n >= 0, result -1
    if hi <= 0.0:
        return _expm1_core(x.clamp(low, None), False, prec.expm1)
    if hi <= 88.0:
        return _expm1_core(x.clamp(low, None), prec.exact_ln2, prec.expm1)
    return _expm1_halved(x.clamp(low, 88.8), prec.expm1)   # past 88.72 the result rounds to inf by itself


def _f32(bits: int) -> float:
    return float(np.array(bits, np.uint32).view(np.float32))


# log and log1p are XLA:CPU's own sequences (jaxlib's xla/codegen/intrinsic log and log1p: Cephes'
# logf as Eigen writes it, read from the LLVM IR and object code XLA:CPU emits), operation for
# operation and with FMAs exactly where LLVM contracts a multiply into an add: so the results
# are CPU JAX's to the bit, and jax.random's normal (erf_inv = a polynomial in log1p) and gamma
# (log) give CPU JAX's numbers. (Max ulp error: docs/math.md; they are also more accurate than
# the degree-8 form they replaced.) Every multiply whose only reader is an add is written as an
# FMA here or reads into an FMA's addend, so the host compiler's contraction has nothing to choose.
SQRT_HALF_BITS = 0x3F3504F3     # f32 bits of sqrt(1/2)
LOG_P = [[_f32(0x3D9021BB), _f32(0xBDEBD1B8), _f32(0x3DEF251A)],   # three interleaved chains
         [_f32(0xBDFE5D4F), _f32(0x3E11E9BF), _f32(0xBE2AAE50)],
         [_f32(0x3E4CCEAC), _f32(0xBE7FFFFC), _f32(0x3EAAAAAA)]]
LOG_LN2_HI, LOG_LN2_LO = _f32(0x3F318000), _f32(0xB95E8083)
# log1p(x) = x - x^2/2 + x^3 N(x)/Q(x) for |x| < sqrt(2) - 1
LOG1P_SMALL = _f32(0x3ED413CD)
LOG1P_N = [4.527e-05, _f32(0x3EFF40C5), _f32(0x40D284FA), _f32(0x41EF4B9C), _f32(0x4273CC76),
           _f32(0x426473AD), _f32(0x41A05101)]
LOG1P_Q = [1.0, _f32(0x417101AD), _f32(0x42A6185B), _f32(0x435DC32D), _f32(0x439A8CA3),
           _f32(0x43586D8A), _f32(0x42707982)]


def _log_reduce(u: E) -> tuple[E, E, E]:
    """(e, f, k << 23) with u = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), from the bits of u
    (normal, positive, finite). XLA takes m in [0.5, 1) from the bits and doubles it (e - 1) when
    below sqrt(1/2), with two selects; subtracting the bits of sqrt(1/2) before the shift gives
    the same e and f (both exact) with integer ops only."""
    b = u.bits()
    k = (b - SQRT_HALF_BITS) >> 23
    k23 = k << 23
    return k.to("f32", fast=True), (b - k23).f32() - 1.0, k23


def _log_poly(e: E, f: E, extra: E | None = None) -> E:
    """e ln2 + log(1 + f) (+ extra, a term below f's last bits) = e ln2 + f - f^2/2 + f^3 P(f),
    P of degree 8 in three interleaved chains on f^3, as XLA evaluates it."""
    f2 = f * f
    f3 = f2 * f
    p = [f.fma(c[0], c[1]).fma(f, c[2]) for c in LOG_P]
    t = p[0].fma(f3, p[1]).fma(f3, p[2])
    y = t.fma(f3, e * LOG_LN2_LO if extra is None else e.fma(LOG_LN2_LO, extra))
    return e.fma(LOG_LN2_HI, f2.fma(-0.5, f) + y)


def _log_specials(x: E, y: E, nan_in_y: bool = False) -> E:
    """NaN and +inf return themselves, +-0 and denormals -inf, negatives NaN: each guard only
    where x's range reaches it. Ranges say nothing about NaN, so the first guard stays unless
    y is NaN for a NaN x by itself (nan_in_y)."""
    lo, hi = x.range()
    if hi == math.inf or not nan_in_y:
        y = select(x.cmp("LT", math.inf), y, x)
    if lo < TINY:
        y = select(x.cmp("LT", TINY), -math.inf, y)
    if lo < 0.0:
        y = select(x.cmp("LT", 0.0), math.nan, y)
    return y


def log(x: E) -> E:
    e, f, _ = _log_reduce(x)
    return _log_specials(x, _log_poly(e, f))


def log1p(x: E) -> E:
    """XLA's: log(1 + x) rounded, except for |x| < sqrt(2) - 1, where it is x - x^2/2 + x^3
    N(x)/Q(x) (-0 comes out as -0: x + (-0 + -0)). Both are computed and one selected, with a
    division: 51 ops. When x is itself one of this module's approximations (softplus's
    log1p(exp(-|x|))), whose last bit already differs from XLA's, there is no bit-exactness to
    keep, and `_log1p_compensated` does it in 40."""
    if x.n.attrs.get("approximation"):
        return _log1p_compensated(x)
    x2 = x * x
    small = x + x2.fma(-0.5, (x * x2) * (horner(x, LOG1P_N) / horner(x, LOG1P_Q)))
    lo, hi = x.range()
    if -LOG1P_SMALL < lo and hi < LOG1P_SMALL:
        return small
    u = x + 1.0
    e, f, _ = _log_reduce(u)
    return select(x.u("abs").cmp("LT", LOG1P_SMALL), small, _log_specials(u, _log_poly(e, f)))


def _log1p_compensated(x: E) -> E:
    """log(u) + c/u with u = 1 + x rounded and c = x - (u - 1) its rounding error (exact), c/u
    taken as c * 2^-e (the 1/(1+f) factor changes it by less than half an ulp of the result)."""
    u = x + 1.0
    c = x - (u - 1.0)
    e, f, k23 = _log_reduce(u)
    # 2^-e: the bits of 1.0 minus e << 23 (e = 128, where c = 0, would give -inf: capped)
    cap = k23.min(0x3F800000) if x.range()[1] > 1e38 else k23
    scale = (E.c(0x3F800000, k23, "i32") - cap).f32()
    return with_sign_of(_log_specials(u, _log_poly(e, f, c * scale), nan_in_y=True), x)  # c is NaN for a NaN x


def copysign(mag: E, sign: E) -> E:
    return ((mag.bits() & 0x7FFFFFFF) | (sign.bits() & -0x80000000)).f32()


def _odd_rational(x: E, top: float, p: list[float], q: list[float]) -> E:
    """x * P(x^2) / Q(x^2) on x clamped to [-top, top] (NaN passes the clamps): odd, so signs
    and -0 come out right with no select."""
    lo, hi = x.range()
    xc = x.clamp(-top if lo < -top else None, top if hi > top else None)
    z = xc * xc
    return (xc * horner(z, p)) / horner(z, q)


# tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9 (tanh(9) rounds to 1): 6e-8 relative in exact
# arithmetic, 3e-7 evaluated in f32. The slopes at 0 (1 and 2/sqrt(pi) in f32) are pinned so that
# tiny arguments come out exact.
TANH_P = [1.8418553140997496e-11, -1.2854124875616435e-08, 9.29540692595765e-06,
          0.0029241328593343496, 0.1292250156402588, 1.0]
TANH_Q = [0.0002285472146468237, 0.02377736195921898, 0.46255800127983093, 1.0]
# erf is XLA:CPU's (xla/codegen/intrinsic erf): x P(x^2) / Q(x^2), P of degree 4 and Q of degree 6,
# and +-1 from |x| >= 3.8325 on: so lax.erf and truncated_normal give CPU JAX's bits (and 5.07 ulp
# where the previous 6/5 rational had 5.28). The multiply x P has the division as its only reader,
# and P and Q are explicit FMAs as XLA writes them: the host compiler has nothing to contract.
ERF_P = [_f32(0x39702D51), _f32(0x3B5F5DA2), _f32(0x3D50B6EB), _f32(0x3E3DA740), _f32(0x3F906EBA)]
ERF_Q = [_f32(0xB3FD3906), _f32(0x37C588DF), _f32(0x3A856D28), _f32(0x3C6687D4), _f32(0x3DE34C21),
         _f32(0x3EFEB44A), 1.0]
ERF_ONE = _f32(0x407547CB)     # 3.8325: erf rounds to 1 from here on


def tanh(x: E, prec: Precision | None = None) -> E:
    return _odd_rational(x, *(prec or F32_MATH).tanh)


def erf(x: E) -> E:
    """XLA selects +-1 for |x| >= ERF_ONE; the rational at +-ERF_ONE is +-1.0 exactly, so
    clamping x there gives the same results with two ops instead of five."""
    return _odd_rational(x, ERF_ONE, ERF_P, ERF_Q)


def logistic(x: E, prec: Precision | None = None) -> E:
    p, s = exp_parts(x, negate=True, prec=prec)
    return 1.0 / p.fma(s, 1.0)


def rsqrt(x: E) -> E:
    return 1.0 / x.u("sqrt")


def round_away(x: E) -> E:
    t = x.u("trunc")
    half = (x - t).u("abs").cmp("GE", 0.5)
    return select(half, t + copysign(E.c(1.0, x), x), t)


F32_MATH = Precision(EXP_POLY, EXPM1_POLY, (9.0, TANH_P, TANH_Q), exact_ln2=True)
# For an argument that is itself a rounded f32 value with a large slope (GELU's -2u): its own
# rounding error, |2u| 2^-24, reaches the result, so the one-FMA reduction's n (ln2 - LN2),
# about |2u| 2.7e-9, is twenty times smaller (one FMA less).
F32_ROUNDED_ARG = Precision(EXP_POLY, EXPM1_POLY, F32_MATH.tanh, exact_ln2=False)
PRECISION_AWARE = {"exp", "expm1", "tanh", "logistic"}
# The functions written as XLA:CPU computes them (its f32 results to the bit); the others' results
# are marked as approximations (attrs["approximation"]) for what is applied to them.
XLA_EXACT = {"log", "log1p", "erf", "rsqrt", "round_away"}
RULES = {"exp": exp, "expm1": expm1, "log": log, "log1p": log1p, "tanh": tanh,
         "logistic": logistic, "erf": erf, "rsqrt": rsqrt, "round_away": round_away, "exp2": exp2}


def _exp_range(lo: float, hi: float) -> tuple[float, float]:
    top = math.exp(hi) * (1 + 1e-6) if hi < 88.0 else math.inf   # 1e-6: the approximation's error
    return 0.0, top


# The value ranges of results, for the functions applied to them (the decomposed expression
# itself is opaque to ranges.py): softplus's log1p(exp(-|x|)) sees an argument in [0, 1] and
# drops its NaN, inf and zero guards.
RESULT_RANGE = {"exp": _exp_range, "logistic": lambda lo, hi: (0.0, 1.0),
                "tanh": lambda lo, hi: (-1.000001, 1.000001), "erf": lambda lo, hi: (-1.000001, 1.000001)}


def _decompose(n: Node) -> Node:
    if n.op not in RULES or n.dtype == "f64":
        return n
    x = n.inputs[0]
    if x.dtype != "f32":  # from the rounded bf16/f16 value, as XLA:CPU upcasts math inputs
        x = ew("convert", [x], dtype="f32", rounded=True)
    # bf16 results take the cheaper approximations where there are some
    y = (RULES[n.op](E(x), prec=BF16_MATH) if n.dtype == "bf16" and n.op in PRECISION_AWARE
         else RULES[n.op](E(x))).n
    if n.op in RESULT_RANGE:
        y.attrs["range"] = RESULT_RANGE[n.op](*value_range(x))
    if n.op not in XLA_EXACT:
        y.attrs["approximation"] = n.op
    if n.dtype != "f32":
        y = ew("convert", [y], dtype=n.dtype, computed=True)  # the op's f32 value stays for codegen
    y.loc = n.loc
    return y


def _split_const(n: Node, op: str) -> tuple[float, Node] | None:
    """(c, y) when n is op(c, y) or op(y, c) with c a scalar float constant."""
    if n.op != op:
        return None
    for a, b in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])):
        c = float_const(a)
        if c is not None:
            return c, b
    return None


def _other(n: Node, op: str, a: Node) -> Node | None:
    """b when n is op(a, b) or op(b, a)."""
    if n.op != op:
        return None
    x, y = n.inputs
    return y if x is a else x if y is a else None


def _tanh_half(h: Node) -> list[Node] | None:
    """[the mul, the add, the tanh] when h is 0.5 * (1 + tanh(u)) (GELU's tanh form)."""
    m = _split_const(h, "mul")
    a = _split_const(m[1], "add") if m is not None and m[0] == 0.5 else None
    if a is None or a[0] != 1.0 or a[1].op != "tanh":
        return None
    return [h, m[1], a[1]]


def _gelu_cubic(u: Node, x: Node) -> tuple[float, float] | None:
    """(c, k) when u is c (x + k x^3) with c, k > 0, as jax.nn.gelu writes its argument."""
    m = _split_const(u, "mul")
    t = _other(m[1], "add", x) if m is not None else None
    kc = _split_const(t, "mul") if t is not None else None
    if kc is None or not (0 < m[0] < 1e30 and 0 < kc[0] < 1e30):
        return None
    x2 = _other(kc[1], "mul", x)
    return (m[0], kc[0]) if x2 is not None and _other(x2, "mul", x) is x else None


def _logistic_of_neg(h: Node) -> list[Node] | None:
    """[the div, the add, the exp, the neg] when h is 1 / (1 + exp(-v)) (jax.nn.sigmoid)."""
    if h.op != "div" or float_const(h.inputs[0]) != 1.0:
        return None
    a = _split_const(h.inputs[1], "add")
    if a is None or a[0] != 1.0 or a[1].op != "exp" or a[1].inputs[0].op != "neg":
        return None
    return [h, h.inputs[1], a[1], a[1].inputs[0]]


def _activations(graph: Graph):
    """x * sigmoid(v) and GELU's x * 0.5 (1 + tanh(u)) (= x * sigmoid(2u)) as x / (1 + e^-v):
    one exp, one FMA and one division, where the tanh form's odd rational costs a division and
    two more polynomials' worth, and sigmoid then multiply a division and a multiply. When x
    itself is v (silu) or u is jax's c (x + k x^3) (rewritten x (c + ck x^2), NaN only where x is),
    a NaN x makes the quotient NaN whatever the exp gives, so its guards are unordered
    (`exp_parts(nan_free=True)`). The pieces must have no other reader in `graph` (they would be
    computed twice). f32 only: XLA rounds bf16/f16 after every op of the tanh form, and these
    results must stay within two bf16 ulps of it. The result is more accurate than the tanh
    form, which cancels in 1 + tanh(u) for x << 0 (where CPU JAX's gelu is off by up to 1e-3
    relative, or -0 where the true value is -1e-13). A rewrite function for
    `rewrite(..., with_original=True)`: patterns are matched on the node as rewritten (whose
    leaves are the ones to compute from) and on the original, whose readers are counted."""
    uses = users(toposort(graph.outputs, graph.params))
    outs = {o.id for o in graph.outputs}

    def single(ns: list[Node]) -> bool:
        return all(len(uses.get(n.id, ())) == 1 and n.id not in outs for n in ns)

    def done(y: E, n: Node, kind: str) -> Node:
        y.n.attrs["approximation"] = kind
        y.n.loc = n.loc
        return y.n

    def fn(n: Node, orig: Node) -> Node:
        if n.dtype != "f32":
            return n
        sig = _logistic_of_neg(n)
        by_mul = sig is not None and single(_logistic_of_neg(orig)) and uses[orig.id][0].op == "mul"
        if sig is not None and single(_logistic_of_neg(orig)[1:]) and not by_mul:
            p, s = exp_parts(E(sig[3].inputs[0]), negate=True)   # 1 / (1 + e^-v), the sum one FMA
            y = done(1.0 / p.fma(s, 1.0), n, "logistic")
            y.attrs["range"] = (0.0, 1.0)
            return y
        if n.op != "mul":
            return n
        for k in (0, 1):
            x, h, h0 = n.inputs[k], n.inputs[1 - k], orig.inputs[1 - k]
            X = E(x)
            if _tanh_half(h) is not None and single(_tanh_half(h0)):
                u = _tanh_half(h)[2].inputs[0]
                ck = _gelu_cubic(u, x)
                if ck is not None:   # -2u = x (-2c - 2ck x^2)
                    p, s = exp_parts(X * (X * X).fma(-2 * ck[0] * ck[1], -2 * ck[0]), prec=F32_ROUNDED_ARG,
                                     nan_free=True)
                else:
                    p, s = exp_parts(E(u) * -2.0, prec=F32_ROUNDED_ARG)
                return done(X / p.fma(s, 1.0), n, "gelu")
            if _logistic_of_neg(h) is not None and single(_logistic_of_neg(h0)):
                v = _logistic_of_neg(h)[3].inputs[0]
                p, s = exp_parts(E(v), negate=True, nan_free=v is x)
                return done(X / p.fma(s, 1.0), n, "silu")
        return n
    return fn


def decompose(graph: Graph) -> Graph:
    return rewrite(rewrite(graph, _activations(graph), with_original=True), _decompose)

