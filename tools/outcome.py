"""One place for what a conformance case's outcome is: compare tt-xla's outputs with CPU JAX's
(dtype-fitting tolerances, NaN where NaN) and sort exceptions into clear errors vs crashes.

Used by tools.harness, tools.programs and tools.corpus, and by their pytest front ends."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

PASS, CLEAR, WRONG, CRASH, REF_ERROR = "pass", "clear error", "wrong", "crash", "ref error"
# Column order of every report table.
KINDS = (PASS, CLEAR, WRONG, CRASH)

BF16 = np.dtype(ml_dtypes.bfloat16)

# Exceptions that are a *clear* refusal: the compiler or runtime said what it cannot do.
# Matched by class name so that error classes other engineers add (VerificationError) count
# without this module importing them; anything else (KeyError, AssertionError, a C compiler
# failure on generated code, ...) is a crash: a bug, not a refusal.
CLEAR_ERRORS = frozenset({"UnsupportedError", "VerificationError", "ParseError", "DeviceError"})

_OP_RE = re.compile(r"\b((?:stablehlo|chlo|mhlo|func|tt)\.[a-z_0-9]+)")


@dataclass
class Outcome:
    kind: str                 # one of KINDS or REF_ERROR
    detail: str = ""          # error message or the mismatch found
    op: str | None = None     # the op a clear error names
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "op": self.op, **self.extra}


def op_named(exc: BaseException) -> str | None:
    """The op an error names: its `.op` attribute, else the first dialect-qualified name in
    its message."""
    op = getattr(exc, "op", None)
    if op:
        return str(op)
    m = _OP_RE.search(str(exc))
    return m.group(1) if m else None


def classify_error(exc: BaseException) -> Outcome:
    name = type(exc).__name__
    msg = f"{name}: {exc}".splitlines()[0][:400] if str(exc) else name
    if name in CLEAR_ERRORS:
        return Outcome(CLEAR, msg, op_named(exc))
    return Outcome(CRASH, msg, op_named(exc))


def is_float(dtype: np.dtype) -> bool:
    """numpy's kind is 'V' for ml_dtypes' bfloat16: do not test `.kind == "f"`."""
    return dtype.kind in "fc" or dtype == BF16 or "float8" in dtype.name


def tolerance(dtype: np.dtype, loose: bool = False) -> tuple[float, float]:
    """(rtol, atol) for a dtype. `loose` for results that go through transcendental
    approximations or long accumulations whose order differs from XLA:CPU's."""
    if dtype == BF16:
        return (2e-2, 2e-2) if loose else (1e-2, 1e-2)
    if dtype == np.float16:
        return (5e-3, 5e-3) if loose else (1e-3, 1e-3)
    if "float8" in dtype.name:
        return 1.3e-1, 1.3e-1
    if dtype in (np.float32, np.complex64):
        return (2e-4, 1e-5) if loose else (1e-5, 1e-6)
    if dtype in (np.float64, np.complex128):
        return (1e-9, 1e-12) if loose else (1e-12, 1e-14)
    return 0.0, 0.0  # integers and bools: exact


