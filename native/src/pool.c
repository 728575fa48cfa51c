/* pool.c: persistent host thread pool that executes simulated cores. */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>

/* Workers spin this many polls before sleeping: launches of one program follow each other
 * within microseconds, and a condvar wake-up would cost more than the kernels themselves. */
#define TT_SPIN 20000

/* Poll s of a wait. The first TT_SPIN_HOT polls only pause: back-to-back launches are served
 * within a poll. Later ones give the host core away every 8th poll: when the host has more
 * runnable threads than cores (another library's pool spinning after its call, as an OpenBLAS
 * pool does for ~0.1 s after a LAPACK call), a thread that only pauses holds a core another
 * thread of ours, or theirs, needs, and a 2-core host then runs our launches at half speed. */
#define TT_SPIN_HOT 1024
static inline void tt__relax(int s) {
  if (s >= TT_SPIN_HOT && (s & 7) == 7) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct tt_pool_worker {
  tt_pool *pool;
  uint32_t thread;
};

/* Claims and runs items of the job whose generation is `gen` until none is left. */
static void tt__pool_work(tt_pool *p, uint32_t gen, uint32_t thread) {
  uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
  for (;;) {
    uint32_t n = (uint32_t)(w >> 16) & 0xffffu, i = (uint32_t)w & 0xffffu;
    if ((uint32_t)(w >> 32) != gen || i >= n) return;
    if (!atomic_compare_exchange_weak_explicit(&p->word, &w, w + 1, memory_order_acq_rel, memory_order_acquire))
      continue;
    p->run(p->ctx, i, thread);
    if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == n) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_broadcast(&p->done_cv);
      pthread_mutex_unlock(&p->mu);
    }
    w = atomic_load_explicit(&p->word, memory_order_acquire);
  }
}

static void *tt__pool_main(void *arg) {
  tt_pool *p = ((struct tt_pool_worker *)arg)->pool;
  const uint32_t thread = ((struct tt_pool_worker *)arg)->thread;
  (void)tt__fp_enter(); /* this thread only ever runs kernels */
  uint32_t seen = (uint32_t)(atomic_load(&p->word) >> 32);
  for (;;) {
    uint32_t gen = seen;
    for (int s = 0; s < TT_SPIN && gen == seen; s++) {
      tt__relax(s);
      gen = (uint32_t)(atomic_load_explicit(&p->word, memory_order_acquire) >> 32);
    }
    if (gen == seen) {
      pthread_mutex_lock(&p->mu);
      while (!p->stop && (gen = (uint32_t)(atomic_load(&p->word) >> 32)) == seen) pthread_cond_wait(&p->wake, &p->mu);
      int stop = p->stop;
      pthread_mutex_unlock(&p->mu);
      if (stop) return NULL;
    }
    seen = gen;
    tt__pool_work(p, gen, thread);
  }
}

int tt__pool_init(tt_pool *p, uint32_t nthreads) {
  p->threads = NULL;
  p->workers = NULL;
  p->nthreads = 0;
  p->stop = 0;
  atomic_init(&p->word, 0);
  atomic_init(&p->done, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  if (nthreads == 0) return 0;
  p->threads = calloc(nthreads, sizeof *p->threads);
  p->workers = calloc(nthreads, sizeof *p->workers);
  if (!p->threads || !p->workers) return -1;
  for (; p->nthreads < nthreads; p->nthreads++) {
    p->workers[p->nthreads] = (struct tt_pool_worker){p, p->nthreads + 1};
    if (pthread_create(&p->threads[p->nthreads], NULL, tt__pool_main, &p->workers[p->nthreads]) != 0) return -1;
  }
  return 0;
}

void tt__pool_destroy(tt_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (uint32_t i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  free(p->threads);
  free(p->workers);
  p->threads = NULL;
  p->workers = NULL;
  p->nthreads = 0;
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done_cv);
  pthread_mutex_destroy(&p->mu);
}

void tt__pool_run(tt_pool *p, uint32_t njobs, void (*run)(void *, uint32_t, uint32_t), void *ctx) {
  if (njobs == 0) return;
  if (njobs == 1 || p->nthreads == 0) { /* nothing to share: skip the hand-off entirely */
    for (uint32_t i = 0; i < njobs; i++) run(ctx, i, 0);
    return;
  }
  p->run = run;
  p->ctx = ctx;
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  uint32_t gen = (uint32_t)(atomic_load(&p->word) >> 32) + 1;
  atomic_store_explicit(&p->word, ((uint64_t)gen << 32) | ((uint64_t)njobs << 16), memory_order_release);
  /* Lock/unlock orders the publish before any sleeper's re-check, so no wake-up is lost. */
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  tt__pool_work(p, gen, 0);
  for (int s = 0; s < TT_SPIN; s++) {
    if (atomic_load_explicit(&p->done, memory_order_acquire) == njobs) return;
    tt__relax(s);
  }
  pthread_mutex_lock(&p->mu);
  while (atomic_load_explicit(&p->done, memory_order_acquire) != njobs) pthread_cond_wait(&p->done_cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
