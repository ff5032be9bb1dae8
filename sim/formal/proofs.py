"""The proofs: each builds a wrapper with assertions around one block and proves it.

* :func:`disabled_tile` — a disabled (bypassed) tile never drives ``valid`` north or south,
  never takes anything from its vertical neighbours, passes W<->E straight through, and its
  core (router, and through it the PE's ramp) receives nothing.
* :func:`router_delivery` — a bounded proof that the router delivers every routed wavelet to
  each output of its route exactly once and in order per (input, colour), sends nothing
  unrouted, offers a receiver only colours whose ``color_ready`` is set, and holds nothing
  once it is idle.
* :func:`router_progress` — an unbounded proof (by induction) that a colour with credit
  always leaves: no (input, colour) holding a wavelet with credit waits more than
  ``5 * num_colors`` cycles.
* :func:`station_delivery` — a bounded proof that a configuration station passes on every
  word of every packet not addressed to it, once, unchanged and in order, writes its core
  exactly the data words of the WRITE packets for it (broadcasts included) at their
  addresses, keeps the shell words of its SHELL packets, and invents nothing.
"""

from __future__ import annotations

from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cat,
    Const,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
)

from hdl.ports import NUM_PORTS, E, N, S, W

from .prover import ProofResult, prove

__all__ = ["DisabledTile", "disabled_tile", "RouterDelivery", "router_delivery",
           "RouterProgress", "router_progress", "StationDelivery", "station_delivery", "ALL"]


class DisabledTile(Elaboratable):
    """A tile and, while its shell register says disabled, the bypass's properties.

    Parameters
    ----------
    tile_class : type, optional
        :class:`fabric.tile.Tile` (default) or a subclass (a planted bug, in the tests).
    tile_kwargs : keyword arguments for the tile (small ones prove faster; the property does not
        depend on the sizes).
    """

    def __init__(self, tile_class=None, **tile_kwargs):
        from fabric.tile import Tile

        self.tile = (tile_class or Tile)(**tile_kwargs)

    def elaborate(self, platform):
        m = Module()
        t = m.submodules.tile = self.tile
        router = t.router
        with m.If(~t.enabled):
            for p in (N, S):
                out_p = getattr(t, f"out_{'ns'[p == S]}")
                in_p = getattr(t, f"in_{'ns'[p == S]}")
                m.d.comb += [Assert(~out_p.valid, f"a disabled tile drives valid {p}"),
                             Assert(~in_p.ready & ~in_p.color_ready.any(),
                                    "a disabled tile takes from a vertical neighbour")]
            for a, b in (("w", "e"), ("e", "w")):
                src, dst = getattr(t, f"in_{a}"), getattr(t, f"out_{b}")
                m.d.comb += [
                    Assert(dst.valid == src.valid, f"bypass {a}->{b}: valid"),
                    Assert(dst.payload.as_value() == src.payload.as_value(),
                           f"bypass {a}->{b}: payload"),
                    Assert(src.ready == dst.ready, f"bypass {a}->{b}: ready"),
                    Assert(src.color_ready == dst.color_ready, f"bypass {a}->{b}: color_ready"),
                ]
            for p in (N, E, S, W):
                m.d.comb += Assert(~router.port_in(p).valid,
                                   f"the core of a disabled tile receives on port {p}")
        return m


def _ports(component) -> list:
    """Every port signal of a ``wiring.Component``."""
    from amaranth.hdl import Value

    return [Value.cast(value) for _, _, value in component.signature.flatten(component)]


def disabled_tile(tile_class=None, **tile_kwargs) -> ProofResult:
    """Prove :class:`DisabledTile` over every state and input (about 15 s)."""
    kwargs = dict(num_colors=4, sram_words=64, imem_words=32, num_tasks=4, num_dsds=4)
    kwargs.update(tile_kwargs)
    design = DisabledTile(tile_class, **kwargs)
    return prove(design, "disabled_tile", ports=_ports(design.tile))


