"""The benchmarks, the compile-time measurement, the report and the command line."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from . import activations
from .harness import Bench, Result, device_model, run
from .control_rows import control_benchmarks
from .fft_rows import fft_benchmarks
from .indexing_rows import indexing_benchmarks
from .linalg_rows import linalg_benchmarks

M4 = 4 * 1024 * 1024


# ---------------------------------------------------------------------------- functions
def _fns():
    import jax
    import jax.numpy as jnp

    def relu(x):
        return jax.nn.relu(x)

    def elu(x):
        return jax.nn.elu(x)

    def elu_composite(x):
        return jax.nn.relu(x) - jax.nn.relu(1 - jnp.exp(x))

    def gelu(x):
        return jax.nn.gelu(x)  # approximate=True (tanh form), jax's default

    def exp(x):
        return jnp.exp(x)

    def silu(x):
        return jax.nn.silu(x)

    def softmax(x):
        return jax.nn.softmax(x, axis=-1)

    def layernorm(x, g, b):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b

    def matmul(a, b):
        return a @ b

    def matmul_bf16(a, b):
        return jnp.matmul(a, b, preferred_element_type=jnp.float32)

    def mlp(x, w, b):
        return jax.nn.gelu(x @ w + b)

    def conv3x3(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def depthwise3x3(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=x.shape[-1],
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def depthwise3x3_wgrad(x, w, dy):  # what training needs: a batch_group_count convolution
        return jax.grad(lambda w: jnp.sum(depthwise3x3(x, w) * dy))(w)

    def conv1d_k9_d2(x, w):
        return jax.lax.conv_general_dilated(x, w, (1,), "SAME", rhs_dilation=(2,),
                                            dimension_numbers=("NWC", "WIO", "NWC"))

    def row_sum(x):
        return jnp.sum(x, axis=-1)

    def transpose(x):
        return x.T

    def add(x, y):
        return x + y

    return dict(relu=relu, elu=elu, elu_composite=elu_composite, gelu=gelu, exp=exp, silu=silu,
                softmax=softmax, layernorm=layernorm, matmul=matmul, matmul_bf16=matmul_bf16,
                mlp=mlp, conv3x3=conv3x3, depthwise3x3=depthwise3x3,
                depthwise3x3_wgrad=depthwise3x3_wgrad, conv1d_k9_d2=conv1d_k9_d2, row_sum=row_sum, transpose=transpose, add=add)


def _normal(rng, shape, dtype=np.float32, scale=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(dtype)


def benchmarks() -> list[Bench]:
    import ml_dtypes

    bf16 = ml_dtypes.bfloat16
    f = _fns()

    def vec(dtype=np.float32, scale=2.0):
        return lambda rng, q: (_normal(rng, (M4 // 16 if q else M4,), dtype, scale),)

    def rows(rng, q):
        return ((512, 1024) if q else (4096, 1024))

    def mat(dtype):
        def make(rng, q):
            n = 256 if q else 1024
            return (_normal(rng, (n, n), dtype), _normal(rng, (n, n), dtype))
        return make

    def ln_inputs(rng, q):
        r, c = rows(rng, q)
        return (_normal(rng, (r, c)), 1 + _normal(rng, (c,), scale=0.1), _normal(rng, (c,), scale=0.1))

    def mlp_inputs(rng, q):
        n, h = (256, 1024) if q else (1024, 4096)
        return (_normal(rng, (n, 1024)), _normal(rng, (1024, h), scale=1 / 32), _normal(rng, (h,), scale=0.1))

    def conv_inputs(rng, q):
        hw = 16 if q else 64
        return (_normal(rng, (8, hw, hw, 32)), _normal(rng, (3, 3, 32, 64), scale=1 / 17))

    def dw_inputs(grad):
        def make(rng, q):
            x = _normal(rng, (8, 28 if q else 112, 28 if q else 112, 64))
            w = _normal(rng, (3, 3, 1, 64), scale=1 / 3)
            return (x, w, _normal(rng, x.shape)) if grad else (x, w)
        return make

    def conv1d_inputs(rng, q):
        return (_normal(rng, (4, 256 if q else 1024, 16)), _normal(rng, (9, 16, 16), scale=1 / 12))

    def square(rng, q):
        n = 512 if q else 2048
        return (_normal(rng, (n, n)),)

    return [
        Bench("relu", f["relu"], vec(), "{shapes}"),
        Bench("elu", f["elu"], vec(), "{shapes}"),
        Bench("elu_composite", f["elu_composite"], vec(), "{shapes}", rtol=1e-4, atol=1e-5),
        Bench("exp", f["exp"], vec(), "{shapes}"),
        Bench("gelu", f["gelu"], vec(), "{shapes} tanh approx"),
        Bench("silu_bf16", f["silu"], vec(bf16), "{shapes}", rtol=2e-2, atol=2e-2),
        Bench("softmax", f["softmax"], lambda rng, q: (_normal(rng, rows(rng, q)),), "{shapes} axis -1",
              rtol=1e-4, atol=1e-7),
        Bench("layernorm", f["layernorm"], ln_inputs, "{shapes} (x,scale,bias)", rtol=1e-4, atol=1e-4),
        Bench("matmul_f32", f["matmul"], mat(np.float32), "{shapes}", rtol=1e-3, atol=1e-3),
        Bench("matmul_bf16", f["matmul_bf16"], mat(bf16), "{shapes} -> f32 out", rtol=1e-2, atol=1e-2),
        Bench("mlp_gelu", f["mlp"], mlp_inputs, "gelu(x@w+b) {shapes}", rtol=1e-3, atol=1e-3),
        Bench("conv3x3", f["conv3x3"], conv_inputs, "{shapes} SAME", rtol=1e-3, atol=1e-3),
        Bench("depthwise3x3", f["depthwise3x3"], dw_inputs(False), "{shapes} SAME groups=64",
              rtol=1e-4, atol=1e-4),
        Bench("depthwise3x3_wgrad", f["depthwise3x3_wgrad"], dw_inputs(True), "{shapes} d/dw (batch groups)",
              rtol=1e-3, atol=5e-2),
        Bench("conv1d_k9_d2", f["conv1d_k9_d2"], conv1d_inputs, "{shapes} SAME rhs_dilation 2",
              rtol=1e-3, atol=1e-3),
        Bench("row_sum", f["row_sum"], lambda rng, q: (_normal(rng, rows(rng, q)),), "{shapes} axis -1",
              rtol=1e-4, atol=1e-3),
        Bench("transpose", f["transpose"], square, "{shapes} .T", rtol=0, atol=0),
        Bench("tiny_add", f["add"], lambda rng, q: (_normal(rng, (8,)), _normal(rng, (8,))), "{shapes} x+y",
              unit="us", rtol=0, atol=0, warmup=200, max_reps=200_000),
        # numpy in, numpy out: what a user writes (the rows above keep inputs and outputs resident)
        Bench("softmax_np", f["softmax"], lambda rng, q: (_normal(rng, rows(rng, q)),),
              "{shapes} numpy in/out", rtol=1e-4, atol=1e-7, io="numpy"),
        Bench("layernorm_np", f["layernorm"], ln_inputs, "{shapes} numpy in/out", rtol=1e-4, atol=1e-4,
              io="numpy"),
        Bench("gelu_np", f["gelu"], vec(), "{shapes} numpy in/out", io="numpy"),
        Bench("matmul_f32_np", f["matmul"], mat(np.float32), "{shapes} numpy in/out", rtol=1e-3, atol=1e-3,
              io="numpy"),
        Bench("tiny_add_np", f["add"], lambda rng, q: (_normal(rng, (8,)), _normal(rng, (8,))),
              "{shapes} numpy in/out", unit="us", rtol=0, atol=0, warmup=200, max_reps=200_000, io="numpy"),
    ] + indexing_benchmarks() + control_benchmarks() + linalg_benchmarks() + fft_benchmarks()


# ---------------------------------------------------------------------------- compile time
def _transformer(seq=64, d=128, heads=4, mlp=512, layers=2):
    import jax
    import jax.numpy as jnp

    def init(rng):
        def w(*shape):
            return _normal(rng, shape, scale=1 / np.sqrt(shape[0]))
        ps = []
        for _ in range(layers):
            ps.append(dict(ln1_g=np.ones(d, np.float32), ln1_b=np.zeros(d, np.float32),
                           wq=w(d, d), wk=w(d, d), wv=w(d, d), wo=w(d, d),
                           ln2_g=np.ones(d, np.float32), ln2_b=np.zeros(d, np.float32),
                           w1=w(d, mlp), b1=np.zeros(mlp, np.float32), w2=w(mlp, d),
                           b2=np.zeros(d, np.float32)))
        x = _normal(rng, (seq, d))
        y = _normal(rng, (seq, d))
        return ps, x, y

    def make_step(grad=True):
        """A fresh function object each call, so jax's in-memory caches cannot serve it."""
        def ln(x, g, b):
            mu = jnp.mean(x, -1, keepdims=True)
            var = jnp.mean(jnp.square(x - mu), -1, keepdims=True)
            return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b

        def attn(x, p):
            dh = d // heads
            q, k, v = (jnp.transpose((x @ p[n]).reshape(seq, heads, dh), (1, 0, 2)) for n in ("wq", "wk", "wv"))
            s = jnp.einsum("hqd,hkd->hqk", q, k) / np.sqrt(dh).astype(np.float32)
            o = jnp.einsum("hqk,hkd->hqd", jax.nn.softmax(s, -1), v)
            return jnp.transpose(o, (1, 0, 2)).reshape(seq, d) @ p["wo"]

        def forward(ps, x):
            for p in ps:
                x = x + attn(ln(x, p["ln1_g"], p["ln1_b"]), p)
                h = ln(x, p["ln2_g"], p["ln2_b"])
                x = x + jax.nn.gelu(h @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
            return x

        def loss(ps, x, y):
            return jnp.mean(jnp.square(forward(ps, x) - y))

        return jax.value_and_grad(loss) if grad else loss

    return init, make_step


def compile_bench(quick: bool, reps: int | None) -> tuple[list[Result], dict]:
    """Compile time of a 2-layer pre-LN transformer's value_and_grad (and, as a fallback data
    point, of its forward loss alone).

    XLA:  fresh jax.jit(step).lower(*args).compile()  (trace + lower + XLA compile).
    tt:   tt_xla's compile of the StableHLO text from jax.export (parse + compile + C build +
          load), with an empty kernel cache (fresh TT_XLA_CACHE_DIR, so the C compiler runs:
          "cold") and with a warm cache; the export itself (trace + lower to text, what
          tt_xla.jit adds before that) is its own row. Every tt compile uses a fresh
          tt_xla.Client so its in-memory executable cache cannot serve it; every XLA compile
          uses a fresh function object so jax's caches cannot either.
    """
    import jax
    import tt_xla

    from .harness import compare

    seq, d = (32, 64) if quick else (64, 128)
    init, make_step = _transformer(seq=seq, d=d, heads=4, mlp=4 * d, layers=2)
    ps, x, y = init(np.random.default_rng(0))
    cpu = jax.devices("cpu")[0]
    args = jax.tree_util.tree_map(lambda a: jax.device_put(a, cpu), (ps, x, y))
    n = reps if reps is not None else (1 if quick else 3)
    n = max(1, min(n, 5))

    def tt_compile(text, cache_dir):
        old = os.environ.get("TT_XLA_CACHE_DIR")
        os.environ["TT_XLA_CACHE_DIR"] = cache_dir
        try:
            from tt_xla.runtime import toolchain
            before = dict(toolchain.stats)
            t0 = time.perf_counter()
            exe = tt_xla.Client().compile(text)
            t = time.perf_counter() - t0
            cstats = {k: toolchain.stats[k] - before.get(k, 0) for k in toolchain.stats}
            return t, exe, cstats
        finally:
            if old is None:
                os.environ.pop("TT_XLA_CACHE_DIR", None)
            else:
                os.environ["TT_XLA_CACHE_DIR"] = old

    results: list[Result] = []
    info: dict = {}
    for tag, grad in (("vg", True), ("fwd", False)):
        def fresh(grad=grad):
            return make_step(grad)

        def xla_compile():
            t0 = time.perf_counter()
            jax.jit(fresh()).lower(*args).compile()
            return time.perf_counter() - t0

        def export():
            t0 = time.perf_counter()
            text = jax.export.export(jax.jit(fresh()))(*args).mlir_module()
            return time.perf_counter() - t0, text

        what = ("v&g" if grad else "fwd loss") + f" tfm s{seq} d{d}"
        rows = {k: Result(f"{k}_{tag}", f"{what}: {w}", "ms") for k, w in (
            ("export", "jax.export->text"), ("compile_cold", "text->loaded, empty C cache"),
            ("compile_warm", "text->loaded, C cache dir warm"))}
        results.extend(rows.values())
        inf = info[tag] = {}
        xla_compile()  # first-time jax/XLA initialisation is not what we measure
        _, text = export()
        inf["stablehlo_chars"] = len(text)
        warm_dir = tempfile.mkdtemp(prefix="tt_xla_bench_warm_")
        try:
            _, exe, _ = tt_compile(text, warm_dir)  # fills warm_dir
        except Exception as e:  # report, keep going
            msg = f"tt_xla compile failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
            inf["error"] = msg
            for k in ("compile_cold", "compile_warm"):
                rows[k].status = "unsupported" if isinstance(e, tt_xla.UnsupportedError) else "error"
                rows[k].message = msg
            exe = None
        if exe is not None:
            inf["kernels"] = len(exe.kernels())
            inf["c_source_chars"] = len(exe.source)
            flat = [tt_xla.device_put(np.asarray(a)) for a in jax.tree_util.tree_leaves((ps, x, y))]
            want = jax.tree_util.tree_leaves(jax.jit(fresh())(*args))
            ok, err, msg = compare(list(exe(*flat)), want, 1e-3, 1e-4)
            inf["max_abs_err"] = err
            if not ok:
                for r in rows.values():
                    r.status, r.message = "MISMATCH", msg
        xs, cold, warm, exps = [], [], [], []
        warm_misses = 0
        for _ in range(n):  # interleaved
            xs.append(xla_compile())
            te, text = export()
            exps.append(te)
            if exe is not None:
                cold_dir = tempfile.mkdtemp(prefix="tt_xla_bench_cold_")
                cold.append(tt_compile(text, cold_dir)[0])
                shutil.rmtree(cold_dir, ignore_errors=True)  # (a loaded library stays mapped)
                tw, _, st = tt_compile(text, warm_dir)
                warm.append(tw)
                warm_misses += st.get("compiles", 0)
        for key, ts in (("export", exps), ("compile_cold", cold), ("compile_warm", warm)):
            r = rows[key]
            r.xla_median_s = statistics.median(xs)
            if not ts:
                continue
            r.reps = n
            r.tt_median_s = statistics.median(ts)
            ratios = [a / b for a, b in zip(ts, xs)]
            r.ratio_median = statistics.median(ratios)
            r.ratio_min, r.ratio_max = min(ratios), max(ratios)
            r.max_abs_err = inf.get("max_abs_err")
        shutil.rmtree(warm_dir, ignore_errors=True)
        inf["warm_cache_misses"] = warm_misses
        if warm_misses and rows["compile_warm"].status == "ok":
            rows["compile_warm"].message = (f"NOTE: C kernel cache missed {warm_misses}/{n} times (the generated "
                                            "C differs between compiles of the same text)")
        if cold:
            inf["export_plus_cold_over_xla"] = statistics.median(
                [(e + c) / xx for e, c, xx in zip(exps, cold, xs)])
            inf["export_plus_warm_over_xla"] = statistics.median(
                [(e + w) / xx for e, w, xx in zip(exps, warm, xs)])
    return results, info


# ---------------------------------------------------------------------------- report
def machine_info() -> dict:
    import jax
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from tt_xla.runtime import toolchain
        flags = " ".join(toolchain.FLAGS) + " + -O2 (kernels with much work) or -O1 (the rest)"
        cc = toolchain._compiler_version(tuple(toolchain._compiler())).splitlines()[0]
    except Exception as e:  # pragma: no cover
        flags, cc = f"? ({e})", "?"
    try:
        from tt_xla.runtime import default_device
        cfg = default_device().config
        dev = (f"grid {cfg.grid[0]}x{cfg.grid[1]}, {cfg.sram_per_core // 1024} KiB SRAM/core, "
               f"host_threads={cfg.host_threads}, {cfg.clock_ghz:g} GHz model")
    except Exception as e:  # pragma: no cover
        dev = f"? ({e})"
    return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(), jax=jax.__version__,
                numpy=np.__version__, tt_xla_flags=flags, cc=cc, device=dev)


