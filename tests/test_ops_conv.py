"""stablehlo.convolution against CPU JAX: every form JAX emits (layouts with spatial dims in any
order, 1-D/2-D/3-D, strides, padding incl. negative, lhs/rhs dilation, window reversal, feature
and batch groups, depthwise), f32, bf16 and bf16 -> f32, forward and jax.grad, and a MobileNet-style
training step. The three lowerings (compiler/conv.py) are each reached by some rows."""
import re

import jax
import pytest
from jax import lax

import tt_xla
from util import check, inputs, jnp, np

NHWC = ("NHWC", "HWIO", "NHWC")
NCHW = ("NCHW", "OIHW", "NCHW")
NWC = ("NWC", "WIO", "NWC")
NDHWC = ("NDHWC", "DHWIO", "NDHWC")
# spatial dims in an unusual order in all three operands (lhs W before H, kernel O in the middle)
ODD = lax.ConvDimensionNumbers(lhs_spec=(3, 0, 2, 1), rhs_spec=(1, 3, 2, 0), out_spec=(2, 1, 0, 3))

# (lhs shape, rhs shape, conv_general_dilated kwargs)
CASES = {
    "nhwc_same": ((2, 8, 8, 3), (3, 3, 3, 4), dict(window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC)),
    "nchw_stride": ((2, 3, 9, 7), (5, 3, 3, 2), dict(window_strides=(2, 1), padding="VALID", dimension_numbers=NCHW)),
    "groups_rhs_dilated": ((2, 9, 7, 4), (3, 3, 2, 6), dict(window_strides=(1, 2), padding=[(2, 1), (0, 1)],
                                                            rhs_dilation=(2, 1), feature_group_count=2,
                                                            dimension_numbers=NHWC)),
    "lhs_dilated": ((1, 6, 5, 2), (2, 2, 2, 3), dict(window_strides=(1, 1), padding=[(1, 1), (1, 1)],
                                                     lhs_dilation=(2, 2), dimension_numbers=NHWC)),
    "lhs_dilated_odd": ((2, 5, 4, 3), (3, 4, 3, 2), dict(window_strides=(1, 1), padding=[(2, -1), (0, 3)],
                                                         lhs_dilation=(3, 2), dimension_numbers=NHWC)),
    "lhs_dilated_one_dim": ((2, 3, 7, 5), (4, 3, 2, 3), dict(window_strides=(1, 1), padding=[(1, 2), (3, 1)],
                                                             lhs_dilation=(1, 2), dimension_numbers=NCHW)),
    "lhs_dilated_kernel_small": ((1, 6, 4), (1, 4, 3), dict(window_strides=(1,), padding=[(0, 0)], lhs_dilation=(3,),
                                                            dimension_numbers=NWC)),
    "lhs_dilated_strided": ((2, 6, 6, 2), (3, 3, 2, 3), dict(window_strides=(2, 1), padding=[(1, 1), (1, 1)],
                                                             lhs_dilation=(2, 2), rhs_dilation=(1, 2),
                                                             dimension_numbers=NHWC)),
    "lhs_dilated_depthwise": ((2, 5, 6, 4), (3, 3, 1, 4), dict(window_strides=(1, 1), padding=[(1, 2), (2, 1)],
                                                               lhs_dilation=(2, 2), feature_group_count=4,
                                                               dimension_numbers=NHWC)),
    "1d": ((2, 10, 3), (3, 3, 5), dict(window_strides=(1,), padding="SAME", dimension_numbers=NWC)),
    "1d_dilated_33ch": ((2, 40, 33), (9, 33, 7), dict(window_strides=(1,), padding="SAME", rhs_dilation=(2,),
                                                      dimension_numbers=NWC)),
    "3d": ((2, 5, 6, 4, 3), (2, 3, 2, 3, 5), dict(window_strides=(1, 2, 1), padding=[(1, 0), (1, 1), (0, 1)],
                                                  dimension_numbers=NDHWC)),
    "negative_pad": ((1, 5, 5, 1), (5, 5, 1, 1), dict(window_strides=(1, 1), padding=[(-1, 0), (0, -1)],
                                                      dimension_numbers=NHWC)),
    "odd_layout": ((5, 3, 7, 2), (2, 4, 3, 5), dict(window_strides=(1, 2), padding=[(1, 1), (0, 2)],
                                                    dimension_numbers=ODD)),
    "size1_spatial": ((3, 1, 7, 5), (1, 3, 5, 4), dict(window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC)),
    "depthwise": ((2, 9, 10, 35), (3, 3, 1, 35), dict(window_strides=(1, 1), padding="SAME", feature_group_count=35,
                                                      dimension_numbers=NHWC)),
    "depthwise_x2_strided": ((2, 9, 8, 5), (3, 3, 1, 10), dict(window_strides=(2, 2), padding="SAME",
                                                               feature_group_count=5, dimension_numbers=NHWC)),
    "depthwise_nchw_dilated": ((2, 6, 9, 9), (6, 1, 3, 3), dict(window_strides=(1, 1), padding=[(2, 2), (1, 1)],
                                                                rhs_dilation=(2, 1), feature_group_count=6,
                                                                dimension_numbers=NCHW)),
    "depthwise_1d": ((3, 17, 6), (5, 1, 6), dict(window_strides=(1,), padding="SAME", feature_group_count=6,
                                                 dimension_numbers=NWC)),
    "groups_wide": ((2, 7, 7, 12), (3, 3, 6, 10), dict(window_strides=(1, 1), padding="SAME", feature_group_count=2,
                                                       dimension_numbers=NHWC)),
    "batch_groups": ((4, 6, 5, 3), (3, 3, 3, 4), dict(window_strides=(1, 1), padding="SAME", batch_group_count=2,
                                                      dimension_numbers=NHWC)),
    "batch_groups_depthwise": ((6, 7, 7, 2), (3, 3, 2, 6), dict(window_strides=(1, 1), padding="VALID",
                                                                batch_group_count=6, dimension_numbers=NHWC)),
    "batch_groups_nchw_strided": ((4, 3, 8, 9), (4, 3, 2, 2), dict(window_strides=(2, 3), padding=[(0, 1), (1, -1)],
                                                                   batch_group_count=4, dimension_numbers=NCHW)),
    "wide_window": ((3, 12, 11, 2), (10, 9, 2, 4), dict(window_strides=(1, 1), padding="VALID",
                                                        dimension_numbers=NHWC)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["f32", "bf16", "bf16->f32"])
def test_conv(name, dtype):
    xs, ws, kw = CASES[name]
    x, w = inputs(xs, edges=False), inputs(ws, seed=1, edges=False)
    if dtype == "f32":
        check(lambda x, w: lax.conv_general_dilated(x, w, **kw), x, w, rtol=1e-4, atol=1e-4)
        return
    x, w = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    pet = jnp.float32 if dtype == "bf16->f32" else None
    tol = 2e-3 if pet else 5e-2  # bf16 out: one rounding of a sum XLA:CPU may add in another order
    check(lambda x, w: lax.conv_general_dilated(x, w, preferred_element_type=pet, **kw), x, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["nhwc_same", "depthwise_x2_strided", "groups_rhs_dilated", "batch_groups_depthwise"])
@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.float16])
def test_conv_other_types(name, dtype):
    """Integers are exact (wrapping like XLA:CPU's), f16 rounds once like bf16."""
    xs, ws, kw = CASES[name]
    x, w = (inputs(s, seed=i, edges=False) * 2 for i, s in enumerate((xs, ws)))
    tol = 1e-2 if dtype == np.float16 else 0
    check(lambda x, w: lax.conv_general_dilated(x, w, **kw), x.astype(dtype), w.astype(dtype), rtol=tol, atol=tol)


