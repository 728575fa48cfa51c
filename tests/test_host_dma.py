"""What keeps the DMA dataflow cheap on the host. Outputs bigger than the host's caches leave
the core by streaming (non-temporal) stores (tt_dma_write_op's `stream`): the results must be exactly
those of the ordinary write DMA, whatever the alignment of the run in DRAM and in the page, its
length and the element size. Loop kernels over long rows copy each chunk of their inputs into
its page in the loop that computes from it (FIRST_USE), with no read-ahead hint. Big
transposes work in 64x64 blocks; reductions read ahead only to a row that does not follow."""
import re

import jax
import pytest

from tt_xla.compiler import compile_text
from tt_xla.compiler.render import STREAM_MIN_BYTES
from tt_xla.compiler.loopir import FIRST_USE, DmaPrefetch, DmaRead, Range, check_dma_only
from util import BF16, check, inputs, jnp, np

CASES = [  # each output is just over the streaming threshold
    # contiguous blocks of 1024 from an aligned base, with a ragged last block
    ("elu", jax.nn.elu, [((1025, 1027), np.float32)]),
    # 2-byte elements
    ("bf16", lambda x: x * 2 + 1, [((2049, 1031), BF16)]),
    # short rows packed in a page: runs start at page offsets and DRAM offsets of 1200 bytes
    ("rows", lambda x: x[:, 1:] + 1, [((4100, 301), np.float32)]),
    # a concat writes each piece at an odd element offset of every row
    ("concat", lambda x, y: jnp.concatenate([x, y], 1), [((1000, 1001), np.float32), ((1000, 601), np.float32)]),
]


# A write DMA in the C: a call of its own, or a row of a batch's table (render._Batch: operand,
# flags K_DMA_WRITE = 2 | K_DMA_STREAM = 4, ...).
def _streamed_write(src: str) -> bool:
    return bool(re.search(r"tt_dma_write_op\(.*, 1\);", src) or re.search(r"\{\d+, 6, \d+, \d+, \d+, \{", src))


def _plain_write(src: str) -> bool:
    return bool(re.search(r"tt_dma_write_op\(.*, 0\);", src) or re.search(r"\{\d+, 2, \d+, \d+, \d+, \{", src))


@pytest.mark.parametrize("name,f,specs", CASES, ids=[c[0] for c in CASES])
def test_streamed_outputs_match_cpu(name, f, specs):
    args = [inputs(s, d, seed=i) for i, (s, d) in enumerate(specs)]
    out = jax.eval_shape(f, *args)
    assert out.size * out.dtype.itemsize >= STREAM_MIN_BYTES
    src = compile_text(jax.export.export(jax.jit(f))(*args).mlir_module()).source
    assert _streamed_write(src) and "tt_dma_stream_fence();" in src
    check(f, *args, transcendental=name == "elu")


def test_small_outputs_use_plain_stores():
    # they stay in the host's caches for the kernel that reads them next
    x = np.ones((64, 64), np.float32)
    src = compile_text(jax.export.export(jax.jit(jax.nn.relu))(x).mlir_module()).source
    kernels = src[src.index("/* tt:part"):]  # past the prelude, which defines the function
    assert _plain_write(kernels) and not _streamed_write(kernels)
    assert "tt_dma_stream_fence" not in kernels


def _kernels(f, *args):
    import tt_xla.compiler as compiler
    seen = []
    orig = compiler.lower_kernel

    def rec(*a, **kw):
        seen.append(orig(*a, **kw))
        return seen[-1]
    compiler.lower_kernel = rec
    try:
        compile_text(jax.export.export(jax.jit(f))(*args).mlir_module())
    finally:
        compiler.lower_kernel = orig
    return seen


@pytest.mark.parametrize("shape", [(5000,), (3, 5000), (2, 3, 4099)])
def test_long_rows_are_copied_in_the_loop_that_reads_them(shape):
    # chunks of a long row: every contiguous input (b, row-invariant, too) is a first-use read,
    # counted where it stands and copied into its page by the loads; no read-ahead hint
    x = inputs(shape, np.float32)
    b = inputs(shape[-1:], np.float32, seed=1)
    f = lambda x, b: jax.nn.elu(x) * b  # noqa: E731
    (k,) = _kernels(f, x, b)
    reads = [u for u in k.body if isinstance(u, DmaRead)]
    assert len(reads) == 2 and all(u.host == FIRST_USE and u.count == "nc" for u in reads)
    assert not any(isinstance(u, DmaPrefetch) for u in k.body) and not check_dma_only(k)
    check(f, x, b, transcendental=True)


