"""Kernel toolchain: the PE assembler, route tables and the workload mapper."""
