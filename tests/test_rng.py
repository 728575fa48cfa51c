"""stablehlo.rng_bit_generator bit-exact with XLA:CPU: THREE_FRY, PHILOX and DEFAULT, every output
width, the split-in-halves shapes (even dim first, else the largest; scalars), counters that
wrap. (jax.random's rbg keys would use it too, but jax.export of them fails inside jax 0.10.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tt_xla

A = lax.RandomAlgorithm


def _same(f, *args):
    want, got = jax.jit(f)(*args), tt_xla.jit(f)(*args)
    for w, g in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)):
        w, g = np.asarray(w), np.asarray(g)
        assert w.dtype == g.dtype and w.shape == g.shape
        assert w.tobytes() == g.tobytes(), (w.ravel()[:4], g.ravel()[:4])


@pytest.mark.parametrize("alg", [A.RNG_THREE_FRY, A.RNG_PHILOX, A.RNG_DEFAULT])
@pytest.mark.parametrize("state", [(1, 2), (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE)])
def test_rng_bit_generator(alg, state):
    k = np.array(state, np.uint64)
    with jax.enable_x64(True):  # a u64[2] state and u64 outputs need x64 (else jax narrows them)
        for shape in [(), (3, 5), (7, 1, 3), (6, 33)]:
            for dt in (jnp.uint32, jnp.uint64, jnp.uint8):
                _same(lambda k: lax.rng_bit_generator(k, shape, dt, algorithm=alg), k)


def test_rng_bit_generator_u32_key():
    # without x64 jax passes the state as u32[4] and bitcasts it to u64[2]
    k = np.array([5, 0, 0xFFFFFFFF, 3], np.uint32)
    _same(lambda k: lax.rng_bit_generator(k, (4, 9), jnp.uint32, algorithm=A.RNG_THREE_FRY), k)



# jax.random's distributions whose math is exact arithmetic plus log/log1p/sqrt (XLA:CPU's
# sequences in decompose.py): CPU JAX's bits for the same key. (beta and dirichlet also use exp,
# whose last bit differs: docs/math.md.)
DISTRIBUTIONS = {
    "normal": lambda k: jax.random.normal(k, (1000, 3)),
    "normal_bf16": lambda k: jax.random.normal(k, (4097,), jnp.bfloat16),
    "gamma": lambda k: jax.random.gamma(k, 2.5, (500,)),
    "gamma_small_alpha": lambda k: jax.random.gamma(k, 0.3, (500,)),
    "exponential": lambda k: jax.random.exponential(k, (1000,)),
    "gumbel": lambda k: jax.random.gumbel(k, (1000,)),
    "laplace": lambda k: jax.random.laplace(k, (1000,)),
    "poisson": lambda k: jax.random.poisson(k, 3.0, (500,)),
    # erf of the bounds is folded correctly rounded (as XLA folds it), erf_inv on the device
    "truncated_normal": lambda k: jax.random.truncated_normal(k, -1.5, 2.0, (1000,)),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_jax_random_distribution_bit_exact(name):
    _same(DISTRIBUTIONS[name], jax.random.key_data(jax.random.PRNGKey(7)))
