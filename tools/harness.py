"""JAX's primitive test harnesses (`jax._src.internal_test_util.test_harnesses`: thousands of
cases over every lax primitive) run through `jax.jit` on CPU and through `tt_xla.jit`.

    python -m tools.harness [--group NAME ...] [--limit N] [--match TEXT] [--timeout S] [--json F] [--markdown F]

Each case is one of: pass, clear error (a refusal naming the op), wrong (outputs differ from
CPU JAX beyond the dtype's tolerance), crash (any other exception, a dead worker, a timeout).
Cases run in worker subprocesses (tools.isolate), so a crash costs one case, not the run.
Measures whatever `tt_xla` is first on the PYTHONPATH."""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import Counter, defaultdict

import numpy as np

from tools.outcome import CLEAR, CRASH, PASS, REF_ERROR, WRONG, Outcome, run_against_cpu, table, tolerance

# Groups whose results are exact data movement or exactly rounded arithmetic: compared with the
# dtype's tight tolerance. Every other group (transcendentals, reductions, products,
# convolutions, scans, linear algebra) gets the loose one: XLA:CPU's accumulation order and
# its approximations are not the reference semantics, only one valid implementation.
EXACT_GROUPS = frozenset("""
    abs add and bitcast_convert_type broadcast_in_dim ceil clamp concatenate convert_element_type
    device_put div dynamic_slice dynamic_update_slice eq floor gather ge gt iota is_finite le lt
    max min mul ne neg nextafter or pad population_count rem reshape rev round select_n
    shift_left shift_right_arithmetic shift_right_logical sign slice squeeze stop_gradient sub
    transpose xor argmax argmin reduce_max reduce_min reduce_and reduce_or sort top_k
""".split())

# Groups whose JAX tests compare wider than the dtype's tolerance, as (rtol, atol) by input dtype
# (a harness's own "tol" still wins):
# - fft: an FFT's rounding error scales with its input's norm, not with each output (JAX's
#   fft_test checks jnp.fft against numpy with tol=1e-4);
# - cholesky: the absolute tolerance JAX's own tests compare two Cholesky implementations with
#   (jax2tf_limitations.cholesky, f32 "very high discrepancy"): the harness's 200x200 a a^T has
#   condition ~1e5, so CPU JAX's own f32 factor is further than the f32 rtol from the exact
#   (f64) one at some small trailing entries, and any other correct order of sums is too.
CHOLESKY_ATOL = {"float32": 1e-2, "complex64": 1e-2, "float64": 1e-6, "complex128": 1e-6}
GROUP_TOL = {
    "fft": lambda dt: (1e-4, 1e-4),
    "cholesky": lambda dt: (tolerance(dt, loose=True)[0], CHOLESKY_ATOL.get(dt.name, 5e-2)),
}


@functools.cache
def harnesses() -> dict[str, object]:
    """Every harness JAX itself runs on CPU, by its full name."""
    from jax._src.internal_test_util import test_harnesses as th
    return {h.fullname: h for h in th.all_harnesses if h.filter("cpu")}


