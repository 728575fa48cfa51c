"""Small elementwise while loops compile to ONE kernel that iterates on a core (fused_loop.py):
every loop form against CPU JAX, across chunk boundaries, with mixed dtypes and edge values, the
iterations counted, the step budget still stopping a loop that never ends."""

import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tt_xla
from tt_xla.compiler.fused_loop import MAX_CHUNK
from tt_xla.runtime import DeviceError

from util import BF16, check, inputs


def _rt():
    return tt_xla.client().devices()[0].runtime_device


def _kinds(f, *args) -> list[str]:
    return [k.kind for k in tt_xla.jit(f).kernels(*args)]


def test_fori_loop_is_one_kernel():
    def f(x):
        return lax.fori_loop(0, 1000, lambda i, c: c * 0.999 + 1.0, x)

    x = np.ones(2, np.float32)
    check(f, x)
    assert _kinds(f, x).count("loop") == 1
    rt = _rt()
    rt.reset_counters()
    tt_xla.jit(f)(x)
    k = rt.counters()
    # one launch iterates: far fewer kernels than iterations
    assert k["programs_launched"] == 1 and k["kernels_launched"] < 10


def test_dynamic_trip_counts_across_chunks():
    # one compile; trip counts around the chunk of iterations one launch runs, zero and negative
    def f(x, lo, n):
        return lax.fori_loop(lo, n, lambda i, c: (c[0] * 0.5 + i.astype(jnp.float32), c[1] + i), (x, 0))

    x = inputs((3, 5), edges=True)
    for lo, n in ((0, 0), (5, 2), (0, 1), (0, MAX_CHUNK - 1), (0, MAX_CHUNK), (3, MAX_CHUNK + 4), (0, 3000)):
        check(f, x, np.int32(lo), np.int32(n))


def test_data_dependent_while_and_edge_values():
    def f(x, y):
        def body(c):
            a, b, k = c
            return jnp.maximum(a * 1.25, b) - 0.5, jnp.where(a > b, b + 1.0, b * 0.5), k + 1
        return lax.while_loop(lambda c: (c[2] < 40) & (c[0][0] < 1e6), body, (x, y, 0))

    x = inputs((7,), seed=1)    # NaN, infinities, -0 and denormals ride through the loop
    y = inputs((7,), seed=2)
    check(f, np.abs(x[:1]) + 1.0 + 0 * x, y)
    check(f, np.full(7, 2e6, np.float32), y)  # zero iterations


def test_mixed_dtypes_carried():
    def f(a, b, h, u, z):
        def body(i, c):
            a, b, h, u, z = c
            return (a * 1.5 - 1.0, (b * 0.75 + 0.125).astype(BF16), (h + 0.5).astype(jnp.float16),
                    u * 3 + 1, ~z)
        return lax.fori_loop(0, 13, body, (a, b, h, u, z))

    check(f, inputs((4,), edges=False), inputs((2, 3), BF16, edges=False), inputs((5,), np.float16, edges=False),
          inputs((3,), np.uint8), np.array([True, False, True]))


def test_views_inside_the_body():
    # broadcast, transpose, reverse, slice and reshape of carried and computed values, iota,
    # a dense constant and loop-invariant inputs read inside the kernel
    def f(x, w):
        def body(i, c):
            t = c * 0.5 + w
            y = t.T + jnp.flip(c, 1) * 0.25 + jnp.arange(4, dtype=jnp.float32)[:, None]
            y = y + (c * 2.0)[:, :1] - t.reshape(16)[::5].reshape(4, 1) * 0.125
            return y * jnp.array([1.0, -1.0, 0.5, 0.25], jnp.float32) + i.astype(jnp.float32)
        return lax.fori_loop(0, 9, body, x)

    x, w = inputs((4, 4), edges=False), inputs((4, 4), seed=3, edges=False)
    check(f, x, w, rtol=1e-5, atol=1e-4)
    assert "loop" in _kinds(f, x, w)


