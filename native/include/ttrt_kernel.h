/* ttrt_kernel.h: the device side of the tt-xla software accelerator.
 *
 * What a kernel library (built by the device toolchain from compiler-generated C) sees:
 * the core it runs on (id, SRAM, counters), the device's DMA and matrix-engine primitives,
 * and the program descriptor ABI it must export. Like an ISA manual: it knows tiles, SRAM,
 * DMA and tile matmul, never an ML op.
 *
 * A kernel library exports one symbol, TT_PROGRAM_ENTRY:
 *     const tt_program_desc *tt_program_entry(void);
 * The runtime validates the descriptor at load time and runs its launches in order, or, when the
 * descriptor has a control stream, steps through that stream (see tt_ctl).
 */
#ifndef TTRT_KERNEL_H
#define TTRT_KERNEL_H

#include <stdint.h>
#include <string.h>

#define TT_ABI_VERSION 5u
#define TT_TILE 32                    /* tiles are TT_TILE x TT_TILE elements */
#define TT_TILE_ELEMS (TT_TILE * TT_TILE)
#define TT_PROGRAM_ENTRY "tt_program_entry"

/* Per-core counters a kernel may add to (a core runs on one host thread at a time). */
enum {
  TT_CORE_DMA_BYTES = 0,     /* bytes moved by tt_dma_read / tt_dma_write */
  TT_CORE_MATRIX_TILES = 1,  /* 32x32x32 tile products issued to the matrix engine */
  TT_CORE_VECTOR_OPS = 2,    /* tile-wide (32x32) vector instructions, counted by tt_vector_ops */
  TT_CORE_FAULTS = 3,        /* dataflow faults (a circular buffer misused, SRAM overrun): launch fails */
  TT_CORE_MATRIX_TILES_BF16 = 4, /* of TT_CORE_MATRIX_TILES, those with bf16 operands (costed per format) */
  TT_CORE_NOC_BYTES = 5,     /* of TT_CORE_DMA_BYTES, those to/from tensors placed in the grid's SRAM (TT_L1) */
  TT_CORE_NCOUNTERS = 8
};

typedef struct tt_core tt_core;

/* The DMA engine's entry points (see "DMA" below). */
typedef void (*tt_dma_op_fn)(const tt_core *c, void *const *ops, int op, int64_t index, void *page,
                             int64_t sram_pitch, int64_t dram_pitch, uint32_t esize, int64_t rows, int64_t count,
                             int64_t stride, int flags);
typedef void (*tt_dma_counted_fn)(const tt_core *c, const void *dram_src, uint32_t esize, int64_t rows,
                                  int64_t count, int64_t stride);
typedef void (*tt_multicast_mark_fn)(const tt_core *c, int64_t it, int64_t items, int64_t mb, int64_t t, int brx,
                                     const void *alo, const void *ahi, const void *blo, const void *bhi);

/* Matrix engine entry points (see "matrix engine" below). */
typedef void (*tt_matmul_f32_fn)(const tt_core *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t a_rs,
                                 int64_t a_cs, const float *B, int64_t b_rs, int64_t b_cs, float *C, int64_t c_rs);
typedef void (*tt_matmul_bf16_fn)(const tt_core *c, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                                  int64_t a_rs, int64_t a_cs, const uint16_t *B, int64_t b_rs, int64_t b_cs,
                                  float *C, int64_t c_rs);

/* The core a kernel invocation runs on. Filled by the runtime. */
struct tt_core {
  uint32_t id;          /* 0 .. ncores-1, row-major over the grid */
  uint32_t x, y;        /* position in the grid */
  uint32_t ncores;
  void *sram;           /* this core's SRAM, 64-byte aligned */
  uint64_t sram_bytes;
  uint64_t *counters;   /* TT_CORE_NCOUNTERS entries */
  tt_matmul_f32_fn matmul_f32;   /* the matrix engine, part of the runtime: kernels call it */
  tt_matmul_bf16_fn matmul_bf16; /* through tt_matmul_f32 / tt_matmul_bf16 below */
  /* [l1_lo, l1_hi): where this launch's TT_L1 operands (tensors the compiler placed in the grid's
   * SRAM, sharded over the cores) are; DMA to or from there crosses the NoC, not DRAM. Set by the
   * runtime per launch (empty when it has none). On the host that SRAM is ordinary memory too. */
  const char *l1_lo, *l1_hi;
  /* Blocks this core receives by multicast (panel reuse): another core of its grid row or column
   * read them from DRAM once and multicast them over the NoC, so this core's DMA of them is NoC
   * traffic. Set around an engine call by tt_multicast (two slots: a product's A and B panels). */
  const char *mc_lo[2], *mc_hi[2];
  /* The DMA engine, part of the runtime (dma.c) as the matrix engine is: kernels call it through
   * tt_dma_read_op / tt_dma_write_op / tt_dma_read_counted below. */
  tt_dma_op_fn dma_op;
  tt_dma_counted_fn dma_counted;
  tt_multicast_mark_fn multicast_mark; /* see tt_multicast_mark below */
};

