/* test_kernels.c: a kernel library for the runtime's C tests.
 * Descriptor 0 is a valid program (elementwise add, f32 matmul, bf16 matmul with transposed B);
 * the others are each broken in one way. The test selects one by writing tt_test_variant
 * through its own dlopen of this library before the runtime loads it (same handle). Variants
 * past the static table are built when asked for: tables that lie outside the library or run
 * past its end, a "kernel" pointing at data. Variants from TT_TEST_CTL_FIRST on have control
 * streams: a while loop, a spin, a launch loop that never ends, then streams broken in one way. */
#include "ttrt_kernel.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define N_ADD 1000
#define MM_M 67
#define MM_N 45
#define MM_K 131
#define MM_ROWS 8 /* rows of C per work item */

int tt_test_variant = 0;

static void add_kernel(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  const float *x = ops[0], *y = ops[1];
  float *z = ops[2];
  (void)c;
  for (int64_t i = begin; i < end; i++) z[i] = x[i] + y[i];
}

static void mm_f32_kernel(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  const float *A = ops[0], *B = ops[1];
  float *C = ops[2];
  int64_t r0 = begin * MM_ROWS, r1 = end * MM_ROWS < MM_M ? end * MM_ROWS : MM_M;
  tt_matmul_f32(c, r1 - r0, MM_N, MM_K, A + r0 * MM_K, MM_K, 1, B, MM_N, 1, C + r0 * MM_N, MM_N);
}

/* B is stored transposed (N x K): element (k, j) is at j*K + k, i.e. b_rs = 1, b_cs = K. */
static void mm_bf16_kernel(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  const uint16_t *A = ops[0], *Bt = ops[1];
  float *C = ops[2];
  int64_t r0 = begin * MM_ROWS, r1 = end * MM_ROWS < MM_M ? end * MM_ROWS : MM_M;
  tt_matmul_bf16(c, r1 - r0, MM_N, MM_K, A + r0 * MM_K, MM_K, 1, Bt, 1, MM_K, C + r0 * MM_N, MM_N);
}

static const uint64_t bindings[9] = {
    N_ADD * 4, N_ADD * 4, N_ADD * 4, MM_M * MM_K * 4, MM_K * MM_N * 4, MM_M * MM_N * 4,
    MM_M * MM_K * 2, MM_N * MM_K * 2, MM_M * MM_N * 4};
#define OP(b, acc) {b, acc, 0, bindings[b]}
static const tt_operand add_ops[3] = {OP(0, TT_READ), OP(1, TT_READ), OP(2, TT_WRITE)};
static const tt_operand mm_ops[3] = {OP(3, TT_READ), OP(4, TT_READ), OP(5, TT_WRITE)};
static const tt_operand mmh_ops[3] = {OP(6, TT_READ), OP(7, TT_READ), OP(8, TT_WRITE)};
static const tt_operand bad_binding_ops[1] = {{9, TT_READ, 0, 4}};
static const tt_operand bad_range_ops[1] = {{0, TT_READ, 8, N_ADD * 4}};
#define MM_ITEMS ((MM_M + MM_ROWS - 1) / MM_ROWS)
#define MM_TILES (3 * 2 * 5)

static const tt_launch good[3] = {
    {"add", add_kernel, N_ADD, 3, add_ops, 1, 0, 0},
    {"mm_f32", mm_f32_kernel, MM_ITEMS, 3, mm_ops, 0, MM_TILES, TT_MM_SRAM_BYTES},
    {"mm_bf16", mm_bf16_kernel, MM_ITEMS, 3, mmh_ops, 0, MM_TILES, TT_MM_SRAM_BYTES},
};
static const tt_launch null_fn[1] = {{"null", NULL, 1, 0, NULL, 0, 0, 0}};
static const tt_launch neg_items[1] = {{"neg", add_kernel, -1, 0, NULL, 0, 0, 0}};
static const tt_launch bad_binding[1] = {{"bad_binding", add_kernel, 1, 1, bad_binding_ops, 0, 0, 0}};
static const tt_launch bad_range[1] = {{"bad_range", add_kernel, 1, 1, bad_range_ops, 0, 0, 0}};
static const tt_launch many_ops[1] = {{"many", add_kernel, 1, 1u << 20, add_ops, 0, 0, 0}};
static const tt_launch too_much_sram[1] = {{"sram", add_kernel, 1, 3, add_ops, 0, 0, 1ull << 40}};

