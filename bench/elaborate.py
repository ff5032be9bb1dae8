#!/usr/bin/env python3
"""Elaboration time and Verilog size of fabrics of growing size.

The tile is emitted once and instantiated by name, so the cost of a bigger fabric is its
instance list and wiring: elaboration time should grow about linearly with the tile count.

Usage: ``python bench/elaborate.py [--json] [--sizes 2,4,8,16]``
"""

from __future__ import annotations

import time

from _common import emit, parse, parser, table

from fabric.array import FabricParams, emit_verilog


def measure(n: int) -> dict:
    params = FabricParams(rows=n, cols=n, spares=1)
    t0 = time.perf_counter()
    tile_v, top_v = emit_verilog(params)
    seconds = time.perf_counter() - t0
    return {"rows": n, "cols": n, "physical_tiles": n * (n + 1),
            "elaboration_seconds": round(seconds, 2),
            "verilog_bytes": len(tile_v) + len(top_v), "tile_verilog_bytes": len(tile_v),
            "top_verilog_bytes": len(top_v)}


COLUMNS = [("fabric", 9, ""), ("phys. tiles", 11, ""), ("seconds", 8, ".2f"),
           ("Verilog (bytes)", 16, ","), ("top only", 12, ",")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", default="2,4,8,16", help="square fabric sizes (default 2,4,8,16)")
    args = parse(ap)
    rows = [measure(int(n)) for n in args.sizes.split(",")]
    emit(args, {"fabrics": rows}, lambda: table(COLUMNS, [
        (f"{r['rows']:>4}x{r['cols']:<4}", r["physical_tiles"], r["elaboration_seconds"],
         r["verilog_bytes"], r["top_verilog_bytes"]) for r in rows]))


if __name__ == "__main__":
    main()
