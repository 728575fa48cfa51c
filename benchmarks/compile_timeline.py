"""Where a cold compile's wall time goes: the client's phases and every C compiler process.

    PYTHONPATH=. python -m benchmarks.compile_timeline [--reps N] [vg|fwd|FILE.mlir ...]

`vg` and `fwd` are the compile rows' programs (benchmarks/suite.py: a 2-layer transformer's
value_and_grad and forward loss); a file is StableHLO text. Each rep compiles in a fresh cache
directory (nothing cached: gcc runs) with a fresh client, and prints, in ms from the compile's
start: parse, the compiler's passes, the build (the key, the source written, the units split),
each compiler process with its CPU time (gcc and its cc1/as/ld), the kernel store's write (run
while gcc compiles) and the load. The summary line says how long the host's cores sat idle
while the other worked: that is what overlapping could still win.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile


def _programs(names: list[str]) -> list[tuple[str, str]]:
    out, want = [], [n for n in names if n in ("vg", "fwd")]
    if want:
        import jax
        import numpy as np

        from .suite import _transformer
        init, make_step = _transformer(seq=64, d=128, heads=4, mlp=512, layers=2)
        args = init(np.random.default_rng(0))
        texts = {tag: jax.export.export(jax.jit(make_step(tag == "vg")))(*args).mlir_module() for tag in want}
    for n in names:
        out.append((n, texts[n] if n in ("vg", "fwd") else open(n).read()))
    return out


def timeline(text: str) -> list[tuple[str, float, float, float | None]]:
    """(what, start ms, end ms, CPU ms or None) of one cold compile of `text`, from its start."""
    import tt_xla
    from tt_xla.runtime import toolchain

    old = os.environ.get("TT_XLA_CACHE_DIR")
    d = tempfile.mkdtemp(prefix="tt_xla_timeline_")
    os.environ["TT_XLA_CACHE_DIR"] = d
    try:
        exe = tt_xla.Client().compile(text)
        build = toolchain.last_build
    finally:
        if old is None:
            os.environ.pop("TT_XLA_CACHE_DIR", None)
        else:
            os.environ["TT_XLA_CACHE_DIR"] = old
        shutil.rmtree(d, ignore_errors=True)
    t0 = exe.compile_phases[0][1]
    ms = lambda t: (t - t0) * 1e3
    rows = [(what, ms(a), ms(b), None) for what, a, b in exe.compile_phases]
    rows.append(("  build_kernel_library", ms(build.start), ms(build.end), None))
    rows += [(f"    {s.what}", ms(s.start), ms(s.end), None if s.cpu is None else s.cpu * 1e3) for s in build.steps]
    if build.meanwhile:
        rows.append(("    kernel store write (meanwhile)", ms(build.meanwhile[0]), ms(build.meanwhile[1]), None))
    return sorted(rows, key=lambda r: r[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="*", default=["vg", "fwd"])
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args(argv)
    for name, text in _programs(a.programs):
        for _ in range(a.reps):
            rows = timeline(text)
            total = max(r[2] for r in rows)
            procs = [r for r in rows if r[3] is not None]
            cpu = sum(r[3] for r in procs)
            print(f"--- {name}: {total:.0f} ms (load average {os.getloadavg()[0]:.2f})")
            for what, a0, a1, c in rows:
                print(f"  {a0:7.1f} {a1:7.1f} {a1 - a0:7.1f} ms  {'' if c is None else f'cpu {c:6.1f} ms'}  {what}")
            first = min((r[1] for r in procs), default=total)
            print(f"  compiler processes: {len(procs)}, {cpu:.0f} ms CPU; before the first one {first:.0f} ms "
                  f"(Python alone: the other core idle); from it to the end {total - first:.0f} ms for {cpu:.0f} ms of its CPU "
                  f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
