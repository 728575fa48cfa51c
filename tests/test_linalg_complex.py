"""Complex linear algebra (compiler/linalg.py on complex64/complex128): the LAPACK c/z potrf,
getrf, geqrf/ungqr and trsm custom_calls and stablehlo.cholesky/triangular_solve on complex
types, against CPU JAX."""
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest
from jax import lax

import tt_xla

rng = np.random.default_rng(0)
C64, C128 = np.complex64, np.complex128
TOL = {C64: 1e-4, C128: 1e-11}  # relative to the inputs' scale, as jax's linalg tests allow


def cn(shape, dtype=C64):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def hpd(shape, dtype=C64):
    """A Hermitian positive definite matrix (batch) of `shape`."""
    if 0 in shape:
        return np.zeros(shape, dtype)
    x = cn(shape, C128)
    return (x @ np.conj(np.swapaxes(x, -1, -2)) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def tri(shape, dtype=C64, lower=True):
    """A well-conditioned triangular matrix (the other triangle random: it must not be read)."""
    a = cn(shape, C128) / np.sqrt(shape[-1]) + 2 * np.eye(shape[-1])
    return a.astype(dtype)


def check(f, *args, tol=None, exact=False):
    """f's outputs (one array or a tuple) on tt-xla against CPU JAX: integer outputs (pivots,
    permutations) and `exact` ones must be equal, the others within `tol`."""
    x64 = any(a.dtype in (np.float64, C128) for a in args)
    tol = tol if tol is not None else TOL[C128 if x64 else C64]
    with jax.enable_x64(x64):
        want = jax.tree.map(np.asarray, jax.jit(f)(*args))
        got = jax.tree.map(np.asarray, tt_xla.jit(f)(*args))
    got, want = (tuple(x) if isinstance(x, (tuple, list)) else (x,) for x in (got, want))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        if exact or g.dtype.kind == "i":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True)
    return got if len(got) > 1 else got[0]


# ---------------------------------------------------------------- potrf (Cholesky)
@pytest.mark.parametrize("shape,dtype", [((5, 5), C64), ((3, 7, 7), C128), ((1, 1), C64), ((1, 1), C128),
                                         ((0, 0), C64), ((2, 0, 0), C128), ((0, 3, 3), C64)])
def test_cholesky(shape, dtype):
    a = hpd(shape, dtype)
    l = check(jnp.linalg.cholesky, a)
    check(lambda x: jsl.cholesky(x, lower=False), a)
    if l.size:  # a real, positive diagonal: L L^H is A
        d = np.diagonal(l, axis1=-2, axis2=-1)
        assert np.all(d.imag == 0) and np.all(d.real > 0)


def test_cholesky_reads_one_triangle_and_the_diagonals_real_part():
    a = hpd((2, 6, 6))
    junk = np.triu(cn((6, 6)) * 100, 1)  # the triangle not named must not be read
    a_lo = np.tril(a) + junk + 1j * np.eye(6, dtype=C64) * 7  # nor the diagonal's imaginary part
    check(lambda x: lax.linalg.cholesky(x, symmetrize_input=False), a_lo)
    a_up = np.triu(a) + np.conj(junk.T) + 1j * np.eye(6, dtype=C64) * 7
    check(lambda x: jsl.cholesky(x, lower=False), a_up)  # symmetrized by jax, then the upper factor
    text = """func.func public @main(%a: tensor<6x6xcomplex<f32>>) -> tensor<6x6xcomplex<f32>> {
  %0 = stablehlo.cholesky %a, lower = false : tensor<6x6xcomplex<f32>>
  return %0 : tensor<6x6xcomplex<f32>>
}"""
    u = np.asarray(tt_xla.compile(text)(a_up[0])[0])
    want = np.conj(np.linalg.cholesky(a[0]).T)
    np.testing.assert_allclose(np.triu(u), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [C64, C128])
def test_cholesky_not_positive_definite_and_nonfinite(dtype):
    a = hpd((4, 6, 6), dtype)
    a[1, 3, 3] = -50.0  # not positive definite: jax turns that matrix into NaN (info > 0)
    a[2, 0, 0] = np.nan
    a[3, 4, 2] = complex(np.inf, 1)
    a[3, 2, 4] = complex(np.inf, -1)
    got = check(jnp.linalg.cholesky, a)
    lo = np.tril_indices(6)
    assert np.all(np.isnan(got[1][lo])) and not np.any(np.isnan(got[0]))
    # (the upper factor of a matrix holding inf is left out: LAPACK's row-wise upper algorithm
    # turns it into NaN where ours, the lower one's adjoint, finds a -inf pivot: info > 0)
    check(lambda x: jsl.cholesky(x, lower=False), a[:3])


