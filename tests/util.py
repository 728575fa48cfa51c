"""Shared helpers: run a function with jax.jit on CPU and with tt_xla.jit, compare."""
from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np

import jax
import jax.numpy as jnp

import tt_xla

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)

# Shapes worth covering: scalars, size-1 dims, empty dims, non-multiples of the 32x32 tile.
SHAPES = [(), (1,), (0,), (3, 5), (1, 1), (2, 0, 3), (33, 65), (1, 1027), (4096,)]
SMALL_SHAPES = [(), (1,), (0,), (3, 5), (33, 65), (1, 1027)]

# Edge values mixed into float inputs. The device flushes denormals (DAZ/FTZ, like Tenstorrent's
# FPUs and like XLA:CPU: 1e-40 * 3e38 == 0 and log(1e-40) == -inf on both). Huge arguments of
# sin/cos/tan depend on the quality of range reduction.
EDGE_BASE = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 0.5, -2.5]
EDGE_DENORMAL = [1e-40, -1e-40]
EDGE_HUGE = [3e38, -3e38, 1e20, -1e20]


def is_float(dtype) -> bool:
    """numpy's kind is 'V' for ml_dtypes' bfloat16: do not test `.kind == "f"`."""
    d = np.dtype(dtype)
    return d.kind == "f" or d == BF16


def _tol(dtype, transcendental: bool):
    d = np.dtype(dtype)
    if d == BF16:
        return 1e-2, 1e-2
    if d == F16:
        return 1e-3, 1e-3
    if is_float(d):
        return (1e-4, 1e-5) if transcendental else (1e-5, 1e-6)
    return 0, 0  # ints, bools: exact


def inputs(shape, dtype=np.float32, *, seed=0, edges=True, denormals=True, huge=True,
           low=None, high=None, positive=False):
    """Random input of `shape`/`dtype`: normals (floats) or uniform ints, with edge values mixed
    in at a few positions (floats: NaN, +-inf, -0.0, denormals, huge; ints: 0, -1, min, max)."""
    rng = np.random.default_rng(zlib.crc32(repr((tuple(shape), str(np.dtype(dtype)), seed)).encode()))
    d = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if d == np.bool_:
        return rng.random(shape) < 0.5 if shape else np.bool_(rng.random() < 0.5)
    if d.kind in "iu":
        info = np.iinfo(d)
        lo = max(info.min, -100 if low is None else low)
        hi = min(info.max, 100 if high is None else high)
        if positive:
            lo = max(lo, 0)
        x = rng.integers(lo, hi + 1, size=n, dtype=np.int64)
        if edges and low is None and high is None and n:
            ev = [0, 1, info.max, info.min] + ([-1] if d.kind == "i" else [])
            idx = rng.choice(n, size=min(n, len(ev)), replace=False)
            x = x.astype(d)
            x[idx] = np.array(ev[:len(idx)]).astype(d)
        return x.astype(d).reshape(shape)
    x = rng.standard_normal(n).astype(np.float32) * 2.0
    if low is not None or high is not None:
        lo = -3.0 if low is None else low
        hi = 3.0 if high is None else high
        x = rng.uniform(lo, hi, n).astype(np.float32)
    if positive:
        x = np.abs(x)
    if edges and n:
        ev = list(EDGE_BASE)
        if denormals:
            ev += EDGE_DENORMAL
        if huge:
            ev += EDGE_HUGE if d == F32 else [6e4, -6e4] if d == F16 else [1e30, -1e30]
        if positive:
            ev = [v for v in ev if not (v < 0)]
        if n >= 2 * len(ev):
            idx = rng.choice(n, size=len(ev), replace=False)
            x[idx] = ev
        else:  # small arrays: a few edge values, different per seed
            for k in range(n):
                x[k] = ev[(seed + k * 3) % len(ev)] if rng.random() < 0.5 else x[k]
    return x.astype(d).reshape(shape)


def _leaves(tree):
    return jax.tree_util.tree_flatten(tree)


def check(f, *args, rtol=None, atol=None, static_argnums=(), transcendental=False, **kwargs):
    """Run f under jax.jit on CPU and under tt_xla.jit; compare every output leaf: same tree
    structure, exact shape and dtype, values within a tolerance that depends on the dtype (NaNs
    must match NaNs). Returns the tt_xla outputs."""
    want = jax.jit(f, static_argnums=static_argnums)(*args, **kwargs)
    got = tt_xla.jit(f, static_argnums=static_argnums)(*args, **kwargs)
    compare(got, want, rtol=rtol, atol=atol, transcendental=transcendental)
    return got


def compare(got, want, rtol=None, atol=None, transcendental=False, int_atol=0) -> None:
    """check's comparison of tt_xla outputs `got` with reference outputs `want` (integers
    exactly, or within `int_atol`)."""
    want_leaves, want_tree = _leaves(want)
    got_leaves, got_tree = _leaves(got)
    assert got_tree == want_tree, f"output tree {got_tree} != {want_tree}"
    for i, (g, w) in enumerate(zip(got_leaves, want_leaves)):
        assert isinstance(g, tt_xla.Array), f"output {i} is a {type(g).__name__}"
        w = np.asarray(w)
        gn = np.asarray(g)
        assert g.shape == w.shape, f"output {i}: shape {g.shape} != {w.shape}"
        assert gn.shape == w.shape
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype} != {w.dtype}"
        assert gn.dtype == w.dtype
        r, a = _tol(w.dtype, transcendental)
        r = r if rtol is None else rtol
        a = a if atol is None else atol
        if (w.dtype.kind in "biu" or w.dtype == np.bool_) and int_atol:
            np.testing.assert_array_less(np.abs(gn.astype(np.int64) - w.astype(np.int64)), int_atol + 1,
                                         err_msg=f"output {i}")
        elif w.dtype.kind in "biu" or w.dtype == np.bool_:
            np.testing.assert_array_equal(gn, w, err_msg=f"output {i}")
        else:
            np.testing.assert_allclose(gn.astype(np.float64), w.astype(np.float64), rtol=r,
                                       atol=a, equal_nan=True, err_msg=f"output {i}")
            # signs of infinities / NaN placement are covered by assert_allclose; -0.0 vs 0.0 is
            # not compared (XLA itself does not promise it for most ops)


__all__ = ["BF16", "F16", "F32", "is_float", "SHAPES", "SMALL_SHAPES", "check", "inputs", "jnp", "np"]
