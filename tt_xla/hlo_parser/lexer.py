"""Lexer for the MLIR textual format, plus ParseError.

The lexer is lazy (one regex match per token at the current offset) rather than a pre-pass,
because MLIR's grammar is context dependent in two places the parser must steer:
  * shapes: `tensor<0xf32>` must lex as dims `0x` + `f32`, not the hex literal `0xf32`;
  * dialect bodies (`#sdy.rule<([i])->([j])>`, `!dialect.type<...>`) are kept as raw text.
Both are handled by letting the parser re-read characters from the current offset.
"""
from __future__ import annotations

import bisect
import re
from typing import NamedTuple


class ParseError(Exception):
    """A syntax or semantic error in the input, with 1-based line/col.

    str() is `<filename>:line:col: message`, the source line, and a caret under the column."""

    def __init__(self, message: str, line: int, col: int, filename: str = "<module>",
                 source_line: str = ""):
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.filename = filename
        self.source_line = source_line

    def __str__(self) -> str:
        # Keep tabs in the caret line so the caret lines up under tab-indented source.
        pad = "".join("\t" if c == "\t" else " " for c in self.source_line[: self.col - 1])
        return f"{self.filename}:{self.line}:{self.col}: {self.message}\n{self.source_line}\n{pad}^"


class Token(NamedTuple):
    kind: str   # str ustr val sym hash bang caret hex float int id punct eof
    text: str
    start: int  # offset into the source text


