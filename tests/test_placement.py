"""SRAM placement (compiler/placement.py): every optimization level computes what CPU JAX does,
level 2 keeps intermediates in SRAM (their DMA counted as NoC traffic, not DRAM), and a program
whose intermediates do not fit is spilled to DRAM, never refused."""
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tt_xla
from tt_xla.compiler.placement import shard_bytes

LEVELS = (0, 1, 2)


def _block(p, x):
    """A pre-LN attention + MLP block: matmuls, softmax, layernorm, transposes, residuals."""
    def ln(v):
        mu = jnp.mean(v, -1, keepdims=True)
        return (v - mu) * jax.lax.rsqrt(jnp.mean(jnp.square(v - mu), -1, keepdims=True) + 1e-5)
    s, d = x.shape
    h = ln(x)
    q, k, v = (jnp.transpose((h @ p[n]).reshape(s, 2, d // 2), (1, 0, 2)) for n in ("wq", "wk", "wv"))
    a = jax.nn.softmax(jnp.einsum("hqd,hkd->hqk", q, k) / np.float32(np.sqrt(d // 2)), -1)
    o = jnp.transpose(jnp.einsum("hqk,hkd->hqd", a, v), (1, 0, 2)).reshape(s, d)
    x = x + o @ p["wo"]
    return x + jax.nn.gelu(ln(x) @ p["w1"]) @ p["w2"]


def _params(rng, d=64, m=128):
    w = lambda *sh: (rng.standard_normal(sh) / np.sqrt(sh[0])).astype(np.float32)  # noqa: E731
    return dict(wq=w(d, d), wk=w(d, d), wv=w(d, d), wo=w(d, d), w1=w(d, m), w2=w(m, d))


def _loss(p, x):
    return jnp.mean(jnp.square(_block(p, x)))


def _run(fn, args, level):
    dev = tt_xla.client().devices()[0].runtime_device
    f = tt_xla.jit(fn, compiler_options={"optimization_level": level})
    f(*args)
    dev.reset_counters()
    out = f(*args)
    return jax.tree_util.tree_map(np.asarray, out), dev.counters()


@pytest.mark.parametrize("grad", [False, True], ids=["forward", "value_and_grad"])
def test_levels_match_cpu_jax_and_each_other(grad):
    rng = np.random.default_rng(0)
    p, x = _params(rng), rng.standard_normal((48, 64)).astype(np.float32)  # 48: not a multiple of 32
    fn = jax.value_and_grad(_loss) if grad else _block
    want = jax.tree_util.tree_leaves(jax.jit(fn)(p, x))
    got, counters = {}, {}
    for level in LEVELS:
        out, counters[level] = _run(fn, (p, x), level)
        got[level] = jax.tree_util.tree_leaves(out)
        for g, w in zip(got[level], want):
            np.testing.assert_allclose(g, np.asarray(w), rtol=2e-4, atol=2e-5)
    for level in (1, 2):  # where a tensor lives changes its cost, never its value
        assert all(np.array_equal(a, b) for a, b in zip(got[0], got[level]))
    c0, c2 = counters[0], counters[2]
    assert c2["noc_bytes"] > c0["noc_bytes"]  # (level 0's: matmul panels received by multicast)
    assert c2["dma_bytes"] == c0["dma_bytes"]  # the same DMA, part of it now to SRAM
    dram = lambda c: c["dma_bytes"] - c["noc_bytes"]  # noqa: E731
    assert dram(c2) < dram(counters[1]) <= dram(c0)
    assert c2["dram_bytes_read"] + c2["dram_bytes_written"] < c0["dram_bytes_read"] + c0["dram_bytes_written"]


def test_edge_values_at_every_level():
    """NaN, infinities, -0 and denormals through reductions and elementwise intermediates."""
    def fn(x, y):
        m = jnp.max(x, -1, keepdims=True)
        e = jnp.exp(x - m)
        s = e / jnp.sum(e, -1, keepdims=True)
        return s * y + jnp.minimum(x, y), jnp.sum(jnp.abs(x) * y, 0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((33, 70)).astype(np.float32)
    y = rng.standard_normal((33, 70)).astype(np.float32)
    x[0, :6] = [np.nan, np.inf, -np.inf, -0.0, 1e-40, -1e-42]
    x[1] = -np.inf
    y[2, :3] = [np.inf, -0.0, np.nan]
    want = [np.asarray(w) for w in jax.jit(fn)(x, y)]
    for level in LEVELS:
        out, _ = _run(fn, (x, y), level)
        for g, w in zip(out, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)


def _operands(source: str) -> list[tuple[int, int]]:
    """(access flags, bytes) of every launch operand in a program's descriptor."""
    return [(int(a), int(n)) for a, n in re.findall(r"\{\d+u, (\d+)u, \d+ull, (\d+)ull\}", source)]


def test_intermediates_that_do_not_fit_are_spilled(tmp_path):
    """On a device with 64 KiB of SRAM per core and 4 cores, a 1 MiB intermediate (256 KiB a
    core) cannot be held: level 2 keeps it in DRAM and places what fits; every launch's SRAM (its
    own plus the shards resident while it runs) fits the cores, as the runtime checks at load."""
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps({"name": "tiny", "grid": [2, 2], "sram_per_core": 65536}))

    def fn(x, w):
        h = jnp.tanh(x @ w)          # 512 x 512 f32: 1 MiB
        t = jnp.sum(h, -1)           # 2 KiB, read by two later kernels
        return h.T @ w.T + 1, jnp.exp(t / 64) * t, jnp.sin(t)
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((512, 64)).astype(np.float32), rng.standard_normal((64, 512)).astype(np.float32) / 8
    text = tt_xla.jit(fn).lower(x, w).as_text()
    want = [np.asarray(v) for v in jax.jit(fn)(x, w)]
    for level in LEVELS:
        exe = tt_xla.compile(text, compiler_options={"optimization_level": level}, device=str(spec))
        for g, v in zip(exe(x, w), want):
            np.testing.assert_allclose(np.asarray(g), v, rtol=2e-4, atol=2e-4)
        assert all(k.sram_bytes <= 65536 for k in exe.kernels())
        ops = _operands(exe.source)
        assert ops and all(not (a & 4) for a, n in ops if n == 512 * 512 * 4)  # spilled
        assert any(a & 4 for a, n in ops) == (level == 2)  # the row sums stay in SRAM (level 1: no)


def test_shard_bytes_round_to_whole_tiles():
    """A 33x70 f32 tensor is 2310 elements, 3 tiles' worth: over 2 cores, 2 tiles a core."""
    from tt_xla.compiler import optimize
    from tt_xla.hlo_parser import parse_module
    text = tt_xla.jit(lambda a: a * 2).lower(np.zeros((33, 70), np.float32)).as_text()
    node = optimize(parse_module(text)).outputs[0]
    assert shard_bytes(node, 2) == 2 * 1024 * 4
    assert shard_bytes(node, 64) == 1024 * 4


@pytest.mark.parametrize("mkn", [(512, 512, 512), (100, 70, 300), (1024, 256, 4096)])
def test_matmul_panels_come_from_dram_once(mkn):
    """Panel reuse: with one work item per core (or an even number), each A row panel and B column
    panel is read from DRAM once and multicast to the other cores that need it, so a product's
    modeled DRAM bytes are its operands and result once; the values are untouched."""
    m, k, n = mkn
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    out, c = _run(lambda a, b: a @ b, (a, b), 0)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
    assert c["dma_bytes"] - c["noc_bytes"] == (m * k + k * n + m * n) * 4
    assert c["noc_bytes"] > 0


def test_placement_inside_control_flow():
    """A while loop and a cond whose bodies have intermediates (a softmax, a gelu of a product):
    at levels 1-2 each straight-line piece keeps its own in SRAM (operands flagged TT_L1, fewer
    DRAM bytes), and the results are bit-identical at every level and match CPU JAX."""
    def fn(x, w):
        def body(c):
            i, h = c
            e = jnp.exp(h - jnp.max(h, -1, keepdims=True))
            return i + 1, jax.nn.gelu((e / jnp.sum(e, -1, keepdims=True)) @ w) + h
        _, h = jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))
        return jax.lax.cond(jnp.sum(h) > 0, lambda v: jnp.tanh(v * 2) * v, lambda v: jnp.sin(v) + 1, h)
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((40, 64)).astype(np.float32), rng.standard_normal((64, 64)).astype(np.float32) / 8
    x[0, :3] = [np.inf, -0.0, 1e-40]
    want = np.asarray(jax.jit(fn)(x, w))
    text = tt_xla.jit(fn).lower(x, w).as_text()
    got, counters = {}, {}
    for level in LEVELS:
        exe = tt_xla.compile(text, compiler_options={"optimization_level": level})
        dev = tt_xla.client().devices()[0].runtime_device
        exe(x, w)
        dev.reset_counters()
        got[level] = np.asarray(exe(x, w)[0])
        counters[level] = dev.counters()
        assert any(a & 4 for a, _ in _operands(exe.source)) == (level > 0)
        np.testing.assert_allclose(got[level], want, rtol=2e-4, atol=2e-5)
    assert all(np.array_equal(got[0], got[lv], equal_nan=True) for lv in LEVELS)
    dram = lambda c: c["dma_bytes"] - c["noc_bytes"]  # noqa: E731
    assert dram(counters[2]) <= dram(counters[1]) < dram(counters[0])


def test_matmul_epilogue_reads_per_column_inputs_once_per_block():
    """A product's epilogue input that is the same for every row (a per-channel scale or bias)
    is DMA'd once per block, not once per row; one that varies by row (a residual) per row."""
    rng = np.random.default_rng(6)
    m, k, n = 300, 96, 100
    x, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    s, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    r = rng.standard_normal((m, n)).astype(np.float32)
    s[0], r[1, 1] = np.inf, np.nan
    fn = lambda x, w, s, b, r: jax.nn.relu((x @ w) * s + b) + r  # noqa: E731
    out, c = _run(fn, (x, w, s, b, r), 0)
    np.testing.assert_allclose(out, np.asarray(jax.jit(fn)(x, w, s, b, r)), rtol=1e-4, atol=1e-4, equal_nan=True)
    extra = c["dma_bytes"] - c["noc_bytes"] - (x.nbytes + w.nbytes + r.nbytes + out.nbytes)
    assert 0 < extra <= (s.nbytes + b.nbytes) * -(-m // 32)   # per row it would be m times theirs


def test_residual_of_two_products_is_two_epilogues():
    """relu(bn(x @ w1) + bn(x @ w2)), a residual block with a projection shortcut: one product's
    bn and rounding to bf16 is stored as its own epilogue, the other finishes the sum, so no
    f32 product and no elementwise kernel reach DRAM (before: two products stored in f32 and a
    third kernel reading both)."""
    import ml_dtypes
    rng = np.random.default_rng(8)
    m, k, n = 200, 64, 96
    bf = lambda a: a.astype(ml_dtypes.bfloat16)  # noqa: E731
    x, w1, w2 = bf(rng.standard_normal((m, k))), bf(rng.standard_normal((k, n))), bf(rng.standard_normal((k, n)))
    s1, b1, s2, b2 = (rng.standard_normal(n).astype(np.float32) for _ in range(4))
    s1[3], b2[5] = np.inf, np.nan

    def fn(x, w1, w2, s1, b1, s2, b2):
        mm = lambda a, w: jnp.matmul(a, w, preferred_element_type=jnp.float32)  # noqa: E731
        h = (mm(x, w1) * s1 + b1).astype(jnp.bfloat16)
        sc = (mm(x, w2) * s2 + b2).astype(jnp.bfloat16)
        return jax.nn.relu(h + sc)
    args = (x, w1, w2, s1, b1, s2, b2)
    want = np.asarray(jax.jit(fn)(*args)).astype(np.float32)
    for level in LEVELS:
        out, c = _run(fn, args, level)
        np.testing.assert_allclose(out.astype(np.float32), want, rtol=1e-2, atol=1e-2, equal_nan=True)
    ks = tt_xla.jit(fn).kernels(*args)
    assert [k.kind for k in ks if k.kind != "movement"] == ["matmul", "matmul"]
    out, c = _run(fn, args, 0)
    # x twice, the weights, the vectors a few times, one bf16 result stored and read, the output
    assert c["dma_bytes"] - c["noc_bytes"] < 2 * x.nbytes + w1.nbytes + w2.nbytes + 4 * m * n * 2

    def also_out(x, w1, w2, s1, b1, s2, b2):  # a product that is also an output is stored anyway: no split
        return fn(x, w1, w2, s1, b1, s2, b2), jnp.matmul(x, w2, preferred_element_type=jnp.float32)
    got, want2 = _run(also_out, args, 0)[0], jax.jit(also_out)(*args)
    for g, w in zip(got, want2):
        np.testing.assert_allclose(g.astype(np.float32), np.asarray(w).astype(np.float32), rtol=1e-2, atol=1e-2,
                                   equal_nan=True)


def test_matmul_panels_multicast_when_items_split_unevenly(tmp_path):
    """On 6 cores a 512^3 product's 8 work items split 2-1-2 ...: each core runs its range in
    waves, and a panel is still read from DRAM at most once per wave (without multicast each
    item would read its own: 2x A and 4x B)."""
    spec = tmp_path / "six.json"
    spec.write_text(json.dumps({"name": "six", "grid": [3, 2]}))
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((512, 512)).astype(np.float32), rng.standard_normal((512, 512)).astype(np.float32)
    exe = tt_xla.compile(tt_xla.jit(lambda a, b: a @ b).lower(a, b).as_text(), device=str(spec))
    rep = exe.profile(a, b)
    np.testing.assert_allclose(np.asarray(rep.result[0]), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
    (k,) = rep.kernels
    assert k.cores == 6 and exe.kernels()[0].work_items == 8
    c = rep.counters
    assert c["noc_bytes"] > 0
    assert c["dma_bytes"] - c["noc_bytes"] <= 2 * (a.nbytes + b.nbytes) + a.nbytes  # 2 waves, + C
