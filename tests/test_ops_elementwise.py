"""Elementwise ops: arithmetic, math, bitwise, comparisons, select, clamp, conversions,
activations. Each case compares tt_xla.jit with jax.jit on CPU (tests/util.py: check)."""
from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

from util import BF16, F16, F32, SHAPES, check, inputs, is_float

FLOATS = [F32, BF16, F16]
FLOAT_IDS = ["f32", "bf16", "f16"]

# ----------------------------------------------------------------------------- shapes sweep
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_add_shapes(shape):
    check(lambda x, y: x + y, inputs(shape), inputs(shape, seed=1))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_exp_mul_shapes(shape):
    check(lambda x, y: jnp.exp(x) * y, inputs(shape), inputs(shape, seed=1),
          transcendental=True)


def test_scalar_and_weak_operand():
    check(lambda x: x * 2 + 1.5, inputs((3, 5)))
    check(lambda x, s: x - s, inputs((33, 65)), 0.25)
    check(lambda s: s * 3.0, 2.0)  # weak-typed scalar in and out


# ----------------------------------------------------------------------------- binary arithmetic
BINARY = {
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide,
    "rem": lax.rem, "max": jnp.maximum, "min": jnp.minimum, "pow": lax.pow,
    "atan2": jnp.arctan2,
}
TRANSC_BINARY = {"pow", "atan2"}


@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_float(name, dtype):
    x = inputs((33, 65), dtype)
    y = inputs((33, 65), dtype, seed=1)
    if name == "pow":
        y = inputs((33, 65), dtype, seed=1, low=-3, high=3)
    check(BINARY[name], x, y, transcendental=name in TRANSC_BINARY)


INT_BINARY = {
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": lax.div, "rem": lax.rem,
    "max": jnp.maximum, "min": jnp.minimum, "and": lax.bitwise_and, "or": lax.bitwise_or,
    "xor": lax.bitwise_xor,
}


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8], ids=["i32", "ui32", "i8"])
@pytest.mark.parametrize("name", sorted(INT_BINARY))
def test_binary_int(name, dtype):
    x = inputs((7, 33), dtype)
    y = inputs((7, 33), dtype, seed=1)
    if name in ("div", "rem"):  # division by zero and INT_MIN / -1 are undefined in C: avoid
        y = np.where(y == 0, 3, y).astype(dtype)
        if np.dtype(dtype).kind == "i":
            y = np.where(y == -1, 5, y).astype(dtype)
    check(INT_BINARY[name], x, y)


def test_int_pow():
    x = inputs((5, 9), np.int32, low=-6, high=6)
    y = inputs((5, 9), np.int32, seed=1, low=0, high=7)
    check(jnp.power, x, y)  # integer base and exponent arrays
    check(lambda a: a ** 3, x)  # integer_pow


SHIFTS = {"shl": lax.shift_left, "shr_a": lax.shift_right_arithmetic,
          "shr_l": lax.shift_right_logical}


@pytest.mark.parametrize("dtype", [np.int32, np.uint32], ids=["i32", "ui32"])
@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_shifts(name, dtype):
    x = inputs((4, 37), dtype)
    # shift amounts include >= bit width (StableHLO defines the result: 0 or sign fill)
    y = np.arange(4 * 37).reshape(4, 37).astype(dtype) % 40
    check(SHIFTS[name], x, y)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8], ids=["i32", "ui32", "i8"])
def test_int_unary(dtype):
    x = inputs((9, 40), dtype)
    fs = {"popcnt": lax.population_count, "clz": lax.clz, "not": lax.bitwise_not,
          "abs": jnp.abs, "neg": jnp.negative, "sign": jnp.sign}
    if np.dtype(dtype).kind == "u":
        del fs["abs"]
    for name, f in fs.items():
        check(f, x)


def test_bool_logic():
    a, b = inputs((5, 33), np.bool_), inputs((5, 33), np.bool_, seed=1)
    check(lambda a, b: (a & b, a | b, a ^ b, ~a), a, b)


# ----------------------------------------------------------------------------- unary math
UNARY = {
    "neg": (jnp.negative, False), "abs": (jnp.abs, False), "sign": (jnp.sign, False),
    "floor": (jnp.floor, False), "ceil": (jnp.ceil, False), "jnp.round": (jnp.round, False),
    "round_away": (lambda x: lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO), False),
    "round_even": (lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), False),
    "sqrt": (jnp.sqrt, True), "rsqrt": (lax.rsqrt, True), "cbrt": (jnp.cbrt, True),
    "exp": (jnp.exp, True), "exp2": (jnp.exp2, True), "expm1": (jnp.expm1, True),
    "log": (jnp.log, True), "log1p": (jnp.log1p, True), "tanh": (jnp.tanh, True),
    "logistic": (jax.nn.sigmoid, True), "sin": (jnp.sin, True), "cos": (jnp.cos, True),
    "tan": (jnp.tan, True), "erf": (jax.scipy.special.erf, True), "lax.erf": (lax.erf, True),
    "is_finite": (jnp.isfinite, False), "reciprocal": (jnp.reciprocal, False),
}
# Trig on huge arguments depends on the quality of range reduction: not compared.
NO_HUGE = {"sin", "cos", "tan"}


