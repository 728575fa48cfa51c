"""Linear algebra (compiler/linalg.py): the LAPACK custom_calls jax exports, against CPU JAX."""
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest
from jax import lax

import tt_xla

rng = np.random.default_rng(0)


def spd(shape, dtype=np.float32):
    x = rng.standard_normal(shape)
    return (x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def check(f, *args, rtol=1e-5, atol=1e-5):
    with jax.enable_x64(any(a.dtype == np.float64 for a in args)):
        want = np.asarray(jax.jit(f)(*args))
        got = np.asarray(tt_xla.jit(f)(*args))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7, 7), (2, 2, 33, 33), (1, 1), (0, 0), (2, 0, 0), (0, 3, 3)])
def test_cholesky(shape):
    check(jnp.linalg.cholesky, spd(shape) if 0 not in shape else np.zeros(shape, np.float32), rtol=1e-4)


def test_cholesky_f64():
    check(jnp.linalg.cholesky, spd((2, 9, 9), np.float64), rtol=1e-12, atol=1e-12)


def test_cholesky_upper_and_not_positive_definite():
    a = spd((3, 6, 6))
    a[1, 3, 3] = -50.0  # not positive definite: jax turns that matrix into NaN (info > 0)
    a[2, 0, 0] = np.nan
    check(jnp.linalg.cholesky, a, rtol=1e-4)
    check(lambda x: jsl.cholesky(x, lower=False), a, rtol=1e-4)
    check(lambda x: jsl.cholesky(x, lower=True), spd((4, 4)), rtol=1e-4)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", [0, 1])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(lower, trans, unit):
    a = spd((3, 6, 6)) / 6 + np.eye(6, dtype=np.float32)
    b = rng.standard_normal((3, 6, 2)).astype(np.float32)
    check(lambda a, b: jsl.solve_triangular(a, b, lower=lower, trans=trans, unit_diagonal=unit), a, b,
          rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_triangular_solve_right_side(lower, transpose):
    a = spd((7, 7)) / 7 + np.eye(7, dtype=np.float32)
    b = rng.standard_normal((3, 7)).astype(np.float32)
    check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=False, lower=lower, transpose_a=transpose),
          a, b, rtol=1e-4, atol=1e-4)


def test_solve_triangular_vector_f64_empty_and_singular():
    a = spd((5, 5), np.float64)
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), a, rng.standard_normal(5), rtol=1e-12, atol=1e-12)
    check(lambda a, b: jsl.solve_triangular(a, b), np.zeros((0, 0), np.float32), np.zeros((0, 3), np.float32))
    s = np.tril(spd((4, 4)))
    s[2, 2] = 0.0  # a zero pivot gives inf/NaN as LAPACK's trsm does
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), s, np.ones((4, 2), np.float32))


def test_cho_solve_and_gaussian_process_loglik():
    a, b = spd((8, 8)), rng.standard_normal((8, 3)).astype(np.float32)
    check(lambda a, b: jsl.cho_solve(jsl.cho_factor(a, lower=True), b), a, b, rtol=1e-4, atol=1e-4)

    def nll(k, y):
        c = jnp.linalg.cholesky(k)
        alpha = jsl.cho_solve((c, True), y)
        return 0.5 * y @ alpha + jnp.sum(jnp.log(jnp.diag(c)))
    check(nll, a, b[:, 0], rtol=1e-4, atol=1e-4)


def test_unhandled_target_names_target_and_line():
    with pytest.raises(tt_xla.UnsupportedError, match=r"lapack_sgeev_ffi.*test_linalg.py"):
        tt_xla.jit(jnp.linalg.eigvals)(np.eye(3, dtype=np.float32))


@pytest.mark.parametrize("shape", [(6, 6), (5, 3), (3, 5), (2, 7, 7), (1, 1), (0, 0), (2, 0, 0)])
def test_lu(shape):
    a = rng.standard_normal(shape).astype(np.float32)
    for i in range(3):  # lu, pivots (exactly), permutation (exactly)
        check(lambda x: jax.lax.linalg.lu(x)[i], a, rtol=1e-5, atol=1e-5)


