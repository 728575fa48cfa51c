/* Scalar helpers for generated kernels: the compiler's own, compiled into every program.
 * Branch-free so that loops around them vectorize. Semantics follow StableHLO as XLA:CPU
 * implements it (NaN-propagating max/min with -0 < +0, saturating float->int, defined integer
 * division by zero and out-of-range shifts). */
#include <stdint.h>
#include <string.h>
#include "ttrt_kernel.h"

/* The libm functions kernels may call, declared here rather than through <math.h>, which alone
 * costs a quarter of the C compiler's time on an empty program (C11 7.1.4 allows it). The
 * compiler knows them as builtins and inlines the ones the target has instructions for. */
#define K_LIBM1(n) double n(double); float n##f(float);
#define K_LIBM2(n) double n(double, double); float n##f(float, float);
K_LIBM1(fabs) K_LIBM1(sqrt) K_LIBM1(floor) K_LIBM1(ceil) K_LIBM1(trunc) K_LIBM1(rint)
K_LIBM1(round) K_LIBM1(exp) K_LIBM1(exp2) K_LIBM1(expm1) K_LIBM1(log) K_LIBM1(log1p)
K_LIBM1(tanh) K_LIBM1(erf) K_LIBM1(sin) K_LIBM1(cos) K_LIBM1(tan) K_LIBM1(cbrt) K_LIBM1(atan)
K_LIBM2(pow) K_LIBM2(atan2) K_LIBM2(fmod) K_LIBM2(copysign)
double fma(double, double, double);
float fmaf(float, float, float);
#define NAN (__builtin_nanf(""))
#define INFINITY (__builtin_inff())
#define isnan(x) __builtin_isnan(x)
#define isinf(x) __builtin_isinf(x)

typedef union { float f; uint32_t u; int32_t i; } k_b32;
typedef union { double f; uint64_t u; int64_t i; } k_b64;
#define K_MIN(a, b) ((a) < (b) ? (a) : (b))

/* A read every work item of a core makes alike (render.py's ONCE): copied into the page on the
 * core's first item, only counted after (the page keeps it). One call site with a computed flag
 * instead of a branch between two: over a training step's kernels, a 2% cut of the C compiler's
 * work. The runtime's DMA engine tells the two apart (TT_DMA_COUNT_ONLY), so no kernel library
 * compiles a helper for it. */
static inline void k_dma_read_once(const tt_core *c, void *const *ops, int first, int op, int64_t index,
                                   void *sram_dst, int64_t sram_pitch, int64_t dram_pitch, uint32_t esize,
                                   int64_t rows, int64_t count, int64_t stride) {
  c->dma_op(c, ops, op, index, sram_dst, sram_pitch, dram_pitch, esize, rows, count, stride,
            first ? 0 : TT_DMA_COUNT_ONLY);
}

/* The DMAs a kernel issues at one point (render.py's _Batch): one call walking a static table of
 * descriptors in place of one engine call site per DMA (each cost the C compiler about 3.5 M
 * instructions, 12 arguments set up around a call that clobbers everything; a table row is data).
 * f: index, sram_pitch, dram_pitch, rows, count, stride; bit j of `live` set: f[j] is not a
 * constant but the next value of `v`. K_DMA_ONCE: a read done on the core's first item only (else
 * counted at the same DRAM address, as k_dma_read_once); K_DMA_COUNT: a read the kernel's loads make,
 * only counted (render.py's FIRST_USE). The engine sees the same transfers in
 * the same order as the calls this replaces, so every counter is unchanged. */
