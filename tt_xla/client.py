"""A PJRT-like client for the tt device. No jax here.

    c = tt_xla.client()                  # process-wide (device: $TT_XLA_DEVICE, else the n150 preset)
    c = tt_xla.client(device="p150")     # a preset name or a JSON device file (tt_xla/presets.py)
    c.platform, c.devices()
    exe = c.compile(stablehlo_text)      # parse + compile + load, cached by text
    a = c.buffer_from_pyval(np.ones(8, np.float32))
    (out,) = exe.execute([a, a])         # list[Array] -> list[Array]
    out.to_numpy()
"""
from __future__ import annotations

import gc
import hashlib
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from .array import Array
from .compiler.options import compiler_options as _compiler_options
from .compiler.program import KernelInfo, TensorSpec
from . import executable as _executable

PLATFORM = "tt"
DEVICE_KIND = "tt-sim wormhole_b0-like"


@dataclass(frozen=True)
class DeviceHandle:
    """What PJRT calls a Device: a description plus the runtime device it stands for."""
    id: int
    platform: str
    device_kind: str
    core_grid: tuple[int, int] | None
    num_cores: int | None
    sram_bytes_per_core: int | None
    runtime_device: object

    @property
    def process_index(self) -> int:
        return 0

    def counters(self) -> dict[str, int]:
        return self.runtime_device.counters()

    def reset_counters(self) -> None:
        self.runtime_device.reset_counters()

    def __repr__(self):
        grid = "x".join(map(str, self.core_grid)) if self.core_grid else "?"
        return f"TtDevice(id={self.id}, kind={self.device_kind!r}, grid={grid})"


def _describe(dev, index: int, kind: str = DEVICE_KIND) -> DeviceHandle:
    cfg = getattr(dev, "config", None)
    grid = tuple(int(g) for g in cfg.grid) if cfg is not None else None
    ncores = int(np.prod(grid)) if grid else None
    sram = int(cfg.sram_per_core) if cfg is not None else None
    return DeviceHandle(id=index, platform=PLATFORM, device_kind=kind, core_grid=grid,
                        num_cores=ncores, sram_bytes_per_core=sram, runtime_device=dev)


class LoadedExecutable:
    """A compiled program on one device, at the Array level (PJRT's LoadedExecutable)."""

    def __init__(self, raw: _executable.LoadedExecutable, client: "Client", device: DeviceHandle):
        self.raw = raw
        self.client = client
        self._device = device
        self._rt = device.runtime_device
        specs = raw.output_specs
        self._out_meta = [(s.shape, np.dtype(s.dtype)) for s in specs]
        self._in_meta = [(tuple(s.shape), np.dtype(s.dtype)) for s in raw.input_specs]
        # (phase, start, end) of the compile that made it, time.perf_counter seconds (the C
        # compiler's processes in it: runtime.toolchain.last_build; benchmarks/compile_timeline.py)
        self.compile_phases: tuple[tuple[str, float, float], ...] = ()

    @property
    def input_specs(self) -> list[TensorSpec]:
        return self.raw.input_specs

    @property
    def output_specs(self) -> list[TensorSpec]:
        return self.raw.output_specs

    @property
    def source(self) -> str:
        return self.raw.source

    def kernels(self) -> list[KernelInfo]:
        return self.raw.kernels()

    def kernel_stats(self) -> list[dict]:
        """Per kernel, from the cores' events of the last run: see executable.kernel_stats."""
        return self.raw.kernel_stats()

    def profile(self, *args):
        """Runs once on `args` (as `__call__` takes them) and reports per kernel where the modeled
        time went: `str(report)` is the table, `report.trace` the Perfetto trace (tt_xla/profile.py)."""
        from .profile import profile_run
        return profile_run(self, lambda: self(*args))

    def devices(self) -> list[DeviceHandle]:
        return [self._device]

    def execute(self, arguments: list[Array]) -> list[Array]:
        if len(arguments) != len(self._in_meta):
            raise TypeError(f"executable takes {len(self._in_meta)} arguments, got {len(arguments)}")
        bufs = []
        for i, (a, (shape, dtype)) in enumerate(zip(arguments, self._in_meta)):
            if not isinstance(a, Array):
                raise TypeError(f"argument {i}: expected tt_xla.Array, got {type(a).__name__} "
                                "(use client.buffer_from_pyval)")
            if a._shape != shape or a._dtype != dtype:
                raise TypeError(f"argument {i}: expected {dtype.name}{list(shape)}, "
                                f"got {a._dtype.name}{list(a._shape)}")
            bufs.append(a._live_buffer())
        outs = self.raw.execute(bufs)
        rt = self._rt
        return [Array(b, shape, dtype, rt) for b, (shape, dtype) in zip(outs, self._out_meta)]

    def __call__(self, *args) -> tuple[Array, ...]:
        """Convenience: numpy arrays / scalars / Arrays in, tuple of Arrays out. Python scalars
        and lists take the parameter's dtype; numpy arrays must already have it."""
        if len(args) != len(self._in_meta):
            raise TypeError(f"executable takes {len(self._in_meta)} arguments, got {len(args)}")
        bufs = []
        for i, (a, (shape, dtype)) in enumerate(zip(args, self._in_meta)):
            if isinstance(a, Array):
                if a._shape != shape or a._dtype != dtype:
                    raise TypeError(f"argument {i}: expected {dtype.name}{list(shape)}, "
                                    f"got {a._dtype.name}{list(a._shape)}")
                bufs.append(a._live_buffer())
                continue
            if isinstance(a, (bool, int, float, complex, list, tuple)):
                x = np.asarray(a, dtype=dtype)
            else:
                x = np.asarray(a)
                if x.dtype != dtype:
                    raise TypeError(f"argument {i}: expected {dtype.name}{list(shape)}, got "
                                    f"{x.dtype.name}{list(x.shape)}")
            if x.shape != shape:
                raise TypeError(f"argument {i}: expected shape {shape}, got {x.shape}")
            bufs.append(x)  # bound for the call without a copy where it can be (executable.run)
        outs, rt = self.raw.run(bufs), self._rt
        return tuple(Array(b, shape, dtype, rt) for b, (shape, dtype) in zip(outs, self._out_meta))

    def is_deleted(self) -> bool:
        return self.raw.is_deleted()

    def delete(self) -> None:
        """Unload now; later calls raise DeletedExecutableError. The client forgets it, so
        compiling the same text again loads a fresh executable."""
        self.client._forget(self)
        self.raw.delete()


