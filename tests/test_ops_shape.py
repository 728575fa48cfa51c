"""Data movement ops: broadcast_in_dim, reshape, transpose, slice, concatenate, pad, iota,
constants, reverse."""
from __future__ import annotations

import numpy as np
import pytest

import jax.numpy as jnp
from jax import lax

from util import BF16, check, inputs


# ----------------------------------------------------------------------------- broadcast
@pytest.mark.parametrize("shapes", [
    ((3, 5), (5,)), ((3, 5), (3, 1)), ((1, 5), (4, 1)), ((), (7, 9)), ((2, 1, 4), (3, 1)),
    ((33, 65), (1, 65)), ((0, 4), (4,)), ((1,), (1027,)),
], ids=str)
def test_broadcast_binary(shapes):
    a, b = shapes
    check(lambda x, y: x * y - y, inputs(a), inputs(b, seed=1))


def test_broadcast_to_and_int():
    check(lambda x: jnp.broadcast_to(x, (4, 3, 5)), inputs((3, 5)))
    check(lambda x: jnp.broadcast_to(x[:, None], (6, 9)) + 1, inputs((6,), np.int32))
    check(lambda x: lax.broadcast_in_dim(x, (2, 6, 3), (1,)), inputs((6,), BF16))


# ----------------------------------------------------------------------------- reshape
@pytest.mark.parametrize("src,dst", [
    ((6, 4), (24,)), ((24,), (2, 3, 4)), ((2, 3, 4), (4, 6)), ((1, 1027), (1027, 1)),
    ((33, 65), (65, 33)), ((), (1, 1)), ((0, 3), (3, 0)), ((4096,), (64, 64)),
], ids=str)
def test_reshape(src, dst):
    check(lambda x: jnp.reshape(x, dst) * 2, inputs(src))


def test_reshape_then_transpose_int():
    check(lambda x: x.reshape(4, 6).T.reshape(3, 8), np.arange(24, dtype=np.int32))


# ----------------------------------------------------------------------------- transpose
@pytest.mark.parametrize("shape,perm", [
    ((3, 5), (1, 0)), ((33, 65), (1, 0)), ((64, 96), (1, 0)), ((1, 1027), (1, 0)),
    ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (1, 0, 2)), ((5, 33, 7), (0, 2, 1)),
    ((2, 3, 4, 5), (3, 1, 0, 2)), ((2, 3, 4, 5), (0, 2, 1, 3)), ((0, 3, 2), (2, 0, 1)),
    # the source's contiguous dim outer in the result: the loop walks it second to last (tiles)
    ((70, 33, 40), (2, 0, 1)), ((3, 50, 17, 20), (3, 1, 2, 0)), ((16, 17, 2, 33), (3, 0, 2, 1)),
], ids=str)
def test_transpose(shape, perm):
    check(lambda x: jnp.transpose(x, perm), inputs(shape))


@pytest.mark.parametrize("dtype", [BF16, np.int8, np.bool_], ids=["bf16", "i8", "bool"])
def test_transpose_dtypes(dtype):
    check(lambda x: x.T, inputs((37, 70), dtype))


# ----------------------------------------------------------------------------- slice
@pytest.mark.parametrize("case", [
    ((10,), (2,), (8,), None), ((10,), (1,), (10,), (3,)), ((33, 65), (1, 2), (30, 60), None),
    ((33, 65), (0, 0), (33, 65), (2, 5)), ((4, 6, 8), (1, 0, 3), (3, 6, 8), (1, 2, 3)),
    ((5, 5), (2, 2), (2, 5), None),  # empty result
], ids=str)
def test_lax_slice(case):
    shape, start, limit, strides = case
    check(lambda x: lax.slice(x, start, limit, strides), inputs(shape))


def test_numpy_slicing():
    x = inputs((17, 40))
    check(lambda x: (x[3:9, ::3], x[::-1], x[:, 5], x[-1], x[2:3, 7:8]), x)


