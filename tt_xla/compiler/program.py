"""What the compiler hands to the runtime layer: one C translation unit plus the facts needed
to bind buffers to it. Plain data; no device, no jax."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


# Between these markers the generated source splits into pieces that compile on their own, so
# the device toolchain may build a big program on several host cores and link the parts. Each
# marker names the C optimization level its piece wants: "O2" for kernels with enough work to
# repay the C compiler's time, "O1" for the rest (they build in about two thirds of the time),
# "cold" for kernels with little work (-O1 with more passes off; toolchain.LEVELS).
PART = re.compile(r"/\* tt:part (O[12]|cold) \*/\n")


def part(level: str) -> str:
    return f"/* tt:part {level} */\n"


# The default device's SRAM per core (an n150's Tensix L1; the runtime's tt_device_config_default
# says the same, a test checks they agree): what a program is compiled for when no device is named.
DEFAULT_SRAM_PER_CORE = 1499136


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype  # numpy dtype: bool for i1, ml_dtypes.bfloat16 for bf16, ...

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class KernelInfo:
    """One fusion group = one kernel launch."""
    name: str
    kind: str               # 'elementwise' | 'reduce' | 'matmul' | 'movement'
    ops: tuple[str, ...]    # core ops fused into it, in order
    work_items: int
    vector_ops: int         # device-model cost figures, as given to the runtime
    matrix_tiles: int
    sram_bytes: int = 0     # SRAM per core its buffers take
    dma_bytes: int = 0      # DRAM <-> SRAM bytes its DMA moves (the matrix engine's packing included)
    # its loop IR as text, made when asked (`ir`): formatting every kernel's IR up front was a
    # tenth of the Python compile of a training step, for text few users print
    format_ir: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    @property
    def ir(self) -> str:
        """The kernel's loop IR as text: print(k.ir)."""
        return self.format_ir() if self.format_ir is not None else ""


@dataclass
class CompiledProgram:
    """Bindings, in order: inputs, outputs, constants, arena (always present, maybe 0 bytes).
    binding_bytes has one entry per binding. Every output is written by a kernel into its own
    output binding (pass-through outputs are copied), so output buffers never alias."""
    source: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    constants: list[np.ndarray]
    arena_bytes: int
    kernels: list[KernelInfo]
    binding_bytes: list[int] = field(default_factory=list)
    live_peak_bytes: int = 0  # most intermediate bytes alive at once: arena_bytes' lower bound
    input_formats: tuple[str, ...] = ()  # per input: "" (as given) or "bfp8" (packed on binding, tt_xla/bfp8.py)

    @property
    def nbindings(self) -> int:
        return len(self.inputs) + len(self.outputs) + len(self.constants) + 1
