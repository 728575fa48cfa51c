"""Modeled-device figures (the cost model's counters, not host time): what the compiler's choices
do to the modeled chip, and how the model compares with published n150 figures.

    PYTHONPATH=. python -m benchmarks.device_model                  # every section
    PYTHONPATH=. python -m benchmarks.device_model placement matmul # some of them

Sections:
  activations  modeled ELU/ReLU and ELU/composite on 4M f32, at every optimization level
  fusion       fusion efficiency of elementwise graphs: modeled DRAM bytes / (inputs + outputs)
  placement    a transformer block (forward and value_and_grad): DRAM bytes at levels 0, 1, 2
  matmul       modeled 2048^3 bf16 matmul as a fraction of the matrix engine's peak; 4096^3 at
               HiFi4 beside tt-metal's 16384^3 figure
  llama        a Llama-3.2-1B-shaped decoder, batch 1, KV cache, a few decode steps (tok/s/user), in
               bf16, bfp8 MLP, and the formats of tt-metal's published run
  resnet       a ResNet-50-shaped CNN at batch 16, 224x224 (images/s)

Every figure is from the device counters of one run after a warm-up (modeled cycles at the
preset's clock); results are compared with CPU JAX where it is cheap (the llama and resnet
sections only check that outputs are finite: they are figures, not tests).
"""
from __future__ import annotations

import sys
import time

import numpy as np

LEVELS = (0, 1, 2)
PUBLISHED = {  # tt-metal, n150 (models/tt_transformers/PERF.md, models/README.md)
    "resnet_img_s": 4700.0,        # ResNet-50 224x224, batch 16
    "matmul_tflops_hifi4": 54.3,   # bf16 16384^3 at HiFi4
}


def _device():
    import tt_xla
    return tt_xla.client().devices()[0].runtime_device


def modeled(fn, args, level: int = 0, device=None, reps: int = 1):
    """(outputs, device counters over `reps` calls after one warm-up call) of `fn` compiled at
    `level` for `device` (None: the default client's; else a preset name or device file)."""
    import tt_xla
    if device is None:
        f = tt_xla.jit(fn, compiler_options={"optimization_level": level})
    else:
        exe = tt_xla.compile(tt_xla.jit(fn).lower(*args).as_text(),
                             compiler_options={"optimization_level": level}, device=device)
        f = lambda *a: exe(*a)  # noqa: E731
    out = f(*args)
    dev = tt_xla.client(device).devices()[0].runtime_device
    dev.reset_counters()
    for _ in range(reps):
        out = f(*args)
    return out, dev.counters()


def dram(c: dict) -> int:
    """DRAM bytes the cores moved (DMA less what went over the NoC to SRAM-placed tensors)."""
    return c["dma_bytes"] - c["noc_bytes"]


# ---------------------------------------------------------------------------- sections
def activations() -> list[str]:
    import jax
    import jax.numpy as jnp
    x = np.random.default_rng(0).standard_normal(1 << 22, dtype=np.float32) * 2
    fns = {"relu": jax.nn.relu, "elu": jax.nn.elu,
           "elu_composite": lambda v: jax.nn.relu(v) - jax.nn.relu(1 - jnp.exp(v))}
    lines = ["activations (modeled cycles, f32[4M]):"]
    for level in LEVELS:
        cyc = {k: modeled(f, (x,), level)[1]["modeled_cycles"] for k, f in fns.items()}
        lines.append(f"  level {level}: relu {cyc['relu']:,}  elu {cyc['elu']:,}  composite {cyc['elu_composite']:,}"
                     f"  ELU/ReLU {cyc['elu'] / cyc['relu']:.2f}  ELU/composite {cyc['elu'] / cyc['elu_composite']:.2f}")
    return lines


def _adam(p, g, m, v):
    m2 = 0.9 * m + 0.1 * g
    v2 = 0.999 * v + 0.001 * g * g
    return p - 1e-3 * m2 / (v2 ** 0.5 + 1e-8), m2, v2


