"""A compiled program loaded on a device, at the DeviceBuffer level. No jax here.

`LoadedExecutable(device, compiled)` builds the kernel library for `compiled.source` with the
device toolchain (cached on disk), loads it, uploads the program's constants once, and keeps one
arena buffer (scratch for intermediates) per executable, reused by every call. `execute` is on
the latency path of tiny programs, so everything it checks is precomputed here.
"""
from __future__ import annotations

import threading

import numpy as np

from .compiler.program import CompiledProgram, KernelInfo, TensorSpec


class LoadedExecutable:
    def __init__(self, device, compiled: CompiledProgram):
        from .runtime.toolchain import build_kernel_library

        self._device = device
        self._compiled = compiled
        self.input_specs: list[TensorSpec] = list(compiled.inputs)
        self.output_specs: list[TensorSpec] = list(compiled.outputs)
        nin, nout, ncst = len(compiled.inputs), len(compiled.outputs), len(compiled.constants)
        sizes = list(compiled.binding_bytes)
        if len(sizes) != compiled.nbindings:  # older compilers may leave it empty: derive it
            sizes = ([s.nbytes for s in compiled.inputs] + [s.nbytes for s in compiled.outputs]
                     + [int(c.nbytes) for c in compiled.constants] + [int(compiled.arena_bytes)])
        self._in_bytes = tuple(sizes[:nin])
        self._out_bytes = tuple(max(s.nbytes, b) for s, b in zip(compiled.outputs, sizes[nin:nin + nout]))
        self._nin = nin

        path = build_kernel_library(compiled.source)
        self._program = device.load_program(path)

        self._resident: list = []  # constants..., arena: bound after inputs and outputs
        for c, nbytes in zip(compiled.constants, sizes[nin + nout:nin + nout + ncst]):
            c = np.ascontiguousarray(c)
            buf = device.alloc(max(int(nbytes), int(c.nbytes)))
            if c.nbytes:
                buf.write(c)
            self._resident.append(buf)
        self._resident.append(device.alloc(max(int(sizes[-1]), int(compiled.arena_bytes))))
        # The arena is shared by all calls of this executable: serialize launches.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ introspection
    @property
    def device(self):
        return self._device

    @property
    def source(self) -> str:
        """The generated C translation unit."""
        return self._compiled.source

    @property
    def compiled(self) -> CompiledProgram:
        return self._compiled

    def kernels(self) -> list[KernelInfo]:
        return list(self._compiled.kernels)

    def kernel_stats(self) -> list[dict]:
        """Per kernel, what it did on the device the last time this executable ran (zeros before
        the first run): name, modeled cycles, DMA bytes, vector ops, matrix tiles, SRAM bytes per
        core, cores used, bound ('compute' | 'memory')."""
        return [dict(name=k.name, **self._program.launch_stats(i)) for i, k in enumerate(self._compiled.kernels)]

    # ------------------------------------------------------------------ running
    def execute(self, args: list) -> list:
        """Run once on DeviceBuffers `args` (one per input, in order); returns fresh output
        DeviceBuffers. One synchronous launch."""
        if len(args) != self._nin:
            raise TypeError(f"executable takes {self._nin} arguments, got {len(args)}")
        for i, (a, need) in enumerate(zip(args, self._in_bytes)):
            if a.nbytes < need:
                raise ValueError(f"argument {i}: buffer of {a.nbytes} bytes, executable needs "
                                 f"{need} bytes for {self.input_specs[i]}")
        alloc = self._device.alloc
        outs = [alloc(n) for n in self._out_bytes]
        with self._lock:
            self._program.launch([*args, *outs, *self._resident])
        return outs

    def delete(self) -> None:
        """Free the constants and the arena now (the executable is unusable afterwards)."""
        resident, self._resident = self._resident, []
        for b in resident:
            try:
                b.free()
            except Exception:
                pass

    def __del__(self):
        try:
            self.delete()
        except Exception:
            pass
