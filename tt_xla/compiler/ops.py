"""The op table: everything the compiler knows about each elementwise core op, in one row.

A row says which StableHLO/CHLO ops legalize to it (and which of their attributes it keeps),
which operand types it accepts, its result type, how to fold it on constants (numpy, with
XLA:CPU's semantics), how to render it as a C expression, what it costs in vector
instructions, its value range from its operands' ranges, and its algebraic properties.
legalize, simplify, ranges, fuse and codegen read it; graph.py's op sets are derived from it.
Adding an op is adding a row (plus its tests).

Structural ops (param, const, iota, views, concat, pad, reduce, dot) are not rows: each has its
own handling in every pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser.ir import numpy_dtype
from .dtypes import BITS, CTYPE, F8, FLOAT_FORMAT, FLOATS, INTS, UTYPE, VTYPE, f8_args, f8_round

if TYPE_CHECKING:
    from .graph import Node

Render = Callable[["Node", list[str]], str]
Fold = Callable[["Node", list[np.ndarray]], Any]
Range = tuple[float, float]
Interval = Callable[["Node", list[Range]], "Range | None"]

LIBM_COST = 16  # vector instructions of a libm call (a vectorized polynomial of 10-20 ops)


@dataclass(frozen=True)
class Op:
    name: str
    arity: int
    render: Render                 # C expression over the operands' C expressions (value types)
    hlo: tuple[str, ...] = ()      # StableHLO/CHLO op names (dialect dropped) legalized to it
    hlo_attrs: tuple[str, ...] = ()  # integer attributes of the StableHLO op the node keeps
    operands: str = "any"          # operand types legalize accepts: "any", "float", "int" (or i1)
    result: str = "same"           # result type: "same" (operand 0's), "i1", "select" (operand 1's), "given"
    fold: Fold | None = None       # numpy on scalar constants; None: never folded
    cost: int = 1                  # vector instructions per element (the cost model's count)
    commutative: bool = False
    idempotent: bool = False       # op(x, x) == x
    exact: bool = False            # its f32 result is exact in any float width: no rounding after it
    interval: Interval | None = None  # result range from operand ranges (floats; NaN ignored)


# ----------------------------------------------------------------------------- C helpers
def fsuffix(dt: str) -> str:
    return "" if dt == "f64" else "f"


def _ik(dt: str) -> str:
    return dt.replace("ui", "u")


def _nan(dt: str) -> str:
    return "((double)NAN)" if dt == "f64" else "NAN"


def _inf(dt: str) -> str:
    return "((double)INFINITY)" if dt == "f64" else "INFINITY"


def _unsupported(n: "Node") -> UnsupportedError:
    return UnsupportedError(f"{n.op} on {n.dtype} is not supported", n.op, n.loc)


def rounding(dt: str, v: str) -> str:
    if dt in F8:
        return f8_round(dt, v)
    return {"bf16": f"k_round_bf16({v})", "f16": f"k_round_f16({v})"}.get(dt, v)


def convert_expr(src: str, dt: str, x: str, fast: bool = False) -> str:
    if dt == "i1":
        return f"({x} != 0)"
    if src in FLOATS and dt in INTS:
        if fast:
            return f"({CTYPE[dt]})({x})"
        return f"k_{'d' if src == 'f64' else 'f'}2{_ik(dt)}({x})"
    if dt in ("bf16", "f16") or dt in F8:
        return f"(float)({x})" if fast else rounding(dt, f"(float)({x})")
    return f"({VTYPE[dt]})({x})"


def bitcast_expr(src: str, dt: str, x: str) -> str:
    if BITS[src] != BITS[dt]:
        raise UnsupportedError(f"bitcast from {src} to {dt}")
    if src in F8 or dt in F8:  # via the byte: a float value is encoded, a byte decoded
        bits = f"k_f8_st({x}, {f8_args(src)})" if src in F8 else f"(uint8_t)({x})"
        return f"k_f8_ld({bits}, {f8_args(dt)})" if dt in F8 else f"({CTYPE[dt]})({bits})"
    if src in ("bf16", "f16") or dt in ("bf16", "f16"):  # via the 16 raw bits
        if src == "bf16":
            bits = f"(uint16_t)(__extension__({{k_b32 t_; t_.f = {x}; t_.u >> 16;}}))"
        elif src == "f16":
            bits = f"(__extension__({{union {{ _Float16 h; uint16_t u; }} t_; t_.h = (_Float16)({x}); t_.u;}}))"
        else:
            bits = f"(uint16_t)({x})"
        if dt == "bf16":
            return f"(__extension__({{k_b32 t_; t_.u = (uint32_t){bits} << 16; t_.f;}}))"
        if dt == "f16":
            return f"(__extension__({{union {{ _Float16 h; uint16_t u; }} t_; t_.u = {bits}; (float)t_.h;}}))"
        return f"({CTYPE[dt]}){bits}"
    if BITS[src] == 32:
        fld = {"f32": "f", "i32": "i", "ui32": "u"}
        return f"(__extension__({{k_b32 t_; t_.{fld[src]} = {x}; t_.{fld[dt]};}}))"
    if BITS[src] == 64:
        fld = {"f64": "f", "i64": "i", "ui64": "u"}
        return f"(__extension__({{k_b64 t_; t_.{fld[src]} = {x}; t_.{fld[dt]};}}))"
    return f"({CTYPE[dt]})({x})"  # 8/16-bit integers: same bits, C conversion wraps


def _total_key(dt: str, x: str) -> str:
    if dt == "f64":
        return f"({{k_b64 t_; t_.f = {x}; t_.i ^ (int64_t)((uint64_t)(t_.i >> 63) >> 1);}})"
    return f"(__extension__({{k_b32 t_; t_.f = (float)({x}); t_.i ^ (int32_t)((uint32_t)(t_.i >> 31) >> 1);}}))"


# ----------------------------------------------------------------------------- renderings
def _arith(sym: str) -> Render:
    # signed overflow wraps: kernels are built with -fwrapv
    return lambda n, a: f"({VTYPE[n.dtype]})({a[0]} {sym} {a[1]})"


def _div(n: "Node", a: list[str]) -> str:
    return f"({a[0]} / {a[1]})" if n.dtype in FLOATS else f"k_{_ik(n.dtype)}_div({a[0]}, {a[1]})"


def _rem(n: "Node", a: list[str]) -> str:
    dt = n.dtype
    return f"fmod{fsuffix(dt)}({a[0]}, {a[1]})" if dt in FLOATS else f"k_{_ik(dt)}_rem({a[0]}, {a[1]})"


def _minmax(op: str) -> Render:
    def render(n: "Node", a: list[str]) -> str:
        from .ranges import float_const  # ranges reads graph, which reads this table
        fl = n.dtype in FLOATS
        if n.dtype == "f32" and n.attrs.get("fast") == "unordered":  # NaN: either operand
            return f"k_{op}f_u({a[0]}, {a[1]})"
        if fl and n.attrs.get("fast"):  # NaN in a propagates; used by guards in decompositions
            return f"({a[0]} < {a[1]} ? {a[1]} : {a[0]})" if op == "max" else f"({a[1]} < {a[0]} ? {a[1]} : {a[0]})"
        c = float_const(n.inputs[1])
        if fl and c is not None and not math.isnan(c) and (c != 0 or math.copysign(1, c) == (1 if op == "max" else -1)):
            # against a constant that is not the "wrong" zero: one compare, NaN in a kept
            return f"(!({a[0]} {'<=' if op == 'max' else '>='} {a[1]}) ? {a[0]} : {a[1]})"
        if fl:
            return f"k_{op}{'d' if n.dtype == 'f64' else 'f'}({a[0]}, {a[1]})"
        return f"({a[0]} {'>' if op == 'max' else '<'} {a[1]} ? {a[0]} : {a[1]})"
    return render


def _clamp(n: "Node", a: list[str]) -> str:
    """min(max(x, lo), hi) for the guards of the math decompositions: NaN in x propagates, the
    bounds are never zero (so zeros' signs do not matter). f32 as one helper the host compiles
    to four instructions (prelude.c)."""
    if n.dtype == "f32":
        return f"k_clampf({a[0]}, {a[1]}, {a[2]})"
    return f"({a[0]} < {a[1]} ? {a[1]} : ({a[2]} < {a[0]} ? {a[2]} : {a[0]}))"


def _fold_clamp(n: "Node", vals: list[np.ndarray]) -> Any:
    x, lo, hi = (_wide(v) for v in vals)
    return x if np.isnan(x) else np.minimum(np.maximum(x, lo), hi)


def _daz(dt: str, x: str) -> str:
    """x with a denormal read as a zero of its sign, as XLA:CPU's arithmetic does (DAZ), for
    helpers that return x itself for tiny or zero x and so never touch the FPU's DAZ mode."""
    tiny = "0x1p-1022" if dt == "f64" else "0x1p-126f"
    return f"(fabs{fsuffix(dt)}({x}) < {tiny} ? {x} * 0 : {x})"


def _float_fn(fn: str, ftz: bool = False) -> Render:
    """A libm function (or builtin) of the float operands, in the result's precision. `ftz`:
    read a denormal operand as a zero of its sign first, as XLA:CPU's arithmetic does under
    DAZ (libm returns x itself for tiny x, never touching the FPU, so the device's DAZ mode
    would not apply)."""
    def render(n: "Node", a: list[str]) -> str:
        dt = n.dtype
        if dt not in FLOATS:
            raise _unsupported(n)
        if ftz:
            a = [_daz(dt, x) for x in a]
        return f"{fn}{fsuffix(dt)}({', '.join(a)})"
    return render


def _neg(n: "Node", a: list[str]) -> str:
    return f"(-{a[0]})" if n.dtype in FLOATS else f"({CTYPE[n.dtype]})(-{a[0]})"


def _abs(n: "Node", a: list[str]) -> str:
    if n.dtype in FLOATS:
        return f"fabs{fsuffix(n.dtype)}({a[0]})"
    return f"({a[0]} < 0 ? ({CTYPE[n.dtype]})(-{a[0]}) : {a[0]})"


def _sign(n: "Node", a: list[str]) -> str:
    if n.dtype in FLOATS:  # a denormal is a zero of its sign (DAZ), as on XLA:CPU
        return f"k_sign{'d' if n.dtype == 'f64' else 'f'}({_daz(n.dtype, a[0])})"
    return f"({CTYPE[n.dtype]})(({a[0]} > 0) - ({a[0]} < 0))"


def _not(n: "Node", a: list[str]) -> str:
    return f"({a[0]} ^ 1)" if n.dtype == "i1" else f"({CTYPE[n.dtype]})(~{a[0]})"


def _shift(kind: str) -> Render:
    def render(n: "Node", a: list[str]) -> str:
        dt = n.dtype
        bits, ct = BITS[dt], CTYPE[dt]
        u = UTYPE.get(dt, ct)
        oob = f"((uint64_t)({a[1]}) >= {bits}u)"
        if kind == "shl":
            return f"({oob} ? ({ct})0 : ({ct})(({u}){a[0]} << {a[1]}))"
        if kind == "shr_l":
            return f"({oob} ? ({ct})0 : ({ct})(({u}){a[0]} >> {a[1]}))"
        st = ct.replace("uint", "int")  # sign-fill by the top bit, also for unsigned types
        return f"({ct})(({st}){a[0]} >> ({oob} ? {bits - 1} : {a[1]}))"
    return render


def _popcnt(n: "Node", a: list[str]) -> str:
    ct = CTYPE[n.dtype]
    return f"({ct})k_popcnt64((uint64_t)({UTYPE.get(n.dtype, ct)}){a[0]})"


def _clz(n: "Node", a: list[str]) -> str:
    ct = CTYPE[n.dtype]
    return f"({ct})k_clz64((uint64_t)({UTYPE.get(n.dtype, ct)}){a[0]}, {BITS[n.dtype]})"


CMP = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}


