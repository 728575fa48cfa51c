"""Element types: their classes, widths and C spellings (MLIR names: 'f32', 'bf16', 'i1', ...).

Kept apart from graph.py so the op table (ops.py), which graph.py reads, can use them too."""
from __future__ import annotations

FLOATS = {"f16", "bf16", "f32", "f64"}
SIGNED = {"i8", "i16", "i32", "i64"}
UNSIGNED = {"ui8", "ui16", "ui32", "ui64"}
INTS = SIGNED | UNSIGNED
BITS = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "ui8": 8, "ui16": 16, "ui32": 32,
        "ui64": 64, "f16": 16, "bf16": 16, "f32": 32, "f64": 64}
# (exponent bits, mantissa bits) of each float format
FLOAT_FORMAT = {"f16": (5, 10), "bf16": (8, 7), "f32": (8, 23), "f64": (11, 52)}

# C: the storage type, the type a value is computed in (bf16/f16 in float, i1 in int), and the
# unsigned type of the same width (for shifts and bit counts)
CTYPE = {"f32": "float", "f64": "double", "bf16": "uint16_t", "f16": "_Float16", "i1": "uint8_t",
         "i8": "int8_t", "i16": "int16_t", "i32": "int32_t", "i64": "int64_t", "ui8": "uint8_t",
         "ui16": "uint16_t", "ui32": "uint32_t", "ui64": "uint64_t"}
VTYPE = dict(CTYPE, bf16="float", f16="float", i1="int")
UTYPE = {"i8": "uint8_t", "i16": "uint16_t", "i32": "uint32_t", "i64": "uint64_t"}
