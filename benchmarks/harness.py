"""Timing harness: interleaved tt_xla / XLA:CPU runs with per-pair ratios.

For one benchmark (a jax function plus host inputs):

1. inputs are placed once on each side: tt_xla.Array (``tt_xla.device_put``) for tt_xla, jax
   arrays (``jax.device_put`` on the CPU device) for XLA, so no timed call copies host->device;
   a ``io="numpy"`` benchmark instead passes the host numpy arrays to both sides and reads every
   output back with ``np.asarray`` inside the timed call (what a user writes);
2. both functions are compiled by a first call (not timed) and their outputs compared once with
   ``np.testing.assert_allclose`` (a failure marks the row MISMATCH);
3. a few warm-up calls per side, then ``reps`` pairs run interleaved (tt, XLA, tt, XLA, ...);
   every timed call ends with ``block_until_ready()``;
4. the row reports the median of the per-pair ratios (tt / XLA) and both absolute medians, and
   the median time tt_xla spent inside runtime launches (the device counters' busy_ns): the
   kernels, as opposed to transfers and Python around them.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
import traceback
from typing import Callable

import numpy as np


@dataclasses.dataclass
class Bench:
    name: str
    fn: Callable                      # a jax-traceable function of the inputs
    make_inputs: Callable             # (rng, quick) -> tuple of host arrays (pytrees allowed)
    desc: str = ""                    # shape/dtype summary for the table
    unit: str = "ms"                  # "ms" or "us"
    rtol: float = 1e-4
    atol: float = 1e-5
    warmup: int = 3
    max_reps: int = 5000
    io: str = "device"                # "device": resident inputs; "numpy": numpy in, numpy out


@dataclasses.dataclass
class Result:
    name: str
    desc: str
    unit: str
    status: str = "ok"                # ok | MISMATCH | unsupported | error
    message: str = ""
    tt_median_s: float | None = None
    xla_median_s: float | None = None
    ratio_median: float | None = None  # median over pairs of (tt time / XLA time)
    ratio_min: float | None = None
    ratio_max: float | None = None
    reps: int = 0
    tt_kernel_s: float | None = None   # median tt_xla time inside runtime launches per call
    max_abs_err: float | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


_SHORT = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "int32": "i32", "float64": "f64"}


def shapes(tree) -> str:
    """'f32[4096,1024] f32[1024]': the inputs of a benchmark, compactly."""
    import jax
    out = []
    for a in jax.tree_util.tree_leaves(tree):
        dt = np.dtype(a.dtype).name
        out.append(f"{_SHORT.get(dt, dt)}[{','.join(map(str, a.shape))}]")
    return " ".join(out)


def _ready(tree):
    import jax
    for leaf in jax.tree_util.tree_leaves(tree):
        leaf.block_until_ready()
    return tree


def _leaves_np(tree) -> list[np.ndarray]:
    import jax
    return [np.asarray(l) for l in jax.tree_util.tree_leaves(tree)]


def _first_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:160]


def compare(got_tree, want_tree, rtol: float, atol: float) -> tuple[bool, float, str]:
    """(ok, max abs error, message). Compares in float64 (complex128 for complex results)."""
    got, want = _leaves_np(got_tree), _leaves_np(want_tree)
    if len(got) != len(want):
        return False, float("nan"), f"{len(got)} outputs vs {len(want)}"
    worst, msg, ok = 0.0, "", True
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return False, float("nan"), f"shape {g.shape} vs {w.shape}"
        wide = np.complex128 if np.iscomplexobj(w) else np.float64
        g64, w64 = g.astype(wide), w.astype(wide)
        if g64.size:
            worst = max(worst, float(np.nanmax(np.abs(g64 - w64))))
        try:
            np.testing.assert_allclose(g64, w64, rtol=rtol, atol=atol)
        except AssertionError as e:
            ok = False
            lines = [l.strip() for l in str(e).splitlines() if l.strip()]
            msg = "; ".join(l for l in lines if l.startswith(("Mismatched", "Max abs", "Max rel")))
    return ok, worst, msg


def _time_call(f, args, to_numpy: bool = False) -> float:
    import jax
    t0 = time.perf_counter()
    out = f(*args)
    if to_numpy:
        out = [np.asarray(l) for l in jax.tree_util.tree_leaves(out)]
    else:
        _ready(out)
    t = time.perf_counter() - t0
    del out  # freeing the output is not part of the call
    return t


@dataclasses.dataclass
class Setup:
    """A benchmark ready to time: its inputs placed once on each side, both sides compiled by a
    first call and its outputs kept (`run`, and benchmarks.ab's workers in any tree)."""
    host: tuple
    numpy_io: bool
    xla_f: Callable
    xla_args: tuple
    want: object
    tt_f: Callable | None = None
    tt_args: tuple | None = None
    got: object = None
    error: Exception | None = None  # the tt side's failure (unsupported op, compiler, toolchain)
    trace: str = ""                 # ...and its traceback


def setup(b: Bench, quick: bool, seed: int = 0) -> Setup:
    import jax
    import tt_xla

    host = b.make_inputs(np.random.default_rng(seed), quick)
    cpu = jax.devices("cpu")[0]
    numpy_io = getattr(b, "io", "device") == "numpy"  # (an older tree's Bench has no `io`: benchmarks.ab)
    xla_args = host if numpy_io else jax.tree_util.tree_map(lambda a: jax.device_put(a, cpu), host)
    xla_f = jax.jit(b.fn)
    s = Setup(host, numpy_io, xla_f, xla_args, _ready(xla_f(*xla_args)))
    s.tt_f = tt_xla.jit(b.fn)
    try:
        s.tt_args = host if numpy_io else jax.tree_util.tree_map(tt_xla.device_put, host)
        s.got = _ready(s.tt_f(*s.tt_args))  # compiles
    except Exception as e:  # report, don't die
        s.error, s.trace = e, traceback.format_exc(limit=4)
    return s


def run(b: Bench, *, quick: bool, reps: int | None, target_s: float, max_reps: int = 5000,
        seed: int = 0) -> Result:
    import tt_xla

    res = Result(b.name, b.desc, b.unit)
    s = setup(b, quick, seed)
    if not b.desc or "{shapes}" in b.desc:
        res.desc = (b.desc or "{shapes}").replace("{shapes}", shapes(s.host))
    if s.error is not None:
        e = s.error
        unsupported = isinstance(e, tt_xla.UnsupportedError) or "nsupported" in str(e)
        res.status = "unsupported" if unsupported else "error"
        res.message = _first_line(e)
        res.extra["traceback"] = s.trace
        return res
    tt_f, tt_args, xla_f, xla_args, numpy_io = s.tt_f, s.tt_args, s.xla_f, s.xla_args, s.numpy_io
    got, want = s.got, s.want
    del s

    res.extra["kernels"] = [f"{k.name}({k.kind})" for k in tt_f.kernels(*tt_args)]
    ok, err, msg = compare(got, want, b.rtol, b.atol)
    res.max_abs_err = err
    if not ok:
        res.status, res.message = "MISMATCH", msg or f"max abs err {err:.3g}"
    del got, want

    for _ in range(b.warmup):
        _time_call(tt_f, tt_args, numpy_io)
        _time_call(xla_f, xla_args, numpy_io)

    if reps is None:
        pair = _time_call(tt_f, tt_args, numpy_io) + _time_call(xla_f, xla_args, numpy_io)
        reps = int(max(5, min(max_reps, target_s / max(pair, 1e-7))))
    from tt_xla.runtime import default_device
    dev = default_device()
    tt_t, xla_t, ratios, kernel_t = [], [], [], []
    for _ in range(reps):
        busy = dev.counters()["busy_ns"]  # (outside the timed region)
        a = _time_call(tt_f, tt_args, numpy_io)
        kernel_t.append((dev.counters()["busy_ns"] - busy) * 1e-9)
        x = _time_call(xla_f, xla_args, numpy_io)
        tt_t.append(a)
        xla_t.append(x)
        ratios.append(a / x)
    res.reps = reps
    res.tt_kernel_s = statistics.median(kernel_t)
    res.tt_median_s = statistics.median(tt_t)
    res.xla_median_s = statistics.median(xla_t)
    res.ratio_median = statistics.median(ratios)
    res.ratio_min, res.ratio_max = min(ratios), max(ratios)
    return res


def device_model(fn, host_args) -> dict[str, int]:
    """Device cost-model counters (deltas) for one tt_xla call of ``fn`` (compiled beforehand)."""
    import jax
    import tt_xla
    from tt_xla.runtime import default_device

    dev = default_device()
    f = tt_xla.jit(fn)
    args = jax.tree_util.tree_map(tt_xla.device_put, host_args)
    _ready(f(*args))
    before = dev.counters()
    out = _ready(f(*args))
    after = dev.counters()
    del out
    return {k: after[k] - before[k] for k in after if k not in ("dram_bytes_allocated", "dram_bytes_peak")}