def test_lu_singular_and_f64():
    a = rng.standard_normal((4, 4))
    a[:, 2] = 0.0  # singular: LAPACK still finishes (info > 0) and jax keeps the factors
    check(lambda x: jax.lax.linalg.lu(x)[0], a.astype(np.float32))
    check(lambda x: jax.lax.linalg.lu(x)[0], a, rtol=1e-12, atol=1e-12)
    check(lambda x: jsl.lu_factor(x)[1], a)
    check(jnp.linalg.det, np.zeros((3, 3), np.float32))


def test_lu_ties_go_to_the_first_row_in_swapped_order():
    """LU's leaf keeps its rows in place and their positions apart: a tie must go to the first
    row in LAPACK's swapped order, not in storage order. Step 0 moves row 0 to position 3; at
    step 1 rows 1 (position 1) and 0 (position 3) tie at 3 exactly (LAPACK takes row 1, storage
    order would take row 0); the second matrix ties rows 2 and 0 at step 1 the other way."""
    a = np.array([[[1, 4, 1, 2], [1, 4, 3, 1], [1, 1, 2, 5], [2, 2, 0, 0]],
                  [[1, 4, 1, 2], [1, 1, 3, 1], [1, 4, 2, 5], [2, 2, 7, 0]]], np.float32)
    for i in range(3):
        check(lambda x: jax.lax.linalg.lu(x)[i], a, rtol=0, atol=0)
    check(lambda x: jax.lax.linalg.lu(x)[1], np.ones((3, 5, 4), np.float32), rtol=0, atol=0)  # all ties


@pytest.mark.parametrize("fn", ["solve", "inv", "det", "slogdet", "lu_solve"])
def test_lu_users(fn):
    a = rng.standard_normal((3, 6, 6)).astype(np.float32)
    b = rng.standard_normal((3, 6, 2)).astype(np.float32)
    f = {"solve": jnp.linalg.solve, "inv": lambda a, b: jnp.linalg.inv(a), "det": lambda a, b: jnp.linalg.det(a),
         "slogdet": lambda a, b: jnp.stack(jnp.linalg.slogdet(a)),
         "lu_solve": lambda a, b: jsl.lu_solve(jsl.lu_factor(a[0]), b[0])}[fn]
    check(f, a, b, rtol=1e-4, atol=1e-4)


def test_stablehlo_cholesky_and_triangular_solve_ops():
    # the ops themselves (jax exports LAPACK calls on CPU, other producers these), against XLA:CPU
    text = """func.func public @main(%a: tensor<2x5x5xf32>, %b: tensor<2x3x5xf32>) -> (tensor<2x5x5xf32>, tensor<2x3x5xf32>) {
  %0 = stablehlo.cholesky %a, lower = true : tensor<2x5x5xf32>
  %1 = "stablehlo.triangular_solve"(%0, %b) {left_side = false, lower = true, unit_diagonal = false,
        transpose_a = #stablehlo<transpose TRANSPOSE>} : (tensor<2x5x5xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  return %0, %1 : tensor<2x5x5xf32>, tensor<2x3x5xf32>
}"""
    a, b = spd((2, 5, 5)), rng.standard_normal((2, 3, 5)).astype(np.float32)
    exe = tt_xla.client().compile(text)
    l, x = (np.asarray(v) for v in exe(a, b))
    mask = np.tril(np.ones((5, 5), bool))
    want_l = np.linalg.cholesky(a)
    np.testing.assert_allclose(np.where(mask, l, 0), want_l, rtol=1e-5, atol=1e-5)  # other triangle: impl.-defined
    np.testing.assert_allclose(x, np.linalg.solve(want_l, np.swapaxes(b, 1, 2)).swapaxes(1, 2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, np.float16])
def test_triangular_solve_narrow_floats(dtype):
    a = (spd((4, 4)) / 4 + np.eye(4, dtype=np.float32)).astype(dtype)
    b = rng.standard_normal((4, 3)).astype(dtype)
    check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=True, lower=False), a, b, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("shape", [(5, 5), (6, 3), (3, 6), (2, 4, 4), (1, 1), (0, 0), (3, 0), (2, 0, 3)])
