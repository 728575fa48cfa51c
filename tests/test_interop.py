"""Zero-copy numpy in and out, DLPack, and the short call path of a jitted function."""
from __future__ import annotations

import gc
import threading

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import tt_xla
from tt_xla import runtime
from tt_xla.runtime import Device, DeviceConfig, DeviceError, default_device

EDGE = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 3.5, -2.25], np.float32)


def _f(a, b):
    return a * 2 + b


@pytest.fixture(scope="module")
def f():
    return tt_xla.jit(_f)


def _want(a, b):
    return np.asarray(jax.jit(_f)(a, b))


def _counters():
    return default_device().counters()


# ---------------------------------------------------------------------------- zero-copy out
def test_asarray_is_a_read_only_view(f):
    a = np.arange(37, dtype=np.float32)
    out = f(a, a)
    before = _counters()["host_bytes_read"]
    v = np.asarray(out)
    assert _counters()["host_bytes_read"] - before == out.nbytes  # the modeled transfer, counted once
    v2 = np.asarray(out)
    v2.shape = (1, 37)  # a view's own metadata is the caller's
    assert np.shares_memory(v2, v) and np.asarray(out).shape == (37,)
    np.testing.assert_array_equal(v, _want(a, a))
    assert not v.flags.writeable and not v.flags.owndata
    with pytest.raises(ValueError):
        v[0] = 1
    with pytest.raises(ValueError):
        v.flags.writeable = True
    with pytest.raises(ValueError):
        v.view(np.uint8).flags.writeable = True
    # the runtime refuses writes into a mapped buffer: the view can never change
    with pytest.raises(DeviceError, match="read-only"):
        out.buffer.write(np.zeros(37, np.float32))
    # explicit copies stay fresh and writable
    for c in (np.array(out), out.to_numpy(), out[1:4], np.asarray(out, dtype=np.float64)):
        assert c.flags.writeable and not np.shares_memory(c, v)
    assert _counters()["host_bytes_read"] - before == out.nbytes + 2 * out.nbytes


def test_view_outlives_delete_and_donation():
    g = tt_xla.jit(lambda x: x + 1, donate_argnums=0)
    a = np.linspace(-3, 3, 100, dtype=np.float32)
    x = tt_xla.device_put(a)
    vx = np.asarray(x)
    y = g(x)  # donates x
    assert x.is_deleted()
    vy = np.asarray(y)
    y.delete()
    gc.collect()
    # reuse the freed blocks as hard as possible: the views' memory must not be among them
    for _ in range(5):
        np.asarray(g(np.zeros(100, np.float32)))
    np.testing.assert_array_equal(vx, a)
    np.testing.assert_array_equal(vy, a + 1)


def test_views_never_see_later_calls(f):
    a, b = np.ones(1000, np.float32), np.full(1000, 5.0, np.float32)
    views = []
    for i in range(6):
        out = f(a * i, b)
        views.append(np.asarray(out))
        del out  # the Array goes, its view stays
    gc.collect()
    for i, v in enumerate(views):
        np.testing.assert_array_equal(v, a * i * 2 + b)


def test_view_dtypes_and_shapes():
    cases = [np.arange(6, dtype=np.int32).reshape(2, 3), np.array([True, False, True]),
             np.arange(4, dtype=np.float32).astype(ml_dtypes.bfloat16), np.zeros((0, 3), np.float32),
             np.float32(2.5), EDGE]
    for x in cases:
        out = tt_xla.jit(lambda v: v)(x) if x.dtype != np.bool_ else tt_xla.jit(jnp.logical_not)(x)
        want = np.asarray(x) if x.dtype != np.bool_ else ~x
        v = np.asarray(out)
        assert v.dtype == want.dtype and v.shape == want.shape
        np.testing.assert_array_equal(v, want)


def test_device_close_waits_for_views():
    dev = Device(DeviceConfig(grid=(2, 1)))
    buf = dev.alloc(16)
    buf.write(np.arange(4, dtype=np.float32))
    v = buf.map().view(np.float32)
    buf.free()
    dev.close()  # the view still reads the memory: the device goes when it does
    assert dev.closed and dev._closing is not None
    np.testing.assert_array_equal(v, np.arange(4, dtype=np.float32))
    del v
    gc.collect()
    assert dev._closing is None


# ---------------------------------------------------------------------------- zero-copy in
def test_numpy_arguments_bound_without_copies(f):
    a = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    b = EDGE[np.arange(4096) % len(EDGE)]
    f(a, b)
    keep_a, keep_b = a.copy(), b.copy()
    before = _counters()
    out = f(a, b)
    after = _counters()
    # the modeled host->device transfer is still counted; the aliases are gone after the call
    assert after["host_bytes_written"] - before["host_bytes_written"] == a.nbytes + b.nbytes
    assert after["dram_bytes_allocated"] - before["dram_bytes_allocated"] == out.nbytes
    np.testing.assert_array_equal(np.asarray(out), _want(a, b))
    np.testing.assert_array_equal(a, keep_a)
    np.testing.assert_array_equal(b, keep_b)


@pytest.mark.parametrize("make", [
    lambda x: x[1:],                            # contiguous, 4-byte aligned: copied
    lambda x: x[::2],                           # strided
    lambda x: x.astype(np.float64),             # converted like jax (x64 off)
    lambda x: np.asfortranarray(x[:64].reshape(8, 8)),  # column-major
    lambda x: jnp.asarray(x),                   # a jax array
])
def test_other_arguments_are_converted(make):
    g = tt_xla.jit(lambda v: v * 3 - 1)
    x = make(np.arange(65, dtype=np.float32))
    np.testing.assert_array_equal(np.asarray(g(x)), np.asarray(x, np.float32) * 3 - 1)


