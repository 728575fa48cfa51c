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
#define TT_MAX_STEP_WEIGHT (1u << 20) /* steps one LAUNCH step may weigh (tt_ctl.bytes) */

/* Handles: [63:60] kind | [59:44] device tag | [43:20] generation | [19:0] slot index + 1.
 * The tag is unique among open devices, so a handle of another device is told apart from one of
 * this device. A slot's generation goes up on every free and never wraps: a slot whose
 * generation is used up is retired (never handed out again), so no stale handle can ever match. */
enum { TT_KIND_BUFFER = 0xB, TT_KIND_PROGRAM = 0xC };
#define TT_HANDLE_KIND(h) ((uint32_t)((h) >> 60))
#define TT_HANDLE_TAG(h) ((uint32_t)((h) >> 44) & 0xffffu)
#define TT_HANDLE_GEN(h) ((uint32_t)((h) >> 20) & 0xffffffu)
#define TT_HANDLE_SLOT(h) ((uint32_t)(h) & 0xfffffu)
#define TT_GEN_MAX 0xffffffu        /* a slot freed at this generation is retired */
#define TT_MAX_SLOTS 0xfffffu       /* slots per table (live or retired) */
#define TT_MAX_DEVICES 0xffffu      /* open at once: one tag each */

typedef struct tt_slot {
  uint32_t gen;       /* bumped on every free, so old handles stop matching */
  uint32_t live;
  uint32_t next_free; /* index + 1 of the next free slot, 0 = end */
  uint32_t cls;       /* buffer: size-class index */
  void *obj;          /* payload (buffer block or program) */
  uint64_t a, b;      /* buffer: requested size, class size */
  uint32_t refs;      /* buffer: references beyond the owner's (tt_buffer_map) */
  uint32_t flags;     /* buffer: TT__BUF_* */
} tt_slot;
enum { TT__BUF_READONLY = 1, TT__BUF_EXTERNAL = 2 }; /* EXTERNAL: memory is the host's (tt_buffer_wrap) */

typedef struct tt_table {
  tt_slot *slots;
  uint32_t n, cap, free_head; /* free_head: index + 1, 0 = none */
  uint32_t retired;           /* slots whose generations are used up */
} tt_table;

/* Thread pool: `run(ctx, i, t)` for i in [0, njobs), on host thread t (0: the calling thread,
 * which participates; 1..nthreads: the workers), so a job can use per-thread scratch.
 * `word` packs (generation:32 | njobs:16 | next index:16) so a worker can only claim an item of
 * the job it saw published; reading run/ctx after a successful claim is then race-free because
 * the job cannot complete (and be replaced) before the claimed item is done. */
typedef struct tt_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake, done_cv;
  pthread_t *threads;
  struct tt_pool_worker *workers; /* (pool, thread number) each worker is started with */
  uint32_t nthreads;
  int stop;
  _Atomic uint64_t word;
  _Atomic uint32_t done;
  void (*run)(void *ctx, uint32_t i, uint32_t thread);
  void *ctx;
} tt_pool;

typedef struct tt_program_obj {
  void *dl;
  /* The descriptor as validated at load time: a copy in runtime memory (desc points at
   * desc_copy), so a library cannot change what a launch runs after it was checked. */
  const tt_program_desc *desc;
  tt_program_desc desc_copy;
  uint64_t *binding_bytes;
  tt_launch *launches;
  tt_operand *operands;
  tt_ctl *steps;             /* the control stream (nsteps entries), copied like the tables above */
  uint64_t *launch_bytes;    /* per launch: total, read, written operand bytes (3 entries each) */
  void **operand_ptrs;       /* scratch sized for the largest launch */
  uint8_t *written;          /* per binding: some launch has a WRITE operand on it */
  tt_launch_stats *stats;    /* per launch, from the last run */
  tt_core_stats *core_stats; /* per launch x core (nlaunches * ncores), from the last run */
} tt_program_obj;

/* Thread safety: every public call on a device holds `mu` for its whole duration (a launch
 * included), so device state (handle tables, allocator, counters, cores, pool) is only ever
 * touched by one caller at a time and launches are serialized. Error messages are per thread. */
struct tt_device {
  pthread_mutex_t mu;
  uint32_t tag;              /* in every handle of this device; unique among open devices */
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
  /* The SRAM of the cores a host thread runs, one per host thread (cfg.host_threads, made when
   * the device opens; pool thread t uses sram[t]): a core's SRAM holds only what its run of one
   * launch puts there (tensors placed in SRAM live in the arena), and a thread runs one core at a
   * time, so the cores it runs in turn can share one. With one per core (64 x 1.5 MB on n150) every core's pages
   * were cold in the host's caches at every launch: a loop of 1 MB launches took 1.35x as long. */
  void **sram;
  uint32_t *active;          /* launch scratch: cores with a non-empty range */
  uint64_t step_budget;      /* control steps one launch may take (0: TT_DEFAULT_STEP_BUDGET) */
  _Atomic int running;       /* a tt_program_launch is stepping: tt_device_cancel applies */
  _Atomic int cancel;        /* set by tt_device_cancel, seen at the next control step */
};

