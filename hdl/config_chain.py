"""The configuration chain: packets of 32-bit words through every physical tile, one per cycle.

Every tile has a :class:`ConfigStation` in its (defect-free) shell. The stations form a chain
from the host's ``chain_in`` through every physical tile back to the host's ``chain_out``; each
station is a 4-word FIFO stage (one cycle of latency, one word per cycle, registered ready).

Packet format (:class:`ChainHeader`; Python builds and parses packets in :mod:`sim.host.packets`
with the same layout)::

    header   [31:28] command  [27:20] row  [19:12] column  [11:0] count
    WRITE  1   header, address, count data words  -> tile words address .. address+count-1
    READ   2   header, address                    -> the tile answers with an RDATA packet
    RDATA  3   header, count data words           (answer, travels on to the host)
    SHELL  4   header, one data word              -> the station's shell register

``row``/``column`` are physical coordinates; row = column = 0xFF broadcasts a WRITE to every
enabled tile (each writes it and passes it on). WRITE and READ reach only *enabled* tiles: a
disabled tile's station passes every packet through and never drives its core's bus, so the
configuration path skips disabled tiles. SHELL reaches its station whatever the enable (it is how
tiles are enabled and the bypass multiplexers set). Unclaimed packets (a READ of a disabled tile,
an unknown command) arrive unchanged at the host.

The shell register (:class:`ShellWord`: enable and the vertical neighbour selects of
:mod:`fabric.tile`) resets to 0: every tile starts disabled.
"""

import enum

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .config_bus import ConfigBusSignature
from .params import check_int

__all__ = ["ConfigStation", "Command", "ChainHeader", "ShellWord", "BROADCAST", "MAX_COUNT",
           "SHELL_BITS"]


class Command(enum.IntEnum):
    """Packet commands (the header's ``command`` field)."""

    WRITE = 1
    READ = 2
    RDATA = 3
    SHELL = 4


class ChainHeader(data.Struct):
    """The first word of every configuration packet."""

    count: 12
    col: 8
    row: 8
    command: 4


#: Row and column value that addresses every enabled tile (WRITE only).
BROADCAST = 0xFF
#: Largest number of data words in one packet (the ``count`` field).
MAX_COUNT = (1 << 12) - 1
class ShellWord(data.Struct):
    """The shell register a station keeps for its tile (the data word of a SHELL packet).

    ``enable`` makes the tile part of the logical array (its station then takes WRITE and READ
    packets); ``sel_n`` / ``sel_s`` choose its north / south neighbour among the ``2S+1`` tiles
    around its column, as ``offset + spares`` (see :mod:`fabric.tile`).
    """

    enable: 1
    _reserved: 3
    sel_n: 4
    sel_s: 4
    _spare: 4


#: Width of the shell register a station keeps for its tile.
SHELL_BITS = ShellWord.as_shape().size


