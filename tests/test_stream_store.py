"""Outputs bigger than the host's caches leave the core by streaming (non-temporal) stores
(tt_dma_write_stream): the results must be exactly those of the ordinary write DMA, whatever
the alignment of the run in DRAM and in the page, its length and the element size."""
import jax
import pytest

import tt_xla
from tt_xla.compiler import compile_text
from tt_xla.compiler.render import STREAM_MIN_BYTES
from util import BF16, check, inputs, jnp, np

CASES = [  # each output is just over the streaming threshold
    # contiguous blocks of 1024 from an aligned base, with a ragged last block
    ("elu", jax.nn.elu, [((1025, 1027), np.float32)]),
    # 2-byte elements
    ("bf16", lambda x: x * 2 + 1, [((2049, 1031), BF16)]),
    # short rows packed in a page: runs start at page offsets and DRAM offsets of 1200 bytes
    ("rows", lambda x: x[:, 1:] + 1, [((4100, 301), np.float32)]),
    # a concat writes each piece at an odd element offset of every row
    ("concat", lambda x, y: jnp.concatenate([x, y], 1), [((1000, 1001), np.float32), ((1000, 601), np.float32)]),
]


@pytest.mark.parametrize("name,f,specs", CASES, ids=[c[0] for c in CASES])
def test_streamed_outputs_match_cpu(name, f, specs):
    args = [inputs(s, d, seed=i) for i, (s, d) in enumerate(specs)]
    out = jax.eval_shape(f, *args)
    assert out.size * out.dtype.itemsize >= STREAM_MIN_BYTES
    src = compile_text(jax.export.export(jax.jit(f))(*args).mlir_module()).source
    assert "tt_dma_write_stream(" in src and "tt_dma_stream_fence();" in src
    check(f, *args, transcendental=name == "elu")


def test_small_outputs_use_plain_stores():
    # they stay in the host's caches for the kernel that reads them next
    x = np.ones((64, 64), np.float32)
    src = compile_text(jax.export.export(jax.jit(jax.nn.relu))(x).mlir_module()).source
    kernels = src[src.index("/* tt:part"):]  # past the prelude, which defines the function
    assert "tt_dma_write_stream(" not in kernels and "tt_dma_stream_fence" not in kernels
