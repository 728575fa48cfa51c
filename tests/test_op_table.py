"""The op table (tt_xla/compiler/ops.py): the passes' op sets come from it, every row with a
constant fold folds to what its C rendering computes on the device, and the ops it adds (as rows
only) match CPU JAX over f32/bf16/f16 and edge values. Ops that today's jax.export decomposes
before export (CHLO) are written as StableHLO/CHLO text: parse -> compile -> run."""
from __future__ import annotations


import ml_dtypes
import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

import tt_xla
from tt_xla.compiler import graph, ops
from tt_xla.compiler.simplify import PATTERNS, _const_second, _fold
from tt_xla.compiler.dtypes import FLOATS
from tt_xla.compiler.graph import Node, const
from tt_xla.errors import UnsupportedError

from util import BF16, F16, F32, _tol

NP = {"f64": np.dtype(np.float64), "f32": F32, "ui32": np.dtype(np.uint32), "i16": np.dtype(np.int16), "bf16": BF16, "f16": F16, "i32": np.dtype(np.int32), "ui8": np.dtype(np.uint8),
      "i8": np.dtype(np.int8), "i1": np.dtype(np.bool_)}
FLOAT_TYPES = ["f32", "bf16", "f16"]
ALL_FLOATS = FLOAT_TYPES + ["f64"]  # f64 is computed in f64 (the reference with x64 on)


def edge_values(t: str) -> np.ndarray:
    """NaN, +-inf, +-0, denormals, largest and smallest finite, ties and plain values."""
    d = NP[t]
    if t in FLOATS:
        fi = ml_dtypes.finfo(d)
        v = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1.5, 3.0, -0.1,
             float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny),
             float(fi.smallest_subnormal), -float(fi.smallest_subnormal), 1e-40, 100.0, -7.25]
        with np.errstate(over="ignore"):
            return np.array(v, np.float64).astype(d)
    if t == "i1":
        return np.array([False, True])
    info = np.iinfo(d)
    return np.array(sorted({0, 1, 7, 100, info.max, info.min} | ({-1, -100} if info.min < 0 else set()))).astype(d)


def reference(fn, *xs: np.ndarray) -> np.ndarray:
    """fn under jax.jit on CPU; f64 operands with x64 on, so they stay f64."""
    if any(x.dtype == np.float64 for x in xs):
        with jax.enable_x64(True):
            return np.asarray(jax.jit(fn)(*xs))
    return np.asarray(jax.jit(fn)(*xs))


def _same(got: np.ndarray, want: np.ndarray, msg: str) -> None:
    """Bitwise-equal values (NaN matches NaN; the sign of a zero counts)."""
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape, msg
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=msg)
        return
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    both_nan = np.isnan(g64) & np.isnan(w64)
    ok = both_nan | ((g64 == w64) & (np.signbit(g64) == np.signbit(w64)))
    assert ok.all(), f"{msg}: got {g[~ok]} want {w[~ok]}"


def _close(got: np.ndarray, want: np.ndarray, transcendental: bool, msg: str) -> None:
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape, msg
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=msg)
        return
    r, a = _tol(w.dtype, transcendental)
    np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=r, atol=a,
                               equal_nan=True, err_msg=msg)


def program(name: str, in_types: list[str], out_type: str, n: int, attrs: str = "") -> str:
    """One op over 1-D operands of length n, in the generic form (any dialect)."""
    args = ", ".join(f"%a{i}: tensor<{n}x{t}>" for i, t in enumerate(in_types))
    operands = ", ".join(f"%a{i}" for i in range(len(in_types)))
    ins = ", ".join(f"tensor<{n}x{t}>" for t in in_types)
    attr = f" {{{attrs}}}" if attrs else ""
    return (f"module {{\n  func.func @main({args}) -> tensor<{n}x{out_type}> {{\n"
            f"    %0 = \"{name}\"({operands}){attr} : ({ins}) -> tensor<{n}x{out_type}>\n"
            f"    return %0 : tensor<{n}x{out_type}>\n  }}\n}}\n")


def run(text: str, *args: np.ndarray) -> np.ndarray:
    (out,) = tt_xla.compile(text)(*args)
    return np.asarray(out)


