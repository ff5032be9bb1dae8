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

import click

from sim.cli.elaborate import elaborate
from sim.cli.run import run
from sim.cli.yield_ import yield_

__all__ = ["main"]


@click.group()
@click.version_option(package_name="openwafer")
def main() -> None:
    """openwafer: an open RTL model of a wafer-scale AI engine."""


main.add_command(elaborate)
main.add_command(yield_)
main.add_command(run)
