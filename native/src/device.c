/* device.c: device lifetime, configuration, errors, counters, handle tables. */
#define _GNU_SOURCE
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tt_device_config_default(tt_device_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->grid_x = 8;
  cfg->grid_y = 8;
  cfg->sram_per_core = 1499136;
  cfg->dram_bytes = 12ull << 30;
  cfg->host_threads = 0;
  cfg->clock_ghz = 1.0;
  /* the n150 preset (tt_xla/presets.py; docs/device.md names the public source of each figure):
   * the DRAM's 288 GB/s peak at the 0.833 of it that DRAM-bound kernels reach */
  cfg->dram_bytes_per_cycle = 288.0 * 0.833;
  cfg->vector_tile_cycles = 32;
  cfg->matrix_tile_cycles = 64;
  cfg->launch_cycles = 1720;
  cfg->matrix_tile_cycles_bf16 = 32;
  cfg->noc_bytes_per_cycle = 32;
}

const char *tt_status_name(tt_status s) {
  switch (s) {
  case TT_OK: return "TT_OK";
  case TT_ERR_INVALID_ARGUMENT: return "TT_ERR_INVALID_ARGUMENT";
  case TT_ERR_INVALID_HANDLE: return "TT_ERR_INVALID_HANDLE";
  case TT_ERR_OUT_OF_MEMORY: return "TT_ERR_OUT_OF_MEMORY";
  case TT_ERR_OUT_OF_RANGE: return "TT_ERR_OUT_OF_RANGE";
  case TT_ERR_BAD_PROGRAM: return "TT_ERR_BAD_PROGRAM";
  case TT_ERR_LOAD_FAILED: return "TT_ERR_LOAD_FAILED";
  case TT_ERR_INTERNAL: return "TT_ERR_INTERNAL";
  case TT_ERR_STEP_BUDGET: return "TT_ERR_STEP_BUDGET";
  case TT_ERR_CANCELLED: return "TT_ERR_CANCELLED";
  }
  return "TT_ERR_UNKNOWN";
}

/* The last failure on this thread: with several threads on one device, each one reads the
 * message of its own failed call. */
static _Thread_local struct {
  const tt_device *dev;
  char msg[512];
} tt__last_error;

tt_status tt__fail(tt_device *dev, tt_status s, const char *fmt, ...) {
  if (dev) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tt__last_error.msg, sizeof tt__last_error.msg, fmt, ap);
    va_end(ap);
    tt__last_error.dev = dev;
  }
  return s;
}

void tt__error_forget(const tt_device *dev) {
  if (tt__last_error.dev == dev) tt__last_error.dev = NULL;
}

const char *tt_device_error(const tt_device *dev) {
  if (!dev) return "invalid device (NULL)";
  return tt__last_error.dev == dev ? tt__last_error.msg : "";
}

/* The host threads' SRAM buffers (tt_device.sram), any that were made. */
static void tt__sram_free(tt_device *d) {
  if (d->sram)
    for (uint32_t t = 0; t < d->cfg.host_threads; t++) free(d->sram[t]);
  free(d->sram);
}

