"""cocotb glue: harness, link and config-bus drivers, fabric server, PE and router benches."""
