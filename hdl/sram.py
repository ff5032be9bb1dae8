"""The PE's SRAM bank: 32-bit words, two read ports and one byte-enabled write port.

Banking choice (see ``docs/architecture.md``): the WSE reads two 64-bit words and writes one per
cycle from 8 banks. A vector instruction here needs, per element, up to two reads (two sources,
or a source and an accumulating destination) and one write, so the bank has exactly that: two
synchronous read ports and one write port, built on :class:`amaranth.lib.memory.Memory`. yosys
maps it to block RAM by replicating the storage once per read port (two ECP5 DP16KD columns per
16 Kbit), which is the cost of two reads per cycle without address-interleaved banks.

Read ports are not transparent: a read in the cycle of a write to the same word returns the old
word in simulation, and an undefined one in synthesis (:mod:`hdl.block_ram`): the PE's hazard
interlock never uses such a read.
"""

from amaranth.hdl import Module, Mux
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .block_ram import DONT_CARE_COLLISION, registered_read
from .config_bus import ConfigBusSignature
from .params import check_int
from .signature import ParamSignature

__all__ = ["SRAMBank", "SRAMPortSignature", "check_sram_words", "MAX_SRAM_WORDS"]

#: Largest SRAM: 16384 words (64 KiB) keeps byte element addresses within 16-bit DSD fields.
MAX_SRAM_WORDS = 1 << 14


def check_sram_words(sram_words: int) -> int:
    """Validate an ``sram_words`` parameter (words of 32 bits).

    Raises
    ------
    TypeError
        If it is not an integer.
    ValueError
        If it is outside 16 .. 16384 words.
    """
    return check_int("sram_words", sram_words, 16, MAX_SRAM_WORDS, "32-bit words (64 KiB)")


class SRAMPortSignature(ParamSignature):
    """The datapath's port of an :class:`SRAMBank` (initiator's view): two reads, one write.

    Parameters
    ----------
    sram_words : int
        Depth of the bank in 32-bit words (sets the address width).

    Members
    -------
    rd_a_addr, rd_b_addr : ``Out(range(sram_words))``
        Word addresses of the two reads; their data appear on ``rd_a_data`` / ``rd_b_data``
        one cycle later.
    rd_a_data, rd_b_data : ``In(32)``
    wr_addr : ``Out(range(sram_words))``
    wr_data : ``Out(32)``
    wr_en : ``Out(4)``
        Byte enables (bit ``i`` writes bits ``[8i+7:8i]``).
    """

    PARAMS = ("sram_words",)

    def __init__(self, sram_words: int):
        self.sram_words = check_sram_words(sram_words)
        super().__init__({
            "rd_a_addr": Out(range(sram_words)),
            "rd_a_data": In(32),
            "rd_b_addr": Out(range(sram_words)),
            "rd_b_data": In(32),
            "wr_addr": Out(range(sram_words)),
            "wr_data": Out(32),
            "wr_en": Out(4),
        })


class SRAMBank(wiring.Component):
    """``sram_words`` x 32-bit SRAM with two read ports and a byte-enabled write port.

    Parameters
    ----------
    sram_words : int
        Depth in 32-bit words (16 to 16384).

    Members
    -------
    bus : ``In(SRAMPortSignature(sram_words))``
        The datapath's port.
    host : ``In(ConfigBusSignature(address bits of sram_words))``
        Whole-word access for the configuration path: a read uses read port A (its data on
        ``host.rdata`` one cycle later), a write the write port. It takes precedence over
        ``bus`` in the cycle it is used; the owner keeps the datapath quiet meanwhile.

    Raises
    ------
    TypeError, ValueError
        For a bad ``sram_words``.
    """

    def __init__(self, sram_words: int):
        self.sram_words = check_sram_words(sram_words)
        super().__init__({
            "bus": In(SRAMPortSignature(sram_words)),
            "host": In(ConfigBusSignature(max(1, (sram_words - 1).bit_length()))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=32, depth=self.sram_words, init=[],
                                               attrs=DONT_CARE_COLLISION)
        wr = mem.write_port(granularity=8)
        bus, host = self.bus, self.host
        rd_a = registered_read(m, mem, addr=Mux(host.re, host.addr, bus.rd_a_addr), name="rd_a")
        rd_b = registered_read(m, mem, addr=bus.rd_b_addr, name="rd_b")
        m.d.comb += [
            wr.addr.eq(Mux(host.we, host.addr, bus.wr_addr)),
            wr.data.eq(Mux(host.we, host.wdata, bus.wr_data)),
            wr.en.eq(Mux(host.we, 0b1111, bus.wr_en)),
            bus.rd_a_data.eq(rd_a),
            bus.rd_b_data.eq(rd_b),
            host.rdata.eq(rd_a),
        ]
        return m
