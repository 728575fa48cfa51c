"""A fixed, fast sample of JAX's primitive harnesses (tools.harness) through tt-xla: every case
must match CPU JAX or fail with a clear error naming the op; a wrong answer, a crash or a raw
exception fails. The full sweep is `python -m tools.harness`."""
from __future__ import annotations

import pytest

from tools.harness import select
from tools.isolate import run_isolated
from tools.outcome import CLEAR, PASS

# The first and a middle case (tools.harness.select spreads them) of groups covering
# arithmetic, integer bit ops, conversions, data movement, reductions, products, convolution,
# transcendentals and some ops tt-xla refuses today (sort, gather, scans, linear algebra).
GROUPS = """add div rem max sign integer_pow shift_right_logical population_count
    convert_element_type bitcast_convert_type broadcast_in_dim concatenate pad rev select_n
    clamp argmax reduce_sum reduce_max dot_general conv_general_dilated exp tanh logistic erf
    cumsum sort gather dynamic_slice cholesky""".split()
CASES = select(GROUPS, limit=2)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    # One worker subprocess for the whole sample: a case that kills the process is reported
    # as a crash of that case instead of taking pytest down.
    return run_isolated("tools.harness", CASES, timeout=120, chunk=len(CASES))


@pytest.mark.parametrize("name", CASES)
def test_harness_case(outcomes: dict, name: str) -> None:
    res = outcomes[name]
    assert res.kind in (PASS, CLEAR), f"{name}: {res.kind}: {res.detail}"
    if res.kind == CLEAR:
        assert res.op, f"{name}: the error does not name the op: {res.detail}"


def test_sample_exercises_both_outcomes(outcomes: dict) -> None:
    """The sample is not vacuous: some cases compile and run, and compare values."""
    kinds = [r.kind for r in outcomes.values()]
    assert kinds.count(PASS) >= len(CASES) // 3, kinds
