"""The 5-port colour router.

Organisation (``docs/architecture.md``, "Router"):

* **Routes and switches.** Each colour has up to four switch positions, each a
  :class:`~router.params.RouteWord` (``rx``: accepted input ports, ``tx``: output ports), and a
  :class:`~router.params.SwitchWord` (last position, ring mode, start position, pop mode), as
  the WSE's fabric switches. The positions live in one LUT RAM; the *current* route of every
  colour is in flip-flops (for the per-colour credit logic), with LUT-RAM copies for the lookups
  by colour (one per input port: ``tx``, that port's ``rx`` bit and the pop mode). A wavelet
  arriving on a port that some position of its colour accepts is queued; it leaves only while
  the current position accepts its port, so a switch chooses which input feeds a colour.
* **Switch updates** go through a two-register *apply* stage (A: the switch word and current
  position to the new position; B: that position's route to the current route and the lookup
  copies): a control wavelet's command (``ADVANCE``, ``RESET``, ``TEARDOWN``; see
  :class:`hdl.wavelet.SwitchCommand`) once the wavelet has left, and every configuration write
  of a route or switch word. While a colour's update is in the stage its wavelets wait, so the
  wavelets behind a control wavelet follow the new position. One control wavelet leaves per
  cycle at most: input ``p`` may send one only on its *turn*, the cycle in five in which it
  heads the allocator's order (so it waits up to four cycles, and then wins), and not while
  the configuration bus is busy. A
  configuration read holds both stages for that cycle (they share the memories' read ports).
  The wavelet leaves with its command list popped (shifted by one) when the colour's pop mode
  says so.
* **Input ports.** Each input is a :class:`hdl.color_queue.ColorQueues`: an arrival register
  straight off the link, then per-colour queues of ``queue_depth`` wavelets in one LUT-RAM
  memory. A colour whose output is stalled fills only its own queue; the link's ``color_ready``
  is registered.
* **Separable allocation.** Each input offers one wavelet per cycle, its *candidate*: the head
  of the colour its picker selected in the previous cycle, or else the wavelet that has just
  arrived if it is the head of its colour (a bypass: one cycle per hop). The outputs are
  allocated to the at most five candidates in one shared priority order that rotates by one
  input every cycle (:class:`hdl.arbiter.AtomicAllocator`).
* **Picker.** Each input picks, round-robin, the colour whose head it offers next, among
  colours with a wavelet whose every output has credit (the receiver's registered
  ``color_ready``). The pick is speculative: the current candidate's colour counts only if it
  holds a second wavelet, since the candidate is expected to leave. The queue forwards a
  wavelet written in one cycle to a read in the next, so the picker may name a colour whose
  next head is the arrival being written.
* **Per-colour fairness.** For the cycle in which an input heads the order, its candidate is
  the colour named by a one-hot ring that moves on by one colour each time (when that colour
  is eligible or is the current candidate), so every colour with a wavelet and credit leaves
  within ``5 * num_colors`` cycles, whatever the other inputs do (proved by induction in
  :class:`sim.formal.proofs.RouterProgress`). The picker alone could turn in step with the
  order and starve a colour for ever.
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
* **Output register** (``output_register=True``, default off): every output's ``valid`` and
  payload are registered, so a wavelet takes two cycles per hop and the cycle that crosses a
  link holds no logic of the transmitter. The credit check is unchanged: the receivers keep a
  place for the wavelet in flight (:class:`hdl.color_queue.ColorQueues` ``in_flight=1``, here
  on the four mesh inputs, whose transmitters are routers built alike; the PE's RAMP input
  does the same). The trade-off is measured in ``docs/architecture.md``.
* **Drops.** A wavelet whose colour accepts the port it arrived on at no switch position (with
  an output), or whose colour is at or above ``num_colors``, is taken, dropped and counted in a
  sticky, saturating 16-bit counter (``dropped``; configuration word ``RouterMap.STATUS``,
  cleared by writing it).
"""


