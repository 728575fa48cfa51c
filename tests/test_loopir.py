"""The loop IR and the core dataflow: DRAM -> SRAM by DMA through circular buffers -> compute
-> DMA out; SRAM sized to the device; counters from the cores' events."""

import jax
import pytest

import tt_xla
from tt_xla.compiler import compile_text
import tt_xla.compiler.loopir as L
from tt_xla.compiler.loopir import (Alu, CbPop, CbPush, CbReserve, CbWait, CircularBuffer, DmaWrite, End, Load,
                                   LoopKernel, Operand, Range, check_cb_protocol, check_dma_only)
from tt_xla.errors import UnsupportedError
from util import check, inputs, jnp, np


def _text(f, *args):
    return jax.export.export(jax.jit(f))(*args).mlir_module()


PROGRAMS = [  # one of each kernel kind and access pattern: views, tiles, reductions, products
    (jax.nn.elu, [(37, 300)]),
    (lambda x: x.T * 2, [(70, 45)]),
    (lambda x: jnp.transpose(x, (2, 0, 1)), [(5, 7, 9)]),
    (lambda x, b: x + b[:, None] + jnp.arange(x.shape[1], dtype=x.dtype), [(33, 65), (33,)]),
    (lambda x: jnp.concatenate([x[::-1], jnp.pad(x, ((1, 2), (0, 0)))], 0), [(9, 10)]),
    (lambda x: (x.sum(-1), x.max(0), jnp.argmax(x, 1)), [(50, 130)]),
    (lambda x: jax.nn.softmax(x, -1), [(20, 5000)]),
    (lambda x, w, b: jax.nn.gelu(x @ w + b), [(40, 64), (64, 72), (72,)]),
    (lambda x, w: jnp.einsum("bij,bkj->bik", x, w), [(3, 20, 16), (3, 24, 16)]),
]


def _collect(text: str, sram: int = 1499136) -> list[LoopKernel]:
    """The loop IR of every kernel of a program (compiled with a recording lowering)."""
    import tt_xla.compiler as compiler
    seen: list[LoopKernel] = []
    orig = compiler.lower_kernel

    def rec(*a, **kw):
        lk = orig(*a, **kw)
        seen.append(lk)
        return lk
    compiler.lower_kernel = rec
    try:
        compile_text(text, sram_per_core=sram)
    finally:
        compiler.lower_kernel = orig
    return seen


@pytest.mark.parametrize("i", range(len(PROGRAMS)))
def test_every_kernel_moves_dram_only_by_dma(i):
    f, shapes = PROGRAMS[i]
    args = [inputs(s, edges=False, seed=j) for j, s in enumerate(shapes)]
    check(f, *args, rtol=1e-4, atol=1e-4, transcendental=True)
    kernels = _collect(_text(f, *args))
    assert kernels
    for k in kernels:
        assert check_dma_only(k) == [], k.format()
        assert check_cb_protocol(k) == [], k.format()
        assert any(isinstance(u, DmaWrite) for u in k.body)  # results leave by DMA too


def test_the_dma_check_catches_a_dram_load():
    """The invariant test can fail: a Load from an operand pointer is a violation."""
    op = Operand(0, "float", False)
    k = LoopKernel("bad", [op], [], [Load("v", "float", "p0", "0"), Alu("w", "float", "p0[1] + 1")], 1)
    bad = check_dma_only(k)
    assert len(bad) == 3 and all(b.startswith("bad: ") for b in bad)


def test_kernels_print_their_ir():
    exe = tt_xla.compile(_text(jax.nn.elu, np.ones((64, 64), np.float32)))
    (k,) = exe.kernels()
    assert k.ir.startswith(f"kernel {k.name}:")
    for word in ("cb_reserve_back", "dma_read", "cb_push_back", "cb_wait_front", "alu", "dma_write", "cb_pop_front"):
        assert word in k.ir
    assert k.sram_bytes > 0 and k.dma_bytes == 2 * 64 * 64 * 4


