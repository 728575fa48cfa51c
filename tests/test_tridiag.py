"""Tridiagonal solve (compiler/tridiag.py: LAPACK gtsv, `lax.linalg.tridiagonal_solve`) against
CPU JAX, which calls LAPACK itself: random batched systems with several right-hand sides in
f32/f64/complex, systems that need row interchanges, singular ones (info != 0: NaN for that
system only), NaN/inf entries, the ignored dl[0]/du[n-1], and empty or 1x1 systems."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tt_xla

rng = np.random.default_rng(0)


def solve(dl, d, du, b):
    return lax.linalg.tridiagonal_solve(dl, d, du, b)


def run(*args):
    with jax.enable_x64(any(a.dtype in (np.float64, np.complex128) for a in args)):
        want = np.asarray(jax.jit(solve)(*args))
        got = np.asarray(tt_xla.jit(solve)(*args))
    return got, want


def system(shape, nrhs, dtype=np.float32):
    def draw(s):
        x = rng.standard_normal(s)
        if np.issubdtype(dtype, np.complexfloating):
            x = x + 1j * rng.standard_normal(s)
        return x.astype(dtype)
    return draw(shape), draw(shape), draw(shape), draw(shape + (nrhs,))


def check(args, rtol):
    got, want = run(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.where(np.isfinite(want), np.abs(want), 0)
    scale = np.max(finite, axis=(-2, -1), keepdims=True, initial=1.0) if want.size else 1.0
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=rtol)
    return got


@pytest.mark.parametrize("shape,nrhs", [((2,), 1), ((5,), 3), ((4, 17), 2), ((2, 3, 40), 1), ((64,), 5)])
def test_random_systems_f32(shape, nrhs):
    check(system(shape, nrhs), 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.complex64, np.complex128])
def test_random_systems_f64_and_complex(dtype):
    tol = 1e-12 if dtype in (np.float64, np.complex128) else 1e-5
    check(system((3, 33), 2, dtype), tol)


def test_row_interchanges_follow_lapack():
    # a tiny diagonal forces an interchange at every step; an answer without pivoting is far off
    dl, d, du, b = system((4, 30), 2)
    d *= 1e-6
    check((dl, d, du, b), 1e-5)


def test_unused_corners_are_ignored():
    dl, d, du, b = system((3, 9), 2)
    got = check((dl, d, du, b), 1e-5)
    dl2, du2 = dl.copy(), du.copy()
    dl2[:, 0], du2[:, -1] = np.nan, 1e30
    got2, _ = run(dl2, d, du2, b)
    np.testing.assert_array_equal(got, got2)


def test_singular_system_is_nan_for_that_system_only():
    dl, d, du, b = system((4, 6), 2)
    d[1, 0] = dl[1, 1] = 0.0  # column 0 of system 1 is zero: info 1
    d[2, :] = dl[2, :] = du[2, :] = 0.0  # the zero matrix
    dl[3, -1], d[3, -1] = 0.0, 0.0  # last pivot zero: info n (when no interchange moved it)
    got = check((dl, d, du, b), 1e-5)
    assert np.isnan(got[1]).all() and np.isnan(got[2]).all() and not np.isnan(got[0]).any()
    # [[1, 1], [1, 1]]: the last pivot is exactly 0 after elimination (info 2); without the
    # check x would be +-inf, not NaN
    one = np.ones((2, 2), np.float32)
    got = check((one, one, one, rng.standard_normal((2, 2, 1)).astype(np.float32) + 2), 1e-6)
    assert np.isnan(got).all()


def test_nearly_singular_system_agrees():
    # exactly singular in exact arithmetic, not in floating point: the rounding decides, as in LAPACK
    n = 12
    dl, du = np.full((n,), -1.0, np.float32), np.full((n,), -1.0, np.float32)
    d = np.full((n,), 2.0, np.float32)
    d[0] = d[-1] = 1.0  # the graph Laplacian of a path: singular, eliminated with rounding only
    b = rng.standard_normal((n, 1)).astype(np.float32)
    got, want = run(dl, d, du, b)
    assert np.isnan(got).all() == np.isnan(want).all()
    if not np.isnan(want).any():
        np.testing.assert_allclose(got, want, rtol=1e-3)


def test_nan_and_inf_entries():
    dl, d, du, b = system((3, 8), 2)
    d[0, 3] = np.nan
    du[1, 2] = np.inf
    b[2, 5, 1] = -np.inf
    check((dl, d, du, b), 1e-5)


def test_empty_and_one_by_one():
    for shape, nrhs in [((0,), 2), ((3, 0), 1), ((4,), 0), ((0, 5), 2)]:
        got, want = run(*system(shape, nrhs))
        assert got.shape == want.shape
    check(system((1,), 3), 1e-6)
    check(system((5, 1), 2), 1e-6)
    dl, d, du, b = system((2, 1), 1)
    d[1, 0] = 0.0
    got = check((dl, d, du, b), 1e-6)
    assert np.isnan(got[1]).all()


def test_gradient_composes():
    dl, d, du, b = system((6,), 1)
    d += 4.0
    loss = lambda dl, d, du, b: jnp.sum(solve(dl, d, du, b) ** 2)  # noqa: E731
    want = jax.jit(jax.grad(loss, argnums=(1, 3)))(dl, d, du, b)
    got = tt_xla.jit(jax.grad(loss, argnums=(1, 3)))(dl, d, du, b)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)

