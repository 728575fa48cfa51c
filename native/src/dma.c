/* dma.c: the cores' DMA engine. Kernels move every block between DRAM and their core's SRAM
 * through it (ttrt_kernel.h's tt_dma_read_op / tt_dma_write_op, bound per core as tt_core.dma_op),
 * and it counts the bytes on the core as they move. It lives in the runtime, as the matrix engine
 * does, so a kernel library does not compile its own copy. */
#include "internal.h"

#include <string.h>

/* A contiguous run, in 32-byte moves: glibc's memcpy takes `rep movsb` for runs of a few KiB,
 * which on the host measured (AMD EPYC, FSRM) made a row sum of f32[4096, 1024] take 1.2x as
 * long; fixed-size moves compile to plain vector loads and stores. */
static inline void tt__copy(char *restrict d, const char *restrict s, uint64_t n) {
  uint64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    memcpy(d + i, s + i, 32);
    memcpy(d + i + 32, s + i + 32, 32);
  }
  if (i < n) memcpy(d + i, s + i, (size_t)(n - i));
}
/* Streaming write DMA: as tt_dma_write_strided, but a contiguous run goes to DRAM by
 * non-temporal stores, around the host's caches. The compiler uses it for outputs far larger
 * than the host's caches: each of their lines is written once and not read back by this
 * kernel, and a plain store would first read the line in (a third of an elementwise kernel's
 * memory traffic) and evict the pages the core is working on. Runs shorter than a few lines
 * and strided writes take the ordinary path. A kernel that streams calls tt_dma_stream_fence()
 * before it returns, so its results are visible to whatever runs next.
 * GCC's own vector builtins, not <immintrin.h>: that header alone would double the C
 * compiler's time on a small program. */
#if defined(__AVX__) && defined(__GNUC__)
typedef float tt__v8f __attribute__((vector_size(32), may_alias)); /* pages hold any element type */
#define TT__STREAM_BYTES 32
#define TT__STREAM(d, s) __builtin_ia32_movntps256((float *)(d), *(const tt__v8f *)(s))
#define TT__FENCE() __builtin_ia32_sfence()
#elif defined(__SSE__) && defined(__GNUC__)
typedef float tt__v4f __attribute__((vector_size(16), may_alias));
#define TT__STREAM_BYTES 16
#define TT__STREAM(d, s) __builtin_ia32_movntps((float *)(d), *(const tt__v4f *)(s))
#define TT__FENCE() __builtin_ia32_sfence()
#endif
/* One contiguous run by non-temporal stores; false (nothing done) when the run is too short or
 * the host has no streaming stores. */
static inline int tt__stream_run(char *restrict d, const char *restrict s, uint64_t bytes) {
#ifdef TT__STREAM
  if (bytes < 256) return 0;
  /* an ordinary copy up to the destination's vector alignment, and of the tail */
  uint64_t head = (uint64_t)(-(uintptr_t)d & (TT__STREAM_BYTES - 1));
  memcpy(d, s, (size_t)head);
  uint64_t i = head, body = head + ((bytes - head) & ~(uint64_t)(TT__STREAM_BYTES - 1));
  if (((uintptr_t)(s + i) & (TT__STREAM_BYTES - 1)) == 0) {
    for (; i < body; i += TT__STREAM_BYTES) TT__STREAM(d + i, s + i);
  } else { /* the page is misaligned against the destination: load unaligned */
    for (; i < body; i += TT__STREAM_BYTES) {
      char v[TT__STREAM_BYTES] __attribute__((aligned(TT__STREAM_BYTES)));
      memcpy(v, s + i, TT__STREAM_BYTES);
      TT__STREAM(d + i, v);
    }
  }
  memcpy(d + body, s + body, (size_t)(bytes - body));
  return 1;
#else
  (void)d; (void)s; (void)bytes;
  return 0;
#endif
}
/* Every DMA: `rows` runs of `count` elements of `esize` bytes; element i of run r moves from
 * src + r * spitch + i * sstride to dst + r * dpitch + i * dstride (in elements). A read is
 * dense in SRAM (dstride 1) and strided in DRAM (sstride 0: one element, as a broadcast reads
 * it, moved once); a write the other way round. `stream`: contiguous runs of at least 256
 * bytes go to DRAM by non-temporal stores. `write`: d is the DRAM side (else s), whose address
 * the counters are charged at. One function, out of line, for every kind of transfer, counting
 * included. */
