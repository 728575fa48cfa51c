"""`python -m tt_xla demo [--small] [--runs N]`: an MLP on the tt device vs CPU JAX.

x[256,512] @ w1[512,1024] + b1 -> elu -> @ w2[1024,256] -> gelu. Prints the max abs error, the
median wall time of both (after warm-up), the device counters of one run and the kernel list.
Exits 1 if the error exceeds the tolerance. TT_XLA_DEMO_SMALL=1 (or --small) shrinks the sizes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _median_time(fn, runs: int) -> float:
    fn()  # warm-up (compile, caches)
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def demo(small: bool = False, runs: int = 10, tol: float = 1e-3) -> int:
    import numpy as np
    import jax

    import tt_xla

    batch, din, hidden, dout = (32, 64, 128, 32) if small else (256, 512, 1024, 256)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, din)).astype(np.float32)
    w1 = (rng.standard_normal((din, hidden)) / np.sqrt(din)).astype(np.float32)
    b1 = (rng.standard_normal((hidden,)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((hidden, dout)) / np.sqrt(hidden)).astype(np.float32)

    def mlp(x, w1, b1, w2):
        return jax.nn.gelu(jax.nn.elu(x @ w1 + b1) @ w2)

    print(f"tt-xla demo: MLP x[{batch},{din}] @ w1[{din},{hidden}] + b1 -> elu -> "
          f"@ w2[{hidden},{dout}] -> gelu")
    dev = tt_xla.client().devices()[0]
    print(f"device: {dev.device_kind}, {dev.num_cores} cores ({dev.core_grid[0]}x{dev.core_grid[1]}), "
          f"{dev.sram_bytes_per_core // 1024} KiB SRAM per core")

    tt_mlp = tt_xla.jit(mlp)
    t0 = time.perf_counter()
    out = tt_mlp(x, w1, b1, w2)
    print(f"first call (export + parse + compile + build + run): {time.perf_counter() - t0:.3f} s")

    cpu_mlp = jax.jit(mlp)
    ref = np.asarray(cpu_mlp(x, w1, b1, w2))
    got = np.asarray(out)
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0

    # device-resident arguments: timing measures the device, not the upload
    args_dev = [tt_xla.device_put(a) for a in (x, w1, b1, w2)]
    t_tt = _median_time(lambda: tt_mlp(*args_dev).block_until_ready(), runs)
    args_cpu = [jax.device_put(a) for a in (x, w1, b1, w2)]
    t_cpu = _median_time(lambda: cpu_mlp(*args_cpu).block_until_ready(), runs)

    dev.reset_counters()
    tt_mlp(*args_dev).block_until_ready()
    c = dev.counters()
    clock_ghz = getattr(getattr(dev.runtime_device, "config", None), "clock_ghz", 1.0) or 1.0
    modeled_us = c["modeled_cycles"] / clock_ghz / 1e3

    print(f"max abs error vs CPU JAX: {err:.3e} (tolerance {tol * scale:.1e})")
    print(f"median wall time over {runs} runs: tt-xla {t_tt * 1e3:.3f} ms, CPU JAX {t_cpu * 1e3:.3f} ms")
    print("device counters for one call:")
    print(f"  kernels launched   {c['kernels_launched']}")
    print(f"  DRAM bytes read    {c['dram_bytes_read']:,}")
    print(f"  DRAM bytes written {c['dram_bytes_written']:,}")
    print(f"  DMA bytes          {c['dma_bytes']:,}")
    print(f"  host bytes in/out  {c['host_bytes_written']:,} / {c['host_bytes_read']:,}")
    print(f"  matrix tiles       {c['matrix_tiles']:,}")
    print(f"  vector ops         {c['vector_ops']:,}")
    print(f"  modeled device time {modeled_us:.1f} us ({c['modeled_cycles']:,} cycles at {clock_ghz:g} GHz)")
    print(f"  host busy time     {c['busy_ns'] / 1e3:.1f} us")
    print("kernels:")
    for k in tt_mlp.kernels(x, w1, b1, w2):
        ops = " ".join(o for o in k.ops if o != "broadcast")
        ops = ops if len(ops) <= 60 else ops[:57] + "..."
        print(f"  {k.name:<14} {k.kind:<12} work_items={k.work_items:<5} vector_ops={k.vector_ops:<6} "
              f"matrix_tiles={k.matrix_tiles:<6} {len(k.ops)} ops: {ops}")
    if not err <= tol * scale:
        print(f"FAIL: error {err:.3e} exceeds tolerance {tol * scale:.1e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tt_xla")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run an MLP on the tt device and on CPU JAX, compare")
    d.add_argument("--small", action="store_true", default=bool(os.environ.get("TT_XLA_DEMO_SMALL")),
                   help="smaller sizes (also TT_XLA_DEMO_SMALL=1)")
    d.add_argument("--runs", type=int, default=10, help="timed runs (median is printed)")
    d.add_argument("--tol", type=float, default=1e-3, help="max abs error allowed (relative to max |y|)")
    args = p.parse_args(argv)
    if args.cmd == "demo":
        return demo(small=args.small, runs=args.runs, tol=args.tol)
    return 2


if __name__ == "__main__":
    sys.exit(main())
