/* program.c: loading kernel libraries, validating descriptors, launching kernels on cores. */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef const tt_program_desc *(*tt_entry_fn)(void);

static void tt__program_free(tt_program_obj *p) {
  if (!p) return;
  if (p->dl) dlclose(p->dl);
  free(p->launch_bytes);
  free(p->operand_ptrs);
  free(p->binding_bytes);
  free(p->launches);
  free(p->steps);
  free(p->operands);
  free(p->written);
  free(p->stats);
  free(p->core_stats);
  free(p);
}

#define BAD(...) tt__fail(dev, TT_ERR_BAD_PROGRAM, __VA_ARGS__)
#define ALIGNED(ptr, T) ((uintptr_t)(ptr) % _Alignof(T) == 0)
/* Operands over all launches: real programs have thousands; the bound keeps a descriptor whose
 * launches all share one big operand table from making us copy gigabytes. */
#define TT_MAX_TOTAL_OPERANDS (1u << 24)

/* Copies the descriptor `raw` into runtime memory (p->desc), reading each count and table only
 * after checking it lies inside the library's mapped segments (`img`): the tables must be
 * readable, kernel functions executable, names NUL-terminated. */
static tt_status tt__snapshot(tt_device *dev, const char *path, const tt__image *img, const tt_program_desc *raw,
                              tt_program_obj *p) {
  if (!raw) return BAD("%s: " TT_PROGRAM_ENTRY "() returned NULL", path);
  if (!ALIGNED(raw, tt_program_desc) || !tt__image_holds(img, raw, sizeof *raw, TT_SEG_R))
    return BAD("%s: the descriptor at %p is misaligned or outside the library's mapped sections", path,
               (const void *)raw);
  tt_program_desc d = *raw;
  if (d.abi_version != TT_ABI_VERSION)
    return BAD("%s: abi_version %u, runtime expects %u", path, d.abi_version, TT_ABI_VERSION);
  if (d.nbindings > TT_MAX_BINDINGS) return BAD("%s: %u bindings (limit %u)", path, d.nbindings, TT_MAX_BINDINGS);
  if (d.nlaunches > TT_MAX_LAUNCHES) return BAD("%s: %u launches (limit %u)", path, d.nlaunches, TT_MAX_LAUNCHES);
  if (d.nbindings && (!ALIGNED(d.binding_bytes, uint64_t) ||
                      !tt__image_holds(img, d.binding_bytes, (uint64_t)d.nbindings * sizeof(uint64_t), TT_SEG_R)))
    return BAD("%s: binding_bytes (%u entries at %p) is misaligned or outside the library's mapped sections", path,
               d.nbindings, (const void *)d.binding_bytes);
  if (d.nlaunches && (!ALIGNED(d.launches, tt_launch) ||
                      !tt__image_holds(img, d.launches, (uint64_t)d.nlaunches * sizeof(tt_launch), TT_SEG_R)))
    return BAD("%s: launches (%u entries at %p) is misaligned or outside the library's mapped sections", path,
               d.nlaunches, (const void *)d.launches);
  if (d.nsteps > TT_MAX_STEPS) return BAD("%s: %u control steps (limit %u)", path, d.nsteps, TT_MAX_STEPS);
  if (d.nsteps && (!ALIGNED(d.steps, tt_ctl) ||
                   !tt__image_holds(img, d.steps, (uint64_t)d.nsteps * sizeof(tt_ctl), TT_SEG_R)))
    return BAD("%s: steps (%u entries at %p) is misaligned or outside the library's mapped sections", path, d.nsteps,
               (const void *)d.steps);
  p->binding_bytes = malloc(((size_t)d.nbindings + 1) * sizeof(uint64_t));
  p->launches = malloc(((size_t)d.nlaunches + 1) * sizeof(tt_launch));
  p->steps = malloc(((size_t)d.nsteps + 1) * sizeof(tt_ctl));
  if (!p->binding_bytes || !p->launches || !p->steps) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  if (d.nbindings) memcpy(p->binding_bytes, d.binding_bytes, (size_t)d.nbindings * sizeof(uint64_t));
  if (d.nlaunches) memcpy(p->launches, d.launches, (size_t)d.nlaunches * sizeof(tt_launch));
  if (d.nsteps) memcpy(p->steps, d.steps, (size_t)d.nsteps * sizeof(tt_ctl));
  uint64_t total = 0;
  for (uint32_t l = 0; l < d.nlaunches; l++) {
    tt_launch *L = &p->launches[l];
    if (L->name && !tt__image_string(img, L->name, 255))
      return BAD("%s: launch %u: name is not a string inside the library", path, l);
    const char *name = L->name ? L->name : "?";
    if (!L->fn) return BAD("%s: launch %u (%s): fn is NULL", path, l, name);
    void *fn;
    memcpy(&fn, &L->fn, sizeof fn); /* function -> object pointer without a pedantic cast */
    if (!tt__image_holds(img, fn, 1, TT_SEG_X))
      return BAD("%s: launch %u (%s): fn %p is not code of the library", path, l, name, fn);
    if (L->noperands > TT_MAX_OPERANDS)
      return BAD("%s: launch %u (%s): %u operands (limit %u)", path, l, name, L->noperands, TT_MAX_OPERANDS);
    if (L->noperands && (!ALIGNED(L->operands, tt_operand) ||
                         !tt__image_holds(img, L->operands, (uint64_t)L->noperands * sizeof(tt_operand), TT_SEG_R)))
      return BAD("%s: launch %u (%s): operands (%u entries at %p) is misaligned or outside the library's mapped "
                 "sections", path, l, name, L->noperands, (const void *)L->operands);
    total += L->noperands;
  }
  if (total > TT_MAX_TOTAL_OPERANDS)
    return BAD("%s: %llu operands over all launches (limit %u)", path, (unsigned long long)total,
               TT_MAX_TOTAL_OPERANDS);
  p->operands = malloc(((size_t)total + 1) * sizeof(tt_operand));
  if (!p->operands) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  tt_operand *next = p->operands;
  for (uint32_t l = 0; l < d.nlaunches; l++) {
    tt_launch *L = &p->launches[l];
    if (L->noperands) memcpy(next, L->operands, (size_t)L->noperands * sizeof(tt_operand));
    L->operands = next;
    next += L->noperands;
  }
  d.binding_bytes = p->binding_bytes;
  d.launches = p->launches;
  d.steps = p->steps;
  p->desc_copy = d;
  p->desc = &p->desc_copy;
  return TT_OK;
}

