"""Cost figures computed by walking the loop IR (compiler/cost.py) against what the cores count
when the kernels run, plus the walk itself on hand-written IR; and the fusion plan's kernels
carrying their reads and writes."""

import jax
import numpy as np
import pytest
from jax import numpy as jnp

import tt_xla
from tt_xla.compiler import cost, fuse
from tt_xla.compiler.cost import DATA, Expr, figures
from tt_xla.compiler.loopir import (Alu, CircularBuffer, Define, DmaRead, End, Load, LoopKernel, MatMul, Operand,
                                    Range, VectorOps)


def _text(f, *args):
    return jax.export.export(jax.jit(f))(*args).mlir_module()


def _f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# one of each kernel kind, with blocks that do not divide the shapes (last, shorter pieces)
PROGRAMS = {
    "rows": (lambda x, y: x * y, [_f32(7, 300), _f32(7, 300, seed=1)]),
    "broadcast": (lambda x, y: x + y, [_f32(100, 300), _f32(300)]),
    "transpose": (lambda x: x.T + 1, [_f32(70, 90)]),
    # a batched transposed read turned into rows in SRAM (a page that no DMA fills)
    "symmetrise": (lambda x: (x + jnp.swapaxes(x, -1, -2)) / 2, [_f32(3, 70, 70)]),
    "row_sum": (lambda x: x.sum(1), [_f32(100, 5000)]),
    "column_sum": (lambda x: x.sum(0), [_f32(300, 700)]),
    "softmax": (lambda x: jax.nn.softmax(x, -1), [_f32(100, 4000)]),
    "mean_of_product": (lambda x, y: (x * y[None]).mean(1), [_f32(100, 4000), _f32(4000)]),
    # rows enough for items of several outputs (the last one short), the mean read once per item
    "variance_rows": (lambda x: jnp.square(x - x.mean(1, keepdims=True)).mean(1), [_f32(4100, 96)]),
    "matmul": (lambda x, w: x @ w, [_f32(300, 200), _f32(200, 600)]),
    "matmul_epilogue": (lambda x, w, b: jax.nn.gelu(x @ w + b), [_f32(300, 200), _f32(200, 600), _f32(600)]),
    # products written in place (batched, stored through transposes, B read in place or packed)
    "rfft2": (jnp.fft.rfft2, [_f32(64, 96)]),
    "bf16_matmul": (lambda x, w: x @ w, [_f32(64, 128).astype(jnp.bfloat16), _f32(128, 96).astype(jnp.bfloat16)]),
    "int_matmul": (lambda x, w: x @ w, [np.arange(1200, dtype=np.int32).reshape(30, 40) % 7,
                                        np.arange(800, dtype=np.int32).reshape(40, 20) % 5]),
    # implicit im2col: overlapping patch rows DMA'd once into a page the engine reads (MatMul.a_page)
    "windowed_conv": (lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                                dimension_numbers=("NHWC", "HWIO", "NHWC")),
                      [_f32(2, 5, 40, 8), _f32(3, 3, 8, 16, seed=1)]),
    "cumsum": (lambda x: jnp.cumsum(x, 1), [_f32(50, 3000)]),
    "cumsum_columns": (lambda x: jnp.cumsum(x, 0), [_f32(300, 50)]),
    "sort": (lambda x: jnp.sort(x, -1), [_f32(5, 1000)]),
    "gather": (lambda x, i: x[i], [_f32(100, 300), np.arange(50, dtype=np.int32) * 7 % 100]),
    "scatter": (lambda x, i, u: x.at[i].add(u), [_f32(100, 300), np.arange(50, dtype=np.int32) * 3 % 100,
                                                 _f32(50, 300)]),
    # multi-output loop kernels: rows, a long row's chunks, a transposed read, rows one by one
    "two_outputs": (lambda x, y: (x * y + 1, jnp.exp(x) - y), [_f32(7, 300), _f32(7, 300, seed=1)]),
    "two_outputs_chunks": (lambda x, y: (x - y, jnp.maximum(x, y)), [_f32(2, 5000), _f32(2, 5000, seed=1)]),
    "two_outputs_transposed": (lambda x, y: (x.T * y, jnp.tanh(x.T)), [_f32(70, 90), _f32(90, 70, seed=1)]),
    "three_outputs_3d": (lambda x, b: (x + b, x * b, jnp.exp(x)), [_f32(3, 5, 40), _f32(3, 1, 40, seed=1)]),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_ir_figures_are_what_the_cores_count(name):
    """Every kernel's figures from its IR equal the cores' counters after it ran: the DMA bytes,
    the vector instructions and the matrix tiles (the engine's own count, its packing's bytes)."""
    f, args = PROGRAMS[name]
    c = tt_xla.client()
    exe = c.compile(_text(f, *args))
    exe.execute([c.buffer_from_pyval(a) for a in args])
    for k, s in zip(exe.kernels(), exe.kernel_stats()):
        assert s["name"] == k.name
        assert (k.dma_bytes, k.vector_ops, k.matrix_tiles) == (s["dma_bytes"], s["vector_ops"], s["matrix_tiles"]), \
            (k.name, k.kind, k.ir)
        assert k.sram_bytes == s["sram_bytes"]


