"""Pass 6: order the kernels so that few buffers are alive at once.

List scheduling over stored nodes: among the nodes whose inputs are ready, run the one that
frees the most bytes for the bytes it allocates. A node's kernels stay together, in order."""
from __future__ import annotations

from .fuse import Kernel, Plan, is_data


def schedule(p: Plan) -> list[Kernel]:
    by_target: dict[int, list[Kernel]] = {}
    # stored node id -> every target listing a kernel that writes it: a node is ready when all
    # have run. A multi-output kernel is listed under its first result's target only, and merged
    # concat pieces (fuse._merge_pieces) write pieces of several concatenates, whose other pieces
    # are listed under targets of their own: a reader must wait for both.
    writers: dict[int, set[int]] = {}
    for k in p.kernels:
        by_target.setdefault(k.writes.id, []).append(k)
        for o in k.outputs:
            writers.setdefault(o.id, set()).add(k.writes.id)
    deps: dict[int, set[int]] = {}
    nbytes: dict[int, int] = {}
    for tid, ks in by_target.items():
        nbytes[tid] = sum(o.nbytes for o in ks[0].outputs)
        deps[tid] = {w for k in ks for r in k.reads if not is_data(r) for w in writers.get(r.id, {r.id})} - {tid}
    remaining_uses: dict[int, int] = {}
    for d in deps.values():
        for r in d:
            remaining_uses[r] = remaining_uses.get(r, 0) + 1
    done: set[int] = set()
    order: list[Kernel] = []
    pending = list(by_target)  # topological order already (plan walks nodes in topo order)
    while pending:
        ready = [t for t in pending if deps[t] <= done]

        def gain(t: int) -> int:
            freed = sum(nbytes[r] for r in deps[t] if remaining_uses[r] == 1)
            return freed - nbytes[t]
        best = max(ready, key=lambda t: (gain(t), -pending.index(t)))
        pending.remove(best)
        done.add(best)
        for r in deps[best]:
            remaining_uses[r] -= 1
        order.extend(by_target[best])
    return order
