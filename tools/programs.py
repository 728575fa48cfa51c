"""A registry of ordinary Flax/Optax programs (training steps, recurrent nets, samplers,
scatter/gather idioms) with small shapes and deterministic inputs, each run through `jax.jit`
on CPU and through `tt_xla.jit` and compared.

    python -m tools.programs [NAME ...] [--timeout S] [--json F]

A program either runs and matches CPU JAX, or must fail with a clear error naming the op it
needs (tools.outcome); anything else (a wrong answer, a crash) is a bug. As ops are added,
programs flip from "clear error" to "pass" with no change here. Measures whatever `tt_xla`
is first on the PYTHONPATH."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np

from tools.outcome import CLEAR, CRASH, PASS, REF_ERROR, WRONG, Outcome, run_against_cpu, table

# name -> maker returning (function, args); the function is what both jits run.
PROGRAMS: dict[str, Callable[[], tuple[Callable, tuple]]] = {}

# Programs compose many ops, optimizer updates divide by small norms: one tolerance for all,
# looser than a single op's (tools.outcome.tolerance) but far below any real bug's size.
RTOL, ATOL = 2e-3, 2e-4


def program(fn: Callable[[], tuple[Callable, tuple]]) -> Callable[[], tuple[Callable, tuple]]:
    PROGRAMS[fn.__name__] = fn
    return fn


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(seed: int, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _labels(seed: int, n: int, classes: int) -> np.ndarray:
    return _rng(seed).integers(0, classes, n).astype(np.int32)


def _init(model, *args, **kw):
    import jax
    return model.init(jax.random.PRNGKey(0), *args, **kw)


def _train_step(model_apply: Callable, loss_of: Callable, tx) -> Callable:
    """A jit-able (params, opt_state, batch...) -> (params, opt_state, loss) step."""
    import jax
    import optax

    def step(params, opt_state, *batch):
        loss, grads = jax.value_and_grad(lambda p: loss_of(model_apply(p, *batch[:-1]), batch[-1]))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return step


def _xent_int(logits, labels):
    import optax
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


# --- multilayer perceptrons -------------------------------------------------------------------

def _mlp(features=(32, 10)):
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for f in features[:-1]:
                x = nn.relu(nn.Dense(f)(x))
            return nn.Dense(features[-1])(x)
    return MLP()


@program
def mlp_sgd_mse():
    import optax
    m = _mlp((32, 1))
    x, y = _normal(1, 16, 8), _normal(2, 16, 1)
    params = _init(m, x)
    tx = optax.sgd(0.1)
    return _train_step(m.apply, lambda p, t: ((p - t) ** 2).mean(), tx), (params, tx.init(params), x, y)


@program
def mlp_adam_int_labels():
    import optax
    m = _mlp((64, 10))
    x, y = _normal(1, 16, 20), _labels(2, 16, 10)
    params = _init(m, x)
    tx = optax.adam(1e-3)
    return _train_step(m.apply, _xent_int, tx), (params, tx.init(params), x, y)


@program
def mlp_adamw_clip_label_smoothing():
    import jax
    import optax
    m = _mlp((32, 5))
    x, y = _normal(3, 12, 7), _labels(4, 12, 5)
    params = _init(m, x)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=1e-4))

    def loss(logits, labels):
        onehot = optax.smooth_labels(jax.nn.one_hot(labels, 5), 0.1)
        return optax.softmax_cross_entropy(logits, onehot).mean()
    return _train_step(m.apply, loss, tx), (params, tx.init(params), x, y)


@program
def mlp_rmsprop_momentum():
    import optax
    m = _mlp((16, 16, 3))
    x, y = _normal(5, 8, 4), _labels(6, 8, 3)
    params = _init(m, x)
    tx = optax.rmsprop(1e-2, momentum=0.9)
    return _train_step(m.apply, _xent_int, tx), (params, tx.init(params), x, y)


@program
def classifier_accuracy():
    import jax
    import jax.numpy as jnp
    m = _mlp((32, 10))
    x, y = _normal(7, 64, 12), _labels(8, 64, 10)
    params = _init(m, x)

    def evaluate(params, x, y):
        logits = m.apply(params, x)
        return jnp.mean(jnp.argmax(logits, -1) == y), jax.nn.log_softmax(logits)
    return evaluate, (params, x, y)


# --- convolutional nets -----------------------------------------------------------------------

def _cnn(pool: str):
    import flax.linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            x = (nn.avg_pool if pool == "avg" else nn.max_pool)(x, (2, 2), strides=(2, 2))
            x = x.reshape(x.shape[0], -1)
            return nn.Dense(10)(x)
    return CNN()


def _cnn_grad(pool: str):
    import jax
    m = _cnn(pool)
    x, y = _normal(10, 4, 8, 8, 3), _labels(11, 4, 10)
    params = _init(m, x)
    return jax.value_and_grad(lambda p, x, y: _xent_int(m.apply(p, x), y)), (params, x, y)


@program
def cnn_avg_pool_grad():
    return _cnn_grad("avg")


@program
def cnn_max_pool_grad():
    return _cnn_grad("max")


@program
def conv_strided_no_pool_sgd():
    import flax.linen as nn
    import optax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.gelu(nn.Conv(8, (3, 3), strides=(2, 2))(x))
            x = nn.gelu(nn.Conv(8, (3, 3), strides=(2, 2), padding="VALID")(x))
            return nn.Dense(4)(x.mean(axis=(1, 2)))
    m = Net()
    x, y = _normal(12, 2, 12, 12, 3), _labels(13, 2, 4)
    params = _init(m, x)
    tx = optax.sgd(0.05, momentum=0.9)
    return _train_step(m.apply, _xent_int, tx), (params, tx.init(params), x, y)


@program
def mobilenet_block_train():
    """Depthwise-separable block with BatchNorm in training mode (batch_stats updated)."""
    import flax.linen as nn
    import jax
    import optax

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = True):
            c = x.shape[-1]
            y = nn.Conv(c * 2, (1, 1), use_bias=False)(x)
            y = nn.relu6(nn.BatchNorm(use_running_average=not train)(y))
            y = nn.Conv(c * 2, (3, 3), feature_group_count=c * 2, use_bias=False)(y)
            y = nn.relu6(nn.BatchNorm(use_running_average=not train)(y))
            y = nn.Conv(c, (1, 1), use_bias=False)(y)
            return x + nn.BatchNorm(use_running_average=not train)(y)
    m = Block()
    x, t = _normal(14, 2, 6, 6, 4), _normal(15, 2, 6, 6, 4)
    variables = _init(m, x)
    tx = optax.adam(1e-3)

    def step(params, batch_stats, opt_state, x, t):
        def loss(p):
            y, upd = m.apply({"params": p, "batch_stats": batch_stats}, x, mutable=["batch_stats"])
            return ((y - t) ** 2).mean(), upd["batch_stats"]
        (l, stats), g = jax.value_and_grad(loss, has_aux=True)(params)
        u, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, u), stats, opt_state, l
    p = variables["params"]
    return step, (p, variables["batch_stats"], tx.init(p), x, t)


def _resnet_block():
    import flax.linen as nn

    class ResBlock(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            y = nn.Conv(x.shape[-1], (3, 3), use_bias=False)(x)
            y = nn.relu(nn.BatchNorm(use_running_average=not train)(y))
            y = nn.Conv(x.shape[-1], (3, 3), use_bias=False)(y)
            y = nn.BatchNorm(use_running_average=not train)(y)
            return nn.relu(x + y)
    return ResBlock()


@program
def resnet_block_eval():
    m = _resnet_block()
    x = _normal(16, 2, 8, 8, 4)
    variables = _init(m, x, train=False)
    return (lambda v, x: m.apply(v, x, train=False)), (variables, x)


@program
def resnet_block_train_grad():
    import jax
    m = _resnet_block()
    x = _normal(17, 2, 8, 8, 4)
    variables = _init(m, x, train=False)

    def f(params, stats, x):
        def loss(p):
            y, upd = m.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return (y ** 2).mean(), upd
        return jax.value_and_grad(loss, has_aux=True)(params)
    return f, (variables["params"], variables["batch_stats"], x)


@program
def conv_transpose_decoder():
    import flax.linen as nn
    import jax

    class Dec(nn.Module):
        @nn.compact
        def __call__(self, z):
            x = nn.Dense(4 * 4 * 8)(z).reshape(z.shape[0], 4, 4, 8)
            x = nn.relu(nn.ConvTranspose(4, (3, 3), strides=(2, 2))(x))
            return nn.sigmoid(nn.ConvTranspose(1, (3, 3), strides=(2, 2))(x))
    m = Dec()
    z, t = _normal(18, 2, 6), _rng(19).random((2, 16, 16, 1)).astype(np.float32)
    params = _init(m, z)
    return jax.value_and_grad(lambda p, z, t: ((m.apply(p, z) - t) ** 2).mean()), (params, z, t)


# --- sequence models ---------------------------------------------------------------------------

@program
def embed_lm_value_and_grad():
    import flax.linen as nn
    import jax

    class LM(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            h = nn.Embed(50, 16)(tokens)
            h = nn.tanh(nn.Dense(16)(h))
            return nn.Dense(50)(h)
    m = LM()
    tokens = _labels(20, 2 * 9, 50).reshape(2, 9)
    params = _init(m, tokens[:, :-1])
    return (jax.value_and_grad(lambda p, t: _xent_int(m.apply(p, t[:, :-1]), t[:, 1:]))), (params, tokens)


@program
def embed_lookup_take():
    import jax.numpy as jnp
    table, idx = _normal(21, 30, 8), _labels(22, 12, 30).reshape(3, 4)
    return (lambda t, i: jnp.take(t, i, axis=0).sum(-1)), (table, idx)


def _transformer():
    import flax.linen as nn

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, mask=None):
            h = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=16)(h, h, mask=mask)
            h = nn.LayerNorm()(x)
            return x + nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(32)(h)))
    return Block()


@program
def transformer_block_fwd():
    m = _transformer()
    x = _normal(23, 2, 8, 16)
    params = _init(m, x)
    return m.apply, (params, x)


@program
def transformer_block_causal_grad():
    import flax.linen as nn
    import jax
    m = _transformer()
    x = _normal(24, 2, 8, 16)
    mask = nn.make_causal_mask(np.ones((2, 8), np.int32))
    params = _init(m, x, mask)
    return jax.value_and_grad(lambda p, x, mask: (m.apply(p, x, mask) ** 2).mean()), (params, x, mask)


@program
def attention_key_bias_grad():
    """Plain-jax attention: gradients of the key kernel, key bias and value kernel together
    (the key bias's is 0: softmax does not see a shift along keys)."""
    import jax
    import jax.numpy as jnp
    x, q = _normal(50, 2, 8, 16), _normal(51, 2, 8, 2, 8)
    wk, wv, bk = _normal(52, 16, 2, 8, scale=0.3), _normal(53, 16, 2, 8, scale=0.3), _normal(54, 2, 8, scale=0.1)

    def loss(wk, bk, wv, x, q):
        k = jnp.einsum("bsf,fhd->bshd", x, wk) + bk
        v = jnp.einsum("bsf,fhd->bshd", x, wv)
        w = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), -1)
        return (jnp.einsum("bhqk,bkhd->bqhd", w, v) ** 2).mean()
    return jax.grad(loss, argnums=(0, 1, 2)), (wk, bk, wv, x, q)


