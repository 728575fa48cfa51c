"""`python -m tt_xla demo [--small] [--runs N]`: an MLP on the tt device vs CPU JAX.
`python -m tt_xla profile <file.mlir | module:function> [--args f32[8,16],...] [--device n150]
[-O 0|1|2] [--trace out.json] [--png roofline.png]`: the per-kernel profile table of one run on
random inputs (standard normal; integers in [0, 8)), and its Perfetto trace.

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


def _random_inputs(specs, seed: int = 0) -> list:
    import numpy as np
    rng = np.random.default_rng(seed)
    out = []
    for shape, dtype in specs:
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            out.append(rng.integers(0, 2, shape).astype(np.bool_))
        elif dtype.kind in "iu":
            out.append(rng.integers(0, 8, shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


def _parse_args_spec(text: str) -> list[tuple[tuple[int, ...], str]]:
    """'f32[8,16],bf16[4],i32[]' -> [((8, 16), 'float32'), ...]"""
    import re
    names = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i32": "int32",
             "i64": "int64", "i8": "int8", "u8": "uint8", "u32": "uint32", "bool": "bool", "pred": "bool"}
    specs = []
    for m in re.finditer(r"\s*(\w+)\[([\d,\s]*)\]\s*(?:,|$)", text):
        if m.group(1) not in names:
            raise SystemExit(f"--args: unknown dtype {m.group(1)!r} (one of {', '.join(names)})")
        dims = tuple(int(d) for d in m.group(2).split(",") if d.strip())
        specs.append((dims, names[m.group(1)]))
    if not specs and text.strip():
        raise SystemExit(f"--args: cannot read {text!r}; write e.g. f32[8,16],i32[4]")
    return specs


def profile_cmd(target: str, args_spec: str, device: str | None, level: int, trace: str,
                png: str | None) -> int:
    import importlib
    from pathlib import Path

    import ml_dtypes  # noqa: F401 (registers bfloat16 with numpy)

    if device:
        os.environ["TT_XLA_DEVICE"] = device  # the process-wide client jit uses
    import tt_xla
    options = {"optimization_level": level}
    if ":" in target and not Path(target).exists():
        mod_name, fn_name = target.split(":", 1)
        sys.path.insert(0, os.getcwd())
        fn = getattr(importlib.import_module(mod_name), fn_name)
        inputs = _random_inputs(_parse_args_spec(args_spec))
        report = tt_xla.jit(fn, compiler_options=options).profile(*inputs)
    else:
        exe = tt_xla.compile(Path(target).read_text(), compiler_options=options)
        specs = [(tuple(s.shape), s.dtype) for s in exe.input_specs]
        report = exe.profile(*_random_inputs(specs))
    print(report)
    report.write_trace(trace)
    print(f"trace: {trace} (open it in https://ui.perfetto.dev)")
    if png:
        try:
            report.roofline_png(png)
            print(f"roofline: {png}")
        except ImportError as e:
            print(f"no roofline plot: {e}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tt_xla")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run an MLP on the tt device and on CPU JAX, compare")
    d.add_argument("--small", action="store_true", default=bool(os.environ.get("TT_XLA_DEMO_SMALL")),
                   help="smaller sizes (also TT_XLA_DEMO_SMALL=1)")
    d.add_argument("--runs", type=int, default=10, help="timed runs (median is printed)")
    d.add_argument("--tol", type=float, default=1e-3, help="max abs error allowed (relative to max |y|)")
    pr = sub.add_parser("profile", help="per-kernel modeled time of one run, and a Perfetto trace")
    pr.add_argument("target", help="a StableHLO file (.mlir) or module:function (a jax function)")
    pr.add_argument("--args", default="", help="module:function's argument shapes, e.g. f32[8,16],i32[4]")
    pr.add_argument("--device", default=None, help="preset (n150, n300, p150) or JSON device file "
                    "(default: $TT_XLA_DEVICE, else n150)")
    pr.add_argument("-O", "--optimization-level", type=int, default=0, choices=(0, 1, 2))
    pr.add_argument("--trace", default="tt_xla_trace.json", help="where to write the trace JSON")
    pr.add_argument("--png", default=None, help="also write a roofline plot (needs matplotlib)")
    args = p.parse_args(argv)
    if args.cmd == "profile":
        return profile_cmd(args.target, args.args, args.device, args.optimization_level, args.trace, args.png)
    if args.cmd == "demo":
        return demo(small=args.small, runs=args.runs, tol=args.tol)
    return 2


if __name__ == "__main__":
    sys.exit(main())
