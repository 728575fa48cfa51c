"""Benchmark rows for control flow and jax.random (issue 10): figures, not tests."""
from __future__ import annotations

import numpy as np

from .harness import Bench


def control_benchmarks() -> list[Bench]:
    import flax.linen as nn
    import jax

    def fori(x, n=1000):  # per-iteration overhead: a 2-element state, almost no work per iteration
        return jax.lax.fori_loop(0, n, lambda i, c: c * 0.999 + 1.0, x)

    def fori_10k(x):  # with fori_loop_1000: per iteration = (t(10000) - t(1000)) / 9000
        return fori(x, 10000)

    lstm = nn.RNN(nn.OptimizedLSTMCell(64))

    def lstm_inputs(rng, q):
        x = rng.standard_normal((8, 32, 64), dtype=np.float32)
        params = jax.tree_util.tree_map(np.asarray, lstm.init(jax.random.PRNGKey(0), x))
        return (params, x)

    def normal(key):
        return jax.random.normal(key, (4 * 1024 * 1024,))

    return [
        Bench("fori_loop_1000", fori, lambda rng, q: (np.ones(2, np.float32),), "{shapes} 1000 iterations",
              rtol=1e-4, atol=1e-4),
        Bench("fori_loop_10000", fori_10k, lambda rng, q: (np.ones(2, np.float32),), "{shapes} 10000 iterations",
              rtol=1e-4, atol=1e-4),
        Bench("lstm_scan_32", lstm.apply, lstm_inputs, "nn.RNN(OptimizedLSTMCell(64)) batch 8, 32 steps",
              rtol=1e-4, atol=1e-5),
        Bench("random_normal_4m", normal, lambda rng, q: (np.asarray(jax.random.PRNGKey(1)),),
              "jax.random.normal f32[4M]", rtol=1e-5, atol=1e-6),
    ]
