"""The parse-level IR: a plain, faithful picture of an MLIR module as jax.export prints it.

The parser produces it; the compiler's first passes read it. Nothing here knows what an op
means: ops are names, operands, results, attributes and regions. Pretty and generic op forms
parse to the same Operation (pretty-form keywords are normalized to the attribute names the
generic form and the StableHLO spec use).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


@dataclass
class DenseElements:
    """`dense<...>` (nested, splat, hex `dense<"0x...">`, complex `(re, im)` pairs) as a numpy
    array already of `type.shape` (splats broadcast) and of the numpy dtype for the element type
    (see numpy_dtype)."""
    type: TensorType
    values: np.ndarray


# Attribute values are: bool (true/false, and unit attrs -> True), str (string attrs),
# IntegerAttr, FloatAttr, EnumAttr, StructAttr, SymbolRef, TypeAttr, OpaqueAttr, DenseElements,
# list (ArrayAttr `[...]`), tuple of int/float/bool (dense arrays `array<i64: 1, 2>` and pretty
# dims lists like `dims = [0, 1]`), dict (DictionaryAttr `{...}`).


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


def numpy_dtype(element: str) -> np.dtype:
    """The numpy dtype for an MLIR element type (bf16 and f8 types from ml_dtypes; i1 -> bool)."""
    import ml_dtypes

    table = {
        "i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
        "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32, "ui64": np.uint64,
        "f16": np.float16, "f32": np.float32, "f64": np.float64, "bf16": ml_dtypes.bfloat16,
        "f8E4M3FN": ml_dtypes.float8_e4m3fn, "f8E5M2": ml_dtypes.float8_e5m2,
        "complex<f32>": np.complex64, "complex<f64>": np.complex128,
    }
    if element not in table:
        raise NotImplementedError(f"element type {element} has no numpy dtype here")
    return np.dtype(table[element])
