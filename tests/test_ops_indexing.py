"""Gather, scatter and dynamic slices on the device vs CPU JAX: table-driven over dtypes and
shapes (non-multiples of 32, size-0 and size-1 dims), out-of-range and repeated indices, and the
programs that use them (embedding lookups and their gradient, integer-label cross-entropy with
Adam, segment_sum, take_along_axis)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tt_xla
from util import BF16, check, inputs

DTYPES = [np.float32, BF16, np.float16, np.int32, np.uint8, np.bool_]


def _ids(n, hi, seed=0, lo=0):
    return np.random.default_rng(seed).integers(lo, hi, n).astype(np.int32)


# ----------------------------------------------------------------------------- gather
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,n", [((10, 4), 6), ((37, 65), 33), ((1, 1), 1), ((5, 0), 3), ((7, 3), 0),
                                     ((50, 1500), 5)])
def test_take_rows(dtype, shape, n):
    x = inputs(shape, dtype)
    check(lambda t, i: t[i], x, _ids(n, shape[0]))


@pytest.mark.parametrize("mode", ["clip", "fill"])
def test_take_out_of_range(mode):
    """Out-of-range and negative ids: jnp's modes (clamped gather, or filled after a
    range check) both as CPU JAX gives them."""
    x = inputs((9, 5), np.float32)
    ids = np.array([-20, -1, 0, 8, 9, 100, 3], np.int32)
    check(lambda t, i: jnp.take(t, i, axis=0, mode=mode), x, ids)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_take_along_axis(axis):
    x = inputs((6, 35, 4), np.float32)
    shape = list(x.shape)
    shape[axis] = 3
    idx = np.random.default_rng(axis).integers(0, x.shape[axis], shape).astype(np.int32)
    check(lambda a, i: jnp.take_along_axis(a, i, axis=axis), x, idx)


def test_gather_point_and_window():
    """Several index components, windows in the middle of the operand, index type i64->i32 mix."""
    x = inputs((11, 13, 7), np.float32)
    i = np.array([[0, 12], [10, 0], [5, 5], [-3, 40]], np.int32)
    check(lambda a, ii: a[ii[:, 0], ii[:, 1]], x, i)
    check(lambda a, ii: a[ii[:, 0], :, ii[:, 1] % 7], x, i)
    check(lambda a, ii: a[:, ii[:, 1] % 13], x, i)


@pytest.mark.parametrize("dtype", [np.float32, BF16, np.int32, np.uint8, np.bool_], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("idx_dtype", [np.int32, np.uint8, np.int16])
def test_dynamic_slice(dtype, idx_dtype):
    x = inputs((40, 70), dtype)
    for s in ([0, 0], [3, 60], [39, 69], [-5, 2] if np.dtype(idx_dtype).kind == "i" else [200, 2]):
        check(lambda a, i, j: jax.lax.dynamic_slice(a, (i, j), (5, 33)), x,
              np.array(s[0]).astype(idx_dtype), np.array(s[1]).astype(idx_dtype))


def test_dynamic_slice_corners():
    x = inputs((4, 1, 0), np.float32)
    check(lambda a, i: jax.lax.dynamic_slice(a, (i, 0, 0), (2, 1, 0)), x, np.int32(3))
    y = inputs((2049,), np.float32)
    check(lambda a, i: jax.lax.dynamic_slice(a, (i,), (2000,)), y, np.int32(17))
    check(lambda a, i: jax.lax.dynamic_slice(a, (i,), (1,)), y, np.int32(-1))


# ----------------------------------------------------------------------------- scatter
@pytest.mark.parametrize("dtype", [np.float32, BF16, np.float16, np.int32, np.uint8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["set", "add", "mul", "min", "max"])
def test_at_repeated(dtype, op):
    """x.at[idx].<op>(u) with repeated (and out-of-range, dropped) indices."""
    x = inputs((17, 35), dtype, seed=1)
    ids = np.array([3, 3, 0, 16, 3, 20, -1, 7, 7], np.int32)
    u = inputs((len(ids), 35), dtype, seed=2)
    check(lambda a, i, v: getattr(a.at[i], op)(v), x, ids, u)


@pytest.mark.parametrize("op", ["set", "add", "mul", "min", "max"])
def test_at_scalar_updates(op):
    """Elementwise scatter (no window): every update lands on one element; repeats fold in order."""
    x = inputs((1000,), np.float32, seed=3)
    ids = _ids(3000, 1000, seed=4)
    u = inputs((3000,), np.float32, seed=5)
    check(lambda a, i, v: getattr(a.at[i], op)(v), x, ids, u)


def test_at_bool_and_2d_points():
    x = inputs((9, 11), np.bool_)
    i = np.array([[0, 0], [8, 10], [4, 4], [4, 4]], np.int32)
    check(lambda a, ii: a.at[ii[:, 0], ii[:, 1]].set(True), x, i)
    y = inputs((9, 11), np.int32)
    check(lambda a, ii: a.at[ii[:, 0], ii[:, 1]].add(5), y, i)


def test_scatter_arbitrary_body():
    """A body that is not one op (lax.scatter_apply's function): applied per element."""
    x = inputs((33, 5), np.float32, edges=False)
    ids = np.array([[1], [4], [1], [32]], np.int32)
    dn = jax.lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(0,),
                                         scatter_dims_to_operand_dims=(0,))
    check(lambda a, i: jax.lax.scatter_apply(a, i, lambda v: v * 2.0 + 1.0, dn, update_shape=(4, 5)), x, ids)


