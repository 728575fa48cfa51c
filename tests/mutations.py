"""Token-level mutations of real exported modules, and one compile-and-run case.

Shared by tests/test_fuzz_mutations.py (a bounded hypothesis run in CI) and
tools/fuzz_compile.py (long runs, each case in a worker subprocess so a crash is recorded).

A case is (seed module name, mutation seed): `mutant(name, seed)` replays it exactly. Mutations
touch only the code part of each line (never `loc(...)`), one to three at a time: a number,
a tensor dimension or an element type (one occurrence, or every occurrence of that size or
type, so the program often stays valid and reaches code generation with new shapes and types), an SSA operand, an op name,
a comparison keyword, a deleted token, or two swapped lines.
"""
from __future__ import annotations

import glob
import os
import random
import re

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "data")
SEEDS = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(DATA, "*.mlir")))

# What a case may end in: a result, or one of these clear errors. Anything else is a bug.
CLEAR = ("ParseError", "VerificationError", "UnsupportedError", "DeviceError")

_LOC = re.compile(r"\sloc\(.*$")
_TOKEN = re.compile(r"%[\w#.$-]+|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[A-Za-z_][\w.$]*|\S")
_NUM = re.compile(r"(?<![\w%#.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_TENSOR = re.compile(r"tensor<([^<>]*?)>")
_DIM = re.compile(r"(?<![\w?])(\d+)x")
_ELEMENTS = ["f32", "f16", "bf16", "f64", "i1", "i8", "i32", "i64", "ui8", "ui32"]
_ELEM = re.compile(r"(?<=[x<])(" + "|".join(_ELEMENTS) + r")(?=>)")
_SSA = re.compile(r"%[\w#.$-]+")
_OP = re.compile(r"stablehlo\.\w+")
_OPS = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "negate", "exponential",
        "log", "tanh", "abs", "sqrt", "and", "or", "xor", "not", "compare", "select", "convert",
        "reshape", "transpose", "broadcast_in_dim", "slice", "reverse", "concatenate", "pad",
        "reduce", "dot_general", "iota", "constant", "clamp", "remainder", "power", "sort",
        "bitcast_convert", "shift_left", "popcnt", "round_nearest_even", "floor", "logistic"]
_KEYWORDS = ["EQ", "NE", "LT", "LE", "GT", "GE", "FLOAT", "SIGNED", "UNSIGNED", "TOTALORDER"]
_KEYWORD = re.compile(r"\b(" + "|".join(_KEYWORDS) + r")\b")
_NUMBERS = [0, 1, 2, 3, -1, -2, 31, 32, 33, 64, 255, 1 << 16, (1 << 31) - 1, 1 << 31, 1 << 32,
            (1 << 63) - 1, -(1 << 63), 1 << 64]


def seed_text(name: str) -> str:
    with open(os.path.join(DATA, f"{name}.mlir")) as f:
        return f.read()


def _code_lines(lines: list[str]) -> list[int]:
    """Indices of lines holding ops (not `#loc` definitions, braces or blank lines)."""
    return [i for i, line in enumerate(lines)
            if line.strip() and not line.lstrip().startswith(("#loc", "}", "module"))]


def _split(line: str) -> tuple[str, str]:
    m = _LOC.search(line)
    return (line, "") if m is None else (line[:m.start()], line[m.start():])


def _replace_one(code: str, pattern: re.Pattern, rng: random.Random, new) -> str | None:
    hits = list(pattern.finditer(code))
    if not hits:
        return None
    m = rng.choice(hits)
    return code[:m.start()] + new(m) + code[m.end():]


def _number(rng: random.Random, old: str) -> str:
    try:
        n = int(float(old))
    except ValueError:
        n = 0
    return str(rng.choice(_NUMBERS + [n + 1, n - 1, n * 2, rng.randint(0, 100)]))


