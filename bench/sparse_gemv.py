#!/usr/bin/env python3
"""Sparse against dense GEMV on the RTL fabric: cycles as x's zeros rise, bit-exact.

``sim.toolchain.mapper`` maps one GEMV ``y = W x`` twice: dense (every entry of ``x`` sent down
its PE column, an AXPY per entry) and sparse (only the nonzeros sent, as sparse wavelets
broadcast from PE (0, 0); every PE's range filter keeps its column's indices and its data task
runs one indexed AXPY per kept wavelet; a control wavelet ends the vector). Both run on the same
repaired RTL fabric (one spare column, ``--defects`` random defective tiles) with BF16 weights;
for each fraction of zeros in ``x`` the bench reports each mapping's cycles (host inputs sent
until every output has left the east edge; loading not counted), the speed-up, and whether each
result equals its golden model bit for bit. Useful MACs count only the nonzeros' products.

Usage: ``python bench/sparse_gemv.py [--json] [--fabric 3x3] [--shape 48x96] [--zeros 0,0.5,0.9]
[--defects 1]``
"""

from __future__ import annotations

import time

import numpy as np
from _common import emit, parse, parser, table

from fabric.array import FabricParams
from sim.apps.defects import random_defects
from sim.apps.layers import run_layers
from sim.host.driver import FabricDriver
from sim.toolchain.mapper import map_layers, parse_dtype


def measure(rows: int, cols: int, M: int, K: int, zeros: list[float], defects: int,
            sim: str | None) -> dict:
    params = FabricParams(rows=rows, cols=cols, spares=1, sram_words=1024, imem_words=128,
                          num_colors=8, num_tasks=16)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((M, K)).astype(np.float32)
    fmt = parse_dtype("bf16")
    maps = {mode: map_layers([(W, None, False)], fmt, params, sparse=mode == "sparse")
            for mode in ("dense", "sparse")}
    dmap = random_defects(rows, params.physical_cols, params.spares, defects, rng)
    t0 = time.perf_counter()
    driver = FabricDriver(params, backend="rtl", sim=sim, defects=dmap, fault="none")
    golden = FabricDriver(params, backend="golden")
    build_s = time.perf_counter() - t0
    cases = []
    try:
        for fraction in zeros:
            x = rng.standard_normal(K).astype(np.float32)
            x[rng.permutation(K)[:round(fraction * K)]] = 0.0
            case = {"zeros": fraction}
            for mode, (mappings, image) in maps.items():
                m = mappings[0]
                driver.load(image)
                golden.load(image)
                raw, cycles = run_layers(driver, mappings, x)
                g_raw, _ = run_layers(golden, mappings, x)
                nonzeros = len(m.sparse_x(x)[1]) if mode == "sparse" else K
                case[mode] = {
                    "cycles": cycles[0],
                    "x_sent": nonzeros,
                    "useful_macs_per_cycle": round(M * np.count_nonzero(x) / cycles[0], 3),
                    "bit_exact": bool(np.array_equal(raw[0], g_raw[0])
                                      and np.array_equal(raw[0], m.reference(x))),
                }
            case["speedup"] = round(case["dense"]["cycles"] / case["sparse"]["cycles"], 2)
            cases.append(case)
    finally:
        driver.close()
    return {"fabric": f"{rows}x{cols}+1", "shape": [M, K], "dtype": "bf16",
            "defects": int(dmap.sum()), "defect_map": dmap.astype(int).tolist(),
            "build_seconds": round(build_s, 1), "cases": cases}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--fabric", default="3x3", help="ROWSxCOLS (default 3x3)")
    ap.add_argument("--shape", default="48x96", help="MxK of W (default 48x96)")
    ap.add_argument("--zeros", default="0,0.5,0.9",
                    help="fractions of x set to zero, comma-separated (default 0,0.5,0.9)")
    ap.add_argument("--defects", type=int, default=1, help="defective tiles (default 1)")
    args = parse(ap, sim=True)
    rows, cols = (int(v) for v in args.fabric.split("x"))
    M, K = (int(v) for v in args.shape.split("x"))
    zeros = [float(v) for v in args.zeros.split(",")]
    data = measure(rows, cols, M, K, zeros, args.defects, args.sim)

    def text() -> str:
        head = (f"GEMV {M}x{K} bf16 on {data['fabric']} with {data['defects']} defect(s), "
                f"build {data['build_seconds']} s")
        rows_ = [(c["zeros"], c["dense"]["cycles"], c["sparse"]["x_sent"],
                  c["sparse"]["cycles"], c["speedup"],
                  "yes" if c["dense"]["bit_exact"] and c["sparse"]["bit_exact"] else "NO")
                 for c in data["cases"]]
        return head + "\n" + table([("zeros", 6, ".2f"), ("dense cyc", 10, ""),
                                    ("x sent", 7, ""), ("sparse cyc", 11, ""),
                                    ("speed-up", 9, ".2f"), ("bit-exact", 10, "")], rows_)

    emit(args, data, text)


if __name__ == "__main__":
    main()
