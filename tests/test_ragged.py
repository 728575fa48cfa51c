"""chlo.ragged_dot written as text (jax's CPU export decomposes lax.ragged_dot itself; other
producers and TPU exports leave the op): its three modes against a numpy reference written from
ChloOps.td's definition (XLA:CPU has no ragged-dot to run the text)."""
from __future__ import annotations

import numpy as np
import pytest

import jax
from jax import lax

import tt_xla


def reference(name, a, b, gs):
    """Each group's rows (modes 1, 3) or contracting range (mode 2), multiplied on its own."""
    ends = np.cumsum(gs)
    starts = ends - gs
    if name == "mode1":
        return np.concatenate([a[s:e] @ b[j] for j, (s, e) in enumerate(zip(starts, ends))] +
                              [np.zeros((a.shape[0] - ends[-1], b.shape[2]), np.float32)])
    if name == "mode1_batch":  # [b, m, k] x [g, b, k, n]
        out = np.zeros((a.shape[0], a.shape[1], b.shape[3]), np.float32)
        for j, (s, e) in enumerate(zip(starts, ends)):
            out[:, s:e] = np.einsum("bmk,bkn->bmn", a[:, s:e], b[j])
        return out
    if name == "mode1_rhs_nk":  # rhs [g, n, k]
        out = np.zeros((a.shape[0], b.shape[1]), np.float32)
        for j, (s, e) in enumerate(zip(starts, ends)):
            out[s:e] = a[s:e] @ b[j].T
        return out
    if name == "mode2":  # [b, m, k] x [b, k, n] -> [g, b, m, n]
        return np.stack([np.einsum("bmk,bkn->bmn", a[:, :, s:e], b[:, s:e]) for s, e in zip(starts, ends)])
    return np.einsum("bmk,bkn->bmn", a, b)  # mode 3


def ragged_text(lhs, rhs, sizes, out, dims, dt="f32", st="i64"):
    lb, rb, lc, rc, lr, rg = dims
    t = lambda s, e=dt: f"tensor<{'x'.join(map(str, s))}x{e}>"  # noqa: E731
    return f"""module {{
  func.func @main(%lhs: {t(lhs)}, %rhs: {t(rhs)}, %gs: {t(sizes, st)}) -> {t(out)} {{
    %0 = "chlo.ragged_dot"(%lhs, %rhs, %gs) {{
      ragged_dot_dimension_numbers = #chlo.ragged_dot<lhs_batching_dimensions = {lb}, rhs_batching_dimensions = {rb},
        lhs_contracting_dimensions = {lc}, rhs_contracting_dimensions = {rc}, lhs_ragged_dimensions = {lr},
        rhs_group_dimensions = {rg}>,
      precision_config = [#chlo<precision DEFAULT>, #chlo<precision DEFAULT>]
    }} : ({t(lhs)}, {t(rhs)}, {t(sizes, st)}) -> {t(out)}
    return %0 : {t(out)}
  }}
}}"""


CASES = {  # name: lhs, rhs, sizes, out, dims, group sizes
    "mode1": ((11, 5), (3, 5, 7), (3,), (11, 7), ([], [], [1], [1], [0], [0]), [2, 4, 3]),
    "mode1_batch": ((2, 11, 5), (3, 2, 5, 7), (3,), (2, 11, 7), ([0], [1], [2], [2], [1], [0]), [5, 0, 6]),
    "mode1_rhs_nk": ((9, 4), (2, 6, 4), (2,), (9, 6), ([], [], [1], [2], [0], [0]), [4, 5]),
    "mode2": ((2, 11, 5), (2, 5, 7), (3,), (3, 2, 11, 7), ([0], [0], [2], [1], [2], []), [1, 3, 1]),
    "mode3": ((4, 3, 5), (4, 5, 2), (2,), (4, 3, 2), ([0], [0], [2], [1], [0], []), [1, 3]),
}


@pytest.mark.parametrize("name", CASES)
def test_text_vs_xla(name):
    ls, rs, ss, out, dims, sizes = CASES[name]
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(ls).astype(np.float32), rng.standard_normal(rs).astype(np.float32)
    gs = np.array(sizes, np.int64)
    text = ragged_text(ls, rs, ss, out, dims)
    got = np.asarray(tt_xla.compile(text)(a, b, gs)[0])
    np.testing.assert_allclose(got, reference(name, a, b, gs), rtol=1e-5, atol=1e-5)


def test_group_sizes_short_of_the_rows_leave_zeros():
    ls, rs, ss, out, dims, _ = CASES["mode1"]
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(ls).astype(np.float32), rng.standard_normal(rs).astype(np.float32)
    gs = np.array([1, 2, 3], np.int64)  # 6 of 11 rows
    got = np.asarray(tt_xla.compile(ragged_text(ls, rs, ss, out, dims))(a, b, gs)[0])
    np.testing.assert_array_equal(got[6:], 0)
    np.testing.assert_allclose(got[:1], a[:1] @ b[0], rtol=1e-5)
    np.testing.assert_allclose(got[3:6], a[3:6] @ b[2], rtol=1e-5)


def test_jax_ragged_dot_as_jax_exports_it():
    a = np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)
    b = np.random.default_rng(3).standard_normal((3, 4, 5)).astype(np.float32)
    gs = np.array([2, 3, 3], np.int32)
    f = lambda a, b, g: lax.ragged_dot(a, b, g)  # noqa: E731
    np.testing.assert_allclose(np.asarray(tt_xla.jit(f)(a, b, gs)), jax.jit(f)(a, b, gs), rtol=1e-5, atol=1e-5)

