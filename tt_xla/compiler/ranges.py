"""Value ranges of float nodes, for the math decompositions: an exp whose argument is known to
be <= 0 (as inside ELU: expm1(select(x > 0, 0, x))) needs no overflow guard. Intervals ignore
NaN: the guards removed with their help never handle NaN (that is propagated separately)."""
from __future__ import annotations

import math

from .graph import FLOATS, Node, scalar_const

FULL = (-math.inf, math.inf)
_FLIP = {"GT": "LE", "GE": "LT", "LT": "GE", "LE": "GT", "EQ": "NE", "NE": "EQ"}


def float_const(n: Node) -> float | None:
    """The value of a scalar float constant, seen through broadcasts (else None)."""
    v = scalar_const(n)
    return float(v) if v is not None and n.dtype in FLOATS else None


def _restrict(r: tuple[float, float], d: str, c: float) -> tuple[float, float]:
    """r intersected with {x : x <d> c}."""
    lo, hi = r
    if d in ("GT", "GE"):
        lo = max(lo, c)
    elif d in ("LT", "LE"):
        hi = min(hi, c)
    elif d == "EQ":
        lo, hi = max(lo, c), min(hi, c)
    return (lo, hi) if lo <= hi else r


def value_range(n: Node, memo: dict[int, tuple[float, float]] | None = None) -> tuple[float, float]:
    memo = {} if memo is None else memo
    if n.id in memo:
        return memo[n.id]
    if "range" in n.attrs:  # set by decompose on the results of exp, logistic, tanh, erf
        return n.attrs["range"]
    c = float_const(n)
    r = FULL
    if c is not None:
        r = (c, c) if not math.isnan(c) else FULL
    elif n.op in ("broadcast", "reshape", "transpose", "slice", "reverse", "copy"):
        r = value_range(n.inputs[0], memo)
    elif n.op in ("max", "min") and n.dtype.startswith(("f", "b")):
        (alo, ahi), (blo, bhi) = (value_range(i, memo) for i in n.inputs)
        f = max if n.op == "max" else min
        r = (f(alo, blo), f(ahi, bhi))
    elif n.op == "abs":
        lo, hi = value_range(n.inputs[0], memo)
        r = (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
    elif n.op == "neg":
        lo, hi = value_range(n.inputs[0], memo)
        r = (-hi, -lo)
    elif n.op == "select":
        p, t, f = n.inputs
        rt, rf = value_range(t, memo), value_range(f, memo)
        if p.op == "cmp" and not p.attrs.get("total"):
            a, b = p.inputs
            d = p.attrs["dir"]
            for x, k, dd in ((a, float_const(b), d), (b, float_const(a), _mirror(d))):
                if k is None or math.isnan(k):
                    continue
                if t is x:
                    rt = _restrict(rt, dd, k)
                if f is x:
                    rf = _restrict(rf, _FLIP[dd], k)
        r = (min(rt[0], rf[0]), max(rt[1], rf[1]))
    elif n.op == "sub" and _bounds_above(n.inputs[1], n.inputs[0]):
        r = (-math.inf, 0.0)  # x - max(x) <= 0, as in softmax
    elif n.op in ("add", "sub", "mul"):
        (alo, ahi), (blo, bhi) = (value_range(i, memo) for i in n.inputs)
        with_inf = [alo, ahi, blo, bhi]
        if all(math.isfinite(v) for v in with_inf):
            if n.op == "add":
                r = (alo + blo, ahi + bhi)
            elif n.op == "sub":
                r = (alo - bhi, ahi - blo)
            else:
                ps = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
                r = (min(ps), max(ps))
        elif n.op == "mul" and blo == bhi and blo > 0:
            r = (alo * blo, ahi * blo)
        elif n.op == "mul" and alo == ahi and alo > 0:
            r = (blo * alo, bhi * alo)
    memo[n.id] = r
    return r


def _mirror(d: str) -> str:
    return {"GT": "LT", "GE": "LE", "LT": "GT", "LE": "GE"}.get(d, d)


def _bounds_above(m: Node, x: Node) -> bool:
    """m is (a view of) max(..., reduce_max over x): every element of x is <= its m."""
    while m.op in ("broadcast", "reshape") or (m.op == "max" and float_const(m.inputs[1]) is not None):
        m = m.inputs[0]
    if m.op != "reduce" or m.attrs["n"] != 1 or m.inputs[0] is not x:
        return False
    out = m.attrs["body"].outputs
    return len(out) == 1 and out[0].op == "max"
