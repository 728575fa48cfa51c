"""Every program of tools.programs (Flax/Optax training steps, recurrent nets, samplers,
indexing idioms) through tt-xla: it must match CPU JAX, or fail with a clear error naming the op
tt-xla lacks. Nothing here lists which programs run: as ops are added they flip to matching,
and must then be right. `python -m tools.programs` prints the counts."""
from __future__ import annotations

import pytest

pytest.importorskip("flax")  # the test extras install flax and optax
pytest.importorskip("optax")

from tools.isolate import run_isolated
from tools.outcome import CLEAR, PASS
from tools.programs import PROGRAMS

# Wrong answers found by this suite and not fixed yet, with a reproducer. Strict: when a fix
# lands the test fails until its entry is removed here.
KNOWN_WRONG: dict[str, str] = {}  # program name: why its answer is wrong (a strict xfail)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    # One worker subprocess for all programs: a crash is reported for its program.
    return run_isolated("tools.programs", list(PROGRAMS), timeout=600, chunk=len(PROGRAMS))


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_program(outcomes: dict, name: str, request: pytest.FixtureRequest) -> None:
    if name in KNOWN_WRONG:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_WRONG[name], strict=True))
    res = outcomes[name]
    assert res.kind in (PASS, CLEAR), f"{name}: {res.kind}: {res.detail}"
    if res.kind == CLEAR:
        assert res.op, f"{name}: the error does not name the op: {res.detail}"
