"""Write the parser's test corpus: StableHLO text exported once from JAX programs like the
ones the tests run, in the pretty form jax prints and in MLIR's generic form.

    python tools/export_corpus.py            # rewrites tests/data/corpus/jax_*.mlir

The hand-written files there (`handwritten_*.mlir`, stablehlo-opt style) are not touched.
Needs jax; the tests that read the corpus do not.
"""
from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
from jax import lax

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
F32 = jnp.float32


def programs() -> dict[str, tuple]:
    x = jnp.ones((4, 8), F32)
    w = jnp.ones((8, 16), F32)
    img = jnp.ones((2, 9, 9, 3), F32)
    ker = jnp.ones((3, 3, 3, 4), F32)
    seq = jnp.ones((2, 5, 8), F32)
    ints = jnp.arange(12, dtype=jnp.int32).reshape(3, 4)

    def mlp(x, w):
        return jax.nn.gelu(x @ w + 1.0).sum(axis=1)

    def cnn(img, ker):
        y = lax.conv_general_dilated(img, ker, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     rhs_dilation=(1, 1), feature_group_count=1)
        return jax.nn.relu(y).mean(axis=(1, 2))

    def attention(q):
        s = jnp.einsum("bqd,bkd->bqk", q, q) / jnp.sqrt(8.0)
        return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(s, axis=-1), q)

    def layernorm(x):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) * lax.rsqrt(v + 1e-5)

    def grad_mlp(x, w):
        return jax.grad(lambda w: jnp.tanh(x @ w).sum())(w)

    def elementwise(x):
        y = jnp.exp(x) + jnp.log1p(jnp.abs(x)) - jnp.expm1(x) * jax.nn.sigmoid(x)
        y = jnp.where(x > 0, y, -y) / jnp.maximum(x, 0.5)
        z = lax.erf(y) + jnp.floor(y) + jnp.round(y) + jnp.sign(y) + jnp.clip(y, -1, 1)
        return z.astype(jnp.bfloat16).astype(F32), jnp.isfinite(z), lax.bitcast_convert_type(z, jnp.int32)

    def integers(a):
        b = (a << 2) ^ (a >> 1) | (a & 7)
        return b % 5, b // 3, lax.population_count(a), lax.clz(a), jnp.argmax(a, axis=1)

    def shapes(x):
        y = jnp.concatenate([x, x[:, ::-1]], axis=1)
        y = jnp.pad(y, ((1, 2), (0, 3)))
        y = lax.pad(y, 0.0, ((0, 0, 1), (1, -1, 0)))
        return y.T.reshape(-1)[3:40:3], jnp.broadcast_to(x[:1], (3, 4, 8)), lax.iota(jnp.int32, 7)

    def loops(x):
        def body(i, c):
            return c * 1.5 + i
        y = lax.fori_loop(0, 5, body, x)
        return lax.cond(y.sum() > 0, lambda v: v + 1, lambda v: v - 1, y)

    def data_dependent(x, i):
        s = jnp.sort(x, axis=1)
        c = jnp.cumsum(x, axis=1)
        g = jnp.take(x, i, axis=0)
        u = x.at[i].add(1.0)
        v, k = lax.top_k(x, 2)
        return s, c, g, u, v, k

    def pooling(img):
        return lax.reduce_window(img, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "VALID")

    def f64_and_complex(x):
        return jnp.fft.fft(x.astype(jnp.complex64)).real

    return {
        "mlp": (mlp, x, w), "cnn": (cnn, img, ker), "attention": (attention, seq),
        "layernorm": (layernorm, x), "grad_mlp": (grad_mlp, x, w), "elementwise": (elementwise, x),
        "integers": (integers, ints), "shapes": (shapes, x), "loops": (loops, x),
        "data_dependent": (data_dependent, x, jnp.array([0, 2], jnp.int32)), "pooling": (pooling, img),
        "fft": (f64_and_complex, x),
    }


def generic(text: str) -> str:
    from jax._src.interpreters import mlir as jmlir
    from jax._src.lib.mlir import ir as mir

    with jmlir.make_ir_context():
        return mir.Module.parse(text).operation.get_asm(print_generic_op_form=True, enable_debug_info=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (fn, *args) in programs().items():
        text = jax.export.export(jax.jit(fn))(*args).mlir_module()
        (OUT / f"jax_{name}.mlir").write_text(text)
        (OUT / f"jax_{name}.generic.mlir").write_text(generic(text))
        print(f"wrote jax_{name}.mlir ({len(text)} chars) and its generic form")


if __name__ == "__main__":
    main()