def test_short_rows_do_not_read_ahead():
    (k,) = _kernels(lambda x: jax.nn.elu(x[:, 1:]), inputs((40, 301), np.float32))  # rows of 300
    assert not any(isinstance(u, DmaPrefetch) for u in k.body)


@pytest.mark.parametrize("shape", [(512, 1024), (300, 1000)])
def test_row_blocks_read_first_use_ask_for_the_next_block_a_line_at_a_time(shape):
    # a rows kernel over an operand beyond the host's L2: the first-use input (not the row-invariant
    # one, which a core reads once) is asked for a line at a time, the same line one block on
    # (past the last block for the last: a hint, never a fault); bits as without
    x = inputs(shape, np.float32)
    b = inputs(shape[-1:], np.float32, seed=1)
    f = lambda x, b: (x - 1.5) * b  # noqa: E731
    (k,) = _kernels(f, x, b)
    pf = [u for u in k.body if isinstance(u, DmaPrefetch)]
    assert len(pf) == 1 and pf[0].line and pf[0].index.endswith(f"+ 1 * {shape[1]} + jb")
    # rows of whole lines: each line's loop counts from 0 to a constant (`j < jb + 16` may wrap
    # under -fwrapv, and gcc kept a trip-count test and a scalar loop beside the vector); a ragged
    # row stops at its end
    (line,) = [u for u in k.body if isinstance(u, Range) and u.var in ("j", "jl")]
    assert (line.start, line.end) == (("0", "16") if shape[1] % 16 == 0 else ("jb", "K_MIN(jb + 16, c1)"))
    assert not check_dma_only(k)
    check(f, x, b)


def _exe_and_kernel(f, *args):
    import tt_xla
    exe = tt_xla.compile(jax.export.export(jax.jit(f))(*args).mlir_module())
    (k,) = exe.kernels()
    return exe, k


