"""bfp8: Tenstorrent's bfloat8_b block-float storage format, byte for byte, in numpy.

    packed = pack(w)          # uint8 [tiles_r, tiles_c, 1088]: w (2-D, f32 or bf16) tile by tile
    w8 = unpack(packed, w.shape)   # f32: the values a core computes with after unpacking
    w8 = round_bfp8(w)        # = unpack(pack(w), w.shape): the host numerics of bfp8 storage

The layout follows tt-metal (tt_metal/impl/data_format/blockfloat_common.cpp, Bfp8_b, not
exp_a): a 32x32 tile is four 16x16 faces (top-left, top-right, bottom-left, bottom-right); each
face row of 16 values shares one 8-bit exponent, the largest biased f32 exponent among them. A
tile is its 64 exponents (face 0 rows 0-15, face 1 rows 0-15, ...) followed by its 1024
one-byte values in the same order (a face's rows, row-major): 1088 bytes, 1.0625 per value. A
value's byte is a sign bit and a 7-bit magnitude: its 24-bit significand (hidden bit included)
shifted right by (shared exponent - its exponent), then by 17 more bits rounding to nearest,
ties to even, and saturated at 127 (no renormalization); +-0 is 0, and a magnitude of 0 drops
the sign. Unpacking shifts the magnitude up until bit 6 is set (lowering the exponent by as
many), so every value is a bf16 (7 significant bits at most). As on the device, a denormal
input takes the hidden bit (exponent 0), and an Inf or NaN in a row flushes the row's other
values to zero.

Shapes that are not whole tiles are padded with zeros (which do not change a row's exponent).
"""
from __future__ import annotations

import numpy as np

__all__ = ["TILE", "TILE_BYTES", "pack", "unpack", "round_bfp8", "packed_nbytes"]

TILE = 32
FACE = 16
TILE_BYTES = 64 + TILE * TILE  # 64 shared exponents, 1024 sign+magnitude bytes
_DROP = 24 - 7                 # significand bits below the 7 the format keeps
_LEAD = np.array([6 - max(m.bit_length() - 1, 0) for m in range(128)], np.uint32)  # by magnitude


def packed_nbytes(shape: tuple[int, ...]) -> int:
    """Bytes of a 2-D tensor of `shape` stored as bfp8 (whole tiles)."""
    r, c = shape
    return -(-r // TILE) * -(-c // TILE) * TILE_BYTES


def _faces(x: np.ndarray) -> np.ndarray:
    """[R, C] (multiples of 32) -> [tiles_r, tiles_c, face (4), face row (16), 16] in storage order."""
    tr, tc = x.shape[0] // TILE, x.shape[1] // TILE
    t = x.reshape(tr, 2, FACE, tc, 2, FACE)             # tile row, face row half, row, tile col, face col half, col
    return t.transpose(0, 3, 1, 4, 2, 5).reshape(tr, tc, 4, FACE, FACE)


def _unfaces(f: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    tr, tc = f.shape[:2]
    x = f.reshape(tr, tc, 2, 2, FACE, FACE).transpose(0, 2, 4, 1, 3, 5).reshape(tr * TILE, tc * TILE)
    return x[:shape[0], :shape[1]]


def pack(x: np.ndarray) -> np.ndarray:
    """A 2-D float array (f32, bf16, or anything numpy converts to f32 exactly) as bfp8 tiles:
    uint8 [tiles_r, tiles_c, 1088]."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"bfp8 packs 2-D arrays (a matmul weight), got shape {x.shape}")
    r, c = x.shape
    pr, pc = -(-r // TILE) * TILE, -(-c // TILE) * TILE
    full = np.zeros((pr, pc), np.float32)
    full[:r, :c] = x.astype(np.float32)
    bits = _faces(full).view(np.uint32)                 # [tr, tc, 4, 16, 16]
    exp = (bits >> 23) & 0xFF
    shared = exp.max(axis=-1, keepdims=True)
    sig = (bits & 0x7FFFFF) | (1 << 23)
    shift = np.minimum(shared - exp, 31)                # >= 24 leaves nothing of the significand
    sig = sig >> shift
    rest = sig & ((1 << _DROP) - 1)
    mag = sig >> _DROP
    tie = 1 << (_DROP - 1)
    mag = mag + ((rest > tie) | ((rest == tie) & (mag & 1 == 1)))
    mag = np.minimum(mag, 127)
    mag = np.where((bits & 0x7FFFFFFF) == 0, 0, mag)    # +-0
    sign = np.where(mag == 0, 0, bits >> 31)
    vals = ((sign << 7) | mag).astype(np.uint8)
    tr, tc = bits.shape[:2]
    out = np.empty((tr, tc, TILE_BYTES), np.uint8)
    out[..., :64] = shared.reshape(tr, tc, 64).astype(np.uint8)
    out[..., 64:] = vals.reshape(tr, tc, TILE * TILE)
    return out


def unpack(packed: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """bfp8 tiles (as `pack` gives them) back to an f32 array of `shape`."""
    r, c = shape
    tr, tc = -(-r // TILE), -(-c // TILE)
    p = np.asarray(packed, np.uint8).reshape(tr, tc, TILE_BYTES)
    shared = p[..., :64].reshape(tr, tc, 4, FACE, 1).astype(np.uint32)
    vals = p[..., 64:].reshape(tr, tc, 4, FACE, FACE).astype(np.uint32)
    sign, mag = vals >> 7, vals & 0x7F
    lead = _LEAD[mag]                                   # shifts until bit 6 is set
    frac = ((mag << (lead + 1)) & 0x7F) << 16           # the hidden bit dropped, 7 bits left at the top
    e = shared - lead                                   # uint32 arithmetic (wraps), as the device's
    bits = (sign << 31) | ((e << 23) & 0xFFFFFFFF) | frac
    bits = np.where(mag == 0, sign << 31, bits).astype(np.uint32)
    return _unfaces(bits.view(np.float32), (r, c)).copy()


def round_bfp8(x: np.ndarray) -> np.ndarray:
    """x as bfp8 storage leaves it (f32; every value is exactly a bf16)."""
    x = np.asarray(x)
    return unpack(pack(x), x.shape)