class ConfigStation(wiring.Component):
    """One station of the configuration chain.

    Parameters
    ----------
    addr_width : int
        Width of the tile-local configuration bus address, in bits.
    depth : int
        Words of buffering in the station (at least 2 for one word per cycle).

    Members
    -------
    chain_in : ``In(stream.Signature(32))``
    chain_out : ``Out(stream.Signature(32))``
    row, col : ``In(8)``
        The tile's physical coordinates (tied to constants by the array).
    bus : ``Out(ConfigBusSignature(addr_width))``
        The tile core's configuration bus. A WRITE's data word is written to the core one
        cycle after the chain hands it over (address, data and ``we`` are registers); a READ's
        word is asked for with ``re`` and taken from ``rdata`` in the next cycle.
    shell : ``Out(ShellWord)``
        The shell register.
    busy : ``Out(1)``
        A packet is in progress or words are buffered.

    Raises
    ------
    TypeError, ValueError
        For an ``addr_width`` outside 1 to 32 bits or a ``depth`` outside 2 to 64 words.
    """

    def __init__(self, addr_width: int, depth: int = 4):
        self.addr_width = check_int("addr_width", addr_width, 1, 32, "bits")
        self.depth = check_int("depth", depth, 2, 64, "words")
        super().__init__({
            "chain_in": In(stream.Signature(32)),
            "chain_out": Out(stream.Signature(32)),
            "row": In(8),
            "col": In(8),
            "bus": Out(ConfigBusSignature(addr_width)),
            "shell": Out(ShellWord),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buf = fifo.SyncFIFO(width=32, depth=self.depth)
        m.d.comb += [
            self.chain_out.payload.eq(buf.r_data),
            self.chain_out.valid.eq(buf.r_rdy),
            buf.r_en.eq(self.chain_out.ready),
        ]
        shell = Signal(ShellWord)
        m.d.comb += self.shell.eq(shell)
        enabled = shell.enable

        word = self.chain_in.payload
        head = ChainHeader(word)
        cmd, row, col, count = head.command, head.row, head.col, head.count
        me = (row == self.row) & (col == self.col)
        broadcast = (row == BROADCAST) & (col == BROADCAST)

        remaining = Signal(13)  # words still to come in this packet
        forward = Signal()  # pass the current word on
        forwarding = Signal()  # the packet in progress is passed on (registered)
        local = Signal()  # its data is written to the core
        addr = Signal(self.addr_width)
        inflight = Signal()  # a read issued last cycle; its data goes into the FIFO now
        room = (buf.level + inflight) < self.depth

        take = self.chain_in.valid & self.chain_in.ready
        m.d.comb += [buf.w_data.eq(word), buf.w_en.eq(take & forward)]

        # A WRITE's data word reaches the core a cycle after the chain hands it over (registered:
        # no combinational path from the chain's handshake, which crosses the link from the
        # upstream station, into the core's tables).
        wr = Signal()
        wr_addr = Signal(self.addr_width)
        wr_data = Signal(32)
        m.d.sync += wr.eq(0)
        m.d.comb += [self.bus.we.eq(wr), self.bus.wdata.eq(wr_data)]

        m.d.comb += self.busy.eq(buf.r_rdy | (remaining != 0) | inflight | wr)
        m.d.sync += inflight.eq(0)
        with m.If(inflight):
            m.d.comb += [buf.w_data.eq(self.bus.rdata), buf.w_en.eq(1)]

        with m.FSM() as fsm:
            with m.State("HEADER"):
                write = (cmd == Command.WRITE) & enabled & (me | broadcast)
                read = (cmd == Command.READ) & enabled & me
                shell_cmd = (cmd == Command.SHELL) & me
                consume = read | shell_cmd | (write & ~broadcast)
                # Words after the header: the address and data (WRITE), the address (READ),
                # the data (RDATA), the shell word (SHELL).
                body = Mux(cmd == Command.WRITE, count + 1,
                           Mux(cmd == Command.RDATA, count, 1))
                # (~inflight: the last word of an answer may still be going into the FIFO.)
                # `ready` is from registers only, not from the header's decode, so no path
                # runs from the upstream station's FIFO through this decode and back: a word
                # this station consumes waits, like a forwarded one, for room in the FIFO.
                m.d.comb += [
                    self.chain_in.ready.eq(~inflight & buf.w_rdy),
                    forward.eq(~consume),
                ]
                with m.If(take):
                    m.d.sync += [remaining.eq(body), local.eq(write),
                                 forwarding.eq(~consume)]
                    with m.If(read):
                        m.next = "READ_ADDR"
                    with m.Elif(shell_cmd):
                        m.next = "SHELL"
                    with m.Elif(write):
                        m.next = "ADDRESS"
                    with m.Elif(body != 0):
                        m.next = "PASS"
                    m.d.sync += addr.eq(0)
                    with m.If(read):  # keep the count for the answer
                        m.d.sync += remaining.eq(count)
            with m.State("ADDRESS"):
                m.d.comb += [forward.eq(forwarding), self.chain_in.ready.eq(buf.w_rdy)]
                with m.If(take):
                    m.d.sync += [addr.eq(word), remaining.eq(remaining - 1)]
                    with m.If(remaining == 1):
                        m.next = "HEADER"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [forward.eq(forwarding), self.chain_in.ready.eq(buf.w_rdy)]
                with m.If(take):
                    m.d.sync += [wr.eq(local), wr_addr.eq(addr), wr_data.eq(word),
                                 addr.eq(addr + 1), remaining.eq(remaining - 1)]
                    with m.If(remaining == 1):
                        m.next = "HEADER"
            with m.State("PASS"):
                m.d.comb += [forward.eq(1), self.chain_in.ready.eq(buf.w_rdy)]
                with m.If(take):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "HEADER"
            with m.State("SHELL"):
                m.d.comb += self.chain_in.ready.eq(1)
                with m.If(take):
                    m.d.sync += [shell.eq(word[:SHELL_BITS]), remaining.eq(0)]
                    m.next = "HEADER"
            with m.State("READ_ADDR"):
                m.d.comb += self.chain_in.ready.eq(1)
                with m.If(take):
                    m.d.sync += addr.eq(word)
                    m.next = "ANSWER_HEADER"
            with m.State("ANSWER_HEADER"):
                answer = Signal(ChainHeader)
                m.d.comb += [answer.count.eq(remaining), answer.col.eq(self.col),
                             answer.row.eq(self.row), answer.command.eq(Command.RDATA)]
                with m.If(buf.w_rdy & ~inflight):
                    m.d.comb += [
                        buf.w_data.eq(answer),
                        buf.w_en.eq(1),
                    ]
                    with m.If(remaining == 0):
                        m.next = "HEADER"
                    with m.Else():
                        m.next = "ANSWER"
            with m.State("ANSWER"):
                with m.If(room & (remaining != 0)):
                    m.d.comb += self.bus.re.eq(1)  # (never with wr)
                    m.d.sync += [addr.eq(addr + 1), remaining.eq(remaining - 1),
                                 inflight.eq(1)]
                with m.If(remaining == 0):
                    m.next = "HEADER"
        # The core's address from registers alone (the state, the read and write addresses),
        # not from the read decision (``room``, ``remaining``): the core's table reads behind
        # it start from flip-flops. Reads and writes never overlap: a write reaches the core
        # the cycle after its word is taken in DATA (in DATA or HEADER then), and an answer is
        # read only in ANSWER, at least three cycles after a HEADER.
        m.d.comb += self.bus.addr.eq(Mux(fsm.ongoing("ANSWER"), addr, wr_addr))
        return m
