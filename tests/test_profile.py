"""Profiles (tt_xla/profile.py): a row per kernel launched, totals equal to the device counters'
deltas, and a Perfetto trace with one track group per core and no overlapping slices."""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import tt_xla
from tt_xla.__main__ import main


def _block(x, w1, w2):
    h = jax.nn.gelu(x @ w1)
    y = h @ w2 + x
    return y / jnp.sqrt(jnp.mean(y * y, axis=-1, keepdims=True) + 1e-6), jnp.max(h, axis=0)


def _args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((96, 64)).astype(np.float32), rng.standard_normal((64, 200)).astype(np.float32),
            rng.standard_normal((200, 64)).astype(np.float32))


def test_profile_rows_and_totals_match_the_device_counters():
    f = tt_xla.jit(_block)
    args = _args()
    rep = f.profile(*args)
    kernels = f.kernels(*args)
    assert [k.name for k in rep.kernels] == [k.name for k in kernels]
    c = rep.counters
    assert c["kernels_launched"] == len(rep.kernels) >= 3 and c["programs_launched"] == 1
    assert sum(k.modeled_cycles for k in rep.kernels) == c["modeled_cycles"]
    assert sum(k.dma_bytes for k in rep.kernels) == c["dma_bytes"] - c["noc_bytes"] > 0  # DRAM
    assert sum(k.noc_bytes for k in rep.kernels) == c["noc_bytes"]
    for k in rep.kernels:
        assert 1 <= k.cores <= 64 and k.bound in ("compute", "memory") and k.host_ns > 0
        assert 0 < k.roofline_fraction <= 1.0
        assert sum(s["dma_bytes"] for s in k.core_stats) == k.dma_bytes + k.noc_bytes
        assert sum(1 for s in k.core_stats if s["dma_bytes"] or s["compute_cycles"]) <= k.cores
    table = str(rep)
    lines = table.splitlines()
    rows = lines[lines.index("-" * len(lines[1])) + 1:-2]
    assert [r.split()[0] for r in rows] == [k.name for k in rep.kernels]  # a row per kernel
    total = lines[-1].split()
    assert total[0] == "total" and float(total[1]) == pytest.approx(rep.modeled_us, abs=0.01)
    for want, got in zip(jax.jit(_block)(*args), rep.result):  # the profiled call's result
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-4, atol=2e-4)


def _check_trace(trace: str, ncores: int, nkernels: int) -> None:
    doc = json.loads(trace)
    ev = doc["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
    cores = [n for n in names.values() if n.startswith("core ")]
    assert len(cores) == len(set(cores)) == ncores  # one track group per core of the grid
    tracks = defaultdict(list)
    for e in ev:
        if e["ph"] == "X":
            assert e["dur"] >= 0 and e["ts"] >= 0
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["dur"]))
    assert len(tracks[(0, 0)]) == nkernels
    assert any(pid > 0 for pid, _ in tracks)  # the cores' DMA / compute slices
    for key, sl in tracks.items():
        sl.sort()
        for (t0, d0), (t1, _) in zip(sl, sl[1:]):
            assert t0 + d0 <= t1 + 1e-9, f"overlapping slices on track {key}"


def test_trace_is_valid_json_with_a_track_per_core():
    rep = tt_xla.jit(_block).profile(*_args())
    _check_trace(rep.trace, 64, len(rep.kernels))


def test_exe_profile_and_cli(tmp_path, capsys):
    x = np.ones((40, 70), np.float32)
    text = jax.export.export(jax.jit(jnp.tanh))(jax.ShapeDtypeStruct(x.shape, x.dtype)).mlir_module()
    exe = tt_xla.compile(text)
    rep = exe.profile(x)
    np.testing.assert_allclose(np.asarray(rep.result[0]), np.tanh(x), rtol=1e-6)
    assert len(rep.kernels) == 1 and rep.counters["kernels_launched"] == 1
    mlir = tmp_path / "tanh.mlir"
    mlir.write_text(text)
    out = tmp_path / "trace.json"
    assert main(["profile", str(mlir), "--trace", str(out), "-O", "2", "--device", "n150"]) == 0
    printed = capsys.readouterr().out
    assert "modeled us" in printed and "total" in printed and str(out) in printed
    _check_trace(out.read_text(), 64, 1)
