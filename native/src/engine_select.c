/* engine_select.c: which matrix-engine build (engine.c) a device uses. The runtime carries one
 * per instruction-set level it was built for; the best one the host can run wins. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* The engine's packing scratch, one per host thread. The packed panels live only inside one
 * tt_matmul call, so which memory holds them is the simulator's choice: a thread's own block
 * stays in that host core's cache from one simulated core to the next, where each core's SRAM
 * would be cold (a host thread runs many cores in turn). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ok;
static void scratch_init(void) { scratch_ok = pthread_key_create(&scratch_key, free) == 0; }

void *tt__engine_scratch(void) {
  pthread_once(&scratch_once, scratch_init);
  if (!scratch_ok) return NULL;
  void *p = pthread_getspecific(scratch_key);
  if (!p && (p = aligned_alloc(64, TT_MM_SRAM_BYTES)) && pthread_setspecific(scratch_key, p) != 0) {
    free(p);
    p = NULL;
  }
  return p;
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
}
