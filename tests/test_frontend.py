"""The user-facing layer: tt_xla.jit (pytrees, caching, statics, donation, device-resident
arguments), tt_xla.compile without jax, the client, Arrays, errors, fusion counts, and the
no-jax import discipline of the lower layers."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

import tt_xla
from tt_xla.errors import UnsupportedError
from util import check, inputs

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tt_xla.__file__)))

ADD_EXP_TEXT = """\
#loc1 = loc("x")
#loc2 = loc("y")
module @jit_f attributes {jax.uses_shape_polymorphism = false, mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<8xf32> loc("x"), %arg1: tensor<8xf32> loc("y")) -> (tensor<8xf32> {jax.result_info = "result[0]"}, tensor<8xf32> {jax.result_info = "result[1]"}) {
    %cst = stablehlo.constant dense<2.000000e+00> : tensor<f32> loc(#loc11)
    %0 = stablehlo.exponential %arg0 : tensor<8xf32> loc(#loc15)
    %1 = stablehlo.add %0, %arg1 : tensor<8xf32> loc(#loc16)
    %2 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<8xf32> loc(#loc17)
    %3 = stablehlo.multiply %arg0, %2 : tensor<8xf32> loc(#loc17)
    return %1, %3 : tensor<8xf32>, tensor<8xf32> loc(#loc11)
  } loc(#loc)
} loc(#loc)
#loc = loc(unknown)
#loc3 = loc("<string>":5:6 to :41)
#loc4 = loc("<string>":3:20 to :30)
#loc5 = loc("<string>":3:20 to :34)
#loc6 = loc("<string>":3:36 to :41)
#loc7 = loc("<module>"(#loc3))
#loc8 = loc("f"(#loc4))
#loc9 = loc("f"(#loc5))
#loc10 = loc("f"(#loc6))
#loc11 = loc("jit(f)"(#loc7))
#loc12 = loc(callsite(#loc8 at #loc7))
#loc13 = loc(callsite(#loc9 at #loc7))
#loc14 = loc(callsite(#loc10 at #loc7))
#loc15 = loc("jit(f)/exp"(#loc12))
#loc16 = loc("jit(f)/add"(#loc13))
#loc17 = loc("jit(f)/mul"(#loc14))
"""


def _run_py(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def _counters():
    return tt_xla.client().devices()[0].counters()


# ----------------------------------------------------------------------------- pytrees
def test_pytrees_in_and_out():
    def f(d, t, lst, none):
        assert none is None
        return {"sum": d["a"] + t[0], "pair": (lst[0] * 2, None), "list": [t[1] - d["b"]]}

    d = {"a": inputs((3, 4)), "b": inputs((5,), seed=1)}
    t = (inputs((3, 4), seed=2), inputs((5,), seed=3))
    out = check(f, d, t, [inputs((2,), np.int32)], None)
    assert set(out) == {"sum", "pair", "list"} and out["pair"][1] is None
    assert isinstance(out["list"], list) and isinstance(out["pair"], tuple)


def test_kwargs_and_scalar_output():
    g = tt_xla.jit(lambda x, *, scale: jnp.sum(x) * scale)
    x = inputs((4, 4), edges=False)
    r = g(x, scale=2.0)
    assert r.shape == () and r.dtype == np.float32
    np.testing.assert_allclose(float(r), float(np.sum(x) * 2), rtol=1e-5)


def test_unused_argument_is_dropped_by_export():
    check(lambda x, unused, y: x * y, inputs((5,)), inputs((3,), seed=1), inputs((5,), seed=2))


def test_python_scalars_and_x64_off():
    check(lambda x, s, i, b: (x * s + i, jnp.where(b, x, -x)), inputs((6,)), 1.5, 3, True)
    x64 = np.arange(6, dtype=np.float64) / 7
    out = check(lambda x: x * 3, x64)  # float64 input becomes float32, as in jax.jit
    assert out.dtype == np.float32
    out = check(lambda x: x + 1, np.arange(4, dtype=np.int64))
    assert out.dtype == np.int32


def test_weak_type_output_matches_jax():
    got = tt_xla.jit(lambda s: s * 2)(3.0)
    want = jax.jit(lambda s: s * 2)(3.0)
    assert got.dtype == want.dtype and got.weak_type == want.weak_type
    # a weak output fed back in keeps the same cache entry as a Python float
    g = tt_xla.jit(lambda s: s + 1)
    g(g(1.0))
    assert g._cache_size() == 1


def test_jax_array_inputs():
    x = jnp.arange(10, dtype=jnp.float32)
    out = tt_xla.jit(lambda x: x * x)(x)
    np.testing.assert_array_equal(np.asarray(out), np.arange(10, dtype=np.float32) ** 2)


# ----------------------------------------------------------------------------- caching
def test_cache_hits_and_recompiles():
    f = tt_xla.jit(lambda x, y: x * y + 1)
    a, b = inputs((4, 5)), inputs((4, 5), seed=1)
    c0 = tt_xla.client().compile_count
    f(a, b)
    assert f._cache_size() == 1
    c1 = tt_xla.client().compile_count
    f(a + 1, b)
    f(tt_xla.device_put(a), b)
    assert f._cache_size() == 1 and tt_xla.client().compile_count == c1
    f(inputs((3, 5)), inputs((3, 5)))  # new shape
    assert f._cache_size() == 2
    f(a.astype(ml_dtypes.bfloat16), b.astype(ml_dtypes.bfloat16))  # new dtype
    assert f._cache_size() == 3
    f({"x": a}["x"], b)
    assert f._cache_size() == 3
    assert c0 <= c1 <= tt_xla.client().compile_count


def test_static_argnums_and_argnames():
    def f(x, n, *, mode="add"):
        return x + n if mode == "add" else x * n

    g = tt_xla.jit(f, static_argnums=(1,), static_argnames=("mode",))
    x = inputs((3, 4), edges=False)
    np.testing.assert_allclose(np.asarray(g(x, 2)), x + 2)
    np.testing.assert_allclose(np.asarray(g(x, 3)), x + 3)
    np.testing.assert_allclose(np.asarray(g(x, 3, mode="mul")), x * 3)
    np.testing.assert_allclose(np.asarray(g(x, 3, mode="mul")), x * 3)
    assert g._cache_size() == 3
    h = tt_xla.jit(f, static_argnames=("n",))  # name of a positional parameter
    np.testing.assert_allclose(np.asarray(h(x, 5)), x + 5)
    np.testing.assert_allclose(np.asarray(h(x, n=6)), x + 6)
    # shape-dependent Python control flow on a static argument
    r = tt_xla.jit(lambda x, axes: jnp.sum(x, axis=axes), static_argnums=1)
    np.testing.assert_allclose(np.asarray(r(x, (0,))), x.sum(0), rtol=1e-6)
    with pytest.raises((ValueError, TypeError)):
        r(x, [0])  # unhashable static argument


def test_donate_argnums_marks_deleted():
    f = tt_xla.jit(lambda p, g: p - 0.1 * g, donate_argnums=(0,))
    p = tt_xla.device_put(np.ones((4, 8), np.float32))
    g = tt_xla.device_put(np.full((4, 8), 2.0, np.float32))
    out = f(p, g)
    assert p.is_deleted() and not g.is_deleted()
    np.testing.assert_allclose(np.asarray(out), np.full((4, 8), 0.8, np.float32), rtol=1e-6)
    with pytest.raises(tt_xla.DeletedArrayError):
        np.asarray(p)
    with pytest.raises(tt_xla.DeletedArrayError):
        f(p, g)
    f(np.ones((4, 8), np.float32), g)  # numpy arguments: nothing to delete


def test_device_arrays_do_not_go_through_host():
    f = tt_xla.jit(lambda x, w: jnp.tanh(x @ w))
    x = inputs((64, 64), edges=False)
    w = inputs((64, 64), seed=1, edges=False) / 8
    y = f(x, w)  # compiles, uploads x and w
    wd = tt_xla.device_put(w)
    before = _counters()
    for _ in range(3):
        y = f(y, wd)
    after = _counters()
    assert after["host_bytes_written"] == before["host_bytes_written"]
    assert after["host_bytes_read"] == before["host_bytes_read"]
    assert after["programs_launched"] - before["programs_launched"] == 3
    ref = x
    for _ in range(4):
        ref = np.tanh(ref @ w)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-4, atol=1e-5)


def test_lower_as_text_and_kernels():
    f = tt_xla.jit(lambda x: jnp.exp(x) * 2)
    x = inputs((4, 4))
    text = f.lower(x).as_text()
    assert "stablehlo.exponential" in text and "func.func public @main" in text
    ks = f.kernels(x)
    assert len(ks) >= 1 and all(k.kind in ("elementwise", "reduce", "matmul", "movement") for k in ks)
    assert "tt_program_entry" in f.source(x)


def test_called_inside_jax_transformations():
    f = tt_xla.jit(lambda x: jnp.sin(x) * x)
    x = inputs((5,), edges=False)
    g = jax.grad(lambda x: jnp.sum(f(x)))(x)
    np.testing.assert_allclose(np.asarray(g), np.cos(x) * x + np.sin(x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- compile / client
def test_compile_text_without_jax():
    r = _run_py(f"""
        import sys
        import numpy as np
        import tt_xla
        exe = tt_xla.compile({ADD_EXP_TEXT!r})
        x = np.linspace(-2, 2, 8, dtype=np.float32)
        y = np.arange(8, dtype=np.float32)
        a, b = exe(x, y)
        assert isinstance(a, tt_xla.Array) and a.shape == (8,) and a.dtype == np.float32
        np.testing.assert_allclose(np.asarray(a), np.exp(x) + y, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(b), x * 2, rtol=1e-6)
        a2, _ = exe(a, b)  # Arrays go back in without a host copy
        np.testing.assert_allclose(a2.to_numpy(), np.exp(np.exp(x) + y) + 2 * x, rtol=1e-5)
        assert len(exe.kernels()) >= 1 and "tt_program_entry" in exe.source
        bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib') or 'mlir' in m]
        assert not bad, bad
        print("OK")
    """)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def test_lower_layers_import_no_jax_or_mlir():
    r = _run_py("""
        import sys
        import tt_xla.hlo_parser, tt_xla.compiler, tt_xla.runtime
        import tt_xla.executable, tt_xla.array, tt_xla.client, tt_xla.api, tt_xla
        import tt_xla.runtime.toolchain
        bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib') or 'mlir' in m.lower()]
        assert not bad, bad
        print("OK")
    """)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def test_client_devices():
    c = tt_xla.client()
    assert c is tt_xla.client()
    assert c.platform == "tt"
    devs = c.devices()
    assert len(devs) >= 1
    d = devs[0]
    assert d.id == 0 and d.platform == "tt" and d.device_kind == "tt-sim wormhole_b0-like"
    assert d.core_grid is not None and d.num_cores == int(np.prod(d.core_grid)) > 0
    assert d.sram_bytes_per_core and d.sram_bytes_per_core > 0
    assert set(d.counters()) >= {"programs_launched", "kernels_launched", "host_bytes_written",
                                 "modeled_cycles", "dram_bytes_peak"}


@pytest.mark.parametrize("value", [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array([1.5, -2.25, np.inf], ml_dtypes.bfloat16),
    np.array([[True, False], [False, True]]),
    np.array([-7, 2**31 - 1], np.int32),
    np.float16(3.5),
    [[1.0, 2.0], [3.0, 4.0]],
    7,
    np.zeros((0, 3), np.float32),
], ids=["f32", "bf16", "bool", "i32", "f16-scalar", "list", "int", "empty"])
def test_buffer_from_pyval_roundtrip(value):
    c = tt_xla.client()
    a = c.buffer_from_pyval(value)
    want = np.asarray(value)
    got = a.to_numpy()
    assert got.dtype == want.dtype and got.shape == want.shape == a.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(a), want)
    assert a.nbytes == want.nbytes and a.size == want.size and a.ndim == want.ndim
    a.delete()
    assert a.is_deleted()
    with pytest.raises(tt_xla.DeletedArrayError):
        a.to_numpy()
    assert "deleted" in repr(a)


def test_array_python_protocols():
    a = tt_xla.device_put(np.array([[1.5, 2.0, 3.0]], np.float32))
    assert len(a) == 1 and a.shape == (1, 3) and a.tolist() == [[1.5, 2.0, 3.0]]
    assert a[0, 1] == 2.0 and a.block_until_ready() is a
    s = tt_xla.device_put(np.float32(2.5))
    assert float(s) == 2.5 and int(s) == 2 and bool(s) and s.item() == 2.5
    with pytest.raises(TypeError):
        float(a)
    with pytest.raises(TypeError):
        len(s)
    assert "1.5" in repr(a) and "float32" in repr(a)
    # usable by jax on CPU
    np.testing.assert_allclose(np.asarray(jnp.sin(jnp.asarray(a))), np.sin(np.asarray(a)))
    np.testing.assert_allclose(np.asarray(jax.device_put(np.asarray(a))), np.asarray(a))


def test_array_freed_on_gc():
    import gc
    before = _counters()["dram_bytes_allocated"]
    a = tt_xla.device_put(np.ones((1024, 1024), np.float32))
    assert _counters()["dram_bytes_allocated"] >= before + a.nbytes
    del a
    gc.collect()
    assert _counters()["dram_bytes_allocated"] <= before


def test_client_level_execute():
    c = tt_xla.client()
    exe = c.compile(ADD_EXP_TEXT)
    assert c.compile(ADD_EXP_TEXT) is exe  # cached by text
    x = c.buffer_from_pyval(np.linspace(0, 1, 8, dtype=np.float32))
    y = c.buffer_from_pyval(np.ones(8, np.float32))
    outs = exe.execute([x, y])
    assert len(outs) == 2 and all(isinstance(o, tt_xla.Array) for o in outs)
    np.testing.assert_allclose(outs[0].to_numpy(), np.exp(x.to_numpy()) + 1, rtol=1e-6)
    with pytest.raises(TypeError):
        exe.execute([x])
    with pytest.raises(TypeError):
        exe.execute([x, c.buffer_from_pyval(np.ones(9, np.float32))])


# ----------------------------------------------------------------------------- errors
def _sort(x):
    return lax.sort(x)  # UNSUPPORTED-CANDIDATE sort


def _fft(x):
    return jnp.fft.fft(x).real  # UNSUPPORTED-CANDIDATE fft


def _hessenberg(x):
    return lax.linalg.hessenberg(x.reshape(2, 4)[:, :2])[0]  # LAPACK gehrd: no expansion yet


def _while(x):
    return lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * 2), (0, x))[1]  # UNSUPPORTED-CANDIDATE while


def _line_of(marker: str) -> int:
    with open(__file__) as fh:
        for i, line in enumerate(fh, 1):
            if "UNSUPPORTED-CANDIDATE " + marker in line and "def _line_of" not in line:
                return i
    raise AssertionError(marker)


@pytest.mark.parametrize("name,f,op_words", [
    ("sort", _sort, ("sort",)),
    ("while", _while, ("while",)),
    # jnp.fft.fft is a private function called from main: the unsupported op (the complex
    # convert, or fft itself) carries only a name location; the call site has the user's line.
    ("fft", _fft, ("fft", "complex")),
], ids=["sort", "while", "fft"])
def test_unsupported_op_names_op_and_user_location(name, f, op_words):
    x = inputs((8,), edges=False)
    try:
        got = tt_xla.jit(f)(x)
    except UnsupportedError as e:
        msg = str(e)
        assert any(w in msg.lower() for w in op_words), msg
        assert "stablehlo." in msg or "chlo." in msg, msg
        assert f"{os.path.basename(__file__)}:{_line_of(name)}" in msg, msg
        assert os.path.abspath(__file__) in msg or __file__ in msg, msg
    else:  # supported after all: then it must be right
        np.testing.assert_allclose(np.asarray(got), np.asarray(jax.jit(f)(x)), rtol=1e-5, atol=1e-5)


def test_jitted_library_function_error_names_the_callers_line():
    """`tt_xla.jit(jnp.linalg.cholesky)`: no frame of the user's is inside the traced call
    (jit's wrapper calls jax's function), so the error names the line that called the jitted
    function, not tt_xla/jit.py."""
    x = np.eye(4, dtype=np.float32) * 2
    for f in (jnp.linalg.cholesky, jnp.fft.rfft):
        try:
            got = tt_xla.jit(f)(x)  # UNSUPPORTED-CANDIDATE library
        except UnsupportedError as e:
            assert f"{os.path.abspath(__file__)}:{_line_of('library')}:" in str(e), str(e)
            assert "tt_xla" + os.sep + "jit.py" not in str(e), str(e)
        else:  # supported after all: then it must be right
            np.testing.assert_allclose(np.asarray(got), np.asarray(jax.jit(f)(x)), rtol=1e-5, atol=1e-5)


def test_unsupported_argument_type_names_the_argument():
    """An argument of an unsupported type (float4_e2m1fn) is refused before any op: the error
    names the Python parameter (jax puts it in the argument's loc), never `<unknown location>`."""
    def f(x, zed):
        return zed.astype(jnp.float32) * 2 + x
    with pytest.raises(UnsupportedError, match=r"f4E2M1FN.* argument 1 'zed' \(%arg1\) of @main$"):
        tt_xla.jit(f)(np.ones(3, np.float32), np.ones(3, ml_dtypes.float4_e2m1fn))
    text = "func.func @main(%arg0: tensor<3xf4E2M1FN>) -> tensor<3xf4E2M1FN> {\n" \
           "  return %arg0 : tensor<3xf4E2M1FN>\n}"
    with pytest.raises(UnsupportedError, match=r"argument 0 \(%arg0\) of @main$") as e:
        tt_xla.compile(text)
    assert "unknown location" not in str(e.value)


def test_some_op_is_unsupported():
    """At least one of sort / while / fft / hessenberg is refused (an UnsupportedError, not a
    crash)."""
    x = inputs((8,), edges=False)
    refused = 0
    for f in (_sort, _while, _fft, _hessenberg):
        try:
            tt_xla.jit(f)(x)
        except UnsupportedError:
            refused += 1
    assert refused >= 1


def test_parse_error_surfaces():
    from tt_xla.hlo_parser import ParseError
    with pytest.raises(ParseError):
        tt_xla.compile("module @m { func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {")


# ----------------------------------------------------------------------------- fusion
def test_fusion_elu_is_one_kernel():
    ks = tt_xla.jit(jax.nn.elu).kernels(inputs((33, 65)))
    assert len(ks) == 1, ks


def test_fusion_relu_chain_is_one_kernel():
    ks = tt_xla.jit(lambda x: jax.nn.relu(x) - jax.nn.relu(1 - jnp.exp(x))).kernels(inputs((33, 65)))
    assert len(ks) == 1, ks


def test_fusion_softmax_at_most_three_kernels():
    ks = tt_xla.jit(lambda x: jax.nn.softmax(x, axis=-1)).kernels(inputs((64, 1000)))
    assert len(ks) <= 3, ks
