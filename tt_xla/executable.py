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


class DeletedExecutableError(RuntimeError):
    """A LoadedExecutable was called after `delete()`."""


class DeviceMismatchError(ValueError):
    """An argument lives on another device than the executable it is passed to."""


class LoadedExecutable:
    def __init__(self, device, compiled: CompiledProgram, meanwhile=None):
        """`meanwhile`: work to run while the C compiler builds the library (toolchain)."""
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
        # inputs stored as bfp8 (compiler_options weight_format): packed on the host when bound
        self._bfp8 = [i for i, f in enumerate(compiled.input_formats) if f == "bfp8"]
        self._packed: dict[int, tuple] = {}  # id(argument) -> (weak reference, (crc32, shape), packed tiles)
        self._out_bytes = tuple(max(s.nbytes, b) for s, b in zip(compiled.outputs, sizes[nin:nin + nout]))
        self._nin = nin

        path = build_kernel_library(compiled.source, meanwhile)
        self._program = device.load_program(path)

        self._resident: list = []  # constants..., arena: bound after inputs and outputs
        for c, nbytes in zip(compiled.constants, sizes[nin + nout:nin + nout + ncst]):
            c = np.ascontiguousarray(c)
            buf = device.alloc(max(int(nbytes), int(c.nbytes)))
            if c.nbytes:
                buf.write(c)
            self._resident.append(buf)
        self._resident.append(device.alloc(max(int(sizes[-1]), int(compiled.arena_bytes))))
        from .runtime import Executor
        self._executor = Executor(self._program, self._in_bytes, self._out_bytes, self._resident)
        # The arena (and the executor's binding arrays) are shared by all calls: serialize them.
        self._lock = threading.Lock()
        self._deleted = False

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
        self._check_devices(args)
        args = self._pack(args)
        for i, (a, need) in enumerate(zip(args, self._in_bytes)):
            if a.nbytes < need:
                raise ValueError(f"argument {i}: buffer of {a.nbytes} bytes, executable needs "
                                 f"{need} bytes for {self.input_specs[i]}")
        with self._lock:
            self._check_live()
            return self._executor(args)

    def run(self, args: list) -> list:
        """Like `execute`, and an argument may also be a numpy array of the input's exact dtype
        and shape (the caller checks them): bound read-only for the call without a copy when it
        is C-contiguous and 16-byte aligned (PJRT's kImmutableZeroCopy), else copied once. The
        allocation of the outputs and the launch are one runtime call."""
        self._check_devices(args)
        args = self._pack(args)
        with self._lock:
            self._check_live()
            return self._executor(args)

    def _pack(self, args: list) -> list:
        """Arguments with the bfp8 inputs packed (tt_xla/bfp8.py). A weight passed again unchanged
        (the same object holding the same bytes, by CRC-32) reuses its packed tiles, so does one
        object passed for several inputs (a layer's weights bound for every layer)."""
        if not self._bfp8:
            return args
        import weakref
        import zlib
        from .bfp8 import pack
        args, now = list(args), {}
        for i in self._bfp8:
            a, spec = args[i], self.input_specs[i]
            if id(a) in now:
                args[i] = now[id(a)]
                continue
            host = a if isinstance(a, np.ndarray) else np.frombuffer(a.read(0, spec.nbytes), spec.dtype)
            host = np.ascontiguousarray(host).reshape(spec.shape)
            crc = zlib.crc32(host.view(np.uint8).reshape(-1))
            hit = self._packed.get(id(a))
            if hit is not None and hit[0]() is a and hit[1] == (crc, spec.shape):
                packed = hit[2]
            else:
                packed = pack(host)
                try:
                    self._packed[id(a)] = (weakref.ref(a, lambda _, k=id(a): self._packed.pop(k, None)),
                                           (crc, spec.shape), packed)
                except TypeError:  # (no weak references to it: packed each call)
                    pass
            args[i] = now[id(a)] = packed
        return args

    # Every way of calling the executable runs these two checks (the live one under the lock).
    def _check_devices(self, args) -> None:
        """Device buffers among `args` must be this executable's device's: another device's
        handle means nothing here (the runtime refuses it too, by device id)."""
        dev = self._device
        for i, a in enumerate(args):
            if not isinstance(a, np.ndarray) and a.device is not dev:
                spec = self.input_specs[i]
                raise DeviceMismatchError(
                    f"argument {i} ({np.dtype(spec.dtype).name}{list(spec.shape)}) lives on {a.device!r}, "
                    f"but this executable runs on {dev!r}; copy it to the host (np.asarray) and pass "
                    "that, or compile for its device")

    def _check_live(self) -> None:
        if self._deleted:
            raise DeletedExecutableError("this executable has been deleted (delete() was called): its "
                                         "program and constants are gone; compile it again")

    def is_deleted(self) -> bool:
        return self._deleted

    def delete(self) -> None:
        """Unload the program and free the constants and the arena now; later calls raise
        DeletedExecutableError. Idempotent."""
        with self._lock:  # not under a running launch
            self._deleted = True
            resident, self._resident = self._resident, []
            program = getattr(self, "_program", None)
        for b in resident:
            try:
                b.free()
            except Exception:
                pass
        if program is not None:
            try:
                program.unload()
            except Exception:
                pass

    def __del__(self):
        try:
            self.delete()
        except Exception:
            pass
