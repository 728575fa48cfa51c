"""StableHLO's own test data (openxla/stablehlo `stablehlo/testdata/*.mlir`): JAX-generated
modules whose `main` calls `@inputs()` and `@expected()` (functions of constants), applies the
op under test and checks the result with `custom_call @check.<kind>(%result, %expected)`.

    python -m tools.corpus (DIR | GIT_DIR) [--limit N] [--match SUBSTR] [--json F]

Nothing is fetched: point it at a directory of .mlir files or at a git directory holding the
stablehlo repository (read with `git show HEAD:...`). Each module is rewritten so that the op
runs on device inputs, not on constants the compiler could fold: `main` takes the inputs as
parameters and returns the checked values; `@inputs` and `@expected` are compiled on their own
to produce the data. Outcomes are those of tools.outcome; modules this rewriting does not
understand (interpreter-only `check.*_const` forms, no check) are skipped and counted."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from tools.outcome import CLEAR, CRASH, PASS, WRONG, Outcome, classify_error, compare_leaves, table

SKIP = "skipped"
# A top-level function: its header line, its body up to the closing brace at function indent.
_FUNC = re.compile(r"^  func\.func (?:public |private )?@([\w.$-]+|\"[^\"\n]*\")\((.*?)\)(?: -> (.*?))? \{\n(.*?)^  \}\n",
                   re.M | re.S)
_CALL = re.compile(r"^\s*(%[\w]+)(?::(\d+))? = (?:func\.)?call @(inputs|expected)\(\)[^\n]*\n", re.M)
_CHECK = re.compile(r"^\s*(?:%[\w]+ = )?stablehlo\.custom_call @check\.(\w+)\((%[\w#]+), (%[\w#]+)\)"
                    r"[^\n]*?: \(([^\n]*)\) -> [^\n]*\n", re.M)
_RETURN = re.compile(r"^    (?:func\.)?return [^\n]*\n", re.M)
# check kinds that compare with a tolerance; expect_eq/eq compare exactly (floats: tightly).
_CLOSE = {"expect_close", "expect_almost_eq"}


@dataclass
class Rewritten:
    data: dict[str, str]           # "inputs"/"expected" -> a module whose main returns that data
    test: str                      # main(inputs...) -> checked values
    checks: list[tuple[str, int]]  # per test output: its check kind and its index in expected


def split_types(s: str) -> list[str]:
    """Split a comma-separated list of MLIR types at top level (tensor<...> nests)."""
    out, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "<({[" and 1 or 0
        depth -= ch in ">)}]" and 1 or 0
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


def rewrite(text: str) -> Rewritten | None:
    """The three modules for one test file, or None when the file is not in the supported form."""
    funcs = {m.group(1): m for m in _FUNC.finditer(text)}
    if not {"main", "inputs", "expected"} <= funcs.keys() or len(funcs) != text.count("func.func "):
        return None
    main = funcs["main"]
    body = main.group(4)
    calls = {m.group(3): m for m in _CALL.finditer(body)}
    checks = list(_CHECK.finditer(body))
    if set(calls) != {"inputs", "expected"} or not checks or "check." in _CHECK.sub("", body):
        return None
    data = {}
    for name in ("inputs", "expected"):
        f = funcs[name]
        data[name] = (f"module {{\n  func.func public @main() -> {f.group(3)} {{\n{f.group(4)}  }}\n}}\n")
    in_name, in_count = calls["inputs"].group(1), int(calls["inputs"].group(2) or 1)
    in_types = split_types(re.sub(r"\s*\{[^{}]*\}", "", _strip_parens(funcs["inputs"].group(3))))
    if len(in_types) != in_count:
        return None
    ex_name = calls["expected"].group(1)
    outs, out_types, kinds = [], [], []
    for c in checks:
        kind, a, b, types = c.group(1), c.group(2), c.group(3), split_types(c.group(4))
        m = re.fullmatch(re.escape(ex_name) + r"(?:#(\d+))?", b)
        if not m or len(types) != 2:
            return None
        outs.append(a)
        out_types.append(types[0])
        kinds.append((kind, int(m.group(1) or 0)))
    new_body = _CHECK.sub("", _CALL.sub("", body))
    args = [f"%corpus_in{i}" for i in range(in_count)]
    if in_count == 1:
        new_body = re.sub(re.escape(in_name) + r"\b(?!#)", args[0], new_body)
        outs = [re.sub(re.escape(in_name) + r"\b(?!#)", args[0], o) for o in outs]
    for i in range(in_count):
        new_body = new_body.replace(f"{in_name}#{i}", args[i])
        outs = [args[i] if o == f"{in_name}#{i}" else o for o in outs]
    new_body = _RETURN.sub(f"    return {', '.join(outs)} : {', '.join(out_types)}\n", new_body)
    params = ", ".join(f"{a}: {t}" for a, t in zip(args, in_types))
    others = "".join(m.group(0) for n, m in funcs.items() if n not in ("main", "inputs", "expected"))
    test = (f"module {{\n  func.func public @main({params}) -> ({', '.join(out_types)}) {{\n"
            f"{new_body}  }}\n{others}}}\n")
    return Rewritten(data, test, kinds)


def _strip_parens(s: str) -> str:
    s = s.strip()
    return s[1:-1] if s.startswith("(") and s.endswith(")") else s


def read(path: str) -> str:
    """A case id is a file path, or `git:GIT_DIR:PATH` for a file in a repository's HEAD."""
    if path.startswith("git:"):
        _, git_dir, rel = path.split(":", 2)
        return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{rel}"],
                              check=True, capture_output=True, text=True).stdout
    with open(path) as f:
        return f.read()