def test_swapped_and_unchanged_carries():
    def f(a, b, c):
        return lax.fori_loop(0, 5, lambda i, s: (s[1], s[0] + s[2], s[2]), (a, b, c))

    check(f, *(inputs((3,), seed=s, edges=False) for s in range(3)))


def test_nested_loops():
    # the inner loop is one kernel; the outer one (a loop inside it) steps on the control stream
    def f(x):
        def outer(i, c):
            inner = lax.fori_loop(0, i + 1, lambda j, d: d * 0.5 + j.astype(jnp.float32), c)
            return inner + c.sum()
        return lax.fori_loop(0, 6, outer, x)

    x = inputs((5,), edges=False)
    check(f, x, rtol=1e-5, atol=1e-4)
    assert "loop" in _kinds(f, x)


def test_general_loops_unchanged():
    # a reduction in the condition: not fused, the control stream steps it
    def f(x):
        return lax.while_loop(lambda c: c.sum() < 100.0, lambda c: c * 2.0 + 1.0, x)

    x = np.arange(6, dtype=np.float32)
    check(f, x)
    assert "loop" not in _kinds(f, x)


def test_step_budget_stops_a_fused_loop():
    rt = _rt()
    f = tt_xla.jit(lambda x, n: lax.fori_loop(0, n, lambda i, c: c + 1.0, x))
    x = np.float32(0)
    assert float(f(x, np.int32(5000))) == 5000.0
    rt.set_step_budget(2000)  # a launch weighs the iterations it may run: 5000 need more
    try:
        with pytest.raises(DeviceError, match="step budget") as e:
            f(x, np.int32(5000))
        assert e.value.status == "TT_ERR_STEP_BUDGET"
        assert float(f(x, np.int32(10))) == 10.0  # within budget, the device usable
    finally:
        rt.set_step_budget(0)
    assert float(f(x, np.int32(5000))) == 5000.0


def _copied_bytes(f, *args) -> list[int]:
    """The byte counts of the control stream's COPY steps."""
    import re
    src = tt_xla.compile(tt_xla.jit(f).lower(*args).as_text()).source
    return [int(m) for m in re.findall(r"\{TT_CTL_COPY, 0, \d+u, \d+u, \d+ull, \d+ull, (\d+)ull", src)]


def test_carried_buffer_updated_in_place():
    # a loop with a product (not one kernel) writing row i of a carried buffer: the buffer is
    # updated in its slot, neither copied into the result nor copied back after each iteration
    def f(ys, w, h):
        def body(i, c):
            ys, h = c
            h = jnp.tanh(h @ w)
            return ys.at[i].set(h), h
        return lax.fori_loop(0, ys.shape[0], body, (ys, h))

    ys, w, h = inputs((16, 8, 8), edges=False), inputs((8, 8), seed=1, edges=False), inputs((8, 8), seed=2, edges=False)
    check(f, ys, w, h, transcendental=True)
    assert _copied_bytes(f, ys, w, h).count(ys.nbytes) == 1  # the initial value into its slot, once


def test_carried_buffer_read_before_its_update_stays_in_place():
    # the body reads the old buffer besides updating it: those reads run before the copy that
    # starts the result, so it is still updated in its slot (control._in_place; reads after the
    # update: tests/test_loop_alias.py)
    def f(ys):
        def body(i, ys):
            return ys.at[i].set(ys[i - 1] * 2.0 + ys.sum())
        return lax.fori_loop(1, ys.shape[0], body, ys)

    ys = inputs((9, 4), edges=False)
    check(f, ys, rtol=1e-5, atol=1e-3)
    assert _copied_bytes(f, ys).count(ys.nbytes) == 1  # once into its slot


