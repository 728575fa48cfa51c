"""Eigensolvers (compiler/eig.py): eigh and svd (and lstsq, pinv, matrix_rank, norm(ord=2) built on
svd) against CPU JAX. Vectors are compared as JAX's own linalg tests compare them: eigen/singular
values to the reference, the matrix the factors rebuild, and the factors' orthonormality (the
vectors themselves are only defined up to sign, or rotation within repeated values)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tt_xla
from tools.outcome import same_decomposition

rng = np.random.default_rng(0)


def sym(shape, dtype=np.float32):
    x = rng.standard_normal(shape)
    return ((x + np.swapaxes(x, -1, -2)) / 2).astype(dtype)


def run(f, *args):
    with jax.enable_x64(any(a.dtype == np.float64 for a in args)):
        want = [np.asarray(w) for w in jax.tree_util.tree_leaves(jax.jit(f)(*args))]
        got = [np.asarray(g) for g in jax.tree_util.tree_leaves(tt_xla.jit(f)(*args))]
    return got, want


def svd(x, **kw):
    """lax.linalg.svd's outputs in the primitive's order (s, u, vt), as the harness sees them."""
    out = lax.linalg.svd(x, **kw)
    return out if not kw.get("compute_uv", True) else (out[1], out[0], out[2])


def check_eigh(a, **kw):
    got, want = run(lambda x: lax.linalg.eigh(x, **kw), a)
    assert same_decomposition(got, want, "eigh"), (got, want)
    v, w = got
    assert np.all(np.diff(w, axis=-1) >= 0) or np.isnan(w).any()  # ascending, as LAPACK gives them
    return v, w


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 7, 7), (2, 2, 20, 20), (33, 33)])
def test_eigh_random(shape):
    a = sym(shape)
    v, w = check_eigh(a)
    ref = np.linalg.eigvalsh(a.astype(np.float64))
    np.testing.assert_allclose(w, ref, atol=2e-5 * max(1, np.abs(ref).max()))
    np.testing.assert_allclose(a @ v, v * w[..., None, :], atol=5e-5 * max(1, np.abs(ref).max()))


@pytest.mark.parametrize("lower", [True, False])
def test_eigh_reads_only_the_named_triangle(lower):
    a = sym((4, 6, 6))
    junk = a + np.triu(rng.standard_normal((6, 6)), 1).astype(np.float32) * (1 if lower else 0) \
        + np.tril(rng.standard_normal((6, 6)), -1).astype(np.float32) * (0 if lower else 1)
    got, want = run(lambda x: lax.linalg.eigh(x, lower=lower, symmetrize_input=False), junk)
    assert same_decomposition(got, want, "eigh")
    np.testing.assert_allclose(got[1], np.linalg.eigvalsh(a, UPLO="L" if lower else "U"), atol=2e-5)


def test_eigh_repeated_eigenvalues_and_f64():
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    a = (q * np.array([1, 1, 1, 2, 2, -3, 0, 0])) @ q.T  # a 3-fold, 2-fold and a zero pair
    check_eigh(a.astype(np.float32))
    v, w = check_eigh(a)
    np.testing.assert_allclose(w, [-3, 0, 0, 1, 1, 1, 2, 2], atol=1e-12)
    check_eigh(sym((3, 9, 9), np.float64))
    check_eigh(np.diag(np.arange(5.0, 0, -1)).astype(np.float32))  # already diagonal: sorted only
    check_eigh(sym((4, 4)) * 1e30)  # scaled, so squares cannot overflow
    check_eigh(sym((4, 4)) * 1e-30)


def test_eigh_sort_flag_and_empty():
    got, want = run(lambda x: lax.linalg.eigh(x, sort_eigenvalues=False), sym((2, 5, 5)))
    assert same_decomposition(got, want, "eigh")
    for shape in [(0, 0), (3, 0, 0), (0, 4, 4)]:
        got, want = run(jnp.linalg.eigh, np.zeros(shape, np.float32))
        assert [g.shape for g in got] == [w.shape for w in want]


def test_eigh_nan_and_inf_input_give_nan_for_that_matrix_only():
    a = sym((3, 5, 5))
    a[1, 2, 3] = a[1, 3, 2] = np.nan
    a[2, 0, 0] = np.inf
    got, want = run(jnp.linalg.eigh, a)
    w, v = got  # EighResult(eigenvalues, eigenvectors)
    assert np.isnan(w[1:]).all() and np.isnan(v[1:]).all()
    assert same_decomposition([got[1][:1], got[0][:1]], [want[1][:1], want[0][:1]], "eigh")


def test_eigh_batch_swept_as_one_stack():
    # a batch's vectors are swept as one [k B, k] stack: f32 with an odd n, f64 with two batch
    # dims, repeated eigenvalues, and NaN in one matrix of the batch
    a = sym((16, 9, 9))
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a[3, :6, :6], a[3, 6:], a[3, :, 6:] = (q * np.array([1, 1, 1, 2, 2, -3])) @ q.T, 0, 0
    a[5, 2, 4] = a[5, 4, 2] = np.nan
    got, want = run(jnp.linalg.eigh, a)
    ok = np.arange(16) != 5
    assert np.isnan(got[0][5]).all() and np.isnan(got[1][5]).all()
    assert same_decomposition([got[1][ok], got[0][ok]], [want[1][ok], want[0][ok]], "eigh")
    np.testing.assert_allclose(got[0][ok], np.linalg.eigvalsh(a[ok].astype(np.float64)), atol=2e-5)
    check_eigh(sym((4, 5, 6, 6), np.float64))


def test_eigh_tests_convergence_only_after_a_quiet_sweep():
    # The Gram product that tests the vectors' orthogonality runs only after a sweep whose
    # rotations were all small (eig.QUIET). 2x2 blocks on the first step's pairs (2i, 2i+1) are
    # diagonalised by large rotations in sweep 1: its test is skipped, and sweep 2, with nothing
    # to rotate, is quiet and its test ends the loop. A diagonal matrix is quiet at once and ends
    # after sweep 1. So both run one test (the same matrix tiles), the blocks one sweep more.
    rt = tt_xla.client().devices()[0].runtime_device
    blocks = np.zeros((2, 8, 8), np.float32)
    for i in range(4):
        blocks[:, 2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[i + 1, 3], [3, -2 * i - 1]]
    diag = np.stack([np.diag(np.arange(8, dtype=np.float32) - 3.5)] * 2)
    f = tt_xla.jit(jnp.linalg.eigh)
    counts = []
    for a in (diag, blocks):
        check_eigh(a)
        rt.reset_counters()
        f(a)
        counts.append(rt.counters())
    assert counts[0]["matrix_tiles"] == counts[1]["matrix_tiles"] > 0
    assert counts[1]["kernels_launched"] > counts[0]["kernels_launched"]


def test_eigh_vectors_as_accurate_as_lapack_for_close_eigenvalues():
    # The sweeps work on A + mu I (mu ~ ||A||_F, here ~5 rho(A)) and leave each vector wrong by
    # about eps mu / gap; the refinement must bring that to eps rho / gap, as LAPACK's (err x gap
    # is 0.6 eps with it, 17 eps without it, 1.6 eps from CPU JAX on these matrices).
    r = np.random.default_rng(1)
    n = 32
    q, _ = np.linalg.qr(r.standard_normal((4, n, n)))
    lam = r.uniform(-1, 1, (4, n))
    lam[:, 10] = lam[:, 9] + 1e-4  # a close pair in every matrix
    a = ((q * lam[:, None, :]) @ np.swapaxes(q, -1, -2)).astype(np.float32)
    w, v = (np.asarray(t, np.float64) for t in tt_xla.jit(jnp.linalg.eigh)(a))
    w64, v64 = np.linalg.eigh(a.astype(np.float64))
    gap = np.minimum(np.diff(w64, axis=-1, prepend=-np.inf), np.diff(w64, axis=-1, append=np.inf))
    err = np.linalg.norm(v - v64 * np.sign(np.sum(v * v64, axis=-2, keepdims=True)), axis=-2)
    assert (err * gap).max() < 4 * 2.0 ** -23
    np.testing.assert_allclose(w, w64, atol=4 * 2.0 ** -23)


def spectra(n, r):
    """Eigenvalue sets that stress a Jacobi + refinement eigensolver's orthogonality: random,
    clusters (1e-3, 1e-6), exact repeats, and close pairs just above the refinement's cluster
    threshold (16 eps mu, ~2e-5 here), where its correction is largest."""
    close = r.standard_normal(n)
    close[1], close[3] = close[0] + 2e-5, close[2] + 4e-5
    return [r.standard_normal(n),
            np.r_[np.ones(8) + 1e-3 * r.standard_normal(8), r.standard_normal(n - 8)],
            np.r_[np.ones(8) + 1e-6 * r.standard_normal(8), r.standard_normal(n - 8)],
            np.r_[np.ones(16), -np.ones(16), r.standard_normal(n - 32)],
            close]


def orth_err(v):
    """max |V^H V - I| per matrix of a batch of square V."""
    vv = np.conj(np.swapaxes(v, -1, -2)).astype(np.complex128) @ v
    return np.abs(vv - np.eye(v.shape[-1])).max(axis=(-2, -1))


def test_eigh_vectors_orthonormal_and_rebuild_a_as_lapacks_do():
    # Orthogonality lost in the refinement (V + V E with E's rotation part up to eps mu / gap)
    # gave max |V^T V - I| 2e-3 and A - V diag(w) V^T 1e-3 here; CPU JAX's are ~1e-6.
    r = np.random.default_rng(3)
    n = 64
    q, _ = np.linalg.qr(r.standard_normal((5, n, n)))
    lam = np.stack(spectra(n, r))
    a = ((q * lam[:, None, :]) @ np.swapaxes(q, -1, -2)).astype(np.float32)  # one batch: one compile
    w, v = (np.asarray(t) for t in tt_xla.jit(jnp.linalg.eigh)(a))
    wj, vj = (np.asarray(t) for t in jax.jit(jnp.linalg.eigh)(a))

    def rebuild_err(v, w):
        return np.abs((v.astype(np.float64) * w[..., None, :]) @ np.swapaxes(v, -1, -2) - a).max(axis=(-2, -1))

    np.testing.assert_array_less(orth_err(v), np.maximum(10 * orth_err(vj), 2e-5))
    np.testing.assert_array_less(rebuild_err(v, w), np.maximum(10 * rebuild_err(vj, wj), 2e-5))
    np.testing.assert_allclose(w, wj, atol=1e-5)
    np.testing.assert_array_less(np.abs(a @ v - v * w[..., None, :]).max(axis=(-2, -1)), 2e-6)


def test_eigh_graded_spectrum_vectors_orthonormal_as_lapacks():
    # Eigenvalues 1e-6 .. 1 (random signs): many gaps near the refinement's cluster threshold,
    # whose corrections left V^T V - I about 0.08 before the Newton-Schulz steps, so two left
    # 1e-5 .. 8e-5 (CPU JAX 1.3e-6); a third step runs when the second started far off.
    r = np.random.default_rng(6)
    n = 64
    q, _ = np.linalg.qr(r.standard_normal((4, n, n)))
    lam = np.geomspace(1e-6, 1, n) * r.choice([-1, 1], (4, n))
    a = ((q * lam[:, None, :]) @ np.swapaxes(q, -1, -2)).astype(np.float32)
    w, v = (np.asarray(t) for t in tt_xla.jit(jnp.linalg.eigh)(a))
    wj, vj = (np.asarray(t) for t in jax.jit(jnp.linalg.eigh)(a))
    np.testing.assert_array_less(orth_err(v), np.maximum(3 * orth_err(vj), 2e-6))
    # (eigenvalues off by 0.5e-6 .. 1.3e-6 over seeds 0-5, by where the sweeps' rounding falls;
    # n eps ||A|| is 3.8e-6, CPU JAX 0.3e-6)
    np.testing.assert_allclose(w, wj, atol=2e-6)
    np.testing.assert_array_less(np.abs(a @ v - v * w[..., None, :]).max(axis=(-2, -1)), 5e-6)


def herm(shape, dtype=np.complex64):
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return ((x + np.conj(np.swapaxes(x, -1, -2))) / 2).astype(dtype)


@pytest.mark.parametrize("lower", [True, False])
def test_eigh_complex_hermitian(lower):
    a = herm((3, 7, 7))
    a[..., np.arange(7), np.arange(7)] += 1j  # LAPACK ignores the diagonal's imaginary part
    got, want = run(lambda x: lax.linalg.eigh(x, lower=lower, symmetrize_input=False), a)
    assert got[0].dtype == np.complex64 and got[1].dtype == np.float32
    assert same_decomposition(got, want, "eigh")


def test_eigh_complex_batch_swept_as_one_stack():
    check_eigh(herm((17, 5, 5)))


def test_sweeps_that_do_not_converge_give_info_and_nan_not_garbage(monkeypatch):
    # Stopped before convergence (MAX_SWEEPS lowered to 2), the vectors are far from orthogonal
    # and the Newton-Schulz steps after the sweeps diverged: eigh returned values off by 0.16
    # and vectors of 1e44 with info 0. Now the batch gets info 1 and jax's NaN, as LAPACK
    # reports a failure to converge; with the sweeps it needs, the same program is exact.
    from tt_xla.compiler import eig
    a = sym((3, 16, 16))
    monkeypatch.setattr(eig, "MAX_SWEEPS", 2)
    w, v = (np.asarray(t) for t in tt_xla.jit(lambda x: jnp.linalg.eigh(x * 1.0))(a))
    assert np.isnan(w).all() and np.isnan(v).all()
    s = np.asarray(tt_xla.jit(lambda x: jnp.linalg.svd(x * 1.0, compute_uv=False))(a))
    assert np.isnan(s).all()
    monkeypatch.setattr(eig, "MAX_SWEEPS", 30)
    check_eigh(a)


def test_eigh_complex128_repeated_and_nan():
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)) + 1j * rng.standard_normal((6, 6)))
    a = np.stack([(q * np.array([2, 2, 2, -1, 0, 5])) @ np.conj(q.T), herm((6, 6), np.complex128)])
    check_eigh(a)
    a[1, 2, 3] = np.nan
    got, want = run(jnp.linalg.eigh, a)
    assert np.isnan(got[0][1]).all() and not np.isnan(got[0][0]).any()


@pytest.mark.parametrize("shape, full", [((5, 3), True), ((2, 3, 7), True), ((2, 3, 7), False), ((4, 4), False)])
def test_svd_complex(shape, full):
    a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    got, want = run(lambda x: svd(x, full_matrices=full), a)
    assert got[1].dtype == np.complex64 and got[0].dtype == np.float32
    assert same_decomposition(got, want, "svd")


def test_svd_complex128_rank_deficient_and_values_only():
    a = (rng.standard_normal((2, 6, 2)) + 1j * rng.standard_normal((2, 6, 2))) @ \
        (rng.standard_normal((2, 2, 5)) + 1j * rng.standard_normal((2, 2, 5)))  # rank 2: U completed
    for full in (True, False):
        got, want = run(lambda x: svd(x, full_matrices=full), a)
        assert same_decomposition(got, want, "svd")
    got, want = run(lambda x: svd(x, compute_uv=False), a.astype(np.complex64))
    assert same_decomposition(got, want, "svd")
    got, want = run(lambda a, b: jnp.linalg.lstsq(a, b)[0], a[0].astype(np.complex64),
                    np.ones((6, 1), np.complex64))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-3, atol=1e-3)


def test_other_complex_lapack_targets_are_refused_by_name():
    with pytest.raises(tt_xla.UnsupportedError, match="cgeev"):
        tt_xla.jit(jnp.linalg.eigvals)(np.eye(3, dtype=np.complex64))


@pytest.mark.parametrize("shape, full", [((5, 3), True), ((5, 3), False), ((2, 3, 8), True), ((1, 1), False),
                                         ((1, 6), True), ((2, 3, 29, 7), False)])
def test_svd(shape, full):
    a = rng.standard_normal(shape).astype(np.float32)
    got, want = run(lambda x: svd(x, full_matrices=full), a)
    assert same_decomposition(got, want, "svd")
    s, u, vt = got
    assert np.all(np.diff(s, axis=-1) <= 0)  # descending
    if not full:  # values only (gesdd's mode N)
        got, want = run(lambda x: svd(x, compute_uv=False), a)
        assert same_decomposition(got, want, "svd")


def test_svd_rank_deficient_f64_and_nan():
    a = rng.standard_normal((2, 7, 2)) @ rng.standard_normal((2, 2, 5))  # rank 2 of 5
    for dt in (np.float32, np.float64):
        for full in (True, False):
            got, want = run(lambda x: svd(x, full_matrices=full), a.astype(dt))
            assert same_decomposition(got, want, "svd")
            np.testing.assert_allclose(got[0][..., 2:], 0, atol=1e-5 if dt == np.float32 else 1e-12)
    b = rng.standard_normal((3, 4, 4)).astype(np.float32)
    b[0, 1, 1] = np.nan
    got, want = run(svd, b)
    assert all(np.isnan(g[0]).all() for g in got)  # that matrix's s, u and vt are NaN, the others not
    assert same_decomposition([g[1:] for g in got], [w[1:] for w in want], "svd")


@pytest.mark.parametrize("m, n", [(80, 64), (64, 80)])
def test_svd_factors_orthonormal_and_rebuild_a_as_lapacks_do(m, n):
    # V, a product of ~8 k rotations, drifted 1e-5 from orthonormal at k = 64 and A - U S V^T was
    # up to 10x CPU JAX's; both now at JAX's level.
    r = np.random.default_rng(4)
    k = min(m, n)
    u, _ = np.linalg.qr(r.standard_normal((5, m, k)))
    v, _ = np.linalg.qr(r.standard_normal((5, n, k)))
    s = np.abs(np.stack(spectra(k, r)))  # clusters and repeats of singular values
    s[0] = np.linalg.svd(r.standard_normal((m, n)), compute_uv=False)  # a random matrix's
    a = ((u * s[:, None, :]) @ np.swapaxes(v, -1, -2)).astype(np.float32)
    got = [np.asarray(t) for t in tt_xla.jit(lambda x: jnp.linalg.svd(x, full_matrices=False))(a)]
    want = [np.asarray(t) for t in jax.jit(lambda x: jnp.linalg.svd(x, full_matrices=False))(a)]

    def errs(u, s, vt):
        rebuild = np.abs((u.astype(np.float64) * s[..., None, :]) @ vt - a).max(axis=(-2, -1))
        return orth_err(u), orth_err(np.swapaxes(vt, -1, -2)), rebuild

    for g, w in zip(errs(*got), errs(*want)):
        np.testing.assert_array_less(g, np.maximum(4 * w, 2e-6))
    np.testing.assert_allclose(got[1], want[1], atol=1e-5 * want[1].max())


def test_lstsq_pinv_matrix_rank_norm2():
    a = rng.standard_normal((9, 4)).astype(np.float32)
    b = rng.standard_normal((9, 2)).astype(np.float32)
    r = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 6))
    for f, args, tol in [(lambda a, b: jnp.linalg.lstsq(a, b)[0], (a, b), 1e-4),
                         (jnp.linalg.pinv, (a,), 1e-4), (jnp.linalg.pinv, (r.astype(np.float32),), 1e-3),
                         (jnp.linalg.matrix_rank, (r.astype(np.float32),), 0),
                         (lambda a: jnp.linalg.norm(a, ord=2), (a,), 1e-5),
                         (lambda a: jnp.linalg.cond(a), (a,), 1e-4)]:
        got, want = run(f, *args)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_equivalence_check_rejects_a_wrong_decomposition():
    a = sym((5, 5))
    got, want = run(lambda x: lax.linalg.eigh(x), a)
    bad_v = got[0].copy()
    bad_v[:, [0, 1]] = bad_v[:, [1, 0]]  # vectors no longer match their values
    assert not same_decomposition([bad_v, got[1]], want, "eigh")
    assert not same_decomposition([got[0], got[1] + 1e-2], want, "eigh")
    s, u, vt = run(svd, a)[0]
    assert not same_decomposition([s, u, -vt], [s, u, vt], "svd")


@pytest.mark.parametrize("k, unit", [(4, 3), (8, 2), (16, 1), (32, 2), (64, 1), (256, 1)])
def test_singer_ordering_pairs_everyone_once_a_sweep(k, unit):
    # eigh's stack (k vectors of `unit` rows each) with k a power of two moves by the Singer
    # ordering: a step whose rotations are the identity (sums |w_p|^2 = |w_q|^2 = 1, w_p^T w_q =
    # 0), run on the device, must move the vectors as the ordering does, and the sums it returns
    # must be those of the moved pairs (its second half's reversed); over k - 1 moves every pair
    # must meet once, then the order is back where it started
    from tt_xla.compiler import eig
    from tt_xla.compiler.linalg import _module, _t
    order = eig._ordering(k)
    assert isinstance(order, eig._Singer)
    n, flat, ss = 5, (k * unit, 5), order.sums_shape(unit)
    f = eig._Em()
    x = order.to_carry(f, "%arg0", unit, n, "f32")
    ident = [f.const(v, "f32", ss) for v in ("1", "1", "0")]
    out = order.step(f, [x], ident, f.const("0", "f32", ss), unit, n, "f32")
    results = [order.from_carry(f, out[0], unit, n, "f32")] + out[1:4] + order.sums(f, [out[0]], unit, n, "f32")
    text = _module([_t(flat, "f32")], [_t(flat, "f32")] + [_t(ss, "f32")] * 6, f.lines, results)
    xv = rng.standard_normal((k, unit, n)).astype(np.float32)
    got = [np.asarray(v) for v in tt_xla.compile(text)(xv.reshape(flat))]
    h = k // 2

    def move(places: list[int]) -> list[int]:
        new = [0] * k
        for i in range(h):
            new[i], new[h + (i ^ order.flip)] = places[2 * i], places[2 * i + 1]
        return new

    np.testing.assert_array_equal(got[0].reshape(k, unit, n), xv[move(list(range(k)))])
    for g, w in zip(got[1:4], got[4:]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    p, q = xv[move(list(range(k)))][0::2], xv[move(list(range(k)))][1::2]  # the moved pairs, in pair order
    np.testing.assert_allclose(got[3].reshape(h, unit), (p * q).sum(-1), rtol=1e-5, atol=1e-5)
    places, met = list(range(k)), set()
    for _ in range(k - 1):
        met |= {frozenset(places[2 * i: 2 * i + 2]) for i in range(h)}
        places = move(places)
    assert len(met) == k * (k - 1) // 2 and places == list(range(k))
