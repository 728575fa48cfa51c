"""The verifier: checks an ir.Module against the StableHLO spec's constraints before any pass.

The compiler trusts the types written on each op (a dot_general that says its operand is 4x32
while the value is 4096x32 would read past a buffer), so every program goes through here first.
Rules follow the "Constraints" of each op in the StableHLO spec (docs/spec.md): operand and
result types agree, attributes are in range, regions have the right block arguments and
terminators, function signatures agree with returns and calls, values are defined before use,
and no tensor needs more bytes than the device's DRAM. Ops the compiler does not support yet
(gather, scatter, sort, while, ...) are verified too, so their later lowering gets valid input.
An op this module does not know is checked only generically (types, definitions, sizes).

A failure raises VerificationError naming the op, the rule and the user's source location.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import VerificationError
from . import ir
from .element_types import is_bool, is_complex, is_float, is_int, is_unsigned, num_bits, storage_bytes

# The default device's DRAM (native/src/device.c): no single tensor can be bigger than this.
# The parser and compiler do not load the runtime, so the figure is repeated here.
DRAM_BYTES = 12 << 30

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_DIRECTIONS = {"EQ", "NE", "GE", "GT", "LE", "LT"}
_COMPARE_TYPES = {"FLOAT", "TOTALORDER", "SIGNED", "UNSIGNED", "NOTYPE"}
_RNG_ALGORITHMS = {"DEFAULT": None, "THREE_FRY": (2,), "PHILOX": (2, 3)}

# The elementwise ops checked here for arity and type agreement. Which element types each one
# takes is the op table's fact (compiler/ops.py refuses `popcnt on f32` as unsupported).
_UNARY = {"abs", "negate", "sqrt", "rsqrt", "cbrt", "floor", "ceil", "round_nearest_even",
          "round_nearest_afz", "not", "popcnt", "count_leading_zeros", "sign", "exponential",
          "exponential_minus_one", "log", "log_plus_one", "tanh", "logistic", "sine", "cosine",
          "tan", "erf", "is_finite", "real", "imag"}
_BINARY = {"add", "subtract", "multiply", "divide", "remainder", "maximum", "minimum", "and",
           "or", "xor", "shift_left", "shift_right_arithmetic", "shift_right_logical", "power",
           "atan2", "complex"}
# Ops whose spec operands are integers (or floats) but never booleans: the op table's "int"
# includes i1, and XLA's verifier refuses these on i1.
# Bitwise ops take integers or booleans only (a float has no C bitwise operators either).
_BITWISE = {"and", "or", "xor", "not"}
_NOT_BOOL = {"subtract", "divide", "remainder", "power", "abs", "negate", "sign", "popcnt",
             "count_leading_zeros", "shift_left", "shift_right_arithmetic", "shift_right_logical"}
_RETURNS = ("stablehlo.return", "mhlo.return")


def verify(module: ir.Module) -> None:
    """Raise VerificationError if `module` breaks a StableHLO rule; return None if it is valid."""
    _Verifier(module).run()


def _same_shape(a: Sequence[int | None], b: Sequence[int | None]) -> bool:
    """Shapes agree; a dynamic dim (None) agrees with anything (the compiler refuses it later)."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _fmt(shape: Iterable[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# ----------------------------------------------------------------------------- the verifier
