/* engine.c: the matrix engine, compiled once per instruction-set level (TT_ENGINE names it;
 * CMake adds that level's -m flags) so the runtime ships code for every host it may meet and
 * picks one when a device opens (engine_select.c). Kernels reach it through tt_core. */
#include "internal.h"

#ifndef TT_ENGINE
#error "build with -DTT_ENGINE=<variant>"
#endif
#define TT__CAT2(a, b) a##b
#define TT__CAT(a, b) TT__CAT2(a, b)
#define TT__ENGINE_FN(name) TT__CAT(TT__CAT(tt__, name), TT__CAT(_, TT_ENGINE))

/* ---------------------------------------------------------------- internals
 * Goto/BLIS-style: C is computed in blocks; a KC x NC block of B and an MC x KC block of A are
 * packed into SRAM as NR-wide / MR-tall panels (zero padded, so the micro-kernel never branches
 * on edges), then an MR x NR register tile of C accumulates over KC. Vector width follows the
 * -march the library is built with, because 512-bit vectors on an AVX2 machine would spill. */
#if defined(__AVX512F__)
#define TT__VL 16
#define TT__MR 8
#elif defined(__AVX__)
#define TT__VL 8
#define TT__MR 6
#else
#define TT__VL 4
#define TT__MR 6
#endif
#define TT__NR (2 * TT__VL)
#define TT__KC 256
#define TT__MC (TT__MR * 16)
#define TT__DIRECT_B_K 64      /* B read in place: at most this deep (a panel's rows fit L1) */
#define TT__DIRECT_B_RS 1024   /* and its rows at most this many f32 apart (a page) */
typedef float tt__vf __attribute__((vector_size(TT__VL * 4)));

/* Depth of one packed block: all of K when it is short (a second pass would re-read and
 * re-write C for little work, as for K = 9 * 32), else equal chunks of
 * about `target` (TT__KC f32 values, or as many bytes of bf16), no deeper than half the engine's
 * SRAM budget allows for the A block (small cores: shallower blocks). */
static int64_t tt__mm_kc(int64_t K, int64_t target, int64_t budget, int64_t esz) {
  int64_t kc = K < 2 ? 2 : K;
  if (K > 2 * target) {
    const int64_t n = (K + target - 1) / target;
    kc = (K + n - 1) / n;
  }
  const int64_t kmax = budget / 2 / (TT__MC * esz) - 1;
  return kc > kmax ? (kmax < 2 ? 2 : kmax) : kc;
}
/* Width of one packed B block: what the SRAM budget leaves after the A block, in NR panels. */
static int64_t tt__mm_nc(int64_t kc, int64_t esz, int64_t budget) {
  const int64_t nc = (budget - TT__MC * (kc + 1) * esz) / ((kc + 1) * esz);
  return nc < TT__NR ? TT__NR : nc / TT__NR * TT__NR;
}

/* Where the panels are packed: the host thread's scratch (engine_select.c), else the core's SRAM.
 * Either way the blocks are sized to the engine's share of the core's SRAM (TT_MM_SRAM), so the
 * model's capacity holds; the scratch only keeps the host's caches warm across simulated cores. */
static void *tt__mm_scratch(const tt_core *c) {
  void *s = tt__engine_scratch();
  return s ? s : (void *)(((uintptr_t)c->sram + 63) & ~(uintptr_t)63);
}

/* The thread's cache for all of B packed (engine_select.c), keyed by what it holds and how it is
 * packed (`format`: 1 f32, 2 bf16 widened, 3 bf16 pairs; this build's panel width), or NULL
 * when it does not fit (then B is packed block by block into the scratch). `col_bytes` is the
 * packed bytes per column of B; columns are padded to whole NR panels. */
