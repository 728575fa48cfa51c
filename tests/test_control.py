"""Control flow on the device (while, fori_loop, scan, cond, switch) against CPU JAX: each program
runs as one launch whose control stream loops and branches on device values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tt_xla
from tt_xla.runtime import DeviceError

from util import check, inputs


def _rt():
    return tt_xla.client().devices()[0].runtime_device


def test_fori_loop_static_and_dynamic_bounds():
    def f(x, n):
        return lax.fori_loop(0, n, lambda i, c: (c[0] * 1.5 + c[1], c[1] - i.astype(c[1].dtype)), (x, x))

    x = inputs((3, 5), edges=False)
    for n in (0, 1, 7):  # dynamic: the trip count is a device value, one compile
        check(f, x, np.int32(n))
    check(lambda x: lax.fori_loop(0, 10, lambda i, c: c * 0.5 + 1.0, x), x)  # static


def test_while_loop_data_dependent():
    def f(x):
        return lax.while_loop(lambda c: c[0].sum() < 1000.0, lambda c: (c[0] * 2.0 + 1.0, c[1] + 1), (x, 0))

    check(f, np.arange(6, dtype=np.float32).reshape(2, 3))
    check(f, np.full((33, 65), 2000.0, np.float32))  # zero iterations


def test_while_counts_every_iteration():
    rt = _rt()
    g = tt_xla.jit(lambda n: lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 2.0), (0, 1.0)))
    g(np.int32(1))
    k = {}
    for n in (0, 10, 20):
        rt.reset_counters()
        out = g(np.int32(n))
        k[n] = rt.counters()
    assert float(out[1]) == 2.0 ** 20
    assert k[20]["programs_launched"] == k[10]["programs_launched"] == 1
    # the loop is one kernel iterating on a core (fused_loop.py): each iteration's vector
    # instructions are counted, the same for every iteration
    ops = {n: c["vector_ops"] for n, c in k.items()}
    assert ops[20] - ops[10] == ops[10] - ops[0] > 0
    assert k[20]["modeled_cycles"] > k[10]["modeled_cycles"]


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_over_pytree(reverse):
    def f(c0, xs):
        def step(c, x):
            h = jnp.tanh(c["h"] @ x["w"] + x["b"])
            return {"h": h, "n": c["n"] + 1}, (h.sum(axis=1), c["n"])
        return lax.scan(step, c0, xs, reverse=reverse)

    rng = np.random.default_rng(0)
    c0 = {"h": rng.standard_normal((4, 8), np.float32), "n": np.int32(0)}
    xs = {"w": rng.standard_normal((5, 8, 8), np.float32) * 0.3, "b": rng.standard_normal((5, 8), np.float32)}
    check(f, c0, xs, transcendental=True)


def test_scan_unroll_and_reductions():
    def f(xs):
        return lax.scan(lambda c, x: (jnp.maximum(c, x.max()), jnp.cumsum(x) * c), jnp.float32(-1.0), xs, unroll=2)

    check(f, inputs((7, 33), edges=False))


def test_cond_and_switch():
    def f(p, x):
        return lax.cond(p, lambda x: (jnp.sin(x).sum(), x * 2.0), lambda x: (x.max(), x - 1.0), x)

    x = inputs((4, 33), edges=False)
    check(f, True, x, transcendental=True)
    check(f, False, x, transcendental=True)

    def g(i, x):
        return lax.switch(i, [lambda x: x + 1.0, lambda x: x @ x.T, lambda x: -x], x)

    x = inputs((5, 5), edges=False)
    for i in (-3, 0, 1, 2, 9):  # out-of-range indices clamp
        check(g, np.int32(i), x)


def test_nested_loops_with_dots():
    def f(a, x):
        def outer(i, x):
            return lax.fori_loop(0, i + 1, lambda j, y: jnp.tanh(a @ y) + 0.1 * j.astype(jnp.float32), x)
        return lax.fori_loop(0, 3, outer, x)

    rng = np.random.default_rng(1)
    check(f, rng.standard_normal((16, 16), np.float32) * 0.2, rng.standard_normal((16, 4), np.float32),
          transcendental=True)


def test_checkpoint_inside_scan_grad():
    def loss(w, xs):
        @jax.checkpoint
        def step(c, x):
            return jnp.tanh(c @ w + x), None
        c, _ = lax.scan(step, jnp.zeros((2, 8), jnp.float32), xs)
        return (c ** 2).sum()

    rng = np.random.default_rng(2)
    check(jax.value_and_grad(loss), rng.standard_normal((8, 8), np.float32) * 0.3,
          rng.standard_normal((6, 2, 8), np.float32), transcendental=True, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_flax_rnn_forward_and_grad(cell):
    # nn.RNN is nn.scan over the cell: one while loop whose body slices the time step
    # (dynamic_slice) and stores the output (dynamic_update_slice)
    import flax.linen as nn

    model = nn.RNN(nn.OptimizedLSTMCell(16) if cell == "lstm" else nn.GRUCell(16))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7, 5), np.float32)
    params = jax.tree_util.tree_map(np.asarray, model.init(jax.random.PRNGKey(0), x))

    def loss(p, x):
        return (model.apply(p, x) ** 2).mean()

    check(model.apply, params, x, transcendental=True)
    check(jax.value_and_grad(loss), params, x, transcendental=True, rtol=1e-4, atol=1e-5)


def test_infinite_loop_stopped_by_step_budget():
    rt = _rt()
    spin = tt_xla.jit(lambda x: lax.while_loop(lambda c: c == c, lambda c: c + 1.0, x))
    rt.set_step_budget(10_000)
    try:
        with pytest.raises(DeviceError, match="step budget") as e:
            spin(np.float32(0))
        assert e.value.status == "TT_ERR_STEP_BUDGET"
    finally:
        rt.set_step_budget(0)
    check(lambda x: x * 2.0, np.arange(3, dtype=np.float32))  # the device is usable afterwards


def test_error_inside_loop_names_the_user_line():
    # an op inside a loop body the compiler cannot do is refused at the user's line
    def f(x):
        return lax.while_loop(lambda c: c[0, 0] < 3.0, lambda c: c + jnp.linalg.eigvals(c).real, x)

    with pytest.raises(tt_xla.UnsupportedError, match="test_control.py"):
        tt_xla.jit(f)(np.eye(3, dtype=np.float32))


KEY = np.asarray(jax.random.PRNGKey(42))
RANDOM = {
    "split": lambda k: jax.random.split(k, 3),
    "fold_in": lambda k: jax.random.fold_in(k, 7),
    "bits": lambda k: jax.random.bits(k, (9, 33), jnp.uint32),
    "uniform": lambda k: jax.random.uniform(k, (5, 7)),
    "randint": lambda k: jax.random.randint(k, (50,), -5, 9),
    "categorical": lambda k: jax.random.categorical(k, jnp.log(jnp.array([0.1, 0.2, 0.7])), shape=(20,)),
    "permutation": lambda k: jax.random.permutation(k, 10),
    # the math on the bits (erf_inv; gamma's rejection loop, a while per element, deciding on
    # log/exp) is XLA:CPU's operation sequence, so these are its bits too (test_rng.py)
    "normal": lambda k: jax.random.normal(k, (1000,)),
    "gamma": lambda k: jax.random.gamma(k, 2.5, (10,)),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_jax_random_bit_exact(name):
    f = RANDOM[name]
    want, got = np.asarray(jax.jit(f)(KEY)), np.asarray(tt_xla.jit(f)(KEY))
    assert want.dtype == got.dtype and want.shape == got.shape
    np.testing.assert_array_equal(got, want)


def test_loop_invariant_work_runs_once():
    rt = _rt()

    def f(a, x, n):
        # a @ a.T reads nothing the loop changes: computed once, before the loop
        return lax.fori_loop(0, n, lambda i, c: jnp.tanh(c + (a @ a.T)[0]), x)

    rng = np.random.default_rng(3)
    a, x = rng.standard_normal((64, 64), np.float32), rng.standard_normal(64, np.float32)
    check(f, a, x, np.int32(5), transcendental=True)
    g = tt_xla.jit(f)
    tiles = []
    for n in (1, 9):
        rt.reset_counters()
        g(a, x, np.int32(n))
        tiles.append(rt.counters()["matrix_tiles"])
    assert tiles[0] == tiles[1] > 0
