"""The ``elaborate`` entry point: Verilog of a fabric plus a JSON and Markdown summary."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from .array import TILE_MODULE, FabricParams, emit_verilog

__all__ = ["elaborate"]


def _ports(params: FabricParams) -> dict[str, str]:
    C, R = params.cols, params.rows
    return {
        "n{j}_in / n{j}_out": f"north edge of logical column j = 0..{C - 1} (wavelet links)",
        "s{j}_in / s{j}_out": f"south edge, j = 0..{C - 1}",
        "w{i}_in / w{i}_out": f"west edge of logical row i = 0..{R - 1}",
        "e{i}_in / e{i}_out": f"east edge, i = 0..{R - 1}",
        "chain_in / chain_out": "configuration chain, 32-bit words (valid/ready)",
        "idle, error, tile_idle": "status",
    }


def elaborate(params: FabricParams, out_dir: Path | str, *, top: str | None = None) -> dict:
    """Write ``<top>.v`` (tile module once + top level), ``summary.json`` and ``summary.md``.

    Parameters
    ----------
    params : FabricParams
    out_dir : path
        Created if missing.
    top : str, optional
        Top module name (default :meth:`FabricParams.name`).

    Returns
    -------
    dict
        The summary: parameters, tile counts, module names, Verilog sizes (bytes), host ports
        and the elaboration time in seconds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    top = top or params.name()
    t0 = time.perf_counter()
    tile_v, top_v = emit_verilog(params, top)
    seconds = time.perf_counter() - t0
    verilog = out / f"{top}.v"
    verilog.write_text(tile_v + "\n" + top_v)
    summary = {
        "top": top,
        "tile_module": TILE_MODULE,
        "parameters": asdict(params),
        "logical_tiles": params.rows * params.cols,
        "physical_tiles": params.rows * params.physical_cols,
        "spare_tiles": params.rows * params.spares,
        "sram_bytes_per_tile": params.sram_words * 4,
        "verilog_file": verilog.name,
        "verilog_bytes": {"tile": len(tile_v), "top": len(top_v)},
        "ports": _ports(params),
        "elaboration_seconds": round(seconds, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"# Fabric `{top}`",
        "",
        f"{params.rows} x {params.cols} logical tiles on {params.rows} x {params.physical_cols} "
        f"physical tiles ({params.spares} spare column{'s' if params.spares != 1 else ''}), "
        f"elaborated in {seconds:.1f} s.",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in asdict(params).items()],
        "",
        "| Verilog | bytes |",
        "|---|---|",
        f"| tile module `{TILE_MODULE}` (emitted once) | {len(tile_v):,} |",
        f"| top level `{top}` ({params.rows * params.physical_cols} instances) | {len(top_v):,} |",
        "",
        "| ports | |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in _ports(params).items()],
        "",
    ]
    (out / "summary.md").write_text("\n".join(lines))
    return summary
