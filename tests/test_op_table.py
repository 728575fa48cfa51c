"""The op table (tt_xla/compiler/ops.py): the passes' op sets come from it, every row with a
constant fold folds to what its C rendering computes on the device, and the ops it adds (as rows
only) match CPU JAX over f32/bf16/f16 and edge values. Ops that today's jax.export decomposes
before export (CHLO) are written as StableHLO/CHLO text: parse -> compile -> run."""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

import tt_xla
from tt_xla.compiler import graph, ops
from tt_xla.compiler.simplify import PATTERNS, _const_second, _fold
from tt_xla.compiler.dtypes import FLOATS, INTS
from tt_xla.compiler.graph import Node, const
from tt_xla.errors import UnsupportedError

from util import BF16, F16, F32, _tol

NP = {"f32": F32, "bf16": BF16, "f16": F16, "i32": np.dtype(np.int32), "ui8": np.dtype(np.uint8),
      "i8": np.dtype(np.int8), "i1": np.dtype(np.bool_)}
FLOAT_TYPES = ["f32", "bf16", "f16"]


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
        types = {"float": FLOAT_TYPES, "int": ["i32", "ui8", "i1"]}.get(r.operands, FLOAT_TYPES + ["i32", "ui8", "i8"])
        for t in types:
            yield pytest.param(name, t, id=f"{name}-{t}")


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
    got = []
    for vals in zip(*xs):
        node = Node(name, [const(v, t) for v in vals], (), out_t)
        f = ops.fold(node, [np.asarray(v, NP[t]) for v in vals])
        if f is None:
            pytest.skip(f"{name} on {t} is not folded")
        got.append(f)
    got = np.array(got, NP[out_t])
    if out_t in FLOATS:  # the device computes in f32 and flushes its denormals to (signed) zero
        g64 = got.astype(np.float64)
        with np.errstate(invalid="ignore"):
            sub = np.abs(g64) < np.finfo(np.float32).tiny
        got = np.where(sub, np.copysign(0.0, g64), g64).astype(NP[out_t])
        sub_in = np.zeros(got.shape, bool)
        for x in xs:
            with np.errstate(invalid="ignore"):
                ax = np.abs(x.astype(np.float64))
            sub_in |= (ax > 0) & (ax < np.finfo(np.float32).tiny)
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
