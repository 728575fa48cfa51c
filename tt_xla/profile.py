"""Where a program's modeled device time goes: a per-kernel table and a Perfetto trace.

    report = f.profile(x, w)        # tt_xla.jit function; or exe.profile(...) on a compiled one
    print(report)                    # one row per kernel launched, then totals
    open("t.json", "w").write(report.trace)   # open in ui.perfetto.dev

Everything comes from the runtime's event counters of that one run: per launch
(tt_program_launch_stats: modeled cycles, DMA bytes, SRAM, cores, bound, host ns) and per core
(tt_program_core_stats: compute and DMA cycles). Totals are the device counters' deltas over the
run, so another thread launching on the same device meanwhile would show up in them.

Roofline fraction of a kernel: its ideal time on the whole chip -- max(all cores' compute cycles
spread over every core of the grid, its compulsory DRAM traffic at the DRAM bandwidth kernels reach) --
over its modeled time. The compulsory traffic is its operands' bytes once (what it declares
reading and writing; the DMA bytes if fewer). Below 1 by the launch cost, by cores left idle or
loaded unevenly, by DMA beyond the operands (re-reads of matmul panels, halos), and by a core's
compute and DMA not overlapping fully.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["KernelProfile", "ProfileReport", "profile_run"]


@dataclass
class KernelProfile:
    name: str
    kind: str
    ops: tuple[str, ...]
    cores: int
    modeled_cycles: int
    host_ns: int
    dma_bytes: int    # DMA to and from DRAM (not the NoC traffic to tensors placed in SRAM)
    sram_bytes: int
    bound: str
    roofline_cycles: float
    core_stats: list[dict[str, int]] = field(repr=False, default_factory=list)
    noc_bytes: int = 0  # DMA to and from tensors placed in SRAM (optimization_level 1-2)

    @property
    def roofline_fraction(self) -> float:
        return self.roofline_cycles / self.modeled_cycles if self.modeled_cycles else 0.0


@dataclass
class ProfileReport:
    kernels: list[KernelProfile]
    counters: dict[str, int]   # device counter deltas over the profiled run
    clock_ghz: float
    grid: tuple[int, int]
    launch_cycles: int
    device: str = ""
    result: Any = field(default=None, repr=False)  # what the profiled call returned

    def us(self, cycles: float) -> float:
        return cycles / (self.clock_ghz * 1e3)

    @property
    def modeled_us(self) -> float:
        return self.us(sum(k.modeled_cycles for k in self.kernels))

    def __str__(self) -> str:
        head = (f"{'kernel':<18} {'fused ops':<34} {'cores':>5} {'modeled us':>11} {'host us':>10} "
                f"{'DRAM bytes':>13} {'SRAM peak':>10} {'bound':>8} {'roofline':>8}")
        lines = [f"profile on {self.device or 'device'} ({self.grid[0]}x{self.grid[1]} cores, "
                 f"{self.clock_ghz:g} GHz): {len(self.kernels)} kernels", head, "-" * len(head)]
        for k in self.kernels:
            ops = " ".join(o for o in k.ops if o != "broadcast") or k.kind
            ops = ops if len(ops) <= 34 else ops[:31] + "..."
            lines.append(f"{k.name:<18.18} {ops:<34} {k.cores:>5} {self.us(k.modeled_cycles):>11.2f} "
                         f"{k.host_ns / 1e3:>10.1f} {k.dma_bytes:>13,} {k.sram_bytes:>10,} {k.bound:>8} "
                         f"{k.roofline_fraction:>8.2f}")
        lines.append("-" * len(head))
        total_cyc = sum(k.modeled_cycles for k in self.kernels)
        roof = sum(k.roofline_cycles for k in self.kernels) / total_cyc if total_cyc else 0.0
        lines.append(f"{'total':<18} {'':<34} {'':>5} {self.us(total_cyc):>11.2f} "
                     f"{sum(k.host_ns for k in self.kernels) / 1e3:>10.1f} "
                     f"{sum(k.dma_bytes for k in self.kernels):>13,} "
                     f"{max((k.sram_bytes for k in self.kernels), default=0):>10,} {'':>8} {roof:>8.2f}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ trace
    @property
    def trace(self) -> str:
        """Chrome/Perfetto trace JSON in modeled time: a "dispatch" track with one slice per
        kernel, and per core of the grid one process ("core x,y") whose two threads are its DMA
        and its compute engine (they run concurrently on a core, so each has its own track; no
        two slices of one track overlap)."""
        return json.dumps(self.trace_events(), separators=(",", ":"))

    def trace_events(self) -> dict:
        gx, gy = self.grid
        ev: list[dict] = [{"ph": "M", "pid": 0, "name": "process_name", "args": {"name": "dispatch (modeled)"}},
                          {"ph": "M", "pid": 0, "tid": 0, "name": "thread_name", "args": {"name": "kernels"}}]
        for c in range(gx * gy):
            pid = c + 1
            ev += [{"ph": "M", "pid": pid, "name": "process_name", "args": {"name": f"core {c % gx},{c // gx}"}},
                   {"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}},
                   {"ph": "M", "pid": pid, "tid": 1, "name": "thread_name", "args": {"name": "DMA"}},
                   {"ph": "M", "pid": pid, "tid": 2, "name": "thread_name", "args": {"name": "compute"}}]
        t = 0  # modeled cycles since the run began
        for k in self.kernels:
            ev.append({"ph": "X", "pid": 0, "tid": 0, "name": k.name, "ts": self.us(t),
                       "dur": self.us(k.modeled_cycles),
                       "args": {"ops": " ".join(k.ops), "cores": k.cores, "bound": k.bound,
                                "dma_bytes": k.dma_bytes, "roofline": round(k.roofline_fraction, 4)}})
            start = t + min(self.launch_cycles, k.modeled_cycles)  # the cores start after dispatch
            room = t + k.modeled_cycles - start
            for c, s in enumerate(k.core_stats):
                for tid, what, cyc in ((1, "DMA", s["dma_cycles"]), (2, "compute", s["compute_cycles"])):
                    if cyc:
                        ev.append({"ph": "X", "pid": c + 1, "tid": tid, "name": f"{k.name} {what}",
                                   "ts": self.us(start), "dur": self.us(min(cyc, room)),
                                   "args": {"dma_bytes": s["dma_bytes"], "vector_ops": s["vector_ops"],
                                            "matrix_tiles": s["matrix_tiles"]}})
            t += k.modeled_cycles
        return {"traceEvents": ev, "displayTimeUnit": "ns",
                "otherData": {"device": self.device, "clock_ghz": self.clock_ghz}}

    def write_trace(self, path) -> None:
        with open(path, "w") as f:
            f.write(self.trace)

    def roofline_png(self, path) -> None:
        """A roofline plot (operational intensity vs attained throughput per kernel). Needs
        matplotlib."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("the roofline plot needs matplotlib (pip install matplotlib)") from None
        fig, ax = plt.subplots(figsize=(7, 5))
        for k in self.kernels:
            work = sum(s["compute_cycles"] for s in k.core_stats)  # core-cycles of compute
            if not k.modeled_cycles or not k.dma_bytes:
                continue
            ax.scatter(work / k.dma_bytes, work / k.modeled_cycles)
            ax.annotate(k.name, (work / k.dma_bytes, work / k.modeled_cycles), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute core-cycles per DRAM byte")
        ax.set_ylabel("compute core-cycles per modeled cycle (max = cores)")
        ax.set_title(f"roofline, {self.device}")
        fig.savefig(path, dpi=120)
        plt.close(fig)


def profile_run(loaded, run: Callable[[], Any]) -> ProfileReport:
    """Runs `run()` (one call of the client-level executable `loaded`) between two reads of the
    device counters and collects its launches' figures."""
    rt = loaded._rt
    cfg = rt.config
    before = rt.counters()
    result = run()
    after = rt.counters()
    prog = loaded.raw._program
    ncores = cfg.ncores
    rows = []
    for i, k in enumerate(loaded.raw.kernels()):
        st = prog.launch_stats(i)
        cores = prog.core_stats(i)
        compute = sum(s["compute_cycles"] for s in cores)
        dram = st["dma_bytes"] - st["noc_bytes"]
        compulsory = min(st["operand_bytes"], dram) if st["dma_bytes"] else st["operand_bytes"]
        ideal = max(compute / ncores, compulsory / cfg.dram_bytes_per_cycle)
        rows.append(KernelProfile(k.name, k.kind, tuple(k.ops), st["cores"], st["modeled_cycles"], st["host_ns"],
                                  dram, st["sram_bytes"], st["bound"], ideal, cores, st["noc_bytes"]))
    delta = {n: after[n] - before[n] for n in after}
    name = getattr(getattr(loaded.client, "spec", None), "name", "") or "device"
    return ProfileReport(rows, delta, cfg.clock_ghz, tuple(cfg.grid), cfg.launch_cycles, name, result)
