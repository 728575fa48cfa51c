"""Device toolchain: compiles a kernel translation unit into a loadable kernel library.

The compiler emits one C11 translation unit per executable (kernels plus the program
descriptor, ``#include "ttrt_kernel.h"``). Here it is compiled with the host C compiler into a
shared library that ``Device.load_program`` dlopens.

A C compiler is required at run time: ``$CC`` if set, else ``cc`` (gcc or clang). Libraries are
cached on disk in ``$TT_XLA_CACHE_DIR`` or ``~/.cache/tt_xla/kernels``, keyed by the sha256 of
(source, compiler command, flags, compiler version, device headers); building the same source
again compiles nothing.

The cache does not trust its files: next to each library ``<key>.so`` a manifest
``<key>.json`` records the key and the sha256 and size of the library as built. Before a
library is returned for loading, its bytes are hashed and compared with the manifest; a
truncated, garbage, bit-flipped or swapped library (or a missing or foreign manifest) is
rebuilt, never loaded. Files are written under temporary names and renamed into place, and
builders of one key take a per-key file lock, so concurrent processes sharing the cache are
safe and build each library once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..files import atomic_write

__all__ = ["ToolchainError", "build_kernel_library", "cache_key", "include_dir", "cache_dir", "FLAGS", "stats",
           "BuildRecord", "Step", "last_build"]

# -fwrapv: generated integer code relies on two's-complement wrapping (StableHLO semantics);
# spelling it with unsigned casts instead trips a GCC 12 vectorizer bug on widening sums.
# The optimization level is per piece of the source (see compiler.program.PART): -O2 with the
# vectorizer on for kernels with much work (the loops vectorize as well as at -O3, and build in
# about half the time), -O1 with the vectorizer for the rest, and for kernels with little work
# -O1 with more passes off ("cold", below). Compile time is what a user
# waits for on a first call. -fexpensive-optimizations keeps FMA contraction on at -O1, so a
# kernel's results do not depend on its level.
FLAGS = ("-std=c11", "-ftree-vectorize", "-fvect-cost-model=dynamic", "-fPIC", "-shared",
         "-fno-math-errno", "-fno-trapping-math", "-fwrapv",
         "-ffp-contract=fast",  # a*b+c as one FMA, as XLA:CPU (LLVM) contracts it
         "-fopenmp-simd", "-march=native")
# -fno-ivopts at -O1: induction-variable optimization was a tenth of the C compiler's time over a
# training step's kernels (all -O1) and the step ran no slower without it (CPU time 1.004x, one
# process, under load); its results are the same bits.
# Measured and not taken (GCC 12, a training step's program, all -O1; instructions by valgrind,
# host time interleaved in one process under load): -fno-tree-ch (-14% of the C compiler's work)
# stops the vectorizer (49 loops of a unit vectorized, then none); -fno-tree-vectorize (-10%)
# made the step itself 1.37x slower; -fno-tree-dominator-opts with -fno-thread-jumps (-5%) left
# small layernorm, gather and max-pool kernels 1.02-1.07x slower (jump threading alone is off,
# below: it changed little code).
# At -O1 five more passes are off. Over the -O1 functions of the benchmark programs (124, the
# training step's 62 among them) 80 kept their code instruction for instruction, 25 products
# differ by two vector stores (the multicast unmark as scalar stores), the others have a loop more
# vectorized or are a few instructions apart; the bits are the same, and the step, gather and
# conv rows ran level (0.92-1.03x, interleaved in one process, under load). The C compiler's work over the step's two units
# went 4.589 -> 3.995 G instructions (valgrind, cc1 + as): -fno-tree-bit-ccp (known-bits constant
# propagation) -5.3%, -fno-thread-jumps -3.9%, -fno-tree-slp-vectorize (straight-line vectors;
# the loops' vectorizer stays) -2.6%, -fno-ipa-modref/-pure-const/-reference (kernels call
# only noipa helpers and the runtime) -0.9%. -O2 keeps them all: there bit-ccp feeds the
# vectorizer's alignment choices (ReLU's and ELU's loops grew by half without it).
_O1 = ("-O1", "-fexpensive-optimizations", "-fno-ivopts", "-fno-tree-bit-ccp", "-fno-thread-jumps",
       "-fno-tree-slp-vectorize", "-fno-ipa-modref", "-fno-ipa-pure-const", "-fno-ipa-reference")
# "cold": kernels with little work (compiler._cold: a few microseconds of host time a call) add
# eleven flags turning off what pays only in long loops: points-to analysis, RTL loop-invariant motion,
# dead-store elimination, branch-probability guessing, scalar replacement of aggregates,
# if-conversion, code sinking, and register allocation by one region with the cheaper coloring.
# The vectorizer stays (without it a forward pass ran 1.48x as long) and so does FMA contraction
# (the same bits at every level). Over a 2-layer transformer's programs (all of their kernels
# cold) the C compiler's work went 1.629 -> 1.371 G instructions (forward pass) and 4.074 ->
# 3.382 G (value_and_grad; valgrind, cc1 + as, both units) while their kernels' host time went
# 1.02x and 1.01x (sums of per-kernel minimums over 40 profiles interleaved in one process, under
# load 9; per-kernel medians, noisier, 1.01-1.03x in three runs and 1.12x in one), same bits.
# Measured and not taken for cold: -fno-tree-copy-prop -fno-forward-propagate -fno-cprop-registers
# (3.4% less work; the forward pass's kernels 1.14x in one of two runs).
_COLD = ("-fno-tree-pta", "-fno-move-loop-invariants", "-fno-tree-dse", "-fno-dse", "-fno-guess-branch-probability",
         "-fno-tree-sra", "-fno-if-conversion", "-fno-if-conversion2", "-fno-tree-sink", "-fira-region=one",
         "-fira-algorithm=priority")
LEVELS = {"O2": ("-O2",), "O1": _O1, "cold": (*_O1, *_COLD)}
# Pieces at a level named here compile in the units of another, each under `#pragma GCC optimize`
# with its own extra flags (the same code as those flags on the command line): a unit of its own
# would cost a compiler process's fixed work (about 50 M instructions) and the balance of the split.
UNIT_LEVEL = {"cold": "O1"}
DEFAULT_LEVEL = "O2"  # for source without part markers
# The link of a kernel library: no C start files or default libraries (the library has no
# constructors; the libc and libm functions kernels call are bound when it is loaded, from the
# process that loads it, as they always were for libm), and libgcc's static helpers for what the
# target lacks. It ends the build, after every unit: 7.7 M instructions where the default link
# took 40 M (valgrind; 30-70 ms -> 30 ms of wall time, under load).
LINK = ("-nostdlib",)
LINK_LIBS = ("-lgcc",)

# Process-wide build statistics (tests use them to prove a cache hit compiled nothing).
stats = {"compiles": 0, "cache_hits": 0, "rejected": 0}

_PKG_DIR = Path(__file__).resolve().parent
_SRC_ROOT = _PKG_DIR.parent.parent  # repository root when running from a checkout


@dataclass(frozen=True)
class Step:
    """One compiler process of a build: what it did, when it ran (time.perf_counter seconds) and
    the CPU seconds it and its children (cc1, as, ld) used (None where os.wait4 is missing)."""
    what: str
    start: float
    end: float
    cpu: float | None


@dataclass
class BuildRecord:
    """A library request: its key and each compiler process run (in start order). `meanwhile` is
    when the caller's work during the build ran."""
    key: str
    start: float
    end: float = 0.0
    steps: list[Step] = field(default_factory=list)
    meanwhile: tuple[float, float] | None = None

    @property
    def cached(self) -> bool:
        """The cache served it: no compiler process ran."""
        return not self.steps


