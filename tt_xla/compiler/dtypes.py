"""Element types: their classes, widths and C spellings (MLIR names: 'f32', 'bf16', 'i1', ...).

Kept apart from graph.py so the op table (ops.py), which graph.py reads, can use them too."""
from __future__ import annotations

# fp8 (ml_dtypes' float8_*): mantissa bits, exponent bias and kind (0: IEEE-like with inf,
# 1: "fn", no inf and all ones is NaN, 2: "fnuz", no inf or -0 and 0x80 is NaN). Stored as their
# byte, computed in f32 and rounded after every op, like bf16/f16 (prelude.c's k_f8_*).
F8 = {"f8E4M3FN": (3, 7, 1), "f8E5M2": (2, 15, 0), "f8E4M3FNUZ": (3, 8, 2), "f8E5M2FNUZ": (2, 16, 2),
      "f8E4M3B11FNUZ": (3, 11, 2), "f8E4M3": (3, 7, 0), "f8E3M4": (4, 3, 0)}
NARROW_FLOATS = {"f16", "bf16"} | set(F8)  # computed in f32, rounded to the type after each op
FLOATS = {"f16", "bf16", "f32", "f64"} | set(F8)
SIGNED = {"i8", "i16", "i32", "i64"}
UNSIGNED = {"ui8", "ui16", "ui32", "ui64"}
INTS = SIGNED | UNSIGNED
# int4/uint4: computed in (and, inside a program, stored as) the byte type of their signedness,
# wrapped to 4 bits after each op (narrow_int.py)
NARROW_INTS = {"i4": "i8", "ui4": "ui8"}
# ml_dtypes' float8_e8m0fnu (a power of two per byte): computed in f32, rounded to the format
# after each op, stored as its byte at the function boundary (narrow.py)
E8M0 = "f8E8M0FNU"
BITS = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "ui8": 8, "ui16": 16, "ui32": 32,
        "ui64": 64, "f16": 16, "bf16": 16, "f32": 32, "f64": 64, **{t: 8 for t in F8}}
# (exponent bits, mantissa bits) of each float format
FLOAT_FORMAT = {"f16": (5, 10), "bf16": (8, 7), "f32": (8, 23), "f64": (11, 52),
                **{t: (7 - m, m) for t, (m, _, _) in F8.items()}}

# C: the storage type, the type a value is computed in (bf16/f16 in float, i1 in int), and the
# unsigned type of the same width (for shifts and bit counts)
CTYPE = {"f32": "float", "f64": "double", "bf16": "uint16_t", "f16": "_Float16", "i1": "uint8_t",
         "i8": "int8_t", "i16": "int16_t", "i32": "int32_t", "i64": "int64_t", "ui8": "uint8_t",
         "ui16": "uint16_t", "ui32": "uint32_t", "ui64": "uint64_t", **{t: "uint8_t" for t in F8}}
VTYPE = dict(CTYPE, bf16="float", f16="float", i1="int", **{t: "float" for t in F8})


def f8_args(dt: str) -> str:
    """The format arguments of prelude.c's k_f8_ld/k_f8_st (m, bias, kind)."""
    m, bias, kind = F8[dt]
    return f"{m}, {bias}, {kind}"


def f8_round(dt: str, v: str) -> str:
    """k_f8_round of the float expression v to the fp8 type dt (its largest finite from ml_dtypes)."""
    import ml_dtypes

    from ..hlo_parser.ir import numpy_dtype
    m, bias, kind = F8[dt]
    maxv = float(ml_dtypes.finfo(numpy_dtype(dt)).max)
    return f"k_f8_round({v}, {m}, {bias}, {maxv.hex()}f, {kind})"
UTYPE = {"i8": "uint8_t", "i16": "uint16_t", "i32": "uint32_t", "i64": "uint64_t"}