def mutate_once(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    code_idx = _code_lines(lines)
    if not code_idx:
        return text
    kind = rng.choice(["number", "number", "dim", "dim_everywhere", "dim_everywhere",
                       "dim_everywhere", "element", "element_everywhere", "element_everywhere",
                       "ssa", "op", "keyword", "delete", "swap"])
    if kind == "element_everywhere":  # one element type changed in every type
        present = sorted(set(_ELEM.findall(text)))
        old, new = rng.choice(present or _ELEMENTS), rng.choice(_ELEMENTS)
        return _ELEM.sub(lambda m: new if m.group(1) == old else m.group(1), text)
    if kind == "dim_everywhere":  # the same size changed in every type: shapes stay consistent
        dims = sorted({m.group(1) for t in _TENSOR.finditer(text) for m in _DIM.finditer(t.group(1) + "x")})
        if dims:
            old, new = rng.choice(dims), str(rng.choice([0, 1, 2, 3, 5, 31, 32, 33, 65, 100]))
            return _TENSOR.sub(lambda t: "tensor<" + _DIM.sub(
                lambda m: (new if m.group(1) == old else m.group(1)) + "x", t.group(1)) + ">", text)
        kind = "dim"
    if kind == "swap":
        i, j = rng.choice(code_idx), rng.choice(code_idx)
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    i = rng.choice(code_idx)
    code, loc = _split(lines[i])
    out: str | None
    if kind == "number":
        out = _replace_one(code, _NUM, rng, lambda m: _number(rng, m.group(0)))
    elif kind == "dim":
        out = _replace_one(code, _DIM, rng, lambda m: _number(rng, m.group(1)).lstrip("-") + "x")
    elif kind == "element":
        out = _replace_one(code, _ELEM, rng, lambda m: rng.choice(_ELEMENTS))
    elif kind == "ssa":
        names = sorted(set(_SSA.findall(text)))
        out = _replace_one(code, _SSA, rng, lambda m: rng.choice(names))
    elif kind == "op":
        out = _replace_one(code, _OP, rng, lambda m: "stablehlo." + rng.choice(_OPS))
    elif kind == "keyword":
        out = _replace_one(code, _KEYWORD, rng, lambda m: rng.choice(_KEYWORDS))
    else:  # delete one token
        toks = list(_TOKEN.finditer(code))
        if toks:
            m = rng.choice(toks)
            out = code[:m.start()] + code[m.end():]
        else:
            out = None
    if out is None:
        return text
    lines[i] = out + loc
    return "\n".join(lines)


def mutant(name: str, seed: int) -> str:
    """The case (name, seed): 1-3 mutations of the seed module `name`."""
    rng = random.Random(f"{name}:{seed}")
    text = seed_text(name)
    for _ in range(rng.choice([1, 1, 2, 3])):
        text = mutate_once(text, rng)
    return text


def _input(spec, rng: np.random.Generator, edges: bool = True) -> np.ndarray:
    shape, dt = tuple(spec.shape), np.dtype(spec.dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        return rng.integers(-5 if dt.kind == "i" else 0, 6, size=shape).astype(dt)
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40], np.float32)
    if edges:
        flat[: min(flat.size, 5)] = special[: min(flat.size, 5)]
    return x.astype(dt)


MAX_RUN_BYTES = 256 << 20  # larger programs are compiled but not run (a shared test machine)


def run_case(text: str, results: list | None = None, edges: bool = True) -> str:
    """Parse, verify, compile, load and run `text` on random inputs; returns 'ok', 'compiled'
    (too big to run here) or the clear error's class name. Other exceptions propagate.
    `results`, if given, receives (inputs, outputs) of a run as numpy arrays."""
    import tt_xla
    from tt_xla.compiler import compile_text
    from tt_xla.errors import UnsupportedError, VerificationError
    from tt_xla.hlo_parser import ParseError
    from tt_xla.runtime import DeviceError

    try:
        prog = compile_text(text, "mutant.mlir")
        if sum(prog.binding_bytes) > MAX_RUN_BYTES:
            return "compiled"
        exe = tt_xla.compile(text)
        try:
            rng = np.random.default_rng(0)
            args = [_input(s, rng, edges) for s in exe.input_specs]
            outs = [np.asarray(o) for o in exe(*args)]
        finally:
            tt_xla.client().clear_cache()  # one executable per case: do not keep them all
        if results is not None:
            results.extend([args, outs])
        return "ok"
    except (ParseError, VerificationError, UnsupportedError, DeviceError) as e:
        return type(e).__name__