def test_conv_edges_and_bf16():
    x, w = inputs((2, 8, 8, 3)), inputs((3, 3, 3, 4), seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    check(f, x, w, rtol=1e-4, atol=1e-4)  # NaN/inf in the input spread exactly as on CPU
    check(f, x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), rtol=3e-2, atol=3e-2)


def test_depthwise_edges():
    x, w = inputs((2, 8, 8, 4)), inputs((3, 3, 1, 4), seed=1, edges=False)
    check(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC, feature_group_count=4),
          x, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("xs,ws,kw", [
    ((0, 5, 5, 2), (3, 3, 2, 4), dict(feature_group_count=1)),    # empty batch
    ((2, 5, 5, 0), (3, 3, 0, 4), dict(feature_group_count=1)),    # no input features: sums of nothing
    ((2, 5, 5, 3), (3, 3, 3, 0), dict(feature_group_count=1)),    # no output features
], ids=["batch0", "cin0", "cout0"])
def test_conv_empty(xs, ws, kw):
    x, w = inputs(xs, edges=False), inputs(ws, seed=1, edges=False)
    check(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC, **kw), x, w)


def test_window_reversal():
    """JAX never sets window_reversal; flip it in the exported text and compare with a conv of
    the spatially reversed kernel."""
    x, w = inputs((2, 7, 6, 3), edges=False), inputs((3, 2, 3, 4), seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), [(1, 1), (0, 1)], dimension_numbers=NHWC)
    text = jax.jit(f).lower(x, w).as_text()
    flipped, n = re.subn(r"reverse = \[false, false\]", "reverse = [true, false]", text)
    assert n == 1
    got = np.asarray(tt_xla.compile(flipped)(x, w)[0])
    want = np.asarray(jax.jit(f)(x, w[::-1]))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert not np.allclose(got, np.asarray(jax.jit(f)(x, w)), atol=1e-2)  # the flip mattered


