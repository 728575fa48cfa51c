"""`loc(...)` syntax and its resolution to ir.Location.

Locations are parsed into small unresolved nodes first because jax prints `#locN = loc(...)`
aliases both before and after the module, and an alias may refer to one defined later. All
nodes are resolved once the whole file has been read (LocResolver), with memoization per alias.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath

from .ir import Location
from .lexer import Lexer, Token


# Unresolved location nodes. `Alias.offset` is kept to report an unknown alias where it is used.
@dataclass(frozen=True)
class Unknown:
    pass


@dataclass(frozen=True)
class FilePos:
    file: str
    line: int
    col: int


@dataclass(frozen=True)
class Named:
    name: str
    child: "LocNode | None"


@dataclass(frozen=True)
class CallSite:
    callee: "LocNode"
    caller: "LocNode"


@dataclass(frozen=True)
class Fused:
    children: tuple["LocNode", ...]


@dataclass(frozen=True)
class Alias:
    name: str
    offset: int


LocNode = Unknown | FilePos | Named | CallSite | Fused | Alias


def _expect(lex: Lexer, text: str) -> Token:
    tok = lex.next()
    if tok.text != text or tok.kind in ("str", "eof"):
        raise lex.error(f"expected '{text}' in location, found {lex.describe(tok)}", tok.start)
    return tok


def _int(lex: Lexer) -> int:
    tok = lex.next()
    if tok.kind != "int":
        raise lex.error(f"expected integer in location, found {lex.describe(tok)}", tok.start)
    if len(tok.text) > 20:  # no line or column is that long (and int() of huge text is slow)
        raise lex.error(f"integer {tok.text[:20]}... too large in location", tok.start)
    return int(tok.text)


# The two forms most of jax's locations take, written without spaces: `loc(#alias)` and
# `loc("name")` / `loc("name"(#alias))` (a string without escapes is its own value).
_PLAIN_LOC = re.compile(r'loc\((?:(#[\w$.\-]+)|"([^"\\\n]*)"(?:\((#[\w$.\-]+)\))?)\)')


def parse_loc(lex: Lexer, unescape) -> LocNode:
    """`loc(...)`, with the `loc` keyword as the next token."""
    start = lex.mark()
    m = _PLAIN_LOC.match(lex.text, start)
    if m is not None:  # the same nodes the token-by-token reading below gives, read at once
        lex.reset(m.end())
        lex.last_end = m.end()
        if m.group(1) is not None:
            return Alias(m.group(1), start + 4)
        child = m.group(3)
        return Named(m.group(2), None if child is None else Alias(child, m.start(3)))
    _expect(lex, "loc")
    _expect(lex, "(")
    node = parse_loc_inner(lex, unescape)
    _expect(lex, ")")
    return node


def parse_loc_inner(lex: Lexer, unescape) -> LocNode:
    tok = lex.next()
    if tok.kind == "hash":
        return Alias(tok.text, tok.start)
    if tok.kind == "id" and tok.text == "unknown":
        return Unknown()
    if tok.kind == "id" and tok.text == "callsite":
        _expect(lex, "(")
        callee = parse_loc_inner(lex, unescape)
        _expect(lex, "at")
        caller = parse_loc_inner(lex, unescape)
        _expect(lex, ")")
        return CallSite(callee, caller)
    if tok.kind == "id" and tok.text == "fused":
        if lex.peek().text == "<":
            lex.balanced("fused location metadata")  # metadata is irrelevant to positions
        _expect(lex, "[")
        children: list[LocNode] = []
        while lex.peek().text != "]":
            children.append(parse_loc_inner(lex, unescape))
            if lex.peek().text == ",":
                lex.next()
            elif lex.peek().text != "]":
                t = lex.peek()
                raise lex.error(f"expected ',' or ']' in fused location, found {lex.describe(t)}",
                                t.start)
        lex.next()
        return Fused(tuple(children))
    if tok.kind == "str":
        text = unescape(tok)
        if lex.peek().text == ":" and lex.peek().kind == "punct":  # "file":line:col [to ...]
            lex.next()
            line = _int(lex)
            _expect(lex, ":")
            col = _int(lex)
            if lex.peek().kind == "id" and lex.peek().text == "to":  # a range: keep its start
                lex.next()
                if lex.peek().text == ":":
                    lex.next()
                    _int(lex)
                else:
                    _int(lex)
                    _expect(lex, ":")
                    _int(lex)
            return FilePos(text, line, col)
        if lex.peek().text == "(":  # "name"(child)
            lex.next()
            child = parse_loc_inner(lex, unescape)
            _expect(lex, ")")
            return Named(text, child)
        return Named(text, None)
    raise lex.error(f"expected location, found {lex.describe(tok)}", tok.start)


_PACKAGE = PurePath(__file__).parents[1]  # tt_xla/


@lru_cache(maxsize=1024)  # a module names few files, in thousands of locations
def _internal(file: str) -> bool:
    """A frame the user did not write: tt_xla's own (jit's wrapper calls the user's function,
    so `tt_xla.jit(jnp.linalg.cholesky)` has no user frame inside the traced call) or jax's."""
    p = PurePath(file)
    if _PACKAGE in p.parents:
        return True
    parts = p.parts
    return any(a in ("site-packages", "dist-packages") and b in ("jax", "jaxlib")
               for a, b in zip(parts, parts[1:]))


