#!/usr/bin/env python3
"""Simulated cycles per second of a busy fabric: through the host driver, and running free.

For each fabric size the fabric runs GEMVs (every PE doing wavelet-triggered AXPYs on an 8 x 8
fp32 block, row reductions streaming east) through the host driver on Verilator (C++ at -O2, as
``wafer run`` builds it). The host engines of the simulation top (``sim/tb/sim_top.py``) stream
every edge port and the configuration chain, so no Python runs per cycle: the driver hands each
GEMV to them as one batch and reads back at the end. Figures:

* ``driver_cps``: simulated cycles / wall seconds of a GEMV run through the driver (loading
  not counted), the best of ``--repeats`` (``driver_cps_mean``: all of them);
* ``free_cps``: the same session replayed on the same model by a C++ loop with no Python at all
  (``sim/tb/replay.cpp``), the best GEMV of two replays: the limit for this RTL;
* ``ratio`` = driver / free; ``simulating_share``: of the driver's GEMV wall time, the share
  the simulator ran free (the rest is Python: the driver, the socket, the rings);
* ``build_s``: seconds to build (or find) the simulator; the first
  size also builds the tile library that the other sizes reuse.

Also reported: cocotb's cost of one engine memory or port access on Verilator (microseconds).

Usage: ``python bench/sim_speed.py [--json] [--sizes 2,4,8,16] [--repeats 5] [--threads 1]
[--monolithic] [--fresh]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit, parse, parser, table

from fabric.array import FabricParams
from sim.apps.layers import run_layers
from sim.host.driver import FabricDriver
from sim.tb.free_run import replay
from sim.toolchain.mapper import map_layers, parse_dtype


def measure(size: int, repeats: int, threads: int, reuse_tile: bool, vpi: bool,
            build_root: str | None) -> dict:
    params = FabricParams(rows=size, cols=size, spares=1, sram_words=256, imem_words=64,
                          num_colors=8, num_tasks=16)
    rng = np.random.default_rng(1)
    n = 8 * size  # an 8 x 8 block per PE
    W = rng.standard_normal((n, n)).astype(np.float32)
    mappings, image = map_layers([(W, None, False)], parse_dtype("fp32"), params)
    with tempfile.TemporaryDirectory(prefix="sim-speed-") as tmp:
        trace = Path(tmp) / "session.trace"
        t0 = time.perf_counter()
        driver = FabricDriver(params, backend="rtl", optimize=True,
                              rtl_options={"trace": trace, "threads": threads,
                                           "reuse_tile": reuse_tile, "build_root": build_root})
        start_s = time.perf_counter() - t0
        backend = driver._backend
        try:
            t0 = time.perf_counter()
            driver.load(image)
            load_s = time.perf_counter() - t0
            before = backend.stats()
            cycles, seconds, best = 0, 0.0, 0.0
            for _ in range(repeats):
                x = rng.standard_normal(n).astype(np.float32)
                t0 = time.perf_counter()
                raw, cyc = run_layers(driver, mappings, x)
                dt = time.perf_counter() - t0
                seconds += dt
                cycles += cyc[0]
                best = max(best, cyc[0] / dt)
                if not np.array_equal(raw[0], mappings[0].reference(x)):
                    raise SystemExit(f"{size}x{size}: the GEMV result is wrong")
            after = backend.stats()
            costs = backend.vpi_cost(2000) if vpi else None
        finally:
            driver.close()
        # The machine is shared: the best of two replays, and of the single GEMVs, are the
        # figures least disturbed by other jobs.
        replays = [replay(backend.build_dir, trace) for _ in range(2)]
    free = min(replays, key=lambda r: r["run_seconds"])
    driver_cps = best
    free_cps = max(c / s for r in replays for c, s in r["runs"])
    row = {"fabric": f"{size}x{size}", "physical_tiles": size * (size + 1), "threads": threads,
           "tile_library": reuse_tile, "build_s": round(backend.build_seconds, 1),
           "start_s": round(start_s, 1), "load_s": round(load_s, 1), "gemvs": repeats,
           "cycles": cycles, "seconds": round(seconds, 3),
           "driver_cps": round(driver_cps, 1), "free_cps": round(free_cps, 1),
           "ratio": round(driver_cps / free_cps, 3),
           "driver_cps_mean": round(cycles / seconds, 1),
           "free_cps_mean": round(free["run_cycles"] / free["run_seconds"], 1),
           # Of the GEMVs' wall time through the driver, the share the simulator ran free
           "simulating_share": round((after["simulating_s"] - before["simulating_s"])
                                     / seconds, 3),
           "free_cycles": free["run_cycles"], "free_seconds": round(free["run_seconds"], 3)}
    if costs:
        row["vpi_us"] = {k: round(v, 2) for k, v in costs.items()}
    return row


COLUMNS = [("fabric", 6, ""), ("thr", 3, ""), ("build s", 8, ".1f"), ("load s", 7, ".1f"),
           ("cycles", 8, ""), ("driver c/s", 11, ".1f"), ("free c/s", 10, ".1f"),
           ("ratio", 6, ".3f")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", default="2,4,8,16")
    ap.add_argument("--repeats", type=int, default=5, help="GEMVs per measurement")
    ap.add_argument("--threads", default="1", help="Verilator --threads values, e.g. 1,2")
    ap.add_argument("--monolithic", action="store_true",
                    help="one build per size instead of the shared tile library")
    ap.add_argument("--fresh", action="store_true",
                    help="build in a new directory (first builds, tile library included)")
    args = parse(ap)
    build_root = tempfile.mkdtemp(prefix="sim-speed-build-") if args.fresh else None
    rows = []
    first = True
    for size in (int(s) for s in args.sizes.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            rows.append(measure(size, args.repeats, threads, not args.monolithic, vpi=first,
                                build_root=build_root))
            first = False
            print(f"{rows[-1]['fabric']} threads={threads}: {rows[-1]['driver_cps']} cycles/s",
                  file=sys.stderr)
    vpi = rows[0].get("vpi_us") if rows else None

    def text():
        out = table(COLUMNS, [(r["fabric"], r["threads"], r["build_s"], r["load_s"], r["cycles"],
                               r["driver_cps"], r["free_cps"], r["ratio"]) for r in rows])
        if vpi:
            out += "\ncocotb access on Verilator (us): " + ", ".join(
                f"{k} {v}" for k, v in vpi.items())
        return out

    emit(args, {"sim_speed": rows}, text)
    if build_root:
        shutil.rmtree(build_root, ignore_errors=True)


if __name__ == "__main__":
    main()
