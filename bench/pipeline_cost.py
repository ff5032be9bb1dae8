#!/usr/bin/env python3
"""The layer pipeline's cycles per image on the RTL against its planner's estimate.

One fp32 layer with bias and ReLU on a row of PEs (an ``"h"`` region of one output chunk,
``sim.toolchain.pipeline``), for several outputs per PE (``Mo``, hence banks of partial sums)
and input chunkings: its steady-state cycles per image on the RTL (41 images back to back less
one alone, over 40) beside ``_pe_cycles``, the estimate the planner ranks layouts by (the
busiest PE's), and their difference. Every run's raw outputs are checked bit for bit against
the mapping's numpy reference.

Usage: ``python bench/pipeline_cost.py [--json] [--outputs 4,8,16,24]
[--chunks 22/22,22,22/22,22,16]``
"""

from __future__ import annotations

import time

import numpy as np
from _common import emit, parse, parser, table

from fabric.array import FabricParams
from hdl.formats import Format
from sim.apps.layers import run_pipelined
from sim.host.driver import FabricDriver
from sim.toolchain.pipeline import Region, map_pipeline

IMAGES = 41


def measure(outputs: list[int], chunkings: list[tuple[int, ...]], sim: str | None) -> dict:
    cols = max(len(c) for c in chunkings)
    params = FabricParams(rows=1, cols=cols, spares=0, num_colors=24, num_tasks=32)
    t0 = time.perf_counter()
    driver = FabricDriver(params, backend="rtl", sim=sim, optimize=True)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    cases = []
    try:
        for mo in outputs:
            for ins in chunkings:
                K = sum(ins)
                W = (rng.standard_normal((mo, K)) / np.sqrt(K)).astype(np.float32)
                b = rng.standard_normal(mo).astype(np.float32)
                pm = map_pipeline([(W, b, True)], Format.FP32, params,
                                  regions=[Region("h", 0, 0, (mo,), ins)])
                driver.load(pm.image)
                _, alone = run_pipelined(driver, pm, rng.standard_normal((1, K)))
                xs = rng.standard_normal((IMAGES, K)).astype(np.float32)
                raw, batch = run_pipelined(driver, pm, xs)
                period = (batch - alone) / (IMAGES - 1)
                estimate = pm.plans[0].cycles
                cases.append({"outputs": mo, "chunks": list(ins),
                              "banks": pm.banks(pm.regions[0], 0),
                              "cycles_per_image": period, "estimate": estimate,
                              "error": round(estimate - period, 1),
                              "bit_exact": bool(np.array_equal(raw, pm.reference(xs)))})
    finally:
        driver.close()
    return {"build_seconds": round(build_s, 1), "cases": cases,
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--outputs", default="4,8,16,24", help="outputs per PE (comma-separated)")
    ap.add_argument("--chunks", default="22/22,22,22/22,22,16",
                    help="input chunkings, '/'-separated, each comma-separated")
    args = parse(ap, sim=True)
    outputs = [int(v) for v in args.outputs.split(",")]
    chunkings = [tuple(int(v) for v in c.split(",")) for c in args.chunks.split("/")]
    data = measure(outputs, chunkings, args.sim)

    def text() -> str:
        rows = [(c["outputs"], ",".join(map(str, c["chunks"])), c["banks"],
                 c["cycles_per_image"], c["estimate"], c["error"],
                 "yes" if c["bit_exact"] else "NO") for c in data["cases"]]
        return (table([("Mo", 4, ""), ("chunks", 10, ""), ("banks", 6, ""),
                       ("cycles/image", 13, ".1f"), ("estimate", 9, ""), ("est-RTL", 8, ".1f"),
                       ("exact", 6, "")], rows)
                + f"\nbuild {data['build_seconds']} s, wall {data['wall_seconds']} s")

    emit(args, data, text)


if __name__ == "__main__":
    main()