@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_qr(shape, mode):
    a = rng.standard_normal(shape).astype(np.float32)
    for i in range(2):  # q, r: LAPACK's sign convention, so the factors themselves match
        check(lambda x: jnp.linalg.qr(x, mode=mode)[i], a, rtol=1e-4, atol=1e-5)


def test_qr_rank_deficient_f64_and_householder():
    a = rng.standard_normal((5, 4))
    a[:, 1] = 0.0  # a zero column: its reflector is the identity (tau = 0)
    a[3:, 2] = 0.0
    check(lambda x: jnp.linalg.qr(x)[0], a, rtol=1e-12, atol=1e-12)
    check(lambda x: jnp.linalg.qr(x)[1], a.astype(np.float32), rtol=1e-5, atol=1e-5)
    from jax._src.lax.linalg import geqrf, householder_product  # the LAPACK pair itself
    for i in range(2):  # packed reflectors and R, tau
        check(lambda x: geqrf(x)[i], a.astype(np.float32), rtol=1e-5, atol=1e-5)
    check(lambda x: householder_product(*geqrf(x)), a.astype(np.float32), rtol=1e-5, atol=1e-5)


def test_bad_operand_shapes_are_clear_errors():
    text = """func.func public @main(%a: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %0 = stablehlo.cholesky %a, lower = true : tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}"""
    with pytest.raises((tt_xla.UnsupportedError, ValueError), match="cholesky"):
        tt_xla.compile(text)
    text = """func.func public @main(%a: tensor<3x3xf32>) -> (tensor<3x3xf32>, tensor<3xi32>) {
  %0:2 = stablehlo.custom_call @lapack_spotrf_ffi(%a) {mhlo.backend_config = {uplo = 76 : ui8}} : (tensor<3x3xf32>) -> (tensor<3x3xf32>, tensor<3xi32>)
  return %0#0, %0#1 : tensor<3x3xf32>, tensor<3xi32>
}"""
    with pytest.raises(tt_xla.UnsupportedError, match=r"lapack_spotrf_ffi: results"):
        tt_xla.compile(text)


