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
