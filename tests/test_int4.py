"""int4 and uint4 (compiler/narrow_int.py: computed in bytes, wrapped to 4 bits after every op),
against CPU JAX over every pair of 4-bit values, and as StableHLO text for the ops jax refuses on
them (abs against XLA:CPU, a product into i32 against numpy)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

import tt_xla
from tt_xla.errors import UnsupportedError

from test_op_table import program, run, xla_run

I4, U4 = np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)


def every_pair(t: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    v = np.arange(-8, 8) if t == I4 else np.arange(16)
    return np.repeat(v, 16).astype(t), np.tile(v, 16).astype(t)


def ops(a, b):
    t, other = a.dtype, (U4 if a.dtype == I4 else I4)
    floats = jnp.array([100.0, -100.0, 7.6, -8.7, jnp.nan, jnp.inf, -jnp.inf, 15.5, 16.7, -3.3, 0.5, -0.5])
    ints = jnp.array([17, -9, 8, 255, -1, 2**31 - 1, -2**31], jnp.int32)
    m = a.reshape(16, 16)
    return (a + b, a - b, a * b, lax.div(a, b), lax.rem(a, b), -a, ~a, (a & b) ^ (a | b),
            jnp.maximum(a, b) - jnp.minimum(a, b), lax.shift_left(a, b), lax.shift_right_logical(a, b),
            lax.shift_right_arithmetic(a, b), lax.population_count(a), lax.clz(a), a < b, lax.sign(a),
            lax.integer_pow(a, 3), jnp.where(a > b, a, b), m.T + 1,
            a.astype(jnp.float32), a.astype(jnp.int32), a.astype(other), floats.astype(t), ints.astype(t),
            lax.reduce(m, t.type(0), lax.add, (1,)), lax.cumsum(m, axis=1), lax.dot(m, m.T),
            lax.bitcast_convert_type(a, other), a + np.array([3, -2, 5, 1] * 64).astype(t))


@pytest.mark.parametrize("t", [I4, U4], ids=["int4", "uint4"])
def test_every_pair_vs_cpu_jax(t):
    a, b = every_pair(t)
    want = jax.jit(ops)(a, b)
    got = tt_xla.jit(ops)(a, b)
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, w.dtype)
        np.testing.assert_array_equal(g.astype(np.float64), w.astype(np.float64), err_msg=f"result {k}")


def test_arguments_are_nibbles_results_too():
    """numpy keeps an int4 in a byte's low nibble (-1 is 0x0F); upper bits of an argument are
    ignored, a result's are zero."""
    raw = np.array([0x0F, 0xF7, 0x08, 0x80], np.uint8)
    a = raw.view(I4)
    out = np.asarray(tt_xla.jit(lambda a: a + a.dtype.type(1))(a))
    np.testing.assert_array_equal(out.view(np.uint8), [0x00, 0x08, 0x09, 0x01])  # 0, -8, -7, 1
    np.testing.assert_array_equal(out.astype(np.int8), [0, -8, -7, 1])


@pytest.mark.parametrize("t", ["i4", "ui4"])
def test_text_abs_and_product_into_i32_vs_xla(t):
    a, b = every_pair(I4 if t == "i4" else U4)
    if t == "i4":  # (abs takes signless integers only)
        text = program("stablehlo.abs", [t], t, a.size)
        np.testing.assert_array_equal(run(text, a).astype(np.int8), xla_run(text, a).astype(np.int8))
    text = f"""module {{
  func.func @main(%a: tensor<16x16x{t}>, %b: tensor<16x16x{t}>) -> tensor<16x16xi32> {{
    %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<16x16x{t}>, tensor<16x16x{t}>) -> tensor<16x16xi32>
    return %0 : tensor<16x16xi32>
  }}
}}"""
    x, y = a.reshape(16, 16), b.reshape(16, 16)
    # (XLA:CPU itself refuses this text: its operand upcaster gives an s32 a 4-bit element size)
    np.testing.assert_array_equal(run(text, x, y), x.astype(np.int32) @ y.astype(np.int32))


def test_packed_bitcast_is_refused():
    text = """module {
  func.func @main(%a: tensor<4x2xi4>) -> tensor<4xi8> {
    %0 = stablehlo.bitcast_convert %a : (tensor<4x2xi4>) -> tensor<4xi8>
    return %0 : tensor<4xi8>
  }
}"""
    with pytest.raises(UnsupportedError, match="bitcast_convert between i4 and i8"):
        tt_xla.compile(text)
