"""A loop body's result written straight into its carried slot (control.py `_in_place`,
alias.py): only when nothing reads the old value after it is overwritten, and the writing kernel
reads it only at the element it writes. Bodies that read the old value at other positions
(reverse, transpose, shift, reductions) must still match CPU JAX. And a loop body's kernels are
weighed by the loop's trip count, when it is known, in choosing their C compiler level."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tt_xla

from util import check

N = (256, 256)  # several blocks a kernel: a wrong alias reads values another block overwrote


def _copies(f, *args, nbytes: int | None = None) -> int:
    """COPY steps in the program's control stream (of `nbytes` bytes)."""
    exe = tt_xla.compile(jax.jit(f).lower(*args).as_text())
    steps = re.findall(r"\{TT_CTL_COPY, 0, \d+u, \d+u, \d+ull, \d+ull, (\d+)ull", exe.source)
    return sum(nbytes is None or int(n) == nbytes for n in steps)


def _x(seed=0, shape=N):
    return np.random.default_rng(seed).standard_normal(shape, np.float32)


def _loop(body):
    return lambda x, n: lax.fori_loop(0, n, body, x)


def test_elementwise_update_is_written_in_place():
    w = _x(1) * 0.05

    # the product and the row sums read x at every position, but before the update overwrites it
    f = _loop(lambda i, x: x * 0.5 + jnp.tanh(x @ w).sum(axis=1, keepdims=True) * 0.01)
    check(f, _x(), np.int32(5), transcendental=True)
    check(f, _x(), np.int32(0))
    # only the counter's COPY remains (x's new value is written over the old one)
    assert _copies(f, _x(), np.int32(5)) == _copies(_loop(lambda i, x: x[::-1]), _x(), np.int32(5)) - 1


@pytest.mark.parametrize("name,body", [
    ("reverse", lambda i, x: x[::-1] * 0.5 + x),
    ("reverse_cols", lambda i, x: x[:, ::-1] - x * 0.25),
    ("transpose", lambda i, x: x.T * 0.5 + 1.0),
    ("shift", lambda i, x: jnp.roll(x, 3, axis=1) + x * 0.5),
    ("shift_rows", lambda i, x: jnp.concatenate([x[1:], x[:1] * 2.0]) - 0.5 * x),
    ("minus_mean", lambda i, x: x - x.mean(axis=0) * 0.5),
    ("window", lambda i, x: lax.reduce_window(x, 0.0, lax.add, (3, 1), (1, 1), "SAME") * 0.3),
    # the result's first writer copies x, a scatter then writes rows of it
    ("update_row", lambda i, x: x.at[i % 256].set(x[(i + 7) % 256] * 0.5 - x[::-1][i % 256])),
    ("scatter_add", lambda i, x: (x * 0.5).at[jnp.array([3, 200, 3])].add(x[::-1][:3] + i.astype(jnp.float32))),
])
def test_body_reading_other_positions_matches_jax(name, body):
    check(_loop(body), _x(), np.int32(4))


def test_old_value_read_after_the_update():
    # the sum and the reversed copy read the old x: the update may not overwrite it first
    def body(i, c):
        x, s, r = c
        return x * 0.5 + 1.0, s + x.sum(), x[::-1]

    f = lambda x, n: lax.fori_loop(0, n, body, (x, jnp.float32(0), x))
    check(f, _x(), np.int32(3))


def test_swapped_carried_values():
    f = lambda x, y, n: lax.fori_loop(0, n, lambda i, c: (c[1] * 0.5, c[0] + c[1]), (x, y))
    check(f, _x(), _x(2), np.int32(5))
    g = lambda x, y, n: lax.fori_loop(0, n, lambda i, c: (c[1][::-1], c[0].T + 1.0), (x, y))
    check(g, _x(), _x(2), np.int32(3))


def test_nested_loop_carries_in_place():
    def f(x, w, n):
        def outer(i, x):
            y = lax.fori_loop(0, 3, lambda j, y: jnp.tanh(y @ w + x[::-1]), x)
            return y * 0.5 + x
        return lax.fori_loop(0, n, outer, x)

    check(f, _x(), _x(1) * 0.05, np.int32(3), transcendental=True)


