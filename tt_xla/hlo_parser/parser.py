"""Recursive-descent parser: module, functions, operations (generic and StableHLO pretty forms).

Pretty forms are normalized to the attribute names the generic form uses, so both spellings of
an op give the same ir.Operation. Forms with their own syntax (slice ranges, compare, reduce,
while, call, custom_call, composite, get_tuple_element, constant) have readers; every other
pretty form StableHLO and CHLO define (see StablehloOps.td / ChloOps.td) is a sequence of items
read by the "sweep": operands, `key = value` (normalized via _KEYED), bare keywords,
parenthesized item groups (`chlo.top_k(%0, k = 2)`, `convolution(%a, %b)`), attr-dicts and
regions, then `: types`. Only tokens decide where an op ends (line breaks and comments are
whitespace everywhere, as in MLIR): at its `:` types, or where the next item is not joined by
a comma and begins another operation. Rejecting unsupported ops is the compiler's job.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from . import ir
from .attributes import AttrParser
from .lexer import ParseError, Token
from .locations import LocNode, LocResolver, parse_loc

# Scalar StableHLO attributes the spec types as si64/si32: both forms give a plain int, matching
# the pretty forms (`iota dim = 0`, `concatenate ..., dim = 0`, `get_tuple_element %t[0]`).
_INT_ATTRS = frozenset({
    "iota_dimension", "dimension", "index", "index_vector_dim", "feature_group_count",
    "batch_group_count", "exponent_bits", "mantissa_bits", "split_dimension", "concat_dimension",
    "split_count", "all_gather_dim", "scatter_dimension", "feature_index", "handle",
})

# Pretty `key = value` keywords -> (attribute name, how to read the value).
_CONV_KEYS = {"dim_numbers": ("dimension_numbers", "conv"), "window": ("", "window")}
_EINSUM_KEYS = {"config": ("einsum_config", "attr")}
_KEYED: dict[str, dict[str, tuple[str, str]]] = {
    "stablehlo.broadcast_in_dim": {"dims": ("broadcast_dimensions", "ints")},
    "stablehlo.transpose": {"dims": ("permutation", "ints")},
    "stablehlo.reverse": {"dims": ("dimensions", "ints")},
    "stablehlo.iota": {"dim": ("iota_dimension", "int")},
    "stablehlo.get_dimension_size": {"dim": ("dimension", "int")},
    "stablehlo.concatenate": {"dim": ("dimension", "int")},
    "stablehlo.pad": {"low": ("edge_padding_low", "ints"), "high": ("edge_padding_high", "ints"),
                      "interior": ("interior_padding", "ints")},
    "stablehlo.dot_general": {"batching_dims": ("batching", "pair"),
                              "contracting_dims": ("contracting", "pair"),
                              "precision": ("precision_config", "precision"),
                              "algorithm": ("algorithm", "algorithm")},
    "stablehlo.dot": {"precision": ("precision_config", "precision")},
    "stablehlo.reduce_precision": {"format": ("", "format")},
    "stablehlo.rng_bit_generator": {"algorithm": ("rng_algorithm", "enum:rng_algorithm")},
    "stablehlo.rng": {"distribution": ("rng_distribution", "enum:rng_distribution")},
    "stablehlo.fft": {"type": ("fft_type", "enum:fft_type"), "length": ("fft_length", "ints")},
    "stablehlo.dynamic_slice": {"sizes": ("slice_sizes", "ints")},
    "stablehlo.convolution": _CONV_KEYS, "stablehlo.dynamic_conv": _CONV_KEYS,
    "stablehlo.broadcast": {"sizes": ("broadcast_sizes", "ints")},
    "stablehlo.dynamic_broadcast_in_dim": {"dims": ("broadcast_dimensions", "ints")},
    "stablehlo.dynamic_iota": {"dim": ("iota_dimension", "int")},
    "stablehlo.set_dimension_size": {"dim": ("dimension", "int")},
    "stablehlo.einsum": _EINSUM_KEYS, "stablehlo.unary_einsum": _EINSUM_KEYS,
}
# Bare words that begin an operation (func's short forms); any dotted word does too.
_OP_WORDS = frozenset({"return", "call", "func"})
_FORMAT = re.compile(r"e(\d+)m(\d+)")
_WS = r"(?:\s|//[^\n]*)*"
_DEFINES = re.compile(rf"{_WS}(?:=|:{_WS}\d+{_WS}[=,])")
_STOP_PUNCT = frozenset({":", "}", ")", "]"})


class _Parts:
    """What an op-form reader produces; the caller adds results and the location."""
    __slots__ = ("operands", "attrs", "regions", "result_types")

    def __init__(self, operands: list[ir.Value], attrs: dict[str, Any],
                 regions: list[ir.Region], result_types: list[Any]):
        self.operands, self.attrs, self.regions = operands, attrs, regions
        self.result_types = result_types


class Parser(AttrParser):
    def __init__(self, text: str, filename: str = "<module>"):
        super().__init__(text, filename)
        self.locs = LocResolver(self.lex)
        self._pending: list[tuple[Any, LocNode]] = []   # objects whose .loc is set at the end
        self._scopes: list[dict[str, ir.Value]] = []

    # ================================================================== file / module
    def parse_file(self) -> ir.Module:
        module: ir.Module | None = None
        loose: dict[str, ir.Function] = {}
        while self.lex.peek().kind != "eof":
            tok = self.lex.peek()
            if tok.kind in ("hash", "bang"):
                self._alias_definition()
            elif module is None and not loose and tok.kind == "id" and tok.text == "module":
                module = self._module()
            elif module is None and not loose and tok.kind == "str" and self.unescape(tok) == "builtin.module":
                module = self._generic_module()
            elif module is None and tok.kind == "id" and tok.text == "func.func":
                self._scopes = [{}]
                fn = self._func()
                self._add_function(loose, fn, tok)
            else:
                what = "alias definition" if module is not None else "'module', 'func.func' or alias definition"
                raise self.error(f"expected {what}, found {self.lex.describe(tok)}", tok)
        if module is None:
            if not loose:
                raise self.error("expected a module, found end of input")
            module = ir.Module(None, {}, loose)
        for obj, node in self._pending:
            obj.loc = self.locs.resolve(node)
        return module

    def _alias_definition(self) -> None:
        tok = self.lex.next()
        self.expect("=", f"after alias {tok.text}")
        if tok.kind == "bang":
            self.type_aliases[tok.text] = self.parse_type()
        elif self.at("loc"):
            if tok.text in self.locs.aliases:
                raise self.error(f"redefinition of location alias {tok.text}", tok)
            self.locs.aliases[tok.text] = parse_loc(self.lex, self.unescape)
        else:
            self.attr_aliases[tok.text] = self.parse_attr()

    def _module(self) -> ir.Module:
        self.lex.next()  # 'module'
        name = None
        if self.lex.peek().kind == "sym":
            name = self._sym_name(self.lex.next())
        attrs: dict[str, Any] = {}
        if self.accept("attributes"):
            attrs = self.parse_attr_dict()
        self.expect("{", "to start module body")
        self._scopes = [{}]
        functions: dict[str, ir.Function] = {}
        while not self.accept("}"):
            tok = self.lex.peek()
            item = self._operation(allow_func=True)
            if isinstance(item, ir.Function):
                self._add_function(functions, item, tok)
        self._opt_loc()
        return ir.Module(name, attrs, functions)

    def _generic_module(self) -> ir.Module:
        self._scopes = [{}]
        op = self._operation(allow_func=True)
        assert isinstance(op, ir.Operation)
        functions: dict[str, ir.Function] = {}
        for region in op.regions:
            for block in region.blocks:
                for item in block.ops:
                    if isinstance(item, ir.Function):
                        functions[item.name] = item
        attrs = {k: v for k, v in op.attributes.items() if k not in ("sym_name", "sym_visibility")}
        name = op.attributes.get("sym_name")
        return ir.Module(name if isinstance(name, str) else None, attrs, functions)

    def _add_function(self, table: dict[str, ir.Function], fn: ir.Function, tok: Token) -> None:
        if fn.name in table:
            raise self.error(f"redefinition of function @{fn.name}", tok)
        table[fn.name] = fn

    # ================================================================== functions
    def _func(self) -> ir.Function:
        self.lex.next()  # 'func.func'
        visibility = "public"
        tok = self.lex.peek()
        if tok.kind == "id" and tok.text in ("public", "private", "nested"):
            visibility = self.lex.next().text
        name = self._sym_name(self.expect_kind("sym", "function name (@name)"))
        outer = self._scopes
        self._scopes = [{}]  # function bodies are isolated from above
        try:
            self.expect("(", "to start function arguments")
            args: list[ir.Value] = []
            arg_attrs: list[dict[str, Any]] = []
            while not self.accept(")"):
                vtok = self.expect_kind("val", "argument name (%name)")
                self.expect(":", "after argument name")
                value = ir.Value(vtok.text, self.parse_type())
                arg_attrs.append(self.parse_attr_dict() if self.at("{") else {})
                self._opt_loc(value)
                self._define(vtok, value)
                args.append(value)
                if not self.at(")"):
                    self.expect(",", "or ')' in function arguments")
            result_types: list[Any] = []
            result_attrs: list[dict[str, Any]] = []
            if self.accept("->"):
                if self.accept("("):
                    while not self.accept(")"):
                        result_types.append(self.parse_type())
                        result_attrs.append(self.parse_attr_dict() if self.at("{") else {})
                        if not self.at(")"):
                            self.expect(",", "or ')' in function results")
                else:
                    result_types.append(self.parse_type())
                    result_attrs.append({})
            if self.accept("attributes"):
                self.parse_attr_dict()  # function-level attributes have no home in ir.Function
            body = ir.Block(args)
            if self.at("{"):
                region = self._region(preset=args)
                if len(region.blocks) != 1:
                    raise self.error(f"function @{name} must have exactly one block")
                body = region.blocks[0]
            fn = ir.Function(name, args, result_types, body, visibility, arg_attrs, result_attrs)
            self._opt_loc(fn)
            return fn
        finally:
            self._scopes = outer

    def _generic_func(self, op: ir.Operation, tok: Token) -> ir.Function:
        ftype = op.attributes.get("function_type")
        name = op.attributes.get("sym_name")
        if not (isinstance(ftype, ir.TypeAttr) and isinstance(ftype.type, ir.FunctionType)
                and isinstance(name, str) and len(op.regions) == 1
                and len(op.regions[0].blocks) == 1):
            raise self.error("generic func.func needs function_type, sym_name and one block", tok)
        body = op.regions[0].blocks[0]
        n = len(ftype.type.inputs)
        if len(body.args) != n:
            raise self.error(f"function @{name} has {len(body.args)} block arguments but its type "
                             f"has {n} inputs", tok)
        def dicts(key: str, count: int) -> list[dict[str, Any]]:
            v = op.attributes.get(key)
            return [d if isinstance(d, dict) else {} for d in v] if isinstance(v, list) and len(v) == count else [{} for _ in range(count)]
        vis = op.attributes.get("sym_visibility", "public")
        return ir.Function(name, body.args, list(ftype.type.results), body,
                           vis if isinstance(vis, str) else "public",
                           dicts("arg_attrs", n), dicts("res_attrs", len(ftype.type.results)),
                           op.loc)

    # ================================================================== regions and values
    def _region(self, preset: list[ir.Value] | None = None,
                arg_toks: list[tuple[Token, ir.Value]] | None = None,
                allow_func: bool = False) -> ir.Region:
        """`{ [^bb0(args):] ops... }`. `preset` are already-defined entry args (function args);
        `arg_toks` are entry args to define in the region's own scope (pretty reduce/while)."""
        self.expect("{", "to start region")
        self._scopes.append({})
        try:
            blocks: list[ir.Block] = []
            block = ir.Block(list(preset or []))
            for tok, value in arg_toks or []:
                self._define(tok, value)
                block.args.append(value)
            first = True
            while not self.accept("}"):
                if self.lex.peek().kind == "caret":
                    if not first or block.args:  # a label after ops (or entry args) opens a block
                        blocks.append(block)
                        block = ir.Block()
                    self._block_label(block)
                else:
                    block.ops.append(self._operation(allow_func))
                first = False
            blocks.append(block)
            return ir.Region(blocks)
        finally:
            self._scopes.pop()

    def _block_label(self, block: ir.Block) -> None:
        self.lex.next()  # ^bbN
        if self.accept("("):
            while not self.accept(")"):
                vtok = self.expect_kind("val", "block argument (%name)")
                self.expect(":", "after block argument")
                value = ir.Value(vtok.text, self.parse_type())
                self._opt_loc()
                self._define(vtok, value)
                block.args.append(value)
                if not self.at(")"):
                    self.expect(",", "or ')' in block arguments")
        self.expect(":", "after block label")

    def _define(self, tok: Token, value: ir.Value, name: str | None = None) -> None:
        name = name or tok.text
        for scope in self._scopes:
            if name in scope:
                raise self.error(f"redefinition of value {name}", tok)
        self._scopes[-1][name] = value

    def _use(self) -> ir.Value:
        tok = self.expect_kind("val", "operand (%name)")
        for scope in reversed(self._scopes):
            v = scope.get(tok.text)
            if v is not None:
                return v
        raise self.error(f"use of undefined value {tok.text}", tok)

    def _operands(self) -> list[ir.Value]:
        """`%a, %b, ...`; a ',' is only consumed when another value follows it."""
        out: list[ir.Value] = []
        while self.lex.peek().kind == "val":
            out.append(self._use())
            if not self.at(","):
                break
            mark = self.lex.mark()
            self.lex.next()
            if self.lex.peek().kind != "val":
                self.lex.reset(mark)
                break
        return out

    def _opt_loc(self, target: Any = None) -> None:
        tok = self.lex.peek()
        if tok.kind == "id" and tok.text == "loc" and self.lex.followed_by(tok, "("):
            node = parse_loc(self.lex, self.unescape)
            if target is not None:
                self._pending.append((target, node))

    # ================================================================== operations
    def _operation(self, allow_func: bool = False) -> Any:
        start = self.lex.peek()
        defs: list[tuple[Token, int]] = []
        if start.kind == "val":
            while True:
                vtok = self.expect_kind("val", "result name (%name)")
                if "#" in vtok.text:
                    raise self.error(f"result name {vtok.text} cannot have a '#' suffix", vtok)
                count = 1
                if self.accept(":"):
                    ctok = self.expect_kind("int", "result count")
                    count = self.int_value(ctok, None)
                    if count < 1:
                        raise self.error("result count must be positive", ctok)
                defs.append((vtok, count))
                if not self.accept(","):
                    break
            self.expect("=", "after operation results")
        nres = sum(c for _, c in defs)
        tok = self.lex.peek()
        if tok.kind == "id" and tok.text == "func.func":
            if not allow_func or defs:
                raise self.error("func.func is only allowed at module level", tok)
            return self._func()
        if tok.kind == "str":
            self.lex.next()
            name = self.unescape(tok)
            parts = self._generic_body(nres, allow_func=name == "builtin.module")
        elif tok.kind == "id":
            self.lex.next()
            name = tok.text if "." in tok.text else "func." + tok.text
            reader = _PRETTY.get(name)
            parts = getattr(self, reader)(name, nres) if reader else self._sweep(name, nres)
        else:
            raise self.error(f"expected operation, found {self.lex.describe(tok)}", tok)
        if len(parts.result_types) != nres:
            raise self.error(f"operation '{name}' defines {nres} results but its type gives "
                             f"{len(parts.result_types)}", start)
        if name.startswith("stablehlo."):
            for k, v in parts.attrs.items():
                if k in _INT_ATTRS and isinstance(v, ir.IntegerAttr):
                    parts.attrs[k] = v.value
        results: list[ir.Value] = []
        types = iter(parts.result_types)
        for vtok, count in defs:
            if count == 1:
                value = ir.Value(vtok.text, next(types))
                self._define(vtok, value)
                self._scopes[-1][vtok.text + "#0"] = value
                results.append(value)
            else:
                for i in range(count):
                    value = ir.Value(f"{vtok.text}#{i}", next(types))
                    self._define(vtok, value, value.name)
                    results.append(value)
        op = ir.Operation(name, parts.operands, results, parts.attrs, parts.regions)
        self._opt_loc(op)
        if name == "func.func":
            if not allow_func:
                raise self.error("func.func is only allowed at module level", tok)
            fn = self._generic_func(op, tok)
            self._opt_loc_copy(op, fn)
            return fn
        if name == "stablehlo.reduce" and parts.attrs.pop("_applies", False):
            # The compact `applies` form: the implied body ops share the reduce's location.
            for inner in parts.regions[0].blocks[0].ops:
                self._opt_loc_copy(op, inner)
        return op

    def _opt_loc_copy(self, src: ir.Operation, dst: ir.Operation) -> None:
        for obj, node in reversed(self._pending):
            if obj is src:
                self._pending.append((dst, node))
                return

    def _generic_body(self, nres: int, allow_func: bool = False) -> _Parts:
        """`(%a, %b) [successors] <{props}> ({regions}) {attrs} : (T, T) -> T`."""
        self.expect("(", "to start operand list")
        operands = self._operands()
        self.expect(")", "to close operand list")
        if self.at("["):
            self.lex.balanced("successor list")  # branch targets: no multi-block CFGs here
        attrs: dict[str, Any] = {}
        if self.accept("<"):
            attrs.update(self.parse_attr_dict())
            self.expect(">", "to close properties")
        regions: list[ir.Region] = []
        if self.accept("("):
            while not self.accept(")"):
                regions.append(self._region(allow_func=allow_func))
                if not self.at(")"):
                    self.expect(",", "or ')' in region list")
        if self.at("{"):
            attrs.update(self.parse_attr_dict())
        colon = self.expect(":", "and the operation's function type")
        ftype = self.parse_type()
        if not isinstance(ftype, ir.FunctionType):
            raise self.error(f"expected function type after ':', found {ftype}", colon)
        self._check_inputs(operands, ftype, colon)
        return _Parts(operands, attrs, regions, list(ftype.results))

    def _check_inputs(self, operands: list[ir.Value], ftype: ir.FunctionType, tok: Token) -> None:
        if len(ftype.inputs) != len(operands):
            raise self.error(f"type mismatch: {len(operands)} operands but the function type has "
                             f"{len(ftype.inputs)} inputs", tok)

    def _trailing_types(self, operands: list[ir.Value] | None, nres: int) -> list[Any]:
        """`: (ins) -> outs` (checked against operands) or `: T, T` (results are the last nres)."""
        colon = self.expect(":", "and the operation's type")
        first = self.parse_type()
        if isinstance(first, ir.FunctionType):
            if operands is not None:
                self._check_inputs(operands, first, colon)
            return list(first.results)
        types = [first]
        while self.accept(","):
            types.append(self.parse_type())
        if self.accept("->"):  # chlo's `: T -> T` spelling of a function type without parens
            ftype = ir.FunctionType(tuple(types), tuple(self.parse_result_types()))
            if operands is not None:
                self._check_inputs(operands, ftype, colon)
            return list(ftype.results)
        if nres == 0:
            return []
        if len(types) < nres:
            raise self.error(f"expected {nres} result types, found {len(types)}", colon)
        return types[len(types) - nres:]

    # ------------------------------------------------------------------ pretty forms
    def _p_call(self, name: str, nres: int) -> _Parts:
        return self._symbol_call("callee", "call", nres, ir.SymbolRef)

    def _symbol_call(self, attr: str, what: str, nres: int, wrap: Any) -> _Parts:
        """`@sym(%a, %b) {attrs} : types`, shared by call and custom_call."""
        sym = wrap(self._sym_name(self.expect_kind("sym", f"{what} target (@name)")))
        self.expect("(", f"to start {what} operands")
        operands = self._operands()
        self.expect(")", f"to close {what} operands")
        attrs: dict[str, Any] = {attr: sym}
        if self.at("{"):
            attrs.update(self.parse_attr_dict())
        return _Parts(operands, attrs, [], self._trailing_types(operands, nres))

    def _p_return(self, name: str, nres: int) -> _Parts:
        operands = self._operands()
        if operands:
            self._types_for(operands, self.expect(":", "and operand types"))
        return _Parts(operands, {}, [], [])

    def _types_for(self, operands: list, colon: Any) -> list[Any]:
        """`T, T, ...` after a colon: one type per operand."""
        types = [self.parse_type()]
        while self.accept(","):
            types.append(self.parse_type())
        if len(types) != len(operands):
            raise self.error(f"type mismatch: {len(operands)} operands but {len(types)} types", colon)
        return types

    def _p_compare(self, name: str, nres: int) -> _Parts:
        direction = self.expect_kind("id", "comparison direction (EQ, NE, GE, GT, LE, LT)")
        attrs: dict[str, Any] = {
            "comparison_direction": ir.EnumAttr("stablehlo", "comparison_direction", direction.text)}
        self.expect(",", "after comparison direction")
        operands = [self._use()]
        self.expect(",", "between compare operands")
        operands.append(self._use())
        if self.accept(","):
            kind = self.expect_kind("id", "comparison type (FLOAT, SIGNED, ...)")
            attrs["compare_type"] = ir.EnumAttr("stablehlo", "comparison_type", kind.text)
        return _Parts(operands, attrs, [], self._trailing_types(operands, nres))

    def _p_slice(self, name: str, nres: int) -> _Parts:
        operands = [self._use()]
        starts: list[int] = []
        limits: list[int] = []
        strides: list[int] = []
        self.expect("[", "to start slice ranges")
        while not self.accept("]"):
            starts.append(self.parse_int("slice start"))
            self.expect(":", "in slice range start:limit[:stride]")
            limits.append(self.parse_int("slice limit"))
            strides.append(self.parse_int("slice stride") if self.accept(":") else 1)
            if not self.at("]"):
                self.expect(",", "or ']' in slice ranges")
        attrs = {"start_indices": ir.DenseArray(starts), "limit_indices": ir.DenseArray(limits),
                 "strides": ir.DenseArray(strides)}
        return _Parts(operands, attrs, [], self._trailing_types(operands, nres))

    def _p_constant(self, name: str, nres: int) -> _Parts:
        attrs: dict[str, Any] = self.parse_attr_dict() if self.at("{") else {}
        vtok = self.lex.peek()
        value = self.parse_attr()
        attrs["value"] = value
        if isinstance(value, ir.DenseElements):
            return _Parts([], attrs, [], [value.type] * nres)
        if self.at(":"):
            return _Parts([], attrs, [], self._trailing_types([], nres))
        raise self.error("expected a typed constant value (dense<...> : tensor<...>)", vtok)

    def _p_custom_call(self, name: str, nres: int) -> _Parts:
        return self._symbol_call("call_target_name", "custom_call", nres, str)

    def _p_composite(self, name: str, nres: int) -> _Parts:
        attrs: dict[str, Any] = {"name": self.unescape(self.expect_kind("str", "composite name"))}
        operands = self._operands()
        regions: list[ir.Region] = []
        if self.accept("("):  # `(composite_regions)`
            while not self.accept(")"):
                regions.append(self._region())
                if not self.at(")"):
                    self.expect(",", "or ')' in composite regions")
        if self.at("{"):
            attrs.update(self.parse_attr_dict())
        return _Parts(operands, attrs, regions, self._trailing_types(operands, nres))

    def _p_scan(self, name: str, nres: int) -> _Parts:
        """`chlo.scan (%in...) inits (%init...) dimension=0 [attributes {..}] {body} : (..) -> (..)`
        with the segment sizes the generic form carries."""
        def group(what: str) -> list[ir.Value]:
            self.expect("(", f"to start scan {what}")
            values = self._operands()
            self.expect(")", f"to close scan {what}")
            return values
        inputs = group("inputs")
        self.expect("inits", "in chlo.scan")
        inits = group("inits")
        self.expect("dimension", "in chlo.scan")
        self.expect("=", "after 'dimension'")
        attrs: dict[str, Any] = {"dimension": ir.IntegerAttr(self.parse_int("scan dimension"), "i64")}
        if self.accept("attributes"):
            attrs.update(self.parse_attr_dict())
        region = self._region()
        types = self._trailing_types(inputs + inits, nres)
        attrs["operandSegmentSizes"] = ir.DenseArray([len(inputs), len(inits)], "i32")
        attrs["resultSegmentSizes"] = ir.DenseArray([len(types) - len(inits), len(inits)], "i32")
        return _Parts(inputs + inits, attrs, [region], types)

    def _p_get_tuple_element(self, name: str, nres: int) -> _Parts:
        operands = [self._use()]
        self.expect("[", "before tuple index")
        index = self.parse_int("tuple index")
        self.expect("]", "after tuple index")
        return _Parts(operands, {"index": index}, [], self._trailing_types(operands, nres))

    def _p_while(self, name: str, nres: int) -> _Parts:
        self.expect("(", "to start while operands")
        names: list[Token] = []
        operands: list[ir.Value] = []
        while not self.accept(")"):
            names.append(self.expect_kind("val", "loop-carried name (%iterArg)"))
            self.expect("=", "after loop-carried name")
            operands.append(self._use())
            if not self.at(")"):
                self.expect(",", "or ')' in while operands")
        types: list[Any] = []
        if self.at(":"):
            types = self._types_for(operands, self.lex.next())
        elif operands:
            self.expect(":", "and loop-carried types")
        attrs = self.parse_attr_dict() if self.accept("attributes") else {}
        regions = []
        for keyword in ("cond", "do"):
            self.expect(keyword, "in while loop")
            regions.append(self._region(arg_toks=[(t, ir.Value(t.text, ty))
                                                  for t, ty in zip(names, types)]))
        return _Parts(operands, attrs, regions, types)

    def _p_reduce(self, name: str, nres: int) -> _Parts:
        if not self.at("("):  # not the pretty form printed by jax: read it generically
            return self._sweep(name, nres)
        inputs: list[ir.Value] = []
        inits: list[ir.Value] = []
        while True:
            self.expect("(", "to start reduce operand")
            inputs.append(self._use())
            self.expect("init", "in reduce operand (%x init: %v)")
            self.expect(":", "after 'init'")
            inits.append(self._use())
            self.expect(")", "to close reduce operand")
            if not self.accept(","):
                break
        applies: Token | None = None
        if self.accept("applies"):
            applies = self.expect_kind("id", "reduction op name")
        self.expect("across", "in reduce")
        self.expect("dimensions", "in reduce")
        self.expect("=", "after 'dimensions'")
        attrs: dict[str, Any] = {"dimensions": self.parse_int_list()}
        if self.at("{"):
            attrs.update(self.parse_attr_dict())
        operands = inputs + inits
        result_types = self._trailing_types(operands, nres)
        scalars = [ir.TensorType((), v.type.element) if isinstance(v.type, ir.TensorType)
                   else v.type for v in inits]
        if applies is not None:
            accs = [ir.Value(f"%lhs{i}", t) for i, t in enumerate(scalars)]
            xs = [ir.Value(f"%rhs{i}", t) for i, t in enumerate(scalars)]
            rs = [ir.Value(f"%{applies.text}{i}", t) for i, t in enumerate(scalars)]
            op_name = applies.text if "." in applies.text else "stablehlo." + applies.text
            block = ir.Block(accs + xs, [ir.Operation(op_name, accs + xs, rs),
                                         ir.Operation("stablehlo.return", rs, [])])
            attrs["_applies"] = True
            return _Parts(operands, attrs, [ir.Region([block])], result_types)
        self.expect("reducer", "or 'applies' in reduce")
        pairs: list[list[tuple[Token, ir.Value]]] = []
        while self.at("("):
            self.lex.next()
            pair: list[tuple[Token, ir.Value]] = []
            while not self.accept(")"):
                vtok = self.expect_kind("val", "reducer argument (%name)")
                self.expect(":", "after reducer argument")
                pair.append((vtok, ir.Value(vtok.text, self.parse_type())))
                self._opt_loc()
                if not self.at(")"):
                    self.expect(",", "or ')' in reducer arguments")
            if len(pair) != 2:
                raise self.error("each reducer group must be (accumulator, element)")
            pairs.append(pair)
        if len(pairs) != len(inputs):
            raise self.error(f"reduce has {len(inputs)} operands but {len(pairs)} reducer groups")
        # Generic block order (StableHLO spec / printer): all accumulators, then all elements.
        args = [p[0] for p in pairs] + [p[1] for p in pairs]
        return _Parts(operands, attrs, [self._region(arg_toks=args)], result_types)

    # ------------------------------------------------------------------ keyed forms and the sweep
    def _sweep(self, name: str, nres: int) -> _Parts:
        """Items (see the module doc), then `: types` if present."""
        parts = _Parts([], {}, [], [])
        positional: list[Any] = []
        self._items(_KEYED.get(name, {}), parts, positional, top=True)
        if positional:
            parts.attrs["_positional"] = positional
        if name == "stablehlo.dot_general":
            self._dot_numbers(parts.attrs)
        if self.at(":"):
            parts.result_types = self._trailing_types(parts.operands, nres)
        return parts

    def _begins_op(self, tok: Token) -> bool:
        """Whether `tok`, where an op could end, begins the next operation or block instead."""
        if tok.kind in ("val", "str", "caret", "sym", "eof"):
            return True
        return tok.kind == "id" and ("." in tok.text or tok.text in _OP_WORDS)

    def _at_loc(self) -> bool:
        tok = self.lex.peek()
        return tok.kind == "id" and tok.text == "loc" and self.lex.followed_by(tok, "(")

    def _items(self, table: dict[str, tuple[str, str]], parts: _Parts, positional: list[Any],
               top: bool) -> None:
        """Read items until a closer (`:`, `)`, `}`, `]`), a location, or (at the top level) a
        token that is not joined to the op by a comma and begins another operation."""
        first = True
        joined = True   # the next item follows a comma (or is the first)
        while True:
            tok = self.lex.peek()
            if tok.kind == "eof" or (tok.kind == "punct" and tok.text in _STOP_PUNCT) or self._at_loc():
                return
            if tok.kind == "punct" and tok.text == ",":
                self.lex.next()
                joined = True
                continue
            if not joined and self._begins_op(tok):
                return
            if first and top and tok.kind == "val" and self._val_defines():
                return  # an op with no items at all, followed by `%r = ...`
            self._item(table, parts, positional)
            first = joined = False

    def _val_defines(self) -> bool:
        """Whether the `%name` at the cursor is the result list of the next op (`%r = ...`,
        `%r:2 = ...`), not an operand (one regex over the text: this runs for most ops)."""
        tok = self.lex.peek()
        return _DEFINES.match(self.lex.text, tok.start + len(tok.text)) is not None

    def _item(self, table: dict[str, tuple[str, str]], parts: _Parts, positional: list[Any]) -> None:
        tok = self.lex.peek()
        if tok.kind == "val":
            parts.operands.append(self._use())
        elif tok.kind == "id" and tok.text == "attributes" and self.lex.followed_by(tok, "{"):
            self.lex.next()  # `attributes {...}` (an attr-dict with its keyword, as chlo.scan prints)
            parts.attrs.update(self.parse_attr_dict())
        elif tok.kind == "id" and not self.lex.followed_by(tok, "<"):
            self.lex.next()
            if self.accept("="):
                if tok.text in table:
                    self._keyed_value(table[tok.text], parts.attrs)
                else:
                    parts.attrs[tok.text] = self._sweep_value()
            else:
                parts.attrs[tok.text] = True
        elif tok.kind == "sym":
            self.lex.next()
            parts.attrs["sym_name"] = self._sym_name(tok)
            if self.accept("="):
                parts.attrs["value"] = self._sweep_value()
        elif tok.kind == "punct" and tok.text == "{":
            if self._brace_is_region():
                parts.regions.append(self._region())
            else:
                parts.attrs.update(self.parse_attr_dict())
        elif tok.kind == "punct" and tok.text == "(":
            mark = self.lex.mark()
            self.lex.next()
            inner = _Parts([], {}, [], [])
            inner_pos: list[Any] = []
            try:
                self._items(table, inner, inner_pos, top=False)
                self.expect(")", "to close parenthesized group")
            except ParseError:
                self.lex.reset(mark)
                positional.append(ir.OpaqueAttr(self.lex.balanced("parenthesized group")))
                return
            parts.operands.extend(inner.operands)
            parts.attrs.update(inner.attrs)
            parts.regions.extend(inner.regions)
            positional.extend(inner_pos)
        else:
            positional.append(self._sweep_value())

    def _brace_is_region(self) -> bool:
        mark = self.lex.mark()
        self.lex.next()
        a = self.lex.next()
        b = self.lex.peek()
        self.lex.reset(mark)
        if a.kind == "punct" and a.text == "}":
            return False
        return not (a.kind in ("id", "str") and b.kind == "punct" and b.text in ("=", ",", "}"))

    def _value_ends(self, keyword_ends: bool) -> bool:
        """Whether the cursor is where an item's value may end. After a whole attribute a
        bare word is the next keyword (`dimension=0 attributes {..}`); inside raw text it is
        not (`[b, f]x[o, i]`)."""
        tok = self.lex.peek()
        return (tok.kind == "eof" or (tok.kind == "punct" and tok.text in (",", ":", "{", "}", ")", "]"))
                or self._at_loc() or self._begins_op(tok) or (keyword_ends and tok.kind == "id"))

    def _sweep_value(self) -> Any:
        """An attribute if one parses cleanly up to where a value ends; else the raw text of
        the tokens up to there (brackets balanced), opaque."""
        mark = self.lex.mark()
        try:
            value = self.parse_attr()
            if self._value_ends(keyword_ends=True):
                return value
        except ParseError:
            pass
        self.lex.reset(mark)
        depth = 0
        end = mark
        while True:
            tok = self.lex.peek()
            if tok.kind == "eof":
                break
            if depth == 0 and end > mark and self._value_ends(keyword_ends=False):
                break
            if depth == 0 and end == mark and tok.kind == "punct" and tok.text in (",", ":", "{", "}", ")", "]"):
                break
            if tok.kind == "punct" and tok.text in "([{<":
                depth += 1
            elif tok.kind == "punct" and tok.text in ")]}>":
                if depth == 0:
                    break
                depth -= 1
            self.lex.next()
            end = self.lex.last_end
        if end == mark:
            tok = self.lex.peek()
            raise self.error(f"expected attribute value, found {self.lex.describe(tok)}", tok)
        return ir.OpaqueAttr(self.lex.text[mark:end])

    def _keyed_value(self, spec: tuple[str, str], attrs: dict[str, Any]) -> None:
        attr, kind = spec
        if kind == "ints":
            attrs[attr] = self.parse_int_list()
        elif kind == "int":
            attrs[attr] = self.parse_int()
        elif kind == "pair":  # `[0] x [0]` -> lhs_/rhs_ lists
            lhs = self.parse_int_list()
            self.expect("x", "between lhs and rhs dimension lists")
            attrs[f"_{attr}"] = (lhs, self.parse_int_list())
        elif kind == "precision":
            self.expect("[", "to start precision list")
            items: list[Any] = []
            while not self.accept("]"):
                items.append(ir.EnumAttr("stablehlo", "precision",
                                         self.expect_kind("id", "precision (DEFAULT, HIGH, HIGHEST)").text))
                if not self.at("]"):
                    self.expect(",", "or ']' in precision list")
            attrs[attr] = items
        elif kind == "algorithm":
            self.expect("<", "to start dot algorithm")
            attrs[attr] = self.parse_struct_body("stablehlo.dot_algorithm", ">")
        elif kind == "attr":
            attrs[attr] = self.parse_attr()
        elif kind.startswith("enum:"):
            attrs[attr] = ir.EnumAttr("stablehlo", kind[5:], self.expect_kind("id", "enum value").text)
        elif kind == "format":
            tok = self.expect_kind("id", "float format (e.g. e5m2)")
            m = _FORMAT.fullmatch(tok.text)
            if m is None:
                raise self.error(f"expected float format like e5m2, found {tok.text!r}", tok)
            attrs["exponent_bits"], attrs["mantissa_bits"] = int(m.group(1)), int(m.group(2))
        elif kind == "conv":
            attrs[attr] = self.parse_conv_dims(None)
        elif kind == "window":
            self._conv_window(attrs)

    def _dot_numbers(self, attrs: dict[str, Any]) -> None:
        batching = attrs.pop("_batching", ((), ()))
        contracting = attrs.pop("_contracting", ((), ()))
        attrs["dot_dimension_numbers"] = ir.StructAttr("stablehlo.dot", {
            "lhs_batching_dimensions": tuple(batching[0]), "rhs_batching_dimensions": tuple(batching[1]),
            "lhs_contracting_dimensions": tuple(contracting[0]),
            "rhs_contracting_dimensions": tuple(contracting[1])})

    def _conv_window(self, attrs: dict[str, Any]) -> None:
        """`window = {stride = [..], pad = [[l, h], ..], lhs_dilate = [..], rhs_dilate = [..],
        reverse = [..]}` -> the generic attribute names and value kinds."""
        tok = self.lex.peek()
        window = self.parse_attr_dict()
        def ints(v: Any) -> ir.DenseArray:
            if not isinstance(v, list):
                raise self.error("expected a list in convolution window", tok)
            out = []
            for x in v:
                if isinstance(x, bool):
                    out.append(x)
                elif isinstance(x, ir.IntegerAttr):
                    out.append(x.value)
                else:
                    raise self.error("expected integers in convolution window", tok)
            return ir.DenseArray(out)
        names = {"stride": "window_strides", "lhs_dilate": "lhs_dilation",
                 "rhs_dilate": "rhs_dilation"}
        for key, value in window.items():
            if key in names:
                attrs[names[key]] = ints(value)
            elif key == "reverse":
                attrs["window_reversal"] = ir.DenseArray((bool(x) for x in ints(value)), "i1")
            elif key == "pad":
                rows = [ints(r) for r in (value if isinstance(value, list) else [None])]
                if any(len(r) != 2 for r in rows):
                    raise self.error("convolution padding must be [[low, high], ...]", tok)
                if any(not -(1 << 63) <= x < (1 << 63) for r in rows for x in r):
                    raise self.error("convolution padding does not fit in 64 bits", tok)
                arr = np.array(rows, dtype=np.int64).reshape(len(rows), 2)
                attrs["padding"] = ir.DenseElements(ir.TensorType((len(rows), 2), "i64"), arr)
            else:
                attrs[key] = value


# The ops with a pretty form of their own: the name of the Parser method reading each. Names, not
# a parser's bound methods kept in a table on it: those would make each parser a reference cycle,
# and keep everything it touched (the whole module, through its scopes and pending locations)
# for the cyclic collector.
_PRETTY: dict[str, str] = {
    "func.call": "_p_call", "func.return": "_p_return",
    "stablehlo.return": "_p_return", "stablehlo.compare": "_p_compare",
    "stablehlo.slice": "_p_slice", "stablehlo.constant": "_p_constant",
    "chlo.constant": "_p_constant", "chlo.scan": "_p_scan",
    "stablehlo.custom_call": "_p_custom_call", "stablehlo.composite": "_p_composite",
    "stablehlo.get_tuple_element": "_p_get_tuple_element",
    "stablehlo.while": "_p_while", "stablehlo.reduce": "_p_reduce",
}