tt_status tt_device_open(const tt_device_config *cfg, tt_device **out) {
  if (!out) return TT_ERR_INVALID_ARGUMENT;
  *out = NULL;
  tt_device_config c;
  if (cfg) c = *cfg;
  else tt_device_config_default(&c);
  if (c.matrix_tile_cycles_bf16 == 0) c.matrix_tile_cycles_bf16 = c.matrix_tile_cycles;
  if (c.noc_bytes_per_cycle == 0) c.noc_bytes_per_cycle = 32;
  /* The compiler sizes every kernel's SRAM blocks to the cores' SRAM and the matrix engine blocks
   * to its share (TT_MM_SRAM); below TT_MIN_SRAM_PER_CORE the blocks would be too small to work. */
  if (c.grid_x == 0 || c.grid_y == 0 || (uint64_t)c.grid_x * c.grid_y > TT_MAX_CORES ||
      c.sram_per_core < TT_MIN_SRAM_PER_CORE || c.sram_per_core > (1ull << 32) || !(c.clock_ghz > 0) ||
      !(c.dram_bytes_per_cycle > 0))
    return TT_ERR_INVALID_ARGUMENT;
  tt_device *d = calloc(1, sizeof *d);
  if (!d) return TT_ERR_OUT_OF_MEMORY;
  if (tt__tag_acquire(&d->tag) != TT_OK) {
    free(d);
    return TT_ERR_OUT_OF_MEMORY;
  }
  tt__error_forget(d); /* a closed device may have had this address */
  tt_status st = TT_ERR_INTERNAL;
  if (c.host_threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c.host_threads = n > 0 ? (uint32_t)n : 1;
  }
  d->ncores = c.grid_x * c.grid_y;
  if (c.host_threads > d->ncores) c.host_threads = d->ncores; /* more threads than cores can't help */
  d->cfg = c;
  /* Cache at most 1/8 of capacity (<= 2 GiB) of freed blocks: enough for steady-state reuse. */
  d->cache_limit = c.dram_bytes / 8 < (2ull << 30) ? c.dram_bytes / 8 : (2ull << 30);
  d->cores = calloc(d->ncores, sizeof *d->cores);
  /* One cache line per core's counters: generated kernels add to them as they go, on the host
   * thread running that core, so no two threads write one line. */
  _Static_assert(sizeof *d->core_counters % 64 == 0, "a core's counters fill whole cache lines");
  d->core_counters = aligned_alloc(64, d->ncores * sizeof *d->core_counters);
  if (d->core_counters) memset(d->core_counters, 0, d->ncores * sizeof *d->core_counters);
  d->active = calloc(d->ncores, sizeof *d->active);
  d->free_lists = calloc(256, sizeof *d->free_lists);
  d->sram = calloc(c.host_threads, sizeof *d->sram);
  if (!d->cores || !d->core_counters || !d->active || !d->free_lists || !d->sram) goto oom;
  for (uint32_t t = 0; t < c.host_threads; t++)
    if (!(d->sram[t] = aligned_alloc(64, (size_t)((c.sram_per_core + 63) & ~63ull)))) goto oom;
  const tt__engine *engine = NULL;
  tt__engines(&engine, 1); /* the host's best matrix-engine build */
  for (uint32_t i = 0; i < d->ncores; i++) {
    tt_core *k = &d->cores[i];
    k->id = i;
    k->x = i % c.grid_x;
    k->y = i / c.grid_x;
    k->ncores = d->ncores;
    k->sram = NULL; /* its host thread's, set when the core runs (tt_device.sram) */
    k->sram_bytes = c.sram_per_core;
    k->counters = d->core_counters[i];
    tt__engine_bind(k, engine);
  }
  if (pthread_mutex_init(&d->mu, NULL) != 0) goto fail;
  if (tt__pool_init(&d->pool, c.host_threads - 1) != 0) {
    tt__pool_destroy(&d->pool);
    pthread_mutex_destroy(&d->mu);
    goto fail;
  }
  *out = d;
  return TT_OK;
oom:
  st = TT_ERR_OUT_OF_MEMORY;
fail:
  tt__sram_free(d);
  free(d->cores);
  free(d->core_counters);
  free(d->active);
  free(d->free_lists);
  tt__tag_release(d->tag);
  free(d);
  return st;
}

tt_status tt_device_close(tt_device *dev) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  /* Let a call in flight on another thread (a launch, say) finish first. Calls made after
   * close are the caller's bug: the device is gone. */
  tt__lock(dev);
  tt__unlock(dev);
  tt__pool_destroy(&dev->pool);
  pthread_mutex_destroy(&dev->mu);
  tt__error_forget(dev);
  tt__tag_release(dev->tag);
  tt__programs_release_all(dev);
  tt__buffers_release_all(dev);
  tt__sram_free(dev);
  free(dev->cores);
  free(dev->core_counters);
  free(dev->active);
  free(dev->free_lists);
  free(dev->buffers.slots);
  free(dev->programs.slots);
  free(dev);
  return TT_OK;
}

tt_status tt_device_info(const tt_device *dev, tt_device_config *out) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  if (!out) return tt__fail((tt_device *)dev, TT_ERR_INVALID_ARGUMENT, "tt_device_info: out is NULL");
  *out = dev->cfg;
  return TT_OK;
}

tt_status tt_device_id(const tt_device *dev, uint32_t *out) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  if (!out) return tt__fail((tt_device *)dev, TT_ERR_INVALID_ARGUMENT, "tt_device_id: out is NULL");
  *out = dev->tag;
  return TT_OK;
}

/* Launches are synchronous and hold the device lock: taking it waits for one in flight. */
tt_status tt_device_synchronize(tt_device *dev) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  tt__lock(dev);
  tt__unlock(dev);
  return TT_OK;
}

tt_status tt_device_counters(const tt_device *dev, tt_counters *out) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  if (!out) return tt__fail((tt_device *)dev, TT_ERR_INVALID_ARGUMENT, "tt_device_counters: out is NULL");
  tt__lock(dev);
  *out = dev->counters;
  tt__unlock(dev);
  return TT_OK;
}

tt_status tt_device_reset_counters(tt_device *dev) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  tt__lock(dev);
  uint64_t live = dev->counters.dram_bytes_allocated;
  memset(&dev->counters, 0, sizeof dev->counters);
  dev->counters.dram_bytes_allocated = dev->counters.dram_bytes_peak = live;
  tt__unlock(dev);
  return TT_OK;
}