def xla_run(text: str, *args: np.ndarray) -> np.ndarray:
    """The same StableHLO/CHLO text compiled and run by XLA:CPU (jax's backend): XLA's own
    semantics for the text, also for ops no jax function exports (integer power)."""
    from jax._src import xla_bridge
    from jax._src.lib import xla_client as xc
    backend = xla_bridge.get_backend("cpu")
    exe = backend.compile_and_load(text, xc.DeviceList(tuple(jax.devices("cpu"))), xc.CompileOptions())
    with jax.enable_x64(any(a.dtype.itemsize >= 8 for a in args)):  # f64 (and complex128) operands stay f64
        (out,) = exe.execute([jax.device_put(a) for a in args])
    return np.asarray(out)


def grid(t: str, arity: int) -> list[np.ndarray]:
    """Every combination of the edge values, one array per operand."""
    v = edge_values(t)
    return [m.reshape(-1) for m in np.meshgrid(*[v] * arity, indexing="ij")]


# ----------------------------------------------------------------------------- the table itself
def test_graph_op_sets_derive_from_the_table():
    assert graph.ELEMENTWISE == set(ops.OPS)
    assert graph.EXACT == {k for k, r in ops.OPS.items() if r.exact}
    assert graph.UNARY == {k for k, r in ops.OPS.items() if r.arity == 1}
    assert graph.BINARY == {k for k, r in ops.OPS.items() if r.arity == 2}
    assert not graph.ELEMENTWISE & graph.VIEWS


def test_rows_are_consistent():
    names = [h for r in ops.OPS.values() for h in r.hlo]
    assert len(names) == len(set(names)), "a StableHLO name maps to two rows"
    for name, r in ops.OPS.items():
        assert r.name == name and 1 <= r.arity <= 3
        assert r.operands in ("any", "float", "int") and r.result in ("same", "i1", "select", "given")
        assert r.cost >= 1
        assert not r.commutative or r.arity == 2
        assert not r.idempotent or r.arity == 2


def _fold_cases():
    for name, r in sorted(ops.OPS.items()):
        if r.fold is None or not r.hlo or r.hlo_attrs:
            continue
        types = {"float": ALL_FLOATS, "int": ["i32", "ui8", "i1"]}.get(r.operands, ALL_FLOATS + ["i32", "ui8", "i8"])
        for t in types:
            yield pytest.param(name, t, id=f"{name}-{t}")


FOLDED_AS_XLA = {"erf": jax.lax.erf}


@pytest.mark.parametrize("name,t", list(_fold_cases()))
def test_fold_matches_the_device(name, t):
    """Each row's constant fold gives what its C rendering computes (denormal results aside:
    the device flushes them, numpy does not), so simplify never changes a program's answer."""
    r = ops.OPS[name]
    xs = grid(t, r.arity)
    out_t = {"same": t, "i1": "i1"}[r.result]
    try:
        want = run(program("stablehlo." + r.hlo[0], [t] * r.arity, out_t, xs[0].size), *xs)
    except UnsupportedError:
        pytest.skip(f"{name} on {t} is not supported")
    if name in FOLDED_AS_XLA and t == "f32":
        # folded correctly rounded, as XLA's constant folding does (its runtime erf differs in
        # the last bit, like ours): the fold must match XLA's fold
        fn = FOLDED_AS_XLA[name]
        want = np.array([np.asarray(jax.jit(lambda v=v: fn(jnp.float32(v)))()) for v in xs[0]], np.float32)
    got = []
    for vals in zip(*xs):
        node = Node(name, [const(v, t) for v in vals], (), out_t)
        f = ops.fold(node, [np.asarray(v, NP[t]) for v in vals])
        if f is None:
            pytest.skip(f"{name} on {t} is not folded")
        got.append(f)
    got = np.array(got, NP[out_t])
    if out_t in FLOATS:  # the device computes in f32 (f64) and flushes denormals to (signed) zero
        g64 = got.astype(np.float64)
        tiny = np.finfo(np.float64 if t == "f64" else np.float32).tiny
        with np.errstate(invalid="ignore"):
            sub = np.abs(g64) < tiny
        got = np.where(sub, np.copysign(0.0, g64), g64).astype(NP[out_t])
        sub_in = np.zeros(got.shape, bool)
        for x in xs:
            with np.errstate(invalid="ignore"):
                ax = np.abs(x.astype(np.float64))
            sub_in |= (ax > 0) & (ax < tiny)
        keep = ~sub_in  # denormal operands are read as zero by the device, not by numpy
        got, want = got[keep], want[keep]
    _same(got, want, f"{name} {t}")


