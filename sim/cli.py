"""The ``wafer`` command line.

::

    wafer elaborate --rows 16 --cols 16 --spares 1 -o build/fabric16
    wafer yield --rows 1000 --cols 1000 --spares 1,2,4,8 --density 0.001,0.01,0.1 \\
                --tile-area 0.0477 --samples 1000 --out build/yield
    wafer run mlp-digits --rows 4 --cols 4 --spares 1 --defects 2
    wafer run gemv --weights model.safetensors --tensor layer.weight --rows 4 --cols 4

Errors in the user's input are reported as one clear line (exit status 2), never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

__all__ = ["main"]

#: Python parameter names in library errors -> the flags of this command line.
FLAG_NAMES = {
    "rows": "--rows", "cols": "--cols", "spares": "--spares", "spares_list": "--spares",
    "density": "--density", "densities": "--density", "defect_density": "--density",
    "tile_area_mm2": "--tile-area", "samples": "--samples", "seed": "--seed",
    "num_colors": "--colors", "num_tasks": "--tasks", "sram_words": "--sram-words",
    "imem_words": "--imem-words",
}


def with_flag_names(message: str, flags: dict[str, str] = FLAG_NAMES) -> str:
    """``message`` with the Python parameter names it mentions spelled as command-line flags.

    Names with an underscore (``tile_area_mm2``) are replaced wherever they appear as a word;
    plain names (``rows``) only at the start of the message, where they name the parameter
    (elsewhere they are ordinary words: "use fewer rows").
    """
    for name, flag in flags.items():
        if "_" in name:
            message = re.sub(rf"(?<![\w-]){name}(?!\w)", flag, message)
        elif re.match(rf"{name}\b(?!-)", message):
            message = flag + message[len(name):]
    return message


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{what} must be a comma-separated list of numbers, "
                                 f"not {text!r}") from None
    if not values:
        raise click.BadParameter(f"{what} needs at least one value")
    return values


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{what} must be a comma-separated list of integers, "
                                 f"not {text!r}") from None
    if not values:
        raise click.BadParameter(f"{what} needs at least one value")
    return values


class _UserError(click.ClickException):
    exit_code = 2


def _output_error(out_dir, exc: OSError) -> _UserError:
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out_dir) else ""
    return _UserError(f"cannot write to the output directory {out_dir}{where}: {reason}; "
                      f"choose a writable directory with --out")


@click.group()
@click.version_option(package_name="openwafer")
def main() -> None:
    """openwafer: an open RTL model of a wafer-scale AI engine."""


@main.command()
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
@click.option("--fault-injection", is_flag=True, help="Add fault-injection inputs (simulation).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def elaborate(rows, cols, spares, sram_words, imem_words, num_colors, num_tasks, fault_injection,
              out_dir, as_json):
    """Write the Verilog of a fabric and a JSON + Markdown summary."""
    from fabric.array import FabricParams
    from fabric.elaborate import elaborate as run

    if num_tasks is None:
        num_tasks = max(16, num_colors)
    try:
        params = FabricParams(rows=rows, cols=cols, spares=spares, sram_words=sram_words,
                              imem_words=imem_words, num_colors=num_colors, num_tasks=num_tasks,
                              fault_injection=fault_injection)
    except (TypeError, ValueError) as exc:
        raise _UserError(with_flag_names(str(exc))) from None
    try:
        summary = run(params, out_dir)
    except OSError as exc:
        raise _output_error(out_dir, exc) from None
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


@main.command(name="yield")
@click.option("--rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows of tiles.")
@click.option("--cols", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Logical columns.")
@click.option("--spares", default="1,2,4,8", show_default=True,
              help="Spare columns to compare (comma-separated).")
@click.option("--density", default="0.0001,0.001,0.01,0.1,1", show_default=True,
              help="Defect densities in defects/mm² (comma-separated).")
@click.option("--tile-area", type=float, default=0.0477, show_default=True,
              help="Tile area in mm² (WSE-3: 46,225 mm² / 970k cores).")
@click.option("--samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Monte Carlo wafers per point.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/yield",
              show_default=True, help="Directory for yield.png and yield.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def yield_(rows, cols, spares, density, tile_area, samples, seed, out_dir, as_json):
    """Monte Carlo probability that a wafer can be repaired, for several spare counts."""
    from tqdm import tqdm

    from sim.analysis.yield_model import plot_yield, yield_sweep

    spares_list = _ints(spares, "--spares")
    densities = _floats(density, "--density")
    out = Path(out_dir)
    try:  # before the sweep, so an unusable --out fails at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(out_dir, exc) from None
    total = len(spares_list) * len(densities)
    with tqdm(total=total, desc="yield", unit="point", disable=as_json or None,
              file=sys.stderr) as bar:
        try:
            sweep = yield_sweep(rows, cols, spares_list, densities, tile_area_mm2=tile_area,
                                samples=samples, seed=seed,
                                progress=lambda done, _total: bar.update(done - bar.n))
        except (TypeError, ValueError) as exc:
            raise _UserError(with_flag_names(str(exc))) from None
    records = sweep.to_records()
    try:
        png = plot_yield(sweep, out / "yield.png")
        (out / "yield.json").write_text(json.dumps(records, indent=2) + "\n")
    except OSError as exc:
        raise _output_error(out_dir, exc) from None
    if as_json:
        click.echo(json.dumps({"points": records, "plot": str(png)}))
        return
    click.echo(f"{rows} rows x ({cols} + S) columns, tile {tile_area} mm², {samples} samples "
               f"per point")
    click.echo(sweep.to_markdown(layout="grid"))
    click.echo(f"plot: {png}")


def _register_run() -> None:
    try:
        from sim.run_cli import run
    except ImportError:  # the workloads are optional at import time
        return
    main.add_command(run)


_register_run()

if __name__ == "__main__":
    main()
