"""Multi-output elementwise fusion (fuse._multi_output): kernels over one iteration space that
read a stored node in common are one loop kernel writing every result, so a shared input is
read from DRAM once; results equal CPU JAX, edge values included."""

import jax
import numpy as np
import pytest
from jax import numpy as jnp

import tt_xla
from tt_xla.compiler import fuse, optimize_function
from tt_xla.compiler.inline import inline_calls
from tt_xla.hlo_parser import parse_module

from util import BF16, check, inputs

GRAPHS = {  # name: (function, input shapes): elementwise only, no broadcast input
    "two": (lambda x, y: (x * y + 1, jnp.exp(x) - y), [(33, 65), (33, 65)]),
    "three": (lambda a, b, c: (jnp.tanh(a) + jnp.sin(b) * c, jnp.exp(a), a * b), [(7, 300)] * 3),
    "long_rows": (lambda x, y: (x - y, jnp.maximum(x, y), x > y), [(2, 5000), (2, 5000)]),
    "shared_work": (lambda x: (jnp.exp(x) * 2, jnp.exp(x) + 1), [(1, 1027)]),
    "mixed_dtypes": (lambda x, y: (x.astype(jnp.bfloat16) * 2, (x + y).astype(jnp.int32), jnp.abs(y)),
                     [(40, 33), (40, 33)]),
    "scalar": (lambda x, y: (x + y, x * y), [(), ()]),
    "vector": (lambda x, y: (x / y, jnp.where(x > 0, y, -y)), [(4097,), (4097,)]),
}


def _dram(f, args, level=0) -> tuple[int, int, tuple]:
    """(DRAM bytes the cores moved in one call, kernels launched, the outputs)."""
    jf = tt_xla.jit(f, compiler_options={"optimization_level": level})
    jf(*args)
    dev = tt_xla.client().devices()[0].runtime_device
    dev.reset_counters()
    out = jf(*args)
    c = dev.counters()
    return c["dma_bytes"] - c["noc_bytes"], c["kernels_launched"], out


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_results_equal_cpu_jax(name):
    f, shapes = GRAPHS[name]
    check(f, *[inputs(s, seed=i) for i, s in enumerate(shapes)], transcendental=True)


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_dram_bytes_are_inputs_plus_outputs(name, level):
    """Fusion efficiency 1.0: every input is read once and every output written once, in one
    kernel (without multi-output fusion a shared input is read by each kernel)."""
    f, shapes = GRAPHS[name]
    args = [inputs(s, seed=i) for i, s in enumerate(shapes)]
    moved, launched, out = _dram(f, args, level)
    assert moved == sum(a.nbytes for a in args) + sum(np.asarray(o).nbytes for o in out)
    assert launched == 1


def test_a_result_read_through_another_kernel_is_not_merged():
    """a = 2x is stored (an output), its row sum reads it, b = x + sum(a) reads x as a does: one
    kernel for a and b would be a cycle (b needs the sum, which needs a). They stay apart."""
    f = lambda x: (x * 2, x + (x * 2).sum(1, keepdims=True))  # noqa: E731
    x = inputs((30, 70), edges=False)
    check(f, x, atol=1e-4)  # a sum of 70 terms in another order
    text = jax.export.export(jax.jit(f))(x).mlir_module()
    p = fuse.plan(optimize_function(inline_calls(parse_module(text))))
    assert not any(k.extra for k in p.kernels)
    assert [k.kind for k in p.kernels] == ["loop", "reduce", "loop"]


def test_independent_kernels_around_a_dependency_are_merged_in_order():
    """c = exp(x) and d = x * s (s a reduction of y) share x: one kernel, placed after the
    reduction it needs, though c alone could run first."""
    f = lambda x, y: (jnp.exp(x), x * y.sum(0))  # noqa: E731
    args = [inputs((50, 64), seed=0), inputs((9, 64), seed=1, edges=False)]
    check(f, *args, transcendental=True)
    text = jax.export.export(jax.jit(f))(*args).mlir_module()
    p = fuse.plan(optimize_function(inline_calls(parse_module(text))))
    assert [(k.kind, len(k.outputs)) for k in p.kernels] == [("reduce", 1), ("loop", 2)]