GRAD_CASES = {
    "strided": ((2, 8, 8, 3), (3, 3, 3, 4), dict(window_strides=(2, 2), padding="SAME", dimension_numbers=NHWC)),
    "grouped": ((2, 7, 6, 6), (3, 3, 2, 9), dict(window_strides=(1, 1), padding="SAME", feature_group_count=3,
                                                 dimension_numbers=NHWC)),
    "depthwise": ((2, 9, 9, 33), (3, 3, 1, 33), dict(window_strides=(1, 1), padding="SAME", feature_group_count=33,
                                                     dimension_numbers=NHWC)),
    "depthwise_strided_x2": ((2, 9, 9, 4), (3, 3, 1, 8), dict(window_strides=(2, 2), padding="SAME",
                                                              feature_group_count=4, dimension_numbers=NHWC)),
    "dilated": ((2, 11, 10, 3), (3, 3, 3, 5), dict(window_strides=(1, 1), padding="VALID", rhs_dilation=(2, 3),
                                                   dimension_numbers=NHWC)),
    "lhs_dilated": ((2, 5, 4, 3), (3, 3, 3, 2), dict(window_strides=(1, 1), padding=[(2, 2), (1, 2)],
                                                     lhs_dilation=(2, 2), dimension_numbers=NHWC)),
    "1d_dilated_depthwise": ((2, 30, 6), (9, 1, 6), dict(window_strides=(1,), padding="SAME", rhs_dilation=(2,),
                                                         feature_group_count=6, dimension_numbers=NWC)),
    "1d_depthwise_long": ((2, 100, 4), (41, 1, 4), dict(window_strides=(1,), padding="SAME", feature_group_count=4,
                                                        dimension_numbers=NWC)),
    "3d_depthwise_strided": ((2, 5, 6, 7, 4), (3, 3, 2, 1, 4), dict(window_strides=(2, 1, 2), padding="SAME",
                                                                    feature_group_count=4, dimension_numbers=NDHWC)),
    "3d_dense_strided": ((1, 6, 5, 7, 3), (2, 3, 3, 3, 4), dict(window_strides=(1, 2, 2), padding="SAME",
                                                                dimension_numbers=NDHWC)),
    "nchw_grouped_strided": ((2, 4, 9, 8), (6, 2, 3, 2), dict(window_strides=(2, 1), padding=[(1, 0), (0, 1)],
                                                              feature_group_count=2, dimension_numbers=NCHW)),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_conv_grad(name):
    xs, ws, kw = GRAD_CASES[name]
    x, w = inputs(xs, edges=False), inputs(ws, seed=1, edges=False)
    loss = lambda x, w: jnp.sum(jnp.sin(lax.conv_general_dilated(x, w, **kw)))
    check(jax.grad(loss, argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("phased", [False, True])
def test_conv_transpose_grad(phased, request):
    if phased:
        request.getfixturevalue("always_phased")
    x, w = inputs((2, 5, 6, 3), edges=False), inputs((3, 3, 3, 4), seed=1, edges=False)
    f = lambda x, w: lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=NHWC)
    check(f, x, w, rtol=1e-4, atol=1e-4)
    check(jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-3)


def test_conv_grad_bf16():
    x, w = inputs((2, 8, 8, 8), edges=False), inputs((3, 3, 1, 8), seed=1, edges=False)
    loss = lambda x, w: jnp.sum(lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC,
                                                         feature_group_count=8).astype(jnp.float32) ** 2)
    check(jax.grad(loss, argnums=(0, 1)), x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), rtol=5e-2, atol=5e-1)