/* A kernel processes work items [begin, end) of its launch on one core. operands[i] is the
 * resolved address of the launch's operand i (bound buffer base + operand offset). */
typedef void (*tt_kernel_fn)(const tt_core *core, void *const *operands, int64_t begin, int64_t end);

/* TT_L1: the operand is a tensor the compiler placed in the grid's SRAM (not DRAM); the runtime
 * counts the DMA to it as NoC traffic and leaves it out of the DRAM figures. All TT_L1 operands
 * of a launch are in one binding. */
enum { TT_READ = 1u, TT_WRITE = 2u, TT_L1 = 4u };

typedef struct tt_operand {
  uint32_t binding;  /* index into the buffers given to tt_program_launch */
  uint32_t access;   /* TT_READ | TT_WRITE */
  uint64_t offset;   /* byte offset into that buffer */
  uint64_t bytes;    /* the kernel touches only [offset, offset + bytes) */
} tt_operand;

typedef struct tt_launch {
  const char *name;
  tt_kernel_fn fn;
  int64_t work_items;         /* split into contiguous ranges over the cores */
  uint32_t noperands;
  const tt_operand *operands;
  uint64_t vector_ops;        /* device-model cost: tile-wide vector instructions, whole launch */
  uint64_t matrix_tiles;      /* device-model cost: 32x32x32 tile products, whole launch */
  uint64_t sram_bytes;        /* SRAM each core uses (circular buffers, engine blocks): checked at load */
} tt_launch;

/* The control stream (ABI 4): a command processor's program over the launches. The runtime steps
 * through it inside one tt_program_launch, never returning to the host between steps, so a loop
 * whose condition is a device value costs no host round trip per iteration. Step i runs, then
 * control goes to step i + 1 unless it jumped; it ends past the last step or at TT_CTL_HALT.
 *   TT_CTL_LAUNCH  run launches[arg] (to completion, on every core it splits over); `bytes`, when
 *                  nonzero, is the steps it weighs (a kernel that runs up to that many iterations
 *                  of a loop inside it), at most 2^20
 *   TT_CTL_JUMP    go to step arg
 *   TT_CTL_BRANCH  read the little-endian unsigned integer of `bytes` (1, 2, 4 or 8) bytes at
 *                  (binding, offset); go to step arg if it is nonzero (TT_BRANCH_IF_ZERO: if zero)
 *   TT_CTL_COPY    move `bytes` bytes from (src_binding, src_offset) to (binding, offset), as
 *                  memmove (the device's copy engine: counted as DRAM traffic)
 *   TT_CTL_HALT    end the stream
 * A jump or branch target may be nstep (the end). Every step counts against the device's step
 * budget; a stream that exceeds it, or is cancelled from another thread (tt_device_cancel), stops
 * with an error and leaves the device usable. */
enum { TT_CTL_LAUNCH = 1, TT_CTL_JUMP = 2, TT_CTL_BRANCH = 3, TT_CTL_COPY = 4, TT_CTL_HALT = 5 };
enum { TT_BRANCH_IF_ZERO = 1u };