def run_case(path: str) -> Outcome:
    import tt_xla

    r = rewrite(read(path))
    if r is None:
        return Outcome(SKIP, "not in the inputs/expected/check form")
    try:
        ins = [np.asarray(x) for x in tt_xla.compile(r.data["inputs"])()]
        expected = [np.asarray(x) for x in tt_xla.compile(r.data["expected"])()]
        got = [np.asarray(x) for x in tt_xla.compile(r.test)(*ins)]
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        return classify_error(e)
    for i, (kind, idx) in enumerate(r.checks):
        mismatch = compare_leaves([got[i]], [expected[idx]], loose=kind in _CLOSE)
        if mismatch:
            return Outcome(WRONG, f"check.{kind}: {mismatch}")
    return Outcome(PASS)


def list_cases(source: str) -> list[str]:
    if os.path.isdir(os.path.join(source, "objects")):  # a bare git directory
        names = subprocess.run(["git", f"--git-dir={source}", "ls-tree", "--name-only", "HEAD",
                                "stablehlo/testdata/"], check=True, capture_output=True,
                               text=True).stdout.split()
        return [f"git:{source}:{n}" for n in names if n.endswith(".mlir")]
    return sorted(os.path.join(source, n) for n in os.listdir(source) if n.endswith(".mlir"))


def group_of(path: str) -> str:
    """The op a file tests: its name up to the first '_' followed by a dtype or shape word."""
    base = os.path.basename(path).removesuffix(".mlir")
    m = re.match(r"(.+?)_(?:dtypes?|shape|float|int|uint|bool|bfloat|complex|broadcasting|\d)", base)
    return m.group(1) if m else base


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a directory of .mlir files, or the stablehlo repo's git directory")
    ap.add_argument("--match", help="only files whose name contains this")
    ap.add_argument("--limit", type=int, help="at most N files per op, evenly spread")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", help="write every file's outcome here")
    a = ap.parse_args(argv)
    from tools.isolate import run_isolated

    cases = [c for c in list_cases(a.source) if not a.match or a.match in os.path.basename(c)]
    if a.limit:
        by: dict[str, list[str]] = defaultdict(list)
        for c in cases:
            by[group_of(c)].append(c)
        cases = [v[(i * len(v)) // a.limit] for v in by.values() for i in range(min(a.limit, len(v)))]
    t0 = time.monotonic()
    results = run_isolated("tools.corpus", cases, timeout=a.timeout, chunk=100,
                           on_result=lambda c, r: r.kind in (WRONG, CRASH) and print(
                               f"{r.kind}: {os.path.basename(str(c))}: {r.detail[:200]}", file=sys.stderr))
    counts: dict[str, Counter] = defaultdict(Counter)
    for c, r in results.items():
        counts[group_of(c)][r.kind] += 1
    skipped = sum(c[SKIP] for c in counts.values())
    print(table(sorted((g, dict(c)) for g, c in counts.items()), title="op"))
    print(f"\n{len(results)} files in {time.monotonic() - t0:.0f} s; {skipped} skipped (not in the "
          "inputs/expected/check form)")
    ops = Counter(r.op or "?" for r in results.values() if r.kind == CLEAR)
    print("Ops refused: " + ", ".join(f"{o} {n}" for o, n in ops.most_common()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({str(c): r.as_dict() for c, r in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