static void *tt__mm_packed_b(const tt_core *c, const void *B, int64_t b_rs, int64_t b_cs, int64_t K, int64_t N,
                             int64_t kb, int64_t nb, int format, size_t col_bytes, int *hit) {
  *hit = 0;
  /* a B in the core's own SRAM (a page a kernel unpacked) changes within a launch at the same address */
  if (tt__within(B, (const char *)c->sram, (const char *)c->sram + c->sram_bytes)) return NULL;
  tt__mm_bkey key;
  memset(&key, 0, sizeof key);
  key.src = B;
  key.rs = b_rs;
  key.cs = b_cs;
  key.k = K;
  key.n = N;
  key.kb = kb;
  key.nb = nb;
  key.layout = (int64_t)TT__NR << 8 | format;
  /* N rounded up to whole panels per block of nb columns */
  const int64_t cols = N / nb * ((nb + TT__NR - 1) / TT__NR * TT__NR) + (N % nb + TT__NR - 1) / TT__NR * TT__NR;
  return tt__engine_packed_b(&key, (size_t)cols * col_bytes, hit);
}

static tt__vf tt__vload(const float *p) { tt__vf v; memcpy(&v, p, sizeof v); return v; }
static void tt__vstore(float *p, tt__vf v) { memcpy(p, &v, sizeof v); }

/* C[0:mr, 0:nr] (=|+=) A(MR x kc) * Bpanel(kc x NR), A's element (i, k) at row[i][k * a_ks]:
 * a packed panel (row[i] = panel + i, a_ks = MR) or A's own rows (a_ks = 1). */
/* Built with -ffp-contract=fast (CMakeLists.txt, toolchain.build_runtime_library): the products
 * accumulate as fused multiply-adds. */
static inline __attribute__((always_inline)) void tt__mm_micro_at(int64_t kc, const float *const row[TT__MR],
                                                                  int64_t a_ks, const float *restrict b,
                                                                  int64_t b_ks, float *restrict c, int64_t c_rs,
                                                                  int64_t mr, int64_t nr, int accum, const int rows) {
  tt__vf c0[TT__MR], c1[TT__MR];
#pragma GCC unroll 16
  for (int i = 0; i < rows; i++) c0[i] = c1[i] = (tt__vf){0};
  for (int64_t k = 0; k < kc; k++) {
    const tt__vf b0 = tt__vload(b + k * b_ks), b1 = tt__vload(b + k * b_ks + TT__VL);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
      const float ai = row[i][k * a_ks];
      c0[i] += ai * b0;
      c1[i] += ai * b1;
    }
  }
  if (mr == rows && nr == TT__NR) {
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
      float *ci = c + i * c_rs;
      if (accum) { c0[i] += tt__vload(ci); c1[i] += tt__vload(ci + TT__VL); }
      tt__vstore(ci, c0[i]);
      tt__vstore(ci + TT__VL, c1[i]);
    }
    return;
  }
  float t[TT__MR * TT__NR] __attribute__((aligned(64)));
  for (int i = 0; i < rows; i++) { tt__vstore(t + i * TT__NR, c0[i]); tt__vstore(t + i * TT__NR + TT__VL, c1[i]); }
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) c[i * c_rs + j] = accum ? c[i * c_rs + j] + t[i * TT__NR + j] : t[i * TT__NR + j];
}

/* A last row panel of at most half the register tile's rows computes only those (`rows` a
 * constant at each call: the loops unroll for it): an M of 68 otherwise paid for 72 rows. */
#define TT__MICRO(kc, row, a_ks, b, b_ks, c, c_rs, mr, nr, accum)                                          \
  ((mr) <= TT__MR / 2 ? tt__mm_micro_at(kc, row, a_ks, b, b_ks, c, c_rs, mr, nr, accum, TT__MR / 2)       \
                      : tt__mm_micro_at(kc, row, a_ks, b, b_ks, c, c_rs, mr, nr, accum, TT__MR))

/* From a packed A panel (kc x MR). */
static void tt__mm_micro(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                         int64_t c_rs, int64_t mr, int64_t nr, int accum) {
  const float *row[TT__MR];
  for (int i = 0; i < TT__MR; i++) row[i] = a + i;
  TT__MICRO(kc, row, TT__MR, b, TT__NR, c, c_rs, mr, nr, accum);
}

