"""Objects are bound to their device, and deleted objects say so.

An Array (or DeviceBuffer, or Program) of one device passed to another is refused with an error
naming both devices, never resolved to whatever the other device keeps in the same slot; a
deleted LoadedExecutable refuses calls with a "deleted" error.
"""
from __future__ import annotations

import numpy as np
import pytest

import tt_xla
import tt_xla.runtime as rt
from tt_xla.client import Client
from tt_xla.executable import DeletedExecutableError, DeviceMismatchError

ADD = """func.func public @main(%arg0: tensor<8xf32>, %arg1: tensor<8xf32>) -> tensor<8xf32> {
  %0 = stablehlo.add %arg0, %arg1 : tensor<8xf32>
  return %0 : tensor<8xf32>
}"""


@pytest.fixture
def second():
    """A client on a second device, next to the default one."""
    d = rt.Device(rt.DeviceConfig(host_threads=1))
    yield Client(d)
    d.close()


def test_devices_have_distinct_ids(second):
    d1, d2 = tt_xla.client().devices()[0].runtime_device, second.devices()[0].runtime_device
    assert d1.id != d2.id and d1.id > 0 and d2.id > 0
    assert f"id={d2.id}" in repr(d2)


def test_array_of_another_device_is_refused(second):
    c1 = tt_xla.client()
    e1 = c1.compile(ADD)
    x1 = c1.buffer_from_pyval(np.ones(8, np.float32))
    # the same slot on the other device holds different data: it must not be read
    x2 = second.buffer_from_pyval(np.full(8, 7.0, np.float32))
    with pytest.raises(DeviceMismatchError) as e:
        e1.execute([x1, x2])
    d1, d2 = c1.devices()[0].runtime_device, second.devices()[0].runtime_device
    assert "argument 1" in str(e.value) and repr(d1) in str(e.value) and repr(d2) in str(e.value)
    with pytest.raises(DeviceMismatchError):
        e1(x2, x1)
    np.testing.assert_array_equal(np.asarray(e1.execute([x1, x1])[0]), np.full(8, 2.0, np.float32))
    # copying over (through the host) is the way to move it
    moved = c1.buffer_from_pyval(x2)
    assert moved.device is d1
    np.testing.assert_array_equal(np.asarray(e1.execute([x1, moved])[0]), np.full(8, 8.0, np.float32))


def test_jit_refuses_an_array_of_another_device(second):
    jnp = pytest.importorskip("jax.numpy")
    f = tt_xla.jit(lambda a, b: jnp.add(a, b))
    x = np.arange(8, dtype=np.float32)
    y = f(x, x)
    other = second.buffer_from_pyval(x)
    with pytest.raises(DeviceMismatchError, match="lives on"):
        f(y, other)


def test_runtime_refuses_another_devices_handles():
    d1, d2 = rt.Device(rt.DeviceConfig(host_threads=1)), rt.Device(rt.DeviceConfig(host_threads=1))
    try:
        b1, b2 = d1.alloc(64), d2.alloc(64)
        b1.write(np.zeros(16, np.float32))
        forged = rt.DeviceBuffer(d2, b1.handle, 64)  # d1's handle presented to d2
        with pytest.raises(rt.DeviceError, match="INVALID_HANDLE") as e:
            forged.read()
        assert f"belongs to device {d1.id}, not to this device {d2.id}" in e.value.message
        forged.handle = 0
        with pytest.raises(rt.DeviceError, match="different devices"):
            b2.copy_from(b1)
    finally:
        d1.close()
        d2.close()


def test_deleted_executable_says_so():
    c = Client()  # its own cache (same default device)
    exe = c.compile(ADD)
    x = c.buffer_from_pyval(np.ones(8, np.float32))
    exe.execute([x, x])
    exe.delete()
    exe.delete()  # idempotent
    assert exe.is_deleted()
    with pytest.raises(DeletedExecutableError, match="deleted"):
        exe.execute([x, x])
    with pytest.raises(DeletedExecutableError, match="deleted"):
        exe(np.ones(8, np.float32), np.ones(8, np.float32))
    # the client forgot it: compiling again gives a working executable
    again = c.compile(ADD)
    assert again is not exe
    np.testing.assert_array_equal(np.asarray(again.execute([x, x])[0]), np.full(8, 2.0, np.float32))


def test_jit_recovers_from_a_deleted_executable():
    jnp = pytest.importorskip("jax.numpy")
    f = tt_xla.jit(lambda a: jnp.sin(a) * 2)
    x = np.linspace(-3, 3, 16, dtype=np.float32)
    first = np.asarray(f(x))
    f.lower(x).compile().delete()
    np.testing.assert_array_equal(np.asarray(f(x)), first)
