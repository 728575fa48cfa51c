"""Device descriptions: the named presets (n150, n300, p150) and custom device files (JSON).

    spec = load_device("n150")          # a preset name
    spec = load_device("my_chip.json")  # or a JSON file (format below; docs/device.md)
    spec.config                         # the runtime's DeviceConfig (cost model included)

A description holds device facts only: the core grid, clock, SRAM, DRAM, the matrix engine's
cycles per 32x32x32 tile product for each math fidelity and the fidelity each data format runs
at, the vector engine's cycles per tile instruction, NoC width, launch cost, the DRAM efficiency
kernels reach, the host's time per program step. The public source
of each preset figure is named in docs/device.md (one place for them).

JSON format (every key but "name" optional; a missing key takes the "base" preset's value,
default "n150"; unknown keys are refused):

    {"name": "my-chip", "base": "n150", "description": "...",
     "grid": [8, 8], "clock_ghz": 1.0, "sram_per_core": 1499136,
     "dram_bytes": 12884901888, "dram_gb_per_s": 288.0,
     "fidelity_tile_cycles": {"LoFi": 16, "HiFi2": 32, "HiFi3": 48, "HiFi4": 64},
     "math_fidelity": {"f32": "HiFi4", "bf16": "HiFi2"},
     "vector_tile_cycles": 32, "noc_bytes_per_cycle": 32, "launch_cycles": 1720,
     "dram_efficiency": 0.833, "host_step_us": 300.0}

"dram_gb_per_s" is the DRAM's peak; "dram_efficiency" the fraction of it that kernels streaming
DRAM reach (the runtime is given the product). "host_step_us" is the host's time per program
step (enqueue, wait, read back): not device time, so not in the modeled cycles; end-to-end
figures (tokens per second) add it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .runtime import DeviceConfig

__all__ = ["DeviceSpec", "DeviceSpecError", "PRESETS", "DEFAULT_DEVICE", "ENV_VAR", "load_device",
           "default_device_name"]

ENV_VAR = "TT_XLA_DEVICE"
DEFAULT_DEVICE = "n150"
FIDELITIES = ("LoFi", "HiFi2", "HiFi3", "HiFi4")
FORMATS = ("f32", "bf16")  # the data formats the matrix engine is fed with
_MIN_SRAM = 64 * 1024     # TT_MIN_SRAM_PER_CORE of ttrt_kernel.h: the runtime refuses less


class DeviceSpecError(ValueError):
    """A device description (preset name or JSON file) is unknown or invalid."""


# What Wormhole and Blackhole Tensix cores share: the matrix engine's cycles per 32x32x32 tile
# product by math fidelity (tt-metal tech_reports/GEMM_FLOPS; Blackhole assumed equal), the
# fidelity each format runs at (a modeling choice), the vector engine (32 lanes, one instruction
# per cycle: 32 cycles per 32x32 tile) and the NoC width.
# The host's time per program step is the host's, not the chip's (tt-metal's own decode
# estimate adds ~300 us of host loop per token; docs/device.md).
_TENSIX = {"fidelity_tile_cycles": {"LoFi": 16, "HiFi2": 32, "HiFi3": 48, "HiFi4": 64},
           "math_fidelity": {"f32": "HiFi4", "bf16": "HiFi2"}, "vector_tile_cycles": 32,
           "noc_bytes_per_cycle": 32, "host_step_us": 300.0}
# Wormhole: DRAM-bound kernels stream about 240 of the 288 GB/s peak (tt-metal's DRAM-sharded
# matmul; 267 in the bare read microbenchmark); a launch costs the op-to-op gap under trace
# (0.75 us) plus the shortest kernel's duration (0.97 us). Sources in docs/device.md.
_WORMHOLE = dict(_TENSIX, dram_efficiency=0.833, launch_cycles=1720)
_GiB = 1 << 30

PRESETS: dict[str, dict[str, Any]] = {
    "n150": dict(_WORMHOLE, description="Tenstorrent Wormhole n150: one chip, 8x8 worker cores at 1 GHz, 12 GB GDDR6",
                 grid=[8, 8], clock_ghz=1.0, sram_per_core=1499136, dram_bytes=12 * _GiB, dram_gb_per_s=288.0),
    # Two Wormhole chips on one board, modeled as ONE chip with both chips' cores, DRAM and
    # bandwidth: the Ethernet link between the chips is not modeled (a program split across
    # them pays nothing for crossing it), so n300 figures are optimistic for cross-chip traffic.
    "n300": dict(_WORMHOLE, description="Tenstorrent Wormhole n300: two chips modeled as one (16x8 cores, 24 GB "
                                        "GDDR6); the chip-to-chip link is not modeled",
                 grid=[16, 8], clock_ghz=1.0, sram_per_core=1499136, dram_bytes=24 * _GiB, dram_gb_per_s=576.0),
    # Blackhole: the read microbenchmark reaches 500 of 512 GB/s; no DRAM-bound matmul figure is
    # published, so Wormhole's matmul/microbenchmark ratio (240/267) is assumed: 0.977 x 0.899.
    # The launch is assumed to take Wormhole's 1.72 us (2,322 cycles at 1.35 GHz).
    "p150": dict(_TENSIX, description="Tenstorrent Blackhole p150: 14x10 Tensix cores at 1.35 GHz, 32 GB GDDR6",
                 grid=[14, 10], clock_ghz=1.35, sram_per_core=1572864, dram_bytes=32 * _GiB, dram_gb_per_s=512.0,
                 dram_efficiency=0.878, launch_cycles=2322),
}

_KEYS = {"name", "base", "description", *PRESETS["n150"]}


@dataclass(frozen=True)
class DeviceSpec:
    """A validated device description. `key` identifies it (preset name or resolved path)."""
    name: str
    key: str
    description: str
    config: DeviceConfig
    math_fidelity: Mapping[str, str] = field(default_factory=dict)
    noc_bytes_per_cycle: int = 32  # a core's DMA rate to/from tensors placed in SRAM (no routing modeled)
    host_step_us: float = 0.0  # host time per program step: end-to-end figures add it, device cycles do not
    values: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the description as given

    @property
    def dram_gb_per_s(self) -> float:
        """The DRAM's peak bandwidth (the description's figure)."""
        return float(self.values["dram_gb_per_s"])

    @property
    def dram_achieved_gb_per_s(self) -> float:
        """What the cost model streams DRAM at: peak x dram_efficiency."""
        return self.config.dram_bytes_per_cycle * self.config.clock_ghz


def default_device_name() -> str:
    """What `tt_xla.client()` opens: $TT_XLA_DEVICE (a preset name or a JSON file), else n150."""
    return os.environ.get(ENV_VAR) or DEFAULT_DEVICE


def load_device(device: str | os.PathLike | None = None) -> DeviceSpec:
    """A preset by name, or a JSON device file by path (None: default_device_name())."""
    device = default_device_name() if device is None else device
    name = os.fspath(device)
    if name in PRESETS:
        return _build(dict(PRESETS[name], name=name), key=name, where=f"preset {name!r}")
    path = Path(name)
    if not path.suffix and not path.exists():
        raise DeviceSpecError(f"unknown device {name!r}: not a preset ({', '.join(PRESETS)}) nor a "
                              "JSON device file")
    try:
        text = path.read_text()
    except OSError as e:
        raise DeviceSpecError(f"device file {name}: cannot read it ({e.strerror or e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise DeviceSpecError(f"{name}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    if not isinstance(raw, dict):
        raise DeviceSpecError(f"{name}: a device file holds one JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise DeviceSpecError(f"{name}: unknown key(s) {', '.join(map(repr, unknown))}; known: "
                              f"{', '.join(sorted(_KEYS))}")
    base = raw.get("base", DEFAULT_DEVICE)
    if base not in PRESETS:
        raise DeviceSpecError(f"{name}: 'base' must be a preset ({', '.join(PRESETS)}), got {base!r}")
    if "name" not in raw:
        raise DeviceSpecError(f"{name}: missing key 'name'")
    merged = {k: v for k, v in PRESETS[base].items() if k != "description"}
    merged.update({k: v for k, v in raw.items() if k != "base"})
    merged.setdefault("description", f"custom device from {path.name} (based on {base})")
    return _build(merged, key=str(path.resolve()), where=name)


def _build(v: dict[str, Any], key: str, where: str) -> DeviceSpec:
    def fail(field_: str, want: str) -> DeviceSpecError:
        return DeviceSpecError(f"{where}: {field_!r} must be {want}, got {v.get(field_)!r}")

    def number(field_: str, integer: bool, lo: float = 0, hi: float = float("inf")) -> float:
        x = v[field_]
        ok = isinstance(x, int) if integer else isinstance(x, (int, float))
        if isinstance(x, bool) or not ok or not (lo < x <= hi):
            raise fail(field_, f"{'an integer' if integer else 'a number'} in ({lo:g}, {hi:g}]")
        return x

    if not isinstance(v["name"], str) or not v["name"]:
        raise fail("name", "a non-empty string")
    if not isinstance(v["description"], str):
        raise fail("description", "a string")
    grid = v["grid"]
    if not (isinstance(grid, list) and len(grid) == 2 and all(isinstance(g, int) and not isinstance(g, bool)
                                                              and g > 0 for g in grid)
            and grid[0] * grid[1] <= 4096):
        raise fail("grid", "[x, y]: two positive integers, at most 4096 cores")
    clock = number("clock_ghz", False, 0, 100)
    sram = number("sram_per_core", True, _MIN_SRAM - 1, 1 << 32)
    dram = number("dram_bytes", True, 0, 1 << 50)
    gbps = number("dram_gb_per_s", False, 0, 1e6)
    vec = number("vector_tile_cycles", True, 0, 1 << 20)
    noc = number("noc_bytes_per_cycle", True, 0, 1 << 20)
    launch = number("launch_cycles", True, -1, 1 << 30)
    eff = number("dram_efficiency", False, 0, 1)
    host_step = number("host_step_us", False, -1, 1e9)
    if host_step < 0:
        raise fail("host_step_us", "a number in [0, 1e+09]")
    fid = v["fidelity_tile_cycles"]
    if not (isinstance(fid, dict) and set(fid) == set(FIDELITIES)
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 < c <= 1 << 20 for c in fid.values())):
        raise fail("fidelity_tile_cycles", f"an object of positive integer cycles for each of {', '.join(FIDELITIES)}")
    mf = v["math_fidelity"]
    if not (isinstance(mf, dict) and set(mf) == set(FORMATS) and all(f in FIDELITIES for f in mf.values())):
        raise fail("math_fidelity", f"an object giving each of {', '.join(FORMATS)} one of {', '.join(FIDELITIES)}")
    cfg = DeviceConfig(grid=(grid[0], grid[1]), sram_per_core=int(sram), dram_bytes=int(dram),
                       clock_ghz=float(clock), dram_bytes_per_cycle=float(gbps) * float(eff) / float(clock),
                       vector_tile_cycles=int(vec), matrix_tile_cycles=fid[mf["f32"]],
                       launch_cycles=int(launch), matrix_tile_cycles_bf16=fid[mf["bf16"]],
                       noc_bytes_per_cycle=int(noc))
    return DeviceSpec(name=v["name"], key=key, description=v["description"], config=cfg,
                      math_fidelity=dict(mf), noc_bytes_per_cycle=int(noc), host_step_us=float(host_step),
                      values=dict(v))
