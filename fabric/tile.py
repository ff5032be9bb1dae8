"""A tile: the core (router + PE) inside its shell (configuration station + bypass logic).

::

              in_n/out_n (vertical neighbour chosen by the array's (2S+1):1 muxes, sel_n)
                    |
    in_w/out_w -- [ shell | core: router <-ramp-> PE | ] -- in_e/out_e
                    |
              in_s/out_s (sel_s)

* **Core**: the 5-port router, its RAMP port joined to the PE, and the core configuration bus
  (:class:`TileMap`: 19-bit tile addresses, the PE's map below ``TileMap.ROUTER``, the
  router's above).
* **Shell**: the configuration-chain station (:mod:`hdl.config_chain`), the shell register
  (enable, ``sel_n``, ``sel_s``) and the bypass. The shell is assumed defect-free, as the WSE's
  redundancy logic is; defects are modelled in the core.
* **Bypass**: a disabled tile passes its W input straight to its E output and its E input to its
  W output (valid, payload one way; ready, colour-ready the other), combinationally, so a
  repaired row has the timing of a defect-free one. Its vertical outputs are held invalid and its
  inputs refuse everything; its core gets no configuration and its status is ignored. Nothing the
  core drives can reach the array.
* **Fault injection** (``fault_injection=True``, simulation builds): ``fault_mode`` 1 replaces
  every core output (payloads, valids, readies, status, configuration read data) by LFSR noise
  each cycle; 2 makes them stuck valid/ready with noise payloads. Tests use it on disabled tiles
  to show that the bypass isolates them.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.config_chain import ConfigStation
from hdl.params import check_int
from hdl.ports import PORT_NAMES, E, N, S, W
from hdl.refused import refusing
from hdl.wavelet import LinkSignature
from pe.isa import AddressMap
from pe.params import PEParams
from pe.pe import PE
from router import Router
from router.params import DEFAULT_COLORS, RouterMap, RouterParams

from .repair import MAX_SPARES

__all__ = ["Tile", "TileMap", "select_bits"]

_MESH = (N, E, S, W)


class TileMap:
    """Word addresses of a tile's configuration bus (what a chain WRITE or READ addresses).

    The PE's map (:class:`pe.isa.AddressMap`) starts at ``PE``; the router's
    (:class:`router.params.RouterMap`) at ``ROUTER``.
    """

    ADDR_WIDTH = 19
    PE = 0
    ROUTER = 1 << AddressMap.ADDR_WIDTH
    #: The router's sticky drop counter (read: count; write: clear).
    ROUTER_STATUS = ROUTER + RouterMap.STATUS


def select_bits(spares: int) -> int:
    """Width of a vertical select for ``spares`` spare columns (2S+1 choices)."""
    return max(1, (2 * spares).bit_length())


class Tile(wiring.Component):
    """One physical tile of the fabric (emitted once as a Verilog module, instantiated by name).

    Parameters
    ----------
    spares : int
        Spare columns of the array (sets the width of the vertical selects).
    num_colors, queue_depth, output_register
        Router parameters (:class:`router.Router`). With ``output_register`` every router
        output is registered (two cycles per hop) and the PE's input queues keep a place for
        the wavelet in the RAMP output register (``PEParams.in_flight = 1``; ``in_depth`` at
        least 3).
    sram_words, imem_words, num_tasks, num_dsds, in_depth
        PE parameters (:class:`pe.pe.PE`).
    fault_injection : bool
        Add the ``fault_mode`` input (simulation only).

    Raises
    ------
    TypeError, ValueError
        If ``spares`` is not an integer from 0 to ``MAX_SPARES`` (7; the shell register's
        select fields are sized for it), or a router or PE parameter is invalid.

    Members
    -------
    in_n, in_e, in_s, in_w : ``In(LinkSignature(num_colors))``
    out_n, out_e, out_s, out_w : ``Out(LinkSignature(num_colors))``
    chain_in : ``In(stream.Signature(32))``
    chain_out : ``Out(stream.Signature(32))``
    row, col : ``In(8)``
        Physical position (constants).
    enabled : ``Out(1)``
    sel_n, sel_s : ``Out(select_bits(spares))``
        Vertical neighbour selects: offset + spares.
    idle : ``Out(1)``
        Disabled, or the router is empty and the PE idle.
    error : ``Out(1)``
        Enabled and the PE has an error flag or the router dropped a wavelet.
    fault_mode : ``In(2)``
        Only with ``fault_injection``.
    """

    def __init__(self, *, spares: int = 1, num_colors: int = DEFAULT_COLORS,
                 queue_depth: int = RouterParams.queue_depth,
                 sram_words: int = PEParams.sram_words, imem_words: int = PEParams.imem_words,
                 num_tasks: int = PEParams.num_tasks, num_dsds: int = PEParams.num_dsds,
                 in_depth: int = PEParams.in_depth, output_register: bool = False,
                 fault_injection: bool = False):
        with refusing(self):
            check_int("spares", spares, 0, MAX_SPARES, "spare columns")
            # Constructing the blocks validates their parameters.
            self.router = Router(num_colors=num_colors, queue_depth=queue_depth,
                                 output_register=output_register)
            with refusing(self.router):
                self.pe = PE(PEParams(sram_words=sram_words, imem_words=imem_words,
                                      num_colors=num_colors, num_tasks=num_tasks,
                                      num_dsds=num_dsds, in_depth=in_depth,
                                      in_flight=int(output_register)))
        self.spares = spares
        self.num_colors = num_colors
        self.fault_injection = fault_injection
        sel = select_bits(spares)
        members = {}
        for p in _MESH:
            members[f"in_{PORT_NAMES[p]}"] = In(LinkSignature(num_colors))
        for p in _MESH:
            members[f"out_{PORT_NAMES[p]}"] = Out(LinkSignature(num_colors))
        members.update({
            "chain_in": In(stream.Signature(32)),
            "chain_out": Out(stream.Signature(32)),
            "row": In(8),
            "col": In(8),
            "enabled": Out(1),
            "sel_n": Out(sel),
            "sel_s": Out(sel),
            "idle": Out(1),
            "error": Out(1),
        })
        if fault_injection:
            members["fault_mode"] = In(2)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        C = self.num_colors
        m.submodules.router = router = self.router
        m.submodules.pe = pe = self.pe
        m.submodules.station = station = ConfigStation(TileMap.ADDR_WIDTH)

        # ---- core ----------------------------------------------------------------------------
        wiring.connect(m, router.out_ramp, pe.ramp_in)
        wiring.connect(m, pe.ramp_out, router.in_ramp)
        bus = station.bus
        to_router = bus.addr >= TileMap.ROUTER
        last_router = Signal()
        with m.If(bus.re):
            m.d.sync += last_router.eq(to_router)
        m.d.comb += [
            router.cfg.addr.eq(bus.addr[:RouterMap.ADDR_WIDTH]),
            router.cfg.wdata.eq(bus.wdata),
            router.cfg.we.eq(bus.we & to_router),
            router.cfg.re.eq(bus.re & to_router),
            pe.cfg.addr.eq(bus.addr[:AddressMap.ADDR_WIDTH]),
            pe.cfg.wdata.eq(bus.wdata),
            pe.cfg.we.eq(bus.we & ~to_router),
            pe.cfg.re.eq(bus.re & ~to_router),
        ]
        core_rdata = Mux(last_router, router.cfg.rdata, pe.cfg.rdata)
        core_idle = ~router.busy & pe.idle
        core_error = pe.error | (router.dropped != 0)

        # Core outputs as the shell sees them (replaced by noise under fault injection).
        outs = {p: (router.port_out(p).payload.as_value(), router.port_out(p).valid) for p in _MESH}
        readies = {p: (router.port_in(p).ready, router.port_in(p).color_ready) for p in _MESH}
        status = (core_idle, core_error, core_rdata)
        if self.fault_injection:
            lfsr = Signal(64, init=0x9E3779B97F4A7C15)
            # xorshift64: a new 64-bit noise word every cycle.
            x1 = lfsr ^ (lfsr << 13)[:64]
            x2 = x1 ^ (x1 >> 7)
            x3 = x2 ^ (x2 << 17)[:64]
            m.d.sync += lfsr.eq(x3)
            noise = Cat(lfsr, lfsr.rotate_left(29))
            mode = self.fault_mode
            stuck = mode == 2
            faulty = mode != 0
            k = 0

            def bits(width):
                nonlocal k
                value = noise.rotate_left(k)[:width]
                k = (k + 11) % len(noise)
                return value

            outs = {p: (Mux(faulty, bits(38), payload), Mux(faulty, stuck | bits(1)[0], valid))
                    for p, (payload, valid) in outs.items()}
            readies = {p: (Mux(faulty, stuck | bits(1)[0], ready),
                           Mux(faulty, Mux(stuck, (1 << C) - 1, bits(C)), cready))
                       for p, (ready, cready) in readies.items()}
            status = (Mux(faulty, bits(1)[0], core_idle), Mux(faulty, bits(1)[0], core_error),
                      Mux(faulty, bits(32), core_rdata))
        m.d.comb += bus.rdata.eq(status[2])

        # ---- shell -----------------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.chain_in), station.chain_in)
        wiring.connect(m, station.chain_out, wiring.flipped(self.chain_out))
        shell = station.shell
        enabled = shell.enable
        m.d.comb += [
            station.row.eq(self.row),
            station.col.eq(self.col),
            self.enabled.eq(enabled),
            self.sel_n.eq(shell.sel_n),
            self.sel_s.eq(shell.sel_s),
            self.idle.eq(~enabled | status[0]),
            self.error.eq(enabled & status[1]),
        ]

        def link(p, direction):
            return getattr(self, f"{direction}_{PORT_NAMES[p]}")

        for p in _MESH:
            inside_in = router.port_in(p)  # the core receives from the shell
            outer_in, outer_out = link(p, "in"), link(p, "out")
            payload, valid = outs[p]
            ready, cready = readies[p]
            # Payloads are not gated: where a link is dead (a disabled core's inputs, a
            # disabled tile's vertical outputs) its valid is 0, and the receiver looks at a
            # payload only with valid (no AND per payload bit: 146 fewer LUT4 a tile).
            m.d.comb += inside_in.payload.eq(outer_in.payload)
            if p in (N, S):
                m.d.comb += outer_out.payload.eq(payload)
            with m.If(enabled):
                m.d.comb += [
                    outer_out.payload.eq(payload),
                    outer_out.valid.eq(valid),
                    router.port_out(p).ready.eq(outer_out.ready),
                    router.port_out(p).color_ready.eq(outer_out.color_ready),
                    inside_in.valid.eq(outer_in.valid),
                    outer_in.ready.eq(ready),
                    outer_in.color_ready.eq(cready),
                ]
        # A disabled tile: E/W straight through, vertical links dead, the core cut off.
        with m.If(~enabled):
            for a, b in ((W, E), (E, W)):
                src, dst = link(a, "in"), link(b, "out")
                m.d.comb += [
                    dst.payload.eq(src.payload),
                    dst.valid.eq(src.valid),
                    src.ready.eq(dst.ready),
                    src.color_ready.eq(dst.color_ready),
                ]
            for p in (N, S):
                m.d.comb += [link(p, "out").valid.eq(0), link(p, "in").ready.eq(0),
                             link(p, "in").color_ready.eq(0)]
        return m
