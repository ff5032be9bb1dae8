"""cocotb driver for a block's configuration bus (:class:`hdl.config_bus.ConfigBusSignature`).

Used by block benches (router, PE); whole fabrics are configured through the configuration chain
instead (:mod:`sim.tb.fabric_server`).
"""

from __future__ import annotations

from cocotb.triggers import FallingEdge, NextTimeStep, ReadOnly

__all__ = ["ConfigBusDriver"]


class ConfigBusDriver:
    """Drives ``<prefix>__addr/wdata/we/re`` and reads ``<prefix>__rdata`` of a DUT.

    Each access takes one cycle (a read returns its data in the next cycle, as the bus defines).
    """

    def __init__(self, dut, prefix: str = "cfg"):
        self.dut = dut
        self.addr = getattr(dut, f"{prefix}__addr")
        self.wdata = getattr(dut, f"{prefix}__wdata")
        self.we = getattr(dut, f"{prefix}__we")
        self.re = getattr(dut, f"{prefix}__re")
        self.rdata = getattr(dut, f"{prefix}__rdata")
        self.we.value = 0
        self.re.value = 0

    async def write(self, addr: int, value: int) -> None:
        """Write one word."""
        await FallingEdge(self.dut.clk)
        self.addr.value = addr
        self.wdata.value = value & 0xFFFF_FFFF
        self.we.value = 1
        await FallingEdge(self.dut.clk)
        self.we.value = 0

    async def write_block(self, base: int, values) -> None:
        """Write consecutive words starting at ``base``, one per cycle."""
        await FallingEdge(self.dut.clk)
        for i, v in enumerate(values):
            self.addr.value = base + i
            self.wdata.value = int(v) & 0xFFFF_FFFF
            self.we.value = 1
            await FallingEdge(self.dut.clk)
        self.we.value = 0

    async def read(self, addr: int) -> int:
        """Read one word."""
        await FallingEdge(self.dut.clk)
        self.addr.value = addr
        self.re.value = 1
        await FallingEdge(self.dut.clk)
        self.re.value = 0
        await ReadOnly()
        value = int(self.rdata.value)
        await NextTimeStep()  # leave the read-only phase so the caller may drive signals
        return value

    async def read_block(self, base: int, count: int) -> list[int]:
        """Read ``count`` consecutive words starting at ``base``."""
        return [await self.read(base + i) for i in range(count)]
