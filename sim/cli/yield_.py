"""``wafer yield``: the Monte Carlo yield sweep of the spare-column redundancy, as a table and a
plot."""

from __future__ import annotations

import json
import sys

import click

from sim.cli.errors import UserError, number_list, output_dir, output_error, with_flag_names

__all__ = ["yield_"]


@click.command(name="yield")
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

    spares_list = number_list(spares, "--spares", int)
    densities = number_list(density, "--density", float)
    out = output_dir(out_dir)  # before the sweep, so an unusable --out fails at once
    total = len(spares_list) * len(densities)
    with tqdm(total=total, desc="yield", unit="point", disable=as_json or None,
              file=sys.stderr) as bar:
        try:
            sweep = yield_sweep(rows, cols, spares_list, densities, tile_area_mm2=tile_area,
                                samples=samples, seed=seed,
                                progress=lambda done, _total: bar.update(done - bar.n))
        except (TypeError, ValueError) as exc:
            raise UserError(with_flag_names(str(exc))) from None
    records = sweep.to_records()
    try:
        png = plot_yield(sweep, out / "yield.png")
        (out / "yield.json").write_text(json.dumps(records, indent=2) + "\n")
    except OSError as exc:
        raise output_error(out_dir, exc) from None
    if as_json:
        click.echo(json.dumps({"points": records, "plot": str(png)}))
        return
    click.echo(f"{rows} rows x ({cols} + S) columns, tile {tile_area} mm², {samples} samples "
               f"per point")
    click.echo(sweep.to_markdown(layout="grid"))
    click.echo(f"plot: {png}")
