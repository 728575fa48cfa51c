"""Writes the seed modules the mutation fuzzer starts from (tests/data/*.mlir).

Each is a small real program exported by jax.export, with locations, so mutations start from
text exactly as tt_xla.jit produces it. Regenerate (needs jax):

    python tools/export_fuzz_seeds.py            # writes tests/data/*.mlir
"""
from __future__ import annotations

import os
import sys

import numpy as np

import jax
import jax.numpy as jnp
from jax import lax

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data")


def mlp(x, w1, b1, w2):
    return jax.nn.gelu(x @ w1 + b1) @ w2


def conv(x, w):
    y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y)


def attention(q, k, v):
    s = jnp.einsum("bqd,bkd->bqk", q, k) / np.float32(np.sqrt(q.shape[-1]))
    return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(s, axis=-1), v)


def norms(x, g):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return jax.nn.softmax((x - m) * lax.rsqrt(v + 1e-5) * g, axis=-1)


def reductions(x, i):
    return x.sum(0), x.max(1), jnp.argmax(x, axis=1), (i * 3 + 1).astype(jnp.float32).min(), \
        jnp.flip(x[1:, ::2], 0).T, jnp.pad(x, ((1, 0), (0, 2)))


def integers(a, b, x):
    bits = lax.bitcast_convert_type(x, jnp.uint8)  # width-changing bitcast
    return (a << (b & 7)) ^ (a >> 2), a % jnp.where(b == 0, 1, b), a // jnp.where(b == 0, 1, b), \
        lax.population_count(a), lax.clz(b), bits.sum(-1), jnp.clip(a, -3, 4), \
        lax.convert_element_type(x, jnp.int32), jnp.concatenate([a, b], 0), a.max()


def conv_groups(x, w, y):
    z = lax.conv_general_dilated(x, w, (2, 1), ((1, 2), (0, 1)), rhs_dilation=(1, 2),
                                 feature_group_count=2, dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return z.astype(jnp.bfloat16), (y.astype(jnp.bfloat16) @ y.T.astype(jnp.bfloat16)), \
        jnp.expm1(y.astype(jnp.float16)), jnp.flip(y, 1)[:, 1::3]


def shapes(x, y):
    a = jnp.concatenate([x.reshape(3, 4, 5).transpose(2, 0, 1), jnp.flip(y, 0)[None]], 0)
    b = lax.pad(x, np.float32(-1), ((2, -3, 1), (-1, 2, 0)))
    return a * jnp.arange(4, dtype=jnp.float32), b, jnp.broadcast_to(y[:1], (2, 3, 4)), \
        x[::-2, 1:4], jnp.tile(y, (2, 1)).T


def dots(a, b, v):
    return jnp.einsum("bij,bkj->bik", a, b), jnp.einsum("bij,j->bi", a, v), v @ a[0].T, \
        jnp.einsum("bij,bij->b", a, a), (a.astype(jnp.bfloat16) @ v.astype(jnp.bfloat16))


def grad_step(w, x, y):
    def loss(w):
        logits = jnp.tanh(x @ w["a"]) @ w["b"]
        return -(jax.nn.log_softmax(logits) * y).sum(-1).mean()
    g = jax.grad(loss)(w)
    return jax.tree_util.tree_map(lambda p, d: p - 0.1 * d, w, g)


def dtypes(h, u, p):
    return (h * h + np.float16(1)).astype(jnp.float32), u.astype(jnp.int8) + 3, \
        jnp.where(p, h, -h), p & (u > 7), ~p, lax.bitcast_convert_type(h, jnp.int16) >> 3, \
        u.astype(jnp.float32).astype(jnp.uint8)


def control(x, i):  # ops the compiler does not support yet: verified, then refused
    y = jnp.sort(x, axis=-1)
    g = x[i % x.shape[0]]
    c = lax.fori_loop(0, 3, lambda _, a: a * 2.0, y)
    return c, g, lax.dynamic_slice(x, (i[0], 0), (2, 4)), x.at[i % 5].add(1.0), \
        lax.reduce_window(x, 0.0, lax.add, (2, 2), (1, 1), "VALID"), jnp.cumsum(x, 0), \
        lax.cond(i[0] > 0, lambda a: a + 1, lambda a: a - 1, x)


def control2(x, i, key):  # more ops not compiled yet: their verifier rules meet XLA's
    pool = lambda a: lax.reduce_window(a, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    g = jax.grad(lambda a: pool(a).sum())(x)  # select_and_scatter
    bits = jax.random.bits(jax.random.wrap_key_data(key, impl="rbg"), (3,))  # rng_bit_generator
    flat = x.reshape(-1)
    upd = lax.dynamic_update_slice(flat, jnp.ones(3, flat.dtype), (i[0],))
    order = jnp.argsort(flat[:8])  # a sort of two operands
    rows = jax.vmap(lambda r, j: r[j])(x.reshape(4, -1), i % 4)  # gather with batching dims
    return g, bits, upd, order, rows, lax.cond(i[1] > 0, jnp.sin, jnp.cos, flat)


SEEDS = {
    "mlp": (mlp, [(4, 32), (32, 64), (64,), (64, 8)], [np.float32] * 4),
    "conv": (conv, [(1, 8, 8, 3), (3, 3, 3, 4)], [np.float32] * 2),
    "attention": (attention, [(2, 16, 8)] * 3, [np.float32] * 3),
    "norms": (norms, [(4, 33), (33,)], [np.float32] * 2),
    "reductions": (reductions, [(6, 10), (6,)], [np.float32, np.int32]),
    "integers": (integers, [(7,), (7,), (3, 2)], [np.int32, np.int32, np.float32]),
    "conv_groups": (conv_groups, [(2, 4, 9, 7), (6, 2, 3, 2), (5, 40)], [np.float32] * 3),
    "shapes": (shapes, [(6, 10), (3, 4)], [np.float32] * 2),
    "dots": (dots, [(3, 4, 33), (3, 2, 33), (33,)], [np.float32] * 3),
    "grad_step": (grad_step, [{"a": (16, 32), "b": (32, 10)}, (8, 16), (8, 10)], None),
    "dtypes": (dtypes, [(5, 3), (5, 3), (5, 3)], [np.float16, np.uint8, np.bool_]),
    "control2": (control2, [(1, 4, 4, 2), (4,), (4,)], [np.float32, np.int32, np.uint32]),
    "control": (control, [(5, 4), (2,)], [np.float32, np.int32]),
}


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, (f, shapes, dtypes) in SEEDS.items():
        if dtypes is None:  # a pytree of float32 shapes
            args = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s, np.float32), shapes,
                                          is_leaf=lambda s: isinstance(s, tuple))
        else:
            args = [jax.ShapeDtypeStruct(s, d) for s, d in zip(shapes, dtypes)]
        text = jax.export.export(jax.jit(f))(*args).mlir_module()
        text = text.replace(os.path.abspath(__file__), "tools/export_fuzz_seeds.py")  # no local paths
        with open(os.path.join(OUT, f"{name}.mlir"), "w") as fh:
            fh.write(text)
        print(f"{name}: {len(text)} chars", file=sys.stderr)


if __name__ == "__main__":
    main()
