"""Printer: ir.Module -> MLIR text in the generic op form, which this parser (and MLIR's) reads.

    from tt_xla.hlo_parser import parse_module, print_module
    assert parse_module(print_module(m)) == m   # structurally (see ir_equal in the tests)

Every op prints generically (`%0 = "stablehlo.add"(%a, %b) {..} : (T, T) -> T loc(..)`), so the
printer needs no table of pretty forms; values are renamed `%0, %1, ...` (block arguments
`%argN`) in definition order. Attribute values print in the syntax they were parsed from
(ir.DenseArray remembers its element type); dense elements print as hex bytes (exact for every
element type, NaN payloads included), splats as one element, i1 as true/false; float scalars
print as the shortest decimal that reads back to the same double (bit patterns for NaN/inf).
Locations print as `loc("name"("file":line:col))`, which resolves back to the same Location.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from . import ir

__all__ = ["print_module", "print_attr", "print_type"]

_BARE = re.compile(r"[A-Za-z_][\w$.]*")


def print_module(module: ir.Module) -> str:
    return _Printer().module(module)


def print_type(t: Any) -> str:
    return str(t)


def print_attr(v: Any) -> str:
    """One attribute value in MLIR attribute syntax."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, ir.IntegerAttr):
        return f"{v.value} : {v.type}"
    if isinstance(v, ir.FloatAttr):
        return f"{_float(v.value, v.type)} : {v.type}"
    if isinstance(v, ir.EnumAttr):
        return f"#{v.dialect}<{v.kind} {v.value}>"
    if isinstance(v, ir.StructAttr):
        return _struct(v)
    if isinstance(v, ir.SymbolRef):
        return "::".join(_sym(p) for p in v.name.split("::"))
    if isinstance(v, ir.TypeAttr):
        return str(v.type)
    if isinstance(v, ir.OpaqueAttr):
        return v.text
    if isinstance(v, ir.DenseElements):
        return f"{_dense_body(v)} : {v.type}"
    if isinstance(v, ir.DenseArray) or isinstance(v, tuple):
        element = getattr(v, "element", "i64" if not v or not isinstance(v[0], bool) else "i1")
        if not v:
            return f"array<{element}>"
        items = ", ".join(("true" if x else "false") if isinstance(x, (bool, np.bool_)) else
                          _float(float(x), element) if isinstance(x, float) else str(int(x)) for x in v)
        return f"array<{element}: {items}>"
    if isinstance(v, list):
        return "[" + ", ".join(print_attr(x) for x in v) + "]"
    if isinstance(v, dict):
        return _attr_dict(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v)} : i64"
    if isinstance(v, (float, np.floating)):
        return f"{_float(float(v), 'f64')} : f64"
    raise TypeError(f"cannot print attribute value {v!r}")


