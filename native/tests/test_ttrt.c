/* test_ttrt.c: C tests of the runtime. Usage: test_ttrt <path to tt_test_kernels.so> */
#define _GNU_SOURCE
#include "ttrt.h"
#include "ttrt_kernel.h"
#include "internal.h" /* white-box: the matrix engine builds */

#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
#define CHECK(cond)                                                          \
  do {                                                                       \
    checks++;                                                                \
    if (!(cond)) {                                                           \
      failures++;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)
#define EXPECT(call, status) CHECK((call) == (status))

static const char *kernels_path;
static int *variant; /* tt_test_variant inside the kernel library */

static void test_open_close(void) {
  tt_device *d = NULL;
  EXPECT(tt_device_open(NULL, NULL), TT_ERR_INVALID_ARGUMENT);
  tt_device_config cfg;
  tt_device_config_default(&cfg);
  cfg.grid_x = 0;
  EXPECT(tt_device_open(&cfg, &d), TT_ERR_INVALID_ARGUMENT);
  CHECK(d == NULL);
  EXPECT(tt_device_open(NULL, &d), TT_OK);
  tt_device_config info;
  EXPECT(tt_device_info(d, &info), TT_OK);
  CHECK(info.grid_x == 8 && info.grid_y == 8 && info.sram_per_core == 1499136 && info.host_threads >= 1);
  CHECK(strcmp(tt_device_error(d), "") == 0);
  EXPECT(tt_device_synchronize(d), TT_OK);
  EXPECT(tt_device_close(d), TT_OK);
  EXPECT(tt_device_close(NULL), TT_ERR_INVALID_ARGUMENT);
  CHECK(strcmp(tt_status_name(TT_ERR_BAD_PROGRAM), "TT_ERR_BAD_PROGRAM") == 0);
}

static void test_buffers(void) {
  tt_device *d;
  EXPECT(tt_device_open(NULL, &d), TT_OK);
  tt_buffer a, b, z;
  EXPECT(tt_buffer_alloc(d, 1000, &a), TT_OK);
  EXPECT(tt_buffer_alloc(d, 1000, &b), TT_OK);
  EXPECT(tt_buffer_alloc(d, 0, &z), TT_OK);
  CHECK(a != 0 && b != 0 && z != 0 && a != b);
  uint64_t size = 1;
  EXPECT(tt_buffer_size(d, z, &size), TT_OK);
  CHECK(size == 0);
  unsigned char src[1000], dst[1000];
  for (int i = 0; i < 1000; i++) src[i] = (unsigned char)(i * 7);
  EXPECT(tt_buffer_write(d, a, 0, src, 1000), TT_OK);
  EXPECT(tt_buffer_copy(d, b, 0, a, 0, 1000), TT_OK);
  EXPECT(tt_buffer_read(d, b, 0, dst, 1000), TT_OK);
  CHECK(memcmp(src, dst, 1000) == 0);
  EXPECT(tt_buffer_copy(d, b, 1, b, 0, 999), TT_OK); /* overlapping: memmove semantics */
  EXPECT(tt_buffer_read(d, b, 1, dst, 999), TT_OK);
  CHECK(memcmp(src, dst, 999) == 0);
  EXPECT(tt_buffer_read(d, a, 500, dst, 10), TT_OK);
  CHECK(memcmp(src + 500, dst, 10) == 0);
  /* out of range, overflow-safe */
  EXPECT(tt_buffer_write(d, a, 1, src, 1000), TT_ERR_OUT_OF_RANGE);
  EXPECT(tt_buffer_read(d, a, UINT64_MAX, dst, 2), TT_ERR_OUT_OF_RANGE);
  EXPECT(tt_buffer_read(d, a, 2, dst, UINT64_MAX), TT_ERR_OUT_OF_RANGE);
  CHECK(strstr(tt_device_error(d), "outside") != NULL);
  EXPECT(tt_buffer_copy(d, a, 999, b, 0, 2), TT_ERR_OUT_OF_RANGE);
  EXPECT(tt_buffer_write(d, a, 0, NULL, 4), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_buffer_alloc(d, 4, NULL), TT_ERR_INVALID_ARGUMENT);
  /* stale, forged, wrong-kind handles */
  EXPECT(tt_buffer_free(d, a), TT_OK);
  EXPECT(tt_buffer_free(d, a), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_read(d, a, 0, dst, 1), TT_ERR_INVALID_HANDLE);
  tt_buffer a2;
  EXPECT(tt_buffer_alloc(d, 1000, &a2), TT_OK); /* reuses the slot, new generation */
  CHECK(a2 != a);
  EXPECT(tt_buffer_read(d, a, 0, dst, 1), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_read(d, 0, 0, dst, 1), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_read(d, 0x1234, 0, dst, 1), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_read(d, a2 + 1000, 0, dst, 1), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_read(d, ~0ull, 0, dst, 1), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_program_unload(d, a2), TT_ERR_INVALID_HANDLE);
  /* pooled reuse: same size class gets the same warm block back */
  tt_buffer c1, c2;
  void *p1 = NULL;
  EXPECT(tt_buffer_alloc(d, 1 << 20, &c1), TT_OK);
  (void)p1;
  EXPECT(tt_buffer_free(d, c1), TT_OK);
  EXPECT(tt_buffer_alloc(d, 1 << 20, &c2), TT_OK);
  tt_counters k;
  EXPECT(tt_device_counters(d, &k), TT_OK);
  CHECK(k.dram_bytes_allocated == 1000 + 1000 + 0 + (1 << 20));
  CHECK(k.dram_bytes_peak == k.dram_bytes_allocated + 1000 || k.dram_bytes_peak >= k.dram_bytes_allocated);
  CHECK(k.host_bytes_written == 1000 && k.host_bytes_read == 1000 + 999 + 10);
  EXPECT(tt_device_reset_counters(d), TT_OK);
  EXPECT(tt_device_counters(d, &k), TT_OK);
  CHECK(k.host_bytes_written == 0 && k.dram_bytes_peak == k.dram_bytes_allocated && k.dram_bytes_allocated > 0);
  /* many alloc/free cycles stay bounded; leave some alive for close to free */
  for (int i = 0; i < 10000; i++) {
    tt_buffer t;
    EXPECT(tt_buffer_alloc(d, (uint64_t)(i % 97) * 1000, &t), TT_OK);
    if (i % 100) EXPECT(tt_buffer_free(d, t), TT_OK);
  }
  EXPECT(tt_device_close(d), TT_OK);
}

static void test_oom(void) {
  tt_device_config cfg;
  tt_device_config_default(&cfg);
  cfg.dram_bytes = 1 << 20;
  tt_device *d;
  EXPECT(tt_device_open(&cfg, &d), TT_OK);
  tt_buffer a, b;
  EXPECT(tt_buffer_alloc(d, 600 << 10, &a), TT_OK);
  EXPECT(tt_buffer_alloc(d, 600 << 10, &b), TT_ERR_OUT_OF_MEMORY);
  EXPECT(tt_buffer_alloc(d, UINT64_MAX, &b), TT_ERR_OUT_OF_MEMORY);
  CHECK(strlen(tt_device_error(d)) > 0);
  EXPECT(tt_buffer_free(d, a), TT_OK);
  EXPECT(tt_buffer_alloc(d, 600 << 10, &b), TT_OK);
  EXPECT(tt_device_close(d), TT_OK);
}

static void test_bad_programs(void) {
  tt_device *d;
  EXPECT(tt_device_open(NULL, &d), TT_OK);
  tt_program p = 0;
  EXPECT(tt_program_load(d, "/nonexistent/lib.so", &p), TT_ERR_LOAD_FAILED);
  CHECK(p == 0 && strlen(tt_device_error(d)) > 0);
  EXPECT(tt_program_load(d, NULL, &p), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_program_load(d, "libm.so.6", &p), TT_ERR_BAD_PROGRAM); /* no entry symbol */
  /* 1-7: broken fields (7: more SRAM than a core has); 8-14: tables outside the library or past
   * its end, a data "kernel", a misaligned descriptor; 15: entry returns NULL; 19-24: control
   * streams broken in one way (16-18 are good ones); 25: a weighed launch (good), 26: one too
   * heavy; 27-28: a step table outside the library or past its end */
  static const char *const why[] = {"", "abi_version", "fn is NULL", "work_items", "binding 9", "exceeds binding",
                                    "operands (limit", "bytes of SRAM per core", "descriptor at", "launches (524288",
                                    "binding_bytes (60000", "not code of the library", "name is not a string",
                                    "operands (3 entries at", "descriptor at", "returned NULL", NULL, NULL, NULL,
                                    "target 2 > nsteps 1", "launch 2 >= nlaunches 2", "branch scalar of 3 bytes",
                                    "scalar at 16 exceeds", "copy [0, +8) exceeds binding 1", "unknown op 99",
                                    NULL, "launch weighs 1048577 steps", "steps (6 entries at", "steps (8388608 entries at"};
  for (int v = 1; v < (int)(sizeof why / sizeof why[0]); v++) {
    if (!why[v]) continue;
    *variant = v;
    EXPECT(tt_program_load(d, kernels_path, &p), TT_ERR_BAD_PROGRAM);
    CHECK(p == 0 && strstr(tt_device_error(d), why[v]) != NULL);
    fprintf(stderr, "  variant %d refused: %s\n", v, tt_device_error(d));
  }
  *variant = 0;
  EXPECT(tt_device_close(d), TT_OK);
}

/* Handles carry their device: another device's buffer or program is refused, never resolved to
 * whatever sits in the same slot here. */
static void test_device_binding(void) {
  tt_device *a, *b;
  EXPECT(tt_device_open(NULL, &a), TT_OK);
  EXPECT(tt_device_open(NULL, &b), TT_OK);
  uint32_t ida = 0, idb = 0;
  EXPECT(tt_device_id(a, &ida), TT_OK);
  EXPECT(tt_device_id(b, &idb), TT_OK);
  CHECK(ida != 0 && idb != 0 && ida != idb);
  EXPECT(tt_device_id(a, NULL), TT_ERR_INVALID_ARGUMENT);
  tt_buffer ba, bb;
  EXPECT(tt_buffer_alloc(a, 64, &ba), TT_OK);
  EXPECT(tt_buffer_alloc(b, 64, &bb), TT_OK); /* same slot and generation on each device */
  CHECK(ba != bb && (ba & 0xfffffffffffull) == (bb & 0xfffffffffffull));
  char tmp[64] = {0};
  EXPECT(tt_buffer_read(b, ba, 0, tmp, 64), TT_ERR_INVALID_HANDLE);
  char want[96];
  snprintf(want, sizeof want, "belongs to device %u, not to this device %u", ida, idb);
  CHECK(strstr(tt_device_error(b), want) != NULL);
  EXPECT(tt_buffer_free(b, ba), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_copy(b, bb, 0, ba, 0, 64), TT_ERR_INVALID_HANDLE);
  tt_program pa, pb;
  *variant = 0;
  EXPECT(tt_program_load(a, kernels_path, &pa), TT_OK);
  EXPECT(tt_program_load(b, kernels_path, &pb), TT_OK);
  EXPECT(tt_program_unload(b, pa), TT_ERR_INVALID_HANDLE);
  CHECK(strstr(tt_device_error(b), "belongs to device") != NULL);
  tt_buffer bufs[9];
  for (int i = 0; i < 9; i++) EXPECT(tt_buffer_alloc(b, 1 << 16, &bufs[i]), TT_OK);
  EXPECT(tt_program_launch(b, pa, bufs, 9), TT_ERR_INVALID_HANDLE);
  bufs[4] = ba;
  EXPECT(tt_program_launch(b, pb, bufs, 9), TT_ERR_INVALID_HANDLE);
  CHECK(strstr(tt_device_error(b), "binding 4") != NULL && strstr(tt_device_error(b), "belongs to device") != NULL);
  tt_counters k;
  EXPECT(tt_device_counters(b, &k), TT_OK);
  CHECK(k.programs_launched == 0);
  /* errors are per device (and per thread): a's last error is not b's */
  CHECK(strcmp(tt_device_error(a), "") == 0);
  EXPECT(tt_buffer_read(a, ba, 0, tmp, 64), TT_OK);
  EXPECT(tt_device_close(b), TT_OK);
  /* a device opened after b closed gets another id: b's handles mean nothing to it */
  tt_device *c;
  EXPECT(tt_device_open(NULL, &c), TT_OK);
  uint32_t idc = 0;
  EXPECT(tt_device_id(c, &idc), TT_OK);
  CHECK(idc != ida && idc != idb);
  tt_buffer bc;
  EXPECT(tt_buffer_alloc(c, 64, &bc), TT_OK);
  EXPECT(tt_buffer_read(c, bb, 0, tmp, 64), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_device_close(c), TT_OK);
  EXPECT(tt_device_close(a), TT_OK);
}

/* A slot's generation never wraps: at the last one the slot is retired, so every handle it ever
 * issued stays invalid. White-box: jumps the generation to the end instead of 2^24 frees. */
static void test_generations(void) {
  tt_device *d;
  EXPECT(tt_device_open(NULL, &d), TT_OK);
  tt_buffer first, h;
  EXPECT(tt_buffer_alloc(d, 8, &first), TT_OK);
  uint32_t slot = TT_HANDLE_SLOT(first);
  EXPECT(tt_buffer_free(d, first), TT_OK);
  d->buffers.slots[slot - 1].gen = TT_GEN_MAX - 1;
  EXPECT(tt_buffer_alloc(d, 8, &h), TT_OK);
  CHECK(TT_HANDLE_SLOT(h) == slot && TT_HANDLE_GEN(h) == TT_GEN_MAX - 1);
  EXPECT(tt_buffer_free(d, h), TT_OK);
  tt_buffer last;
  EXPECT(tt_buffer_alloc(d, 8, &last), TT_OK);
  CHECK(TT_HANDLE_SLOT(last) == slot && TT_HANDLE_GEN(last) == TT_GEN_MAX);
  EXPECT(tt_buffer_free(d, last), TT_OK); /* retires the slot */
  CHECK(d->buffers.retired == 1);
  tt_buffer next;
  EXPECT(tt_buffer_alloc(d, 8, &next), TT_OK);
  CHECK(TT_HANDLE_SLOT(next) != slot);
  uint64_t size;
  EXPECT(tt_buffer_size(d, first, &size), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_size(d, h, &size), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_buffer_size(d, last, &size), TT_ERR_INVALID_HANDLE);
  /* what a wrapped generation would have produced: gen 1 of the retired slot */
  tt_buffer wrapped = (last & ~(0xffffffull << 20)) | (1ull << 20);
  EXPECT(tt_buffer_size(d, wrapped, &size), TT_ERR_INVALID_HANDLE);
  for (int i = 0; i < 1000; i++) { /* the retired slot is never handed out again */
    EXPECT(tt_buffer_alloc(d, 8, &h), TT_OK);
    CHECK(TT_HANDLE_SLOT(h) != slot);
    EXPECT(tt_buffer_free(d, h), TT_OK);
  }
  EXPECT(tt_device_close(d), TT_OK);
}

/* One device, many threads: each allocates, writes, launches the shared program, reads back and
 * checks, while the others do the same; plus per-thread error messages. (Also run under
 * ThreadSanitizer by .ci/run.) */
enum { TH_THREADS = 4, TH_ITERS = 60, TH_N = 1000 };
typedef struct th_arg {
  tt_device *d;
  tt_program p;
  int id, bad;
} th_arg;

static void *th_main(void *arg) {
  th_arg *t = arg;
  static const uint64_t sizes[9] = {TH_N * 4, TH_N * 4, TH_N * 4, 67 * 131 * 4, 131 * 45 * 4, 67 * 45 * 4,
                                    67 * 131 * 2, 45 * 131 * 2, 67 * 45 * 4};
  float x[TH_N], y[TH_N], z[TH_N];
  for (int it = 0; it < TH_ITERS; it++) {
    tt_buffer bufs[9];
    for (int i = 0; i < 9; i++)
      if (tt_buffer_alloc(t->d, sizes[i], &bufs[i]) != TT_OK) t->bad++;
    for (int i = 0; i < TH_N; i++) x[i] = (float)(t->id * 100000 + it * 1000 + i), y[i] = (float)t->id;
    if (tt_buffer_write(t->d, bufs[0], 0, x, sizeof x) != TT_OK) t->bad++;
    if (tt_buffer_write(t->d, bufs[1], 0, y, sizeof y) != TT_OK) t->bad++;
    if (tt_program_launch(t->d, t->p, bufs, 9) != TT_OK) t->bad++;
    if (tt_buffer_read(t->d, bufs[2], 0, z, sizeof z) != TT_OK) t->bad++;
    for (int i = 0; i < TH_N; i++) t->bad += z[i] != x[i] + y[i];
    /* a failing call: this thread reads its own message */
    if (tt_buffer_read(t->d, bufs[0], (uint64_t)(t->id + 1) << 40, z, 4) != TT_ERR_OUT_OF_RANGE) t->bad++;
    char want[32];
    snprintf(want, sizeof want, "[%llu,", (unsigned long long)(t->id + 1) << 40);
    if (!strstr(tt_device_error(t->d), want)) t->bad++;
    for (int i = 0; i < 9; i++)
      if (tt_buffer_free(t->d, bufs[i]) != TT_OK) t->bad++;
  }
  return NULL;
}

static void test_threads(void) {
  tt_device_config cfg;
  tt_device_config_default(&cfg);
  cfg.host_threads = 2;
  tt_device *d;
  EXPECT(tt_device_open(&cfg, &d), TT_OK);
  *variant = 0;
  tt_program p;
  EXPECT(tt_program_load(d, kernels_path, &p), TT_OK);
  pthread_t th[TH_THREADS];
  th_arg args[TH_THREADS];
  for (int i = 0; i < TH_THREADS; i++) {
    args[i] = (th_arg){d, p, i, 0};
    CHECK(pthread_create(&th[i], NULL, th_main, &args[i]) == 0);
  }
  int bad = 0;
  for (int i = 0; i < TH_THREADS; i++) {
    pthread_join(th[i], NULL);
    bad += args[i].bad;
  }
  CHECK(bad == 0);
  tt_counters k;
  EXPECT(tt_device_counters(d, &k), TT_OK);
  CHECK(k.programs_launched == TH_THREADS * TH_ITERS && k.kernels_launched == 3 * TH_THREADS * TH_ITERS);
  CHECK(k.dram_bytes_allocated == 0);
  EXPECT(tt_device_close(d), TT_OK);
}

static float bf16_round(float x) { return tt_bf16_to_f32(tt_f32_to_bf16(x)); }

static void test_launch(uint32_t host_threads) {
  enum { NA = 1000, M = 67, N = 45, K = 131 };
  tt_device_config cfg;
  tt_device_config_default(&cfg);
  cfg.host_threads = host_threads;
  tt_device *d;
  EXPECT(tt_device_open(&cfg, &d), TT_OK);
  tt_program p;
  EXPECT(tt_program_load(d, kernels_path, &p), TT_OK);
  const uint64_t sizes[9] = {NA * 4, NA * 4, NA * 4, M * K * 4, K * N * 4, M * N * 4, M * K * 2, N * K * 2, M * N * 4};
  tt_buffer bufs[9];
  for (int i = 0; i < 9; i++) EXPECT(tt_buffer_alloc(d, sizes[i], &bufs[i]), TT_OK);
  static float x[NA], y[NA], z[NA], A[M * K], B[K * N], C[M * N], Ch[M * N];
  static uint16_t Ah[M * K], Bth[N * K];
  for (int i = 0; i < NA; i++) x[i] = (float)i, y[i] = 0.5f * (float)i;
  for (int i = 0; i < M * K; i++) A[i] = (float)((i * 37) % 19 - 9) / 8.0f, Ah[i] = tt_f32_to_bf16(A[i] * 1.01f);
  for (int i = 0; i < K * N; i++) B[i] = (float)((i * 11) % 23 - 11) / 16.0f;
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) Bth[j * K + k] = tt_f32_to_bf16(B[k * N + j] * 0.99f);
  EXPECT(tt_buffer_write(d, bufs[0], 0, x, sizeof x), TT_OK);
  EXPECT(tt_buffer_write(d, bufs[1], 0, y, sizeof y), TT_OK);
  EXPECT(tt_buffer_write(d, bufs[3], 0, A, sizeof A), TT_OK);
  EXPECT(tt_buffer_write(d, bufs[4], 0, B, sizeof B), TT_OK);
  EXPECT(tt_buffer_write(d, bufs[6], 0, Ah, sizeof Ah), TT_OK);
  EXPECT(tt_buffer_write(d, bufs[7], 0, Bth, sizeof Bth), TT_OK);
  EXPECT(tt_device_reset_counters(d), TT_OK);
  /* refused launches run nothing */
  EXPECT(tt_program_launch(d, p, bufs, 8), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_program_launch(d, p, NULL, 9), TT_ERR_INVALID_ARGUMENT);
  tt_buffer small, swapped[9];
  EXPECT(tt_buffer_alloc(d, 16, &small), TT_OK);
  memcpy(swapped, bufs, sizeof bufs);
  swapped[5] = small;
  EXPECT(tt_program_launch(d, p, swapped, 9), TT_ERR_OUT_OF_RANGE);
  swapped[5] = 42;
  EXPECT(tt_program_launch(d, p, swapped, 9), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_program_launch(d, p + 1, bufs, 9), TT_ERR_INVALID_HANDLE);
  tt_counters k;
  EXPECT(tt_device_counters(d, &k), TT_OK);
  CHECK(k.kernels_launched == 0 && k.programs_launched == 0);

  for (int rep = 0; rep < 3; rep++) EXPECT(tt_program_launch(d, p, bufs, 9), TT_OK);
  EXPECT(tt_device_synchronize(d), TT_OK);
  EXPECT(tt_buffer_read(d, bufs[2], 0, z, sizeof z), TT_OK);
  EXPECT(tt_buffer_read(d, bufs[5], 0, C, sizeof C), TT_OK);
  EXPECT(tt_buffer_read(d, bufs[8], 0, Ch, sizeof Ch), TT_OK);
  int bad = 0;
  for (int i = 0; i < NA; i++) bad += z[i] != 1.5f * (float)i;
  CHECK(bad == 0);
  double err = 0, errh = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0, sh = 0;
      for (int q = 0; q < K; q++) {
        s += (double)A[i * K + q] * B[q * N + j];
        sh += (double)tt_bf16_to_f32(Ah[i * K + q]) * tt_bf16_to_f32(Bth[j * K + q]);
      }
      err = fmax(err, fabs(s - C[i * N + j]));
      errh = fmax(errh, fabs(sh - Ch[i * N + j]));
    }
  CHECK(err < 1e-3 && errh < 1e-3);
  EXPECT(tt_device_counters(d, &k), TT_OK);
  CHECK(k.programs_launched == 3 && k.kernels_launched == 9);
  CHECK(k.dram_bytes_read == 3 * (2 * NA * 4 + (M * K + K * N) * 4 + (M * K + N * K) * 2));
  CHECK(k.dram_bytes_written == 3 * (NA * 4 + 2 * M * N * 4));
  CHECK(k.vector_ops == 3 && k.matrix_tiles == 3 * 2 * 9 * 10 && k.dma_bytes > 0);
  CHECK(k.modeled_cycles >= 9 * 1000 && k.busy_ns > 0);
  fprintf(stderr, "  host_threads=%u: f32 err %g, bf16 err %g, modeled %llu cycles\n", host_threads, err, errh,
          (unsigned long long)k.modeled_cycles);
  EXPECT(tt_program_unload(d, p), TT_OK);
  EXPECT(tt_program_unload(d, p), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_program_launch(d, p, bufs, 9), TT_ERR_INVALID_HANDLE);
  /* a program left loaded and buffers left alive are released by close */
  EXPECT(tt_program_load(d, kernels_path, &p), TT_OK);
  EXPECT(tt_device_close(d), TT_OK);
}

