"""Errors a user sees. No jax here."""
from __future__ import annotations


class UnsupportedError(NotImplementedError):
    """An op, dtype or attribute the compiler does not handle. Names the op and where the
    user's Python source wrote it (from the module's loc info)."""

    def __init__(self, what: str, op: str | None = None, loc: object | None = None):
        self.what, self.op, self.loc = what, op, loc
        where = f" at {loc}" if loc is not None else ""
        super().__init__(f"{what}{where}" if op is None else f"{op}: {what}{where}")
