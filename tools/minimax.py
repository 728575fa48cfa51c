"""Fits the polynomial and rational approximations in tt_xla/compiler/decompose.py.

    PYTHONPATH=. python tools/minimax.py            # print every fit, with its f32 error

Each fit minimizes the maximum relative (or absolute) error over an interval: a least-squares
fit on a dense Chebyshev grid, reweighted (Lawson's algorithm) until the error equioscillates;
rational fits are linearized (Loeb: P - f*Q with weights 1/|Q_prev|), then refined by nonlinear
least squares under the same reweighting (needs scipy, which jax installs). The coefficients are then
rounded to f32 and the error of the f32 Horner evaluation (FMA, emulated exactly in float64) is
measured on the grid, which is what decompose.py's coefficients must achieve; tools/ulp.py
measures the compiled kernels themselves.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


def grid(lo: float, hi: float, n: int = 20000) -> np.ndarray:
    k = np.arange(n)
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)


def fit(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, basis: Callable[[np.ndarray], np.ndarray],
        den: Callable[[np.ndarray], np.ndarray] | None = None, weight: Callable | None = None,
        iters: int = 60, c0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients c (and d) minimizing max |w(x) (f(x) - (c0 + B(x)c) / (1 + D(x)d))| over
    [lo, hi]. basis(x) -> (n, k) design matrix; den(x) -> (n, m) for the denominator minus its
    constant 1; c0 a pinned constant term of the numerator (0: none)."""
    x = grid(lo, hi)
    y = f(x)
    w = np.ones_like(x) if weight is None else weight(x)
    B = basis(x)
    D = den(x) if den is not None else np.zeros((x.size, 0))
    lw = np.ones_like(x)
    q = np.ones_like(x)
    for _ in range(iters):
        A = np.hstack([B, -y[:, None] * D]) * (w * np.sqrt(lw) / np.abs(q))[:, None]
        sol, *_ = np.linalg.lstsq(A, (y - c0) * w * np.sqrt(lw) / np.abs(q), rcond=None)
        c, d = sol[:B.shape[1]], sol[B.shape[1]:]
        q = 1 + D @ d
        e = np.abs(w * (y - (c0 + B @ c) / q))
        lw = lw * (e / e.max() + 1e-12)
        lw /= lw.sum()
    return c, d


def f32(c: np.ndarray) -> list[float]:
    return [float(np.float32(v)) for v in c]


def horner32(x: np.ndarray, coeffs: list[float]) -> np.ndarray:
    """Horner in f32 with FMA (highest power first): fma(p, x, c) rounded once."""
    x = x.astype(np.float32).astype(np.float64)
    p = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        p = (p * x + c).astype(np.float32).astype(np.float64)
    return p


