"""`ir_text(module, stage)`: the program as each compiler pass leaves it, for users debugging a
compile (`tt_xla.compile(text).ir_text("legalized")`).

Stages, in pass order (see compiler.optimize): "parsed" (the module as generic StableHLO, see
hlo_parser.printer), "inlined" (the entry function with calls and composites inlined, also
StableHLO), then the compiler graph after "legalized", "simplified", "decomposed", "optimized"
(the second simplify), and "scheduled" (the kernels fusion made, in launch order).

Graph text is one node a line, numbered in topological order:
    %3 = add(%1, %2) : f32[4, 16]  {attrs}  @ file:line
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hlo_parser import ir
from ..hlo_parser.printer import print_module
from .graph import Graph, Node, toposort

STAGES = ("parsed", "inlined", "legalized", "simplified", "decomposed", "optimized", "scheduled")

__all__ = ["STAGES", "ir_text", "graph_text"]


def ir_text(module: ir.Module, stage: str = "parsed") -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if stage == "parsed":
        return print_module(module)
    from . import optimize
    from .fuse import plan
    from .schedule import schedule

    seen: dict[str, Any] = {}
    graph = optimize(module, lambda name, x: seen.setdefault(name, x))
    if stage == "inlined":
        fn = seen["inlined"]
        return print_module(ir.Module(module.name, {}, {fn.name: fn}))
    if stage != "scheduled":
        return graph_text(seen[stage])
    p = plan(graph)
    names: dict[int, str] = {}
    out = [graph_text(p.graph, names, stored=p.materialized), "// kernels, in launch order"]
    for i, k in enumerate(schedule(p)):
        also = "".join(f", {names.get(e.src.id, '?')}" for e in k.extra)  # a multi-output kernel's other results
        out.append(f"kernel {i}: {k.kind} {names.get(k.root.id, '?')}{also} over {list(k.shape)}")
    return "\n".join(out) + "\n"


def graph_text(graph: Graph, names: dict[int, str] | None = None, indent: str = "",
               stored: set[int] | frozenset[int] = frozenset()) -> str:
    """The graph as text (`names`, if given, receives each node's printed name by id; nodes
    in `stored` are marked as kept in DRAM)."""
    names = {} if names is None else names
    lines = []
    for n in toposort(graph.outputs, graph.params):
        names[n.id] = f"%{len(names)}"
        ins = ", ".join(names.get(i.id, "?") for i in n.inputs)
        attrs = {k: v for k, v in n.attrs.items() if not isinstance(v, Graph)}
        text = f"{indent}{names[n.id]} = {n.op}({ins}) : {n.dtype}{list(n.shape)}"
        if attrs:
            text += "  {" + ", ".join(f"{k} = {_value(v)}" for k, v in attrs.items()) + "}"
        if n.id in stored:
            text += "  [stored]"
        if n.loc is not None and getattr(n.loc, "file", None):
            text += f"  @ {n.loc.file}:{n.loc.line}"
        lines.append(text)
        for k, v in n.attrs.items():
            if isinstance(v, Graph):  # a reduce body: a scalar graph of its own
                lines.append(f"{indent}  {k}:")
                lines.append(graph_text(v, {}, indent + "    ").rstrip("\n"))
    lines.append(indent + "return " + ", ".join(names.get(o.id, "?") for o in graph.outputs))
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, np.ndarray):
        if v.size <= 8:
            return np.array2string(v.reshape(-1) if v.ndim > 1 else v, separator=", ")
        return f"<{v.dtype} array {list(v.shape)}>"
    if isinstance(v, Node):
        return f"<node {v.op}>"
    if isinstance(v, (list, tuple)) and any(isinstance(x, Node) for x in v):
        return "[...]"
    return repr(v)