def _quote(s: str) -> str:
    out = []
    for ch in s.encode("utf-8", errors="surrogateescape"):
        c = chr(ch)
        if c in '"\\' or ch < 0x20 or ch >= 0x7F:
            out.append(f"\\{ch:02X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _sym(name: str) -> str:
    return "@" + (name if _BARE.fullmatch(name) else _quote(name))


def _attr_name(k: str) -> str:
    return k if _BARE.fullmatch(k) else _quote(k)


def _attr_dict(d: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{_attr_name(k)} = {print_attr(x)}" for k, x in d.items()) + "}"


def _float(x: float, element: str) -> str:
    """Finite values as the shortest round-tripping decimal; NaN/inf as their bit pattern in
    the attribute's type (MLIR's own spelling), or `0x7FF8...` in f64 when the type has none."""
    if math.isfinite(x):
        r = repr(float(x))
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    try:
        dt = ir.numpy_dtype(element)
        if dt.kind == "c":
            raise NotImplementedError
    except NotImplementedError:
        dt = np.dtype(np.float64)
    bits = np.array([x], dtype=dt).view(f"u{dt.itemsize}")[0]
    return f"0x{int(bits):0{2 * dt.itemsize}X}"


def _struct(v: ir.StructAttr) -> str:
    from .attributes import STRUCT_LIST_FIELDS

    defaults = STRUCT_LIST_FIELDS.get(v.name, ())
    items = []
    for k, x in v.fields.items():
        if k in defaults and isinstance(x, tuple) and not x:
            continue  # the parser fills omitted list fields with (): omit them again
        items.append(f"{k} = {_field(x)}")
    body = ", ".join(items)
    if v.name == "stablehlo.conv":  # the dimension-letter form has a plain-field spelling
        return f"#stablehlo.conv<raw {body}>"
    return f"#{v.name}<{body}>"


def _field(x: Any) -> str:
    """Struct field values: plain ints, int lists `[0, 1]`, bare words (types, enum names)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, tuple):
        return "[" + ", ".join(_field(i) for i in x) + "]"
    if isinstance(x, str):
        return x if _BARE.fullmatch(x) else _quote(x)
    return print_attr(x)


def _dense_body(v: ir.DenseElements) -> str:
    dt = v.dtype
    if v.is_splat:
        one = v.splat_value
        if dt == np.bool_:
            return "dense<true>" if bool(one) else "dense<false>"
        return f'dense<"0x{_hex(one.reshape(1))}">'
    values = np.ascontiguousarray(v.values)
    if values.size == 0:
        return "dense<>"
    if dt == np.bool_:
        return "dense<" + _nested(values) + ">"
    return f'dense<"0x{_hex(values)}">'


def _hex(a: np.ndarray) -> str:
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes().hex().upper()


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        return "true" if bool(a) else "false"
    return "[" + ", ".join(_nested(x) for x in a) + "]"


class _Printer:
    def __init__(self) -> None:
        self.names: dict[int, str] = {}   # id(Value) -> printed name
        self.counter = 0
        self.args = 0
        self.lines: list[str] = []

    def module(self, m: ir.Module) -> str:
        head = "module"
        if m.name:
            head += " " + _sym(m.name)
        if m.attributes:
            head += " attributes " + _attr_dict(m.attributes)
        self.lines.append(head + " {")
        for fn in m.functions.values():
            self.function(fn, 1)
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"

    def function(self, fn: ir.Function, depth: int) -> None:
        self.names, self.counter, self.args = {}, 0, 0
        props: dict[str, Any] = {}
        if any(fn.arg_attrs):
            props["arg_attrs"] = [dict(a) for a in fn.arg_attrs]
        ftype = ir.FunctionType(tuple(a.type for a in fn.args), tuple(fn.result_types))
        props["function_type"] = ir.TypeAttr(ftype)
        if any(fn.result_attrs):
            props["res_attrs"] = [dict(a) for a in fn.result_attrs]
        props["sym_name"] = fn.name
        if fn.visibility != "public":
            props["sym_visibility"] = fn.visibility
        pad = "  " * depth
        self.lines.append(f'{pad}"func.func"() <{_attr_dict(props)}> ({{')
        # The entry block's arguments are the function's (a Function built by a pass may
        # leave body.args empty).
        self.block(ir.Block(list(fn.args), fn.body.ops), depth + 1, label=True)
        self.lines.append(f"{pad}}}) : () -> (){self.loc(fn.loc)}")

    def block(self, b: ir.Block, depth: int, label: bool, index: int = 0) -> None:
        pad = "  " * depth
        if label or b.args:
            args = []
            for a in b.args:
                name = f"%arg{self.args}"
                self.args += 1
                self.names[id(a)] = name
                args.append(f"{name}: {a.type}")
            self.lines.append(f"{pad[:-2]}^bb{index}" + (f"({', '.join(args)})" if args else "") + ":")
        for op in b.ops:
            self.op(op, depth)

    def use(self, v: ir.Value) -> str:
        name = self.names.get(id(v))
        if name is None:
            raise ValueError(f"value {v.name} is used before it is defined")
        return name

    def op(self, op: ir.Operation, depth: int) -> None:
        pad = "  " * depth
        res = ""
        if op.results:
            base = f"%{self.counter}"
            self.counter += 1
            if len(op.results) == 1:
                self.names[id(op.results[0])] = base
                res = f"{base} = "
            else:
                for i, r in enumerate(op.results):
                    self.names[id(r)] = f"{base}#{i}"
                res = f"{base}:{len(op.results)} = "
        operands = ", ".join(self.use(v) for v in op.operands)
        head = f'{pad}{res}{_quote(op.name)}({operands})'
        ftype = ir.FunctionType(tuple(v.type for v in op.operands), tuple(r.type for r in op.results))
        tail = (f" {_attr_dict(op.attributes)}" if op.attributes else "") + f" : {ftype}{self.loc(op.loc)}"
        if not op.regions:
            self.lines.append(head + tail)
            return
        self.lines.append(head + " (")
        for i, region in enumerate(op.regions):
            self.lines.append(f"{pad}  {{")
            for j, blk in enumerate(region.blocks):
                self.block(blk, depth + 2, label=j > 0 or bool(blk.args), index=j)
            self.lines.append(f"{pad}  }}" + ("," if i + 1 < len(op.regions) else ""))
        self.lines.append(f"{pad}){tail}")

    @staticmethod
    def loc(loc: ir.Location | None) -> str:
        if loc is None:
            return ""
        pos = f"{_quote(loc.file)}:{loc.line}:{loc.col}" if loc.file is not None else ""
        if loc.name is not None:
            return f" loc({_quote(loc.name)}({pos}))" if pos else f" loc({_quote(loc.name)})"
        return f" loc({pos})" if pos else " loc(unknown)"