def _cmp(n: "Node", a: list[str]) -> str:
    x, y = a
    src = n.inputs[0].dtype
    if n.attrs.get("total") and src in FLOATS:
        x, y = _total_key(src, x), _total_key(src, y)
    return f"({x} {CMP[n.attrs['dir']]} {y})"


def _pow(n: "Node", a: list[str]) -> str:
    """Floats: libm pow. Integers as XLA:CPU computes them: base ** (exponent & 63) by six
    squaring steps, wrapping; an exponent negative as a signed number gives that power for
    bases 1 and -1 and 0 otherwise."""
    dt = n.dtype
    if dt in FLOATS:
        return f"pow{fsuffix(dt)}({a[0]}, {a[1]})"
    if dt not in INTS:
        raise _unsupported(n)
    ct, w = CTYPE[dt], "uint64_t" if BITS[dt] == 64 else "uint32_t"
    signed = f"int{BITS[dt]}_t"
    return (f"(__extension__({{{w} b_ = ({w})({a[0]}), e_ = ({w})({a[1]}), r_ = 1; "
            f"for (int i_ = 0; i_ < 6; ++i_) {{ r_ = (e_ & 1u) ? r_ * b_ : r_; b_ *= b_; e_ >>= 1; }} "
            f"(({signed})({a[1]}) < 0 && {a[0]} != ({ct})1 && {a[0]} != ({ct})-1) ? ({ct})0 : ({ct})r_;}}))")


