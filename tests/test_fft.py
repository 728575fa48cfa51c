"""stablehlo.fft (compiler/fft.py): jnp.fft.* against CPU JAX."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tt_xla
from tt_xla.errors import VerificationError

rng = np.random.default_rng(0)


def cplx(shape, dtype=np.complex64):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def real(shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def check(f, x, tol=None):
    """tt-xla's f(x) against CPU JAX's, to `tol` times the result's largest magnitude (an FFT's
    rounding error scales with the norm of its input, not with each output's size)."""
    wide = x.dtype in (np.float64, np.complex128)
    tol = tol or (1e-11 if wide else 2e-6)
    with jax.enable_x64(wide):
        want = np.asarray(jax.jit(f)(x))
        got = np.asarray(tt_xla.jit(f)(x))
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    scale = max(float(np.max(np.abs(want))), 1.0) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)
    return got, want


LENGTHS = [1, 2, 7, 12, 32, 97, 1000, 4096]


@pytest.mark.parametrize("n", LENGTHS)
def test_fft_ifft(n):
    x = cplx((3, n))
    check(jnp.fft.fft, x)
    check(jnp.fft.ifft, x)


@pytest.mark.parametrize("n", LENGTHS)
def test_rfft_irfft(n):
    check(jnp.fft.rfft, real((2, n)))
    check(lambda y: jnp.fft.irfft(y, n=n), cplx((2, n // 2 + 1)))


def test_irfft_odd_length_and_hermitian_parts():
    """IRFFT reads only the non-negative frequencies; the imaginary parts of the zero (and, for
    an even length, the Nyquist) term do not contribute, as in XLA."""
    y = cplx((4, 9))
    check(lambda v: jnp.fft.irfft(v, n=17), y)
    check(lambda v: jnp.fft.irfft(v, n=16), y)
    check(lambda v: jnp.fft.irfft(v, n=130), cplx((66,)))  # past the single-product length


@pytest.mark.parametrize("f,shape,make", [
    (jnp.fft.fft2, (2, 12, 10), cplx),
    (jnp.fft.ifft2, (70, 3), cplx),
    (jnp.fft.rfft2, (3, 6, 40), real),
    (jnp.fft.irfft2, (5, 6, 9), cplx),
    (jnp.fft.fftn, (4, 5, 6), cplx),
    (jnp.fft.ifftn, (2, 4, 8, 3), cplx),
    (jnp.fft.rfftn, (4, 6, 8), real),
    (jnp.fft.irfftn, (4, 6, 5), cplx),
    (lambda v: jnp.fft.fftn(v, axes=(0, 2)), (6, 3, 10), cplx),  # jax transposes around a 1-D op
    (jnp.fft.fftn, (2, 3, 4, 5), cplx),  # four axes: jax splits them into two ops
], ids=["fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn", "fftn_axes", "fftn4"])
def test_multi_axis(f, shape, make):
    check(f, make(shape))


@pytest.mark.parametrize("f,shape,make", [
    (jnp.fft.rfft2, (2, 96, 80), real),           # both axes two products (8 x 12, 8 x 10), 41 of 80 kept
    (jnp.fft.rfft2, (64, 1024), real),            # rfft2_1024's split (32 x 32) on both axes' paths
    (jnp.fft.rfft2, (70, 97), real),              # a prime last axis (Bluestein), then the leading one
    (jnp.fft.fftn, (70, 3, 66), cplx),            # three leading transforms, digits merged between them
    (jnp.fft.ifft2, (2, 100, 36), cplx),
    (lambda v: jnp.fft.irfftn(v, s=(96, 20)), (96, 11), cplx),
], ids=["rfft2_both_split", "rfft2_1024_rows", "rfft2_prime_last", "fftn_three", "ifft2_batched", "irfft2_split"])
def test_multi_axis_in_place(f, shape, make):
    """Multi-axis transforms run every axis of length <= 64 or n1 x n2 (both <= 64) in place
    (fft._leading_dft): the products contract the leading (part, index) rows, the twiddles
    folded into the second one's matrices."""
    check(f, make(shape))


@pytest.mark.parametrize("f,shape", [
    (jnp.fft.rfft2, (5, 66)),                     # 6 x 11: an odd n2 (k2 <= 5 keeps k1 <= 3 of the last)
    (jnp.fft.rfft2, (3, 106)),                    # 2 x 53: one block, no reversed half
    (jnp.fft.rfftn, (4, 6, 96)),                  # 8 x 12 after two other axes
    (lambda v: jnp.fft.rfft2(v, norm="ortho"), (2, 40, 128)),
], ids=["odd_n2", "n1_2", "rfftn_three", "batched_ortho"])
def test_rfft_real_symmetry(f, shape):
    """The real axis split n1 x n2 (fft._leading_rdft): y_k1 only for k1 <= n1 / 2, both k1 = b
    and n1 - b made from block b, k1 put in order by one concatenate."""
    check(f, real(shape))


def test_rfft_real_symmetry_half_the_first_product():
    """rfft2's first product makes n1 real rows (y_0, y_(n1/2) and Re/Im y_b, 0 < b < n1/2), one
    row of matrix tiles where the complex y_k1 for every k1 took two."""
    x = real((64, 1024))
    check(jnp.fft.rfft2, x)
    dots = [k for k in tt_xla.jit(jnp.fft.rfft2).kernels(x) if k.kind == "matmul"]
    assert dots[0].matrix_tiles == 1 * 1 * (32 * 64 // 32)  # 32 rows, K 32, 32 x 64 columns


def test_rfft_real_symmetry_f64_and_non_finite():
    check(jnp.fft.rfft2, real((64, 66), np.float64))
    x = real((3, 32, 1024))
    x[1, 7, 100] = np.nan
    x[2, 3, 5] = np.inf
    with jax.enable_x64(False):
        want = np.asarray(jax.jit(jnp.fft.rfft2)(x))
        got = np.asarray(tt_xla.jit(jnp.fft.rfft2)(x))
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=2e-6 * np.abs(want[0]).max())
    bad = lambda v: ~np.isfinite(v.real) | ~np.isfinite(v.imag)  # noqa: E731
    for i in (1, 2):  # a non-finite input reaches its own transform's outputs, as in XLA
        assert bad(got[i])[bad(want[i])].all() and bad(got[i]).any()


def test_multi_axis_in_place_f64():
    check(jnp.fft.fft2, cplx((96, 80), np.complex128))
    check(jnp.fft.rfft2, real((100, 70), np.float64))


@pytest.mark.parametrize("norm", ["ortho", "forward"])
def test_norm_variants(norm):
    check(lambda v: jnp.fft.fft(v, norm=norm), cplx((3, 24)))
    check(lambda v: jnp.fft.irfft(v, norm=norm), cplx((3, 13)))
    check(lambda v: jnp.fft.rfft2(v, norm=norm), real((8, 6)))


@pytest.mark.parametrize("n", [12, 97, 1000])
def test_f64(n):
    check(jnp.fft.fft, cplx((2, n), np.complex128))
    check(jnp.fft.rfft, real((2, n), np.float64))
    check(lambda v: jnp.fft.irfft(v, n=n), cplx((2, n // 2 + 1), np.complex128))
    check(jnp.fft.fft2, cplx((n % 7 + 2, 6), np.complex128))


def test_large_power_of_two():
    """Several four-step levels (2^16 = 16 * 4096 = 16 * 16 * 256 ...)."""
    check(jnp.fft.fft, cplx((1 << 16,)), tol=4e-6)


@pytest.mark.parametrize("f,shape,dtype", [
    (jnp.fft.fft, (3, 4096), np.complex64),       # 64 x 64, each two products of 8
    (jnp.fft.ifft, (2, 5000), np.complex64),      # 50 x 100: one product, then 10 x 10
    (jnp.fft.fft2, (3, 4096), np.complex64),      # a leading axis of 3, then the long one
    (jnp.fft.ifft, (1 << 14,), np.complex128),
], ids=["4096", "5000_inverse", "fft2_long_axis", "c128"])
def test_outer_four_step(f, shape, dtype):
    """Lengths past two products (fft._outer_dft): the DFT over jA in place, the twiddles in the
    pass that moves jB to lead, the DFT over jB in place."""
    check(f, cplx(shape, dtype), tol=4e-6 if dtype == np.complex64 else None)


def test_outer_four_step_after_a_cut_axis():
    """An RFFT's kept outputs on the real axis are carried through the long axis's transform
    (they were dropped once: 4096 x 51 came out 4096 x 60)."""
    check(jnp.fft.rfft2, real((4096, 100)), tol=4e-6)
    check(jnp.fft.irfft2, cplx((4096, 33)), tol=4e-6)


def test_outer_four_step_non_finite_stays_in_its_row():
    x = cplx((3, 4096))
    x[1, 1234] = np.nan
    with jax.enable_x64(False):
        want = np.asarray(jax.jit(jnp.fft.fft)(x))
        got = np.asarray(tt_xla.jit(jnp.fft.fft)(x))
    np.testing.assert_allclose(got[[0, 2]], want[[0, 2]], rtol=0, atol=4e-6 * np.abs(want[[0, 2]]).max())
    bad = lambda v: ~np.isfinite(v.real) | ~np.isfinite(v.imag)  # noqa: E731
    assert bad(want[1]).all() and bad(got[1]).all()  # every output of its own transform


def test_empty_and_size_one():
    check(jnp.fft.fft, cplx((0, 8)))
    check(jnp.fft.fft, cplx((3, 0)))
    check(jnp.fft.rfft, real((3, 1)))
    check(lambda v: jnp.fft.irfft(v, n=1), cplx((3, 1)))
    check(jnp.fft.fft2, cplx((1, 1)))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_stay_in_their_rows(value):
    """A NaN or infinity reaches every output of its own transform, as in XLA (which of an
    element's parts is NaN differs: XLA's butterflies multiply by exact 0 and +-1 where a DFT
    matrix's products give NaN), and never another row's."""
    x = cplx((3, 12))
    x[1, 5] = value
    with jax.enable_x64(False):
        want = np.asarray(jax.jit(jnp.fft.fft)(x))
        got = np.asarray(tt_xla.jit(jnp.fft.fft)(x))
    clean = [0, 2]
    np.testing.assert_allclose(got[clean], want[clean], rtol=0, atol=2e-6 * np.abs(want[clean]).max())
    bad = lambda v: ~np.isfinite(v.real) | ~np.isfinite(v.imag)  # noqa: E731
    assert bad(got[1])[bad(want[1])].all()


RFFT_TEXT = """func.func @main(%x: tensor<2x{n}xf32>) -> tensor<2x{m}xcomplex<f32>> {{
  %0 = stablehlo.fft %x, type = RFFT, length = [{n}] : (tensor<2x{n}xf32>) -> tensor<2x{m}xcomplex<f32>>
  return %0 : tensor<2x{m}xcomplex<f32>>
}}"""


def test_from_text_without_jax():
    x = real((2, 10))
    (got,) = tt_xla.compile(RFFT_TEXT.format(n=10, m=6))(x)
    np.testing.assert_allclose(np.asarray(got), np.fft.rfft(x), rtol=0, atol=1e-5)


def test_malformed_fft_is_refused():
    with pytest.raises(VerificationError, match=r"stablehlo.fft.*RFFT.*\[10\].*do not fit"):
        tt_xla.compile(RFFT_TEXT.format(n=10, m=5))  # RFFT of 10 gives 6 outputs
    text = RFFT_TEXT.format(n=10, m=6).replace("length = [10]", "length = [12]")
    with pytest.raises(VerificationError, match="stablehlo.fft"):
        tt_xla.compile(text)


@pytest.mark.parametrize("f,shape,make", [
    (jnp.fft.rfft2, (1024, 24), real),            # rfft2_1024's last axis: 8 x 8 x 16, its digits read by the result
    (jnp.fft.fft2, (2, 1024, 6), cplx),
    (jnp.fft.ifft2, (1024, 5), cplx),
    (jnp.fft.fft2, (6, 1024), cplx),              # 1024 first, merged next: two levels
], ids=["rfft2", "fft2_batched", "ifft2", "fft2_first"])
def test_three_levels_in_place(f, shape, make):
    """A 1024 axis transformed last is three in-place levels (8 x 8 x 16: 32 multiply-adds a
    point where 32 x 32 took 64), the twiddles of every lower digit folded into each level's
    per-batch matrices; the complex result reads the digits through one transposed view."""
    check(f, make(shape))


@pytest.mark.parametrize("digits,f,shape,make", [
    ({64: (4, 2, 8)}, jnp.fft.fft2, (3, 64, 10), cplx),
    ({64: (2, 4, 2, 4)}, jnp.fft.ifft2, (64, 12), cplx),        # four levels
    ({75: (5, 3, 5)}, jnp.fft.rfft2, (6, 75), real),            # an odd real axis: 38 of 75 kept, then merged
    ({48: (4, 3, 4)}, jnp.fft.fftn, (48, 3, 48), cplx),         # digits merged between axes
], ids=["4x2x8", "four_levels", "rfft_kept", "fftn_merged"])
def test_levels_any_split(monkeypatch, digits, f, shape, make):
    """The level form is general in its digits (fft._leading_digits only picks 1024's, and
    only where the result is read as it lies): any split, kept outputs cut after the last level,
    digits merged by a transpose when the next axis needs them whole."""
    from tt_xla.compiler import fft
    default = fft._leading_digits
    monkeypatch.setattr(fft, "_leading_digits", lambda n, merged=False: digits.get(n) or default(n, merged))
    tt_xla.client().clear_cache()  # (compiled programs are cached by their StableHLO text)
    check(f, make(shape))
    tt_xla.client().clear_cache()


def test_rfft2_1024_kernels():
    """rfft2_1024's program: the input read in place by the first product (batched over its
    rows), the first axis's pieces stored where the second axis's products read them, three
    levels there, and the complex result written from the last product's layout by one kernel
    (both parts, interleaved): 9 kernels, 5 of them products, none a lone transpose."""
    x = real((1024, 1024))
    ks = tt_xla.jit(jnp.fft.rfft2).kernels(x)
    assert [k.kind for k in ks].count("matmul") == 5 and len(ks) == 9, [k.name for k in ks]
    assert not any(k.ops == ("transpose",) or k.ops == ("reshape", "transpose") for k in ks)
    check(jnp.fft.rfft2, x, tol=4e-6)