enum { K_DMA_ONCE = 1, K_DMA_WRITE = 2, K_DMA_STREAM = 4, K_DMA_COUNT = 8 };
typedef struct { uint16_t op; uint8_t flags, live; uint32_t esize; uint64_t page; int64_t f[6]; } k_dma_desc;
static __attribute__((noinline, noipa, unused)) void k_dma_batch(
    const tt_core *c, void *const *ops, int first, int n, const k_dma_desc *d, const int64_t *v) {
  for (; n > 0; --n, ++d) {
    /* the constants, then the live fields in order (most rows have one: the index); a test per
     * field cost the host a fifth of a rows kernel's instructions (layernorm's, a row an item) */
    int64_t f[6];
    memcpy(f, d->f, sizeof f);
    for (unsigned m = d->live; m != 0; m &= m - 1u) f[__builtin_ctz(m)] = *v++;
    if ((d->flags & K_DMA_COUNT) || ((d->flags & K_DMA_ONCE) && !first))
      tt_dma_read_counted(c, (const char *)ops[d->op] + f[0] * (int64_t)d->esize, d->esize, f[3], f[4], f[5]);
    else
      c->dma_op(c, ops, d->op, f[0], (char *)c->sram + d->page, f[1], f[2], d->esize, f[3], f[4], f[5],
                (d->flags & K_DMA_WRITE ? TT_DMA_WRITE : 0) | (d->flags & K_DMA_STREAM ? TT_DMA_STREAM : 0));
  }
}

/* The panels a product's work item `it` receives by multicast (lower.py's _multicast): the
 * runtime's tt_multicast_mark, one call at every product kernel in place of two
 * tt_multicast_received calls and four conditional addresses (a quarter of the C compiler's work
 * on such a kernel). */
#define k_multicast tt_multicast_mark

static inline float k_bf16_ld(uint16_t h) { k_b32 v; v.u = (uint32_t)h << 16; return v.f; }
static inline uint16_t k_bf16_st(float f) { k_b32 v; v.f = f; return (uint16_t)(v.u >> 16); }
static inline float k_round_bf16(float f) {
  k_b32 v, o; v.f = f;
  uint32_t r = (v.u + 0x7FFFu + ((v.u >> 16) & 1u)) & 0xFFFF0000u;
  o.u = (f != f) ? ((v.u | 0x00400000u) & 0xFFFF0000u) : r;
  return o.f;
}
static inline float k_round_f16(float f) { return (float)(_Float16)f; }

/* NaN-propagating max/min with -0 < +0 (equal operands: AND of the bits for max, OR for min),
 * and the hot-loop forms for reductions: the zero rule but no NaN test (tracked on the side). */
#define K_MINMAX(T, B, sfx)                                                                     \
  static inline T k_max##sfx(T a, T b) {                                                        \
    B x, y, z; x.f = a; y.f = b; z.u = x.u & y.u;                                               \
    T r = a > b ? a : (a == b ? z.f : b);                                                       \
    return (a != a || b != b) ? a + b : r;                                                      \
  }                                                                                             \
  static inline T k_min##sfx(T a, T b) {                                                        \
    B x, y, z; x.f = a; y.f = b; z.u = x.u | y.u;                                               \
    T r = a < b ? a : (a == b ? z.f : b);                                                       \
    return (a != a || b != b) ? a + b : r;                                                      \
  }                                                                                             \
  static inline T k_maxz##sfx(T a, T b) {                                                       \
    B x, y, z; x.f = a; y.f = b; z.u = x.u & y.u;                                               \
    return a < b ? b : (a == b ? z.f : a);                                                      \
  }                                                                                             \
  static inline T k_minz##sfx(T a, T b) {                                                       \
    B x, y, z; x.f = a; y.f = b; z.u = x.u | y.u;                                               \
    return b < a ? b : (a == b ? z.f : a);                                                      \
  }
K_MINMAX(float, k_b32, f)
K_MINMAX(double, k_b64, d)
/* The guards of the math decompositions (decompose.py), which never see a zero bound.
 * k_maxf_u/k_minf_u: a NaN operand gives either operand, for guards whose NaN reaches the result
 * another way. GCC compiles them as finite-math, so they become one vmaxps/vminps; a select
 * `a < b ? b : a` vectorizes to a compare and a blend, and two chained ones to five to eight
 * instructions (GCC merges their conditions). k_clampf keeps a NaN x and costs four. */