typedef struct tt_ctl {
  uint32_t op;          /* TT_CTL_* */
  uint32_t arg;         /* LAUNCH: launch index; JUMP, BRANCH: target step */
  uint32_t binding;     /* BRANCH: where the scalar is; COPY: destination */
  uint32_t src_binding; /* COPY: source */
  uint64_t offset;      /* BRANCH: scalar's byte offset; COPY: destination offset */
  uint64_t src_offset;  /* COPY: source offset */
  uint64_t bytes;       /* BRANCH: scalar width; COPY: bytes moved */
  uint32_t flags;       /* BRANCH: TT_BRANCH_IF_ZERO */
  uint32_t reserved;    /* 0 */
} tt_ctl;

typedef struct tt_program_desc {
  uint32_t abi_version;       /* TT_ABI_VERSION */
  uint32_t nbindings;
  const uint64_t *binding_bytes; /* minimum size of each bound buffer */
  uint32_t nlaunches;
  const tt_launch *launches;
  uint32_t nsteps;            /* 0: no control stream, the launches run once in order */
  const tt_ctl *steps;
} tt_program_desc;

/* ---------------------------------------------------------------- DMA: DRAM <-> core SRAM */
/* Counts `bytes` of DMA at `addr`: all of it as DMA, and as NoC traffic when addr is a tensor
 * placed in SRAM (the device's DRAM bandwidth is not spent on it). */
static inline int tt__within(const void *addr, const char *lo, const char *hi) {
  /* as integers: the range may be empty (NULL) or another object's, which C's pointer order does not cover */
  return (uintptr_t)addr >= (uintptr_t)lo && (uintptr_t)addr < (uintptr_t)hi;
}
static inline void tt_dma_count(const tt_core *c, const void *addr, uint64_t bytes) {
  /* a block already in this core's own SRAM (the engine reading a page a kernel unpacked) moves nothing */
  if (tt__within(addr, (const char *)c->sram, (const char *)c->sram + c->sram_bytes)) return;
  c->counters[TT_CORE_DMA_BYTES] += bytes;
  if (tt__within(addr, c->l1_lo, c->l1_hi) || tt__within(addr, c->mc_lo[0], c->mc_hi[0]) ||
      tt__within(addr, c->mc_lo[1], c->mc_hi[1]))
    c->counters[TT_CORE_NOC_BYTES] += bytes;
}
/* Marks [lo, hi) as a block this core receives by multicast (slot 0 or 1) until it is marked
 * again (NULL, NULL: none). Only the host thread running this core touches its tt_core during a
 * launch, a kernel unmarks what it marked, and the runtime clears both slots at every launch, so
 * this changes no state another core or launch sees. */
static inline void tt_multicast(const tt_core *c, int slot, const void *lo, const void *hi) {
  tt_core *own = (tt_core *)(uintptr_t)c;
  own->mc_lo[slot] = (const char *)lo;
  own->mc_hi[slot] = (const char *)hi;
}
static inline void tt_dma_read(const tt_core *c, void *sram_dst, const void *dram_src, uint64_t bytes) {
  memcpy(sram_dst, dram_src, (size_t)bytes);
  tt_dma_count(c, dram_src, bytes);
}
static inline void tt_dma_write(const tt_core *c, void *dram_dst, const void *sram_src, uint64_t bytes) {
  memcpy(dram_dst, sram_src, (size_t)bytes);
  tt_dma_count(c, dram_dst, bytes);
}

/* The helpers kernels call are out of line (one copy per kernel library) or the runtime's:
 * inlined at every call site, the DMA made the C compiler take about twice as long over a
 * program's kernels, for no host speed. */
#define TT__OUT_OF_LINE static __attribute__((noinline, unused))

/* The place of work item x in its core's range of `items` split over `ncores` cores (core k runs
 * [k * items / ncores, (k + 1) * items / ncores)): items at one place run in the same wave. */
static inline int64_t tt__wave(int64_t x, int64_t items, int64_t ncores) {
  return x - (((x + 1) * ncores + items - 1) / items - 1) * items / ncores;
}
/* Marks the panels a product's work item `it` receives by multicast, before its engine call:
 * A's [alo, ahi) when an earlier item of its block row (t - k mb, k >= 1) runs in the same wave (at
 * the same place in its core's range of items), B's [blo, bhi) when `brx` says so (-1: when an
 * earlier item of its block column does); the other slot is unmarked. The runtime's (dma.c), not
 * compiled into every unit of every kernel library: there, with the first-item reads and the
 * short runs' counting (now the DMA engine's), such helpers were 5% of the C compiler's work
 * on a transformer's forward pass (lower.py's _multicast says who calls it). */
