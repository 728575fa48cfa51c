"""One device, many threads: four threads call four different jitted functions (and one they
share) on the default device, each call checked against numpy. Every thread must finish within
a bound (a deadlock fails the test instead of hanging it).

The suite runs a few dozen calls per thread (TT_XLA_THREAD_CALLS); the full stress run is

    python tests/test_threads.py --calls 1000
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time

import numpy as np

import jax.numpy as jnp

import tt_xla

THREADS = 4
CALLS = int(os.environ.get("TT_XLA_THREAD_CALLS", "30"))
TIMEOUT_S = 900  # the whole run; generous: the machine may be loaded, a deadlock never ends


def _cases():
    """(jitted function, make inputs from an rng, numpy reference, rtol, atol) per thread."""
    def f0(x):
        return x * 2.0 + 1.0

    def f1(a, b):
        return a @ b

    def f2(x):
        return jnp.sum(x, axis=1) - jnp.max(x, axis=1)

    def f3(x):
        return jnp.tanh(x) * jnp.exp(-x * x)

    def rnd(rng, *shape):
        return rng.standard_normal(shape).astype(np.float32)

    return [
        (tt_xla.jit(f0), lambda r: (rnd(r, 37, 45),), lambda x: x * 2 + 1, 1e-6, 0),
        (tt_xla.jit(f1), lambda r: (rnd(r, 33, 70), rnd(r, 70, 40)),
         lambda a, b: a.astype(np.float64) @ b, 1e-4, 1e-4),
        (tt_xla.jit(f2), lambda r: (rnd(r, 50, 33),),
         lambda x: x.astype(np.float64).sum(1) - x.max(1), 1e-5, 1e-4),
        (tt_xla.jit(f3), lambda r: (rnd(r, 29, 31),),
         lambda x: np.tanh(x.astype(np.float64)) * np.exp(-x.astype(np.float64) ** 2), 2e-5, 1e-6),
    ]


def _shared():
    def g(x):
        return x - jnp.mean(x)
    return tt_xla.jit(g), lambda x: x - x.astype(np.float64).mean()


def run(calls: int, threads: int = THREADS, timeout: float = TIMEOUT_S) -> dict:
    """Runs the stress test; returns {"calls": n, "errors": [...], "alive": k, "seconds": t}."""
    cases, (g, g_ref) = _cases(), _shared()
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
                if i % 5 == 0:  # the same executable from every thread, fed a device-resident array
                    y = g(out)
                    np.testing.assert_allclose(np.asarray(y), g_ref(np.asarray(out)), rtol=1e-5,
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


def test_threads_share_the_default_device():
    r = run(CALLS)
    assert r["alive"] == 0, f"{r['alive']} threads still running after {TIMEOUT_S} s (deadlock?)"
    assert not r["errors"], "\n".join(r["errors"])
    assert r["calls"] == THREADS * CALLS


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
    a = p.parse_args()
    r = run(a.calls, a.threads)
    print(f"{a.threads} threads x {a.calls} calls: {r['calls']} correct calls, {len(r['errors'])} errors, "
          f"{r['alive']} threads still running, {r['seconds']:.1f} s")
    for e in r["errors"]:
        print(e)
    sys.exit(1 if r["errors"] or r["alive"] or r["calls"] != a.threads * a.calls else 0)