def test_inner_loop_carries_a_dead_value_where_it_is():
    w = _x(1) * 0.05

    def inner(y):
        return lax.fori_loop(0, 3, lambda j, y: jnp.tanh(y @ w) + y[::-1] * 0.5, y)

    # x is dead once the inner loop starts: it carries x in x's slot, no COPY in or out
    dead = lambda x, n: lax.fori_loop(0, n, lambda i, x: inner(x), x)
    check(dead, _x(), np.int32(3), transcendental=True)
    # x's COPYs: the argument into the outer loop, and the inner body's step (it reverses y)
    assert _copies(dead, _x(), np.int32(3), nbytes=_x().nbytes) == 2
    # x read again after the inner loop, or inside it, or the loop inside a branch reading it after
    after = lambda x, n: lax.fori_loop(0, n, lambda i, x: inner(x) - x[:, ::-1], x)
    inside = lambda x, n: lax.fori_loop(0, n, lambda i, x: lax.fori_loop(0, 2, lambda j, y: y @ w + x, x), x)
    branch = lambda x, n: lax.fori_loop(0, n, lambda i, x: lax.cond(i % 2 == 0, lambda x: inner(x), lambda x: x.T, x) + x,
                                        x)
    for f in (after, inside, branch):
        check(f, _x(), np.int32(3), transcendental=True)


def test_scan_and_dynamic_update_in_place():
    def f(xs, x0):
        def step(c, x):
            c = jnp.tanh(c * 0.9 + x[None, :] @ jnp.ones((256, 256), jnp.float32) * 0.01)
            return c[::-1], c.sum(axis=0)
        return lax.scan(step, x0, xs)

    check(f, _x(3, (4, 256)), _x(4, (256, 256)), transcendental=True)


def _levels(src: str) -> dict[str, str]:
    """kernel name -> the compiler level of the part defining it."""
    out = {}
    for chunk in src.split("/* tt:part ")[1:]:
        for m in re.finditer(r"void (\w+)\(const tt_core \*core", chunk):
            out[m.group(1)] = chunk[:2]
    return out


def test_loop_body_kernels_weighed_by_trip_count():
    x = _x()
    body = lambda i, x: x[::-1] * 0.5 + jnp.sin(x)  # about 1/4 of the work -O2 pays for, per launch
    counted = tt_xla.compile(jax.jit(lambda x: lax.fori_loop(0, 64, body, x)).lower(x).as_text())
    data = tt_xla.compile(jax.jit(lambda x, n: lax.fori_loop(0, n, body, x)).lower(x, np.int32(64)).as_text())
    sin = [k.name for k in counted.kernels() if k.vector_ops > 1000]
    assert len(sin) == 1 and _levels(counted.source)[sin[0]] == "O2"
    sin = [k.name for k in data.kernels() if k.vector_ops > 1000]  # a trip count the data decide: one launch
    assert len(sin) == 1 and _levels(data.source)[sin[0]] == "O1"
    np.testing.assert_allclose(np.asarray(counted(x)[0]),
                               np.asarray(jax.jit(lambda x: lax.fori_loop(0, 64, body, x))(x)), rtol=1e-5, atol=1e-5)


STEP = """   cond {
    %n = stablehlo.constant dense<3> : tensor<i32>
    %p = stablehlo.compare LT, %i, %n, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    stablehlo.return %p : tensor<i1>
   } do {
    %one = stablehlo.constant dense<1> : tensor<i32>
    %j = stablehlo.add %i, %one : tensor<i32>
"""  # i < 3, i + 1

ALIASED = """
func.func public @main(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = stablehlo.multiply %x, %x : tensor<64x64xf32>
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %r:2 = stablehlo.while(%i = %c0, %a = %y) : tensor<i32>, tensor<64x64xf32>
{STEP}    stablehlo.return %j, %a : tensor<i32>, tensor<64x64xf32>
   }
  %s:3 = stablehlo.while(%i = %c0, %b = %y, %k = %r#1) : tensor<i32>, tensor<64x64xf32>, tensor<64x64xf32>
{STEP}    %u = stablehlo.add %b, %k : tensor<64x64xf32>
    stablehlo.return %j, %u, %k : tensor<i32>, tensor<64x64xf32>, tensor<64x64xf32>
   }
  return %s#1 : tensor<64x64xf32>
}
""".replace("{STEP}", STEP)


def test_loop_does_not_carry_in_a_slot_another_operand_names():
    # y is dead after the second loop starts, but %k (the first loop's unchanged result) is
    # y's slot too: carrying %b there would add b to itself
    x = _x(5, (64, 64))
    got = np.asarray(tt_xla.compile(ALIASED)(x)[0])
    np.testing.assert_allclose(got, 4 * x * x, rtol=1e-5)
