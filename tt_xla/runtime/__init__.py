"""Python binding (ctypes) of libttrt, the tt-xla software accelerator runtime.

    dev = Device()                       # or default_device()
    buf = dev.alloc(4096); buf.write(np_array); buf.read_into(out_array)
    prog = dev.load_program(toolchain.build_kernel_library(c_source))
    prog.launch([buf_a, buf_b, buf_out])  # synchronous
    view = buf.map()                      # read-only numpy view of the buffer, no copy
    inp = dev.wrap(np_array)              # read-only buffer over host memory, no copy
    Executor(prog, in_bytes, out_bytes, resident)(args)  # a whole call in one runtime call

Every failing runtime call raises DeviceError(status, message). A Device may be used from many
threads at once: the runtime locks the device for every call (launches run one at a time) and
reports each thread its own errors. Only `close()` must not race with other uses of the device.
Handles carry their device: a buffer of another device is refused (TT_ERR_INVALID_HANDLE).
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

__all__ = ["DeviceError", "DeviceConfig", "Device", "DeviceBuffer", "Program", "Executor",
           "default_device", "ToolchainError", "build_kernel_library", "include_dir", "library_path", "COUNTER_NAMES"]

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
                ("matrix_tile_cycles", C.c_uint32), ("launch_cycles", C.c_uint32),
                ("matrix_tile_cycles_bf16", C.c_uint32), ("noc_bytes_per_cycle", C.c_uint32)]


COUNTER_NAMES = ("programs_launched", "kernels_launched", "dram_bytes_read", "dram_bytes_written",
                 "host_bytes_written", "host_bytes_read", "dma_bytes", "matrix_tiles", "vector_ops",
                 "modeled_cycles", "busy_ns", "dram_bytes_allocated", "dram_bytes_peak", "noc_bytes")


class _Counters(C.Structure):
    _fields_ = [(n, C.c_uint64) for n in COUNTER_NAMES]


class _LaunchStats(C.Structure):
    _fields_ = [(n, C.c_uint64) for n in ("modeled_cycles", "dma_bytes", "vector_ops", "matrix_tiles", "sram_bytes")] + \
        [("cores", C.c_uint32), ("memory_bound", C.c_uint32), ("host_ns", C.c_uint64), ("operand_bytes", C.c_uint64),
         ("noc_bytes", C.c_uint64)]


CORE_STAT_NAMES = ("compute_cycles", "dma_cycles", "dma_bytes", "vector_ops", "matrix_tiles")


class _CoreStats(C.Structure):
    _fields_ = [(n, C.c_uint64) for n in CORE_STAT_NAMES]


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
    "tt_device_id": [_P, C.POINTER(_U32)],
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
    "tt_buffer_map": [_P, _U64, C.POINTER(_P)],
    "tt_buffer_wrap": [_P, _P, _U64, _PU64],
    "tt_program_execute": [_P, _U64, _PU64, C.POINTER(_P), _PU64, _U32],
    "tt_program_launch_stats": [_P, _U64, _U32, C.POINTER(_LaunchStats)],
    "tt_program_core_stats": [_P, _U64, _U32, _U32, C.POINTER(_CoreStats)],
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
    matrix_tile_cycles: int = _D.matrix_tile_cycles  # f32 operands
    launch_cycles: int = _D.launch_cycles
    matrix_tile_cycles_bf16: int = _D.matrix_tile_cycles_bf16  # bf16 operands
    noc_bytes_per_cycle: int = _D.noc_bytes_per_cycle  # per core, DMA to/from tensors placed in SRAM

    @property
    def ncores(self) -> int:
        return self.grid[0] * self.grid[1]

    def _to_c(self) -> _Config:
        return _Config(self.grid[0], self.grid[1], self.sram_per_core, self.dram_bytes, self.host_threads,
                       self.clock_ghz, self.dram_bytes_per_cycle, self.vector_tile_cycles,
                       self.matrix_tile_cycles, self.launch_cycles, self.matrix_tile_cycles_bf16,
                       self.noc_bytes_per_cycle)

    @classmethod
    def _from_c(cls, c: _Config) -> "DeviceConfig":
        return cls((c.grid_x, c.grid_y), c.sram_per_core, c.dram_bytes, c.host_threads, c.clock_ghz,
                   c.dram_bytes_per_cycle, c.vector_tile_cycles, c.matrix_tile_cycles, c.launch_cycles,
                   c.matrix_tile_cycles_bf16, c.noc_bytes_per_cycle)


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _data_ptr(a: np.ndarray) -> int | None:
    """The address of C-contiguous `a`'s data, else None. (Through ctypes' buffer view when `a`
    is writable: several times cheaper than building __array_interface__, on the call path.)"""
    try:
        return C.addressof(C.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only, empty or not contiguous
        return _addr(a) if a.flags.c_contiguous else None


def _aligned_copy(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `x` at a 64-byte aligned address."""
    raw = np.empty(x.nbytes + 64, np.uint8)
    off = -_addr(raw) % 64
    out = raw[off:off + x.nbytes].view(x.dtype).reshape(x.shape)
    out[...] = x
    return out


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
        i = C.c_uint32()
        _lib.tt_device_id(self._ptr, C.byref(i))
        self.id = i.value  # unique among open devices; what the runtime's messages call it

    def __repr__(self):
        grid = "x".join(map(str, self.config.grid))
        return f"Device(id={self.id}, grid={grid}{', closed' if self._ptr is None else ''})"

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

    def wrap(self, host: np.ndarray) -> "DeviceBuffer":
        """A read-only buffer over ``host``'s memory, no copy (``host`` must be C-contiguous and
        16-byte aligned; the buffer keeps it alive). Kernels can never write it."""
        if not host.flags.c_contiguous:
            raise ValueError("wrap needs a C-contiguous array")
        h = C.c_uint64()
        self._check(_lib.tt_buffer_wrap(self._live(), _addr(host), host.nbytes, C.byref(h)))
        buf = DeviceBuffer(self, h.value, host.nbytes)
        buf._keep = host
        return buf

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
        """Frees everything on the device; its buffers and programs refuse further use. Memory
        that numpy views still read (DeviceBuffer.map) lives on until the last view goes."""
        if self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            if self._mapped:
                self._closing = ptr
            else:
                _lib.tt_device_close(ptr)

    # numpy views of device memory (DeviceBuffer.map) alive; a close waits for them
    _mapped = 0
    _closing = None

    def _unmap(self, handle: int) -> None:
        self._mapped -= 1
        if self._ptr is not None:
            _lib.tt_buffer_free(self._ptr, handle)
        elif self._closing is not None and not self._mapped:
            ptr, self._closing = self._closing, None
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