@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_float(name, dtype):
    f, transc = UNARY[name]
    x = inputs((33, 65), dtype, huge=name not in NO_HUGE)
    if name in ("jnp.round", "round_away", "round_even"):
        with np.errstate(over="ignore"):
            x = (x.astype(np.float32) * 4).astype(dtype)  # plenty of exact .5 ties
        x.flat[:6] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]).astype(dtype)
    check(f, x, transcendental=transc)


def test_round_half_decimals():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1.25, 0.125, 1e30, np.nan], np.float32)
    check(lambda x: (jnp.round(x), jnp.round(x, 1), jnp.rint(x)), x)


def test_narrow_round_trip_rounds():
    """A user's f32 -> bf16/f16 -> f32 is the rounded value (it once came back unrounded), while
    a bf16 op converted to f32 is the op's f32 value, as XLA:CPU gives both."""
    x = inputs((33, 65), F32)
    x.flat[:5] = [1.00001, 3.14159, 1e-3, 65519.0, 1e-40]
    y = inputs((33, 65), F32, seed=1)
    check(lambda x: (x.astype(jnp.bfloat16).astype(jnp.float32) * 2, x.astype(jnp.float16).astype(jnp.float32),
                     x.astype(jnp.bfloat16).astype(jnp.float32)), x, rtol=0, atol=0)
    check(lambda x, y: (x.astype(jnp.bfloat16) + y.astype(jnp.bfloat16)).astype(jnp.float32), x, y, rtol=0, atol=0)


# ----------------------------------------------------------------------------- comparisons
def _all_compares(x, y):
    return (x == y, x != y, x < y, x <= y, x > y, x >= y,
            lax.eq(x, y), lax.ne(x, y), lax.lt(x, y), lax.le(x, y), lax.gt(x, y), lax.ge(x, y))


@pytest.mark.parametrize("dtype", [F32, BF16, np.int32, np.uint32, np.int8, np.bool_],
                         ids=["f32", "bf16", "i32", "ui32", "i8", "bool"])
def test_compare(dtype):
    x = inputs((17, 33), dtype)
    y = inputs((17, 33), dtype, seed=1)
    y[:3] = x[:3]  # equal elements (and NaN == NaN positions)
    check(_all_compares, x, y)


def test_compare_nan_inf_zero():
    v = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -3e38], np.float32)
    x, y = np.meshgrid(v, v)
    check(_all_compares, x, y)


def test_compare_unsigned_wraparound():
    x = np.array([0, 1, 2**31, 2**32 - 1, 7], np.uint32)
    y = np.array([2**32 - 1, 2**31, 1, 0, 7], np.uint32)
    check(_all_compares, x, y)


# ----------------------------------------------------------------------------- select / clamp
@pytest.mark.parametrize("dtype", [F32, BF16, np.int32], ids=["f32", "bf16", "i32"])
def test_select(dtype):
    c = inputs((33, 65), np.bool_)
    check(jnp.where, c, inputs((33, 65), dtype), inputs((33, 65), dtype, seed=1))


def test_select_broadcast_scalar():
    x = inputs((5, 7))
    check(lambda x: jnp.where(x > 0, x, 0.0), x)
    check(lambda c, x: lax.select(c, x, -x), x > 0, x)


@pytest.mark.parametrize("dtype", [F32, BF16, np.int32], ids=["f32", "bf16", "i32"])
def test_clamp(dtype):
    x = inputs((33, 65), dtype)
    check(lambda x: jnp.clip(x, -1, 2), x)
    check(lambda x: lax.clamp(np.array(-3, dtype), x, np.array(3, dtype)), x)
    lo, hi = inputs((33, 65), dtype, seed=2), inputs((33, 65), dtype, seed=3)
    check(lax.clamp, np.minimum(lo, hi), x, np.maximum(lo, hi))


# ----------------------------------------------------------------------------- conversions
CONV_DTYPES = [np.float32, BF16, np.float16, np.int32, np.uint32, np.int8, np.bool_]
CONV_IDS = ["f32", "bf16", "f16", "i32", "ui32", "i8", "bool"]


