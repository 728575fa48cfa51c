"""f8E8M0FNU (ml_dtypes.float8_e8m0fnu, the MX scale type: 2^(b - 127) per byte, 0xFF NaN;
compiler/narrow.py): conversions and elementwise math against CPU JAX over every byte pair and
over the f32 bit patterns (subnormals, ties, overflow), bit-exact."""
from __future__ import annotations

import ml_dtypes
import numpy as np

import jax
import jax.numpy as jnp
from jax import lax
import pytest

import tt_xla
from tt_xla.errors import UnsupportedError

E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


def ops(a, b, x, bits):
    return (a.astype(jnp.float32), a * b, a + b, a - b, a / b, jnp.maximum(a, b), jnp.minimum(a, b), a < b,
            x.astype(E8M0), bits.astype(E8M0), a.astype(jnp.bfloat16), x.astype(jnp.bfloat16).astype(E8M0),
            x.astype(jnp.float16).astype(E8M0), jnp.sqrt(a), a.astype(jnp.float16), -a,
            lax.bitcast_convert_type(a, jnp.uint8), lax.bitcast_convert_type(a.astype(jnp.float32).astype(jnp.uint8), E8M0),
            jnp.where(a < b, a, b), a.reshape(256, 256).T)


def test_every_byte_pair_and_f32_bits_vs_cpu_jax():
    every = np.arange(256, dtype=np.uint8).view(E8M0)
    a, b = np.repeat(every, 256), np.tile(every, 256)
    x = np.array([0.0, -0.0, 1.0, 1.5, 1.4999, 3.0, 0.75, -2.0, np.inf, -np.inf, np.nan, 3e38, 1e-39, 1e-45, 5.87e-39,
                  2.0**-127, 2.0**-128, 2.0**-127 * 1.5, 2.0**-127 * 1.4, 6.0, 2.0**127 * 1.5, 65504.0, 1e-8], np.float32)
    bits = np.concatenate([np.arange(0, 2**32, 65543, dtype=np.uint64).astype(np.uint32),
                           np.array([0x400000, 0x400001, 0x3FFFFF, 0x7F400000, 0x7F3FFFFF], np.uint32)]).view(np.float32)
    want = jax.jit(ops)(a, b, x, bits)
    got = tt_xla.jit(ops)(a, b, x, bits)
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, w.dtype)
        if g.dtype == E8M0:
            g, w = g.view(np.uint8), w.view(np.uint8)
        np.testing.assert_array_equal(g.astype(np.float64), w.astype(np.float64), err_msg=f"result {k}")


def test_f64_to_e8m0_is_refused():
    """f64 -> f32 -> e8m0 would round twice (just under a tie rounds up)."""
    text = """module {
  func.func @main(%a: tensor<4xf64>) -> tensor<4xf8E8M0FNU> {
    %0 = stablehlo.convert %a : (tensor<4xf64>) -> tensor<4xf8E8M0FNU>
    return %0 : tensor<4xf8E8M0FNU>
  }
}"""
    with pytest.raises(UnsupportedError, match="f64 to f8E8M0FNU"):
        tt_xla.compile(text)
