"""Element types: their classes, widths and C spellings (MLIR names: 'f32', 'bf16', 'i1', ...).

Kept apart from graph.py so the op table (ops.py), which graph.py reads, can use them too."""
from __future__ import annotations

from ..hlo_parser.element_types import F8, FLOAT_FORMAT, is_float, is_signed, is_unsigned, num_bits

# The element types the compiler computes (the verifier accepts every type the spec names;
# element_types says which family each is in and its width). fp8 types are stored as their
# byte, computed in f32 and rounded after every op, like bf16/f16 (prelude.c's k_f8_*).
COMPUTED = ("i1", "i8", "i16", "i32", "i64", "ui8", "ui16", "ui32", "ui64", "f16", "bf16", "f32", "f64", *F8)
NARROW_FLOATS = {"f16", "bf16"} | set(F8)  # computed in f32, rounded to the type after each op
FLOATS = {t for t in COMPUTED if is_float(t)}
SIGNED = {t for t in COMPUTED if is_signed(t)}
UNSIGNED = {t for t in COMPUTED if is_unsigned(t)}
INTS = SIGNED | UNSIGNED
# int4/uint4: computed in (and, inside a program, stored as) the byte type of their signedness,
# wrapped to 4 bits after each op (narrow_int.py)
NARROW_INTS = {"i4": "i8", "ui4": "ui8"}
# ml_dtypes' float8_e8m0fnu (a power of two per byte): computed in f32, rounded to the format
# after each op, stored as its byte at the function boundary (narrow.py)
E8M0 = "f8E8M0FNU"
BITS = {t: num_bits(t) for t in COMPUTED}

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