/* Zero-copy host access: map (read a buffer in place, kept alive by its reference), wrap (bind
 * host memory), execute (buffers made in the launch call); read-only buffers never get written. */
static void test_zero_copy(void) {
  enum { NA = 1000, M = 67, N = 45, K = 131 }; /* test_kernels.c's bindings, as in test_launch */
  tt_device *d;
  EXPECT(tt_device_open(NULL, &d), TT_OK);
  *variant = 0;
  tt_program p;
  EXPECT(tt_program_load(d, kernels_path, &p), TT_OK);
  static float x[NA] __attribute__((aligned(64))), y[NA] __attribute__((aligned(64))), z[NA] __attribute__((aligned(64)));
  for (int i = 0; i < NA; i++) {
    x[i] = (float)i;
    y[i] = 2.0f;
    z[i] = -1.0f;
  }
  /* map */
  tt_buffer a, b;
  const void *ptr = NULL;
  EXPECT(tt_buffer_alloc(d, sizeof x, &a), TT_OK);
  EXPECT(tt_buffer_alloc(d, sizeof x, &b), TT_OK);
  EXPECT(tt_buffer_write(d, a, 0, x, sizeof x), TT_OK);
  tt_counters k0, k1;
  EXPECT(tt_device_counters(d, &k0), TT_OK);
  EXPECT(tt_buffer_map(d, a, NULL), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_buffer_map(d, a, &ptr), TT_OK);
  EXPECT(tt_device_counters(d, &k1), TT_OK);
  CHECK(ptr != NULL && memcmp(ptr, x, sizeof x) == 0 && k1.host_bytes_read - k0.host_bytes_read == sizeof x);
  EXPECT(tt_buffer_write(d, a, 0, y, 4), TT_ERR_INVALID_ARGUMENT); /* mapped: read-only */
  EXPECT(tt_buffer_copy(d, a, 0, b, 0, 4), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_buffer_copy(d, b, 0, a, 0, sizeof x), TT_OK);
  EXPECT(tt_buffer_free(d, a), TT_OK); /* the owner's free: the mapping keeps the memory */
  CHECK(memcmp(ptr, x, sizeof x) == 0);
  EXPECT(tt_device_counters(d, &k1), TT_OK);
  CHECK(k1.dram_bytes_allocated == 2 * sizeof x);
  EXPECT(tt_buffer_free(d, a), TT_OK); /* the mapping's: now it goes */
  EXPECT(tt_buffer_free(d, a), TT_ERR_INVALID_HANDLE);
  EXPECT(tt_device_counters(d, &k1), TT_OK);
  CHECK(k1.dram_bytes_allocated == sizeof x);
  /* wrap */
  tt_buffer wx, wy, wz, out;
  EXPECT(tt_buffer_wrap(d, (const char *)x + 4, 8, &wx), TT_ERR_INVALID_ARGUMENT); /* unaligned */
  EXPECT(tt_buffer_wrap(d, NULL, 8, &wx), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_buffer_wrap(d, x, sizeof x, &wx), TT_OK);
  EXPECT(tt_buffer_wrap(d, y, sizeof y, &wy), TT_OK);
  EXPECT(tt_buffer_wrap(d, z, sizeof z, &wz), TT_OK);
  EXPECT(tt_device_counters(d, &k0), TT_OK);
  CHECK(k0.host_bytes_written - k1.host_bytes_written == 3 * sizeof x);
  EXPECT(tt_buffer_write(d, wx, 0, y, 4), TT_ERR_INVALID_ARGUMENT);
  tt_buffer bufs[9];
  const uint64_t sizes[9] = {NA * 4, NA * 4, NA * 4, M * K * 4, K * N * 4, M * N * 4, M * K * 2, N * K * 2, M * N * 4};
  for (int i = 0; i < 9; i++) EXPECT(tt_buffer_alloc(d, sizes[i], &bufs[i]), TT_OK);
  bufs[0] = wx, bufs[1] = wy;
  EXPECT(tt_program_launch(d, p, bufs, 9), TT_OK); /* wrapped memory as READ operands */
  out = bufs[2];
  static float r[NA];
  EXPECT(tt_buffer_read(d, out, 0, r, sizeof r), TT_OK);
  int bad = 0;
  for (int i = 0; i < NA; i++) bad += r[i] != (float)i + 2.0f;
  CHECK(bad == 0);
  bufs[2] = wz; /* a kernel would write the host's memory: refused, nothing runs */
  EXPECT(tt_device_counters(d, &k0), TT_OK);
  EXPECT(tt_program_launch(d, p, bufs, 9), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_device_counters(d, &k1), TT_OK);
  CHECK(z[0] == -1.0f && z[NA - 1] == -1.0f && k1.kernels_launched == k0.kernels_launched);
  EXPECT(tt_buffer_free(d, wx), TT_OK); /* frees the handle, not the host's memory */
  EXPECT(tt_buffer_free(d, wy), TT_OK);
  EXPECT(tt_buffer_free(d, wz), TT_OK);
  CHECK(x[NA - 1] == (float)(NA - 1));
  /* execute: inputs wrapped for the call, the output allocated in it */
  const void *host[9] = {x, y, NULL};
  uint64_t bytes[9] = {sizeof x, sizeof y, sizeof z};
  bufs[0] = bufs[1] = bufs[2] = 0;
  EXPECT(tt_device_counters(d, &k0), TT_OK);
  EXPECT(tt_program_execute(d, p, bufs, host, bytes, 9), TT_OK);
  EXPECT(tt_device_counters(d, &k1), TT_OK);
  CHECK(bufs[0] == 0 && bufs[1] == 0 && bufs[2] != 0);
  CHECK(k1.host_bytes_written - k0.host_bytes_written == 2 * sizeof x && k1.programs_launched == k0.programs_launched + 1);
  CHECK(k1.dram_bytes_allocated - k0.dram_bytes_allocated == sizeof z); /* the wrapped inputs are gone */
  memset(r, 0, sizeof r);
  EXPECT(tt_buffer_read(d, bufs[2], 0, r, sizeof r), TT_OK);
  bad = 0;
  for (int i = 0; i < NA; i++) bad += r[i] != (float)i + 2.0f;
  CHECK(bad == 0);
  out = bufs[2];
  bufs[2] = 0;
  host[2] = z; /* host memory as the output: refused, every buffer the call made is freed */
  EXPECT(tt_device_counters(d, &k0), TT_OK);
  EXPECT(tt_program_execute(d, p, bufs, host, bytes, 9), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_device_counters(d, &k1), TT_OK);
  CHECK(bufs[0] == 0 && bufs[2] == 0 && k1.dram_bytes_allocated == k0.dram_bytes_allocated && z[0] == -1.0f);
  EXPECT(tt_program_execute(d, p, bufs, NULL, NULL, 9), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_buffer_free(d, out), TT_OK);
  /* a mapping left alive is released by close */
  EXPECT(tt_buffer_map(d, bufs[3], &ptr), TT_OK);
  EXPECT(tt_device_close(d), TT_OK);
}

