"""CHLO's special functions (compiler/special.py) and the other CHLO ops a producer can leave
(square, mulhi, constant_like, broadcast_select, broadcast_zeta/polygamma), written as text:
parse -> compile -> run, against CPU JAX's function (jax.scipy.special) and against XLA:CPU
running the same text, over f32/bf16/f16/f64 with the edge values (NaN, +-inf, +-0,
denormals, largest finite, poles). Also jax's own igamma/igammac/i0e (exported as while loops
and polynomials) through tt_xla.jit."""
from __future__ import annotations

import math

import numpy as np
import pytest

import jax
import jax.scipy.special as sp

import tt_xla
from tt_xla.errors import UnsupportedError

from test_op_table import ALL_FLOATS, NP, edge_values, program, reference, run, xla_run

# rtol, atol per type. Measured with the polynomials evaluated by FMAs (decompose.horner), on
# these inputs: f32 at most 5.4e-7 (bessel_i1e's series; lgamma, digamma, erf_inv match XLA's
# bits), f64 at most 1.4e-12 (erf_inv's tail, where XLA's f64 erf_inv is itself only ~1e-11
# accurate; ours is checked against erfc below; lgamma 9e-13, the rest ~1e-15)
TOL = {"f32": (2e-6, 1e-6), "f64": (1e-11, 1e-13), "bf16": (2e-2, 1e-2), "f16": (2e-3, 1e-3)}


