"""complex64 and complex128 (compiler/complex_split.py: every complex value is a pair of real
tensors after legalize), against CPU JAX on random inputs and on a grid of edge values (NaN, +-inf,
+-0, huge and tiny parts, the branch cuts on the negative real axis), and against XLA:CPU running
the same StableHLO text for the complex ops today's jax decomposes before export."""
from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

import tt_xla
from tt_xla.errors import UnsupportedError
from tt_xla.hlo_parser import parse_module, print_module

from test_op_table import program, run, xla_run

PARTS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 0.5, -2.5, 3e38, 1e-30]
C64, C128 = np.dtype(np.complex64), np.dtype(np.complex128)


def edge_grid(dtype=C64) -> np.ndarray:
    """Every (re, im) pair of the edge parts."""
    re, im = np.meshgrid(PARTS, PARTS, indexing="ij")
    z = np.zeros(re.size, dtype)  # set part by part: re + 1j * im would turn inf * 0 into NaN
    z.real, z.imag = re.reshape(-1), im.reshape(-1)
    return z


def randc(shape, dtype=C64, seed=0, scale=2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.zeros(shape, dtype)
    z.real = rng.standard_normal(shape) * scale
    z.imag = rng.standard_normal(shape) * scale
    return z


def close(got, want, rtol=1e-5, atol=1e-6, msg=""):
    """Real and imaginary parts compared apart: NaN where and only where CPU JAX has NaN."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    if want.dtype.kind != "c":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=msg)
        return
    for part in ("real", "imag"):
        g, w = getattr(got, part).astype(np.float64), getattr(want, part).astype(np.float64)
        with np.errstate(invalid="ignore"):  # inf - inf where both are inf
            bad = ~((np.isnan(g) & np.isnan(w)) | (g == w) | (np.abs(g - w) <= atol + rtol * np.abs(w)))
        assert not bad.any(), (f"{msg} {part} part differs at inputs {np.flatnonzero(bad)[:8]}: "
                               f"got {g[bad][:8]}, want {w[bad][:8]}")


def both(f, *args, **tol):
    want = jax.jit(f)(*args)
    got = tt_xla.jit(f)(*args)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        close(g, w, **tol)


# ----------------------------------------------------------------------------- elementwise
UNARY = {
    "neg": lambda z: -z, "conj": jnp.conj, "real": jnp.real, "imag": jnp.imag, "abs": jnp.abs,
    "sign": jnp.sign, "exp": jnp.exp, "log": jnp.log, "sqrt": jnp.sqrt, "rsqrt": lax.rsqrt,
    "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "tanh": jnp.tanh, "expm1": jnp.expm1,
    "log1p": jnp.log1p, "square": jnp.square, "reciprocal": jnp.reciprocal,
    "angle": jnp.angle, "isfinite": jnp.isfinite,
}
BINARY = {
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide, "pow": jnp.power,
    "eq": jnp.equal, "ne": jnp.not_equal, "complex": lambda a, b: lax.complex(a.real, b.imag),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_random(name):
    both(UNARY[name], randc((7, 33)), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_edges(name):
    both(UNARY[name], edge_grid(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_random(name):
    both(BINARY[name], randc((5, 40)), randc((5, 40), seed=1), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_edges(name):
    g = edge_grid()
    a, b = (m.reshape(-1) for m in np.meshgrid(g, g, indexing="ij"))
    both(BINARY[name], a, b, rtol=2e-5, atol=1e-6)


def test_branch_cuts_follow_the_sign_of_zero():
    """The negative real axis with +0 and -0 imaginary parts: log, sqrt and pow jump there."""
    z = np.array([-1 + 0j, -4 + 0j, -0.0 + 0j], C64)
    z = np.concatenate([z, np.conj(z)])
    for f in (jnp.log, jnp.sqrt, lambda z: z ** 0.5, lambda z: z ** (1 / 3), jnp.angle, lax.rsqrt):
        both(f, z)


def test_real_mixed_with_complex():
    x = np.linspace(-3, 3, 11, dtype=np.float32)
    both(lambda x, z: (x * z, z / x, x / z, x + z, x.astype(jnp.complex64), z.astype(jnp.float32)),
         x, randc(11))


# ----------------------------------------------------------------------------- complex128
def test_complex128_with_x64():
    with jax.enable_x64(True):
        a, b = randc((6, 9), C128), randc((6, 9), C128, seed=3)
        both(lambda a, b: (a * b, a / b, jnp.abs(a), jnp.sqrt(a), jnp.exp(a), a @ b.T,
                           a.astype(jnp.complex64)), a, b, rtol=1e-12, atol=1e-12)
        # a result that f32 components cannot hold
        out = np.asarray(tt_xla.jit(lambda a: a + 1e-12)(np.array([1 + 1j], C128)))
        assert out.dtype == C128 and out[0].real != 1.0


# ----------------------------------------------------------------------------- views, movement
def test_views_select_pad_concat():
    a, b = randc((4, 6)), randc((4, 6), seed=2)
    both(lambda a, b: (a.T, a.reshape(3, 8), a[1:3, ::2], jnp.flip(a, 1), jnp.broadcast_to(a[0], (5, 6)),
                       jnp.where(a.real > 0, a, b), jnp.pad(a, ((1, 2), (0, 3)), constant_values=1 - 2j),
                       jnp.concatenate([a, b, a], axis=1), a[:, 2], jnp.stack([a, b])), a, b)


def test_dynamic_slice_gather():
    a = randc((8, 5))
    i = np.array([3, 0, 7, 7], np.int32)
    both(lambda a, i, k: (a[i], lax.dynamic_slice(a, (k, 1), (3, 2)),
                          lax.dynamic_update_slice(a, a[:2, :2] * 2, (k, k))), a, i, np.int32(2))


def test_iota():
    text = """
    func.func @main() -> tensor<2x3xcomplex<f32>> {
      %0 = stablehlo.iota dim = 1 : tensor<2x3xcomplex<f32>>
      return %0 : tensor<2x3xcomplex<f32>>
    }"""
    close(tt_xla.compile(text)()[0], np.broadcast_to(np.arange(3, dtype=C64), (2, 3)).copy())


def test_shapes_scalar_empty_size1():
    for shape in [(), (0,), (1,), (1, 1), (33, 65), (2, 0, 3)]:
        a, b = randc(shape), randc(shape, seed=5)
        both(lambda a, b: (a * b, a / b, jnp.abs(a), jnp.sum(a)), a, b)


# ----------------------------------------------------------------------------- reductions, products
def test_reductions():
    a = randc((6, 35))
    both(lambda a: (jnp.sum(a), jnp.sum(a, 0), jnp.prod(a[:, :5], 1), jnp.mean(a, 1), jnp.cumsum(a, 1),
                    jnp.cumprod(a[:, :6], 1)), a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [((3,), (3,)), ((5, 7), (7, 3)), ((2, 33, 40), (2, 40, 17)), ((0, 4), (4, 3))])
def test_dot(shape):
    a, b = randc(shape[0]), randc(shape[1], seed=4)
    both(lambda a, b: jnp.matmul(a, b), a, b, rtol=1e-4, atol=1e-4)


def test_convolution():
    x, w = randc((2, 3, 9, 8)), randc((4, 3, 3, 2), seed=7)
    both(lambda x, w: lax.conv_general_dilated(x, w, (1, 2), "SAME"), x, w, rtol=1e-4, atol=1e-4)
    both(lambda a, b: jnp.convolve(a, b), randc(17), randc(5, seed=2), rtol=1e-4, atol=1e-4)


def test_dot_mixed_real_complex():
    a, w = randc((5, 7)), np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    both(lambda a, w: (a @ w.astype(jnp.complex64), jnp.einsum("ij,jk->ik", a, a.T.conj())), a, w,
         rtol=1e-4, atol=1e-4)


def test_sort_by_the_jax_comparator():
    """Lexicographic on (re, im), NaNs last, -0 == +0 (stable), as jnp.sort orders complex."""
    z = edge_grid()
    rng = np.random.default_rng(0)
    z = z[rng.permutation(z.size)]
    both(lambda z: (jnp.sort(z), jnp.argsort(z), lax.sort((z.real, z), num_keys=1)), z)
    both(lambda z: jnp.sort(z, axis=0), randc((9, 4)))


def test_scatter_and_control_flow():
    a, i = randc((6, 4)), np.array([0, 2, 2, 5], np.int32)
    both(lambda a, i: (a.at[i].add(a[:4] * 2), a.at[i].set(a[:4] * 2), a.at[i].add(1j)), a, i)
    both(lambda a: (lax.fori_loop(0, 3, lambda k, z: z * (1 + 0.5j) + a, a),
                    lax.cond(a[0, 0].real > 0, lambda z: z * 2, lambda z: -z, a),
                    lax.scan(lambda c, x: (c * x, c + x), a[0], a)), a, rtol=1e-4, atol=1e-5)
    # regions that mix the parts: one scatter of both parts stacked
    b = edge_grid()[:24].reshape(6, 4)
    both(lambda a, b, i: (a.at[i].multiply(b[:4]), a.at[i].max(b[:4]), a.at[i].min(b[2:]),
                          b.at[i].multiply(a[:4])), a, b, i)


# ----------------------------------------------------------------------------- gradients
def test_gradients():
    a, b = randc((3, 4)), randc((4, 2), seed=1)
    both(lambda a: jax.grad(lambda x: jnp.abs(jnp.sum(x * x)))(a), a, rtol=1e-4, atol=1e-5)
    both(lambda a, b: jax.grad(lambda x, y: jnp.sum(jnp.abs(jnp.tanh(x @ y)) ** 2), (0, 1))(a, b), a, b,
         rtol=1e-4, atol=1e-5)
    x = np.linspace(0.1, 2, 6, dtype=np.float32)
    both(lambda x: jax.grad(lambda t: jnp.real(jnp.sum(jnp.exp(1j * t) * jnp.sqrt(t + 1j))))(x), x,
         rtol=1e-4, atol=1e-5)
    both(lambda a: jax.vjp(lambda z: jnp.log(z) / z, a)[1](jnp.ones_like(a)), a, rtol=1e-4, atol=1e-5)
    i = np.array([1, 0, 1], np.int32)  # an embedding's gradient: a complex scatter-add
    both(lambda a: jax.grad(lambda t: jnp.abs(jnp.sum(t[i] ** 2)))(a), a, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- device layout
def test_arguments_and_results_are_interleaved_and_zero_copy():
    """A complex argument is read in place through strided views (no copy kernel), the result is
    written by one kernel per part (a concat's pieces, storing with a stride of 2) with no
    intermediate in DRAM, and arrays come back as numpy complex."""
    a = randc((64, 64))
    f = tt_xla.jit(lambda a: a * (2 - 1j))
    out = f(a)
    assert out.dtype == C64 and np.asarray(out).dtype == C64
    np.testing.assert_allclose(np.asarray(out), a * np.complex64(2 - 1j), rtol=1e-6)
    ks = f.kernels(a)
    assert len(ks) == 2, [k.name for k in ks]
    # each piece reads both parts of its input (2 x 32 KiB) and writes its half (16 KiB)
    assert sum(k.dma_bytes for k in ks) <= 3 * a.nbytes, [k.dma_bytes for k in ks]
    # a device result is passed back in without a host copy
    np.testing.assert_allclose(np.asarray(f(out)), a * np.complex64(2 - 1j) ** 2, rtol=1e-5)


# ----------------------------------------------------------------------------- StableHLO text
TEXT_UNARY = ["exponential", "log", "sqrt", "rsqrt", "sine", "cosine", "tan", "tanh", "exponential_minus_one",
              "log_plus_one", "negate", "sign"]


@pytest.mark.parametrize("name", TEXT_UNARY)
@pytest.mark.parametrize("t", ["f32", "f64"])
def test_text_op_vs_xla(name, t):
    """Ops jax decomposes before export, as another producer writes them: XLA:CPU on the same text."""
    ct = f"complex<{t}>"
    z = np.concatenate([edge_grid(C64 if t == "f32" else C128), randc(40, C64 if t == "f32" else C128)])
    text = program(f"stablehlo.{name}", [ct], ct, z.size)
    close(run(text, z), xla_run(text, z), rtol=2e-5 if t == "f32" else 1e-12, atol=1e-6 if t == "f32" else 1e-13,
          msg=name)


@pytest.mark.parametrize("t", ["f32", "f64"])
def test_text_atan2_vs_xla(t):
    """complex atan2 (jax refuses it; the spec allows it): XLA:CPU's -i log((x + i y) / sqrt(x^2 +
    y^2)) on the same text, over edge pairs against random values and random pairs."""
    ct, dt = f"complex<{t}>", C64 if t == "f32" else C128
    g = edge_grid(dt)
    y = np.concatenate([g, randc(g.size, dt, seed=1), randc(40, dt, seed=2)])
    x = np.concatenate([randc(g.size, dt, seed=3), g, randc(40, dt, seed=4)])
    text = program("stablehlo.atan2", [ct, ct], ct, y.size)
    got, want = np.array(run(text, y, x)), np.array(xla_run(text, y, x))
    # on log's branch cut (real part +-pi: (x + i y) / |.| on the negative real axis) the sign of
    # a zero or 1e-30-sized imaginary part, a rounding detail of the division, picks the sign
    cut = np.isclose(np.abs(want.real), np.pi, rtol=1e-6) & np.isclose(np.abs(got.real), np.pi, rtol=1e-6)
    assert cut.sum() <= 12  # of 282
    got.real[cut], want.real[cut] = np.pi, np.pi
    close(got, want, rtol=2e-5 if t == "f32" else 1e-12, atol=1e-6 if t == "f32" else 1e-13)


def test_dot_inf_and_nan_parts_as_xla():
    """Which parts of a product with inf/NaN/overflowing terms are inf and which NaN, as XLA:CPU:
    a loop forming each complex term for vector . vector, Eigen's four real products scaled by
    1 + 0i for matrix products."""
    rng = np.random.default_rng(0)
    parts = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0, 3e38, -2.5])

    def edgy(shape, seed):
        z = randc(shape, seed=seed, scale=1.0)
        for p in ("real", "imag"):
            v = getattr(z, p)
            m = rng.random(shape) < 0.3
            v[m] = rng.choice(parts, m.sum())
        return z
    for sa, sb in [((4, 5), (5, 3)), ((4, 5), (5,)), ((5,), (5,)), ((6, 33), (33, 7)),
                   ((2, 4, 5), (2, 5, 3))]:
        for seed in range(3):
            both(lambda a, b: jnp.matmul(a, b), edgy(sa, seed), edgy(sb, seed + 10), rtol=1e-4, atol=1e-4,
                 msg=f"{sa} @ {sb} seed {seed}")
    both(lambda a, b: a.real @ b, edgy((4, 3), 5), edgy((3, 6), 6), rtol=1e-4, atol=1e-4)


def test_text_abs_real_imag_complex_conj_compare():
    n = 4
    z = np.array([1 - 2j, np.nan + 1j, -0.0 - 0j, 3e38 + 3e38j], C64)
    for name, out in [("stablehlo.abs", "f32"), ("stablehlo.real", "f32"), ("stablehlo.imag", "f32"),
                      ("chlo.conj", "complex<f32>")]:
        text = program(name, ["complex<f32>"], out, n)
        close(run(text, z), xla_run(text, z) if name != "chlo.conj" else np.conj(z), msg=name)
    text = program("chlo.conj", ["f32"], "f32", n)
    close(run(text, z.real.copy()), z.real)
    text = program("stablehlo.complex", ["f32", "f32"], "complex<f32>", n)
    close(run(text, z.real.copy(), z.imag.copy()), z)
    text = program("stablehlo.compare", ["complex<f32>", "complex<f32>"], "i1", n,
                   "comparison_direction = #stablehlo<comparison_direction NE>")
    np.testing.assert_array_equal(run(text, z, z), xla_run(text, z, z))


def test_constants_decimal_hex_splat():
    text = """
    func.func @main(%a: tensor<3xcomplex<f32>>) -> (tensor<3xcomplex<f32>>, tensor<3xcomplex<f64>>, tensor<complex<f32>>) {
      %c = stablehlo.constant dense<[(1.0, 2.0), (0x7FC00000, -0.0), (-3.5, 0x7F800000)]> : tensor<3xcomplex<f32>>
      %h = stablehlo.constant dense<"0x0000803F000000400000404000008040000000000000803F"> : tensor<3xcomplex<f32>>
      %s = stablehlo.constant dense<(1.5, -2.0)> : tensor<3xcomplex<f64>>
      %0 = stablehlo.add %a, %c : tensor<3xcomplex<f32>>
      %1 = stablehlo.multiply %0, %h : tensor<3xcomplex<f32>>
      %e = stablehlo.constant dense<(0.0, 1.0)> : tensor<complex<f32>>
      return %1, %s, %e : tensor<3xcomplex<f32>>, tensor<3xcomplex<f64>>, tensor<complex<f32>>
    }"""
    a = randc(3)
    got = tt_xla.compile(text)(a)
    # printed back (as hex) and parsed again: the same bits
    again = tt_xla.compile(print_module(parse_module(text)))(a)
    for g, h in zip(got, again):
        np.testing.assert_array_equal(np.atleast_1d(g).view(np.uint8), np.atleast_1d(h).view(np.uint8))
    c = np.array([1 + 2j, complex(np.nan, -0.0), complex(-3.5, np.inf)], C64)
    h = np.array([1 + 2j, 3 + 4j, 0 + 1j], C64)
    with np.errstate(invalid="ignore"):
        close(got[0], (a + c) * h)
    close(got[1], np.full(3, 1.5 - 2j, C128))
    close(got[2], np.complex64(1j))


def test_bitcast_convert():
    z = np.concatenate([edge_grid(), randc(5)])
    for out, view in [("ui64", np.uint64), ("complex<f32>", C64), ("f64", np.float64)]:
        text = program("stablehlo.bitcast_convert", ["complex<f32>"], out, z.size)
        np.testing.assert_array_equal(run(text, z).view(np.uint64), z.view(view).view(np.uint64))
    bits = z.view(np.int64)
    text = program("stablehlo.bitcast_convert", ["i64"], "complex<f32>", z.size)
    np.testing.assert_array_equal(run(text, bits).view(np.int64), bits)
    both(lambda z: lax.bitcast_convert_type(z, jnp.complex64), z)


def test_unsupported_is_a_clear_error():
    text = program("stablehlo.compare", ["complex<f32>", "complex<f32>"], "i1", 2,
                   "comparison_direction = #stablehlo<comparison_direction LT>")
    with pytest.raises(UnsupportedError, match="LT"):
        tt_xla.compile(text)


def test_complex_result_of_reshaped_transposed_views():
    """A complex result whose parts reshape transposed views (no strides can view them in the
    result's shape: fft's digits) is written by its two pieces straight from the stored input,
    each walking the view's own shape, not by a copy of each view first."""
    def f(a, b):
        t = lambda v: v.reshape(4, 8, 33).transpose(1, 0, 2).reshape(32, 33)  # noqa: E731
        return lax.complex(t(a), t(b))
    a = np.random.default_rng(0).standard_normal((4, 8, 33)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((4, 8, 33)).astype(np.float32)
    want = np.asarray(jax.jit(f)(a, b))
    fn = tt_xla.jit(f)
    np.testing.assert_array_equal(np.asarray(fn(a, b)), want)
    assert len(fn.kernels(a, b)) == 2, [k.name for k in fn.kernels(a, b)]


def test_complex_result_of_one_stored_pair_is_one_dense_write():
    """A complex result whose parts are two views of one stored node at neighbouring offsets
    (fft's stacked (re, im) result read through its digits) is one kernel: both parts copied in
    one loop and stored interleaved by one dense write, not two kernels each writing every other
    element. Edge values (NaN, inf, -0, denormals) come through bit for bit; odd sizes leave
    partial rows and blocks."""
    def f(a):
        s = jnp.sort(a, axis=-1)  # stored: the copies read it through views
        t = s.transpose(0, 2, 1, 3)
        return lax.complex(t[0], t[1])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 5, 7, 33)).astype(np.float32)
    flat = a.reshape(-1)
    flat[::17] = np.nan
    flat[1::19] = np.inf
    flat[2::23] = -np.inf
    flat[3::29] = -0.0
    flat[4::31] = 1e-40  # a denormal
    want = np.asarray(jax.jit(f)(a))
    fn = tt_xla.jit(f)
    got = np.asarray(fn(a))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    ks = fn.kernels(a)
    writers = [k for k in ks if k.kind != "sort"]
    assert len(ks) == 2 and len(writers) == 1, [k.name for k in ks]
    assert "x2 * nc stride 1" in writers[0].ir, writers[0].ir  # one dense run of both parts


def test_complex_input_parts_are_one_dense_read():
    """A kernel reading both parts of a complex input (a * (2 - 1j)'s pieces; fft's stacking of
    the parts, one kernel writing both) brings the pairs in by one dense read and takes every
    other element for each part, not two reads of every other element. Edge values and odd
    sizes (a partial last row) come through as CPU JAX gives them."""
    a = np.resize(edge_grid(), (7, 40))
    both(lambda a: a * (2 - 1j), a)
    for f in (tt_xla.jit(lambda a: a * (2 - 1j)), tt_xla.jit(jnp.fft.fft)):
        ks = f.kernels(a)
        reads = [k for k in ks if "x2 * nc stride 1" in k.ir and "<- p0[" in k.ir]
        assert reads, [k.ir for k in ks]
        assert not any("dma_read" in ln and "stride 2" in ln for k in ks for ln in k.ir.splitlines()), \
            [k.ir for k in ks]
    stack = [k for k in tt_xla.jit(jnp.fft.fft).kernels(a) if k.kind != "matmul"]
    assert len(stack) == 2, [k.name for k in stack]  # the parts stacked by one kernel, the result by one
    both(jnp.fft.fft, randc((7, 40)), rtol=1e-5, atol=1e-4)