/* Control streams: a while loop whose condition is a device value runs on the device without
 * returning; a loop that never ends stops at the step budget or on cancel, and the device is
 * usable afterwards. */
static tt_device *cancel_dev;
static void *cancel_later(void *arg) {
  (void)arg;
  struct timespec t = {0, 50 * 1000 * 1000};
  nanosleep(&t, NULL);
  tt_device_cancel(cancel_dev);
  return NULL;
}

static void test_control_stream(void) {
  tt_device *d;
  EXPECT(tt_device_open(NULL, &d), TT_OK);
  tt_buffer bufs[2];
  EXPECT(tt_buffer_alloc(d, 16, &bufs[0]), TT_OK);
  EXPECT(tt_buffer_alloc(d, 4, &bufs[1]), TT_OK);
  tt_program loop, spin, forever, weighed;
  *variant = 25;
  EXPECT(tt_program_load(d, kernels_path, &weighed), TT_OK);
  *variant = 16;
  EXPECT(tt_program_load(d, kernels_path, &loop), TT_OK);
  *variant = 17;
  EXPECT(tt_program_load(d, kernels_path, &spin), TT_OK);
  *variant = 18;
  EXPECT(tt_program_load(d, kernels_path, &forever), TT_OK);
  *variant = 0;
  const int32_t ns[] = {0, 1, 7, 300};
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    int32_t st[4] = {0, ns[t], -1, 0}, out = -1;
    EXPECT(tt_buffer_write(d, bufs[0], 0, st, sizeof st), TT_OK);
    EXPECT(tt_device_reset_counters(d), TT_OK);
    EXPECT(tt_program_launch(d, loop, bufs, 2), TT_OK);
    EXPECT(tt_buffer_read(d, bufs[1], 0, &out, 4), TT_OK);
    CHECK(out == ns[t]);
    tt_counters k;
    EXPECT(tt_device_counters(d, &k), TT_OK);
    /* every iteration is counted: n + 1 condition launches, n body launches, one program */
    CHECK(k.programs_launched == 1 && k.kernels_launched == 2 * (uint64_t)ns[t] + 1);
    CHECK(k.modeled_cycles >= 1000 * (2 * (uint64_t)ns[t] + 1));
    tt_launch_stats ls;
    EXPECT(tt_program_launch_stats(d, loop, 1, &ls), TT_OK);
    CHECK(ls.vector_ops == (uint64_t)ns[t]);
  }
  /* the step budget stops a spin */
  EXPECT(tt_device_set_step_budget(d, 1000), TT_OK);
  EXPECT(tt_program_launch(d, spin, bufs, 2), TT_ERR_STEP_BUDGET);
  CHECK(strstr(tt_device_error(d), "step budget of 1000") != NULL);
  /* ... and a loop of launches */
  int32_t st[4] = {0, 0, 0, 0};
  EXPECT(tt_buffer_write(d, bufs[0], 0, st, sizeof st), TT_OK);
  EXPECT(tt_program_launch(d, forever, bufs, 2), TT_ERR_STEP_BUDGET);
  EXPECT(tt_buffer_read(d, bufs[0], 0, st, sizeof st), TT_OK);
  CHECK(st[0] == 500); /* 1000 steps: 500 launches and 500 jumps */
  /* a launch weighing 100 steps: 9 launches and 9 jumps take 909, the 10th does not fit */
  memset(st, 0, sizeof st);
  EXPECT(tt_buffer_write(d, bufs[0], 0, st, sizeof st), TT_OK);
  EXPECT(tt_program_launch(d, weighed, bufs, 2), TT_ERR_STEP_BUDGET);
  EXPECT(tt_buffer_read(d, bufs[0], 0, st, sizeof st), TT_OK);
  CHECK(st[0] == 9);
  /* cancel from another thread (the default budget is far away) */
  EXPECT(tt_device_set_step_budget(d, 0), TT_OK);
  EXPECT(tt_device_cancel(d), TT_OK); /* nothing running: no effect on the next launch */
  int32_t s2[4] = {0, 5, 0, 0}, out = -1;
  EXPECT(tt_buffer_write(d, bufs[0], 0, s2, sizeof s2), TT_OK);
  EXPECT(tt_program_launch(d, loop, bufs, 2), TT_OK);
  cancel_dev = d;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, cancel_later, NULL) == 0);
  EXPECT(tt_program_launch(d, spin, bufs, 2), TT_ERR_CANCELLED);
  pthread_join(th, NULL);
  CHECK(strstr(tt_device_error(d), "cancelled") != NULL);
  /* the device is usable afterwards */
  EXPECT(tt_buffer_write(d, bufs[0], 0, s2, sizeof s2), TT_OK);
  EXPECT(tt_program_launch(d, loop, bufs, 2), TT_OK);
  EXPECT(tt_buffer_read(d, bufs[1], 0, &out, 4), TT_OK);
  CHECK(out == 5);
  /* a copy step writes its destination: host memory there is refused, nothing runs */
  static int32_t host_out[16] __attribute__((aligned(64)));
  host_out[0] = -7;
  tt_buffer wrapped[2] = {bufs[0], 0};
  EXPECT(tt_buffer_wrap(d, host_out, sizeof host_out, &wrapped[1]), TT_OK);
  EXPECT(tt_program_launch(d, loop, wrapped, 2), TT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(tt_device_error(d), "read-only") != NULL && host_out[0] == -7);
  EXPECT(tt_buffer_free(d, wrapped[1]), TT_OK);
  EXPECT(tt_device_set_step_budget(NULL, 1), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_device_cancel(NULL), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_device_close(d), TT_OK);
}

