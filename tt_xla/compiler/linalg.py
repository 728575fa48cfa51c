"""Linear algebra: the LAPACK custom_calls JAX's CPU export emits, as StableHLO loops.

`jnp.linalg.cholesky`, `jax.scipy.linalg.solve_triangular` & co. export as
`stablehlo.custom_call @lapack_<s|d|c|z>potrf_ffi` / `@lapack_<s|d|c|z>trsm_ffi` (num_batch_dims leading
batch dims, column-major operand layouts, which are physical only: the op's meaning is on the
logical tensors). Each one is expanded here, before inlining, into a private function written in
ordinary StableHLO. Every routine is blocked (see BASE): matmuls join blocks of at most BASE
columns, each solved by a `while` over its columns whose body is dynamic slices, elementwise
work and a rank-1 update of the block (masked by iota compares, so shapes stay static). The
loops become the runtime's control stream (control.py) and every piece is fused like any other
graph; nothing in the runtime knows about linear algebra.

Any other custom_call target is an UnsupportedError naming the target and the user's line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..errors import UnsupportedError
from ..hlo_parser import ir, parse_module
from ..hlo_parser.verify import verify

_LAPACK = re.compile(r"lapack_([sdcz])(\w+?)_ffi$")
HANDLED = ("potrf", "trsm", "getrf", "geqrf", "orgqr")  # LAPACK routines expanded here (s, d, c and z)
ALIASES = {"ungqr": "orgqr"}  # LAPACK's complex name for the same routine
# A complex routine is the real one's algorithm on complex tensors (complex_split.py legalizes
# them to real pairs): transposes become conjugate transposes where LAPACK's do (see _Fn.matmul,
# _Fn.adjoint_last), and the few real-only steps (pivots' signs and sizes, Householder's beta)
# work on the real part (see REAL).
REAL = {"complex<f32>": "f32", "complex<f64>": "f64"}
NARROW = ("bf16", "f16")  # stablehlo.triangular_solve takes these too: computed in f32


STABLEHLO = {"stablehlo.cholesky": "potrf", "stablehlo.triangular_solve": "trsm"}  # the same math


def handles(op: ir.Operation) -> bool:
    """Whether `op` is an op this module expands (a custom_call of any target is claimed, so an
    unknown target gets an error naming it rather than a generic one)."""
    return op.name == "stablehlo.custom_call" or op.name in STABLEHLO


def expand(op: ir.Operation, loc: ir.Location | None) -> ir.Function:
    """The function computing `op` (same operands and results, maybe one more: stablehlo.cholesky
    is potrf without its `info`, which the caller then ignores), parsed from StableHLO text;
    every op in it (and any error about it) carries `loc`, the user's line of the call."""
    types = [v.type for v in op.operands]
    if op.name in STABLEHLO:
        routine, target = STABLEHLO[op.name], op.name
        at = op.attributes
        trans = str(getattr(at.get("transpose_a"), "value", "NO_TRANSPOSE"))
        flags = {"uplo": "L" if at.get("lower", True) else "U", "side": "L" if at.get("left_side", True) else "R",
                 "diag": "U" if at.get("unit_diagonal", False) else "N",
                 "trans_x": {"NO_TRANSPOSE": "N", "TRANSPOSE": "T", "ADJOINT": "C"}.get(trans, "N")}
    else:
        target = str(op.attributes.get("call_target_name", "?"))
        m = _LAPACK.match(target)
        routine = ALIASES.get(m.group(2), m.group(2)) if m else ""
        if routine not in HANDLED:
            raise UnsupportedError(f"custom_call target @{target} is not supported by tt-xla", op.name, loc)
        cfg = op.attributes.get("mhlo.backend_config", {}) or {}
        flags = {k: chr(int(getattr(v, "value", v))) for k, v in dict(cfg).items()}
    if not types or any(not isinstance(t, ir.TensorType) or any(d is None for d in t.shape) for t in types) \
            or len(types[0].shape) < 2:
        raise UnsupportedError(f"{target} on operands of types {[str(t) for t in types]}", op.name, loc)
    nb = int(dict(op.attributes.get("mhlo.frontend_attributes", {}) or {}).get("num_batch_dims", len(types[0].shape) - 2))
    if nb != len(types[0].shape) - 2:
        raise UnsupportedError(f"@{target} with {nb} batch dims on a rank-{len(types[0].shape)} operand", op.name, loc)
    if types[0].element not in ("f32", "f64") + tuple(REAL) + (NARROW if routine == "trsm" else ()):
        raise UnsupportedError(f"{target} on {types[0].element} (f32, f64, complex64 and complex128 are supported)",
                               op.name, loc)
    bad = _shape_problem(routine, [tuple(t.shape) for t in types], {t.element for t in types})
    if bad:
        raise UnsupportedError(f"{target}: {bad}", op.name, loc)
    text = {"potrf": _potrf, "trsm": _trsm, "getrf": _getrf, "geqrf": _geqrf, "orgqr": _orgqr}[routine](types, flags)
    # stablehlo.cholesky is potrf without its `info`: the routine's extra trailing result is dropped
    return expansion(text, f"<linalg {target}>", op, loc, extra_results=op.name in STABLEHLO)


def expansion(text: str, source: str, op: ir.Operation, loc: ir.Location | None, *,
              extra_results: bool = False, prepare: Callable[[ir.Function], None] | None = None) -> ir.Function:
    """The function `text` defines as `main`, standing for `op` (a custom_call, or an op expanded
    the same way): parsed, given to `prepare` (to fill in what text cannot carry), verified like
    the user's program it joins, its results checked against op's (with `extra_results`, op's are
    a prefix of the function's, which the caller ignores), every op moved to `loc`, the user's
    line. The one tail of every expansion (linalg, eig, tridiag, fft)."""
    module = parse_module(text, source)
    fn = module.functions["main"]
    if prepare is not None:
        prepare(fn)
    verify(module)
    want = [str(r.type) for r in op.results]
    got = [str(t) for t in fn.result_types]
    if (got[:len(want)] if extra_results else got) != want or len(want) > len(got):
        target = op.attributes.get("call_target_name", op.name)
        raise UnsupportedError(f"{target}: results {want} are not the routine's {got}", op.name, loc)
    _relocate(fn.body, loc)
    return fn


def _shape_problem(routine: str, shapes: list[tuple[int, ...]], elements: set[str]) -> str | None:
    """What is wrong with the operands' shapes for `routine`, if anything (the routines' own
    argument checks: LAPACK's `info < 0` cases), so no expansion is built from a bad program."""
    arity = {"potrf": 1, "getrf": 1, "geqrf": 1, "trsm": 2, "orgqr": 2}[routine]
    if len(shapes) != arity or len(elements) != 1:
        return f"expects {arity} operand(s) of one element type"
    a = shapes[0]
    if routine in ("potrf", "trsm") and a[-1] != a[-2]:
        return f"matrix of shape {list(a)} is not square"
    if routine == "trsm":
        b = shapes[1]
        if len(b) != len(a) or b[:-2] != a[:-2] or a[-1] not in b[-2:]:
            return f"right-hand side of shape {list(b)} does not fit a matrix of shape {list(a)}"
    if routine == "orgqr":
        t = shapes[1]
        if len(t) != len(a) - 1 or t[:-1] != a[:-2] or t[-1] > min(a[-2:]):
            return f"tau of shape {list(t)} does not fit reflectors of shape {list(a)}"
    return None


def _relocate(block: ir.Block, loc: ir.Location | None) -> None:
    for o in block.ops:
        o.loc = loc
        for r in o.regions:
            for b in r.blocks:
                _relocate(b, loc)


# --------------------------------------------------------------------------- text emitter
def _t(shape: tuple[int, ...], el: str) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + el + ">"


