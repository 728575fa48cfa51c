"""bfp8 (tt_xla/bfp8.py): Tenstorrent's bfloat8_b storage, bit-exact against a scalar transcription
of the format's rules, its byte layout, and its accuracy in a matmul against CPU JAX."""
import struct

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from tt_xla.bfp8 import TILE_BYTES, pack, packed_nbytes, round_bfp8, unpack


def _bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


def _value_byte(u: int, shared: int) -> int:
    """One value's byte, the rule as tt-metal states it (one value at a time, plain ints)."""
    if u & 0x7FFFFFFF == 0:
        return 0
    exp, sign = (u >> 23) & 0xFF, u >> 31
    m = (u & 0x7FFFFF) | (1 << 23)
    d = shared - exp
    while d > 31:
        m >>= 31
        d -= 31
    m >>= d
    rnd, m = m & 0x1FFFF, m >> 17
    if rnd > 0x10000 or (rnd == 0x10000 and m & 1):
        m += 1
    m = min(m, 127)
    return (0 if m == 0 else sign << 7) | m


def _byte_value(b: int, shared: int) -> float:
    sign, man = b >> 7, b & 0x7F
    if man == 0:
        return struct.unpack("<f", struct.pack("<I", sign << 31))[0]
    e = shared
    while not man & 0x40:
        man <<= 1
        e -= 1
    man = (man << 1) & 0x7F
    return struct.unpack("<f", struct.pack("<I", ((sign << 31) | ((e << 23) & 0xFFFFFFFF) | (man << 16)) & 0xFFFFFFFF))[0]