def test_engine_products_write_their_blocks_in_place():
    """An f32 product with nothing applied is computed straight into its DRAM place on the host
    (its page still reserved and its DMA counted: the figures test above holds for it); one with
    an epilogue still writes its rows from the page."""
    c = tt_xla.client()
    for name, in_place in (("matmul", True), ("matmul_epilogue", False)):
        f, args = PROGRAMS[name]
        (k,) = [k for k in c.compile(_text(f, *args)).kernels() if k.kind == "matmul"]
        assert ("(host: in place)" in k.ir) == in_place, k.ir


def test_merge_pass_figures_bound_the_data_dependent_dma():
    """A long sort's merge passes find their start by a binary search whose DMAs the data decides:
    their figure is an upper bound (every search step moves an element, every block its run)."""
    x = _f32(300000)
    c = tt_xla.client()
    exe = c.compile(_text(jnp.argsort, x))
    exe.execute([c.buffer_from_pyval(x)])
    merges = [(k, s) for k, s in zip(exe.kernels(), exe.kernel_stats()) if "var slo" in k.ir]  # (the merge path search)
    assert merges
    for k, s in merges:
        assert k.dma_bytes >= s["dma_bytes"] > 0
        assert k.vector_ops == s["vector_ops"]


# ----------------------------------------------------------------------------- the walk itself
def _env(**values):
    return lambda name: values[name]


def test_c_expressions_keep_c_semantics():
    e = Expr("-7 / 2 + (-7) % 2 * 10")      # C truncates: -3 and -1
    assert e(_env()) == -13
    assert Expr("K_MIN(a + 1, (int64_t)b) << 2")(_env(a=4, b=9)) == 20
    assert Expr("a > 2 ? a - 2 : 0")(_env(a=np.array([1, 5]))).tolist() == [0, 3]
    assert Expr("(x - 1) / 3 + 1")(_env(x=np.array([1, 3, 4]))).tolist() == [1, 1, 2]
    assert Expr("K_MIN(a, b) + c").names == {"a", "b", "c"}
    # a value the data decides: a minimum with a known side is bounded by it, a condition by 1
    assert Expr("K_MIN((int64_t)64, n - d)")(_env(n=100, d=DATA)) == 64
    assert Expr("d < e")(_env(d=DATA, e=3)) == 1
    assert Expr("d + 1")(_env(d=DATA)) is DATA
    with pytest.raises(ValueError, match="cannot read"):
        Expr("a[1]")


def _kernel(body, items=3, cbs=None, operands=None):
    return LoopKernel("k", operands or [], cbs or [], body, items)


def test_trip_counts_and_steps():
    cb = CircularBuffer("cb", "float", 4, 256)
    op = Operand(0, "float", False)
    body = [Define("c0", "int64_t", "it * 100"), Define("c1", "int64_t", "K_MIN(c0 + 100, (int64_t)250)"),
            Range("s", "c0", "c1", step=32),          # 4, 4 and 2 steps over items 0, 1, 2
            DmaRead(cb, "pg", "0", op, "s", "K_MIN((int64_t)32, c1 - s)", 1),  # the last piece shorter
            Range("j", "0", "8"), Alu("v", "float", "1", cost=3), End(),
            End(),
            VectorOps("2 * ((c1 - c0 + 1023) / 1024)")]
    f = figures(_kernel(body, cbs=[cb], operands=[op]))
    assert f.dma_bytes == 250 * 4           # the pieces sum to the elements, not steps x 32
    assert f.alu_ops == 3 * 8 * 10          # cost x elements: 10 steps of 8
    assert f.vector_ops == 2 * 3
    assert f.sram_bytes == cb.bytes


