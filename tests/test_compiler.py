"""Compiler behaviour a user relies on beyond single ops: fused normalizations and their
gradients, stored transposes, deterministic code (so the kernel cache hits), epilogues."""
import re
import subprocess

import jax
from jax import lax

import tt_xla
from util import check, inputs, jnp, np


def _text(f, *args):
    return jax.export.export(jax.jit(f))(*args).mlir_module()


def test_rmsnorm_and_its_gradient():
    x = inputs((32, 64), edges=False)
    rms = lambda x: lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-5) * x
    check(rms, x, rtol=1e-5, atol=1e-5, transcendental=True)
    check(jax.grad(lambda x: jnp.sum(rms(x))), x, rtol=1e-4, atol=1e-5)


def test_layernorm_gradient():
    x = inputs((16, 48), edges=False)
    ln = lambda x: (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)
    check(jax.grad(lambda x: jnp.sum(ln(x) ** 2)), x, rtol=1e-4, atol=1e-4)


def test_stored_transposes():
    for shape, perm in [((2048, 64), (1, 0)), ((33, 65), (1, 0)), ((3, 40, 70), (0, 2, 1)),
                        ((5, 7, 9), (2, 0, 1)), ((64, 64), (1, 0))]:
        check(lambda x: jnp.transpose(x, perm), inputs(shape))
        check(lambda x: jnp.transpose(x, perm), inputs(shape, np.int32))
    check(lambda x: x.T, inputs((40, 33), jnp.bfloat16))  # 2-byte elements: tiled loop path


def test_same_text_gives_same_c_source():
    """C names do not depend on process-wide counters: the disk cache serves a recompile."""
    text = _text(lambda x: jax.nn.softmax(jax.nn.elu(x), -1), np.ones((8, 16), np.float32))
    a = tt_xla.compiler.compile_text(text).source
    b = tt_xla.compiler.compile_text(text).source
    assert a == b