def select(groups: list[str] | None, limit: int | None) -> list[str]:
    """Case names of the chosen groups; with `limit`, that many per group, evenly spread over
    the group (its cases vary shapes and dtypes in order), always the same ones."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for name, h in harnesses().items():
        by_group[h.group_name].append(name)
    unknown = set(groups or ()) - by_group.keys()
    if unknown:
        raise SystemExit(f"unknown group(s): {', '.join(sorted(unknown))}")
    out: list[str] = []
    for g in sorted(by_group):
        if groups and g not in groups:
            continue
        names = by_group[g]
        if limit is not None and len(names) > limit:
            names = [names[(i * len(names)) // limit] for i in range(limit)]
        out += names
    return out


# Mixed into float inputs by --edges: the values where implementations differ (NaN propagation,
# signed zeros, infinities, denormals, which the device flushes like XLA:CPU, huge magnitudes).
EDGES = (np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 3e38, -3e38, 1.0, -1.0, 0.5)
EDGE_SUFFIX = "@edges"


def with_edges(args: list) -> list:
    """Float and complex array arguments with the EDGES values written over some of their elements
    (the same ones every run); other arguments (indices, shapes, ints) unchanged."""
    from tools.outcome import is_float

    out = []
    for k, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.size and (is_float(a.dtype) or a.dtype.kind == "c"):
            a = a.copy()
            flat = a.reshape(-1)
            rng = np.random.default_rng(k)
            idx = rng.choice(flat.size, size=min(flat.size, len(EDGES)), replace=False)
            vals = np.array(EDGES[:len(idx)], np.float64)
            with np.errstate(over="ignore"):  # 3e38 in f16/bf16 is inf: still an edge
                if a.dtype.kind == "c":  # complex: edge values in both parts, paired differently
                    flat.real[idx], flat.imag[idx] = vals, np.roll(vals, 3)
                else:
                    flat[idx] = vals.astype(a.dtype)
        out.append(a)
    return out


def run_case(case: str) -> Outcome:
    """Run one harness (`name`, or `name@edges` for its inputs with EDGES mixed in) on CPU JAX
    and on tt-xla, and classify."""
    name, edges = case.removesuffix(EDGE_SUFFIX), case.endswith(EDGE_SUFFIX)
    h = harnesses()[name]
    args = h.dyn_args_maker(np.random.RandomState(0))
    tol = h.params.get("tol")
    equivalent = None
    if h.group_name == "sort" and not h.params.get("is_stable", True):
        from tools.outcome import same_up_to_tie_order

        # ties of an unstable sort may come out in either order
        equivalent = lambda got, want: same_up_to_tie_order(  # noqa: E731
            got, want, h.params["dimension"], h.params["num_keys"])
    if h.group_name in ("eigh", "svd"):
        from tools.outcome import same_decomposition

        # eigen/singular vectors are defined up to sign and rotation within repeated values
        equivalent = functools.partial(same_decomposition, kind=h.group_name)
    pair = (tol, tol) if tol is not None else \
        GROUP_TOL[h.group_name](np.asarray(args[0]).dtype) if h.group_name in GROUP_TOL else None
    return run_against_cpu(h.dyn_fun, with_edges(args) if edges else args,
                           loose=h.group_name not in EXACT_GROUPS, tol=pair, equivalent=equivalent)


def summarize(results: dict[str, Outcome]) -> list[tuple[str, dict[str, int]]]:
    groups: dict[str, Counter] = defaultdict(Counter)
    for name, res in results.items():
        groups[harnesses()[name.removesuffix(EDGE_SUFFIX)].group_name][res.kind] += 1
    return [(g, dict(c)) for g, c in sorted(groups.items())]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.harness", description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", action="append", help="a harness group (repeatable); default all")
    ap.add_argument("--limit", type=int, help="at most N cases per group, evenly spread")
    ap.add_argument("--match", action="append",
                    help="only cases whose name contains this text, e.g. a dtype: complex64 (repeatable: any)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per case (compile included)")
    ap.add_argument("--chunk", type=int, default=100, help="cases per worker process")
    ap.add_argument("--json", help="write every case's outcome here")
    ap.add_argument("--markdown", help="write the table and the failures here")
    ap.add_argument("--edges", action="store_true",
                    help="mix NaN, +-inf, -0, denormals and huge values into float inputs")
    ap.add_argument("--list-groups", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each case as it ends")
    a = ap.parse_args(argv)
    if a.list_groups:
        print("\n".join(sorted({h.group_name for h in harnesses().values()})))
        return 0
    from tools.isolate import run_isolated

    names = select(a.group, a.limit)
    if a.match:
        names = [n for n in names if any(m in n for m in a.match)]
    if a.edges:
        names = [n + EDGE_SUFFIX for n in names]
    t0 = time.monotonic()
    done = 0

    def progress(name: object, res: Outcome) -> None:
        nonlocal done
        done += 1
        if a.verbose or res.kind in (WRONG, CRASH):
            print(f"[{done}/{len(names)} {time.monotonic() - t0:.0f}s] {res.kind:11} {name}"
                  + (f"  {res.detail[:200]}" if res.kind != PASS else ""), file=sys.stderr, flush=True)

    results = run_isolated("tools.harness", names, timeout=a.timeout, chunk=a.chunk, on_result=progress)
    ref = sorted(n for n, r in results.items() if r.kind == REF_ERROR)
    counted = {n: r for n, r in results.items() if r.kind != REF_ERROR}
    text = table(summarize(counted))
    bad = [(n, r) for n, r in sorted(counted.items()) if r.kind in (WRONG, CRASH)]
    ops = Counter(r.op or "?" for r in counted.values() if r.kind == CLEAR)
    report = [text, "",
              f"{len(results)} cases in {time.monotonic() - t0:.0f} s; {len(ref)} skipped because "
              "CPU JAX itself fails on them.", "",
              "Ops refused (clear errors): " + ", ".join(f"{o} {n}" for o, n in ops.most_common()), ""]
    if bad:
        report += ["Wrong answers and crashes:", ""] + [f"- `{n}`: {r.kind}: {r.detail}" for n, r in bad]
    print("\n".join(report))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({n: r.as_dict() for n, r in sorted(results.items())}, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
