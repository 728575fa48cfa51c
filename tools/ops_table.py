"""docs/ops.md, the op-support table, from the test suite's results.

    TT_XLA_OPS_LOG=/tmp/ops.json pytest -q        # the suite logs what it compiled (tests/conftest.py)
    python -m tools.ops_table /tmp/ops.json       # writes docs/ops.md

or both at once: `python -m tools.ops_table --run [pytest args...]`.

While logging, every `Client.compile` in a test records each op of the module (regions
included) with the element types of its operands and results, or the error it raised; the
test's outcome is recorded with it. An op supports an element type when a test that passed
compiled and ran it on that type. The op list is every op of jaxlib's StableHLO and CHLO
dialects; an op no passing test ran gets the error the compiler gave for it in the tests, else
what legalize says about it (no lowering), else "not exercised by the tests".
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from typing import Any, Iterator

LOG_ENV = "TT_XLA_OPS_LOG"
MAX_REASON = 160


# ----------------------------------------------------------------------------- logging (pytest)
def _walk(ops: list) -> Iterator[Any]:
    for op in ops:
        yield op
        for region in op.regions:
            for block in region.blocks:
                yield from _walk(block.ops)


def module_ops(text: str) -> list[tuple[str, list[str]]]:
    """(op name, element types of its operands and results) for every op in the text."""
    from tt_xla.hlo_parser import parse_module
    try:
        module = parse_module(text)
    except Exception:
        return []
    out = []
    for fn in module.functions.values():
        for op in _walk(fn.body.ops):
            types = sorted(t for t in {getattr(v.type, "element", None) for v in (*op.operands, *op.results)} if t)
            out.append((op.name, types))
            if op.name == "stablehlo.custom_call":  # its target is the fact: logged as "@target" too
                out.append(("@" + str(op.attributes.get("call_target_name", "?")), types))
    return out


class OpsLog:
    """A pytest plugin: per test, the ops it compiled and the errors compiles raised."""

    def __init__(self, path: str):
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}
        self.current: str | None = None

    def pytest_configure(self, config: Any) -> None:
        import importlib
        client = importlib.import_module("tt_xla.client")  # the module, not tt_xla.client()
        original = client.Client.compile
        log = self

        def compile(self_: Any, text: str, *args: Any, **kwargs: Any) -> Any:
            try:
                exe = original(self_, text, *args, **kwargs)
            except Exception as e:
                log.record(text, e)
                raise
            log.record(text, None)
            return exe
        client.Client.compile = compile

    def record(self, text: str, error: BaseException | None) -> None:
        if self.current is None:
            return
        entry = self.tests.setdefault(self.current, {"passed": False, "ops": [], "errors": []})
        if error is None:
            entry["ops"].extend(module_ops(text))
        else:
            entry["errors"].append({"op": getattr(error, "op", None), "kind": type(error).__name__,
                                    "message": str(error).splitlines()[0] if str(error) else "",
                                    "types": sorted({t for _, ts in module_ops(text) for t in ts})})

    def pytest_runtest_setup(self, item: Any) -> None:
        self.current = item.nodeid

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" and report.nodeid in self.tests:
            self.tests[report.nodeid]["passed"] = report.passed

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        with open(self.path, "w") as f:
            json.dump(self.tests, f)


# ----------------------------------------------------------------------------- the table
def dialect_ops() -> dict[str, list[str]]:
    """Every op jaxlib's StableHLO and CHLO dialects define (what a producer can write)."""
    from jaxlib.mlir.dialects import chlo, stablehlo
    out = {}
    for name, mod in (("stablehlo", stablehlo), ("chlo", chlo)):
        out[name] = sorted({getattr(mod, c).OPERATION_NAME for c in dir(mod)
                            if c.endswith("Op") and hasattr(getattr(mod, c), "OPERATION_NAME")})
    return out


def _legalize_reason(op: str) -> str | None:
    """Why legalize refuses the op outright, or None if it has a handler for it."""
    from tt_xla.compiler.control import CONTROL
    from tt_xla.compiler.legalize import Legalizer
    from tt_xla.compiler.ops import BY_HLO
    from tt_xla.compiler.special import FUNCTIONS
    if op in CONTROL or op in ("stablehlo.composite", "stablehlo.return"):
        return None  # control.py's and inline.py's
    dialect, _, name = op.partition(".")
    inner = name[len("broadcast_"):] if name.startswith("broadcast_") else None
    if name in BY_HLO or (dialect == "chlo" and name in FUNCTIONS) or hasattr(Legalizer, "_" + name):
        return None
    if dialect == "chlo" and inner is not None and (inner in BY_HLO or inner in FUNCTIONS or inner in ("compare", "select")):
        return None
    return "no lowering (legalize: operation is not supported by tt-xla)"


