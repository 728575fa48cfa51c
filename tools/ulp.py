"""Max ulp error of tt_xla's f32 math functions (and of XLA:CPU's, for comparison).

    PYTHONPATH=. python tools/ulp.py                       # 2^24 random f32 bit patterns + edges
    PYTHONPATH=. python tools/ulp.py --exhaustive          # all 2^32 f32 values (minutes per op)
    PYTHONPATH=. python tools/ulp.py --ops exp,expm1 --samples 1048576 --no-xla

The reference is the float64 numpy/scipy function of the input rounded to f32. The device
flushes denormals (DAZ/FTZ, like XLA:CPU's fast paths), so denormal inputs are evaluated as
+-0 and a result whose reference is below the smallest normal counts as exact when it is
returned as zero or that denormal. An error is |got - ref| / ulp(ref) with ulp(ref) the
spacing of f32 at ref (so a correctly rounded result has error <= 0.5); the relative error is
|got - ref| / |ref| (JAX's own test harness allows 1e-6 for f32). "special" counts
results that differ from the reference in kind: NaN vs number, an infinity, or the sign of a
zero (a difference the tolerance-based tests cannot see).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

TINY = np.float32(2.0 ** -126)


def _erf64(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf
    return erf(x)


def _logistic64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def _elu64(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.where(x > 0, 0.0, x)))


def _gelu64(x: np.ndarray) -> np.ndarray:
    """jax.nn.gelu's tanh form as x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) (the same
    function; 0.5 (1 + tanh(u)) would cancel for x << 0 even in float64)."""
    with np.errstate(over="ignore", invalid="ignore"):
        c, k = float(np.float32(np.sqrt(2 / np.pi))), float(np.float32(0.044715))   # jax's f32 constants
        return x * _logistic64(2 * c * (x + k * x ** 3))


# Results of magnitude below this count as matching any other such result (FTZ: TINY). gelu and
# silu are x / (1 + e^-v), and e^-v overflows to inf (the result to -0) while the true result is
# still a normal number (down to 2e-38 for gelu, 2e-37 for silu; CPU JAX flushes them too: its
# gelu gives -0 from -1e-13 on, its silu rounds 1 / (1 + e^-x) to a denormal, then 0).
FLOOR = {"gelu": 1e-30, "silu": 1e-30}


def ops() -> dict:
    """name -> (jax function, float64 reference)."""
    import jax
    import jax.numpy as jnp
    return {
        "exp": (jnp.exp, np.exp), "expm1": (jnp.expm1, np.expm1), "log": (jnp.log, np.log),
        "log1p": (jnp.log1p, np.log1p), "tanh": (jnp.tanh, np.tanh),
        "logistic": (jax.nn.sigmoid, _logistic64), "erf": (jax.lax.erf, _erf64),
        "exp2": (jnp.exp2, np.exp2), "elu": (jax.nn.elu, _elu64),
        "softplus": (jax.nn.softplus, lambda x: np.logaddexp(0.0, x)),   # log1p's compensated form
        "gelu": (jax.nn.gelu, _gelu64), "silu": (jax.nn.silu, lambda x: x * _logistic64(x)),
    }


def edges() -> np.ndarray:
    """Values where approximations usually break: specials, range-reduction and overflow
    boundaries, the neighbours of each."""
    base = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 2.0 ** -126, -(2.0 ** -126),
            2.0 ** -24, -(2.0 ** -24), 1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.34657359,
            -0.34657359, 0.69314718, -0.69314718, 9.0, -9.0, 10.0, -10.0, 17.3, -17.3, 87.336,
            -87.336, 88.376, -88.376, 88.7228, -88.7228, 89.0, -89.0, 103.9, -103.9, 126.0,
            -126.0, 127.9, 128.0, -150.0, 3e38, -3e38, np.finfo(np.float32).max,
            -np.finfo(np.float32).max, 1.4142135, 0.70710677, 0.4142135, -0.29289323, 4.0, -4.0,
            3.92, -3.92, 0.8, -0.8]
    v = np.array(base, np.float32)
    b = v.view(np.uint32).astype(np.int64)
    near = np.concatenate([b + d for d in (-2, -1, 1, 2)]).astype(np.uint32).view(np.float32)
    return np.concatenate([v, near])


def flush(x: np.ndarray) -> np.ndarray:
    """DAZ: denormals read as zeros of the same sign."""
    return np.where(np.abs(x) < TINY, np.copysign(np.float32(0), x), x).astype(np.float32)


def compare(got: np.ndarray, ref64: np.ndarray, floor: float = float(TINY)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ulp error, relative error, special mismatch) per element of got against a float64
    reference; results below `floor` in magnitude on both sides match (see FLOOR)."""
    with np.errstate(all="ignore"):
        ref32 = ref64.astype(np.float32)
        gnan, rnan = np.isnan(got), np.isnan(ref32)
        ginf, rinf = np.isinf(got), np.isinf(ref32)
        bad = (gnan != rnan) | ((ginf | rinf) & ~(gnan | rnan) & (got != ref32))
        bad |= (got == 0) & (ref32 == 0) & (np.signbit(got) != np.signbit(ref32))
        # FTZ: a result below the smallest normal matches any other such result (and zero)
        tiny = (np.abs(ref64) < floor) & (np.abs(got) < floor)
        spacing = np.maximum(np.spacing(np.abs(ref32)).astype(np.float64), 2.0 ** -149)
        err = np.abs(got.astype(np.float64) - ref64) / spacing
        keep = ~(gnan | rnan | ginf | rinf | tiny)
        rel = np.where(keep & (ref64 != 0), np.abs(got.astype(np.float64) - ref64) / np.abs(ref64), 0.0)
    return np.where(keep, err, 0.0), rel, bad