def test_rows_that_do_not_collapse_write_row_by_row():
    """A broadcast along a middle dim keeps three dims: blocks of rows that are not one affine
    walk (the writer's per-row DMA, once per output)."""
    f = lambda x, b: (x + b, x * b, jnp.exp(x))  # noqa: E731
    x, b = inputs((3, 5, 40), seed=0), inputs((3, 1, 40), seed=1)
    check(f, x, b, transcendental=True)
    (k,) = tt_xla.jit(f).kernels(x, b)
    assert k.kind == "elementwise"


def test_transposed_reads_share_a_kernel():
    f = lambda x, y: (x.T * y, jnp.tanh(x.T))  # noqa: E731
    check(f, inputs((70, 90), seed=0), inputs((90, 70), seed=1), transcendental=True)


def test_outputs_are_capped_per_kernel():
    """Past fuse.MAX_OUTPUTS results a second kernel is started (and results stay right)."""
    n = fuse.MAX_OUTPUTS + 2
    f = lambda x: tuple(x * (i + 1) for i in range(n))  # noqa: E731
    x = inputs((64, 64))
    check(f, x)
    moved, launched, _ = _dram(f, [x])
    assert launched == 2 and moved == x.nbytes * (n + 2)


def test_empty_outputs():
    f, _ = GRAPHS["two"]
    check(f, np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float32))


def test_an_adam_update_reads_its_state_once():
    """Adam's m, v and parameter updates read the gradient, m and v: one kernel writes all three."""
    def adam(p, g, m, v):
        m2 = 0.9 * m + 0.1 * g
        v2 = 0.999 * v + 0.001 * g * g
        return p - 1e-3 * m2 / (jnp.sqrt(v2) + 1e-8), m2, v2
    args = [inputs((256, 300), seed=i, edges=False) for i in range(4)]
    args[3] = np.abs(args[3])
    check(adam, *args)
    moved, launched, _ = _dram(adam, args)
    assert launched == 1 and moved == 7 * args[0].nbytes


def test_a_result_read_in_the_loop_is_its_stored_value():
    """A consumer of a bf16 result in the same kernel sees the rounded value it would read back."""
    f = lambda x: (x.astype(jnp.bfloat16), x.astype(jnp.bfloat16).astype(jnp.float32) * 2)  # noqa: E731
    x = np.array([1.00001, 3.14159, -2.7182817, 1e-3], np.float32)
    got = check(f, x, rtol=0, atol=0)
    assert len(tt_xla.jit(f).kernels(x)) == 1
    assert np.asarray(got[1])[0] == 2.0


def test_the_plan_lists_every_result_and_read():
    """A merged kernel lists its results (`outputs`) and the stored nodes it reads (its own
    results excluded), as the graph walk derives them: what scheduling and memory planning use."""
    def adam(p, g, m, v):
        m2 = 0.9 * m + 0.1 * g
        v2 = 0.999 * v + 0.001 * g * g
        return p - 1e-3 * m2 / (jnp.sqrt(v2) + 1e-8), m2, v2
    args = [np.ones((8, 8), np.float32)] * 4
    text = jax.export.export(jax.jit(adam))(*args).mlir_module()
    p = fuse.plan(optimize_function(inline_calls(parse_module(text))))
    (k,) = p.kernels
    assert len(k.outputs) == 3 and set(k.outputs) == set(p.graph.outputs)
    assert list(k.reads) == fuse._reads(k, p.materialized)
    assert {r.id for r in k.reads} == {q.id for q in p.graph.params}


