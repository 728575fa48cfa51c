"""Two trees, one table: `python -m benchmarks.ab TREE_A TREE_B [--only ROWS] [--rounds N] [--reps K] [--compile]`.

`python -m benchmarks` compares tt_xla with XLA:CPU in one process. Whether a change kept a row's
ratio needs the same row on two checkouts (before and after), and on a shared or noisy machine
two separate runs of the table can differ by more than the change: XLA's own time has moved 2-3x
between runs on a busy 2-core VM. So this runs both trees at once, alternated in fine grain:

- one worker process per tree, started in that tree with that tree on `sys.path`, so it imports
  that tree's `tt_xla` and `benchmarks.suite` (the row definitions), and its own cache dir;
- each worker sets up every row once (inputs from seed 0, both sides compiled, outputs compared
  with XLA's: a mismatch is reported, as in the table);
- then, round after round, each row runs K interleaved tt/XLA pairs in worker A, then in worker B
  (B first on odd rounds). The workers never run at once, so both see the same machine;
- per round and side, the medians of tt time and of tt/XLA; per row, B/A of tt ms and of tt/XLA
  for each round, and their median over rounds with the min-max spread.

`--compile` adds the compile rows (`suite.compile_bench` with one rep, cold cache dir fresh each
time) to every round. The worker code is this file's, run as a script, so a tree without this
file (an older checkout) can still be side A; so is the timing code (`harness.setup`,
`_time_call`), loaded from beside this file, so both trees are timed alike. Timings are
reported, never asserted.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


# ---------------------------------------------------------------------------- worker (runs in a tree)
def _worker() -> int:
    """Serve JSON commands on stdin, one per line; answer one JSON line each on stdout."""
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.getcwd()
    sys.path = [tree] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    out = sys.stdout
    sys.stdout = sys.stderr  # anything the tree prints must not corrupt the protocol
    # The timing code is this file's tree's harness, the same in both workers (an older tree's
    # may lack what it needs); the rows, tt_xla and everything harness imports are the tree's.
    spec = importlib.util.spec_from_file_location("_ab_harness", os.path.join(here, "harness.py"))
    H = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(H)
    from benchmarks import suite

    rows = {b.name: b for b in suite.benchmarks()}
    live: dict[str, object] = {}

    def setup(name: str) -> dict:
        b = rows.get(name)
        if b is None:
            return {"status": "absent"}
        s = H.setup(b, False)
        if s.error is not None:  # unsupported on this tree: the row is skipped, not fatal
            return {"status": "error", "message": f"{type(s.error).__name__}: {str(s.error)[:120]}"}
        ok, _, msg = H.compare(s.got, s.want, b.rtol, b.atol)
        s.got = s.want = None
        for _ in range(b.warmup):
            H._time_call(s.tt_f, s.tt_args, s.numpy_io)
            H._time_call(s.xla_f, s.xla_args, s.numpy_io)
        live[name] = s
        return {"status": "ok" if ok else "MISMATCH", "message": msg, "unit": b.unit}

    def timed(name: str, reps: int) -> dict:
        s = live[name]
        tt, xla = [], []
        for _ in range(reps):
            tt.append(H._time_call(s.tt_f, s.tt_args, s.numpy_io))
            xla.append(H._time_call(s.xla_f, s.xla_args, s.numpy_io))
        return {"tt": tt, "xla": xla}

    def compile_rows() -> dict:
        res, _ = suite.compile_bench(False, 1)
        return {r.name: {"tt": [r.tt_median_s], "xla": [r.xla_median_s]} for r in res
                if r.tt_median_s is not None and r.xla_median_s is not None}

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "rows":
            ans = {"rows": list(rows)}
        elif cmd["op"] == "setup":
            ans = setup(cmd["row"])
        elif cmd["op"] == "time":
            ans = timed(cmd["row"], cmd["reps"])
        elif cmd["op"] == "compile":
            ans = compile_rows()
        else:
            ans = {"error": f"unknown op {cmd['op']!r}"}
        out.write(json.dumps(ans) + "\n")
        out.flush()
    return 0


# ---------------------------------------------------------------------------- parent
class _Side:
    def __init__(self, tree: str, label: str):
        self.tree, self.label = os.path.abspath(tree), label
        self.cache = tempfile.mkdtemp(prefix=f"tt_xla_ab_{label}_")
        env = dict(os.environ, PYTHONPATH=self.tree, TT_XLA_CACHE_DIR=self.cache)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], cwd=self.tree,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **cmd) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker for {self.tree} exited (status {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def _ratio_row(name: str, unit: str, per_round: list[tuple[dict, dict]]) -> dict:
    """per_round: (A's times, B's times) of each round, each {'tt': [...], 'xla': [...]}."""
    scale = 1e6 if unit == "us" else 1e3
    a_tt = [_med(a["tt"]) for a, _ in per_round]
    b_tt = [_med(b["tt"]) for _, b in per_round]
    a_rel = [_med([t / x for t, x in zip(a["tt"], a["xla"])]) for a, _ in per_round]
    b_rel = [_med([t / x for t, x in zip(b["tt"], b["xla"])]) for _, b in per_round]
    tt_ratio = [b / a for a, b in zip(a_tt, b_tt)]
    rel_ratio = [b / a for a, b in zip(a_rel, b_rel)]
    return {"row": name, "unit": unit, "a_tt": _med(a_tt) * scale, "b_tt": _med(b_tt) * scale,
            "a_rel": _med(a_rel), "b_rel": _med(b_rel), "tt_ratio": _med(tt_ratio),
            "tt_ratio_span": (min(tt_ratio), max(tt_ratio)), "rel_ratio": _med(rel_ratio),
            "rel_ratio_span": (min(rel_ratio), max(rel_ratio)), "rounds": len(per_round),
            "tt_ratios": tt_ratio, "rel_ratios": rel_ratio}  # (per round: to pool several runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.splitlines()[0])
    p.add_argument("a", help="tree A (the before), e.g. a `git worktree` of the old commit")
    p.add_argument("b", help="tree B (the after)")
    p.add_argument("--only", help="comma-separated row names (default: every row both trees have)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=10, help="interleaved tt/XLA pairs per row, side and round")
    p.add_argument("--compile", action="store_true", help="add the compile rows (one cold+warm build a round)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)

    sides = [_Side(args.a, "a"), _Side(args.b, "b")]
    try:
        names = [n for n in sides[0].ask(op="rows")["rows"] if n in set(sides[1].ask(op="rows")["rows"])]
        if args.only:
            wanted = args.only.split(",")
            names = [n for n in wanted if n in names]
        units, skipped = {}, []
        for n in names:
            got = [s.ask(op="setup", row=n) for s in sides]
            if any(g["status"] not in ("ok", "MISMATCH") for g in got):
                skipped.append(f"{n}: " + "; ".join(f"{s.label} {g['status']} {g.get('message', '')}"
                                                  for s, g in zip(sides, got) if g["status"] != "ok"))
                continue
            for s, g in zip(sides, got):
                if g["status"] == "MISMATCH":
                    print(f"# {n}: side {s.label} MISMATCH {g['message']}", file=sys.stderr)
            units[n] = got[0]["unit"]
        per: dict[str, list[tuple[dict, dict]]] = {n: [] for n in units}
        timed = list(units)  # (the compile rows join `units` in the first round, timed apart)
        t0 = time.perf_counter()
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            for n in timed:
                got = {s.label: s.ask(op="time", row=n, reps=args.reps) for s in order}
                per[n].append((got["a"], got["b"]))
            if args.compile:
                got = {s.label: s.ask(op="compile") for s in order}
                for n in got["a"]:
                    if n in got["b"]:
                        units.setdefault(n, "ms")
                        per.setdefault(n, []).append((got["a"][n], got["b"][n]))
            print(f"# round {r + 1}/{args.rounds} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    finally:
        for s in sides:
            s.close()

    table = [_ratio_row(n, units[n], per[n]) for n in per if per[n]]
    print(f"A = {sides[0].tree}\nB = {sides[1].tree}\n{args.rounds} rounds x {args.reps} interleaved pairs a side")
    print(f"{'row':24} {'A tt':>9} {'B tt':>9} {'B/A tt (min-max)':>20} {'A tt/XLA':>9} {'B tt/XLA':>9} "
          f"{'B/A of tt/XLA (min-max)':>25}")
    for t in table:
        lo, hi = t["tt_ratio_span"]
        rlo, rhi = t["rel_ratio_span"]
        print(f"{t['row']:24} {t['a_tt']:8.3g}{t['unit'][0]} {t['b_tt']:8.3g}{t['unit'][0]} "
              f"{t['tt_ratio']:7.2f} ({lo:.2f}-{hi:.2f})   {t['a_rel']:9.2f} {t['b_rel']:9.2f} "
              f"{t['rel_ratio']:10.2f} ({rlo:.2f}-{rhi:.2f})")
    for s in skipped:
        print(f"skipped {s}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": sides[0].tree, "b": sides[1].tree, "rows": table, "skipped": skipped}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(_worker() if sys.argv[1:] == ["--worker"] else main())
