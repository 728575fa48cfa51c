"""Tests of the runtime's Python binding, the device toolchain and the native tree."""

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tt_xla.runtime as rt
from tt_xla.runtime import toolchain

ROOT = Path(__file__).resolve().parent.parent

ADD_SRC = r"""
#include "ttrt_kernel.h"
#define N %(n)d
static void add(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  const float *x = ops[0], *y = ops[1]; float *z = ops[2]; (void)c;
  for (int64_t i = begin; i < end; i++) z[i] = x[i] + y[i];
}
static const uint64_t bindings[3] = {N * 4, N * 4, N * 4};
static const tt_operand ops[3] = {{0, TT_READ, 0, N * 4}, {1, TT_READ, 0, N * 4}, {2, TT_WRITE, 0, N * 4}};
static const tt_launch launches[1] = {{"add", add, N, 3, ops, (N + 1023) / 1024, 0}};
static const tt_program_desc desc = {TT_ABI_VERSION, 3, bindings, 1, launches};
const tt_program_desc *tt_program_entry(void) { return &desc; }
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path / "kernels"))


@pytest.fixture
def dev():
    d = rt.Device(rt.DeviceConfig(host_threads=2))
    yield d
    d.close()


def test_roundtrip(dev):
    a = np.arange(1000, dtype=np.float32)
    b = dev.alloc(a.nbytes)
    b.write(a)
    out = np.empty_like(a)
    assert b.read_into(out) is out and np.array_equal(out, a)
    assert b.read() == a.tobytes()
    b.write(b"\x01\x02\x03", offset=8)
    assert b.read(8, 3) == b"\x01\x02\x03"
    c = dev.alloc(a.nbytes)
    c.copy_from(b)
    assert c.read() == b.read()
    z = dev.alloc(0)
    assert z.nbytes == 0 and z.read() == b""


def test_freed_buffer_refused(dev):
    b = dev.alloc(64)
    h = b.handle
    b.free()
    b.free()  # idempotent
    with pytest.raises(rt.DeviceError) as e:
        b.read()
    assert e.value.status == "TT_ERR_INVALID_HANDLE"
    with pytest.raises(rt.DeviceError):
        b.write(b"x")
    forged = rt.DeviceBuffer(dev, h, 64)  # stale handle from the C side's point of view
    with pytest.raises(rt.DeviceError, match="INVALID_HANDLE"):
        forged.read()
    forged.handle = 0


def test_out_of_range_and_oom():
    d = rt.Device(rt.DeviceConfig(dram_bytes=1 << 20, host_threads=1))
    b = d.alloc(100)
    with pytest.raises(rt.DeviceError) as e:
        b.write(b"x" * 101)
    assert e.value.status == "TT_ERR_OUT_OF_RANGE" and "outside" in e.value.message
    with pytest.raises(rt.DeviceError, match="OUT_OF_MEMORY"):
        d.alloc(2 << 20)
    d.close()
    with pytest.raises(rt.DeviceError):
        b.read()  # device closed


def test_counters(dev):
    dev.reset_counters()
    b = dev.alloc(256)
    b.write(bytes(256))
    b.read()
    k = dev.counters()
    assert set(k) == set(rt.COUNTER_NAMES)
    assert k["host_bytes_written"] == 256 and k["host_bytes_read"] == 256
    assert k["dram_bytes_allocated"] >= 256 and k["dram_bytes_peak"] >= k["dram_bytes_allocated"]
    dev.reset_counters()
    assert dev.counters()["host_bytes_written"] == 0


def test_program_launch(dev):
    n = 10007
    lib = rt.build_kernel_library(ADD_SRC % {"n": n})
    prog = dev.load_program(lib)
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    y = np.arange(n, dtype=np.float32)
    bx, by, bz = dev.alloc(x.nbytes), dev.alloc(y.nbytes), dev.alloc(x.nbytes)
    bx.write(x)
    by.write(y)
    dev.reset_counters()
    prog.launch([bx, by, bz])
    dev.synchronize()
    out = np.empty_like(x)
    bz.read_into(out)
    np.testing.assert_array_equal(out, x + y)
    k = dev.counters()
    assert k["programs_launched"] == 1 and k["kernels_launched"] == 1
    assert k["dram_bytes_read"] == 2 * n * 4 and k["dram_bytes_written"] == n * 4
    assert k["vector_ops"] == (n + 1023) // 1024 and k["modeled_cycles"] >= 1000 and k["busy_ns"] > 0
    # runtime refuses: wrong count, buffer too small, freed buffer
    with pytest.raises(rt.DeviceError, match="INVALID_ARGUMENT"):
        prog.launch([bx, by])
    small = dev.alloc(16)
    with pytest.raises(rt.DeviceError, match="OUT_OF_RANGE"):
        prog.launch([bx, by, small])
    by.free()
    with pytest.raises(rt.DeviceError, match="INVALID_HANDLE"):
        prog.launch([bx, by, bz])
    prog.unload()
    prog.unload()
    with pytest.raises(rt.DeviceError, match="INVALID_HANDLE"):
        prog.launch([bx, bx, bz])


def test_load_failures(dev, tmp_path):
    with pytest.raises(rt.DeviceError, match="LOAD_FAILED"):
        dev.load_program(tmp_path / "missing.so")
    bad = ADD_SRC.replace("{TT_ABI_VERSION, 3,", "{TT_ABI_VERSION + 7, 3,") % {"n": 8}
    with pytest.raises(rt.DeviceError, match="BAD_PROGRAM") as e:
        dev.load_program(rt.build_kernel_library(bad))
    assert "abi_version" in e.value.message


def test_toolchain_cache_hit():
    src = ADD_SRC % {"n": 33}
    before = dict(toolchain.stats)
    lib1 = rt.build_kernel_library(src)
    assert toolchain.stats["compiles"] == before["compiles"] + 1
    mtime = lib1.stat().st_mtime_ns
    lib2 = rt.build_kernel_library(src)
    assert lib2 == lib1 and lib1.stat().st_mtime_ns == mtime
    assert toolchain.stats["compiles"] == before["compiles"] + 1
    assert toolchain.stats["cache_hits"] == before["cache_hits"] + 1
    assert not list(lib1.parent.glob("*.tmp"))


def test_toolchain_error():
    with pytest.raises(rt.ToolchainError) as e:
        rt.build_kernel_library('#include "ttrt_kernel.h"\nint f(void) { return undefined_name_xyz; }\n')
    msg = str(e.value)
    assert "undefined_name_xyz" in msg
    assert e.value.source_path is not None and e.value.source_path.is_file()
    assert str(e.value.source_path) in msg


def test_include_dir():
    inc = rt.include_dir()
    assert (inc / "ttrt_kernel.h").is_file() and (inc / "ttrt.h").is_file()


def test_no_jax_import_in_runtime():
    for f in (ROOT / "tt_xla" / "runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "jax" or n.startswith(("jax.", "jaxlib")) for n in names), f


FORBIDDEN = ["elu", "relu", "gelu", "silu", "softmax", "layernorm", "layer_norm", "sigmoid", "logistic",
             "conv", "convolution", "attention", "stablehlo", "chlo"]


def test_native_has_no_ml_op_names():
    pat = re.compile(r"\b(" + "|".join(FORBIDDEN) + r")\b", re.IGNORECASE)
    hits = []
    for f in (ROOT / "native").rglob("*"):
        if f.is_file():
            for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                if pat.search(line):
                    hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ctest") is None, reason="no cmake")
def test_ctest(tmp_path):
    b = tmp_path / "build"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKBUILD", "CMAKE_"))}
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(b), "-DTT_BUILD_TESTS=ON"], check=True,
                   capture_output=True, env=env)
    subprocess.run(["cmake", "--build", str(b), "-j2"], check=True, capture_output=True, env=env)
    r = subprocess.run(["ctest", "--test-dir", str(b), "--output-on-failure"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
