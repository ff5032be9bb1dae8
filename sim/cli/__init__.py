"""The ``wafer`` command line: one module per command, the group in sim.cli.wafer."""