def _in_range_for_all(dtype):
    """Values every destination type represents after truncation (float->int of NaN, inf or
    out-of-range values is implementation-defined in the StableHLO spec: convert, 'TBD')."""
    d = np.dtype(dtype)
    if d == np.bool_:
        return inputs((9, 37), d)
    if is_float(d):
        x = inputs((9, 37), d, low=-120, high=120, edges=False)
        x.flat[:6] = np.array([0.0, -0.0, 0.5, -0.5, 127.0, -1.0]).astype(d)
        return x
    x = inputs((9, 37), d, edges=True)
    return x


@pytest.mark.parametrize("src", CONV_DTYPES, ids=CONV_IDS)
def test_convert_all_pairs(src):
    x = _in_range_for_all(src)
    if is_float(src):
        x = np.where(np.abs(x.astype(np.float32)) < 127, x, 0).astype(src)

    def f(x):
        outs = []
        for dst in CONV_DTYPES:
            if np.dtype(dst) == np.uint32 and is_float(src):
                outs.append(jnp.abs(x).astype(dst))  # negative float -> unsigned: undefined
            else:
                outs.append(x.astype(dst))
        return tuple(outs)

    check(f, x)


def test_convert_float_specials_to_float():
    x = inputs((33, 65), F32)  # NaN, inf, huge (overflow to inf in bf16/f16)
    check(lambda x: (x.astype(BF16), x.astype(F16), x.astype(BF16).astype(F32),
                     x.astype(F16).astype(F32), x.astype(BF16).astype(F16)), x)


def test_convert_float_to_int_truncates():
    x = np.array([2.7, -2.7, 0.999, -0.999, 1e9, -1e9, 2147483520.0, -2147483648.0], np.float32)
    check(lambda x: x.astype(jnp.int32), x)
    check(lambda x: jnp.abs(x[:4]).astype(jnp.uint32), x)


def test_convert_int_wraps():
    x = np.array([300, -300, 127, 128, -129, 255, 256, 2**31 - 1, -2**31], np.int32)
    check(lambda x: (x.astype(jnp.int8), x.astype(jnp.uint32), x.astype(jnp.float32),
                     x.astype(BF16), x.astype(jnp.bool_)), x)


@pytest.mark.parametrize("pair", [(F32, np.int32), (F32, np.uint32), (np.int32, F32),
                                  (F16, np.int16), (BF16, np.int16), (np.uint32, np.int32)],
                         ids=lambda p: f"{np.dtype(p[0]).name}->{np.dtype(p[1]).name}")
def test_bitcast_convert(pair):
    src, dst = pair
    x = inputs((6, 35), src)
    check(lambda x: lax.bitcast_convert_type(x, dst), x)


def test_bitcast_convert_change_width():
    check(lambda x: lax.bitcast_convert_type(x, jnp.uint8), inputs((4, 5), np.int32))
    check(lambda x: lax.bitcast_convert_type(x, jnp.float32), inputs((4, 5, 4), np.uint8))


# ----------------------------------------------------------------------------- activations
ACTIVATIONS = {
    "relu": jax.nn.relu, "elu": jax.nn.elu, "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_erf": lambda x: jax.nn.gelu(x, approximate=False), "silu": jax.nn.silu,
    "softplus": jax.nn.softplus, "leaky_relu": jax.nn.leaky_relu, "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh, "relu6": jax.nn.relu6, "selu": jax.nn.selu,
}


@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name, dtype):
    x = inputs((33, 65), dtype)
    check(ACTIVATIONS[name], x, transcendental=name != "relu" and name != "leaky_relu")


# StableHLO leaves these implementation-defined (convert of NaN/inf/out-of-range floats to ints:
# "TBD"; integer division by zero). The compiler's prelude documents XLA:CPU's behaviour
# (saturating conversion, NaN -> 0, defined division by zero), so compare with CPU JAX here.
def test_convert_float_to_int_out_of_range_like_xla_cpu():
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 5e9, 300.0, -300.0, 2.7, -2.7], np.float32)
    check(lambda x: (x.astype(jnp.int32), x.astype(jnp.uint32), x.astype(jnp.int8),
                     x.astype(BF16).astype(jnp.int32), x.astype(F16).astype(jnp.int8)), x)


def test_int_division_by_zero_like_xla_cpu():
    x = np.array([7, -7, 0, 2**31 - 1, -2**31, -2**31], np.int32)
    y = np.array([0, 0, 0, 0, 0, -1], np.int32)
    check(lambda x, y: (lax.div(x, y), lax.rem(x, y)), x, y)
    check(lambda x, y: (lax.div(x, y), lax.rem(x, y)), x.astype(np.uint32), y.astype(np.uint32))
