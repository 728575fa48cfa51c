/* ttrt.h: host API of the tt-xla software accelerator runtime.
 *
 * Driver-API style: every call returns a tt_status; all state lives in a tt_device (the only
 * process-wide state is the set of device ids in use). Buffers and programs are 64-bit handles
 * carrying a kind, their device's id, a slot and a generation, so a stale, freed, forged,
 * wrong-kind or other device's handle is refused with TT_ERR_INVALID_HANDLE. A slot whose
 * generations run out is retired, never reused: a stale handle never becomes valid again.
 *
 * Threading: a device may be used from any number of threads at once. Every call takes the
 * device's lock for its duration, so calls on one device are serialized (a launch included: a
 * second launch, alloc or read waits until it is done); different devices are independent.
 * tt_device_error reports the last failed call of the calling thread. tt_device_close waits for
 * a call in progress on another thread; no call on the device may start after it. The runtime's
 * own worker threads run kernels concurrently, one simulated core per host thread at a time.
 *
 * Ownership: the device owns every buffer and program created on it; tt_device_close frees
 * whatever is still alive. tt_program_launch is synchronous.
 */
#ifndef TTRT_H
#define TTRT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_status {
  TT_OK = 0,
  TT_ERR_INVALID_ARGUMENT = 1,
  TT_ERR_INVALID_HANDLE = 2,
  TT_ERR_OUT_OF_MEMORY = 3,
  TT_ERR_OUT_OF_RANGE = 4,
  TT_ERR_BAD_PROGRAM = 5,
  TT_ERR_LOAD_FAILED = 6,
  TT_ERR_INTERNAL = 7,
  TT_ERR_STEP_BUDGET = 8, /* a control stream ran more steps than the device's step budget */
  TT_ERR_CANCELLED = 9    /* a control stream was stopped by tt_device_cancel */
} tt_status;

typedef struct tt_device tt_device;
typedef uint64_t tt_buffer;  /* 0 is never a valid handle */
typedef uint64_t tt_program; /* 0 is never a valid handle */

typedef struct tt_device_config {
  uint32_t grid_x, grid_y;     /* 8, 8 (grid_x * grid_y <= 4096) */
  uint64_t sram_per_core;      /* 1499136; must be >= TT_MIN_SRAM_PER_CORE of ttrt_kernel.h */
  uint64_t dram_bytes;         /* 12 GiB: capacity limit for live buffers */
  uint32_t host_threads;       /* 0 = number of online host cores */
  /* device cost model (the modeled accelerator, not the host) */
  double clock_ghz;            /* 1.0 */
  double dram_bytes_per_cycle; /* 288.0 * 0.833 (whole chip: the peak at the efficiency kernels reach) */
  uint32_t vector_tile_cycles; /* 32: one vector instruction over a 32x32 tile, per core (32 lanes) */
  uint32_t matrix_tile_cycles; /* 64: one 32x32x32 tile product with f32 operands, per core (HiFi4) */
  uint32_t launch_cycles;      /* 1720: fixed overhead per kernel launch */
  uint32_t matrix_tile_cycles_bf16; /* 32: the same with bf16 operands (HiFi2); 0 = matrix_tile_cycles */
  uint32_t noc_bytes_per_cycle; /* 32: a core's DMA to/from tensors placed in SRAM (TT_L1), per cycle; 0 = 32 */
} tt_device_config;

typedef struct tt_counters {
  uint64_t programs_launched, kernels_launched;
  uint64_t dram_bytes_read, dram_bytes_written;   /* declared READ / WRITE operand bytes of launches */
  uint64_t host_bytes_written, host_bytes_read;   /* tt_buffer_write / tt_buffer_read */
  uint64_t dma_bytes, matrix_tiles;               /* summed from core counters */
  uint64_t vector_ops;                            /* summed from launches' vector_ops */
  uint64_t modeled_cycles;                        /* device time under the cost model */
  uint64_t busy_ns;                               /* host wall time inside program launches */
  uint64_t dram_bytes_allocated, dram_bytes_peak; /* live user-visible buffer bytes, and peak */
  uint64_t noc_bytes;                             /* of dma_bytes, those to/from tensors placed in SRAM */
} tt_counters;

void tt_device_config_default(tt_device_config *cfg);
const char *tt_status_name(tt_status s);

tt_status tt_device_open(const tt_device_config *cfg /* NULL = default */, tt_device **out);
tt_status tt_device_close(tt_device *dev); /* frees every buffer and program still alive */
/* Message of this thread's last failed call on dev ("" if none); valid until its next failed call. */
const char *tt_device_error(const tt_device *dev);
tt_status tt_device_info(const tt_device *dev, tt_device_config *out); /* effective config */
/* The device's id (1..65535): unique among open devices, part of every handle it issues. */
tt_status tt_device_id(const tt_device *dev, uint32_t *out);

/* Buffer memory is 64-byte aligned and not initialized. 0 bytes is a valid size. */
tt_status tt_buffer_alloc(tt_device *dev, uint64_t bytes, tt_buffer *out);
tt_status tt_buffer_free(tt_device *dev, tt_buffer buf);
tt_status tt_buffer_size(tt_device *dev, tt_buffer buf, uint64_t *out);
tt_status tt_buffer_write(tt_device *dev, tt_buffer buf, uint64_t offset, const void *src, uint64_t bytes);
tt_status tt_buffer_read(tt_device *dev, tt_buffer buf, uint64_t offset, void *dst, uint64_t bytes);
/* Ranges may overlap (same buffer): behaves like memmove. */
tt_status tt_buffer_copy(tt_device *dev, tt_buffer dst, uint64_t dst_offset, tt_buffer src, uint64_t src_offset,
                         uint64_t bytes);

