"""Kernels lowered once: by structural key within a compile (repeated layers) and from the
on-disk store across compiles. The key changes when what lowering reads changes; a kernel taken
from either gives the same C, IR and figures as lowering it afresh; the store rejects damaged
and foreign files and never serves an older compiler's kernels."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import tt_xla
import tt_xla.compiler as C
from tt_xla.compiler import kernel_store as KS
from tt_xla.compiler.fuse import plan
from tt_xla.compiler.kernel_key import kernel_key
from tt_xla.compiler.kernel_store import KernelStore
from tt_xla.compiler.schedule import schedule
from tt_xla.hlo_parser import parse_module
from util import jnp


def _text(f, *args):
    return jax.export.export(jax.jit(f))(*args).mlir_module()


def _mlp(ps, x):
    for w, b in ps:  # two layers alike: their kernels repeat
        x = jax.nn.gelu(x @ w + b)
        x = (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5)
    return jnp.sum(x * x)


def _args(d=48):
    rng = np.random.default_rng(0)
    ps = [(rng.standard_normal((d, d), np.float32), rng.standard_normal(d, np.float32)) for _ in range(2)]
    return ps, rng.standard_normal((20, d), np.float32)


def _keys(text, sram=C.DEFAULT_SRAM_PER_CORE, ncores=64):
    module = parse_module(text)
    fn = C.inline_calls(module)
    p = plan(C.optimize_function(fn))
    attrs = {}
    return [kernel_key(k, p.materialized, sram, ncores, frozenset(), attrs) for k in schedule(p)]


def _one_key(f, *args, **kw):
    keys = _keys(_text(f, *args), **kw)
    assert len(keys) == 1 and keys[0] is not None
    return keys[0][0]


def _compiled(text, store=None):
    p = C.compile_module(parse_module(text), store=store)
    return p.source, [(k.name, k.kind, k.ops, k.work_items, k.vector_ops, k.matrix_tiles, k.sram_bytes, k.dma_bytes,
                       k.ir) for k in p.kernels]


def test_key_changes_with_what_lowering_reads():
    x = np.ones((16, 40), np.float32)
    base = _one_key(lambda x, y: x * 2.0 + y, x, x)
    assert _one_key(lambda x, y: x * 2.0 + y, x, x) == base                            # same program
    assert _one_key(lambda x, y: x * 2.0 - y, x, x) != base                            # an op
    assert _one_key(lambda x, y: x * 3.0 + y, x, x) != base                            # a constant
    assert _one_key(lambda x, y: x * -0.0 + y, x, x) != _one_key(lambda x, y: x * 0.0 + y, x, x)
    assert _one_key(lambda x, y: x * 2.0 + x, x, x) != base                            # x + x is not x + y
    y = np.ones((16, 41), np.float32)
    assert _one_key(lambda x, y: x * 2.0 + y, y, y) != base                            # a shape
    assert _one_key(lambda x, y: x * 2.0 + y, x, x.astype(np.float16)) != base         # an element type
    assert _one_key(lambda x, y: x * 2.0 + y.T, x, x.T.copy()) != base                 # a view
    text = _text(lambda x, y: x * 2.0 + y, x, x)
    assert _keys(text, sram=256 * 1024)[0][0] != base                                   # the target
    assert _keys(text, ncores=8)[0][0] != base
    s = _one_key(lambda x: jnp.sum(x, -1), x)
    assert _one_key(lambda x: jnp.max(x, -1), x) != s                                   # a reduce body
    assert _one_key(lambda x: jnp.sum(x, 0), x) != s                                    # its axes


def test_repeated_layers_lower_once_and_match_fresh_lowering(monkeypatch):
    text = _text(_mlp, *_args())
    keys = [k[0] for k in _keys(text) if k is not None]
    assert len(set(keys)) < len(keys)  # the second layer's kernels repeat the first's
    memo = _compiled(text)
    monkeypatch.setattr(C, "kernel_key", lambda *a: None)  # every kernel lowered on its own
    assert _compiled(text) == memo


def test_store_serves_a_recompile_identically(tmp_path):
    text = _text(_mlp, *_args())
    fresh = _compiled(text)
    store = KernelStore(tmp_path)
    before = dict(KS.stats)
    assert _compiled(text, store) == fresh
    assert KS.stats["hits"] == before["hits"] and KS.stats["misses"] > before["misses"]
    files = sorted(tmp_path.glob("lk-*.bin"))
    assert files
    mid = dict(KS.stats)
    assert _compiled(text, store) == fresh
    assert KS.stats["hits"] - mid["hits"] == len(files) and KS.stats["misses"] == mid["misses"]
    # another program with the same layer shapes takes its kernels from the store too
    other = _text(lambda ps, x: _mlp(ps, x) * 2.0, *_args())
    assert _compiled(other, store) == _compiled(other)


@pytest.mark.parametrize("damage", ["truncate", "flip", "swap", "garbage"])
def test_damaged_store_files_are_not_used(tmp_path, damage):
    text = _text(_mlp, *_args())
    fresh = _compiled(text)
    store = KernelStore(tmp_path)
    _compiled(text, store)
    files = sorted(tmp_path.glob("lk-*.bin"))
    a, b = files[0], files[1]
    data = a.read_bytes()
    if damage == "truncate":
        a.write_bytes(data[:len(data) // 2])
    elif damage == "flip":
        a.write_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    elif damage == "swap":  # a whole, valid file of another key
        a.write_bytes(b.read_bytes())
    else:
        a.write_bytes(b"\0" * 64)
    before = dict(KS.stats)
    assert _compiled(text, store) == fresh
    assert KS.stats["rejected"] == before["rejected"] + 1
    assert _compiled(text, store) == fresh  # rewritten: served again
    assert KS.stats["rejected"] == before["rejected"] + 1


def test_a_changed_compiler_does_not_read_the_old_store(tmp_path, monkeypatch):
    text = _text(_mlp, *_args())
    store = KernelStore(tmp_path)
    _compiled(text, store)
    monkeypatch.setattr(KS, "compiler_digest", lambda: b"another compiler")
    before = dict(KS.stats)
    _compiled(text, KernelStore(tmp_path))
    assert KS.stats["hits"] == before["hits"]


def test_client_compiles_use_the_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TT_XLA_KERNEL_STORE", "1")  # (the suite turns it off: conftest.py)
    ps, x = _args()
    flat = [a for p in ps for a in p] + [x]
    text = _text(lambda w0, b0, w1, b1, x: _mlp([(w0, b0), (w1, b1)], x), *flat)
    first = tt_xla.Client().compile(text)
    assert list(tmp_path.glob("lk-*.bin"))
    before = dict(KS.stats)
    second = tt_xla.Client().compile(text)
    assert KS.stats["hits"] > before["hits"]
    assert second.source == first.source
    want = jax.jit(lambda *a: _mlp([(a[0], a[1]), (a[2], a[3])], a[4]))(*flat)
    np.testing.assert_allclose(np.asarray(second(*flat)[0]), np.asarray(want), rtol=1e-4)


def test_the_store_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TT_XLA_KERNEL_STORE", "0")
    tt_xla.Client().compile(_text(_mlp, *_args()))
    assert not list(tmp_path.glob("lk-*.bin"))


def test_a_key_marshal_cannot_write_is_a_miss_not_an_error(tmp_path):
    """(a numpy scalar where a Python int was expected): the kernel is lowered, not stored."""
    from tt_xla.compiler import loopir as L
    store = KernelStore(tmp_path)
    key = (("loop", (np.int64(3),)), (), 1, 1)
    lk = L.LoopKernel("k0", [], [], [], 0)
    store.save(key, lk, [], "")
    assert not list(tmp_path.iterdir())
    assert store.load(key, [], "k0") is None


def test_key_check_catches_a_key_that_misses_something(monkeypatch):
    """The suite's key check (CHECK_KERNEL_KEYS, on in conftest) is not vacuous: a key that drops
    the element types and shapes serves a kernel of another shape, and the check refuses it."""
    def coarse(k, *args):
        got = kernel_key(k, *args)
        if got is None:
            return None
        (plan_, rows, sram, ncores), order = got
        return ((plan_[0],), tuple(r[0] for r in rows), sram, ncores), order  # ops only
    monkeypatch.setattr(C, "kernel_key", coarse)
    assert C.CHECK_KERNEL_KEYS

    def f(x, y):
        return jnp.exp(x) + 1.0, jnp.exp(y) + 1.0  # same ops, different shapes
    text = _text(f, np.ones((8, 40), np.float32), np.ones((64, 96), np.float32))
    with pytest.raises(AssertionError, match="structural key"):
        C.compile_module(parse_module(text))


def test_served_kernels_are_not_lowered(monkeypatch, tmp_path):
    """Outside the suite's key check a kernel served by its key (a repeat, or from the store) is
    not lowered again: that is the whole speed-up of a warm compile."""
    monkeypatch.setattr(C, "CHECK_KERNEL_KEYS", False)
    calls = []
    lower = C.lower_kernel
    monkeypatch.setattr(C, "lower_kernel", lambda k, name, *a: calls.append(name) or lower(k, name, *a))
    text = _text(_mlp, *_args())
    nkernels = len(_compiled(text)[1])
    assert 0 < len(calls) < nkernels  # the second layer's repeats are rebound, not lowered
    store = KernelStore(tmp_path)
    _compiled(text, store)
    calls.clear()
    _compiled(text, store)
    assert calls == []  # every kernel from the store or a repeat of one