/* Checks every field of the (copied) descriptor a launch will trust: each operand's binding
 * and access, and its range inside the binding's minimum size; also precomputes per-launch
 * operand byte totals. */
static tt_status tt__validate(tt_device *dev, const char *path, tt_program_obj *p, uint32_t *max_ops) {
  const tt_program_desc *d = p->desc;
  p->launch_bytes = calloc((size_t)d->nlaunches * 3 + 1, sizeof(uint64_t));
  p->written = calloc((size_t)d->nbindings + 1, 1);
  p->stats = calloc((size_t)d->nlaunches + 1, sizeof(tt_launch_stats));
  p->core_stats = calloc((size_t)d->nlaunches * dev->ncores + 1, sizeof(tt_core_stats));
  if (!p->launch_bytes || !p->written || !p->stats || !p->core_stats) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  *max_ops = 0;
  for (uint32_t l = 0; l < d->nlaunches; l++) {
    const tt_launch *L = &d->launches[l];
    const char *name = L->name ? L->name : "?";
    if (L->work_items < 0) return BAD("%s: launch %u (%s): work_items < 0", path, l, name);
    if (L->noperands > *max_ops) *max_ops = L->noperands;
    if (L->sram_bytes > dev->cfg.sram_per_core)
      return BAD("%s: launch %u (%s) needs %llu bytes of SRAM per core, the device's cores have %llu", path, l, name,
                 (unsigned long long)L->sram_bytes, (unsigned long long)dev->cfg.sram_per_core);
    uint64_t *lb = &p->launch_bytes[3 * l];
    for (uint32_t o = 0; o < L->noperands; o++) {
      const tt_operand *op = &L->operands[o];
      if (op->binding >= d->nbindings)
        return BAD("%s: launch %u (%s) operand %u: binding %u >= nbindings %u", path, l, name, o, op->binding,
                   d->nbindings);
      if ((op->access & (TT_READ | TT_WRITE)) == 0 || (op->access & ~(uint32_t)(TT_READ | TT_WRITE | TT_L1)))
        return BAD("%s: launch %u (%s) operand %u: bad access flags 0x%x", path, l, name, o, op->access);
      uint64_t cap = d->binding_bytes[op->binding];
      if (op->offset > cap || op->bytes > cap - op->offset)
        return BAD("%s: launch %u (%s) operand %u: [%llu, +%llu) exceeds binding %u of %llu bytes", path, l, name,
                   o, (unsigned long long)op->offset, (unsigned long long)op->bytes, op->binding,
                   (unsigned long long)cap);
      if (op->access & TT_L1) { /* in SRAM: not DRAM traffic; one binding holds a launch's TT_L1 operands */
        for (uint32_t q = 0; q < o; q++)
          if ((L->operands[q].access & TT_L1) && L->operands[q].binding != op->binding)
            return BAD("%s: launch %u (%s) operand %u: TT_L1 operands in two bindings (%u, %u)", path, l, name, o,
                       L->operands[q].binding, op->binding);
        if (op->access & TT_WRITE) p->written[op->binding] = 1;
        continue;
      }
      lb[0] += op->bytes;
      if (op->access & TT_READ) lb[1] += op->bytes;
      if (op->access & TT_WRITE) lb[2] += op->bytes, p->written[op->binding] = 1;
    }
  }
  for (uint32_t i = 0; i < d->nsteps; i++) {
    const tt_ctl *c = &d->steps[i];
    switch (c->op) {
    case TT_CTL_LAUNCH:
      if (c->arg >= d->nlaunches) return BAD("%s: step %u: launch %u >= nlaunches %u", path, i, c->arg, d->nlaunches);
      if (c->bytes > TT_MAX_STEP_WEIGHT)
        return BAD("%s: step %u: launch weighs %llu steps (limit %u)", path, i, (unsigned long long)c->bytes,
                   TT_MAX_STEP_WEIGHT);
      break;
    case TT_CTL_JUMP:
    case TT_CTL_BRANCH:
      if (c->arg > d->nsteps) return BAD("%s: step %u: target %u > nsteps %u", path, i, c->arg, d->nsteps);
      if (c->op == TT_CTL_JUMP) break;
      if (c->bytes != 1 && c->bytes != 2 && c->bytes != 4 && c->bytes != 8)
        return BAD("%s: step %u: branch scalar of %llu bytes (1, 2, 4 or 8)", path, i, (unsigned long long)c->bytes);
      if (c->flags & ~(uint32_t)TT_BRANCH_IF_ZERO) return BAD("%s: step %u: bad branch flags 0x%x", path, i, c->flags);
      if (c->binding >= d->nbindings)
        return BAD("%s: step %u: binding %u >= nbindings %u", path, i, c->binding, d->nbindings);
      if (c->offset > d->binding_bytes[c->binding] || c->bytes > d->binding_bytes[c->binding] - c->offset)
        return BAD("%s: step %u: scalar at %llu exceeds binding %u of %llu bytes", path, i,
                   (unsigned long long)c->offset, c->binding, (unsigned long long)d->binding_bytes[c->binding]);
      break;
    case TT_CTL_COPY:
      for (int side = 0; side < 2; side++) {
        const uint32_t b = side ? c->src_binding : c->binding;
        const uint64_t off = side ? c->src_offset : c->offset;
        if (b >= d->nbindings) return BAD("%s: step %u: binding %u >= nbindings %u", path, i, b, d->nbindings);
        if (off > d->binding_bytes[b] || c->bytes > d->binding_bytes[b] - off)
          return BAD("%s: step %u: copy [%llu, +%llu) exceeds binding %u of %llu bytes", path, i,
                     (unsigned long long)off, (unsigned long long)c->bytes, b,
                     (unsigned long long)d->binding_bytes[b]);
      }
      p->written[c->binding] = 1; /* a copy writes its destination: read-only buffers are refused there */
      break;
    case TT_CTL_HALT:
      break;
    default:
      return BAD("%s: step %u: unknown op %u", path, i, c->op);
    }
  }
  return TT_OK;
}
#undef BAD
#undef ALIGNED