#if defined(__GNUC__) && !defined(__clang__)
#define K_UNORDERED static inline __attribute__((always_inline, optimize("finite-math-only", "no-signed-zeros")))
#else
#define K_UNORDERED static inline
#endif
K_UNORDERED float k_maxf_u(float a, float b) { return a < b ? b : a; }
K_UNORDERED float k_minf_u(float a, float b) { return b < a ? b : a; }
static inline float k_clampf(float x, float lo, float hi) { return x != x ? x : k_minf_u(k_maxf_u(x, lo), hi); }
static inline float k_signf(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }
static inline double k_signd(double x) { return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : x); }

/* float -> integer: NaN -> 0, saturating at the type's range, truncating toward zero */
#define K_F2I(name, FT, IT, LO, HI)                                                     \
  static inline IT name(FT x) {                                                          \
    FT t = x != x ? (FT)0 : x;                                                           \
    return t <= (FT)(LO) ? (IT)(LO) : (t >= (FT)(HI) ? (IT)(HI) : (IT)t);                \
  }
K_F2I(k_f2i8, float, int8_t, INT8_MIN, INT8_MAX)
K_F2I(k_f2i16, float, int16_t, INT16_MIN, INT16_MAX)
K_F2I(k_f2i32, float, int32_t, INT32_MIN, INT32_MAX)
K_F2I(k_f2i64, float, int64_t, INT64_MIN, INT64_MAX)
K_F2I(k_f2u8, float, uint8_t, 0, UINT8_MAX)
K_F2I(k_f2u16, float, uint16_t, 0, UINT16_MAX)
K_F2I(k_f2u32, float, uint32_t, 0, UINT32_MAX)
K_F2I(k_f2u64, float, uint64_t, 0, UINT64_MAX)
K_F2I(k_d2i8, double, int8_t, INT8_MIN, INT8_MAX)
K_F2I(k_d2i16, double, int16_t, INT16_MIN, INT16_MAX)
K_F2I(k_d2i32, double, int32_t, INT32_MIN, INT32_MAX)
K_F2I(k_d2i64, double, int64_t, INT64_MIN, INT64_MAX)
K_F2I(k_d2u8, double, uint8_t, 0, UINT8_MAX)
K_F2I(k_d2u16, double, uint16_t, 0, UINT16_MAX)
K_F2I(k_d2u32, double, uint32_t, 0, UINT32_MAX)
K_F2I(k_d2u64, double, uint64_t, 0, UINT64_MAX)

/* integer division: x/0 = -1 (all ones), x%0 = x, MIN/-1 = MIN, MIN%-1 = 0 */
#define K_IDIV(name, T, UT, MINV)                                                        \
  static inline T name##_div(T a, T b) {                                                 \
    return b == 0 ? (T)(UT)-1 : ((MINV) != 0 && a == (T)(MINV) && b == (T)-1) ? a : (T)(a / b); \
  }                                                                                      \
  static inline T name##_rem(T a, T b) {                                                 \
    return b == 0 ? a : ((MINV) != 0 && a == (T)(MINV) && b == (T)-1) ? (T)0 : (T)(a % b); \
  }
K_IDIV(k_i8, int8_t, uint8_t, INT8_MIN)
K_IDIV(k_i16, int16_t, uint16_t, INT16_MIN)
K_IDIV(k_i32, int32_t, uint32_t, INT32_MIN)
K_IDIV(k_i64, int64_t, uint64_t, INT64_MIN)
K_IDIV(k_u8, uint8_t, uint8_t, 0)
K_IDIV(k_u16, uint16_t, uint16_t, 0)
K_IDIV(k_u32, uint32_t, uint32_t, 0)
K_IDIV(k_u64, uint64_t, uint64_t, 0)

