"""Value ranges of float nodes, for the math decompositions: an exp whose argument is known to
be <= 0 (as inside ELU: expm1(select(x > 0, 0, x))) needs no overflow guard. Intervals ignore
NaN: the guards removed with their help never handle NaN (that is propagated separately)."""
from __future__ import annotations

import math

from .graph import FLOATS, Node, scalar_const
from .ops import OPS

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
    elif n.op in ("broadcast", "reshape", "transpose", "slice", "reverse"):
        r = value_range(n.inputs[0], memo)
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
    elif n.op in OPS and OPS[n.op].interval is not None:  # the op table's interval rule
        r = OPS[n.op].interval(n, [value_range(i, memo) for i in n.inputs]) or FULL
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