static tt_status tt__program_load_locked(tt_device *dev, const char *library_path, tt_program *out) {
  if (!library_path || !out) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_load: NULL argument");
  *out = 0;
  tt_program_obj *p = calloc(1, sizeof *p);
  if (!p) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  /* RTLD_LOCAL: every kernel library defines the same entry symbol; they must not interpose. */
  p->dl = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  if (!p->dl) {
    const char *e = dlerror();
    tt__program_free(p);
    return tt__fail(dev, TT_ERR_LOAD_FAILED, "dlopen failed: %s", e ? e : library_path);
  }
  tt__image img;
  if (tt__image_of(p->dl, &img) != 0) {
    tt__program_free(p);
    return tt__fail(dev, TT_ERR_LOAD_FAILED, "%s: cannot find the library's mapped sections", library_path);
  }
  tt_entry_fn entry;
  void *sym = dlsym(p->dl, TT_PROGRAM_ENTRY);
  memcpy(&entry, &sym, sizeof entry); /* object -> function pointer without a pedantic cast */
  if (!sym || !tt__image_holds(&img, sym, 1, TT_SEG_X)) { /* dlsym also searches dependencies */
    tt__program_free(p);
    return tt__fail(dev, TT_ERR_BAD_PROGRAM, "%s: no function " TT_PROGRAM_ENTRY " in the library", library_path);
  }
  uint32_t max_ops = 0;
  tt_status s = tt__snapshot(dev, library_path, &img, entry(), p);
  if (s == TT_OK) s = tt__validate(dev, library_path, p, &max_ops);
  if (s == TT_OK) {
    p->operand_ptrs = calloc(max_ops + 1, sizeof(void *));
    if (!p->operand_ptrs) s = tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  }
  if (s == TT_OK) s = tt__table_add(dev, &dev->programs, TT_KIND_PROGRAM, p, out);
  if (s != TT_OK) tt__program_free(p);
  return s;
}