def test_reduction_epilogues_fuse():
    x = np.ones((64, 128), np.float32)
    kernels = tt_xla.compile(_text(lambda x: jnp.mean(x, -1), x)).kernels()
    assert len(kernels) == 1 and kernels[0].kind == "reduce"
    ln = lambda x: (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert len(tt_xla.compile(_text(ln, x)).kernels()) <= 3


def test_elu_needs_no_overflow_guard():
    """Range analysis: ELU's expm1 argument is <= 0, so its kernel has fewer ops than the
    composite's exp, which guards both ends."""
    x = np.ones((1024,), np.float32)
    elu = tt_xla.compile(_text(jax.nn.elu, x)).kernels()
    comp = tt_xla.compile(_text(lambda x: jax.nn.relu(x) - jax.nn.relu(1 - jnp.exp(x)), x)).kernels()
    assert len(elu) == len(comp) == 1
    assert elu[0].vector_ops <= comp[0].vector_ops


def test_max_reduction_nan_and_signed_zero_rules():
    x = inputs((7, 100))
    check(lambda x: (jnp.max(x, -1), jnp.min(x, 0), jnp.max(x)), x)
    z = np.array([[-0.0, 0.0, -0.0], [0.0, -0.0, -0.0]], np.float32)
    got = np.asarray(tt_xla.jit(lambda z: jnp.max(z, -1))(z))
    assert not np.signbit(got).any()  # max(-0, +0) = +0 after the lanes are combined


def test_program_built_in_parallel_parts(monkeypatch, tmp_path):
    """The toolchain splits a program at codegen's markers, compiles the parts concurrently and
    links them; the result must equal the one-unit build."""
    from tt_xla.runtime import toolchain
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TT_XLA_BUILD_JOBS", "2")
    monkeypatch.setattr(toolchain, "SPLIT_MIN_CHARS", 0)
    # both optimization levels in one program: the product's kernel at -O2, the rest at -O1
    monkeypatch.setattr(tt_xla.compiler, "_hot", lambda c, runs=1: c.kind == "matmul")
    before = toolchain.stats["compiles"]
    x = inputs((8, 33), edges=False)
    f = lambda x: (jax.nn.softmax(x, -1), jnp.tanh(x).sum(0), jax.nn.gelu(x) @ x.T)
    check(f, x, rtol=1e-5, atol=1e-5, transcendental=True)
    assert toolchain.stats["compiles"] - before >= 3  # two parts and the link


def test_split_keeps_every_piece_once_at_its_level():
    from tt_xla.compiler.program import part
    from tt_xla.runtime import toolchain
    pieces = [("O2" if i % 3 == 0 else "O1", f"/* piece {i} */" + "x" * (100 * i) + "\n") for i in range(12)]
    src = "HEAD\n" + "".join(part(lv) + text for lv, text in pieces)
    for jobs, min_chars in ((1, 0), (2, 0), (4, 0), (2, 10**9)):
        toolchain.SPLIT_MIN_CHARS, old = min_chars, toolchain.SPLIT_MIN_CHARS
        try:
            units = toolchain._split(src, jobs)
        finally:
            toolchain.SPLIT_MIN_CHARS = old
        assert all(u.startswith("HEAD\n") for _, u in units)
        assert len(units) <= jobs + 1  # each level rounds its share of the jobs up
        for lv, text in pieces:
            assert [u_lv for u_lv, u in units if text in u] == [lv]
    assert toolchain._split("no markers", 2) == [(toolchain.DEFAULT_LEVEL, "no markers")]


def test_split_weighs_tables_below_code():
    """The descriptor (tables, one-line functions) compiles about 4x faster a char than kernels,
    so the split must not weigh it as code: the unit holding it would be left short of work."""
    from tt_xla.runtime import toolchain
    table = "static const int t[] = {\n" + "  1,\n" * 500 + "};\nconst int *f(void) { return t; }\n"
    code = "void k(int *p) {\n" + "  p[0] += 1;\n" * (len(table) // 13) + "}\n"
    assert toolchain._piece_cost(table) < 0.5 * toolchain._piece_cost(code)


def test_kernels_build_at_the_level_their_work_repays():
    """-O2 for much work, "cold" (-O1 with passes off) for little, -O1 between; none "cold" in a
    loop's body, which runs once an iteration."""
    def kernel_levels(f, *args):
        src = tt_xla.compiler.compile_text(_text(f, *args)).source
        return re.findall(r"tt:part (\w+) \*/\n[^\n]*void k", src)
    assert kernel_levels(jax.nn.relu, np.ones((64, 64), np.float32)) == ["cold"]
    assert kernel_levels(jax.nn.relu, np.ones((512, 1024), np.float32)) == ["O1"]
    assert kernel_levels(jax.nn.relu, np.ones((2048, 2048), np.float32)) == ["O2"]
    loop = lambda x: jax.lax.fori_loop(0, 1000, lambda i, v: jnp.sin(v) * 0.5 + v, x)
    assert "cold" not in kernel_levels(loop, np.ones((64, 64), np.float32))


def test_cold_pieces_build_in_O1_units_under_their_flags(tmp_path, monkeypatch):
    """A "cold" piece goes in an O1 unit under #pragma GCC optimize with cold's extra flags, which
    compiles to the code those flags on the command line give; the program's results match."""
    from tt_xla.compiler.program import part
    from tt_xla.runtime import toolchain
    src = "HEAD\n" + part("O1") + "one\n" + part("cold") + "two\n" + part("O2") + "three\n"
    units = toolchain._split(src, 1)
    assert [lv for lv, _ in units] == ["O2", "O1"]
    o1 = units[1][1]
    assert o1.startswith("HEAD\none\n#pragma GCC push_options\n#pragma GCC optimize (")
    assert o1.endswith("two\n#pragma GCC pop_options\n")
    extra = [f for f in toolchain.LEVELS["cold"] if f not in toolchain.LEVELS["O1"]]
    assert extra and all(f'"{f[2:]}"' in o1 for f in extra)
    # gcc gives the pragma'd function the code the flags on the command line give it, not -O1's
    body = ("void k(float *restrict p, const float *restrict q, int n) {\n"
            "  for (int i = 0; i < n; i++) p[i] = p[i] > 0 ? p[i] * q[i] : q[i] + 1.0f;\n}\n")
    cc = toolchain._compiler()
    cflags = [f for f in toolchain.FLAGS if f != "-shared"]

    def asm(text: str, level: str) -> list[str]:
        (tmp_path / "k.c").write_text(text)
        out = subprocess.run([*cc, "-S", "-o", "-", *cflags, *toolchain.LEVELS[level], str(tmp_path / "k.c")],
                             capture_output=True, text=True, check=True).stdout
        return [ln for ln in out.splitlines() if not ln.lstrip().startswith((".file", ".ident"))]
    if "clang" not in toolchain._compiler_version(tuple(cc)).lower():
        assert asm(toolchain._under("O1", "cold", body), "O1") == asm(body, "cold") != asm(body, "O1")
    monkeypatch.setenv("TT_XLA_CACHE_DIR", str(tmp_path))
    x = inputs((8, 33), edges=True)
    check(lambda x: (jax.nn.softmax(x, -1), jnp.tanh(x).sum(0), x @ x.T), x, rtol=1e-5, atol=1e-5,
          transcendental=True)


def test_reduce_over_size_one_or_empty_dims():
    """Such a reduce combines nothing: it becomes elementwise (body(init, x)) or its init."""
    x = inputs((5, 1, 7))
    check(lambda x: (jnp.sum(x, 1), jnp.max(x, 1), jnp.min(x, 1), jnp.prod(x, 1), jnp.argmax(x, 1)), x)
    check(lambda x: (jnp.sum(x, 1), jnp.max(x, 1, initial=-jnp.inf)), inputs((4, 0, 3)))
    kernels = tt_xla.compile(_text(lambda x: jnp.sum(x, 1) * 2, np.ones((5, 1, 7), np.float32))).kernels()
    assert [k.kind for k in kernels] == ["elementwise"]


def test_transposed_product_is_one_matmul():
    """transpose(x @ w) is w.T @ x.T with the engine reading the operands strided: no copy."""
    x, w = inputs((40, 24), edges=False), inputs((24, 56), seed=1, edges=False)
    check(lambda x, w: (x @ w).T, x, w, rtol=1e-5, atol=1e-4)
    a, b = inputs((3, 10, 6), edges=False), inputs((3, 6, 9), seed=2, edges=False)
    check(lambda a, b: jnp.einsum("bij,bjk->bki", a, b), a, b, rtol=1e-5, atol=1e-4)
    kernels = tt_xla.compile(_text(lambda x, w: (x @ w).T, x, w)).kernels()
    assert [k.kind for k in kernels] == ["matmul"]
    # a transpose that keeps the product's columns innermost: the engine writes it in place
    q, k = inputs((4, 16, 8), edges=False), inputs((4, 8, 16), seed=3, edges=False)
    attn = lambda q, k: jnp.transpose(q @ k, (1, 0, 2)).reshape(16, 64) * 2
    check(attn, q, k, rtol=1e-5, atol=1e-4)
    assert [k.kind for k in tt_xla.compile(_text(attn, q, k)).kernels()] == ["matmul", "elementwise"]
    # read twice, the product stays one kernel and the transpose another
    check(lambda x, w: ((x @ w).T, x @ w), x, w, rtol=1e-5, atol=1e-4)


def test_arena_close_to_the_live_peak():
    """Memory planning reuses the arena: it stays within 10% of the bytes simultaneously live."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1]))
    from benchmarks.suite import _transformer
    init, make_step = _transformer(seq=16, d=32, heads=4, mlp=64, layers=2)
    ps, x, y = init(np.random.default_rng(0))
    for grad in (False, True):
        p = tt_xla.compiler.compile_text(_text(make_step(grad), ps, x, y))
        assert p.live_peak_bytes <= p.arena_bytes <= 1.1 * p.live_peak_bytes + 64 * len(p.kernels)


def test_matmul_result_read_by_two_stored_kernels():
    """A product read by an epilogue candidate and by another stored kernel stays stored."""
    x, w = inputs((64, 32), edges=False), inputs((32, 48), seed=1, edges=False)

    def f(x, w):
        y = x @ w
        e = y * y
        return e, y + e
    check(f, x, w, rtol=1e-5, atol=1e-4)


def test_device_refuses_too_little_sram():
    from tt_xla.runtime import Device, DeviceConfig, DeviceError
    import pytest
    with pytest.raises(DeviceError):
        Device(DeviceConfig(sram_per_core=32 * 1024))  # below TT_MIN_SRAM_PER_CORE (64 KiB)


def test_reduce_reads_a_stored_transpose_from_its_own_storage():
    """Regression (a wrong answer): a reduction over a stored transpose of a product read the
    product through the view, though memory planning had already given the product's space to
    another buffer. The key-bias gradient of attention without softmax (0 on CPU up to
    rounding) came out off by up to 28. compile_module now also refuses any kernel that binds
    a buffer fusion does not list among its reads."""
    rng = np.random.default_rng(0)
    x, q = rng.standard_normal((2, 8, 16), np.float32), rng.standard_normal((2, 8, 2, 8), np.float32)
    wk, wv, bk = (rng.standard_normal(s, np.float32) * 0.3 for s in [(16, 2, 8), (16, 2, 8), (2, 8)])

    def loss(wk, bk, wv, x, q):
        k = jnp.einsum("bsf,fhd->bshd", x, wk) + bk
        v = jnp.einsum("bsf,fhd->bshd", x, wv)
        return (jnp.einsum("bhqk,bkhd->bqhd", jnp.einsum("bqhd,bkhd->bhqk", q, k), v) ** 2).mean()
    check(jax.grad(loss, argnums=(0, 1, 2)), wk, bk, wv, x, q, rtol=1e-4, atol=1e-4)