def test_runtime_refuses_kernel_writes_into_wrapped_memory(f):
    exe = f.lower(np.ones(8, np.float32), np.ones(8, np.float32)).compile()
    raw = exe.raw
    dev = raw.device
    a = np.ones(8, np.float32)
    host_out = np.full(16, 7.0, np.float32)
    wrapped = dev.wrap(host_out)
    ins = [dev.wrap(a), dev.wrap(a)]
    with pytest.raises(DeviceError, match="read-only"):
        raw._program.launch([*ins, wrapped, *raw._resident])
    with pytest.raises(DeviceError, match="read-only"):
        wrapped.write(np.zeros(16, np.float32))
    np.testing.assert_array_equal(host_out, 7.0)
    with pytest.raises(DeviceError, match="16-byte aligned"):
        dev.wrap(np.zeros(9, np.float32)[1:])


def test_concurrent_calls_with_numpy_arguments(f):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(300).astype(np.float32) for _ in range(8)]
    f(xs[0], xs[0])
    errors = []

    def work(x):
        try:
            for _ in range(20):
                np.testing.assert_array_equal(np.asarray(f(x, x)), x * 2 + x)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ---------------------------------------------------------------------------- DLPack
def test_dlpack_to_numpy_is_zero_copy(f):
    out = f(np.arange(10, dtype=np.float32), np.ones(10, np.float32))
    assert out.__dlpack_device__() == (1, 0)
    n = np.from_dlpack(out)
    assert np.shares_memory(n, np.asarray(out)) and not n.flags.writeable
    np.testing.assert_array_equal(n, np.arange(10) * 2 + 1)
    with pytest.raises(BufferError):
        out.__dlpack__(copy=False)  # an unversioned consumer could write: only a copy is safe


def test_dlpack_to_jax_and_back():
    x = np.random.default_rng(2).standard_normal((33, 7)).astype(np.float32)
    t = tt_xla.device_put(x)
    j = jnp.from_dlpack(t)
    np.testing.assert_array_equal(np.asarray(j), x)
    back = tt_xla.device_put(j)  # jax's memory is read-only at its source: aliased
    assert back.buffer._keep is not None
    np.testing.assert_array_equal(np.asarray(back), x)
    assert np.shares_memory(np.asarray(back), np.from_dlpack(j))
    np.testing.assert_array_equal(np.asarray(tt_xla.jit(lambda v: v.sum(0))(back)), x.sum(0))
    del j
    gc.collect()
    np.testing.assert_array_equal(np.asarray(back), x)  # the Array keeps jax's buffer alive


def test_device_put_copies_writable_memory():
    x = np.arange(16, dtype=np.float32)
    t = tt_xla.device_put(x)
    x[:] = -1  # numpy memory is mutable: the Array must not follow it
    np.testing.assert_array_equal(np.asarray(t), np.arange(16))
    b = tt_xla.device_put(jnp.ones((3,), jnp.bfloat16))  # no numpy name for bf16 in DLPack: copied
    assert b.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(np.asarray(b).astype(np.float32), 1)
    r = tt_xla.device_put(np.from_dlpack(tt_xla.device_put(x)))  # numpy round trip
    np.testing.assert_array_equal(np.asarray(r), x)


# ---------------------------------------------------------------------------- call path
def test_steady_state_call_is_one_runtime_call(monkeypatch):
    g = tt_xla.jit(lambda a, b: (a + b, a * b))
    a, b = np.ones((4, 5), np.float32), tt_xla.device_put(np.full((4, 5), 2.0, np.float32))
    g(a, b)
    calls = {"execute": 0, "alloc": 0, "slow": 0, "export": 0}
    real = runtime._execute_raw

    def counting(*args):
        calls["execute"] += 1
        return real(*args)

    def count(name, fn):
        def wrapper(*args, **kw):
            calls[name] += 1
            return fn(*args, **kw)
        return wrapper

    monkeypatch.setattr(runtime, "_execute_raw", counting)
    monkeypatch.setattr(Device, "alloc", count("alloc", Device.alloc))
    monkeypatch.setattr(type(g), "_prepare_slow", count("slow", type(g)._prepare_slow))
    monkeypatch.setattr(type(g), "_export", count("export", type(g)._export))
    for _ in range(3):
        s, p = g(a, b)
        np.testing.assert_array_equal(np.asarray(s), 3)
        np.testing.assert_array_equal(np.asarray(p), 2)
    assert calls == {"execute": 3, "alloc": 0, "slow": 0, "export": 0}


def test_fast_path_respects_donation_and_deleted_arrays():
    g = tt_xla.jit(lambda a: a * 2, donate_argnums=0)
    x = tt_xla.device_put(np.ones(5, np.float32))
    np.testing.assert_array_equal(np.asarray(g(x)), 2)
    assert x.is_deleted()
    with pytest.raises(tt_xla.DeletedArrayError):
        g(x)
    y = tt_xla.device_put(np.ones(5, np.float32))
    np.testing.assert_array_equal(np.asarray(g(y)), 2)  # same key, served by the fast path
    h = tt_xla.jit(lambda a: None)
    assert h(np.ones(3, np.float32)) is None and h(np.ones(3, np.float32)) is None


def test_fast_path_keys_on_dtype_and_weak_type():
    g = tt_xla.jit(lambda a: a + 1)
    i = g(np.arange(3, dtype=np.int32))
    fl = g(np.arange(3, dtype=np.float32))
    d = g(np.arange(3, dtype=np.float64))  # canonicalized to float32, as jax.jit does
    assert (i.dtype, fl.dtype, d.dtype) == (np.int32, np.float32, np.float32)
    w = g(tt_xla.jit(lambda: jnp.arange(3.0) * 1.0)())
    np.testing.assert_array_equal(np.asarray(w), [1, 2, 3])