def _unary_inputs(t: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    x = np.concatenate([edge_values(t).astype(np.float64), rng.uniform(-10, 10, 120),
                        rng.uniform(0, 3, 60), -np.arange(0.0, 8.0), np.arange(-5, 5) * 0.5,
                        rng.uniform(-1, 1, 60), 1 - 10.0 ** -np.arange(1, 8), rng.uniform(0, 40, 60)])
    return x.astype(NP[t])


def _binary_inputs(t: str, first: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(12)
    second = np.concatenate([edge_values(t).astype(np.float64), rng.uniform(-5, 10, 20), [0.5, 1, 2]])
    a, b = np.meshgrid(first, second, indexing="ij")
    return [a.ravel().astype(NP[t]), b.ravel().astype(NP[t])]


def _close(got: np.ndarray, want: np.ndarray, t: str, msg: str) -> None:
    r, a = TOL[t]
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=r, atol=a,
                               equal_nan=True, err_msg=msg)


# s / n values: below 100, where XLA's own sums stay finite (at s ~ 1e38 its Bernoulli factor
# overflows into inf * 0 = NaN even where the sum has converged to 0)
ORDERS = np.array([np.nan, np.inf, -np.inf, 0, -0.0, 1, 2, 3, 4, 5, 0.5, -1, 2.5, 7, 12])

UNARY = {"lgamma": sp.gammaln, "digamma": sp.digamma, "erf_inv": sp.erfinv, "bessel_i1e": sp.i1e}
BINARY = {"zeta": sp.zeta, "polygamma": lambda n, x: jax.lax.polygamma(n, x)}


@pytest.mark.parametrize("t", ALL_FLOATS)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_special_vs_cpu_jax(name, t):
    x = _unary_inputs(t)
    text = program(f"chlo.{name}", [t], t, x.size)
    got = run(text, x)
    _close(got, xla_run(text, x), t, f"{name} {t} vs XLA on the text")
    _close(got, reference(UNARY[name], x), t, f"{name} {t} vs jax.scipy.special")


@pytest.mark.parametrize("t", ALL_FLOATS)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_special_vs_cpu_jax(name, t):
    xs = _binary_inputs(t, ORDERS)
    text = program(f"chlo.{name}", [t, t], t, xs[0].size)
    got = run(text, *xs)
    _close(got, xla_run(text, *xs), t, f"{name} {t} vs XLA on the text")
    _close(got, reference(BINARY[name], *xs), t, f"{name} {t} vs jax")


def test_special_values():
    """The poles and limits, exactly: lgamma +inf at the poles and +-inf, digamma NaN at the
    poles, erf_inv +-inf at +-1 and NaN outside, zeta's pole at s = 1, i1e odd and 0 at inf."""
    def one(name: str, *xs: float) -> np.ndarray:
        arrs = [np.array(x, np.float32) for x in xs]
        return run(program(f"chlo.{name}", ["f32"] * len(arrs), "f32", arrs[0].size), *arrs)

    inf, nan = math.inf, math.nan
    lg = one("lgamma", [0, -1, -2, inf, -inf, 1, 2])
    assert np.array_equal(lg[:5], [inf] * 5) and np.abs(lg[5:]).max() < 1e-6  # XLA: 2^-21 at 1
    assert np.isnan(one("digamma", [0, -1, -3, nan])).all()
    assert np.array_equal(one("erf_inv", [1, -1, 0]), [inf, -inf, 0])
    assert np.isnan(one("erf_inv", [1.5, -2, nan])).all()
    assert np.array_equal(one("zeta", [1, 1], [2, 0.5]), [inf, inf])
    i1e = one("bessel_i1e", [inf, -inf, 0, -0.0])
    assert np.array_equal(i1e, [0, 0, 0, 0]) and list(np.signbit(i1e)) == [False, True, False, True]


def test_erf_inv_f64_tail_is_accurate():
    """f64 erf_inv to ~1e-15 up to 1 - 2^-53, checked independently: erfc of the result is 1 - y."""
    y = 1 - 10.0 ** -np.arange(1, 16)
    got = run(program("chlo.erf_inv", ["f64"], "f64", y.size), y)
    resid = np.array([math.erfc(g) / (1 - v) - 1 for g, v in zip(got, y)])
    assert np.abs(resid).max() < 1e-12, resid


def test_broadcasting_special_ops():
    n = np.array([1, 2], np.float32)
    x = np.linspace(0.5, 4, 6, dtype=np.float32)
    text = ("module {\n  func.func @main(%n: tensor<2x1xf32>, %x: tensor<6xf32>) -> tensor<2x6xf32> {\n"
            "    %0 = chlo.broadcast_polygamma %n, %x : (tensor<2x1xf32>, tensor<6xf32>) -> tensor<2x6xf32>\n"
            "    %1 = chlo.broadcast_zeta %0, %x : (tensor<2x6xf32>, tensor<6xf32>) -> tensor<2x6xf32>\n"
            "    return %0 : tensor<2x6xf32>\n  }\n}\n")
    args = (n.reshape(2, 1), x)
    (got,) = tt_xla.compile(text)(*args)
    _close(np.asarray(got), xla_run(text, *args), "f32", "broadcast_polygamma")


def test_square_constant_like_broadcast_select():
    text = """module {
  func.func @main(%p: tensor<3x1xi1>, %a: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<3x4xf32> {
    %0 = "chlo.constant_like"(%a) {value = 2.5 : f32} : (tensor<3x4xf32>) -> tensor<3x4xf32>
    %1 = "chlo.square"(%a) : (tensor<3x4xf32>) -> tensor<3x4xf32>
    %2 = stablehlo.add %0, %1 : tensor<3x4xf32>
    %3 = "chlo.broadcast_select"(%p, %2, %b) : (tensor<3x1xi1>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
    return %3 : tensor<3x4xf32>
  }
}"""
    args = (np.array([[True], [False], [True]]), np.arange(12, dtype=np.float32).reshape(3, 4) - 5,
            np.array([-1, -2, np.nan, np.inf], np.float32))
    (got,) = tt_xla.compile(text)(*args)
    np.testing.assert_array_equal(np.asarray(got), xla_run(text, *args))


@pytest.mark.parametrize("t", ["i32", "ui32", "i16", "ui8"])
def test_mulhi_vs_xla(t):
    v = edge_values(t)  # 0, +-1, 7, +-100, min, max
    a, b = (m.reshape(-1) for m in np.meshgrid(v, v, indexing="ij"))
    text = program("chlo.mulhi", [t, t], t, a.size)
    np.testing.assert_array_equal(run(text, a, b), xla_run(text, a, b))


@pytest.mark.parametrize("t", ["i64", "ui64"])
def test_mulhi_64_bit_vs_python_ints_and_xla(t):
    """64-bit mulhi by 32-bit halves (special.mulhi64): random values and the edges (0, +-1,
    min, max, 2^32 +- 1), against exact Python integers and XLA:CPU on the same text."""
    np_t = np.int64 if t == "i64" else np.uint64
    info = np.iinfo(np_t)
    edges = np.array([0, 1, info.max, info.min, 2**32 - 1, 2**32, 2**32 + 1, 12345678901234567]
                     + ([-1, -2**32] if t == "i64" else [2**63]), dtype=np_t)
    ea, eb = (m.reshape(-1) for m in np.meshgrid(edges, edges, indexing="ij"))
    rng = np.random.default_rng(0)
    a = np.concatenate([ea, rng.integers(info.min, info.max, 256, dtype=np_t, endpoint=True)])
    b = np.concatenate([eb, rng.integers(info.min, info.max, 256, dtype=np_t, endpoint=True)])
    want = np.array([(int(x) * int(y)) >> 64 for x, y in zip(a, b)], dtype=np_t)
    text = program("chlo.mulhi", [t, t], t, a.size)
    got = run(text, a, b)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, xla_run(text, a, b))


def test_mulhi_on_floats_is_refused():
    text = program("chlo.mulhi", ["f32", "f32"], "f32", 4)
    with pytest.raises(UnsupportedError, match="mulhi on f32"):
        tt_xla.compile(text)


