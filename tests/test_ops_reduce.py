"""Reductions: sum, prod, max, min, all, any over axis subsets; argmax/argmin (variadic
reduce); mean, var."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import jax.numpy as jnp

import tt_xla

from util import BF16, check, inputs


def _axis_subsets(ndim):
    subsets = [None]
    for r in range(1, ndim + 1):
        subsets += [c if len(c) > 1 else c[0] for c in itertools.combinations(range(ndim), r)]
    return subsets


SHAPES = [(7,), (33, 65), (3, 5, 7)]
FLOAT_REDUCERS = {"sum": jnp.sum, "max": jnp.max, "min": jnp.min, "prod": jnp.prod}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(FLOAT_REDUCERS))
def test_reduce_f32_every_axis_subset(name, shape):
    """One program per (op, shape) returns the reduction over every axis subset."""
    x = inputs(shape, edges=False)
    if name == "prod":  # no huge values: whether a product overflows depends on the order
        x = inputs(shape, low=0.5, high=1.5, huge=False)  # (unspecified for reduce)
    red = FLOAT_REDUCERS[name]
    check(lambda x: tuple(red(x, axis=a) for a in _axis_subsets(len(shape))), x,
          rtol=1e-4 if name in ("sum", "prod") else None, atol=1e-4)


@pytest.mark.parametrize("name", sorted(FLOAT_REDUCERS))
def test_reduce_nan_inf(name):
    x = inputs((9, 40), huge=name != "prod")  # NaN, +-inf, -0.0, huge mixed in
    red = FLOAT_REDUCERS[name]
    x2 = inputs((9, 40), edges=False)
    x2[2, 5] = np.inf
    x2[4, 7] = -np.inf
    x2[6, :] = np.nan
    check(lambda x, y: (red(x), red(x, axis=0), red(x, axis=1), red(y, axis=1), red(y, axis=0)),
          x, x2)


@pytest.mark.parametrize("name", sorted(FLOAT_REDUCERS))
def test_reduce_bf16(name):
    x = inputs((5, 40), BF16, edges=False) if name != "prod" else inputs((5, 40), BF16, low=0.8, high=1.2)
    red = FLOAT_REDUCERS[name]
    check(lambda x: (red(x, axis=0), red(x, axis=1)), x, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", ["sum", "max", "min", "prod"])
def test_reduce_i32(name):
    x = inputs((3, 5, 7), np.int32, low=-50, high=50)
    if name == "prod":
        x = inputs((3, 5, 7), np.int32, low=-3, high=3)
    red = FLOAT_REDUCERS[name]
    check(lambda x: tuple(red(x, axis=a) for a in _axis_subsets(3)), x)
    check(lambda x: (red(x), red(x, axis=1)), inputs((6, 70), np.int32))  # wraps on overflow


def test_reduce_bool():
    x = inputs((3, 5, 7), np.bool_)
    x2 = np.ones((4, 6), bool)
    x2[1, 2] = False
    check(lambda x: tuple(f(x, axis=a) for f in (jnp.all, jnp.any) for a in _axis_subsets(3)), x)
    check(lambda x: (jnp.all(x, 0), jnp.all(x, 1), jnp.any(~x, 1), jnp.all(x), jnp.any(x)), x2)
    check(lambda x: (jnp.sum(x), jnp.sum(x, axis=0)), x)  # bool sum -> int32


def test_reduce_empty_and_degenerate():
    z = np.zeros((0, 4), np.float32)
    check(lambda z: (jnp.sum(z, 0), jnp.prod(z, 0), jnp.max(z, 1), jnp.max(z, 0, initial=-jnp.inf),
                     jnp.sum(z, 1)), z)
    check(lambda x: (jnp.sum(x), jnp.max(x, axis=0)), inputs((1, 1)))
    check(lambda x: jnp.sum(x), np.float32(3.0))


@pytest.mark.parametrize("shape", [(33, 65), (3, 5, 7), (1027,)], ids=str)
def test_argmax_argmin(shape):
    x = inputs(shape, edges=False)
    x.flat[::7] = 0.25  # ties: the first index wins
    axes = [None] + list(range(len(shape)))
    check(lambda x: tuple(f(x, axis=a) for f in (jnp.argmax, jnp.argmin) for a in axes), x)


def test_argmax_nan_inf_int():
    x = inputs((9, 40), edges=False)
    x[3, 4] = np.nan
    x[5, 1] = np.inf
    x[6, 9] = -np.inf
    check(lambda x: (jnp.argmax(x, 1), jnp.argmin(x, 1), jnp.argmax(x, 0), jnp.argmin(x, 0)), x)
    check(lambda x: (jnp.argmax(x, 1), jnp.argmin(x, 0)), inputs((9, 40), np.int32))
    check(lambda x: (jnp.argmax(x, 1), jnp.argmin(x, 0)), inputs((9, 40), BF16, edges=False))


@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["f32", "bf16"])
def test_mean_var(dtype):
    x = inputs((33, 65), dtype, edges=False)
    tol = 1e-5 if dtype == np.float32 else 2e-2
    check(lambda x: (jnp.mean(x), jnp.mean(x, 0), jnp.var(x, 1), jnp.std(x), jnp.var(x, 0, ddof=1)),
          x, rtol=tol * 10, atol=tol)


def test_large_reduction():
    x = inputs((4096,), edges=False)
    check(lambda x: (jnp.sum(x), jnp.max(x), jnp.mean(x * x)), x, rtol=1e-4, atol=1e-4)
    check(lambda x: jnp.sum(x, axis=1), inputs((3, 100000), edges=False), rtol=1e-4, atol=1e-3)


def _reduce_reads(f, *args) -> list[str]:
    """The DMA reads of f's reduction kernels, as their IR prints them."""
    ks = tt_xla.jit(f).kernels(*args)
    return [ln for k in ks if k.name.endswith("reduce") for ln in str(k.ir).splitlines() if "dma_read" in ln]