def test_an_intermediate_only_its_kernel_reads_is_not_stored():
    """erf-GELU is too costly to recompute in two kernels, so fusion stores it; once both readers
    share one kernel it is computed there once and never stored: DRAM bytes = inputs + outputs.
    Its input comes from another kernel (a reduction), which the merged kernel still runs after."""
    f = lambda x, y: (jax.nn.gelu(x * y.sum(0), approximate=False) * 2,  # noqa: E731
                      jax.nn.gelu(x * y.sum(0), approximate=False) + 1)
    args = [inputs((64, 96), seed=0), inputs((5, 96), seed=1, edges=False)]
    check(f, *args, transcendental=True)
    text = jax.export.export(jax.jit(f))(*args).mlir_module()
    p = fuse.plan(optimize_function(inline_calls(parse_module(text))))
    assert [(k.kind, len(k.outputs)) for k in p.kernels] == [("reduce", 1), ("loop", 2)]
    g = lambda x: (jax.nn.gelu(x, approximate=False) * 2, jax.nn.gelu(x, approximate=False) + 1)  # noqa: E731
    x = inputs((100, 100))
    moved, launched, _ = _dram(g, [x])
    assert launched == 1 and moved == 3 * x.nbytes


@pytest.mark.parametrize("shape", [(4, 8, 64), (6, 3, 5, 33)])
def test_concat_pieces_reading_the_same_elements_are_one_kernel(shape):
    """Concat pieces over one shape that read the same elements (eigh's two rotated sides of each
    pair, one of them stored reversed) are one kernel that reads every input once
    (fuse._merge_pieces; the reversed piece's value is computed and stored through the reversed
    strides, fuse._reversed_piece, not stored first and then read reversed). Pieces that read
    other elements (a reversed input) stay apart."""
    args = [inputs(shape, seed=i) for i in range(2)]

    def same(x, y):
        return jnp.concatenate([x * y - x, jnp.flip(jnp.maximum(x, y), axis=0)], axis=0)

    def other(x, y):
        return jnp.concatenate([x * y, jnp.flip(x, axis=0) * y], axis=0)

    def stored(x, y):  # both pieces copy one stored value (an output too): not computed in them
        v = x + y
        return jnp.concatenate([v, v], axis=0), v

    check(same, *args)
    check(other, *args)
    check(stored, *args)
    moved, launched, out = _dram(same, args)
    assert launched == 1 and moved == sum(a.nbytes for a in args) + np.asarray(out).nbytes
    assert _dram(other, args)[1] == 2


def test_merged_pieces_of_two_concatenates_are_written_before_either_is_read():
    """Pieces of two concatenates that read the same elements are one kernel, listed under the
    first concatenate; the second's reader must still wait for it (it summed only the second's
    other piece when the schedule let it run first). Also inside a loop body."""
    def two(x, y, z):
        c1 = jnp.concatenate([jnp.sin(x), y * 2], 0)
        c2 = jnp.concatenate([jnp.cos(x), z * 3], 0)
        return c1, jnp.sum(c2, axis=0), jnp.sum(c2)

    def looped(a, b, z):
        def body(i, c):
            a, b = c
            c1 = jnp.concatenate([jnp.sin(a[:32]), b[:32] * .5], 0)
            c2 = jnp.concatenate([jnp.cos(a[:32]), jnp.tanh(b[32:])], 0)
            return c1 + z, c2.sum(0, keepdims=True) * c1
        return jax.lax.fori_loop(0, 3, body, (a, b))

    args = [inputs((64, 64), seed=i, edges=False) for i in range(3)]
    check(two, *args, transcendental=True)
    check(looped, *args, transcendental=True)


