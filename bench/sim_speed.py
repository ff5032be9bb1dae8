#!/usr/bin/env python3
"""Simulated cycles per second of a busy fabric, on Verilator and Icarus.

The fabric runs GEMVs (every PE doing wavelet-triggered AXPYs, row reductions streaming east)
through the host driver, which does the per-cycle work of every host port in one cocotb
coroutine; the figure is simulated cycles / wall seconds of the runs (loading not counted).
Verilator is measured with the test build (C++ at -O0) and the optimised build (-O2) that
``wafer run`` uses.

Usage: ``python bench/sim_speed.py [--json] [--sims verilator,icarus] [--sizes 2,4]``
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _common import emit, parse, parser, table

from fabric.array import FabricParams
from sim.apps.layers import run_layers
from sim.host.driver import FabricDriver
from sim.tb.harness import ToolMissingError, prepare_simulator
from sim.toolchain.mapper import map_layers, parse_dtype


def measure(size: int, sim: str, optimize: bool, repeats: int) -> dict:
    params = FabricParams(rows=size, cols=size, spares=1, sram_words=256, imem_words=64,
                          num_tasks=16)
    rng = np.random.default_rng(1)
    n = 8 * size  # an 8 x 8 block per PE
    W = rng.standard_normal((n, n)).astype(np.float32)
    mappings, image = map_layers([(W, None, False)], parse_dtype("fp32"), params)
    t0 = time.perf_counter()
    driver = FabricDriver(params, backend="rtl", sim=sim, optimize=optimize)
    start_s = time.perf_counter() - t0
    try:
        driver.load(image)
        cycles, seconds = 0, 0.0
        for _ in range(repeats):
            x = rng.standard_normal(n).astype(np.float32)
            t0 = time.perf_counter()
            _, cyc = run_layers(driver, mappings, x)
            seconds += time.perf_counter() - t0
            cycles += cyc[0]
    finally:
        driver.close()
    return {"fabric": f"{size}x{size}", "physical_tiles": size * (size + 1), "simulator": sim,
            "cxx": "-O2" if optimize else "-O0" if sim == "verilator" else "n/a",
            "cycles": cycles, "seconds": round(seconds, 2),
            "cycles_per_second": round(cycles / seconds, 1),
            "build_and_start_seconds": round(start_s, 1)}


COLUMNS = [("fabric", 6, ""), ("simulator", 10, ""), ("C++", 5, ""), ("cycles", 8, ""),
           ("seconds", 8, ".2f"), ("cycles/s", 9, ".1f")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sims", default="verilator,icarus")
    ap.add_argument("--sizes", default="2,4")
    ap.add_argument("--repeats", type=int, default=5, help="GEMVs per measurement")
    args = parse(ap)
    rows = []
    for sim in args.sims.split(","):
        try:
            prepare_simulator(sim)
        except ToolMissingError as exc:
            print(f"skipping {sim}: {exc}", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            for optimize in ((False, True) if sim == "verilator" else (False,)):
                rows.append(measure(size, sim, optimize, args.repeats if sim == "verilator"
                                    else max(1, args.repeats // 5)))
    emit(args, {"sim_speed": rows}, lambda: table(COLUMNS, [
        (r["fabric"], r["simulator"], r["cxx"], r["cycles"], r["seconds"], r["cycles_per_second"])
        for r in rows]))


if __name__ == "__main__":
    main()