def _reference(x: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(the packed bytes, tile after tile, and the unpacked values) of a 2-D f32 array, by loops."""
    r, c = x.shape
    R, C = -(-r // 32) * 32, -(-c // 32) * 32
    full = np.zeros((R, C), np.float32)
    full[:r, :c] = x
    out, back = [], np.zeros((R, C), np.float32)
    for ti in range(0, R, 32):
        for tj in range(0, C, 32):
            exps, vals = [], []
            for fi, fj in ((0, 0), (0, 16), (16, 0), (16, 16)):
                for i in range(16):
                    row = [_bits(float(v)) for v in full[ti + fi + i, tj + fj:tj + fj + 16]]
                    shared = max((u >> 23) & 0xFF for u in row)
                    exps.append(shared)
                    for j, u in enumerate(row):
                        b = _value_byte(u, shared)
                        vals.append(b)
                        back[ti + fi + i, tj + fj + j] = _byte_value(b, shared)
            out += exps + vals
    return out, back[:r, :c]


def _edge_matrix(rng) -> np.ndarray:
    x = rng.standard_normal((40, 50)).astype(np.float32)
    x[0, :8] = [np.nan, 1.0, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-42]   # specials share a row
    x[1, :16] = 1e-40                                                     # a row of denormals
    x[2, :16] = np.ldexp(np.arange(16, dtype=np.float32), -20) - 3e-7     # a spread of exponents
    x[3, :16] = 1.5                                                       # ties to even, saturation:
    x[3, :4] = [1 + 2 ** -7, 1 + 3 * 2 ** -7, -(1 + 2 ** -7), 1.9999]    # a row whose largest is in [1, 2)
    x[3, 4:6] = [0.5 + 2 ** -8, 0.5 + 3 * 2 ** -8]                         # and ties after a shift
    x[4, :16] = 0.0
    x[5] = x[5] * 1e30
    x[6] = x[6] * 1e-30
    return x


def test_bit_exact_against_the_format_rules():
    x = _edge_matrix(np.random.default_rng(0))
    want_bytes, want_vals = _reference(x)
    got = pack(x)
    assert got.shape == (2, 2, TILE_BYTES) and got.nbytes == packed_nbytes(x.shape) == len(want_bytes)
    assert got.reshape(-1).tolist() == want_bytes
    back = unpack(got, x.shape)
    np.testing.assert_array_equal(back.view(np.uint32), want_vals.view(np.uint32))
    np.testing.assert_array_equal(round_bfp8(x).view(np.uint32), want_vals.view(np.uint32))


def test_layout_exponents_then_faces():
    """Tile bytes 0-63: the face rows' exponents (face 0 rows 0-15, face 1, face 2, face 3);
    then the faces' values row by row."""
    x = np.zeros((32, 32), np.float32)
    x[0, 16] = 2.0       # face 1 (top right), row 0, column 0
    x[17, 3] = -0.75     # face 2 (bottom left), row 1, column 3
    p = pack(x)[0, 0]
    assert p[16] == 128 and p[32 + 1] == 126 and p[[i for i in range(64) if i not in (16, 33)]].max() == 0
    assert p[64 + 256] == 64                        # 2.0: the row's largest, magnitude 1.000000b
    assert p[64 + 512 + 16 + 3] == 0x80 | 96        # -0.75 = -1.1b x 2^-1: sign, 1100000b
    assert np.count_nonzero(p[64:]) == 2


def test_bfp8_values_are_bf16_and_rounding_is_idempotent():
    x = np.random.default_rng(1).standard_normal((100, 70)).astype(np.float32) * 3
    y = round_bfp8(x)
    np.testing.assert_array_equal(y.astype(ml_dtypes.bfloat16).astype(np.float32), y)
    np.testing.assert_array_equal(round_bfp8(y), y)
    bf = x.astype(ml_dtypes.bfloat16)  # a bf16 weight packs as its f32 value would
    np.testing.assert_array_equal(pack(bf), pack(bf.astype(np.float32)))


@pytest.mark.parametrize("k", [64, 2048])
def test_matmul_accuracy_against_cpu_jax(k):
    """x @ W with W stored as bfp8, against CPU JAX's f32 product: each weight keeps 7 bits
    below its row's largest exponent, so the relative error of the product is about 2^-8 (a
    random walk of per-weight errors up to 2^-7 of the row's largest). Measured and bounded."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, k)).astype(np.float32)
    w = (rng.standard_normal((k, 96)) / np.sqrt(k)).astype(np.float32)
    want = np.asarray(jax.jit(lambda a, b: jnp.matmul(a, b, precision="highest"))(x, w))
    got = x.astype(np.float64) @ round_bfp8(w).astype(np.float64)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert 1e-3 < rel < 1e-2, rel                   # lossy (not a copy), but within bfp8's budget
    bf16 = x.astype(np.float64) @ w.astype(ml_dtypes.bfloat16).astype(np.float64)
    # one bit fewer than bf16 and relative to the row's largest value: a few times bf16's error
    assert rel < 8 * np.linalg.norm(bf16 - want) / np.linalg.norm(want)


def test_refuses_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        pack(np.zeros((2, 3, 4), np.float32))


# ------------------------------------------------------------------ bfp8 weights on the device
import tt_xla  # noqa: E402
from tt_xla.errors import UnsupportedError  # noqa: E402


def _mlp(x, w1, w2, b):
    h = jax.nn.gelu(jnp.matmul(x, w1, preferred_element_type=jnp.float32) + b)
    return jnp.matmul(h.astype(x.dtype), w2, preferred_element_type=jnp.float32)


def _formats(exe) -> tuple[str, ...]:
    """Per input, how the compiled program stores it ("" as given, "bfp8")."""
    return getattr(exe, "_loaded", exe).raw.compiled.input_formats


def _counters(fn, args, **options):
    dev = tt_xla.client().devices()[0].runtime_device
    f = tt_xla.jit(fn, compiler_options=options)
    f(*args)
    dev.reset_counters()
    out = f(*args)
    return np.asarray(out), dev.counters(), f


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16], ids=["f32", "bf16"])
def test_bfp8_weights_compute_with_bfp8_values_and_move_packed_bytes(dtype):
    """Weights stored as bfp8: the device computes exactly what CPU JAX computes with the
    bfp8-rounded weights (to accumulation order), within bfp8's error of the unrounded product,
    and the weights' modeled DRAM bytes are the packed tiles (1088 per 32x32) instead of
    K x N x itemsize. Shapes are not whole tiles; K spans several unpacked chunks; x carries
    NaN, Inf and -0, and a weight row holds an Inf (bfp8 flushes the rest of its 16 values)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 1100)).astype(dtype)
    x[0, :3] = [np.nan, np.inf, -0.0]
    w1 = (rng.standard_normal((1100, 200)) / 33).astype(dtype)
    w2 = (rng.standard_normal((200, 70)) / 14).astype(dtype)
    w2[5, 3] = np.inf
    b = rng.standard_normal(200).astype(np.float32)
    args = (x, w1, w2, b)
    got, c8, f = _counters(_mlp, args, weight_format="bfp8")
    rounded = (x, round_bfp8(w1).astype(dtype), round_bfp8(w2).astype(dtype), b)
    want8 = np.asarray(jax.jit(_mlp)(*rounded))
    want = np.asarray(jax.jit(_mlp)(*args))
    tol = 2e-5 if dtype == np.float32 else 2e-2   # bf16: h is rounded to bf16 between the products
    np.testing.assert_allclose(got, want8, rtol=tol, atol=tol)
    assert np.isnan(got[0]).all() and not np.isfinite(got[1:, 3]).any()  # x's NaN row, w2's Inf column
    ok = np.isfinite(want) & np.isfinite(got)
    scale = np.abs(want[ok]).max()
    assert ok.sum() == 6 * 69 and np.abs(got[ok] - want[ok]).max() < 0.05 * scale  # bfp8's error vs unrounded
    _, c0, _ = _counters(_mlp, args)
    saved = sum(w.nbytes - packed_nbytes(w.shape) for w in (w1, w2))
    dram = lambda c: c["dma_bytes"] - c["noc_bytes"]  # noqa: E731
    assert c0["noc_bytes"] == c8["noc_bytes"]     # A panels multicast alike; a B block has one reader
    assert dram(c0) - dram(c8) == saved
    assert _formats(f.lower(*args).compile()) == ("", "bfp8", "bfp8", "")