from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.wiring import In, Out

from hdl.arbiter import AtomicAllocator, RoundRobin
from hdl.color_queue import ColorQueues, onehot_select
from hdl.config_bus import ConfigBusSignature
from hdl.logic import at_least
from hdl.ports import NUM_PORTS, PORT_NAMES, RAMP
from hdl.refused import refusing
from hdl.wavelet import COLOR_BITS, COMMANDS_LSB, ControlWord, LinkSignature, SwitchCommand

from .params import (
    DEFAULT_COLORS,
    NUM_POSITIONS,
    PopMode,
    RouterMap,
    RouterParams,
    RouteWord,
    SwitchWord,
)

__all__ = ["Router"]

_POS_BITS = (NUM_POSITIONS - 1).bit_length()
_CMD_WIDTH = SwitchCommand.as_shape().width


def _binary(onehot):
    """The index of the set bit of a one-hot value (``COLOR_BITS`` wide; 0 if none is set)."""
    return Cat(Cat(onehot[c] for c in range(len(onehot)) if c >> b & 1).any()
               for b in range(COLOR_BITS))


class _Update(enum.Enum, shape=3):
    """What the apply stage does to a colour's switch."""

    ADVANCE = SwitchCommand.ADVANCE.value
    RESET = SwitchCommand.RESET.value
    TEARDOWN = SwitchCommand.TEARDOWN.value
    RELOAD = 4  # a route word was written: reload the current position's route
    START = 5   # the switch word was written: go to its start position, end a teardown


class _SwitchConfig(data.Struct):
    """The writable part of a :class:`~router.params.SwitchWord`."""

    last: _POS_BITS
    ring: 1
    start: _POS_BITS
    pop: PopMode


class _Lookup(data.Struct):
    """What an input port looks up by colour: the current route's outputs, whether it accepts
    this port, the pop mode."""

    tx: NUM_PORTS
    rx: 1
    pop: PopMode


