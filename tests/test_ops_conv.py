"""Convolution (lowered by the compiler to im2col + matmul) against CPU JAX: layouts, strides,
padding, lhs/rhs dilation, window reversal via gradients, feature groups, 1-D and 2-D."""
import jax
import pytest
from jax import lax

from util import check, inputs, jnp, np

CASES = [
    ((2, 8, 8, 3), (3, 3, 3, 4), dict(window_strides=(1, 1), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((2, 3, 9, 7), (5, 3, 3, 2), dict(window_strides=(2, 1), padding="VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))),
    ((2, 9, 7, 4), (3, 3, 2, 6), dict(window_strides=(1, 2), padding=[(2, 1), (0, 1)], rhs_dilation=(2, 1),
                                      feature_group_count=2, dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((1, 6, 5, 2), (2, 2, 2, 3), dict(window_strides=(1, 1), padding=[(1, 1), (1, 1)], lhs_dilation=(2, 2),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((2, 10, 3), (3, 3, 5), dict(window_strides=(1,), padding="SAME", dimension_numbers=("NWC", "WIO", "NWC"))),
    ((1, 5, 5, 1), (5, 5, 1, 1), dict(window_strides=(1, 1), padding=[(-1, 0), (0, -1)],
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))),
]


@pytest.mark.parametrize("xs,ws,kw", CASES, ids=[str(c[0]) + str(c[1]) for c in CASES])
def test_conv(xs, ws, kw):
    x, w = inputs(xs, edges=False), inputs(ws, seed=1, edges=False)
    check(lambda x, w: lax.conv_general_dilated(x, w, **kw), x, w, rtol=1e-4, atol=1e-4)


def test_conv_edges_and_bf16():
    x, w = inputs((2, 8, 8, 3)), inputs((3, 3, 3, 4), seed=1, edges=False)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    check(f, x, w, rtol=1e-4, atol=1e-4)  # NaN/inf in the input spread exactly as on CPU
    check(f, x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), rtol=3e-2, atol=3e-2)


def test_conv_grad():
    x, w = inputs((2, 8, 8, 3), edges=False), inputs((3, 3, 3, 4), seed=1, edges=False)
    loss = lambda x, w: jnp.sum(lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) ** 2)
    check(jax.grad(loss, argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-3)


def test_conv_batch_group_is_refused_with_location():
    import tt_xla
    x = np.ones((4, 5, 5, 2), np.float32)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                              batch_group_count=2)
    with pytest.raises(tt_xla.errors.UnsupportedError, match="batch_group_count.*test_ops_conv.py"):
        tt_xla.jit(f)(x, np.ones((3, 3, 2, 4), np.float32))
