"""tt-xla: run JAX programs on a (software-modeled) Tenstorrent-style accelerator.

`tt_xla.jit(f)` is a drop-in for `jax.jit`; `tt_xla.compile(stablehlo_text)` and
`tt_xla.client()` work without importing jax.
"""
from __future__ import annotations

import importlib

from . import errors
from .api import Executable, compile, device_put
from .array import Array, DeletedArrayError
from .client import Client, DeviceHandle, client
from .errors import UnsupportedError
from .executable import DeletedExecutableError, DeviceMismatchError

__all__ = ["Array", "Client", "DeletedArrayError", "DeletedExecutableError", "DeviceHandle",
           "DeviceMismatchError", "Executable",
           "UnsupportedError", "client", "compile", "device_put", "devices", "errors", "jit"]


def devices():
    return client().devices()


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), donate_argnames=(),
        compiler_options=None):
    """Like `jax.jit`, running on the tt device (see tt_xla/jit.py). Imports jax lazily."""
    mod = importlib.import_module("tt_xla.jit")
    # Importing the submodule rebinds the package attribute `jit` to it; the module is callable
    # too, but keep this function as the attribute.
    globals()["jit"] = _jit
    return mod.jit(fun, static_argnums=static_argnums, static_argnames=static_argnames,
                   donate_argnums=donate_argnums, donate_argnames=donate_argnames,
                   compiler_options=compiler_options)


_jit = jit
