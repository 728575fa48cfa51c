"""dot_general: matmul, vector dot, matvec, batched and multi-contracting einsums, dtypes."""
from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

import tt_xla
from util import BF16, F16, check, inputs


def _tol_for_k(k, dtype=np.float32):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5 * max(1, k ** 0.5), atol=1e-5 * max(1, k ** 0.5))
    return dict(rtol=2e-2, atol=2e-2 * max(1, k ** 0.5))


@pytest.mark.parametrize("mkn", [(1, 1, 1), (3, 5, 7), (33, 65, 17), (128, 256, 64), (1, 300, 1),
                                 (64, 32, 96), (5, 0, 3)], ids=str)
def test_matmul_f32(mkn):
    m, k, n = mkn
    a, b = inputs((m, k), edges=False), inputs((k, n), seed=1, edges=False)
    check(jnp.matmul, a, b, **_tol_for_k(k))


def test_matmul_nan_inf_propagate():
    a, b = inputs((8, 40), edges=False), inputs((40, 6), seed=1, edges=False)
    a[1, 3] = np.nan
    a[2, 5] = np.inf
    b[7, 4] = -np.inf
    check(jnp.matmul, a, b, rtol=1e-4, atol=1e-4)


def test_vector_and_matvec():
    v, w = inputs((65,), edges=False), inputs((65,), seed=1, edges=False)
    m = inputs((33, 65), seed=2, edges=False)
    check(lambda v, w, m: (jnp.dot(v, w), m @ v, w @ m.T, jnp.outer(v, w)), v, w, m,
          rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec,shapes", [
    ("bij,bjk->bik", ((4, 33, 17), (4, 17, 9))),
    ("bij,bkj->bik", ((3, 8, 40), (3, 5, 40))),
    ("ij,kj->ik", ((33, 65), (17, 65))),
    ("ji,jk->ik", ((65, 33), (65, 17))),
    ("abc,bcd->ad", ((6, 5, 7), (5, 7, 9))),
    ("bhqd,bhkd->bhqk", ((2, 3, 16, 8), (2, 3, 10, 8))),
    ("bij,jk->bik", ((2, 5, 7), (7, 3))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_einsum(spec, shapes):
    args = [inputs(s, seed=i, edges=False) for i, s in enumerate(shapes)]
    check(lambda a, b: jnp.einsum(spec, a, b), *args, rtol=1e-4, atol=1e-4)


def test_dot_general_batch_dims_not_leading():
    a, b = inputs((7, 3, 5), edges=False), inputs((5, 3, 4), seed=1, edges=False)
    dims = (((2,), (0,)), ((1,), (1,)))  # contract a.2 with b.0, batch a.1 with b.1
    check(lambda a, b: lax.dot_general(a, b, dims), a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mkn", [(3, 5, 7), (33, 65, 17), (128, 256, 64)], ids=str)
def test_matmul_bf16(mkn):
    m, k, n = mkn
    a, b = inputs((m, k), BF16, edges=False), inputs((k, n), BF16, seed=1, edges=False)
    check(jnp.matmul, a, b, **_tol_for_k(k, BF16))
    check(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32), a, b,
          rtol=1e-4, atol=1e-4 * k ** 0.5)


@pytest.mark.parametrize("mkn", [(3, 5, 7), (33, 65, 17)], ids=str)
def test_matmul_f16(mkn):
    m, k, n = mkn
    a, b = inputs((m, k), F16, edges=False), inputs((k, n), F16, seed=1, edges=False)
    check(jnp.matmul, a, b, rtol=1e-2, atol=1e-2 * k ** 0.5)


@pytest.mark.parametrize("mkn", [(3, 5, 7), (33, 65, 17)], ids=str)
def test_matmul_i32(mkn):
    m, k, n = mkn
    a, b = inputs((m, k), np.int32, low=-20, high=20), inputs((k, n), np.int32, seed=1, low=-20, high=20)
    check(jnp.matmul, a, b)
    check(lambda a, b: jnp.einsum("ij,kj->ik", a, b), a, a)


def test_matmul_chain_with_bias_and_activation():
    x, w1, w2 = inputs((33, 64), edges=False), inputs((64, 96), seed=1, edges=False), inputs((96, 10), seed=2, edges=False)
    b1 = inputs((96,), seed=3, edges=False)
    check(lambda x, w1, b1, w2: jax.nn.relu(x @ w1 + b1) @ w2, x, w1, b1, w2, rtol=1e-4, atol=1e-3)


def test_dot_with_operands_that_have_no_memory():
    """A broadcast constant or an iota as a matmul operand is stored first (found by fuzzing)."""
    x = inputs((4, 5), edges=False)
    check(lambda x: x @ jnp.ones((5, 3)), x)
    check(lambda x: x @ jnp.arange(15.0, dtype=jnp.float32).reshape(5, 3), x)
    check(lambda x: jnp.einsum("ab,ad->bd", x, jnp.full((0, 1), jnp.nan)), np.ones((0, 1), np.float32))


# ---------------------------------------------------------------- the matrix engine's paths
@pytest.mark.parametrize("mkn", [(1, 1, 1), (5, 1, 9), (37, 1, 70), (0, 4, 3), (3, 0, 5), (4, 3, 0),
                                 (67, 129, 45), (300, 513, 97)], ids=str)
def test_matmul_bf16_f32_out_shapes(mkn):
    """The bf16 engine (pairs of k per instruction) on K = 1 and odd K (a lone last k), empty
    dims and non-multiples of its 8x32 register tile, accumulating in f32."""
    m, k, n = mkn
    a, b = inputs((m, k), BF16, edges=False), inputs((k, n), BF16, seed=1, edges=False)
    check(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32), a, b,
          rtol=1e-4, atol=1e-4 * max(1, k) ** 0.5)


def test_matmul_bf16_edge_values():
    """NaN and infinities propagate through the bf16 engine as through XLA:CPU; denormal
    inputs are flushed on both (the device's DAZ)."""
    a = inputs((40, 70), BF16, seed=3, huge=False)
    b = inputs((70, 50), BF16, seed=4, huge=False)
    check(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32), a, b, rtol=1e-4, atol=1e-3)
    check(jnp.matmul, a, b, rtol=2e-2, atol=1e-1)


