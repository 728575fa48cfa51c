/* internal.h: runtime internals shared by the native/src files (not installed). */
#ifndef TTRT_INTERNAL_H
#define TTRT_INTERNAL_H

#include "ttrt.h"
#include "ttrt_kernel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define TT_MAX_CORES 4096u
#define TT_MAX_BINDINGS 65536u
#define TT_MAX_LAUNCHES (1u << 20)
#define TT_MAX_OPERANDS 4096u
#define TT_MAX_STEPS (1u << 24)

/* Handles: [63:56] kind | [55:32] generation (24 bits, never 0) | [31:0] slot index + 1. */
enum { TT_KIND_BUFFER = 0xB1, TT_KIND_PROGRAM = 0xC7 };

typedef struct tt_slot {
  uint32_t gen;       /* bumped on every free, so old handles stop matching */
  uint32_t live;
  uint32_t next_free; /* index + 1 of the next free slot, 0 = end */
  uint32_t cls;       /* buffer: size-class index */
  void *obj;          /* payload (buffer block or program) */
  uint64_t a, b;      /* buffer: requested size, class size */
} tt_slot;

typedef struct tt_table {
  tt_slot *slots;
  uint32_t n, cap, free_head; /* free_head: index + 1, 0 = none */
} tt_table;

/* Thread pool: `run(ctx, i)` for i in [0, njobs), the calling thread participates.
 * `word` packs (generation:32 | njobs:16 | next index:16) so a worker can only claim an item of
 * the job it saw published; reading run/ctx after a successful claim is then race-free because
 * the job cannot complete (and be replaced) before the claimed item is done. */
typedef struct tt_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake, done_cv;
  pthread_t *threads;
  uint32_t nthreads;
  int stop;
  _Atomic uint64_t word;
  _Atomic uint32_t done;
  void (*run)(void *ctx, uint32_t i);
  void *ctx;
} tt_pool;

typedef struct tt_program_obj {
  void *dl;
  const tt_program_desc *desc;
  uint64_t *launch_bytes;    /* per launch: total, read, written operand bytes (3 entries each) */
  void **operand_ptrs;       /* scratch sized for the largest launch */
  tt_launch_stats *stats;    /* per launch, from the last run */
} tt_program_obj;

struct tt_device {
  tt_device_config cfg;
  uint32_t ncores;
  tt_core *cores;
  uint64_t (*core_counters)[TT_CORE_NCOUNTERS];
  tt_counters counters;
  tt_table buffers, programs;
  /* pooled allocator: free blocks by size class, linked through their first bytes */
  void **free_lists;
  uint64_t cached_bytes, cache_limit;
  tt_pool pool;
  uint32_t *active;          /* launch scratch: cores with a non-empty range */
  uint64_t step_budget;      /* control steps one launch may take (0: TT_DEFAULT_STEP_BUDGET) */
  _Atomic int running;       /* a tt_program_launch is stepping: tt_device_cancel applies */
  _Atomic int cancel;        /* set by tt_device_cancel, seen at the next control step */
  char error[512];
};

tt_status tt__fail(tt_device *dev, tt_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* handle tables */
tt_status tt__table_add(tt_device *dev, tt_table *t, uint32_t kind, void *obj, uint64_t *out);
tt_slot *tt__table_get(tt_table *t, uint32_t kind, uint64_t h);
void tt__table_remove(tt_table *t, uint64_t h);

/* buffers */
void tt__buffers_release_all(tt_device *dev);
tt_status tt__buffer_lookup(tt_device *dev, tt_buffer buf, void **ptr, uint64_t *size);

/* programs */
void tt__programs_release_all(tt_device *dev);

/* matrix engine builds (engine.c, one per instruction-set level; engine_select.c) */
typedef struct tt__engine {
  const char *name;
  tt_matmul_f32_fn f32;
  tt_matmul_bf16_fn bf16;
} tt__engine;
/* The builds this host can run, best first: writes up to cap of them, returns how many there are. */
uint32_t tt__engines(const tt__engine **out, uint32_t cap);
/* Points a core at engine e (NULL: the host's best). */
void tt__engine_bind(tt_core *core, const tt__engine *e);

/* pool */
int tt__pool_init(tt_pool *p, uint32_t nthreads);
void tt__pool_destroy(tt_pool *p);
void tt__pool_run(tt_pool *p, uint32_t njobs, void (*run)(void *, uint32_t), void *ctx);

/* Like Tenstorrent's FPUs (and XLA:CPU), the device flushes denormals: inputs are read as zero
 * and results flushed to zero (x86 MXCSR DAZ|FTZ, AArch64 FPCR.FZ) on every thread that runs
 * kernels, for the duration of a launch on the calling thread. */
static inline uint64_t tt__fp_enter(void) {
#if defined(__x86_64__) || defined(__i386__)
  unsigned old = __builtin_ia32_stmxcsr();
  __builtin_ia32_ldmxcsr(old | 0x8040u);
  return old;
#elif defined(__aarch64__)
  uint64_t old;
  __asm__ volatile("mrs %0, fpcr" : "=r"(old));
  __asm__ volatile("msr fpcr, %0" ::"r"(old | (1ull << 24)));
  return old;
#else
  return 0;
#endif
}
static inline void tt__fp_leave(uint64_t old) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_ldmxcsr((unsigned)old);
#elif defined(__aarch64__)
  __asm__ volatile("msr fpcr, %0" ::"r"(old));
#else
  (void)old;
#endif
}

#endif