/* Records the message of a failing call for tt_device_error (on the calling thread). */
tt_status tt__fail(tt_device *dev, tt_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tt__error_forget(const tt_device *dev);
static inline void tt__lock(const tt_device *dev) { pthread_mutex_lock((pthread_mutex_t *)&dev->mu); }
static inline void tt__unlock(const tt_device *dev) { pthread_mutex_unlock((pthread_mutex_t *)&dev->mu); }
/* The body of a public call: checks dev, then runs `call` (the *_locked implementation) under
 * the device lock. */
#define TT__LOCKED(call)                        \
  do {                                          \
    if (!dev) return TT_ERR_INVALID_ARGUMENT;   \
    tt__lock(dev);                              \
    tt_status locked_status_ = (call);          \
    tt__unlock(dev);                            \
    return locked_status_;                      \
  } while (0)

/* handle tables and device tags (handles.c) */
tt_status tt__tag_acquire(uint32_t *tag);
void tt__tag_release(uint32_t tag);
tt_status tt__table_add(tt_device *dev, tt_table *t, uint32_t kind, void *obj, uint64_t *out);
/* The live slot `h` names on this device, else fails naming `what` and why (another device's
 * handle, a freed/stale one, the wrong kind). */
tt_status tt__table_get(tt_device *dev, tt_table *t, uint32_t kind, uint64_t h, const char *what, tt_slot **out);
void tt__table_remove(tt_table *t, uint64_t h);

/* mapped sections of a loaded library (image.c) */
enum { TT_SEG_R = 1u, TT_SEG_X = 2u };
#define TT_IMAGE_MAX_SEGS 16
typedef struct tt__image {
  struct { uintptr_t lo, hi; uint32_t flags; } segs[TT_IMAGE_MAX_SEGS];
  uint32_t n;
} tt__image;
/* Fills img with the PT_LOAD segments of the library behind a dlopen handle; 0 on success. */
int tt__image_of(void *dl, tt__image *img);
/* Whether [p, p + bytes) lies inside one segment having every flag of `need`. */
int tt__image_holds(const tt__image *img, const void *p, uint64_t bytes, uint32_t need);
/* Whether s is a NUL-terminated string of at most max chars inside a readable segment. */
int tt__image_string(const tt__image *img, const char *s, size_t max);

/* buffers */
void tt__buffers_release_all(tt_device *dev);
tt_status tt__buffer_lookup(tt_device *dev, const char *what, tt_buffer buf, void **ptr, uint64_t *size);
/* The live slot of buf (call after a successful tt__buffer_lookup of it), or NULL. */
tt_slot *tt__buffer_slot(tt_device *dev, tt_buffer buf);
/* Bodies of public calls that other public calls reuse; the caller holds the device lock. */
tt_status tt__buffer_alloc_locked(tt_device *dev, uint64_t bytes, tt_buffer *out);
tt_status tt__buffer_free_locked(tt_device *dev, tt_buffer buf);
tt_status tt__buffer_wrap_locked(tt_device *dev, const void *host, uint64_t bytes, tt_buffer *out);

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
/* Points a core at engine e (NULL: the host's best), and at the DMA engine. */
void tt__engine_bind(tt_core *core, const tt__engine *e);
/* the DMA engine (dma.c): tt_core.dma_op and tt_core.dma_counted */
void tt__dma_op(const tt_core *c, void *const *ops, int op, int64_t index, void *page, int64_t sram_pitch,
                int64_t dram_pitch, uint32_t esize, int64_t rows, int64_t count, int64_t stride, int flags);
void tt__dma_counted(const tt_core *c, const void *dram_src, uint32_t esize, int64_t rows, int64_t count,
                     int64_t stride);
/* tt_core.multicast_mark (dma.c): ttrt_kernel.h's tt_multicast_mark */
void tt__multicast_mark(const tt_core *c, int64_t it, int64_t items, int64_t mb, int64_t t, int brx, const void *alo,
                        const void *ahi, const void *blo, const void *bhi);
/* The calling thread's TT_MM_SRAM_BYTES of 64-byte aligned packing scratch (NULL if it cannot be
 * had: the engine then packs into the core's SRAM). */
void *tt__engine_scratch(void);
/* Names one packed B operand (memset to 0 before filling, so padding compares equal). */
typedef struct tt__mm_bkey {
  const void *src;
  int64_t rs, cs, k, n, kb, nb; /* strides, shape and the blocking it was packed with */
  int64_t layout;               /* the engine build's panel layout (width, element format) */
} tt__mm_bkey;
/* The calling thread's cache of one packed B operand: `bytes` of 64-byte aligned memory for the
 * panels of `key`, with *hit = 1 when they were already packed there since the current launch
 * began (then use them as they are), else *hit = 0 and the caller packs them now. NULL (and
 * *hit = 0) when they would not fit: pack block by block into the scratch instead. */
void *tt__engine_packed_b(const tt__mm_bkey *key, size_t bytes, int *hit);
/* Called as every launch begins: operands packed before may have changed since. */
void tt__engine_launch_begins(void);

/* pool */
int tt__pool_init(tt_pool *p, uint32_t nthreads);
void tt__pool_destroy(tt_pool *p);
void tt__pool_run(tt_pool *p, uint32_t njobs, void (*run)(void *, uint32_t, uint32_t), void *ctx);

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
