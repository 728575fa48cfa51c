"""Compile-and-run fuzzing over mutations of real exported modules (tests/data/*.mlir, written
by tools/export_fuzz_seeds.py; mutations in tests/mutations.py): every case must end in a
result or a clear error (ParseError, VerificationError, UnsupportedError, DeviceError), never
another Python exception, a crash or a hang.

CI runs a bounded, derandomized slice (about 20 s). Long runs go through a subprocess per
worker so crashes are recorded:
    python tools/fuzz_compile.py --cases 10000 --out /tmp/fuzz.jsonl
More examples in-process: TT_XLA_FUZZ_EXAMPLES=2000 TT_XLA_FUZZ_RANDOM=1 pytest tests/test_fuzz_mutations.py
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mutations

_N = int(os.environ.get("TT_XLA_FUZZ_EXAMPLES", "0"))
_RANDOM = bool(os.environ.get("TT_XLA_FUZZ_RANDOM"))


@settings(max_examples=_N or 50, deadline=None, derandomize=not _RANDOM, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(mutations.SEEDS), seed=st.integers(0, 2**32 - 1))
def test_mutant_ends_in_a_result_or_a_clear_error(name, seed):
    outcome = mutations.run_case(mutations.mutant(name, seed))  # anything else raises
    assert outcome in ("ok", "compiled", *mutations.CLEAR)


def test_seeds_run():
    """The unmutated seeds each run (control*.mlir too: sort, while, gather... all compile now)."""
    for name in mutations.SEEDS:
        assert mutations.run_case(mutations.seed_text(name)) == "ok", name


def test_mutants_are_replayable_and_differ():
    texts = [mutations.mutant("mlp", s) for s in range(20)]
    assert texts == [mutations.mutant("mlp", s) for s in range(20)]
    assert sum(t != mutations.seed_text("mlp") for t in texts) >= 15