def powers(k0: int, k1: int, sq: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """Design matrix of x^k (or x^(2k) when sq) for k in [k0, k1]."""
    return lambda x: np.stack([(x * x if sq else x) ** k for k in range(k0, k1 + 1)], axis=1)


def report(name: str, coeffs: list[float], err: float) -> None:
    print(f"{name}: max rel err {err:.3g} ({err / 2 ** -24:.2f} half-ulps)")
    print("   ", coeffs)


def main() -> None:
    ln2 = math.log(2)
    rel = lambda f: (lambda x: 1 / np.abs(f(x)))  # noqa: E731
    # exp: e^r = 1 + r*Q(r) on r in [0, ln2] (the reduction rounds x/ln2 down; 1 exact so e^0 = 1);
    # degree 3 is bf16's
    for deg in (3, 4, 5, 6):
        c, _ = fit(np.expm1, -1e-3, ln2 + 1e-3, powers(1, deg), weight=rel(np.exp))
        cs = f32(c[::-1]) + [1.0]
        r = grid(0, ln2)
        report(f"exp deg {deg} on [0, ln2]", cs, float(np.max(np.abs(horner32(r, cs) / np.exp(r) - 1))))
    # expm1: (e^r - 1)/r on |r| <= ln2/2, so e^r - 1 = r * P(r) keeps the sign of zero
    g = lambda r: np.where(r == 0, 1.0, np.expm1(r) / np.where(r == 0, 1.0, r))  # noqa: E731
    for deg in (3, 4, 5):   # 3: bf16's, its constant pinned to 1
        c, _ = fit(g, -ln2 / 2 - 1e-3, ln2 / 2 + 1e-3, powers(0, deg), weight=rel(g))
        cs = f32(c[::-1])
        if deg == 3:
            c, _ = fit(lambda r: g(r) - 1, -ln2 / 2 - 1e-3, ln2 / 2 + 1e-3, powers(1, deg), weight=rel(g))
            cs = f32(c[::-1]) + [1.0]
        r = grid(-ln2 / 2, ln2 / 2)
        got = (r.astype(np.float32) * horner32(r, cs)).astype(np.float32)
        report(f"expm1 deg {deg}", cs, float(np.max(np.abs(got / np.expm1(r) - 1))))
    # log: log(1 + f) = f * P(f) on f in [sqrt(1/2) - 1, sqrt(2) - 1]
    h = lambda f: np.where(f == 0, 1.0, np.log1p(f) / np.where(f == 0, 1.0, f))  # noqa: E731
    for deg in (6, 7, 8):
        c, _ = fit(h, math.sqrt(0.5) - 1, math.sqrt(2) - 1, powers(0, deg), weight=rel(h))
        cs = f32(c[::-1])
        f = grid(math.sqrt(0.5) - 1, math.sqrt(2) - 1)
        got = (f.astype(np.float32) * horner32(f, cs)).astype(np.float32)
        report(f"log1p(f)/f deg {deg}", cs, float(np.max(np.abs(got / np.log1p(f) - 1))))
    # tanh and erf: x * P(x^2) / Q(x^2) on [0, top]. The slope at 0 is pinned to f32(f'(0)), so
    # that tiny arguments come out exact.
    for name, fn, top, slope, (np_, nq) in (("tanh", np.tanh, 9.0, 1.0, (6, 4)),
                                            ("erf", _erf, 3.92, 2 / math.sqrt(math.pi), (7, 5)),
                                            ("tanh (bf16)", np.tanh, 4.0, 1.0, (3, 3))):
        cs, ds = odd_rational(fn, top, float(np.float32(slope)), np_, nq)
        x = grid(1e-4, top).astype(np.float32).astype(np.float64)
        z = (x * x).astype(np.float32).astype(np.float64)
        num = (x * horner32(z, cs)).astype(np.float32).astype(np.float64)
        got = (num / horner32(z, ds)).astype(np.float32).astype(np.float64)
        report(f"{name} x*P(x^2)/Q(x^2), {np_}/{nq} coefficients, on [0, {top}]", cs + ["/"] + ds,
               float(np.max(np.abs(got / fn(x) - 1))))


def odd_rational(fn: Callable, top: float, k0: float, np_: int, nq: int, rounds: int = 25
                 ) -> tuple[list[float], list[float]]:
    """f(x) ~ x (k0 + sum c_k x^2k) / (1 + sum d_k x^2k), k >= 1: Loeb's linearized fit in
    t = x/top (for conditioning), then refined by nonlinear least squares on the true relative
    error with Lawson's reweighting."""
    from scipy.optimize import least_squares

    u = lambda t: fn(t * top) / np.maximum(t * top, 1e-30)  # noqa: E731
    c, d = fit(u, 1e-5, 1.0, powers(1, np_ - 1, True), powers(1, nq - 1, True),
               weight=lambda t: 1 / np.abs(u(t)), c0=k0)
    t = grid(1e-5, 1.0, 4000)
    y = u(t)
    B, D = powers(1, np_ - 1, True)(t), powers(1, nq - 1, True)(t)
    rel = lambda v: (k0 + B @ v[:np_ - 1]) / (1 + D @ v[np_ - 1:]) / y - 1  # noqa: E731
    v, lw = np.concatenate([c, d]), np.ones_like(t)
    for _ in range(rounds):
        v = least_squares(lambda v: np.sqrt(lw) * rel(v), v, method="lm").x
        e = np.abs(rel(v))
        lw = lw * (e / e.max() + 1e-9)
        lw /= lw.mean()
    c = np.concatenate([[k0], v[:np_ - 1]])
    d = np.concatenate([[1.0], v[np_ - 1:]])
    return (f32([v / top ** (2 * k) for k, v in enumerate(c)][::-1]),
            f32([v / top ** (2 * k) for k, v in enumerate(d)][::-1]))


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf
    return erf(x)


if __name__ == "__main__":
    main()
