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


# ---------------------------------------------------------------- rows longer than a core's SRAM
def _on_small_sram(f, args, sram):
    """f's outputs, compiled for cores with `sram` bytes of SRAM (so rows are chunk-sorted and
    merged across cores), run on the default device; and the kernels' loop IR."""
    from tt_xla.compiler import compile_text
    from tt_xla.executable import LoadedExecutable
    text = jax.export.export(jax.jit(f))(*args).mlir_module()
    p = compile_text(text, sram_per_core=sram)
    exe = LoadedExecutable(tt_xla.client().devices()[0].runtime_device, p)
    outs = exe.run(list(args))
    return [np.frombuffer(o.read(), s.dtype)[:int(np.prod(s.shape))].reshape(s.shape) for o, s in
            zip(outs, exe.output_specs)], p.kernels


def _same_bits(got, want):
    """Exactly equal, bit for bit: a stable sort fixes the order of ties, -0.0 and NaNs too."""
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    bits = lambda a: a if a.dtype.kind in "biu" else a.view(f"u{a.dtype.itemsize}")  # floats, bf16
    np.testing.assert_array_equal(bits(got), bits(want))


LONG = [  # (name, function, input shapes/dtypes)
    ("sort", lambda a: jnp.sort(a, axis=-1), [((3, 1000), np.float32)]),
    ("sort_axis0", lambda a: jnp.sort(a, axis=0), [((1000, 3), np.float32)]),
    ("argsort", lambda a: jnp.argsort(a, axis=-1), [((2, 777), np.float32)]),
    ("argsort_desc", lambda a: jnp.argsort(a, axis=-1, descending=True), [((2, 777), np.float32)]),
    ("top_k", lambda a: jax.lax.top_k(a, 7), [((2, 900), np.float32)]),
    ("bf16", lambda a: jnp.sort(a), [((1500,), BF16)]),
    ("i32_argsort", lambda a: jnp.argsort(a), [((1300,), np.int32)]),
    ("ui8", lambda a: jnp.sort(a), [((2, 1111), np.uint8)]),
    ("keys_values", lambda k, v: jax.lax.sort((k, v), dimension=1, num_keys=1), [((2, 999), np.int32), ((2, 999), np.float32)]),
    ("two_keys", lambda k, v: jax.lax.sort((k, v), dimension=0, num_keys=2), [((1001, 2), np.int32), ((1001, 2), np.float32)]),
]


@pytest.mark.parametrize("name,f,specs", LONG, ids=[c[0] for c in LONG])
def test_long_rows_chunk_sort_and_merge_passes(name, f, specs):
    """Rows past a core's SRAM (here 4 KiB: chunks of at most 256): bit-exact against CPU JAX,
    with NaNs, both zeros, infinities and many ties (integer keys in 0..4: stability)."""
    args = []
    for j, (shape, dt) in enumerate(specs):
        if np.dtype(dt).kind in "iu":
            args.append(inputs(shape, dt, seed=j, low=0, high=5))
        else:
            x = _edgy(shape, dt, seed=j)
            x.reshape(-1)[50:300] = np.round(x.reshape(-1)[50:300].astype(np.float32)).astype(dt)  # ties
            args.append(x)
    got, kernels = _on_small_sram(f, args, 4096)
    assert sum(k.kind == "sort" for k in kernels) >= 3  # a chunk sort and merge passes, not one kernel
    for g, w in zip(got, jax.tree.leaves(jax.jit(f)(*args))):
        _same_bits(g, w)


def test_long_row_on_the_default_device():
    """A row of 200,000 f32 (the default core holds about 90k): chunks of 65,536, two merge passes."""
    x = _edgy((200_000,), np.float32)
    x[1000:5000] = 3.0
    assert [k.kind for k in tt_xla.jit(jnp.sort).kernels(x)] == ["sort"] * 3
    # argsort carries (x, iota) through the first merge pass; its last pass writes the positions only
    assert [k.kind for k in tt_xla.jit(jnp.argsort).kernels(x)].count("sort") == 5
    check(jnp.argsort, x)
    check(jnp.sort, x)