class Client:
    """Process-wide entry point (PJRT's Client). Use `tt_xla.client()`."""

    platform = PLATFORM
    platform_version = "tt-xla sim"

    def __init__(self, runtime_device=None, spec=None):
        """`spec`: the presets.DeviceSpec the runtime device was opened from (None: the runtime's
        default configuration, which is the n150 preset's)."""
        if runtime_device is None:
            from .runtime import default_device
            runtime_device = default_device()
        self.spec = spec
        kind = DEVICE_KIND if spec is None or spec.name == "n150" else f"tt-sim {spec.name}"
        self._devices = [_describe(runtime_device, 0, kind)]
        self._cache: dict[str, LoadedExecutable] = {}
        self._lock = threading.Lock()
        self.compile_count = 0  # programs actually compiled (cache misses)

    def devices(self) -> list[DeviceHandle]:
        return list(self._devices)

    def local_devices(self) -> list[DeviceHandle]:
        return self.devices()

    def device_count(self) -> int:
        return len(self._devices)

    def _device(self, device) -> DeviceHandle:
        if device is None:
            return self._devices[0]
        if isinstance(device, DeviceHandle):
            return device
        if isinstance(device, int):
            return self._devices[device]
        for d in self._devices:
            if d.runtime_device is device:
                return d
        raise ValueError(f"not a device of this client: {device!r}")

    def compile(self, text: str, filename: str = "<module>", device=None,
                compiler_options=None) -> LoadedExecutable:
        """Parse, compile and load StableHLO text. Cached by the text's hash, the device and the
        compiler options (`{"optimization_level": 0|1|2}`, see compiler/options.py)."""
        dev = self._device(device)
        options = _compiler_options(compiler_options)
        key = hashlib.sha256(text.encode()).hexdigest() + f":{dev.id}:{options.cache_key()}"
        exe = self._cache.get(key)
        if exe is not None and not exe.is_deleted():
            return exe
        with self._lock:  # one compile at a time; a thread asking for the same text waits for it
            exe = self._cache.get(key)
            if exe is not None and not exe.is_deleted():
                return exe
            from .hlo_parser import parse_module
            from .compiler import compile_module
            from .compiler.kernel_store import KernelStore
            from .compiler.program import DEFAULT_SRAM_PER_CORE
            from .runtime.toolchain import cache_dir

            # No cyclic GC while compiling: a collection then walks the user's whole heap (jax's,
            # say) for garbage the compiler does not make, and costs as much as the passes.
            gc_was_on = gc.isenabled()
            gc.disable()
            t0 = time.perf_counter()
            try:
                module = parse_module(text, filename)
                t1 = time.perf_counter()
                # lowered kernels are kept beside the libraries (kernel_store.py), unless turned off
                store = (KernelStore(cache_dir(), deferred=True)
                         if os.environ.get("TT_XLA_KERNEL_STORE", "1") != "0" else None)
                compiled = compile_module(module, dev.sram_bytes_per_core or DEFAULT_SRAM_PER_CORE, options,
                                          dev.num_cores or 64, store)
            finally:
                if gc_was_on:
                    gc.enable()
            # new kernels are written to the store while gcc builds the library: on this thread, once
            # the compiler processes are started (a thread started before them held the GIL while
            # the build was still starting its second process)
            flush = store.flush if store is not None and store.pending else None
            t2 = time.perf_counter()
            raw = _executable.LoadedExecutable(dev.runtime_device, compiled, flush)
            exe = LoadedExecutable(raw, self, dev)
            exe.compile_phases = (("parse", t0, t1), ("passes", t1, t2), ("build and load", t2, time.perf_counter()))
            self._cache[key] = exe
            self.compile_count += 1
            return exe

    def buffer_from_pyval(self, x, device=None, dtype=None) -> Array:
        """Put a numpy array, numpy/Python scalar, (nested) list or DLPack producer on the
        device. The dtype is numpy's (or `dtype`): float64 stays float64 here (jit converts like
        jax does). Host memory is copied, except a DLPack producer's that it marks read-only
        (a jax array's), which is aliased (kept alive by the Array, never written). An Array of
        another device is copied over (through the host)."""
        dev = self._device(device)
        if isinstance(x, Array):
            if (dtype is None or np.dtype(dtype) == x.dtype) and x.device is dev.runtime_device:
                return x
            x = x.to_numpy()
        if type(x) is not np.ndarray and hasattr(x, "__dlpack__"):
            ext = _from_dlpack(x)
            same = dtype is None or np.dtype(dtype) == ext.dtype
            if same and not ext.flags.writeable and ext.flags.c_contiguous \
                    and not ext.__array_interface__["data"][0] % 16:  # what tt_buffer_wrap takes
                return Array._wrap(dev.runtime_device, ext)
            x = ext
        arr = np.asarray(x, dtype=dtype)
        if arr.dtype == object:
            raise TypeError(f"cannot put a {type(x).__name__} on the device")
        return Array._upload(dev.runtime_device, arr)

    def _forget(self, exe: LoadedExecutable) -> None:
        with self._lock:
            for key in [k for k, v in self._cache.items() if v is exe]:
                del self._cache[key]

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