def test_dynamic_update_slice():
    x = inputs((40, 70), np.float32)
    u = inputs((5, 33), np.float32, seed=7)
    for s in ([0, 0], [3, 60], [39, 69], [-5, 2]):
        check(lambda a, b, i, j: jax.lax.dynamic_update_slice(a, b, (i, j)), x, u, np.int32(s[0]), np.int32(s[1]))
    b = inputs((3, 0), np.float32)
    check(lambda a, b, i: jax.lax.dynamic_update_slice(a, b, (i, i)), x, b, np.int32(2))


def test_segment_sum_and_empty():
    d = inputs((300, 37), np.float32, edges=False)
    s = _ids(300, 11, seed=8)
    check(lambda a, b: jax.ops.segment_sum(a, b, 11), d, s)
    check(lambda a, b: jax.ops.segment_max(a, b, 11), d, s)
    check(lambda a, b, c: a.at[b].add(c), inputs((5, 3), np.float32), np.zeros((0,), np.int32),
          np.zeros((0, 3), np.float32))


def test_conflicts_deterministic():
    """Repeated float adds to one row land in the same order every run."""
    x = np.zeros((4, 64), np.float32)
    ids = np.zeros(4096, np.int32)
    u = inputs((4096, 64), np.float32, edges=False, seed=9) * np.float32(1e4)
    f = tt_xla.jit(lambda a, i, v: a.at[i].add(v))
    r1, r2 = np.asarray(f(x, ids, u)), np.asarray(f(x, ids, u))
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(r1, np.asarray(jax.jit(lambda a, i, v: a.at[i].add(v))(x, ids, u)), rtol=1e-5, atol=1e-2)


# ----------------------------------------------------------------------------- on the device
def test_gather_moves_rows_by_dma():
    """The embedding lookup is one gather kernel whose DMA counts the rows it moved, plus the
    index reads; every kernel touches DRAM only by DMA (conftest checks the IR)."""
    tab = inputs((500, 96), np.float32)
    ids = _ids(64, 500)
    f = tt_xla.jit(lambda t, i: t[i])
    f(tab, ids)
    ks = [k for k in f.kernels(tab, ids) if k.kind == "gather"]
    assert len(ks) == 1
    assert "dma_read" in ks[0].ir and "load xix" in ks[0].ir
    assert ks[0].dma_bytes >= 2 * 64 * 96 * 4


