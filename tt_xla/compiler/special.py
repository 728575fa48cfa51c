"""CHLO's special functions as device primitives: lgamma, digamma, erf_inv, polygamma, zeta,
bessel_i1e (legalize calls `expand` for them).

Each is a branch-free graph over the op table's rows (add, mul, div, fma, log, log1p, exp,
sin, cos, floor, pow, selects), so fusion makes it one loop like any elementwise chain. They
are computed in f32 for f32/bf16/f16 (rounded once into the result type, as XLA:CPU upcasts)
and in f64 for f64, with the special values CPU JAX gives (poles, +-inf, NaN).

Why these formulas: lgamma and digamma use the Lanczos approximation (g = 7, nine terms, the
published coefficients) with the reflection formula below 1/2, the method XLA's own CHLO
expansion uses, so the results agree with CPU JAX to a few ulps; erf_inv is Giles' f32
approximation ("Approximating the erfinv function", 2010) refined in f64 by Halley steps on erf
and Newton steps on log erfc; zeta is the Euler-Maclaurin sum (10 terms, 12 Bernoulli corrections computed
here from exact fractions) with later terms masked once they stop mattering, as Cephes stops
its loop; polygamma(n, x) = (-1)^(n+1) n! zeta(n+1, x); bessel_i1e is its power series below a
split point and its asymptotic series above (coefficients from exact fractions, no table).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable

from ..errors import UnsupportedError
from .decompose import E, horner, select
from .graph import FLOATS, Node, const, ew

LANCZOS_G = 7.0
LANCZOS = [0.99999999999980993227684700473478, 676.520368121885098567009190444019,
           -1259.13921672240287047156411175038, 771.32342877765307884865282589603,
           -176.61502916214059906584551354, 12.507343278686904814458936853,
           -0.13857109526572011689554707, 9.984369578019570859563e-6, 1.50563273514931155834e-7]
LOG_SQRT_2PI = 0.91893853320467274178
LOG_PI = 1.14472988584940017414
# Giles' single-precision erfinv: w = -log(1 - x^2); w < 5 and w >= 5 (sqrt(w) - 3) branches
GILES_SMALL = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
               -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]
GILES_LARGE = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
               -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]
ZETA_TERMS = 10  # XLA's count: the same sums, to the ulp, where the series is slow (q < 0)


def _bernoulli(n: int) -> list[Fraction]:
    """B_0..B_n (B_1 = -1/2) by the classic recurrence, exactly."""
    b = [Fraction(1)]
    for m in range(1, n + 1):
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
    return b


_B = _bernoulli(24)
# Euler-Maclaurin corrections of zeta: B_2j / (2j)!, j = 1..12
ZETA_CORRECTIONS = [float(_B[2 * j] / math.factorial(2 * j)) for j in range(1, 13)]


def _i1_series(terms: int) -> list[float]:
    """I1(x) = (x/2) sum_k (x^2/4)^k / (k! (k+1)!): coefficients, highest power first."""
    return [1.0 / (math.factorial(k) * math.factorial(k + 1)) for k in reversed(range(terms))]


def _i1_asymptotic(terms: int) -> list[float]:
    """sqrt(2 pi x) e^-x I1(x) ~ sum_k (-1)^k prod_{j<=k} (4 - (2j-1)^2) / (k! 8^k) x^-k:
    coefficients of 1/x, highest power first."""
    c, out = Fraction(1), [1.0]
    for k in range(1, terms):
        c *= Fraction(-(4 - (2 * k - 1) ** 2), 8 * k)
        out.append(float(c))
    return list(reversed(out))


# (split, series terms, asymptotic terms): below the split the series' rounding error is a
# few ulps, above it the asymptotic series' smallest term (~e^-2x) is below the ulp.
I1E_PLAN = {"f32": (12.0, 24, 12), "f64": (25.0, 50, 24)}


class _Ctx:
    """Constants of the compute type, shaped like the operands."""

    def __init__(self, like: E):
        self.like = like

    def __call__(self, v: float) -> E:
        return E.c(v, self.like, self.like.n.dtype)


def _is_int(x: E) -> E:
    return x.cmp("EQ", x.u("floor"))


def _neg_if(p: E, x: E) -> E:
    return select(p, -x, x)


def _lanczos_z(x: E) -> tuple[E, E]:
    """(reflect, z): below 1/2 the reflection formula uses f(1 - x) = f(z + 1) with z = -x."""
    reflect = x.cmp("LT", 0.5)
    return reflect, select(reflect, -x, x - 1.0)


def _log_t(z: E) -> tuple[E, E]:
    """t = z + g + 1/2 and log t, as log(g + 1/2) + log1p(z / (g + 1/2)) (exact near z = 0)."""
    gh = LANCZOS_G + 0.5
    return z + gh, (z / gh).u("log1p") + math.log(gh)


def lgamma(x: E) -> E:
    k = _Ctx(x)
    reflect, z = _lanczos_z(x)
    a = k(LANCZOS[0])
    for i, c in enumerate(LANCZOS[1:], 1):
        a = a + k(c) / (z + float(i))
    t, log_t = _log_t(z)
    log_y = (z + 0.5 - t / log_t) * log_t + LOG_SQRT_2PI + a.u("log")  # XLA's order: 0 at 1, 2
    # reflection: lgamma(x) = log(pi) - log|sin(pi x)| - lgamma(1 - x), sin on |x| mod 1 folded
    # to [0, 1/2] so that it is exact; at the poles log(0) = -inf and the result is +inf
    ax = x.u("abs")
    frac = ax - ax.u("floor")
    reduced = select(frac.cmp("GT", 0.5), 1.0 - frac, frac)
    denom = (reduced * math.pi).u("sin").u("log")
    reflection = select(denom.u("is_finite"), (LOG_PI - denom) - log_y, -denom)
    out = select(reflect, reflection, log_y)
    return select(x.u("is_inf"), k(math.inf), out)


def digamma(x: E) -> E:
    k = _Ctx(x)
    reflect, z = _lanczos_z(x)
    num, den = k(0.0), k(LANCZOS[0])
    for i, c in enumerate(LANCZOS[1:], 1):
        zi = z + float(i)
        num = num - k(c) / (zi * zi)
        den = den + k(c) / zi
    t, log_t = _log_t(z)
    y = log_t + num / den - k(LANCZOS_G) / t
    # reflection: digamma(x) = digamma(1 - x) - pi cot(pi x), x reduced by its nearest integer
    reduced = x + (x + 0.5).u("floor").u("abs")
    reflection = y - k(math.pi) * (reduced * math.pi).u("cos") / (reduced * math.pi).u("sin")
    out = select(reflect, reflection, y)
    pole = x.cmp("LE", 0.0) & _is_int(x)
    return select(pole, k(math.nan), out)


def _giles(y: E) -> E:
    w = -(y * y * -1.0).u("log1p")
    small = horner(w - 2.5, GILES_SMALL)
    large = horner(w.u("sqrt") - 3.0, GILES_LARGE)
    return select(w.cmp("LT", 5.0), small, large) * y


def erf_inv(y: E) -> E:
    k = _Ctx(y)
    r = _giles(y)
    if y.n.dtype == "f64":
        y = select(y.u("abs").cmp("LT", 2.0 ** -1022), y * 0.0, y)  # denormals read as zero (DAZ)
        # five refinements of |y|'s root: Halley steps on erf(x) - |y| below 1/2 (each cubes the
        # error), Newton steps on log erfc(x) - log(1 - |y|) above (1 - |y| is exact there and
        # erf(x) - |y| would cancel; from Giles' start 1 - 1e-16 needs all five)
        a = y.u("abs")
        x = r.u("abs")
        big = a.cmp("GT", 0.5)
        for _ in range(5):
            d = (x * x * -1.0).u("exp") * (2.0 / math.sqrt(math.pi))  # erf'(x)
            u = (x.u("erf") - a) / d
            halley = x - u / (x * u + 1.0)
            c = x.u("erfc")
            newton_log = x + (c.u("log") - (1.0 - a).u("log")) * c / d  # on log erfc(x)
            x = select(big, newton_log, halley)
        r = _neg_if(y.cmp("LT", 0.0), x)
        r = select(y.cmp("EQ", 0.0), y, r)  # +-0 keep their sign
    inf = select(y.cmp("LT", 0.0), k(-math.inf), k(math.inf))
    return select(y.u("abs").cmp("EQ", 1.0), inf, r)


def zeta(s: E, q: E) -> E:
    """Hurwitz zeta(s, q) = sum_k (q + k)^-s, by Euler-Maclaurin: 10 terms, the integral of the
    rest, half its first term and 12 Bernoulli corrections; a term is added only while the
    sum still changes (a `done` mask stands for Cephes' early exit, so an inf or NaN term after
    convergence never spoils the sum). The special cases are CPU JAX's: a pole of q (an integer
    <= 0) is +inf for even s and NaN otherwise, q < 0 needs an integer s."""
    k = _Ctx(s)
    eps = 2.0 ** -53 if s.n.dtype == "f64" else 2.0 ** -24
    neg_s = -s

    def converged(term: E, total: E) -> E:
        return term.u("abs").cmp("LE", total.u("abs") * eps)  # 0/0 counts as converged

    total = q._op("pow", neg_s)
    done = total.cmp("NE", total)  # NaN: nothing will change it
    a, b = q, total
    for _ in range(ZETA_TERMS):
        a = a + 1.0
        b = a._op("pow", neg_s)
        total = select(done, total, total + b)
        done = done | converged(b, total)
    w = a
    total = select(done, total, total + b * w / (s - 1.0) - b * 0.5)
    fac, kk = k(1.0), 0.0
    for c in ZETA_CORRECTIONS:
        fac = fac * (s + kk)
        b = b / w
        t = fac * b * c
        total = select(done, total, total + t)
        done = done | converged(t, total)
        fac = fac * (s + (kk + 1.0))
        b = b / w
        kk += 2.0
    nan, inf = k(math.nan), k(math.inf)
    out = select(s.cmp("LT", 1.0) | q.cmp("EQ", math.inf) | s.cmp("EQ", math.inf), nan, total)
    even = s._op("rem", k(2.0)).cmp("EQ", 0.0)
    out = select(q.cmp("LE", 0.0) & _is_int(q), select(even, inf, nan), out)
    out = select(q.cmp("LT", 0.0) & (s.cmp("NE", s.u("floor"))), nan, out)
    return select(s.cmp("EQ", 1.0), inf, out)


def polygamma(n: E, x: E) -> E:
    """(-1)^(n+1) n! zeta(n + 1, x) for integer n >= 1, digamma for n = 0, NaN otherwise."""
    k = _Ctx(x)
    n1 = n + 1.0
    fact = lgamma(n1).u("exp")
    odd = (n - (n * 0.5).u("floor") * 2.0).cmp("EQ", 1.0)
    out = select(odd, fact, -fact) * zeta(n1, x)
    out = select(n.cmp("EQ", 0.0), digamma(x), out)
    bad = (n.cmp("NE", n.u("floor"))) | n.cmp("LT", 0.0)
    return select(bad, k(math.nan), out)


def bessel_i1e(x: E) -> E:
    k = _Ctx(x)
    split, ns, na = I1E_PLAN[x.n.dtype]
    ax = x.u("abs")
    series = (ax * -1.0).u("exp") * (x * 0.5) * horner(x * x * 0.25, _i1_series(ns))
    asym = horner(k(1.0) / ax, _i1_asymptotic(na)) / (ax.u("sqrt") * math.sqrt(2.0 * math.pi))
    asym = _neg_if(x.cmp("LT", 0.0), asym)
    return select(ax.cmp("LE", split), series, asym)


Fn = Callable[..., E]
# CHLO name -> (arity, decomposition)
FUNCTIONS: dict[str, tuple[int, Fn]] = {
    "lgamma": (1, lgamma),
    "digamma": (1, digamma),
    "erf_inv": (1, erf_inv),
    "bessel_i1e": (1, bessel_i1e),
    "zeta": (2, zeta),
    "polygamma": (2, polygamma),
}


def expand(name: str, ins: list[Node], dtype: str, loc: Any) -> Node:
    """chlo.<name> over `ins` (already of the result's shape) as primitive nodes."""
    arity, fn = FUNCTIONS[name]
    if len(ins) != arity:
        raise UnsupportedError(f"{name} takes {arity} operands, got {len(ins)}", f"chlo.{name}", loc)
    if any(i.dtype not in FLOATS for i in ins) or any(i.dtype != dtype for i in ins):
        raise UnsupportedError(f"{name} on {', '.join(i.dtype for i in ins)}", f"chlo.{name}", loc)
    ct = "f64" if dtype == "f64" else "f32"
    args = [E(i if i.dtype == ct else ew("convert", [i], dtype=ct, loc=loc)) for i in ins]
    out = fn(*args).n
    return out if dtype == ct else ew("convert", [out], dtype=dtype, loc=loc, computed=True)


def mulhi64(a: Node, b: Node, loc: Any) -> Node:
    """The high 64 bits of the 128-bit product of two i64 or ui64 tensors: schoolbook on 32-bit
    halves in ui64 (no partial sum overflows), then for i64 the two's-complement correction
    hi(a b) = hi_unsigned - (a < 0 ? b : 0) - (b < 0 ? a : 0) (jax's own decomposition)."""
    u = "ui64"
    signed = a.dtype == "i64"
    au, bu = ((ew("convert", [x], dtype=u, loc=loc) if signed else x) for x in (a, b))
    c = lambda v: const(v, u, au.shape, loc)  # noqa: E731
    mask, k32 = c(0xFFFFFFFF), c(32)
    op = lambda name, x, y: ew(name, [x, y], loc=loc)  # noqa: E731
    ah, bh = op("shr_l", au, k32), op("shr_l", bu, k32)
    al, bl = op("and", au, mask), op("and", bu, mask)
    mid = op("add", op("mul", al, bh), op("shr_l", op("mul", al, bl), k32))
    cross = op("add", op("mul", ah, bl), op("and", mid, mask))
    hi = op("add", op("add", op("mul", ah, bh), op("shr_l", mid, k32)), op("shr_l", cross, k32))
    if not signed:
        return hi
    zero, uzero = const(0, "i64", a.shape, loc), c(0)
    for x, y in ((a, bu), (b, au)):
        hi = op("sub", hi, ew("select", [ew("cmp", [x, zero], loc=loc, dir="LT", total=False), y, uzero], loc=loc))
    return ew("convert", [hi], dtype="i64", loc=loc)
