"""Per-colour queues of one link input, held in memory: the receiver side of a fabric link.

Every link receiver of the fabric (each router input port, the PE's ramp input) keeps one FIFO
of ``depth`` wavelets per colour, so that a colour whose consumer is stalled fills only its own
queue and never blocks another colour (the WSE's per-colour flow control). The queues of all
colours share ``depth`` slot memories of ``num_colors`` entries, each addressed by colour, with
a head pointer per colour, as CMU CONNECT's MultiFIFOMem keeps all queues in one memory; on
ECP5 they map to LUT RAM (``TRELLIS_DPR16X4``) or block RAM, one copy per read port. A read
port reads every slot of its colour beside the head pointer and selects the head's (not one
memory read behind the pointer's). One wavelet is enqueued and up to one is dequeued per read
port per cycle.

Micro-architecture::

    link ──> arrival register ──┬──> slot memories (slot ``tail`` written at the colour)
                                └──> read ports (when it is the head of its colour)

* **Arrival register.** The link's wavelet is captured every cycle, with its colour decoded to
  one-hot and refused colours removed (``accept``, and colours at or above ``num_colors``: such
  a wavelet is taken, dropped and reported on ``dropped``). In the next cycle the arrival is
  written into the memory behind the queued wavelets of its colour; when it is the head of its
  colour a read port may also take it from the register in that cycle (a *bypass*: a wavelet
  can leave a router one cycle after it arrived), and the colour's head pointer moves past it.
* **Occupancy** of each colour (memory plus arrival register) is a small counter per colour;
  ``nonempty`` and ``plural`` (at least two) are given for every colour in parallel, for pickers
  and allocators, and ``arrival_onehot`` / ``arrival_is_head`` for the bypass.
* **Flow control.** ``color_ready[c]`` is a function of the occupancy registers alone: colour
  ``c`` has room for one more wavelet (``occupancy < depth``, the arrival register counted), or
  the colour is refused (its wavelets are taken and dropped). Behind a transmitter with an
  output register (``in_flight=1``: it sends in cycle ``t + 1`` what it decided on the
  ``color_ready`` of cycle ``t``) it means room for one more beyond the wavelet that may be in
  flight (``occupancy < depth - 1``), while ``ready`` still reports the room there is now. A
  wavelet offered because ``color_ready`` was set always finds room, so ``valid`` alone is the
  transfer for a colour-aware transmitter; a wavelet offered without room is not taken
  (``ready`` is low: a plain stream transmitter holds it and offers it again), and is not
  counted as dropped. With
  ``depth = 2`` one colour sustains one wavelet per cycle while it is dequeued as it arrives
  (occupancy stays at one: the wavelet in the arrival register).
* **Read ports** (``rd[i]``, combinational): the consumer names a colour; the port gives the
  head wavelet of that colour and dequeues it when ``pop`` is set. Ports must not pop the same
  colour in one cycle and must pop only a nonempty colour.
* **Pointers.** Per-colour head pointers, and the tail derived as head plus the memory count,
  so their initial values do not matter (memories are not reset). With one read port the head
  pointers are themselves LUT RAM; with more they are flip-flops (several pops per cycle).
* ``ready`` is the room for ``payload.color`` now (``color_ready[payload.color]`` when
  ``in_flight`` is 0; high for colours at or above ``num_colors``); it serves plain stream
  transmitters that ignore ``color_ready``.

``flush`` (a synchronous reset of the queue state) empties every queue, the arrival register
included, and drops a wavelet arriving in that cycle: it is the PE's CLEAR, which the host
issues while the fabric is quiet.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .block_ram import BLOCK_RAM, registered_read
from .logic import at_least
from .params import check_bool, check_int
from .signature import ParamSignature
from .wavelet import COLOR_BITS, DATA_BITS, LinkSignature, check_num_colors, ready_at

__all__ = ["QueueEntry", "QueueReadSignature", "ColorQueues", "MAX_QUEUE_DEPTH"]

#: Deepest per-colour queue, in wavelets.
MAX_QUEUE_DEPTH = 16


class QueueEntry(data.Struct):
    """What a queue keeps of a wavelet (its colour is the queue's)."""

    data: DATA_BITS
    ctrl: 1


class QueueReadSignature(ParamSignature):
    """A read port of :class:`ColorQueues`, from the consumer's side.

    Parameters
    ----------
    num_colors : int
        Colours of the queues.

    Members
    -------
    color : ``Out(5)``
        The colour whose head is read this cycle.
    next_color : ``Out(5)``
        The colour that will be read in the next cycle: only a queue with block-RAM storage
        (``storage="bram"``, registered reads) uses it, to address its memories a cycle ahead.
    onehot : ``Out(num_colors)``
        The same colour, one-hot (selects the counter a pop decrements; consumers usually hold
        it already, so the queues do not decode it again).
    pop : ``Out(1)``
        Dequeue that head this cycle.
    data : ``In(32)``, ctrl : ``In(1)``
        The head wavelet's data and control bit (meaningful when the colour is nonempty).
    """

    PARAMS = ("num_colors",)

    def __init__(self, num_colors: int):
        self.num_colors = check_num_colors(num_colors)
        super().__init__({
            "color": Out(COLOR_BITS),
            "next_color": Out(COLOR_BITS),
            "onehot": Out(num_colors),
            "pop": Out(1),
            "data": In(DATA_BITS),
            "ctrl": In(1),
        })


def onehot_select(onehot, values) -> object:
    """OR of ``values[i]`` where ``onehot[i]`` is set (one-hot AND-OR multiplexer)."""
    out = 0
    for i, v in enumerate(values):
        out = out | Mux(onehot[i], v, 0)
    return out


class ColorQueues(wiring.Component):
    """``num_colors`` FIFOs of ``depth`` wavelets behind one link input, in ``depth`` slot
    memories.

    Parameters
    ----------
    num_colors : int
        Colours (1 to 32).
    depth : int
        Wavelets per colour, including the arrival register (2 to 16; 2 sustains one wavelet
        per cycle per colour).
    read_ports : int
        Number of read ports (1 to 4); each is one copy of the memory.
    storage : ``"lutram"`` or ``"bram"``
        ``"lutram"`` (default): one memory of ``num_colors`` whole entries per slot, read
        combinationally (LUT RAM on ECP5). ``"bram"``: the data in one memory per slot,
        ``num_colors`` deep, read through a register (block RAM on ECP5), and the control bits
        in a LUT RAM read combinationally (a consumer's allocation depends on them); a read
        port then names its colour a cycle ahead (``next_color``). The word written in a cycle
        (the arrival register's wavelet) is readable in the next: a register keeps the last
        write (valid, colour, slot, data) and replaces the block RAM's word for that slot,
        whose registered read of that cycle returned the word before (33 flip-flops and a
        32-bit 2:1 mux per read port).
    in_flight : int
        Wavelets the transmitter may have in flight beyond the ``color_ready`` it saw: 0
        (default, a transmitter that decides and sends in one cycle) or 1 (one with an output
        register). ``depth`` must be at least ``2 + in_flight`` for one wavelet per cycle per
        colour, and is at least ``1 + in_flight``.
    early_head : bool
        The transmitter drives the link from registers (an output register, a FIFO head), so
        the link's wavelet lands early in the cycle: the arrival's head flag is then registered
        as it lands, and a consumer's allocation starts from a flip-flop. Behind a transmitter
        whose link is the end of its allocation (default ``False``) the flag is a reduction
        over the arrival register, which keeps the landing short.

    Members
    -------
    link : ``In(LinkSignature(num_colors))``
        The link whose receiver this is.
    accept : ``In(num_colors)``
        Colours to keep (default all); a wavelet of any other colour is taken and dropped.
    flush : ``In(1)``
        Empty every queue at the end of this cycle.
    rd : ``In(QueueReadSignature(num_colors)).array(read_ports)``
        Read ports.
    nonempty, plural : ``Out(num_colors)``
        Colour ``c`` holds at least one / at least two wavelets (the arrival register included).
    occupancy : ``Out(ArrayLayout(range(depth + 1), num_colors))``
        Wavelets each colour holds (the arrival register included).
    arrival_valid : ``Out(1)``
        The arrival register holds a wavelet (kept or not: it may be one to drop).
    arrival_onehot : ``Out(num_colors)``
        One-hot colour of the kept wavelet in the arrival register (zero when there is none).
    arrival_color : ``Out(5)``
        Its colour, binary.
    arrival_is_head : ``Out(1)``
        The arrival register holds a kept wavelet and the memory holds none of its colour.
    dropped : ``Out(1)``
        A wavelet was dropped (refused colour) in the previous cycle.
    busy : ``Out(1)``
        Some queue holds a wavelet.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or out of range.
    """

    def __init__(self, *, num_colors: int, depth: int, read_ports: int = 1,
                 storage: str = "lutram", in_flight: int = 0, early_head: bool = False):
        self.num_colors = check_num_colors(num_colors)
        self.depth = check_int("depth", depth, 2, MAX_QUEUE_DEPTH, "wavelets per colour")
        self.in_flight = check_int("in_flight", in_flight, 0, 1, "wavelets in flight")
        self.early_head = check_bool("early_head", early_head)
        self.read_ports = check_int("read_ports", read_ports, 1, 4)
        if storage not in ("lutram", "bram"):
            raise ValueError(f"storage must be 'lutram' or 'bram', not {storage!r}")
        self.storage = storage
        super().__init__({
            "link": In(LinkSignature(num_colors)),
            "accept": In(num_colors, init=(1 << num_colors) - 1),
            "flush": In(1),
            "rd": In(QueueReadSignature(num_colors)).array(read_ports),
            "nonempty": Out(num_colors),
            "plural": Out(num_colors),
            "occupancy": Out(data.ArrayLayout(range(depth + 1), num_colors)),
            "arrival_valid": Out(1),
            "arrival_onehot": Out(num_colors),
            "arrival_color": Out(COLOR_BITS),
            "arrival_is_head": Out(1),
            "dropped": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        C, D, R = self.num_colors, self.depth, self.read_ports
        slot_bits = max(1, (D - 1).bit_length())
        pow2 = D == 1 << slot_bits

        def wrap(value):  # a slot index modulo depth
            value = Value.cast(value)
            if pow2:
                return value[:slot_bits]
            return Mux(value >= D, value - D, value)[:slot_bits]

        # One memory per slot, addressed by colour: a read port reads every slot of its colour
        # beside the head pointer (not behind it) and selects the head's. With "lutram" a slot
        # is one LUT RAM of whole entries read combinationally. With "bram" a slot's data is in
        # block RAM read through a register (a cycle ahead, at `next_color`), and its control
        # bits in LUT RAM read combinationally: a consumer's allocation depends on them, and a
        # block RAM's clock-to-output (5.8 ns on ECP5) would start its longest path.
        bram = self.storage == "bram"
        # (A block RAM's word read while it is written is never used, so the collision is a
        # don't-care: hdl.block_ram.)
        fast = []  # per slot: (write port, combinational read ports) of the LUT RAM
        blocks = []  # per slot, "bram" only: (write port, registered read data) of the data
        for k in range(D):
            mem = memory.Memory(shape=1 if bram else QueueEntry, depth=C, init=[])
            m.submodules[f"ctrl{k}" if bram else f"slot{k}"] = mem
            fast.append((mem.write_port(), [mem.read_port(domain="comb") for _ in range(R)]))
            if bram:
                mem = memory.Memory(shape=DATA_BITS, depth=C, init=[], attrs=BLOCK_RAM)
                m.submodules[f"data{k}"] = mem
                blocks.append((mem.write_port(),
                               [registered_read(m, mem, addr=self.rd[i].next_color,
                                                name=f"data{k}_rd{i}") for i in range(R)]))

        occ = [Signal(range(D + 1), name=f"occ_{c}") for c in range(C)]  # per colour, below

        # ---- arrival register (nothing between the link and its data inputs) -----------------
        link = self.link
        colour = link.payload.color
        # A wavelet is taken when ``valid & ready``: a colour-aware transmitter offers only
        # with credit, so for it ``valid`` alone is the transfer; a plain stream transmitter
        # may offer a colour without room, which is not taken (it holds it and offers again).
        has_room = Signal(C)  # accepted colour with room (registered occupancy only)
        arriving = Signal(C)  # the link delivers a kept wavelet of colour c now
        refused = Signal()  # the link delivers a wavelet of a refused colour (taken, dropped)
        for c in range(C):
            m.d.comb += [has_room[c].eq(self.accept[c] & ~at_least(occ[c], D)),
                         arriving[c].eq(link.valid & (colour == c) & has_room[c])]
        # refused: taken (``ready``, below, is high for it) but of no accepted colour; a mux of
        # registered bits by the colour, off the occupancy and room logic
        accepted = Cat(self.accept, Const(0, (1 << COLOR_BITS) - C))
        m.d.comb += refused.eq(link.valid & ~accepted.bit_select(colour, 1))
        arr_raw = Signal()
        arr_onehot = Signal(C)
        arr_color = Signal(COLOR_BITS)
        arr_entry = Signal(QueueEntry)
        arr_refused = Signal()
        m.d.sync += [
            arr_raw.eq(arriving.any() | refused),
            arr_refused.eq(refused),
            arr_onehot.eq(arriving),
            arr_color.eq(colour),
            arr_entry.data.eq(link.payload.data),
            arr_entry.ctrl.eq(link.payload.ctrl),
        ]

        # ---- occupancy per colour -------------------------------------------------------------
        only = Signal(C)  # occupancy exactly one
        for c in range(C):
            m.d.comb += [
                self.occupancy[c].eq(occ[c]),
                self.nonempty[c].eq(occ[c] != 0),
                self.plural[c].eq(at_least(occ[c], 2)),
                only[c].eq(occ[c] == 1),
            ]
        # The arrival is the head of its colour when the memory holds none of it. With
        # ``early_head`` the flag is registered as the wavelet lands (from the arriving
        # colour's occupancy and whether a read port pops that colour now); otherwise it is a
        # reduction over the arrival register.
        is_head = Signal()
        if self.early_head:
            pops_colour = Cat(p.pop & (p.color == colour) for p in self.rd).any()
            m.d.sync += is_head.eq(Cat(arriving[c] & (occ[c] == 0) for c in range(C)).any()
                                   | ((arriving & only).any() & pops_colour))
        else:
            m.d.comb += is_head.eq((arr_onehot & only).any())
        m.d.comb += [
            self.arrival_valid.eq(arr_raw),
            self.arrival_onehot.eq(arr_onehot),
            self.arrival_color.eq(arr_color),
            self.arrival_is_head.eq(is_head),
            self.dropped.eq(arr_refused),
            self.busy.eq(self.nonempty.any()),
        ]
        # Wavelets of the arrival's colour already in memory: occupancy minus the arrival.
        arr_mem_count = Signal(range(D + 1))
        if D == 2:
            m.d.comb += arr_mem_count.eq((arr_onehot & self.plural).any())
        else:
            m.d.comb += arr_mem_count.eq(onehot_select(arr_onehot, occ) - 1)

        # ---- head pointers --------------------------------------------------------------------
        if R == 1:
            heads = memory.Memory(shape=slot_bits, depth=C, init=[])
            m.submodules.heads = heads
            head_wr = heads.write_port()
            head_at_port = heads.read_port(domain="comb")
            head_at_arrival = heads.read_port(domain="comb")
            m.d.comb += [head_at_port.addr.eq(self.rd[0].color), head_at_arrival.addr.eq(arr_color)]
            port_heads = [head_at_port.data]
            arr_head = head_at_arrival.data
        else:
            head = [Signal(slot_bits, name=f"head_{c}") for c in range(C)]
            all_heads = Cat(head)
            port_heads = [all_heads.word_select(p.color, slot_bits) for p in self.rd]
            arr_head = onehot_select(arr_onehot, head)

        # ---- read ports -----------------------------------------------------------------------
        # "bram": the last cycle's write (valid, colour, slot, data), for the forwarding below.
        fwd_valid, fwd_color = Signal(), Signal(COLOR_BITS)
        fwd_slot, fwd_data = Signal(slot_bits), Signal(DATA_BITS)
        for i, (port, slot) in enumerate(zip(self.rd, port_heads)):
            k = port.color
            from_arrival = Signal(name=f"rd{i}_from_arrival")
            m.d.comb += from_arrival.eq(is_head & (arr_color == k))
            stored = Signal(QueueEntry, name=f"rd{i}_stored")
            reads = []
            for _, rds in fast:
                m.d.comb += rds[i].addr.eq(k)
                reads.append(rds[i].data)
            if bram:
                # The word written last cycle is forwarded from a register: the block RAM's
                # registered read of that cycle returned the word before it.
                datas = [rds[i] for _, rds in blocks]
                fresh = Signal(name=f"rd{i}_fresh")
                m.d.comb += [
                    fresh.eq(fwd_valid & (fwd_color == k) & (fwd_slot == slot)),
                    stored.data.eq(Mux(fresh, fwd_data, Array(datas)[slot])),
                    stored.ctrl.eq(Array(reads)[slot]),
                ]
            else:
                m.d.comb += stored.eq(Array(reads)[slot])
            entry = Signal(QueueEntry, name=f"rd{i}_entry")
            m.d.comb += [
                entry.eq(Mux(from_arrival, arr_entry, stored)),
                port.data.eq(entry.data),
                port.ctrl.eq(entry.ctrl),
            ]
        pops = Signal(C)
        m.d.comb += pops.eq(onehot_select([p.pop for p in self.rd], [p.onehot for p in self.rd]))

        # ---- enqueue ----------------------------------------------------------------------------
        # Every kept arrival is written at its colour's tail, even when it is dequeued at once
        # (its head pointer then moves past it): the write does not wait for the consumers.
        tail = Signal(slot_bits)
        m.d.comb += tail.eq(wrap(arr_head + arr_mem_count))
        kept = arr_onehot.any()
        if bram:
            m.d.sync += [fwd_valid.eq(kept), fwd_color.eq(arr_color), fwd_slot.eq(tail),
                         fwd_data.eq(arr_entry.data)]
        for k in range(D):
            writes = [(fast[k][0], arr_entry.ctrl if bram else arr_entry)]
            if bram:
                writes.append((blocks[k][0], arr_entry.data))
            for w, value in writes:  # slot k's memories: written together at the tail
                m.d.comb += [w.addr.eq(arr_color), w.data.eq(value), w.en.eq(kept & (tail == k))]

        # ---- dequeue, counts, colour-ready ------------------------------------------------------
        # color_ready is a function of the occupancy registers only: room for one more now
        # (beyond the one that may be in flight, with ``in_flight``); `room` is what there is.
        color_ready = Signal(C)
        room = Signal(C, name="room") if self.in_flight else color_ready
        for c in range(C):
            m.d.sync += occ[c].eq(occ[c] - pops[c] + arriving[c])
            m.d.comb += room[c].eq(~self.accept[c] | has_room[c])
            if self.in_flight:
                m.d.comb += color_ready[c].eq(~self.accept[c]
                                                  | ~at_least(occ[c], D - self.in_flight))
        # Every pop advances its colour's head pointer.
        if R == 1:
            port = self.rd[0]
            m.d.comb += [
                head_wr.addr.eq(port.color),
                head_wr.data.eq(wrap(port_heads[0] + 1)),
                head_wr.en.eq(port.pop),
            ]
        else:
            for c in range(C):
                with m.If(pops[c]):
                    m.d.sync += head[c].eq(wrap(head[c] + 1))
        m.d.comb += link.color_ready.eq(color_ready)
        # ready = room[colour] (color_ready[colour] without a wavelet in flight); colours
        # without a queue are taken (and dropped).
        m.d.comb += link.ready.eq(ready_at(room, colour, C))
        return ResetInserter(self.flush)(m)
