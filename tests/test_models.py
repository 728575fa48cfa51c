"""Small models end to end: softmax, log_softmax, layernorm, MLP forward, MLP training."""
from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import tt_xla
from util import BF16, check, inputs


@pytest.mark.parametrize("shape", [(8, 10), (33, 65), (2, 3, 1027)], ids=str)
def test_softmax(shape):
    x = inputs(shape, edges=False) * 3
    check(lambda x: (jax.nn.softmax(x, axis=-1), jax.nn.log_softmax(x, axis=-1)), x,
          rtol=1e-5, atol=1e-6, transcendental=True)


def test_softmax_axis0_and_extremes():
    x = inputs((9, 40), edges=False)
    x[2, :] = -np.inf
    x[2, 3] = 0.0
    x[4, 5] = 80.0  # large logits: needs the max subtraction
    check(lambda x: (jax.nn.softmax(x, axis=0), jax.nn.softmax(x), jax.nn.log_softmax(x)), x,
          rtol=1e-5, atol=1e-6)


def test_softmax_bf16():
    check(lambda x: jax.nn.softmax(x), inputs((16, 70), BF16, edges=False))


def _layernorm(x, g, b, eps=1e-5):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * g + b


@pytest.mark.parametrize("shape", [(4, 32), (33, 65), (2, 7, 768)], ids=str)
def test_layernorm(shape):
    x = inputs(shape, edges=False) + 3.0
    g, b = inputs(shape[-1:], seed=1, edges=False), inputs(shape[-1:], seed=2, edges=False)
    check(_layernorm, x, g, b, rtol=1e-4, atol=1e-4)


def _init_mlp(sizes, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for din, dout in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((din, dout)) / np.sqrt(din)).astype(np.float32)
        b = (rng.standard_normal((dout,)) * 0.1).astype(np.float32)
        params.append({"w": w, "b": b})
    return params


def _mlp(params, x, act=jax.nn.gelu):
    for i, p in enumerate(params):
        x = x @ p["w"] + p["b"]
        if i < len(params) - 1:
            x = act(x)
    return x


@pytest.mark.parametrize("act", [jax.nn.gelu, jax.nn.elu, jax.nn.relu], ids=["gelu", "elu", "relu"])
def test_mlp_forward(act):
    params = _init_mlp([64, 128, 33, 10])
    x = inputs((37, 64), edges=False)
    check(lambda p, x: _mlp(p, x, act), params, x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", [jax.nn.gelu, jax.nn.elu], ids=["gelu", "elu"])
def test_mlp_training_steps(act):
    """5 SGD steps of a 2-layer MLP on MSE; tt_xla params fed back as tt_xla.Arrays."""
    params0 = _init_mlp([16, 48, 8], seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 16)).astype(np.float32)
    y = rng.standard_normal((32, 8)).astype(np.float32)

    def loss(params, x, y):
        return jnp.mean((_mlp(params, x, act) - y) ** 2)

    def step(params, x, y):
        l, g = jax.value_and_grad(loss)(params, x, y)
        return l, jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, g)

    cpu_step, tt_step = jax.jit(step), tt_xla.jit(step)
    p_cpu, p_tt = params0, params0
    losses_cpu, losses_tt = [], []
    for _ in range(5):
        l_cpu, p_cpu = cpu_step(p_cpu, x, y)
        l_tt, p_tt = tt_step(p_tt, x, y)
        losses_cpu.append(float(l_cpu))
        losses_tt.append(float(l_tt))
        assert all(isinstance(leaf, tt_xla.Array) for leaf in jax.tree_util.tree_leaves(p_tt))
    assert tt_step._cache_size() == 1  # numpy params, then tt_xla.Array params: same signature
    np.testing.assert_allclose(losses_tt, losses_cpu, rtol=1e-4)
    assert losses_cpu[-1] < losses_cpu[0]
    for a, b in zip(jax.tree_util.tree_leaves(p_tt), jax.tree_util.tree_leaves(p_cpu)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