def _is_inf(test: str) -> Render:
    """is_inf / is_pos_inf / is_neg_inf: `test` compares `x` with the infinity `inf`."""
    def render(n: "Node", a: list[str]) -> str:
        dt = n.inputs[0].dtype
        if dt not in FLOATS:
            raise _unsupported(n)
        x = f"fabs{fsuffix(dt)}({a[0]})" if test == "abs" else a[0]
        inf = f"(-{_inf(dt)})" if test == "neg" else _inf(dt)
        return f"({x} == {inf})"
    return render


def _bits_type(dt: str) -> str:
    return f"uint{BITS[dt]}_t"


def _next_after(n: "Node", a: list[str]) -> str:
    """The neighbour of x towards y in x's own format (bf16 steps by bf16 ulps), on the bits:
    NaN if either is NaN, y if x == y, the smallest denormal with y's sign from a zero,
    else the bits of x plus or minus one (as chlo.next_after is defined)."""
    dt = n.dtype
    if dt not in FLOATS:
        raise _unsupported(n)
    u, w = _bits_type(dt), BITS[dt]
    ub = f"ui{w}"
    xb, yb = bitcast_expr(dt, ub, a[0]), bitcast_expr(dt, ub, a[1])
    sign = f"(({u})1 << {w - 1})"
    step = (f"(ax_ == 0 ? ({u})((yb_ & {sign}) | 1) : "
            f"({u})((ax_ > ay_ || ((xb_ ^ yb_) & {sign})) ? xb_ - 1 : xb_ + 1))")
    return (f"(__extension__({{const {u} xb_ = {xb}, yb_ = {yb}; "
            f"const {u} ax_ = xb_ & ({u})~{sign}, ay_ = yb_ & ({u})~{sign}; "
            f"const {u} r_ = {step}; "
            f"({a[0]} != {a[0]} || {a[1]} != {a[1]}) ? {_nan(dt)} : "
            f"({a[0]} == {a[1]} ? {a[1]} : {bitcast_expr(ub, dt, 'r_')});}}))")


