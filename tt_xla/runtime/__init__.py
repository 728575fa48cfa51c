"""Python binding (ctypes) of libttrt, the tt-xla software accelerator runtime.

    dev = Device()                       # or default_device()
    buf = dev.alloc(4096); buf.write(np_array); buf.read_into(out_array)
    prog = dev.load_program(toolchain.build_kernel_library(c_source))
    prog.launch([buf_a, buf_b, buf_out])  # synchronous

Every failing runtime call raises DeviceError(status, message). A Device and its objects must be
used from one thread at a time (the runtime's own worker threads are internal).
"""

from __future__ import annotations

import atexit
import ctypes as C
import dataclasses
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from . import toolchain
from .toolchain import ToolchainError, build_kernel_library, include_dir

__all__ = ["DeviceError", "DeviceConfig", "Device", "DeviceBuffer", "Program", "default_device",
           "ToolchainError", "build_kernel_library", "include_dir", "library_path", "COUNTER_NAMES"]

_STATUS = ["TT_OK", "TT_ERR_INVALID_ARGUMENT", "TT_ERR_INVALID_HANDLE", "TT_ERR_OUT_OF_MEMORY",
           "TT_ERR_OUT_OF_RANGE", "TT_ERR_BAD_PROGRAM", "TT_ERR_LOAD_FAILED", "TT_ERR_INTERNAL",
           "TT_ERR_STEP_BUDGET", "TT_ERR_CANCELLED"]


