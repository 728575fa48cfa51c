"""stablehlo.rng_bit_generator as XLA:CPU computes it, in integer elementwise core ops.

Both generators are counter based, so every output element is a function of its own index:
  THREE_FRY: state u64[2] = (key, counter). The output is split in two halves along its first
    even dim (else its largest): the element at index i_d = 2h + t of that dim is word t of
    threefry2x32(counter + (row-major index with i_d -> h in the half shape), key), each u64
    split into (low, high) u32 words. 64-bit outputs use both words of one block, unsplit.
    The new state is (key, counter + elements of the half shape).
  PHILOX (and DEFAULT, which XLA:CPU maps to it): state u64[3] = (key, counter as a u128 low
    word first), or u64[2] = (key, counter low word) whose counter's high word is the key itself. 32-bit output j is word j % 4 of philox4x32-10(counter + j // 4, key);
    64-bit output j joins words 2t, 2t+1 (t = j % 2) of block j // 2. The new state is the
    counter advanced by the blocks used.
Outputs narrower than 32 bits keep the low bits of the 32-bit words.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .graph import Node, broadcast, const, ew

_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)


def _cv(x: Node, dt: str) -> Node:
    return x if x.dtype == dt else Node("convert", [x], x.shape, dt, {}, x.loc)


def _k(v: int, dt: str, shape: tuple[int, ...]) -> Node:
    return const(v, dt, shape)


def _state_word(state: Node, i: int, shape: tuple[int, ...]) -> Node:
    """state[i] broadcast to shape."""
    s = Node("slice", [state], (1,), state.dtype, {"start": (i,), "strides": (1,)}, state.loc)
    return broadcast(Node("reshape", [s], (), state.dtype, {}, state.loc), shape, ())


def _lo_hi(x: Node) -> tuple[Node, Node]:
    return _cv(x, "ui32"), _cv(ew("shr_l", [x, _k(32, "ui64", x.shape)]), "ui32")


def _join(lo: Node, hi: Node) -> Node:
    return ew("or", [_cv(lo, "ui64"), ew("shl", [_cv(hi, "ui64"), _k(32, "ui64", lo.shape)])])


def _rotl(v: Node, r: int) -> Node:
    return ew("or", [ew("shl", [v, _k(r, "ui32", v.shape)]), ew("shr_l", [v, _k(32 - r, "ui32", v.shape)])])


def _threefry(x0: Node, x1: Node, k0: Node, k1: Node) -> tuple[Node, Node]:
    shape = x0.shape
    ks = [k0, k1, ew("xor", [ew("xor", [_k(0x1BD11BDA, "ui32", shape), k0]), k1])]
    x = [ew("add", [x0, ks[0]]), ew("add", [x1, ks[1]])]
    for block in range(5):
        for r in _ROTATIONS[4 * (block % 2): 4 * (block % 2) + 4]:
            x[0] = ew("add", [x[0], x[1]])
            x[1] = ew("xor", [x[0], _rotl(x[1], r)])
        x[0] = ew("add", [x[0], ks[(block + 1) % 3]])
        x[1] = ew("add", [ew("add", [x[1], ks[(block + 2) % 3]]), _k(block + 1, "ui32", shape)])
    return x[0], x[1]


def _philox(c: list[Node], k0: Node, k1: Node) -> list[Node]:
    shape = c[0].shape
    for _ in range(10):
        p0 = ew("mul", [_cv(c[0], "ui64"), _k(0xD2511F53, "ui64", shape)])
        p1 = ew("mul", [_cv(c[2], "ui64"), _k(0xCD9E8D57, "ui64", shape)])
        lo0, hi0 = _lo_hi(p0)
        lo1, hi1 = _lo_hi(p1)
        c = [ew("xor", [ew("xor", [hi1, c[1]]), k0]), lo1, ew("xor", [ew("xor", [hi0, c[3]]), k1]), lo0]
        k0 = ew("add", [k0, _k(0x9E3779B9, "ui32", shape)])
        k1 = ew("add", [k1, _k(0xBB67AE85, "ui32", shape)])
    return c


def _linear(shape: tuple[int, ...], dim: int | None = None) -> Node:
    """Row-major index of each element (as u64), with index i_dim read as i_dim // 2 in a
    shape whose dim is halved (rounded up) when dim is given."""
    lin = _k(0, "ui64", shape)
    stride = 1
    for d in range(len(shape) - 1, -1, -1):
        i = Node("iota", [], shape, "ui64", {"dim": d})
        n = shape[d]
        if d == dim:
            i, n = ew("shr_l", [i, _k(1, "ui64", shape)]), (n + 1) // 2
        lin = ew("add", [lin, ew("mul", [i, _k(stride, "ui64", shape)])])
        stride *= n
    return lin


def rng_bit_generator(algorithm: str, state: Node, shape: tuple[int, ...], dt: str, loc: object) -> list[Node]:
    """(new state, bits) nodes for `stablehlo.rng_bit_generator`."""
    bits = {"i8": 8, "ui8": 8, "i16": 16, "ui16": 16, "f16": 16, "bf16": 16, "i32": 32, "ui32": 32, "f32": 32,
            "i64": 64, "ui64": 64, "f64": 64}.get(dt)
    if bits is None or state.dtype not in ("ui64", "i64") or len(state.shape) != 1:
        raise UnsupportedError(f"rng_bit_generator of {dt} from state {state.dtype}{list(state.shape)}",
                               "stablehlo.rng_bit_generator", loc)
    signed = state.dtype == "i64"
    state = Node("bitcast", [state], state.shape, "ui64", {}, loc) if signed else state
    n = int(np.prod(shape, dtype=np.int64))
    if algorithm == "THREE_FRY":
        if state.shape != (2,):
            raise UnsupportedError("THREE_FRY needs a u64[2] state", "stablehlo.rng_bit_generator", loc)
        key_lo, key_hi = _lo_hi(_state_word(state, 0, shape))
        if bits == 64:
            split, blocks = None, n
        else:
            split = next((d for d, s in enumerate(shape) if s % 2 == 0), None)
            if split is None and shape:
                split = max(range(len(shape)), key=lambda d: shape[d])  # the first largest
            half = [(s + 1) // 2 if d == split else s for d, s in enumerate(shape)]
            blocks = int(np.prod(half, dtype=np.int64)) if shape else 1
        x = ew("add", [_state_word(state, 1, shape), _linear(shape, split)]) if shape else _state_word(state, 1, ())
        w0, w1 = _threefry(*_lo_hi(x), key_lo, key_hi)
        if bits == 64:
            out = _join(w0, w1)
        elif shape:
            odd = _cv(ew("and", [Node("iota", [], shape, "ui32", {"dim": split}), _k(1, "ui32", shape)]), "i1")
            out = Node("select", [odd, w1, w0], shape, "ui32", {}, loc)
        else:
            out = w0
        new = [_state_word(state, 0, ()), ew("add", [_state_word(state, 1, ()), _k(blocks, "ui64", ())])]
    elif algorithm in ("PHILOX", "DEFAULT"):
        if state.shape not in ((2,), (3,)):
            raise UnsupportedError("PHILOX needs a u64[2] or u64[3] state", "stablehlo.rng_bit_generator", loc)
        per = 2 if bits == 64 else 4  # outputs per 128-bit block
        blocks = -(-n // per)
        j = _linear(shape)
        v = ew("shr_l", [j, _k(per.bit_length() - 1, "ui64", shape)])
        lo = _state_word(state, 1, shape)
        hi = _state_word(state, 2 if state.shape == (3,) else 0, shape)  # u64[2]: the key is the high word
        c_lo = ew("add", [lo, v])
        carry = _cv(Node("cmp", [c_lo, lo], shape, "i1", {"dir": "LT", "total": False}, loc), "ui64")
        c_hi = ew("add", [hi, carry])
        k0, k1 = _lo_hi(_state_word(state, 0, shape))
        w = _philox([*_lo_hi(c_lo), *_lo_hi(c_hi)], k0, k1)
        t = ew("and", [j, _k(per - 1, "ui64", shape)])
        if bits == 64:
            words = [_join(w[0], w[1]), _join(w[2], w[3])]
        else:
            words = w
        out = words[-1]
        for i in range(len(words) - 2, -1, -1):
            pick = Node("cmp", [t, _k(i, "ui64", shape)], shape, "i1", {"dir": "EQ", "total": False}, loc)
            out = Node("select", [pick, words[i], out], shape, out.dtype, {}, loc)
        s_lo, s_hi = _state_word(state, 1, ()), (_state_word(state, 2, ()) if state.shape == (3,) else None)
        n_lo = ew("add", [s_lo, _k(blocks, "ui64", ())])
        new = [_state_word(state, 0, ()), n_lo]
        if s_hi is not None:
            cy = _cv(Node("cmp", [n_lo, s_lo], (), "i1", {"dir": "LT", "total": False}, loc), "ui64")
            new.append(ew("add", [s_hi, cy]))
    else:
        raise UnsupportedError(f"rng_bit_generator algorithm {algorithm}", "stablehlo.rng_bit_generator", loc)
    if bits < 32:
        out = _cv(out, "ui16" if bits == 16 else "ui8")
    unsigned = {8: "ui8", 16: "ui16", 32: "ui32", 64: "ui64"}[bits]
    if dt != unsigned:
        out = Node("bitcast", [out], shape, dt, {}, loc)
    pieces = [Node("reshape", [p], (1,), "ui64", {}, loc) for p in new]
    new_state = Node("concat", pieces, (len(pieces),), "ui64", {"dim": 0}, loc)
    if signed:
        new_state = Node("bitcast", [new_state], new_state.shape, "i64", {}, loc)
    return [new_state, out]