@program
def attention_padding_mask():
    import flax.linen as nn
    q, k, v = _normal(25, 2, 6, 2, 8), _normal(26, 2, 7, 2, 8), _normal(27, 2, 7, 2, 8)
    lengths = np.array([7, 4], np.int32)

    def attend(q, k, v, lengths):
        import jax.numpy as jnp
        valid = jnp.arange(k.shape[1])[None, :] < lengths[:, None]
        mask = nn.make_attention_mask(jnp.ones(q.shape[:2], bool), valid)
        return nn.dot_product_attention(q, k, v, mask=mask)
    return attend, (q, k, v, lengths)


def _rnn(cell: str):
    import flax.linen as nn
    import jax

    class Seq(nn.Module):
        @nn.compact
        def __call__(self, x):
            c = nn.OptimizedLSTMCell(12) if cell == "lstm" else nn.GRUCell(12)
            return nn.Dense(3)(nn.RNN(c)(x)[:, -1])
    m = Seq()
    x, y = _normal(28, 2, 5, 4), _labels(29, 2, 3)
    params = _init(m, x)
    return jax.value_and_grad(lambda p, x, y: _xent_int(m.apply(p, x), y)), (params, x, y)


@program
def lstm_nn_scan_grad():
    return _rnn("lstm")


@program
def gru_grad():
    return _rnn("gru")