@pytest.mark.parametrize("dtype", [C64, C128])
def test_cho_solve(dtype):
    a, b = hpd((3, 8, 8), dtype), cn((3, 8, 2), dtype)
    check(lambda a, b: jsl.cho_solve(jsl.cho_factor(a, lower=True), b), a, b)
    check(lambda a, b: jsl.cho_solve(jsl.cho_factor(a, lower=False), b), a, b)


# ---------------------------------------------------------------- trsm (triangular solve)
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", [0, 1, 2])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(lower, trans, unit):
    dtype = C128 if unit else C64
    a, b = tri((3, 6, 6), dtype), cn((3, 6, 2), dtype)
    check(lambda a, b: jsl.solve_triangular(a, b, lower=lower, trans=trans, unit_diagonal=unit), a, b)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose,conjugate", [(False, True), (True, True), (True, False)])
def test_triangular_solve_every_flag(left, lower, transpose, conjugate):
    a = tri((2, 7, 7))
    b = cn((2, 7, 3) if left else (2, 3, 7))
    check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=left, lower=lower, transpose_a=transpose,
                                                   conjugate_a=conjugate, unit_diagonal=not lower), a, b)


def test_triangular_solve_vector_empty_and_singular():
    a = tri((5, 5), C128)
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), a, cn((5,), C128))
    check(lambda a, b: jsl.solve_triangular(a, b), np.zeros((0, 0), C64), np.zeros((0, 3), C64))
    check(lambda a, b: jsl.solve_triangular(a, b), np.full((1, 1), 2 - 1j, C64), np.ones((1, 2), C64))
    s = tri((4, 4))
    s[2, 2] = 0.0  # a zero pivot gives inf/NaN as LAPACK's trsm does
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), s, np.ones((4, 2), C64))
    b = cn((4, 2))
    b[1, 0] = complex(np.inf, 0)
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), tri((4, 4)), b)


def test_stablehlo_triangular_solve_adjoint():
    text = """func.func public @main(%a: tensor<5x5xcomplex<f64>>, %b: tensor<3x5xcomplex<f64>>) -> tensor<3x5xcomplex<f64>> {
  %0 = "stablehlo.triangular_solve"(%a, %b) {left_side = false, lower = true, unit_diagonal = false,
        transpose_a = #stablehlo<transpose ADJOINT>} : (tensor<5x5xcomplex<f64>>, tensor<3x5xcomplex<f64>>) -> tensor<3x5xcomplex<f64>>
  return %0 : tensor<3x5xcomplex<f64>>
}"""
    a, b = tri((5, 5), C128), cn((3, 5), C128)
    x = np.asarray(tt_xla.compile(text)(a, b)[0])
    np.testing.assert_allclose(x @ np.conj(np.tril(a).T), b, rtol=1e-12, atol=1e-12)  # X op(A) = B


# ---------------------------------------------------------------- getrf (LU)
@pytest.mark.parametrize("shape,dtype", [((6, 6), C64), ((5, 3), C128), ((3, 5), C64), ((2, 7, 7), C128),
                                         ((1, 1), C64), ((0, 0), C128), ((2, 0, 0), C64)])
def test_lu(shape, dtype):
    check(lax.linalg.lu, cn(shape, dtype))  # the factors; pivots and permutation exactly


def test_lu_pivots_by_re_plus_im_as_icamax():
    # |3+3i| = 4.24 < |5| = 5, but LAPACK's icamax compares |re| + |im|: 6 > 5, so row 1 wins
    a = np.array([[1, 2, 0], [3 + 3j, 1, 1], [5, 0, 1j]], C64)
    assert check(lax.linalg.lu, a)[1][0] == 1


@pytest.mark.parametrize("dtype", [C64, C128])
def test_lu_singular_and_nonfinite(dtype):
    a = cn((4, 4), dtype)
    a[:, 2] = 0.0  # singular: LAPACK still finishes (info > 0) and jax keeps the factors
    check(jsl.lu_factor, a)
    check(jnp.linalg.det, np.zeros((3, 3), dtype))
    b = cn((3, 4, 4), dtype)
    b[0, 1, 1] = np.nan
    b[1, 2, 0] = complex(0, np.inf)
    check(lambda x: lax.linalg.lu(x)[0], b)