def _reduce_precision(n: "Node", a: list[str]) -> str:
    """x rounded to `mantissa_bits` (nearest, ties to even) and its exponent range cut to
    `exponent_bits` (overflow to inf, values at or below the smallest normal exponent to zero;
    no denormals), on the bits of x's own format, as XLA:CPU does; NaN stays NaN."""
    dt = n.dtype
    if dt not in FLOATS:
        raise _unsupported(n)
    e, m = n.attrs["exponent_bits"], n.attrs["mantissa_bits"]
    if e < 1 or m < 0:
        raise UnsupportedError(f"reduce_precision to {e} exponent and {m} mantissa bits", n.op, n.loc)
    E, M = FLOAT_FORMAT[dt]
    u, w = _bits_type(dt), BITS[dt]
    ub = f"ui{w}"
    lines = [f"{u} b_ = {bitcast_expr(dt, ub, a[0])};"]
    if m < M:
        last = 1 << (M - m)
        lines.append(f"b_ = ({u})((b_ + ((b_ >> {M - m}) & 1u) + {(last >> 1) - 1}u) & ({u})~({u}){last - 1}u);")
    if e < E:
        bias, rbias = (1 << (E - 1)) - 1, (1 << (e - 1)) - 1
        exp_mask = ((1 << E) - 1) << M
        sign = 1 << (w - 1)
        lines.append(f"const {u} e_ = b_ & ({u}){exp_mask}ULL, s_ = b_ & ({u}){sign}ULL;")
        lines.append(f"b_ = e_ > ({u}){(bias + rbias) << M}ULL ? ({u})(s_ | ({u}){exp_mask}ULL) : "
                     f"(e_ <= ({u}){(bias - rbias) << M}ULL ? s_ : b_);")
    body = " ".join(lines)
    return f"(__extension__({{{body} {a[0]} != {a[0]} ? {a[0]} : {bitcast_expr(ub, dt, 'b_')};}}))"