@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=str)
def test_matmul_shared_b_blocks(dtype):
    """Products with many row blocks per column block (the engine packs a B block once per host
    thread and launch and reuses it for the thread's next items), a broadcast rhs shared by a
    batch, and a transposed rhs."""
    tol = _tol_for_k(700, dtype) if dtype == np.float32 else dict(rtol=1e-4, atol=2e-3)
    f32out = dict(preferred_element_type=jnp.float32) if dtype == BF16 else {}
    a, b = inputs((1500, 700), dtype, edges=False), inputs((700, 600), dtype, seed=1, edges=False)
    check(lambda a, b: jnp.matmul(a, b, **f32out), a, b, **tol)
    check(lambda a, b: jnp.matmul(a, b.T, **f32out), a, b.T.copy(), **tol)
    x, w = inputs((6, 300, 90), dtype, seed=2, edges=False), inputs((90, 70), dtype, seed=3, edges=False)
    check(lambda x, w: jnp.einsum("bik,kn->bin", x, w, **f32out), x, w, **tol)


def test_matmul_rhs_rewritten_between_calls():
    """A numpy argument is bound without a copy, so a second call sees the same address with new
    contents: the engine's packed B from the first call must not be reused."""
    f = tt_xla.jit(jnp.matmul)
    # one column block: every item of both calls reads the same B block
    a, b = inputs((600, 300), edges=False), inputs((300, 40), seed=1, edges=False)
    r1 = np.array(f(a, b))
    np.testing.assert_allclose(r1, a @ b, rtol=1e-4, atol=1e-3)
    b *= -2.0
    np.testing.assert_allclose(np.array(f(a, b)), a @ b, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.array(f(a, b)), -2.0 * r1, rtol=1e-4, atol=1e-3)


_rng = np.random.default_rng(11)


@pytest.mark.parametrize("f,a,b", [
    (lambda a, b: a @ b, _rng.random((37, 70)) < 0.05, _rng.random((70, 33)) < 0.05),
    (lambda a, b: jnp.einsum("bij,bjk->bik", a, b), _rng.random((2, 5, 6)) < 0.2, _rng.random((2, 6, 3)) < 0.2),
    (lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.int32),
     _rng.random((5, 9)) < 0.5, _rng.random((9, 4)) < 0.5),
    (lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32),
     _rng.random((5, 9)) < 0.5, _rng.random((9, 4)) < 0.5),
    (lambda a, b: a @ b, np.ones((3, 0), bool), np.ones((0, 2), bool)),
    (lambda a, b: jnp.dot(a, b), _rng.random(6) < 0.5, _rng.random(6) < 0.5),
    (lambda a, b: a @ b, np.ones((300, 300), bool), np.ones((300, 300), bool)),  # counts past 255
    # integers into a float result (preferred_element_type): computed wide, rounded once
    (lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32),
     _rng.integers(-128, 128, (6, 40)).astype(np.int8), _rng.integers(-128, 128, (40, 5)).astype(np.int8)),
    (lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.bfloat16),
     _rng.integers(-9, 9, (4, 3)).astype(np.int16), _rng.integers(-9, 9, (3, 6)).astype(np.int16)),
])
def test_boolean_and_integer_products_with_other_result_types(f, a, b):
    want = np.asarray(jax.jit(f)(a, b))
    got = np.asarray(tt_xla.jit(f)(a, b))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