def test_elu_counters_come_from_dma_events_and_are_memory_bound():
    """ELU on 4M f32: the cores DMA every byte in and out (>= 32 MiB) and, as for ReLU, the
    DRAM time bounds the kernel: modeled ELU/ReLU = 1.00."""
    c = tt_xla.client()
    dev = c.devices()[0]
    x = c.buffer_from_pyval(np.random.default_rng(0).standard_normal(4 << 20).astype(np.float32))
    got = {}
    for name, f in (("elu", jax.nn.elu), ("relu", jax.nn.relu)):
        exe = c.compile(_text(f, np.zeros(4 << 20, np.float32)))
        exe.execute([x])
        before = dev.counters()
        exe.execute([x])
        after = dev.counters()
        got[name] = {k: after[k] - before[k] for k in ("dma_bytes", "modeled_cycles", "vector_ops")}
    assert got["elu"]["dma_bytes"] >= 32 << 20 and got["relu"]["dma_bytes"] >= 32 << 20
    assert got["elu"]["vector_ops"] > 10 * got["relu"]["vector_ops"]  # counted by the cores
    assert got["elu"]["modeled_cycles"] == got["relu"]["modeled_cycles"]


def _run_on(sram: int, text: str, args: list) -> tuple[list, int, list]:
    """(outputs, DMA bytes the cores moved, kernels) of one call on a device with `sram` per core."""
    from tt_xla.client import Client
    from tt_xla.runtime import Device, DeviceConfig
    c = Client(Device(DeviceConfig(sram_per_core=sram)))
    exe = c.compile(text)
    dev = c.devices()[0]
    bufs = [c.buffer_from_pyval(a) for a in args]
    before = dev.counters()["dma_bytes"]
    outs = exe.execute(bufs)
    return [o.to_numpy() for o in outs], dev.counters()["dma_bytes"] - before, exe.kernels()


def test_small_sram_windowed_conv_packs_a_when_its_span_does_not_fit():
    """A windowed convolution's patch span (7 rows x 1,536 + 4,608 f32 at the smallest block)
    does not fit beside the engine's share of 64 KiB: the product falls back to the engine
    packing A from DRAM instead of being refused."""
    from jax import lax
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 3, 32, 512), np.float32), rng.standard_normal((3, 3, 512, 4), np.float32) / 40
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
    outs, dma, kernels = _run_on(64 * 1024, _text(f, x, w), [x, w])
    assert max(k.sram_bytes for k in kernels) <= 64 * 1024 and dma > 0
    np.testing.assert_allclose(outs[0], np.asarray(jax.jit(f)(x, w)), rtol=1e-4, atol=1e-4)