static inline int k_popcnt64(uint64_t x) { return __builtin_popcountll(x); }
static inline int k_clz64(uint64_t x, int bits) { return x == 0 ? bits : __builtin_clzll(x) - (64 - bits); }

/* fp8 (ml_dtypes' float8_* types): m mantissa bits, exponent bias, kind 0 IEEE-like (inf and
 * NaN at the top exponent), 1 "fn" (no inf; all ones is NaN), 2 "fnuz" (no inf, no -0; 0x80 is
 * NaN). Values are computed in float: a load decodes, k_f8_round rounds a float to the format
 * (nearest, ties to even; past the largest finite `maxv`: inf for kind 0, NaN otherwise), a
 * store encodes a float k_f8_round has rounded. */
static inline float k_f8_ld(uint8_t b, int m, int bias, int kind) {
  const int e = (b & 0x7F) >> m, f = b & ((1 << m) - 1), top = (1 << (7 - m)) - 1;
  k_b32 v;
  if (kind == 2 && b == 0x80) return NAN;
  if (kind == 0 && e == top && f == 0) return (b & 0x80) ? -INFINITY : INFINITY;
  if ((kind == 0 && e == top) || (kind == 1 && e == top && f == (1 << m) - 1)) {
    v.u = 0x7FC00000u | ((uint32_t)(b & 0x80) << 24);  /* a NaN keeps its sign, as in XLA */
    return v.f;
  }
  if (e == 0) {  /* subnormal: f * 2^(1 - bias - m) */
    k_b32 q; q.u = (uint32_t)(128 - bias - m) << 23;
    v.f = (float)f * q.f;
  } else {
    v.u = ((uint32_t)(e - bias + 127) << 23) | ((uint32_t)f << (23 - m));
  }
  v.u |= (uint32_t)(b & 0x80) << 24;
  return v.f;
}
static inline float k_f8_round(float x, int m, int bias, float maxv, int kind) {
  k_b32 v, q; v.f = x;
  const uint32_t s = v.u & 0x80000000u;
  v.u &= 0x7FFFFFFFu;
  if (x != x) return x;
  q.u = (uint32_t)(128 - bias) << 23;  /* the smallest normal, 2^(1 - bias) */
  if (v.f < q.f) {  /* subnormals are multiples of 2^(1 - bias - m): round x / 2^(1 - bias - m) */
    k_b32 up, dn; up.u = (uint32_t)(126 + m + bias) << 23; dn.u = (uint32_t)(128 - bias - m) << 23;
    v.f = ((v.f * up.f + 12582912.0f) - 12582912.0f) * dn.f;
  } else {
    const int sh = 23 - m;
    v.u = (v.u + ((1u << (sh - 1)) - 1u) + ((v.u >> sh) & 1u)) & ~((1u << sh) - 1u);
    if (v.f > maxv) v.f = kind == 0 ? INFINITY : NAN;
  }
  if (kind == 2 && v.f == 0.0f) return 0.0f;
  v.u |= s;
  return v.f;
}
static inline uint8_t k_f8_st(float x, int m, int bias, int kind) {
  k_b32 v; v.f = x;
  const uint8_t s = (uint8_t)((v.u >> 24) & 0x80u);
  v.u &= 0x7FFFFFFFu;
  if (x != x) return kind == 2 ? (uint8_t)0x80 : (uint8_t)(s | 0x7F);
  if (v.f == INFINITY) return (uint8_t)(s | (0x7F & ~((1 << m) - 1)));
  if (v.f == 0.0f) return kind == 2 ? (uint8_t)0 : s;
  const int e = (int)(v.u >> 23) - 127 + bias;
  if (e <= 0) { k_b32 up; up.u = (uint32_t)(126 + m + bias) << 23; return (uint8_t)(s | (uint8_t)(v.f * up.f)); }
  return (uint8_t)(s | (e << m) | ((v.u >> (23 - m)) & ((1u << m) - 1u)));
}