SHORT_ROWS = {  # name: (function, input shapes, dtype, read by blocks): reductions over short last dims
    "sum_rows": (lambda x: jnp.sum(x, axis=-1), [(4096, 64)], np.float32, True),
    "max_min_rows": (lambda x: (jnp.max(x, axis=-1), jnp.min(x, axis=-1)), [(2048, 33)], np.float32, True),
    "products": (lambda x, y: jnp.sum(x * y, axis=-1), [(3, 512, 64), (3, 512, 64)], np.float32, True),
    "odd_outputs": (lambda x: jnp.sum(x, axis=-1), [(1001, 7)], np.float32, True),
    "bf16": (lambda x: jnp.max(x, axis=-1), [(777, 100)], BF16, True),
    "i32": (lambda x: jnp.sum(x, axis=-1), [(3000, 9)], np.int32, True),
    # rows not packed alike in DRAM and a page: a DMA a row, read by the host where it is used
    "broadcast_row": (lambda x, y: jnp.sum(x * y, axis=-1), [(1024, 48), (48,)], np.float32, False),
    "transposed": (lambda x: jnp.sum(x.T, axis=-1), [(40, 1500)], np.float32, False),
    "strided": (lambda x: jnp.sum(x[:, ::3], axis=-1), [(700, 31)], np.float32, False),
}


@pytest.mark.parametrize("name", sorted(SHORT_ROWS))
def test_short_row_reductions_read_an_items_rows_by_one_dma(name):
    """A reduction over short runs (lower.SHORT_RUN) with several outputs a work item reads the
    item's rows of each operand by one block DMA, not one DMA a row, where the rows lie in DRAM
    as in the page; results as CPU JAX's, edge values (NaN, inf, -0, denormals) included."""
    f, shapes, dtype, blocks = SHORT_ROWS[name]
    args = [inputs(s, dtype, seed=i, **({"low": -50, "high": 50} if dtype == np.int32 else {}))
            for i, s in enumerate(shapes)]
    reads = _reduce_reads(f, *args)
    assert reads and all((" rows " in r) == blocks for r in reads), reads
    tol = {np.float32: (1e-5, 1e-4), BF16: (2e-2, 2e-2)}.get(dtype, (None, None))
    if "max" in name:
        # XLA:CPU's vectorized max drops some NaNs (a row of f32[2048, 33] with a NaN gave its
        # largest number); StableHLO's maximum propagates NaN, as numpy's does
        got = tt_xla.jit(f)(*args)
        for g, w in zip(got if isinstance(got, tuple) else (got,), (np.max(args[0], -1), np.min(args[0], -1))):
            np.testing.assert_array_equal(np.isnan(np.asarray(g)), np.isnan(w.astype(np.float32)))
        args = [np.where(np.isnan(a), 0, a).astype(a.dtype) for a in args]
    check(f, *args, rtol=tol[0], atol=tol[1])
