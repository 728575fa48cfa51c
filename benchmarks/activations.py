"""Activation cost relative to ReLU on the host: tt_xla only, device-resident inputs and outputs.

Every round calls each function once, in the same order (relu, exp, elu, elu_composite, gelu,
x*2+1), so machine-wide drift hits all of them alike; a ratio is the median over rounds of
(time of f / time of relu in that round). The targets (issue 17): exp/ReLU <= 1.2, ELU/ReLU <=
1.2, GELU/ReLU <= 1.5, ELU/composite <= 1.0. These are host figures; on the modeled device all of
them are DRAM-bound (see the device-model lines of the main report).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

TARGETS = {"exp": 1.2, "elu": 1.2, "gelu": 1.5}


def _functions() -> dict:
    import jax
    import jax.numpy as jnp
    return {"relu": jax.nn.relu, "exp": jnp.exp, "elu": jax.nn.elu,
            "elu_composite": lambda x: jax.nn.relu(x) - jax.nn.relu(1 - jnp.exp(x)),
            "gelu": jax.nn.gelu, "x*2+1": lambda x: x * 2 + 1}


def measure(n: int, rounds: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """{name: {median_s, min_s, ratio}} for f32[n] inputs (normal, scale 2)."""
    import tt_xla
    x = tt_xla.device_put(np.random.default_rng(seed).standard_normal(n, dtype=np.float32) * 2)
    fns = {k: tt_xla.jit(f) for k, f in _functions().items()}
    for f in fns.values():  # compile and warm up
        for _ in range(3):
            f(x).block_until_ready()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            out = f(x)
            out.block_until_ready()
            times[k].append(time.perf_counter() - t0)
            del out
    res = {k: dict(median_s=statistics.median(v), min_s=min(v), ratio=_ratio(v, times["relu"]))
           for k, v in times.items()}
    res["elu"]["ratio_composite"] = _ratio(times["elu"], times["elu_composite"])
    return res


def _ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def report(res: dict[str, dict[str, float]], n: int, rounds: int) -> str:
    lines = [f"host cost / ReLU (tt_xla, f32[{n}] device-resident in and out, {rounds} interleaved rounds, "
             "median of per-round ratios):"]
    for k, r in res.items():
        target = f"  (target <= {TARGETS[k]})" if k in TARGETS else ""
        lines.append(f"  {k:<14} {r['median_s'] * 1e3:8.3f} ms (min {r['min_s'] * 1e3:.3f})  "
                     f"/ ReLU {r['ratio']:5.2f}{target}")
    lines.append(f"  ELU / composite {res['elu']['ratio_composite']:.2f}  (target <= 1.0)")
    return "\n".join(lines)