/* From A's own rows (k contiguous, a_rs apart): rows past mr read row 0 again (their sums are
 * dropped), so nothing past A is read. B is a packed panel (b_ks = NR) or B's own rows (b_ks =
 * b_rs, a whole panel's NR columns contiguous in each). */
static void tt__mm_micro_rows(int64_t kc, const float *a, int64_t a_rs, const float *restrict b, int64_t b_ks,
                              float *restrict c, int64_t c_rs, int64_t mr, int64_t nr, int accum) {
  const float *row[TT__MR];
  for (int i = 0; i < TT__MR; i++) row[i] = a + (i < mr ? i : 0) * a_rs;
  TT__MICRO(kc, row, 1, b, b_ks, c, c_rs, mr, nr, accum);
}

/* Pack A[i0:i0+mc, k0:k0+kc] into MR-tall panels: panel p holds kc columns of MR values. Element
 * type is f32 (bf16 == 0) or bf16 bits; bf16 is widened here so the micro-kernel is shared. */
static void tt__mm_pack_a(float *restrict dst, const void *src, int bf16, int64_t a_rs, int64_t a_cs,
                                 int64_t mc, int64_t kc) {
  for (int64_t p = 0; p < mc; p += TT__MR, dst += TT__MR * kc) {
    const int64_t mr = mc - p < TT__MR ? mc - p : TT__MR;
#if TT__MR == 8
    if (a_cs == 1 && mr == 8) {  /* rows along k: 8x8 register transposes (bf16 widened first) */
      int64_t k = 0;
      if (bf16) {
        const uint16_t *s = (const uint16_t *)src + p * a_rs;
        float w[64] __attribute__((aligned(64)));
        for (; k + 8 <= kc; k += 8) {
          for (int64_t i = 0; i < 8; i++)
            for (int64_t j = 0; j < 8; j++) w[i * 8 + j] = tt_bf16_to_f32(s[i * a_rs + k + j]);
          tt_transpose8x8_b32(w, 8, dst + k * 8, 8);
        }
        for (; k < kc; k++)
          for (int64_t i = 0; i < 8; i++) dst[k * 8 + i] = tt_bf16_to_f32(s[i * a_rs + k]);
        continue;
      }
      const float *s = (const float *)src + p * a_rs;
      for (; k + 8 <= kc; k += 8) tt_transpose8x8_b32(s + k, a_rs, dst + k * 8, 8);
      for (; k < kc; k++)
        for (int64_t i = 0; i < 8; i++) dst[k * 8 + i] = s[i * a_rs + k];
      continue;
    }
#endif
    if (!bf16 && a_rs == 1 && mr == TT__MR) {  /* columns along k (a transposed operand): each k's
                                                 * MR values are one contiguous run, copied in order */
      const float *s = (const float *)src + p;
      for (int64_t k = 0; k < kc; k++) memcpy(dst + k * TT__MR, s + k * a_cs, TT__MR * sizeof(float));
      continue;
    }
    for (int64_t i = 0; i < TT__MR; i++) {
      if (i >= mr) { for (int64_t k = 0; k < kc; k++) dst[k * TT__MR + i] = 0.0f; continue; }
      const int64_t row = (p + i) * a_rs;
      if (bf16) { const uint16_t *s = (const uint16_t *)src + row;
        for (int64_t k = 0; k < kc; k++) dst[k * TT__MR + i] = tt_bf16_to_f32(s[k * a_cs]);
      } else { const float *s = (const float *)src + row;
        for (int64_t k = 0; k < kc; k++) dst[k * TT__MR + i] = s[k * a_cs];
      }
    }
  }
}

