"""The parse-level IR: a plain, faithful picture of an MLIR module as jax.export prints it.

The parser produces it; the compiler's first passes read it. Nothing here knows what an op
means: ops are names, operands, results, attributes and regions. Pretty and generic op forms
parse to the same Operation (pretty-form keywords are normalized to the attribute names the
generic form and the StableHLO spec use).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import element_types


# ----------------------------------------------------------------------------- types
@dataclass(frozen=True)
class TensorType:
    """`tensor<4x?x8xf32>`; a dynamic dim is None. `element` is the MLIR spelling:
    'i1','i8','i16','i32','i64','ui8'..'ui64','f16','bf16','f32','f64','f8E4M3FN',...,
    'complex<f32>', 'complex<f64>'."""
    shape: tuple[int | None, ...]
    element: str

    def __str__(self) -> str:
        dims = "".join(("?" if d is None else str(d)) + "x" for d in self.shape)
        return f"tensor<{dims}{self.element}>"


@dataclass(frozen=True)
class TupleType:
    types: tuple[Any, ...]

    def __str__(self) -> str:
        return f"tuple<{', '.join(map(str, self.types))}>"


@dataclass(frozen=True)
class OpaqueType:
    """Any other type, kept as its text: `!stablehlo.token`, `i32` (scalar builtin), `index`."""
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class FunctionType:
    inputs: tuple[Any, ...]
    results: tuple[Any, ...]

    def __str__(self) -> str:
        # A single result that is not itself a function type needs no parentheses.
        res = self.results
        out = str(res[0]) if len(res) == 1 and not isinstance(res[0], FunctionType) else \
            f"({', '.join(map(str, res))})"
        return f"({', '.join(map(str, self.inputs))}) -> {out}"


# ----------------------------------------------------------------------------- locations
@dataclass(frozen=True)
class Location:
    """A resolved `loc(...)`. `file`/`line`/`col` are the innermost file position found by
    following names, callsites (the callee side first) and fused locations, skipping frames
    inside tt_xla and jax when the user's code has one; `name` is the
    nearest enclosing name (e.g. 'jit(f)/exp'). `text` is a short readable form."""
    file: str | None = None
    line: int | None = None
    col: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.file else "<unknown location>"
        return f"{where} ({self.name})" if self.name else where


# ----------------------------------------------------------------------------- attributes
@dataclass(frozen=True)
class IntegerAttr:
    value: int
    type: str  # 'i64', 'i32', 'index', ...


@dataclass(frozen=True)
class FloatAttr:
    value: float
    type: str


@dataclass(frozen=True)
class EnumAttr:
    """`#stablehlo<comparison_direction GT>` -> EnumAttr('stablehlo', 'comparison_direction', 'GT').
    Pretty-form bare keywords become the same: `compare GT, ..., FLOAT` gives
    comparison_direction=EnumAttr(..., 'GT') and compare_type=EnumAttr(..., 'FLOAT')."""
    dialect: str
    kind: str
    value: str


@dataclass
class StructAttr:
    """`#stablehlo.dot<lhs_batching_dimensions = [0], ...>` -> StructAttr('stablehlo.dot', {...}).
    Integer lists inside are tuples of int. Pretty `dot_general ..., batching_dims = [0] x [0],
    contracting_dims = [1] x [0]` becomes attribute 'dot_dimension_numbers' = StructAttr(
    'stablehlo.dot', {'lhs_batching_dimensions': (0,), 'rhs_batching_dimensions': (0,),
    'lhs_contracting_dimensions': (1,), 'rhs_contracting_dimensions': (0,)}) (absent lists -> ())."""
    name: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class SymbolRef:
    name: str  # without '@'


@dataclass(frozen=True)
class TypeAttr:
    type: Any


@dataclass(frozen=True)
class OpaqueAttr:
    """Anything the parser keeps but does not interpret (e.g. `#stablehlo.conv<...>` bodies,
    `#sdy...`). `text` is the exact source text."""
    text: str


class DenseElements:
    """`dense<...>` (nested, splat, hex `dense<"0x...">`, complex `(re, im)` pairs) of a static
    tensor type, with the numpy dtype for the element type (see numpy_dtype).

    A splat (`dense<1.0> : tensor<268435456xf32>`) is kept as its one element: `is_splat`,
    `splat_value` (a 0-d array). `values` is an array of `type.shape` (for a splat a read-only
    broadcast view, which costs no memory); `to_numpy()` is a materialized, writable copy.
    Equality compares type and element bits, whichever way each side was written."""

    __slots__ = ("type", "_values", "_splat")

    def __init__(self, type: TensorType, values: np.ndarray | None = None,
                 splat: np.ndarray | None = None):
        if (values is None) == (splat is None):
            raise ValueError("DenseElements needs exactly one of values and splat")
        self.type = type
        self._values = values
        self._splat = None if splat is None else np.asarray(splat).reshape(())

    @property
    def is_splat(self) -> bool:
        return self._splat is not None

    @property
    def splat_value(self) -> np.ndarray:
        """The one element of a splat, as a 0-d array (ValueError if not a splat)."""
        if self._splat is None:
            raise ValueError("not a splat")
        return self._splat

    @property
    def dtype(self) -> np.dtype:
        return (self._values if self._splat is None else self._splat).dtype

    @property
    def values(self) -> np.ndarray:
        if self._splat is not None:
            return np.broadcast_to(self._splat, self.type.shape)
        return self._values  # type: ignore[return-value]

    def to_numpy(self) -> np.ndarray:
        return np.array(self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DenseElements):
            return NotImplemented
        if self.type != other.type or self.dtype != other.dtype:
            return False
        if self.is_splat and other.is_splat:
            return self._splat.tobytes() == other._splat.tobytes()  # type: ignore[union-attr]
        a, b = np.ascontiguousarray(self.values), np.ascontiguousarray(other.values)
        return a.shape == b.shape and a.tobytes() == b.tobytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        body = f"splat={self._splat!r}" if self.is_splat else f"values={self._values!r}"
        return f"DenseElements({self.type}, {body})"


class DenseArray(tuple):
    """`array<i64: 1, 2>` -> a tuple (1, 2) that remembers its element type `element` ('i64',
    'i1', 'i32', 'f32', ...), so a printer can spell it back. Pretty dims lists such as
    `dims = [0, 1]` are i64 (as the StableHLO spec types them). Compares equal to a tuple."""

    element: str

    def __new__(cls, items: Any = (), element: str = "i64") -> "DenseArray":
        self = super().__new__(cls, items)
        self.element = element
        return self


# Attribute values are: bool (true/false, and unit attrs -> True), str (string attrs),
# IntegerAttr, FloatAttr, EnumAttr, StructAttr, SymbolRef, TypeAttr, OpaqueAttr, DenseElements,
# list (ArrayAttr `[...]`), DenseArray (a tuple of int/float/bool: dense arrays `array<i64: 1, 2>`
# and pretty dims lists like `dims = [0, 1]`), dict (DictionaryAttr `{...}`).


# ----------------------------------------------------------------------------- ops
@dataclass(eq=False)
class Value:
    """An SSA value. One object per definition; uses share the object. `name` is for
    messages only ('%0', '%1#1', '%arg0', '%cst_2')."""
    name: str
    type: Any
    loc: "Location | None" = None  # function arguments: jax names them (loc("x"))


@dataclass(eq=False)
class Block:
    args: list[Value] = field(default_factory=list)
    ops: list["Operation"] = field(default_factory=list)


@dataclass(eq=False)
class Region:
    blocks: list[Block] = field(default_factory=list)


@dataclass(eq=False)
class Operation:
    """`name` is the full op name: 'stablehlo.add', 'func.call' (pretty `call`), 'func.return'
    (pretty `return`), 'stablehlo.return', 'chlo.erf', ... For func.call, attributes['callee']
    is a SymbolRef. The reduce pretty form `applies stablehlo.add` is expanded into a region whose
    block has the scalar args and that op followed by stablehlo.return, exactly as if written out."""
    name: str
    operands: list[Value]
    results: list[Value]
    attributes: dict[str, Any] = field(default_factory=dict)
    regions: list[Region] = field(default_factory=list)
    loc: Location | None = None


@dataclass(eq=False)
class Function:
    name: str
    args: list[Value]
    result_types: list[Any]
    body: Block  # its last op is func.return
    visibility: str = "public"  # 'public' | 'private'
    arg_attrs: list[dict[str, Any]] = field(default_factory=list)
    result_attrs: list[dict[str, Any]] = field(default_factory=list)
    loc: Location | None = None


@dataclass(eq=False)
class Module:
    name: str | None
    attributes: dict[str, Any]
    functions: dict[str, Function]  # in source order

    @property
    def main(self) -> Function:
        if "main" in self.functions:
            return self.functions["main"]
        public = [f for f in self.functions.values() if f.visibility == "public"]
        if len(public) != 1:
            raise ValueError("module has no unique public entry function")
        return public[0]


# MLIR element type -> numpy dtype name (ml_dtypes provides bf16, the sub-byte integers and the
# small floats; numpy stores each of those in one byte, as MLIR's dense storage does).
_NUMPY = {
    "i1": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "ui8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64",
    "f16": "float16", "f32": "float32", "f64": "float64", "bf16": "bfloat16",
    "i2": "int2", "i4": "int4", "ui2": "uint2", "ui4": "uint4",
    "f4E2M1FN": "float4_e2m1fn", "f6E2M3FN": "float6_e2m3fn", "f6E3M2FN": "float6_e3m2fn",
    "f8E4M3FN": "float8_e4m3fn", "f8E5M2": "float8_e5m2", "f8E4M3": "float8_e4m3",
    "f8E3M4": "float8_e3m4", "f8E4M3FNUZ": "float8_e4m3fnuz", "f8E5M2FNUZ": "float8_e5m2fnuz",
    "f8E4M3B11FNUZ": "float8_e4m3b11fnuz", "f8E8M0FNU": "float8_e8m0fnu",
    "complex<f32>": "complex64", "complex<f64>": "complex128",
}
# Bit widths of the element types whose storage is narrower than their numpy itemsize says.
SUB_BYTE_BITS = element_types.SUB_BYTE_BITS


@functools.lru_cache(maxsize=None)
def numpy_dtype(element: str) -> np.dtype:
    """The numpy dtype for an MLIR element type (bf16, sub-byte and f8 types from ml_dtypes;
    i1 -> bool)."""
    import ml_dtypes

    name = _NUMPY.get(element)
    if name is None:
        raise NotImplementedError(f"element type {element} has no numpy dtype here")
    return np.dtype(getattr(ml_dtypes, name, None) or name)