def fusion() -> list[str]:
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal((1000, 1000), dtype=np.float32) for _ in range(3))
    graphs = {"gelu(a*b+c)": (lambda a, b, c: jax.nn.gelu(a * b + c), (a, b, c)),
              "tanh(a)+sin(b)*c, exp(a)": (lambda a, b, c: (jnp.tanh(a) + jnp.sin(b) * c, jnp.exp(a)), (a, b, c)),
              "where(a>0, b, c)**2": (lambda a, b, c: jnp.where(a > 0, b, c) ** 2, (a, b, c)),
              "a*b+1, exp(a)-b": (lambda a, b: (a * b + 1, jnp.exp(a) - b), (a, b)),
              "erf-gelu(a)*2, +1": (lambda a: (jax.nn.gelu(a, approximate=False) * 2,
                                               jax.nn.gelu(a, approximate=False) + 1), (a,)),
              "adam(p=a, g=b, m=c, v=|a|)": (_adam, (a, b, c, np.abs(a)))}
    lines = ["fusion efficiency (modeled DRAM bytes / (inputs + outputs)):"]
    for name, (fn, args) in graphs.items():
        for level in LEVELS:
            out, cnt = modeled(fn, args, level)
            outs = out if isinstance(out, tuple) else (out,)
            io = sum(v.nbytes for v in args) + sum(np.asarray(o).nbytes for o in outs)
            lines.append(f"  {name:<26} level {level}: {dram(cnt):,} / {io:,} = {io / dram(cnt):.2f}")
    return lines


def placement() -> list[str]:
    import jax
    from .suite import _transformer
    init, make_step = _transformer(seq=128, d=128, heads=4, mlp=512, layers=1)
    ps, x, y = init(np.random.default_rng(0))
    lines = ["transformer block (seq 128, d 128, 4 heads, mlp 512, f32): modeled DRAM bytes by level"]
    for grad in (False, True):
        fn = make_step(grad)
        ref = jax.tree_util.tree_leaves(jax.jit(fn)(ps, x, y))
        got, cnt = {}, {}
        for level in LEVELS:
            out, cnt[level] = modeled(fn, (ps, x, y), level)
            got[level] = [np.asarray(v) for v in jax.tree_util.tree_leaves(out)]
        same = all(all(np.array_equal(a, b) for a, b in zip(got[0], got[lv])) for lv in LEVELS)
        err = max(float(np.max(np.abs(g - np.asarray(r)))) for g, r in zip(got[2], ref))
        name = "value_and_grad" if grad else "forward"
        for level in LEVELS:
            c = cnt[level]
            lines.append(f"  {name:<14} level {level}: DRAM DMA {dram(c):>11,}  NoC {c['noc_bytes']:>11,}  declared "
                         f"{c['dram_bytes_read'] + c['dram_bytes_written']:>11,}  modeled {c['modeled_cycles'] / 1e3:8.1f} us"
                         f"  level 0 / this: {dram(cnt[0]) / dram(c):.2f}x")
        lines.append(f"  {name:<14} results identical at every level: {same}; max |tt - CPU JAX| {err:.2e}")
    return lines


def _matmul_fraction(n: int, device=None) -> tuple[float, float, int]:
    import jax.numpy as jnp
    import ml_dtypes
    import tt_xla
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, n), dtype=np.float32).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((n, n), dtype=np.float32).astype(ml_dtypes.bfloat16)
    _, c = modeled(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32), (a, b), 0, device)
    cfg = tt_xla.client(device).devices()[0].runtime_device.config
    peak = cfg.ncores * 2 * 32 ** 3 / cfg.matrix_tile_cycles_bf16  # flop per cycle
    flop_per_cycle = 2 * n ** 3 / c["modeled_cycles"]
    return flop_per_cycle / peak, flop_per_cycle * cfg.clock_ghz / 1e3, c["modeled_cycles"]


