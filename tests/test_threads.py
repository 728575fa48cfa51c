"""One device, many threads: four threads call four different programs (and one they share) on
the default device, each call checked against numpy. Every thread must finish within a bound (a
deadlock fails the test instead of hanging it).

Two flavours: jitted jax functions (`tt_xla.jit`), and StableHLO text through the client without
jax (which .ci/sanitize also runs under ThreadSanitizer: jaxlib cannot run under it). The suite
runs a few dozen calls per thread (TT_XLA_THREAD_CALLS); the full stress run is

    python tests/test_threads.py --calls 1000 [--no-jax]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time

import numpy as np

import tt_xla

THREADS = 4
CALLS = int(os.environ.get("TT_XLA_THREAD_CALLS", "30"))
TIMEOUT_S = 900  # the whole run; generous: the machine may be loaded, a deadlock never ends


def _rnd(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _f64(x):
    return np.asarray(x, np.float64)


def _jax_cases():
    """(callable, make inputs from an rng, numpy reference, rtol, atol) per thread, and the
    (callable, reference) every thread also calls."""
    import jax.numpy as jnp

    def f0(x):
        return x * 2.0 + 1.0

    def f1(a, b):
        return a @ b

    def f2(x):
        return jnp.sum(x, axis=1) - jnp.max(x, axis=1)

    def f3(x):
        return jnp.tanh(x) * jnp.exp(-x * x)

    def g(x):
        return x - jnp.mean(x)

    cases = [
        (tt_xla.jit(f0), lambda r: (_rnd(r, 37, 45),), lambda x: x * 2 + 1, 1e-6, 0),
        (tt_xla.jit(f1), lambda r: (_rnd(r, 33, 70), _rnd(r, 70, 40)), lambda a, b: _f64(a) @ b, 1e-4, 1e-4),
        (tt_xla.jit(f2), lambda r: (_rnd(r, 50, 33),), lambda x: _f64(x).sum(1) - x.max(1), 1e-5, 1e-4),
        (tt_xla.jit(f3), lambda r: (_rnd(r, 29, 31),),
         lambda x: np.tanh(_f64(x)) * np.exp(-_f64(x) ** 2), 2e-5, 1e-6),
    ]
    return cases, (tt_xla.jit(g), lambda x: x - _f64(x).mean())


def _text(args: str, result: str, body: str) -> str:
    return f"func.func public @main({args}) -> {result} {{\n{body}\n}}"


def _hlo_cases():
    """The same shape of workload from StableHLO text, without jax."""
    def first(exe):
        return lambda *a: exe(*a)[0]

    add = tt_xla.compile(_text("%arg0: tensor<37x45xf32>, %arg1: tensor<37x45xf32>", "tensor<37x45xf32>",
                               "%0 = stablehlo.add %arg0, %arg1 : tensor<37x45xf32>\nreturn %0 : tensor<37x45xf32>"))
    dot = tt_xla.compile(_text(
        "%arg0: tensor<33x70xf32>, %arg1: tensor<70x40xf32>", "tensor<33x40xf32>",
        "%0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : "
        "(tensor<33x70xf32>, tensor<70x40xf32>) -> tensor<33x40xf32>\nreturn %0 : tensor<33x40xf32>"))
    rsum = tt_xla.compile(_text(
        "%arg0: tensor<50x33xf32>", "tensor<50xf32>",
        "%cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>\n"
        "%0 = stablehlo.reduce(%arg0 init: %cst) applies stablehlo.add across dimensions = [1] : "
        "(tensor<50x33xf32>, tensor<f32>) -> tensor<50xf32>\nreturn %0 : tensor<50xf32>"))
    mulmax = tt_xla.compile(_text(
        "%arg0: tensor<29x31xf32>, %arg1: tensor<29x31xf32>", "tensor<29x31xf32>",
        "%0 = stablehlo.multiply %arg0, %arg1 : tensor<29x31xf32>\n"
        "%1 = stablehlo.maximum %0, %arg1 : tensor<29x31xf32>\nreturn %1 : tensor<29x31xf32>"))
    neg = tt_xla.compile(_text("%arg0: tensor<50xf32>", "tensor<50xf32>",
                               "%0 = stablehlo.negate %arg0 : tensor<50xf32>\nreturn %0 : tensor<50xf32>"))
    cases = [
        (first(add), lambda r: (_rnd(r, 37, 45), _rnd(r, 37, 45)), lambda a, b: a + b, 1e-6, 0),
        (first(dot), lambda r: (_rnd(r, 33, 70), _rnd(r, 70, 40)), lambda a, b: _f64(a) @ b, 1e-4, 1e-4),
        (first(rsum), lambda r: (_rnd(r, 50, 33),), lambda x: _f64(x).sum(1), 1e-5, 1e-4),
        (first(mulmax), lambda r: (_rnd(r, 29, 31), _rnd(r, 29, 31)), lambda a, b: np.maximum(a * b, b), 1e-6, 0),
    ]
    # shared: fed thread 2's (50,) results, device-resident; the others get a fresh host array
    return cases, (first(neg), lambda x: -x)


def run(calls: int, threads: int = THREADS, timeout: float = TIMEOUT_S, use_jax: bool = True) -> dict:
    """Runs the stress test; returns {"calls": n, "errors": [...], "alive": k, "seconds": t}."""
    cases, (g, g_ref) = _jax_cases() if use_jax else _hlo_cases()
    errors: list[str] = []
    done = [0] * threads
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        fn, make, ref, rtol, atol = cases[t % len(cases)]
        rng = np.random.default_rng(1000 + t)
        try:
            start.wait()
            for i in range(calls):
                args = make(rng)
                out = fn(*args)
                np.testing.assert_allclose(np.asarray(out), ref(*args), rtol=rtol, atol=atol,
                                           err_msg=f"thread {t} call {i}")
                if i % 5 == 0:  # the same executable from every thread
                    x = out if (use_jax or t % len(cases) == 2) else _rnd(rng, 50)
                    y = g(x)
                    np.testing.assert_allclose(np.asarray(y), g_ref(np.asarray(x)), rtol=1e-5,
                                               atol=1e-5, err_msg=f"thread {t} shared call {i}")
                done[t] += 1
        except BaseException as e:  # reported by the main thread
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.0, timeout - (time.monotonic() - t0)))
    return {"calls": sum(done), "errors": errors, "alive": sum(t.is_alive() for t in ts),
            "seconds": time.monotonic() - t0}


def _check(r: dict) -> None:
    assert r["alive"] == 0, f"{r['alive']} threads still running after {TIMEOUT_S} s (deadlock?)"
    assert not r["errors"], "\n".join(r["errors"])
    assert r["calls"] == THREADS * CALLS


def test_jitted_functions_share_the_default_device():
    _check(run(CALLS, use_jax=True))


def test_executables_share_the_default_device_without_jax():
    _check(run(CALLS, use_jax=False))


def test_jitted_function_calling_itself_while_exported():
    """The export lock is re-entrant: tracing f(x, 2) calls f(x, 1), a new entry of f."""
    import functools

    @functools.partial(tt_xla.jit, static_argnums=1)
    def f(x, n):
        return x if n == 0 else f(x, n - 1) * 2

    out: list = []
    t = threading.Thread(target=lambda: out.append(np.asarray(f(np.ones(4, np.float32), 2))), daemon=True)
    t.start()
    t.join(TIMEOUT_S)
    assert not t.is_alive(), "deadlock exporting a recursive jitted function"
    np.testing.assert_array_equal(out[0], np.full(4, 4.0, np.float32))


def test_concurrent_alloc_free_and_reads():
    """Allocation, writes, reads and frees racing on one device stay consistent."""
    dev = tt_xla.client().devices()[0].runtime_device
    gc.collect()  # earlier tests' garbage must not be freed mid-count
    before = dev.counters()["dram_bytes_allocated"]
    errors: list[str] = []

    def worker(t: int) -> None:
        try:
            for i in range(300):
                a = np.full(257 + t, t * 1000 + i, np.int32)
                b = dev.alloc(a.nbytes)
                b.write(a)
                out = np.empty_like(a)
                b.read_into(out)
                assert np.array_equal(out, a), (t, i)
                b.free()
        except BaseException as e:
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts)
    assert not errors, "\n".join(errors)
    assert dev.counters()["dram_bytes_allocated"] == before


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1000, help="calls per thread")
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--no-jax", action="store_true", help="StableHLO text through the client, no jax")
    a = p.parse_args()
    r = run(a.calls, a.threads, use_jax=not a.no_jax)
    print(f"{a.threads} threads x {a.calls} calls ({'StableHLO text' if a.no_jax else 'tt_xla.jit'}): "
          f"{r['calls']} correct calls, {len(r['errors'])} errors, {r['alive']} threads still running, "
          f"{r['seconds']:.1f} s")
    for e in r["errors"]:
        print(e)
    sys.exit(1 if r["errors"] or r["alive"] or r["calls"] != a.threads * a.calls else 0)
