"""Pass 1: inline every func.call, so the entry function is one flat list of ops (and every region
body one flat list too: while/if/case bodies call functions)."""
from __future__ import annotations

from collections import ChainMap

from ..errors import UnsupportedError
from ..hlo_parser import ir
from . import eig, fft, linalg, tridiag

# Composites the compiler implements itself (decompose.py): kept as the op they name instead of
# inlining their decomposition (jax's chlo.erf is a 30-op rational that flushes below 7e-37;
# decompose's erf is 14 ops).
NATIVE_COMPOSITES = {"chlo.erf"}


def inline_calls(module: ir.Module) -> ir.Function:
    """A copy of the entry function with every call replaced by the callee's body."""
    main = module.main
    env: dict[int, ir.Value] = {id(a): a for a in main.args}
    ops: list[ir.Operation] = []
    results = _inline_body(module, main.body, env, ops, depth=0, site=None)
    ret = ir.Operation("func.return", results, [], loc=main.body.ops[-1].loc if main.body.ops else None)
    return ir.Function(main.name, list(main.args), list(main.result_types), ir.Block([], ops + [ret]),
                       main.visibility, main.arg_attrs, main.result_attrs, main.loc)


def _inline_body(module: ir.Module, body: ir.Block, env,
                 out: list[ir.Operation], depth: int, site: ir.Location | None) -> list[ir.Value]:
    """Appends body's ops to out. `site` is the call's location: ops inside a callee often
    carry only a name, and the user's file and line are where the call was written."""
    if depth > 64:
        raise UnsupportedError("call depth over 64 (recursive functions are not supported)")
    for op in body.ops:
        operands = [env.get(id(v), v) for v in op.operands]
        if op.name in ("func.return", "stablehlo.return", "mhlo.return"):  # the latter end regions' blocks
            return operands
        # A composite means exactly its decomposition function: inline it like a call.
        target = {"func.call": "callee", "stablehlo.composite": "decomposition"}.get(op.name)
        if op.name == "stablehlo.composite" and op.attributes.get("name") in NATIVE_COMPOSITES:
            op = ir.Operation(op.attributes["name"], op.operands, op.results, {}, [], op.loc)
            target = None
        # LAPACK targets as loops: the eigensolvers (eig.py) and gtsv (tridiag.py) first, then
        # linalg.py's (and its refusals)
        callee = eig.expand(op, _at(op.loc, site)) if eig.handles(op) else \
            tridiag.expand(op, _at(op.loc, site)) if tridiag.handles(op) else \
            linalg.expand(op, _at(op.loc, site)) if linalg.handles(op) else None
        if fft.handles(op):
            callee = fft.expand(op, _at(op.loc, site))  # products with constant DFT matrices
        if callee is None and target and isinstance(op.attributes.get(target), ir.SymbolRef):
            callee = module.functions.get(op.attributes[target].name)
            if callee is None:
                raise UnsupportedError(f"call to unknown function @{op.attributes[target].name}",
                                       op.name, op.loc)
        if callee is not None:
            inner = {id(a): v for a, v in zip(callee.args, operands)}
            results = _inline_body(module, callee.body, inner, out, depth + 1, _at(op.loc, site))
            for r, v in zip(op.results, results):
                env[id(r)] = v
            continue
        # Fresh result values: a callee inlined twice must not define the same Value twice. The
        # entry function's ops keep theirs: regions (a scatter's body) may name them directly.
        results = list(op.results) if depth == 0 else [ir.Value(r.name, r.type) for r in op.results]
        for r, v in zip(op.results, results):
            env[id(r)] = v
        regions = [_inline_region(module, r, env, depth, _at(op.loc, site)) for r in op.regions]
        out.append(ir.Operation(op.name, operands, results, op.attributes, regions, _at(op.loc, site)))
    raise UnsupportedError("function body has no func.return")


def _inline_region(module: ir.Module, region: ir.Region, env, depth: int,
                   site: ir.Location | None) -> ir.Region:
    """A copy of region with calls inlined and the values it captures from outside renamed as
    `env` renamed them (a loop body may read a value its enclosing function defines)."""
    blocks = []
    for b in region.blocks:
        args = [ir.Value(a.name, a.type) for a in b.args]
        inner = ChainMap({id(a): n for a, n in zip(b.args, args)}, env)
        ops: list[ir.Operation] = []
        rets = _inline_body(module, b, inner, ops, depth, site)
        term = b.ops[-1]
        ops.append(ir.Operation(term.name, rets, [], term.attributes, [], term.loc))
        blocks.append(ir.Block(args, ops))
    return ir.Region(blocks)


def _at(loc: ir.Location | None, site: ir.Location | None) -> ir.Location | None:
    """loc, with the file position taken from the call site when loc has none."""
    if site is None or (loc is not None and loc.file is not None):
        return loc
    return ir.Location(site.file, site.line, site.col, (loc.name if loc else None) or site.name)