class Router(wiring.Component):
    """A 5-port (N, E, S, W, RAMP) colour router with per-colour queues and fabric switches.

    Parameters
    ----------
    num_colors : int
        Routable colours, 1 to 32 (default 24, the WSE-2's).
    queue_depth : int
        Wavelets per (input port, colour) queue, 2 to 16 (default 2; at least 3 with
        ``output_register``).
    output_register : bool
        Register the output links (two cycles per hop; see above).

    Members
    -------
    in_n, in_e, in_s, in_w, in_ramp : ``In(LinkSignature(num_colors))``
        Input links (the router is the receiver).
    out_n, out_e, out_s, out_w, out_ramp : ``Out(LinkSignature(num_colors))``
        Output links (the router is a colour-aware transmitter: it never looks at ``ready``;
        with ``output_register`` it sends in cycle ``t + 1`` on the ``color_ready`` of ``t``).
    cfg : ``In(ConfigBusSignature(RouterMap.ADDR_WIDTH))``
        Configuration bus (:class:`~router.params.RouterMap`).
    dropped : ``Out(16)``
        Sticky, saturating count of dropped (unrouted) wavelets.
    busy : ``Out(1)``
        Some queue holds a wavelet.

    Attributes
    ----------
    probes : types.SimpleNamespace or None
        Set by :meth:`elaborate`: internal signals and memories that the formal proofs
        (:mod:`sim.formal.proofs`) state their invariants over; not ports, and nothing reads
        them in the design.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range (from
        :class:`~router.params.RouterParams`).
    """

    def __init__(self, *, num_colors: int = DEFAULT_COLORS,
                 queue_depth: int = RouterParams.queue_depth, output_register: bool = False):
        with refusing(self):
            self.params = RouterParams(num_colors=num_colors, queue_depth=queue_depth,
                                       output_register=output_register)
        self.num_colors = num_colors
        self.queue_depth = queue_depth
        self.output_register = output_register
        self.probes = None
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
        C, P, K = self.num_colors, NUM_PORTS, NUM_POSITIONS
        cfg = self.cfg

        # ---- configuration decode -------------------------------------------------------------
        cfg_color = cfg.addr[:COLOR_BITS]
        cfg_pos = cfg.addr[COLOR_BITS:COLOR_BITS + _POS_BITS]
        in_routes = Signal()    # ROUTES + 32 k + c, c < C
        in_switches = Signal()  # SWITCHES + c, c < C
        m.d.comb += [
            in_routes.eq((cfg.addr < RouterMap.route(0, K)) & (cfg_color < C)),
            in_switches.eq((cfg.addr >= RouterMap.SWITCHES)
                           & (cfg.addr < RouterMap.SWITCHES + C)),
        ]
        new_route = RouteWord(cfg.wdata[:RouteWord.as_shape().size])
        new_switch = SwitchWord(cfg.wdata[:SwitchWord.as_shape().size])
        cfg_busy = Signal()  # a control wavelet must not leave: its update could collide
        m.d.comb += cfg_busy.eq(cfg.we | cfg.re)

        # ---- switch state ---------------------------------------------------------------------
        # Every position's route, at {colour, position}; the switch words; current positions.
        m.submodules.positions = positions = memory.Memory(shape=RouteWord, depth=C * K, init=[])
        m.submodules.switches = switches = memory.Memory(shape=_SwitchConfig, depth=C, init=[])
        m.submodules.current = current = memory.Memory(shape=_POS_BITS, depth=C, init=[])
        pos_w, pos_r = positions.write_port(), positions.read_port(domain="comb")
        sw_w, sw_r = switches.write_port(), switches.read_port(domain="comb")
        cur_w, cur_r = current.write_port(), current.read_port(domain="comb")
        routes = [Signal(RouteWord, name=f"route_{c}") for c in range(C)]  # current routes
        accepts = [Signal(P, name=f"accepts_{c}") for c in range(C)]  # rx at some position
        torn = Signal(C)

        m.d.comb += [
            pos_w.addr.eq(Cat(cfg_pos, cfg_color)), pos_w.data.eq(new_route),
            pos_w.en.eq(cfg.we & in_routes),
            sw_w.addr.eq(cfg_color), sw_w.en.eq(cfg.we & in_switches),
            sw_w.data.last.eq(new_switch.last), sw_w.data.ring.eq(new_switch.ring),
            sw_w.data.start.eq(new_switch.start), sw_w.data.pop.eq(new_switch.pop),
        ]
        with m.If(cfg.we & in_routes):
            rx = Mux(new_route.tx.any(), new_route.rx, 0)
            for c in range(C):
                with m.If(cfg_color == c):
                    m.d.sync += accepts[c].eq(Mux(cfg_pos == 0, rx, accepts[c] | rx))

        # The apply stage, two registers deep: stage A reads the switch word and the current
        # position and writes the new position; stage B reads that position's route and writes
        # the current routes and the lookup copies. One colour's update enters per cycle; a
        # configuration read holds both stages (it uses their read ports).
        ap_valid = Signal()
        ap_color = Signal(COLOR_BITS)
        ap_onehot = Signal(C)
        self.probes = probes = SimpleNamespace(routes=routes, lookups=[], inputs=[])
        ap_update = Signal(_Update, init=_Update.RELOAD)
        ap_go = Signal()
        m.d.comb += ap_go.eq(ap_valid & ~cfg.re)
        index = Mux(cfg.re, cfg_color, ap_color)
        m.d.comb += [sw_r.addr.eq(index), cur_r.addr.eq(index)]
        sw, pos = sw_r.data, cur_r.data
        new_pos = Signal(_POS_BITS)
        with m.Switch(ap_update):
            with m.Case(_Update.ADVANCE):
                m.d.comb += new_pos.eq(Mux(pos == sw.last, Mux(sw.ring, 0, pos), pos + 1))
            with m.Case(_Update.RESET):
                m.d.comb += new_pos.eq(0)
            with m.Case(_Update.START):
                m.d.comb += new_pos.eq(sw.start)
            with m.Default():
                m.d.comb += new_pos.eq(pos)
        m.d.comb += [cur_w.addr.eq(ap_color), cur_w.data.eq(new_pos), cur_w.en.eq(ap_go)]
        # Stage B: loaded from stage A whenever no configuration read holds the stages.
        b_valid = Signal()
        b_color = Signal(COLOR_BITS)
        b_onehot = Signal(C)
        b_update = Signal(_Update, init=_Update.RELOAD)
        b_pos = Signal(_POS_BITS)
        b_pop = Signal(PopMode)
        b_go = Signal()
        m.d.comb += b_go.eq(b_valid & ~cfg.re)
        with m.If(~cfg.re):
            m.d.sync += [b_valid.eq(ap_valid), b_color.eq(ap_color), b_onehot.eq(ap_onehot),
                         b_update.eq(ap_update), b_pos.eq(new_pos), b_pop.eq(sw.pop)]
        m.d.comb += pos_r.addr.eq(Mux(cfg.re, Cat(cfg_pos, cfg_color), Cat(b_pos, b_color)))
        for c in range(C):
            with m.If(b_go & b_onehot[c]):
                m.d.sync += routes[c].eq(pos_r.data)
                with m.If(b_update == _Update.TEARDOWN):
                    m.d.sync += torn[c].eq(1)
                with m.If(b_update == _Update.START):
                    m.d.sync += torn[c].eq(0)

        def lookup_copy(name, port):
            """A LUT-RAM copy of the current routes, as input ``port`` looks them up by colour;
            returns its read port."""
            table = memory.Memory(shape=_Lookup, depth=C, init=[])
            m.submodules[name] = table
            probes.lookups.append(table)
            w = table.write_port()
            m.d.comb += [
                w.addr.eq(b_color), w.en.eq(b_go),
                w.data.tx.eq(pos_r.data.tx), w.data.rx.eq(pos_r.data.rx[port]),
                w.data.pop.eq(b_pop),
            ]
            return table.read_port(domain="comb")

        # Updates: configuration writes, or the command of a control wavelet that left.
        event_valid = Signal()
        event_color = Signal(COLOR_BITS)
        event_onehot = Signal(C)
        event_cmd = Signal(SwitchCommand)
        # The stage's registers take the event's colour whether or not one left (only
        # `ap_valid` depends on the allocation, which ends late in the cycle); a configuration
        # write comes first (a control wavelet never leaves in its cycle).
        cfg_update = Signal()
        m.d.comb += cfg_update.eq(cfg.we & (in_routes | in_switches))
        with m.If(~(ap_valid & cfg.re)):
            m.d.sync += [
                ap_valid.eq(cfg_update | event_valid),
                ap_color.eq(Mux(cfg_update, cfg_color, event_color)),
                ap_onehot.eq(Mux(cfg_update, Cat(cfg_color == c for c in range(C)),
                                 event_onehot)),
                ap_update.eq(Mux(cfg_update, Mux(in_switches, _Update.START, _Update.RELOAD),
                                 event_cmd)),
            ]

        # ---- configuration read-back ----------------------------------------------------------
        dropped = Signal(16)
        m.d.comb += self.dropped.eq(dropped)
        rdata = Signal(32)
        m.d.comb += cfg.rdata.eq(rdata)
        with m.If(cfg.re):
            m.d.sync += rdata.eq(0)
            with m.If(in_routes):
                m.d.sync += rdata.eq(pos_r.data)
            with m.If(in_switches):
                m.d.sync += rdata.eq(Cat(sw.last, sw.ring, sw.start, sw.pop, pos,
                                         torn.bit_select(cfg_color, 1)))
            with m.If(cfg.addr == RouterMap.STATUS):
                m.d.sync += rdata.eq(dropped)

        # ---- credit: every output of colour c's route can take a wavelet of c ------------------
        credit = [self.port_out(o).color_ready for o in range(P)]  # registered at the receivers
        # A colour moves while it is not torn down and not being updated.
        held = Signal(C)
        m.d.comb += held.eq(torn | Mux(ap_valid, ap_onehot, 0) | Mux(b_valid, b_onehot, 0))
        clear = Signal(C)
        for c in range(C):
            tx = routes[c].tx
            m.d.comb += clear[c].eq(tx.any() & ~held[c]
                                    & ~Cat(tx[o] & ~credit[o][c] for o in range(P)).any())
        # The pickers use it a cycle late (a colour whose credit just vanished may be picked and
        # then waits: the candidate's own check uses `clear`), off their long path.
        clear_late = Signal(C)
        m.d.sync += clear_late.eq(clear)
        probes.held, probes.clear, probes.clear_late = held, clear, clear_late
        probes.stages = [(ap_valid, ap_color, ap_onehot), (b_valid, b_color, b_onehot)]

        # ---- inputs: queues, candidate, picker ------------------------------------------------
        m.submodules.allocator = alloc = AtomicAllocator(P, P)
        probes.allocator = alloc
        # Input p's turn: the cycles in which it heads the allocator's order (one in five), so
        # whatever it offers then wins every output it asks for. A control wavelet may leave
        # only on its input's turn (so at most one leaves per cycle, and it always wins), and
        # not while the configuration bus is busy (its update could collide).
        turn = alloc.first
        queues, cand_data = [], []
        ctrl_go, cand_colors, cand_onehots, cand_cmds = [], [], [], []
        for p in range(P):
            name = PORT_NAMES[p]
            # Behind a registered neighbour a mesh input keeps a place for its wavelet in flight.
            in_flight = int(self.output_register and p != RAMP)
            # With registered outputs every input's transmitter drives its link from registers
            # (a neighbour's output register; the PE's output FIFO head on the ramp).
            q = ColorQueues(num_colors=C, depth=self.queue_depth, storage="bram",
                            in_flight=in_flight, early_head=self.output_register)
            m.submodules[f"queues_{name}"] = q
            wiring.connect(m, wiring.flipped(self.port_in(p)), q.link)
            m.d.comb += q.accept.eq(Cat(a[p] for a in accepts))
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
            lookup = lookup_copy(f"lookup_{name}", p)
            ctrl = q.rd[0].ctrl
            m.d.comb += [
                lookup.addr.eq(colour),
                # Only a port the current position accepts feeds the colour.
                alloc.requests[p].eq(Mux((sel_valid | q.arrival_is_head) & lookup.data.rx,
                                         lookup.data.tx, 0)),
                # Credit, for either kind of candidate (two AND-ORs side by side); a control
                # wavelet only on its turn.
                alloc.ready[p].eq(Mux(sel_valid, (sel_onehot & clear).any(),
                                      (q.arrival_onehot & clear).any())
                                  & (~ctrl | (turn[p] & ~cfg_busy))),
            ]

            # A control wavelet leaves with its command list popped, if its colour pops.
            word = ControlWord(q.rd[0].data)
            cmd = word.commands[0]
            pops = Signal(name=f"pops_{name}")
            m.d.comb += pops.eq(ctrl & ((lookup.data.pop == PopMode.ALWAYS_POP)
                                        | ((lookup.data.pop == PopMode.POP_ON_ADVANCE)
                                           & (cmd == SwitchCommand.ADVANCE))))
            commands = q.rd[0].data[COMMANDS_LSB:]
            cand_data.append(Cat(q.rd[0].data[:COMMANDS_LSB],
                                 Mux(pops, commands[_CMD_WIDTH:], commands)))
            ctrl_go.append(alloc.go[p] & ctrl & (cmd != SwitchCommand.NOP))
            cand_colors.append(colour)
            cand_onehots.append(onehot)
            cand_cmds.append(cmd.as_value())

            # Picker: the colour offered next cycle, among colours holding a wavelet besides
            # the candidate (expected to leave), that this port currently feeds. A wavelet being
            # written to the queue memory now is readable next cycle (the queue forwards it past
            # its block RAM's registered read). Without a picked colour the arrival's colour
            # counts as leaving even when it is not the head: it then has a wavelet in memory
            # besides, so `spare` is the same and the term stays on registers.
            leaving = Signal(C, name=f"leaving_{name}")
            m.d.comb += leaving.eq(Mux(sel_valid, sel_onehot, q.arrival_onehot))
            spare = Signal(C, name=f"spare_{name}")  # occupancy beyond the candidate
            for c in range(C):
                occ = q.occupancy[c]
                m.d.comb += spare[c].eq(Mux(leaving[c], at_least(occ, 2), at_least(occ, 1)))
            eligible = Signal(C, name=f"eligible_{name}")
            m.d.comb += eligible.eq(clear_late & spare & Cat(r.rx[p] for r in routes))
            picker = RoundRobin(C, delayed=True)
            m.submodules[f"picker_{name}"] = picker

            # Fairness. The picker alone can turn in step with the allocator's order, so that a
            # colour with credit is offered only in cycles in which another input comes first,
            # and never leaves (random traffic starved colours that way). So the candidate of
            # the input's turn is the colour of a one-hot ring, which moves on by one colour
            # every turn, whenever that colour is eligible or is the current candidate: it
            # heads the order then and wins. A colour with a wavelet and credit thus leaves
            # within num_colors turns, 5 * num_colors cycles (sim.formal.proofs.RouterProgress
            # proves it). `forced` stays off the allocation's path: if the ring's colour is the
            # candidate and leaves with nothing behind it, the next cycle has no picked
            # candidate (only the valid bit waits for `go`).
            ring = Signal(C, init=1, name=f"ring_{name}")
            forced = Signal(name=f"forced_{name}")  # the ring's colour is next cycle's pick
            m.d.comb += forced.eq(alloc.first_next[p] & (ring & (eligible | leaving)).any())
            with m.If(alloc.first_next[p]):
                m.d.sync += ring.eq(ring.rotate_left(1))
            m.d.comb += [picker.requests.eq(eligible), picker.advance.eq(~forced)]
            pick = Signal(C, name=f"pick_{name}")  # one-hot
            pick_color = Signal(COLOR_BITS, name=f"pick_color_{name}")
            m.d.comb += [pick.eq(Mux(forced, ring, picker.grant)), pick_color.eq(_binary(pick)),
                         q.rd[0].next_color.eq(pick_color)]
            m.d.sync += [sel.eq(pick_color), sel_onehot.eq(pick),
                         sel_valid.eq(Mux(forced, (ring & eligible).any() | ~alloc.go[p],
                                          picker.valid))]
            probes.inputs.append(SimpleNamespace(queues=q, sel=sel, sel_onehot=sel_onehot,
                                                 sel_valid=sel_valid, color=colour, ring=ring,
                                                 eligible=eligible, forced=forced))

        # The control wavelet that left (at most one: the one whose turn it is).
        m.d.comb += [
            event_valid.eq(Cat(ctrl_go).any()),
            event_color.eq(onehot_select(turn, cand_colors)),
            event_onehot.eq(onehot_select(turn, cand_onehots)),
            event_cmd.eq(onehot_select(turn, cand_cmds)),
        ]

        # ---- outputs ----------------------------------------------------------------------------
        out_domain = m.d.sync if self.output_register else m.d.comb
        for o in range(P):
            link, grant = self.port_out(o), alloc.grants[o]
            out_domain += [
                link.valid.eq(grant.any()),
                link.payload.data.eq(onehot_select(grant, cand_data)),
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
        busy = Cat(q.busy for q in queues).any() | ap_valid | b_valid
        if self.output_register:  # a wavelet in an output register is still the router's
            busy = busy | Cat(self.port_out(o).valid for o in range(P)).any()
        m.d.comb += self.busy.eq(busy)
        return m
