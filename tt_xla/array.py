"""`tt_xla.Array`: a tensor resident in device DRAM. No jax here.

An Array is a DeviceBuffer plus a shape and a numpy dtype (bool for i1, ml_dtypes.bfloat16 for
bf16). The device's DRAM is host memory in the software model, so `np.asarray(a)` (and DLPack
consumers) read it in place: a read-only numpy view of the buffer (DeviceBuffer.map), which
keeps the memory alive after the Array is deleted or donated; the runtime then refuses every
write into that buffer, so a view never changes. `a.to_numpy()`, `np.array(a)` and indexing
return fresh copies. The buffer is freed by `delete()` or when the Array is garbage collected.
"""
from __future__ import annotations

import math

import numpy as np


class DeletedArrayError(RuntimeError):
    """An Array was used after `delete()` or after being donated to a computation."""


class Array:
    __slots__ = ("_buf", "_shape", "_dtype", "_weak_type", "_device", "_host", "__weakref__")

    def __init__(self, buf, shape, dtype, device=None, weak_type: bool = False):
        self._buf = buf
        self._shape = tuple(int(d) for d in shape)
        self._dtype = np.dtype(dtype)
        self._device = device
        self._weak_type = bool(weak_type)
        self._host = None  # the read-only numpy view, made on first use

    # ------------------------------------------------------------------ construction
    @classmethod
    def _new(cls, buf, shape: tuple, dtype: np.dtype, device, weak_type: bool = False) -> "Array":
        """The constructor for the call path: `shape` a tuple of ints and `dtype` a np.dtype."""
        a = object.__new__(cls)
        a._buf, a._shape, a._dtype, a._device, a._weak_type, a._host = buf, shape, dtype, device, weak_type, None
        return a

    @classmethod
    def _wrap(cls, device, x: np.ndarray) -> "Array":
        """An Array over `x`'s memory, no copy (C-contiguous, 16-byte aligned): `x` must never
        change (the caller knows it is read-only at its source); the Array keeps it alive."""
        return cls(device.wrap(x), x.shape, x.dtype, device)

    @classmethod
    def _upload(cls, device, x: np.ndarray, weak_type: bool = False) -> "Array":
        """Copy host array `x` (already of the wanted dtype) into a new device buffer."""
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)  # (would turn a 0-d array into 1-d: only when needed)
        buf = device.alloc(int(x.nbytes))
        if x.nbytes:
            buf.write(x)
        return cls(buf, x.shape, x.dtype, device, weak_type)

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def weak_type(self) -> bool:
        return self._weak_type

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    @property
    def device(self):
        return self._device

    def devices(self) -> set:
        return {self._device}

    @property
    def buffer(self):
        """The underlying DeviceBuffer (raises if deleted)."""
        return self._live_buffer()

    def _live_buffer(self):
        buf = self._buf
        if buf is None:
            raise DeletedArrayError(
                f"Array{list(self._shape)} {self._dtype} has been deleted (by delete() or by "
                "donation to a computation); its device memory is gone")
        return buf

    # ------------------------------------------------------------------ lifetime
    def block_until_ready(self) -> "Array":
        self._live_buffer()  # launches are synchronous: nothing to wait for
        return self

    def is_deleted(self) -> bool:
        return self._buf is None

    def delete(self) -> None:
        buf, self._buf = self._buf, None
        self._host = None  # views handed out keep the memory alive by themselves
        if buf is not None:
            buf.free()

    # ------------------------------------------------------------------ host copies
    def to_numpy(self) -> np.ndarray:
        buf = self._live_buffer()
        out = np.empty(self._shape, self._dtype)
        if out.nbytes:
            buf.read_into(out)
        return out

    def _view(self) -> np.ndarray:
        """The read-only numpy view of the device buffer (made once per Array)."""
        v = self._host
        if v is None:
            v = self._live_buffer().map().view(self._dtype).reshape(self._shape)
            self._host = v
        return v

    def __array__(self, dtype=None, copy=None):
        if copy:
            out = self.to_numpy()
            return out if dtype is None else out.astype(dtype, copy=False)
        v = self._view()
        if dtype is None or np.dtype(dtype) == v.dtype:
            return v.view()  # its own array object: setting .shape on it leaves ours alone
        if copy is False:
            raise ValueError(f"converting a {self._dtype} tt_xla.Array to {np.dtype(dtype)} copies "
                             "(copy=False)")
        return v.astype(dtype)

    # ------------------------------------------------------------------ DLPack
    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU: the software device's memory is host memory

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Zero-copy to consumers that can be told the memory is read-only (DLPack >= 1.0, e.g.
        numpy); an unversioned consumer (jax) could write into it, so it gets a copy."""
        if stream is not None and stream != -1:
            raise BufferError("a tt_xla.Array lives in host memory: no stream to synchronize")
        versioned = max_version is not None and max_version[0] >= 1
        if copy or not versioned:
            if copy is False:
                raise BufferError("an unversioned DLPack consumer cannot be told the memory is "
                                  "read-only: a copy is needed (copy=False)")
            out = self.to_numpy()
            return out.__dlpack__(max_version=max_version) if versioned else out.__dlpack__()
        return self._view().__dlpack__(max_version=max_version, dl_device=dl_device, copy=copy)

    def copy_to_host(self) -> np.ndarray:
        return self.to_numpy()

    def item(self, *args):
        return self.to_numpy().item(*args)

    def tolist(self):
        return self.to_numpy().tolist()

    def _scalar(self, kind: str):
        if self.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python {kind}; "
                            f"this one has shape {self._shape}")
        return self.to_numpy().reshape(()).item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __index__(self):
        if not np.issubdtype(self._dtype, np.integer):
            raise TypeError(f"only integer arrays can be used as an index, not {self._dtype}")
        return int(self._scalar("int"))

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of an array with shape {self._shape} is "
                             "ambiguous; use np.asarray(a).any() or .all()")
        return bool(self._scalar("bool"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of unsized object (a 0-d tt_xla.Array)")
        return self._shape[0]

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d tt_xla.Array")
        return iter(self.to_numpy())

    def __getitem__(self, index):
        out = self._view()[index]
        return out.copy() if isinstance(out, np.ndarray) else out  # a fresh, writable result

    def __repr__(self):
        if self._buf is None:
            return f"Array(<deleted>, shape={self._shape}, dtype={self._dtype.name})"
        body = np.array2string(self._view(), separator=", ", prefix="Array(")
        return f"Array({body}, dtype={self._dtype.name})"

    def __str__(self):
        if self._buf is None:
            return repr(self)
        return str(self.to_numpy())

    # hashing by identity like jax.Array is unhashable; keep that behaviour
    __hash__ = None  # type: ignore[assignment]