# ---------------------------------------------------------------- blocked (recursive) factorizations
@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 8 columns, so small matrices take every recursive path (splits at several
    levels, odd remainders); the client's cache is cleared around it, as compiled programs are
    cached by their text, which does not show the block size."""
    from tt_xla.compiler import linalg
    monkeypatch.setattr(linalg, "BASE", 8)
    monkeypatch.setattr(linalg, "GRAM_LEAF", 16)  # Cholesky's trailing updates split into lower blocks too
    tt_xla.client().clear_cache()
    yield
    tt_xla.client().clear_cache()


@pytest.mark.parametrize("shape,dtype", [((13, 13), np.float32), ((2, 21, 21), np.float32), ((40, 40), np.float32),
                                         ((3, 19, 19), np.float64), ((2, 70, 70), np.float32), ((100, 100), np.float64)])
def test_blocked_cholesky(small_blocks, shape, dtype):
    a = spd(shape, dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    check(jnp.linalg.cholesky, a, rtol=tol, atol=tol)
    check(lambda x: jsl.cholesky(x, lower=False), a, rtol=tol, atol=tol)


def test_cholesky_trailing_updates_make_only_their_lower_blocks(monkeypatch):
    # updates split into lower blocks (GRAM_LEAF 64: the top update of 128 rows is three
    # products of 64 x 64) make fewer matrix tiles than full squares, with the same factor
    from tt_xla.compiler import linalg
    a = spd((256, 256))
    text = jax.jit(jnp.linalg.cholesky).lower(a).as_text()
    exes = []
    for leaf in (64, 10 ** 9):
        monkeypatch.setattr(linalg, "GRAM_LEAF", leaf)
        tt_xla.client().clear_cache()
        exes.append(tt_xla.compile(text))
    tt_xla.client().clear_cache()
    split, square = ([sum(k.matrix_tiles for k in e.kernels()) for e in exes])
    assert square - split == 64 - 48  # (4 x 4 output tiles, 4 deep) -> 3 x (2 x 2, 4 deep)
    np.testing.assert_allclose(np.asarray(exes[0](a)[0]), np.asarray(exes[1](a)[0]), rtol=1e-5, atol=1e-5)


def test_blocked_cholesky_non_finite_values_spread_as_in_lapack(small_blocks):
    # a NaN or inf in the triangle read (in a leaf, below one, on the diagonal): the solves that
    # meet it substitute, on the factor's blocks assembled, so NaN reaches CPU JAX's elements only
    # only: OpenBLAS's potrf, which CPU JAX calls, blocks by the CPU it runs on, and where its
    # trailing products meet inf times 0 it spreads NaN further (on an AMD EPYC, two elements of
    # the fourth matrix that do not depend on the inf), so its extra NaNs are not compared
    a = spd((5, 40, 40))
    for m, (i, j, v) in enumerate([(30, 5, np.nan), (3, 2, np.inf), (12, 12, np.inf), (25, 17, -np.inf)]):
        a[m, i, j] = a[m, j, i] = v
    got = np.asarray(tt_xla.jit(jnp.linalg.cholesky)(a))
    want = np.asarray(jax.jit(jnp.linalg.cholesky)(a))
    for m in range(5):
        g, w = ~np.isfinite(got[m]), ~np.isfinite(want[m])
        assert not (g & ~w).any() and (g.any() or m == 4), m  # NaN only where CPU JAX has it, but somewhere
        both = ~g & ~w
        np.testing.assert_allclose(got[m][both], want[m][both], rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(got[m][g], want[m][g])  # (the same inf, -inf or NaN)


@pytest.mark.parametrize("lower", [True, False])
def test_blocked_cholesky_reads_only_its_triangle(small_blocks, lower):
    # potrf never reads the other triangle: NaN and inf there must not reach the factor (the
    # expansion works on the named triangle only, with no symmetrizing pass)
    a = spd((2, 20, 20))
    other = np.triu_indices(20, 1) if lower else np.tril_indices(20, -1)
    a[0][other] = np.nan
    a[1][other] = np.inf
    check(lambda x: jsl.cholesky(x, lower=lower), a, rtol=1e-4)  # jax's potrf is always uplo=L
    uplo = 76 if lower else 85
    text = f"""func.func public @main(%a: tensor<2x20x20xf32>) -> (tensor<2x20x20xf32>, tensor<2xi32>) {{
  %0:2 = stablehlo.custom_call @lapack_spotrf_ffi(%a) {{mhlo.backend_config = {{uplo = {uplo} : ui8}},
      mhlo.frontend_attributes = {{num_batch_dims = "1"}}}} : (tensor<2x20x20xf32>) -> (tensor<2x20x20xf32>, tensor<2xi32>)
  return %0#0, %0#1 : tensor<2x20x20xf32>, tensor<2xi32>
}}"""
    got, info = (np.asarray(o) for o in tt_xla.compile(text)(a))
    mine = np.tril(np.ones((20, 20), bool)) if lower else np.triu(np.ones((20, 20), bool))
    sym = np.where(mine, a, np.swapaxes(a, -1, -2)).astype(np.float64)
    want = np.linalg.cholesky(sym)
    want = np.where(mine, want if lower else np.swapaxes(want, -1, -2), a)  # the other triangle is the input's
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert (info == 0).all()


def test_blocked_cholesky_not_positive_definite_and_info(small_blocks):
    a = spd((4, 20, 20))
    a[1, 17, 17] = -100.0  # fails in the second half: info counts whole-matrix columns
    a[2, 3, 3] = -100.0  # fails in the first half: the second half's garbage must not win
    a[3, 9, 9] = np.nan
    check(jnp.linalg.cholesky, a, rtol=1e-4)
    text = """func.func public @main(%a: tensor<4x20x20xf32>) -> (tensor<4x20x20xf32>, tensor<4xi32>) {
  %0:2 = stablehlo.custom_call @lapack_spotrf_ffi(%a) {mhlo.backend_config = {uplo = 76 : ui8},
      mhlo.frontend_attributes = {num_batch_dims = "1"}} : (tensor<4x20x20xf32>) -> (tensor<4x20x20xf32>, tensor<4xi32>)
  return %0#0, %0#1 : tensor<4x20x20xf32>, tensor<4xi32>
}"""
    l, info = (np.asarray(v) for v in tt_xla.compile(text)(a))
    assert list(info) == [0, 18, 4, 0]  # 1-based column of the first pivot <= 0 (NaN is not, as on CPU)
    np.testing.assert_allclose(np.tril(l[0]), np.linalg.cholesky(a[0]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("nrhs", [5, 2])
def test_blocked_triangular_solve(small_blocks, side, lower, transpose, nrhs):
    # 2 right-hand sides of 21 (at most n/8): an upper solve's joins read the matrix's blocks
    # as they are and reverse their small operands (the path solve's U takes)
    a = spd((2, 21, 21)) / 21 + np.eye(21, dtype=np.float32)
    b = rng.standard_normal((2, 21, nrhs) if side == "left" else (2, nrhs, 21)).astype(np.float32)
    for unit in (False, True):
        check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=side == "left", lower=lower,
                                                       transpose_a=transpose, unit_diagonal=unit),
              a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(20, 20), (2, 19, 13), (13, 27), (30, 17), (3, 9, 9)])
def test_blocked_lu(small_blocks, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    for i in range(3):  # lu, pivots (exactly), permutation (exactly)
        check(lambda x: jax.lax.linalg.lu(x)[i], a, rtol=1e-4, atol=1e-4)


def test_blocked_lu_singular_f64_and_solve(small_blocks):
    a = rng.standard_normal((2, 20, 20))
    a[0, :, 13] = 0.0  # a zero column in the second half: info and the factors as LAPACK's
    a[1, :, 2] = 0.0  # and one in the first
    for i in range(3):
        check(lambda x: jax.lax.linalg.lu(x)[i], a, rtol=1e-10, atol=1e-10)
    check(lambda x: jsl.lu_factor(x[0])[0], a.astype(np.float32), rtol=1e-4, atol=1e-4)
    good = rng.standard_normal((3, 20, 20)).astype(np.float32) + 5 * np.eye(20, dtype=np.float32)
    b = rng.standard_normal((3, 20, 2)).astype(np.float32)
    check(jnp.linalg.solve, good, b, rtol=1e-4, atol=1e-4)
    check(jnp.linalg.det, good, rtol=1e-4, atol=1e-4)


def test_default_blocks_cross_the_base_size():
    # 70 > BASE: one split at the block size the benchmarks use
    a = spd((70, 70))
    check(jnp.linalg.cholesky, a, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal((70, 70)).astype(np.float32) + 8 * np.eye(70, dtype=np.float32)
    check(jnp.linalg.solve, g, rng.standard_normal((70, 3)).astype(np.float32), rtol=1e-4, atol=1e-4)


def test_zero_width_rows_lower_and_loop_bodies_on_empty_values(monkeypatch):
    # a zero-width row with a column-invariant operand once divided by zero in lower.py's DMA
    # figure (the linalg loops used to dodge it by emitting no loop for empty problems)
    f = lambda x, y: x * y + 1  # noqa: E731
    x, y = np.zeros((3, 0), np.float32), np.ones((3, 1), np.float32)
    check(f, x, y)
    check(lambda x, y: lax.fori_loop(0, 2, lambda i, x: f(x, y), x), x, y)
    from tt_xla.compiler import linalg
    loop = linalg._loop
    monkeypatch.setattr(linalg, "_loop", lambda f, n, carried, body, empty=False: loop(f, n, carried, body))
    tt_xla.client().clear_cache()
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), spd((3, 3)), np.zeros((3, 0), np.float32))
    check(jnp.linalg.cholesky, np.zeros((0, 3, 3), np.float32))
    tt_xla.client().clear_cache()


@pytest.mark.parametrize("shape", [(20, 20), (2, 27, 13), (13, 27), (30, 17)])
def test_blocked_qr(small_blocks, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    for mode in ("reduced", "complete"):
        for i in range(2):
            check(lambda x: jnp.linalg.qr(x, mode=mode)[i], a, rtol=1e-4, atol=1e-4)


def test_blocked_qr_rank_deficient_f64_and_householder(small_blocks):
    from jax._src.lax.linalg import geqrf, householder_product
    a = rng.standard_normal((2, 24, 20))
    a[0, :, 11] = 0.0  # tau = 0 in the second half: its T column and row are zero
    a[1, 5:, 3] = 0.0  # and in the first
    for i in range(2):
        check(lambda x: geqrf(x)[i], a, rtol=1e-10, atol=1e-10)
    check(lambda x: householder_product(*geqrf(x)), a, rtol=1e-10, atol=1e-10)
    check(lambda x: householder_product(*geqrf(x)), a.astype(np.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("row", [37, 20, 3])
def test_triangular_solve_nan_wherever_the_inf_sits(row):
    """0 * inf is NaN in every row below it, as in CPU JAX's trsm, whether the inf sits in a
    leaf block's column loop (rows 3, 20) or in a blocked join's product (row 37)."""
    a = np.tril(rng.standard_normal((40, 40))).astype(np.float32) + 4 * np.eye(40, dtype=np.float32)
    a[row, 0] = np.inf
    b = np.ones((40, 2), np.float32)
    b[0] = 0
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), a, b)


@pytest.mark.parametrize("row", [2, 13])
def test_blocked_triangular_solve_nonfinite_rhs_keeps_rows_above(small_blocks, row):
    """An inf in B reaches only the rows at and below it, as substitution does: the product
    with an inverted diagonal block would make 0 * inf = NaN above it (the non-finite path);
    one matrix of the batch non-finite, the other solved as usual in the same call."""
    a = np.tril(spd((2, 20, 20))) / 20 + np.eye(20, dtype=np.float32)
    b = rng.standard_normal((2, 20, 3)).astype(np.float32)
    b[1, row, 1] = np.inf
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), a, b, rtol=1e-4, atol=1e-4)
    b[1, row, 1] = np.nan
    check(lambda a, b: jsl.solve_triangular(a, b, lower=False, trans=1), a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_blocked_upper_solve_with_few_right_hand_sides_nonfinite(small_blocks, side):
    """An upper solve with few right-hand sides (reversed-operand joins) and a NaN in one
    matrix of the batch: that one is solved by substitution, the other by the joins."""
    a = spd((2, 21, 21)) / 21 + np.eye(21, dtype=np.float32)
    b = rng.standard_normal((2, 21, 2) if side == "left" else (2, 2, 21)).astype(np.float32)
    b[(1, 4, 1) if side == "left" else (1, 1, 4)] = np.nan
    check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=side == "left", lower=side == "right"),
          a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_blocked_solve_one_right_hand_side(small_blocks, dtype):
    """jnp.linalg.solve as solve_1024 runs it, on blocks of 8: LU's levels and both
    triangular solves' joins (U's with reversed operands)."""
    a = rng.standard_normal((2, 21, 21)).astype(np.float32)
    b = rng.standard_normal((2, 21, 1)).astype(np.float32)
    if dtype == np.complex64:
        a = (a + 1j * rng.standard_normal(a.shape)).astype(dtype)
        b = (b - 1j * rng.standard_normal(b.shape)).astype(dtype)
    check(jnp.linalg.solve, a, b, rtol=1e-4, atol=1e-4)


def test_blocked_triangular_solve_inverses_padded_and_ill_conditioned(small_blocks):
    # 21 = 2 * 8 + 5: the last diagonal block is padded with an identity before inverting;
    # a unit-diagonal L with entries ~1 has inverse entries growing like 2^n, solved as CPU does
    a = np.tril(rng.uniform(-1, 1, (21, 21))) + np.eye(21)
    b = rng.standard_normal((21, 4))
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True, unit_diagonal=True), a, b, rtol=1e-9, atol=1e-9)
    check(lambda a, b: jsl.solve_triangular(a, b, lower=True), a.astype(np.float32), b.astype(np.float32),
          rtol=1e-3, atol=1e-3)


def test_blocked_lu_nonfinite_and_tall_panel(small_blocks):
    # a NaN pivot column and an inf below the diagonal: pivots, factors and info as CPU JAX's
    a = rng.standard_normal((3, 40, 12)).astype(np.float32)
    a[1, 5:, 9] = np.nan
    a[2, 30, 2] = np.inf
    for i in range(3):
        check(lambda x: jax.lax.linalg.lu(x)[i], a, rtol=1e-4, atol=1e-4)
