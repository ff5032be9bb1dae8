"""Golden models, assembler, mapper, host driver and simulation harness."""
