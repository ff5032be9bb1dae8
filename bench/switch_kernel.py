#!/usr/bin/env python3
"""The switch kernel (broadcast then reduce on one colour) on the RTL fabric: cycles, bit-exact.

``sim.toolchain.kernels.broadcast_reduce``: each row's PE 0 broadcasts ``x`` east on one colour,
every PE multiplies by its ``w``, and the products are summed back west to PE 0 on the same
colour; the switches move on control wavelets that the PEs send at the end of each vector. The
cycles run from the host's start wavelets until the fabric is idle (loading not counted). The
fabric has one spare column and ``--defects`` random defective tiles (bypassed; the repaired
array runs the same logical program). Each result is compared bit for bit with the sums written
from the kernel's definition.

Usage: ``python bench/switch_kernel.py [--json] [--fabric 3x3] [--lengths 16,64] [--defects 1]``
"""

from __future__ import annotations

import time

import numpy as np
from _common import emit, parse, parser, table

from fabric.array import FabricParams
from sim.apps.defects import random_defects
from sim.host.driver import FabricDriver
from sim.model.reference import row_sums
from sim.toolchain.kernels import P_BASE, broadcast_reduce


def measure(rows: int, cols: int, lengths: list[int], defects: int, sim: str | None) -> dict:
    params = FabricParams(rows=rows, cols=cols, spares=1, sram_words=256)
    t0 = time.perf_counter()
    driver = FabricDriver(params, backend="rtl", sim=sim)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    dmap = random_defects(rows, params.physical_cols, params.spares, defects, rng)
    driver.repair(dmap, fault="none")
    cases = []
    try:
        for length in lengths:
            x = rng.standard_normal((rows, length)).astype(np.float32)
            w = rng.standard_normal((rows, cols, length)).astype(np.float32)
            kernel = broadcast_reduce(x, w, params.pe_params())
            driver.load(kernel.image)
            for (edge, index), wavelets in kernel.inputs.items():
                driver.send(edge, index, wavelets)
            t1 = time.perf_counter()
            result = driver.run(expect={}, max_cycles=1_000_000)
            run_s = time.perf_counter() - t1
            got = np.array([driver.read_memory(r, 0, P_BASE, length) for r in range(rows)],
                           dtype=np.uint32)
            cases.append({
                "length": length,
                "cycles": result.cycles,
                "cycles_per_element": result.cycles / length,
                "vector_elements": int(result.elements.sum()),
                "bit_exact": bool(np.array_equal(got, row_sums(x, w).view(np.uint32))),
                "run_seconds": round(run_s, 2),
            })
    finally:
        driver.close()
    return {"fabric": f"{rows}x{cols}+1", "defects": int(dmap.sum()),
            "defect_map": dmap.astype(int).tolist(), "build_seconds": round(build_s, 1),
            "cases": cases}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--fabric", default="3x3", help="ROWSxCOLS (default 3x3)")
    ap.add_argument("--lengths", default="16,64", help="vector lengths, comma-separated")
    ap.add_argument("--defects", type=int, default=1, help="defective tiles (default 1)")
    args = parse(ap, sim=True)
    rows, cols = (int(v) for v in args.fabric.split("x"))
    lengths = [int(v) for v in args.lengths.split(",")]
    data = measure(rows, cols, lengths, args.defects, args.sim)

    def text() -> str:
        head = (f"broadcast-reduce on {data['fabric']} with {data['defects']} defect(s), "
                f"build {data['build_seconds']} s")
        rows_ = [(c["length"], c["cycles"], c["cycles_per_element"], c["vector_elements"],
                  "yes" if c["bit_exact"] else "NO") for c in data["cases"]]
        return head + "\n" + table([("length", 7, ""), ("cycles", 8, ""),
                                    ("cycles/elem", 12, ".1f"), ("elements", 9, ""),
                                    ("bit-exact", 10, "")], rows_)

    emit(args, data, text)


if __name__ == "__main__":
    main()