def xla_reference(text: str, args: list[np.ndarray] | None) -> tuple[bool, object]:
    """The oracle: XLA:CPU (through jaxlib, whose MLIR verifier is the StableHLO one) compiles
    `text` and, given `args`, runs it. Returns (accepted, outputs or the error message).
    Uses jaxlib's backend directly (no public API compiles MLIR text): for fuzzing only."""
    import jax
    from jax._src import compiler, xla_bridge

    jax.config.update("jax_enable_x64", True)  # f64/i64 inputs stay 64-bit
    backend = xla_bridge.get_backend("cpu")
    try:
        # jax.jit's own options: the oracle is what jax.jit would do with this text
        options = compiler.get_compile_options(num_replicas=1, num_partitions=1)
        exe = backend.compile_and_load(text, backend.devices()[:1], options)
    except Exception as e:  # noqa: BLE001 (any refusal is the verdict)
        return False, str(e).split("\n")[0][:200]
    if args is None:
        return True, None
    return True, [np.asarray(o) for o in exe.execute([jax.device_put(a) for a in args])]


SYNTAX_GAPS = ("expects different type than prior uses", "literal for a floating",
               "integer constant out of range", "invalid dimension", "expected ','", "expected ':'",
               "custom op")  # `%0 = dense<...>`: an op named "dense", unsupported by both


# Spec rules MLIR's verifier does not enforce (StableHLO spec, compare C3: compare_type SIGNED
# on floats is invalid, yet XLA compiles it).
STRICTER = ("compare_type",)


def _refusal(text: str) -> str:
    from tt_xla.compiler import compile_text

    try:
        compile_text(text)
    except Exception as e:  # noqa: BLE001 (only the message matters)
        return str(e)
    return ""


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "biu":
        return bool((a == b).all())
    x, y = a.astype(np.float64), b.astype(np.float64)
    tol = 1e-3 if a.dtype.itemsize >= 4 else 5e-2
    return bool(np.allclose(x, y, rtol=tol, atol=tol, equal_nan=True))


def check_case(text: str) -> tuple[str, str]:
    """run_case plus the XLA:CPU oracle. The verdict is 'agree', or one of: 'verifier gap'
    (we ran what StableHLO's verifier rejects), 'syntax gap' (the same, for text MLIR's parser
    refuses and ours reads), 'false reject' (we refused as invalid what it accepts; 'stricter
    than MLIR' for a spec rule its verifier skips),
    'mismatch' (both ran, results differ; 'on edge values' when finite inputs agree), 'not
    supported' (we refuse, XLA runs it)."""
    got: list = []
    outcome = run_case(text, got)
    accepted, ref = xla_reference(text, got[0] if got else None)
    if outcome == "VerificationError":
        if accepted and any(rule in _refusal(text) for rule in STRICTER):
            return outcome, "stricter than MLIR"
        return outcome, "false reject" if accepted else "agree"
    if outcome in ("ParseError", "DeviceError", "compiled") or (outcome == "UnsupportedError" and accepted):
        return outcome, "not supported" if accepted and outcome != "compiled" else "agree"
    if not accepted:  # we ran it, or refused it as unsupported after it passed the verifier
        # MLIR checks a use's written type against the value's at parse time; our parser
        # reads only the value's (the verifier re-derives each result from it), and it takes
        # integer literals for float constants, and out of range for their type: syntax, not
        # meaning (the parser's to fix; the program we run is the one the values describe).
        syntax = any(m in ref for m in SYNTAX_GAPS)
        return outcome, f"{'syntax gap' if syntax else 'verifier gap'}: {ref}"
    if outcome == "UnsupportedError" or _agree(got[1], ref):
        return outcome, "agree"
    # XLA:CPU's own NaN handling varies with shape (a max-reduction over (33, 16, 16) drops
    # NaN, over (2, 16, 16) keeps it): tell mismatches that need edge values apart.
    got = []
    run_case(text, got, edges=False)
    _, ref = xla_reference(text, got[0])
    return outcome, "mismatch on edge values" if _agree(got[1], ref) else "mismatch"


def _agree(ours: list[np.ndarray], ref: list[np.ndarray]) -> bool:
    return len(ref) == len(ours) and all(_close(a, b) for a, b in zip(ours, ref))
