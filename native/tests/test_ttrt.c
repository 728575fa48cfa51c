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
  static const int bad[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 17}; /* 17 is past the table: NULL */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const int v = bad[i];
    *variant = v;
    EXPECT(tt_program_load(d, kernels_path, &p), TT_ERR_BAD_PROGRAM);
    fprintf(stderr, "  variant %d refused: %s\n", v, tt_device_error(d));
  }
  *variant = 0;
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
  tt_program loop, spin, forever;
  *variant = 8;
  EXPECT(tt_program_load(d, kernels_path, &loop), TT_OK);
  *variant = 9;
  EXPECT(tt_program_load(d, kernels_path, &spin), TT_OK);
  *variant = 10;
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
  EXPECT(tt_device_set_step_budget(NULL, 1), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_device_cancel(NULL), TT_ERR_INVALID_ARGUMENT);
  EXPECT(tt_device_close(d), TT_OK);
}

/* The matrix engine directly, on edge shapes and strides, against a naive loop: every build of it
 * the host can run (the runtime uses only the best one). */
static void test_matmul_shapes(const tt__engine *engine) {
  static const int64_t dims[] = {0, 1, 2, 7, 31, 32, 33, 65, 300};
  const int nd = (int)(sizeof dims / sizeof dims[0]);
  void *sram = aligned_alloc(64, 1499136);
  uint64_t cnt[TT_CORE_NCOUNTERS] = {0};
  tt_core core = {0, 0, 0, 1, sram, 1499136, cnt, NULL, NULL};
  tt__engine_bind(&core, engine);
  float *A = malloc(300 * 300 * 4), *B = malloc(300 * 700 * 4), *C = malloc(300 * 700 * 4);
  uint16_t *Ah = malloc(300 * 300 * 2), *Bh = malloc(300 * 700 * 2);
  for (int i = 0; i < 300 * 300; i++) A[i] = (float)((i * 13) % 17 - 8) / 4.0f, Ah[i] = tt_f32_to_bf16(A[i]);
  for (int i = 0; i < 300 * 700; i++) B[i] = (float)((i * 7) % 29 - 14) / 8.0f, Bh[i] = tt_f32_to_bf16(B[i]);
  int bad = 0;
  for (int mi = 0; mi < nd; mi++)
    for (int ni = 0; ni < nd; ni++)
      for (int ki = 0; ki < nd; ki++)
        for (int tr = 0; tr < 4; tr++) {
          int64_t M = dims[mi], N = tr == 3 ? 700 : dims[ni], K = dims[ki];
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
  test_launch(0);
  test_launch(1);
  test_launch(3);
  test_control_stream();
  const tt__engine *engines[8];
  uint32_t ne = tt__engines(engines, 8);
  CHECK(ne >= 1 && ne <= 8);
  for (uint32_t i = 0; i < ne && i < 8; i++) {
    printf("matrix engine: %s\n", engines[i]->name);
    test_matmul_shapes(engines[i]);
  }
  dlclose(h);
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