# --- generative models, sampling ----------------------------------------------------------------

@program
def vae_reparam_grad():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class VAE(nn.Module):
        @nn.compact
        def __call__(self, x, key):
            h = nn.relu(nn.Dense(16)(x))
            mu, logvar = nn.Dense(4)(h), nn.Dense(4)(h)
            z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
            recon = nn.Dense(x.shape[-1])(nn.relu(nn.Dense(16)(z)))
            kl = -0.5 * jnp.sum(1 + logvar - mu ** 2 - jnp.exp(logvar), -1)
            return jnp.mean(jnp.sum((recon - x) ** 2, -1) + kl)
    m = VAE()
    x, key = _normal(30, 8, 10), np.asarray(jax.random.key_data(jax.random.PRNGKey(3)))
    params = _init(m, x, key)
    return jax.value_and_grad(m.apply), (params, x, key)


@program
def top_k_sampler():
    import jax

    def sample(logits, key):
        vals, idx = jax.lax.top_k(logits, 5)
        choice = jax.random.categorical(key, vals / 0.7, axis=-1)
        return vals, idx, jax.numpy.take_along_axis(idx, choice[:, None], -1)[:, 0]
    key = np.asarray(jax.random.key_data(jax.random.PRNGKey(4)))
    return sample, (_normal(31, 3, 40), key)