def test_bfp8_packing_follows_the_argument():
    """The packed tiles are reused for the same unchanged array (and for one array bound to
    several inputs), re-packed when its bytes change in place."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    w = rng.standard_normal((64, 96)).astype(np.float32)
    f = tt_xla.jit(lambda x, w1, w2: x @ w1 + x @ w2, compiler_options={"weight_format": "bfp8"})
    first = np.asarray(f(x, w, w))
    np.testing.assert_allclose(first, 2 * (x.astype(np.float64) @ round_bfp8(w)), rtol=1e-5, atol=1e-4)
    w *= 2  # in place: same object, new bytes
    np.testing.assert_allclose(np.asarray(f(x, w, w)), 2 * first, rtol=1e-6, atol=1e-5)
    wd = tt_xla.device_put(w)  # a device array works too (read and packed on the host)
    np.testing.assert_allclose(np.asarray(f(x, wd, w)), 2 * first, rtol=1e-6, atol=1e-5)


def test_bfp8_option_choices_and_refusals():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    w = rng.standard_normal((64, 64)).astype(np.float32)

    def fn(x, w, v):
        return x @ w + v, w.T @ x.T   # w is also read transposed: not a bfp8 weight
    text = tt_xla.jit(fn).lower(x, w, x).as_text()
    exe = tt_xla.compile(text, compiler_options={"weight_format": "bfp8"})     # all: only what qualifies
    assert _formats(exe) == ("", "", "")
    np.testing.assert_allclose(np.asarray(exe(x, w, x)[0]), x @ w + x, rtol=1e-5, atol=1e-4)
    exe = tt_xla.compile(tt_xla.jit(lambda x, w, v: x @ w + x @ v).lower(x, w, w).as_text(),
                         compiler_options={"weight_format": {2: "bfp8"}})        # per argument
    assert _formats(exe) == ("", "", "bfp8")
    with pytest.raises(UnsupportedError, match="argument 1 .*cannot be stored as bfp8"):
        tt_xla.compile(text, compiler_options={"weight_format": {1: "bfp8"}})
    from tt_xla.compiler.options import CompilerOptionsError, compiler_options
    for bad in ("bfp4", {"w": "bfp8"}, {0: "int8"}, {-1: "bfp8"}):
        with pytest.raises(CompilerOptionsError, match="weight_format"):
            compiler_options({"weight_format": bad})


def _dram(c: dict) -> int:
    return c["dma_bytes"] - c["noc_bytes"]


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("xs, ws", [((7, 1100), (1100, 1)), ((7, 1), (1, 1000)), ((1, 1), (1, 1))],
                         ids=["column", "row", "scalar"])
def test_bfp8_weights_of_one_column_or_one_row(xs, ws, dtype):
    """[K, 1] and [1, N] weights (a unit dim has no stride of its own) are stored as bfp8 too:
    the device computes what CPU JAX computes with the rounded weight, the weight moves its packed
    tiles (padded to whole tiles: more bytes than native here; one block row, so each B block
    has one reader), and every kernel's IR figures equal what the cores count."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    fn = lambda x, w: jnp.matmul(x, w, preferred_element_type=jnp.float32)  # noqa: E731
    got, c8, f = _counters(fn, (x, w), weight_format={1: "bfp8"})
    want = np.asarray(jax.jit(fn)(x, round_bfp8(w).astype(dtype)))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-4)
    assert _formats(f.lower(x, w).compile()) == ("", "bfp8")
    _, c0, _ = _counters(fn, (x, w))
    assert _dram(c0) - _dram(c8) == w.nbytes - packed_nbytes(w.shape)
    exe = f.lower(x, w).compile()
    exe(x, w)
    for k, st in zip(exe.kernels(), exe.kernel_stats()):
        assert (k.dma_bytes, k.vector_ops, k.matrix_tiles) == (st["dma_bytes"], st["vector_ops"], st["matrix_tiles"])


