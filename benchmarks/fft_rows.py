"""Benchmark rows for stablehlo.fft (issue 13): figures, not tests."""
from __future__ import annotations

import numpy as np

from .harness import Bench


def fft_benchmarks() -> list[Bench]:
    import jax.numpy as jnp

    def signal(rng, q):
        n = 1 << (16 if q else 20)
        return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64),)

    def image(rng, q):
        n = 256 if q else 1024
        return (rng.standard_normal((n, n), dtype=np.float32),)

    # an FFT's rounding error scales with the norm of its input: the atol is a few f32 ulps of
    # the largest output (about sqrt(n) * |x|), not of each element
    return [
        Bench("fft_1m_c64", jnp.fft.fft, signal, "{shapes}", rtol=1e-4, atol=2e-3),
        Bench("rfft2_1024", jnp.fft.rfft2, image, "{shapes}", rtol=1e-4, atol=2e-3),
    ]