static tt_status tt__program_unload_locked(tt_device *dev, tt_program prog) {
  tt_slot *s;
  tt_status st = tt__table_get(dev, &dev->programs, TT_KIND_PROGRAM, prog, "tt_program_unload", &s);
  if (st != TT_OK) return st;
  tt__program_free(s->obj);
  tt__table_remove(&dev->programs, prog);
  return TT_OK;
}

void tt__programs_release_all(tt_device *dev) {
  for (uint32_t i = 0; i < dev->programs.n; i++)
    if (dev->programs.slots[i].live) tt__program_free(dev->programs.slots[i].obj);
}

/* One launch as seen by the pool: job i runs core active[i] on its range of work items. */
typedef struct tt_launch_ctx {
  tt_device *dev;
  const tt_launch *launch;
  void *const *operands;
} tt_launch_ctx;

/* First item of `core`: core*w/n exactly; 128-bit only when the product could overflow. */
__extension__ typedef unsigned __int128 tt_u128;
static inline int64_t tt__split(int64_t w, uint32_t core, uint32_t n) {
  if (w <= INT64_MAX / TT_MAX_CORES) return w * core / n;
  return (int64_t)((tt_u128)w * core / n);
}

static void tt__run_core(void *arg, uint32_t i, uint32_t thread) {
  tt_launch_ctx *ctx = arg;
  tt_device *dev = ctx->dev;
  uint32_t c = dev->active[i];
  int64_t w = ctx->launch->work_items;
  dev->cores[c].sram = dev->sram[thread]; /* (this job alone touches core c) */
  ctx->launch->fn(&dev->cores[c], ctx->operands, tt__split(w, c, dev->ncores), tt__split(w, c + 1, dev->ncores));
}

/* Adds which binding a refused buffer was bound to (error path only). */
static tt_status tt__name_binding(tt_device *dev, tt_status st, uint32_t b) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", tt_device_error(dev));
  return tt__fail(dev, st, "%s (bound to binding %u)", msg, b);
}

static uint64_t tt__now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Runs launch l of p once on every core its work items split over; sums its events into the
 * device counters and p->stats[l]. */
