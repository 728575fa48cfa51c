"""stablehlo.fft (FFT, IFFT, RFFT, IRFFT over the trailing 1-3 dims) as products with constant DFT
matrices.

`jnp.fft.*` exports `stablehlo.fft`. It is expanded here, before inlining (like linalg.py's LAPACK
targets), into a private function of ordinary StableHLO on complex values, which complex_split.py
then turns into real ones:

- a length n <= DIRECT is one dot_general with the n x n DFT matrix (the matrix engine);
- a composite n = n1 * n2 is the four-step (Cooley-Tukey) form: a length-n1 DFT over the strided
  index, an elementwise multiply by the twiddles W_n^(j2 k1), a length-n2 DFT, and one transpose
  of the two digit axes; each sub-DFT recurses, so any smooth length is a few matrix passes;
- a prime n > DIRECT is Bluestein's chirp-z: a circular convolution of length m = 2^k >= 2n - 1
  done with two power-of-two FFTs, one of them a constant (the chirp's spectrum).

Every DFT is written "moving": it contracts one axis and appends the transformed axis last (what
dot_general does anyway), so the d-axis transform of the trailing axes is d moves of the same
position and ends in the original order. DFT matrices, twiddles and chirps are computed in f64
(exponents reduced mod n in integers, quarter turns exact) and rounded once to the element type;
IFFT's 1/N is folded into the first matrix applied. RFFT's first products take the real input
(two real products instead of four); IRFFT rebuilds the Hermitian spectrum as XLA does (the
imaginary parts of the zero and Nyquist terms do not contribute) and keeps the real part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser import ir, parse_module
from ..hlo_parser.verify import verify

DIRECT = 64  # lengths up to this are one product with the DFT matrix; longer ones factor
_REAL = {"complex<f32>": "f32", "complex<f64>": "f64"}
_COMPLEX = {v: k for k, v in _REAL.items()}


def handles(op: ir.Operation) -> bool:
    return op.name == "stablehlo.fft"


def expand(op: ir.Operation, loc: ir.Location | None) -> ir.Function:
    """The function computing the fft `op` (same operand and result), parsed from StableHLO text
    and verified; every op in it carries `loc`, the user's line."""
    kind = str(getattr(op.attributes.get("fft_type"), "value", op.attributes.get("fft_type")))
    lengths = tuple(int(n) for n in op.attributes.get("fft_length", ()))
    (x,), (res,) = op.operands, op.results
    xt, rt = x.type, res.type
    if not (isinstance(xt, ir.TensorType) and isinstance(rt, ir.TensorType)) or \
            any(d is None for d in xt.shape + rt.shape):
        raise UnsupportedError(f"fft on dynamic or non-tensor types {xt} -> {rt}", op.name, loc)
    bad = _check(kind, lengths, xt, rt)
    if bad:
        raise UnsupportedError(f"fft_type {kind}, fft_length {list(lengths)}: {bad}", op.name, loc)
    e = _Emit()
    arg = V("%arg0", tuple(xt.shape), xt.element)
    if math.prod(rt.shape) == 0 or 0 in lengths:  # an empty transform, or sums over nothing
        out = e.zeros(tuple(rt.shape), rt.element)
    else:
        out = _transform(e, arg, kind, lengths)
    text = (f"func.func public @main(%arg0: {xt}) -> {rt} {{\n  " + "\n  ".join(e.lines) +
            f"\n  return {out.name} : {rt}\n}}\n")
    module = parse_module(text, f"<fft {kind}>")
    fn = module.functions["main"]
    _fill_tables(fn.body, e.tables)
    verify(module)
    for o in fn.body.ops:
        o.loc = loc
    return fn