@pytest.mark.parametrize("fn,dtype", [("solve", C64), ("solve", C128), ("inv", C64), ("det", C128), ("slogdet", C64),
                                      ("slogdet", C128), ("lu_solve", C64)])
def test_lu_users(fn, dtype):
    a, b = cn((3, 6, 6), dtype), cn((3, 6, 2), dtype)
    f = {"solve": jnp.linalg.solve, "inv": lambda a, b: jnp.linalg.inv(a), "det": lambda a, b: jnp.linalg.det(a),
         "slogdet": lambda a, b: jnp.stack(jnp.linalg.slogdet(a)).astype(a.dtype),
         "lu_solve": lambda a, b: jsl.lu_solve(jsl.lu_factor(a[0]), b[0])}[fn]
    check(f, a, b, tol=1e-3 if dtype == C64 else 1e-10)


# ---------------------------------------------------------------- geqrf / ungqr (QR)
@pytest.mark.parametrize("shape,dtype", [((5, 5), C64), ((6, 3), C128), ((3, 6), C64), ((2, 4, 4), C128),
                                         ((1, 1), C64), ((0, 0), C128), ((3, 0), C64), ((2, 0, 3), C64)])
@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_qr(shape, mode, dtype):
    # q, r: LAPACK's conventions (real beta, complex tau), so the factors themselves match
    check(lambda x: jnp.linalg.qr(x, mode=mode), cn(shape, dtype))


def test_qr_householder_pair_and_degenerate_columns():
    from jax._src.lax.linalg import geqrf, householder_product  # the LAPACK pair itself
    a = cn((5, 4))
    a[:, 1] = 0.0  # a zero column: its reflector is the identity (tau = 0)
    a[2:, 2] = 0.0  # zero below the diagonal after the first two steps, alpha complex: tau != 0
    check(lambda x: (*geqrf(x), householder_product(*geqrf(x))), a)  # packed R and V, tau, Q
    d = np.diag(np.array([1j, -2, 3 + 4j], C128))  # already triangular: taus from complex alphas only
    check(lambda x: (*geqrf(x), jnp.linalg.qr(x)[0]), d)


# ---------------------------------------------------------------- blocked (recursive) paths
@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 8 columns, so small matrices take every recursive path (see test_linalg.py)."""
    from tt_xla.compiler import linalg
    monkeypatch.setattr(linalg, "BASE", 8)
    monkeypatch.setattr(linalg, "GRAM_LEAF", 16)  # Cholesky's trailing updates split into lower blocks too
    tt_xla.client().clear_cache()
    yield
    tt_xla.client().clear_cache()


@pytest.mark.parametrize("shape,dtype", [((13, 13), C64), ((2, 21, 21), C128)])
def test_blocked(small_blocks, shape, dtype):
    a, h = cn(shape, dtype), hpd(shape, dtype)
    b = cn(shape[:-1] + (3,), dtype)
    check(lambda x: (jnp.linalg.cholesky(x), jsl.cholesky(x, lower=False)), h)
    check(lambda a, b: tuple(jsl.solve_triangular(a, b, lower=t != 1, trans=t) for t in (0, 1, 2)), tri(shape, dtype), b)
    check(lambda a, b: (*lax.linalg.lu(a), jnp.linalg.solve(a, b), *jnp.linalg.qr(a)), a, b)


def test_blocked_tall_and_wide_qr_and_lu(small_blocks):
    for shape in [(20, 11), (11, 20)]:
        check(lambda x: (*jnp.linalg.qr(x, mode="complete"), *lax.linalg.lu(x)), cn(shape))


def test_blocked_cholesky_not_positive_definite(small_blocks):
    a = hpd((3, 20, 20))
    a[1, 17, 17] = -100.0  # fails in the second half
    a[2, 3, 3] = -100.0  # fails in the first half
    got = check(jnp.linalg.cholesky, a)
    lo = np.tril_indices(20)
    assert np.all(np.isnan(got[1][lo])) and np.all(np.isnan(got[2][lo])) and not np.any(np.isnan(got[0]))


def test_default_blocks_cross_the_base_size():
    h, b = hpd((40, 40), C128), cn((40, 2), C128)
    check(lambda a, b: jsl.cho_solve(jsl.cho_factor(a), b), h, b)
    check(jnp.linalg.inv, cn((36, 36), C128))


def test_other_complex_targets_are_still_refused_by_name():
    with pytest.raises(tt_xla.UnsupportedError, match=r"lapack_cgeev_ffi.*test_linalg_complex.py"):
        tt_xla.jit(jnp.linalg.eigvals)(np.eye(3, dtype=C64))
