"""Benchmark rows for linear algebra (issue 13): figures, not tests."""
from __future__ import annotations

import numpy as np

from .harness import Bench


def _spd(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    return x @ np.swapaxes(x, -1, -2) / shape[-1] + np.eye(shape[-1], dtype=np.float32)


def _sym(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    return (x + np.swapaxes(x, -1, -2)) / 2


def _eigh_abs(x):
    import jax.numpy as jnp
    w, v = jnp.linalg.eigh(x)
    return w, jnp.abs(v)


def linalg_benchmarks() -> list[Bench]:
    import jax.numpy as jnp

    def solve_inputs(rng, q):
        n = 256 if q else 1024
        a = rng.standard_normal((n, n), dtype=np.float32) + n ** 0.5 * np.eye(n, dtype=np.float32)
        return (a, rng.standard_normal((n, 1), dtype=np.float32))

    return [
        Bench("cholesky_1024", jnp.linalg.cholesky, lambda rng, q: (_spd(rng, (256, 256) if q else (1024, 1024)),),
              "{shapes}", rtol=1e-3, atol=1e-4),
        Bench("solve_1024", jnp.linalg.solve, solve_inputs, "{shapes}", rtol=1e-3, atol=1e-4),
        # eigenvectors are defined up to sign: the row compares |V| (the inputs' eigenvalues are distinct)
        Bench("eigh_64x64", _eigh_abs, lambda rng, q: (_sym(rng, (16, 32, 32) if q else (64, 64, 64)),),
              "{shapes}", rtol=1e-3, atol=1e-3),
    ]