@pytest.mark.parametrize("dtype", [np.float16, BF16, np.float32])
def test_empty_values_and_edges(dtype):
    def f(a, e, n):
        def body(i, c):
            a, e, b = c
            return jnp.maximum(a, a * 0.5) - 0.25, e * 2.0 + 1.0, b | (a > 1)
        return lax.fori_loop(0, n, body, (a, e, a > 0))

    a, e = inputs((9,), dtype), np.zeros((2, 0, 3), dtype)
    for n in (0, 4):
        check(f, a, e, np.int32(n))
    assert "loop" in _kinds(f, a, e, np.int32(1))


def test_pivots_to_permutation_loop_is_one_kernel():
    # jax's LU pivots -> permutation loop (jnp.linalg.solve, lu, det): scalar gathers and
    # scatters of one element; on the general path it took 11 launches an iteration
    from jax._src.lax.linalg import lu_pivots_to_permutation

    r = np.random.default_rng(0)
    for n in (1, 2, 7, 64, 300):
        piv = np.array([r.integers(i, n) for i in range(n)], np.int32)
        for p in (piv, np.arange(n, dtype=np.int32), np.full(n, n - 1, np.int32)):
            check(lambda p: lu_pivots_to_permutation(p, n), p)
    f = lambda p: lu_pivots_to_permutation(p, 300)  # noqa: E731
    assert _kinds(f, piv).count("loop") == 1
    rt = _rt()
    rt.reset_counters()
    tt_xla.jit(f)(piv)
    assert rt.counters()["kernels_launched"] < 300  # far fewer than the iterations


def test_dynamic_slices_and_updates_in_one_kernel():
    # one window read and written at computed starts: clamped (dynamic_slice,
    # dynamic_update_slice), dropped when out of bounds (mode="drop"), added (.at[].add),
    # 2-D windows, negative starts, ints and floats with edge values
    def f(x, m, k):
        def body(i, c):
            x, m, k = c
            j = (i * 5) % 11 - 2                                   # -2 .. 8: some out of range
            w = lax.dynamic_slice(x, (j,), (3,))                   # clamped window of 3
            x = lax.dynamic_update_slice(x, w[::-1] * 0.5 + 1.0, (j + 1,))
            x = x.at[j].add(1.0, mode="drop")
            blk = lax.dynamic_slice(m, (i % 4, j), (2, 2))         # 2-D window
            m = lax.dynamic_update_slice(m, blk.T + k[i % 3], (j, i % 3))
            k = k.at[i % 3].set(k[(i + 1) % 3] * 2 - 1)
            return x, m, k
        return lax.fori_loop(0, 37, body, (x, m, k))

    x = inputs((9,), edges=True)
    m = inputs((5, 6), seed=3, edges=False)
    k = np.array([3, -1, 7], np.int32)
    check(f, x, m, k)
    assert _kinds(f, x, m, k).count("loop") == 1


def test_gathers_that_are_not_one_window_keep_the_general_path():
    # a gather of several rows (an index vector) is not a dynamic slice: the control stream
    # steps the loop, and the answer is the same
    def f(x, idx):
        return lax.fori_loop(0, 5, lambda i, c: c.at[idx].add(c[idx[::-1]] * 0.5), x)

    x, idx = inputs((8,), edges=False), np.array([1, 4, 6], np.int32)
    check(f, x, idx)
    assert "loop" not in _kinds(f, x, idx)


@pytest.mark.parametrize("dtype", [BF16, np.float16, np.float32, np.int8])
def test_scatter_add_in_a_fused_loop_adds_values_not_bits(dtype):
    # bf16 (and float8) are stored as their bits: .at[i].add added the bit patterns
    # ([1, 2, 3] + 1 gave [1.7e38, inf, nan] in bf16)
    def f(x):
        return lax.fori_loop(0, 3, lambda i, c: c.at[i].add(jnp.asarray(1, c.dtype)), x)

    x = np.array([1, 2, 3, -4], dtype)
    check(f, x)
    assert "loop" in _kinds(f, x)