class _Mapping:
    """One runtime reference to a buffer's memory (tt_buffer_map), the base of the numpy views of
    it: the memory lives until this goes, whatever happens to the DeviceBuffer. It exposes no
    writable buffer, so numpy cannot make a view of it writable."""

    __slots__ = ("_device", "_handle", "__array_interface__")

    def __init__(self, device: Device, handle: int, ptr: int, nbytes: int):
        self._device, self._handle = device, handle
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, True), "version": 3}

    def __del__(self):
        try:
            self._device._unmap(self._handle)
        except Exception:
            pass


class DeviceBuffer:
    """A device DRAM buffer. Freed on ``free()`` or when garbage collected."""

    __slots__ = ("device", "handle", "nbytes", "_keep", "__weakref__")

    def __init__(self, device: Device, handle: int, nbytes: int):
        self.device, self.handle, self.nbytes = device, handle, nbytes
        self._keep = None  # host memory a wrapped buffer aliases (Device.wrap)

    def map(self) -> np.ndarray:
        """A read-only uint8 numpy view of the buffer's memory, no copy (the device's DRAM is host
        memory). The buffer becomes read-only for good; the view keeps the memory alive after
        ``free()``."""
        h = self._h()
        dev = self.device
        ptr = C.c_void_p()
        dev._check(_lib.tt_buffer_map(dev._live(), h, C.byref(ptr)))
        dev._mapped += 1
        m = _Mapping(dev, h, ptr.value or 0, self.nbytes)
        view = np.asarray(m)
        if self._keep is not None:  # wrapped host memory: the view must keep it alive too
            view = np.asarray(_KeepAlive(view, self._keep))
        return view

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