def matmul() -> list[str]:
    import json
    import os
    import tempfile
    frac, tflops, cyc = _matmul_fraction(2048)
    lines = ["matmul (modeled):",
             f"  2048^3 bf16 on n150 (HiFi2): {cyc:,} cycles, {tflops:.1f} TFLOP/s, {frac:.2f} of the matrix engine's peak"]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "n150_hifi4.json")
        with open(path, "w") as f:
            json.dump({"name": "n150-hifi4", "base": "n150", "math_fidelity": {"f32": "HiFi4", "bf16": "HiFi4"}}, f)
        frac4, tflops4, cyc4 = _matmul_fraction(4096, path)
    pub = PUBLISHED["matmul_tflops_hifi4"]
    lines.append(f"  4096^3 bf16 on n150 at HiFi4: {tflops4:.1f} TFLOP/s ({frac4:.2f} of peak); published 16384^3 "
                 f"HiFi4: {pub} TFLOP/s -> modeled / published {tflops4 / pub:.2f}")
    return lines


# ---------------------------------------------------------------------------- validation models
BFP8_BYTES = 1 + 1 / 16  # bfloat8_b: a sign and 7-bit mantissa per value, an 8-bit exponent per 16
LLAMA_1B = dict(layers=16, d=2048, heads=32, kv_heads=8, head_dim=64, mlp=8192, vocab=128256)
LLAMA_3B = dict(layers=28, d=3072, heads=24, kv_heads=8, head_dim=128, mlp=8192, vocab=128256)
LLAMA_8B = dict(layers=32, d=4096, heads=32, kv_heads=8, head_dim=128, mlp=14336, vocab=128256)
# tt-metal models/tt_transformers/PERF.md, "Accuracy" table, N150, tokens/s/user. In that mode Llama 3
# runs bfp8 MLP, bfp8 attention weights and bfp8 KV cache (model_config.py: "Llama 3 ... models test
# insensitive to attention precision, using BFP8 attention and kv-cache ... even in accuracy mode"),
# and the demo builds the LM head in bfp8 (simple_text_demo.py: create_tt_model(dtype=ttnn.bfloat8_b)).
PUBLISHED_N150_LLAMA = {"1B": (LLAMA_1B, 84.7), "3B": (LLAMA_3B, 47.6), "8B": (LLAMA_8B, 25.2)}
LLAMA_MATRICES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")  # a layer's weight matrices
# weight formats, by matrix (anything not named: bf16)
LLAMA_FORMATS = {
    "bf16": {},
    "bfp8 MLP": {k: "bfp8" for k in ("w1", "w2", "w3")},
    "as published": {k: "bfp8" for k in (*LLAMA_MATRICES, "lm_head")},
}