class _Fn:
    """Straight-line StableHLO text with fresh SSA names (`%<prefix><n>`: a loop's condition and
    body get prefixes of their own, so no name is defined twice however many loops there are)."""

    prefix = "v"  # a class default too: a subclass with its own __init__ (eig.py's) keeps working

    def __init__(self, prefix: str = "v") -> None:
        self.lines: list[str] = []
        self.n = 0
        self.prefix = prefix

    def region(self, prefix: str) -> "_Fn":
        """An emitter for a region of an op this one emits (its names from `prefix`)."""
        return _Fn(prefix)

    def __call__(self, text: str) -> str:
        self.n += 1
        name = f"%{self.prefix}{self.n}"
        self.lines.append(f"{name} = {text}")
        return name

    def const(self, value: str, el: str, shape: tuple[int, ...] = ()) -> str:
        c = self(f"stablehlo.constant dense<{value}> : {_t((), el)}")
        return self.bcast(c, (), el, shape, ()) if shape else c

    def bcast(self, x: str, src: tuple[int, ...], el: str, shape: tuple[int, ...], dims: tuple[int, ...]) -> str:
        return self(f"stablehlo.broadcast_in_dim {x}, dims = [{', '.join(map(str, dims))}] : "
                    f"({_t(src, el)}) -> {_t(shape, el)}")

    def iota(self, shape: tuple[int, ...], dim: int) -> str:
        return self(f"stablehlo.iota dim = {dim} : {_t(shape, 'i32')}")

    def cmp(self, d: str, a: str, b: str, shape: tuple[int, ...], el: str) -> str:
        kind = "FLOAT" if el.startswith("f") or el in REAL else "SIGNED"
        return self(f"stablehlo.compare {d}, {a}, {b}, {kind} : ({_t(shape, el)}, {_t(shape, el)}) -> {_t(shape, 'i1')}")

    def sel(self, p: str, a: str, b: str, shape: tuple[int, ...], el: str) -> str:
        return self(f"stablehlo.select {p}, {a}, {b} : {_t(shape, 'i1')}, {_t(shape, el)}")

    def bin(self, op: str, a: str, b: str, shape: tuple[int, ...], el: str) -> str:
        return self(f"stablehlo.{op} {a}, {b} : {_t(shape, el)}")

    def un(self, op: str, a: str, shape: tuple[int, ...], el: str) -> str:
        return self(f"stablehlo.{op} {a} : {_t(shape, el)}")

    def reduce(self, op: str, x: str, init: str, shape: tuple[int, ...], el: str, dim: int) -> str:
        out = shape[:dim] + shape[dim + 1:]
        return self(f"stablehlo.reduce({x} init: {init}) applies stablehlo.{op} across dimensions = [{dim}] : "
                    f"({_t(shape, el)}, {_t((), el)}) -> {_t(out, el)}")

    def transpose_last(self, a: str, shape: tuple[int, ...], el: str) -> str:
        r = len(shape)
        perm = list(range(r - 2)) + [r - 1, r - 2]
        out = tuple(shape[p] for p in perm)
        return self(f"stablehlo.transpose {a}, dims = [{', '.join(map(str, perm))}] : ({_t(shape, el)}) -> {_t(out, el)}")

    def adjoint_last(self, a: str, shape: tuple[int, ...], el: str) -> str:
        """The conjugate transpose of the last two dims (the transpose of a real matrix)."""
        return self.conj(self.transpose_last(a, shape, el), shape[:-2] + (shape[-1], shape[-2]), el)

    def conj(self, x: str, shape: tuple[int, ...], el: str) -> str:
        if el not in REAL:
            return x
        return self.join(self.real(x, shape, el), self.un("negate", self.imag(x, shape, el), shape, REAL[el]), shape, el)

    def real(self, x: str, shape: tuple[int, ...], el: str) -> str:
        """x's real part (x itself when real)."""
        return self(f"stablehlo.real {x} : ({_t(shape, el)}) -> {_t(shape, REAL[el])}") if el in REAL else x

    def imag(self, x: str, shape: tuple[int, ...], el: str) -> str:
        return self(f"stablehlo.imag {x} : ({_t(shape, el)}) -> {_t(shape, REAL[el])}")

    def join(self, re: str, im: str | None, shape: tuple[int, ...], el: str) -> str:
        """The complex re + i im (im = 0 when None) of type `el`; `re` itself when `el` is real."""
        if el not in REAL:
            return re
        im = self.const("0", REAL[el], shape) if im is None else im
        return self(f"stablehlo.complex {re}, {im} : {_t(shape, el)}")

    def rdiv(self, x: str, d: str, shape: tuple[int, ...], el: str) -> str:
        """x / d for a `d` of x's real type: part by part for complex (LAPACK's scaling by a real,
        which keeps an infinite part's partner as it is, where a complex division would not)."""
        if el not in REAL:
            return self.bin("divide", x, d, shape, el)
        re = REAL[el]
        return self.join(self.bin("divide", self.real(x, shape, el), d, shape, re),
                         self.bin("divide", self.imag(x, shape, el), d, shape, re), shape, el)

    def recip(self, d: str, shape: tuple[int, ...], el: str) -> str:
        """1 / d. Complex: the reciprocal as BLAS's trsm and getf2 kernels compute the pivots' (Smith's
        ratio on the larger part), which they then multiply by: 1 / 0 is NaN there, not inf."""
        if el not in REAL:
            return self.bin("divide", self.const("1", el, shape), d, shape, el)
        re, (ar, ai) = REAL[el], (self.real(d, shape, el), self.imag(d, shape, el))
        big_re = self.cmp("GE", self.un("abs", ar, shape, re), self.un("abs", ai, shape, re), shape, re)
        p, q = self.sel(big_re, ar, ai, shape, re), self.sel(big_re, ai, ar, shape, re)  # |p| >= |q|
        ratio = self.bin("divide", q, p, shape, re)
        one = self.const("1", re, shape)
        den = self.bin("divide", one, self.bin("multiply", p, self.bin("add", one, self.bin("multiply", ratio, ratio, shape, re),
                                                                        shape, re), shape, re), shape, re)
        nr = self.un("negate", self.bin("multiply", ratio, den, shape, re), shape, re)
        # |re| >= |im|: (den, -ratio den); else (ratio den, -den)
        return self.join(self.sel(big_re, den, self.un("negate", nr, shape, re), shape, re),
                         self.sel(big_re, nr, self.un("negate", den, shape, re), shape, re), shape, el)

    def pivot_div(self, x: str, d: str, shape: tuple[int, ...], el: str) -> str:
        """x / d for a pivot d of x's type, as BLAS's trsm and getf2 kernels divide: complex, x times
        d's reciprocal (recip), so a zero pivot gives NaN where a complex division gives inf."""
        if el not in REAL:
            return self.bin("divide", x, d, shape, el)
        return self.bin("multiply", x, self.recip(d, shape, el), shape, el)

    def reverse(self, a: str, dims: list[int], shape: tuple[int, ...], el: str) -> str:
        return self(f"stablehlo.reverse {a}, dims = [{', '.join(map(str, dims))}] : {_t(shape, el)}")

    def dslice(self, a: str, shape: tuple[int, ...], el: str, starts: list[str], sizes: tuple[int, ...]) -> str:
        its = ", ".join(["tensor<i32>"] * len(starts))
        return self(f"stablehlo.dynamic_slice {a}, {', '.join(starts)}, sizes = [{', '.join(map(str, sizes))}] : "
                    f"({_t(shape, el)}, {its}) -> {_t(sizes, el)}")

    def dupdate(self, a: str, u: str, shape: tuple[int, ...], ushape: tuple[int, ...], el: str,
                starts: list[str]) -> str:
        its = ", ".join(["tensor<i32>"] * len(starts))
        return self(f"stablehlo.dynamic_update_slice {a}, {u}, {', '.join(starts)} : "
                    f"({_t(shape, el)}, {_t(ushape, el)}, {its}) -> {_t(shape, el)}")

    def reshape(self, x: str, src: tuple[int, ...], out: tuple[int, ...], el: str) -> str:
        return x if src == out else self(f"stablehlo.reshape {x} : ({_t(src, el)}) -> {_t(out, el)}")

    def ranges(self, x: str, shape: tuple[int, ...], el: str, rng: list[tuple[int, int, int]]) -> str:
        """x[lo:hi:stride, ...] with one (lo, hi, stride) per dimension (a static slice)."""
        out = tuple(-(-(hi - lo) // st) for lo, hi, st in rng)
        text = ", ".join(f"{lo}:{hi}:{st}" for lo, hi, st in rng)
        return self(f"stablehlo.slice {x} [{text}] : ({_t(shape, el)}) -> {_t(out, el)}")

    def transpose(self, x: str, shape: tuple[int, ...], el: str, perm: tuple[int, ...]) -> str:
        out = tuple(shape[p] for p in perm)
        return self(f"stablehlo.transpose {x}, dims = [{', '.join(map(str, perm))}] : ({_t(shape, el)}) -> {_t(out, el)}")

    def block(self, a: str, shape: tuple[int, ...], el: str, rows: tuple[int, int], cols: tuple[int, int]) -> str:
        """a[..., rows[0]:rows[1], cols[0]:cols[1]] (a static slice of the last two dims)."""
        rng = [f"0:{d}" for d in shape[:-2]] + [f"{rows[0]}:{rows[1]}", f"{cols[0]}:{cols[1]}"]
        out = shape[:-2] + (rows[1] - rows[0], cols[1] - cols[0])
        return self(f"stablehlo.slice {a} [{', '.join(rng)}] : ({_t(shape, el)}) -> {_t(out, el)}")

    def part(self, v: str, shape: tuple[int, ...], el: str, lo: int, hi: int) -> str:
        """v[..., lo:hi] of a per-matrix vector v [*bs, n] (pivots, row orders, tau)."""
        rng = [f"0:{d}" for d in shape[:-1]] + [f"{lo}:{hi}"]
        return self(f"stablehlo.slice {v} [{', '.join(rng)}] : ({_t(shape, el)}) -> {_t(shape[:-1] + (hi - lo,), el)}")

    def concat(self, parts: list[tuple[str, tuple[int, ...]]], dim: int, el: str) -> str:
        shape = list(parts[0][1])
        shape[dim] = sum(s[dim] for _, s in parts)
        return self(f"stablehlo.concatenate {', '.join(v for v, _ in parts)}, dim = {dim} : "
                    f"({', '.join(_t(s, el) for _, s in parts)}) -> {_t(tuple(shape), el)}")

    def grid(self, rows: list[list[tuple[str, tuple[int, ...]]]], el: str) -> str:
        """A matrix assembled from blocks (a list of block rows, each a list of (name, shape))."""
        r = len(rows[0][0][1])
        whole = [(self.concat(row, r - 1, el) if len(row) > 1 else row[0][0],
                  row[0][1][:-1] + (sum(s[-1] for _, s in row),)) for row in rows]
        return self.concat(whole, r - 2, el) if len(whole) > 1 else whole[0][0]

    def matmul(self, a: str, ashape: tuple[int, ...], b: str, bshape: tuple[int, ...], el: str,
               ta: bool = False, tb: bool = False) -> str:
        """op(a) @ op(b) per matrix of the batch (op = transpose where `ta`/`tb`, the conjugate
        transpose for complex: every transposed product here is an adjoint in the complex
        routines): one dot_general, which the matrix engine runs."""
        a = self.conj(a, ashape, el) if ta else a
        b = self.conj(b, bshape, el) if tb else b
        r = len(ashape)
        nb = r - 2
        ca, cb = (r - 2 if ta else r - 1), (r - 1 if tb else r - 2)
        out = ashape[:-2] + (ashape[-1] if ta else ashape[-2], bshape[-2] if tb else bshape[-1])
        batch = f"batching_dims = [{', '.join(map(str, range(nb)))}] x [{', '.join(map(str, range(nb)))}], " \
            if nb else ""
        return self(f"stablehlo.dot_general {a}, {b}, {batch}contracting_dims = [{ca}] x [{cb}] : "
                    f"({_t(ashape, el)}, {_t(bshape, el)}) -> {_t(out, el)}")

    def rows_of(self, a: str, shape: tuple[int, ...], el: str, perm: str, count: int | None = None) -> str:
        """a's rows in the order `perm` ([.., count] i32, count = a's row count unless given)
        gives, each matrix of a batch by its own (a gather with batching dims)."""
        nb = len(shape) - 2
        m = shape[-2] if count is None else count
        out = shape[:-2] + (m, shape[-1])
        idx = self(f"stablehlo.reshape {perm} : ({_t(shape[:-2] + (m,), 'i32')}) -> {_t(shape[:-2] + (m, 1), 'i32')}")
        bd = ", ".join(map(str, range(nb)))
        sizes = ", ".join(["1"] * (nb + 1) + [str(shape[-1])])
        return self(f'"stablehlo.gather"({a}, {idx}) {{dimension_numbers = #stablehlo.gather<offset_dims = [{nb + 1}], '
                    f"collapsed_slice_dims = [{nb}], operand_batching_dims = [{bd}], start_indices_batching_dims = [{bd}], "
                    f"start_index_map = [{nb}], index_vector_dim = {nb + 1}>, slice_sizes = array<i64: {sizes}>, "
                    f"indices_are_sorted = false}} : ({_t(shape, el)}, {_t(shape[:-2] + (m, 1), 'i32')}) -> {_t(out, el)}")

    def first_error(self, info1: str, info2: str, offset: int, bs: tuple[int, ...]) -> str:
        """LAPACK's `info` of a matrix split in two at column `offset`: the first part's if it
        failed, else the second part's shifted to whole-matrix columns (0 stays 0)."""
        z = self.const("0", "i32", bs)
        late = self.sel(self.cmp("EQ", info2, z, bs, "i32"), z,
                        self.bin("add", info2, self.const(str(offset), "i32", bs), bs, "i32"), bs, "i32")
        return self.sel(self.cmp("EQ", info1, z, bs, "i32"), late, info1, bs, "i32")


def _module(args: list[str], results: list[str], body: list[str], rets: list[str]) -> str:
    sig = ", ".join(f"%arg{i}: {t}" for i, t in enumerate(args))
    return (f"func.func public @main({sig}) -> ({', '.join(results)}) {{\n  " + "\n  ".join(body) +
            f"\n  return {', '.join(rets)} : {', '.join(results)}\n}}\n")


def _loop(f: _Fn, n: int, carried: list[tuple[str, str]], body, empty: bool = False) -> list[str]:
    """`for j in range(n)` as a stablehlo.while; `body(g, j, names)` emits the step into a fresh
    emitter and returns the new carried names. Returns the loop's results' names. An `empty`
    problem (a zero dim anywhere) runs no step, so none is emitted."""
    if empty or n == 0:
        return [v for v, _ in carried]
    k = len(carried) + 1
    types = ["tensor<i32>"] + [t for _, t in carried]
    zero = f.const("0", "i32")
    f.n += 1
    tag = f"{f.prefix}{f.n}"
    res = f"%w{tag}"
    inits = ", ".join(f"%c{tag}_{i} = {v}" for i, v in enumerate([zero] + [v for v, _ in carried]))
    cond = _Fn(f"{tag}c")
    lim = cond.const(str(n), "i32")
    p = cond(f"stablehlo.compare LT, %c{tag}_0, {lim}, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>")
    g = _Fn(f"{tag}b")
    names = [f"%c{tag}_{i}" for i in range(k)]
    new = body(g, names[0], names[1:])
    one = g.const("1", "i32")
    nj = g.bin("add", names[0], one, (), "i32")
    f.lines.append(
        f"{res}:{k} = stablehlo.while({inits}) : {', '.join(types)}\n   cond {{\n    " + "\n    ".join(cond.lines) +
        f"\n    stablehlo.return {p} : tensor<i1>\n   }} do {{\n    " + "\n    ".join(g.lines) +
        f"\n    stablehlo.return {', '.join([nj] + new)} : {', '.join(types)}\n   }}")
    return [f"{res}#{i}" for i in range(1, k)]


# --------------------------------------------------------------------------- blocking
# Every factorization here is a compile-time recursion (shapes are static): a block larger than
# BASE is split in two, the halves are factored or solved recursively and what joins them
# (a trailing update, an off-diagonal solve) is a dot_general the matrix engine runs, with no
# loop at all. Only blocks of at most BASE columns run the unblocked column loop, so the
# elementwise O(n^2)-per-step work of those loops is bounded by BASE and the bulk of the flops
# is matmul, summed in the order a blocked LAPACK sums them.
BASE = 32


def _split(n: int) -> int:
    """Where a block of n > BASE columns is split: about half, on a multiple of BASE (the 32-wide
    tile at the default), so every leaf starts on a multiple of BASE: the triangular solve's
    diagonal blocks, inverted all at once (_diag_inverses), are the leaves."""
    return (n // 2 + BASE - 1) // BASE * BASE


def _if(f: _Fn, pred: str, types: list[str], then, other) -> list[str]:
    """`then(g)` if the scalar i1 `pred` holds, else `other(g)`, as a stablehlo.if; each emits
    its branch into a fresh emitter and returns the branch's results' names."""
    f.n += 1
    tag = f"{f.prefix}{f.n}"
    regions = []
    for i, body in enumerate((then, other)):
        g = f.region(f"{tag}{'te'[i]}")
        outs = body(g)
        regions.append("\n    ".join(g.lines + [f'"stablehlo.return"({", ".join(outs)}) : ({", ".join(types)}) -> ()']))
    res = f"%i{tag}"
    many = len(types) > 1
    f.lines.append(f'{res}{f":{len(types)}" if many else ""} = "stablehlo.if"({pred}) ({{\n    ' + regions[0] +
                   "\n   }, {\n    " + regions[1] + "\n   }) : (tensor<i1>) -> " +
                   (f"({', '.join(types)})" if many else types[0]))
    return [f"{res}#{i}" for i in range(len(types))] if many else [res]


def _all_finite(f: _Fn, xs: list[tuple[str, tuple[int, ...]]], el: str) -> str:
    """A scalar i1: whether every element of every tensor in `xs` is finite."""
    count = None
    parts = [(p, shape) for x, shape in xs for p in ([f.real(x, shape, el), f.imag(x, shape, el)] if el in REAL else [x])]
    for x, shape in parts:
        bad = f(f"stablehlo.is_finite {x} : ({_t(shape, REAL.get(el, el))}) -> {_t(shape, 'i1')}")
        ones = f.sel(bad, f.const("0", "i32", shape), f.const("1", "i32", shape), shape, "i32")
        c = f(f"stablehlo.reduce({ones} init: {f.const('0', 'i32')}) applies stablehlo.add across dimensions = "
              f"[{', '.join(map(str, range(len(shape))))}] : ({_t(shape, 'i32')}, tensor<i32>) -> tensor<i32>")
        count = c if count is None else f.bin("add", count, c, (), "i32")
    return f.cmp("EQ", count, f.const("0", "i32"), (), "i32")


# --------------------------------------------------------------------------- potrf (Cholesky)
def _potrf(types: list[ir.TensorType], flags: dict[str, str]) -> str:
    """LAPACK ?potrf: the Cholesky factor of the triangle `uplo` names (the other triangle of the
    output is the input's, as LAPACK leaves it) and `info` per matrix: 0, or j+1 for the first
    column j whose pivot is not positive (a NaN one is not counted, as in CPU JAX). Complex:
    the Hermitian matrix the triangle stands for (the diagonal's imaginary part is not read, as
    in ?potrf), A = L L^H."""
    (a_t,) = types
    shape, el = tuple(a_t.shape), a_t.element
    r = len(shape)
    upper = flags.get("uplo", "L") == "U"
    f = _Fn()
    a = "%arg0"
    # _chol reads only the lower triangle (and only the real part of a complex diagonal): an
    # upper one is brought there by an adjoint, a lower one is used as it is (no pass over the
    # matrix to symmetrize it)
    s = f.adjoint_last(a, shape, el) if upper else a
    t, info = _chol(f, s, shape, el)
    lo = _tri_value(f, t, shape, el)
    if upper:
        lo = f.adjoint_last(lo, shape, el)
    # the mask is made here, next to its one use, so it fuses into the select (made before the
    # loops, it was a mask of the whole matrix written and read back)
    row, col = f.iota(shape, r - 2), f.iota(shape, r - 1)
    keep = f.cmp("GE" if not upper else "LE", row, col, shape, "i32")
    out = f.sel(keep, lo, a, shape, el)
    return _module([_t(shape, el)], [_t(shape, el), _t(shape[:-2], "i32")], f.lines, [out, info])


# Trailing updates of at most this many rows are one full product; a larger one is split where
# _chol will split it, and only its lower blocks are computed (the block above the diagonal is
# never read), so the Cholesky's update flops come near n^3 / 3 where full squares took n^3 / 2
# (cholesky_1024: 15 products in the top update, not 1; 64 rows measured 0.94x the host time of
# 128 on one thread, 32 no faster, the modeled time up 1% for the launches)
GRAM_LEAF = 64


@dataclass(frozen=True)
class _Sym:
    """A Hermitian block of n rows known by its lower part, split where _chol splits it (at
    _split(n)): s11 and s22 the diagonal blocks (each a value or a _Sym), s21 the value below s11.
    The block above s21 is never made."""
    s11: "str | _Sym"
    s21: str
    s22: "str | _Sym"


def _sym_parts(f: _Fn, s: "str | _Sym", shape: tuple[int, ...], el: str) -> tuple["str | _Sym", str, "str | _Sym"]:
    """(S11, S21, S22) of s split at _split(n): views of a value, or a _Sym's own blocks."""
    if isinstance(s, _Sym):
        return s.s11, s.s21, s.s22
    n = shape[-1]
    n1 = _split(n)
    return (f.block(s, shape, el, (0, n1), (0, n1)), f.block(s, shape, el, (n1, n), (0, n1)),
            f.block(s, shape, el, (n1, n), (n1, n)))


def _minus_gram(f: _Fn, s: "str | _Sym", shape: tuple[int, ...], p: str, pshape: tuple[int, ...],
                el: str) -> "str | _Sym":
    """s - P P^H, its lower blocks only (a _Sym) when s has more than GRAM_LEAF rows. P P^H, not
    Pt^H Pt: the host matrix engine reads a transposed left operand at about half the speed of a
    transposed right one."""
    n, bs = shape[-1], shape[:-2]
    if n <= GRAM_LEAF:
        assert isinstance(s, str)
        return f.bin("subtract", s, f.matmul(p, pshape, p, pshape, el, tb=True), shape, el)
    n1 = _split(n)
    n2, k = n - n1, pshape[-1]
    s11, s21, s22 = _sym_parts(f, s, shape, el)
    p1, p2 = f.block(p, pshape, el, (0, n1), (0, k)), f.block(p, pshape, el, (n1, n), (0, k))
    return _Sym(_minus_gram(f, s11, bs + (n1, n1), p1, bs + (n1, k), el),
                f.bin("subtract", s21, f.matmul(p2, bs + (n2, k), p1, bs + (n1, k), el, tb=True), bs + (n2, n1), el),
                _minus_gram(f, s22, bs + (n2, n2), p2, bs + (n2, k), el))


class _Tri:
    """A lower-triangular factor as _chol makes it: a leaf's `value` (zeros above its diagonal)
    or, split where _chol splits (at _split(n)), its diagonal blocks t11 and t22 and the block
    l21 below t11 (the one above is zero). The blocks stay apart: the triangular solves read the
    ones they need, and the factor is assembled once (_tri_value), where assembling it at every
    level (a concatenate of concatenates) copied it once a level. A leaf's inverse and a block's
    finiteness test are made once, for every solve that needs them (_leaf_inverse, _tri_finite)."""

    def __init__(self, value: str | None = None, t11: "_Tri | None" = None, l21: str | None = None,
                 t22: "_Tri | None" = None) -> None:
        self.value, self.t11, self.l21, self.t22 = value, t11, l21, t22
        self.inv: str | None = None
        self.finite: str | None = None


def _tri_value(f: _Fn, t: _Tri, shape: tuple[int, ...], el: str) -> str:
    """The factor `t` stands for, as one value: one concatenate of row panels, one a leaf, each a
    concatenate of the leaf's rows of the l21 blocks to its left, the leaf and zeros."""
    if t.value is not None:
        return t.value
    bs, n = shape[:-2], shape[-1]
    rows: list[list[tuple[str, tuple[int, ...]]]] = []

    def walk(t: _Tri, lo: int, size: int, left: list[tuple[str, tuple[int, ...], int]]) -> None:
        if t.value is None:
            n1 = _split(size)
            walk(t.t11, lo, n1, left)
            walk(t.t22, lo + n1, size - n1, left + [(t.l21, bs + (size - n1, n1), lo + n1)])
            return
        row = [(f.block(v, vs, el, (lo - r0, lo - r0 + size), (0, vs[-1])), bs + (size, vs[-1])) for v, vs, r0 in left]
        row.append((t.value, bs + (size, size)))
        if lo + size < n:
            row.append((f.const("0", el, bs + (size, n - lo - size)), bs + (size, n - lo - size)))
        rows.append(row)

    walk(t, 0, n, [])
    return f.grid(rows, el)


def _leaf_inverse(f: _Fn, t: _Tri, shape: tuple[int, ...], el: str) -> str:
    """The inverse of the leaf t [.., k, k] (made once)."""
    if t.inv is None:
        inv, ishape = _diag_inverses(f, t.value, shape, el)
        t.inv = _inv_block(f, inv, ishape, 0, shape[-1], el)
    return t.inv


def _tri_finite(f: _Fn, t: _Tri, shape: tuple[int, ...], el: str) -> str:
    """A scalar i1: whether every block of t, and every leaf's inverse, is finite (made once)."""
    if t.finite is None:
        bs, n = shape[:-2], shape[-1]
        if t.value is not None:
            t.finite = _all_finite(f, [(t.value, shape), (_leaf_inverse(f, t, shape, el), shape)], el)
        else:
            n1 = _split(n)
            ok = f.bin("and", _tri_finite(f, t.t11, bs + (n1, n1), el), _tri_finite(f, t.t22, bs + (n - n1, n - n1), el),
                       (), "i1")
            t.finite = f.bin("and", ok, _all_finite(f, [(t.l21, bs + (n - n1, n1))], el), (), "i1")
    return t.finite


def _chol(f: _Fn, s: "str | _Sym", shape: tuple[int, ...], el: str) -> tuple[_Tri, str]:
    """(L as a _Tri, info) for the symmetric (Hermitian) matrix whose lower triangle is `s`'s (its upper
    one is never read: it may hold anything, NaN included; of a complex diagonal only the real
    part is read), L lower with zeros above. Recursive: L11 of S11, then L21 = S21 L11^-H (a
    triangular solve), then L22 of S22 - L21 L21^H (the matmul, lower blocks only: _minus_gram).
    A failed L11 leaves NaN/garbage below it, which is fine: `info` says so and the caller (jax)
    masks."""
    n, bs = shape[-1], shape[:-2]
    if n <= BASE or 0 in shape:
        assert isinstance(s, str)
        lo, info = _chol_loop(f, s, shape, el)
        return _Tri(lo), info
    n1 = _split(n)
    n2 = n - n1
    s11, s21, s22 = _sym_parts(f, s, shape, el)
    l11, info1 = _chol(f, s11, bs + (n1, n1), el)
    # L21 = S21 L11^-H, solved from the right: no transposes of S21 and L21 to move
    l21 = _tri_solve_right(f, l11, bs + (n1, n1), s21, bs + (n2, n1), el)
    l22, info2 = _chol(f, _minus_gram(f, s22, bs + (n2, n2), l21, bs + (n2, n1), el), bs + (n2, n2), el)
    return _Tri(t11=l11, l21=l21, t22=l22), f.first_error(info1, info2, n1, bs)


def _chol_loop(f: _Fn, s: str, shape: tuple[int, ...], el: str) -> tuple[str, str]:
    """Unblocked right-looking Cholesky: column j of L is the working matrix's column j over the
    sqrt of its pivot, then a rank-1 update of all of it. A step is two reads (the column, its
    pivot) and one write of the whole block (the update, column j replaced by L's, its pivot
    kept raw on the diagonal), so `info` and the diagonal's sqrt are done once, after the loop."""
    bs, n = shape[:-2], shape[-1]
    r = len(shape)
    bshape = bs + (1, 1)
    cshape = bs + (n, 1)
    whole = tuple(range(r))

    def step(g: _Fn, j: str, cur: list[str]) -> list[str]:
        (w,) = cur
        rows, cols, jm = g.iota(shape, r - 2), g.iota(shape, r - 1), g.bcast(j, (), "i32", shape, ())
        # column j and its pivot as masked sums (no index arithmetic: one kernel each); the
        # zeros added are -0, so the sum is the element exactly, -0 included
        nz = g.const("-0.0", el)
        cv = g.reduce("add", g.sel(g.cmp("EQ", cols, jm, shape, "i32"), w, g.const("-0.0", el, shape), shape, el),
                      nz, shape, el, r - 1)
        c = g.reshape(cv, bs + (n,), cshape, el)
        ri = g.iota(cshape, r - 2)
        jc = g.bcast(j, (), "i32", cshape, ())
        at_j = g.cmp("EQ", ri, jc, cshape, "i32")
        d = g.reduce("add", g.sel(at_j, c, g.const("-0.0", el, cshape), cshape, el), nz, cshape, el, r - 2)
        d = g.reshape(d, bs + (1,), bshape, el)
        # the rest is one elementwise kernel over the block: L's column j (c / sqrt(d) below
        # the pivot, sqrt(d) on it) taken along rows and along columns, the rank-1 update, and
        # column j replaced by L's with the raw pivot on the diagonal; the columns before j
        # are L's and stay (a NaN pivot's 0 * NaN must not reach them)
        sqr = g.un("sqrt", g.real(g.bcast(d, bshape, el, shape, whole), shape, el), shape, REAL.get(el, el))
        sq = g.join(sqr, None, shape, el)  # the pivot's sqrt is real, as ?potrf's
        z = g.const("0", el, shape)

        def lcol(idx: str, along: tuple[int, ...]) -> str:
            cm = g.bcast(c, cshape, el, shape, along)
            return g.sel(g.cmp("GT", idx, jm, shape, "i32"), g.rdiv(cm, sqr, shape, el),
                         g.sel(g.cmp("EQ", idx, jm, shape, "i32"), sq, z, shape, el), shape, el)

        li, lk = lcol(rows, whole), g.conj(lcol(cols, tuple(range(r - 2)) + (r - 1, r - 2)), shape, el)
        upd = g.bin("subtract", w, g.bin("multiply", li, lk, shape, el), shape, el)
        newcol = g.sel(g.cmp("EQ", rows, jm, shape, "i32"), g.bcast(d, bshape, el, shape, whole), li, shape, el)
        upd = g.sel(g.cmp("EQ", cols, jm, shape, "i32"), newcol, upd, shape, el)
        return [g.sel(g.cmp("LT", cols, jm, shape, "i32"), w, upd, shape, el)]

    (w,) = _loop(f, n, [(s, _t(shape, el))], step, 0 in shape)
    if 0 in shape:
        return f.const("0", el, shape), f.const("0", "i32", bs)
    # the pivots, raw on the diagonal: info is the first one <= 0 (a NaN one is not a failure:
    # CPU JAX's potrf tests `ajj <= 0` only, so the NaN spreads through the columns after it)
    flat = f.reshape(w, shape, bs + (n * n,), el)
    piv = f.ranges(flat, bs + (n * n,), el, [(0, d, 1) for d in bs] + [(0, n * n, n + 1)])
    vs = bs + (n,)
    bad = f.cmp("LE", f.real(piv, vs, el), f.const("0", REAL.get(el, el), vs), vs, REAL.get(el, el))
    col = f.bin("add", f.iota(vs, r - 2), f.const("1", "i32", vs), vs, "i32")
    big = f.const(str(n + 1), "i32", vs)
    first = f.reduce("minimum", f.sel(bad, col, big, vs, "i32"), f.const(str(n + 1), "i32"), vs, "i32", r - 2)
    info = f.sel(f.cmp("EQ", first, f.const(str(n + 1), "i32", bs), bs, "i32"), f.const("0", "i32", bs), first, bs, "i32")
    row, cl = f.iota(shape, r - 2), f.iota(shape, r - 1)
    lo = f.sel(f.cmp("GT", row, cl, shape, "i32"), w,
               f.sel(f.cmp("EQ", row, cl, shape, "i32"), _real_sqrt(f, w, shape, el), f.const("0", el, shape), shape, el),
               shape, el)
    return lo, info


def _real_sqrt(f: _Fn, x: str, shape: tuple[int, ...], el: str) -> str:
    """sqrt of x's real part, as `el` (a Cholesky pivot: real, as ?potrf's, even in a complex matrix)."""
    return f.join(f.un("sqrt", f.real(x, shape, el), shape, REAL.get(el, el)), None, shape, el)


# --------------------------------------------------------------------------- trsm (triangular solve)
def _trsm(types: list[ir.TensorType], flags: dict[str, str]) -> str:
    """BLAS ?trsm: X with op(A) X = B (side L) or X op(A) = B (side R), op(A) = A, A^T or A^H
    (trans_x N/T/C; C is T for reals), A's `uplo` triangle only, unit diagonal if diag = U. Every
    case is brought to a lower-triangular left solve: a right solve is the left solve of the
    transposes, an upper one the lower one with rows and columns reversed. bf16/f16 solve in
    f32 and round once."""
    a_t, b_t = types
    io = a_t.element
    el = "f32" if io in NARROW else io
    ashape, bshape = tuple(a_t.shape), tuple(b_t.shape)
    r = len(ashape)
    f = _Fn()
    a, b = "%arg0", "%arg1"
    if io != el:
        a = f(f"stablehlo.convert {a} : ({_t(ashape, io)}) -> {_t(ashape, el)}")
        b = f(f"stablehlo.convert {b} : ({_t(bshape, io)}) -> {_t(bshape, el)}")
    trans, left = flags.get("trans_x", "N") in ("T", "C"), flags.get("side", "L") == "L"
    # (X M = B  <=>  M^T X^T = B^T; P M P is lower for the reversal P of an upper M: solve
    # (PMP)(PX) = PB)
    lower = (flags.get("uplo", "L") == "L") ^ trans ^ (not left)
    xshape = bshape if left else bshape[:-2] + (bshape[-1], bshape[-2])

    def a_in(g: _Fn, flip: bool = True) -> str:
        m = (g.adjoint_last if flags["trans_x"] == "C" else g.transpose_last)(a, ashape, el) if trans else a
        m = m if left else g.transpose_last(m, ashape, el)
        return m if lower or not flip else g.reverse(m, [r - 2, r - 1], ashape, el)

    def b_in(g: _Fn) -> str:
        x = b if left else g.transpose_last(b, bshape, el)
        return x if lower else g.reverse(x, [r - 2], xshape, el)

    # the named triangle is now the lower one, read through the moves (views of the operand,
    # made in each piece that reads them) and masked where it is read (no pass over A to mask
    # it). With few right-hand sides the joins' products read an upper M's blocks as they are
    # and reverse their small operands instead (the engine cannot read a reversed block in
    # place: each join's block of M would be copied reversed)
    few = not lower and xshape[-1] * 8 <= ashape[-1]
    x = _tri_solve(f, a_in, ashape, b_in, xshape, el, unit=flags.get("diag", "N") == "U",
                   flipped=(lambda g: a_in(g, False)) if few else None)
    if not lower:
        x = f.reverse(x, [r - 2], xshape, el)
    if not left:
        x = f.transpose_last(x, xshape, el)
    if io != el:
        x = f(f"stablehlo.convert {x} : ({_t(bshape, el)}) -> {_t(bshape, io)}")
    return _module([_t(ashape, io), _t(bshape, io)], [_t(bshape, io)], f.lines, [x])


def _lower(f: _Fn, a: str, shape: tuple[int, ...], el: str, unit: bool | None) -> str:
    """The lower-triangular matrix `a` stands for: `a` itself when `unit` is None, else its lower
    triangle (zeros above), with ones on the diagonal when `unit`."""
    if unit is None:
        return a
    r = len(shape)
    row, col = f.iota(shape, r - 2), f.iota(shape, r - 1)
    a = f.sel(f.cmp("GE", row, col, shape, "i32"), a, f.const("0", el, shape), shape, el)
    return f.sel(f.cmp("EQ", row, col, shape, "i32"), f.const("1", el, shape), a, shape, el) if unit else a


def _tri_solve(f: _Fn, a: _Val, ashape: tuple[int, ...], b: _Val, xshape: tuple[int, ...], el: str,
               unit: bool | None = None, flipped: Callable[[_Fn], str] | None = None) -> str:
    """X with A X = B for the lower-triangular A `a` stands for (see _lower: with `unit` given,
    the rest of `a` may hold anything; the products read only blocks below the diagonal blocks,
    the diagonal blocks are masked once gathered, and the finiteness test masks as it reads, so
    A is never copied to mask it), by products only: A's
    diagonal blocks (the recursion's leaves) are inverted together with no loop, a leaf is
    X1 = A11^-1 B1 and the halves join by B2 - A21 X1. An inverse's exact zeros would meet
    a non-finite B (or one a join's product made from a non-finite A21) in rows substitution
    never touches, and a non-finite inverse spreads NaN the same way, so when any of A, B and
    the inverses is not finite one substitution loop over the whole matrix solves instead,
    updating the rows below each one as CPU JAX's trsm does. `a` and `b` may be views made in
    the emitter given (_made), so that no view of them is stored to reach the branches;
    `flipped` makes the matrix `a` is the reversal of (in both dims; see _tri_blocks)."""
    if 0 in ashape + xshape:
        return _tri_loop(f, _lower(f, _made(f, a), ashape, el, unit), ashape, _made(f, b), xshape, el)
    av = _made(f, a)
    inv, ishape = _diag_inverses(f, av, ashape, el, unit)
    ok = _all_finite(f, [(_lower(f, av, ashape, el, unit), ashape), (_made(f, b), xshape), (inv, ishape)], el)
    (x,) = _if(f, ok, [_t(xshape, el)],
               lambda g: [_tri_blocks(g, _made(g, a), ashape, _made(g, b), xshape, el, inv, ishape, 0,
                                      flipped and flipped(g))],
               lambda g: [_tri_loop(g, _lower(g, _made(g, a), ashape, el, unit), ashape, _made(g, b), xshape, el)])
    return x


_Val = str | Callable[[_Fn], str]  # a value, or a view of one made in the emitter given


def _made(g: _Fn, v: _Val) -> str:
    """`v` in emitter g: a view made there, so a piece reading it reads what it views (a view
    read across a cut, into a branch or loop, is stored first: a copy)."""
    return v(g) if callable(v) else v


def _tri_solve_right(f: _Fn, a: _Tri, ashape: tuple[int, ...], b: str, xshape: tuple[int, ...], el: str) -> str:
    """X with X A^H = B for the lower-triangular factor `a` (a _Tri): _tri_solve's products on
    the transposed problem, with every transpose in the products' right operands (which the
    matrix engine reads as they are), so neither B nor X is moved. The non-finite case solves the
    transposed problem by substitution (A X^H = B^H), on A assembled."""
    if 0 in ashape + xshape:
        return b
    ok = f.bin("and", _tri_finite(f, a, ashape, el), _all_finite(f, [(b, xshape)], el), (), "i1")
    tshape = xshape[:-2] + (xshape[-1], xshape[-2])

    def loop(g: _Fn) -> list[str]:
        full = _tri_value(g, a, ashape, el)
        return [g.adjoint_last(_tri_loop(g, full, ashape, g.adjoint_last(b, xshape, el), tshape, el), tshape, el)]

    (x,) = _if(f, ok, [_t(xshape, el)], lambda g: [_tri_blocks_right(g, a, b, xshape, el)], loop)
    return x


def _tri_blocks_right(f: _Fn, a: _Tri, b: str, xshape: tuple[int, ...], el: str) -> str:
    """_tri_solve_right's products: X of X A^H = B (B is k columns, A a _Tri of k, its leaves'
    inverses made): X1 = B1 A11^-H, X2 = (B2 - X1 A21^H) A22^-H."""
    bs, m, k = xshape[:-2], xshape[-2], xshape[-1]
    if a.value is not None:
        assert a.inv is not None  # (made outside the branch this runs in: _tri_finite)
        return f.matmul(b, xshape, a.inv, bs + (k, k), el, tb=True)
    k1 = _split(k)
    k2 = k - k1
    x1 = _tri_blocks_right(f, a.t11, f.block(b, xshape, el, (0, m), (0, k1)), bs + (m, k1), el)
    b2 = f.bin("subtract", f.block(b, xshape, el, (0, m), (k1, k)), f.matmul(x1, bs + (m, k1), a.l21, bs + (k2, k1), el, tb=True),
               bs + (m, k2), el)
    x2 = _tri_blocks_right(f, a.t22, b2, bs + (m, k2), el)
    return f.concat([(x1, bs + (m, k1)), (x2, bs + (m, k2))], len(xshape) - 1, el)


def _inv_block(f: _Fn, inv: str, ishape: tuple[int, ...], lo: int, k: int, el: str) -> str:
    """The inverse of the k x k diagonal block at row `lo` ([.., k, k]), from _diag_inverses' stack."""
    bs = ishape[:-3]
    i = lo // BASE
    return f.reshape(f.ranges(inv, ishape, el, [(0, d, 1) for d in bs] + [(i, i + 1, 1), (0, k, 1), (0, k, 1)]),
                     bs + (1, k, k), bs + (k, k), el)


def _tri_blocks(f: _Fn, a: str, ashape: tuple[int, ...], b: str, xshape: tuple[int, ...], el: str,
                inv: str, ishape: tuple[int, ...], lo: int, flipped: str | None = None) -> str:
    """_tri_solve's products: X of A[lo:lo+k, lo:lo+k] X = B (B is k rows), with `inv` [.., q,
    BASE, BASE] the inverses of A's diagonal blocks. With `flipped` (A is that matrix F reversed
    in both dims, A21 = R F21 R for the row reversals R), a join's A21 X1 is R (F21 (R X1)): F's
    block is read as it is and only X1 and the product are reversed."""
    bs, k, m = ashape[:-2], xshape[-2], xshape[-1]
    if k <= BASE:
        return f.matmul(_inv_block(f, inv, ishape, lo, k, el), bs + (k, k), b, xshape, el)
    k1 = _split(k)
    k2 = k - k1
    x1 = _tri_blocks(f, a, ashape, f.block(b, xshape, el, (0, k1), (0, m)), bs + (k1, m), el, inv, ishape, lo, flipped)
    r, n = len(ashape), ashape[-1]
    if flipped is None:
        prod = f.matmul(f.block(a, ashape, el, (lo + k1, lo + k), (lo, lo + k1)), bs + (k2, k1), x1, bs + (k1, m), el)
    else:
        f21 = f.block(flipped, ashape, el, (n - lo - k, n - lo - k1), (n - lo - k1, n - lo))
        prod = f.reverse(f.matmul(f21, bs + (k2, k1), f.reverse(x1, [r - 2], bs + (k1, m), el), bs + (k1, m), el),
                         [r - 2], bs + (k2, m), el)
    b2 = f.bin("subtract", f.block(b, xshape, el, (k1, k), (0, m)), prod, bs + (k2, m), el)
    x2 = _tri_blocks(f, a, ashape, b2, bs + (k2, m), el, inv, ishape, lo + k1, flipped)
    return f.concat([(x1, bs + (k1, m)), (x2, bs + (k2, m))], len(ashape) - 2, el)


def _diag_inverses(f: _Fn, a: str, ashape: tuple[int, ...], el: str,
                   unit: bool | None = None) -> tuple[str, tuple[int, ...]]:
    """(inv, its shape [.., q, BASE, BASE]): the inverses of the diagonal blocks of BASE of the
    lower-triangular A `a` stands for (see _lower; masked once gathered), A padded with an
    identity to q BASE, all at once and with no loop: LAPACK
    trtri's recursion run bottom-up on every block together -- the diagonal's reciprocals,
    then the inverses of the blocks' diagonal 2s-blocks from those of their s-blocks."""
    assert BASE & (BASE - 1) == 0, "BASE must be a power of two"
    bs, n, r = ashape[:-2], ashape[-1], len(ashape)
    q = -(-n // BASE)
    # the diagonal blocks of BASE stacked [.., q, B, B], by one gather: only they are read (a
    # transpose of the whole [.., q, B, q, B] matrix to reach them was the biggest kernel of a
    # one-column solve of 1024)
    full = n // BASE
    blocks = []
    if full:
        nb = len(bs)
        istarts = bs + (full, 2)
        at = ", ".join(f"[{i * BASE}, {i * BASE}]" for i in range(full))  # a constant: no kernel makes it
        starts = f(f"stablehlo.constant dense<[{at}]> : {_t((full, 2), 'i32')}")
        starts = f.bcast(starts, (full, 2), "i32", istarts, (nb, nb + 1)) if nb else starts
        bd = ", ".join(map(str, range(nb)))
        sizes = ", ".join(["1"] * nb + [str(BASE)] * 2)
        out = bs + (full, BASE, BASE)
        blocks.append((f(f'"stablehlo.gather"({a}, {starts}) {{dimension_numbers = #stablehlo.gather<offset_dims = '
                         f"[{nb + 1}, {nb + 2}], operand_batching_dims = [{bd}], start_indices_batching_dims = [{bd}], "
                         f"start_index_map = [{nb}, {nb + 1}], index_vector_dim = {nb + 1}>, slice_sizes = array<i64: "
                         f"{sizes}>, indices_are_sorted = true}} : ({_t(ashape, el)}, {_t(istarts, 'i32')}) -> "
                         f"{_t(out, el)}"), out))
    if full != q:  # the last block, short: completed by an identity below and right of it
        lo, size, pshape = full * BASE, n - full * BASE, bs + (BASE, BASE)
        z = ", ".join("0" for _ in ashape)
        high = ", ".join(["0"] * len(bs) + [str(BASE - size)] * 2)
        blk = f(f"stablehlo.pad {f.block(a, ashape, el, (lo, n), (lo, n))}, {f.const('0', el)}, low = [{z}], "
                f"high = [{high}], interior = [{z}] : ({_t(bs + (size, size), el)}, {_t((), el)}) -> {_t(pshape, el)}")
        ri, ci = f.iota(pshape, r - 2), f.iota(pshape, r - 1)
        pad = f.bin("and", f.cmp("EQ", ri, ci, pshape, "i32"),
                    f.cmp("GE", ri, f.const(str(size), "i32", pshape), pshape, "i32"), pshape, "i1")
        blk = f.sel(pad, f.const("1", el, pshape), blk, pshape, el)
        blocks.append((f.reshape(blk, pshape, bs + (1, BASE, BASE), el), bs + (1, BASE, BASE)))
    d = f.concat(blocks, len(bs), el) if len(blocks) > 1 else blocks[0][0]
    dshape = bs + (q, BASE, BASE)
    if unit is not None:  # each block's lower triangle (an identity's padding is lower and unit)
        d = _lower(f, d, dshape, el, unit)
    # M_s, the blocks' diagonal s-blocks, has inverse X_s; M_2s = M_s + E_s, E_s the blocks
    # below them within each 2s-block, and E_s X_s E_s = 0, so X_2s = X_s - X_s E_s X_s
    # (trtri's [[A^-1, 0], [-D^-1 C A^-1, D^-1]] for every 2s-block at once, all on one shape)
    ri, ci = f.iota(dshape, r - 1), f.iota(dshape, r)
    zero = f.const("0", el, dshape)
    inv = f.sel(f.cmp("EQ", ri, ci, dshape, "i32"), f.recip(d, dshape, el), zero,
                dshape, el)
    s = 1
    while s < BASE:
        def blk(i: str, size: int) -> str:
            return f.bin("divide", i, f.const(str(size), "i32", dshape), dshape, "i32")
        within = f.bin("and", f.cmp("EQ", blk(ri, 2 * s), blk(ci, 2 * s), dshape, "i32"),
                       f.cmp("GT", blk(ri, s), blk(ci, s), dshape, "i32"), dshape, "i1")
        e = f.sel(within, d, zero, dshape, el)
        inv = f.bin("subtract", inv, f.matmul(f.matmul(inv, dshape, e, dshape, el), dshape, inv, dshape, el),
                    dshape, el)
        s *= 2
    return inv, dshape


def _tri_loop(f: _Fn, a: str, ashape: tuple[int, ...], b: str, xshape: tuple[int, ...], el: str) -> str:
    """Forward substitution, one row of X per step with a rank-1 update of the rows below it."""
    r = len(ashape)
    bs, n = ashape[:-2], ashape[-1]
    m = xshape[-1]
    rshape, cshape, dshape = bs + (1, m), bs + (n, 1), bs + (1, 1)

    def step(g: _Fn, j: str, cur: list[str]) -> list[str]:
        (x,) = cur
        z = [g.const("0", "i32")] * len(bs)
        zero = g.const("0", "i32")
        xr = g.dslice(x, xshape, el, z + [j, zero], rshape)
        d = g.dslice(a, ashape, el, z + [j, j], dshape)
        db = g.bcast(d, dshape, el, rshape, tuple(range(r)))
        xr = g.pivot_div(xr, db, rshape, el)
        c = g.dslice(a, ashape, el, z + [zero, j], cshape)
        below = g.cmp("GT", g.iota(cshape, r - 2), g.bcast(j, (), "i32", cshape, ()), cshape, "i32")
        # only rows below j are updated, every one of them as CPU JAX's BLAS does (a 0 * inf
        # there is NaN, as in the blocked joins' products)
        xb = g.bcast(xr, rshape, el, xshape, tuple(range(r)))
        live = g.bcast(below, cshape, "i1", xshape, tuple(range(r)))
        upd = g.bin("multiply", g.bcast(c, cshape, el, xshape, tuple(range(r))), xb, xshape, el)
        x = g.sel(live, g.bin("subtract", x, upd, xshape, el), x, xshape, el)
        return [g.dupdate(x, xr, xshape, rshape, el, z + [j, zero])]

    (x,) = _loop(f, n, [(b, _t(xshape, el))], step, 0 in ashape + xshape)
    return x


# --------------------------------------------------------------------------- getrf (LU)
def _getrf(types: list[ir.TensorType], flags: dict[str, str]) -> str:
    """LAPACK ?getrf: P A = L U with partial pivoting, L (unit diagonal) and U packed in one
    matrix, `ipiv` 1-based (row j was swapped with row ipiv[j] - 1) and `info` j+1 for the first
    zero pivot (the factorization still completes, as LAPACK's does)."""
    (a_t,) = types
    shape, el = tuple(a_t.shape), a_t.element
    bs, k = shape[:-2], min(shape[-2], shape[-1])
    f = _Fn()
    w, _, ipiv, info = _lu(f, "%arg0", shape, el)
    return _module([_t(shape, el)], [_t(shape, el), _t(bs + (k,), "i32"), _t(bs, "i32")], f.lines, [w, ipiv, info])


def _lu(f: _Fn, a: str, shape: tuple[int, ...], el: str, full: tuple[int, ...] | None = None,
        c0: int = 0) -> tuple[str, str, str, str]:
    """(packed L\\U, perm, ipiv, info) of the m x n `a`; perm [.., m] is the row order P A takes
    (row i of P A is row perm[i] of A). Recursive on columns (Toledo's LU): the left n1 columns
    are factored (all m rows, so the pivots are the unblocked ones), their row order applied to
    the right columns, U12 = L11^-1 A12 (a unit triangular solve), A22 - L21 U12 (the matmul)
    factored in turn and its row order applied to L21. With `full`, `a` is a wider [.., m, N]
    matrix holding the block in its columns c0 .. c0 + n: each reader slices its own columns
    (fused into it), since a column block sliced before a leaf's loop and read after it would be
    stored across the loop (every level's left half of the input, copied)."""
    bs, m, n = shape[:-2], shape[-2], shape[-1]
    r, k = len(shape), min(m, n)
    full = shape if full is None else full

    def cols(lo: int, hi: int) -> str:
        return a if (c0 + lo, c0 + hi) == (0, full[-1]) else f.block(a, full, el, (0, m), (c0 + lo, c0 + hi))

    if k <= BASE or 0 in shape:
        return _lu_loop(f, cols(0, n), shape, el)
    n1 = _split(k)
    n2, m2 = n - n1, m - n1
    left, p1, ipiv1, info1 = _lu(f, a, bs + (m, n1), el, full, c0)
    right = f.rows_of(cols(n1, n), bs + (m, n2), el, p1)
    s11 = bs + (n1, n1)
    u12 = _tri_solve(f, lambda g: g.block(left, bs + (m, n1), el, (0, n1), (0, n1)), s11,
                     lambda g: g.block(right, bs + (m, n2), el, (0, n1), (0, n2)), bs + (n1, n2), el, unit=True)
    l21 = f.block(left, bs + (m, n1), el, (n1, m), (0, n1))
    a22 = f.bin("subtract", f.block(right, bs + (m, n2), el, (n1, m), (0, n2)),
                f.matmul(l21, bs + (m2, n1), u12, bs + (n1, n2), el), bs + (m2, n2), el)
    w22, p2, ipiv2, info2 = _lu(f, a22, bs + (m2, n2), el)
    # the left columns in the final row order by one gather of all m rows (L11's stay, L21's
    # follow p2): L21 is then copied twice, not three times (gathered, and copied through the
    # two levels of a grid's concats)
    order = f.concat([(f.iota(bs + (n1,), r - 2), bs + (n1,)),
                      (f.bin("add", p2, f.const(str(n1), "i32", bs + (m2,)), bs + (m2,), "i32"), bs + (m2,))], r - 2, "i32")
    w = f.concat([(f.rows_of(left, bs + (m, n1), el, order), bs + (m, n1)),
                  (f.concat([(u12, bs + (n1, n2)), (w22, bs + (m2, n2))], r - 2, el), bs + (m, n2))], r - 1, el)
    # the whole row order: the left part's, its lower rows reordered by the right part's
    lo, hi = f.part(p1, bs + (m,), "i32", 0, n1), f.part(p1, bs + (m,), "i32", n1, m)
    hi = f(f"stablehlo.reshape {hi} : ({_t(bs + (m2,), 'i32')}) -> {_t(bs + (m2, 1), 'i32')}")
    hi = f.rows_of(hi, bs + (m2, 1), "i32", p2)
    hi = f(f"stablehlo.reshape {hi} : ({_t(bs + (m2, 1), 'i32')}) -> {_t(bs + (m2,), 'i32')}")
    perm = f.concat([(lo, bs + (n1,)), (hi, bs + (m2,))], r - 2, "i32")
    ipiv2 = f.bin("add", ipiv2, f.const(str(n1), "i32", bs + (k - n1,)), bs + (k - n1,), "i32")
    ipiv = f.concat([(ipiv1, bs + (n1,)), (ipiv2, bs + (k - n1,))], r - 2, "i32")
    return w, perm, ipiv, f.first_error(info1, info2, n1, bs)


def _lu_loop(f: _Fn, a: str, shape: tuple[int, ...], el: str) -> tuple[str, str, str, str]:
    """Unblocked LU, one column per step, with the row swaps kept as a record instead of done:
    the block's rows stay where they are, `pos` [.., m] holds each row's position in LAPACK's
    swapped order and `perm` [.., m] its inverse (the row at each position), and one gather
    puts the rows in order after the loop. Step j picks the pivot among the rows at positions
    >= j (the largest magnitude, the first in position order on ties, as LAPACK's i?amax scans
    the swapped column), swaps the two rows' positions, and updates the block: the rows still
    below the pivot get L's column j (the column over the pivot, left alone when the pivot is
    0) and the rank-1 update of the columns right of j. A step is a dynamic slice of column j,
    two reductions choosing the pivot, a gather of its row, the position vectors' swap and L's
    column on [.., m], and one elementwise kernel over the block whose per-element work is the
    update only (it is most of a leaf's time; a physical swap doubled it). `info` is read from
    U's diagonal at the end."""
    bs, m, n = shape[:-2], shape[-2], shape[-1]
    r, k = len(shape), min(shape[-2], shape[-1])
    if 0 in shape:
        return (a, f.iota(bs + (m,), r - 2), f.const("0", "i32", bs + (k,)), f.const("0", "i32", bs))
    vs, ks = bs + (m,), bs + (k,)
    whole, nb = tuple(range(r)), tuple(range(r - 2))
    # the pivot's position and row come out of one min-reduction of position * m + row while
    # that fits an i32, else of two
    packed = m * m < 2 ** 31

    def step(g: _Fn, j: str, cur: list[str]) -> list[str]:
        w, pos, perm, ipiv = cur
        zi = g.const("0", "i32")
        z = [zi] * (r - 2)
        c = g.reshape(g.dslice(w, shape, el, z + [zi, j], bs + (m, 1)), bs + (m, 1), vs, el)
        # the pivot: the largest |c| at positions >= j, as LAPACK's i?amax scans (`|c[i]| >
        # max so far`): a NaN is never larger, unless it is the first (position j)
        iv, jv = g.iota(vs, r - 2), g.bcast(j, (), "i32", vs, ())
        live, at_jv = g.cmp("GE", pos, jv, vs, "i32"), g.cmp("EQ", pos, jv, vs, "i32")
        ke = REAL.get(el, el)  # complex: |re| + |im|, the size LAPACK's icamax compares
        ac = g.un("abs", c, vs, el) if ke == el else \
            g.bin("add", g.un("abs", g.real(c, vs, el), vs, ke), g.un("abs", g.imag(c, vs, el), vs, ke), vs, ke)
        nan = g.cmp("NE", ac, ac, vs, ke)
        key = g.sel(g.bin("and", nan, at_jv, vs, "i1"), g.const("0x7F800000" if ke == "f32" else "0x7FF0000000000000", ke, vs),
                    g.sel(g.bin("and", live, g.un("not", nan, vs, "i1"), vs, "i1"), ac, g.const("-1", ke, vs), vs, ke), vs, ke)
        best = g.reduce("maximum", key, g.const("0xFF800000" if ke == "f32" else "0xFFF0000000000000", ke), vs, ke,
                        r - 2)
        hit = g.cmp("EQ", key, g.bcast(best, bs, ke, vs, nb), vs, ke)
        # (position j's key is at least 0 and a dead row's -1, so the pivot's position is >= j)
        if packed:
            code = g.bin("add", g.bin("multiply", pos, g.const(str(m), "i32", vs), vs, "i32"), iv, vs, "i32")
            v = g.reduce("minimum", g.sel(hit, code, g.const(str(m * m - 1), "i32", vs), vs, "i32"),
                         g.const(str(m * m - 1), "i32"), vs, "i32", r - 2)
            pp = g.bin("divide", v, g.const(str(m), "i32", bs), bs, "i32")
            row = g.bin("subtract", v, g.bin("multiply", pp, g.const(str(m), "i32", bs), bs, "i32"), bs, "i32")
        else:
            pp = g.reduce("minimum", g.sel(hit, pos, g.const(str(m - 1), "i32", vs), vs, "i32"), g.const(str(m - 1), "i32"),
                          vs, "i32", r - 2)
            row = g.reduce("minimum", g.sel(g.cmp("EQ", pos, g.bcast(pp, bs, "i32", vs, nb), vs, "i32"), iv,
                                            g.const(str(m - 1), "i32", vs), vs, "i32"), g.const(str(m - 1), "i32"),
                           vs, "i32", r - 2)
        # the pivot row ([.., 1, n], gathered) and its element in column j
        u = g.rows_of(w, shape, el, g.reshape(row, bs, bs + (1,), "i32"), 1)
        us = bs + (1, n)
        d = g.dslice(u, us, el, z + [zi, j], bs + (1, 1))
        # the swap of positions j and pp: pos for every row, perm for the two positions (the
        # row at position j is read before it moves)
        ppv = g.bcast(pp, bs, "i32", vs, nb)
        new_pos = g.sel(g.cmp("EQ", pos, ppv, vs, "i32"), jv, g.sel(at_jv, ppv, pos, vs, "i32"), vs, "i32")
        pj = g.bcast(g.reshape(g.dslice(perm, vs, "i32", z + [j], bs + (1,)), bs + (1,), bs, "i32"), bs, "i32", vs, nb)
        new_perm = g.sel(g.cmp("EQ", iv, jv, vs, "i32"), g.bcast(row, bs, "i32", vs, nb),
                         g.sel(g.cmp("EQ", iv, ppv, vs, "i32"), pj, perm, vs, "i32"), vs, "i32")
        # L's column j, once per row ([.., m]: the division is not done per element)
        dv = g.bcast(g.reshape(d, bs + (1, 1), bs, el), bs, el, vs, nb)
        lv = g.sel(g.cmp("EQ", dv, g.const("0", el, vs), vs, el), c, g.pivot_div(c, dv, vs, el), vs, el)
        below = g.bcast(g.cmp("GT", new_pos, jv, vs, "i32"), vs, "i1", shape, whole[:-1])
        cols, jm = g.iota(shape, r - 1), g.bcast(j, (), "i32", shape, ())
        lm, um = g.bcast(lv, vs, el, shape, whole[:-1]), g.bcast(u, us, el, shape, whole)
        # (the tests joined by `and`, not nested selects: -O1 makes nested selects branches,
        # and a per-row value read under a branch stops the loop vectorizing)
        new = g.sel(g.bin("and", below, g.cmp("EQ", cols, jm, shape, "i32"), shape, "i1"), lm,
                    g.sel(g.bin("and", below, g.cmp("GT", cols, jm, shape, "i32"), shape, "i1"),
                          g.bin("subtract", w, g.bin("multiply", lm, um, shape, el), shape, el), w, shape, el), shape, el)
        # ipiv[j] = pp + 1 by a select over ipiv (one small kernel; a dynamic_update_slice is a
        # copy and a scatter, with pp + 1 a third)
        piv = g.bin("add", g.bcast(pp, bs, "i32", ks, nb), g.const("1", "i32", ks), ks, "i32")
        at = g.cmp("EQ", g.iota(ks, r - 2), g.bcast(j, (), "i32", ks, ()), ks, "i32")
        return [new, new_pos, new_perm, g.sel(at, piv, ipiv, ks, "i32")]

    iota = f.iota(vs, r - 2)
    w, _, perm, ipiv = _loop(f, k, [(a, _t(shape, el)), (iota, _t(vs, "i32")), (iota, _t(vs, "i32")),
                                    (f.const("0", "i32", ks), _t(ks, "i32"))], step)
    lu = f.rows_of(w, shape, el, perm)
    # info: the first zero on U's diagonal (its pivots), 1-based; a NaN one is not zero
    flat = f.reshape(lu, shape, bs + (m * n,), el)
    diag = f.ranges(flat, bs + (m * n,), el, [(0, d, 1) for d in bs] + [(0, (k - 1) * (n + 1) + 1, n + 1)])
    col = f.bin("add", f.iota(ks, r - 2), f.const("1", "i32", ks), ks, "i32")
    none = f.const(str(k + 1), "i32", ks)
    first = f.reduce("minimum", f.sel(f.cmp("EQ", diag, f.const("0", el, ks), ks, el), col, none, ks, "i32"),
                     f.const(str(k + 1), "i32"), ks, "i32", r - 2)
    info = f.sel(f.cmp("EQ", first, f.const(str(k + 1), "i32", bs), bs, "i32"), f.const("0", "i32", bs), first, bs, "i32")
    return lu, perm, ipiv, info


# --------------------------------------------------------------------------- geqrf / orgqr (QR)
def _reflector(g: _Fn, w: str, j: str, shape: tuple[int, ...], el: str) -> tuple[str, str, str, str]:
    """LAPACK ?larfg on column j of `w` below the diagonal, per matrix: (v, tau, beta, live) with
    v [.., m, 1] (0 above j, 1 at j), H = I - tau v v^H taking the column to beta e_j (H^H does,
    for complex: tau is complex, beta real, as ?larfg's), and `live` [.., 1, 1] false where the
    column below j is already zero (and, complex, alpha real; then H = I, tau = 0)."""
    r, m = len(shape), shape[-2]
    bs = shape[:-2]
    cshape, dshape = bs + (m, 1), bs + (1, 1)
    z = [g.const("0", "i32")] * len(bs)
    c = g.dslice(w, shape, el, z + [g.const("0", "i32"), j], cshape)
    alpha = g.dslice(w, shape, el, z + [j, j], dshape)
    ri = g.iota(cshape, r - 2)
    jc = g.bcast(j, (), "i32", cshape, ())
    below = g.cmp("GT", ri, jc, cshape, "i32")
    x = g.sel(below, c, g.const("0", el, cshape), cshape, el)
    re = REAL.get(el, el)
    sq = lambda v, s: g.bin("multiply", v, v, s, re)  # noqa: E731
    xs = [g.real(x, cshape, el), g.imag(x, cshape, el)] if re != el else [x]
    ss = g.reduce("add", sq(xs[0], cshape) if re == el else g.bin("add", sq(xs[0], cshape), sq(xs[1], cshape), cshape, re),
                  g.const("0", re), cshape, re, r - 2)
    ss = g(f"stablehlo.reshape {ss} : ({_t(bs + (1,), re)}) -> {_t(dshape, re)}")
    ar = g.real(alpha, dshape, el)
    live = g.cmp("NE", ss, g.const("0", re, dshape), dshape, re)
    a2 = sq(ar, dshape)
    if re != el:  # a complex alpha off the real axis needs a reflector even with x = 0
        ai = g.imag(alpha, dshape, el)
        live = g.bin("or", live, g.cmp("NE", ai, g.const("0", re, dshape), dshape, re), dshape, "i1")
        a2 = g.bin("add", a2, sq(ai, dshape), dshape, re)
    norm = g.un("sqrt", g.bin("add", a2, ss, dshape, re), dshape, re)
    neg = g.cmp("LT", ar, g.const("0", re, dshape), dshape, re)
    br = g.sel(neg, norm, g.un("negate", norm, dshape, re), dshape, re)  # -sign(re alpha) |(alpha, x)|
    beta = g.join(br, None, dshape, el)
    one = g.const("1", el, dshape)
    tau = g.sel(live, g.rdiv(g.bin("subtract", beta, alpha, dshape, el), br, dshape, el),
                g.const("0", el, dshape), dshape, el)
    scale = g.sel(live, g.bin("divide", one, g.bin("subtract", alpha, beta, dshape, el), dshape, el), one,
                  dshape, el)
    v = g.bin("multiply", x, g.bcast(scale, dshape, el, cshape, tuple(range(r))), cshape, el)
    v = g.sel(g.cmp("EQ", ri, jc, cshape, "i32"), g.const("1", el, cshape), v, cshape, el)
    return v, tau, g.sel(live, beta, alpha, dshape, el), live


def _apply_reflector(g: _Fn, q: str, v: str, tau: str, shape: tuple[int, ...], el: str, cols: str | None) -> str:
    """q - tau v (v^H q), on the columns > `cols` only when given (the rest of q is kept)."""
    r = len(shape)
    bs = shape[:-2]
    cshape, dshape = bs + (shape[-2], 1), bs + (1, 1)
    vm = g.bcast(v, cshape, el, shape, tuple(range(r)))
    wrow = g.reduce("add", g.bin("multiply", g.conj(vm, shape, el), q, shape, el), g.const("0", el), shape, el, r - 2)
    wm = g.bcast(wrow, bs + (shape[-1],), el, shape, tuple(range(r - 2)) + (r - 1,))
    tm = g.bcast(tau, dshape, el, shape, tuple(range(r)))
    new = g.bin("subtract", q, g.bin("multiply", tm, g.bin("multiply", vm, wm, shape, el), shape, el), shape, el)
    if cols is None:
        return new
    right = g.cmp("GT", g.iota(shape, r - 1), g.bcast(cols, (), "i32", shape, ()), shape, "i32")
    return g.sel(right, new, q, shape, el)


def _geqrf(types: list[ir.TensorType], flags: dict[str, str]) -> str:
    """LAPACK ?geqrf: A = Q R by Householder reflectors, R on and above the diagonal, the
    reflectors' v (v[j] = 1 implied) below it and their `tau` [.., min(m, n)], LAPACK's sign
    convention (beta = -sign(alpha) |column|), so the factors are LAPACK's, not just a QR."""
    (a_t,) = types
    shape, el = tuple(a_t.shape), a_t.element
    k = min(shape[-2], shape[-1])
    f = _Fn()
    w, taus, _, _ = _qr(f, "%arg0", shape, el, False)
    return _module([_t(shape, el)], [_t(shape, el), _t(shape[:-2] + (k,), el)], f.lines, [w, taus])


def _qr(f: _Fn, a: str, shape: tuple[int, ...], el: str, wy: bool) -> tuple[str, str, str | None, str | None]:
    """(packed R\\V, tau, V, T) of the m x n `a`, with (when `wy`) the explicit reflectors V
    [.., m, k] (unit diagonal, zeros above) and the compact-WY T [.., k, k] of LAPACK's larft:
    H_0 ... H_{k-1} = I - V T V^T. Recursive on columns: the left n1 columns are factored, the
    right ones get Q1^T = I - V1 T1^T V1^T (three matmuls), the rows below n1 are factored in
    turn and the two T join as [[T1, -T1 V1^T V2 T2], [0, T2]]."""
    bs, m, n = shape[:-2], shape[-2], shape[-1]
    r, k = len(shape), min(m, n)
    if k <= BASE or 0 in shape:
        w, taus = _qr_loop(f, a, shape, el)
        if not wy:
            return w, taus, None, None
        v = _reflectors(f, w, shape, el, k)
        return w, taus, v, _larft(f, v, bs + (m, k), taus, el)
    n1 = _split(k)
    n2, m2 = n - n1, m - n1
    w1, tau1, v1, t1 = _qr(f, f.block(a, shape, el, (0, m), (0, n1)), bs + (m, n1), el, True)
    a2 = f.block(a, shape, el, (0, m), (n1, n))
    vs, ts = bs + (m, n1), bs + (n1, n1)
    y = f.matmul(t1, ts, f.matmul(v1, vs, a2, bs + (m, n2), el, ta=True), bs + (n1, n2), el, ta=True)
    a2 = f.bin("subtract", a2, f.matmul(v1, vs, y, bs + (n1, n2), el), bs + (m, n2), el)
    w2, tau2, v2, t2 = _qr(f, f.block(a2, bs + (m, n2), el, (n1, m), (0, n2)), bs + (m2, n2), el, wy)
    k2 = min(m2, n2)
    w = f.grid([[(f.block(w1, vs, el, (0, n1), (0, n1)), ts), (f.block(a2, bs + (m, n2), el, (0, n1), (0, n2)), bs + (n1, n2))],
                [(f.block(w1, vs, el, (n1, m), (0, n1)), bs + (m2, n1)), (w2, bs + (m2, n2))]], el)
    taus = f.concat([(tau1, bs + (n1,)), (tau2, bs + (k2,))], r - 2, el)
    if not wy:
        return w, taus, None, None
    v1b = f.block(v1, vs, el, (n1, m), (0, n1))
    t12 = f.matmul(f.matmul(t1, ts, f.matmul(v1b, bs + (m2, n1), v2, bs + (m2, k2), el, ta=True), bs + (n1, k2), el),
                   bs + (n1, k2), t2, bs + (k2, k2), el)
    t12 = f.un("negate", t12, bs + (n1, k2), el)
    t = f.grid([[(t1, ts), (t12, bs + (n1, k2))], [(f.const("0", el, bs + (k2, n1)), bs + (k2, n1)), (t2, bs + (k2, k2))]], el)
    v = f.grid([[(f.block(v1, vs, el, (0, n1), (0, n1)), ts), (f.const("0", el, bs + (n1, k2)), bs + (n1, k2))],
                [(v1b, bs + (m2, n1)), (v2, bs + (m2, k2))]], el)
    return w, taus, v, t


def _reflectors(f: _Fn, w: str, shape: tuple[int, ...], el: str, k: int) -> str:
    """The explicit V [.., m, k] of packed reflectors: w's first k columns below the diagonal,
    ones on it, zeros above."""
    vs = shape[:-2] + (shape[-2], k)
    r = len(shape)
    v = f.block(w, shape, el, (0, shape[-2]), (0, k)) if shape[-1] != k else w
    ri, ci = f.iota(vs, r - 2), f.iota(vs, r - 1)
    return f.sel(f.cmp("GT", ri, ci, vs, "i32"), v,
                 f.sel(f.cmp("EQ", ri, ci, vs, "i32"), f.const("1", el, vs), f.const("0", el, vs), vs, el), vs, el)


def _larft(f: _Fn, v: str, vshape: tuple[int, ...], taus: str, el: str) -> str:
    """LAPACK ?larft (forward, columnwise): the upper-triangular T [.., k, k] with
    H_0 ... H_{k-1} = I - V T V^T. Blocks of at most BASE columns run a loop on the k x k Gram
    matrix G = V^T V (T[:j, j] = -tau_j T[:j, :j] G[:j, j], T[j, j] = tau_j); bigger ones join
    two halves' T as [[T1, -T1 G12 T2], [0, T2]]."""
    bs, k = vshape[:-2], vshape[-1]
    r = len(vshape)
    if k > BASE and 0 not in vshape:
        k1 = _split(k)
        m = vshape[-2]
        v1, v2 = f.block(v, vshape, el, (0, m), (0, k1)), f.block(v, vshape, el, (0, m), (k1, k))
        t1s, t2s = f.part(taus, bs + (k,), el, 0, k1), f.part(taus, bs + (k,), el, k1, k)
        t1 = _larft(f, v1, bs + (m, k1), t1s, el)
        t2 = _larft(f, v2, bs + (m, k - k1), t2s, el)
        s1, s2 = bs + (k1, k1), bs + (k - k1, k - k1)
        g12 = f.matmul(v1, bs + (m, k1), v2, bs + (m, k - k1), el, ta=True)
        t12 = f.un("negate", f.matmul(f.matmul(t1, s1, g12, bs + (k1, k - k1), el), bs + (k1, k - k1), t2, s2, el),
                   bs + (k1, k - k1), el)
        return f.grid([[(t1, s1), (t12, bs + (k1, k - k1))],
                       [(f.const("0", el, bs + (k - k1, k1)), bs + (k - k1, k1)), (t2, s2)]], el)
    ts = bs + (k, k)
    g = f.matmul(v, vshape, v, vshape, el, ta=True)
    cshape, dshape = bs + (k, 1), bs + (1, 1)

    def step(h: _Fn, j: str, cur: list[str]) -> list[str]:
        (t,) = cur
        z = [h.const("0", "i32")] * len(bs)
        zero = h.const("0", "i32")
        ri = h.iota(cshape, r - 2)
        jc = h.bcast(j, (), "i32", cshape, ())
        gj = h.dslice(g, ts, el, z + [zero, j], cshape)
        gj = h.sel(h.cmp("LT", ri, jc, cshape, "i32"), gj, h.const("0", el, cshape), cshape, el)
        gr = h.bcast(gj, cshape, el, ts, tuple(range(r - 2)) + (r - 1, r - 2))  # g[l] along row l's columns
        tg = h.reduce("add", h.bin("multiply", t, gr, ts, el), h.const("0", el), ts, el, r - 1)  # (T g)[i]
        tau = h.dslice(taus, bs + (k,), el, z + [j], bs + (1,))
        tau = h(f"stablehlo.reshape {tau} : ({_t(bs + (1,), el)}) -> {_t(dshape, el)}")
        tc = h.bcast(tau, dshape, el, cshape, tuple(range(r)))
        tgc = h(f"stablehlo.reshape {tg} : ({_t(bs + (k,), el)}) -> {_t(cshape, el)}")
        col = h.sel(h.cmp("LT", ri, jc, cshape, "i32"), h.un("negate", h.bin("multiply", tc, tgc, cshape, el), cshape, el),
                    h.sel(h.cmp("EQ", ri, jc, cshape, "i32"), tc, h.const("0", el, cshape), cshape, el), cshape, el)
        return [h.dupdate(t, col, ts, cshape, el, z + [zero, j])]

    (t,) = _loop(f, k, [(f.const("0", el, ts), _t(ts, el))], step, 0 in vshape)
    return t


def _qr_loop(f: _Fn, a: str, shape: tuple[int, ...], el: str) -> tuple[str, str]:
    """Unblocked Householder QR: one reflector per column, applied to the columns after it."""
    bs, r, k = shape[:-2], len(shape), min(shape[-2], shape[-1])
    m = shape[-2]
    tau0 = f.const("0", el, bs + (k,))
    cshape, dshape = bs + (m, 1), bs + (1, 1)

    def step(g: _Fn, j: str, cur: list[str]) -> list[str]:
        w, taus = cur
        v, tau, beta, _ = _reflector(g, w, j, shape, el)
        w = _apply_reflector(g, w, v, g.conj(tau, dshape, el), shape, el, j)  # H^H, as ?geqr2
        ri = g.iota(cshape, r - 2)
        jc = g.bcast(j, (), "i32", cshape, ())
        col = g.sel(g.cmp("EQ", ri, jc, cshape, "i32"), g.bcast(beta, dshape, el, cshape, tuple(range(r))), v,
                    cshape, el)
        z = [g.const("0", "i32")] * len(bs)
        old = g.dslice(w, shape, el, z + [g.const("0", "i32"), j], cshape)
        col = g.sel(g.cmp("GE", ri, jc, cshape, "i32"), col, old, cshape, el)
        w = g.dupdate(w, col, shape, cshape, el, z + [g.const("0", "i32"), j])
        t1 = g(f"stablehlo.reshape {tau} : ({_t(dshape, el)}) -> {_t(bs + (1,), el)}")
        taus = g.dupdate(taus, t1, bs + (k,), bs + (1,), el, z + [j])
        return [w, taus]

    w, taus = _loop(f, k, [(a, _t(shape, el)), (tau0, _t(bs + (k,), el))], step, 0 in shape)
    return w, taus


def _orgqr(types: list[ir.TensorType], flags: dict[str, str]) -> str:
    """LAPACK ?orgqr: the first n columns of Q = H_0 ... H_{k-1} from geqrf's packed reflectors:
    I - V T V^T with T from larft, so the work is matmuls (two: V (T V[:n]^T))."""
    a_t, t_t = types
    shape, el = tuple(a_t.shape), a_t.element
    bs, r, m, n = shape[:-2], len(shape), shape[-2], shape[-1]
    k = t_t.shape[-1]
    f = _Fn()
    qs = bs + (m, n)
    eye = f(f"stablehlo.convert {f.cmp('EQ', f.iota(qs, r - 2), f.iota(qs, r - 1), qs, 'i32')} : "
            f"({_t(qs, 'i1')}) -> {_t(qs, el)}")
    if k == 0 or 0 in shape:
        return _module([_t(shape, el), _t(bs + (k,), el)], [_t(shape, el)], f.lines, [eye])
    v = _reflectors(f, "%arg0", shape, el, k)
    vs = bs + (m, k)
    t = _larft(f, v, vs, "%arg1", el)
    vt = f.block(v, vs, el, (0, n), (0, k))
    y = f.matmul(t, bs + (k, k), vt, bs + (n, k), el, tb=True)
    q = f.bin("subtract", eye, f.matmul(v, vs, y, bs + (k, n), el), qs, el)
    return _module([_t(shape, el), _t(bs + (k,), el)], [_t(shape, el)], f.lines, [q])
