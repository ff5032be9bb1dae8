"""The 5-port colour router.

Organisation (see ``docs/architecture.md``, "Router"):

* **Route table.** One entry per colour, ``rx`` (5-bit mask of accepted input ports) and ``tx``
  (5-bit mask of output ports), as in the WSE's static colour routing. Written and read back
  through the configuration bus: word ``c`` holds ``rx`` in bits ``[4:0]`` and ``tx`` in bits
  ``[9:5]``.
* **Queues.** One FIFO of ``queue_depth`` wavelets per (input port, colour) — virtual channels —
  so a colour whose output is stalled only fills its own queues. Each input link advertises
  ``color_ready[c]`` = "queue (p, c) is not full", from registered state.
* **Output allocation.** Each output port has a round-robin arbiter over all (input, colour)
  queues whose head is routed to it, has not been delivered there yet, and whose colour the
  downstream receiver can accept. A multicast head keeps a 5-bit "delivered" mask and leaves its
  queue once every port of ``tx`` has taken it, so it reaches each port exactly once and order per
  (input, colour) is kept at every output.
* **Timing.** A wavelet accepted at an input in cycle *t* is offered at the output in cycle
  *t + 1*: one cycle per hop. Every output can send one wavelet per cycle.
* **Drops.** A wavelet whose colour does not accept the input port it arrived on (``rx``), has
  no output (``tx == 0``), or is at or above ``num_colors``, is accepted, discarded and counted in
  a saturating 16-bit sticky counter (``dropped``, also at configuration word ``STATUS_ADDR``;
  writing that word clears it).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.arbiter import RoundRobin
from hdl.config_bus import ConfigBusSignature
from hdl.ports import NUM_PORTS, PORT_NAMES
from hdl.refused import refusing
from hdl.wavelet import DATA_BITS, LinkSignature, check_num_colors

__all__ = ["Router"]


class Router(wiring.Component):
    """A 5-port (N, E, S, W, RAMP) colour router with per-colour queues.

    Parameters
    ----------
    num_colors : int
        Number of routable colours, 1 to 32 (WSE-2 has 24). Default 8.
    queue_depth : int
        Depth of each (input port, colour) queue in wavelets, 2 to 16. Two is the least that
        sustains one wavelet per cycle per colour, because ``color_ready`` is registered.

    Members
    -------
    in_n, in_e, in_s, in_w, in_ramp : ``In(LinkSignature(num_colors))``
        Input links (the router is the receiver).
    out_n, out_e, out_s, out_w, out_ramp : ``Out(LinkSignature(num_colors))``
        Output links (the router is the transmitter).
    cfg : ``In(ConfigBusSignature(CFG_ADDR_WIDTH))``
        Configuration bus: route table at words ``0 .. num_colors-1``, status at ``STATUS_ADDR``.
    dropped : ``Out(16)``
        Sticky, saturating count of dropped (unrouted) wavelets.
    busy : ``Out(1)``
        Some queue holds a wavelet.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range.
    """

    CFG_ADDR_WIDTH = 7
    STATUS_ADDR = 0x40
    #: Route-table word layout: rx mask in bits [4:0], tx mask in bits [9:5].
    RX_SHIFT = 0
    TX_SHIFT = 5

    def __init__(self, *, num_colors: int = 8, queue_depth: int = 2):
        with refusing(self):
            check_num_colors(num_colors)
            if not isinstance(queue_depth, int) or isinstance(queue_depth, bool):
                raise TypeError(f"queue_depth must be an integer, not {queue_depth!r}")
            if not 2 <= queue_depth <= 16:
                raise ValueError(
                    f"queue_depth must be between 2 and 16 wavelets, not {queue_depth} (2 is "
                    f"the least that sustains one wavelet per cycle, as color_ready is "
                    f"registered)"
                )
        self.num_colors = num_colors
        self.queue_depth = queue_depth
        members = {}
        for name in PORT_NAMES:
            members[f"in_{name}"] = In(LinkSignature(num_colors))
        for name in PORT_NAMES:
            members[f"out_{name}"] = Out(LinkSignature(num_colors))
        members["cfg"] = In(ConfigBusSignature(self.CFG_ADDR_WIDTH))
        members["dropped"] = Out(16)
        members["busy"] = Out(1)
        super().__init__(members)

    def port_in(self, p: int):
        return getattr(self, f"in_{PORT_NAMES[p]}")

    def port_out(self, p: int):
        return getattr(self, f"out_{PORT_NAMES[p]}")

    def elaborate(self, platform):
        m = Module()
        C, D, P = self.num_colors, self.queue_depth, NUM_PORTS

        # ---- route table -------------------------------------------------------------------
        rx = [Signal(P, name=f"rx_{c}") for c in range(C)]
        tx = [Signal(P, name=f"tx_{c}") for c in range(C)]
        dropped = Signal(16)
        m.d.comb += self.dropped.eq(dropped)

        rdata = Signal(32)
        m.d.comb += self.cfg.rdata.eq(rdata)
        with m.If(self.cfg.re):
            m.d.sync += rdata.eq(0)
            for c in range(C):
                with m.If(self.cfg.addr == c):
                    m.d.sync += rdata.eq(Cat(rx[c], tx[c]))
            with m.If(self.cfg.addr == self.STATUS_ADDR):
                m.d.sync += rdata.eq(dropped)

        # ---- queues ------------------------------------------------------------------------
        # entries[p][c][i] holds data and ctrl of the i-th oldest wavelet of queue (p, c).
        entries = [
            [[Signal(DATA_BITS + 1, name=f"q_{PORT_NAMES[p]}_{c}_{i}") for i in range(D)]
             for c in range(C)]
            for p in range(P)
        ]
        count = [[Signal(range(D + 1), name=f"n_{PORT_NAMES[p]}_{c}") for c in range(C)]
                 for p in range(P)]
        sent = [[Signal(P, name=f"sent_{PORT_NAMES[p]}_{c}") for c in range(C)]
                for p in range(P)]
        routes_to_some = [tx[c].any() for c in range(C)]

        # ---- inputs ------------------------------------------------------------------------
        drops = []
        pushes = [[None] * C for _ in range(P)]
        for p in range(P):
            link = self.port_in(p)
            color = link.payload.color
            routed = Cat(rx[c][p] & routes_to_some[c] for c in range(C))
            not_full = Cat(count[p][c] != D for c in range(C))
            m.d.comb += link.color_ready.eq(~routed | not_full)
            in_range = color < C
            ready = Signal(name=f"ready_{PORT_NAMES[p]}")
            m.d.comb += ready.eq(Mux(in_range, link.color_ready.bit_select(color, 1), 1))
            m.d.comb += link.ready.eq(ready)
            accept = link.valid & ready
            is_routed = in_range & routed.bit_select(color, 1)
            drops.append(accept & ~is_routed)
            for c in range(C):
                pushes[p][c] = accept & (color == c) & routed[c]

        n_drops = Signal(range(P + 1))
        m.d.comb += n_drops.eq(sum(d.as_unsigned() for d in drops))
        with m.If((self.cfg.we) & (self.cfg.addr == self.STATUS_ADDR)):
            m.d.sync += dropped.eq(0)
        with m.Elif(n_drops != 0):
            total = dropped + n_drops
            m.d.sync += dropped.eq(Mux(total > 0xFFFF, 0xFFFF, total))

        # ---- outputs -----------------------------------------------------------------------
        K = P * C  # candidate k = p * C + c
        heads = [
            Cat(entries[p][c][0][:DATA_BITS], Const(c, 5), entries[p][c][0][DATA_BITS])
            for p in range(P) for c in range(C)
        ]
        granted = [[None] * K for _ in range(P)]  # granted[o][k]
        for o in range(P):
            link = self.port_out(o)
            arb = RoundRobin(K)
            m.submodules[f"arb_{PORT_NAMES[o]}"] = arb
            reqs = []
            for p in range(P):
                for c in range(C):
                    reqs.append((count[p][c] != 0) & tx[c][o] & ~sent[p][c][o]
                                & link.color_ready[c])
            # One-hot grant -> AND-OR payload mux (far smaller than an indexed mux).
            selected = [Mux(arb.grant[k], heads[k], 0) for k in range(K)]
            payload = selected[0]
            for value in selected[1:]:
                payload = payload | value
            m.d.comb += [
                arb.requests.eq(Cat(reqs)),
                link.valid.eq(arb.valid),
                link.payload.eq(payload),
            ]
            transfer = link.valid & link.ready
            m.d.comb += arb.advance.eq(transfer)
            for k in range(K):
                granted[o][k] = transfer & arb.grant[k]

        # ---- queue and delivered-mask update -----------------------------------------------
        for p in range(P):
            link = self.port_in(p)
            new_entry = Cat(link.payload.data, link.payload.ctrl)
            for c in range(C):
                k = p * C + c
                got = Cat(granted[o][k] for o in range(P))
                delivered = sent[p][c] | got
                pop = Signal(name=f"pop_{PORT_NAMES[p]}_{c}")
                m.d.comb += pop.eq(got.any() & ((delivered & tx[c]) == tx[c]))
                push = pushes[p][c]
                q, n = entries[p][c], count[p][c]
                with m.If(pop):
                    m.d.sync += sent[p][c].eq(0)
                    for i in range(D - 1):
                        m.d.sync += q[i].eq(q[i + 1])
                    with m.If(push):
                        for i in range(D):
                            with m.If(n - 1 == i):
                                m.d.sync += q[i].eq(new_entry)
                    with m.Else():
                        m.d.sync += n.eq(n - 1)
                with m.Else():
                    m.d.sync += sent[p][c].eq(delivered)
                    with m.If(push):
                        for i in range(D):
                            with m.If(n == i):
                                m.d.sync += q[i].eq(new_entry)
                        m.d.sync += n.eq(n + 1)

        m.d.comb += self.busy.eq(Cat(count[p][c] != 0 for p in range(P) for c in range(C)).any())

        # ---- route-table writes --------------------------------------------------------------
        with m.If(self.cfg.we):
            for c in range(C):
                with m.If(self.cfg.addr == c):
                    m.d.sync += [
                        rx[c].eq(self.cfg.wdata[self.RX_SHIFT:self.RX_SHIFT + P]),
                        tx[c].eq(self.cfg.wdata[self.TX_SHIFT:self.TX_SHIFT + P]),
                    ]
        return m