class Stats:
    def __init__(self) -> None:
        self.max_ulp, self.at, self.got, self.want = 0.0, math.nan, math.nan, math.nan
        self.special, self.special_at, self.n, self.max_rel = 0, math.nan, 0, 0.0

    def add(self, x: np.ndarray, got: np.ndarray, refs: list[np.ndarray], floor: float = float(TINY)) -> None:
        """refs: the reference for each accepted reading of x (denormals flushed or not)."""
        got = got.astype(np.float32)
        errs, rels, bads = zip(*(compare(got, r, floor) for r in refs))
        err, bad = np.minimum.reduce(errs), np.logical_and.reduce(bads)
        if err.size:
            self.max_rel = max(self.max_rel, float(np.minimum.reduce(rels).max()))
        self.n += x.size
        if bad.any():
            if self.special == 0:
                self.special_at = float(x[bad][0])
            self.special += int(bad.sum())
        i = int(np.argmax(err))
        if err.size and err[i] > self.max_ulp:
            self.max_ulp, self.at, self.got, self.want = float(err[i]), float(x[i]), float(got[i]), float(refs[0][i])


def chunks(exhaustive: bool, samples: int, size: int, seed: int):
    yield edges()
    if exhaustive:
        for lo in range(0, 2 ** 32, size):
            yield np.arange(lo, lo + size, dtype=np.uint64).astype(np.uint32).view(np.float32)
        return
    rng = np.random.default_rng(seed)
    done = 0
    while done < samples:
        k = min(size, samples - done)
        yield rng.integers(0, 2 ** 32, size=k, dtype=np.uint64).astype(np.uint32).view(np.float32)
        done += k


def measure(names: list[str], exhaustive: bool, samples: int, size: int, xla: bool,
            seed: int = 0) -> dict[str, tuple[Stats, Stats | None]]:
    import jax
    import tt_xla
    table = ops()
    out: dict[str, tuple[Stats, Stats | None]] = {}
    for name in names:
        fn, ref = table[name]
        tt_f, xla_f = tt_xla.jit(fn), jax.jit(fn)
        st, sx = Stats(), (Stats() if xla else None)
        t0 = time.perf_counter()
        for x in chunks(exhaustive, samples, size, seed):
            with np.errstate(all="ignore"):
                r = [ref(flush(x).astype(np.float64)), ref(x.astype(np.float64))]
            st.add(x, np.asarray(tt_f(tt_xla.device_put(x))), r, FLOOR.get(name, float(TINY)))
            if sx is not None:
                sx.add(x, np.asarray(xla_f(x)), r, FLOOR.get(name, float(TINY)))
        out[name] = (st, sx)
        print(f"  {name}: {st.n} inputs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def report(res: dict[str, tuple[Stats, Stats | None]]) -> str:
    lines = ["| op | tt max ulp | tt max rel | at x (got, want) | tt special | XLA:CPU max ulp | max rel | at x | XLA special |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, (st, sx) in res.items():
        xs = f"{sx.max_ulp:.2f} | {sx.max_rel:.2g} | {sx.at:.9g} | {sx.special}" if sx is not None else "- | - | - | -"
        sp = f"{st.special} (x={st.special_at:.9g})" if st.special else "0"
        lines.append(f"| {name} | {st.max_ulp:.2f} | {st.max_rel:.2g} | {st.at:.9g} ({st.got:.9g}, {st.want:.9g}) | {sp} | {xs} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ops", default=",".join(["exp", "expm1", "log", "log1p", "tanh", "logistic", "erf"]),
                   help=f"comma-separated, from: {', '.join(ops())}")
    p.add_argument("--exhaustive", action="store_true", help="all 2^32 inputs")
    p.add_argument("--samples", type=int, default=2 ** 24, help="random bit patterns (default 2^24)")
    p.add_argument("--chunk", type=int, default=2 ** 22)
    p.add_argument("--no-xla", action="store_true", help="skip the XLA:CPU column")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    res = measure(a.ops.split(","), a.exhaustive, a.samples, a.chunk, not a.no_xla, a.seed)
    what = "all 2^32 f32 inputs" if a.exhaustive else f"{a.samples} random f32 bit patterns + edges"
    print(f"max ulp error over {what} (reference: float64, rounded to f32; DAZ/FTZ)")
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