def test_conv_groups_both_refused_with_location():
    """The spec allows feature_group_count > 1 or batch_group_count > 1, not both; jax refuses it
    too, so set both in exported text."""
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC, batch_group_count=2)
    x, w = np.ones((4, 5, 5, 4), np.float32), np.ones((3, 3, 4, 4), np.float32)
    text, n = re.subn("feature_group_count = 1 ", "feature_group_count = 2 ",
                      jax.jit(f).lower(x, w).as_text(debug_info=True))
    assert n == 1
    with pytest.raises(Exception, match="batch_group_count.*test_ops_conv.py"):
        tt_xla.compile(text)


@pytest.mark.parametrize("n,mode", [(100, "full"), (57, "same"), (40, "valid")])
def test_long_1d_window(n, mode):
    """jnp.convolve's window is a whole signal: its patches come from ~2*sqrt(n) copies, and
    inf/NaN inputs still reach only the outputs whose taps read them."""
    a, v = inputs((n + 7,), huge=False), inputs((n,), seed=1, edges=False)  # huge: order-dependent overflow
    f = lambda a, v: jnp.convolve(a, v, mode=mode)
    check(f, a, v, rtol=1e-4, atol=1e-3)
    assert len(tt_xla.jit(f).kernels(a, v)) < 40
    g = jax.grad(lambda a, v: jnp.sum(jnp.sin(f(a, v))), argnums=(0, 1))  # a window of outputs
    check(g, *(inputs(s.shape, seed=i, edges=False) for i, s in enumerate((a, v))), rtol=1e-3, atol=1e-3)
    assert len(tt_xla.jit(g).kernels(a, v)) < 100


def test_long_1d_window_strided_dilated():
    x, w = inputs((2, 300, 3), edges=False), inputs((40, 3, 2), seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, (3,), [(5, 4)], rhs_dilation=(2,), dimension_numbers=NWC)
    check(f, x, w, rtol=1e-4, atol=1e-4)
    check(jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-3)


@pytest.fixture
def always_phased(monkeypatch):
    """Small lhs-dilated convs too go through the sub-pixel phases (compiled afresh)."""
    from tt_xla.compiler import conv
    monkeypatch.setattr(conv, "PHASE_MIN", 0)
    tt_xla.client().clear_cache()
    yield
    tt_xla.client().clear_cache()


LHS_DILATED = [n for n, (_, _, kw) in CASES.items() if "lhs_dilation" in kw]
STRIDED_GRADS = [n for n, (_, _, kw) in GRAD_CASES.items() if max(kw["window_strides"]) > 1 or "lhs_dilation" in kw]


@pytest.mark.parametrize("name", LHS_DILATED + STRIDED_GRADS)
def test_by_phase(name, always_phased):
    if name in CASES:
        xs, ws, kw = CASES[name]
        f = lambda x, w: lax.conv_general_dilated(x, w, **kw)
    else:
        xs, ws, kw = GRAD_CASES[name]
        f = jax.grad(lambda x, w: jnp.sum(jnp.sin(lax.conv_general_dilated(x, w, **kw))), argnums=(0, 1))
    x, w = inputs(xs, edges=False), inputs(ws, seed=1, edges=False)
    check(f, x, w, rtol=1e-4, atol=1e-3)
    check(f, x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), rtol=5e-2, atol=5e-1)


