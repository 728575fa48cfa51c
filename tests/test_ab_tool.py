"""benchmarks.ab: two trees' workers answer the protocol and the table holds what they timed.

No timing is asserted: only that both sides ran the row the asked number of rounds and that a
row one tree lacks is left out rather than fatal."""
import json
import os

from benchmarks import ab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ab_runs_a_row_on_both_trees(tmp_path, capsys):
    out = tmp_path / "ab.json"
    assert ab.main([ROOT, ROOT, "--only", "tiny_add,no_such_row", "--rounds", "2", "--reps", "2",
                    "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert [r["row"] for r in got["rows"]] == ["tiny_add"]
    row = got["rows"][0]
    assert row["rounds"] == 2 and row["unit"] == "us"
    assert row["a_tt"] > 0 and row["b_tt"] > 0 and row["tt_ratio"] > 0 and row["rel_ratio"] > 0
    assert "tiny_add" in capsys.readouterr().out
