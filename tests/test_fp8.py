"""The fp8 types ml_dtypes provides, stored as their byte and computed in f32 with a rounding
after every op (prelude.c's k_f8_*): every byte decoded, f32 rounded to each format (ties,
overflow to inf or NaN, subnormals, -0 in the fnuz types), elementwise math on every pair of
values, bit for bit against XLA:CPU running the same text; and jitted jax functions on fp8
arrays against CPU JAX."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import tt_xla

from test_elementwise_complete import _module, _xla
from test_op_table import program, run, xla_run

F8 = {"f8E4M3FN": ml_dtypes.float8_e4m3fn, "f8E5M2": ml_dtypes.float8_e5m2,
      "f8E4M3FNUZ": ml_dtypes.float8_e4m3fnuz, "f8E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
      "f8E4M3B11FNUZ": ml_dtypes.float8_e4m3b11fnuz, "f8E4M3": ml_dtypes.float8_e4m3,
      "f8E3M4": ml_dtypes.float8_e3m4}
ALL_BYTES = np.arange(256, dtype=np.uint8)


def _f32_edges() -> np.ndarray:
    rng = np.random.default_rng(0)
    special = [np.nan, np.inf, -np.inf, 0, -0.0, 448, 464, 465, 480, 500, 240, 248, 57344, 61440, 61441,
               30, 31, 15.5, 1e-40, 2.0 ** -9, 2.0 ** -10, 3 * 2.0 ** -11, 2.0 ** -17, 2.0 ** -16]
    return np.concatenate([rng.normal(0, 1, 200), rng.normal(0, 100, 200), rng.uniform(-7e4, 7e4, 100),
                           2.0 ** -np.arange(0, 24), -(2.0 ** -np.arange(0, 24)), special]).astype(np.float32)


def _ulps(got: np.ndarray, want: np.ndarray, t: str) -> np.ndarray:
    """Distance in steps of the format (NaN == NaN; signed zeros must match)."""
    g, w = got.astype(np.float64), want.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    same = both_nan | ((g == w) & (np.signbit(g) == np.signbit(w)))
    order = np.sort(np.unique(ALL_BYTES.view(F8[t]).astype(np.float64)))
    order = order[np.isfinite(order)]
    gi, wi = np.searchsorted(order, g), np.searchsorted(order, w)
    return np.where(same, 0, np.where(np.isnan(g) | np.isnan(w), 99, np.abs(gi - wi)))


@pytest.mark.parametrize("t", sorted(F8))
def test_conversions_exact(t):
    x8 = ALL_BYTES.view(F8[t])
    text = program("stablehlo.convert", [t], "f32", 256)
    got = run(text, x8)
    np.testing.assert_array_equal(got.view(np.uint32), xla_run(text, x8).view(np.uint32))  # NaN bits too
    x = _f32_edges()
    text = program("stablehlo.convert", ["f32"], t, x.size)
    got, want = run(text, x), xla_run(text, x)
    assert not _ulps(got, want, t).any(), x[_ulps(got, want, t) > 0]
    # and the same as ml_dtypes' own rounding
    assert not _ulps(got, x.astype(F8[t]), t).any()


EXACT_OPS = [("add", 2), ("subtract", 2), ("multiply", 2), ("divide", 2), ("maximum", 2), ("negate", 1),
             ("abs", 1), ("floor", 1)]
LIBM_OPS = [("exponential", 1), ("sqrt", 1), ("tanh", 1), ("log", 1)]  # XLA's own f8 results may differ by an ulp


@pytest.mark.parametrize("t", sorted(F8))
def test_elementwise_on_every_value(t):
    """Every op of the lists on every pair of the format's values (one module per format)."""
    x8 = ALL_BYTES.view(F8[t])
    a, b = (m.reshape(-1) for m in np.meshgrid(x8, x8, indexing="ij"))
    ops = EXACT_OPS + LIBM_OPS
    text = _module(t, a.size, [(op, arity, "same") for op, arity in ops])
    for (op, arity), got, want in zip(ops, tt_xla.compile(text)(a, b), _xla(text, [a, b], x64=False)):
        d = _ulps(np.asarray(got), want, t)
        limit = 0 if (op, arity) in EXACT_OPS else 1
        assert d.max() <= limit, f"{op} on {t}: {int((d > limit).sum())} values off"


@pytest.mark.parametrize("t", ["f8E4M3FN", "f8E5M2"])
def test_jitted_programs_on_fp8_arrays(t):
    d = F8[t]
    x = (np.arange(64, dtype=np.float32).reshape(8, 8) / 7 - 3).astype(d)
    exact = {"cmp": lambda a: a > a.T, "bits": lambda a: jax.lax.bitcast_convert_type(a, jnp.uint8),
             "to_f32": lambda a: a.astype(jnp.float32) * 3, "mix": lambda a: (a * a + 1).astype(jnp.bfloat16),
             "from_bits": lambda a: jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(a, jnp.int8) + 1, a.dtype)}
    for name, f in exact.items():
        got, want = tt_xla.jit(f)(x), jax.jit(f)(x)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(np.asarray(got).view(np.uint8) if got.dtype.itemsize == 1 else np.asarray(got),
                                      np.asarray(want).view(np.uint8) if want.dtype.itemsize == 1 else np.asarray(want),
                                      err_msg=name)
    # sums and products accumulate in f32 and round once; XLA:CPU rounds after every add, so they
    # agree to within a few steps of the format
    for name, f in {"sum": lambda a: jnp.sum(a, axis=1), "dot": lambda a: a @ a}.items():
        got, want = np.asarray(tt_xla.jit(f)(x)), np.asarray(jax.jit(f)(x))
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=0.3, atol=1, err_msg=name)