def _user_first(positions: list[tuple]) -> tuple:
    """The first of `positions` (innermost first) that has a file outside tt_xla and jax, else
    the first with a file at all: an error names the user's line when the stack has one."""
    first = None
    for p in positions:
        if p[0] is not None:
            if not _internal(p[0]):
                return p
            first = first or p
    return first or (None, None, None, None)


class LocResolver:
    """Resolves LocNodes against the file's alias table (filled while parsing)."""

    def __init__(self, lex: Lexer):
        self.lex = lex
        self.aliases: dict[str, LocNode] = {}
        self._memo: dict[str, tuple] = {}
        self._active: set[str] = set()

    def resolve(self, node: LocNode | None) -> Location | None:
        if node is None:
            return None
        file, line, col, name = self._walk(node)
        return Location(file, line, col, name)

    def _walk(self, node: LocNode) -> tuple:
        # Returns (file, line, col, name); file is None when no position was found.
        if isinstance(node, FilePos):
            return node.file, node.line, node.col, None
        if isinstance(node, Named):
            inner = self._walk(node.child) if node.child is not None else (None, None, None, None)
            return inner[0], inner[1], inner[2], node.name  # the outermost name is the nearest
        if isinstance(node, CallSite):
            # The callee frame is the innermost; the caller's position serves when the callee
            # has none or is inside tt_xla or jax.
            a, b = self._walk(node.callee), self._walk(node.caller)
            pos = _user_first([a, b])
            return pos[0], pos[1], pos[2], a[3] if a[3] is not None else b[3]
        if isinstance(node, Fused):
            parts = [self._walk(c) for c in node.children]
            pos = _user_first(parts)
            name = next((p[3] for p in parts if p[3] is not None), None)
            return pos[0], pos[1], pos[2], name
        if isinstance(node, Alias):
            if node.name in self._memo:
                return self._memo[node.name]
            if node.name not in self.aliases:
                raise self.lex.error(f"unknown location alias {node.name}", node.offset)
            if node.name in self._active:
                raise self.lex.error(f"location alias {node.name} refers to itself", node.offset)
            self._active.add(node.name)
            try:
                out = self._walk(self.aliases[node.name])
            finally:
                self._active.discard(node.name)
            self._memo[node.name] = out
            return out
        return None, None, None, None


__all__ = ["parse_loc", "parse_loc_inner", "LocResolver", "LocNode"]