/* DMA to or from [l1_lo, l1_hi) (tensors placed in SRAM) is counted as NoC bytes too, by the DMA
 * calls and by the matrix engine's packing; DMA elsewhere is DRAM traffic only. */
static void test_l1_counting(const tt__engine *engine) {
  void *sram = aligned_alloc(64, 1499136);
  uint64_t cnt[TT_CORE_NCOUNTERS] = {0};
  static float placed[64 * 64], dram[64 * 64], out[64 * 64];
  for (int i = 0; i < 64 * 64; i++) placed[i] = (float)(i % 7), dram[i] = (float)(i % 5);
  tt_core core = {0, 0, 0, 1, sram, 1499136, cnt, NULL, NULL, (const char *)placed, (const char *)(placed + 64 * 64),
                  {NULL, NULL}, {NULL, NULL}, NULL, NULL, NULL}; /* engines: bound below */
  tt__engine_bind(&core, engine);
  tt_dma_read_strided(&core, sram, dram, 4, 64, 1);
  CHECK(cnt[TT_CORE_DMA_BYTES] == 256 && cnt[TT_CORE_NOC_BYTES] == 0);
  tt_dma_read_strided(&core, sram, placed + 100, 4, 64, 2);
  tt_dma_write_strided(&core, placed, sram, 4, 16, 1);
  CHECK(cnt[TT_CORE_DMA_BYTES] == 256 + 256 + 64 && cnt[TT_CORE_NOC_BYTES] == 256 + 64);
  memset(cnt, 0, sizeof cnt);
  tt_matmul_f32(&core, 64, 64, 64, placed, 64, 1, dram, 64, 1, out, 64); /* A placed, B in DRAM */
  CHECK(cnt[TT_CORE_NOC_BYTES] == 64 * 64 * 4 && cnt[TT_CORE_DMA_BYTES] == 2 * 64 * 64 * 4);
  memset(cnt, 0, sizeof cnt); /* B received by multicast too: all of it over the NoC */
  tt_multicast(&core, 1, dram, dram + 64 * 64);
  tt_matmul_f32(&core, 64, 64, 64, placed, 64, 1, dram, 64, 1, out, 64);
  CHECK(cnt[TT_CORE_NOC_BYTES] == 2 * 64 * 64 * 4 && cnt[TT_CORE_DMA_BYTES] == 2 * 64 * 64 * 4);
  tt_multicast(&core, 1, NULL, NULL);
  tt_dma_read_strided(&core, sram, dram, 4, 64, 1);
  CHECK(cnt[TT_CORE_NOC_BYTES] == 2 * 64 * 64 * 4);
  free(sram);
}