def llama_weight_bytes(cfg: dict, formats: dict) -> float:
    """The weight matrices' bytes one decode step reads (every layer, then the LM head)."""
    d, H, KV, hd, m = cfg["d"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["mlp"]
    shapes = dict(wq=d * H * hd, wk=d * KV * hd, wv=d * KV * hd, wo=H * hd * d, w1=d * m, w3=d * m, w2=m * d)
    per = lambda k: BFP8_BYTES if formats.get(k) == "bfp8" else 2  # noqa: E731
    return (cfg["layers"] * sum(n * per(k) for k, n in shapes.items())
            + cfg["vocab"] * d * per("lm_head"))


def published_llama_fit() -> tuple[float, float]:
    """(fixed ms per token, GB/s) of the least-squares line time = fixed + weight bytes / bandwidth
    through tt-metal's three published N150 decode figures (1B, 3B, 8B, all in the published formats)."""
    x = np.array([llama_weight_bytes(c, LLAMA_FORMATS["as published"]) / 1e9 for c, _ in PUBLISHED_N150_LLAMA.values()])
    y = np.array([1e3 / t for _, t in PUBLISHED_N150_LLAMA.values()])
    slope, fixed = np.polyfit(x, y, 1)
    return float(fixed), float(1e3 / slope)


def llama_decode_fn(cfg: dict, ctx: int):
    """One decode step of a Llama-3-shaped decoder (RMSNorm, RoPE, GQA with a KV cache of `ctx`
    positions updated in place by dynamic_update_slice, SwiGLU MLP, an LM head of its own [d, vocab]
    as tt-metal stores the (tied) output weights), batch 1, the next token chosen on the device by
    argmax as tt-metal's demo does. (params, token[1] int32, pos int32, k_cache, v_cache) ->
    (logits, next token[1] int32, k_cache, v_cache)."""
    import jax
    import jax.numpy as jnp
    L, H, KV, hd = cfg["layers"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]

    def rms(x, g):
        x32 = x.astype(jnp.float32)
        return (x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + 1e-5)).astype(jnp.bfloat16) * g

    def rope(x, pos):  # x [heads, hd]
        inv = 1.0 / (500000.0 ** (jnp.arange(0, hd, 2, dtype=jnp.float32) / hd))
        ang = pos.astype(jnp.float32) * inv
        c, s = jnp.cos(ang), jnp.sin(ang)
        x1, x2 = x[:, 0::2].astype(jnp.float32), x[:, 1::2].astype(jnp.float32)
        return jnp.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).reshape(x.shape).astype(jnp.bfloat16)

    def mm(x, w):
        return jnp.matmul(x, w, preferred_element_type=jnp.float32).astype(jnp.bfloat16)

    def step(p, token, pos, kc, vc):
        x = p["embed"][token]                                   # [1, d]
        mask = jnp.arange(ctx) <= pos
        for i in range(L):
            w = p["layers"][i]
            h = rms(x, w["ln1"])
            q = rope(mm(h, w["wq"]).reshape(H, hd), pos)
            k = rope(mm(h, w["wk"]).reshape(KV, hd), pos)
            v = mm(h, w["wv"]).reshape(KV, hd)
            kc = jax.lax.dynamic_update_slice(kc, k[None, :, None, :], (i, 0, pos, 0))
            vc = jax.lax.dynamic_update_slice(vc, v[None, :, None, :], (i, 0, pos, 0))
            qg = q.reshape(KV, H // KV, hd)
            s = jnp.einsum("gqd,gkd->gqk", qg, kc[i], preferred_element_type=jnp.float32) / np.float32(np.sqrt(hd))
            a = jax.nn.softmax(jnp.where(mask, s, -jnp.inf), -1).astype(jnp.bfloat16)
            o = jnp.einsum("gqk,gkd->gqd", a, vc[i], preferred_element_type=jnp.float32).astype(jnp.bfloat16)
            x = x + mm(o.reshape(1, H * hd), w["wo"])
            h = rms(x, w["ln2"])
            x = x + mm(jax.nn.silu(mm(h, w["w1"])) * mm(h, w["w3"]), w["w2"])
        x = rms(x, p["norm"])
        logits = jnp.matmul(x, p["lm_head"], preferred_element_type=jnp.float32)
        return logits, jnp.argmax(logits, -1).astype(jnp.int32), kc, vc

    return step


def llama_params(cfg: dict, rng) -> dict:
    """Random bf16 weights. One layer's arrays are bound for every layer (the modeled DRAM
    traffic counts each layer's reads alike; the host keeps one copy)."""
    import ml_dtypes
    d, H, KV, hd, m = cfg["d"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["mlp"]

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[0])).astype(ml_dtypes.bfloat16)
    one = dict(ln1=np.ones(d, ml_dtypes.bfloat16), ln2=np.ones(d, ml_dtypes.bfloat16),
               wq=w(d, H * hd), wk=w(d, KV * hd), wv=w(d, KV * hd), wo=w(H * hd, d),
               w1=w(d, m), w3=w(d, m), w2=w(m, d))
    embed = np.empty((cfg["vocab"], d), ml_dtypes.bfloat16)
    for r in range(0, cfg["vocab"], 8192):  # in pieces: no 1 GiB f32 temporary
        embed[r:r + 8192] = (rng.standard_normal((min(8192, cfg["vocab"] - r), d), dtype=np.float32) * 0.02)
    return dict(embed=embed, lm_head=np.ascontiguousarray(embed.T), norm=np.ones(d, ml_dtypes.bfloat16),
                layers=[one] * cfg["layers"])