def _fmt_t(t: float | None, unit: str) -> str:
    if t is None:
        return "-"
    if unit == "us":
        return f"{t * 1e6:.1f} us"
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.3f} s"


W = 52


def print_table(results: list[Result]) -> None:
    hdr = (f"{'benchmark':<17} {'what':<{W}} {'tt_xla':>11} {'XLA:CPU':>11} {'tt/XLA':>6} {'(min-max)':>13} "
           f"{'reps':>5}  status")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        if r.tt_median_s is None:
            status = r.status if r.status == "MISMATCH" else f"{r.status}: {r.message}"
            print(f"{r.name:<17} {r.desc[:W]:<{W}} {'-':>11} {_fmt_t(r.xla_median_s, r.unit):>11} {'-':>6} "
                  f"{'':>13} {'-':>5}  {status}")
            continue
        rng = f"({r.ratio_min:.2f}-{r.ratio_max:.2f})"
        status = "ok" if r.status == "ok" else f"{r.status}: {r.message}"
        if r.status == "ok" and r.message:
            status += f"  {r.message}"
        print(f"{r.name:<17} {r.desc[:W]:<{W}} {_fmt_t(r.tt_median_s, r.unit):>11} "
              f"{_fmt_t(r.xla_median_s, r.unit):>11} {r.ratio_median:>6.2f} {rng:>13} {r.reps:>5}  {status}")


