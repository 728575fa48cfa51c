"""compiler_options: what a user may ask of the compiler, validated once at the API boundary.

    tt_xla.jit(f, compiler_options={"optimization_level": 1})
    tt_xla.compile(text, compiler_options={"optimization_level": 2})

`optimization_level` (as tt-xla's): 0 keeps every intermediate in DRAM; 1 keeps in the grid's
SRAM the intermediates that only the next kernel reads, 2 any intermediate whose shards fit
beside the kernels running during its lifetime (SRAM placement, compiler/placement.py); the
rest stay in DRAM. The options are part of the compile cache key, so levels never share an
executable.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

__all__ = ["CompilerOptions", "CompilerOptionsError", "compiler_options"]

OPTIMIZATION_LEVELS = (0, 1, 2)


class CompilerOptionsError(ValueError):
    """compiler_options names an unknown option or gives one a bad value."""


@dataclass(frozen=True)
class CompilerOptions:
    optimization_level: int = 0

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
    return CompilerOptions(optimization_level=int(level))
