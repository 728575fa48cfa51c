"""The build flow around the C compiler (runtime/toolchain.py): the caller's work overlaps the
compiler processes (started first, run once, whatever happens), every process is recorded, a
program split in units builds the same bytes every time, a failing unit reports through the
one-file path, and builders in threads share one compile."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tt_xla import runtime as rt
from tt_xla.compiler.program import part
from tt_xla.runtime import toolchain

# a 64-float add kernel z = x + y + C, and running it on a device
from test_cache import SRC, dev, expected, run  # noqa: F401 (dev: a fixture)

HEAD, _, TAIL = SRC.partition("#define N 64\n")
HEAD += "#define N 64\n"


def program(c: int = 0, pieces: int = 6, broken: int | None = None) -> str:
    """A source with part markers (as codegen writes them) that the toolchain splits in units."""
    src = [HEAD]
    for i in range(pieces):
        body = ('__attribute__((visibility("hidden"))) void f%d(float *p, int64_t n) {\n'
                "  for (int64_t j = 0; j < n; j++) p[j] = p[j] * %d.0f + 1.0f;\n}\n" % (i, i + 2))
        if i == broken:
            body = body.replace("p[j] =", "p[j] = undeclared_xyz +")
        src.append(part("O1") + body)
    src.append(part("O1") + TAIL % {"c": c})
    return "".join(src)


@pytest.fixture(autouse=True)
def _split(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path / "kernels"))
    monkeypatch.setenv("TT_XLA_BUILD_JOBS", "2")
    monkeypatch.setattr(toolchain, "SPLIT_MIN_CHARS", 0)


def test_units_compile_while_the_caller_works_then_link(dev):
    src = program(1)
    assert len(toolchain._split(src, 2)) == 2
    calls = []
    lib = rt.build_kernel_library(src, meanwhile=lambda: calls.append(time.perf_counter()))
    np.testing.assert_array_equal(run(dev, lib), expected(1))
    b = toolchain.last_build
    assert len(calls) == 1 and b.key == lib.stem and not b.cached
    units = [s for s in b.steps if s.what.startswith("cc -O1 part")]
    assert len(units) == 2 and b.steps[-1].what == "link"
    # both processes were started before the caller's work ran, and waited for after it
    assert all(s.start < calls[0] < s.end for s in units)
    assert b.meanwhile[0] <= calls[0] <= b.meanwhile[1]
    assert all(s.cpu is None or s.cpu > 0 for s in b.steps)


def test_cache_hit_runs_no_compiler_and_the_callers_work_once(dev):
    src = program(2)
    rt.build_kernel_library(src)
    before = dict(toolchain.stats)
    calls = []
    lib = rt.build_kernel_library(src, meanwhile=lambda: calls.append(1))
    assert calls == [1]
    assert toolchain.last_build.cached and toolchain.last_build.steps == []
    assert toolchain.stats["compiles"] == before["compiles"]
    np.testing.assert_array_equal(run(dev, lib), expected(2))


def test_same_source_builds_the_same_bytes(tmp_path, monkeypatch):
    src = program(3)
    libs = []
    for d in ("a", "b"):
        monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path / d))
        libs.append(rt.build_kernel_library(src).read_bytes())
    assert libs[0] == libs[1]


def test_a_failing_unit_reports_through_the_one_file_path():
    src = program(4, broken=2)
    calls = []
    with pytest.raises(rt.ToolchainError) as e:
        rt.build_kernel_library(src, meanwhile=lambda: calls.append(1))
    assert calls == [1]
    err = e.value
    assert "undeclared_xyz" in str(err) and "source kept at" in str(err)
    assert err.source_path.read_text() == src  # the whole program, not a unit
    assert f":{src[:src.index('undeclared_xyz')].count(chr(10)) + 1}:" in err.stderr  # its line in it
    d = toolchain.cache_dir()
    assert not list(d.glob("*.so")) and not list(d.glob("*.tmp"))


def test_the_callers_failure_still_waits_for_the_compiler():
    class Boom(Exception):
        pass

    def fail():
        raise Boom

    with pytest.raises(Boom):
        rt.build_kernel_library(program(5), meanwhile=fail)
    b = toolchain.last_build
    assert [s.what for s in b.steps] == ["cc -O1 part0", "cc -O1 part1"]  # both reaped
    assert not list(toolchain.cache_dir().glob("*.so"))


def test_threads_building_one_program_compile_it_once(dev):
    src = program(6)
    before = toolchain.stats["compiles"]
    out, calls = [], []
    barrier = threading.Barrier(4)

    def build():
        barrier.wait()
        out.append(rt.build_kernel_library(src, meanwhile=lambda: calls.append(1)))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and len(set(out)) == 1 and len(calls) == 4
    assert toolchain.stats["compiles"] - before == 3  # two units and the link, once
    np.testing.assert_array_equal(run(dev, out[0]), expected(6))


def test_client_writes_the_kernel_store_while_gcc_builds(monkeypatch):
    """A cold compile through the client: its phases are recorded, and the store's new kernels
    are written after the compiler processes started (not on a thread racing them)."""
    import tt_xla
    monkeypatch.setenv("TT_XLA_KERNEL_STORE", "1")
    text = """
func.func @main(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %0 = stablehlo.exponential %x : tensor<64x64xf32>
  %1 = stablehlo.dot_general %0, %x, contracting_dims = [1] x [0] : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  %2 = stablehlo.tanh %1 : tensor<64x64xf32>
  return %2 : tensor<64x64xf32>
}"""
    exe = tt_xla.Client().compile(text)
    b = toolchain.last_build
    assert [p for p, _, _ in exe.compile_phases] == ["parse", "passes", "build and load"]
    assert not b.cached and b.meanwhile is not None
    assert all(s.start < b.meanwhile[0] for s in b.steps if s.what != "link")
    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    want = np.tanh(np.exp(x) @ x)
    np.testing.assert_allclose(np.asarray(exe(x)[0]), want, rtol=1e-4, atol=1e-4)
    exe = tt_xla.Client().compile(text)  # warm: the library and every kernel come from the cache
    assert toolchain.last_build.cached and toolchain.last_build.meanwhile is None


def test_a_compiler_that_cannot_start_is_the_error_not_the_callers_work(monkeypatch, tmp_path):
    """The caller's overlapped work is for the library being built: when no compiler process
    could be started it is not run, so an error of its own cannot hide the toolchain's."""
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path))
    toolchain.cache_key("", toolchain._compiler(), list(toolchain.FLAGS))  # `cc --version` runs now

    def no_process(*args, **kwargs):
        raise OSError("exec format error")

    monkeypatch.setattr(toolchain.subprocess, "Popen", no_process)
    calls = []

    def fail():
        calls.append(1)
        raise RuntimeError("the caller's work")

    with pytest.raises(rt.ToolchainError, match="could not be started"):
        rt.build_kernel_library(program(7), meanwhile=fail)
    assert calls == []
