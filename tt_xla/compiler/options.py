"""compiler_options: what a user may ask of the compiler, validated once at the API boundary.

    tt_xla.jit(f, compiler_options={"optimization_level": 1})
    tt_xla.compile(text, compiler_options={"optimization_level": 2})
    tt_xla.jit(f, compiler_options={"weight_format": "bfp8"})        # or {3: "bfp8", 5: "bfp8"}

`optimization_level` (as tt-xla's): 0 keeps every intermediate in DRAM; 1 keeps in the grid's
SRAM the intermediates that only the next kernel reads, 2 any intermediate whose shards fit
beside the kernels running during its lifetime (SRAM placement, compiler/placement.py); the
rest stay in DRAM.

`weight_format` (block-float weights, tt_xla/bfp8.py): "bfp8" stores every argument that is only
ever a matmul's right-hand [K, N] operand (f32 or bf16, read row-major: `x @ w`) as bfp8 in DRAM,
packed on the host when it is bound, unpacked in SRAM by the kernel: 1.0625 bytes a value, and
the values bfp8 rounding leaves (`bfp8.round_bfp8`). A mapping {flat argument index: "bfp8" |
"native"} chooses per argument (an argument named "bfp8" that is not such a weight is refused).
Default "native": arguments are stored as they are. With control flow, an argument is a weight
when every straight-line piece reading it reads it so (control.compile_function).

The options are part of the compile cache key, so levels never share an executable.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

__all__ = ["CompilerOptions", "CompilerOptionsError", "compiler_options"]

OPTIMIZATION_LEVELS = (0, 1, 2)


class CompilerOptionsError(ValueError):
    """compiler_options names an unknown option or gives one a bad value."""


WEIGHT_FORMATS = ("native", "bfp8")


@dataclass(frozen=True)
class CompilerOptions:
    optimization_level: int = 0
    # "native" | "bfp8" (every weight argument) | ((argument index, format), ...) sorted
    weight_format: str | tuple[tuple[int, str], ...] = "native"

    def bfp8_args(self, nargs: int) -> tuple[frozenset[int], bool]:
        """(the argument indices asked for in bfp8, whether each was named explicitly)."""
        if self.weight_format == "bfp8":
            return frozenset(range(nargs)), False
        if isinstance(self.weight_format, tuple):
            return frozenset(i for i, f in self.weight_format if f == "bfp8"), True
        return frozenset(), False

    def cache_key(self) -> str:
        return ",".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))


_KNOWN = tuple(f.name for f in fields(CompilerOptions))


def compiler_options(options: Mapping[str, Any] | CompilerOptions | None) -> CompilerOptions:
    """Validated options: a mapping (jax.jit's `compiler_options` style), CompilerOptions, or None."""
    if options is None:
        return CompilerOptions()
    if isinstance(options, CompilerOptions):
        return options
    if not isinstance(options, Mapping):
        raise CompilerOptionsError(f"compiler_options must be a dict, got {type(options).__name__}")
    unknown = sorted(str(k) for k in options if k not in _KNOWN)
    if unknown:
        raise CompilerOptionsError(f"unknown compiler option(s) {', '.join(map(repr, unknown))}; "
                                   f"known: {', '.join(_KNOWN)}")
    level = options.get("optimization_level", 0)
    if isinstance(level, bool) or level not in OPTIMIZATION_LEVELS:
        raise CompilerOptionsError(f"compiler option 'optimization_level' must be one of "
                                   f"{', '.join(map(str, OPTIMIZATION_LEVELS))}, got {level!r}")
    wf = options.get("weight_format", "native")
    if isinstance(wf, Mapping):
        bad = [(k, v) for k, v in wf.items()
               if isinstance(k, bool) or not isinstance(k, int) or k < 0 or v not in WEIGHT_FORMATS]
        if bad:
            raise CompilerOptionsError(f"compiler option 'weight_format' maps argument indices (ints >= 0) to one of "
                                       f"{', '.join(map(repr, WEIGHT_FORMATS))}; got {bad[0][0]!r}: {bad[0][1]!r}")
        wf = tuple(sorted((int(k), str(v)) for k, v in wf.items()))
    elif wf not in WEIGHT_FORMATS:
        raise CompilerOptionsError(f"compiler option 'weight_format' must be one of "
                                   f"{', '.join(map(repr, WEIGHT_FORMATS))} or a dict of them by argument index, "
                                   f"got {wf!r}")
    return CompilerOptions(optimization_level=int(level), weight_format=wf)
