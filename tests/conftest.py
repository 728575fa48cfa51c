import os
import sys

# tests/util.py is imported as `util` by the test modules
sys.path.insert(0, os.path.dirname(__file__))
# tools/ (the conformance instruments) is imported as `tools`; appended, so an installed tt_xla
# (what CI tests) still comes before the source tree's
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Tests patch the compiler at run time (a lowering, a block size) where its source is unchanged:
# the lowered-kernel store (compiler/kernel_store.py, keyed by that source) must neither serve nor
# keep their kernels. tests/test_kernel_store.py turns it on where it tests it;
# TT_XLA_KERNEL_STORE=1 runs the whole suite with it.
os.environ.setdefault("TT_XLA_KERNEL_STORE", "0")

# Every kernel the suite compiles is checked against the dataflow rule of the loop IR: DRAM is
# touched only by DMA (tests/test_loopir.py). A violation fails the session, naming the kernel.
_dma_violations: list[str] = []


def pytest_configure(config):
    if os.environ.get("TT_XLA_OPS_LOG"):  # the op-support table's input (tools/ops_table.py)
        from tools.ops_table import OpsLog
        config.pluginmanager.register(OpsLog(os.environ["TT_XLA_OPS_LOG"]))  # its configure runs now
    import tt_xla.compiler as compiler
    from tt_xla.compiler.loopir import check_dma_only
    lower = compiler.lower_kernel

    def checked(*args, **kwargs):
        lk = lower(*args, **kwargs)
        _dma_violations.extend(check_dma_only(lk))
        return lk
    compiler.lower_kernel = checked
    compiler.CHECK_KERNEL_KEYS = True  # every kernel a structural key serves is lowered afresh and compared


def pytest_sessionfinish(session, exitstatus):
    if _dma_violations:
        print("\nkernels touching DRAM outside DMA:\n  " + "\n  ".join(_dma_violations[:20]))
        session.exitstatus = 1
