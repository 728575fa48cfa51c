"""Device toolchain: compiles a kernel translation unit into a loadable kernel library.

The compiler emits one C11 translation unit per executable (kernels plus the program
descriptor, ``#include "ttrt_kernel.h"``). Here it is compiled with the host C compiler into a
shared library that ``Device.load_program`` dlopens.

A C compiler is required at run time: ``$CC`` if set, else ``cc`` (gcc or clang). Libraries are
cached on disk by the sha256 of (source, flags, compiler version, device headers) in
``$TT_XLA_CACHE_DIR`` or ``~/.cache/tt_xla/kernels``; building the same source again compiles
nothing. Files are written under temporary names and renamed into place, so concurrent
processes sharing the cache are safe.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

__all__ = ["ToolchainError", "build_kernel_library", "include_dir", "cache_dir", "FLAGS", "stats"]

# -fwrapv: generated integer code relies on two's-complement wrapping (StableHLO semantics);
# spelling it with unsigned casts instead trips a GCC 12 vectorizer bug on widening sums.
# The optimization level is per piece of the source (see compiler.program.PART): -O2 with the
# vectorizer on for kernels with much work (the loops vectorize as well as at -O3, and build in
# about half the time), -O1 with the vectorizer for the rest. Compile time is what a user
# waits for on a first call. -fexpensive-optimizations keeps FMA contraction on at -O1, so a
# kernel's results do not depend on its level.
FLAGS = ("-std=c11", "-ftree-vectorize", "-fvect-cost-model=dynamic", "-fPIC", "-shared",
         "-fno-math-errno", "-fno-trapping-math", "-fwrapv",
         "-ffp-contract=fast",  # a*b+c as one FMA, as XLA:CPU (LLVM) contracts it
         "-fopenmp-simd", "-march=native")
LEVELS = {"O2": ("-O2",), "O1": ("-O1", "-fexpensive-optimizations")}
DEFAULT_LEVEL = "O2"  # for source without part markers

# Process-wide build statistics (tests use them to prove a cache hit compiled nothing).
stats = {"compiles": 0, "cache_hits": 0}

_PKG_DIR = Path(__file__).resolve().parent
_SRC_ROOT = _PKG_DIR.parent.parent  # repository root when running from a checkout


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


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _compile(cc: list[str], flags: list[str], sources: list[Path], out: Path, extra: list[str]) -> None:
    """Compiles into a temp file next to `out` and renames it into place (atomic for readers)."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        cmd = [*cc, *flags, *map(str, sources), "-o", tmp, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0 and "-march=native" in flags and "march" in r.stderr:
            # Some compilers (or cross setups) refuse -march=native: build generic code instead.
            cmd = [c for c in cmd if c != "-march=native"]
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        stats["compiles"] += 1
        if r.returncode != 0:
            lines = (r.stderr or r.stdout).splitlines()
            raise ToolchainError(
                "kernel library compilation failed:\n" + "\n".join(lines[:50]) +
                ("\n..." if len(lines) > 50 else "") + f"\nsource kept at: {sources[0]}",
                source_path=sources[0], stderr=r.stderr)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_kernel_library(source: str) -> Path:
    """Compiles a C11 kernel translation unit into a shared library; returns its path.

    Raises ToolchainError (with the compiler's stderr and the kept source path) on failure.
    """
    cc = _compiler()
    inc = include_dir()
    flags = list(FLAGS)
    h = hashlib.sha256()
    levels = repr(sorted(LEVELS.items()))
    for part in (source.encode(), "\0".join(flags).encode(), levels.encode(), _compiler_version(tuple(cc)).encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    h.update(_header_digest(inc))
    key = h.hexdigest()[:32]
    d = cache_dir()
    lib = d / f"{key}.so"
    if lib.is_file():
        stats["cache_hits"] += 1
        return lib
    src = d / f"{key}.c"
    _atomic_write(src, source.encode())
    units = _split(source, _jobs())
    if len(units) == 1:
        _compile(cc, [*flags, *LEVELS[units[0][0]]], [src], lib, [f"-I{inc}"])
        return lib
    # Compile the units on all host cores at once, each at its level, then link.
    cflags = [f for f in flags if f != "-shared"]
    with tempfile.TemporaryDirectory(dir=d, prefix=f"{key}.") as tmp:
        objs, procs = [], []
        for i, (level, text) in enumerate(units):
            psrc, obj = Path(tmp) / f"part{i}.c", Path(tmp) / f"part{i}.o"
            psrc.write_text(text)
            objs.append(obj)
            procs.append(subprocess.Popen([*cc, *cflags, *LEVELS[level], "-c", str(psrc), "-o", str(obj), f"-I{inc}"],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        failed = False
        for proc in procs:
            proc.communicate()
            failed = failed or proc.returncode != 0
        stats["compiles"] += len(units)
        if failed:  # report through the one-file path, which keeps the source
            _compile(cc, [*flags, *LEVELS[DEFAULT_LEVEL]], [src], lib, [f"-I{inc}"])
        else:
            _compile(cc, ["-shared"], objs, lib, [])
    return lib


SPLIT_MIN_CHARS = 16_000   # below this one compiler process (about 25 ms to start) is quicker than several


def _jobs() -> int:
    """Parallel compiler processes for one program ($TT_XLA_BUILD_JOBS, else the host cores)."""
    return int(os.environ.get("TT_XLA_BUILD_JOBS") or os.cpu_count() or 1)


# The C compiler's time for a piece, in chars of source: a fixed cost per function and one per
# loop (measured with GCC 12 at -O1 on generated kernels: about 3 ms and 1 ms, 1.3 us a char).
PIECE_CHARS = 2250
LOOP_CHARS = 750
LEVEL_COST = {"O2": 1.5, "O1": 1.0}  # relative compile time per char


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
    cost = {i: (PIECE_CHARS + len(p) + LOOP_CHARS * p.count("for (")) * LEVEL_COST[lv]
            for i, (lv, p) in enumerate(pieces)}
    target = sum(cost.values()) / max(1, jobs)
    big = jobs >= 2 and len(pieces) >= 4 and len(source) >= SPLIT_MIN_CHARS
    units: list[tuple[str, str]] = []
    for lvl in sorted({lv for lv, _ in pieces}, reverse=True):
        mine = sorted((i for i, (lv, _) in enumerate(pieces) if lv == lvl), key=cost.get, reverse=True)
        n = max(1, min(len(mine), math.ceil(sum(map(cost.get, mine)) / target - 1e-9))) if big else 1
        bins: list[list[int]] = [[] for _ in range(n)]
        load = [0.0] * n
        for i in mine:  # largest first onto the least loaded unit
            b = load.index(min(load))
            bins[b].append(i)
            load[b] += cost[i]
        units += [(lvl, head + "".join(pieces[i][1] for i in sorted(b))) for b in bins]
    return units


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
    h = hashlib.sha256(_compiler_version(tuple(cc)).encode() + "\0".join(flags).encode())
    for f in srcs + sorted(inc.glob("*.h")) + sorted(srcs[0].parent.glob("*.h")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    lib = cache_dir() / f"libttrt-{h.hexdigest()[:32]}.so"
    if not lib.is_file():
        _compile(cc, flags, srcs, lib, ["-ldl"])
    return lib