def llama(steps: int = 3, ctx: int = 256, level: int = 2) -> list[str]:
    lines = []
    runs = {fmt: _llama_run(LLAMA_1B, steps, ctx, level, fmt) for fmt in LLAMA_FORMATS}
    for r in runs.values():
        lines += r["lines"]
    b16 = runs["bf16"]
    for fmt, r in runs.items():
        if fmt != "bf16":
            d = float(np.abs(r["first"] - b16["first"]).max())  # the first token's logits, same inputs
            lines.append(f"  {fmt} vs bf16: DRAM bytes per token {r['dram'] / b16['dram']:.3f}x, modeled device time "
                         f"{r['cyc'] / b16['cyc']:.3f}x; max |logits - bf16's| {d:.3g} (logits' scale {b16['scale']:.3g})")
    fixed, gbps = published_llama_fit()
    pub = runs["as published"]
    lines.append(f"  tt-metal's own N150 figures (1B {PUBLISHED_N150_LLAMA['1B'][1]}, 3B {PUBLISHED_N150_LLAMA['3B'][1]}, "
                 f"8B {PUBLISHED_N150_LLAMA['8B'][1]} tok/s/user, published formats) lie on ms/token = {fixed:.2f} + "
                 f"weight GB / {gbps:.0f} GB/s: the bandwidth is what the preset streams DRAM at; the fixed "
                 f"{fixed:.2f} ms compares with this model's {pub['fixed_ms']:.2f} ms beyond its weight products "
                 f"(launches of everything else {pub['other_ms']:.2f} ms + host step {pub['host_ms']:.2f} ms)")
    return lines


def _llama_run(cfg: dict, steps: int, ctx: int, level: int, fmt: str) -> dict:
    """Decode `steps` tokens with the weight matrices stored as LLAMA_FORMATS[fmt] (compiler_options
    weight_format, by flat argument leaf; the rest bf16)."""
    import jax
    import ml_dtypes
    import tt_xla
    from tt_xla.presets import load_device
    formats = LLAMA_FORMATS[fmt]
    t0 = time.perf_counter()
    p = llama_params(cfg, np.random.default_rng(3))
    kc = np.zeros((cfg["layers"], cfg["kv_heads"], ctx, cfg["head_dim"]), ml_dtypes.bfloat16)
    vc = np.zeros_like(kc)
    tok = np.array([1], np.int32)
    options = {"optimization_level": level}
    if formats:
        leaves = jax.tree_util.tree_flatten_with_path((p, tok, np.int32(0), kc, vc))[0]
        options["weight_format"] = {i: "bfp8" for i, (path, _) in enumerate(leaves)
                                    if formats.get(getattr(path[-1], "key", None)) == "bfp8"}
    step = tt_xla.jit(llama_decode_fn(cfg, ctx), compiler_options=options)
    dev = _device()
    logits, tok, kc, vc = step(p, tok, np.int32(0), kc, vc)  # compile + first token
    first = np.asarray(logits).copy()
    t1 = time.perf_counter()
    dev.reset_counters()
    for i in range(steps):
        logits, tok, kc, vc = step(p, tok, np.int32(1 + i), kc, vc)  # the token stays on the device
    c = dev.counters()
    rep = step.profile(p, tok, np.int32(1 + steps), kc, vc)  # one more step, kernel by kernel
    big = [k for k in rep.kernels if k.kind == "matmul" and k.dma_bytes > 1 << 20]  # not the KV-cache reads
    products = sum(k.modeled_cycles for k in big)
    other = rep.counters["modeled_cycles"] - products
    spec = load_device(None)
    cyc = c["modeled_cycles"] / steps
    clock = dev.config.clock_ghz
    dev_ms = cyc / (clock * 1e6)
    e2e_ms = dev_ms + spec.host_step_us / 1e3
    tps = 1e3 / e2e_ms
    weights = llama_weight_bytes(cfg, formats)
    bw = spec.dram_achieved_gb_per_s
    launches = c["kernels_launched"] / steps
    finite = bool(np.isfinite(np.asarray(logits)).all())
    what = {"bf16": "bf16 weights", "bfp8 MLP": "bfp8 MLP, bf16 attention and LM head",
            "as published": "bfp8 MLP, attention and LM head, as tt-metal's published run"}[fmt]
    name = next(n for n, (c, _) in PUBLISHED_N150_LLAMA.items() if c is cfg)
    pub = PUBLISHED_N150_LLAMA[name][1]
    lines = [f"Llama-3-{name}-shaped decode on n150 ({what}; batch 1, ctx {ctx}, level {level}, {steps} steps; "
             f"host {time.perf_counter() - t1:.1f} s, setup+compile {t1 - t0:.1f} s):",
             f"  modeled {dev_ms:.2f} ms/token on the device + {spec.host_step_us / 1e3:.2f} ms host step = "
             f"{e2e_ms:.2f} ms = {tps:.1f} tok/s/user; published {pub} -> modeled / published {tps / pub:.2f}",
             f"  per token: {len(big)} weight products {products / (clock * 1e6):.2f} ms (their {weights / 1e9:.3f} GB at "
             f"{bw:.0f} GB/s: {weights / bw / 1e6:.2f} ms), the other {launches - len(big):.0f} of {launches:.0f} launches "
             f"{other / (clock * 1e6):.2f} ms ({dev.config.launch_cycles / (clock * 1e3):.2f} us launch cost each); "
             f"DRAM DMA {dram(c) / steps / 1e9:.3f} GB; logits finite: {finite}"]
    return dict(lines=lines, cyc=cyc, dram=dram(c) / steps, first=first, scale=float(np.abs(first).max()),
                fixed_ms=e2e_ms - products / (clock * 1e6), other_ms=other / (clock * 1e6),
                host_ms=spec.host_step_us / 1e3)