# The most recent build_kernel_library of this process (for `python -m benchmarks.compile_timeline`).
last_build: BuildRecord | None = None


class ToolchainError(RuntimeError):
    """The C compiler failed (or is missing). ``source_path`` is the kept source file."""

    def __init__(self, message: str, source_path: Path | None = None, stderr: str = ""):
        super().__init__(message)
        self.source_path = source_path
        self.stderr = stderr


def _package_dirs() -> list[Path]:
    """Directories of this package: the module's own, plus any extra search locations an
    editable install adds (scikit-build-core keeps built files outside the source tree)."""
    import tt_xla.runtime as rt

    dirs = [_PKG_DIR]
    for p in getattr(rt, "__path__", []):
        if Path(p) not in dirs:
            dirs.append(Path(p))
    return dirs


@functools.lru_cache(maxsize=None)
def include_dir() -> Path:
    """Directory holding ttrt.h and ttrt_kernel.h (installed copy, else the source tree's)."""
    for d in _package_dirs():
        if (d / "include" / "ttrt_kernel.h").is_file():
            return d / "include"
    src = _SRC_ROOT / "native" / "include"
    if (src / "ttrt_kernel.h").is_file():
        return src
    raise ToolchainError("tt_xla runtime headers not found (is the package installed?)")


def cache_dir() -> Path:
    d = Path(os.environ.get("TT_XLA_CACHE_DIR") or Path.home() / ".cache" / "tt_xla" / "kernels")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or "cc")