def test_simplify_is_a_list_of_patterns():
    """Every rewrite is a pattern keyed by the ops it looks at; commutative rows get the
    constants-second rewrite from their table property."""
    by_op = PATTERNS.by_op
    for name, r in ops.OPS.items():
        assert _fold in by_op[name]
        assert (_const_second in by_op[name]) == r.commutative
    x = Node("param", [], (4,), "f32", {"index": 0})
    c = const(2.0, "f32", (4,))
    swapped = PATTERNS(Node("mul", [c, x], (4,), "f32"))
    assert swapped.inputs[0] is x
    assert PATTERNS(Node("max", [x, x], (4,), "f32")) is x


# ----------------------------------------------------------------------------- ops added as rows
def float_inputs(t: str, arity: int, seed: int = 0, huge: bool = True) -> list[np.ndarray]:
    """Every pair (or single) of edge values, then random values at several scales: a length
    that is not a multiple of the 32x32 tile."""
    xs = grid(t, arity)
    rng = np.random.default_rng(seed)
    extra = [(rng.standard_normal(301) * rng.choice([0.01, 1.0, 30.0], 301)).astype(np.float32)
             for _ in range(arity)]
    xs = [np.concatenate([x, e.astype(NP[t])]) for x, e in zip(xs, extra)]
    if not huge:  # trig of huge arguments depends on the quality of range reduction
        x64 = [x.astype(np.float64) for x in xs]
        keep = np.all([np.abs(x) < 1e4 for x in x64], axis=0) | np.any([np.isnan(x) for x in x64], axis=0)
        xs = [x[keep] for x in xs]
    return xs


def _math(fn, arity: int = 1, huge: bool = True) -> tuple:
    """A float function compared with the transcendental tolerance."""
    return fn, arity, "same", "transc", huge


def _exact(fn, result: str = "same") -> tuple:
    """A function whose result must be bit for bit CPU JAX's."""
    return fn, 1, result, "exact", True


# op in text -> (CPU JAX function, arity, result "same"/"i1", compare "close"/"transc"/"exact",
# huge arguments included)
ROWS = {
    "chlo.sinh": _math(jnp.sinh),  # denormals in: zeros of their sign
    "chlo.cosh": _math(jnp.cosh),
    "chlo.tan": _math(jnp.tan, huge=False),
    "chlo.atan": _math(jnp.arctan),
    "chlo.asin": _math(jnp.arcsin),
    "chlo.acos": _math(jnp.arccos),
    "chlo.asinh": _math(jnp.arcsinh),
    "chlo.acosh": _math(jnp.arccosh),
    "chlo.atanh": _math(jnp.arctanh),
    "chlo.erfc": _math(jax.scipy.special.erfc),
    "chlo.is_inf": _exact(jnp.isinf, "i1"),
    "chlo.is_pos_inf": _exact(jnp.isposinf, "i1"),
    "chlo.is_neg_inf": _exact(jnp.isneginf, "i1"),
    "stablehlo.cbrt": _math(jnp.cbrt),
    "stablehlo.atan2": _math(jnp.arctan2, 2),
    "stablehlo.sign": (jnp.sign, 1, "same", "close", True),
    "stablehlo.is_finite": _exact(jnp.isfinite, "i1"),
    "stablehlo.round_nearest_afz": _exact(lambda x: lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO)),
}


@pytest.mark.parametrize("t", ALL_FLOATS)
@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_vs_cpu_jax(name, t):
    """Parse -> compile -> run the op written as text, against CPU JAX's function and against
    XLA:CPU running the same text."""
    fn, arity, res, cmp, huge = ROWS[name]
    xs = float_inputs(t, arity, huge=huge)
    text = program(name, [t] * arity, t if res == "same" else "i1", xs[0].size)
    got = run(text, *xs)
    for want, ref in ((reference(fn, *xs), "jax"), (xla_run(text, *xs), "XLA on the text")):
        if cmp == "exact":
            _same(got, want, f"{name} {t} vs {ref}")
        else:
            _close(got, want, cmp == "transc", f"{name} {t} vs {ref}")