class RouterDelivery(Elaboratable):
    """A router between free transmitters and receivers, with a scoreboard of assertions.

    In cycle ``c`` (``0 .. num_colors - 1``) colour ``c``'s default route is written through
    the configuration bus with a free route word (any ``rx`` and ``tx``, multicast and empty
    routes included), which the scoreboard keeps. From cycle 0 on, each input may offer a
    wavelet of a free colour in any cycle in which the router's ``color_ready`` for it is set
    (a colour-aware transmitter), so wavelets also arrive while the routes are being written
    and applied; a wavelet its colour's route does not accept (yet) must be dropped. Its data
    is ``{input port, sequence number}``, counting the accepted wavelets of (input, colour).
    Each receiver's ``color_ready`` is free in every cycle.

    Assertions, in every cycle: an output's ``valid`` only with the receiver's ``color_ready``
    for the colour; a delivered wavelet is a data wavelet of a routed colour, from an input its
    route accepts, on an output of its route, and is the next one expected from its (input,
    colour) at that output (none lost before it, none duplicated, none reordered); when the
    router is not busy, every wavelet sent so far has reached every output of its route; once
    the routes are in effect, a router that holds wavelets while every receiver has credit for
    every colour sends something within three cycles (progress).

    Parameters
    ----------
    router_class : type, optional
        :class:`router.Router` (default) or a subclass (a planted bug, in the tests).
    num_colors : int
        Colours of the router (small: the proof's size grows with them).
    output_register : bool
        The router registers its outputs (queue depth 3): an output's ``valid`` then needs the
        receiver's ``color_ready`` of the previous cycle, the receivers take whatever arrives,
        and progress is due within four cycles.
    """

    SEQ_BITS = 4

    def __init__(self, router_class=None, *, num_colors: int = 2, output_register: bool = False):
        from router import Router
        from router.params import min_queue_depth

        C, P = num_colors, NUM_PORTS
        self.num_colors = C
        self.output_register = output_register
        self.router = (router_class or Router)(num_colors=C,
                                               queue_depth=min_queue_depth(output_register),
                                               output_register=output_register)
        self.offer = [Signal(name=f"offer_{p}") for p in range(P)]
        self.offer_color = [Signal(range(C), name=f"offer_color_{p}") for p in range(P)]
        self.credit = [Signal(C, name=f"credit_{o}") for o in range(P)]
        self.route_rx = Signal(P)
        self.route_tx = Signal(P)

    def free_inputs(self) -> list:
        """The signals the prover treats as free inputs."""
        return [*self.offer, *self.offer_color, *self.credit, self.route_rx, self.route_tx]

    def elaborate(self, platform):
        m = Module()
        C, P, B = self.num_colors, NUM_PORTS, self.SEQ_BITS
        r = m.submodules.router = self.router
        settled, rx, tx = _write_routes(m, r, self.route_rx, self.route_tx)

        # Transmitters.
        sent = [[Signal(B, name=f"sent_{p}_{c}") for c in range(C)] for p in range(P)]
        for p in range(P):
            link, colour = r.port_in(p), self.offer_color[p]
            m.d.comb += Assume(colour < C)
            seq = Cat(sent[p]).word_select(colour, B)
            m.d.comb += [
                link.valid.eq(self.offer[p] & link.color_ready.bit_select(colour, 1)),
                link.payload.color.eq(colour),
                link.payload.data.eq(Cat(seq, Const(p, 3))),
            ]
            for c in range(C):
                with m.If(link.valid & (colour == c) & rx[c][p] & tx[c].any()):
                    m.d.sync += sent[p][c].eq(sent[p][c] + 1)

        # Receivers and the scoreboard.
        routed = [[[Signal(name=f"routed_{o}_{p}_{c}") for c in range(C)] for p in range(P)]
                  for o in range(P)]
        got = [[[Signal(B, name=f"got_{o}_{p}_{c}") for c in range(C)] for p in range(P)]
               for o in range(P)]
        for o in range(P):
            link = r.port_out(o)
            colour, data = link.payload.color, link.payload.data
            # The credit a wavelet on the link was sent on: this cycle's, or the previous one's
            # behind an output register (whose receivers take whatever arrives).
            credit = self.credit[o]
            if self.output_register:
                credit = Signal(C, name=f"credit_before_{o}")
                m.d.sync += credit.eq(self.credit[o])
            m.d.comb += [link.color_ready.eq(self.credit[o]),
                         link.ready.eq(1 if self.output_register
                                       else self.credit[o].bit_select(colour, 1))]
            src, seq = data[B:B + 3], data[:B]
            with m.If(link.valid):
                m.d.comb += [
                    Assert(credit.bit_select(colour, 1), "valid without color_ready"),
                    Assert((colour < C) & ~link.payload.ctrl & (src < P)
                           & (data[B + 3:] == 0), "a wavelet nobody sent"),
                ]
            for p in range(P):
                for c in range(C):
                    m.d.comb += routed[o][p][c].eq(rx[c][p] & tx[c][o])
                    with m.If(link.valid & (src == p) & (colour == c)):
                        m.d.comb += [
                            Assert(routed[o][p][c], "a wavelet on an output off its route"),
                            Assert(seq == got[o][p][c], "lost, duplicated or reordered"),
                        ]
                        m.d.sync += got[o][p][c].eq(got[o][p][c] + 1)
                    with m.If(~r.busy & routed[o][p][c]):
                        m.d.comb += Assert(got[o][p][c] == sent[p][c],
                                           "idle with a wavelet undelivered")

        # Progress: once the routes are in effect, a router holding wavelets while every
        # receiver gives credit for every colour sends something within three cycles (the
        # pickers see credit a cycle late and choose a cycle ahead).
        # (An output register makes it four: the wavelet shows a cycle later.)
        full = Cat(cr == (1 << C) - 1 for cr in self.credit).all()
        sending = Cat(r.port_out(o).valid for o in range(P)).any()
        waited = Signal(2 + self.output_register)  # settled, busy, full credit, nothing sent
        m.d.sync += waited.eq(Cat(settled & r.busy & full & ~sending, waited[:-1]))
        with m.If(waited.all() & r.busy & full):
            m.d.comb += Assert(sending, "holding wavelets with credit, nothing sent for "
                                        f"{len(waited) + 1} cycles")
        return m


