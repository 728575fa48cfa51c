"""Device presets and custom device files (tt_xla/presets.py), compiler_options, and results
on each preset equal to CPU JAX."""
from __future__ import annotations

import json

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import tt_xla
from tt_xla.compiler.options import CompilerOptions, CompilerOptionsError, compiler_options
from tt_xla.presets import PRESETS, DeviceSpecError, load_device
from tt_xla.runtime import DeviceConfig


def _text(f, *args) -> str:
    return jax.export.export(jax.jit(f))(*[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]).mlir_module()


# ------------------------------------------------------------------ presets
def test_presets_load_and_match_their_public_figures():
    n150, n300, p150 = (load_device(n) for n in ("n150", "n300", "p150"))
    assert n150.config == DeviceConfig()  # the runtime's default device is the n150 preset
    c = n150.config
    assert (c.grid, c.sram_per_core, c.dram_bytes, c.clock_ghz) == ((8, 8), 1499136, 12 << 30, 1.0)
    assert n150.dram_gb_per_s == 288.0 and n150.dram_achieved_gb_per_s == pytest.approx(240.0, abs=0.1)
    assert c.launch_cycles == 1720 and n150.host_step_us == 300.0
    assert (c.matrix_tile_cycles, c.matrix_tile_cycles_bf16, c.vector_tile_cycles) == (64, 32, 32)  # HiFi4, HiFi2
    assert n300.config.ncores == 128 and n300.dram_gb_per_s == 576.0 and "not modeled" in n300.description
    assert p150.config.ncores == 140 and p150.config.clock_ghz == 1.35
    assert p150.dram_gb_per_s == pytest.approx(512.0)
    assert p150.dram_achieved_gb_per_s == pytest.approx(512.0 * 0.878)
    assert p150.config.launch_cycles / p150.config.clock_ghz == pytest.approx(1720, abs=1)  # same us as Wormhole
    assert set(PRESETS) == {"n150", "n300", "p150"}


def test_dram_efficiency_scales_the_modeled_dram_time(tmp_path):
    """A DRAM-bound launch's modeled time is its DRAM bytes at peak x dram_efficiency: half the
    efficiency, (about) twice the time; the launch cost is the preset's, added once."""
    def f(x):
        return x + 1.0
    x = np.ones((1 << 20,), np.float32)
    cyc = {}
    for eff in (1.0, 0.5):
        p = tmp_path / f"eff{eff}.json"
        p.write_text(json.dumps({"name": f"eff{eff}", "dram_efficiency": eff, "launch_cycles": 1}))
        rt = tt_xla.client(device=str(p)).devices()[0].runtime_device
        exe = tt_xla.compile(_text(f, x), device=str(p))
        exe(x)
        rt.reset_counters()
        exe(x)
        c = rt.counters()
        dram = c["dma_bytes"] - c["noc_bytes"]
        assert dram >= 2 * x.nbytes
        cyc[eff] = c["modeled_cycles"] - c["kernels_launched"]  # less the launch cost
        assert cyc[eff] >= dram / (288.0 * eff) - 1  # never faster than the DRAM allows (whole cycles)
    assert cyc[0.5] == pytest.approx(2 * cyc[1.0], rel=0.02)


def test_host_step_is_not_device_time(tmp_path):
    """host_step_us is the host's time per program call: it never enters the modeled cycles."""
    x = np.ones((4096,), np.float32)
    cyc = []
    for us in (0.0, 5000.0):
        p = tmp_path / f"host{us}.json"
        p.write_text(json.dumps({"name": f"host{us}", "host_step_us": us}))
        assert load_device(p).host_step_us == us
        rt = tt_xla.client(device=str(p)).devices()[0].runtime_device
        exe = tt_xla.compile(_text(lambda v: v * 2.0, x), device=str(p))
        rt.reset_counters()
        exe(x)
        cyc.append(rt.counters()["modeled_cycles"])
    assert cyc[0] == cyc[1] > 0


def test_env_var_selects_the_default_device(monkeypatch):
    monkeypatch.setenv("TT_XLA_DEVICE", "p150")
    assert load_device().name == "p150"
    monkeypatch.delenv("TT_XLA_DEVICE")
    assert load_device().name == "n150"