@pytest.mark.parametrize("t", FLOAT_TYPES)
def test_round_afz_ties_exact(t):
    x = (np.arange(-40, 41) / 2).astype(NP[t])  # every .5 tie in [-20, 20]
    got = run(program("stablehlo.round_nearest_afz", [t], t, x.size), x)
    _same(got, np.asarray(jax.jit(lambda x: lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO))(x)), t)


@pytest.mark.parametrize("t", ["i32", "ui8", "i8"])
def test_popcnt_clz_vs_cpu_jax(t):
    x = np.concatenate([edge_values(t), np.random.default_rng(0).integers(-128, 127, 70).astype(NP[t])])
    for name, fn in (("stablehlo.popcnt", lax.population_count), ("stablehlo.count_leading_zeros", lax.clz)):
        _same(run(program(name, [t], t, x.size), x), np.asarray(jax.jit(fn)(x)), f"{name} {t}")


REDUCE_PRECISION = [(5, 2), (4, 3), (5, 10), (8, 7), (8, 23), (2, 1), (3, 0), (8, 0), (6, 5), (11, 30), (10, 52)]


@pytest.mark.parametrize("t", ALL_FLOATS)
@pytest.mark.parametrize("bits", REDUCE_PRECISION, ids=lambda b: f"e{b[0]}m{b[1]}")
def test_reduce_precision_exact(bits, t):
    """Exact rounding (nearest, ties to even; overflow to inf, underflow to zero, NaN kept) in
    the operand's own format, bit for bit as CPU JAX."""
    e, m = bits
    x = float_inputs(t, 1)[0]
    # ties and near-ties at every mantissa width
    ties = (1.0 + np.arange(1, 64) / 64.0).astype(np.float32)
    x = np.concatenate([x, ties.astype(NP[t]), (-ties * 1000).astype(NP[t])])
    text = program("stablehlo.reduce_precision", [t], t, x.size,
                   f"exponent_bits = {e} : i32, mantissa_bits = {m} : i32")
    got = run(text, x)
    _same(got, reference(lambda x: lax.reduce_precision(x, e, m), x), f"e{e}m{m} {t}")
    _same(got, xla_run(text, x), f"e{e}m{m} {t} vs XLA on the text")


def test_reduce_precision_from_jax():
    """jax.export prints reduce_precision in its pretty form (format = e5m2)."""
    from util import check
    x = float_inputs("f32", 1)[0]
    check(lambda x: (lax.reduce_precision(x, 5, 2), lax.reduce_precision(x.astype(BF16), 4, 3)), x)


def test_row_refuses_wrong_operand_types():
    with pytest.raises(UnsupportedError, match="is_inf on i32"):
        tt_xla.compile(program("chlo.is_inf", ["i32"], "i1", 4))
    with pytest.raises(UnsupportedError, match="popcnt on f32"):
        tt_xla.compile(program("stablehlo.popcnt", ["f32"], "f32", 4))
    with pytest.raises(UnsupportedError, match="mantissa_bits"):
        tt_xla.compile(program("stablehlo.reduce_precision", ["f32"], "f32", 4, "exponent_bits = 5 : i32"))


@pytest.mark.parametrize("t", ALL_FLOATS)
def test_next_after_exact(t):
    """chlo.next_after steps by one ulp of the operand's own format (bf16 by bf16 ulps), from
    zero to the smallest denormal with the direction's sign, NaN in -> NaN, x == y -> y; bit for
    bit as CPU JAX's nextafter."""
    x, y = float_inputs(t, 2)
    text = program("chlo.next_after", [t, t], t, x.size)
    got = run(text, x, y)
    _same(got, reference(jnp.nextafter, x, y), f"next_after {t}")
    _same(got, xla_run(text, x, y), f"next_after {t} vs XLA on the text")


@pytest.mark.parametrize("name,fn", [("chlo.sinh", jnp.sinh), ("chlo.asin", jnp.arcsin),
                                     ("chlo.asinh", jnp.arcsinh), ("chlo.atanh", jnp.arctanh)])
def test_denormal_operands_read_as_zero(name, fn):
    """libm returns a tiny x itself; XLA:CPU (DAZ) reads a denormal as a zero of its sign."""
    x = np.array([1e-40, -1e-40, 1e-45, -1e-45, 0.0, -0.0], np.float32)
    _same(run(program(name, ["f32"], "f32", x.size), x), np.asarray(jax.jit(fn)(x)), name)