def test_matrix_engine_calls_and_dependent_ranges():
    a, b = Operand(0, "uint16_t", False), Operand(1, "uint16_t", False)
    body = [Define("m", "int64_t", "K_MIN((int64_t)64, 100 - it * 64)"),   # 64, then 36 rows
            MatMul("tt_matmul_bf16", "m", "48", 40, a, "0", 40, 1, b, "0", 1, 48, "c_", "48")]
    f = figures(_kernel(body, items=2, operands=[a, b]))
    assert f.matrix_tiles == (2 + 2) * 2 * 2    # ceil(m/32) x ceil(48/32) x ceil(40/32) per call
    assert f.dma_bytes == (100 * 40 + 2 * 40 * 48) * 2  # each call packs its A rows and all of B
    # a range whose trip count depends on an outer range's variable is stepped through
    body = [Range("i", "0", "4"), Range("j", "0", "i"), VectorOps("1"), End(), End()]
    assert figures(_kernel(body, items=5)).vector_ops == 5 * (0 + 1 + 2 + 3)


def test_counts_the_data_decides_need_a_bound():
    cb = CircularBuffer("cb", "float", 4, 64)
    op = Operand(0, "float", False)
    body = [Load("n", "int32_t", "pg", "0"), DmaRead(cb, "pg", "0", op, "0", "n", 1)]
    with pytest.raises(ValueError, match="decided by the data"):
        figures(_kernel(body, cbs=[cb], operands=[op]))


def test_every_suite_figure_comes_from_the_ir():
    """No lowering states figures: a LoopKernel has only its IR (the cost property walks it)."""
    k = _kernel([VectorOps("it + 1")], items=4)
    assert k.vector_ops == 1 + 2 + 3 + 4 and k.cost is k.cost  # computed once
    assert not any(f in LoopKernel.__dataclass_fields__ for f in ("vector_ops", "dma_bytes", "matrix_tiles"))
    assert cost.Figures() == figures(_kernel([], items=0))


# ----------------------------------------------------------------------------- the fusion plan
def test_plan_kernels_carry_reads_and_writes(monkeypatch):
    """schedule, memory planning and the lowering check take each kernel's reads from the plan:
    with the graph walk that derives them disabled after planning, compilation still works."""
    from tt_xla.compiler import compile_module, optimize_function
    from tt_xla.compiler.inline import inline_calls
    from tt_xla.hlo_parser import parse_module
    x = _f32(64, 100)
    text = _text(lambda x: jax.nn.softmax(x, -1) @ x.T, x)
    p = fuse.plan(optimize_function(inline_calls(parse_module(text))))
    for k in p.kernels:
        assert k.reads is not None and k.writes is k.dest.src
        assert fuse.reads(k, p.materialized) == list(k.reads) == fuse._reads(k, p.materialized)
    plan = fuse.plan

    def planned(graph):
        got = plan(graph)
        monkeypatch.setattr(fuse, "_reads", lambda *a: pytest.fail("reads derived again after planning"))
        return got
    monkeypatch.setattr("tt_xla.compiler.plan", planned)
    prog = compile_module(parse_module(text))
    assert prog.kernels and prog.arena_bytes > 0


def test_vector_events_cover_the_alu_work(monkeypatch):
    """The `VectorOps` events a lowering emits summarize its ALU ops: never fewer tile-wide
    instructions than the op table's costs of the `Alu` ops over the elements they run on."""
    import tt_xla.compiler as compiler
    seen: list[LoopKernel] = []
    lower = compiler.lower_kernel
    monkeypatch.setattr(compiler, "lower_kernel", lambda *a, **kw: seen.append(lower(*a, **kw)) or seen[-1])
    for name, (f, args) in PROGRAMS.items():
        compiler.compile_text(_text(f, *args))
    assert any(k.cost.alu_ops for k in seen)
    for k in seen:
        assert k.cost.alu_ops <= 1024 * k.vector_ops, (k.name, k.kind, k.cost)


def test_a_product_whose_k_depends_on_the_range_is_stepped_through():
    """bfp8 products take K in chunks (`kn_`, the last one short): a range whose only dependent
    figure is a product's K is walked step by step, not as trip count x its first pass."""
    a, b = Operand(0, "float", False), Operand(1, "float", False)
    body = [Range("kq_", "0", "3"), Define("kn_", "int64_t", "K_MIN((int64_t)512, 1100 - kq_ * 512)"),
            MatMul("tt_matmul_f32", "32", "32", "kn_", a, "0", 1100, 1, b, "0", 32, 1, "c_", "32"), End()]
    f = figures(LoopKernel("k", [a, b], [], body, 1))
    assert f.matrix_tiles == sum(-(-k // 32) for k in (512, 512, 76))
    assert f.dma_bytes == sum(32 * k * 4 * 2 for k in (512, 512, 76))