static inline void tt_multicast_mark(const tt_core *c, int64_t it, int64_t items, int64_t mb, int64_t t, int brx,
                                     const void *alo, const void *ahi, const void *blo, const void *bhi) {
  c->multicast_mark(c, it, items, mb, t, brx, alo, ahi, blo, bhi);
}
/* The DMA engine (the runtime's dma.c): `rows` runs of `count` elements of `esize` bytes between
 * the launch's operand `op` (ops[op], from element `index`, runs `dram_pitch` elements apart, each
 * element `stride` apart: 0 is one element, as a broadcast reads it, moved once) and a dense page
 * in SRAM (runs `sram_pitch` apart): a tile, or a block of rows, is one transfer, as a NoC moves a
 * 2-D block. TT_DMA_WRITE: SRAM to DRAM (else DRAM to SRAM); TT_DMA_STREAM: a write whose
 * contiguous runs go to DRAM by non-temporal stores, around the host's caches (the compiler asks
 * for it for outputs far larger than those caches; such a kernel calls tt_dma_stream_fence()
 * before it returns); TT_DMA_COUNT_ONLY: a read whose bytes the kernel moves itself, only counted,
 * as tt_dma_read_counted counts it at ops[op] + index. The bytes are counted on the core
 * (tt_dma_count). The transfer code is the runtime's, compiled once, not in every kernel library:
 * there it was an eighth of the C compiler's time over a training step's program (it is
 * compiled once per unit). A call site is
 * one call with constants and one index: a pointer per operand would stay live across every call
 * of the kernel, and the C compiler's register allocation around those pointers was about half
 * of what the DMA call sites cost it (render.py). */
enum { TT_DMA_WRITE = 1, TT_DMA_STREAM = 2, TT_DMA_COUNT_ONLY = 4 };
static inline void tt_dma_read_op(const tt_core *c, void *const *ops, int op, int64_t index, void *sram_dst,
                                  int64_t sram_pitch, int64_t dram_pitch, uint32_t esize, int64_t rows,
                                  int64_t count, int64_t stride) {
  c->dma_op(c, ops, op, index, sram_dst, sram_pitch, dram_pitch, esize, rows, count, stride, 0);
}
static inline void tt_dma_write_op(const tt_core *c, void *const *ops, int op, int64_t index, const void *sram_src,
                                   int64_t sram_pitch, int64_t dram_pitch, uint32_t esize, int64_t rows,
                                   int64_t count, int64_t stride, int stream) {
  c->dma_op(c, ops, op, index, (void *)(uintptr_t)sram_src, sram_pitch, dram_pitch, esize, rows, count, stride,
            TT_DMA_WRITE | (stream ? TT_DMA_STREAM : 0));
}
/* One short contiguous run (rows 1, stride 1) whose length is a constant at the call site: the
 * compiler (render.py's SHORT_RUN_BYTES) emits these for runs that fit a few vector moves, such
 * as a stencil's 64-element run per tap. The copy is made here, fixed-size moves inline, and
 * counted by the runtime's counting call, as the engine counts the same transfer. Such kernels issue about
 * ten of these per output row; through the engine (a call through a pointer, then its generic
 * row loop) they took 1.35x as long on one host thread. */
