"""Fuzz the StableHLO parser with mutations of real module text.

Every input must either parse or raise ParseError with a line:col and a message that is not
"internal parser error" (a parser bug surfacing as an exception), in bounded time. Mutations of
the corpus in tests/data/corpus: byte flips, token deletion / duplication / swap, number
mutation (huge, negative, hex, float for int...), truncation and insertion of syntax pieces,
one to three per case.

    PYTHONPATH=. python tools/fuzz_parser.py --cases 100000 [--seed 1] [--out /tmp/fuzz-failures]

Prints a summary (cases, parsed, ParseErrors, failures, slowest case) and writes each failing
input to --out. tests/test_parser_fuzz.py runs the same mutations for a bounded count.
"""
from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time

from tt_xla.hlo_parser import ParseError, parse_module
from tt_xla.hlo_parser.lexer import split_tokens

CORPUS_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
PIECES = ["{", "}", "(", ")", "<", ">", "[", "]", ",", ":", "=", "%0", "%1#3", "%arg0", "#loc3", "loc(",
          '"', "dense<", "0x", "tensor<", "x", "->", "^bb0", "@f", "\n", "?", "-", "1.5e", "#stablehlo<",
          "stablehlo.add", "func.func", "return", "//", "array<i64:", "tuple<", "!stablehlo.token", "...",
          "\x00", "é", "\\", "0xFFFFFFFFFFFFFFFFFFFF", "9" * 30, "dims = [", "applies", "reducer",
          "across dimensions = [0]", "cond {", "do {", "(%x init: %y)", "i4", "f4E2M1FN", "*", "#0"]
NUMBERS = ["0", "-1", "1", "2", "-0", "7", "63", "64", "2147483648", "9223372036854775807",
           "9223372036854775808", "18446744073709551616", "-9223372036854775809", "99999999999999999999",
           "1" + "0" * 60, "1e400", "-1e400", "nan", "inf", "0x7FC00000", "0xFFFFFFFFFFFFFFFF", "1.5",
           "-2.5e-3", "4294967296", "65536", "268435456", "0x"]


def corpus() -> list[str]:
    return [p.read_text() for p in sorted(CORPUS_DIR.glob("*.mlir"))]


def mutate(text: str, rng: random.Random) -> str:
    """One to three random mutations of `text`."""
    for _ in range(rng.randint(1, 3)):
        how = rng.choice(["flip", "delete", "duplicate", "swap", "number", "truncate", "insert",
                          "delete_span"])
        if how in ("flip", "truncate", "insert", "delete_span") or not text:
            i = rng.randrange(len(text) + 1)
            if how == "flip" and text:
                i = min(i, len(text) - 1)
                c = chr(rng.randrange(256)) if rng.random() < 0.5 else rng.choice("{}()<>[],:=%#@^\"x0123456789-.e")
                text = text[:i] + c + text[i + 1:]
            elif how == "truncate":
                text = text[:i]
            elif how == "insert":
                text = text[:i] + rng.choice(PIECES) + text[i:]
            else:
                text = text[:i] + text[i + rng.randint(1, 40):]
            continue
        toks = split_tokens(text)
        if not toks:
            continue
        i = rng.randrange(len(toks))
        if how == "delete":
            del toks[i]
        elif how == "duplicate":
            toks.insert(i, toks[i])
        elif how == "swap" and len(toks) > 1:
            j = min(i + 1, len(toks) - 1) if rng.random() < 0.7 else rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif how == "number":
            nums = [k for k, t in enumerate(toks) if t[:1].isdigit() or t[:2] in ("-1", "-2", "-0")]
            if nums:
                k = rng.choice(nums)
                toks[k] = rng.choice(NUMBERS)
        text = rng.choice([" ", "\n", " "]).join(toks)
    return text


def check(text: str) -> str:
    """'parsed' or 'error'; raises AssertionError describing a failure."""
    try:
        parse_module(text)
        return "parsed"
    except ParseError as e:
        assert not e.message.startswith("internal parser error"), e.message
        assert e.line >= 1 and e.col >= 1, (e.line, e.col)
        assert str(e).count("\n") == 2
        return "error"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="/tmp/tt-xla-parser-fuzz")
    args = ap.parse_args()
    texts = corpus()
    rng = random.Random(args.seed)
    out = pathlib.Path(args.out)
    counts = {"parsed": 0, "error": 0, "failure": 0}
    slowest = (0.0, -1)
    start = time.time()
    for case in range(args.cases):
        text = mutate(rng.choice(texts), rng)
        t0 = time.perf_counter()
        try:
            counts[check(text)] += 1
        except Exception as e:  # noqa: BLE001 - a failure of any kind is recorded
            counts["failure"] += 1
            out.mkdir(parents=True, exist_ok=True)
            (out / f"case{case}.mlir").write_text(text, errors="surrogateescape")
            print(f"case {case}: {type(e).__name__}: {str(e)[:200]}", flush=True)
        dt = time.perf_counter() - t0
        if dt > slowest[0]:
            slowest = (dt, case)
        if (case + 1) % 10_000 == 0:
            print(f"{case + 1} cases, {counts}, {time.time() - start:.0f} s", flush=True)
    print(f"done: {args.cases} cases (seed {args.seed}): {counts['parsed']} parsed, {counts['error']} "
          f"ParseErrors, {counts['failure']} failures; slowest case {slowest[1]} took {slowest[0] * 1e3:.1f} ms "
          f"(host under load); {time.time() - start:.0f} s total")
    return 1 if counts["failure"] else 0


if __name__ == "__main__":
    sys.exit(main())
