"""Measuring instruments: how much of JAX and of ordinary Flax/Optax programs tt-xla runs
correctly (`python -m tools.harness`, `python -m tools.programs`, `python -m tools.corpus`)."""
