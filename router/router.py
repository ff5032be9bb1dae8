"""The 5-port colour router.

Organisation (``docs/architecture.md``, "Router"):

* **Route table.** One :class:`~router.params.RouteWord` per colour, ``rx`` (accepted input
  ports) and ``tx`` (output ports), as the WSE's static colour routing. Flip-flops, for the
  per-colour logic that needs every route at once, plus LUT-RAM copies for the lookups by colour
  (one per input port, one for configuration read-back), all written together.
* **Input ports.** Each input is a :class:`hdl.color_queue.ColorQueues`: an arrival register
  straight off the link, then per-colour queues of ``queue_depth`` wavelets in one LUT-RAM
  memory. A colour whose output is stalled fills only its own queue; the link's ``color_ready``
  is registered.
* **Separable allocation.** Each input offers one wavelet per cycle, its *candidate*: the head
  of the colour its picker selected in the previous cycle, or else the wavelet that has just
  arrived if it is the head of its colour (a bypass: one cycle per hop). The outputs are
  allocated to the at most five candidates in one shared rotating priority order
  (:class:`hdl.arbiter.AtomicAllocator`).
* **Picker.** Each input picks, round-robin, the colour whose head it offers next, among
  colours with a wavelet whose every output has credit (the receiver's registered
  ``color_ready``). The pick is speculative: the current candidate's colour counts only if it
  holds a second wavelet, since the candidate is expected to leave.
* **Multicast is atomic**, as on the WSE: a candidate leaves only in a cycle in which every port
  of its route can take it and grants it; it is then delivered once to each, at the same time.
  The shared order guarantees progress: the candidate first in it wins every output it asks
  for. Outputs that granted a candidate which could not go send nothing that cycle. Order is
  kept per (input, colour) at every output, and a stalled colour holds up only itself.
* **Credit** is checked for the candidate's colour in the cycle it is offered, from the
  receivers' registered ``color_ready``; nothing depends on a receiver's ``ready``, so no
  combinational path goes across a link and back. Every output's ``valid``/``payload`` is
  combinational from the inputs' registered state (arbiter, credit check, 5:1 mux) and ends at
  the receiver's registers.
* **Drops.** A wavelet whose colour does not accept the port it arrived on, has no output, or
  is at or above ``num_colors``, is taken, dropped and counted in a sticky, saturating 16-bit
  counter (``dropped``; configuration word ``RouterMap.STATUS``, cleared by writing it).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hdl.arbiter import AtomicAllocator, RoundRobin
from hdl.color_queue import ColorQueues, onehot_select
from hdl.config_bus import ConfigBusSignature
from hdl.ports import NUM_PORTS, PORT_NAMES
from hdl.refused import refusing
from hdl.wavelet import COLOR_BITS, LinkSignature

from .params import DEFAULT_COLORS, RouterMap, RouterParams, RouteWord

__all__ = ["Router"]


class Router(wiring.Component):
    """A 5-port (N, E, S, W, RAMP) colour router with per-colour queues in LUT RAM.

    Parameters
    ----------
    num_colors : int
        Routable colours, 1 to 32 (default 24, the WSE-2's).
    queue_depth : int
        Wavelets per (input port, colour) queue, 2 to 16 (default 2).

    Members
    -------
    in_n, in_e, in_s, in_w, in_ramp : ``In(LinkSignature(num_colors))``
        Input links (the router is the receiver).
    out_n, out_e, out_s, out_w, out_ramp : ``Out(LinkSignature(num_colors))``
        Output links (the router is a colour-aware transmitter: it never looks at ``ready``).
    cfg : ``In(ConfigBusSignature(RouterMap.ADDR_WIDTH))``
        Configuration bus (:class:`~router.params.RouterMap`).
    dropped : ``Out(16)``
        Sticky, saturating count of dropped (unrouted) wavelets.
    busy : ``Out(1)``
        Some queue holds a wavelet.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range (from
        :class:`~router.params.RouterParams`).
    """

    def __init__(self, *, num_colors: int = DEFAULT_COLORS, queue_depth: int = 2):
        with refusing(self):
            self.params = RouterParams(num_colors=num_colors, queue_depth=queue_depth)
        self.num_colors = num_colors
        self.queue_depth = queue_depth
        members = {}
        for name in PORT_NAMES:
            members[f"in_{name}"] = In(LinkSignature(num_colors))
        for name in PORT_NAMES:
            members[f"out_{name}"] = Out(LinkSignature(num_colors))
        members["cfg"] = In(ConfigBusSignature(RouterMap.ADDR_WIDTH))
        members["dropped"] = Out(16)
        members["busy"] = Out(1)
        super().__init__(members)

    def port_in(self, p: int):
        """The input link of port ``p`` (:mod:`hdl.ports` numbering)."""
        return getattr(self, f"in_{PORT_NAMES[p]}")

    def port_out(self, p: int):
        """The output link of port ``p``."""
        return getattr(self, f"out_{PORT_NAMES[p]}")

    def elaborate(self, platform):
        m = Module()
        C, P = self.num_colors, NUM_PORTS
        cfg = self.cfg

        # ---- route table: flip-flops, and LUT-RAM copies for lookups by colour -----------------
        routes = [Signal(RouteWord, name=f"route_{c}") for c in range(C)]
        route_we = Signal()
        m.d.comb += route_we.eq(cfg.we & (cfg.addr < RouterMap.ROUTES + C))
        new_route = Signal(RouteWord)
        m.d.comb += new_route.eq(cfg.wdata[:RouteWord.as_shape().size])
        with m.If(route_we):
            for c in range(C):
                with m.If(cfg.addr[:COLOR_BITS] == c):
                    m.d.sync += routes[c].eq(new_route)

        def route_copy(name, shape):
            """A LUT-RAM copy of the route table (or of its ``tx`` masks); returns its read
            port."""
            table = memory.Memory(shape=shape, depth=C, init=[])
            m.submodules[name] = table
            w = table.write_port()
            value = new_route if shape is RouteWord else new_route.tx
            m.d.comb += [w.addr.eq(cfg.addr[:COLOR_BITS]), w.data.eq(value), w.en.eq(route_we)]
            return table.read_port(domain="comb")

        # ---- configuration read-back ----------------------------------------------------------
        dropped = Signal(16)
        m.d.comb += self.dropped.eq(dropped)
        readback = route_copy("routes_cfg", RouteWord)
        m.d.comb += readback.addr.eq(cfg.addr[:COLOR_BITS])
        rdata = Signal(32)
        m.d.comb += cfg.rdata.eq(rdata)
        with m.If(cfg.re):
            m.d.sync += rdata.eq(0)
            with m.If(cfg.addr < RouterMap.ROUTES + C):
                m.d.sync += rdata.eq(readback.data)
            with m.If(cfg.addr == RouterMap.STATUS):
                m.d.sync += rdata.eq(dropped)

        # ---- credit: every output of colour c's route can take a wavelet of c ------------------
        credit = [self.port_out(o).color_ready for o in range(P)]  # registered at the receivers
        clear = Signal(C)
        for c in range(C):
            tx = routes[c].tx
            m.d.comb += clear[c].eq(tx.any() & ~Cat(tx[o] & ~credit[o][c] for o in range(P)).any())
        # The pickers use it a cycle late (a colour whose credit just vanished may be picked and
        # then waits: the candidate's own check uses `clear`), off their long path.
        clear_late = Signal(C)
        m.d.sync += clear_late.eq(clear)

        # ---- inputs: queues, candidate, picker ------------------------------------------------
        m.submodules.allocator = alloc = AtomicAllocator(P, P)
        queues = []
        for p in range(P):
            name = PORT_NAMES[p]
            q = ColorQueues(num_colors=C, depth=self.queue_depth, storage="bram")
            m.submodules[f"queues_{name}"] = q
            wiring.connect(m, wiring.flipped(self.port_in(p)), q.link)
            m.d.comb += q.accept.eq(Cat(r.rx[p] & r.tx.any() for r in routes))
            queues.append(q)

            # The candidate: the picked colour's head, or else the arrival if it is a head.
            sel = Signal(COLOR_BITS, name=f"sel_{name}")
            sel_onehot = Signal(C, name=f"sel_onehot_{name}")
            sel_valid = Signal(name=f"sel_valid_{name}")
            colour = Signal(COLOR_BITS, name=f"cand_color_{name}")
            onehot = Signal(C, name=f"cand_onehot_{name}")
            m.d.comb += [
                colour.eq(Mux(sel_valid, sel, q.arrival_color)),
                onehot.eq(Mux(sel_valid, sel_onehot, Mux(q.arrival_is_head, q.arrival_onehot, 0))),
                q.rd[0].color.eq(colour),
                q.rd[0].onehot.eq(onehot),
                q.rd[0].pop.eq(alloc.go[p]),
            ]
            lookup = route_copy(f"tx_{name}", NUM_PORTS)
            m.d.comb += [
                lookup.addr.eq(colour),
                alloc.requests[p].eq(Mux(sel_valid | q.arrival_is_head, lookup.data, 0)),
                # Credit, for either kind of candidate (two AND-ORs side by side).
                alloc.ready[p].eq(Mux(sel_valid, (sel_onehot & clear).any(),
                                      (q.arrival_onehot & clear).any())),
            ]

            # Picker: the colour offered next cycle, among colours holding a wavelet besides
            # the candidate (expected to leave) and the arrival (being written to its queue
            # memory this cycle, where a registered read could not see it yet).
            leaving = Signal(C, name=f"leaving_{name}")
            m.d.comb += leaving.eq(Mux(sel_valid, sel_onehot, 0))
            spare = Signal(C, name=f"spare_{name}")  # occupancy beyond those two
            for c in range(C):
                m.d.comb += spare[c].eq(q.occupancy[c] > (leaving[c] + q.arrival_onehot[c]))
            picker = RoundRobin(C, delayed=True)
            m.submodules[f"picker_{name}"] = picker
            m.d.comb += [
                picker.requests.eq(clear_late & spare),
                picker.advance.eq(1),
            ]
            index = Cat(Cat(picker.grant[c] for c in range(C) if c >> b & 1).any()
                        for b in range(COLOR_BITS))
            m.d.comb += q.rd[0].next_color.eq(index)
            m.d.sync += [sel.eq(index), sel_onehot.eq(picker.grant), sel_valid.eq(picker.valid)]

        # ---- outputs ----------------------------------------------------------------------------
        for o in range(P):
            link, grant = self.port_out(o), alloc.grants[o]
            m.d.comb += [
                link.valid.eq(grant.any()),
                link.payload.data.eq(onehot_select(grant, [q.rd[0].data for q in queues])),
                link.payload.color.eq(onehot_select(grant, [q.rd[0].color for q in queues])),
                link.payload.ctrl.eq(onehot_select(grant, [q.rd[0].ctrl for q in queues])),
            ]

        # ---- drops and status -----------------------------------------------------------------
        drops = Signal(range(P + 1))
        m.d.comb += drops.eq(sum(q.dropped.as_unsigned() for q in queues))
        with m.If(cfg.we & (cfg.addr == RouterMap.STATUS)):
            m.d.sync += dropped.eq(0)
        with m.Elif(drops != 0):
            total = dropped + drops
            m.d.sync += dropped.eq(Mux(total > 0xFFFF, 0xFFFF, total))
        m.d.comb += self.busy.eq(Cat(q.busy for q in queues).any())
        return m