def compare_leaves(got: list[Any], want: list[Any], *, loose: bool = False,
                   tol: tuple[float, float] | None = None) -> str | None:
    """None when every output matches, else a one-line description of the first mismatch.
    Shapes and dtypes must match exactly; NaNs must be where CPU JAX has them; floats within
    `tol` (or the dtype's tolerance), everything else bit-exact."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        g = np.asarray(g)
        if g.shape != w.shape:
            return f"output {i}: shape {g.shape} != {w.shape}"
        if g.dtype != w.dtype:
            return f"output {i}: dtype {g.dtype} != {w.dtype}"
        if g.size == 0:
            continue
        if not is_float(w.dtype):
            if not np.array_equal(g, w):
                bad = np.argwhere(g != w)[0]
                return (f"output {i} ({w.dtype}{list(w.shape)}): {int((g != w).sum())} "
                        f"elements differ, first at {tuple(bad)}: {g[tuple(bad)]!r} != {w[tuple(bad)]!r}")
            continue
        rtol, atol = tol if tol is not None else tolerance(w.dtype, loose)
        if w.dtype.kind == "c":  # real and imaginary parts compared apart (an inf part would hide the other)
            gf, wf = (np.stack([x.real, x.imag], axis=-1).astype(np.float64) for x in (g, w))
        else:
            gf, wf = g.astype(np.float64), w.astype(np.float64)
        gn, wn = np.isnan(gf), np.isnan(wf)
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, and then gf == wf decides
            ok = np.where(wn, gn, ~gn & ((gf == wf) | (np.abs(gf - wf) <= atol + rtol * np.abs(wf))))
        if w.dtype.kind == "c":
            ok = ok.all(axis=-1)
        if not ok.all():
            bad = tuple(np.argwhere(~ok)[0])
            return (f"output {i} ({w.dtype}{list(w.shape)}): {int((~ok).sum())}/{ok.size} elements "
                    f"outside rtol={rtol:g} atol={atol:g}, first at {bad}: got {gf[bad]!r} want {wf[bad]!r}")
    return None


def table(rows: list[tuple[str, dict[str, int]]], title: str = "group") -> str:
    """A markdown table: one row per group with its counts per kind, then the totals."""
    totals = {k: 0 for k in KINDS}
    lines = [f"| {title} | cases | " + " | ".join(KINDS) + " |",
             "|---|---:|" + "---:|" * len(KINDS)]
    for name, counts in rows:
        n = sum(counts.get(k, 0) for k in KINDS)
        for k in KINDS:
            totals[k] += counts.get(k, 0)
        lines.append(f"| {name} | {n} | " + " | ".join(str(counts.get(k, 0)) for k in KINDS) + " |")
    n = sum(totals.values())
    pct = f" ({100 * totals[PASS] / n:.1f}% pass)" if n else ""
    lines.append(f"| **total**{pct} | {n} | " + " | ".join(str(totals[k]) for k in KINDS) + " |")
    return "\n".join(lines)


def same_decomposition(got: list[Any], want: list[Any], kind: str) -> bool:
    """Whether `got` is an eigen- or singular value decomposition as valid as `want`, the way
    JAX's own linalg tests check them: the vectors of a decomposition are only defined up to
    sign (and rotation within repeated values), so compare the values, the matrix the factors
    rebuild, and the factors' orthonormality, not the raw vectors. `kind`: "eigh" (outputs
    v, w) or "svd" (s[, u, vt]). NaNs must be where the reference has them."""
    if len(got) != len(want) or any(g.shape != w.shape or g.dtype != w.dtype for g, w in zip(got, want)):
        return False
    g64 = [np.asarray(g).astype(np.complex128 if g.dtype.kind == "c" else np.float64) for g in got]
    w64 = [np.asarray(w).astype(np.complex128 if w.dtype.kind == "c" else np.float64) for w in want]
    if any(not np.array_equal(np.isnan(g), np.isnan(w)) for g, w in zip(g64, w64)):
        return False
    g64 = [np.nan_to_num(g) for g in g64]
    w64 = [np.nan_to_num(w) for w in w64]
    eps = np.finfo(want[0].real.dtype).eps
    ht = lambda x: np.conj(np.swapaxes(x, -1, -2))  # noqa: E731

    def close(a: np.ndarray, b: np.ndarray, scale: np.ndarray, n: int) -> bool:
        return bool(np.all(np.abs(a - b) <= 50 * max(n, 1) * eps * (scale + np.finfo(np.float32).tiny)))

    def orthonormal(q: np.ndarray, cols: bool) -> bool:
        g = ht(q) @ q if cols else q @ ht(q)
        return close(g, np.eye(g.shape[-1]), np.ones(()), q.shape[-2] if cols else q.shape[-1])

    if kind == "eigh":
        (v, w), (vr, wr) = g64, w64
        n = w.shape[-1]
        norm = np.max(np.abs(wr), axis=-1, initial=0.0)[..., None]
        rebuilt, ref = (v * w[..., None, :]) @ ht(v), (vr * wr[..., None, :]) @ ht(vr)
        return close(w, wr, norm, n) and close(rebuilt, ref, norm[..., None], n) and orthonormal(v, True)
    s, sr = g64[0], w64[0]
    n = max(want[1].shape[-2], want[2].shape[-1]) if len(want) == 3 else s.shape[-1]
    norm = np.max(sr, axis=-1, initial=0.0)[..., None]
    if not close(s, sr, norm, n):
        return False
    if len(got) == 1:
        return True
    (u, vt), (ur, vtr) = g64[1:], w64[1:]
    k = s.shape[-1]
    rebuilt = (u[..., :k] * s[..., None, :]) @ vt[..., :k, :]
    ref = (ur[..., :k] * sr[..., None, :]) @ vtr[..., :k, :]
    return close(rebuilt, ref, norm[..., None], n) and orthonormal(u, True) and orthonormal(vt, False)


def same_up_to_tie_order(got: list[Any], want: list[Any], dimension: int, num_keys: int) -> bool:
    """An unstable sort may order equal keys either way (the spec leaves it open): the keys must
    be exactly CPU JAX's, and every slice along `dimension` must hold the same tuples of all
    operands; then a tuple can only have moved within its run of equal keys."""
    g = [np.moveaxis(np.asarray(x), dimension, -1) for x in got]
    w = [np.moveaxis(np.asarray(x), dimension, -1) for x in want]
    if any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(g, w)) or len(g) != len(w):
        return False
    if not all(np.array_equal(a, b, equal_nan=is_float(a.dtype)) for a, b in zip(g[:num_keys], w[:num_keys])):
        return False
    def rows(ops: list[np.ndarray]) -> np.ndarray:  # per slice, its tuples as sorted byte strings
        n = ops[0].shape[-1]
        cols = [np.ascontiguousarray(o).reshape(-1, n).view(np.uint8).reshape(-1, n, o.dtype.itemsize)
                for o in ops]
        t = np.concatenate(cols, axis=-1)
        return np.sort(t.view(np.dtype((np.void, t.shape[-1]))).reshape(t.shape[0], n), axis=-1)
    return bool(np.array_equal(rows(g), rows(w)))


def run_against_cpu(fn, args, *, loose: bool = False, tol: tuple[float, float] | None = None,
                    equivalent=None) -> Outcome:
    """Run `fn(*args)` under `jax.jit` on CPU and under `tt_xla.jit`, and classify: REF_ERROR
    when CPU JAX itself fails, then a clear error or a crash from tt-xla, then a comparison.
    `equivalent(got, want)`: whether a result that differs is one the op's semantics also allow."""
    import jax

    import tt_xla

    try:
        want = jax.jit(fn)(*args)
        want_leaves, want_tree = jax.tree_util.tree_flatten(want)
        want_leaves = [np.asarray(w) for w in want_leaves]
    except Exception as e:  # noqa: BLE001 - the reference itself cannot run this case
        return Outcome(REF_ERROR, f"{type(e).__name__}: {e}".splitlines()[0][:300])
    try:
        got = tt_xla.jit(fn)(*args)
        got_leaves, got_tree = jax.tree_util.tree_flatten(got)
        got_leaves = [np.asarray(g) for g in got_leaves]
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        return classify_error(e)
    if got_tree != want_tree:
        return Outcome(WRONG, f"output tree {got_tree} != {want_tree}")
    mismatch = compare_leaves(got_leaves, want_leaves, loose=loose, tol=tol)
    if mismatch and equivalent is not None and equivalent(got_leaves, want_leaves):
        mismatch = None  # another result the op's spec allows (equivalent: see run_case)
    return Outcome(WRONG, mismatch) if mismatch else Outcome(PASS)