static tt_status tt__run_launch(tt_device *dev, tt_program_obj *p, uint32_t l, char *const *bases) {
  const tt_device_config *cfg = &dev->cfg;
  tt_counters *k = &dev->counters;
  const tt_launch *L = &p->desc->launches[l];
  /* The range of the launch's TT_L1 operands (all in one binding, checked at load): a core's DMA
   * there is NoC traffic. */
  const char *l1_lo = NULL, *l1_hi = NULL;
  for (uint32_t o = 0; o < L->noperands; o++) {
    const tt_operand *op = &L->operands[o];
    char *at = bases[op->binding] + op->offset;
    p->operand_ptrs[o] = at;
    if ((op->access & TT_L1) && op->bytes) {
      if (!l1_lo || at < l1_lo) l1_lo = at;
      if (!l1_hi || at + op->bytes > l1_hi) l1_hi = at + op->bytes;
    }
  }
  /* Cores whose range is non-empty. */
  uint32_t nactive = 0;
  /* With at least one item per core every core works; with fewer, item j goes to the one core c
   * whose range [split(c), split(c + 1)) holds it, c = ceil((j + 1) n / w) - 1: w divisions
   * instead of 2n (a loop's tiny per-iteration launches are mostly this). */
  const int64_t w = L->work_items;
  const uint32_t n = dev->ncores, nwork = w <= 0 ? 0 : w >= (int64_t)n ? n : (uint32_t)w;
  for (uint32_t j = 0; j < nwork; j++) {
    const uint32_t c = nwork == n ? j : (uint32_t)((((uint64_t)j + 1) * n + (uint64_t)w - 1) / (uint64_t)w - 1);
    tt_core *core = &dev->cores[c];
    memset(core->counters, 0, sizeof(uint64_t) * TT_CORE_NCOUNTERS);
    core->l1_lo = l1_lo;
    core->l1_hi = l1_hi;
    core->mc_lo[0] = core->mc_hi[0] = core->mc_lo[1] = core->mc_hi[1] = NULL; /* kernels mark their own */
    dev->active[nactive++] = c;
  }
  tt_launch_ctx ctx = {dev, L, p->operand_ptrs};
  tt__engine_launch_begins();
  const uint64_t t_launch = tt__now_ns();
  tt__pool_run(&dev->pool, nactive, tt__run_core, &ctx);
  const uint64_t host_ns = tt__now_ns() - t_launch;
  /* Counters from events: what each core's DMA, matrix and vector engines did. A core's time
   * is max(compute, its DMA at its share of the DRAM bandwidth); the launch takes its slowest
   * core's time. Kernels that report no events of a kind (older kernel kinds whose loads are
   * not DMA yet) are modeled from their declared figures, spread evenly. A launch a control
   * stream runs several times sums its per-core figures over the run. */
  uint64_t dma = 0, noc = 0, tiles = 0, tiles_bf16 = 0, vops = 0, faults = 0;
  tt_core_stats *cs = &p->core_stats[(size_t)l * dev->ncores];
  double slowest = 0, slowest_mem = 0, slowest_comp = 0;
  const double cores = (double)(nactive ? nactive : 1);
  /* The DRAM is shared: it serves the cores in proportion to what they ask of it, so the
   * launch's DRAM traffic ends, on every core that has some, after all of it at the chip's
   * bandwidth (with the cores evenly loaded: each core's bytes at its 1/n share). Every DMA also
   * crosses the core's own NoC link; DMA to tensors placed in SRAM or received by multicast
   * (TT_CORE_NOC_BYTES) uses only that link. */
  double dram_total = 0;
  for (uint32_t i = 0; i < nactive; i++) {
    const uint64_t *cc = dev->core_counters[dev->active[i]];
    dram_total += (double)(cc[TT_CORE_DMA_BYTES] - cc[TT_CORE_NOC_BYTES]);
  }
  const double dram_time = dram_total / cfg->dram_bytes_per_cycle;
  for (uint32_t i = 0; i < nactive; i++) {
    const uint64_t *cc = dev->core_counters[dev->active[i]];
    dma += cc[TT_CORE_DMA_BYTES];
    noc += cc[TT_CORE_NOC_BYTES];
    tiles += cc[TT_CORE_MATRIX_TILES];
    vops += cc[TT_CORE_VECTOR_OPS];
    faults += cc[TT_CORE_FAULTS];
    const uint64_t bf16 = cc[TT_CORE_MATRIX_TILES_BF16];
    const double comp = (double)cc[TT_CORE_VECTOR_OPS] * cfg->vector_tile_cycles +
                        (double)(cc[TT_CORE_MATRIX_TILES] - bf16) * cfg->matrix_tile_cycles +
                        (double)bf16 * cfg->matrix_tile_cycles_bf16;
    const double link = (double)cc[TT_CORE_DMA_BYTES] / (double)cfg->noc_bytes_per_cycle;
    const double dram = cc[TT_CORE_DMA_BYTES] > cc[TT_CORE_NOC_BYTES] ? dram_time : 0;
    const double mem = link > dram ? link : dram;
    const double t = comp > mem ? comp : mem;
    tiles_bf16 += bf16;
    tt_core_stats *c = &cs[dev->active[i]];
    c->compute_cycles += (uint64_t)(comp + 0.5);
    c->dma_cycles += (uint64_t)(mem + 0.5);
    c->dma_bytes += cc[TT_CORE_DMA_BYTES];
    c->vector_ops += cc[TT_CORE_VECTOR_OPS];
    c->matrix_tiles += cc[TT_CORE_MATRIX_TILES];
    if (t > slowest) slowest = t, slowest_mem = mem, slowest_comp = comp;
  }
  const uint64_t *lb = &p->launch_bytes[3 * l];
  k->kernels_launched++;
  k->dram_bytes_read += lb[1];
  k->dram_bytes_written += lb[2];
  k->vector_ops += vops ? vops : L->vector_ops;
  k->dma_bytes += dma;
  k->noc_bytes += noc;
  k->matrix_tiles += tiles;
  if (faults)
    return tt__fail(dev, TT_ERR_INTERNAL, "launch %u (%s): %llu dataflow faults (circular buffer misuse or SRAM overrun)",
                    l, L->name ? L->name : "?", (unsigned long long)faults);
  double cyc = slowest;
  int mem_bound = slowest_mem >= slowest_comp;
  if (!dma || !vops) { /* declared figures for what the cores did not report */
    const double mt = (double)(L->matrix_tiles ? L->matrix_tiles : tiles);
    const double dc = dma ? 0 : (double)lb[0] / cfg->dram_bytes_per_cycle;
    const double vc = vops ? 0 : (double)L->vector_ops * cfg->vector_tile_cycles / cores;
    /* (tiles the cores reported are costed per format; declared ones at the f32 rate) */
    const double mc = (tiles ? (double)(tiles - tiles_bf16) * cfg->matrix_tile_cycles +
                                   (double)tiles_bf16 * cfg->matrix_tile_cycles_bf16
                             : mt * cfg->matrix_tile_cycles) / cores;
    if (dc > cyc) cyc = dc, mem_bound = 1;
    if (vc > cyc) cyc = vc, mem_bound = 0;
    if (mc > cyc) cyc = mc, mem_bound = 0;
  }
  const uint64_t launch_cyc = cfg->launch_cycles + (uint64_t)(cyc + 0.5);
  k->modeled_cycles += launch_cyc;
  /* A launch a control stream runs several times sums its figures over the run. */
  tt_launch_stats *ls = &p->stats[l];
  ls->modeled_cycles += launch_cyc;
  ls->dma_bytes += dma;
  ls->noc_bytes += noc;
  ls->vector_ops += vops ? vops : L->vector_ops;
  ls->matrix_tiles += tiles;
  ls->sram_bytes = L->sram_bytes;
  if (nactive > ls->cores) ls->cores = nactive;
  ls->memory_bound = (uint32_t)mem_bound;
  ls->host_ns += host_ns;
  ls->operand_bytes += lb[0];
  return TT_OK;
}

