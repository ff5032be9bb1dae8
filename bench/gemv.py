#!/usr/bin/env python3
"""GEMV on the RTL fabric: cycles, MACs per cycle and PE utilisation.

Utilisation = useful MACs / (logical PEs x cycles); the peak is one MAC per PE per cycle. The
cycles run from the start of the GEMV (PEs started, ``x`` offered at the north edge) until the
last result has left the east edge and the fabric is idle; loading the weights is not counted.
Every result is checked bit for bit against the numpy reference with the fabric's rounding order.

The simulator is Verilator at -O2 with the tile compiled once for every fabric size
(``sim/tb/harness.py``); the host engines of the simulation top stream the weights through the
configuration chain and the vectors through the edges with no Python per cycle.

Usage: ``python bench/gemv.py [--json] [--cases 4x4:256x256,8x8:128x128] [--dtype fp32]
[--no-optimize]``
"""

from __future__ import annotations

import math
import time

import numpy as np
from _common import emit, parse, parser, table

from fabric.array import FabricParams
from sim.apps.layers import run_layers
from sim.host.driver import FabricDriver
from sim.toolchain.mapper import map_layers, parse_dtype

DEFAULT_CASES = "4x4:64x64,4x4:256x256,4x4:128x512,8x8:128x128,8x8:256x256,16x16:128x128"


def parse_cases(text: str) -> list[tuple[int, int, int, int]]:
    cases = []
    for item in text.split(","):
        fabric, shape = item.split(":")
        r, c = (int(v) for v in fabric.split("x"))
        m, k = (int(v) for v in shape.split("x"))
        cases.append((r, c, m, k))
    return cases


def sram_for(rows, cols, m, k, dtype) -> int:
    mr, kc = math.ceil(m / rows), math.ceil(k / cols)
    words = 2 * mr + math.ceil(mr * kc * parse_dtype(dtype).bits / 32) + 16
    return max(256, 1 << math.ceil(math.log2(words)))


def measure(cases, dtype: str, sim: str | None, optimize: bool = True) -> list[dict]:
    rows_out = []
    # One SRAM size for every fabric: the tile is then the same Verilog everywhere and is
    # compiled once (the library the harness shares between fabric sizes).
    sram = max(sram_for(r, c, m, k, dtype) for r, c, m, k in cases)
    by_fabric: dict[tuple[int, int, int], list] = {}
    for r, c, m, k in cases:
        by_fabric.setdefault((r, c, sram), []).append((m, k))
    rng = np.random.default_rng(0)
    for (r, c, sram), shapes in by_fabric.items():
        params = FabricParams(rows=r, cols=c, spares=1, sram_words=sram)
        t0 = time.perf_counter()
        driver = FabricDriver(params, backend="rtl", sim=sim, optimize=optimize)
        start_s = time.perf_counter() - t0
        try:
            for m, k in shapes:
                W = rng.standard_normal((m, k)).astype(np.float32)
                x = rng.standard_normal(k).astype(np.float32)
                mappings, image = map_layers([(W, None, False)], parse_dtype(dtype), params)
                t0 = time.perf_counter()
                driver.load(image)
                load_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                raw, cycles = run_layers(driver, mappings, x)
                run_s = time.perf_counter() - t0
                mp = mappings[0]
                exact = bool(np.array_equal(raw[0], mp.reference(x)))
                cyc = cycles[0]
                rows_out.append({
                    "fabric": f"{r}x{c}", "M": m, "K": k, "dtype": dtype,
                    "block": f"{mp.Mr}x{mp.Kc}", "cycles": cyc, "macs": mp.macs,
                    "macs_per_cycle": round(mp.macs / cyc, 2),
                    "utilisation": round(mp.macs / (r * c * cyc), 4),
                    "bit_exact": exact, "load_seconds": round(load_s, 1),
                    "run_seconds": round(run_s, 1), "build_and_start_seconds": round(start_s, 1),
                })
                start_s = 0.0
        finally:
            driver.close()
    return rows_out


COLUMNS = [("fabric", 6, ""), ("M x K", 10, ""), ("block", 7, ""), ("cycles", 8, ""),
           ("MACs/cycle", 11, ".2f"), ("utilisation", 11, ".3f"), ("exact", 6, ""),
           ("build s", 8, ".1f"), ("load s", 7, ".1f"), ("run s", 6, ".1f")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--cases", default=DEFAULT_CASES,
                    help=f"RxC:MxK list (default {DEFAULT_CASES})")
    ap.add_argument("--dtype", default="fp32", help="weight format (default fp32)")
    ap.add_argument("--no-optimize", action="store_true", help="C++ at -O0 (faster builds)")
    args = parse(ap, sim=True)
    t0 = time.perf_counter()
    results = measure(parse_cases(args.cases), args.dtype, args.sim, not args.no_optimize)
    wall = round(time.perf_counter() - t0, 1)
    emit(args, {"gemv": results, "wall_seconds": wall}, lambda: table(COLUMNS, [
        (r["fabric"], f"{r['M']:>4} x {r['K']:<4}", r["block"], r["cycles"], r["macs_per_cycle"],
         r["utilisation"], "yes" if r["bit_exact"] else "NO", r["build_and_start_seconds"],
         r["load_seconds"], r["run_seconds"]) for r in results]) + f"\nwall {wall} s")


if __name__ == "__main__":
    main()