/* Pack B[k0:k0+kc, j0:j0+nc] into NR-wide panels: panel q holds kc rows of NR values. */
static void tt__mm_pack_b(float *restrict dst, const void *src, int bf16, int64_t b_rs, int64_t b_cs,
                                 int64_t kc, int64_t nc) {
  for (int64_t q = 0; q < nc; q += TT__NR, dst += TT__NR * kc) {
    const int64_t nr = nc - q < TT__NR ? nc - q : TT__NR;
    if (!bf16 && b_rs == 1 && b_cs != 1) { /* columns run along k: read each column's run once, in
                                             * order (k outer would touch NR lines a page apart per k) */
      int64_t k8 = 0;
      if (nr == TT__NR) { /* whole panels: 8x8 register transposes of eight columns' runs (a scalar
                            * scatter per element took a fifth of rfft2's real-axis product) */
        for (; k8 + 8 <= kc; k8 += 8)
          for (int64_t j = 0; j < TT__NR; j += 8)
            tt_transpose8x8_b32((const float *)src + (q + j) * b_cs + k8, b_cs, dst + k8 * TT__NR + j, TT__NR);
        for (int64_t j = 0; j < TT__NR; j++) {
          const float *s = (const float *)src + (q + j) * b_cs;
          for (int64_t k = k8; k < kc; k++) dst[k * TT__NR + j] = s[k];
        }
        continue;
      }
      for (int64_t j = 0; j < nr; j++) {
        const float *s = (const float *)src + (q + j) * b_cs;
        for (int64_t k = 0; k < kc; k++) dst[k * TT__NR + j] = s[k];
      }
      for (int64_t k = 0; k < kc; k++)
        for (int64_t j = nr; j < TT__NR; j++) dst[k * TT__NR + j] = 0.0f;
      continue;
    }
    for (int64_t k = 0; k < kc; k++) {
      float *d = dst + k * TT__NR;
      if (bf16 && b_cs == 1 && nr == TT__NR) {  /* widening a contiguous row vectorizes */
        const uint16_t *s = (const uint16_t *)src + k * b_rs + q;
        for (int64_t j = 0; j < TT__NR; j++) d[j] = tt_bf16_to_f32(s[j]);
      } else if (bf16) { const uint16_t *s = (const uint16_t *)src + k * b_rs + q * b_cs;
        for (int64_t j = 0; j < nr; j++) d[j] = tt_bf16_to_f32(s[j * b_cs]);
      } else if (b_cs == 1 && nr == TT__NR) {
        memcpy(d, (const float *)src + k * b_rs + q, TT__NR * sizeof(float));
      } else { const float *s = (const float *)src + k * b_rs + q * b_cs;
        for (int64_t j = 0; j < nr; j++) d[j] = s[j * b_cs];
      }
      for (int64_t j = nr; j < TT__NR; j++) d[j] = 0.0f;
    }
  }
}

