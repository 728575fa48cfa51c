"""stablehlo.fft (FFT, IFFT, RFFT, IRFFT over the trailing 1-3 dims) as products with constant DFT
matrices.

`jnp.fft.*` exports `stablehlo.fft`. It is expanded here, before inlining (like linalg.py's LAPACK
targets), into a private function of ordinary real StableHLO (complex values only at its ends):

- a length n <= DIRECT (powers of two: <= RADIX2) is one dot_general with the DFT matrix (the
  matrix engine);
- a composite n = n1 * n2 is the four-step (Cooley-Tukey) form: a swap of the two digits of the
  index, a length-n1 DFT, an elementwise multiply by the twiddles W_n^(k1 j2) read through the
  swap back, a length-n2 DFT, and a swap to the output's digit order; each sub-DFT recurses, so
  any smooth length is a few matrix passes;
- a prime n > DIRECT is Bluestein's chirp-z: a circular convolution of length m = 2^k >= 2n - 1
  done with two power-of-two FFTs, one of them a constant (the chirp's spectrum).

A 1-D transform works on the last axis, the data the product's left operand. A multi-axis one
transforms each axis of length <= DIRECT or n1 x n2 (both <= DIRECT) where it lies, as a leading
axis (`_leading_dft`: constant matrices on the left, the twiddles folded into the later
products' per-batch matrices, no transposes between the products; one transpose between axes;
1024 as 8 x 8 x 16 where the complex result reads its digits as they lie),
a longer axis n = na x nb (both so) as those two in-place transforms with one twiddle pass
between them (`_outer_dft`, 1-D transforms too), and any other axis by moving it last. An RFFT's
real axis split n1 x n2 (n1 even) makes only the first level's n1 / 2 + 1 distinct outputs
(`_leading_rdft`: the input read where it lies, its pieces stored where the next axis's products
read them). DFT matrices, twiddles and chirps are computed in
f64 (exponents reduced mod n in integers, quarter turns exact) and rounded once to the element
type; IFFT's 1/N is folded into the first matrix applied. RFFT transforms the real axis first,
with the real input as the product's operand (half the columns of a complex one) and only the
n // 2 + 1 outputs kept; IRFFT's last axis is a product over the n // 2 + 1 stored terms with the
mirrored half folded into its matrix (lengths <= DIRECT) or the Hermitian spectrum rebuilt
(longer), so, as in XLA, the imaginary parts of the zero and Nyquist terms do not contribute.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedError, VerificationError
from ..hlo_parser import ir
from .linalg import expansion

DIRECT = 64  # lengths up to this are one product with the DFT matrix; longer ones factor
RADIX2 = 32  # the largest power of two done as one product (a stacked 64 x 64 real matrix)
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
        raise VerificationError(f"fft_type {kind}, fft_length {list(lengths)}: {bad}", op.name, loc)
    e = _Emit()
    arg = V("%arg0", tuple(xt.shape), xt.element)
    if math.prod(rt.shape) == 0 or 0 in lengths:  # an empty transform, or sums over nothing
        out = e.zeros(tuple(rt.shape), rt.element)
    else:
        out = _transform(e, arg, kind, lengths)
    text = (f"func.func public @main(%arg0: {xt}) -> {rt} {{\n  " + "\n  ".join(e.lines) +
            f"\n  return {out.name} : {rt}\n}}\n")
    return expansion(text, f"<fft {kind}>", op, loc, prepare=lambda fn: _fill_tables(fn.body, e.tables))


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


# Complex data inside the expansion is "stacked": a real tensor (..., 2, n) whose second-to-last
# axis is the (re, im) pair and whose last is the one being transformed. A DFT is then one real
# product contracting those two axes with the real 2n x 2k form of the complex matrix,
# [[C, S], [-S, C]]: the data is the product's left operand, its rows contiguous, as the matrix
# engine likes them (many rows, 2n <= 128 columns), where complex_split's complex product would be
# four products and two adds.
def _transform(e: "_Emit", x: "V", kind: str, lengths: tuple[int, ...]) -> "V":
    r, rank = len(lengths), len(x.shape)
    inverse = kind in ("IFFT", "IRFFT")
    scale = 1.0 / math.prod(lengths) if inverse else 1.0
    axes = list(range(rank - r, rank))
    if kind == "RFFT" and r > 1 and _leading(lengths[-1]):
        # the real (last) axis first, so the others transform half as much; as a leading axis
        # (one transpose of the real input, then products with no transposes between them)
        s, n = _State(x, list(range(rank))), lengths[-1]
        if _real_split(n):
            s = _leading_rdft(e, s, rank - 1, n)
        else:
            s = _leading_dft(e, s, rank - 1, n, False, 1.0, keep=n // 2 + 1, merged=True)
        axes = axes[:-1]
    elif kind == "RFFT":
        x = _dft(e, x, lengths[-1], False, 1.0, keep=lengths[-1] // 2 + 1)
        s = _State(x, list(range(rank - 1)) + ["p", rank - 1])
        axes = axes[:-1]
    else:
        s = _State(e.stack(x), list(range(rank - 1)) + ["p", rank - 1])
    todo = list(reversed(axes if kind != "IRFFT" else axes[:-1]))
    for a in todo:
        n = lengths[a - rank + r]
        if r > 1 and _leading(n):  # (a 1-D transform of rows stays a product over them)
            # (merged next unless it is the last: the complex result reads its digits as they lie)
            s = _leading_dft(e, s, a, n, inverse, scale, merged=a != todo[-1] or kind == "IRFFT")
        elif not _leading(n) and _outer_split(n):
            s = _outer_dft(e, s, a, n, inverse, scale)
        else:
            x, order, keep = s.stacked(e, a)
            s = _State(_dft(e, x, n, inverse, scale), order[:-1] + ["p", a], keep)
        scale = 1.0
    if kind == "IRFFT":  # c2r on the last axis, real out
        x, order, _ = s.stacked(e, rank - 1)  # (nothing cut: only RFFT keeps part of an axis)
        return e.transpose(_c2r(e, x, lengths[-1], scale), [order.index(i) for i in range(rank)])
    return s.complex(e, rank)


@dataclass
class _State:
    """Complex data between the axis transforms: a real tensor and, per dim, what it holds: "p"
    (the (re, im) pair), an operand axis a, or a digit of a transformed axis a as (a, i) (k_i; k
    = k1 + n1 k2 + n1 n2 k3 ...). A transpose is left to the next op's read where a view can do
    it; the digits of an axis merge only by a transpose that brings them together, highest first
    (a product stores its result straight into it), and a reshape of that."""
    v: "V"
    labels: list
    keep: dict[int, int] = field(default_factory=dict)  # axis: its first outputs, the ones wanted

    def _arranged(self, e: "_Emit", labels: list) -> "V":
        return e.transpose(self.v, [self.labels.index(t) for t in labels])

    def _whole(self, t) -> list:
        """Label t's axis as the labels that make it up, highest digit first ([] for a digit
        below the top one: its top digit stands for the axis)."""
        if not isinstance(t, tuple):
            return [t]
        top = max(u[1] for u in self.labels if isinstance(u, tuple) and u[0] == t[0])
        return [(t[0], i) for i in range(top, 0, -1)] if t[1] == top else []

    def merged(self, e: "_Emit") -> "_State":
        """The same data with every axis whole and only its kept outputs: the digits of an axis
        merge by a transpose that brings them together in place (fuse stores a product's result
        straight into it), a reshape of its row-major result and a slice (views)."""
        if not any(isinstance(t, tuple) for t in self.labels):
            return self
        want = [u for t in self.labels for u in self._whole(t)]
        v = self._arranged(e, want)
        shape, labels = [], []
        for i, (t, d) in enumerate(zip(want, v.shape)):
            if i and isinstance(t, tuple) and want[i - 1] == (t[0], t[1] + 1):
                shape[-1] *= d
                continue
            shape.append(d)
            labels.append(t[0] if isinstance(t, tuple) else t)
        v = e.reshape(v, tuple(shape))
        # the kept outputs, rounded up to whole 64-byte rows: the copies and products that read
        # this next store rows of it, which unaligned (513 f32 a row) took the transpose after
        # rfft2_1024's first axis 4x as long; the rest is cut when the result is assembled
        keep, align = {}, 64 // {"f32": 4, "f64": 8}[v.el]
        for a, k in self.keep.items():
            i = labels.index(a)
            wide = min(v.shape[i], -(-k // align) * align)
            v = e.slice(v, i, 0, wide) if wide < v.shape[i] else v
            keep.update({a: k} if k < wide else {})
        return _State(v, labels, keep)

    def stacked(self, e: "_Emit", last: int) -> tuple["V", list[int], dict[int, int]]:
        """Stacked (..., 2, n) with operand axis `last` last (the others keep their order), the
        operand axis at each data position, and the outputs still to cut (`keep`)."""
        s = self.merged(e)
        order = [t for t in s.labels if t != "p" and t != last] + [last]
        v = s._arranged(e, order[:-1] + ["p", last])
        return V(v.name, v.shape, v.el, True), order, s.keep

    def complex(self, e: "_Emit", rank: int) -> "V":
        """The complex result in operand order."""
        if any(a not in self.labels for a in self.keep):  # (an axis cut in digits: merge it first)
            return self.merged(e).complex(e, rank)
        groups = [[a] if a in self.labels else [t for t in self.labels if isinstance(t, tuple) and t[0] == a]
                  for a in range(rank)]
        groups = [g if len(g) == 1 else sorted(g, reverse=True) for g in groups]  # highest digit first
        want = [t for g in groups for t in g]
        # the parts are read through one transposed view (each digit a dim of its own: the digits
        # of an axis merge only in the stored complex result, by a view); the copies that store
        # the complex result read runs of the other axes' kept outputs
        v = self._arranged(e, ["p"] + want)
        dims = list(v.shape[1:])
        for a, k in self.keep.items():  # the outputs an axis keeps: a view
            i = want.index(a)
            v = e.slice(v, 1 + i, 0, k)
            dims[i] = k
        parts = [e.reshape(e.slice(v, 0, i, i + 1), tuple(dims), stacked=False) for i in (0, 1)]
        shape = tuple(math.prod(dims[want.index(t)] for t in g) for g in groups)
        return e.reshape(e.make_complex(*parts), shape)


def _leading(n: int) -> bool:
    """Whether length n is transformed in place as a leading axis: one product, or a few."""
    return _leaf(n) or _leading_digits(n) is not None


# Powers of two done in place as three levels, not two: a dense level of r points costs about r
# multiply-adds a point, so 8 + 8 + 16 does 32 where 32 + 32 does 64, for one more pass over the
# data (a short level is a cheap product with the data streaming through it). Measured on
# rfft2_1024's complex axis (host time, one thread): 8 x 8 x 16 0.9x 4 x 16 x 16 and 16 x 8 x 8,
# 8 x 16 x 8 1.1x; four levels (4 x 4 x 8 x 8) no faster, for 13% more modeled DRAM bytes.
_POW2_DIGITS = {1024: (8, 8, 16)}


def _leading_digits(n: int, merged: bool = False) -> tuple[int, ...] | None:
    """The lengths (n1, n2, ...) of the levels of an in-place transform of length n (j = j1 n2
    n3... + j2 n3... + ..., k = k1 + n1 k2 + n1 n2 k3 + ...), all leaves; None if there are none.
    `merged`: the result is merged right after (`_outer_dft`'s twiddle pass reads it whole), which
    the last product's store does for two levels, where three need a transpose pass."""
    if n in _POW2_DIGITS and not merged:
        return _POW2_DIGITS[n]
    n1 = None if _leaf(n) else _split(n)
    return (n1, n // n1) if n1 is not None and _leaf(n1) and _leaf(n // n1) else None


def _leading_dft(e: "_Emit", s: _State, a: int, n: int, inverse: bool, scale: float,
                 keep: int | None = None, merged: bool = False) -> _State:
    """The DFT over operand axis a (its first `keep` outputs), done where the data lies, as
    products with the data the engine's right operand: the pair and axis a lead (the contracted
    (part, index) rows are one run of memory; real data has no pair) and every other dim is a
    column, so no transposes come between the products. Four-step, over the digits of
    `_leading_digits` (j = j1 n2 + j2, k = k1 + n1 k2 for two): the DFT over j1, then per k1 one
    over j2 whose matrix has the twiddles W_n^(k1 j2) folded into its columns (a batched product),
    and so on, level i batched over the outputs (k1..k_i-1) before it with the twiddles
    W_n^(j_i S_i K) (S_i: j_i's stride, K = k1 + n1 k2 + ...: the lower part of k) folded in,
    leaving the output's digits as (k1, ..., k_m-1, part, k_m); they are merged when read next."""
    keep = n if keep is None else keep
    s = s.merged(e)
    pair = ["p"] if "p" in s.labels else []
    rest = [t for t in s.labels if t not in ("p", a)]
    x = s._arranged(e, pair + [a] + rest)
    others = x.shape[len(pair) + 1:]
    if _leaf(n):
        w = _dft_matrix(n, inverse, scale)[:keep]
        out = e.left_product(_left_matrix(w, False, bool(pair)), x, len(pair) + 1)
        return _State(out, ["p", a] + rest, s.keep)
    ns = _leading_digits(n, merged)
    m = len(ns)
    x = e.reshape(x, tuple(pair and [2]) + ns + others)
    y = e.left_product(_left_matrix(_dft_matrix(ns[0], inverse, scale), True, bool(pair)), x, len(pair) + 1)
    low = ns[0]  # y: [k1, part, j2, ..., others]
    for i in range(1, m):
        last = i == m - 1
        ki = -(-keep // low) if last else ns[i]
        lows = np.indices(ns[:i]).reshape(i, -1)  # the batch (k1..k_i-1) in its memory order
        k_low = sum(lows[l] * math.prod(ns[:l]) for l in range(i))  # K = k1 + n1 k2 + ...
        tw = _turns((1 if inverse else -1) * np.outer(k_low * math.prod(ns[i + 1:]), np.arange(ns[i])), n)
        g = _dft_matrix(ns[i], inverse, 1.0)[None, :ki, :] * tw[:, None, :]  # [K, k_i, j_i]
        y = e.reshape(y, (low, 2) + y.shape[i + 1:])
        y = e.left_product(_left_matrix(g, not last, True), y, 2, batch=True)
        y = e.reshape(y, ns[:i] + y.shape[1:])  # [k1..k_i, part, j_i+1, ...] ([.., part, k_m, ...] last)
        low *= ns[i]
    kept = {a: keep} if keep < ki * (low // ns[-1]) else {}
    return _State(y, [(a, i) for i in range(1, m)] + ["p", (a, m)] + rest, {**s.keep, **kept})


def _real_split(n: int) -> bool:
    """Whether the real axis n goes by `_leading_rdft`: two products, the first one even."""
    n1 = None if _leaf(n) else _split(n)
    return n1 is not None and n1 % 2 == 0 and _leaf(n1) and _leaf(n // n1)


def _leading_rdft(e: "_Emit", s: _State, a: int, n: int) -> _State:
    """The first n // 2 + 1 outputs of the DFT of real data over operand axis a (n = n1 x n2, n1
    even), in place as `_leading_dft` does it, with the real input's symmetry: the first product
    (over j1) makes only y_k1 for k1 <= n1 / 2 (y_(n1 - k1) = conj(y_k1)) as n1 / 2 blocks b of
    two rows, (Re y_b, Im y_b) and, in block 0, the real y_0 and y_(n1/2): n1 rows where the
    complex y took 2 n1 (one matrix tile of rows for n1 = 32, not two), half the bytes. The
    second (over j2, batched over the blocks) makes from block b both k1 = b and k1 = n1 - b
    (block 0: 0 and n1 / 2), conj folded into its matrix as the twiddles W_n^(k1 j2) are, for
    k2 <= n2 // 2: the outputs k = k1 + n1 k2 <= n / 2 and a few past it, as (t, part, k2)
    rows, t = 0 for k1 = b. One concatenate puts k1 in order (the t = 1 half reversed: k1 =
    n1 - b runs down as b runs up), copying runs of the other dims, and the next axis's transpose
    reads its aligned part. The outputs past n // 2 are finite and cut when the result is
    assembled."""
    n1 = _split(n)
    n2, h = n // n1, n1 // 2
    k2n = n2 // 2 + 1
    rest = [t for t in s.labels if t != a]
    w1 = _dft_matrix(n1, False, 1.0)  # [k1, j1]
    m1 = np.stack([w1[:h].real, w1[:h].imag], 1)  # [b, s, j1]
    m1[0, 1] = w1[h].real  # y_(n1/2) = sum_j1 (-1)^j1 x_j1 where Im y_0 (= 0) would be
    # the first product reads the input where it lies (axis a last), batched over the other dims
    # (its matrix broadcast along them: no transpose of the input), leaving [..., (b, s), j2],
    # whose (s, j2) the second contracts per b where they lie
    x = s._arranged(e, rest + [a])
    others = x.shape[:-1]
    rows = math.prod(others)
    x = e.reshape(x, (rows, n1, n2))
    mb = e.broadcast(e.table(m1.reshape(n1, n1), x.el), [1, 2], (rows, n1, n1))
    y = e.reshape(e.dot(mb, x, [0], [0], [2], [1], (rows, n1, n2)), others + (h, 2, n2))
    bdim = len(others)
    b = np.arange(h)
    k1 = np.stack([b, n1 - b], 1)
    k1[0, 1] = h
    k = k1[:, :, None] + n1 * np.arange(k2n)  # [b, t, k2]
    c = _turns(-(k[..., None] * np.arange(n2)).astype(np.int64), n)  # W_n^(k j2): [b, t, k2, j2]
    coef = np.array([[[1, 1j], [1, -1j]]] * h)  # y_k1 from block b's rows: t = 0 y_b, t = 1 conj
    coef[0] = [[1, 0], [0, 1]]
    g = c[:, :, :, None, :] * coef[:, :, None, :, None]  # [b, t, k2, s, j2]
    g = np.stack([g.real, g.imag], 2)  # [b, t, q, k2, s, j2]
    z = e.dot(e.table(g, y.el), y, [0], [bdim], [4, 5], [bdim + 1, bdim + 2], (h, 2, 2, k2n) + others)  # [b, t, q, k2, ...]
    nr = len(others)

    def part(t: int, lo: int, hi: int) -> V:  # z[lo:hi, t] as [q, ..., k2, b]
        v = e.reshape(e.slice(e.slice(z, 1, t, t + 1), 0, lo, hi), (hi - lo, 2, k2n) + others)
        return e.transpose(v, [1] + list(range(3, 3 + nr)) + [2, 0])

    # the pieces go where the next axis's products read them: [part, ..., k], k = k1 + n1 k2 last
    # (each piece copies runs of b across the other dims), all k2n n1 columns (a cut would leave
    # the other dims no longer one run for the products)
    parts = [part(0, 0, h), part(1, 0, 1)] + ([e.reverse(part(1, 1, h), 2 + nr)] if h > 1 else [])
    v = e.reshape(e.join(parts, 2 + nr), (2,) + others + (k2n * n1,))
    keep = n // 2 + 1
    return _State(v, ["p"] + rest + [a], {**s.keep, **({a: keep} if keep < k2n * n1 else {})})


def _outer_split(n: int) -> int | None:
    """The first factor na of n = na x nb, both transformed in place (`_leading`), nearest
    sqrt(n); None if there is none."""
    for d in range(math.isqrt(n), 1, -1):
        if n % d == 0 and _leading(d) and _leading(n // d):
            return d
    return None


def _outer_dft(e: "_Emit", s: _State, a: int, n: int, inverse: bool, scale: float) -> _State:
    """The DFT over operand axis a of a length too long for two products (n = na x nb, both
    `_leading`: 2^20 = 1024 x 1024), as the four-step form over two in-place axes: axis a is
    viewed as (jA, jB) (j = jA nb + jB), the DFT over jA runs where it lies (`_leading_dft`), the
    twiddles W_n^(kA jB) are applied by the pass that transposes jB to lead, and the DFT over jB
    runs in place; k = kA + na kB, so (kB, kA) are axis a's two digits. Where `_dft` takes
    two transposes and a twiddle pass per level (rows of the data the products' left operand),
    this is four products, one twiddle pass and the merges the products store straight."""
    na = _outer_split(n)
    nb = n // na
    s = s.merged(e)
    rest = [t for t in s.labels if t not in ("p", a)]
    x = s._arranged(e, ["p", a] + rest)
    x = e.reshape(x, (2, na, nb) + x.shape[2:])
    sa = _leading_dft(e, _State(x, ["p", "jA", "jB"] + rest, s.keep), "jA", na, inverse, scale, merged=True).merged(e)
    y = sa._arranged(e, ["p", "jB", "jA"] + rest)  # read through a transposed view by the twiddle pass
    tw = _twiddles(nb, na, inverse)  # (n = na nb)
    y = e.cmul(y, tw, [1, 2], pair=0)
    sb = _leading_dft(e, _State(y, ["p", "jB", "jA"] + rest, sa.keep), "jB", nb, inverse, 1.0, merged=True).merged(e)
    return _State(sb.v, [{"jA": (a, 1), "jB": (a, 2)}.get(t, t) for t in sb.labels], sb.keep)


def _left_matrix(w: np.ndarray, pair_second: bool, complex_in: bool) -> np.ndarray:
    """The real form of complex matrices w [..., k, j] applied from the left to (part, j) rows
    (j rows of real data when not `complex_in`): [..., q, k, p, j] (or [..., q, k, j]), with q
    the output's part; [..., k, q, ...] when `pair_second`."""
    c, s = w.real, w.imag
    if complex_in:
        m = np.stack([np.stack([c, -s], -2), np.stack([s, c], -2)], -4)  # [..., q, k, p, j]
        return np.swapaxes(m, -4, -3) if pair_second else m
    m = np.stack([c, s], -3)  # [..., q, k, j]
    return np.swapaxes(m, -3, -2) if pair_second else m


# --------------------------------------------------------------------------- the DFT, recursively
def _dft(e: "_Emit", x: "V", n: int, inverse: bool, scale: float, keep: int | None = None) -> "V":
    """The DFT of length n over the last axis of x, stacked complex (..., 2, n) or real (..., n);
    its first `keep` outputs, stacked (..., 2, keep)."""
    keep = n if keep is None else keep
    if _leaf(n):
        return e.product(x, _dft_matrix(n, inverse, scale)[:, :keep])
    n1 = _split(n)
    if n1 is None:
        out = _bluestein(e, x, n, inverse, scale)
    else:
        n2 = n // n1
        rest = x.shape[:-2] if x.stacked else x.shape[:-1]
        b = len(rest)
        # j = j1 * n2 + j2 and k = k1 + n1 * k2: the DFT over j1 (the leading digit), twiddles read
        # through a swap of the digits, the DFT over j2; (k2, k1) is then k's order
        if x.stacked:
            x = e.transpose(e.reshape(x, rest + (2, n1, n2)), list(range(b)) + [b + 2, b, b + 1])
        else:
            x = e.transpose(e.reshape(x, rest + (n1, n2)), list(range(b)) + [b + 1, b])
        y = _dft(e, x, n1, inverse, scale)  # (..., j2, 2, k1)
        y = e.transpose(y, list(range(b)) + [b + 2, b + 1, b])  # (..., k1, 2, j2)
        y = e.cmul(y, _twiddles(n1, n2, inverse), [b, b + 2])
        keep2 = -(-keep // n1)
        z = _dft(e, y, n2, inverse, 1.0, keep=keep2)  # (..., k1, 2, k2)
        z = e.transpose(z, list(range(b)) + [b + 1, b + 2, b])  # (..., 2, k2, k1)
        out = e.reshape(z, rest + (2, keep2 * n1))
    if keep < out.shape[-1]:
        out = e.slice(out, len(out.shape) - 1, 0, keep)
    return out


def _leaf(n: int) -> bool:
    """Whether length n is one product: up to DIRECT, but powers of two only up to RADIX2."""
    return n <= (RADIX2 if n & (n - 1) == 0 else DIRECT)


def _split(n: int) -> int | None:
    """The first factor n1 of a four-step split of n, or None if n is prime (Bluestein).

    A power of two 2^k takes ceil(k / 5) products of up to 32 points, as even as can be: every
    level costs two transposes and a twiddle pass over the data, which cost more than a wider
    product (2- and 4-point products would also waste most of a 32 x 32 matrix tile). Measured
    in host CPU time: 1024-point rows as 32 x 32 take 0.6x the time of 16 x 8 x 8. Any other n
    splits at the divisor nearest sqrt(n)."""
    if n & (n - 1) == 0:
        k = n.bit_length() - 1
        return 1 << -(-k // -(-k // 5))
    for d in range(math.isqrt(n), 1, -1):
        if n % d == 0:
            return d
    return None


def _bluestein(e: "_Emit", x: "V", n: int, inverse: bool, scale: float) -> "V":
    """jk = (j^2 + k^2 - (k-j)^2) / 2, so X_k = c_k sum_j (x_j c_j) conj(c_(k-j)) with the chirp
    c_j = W^(j^2/2): a circular convolution of length m >= 2n - 1, by power-of-two FFTs."""
    m = 1 << (2 * n - 2).bit_length()
    chirp = _chirp(n, inverse)
    a = e.cmul(x, chirp * scale, [-1])
    spec = _dft(e, e.pad(a, len(a.shape) - 1, m - n), m, False, 1.0)
    b = np.zeros(m, np.complex128)
    b[:n] = np.conj(chirp)
    b[m - n + 1:] = np.conj(chirp[1:][::-1])
    spec = e.cmul(spec, np.fft.fft(b) / m, [-1])
    conv = _dft(e, spec, m, True, 1.0, keep=n)
    return e.cmul(conv, chirp, [-1])


def _c2r(e: "_Emit", x: "V", n: int, scale: float) -> "V":
    """The real inverse DFT of length n over the last axis of the stacked x (..., 2, n // 2 + 1),
    the non-negative frequencies of a Hermitian spectrum; a real (..., n)."""
    h = n // 2 + 1
    last = len(x.shape) - 1
    if n <= DIRECT:
        # out_j = sum_k w_k (Re X_k cos(2 pi jk/n) - Im X_k sin(2 pi jk/n)), w_k = 1 at k = 0 and
        # the Nyquist term, else 2 (the mirrored half): one real product over (part, k)
        w = _dft_matrix(n, True, scale)[:h, :]
        w[1:n - h + 1] *= 2
        return e.product_real(x, np.concatenate([w.real, -w.imag], 0))
    # the mirrored half conj(X_(n-k)), k = h..n-1, then the complex inverse and its real part
    mirror = e.reverse(e.slice(x, last, 1, n - h + 1), last)
    re, im = e.slice(mirror, last - 1, 0, 1), e.slice(mirror, last - 1, 1, 2)
    full = e.concat(x, e.concat(re, e.unary("negate", im), last - 1, stacked=True), last)
    out = _dft(e, full, n, True, scale)
    return e.reshape(e.slice(out, last - 1, 0, 1), out.shape[:-2] + out.shape[-1:])


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
    """W_n^(k1 j2) as (n1, n2)."""
    return _turns((1 if inverse else -1) * np.outer(np.arange(n1, dtype=np.int64), np.arange(n2, dtype=np.int64)),
                  n1 * n2)


def _chirp(n: int, inverse: bool) -> np.ndarray:
    """exp(-+pi i j^2 / n) = exp(2 pi i (-+j^2 mod 2n) / 2n)."""
    j = np.arange(n, dtype=np.int64)
    return _turns((1 if inverse else -1) * (j * j), 2 * n)


# --------------------------------------------------------------------------- text emitter
@dataclass(frozen=True)
class V:
    """A value of the expansion: SSA name, shape, element type, and whether its axis 0 is the
    (re, im) pair of stacked complex data."""
    name: str
    shape: tuple[int, ...]
    el: str
    stacked: bool = False

    @property
    def type(self) -> str:
        return "tensor<" + "".join(f"{d}x" for d in self.shape) + self.el + ">"


class _Emit:
    """StableHLO text with fresh SSA names. A table constant is written as a splat placeholder;
    `tables` holds, for each constant op in order, the array to put in it (None: keep)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.tables: list[np.ndarray | None] = []

    def op(self, text: str, shape: tuple[int, ...], el: str, stacked: bool = False) -> V:
        v = V(f"%v{len(self.lines)}", tuple(shape), el, stacked)
        self.lines.append(f"{v.name} = {text}")
        return v

    def _typed(self, text: str, ins: list[V], shape: tuple[int, ...], el: str,
               stacked: bool | None = None) -> V:
        """An op whose type is written (operands) -> result; stacked as its first operand unless told."""
        out = V("", tuple(shape), el)
        stacked = ins[0].stacked if stacked is None else stacked
        return self.op(f"{text} : ({', '.join(i.type for i in ins)}) -> {out.type}", shape, el, stacked)

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
        return self.broadcast(c, [], shape)

    def product(self, x: V, w: np.ndarray) -> V:
        """The DFT matrix w (indexed [j, k]) applied over x's last axis: one real product with
        the real form of w, stacked (..., 2, k) out."""
        c, s = w.real, w.imag
        m = np.block([[c, s], [-s, c]]) if x.stacked else np.concatenate([c, s], 1)  # (p, j) x (q, k)
        out = self.product_real(x, m)
        return self.reshape(out, out.shape[:-1] + (2, w.shape[1]), stacked=True)

    def left_product(self, m: np.ndarray, x: V, nc: int, batch: bool = False) -> V:
        """The constant m [(batch), rows..., contracted...] times x [(batch), contracted..., cols...]
        over x's first `nc` dims after the batch: dot_general with the constant on the left."""
        b = 1 if batch else 0
        t = self.table(m, x.el)
        free = m.shape[b:len(m.shape) - nc]
        bd = [0] if batch else []
        return self.dot(t, x, bd, bd, [len(m.shape) - nc + i for i in range(nc)], [b + i for i in range(nc)],
                        x.shape[:b] + free + x.shape[b + nc:])

    def dot(self, lhs: V, rhs: V, lb: list[int], rb: list[int], lc: list[int], rc: list[int],
            shape: tuple[int, ...]) -> V:
        """dot_general with the batching and contracting dims given (result [batch, lhs free,
        rhs free], of `shape`)."""
        j = lambda d: ", ".join(map(str, d))  # noqa: E731
        bd = f"batching_dims = [{j(lb)}] x [{j(rb)}], " if lb else ""
        return self._typed(f"stablehlo.dot_general {lhs.name}, {rhs.name}, {bd}contracting_dims = [{j(lc)}] x [{j(rc)}]",
                           [lhs, rhs], shape, rhs.el, stacked=False)

    def product_real(self, x: V, m: np.ndarray) -> V:
        """x @ m over x's last axis (a stacked x's last two)."""
        lead = x.shape[:-2] if x.stacked else x.shape[:-1]
        flat = self.reshape(x, lead + (m.shape[0],), stacked=False)
        t = self.table(m, x.el)
        return self._typed(f"stablehlo.dot_general {flat.name}, {t.name}, contracting_dims = [{len(lead)}] x [0]",
                           [flat, t], lead + (m.shape[1],), x.el)

    def stack(self, x: V) -> V:
        shape = x.shape[:-1] + (1,) + x.shape[-1:]
        parts = [self.reshape(self.part(x, p), shape) for p in ("real", "imag")]
        return self.concat(*parts, len(shape) - 2, stacked=True)

    def unstack(self, x: V) -> V:
        pair = len(x.shape) - 2
        re, im = (self.reshape(self.slice(x, pair, i, i + 1), x.shape[:-2] + x.shape[-1:]) for i in (0, 1))
        return self.make_complex(re, im)

    def cmul(self, x: V, t: np.ndarray, dims: list[int], pair: int | None = None) -> V:
        """x (stacked, real, or with its (re, im) pair at axis `pair`) times the complex table t
        broadcast along the axes `dims` (of x, the pair counted)."""
        stacked = pair is None
        if x.stacked or not stacked:
            pair = len(x.shape) - 2 if stacked else pair
            a, b = self.slice(x, pair, 0, 1), self.slice(x, pair, 1, 2)
        else:
            a, b = self.reshape(x, x.shape[:-1] + (1,) + x.shape[-1:]), None
            pair = len(a.shape) - 2
        dims = [d % len(a.shape) for d in dims]
        tr, ti = (self.broadcast(self.table(c, x.el), dims, a.shape) for c in (t.real, t.imag))
        mul = lambda p, q: self.binary("multiply", p, q)  # noqa: E731
        if b is None:
            return self.concat(mul(a, tr), mul(a, ti), pair, stacked=True)
        return self.concat(self.binary("subtract", mul(a, tr), mul(b, ti)),
                           self.binary("add", mul(a, ti), mul(b, tr)), pair, stacked=stacked)

    def broadcast(self, x: V, dims: list[int], shape: tuple[int, ...]) -> V:
        """x broadcast to `shape`, its dims landing at `dims`."""
        return self._typed(f"stablehlo.broadcast_in_dim {x.name}, dims = [{', '.join(map(str, dims))}]", [x],
                           shape, x.el, False)

    def binary(self, name: str, a: V, b: V) -> V:
        return self.op(f"stablehlo.{name} {a.name}, {b.name} : {a.type}", a.shape, a.el, a.stacked)

    def unary(self, name: str, a: V) -> V:
        return self.op(f"stablehlo.{name} {a.name} : {a.type}", a.shape, a.el, a.stacked)

    def part(self, x: V, which: str) -> V:
        return self._typed(f"stablehlo.{which} {x.name}", [x], x.shape, _REAL[x.el])

    def make_complex(self, re: V, im: V) -> V:
        return self._typed(f"stablehlo.complex {re.name}, {im.name}", [re, im], re.shape, _COMPLEX[re.el])

    def reshape(self, x: V, shape: tuple[int, ...], stacked: bool | None = None) -> V:
        stacked = x.stacked if stacked is None else stacked
        if shape == x.shape:
            return V(x.name, x.shape, x.el, stacked)
        return self._typed(f"stablehlo.reshape {x.name}", [x], shape, x.el, stacked)

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
                           [x], shape, x.el, x.stacked and axis != len(x.shape) - 2)

    def pad(self, x: V, axis: int, high: int) -> V:
        zero = self.zeros((), x.el)
        hi = [0] * len(x.shape)
        hi[axis] = high
        z = ", ".join("0" for _ in x.shape)
        shape = x.shape[:axis] + (x.shape[axis] + high,) + x.shape[axis + 1:]
        return self._typed(f"stablehlo.pad {x.name}, {zero.name}, low = [{z}], high = [{', '.join(map(str, hi))}], "
                           f"interior = [{z}]", [x, zero], shape, x.el)

    def reverse(self, x: V, axis: int) -> V:
        return self.op(f"stablehlo.reverse {x.name}, dims = [{axis}] : {x.type}", x.shape, x.el, x.stacked)

    def join(self, vs: list[V], axis: int, stacked: bool | None = False) -> V:
        """One concatenate of the values along `axis` (a chain of two-operand ones would store
        the first pieces twice); not stacked unless told (None: as the first)."""
        if len(vs) == 1:
            return vs[0]
        shape = vs[0].shape[:axis] + (sum(v.shape[axis] for v in vs),) + vs[0].shape[axis + 1:]
        return self._typed(f"stablehlo.concatenate {', '.join(v.name for v in vs)}, dim = {axis}", vs, shape,
                           vs[0].el, stacked)

    def concat(self, a: V, b: V, axis: int, stacked: bool | None = None) -> V:
        return self.join([a, b], axis, stacked)


def _fill_tables(body: ir.Block, tables: list[np.ndarray | None]) -> None:
    consts = [o for o in body.ops if o.name == "stablehlo.constant"]
    assert len(consts) == len(tables), "one table entry per constant op"
    for o, t in zip(consts, tables):
        if t is not None:
            o.attributes["value"] = ir.DenseElements(o.results[0].type, values=t)
