"""The one traversal every rewriting pass uses: rebuild a Graph bottom-up through a function."""
from __future__ import annotations

from typing import Callable

from .graph import Graph, Node, toposort


def rewrite(graph: Graph, fn: Callable[..., Node], with_original: bool = False,
            order: list[Node] | None = None) -> Graph:
    """fn(node) returns the node's replacement (or the node itself). fn sees the node with its
    inputs already replaced (and, `with_original`, the node of `graph` it stands for as a second
    argument: facts about `graph`, such as readers, are keyed by its nodes). Params are kept as
    they are. `order`: `graph.nodes()`, when the caller has it (it is not walked again)."""
    new: dict[int, Node] = {p.id: p for p in graph.params}
    for orig in toposort(graph.outputs, graph.params) if order is None else order:
        if orig.op == "param":
            continue
        ins = [new[i.id] for i in orig.inputs]
        n = orig
        if ins != orig.inputs:  # (Nodes compare by identity: an input was replaced)
            n = Node(orig.op, ins, orig.shape, orig.dtype, dict(orig.attrs), orig.loc)
        new[orig.id] = fn(n, orig) if with_original else fn(n)
    return Graph(graph.params, [new[o.id] for o in graph.outputs])