static inline void tt__dma_at(const tt_core *c, const void *dram, uint64_t bytes) {
  c->dma_counted(c, dram, 1, 1, (int64_t)bytes, 1);
}
static inline void tt_dma_read_run(const tt_core *c, void *const *ops, int op, int64_t index, void *sram_dst,
                                   uint32_t esize, int64_t count) {
  const char *src = (const char *)ops[op] + index * (int64_t)esize;
  memcpy(sram_dst, src, (size_t)(count * (int64_t)esize));
  tt__dma_at(c, src, (uint64_t)(count * (int64_t)esize));
}
static inline void tt_dma_write_run(const tt_core *c, void *const *ops, int op, int64_t index, const void *sram_src,
                                    uint32_t esize, int64_t count) {
  char *dst = (char *)ops[op] + index * (int64_t)esize;
  memcpy(dst, sram_src, (size_t)(count * (int64_t)esize));
  tt__dma_at(c, dst, (uint64_t)(count * (int64_t)esize));
}
/* One strided run between a DRAM address and a dense SRAM run. */
static inline void tt_dma_read_strided(const tt_core *c, void *sram_dst, const void *dram_src, uint32_t esize,
                                       int64_t count, int64_t stride) {
  void *const op = (void *)(uintptr_t)dram_src;
  c->dma_op(c, &op, 0, 0, sram_dst, 0, 0, esize, 1, count, stride, 0);
}
static inline void tt_dma_write_strided(const tt_core *c, void *dram_dst, const void *sram_src, uint32_t esize,
                                        int64_t count, int64_t stride) {
  void *const op = dram_dst;
  c->dma_op(c, &op, 0, 0, (void *)(uintptr_t)sram_src, 0, 0, esize, 1, count, stride, TT_DMA_WRITE);
}
/* The counting of a DMA read whose bytes the kernel moves itself (render.py: the host copies each
 * element into the page in the loop that first reads it, or, for a block every work item reads
 * alike, on the core's first item only). It counts exactly what the same read by tt_dma_read_op
 * counts (esize, rows, count, stride at dram_src), so the device model sees the same transfer.
 * The runtime's too: inlined, its range tests at each of a training step's first-use reads were
 * a fifth of the C compiler's time over its kernels. */
static inline void tt_dma_read_counted(const tt_core *c, const void *dram_src, uint32_t esize, int64_t rows,
                                       int64_t count, int64_t stride) {
  c->dma_counted(c, dram_src, esize, rows, count, stride);
}
/* Orders a kernel's streamed (weakly ordered) stores before whatever runs next. */
static inline void tt_dma_stream_fence(void) {
#if (defined(__SSE__) || defined(__AVX__)) && defined(__GNUC__)
  __builtin_ia32_sfence();
#endif
}

/* Read-ahead for a coming DMA read of `count` elements of `esize` bytes at element `index` of
 * `dram` (none when count <= 0, as past the end of an operand): the host fetches the lines
 * into its caches while the core computes. Moves no data, counts nothing. */
/* noipa: the body has no effect the C compiler can see (prefetches only), so without it gcc's
 * interprocedural analysis marks the function const and deletes every call. */
static __attribute__((noinline, noipa, unused)) void tt_dma_prefetch_block(const void *dram, int64_t index, uint32_t esize, int64_t count, int64_t rows,
                                         int64_t pitch) {
  if (count <= 0) return;
  for (int64_t r = 0; r < rows; ++r) {
    const char *p = (const char *)dram + (index + r * pitch) * (int64_t)esize;
    for (int64_t i = 0; i < count * (int64_t)esize; i += 64) __builtin_prefetch(p + i, 0, 3);
  }
}
static inline void tt_dma_prefetch(const void *dram, int64_t index, uint32_t esize, int64_t count) {
  tt_dma_prefetch_block(dram, index, esize, count, 1, 0);
}
/* The one cache line holding element `index`, asked for from inside a hot loop (one instruction
 * where a call per line would cost more than it saves), into the host's L2 rather than L1: the
 * line is wanted a whole run later, and in L1 it would displace the pages being worked on. The
 * address may lie past the operand (the run after the last): a prefetch never faults, and the
 * address is formed as an integer so no pointer goes out of its object. */
static inline void tt_dma_prefetch_line(const void *dram, int64_t index, uint32_t esize) {
  __builtin_prefetch((const void *)((uintptr_t)dram + (uintptr_t)(index * (int64_t)esize)), 0, 1);
}

/* Vector engine: a kernel reports the tile-wide instructions it issued (the cost model's
 * compute time is built from these events). */
static inline void tt_vector_ops(const tt_core *c, uint64_t n) { c->counters[TT_CORE_VECTOR_OPS] += n; }
/* Adds a kernel's event counts to its core's counters, for a kernel that counts in a local array
 * (fused_loop.py's) and adds it once at the end, through this one out-of-line copy. (Each core's
 * counters have a cache line of their own, so other kernels count in place.) */
TT__OUT_OF_LINE void tt_core_add_counters(const tt_core *c, const uint64_t *counts) {
  for (int i = 0; i < TT_CORE_NCOUNTERS; ++i) c->counters[i] += counts[i];
}