def test_transposed_conv_skips_the_zeros():
    """A stride-2 transposed convolution is four undilated ones (sub-pixel phases): the products
    do a quarter of the matrix work of one over the zero-dilated input."""
    x, w = inputs((4, 16, 16, 32), edges=False), inputs((3, 3, 32, 32), seed=1, edges=False)
    f = lambda x, w: lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=NHWC)
    check(f, x, w, rtol=1e-4, atol=1e-4)
    tiles = sum(k.matrix_tiles for k in tt_xla.jit(f).kernels(x, w))
    # 128 row tiles of output, each phase a quarter of them with its own taps (4 + 2 + 2 + 1 of
    # 32 features); over the dilated input it would be 128 * 9
    assert tiles == 32 * (4 + 2 + 2 + 1), tiles


def test_kernels_chosen_by_shape():
    """Depthwise forward is one loop kernel after the pad (no im2col concat, no product); its
    weight gradient has no product either; a dense conv is a concat and a product. (The pad
    itself is a fill and a copy.)"""
    x, w = np.ones((2, 9, 9, 8), np.float32), np.ones((3, 3, 1, 8), np.float32)
    dw = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC, feature_group_count=8)
    kinds = [k.kind for k in tt_xla.jit(dw).kernels(x, w)]
    assert "dot" not in kinds and kinds.count("elementwise") == 1 and len(kinds) == 3, kinds
    grad = jax.grad(lambda x, w: jnp.sum(dw(x, w)), argnums=1)
    assert "dot" not in [k.kind for k in tt_xla.jit(grad).kernels(x, w)]
    dense = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    assert "matmul" in [k.kind for k in tt_xla.jit(dense).kernels(x, np.ones((3, 3, 8, 4), np.float32))]


def test_mobilenet_block_training_step():
    nn = pytest.importorskip("flax.linen")
    optax = pytest.importorskip("optax")

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = True):
            c = x.shape[-1]
            y = nn.Conv(c, (3, 3), feature_group_count=c, use_bias=False)(x)        # depthwise
            y = nn.relu(nn.BatchNorm(use_running_average=not train)(y))
            y = nn.Conv(12, (1, 1), use_bias=False)(y)                               # pointwise
            y = nn.BatchNorm(use_running_average=not train)(y)
            return jnp.mean(nn.relu(y), axis=(1, 2))

    model, tx = Block(), optax.sgd(0.1, momentum=0.9)
    x = inputs((4, 10, 10, 6), edges=False)
    labels = inputs((4, 12), seed=3, edges=False)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)  # eager init: one XLA compile per op
    params, stats = variables["params"], variables["batch_stats"]
    opt = jax.jit(tx.init)(params)

    def step(params, stats, opt, x, labels):
        def loss(p):
            y, upd = model.apply({"params": p, "batch_stats": stats}, x, mutable=["batch_stats"])
            return jnp.mean((y - labels) ** 2), upd["batch_stats"]
        (l, new_stats), g = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, updates), new_stats, opt, l

    check(step, params, stats, opt, x, labels, rtol=1e-4, atol=1e-4)