def _loop(x, w, v):
    """w: a weight the loop closes over (jax carries it through the while unchanged); v read natively."""
    y = jax.lax.fori_loop(0, 3, lambda i, c: jnp.tanh(c @ w), x)
    return jax.lax.cond(y[0, 0] > 0, lambda a: a @ w, lambda a: -(a @ w) + v, y)


@pytest.mark.parametrize("wf", ["bfp8", {1: "bfp8"}], ids=["all", "named"])
def test_bfp8_weights_in_control_flow(wf):
    """A weight read by pieces of a loop and of both branches of a cond is packed for all of them:
    results are CPU JAX's with the rounded weight, and each of the 4 products reads the packed
    tiles instead of the native bytes (the loop no longer copies it into a slot either)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 96)).astype(np.float32)
    w = (rng.standard_normal((96, 96)) / 10).astype(np.float32)
    v = rng.standard_normal((4, 96)).astype(np.float32)
    got, c8, f = _counters(_loop, (x, w, v), weight_format=wf)
    want = np.asarray(jax.jit(_loop)(x, round_bfp8(w), v))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert _formats(f.lower(x, w, v).compile()) == ("", "bfp8", "")
    _, c0, _ = _counters(_loop, (x, w, v))
    assert _dram(c0) - _dram(c8) == 4 * (w.nbytes - packed_nbytes(w.shape))


def test_control_flow_weights_read_natively_somewhere_stay_native():
    """A weight some piece reads other than as x @ w (here transposed, after the loop) is stored
    natively when all arguments are asked for, and refused when it is named; an explicit
    "native" and arguments that are not weights are fine."""
    def fn(x, w):
        y = jax.lax.fori_loop(0, 2, lambda i, c: c @ w, x)
        return y @ w.T
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((4, 64)).astype(np.float32), rng.standard_normal((64, 64)).astype(np.float32) / 8
    for wf in ("bfp8", {1: "native"}):
        f = tt_xla.jit(fn, compiler_options={"weight_format": wf})
        np.testing.assert_allclose(np.asarray(f(x, w)), np.asarray(jax.jit(fn)(x, w)), rtol=1e-5, atol=1e-5)
        assert _formats(f.lower(x, w).compile()) == ("", "")
    with pytest.raises(UnsupportedError, match="argument 1 .*cannot be stored as bfp8"):
        tt_xla.jit(fn, compiler_options={"weight_format": {1: "bfp8"}})(x, w)
    g = lambda x: jax.lax.fori_loop(0, 3, lambda i, c: c * 2.0, x)  # noqa: E731
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(tt_xla.jit(g, compiler_options={"weight_format": "bfp8"})(x)), x * 8)
    with pytest.raises(UnsupportedError, match="argument 0 .*cannot be stored as bfp8"):
        tt_xla.jit(g, compiler_options={"weight_format": {0: "bfp8"}})(x)