def _check(kind: str, lengths: tuple[int, ...], xt: ir.TensorType, rt: ir.TensorType) -> str | None:
    """The spec's constraints on the op (C1-C5 of stablehlo.fft), and what tt-xla computes."""
    if kind not in ("FFT", "IFFT", "RFFT", "IRFFT"):
        return "unknown fft_type"
    if not 1 <= len(lengths) <= min(3, len(xt.shape)):
        return f"needs 1 to 3 lengths, at most the operand's rank {len(xt.shape)}"
    r = len(lengths)
    cin = xt.element if kind != "RFFT" else _COMPLEX.get(xt.element)
    if cin not in _REAL:
        return f"operand element type {xt.element} (complex64/128, or f32/f64 for RFFT)"
    want_out = cin if kind != "IRFFT" else _REAL[cin]
    if rt.element != want_out:
        return f"result element type {rt.element}, expected {want_out}"
    lead_in, lead_out = tuple(xt.shape[-r:]), tuple(rt.shape[-r:])
    if xt.shape[:-r] != rt.shape[:-r]:
        return "operand and result batch dims differ"
    half = lengths[:-1] + (lengths[-1] // 2 + 1,)
    if kind in ("FFT", "IFFT") and not lead_in == lead_out == lengths:
        return f"operand/result trailing dims {list(lead_in)}/{list(lead_out)} are not the lengths"
    if kind == "RFFT" and (lead_in != lengths or lead_out != half):
        return f"operand/result trailing dims {list(lead_in)}/{list(lead_out)} do not fit the lengths"
    if kind == "IRFFT" and (lead_in != half or lead_out != lengths):
        return f"operand/result trailing dims {list(lead_in)}/{list(lead_out)} do not fit the lengths"
    return None


def _transform(e: "_Emit", x: "V", kind: str, lengths: tuple[int, ...]) -> "V":
    r, rank = len(lengths), len(x.shape)
    inverse = kind in ("IFFT", "IRFFT")
    scale = 1.0 / math.prod(lengths) if inverse else 1.0
    first = rank - r
    if kind in ("FFT", "IFFT"):
        for _ in range(r):  # each move brings the next axis to the end: r moves restore the order
            x = _dft(e, x, first, x.shape[first], inverse, scale)
            scale = 1.0
        return x
    if kind == "RFFT":
        n = lengths[-1]
        x = _dft(e, x, rank - 1, n, False, 1.0, keep=n // 2 + 1)
        for _ in range(r - 1):
            x = _dft(e, x, first, x.shape[first], False, 1.0)
        if r > 1:  # the half axis went first among the moved ones: put it back last
            x = e.transpose(x, list(range(first)) + list(range(first + 1, rank)) + [first])
        return x
    for _ in range(r - 1):  # IRFFT: the complex inverse over the leading axes, then c2r on the last
        x = _dft(e, x, first, x.shape[first], True, scale)
        scale = 1.0
    return _c2r(e, x, first, lengths[-1], scale)


# --------------------------------------------------------------------------- the DFT, recursively
def _dft(e: "_Emit", x: "V", axis: int, n: int, inverse: bool, scale: float, keep: int | None = None) -> "V":
    """The DFT of length n over `axis` of x (real or complex), that axis removed and the
    transformed one appended last (only its first `keep` entries if given)."""
    keep = n if keep is None else keep
    if n <= DIRECT:
        return e.product(x, axis, _dft_matrix(n, inverse, scale)[:, :keep])
    n1 = _split(n)
    if n1 is None:
        out = _bluestein(e, x, axis, n, inverse, scale)
    else:
        n2 = n // n1
        # j = j1 * n2 + j2 and k = k1 + n1 * k2: the DFT over j1 (stride n2), twiddles, the DFT over j2
        x = e.reshape(x, x.shape[:axis] + (n1, n2) + x.shape[axis + 1:])
        y = _dft(e, x, axis, n1, inverse, scale)  # (..., j2 at axis, ..., k1)
        y = e.mul_table(y, _twiddles(n1, n2, inverse), [axis, len(y.shape) - 1])
        z = _dft(e, y, axis, n2, inverse, 1.0)  # (..., k1, k2)
        rank = len(z.shape)
        z = e.transpose(z, list(range(rank - 2)) + [rank - 1, rank - 2])
        out = e.reshape(z, z.shape[:-2] + (n,))
    if keep < n:
        out = e.slice(out, len(out.shape) - 1, 0, keep)
    return out


def _split(n: int) -> int | None:
    """The first factor n1 of a four-step split of n (the divisor nearest sqrt(n), so both halves
    recurse evenly); None if n is prime (Bluestein)."""
    for d in range(math.isqrt(n), 1, -1):
        if n % d == 0:
            return d
    return None


def _bluestein(e: "_Emit", x: "V", axis: int, n: int, inverse: bool, scale: float) -> "V":
    """jk = (j^2 + k^2 - (k-j)^2) / 2, so X_k = c_k sum_j (x_j c_j) conj(c_(k-j)) with the chirp
    c_j = W^(j^2/2): a circular convolution of length m >= 2n - 1, by power-of-two FFTs."""
    m = 1 << (2 * n - 2).bit_length()
    chirp = _chirp(n, inverse)
    x = e.to_complex(x)
    a = e.mul_table(x, chirp * scale, [axis])
    a = e.pad(a, axis, m - n)
    spec = _dft(e, a, axis, m, False, 1.0)  # (..., m)
    b = np.zeros(m, np.complex128)
    b[:n] = np.conj(chirp)
    b[m - n + 1:] = np.conj(chirp[1:][::-1])
    spec = e.mul_table(spec, np.fft.fft(b) / m, [len(spec.shape) - 1])
    conv = _dft(e, spec, len(spec.shape) - 1, m, True, 1.0)
    conv = e.slice(conv, len(conv.shape) - 1, 0, n)
    return e.mul_table(conv, chirp, [len(conv.shape) - 1])


def _c2r(e: "_Emit", x: "V", axis: int, n: int, scale: float) -> "V":
    """The real inverse DFT of length n over `axis` of x, whose n // 2 + 1 entries are the
    non-negative frequencies of a Hermitian spectrum; the result axis appended last."""
    h = n // 2 + 1
    if n <= DIRECT:
        # out_j = sum_k w_k (Re X_k cos(2 pi jk/n) - Im X_k sin(2 pi jk/n)), w_k = 1 at k = 0 and
        # the Nyquist term, else 2 (the mirrored half)
        w = _dft_matrix(n, True, scale)[:h, :]
        w[1:n - h + 1] *= 2
        re = e.product(e.part(x, "real"), axis, w.real)
        im = e.product(e.part(x, "imag"), axis, w.imag)
        return e.binary("subtract", re, im)
    # the mirrored half conj(X_(n-k)), k = h..n-1, then the complex inverse and its real part
    mirror = e.slice(x, axis, 1, n - h + 1)
    mirror = e.unary("negate", e.part(mirror, "imag")), e.part(mirror, "real")
    mirror = e.reverse(e.make_complex(mirror[1], mirror[0]), axis)
    full = e.concat(x, mirror, axis)
    return e.part(_dft(e, full, axis, n, True, scale), "real")


# --------------------------------------------------------------------------- constant tables (f64)
def _turns(num: np.ndarray, n: int) -> np.ndarray:
    """exp(2 pi i num / n) for integer num, reduced mod n first and exact at quarter turns."""
    r = np.mod(num, n)
    out = np.exp(2j * np.pi * (r / n))
    quarter = (4 * r) % n == 0
    q = (4 * r[quarter]) // n
    out[quarter] = np.array([1, 1j, -1, -1j])[q]
    return out


def _dft_matrix(n: int, inverse: bool, scale: float) -> np.ndarray:
    j = np.arange(n, dtype=np.int64)
    return _turns((1 if inverse else -1) * np.outer(j, j), n) * scale


def _twiddles(n1: int, n2: int, inverse: bool) -> np.ndarray:
    """W_n^(j2 k1) as (n2, n1)."""
    return _turns((1 if inverse else -1) * np.outer(np.arange(n2, dtype=np.int64), np.arange(n1, dtype=np.int64)),
                  n1 * n2)


def _chirp(n: int, inverse: bool) -> np.ndarray:
    """exp(-+pi i j^2 / n) = exp(2 pi i (-+j^2 mod 2n) / 2n)."""
    j = np.arange(n, dtype=np.int64)
    return _turns((1 if inverse else -1) * (j * j), 2 * n)


# --------------------------------------------------------------------------- text emitter
@dataclass(frozen=True)
class V:
    name: str
    shape: tuple[int, ...]
    el: str

    @property
    def type(self) -> str:
        return "tensor<" + "".join(f"{d}x" for d in self.shape) + self.el + ">"


class _Emit:
    """StableHLO text with fresh SSA names. A table constant is written as a splat placeholder;
    `tables` holds, for each constant op in order, the array to put in it (None: keep)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.tables: list[np.ndarray | None] = []

    def op(self, text: str, shape: tuple[int, ...], el: str) -> V:
        v = V(f"%v{len(self.lines)}", tuple(shape), el)
        self.lines.append(f"{v.name} = {text}")
        return v

    def _typed(self, text: str, ins: list[V], shape: tuple[int, ...], el: str) -> V:
        out = V("", tuple(shape), el)
        return self.op(f"{text} : ({', '.join(i.type for i in ins)}) -> {out.type}", shape, el)

    def table(self, values: np.ndarray, el: str) -> V:
        np_t = {"f32": np.float32, "f64": np.float64, "complex<f32>": np.complex64,
                "complex<f64>": np.complex128}[el]
        self.tables.append(np.ascontiguousarray(values.astype(np_t)))
        zero = "(0.0, 0.0)" if el.startswith("complex") else "0.0"
        return self.op(f"stablehlo.constant dense<{zero}> : {V('', values.shape, el).type}", values.shape, el)

    def zeros(self, shape: tuple[int, ...], el: str) -> V:
        zero = "(0.0, 0.0)" if el.startswith("complex") else "0.0"
        self.tables.append(None)
        c = self.op(f"stablehlo.constant dense<{zero}> : tensor<{el}>", (), el)
        if not shape:
            return c
        return self._typed(f"stablehlo.broadcast_in_dim {c.name}, dims = []", [c], shape, el)

    def product(self, x: V, axis: int, w: np.ndarray) -> V:
        """dot_general contracting x's `axis` with the matrix w's rows: a real x takes the real
        and imaginary parts of w apart (two real products), a complex x the complex matrix."""
        shape = x.shape[:axis] + x.shape[axis + 1:] + (w.shape[1],)
        dims = f"contracting_dims = [{axis}] x [0]"
        if x.el in _COMPLEX and not np.iscomplexobj(w):
            m = self.table(w, x.el)
            return self._typed(f"stablehlo.dot_general {x.name}, {m.name}, {dims}", [x, m], shape, x.el)
        if x.el in _COMPLEX:  # real input: a product with each part of w
            parts = []
            for p in (w.real, w.imag):
                m = self.table(p, x.el)
                parts.append(self._typed(f"stablehlo.dot_general {x.name}, {m.name}, {dims}", [x, m], shape, x.el))
            return self.make_complex(*parts)
        m = self.table(w, x.el)  # complex: complex_split makes it four real products
        return self._typed(f"stablehlo.dot_general {x.name}, {m.name}, {dims}", [x, m], shape, x.el)

    def mul_table(self, x: V, t: np.ndarray, dims: list[int]) -> V:
        """x times the table t broadcast along x's `dims`."""
        x = self.to_complex(x)
        c = self.table(t, x.el)
        b = self._typed(f"stablehlo.broadcast_in_dim {c.name}, dims = [{', '.join(map(str, dims))}]", [c],
                        x.shape, x.el)
        return self.binary("multiply", x, b)

    def binary(self, name: str, a: V, b: V) -> V:
        return self.op(f"stablehlo.{name} {a.name}, {b.name} : {a.type}", a.shape, a.el)

    def unary(self, name: str, a: V) -> V:
        return self.op(f"stablehlo.{name} {a.name} : {a.type}", a.shape, a.el)

    def to_complex(self, x: V) -> V:
        if x.el not in _COMPLEX:
            return x
        return self._typed(f"stablehlo.convert {x.name}", [x], x.shape, _COMPLEX[x.el])

    def part(self, x: V, which: str) -> V:
        return self._typed(f"stablehlo.{which} {x.name}", [x], x.shape, _REAL[x.el])

    def make_complex(self, re: V, im: V) -> V:
        return self._typed(f"stablehlo.complex {re.name}, {im.name}", [re, im], re.shape, _COMPLEX[re.el])

    def reshape(self, x: V, shape: tuple[int, ...]) -> V:
        return x if shape == x.shape else self._typed(f"stablehlo.reshape {x.name}", [x], shape, x.el)

    def transpose(self, x: V, perm: list[int]) -> V:
        if perm == sorted(perm):
            return x
        shape = tuple(x.shape[p] for p in perm)
        return self._typed(f"stablehlo.transpose {x.name}, dims = [{', '.join(map(str, perm))}]", [x], shape, x.el)

    def slice(self, x: V, axis: int, start: int, stop: int) -> V:
        lo = [0] * len(x.shape)
        hi = list(x.shape)
        lo[axis], hi[axis] = start, stop
        shape = x.shape[:axis] + (stop - start,) + x.shape[axis + 1:]
        return self._typed(f"stablehlo.slice {x.name} [{', '.join(f'{a}:{b}' for a, b in zip(lo, hi))}]",
                           [x], shape, x.el)

    def pad(self, x: V, axis: int, high: int) -> V:
        zero = self.zeros((), x.el)
        hi = [0] * len(x.shape)
        hi[axis] = high
        z = ", ".join("0" for _ in x.shape)
        shape = x.shape[:axis] + (x.shape[axis] + high,) + x.shape[axis + 1:]
        return self._typed(f"stablehlo.pad {x.name}, {zero.name}, low = [{z}], high = [{', '.join(map(str, hi))}], "
                           f"interior = [{z}]", [x, zero], shape, x.el)

    def reverse(self, x: V, axis: int) -> V:
        return self.op(f"stablehlo.reverse {x.name}, dims = [{axis}] : {x.type}", x.shape, x.el)

    def concat(self, a: V, b: V, axis: int) -> V:
        shape = a.shape[:axis] + (a.shape[axis] + b.shape[axis],) + a.shape[axis + 1:]
        return self._typed(f"stablehlo.concatenate {a.name}, {b.name}, dim = {axis}", [a, b], shape, a.el)


def _fill_tables(body: ir.Block, tables: list[np.ndarray | None]) -> None:
    consts = [o for o in body.ops if o.name == "stablehlo.constant"]
    assert len(consts) == len(tables), "one table entry per constant op"
    for o, t in zip(consts, tables):
        if t is not None:
            o.attributes["value"] = ir.DenseElements(o.results[0].type, values=t)