_WHERE = re.compile(r" at \S+:\d+:\d+.*$| at <[^>]*>.*$")  # the test's source line: not the op's fact


def _short(msg: str) -> str:
    msg = msg.replace("|", "\\|")
    return msg if len(msg) <= MAX_REASON else msg[:MAX_REASON - 3] + "..."


def table(log: dict[str, dict[str, Any]]) -> str:
    seen: dict[str, set[str]] = defaultdict(set)
    errors: dict[str, Counter] = defaultdict(Counter)
    for entry in log.values():
        if entry["passed"]:
            for op, types in entry["ops"]:
                seen[op].update(types)
        for e in entry["errors"]:
            # UnsupportedError is the compiler refusing a valid op; a VerificationError is a
            # test's malformed program, not a fact about the op
            if e["op"] and e["kind"] == "UnsupportedError":
                errors[e["op"]][_WHERE.sub("", e["message"])] += 1
    lines = ["# Op support", "",
             "Generated by `python -m tools.ops_table` from a run of the test suite (do not edit by hand).",
             "An element type is listed when a test that passed compiled and ran the op on it (operand",
             "or result types, so `convert` lists both sides); for ops no passing test ran, the reason",
             "is the compiler's own error from the tests, or legalize's. `func.*` ops and `stablehlo."
             "composite` are inlined.", ""]
    ops = dialect_ops()
    for dialect, names in ops.items():
        lines += [f"## {dialect.upper() if dialect == 'chlo' else 'StableHLO'}", "",
                  "| op | element types | refused (from the tests) |", "|---|---|---|"]
        for op in names:
            types = ", ".join(sorted(seen.get(op, ()), key=_type_order))
            refused = "; ".join(_short(m) for m, _ in errors[op].most_common(2))
            if not types:
                refused = refused or _legalize_reason(op) or "not exercised by the tests"
            lines.append(f"| `{op}` | {types or '—'} | {refused} |")
        lines.append("")
    lines += _targets(seen, errors)
    n_ok = sum(1 for names in ops.values() for op in names if seen.get(op))
    n_all = sum(len(names) for names in ops.values())
    lines.append(f"{n_ok} of {n_all} ops run in at least one element type.")
    return "\n".join(lines) + "\n"


_TARGET = re.compile(r"target @(\w+)")


def _targets(seen: dict[str, set[str]], errors: dict[str, Counter]) -> list[str]:
    """The custom_call targets the tests met: run (with the element types), or refused by name."""
    refused = {m.group(1) for msg in errors["stablehlo.custom_call"] for m in [_TARGET.search(msg)] if m}
    ran = {op[1:] for op, types in seen.items() if op.startswith("@") and types}
    lines = ["## custom_call targets", "",
             "Every `stablehlo.custom_call` target the tests compiled: run (expanded by the compiler into",
             "device programs: `compiler/linalg.py`, `eig.py`, `tridiag.py`) or refused by name.", "",
             "| target | element types | status |", "|---|---|---|"]
    for t in sorted(ran | refused):
        types = ", ".join(sorted(seen.get("@" + t, ()), key=_type_order))
        lines.append(f"| `@{t}` | {types or '—'} | {'runs' if t in ran else 'refused: not supported by tt-xla'} |")
    return lines + [""]


_ORDER = ["i1", "i2", "i4", "i8", "i16", "i32", "i64", "ui2", "ui4", "ui8", "ui16", "ui32", "ui64",
          "f16", "bf16", "f32", "f64"]


def _type_order(t: str) -> tuple[int, str]:
    return (_ORDER.index(t) if t in _ORDER else len(_ORDER), t)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", nargs="?", default="/tmp/tt_xla_ops.json", help="the log a logged pytest run wrote")
    ap.add_argument("--run", nargs=argparse.REMAINDER, help="run pytest (with these arguments) to write the log first")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "ops.md"))
    args = ap.parse_args(argv)
    if args.run is not None:
        env = dict(os.environ, **{LOG_ENV: args.log})
        subprocess.run([sys.executable, "-m", "pytest", "-q", *args.run], env=env, check=False)
    with open(args.log) as f:
        log = json.load(f)
    with open(args.out, "w") as f:
        f.write(table(log))
    print(f"wrote {args.out} from {len(log)} tests")


if __name__ == "__main__":
    main()
