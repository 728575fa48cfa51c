"""StableHLO's elementwise ops over every element type they take, bit for bit against XLA:CPU
running the same text: rounding, cbrt, popcnt, count_leading_zeros, shifts by out-of-range
amounts, remainder and power for integers and floats, atan2, sign, is_finite, and
bitcast_convert between every pair of widths. One module per type holds all its ops (one
compile each), over every pair of the type's edge values."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import jax
from jax._src import xla_bridge
from jax._src.lib import xla_client as xc

import tt_xla

TYPES = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64, "ui8": np.uint8,
         "ui16": np.uint16, "ui32": np.uint32, "ui64": np.uint64, "f32": np.float32,
         "f64": np.float64, "bf16": ml_dtypes.bfloat16, "f16": np.float16}
INTS = [t for t in TYPES if "i" in t]
FLOATS = [t for t in TYPES if t not in INTS]
# (op, arity, result "same" or "i1", types it takes, compared within ulps (libm) or exactly)
OPS = [("round_nearest_afz", 1, "same", FLOATS, False), ("round_nearest_even", 1, "same", FLOATS, False),
       ("cbrt", 1, "same", FLOATS, True), ("is_finite", 1, "i1", FLOATS, False),
       ("sign", 1, "same", FLOATS + ["i8", "i16", "i32", "i64"], False), ("atan2", 2, "same", FLOATS, True),
       ("popcnt", 1, "same", INTS, False), ("count_leading_zeros", 1, "same", INTS, False),
       ("shift_left", 2, "same", INTS, False), ("shift_right_logical", 2, "same", INTS, False),
       ("shift_right_arithmetic", 2, "same", INTS, False),
       ("remainder", 2, "same", INTS + FLOATS, False), ("power", 2, "same", INTS + FLOATS, True)]


def edges(t: str) -> np.ndarray:
    d = np.dtype(TYPES[t])
    if t in FLOATS:
        fi = ml_dtypes.finfo(d)
        v = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1.5, 2.5, 3.0, -0.1, 2.0, -3.0,
             100.0, -7.25, float(fi.max), -float(fi.max), float(fi.tiny), float(fi.smallest_subnormal),
             -float(fi.smallest_subnormal)]
        with np.errstate(over="ignore"):
            return np.array(v).astype(d)
    info = np.iinfo(d)
    # shift amounts at, below and beyond the width, negative ones, and the extremes
    v = {0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, int(info.max), int(info.min)}
    if info.min < 0:
        v |= {-1, -2, -7, -33, -100}
    return np.array(sorted(x for x in v if info.min <= x <= info.max), dtype=d)


def _ty(shape: tuple[int, ...], t: str) -> str:
    return "tensor<" + "".join(f"{s}x" for s in shape) + t + ">"


def _module(t: str, n: int, ops: list[tuple[str, int, str]]) -> str:
    a = _ty((n,), t)
    body, rets, rtys = [], [], []
    for i, (op, arity, res) in enumerate(ops):
        r = _ty((n,), t if res == "same" else "i1")
        args = "%a, %b" if arity == 2 else "%a"
        ins = ", ".join([a] * arity)
        body.append(f'    %{i} = "stablehlo.{op}"({args}) : ({ins}) -> {r}')
        rets.append(f"%{i}")
        rtys.append(r)
    return (f"module {{\n  func.func @main(%a: {a}, %b: {a}) -> ({', '.join(rtys)}) {{\n" + "\n".join(body)
            + f"\n    return {', '.join(rets)} : {', '.join(rtys)}\n  }}\n}}\n")


def _xla(text: str, args: list[np.ndarray], x64: bool) -> list[np.ndarray]:
    """The text compiled and run by XLA:CPU, every result (x64 keeps 64-bit operands 64-bit)."""
    exe = xla_bridge.get_backend("cpu").compile_and_load(text, xc.DeviceList(tuple(jax.devices("cpu"))),
                                                         xc.CompileOptions())
    with jax.enable_x64(x64):
        return [np.asarray(r) for r in exe.execute([jax.device_put(x) for x in args])]


def _equal(got: np.ndarray, want: np.ndarray, ulps: bool, msg: str) -> None:
    if got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=msg)
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    same = (np.isnan(g) & np.isnan(w)) | ((g == w) & (np.signbit(g) == np.signbit(w)))
    if ulps:  # libm calls: within 2 ulps of the result type
        with np.errstate(all="ignore"):
            spacing = np.abs(np.spacing(want.astype(np.float32) if want.dtype.itemsize < 4 else want))
            same |= np.abs(g - w) <= 2 * spacing.astype(np.float64)
    assert same.all(), f"{msg}: inputs at {np.nonzero(~same)[0][:5]} got {got[~same][:5]} want {want[~same][:5]}"


@pytest.mark.parametrize("t", list(TYPES))
def test_elementwise_ops_match_xla(t):
    ops = [(op, ar, res) for op, ar, res, types, _ in OPS if t in types]
    v = edges(t)
    a, b = (m.reshape(-1) for m in np.meshgrid(v, v, indexing="ij"))
    text = _module(t, a.size, ops)
    got = tt_xla.compile(text)(a, b)
    want = _xla(text, [a, b], x64=t in ("i64", "ui64", "f64"))
    ulps = {op: u for op, _, _, _, u in OPS}
    for (op, _, _), g, w in zip(ops, got, want):
        _equal(np.asarray(g), np.asarray(w), ulps[op], f"{op} on {t}")


@pytest.mark.parametrize("src", list(TYPES))
def test_bitcast_convert_every_pair_of_widths(src):
    """src to every other type (one module, one argument per destination): same width
    elementwise, wider to narrower with a new last dim, narrower to wider from the last dim;
    the bytes must be XLA's (NaN payloads included)."""
    w = {t: np.dtype(d).itemsize for t, d in TYPES.items()}
    rng = np.random.default_rng(7)
    n, args, params, body, rets, rtys = 5, [], [], [], [], []
    for i, dst in enumerate(t for t in TYPES if t != src):
        if w[src] >= w[dst]:
            ishape, oshape = (n,), ((n,) if w[src] == w[dst] else (n, w[src] // w[dst]))
        else:
            ishape, oshape = (n, w[dst] // w[src]), (n,)
        raw = rng.integers(0, 256, int(np.prod(ishape)) * w[src], dtype=np.uint8)
        args.append(raw.view(TYPES[src]).reshape(ishape))
        params.append(f"%a{i}: {_ty(ishape, src)}")
        body.append(f"    %{i} = stablehlo.bitcast_convert %a{i} : ({_ty(ishape, src)}) -> {_ty(oshape, dst)}")
        rets.append(f"%{i}")
        rtys.append(_ty(oshape, dst))
    text = (f"module {{\n  func.func @main({', '.join(params)}) -> ({', '.join(rtys)}) {{\n" + "\n".join(body)
            + f"\n    return {', '.join(rets)} : {', '.join(rtys)}\n  }}\n}}\n")
    got = tt_xla.compile(text)(*args)
    want = _xla(text, args, x64=True)
    for r, g, wv in zip(rtys, got, want):
        g, wv = np.asarray(g), np.asarray(wv)
        assert g.shape == wv.shape and g.tobytes() == wv.tobytes(), f"{src} -> {r}"