@program
def sort_argsort_median():
    import jax.numpy as jnp
    return (lambda x: (jnp.sort(x, -1), jnp.argsort(x, -1), jnp.median(x, -1))), (_normal(32, 4, 11),)


@program
def dropout_train_step():
    import flax.linen as nn
    import jax
    import optax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dropout(0.3, deterministic=not train)(nn.relu(nn.Dense(32)(x)))
            return nn.Dense(4)(x)
    m = Net()
    x, y = _normal(33, 8, 6), _labels(34, 8, 4)
    params = _init(m, x, train=False)
    key = np.asarray(jax.random.key_data(jax.random.PRNGKey(5)))
    tx = optax.sgd(0.1)

    def step(params, opt_state, x, y, key):
        loss, g = jax.value_and_grad(
            lambda p: _xent_int(m.apply(p, x, train=True, rngs={"dropout": key}), y))(params)
        u, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, u), opt_state, loss
    return step, (params, tx.init(params), x, y, key)


@program
def random_init_normal_uniform():
    import jax

    def init(key):
        k1, k2 = jax.random.split(key)
        return jax.random.normal(k1, (4, 5)), jax.random.uniform(k2, (7,), minval=-1.0, maxval=1.0)
    return init, (np.asarray(jax.random.key_data(jax.random.PRNGKey(6))),)


# --- normalization layers -----------------------------------------------------------------------

@program
def batchnorm_train_stats_grad():
    import flax.linen as nn
    import jax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(nn.relu(nn.BatchNorm(use_running_average=False, momentum=0.9)(x)))
    m = Net()
    x = _normal(35, 16, 6)
    v = _init(m, x)

    def f(params, stats, x):
        def loss(p):
            y, upd = m.apply({"params": p, "batch_stats": stats}, x, mutable=["batch_stats"])
            return (y ** 2).mean(), upd["batch_stats"]
        return jax.value_and_grad(loss, has_aux=True)(params)
    return f, (v["params"], v["batch_stats"], x)


@program
def layernorm_groupnorm_adamw():
    import flax.linen as nn
    import optax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.LayerNorm()(nn.Dense(16)(x))
            x = nn.GroupNorm(num_groups=4)(nn.swish(x))
            return nn.Dense(2)(x)
    m = Net()
    x, y = _normal(36, 8, 5), _labels(37, 8, 2)
    params = _init(m, x)
    tx = optax.adamw(1e-3)
    return _train_step(m.apply, _xent_int, tx), (params, tx.init(params), x, y)


# --- indexing and scan idioms ---------------------------------------------------------------------