def test_small_sram_device_runs_a_transformer_value_and_grad():
    """256 KiB of SRAM per core: every kernel's buffers are sized to it, results are the same."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from benchmarks.suite import _transformer
    init, make_step = _transformer(seq=64, d=128, heads=4, mlp=512, layers=1)
    ps, x, y = init(np.random.default_rng(0))
    step = make_step(True)
    flat = jax.tree_util.tree_leaves((ps, x, y))
    want = jax.tree_util.tree_leaves(jax.jit(step)(ps, x, y))
    outs, dma, kernels = _run_on(256 * 1024, _text(step, ps, x, y), flat)
    assert max(k.sram_bytes for k in kernels) <= 256 * 1024 and dma > 0
    for o, w in zip(outs, want):
        np.testing.assert_allclose(o, np.asarray(w), rtol=2e-3, atol=2e-4)


def test_small_sram_means_smaller_blocks_and_more_dma():
    """A product whose default blocks (256x256 of f32 C) do not fit 256 KiB is re-blocked:
    more, smaller blocks, so the engine packs its operands more often."""
    x, w = inputs((1024, 256), edges=False), inputs((256, 2048), seed=1, edges=False)
    text = _text(lambda a, b: a @ b, x, w)
    small, dma_small, k_small = _run_on(256 * 1024, text, [x, w])
    big, dma_big, k_big = _run_on(1499136, text, [x, w])
    want = x.astype(np.float64) @ w.astype(np.float64)
    for got in (small[0], big[0]):  # (shallower K blocks on the small core: another summation order)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    assert k_small[0].work_items > k_big[0].work_items and k_small[0].sram_bytes < 256 * 1024 < k_big[0].sram_bytes
    assert dma_small > dma_big


def test_small_sram_reads_a_transpose_down_its_columns_without_the_turned_page():
    """(x + x^T) / 2 in 32x32 tiles: three double-buffered 4 KiB pages fit 24 KiB, the row-major
    copy of the transposed page beside them does not; the math then reads the column page (the
    path of 2-byte types, checked against CPU JAX in test_host_dma) instead of refusing."""
    text = _text(lambda a: (a + jnp.swapaxes(a, -1, -2)) / 2, inputs((3, 70, 70)))
    for sram, turned in ((24 * 1024, False), (1499136, True)):
        (k,) = _collect(text, sram)
        assert any(cb.name.startswith("cbt") for cb in k.cbs) == turned and L.sram_end(k.cbs) <= sram


def test_a_program_that_cannot_fit_is_refused_at_compile_time():
    text = _text(lambda x, w: jax.nn.relu(x @ w), np.ones((64, 64), np.float32), np.ones((64, 64), np.float32))
    with pytest.raises(UnsupportedError, match=r"kernel k\d+_\w+ .*needs \d+ bytes of SRAM per core.*have 1024"):
        compile_text(text, sram_per_core=1024)
    text = _text(lambda x: x + 1, np.ones((1000,), np.float32))
    with pytest.raises(UnsupportedError, match=r"kernel k0_add .*needs \d+ bytes of SRAM per core.*have 256"):
        compile_text(text, sram_per_core=256)


def test_runtime_refuses_a_launch_declaring_more_sram_than_a_core_has():
    from tt_xla.runtime import Device, DeviceConfig, DeviceError
    from tt_xla.executable import LoadedExecutable
    vs = [np.ones((8192,), np.float32)] * 12
    p = compile_text(_text(lambda *xs: sum(x * (i + 1) for i, x in enumerate(xs)), *vs))  # sized for the default
    small = Device(DeviceConfig(sram_per_core=64 * 1024))
    need = max(k.sram_bytes for k in p.kernels)
    assert need > 64 * 1024
    with pytest.raises(DeviceError, match=rf"\(k0_\w+\) needs {need} bytes of SRAM per core.*65536"):
        LoadedExecutable(small, p)


def test_compiler_default_sram_is_the_runtime_default():
    from tt_xla.compiler.program import DEFAULT_SRAM_PER_CORE
    from tt_xla.runtime import DeviceConfig
    assert DEFAULT_SRAM_PER_CORE == DeviceConfig().sram_per_core


def test_circular_buffers_are_double_buffered_and_in_sram():
    (k,) = _collect(_text(lambda x: x + 1, np.ones((100, 100), np.float32)))
    assert all(cb.npages == 2 for cb in k.cbs)
    assert sum(isinstance(u, CbReserve) for u in k.body) == 2  # the input's, the output's
    ends = [cb.offset + cb.bytes for cb in k.cbs]
    assert ends == sorted(ends) and ends[-1] == k.sram_bytes
    # the protocol is checked at compile time, so a page is a plain SRAM address, at a slot
    # known statically (a ring is empty, so may be rewound, at the start of each work item)
    src = compile_text(_text(lambda x: x + 1, np.ones((100, 100), np.float32))).source
    assert "float *in0 = (float *)(sram_ + 0u);" in src and "tt_cb_" not in src


def test_pages_of_a_ring_in_use_across_a_range_alternate():
    """A ring that is not empty where a range starts cannot be rewound there: its pages inside
    the range come from its counters, and the two pages alternate."""
    from tt_xla.compiler.render import render
    cb = CircularBuffer("cb0", "float", 4, 1024)
    body = [CbReserve(cb, "a"), CbPush(cb), Range("i", "0", "n"), CbReserve(cb, "b"), CbPush(cb), CbWait(cb, "c"),
            CbPop(cb), End(), CbWait(cb, "d"), CbPop(cb)]
    k = LoopKernel("k", [], [cb], body, 1)
    assert check_cb_protocol(k) == []
    src = render(k)
    assert "uint32_t cb0_t = 0, cb0_h = 0;" in src
    assert "float *b = (float *)(sram_ + 0u + (cb0_t % 2u) * 4096u);" in src
    with pytest.raises(AssertionError, match="protocol"):
        render(LoopKernel("k", [], [cb], body[:-1], 1))


def test_the_cb_protocol_check_catches_misuse():
    """The compile-time check can fail: a wait on an empty ring, a reserve on a full one, a range
    whose body leaves a ring fuller than it found it, a work item that leaves a page in use."""
    cb = CircularBuffer("cb0", "float", 4, 1024)
    ok = [CbReserve(cb, "a"), CbPush(cb), CbWait(cb, "b"), CbPop(cb)]
    assert check_cb_protocol(LoopKernel("k", [], [cb], ok, 1)) == []
    assert check_cb_protocol(LoopKernel("k", [], [cb], [Range("i", "0", "n")] + ok + [End()], 1)) == []
    cases = {
        "empty ring": [CbWait(cb, "b"), CbPop(cb)],
        "full ring": [CbReserve(cb, "a"), CbPush(cb), CbReserve(cb, "a"), CbPush(cb), CbReserve(cb, "a"), CbPush(cb)]
        + [CbWait(cb, "b"), CbPop(cb)] * 3,
        "unbalanced": [Range("i", "0", "n"), CbReserve(cb, "a"), CbPush(cb), End(), CbWait(cb, "b"), CbPop(cb)],
        "in use": [CbReserve(cb, "a"), CbPush(cb)],
    }
    for what, body in cases.items():
        bad = check_cb_protocol(LoopKernel("k", [], [cb], body, 1))
        assert bad and any(what in b for b in bad), (what, bad)


def test_per_kernel_figures_from_events():
    c = tt_xla.client()
    x = np.random.default_rng(1).standard_normal((512, 256)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((256, 256)).astype(np.float32)
    exe = c.compile(_text(lambda x, w: jax.nn.softmax(jax.nn.relu(x @ w), -1), x, w))
    assert all(s["modeled_cycles"] == 0 for s in exe.kernel_stats())  # not run yet
    exe.execute([c.buffer_from_pyval(x), c.buffer_from_pyval(w)])
    stats = exe.kernel_stats()
    assert [s["name"] for s in stats] == [k.name for k in exe.kernels()]
    for s, k in zip(stats, exe.kernels()):
        assert s["modeled_cycles"] >= 1000 and s["dma_bytes"] > 0 and 1 <= s["cores"] <= 64
        assert s["sram_bytes"] == k.sram_bytes and s["bound"] in ("compute", "memory")
    mm = next(s for s, k in zip(stats, exe.kernels()) if k.kind == "matmul")
    assert mm["matrix_tiles"] == 16 * 8 * 8  # counted by the engine as it issues them


FAULTY = r"""
#include "ttrt_kernel.h"
static void waits_on_nothing(const tt_core *core, void *const *ops, int64_t begin, int64_t end) {
  (void)ops;
  tt_cb cb;
  tt_cb_init(core, &cb, 0u, 4096u, 2u);
  for (int64_t it = begin; it < end; ++it) {
    float *page = (float *)tt_cb_wait_front(core, &cb);  /* nothing was pushed: a hang on a real core */
    (void)page;
    tt_cb_pop_front(&cb);
  }
}
static const uint64_t binding_bytes[1] = {64};
static const tt_operand ops_[1] = {{0u, 1u, 0ull, 64ull}};
static const tt_launch launches[1] = {{"waits_on_nothing", waits_on_nothing, 4, 1u, ops_, 1ull, 0ull, 8192ull}};
static const tt_program_desc program = {TT_ABI_VERSION, 1u, binding_bytes, 1u, launches};
const tt_program_desc *tt_program_entry(void) { return &program; }
"""


def test_a_circular_buffer_misused_fails_the_launch():
    """Reader/compute/writer run in program order on a core: a wait on an empty ring would hang
    a real core; here the launch fails with the kernel's name, and the device stays usable."""
    from tt_xla.runtime import Device, DeviceError
    from tt_xla.runtime.toolchain import build_kernel_library
    dev = Device()
    prog = dev.load_program(build_kernel_library(FAULTY))
    buf = dev.alloc(64)
    with pytest.raises(DeviceError, match=r"waits_on_nothing.*dataflow faults"):
        prog.launch([buf])
    exe = tt_xla.client().compile(_text(lambda x: x + 1, np.ones(4, np.float32)))
    (out,) = exe.execute([tt_xla.client().buffer_from_pyval(np.ones(4, np.float32))])
    assert (out.to_numpy() == 2).all()


