"""sort (multi-operand, any comparator region incl. JAX's total-order float comparator, stable),
argsort and top_k on the device vs CPU JAX: NaN and -0.0 placement, ties, dtypes, shapes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tt_xla
from util import BF16, check, inputs

DTYPES = [np.float32, BF16, np.float16, np.int32, np.uint8, np.bool_]


def _edgy(shape, dtype, seed=0):
    """Inputs with ties, NaNs, infinities and both zeros (floats)."""
    x = inputs(shape, dtype, seed=seed)
    if x.size and np.dtype(dtype).kind not in "biu":
        flat = x.reshape(-1)
        vals = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1.0, 1.0, -0.0, np.nan], np.float32).astype(dtype)
        flat[: min(len(vals), flat.size)] = vals[: flat.size]
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,axis", [((5, 37), 1), ((5, 37), 0), ((3, 4, 33), 1), ((1,), 0), ((0, 3), 1),
                                        ((4, 0), 1), ((1000,), 0)])
def test_sort_and_argsort(dtype, shape, axis):
    x = _edgy(shape, dtype)
    check(lambda a: jnp.sort(a, axis=axis), x)
    if np.dtype(dtype) != np.bool_:
        check(lambda a: jnp.argsort(a, axis=axis), x)
        check(lambda a: jnp.argsort(a, axis=axis, descending=True), x)


def test_sort_multi_operand_custom_comparator():
    """lax.sort of (keys, values) by the keys only (num_keys=1), and by both keys."""
    k = inputs((6, 41), np.int32, low=0, high=5)
    v = inputs((6, 41), np.float32, seed=1)
    check(lambda a, b: jax.lax.sort((a, b), dimension=1, num_keys=1), k, v)
    check(lambda a, b: jax.lax.sort((a, b), dimension=0, num_keys=2), k, v)


def test_sort_dead_results_not_computed():
    """argsort: only the permutation's result is stored, the sorted keys are never computed."""
    x = inputs((8, 100), np.float32)
    f = tt_xla.jit(lambda a: jnp.argsort(a, axis=1))
    assert [k.kind for k in f.kernels(x)].count("sort") == 1


@pytest.mark.parametrize("dtype", [np.float32, BF16, np.int32, np.uint8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,k", [((5, 37), 3), ((5, 37), 37), ((2, 3, 1), 1), ((1000,), 10)])
def test_top_k(dtype, shape, k):
    x = _edgy(shape, dtype)
    check(lambda a: jax.lax.top_k(a, k), x)


def test_top_k_parses_from_text():
    """The pretty form jax prints for chlo.top_k (it used to be a ParseError)."""
    text = """func.func @main(%arg0: tensor<4x8xf32>) -> (tensor<4x3xf32>, tensor<4x3xi32>) {
      %values, %indices = chlo.top_k(%arg0, k = 3) : tensor<4x8xf32> -> (tensor<4x3xf32>, tensor<4x3xi32>)
      return %values, %indices : tensor<4x3xf32>, tensor<4x3xi32>
    }"""
    x = inputs((4, 8), np.float32, edges=False)
    vals, idx = tt_xla.compile(text)(x)
    want = jax.lax.top_k(x, 3)
    np.testing.assert_array_equal(np.asarray(vals), np.asarray(want[0]))
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(want[1]))
