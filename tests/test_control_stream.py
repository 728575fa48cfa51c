"""The runtime's control stream from Python: a data-dependent loop runs inside one launch; a loop
that never ends stops at the step budget or on cancel from another thread, with a DeviceError, and
the device is usable afterwards."""

import threading
import time

import numpy as np
import pytest

import tt_xla.runtime as rt
from tt_xla.runtime import toolchain

# State int64 {x, steps, cond}: `while (x != 1) { x = collatz(x); steps++ }`, the condition
# computed on the device and read by the stream's branch.
COLLATZ_SRC = r"""
#include "ttrt_kernel.h"
static void cond(const tt_core *c, void *const *ops, int64_t b, int64_t e) {
  int64_t *s = ops[0]; (void)c; (void)e;
  if (b == 0) s[2] = s[0] != 1;
}
static void body(const tt_core *c, void *const *ops, int64_t b, int64_t e) {
  int64_t *s = ops[0]; (void)c; (void)e;
  if (b == 0) { s[0] = s[0] % 2 ? 3 * s[0] + 1 : s[0] / 2; s[1]++; }
}
static const uint64_t bindings[2] = {24, 8};
static const tt_operand ops[1] = {{0, TT_READ | TT_WRITE, 0, 24}};
static const tt_launch launches[2] = {{"cond", cond, 1, 1, ops, 1, 0, 0}, {"body", body, 1, 1, ops, 1, 0, 0}};
static const tt_ctl steps[5] = {
  {TT_CTL_LAUNCH, 0, 0, 0, 0, 0, 0, 0, 0},
  {TT_CTL_BRANCH, 4, 0, 0, 16, 0, 8, TT_BRANCH_IF_ZERO, 0},
  {TT_CTL_LAUNCH, 1, 0, 0, 0, 0, 0, 0, 0},
  {TT_CTL_JUMP, 0, 0, 0, 0, 0, 0, 0, 0},
  {TT_CTL_COPY, 0, 1, 0, 0, 8, 8, 0, 0},
};
static const tt_program_desc desc = {TT_ABI_VERSION, 2, bindings, 2, launches, 5, steps};
const tt_program_desc *tt_program_entry(void) { return &desc; }
"""


def collatz_steps(x: int) -> int:
    n = 0
    while x != 1:
        x, n = (3 * x + 1 if x % 2 else x // 2), n + 1
    return n


@pytest.fixture
def loaded():
    d = rt.Device(rt.DeviceConfig(host_threads=2))
    prog = d.load_program(toolchain.build_kernel_library(COLLATZ_SRC))
    state, out = d.alloc(24), d.alloc(8)
    yield d, prog, state, out
    d.close()


def run(prog, state, out, x: int) -> int:
    state.write(np.array([x, 0, 0], np.int64))
    prog.launch([state, out])
    return int(np.frombuffer(out.read(), np.int64)[0])


def test_data_dependent_loop_on_device(loaded):
    d, prog, state, out = loaded
    for x in (1, 2, 7, 27, 97):
        d.reset_counters()
        assert run(prog, state, out, x) == collatz_steps(x)
        k = d.counters()
        # one program launch; every iteration's kernels counted
        assert k["programs_launched"] == 1 and k["kernels_launched"] == 2 * collatz_steps(x) + 1
        assert prog.launch_stats(1)["vector_ops"] == collatz_steps(x)


def test_step_budget_counts_every_step(loaded):
    d, prog, state, out = loaded
    # x = 7: 16 iterations of (cond, branch, body, jump), then cond, branch, copy: 67 steps
    d.set_step_budget(67)
    assert run(prog, state, out, 7) == 16
    d.set_step_budget(66)
    with pytest.raises(rt.DeviceError, match="step budget of 66"):
        run(prog, state, out, 7)


def test_budget_exceeded(loaded):
    d, prog, state, out = loaded
    d.set_step_budget(50)
    with pytest.raises(rt.DeviceError, match="step budget of 50") as e:
        run(prog, state, out, 27)  # 111 iterations
    assert e.value.status == "TT_ERR_STEP_BUDGET"
    d.set_step_budget(0)
    assert run(prog, state, out, 27) == 111


def test_cancel_from_another_thread(loaded):
    d, prog, state, out = loaded
    d.cancel()  # nothing running: no effect
    assert run(prog, state, out, 6) == 8
    # x = 0 never reaches 1: the loop spins on the device until cancelled
    t = threading.Timer(0.2, d.cancel)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(rt.DeviceError, match="cancelled") as e:
        run(prog, state, out, 0)
    t.join()
    assert e.value.status == "TT_ERR_CANCELLED" and time.monotonic() - t0 < 60
    assert run(prog, state, out, 27) == 111
