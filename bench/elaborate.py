#!/usr/bin/env python3
"""Elaboration time and Verilog size of fabrics of growing size.

The tile is emitted once and instantiated by name, so the cost of a bigger fabric is its
instance list and wiring: elaboration time should grow about linearly with the tile count.

Usage: ``python bench/elaborate.py [--json] [--sizes 2,4,8,16]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabric.array import FabricParams, emit_verilog  # noqa: E402


def measure(n: int) -> dict:
    params = FabricParams(rows=n, cols=n, spares=1)
    t0 = time.perf_counter()
    tile_v, top_v = emit_verilog(params)
    seconds = time.perf_counter() - t0
    return {"rows": n, "cols": n, "physical_tiles": n * (n + 1),
            "elaboration_seconds": round(seconds, 2),
            "verilog_bytes": len(tile_v) + len(top_v), "tile_verilog_bytes": len(tile_v),
            "top_verilog_bytes": len(top_v)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--sizes", default="2,4,8,16", help="square fabric sizes (default 2,4,8,16)")
    args = ap.parse_args()
    rows = [measure(int(n)) for n in args.sizes.split(",")]
    if args.json:
        print(json.dumps({"fabrics": rows}))
        return
    print(f"{'fabric':>9} {'phys. tiles':>11} {'seconds':>8} {'Verilog (bytes)':>16} "
          f"{'top only':>12}")
    for r in rows:
        print(f"{r['rows']:>4}x{r['cols']:<4} {r['physical_tiles']:>11} "
              f"{r['elaboration_seconds']:>8.2f} {r['verilog_bytes']:>16,} "
              f"{r['top_verilog_bytes']:>12,}")


if __name__ == "__main__":
    main()