/* Control streams over a state of int32 {i, n, cond, unused} (binding 0) and an int32 out (binding
 * 1): `while (i < n) i++; out = i`, as the compiler lowers a while loop. */
static void cond_kernel(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  int32_t *st = ops[0];
  (void)c, (void)end;
  if (begin == 0) st[2] = st[0] < st[1];
}
static void inc_kernel(const tt_core *c, void *const *ops, int64_t begin, int64_t end) {
  int32_t *st = ops[0];
  (void)c, (void)end;
  if (begin == 0) st[0] += 1;
}
static const uint64_t ctl_bindings[2] = {16, 4};
static const tt_operand state_ops[1] = {{0, TT_READ | TT_WRITE, 0, 16}};
static const tt_launch ctl_launches[2] = {
    {"cond", cond_kernel, 1, 1, state_ops, 1, 0, 0},
    {"inc", inc_kernel, 1, 1, state_ops, 1, 0, 0},
};
#define STEP(op, arg, b, sb, off, soff, bytes, flags) {op, arg, b, sb, off, soff, bytes, flags, 0}
static const tt_ctl while_steps[6] = {
    STEP(TT_CTL_LAUNCH, 0, 0, 0, 0, 0, 0, 0),                   /* 0: cond = i < n */
    STEP(TT_CTL_BRANCH, 4, 0, 0, 8, 0, 4, TT_BRANCH_IF_ZERO),   /* 1: if !cond goto 4 */
    STEP(TT_CTL_LAUNCH, 1, 0, 0, 0, 0, 0, 0),                   /* 2: i++ */
    STEP(TT_CTL_JUMP, 0, 0, 0, 0, 0, 0, 0),                     /* 3: goto 0 */
    STEP(TT_CTL_COPY, 0, 1, 0, 0, 0, 4, 0),                     /* 4: out = i */
    STEP(TT_CTL_HALT, 0, 0, 0, 0, 0, 0, 0),                     /* 5 */
};
static const tt_ctl spin_steps[1] = {STEP(TT_CTL_JUMP, 0, 0, 0, 0, 0, 0, 0)};
static const tt_ctl launch_loop_steps[2] = {STEP(TT_CTL_LAUNCH, 1, 0, 0, 0, 0, 0, 0), STEP(TT_CTL_JUMP, 0, 0, 0, 0, 0, 0, 0)};
static const tt_ctl bad_target[1] = {STEP(TT_CTL_JUMP, 2, 0, 0, 0, 0, 0, 0)};
static const tt_ctl bad_launch[1] = {STEP(TT_CTL_LAUNCH, 2, 0, 0, 0, 0, 0, 0)};
static const tt_ctl bad_width[1] = {STEP(TT_CTL_BRANCH, 0, 0, 0, 0, 0, 3, 0)};
static const tt_ctl bad_scalar[1] = {STEP(TT_CTL_BRANCH, 0, 0, 0, 16, 0, 4, 0)};
static const tt_ctl bad_copy[1] = {STEP(TT_CTL_COPY, 0, 1, 0, 0, 12, 8, 0)};
static const tt_ctl bad_op[1] = {STEP(99, 0, 0, 0, 0, 0, 0, 0)};
/* a launch that weighs 100 steps (a kernel running up to 100 loop iterations inside), in a spin */
static const tt_ctl weighed_loop_steps[2] = {STEP(TT_CTL_LAUNCH, 1, 0, 0, 0, 0, 100, 0), STEP(TT_CTL_JUMP, 0, 0, 0, 0, 0, 0, 0)};
static const tt_ctl bad_weight[1] = {STEP(TT_CTL_LAUNCH, 0, 0, 0, 0, 0, (1u << 20) + 1, 0)};