# ----------------------------------------------------------------------------- folds
def _wide(v: np.ndarray) -> np.ndarray:
    """bf16/f16 constants are computed in f32, as the device does (and rounded once after)."""
    return np.asarray(v, np.float32) if v.dtype.itemsize == 2 and v.dtype.kind not in "iub" else v


def _np(fn: Callable, *, ints: bool = True, wrap: bool = False) -> Fold:
    """A numpy fold: floats widened; integers as they are, or in int64 when the op can
    overflow (`wrap`: the cast back to the result type wraps); `ints=False`: floats only."""
    def fold(n: "Node", vals: list[np.ndarray]) -> Any:
        if n.dtype in FLOATS:
            return fn(*[_wide(v) for v in vals])
        if not ints or (n.dtype == "i1" and wrap):
            return None
        return fn(*[v.astype(np.int64) if wrap else v for v in vals])
    return fold


def _fmaxmin(op: str) -> Fold:
    """XLA's max/min: NaN propagates, -0 < +0."""
    int_fn = np.maximum if op == "max" else np.minimum

    def fold(n: "Node", vals: list[np.ndarray]) -> Any:
        if n.dtype not in FLOATS:
            return int_fn(*vals)
        a, b = (_wide(v) for v in vals)
        if np.isnan(a) or np.isnan(b):
            return np.float32(np.nan)
        if a == b:  # equal, or zeros of either sign: max is -0 only if both are, min if either is
            neg = (np.signbit(a) and np.signbit(b)) if op == "max" else (np.signbit(a) or np.signbit(b))
            return -abs(a) if neg else abs(a)
        return int_fn(a, b)
    return fold


_CMP_FOLD = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
             "GT": np.greater, "GE": np.greater_equal}


def _fold_cmp(n: "Node", vals: list[np.ndarray]) -> Any:
    return None if n.attrs["total"] else _CMP_FOLD[n.attrs["dir"]](*[_wide(v) for v in vals])


def _fold_convert(n: "Node", vals: list[np.ndarray]) -> Any:
    # float -> int saturates on the device (NaN -> 0): not numpy's cast, so not folded
    return None if n.inputs[0].dtype in FLOATS and n.dtype not in FLOATS else vals[0]


def _fold_is(fn: Callable) -> Fold:
    return lambda n, vals: fn(_wide(vals[0])) if n.inputs[0].dtype in FLOATS else None


def fold(n: "Node", vals: list[np.ndarray]) -> np.ndarray | None:
    """n's value from its operands' constant values, or None when its row does not fold."""
    row = OPS.get(n.op)
    if row is None or row.fold is None:
        return None
    with np.errstate(all="ignore"):
        r = row.fold(n, vals)
        if r is None:
            return None
        if n.dtype in INTS:
            return np.asarray(r).astype(np.int64).astype(numpy_dtype(n.dtype))
        return np.asarray(r).astype(numpy_dtype(n.dtype))


# ----------------------------------------------------------------------------- intervals
def _iv_minmax(op: str) -> Interval:
    f = max if op == "max" else min

    def interval(n: "Node", r: list[Range]) -> Range | None:
        if n.dtype not in FLOATS:
            return None
        (alo, ahi), (blo, bhi) = r
        return f(alo, blo), f(ahi, bhi)
    return interval


def _iv_abs(n: "Node", r: list[Range]) -> Range:
    lo, hi = r[0]
    return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))


def _iv_arith(op: str) -> Interval:
    def interval(n: "Node", r: list[Range]) -> Range | None:
        (alo, ahi), (blo, bhi) = r
        if all(math.isfinite(v) for v in (alo, ahi, blo, bhi)):
            if op == "add":
                return alo + blo, ahi + bhi
            if op == "sub":
                return alo - bhi, ahi - blo
            ps = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
            return min(ps), max(ps)
        if op == "mul" and blo == bhi and blo > 0:
            return alo * blo, ahi * blo
        if op == "mul" and alo == ahi and alo > 0:
            return blo * alo, bhi * alo
        return None
    return interval


# ----------------------------------------------------------------------------- the table
def _rows(*rows: Op) -> dict[str, Op]:
    return {r.name: r for r in rows}