/* The device's copy engine: a DRAM-to-DRAM move, modeled at the DRAM bandwidth (read + write). */
static void tt__run_copy(tt_device *dev, const tt_ctl *c, char *const *bases) {
  memmove(bases[c->binding] + c->offset, bases[c->src_binding] + c->src_offset, (size_t)c->bytes);
  tt_counters *k = &dev->counters;
  k->dram_bytes_read += c->bytes;
  k->dram_bytes_written += c->bytes;
  k->modeled_cycles += (uint64_t)(2.0 * (double)c->bytes / dev->cfg.dram_bytes_per_cycle + 0.5);
}

static uint64_t tt__read_scalar(const char *at, uint64_t bytes) {
  uint8_t b[8] = {0};
  memcpy(b, at, (size_t)bytes); /* little-endian: the device's byte order */
  uint64_t v = 0;
  for (uint64_t i = 0; i < bytes; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

/* The command processor: steps through the control stream (or the launches in order when there
 * is none) without returning to the caller, under the step budget and the cancel flag. */
static tt_status tt__run_stream(tt_device *dev, tt_program_obj *p, char *const *bases) {
  const tt_program_desc *d = p->desc;
  const uint64_t budget = dev->step_budget ? dev->step_budget : TT_DEFAULT_STEP_BUDGET;
  tt_status st = TT_OK;
  if (!d->nsteps) {
    for (uint32_t l = 0; l < d->nlaunches && st == TT_OK; l++) {
      if (atomic_load_explicit(&dev->cancel, memory_order_relaxed))
        return tt__fail(dev, TT_ERR_CANCELLED, "tt_program_launch: cancelled before launch %u", l);
      st = tt__run_launch(dev, p, l, bases);
    }
    return st;
  }
  uint64_t taken = 0;
  for (uint32_t pc = 0; pc < d->nsteps && st == TT_OK;) {
    if (atomic_load_explicit(&dev->cancel, memory_order_relaxed))
      return tt__fail(dev, TT_ERR_CANCELLED, "tt_program_launch: cancelled at control step %u after %llu steps", pc,
                      (unsigned long long)taken);
    const tt_ctl *c = &d->steps[pc];
    /* a LAUNCH of a kernel that loops inside (up to `bytes` iterations) weighs that many steps */
    const uint64_t weight = c->op == TT_CTL_LAUNCH && c->bytes ? c->bytes : 1;
    if (budget - taken < weight) /* (taken <= budget always) */
      return tt__fail(dev, TT_ERR_STEP_BUDGET,
                      "tt_program_launch: control stream exceeded the step budget of %llu steps (at step %u); "
                      "a loop that does not end?", (unsigned long long)budget, pc);
    taken += weight;
    switch (c->op) {
    case TT_CTL_LAUNCH: st = tt__run_launch(dev, p, c->arg, bases); pc++; break;
    case TT_CTL_JUMP: pc = c->arg; break;
    case TT_CTL_BRANCH: {
      const int nonzero = tt__read_scalar(bases[c->binding] + c->offset, c->bytes) != 0;
      pc = nonzero != ((c->flags & TT_BRANCH_IF_ZERO) != 0) ? c->arg : pc + 1;
      break;
    }
    case TT_CTL_COPY: tt__run_copy(dev, c, bases); pc++; break;
    default: pc = d->nsteps; break; /* TT_CTL_HALT (validated at load) */
    }
  }
  return st;
}

static tt_status tt__program_launch_locked(tt_device *dev, tt_program prog, const tt_buffer *buffers,
                                           uint32_t nbuffers) {
  tt_slot *slot;
  tt_status st = tt__table_get(dev, &dev->programs, TT_KIND_PROGRAM, prog, "tt_program_launch", &slot);
  if (st != TT_OK) return st;
  tt_program_obj *p = slot->obj;
  const tt_program_desc *d = p->desc;
  if (nbuffers != d->nbindings)
    return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_launch: %u buffers given, program has %u bindings",
                    nbuffers, d->nbindings);
  if (nbuffers && !buffers) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_launch: buffers is NULL");
  /* Resolve every binding up front, so nothing runs unless all of them are valid (the base
   * pointer array lives on the stack for the usual small binding counts). */
  char *stack_bases[16];
  char **bases = nbuffers <= 16 ? stack_bases : malloc((size_t)nbuffers * sizeof(char *));
  if (!bases) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  for (uint32_t b = 0; b < nbuffers && st == TT_OK; b++) {
    void *ptr;
    uint64_t size;
    st = tt__buffer_lookup(dev, "tt_program_launch", buffers[b], &ptr, &size);
    if (st != TT_OK) st = tt__name_binding(dev, st, b);
    if (st == TT_OK && size < d->binding_bytes[b])
      st = tt__fail(dev, TT_ERR_OUT_OF_RANGE, "tt_program_launch: buffer %u has %llu bytes, binding needs %llu", b,
                    (unsigned long long)size, (unsigned long long)d->binding_bytes[b]);
    /* a kernel never writes memory the host reads in place or owns (tt_buffer_map/wrap) */
    if (st == TT_OK && p->written[b] && (tt__buffer_slot(dev, buffers[b])->flags & TT__BUF_READONLY))
      st = tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_launch: buffer %u is read-only (mapped by the host or "
                    "wrapping host memory) but the program writes binding %u", b, b);
    if (st == TT_OK) bases[b] = ptr;
  }
  if (st != TT_OK) {
    if (bases != stack_bases) free(bases);
    return st;
  }
  const uint64_t t0 = tt__now_ns();
  const uint64_t fp = tt__fp_enter();
  memset(p->stats, 0, sizeof(tt_launch_stats) * d->nlaunches);
  memset(p->core_stats, 0, sizeof(tt_core_stats) * d->nlaunches * dev->ncores);
  atomic_store(&dev->cancel, 0);
  atomic_store(&dev->running, 1);
  st = tt__run_stream(dev, p, bases);
  atomic_store(&dev->running, 0);
  atomic_store(&dev->cancel, 0);
  dev->counters.programs_launched++;
  tt__fp_leave(fp);
  dev->counters.busy_ns += tt__now_ns() - t0;
  if (bases != stack_bases) free(bases);
  return st;
}

static tt_status tt__program_execute_locked(tt_device *dev, tt_program prog, tt_buffer *buffers,
                                           const void *const *host, const uint64_t *bytes, uint32_t nbuffers) {
  if (nbuffers && !buffers) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_execute: buffers is NULL");
  if (nbuffers > TT_MAX_BINDINGS)
    return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_execute: %u buffers (limit %u)", nbuffers,
                    TT_MAX_BINDINGS);
  tt_buffer stack_made[16];
  tt_buffer *made = nbuffers <= 16 ? stack_made : calloc(nbuffers, sizeof(tt_buffer));
  if (!made) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
  tt_status st = TT_OK;
  for (uint32_t b = 0; b < nbuffers; b++) {
    made[b] = 0;
    if (buffers[b] || st != TT_OK) continue;
    if (!bytes) {
      st = tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_execute: binding %u is 0 and bytes is NULL", b);
      continue;
    }
    if (host && host[b]) st = tt__buffer_wrap_locked(dev, host[b], bytes[b], &made[b]);
    else st = tt__buffer_alloc_locked(dev, bytes[b], &made[b]);
  }
  if (st == TT_OK) {
    tt_buffer stack_all[16] = {0}; /* (zeroed: GCC cannot see every binding is set) */
    tt_buffer *all = nbuffers <= 16 ? stack_all : malloc((size_t)nbuffers * sizeof(tt_buffer));
    if (!all) st = tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory");
    else {
      for (uint32_t b = 0; b < nbuffers; b++) all[b] = buffers[b] ? buffers[b] : made[b];
      st = tt__program_launch_locked(dev, prog, all, nbuffers);
      if (all != stack_all) free(all);
    }
  }
  /* wrapped host memory is bound for this launch only; fresh buffers are the caller's on success */
  for (uint32_t b = 0; b < nbuffers; b++) {
    if (!made[b]) continue;
    if (st == TT_OK && !(host && host[b])) buffers[b] = made[b];
    else tt__buffer_free_locked(dev, made[b]);
  }
  if (made != stack_made) free(made);
  return st;
}

