"""reduce_window (pooling, any window/stride/dilation/padding), the cumulative ops as O(n)
scans, and select_and_scatter (max pooling's gradient) on the device vs CPU JAX."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tt_xla
from util import BF16, check, inputs

CUM = {"cumsum": jax.lax.cumsum, "cumprod": jax.lax.cumprod, "cummax": jax.lax.cummax, "cummin": jax.lax.cummin,
       "cumlogsumexp": jax.lax.cumlogsumexp}


@pytest.mark.parametrize("name", list(CUM))
@pytest.mark.parametrize("dtype", [np.float32, BF16, np.float16, np.int32, np.uint8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,axis", [((5, 37), 1), ((5, 37), 0), ((3, 4, 33), 1), ((1,), 0), ((0, 4), 1), ((7,), 0)])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative(name, dtype, shape, axis, reverse):
    if name == "cumlogsumexp" and np.dtype(dtype).kind in "iu":
        pytest.skip("float only")
    edges = name in ("cummax", "cummin")
    x = inputs(shape, dtype, edges=edges, low=-1.5 if name == "cumprod" else None,
               high=1.5 if name == "cumprod" else None)
    # bf16/f16: a running sum's rounding error is an ulp of its largest partial sums (XLA:CPU
    # may also keep the running value wider than the element type)
    kw = {BF16: dict(rtol=2e-2, atol=0.25), np.float16: dict(rtol=2e-3, atol=5e-2)}.get(dtype, dict(rtol=1e-5, atol=1e-5))
    check(lambda a: CUM[name](a, axis=axis, reverse=reverse), x, transcendental=True, **kw)


def test_cumsum_long_rows_is_a_scan():
    """cumsum over long rows: O(n) per row (the kernel's vector work is about one op per
    element, not one per window element)."""
    x = inputs((8, 5000), np.float32, edges=False)
    check(lambda a: jnp.cumsum(a, axis=1), x, rtol=1e-4, atol=1e-3)
    check(lambda a: jnp.cumsum(a, axis=0), x.T.copy(), rtol=1e-4, atol=1e-3)
    f = tt_xla.jit(lambda a: jnp.cumsum(a, axis=1))
    (k,) = f.kernels(x)
    assert k.kind == "scan" and k.vector_ops <= 2 * -(-x.size // 1024)


@pytest.mark.parametrize("dtype", [np.float32, BF16, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["max", "min", "add"])
@pytest.mark.parametrize("window,strides,padding,bdil,wdil", [
    ((1, 3, 3, 1), (1, 2, 2, 1), "SAME", None, None),
    ((1, 2, 2, 1), (1, 2, 2, 1), "VALID", None, None),
    ((1, 3, 2, 1), (1, 1, 3, 1), ((0, 0), (2, 1), (-1, 3), (0, 0)), None, None),
    ((1, 2, 2, 2), (1, 1, 1, 1), "VALID", (1, 2, 1, 1), (1, 1, 2, 1)),
])
def test_reduce_window(dtype, op, window, strides, padding, bdil, wdil):
    x = inputs((2, 9, 10, 3), dtype, edges=op != "add")
    init = {"max": -np.inf, "min": np.inf, "add": 0}[op]
    if np.dtype(dtype).kind in "iu":
        init = {"max": np.iinfo(dtype).min, "min": np.iinfo(dtype).max, "add": 0}[op]
    fn = {"max": jax.lax.max, "min": jax.lax.min, "add": jax.lax.add}[op]
    check(lambda a: jax.lax.reduce_window(a, np.array(init, dtype), fn, window, strides, padding,
                                          base_dilation=bdil, window_dilation=wdil), x,
          # bf16 sums: XLA:CPU rounds after every step, the device once per lane
          rtol=5e-2 if dtype == BF16 else 1e-5, atol=1e-1 if dtype == BF16 else 1e-5)


def test_reduce_window_two_operands():
    """A variadic reduce_window (max with its position, as an argmax pool would do)."""
    x = inputs((4, 11), np.float32, edges=False)
    i = np.broadcast_to(np.arange(11, dtype=np.int32), (4, 11)).copy()

    def f(a, b):
        def body(p, q):
            take = p[0] >= q[0]  # (lax.select: jnp.where would be a call inside the region)
            return jax.lax.select(take, p[0], q[0]), jax.lax.select(take, p[1], q[1])
        return jax.lax.reduce_window((a, b), (np.float32(-np.inf), np.int32(0)), body, (1, 3), (1, 2), "SAME")
    check(f, x, i)


def test_cnn_pooling_forward_and_grad():
    import flax.linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(6, (3, 3))(x))
            x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            x = nn.avg_pool(x, (2, 2), (2, 2))
            return nn.Dense(5)(x.reshape(x.shape[0], -1))

    m = CNN()
    x = inputs((3, 13, 14, 2), np.float32, edges=False)
    params = m.init(jax.random.PRNGKey(0), x)
    check(lambda p, a: m.apply(p, a), params, x, rtol=1e-4, atol=1e-5)
    check(jax.grad(lambda p, a: (m.apply(p, a) ** 2).sum()), params, x, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=lambda d: np.dtype(d).name)
def test_max_pool_grad_ties_and_padding(dtype):
    """Ties pick the first position in window order (select is GE); -inf padding is never picked."""
    x = np.round(inputs((2, 7, 9, 3), np.float32, edges=False)).astype(dtype)
    import flax.linen as nn
    check(jax.grad(lambda a: nn.max_pool(a, (3, 3), (2, 2), padding="SAME").astype(np.float32).sum()), x)
    check(jax.grad(lambda a: (nn.max_pool(a, (2, 3), (1, 2)).astype(np.float32) * 3).sum()), x)


def test_select_and_scatter_direct():
    """select_and_scatter from lax with a padding attribute and a min selector."""
    from jax._src.lax.windowed_reductions import _select_and_scatter
    x = inputs((6, 7), np.float32, edges=False)
    s = inputs((3, 4), np.float32, seed=3, edges=False)

    def f(a, b):
        return _select_and_scatter(a, jax.lax.le, (3, 2), (2, 2), ((1, 1), (1, 1)), b, np.float32(0), jax.lax.add)
    check(f, x, s)


@pytest.mark.parametrize("cfg", [((-2, 3, 1), (4, -5, 2)), ((-5, 0, 0), (0, 0, 0)), ((1, -9, 1), (-3, -30, 0)),
                                 ((0, 0, 3), (-36, 0, 0))])
def test_pad_negative_and_interior(cfg):
    x = inputs((5, 37), np.float32)
    check(lambda a: jax.lax.pad(a, np.float32(-1), cfg), x)


def test_reverse_and_iota_corners():
    x = inputs((5, 1, 37), np.float32)
    check(lambda a: jnp.flip(a) + jax.lax.broadcasted_iota(jnp.float32, a.shape, 2), x)
    check(lambda a: jnp.flip(a, (0, 1)), x)
    check(lambda a: (jax.lax.broadcasted_iota(jnp.uint8, (3, 300), 1), jax.lax.broadcasted_iota(jnp.bfloat16, (3, 300), 1),
                     jax.lax.broadcasted_iota(jnp.int16, (2, 1, 4), 1), jax.lax.iota(jnp.int32, 0)), x)


def test_max_pool_grad_splits_over_the_batch_and_is_deterministic():
    """The gradient's scatter runs one item per batch image (windows never cross images), applies
    each image's windows in order, so overlapping windows' sums are bit-exact against CPU JAX and
    the same every run; a pool over the batch dim too falls back to one item, still exact."""
    import flax.linen as nn
    x = np.round(inputs((5, 9, 11, 4), np.float32, edges=False) * 2)  # many ties
    w = inputs((5, 5, 6, 4), np.float32, seed=2, edges=False)
    g = lambda a, c: jax.grad(lambda a: (nn.max_pool(a, (3, 3), (2, 2), padding="SAME") * c).sum())(a)
    f = tt_xla.jit(g)
    assert [k.work_items for k in f.kernels(x, w) if k.kind == "scatter"] == [5]
    got = np.asarray(f(x, w))
    np.testing.assert_array_equal(got, np.asarray(jax.jit(g)(x, w)))
    np.testing.assert_array_equal(np.asarray(f(x, w)), got)
    x3 = x[:, :, 0, :]
    h = lambda a: jax.grad(lambda a: jax.lax.reduce_window(a, -np.inf, jax.lax.max, (2, 3, 1), (1, 2, 1), "SAME").sum())(a)
    np.testing.assert_array_equal(np.asarray(tt_xla.jit(h)(x3)), np.asarray(jax.jit(h)(x3)))



def test_select_and_scatter_of_a_scalar():
    """Rank 0 (StableHLO allows it; jax's CPU backend does not run it): init combined with the source."""
    text = """func.func @main(%x: tensor<f32>, %s: tensor<f32>, %i: tensor<f32>) -> tensor<f32> {
      %0 = "stablehlo.select_and_scatter"(%x, %s, %i) ({
      ^bb0(%a: tensor<f32>, %b: tensor<f32>):
        %c = stablehlo.compare GE, %a, %b : (tensor<f32>, tensor<f32>) -> tensor<i1>
        stablehlo.return %c : tensor<i1>
      }, {
      ^bb0(%a: tensor<f32>, %b: tensor<f32>):
        %c = stablehlo.add %a, %b : tensor<f32>
        stablehlo.return %c : tensor<f32>
      }) {window_dimensions = array<i64>, window_strides = array<i64>} : (tensor<f32>, tensor<f32>, tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }"""
    (out,) = tt_xla.compile(text)(np.float32(3), np.float32(2), np.float32(1.5))
    assert float(np.asarray(out)) == 3.5