/* ---------------------------------------------------------------- circular buffers
 * As on a Tensix core: a ring of `npages` pages in the core's SRAM between a producer (the DMA
 * reader, or compute) and a consumer (compute, or the DMA writer). The producer reserves the
 * back page, fills it and pushes it; the consumer waits for the front page, uses it and pops
 * it. A core here runs its reader, compute and writer in program order, so a wait on an empty
 * ring or a reserve on a full one would hang a real core: it is counted as a fault (the launch
 * then fails) and the call returns the page anyway. */
typedef struct tt_cb {
  char *base;
  uint64_t page_bytes;
  uint32_t npages, head, tail;
} tt_cb;
TT__OUT_OF_LINE void tt_cb_init(const tt_core *c, tt_cb *cb, uint64_t sram_offset, uint64_t page_bytes, uint32_t npages) {
  cb->base = (char *)c->sram + sram_offset;
  cb->page_bytes = page_bytes;
  cb->npages = npages ? npages : 1;
  cb->head = cb->tail = 0;
  if (sram_offset + page_bytes * cb->npages > c->sram_bytes) c->counters[TT_CORE_FAULTS]++;
}
TT__OUT_OF_LINE void *tt_cb_reserve_back(const tt_core *c, tt_cb *cb) {
  if (cb->tail - cb->head >= cb->npages) c->counters[TT_CORE_FAULTS]++;
  return cb->base + (uint64_t)(cb->tail % cb->npages) * cb->page_bytes;
}
static inline void tt_cb_push_back(tt_cb *cb) { cb->tail++; }
TT__OUT_OF_LINE void *tt_cb_wait_front(const tt_core *c, tt_cb *cb) {
  if (cb->tail == cb->head) c->counters[TT_CORE_FAULTS]++;
  return cb->base + (uint64_t)(cb->head % cb->npages) * cb->page_bytes;
}
static inline void tt_cb_pop_front(tt_cb *cb) { cb->head++; }

/* ---------------------------------------------------------------- matrix engine
 * The engine lives in the runtime (built once, for every instruction-set level it may meet,
 * and chosen for the host when a device opens), not in each kernel library: a program then
 * compiles only its own loops, and calls the engine through its core.
 *
 * tt_matmul_f32:  C[i*c_rs + j] = sum_k A[i*a_rs + k*a_cs] * B[k*b_rs + j*b_cs]
 *   for 0<=i<M, 0<=j<N (overwrites C; K==0 writes zeros). Any strides (row/col), so transposed
 *   operands need no copy: the engine packs blocks into the core's SRAM (it uses at most
 *   TT_MM_SRAM(core->sram_bytes) from the start of core->sram, blocking K and N to fit; a kernel
 *   may use the rest, and declares in its launch's sram_bytes how much it uses in all).
 * tt_matmul_bf16: same with bf16 inputs (raw uint16_t bits), f32 accumulate, f32 C.
 * Both add to the core's TT_CORE_MATRIX_TILES and TT_CORE_DMA_BYTES counters.
 */
static inline void tt_matmul_f32(const tt_core *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t a_rs,
                                 int64_t a_cs, const float *B, int64_t b_rs, int64_t b_cs, float *C, int64_t c_rs) {
  c->matmul_f32(c, M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, c_rs);
}
static inline void tt_matmul_bf16(const tt_core *c, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                                  int64_t a_rs, int64_t a_cs, const uint16_t *B, int64_t b_rs, int64_t b_cs,
                                  float *C, int64_t c_rs) {
  c->matmul_bf16(c, M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, c_rs);
}
#define TT_MM_SRAM_BYTES (768u * 1024u)
/* The engine's share of a core's SRAM: half of it, at most TT_MM_SRAM_BYTES (the compiler
 * computes the same to size a kernel's own blocks after it). */
#define TT_MM_SRAM(sram_bytes) ((sram_bytes) / 2 < TT_MM_SRAM_BYTES ? (sram_bytes) / 2 : (uint64_t)TT_MM_SRAM_BYTES)
/* The least SRAM per core a device may have: the engine blocks down to it, slower. */
#define TT_MIN_SRAM_PER_CORE (64u * 1024u)

