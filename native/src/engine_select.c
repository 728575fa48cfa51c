/* engine_select.c: which matrix-engine build (engine.c) a device uses. The runtime carries one
 * per instruction-set level it was built for; the best one the host can run wins. */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The engine's per-host-thread memory: its packing scratch and a cache of one packed B operand.
 * The packed panels are the simulator's business, not the model's: a thread's own scratch stays
 * in that host core's cache from one simulated core to the next, where each core's SRAM would be
 * cold (a host thread runs many cores in turn); and when the work items a thread runs in turn
 * share a B block (a product's column of blocks), packing it once serves them all, where each
 * simulated core DMAs and packs its own copy (the counters still charge every core for that). */
typedef struct tt__mm_thread {
  void *scratch;       /* TT_MM_SRAM_BYTES, 64-byte aligned */
  void *bpack;         /* bcap bytes, 64-byte aligned */
  size_t bcap;
  tt__mm_bkey key;     /* what bpack holds... */
  uint64_t epoch;      /* ...packed during the launch that began with this epoch */
  int valid;
} tt__mm_thread;

/* The most memory one thread's packed B may take: a K=4096 x 256 f32 block, 1024^2 x 512 bf16. */
#define TT__BPACK_MAX ((size_t)4 << 20)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ok;
static _Atomic uint64_t launch_epoch;

static void thread_free(void *p) {
  tt__mm_thread *t = p;
  free(t->scratch);
  free(t->bpack);
  free(t);
}
static void scratch_init(void) { scratch_ok = pthread_key_create(&scratch_key, thread_free) == 0; }

static tt__mm_thread *thread_state(void) {
  pthread_once(&scratch_once, scratch_init);
  if (!scratch_ok) return NULL;
  tt__mm_thread *t = pthread_getspecific(scratch_key);
  if (t) return t;
  if (!(t = calloc(1, sizeof *t))) return NULL;
  if (!(t->scratch = aligned_alloc(64, TT_MM_SRAM_BYTES)) || pthread_setspecific(scratch_key, t) != 0) {
    free(t->scratch);
    free(t);
    return NULL;
  }
  return t;
}

void *tt__engine_scratch(void) {
  tt__mm_thread *t = thread_state();
  return t ? t->scratch : NULL;
}

void tt__engine_launch_begins(void) { atomic_fetch_add_explicit(&launch_epoch, 1, memory_order_relaxed); }

void *tt__engine_packed_b(const tt__mm_bkey *key, size_t bytes, int *hit) {
  *hit = 0;
  tt__mm_thread *t = thread_state();
  if (!t || bytes > TT__BPACK_MAX) return NULL;
  /* The pool hands a launch to its workers with release/acquire, after the launch's bump. */
  const uint64_t now = atomic_load_explicit(&launch_epoch, memory_order_relaxed);
  if (t->valid && t->epoch == now && !memcmp(&t->key, key, sizeof *key)) {
    *hit = 1;
    return t->bpack;
  }
  t->valid = 0;
  if (bytes > t->bcap) {
    const size_t cap = (bytes + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(64, cap);
    if (!p) return NULL;
    free(t->bpack);
    t->bpack = p;
    t->bcap = cap;
  }
  t->key = *key;
  t->epoch = now;
  t->valid = 1; /* the caller packs it now, before anything else can ask */
  return t->bpack;
}

#define TT__DECLARE(v)                                                                               \
  void tt__matmul_f32_##v(const tt_core *, int64_t, int64_t, int64_t, const float *, int64_t, int64_t, \
                          const float *, int64_t, int64_t, float *, int64_t);                         \
  void tt__matmul_bf16_##v(const tt_core *, int64_t, int64_t, int64_t, const uint16_t *, int64_t,      \
                           int64_t, const uint16_t *, int64_t, int64_t, float *, int64_t);
#define TT__ENTRY(v) {#v, tt__matmul_f32_##v, tt__matmul_bf16_##v},

#ifdef TT_HAVE_ENGINE_generic
TT__DECLARE(generic)
#endif
#ifdef TT_HAVE_ENGINE_native
TT__DECLARE(native)
#endif
#ifdef TT_HAVE_ENGINE_avx2
TT__DECLARE(avx2)
#endif
#ifdef TT_HAVE_ENGINE_avx512
TT__DECLARE(avx512)
#endif
#ifdef TT_HAVE_ENGINE_avx512bf16
TT__DECLARE(avx512bf16)
#endif

/* best first */
static const tt__engine engines[] = {
#ifdef TT_HAVE_ENGINE_native
    TT__ENTRY(native) /* a runtime built on and for this host alone */
#endif
#ifdef TT_HAVE_ENGINE_avx512bf16
    TT__ENTRY(avx512bf16)
#endif
#ifdef TT_HAVE_ENGINE_avx512
    TT__ENTRY(avx512)
#endif
#ifdef TT_HAVE_ENGINE_avx2
    TT__ENTRY(avx2)
#endif
#ifdef TT_HAVE_ENGINE_generic
    TT__ENTRY(generic)
#endif
};

/* The CPU features each build was compiled for (the flags CMakeLists.txt gives it). */
static int host_runs(const char *name) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  if (!strcmp(name, "avx2")) return avx2;
  if (!strcmp(name, "avx512")) return avx512;
  if (!strcmp(name, "avx512bf16")) return avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return !strcmp(name, "generic") || !strcmp(name, "native");
}

uint32_t tt__engines(const tt__engine **out, uint32_t cap) {
  uint32_t n = 0;
  for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++)
    if (host_runs(engines[i].name)) {
      if (n < cap) out[n] = &engines[i];
      n++;
    }
  return n;
}

void tt__engine_bind(tt_core *core, const tt__engine *e) {
  if (!e) tt__engines(&e, 1);  /* "generic" or "native" always runs, so there is one */
  core->matmul_f32 = e->f32;
  core->matmul_bf16 = e->bf16;
  core->dma_op = tt__dma_op;
  core->dma_counted = tt__dma_counted;
  core->multicast_mark = tt__multicast_mark;
}
