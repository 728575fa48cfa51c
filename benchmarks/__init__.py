"""tt-xla benchmark suite: tt_xla vs XLA:CPU (jax.jit on CPU), side by side in one process.

Run with ``python -m benchmarks`` (see benchmarks/README.md). The benchmark definitions live in
``benchmarks.suite``, the timing harness in ``benchmarks.harness``.
"""