def test_custom_device_file(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"name": "mine", "base": "n150", "grid": [4, 2], "clock_ghz": 2.0,
                             "dram_gb_per_s": 100.0, "math_fidelity": {"f32": "HiFi3", "bf16": "LoFi"}}))
    spec = load_device(p)
    c = spec.config
    assert spec.name == "mine" and c.grid == (4, 2) and c.clock_ghz == 2.0
    assert c.dram_bytes_per_cycle == pytest.approx(50.0 * 0.833)  # 100 GB/s at 2 GHz, at n150's efficiency
    assert spec.dram_gb_per_s == 100.0 and spec.host_step_us == 300.0
    assert (c.matrix_tile_cycles, c.matrix_tile_cycles_bf16) == (48, 16)
    assert c.sram_per_core == 1499136  # from the base preset
    cl = tt_xla.client(device=str(p))
    assert cl.devices()[0].core_grid == (4, 2) and "mine" in cl.devices()[0].device_kind
    assert tt_xla.client(device=str(p)) is cl  # one client per description


@pytest.mark.parametrize("content, message", [
    ('{"name": "x", "grid": [8, 8],}', r"bad\.json:1:\d+: not valid JSON"),
    ('[1, 2]', "one JSON object"),
    ('{"name": "x", "grdi": [8, 8]}', "unknown key.*'grdi'"),
    ('{"grid": [8, 8]}', "missing key 'name'"),
    ('{"name": "x", "base": "n999"}', "'base' must be a preset"),
    ('{"name": "x", "grid": [8, 0]}', "'grid' must be"),
    ('{"name": "x", "grid": [8, "8"]}', "'grid' must be"),
    ('{"name": "x", "clock_ghz": -1}', "'clock_ghz' must be a number"),
    ('{"name": "x", "sram_per_core": 1024}', "'sram_per_core' must be an integer"),
    ('{"name": "x", "vector_tile_cycles": 1.5}', "'vector_tile_cycles' must be an integer"),
    ('{"name": "x", "launch_cycles": true}', "'launch_cycles' must be an integer"),
    ('{"name": "x", "math_fidelity": {"f32": "HiFi5", "bf16": "LoFi"}}', "'math_fidelity' must be"),
    ('{"name": "x", "dram_efficiency": 1.2}', r"'dram_efficiency' must be a number in \(0, 1\]"),
    ('{"name": "x", "dram_efficiency": 0}', "'dram_efficiency' must be a number"),
    ('{"name": "x", "host_step_us": -5}', "'host_step_us' must be a number in"),
    ('{"name": "x", "host_step_us": "300"}', "'host_step_us' must be a number"),
    ('{"name": "x", "fidelity_tile_cycles": {"LoFi": 16}}', "'fidelity_tile_cycles' must be"),
])
def test_bad_device_files_give_clear_errors(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(DeviceSpecError, match=message):
        load_device(p)


def test_unknown_device_names():
    with pytest.raises(DeviceSpecError, match="unknown device 'n151'.*n150, n300, p150"):
        tt_xla.client(device="n151")
    with pytest.raises(DeviceSpecError, match="cannot read"):
        load_device("/nonexistent/dev.json")


@pytest.mark.parametrize("device", ["n150", "n300", "p150"])
def test_same_results_as_cpu_jax_on_each_preset(device):
    def f(x, w, b):
        return jax.nn.elu(x @ w + b), jnp.sum(jnp.tanh(x), axis=1)

    rng = np.random.default_rng(1)
    x = rng.standard_normal((70, 45)).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    w = rng.standard_normal((45, 33)).astype(np.float32)
    b = rng.standard_normal(33).astype(np.float32)
    exe = tt_xla.compile(_text(f, x, w, b), device=device)
    import dataclasses
    assert dataclasses.replace(exe._loaded._rt.config, host_threads=0) == load_device(device).config
    got = exe(x, w, b)
    want = jax.jit(f)(x, w, b)
    for g, r in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-4)


