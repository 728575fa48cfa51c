"""stablehlo.convolution -> core ops (views, pad, concat, elementwise, reduce, dot).

Follows the StableHLO spec's definition: the lhs is padded (edge padding, which may be
negative, and interior padding for lhs dilation), split into `batch_group_count` groups along its
batch dimension or `feature_group_count` groups along its feature dimension, and every output
element is the sum over one window (strided by `window_strides`, its taps spaced by
`rhs_dilation`, the kernel optionally reversed) of lhs * rhs over the group's input features.

Three lowerings, chosen by shape, all over the same padded lhs:
  direct_grouped    a few input and output features per group (depthwise forward and input
                    gradient, with or without a channel multiplier): a sum
                    over taps of (shifted view of the input) * (broadcast tap weight), all
                    elementwise, so fusion makes it one loop kernel with nothing materialized
                    but the padded input.
  direct_reduce     batch groups of one image with a few output features each (the weight
                    gradient of a depthwise convolution): one reduction of (shifted input) * (output
                    gradient) per kernel tap, reading both in their own layouts.
  im2col            everything else: shifted views concatenated into patches (along the
                    shorter of the window and the output), then one batched product on the
                    matrix engine with the groups as its batch dimension.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnsupportedError
from ..hlo_parser import ir
from .fuse import segments_pay
from .graph import Graph, Node, broadcast, const, ew, transpose

OP = "stablehlo.convolution"
# Groups this narrow (depthwise: 1 input feature; its input gradient with a channel multiplier: a
# few) waste most of each 32x32 matrix tile; the vector engine does their few products per
# output element directly instead.
DIRECT_MAX = 4
# Splitting an lhs-dilated convolution into phases makes about twice its kernels: worth it from
# about this many (dilated input elements x taps), ~1 ms of host work.
PHASE_MIN = 1 << 20
# Past this many pieces a 1-D convolution's patches are cut from blocks (see _blocked_pieces).
TAP_BLOCK_MIN = 32
# An implicit-im2col product (`_windowed`) runs one output row of the last spatial dim per
# engine call: shorter rows than this waste the engine's register tile, so im2col it is.
WINDOW_MIN_ROWS = 32


@dataclass(frozen=True)
class Conv:
    """One convolution's attributes, dimension numbers resolved to positions."""
    x_batch: int
    x_feature: int
    x_spatial: tuple[int, ...]
    w_in: int
    w_out: int
    w_spatial: tuple[int, ...]
    y_batch: int
    y_feature: int
    y_spatial: tuple[int, ...]
    strides: tuple[int, ...]
    pad: tuple[tuple[int, int], ...]
    lhs_dilation: tuple[int, ...]
    rhs_dilation: tuple[int, ...]
    reversal: tuple[bool, ...]
    feature_groups: int
    batch_groups: int

    @staticmethod
    def from_op(op: ir.Operation) -> "Conv":
        a = op.attributes
        d = a["dimension_numbers"].fields
        k = len(d["input_spatial_dimensions"])

        def ints(name: str, default: int) -> tuple[int, ...]:
            v = a.get(name)
            if v is None:
                return (default,) * k
            vals = v.values if isinstance(v, ir.DenseElements) else v
            out = tuple(int(x.value if isinstance(x, ir.IntegerAttr) else x)
                        for x in np.asarray(vals, dtype=object).reshape(-1))
            return out or (default,) * k

        pad = ints("padding", 0)
        if len(pad) != 2 * k:  # absent or empty: no padding
            pad = (0,) * (2 * k)
        rev = a.get("window_reversal")
        rev = tuple(bool(r) for r in (np.asarray(rev.values).reshape(-1) if isinstance(rev, ir.DenseElements)
                                      else rev)) if rev else (False,) * k

        def count(name: str) -> int:
            v = a.get(name, 1)
            return int(v.value if isinstance(v, ir.IntegerAttr) else v)

        return Conv(d["input_batch_dimension"], d["input_feature_dimension"], tuple(d["input_spatial_dimensions"]),
                    d["kernel_input_feature_dimension"], d["kernel_output_feature_dimension"],
                    tuple(d["kernel_spatial_dimensions"]),
                    d["output_batch_dimension"], d["output_feature_dimension"], tuple(d["output_spatial_dimensions"]),
                    ints("window_strides", 1), tuple(zip(pad[0::2], pad[1::2])), ints("lhs_dilation", 1),
                    ints("rhs_dilation", 1), rev or (False,) * k, count("feature_group_count"),
                    count("batch_group_count"))