class DeviceError(Exception):
    """A runtime call failed. ``status`` is the status name (e.g. "TT_ERR_INVALID_HANDLE")."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class _Config(C.Structure):
    _fields_ = [("grid_x", C.c_uint32), ("grid_y", C.c_uint32), ("sram_per_core", C.c_uint64),
                ("dram_bytes", C.c_uint64), ("host_threads", C.c_uint32), ("clock_ghz", C.c_double),
                ("dram_bytes_per_cycle", C.c_double), ("vector_tile_cycles", C.c_uint32),
                ("matrix_tile_cycles", C.c_uint32), ("launch_cycles", C.c_uint32)]


COUNTER_NAMES = ("programs_launched", "kernels_launched", "dram_bytes_read", "dram_bytes_written",
                 "host_bytes_written", "host_bytes_read", "dma_bytes", "matrix_tiles", "vector_ops",
                 "modeled_cycles", "busy_ns", "dram_bytes_allocated", "dram_bytes_peak")


class _Counters(C.Structure):
    _fields_ = [(n, C.c_uint64) for n in COUNTER_NAMES]


class _LaunchStats(C.Structure):
    _fields_ = [(n, C.c_uint64) for n in ("modeled_cycles", "dma_bytes", "vector_ops", "matrix_tiles", "sram_bytes")] + \
        [("cores", C.c_uint32), ("memory_bound", C.c_uint32)]


def _find_library() -> Path:
    env = os.environ.get("TT_XLA_RUNTIME_LIB")
    if env:
        return Path(env)
    for d in toolchain._package_dirs():
        if (d / "libttrt.so").is_file():
            return d / "libttrt.so"
    return toolchain.build_runtime_library()  # plain checkout: build from native/src


library_path = _find_library()
_lib = C.CDLL(str(library_path))
_P, _U64, _U32, _PU64 = C.c_void_p, C.c_uint64, C.c_uint32, C.POINTER(C.c_uint64)
for _name, _args in {
    "tt_device_config_default": [C.POINTER(_Config)],
    "tt_device_open": [C.POINTER(_Config), C.POINTER(_P)],
    "tt_device_close": [_P],
    "tt_device_info": [_P, C.POINTER(_Config)],
    "tt_buffer_alloc": [_P, _U64, _PU64],
    "tt_buffer_free": [_P, _U64],
    "tt_buffer_write": [_P, _U64, _U64, _P, _U64],
    "tt_buffer_read": [_P, _U64, _U64, _P, _U64],
    "tt_buffer_copy": [_P, _U64, _U64, _U64, _U64, _U64],
    "tt_program_load": [_P, C.c_char_p, _PU64],
    "tt_program_unload": [_P, _U64],
    "tt_program_launch": [_P, _U64, _PU64, _U32],
    "tt_device_synchronize": [_P],
    "tt_device_counters": [_P, C.POINTER(_Counters)],
    "tt_device_reset_counters": [_P],
    "tt_program_launch_stats": [_P, _U64, _U32, C.POINTER(_LaunchStats)],
    "tt_device_set_step_budget": [_P, _U64],
    "tt_device_cancel": [_P],
}.items():
    _f = getattr(_lib, _name)
    _f.argtypes = _args
    _f.restype = None if _name == "tt_device_config_default" else C.c_int
_lib.tt_device_error.argtypes = [_P]
_lib.tt_device_error.restype = C.c_char_p


def _cfg_defaults() -> _Config:
    c = _Config()
    _lib.tt_device_config_default(C.byref(c))
    return c


_D = _cfg_defaults()


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    grid: tuple[int, int] = (_D.grid_x, _D.grid_y)
    sram_per_core: int = _D.sram_per_core
    dram_bytes: int = _D.dram_bytes
    host_threads: int = 0  # 0 = number of online host cores
    # device cost model (the modeled accelerator)
    clock_ghz: float = _D.clock_ghz
    dram_bytes_per_cycle: float = _D.dram_bytes_per_cycle
    vector_tile_cycles: int = _D.vector_tile_cycles
    matrix_tile_cycles: int = _D.matrix_tile_cycles
    launch_cycles: int = _D.launch_cycles

    @property
    def ncores(self) -> int:
        return self.grid[0] * self.grid[1]

    def _to_c(self) -> _Config:
        return _Config(self.grid[0], self.grid[1], self.sram_per_core, self.dram_bytes, self.host_threads,
                       self.clock_ghz, self.dram_bytes_per_cycle, self.vector_tile_cycles,
                       self.matrix_tile_cycles, self.launch_cycles)

    @classmethod
    def _from_c(cls, c: _Config) -> "DeviceConfig":
        return cls((c.grid_x, c.grid_y), c.sram_per_core, c.dram_bytes, c.host_threads, c.clock_ghz,
                   c.dram_bytes_per_cycle, c.vector_tile_cycles, c.matrix_tile_cycles, c.launch_cycles)


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


class Device:
    """One simulated accelerator. ``config`` is the effective configuration."""

    def __init__(self, config: DeviceConfig | None = None):
        self._ptr = None
        h = C.c_void_p()
        st = _lib.tt_device_open(C.byref((config or DeviceConfig())._to_c()), C.byref(h))
        if st:
            raise DeviceError(_STATUS[st], f"tt_device_open refused the configuration {config}")
        self._ptr = h.value
        c = _Config()
        _lib.tt_device_info(self._ptr, C.byref(c))
        self.config = DeviceConfig._from_c(c)

    def _check(self, st: int) -> None:
        if st:
            msg = _lib.tt_device_error(self._ptr).decode(errors="replace") if self._ptr else "device is closed"
            raise DeviceError(_STATUS[st] if 0 <= st < len(_STATUS) else str(st), msg)

    def _live(self):
        if self._ptr is None:
            raise DeviceError("TT_ERR_INVALID_HANDLE", "device is closed")
        return self._ptr

    def alloc(self, nbytes: int) -> "DeviceBuffer":
        h = C.c_uint64()
        self._check(_lib.tt_buffer_alloc(self._live(), int(nbytes), C.byref(h)))
        return DeviceBuffer(self, h.value, int(nbytes))

    def load_program(self, path) -> "Program":
        h = C.c_uint64()
        self._check(_lib.tt_program_load(self._live(), os.fsencode(path), C.byref(h)))
        return Program(self, h.value, Path(path))

    def counters(self) -> dict[str, int]:
        c = _Counters()
        self._check(_lib.tt_device_counters(self._live(), C.byref(c)))
        return {n: getattr(c, n) for n in COUNTER_NAMES}

    def reset_counters(self) -> None:
        self._check(_lib.tt_device_reset_counters(self._live()))

    def synchronize(self) -> None:
        self._check(_lib.tt_device_synchronize(self._live()))

    def set_step_budget(self, steps: int) -> None:
        """Bounds the control-stream steps one program launch may take (0: the runtime's default);
        a launch past it fails with DeviceError TT_ERR_STEP_BUDGET."""
        self._check(_lib.tt_device_set_step_budget(self._live(), int(steps)))

    def cancel(self) -> None:
        """From any thread: the launch running on this device stops at its next control step with
        DeviceError TT_ERR_CANCELLED (no effect when none is running)."""
        ptr = self._ptr
        if ptr is not None:
            _lib.tt_device_cancel(ptr)

    def close(self) -> None:
        """Frees everything on the device; its buffers and programs refuse further use."""
        if self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            _lib.tt_device_close(ptr)

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class DeviceBuffer:
    """A device DRAM buffer. Freed on ``free()`` or when garbage collected."""

    __slots__ = ("device", "handle", "nbytes", "__weakref__")

    def __init__(self, device: Device, handle: int, nbytes: int):
        self.device, self.handle, self.nbytes = device, handle, nbytes

    def _h(self) -> int:
        if not self.handle:
            raise DeviceError("TT_ERR_INVALID_HANDLE", "buffer has been freed")
        return self.handle

    def write(self, data, offset: int = 0) -> None:
        """Writes bytes-like data or a numpy array (its raw bytes) at ``offset``."""
        if isinstance(data, bytes):
            ptr, n = data, len(data)
        else:
            a = np.ascontiguousarray(data) if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
            ptr, n = _addr(a), a.nbytes
        h = self._h()
        self.device._check(_lib.tt_buffer_write(self.device._live(), h, offset, ptr, n))

    def read(self, offset: int = 0, nbytes: int | None = None) -> bytes:
        n = self.nbytes - offset if nbytes is None else nbytes
        out = bytearray(n)
        self.read_into(np.frombuffer(out, np.uint8), offset)
        return bytes(out)

    def read_into(self, out: np.ndarray, offset: int = 0) -> np.ndarray:
        """Fills the C-contiguous, writable ``out`` with its nbytes from the buffer (no copies)."""
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("read_into needs a writable C-contiguous array")
        h = self._h()
        self.device._check(_lib.tt_buffer_read(self.device._live(), h, offset, _addr(out), out.nbytes))
        return out

    def copy_from(self, other: "DeviceBuffer", nbytes: int | None = None, src_offset: int = 0,
                  dst_offset: int = 0) -> None:
        """Device-side copy of ``nbytes`` (default: all of ``other``) from ``other``."""
        if other.device is not self.device:
            raise DeviceError("TT_ERR_INVALID_HANDLE", "buffers belong to different devices")
        n = other.nbytes - src_offset if nbytes is None else nbytes
        self.device._check(_lib.tt_buffer_copy(self.device._live(), self._h(), dst_offset, other._h(),
                                               src_offset, n))

    def free(self) -> None:
        """Idempotent. A freed buffer refuses every further use with DeviceError."""
        h, self.handle = self.handle, 0
        if h and self.device._ptr is not None:
            _lib.tt_buffer_free(self.device._ptr, h)

    def __del__(self):
        try:
            self.free()
        except Exception:
            pass

    def __repr__(self):
        return f"DeviceBuffer(nbytes={self.nbytes}, handle={self.handle:#x})"


_ARRAY_TYPES = [C.c_uint64 * n for n in range(65)]
_launch = _lib.tt_program_launch


class Program:
    """A loaded kernel library. ``launch`` binds buffers[i] to binding i and runs it to completion."""

    def __init__(self, device: Device, handle: int, path: Path):
        self.device, self.handle, self.path = device, handle, path

    def launch(self, buffers: Sequence[DeviceBuffer]) -> None:
        n = len(buffers)
        t = _ARRAY_TYPES[n] if n <= 64 else C.c_uint64 * n
        # Freed buffers carry handle 0, which the runtime refuses: no per-buffer Python checks.
        st = _launch(self.device._ptr, self.handle, t(*[b.handle for b in buffers]), n)
        if st:
            if not self.handle:
                raise DeviceError("TT_ERR_INVALID_HANDLE", "program has been unloaded")
            self.device._check(st)

    def launch_stats(self, launch: int) -> dict[str, int | str]:
        """What launch `launch` did the last time the program ran (from the cores' events):
        modeled cycles, DMA bytes, vector ops, matrix tiles, SRAM bytes per core, cores used,
        and whether compute or memory bound it."""
        out = _LaunchStats()
        self.device._check(_lib.tt_program_launch_stats(self.device._ptr, self.handle, launch, C.byref(out)))
        d = {n: int(getattr(out, n)) for n, _ in _LaunchStats._fields_ if n != "memory_bound"}
        d["bound"] = "memory" if out.memory_bound else "compute"
        return d

    def unload(self) -> None:
        """Idempotent."""
        h, self.handle = self.handle, 0
        if h and self.device._ptr is not None:
            _lib.tt_program_unload(self.device._ptr, h)

    def __del__(self):
        try:
            self.unload()
        except Exception:
            pass

    def __repr__(self):
        return f"Program({str(self.path)!r}, handle={self.handle:#x})"


_default: Device | None = None
_default_lock = threading.Lock()


def default_device() -> Device:
    """The process-wide device, opened on first use and closed at interpreter exit."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Device()
            atexit.register(_default.close)
        return _default
