"""Pass 6: order the kernels so that few buffers are alive at once.

List scheduling over stored nodes: among the nodes whose inputs are ready, run the one that
frees the most bytes for the bytes it allocates. A node's kernels stay together, in order."""
from __future__ import annotations

from .fuse import Kernel, Plan, is_data


def schedule(p: Plan) -> list[Kernel]:
    by_target: dict[int, list[Kernel]] = {}
    target: dict[int, int] = {}  # stored node id -> the target its kernel is listed under
    for k in p.kernels:
        by_target.setdefault(k.writes.id, []).append(k)
        for o in k.outputs:  # a multi-output kernel: every result is ready when it has run
            target[o.id] = k.writes.id
    deps: dict[int, set[int]] = {}
    nbytes: dict[int, int] = {}
    for tid, ks in by_target.items():
        nbytes[tid] = sum(o.nbytes for o in ks[0].outputs)
        deps[tid] = {target.get(r.id, r.id) for k in ks for r in k.reads if not is_data(r)}
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