def convolution(op: ir.Operation, x: Node, w: Node, shape: tuple[int, ...], dt: str) -> Node:
    """The legalize handler for stablehlo.convolution."""
    c = Conv.from_op(op)
    loc = op.loc
    if c.feature_groups > 1 and c.batch_groups > 1:
        raise UnsupportedError("convolution with both feature_group_count and batch_group_count > 1", OP, loc)
    groups = max(c.feature_groups, c.batch_groups)
    if x.shape[c.x_feature] % c.feature_groups or x.shape[c.x_batch] % c.batch_groups or w.shape[c.w_out] % groups:
        raise UnsupportedError("convolution whose group counts do not divide its feature/batch dimensions",
                               OP, loc)
    k = len(c.x_spatial)
    if any(c.reversal):
        w = Node("reverse", [w], w.shape, w.dtype,
                 {"dims": tuple(c.w_spatial[i] for i in range(k) if c.reversal[i])}, loc)
        c = replace(c, reversal=(False,) * k)
    cg = x.shape[c.x_feature] // c.feature_groups
    if 0 in shape or cg * math.prod(w.shape[i] for i in c.w_spatial) == 0:
        return const(0, dt, shape, loc)  # nothing to sum: every output is the empty sum, 0
    y = _lower(x, w, c, tuple(shape[i] for i in c.y_spatial), dt, loc)
    # y is [batch, *spatial, feature]; result dim i comes from y's dim order.index(i)
    order = [c.y_batch, *c.y_spatial, c.y_feature]
    return transpose(y, [order.index(i) for i in range(k + 2)], loc)


def _lower(x: Node, w: Node, c: Conv, osp: tuple[int, ...], dt: str, loc: object) -> Node:
    """The convolution (kernel already reversed) as [batch, *out spatial, feature]."""
    groups = max(c.feature_groups, c.batch_groups)
    nb = x.shape[c.x_batch] // c.batch_groups               # images per group
    cg = x.shape[c.x_feature] // c.feature_groups           # input features per group
    og = w.shape[c.w_out] // groups                         # output features per group
    window = tuple(w.shape[i] for i in c.w_spatial)
    if _phased(x, w, c):
        return _by_phase(x, w, c, osp, dt, loc)
    xp = _pad(x, c, loc)
    if c.batch_groups == 1 and groups > 1 and cg <= DIRECT_MAX and og <= DIRECT_MAX:
        return _direct_grouped(xp, w, c, groups, cg, og, window, osp, dt, loc)
    # (one reduction per output position; a long 1-D one is cheaper as blocked patches)
    if c.batch_groups > 1 and nb == 1 and og <= DIRECT_MAX and not (len(osp) == 1 and osp[0] > TAP_BLOCK_MIN):
        return _direct_reduce(xp, w, c, window, osp, dt, loc)
    if _windowed_fits(c, groups, window, osp):
        return _windowed(x, w, c, window, osp, dt, loc)
    if groups == 1 and len(window) == 2 and window[0] > 1 and c.rhs_dilation[-1] == 1 and \
            math.prod(window) <= math.prod(osp):  # short output rows: patches gathered in SRAM
        xt = transpose(_pad(x, c, loc), [c.x_batch, *c.x_spatial, c.x_feature], loc)
        return _windowed_rows(xt, w, c, window, osp, dt, loc, False)
    return _im2col(xp, w, c, groups, nb, cg, og, window, osp, dt, loc)


def _phased(x: Node, w: Node, c: Conv) -> bool:
    """Whether lhs dilation (a transposed convolution, the input gradient of a strided one) is
    better split by output phase: dilating by s fills the input with (s-1)/s zeros per dim that
    every form would multiply. Done where the window is dense and unstrided in those dims, and
    the zeros would cost more than the phases' extra kernels cost to build."""
    dil = [i for i, s in enumerate(c.lhs_dilation) if s > 1]
    work = x.size * math.prod(c.lhs_dilation) * math.prod(w.shape[i] for i in c.w_spatial)
    return bool(dil) and work >= PHASE_MIN and x.size > 0 and \
        all(c.strides[i] == 1 and c.rhs_dilation[i] == 1 for i in dil)