def print_kernel_split(results: list[Result]) -> None:
    """tt_xla's time per call split into the kernels (inside runtime launches) and the rest
    (host<->device transfers, argument binding, Python)."""
    rows = [r for r in results if r.tt_kernel_s is not None and r.tt_median_s]
    if not rows:
        return
    print(f"\n{'tt_xla per call':<17} {'total':>11} {'kernels':>11} {'transfer+host':>14} {'kernels/XLA':>11}")
    for r in rows:
        other = max(r.tt_median_s - r.tt_kernel_s, 0.0)
        kx = f"{r.tt_kernel_s / r.xla_median_s:.2f}" if r.xla_median_s else "-"
        print(f"{r.name:<17} {_fmt_t(r.tt_median_s, r.unit):>11} {_fmt_t(r.tt_kernel_s, r.unit):>11} "
              f"{_fmt_t(other, r.unit):>14} {kx:>11}")


def _abs_ratio(by: dict, a: str, b: str, side: str) -> str:
    ra, rb = by.get(a), by.get(b)
    ta = getattr(ra, side) if ra else None
    tb = getattr(rb, side) if rb else None
    return f"{ta / tb:.2f}" if ta and tb else "n/a"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer reps (CI smoke)")
    p.add_argument("--only", default="", help="comma-separated benchmark names (compile: the compile-time rows)")
    p.add_argument("--json", default=None, help="write results to this path")
    p.add_argument("--reps", type=int, default=None, help="timed pairs per benchmark (default: ~1.5 s worth)")
    p.add_argument("--list", action="store_true", help="list benchmark names and exit")
    a = p.parse_args(argv)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass

    benches = benchmarks()
    names = [b.name for b in benches] + ["compile", "act_ratios"]
    if a.list:
        print("\n".join(names))
        return 0
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in names]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; known: {', '.join(names)}")
    if only:
        benches = [b for b in benches if b.name in only]
    target = 0.25 if a.quick else 1.5

    info = machine_info()
    print("tt-xla benchmarks: tt_xla vs XLA:CPU (jax.jit), interleaved pairs, "
          "ratio = median over pairs of tt_time / xla_time (< 1: tt_xla faster)")
    print(f"cpu: {info['cpu']}, {info['cores']} cores | python {info['python']} | jax {info['jax']} | "
          f"numpy {info['numpy']}")
    print(f"tt_xla kernel build: {info['cc']}; flags: {info['tt_xla_flags']}")
    print(f"tt device: {info['device']}")
    print(f"mode: {'quick' if a.quick else 'full'}" + (f", reps={a.reps}" if a.reps else "") + "\n")

    t_start = time.perf_counter()
    results: list[Result] = []
    for b in benches:
        t0 = time.perf_counter()
        r = run(b, quick=a.quick, reps=a.reps, target_s=target, max_reps=b.max_reps)
        r.extra["wall_s"] = round(time.perf_counter() - t0, 2)
        results.append(r)
        print(f"  [{b.name}: {r.status}, {r.extra['wall_s']:.1f} s]", file=sys.stderr, flush=True)
    compile_info: dict = {}
    if not only or "compile" in only:
        t0 = time.perf_counter()
        rows, compile_info = compile_bench(a.quick, a.reps)
        results.extend(rows)
        print(f"  [compile: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)

    print()
    print_table(results)
    print_kernel_split(results)
    by = {r.name: r for r in results}
    for tag, inf in compile_info.items():
        if "error" in inf:
            print(f"\ncompile ({tag}): {inf['error']}")
        else:
            print(f"\ncompile ({tag}): {inf.get('kernels', '?')} kernels, {inf.get('c_source_chars', 0):,} chars of C "
                  f"from {inf.get('stablehlo_chars', 0):,} chars of StableHLO; what a first tt_xla.jit call waits "
                  f"for vs XLA: (export + cold) / XLA = {inf.get('export_plus_cold_over_xla', float('nan')):.2f}, "
                  f"(export + warm) / XLA = {inf.get('export_plus_warm_over_xla', float('nan')):.2f}")

    model = {}
    if {"relu", "elu", "elu_composite"} & set(by):
        print()
        print(f"ELU / ReLU (tt): {_abs_ratio(by, 'elu', 'relu', 'tt_median_s')}  "
              f"(XLA:CPU: {_abs_ratio(by, 'elu', 'relu', 'xla_median_s')})")
        print(f"ELU / composite (tt): {_abs_ratio(by, 'elu', 'elu_composite', 'tt_median_s')}  "
              f"(XLA:CPU: {_abs_ratio(by, 'elu', 'elu_composite', 'xla_median_s')})")
        fns = _fns()
        x = (_normal(np.random.default_rng(0), (M4 // 16 if a.quick else M4,), scale=2.0),)
        for name in ("relu", "elu", "elu_composite"):
            try:
                model[name] = device_model(fns[name], x)
            except Exception as e:
                model[name] = {"error": f"{type(e).__name__}: {e}"}
        keys = ("modeled_cycles", "dram_bytes_read", "dram_bytes_written", "vector_ops", "kernels_launched")
        for name, c in model.items():
            if "error" in c:
                print(f"device model {name}: {c['error']}")
            else:
                print(f"device model {name:<14} " + "  ".join(f"{k}={c[k]:,}" for k in keys))
        try:
            print(f"modeled ELU / ReLU (device model): "
                  f"{model['elu']['modeled_cycles'] / model['relu']['modeled_cycles']:.2f}")
            print(f"modeled ELU / composite (device model): "
                  f"{model['elu']['modeled_cycles'] / model['elu_composite']['modeled_cycles']:.2f}")
        except (KeyError, ZeroDivisionError, TypeError):
            print("modeled ELU / ReLU (device model): n/a")

    acts: dict = {}
    if not only or "act_ratios" in only:
        n, rounds = (M4 // 16, 21) if a.quick else (M4, a.reps or 41)
        acts = activations.measure(n, rounds)
        print()
        print(activations.report(acts, n, rounds))

    total = time.perf_counter() - t_start
    print(f"\ntotal benchmark time: {total:.1f} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(machine=info, quick=a.quick, results=[r.to_json() for r in results],
                           compile=compile_info, device_model=model, act_ratios=acts, total_s=total), fh, indent=2)
        print(f"wrote {a.json}")
    return 0