/* ---------------------------------------------------------------- bf16 helpers */
static inline float tt_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* Round to nearest even; NaNs stay NaN (quieted) instead of rounding into infinity. */
static inline uint16_t tt_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* ---------------------------------------------------------------- data movement engine
 * tt_transpose8x8_b32: dst[j * dst_stride + i] = src[i * src_stride + j] for 0 <= i, j < 8, on
 * 32-bit elements (any 4-byte type), through registers (the device transposes tiles in its
 * unpacker; here: 24 shuffles of eight 8-lane vectors, which GCC lowers for the -march). */
typedef uint32_t tt__v8u __attribute__((vector_size(32)));
typedef int32_t tt__v8i __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) void tt_transpose8x8_b32(const void *src, int64_t src_stride, void *dst, int64_t dst_stride) {
  const uint32_t *s = (const uint32_t *)src;
  uint32_t *d = (uint32_t *)dst;
  tt__v8u r[8], t[8], u[8];
  _Pragma("GCC unroll 8") for (int i = 0; i < 8; ++i) memcpy(&r[i], s + i * src_stride, 32);
  const tt__v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
  const tt__v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
  const tt__v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
  _Pragma("GCC unroll 4") for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
  }
  _Pragma("GCC unroll 2") for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shuffle(t[i], t[i + 2], lo2);
    u[i + 1] = __builtin_shuffle(t[i], t[i + 2], hi2);
    u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], lo2);
    u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], hi2);
  }
  _Pragma("GCC unroll 4") for (int i = 0; i < 4; ++i) {
    tt__v8u a = __builtin_shuffle(u[i], u[i + 4], lo4), b = __builtin_shuffle(u[i], u[i + 4], hi4);
    memcpy(d + i * dst_stride, &a, 32);
    memcpy(d + (i + 4) * dst_stride, &b, 32);
  }
}

/* ---------------------------------------------------------------- block-float unpacker
 * bfp8 (Tenstorrent's bfloat8_b; tt_xla/bfp8.py is the host's copy of the format): a 32x32 tile
 * is 64 shared exponents (one per 16-value face row; faces top-left, top-right, bottom-left,
 * bottom-right) then 1024 sign+7-bit-magnitude bytes in the same order: TT_BFP8_TILE_BYTES.
 * tt_unpack_bfp8 expands ktiles x ntiles tiles (tile (i, j) at tiles + (i * tile_pitch + j) *
 * TT_BFP8_TILE_BYTES, in SRAM) into dst rows dst_rs elements apart: bf16 bits (to_bf16) or f32.
 * As a Tensix unpacker, which converts formats on the way to the math engine, it costs no
 * modeled time. */
#define TT_BFP8_TILE_BYTES 1088
static inline void tt_unpack_bfp8(const uint8_t *tiles, int64_t ktiles, int64_t ntiles, int64_t tile_pitch,
                                  void *dst, int64_t dst_rs, int to_bf16) {
  for (int64_t ti = 0; ti < ktiles; ++ti)
    for (int64_t tj = 0; tj < ntiles; ++tj) {
      const uint8_t *t = tiles + (ti * tile_pitch + tj) * TT_BFP8_TILE_BYTES;
      for (int f = 0; f < 4; ++f)
        for (int r = 0; r < 16; ++r) {
          const uint32_t e = t[f * 16 + r];
          const uint8_t *v = t + 64 + f * 256 + r * 16;
          const int64_t at = (ti * 32 + (f >> 1) * 16 + r) * dst_rs + tj * 32 + (f & 1) * 16;
          for (int q = 0; q < 16; ++q) {
            const uint32_t sign = (uint32_t)(v[q] >> 7) << 31, man = v[q] & 0x7fu;
            uint32_t bits = sign;
            if (man) { /* normalize: the leading one to the hidden bit, the exponent down by as much */
              const uint32_t lead = 6u - (31u - (uint32_t)__builtin_clz(man));
              bits |= ((e - lead) << 23) | (((man << (lead + 1)) & 0x7fu) << 16);
            }
            if (to_bf16) ((uint16_t *)dst)[at + q] = (uint16_t)(bits >> 16);
            else memcpy((float *)dst + at + q, &bits, 4);
          }
        }
    }
}

#endif /* TTRT_KERNEL_H */