static tt_status tt__program_launch_stats_locked(tt_device *dev, tt_program prog, uint32_t launch,
                                                 tt_launch_stats *out) {
  tt_slot *slot;
  tt_status st = tt__table_get(dev, &dev->programs, TT_KIND_PROGRAM, prog, "tt_program_launch_stats", &slot);
  if (st != TT_OK) return st;
  tt_program_obj *p = slot->obj;
  if (!out || launch >= p->desc->nlaunches)
    return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_launch_stats: launch %u of %u", launch,
                    p->desc->nlaunches);
  *out = p->stats[launch];
  return TT_OK;
}

static tt_status tt__program_core_stats_locked(tt_device *dev, tt_program prog, uint32_t launch, uint32_t core,
                                                tt_core_stats *out) {
  tt_slot *slot;
  tt_status st = tt__table_get(dev, &dev->programs, TT_KIND_PROGRAM, prog, "tt_program_core_stats", &slot);
  if (st != TT_OK) return st;
  tt_program_obj *p = slot->obj;
  if (!out || launch >= p->desc->nlaunches || core >= dev->ncores)
    return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_program_core_stats: launch %u of %u, core %u of %u", launch,
                    p->desc->nlaunches, core, dev->ncores);
  *out = p->core_stats[(size_t)launch * dev->ncores + core];
  return TT_OK;
}