/* A short run copied at the call site (ttrt_kernel.h's tt_dma_read_run / tt_dma_write_run) must
 * move and count exactly what the engine does for the same transfer: in DRAM, in SRAM-placed
 * tensors (NoC bytes too) and in the core's own SRAM (nothing counted). */
static void test_dma_runs(void) {
  enum { SRAM = 1 << 16 };
  static char placed[2][4096] __attribute__((aligned(64)));
  static char dram[2][4096] __attribute__((aligned(64)));
  char *sram = aligned_alloc(64, 2 * SRAM);
  uint64_t cr[TT_CORE_NCOUNTERS], ce[TT_CORE_NCOUNTERS];
  tt_core run = {0, 0, 0, 1, sram, SRAM, cr, NULL, NULL, placed[0], placed[0] + sizeof placed,
                 {NULL, NULL}, {NULL, NULL}, NULL, NULL, NULL};
  tt__engine_bind(&run, NULL);
  tt_core eng = run; /* the same core's view with SRAM and counters of its own, through the engine */
  eng.sram = sram + SRAM;
  eng.counters = ce;
  int bad = 0;
  char *const bases[3][2] = {{dram[0], dram[1]}, {placed[0], placed[1]}, {sram + 8192, sram + SRAM + 8192}};
  /* a read and a write of `count` elements (constants at the call sites, as the compiler emits them) */
#define TT_RUN_CASE(esize, count)                                                                          \
  for (int b = 0; b < 3; b++) {                                                                          \
    for (int i = 0; i < 4096; i++) dram[0][i] = dram[1][i] = placed[0][i] = placed[1][i] = (char)(i * 7 + 1); \
    for (int i = 0; i < SRAM; i++) sram[i] = sram[SRAM + i] = (char)(i * 5 + 3);                         \
    memset(cr, 0, sizeof cr), memset(ce, 0, sizeof ce);                                                  \
    void *opr[1] = {bases[b][0]}, *ope[1] = {bases[b][1]};                                               \
    tt_dma_read_run(&run, opr, 0, 3, sram + 64, esize, count);                                           \
    eng.dma_op(&eng, ope, 0, 3, (char *)eng.sram + 64, 0, 0, esize, 1, count, 1, 0);                     \
    tt_dma_write_run(&run, opr, 0, 300, sram + 1000, esize, count);                                      \
    eng.dma_op(&eng, ope, 0, 300, (char *)eng.sram + 1000, 0, 0, esize, 1, count, 1, TT_DMA_WRITE);      \
    bad += memcmp(sram, sram + SRAM, 8192) != 0 || memcmp(bases[b][0], bases[b][1], 4096) != 0 ||        \
           memcmp(cr, ce, sizeof cr) != 0 || cr[TT_CORE_DMA_BYTES] != (b == 2 ? 0u : 2u * (esize) * (count)) || \
           cr[TT_CORE_NOC_BYTES] != (b == 1 ? 2u * (esize) * (count) : 0u);                             \
  }
  TT_RUN_CASE(1, 1)
  TT_RUN_CASE(1, 7)
  TT_RUN_CASE(2, 3)
  TT_RUN_CASE(4, 1)
  TT_RUN_CASE(4, 32)
  TT_RUN_CASE(4, 63)
  TT_RUN_CASE(4, 64)
  TT_RUN_CASE(8, 32)
  TT_RUN_CASE(8, 64)
#undef TT_RUN_CASE
  CHECK(bad == 0);
  free(sram);
}

