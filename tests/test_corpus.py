"""tools.corpus's rewriting of StableHLO test-data modules (inputs/expected/check form) on
modules written here: the op must run on parameters, and a wrong expected value must be caught."""
from __future__ import annotations

import pytest

from tools.corpus import SKIP, rewrite, run_case
from tools.outcome import PASS, WRONG

MODULE = """module @jit_testcase {
  func.func public @main() -> tensor<i1> {
    %0:2 = call @inputs() : () -> (tensor<2x3xf32>, tensor<2x3xf32>)
    %1 = call @expected() : () -> tensor<2x3xf32>
    %2 = stablehlo.OP %0#0, %0#1 : tensor<2x3xf32>
    %3 = stablehlo.custom_call @check.CHECK(%2, %1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<i1>
    return %3 : tensor<i1>
  }
  func.func private @inputs() -> (tensor<2x3xf32> {mhlo.layout_mode = "default"}, tensor<2x3xf32>) {
    %0 = stablehlo.constant dense<[[1.0, -2.0, 0.5], [3.0, 0.0, -0.25]]> : tensor<2x3xf32>
    %1 = stablehlo.constant dense<"0x0000803F000000400000404000008040 0000A0400000C040"> : tensor<2x3xf32>
    return %0, %1 : tensor<2x3xf32>, tensor<2x3xf32>
  }
  func.func private @expected() -> (tensor<2x3xf32> {mhlo.layout_mode = "default"}) {
    %0 = stablehlo.constant dense<[[2.0, 0.0, 3.5], [7.0, 5.0, EXPECT]]> : tensor<2x3xf32>
    return %0 : tensor<2x3xf32>
  }
}
""".replace(" 0000A0", "0000A0")


def _case(tmp_path, op="add", check="expect_close", last="5.75") -> str:
    p = tmp_path / f"{op}_{check}.mlir"
    p.write_text(MODULE.replace("OP", op).replace("CHECK", check).replace("EXPECT", last))
    return str(p)


def test_rewrite_takes_inputs_as_parameters(tmp_path) -> None:
    r = rewrite(open(_case(tmp_path)).read())
    assert r is not None and r.checks == [("expect_close", 0)]
    assert "@main(%corpus_in0: tensor<2x3xf32>, %corpus_in1: tensor<2x3xf32>)" in r.test
    assert "stablehlo.add %corpus_in0, %corpus_in1" in r.test
    assert "check." not in r.test and "call @" not in r.test


@pytest.mark.parametrize("check", ["expect_close", "eq"])
def test_corpus_case_passes(tmp_path, check) -> None:
    assert run_case(_case(tmp_path, check=check)).kind == PASS


def test_corpus_case_catches_wrong_expected(tmp_path) -> None:
    res = run_case(_case(tmp_path, last="5.5"))
    assert res.kind == WRONG and "check.expect_close" in res.detail


def test_corpus_other_forms_are_skipped(tmp_path) -> None:
    p = tmp_path / "const.mlir"
    p.write_text(MODULE.replace("OP", "add").replace("@check.CHECK(%2, %1)", '@check.expect_eq_const(%2)'))
    assert run_case(str(p)).kind == SKIP
