"""The tile-local configuration bus.

Every block that holds configuration (the router's route table, the PE's program, task table,
DSD table and SRAM) exposes one :class:`ConfigBusSignature` port. Inside a tile, the
configuration-chain node (:mod:`hdl.config_chain`) drives it with word addresses taken from
configuration packets; in block benches the testbench drives it directly.

Timing, in cycles: a write (``we``) takes effect at the end of the cycle it is asserted; a read
(``re``) returns ``rdata`` in the following cycle. ``we`` and ``re`` are never asserted together.
Addresses are in 32-bit words.
"""

from amaranth.lib.wiring import In, Out

from .params import check_int
from .signature import ParamSignature

__all__ = ["ConfigBusSignature"]


class ConfigBusSignature(ParamSignature):
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
    TypeError, ValueError
        If ``addr_width`` is not an integer from 1 to 32 (:func:`hdl.params.check_int`).
    """

    PARAMS = ("addr_width",)

    def __init__(self, addr_width: int):
        check_int("addr_width", addr_width, 1, 32, "bits")
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