/* Zero-copy host access: the software device's DRAM is host memory, so a buffer can be read in
 * place and host memory can be bound without a copy. Both make the buffer read-only: writes and
 * copies into it, and launches binding it to a WRITE operand, are refused (TT_ERR_INVALID_ARGUMENT),
 * so no kernel ever writes into memory the host reads directly or owns.
 *
 * tt_buffer_map: *out = the buffer's memory, for host reads. The buffer gains a reference (each
 * tt_buffer_free drops one; the memory goes with the last), so it stays readable after its owner
 * frees it. Counted in host_bytes_read (what a real device would transfer).
 * tt_buffer_wrap: a read-only buffer over `bytes` of host memory at `host` (16-byte aligned), no
 * copy. The caller keeps that memory alive and unchanged until the buffer is freed (freeing does
 * not touch it). Counted in host_bytes_written and in the DRAM allocation figures, as a copy
 * would be (the modeled accelerator pays that transfer). */
tt_status tt_buffer_map(tt_device *dev, tt_buffer buf, const void **out);
tt_status tt_buffer_wrap(tt_device *dev, const void *host, uint64_t bytes, tt_buffer *out);

/* dlopen + TT_PROGRAM_ENTRY + descriptor validation: every count, table and function pointer of
 * the descriptor must lie inside the library's own mapped segments (tables readable, kernels
 * executable) before it is read; the validated descriptor is copied, so later writes to the
 * library's memory cannot change what runs. The library must stay on disk while loaded. */
tt_status tt_program_load(tt_device *dev, const char *library_path, tt_program *out);
tt_status tt_program_unload(tt_device *dev, tt_program prog);
/* Runs every launch of the program in order and returns when all are done. buffers[i] is bound
 * to binding i; nbuffers must equal the descriptor's nbindings, each buffer must belong to dev
 * (else TT_ERR_INVALID_HANDLE) and be at least binding_bytes[i] long (else TT_ERR_OUT_OF_RANGE);
 * nothing runs unless all are. Every operand range lies inside its binding's minimum size
 * (checked at load), so kernels only touch the bound buffers. */
tt_status tt_program_launch(tt_device *dev, tt_program prog, const tt_buffer *buffers, uint32_t nbuffers);
/* tt_program_launch with its buffers made in the same call (a jitted function's whole call):
 * for each binding i with buffers[i] == 0, host[i] != NULL wraps bytes[i] of host memory for this
 * launch only (as tt_buffer_wrap, freed before returning), host[i] == NULL allocates a fresh
 * buffer of bytes[i] bytes that is returned in buffers[i]. host and bytes may be NULL when no
 * binding is 0. On failure every buffer the call made is freed and buffers[] is as given. */
tt_status tt_program_execute(tt_device *dev, tt_program prog, tt_buffer *buffers, const void *const *host,
                             const uint64_t *bytes, uint32_t nbuffers);
tt_status tt_device_synchronize(tt_device *dev); /* launches are synchronous: a cheap barrier */
/* Control streams (see tt_ctl in ttrt_kernel.h). The step budget bounds the steps one
 * tt_program_launch may take (0 restores the default, TT_DEFAULT_STEP_BUDGET); a launch past it
 * fails with TT_ERR_STEP_BUDGET. tt_device_cancel may be called from any thread: the launch
 * running on dev stops at its next step with TT_ERR_CANCELLED (the kernel running then
 * completes); when none is running it does nothing. Either way the device stays usable. */
#define TT_DEFAULT_STEP_BUDGET (1ull << 26)
tt_status tt_device_set_step_budget(tt_device *dev, uint64_t steps);
tt_status tt_device_cancel(tt_device *dev);

/* What one launch of a program did the last time the program ran, from the cores' events. */
typedef struct tt_launch_stats {
  uint64_t modeled_cycles;   /* launch cost + the slowest core's max(compute, DMA at its DRAM share) */
  uint64_t dma_bytes, vector_ops, matrix_tiles;
  uint64_t sram_bytes;       /* declared SRAM per core */
  uint32_t cores;            /* cores that got work items */
  uint32_t memory_bound;     /* 1: DMA time bounds the slowest core; 0: compute does */
  uint64_t host_ns;          /* host wall time of the launch (its cores' work on the host threads) */
  uint64_t operand_bytes;    /* declared READ + WRITE DRAM operand bytes: the DRAM traffic it cannot avoid */
  uint64_t noc_bytes;        /* of dma_bytes, those to/from tensors placed in SRAM (TT_L1 operands) */
} tt_launch_stats;
tt_status tt_program_launch_stats(tt_device *dev, tt_program prog, uint32_t launch, tt_launch_stats *out);

/* What one core did in one launch of a program the last time it ran (zeros for a core that got
 * no work items): its compute and DMA time in modeled cycles (the two overlap on the core; the
 * launch takes its slowest core's max of them) and the events they came from. core < grid_x*grid_y. */
typedef struct tt_core_stats {
  uint64_t compute_cycles, dma_cycles;
  uint64_t dma_bytes, vector_ops, matrix_tiles;
} tt_core_stats;
tt_status tt_program_core_stats(tt_device *dev, tt_program prog, uint32_t launch, uint32_t core, tt_core_stats *out);

tt_status tt_device_counters(const tt_device *dev, tt_counters *out);
/* Zeroes everything except the allocation figures (peak := current). */
tt_status tt_device_reset_counters(tt_device *dev);

#ifdef __cplusplus
}
#endif
#endif /* TTRT_H */