SIBLINGS = {  # name: (function, input shapes, dtype, kernels): row reductions reading the same nodes
    "pair_products": (lambda x: (jnp.sum(x[0] * x[1], -1), jnp.sum(x[0] * x[0], -1), jnp.sum(x[1] * x[1], -1)),
                      [(2, 300, 64)], np.float32, 1),
    "four": (lambda x: (jnp.sum(x, -1), jnp.max(x, -1), jnp.min(x, -1), jnp.prod(x * 0.01 + 1, -1)),
             [(33, 65)], np.float32, 1),
    "two_inputs": (lambda x, y: (jnp.sum(x * y, (1, 2)), jnp.max(x - y, (1, 2))), [(3, 40, 70), (3, 40, 70)],
                   np.float32, 1),
    "long_rows": (lambda x: (jnp.sum(x, -1), jnp.sum(x * x, -1)), [(5, 9000)], np.float32, 1),
    "mixed_dtypes": (lambda x: (jnp.sum(x, -1), jnp.max(x, -1), jnp.any(x > 3, -1)),
                     [(500, 17)], np.int32, 1),
    "bf16": (lambda x: (jnp.sum(x, -1, dtype=jnp.float32), jnp.max(x, -1)), [(64, 300)], BF16, 1),
    "capped": (lambda x: tuple(jnp.sum(x * (i + 1), -1) for i in range(fuse.MAX_SIBLINGS + 1)), [(20, 40)],
               np.float32, 2),
    # not siblings: column reductions (strips of kept columns), or a reduction reading another's result
    "columns": (lambda x: (jnp.sum(x, 0), jnp.max(x, 0)), [(70, 50)], np.float32, 2),
    "mean_var": (lambda x: (jnp.mean(x, -1), jnp.var(x, -1)), [(40, 80)], np.float32, 2),
}


@pytest.mark.parametrize("name", sorted(SIBLINGS))
def test_sibling_row_reductions_are_one_kernel(name):
    """Row reductions over one operand space reading the same stored nodes are one reduce kernel
    writing each result (fuse._sibling_reductions), so their operands are read once; results as
    CPU JAX's, edge values included."""
    f, shapes, dtype, kernels = SIBLINGS[name]
    # (no huge values: +-1e20 in one row make a sum depend on its order)
    args = [inputs(s, dtype, seed=i, **({"low": -9, "high": 9} if dtype == np.int32 else {"huge": False}))
            for i, s in enumerate(shapes)]
    if name in ("four", "two_inputs", "bf16"):
        # XLA:CPU's vectorized max may drop a NaN (tests/test_ops_reduce.py): none here
        args = [np.where(np.isnan(a), 1, a).astype(a.dtype) for a in args]
    tol = 2e-2 if dtype == BF16 else 1e-4
    check(f, *args, rtol=tol, atol=tol)
    ks = tt_xla.jit(f).kernels(*args)
    assert len([k for k in ks if k.name.endswith("reduce")]) == kernels, [k.name for k in ks]
    if kernels == 1:
        moved, launched, out = _dram(f, args)
        assert moved == sum(a.nbytes for a in args) + sum(np.asarray(o).nbytes for o in out)


ALONGSIDE = {  # name: (function, input shapes, kernels launched)
    # reductions stored straight into a concat (fuse._reductions_into_concats), one reversed
    "into_concat": (lambda x: jnp.concatenate([jnp.sum(x, -1), jnp.flip(jnp.max(x, -1), 0)]), [(33, 65)], 1),
    "into_concat_2d": (lambda x: jnp.concatenate([jnp.sum(x * x, -1), jnp.flip(jnp.sum(x, -1), (0, 1))], 1),
                       [(3, 7, 40)], 1),
    # ...and a row reduction and the concat pieces over its operand's space it shares reads with
    # (fuse._reductions_with_stores): eigh's move and its next sums, in small
    "stores": (lambda x, y: (jnp.concatenate([x * 2 - y, jnp.flip(x * 3 + y, 0)], 0),
                             jnp.sum((x * 2 - y) * (x * 3 + y), -1)), [(3, 37, 45), (3, 37, 45)], 1),
    "stores_long_rows": (lambda x, y: (jnp.concatenate([x - y, x + y], 0), jnp.sum((x - y) * (x + y), -1),
                                       jnp.max(x - y, -1)), [(3, 5000), (3, 5000)], 1),
    "one_row": (lambda x, y: (jnp.concatenate([x - y, jnp.minimum(x, y)]), jnp.sum((x - y) * 2)), [(7,), (7,)], 1),
    # not for a large loop over a few rows (fuse.STORES_MIN_ROWS): its work items would be the rows
    "few_rows": (lambda x, y: (jnp.concatenate([x - y, x + y], 0), jnp.sum((x - y) * (x + y), -1)),
                 [(4, 30000), (4, 30000)], 2),
    "stores_and_into": (lambda x, y: (jnp.concatenate([x * y, jnp.flip(x - y, (0, 1))], 1),
                                      jnp.concatenate([jnp.sum(x * y, -1), jnp.flip(jnp.sum(x - y, -1), 1)], 1)),
                        [(4, 6, 3, 70), (4, 6, 3, 70)], 1),
    # x - y reversed along its rows' dim is stored first (a reversed piece keeps its runs' order):
    # the reduction's kernel computes and stores it, and the sums of x * y
    "stored_root": (lambda x, y: (jnp.concatenate([x * y, jnp.flip(x - y, (0, 1))], 1),
                                  jnp.concatenate([jnp.sum(x * y, -1), jnp.flip(jnp.sum(x - y, -1), 1)], 1)),
                    [(4, 6, 70), (4, 6, 70)], 3),
}