static void tt__matmul(const tt_core *c, int64_t M, int64_t N, int64_t K, const void *A, int64_t a_rs,
                              int64_t a_cs, const void *B, int64_t b_rs, int64_t b_cs, float *C, int64_t c_rs,
                              int bf16) {
  if (M <= 0 || N <= 0) return;
  const int64_t esz = bf16 ? 2 : 4;
  const uint64_t tiles = (uint64_t)(((M + 31) / 32) * ((N + 31) / 32) * ((K + 31) / 32));
  c->counters[TT_CORE_MATRIX_TILES] += tiles;
  if (bf16) c->counters[TT_CORE_MATRIX_TILES_BF16] += tiles; /* the device costs tiles per data format */
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++) memset(C + i * c_rs, 0, (size_t)N * sizeof(float));
    return;
  }
  const int64_t budget = (int64_t)TT_MM_SRAM(c->sram_bytes) - 128; /* less the alignments below */
  const int64_t kb = tt__mm_kc(K, TT__KC, budget, 4), ncb = tt__mm_nc(kb, 4, budget);
  /* An f32 A whose rows run along k is read in place: the micro-kernel's broadcasts from eight
   * rows cost no more than from a panel, so packing it is pure overhead (measured 3% on 1024^3,
   * 7% on 64 x 64 x 288 items, whose A each B panel pair reads once). */
  const int direct_a = !bf16 && a_cs == 1;
  /* So is a short B whose rows run along n at most a page apart (FFT levels: 32 rows of data):
   * a panel's K rows stay in L1 while every row panel of A reads them, where packing wrote and
   * re-read all of B for as few multiply-adds per element as A has rows (rfft2_1024's first
   * product 0.85x, its last 0.92x host time). Rows further apart are still packed: read in
   * place, a panel's K lines on K pages took FFT levels over 8704-float rows 1.3x as long. */
  const int direct_b = direct_a && b_cs == 1 && K <= TT__DIRECT_B_K && b_rs <= TT__DIRECT_B_RS;
  int hit = 0;
  float *const whole = direct_b ? NULL : tt__mm_packed_b(c, B, b_rs, b_cs, K, N, kb, ncb, bf16 ? 2 : 1, (size_t)K * 4, &hit);
  float *const scratch = (float *)tt__mm_scratch(c), *ap = whole ? scratch : scratch + ncb * kb, *bnext = whole;
  for (int64_t jc = 0; jc < N; jc += ncb) {
    const int64_t nc = N - jc < ncb ? N - jc : ncb;
    for (int64_t pc = 0; pc < K; pc += kb) {
      const int64_t kc = K - pc < kb ? K - pc : kb;
      if (direct_b) {
        const float *const bb = (const float *)B + pc * b_rs + jc;
        tt_dma_count(c, bb, (uint64_t)(kc * nc * esz)); /* (as packed below) */
        /* a last, narrower panel: packed (zero padded) once for every row panel of A, so no
         * load passes B's rows */
        const int64_t jn = nc / TT__NR * TT__NR;
        if (jn < nc) tt__mm_pack_b(scratch, bb + jn, 0, b_rs, 1, kc, nc - jn);
        for (int64_t ic = 0; ic < M; ic += TT__MC) {
          const int64_t mc = M - ic < TT__MC ? M - ic : TT__MC;
          tt_dma_count(c, (const float *)A + ic * a_rs + pc, (uint64_t)(mc * kc * esz));
          for (int64_t jr = 0; jr < nc; jr += TT__NR) {
            const int64_t nr = nc - jr < TT__NR ? nc - jr : TT__NR;
            const float *bpan = bb + jr;
            int64_t b_ks = b_rs;
            if (nr < TT__NR) { /* (packed above) */
              bpan = scratch;
              b_ks = TT__NR;
            }
            for (int64_t ir = 0; ir < mc; ir += TT__MR)
              tt__mm_micro_rows(kc, (const float *)A + (ic + ir) * a_rs + pc, a_rs, bpan, b_ks,
                                C + (ic + ir) * c_rs + jc + jr, c_rs, mc - ir < TT__MR ? mc - ir : TT__MR, nr, pc > 0);
          }
        }
        continue;
      }
      float *const bp = whole ? bnext : scratch;
      if (whole) bnext += (nc + TT__NR - 1) / TT__NR * TT__NR * kc;
      if (!hit) tt__mm_pack_b(bp, (const char *)B + (pc * b_rs + jc * b_cs) * esz, bf16, b_rs, b_cs, kc, nc);
      tt_dma_count(c, (const char *)B + (pc * b_rs + jc * b_cs) * esz, (uint64_t)(kc * nc * esz)); /* every core DMAs its own copy */
      for (int64_t ic = 0; ic < M; ic += TT__MC) {
        const int64_t mc = M - ic < TT__MC ? M - ic : TT__MC;
        tt_dma_count(c, (const char *)A + (ic * a_rs + pc * a_cs) * esz, (uint64_t)(mc * kc * esz));
        if (direct_a) { /* (the model still packs it: its DMA is counted above) */
          for (int64_t ir = 0; ir < mc; ir += TT__MR)
            for (int64_t jr = 0; jr < nc; jr += TT__NR)
              tt__mm_micro_rows(kc, (const float *)A + (ic + ir) * a_rs + pc, a_rs, bp + jr * kc, TT__NR,
                                C + (ic + ir) * c_rs + jc + jr, c_rs, mc - ir < TT__MR ? mc - ir : TT__MR,
                                nc - jr < TT__NR ? nc - jr : TT__NR, pc > 0);
          continue;
        }
        tt__mm_pack_a(ap, (const char *)A + (ic * a_rs + pc * a_cs) * esz, bf16, a_rs, a_cs, mc, kc);
        for (int64_t jr = 0; jr < nc; jr += TT__NR)
          for (int64_t ir = 0; ir < mc; ir += TT__MR)
            tt__mm_micro(kc, ap + ir * kc, bp + jr * kc, C + (ic + ir) * c_rs + jc + jr, c_rs,
                         mc - ir < TT__MR ? mc - ir : TT__MR, nc - jr < TT__NR ? nc - jr : TT__NR, pc > 0);
      }
    }
  }
}