# ----------------------------------------------------------------------------- CHLO broadcasting ops
def _broadcast_program(name: str, a: tuple, b: tuple, out: tuple, res: str, attrs: str = "") -> str:
    ta, tb, to = (f"tensor<{'x'.join(map(str, s))}{'x' if s else ''}{t}>"
                  for s, t in ((a, "f32"), (b, "f32"), (out, res)))
    attr = f" {{{attrs}}}" if attrs else ""
    return (f"module {{\n  func.func @main(%a: {ta}, %b: {tb}) -> {to} {{\n"
            f"    %0 = {name} %a, %b{attr} : ({ta}, {tb}) -> {to}\n"
            f"    return %0 : {to}\n  }}\n}}\n")


BROADCASTS = [  # (lhs shape, rhs shape, result shape, broadcast_dimensions or None)
    ((4,), (3, 4), (3, 4), None),
    ((3,), (3, 4), (3, 4), (0,)),
    ((3, 1), (1, 5), (3, 5), None),
    ((), (2, 33), (2, 33), None),
    ((2, 1, 33), (7, 1), (2, 7, 33), None),
]


@pytest.mark.parametrize("case", BROADCASTS, ids=str)
@pytest.mark.parametrize("name,fn,res", [
    ("chlo.broadcast_add", jnp.add, "f32"), ("chlo.broadcast_maximum", jnp.maximum, "f32"),
    ("chlo.broadcast_next_after", jnp.nextafter, "f32"), ("chlo.broadcast_atan2", jnp.arctan2, "f32"),
    ("chlo.broadcast_compare", jnp.less, "i1")], ids=lambda v: v if isinstance(v, str) else "")
def test_chlo_broadcasting_ops(name, fn, res, case):
    """chlo.broadcast_<op> is the table's <op> on operands broadcast to the result (numpy
    rules, or broadcast_dimensions for the lower-rank operand)."""
    sa, sb, so, dims = case
    attrs = []
    if dims is not None:
        attrs.append(f"broadcast_dimensions = array<i64: {', '.join(map(str, dims))}>")
    if name.endswith("compare"):
        attrs.append("comparison_direction = #chlo<comparison_direction LT>")
    rng = np.random.default_rng(1)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if a.size > 3:
        a.flat[:3] = [np.nan, -np.inf, 0.0]
    text = _broadcast_program(name, sa, sb, so, res, ", ".join(attrs))
    got = run(text, a, b)
    ea = a.reshape(a.shape + (1,) * (len(so) - a.ndim)) if dims == (0,) else a
    want = reference(fn, np.broadcast_to(ea, so).copy(), np.broadcast_to(b, so).copy())
    _close(got, want, True, name)
    if dims is None:  # XLA's own CHLO lowering refuses non-trailing broadcast_dimensions
        _close(got, xla_run(text, a, b), True, f"{name} vs XLA on the text")


def test_chlo_broadcast_refuses_incompatible_shapes():
    with pytest.raises(UnsupportedError, match="does not broadcast"):
        tt_xla.compile(_broadcast_program("chlo.broadcast_add", (3,), (3, 4), (3, 4), "f32"))


@pytest.mark.parametrize("t", ["i32", "ui32", "i16", "i8", "ui8"])
def test_integer_power_like_xla(t):
    """stablehlo.power on integers: wrapping, exponents taken mod 64, negative exponents (as
    signed numbers) give 0 except for bases 1 and -1."""
    d = NP[t]
    info = np.iinfo(d)
    bases = np.array(sorted({0, 1, 2, 3, 7, 16, info.max, info.min, info.max - 1}
                            | ({-1, -2, -3} if info.min < 0 else set()))).astype(d)
    exps = np.array([0, 1, 2, 3, 7, 31, 32, 63, 64, 65, 100, 127, int(info.max)]
                    + ([-1, -2, -3, -64, int(info.min)] if info.min < 0 else [int(info.max) - 1])).astype(d)
    b, e = (m.reshape(-1) for m in np.meshgrid(bases, exps, indexing="ij"))
    text = program("stablehlo.power", [t, t], t, b.size)
    _same(run(text, b, e), xla_run(text, b, e), f"power {t}")