def router_delivery(router_class=None, *, num_colors: int = 2, steps: int = 8,
                    output_register: bool = False) -> ProofResult:
    """Prove :class:`RouterDelivery` for every input sequence of ``steps`` cycles from reset (a
    bounded proof; registers at their reset values, memories zero, as the FPGA loads them). The
    routes are written in the first ``num_colors`` cycles and applied two cycles later; wavelets
    flow from cycle 0, enough in 7 steps (about a minute) to fill and drain the 2-deep queues,
    bypass, multicast and contend, and the progress check starts at cycle 6. 8 steps take a few
    minutes. ``output_register`` proves the router with registered outputs (queue depth 3)."""
    design = RouterDelivery(router_class, num_colors=num_colors, output_register=output_register)
    return prove(design, "router_delivery", ports=design.free_inputs(), steps=steps)


def _write_routes(m: Module, router, route_rx, route_tx):
    """Write colour ``c``'s default route (``route_rx``, ``route_tx`` of that cycle, free words)
    through the configuration bus in cycle ``c``; nothing is written after. Returns
    ``(settled, rx, tx)``: high from cycle ``num_colors + 2`` on, when the routes are in effect
    (two cycles through the apply stage), and the words written, per colour."""
    from router.params import RouterMap, RouteWord

    C, P = router.num_colors, NUM_PORTS
    age = Signal(range(C + 3))  # cycles since reset, up to C + 2
    with m.If(age != C + 2):
        m.d.sync += age.eq(age + 1)
    m.d.comb += Assert(age <= C + 2, "the cycle count")
    rx = [Signal(P, name=f"rx_{c}") for c in range(C)]
    tx = [Signal(P, name=f"tx_{c}") for c in range(C)]
    word = Signal(RouteWord)
    m.d.comb += [word.rx.eq(route_rx), word.tx.eq(route_tx)]
    for c in range(C):
        with m.If(age == c):
            m.d.comb += [router.cfg.we.eq(1), router.cfg.addr.eq(RouterMap.route(c)),
                         router.cfg.wdata.eq(word)]
            m.d.sync += [rx[c].eq(route_rx), tx[c].eq(route_tx)]
    return age == C + 2, rx, tx