def _unary_fn(name: str, fn: str, hlo: tuple[str, ...], ftz: bool = False, **kw: Any) -> Op:
    """A float-only unary math function rendered as the libm call `fn` (see _float_fn)."""
    return Op(name, 1, _float_fn(fn, ftz), hlo=hlo, operands="float", cost=LIBM_COST, **kw)


OPS: dict[str, Op] = _rows(
    # arithmetic
    Op("add", 2, _arith("+"), ("add",), fold=_np(np.add, wrap=True), commutative=True,
       interval=_iv_arith("add")),
    Op("sub", 2, _arith("-"), ("subtract",), fold=_np(np.subtract, wrap=True), interval=_iv_arith("sub")),
    Op("mul", 2, _arith("*"), ("multiply",), fold=_np(np.multiply, wrap=True), commutative=True,
       interval=_iv_arith("mul")),
    Op("div", 2, _div, ("divide",), fold=_np(np.divide, ints=False)),
    Op("rem", 2, _rem, ("remainder",), cost=LIBM_COST),
    Op("max", 2, _minmax("max"), ("maximum",), fold=_fmaxmin("max"), commutative=True, idempotent=True,
       exact=True, interval=_iv_minmax("max")),
    Op("min", 2, _minmax("min"), ("minimum",), fold=_fmaxmin("min"), commutative=True, idempotent=True,
       exact=True, interval=_iv_minmax("min")),
    Op("fma", 3, _float_fn("fma")),
    # a decomposition's two-sided guard (no StableHLO op: stablehlo.clamp is max and min)
    Op("clamp", 3, _clamp, operands="float", fold=_fold_clamp, cost=2, exact=True,
       interval=lambda n, r: (min(max(r[0][0], r[1][0]), r[2][0]), min(max(r[0][1], r[1][1]), r[2][1]))),
    Op("neg", 1, _neg, ("negate",), fold=_np(np.negative, wrap=True), exact=True,
       interval=lambda n, r: (-r[0][1], -r[0][0])),
    Op("abs", 1, _abs, ("abs",), fold=_np(np.abs), exact=True, interval=_iv_abs),
    Op("sign", 1, _sign, ("sign",), exact=True),
    Op("pow", 2, _pow, ("power",), cost=LIBM_COST),
    Op("atan2", 2, _float_fn("atan2"), ("atan2",), operands="float", cost=LIBM_COST),
    # rounding and square roots (one instruction each on the vector unit)
    Op("sqrt", 1, _float_fn("sqrt"), ("sqrt",), operands="float", fold=_np(np.sqrt, ints=False)),
    Op("rsqrt", 1, lambda n, a: f"(1.0 / sqrt({a[0]}))", ("rsqrt",), operands="float"),
    Op("floor", 1, _float_fn("floor"), ("floor",), operands="float", fold=_np(np.floor, ints=False), exact=True),
    Op("ceil", 1, _float_fn("ceil"), ("ceil",), operands="float", fold=_np(np.ceil, ints=False), exact=True),
    Op("trunc", 1, _float_fn("trunc"), operands="float", fold=_np(np.trunc, ints=False), exact=True),
    Op("round_even", 1, _float_fn("rint"), ("round_nearest_even",), operands="float",
       fold=_np(np.rint, ints=False), exact=True),
    Op("round_away", 1, _float_fn("round"), ("round_nearest_afz",), operands="float", exact=True),
    Op("reduce_precision", 1, _reduce_precision, ("reduce_precision",), operands="float",
       hlo_attrs=("exponent_bits", "mantissa_bits"), cost=8, exact=True),
    Op("next_after", 2, _next_after, ("next_after",), operands="float", cost=10, exact=True),
    # classification
    Op("is_finite", 1, lambda n, a: f"(({a[0]} - {a[0]}) == ({a[0]} - {a[0]}))", ("is_finite",),
       operands="float", result="i1", fold=_fold_is(np.isfinite)),
    Op("is_inf", 1, _is_inf("abs"), ("is_inf",), operands="float", result="i1", fold=_fold_is(np.isinf), cost=2),
    Op("is_pos_inf", 1, _is_inf("pos"), ("is_pos_inf",), operands="float", result="i1",
       fold=_fold_is(np.isposinf)),
    Op("is_neg_inf", 1, _is_inf("neg"), ("is_neg_inf",), operands="float", result="i1",
       fold=_fold_is(np.isneginf)),
    # transcendental: exp..round_away are decomposed for f32/bf16/f16 (decompose.py), the rest
    # and f64 are libm calls
    _unary_fn("exp", "exp", ("exponential",)),
    _unary_fn("expm1", "expm1", ("exponential_minus_one",)),
    _unary_fn("exp2", "exp2", ()),
    _unary_fn("log", "log", ("log",)),
    _unary_fn("log1p", "log1p", ("log_plus_one",)),
    _unary_fn("tanh", "tanh", ("tanh",)),
    Op("logistic", 1, lambda n, a: f"(1.0 / (1.0 + exp(-{a[0]})))", ("logistic",), operands="float",
       cost=LIBM_COST),
    # folded correctly rounded, as XLA's constant folding does (truncated_normal's erf(bound))
    _unary_fn("erf", "erf", ("erf",), fold=_np(np.vectorize(math.erf, otypes=[np.float64]), ints=False)),
    _unary_fn("sin", "sin", ("sine",)),
    _unary_fn("cos", "cos", ("cosine",)),
    _unary_fn("tan", "tan", ("tan",)),
    _unary_fn("atan", "atan", ("atan",)),
    _unary_fn("cbrt", "cbrt", ("cbrt",)),
    _unary_fn("sinh", "__builtin_sinh", ("sinh",), ftz=True),
    _unary_fn("cosh", "__builtin_cosh", ("cosh",)),
    _unary_fn("asin", "__builtin_asin", ("asin",), ftz=True),
    _unary_fn("acos", "__builtin_acos", ("acos",)),
    _unary_fn("asinh", "__builtin_asinh", ("asinh",), ftz=True),
    _unary_fn("acosh", "__builtin_acosh", ("acosh",)),
    _unary_fn("atanh", "__builtin_atanh", ("atanh",), ftz=True),
    _unary_fn("erfc", "__builtin_erfc", ("erfc",)),
    # bitwise
    Op("not", 1, _not, ("not",), operands="int"),
    Op("and", 2, _arith("&"), ("and",), operands="int", fold=_np(np.bitwise_and), commutative=True, idempotent=True),
    Op("or", 2, _arith("|"), ("or",), operands="int", fold=_np(np.bitwise_or), commutative=True, idempotent=True),
    Op("xor", 2, _arith("^"), ("xor",), operands="int", fold=_np(np.bitwise_xor), commutative=True),
    Op("shl", 2, _shift("shl"), ("shift_left",), operands="int"),
    Op("shr_a", 2, _shift("shr_a"), ("shift_right_arithmetic",), operands="int"),
    Op("shr_l", 2, _shift("shr_l"), ("shift_right_logical",), operands="int"),
    Op("popcnt", 1, _popcnt, ("popcnt",), operands="int"),
    Op("clz", 1, _clz, ("count_leading_zeros",), operands="int"),
    # comparison, selection, conversion (compare, select, clamp and convert have their own
    # legalize handlers: attributes and broadcasting)
    Op("cmp", 2, _cmp, result="i1", fold=_fold_cmp),
    Op("select", 3, lambda n, a: f"({a[0]} ? {a[1]} : {a[2]})", result="select",
       fold=lambda n, v: v[1] if bool(v[0]) else v[2], exact=True),
    Op("convert", 1, lambda n, a: convert_expr(n.inputs[0].dtype, n.dtype, a[0], fast=n.attrs.get("fast", False)),
       result="given", fold=_fold_convert),
    Op("bitcast", 1, lambda n, a: bitcast_expr(n.inputs[0].dtype, n.dtype, a[0]), result="given", exact=True),
    Op("copy", 1, lambda n, a: a[0], exact=True, interval=lambda n, r: r[0]),
)

BY_HLO: dict[str, Op] = {h: r for r in OPS.values() for h in r.hlo}


def result_dtype(op: str, operand_dtypes: list[str]) -> str:
    rule = OPS[op].result
    if rule == "given":
        raise ValueError(f"{op}: the result type must be given")
    return {"same": operand_dtypes[0], "i1": "i1", "select": operand_dtypes[-1]}[rule]


def cost(op: str) -> int:
    """Vector instructions per element of an elementwise op (0 for structural ops)."""
    row = OPS.get(op)
    return row.cost if row is not None else 0


def render(n: "Node", args: list[str]) -> str:
    row = OPS.get(n.op)
    if row is None:
        raise UnsupportedError(f"{n.op} on {n.dtype} is not supported", n.op, n.loc)
    return row.render(n, args)