@program
def segment_sum_mean():
    import jax
    import jax.numpy as jnp
    data, seg = _normal(38, 20, 3), np.sort(_labels(39, 20, 5))

    def f(d, s):
        tot = jax.ops.segment_sum(d, s, num_segments=5)
        cnt = jax.ops.segment_sum(jnp.ones_like(s, jnp.float32), s, num_segments=5)
        return tot, tot / jnp.maximum(cnt, 1)[:, None]
    return f, (data, seg)


@program
def cumsum_cumprod_logcumsumexp():
    import jax
    import jax.numpy as jnp
    return (lambda x: (jnp.cumsum(x, 0), jnp.cumprod(x * 0.5, 1),
                       jax.lax.cumlogsumexp(x, axis=1))), (_normal(40, 6, 7),)


@program
def take_along_axis_gather():
    import jax.numpy as jnp
    x, idx = _normal(41, 5, 9), _labels(42, 5 * 3, 9).reshape(5, 3)
    return (lambda x, i: (jnp.take_along_axis(x, i, 1), x[jnp.arange(5), i[:, 0]])), (x, idx)


@program
def scatter_at_add_set():
    x, idx, v = _normal(43, 10, 4), _labels(44, 6, 10), _normal(45, 6, 4)
    return (lambda x, i, v: (x.at[i].add(v), x.at[i].set(v), x.at[i].max(v))), (x, idx, v)


@program
def one_hot_logsumexp():
    import jax
    import jax.numpy as jnp
    x, y = _normal(46, 6, 8), _labels(47, 6, 8)
    return (lambda x, y: (jax.nn.logsumexp(x, -1), jnp.sum(jax.nn.one_hot(y, 8) * jax.nn.log_softmax(x), -1))), (x, y)


# --- control flow ---------------------------------------------------------------------------------

@program
def fori_loop_newton_sqrt():
    import jax

    def f(a):
        return jax.lax.fori_loop(0, 8, lambda i, x: 0.5 * (x + a / x), a * 0 + 1.0)
    return f, (np.abs(_normal(48, 10)) + 0.1,)


@program
def cond_and_where():
    import jax
    import jax.numpy as jnp

    def f(x, flag):
        y = jax.lax.cond(flag > 0, lambda v: jnp.sin(v), lambda v: jnp.cos(v), x)
        return jnp.where(x > 0, y, -y)
    return f, (_normal(49, 9), np.int32(1))


def run_case(name: str) -> Outcome:
    """Run one program on CPU JAX and on tt-xla, and classify."""
    fn, args = PROGRAMS[name]()
    return run_against_cpu(fn, args, tol=(RTOL, ATOL))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.programs", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="programs to run; default all")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per program (compile included)")
    ap.add_argument("--json", help="write every program's outcome here")
    a = ap.parse_args(argv)
    from tools.isolate import run_isolated

    names = a.names or list(PROGRAMS)
    unknown = set(names) - PROGRAMS.keys()
    if unknown:
        raise SystemExit(f"unknown program(s): {', '.join(sorted(unknown))}")
    t0 = time.monotonic()

    def progress(name: object, res: Outcome) -> None:
        print(f"[{time.monotonic() - t0:.0f}s] {name}: {res.kind}", file=sys.stderr, flush=True)

    results = run_isolated("tools.programs", names, timeout=a.timeout, chunk=len(names), on_result=progress)
    width = max(map(len, names))
    for n in names:
        r = results[n]
        why = f"  ({r.op})" if r.kind == CLEAR and r.op else f"  {r.detail[:160]}" if r.kind != PASS else ""
        print(f"{n:{width}}  {r.kind}{why}")
    counts: dict[str, int] = {}
    for r in results.values():
        counts[r.kind] = counts.get(r.kind, 0) + 1
    print()
    print(table([("programs", counts)], title="suite"))
    if counts.get(REF_ERROR):
        print(f"({counts[REF_ERROR]} programs fail on CPU JAX itself: a bug in this registry)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({n: r.as_dict() for n, r in results.items()}, f, indent=1)
    return 1 if counts.get(WRONG) or counts.get(CRASH) or counts.get(REF_ERROR) else 0


if __name__ == "__main__":
    sys.exit(main())
