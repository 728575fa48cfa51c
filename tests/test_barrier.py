"""optimization_barrier is honoured: its computed operands are materialized (stored by a kernel of
their own) and nothing is fused or CSE'd across it; jax.checkpoint programs, which use it to keep
their recomputation, give CPU JAX's results."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import tt_xla

from util import check, inputs

TEXT = """
func.func @main(%x: tensor<4x33xf32>) -> tensor<4x33xf32> {
  %e = stablehlo.exponential %x : tensor<4x33xf32>
  %b = stablehlo.optimization_barrier %e : tensor<4x33xf32>
  %f = stablehlo.exponential %x : tensor<4x33xf32>
  %s = stablehlo.add %b, %f : tensor<4x33xf32>
  return %s : tensor<4x33xf32>
}
"""


def test_barrier_operand_is_materialized_and_not_cse_d():
    exe = tt_xla.compile(TEXT)
    ks = exe.kernels()
    # without the barrier: one kernel, exp computed once (CSE) and fused into the add
    assert len(ks) == 2, [k.ops for k in ks]
    stored, add = ks
    assert stored.name.endswith("_copy") and add.name.endswith("_add")
    # the add reads the stored copy and recomputes its own exp (as much vector work as the
    # stored exp and its copy): it was neither fused nor CSE'd with the barrier's operand
    assert add.vector_ops >= stored.vector_ops > 2
    x = inputs((4, 33), edges=True)
    (got,) = exe(x)
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.exp(x) * 2
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, equal_nan=True)


def test_checkpoint_gradients():
    def layer(w, x):
        return jnp.tanh(x @ w) * jax.nn.sigmoid(x)

    def loss(ws, x):
        for w in ws:
            x = jax.checkpoint(layer)(w, x)
        return (x ** 2).sum()

    ws = [inputs((16, 16), seed=s, edges=False) * 0.3 for s in range(3)]
    x = inputs((4, 16), seed=9, edges=False)
    assert "optimization_barrier" in jax.jit(jax.grad(loss)).lower(ws, x).as_text()
    check(jax.value_and_grad(loss), ws, x, transcendental=True, rtol=1e-4, atol=1e-4)


def test_checkpoint_inside_scan():
    def f(c, xs):
        step = jax.checkpoint(lambda c, x: (jnp.sin(c) * x + c, c.sum()))
        return lax.scan(step, c, xs)

    c, xs = inputs((3,), edges=False), inputs((5, 3), seed=1, edges=False)
    check(jax.grad(lambda c, xs: f(c, xs)[0].sum()), c, xs, transcendental=True)