class _KeepAlive:
    """A view's base that also holds another object (the host memory a wrapped buffer aliases)."""

    __slots__ = ("__array_interface__", "_objs")

    def __init__(self, view: np.ndarray, *objs):
        self.__array_interface__ = dict(view.__array_interface__, data=(_addr(view), True))
        self._objs = (view, *objs)


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

    def core_stats(self, launch: int) -> list[dict[str, int]]:
        """Per core (index y * grid_x + x), what it did in launch `launch` the last time the
        program ran: compute and DMA time in modeled cycles (they overlap on a core), DMA bytes,
        vector ops, matrix tiles. Zeros for cores that got no work."""
        out, dev = _CoreStats(), self.device
        rows = []
        for core in range(dev.config.ncores):
            dev._check(_lib.tt_program_core_stats(dev._ptr, self.handle, launch, core, C.byref(out)))
            rows.append({n: int(getattr(out, n)) for n in CORE_STAT_NAMES})
        return rows

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


class Executor:
    """A program's call in one runtime call (tt_program_execute), its bindings being
    ``[args..., outputs..., resident...]``: ``args`` are DeviceBuffers or C-contiguous, 16-byte
    aligned numpy arrays (bound read-only for the call, no copy), outputs fresh buffers of
    ``out_bytes`` from the device's pooled allocator, resident buffers fixed (constants, arena).
    The binding arrays are reused, so calls must not overlap: the caller serializes them."""

    def __init__(self, program: Program, in_bytes: Sequence[int], out_bytes: Sequence[int],
                 resident: Sequence[DeviceBuffer]):
        nin, nout = len(in_bytes), len(out_bytes)
        n = nin + nout + len(resident)
        self.program, self._n, self._resident = program, n, list(resident)
        # Arguments converted once: ctypes' per-call argtypes conversion costs more than the
        # runtime call on the latency path of a tiny program.
        self._dev_ptr, self._prog_handle = C.c_void_p(program.device._live()), C.c_uint64(program.handle)
        self._handles = (C.c_uint64 * n)(*([0] * (nin + nout)), *(b.handle for b in resident))
        self._hosts = (C.c_void_p * n)()
        self._bytes = (C.c_uint64 * n)(*in_bytes, *out_bytes, *([0] * len(resident)))
        self._outs = tuple((i, int(b)) for i, b in enumerate(out_bytes, nin))
        self._nc = C.c_uint32(n)

    def __call__(self, args: Sequence) -> list[DeviceBuffer]:
        hs, ps, nb = self._handles, self._hosts, self._bytes
        copies = []  # aligned copies of arguments that cannot be bound in place: alive through the call
        for i, a in enumerate(args):
            if type(a) is np.ndarray:
                p = _data_ptr(a)
                if p is None or p % 16:
                    a = _aligned_copy(a)
                    copies.append(a)
                    p = _addr(a)
                hs[i] = 0
                ps[i] = p
                nb[i] = a.nbytes
            else:
                h = a.handle
                if not h:  # 0 would ask the runtime for a fresh (uninitialized) buffer
                    raise DeviceError("TT_ERR_INVALID_HANDLE", f"argument {i}: buffer has been freed")
                hs[i] = h
                ps[i] = None
        for i, _ in self._outs:
            hs[i] = 0
        prog = self.program
        dev = prog.device
        if dev._ptr is None or not prog.handle:  # closed / unloaded: the saved pointers are stale
            raise DeviceError("TT_ERR_INVALID_HANDLE", "device is closed" if dev._ptr is None
                              else "program has been unloaded")
        st = _execute_raw(self._dev_ptr, self._prog_handle, hs, ps, nb, self._nc)
        if st:
            if not prog.handle:
                raise DeviceError("TT_ERR_INVALID_HANDLE", "program has been unloaded")
            dev._check(st)
        return [DeviceBuffer(dev, hs[i], n) for i, n in self._outs]


_execute_raw = C.CDLL(str(library_path)).tt_program_execute  # no argtypes: Executor converts once
_execute_raw.restype = C.c_int
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
