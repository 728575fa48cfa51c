"""Benchmark rows for gather, scatter, sort, scans and pooling (issue 9): figures, not tests."""
from __future__ import annotations

import numpy as np

from .harness import Bench


def _normal(rng, shape, dtype=np.float32, scale=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(dtype)


def indexing_benchmarks() -> list[Bench]:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    def emb_inputs(rng, q):
        v, n = (5000, 512) if q else (50_000, 4096)
        return (_normal(rng, (v, 512)), rng.integers(0, v, n).astype(np.int32))

    def emb_grad_inputs(rng, q):
        t, i = emb_inputs(rng, q)
        return (t, i, _normal(rng, (len(i), 512)))

    def pool_inputs(rng, q):
        return (_normal(rng, (4, 56, 56, 64) if q else (32, 112, 112, 64)),)

    def maxpool(x):
        return nn.max_pool(x, (3, 3), (2, 2), padding="SAME")

    return [
        Bench("embed_gather", lambda t, i: t[i], emb_inputs, "{shapes} t[ids]", rtol=0, atol=0),
        Bench("embed_scatter_add", lambda t, i, g: jnp.zeros_like(t).at[i].add(g), emb_grad_inputs,
              "{shapes} zeros.at[ids].add(g)", rtol=1e-5, atol=1e-5),
        Bench("sort_rows", lambda x: jnp.sort(x, axis=-1),
              lambda rng, q: (_normal(rng, (256, 1024) if q else (1024, 1024)),), "{shapes} axis -1", rtol=0, atol=0),
        # one row longer than a core's SRAM: chunks sorted in SRAM, then merge passes across cores
        Bench("sort_1m", jnp.sort, lambda rng, q: (_normal(rng, (1 << 18,) if q else (1 << 20,)),), "{shapes}",
              rtol=0, atol=0),
        Bench("cumsum", lambda x: jnp.cumsum(x, axis=-1),
              lambda rng, q: (_normal(rng, (512, 1024) if q else (4096, 1024)),), "{shapes} axis -1",
              rtol=1e-4, atol=1e-3),
        Bench("maxpool3x3s2", maxpool, pool_inputs, "{shapes} NHWC SAME", rtol=0, atol=0),
        Bench("maxpool3x3s2_grad", jax.grad(lambda x: maxpool(x).sum()), pool_inputs, "{shapes} NHWC SAME",
              rtol=0, atol=0),
    ]
