"""`tt_xla.compile(text)`: run StableHLO text on the device without jax. No jax here."""
from __future__ import annotations

import numpy as np

from .array import Array
from .client import client


class Executable:
    """`exe(*args)` -> tuple of tt_xla.Array. Arguments: tt_xla.Array (used in place), numpy
    arrays of the parameter's exact dtype and shape, or Python scalars/lists (converted)."""

    def __init__(self, loaded, text: str | None = None):
        self._loaded = loaded
        self._text = text

    def __call__(self, *args) -> tuple[Array, ...]:
        return self._loaded(*args)

    def execute(self, arrays: list[Array]) -> list[Array]:
        return self._loaded.execute(arrays)

    def kernels(self):
        return self._loaded.kernels()

    def profile(self, *args):
        """Runs once on `args` and reports where the modeled time went, per kernel: `str(report)`
        is the table, `report.trace` a Perfetto trace JSON (tt_xla/profile.py)."""
        return self._loaded.profile(*args)

    def kernel_stats(self):
        """Per kernel, from the cores' events of the last run: modeled cycles, DMA bytes,
        vector ops, matrix tiles, SRAM bytes, cores used, compute- or memory-bound."""
        return self._loaded.kernel_stats()

    @property
    def source(self) -> str:
        return self._loaded.source

    @property
    def input_specs(self):
        return self._loaded.input_specs

    @property
    def output_specs(self):
        return self._loaded.output_specs

    def ir_text(self, stage: str = "parsed") -> str:
        """The program after a compiler stage, as text, for debugging a compile: "parsed"
        (generic StableHLO), "inlined", "legalized", "simplified", "decomposed", "optimized",
        "scheduled" (see tt_xla.compiler.stages)."""
        from .compiler.stages import ir_text
        from .hlo_parser import parse_module

        if self._text is None:
            raise ValueError("this executable was not compiled from text")
        return ir_text(parse_module(self._text), stage)

    def __repr__(self):
        ins = ", ".join(f"{np.dtype(s.dtype).name}{list(s.shape)}" for s in self.input_specs)
        outs = ", ".join(f"{np.dtype(s.dtype).name}{list(s.shape)}" for s in self.output_specs)
        return f"<tt_xla.Executable ({ins}) -> ({outs}), {len(self.kernels())} kernels>"


def compile(text: str, compiler_options=None, device=None) -> Executable:  # noqa: A001 (mirrors jax/xla naming)
    """Parse + compile + load StableHLO text (as `jax.export(...).mlir_module()` prints it).
    `compiler_options`: `{"optimization_level": 0|1|2}` (compiler/options.py); `device`: a preset
    name or JSON device file (None: tt_xla.client()'s device)."""
    return Executable(client(device).compile(text, compiler_options=compiler_options), text)


def device_put(x, device=None) -> Array:
    """Put a host value or DLPack producer on the device (numpy dtype kept; see jit for jax's
    conversions). Copies, except memory a DLPack producer marks read-only (a jax array), which
    the Array aliases."""
    return client().buffer_from_pyval(x, device)