def test_conv_autoencoder_training_step():
    """Strided convs down, transposed convs up (flax.linen.ConvTranspose): the input gradients
    and the transposed convs go through the sub-pixel phases."""
    nn = pytest.importorskip("flax.linen")
    optax = pytest.importorskip("optax")

    class AE(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.relu(nn.Conv(8, (3, 3), strides=(2, 2))(x))
            return nn.ConvTranspose(x.shape[-1], (4, 4), strides=(2, 2))(y)

    model, tx = AE(), optax.sgd(0.1)
    x = inputs((2, 12, 12, 3), edges=False)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)  # eager init: one XLA compile per op
    opt = jax.jit(tx.init)(params)

    def step(params, opt, x):
        l, g = jax.value_and_grad(lambda p: jnp.mean((model.apply(p, x) - x) ** 2))(params)
        updates, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, updates), opt, l

    check(step, params, opt, x, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------- implicit im2col (conv._windowed)
@pytest.fixture
def always_windowed(monkeypatch):
    """Convs with short output rows too go through the overlapping-windows product (compiled
    afresh)."""
    from tt_xla.compiler import conv
    monkeypatch.setattr(conv, "WINDOW_MIN_ROWS", 1)
    tt_xla.client().clear_cache()
    yield
    tt_xla.client().clear_cache()


WINDOWED = [n for n, (_, _, kw) in CASES.items()
            if kw.get("feature_group_count", 1) == 1 and kw.get("batch_group_count", 1) == 1]


@pytest.mark.parametrize("name", WINDOWED)
@pytest.mark.parametrize("dtype", ["f32", "bf16", "bf16->f32"])
def test_conv_windowed(name, dtype, always_windowed):
    test_conv(name, dtype)


@pytest.mark.parametrize("name", ["strided", "dilated", "3d_dense_strided", "lhs_dilated"])
def test_conv_grad_windowed(name, always_windowed):
    test_conv_grad(name)


@pytest.mark.parametrize("kw", [
    dict(window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC),
    dict(window_strides=(2, 3), padding=[(1, 2), (0, 1)], rhs_dilation=(2, 1), dimension_numbers=NHWC),
    dict(window_strides=(1, 1), padding="VALID", dimension_numbers=NCHW),
], ids=["same", "strided_dilated", "nchw"])
def test_conv_windowed_default_sizes(kw):
    """Output rows of >= 32 positions take the implicit im2col by default: edge values (NaN, inf,
    denormals), 35 input features, bf16 with f32 accumulation, and the gradients."""
    lhs_shape = (2, 5, 40, 35) if kw["dimension_numbers"] == NHWC else (2, 35, 5, 40)
    rhs_shape = (3, 3, 35, 6) if kw["dimension_numbers"] == NHWC else (6, 35, 3, 3)
    _check_forward_bf16_grad(lhs_shape, rhs_shape, kw, 0.1)


def _check_forward_bf16_grad(xs, ws, kw, grad_w_scale):
    """f32 forward with edge values, bf16 -> f32, and both gradients (of sin(conv), with the
    kernel scaled so outputs are O(1): sin' of large ones magnifies rounding)."""
    x, w = inputs(xs), inputs(ws, seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, **kw)
    check(f, x, w, rtol=1e-4, atol=1e-4)
    xb, wb = inputs(xs, edges=False).astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    check(lambda x, w: lax.conv_general_dilated(x, w, preferred_element_type=jnp.float32, **kw), xb, wb,
          rtol=2e-3, atol=2e-3)
    x = inputs(xs, edges=False)
    check(jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1)), x, w * grad_w_scale,
          rtol=1e-4, atol=1e-3)


def test_conv_windowed_stores_the_leading_taps_only():
    """A dense 3x3 conv with long rows stores 3 shifted copies of its input (one per row tap), not
    9 (every tap's, as im2col would), and its product reads overlapping windows of them."""
    x, w = np.ones((2, 9, 40, 8), np.float32), np.ones((3, 3, 8, 4), np.float32)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    ks = tt_xla.jit(f).kernels(x, w)
    assert [k.kind for k in ks].count("matmul") == 1, ks
    moved = sum(k.dma_bytes for k in ks if k.kind == "movement")
    padded = 2 * 11 * 42 * 8 * 4
    assert moved < 2 * (3 + 3) * padded, (moved, ks)  # pad + 3 copies, read and written
    np.testing.assert_array_equal(np.asarray(tt_xla.jit(f)(x, w)), np.asarray(jax.jit(f)(x, w)))