class _Verifier:
    def __init__(self, module: ir.Module):
        self.module = module
        self.op: ir.Operation | None = None  # the op being checked (for messages)
        self.opname: str | None = None
        self.raw_loc: ir.Location | None = None  # the op's own location (`loc` resolves it)
        self.sites: dict[str, ir.Location | None] = {}  # callee -> its first call site's location
        self.fn: ir.Function | None = None  # the function being checked
        self.good_types: set[int] = set()  # ids of types checked (see _type)

    # ------------------------------------------------------------------ failure
    @property
    def loc(self) -> ir.Location | None:
        # resolved only for a message: most modules are valid, and every op has a location
        return self._at(self.raw_loc, self.fn) if self.fn is not None else self.raw_loc

    def fail(self, rule: str) -> VerificationError:
        return VerificationError(rule, self.opname, self.loc)

    def _at(self, loc: ir.Location | None, fn: ir.Function) -> ir.Location | None:
        # Ops inside callees often carry only a name: point at where the user called them.
        site = self.sites.get(fn.name)
        if site is None or (loc is not None and loc.file is not None):
            return loc if loc is not None else site
        return ir.Location(site.file, site.line, site.col, (loc.name if loc else None) or site.name)

    # ------------------------------------------------------------------ module and functions
    def run(self) -> None:
        fns = self.module.functions
        try:
            main = self.module.main
        except ValueError as e:
            raise VerificationError(str(e), "builtin.module") from None
        self._call_sites(main)
        for fn in fns.values():
            self._function(fn)

    def _call_sites(self, main: ir.Function) -> None:
        """The location of the first call to each function reachable from the entry (a
        worklist, not recursion: call chains can be long)."""
        todo, seen = [main], {main.name}
        while todo:
            fn = todo.pop()
            for op in _walk(fn.body.ops):
                ref = op.attributes.get("callee" if op.name == "func.call" else "decomposition")
                if op.name in ("func.call", "stablehlo.composite") and isinstance(ref, ir.SymbolRef):
                    callee = self.module.functions.get(ref.name)
                    if callee is not None and callee.name not in seen:
                        seen.add(callee.name)
                        self.sites[callee.name] = self._at(op.loc, fn)
                        todo.append(callee)

    def _function(self, fn: ir.Function) -> None:
        self.fn = fn
        self.opname, self.raw_loc = "func.func", fn.loc
        for a in fn.args:
            self._type(a.type, f"argument {a.name} of @{fn.name}")
        for i, t in enumerate(fn.result_types):
            self._type(t, f"result #{i} of @{fn.name}")
        ops = fn.body.ops
        if not ops or ops[-1].name != "func.return":
            raise self.fail(f"the body of @{fn.name} must end with func.return")
        self._block(fn.body, {id(a) for a in fn.args}, "func.return")
        self.op, self.opname, self.raw_loc = ops[-1], "func.return", ops[-1].loc
        got = [v.type for v in ops[-1].operands]
        if got != list(fn.result_types):
            raise self.fail(f"returns ({_types(got)}) but @{fn.name} is declared to return "
                            f"({_types(fn.result_types)})")

    def _block(self, block: ir.Block, scope: set[int], terminator: str | None) -> None:
        """Checks each op of the block in order; `scope` holds the ids of the values defined so
        far (regions see the values of the blocks that enclose them). `terminator` is the op
        that must end the block (None: any)."""
        added = [id(a) for a in block.args] + [id(r) for op in block.ops for r in op.results]
        fresh = [v for v in added if v not in scope]
        try:
            self._block_ops(block, scope, terminator)
        finally:  # the block's values go out of scope (one shared set: no copy per region)
            scope.difference_update(fresh)

    def _block_ops(self, block: ir.Block, scope: set[int], terminator: str | None) -> None:
        for k, a in enumerate(block.args):
            self._type(a.type, f"block argument #{k}")
            scope.add(id(a))
        for i, op in enumerate(block.ops):
            self.op, self.opname, self.raw_loc = op, op.name, op.loc
            for k, v in enumerate(op.operands):
                if id(v) not in scope:
                    raise self.fail(f"operand #{k} ({v.name}) is used before it is defined")
            last = i == len(block.ops) - 1
            if op.name in ("func.return", *_RETURNS):
                if not last or (op.name == "func.return") != (terminator == "func.return"):
                    raise self.fail(f"{op.name} may only end a "
                                    f"{'function body' if op.name == 'func.return' else 'region'}")
                continue
            if last and terminator is not None:
                raise self.fail(f"a {'function body' if terminator == 'func.return' else 'region'} "
                                f"must end with {terminator}, not {op.name}")
            for k, r in enumerate(op.results):  # operands were checked where they were defined
                self._type(r.type, f"result #{k}")
            for name, value in op.attributes.items():
                self._int64(name, value)
            self._op(op)
            self.op, self.opname, self.raw_loc = op, op.name, op.loc
            # Regions of other dialects' ops may end in their own terminators.
            inner = "stablehlo.return" if op.name.startswith(("stablehlo.", "mhlo.", "chlo.")) else None
            for region in op.regions:
                for b in region.blocks:
                    self._block(b, scope, inner)
            for r in op.results:
                scope.add(id(r))

    # ------------------------------------------------------------------ types
    def _type(self, t: Any, what: str) -> None:
        # The parser shares one object among equal plain types: check each once (`what` only
        # words a failure). The module keeps every type alive, so an id is not reused meanwhile.
        if id(t) in self.good_types:
            return
        self._check_type(t, what)
        self.good_types.add(id(t))

    def _check_type(self, t: Any, what: str) -> None:
        if isinstance(t, ir.TupleType):
            for k, e in enumerate(t.types):
                self._type(e, f"{what} element #{k}")
            return
        if not isinstance(t, ir.TensorType):
            return  # tokens, scalars of builtin types: the compiler refuses what it cannot run
        if any(d is not None and (not isinstance(d, int) or d < 0) for d in t.shape):
            raise self.fail(f"{what} has a negative dimension: {t}")
        n = math.prod(d for d in t.shape if d is not None) * storage_bytes(t.element)
        if n > DRAM_BYTES:
            raise self.fail(f"{what} {t} needs {n:,} bytes, more than the device's "
                            f"{DRAM_BYTES:,}-byte DRAM")

    def _int64(self, name: str, v: Any) -> None:
        """Integer attributes are 64-bit in StableHLO (dims, strides, padding, counts): a
        bigger one is invalid, and would overflow the C the compiler writes."""
        if isinstance(v, ir.IntegerAttr):
            v = v.value
        if isinstance(v, int) and not isinstance(v, bool):
            if not _I64_MIN <= v <= _I64_MAX:
                raise self.fail(f"attribute '{name}' = {v} does not fit in 64 bits")
        elif isinstance(v, (list, tuple)):
            for x in v:
                self._int64(name, x)
        elif isinstance(v, ir.StructAttr):
            for k, x in v.fields.items():
                self._int64(k, x)

    def tensor(self, v: ir.Value | Any, what: str) -> ir.TensorType:
        t = v.type if isinstance(v, ir.Value) else v
        if not isinstance(t, ir.TensorType):
            raise self.fail(f"{what} must be a tensor, not {t}")
        return t

    def ins(self, lo: int, hi: int | None = None) -> list[ir.TensorType]:
        """The operand types, their count checked against [lo, hi]."""
        n = len(self.op.operands)
        if n < lo or (hi is not None and n > hi):
            want = str(lo) if hi == lo else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            raise self.fail(f"takes {want} operands, got {n}")
        return [self.tensor(v, f"operand #{i}") for i, v in enumerate(self.op.operands)]

    def outs(self, n: int | None) -> list[ir.TensorType]:
        if n is not None and len(self.op.results) != n:
            raise self.fail(f"has {n} result{'s' if n != 1 else ''}, got {len(self.op.results)}")
        return [self.tensor(v, f"result #{i}") for i, v in enumerate(self.op.results)]

    def expect_type(self, got: ir.TensorType, want_shape: Sequence[int | None], want_el: str,
                    what: str = "result") -> None:
        if not _same_shape(got.shape, want_shape) or got.element != want_el:
            raise self.fail(f"{what} type must be {ir.TensorType(tuple(want_shape), want_el)}, "
                            f"got {got}")

    # ------------------------------------------------------------------ attributes
    def attr(self, name: str, default: Any = None, required: bool = False) -> Any:
        if name not in self.op.attributes:
            if required:
                raise self.fail(f"attribute '{name}' is required")
            return default
        return self.op.attributes[name]

    def int_attr(self, name: str, default: int | None = None) -> int:
        v = self.attr(name, default, required=default is None)
        return self.as_int(v, name)

    def as_int(self, v: Any, name: str) -> int:
        if isinstance(v, ir.IntegerAttr):
            v = v.value
        if isinstance(v, ir.DenseElements) and v.values.size == 1:
            v = v.values.reshape(-1)[0]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise self.fail(f"attribute '{name}' must be an integer, got {v!r}")
        return int(v)

    def ints_attr(self, name: str, default: Sequence[int] | None = None) -> tuple[int, ...]:
        v = self.attr(name, default, required=default is None)
        return self.as_ints(v, name)

    def as_ints(self, v: Any, name: str) -> tuple[int, ...]:
        if isinstance(v, ir.DenseElements):
            if v.values.dtype.kind not in "iub":
                raise self.fail(f"attribute '{name}' must hold integers")
            return tuple(int(x) for x in np.asarray(v.values).reshape(-1))
        if isinstance(v, (list, tuple)):
            return tuple(self.as_int(x, name) for x in v)
        raise self.fail(f"attribute '{name}' must be a list of integers, got {v!r}")

    def bools_attr(self, name: str, n: int) -> tuple[bool, ...]:
        v = self.attr(name)
        if v is None:
            return (False,) * n
        vals = v.values.reshape(-1).tolist() if isinstance(v, ir.DenseElements) else v
        if not isinstance(vals, (list, tuple)) or not all(isinstance(b, (bool, np.bool_)) for b in vals):
            raise self.fail(f"attribute '{name}' must be a list of booleans")
        if len(vals) != n:
            raise self.fail(f"attribute '{name}' must have {n} entries, got {len(vals)}")
        return tuple(bool(b) for b in vals)

    def dims(self, dims: Sequence[int], rank: int, what: str, *, unique: bool = True,
             sorted_: bool = False) -> None:
        """Dimension numbers: each in [0, rank), unique (and sorted when the spec says so)."""
        for d in dims:
            if not 0 <= d < rank:
                raise self.fail(f"{what} {list(dims)}: dimension {d} is out of range for rank {rank}")
        if unique and len(set(dims)) != len(dims):
            raise self.fail(f"{what} {list(dims)} has repeated dimensions")
        if sorted_ and list(dims) != sorted(dims):
            raise self.fail(f"{what} {list(dims)} must be sorted")

    def disjoint(self, a: Sequence[int], b: Sequence[int], what: str) -> None:
        if set(a) & set(b):
            raise self.fail(f"{what} must be disjoint, both hold {sorted(set(a) & set(b))}")

    def sized(self, vals: Sequence[Any], n: int, what: str) -> None:
        if len(vals) != n:
            raise self.fail(f"{what} must have {n} entries (one per dimension), got {len(vals)}")

    def positive(self, vals: Sequence[int], what: str) -> None:
        if any(v <= 0 for v in vals):
            raise self.fail(f"{what} {list(vals)} must be positive")

    def padding(self, rank: int) -> tuple[tuple[int, int], ...]:
        v = self.attr("padding")
        if v is None:
            return ((0, 0),) * rank
        flat = self.as_ints(v, "padding")
        if isinstance(v, ir.DenseElements) and v.type.element != "i64":
            raise self.fail(f"padding must hold i64, got {v.type}")
        shape = tuple(v.values.shape) if isinstance(v, ir.DenseElements) else (len(flat) // 2, 2)
        if len(flat) != 2 * rank or (shape != (rank, 2) and not (rank == 0 and len(flat) == 0)):
            raise self.fail(f"padding must have shape [{rank}, 2], got {list(shape)}")
        return tuple((flat[2 * i], flat[2 * i + 1]) for i in range(rank))

    # ------------------------------------------------------------------ regions
    def region(self, i: int, arg_types: Sequence[Any] | None, what: str) -> list[Any]:
        """Checks region #i has one block with the given argument types; returns the types its
        stablehlo.return returns (the block itself is checked later, in scope order)."""
        if len(self.op.regions) <= i:
            raise self.fail(f"{what} region is missing")
        blocks = self.op.regions[i].blocks
        if len(blocks) != 1:
            raise self.fail(f"{what} region must have one block, got {len(blocks)}")
        block = blocks[0]
        got = [a.type for a in block.args]
        if arg_types is not None and got != list(arg_types):
            raise self.fail(f"{what} region takes ({_types(got)}), must take ({_types(arg_types)})")
        if not block.ops or block.ops[-1].name not in _RETURNS:
            raise self.fail(f"{what} region must end with stablehlo.return")
        return [v.type for v in block.ops[-1].operands]

    def scalar_body(self, i: int, elements: Sequence[str], what: str, n_out: int | None = None) -> None:
        """A reduction-like body: 2N rank-0 args (N accumulators, then N inputs) returning N
        rank-0 values of the accumulators' element types."""
        scalars = [ir.TensorType((), e) for e in elements]
        out = self.region(i, scalars + scalars, what)
        want = scalars[: n_out] if n_out is not None else scalars
        if out != want:
            raise self.fail(f"{what} region returns ({_types(out)}), must return ({_types(want)})")

    # ------------------------------------------------------------------ dispatch
    def _op(self, op: ir.Operation) -> None:
        dialect, _, name = op.name.partition(".")
        if op.name == "func.call":
            return self._call(op, "callee")
        if op.name == "stablehlo.composite":
            return self._call(op, "decomposition")
        if dialect == "chlo" and name in _UNARY:
            return self._elementwise(name)
        if dialect not in ("stablehlo", "mhlo"):
            return
        if name in _UNARY or name in _BINARY:
            return self._elementwise(name)
        check: Callable[[], None] | None = getattr(self, "_" + name, None)
        if check is not None:
            check()

    # ------------------------------------------------------------------ calls
    def _call(self, op: ir.Operation, attr: str) -> None:
        ref = op.attributes.get(attr)
        if not isinstance(ref, ir.SymbolRef):
            raise self.fail(f"attribute '{attr}' must name a function")
        callee = self.module.functions.get(ref.name)
        if callee is None:
            raise self.fail(f"calls @{ref.name}, which is not defined")
        got = [v.type for v in op.operands]
        if got != [a.type for a in callee.args]:
            raise self.fail(f"passes ({_types(got)}) to @{ref.name}, which takes "
                            f"({_types([a.type for a in callee.args])})")
        res = [r.type for r in op.results]
        if res != list(callee.result_types):
            raise self.fail(f"expects ({_types(res)}) from @{ref.name}, which returns "
                            f"({_types(callee.result_types)})")

    # ------------------------------------------------------------------ elementwise
    def _elementwise(self, name: str) -> None:
        n = 2 if name in _BINARY else 1
        ins = self.ins(n, n)
        (out,) = self.outs(1)
        x = ins[0]
        for i, t in enumerate(ins[1:], 1):
            if t != x:
                raise self.fail(f"operands must have the same type, got {x} and {t} (operand #{i})")
        e = x.element
        if name in _NOT_BOOL and is_bool(e):
            raise self.fail(f"operands may not be boolean (i1): {x}")
        if name in _BITWISE and not (is_int(e) or is_bool(e)):
            raise self.fail(f"operands must be integers or booleans: {x}")
        if name == "is_finite":
            return self.expect_type(out, x.shape, "i1")
        if name in ("real", "imag") or (name == "abs" and is_complex(e)):
            want = {"complex<f32>": "f32", "complex<f64>": "f64"}.get(e, e)
            return self.expect_type(out, x.shape, want)
        if name == "complex":
            want = {"f32": "complex<f32>", "f64": "complex<f64>"}.get(e)
            if want is None:
                raise self.fail(f"operands must be f32 or f64, got {e}")
            return self.expect_type(out, x.shape, want)
        self.expect_type(out, x.shape, e)

    def _compare(self) -> None:
        a, b = self.ins(2, 2)
        (out,) = self.outs(1)
        if a != b:
            raise self.fail(f"operands must have the same type, got {a} and {b}")
        self.expect_type(out, a.shape, "i1")
        d = self.attr("comparison_direction", required=True)
        if getattr(d, "value", None) not in _DIRECTIONS:
            raise self.fail(f"comparison_direction must be one of {sorted(_DIRECTIONS)}")
        ct = self.attr("compare_type")
        if ct is not None:
            kind = getattr(ct, "value", None)
            if kind not in _COMPARE_TYPES:
                raise self.fail(f"compare_type must be one of {sorted(_COMPARE_TYPES)}")
            e = a.element
            fits = {"FLOAT": is_float(e) or is_complex(e), "TOTALORDER": is_float(e),
                    "SIGNED": is_int(e) and not is_unsigned(e),
                    "UNSIGNED": is_unsigned(e) or is_bool(e), "NOTYPE": True}[kind]
            if not fits:
                raise self.fail(f"compare_type {kind} does not fit element type {e}")

    def _select(self) -> None:
        p, a, b = self.ins(3, 3)
        (out,) = self.outs(1)
        if p.element != "i1":
            raise self.fail(f"pred must be a tensor of i1, got {p}")
        if a != b:
            raise self.fail(f"on_true and on_false must have the same type, got {a} and {b}")
        if p.shape != () and not _same_shape(p.shape, a.shape):
            raise self.fail(f"pred must be a scalar or have the shape of on_true, got {p} and {a}")
        self.expect_type(out, a.shape, a.element)

    def _clamp(self) -> None:
        lo, x, hi = self.ins(3, 3)
        (out,) = self.outs(1)
        for what, t in (("min", lo), ("max", hi)):
            if t.element != x.element:
                raise self.fail(f"{what} must have the element type of the operand, got {t} and {x}")
            if t.shape != () and not _same_shape(t.shape, x.shape):
                raise self.fail(f"{what} must be a scalar or have the shape of the operand, got {t} and {x}")
        self.expect_type(out, x.shape, x.element)

    def _convert(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        if not _same_shape(x.shape, out.shape):
            raise self.fail(f"result shape {_fmt(out.shape)} must equal operand shape {_fmt(x.shape)}")

    def _bitcast_convert(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        wi, wo = num_bits(x.element), num_bits(out.element)
        if max(wi, wo) % min(wi, wo):
            raise self.fail(f"cannot bitcast {x.element} ({wi} bits) to {out.element} ({wo} bits): "
                            "neither width divides the other")
        if wi == wo:
            want = x.shape
        elif wi > wo:
            want = (*x.shape, wi // wo)
        else:
            if not x.shape or x.shape[-1] not in (None, wo // wi):
                raise self.fail(f"the last dimension of {x} must be {wo // wi} to pack into {out.element}")
            want = x.shape[:-1]
        if not _same_shape(out.shape, want):
            raise self.fail(f"result shape must be {_fmt(want)} for {x.element} -> {out.element}, "
                            f"got {_fmt(out.shape)}")

    def _optimization_barrier(self) -> None:
        ins = [v.type for v in self.op.operands]
        if [r.type for r in self.op.results] != ins:
            raise self.fail("result types must equal operand types")

    # ------------------------------------------------------------------ leaves
    def _constant(self) -> None:
        self.ins(0, 0)
        (out,) = self.outs(1)
        v = self.attr("value", required=True)
        if not isinstance(v, ir.DenseElements):
            raise self.fail("attribute 'value' must be a dense elements literal")
        if v.type != out:
            raise self.fail(f"value type {v.type} must equal result type {out}")
        if isinstance(v.values, np.ndarray) and tuple(v.values.shape) != tuple(out.shape) \
                and v.values.size != 1:
            raise self.fail(f"value holds {v.values.size} elements, the result type needs "
                            f"{math.prod(d or 0 for d in out.shape)}")

    def _iota(self) -> None:
        self.ins(0, 0)
        (out,) = self.outs(1)
        d = self.int_attr("iota_dimension")
        if not 0 <= d < len(out.shape):
            raise self.fail(f"iota_dimension {d} is out of range for rank {len(out.shape)}")

    # ------------------------------------------------------------------ shape ops
    def _broadcast_in_dim(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        bd = self.ints_attr("broadcast_dimensions")
        self.sized(bd, len(x.shape), "broadcast_dimensions")
        self.dims(bd, len(out.shape), "broadcast_dimensions")
        for i, d in enumerate(bd):
            if x.shape[i] not in (1, None) and out.shape[d] is not None and x.shape[i] != out.shape[d]:
                raise self.fail(f"operand dimension {i} (size {x.shape[i]}) cannot broadcast to "
                                f"result dimension {d} (size {out.shape[d]})")
        self.expect_type(out, out.shape, x.element)

    def _reshape(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        if None not in x.shape and None not in out.shape and math.prod(x.shape) != math.prod(out.shape):
            raise self.fail(f"cannot reshape {x} ({math.prod(x.shape)} elements) to {out} "
                            f"({math.prod(out.shape)} elements)")
        self.expect_type(out, out.shape, x.element)

    def _transpose(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        perm = self.ints_attr("permutation")
        if sorted(perm) != list(range(len(x.shape))):
            raise self.fail(f"permutation {list(perm)} is not a permutation of the operand's "
                            f"{len(x.shape)} dimensions")
        self.expect_type(out, [x.shape[p] for p in perm], x.element)

    def _slice(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        r = len(x.shape)
        start, limit = self.ints_attr("start_indices"), self.ints_attr("limit_indices")
        strides = self.ints_attr("strides", (1,) * r)
        for what, v in (("start_indices", start), ("limit_indices", limit), ("strides", strides)):
            self.sized(v, r, what)
        self.positive(strides, "strides")
        want = []
        for i in range(r):
            dim = x.shape[i]
            if not 0 <= start[i] <= limit[i] or (dim is not None and limit[i] > dim):
                raise self.fail(f"slice bounds [{start[i]}, {limit[i]}) of dimension {i} are not "
                                f"within [0, {dim}]")
            want.append(-(-(limit[i] - start[i]) // strides[i]))
        self.expect_type(out, want, x.element)

    def _reverse(self) -> None:
        (x,) = self.ins(1, 1)
        (out,) = self.outs(1)
        self.dims(self.ints_attr("dimensions"), len(x.shape), "dimensions")
        self.expect_type(out, x.shape, x.element)

    def _concatenate(self) -> None:
        ins = self.ins(1)
        (out,) = self.outs(1)
        d = self.int_attr("dimension")
        x = ins[0]
        if not 0 <= d < len(x.shape):
            raise self.fail(f"dimension {d} is out of range for rank {len(x.shape)}")
        total: int | None = 0
        for i, t in enumerate(ins):
            if t.element != x.element or len(t.shape) != len(x.shape):
                raise self.fail(f"operand #{i} {t} does not match operand #0 {x}")
            if not _same_shape(t.shape[:d] + t.shape[d + 1:], x.shape[:d] + x.shape[d + 1:]):
                raise self.fail(f"operand #{i} {t} differs from operand #0 {x} outside dimension {d}")
            total = None if total is None or t.shape[d] is None else total + t.shape[d]
        self.expect_type(out, (*x.shape[:d], total, *x.shape[d + 1:]), x.element)

    def _pad(self) -> None:
        x, v = self.ins(2, 2)
        (out,) = self.outs(1)
        if v.shape != () or v.element != x.element:
            raise self.fail(f"padding_value must be a scalar of {x.element}, got {v}")
        r = len(x.shape)
        lo, hi = self.ints_attr("edge_padding_low"), self.ints_attr("edge_padding_high")
        interior = self.ints_attr("interior_padding", (0,) * r)
        for what, p in (("edge_padding_low", lo), ("edge_padding_high", hi), ("interior_padding", interior)):
            self.sized(p, r, what)
        if any(p < 0 for p in interior):
            raise self.fail(f"interior_padding {list(interior)} must be non-negative")
        want = []
        for i, dim in enumerate(x.shape):
            n = None if dim is None else lo[i] + dim + hi[i] + max(dim - 1, 0) * interior[i]
            if n is not None and n < 0:
                raise self.fail(f"padding makes dimension {i} negative ({n})")
            want.append(n)
        self.expect_type(out, want, x.element)

    # ------------------------------------------------------------------ reductions, products
    def _inputs_inits(self) -> tuple[list[ir.TensorType], list[ir.TensorType]]:
        ins = self.ins(2)
        if len(ins) % 2:
            raise self.fail(f"takes as many inputs as init values, got {len(ins)} operands")
        n = len(ins) // 2
        inputs, inits = ins[:n], ins[n:]
        for i, t in enumerate(inputs):
            if not _same_shape(t.shape, inputs[0].shape):
                raise self.fail(f"inputs must have the same shape, got {inputs[0]} and {t}")
            if inits[i].shape != () or inits[i].element != t.element:
                raise self.fail(f"init value #{i} must be a scalar of {t.element}, got {inits[i]}")
        return inputs, inits

    def _reduce(self) -> None:
        inputs, _ = self._inputs_inits()
        outs = self.outs(len(inputs))
        x = inputs[0]
        dims = self.ints_attr("dimensions")
        self.dims(dims, len(x.shape), "dimensions")
        keep = [s for i, s in enumerate(x.shape) if i not in dims]
        for t, o in zip(inputs, outs):
            self.expect_type(o, keep, t.element)
        self.scalar_body(0, [t.element for t in inputs], "body")

    def _dot_general(self) -> None:
        a, b = self.ins(2, 2)
        (out,) = self.outs(1)
        dn = self.attr("dot_dimension_numbers", required=True)
        f = dn.fields if isinstance(dn, ir.StructAttr) else dn if isinstance(dn, dict) else None
        if f is None:
            raise self.fail("dot_dimension_numbers must be a #stablehlo.dot<...> attribute")
        lb, rb, lc, rc = (self.as_ints(f.get(k, ()), k) for k in (
            "lhs_batching_dimensions", "rhs_batching_dimensions",
            "lhs_contracting_dimensions", "rhs_contracting_dimensions"))
        self._dot_dims(a, b, out, lb, rb, lc, rc)

    def _dot_dims(self, a: ir.TensorType, b: ir.TensorType, out: ir.TensorType,
                  lb: Sequence[int], rb: Sequence[int], lc: Sequence[int], rc: Sequence[int]) -> None:
        if len(lb) != len(rb):
            raise self.fail(f"lhs_batching_dimensions {list(lb)} and rhs_batching_dimensions "
                            f"{list(rb)} must have the same size")
        if len(lc) != len(rc):
            raise self.fail(f"lhs_contracting_dimensions {list(lc)} and rhs_contracting_dimensions "
                            f"{list(rc)} must have the same size")
        self.dims(list(lb) + list(lc), len(a.shape), "lhs batching + contracting dimensions")
        self.dims(list(rb) + list(rc), len(b.shape), "rhs batching + contracting dimensions")
        for what, ld, rd in (("batching", lb, rb), ("contracting", lc, rc)):
            for i, j in zip(ld, rd):
                if a.shape[i] is not None and b.shape[j] is not None and a.shape[i] != b.shape[j]:
                    raise self.fail(f"{what} dimension {i} of lhs {a} (size {a.shape[i]}) differs "
                                    f"from dimension {j} of rhs {b} (size {b.shape[j]})")
        if a.element != b.element:
            raise self.fail(f"lhs and rhs must have the same element type, got {a.element} and {b.element}")
        want = [a.shape[i] for i in lb] + \
               [s for i, s in enumerate(a.shape) if i not in lb and i not in lc] + \
               [s for i, s in enumerate(b.shape) if i not in rb and i not in rc]
        if not _same_shape(out.shape, want):
            raise self.fail(f"result shape must be {_fmt(want)} for {a} x {b}, got {_fmt(out.shape)}")
        # booleans may go into any result type, integers into floats (jax's preferred_element_type)
        if not is_bool(a.element) and (is_bool(out.element) or is_float(a.element) and not is_float(out.element)):
            raise self.fail(f"result element type {out.element} does not fit operands of {a.element}")

    def _dot(self) -> None:
        a, b = self.ins(2, 2)
        (out,) = self.outs(1)
        if len(a.shape) not in (1, 2) or len(b.shape) not in (1, 2):
            raise self.fail(f"operands must have rank 1 or 2, got {a} and {b}")
        self._dot_dims(a, b, out, (), (), (len(a.shape) - 1,), (0,))

    def _convolution(self) -> None:
        x, w = self.ins(2, 2)
        (out,) = self.outs(1)
        r = len(x.shape)
        if r < 2 or len(w.shape) != r or len(out.shape) != r:
            raise self.fail(f"input, kernel and result must have the same rank >= 2, got {x}, {w}, {out}")
        if x.element != w.element:
            raise self.fail(f"input and kernel must have the same element type, got {x.element} and {w.element}")
        dn = self.attr("dimension_numbers", required=True)
        if not isinstance(dn, ir.StructAttr):
            raise self.fail("dimension_numbers must be a #stablehlo.conv<...> attribute")
        d = dn.fields

        def one(k: str) -> int:
            return self.as_int(d.get(k), k) if k in d else self._missing(k)

        def many(k: str) -> tuple[int, ...]:
            return self.as_ints(d.get(k), k) if k in d else self._missing(k)

        ib, if_, isp = one("input_batch_dimension"), one("input_feature_dimension"), many("input_spatial_dimensions")
        ki, ko, ksp = (one("kernel_input_feature_dimension"), one("kernel_output_feature_dimension"),
                       many("kernel_spatial_dimensions"))
        ob, of, osp = one("output_batch_dimension"), one("output_feature_dimension"), many("output_spatial_dimensions")
        for what, dims in (("input", (ib, if_, *isp)), ("kernel", (ki, ko, *ksp)), ("output", (ob, of, *osp))):
            if sorted(dims) != list(range(r)):
                raise self.fail(f"{what} dimension numbers {list(dims)} must be a permutation of "
                                f"the {r} dimensions")
        k = r - 2
        strides = self.ints_attr("window_strides", (1,) * k) or (1,) * k
        lhs_dil = self.ints_attr("lhs_dilation", (1,) * k) or (1,) * k
        rhs_dil = self.ints_attr("rhs_dilation", (1,) * k) or (1,) * k
        for what, v in (("window_strides", strides), ("lhs_dilation", lhs_dil), ("rhs_dilation", rhs_dil)):
            self.sized(v, k, what)
            self.positive(v, what)
        pad = self.padding(k)
        self.bools_attr("window_reversal", k)
        fg, bg = self.int_attr("feature_group_count", 1), self.int_attr("batch_group_count", 1)
        self.positive((fg,), "feature_group_count")
        self.positive((bg,), "batch_group_count")
        if fg != 1 and bg != 1:
            raise self.fail("feature_group_count and batch_group_count cannot both exceed 1")
        n, c, kc, kout = x.shape[ib], x.shape[if_], w.shape[ki], w.shape[ko]
        if c is not None and c % fg:
            raise self.fail(f"input feature dimension ({c}) must be divisible by feature_group_count ({fg})")
        if n is not None and n % bg:
            raise self.fail(f"input batch dimension ({n}) must be divisible by batch_group_count ({bg})")
        if c is not None and kc is not None and kc * fg != c:
            raise self.fail(f"kernel input feature dimension ({kc}) must be input features ({c}) "
                            f"/ feature_group_count ({fg})")
        if kout is not None and (kout % bg or kout % fg):
            raise self.fail(f"kernel output feature dimension ({kout}) must be divisible by "
                            f"feature_group_count ({fg}) and batch_group_count ({bg})")
        want: list[int | None] = [None] * r
        want[ob] = None if n is None else n // bg
        want[of] = kout
        for i in range(k):
            size, win = x.shape[isp[i]], w.shape[ksp[i]]
            if size is None or win is None:
                continue
            padded = (max(size - 1, 0) * lhs_dil[i] + (1 if size else 0)) + pad[i][0] + pad[i][1]
            dwin = (win - 1) * rhs_dil[i] + 1 if win else 0
            if padded < 0:
                raise self.fail(f"padding makes spatial dimension {i} negative ({padded})")
            want[osp[i]] = 0 if padded < dwin or win == 0 else (padded - dwin) // strides[i] + 1
        if not _same_shape(out.shape, want):
            raise self.fail(f"result shape must be {_fmt(want)}, got {_fmt(out.shape)}")

    def _missing(self, k: str) -> Any:
        raise self.fail(f"dimension numbers lack '{k}'")

    # ------------------------------------------------------------------ not compiled yet
    def _indexing(self, rx: int, idx: ir.TensorType, f: dict[str, Any],
                  groups: list[tuple[str, tuple[int, ...]]], idx_name: str) -> int:
        """The rules gather and scatter share (spec, gather C2-C11 and scatter C6-C14), over
        their own names for: the operand dims the window drops, the operand's batching dims, the
        indices' batching dims and the map from index vector entries to operand dims. Returns
        index_vector_dim."""
        (dropped, d), (batching, b), (idx_batching, ib), (index_map, m) = groups
        ri = len(idx.shape)
        ivd = self.as_int(f.get("index_vector_dim", 0), "index_vector_dim")  # the attribute omits 0
        if not 0 <= ivd <= ri:
            raise self.fail(f"index_vector_dim {ivd} is out of range for {idx_name} of rank {ri}")
        self.dims(d, rx, dropped, sorted_=True)
        self.dims(b, rx, batching, sorted_=True)
        self.disjoint(d, b, f"{dropped} and {batching}")
        self.dims(ib, ri, idx_batching)
        if ivd in ib:
            raise self.fail(f"{idx_batching} must not hold index_vector_dim")
        if len(ib) != len(b):
            raise self.fail(f"{batching} and {idx_batching} must have the same size")
        self.dims(m, rx, index_map)
        self.disjoint(m, b, f"{index_map} and {batching}")
        nidx = idx.shape[ivd] if ivd < ri else 1
        if nidx is not None and len(m) != nidx:
            raise self.fail(f"{index_map} {list(m)} must have {nidx} entries (the index vector's size)")
        return ivd

    def _gather(self) -> None:
        x, idx = self.ins(2, 2)
        (out,) = self.outs(1)
        if not is_int(idx.element):
            raise self.fail(f"start_indices must be integers, got {idx}")
        dn = self.attr("dimension_numbers", required=True)
        if not isinstance(dn, ir.StructAttr):
            raise self.fail("dimension_numbers must be a #stablehlo.gather<...> attribute")
        f = dn.fields
        g = {k: self.as_ints(f.get(k, ()), k) for k in (
            "offset_dims", "collapsed_slice_dims", "operand_batching_dims",
            "start_indices_batching_dims", "start_index_map")}
        rx = len(x.shape)
        ivd = self._indexing(rx, idx, f, [(k, g[k]) for k in (
            "collapsed_slice_dims", "operand_batching_dims", "start_indices_batching_dims",
            "start_index_map")], "start_indices")
        sizes = self.ints_attr("slice_sizes")
        self.sized(sizes, rx, "slice_sizes")
        for i, s in enumerate(sizes):
            if s < 0 or (x.shape[i] is not None and s > x.shape[i]):
                raise self.fail(f"slice_sizes {list(sizes)}: size {s} of dimension {i} is not within "
                                f"[0, {x.shape[i]}]")
            if i in g["collapsed_slice_dims"] + g["operand_batching_dims"] and s > 1:
                raise self.fail(f"slice_sizes[{i}] must be 0 or 1 for a collapsed or batching dimension")
        offsets = [s for i, s in enumerate(sizes)
                   if i not in g["collapsed_slice_dims"] and i not in g["operand_batching_dims"]]
        batch = [s for i, s in enumerate(idx.shape) if i != ivd]
        rank = len(offsets) + len(batch)
        self.sized(g["offset_dims"], len(offsets), "offset_dims")
        self.dims(g["offset_dims"], rank, "offset_dims", sorted_=True)
        want, oi, bi = [], iter(offsets), iter(batch)
        for i in range(rank):
            want.append(next(oi) if i in g["offset_dims"] else next(bi))
        self.expect_type(out, want, x.element)

    def _scatter(self) -> None:
        ins = self.ins(3)
        if len(ins) % 2 == 0:
            raise self.fail(f"takes N inputs, the indices and N updates, got {len(ins)} operands")
        n = (len(ins) - 1) // 2
        inputs, idx, updates = ins[:n], ins[n], ins[n + 1:]
        outs = self.outs(n)
        if not is_int(idx.element):
            raise self.fail(f"scatter_indices must be integers, got {idx}")
        for i in range(n):
            if not _same_shape(inputs[i].shape, inputs[0].shape) or \
                    not _same_shape(updates[i].shape, updates[0].shape):
                raise self.fail("inputs (and updates) must have the same shapes")
            if updates[i].element != inputs[i].element:
                raise self.fail(f"update #{i} must have the element type of input #{i}")
            self.expect_type(outs[i], inputs[i].shape, inputs[i].element, f"result #{i}")
        dn = self.attr("scatter_dimension_numbers", required=True)
        if not isinstance(dn, ir.StructAttr):
            raise self.fail("scatter_dimension_numbers must be a #stablehlo.scatter<...> attribute")
        f = dn.fields
        s = {k: self.as_ints(f.get(k, ()), k) for k in (
            "update_window_dims", "inserted_window_dims", "input_batching_dims",
            "scatter_indices_batching_dims", "scatter_dims_to_operand_dims")}
        x, u = inputs[0], updates[0]
        rx, ru = len(x.shape), len(u.shape)
        self.dims(s["update_window_dims"], ru, "update_window_dims", sorted_=True)
        ivd = self._indexing(rx, idx, f, [(k, s[k]) for k in (
            "inserted_window_dims", "input_batching_dims", "scatter_indices_batching_dims",
            "scatter_dims_to_operand_dims")], "scatter_indices")
        if rx != len(s["update_window_dims"]) + len(s["inserted_window_dims"]) + len(s["input_batching_dims"]):
            raise self.fail("rank(inputs) must equal size(update_window_dims) + size(inserted_window_dims)"
                            " + size(input_batching_dims)")
        batch = [d for i, d in enumerate(idx.shape) if i != ivd]
        if ru != len(s["update_window_dims"]) + len(batch):
            raise self.fail(f"updates {u} must have rank {len(s['update_window_dims']) + len(batch)}")
        scatter_dims = [i for i in range(ru) if i not in s["update_window_dims"]]
        if not _same_shape([u.shape[i] for i in scatter_dims], batch):
            raise self.fail(f"update scatter dimensions {_fmt(u.shape[i] for i in scatter_dims)} must "
                            f"equal the indices' batch dimensions {_fmt(batch)}")
        window = [d for i, d in enumerate(x.shape)
                  if i not in s["inserted_window_dims"] and i not in s["input_batching_dims"]]
        for j, i in enumerate(s["update_window_dims"]):
            if u.shape[i] is not None and window[j] is not None and u.shape[i] > window[j]:
                raise self.fail(f"update window dimension {i} (size {u.shape[i]}) exceeds the input's "
                                f"({window[j]})")
        self.scalar_body(0, [t.element for t in inputs], "update_computation")

    def _sort(self) -> None:
        ins = self.ins(1)
        outs = self.outs(len(ins))
        for i, (t, o) in enumerate(zip(ins, outs)):
            if not _same_shape(t.shape, ins[0].shape):
                raise self.fail(f"inputs must have the same shape, got {ins[0]} and {t}")
            self.expect_type(o, t.shape, t.element, f"result #{i}")
        r = len(ins[0].shape)
        d = self.int_attr("dimension", -1)
        if not -r <= d < r:
            raise self.fail(f"dimension {d} is out of range for rank {r}")
        scalars = [ir.TensorType((), t.element) for t in ins for _ in range(2)]
        out = self.region(0, scalars, "comparator")
        if out != [ir.TensorType((), "i1")]:
            raise self.fail(f"comparator region must return tensor<i1>, returns ({_types(out)})")

    def _while(self) -> None:
        ins = [v.type for v in self.op.operands]
        if [r.type for r in self.op.results] != ins:
            raise self.fail("result types must equal operand types")
        if self.region(0, ins, "cond") != [ir.TensorType((), "i1")]:
            raise self.fail("cond region must return one tensor<i1>")
        out = self.region(1, ins, "body")
        if out != ins:
            raise self.fail(f"body region returns ({_types(out)}), must return ({_types(ins)})")

    def _branches(self, first: int) -> None:
        res = [r.type for r in self.op.results]
        for i in range(first, len(self.op.regions)):
            out = self.region(i, [], f"branch #{i - first}")
            if out != res:
                raise self.fail(f"branch #{i - first} returns ({_types(out)}), the op returns ({_types(res)})")

    def _case(self) -> None:
        (i,) = self.ins(1, 1)
        if i != ir.TensorType((), "i32"):
            raise self.fail(f"index must be tensor<i32>, got {i}")
        if not self.op.regions:
            raise self.fail("needs at least one branch")
        self._branches(0)

    def _if(self) -> None:
        (p,) = self.ins(1, 1)
        if p != ir.TensorType((), "i1"):
            raise self.fail(f"pred must be tensor<i1>, got {p}")
        if len(self.op.regions) != 2:
            raise self.fail(f"needs two branches, got {len(self.op.regions)}")
        self._branches(0)

    def _window(self, base: ir.TensorType, prefix: str = "") -> list[int | None]:
        """reduce_window / select_and_scatter window attributes; returns the windowed shape."""
        r = len(base.shape)
        wd = self.ints_attr("window_dimensions")
        ws = self.ints_attr("window_strides", (1,) * r) or (1,) * r
        bd = self.ints_attr("base_dilations", (1,) * r) or (1,) * r
        wdl = self.ints_attr("window_dilations", (1,) * r) or (1,) * r
        for what, v in (("window_dimensions", wd), ("window_strides", ws), ("base_dilations", bd),
                        ("window_dilations", wdl)):
            self.sized(v, r, what)
            self.positive(v, what)
        pad = self.padding(r)
        out: list[int | None] = []
        for i, size in enumerate(base.shape):
            if size is None:
                out.append(None)
                continue
            padded = (max(size - 1, 0) * bd[i] + (1 if size else 0)) + pad[i][0] + pad[i][1]
            if padded < 0:
                raise self.fail(f"padding makes dimension {i} negative ({padded})")
            dwin = (wd[i] - 1) * wdl[i] + 1
            out.append(0 if padded < dwin else (padded - dwin) // ws[i] + 1)
        return out

    def _reduce_window(self) -> None:
        inputs, _ = self._inputs_inits()
        outs = self.outs(len(inputs))
        want = self._window(inputs[0])
        for i, (t, o) in enumerate(zip(inputs, outs)):
            self.expect_type(o, want, t.element, f"result #{i}")
        self.scalar_body(0, [t.element for t in inputs], "body")

    def _select_and_scatter(self) -> None:
        x, src, init = self.ins(3, 3)
        (out,) = self.outs(1)
        if init.shape != () or init.element != x.element:
            raise self.fail(f"init_value must be a scalar of {x.element}, got {init}")
        want = self._window(x)
        self.expect_type(src, want, src.element, "source")
        self.expect_type(out, x.shape, x.element)
        s = ir.TensorType((), x.element)
        if self.region(0, [s, s], "select") != [ir.TensorType((), "i1")]:
            raise self.fail("select region must return tensor<i1>")
        self.scalar_body(1, [src.element], "scatter")

    def _dynamic_starts(self, starts: Sequence[ir.TensorType], rank: int) -> None:
        if len(starts) != rank:
            raise self.fail(f"takes {rank} start indices (one per dimension), got {len(starts)}")
        for t in starts:
            if t.shape != () or not is_int(t.element) or t != starts[0]:
                raise self.fail(f"start indices must be integer scalars of one type, got {t}")

    def _dynamic_slice(self) -> None:
        ins = self.ins(1)
        (out,) = self.outs(1)
        x = ins[0]
        self._dynamic_starts(ins[1:], len(x.shape))
        sizes = self.ints_attr("slice_sizes")
        self.sized(sizes, len(x.shape), "slice_sizes")
        for i, s in enumerate(sizes):
            if s < 0 or (x.shape[i] is not None and s > x.shape[i]):
                raise self.fail(f"slice_sizes[{i}] = {s} is not within [0, {x.shape[i]}]")
        self.expect_type(out, sizes, x.element)

    def _dynamic_update_slice(self) -> None:
        ins = self.ins(2)
        (out,) = self.outs(1)
        x, u = ins[0], ins[1]
        if len(u.shape) != len(x.shape) or u.element != x.element:
            raise self.fail(f"update {u} must have the rank and element type of the operand {x}")
        for i, (a, b) in enumerate(zip(u.shape, x.shape)):
            if a is not None and b is not None and a > b:
                raise self.fail(f"update dimension {i} (size {a}) exceeds the operand's ({b})")
        self._dynamic_starts(ins[2:], len(x.shape))
        self.expect_type(out, x.shape, x.element)

    def _rng_bit_generator(self) -> None:
        (state,) = self.ins(1, 1)
        outs = self.outs(2)
        alg = getattr(self.attr("rng_algorithm", required=True), "value", None)
        if alg not in _RNG_ALGORITHMS:
            raise self.fail(f"rng_algorithm must be one of {sorted(_RNG_ALGORITHMS)}")
        if outs[0] != state:
            raise self.fail(f"output_state type {outs[0]} must equal initial_state type {state}")
        sizes = _RNG_ALGORITHMS[alg]
        if len(state.shape) != 1 or not is_int(state.element) or (
                sizes is not None and state.shape[0] not in sizes):
            raise self.fail(f"initial_state {state} does not fit rng_algorithm {alg}")
        if not (is_int(outs[1].element) or is_float(outs[1].element)):
            raise self.fail(f"output must be integers or floats, got {outs[1]}")

    def _get_tuple_element(self) -> None:
        (t,) = [v.type for v in self.op.operands] or [None]
        if not isinstance(t, ir.TupleType):
            raise self.fail(f"operand must be a tuple, got {t}")
        i = self.int_attr("index")
        if not 0 <= i < len(t.types):
            raise self.fail(f"index {i} is out of range for a tuple of {len(t.types)}")
        if [r.type for r in self.op.results] != [t.types[i]]:
            raise self.fail(f"result type must be {t.types[i]}")


def _walk(ops: Iterable[ir.Operation]) -> Iterable[ir.Operation]:
    for op in ops:
        yield op
        for region in op.regions:
            for b in region.blocks:
                yield from _walk(b.ops)


def _types(ts: Iterable[Any]) -> str:
    return ", ".join(str(t) for t in ts)


__all__ = ["verify", "DRAM_BYTES"]