_SKIP = re.compile(r"(?:\s+|//[^\n]*)*")
_TOKEN = re.compile(r"""
  (?P<str>"(?:[^"\\\n]|\\.)*")
| (?P<ustr>")
| (?P<val>%[\w$.\-]+(?:\#\d+)?)
| (?P<sym>@(?:[\w$.\-]+|"(?:[^"\\\n]|\\.)*"))
| (?P<hash>\#[\w$.\-]+)
| (?P<bang>![\w$.\-]+)
| (?P<caret>\^[\w$.\-]+)
| (?P<hex>0x[0-9a-fA-F]+)
| (?P<float>[-+]?\d+\.\d*(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+)
| (?P<int>[-+]?\d+)
| (?P<id>[A-Za-z_][\w$.]*)
| (?P<punct>->|::|[(){}\[\]<>=,:*?+\-|])
""", re.VERBOSE)
# The next token after any whitespace and comments, in one match (the hot path: most of a parse
# is reading tokens). The skip is atomic, so a comment running to the end of the input is never
# re-split to make a token of its tail.
_NEXT = re.compile(r"(?>(?:\s+|//[^\n]*)*)(?:" + _TOKEN.pattern + ")", re.VERBOSE)
_new_token = tuple.__new__  # Token(...) through NamedTuple's Python-level __new__ costs 3x more
_DIMS = re.compile(r"(?:(?:\d+|\?)x)*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_EOF = "end of input"


class Lexer:
    def __init__(self, text: str, filename: str = "<module>"):
        self.text = text
        self.filename = filename
        self.pos = 0          # offset where the next (un-peeked) token starts scanning
        self.last_end = 0     # end offset of the last consumed token
        self._peeked: Token | None = None
        self._line_starts: list[int] | None = None

    # ------------------------------------------------------------------ positions / errors
    def line_col(self, offset: int) -> tuple[int, int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        i = bisect.bisect_right(self._line_starts, offset) - 1
        return i + 1, offset - self._line_starts[i] + 1

    def error(self, message: str, offset: int | None = None) -> ParseError:
        if offset is None:
            offset = self.peek().start
        offset = max(0, min(offset, len(self.text)))
        line, col = self.line_col(offset)
        start = self._line_starts[line - 1]  # type: ignore[index]
        end = self.text.find("\n", start)
        src = self.text[start: end if end >= 0 else len(self.text)]
        # One line of message: text quoted from the input (an opaque type's raw body) may
        # hold line breaks.
        message = re.sub(r"\s*\n\s*", " ", message)
        return ParseError(message, line, col, self.filename, src)

    # ------------------------------------------------------------------ tokens
    def peek(self) -> Token:
        tok = self._peeked
        if tok is None:
            tok = self._peeked = self._scan()
        return tok

    def next(self) -> Token:
        tok = self._peeked
        if tok is None:
            tok = self._scan()
        else:
            self._peeked = None
        self.last_end = tok.start + len(tok.text)
        return tok

    def _scan(self) -> Token:
        m = _NEXT.match(self.text, self.pos)
        if m is not None and m.lastgroup != "ustr":
            kind = m.lastgroup
            self.pos = m.end()
            return _new_token(Token, (kind, m.group(kind), m.start(kind)))
        # end of input, an unterminated string or a character no token starts with
        pos = _SKIP.match(self.text, self.pos).end()
        if pos >= len(self.text):
            self.pos = pos
            return Token("eof", "", pos)
        if m is not None:
            raise self.error("unterminated string", pos)
        raise self.error(f"unexpected character {self.text[pos]!r}", pos)

    def mark(self) -> int:
        """An offset to backtrack to with reset() (the start of the next token)."""
        return self.peek().start

    def reset(self, offset: int) -> None:
        self.pos = offset
        self._peeked = None

    def followed_by(self, tok: Token, text: str) -> bool:
        """Whether the token after `tok` (whitespace and comments between are allowed, as
        everywhere in MLIR) starts with `text`: `loc (`, `#dialect <`, `affine_map <`."""
        pos = _SKIP.match(self.text, tok.start + len(tok.text)).end()
        return self.text.startswith(text, pos)

    # ------------------------------------------------------------------ context-dependent reads
    def dims(self) -> list[int | None]:
        """Read a shape prefix `4x?x8x` at the next token (no whitespace allowed, as in MLIR)."""
        start = self.mark()
        m = _DIMS.match(self.text, start)
        assert m is not None  # the pattern matches the empty string
        dims = m.group()[:-1].split("x") if m.group() else []
        for d in dims:
            if len(d) > 19:  # beyond int64 (and int() of a huge digit string is slow)
                raise self.error(f"dimension {d[:20]}... is too large", start)
        self.reset(m.end())
        self.last_end = m.end()
        return [None if d == "?" else int(d) for d in dims]

    def balanced(self, what: str) -> str:
        """Consume a balanced `<...>`/`(...)`/`[...]`/`{...}` group starting at the next token
        and return its exact text. `->` does not close a `<`; strings are skipped."""
        start = self.mark()
        text, i, stack = self.text, start, []
        closer = {"<": ">", "(": ")", "[": "]", "{": "}"}
        while i < len(text):
            c = text[i]
            if c == '"':
                m = _STRING.match(text, i)
                if m is None:
                    raise self.error("unterminated string", i)
                i = m.end()
                continue
            if c == "/" and text.startswith("//", i):  # a comment is whitespace
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
                continue
            if c in closer:
                stack.append(closer[c])
            elif c in ">)]}":
                if c == ">" and i > start and text[i - 1] == "-":
                    i += 1
                    continue
                if not stack or stack.pop() != c:
                    raise self.error(f"unbalanced {c!r} in {what}", i)
                if not stack:
                    self.reset(i + 1)
                    self.last_end = i + 1
                    return text[start: i + 1]
            elif not stack:
                raise self.error(f"expected '<' to start {what}", i)
            i += 1
        raise self.error(f"unterminated {what}: expected closing bracket, found {_EOF}", len(text))

    def describe(self, tok: Token) -> str:
        return _EOF if tok.kind == "eof" else repr(tok.text)


_DENSE_ATOM = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\](),]|true|false|'
                         r"[-+]?(?:0x[0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)")


def split_tokens(text: str) -> list[str]:
    """The text's tokens as MLIR separates them (comments and whitespace dropped), keeping
    whole the two things MLIR allows no whitespace in: a shape prefix with its element type
    (`4x8xf32`) and each element of a dense literal. Joining them with any whitespace or
    comments gives the same module; the metamorphic tests and the fuzzer use this."""
    out: list[str] = []
    pos = 0
    while True:
        pos = _SKIP.match(text, pos).end()
        if pos >= len(text):
            return out
        if len(out) >= 2 and out[-1] == "<" and out[-2] in ("tensor", "vector", "memref"):
            m = _DIMS.match(text, pos)
            if m.group():
                t = _TOKEN.match(text, m.end())
                end = t.end() if t else m.end()
                out.append(text[pos:end])
                pos = end
                continue
        if len(out) >= 2 and out[-1] == "<" and out[-2] == "dense":
            end = text.find(">", pos)
            end = len(text) if end < 0 else end
            out += [a.group() for a in _DENSE_ATOM.finditer(text, pos, end)]
            out.append(text[end:end + 1])  # the closing '>' (the body may have no atoms)
            pos = end + 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:  # not MLIR: keep the character as a token of its own
            out.append(text[pos])
            pos += 1
            continue
        out.append(m.group())
        pos = m.end()