def _by_phase(x: Node, w: Node, c: Conv, osp: tuple[int, ...], dt: str, loc: object) -> Node:
    """Sub-pixel form of an lhs-dilated convolution. In a dim dilated by s (stride 1, dense
    window, padding lo), output o = s*j + phase reads dilated input o + p - lo, which is a real
    input only for the taps p = p0 + s*t with p0 = (lo - phase) mod s, and then it is input
    j + t + e, e = (phase + p0 - lo) / s. So each phase is an undilated convolution with the
    kernel's taps p0::s and edge padding -e; all phases are computed for ceil(O/s) outputs and
    interleaved (a concat along a new minor dim, merged into the dim by a view), then cut to O."""
    k = len(osp)
    dil = [i for i in range(k) if c.lhs_dilation[i] > 1]
    nout = x.shape[c.x_batch] // c.batch_groups
    fout = w.shape[c.w_out]
    per_dim = []   # for each dilated dim: (p0, taps, low, high) per phase
    for i in dil:
        s, lo = c.lhs_dilation[i], c.pad[i][0]
        n_in, n_tap, jn = x.shape[c.x_spatial[i]], w.shape[c.w_spatial[i]], -(-osp[i] // s)
        phases = []
        for ph in range(s):
            p0 = (lo - ph) % s
            taps = max(0, -(-(n_tap - p0) // s))
            e = (ph + p0 - lo) // s
            phases.append((p0, taps, -e, jn + taps - 1 - n_in + e))
        per_dim.append(phases)
    jsp = list(osp)
    for i in dil:
        jsp[i] = -(-osp[i] // c.lhs_dilation[i])
    results: dict[tuple[int, ...], Node] = {}
    for combo in itertools.product(*(range(c.lhs_dilation[i]) for i in dil)):
        pad, start, size, step = list(c.pad), [0] * len(w.shape), list(w.shape), [1] * len(w.shape)
        for d, i, ph in zip(range(len(dil)), dil, combo):
            p0, taps, low, high = per_dim[d][ph]
            pad[i] = (low, high)
            wd = c.w_spatial[i]
            start[wd], size[wd], step[wd] = p0, taps, c.lhs_dilation[i]
        if 0 in size:  # no tap lands on a real input: this phase's outputs are 0
            results[combo] = const(0, dt, (nout, *jsp, fout), loc)
            continue
        ws = w if tuple(size) == w.shape else \
            Node("slice", [w], tuple(size), w.dtype, {"start": tuple(start), "strides": tuple(step)}, loc)
        sub = replace(c, pad=tuple(pad), lhs_dilation=(1,) * k)
        results[combo] = _lower(x, ws, sub, tuple(jsp), dt, loc)
    # interleave, the last dilated dim first: phases of dim i stacked after it, merged into it
    for d in reversed(range(len(dil))):
        i, s = dil[d], c.lhs_dilation[dil[d]]
        merged: dict[tuple[int, ...], Node] = {}
        for prefix in itertools.product(*(range(c.lhs_dilation[j]) for j in dil[:d])):
            parts = [results[(*prefix, ph)] for ph in range(s)]
            shp = parts[0].shape
            split = (*shp[:i + 2], 1, *shp[i + 2:])
            cat = Node("concat", [_reshape(p_, split, loc) for p_ in parts],
                       (*shp[:i + 2], s, *shp[i + 2:]), dt, {"dim": i + 2}, loc)
            merged[prefix] = _reshape(cat, (*shp[:i + 1], shp[i + 1] * s, *shp[i + 2:]), loc)
        results = merged
    y = results[()]
    if y.shape[1:k + 1] == osp:
        return y
    return Node("slice", [y], (nout, *osp, fout), dt, {"start": (0,) * (k + 2), "strides": (1,) * (k + 2)}, loc)


def _pad(x: Node, c: Conv, loc: object) -> Node:
    """Edge and interior (lhs dilation) padding of the input, in the input's own layout."""
    r = len(x.shape)
    low, high, interior = [0] * r, [0] * r, [0] * r
    for i, d in enumerate(c.x_spatial):
        low[d], high[d] = c.pad[i]
        interior[d] = c.lhs_dilation[i] - 1
    if not any(low) and not any(high) and not any(interior):
        return x
    shape = tuple(x.shape[i] + low[i] + high[i] + max(x.shape[i] - 1, 0) * interior[i] for i in range(r))
    return Node("pad", [x, const(0, x.dtype)], shape, x.dtype, {"low": tuple(low), "interior": tuple(interior)}, loc)


def _shifted(xp: Node, c: Conv, start: tuple[int, ...], size: tuple[int, ...], step: tuple[int, ...],
             loc: object) -> Node:
    """The view of the padded input whose spatial dim i runs start[i] + step[i] * j, j < size[i]."""
    st, sh, sd = [0] * len(xp.shape), list(xp.shape), [1] * len(xp.shape)
    for i, d in enumerate(c.x_spatial):
        st[d], sh[d], sd[d] = start[i], size[i], step[i]
    if tuple(sh) == xp.shape:
        return xp
    return Node("slice", [xp], tuple(sh), xp.dtype, {"start": tuple(st), "strides": tuple(sd)}, loc)


def _reshape(x: Node, shape: tuple[int, ...], loc: object) -> Node:
    return x if x.shape == tuple(shape) else Node("reshape", [x], tuple(shape), x.dtype, {}, loc)


def _convert(x: Node, dt: str, loc: object) -> Node:
    return x if x.dtype == dt else Node("convert", [x], x.shape, dt, {}, loc)


def _acc_type(dt: str) -> str:
    """Sums run in f32 for narrow floats and are rounded once, as XLA:CPU does."""
    return "f32" if dt in ("bf16", "f16") else dt


def _direct_grouped(xp: Node, w: Node, c: Conv, groups: int, cg: int, og: int, window: tuple[int, ...],
                    osp: tuple[int, ...], dt: str, loc: object) -> Node:
    """y[b, o, g, m] = sum over taps p and the group's features f of
    x[b, o*stride + p*dilation, g, f] * w[p, f, g, m]: one multiply-add per (tap, feature) on
    the whole output, each operand a view (a shifted input, a broadcast weight row)."""
    k = len(window)
    acc = _acc_type(dt)
    xt = transpose(xp, [c.x_batch, *c.x_spatial, c.x_feature], loc)        # [B, *sp, G*cg]
    xt = _reshape(xt, (*xt.shape[:-1], groups, cg), loc)                   # [B, *sp, G, cg]
    wt = transpose(w, [*c.w_spatial, c.w_in, c.w_out], loc)                # [*window, cg, G*og]
    wt = _reshape(wt, (*wt.shape[:-1], groups, og), loc)                   # [*window, cg, G, og]
    n = xt.shape[0]
    # the multiplier dim only when there is one: the result reshaped from [.., G, 1] would be a
    # copy of the output, not a view
    ydims = (groups, og) if og > 1 else (groups,)
    yshape = (n, *osp, *ydims)
    total: Node | None = None
    for p in np.ndindex(*window):
        for f in range(cg):
            xs = Node("slice", [xt], (n, *osp, groups, 1), xt.dtype,
                      {"start": (0, *[q * r for q, r in zip(p, c.rhs_dilation)], 0, f),
                       "strides": (1, *c.strides, 1, 1)}, loc)
            xs = broadcast(_reshape(xs, (n, *osp, groups), loc), yshape, tuple(range(k + 2)), loc)
            tap = Node("slice", [wt], (1,) * (k + 1) + (groups, og), wt.dtype,
                       {"start": (*p, f, 0, 0), "strides": (1,) * (k + 3)}, loc)
            tap = broadcast(_reshape(tap, ydims, loc), yshape, tuple(range(k + 1, len(yshape))), loc)
            term = ew("mul", [_convert(xs, acc, loc), _convert(tap, acc, loc)], loc=loc)
            total = term if total is None else ew("add", [total, term], loc=loc)
    assert total is not None
    return _reshape(_convert(total, dt, loc), (n, *osp, groups * og), loc)


def _direct_reduce(xp: Node, w: Node, c: Conv, window: tuple[int, ...], osp: tuple[int, ...],
                   dt: str, loc: object) -> Node:
    """Batch groups of one image, a few output features each: y[0, o, g*og + m] = sum over the
    window p and the group's input features f of x[g, o*stride + p*dilation, f] * w[p, f, g, m].
    The rhs is viewed in the input's dim order (its output features split into [G, og] where
    the input has its batch), the input broadcast over m, so each product is elementwise in the
    input's layout and each output position one reduction over every dim but (g, m)."""
    acc = _acc_type(dt)
    xb, r = c.x_batch, len(xp.shape)
    groups = xp.shape[xb]
    og = w.shape[c.w_out] // groups
    perm = [0] * r
    perm[xb], perm[c.x_feature] = c.w_out, c.w_in
    for i, d in enumerate(c.x_spatial):
        perm[d] = c.w_spatial[i]
    wx = transpose(w, perm, loc)
    wx = _convert(_reshape(wx, (*wx.shape[:xb], groups, og, *wx.shape[xb + 1:]), loc), acc, loc)
    axes = tuple(i for i in range(r + 1) if i not in (xb, xb + 1))
    rows = []
    for o in np.ndindex(*osp):
        xs = _shifted(xp, c, tuple(q * s for q, s in zip(o, c.strides)), window, c.rhs_dilation, loc)
        xs = broadcast(_convert(xs, acc, loc), wx.shape, tuple(i + (i > xb) for i in range(r)), loc)
        rows.append(_reshape(_sum(ew("mul", [xs, wx], loc=loc), axes, loc), (1, groups * og), loc))
    y = rows[0] if len(rows) == 1 else Node("concat", rows, (len(rows), groups * og), acc, {"dim": 0}, loc)
    return _convert(_reshape(y, (1, *osp, groups * og), loc), dt, loc)


def _sum(x: Node, axes: tuple[int, ...], loc: object) -> Node:
    a, b = (Node("param", [], (), x.dtype, {"index": i}, loc) for i in range(2))
    body = Graph([a, b], [Node("add", [a, b], (), x.dtype, {}, loc)])
    shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    return Node("reduce", [x, const(0, x.dtype)], shape, x.dtype,
                {"axes": axes, "body": body, "index": 0, "n": 1}, loc)


def _im2col(xp: Node, w: Node, c: Conv, groups: int, nb: int, cg: int, og: int, window: tuple[int, ...],
            osp: tuple[int, ...], dt: str, loc: object) -> Node:
    """Patches [G, nb, *out, taps, cg] times the kernel [G, taps, cg, og], batched over the G
    groups on the matrix engine (no batch dim when G = 1). The patches are one shifted view per
    window tap, concatenated; when the output has fewer positions than the window has taps (a
    weight gradient, whose window is the image) they are one view per output position instead,
    [G, nb, positions, *window and cg in the kernel's order]. Either way the product's
    contracting dims are contiguous in the patches."""
    k = len(window)
    xt = transpose(xp, [c.x_batch, *c.x_spatial, c.x_feature], loc)         # [B, *sp, C]
    if groups == 1:
        xg = xt
    elif c.batch_groups > 1:   # [G*nb, *sp, C] -> [G, nb, *sp, C]
        xg = _reshape(xt, (groups, nb, *xt.shape[1:]), loc)
    else:                      # [B, *sp, G*cg] -> [G, B, *sp, cg]
        xg = transpose(_reshape(xt, (*xt.shape[:-1], groups, cg), loc), [k + 1, 0, *range(1, k + 1), k + 2], loc)
    lead = (groups,) if groups > 1 else ()
    b = len(lead)                                                            # dims before nb
    npos, ntap = int(np.prod(osp)), int(np.prod(window))
    by_tap = ntap <= npos
    # Contracting dims (window..., features) in the kernel's own order when the kernel is the big
    # operand (a weight gradient's output gradient, e.g. NHWC read as [N, H, W] x C), so it is
    # read in place; the small kernel of a forward conv is reordered instead.
    corder = list(range(k + 1)) if by_tap else \
        sorted(range(k + 1), key=lambda j: c.w_spatial[j] if j < k else c.w_in)
    pieces = []
    if k == 1 and min(ntap, npos) > TAP_BLOCK_MIN:
        st, rd = c.strides[0], c.rhs_dilation[0]
        if by_tap:
            pieces = _blocked_pieces(xg, b, ntap, rd, npos, st, True, loc)
        else:
            pieces = [transpose(p_, [*range(b + 2), *(b + 2 + j for j in corder)], loc)
                      for p_ in _blocked_pieces(xg, b, npos, st, ntap, rd, False, loc)]
    for q in np.ndindex(*(window if by_tap else osp)) if not pieces else ():
        if by_tap:
            s = _slice_g(xg, b, tuple(i * r for i, r in zip(q, c.rhs_dilation)), osp, c.strides, loc)
            pieces.append(_reshape(s, (*lead, nb, *osp, 1, cg), loc))
        else:
            s = _slice_g(xg, b, tuple(i * r for i, r in zip(q, c.strides)), window, c.rhs_dilation, loc)
            s = transpose(s, [*range(b + 1), *(b + 1 + j for j in corder)], loc)
            pieces.append(_reshape(s, (*lead, nb, 1, *s.shape[b + 1:]), loc))
    cshape = tuple((*window, cg)[j] for j in corder)
    pshape = (*lead, nb, *osp, ntap, cg) if by_tap else (*lead, nb, npos, *cshape)
    axis = b + 1 + (k if by_tap else 0)
    patches = pieces[0] if len(pieces) == 1 else Node("concat", pieces, pshape, xg.dtype, {"dim": axis}, loc)
    free = k if by_tap else 1
    wdims = [*c.w_spatial, c.w_in]
    wt = transpose(w, [*(wdims[j] for j in corder), c.w_out], loc)          # [*contracting, G*og]
    if by_tap:
        wt = _reshape(wt, (ntap, cg, groups * og), loc)
    if groups > 1:                                                           # [G, *taps, cg, og]
        r = len(wt.shape)
        wt = transpose(_reshape(wt, (*wt.shape[:-1], groups, og), loc), [r - 1, *range(r - 1), r], loc)
    ncontract = len(pshape) - b - 1 - free
    lc = tuple(range(b + 1 + free, len(pshape)))
    rc = tuple(range(b, b + ncontract))
    y = Node("dot", [patches, wt], (*lead, nb, *(osp if by_tap else (npos,)), og), dt,
             {"lhs_batching_dimensions": tuple(range(b)), "rhs_batching_dimensions": tuple(range(b)),
              "lhs_contracting_dimensions": lc, "rhs_contracting_dimensions": rc}, loc)
    if groups > 1:   # [G, nb, ..., og] -> [nb, ..., G*og]
        r = len(y.shape)
        y = _reshape(transpose(y, [*range(1, r - 1), 0, r - 1], loc), (*y.shape[1:-1], groups * og), loc)
    return _reshape(y, (nb, *osp, y.shape[-1]), loc)


def _windowed_fits(c: Conv, groups: int, window: tuple[int, ...], osp: tuple[int, ...]) -> bool:
    """Whether `_windowed` takes this convolution: ungrouped, the window's taps no more than the
    output positions (not a weight gradient), output rows (the last spatial dim) that fill the
    engine's rows, an input it can read as [batch, *spatial, features] in place (or that the
    concat of its leading taps or phases stores in that order anyway), and a last dim that is
    undilated, or dilated and unstrided with a 1-tap leading window (see `_windowed`)."""
    k = len(window)
    in_place = [c.x_batch, *c.x_spatial, c.x_feature] == list(range(k + 2))
    r, ntap = c.rhs_dilation[-1], math.prod(window[:-1])
    return groups == 1 and math.prod(window) <= math.prod(osp) and osp[-1] >= WINDOW_MIN_ROWS and \
        (r == 1 and (k > 1 or in_place) or r > 1 and c.strides[-1] == 1 and ntap == 1)


def _windowed(x: Node, w: Node, c: Conv, window: tuple[int, ...], osp: tuple[int, ...], dt: str,
              loc: object) -> Node:
    """Implicit im2col. With the input as [B, *spatial, C], one output row (every output
    position along the last spatial dim, its leading positions fixed) reads windows of
    KW * C contiguous elements starting C * stride apart, once the leading dims' taps are
    stacked next to the features: X[b, *lead out, w, (lead taps, C)] (a concat of
    T = prod(leading window) shifted views; none for 1-D). The patch matrix of that row is then
    an overlapping-windows view of X, [W_out, KW * T * C], read in place by the matrix engine:
    the product is batched over (b, *lead out) with the kernel broadcast to every batch, so
    only T copies of the input are stored instead of every tap's.

    A last dim dilated by r (stride 1) is split into its r phases: output r * j + p reads
    input r * (j + tap) + p, so the phases stored side by side (X[b, *lead out, p, j, C], one
    copy of the input) make each phase's row an undilated window row again, one more batch
    dim; the result's [.., p, j, ..] is a transpose view of [.., j * r + p, ..]."""
    k = len(window)
    r = c.rhs_dilation[-1]
    lead_out, lead_win = osp[:-1], window[:-1]
    rows = -(-osp[-1] // r)                              # output rows of each phase
    if r > 1:  # each phase reads rows + taps - 1 inputs: pad the last dim's end to r times that
        xw = x.shape[c.x_spatial[-1]]
        hi = r * (rows + window[-1] - 1) - (xw + sum(c.pad[-1]) + max(xw - 1, 0) * (c.lhs_dilation[-1] - 1))
        c = replace(c, pad=(*c.pad[:-1], (c.pad[-1][0], c.pad[-1][1] + max(hi, 0))))
    xt = transpose(_pad(x, c, loc), [c.x_batch, *c.x_spatial, c.x_feature], loc)  # [B, *sp, C]
    n, cin, wp = xt.shape[0], xt.shape[-1], xt.shape[k]
    ntap = math.prod(lead_win)
    if r == 1 and k == 2 and window[0] > 1:
        return _windowed_rows(xt, w, c, window, osp, dt, loc,
                              segments_pay(window[0], window[1] * cin, c.strides[1] * cin))
    pieces = []
    if r > 1:
        wp = rows + window[-1] - 1
        for ph in range(r):
            s = _slice_g(xt, 0, (*(0,) * (k - 1), ph), (*lead_out, wp), (*c.strides[:-1], r), loc)
            pieces.append(_reshape(s, (n, *lead_out, 1, wp, cin), loc))
        lead = (n, *lead_out, r)
    else:
        for q in np.ndindex(*lead_win):
            s = _slice_g(xt, 0, (*(i * d for i, d in zip(q, c.rhs_dilation)), 0), (*lead_out, wp),
                         (*c.strides[:-1], 1), loc)
            pieces.append(_reshape(s, (n, *lead_out, wp, 1, cin), loc))
        lead = (n, *lead_out)                            # the product's batch dims
    axis = k if r > 1 else k + 1
    xs = pieces[0] if len(pieces) == 1 else \
        Node("concat", pieces, (*pieces[0].shape[:axis], len(pieces), *pieces[0].shape[axis + 1:]), xt.dtype,
             {"dim": axis}, loc)
    xs = _reshape(xs, (*lead, wp * ntap * cin), loc)
    kdim = window[-1] * ntap * cin
    nb, one = len(lead), (1,) * len(lead)
    win = Node("windows", [xs], (*one, kdim, *lead, rows if r > 1 else osp[-1]), xs.dtype,
               {"strides": (*one, (c.strides[-1] if r == 1 else 1) * ntap * cin), "wdil": (*one, 1)},
               loc)                                      # [1.., K, *lead, rows]
    lhs = _reshape(transpose(win, [*range(nb + 1, 2 * nb + 2), *range(nb + 1)], loc), (*lead, win.shape[-1], kdim), loc)
    # the kernel as [(last tap, leading taps, features), out]: the patches' contracting order
    wt = transpose(w, [c.w_spatial[-1], *c.w_spatial[:-1], c.w_in, c.w_out], loc)
    wt = _reshape(wt, (kdim, wt.shape[-1]), loc)
    rhs = broadcast(wt, (*lead, *wt.shape), (nb, nb + 1), loc)
    batch = tuple(range(nb))
    y = Node("dot", [lhs, rhs], (*lead, win.shape[-1], wt.shape[-1]), dt,
             {"lhs_batching_dimensions": batch, "rhs_batching_dimensions": batch,
              "lhs_contracting_dimensions": (nb + 1,), "rhs_contracting_dimensions": (nb,)}, loc)
    if r == 1:
        return y
    y = transpose(y, [*range(k), k + 1, k, k + 2], loc)  # [n, *lead out, j, p, out]
    y = _reshape(y, (n, *lead_out, rows * r, y.shape[-1]), loc)
    if rows * r == osp[-1]:
        return y
    return Node("slice", [y], (n, *osp, y.shape[-1]), dt, {"start": (0,) * (k + 2), "strides": (1,) * (k + 2)}, loc)


def _windowed_rows(xt: Node, w: Node, c: Conv, window: tuple[int, ...], osp: tuple[int, ...], dt: str,
                   loc: object, per_row: bool) -> Node:
    """A 2-D convolution without stacked copies or im2col patches in memory: the patch of
    output (b, oh, ow) is KH runs of KW * C contiguous values, one per input row oh * stride +
    kh * dilation, so A is a view of the input, [B, OH, OW, KH, KW * C], whose K is KH
    segments (fuse.lhs_layout). `per_row` (long output rows, each row's K segments whole
    32-deep tiles): the product is batched over (b, oh), DMAs each segment's overlapping rows
    once as a span and runs the engine per segment. Otherwise its rows are every output
    position, gathered block by block into an SRAM page, K values a row (im2col's patches,
    formed in SRAM, never stored): the engine's tiles stay full for short rows."""
    n, hp, wp, cin = xt.shape
    kh, kw = window
    x3 = _reshape(xt, (n, hp, wp * cin), loc)
    win = Node("windows", [x3], (1, kh, kw * cin, n, *osp), xt.dtype,
               {"strides": (1, c.strides[0], c.strides[1] * cin), "wdil": (1, c.rhs_dilation[0], 1)}, loc)
    lhs = _reshape(transpose(win, [3, 4, 5, 0, 1, 2], loc), (n, *osp, kh, kw * cin), loc)
    wt = transpose(w, [*c.w_spatial, c.w_in, c.w_out], loc)       # [KH, KW, C, O]: the patches' order
    wt = _reshape(wt, (kh, kw * cin, wt.shape[-1]), loc)
    if not per_row:
        return Node("dot", [lhs, wt], (n, *osp, wt.shape[-1]), dt,
                    {"lhs_batching_dimensions": (), "rhs_batching_dimensions": (),
                     "lhs_contracting_dimensions": (3, 4), "rhs_contracting_dimensions": (0, 1)}, loc)
    rhs = broadcast(wt, (n, osp[0], *wt.shape), (2, 3, 4), loc)
    return Node("dot", [lhs, rhs], (n, *osp, wt.shape[-1]), dt,
                {"lhs_batching_dimensions": (0, 1), "rhs_batching_dimensions": (0, 1),
                 "lhs_contracting_dimensions": (3, 4), "rhs_contracting_dimensions": (2, 3)}, loc)


def _blocked_pieces(xg: Node, b: int, n_i: int, a_i: int, n_v: int, a_v: int, i_inner: bool,
                    loc: object) -> list[Node]:
    """1-D patches P[i, v] = x[i*a_i + v*a_v] (i the taps and v the outputs, or the other way
    round) over a long i, from about 2*sqrt(n_i) copies instead of n_i: E[q, u] = x[q*a_i + u]
    for q < B is B shifted views, and rows j*B + q of P are E[q, j*B*a_i + v*a_v], one strided
    view of E per block. Pieces are [.., nb, n_v, rows, cg] if i_inner else [.., nb, rows, n_v,
    cg]. Only real rows are cut (a zero-weight tap would turn an inf input into NaN); E's tail
    past the input reads zeros nothing uses."""
    blk = math.isqrt(n_i - 1) + 1
    nblk = -(-n_i // blk)
    span = (nblk - 1) * blk * a_i + (n_v - 1) * a_v + 1      # E's columns
    need = (blk - 1) * a_i + span
    r = len(xg.shape)
    if need > xg.shape[b + 1]:
        xg = Node("pad", [xg, const(0, xg.dtype)], (*xg.shape[:b + 1], need, *xg.shape[b + 2:]), xg.dtype,
                  {"low": (0,) * r, "interior": (0,) * r}, loc)
    lead_nb, cg = xg.shape[:b + 1], xg.shape[-1]
    qa = b + 2 if i_inner else b + 1                           # E's q axis
    eshape = (*lead_nb, span, blk, cg) if i_inner else (*lead_nb, blk, span, cg)
    cols = [_reshape(_slice_g(xg, b, (q * a_i,), (span,), (1,), loc), (*eshape[:qa], 1, *eshape[qa + 1:]), loc)
            for q in range(blk)]
    e = Node("concat", cols, eshape, xg.dtype, {"dim": qa}, loc)
    out = []
    for j in range(nblk):
        n = min(blk, n_i - j * blk)
        start, size, step = [0] * (r + 1), list(eshape), [1] * (r + 1)
        start[2 * b + 3 - qa], step[2 * b + 3 - qa], size[2 * b + 3 - qa] = j * blk * a_i, a_v, n_v
        size[qa] = n
        out.append(Node("slice", [e], tuple(size), e.dtype, {"start": tuple(start), "strides": tuple(step)}, loc))
    return out


def _slice_g(xg: Node, b: int, start: tuple[int, ...], size: tuple[int, ...], step: tuple[int, ...],
             loc: object) -> Node:
    """A shifted view of a [*lead, nb, *spatial, cg] input (b leading dims)."""
    shape = (*xg.shape[:b + 1], *size, xg.shape[-1])
    if shape == xg.shape:
        return xg
    z, one = (0,) * (b + 1), (1,) * (b + 1)
    return Node("slice", [xg], shape, xg.dtype,
                {"start": (*z, *start, 0), "strides": (*one, *step, 1)}, loc)