def test_special_refuses_integers():
    with pytest.raises(UnsupportedError, match="lgamma on i32"):
        tt_xla.compile(program("chlo.lgamma", ["i32"], "i32", 4))


JAX_EXPORTED = {  # jax decomposes these itself before export: while loops and polynomials
    "gammainc": (sp.gammainc, 2), "gammaincc": (sp.gammaincc, 2), "i0e": (sp.i0e, 1),
    "i1e": (sp.i1e, 1), "i0": (sp.i0, 1), "i1": (sp.i1, 1)}


@pytest.mark.parametrize("t", ["f32", "f64"])
@pytest.mark.parametrize("name", sorted(JAX_EXPORTED))
def test_jax_exported_special_functions(name, t):
    fn, arity = JAX_EXPORTED[name]
    rng = np.random.default_rng(3)
    edges = np.array([0, 0.5, 1, 2, 10, 50, np.inf, np.nan, -1, -0.0, 1e-30])
    xs = [np.concatenate([edges, rng.uniform(0, 20, 40)]).astype(NP[t])]
    if arity == 2:
        xs = _binary_inputs(t, np.array([0.1, 0.5, 1, 3, 10, np.nan, np.inf, -1, 0]))
    with jax.enable_x64(t == "f64"):
        got = np.asarray(tt_xla.jit(fn)(*xs))
    _close(got, reference(fn, *xs), t, f"{name} {t}")


# every other CHLO binary broadcasting op, one module per element type: (op, types it takes)
BROADCAST_OPS = [("add", "if"), ("subtract", "if"), ("multiply", "if"), ("divide", "if"), ("remainder", "if"),
                 ("power", "if"), ("maximum", "if"), ("minimum", "if"), ("and", "i"), ("or", "i"), ("xor", "i"),
                 ("shift_left", "i"), ("shift_right_arithmetic", "i"), ("shift_right_logical", "i"),
                 ("atan2", "f"), ("next_after", "f"), ("zeta", "f"), ("polygamma", "f")]


@pytest.mark.parametrize("t", ["f32", "i32", "ui8"])
def test_every_chlo_broadcast_op_as_text(t):
    kind = "f" if t.startswith("f") else "i"
    names = [op for op, kinds in BROADCAST_OPS if kind in kinds]
    a_ty, b_ty, r_ty = f"tensor<3x1x{t}>", f"tensor<4x{t}>", f"tensor<3x4x{t}>"
    body = [f"    %{i} = chlo.broadcast_{op} %a, %b : ({a_ty}, {b_ty}) -> {r_ty}" for i, op in enumerate(names)]
    rets = ", ".join(f"%{i}" for i in range(len(names)))
    text = (f"module {{\n  func.func @main(%a: {a_ty}, %b: {b_ty}) -> ({', '.join([r_ty] * len(names))}) {{\n"
            + "\n".join(body) + f"\n    return {rets} : {', '.join([r_ty] * len(names))}\n  }}\n}}\n")
    d = NP[t]
    if kind == "f":
        a, b = np.array([[0.5], [-2.0], [3.0]], d), np.array([1.5, -0.0, np.inf, 2.0], d)
    else:
        a, b = np.array([[7], [100], [1]], d), np.array([1, 3, 2, 9], d)
    from test_elementwise_complete import _xla
    for name, g, w in zip(names, tt_xla.compile(text)(a, b), _xla(text, [a, b], x64=False)):
        np.testing.assert_allclose(np.asarray(g).astype(np.float64), w.astype(np.float64), rtol=1e-6,
                                   equal_nan=True, err_msg=f"broadcast_{name} {t}")


def test_chlo_erf_constant_top_k_as_text():
    text = """module {
  func.func @main(%a: tensor<8xf32>) -> (tensor<8xf32>, tensor<3xf32>, tensor<3xi32>) {
    %c = "chlo.constant"() {value = dense<[1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 0.5, 0.25]> : tensor<8xf32>} : () -> tensor<8xf32>
    %0 = chlo.erf %a : tensor<8xf32> -> tensor<8xf32>
    %1 = stablehlo.add %0, %c : tensor<8xf32>
    %2:2 = chlo.top_k(%1, k = 3) : tensor<8xf32> -> (tensor<3xf32>, tensor<3xi32>)
    return %1, %2#0, %2#1 : tensor<8xf32>, tensor<3xf32>, tensor<3xi32>
  }
}"""
    a = np.array([0.1, -3, 2, np.nan, 0, -0.0, 7, 0.5], np.float32)
    from test_elementwise_complete import _xla
    got = [np.asarray(g) for g in tt_xla.compile(text)(a)]
    want = _xla(text, [a], x64=False)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