/* The runtime's per-work-item helpers that kernel libraries no longer compile themselves:
 * a count-only read (prelude.c's k_dma_read_once after a core's first item) moves nothing and
 * counts what tt_dma_read_counted counts; tt_multicast_mark marks a panel exactly when an earlier
 * item `step` apart runs at the same place in its core's range (checked against that rule
 * written out over every core's split). */
static void test_kernel_helpers(void) {
  enum { SRAM = 1 << 14 };
  static char placed[4096] __attribute__((aligned(64)));
  static char dram[4096] __attribute__((aligned(64)));
  char *sram = aligned_alloc(64, SRAM);
  uint64_t ca[TT_CORE_NCOUNTERS], cb[TT_CORE_NCOUNTERS];
  tt_core core = {0, 0, 0, 1, sram, SRAM, ca, NULL, NULL, placed, placed + sizeof placed,
                  {NULL, NULL}, {NULL, NULL}, NULL, NULL, NULL};
  tt__engine_bind(&core, NULL);
  int bad = 0;
  char *const bases[3] = {dram, placed, sram + 4096};
  static const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 1}, {3, 5, 2}, {4, 6, 0}, {2, 0, 1}, {0, 3, 1}};
  for (int b = 0; b < 3; b++)
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
      const int64_t rows = shapes[k][0], count = shapes[k][1], stride = shapes[k][2];
      memset(sram, 0x5A, 1024);
      memset(ca, 0, sizeof ca), memset(cb, 0, sizeof cb);
      void *ops[1] = {bases[b]};
      core.counters = ca;
      core.dma_op(&core, ops, 0, 3, sram, 8, 16, 4, rows, count, stride, TT_DMA_COUNT_ONLY);
      core.counters = cb;
      tt_dma_read_counted(&core, bases[b] + 3 * 4, 4, rows, count, stride);
      for (int i = 0; i < 1024; i++) bad += sram[i] != 0x5A;
      bad += memcmp(ca, cb, sizeof ca) != 0;
    }
  CHECK(bad == 0);
  static char a[64], bb[64];
  core.counters = ca;
  for (uint32_t nc = 1; nc <= 9; nc += 4)
    for (int64_t items = 1; items <= 23; items += 5)
      for (int64_t mb = 1; mb <= 4; mb++)
        for (int64_t it = 0; it < items; it++) {
          core.ncores = nc;
          int64_t place[64];
          for (uint32_t c = 0; c < nc; c++)
            for (int64_t j = items * c / nc; j < items * (c + 1) / nc; j++) place[j] = j - items * c / nc;
          const int64_t t = it;
          int want_a = 0, want_b = 0;
          for (int64_t k = 1; k <= t / mb; k++) want_a |= place[it - k * mb] == place[it];
          for (int64_t k = 1; k <= t % mb; k++) want_b |= place[it - k] == place[it];
          for (int brx = -1; brx <= 1; brx++) {
            tt_multicast_mark(&core, it, items, mb, t, brx, a, a + 64, bb, bb + 64);
            const int got_a = core.mc_lo[0] == a && core.mc_hi[0] == a + 64;
            const int got_b = core.mc_lo[1] == bb && core.mc_hi[1] == bb + 64;
            bad += got_a != want_a || (!got_a && (core.mc_lo[0] || core.mc_hi[0]));
            bad += got_b != (brx >= 0 ? brx : want_b) || (!got_b && (core.mc_lo[1] || core.mc_hi[1]));
          }
        }
  CHECK(bad == 0);
  free(sram);
}