# ----------------------------------------------------------------------------- programs
def test_embedding_lm_value_and_grad():
    import flax.linen as nn

    class LM(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(97, 32)(ids)
            h = nn.Dense(32)(jnp.tanh(h))
            return nn.Dense(97)(h)

    m = LM()
    ids = _ids(2 * 13, 97, seed=10).reshape(2, 13)
    params = m.init(jax.random.PRNGKey(0), ids)

    def loss(p, ids):
        logits = m.apply(p, ids[:, :-1])
        lp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(lp, ids[:, 1:, None], axis=-1))
    check(jax.value_and_grad(loss), params, ids, rtol=1e-4, atol=1e-5)


def test_mlp_train_step_integer_labels_adam():
    import optax
    rng = np.random.default_rng(11)
    params = {"w1": (rng.standard_normal((20, 33)) * 0.2).astype(np.float32), "b1": np.zeros(33, np.float32),
              "w2": (rng.standard_normal((33, 10)) * 0.2).astype(np.float32), "b2": np.zeros(10, np.float32)}
    x = rng.standard_normal((45, 20)).astype(np.float32)
    y = rng.integers(0, 10, 45).astype(np.int32)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    def step(p, s, x, y):
        def loss(p):
            h = jax.nn.relu(x @ p["w1"] + p["b1"])
            return optax.softmax_cross_entropy_with_integer_labels(h @ p["w2"] + p["b2"], y).mean()
        l, g = jax.value_and_grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, l
    check(step, params, state, x, y, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- scatter of several operands
def _scatter2_text(shape, idx_shape, upd_shape, vt, ct, dn):
    """A two-operand scatter keeping, per element, the greatest value and its payload (an update
    wins only when strictly greater, so repeated indices depend on the order they apply in)."""
    t = lambda s, d: f"tensor<{'x'.join(map(str, s))}x{d}>"
    v, c, i, uv, uc = t(shape, vt), t(shape, ct), t(idx_shape, "i32"), t(upd_shape, vt), t(upd_shape, ct)
    return f"""func.func @main(%v: {v}, %c: {c}, %i: {i}, %uv: {uv}, %uc: {uc}) -> ({v}, {c}) {{
  %0:2 = "stablehlo.scatter"(%v, %c, %i, %uv, %uc) ({{
  ^bb0(%a: tensor<{vt}>, %b: tensor<{ct}>, %x: tensor<{vt}>, %y: tensor<{ct}>):
    %gt = stablehlo.compare GT, %x, %a : (tensor<{vt}>, tensor<{vt}>) -> tensor<i1>
    %m = stablehlo.select %gt, %x, %a : tensor<i1>, tensor<{vt}>
    %n = stablehlo.select %gt, %y, %b : tensor<i1>, tensor<{ct}>
    stablehlo.return %m, %n : tensor<{vt}>, tensor<{ct}>
  }}) {{scatter_dimension_numbers = #stablehlo.scatter<{dn}>, indices_are_sorted = false, unique_indices = false}}
     : ({v}, {c}, {i}, {uv}, {uc}) -> ({v}, {c})
  return %0#0, %0#1 : {v}, {c}
}}"""


def _scatter2_reference(v, c, starts, uv, uc, window):
    """Sequential, in index order (as XLA:CPU applies them); windows that do not fit are skipped."""
    v, c = v.copy(), c.copy()
    for s, wv, wc in zip(starts, uv, uc):
        sl = tuple(slice(a, a + w) for a, w in zip(s, window))
        if any(a < 0 or a + w > n for a, w, n in zip(s, window, v.shape)):
            continue
        with np.errstate(invalid="ignore"):
            gt = wv > v[sl]
        v[sl] = np.where(gt, wv, v[sl])
        c[sl] = np.where(gt, wc, c[sl])
    return v, c


SCATTER2_TYPES = [("f32", "i32", np.float32, np.int32), ("f32", "f32", np.float32, np.float32),
                  ("i32", "f64", np.int32, np.float64), ("f32", "i1", np.float32, np.bool_),
                  ("bf16", "ui8", BF16, np.uint8)]


@pytest.mark.parametrize("vt,ct,vd,cd", SCATTER2_TYPES, ids=[f"{a}_{b}" for a, b, _, _ in SCATTER2_TYPES])
@pytest.mark.parametrize("form", ["rows", "overlapping_windows", "one_window"])
def test_scatter_of_two_operands_repeated_indices(form, vt, ct, vd, cd):
    rng = np.random.default_rng(5)
    if form == "rows":  # x.at[i].max-like on whole rows: indices repeat, one is out of range
        shape, window = (37, 40), (1, 40)
        rows = np.array([1, 3, 1, 37, -1, 1, 36, 3, 0, 1], np.int32)
        idx, starts = rows[:, None], [(r, 0) for r in rows]
        ushape = (len(rows), 40)
        dn = "update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1"
    elif form == "overlapping_windows":  # 2x3 windows at (row, col) starts that overlap
        shape, window = (6, 7), (2, 3)
        idx = np.array([[0, 0], [1, 1], [0, 1], [4, 4], [5, 0], [1, 2], [0, 0]], np.int32)
        starts = [tuple(r) for r in idx]
        ushape = (len(idx), 2, 3)
        dn = "update_window_dims = [1, 2], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 1"
    else:  # a single window (dynamic_update_slice-like): no batch dims at all
        shape, window = (9, 50), (4, 50)
        idx, starts = np.array([3, 0], np.int32), [(3, 0)]
        ushape = (4, 50)
        dn = "update_window_dims = [0, 1], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 0"
    v = rng.integers(0, 4, shape).astype(np.float32).astype(vd)
    c = rng.integers(0, 9, shape).astype(cd)
    if vd != np.int32:
        v.reshape(-1)[:3] = np.array([np.nan, -0.0, np.inf], np.float32).astype(vd)
    uv = rng.integers(0, 6, ushape).astype(np.float32).astype(vd)
    uc = rng.integers(10, 20, ushape).astype(cd)
    uvs, ucs = ([uv], [uc]) if form == "one_window" else (list(uv), list(uc))
    text = _scatter2_text(shape, idx.shape, ushape, vt, ct, dn)
    gv, gc = tt_xla.compile(text)(v, c, idx, uv, uc)
    ev, ec = _scatter2_reference(v, c, starts, uvs, ucs, window)
    np.testing.assert_array_equal(np.asarray(gv).astype(np.float32), ev.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(gc), ec)
    assert np.asarray(gv).dtype == np.dtype(vd) and np.asarray(gc).dtype == np.dtype(cd)


BROADCAST_READS = {  # indexed kernels reading an operand that is a broadcast along a dim of size > 1
    "gather_rows_of_a_broadcast_column": (lambda b, i: jnp.broadcast_to(b[:, :1], (37, 65))[i], (37, 65)),
    "take_of_a_broadcast_sum": (lambda b, i: jnp.take(jnp.broadcast_to(b.sum(1, keepdims=True), b.shape), i, 0),
                                (37, 65)),
    "gather_of_a_broadcast_middle_dim": (lambda b, i: jnp.broadcast_to(b[:, None, :5], (37, 3, 5))[i], (37, 65)),
    "scatter_add_of_broadcast_updates": (
        lambda b, i: b.at[i].add(jnp.broadcast_to(b[:len(i), :1] * 2, (len(i), b.shape[1]))), (37, 65)),
    "scatter_into_a_broadcast_operand": (lambda b, i: jnp.broadcast_to(b[:, :1], b.shape).at[i].add(b[:len(i)]),
                                         (37, 65)),
    "sort_of_a_broadcast": (lambda b, i: jnp.sort(jnp.broadcast_to(b[:, :1], b.shape) + b[:1], axis=0), (37, 65)),
}


@pytest.mark.parametrize("name", sorted(BROADCAST_READS))
def test_indexed_kernels_read_broadcast_operands_whole(name):
    """A gather, scatter or sort reads its operand's runs as dense rows; a broadcast (stride 0)
    along a dim of size > 1 is stored first, not read as one element (which left the rest of the
    row stale: garbage values)."""
    f, shape = BROADCAST_READS[name]
    check(f, inputs(shape, np.float32), _ids(6, shape[0], seed=3))