def test_matrix_cycles_per_data_format():
    """The cores' compute time costs f32 tile products at the f32 fidelity (HiFi4: 64 cycles)
    and bf16 ones at the bf16 fidelity (HiFi2: 32) of the preset."""
    import ml_dtypes
    cfg = DeviceConfig()
    for dtype, cyc in ((np.float32, cfg.matrix_tile_cycles), (ml_dtypes.bfloat16, cfg.matrix_tile_cycles_bf16)):
        a = np.ones((256, 512), dtype)
        exe = tt_xla.compile(_text(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32), a, a.T))
        rep = exe.profile(a, np.ascontiguousarray(a.T))
        (k,) = [k for k in rep.kernels if "dot" in k.ops]
        tiles = sum(s["matrix_tiles"] for s in k.core_stats)
        vops = sum(s["vector_ops"] for s in k.core_stats)
        compute = sum(s["compute_cycles"] for s in k.core_stats)
        assert tiles == 8 * 8 * 16
        assert abs(compute - (tiles * cyc + vops * cfg.vector_tile_cycles)) <= k.cores  # per-core rounding


# ------------------------------------------------------------------ compiler_options
def test_compiler_options_validation():
    assert compiler_options(None) == CompilerOptions(0)
    assert compiler_options({"optimization_level": 2}).optimization_level == 2
    with pytest.raises(CompilerOptionsError, match="unknown compiler option.*'opt_level'.*optimization_level"):
        compiler_options({"opt_level": 1})
    for bad in (3, -1, True, "2", 1.0 + 0.5):
        with pytest.raises(CompilerOptionsError, match="optimization_level' must be one of 0, 1, 2"):
            compiler_options({"optimization_level": bad})
    with pytest.raises(CompilerOptionsError, match="must be a dict"):
        compiler_options([("optimization_level", 1)])
    with pytest.raises(CompilerOptionsError, match="unknown compiler option"):
        tt_xla.jit(jnp.sin, compiler_options={"fast": True})  # refused when jitting, not at the call
    with pytest.raises(CompilerOptionsError, match="must be one of"):
        tt_xla.compile("", compiler_options={"optimization_level": 9})


def test_compiler_options_are_part_of_the_cache_key():
    x = np.linspace(-3, 3, 100, dtype=np.float32)
    text = _text(lambda x: jnp.exp(x) * 2, x)
    c = tt_xla.client()
    n = c.compile_count
    e0 = c.compile(text)
    e1 = c.compile(text, compiler_options={"optimization_level": 1})
    e2 = c.compile(text, compiler_options={"optimization_level": 2})
    assert len({id(e0), id(e1), id(e2)}) == 3 and c.compile_count == n + 3
    assert c.compile(text, compiler_options={"optimization_level": 0}) is e0
    assert c.compile(text, compiler_options={"optimization_level": 2}) is e2 and c.compile_count == n + 3
    want = np.exp(x) * 2
    for level in (0, 1, 2):  # every level gives CPU JAX's results (level 2's placement is pending)
        f = tt_xla.jit(lambda x: jnp.exp(x) * 2, compiler_options={"optimization_level": level})
        np.testing.assert_allclose(np.asarray(f(x)), want, rtol=1e-6)


@pytest.mark.parametrize("device", ["n150", "p150"])
def test_products_split_over_every_core_of_the_preset(device):
    """A product's work items are at least the preset's cores (p150: 140, not the n150's 64), so
    every core computes; the values do not depend on the split."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((1024, 96)).astype(np.float32)
    b = rng.standard_normal((96, 1024)).astype(np.float32)
    exe = tt_xla.compile(_text(lambda a, b: a @ b, a, b), device=device)
    rep = exe.profile(a, b)
    (k,) = [k for k in rep.kernels if "dot" in k.ops]
    assert k.cores == load_device(device).config.ncores
    np.testing.assert_allclose(np.asarray(rep.result[0]), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("device", ["n150", "p150"])
def test_transposes_take_big_blocks_only_with_one_per_core(device):
    """A stored transpose works in 64x64 blocks only when there are at least as many blocks as
    the preset has cores: f32[600, 600].T has 100 of them, enough for the n150's 64 cores but not
    the p150's 140, which keeps 32x32 tiles (361) and every core busy."""
    x = np.random.default_rng(5).standard_normal((600, 600)).astype(np.float32)
    exe = tt_xla.compile(_text(lambda x: x.T + 1, x), device=device)
    (lk,) = exe.kernels()
    assert lk.work_items == (100 if device == "n150" else 361)
    np.testing.assert_array_equal(np.asarray(exe.profile(x).result[0]), x.T + 1)