def _from_dlpack(x) -> np.ndarray:
    """A numpy view of a DLPack producer's host memory (its read-only flag kept)."""
    kind, _ = x.__dlpack_device__()
    if int(kind) not in (1, 3):  # kDLCPU, kDLCUDAHost: memory the host reads
        raise TypeError(f"cannot put a {type(x).__name__} on the device: its memory is on DLPack "
                        f"device type {int(kind)}, not the host")
    try:
        return np.from_dlpack(x)
    except (BufferError, TypeError, ValueError, RuntimeError):  # e.g. bf16, which numpy cannot name
        return np.asarray(x)


_client: Client | None = None
_client_lock = threading.Lock()
_clients: dict[str, Client] = {}  # by device description key (preset name or file path)


def client(device: str | os.PathLike | None = None) -> Client:
    """The process-wide client of a device: `device` is a preset name ("n150", "n300", "p150")
    or a JSON device file (tt_xla/presets.py, docs/device.md); None is $TT_XLA_DEVICE, else
    n150. One client (and one runtime device) per description, opened on first use."""
    global _client
    c = _client
    if device is None and c is not None:
        return c
    from .presets import load_device
    spec = load_device(device)  # (validates: a bad name or file raises DeviceSpecError here)
    with _client_lock:
        c = _clients.get(spec.key)
        if c is None:
            from .runtime import DeviceConfig, default_device, Device
            import atexit
            if spec.config == DeviceConfig():  # the runtime's default device is this one
                rt = default_device()
            else:
                rt = Device(spec.config)
                atexit.register(rt.close)
            c = _clients[spec.key] = Client(rt, spec)
        if device is None:
            _client = c
    return c