def resnet50_fn():
    """ResNet-50's layer shapes (bottleneck blocks 3-4-6-3, widths 64..512 x4), inference, with
    batch norm folded into per-channel scale and bias; NHWC bf16 activations, f32 accumulation."""
    import jax
    import jax.numpy as jnp

    def conv(x, w, stride=1):
        k = w.shape[0]
        return jax.lax.conv_general_dilated(x, w, (stride, stride), [(k // 2, k // 2)] * 2,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            preferred_element_type=jnp.float32)

    def cbr(x, p, stride=1, relu=True):
        y = conv(x, p["w"], stride) * p["s"] + p["b"]
        return (jax.nn.relu(y) if relu else y).astype(jnp.bfloat16)

    def forward(params, x):
        x = cbr(x, params["stem"], 2)
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                  [(0, 0), (1, 1), (1, 1), (0, 0)]).astype(jnp.bfloat16)
        for stage in params["stages"]:
            for j, blk in enumerate(stage):
                stride = 2 if j == 0 and "down" in blk and blk["stride"] == 2 else 1
                h = cbr(x, blk["c1"])
                h = cbr(h, blk["c2"], stride)
                h = cbr(h, blk["c3"], relu=False)
                sc = cbr(x, blk["down"], stride, relu=False) if "down" in blk else x
                x = jax.nn.relu(h + sc).astype(jnp.bfloat16)
        pooled = jnp.mean(x.astype(jnp.float32), (1, 2))
        return pooled @ params["fc"]

    return forward


def resnet50_params(rng) -> dict:
    import ml_dtypes

    def cp(k, cin, cout):
        w = (rng.standard_normal((k, k, cin, cout), dtype=np.float32) * np.sqrt(2 / (k * k * cin)))
        return dict(w=w.astype(ml_dtypes.bfloat16), s=np.ones(cout, np.float32), b=np.zeros(cout, np.float32))
    params = dict(stem=cp(7, 3, 64), stages=[])
    cin = 64
    for i, (n, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        stage = []
        for j in range(n):
            blk = dict(c1=cp(1, cin, width), c2=cp(3, width, width), c3=cp(1, width, width * 4))
            if j == 0:
                blk["down"] = cp(1, cin, width * 4)
                blk["stride"] = 1 if i == 0 else 2
            stage.append(blk)
            cin = width * 4
        params["stages"].append(stage)
    params["fc"] = (rng.standard_normal((2048, 1000), dtype=np.float32) * 0.01)
    return params


def resnet(batch: int = 16, level: int = 2) -> list[str]:
    import ml_dtypes
    import tt_xla
    rng = np.random.default_rng(4)
    params = resnet50_params(rng)
    strides = [[b.pop("stride", None) for b in st] for st in params["stages"]]  # static, not an argument
    fwd = resnet50_fn()

    def model(p, x):
        for st, ss in zip(p["stages"], strides):
            for b, s in zip(st, ss):
                if s is not None:
                    b["stride"] = s
        return fwd(p, x)
    x = rng.standard_normal((batch, 224, 224, 3), dtype=np.float32).astype(ml_dtypes.bfloat16)
    t0 = time.perf_counter()
    f = tt_xla.jit(model, compiler_options={"optimization_level": level})
    out = f(params, x)
    t1 = time.perf_counter()
    dev = _device()
    rep = f.profile(params, x)
    out, c = rep.result, rep.counters
    clock = dev.config.clock_ghz
    ips = batch * clock * 1e9 / c["modeled_cycles"]
    pub = PUBLISHED["resnet_img_s"]
    flops = 2 * 4.1e9 * batch  # ResNet-50 at 224x224: about 4.1 G multiply-adds per image
    allowed = batch / pub * dev.config.dram_bytes_per_cycle * clock * 1e9  # DRAM bytes the published time allows
    moves = sum(k.dma_bytes for k in rep.kernels if k.kind == "movement")  # pads, the pooling's padded copy, strided shortcuts
    mm = [k for k in rep.kernels if k.kind == "matmul"]
    compute = sum(max(s["compute_cycles"] for s in k.core_stats) for k in mm)
    # where the time goes: kernels by kind and by what bounds their slowest core (matrix/vector
    # compute, the shared DRAM at the preset's bandwidth, or the core's own NoC link)
    parts: dict[tuple[str, str], list[float]] = {}
    for k in rep.kernels:
        comp = max((s["compute_cycles"] for s in k.core_stats), default=0)
        dram_c = k.dma_bytes / dev.config.dram_bytes_per_cycle
        link = max((s["dma_bytes"] for s in k.core_stats), default=0) / dev.config.noc_bytes_per_cycle
        bound = "compute" if comp >= max(dram_c, link) else "DRAM" if dram_c >= link else "NoC link"
        p = parts.setdefault((k.kind, bound), [0, 0.0, 0.0, 0.0])
        p[0] += 1
        p[1] += k.modeled_cycles / (clock * 1e3)
        p[2] += k.dma_bytes / 1e6
        p[3] += comp / (clock * 1e3)
    breakdown = [f"    {kind:<11} {bound:<8} bound: {n:3d} launches {us:7.0f} us, DRAM {mb:5.0f} MB, compute {cu:5.0f} us"
                 for (kind, bound), (n, us, mb, cu) in sorted(parts.items(), key=lambda kv: -kv[1][1])]
    return [f"ResNet-50-shaped CNN on n150 (batch {batch}, 224x224, bf16, level {level}; compile+first run "
            f"{t1 - t0:.1f} s, host {time.perf_counter() - t1:.1f} s):",
            f"  modeled {c['modeled_cycles'] / (clock * 1e6):.2f} ms/batch = {ips:,.0f} images/s; published {pub:,.0f} -> "
            f"modeled / published {ips / pub:.2f}",
            f"  {c['kernels_launched']} launches, DRAM DMA {dram(c) / 1e6:,.0f} MB (the published time allows at most "
            f"{allowed / 1e6:,.0f} MB at the DRAM bandwidth kernels reach; {moves / 1e6:,.0f} MB by movement kernels: pads and strided copies), "
            f"matmul compute {compute / (clock * 1e6):.2f} ms of the slowest cores "
            f"(~{flops / (c['modeled_cycles'] / (clock * 1e9)) / 1e12:.1f} TFLOP/s of useful work), "
            f"outputs finite: {bool(np.isfinite(np.asarray(out)).all())}",
            "  by kernel kind and bound (each launch includes the preset's launch cost):", *breakdown]


SECTIONS = {"activations": activations, "fusion": fusion, "placement": placement, "matmul": matmul,
            "llama": llama, "resnet": resnet}


def main(argv: list[str]) -> int:
    names = argv or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    for n in names:
        t = time.perf_counter()
        for line in SECTIONS[n]():
            print(line, flush=True)
        print(f"  ({n}: {time.perf_counter() - t:.1f} s on the host)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