static void tt__dma(const tt_core *c, int write, char *restrict d, int64_t dpitch, int64_t dstride,
                             const char *restrict s, int64_t spitch, int64_t sstride, uint32_t esize, int64_t rows,
                             int64_t count, int stream) {
  if (count <= 0 || rows <= 0) return;
  const int64_t e = esize;
  if (sstride == 0) count = 1;
  const int64_t bytes = count * e;
  if (sstride == 1 && dstride == 1) {
    for (int64_t r = 0; r < rows; ++r) {
      char *dr = d + r * dpitch * e;
      const char *sr = s + r * spitch * e;
      if (bytes == 128) memcpy(dr, sr, 128); /* a tile's f32 row or column: fixed-size moves */
      else if (!stream || !tt__stream_run(dr, sr, (uint64_t)bytes)) tt__copy(dr, sr, (uint64_t)bytes);
    }
  } else {
    const int64_t ds = dstride * e, ss = sstride * e;
    for (int64_t r = 0; r < rows; ++r) {
      char *dr = d + r * dpitch * e;
      const char *sr = s + r * spitch * e;
      switch (esize) { /* fixed sizes so the copies are single moves */
        case 1: for (int64_t i = 0; i < count; ++i) memcpy(dr + i * ds, sr + i * ss, 1); break;
        case 2: for (int64_t i = 0; i < count; ++i) memcpy(dr + i * ds, sr + i * ss, 2); break;
        case 4: for (int64_t i = 0; i < count; ++i) memcpy(dr + i * ds, sr + i * ss, 4); break;
        default: for (int64_t i = 0; i < count; ++i) memcpy(dr + i * ds, sr + i * ss, 8); break;
      }
    }
  }
  tt_dma_count(c, write ? (const void *)d : (const void *)s, (uint64_t)(rows * bytes));
}
void tt__dma_op(const tt_core *c, void *const *ops, int op, int64_t index, void *page, int64_t sram_pitch,
                int64_t dram_pitch, uint32_t esize, int64_t rows, int64_t count, int64_t stride, int flags) {
  char *dram = (char *)ops[op] + index * (int64_t)esize;
  if (flags & TT_DMA_COUNT_ONLY)
    tt__dma_counted(c, dram, esize, rows, count, stride);
  else if (flags & TT_DMA_WRITE)
    tt__dma(c, 1, dram, dram_pitch, stride, (const char *)page, sram_pitch, 1, esize, rows, count,
            (flags & TT_DMA_STREAM) != 0);
  else
    tt__dma(c, 0, (char *)page, sram_pitch, 1, dram, dram_pitch, stride, esize, rows, count, 0);
}

void tt__dma_counted(const tt_core *c, const void *dram_src, uint32_t esize, int64_t rows, int64_t count,
                     int64_t stride) {
  if (count <= 0 || rows <= 0) return;
  tt_dma_count(c, dram_src, (uint64_t)(rows * (stride == 0 ? 1 : count) * (int64_t)esize));
}

/* Whether work item `it` receives a panel by multicast: whether one of the `n` items `step` apart
 * before it (it - step, ..., it - n * step) runs in the same wave (ttrt_kernel.h's tt__wave, as
 * program.c's tt__split gives cores their items). */
static int tt__multicast_received(const tt_core *c, int64_t it, int64_t items, int64_t step, int64_t n) {
  const int64_t nc = (int64_t)c->ncores, w = tt__wave(it, items, nc);
  for (int64_t k = 1; k <= n; ++k)
    if (tt__wave(it - k * step, items, nc) == w) return 1;
  return 0;
}
void tt__multicast_mark(const tt_core *c, int64_t it, int64_t items, int64_t mb, int64_t t, int brx, const void *alo,
                        const void *ahi, const void *blo, const void *bhi) {
  const int ar = tt__multicast_received(c, it, items, mb, t / mb);
  const int br = brx >= 0 ? brx : tt__multicast_received(c, it, items, 1, t % mb);
  tt_multicast(c, 0, ar ? alo : NULL, ar ? ahi : NULL);
  tt_multicast(c, 1, br ? blo : NULL, br ? bhi : NULL);
}