/* The matrix engine directly, on edge shapes and strides, against a naive loop: every build of it
 * the host can run (the runtime uses only the best one). */
static void test_matmul_shapes(const tt__engine *engine) {
  static const int64_t dims[] = {0, 1, 2, 7, 31, 32, 33, 65, 300, 1100};
  const int nd = (int)(sizeof dims / sizeof dims[0]) - 1; /* 1100: only as K (several K blocks) */
  void *sram = aligned_alloc(64, 1499136);
  uint64_t cnt[TT_CORE_NCOUNTERS] = {0};
  tt_core core = {0, 0, 0, 1, sram, 1499136, cnt, NULL, NULL, NULL, NULL, {NULL, NULL}, {NULL, NULL}, NULL, NULL, NULL};
  tt__engine_bind(&core, engine);
  float *A = malloc(300 * 1100 * 4), *B = malloc(1100 * 700 * 4), *C = malloc(300 * 700 * 4);
  uint16_t *Ah = malloc(300 * 1100 * 2), *Bh = malloc(1100 * 700 * 2);
  for (int i = 0; i < 300 * 1100; i++) A[i] = (float)((i * 13) % 17 - 8) / 4.0f, Ah[i] = tt_f32_to_bf16(A[i]);
  for (int i = 0; i < 1100 * 700; i++) B[i] = (float)((i * 7) % 29 - 14) / 8.0f, Bh[i] = tt_f32_to_bf16(B[i]);
  int bad = 0;
  for (int mi = 0; mi < nd; mi++)
    for (int ni = 0; ni < nd; ni++)
      for (int ki = 0; ki <= nd; ki++)
        for (int tr = 0; tr < 4; tr++) {
          int64_t M = dims[mi], N = tr == 3 ? 700 : dims[ni], K = dims[ki];
          if (K > 300 && (M > 65 || N > 65 || tr == 3)) continue;
          if (tr == 3 && (ni != 0 || M > 65)) continue; /* one wide case: N > one SRAM block of B */
          /* tr bit 0: A transposed (a_cs = M); bit 1: B transposed (b_rs = 1) */
          int64_t a_rs = (tr & 1) ? 1 : K, a_cs = (tr & 1) ? M : 1;
          int64_t b_rs = (tr & 2) && tr != 3 ? 1 : N, b_cs = (tr & 2) && tr != 3 ? K : 1;
          uint64_t tiles0 = cnt[TT_CORE_MATRIX_TILES];
          for (int h = 0; h < 2; h++) {
            memset(C, 0xff, (size_t)(M * (N + 3)) * 4); /* NaN garbage: must be overwritten */
            if (h) tt_matmul_bf16(&core, M, N, K, Ah, a_rs, a_cs, Bh, b_rs, b_cs, C, N + 3);
            else tt_matmul_f32(&core, M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, N + 3);
            for (int64_t i = 0; i < M; i++)
              for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t q = 0; q < K; q++)
                  s += h ? (double)bf16_round(A[i * a_rs + q * a_cs]) * bf16_round(B[q * b_rs + j * b_cs])
                         : (double)A[i * a_rs + q * a_cs] * B[q * b_rs + j * b_cs];
                if (!(fabs(s - C[i * (N + 3) + j]) <= 1e-3 * (1 + fabs(s)))) bad++;
              }
          }
          if (M && N)
            CHECK(cnt[TT_CORE_MATRIX_TILES] - tiles0 == 2 * (uint64_t)(((M + 31) / 32) * ((N + 31) / 32) * ((K + 31) / 32)));
        }
  if (bad) fprintf(stderr, "matrix engine %s: %d wrong elements\n", engine->name, bad);
  CHECK(bad == 0);
  CHECK(cnt[TT_CORE_DMA_BYTES] > 0);
  /* bf16 conversion: round to nearest even, NaN stays NaN */
  CHECK(tt_f32_to_bf16(1.0f) == 0x3f80);
  CHECK(tt_f32_to_bf16(tt_bf16_to_f32(0x3f80) + 0x1p-8f) == 0x3f80);  /* tie -> even */
  CHECK(tt_f32_to_bf16(tt_bf16_to_f32(0x3f81) + 0x1p-8f) == 0x3f82);  /* tie -> even (up) */
  CHECK(isnan(tt_bf16_to_f32(tt_f32_to_bf16(NAN))));
  CHECK(tt_f32_to_bf16(INFINITY) == 0x7f80);
  free(A), free(B), free(C), free(Ah), free(Bh), free(sram);
}