def test_conv_windowed_patches_form_in_sram():
    """The windowed product DMAs each output row's overlapping patch rows once, as their spans
    (one per input row the 3x3 window touches: 32 + 2 positions x 8 features each, read where
    the padded input lies, no stacked copy), into a page the engine reads segment by segment:
    the patches form in SRAM, so its A costs about a third of packing 32 rows of 72 values
    from DRAM. The kernel,
    the same B for every output row (a batch stride of 0), is read from DRAM by one core of a
    wave and multicast to the others."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 9, 32, 8), np.float32), rng.standard_normal((3, 3, 8, 16), np.float32)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    (mm,) = [k for k in tt_xla.jit(f).kernels(x, w) if k.kind == "matmul"]
    assert "tt_matmul_f32 xa[sg_ * 272]" in mm.ir    # 3 segments, a span of 34 x 8 each
    rows = 2 * 9                                     # work items: one output row each
    a_span, b, out = 3 * 34 * 8 * 4, 72 * 16 * 4, 32 * 16 * 4
    assert mm.work_items == rows and mm.dma_bytes == rows * (a_span + b + out)
    check(f, x, w, rtol=1e-4, atol=1e-4)
    rep = tt_xla.jit(f, compiler_options={"optimization_level": 0}).profile(x, w)
    assert rep.counters["noc_bytes"] == (rows - 1) * b   # one item per core, all in one wave


@pytest.mark.parametrize("xs,ws,kw", [
    ((3, 70, 5), (9, 5, 4), dict(window_strides=(1,), padding="SAME", rhs_dilation=(2,), dimension_numbers=NWC)),
    ((2, 5, 67), (4, 5, 3), dict(window_strides=(1,), padding=[(2, 5)], rhs_dilation=(3,),
                                 dimension_numbers=("NCH", "OIH", "NCH"))),
    ((2, 4, 50, 3), (1, 5, 3, 2), dict(window_strides=(2, 1), padding="SAME", rhs_dilation=(2, 2),
                                       dimension_numbers=NHWC)),
    ((2, 30, 3), (5, 3, 2), dict(window_strides=(1,), padding=[(1, -1)], lhs_dilation=(2,), rhs_dilation=(2,),
                                 dimension_numbers=NWC)),
], ids=["nwc_d2", "nch_d3_pad", "2d_1xk_d2", "lhs_and_rhs_dilated"])
def test_conv_windowed_dilated_phases(xs, ws, kw):
    """A dilated last spatial dim is split into its phases, each an undilated windows product:
    odd lengths (the last phase shorter, its extra rows cut), other layouts, a 1 x K kernel in
    2-D, with lhs dilation too; edge values; gradients."""
    _check_forward_bf16_grad(xs, ws, kw, 0.3)


@pytest.mark.parametrize("kw", [
    dict(window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC),
    dict(window_strides=(2, 2), padding=[(1, 1), (1, 1)], dimension_numbers=NHWC),
    dict(window_strides=(1, 1), padding=[(2, 0), (1, 1)], rhs_dilation=(2, 1), dimension_numbers=NHWC),
], ids=["same", "stride2", "row_dilated"])
def test_conv_windowed_rows_read_in_place(kw):
    """A 3x3 conv whose taps' rows are whole 32-deep tiles (3 x 32 features) reads its padded
    input where it lies (conv._windowed_rows): no stacked copy, only the pad's two kernels move
    data, and the product runs the engine per kernel row (K segments) on spans DMA'd from that
    one input. Edge values, bf16 -> f32 and both gradients against CPU JAX."""
    xs, ws = (2, 6, 70, 32), (3, 3, 32, 5)
    x, w = np.ones(xs, np.float32), np.ones(ws, np.float32)
    f = lambda x, w: lax.conv_general_dilated(x, w, **kw)
    ks = tt_xla.jit(f).kernels(x, w)
    assert [k.kind for k in ks].count("matmul") == 1 and not any("slice" in k.ops for k in ks), ks
    (mm,) = [k for k in ks if k.kind == "matmul"]
    assert "range sg_ in [0, 3)" in mm.ir and "rows (dram pitch" in mm.ir
    moved = sum(k.dma_bytes for k in ks if k.kind == "movement")
    padded = 2 * 8 * 72 * 32 * 4                 # (at most: 6 + 2 rows, 70 + 2 columns)
    assert moved <= 3 * padded, (moved, ks)   # the fill, and x copied into it
    _check_forward_bf16_grad(xs, ws, kw, 0.05)


def test_conv_windowed_rows_spans_fit_their_page():
    """With more output rows than cores the product's block (256 rows) is longer than an output
    row (40): the span page is sized to the row, and every segment's span lands inside it."""
    x, w = inputs((8, 8, 40, 32), edges=False), inputs((3, 3, 32, 8), seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    (mm,) = [k for k in tt_xla.jit(f).kernels(x, w) if k.kind == "matmul"]
    page = int(re.search(r"cb cba: 1 x (\d+)", mm.ir).group(1))
    span, pitch = map(int, re.search(r"x\(m - 1\) \* 32 \+ (\d+) stride 1 x3 rows \(dram pitch \d+, sram pitch (\d+)\)",
                                     mm.ir).groups())
    assert 2 * pitch + 39 * 32 + span <= page, mm.ir   # the third span of a 40-row block
    check(f, x, w, rtol=1e-4, atol=1e-4)


def test_conv_strided_1x1_reads_in_place():
    """A 1x1 stride-2 conv (ResNet's downsampling shortcut) reads every other pixel of every
    other row where it lies: the product's batch is (image, output row), a mixed radix
    (fuse.lhs_layout), so nothing copies the strided input first."""
    x, w = inputs((2, 10, 68, 32)), inputs((1, 1, 32, 8), seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=NHWC)
    ks = tt_xla.jit(f).kernels(x, w)
    assert [k.kind for k in ks] == ["matmul"], ks
    check(f, x, w, rtol=1e-4, atol=1e-4)
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    check(lambda x, w: lax.conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=NHWC,
                                                preferred_element_type=jnp.float32), xb, wb, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("xs,ws,kw", [
    ((2, 14, 14, 64), (3, 3, 64, 24), dict(window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC)),
    ((3, 15, 13, 5), (3, 2, 5, 7), dict(window_strides=(2, 1), padding=[(1, 2), (0, 1)], rhs_dilation=(2, 1),
                                        dimension_numbers=NHWC)),
    ((2, 3, 20, 17), (6, 3, 3, 3), dict(window_strides=(1, 2), padding="SAME", dimension_numbers=NCHW)),
    ((1, 40, 40, 3), (7, 7, 3, 8), dict(window_strides=(2, 2), padding=[(3, 3), (3, 3)], dimension_numbers=NHWC)),
], ids=["resnet_stage3", "odd_strided_dilated", "nchw", "stem"])
def test_conv_patches_gathered_in_sram(xs, ws, kw):
    """A 2-D conv whose output rows are short (or whose kernel rows are not whole 32-deep
    tiles, as ResNet's 7x7 stem on 3 features) runs as one product over every output position:
    each block of patch rows is gathered from the padded input into the product's SRAM page,
    one DMA per output-row run and kernel row (conv._windowed_rows, fuse.LhsLayout.outer), so
    no im2col patches or stacked copies are stored. Edge values, bf16 -> f32 and both
    gradients against CPU JAX."""
    x, w = np.ones(xs, np.float32), np.ones(ws, np.float32)
    f = lambda x, w: lax.conv_general_dilated(x, w, **kw)
    ks = tt_xla.jit(f).kernels(x, w)
    assert [k.kind for k in ks].count("matmul") == 1 and not any("slice" in k.ops for k in ks), ks
    (mm,) = [k for k in ks if k.kind == "matmul"]
    assert "range q_ in" in mm.ir and "tt_matmul_f32 xa[0]" in mm.ir, mm.ir
    _check_forward_bf16_grad(xs, ws, kw, 0.05)


@pytest.mark.parametrize("sram", [32 << 10, 16 << 10])
def test_gathered_conv_too_big_for_sram_is_refused(sram):
    """A convolution whose patch rows are gathered into the product's page, on cores too small
    for its smallest block, is refused by name at compile time. (The block search once halved the
    N block to 0 here, since it never shrank a gathered M block below 8, and did not end.)"""
    from tt_xla.compiler import compile_module
    from tt_xla.errors import UnsupportedError
    from tt_xla.hlo_parser import parse_module

    def f(x, w):
        return lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x, w = np.ones((1, 28, 28, 64), np.float32), np.ones((3, 3, 64, 64), np.float32)
    text = jax.export.export(jax.jit(f))(x, w).mlir_module()
    with pytest.raises(UnsupportedError, match=r"kernel k\d+_dot .* needs \d+ bytes of SRAM per core"):
        compile_module(parse_module(text), sram_per_core=sram)