@pytest.mark.parametrize("shape,n", [((4000, 7), 11), ((40000, 16), 11), ((140000, 3), 3)])
def test_small_sram_rows_no_longer_than_the_lanes_shrink_their_items(shape, n):
    """Rows of at most 16 elements are a piece that cannot shrink: on 64 KiB the items' rows must
    (fewer rows a block, then a DMA a row), not the compile be refused. Sibling reductions of
    such rows, too."""
    import functools
    rng = np.random.default_rng(5)
    args = [rng.standard_normal(shape, np.float32) for _ in range(n)]

    def f(*xs):
        p = functools.reduce(lambda a, b: a * b, xs)
        return jnp.sum(p, -1), jnp.max(p, -1), jnp.min(xs[0] - xs[-1], -1)
    want = [np.asarray(w) for w in jax.jit(f)(*args)]
    outs, _, kernels = _run_on(64 * 1024, _text(f, *args), args)
    assert max(k.sram_bytes for k in kernels) <= 64 * 1024
    for o, w in zip(outs, want):
        np.testing.assert_allclose(o, w, rtol=1e-4, atol=1e-4)


def test_small_sram_short_row_reduction_falls_back_to_a_dma_a_row():
    """A reduction of short runs reads an item's rows (17 outputs, of 34 in a kept row) by one
    block DMA per operand; with 64 KiB its three operands' pages do not fit, the pieces and
    items shrink and the rows come in by pieces, one DMA each. Results as CPU JAX's either way."""
    from tt_xla.compiler.program import DEFAULT_SRAM_PER_CORE
    rng = np.random.default_rng(3)
    args = [rng.standard_normal((64, 40, 240), np.float32) for _ in range(3)]
    f = lambda x, y, z: jnp.sum(x[:, :34] * y[:, :34] - z[:, :34], -1)  # noqa: E731
    text = _text(f, *args)
    want = np.asarray(jax.jit(f)(*args))
    for sram, blocked in ((DEFAULT_SRAM_PER_CORE, True), (64 * 1024, False)):
        outs, dma, kernels = _run_on(sram, text, args)
        (k,) = [k for k in kernels if k.kind == "reduce"]
        assert max(k.sram_bytes for k in kernels) <= sram
        assert any(" rows " in ln and "dma_read" in ln for ln in str(k.ir).splitlines()) == blocked, str(k.ir)
        np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=1e-4)