/* The engine reuses a thread's packed B for calls with the same operand during one launch; a
 * new launch may have rewritten it (same address, new contents), so it is packed again. A's
 * rows are an odd number of elements apart: read in place, bf16 k pairs straddle 32-bit words. */
static void test_matmul_packed_b_reuse(const tt__engine *engine) {
  enum { M = 40, N = 70, K = 300, LDA = K + 1 };
  void *sram = aligned_alloc(64, 1499136);
  uint64_t cnt[TT_CORE_NCOUNTERS] = {0};
  tt_core core = {0, 0, 0, 1, sram, 1499136, cnt, NULL, NULL, NULL, NULL, {NULL, NULL}, {NULL, NULL}, NULL, NULL, NULL};
  tt__engine_bind(&core, engine);
  float *A = malloc(M * LDA * 4), *B = malloc(K * N * 4), *C = malloc(M * N * 4);
  uint16_t *Ah = malloc(M * LDA * 2), *Bh = malloc(K * N * 2);
  for (int i = 0; i < M * LDA; i++) A[i] = i % LDA == K ? NAN : (float)(i % 5) - 2.0f, Ah[i] = tt_f32_to_bf16(A[i]);
  int bad = 0;
  for (int round = 0; round < 3; round++) {
    tt__engine_launch_begins();
    for (int i = 0; i < K * N; i++) B[i] = (float)((i + round) % 7) - 3.0f, Bh[i] = tt_f32_to_bf16(B[i]);
    for (int call = 0; call < 2; call++) /* the second call of a launch reuses the packed B */
      for (int h = 0; h < 2; h++) {
        const uint64_t dma0 = cnt[TT_CORE_DMA_BYTES];
        if (h) tt_matmul_bf16(&core, M, N, K, Ah, LDA, 1, Bh, N, 1, C, N);
        else tt_matmul_f32(&core, M, N, K, A, LDA, 1, B, N, 1, C, N);
        CHECK(cnt[TT_CORE_DMA_BYTES] - dma0 == (uint64_t)((M + N) * K * (h ? 2 : 4))); /* charged anyway */
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) {
            float s = 0;
            for (int q = 0; q < K; q++) s += A[i * LDA + q] * B[q * N + j];
            bad += C[i * N + j] != s; /* small integers: exact */
          }
      }
  }
  if (bad) fprintf(stderr, "matrix engine %s: %d wrong elements with a rewritten B\n", engine->name, bad);
  CHECK(bad == 0);
  free(A), free(B), free(C), free(Ah), free(Bh), free(sram);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <tt_test_kernels.so>\n", argv[0]);
    return 2;
  }
  kernels_path = argv[1];
  void *h = dlopen(kernels_path, RTLD_NOW | RTLD_LOCAL);
  if (!h || !(variant = dlsym(h, "tt_test_variant"))) {
    fprintf(stderr, "cannot open %s: %s\n", kernels_path, dlerror());
    return 2;
  }
  test_open_close();
  test_buffers();
  test_oom();
  test_bad_programs();
  test_device_binding();
  test_generations();
  test_threads();
  if (getenv("TT_TEST_THREADS_ONLY")) { /* the ThreadSanitizer run: skip the long engine checks */
    dlclose(h);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
  }
  test_launch(0);
  test_launch(1);
  test_launch(3);
  test_zero_copy();
  test_control_stream();
  test_dma_runs();
  test_kernel_helpers();
  const tt__engine *engines[8];
  uint32_t ne = tt__engines(engines, 8);
  CHECK(ne >= 1 && ne <= 8);
  for (uint32_t i = 0; i < ne && i < 8; i++) {
    printf("matrix engine: %s\n", engines[i]->name);
    test_matmul_shapes(engines[i]);
    test_matmul_packed_b_reuse(engines[i]);
    test_l1_counting(engines[i]);
  }
  dlclose(h);
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
