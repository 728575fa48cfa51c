"""tools/ops_table.py: the op-support table is what the logged test results say."""
from __future__ import annotations

from tools.ops_table import module_ops, table

TEXT = """module {
  func.func @main(%a: tensor<4xf32>) -> tensor<4xi1> {
    %0 = stablehlo.sine %a : tensor<4xf32>
    %1 = stablehlo.is_finite %0 : (tensor<4xf32>) -> tensor<4xi1>
    return %1 : tensor<4xi1>
  }
}"""


def test_module_ops_lists_ops_with_their_types():
    assert module_ops(TEXT) == [("stablehlo.sine", ["f32"]), ("stablehlo.is_finite", ["f32", "i1"]),
                                ("func.return", ["i1"])]
    assert module_ops("not mlir") == []


def test_table_from_a_log():
    log = {
        "t::ok": {"passed": True, "ops": module_ops(TEXT), "errors": []},
        "t::failed": {"passed": False, "ops": [("stablehlo.cosine", ["f64"])], "errors": []},
        "t::refused": {"passed": True, "ops": [], "errors": [
            {"op": "stablehlo.cosine", "kind": "UnsupportedError",
             "message": "stablehlo.cosine: cosine on i32 at /home/x/test.py:3:4 (f)", "types": ["i32"]},
            {"op": "stablehlo.sine", "kind": "VerificationError", "message": "a malformed test program",
             "types": ["f32"]}]},
    }
    rows = {line.split("|")[1].strip(): line for line in table(log).splitlines() if line.startswith("| `")}
    assert rows["`stablehlo.sine`"].endswith("| f32 |  |")  # a test's malformed program says nothing
    assert "/home/x" not in rows["`stablehlo.cosine`"]  # nor does the test's source line
    assert "cosine on i32" in rows["`stablehlo.cosine`"] and "f64" not in rows["`stablehlo.cosine`"]  # failed test
    assert "no lowering" in rows["`stablehlo.fft`"]
    assert "not exercised" in rows["`stablehlo.if`"]  # control flow: control.py, not legalize