void TT__ENGINE_FN(matmul_f32)(const tt_core *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t a_rs,
                                 int64_t a_cs, const float *B, int64_t b_rs, int64_t b_cs, float *C, int64_t c_rs) {
  tt__matmul(c, M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, c_rs, 0);
}
#if defined(__AVX512BF16__) && defined(__AVX512F__) && TT__VL == 16
/* bf16 on a host with a bf16 dot-product unit: pairs of k multiply in one instruction
 * (vdpbf16ps: acc += a[2i]*b[2i] + a[2i+1]*b[2i+1] per f32 lane), twice the f32 rate. Panels
 * hold k in pairs: A as one 32-bit (a[k], a[k+1]) word per row, B as NR interleaved pairs. */
#include <immintrin.h>

/* A panel: one 32-bit word (a[k], a[k+1]) per row and k pair, MR rows per pair. When rows run
 * along k those words are already contiguous in memory, so eight rows are one 8x8 transpose of
 * 32-bit words per eight k pairs (the data-movement engine), not a gather per element. */
static void tt__mm_pack_a_bf16x2(uint32_t *restrict dst, const uint16_t *src, int64_t a_rs, int64_t a_cs,
                                        int64_t mc, int64_t kc) {
  const int64_t kp = (kc + 1) / 2, full = kc / 2;
  for (int64_t p = 0; p < mc; p += TT__MR, dst += TT__MR * kp) {
    int64_t k2 = 0;
    if (a_cs == 1 && !(a_rs & 1) && mc - p >= TT__MR) {  /* (an odd row stride splits pairs across words) */
      const uint16_t *s = src + p * a_rs;
      for (; k2 + 8 <= full; k2 += 8) tt_transpose8x8_b32(s + 2 * k2, a_rs / 2, dst + k2 * TT__MR, TT__MR);
    }
    for (int64_t i = 0; i < TT__MR; i++) {
      if (p + i >= mc) {
        for (int64_t q = k2; q < kp; q++) dst[q * TT__MR + i] = 0;
        continue;
      }
      const uint16_t *s = src + (p + i) * a_rs;
      for (int64_t q = k2; q < full; q++)
        dst[q * TT__MR + i] = (uint32_t)s[2 * q * a_cs] | (uint32_t)s[(2 * q + 1) * a_cs] << 16;
      if (kc & 1) dst[full * TT__MR + i] = s[(kc - 1) * a_cs];
    }
  }
}

/* B panel: for each k pair, NR columns of (b[k][j], b[k+1][j]) 32-bit pairs. */
static void tt__mm_pack_b_bf16x2(uint16_t *restrict dst, const uint16_t *src, int64_t b_rs, int64_t b_cs,
                                        int64_t kc, int64_t nc) {
  const int64_t kp = (kc + 1) / 2;
  for (int64_t q = 0; q < nc; q += TT__NR, dst += 2 * TT__NR * kp) {
    const int64_t nr = nc - q < TT__NR ? nc - q : TT__NR;
    for (int64_t k2 = 0; k2 < kp; k2++) {
      uint16_t *d = dst + k2 * 2 * TT__NR;
      const uint16_t *r0 = src + 2 * k2 * b_rs + q * b_cs, *r1 = r0 + b_rs;
      const int two = 2 * k2 + 1 < kc;
      if (b_cs == 1 && nr == TT__NR && two) {  /* the common case: interleave two rows by widening */
        for (int h = 0; h < 2; h++) {
          const __m512i lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(r0 + 16 * h)));
          const __m512i hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(r1 + 16 * h)));
          _mm512_storeu_si512(d + 32 * h, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
        continue;
      }
      for (int64_t j = 0; j < TT__NR; j++) {
        d[2 * j] = j < nr ? r0[j * b_cs] : 0;
        d[2 * j + 1] = j < nr && two ? r1[j * b_cs] : 0;
      }
    }
  }
}