@functools.lru_cache(maxsize=None)
def _compiler_version(cc: tuple[str, ...]) -> str:
    try:
        r = subprocess.run([*cc, "--version"], capture_output=True, text=True, check=False)
    except OSError as e:
        raise ToolchainError(f"C compiler {' '.join(cc)!r} not found: the tt_xla device toolchain "
                             f"needs a host C compiler (set $CC): {e}") from None
    return r.stdout + r.stderr


@functools.lru_cache(maxsize=None)
def _header_digest(inc: Path) -> bytes:
    h = hashlib.sha256()
    for f in sorted(inc.glob("*.h")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.digest()


def _file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _manifest_path(lib: Path) -> Path:
    return lib.with_suffix(".json")


def _write_manifest(lib: Path, key: str) -> None:
    digest, size = _file_digest(lib)
    atomic_write(_manifest_path(lib), json.dumps({"key": key, "sha256": digest, "size": size}).encode())


def _verified(lib: Path, key: str) -> bool:
    """Whether `lib` is the library the manifest says was built for `key`, byte for byte.
    Anything else (no library, no or unreadable manifest, another key's manifest, a size or
    hash mismatch) is not loaded."""
    try:
        meta = json.loads(_manifest_path(lib).read_bytes())
        if not isinstance(meta, dict) or meta.get("key") != key:
            return False
        if lib.stat().st_size != meta.get("size"):
            return False
        return _file_digest(lib) == (meta.get("sha256"), meta.get("size"))
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _key_lock(d: Path, key: str):
    """An exclusive lock per cache key across processes (so two builders of one program
    build it once); a no-op where fcntl is missing, where atomic renames still keep it safe."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(d / f"{key}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _cached(key: str, lib: Path, build) -> Path:
    """Return `lib` if it verifies against its manifest, else build it (under the key's lock,
    re-checking first: another process may have just built it) and record its manifest."""
    if _verified(lib, key):
        stats["cache_hits"] += 1
        return lib
    with _key_lock(lib.parent, key):
        if _verified(lib, key):
            stats["cache_hits"] += 1
            return lib
        if lib.exists() or _manifest_path(lib).exists():
            stats["rejected"] += 1  # corrupt, foreign or half-written: never loaded, rebuilt
            with contextlib.suppress(OSError):
                _manifest_path(lib).unlink()
        build()
        _write_manifest(lib, key)
    return lib


class _Once:
    """The caller's work to do while the C compiler runs (`build_kernel_library`'s `meanwhile`),
    run exactly once: as soon as the compiler processes are started, so that Python work
    cannot hold the GIL while the build still has processes to start, or at the end of a build
    that started none (a cache hit)."""

    def __init__(self, fn: Callable[[], None] | None, record: BuildRecord):
        self.fn, self.record = fn, record

    def __call__(self) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            t0 = time.perf_counter()
            try:
                fn()
            finally:
                self.record.meanwhile = (t0, time.perf_counter())


def _run(jobs: list[tuple[str, list[str]]], record: BuildRecord,
         meanwhile: Callable[[], None] = lambda: None) -> list[tuple[int, str]]:
    """Starts every command at once, runs `meanwhile`, waits for them all, and returns each one's
    (exit status, output). Each process becomes a Step of `record`. Output goes to an anonymous
    file, not a pipe, so a process is never blocked on a full pipe while another is waited for."""
    started: list[tuple[str, subprocess.Popen, object, float]] = []
    results: list[tuple[int, str]] = []
    try:
        for what, cmd in jobs:
            out = tempfile.TemporaryFile()
            t0 = time.perf_counter()
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            except OSError as e:
                out.close()
                raise ToolchainError(f"C compiler {cmd[0]!r} could not be started: the tt_xla device "
                                     f"toolchain needs a host C compiler (set $CC): {e}") from None
            started.append((what, proc, out, t0))
        meanwhile()
    finally:
        for what, proc, out, t0 in started:
            results.append(_reap(what, proc, out, t0, record))
    return results


def _reap(what: str, proc: subprocess.Popen, out, t0: float, record: BuildRecord) -> tuple[int, str]:
    """Waits for `proc`, records its Step (wait4 gives the CPU time of it and its children), and
    returns (exit status, output)."""
    cpu = None
    if hasattr(os, "wait4"):
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
        except ChildProcessError:  # already reaped (cannot happen here, but never hang on it)
            pass
    rc = proc.wait()
    record.steps.append(Step(what, t0, time.perf_counter(), cpu))
    with out:
        out.seek(0)
        return rc, out.read().decode(errors="replace")


def _compile(cc: list[str], flags: list[str], sources: list[Path], out: Path, extra: list[str],
             record: BuildRecord, what: str, meanwhile: Callable[[], None] = lambda: None) -> None:
    """Compiles into a temp file next to `out` and renames it into place (atomic for readers)."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        cmd = [*cc, *flags, *map(str, sources), "-o", tmp, *extra]
        [(rc, err)] = _run([(what, cmd)], record, meanwhile)
        if rc != 0 and "-march=native" in flags and "march" in err:
            # Some compilers (or cross setups) refuse -march=native: build generic code instead.
            [(rc, err)] = _run([(what, [c for c in cmd if c != "-march=native"])], record)
        stats["compiles"] += 1
        if rc != 0:
            lines = err.splitlines()
            raise ToolchainError(
                "kernel library compilation failed:\n" + "\n".join(lines[:50]) +
                ("\n..." if len(lines) > 50 else "") + f"\nsource kept at: {sources[0]}",
                source_path=sources[0], stderr=err)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cache_key(source: str, cc: list[str], flags: list[str]) -> str:
    """The cache key of a kernel library: everything that decides its bytes. The compiler
    command itself is in it (not only its version text: `$CC="gcc -m32"` differs from `gcc`)."""
    h = hashlib.sha256()
    levels = repr((sorted(LEVELS.items()), sorted(UNIT_LEVEL.items()), LINK, LINK_LIBS))
    for part in (source.encode(), "\0".join(cc).encode(), "\0".join(flags).encode(), levels.encode(),
                 _compiler_version(tuple(cc)).encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    h.update(_header_digest(include_dir()))
    return h.hexdigest()[:32]


def build_kernel_library(source: str, meanwhile: Callable[[], None] | None = None) -> Path:
    """Compiles a C11 kernel translation unit into a shared library; returns its path.

    `meanwhile`: the caller's work that can overlap the build (the client writes its kernel
    store); it runs once, on this thread, as soon as the compiler processes are started (or
    after a cache hit). The record of the build is left in `last_build`.
    Raises ToolchainError (with the compiler's stderr and the kept source path) on failure.
    """
    global last_build
    cc = _compiler()
    flags = list(FLAGS)
    key = cache_key(source, cc, flags)
    record = BuildRecord(key, time.perf_counter())
    hook = _Once(meanwhile, record)
    lib = cache_dir() / f"{key}.so"
    try:
        path = _cached(key, lib, lambda: _build(source, cc, flags, key, lib, record, hook))
    except BaseException:
        # A failed build: the caller's overlapped work is for a library that does not exist, and
        # an error it raised here would hide the build's own error.
        hook.fn = None
        raise
    finally:
        record.end = time.perf_counter()
        last_build = record
    hook()  # a cache hit started no compiler: the caller's work runs now
    record.end = time.perf_counter()
    return path


def _build(source: str, cc: list[str], flags: list[str], key: str, lib: Path, record: BuildRecord,
           meanwhile: Callable[[], None]) -> None:
    inc = include_dir()
    d = lib.parent
    src = d / f"{key}.c"
    units = _split(source, _jobs())
    # one unit: the kept source is the unit itself (its pieces under their levels' pragmas)
    atomic_write(src, (units[0][1] if len(units) == 1 else source).encode())
    if len(units) == 1:
        _compile(cc, [*flags, *LINK, *LEVELS[units[0][0]]], [src], lib, [f"-I{inc}", *LINK_LIBS], record,
                 f"cc -{units[0][0]}", meanwhile)
        return
    # Compile the units on all host cores at once, each at its level, then link.
    cflags = [f for f in flags if f != "-shared"]
    with tempfile.TemporaryDirectory(dir=d, prefix=f"{key}.") as tmp:
        objs, jobs = [], []
        for i, (level, text) in enumerate(units):
            psrc, obj = Path(tmp) / f"part{i}.c", Path(tmp) / f"part{i}.o"
            psrc.write_text(text)
            objs.append(obj)
            jobs.append((f"cc -{level} part{i}", [*cc, *cflags, *LEVELS[level], "-c", str(psrc), "-o", str(obj),
                                                  f"-I{inc}"]))
        failed = any(rc != 0 for rc, _ in _run(jobs, record, meanwhile))
        stats["compiles"] += len(units)
        if failed:  # report through the one-file path, which keeps the source
            _compile(cc, [*flags, *LINK, *LEVELS[DEFAULT_LEVEL]], [src], lib, [f"-I{inc}", *LINK_LIBS], record,
                     "cc (report)")
        else:
            _compile(cc, ["-shared", *LINK], objs, lib, list(LINK_LIBS), record, "link")


SPLIT_MIN_CHARS = 16_000   # below this one compiler process (about 25 ms to start) is quicker than several


def _jobs() -> int:
    """Parallel compiler processes for one program ($TT_XLA_BUILD_JOBS, else the host cores)."""
    return int(os.environ.get("TT_XLA_BUILD_JOBS") or os.cpu_count() or 1)


# The C compiler's time for a piece, in chars of source: a fixed cost per function and one per
# loop (measured with GCC 12 at -O1 on generated kernels: about 3 ms and 1 ms, 1.3 us a char).
PIECE_CHARS = 2250
LOOP_CHARS = 750
LEVEL_COST = {"O2": 1.5, "O1": 1.0, "cold": 0.8}  # relative compile time per char
# A piece of tables and one-line functions (the program descriptor) costs about a quarter as much
# a char (GCC 12 -O1: 35 KB of descriptor in 10 ms); counted as code, it left its unit a sixth
# lighter than the other and the build waited for that one.
DATA_RATE = 0.25
_FN_END = re.compile(r"^}$", re.M)


def _piece_cost(p: str) -> float:
    if not _FN_END.search(p):  # no multi-line function body
        return len(p) * DATA_RATE
    return PIECE_CHARS + len(p) + LOOP_CHARS * p.count("for (")


def _split(source: str, jobs: int) -> list[tuple[str, str]]:
    """The source as (optimization level, translation unit) pairs. Each unit is the shared head
    (everything before the first marker) plus pieces of one level. A big source is cut so that
    no unit costs more than 1/jobs of the whole (costs estimated per piece from its length and
    loops, times its level's factor), so the units finish together on `jobs` cores
    however the OS interleaves them; each level's pieces are balanced over its units."""
    from ..compiler.program import PART  # the markers codegen writes
    bits = PART.split(source)
    if len(bits) == 1:
        return [(DEFAULT_LEVEL, source)]
    head, pieces = bits[0], list(zip(bits[1::2], bits[2::2]))
    cost = {i: _piece_cost(p) * LEVEL_COST[lv] for i, (lv, p) in enumerate(pieces)}
    target = sum(cost.values()) / max(1, jobs)
    big = jobs >= 2 and len(pieces) >= 4 and len(source) >= SPLIT_MIN_CHARS
    unit_of = [UNIT_LEVEL.get(lv, lv) for lv, _ in pieces]
    units: list[tuple[str, str]] = []
    for lvl in sorted(set(unit_of), reverse=True):
        mine = sorted((i for i, u in enumerate(unit_of) if u == lvl), key=cost.get, reverse=True)
        n = max(1, min(len(mine), math.ceil(sum(map(cost.get, mine)) / target - 1e-9))) if big else 1
        bins: list[list[int]] = [[] for _ in range(n)]
        load = [0.0] * n
        for i in mine:  # largest first onto the least loaded unit
            b = load.index(min(load))
            bins[b].append(i)
            load[b] += cost[i]
        units += [(lvl, head + "".join(_under(lvl, *pieces[i]) for i in sorted(b))) for b in bins]
    return units


def _under(unit_level: str, level: str, text: str) -> str:
    """A piece of `level` as it goes in a unit built at `unit_level`: under a pragma turning on
    its level's flags that the unit's lack (-f options only, spelled without the -f)."""
    extra = [f for f in LEVELS[level] if f not in LEVELS[unit_level]]
    if not extra:
        return text
    assert all(f.startswith("-f") for f in extra), extra
    names = ", ".join(f'"{f[2:]}"' for f in extra)
    return f"#pragma GCC push_options\n#pragma GCC optimize ({names})\n{text}#pragma GCC pop_options\n"


def build_runtime_library() -> Path:
    """Builds libttrt from the source tree (used only when no installed library exists, e.g.
    running from a plain checkout). Cached like kernel libraries, keyed by the sources."""
    srcs = sorted((_SRC_ROOT / "native" / "src").glob("*.c"))
    inc = _SRC_ROOT / "native" / "include"
    if not srcs:
        raise ToolchainError("libttrt not found and no runtime sources to build it from")
    cc = _compiler()
    # one matrix-engine build, for this host (an installed runtime carries one per ISA level)
    flags = ["-std=c11", "-O2", "-fPIC", "-shared", "-pthread", "-march=native", "-ffp-contract=fast",
             "-DTT_ENGINE=native", "-DTT_HAVE_ENGINE_native", f"-I{inc}", f"-I{srcs[0].parent}"]
    h = hashlib.sha256(_compiler_version(tuple(cc)).encode() + "\0".join([*cc, *flags]).encode())
    for f in srcs + sorted(inc.glob("*.h")) + sorted(srcs[0].parent.glob("*.h")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    key = f"libttrt-{h.hexdigest()[:32]}"
    lib = cache_dir() / f"{key}.so"
    return _cached(key, lib, lambda: _compile(cc, flags, srcs, lib, ["-ldl"], BuildRecord(key, time.perf_counter()),
                                              "cc libttrt"))
