"""Handwritten parser for the MLIR text jax.export prints (StableHLO pretty and generic forms).

    from tt_xla.hlo_parser import parse_module, ParseError
    module = parse_module(exported.mlir_module(), filename="model.mlir")

No MLIR bindings and no jax: a regex lexer and a recursive-descent parser producing ir.Module,
and a printer (`print_module`) writing an ir.Module back as generic-form MLIR text.
"""
from __future__ import annotations

from . import ir
from .lexer import ParseError
from .parser import Parser
from .printer import print_module

__all__ = ["parse_module", "print_module", "ParseError", "ir"]


def parse_module(text: str, filename: str = "<module>") -> ir.Module:
    """Parse MLIR module text into an ir.Module; raise ParseError on any malformed input."""
    parser = Parser(text, filename)
    try:
        return parser.parse_file()
    except ParseError:
        raise
    except RecursionError:
        raise parser.lex.error("input nested too deeply", parser.lex.last_end) from None
    except Exception as e:  # a parser bug must still surface as a located ParseError
        raise parser.lex.error(f"internal parser error: {type(e).__name__}: {e}",
                               parser.lex.last_end) from e