@pytest.mark.parametrize("name", sorted(ALONGSIDE))
def test_reductions_store_into_concats_and_beside_loops(name):
    """A reduction read only as a piece of a concat (or reversed) is written there by its own
    kernel, not stored and copied; and a row reduction shares its loop with the concat pieces
    over its operand's space that read what it reads, so one kernel reads the inputs once and
    writes the pieces and the sums. Results as CPU JAX's, edge values included; DRAM bytes the
    inputs and outputs only."""
    f, shapes, kernels = ALONGSIDE[name]
    args = [inputs(s, seed=i, huge=False) for i, s in enumerate(shapes)]
    args = [np.where(np.isnan(a), 1, a).astype(a.dtype) for a in args]  # (XLA:CPU's max may drop a NaN)
    check(f, *args, rtol=1e-4, atol=1e-4)
    moved, launched, out = _dram(f, args)
    assert launched == kernels, [k.name for k in tt_xla.jit(f).kernels(*args)]
    if kernels == 1:
        assert moved == sum(a.nbytes for a in args) + sum(np.asarray(o).nbytes for o in jax.tree_util.tree_leaves(out))


def test_concatenate_of_concatenates_stores_each_piece_once():
    """A concatenate read only as a piece of another one is not stored itself: its pieces are
    stored in place in the outer one (fuse._inner_concats), so a matrix assembled from row panels
    of blocks (Cholesky's factor) copies each block once. Along either dim, nested twice, pieces
    computed, copied and viewed; one read elsewhere too stays stored (and is copied)."""
    def nested(a, b, c, d):
        top = jnp.concatenate([a, jnp.concatenate([b[:, :20] * 2, b[:, 20:]], 1)], 1)  # also read below
        bottom = jnp.concatenate([c.T, jnp.sin(d)], 1)
        return jnp.concatenate([top, bottom, jnp.concatenate([top[:5, :40], d[:5] + 1], 1)], 0)

    def shared(a, b, c, d):  # the inner concatenate is an output too: stored once, then copied
        inner = jnp.concatenate([a, b], 1)
        return jnp.concatenate([inner, jnp.concatenate([c, d], 1)], 0), inner

    args = [inputs((40, 40), seed=i) for i in range(4)]
    check(nested, *args, transcendental=True)
    check(shared, *args)
    moved, launched, out = _dram(nested, args)
    # top: 3 pieces; bottom's 2 and the last row block's 2 stored in the result; top copied
    x, top = args[0].nbytes, 2 * args[0].nbytes
    assert launched == 8
    assert moved == 4 * x + x // 8 + top + top // 16 + top + np.asarray(out).nbytes
    assert _dram(shared, args)[1] == 5  # inner's two pieces, its copy, the other two pieces
