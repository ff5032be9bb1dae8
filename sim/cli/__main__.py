"""``python -m sim.cli``: the ``wafer`` command."""

from sim.cli.wafer import main

main()
