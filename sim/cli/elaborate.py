"""``wafer elaborate``: the Verilog of a fabric and its summary."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sim.cli.errors import UserError, output_error, with_flag_names

__all__ = ["elaborate"]


@click.command()
@click.option("--rows", type=click.IntRange(min=1), default=4, show_default=True,
              help="Logical rows.")
@click.option("--cols", type=click.IntRange(min=1), default=4, show_default=True,
              help="Logical columns.")
@click.option("--spares", type=click.IntRange(min=0), default=1, show_default=True,
              help="Spare columns.")
@click.option("--sram-words", type=int, default=1024, show_default=True,
              help="SRAM per PE, in 32-bit words.")
@click.option("--imem-words", type=int, default=256, show_default=True,
              help="Program memory per PE, in 32-bit words.")
@click.option("--colors", "num_colors", type=int, default=8, show_default=True,
              help="Routable colours (1 to 32).")
@click.option("--tasks", "num_tasks", type=int, default=None,
              help="Task-table entries per PE, from --colors to 64 (each colour has a data "
                   "task; the rest are local tasks). Default: max(16, --colors).")
@click.option("--output-register", is_flag=True,
              help="Register the routers' outputs: two cycles per hop, 3-wavelet queues (the "
                   "Fmax trade-off of docs/architecture.md).")
@click.option("--fault-injection", is_flag=True, help="Add fault-injection inputs (simulation).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def elaborate(rows, cols, spares, sram_words, imem_words, num_colors, num_tasks, output_register,
              fault_injection, out_dir, as_json):
    """Write the Verilog of a fabric and a JSON + Markdown summary."""
    from fabric.array import FabricParams, registered_outputs
    from fabric.elaborate import elaborate as run

    if num_tasks is None:
        num_tasks = max(16, num_colors)
    try:
        params = FabricParams(rows=rows, cols=cols, spares=spares, sram_words=sram_words,
                              imem_words=imem_words, num_colors=num_colors, num_tasks=num_tasks,
                              fault_injection=fault_injection,
                              **(registered_outputs() if output_register else {}))
    except (TypeError, ValueError) as exc:
        raise UserError(with_flag_names(str(exc))) from None
    try:
        summary = run(params, out_dir)
    except OSError as exc:
        raise output_error(out_dir, exc) from None
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"{summary['top']}: {summary['logical_tiles']} logical / "
               f"{summary['physical_tiles']} physical tiles, elaborated in "
               f"{summary['elaboration_seconds']} s")
    click.echo(f"  {Path(out_dir) / summary['verilog_file']}  "
               f"(tile {summary['verilog_bytes']['tile']:,} B, "
               f"top {summary['verilog_bytes']['top']:,} B)")
    click.echo(f"  {Path(out_dir) / 'summary.md'}, summary.json")
