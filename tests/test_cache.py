"""The kernel cache checks what it loads: manifest hashes, the compiler command in the key,
corrupt entries rebuilt (never loaded), atomic writes, concurrent builders."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tt_xla import runtime as rt
from tt_xla.files import atomic_write
from tt_xla.runtime import toolchain

# A kernel library computing z = x + y + C over N floats; C distinguishes two programs.
SRC = r"""
#include "ttrt_kernel.h"
#define N 64
static void add(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  const float *x = ops[0], *y = ops[1]; float *z = ops[2]; (void)c;
  for (int64_t i = begin; i < end; i++) z[i] = x[i] + y[i] + %(c)d.0f;
}
static const uint64_t bindings[3] = {N * 4, N * 4, N * 4};
static const tt_operand ops[3] = {{0, TT_READ, 0, N * 4}, {1, TT_READ, 0, N * 4}, {2, TT_WRITE, 0, N * 4}};
static const tt_launch launches[1] = {{"add", add, N, 3, ops, 1, 0}};
static const tt_program_desc desc = {TT_ABI_VERSION, 3, bindings, 1, launches};
const tt_program_desc *tt_program_entry(void) { return &desc; }
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path / "kernels"))


@pytest.fixture(scope="module")
def dev():
    d = rt.Device(rt.DeviceConfig(host_threads=1))
    yield d
    d.close()


def run(dev, lib: Path) -> np.ndarray:
    """Load and run the library: x = 0..63, y = 1, so z = x + 1 + C."""
    prog = dev.load_program(lib)
    bufs = [dev.alloc(256) for _ in range(3)]
    bufs[0].write(np.arange(64, dtype=np.float32))
    bufs[1].write(np.ones(64, np.float32))
    prog.launch(bufs)
    out = np.frombuffer(bufs[2].read(), np.float32).copy()
    prog.unload()
    for b in bufs:
        b.free()
    return out


def expected(c: int) -> np.ndarray:
    return np.arange(64, dtype=np.float32) + 1 + c


def build(c: int = 0) -> Path:
    return rt.build_kernel_library(SRC % {"c": c})


def test_manifest_records_the_library_hash():
    lib = build()
    meta = json.loads(lib.with_suffix(".json").read_text())
    digest, size = toolchain._file_digest(lib)
    assert meta == {"key": lib.stem, "sha256": digest, "size": size}
    assert not list(lib.parent.glob("*.tmp"))


def test_hit_compiles_nothing():
    lib = build()
    before = dict(toolchain.stats)
    assert build() == lib
    assert toolchain.stats["compiles"] == before["compiles"]
    assert toolchain.stats["cache_hits"] == before["cache_hits"] + 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bitflip", "empty", "swapped",
                                    "no_manifest", "garbage_manifest", "foreign_manifest"])
def test_corrupt_entry_is_rebuilt_not_loaded(dev, damage):
    lib = build(0)
    other = build(7)
    assert run(dev, lib).tolist() == expected(0).tolist()
    data = lib.read_bytes()
    man = lib.with_suffix(".json")
    if damage == "truncated":
        lib.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        lib.write_bytes(os.urandom(len(data)))
    elif damage == "bitflip":  # one bit in the middle of the file (code or data)
        b = bytearray(data)
        b[len(b) // 2] ^= 0x10
        lib.write_bytes(bytes(b))
    elif damage == "empty":
        lib.write_bytes(b"")
    elif damage == "swapped":  # another program's library copied over this entry
        lib.write_bytes(other.read_bytes())
    elif damage == "no_manifest":
        man.unlink()
    elif damage == "garbage_manifest":
        man.write_bytes(b"\x00{not json")
    elif damage == "foreign_manifest":  # a consistent library + manifest pair of another key
        lib.write_bytes(other.read_bytes())
        man.write_bytes(other.with_suffix(".json").read_bytes())
    before = dict(toolchain.stats)
    again = build(0)
    assert again == lib
    assert toolchain.stats["rejected"] == before["rejected"] + 1
    assert toolchain.stats["compiles"] == before["compiles"] + 1  # rebuilt
    assert lib.read_bytes() == data or toolchain._verified(lib, lib.stem)
    assert run(dev, again).tolist() == expected(0).tolist()
    assert toolchain.stats["compiles"] == before["compiles"] + 1
    build(0)  # and now it verifies again
    assert toolchain.stats["compiles"] == before["compiles"] + 1


def test_compiler_command_and_flags_are_in_the_key(monkeypatch):
    src = SRC % {"c": 0}
    cc = toolchain._compiler()
    base = toolchain.cache_key(src, cc, list(toolchain.FLAGS))
    assert toolchain.cache_key(src, cc, list(toolchain.FLAGS)) == base
    assert toolchain.cache_key(src, cc, [*toolchain.FLAGS, "-DX"]) != base
    assert toolchain.cache_key(src, [*cc, "-O0"], list(toolchain.FLAGS)) != base
    monkeypatch.setitem(toolchain.LEVELS, "O1", ("-O1",))
    assert toolchain.cache_key(src, cc, list(toolchain.FLAGS)) != base
    monkeypatch.undo()
    # $CC with extra words is a different compiler command: a different entry
    lib = build()
    monkeypatch.setenv("CC", " ".join([*cc, "-DTT_CACHE_TEST=1"]))
    lib2 = build()
    assert lib2 != lib and lib2.is_file()


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    class Boom(Exception):
        pass

    def fail(*a, **k):
        raise Boom

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(Boom):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert not list(tmp_path.glob("*.tmp"))


def test_failed_build_caches_nothing():
    with pytest.raises(rt.ToolchainError):
        rt.build_kernel_library('#include "ttrt_kernel.h"\nint f(void) { return nope_xyz; }\n')
    d = toolchain.cache_dir()
    assert not list(d.glob("*.so")) and not list(d.glob("*.json")) and not list(d.glob("*.tmp"))


def test_concurrent_builders(tmp_path):
    """Four processes build the same new program at once: each gets a verified library, and
    the per-key lock makes it one compile in all."""
    script = textwrap.dedent(f"""
        import json, sys
        from tt_xla.runtime import toolchain
        src = {SRC % {"c": 3}!r}
        before = toolchain.stats["compiles"]
        lib = toolchain.build_kernel_library(src)
        print(json.dumps([str(lib), toolchain.stats["compiles"] - before,
                          toolchain._verified(lib, lib.stem)]))
    """)
    env = dict(os.environ, TT_XLA_CACHE_DIR=str(tmp_path / "shared"))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r[0] for r in results}) == 1
    assert all(r[2] for r in results)
    assert sum(r[1] for r in results) == 1
    assert not list((tmp_path / "shared").glob("*.tmp"))