/* ---------------------------------------------------------------- public calls: under the device lock */
tt_status tt_program_load(tt_device *dev, const char *library_path, tt_program *out) {
  TT__LOCKED(tt__program_load_locked(dev, library_path, out));
}
tt_status tt_program_unload(tt_device *dev, tt_program prog) { TT__LOCKED(tt__program_unload_locked(dev, prog)); }
/* Holding the lock for the whole launch serializes launches on a device: the pool, the cores and
 * each executable's scratch are used by one launch at a time. */
tt_status tt_program_launch(tt_device *dev, tt_program prog, const tt_buffer *buffers, uint32_t nbuffers) {
  TT__LOCKED(tt__program_launch_locked(dev, prog, buffers, nbuffers));
}
/* One lock for the whole call: its buffers are made, bound and launched atomically. */
tt_status tt_program_execute(tt_device *dev, tt_program prog, tt_buffer *buffers, const void *const *host,
                             const uint64_t *bytes, uint32_t nbuffers) {
  TT__LOCKED(tt__program_execute_locked(dev, prog, buffers, host, bytes, nbuffers));
}
tt_status tt_program_launch_stats(tt_device *dev, tt_program prog, uint32_t launch, tt_launch_stats *out) {
  TT__LOCKED(tt__program_launch_stats_locked(dev, prog, launch, out));
}
tt_status tt_program_core_stats(tt_device *dev, tt_program prog, uint32_t launch, uint32_t core, tt_core_stats *out) {
  TT__LOCKED(tt__program_core_stats_locked(dev, prog, launch, core, out));
}
/* The step budget is device state a launch reads: set under the lock, between launches. */
tt_status tt_device_set_step_budget(tt_device *dev, uint64_t steps) {
  TT__LOCKED((dev->step_budget = steps, TT_OK));
}
/* Not under the lock: it must reach a launch that holds it. Only atomics are touched. */
tt_status tt_device_cancel(tt_device *dev) {
  if (!dev) return TT_ERR_INVALID_ARGUMENT;
  if (atomic_load(&dev->running)) atomic_store(&dev->cancel, 1);
  return TT_OK;
}