# ----------------------------------------------------------------------------- concatenate
@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concatenate(n, axis):
    shapes = []
    for k in range(n):
        s = [3, 5, 7]
        s[axis] = [1, 4, 33, 0][k]
        shapes.append(tuple(s))
    args = [inputs(s, seed=k) for k, s in enumerate(shapes)]
    check(lambda *xs: jnp.concatenate(xs, axis=axis), *args)


def test_concatenate_dtypes():
    check(lambda a, b: jnp.concatenate([a, b]), inputs((5,), np.int32), inputs((3,), np.int32, seed=1))
    check(lambda a, b: jnp.stack([a, b], axis=1), inputs((6,), BF16), inputs((6,), BF16, seed=1))


# ----------------------------------------------------------------------------- pad
@pytest.mark.parametrize("config", [
    [(1, 2, 0)], [(0, 0, 1)], [(-1, 3, 0)], [(2, -3, 2)], [(-2, -1, 1)],
], ids=str)
def test_lax_pad_1d(config):
    check(lambda x: lax.pad(x, np.float32(-7.5), config), inputs((9,)))


def test_lax_pad_2d():
    x = inputs((33, 65))
    check(lambda x: lax.pad(x, np.float32(0), [(1, -2, 1), (-3, 4, 2)]), x)
    check(lambda x: lax.pad(x, x[0, 0], [(0, 1, 0), (2, 0, 0)]), x)  # dynamic padding value


def test_jnp_pad():
    x = inputs((5, 7))
    check(lambda x: jnp.pad(x, ((1, 2), (3, 0))), x)
    check(lambda x: jnp.pad(x, 2, constant_values=1.5), x)
    check(lambda x: jnp.pad(x, ((0, 0), (2, 2)), mode="edge"), x)
    check(lambda x: jnp.pad(x, 1), inputs((4, 3), np.int32))


# ----------------------------------------------------------------------------- iota
def test_iota():
    check(lambda: jnp.arange(10))
    check(lambda: jnp.arange(3, 50, 7, dtype=jnp.float32))
    check(lambda: lax.iota(jnp.int32, 1027))
    check(lambda: lax.iota(BF16, 300))
    check(lambda: lax.broadcasted_iota(jnp.int32, (4, 33, 5), 1))
    check(lambda: lax.broadcasted_iota(jnp.float32, (7, 9), 0) * 0.5)
    check(lambda x: x + jnp.arange(x.shape[-1], dtype=x.dtype), inputs((3, 65)))
    check(lambda: jnp.eye(37))


# ----------------------------------------------------------------------------- constants
def test_constants():
    rng = np.random.default_rng(0)
    big = rng.standard_normal((257, 129)).astype(np.float32)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, 3.4e38, 1.0], np.float32)
    ints = rng.integers(-2**31, 2**31 - 1, size=(1000,), dtype=np.int64).astype(np.int32)
    check(lambda x: x + big, inputs((257, 129)))
    check(lambda: jnp.asarray(special) * 2)
    check(lambda x: x * special, inputs((7,)))
    check(lambda: (ints, ints ^ 5))
    check(lambda: (jnp.float32(np.pi), jnp.full((3, 4), np.nan), jnp.zeros((0, 5)), jnp.ones((), BF16)))
    check(lambda: (np.array([True, False, True]), np.array([-128, 127], np.int8),
                   np.array([0, 2**32 - 1], np.uint32), big.astype(BF16)))


def test_constant_only_output_is_fresh():
    f = lambda: jnp.arange(5, dtype=jnp.float32)
    import tt_xla
    g = tt_xla.jit(f)
    a, b = g(), g()
    a.delete()
    np.testing.assert_array_equal(np.asarray(b), np.arange(5, dtype=np.float32))


# ----------------------------------------------------------------------------- reverse
def test_reverse():
    check(lambda x: (jnp.flip(x, 0), jnp.flip(x, (0, 1)), lax.rev(x, (1,))), inputs((33, 65)))
    check(lambda x: jnp.flip(x), inputs((2, 3, 4), np.int32))
