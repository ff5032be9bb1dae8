"""The tile-local configuration bus.

Every block that holds configuration (the router's route table, the PE's program, task table,
DSD table and SRAM) exposes one :class:`ConfigBusSignature` port. Inside a tile, the
configuration-chain node (:mod:`hdl.config_chain`) drives it with word addresses taken from
configuration packets; in block benches the testbench drives it directly.

Timing, in cycles: a write (``we``) takes effect at the end of the cycle it is asserted; a read
(``re``) returns ``rdata`` in the following cycle. ``we`` and ``re`` are never asserted together.
Addresses are in 32-bit words.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ConfigBusSignature"]


class ConfigBusSignature(wiring.Signature):
    """Signature of a configuration bus (initiator's view).

    Parameters
    ----------
    addr_width : int
        Width of the word address, in bits (1 to 32).

    Members
    -------
    addr : ``Out(addr_width)``
        Word address.
    wdata : ``Out(32)``
        Write data.
    we : ``Out(1)``
        Write strobe.
    re : ``Out(1)``
        Read strobe; ``rdata`` is valid in the next cycle.
    rdata : ``In(32)``
        Read data.

    Raises
    ------
    ValueError
        If ``addr_width`` is outside 1 to 32.
    """

    def __init__(self, addr_width: int):
        if not isinstance(addr_width, int) or not 1 <= addr_width <= 32:
            raise ValueError(f"addr_width must be an integer from 1 to 32, not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__(
            {
                "addr": Out(addr_width),
                "wdata": Out(32),
                "we": Out(1),
                "re": Out(1),
                "rdata": In(32),
            }
        )

    def __eq__(self, other):
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __hash__(self):
        return hash((type(self), self.addr_width))

    def __repr__(self):
        return f"ConfigBusSignature({self.addr_width})"