/* A's k pair (a[i][2q], a[i][2q+1]) is the 32-bit word at row[i] + q * a_ks (bf16 units): a packed
 * panel (row[i] = panel + 2i, a_ks = 2 * MR) or A's own rows (a_ks = 2: a row along k holds its
 * pairs as consecutive words, aligned or not). */
static inline __attribute__((always_inline)) void tt__mm_micro_bf16x2_at(int64_t kp, const uint16_t *const row[TT__MR],
                                                                         int64_t a_ks, const uint16_t *restrict b,
                                                                         float *restrict c, int64_t c_rs, int64_t mr,
                                                                         int64_t nr, int accum) {
  __m512 c0[TT__MR], c1[TT__MR];
#pragma GCC unroll 16
  for (int i = 0; i < TT__MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k2 = 0; k2 < kp; k2++) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + k2 * 2 * TT__NR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + k2 * 2 * TT__NR + 32);
#pragma GCC unroll 16
    for (int i = 0; i < TT__MR; i++) {
      int32_t w;
      memcpy(&w, row[i] + k2 * a_ks, sizeof w);
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(w);
      c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
    }
  }
  if (mr == TT__MR && nr == TT__NR) {  /* a whole register tile: straight to C */
#pragma GCC unroll 16
    for (int i = 0; i < TT__MR; i++) {
      float *ci = c + i * c_rs;
      if (accum) { c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(ci)); c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(ci + 16)); }
      _mm512_storeu_ps(ci, c0[i]);
      _mm512_storeu_ps(ci + 16, c1[i]);
    }
    return;
  }
  float t[TT__MR * TT__NR] __attribute__((aligned(64)));
  for (int i = 0; i < TT__MR; i++) { _mm512_store_ps(t + i * TT__NR, c0[i]); _mm512_store_ps(t + i * TT__NR + 16, c1[i]); }
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) c[i * c_rs + j] = accum ? c[i * c_rs + j] + t[i * TT__NR + j] : t[i * TT__NR + j];
}

static void tt__mm_micro_bf16x2(int64_t kp, const uint32_t *restrict a, const uint16_t *restrict b,
                                float *restrict c, int64_t c_rs, int64_t mr, int64_t nr, int accum) {
  const uint16_t *row[TT__MR];
  for (int i = 0; i < TT__MR; i++) row[i] = (const uint16_t *)(a + i);
  tt__mm_micro_bf16x2_at(kp, row, 2 * TT__MR, b, c, c_rs, mr, nr, accum);
}

/* From A's own rows (see tt__mm_micro_rows); every k pair must be whole (an even depth). */
static void tt__mm_micro_bf16x2_rows(int64_t kp, const uint16_t *a, int64_t a_rs, const uint16_t *restrict b,
                                     float *restrict c, int64_t c_rs, int64_t mr, int64_t nr, int accum) {
  const uint16_t *row[TT__MR];
  for (int i = 0; i < TT__MR; i++) row[i] = a + (i < mr ? i : 0) * a_rs;
  tt__mm_micro_bf16x2_at(kp, row, 2, b, c, c_rs, mr, nr, accum);
}

