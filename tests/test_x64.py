"""With x64 on, f64 and i64 are computed at full width, never through f32 or a double: each
check picks a result that the narrower type cannot represent, so a silent downgrade anywhere
(argument upload, elementwise, libm, reduction, matrix engine, conversion, constants) fails."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tt_xla


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _both(f, *args):
    got = tt_xla.jit(f)(*args)
    want = jax.jit(f)(*args)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    return np.asarray(got), np.asarray(want)


def test_f64_elementwise_keeps_bits_f32_drops():
    x = np.array([1.0, 3.0, 1e-300, 1e300], np.float64)
    got, want = _both(lambda x: (x + 1e-10) / 3.0, x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)  # IEEE add/div: bit-exact
    assert got[0] != np.float64(np.float32(got[0]))  # not representable in f32
    assert got[2] != 0 and np.isfinite(got[3])       # outside f32's range


def test_f64_libm_and_reduction_and_dot():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, (33, 40))
    y = rng.uniform(1, 2, (40, 7))
    for f in (lambda a: jnp.exp(a) * jnp.log(a) + jnp.sin(a), lambda a: jnp.sum(a * 1e-9, axis=1) + 1.0):
        got, want = _both(f, x)
        np.testing.assert_allclose(got, want, rtol=1e-14)
    got, want = _both(lambda a, b: a @ b + 1e-12, x, y)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # the sum of 40 products near 1..4 plus 1e-12: an f32 engine would lose the 1e-12 entirely
    assert np.abs(got - np.float64(np.float32(got))).max() > 0


def test_i64_beyond_2_to_53():
    big = np.array([2 ** 53 + 1, 2 ** 62 + 3, -(2 ** 63) + 5, 7], np.int64)
    got, want = _both(lambda a: a * 3 + 1 - (a >> 1), big)
    np.testing.assert_array_equal(got, want)
    got, want = _both(lambda a: jnp.sum(a), np.array([2 ** 60, 1, 2 ** 60, 1], np.int64))
    assert int(got) == 2 ** 61 + 2 == int(want)  # a double-based sum would round the 2 away
    got, want = _both(lambda a: a.astype(jnp.float64) - 9007199254740992.0, np.array([2 ** 53 + 2], np.int64))
    np.testing.assert_array_equal(got, want)


def test_f64_constants_keep_full_precision():
    x = np.zeros(3, np.float64)
    got, want = _both(lambda a: a + 0.1 + np.float64(1 / 3), x)
    np.testing.assert_array_equal(got, want)
    assert got[0] == 0.1 + 1 / 3
