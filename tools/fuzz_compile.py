"""Long compile-and-run fuzzing over mutations of exported modules (tests/mutations.py).

Each case (seed module, mutation seed) is parsed, verified, compiled, built and run in a worker
subprocess, so a crash (segfault, abort, SIGFPE) or a hang is caught and recorded with the
case that caused it; the worker is then restarted. Every case must end in a result or a clear
error (ParseError, VerificationError, UnsupportedError, DeviceError); anything else is a bug.

    python tools/fuzz_compile.py --cases 10000 --start 0 --out /tmp/fuzz.jsonl

prints a summary by outcome; --out gets one JSON line per bug (replay one with --replay NAME:SEED,
which prints the mutant and runs it in this process; rerun them all with --cases-from FILE). --timeout bounds one case (seconds).
With --oracle each case is also given to XLA:CPU (jaxlib, the StableHLO verifier) and the
results compared: a program it rejects that we ran, a program it accepts that we called
invalid, or different numbers are bugs too (mutations.check_case). With TT_XLA_FUZZ_NO_VERIFY=1 the workers skip the verifier: a measurement of what it stops
(invalid programs then reach the compiler and the device), never a way to run programs.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))

import mutations  # noqa: E402


def worker(oracle: bool) -> None:
    """Reads `name seed` lines, answers one JSON line each: the outcome, or the raw exception,
    and with `oracle` the verdict of comparing with XLA:CPU (mutations.check_case)."""
    limit = int(os.environ.get("TT_XLA_FUZZ_MEMORY", str(6 << 30)))  # a huge allocation fails
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if os.environ.get("TT_XLA_FUZZ_NO_VERIFY"):  # measures what the verifier stops (see --help)
        import tt_xla.compiler
        tt_xla.compiler.verify = lambda module: None
    for line in sys.stdin:
        name, seed = line.split()
        verdict = ""
        try:
            text = mutations.mutant(name, int(seed))
            if oracle:
                outcome, verdict = mutations.check_case(text)
            else:
                outcome = mutations.run_case(text)
            detail = ""
        except Exception as e:  # the bug this tool looks for: report it, keep going
            tb = traceback.extract_tb(e.__traceback__)
            where = next((f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(tb)
                          if "tt_xla" in f.filename), "?")
            outcome, detail = f"raw {type(e).__name__} at {where}", str(e)[:300]
        print(json.dumps({"outcome": outcome, "detail": detail, "verdict": verdict}), flush=True)


class Pool:
    """One worker subprocess, restarted after a crash or a hang."""

    def __init__(self, timeout: float, oracle: bool):
        self.timeout, self.proc, self.oracle = timeout, None, oracle

    def start(self) -> None:
        flags = ["--worker"] + (["--oracle"] if self.oracle else [])
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, name: str, seed: int) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(f"{name} {seed}\n")
        self.proc.stdin.flush()
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return {"outcome": "hang", "detail": f"no answer in {self.timeout} s"}
        code = self.proc.wait()
        self.proc = None
        return {"outcome": f"crash (exit {code})", "detail": ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0, help="first mutation seed")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", default=None, help="JSON lines, one per bug found")
    ap.add_argument("--replay", default=None, help="NAME:SEED, run in this process")
    ap.add_argument("--seeds", default=None, help="comma-separated seed modules (default: all)")
    ap.add_argument("--oracle", action="store_true",
                    help="also compile (and run) each case with XLA:CPU through jaxlib and compare")
    ap.add_argument("--cases-from", default=None,
                    help="run the cases of an --out file again (e.g. after a fix) instead of new ones")
    args = ap.parse_args()
    if args.worker:
        return worker(args.oracle)
    if args.replay:
        name, seed = args.replay.split(":")
        text = mutations.mutant(name, int(seed))
        print(text)
        print(mutations.check_case(text) if args.oracle else mutations.run_case(text))
        return
    pool, counts, verdicts = Pool(args.timeout, args.oracle), collections.Counter(), collections.Counter()
    out = open(args.out, "a") if args.out else None
    t0 = time.time()
    if args.cases_from:
        with open(args.cases_from) as f:
            cases = [json.loads(line)["case"].split(":") for line in f if line.strip()]
        cases = [(name, int(seed)) for name, seed in cases]
    else:
        names = args.seeds.split(",") if args.seeds else mutations.SEEDS
        cases = [(names[s % len(names)], s) for s in range(args.start, args.start + args.cases)]
    for k, (name, seed) in enumerate(cases):
        r = pool.run(name, seed)
        kind = r["outcome"]
        counts[kind.split(" (")[0] if kind.startswith("crash") else kind] += 1
        verdict = r.get("verdict", "").split(":")[0]
        if verdict:
            verdicts[verdict] += 1
        bug = (kind not in ("ok", "compiled") and kind not in mutations.CLEAR) or \
            verdict in ("verifier gap", "false reject", "mismatch")
        if bug and out:
            out.write(json.dumps({"case": f"{name}:{seed}", **r}) + "\n")
            out.flush()
        if bug:
            print(f"{name}:{seed}: {kind}: {r['detail'][:200]} {r.get('verdict', '')[:200]}",
                  file=sys.stderr, flush=True)
        if (k + 1) % 500 == 0:
            print(f"[{k + 1} cases, {time.time() - t0:.0f} s] {dict(counts)}", file=sys.stderr, flush=True)
    if pool.proc is not None:
        pool.proc.stdin.close()
        pool.proc.wait()
    summary = {"cases": len(cases), "outcomes": dict(counts)}
    if args.oracle:
        summary["xla_verdicts"] = dict(verdicts)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
