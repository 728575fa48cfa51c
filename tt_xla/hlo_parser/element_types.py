"""Element types by their MLIR names ('f32', 'bf16', 'i1', 'ui8', 'f8E4M3FN', 'complex<f32>', ...):
which family each belongs to, how many bits it has, and the format of each float.

The verifier checks programs against every type the StableHLO spec names; the compiler
(compiler/dtypes.py) computes a subset of them and adds how each is spelled in C. Both need
these facts, and the parser must not import the compiler, so they live here, once."""
from __future__ import annotations

import re

_INT = re.compile(r"(?:ui|si|i)(\d+)")
_FLOAT = re.compile(r"f16|bf16|f32|f64|tf32|f8E\w+|f6E\w+|f4E\w+")
COMPLEX_PART = {"complex<f32>": "f32", "complex<f64>": "f64"}  # a complex type -> its parts' type

# Widths of the types whose storage (one byte in numpy and in MLIR's dense storage) is wider
# than their value.
SUB_BYTE_BITS = {"i2": 2, "ui2": 2, "i4": 4, "ui4": 4, "f4E2M1FN": 4, "f6E2M3FN": 6, "f6E3M2FN": 6}

# fp8 formats (ml_dtypes' float8_*): mantissa bits, exponent bias and kind (0: IEEE-like with
# inf, 1: "fn", no inf and all ones is NaN, 2: "fnuz", no inf or -0 and 0x80 is NaN).
F8 = {"f8E4M3FN": (3, 7, 1), "f8E5M2": (2, 15, 0), "f8E4M3FNUZ": (3, 8, 2), "f8E5M2FNUZ": (2, 16, 2),
      "f8E4M3B11FNUZ": (3, 11, 2), "f8E4M3": (3, 7, 0), "f8E3M4": (4, 3, 0)}
# (exponent bits, mantissa bits) of each float format with a sign bit, inf or NaN
FLOAT_FORMAT = {"f16": (5, 10), "bf16": (8, 7), "f32": (8, 23), "f64": (11, 52),
                **{t: (7 - m, m) for t, (m, _, _) in F8.items()}}


def is_bool(e: str) -> bool:
    return e == "i1"


def is_int(e: str) -> bool:
    """An integer type of any signedness and width (i1, a boolean, is not one)."""
    return _INT.fullmatch(e) is not None and e != "i1"


def is_unsigned(e: str) -> bool:
    return e.startswith("ui")


def is_signed(e: str) -> bool:
    """A signed or signless integer (StableHLO's signless integers compare as signed)."""
    return is_int(e) and not is_unsigned(e)


def is_float(e: str) -> bool:
    return _FLOAT.fullmatch(e) is not None


def is_complex(e: str) -> bool:
    return e in COMPLEX_PART


def num_bits(e: str) -> int:
    """The spec's bit width of a value of type e (i1: 1; complex: both parts)."""
    m = _INT.fullmatch(e)
    if m:
        return int(m.group(1))
    if e in SUB_BYTE_BITS:
        return SUB_BYTE_BITS[e]
    if e in COMPLEX_PART:
        return 2 * num_bits(COMPLEX_PART[e])
    if e.startswith(("f8E", "f6E", "f4E")):  # not "f64"
        return int(e[1])
    return {"f16": 16, "bf16": 16, "f32": 32, "tf32": 32, "f64": 64}.get(e, 64)


def storage_bytes(e: str) -> int:
    """Bytes an element of type e takes in a dense buffer (narrower types take one byte)."""
    return max(1, num_bits(e) // 8)