def _onehot(value, width: int):
    """``value`` (an index) decoded to ``width`` bits, one-hot (zero if it is ``width`` or more)."""
    return Cat(value == i for i in range(width))


def _is_onehot(value, width: int):
    """``value`` has exactly one of its ``width`` bits set."""
    return Cat(value == 1 << i for i in range(width)).any()


class RouterProgress(Elaboratable):
    """Per-colour progress, proved by induction: a colour with credit always leaves.

    The router sits between free colour-aware transmitters (any colour, data or control
    wavelets with any payload, in any cycle in which ``color_ready`` is set, so switch commands
    move the routes at any time) and receivers whose ``color_ready`` is free; colour ``c``'s
    default route is written in cycle ``c`` (free ``rx``, ``tx``), as in
    :class:`RouterDelivery`. Once the routes are in effect, (input ``p``, colour ``c``) is
    *due* in a cycle in which ``p``'s queue holds a wavelet of ``c`` besides the one in its
    arrival register, ``c``'s current route accepts ``p`` and has outputs, no switch update
    holds ``c``, and every output of the route gave credit for ``c`` in this cycle and the one
    before. The property: a due (``p``, ``c``) never waits more than ``5 * num_colors``
    cycles running without a wavelet of ``c`` leaving ``p`` (``wait``, a counter per pair).

    Why it holds, and the strengthening that makes it inductive: input ``p`` heads the
    allocator's order one cycle in five, and in the cycle before, its one-hot ring names the
    colour ``p`` offers then (it moves on by one colour each time); ``rank`` counts the
    cycles until that happens for ``c`` (0 when ``c`` already is ``p``'s candidate and ``p``
    heads the order). The assertions: ``wait + rank <= 5 * num_colors`` while due, and a due
    pair of rank 0 leaves; with them the invariants they need, each checked every cycle: the
    router's credit check (``clear``) is the specification's above (from the routes and the
    receivers' ``color_ready``), its registered copy is last cycle's; the allocator's order is
    a one-hot start and the thermometer from it; each ring is one-hot; each input's lookup
    copy equals the current routes (every entry); occupancies stay within the depth; a valid
    update-stage entry, a valid pick and a kept arrival name one colour below
    ``num_colors``, one-hot and binary alike, and a pick or an arrival one that holds a
    wavelet; the cycle count stays in range.

    Parameters
    ----------
    router_class : type, optional
        :class:`router.Router` (default) or a subclass (a planted bug, in the tests).
    num_colors : int
        Colours of the router (the proof's size grows with them).
    """

    def __init__(self, router_class=None, *, num_colors: int = 2):
        from router import Router

        C, P = num_colors, NUM_PORTS
        self.num_colors = C
        self.bound = P * C
        self.router = (router_class or Router)(num_colors=C)
        self.offer = [Signal(name=f"offer_{p}") for p in range(P)]
        self.offer_color = [Signal(range(C), name=f"offer_color_{p}") for p in range(P)]
        self.offer_ctrl = [Signal(name=f"offer_ctrl_{p}") for p in range(P)]
        self.offer_data = [Signal(32, name=f"offer_data_{p}") for p in range(P)]
        self.credit = [Signal(C, name=f"credit_{o}") for o in range(P)]
        self.route_rx = Signal(P)
        self.route_tx = Signal(P)

    def free_inputs(self) -> list:
        """The signals the prover treats as free inputs."""
        return [*self.offer, *self.offer_color, *self.offer_ctrl, *self.offer_data,
                *self.credit, self.route_rx, self.route_tx]

    def elaborate(self, platform):
        m = Module()
        C, P = self.num_colors, NUM_PORTS
        r = self.router
        # Elaborated here, so that the invariants can read its internal signals and add read
        # ports to its lookup memories before they are built.
        m.submodules.router = r.elaborate(platform)
        r._MustUse__used = True  # (elaborated by hand, not through Fragment.get)
        probes = r.probes
        alloc = probes.allocator
        routes = probes.routes
        settled, _, _ = _write_routes(m, r, self.route_rx, self.route_tx)
        # The proof is about the router running after its reset (the initial state).
        m.d.comb += Assume(~ResetSignal())

        for p in range(P):
            link, colour = r.port_in(p), self.offer_color[p]
            m.d.comb += [
                Assume(colour < C),
                link.valid.eq(self.offer[p] & link.color_ready.bit_select(colour, 1)),
                link.payload.color.eq(colour),
                link.payload.ctrl.eq(self.offer_ctrl[p]),
                link.payload.data.eq(self.offer_data[p]),
            ]
        for o in range(P):
            link = r.port_out(o)
            m.d.comb += [link.color_ready.eq(self.credit[o]),
                         link.ready.eq(self.credit[o].bit_select(link.payload.color, 1))]

        # The specification's credit: every output of the current route has credit for the
        # colour, the route has outputs, and no switch update holds the colour.
        credited = Signal(C)
        credited_before = Signal(C)
        for c in range(C):
            tx = routes[c].tx
            m.d.comb += credited[c].eq(
                tx.any() & ~probes.held[c]
                & Cat(~tx[o] | self.credit[o][c] for o in range(P)).all())
        m.d.sync += credited_before.eq(credited)
        m.d.comb += [Assert(probes.clear == credited, "the router's credit check"),
                     Assert(probes.clear_late == credited_before, "its registered copy")]

        # Invariants of the arbitration state.
        n = P
        m.d.comb += [
            Assert(_is_onehot(alloc.first, n), "the allocator's first is one-hot"),
            Assert(alloc.upper == Cat(alloc.first[:i + 1].any() for i in range(n)),
                   "the allocator's order mask starts at its first"),
        ]
        for valid, colour, onehot in probes.stages:
            with m.If(valid):
                m.d.comb += Assert((colour < C) & (onehot == _onehot(colour, C)),
                                   "an update stage's colour")
        for p, inp in enumerate(probes.inputs):
            q = inp.queues
            m.d.comb += Assert(_is_onehot(inp.ring, C), "a ring is one-hot")
            with m.If(inp.sel_valid):
                m.d.comb += Assert((inp.sel < C) & (inp.sel_onehot == _onehot(inp.sel, C))
                                   & (q.nonempty & inp.sel_onehot).any(),
                                   "a pick names a colour that holds a wavelet")
            with m.If(q.arrival_onehot.any()):
                m.d.comb += Assert((q.arrival_color < C)
                                   & (q.arrival_onehot == _onehot(q.arrival_color, C))
                                   & (q.nonempty & q.arrival_onehot).any(),
                                   "a kept arrival's colour, counted in its occupancy")
            for c in range(C):  # every entry (an induction hypothesis must cover them all)
                entry = probes.lookups[p].read_port(domain="comb")
                m.d.comb += [entry.addr.eq(c),
                             Assert((entry.data.tx == routes[c].tx)
                                    & (entry.data.rx == routes[c].rx[p]),
                                    "a lookup copy is the current route")]
                m.d.comb += Assert(q.occupancy[c] <= q.depth, "an occupancy within the depth")

        # The property, and its strengthening.
        for p, inp in enumerate(probes.inputs):
            q = inp.queues
            # Cycles until the cycle before p heads the order (first rotates by one a cycle).
            to_turn = Signal(range(P), name=f"to_turn_{p}")
            m.d.comb += to_turn.eq(sum(Mux(alloc.first[i], (p - 1 - i) % P, 0)
                                       for i in range(P)))
            for c in range(C):
                queued = Mux(q.arrival_onehot[c], q.occupancy[c] >= 2, q.occupancy[c] >= 1)
                due = Signal(name=f"due_{p}_{c}")
                m.d.comb += due.eq(settled & credited[c] & credited_before[c] & routes[c].rx[p]
                                   & queued)
                left = Signal(name=f"left_{p}_{c}")
                m.d.comb += left.eq(alloc.go[p] & (inp.color == c))
                turns = Signal(range(C), name=f"turns_{p}_{c}")  # ring steps until it names c
                m.d.comb += turns.eq(sum(Mux(inp.ring[j], (c - j) % C, 0) for j in range(C)))
                now = alloc.first[p] & inp.sel_valid & (inp.sel == c)
                rank = Signal(range(self.bound + 1), name=f"rank_{p}_{c}")
                m.d.comb += rank.eq(Mux(now, 0, 1 + to_turn + P * turns))
                wait = Signal(range(self.bound + 2), name=f"wait_{p}_{c}")
                m.d.sync += wait.eq(Mux(due & ~left, wait + 1, 0))
                m.d.comb += Assert(wait <= self.bound,
                                   f"a colour with credit waited over {self.bound} cycles")
                with m.If(due):
                    m.d.comb += Assert(wait + rank <= self.bound, "wait + rank")
                    with m.If(rank == 0):
                        m.d.comb += Assert(left, "p heads the order with c and it stays")
        return m