static const tt_program_desc descs[] = {
    {TT_ABI_VERSION, 9, bindings, 3, good, 0, NULL},
    {TT_ABI_VERSION + 1, 9, bindings, 3, good, 0, NULL},
    {TT_ABI_VERSION, 9, bindings, 1, null_fn, 0, NULL},
    {TT_ABI_VERSION, 9, bindings, 1, neg_items, 0, NULL},
    {TT_ABI_VERSION, 9, bindings, 1, bad_binding, 0, NULL},
    {TT_ABI_VERSION, 9, bindings, 1, bad_range, 0, NULL},
    {TT_ABI_VERSION, 9, bindings, 1, many_ops, 0, NULL},
    {TT_ABI_VERSION, 9, bindings, 1, too_much_sram, 0, NULL},
};

/* Variant TT_TEST_CTL_FIRST + i is ctl_descs[i]; the two after the table are built. */
#define TT_TEST_CTL_FIRST 16
static const tt_program_desc ctl_descs[] = {
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 6, while_steps},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, spin_steps},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 2, launch_loop_steps},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_target},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_launch},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_width},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_scalar},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_copy},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_op},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 2, weighed_loop_steps},
    {TT_ABI_VERSION, 2, ctl_bindings, 2, ctl_launches, 1, bad_weight},
};

/* Built variants keep their heap blocks reachable from statics (no leak reports). */
static tt_program_desc built;
static tt_launch built_launch[1];
static void *heap_block;

__attribute__((destructor)) static void free_heap_block(void) { free(heap_block); }

static void *on_heap(const void *src, size_t n) {
  free(heap_block);
  heap_block = malloc(n);
  if (heap_block) memcpy(heap_block, src, n);
  return heap_block;
}

const tt_program_desc *tt_program_entry(void) {
  int n = (int)(sizeof descs / sizeof descs[0]);
  if (tt_test_variant >= TT_TEST_CTL_FIRST) {
    const int i = tt_test_variant - TT_TEST_CTL_FIRST, nc = (int)(sizeof ctl_descs / sizeof ctl_descs[0]);
    if (i < nc) return &ctl_descs[i];
    built = ctl_descs[0];
    if (i == nc) { /* a step table outside the library */
      built.steps = on_heap(while_steps, sizeof while_steps);
      return &built;
    }
    if (i == nc + 1) { /* more steps than the table holds: runs past the library's mapped sections */
      built.nsteps = 1u << 23;
      return &built;
    }
    return NULL;
  }
  if (tt_test_variant >= 0 && tt_test_variant < n) return &descs[tt_test_variant];
  built = descs[0];
  built_launch[0] = good[0];
  switch (tt_test_variant - n) {
  case 0: /* the descriptor itself on the heap */
    return on_heap(&descs[0], sizeof descs[0]);
  case 1: /* more launches than the table holds: runs past the library's mapped sections */
    built.nlaunches = 1u << 19;
    return &built;
  case 2: /* more bindings than the table holds */
    built.nbindings = 60000;
    return &built;
  case 3: /* a kernel function that points at data */
    built_launch[0].fn = (tt_kernel_fn)(uintptr_t)bindings;
    break;
  case 4: /* a name outside the library */
    built_launch[0].name = on_heap("heap", 5);
    break;
  case 5: /* an operand table outside the library */
    built_launch[0].operands = on_heap(add_ops, sizeof add_ops);
    break;
  case 6: /* a misaligned descriptor */
    return (const tt_program_desc *)((const char *)&descs[0] + 1);
  default:
    return NULL;
  }
  built.nlaunches = 1;
  built.launches = built_launch;
  return &built;
}
