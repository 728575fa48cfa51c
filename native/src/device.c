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
  cfg->dram_bytes_per_cycle = 288.0;
  cfg->vector_tile_cycles = 64;
  cfg->matrix_tile_cycles = 16;
  cfg->launch_cycles = 1000;
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

tt_status tt__fail(tt_device *dev, tt_status s, const char *fmt, ...) {
  if (dev) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dev->error, sizeof dev->error, fmt, ap);
    va_end(ap);
  }
  return s;
}

tt_status tt_device_open(const tt_device_config *cfg, tt_device **out) {
  if (!out) return TT_ERR_INVALID_ARGUMENT;
  *out = NULL;
  tt_device_config c;
  if (cfg) c = *cfg;
  else tt_device_config_default(&c);
  /* The compiler sizes every kernel's SRAM blocks to the cores' SRAM and the matrix engine blocks
   * to its share (TT_MM_SRAM); below TT_MIN_SRAM_PER_CORE the blocks would be too small to work. */
  if (c.grid_x == 0 || c.grid_y == 0 || (uint64_t)c.grid_x * c.grid_y > TT_MAX_CORES ||
      c.sram_per_core < TT_MIN_SRAM_PER_CORE || c.sram_per_core > (1ull << 32) || !(c.clock_ghz > 0) ||
      !(c.dram_bytes_per_cycle > 0))
    return TT_ERR_INVALID_ARGUMENT;
  tt_device *d = calloc(1, sizeof *d);
  if (!d) return TT_ERR_OUT_OF_MEMORY;
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
  d->core_counters = calloc(d->ncores, sizeof *d->core_counters);
  d->active = calloc(d->ncores, sizeof *d->active);
  d->free_lists = calloc(256, sizeof *d->free_lists);
  if (!d->cores || !d->core_counters || !d->active || !d->free_lists) goto oom;
  const tt__engine *engine = NULL;
  tt__engines(&engine, 1); /* the host's best matrix-engine build */
  for (uint32_t i = 0; i < d->ncores; i++) {
    tt_core *k = &d->cores[i];
    k->id = i;
    k->x = i % c.grid_x;
    k->y = i / c.grid_x;
    k->ncores = d->ncores;
    k->sram = NULL; /* allocated on first launch that uses the core */
    k->sram_bytes = c.sram_per_core;
    k->counters = d->core_counters[i];
    tt__engine_bind(k, engine);
  }
  if (tt__pool_init(&d->pool, c.host_threads - 1) != 0) {
    tt__pool_destroy(&d->pool);
    free(d->cores);
    free(d->core_counters);
    free(d->active);
    free(d->free_lists);
    free(d);
    return TT_ERR_INTERNAL;
  }
  *out = d;
  return TT_OK;
oom:
  free(d->cores);
  free(d->core_counters);
  free(d->active);
  free(d->free_lists);
  free(d);
  return TT_ERR_OUT_OF_MEMORY;
}

tt_status tt_device_close(tt_device *dev) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  tt__pool_destroy(&dev->pool);
  tt__programs_release_all(dev);
  tt__buffers_release_all(dev);
  for (uint32_t i = 0; i < dev->ncores; i++) free(dev->cores[i].sram);
  free(dev->cores);
  free(dev->core_counters);
  free(dev->active);
  free(dev->free_lists);
  free(dev->buffers.slots);
  free(dev->programs.slots);
  free(dev);
  return TT_OK;
}

const char *tt_device_error(const tt_device *dev) { return dev ? dev->error : "invalid device (NULL)"; }

tt_status tt_device_info(const tt_device *dev, tt_device_config *out) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  if (!out) return tt__fail((tt_device *)dev, TT_ERR_INVALID_ARGUMENT, "tt_device_info: out is NULL");
  *out = dev->cfg;
  return TT_OK;
}

tt_status tt_device_synchronize(tt_device *dev) { return dev ? TT_OK : TT_ERR_INVALID_ARGUMENT; }

tt_status tt_device_counters(const tt_device *dev, tt_counters *out) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  if (!out) return tt__fail((tt_device *)dev, TT_ERR_INVALID_ARGUMENT, "tt_device_counters: out is NULL");
  *out = dev->counters;
  return TT_OK;
}

tt_status tt_device_reset_counters(tt_device *dev) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  uint64_t live = dev->counters.dram_bytes_allocated;
  memset(&dev->counters, 0, sizeof dev->counters);
  dev->counters.dram_bytes_allocated = dev->counters.dram_bytes_peak = live;
  return TT_OK;
}

/* ---------------------------------------------------------------- handle tables */
tt_status tt__table_add(tt_device *dev, tt_table *t, uint32_t kind, void *obj, uint64_t *out) {
  uint32_t idx;
  if (t->free_head) {
    idx = t->free_head - 1;
    t->free_head = t->slots[idx].next_free;
  } else {
    if (t->n == t->cap) {
      if (t->cap >= (1u << 30)) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "too many live handles");
      uint32_t cap = t->cap ? t->cap * 2 : 64;
      tt_slot *s = realloc(t->slots, (size_t)cap * sizeof *s);
      if (!s) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory for handle table");
      t->slots = s;
      t->cap = cap;
    }
    idx = t->n++;
    t->slots[idx].gen = 1;
  }
  tt_slot *s = &t->slots[idx];
  s->live = 1;
  s->next_free = 0;
  s->obj = obj;
  *out = ((uint64_t)kind << 56) | ((uint64_t)s->gen << 32) | (uint64_t)(idx + 1);
  return TT_OK;
}

tt_slot *tt__table_get(tt_table *t, uint32_t kind, uint64_t h) {
  uint32_t idx = (uint32_t)h;
  if ((h >> 56) != kind || idx == 0 || idx > t->n) return NULL;
  tt_slot *s = &t->slots[idx - 1];
  return (s->live && s->gen == ((h >> 32) & 0xffffffu)) ? s : NULL;
}

void tt__table_remove(tt_table *t, uint64_t h) {
  uint32_t idx = (uint32_t)h - 1;
  tt_slot *s = &t->slots[idx];
  s->live = 0;
  s->obj = NULL;
  s->gen = (s->gen + 1) & 0xffffffu;
  if (s->gen == 0) s->gen = 1;
  s->next_free = t->free_head;
  t->free_head = idx + 1;
}