def router_progress(router_class=None, *, num_colors: int = 2, steps: int = 1) -> ProofResult:
    """Prove :class:`RouterProgress` by temporal induction (unbounded: every reachable state),
    with ``k`` up to ``steps`` (1 suffices: the assertions are inductive as they stand). About
    1 s with 2 colours, 8 s with 8 and 8 minutes with the default 24."""
    design = RouterProgress(router_class, num_colors=num_colors)
    return prove(design, "router_progress", ports=design.free_inputs(), steps=steps,
                 induction=True)


class StationDelivery(Elaboratable):
    """A configuration station between a free packet source and a free sink, with a
    scoreboard written from the packet format (:mod:`hdl.config_chain`).

    The source offers any word in any cycle and holds an offer until it is taken (a stream
    transmitter); the sink's ``ready`` is free. READ packets for this station (its answers
    insert words) are left out by an assumption; every other packet, of any command, length
    and address, may come. The scoreboard parses the words taken into packets by itself and
    keeps the words the station must pass on in a shadow queue.

    Assertions, in every cycle: each word the station sends is the next one in the shadow
    queue (none lost, duplicated, reordered or invented); when it sends nothing, nothing is
    owed; a core write happens exactly in the cycle after a data word of a WRITE for this
    station (or a broadcast, while enabled) is taken, with that word at the packet's next
    address; no core read; the shell register holds the data word of the last SHELL packet for
    this station.

    Parameters
    ----------
    station_class : type, optional
        :class:`hdl.config_chain.ConfigStation` (default) or a subclass (a planted bug).
    """

    ROW, COL = 1, 2
    SHADOW = 8  # more than the station's buffer can hold

    def __init__(self, station_class=None, *, addr_width: int = 8):
        from hdl.config_chain import ConfigStation

        self.station = (station_class or ConfigStation)(addr_width)
        self.addr_width = addr_width
        self.in_valid = Signal()
        self.in_word = Signal(32)
        self.out_ready = Signal()

    def free_inputs(self) -> list:
        """The signals the prover treats as free inputs."""
        return [self.in_valid, self.in_word, self.out_ready]

    def elaborate(self, platform):
        from hdl.config_chain import BROADCAST, SHELL_BITS, ChainHeader, Command

        m = Module()
        st = m.submodules.station = self.station
        m.d.comb += [st.row.eq(self.ROW), st.col.eq(self.COL), st.bus.rdata.eq(0),
                     st.chain_out.ready.eq(self.out_ready)]
        # The source: a new free offer, or the one not yet taken.
        held, held_word = Signal(), Signal(32)
        valid = held | self.in_valid
        word = Mux(held, held_word, self.in_word)
        take = valid & st.chain_in.ready
        m.d.comb += [st.chain_in.valid.eq(valid), st.chain_in.payload.eq(word)]
        m.d.sync += [held.eq(valid & ~st.chain_in.ready), held_word.eq(word)]

        # The scoreboard's own packet parser.
        remaining = Signal(13)  # words of the current packet still to come
        passing = Signal()      # the current packet is passed on
        writing = Signal()      # its data words are written to the core
        first = Signal()        # the next body word is a WRITE's address
        addr = Signal(self.addr_width)
        enabled = Signal()
        shell = Signal(SHELL_BITS)
        shell_next = Signal()   # the next word is the body of a SHELL for this station
        head = ChainHeader(word)
        me = (head.row == self.ROW) & (head.col == self.COL)
        broadcast = (head.row == BROADCAST) & (head.col == BROADCAST)
        is_write, is_read = head.command == Command.WRITE, head.command == Command.READ
        is_shell = head.command == Command.SHELL
        header = remaining == 0
        with m.If(valid & header):
            m.d.comb += Assume(~(is_read & me & enabled))
        consumed_header = (is_write & enabled & me & ~broadcast) | (is_shell & me)
        forwarded = Signal()
        m.d.comb += forwarded.eq(Mux(header, ~consumed_header, passing))
        with m.If(take):
            with m.If(header):
                body = Mux(is_write, head.count + 1,
                           Mux(head.command == Command.RDATA, head.count, 1))
                m.d.sync += [remaining.eq(body), passing.eq(~consumed_header),
                             writing.eq(is_write & enabled & (me | broadcast)),
                             first.eq(1), shell_next.eq(is_shell & me)]
            with m.Else():
                m.d.sync += [remaining.eq(remaining - 1), first.eq(0)]
                with m.If(shell_next):
                    m.d.sync += [shell.eq(word[:SHELL_BITS]), enabled.eq(word[0])]
                with m.If(writing):
                    m.d.sync += addr.eq(Mux(first, word, addr + 1))
        # The core write comes the cycle after its data word is taken (registered).
        data_word = take & ~header & writing & ~first
        wrote, wrote_addr, wrote_word = Signal(), Signal(self.addr_width), Signal(32)
        m.d.sync += [wrote.eq(data_word), wrote_addr.eq(addr),
                     wrote_word.eq(word)]
        m.d.comb += [
            Assert(st.bus.we == wrote, "a core write that is not a WRITE's data word"),
            Assert(~st.bus.re, "a core read with no READ for this station"),
            Assert(st.shell.as_value() == shell, "the shell register"),
        ]
        with m.If(wrote):
            m.d.comb += Assert((st.bus.addr == wrote_addr) & (st.bus.wdata == wrote_word),
                               "a core write's address or data")

        # The shadow queue of words owed downstream.
        N = self.SHADOW
        shadow = Array(Signal(32, name=f"shadow_{i}") for i in range(N))
        wp, rp = Signal(range(N)), Signal(range(N))
        owed = Signal(range(N + 1))
        with m.If(take & forwarded):
            m.d.sync += [shadow[wp].eq(word), wp.eq(wp + 1)]
        sent = st.chain_out.valid & self.out_ready
        with m.If(sent):
            m.d.comb += [Assert(owed != 0, "a word nobody sent"),
                         Assert(st.chain_out.payload == shadow[rp],
                                "a word lost, duplicated, changed or reordered")]
            m.d.sync += rp.eq(rp + 1)
        m.d.sync += owed.eq(owed + (take & forwarded) - sent)
        m.d.comb += Assume(owed < N)  # within the shadow (the station buffers 4 words)
        with m.If(~st.chain_out.valid):
            m.d.comb += Assert(owed == 0, "a word held back")
        return m


def station_delivery(station_class=None, *, steps: int = 10) -> ProofResult:
    """Prove :class:`StationDelivery` for every input sequence of ``steps`` cycles from reset (a
    bounded proof; 10 steps take about three minutes, 6 about ten seconds)."""
    design = StationDelivery(station_class)
    return prove(design, "station_delivery", ports=design.free_inputs(), steps=steps)


def _registered_outputs() -> dict:
    from fabric.array import registered_outputs

    return registered_outputs()


#: name -> (proof function, quick enough for every pytest run)
ALL = {"disabled_tile": (disabled_tile, True),
       "disabled_tile_outreg": (lambda: disabled_tile(**_registered_outputs()), True),
       "router_delivery_7": (lambda: router_delivery(steps=7), True),
       "router_delivery_8": (router_delivery, False),
       "router_delivery_outreg_8": (lambda: router_delivery(steps=8, output_register=True),
                                    True),
       "router_progress_2": (router_progress, True),
       "router_progress_8": (lambda: router_progress(num_colors=8), True),
       "router_progress_24": (lambda: router_progress(num_colors=24), False),
       "station_delivery_6": (lambda: station_delivery(steps=6), True),
       "station_delivery_10": (station_delivery, False)}
