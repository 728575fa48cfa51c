"""Types and attributes: the part of the grammar shared by module, function and op syntax."""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from . import ir
from .lexer import Lexer, ParseError, Token

# Integer widths are bounded (5 digits; MLIR's own limit is 2^24 - 1) so that no input makes
# us compute with 2^(huge) ranges.
_SCALAR_TYPE = re.compile(r"(?:[su]?i\d{1,5}|f\d{1,5}|bf16|tf32|f8E\w+|f[46]E\w+|index|none)")
_STR_ESCAPE = re.compile(r"\\([0-9a-fA-F]{2}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
# Tokens inside a dense<...> literal body (read with one regex: bodies can be megabytes).
_DENSE_TOK = re.compile(r"(?:\s|//[^\n]*(?![^\n]))*(?:([\[\](),])|(true|false)|([-+]?(?:0x[0-9a-fA-F]+|"
                        r"(?:\d+\.?\d*(?:[eE][-+]?\d+)?)|inf|nan)))")
# A static shape of a scalar type, as _tensor_type reads it token by token (dims of at most 19
# digits: a longer one is an error that path reports); texts read -> their TensorType.
_PLAIN_TENSOR = re.compile(r"tensor<((?:\d{1,19}x)*)([A-Za-z_][\w$.]*)>")
_plain_tensors: dict[str, ir.TensorType] = {}
_BLANK = re.compile(r"(?:\s|//[^\n]*)*")  # whitespace and comments
# List-valued struct fields that the spec defaults to [] when the printer omits them.
STRUCT_LIST_FIELDS = {
    "stablehlo.dot": ("lhs_batching_dimensions", "rhs_batching_dimensions",
                      "lhs_contracting_dimensions", "rhs_contracting_dimensions"),
    "stablehlo.gather": ("offset_dims", "collapsed_slice_dims", "operand_batching_dims",
                         "start_indices_batching_dims", "start_index_map"),
    "stablehlo.scatter": ("update_window_dims", "inserted_window_dims", "input_batching_dims",
                          "scatter_indices_batching_dims", "scatter_dims_to_operand_dims"),
}


# The parser allocates in proportion to the text it reads, never to a type's size (a splat stays
# one element, a literal's element count is checked against its type before numpy sees it);
# whether a tensor fits the device is the verifier's rule.
MAX_INT_DIGITS = 40           # longer integer literals are absurd (and costly to convert)


def is_scalar_type_name(text: str) -> bool:
    return _SCALAR_TYPE.fullmatch(text) is not None


def int_range(element: str) -> tuple[int, int] | None:
    """Values an integer literal of `element` may spell: signless iN takes its signed and its
    unsigned range (MLIR wraps `255 : i8` to -1), uiN the unsigned one; None if not an integer
    type."""
    m = re.fullmatch(r"(s|u)?i(\d+)", element)
    if element == "index":
        return -(1 << 63), (1 << 63) - 1
    if m is None:
        return None
    n = int(m.group(2))
    if m.group(1) == "u":
        return 0, (1 << n) - 1
    if m.group(1) == "s":
        return -(1 << (n - 1)), (1 << (n - 1)) - 1
    return -(1 << (n - 1)), (1 << n) - 1


class AttrParser:
    def __init__(self, text: str, filename: str):
        self.lex = Lexer(text, filename)
        self.attr_aliases: dict[str, Any] = {}
        self.type_aliases: dict[str, Any] = {}

    # ------------------------------------------------------------------ token helpers
    def error(self, message: str, tok: Token | None = None) -> ParseError:
        return self.lex.error(message, None if tok is None else tok.start)

    def expect(self, text: str, what: str = "") -> Token:
        tok = self.lex.next()
        if tok.text != text or tok.kind in ("str", "eof"):
            ctx = f" {what}" if what else ""
            raise self.error(f"expected '{text}'{ctx}, found {self.lex.describe(tok)}", tok)
        return tok

    def expect_kind(self, kind: str, what: str) -> Token:
        tok = self.lex.next()
        if tok.kind != kind:
            raise self.error(f"expected {what}, found {self.lex.describe(tok)}", tok)
        return tok

    def accept(self, text: str) -> bool:
        tok = self.lex.peek()
        if tok.text == text and tok.kind not in ("str", "eof"):
            self.lex.next()
            return True
        return False

    def at(self, text: str) -> bool:
        tok = self.lex.peek()
        return tok.text == text and tok.kind not in ("str", "eof")

    def unescape(self, tok: Token) -> str:
        body = tok.text[1:-1]
        if "\\" not in body:
            return body
        out = bytearray()
        last = 0
        for m in _STR_ESCAPE.finditer(body):
            out += body[last:m.start()].encode()
            e = m.group(1)
            out += bytes([int(e, 16)]) if len(e) == 2 else _SIMPLE_ESCAPES.get(e, e).encode()
            last = m.end()
        out += body[last:].encode()
        return out.decode("utf-8", errors="surrogateescape")

    def int_value(self, tok: Token, element: str | None = "i64") -> int:
        """The value of an int (or hex) token, which must fit `element` (a ParseError at the
        token otherwise: `feature_group_count = 99999999999999999999 : i64` is refused here).
        `element=None` (the integers of pretty forms, `dims = [..]`) only bounds the length:
        whether such a value fits its attribute is the verifier's rule."""
        text = tok.text
        if len(text) > MAX_INT_DIGITS:
            raise self.error(f"integer literal too long ({len(text)} characters)", tok)
        value = int(text, 16) if text.startswith("0x") else int(text)
        if element is None:
            return value
        lo, hi = int_range(element) or (-(1 << 63), (1 << 64) - 1)
        if not lo <= value <= hi:
            raise self.error(f"integer {value} out of range for {element}", tok)
        if lo < 0 and hi > -lo and value >= -lo:  # signless: MLIR keeps the bit pattern
            value -= hi + 1
        return value

    def parse_int(self, what: str = "integer") -> int:
        return self.int_value(self.expect_kind("int", what), None)

    def parse_int_list(self) -> ir.DenseArray:
        """`[1, 2, 3]` (pretty dims lists) -> DenseArray of i64."""
        self.expect("[", "to start an integer list")
        out: list[int] = []
        while not self.accept("]"):
            out.append(self.parse_int())
            if not self.at("]"):
                self.expect(",", "or ']' in integer list")
        return ir.DenseArray(out, "i64")

    # ------------------------------------------------------------------ types
    def parse_type(self) -> Any:
        tok = self.lex.next()
        if tok.kind == "id":
            if tok.text == "tensor":
                return self._tensor_type(tok)
            if tok.text == "tuple":
                self.expect("<", "after 'tuple'")
                types: list[Any] = []
                while not self.accept(">"):
                    types.append(self.parse_type())
                    if not self.at(">"):
                        self.expect(",", "or '>' in tuple type")
                return ir.TupleType(tuple(types))
            if tok.text == "complex":
                self.expect("<", "after 'complex'")
                inner = self.parse_type()
                self.expect(">", "to close complex type")
                return ir.OpaqueType(f"complex<{inner}>")
            if tok.text in ("vector", "memref"):  # kept opaque: not produced by jax
                self.lex.reset(tok.start + len(tok.text))
                return ir.OpaqueType(tok.text + self.lex.balanced(f"{tok.text} type"))
            if is_scalar_type_name(tok.text):
                return ir.OpaqueType(tok.text)
            raise self.error(f"expected type, found {self.lex.describe(tok)}", tok)
        if tok.kind == "bang":
            if tok.text in self.type_aliases:
                return self.type_aliases[tok.text]
            text = tok.text
            if self.lex.followed_by(tok, "<"):
                text += self.lex.balanced("dialect type")
            return ir.OpaqueType(text)
        if tok.kind == "punct" and tok.text == "(":
            inputs = self._type_list_until(")")
            self.expect("->", "in function type")
            return ir.FunctionType(tuple(inputs), tuple(self.parse_result_types()))
        raise self.error(f"expected type, found {self.lex.describe(tok)}", tok)

    def _tensor_type(self, tok: Token) -> Any:
        # Most types in a module are a static shape of a scalar type written without spaces
        # (`tensor<64x128xf32>`): read those with one match, each distinct text once.
        m = _PLAIN_TENSOR.match(self.lex.text, tok.start)
        if m is not None:
            known = _plain_tensors.get(m.group())
            if known is None and is_scalar_type_name(m.group(2)):
                dims = m.group(1)[:-1].split("x") if m.group(1) else []
                known = ir.TensorType(tuple(int(d) for d in dims), m.group(2))
                if len(_plain_tensors) < 4096:
                    _plain_tensors[m.group()] = known
            if known is not None:
                self.lex.reset(m.end())
                self.lex.last_end = m.end()
                return known
        self.expect("<", "after 'tensor'")
        if self.at("*"):  # unranked: no static shape to describe, keep as text
            self.lex.reset(tok.start + len(tok.text))
            return ir.OpaqueType("tensor" + self.lex.balanced("tensor type"))
        shape = self.lex.dims()
        elem = self.parse_type()
        if isinstance(elem, (ir.TensorType, ir.TupleType, ir.FunctionType)):
            raise self.error(f"invalid tensor element type {elem}", tok)
        if self.accept(","):  # encoding (e.g. #stablehlo.bounds<...>): shape+element is enough
            self.parse_attr()
        self.expect(">", "to close tensor type")
        return ir.TensorType(tuple(shape), str(elem))

    def _type_list_until(self, close: str) -> list[Any]:
        out: list[Any] = []
        while not self.accept(close):
            out.append(self.parse_type())
            if not self.at(close):
                self.expect(",", f"or '{close}' in type list")
        return out

    def parse_result_types(self) -> list[Any]:
        """After `->`: either `(T, ...)` or a single type (which may itself be a function type)."""
        if self.at("("):
            mark = self.lex.mark()
            self.lex.next()
            types = self._type_list_until(")")
            if not self.at("->"):
                return types
            self.lex.reset(mark)  # `((i32) -> i32)`-style: a single function-typed result
        return [self.parse_type()]

    # ------------------------------------------------------------------ attributes
    def parse_attr_dict(self) -> dict[str, Any]:
        """`{name = attr, unit_name, "quoted" = attr}`."""
        self.expect("{", "to start attribute dictionary")
        out: dict[str, Any] = {}
        while not self.accept("}"):
            tok = self.lex.next()
            if tok.kind == "id":
                key = tok.text
            elif tok.kind == "str":
                key = self.unescape(tok)
            else:
                raise self.error(f"expected attribute name, found {self.lex.describe(tok)}", tok)
            out[key] = self.parse_attr() if self.accept("=") else True
            if not self.at("}"):
                self.expect(",", "or '}' in attribute dictionary")
        return out

    def _typed_suffix(self) -> str | None:
        """An optional `: i32` after a number. Only scalar type names are taken, so the `:`
        that starts an op's trailing type (`dim = 0 : tensor<4xi32>`) is left alone."""
        if not self.at(":"):
            return None
        mark = self.lex.mark()
        self.lex.next()
        tok = self.lex.peek()
        if tok.kind == "id" and is_scalar_type_name(tok.text):
            self.lex.next()
            return tok.text
        self.lex.reset(mark)
        return None

    def parse_attr(self) -> Any:
        tok = self.lex.peek()
        kind, text = tok.kind, tok.text
        if kind == "str":
            self.lex.next()
            value = self.unescape(tok)
            self._typed_suffix()  # a typed string attr (rare): the type is irrelevant here
            return value
        if kind in ("int", "float", "hex"):
            self.lex.next()
            ty = self._typed_suffix()
            if kind == "float" or (ty is not None and not _is_int_type(ty)):
                ty = ty or "f64"
                if kind == "hex":  # a float attr spelled as its bit pattern
                    return ir.FloatAttr(float(_bits_to_float(self, int(text, 16), ty, tok)), ty)
                return ir.FloatAttr(float(text), ty)
            return ir.IntegerAttr(self.int_value(tok, ty or "i64"), ty or "i64")
        if kind == "punct":
            if text == "[":
                self.lex.next()
                items: list[Any] = []
                while not self.accept("]"):
                    items.append(self.parse_attr())
                    if not self.at("]"):
                        self.expect(",", "or ']' in array attribute")
                return items
            if text == "{":
                return self.parse_attr_dict()
            if text == "(":
                return ir.TypeAttr(self.parse_type())
        if kind == "sym":
            self.lex.next()
            parts = [self._sym_name(tok)]
            while self.at("::"):
                self.lex.next()
                parts.append(self._sym_name(self.expect_kind("sym", "symbol after '::'")))
            return ir.SymbolRef("::".join(parts))
        if kind == "hash":
            return self._hash_attr()
        if kind == "bang":
            return ir.TypeAttr(self.parse_type())
        if kind == "id":
            if text in ("true", "false"):
                self.lex.next()
                return text == "true"
            if text == "unit":
                self.lex.next()
                return True
            if text == "dense":
                return self.parse_dense()
            if text == "array":
                return self._dense_array()
            if text in ("tensor", "tuple", "complex", "vector", "memref") or is_scalar_type_name(text):
                return ir.TypeAttr(self.parse_type())
            if self.lex.followed_by(tok, "<"):
                # affine_map<...>, dense_resource<...>, distinct[..]<...>, sparse<...>: keep text
                self.lex.next()
                return ir.OpaqueAttr(text + self.lex.balanced(f"{text} attribute"))
        raise self.error(f"expected attribute value, found {self.lex.describe(tok)}", tok)

    def _sym_name(self, tok: Token) -> str:
        name = tok.text[1:]
        return self.unescape(Token("str", name, tok.start)) if name.startswith('"') else name

    def _hash_attr(self) -> Any:
        tok = self.lex.next()
        name = tok.text[1:]
        if not self.lex.followed_by(tok, "<"):
            if tok.text in self.attr_aliases:
                return self.attr_aliases[tok.text]
            raise self.error(f"unknown attribute alias {tok.text}", tok)
        body_mark = self.lex.mark()
        raw = tok.text + self.lex.balanced("dialect attribute")
        end = self.lex.mark()
        self.lex.reset(body_mark)
        self.lex.next()  # '<'
        try:
            if "." not in name:
                # `#stablehlo<comparison_direction GT>` -> EnumAttr
                kind = self.expect_kind("id", "enum kind").text
                value = self.expect_kind("id", "enum value").text
                self.expect(">", "to close enum attribute")
                return ir.EnumAttr(name, kind, value)
            if name == "stablehlo.conv" and not self.at("raw"):
                return self.parse_conv_dims(">")
            self.accept("raw")  # `#stablehlo.conv<raw field = ...>` is a plain field list
            return self.parse_struct_body(name, ">")
        except ParseError:
            self.lex.reset(end)
            return ir.OpaqueAttr(raw)

    def parse_struct_body(self, name: str, close: str) -> ir.StructAttr:
        """`field = value, ...` up to `close` (consumed). Integer lists become tuples of int;
        bare words (e.g. `tf32`, `DEFAULT`) become TypeAttr for types, else str."""
        fields: dict[str, Any] = {}
        while not self.accept(close):
            key = self.expect_kind("id", "struct field name").text
            self.expect("=", "after struct field name")
            fields[key] = self.parse_field_value()
            if not self.at(close):
                self.expect(",", f"or '{close}' in struct attribute")
        for f in STRUCT_LIST_FIELDS.get(name, ()):
            fields.setdefault(f, ())
        return ir.StructAttr(name, fields)

    def parse_field_value(self) -> Any:
        tok = self.lex.peek()
        if tok.kind == "int":
            self.lex.next()
            return self.int_value(tok, None)
        if tok.text == "[" and tok.kind == "punct":
            mark = self.lex.mark()
            try:
                return tuple(self.parse_int_list())  # struct fields are plain int lists
            except ParseError:
                self.lex.reset(mark)
        if tok.kind == "id" and not (tok.text in ("true", "false", "dense", "array")
                                     or is_scalar_type_name(tok.text)):
            self.lex.next()
            return tok.text
        return self.parse_attr()

    def parse_conv_dims(self, close: str | None) -> ir.StructAttr:
        """`[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]` -> StructAttr('stablehlo.conv', spec names)."""
        def group(roles: str) -> tuple[dict[str, int], list[int]]:
            self.expect("[", "in convolution dimension numbers")
            named: dict[str, int] = {}
            spatial: dict[int, int] = {}
            i = 0
            while not self.accept("]"):
                tok = self.lex.next()
                if tok.kind == "int" and self.int_value(tok, None) >= 0:
                    spatial[self.int_value(tok, None)] = i
                elif tok.kind == "id" and tok.text in roles and tok.text not in named:
                    named[tok.text] = i
                else:
                    raise self.error(f"unexpected {self.lex.describe(tok)} in convolution "
                                     "dimension numbers", tok)
                i += 1
                if not self.at("]"):
                    self.expect(",", "or ']' in convolution dimension numbers")
            if len(named) != len(roles) or sorted(spatial) != list(range(len(spatial))):
                raise self.error("incomplete convolution dimension numbers")
            return named, [spatial[k] for k in sorted(spatial)]

        lhs, lhs_sp = group("bf")
        self.expect("x", "in convolution dimension numbers")
        rhs, rhs_sp = group("io")
        self.expect("->", "in convolution dimension numbers")
        out, out_sp = group("bf")
        if close is not None:
            self.expect(close, "to close convolution dimension numbers")
        return ir.StructAttr("stablehlo.conv", {
            "input_batch_dimension": lhs["b"], "input_feature_dimension": lhs["f"],
            "input_spatial_dimensions": tuple(lhs_sp),
            "kernel_input_feature_dimension": rhs["i"],
            "kernel_output_feature_dimension": rhs["o"],
            "kernel_spatial_dimensions": tuple(rhs_sp),
            "output_batch_dimension": out["b"], "output_feature_dimension": out["f"],
            "output_spatial_dimensions": tuple(out_sp)})

    def _dense_array(self) -> ir.DenseArray:
        """`array<i64: 1, 2>` -> DenseArray (1, 2) of i64; `array<i1: true>` -> (True,)."""
        self.lex.next()
        self.expect("<", "after 'array'")
        ty = self.expect_kind("id", "dense array element type")
        out: list[Any] = []
        if self.accept(":"):
            while True:
                tok = self.lex.next()
                if tok.kind in ("int", "hex") and _is_int_type(ty.text):
                    out.append(self.int_value(tok, ty.text))
                elif tok.kind in ("int", "float") and not _is_int_type(ty.text):
                    out.append(float(tok.text))
                elif tok.kind == "id" and tok.text in ("true", "false"):
                    out.append(tok.text == "true")
                else:
                    raise self.error(f"expected {ty.text} element in dense array, found "
                                     f"{self.lex.describe(tok)}", tok)
                if not self.accept(","):
                    break
        self.expect(">", "to close dense array")
        return ir.DenseArray(out, ty.text)

    # ------------------------------------------------------------------ dense<...>
    def parse_dense(self) -> ir.DenseElements:
        start = self.lex.next()  # 'dense'
        lt = self.expect("<", "after 'dense'")
        text = self.lex.text
        body_start = lt.start + 1
        close = _dense_end(text, body_start)
        if close < 0:
            raise self.error("unterminated dense literal: expected '>'", lt)
        body = text[body_start:close]
        self.lex.reset(close + 1)
        self.lex.last_end = close + 1
        self.expect(":", "and a type after dense literal")
        ty_tok = self.lex.peek()
        ty = self.parse_type()
        if not isinstance(ty, ir.TensorType) or any(d is None for d in ty.shape):
            raise self.error(f"dense literal needs a static tensor type, found {ty}", ty_tok)
        try:
            dtype = np.dtype(np.int64) if ty.element == "index" else ir.numpy_dtype(ty.element)
        except NotImplementedError:
            raise self.error(f"dense literal of unsupported element type {ty.element}", ty_tok)
        count = math.prod(ty.shape)
        lead = _BLANK.match(body).end()
        if body.startswith('"', lead):
            end = body.find('"', lead + 1) + 1
            if end == 0 or _BLANK.match(body, end).end() != len(body):
                raise self.lex.error("malformed hex dense literal", body_start + lead)
            return self._dense_hex(body[lead:end], ty, dtype, count, body_start + lead)
        return self._dense_literal(body, body_start, ty, dtype, count, start)

    def _dense_hex(self, s: str, ty: ir.TensorType, dtype: np.dtype, count: int,
                   offset: int) -> ir.DenseElements:
        """`dense<"0x...">`: little-endian element bytes, one byte per element for sub-byte
        types (their value in the low bits, as MLIR stores them); one element is a splat."""
        m = re.fullmatch(r'"0x([0-9a-fA-F]*)"', s)
        if m is None or len(m.group(1)) % 2:
            raise self.lex.error("malformed hex dense literal", offset)
        size = dtype.itemsize
        nbytes = len(m.group(1)) // 2
        splat = nbytes == size and count != 1
        if not splat and nbytes != size * count:
            raise self.lex.error(f"hex dense literal has {nbytes} bytes, expected "
                                 f"{size * count} ({count} x {size})", offset)
        raw = np.frombuffer(bytes.fromhex(m.group(1)), np.uint8)
        bits = ir.SUB_BYTE_BITS.get(ty.element)
        if bits is not None and raw.size and int(raw.max()) >> bits:
            raise self.lex.error(f"hex dense literal has a byte wider than {ty.element}'s "
                                 f"{bits} bits", offset)
        values = raw.view(dtype.newbyteorder("<")).astype(dtype)
        if splat:
            return ir.DenseElements(ty, splat=values[0])
        return ir.DenseElements(ty, values.reshape(ty.shape))

    def _dense_literal(self, body: str, base: int, ty: ir.TensorType, dtype: np.dtype,
                       count: int, start: Token) -> ir.DenseElements:
        # Read the nested list with a flat token scan, tracking the shape level by level.
        flat: list[Any] = []
        dims: dict[int, int] = {}   # depth -> length seen
        counts: list[int] = []      # per open bracket: elements so far
        pos, depth, complex_part = 0, 0, None
        scalar_seen = False
        # ml_dtypes floats (bf16, f8*) have numpy kind 'V', so decide by the MLIR spelling.
        is_float = ty.element.startswith(("f", "bf", "complex"))
        irange = int_range(ty.element)
        n = len(body)
        while True:
            m = _DENSE_TOK.match(body, pos)
            if m is None:
                blank = _BLANK.match(body, pos).end()
                if blank < n:
                    raise self.lex.error("bad token in dense literal", base + blank)
                break
            pos = m.end()
            punct, boolean, num = m.groups()
            at = base + m.start(m.lastindex or 0)
            if punct == "[":
                if complex_part is not None or scalar_seen and depth == 0:
                    raise self.lex.error("unexpected '[' in dense literal", at)
                if counts:
                    counts[-1] += 1
                counts.append(0)
                depth += 1
            elif punct == "]":
                if not counts or complex_part is not None:
                    raise self.lex.error("unexpected ']' in dense literal", at)
                length = counts.pop()
                if dims.setdefault(depth, length) != length:
                    raise self.lex.error("ragged dense literal", at)
                depth -= 1
            elif punct == ",":
                if not counts and complex_part is None:
                    raise self.lex.error("unexpected ',' in dense literal", at)
            elif punct == "(":
                if complex_part is not None or not ty.element.startswith("complex"):
                    raise self.lex.error("unexpected '(' in dense literal", at)
                complex_part = []
            elif punct == ")":
                if complex_part is None or len(complex_part) != 2:
                    raise self.lex.error("complex element needs (real, imag)", at)
                flat.append(complex(*complex_part))
                if counts:
                    counts[-1] += 1
                complex_part = None
                scalar_seen = True
            else:
                if depth == 0 and scalar_seen or (depth == 0 and counts):
                    raise self.lex.error("unexpected element after dense splat", at)
                if boolean is not None:
                    v: Any = boolean == "true"
                elif num.lstrip("+-").startswith("0x"):
                    if len(num) > MAX_INT_DIGITS:
                        raise self.lex.error("hex literal too long", at)
                    if num[0] in "+-":  # a bit pattern has no sign
                        raise self.lex.error("hex literal in a dense literal cannot have a sign", at)
                    bits = int(num, 16)
                    # inside a complex pair a hex literal is the bits of one component
                    elem = ty.element[len("complex<"):-1] if complex_part is not None else ty.element
                    v = _bits_to_float(self, bits, elem, None, at) if is_float and not elem.startswith("complex") \
                        else _bits_to_int(self, bits, elem, at)
                elif num.lstrip("+-") in ("inf", "nan"):
                    v = float(num)
                else:
                    v = float(num) if is_float else _to_int(self, num, at, ty.element, irange)
                if complex_part is not None:
                    if len(complex_part) >= 2:
                        raise self.lex.error("complex element needs (real, imag)", at)
                    complex_part.append(float(v))
                    continue
                flat.append(v)
                if counts:
                    counts[-1] += 1
                scalar_seen = True
            if pos >= n:
                break
        if counts or complex_part is not None:
            raise self.lex.error("unterminated list in dense literal", base + n)
        shape = tuple(dims[d] for d in sorted(dims))
        try:
            if not dims and len(flat) == 1:  # a splat: kept as its one element
                return ir.DenseElements(ty, splat=np.array(flat[0], dtype=dtype))
            if not flat and count == 0 and (not dims or 0 in shape):
                return ir.DenseElements(ty, np.zeros(ty.shape, dtype=dtype))
            if shape != ty.shape or len(flat) != count:
                raise self.error(f"dense literal has shape {list(shape)} ({len(flat)} elements) "
                                 f"but the type is {ty}", start)
            return ir.DenseElements(ty, np.array(flat, dtype=dtype).reshape(ty.shape))
        except (OverflowError, ValueError, TypeError) as e:
            raise self.error(f"dense literal value does not fit {ty.element}: {e}", start)


def _dense_end(text: str, start: int) -> int:
    """Offset of the `>` closing a dense literal body at `start` (comments skipped), or -1."""
    i = start
    while True:
        close = text.find(">", i)
        comment = text.find("//", i)
        if close < 0 or comment < 0 or close < comment:
            return close
        nl = text.find("\n", comment)
        if nl < 0:
            return -1
        i = nl


def _is_int_type(name: str) -> bool:
    return name.startswith(("i", "si", "ui")) or name == "index"


def _to_int(p: AttrParser, num: str, at: int, element: str, irange: tuple[int, int] | None) -> int:
    """A decimal integer element, range-checked for `element` (signless values above the
    signed maximum wrap, as MLIR stores them)."""
    if len(num) > MAX_INT_DIGITS:
        raise p.lex.error("integer literal too long in dense literal", at)
    try:
        v = int(num)
    except ValueError:
        raise p.lex.error(f"expected integer in dense literal, found {num!r}", at)
    if irange is not None:
        lo, hi = irange
        if not lo <= v <= hi:
            raise p.lex.error(f"integer {v} out of range for {element}", at)
        if lo < 0 and hi > -lo and v >= -lo:  # signless: the bit pattern of a negative value
            v -= hi + 1
    return v


def _bits_to_int(p: AttrParser, bits: int, element: str, at: int) -> int:
    """A hex integer element is a bit pattern of the element's width (two's complement unless
    the type is unsigned)."""
    m = re.fullmatch(r"(s|u)?i(\d+)", element)
    width = 64 if element == "index" else int(m.group(2)) if m else None
    if width is None:
        return bits
    if bits >> width:
        raise p.lex.error(f"hex literal too wide for {element}", at)
    if not element.startswith("u") and bits >> (width - 1):
        bits -= 1 << width
    return bits


def _bits_to_float(p: AttrParser, bits: int, element: str, tok: Token | None, at: int = 0) -> Any:
    """Reinterpret a hex literal (`0x7FC00000`) as the bit pattern of a float of `element`."""
    try:
        dtype = ir.numpy_dtype(element)
    except NotImplementedError:
        dtype = np.dtype(np.float64)
    if not element.startswith(("f", "bf")):
        dtype = np.dtype(np.float64)
    width = ir.SUB_BYTE_BITS.get(element, 8 * dtype.itemsize)
    if bits >= 1 << width:
        raise p.lex.error(f"hex literal too wide for {element}", tok.start if tok else at)
    return np.frombuffer(bits.to_bytes(dtype.itemsize, "little"), dtype)[0]