@pytest.mark.parametrize("shape,items", [((517, 1001), 9 * 16), ((100, 100), 4 * 4)])
def test_transposes_work_in_blocks_of_2x2_tiles_when_there_are_enough(shape, items):
    # 64x64 blocks (half the DRAM rows per byte of 32x32 tiles) when there are at least 64 of
    # them, else 32x32 tiles; ragged edges either way; the cores count the same events as over
    # 32x32 tiles: a vector op per device tile, every element moved in and out once
    x = inputs(shape, np.float32)
    exe, k = _exe_and_kernel(lambda x: x.T, x)
    assert k.work_items == items
    (y,) = exe(x)
    assert np.array_equal(np.asarray(y), x.T, equal_nan=True)
    (st,) = exe.kernel_stats()
    assert st["vector_ops"] == -(-shape[0] // 32) * -(-shape[1] // 32)
    assert st["dma_bytes"] == 2 * x.nbytes


TURN_CASES = [  # reads of a last-two-dims transpose, ragged 64x64 and 32x32 blocks; turned in SRAM?
    ("sym_f32", lambda x: (x + jnp.swapaxes(x, -1, -2)) / 2, [((3, 70, 70), np.float32)], True),
    ("sym_big", lambda x: x - x.T * 0.5, [((517, 517), np.float32)], True),
    ("two_operands", lambda x, y: jnp.maximum(x, y.T) * x, [((37, 70), np.float32), ((70, 37), np.float32)], True),
    ("int32", lambda x: x * 3 - jnp.swapaxes(x, 1, 2), [((2, 45, 45), np.int32)], True),
    ("uint32", lambda x, y: x ^ y.T, [((33, 65), np.uint32), ((65, 33), np.uint32)], True),
    ("bf16", lambda x: x + jnp.swapaxes(x, -1, -2), [((2, 40, 40), BF16)], False),
    ("f16", lambda x, y: x * y.T, [((66, 9), np.float16), ((9, 66), np.float16)], False),
    ("square", lambda x: jnp.sign(x + x.T), [((35, 35), np.float32)], True),
    ("bool_mask", lambda x, m: jnp.where(m.T, x, -x), [((50, 70), np.float32), ((70, 50), np.bool_)], False),
    ("size_one", lambda x: x + jnp.swapaxes(x, -1, -2), [((4, 1, 1), np.float32)], False),
    ("two_results", lambda x: (x.T + 1, jnp.abs(x.T) * x.T), [((97, 129), np.float32)], True),
]


@pytest.mark.parametrize("name,f,specs,turns", TURN_CASES, ids=[c[0] for c in TURN_CASES])
def test_elementwise_reads_of_a_transpose_turned_in_sram(name, f, specs, turns):
    # a computed kernel's 4-byte column page is transposed into a row-major page in SRAM
    # before the math (which then reads rows); other element sizes read the column page as is.
    # Either way the same values as CPU JAX, edge values (NaN, inf, -0, denormals) included
    args = [inputs(s, d) for s, d in specs]
    ks = _kernels(f, *args)
    assert any(cb.name.startswith("cbt") for k in ks for cb in k.cbs) == turns
    assert not any(check_dma_only(k) for k in ks)
    check(f, *args)


def test_row_reductions_read_ahead_a_line_at_a_time_to_the_next_row():
    # the next row right after this one is asked for a line at a time from inside the lane loop
    # (the same line of the next row with each line of this one); a row further on is asked for
    # whole, once, while this one is reduced. Neither moves data nor counts anything.
    x = inputs((512, 2048), np.float32)
    (k,) = _kernels(lambda x: jnp.sum(x, axis=-1), x)
    ahead = [u for u in k.body if isinstance(u, DmaPrefetch)]
    assert ahead and all(u.line for u in ahead) and all(u.index.endswith("+ jj + 2048") for u in ahead)
    f = lambda x: jnp.sum(x[:, :1024], axis=-1)  # noqa: E731  (rows 2048 apart)
    (k,) = _kernels(f, x)
    ahead = [u for u in k.body if isinstance(u, DmaPrefetch)]
    assert ahead and not any(u.line for u in ahead)
    check(f, x, rtol=1e-4, atol=1e-3)  # (a sum of 1024 in another order)
    check(lambda x: jnp.mean(x, axis=-1), x, rtol=1e-5, atol=1e-6)  # (the last row's line past the end)


# Reads the host performs elsewhere (loopir FIRST_USE / ONCE): the copy moves into the loop that
# first reads each element, or, for a block every work item reads alike, to a core's first item;
# the DMA is counted where it stands. Rendered with every read an ordinary copy instead, each
# program must give the same bits and the same counters, kernel by kernel.
HOST_READS = [
    ("softmax", lambda x: jax.nn.softmax(x, -1), [((300, 1000), np.float32)]),
    ("layernorm", lambda x, g, b: (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5) * g + b,
     [((257, 515), np.float32), ((515,), np.float32), ((515,), np.float32)]),
    # items of 42 rows (the last one 26), the mean read for an item's rows at once
    ("layernorm_rows", lambda x: (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5),
     [((4100, 96), np.float32)]),
    ("strided_rows", lambda x: jnp.sum(x[:, ::3], axis=-1), [((70, 301), np.float32)]),  # a stride-3 read
    ("bf16_sum", lambda x: jnp.sum(x, axis=-1, dtype=jnp.float32), [((33, 4133), BF16)]),  # pieces, a ragged tail
    ("argmax", lambda x: jnp.argmax(x, axis=-1), [((40, 77), np.float32)]),  # a two-operand reduce body
    # (XLA:CPU's row max misses a NaN here, past its vector loop: numpy is the reference)
    ("row_max", lambda x: jnp.max(x, axis=-1), [((64, 1000), np.float32)]),
    # chunks of long rows (loop kernels): a row-invariant input, a stride-2 read, a ragged last
    # chunk, a converting load, a movement kernel (each concatenated piece)
    ("long_rows", lambda x, b: jax.nn.elu(x) * b, [((3, 5000), np.float32), ((5000,), np.float32)]),
    ("long_strided", lambda x: jnp.exp(x[:, ::2]), [((3, 10001), np.float32)]),
    ("long_bf16", lambda x: x * 2 + 1, [((2, 4133), BF16)]),
    ("long_concat", lambda x, y: jnp.concatenate([x, y], 1), [((2, 4100), np.float32), ((2, 2050), np.float32)]),
]


def _run_both(f, args):
    import dataclasses
    import tt_xla
    import tt_xla.compiler as compiler
    from tt_xla.compiler import loopir as L
    text = jax.export.export(jax.jit(f))(*args).mlir_module()
    orig = compiler.lower_kernel

    def plain(*a, **kw):
        k = orig(*a, **kw)
        k.body[:] = [dataclasses.replace(u, host="") if isinstance(u, L.DmaRead) else u for u in k.body]
        return k
    runs = []
    for lower in (orig, plain):
        compiler.lower_kernel = lower
        try:
            tt_xla.client().clear_cache()
            exe = tt_xla.compile(text)
        finally:
            compiler.lower_kernel = orig
        outs = [np.asarray(o) for o in exe(*args)]
        runs.append((exe.source, outs, [{k: v for k, v in s.items() if k not in ("host_ns",)} for s in exe.kernel_stats()]))
    tt_xla.client().clear_cache()
    return runs


@pytest.mark.parametrize("name,f,specs", HOST_READS, ids=[c[0] for c in HOST_READS])
def test_reads_the_host_does_elsewhere_count_and_compute_as_copies(name, f, specs):
    args = [inputs(s, d, seed=i) for i, (s, d) in enumerate(specs)]
    (src, outs, stats), (plain_src, plain_outs, plain_stats) = _run_both(f, args)
    kernels, plain_kernels = (t[t.index("/* tt:part"):] for t in (src, plain_src))
    # counted where it stands: a call of its own, or a row of a batch's table flagged K_DMA_COUNT
    counted = re.compile(r"tt_dma_read_counted\(|\{\d+, 8, \d+, \d+, \d+, \{")
    assert counted.search(kernels) and not counted.search(plain_kernels)
    if name == "layernorm":  # scale and bias: read once a core (a batch's row flagged K_DMA_ONCE, or prelude.c's helper)
        assert "k_dma_read_once(core, ops, it == begin, " in kernels or re.search(r"\{\d+, 1, \d+, \d+, \d+, \{", kernels)
    if name in ("bf16_sum", "long_bf16"):  # a converting first-use load copies, then converts the page's element
        assert re.search(r"x\w+\[[^]]*\] = dram_\w+\[", kernels)
    elif name != "argmax":  # a plain one reads DRAM, then stores the value into the page
        assert re.search(r"const float ld\d+ = dram_\w+\[[^;]*\]; x\w+\[", kernels)
    for a, b in zip(outs, plain_outs):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    assert stats == plain_stats and all(s["dma_bytes"] > 0 for s in stats)
    if name == "row_max":
        assert np.array_equal(outs[0], np.max(args[0], axis=-1), equal_nan=True)
    else:
        check(f, *args, rtol=1e-4, atol=1e-4)


# Short runs of a constant length are copied at the call site (render.SHORT_RUN_BYTES,
# tt_dma_read_run / tt_dma_write_run), not by the runtime's engine: the same bits and the same
# counters, kernel by kernel, as with every run through the engine.
def _pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")


def _depthwise(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=x.shape[-1],
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


SHORT_RUNS = [
    ("maxpool", _pool, [((2, 15, 15, 64), np.float32)]),
    ("depthwise", _depthwise, [((1, 13, 13, 64), np.float32), ((3, 3, 1, 64), np.float32)]),
    ("depthwise_bf16", _depthwise, [((1, 9, 11, 32), BF16), ((3, 3, 1, 32), BF16)]),
]


def _compile_and_run(text, args):
    """A fresh compile's C, outputs and per-kernel figures (host time left out)."""
    import tt_xla
    tt_xla.client().clear_cache()
    exe = tt_xla.compile(text)
    outs = [np.asarray(o) for o in exe(*args)]
    return exe.source, outs, [{k: v for k, v in s.items() if k != "host_ns"} for s in exe.kernel_stats()]


@pytest.mark.parametrize("name,f,specs", SHORT_RUNS, ids=[c[0] for c in SHORT_RUNS])
def test_short_runs_copied_at_the_call_site_count_and_compute_as_the_engine(name, f, specs, monkeypatch):
    import importlib
    import tt_xla
    render = importlib.import_module("tt_xla.compiler.render")  # (the package exports a function of that name)
    args = [inputs(s, d, seed=i) for i, (s, d) in enumerate(specs)]  # (edge values mixed in)
    text = jax.export.export(jax.jit(f))(*args).mlir_module()
    runs = []
    for short in (render.SHORT_RUN_BYTES, 0):
        monkeypatch.setattr(render, "SHORT_RUN_BYTES", short)
        runs.append(_compile_and_run(text, args))
    tt_xla.client().clear_cache()
    (src, outs, stats), (plain_src, plain_outs, plain_stats) = runs
    assert "tt_dma_read_run(" in src and "tt_dma_write_run(" in src
    assert "_run(" not in plain_src[plain_src.index("/* tt:part"):]
    for a, b in zip(outs, plain_outs):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    assert stats == plain_stats and all(s["dma_bytes"] > 0 for s in stats)
    check(f, *args, rtol=2e-2 if name.endswith("bf16") else 1e-5, atol=2e-2 if name.endswith("bf16") else 1e-5)


@pytest.mark.parametrize("text,value", [
    ("64", 64), ("nc", 64), ("c1 - c0", 64), ("(it % 1) * 64", 0), ("it * 0", 0), ("it / 20", 0),
    ("K_MAX(7, c1 / 5)", 12), ("-c1 + 65", 1), ("nc > 3 ? 1 : 2", 1), ("c0 + w", None), ("it", None),
    ("it % 2", None), ("x", None), ("d", None), ("acc", None), ("begin", None)])
def test_render_knows_a_count_that_is_one_integer_for_every_item(text, value):
    from tt_xla.compiler import loopir as L
    from tt_xla.compiler.render import _item_values
    body = [L.Define("c0", "int64_t", "(it % 1) * 64"), L.Define("c1", "int64_t", "K_MIN(c0 + 64, (int64_t)64)"),
            L.Define("nc", "int64_t", "c1 - c0"), L.Define("w", "int64_t", "(it % 7) * 3"),
            L.Range("r", "0", "nc"), L.Define("x", "int64_t", "r + 1"), L.End(),
            L.Define("d", "int64_t", "1"), L.Define("d", "int64_t", "1"),  # (two of one name: not looked into)
            L.Var("acc", "int64_t", "0")]
    value_of = _item_values(L.LoopKernel("k", [], [], body, work_items=20))
    assert value_of(text) == value


# The DMAs a kernel issues at one point go through one call of prelude.c's k_dma_batch, which
# walks a static table of their descriptors (render._Batch): with every DMA a call of its own
# instead, each program must give the same bits and the same counters, kernel by kernel.
BATCHED = [
    ("layernorm", HOST_READS[1][1], HOST_READS[1][2]),  # scale and bias once a core, rows, fills, a write
    ("softmax_small", lambda x: jax.nn.softmax(x, -1), [((70, 129), np.float32)]),  # first-use counts
    ("bf16_rows", lambda x, y: (x * y).astype(jnp.float32).sum(-1), [((40, 300), BF16), ((40, 300), BF16)]),
    ("concat_stream", CASES[3][1], CASES[3][2]),  # streamed writes
    ("matmul_bias", lambda a, b, c: a @ b + c, [((96, 64), np.float32), ((64, 80), np.float32), ((80,), np.float32)]),
]


@pytest.mark.parametrize("name,f,specs", BATCHED, ids=[c[0] for c in BATCHED])
def test_batched_dmas_count_and_compute_as_one_call_each(name, f, specs, monkeypatch):
    import importlib
    import tt_xla
    render = importlib.import_module("tt_xla.compiler.render")
    # (a product's NaN from inf * 0 may land elsewhere than XLA's: edge values only elementwise)
    args = [inputs(s, d, seed=i, edges=name != "matmul_bias") for i, (s, d) in enumerate(specs)]
    text = jax.export.export(jax.jit(f))(*args).mlir_module()
    runs = []
    for batched in (True, False):
        if not batched:
            monkeypatch.setattr(render._Batch, "joins", lambda self, u, depth: False)
        runs.append(_compile_and_run(text, args))
    tt_xla.client().clear_cache()
    (src, outs, stats), (plain_src, plain_outs, plain_stats) = runs
    kernels, plain_kernels = (t[t.index("/* tt:part"):] for t in (src, plain_src))
    assert "k_dma_batch(" in kernels and "k_dma_batch(" not in plain_kernels
    if name == "layernorm":  # several DMAs at one point: one call, a table of several rows
        assert re.search(r"k_dma_batch\(core, ops, it == begin, [2-9], d_", kernels)
    for a, b in zip(outs, plain_outs):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    assert stats == plain_stats and all(s["dma_bytes"] > 0 for s in stats)
    check(f, *args, rtol=2e-2 if name.startswith("bf16") else 1e-4, atol=2e-2 if name.startswith("bf16") else 1e-4)
