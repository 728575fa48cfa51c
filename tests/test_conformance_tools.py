"""The measuring instruments themselves (tools.outcome, tools.isolate) can tell a wrong answer
and a crash from a pass: otherwise the conformance tests could not fail."""
from __future__ import annotations

import os
import textwrap

import ml_dtypes
import numpy as np

from tools.isolate import run_isolated
from tools.outcome import CLEAR, CRASH, PASS, classify_error, compare_leaves, tolerance


def test_compare_accepts_equal_and_within_tolerance() -> None:
    x = np.array([1.0, np.nan, -np.inf, 0.0], np.float32)
    assert compare_leaves([x], [x.copy()]) is None
    assert compare_leaves([x * np.float32(1 + 1e-6)], [x]) is None
    b = np.array([1, 2], ml_dtypes.bfloat16)
    assert compare_leaves([b], [b]) is None
    assert compare_leaves([np.zeros((0, 3), np.int32)], [np.zeros((0, 3), np.int32)]) is None


def test_compare_rejects_mismatches() -> None:
    x = np.array([1.0, np.nan, 2.0], np.float32)
    assert "elements outside" in compare_leaves([np.array([1.0, 0.0, 2.0], np.float32)], [x])
    assert "elements outside" in compare_leaves([np.array([1.0, np.nan, np.inf], np.float32)], [x])
    assert "elements outside" in compare_leaves([x * np.float32(1.001)], [x])
    assert "dtype" in compare_leaves([x.astype(np.float16)], [x])
    assert "shape" in compare_leaves([x[:2]], [x])
    assert "elements differ" in compare_leaves([np.array([1, 3])], [np.array([1, 2])])
    assert "outputs" in compare_leaves([x, x], [x])
    assert tolerance(np.dtype(np.int8)) == (0.0, 0.0)


def test_classify_errors() -> None:
    from tt_xla.errors import UnsupportedError

    res = classify_error(UnsupportedError("not supported", op="stablehlo.sort"))
    assert (res.kind, res.op) == (CLEAR, "stablehlo.sort")
    assert classify_error(KeyError("x")).kind == CRASH
    assert classify_error(AssertionError()).kind == CRASH


def test_isolate_reports_crash_and_hang_and_goes_on(tmp_path, monkeypatch) -> None:
    (tmp_path / "fake_cases.py").write_text(textwrap.dedent("""
        import os, time
        from tools.outcome import Outcome
        def run_case(cid):
            if cid == "die":
                os.abort()
            if cid == "hang":
                time.sleep(60)
            if cid == "raise":
                raise KeyError(cid)
            return Outcome("pass")
    """))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    res = run_isolated("fake_cases", ["a", "die", "b", "hang", "raise", "c"], timeout=3)
    assert {k: r.kind for k, r in res.items()} == {
        "a": PASS, "die": CRASH, "b": PASS, "hang": CRASH, "raise": CRASH, "c": PASS}
    assert "worker died" in res["die"].detail and "timeout" in res["hang"].detail


def test_harness_edges_reach_float_inputs_only() -> None:
    from tools.harness import with_edges

    f, i = np.ones((4, 5), np.float32), np.arange(6, dtype=np.int32)
    ef, ei = with_edges([f, i])
    assert np.isnan(ef).sum() == 1 and np.isposinf(ef).sum() == 1 and np.signbit(ef[ef == 0]).any()
    assert (ei == i).all() and (f == 1).all()  # ints untouched, the input not modified in place


def test_unstable_sort_ties_may_come_out_in_either_order() -> None:
    from tools.outcome import same_up_to_tie_order

    keys = np.array([0, 0, 1, 1], np.int32)
    want = [keys, np.array([1.0, 2.0, 3.0, 4.0], np.float32)]
    swapped = [keys, np.array([2.0, 1.0, 4.0, 3.0], np.float32)]  # within the runs of equal keys
    moved = [keys, np.array([3.0, 2.0, 1.0, 4.0], np.float32)]    # 3.0 left its run
    other_keys = [np.array([0, 1, 0, 1], np.int32), want[1]]
    assert same_up_to_tie_order(swapped, want, 0, 1)
    assert not same_up_to_tie_order(moved, want, 0, 1)
    assert not same_up_to_tie_order(other_keys, want, 0, 1)
    two_d = [np.stack([keys, keys]), np.stack([want[1], swapped[1]])]
    assert same_up_to_tie_order([two_d[0].T, two_d[1].T[:, ::-1]], [two_d[0].T, two_d[1].T], 0, 1)