void TT__ENGINE_FN(matmul_bf16)(const tt_core *c, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                                  int64_t a_rs, int64_t a_cs, const uint16_t *B, int64_t b_rs, int64_t b_cs,
                                  float *C, int64_t c_rs) {
  if (M <= 0 || N <= 0) return;
  c->counters[TT_CORE_MATRIX_TILES] += (uint64_t)(((M + 31) / 32) * ((N + 31) / 32) * ((K + 31) / 32));
  c->counters[TT_CORE_MATRIX_TILES_BF16] += (uint64_t)(((M + 31) / 32) * ((N + 31) / 32) * ((K + 31) / 32));
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++) memset(C + i * c_rs, 0, (size_t)N * sizeof(float));
    return;
  }
  const int64_t budget = (int64_t)TT_MM_SRAM(c->sram_bytes) - 128; /* less the alignments below */
  const int64_t kb = tt__mm_kc(K, 2 * TT__KC, budget, 2) & ~(int64_t)1, ncb = tt__mm_nc(kb, 2, budget); /* even: k pairs */
  int hit;
  /* (K + #blocks) bytes per column: each block's k pairs round its depth up to even */
  uint16_t *const whole = tt__mm_packed_b(c, B, b_rs, b_cs, K, N, kb, ncb, 3, (size_t)(K + (K + kb - 1) / kb) * 2, &hit);
  uint16_t *const scratch = (uint16_t *)tt__mm_scratch(c), *bnext = whole;
  uint32_t *ap = (uint32_t *)(whole ? scratch : scratch + ((ncb * (kb + 1) + 31) & ~(int64_t)31));
  /* A read in place as in tt__matmul, when its rows hold whole k pairs: an odd K would pair its
   * last k with whatever follows the row (the B panel's zero does not cancel a NaN there). */
  const int direct_a = a_cs == 1 && !(K & 1);
  for (int64_t jc = 0; jc < N; jc += ncb) {
    const int64_t nc = N - jc < ncb ? N - jc : ncb;
    for (int64_t pc = 0; pc < K; pc += kb) {
      const int64_t kc = K - pc < kb ? K - pc : kb, kp = (kc + 1) / 2;
      uint16_t *const bp = whole ? bnext : scratch;
      if (whole) bnext += (nc + TT__NR - 1) / TT__NR * TT__NR * 2 * kp;
      if (!hit) tt__mm_pack_b_bf16x2(bp, B + pc * b_rs + jc * b_cs, b_rs, b_cs, kc, nc);
      tt_dma_count(c, B + pc * b_rs + jc * b_cs, (uint64_t)(kc * nc * 2)); /* every core DMAs its own copy */
      for (int64_t ic = 0; ic < M; ic += TT__MC) {
        const int64_t mc = M - ic < TT__MC ? M - ic : TT__MC;
        tt_dma_count(c, A + ic * a_rs + pc * a_cs, (uint64_t)(mc * kc * 2));
        if (direct_a) { /* (the model still packs it: its DMA is counted above) */
          for (int64_t ir = 0; ir < mc; ir += TT__MR)
            for (int64_t jr = 0; jr < nc; jr += TT__NR)
              tt__mm_micro_bf16x2_rows(kp, A + (ic + ir) * a_rs + pc, a_rs, bp + jr * 2 * kp,
                                       C + (ic + ir) * c_rs + jc + jr, c_rs, mc - ir < TT__MR ? mc - ir : TT__MR,
                                       nc - jr < TT__NR ? nc - jr : TT__NR, pc > 0);
          continue;
        }
        tt__mm_pack_a_bf16x2(ap, A + ic * a_rs + pc * a_cs, a_rs, a_cs, mc, kc);
        for (int64_t jr = 0; jr < nc; jr += TT__NR)
          for (int64_t ir = 0; ir < mc; ir += TT__MR)
            tt__mm_micro_bf16x2(kp, ap + ir * kp, bp + jr * 2 * kp, C + (ic + ir) * c_rs + jc + jr, c_rs,
                                mc - ir < TT__MR ? mc - ir : TT__MR, nc - jr < TT__NR ? nc - jr : TT__NR, pc > 0);
      }
    }
  }
}
#else
void TT__ENGINE_FN(matmul_bf16)(const tt_core *c, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                                  int64_t a_rs, int64_t a_cs, const uint16_t *B, int64_t b_rs, int64_t b_cs,
                                  float *C, int64_t c_rs) {
  tt__matmul(c, M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, c_rs, 1);
}
#endif
