"""Errors a user sees. No jax here."""
from __future__ import annotations


class UnsupportedError(NotImplementedError):
    """An op, dtype or attribute the compiler does not handle. Names the op and where the
    user's Python source wrote it (from the module's loc info)."""

    def __init__(self, what: str, op: str | None = None, loc: object | None = None):
        self.what, self.op, self.loc = what, op, loc
        super().__init__(_message(what, op, loc))


class VerificationError(ValueError):
    """A program that breaks a rule of the StableHLO spec (types that disagree, attributes out
    of range, a value used before it is defined...). Raised before any compiler pass runs, so
    nothing invalid reaches code generation. Names the op, the rule and the user's source line."""

    def __init__(self, rule: str, op: str | None = None, loc: object | None = None):
        self.rule, self.op, self.loc = rule, op, loc
        super().__init__(_message(rule, op, loc))


def _message(what: str, op: str | None, loc: object | None) -> str:
    where = f" at {loc}" if loc is not None else ""
    return f"{what}{where}" if op is None else f"{op}: {what}{where}"
