"""The PE's DSD vector engine: one element per cycle through a fixed-latency pipeline.

The task engine (:mod:`pe.pe`) resolves a vector instruction's three DSDs and its register
operands into a :class:`VectorOp` and hands it over on the ``op`` stream. This unit keeps one
waiting instruction (``vq``) and one issuing instruction (``vx``), so the task engine runs ahead
by one vector instruction and back-to-back instructions issue without a bubble (unless the
first has a single element).

Pipeline, one element entering per cycle (stage names as in the ``meta_*`` signals)::

    S0   issue: word addresses (registered counters), RAW check against every element in
         flight, fabric-input element from the prefetch buffer, output credit; SRAM read
    S1   the block RAM read data, registered
    S2   SRAM data or the carried value per operand channel; lane select
    W1   widen, first half: fields, leading zeros of a subnormal fraction
    W2   widen, second half: normalising shift, rebias (:func:`hdl.formats.widen_dynamic`)
    M1-6 FMul; beside it the integer and FMAX results (the integer multiply is four
         18 x 18 products in MULT18X18D blocks, summed in the next stages)
    A1-6 FAdd
    N1   narrow, first half (:func:`hdl.formats.narrow_dynamic`)
    N2   narrow, second half; write-back: SRAM write, output FIFO, register accumulator

Three operand channels feed the arithmetic: ``x`` (src0) and ``y`` (src1) the multiplier, ``z``
the adder. Every floating-point operation is ``x * y + z``: ``FMUL`` has ``z = -0``, ``FMAC``
``z = dst`` and ``FADD`` ``y = 1.0`` and ``z = src1``, all exact rewrites in IEEE arithmetic, so
one pipeline serves all and nothing is multiplexed in front of the units. src0 reads SRAM port
A, src1 port B, and an accumulating memory destination whichever port is free.

The element issue stalls (never a later stage) for: a read of an SRAM word that an element in
flight will write (RAW interlock); a fabric-input element not yet fetched; no output credit
(credits count the output FIFO's free entries less the elements in flight to it); a register
destination (accumulator) whose previous element has not retired. Fabric-input wavelets are
fetched from the PE's input queues ahead of issue into a two-entry buffer per source, never
more than the instruction's remaining elements need (a source with a DSD period uses each
wavelet for that many elements), so the queue pop does not wait for the issue decision; an
instruction with two fabric-input sources fetches them alternately (one element per two
cycles). A memory operand with a period returns to its first address after every period.
Operands are checked (rules, SRAM bounds) by the task engine before an instruction is handed
over, so every element issued is legal.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.block_ram import BLOCK_RAM, registered_read
from hdl.color_queue import QueueReadSignature
from hdl.formats import Format, narrow_dynamic, widen_dynamic
from hdl.sram import SRAMPortSignature
from hdl.wavelet import COLOR_BITS, LinkSignature
from pe.fpu import FAdd, FMul
from pe.isa import DsdKind, Op

__all__ = ["Operand", "VectorOp", "VectorUnit", "element_shift"]

_ONE = 0x3F800000
_NEG_ZERO = 0x80000000
_CANONICAL_NAN = 0x7FC00000
#: Element address width: bounds are checked before issue, so every element address of an
#: instruction is in 0 .. 65535 (the counter runs one stride past the last element).
_EA_BITS = 18


class Operand(data.Struct):
    """A resolved DSD operand (what the :mod:`pe.isa` DSD words decode to, plus a register value).

    Members
    -------
    kind : 2 bits, :class:`pe.isa.DsdKind`
    fmt : 3 bits, :class:`hdl.formats.Format`
    base : 16 bits
        Element address (MEM), colour (FABIN/FABOUT) or register number (REG).
    stride : signed 16 bits
        Element stride (MEM).
    ctrl : 1 bit
        Send control wavelets (FABOUT destinations).
    period : 10 bits
        MEM: the element address returns to ``base`` every ``period`` elements; FABIN: each
        wavelet serves ``period`` consecutive elements (0: neither; :data:`pe.isa.DsdWord1`).
    value : 32 bits
        Register value captured when the instruction was accepted (REG sources; for a REG
        destination, the accumulator's initial value).
    """

    kind: unsigned(2)
    fmt: unsigned(3)
    base: unsigned(16)
    stride: signed(16)
    ctrl: unsigned(1)
    period: unsigned(10)
    value: unsigned(32)


class VectorOp(data.Struct):
    """A vector instruction ready to execute.

    Members
    -------
    op : 6 bits, :class:`pe.isa.Op`
    length : 16 bits
        Element count.
    dst, src0, src1 : :class:`Operand`
    """

    op: unsigned(6)
    length: unsigned(16)
    dst: Operand
    src0: Operand
    src1: Operand


def _byte_offset(element_address, shift):
    """Byte offset in its word of the element at ``element_address`` (``shift`` as from
    :func:`element_shift`)."""
    a = element_address
    return Mux(shift == 2, a[:2], Mux(shift == 1, Cat(Const(0, 1), a[0]), 0))


def element_shift(fmt):
    """log2(elements per 32-bit word) of a format code: 0 (32-bit), 1 (16-bit) or 2 (8-bit)."""
    return Mux((fmt == Format.BF16) | (fmt == Format.FP16) | (fmt == Format.INT16), 1,
               Mux((fmt == Format.E4M3) | (fmt == Format.E5M2) | (fmt == Format.INT8), 2, 0))


#: What the pipeline carries of an element from issue to write-back.
_Meta = data.StructLayout({
    "valid": 1,
    "op": 6,          # the instruction's opcode
    "wmem": 1,        # writes SRAM (and is valid)
    "fabric": 1,      # goes to the output FIFO
    "ctrl": 1,        # ... as a control wavelet
    "reg": 1,         # register destination (accumulator)
    "last": 1,        # last element of its instruction
    "fp": 1,          # result from FAdd (else the side result)
    "word": 14,       # destination word address
    "half": 1,        # 16-bit destination
    "lane": 1,        # which half
    "fmt": 3,         # destination format
    "color": COLOR_BITS,
    "dreg": 3,        # destination register
})

#: What the output FIFO keeps of a wavelet beside its data: colour and control bit.
_OutTag = data.StructLayout({"color": COLOR_BITS, "ctrl": 1})


class _Channel(data.Struct):
    """One operand channel's per-element selection, registered at issue (S0 -> S1)."""

    port: 3           # the source (S2): a read port, a buffer entry, a constant, ...
    carried: 32
    byte: 2           # byte offset of the element in its SRAM word
    fmt: 3


class VectorUnit(wiring.Component):
    """DSD vector engine of one PE.

    Parameters
    ----------
    sram_words : int
        SRAM depth in 32-bit words.
    num_colors : int
        Colours of the fabric-input queues and the output link.
    out_depth : int
        Entries of the fabric-output FIFO (data in block RAM, colours in LUT RAM), in
        wavelets: at least the credit loop, :attr:`depth` + 2 cycles, for one element per
        cycle into a free link.

    Members
    -------
    op : ``In(stream.Signature(VectorOp))``
        Instructions from the task engine (``ready`` is a register: no instruction waiting).
    sram : ``Out(SRAMPortSignature(sram_words))``
        The SRAM bank's datapath port.
    queue : ``Out(QueueReadSignature(num_colors))``
        A read port of the PE's input queues, used while :attr:`fabin_busy`; its ``color``
        and ``onehot`` come from registers.
    nonempty : ``In(num_colors)``
        The input queues' per-colour nonempty flags.
    fabin_busy : ``Out(1)``
        A waiting or issuing instruction reads the fabric (no task may take a wavelet).
    queue_own : ``Out(1)``
        The issuing instruction reads the fabric: the queue port is this unit's (a register
        term).
    ramp_out : ``Out(LinkSignature(num_colors))``
        Wavelets to the router (colour-aware: ``valid`` only for a colour whose
        ``color_ready`` is set; ``ready`` is not looked at).
    reg_we, reg_addr, reg_data
        Register write of a register destination, when its last element retires.
    reg_we_next : ``Out(1)``
        ``reg_we`` will be set in the next cycle.
    reg_busy : ``Out(8)``
        Registers a waiting or unfinished instruction will write (from registers).
    cancel : ``In(1)``
        Withdraw the instruction accepted in the previous cycle (the task engine found its
        bounds fault after handing it over); it has issued nothing yet.
    abort : ``In(1)``
        Drop the instructions, the elements in flight, the prefetched wavelets and the output
        FIFO.
    issued, mac : ``Out(1)``
        An element (a multiply-accumulate element) issued in the previous cycle (registered).
    idle : ``Out(1)``
        No instruction, no element in flight, output FIFO empty.

    Attributes
    ----------
    depth : int
        :data:`DEPTH`.
    """

    #: Cycles of the widening converter (W1, W2) and of the narrowing one (N1, N2).
    WIDEN_LATENCY = 2
    NARROW_LATENCY = 2
    #: Pipeline stages from S1 to write-back (18): an element issued in cycle ``t`` is written
    #: at the end of cycle ``t + DEPTH``.
    DEPTH = 2 + WIDEN_LATENCY + FMul.latency + FAdd.latency + NARROW_LATENCY

    def __init__(self, *, sram_words: int, num_colors: int, out_depth: int = 32):
        self.sram_words = sram_words
        self.num_colors = num_colors
        self.depth = self.DEPTH
        if out_depth < self.depth + 2:
            raise ValueError(f"out_depth must be at least {self.depth + 2}, not {out_depth}")
        self.out_depth = out_depth
        super().__init__({
            "op": In(stream.Signature(VectorOp)),
            "sram": Out(SRAMPortSignature(sram_words)),
            "queue": Out(QueueReadSignature(num_colors)),
            "nonempty": In(num_colors),
            "fabin_busy": Out(1),
            "queue_own": Out(1),
            "ramp_out": Out(LinkSignature(num_colors)),
            "reg_we": Out(1),
            "reg_we_next": Out(1),
            "reg_addr": Out(3),
            "reg_data": Out(32),
            "reg_busy": Out(8),
            "cancel": In(1),
            "abort": In(1),
            "issued": Out(1),
            "mac": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        C, L = self.num_colors, self.depth
        abort = self.abort
        word_bits = max(1, (self.sram_words - 1).bit_length())

        # ---- waiting instruction -------------------------------------------------------------
        vq = Signal(VectorOp)
        vq_valid = Signal()
        m.d.comb += self.op.ready.eq(~vq_valid)
        vq_fab = Signal()  # it reads the fabric (decoded when accepted)
        vq_reg = vq.dst.kind == DsdKind.REG

        # ---- issuing instruction (decoded when loaded from vq) --------------------------------
        X = {  # per-instruction control, all registers
            name: Signal(shape, name=f"vx_{name}") for name, shape in {
                "valid": 1, "more": 1, "last": 1, "remaining": 16, "op": 6, "mac": 1,
                "fp": 1, "dmem": 1, "xmem": 1, "ymem": 1, "acc_mem": 1, "dreg": 1,
                "fabric": 1, "ctrl": 1, "xfab": 1, "yfab": 1, "dbase": 16, "dfmt": 3,
                "reads_a": 1, "reads_b": 1,
                # channel sources: x and y from their prefetch buffers, z from y's buffer
                # (FADD) or the accumulator (register FMAC/IMAC)
                "x_buf": 1, "y_buf": 1, "z_buf": 1, "z_acc": 1,
                "own": 1,  # valid and reads the fabric: the queue port is this unit's
                "x": _Channel, "y": _Channel, "z": _Channel,
            }.items()
        }
        # Address counters: read port A (src0, or an accumulating destination), read port B
        # (src1, or an accumulating destination) and the destination, in element units, with
        # the word address and the byte offset of the element beside them (registers).
        names = ("a", "b", "d")
        word = {n: Signal(word_bits, name=f"word_{n}") for n in names}
        byte = {n: Signal(2, name=f"byte_{n}") for n in names}
        shift = {n: Signal(2, name=f"shift_{n}") for n in names}
        stride = {n: Signal(signed(16), name=f"stride_{n}") for n in names}
        acc = Signal(32)  # accumulator of a register destination

        meta = [Signal(_Meta, name=f"meta_{i}") for i in range(L)]
        # Some element is in flight: a register equal to the OR of the stages' valid bits,
        # made from their previous state (set below, once the issue decision is defined), so
        # that the load decision does not start with an 18-input OR.
        pipe_busy = Signal()
        wb = meta[L - 1]

        # ---- fabric-input prefetch: two entries per source --------------------------------
        srcs = ("x", "y")
        # Elements no pop has covered yet: each wavelet serves `repeat` elements (a FABIN DSD's
        # period, at least 1), so a pop covers that many, and the head wavelet is consumed
        # after its last use.
        fetch = {n: Signal(16, name=f"fetch_{n}") for n in srcs}
        repeat = {n: Signal(10, name=f"repeat_{n}") for n in srcs}
        uses = {n: Signal(10, name=f"uses_{n}") for n in srcs}  # uses left of the head wavelet
        fetch_more = {n: Signal(name=f"fetch_more_{n}") for n in srcs}  # fetch > 0
        bufs = {n: [Signal(32, name=f"buf_{n}{i}") for i in range(2)] for n in srcs}
        count = {n: Signal(range(3), name=f"count_{n}") for n in srcs}
        head = {n: Signal(name=f"head_{n}") for n in srcs}
        col = {n: Signal(COLOR_BITS, name=f"col_{n}") for n in srcs}
        # The source fetched this cycle (a register: with two fabric sources it alternates),
        # and its colour, one-hot (decoded from a register). In the cycle an instruction is
        # loaded they follow the loaded instruction (x first), not the one leaving: its
        # operands' colours would name another colour's queue for the first fetch. The
        # registers are set below, once `load` is defined.
        sel_y = Signal()
        next_y = Signal()
        next_col = Signal(COLOR_BITS)
        port = self.queue
        want = Mux(sel_y, fetch_more["y"] & (count["y"] != 2),
                   fetch_more["x"] & (count["x"] != 2))
        has_wavelet = (self.nonempty & port.onehot).any()
        pop = Signal()
        m.d.comb += [pop.eq(want & has_wavelet), port.pop.eq(pop)]
        popped = {"x": pop & ~sel_y, "y": pop & sel_y}
        # ---- output FIFO and credits ------------------------------------------------------------
        # The data in block RAM, read through its output register, which is the head's data
        # register (read at a refill; the entry was written a cycle or more before, and the
        # pointers differ whenever both move, so a read never meets a write of its word); the
        # colours in LUT RAM, read combinationally, so the head's one-hot colour is decoded
        # before its register and ``valid`` is one AND-OR of flip-flops.
        Q = self.out_depth
        fifo = memory.Memory(shape=32, depth=Q, init=[], attrs=BLOCK_RAM)
        m.submodules.out_fifo = fifo
        colours = memory.Memory(shape=_OutTag, depth=Q, init=[])
        m.submodules.out_colors = colours
        fifo_w, color_w = fifo.write_port(), colours.write_port()
        color_r = colours.read_port(domain="comb")
        rptr = Signal(range(Q))
        refill = Signal()
        out_data = registered_read(m, fifo, addr=rptr, en=refill, name="out_data")
        wptr = Signal(range(Q))
        level = Signal(range(Q + 1))
        credits = Signal(range(Q + 1), init=Q)
        link = self.ramp_out
        # The head leaves from an output register that holds its colour one-hot: ``valid`` is
        # that colour's ``color_ready`` bit (registered at the receiver) and nothing else.
        out_valid = Signal()
        out_color = Signal(COLOR_BITS)
        out_ctrl = Signal()
        out_onehot = Signal(C)
        m.d.comb += [
            color_r.addr.eq(rptr),
            link.payload.data.eq(out_data),
            link.payload.color.eq(out_color),
            link.payload.ctrl.eq(out_ctrl),
        ]
        sent = Signal()
        m.d.comb += [sent.eq(out_valid & (out_onehot & link.color_ready).any()),
                     link.valid.eq(sent)]
        m.d.comb += refill.eq((level != 0) & (~out_valid | sent))
        with m.If(refill):
            m.d.sync += [
                out_valid.eq(1),
                out_color.eq(color_r.data.color),
                out_ctrl.eq(color_r.data.ctrl),
                out_onehot.eq(Cat(color_r.data.color == c for c in range(C))),
            ]
        with m.Elif(sent):
            m.d.sync += out_valid.eq(0)

        # ---- S0: issue ----------------------------------------------------------------------
        # RAW interlock: ``match[n][k]`` says that the element at stage k writes the word read
        # port n reads now. Registers: when the read address changes (an issue or a load) they
        # are the compares of the stages' words with the new address, made in the cycle before
        # as the stages shift; otherwise they shift with the stages. ``hit[n]`` (some stage
        # that writes SRAM matches) is a register too, the OR over the stages as they will be
        # after this cycle's shift, computed beside the matches and selected by the same
        # ``changed``; so the issue decision sees two flip-flops, and the loop from the issue
        # decision back to itself is the select alone.
        m.d.comb += [self.sram.rd_a_addr.eq(word["a"]), self.sram.rd_b_addr.eq(word["b"])]
        word_next = {n: Signal(word_bits, name=f"word_{n}_next") for n in names}
        changed = Signal()
        match = {n: [Signal(name=f"match_{n}_{k}") for k in range(L)] for n in "ab"}
        hit = {n: Signal(name=f"hit_{n}") for n in "ab"}
        can_issue = Signal()
        previous = [word["d"]] + [s.word[:word_bits] for s in meta[:-1]]
        for n in "ab":
            compare = [Signal(name=f"compare_{n}_{k}") for k in range(L)]
            m.d.comb += [compare[k].eq(previous[k] == word_next[n]) for k in range(L)]
            for k in range(L):
                m.d.sync += match[n][k].eq(Mux(changed, compare[k], match[n][k - 1] if k else 0))
            # stage k after the shift holds what stage k - 1 holds now (stage 0: the issue)
            on_change = Cat(meta[k - 1].wmem & compare[k] for k in range(1, L)).any()
            on_shift = Cat(meta[k - 1].wmem & match[n][k - 1] for k in range(1, L)).any()
            issue_writes = X["dmem"] & compare[0]
            m.d.sync += hit[n].eq(~abort & Mux(changed, on_change | (can_issue & issue_writes),
                                                on_shift))
        hazard = Signal()
        m.d.comb += hazard.eq((X["reads_a"] & hit["a"]) | (X["reads_b"] & hit["b"]))
        has_credit = Signal()
        m.d.comb += has_credit.eq(credits != 0)
        m.d.comb += can_issue.eq(
            X["valid"] & X["more"] & ~hazard
            & (~X["xfab"] | (count["x"] != 0)) & (~X["yfab"] | (count["y"] != 0))
            & (~X["fabric"] | has_credit) & (~X["dreg"] | ~pipe_busy))
        used = {"x": can_issue & X["xfab"], "y": can_issue & X["yfab"]}
        # (the instruction's last element consumes its wavelet whatever its uses left)
        consumed = {n: used[n] & ((uses[n] == 1) | X["last"]) for n in srcs}
        m.d.sync += pipe_busy.eq(~abort & (can_issue | Cat(s.valid for s in meta[:-1]).any()))
        m.d.sync += [self.issued.eq(can_issue & ~abort), self.mac.eq(can_issue & X["mac"] & ~abort)]

        # Prefetch buffers: a two-entry FIFO per source (a pop lands at the head when the
        # buffer is empty, else behind it).
        for n in srcs:
            pos = Mux(count[n] == 0, head[n], ~head[n])
            with m.If(popped[n]):
                m.d.sync += [
                    bufs[n][0].eq(Mux(pos, bufs[n][0], port.data)),
                    bufs[n][1].eq(Mux(pos, port.data, bufs[n][1])),
                    fetch[n].eq(fetch[n] - repeat[n]),
                    fetch_more[n].eq(fetch[n] > repeat[n]),
                ]
            with m.If(used[n]):
                m.d.sync += uses[n].eq(Mux(consumed[n], repeat[n], uses[n] - 1))
            with m.If(consumed[n]):
                m.d.sync += head[n].eq(~head[n])
            m.d.sync += count[n].eq(count[n] + popped[n] - consumed[n])

        last = X["last"]
        with m.If(can_issue):
            m.d.sync += [X["remaining"].eq(X["remaining"] - 1), X["more"].eq(~last),
                         X["last"].eq(X["remaining"] == 2)]

        # Credits: one per free FIFO entry not claimed by an element in flight.
        m.d.sync += credits.eq(credits - (can_issue & X["fabric"]) + sent)

        # ---- load vx from vq -------------------------------------------------------------------
        # vx is free the cycle after its last element issued (``more`` is a register, so the
        # load does not wait for this cycle's issue decision). A register-destination
        # instruction starts on an empty pipeline: its accumulator is the only one.
        load = Signal()
        m.d.comb += load.eq(vq_valid & ~self.cancel & (~X["valid"] | ~X["more"])
                            & (~vq_reg | (~pipe_busy & ~X["valid"])))
        with m.If(X["valid"] & ~X["more"]):
            m.d.sync += [X["valid"].eq(0), X["own"].eq(0)]
        vq_regs = Signal(8)  # the register a waiting register-destination instruction writes
        vq_first_y = Signal()  # its first fabric fetch is for src1 (decoded when accepted)
        vq_first_col = Signal(COLOR_BITS)  # and its colour
        new = self.op.payload
        new_xfab = new.src0.kind == DsdKind.FABIN
        new_yfab = (new.op != Op.MOV) & (new.src1.kind == DsdKind.FABIN)
        first_y = ~new_xfab & new_yfab  # its first fetch (x first), for the load cycle
        with m.If(self.op.valid & self.op.ready):
            m.d.sync += [
                vq.eq(new), vq_valid.eq(1),
                vq_fab.eq(new_xfab | new_yfab),
                vq_regs.eq(Mux(self.op.payload.dst.kind == DsdKind.REG,
                               1 << self.op.payload.dst.base[:3], 0)),
                vq_first_y.eq(first_y),
                vq_first_col.eq(Mux(first_y, new.src1.base, new.src0.base)),
            ]
        pending = Signal(8)  # registers a loaded register-destination instruction will write
        # The counters' first values, computed as the instruction is accepted: port A
        # follows src0 if it is in memory, else the destination; port B src1, else the
        # destination.
        init = {n: {"base": Signal(_EA_BITS, name=f"init_{n}_base"),
                    "period": Signal(10, name=f"init_{n}_period"),
                    "stride": Signal(signed(16), name=f"init_{n}_stride"),
                    "shift": Signal(2, name=f"init_{n}_shift"),
                    "word": Signal(word_bits, name=f"init_{n}_word"),
                    "byte": Signal(2, name=f"init_{n}_byte")} for n in names}
        with m.If(self.op.valid & self.op.ready):
            for n, (base, step, sh, period) in self._counter_init(new).items():
                m.d.sync += [init[n]["base"].eq(base), init[n]["stride"].eq(step),
                             init[n]["period"].eq(period),
                             init[n]["shift"].eq(sh), init[n]["word"].eq((base >> sh)[:word_bits]),
                             init[n]["byte"].eq(_byte_offset(base, sh))]
        with m.If(load):
            self._load(m, vq, X, acc, col, fetch, fetch_more, repeat, uses, pending)
            m.d.sync += vq_valid.eq(0)
        with m.If(self.cancel):  # (nothing is accepted then: vq was full)
            m.d.sync += vq_valid.eq(0)
        m.d.comb += [
            next_y.eq(Mux(load, vq_first_y, Mux(X["xfab"] & X["yfab"], ~sel_y, X["yfab"]))),
            next_col.eq(Mux(load, vq_first_col, Mux(next_y, col["y"], col["x"]))),
        ]
        m.d.sync += [
            sel_y.eq(next_y),
            port.color.eq(next_col),
            port.onehot.eq(Cat(next_col == c for c in range(C))),
        ]
        # The counters: the current word and byte offset, and the next element's (registers,
        # so that the next word is ready for the interlock's compares). A wrapping operand
        # (period P) returns to its first address after every P elements: ``left`` counts the
        # elements of the period from the current one, and the next address is the first
        # again when it is 1 (beside the adder, not after it on the interlock's path).
        m.d.comb += changed.eq(load | can_issue)
        for n in names:
            period = Signal(10, name=f"period_{n}")
            left = Signal(10, name=f"left_{n}")
            origin = Signal(_EA_BITS, name=f"origin_{n}")
            per = Mux(load, init[n]["period"], period)
            now_left = Mux(load, init[n]["period"], left)
            wraps = Signal(name=f"wraps_{n}")
            m.d.comb += wraps.eq(per.any() & (now_left == 1))
            first = Mux(load, init[n]["base"], origin)
            plus = {"ea": Signal(signed(_EA_BITS), name=f"ea_{n}_plus"),
                    "word": Signal(word_bits, name=f"word_{n}_plus"),
                    "byte": Signal(2, name=f"byte_{n}_plus")}
            value = Signal(signed(_EA_BITS), name=f"ea_{n}_value")
            step = Signal(signed(16), name=f"stride_{n}_value")
            sh = Signal(2, name=f"shift_{n}_value")
            m.d.comb += [
                value.eq(Mux(load, init[n]["base"], plus["ea"])),
                step.eq(Mux(load, init[n]["stride"], stride[n])),
                sh.eq(Mux(load, init[n]["shift"], shift[n])),
                # the word after the change (not depending on this cycle's issue decision)
                word_next[n].eq(Mux(load, init[n]["word"], plus["word"])),
            ]
            after = Signal(signed(_EA_BITS), name=f"ea_{n}_after")
            m.d.comb += after.eq(Mux(wraps, first, value + step))
            with m.If(changed):
                m.d.sync += [period.eq(per), origin.eq(first),
                             left.eq(Mux(wraps, per, now_left - 1))]
                m.d.sync += [
                    word[n].eq(word_next[n]),
                    byte[n].eq(Mux(load, init[n]["byte"], plus["byte"])),
                    plus["ea"].eq(after),
                    plus["word"].eq((after >> sh)[:word_bits]),
                    plus["byte"].eq(_byte_offset(after, sh)),
                    stride[n].eq(step),
                    shift[n].eq(sh),
                ]
        with m.If(wb.valid & wb.reg & wb.last):
            m.d.sync += pending.eq(0)
        m.d.comb += [
            self.reg_busy.eq(pending | Mux(vq_valid, vq_regs, 0)),
            self.fabin_busy.eq((vq_valid & vq_fab) | self.queue_own),
            self.queue_own.eq(X["own"]),
        ]

        # ---- S0 -> S1: what each channel takes, and the element's metadata --------------------
        # Each channel's value is chosen once, in S2, among the SRAM read data and the values
        # it may carry, captured here: the prefetch buffer's two entries, the accumulator, the
        # instruction's constant.
        SRC_PORT, SRC_B0, SRC_B1, SRC_CONST, SRC_ACC, SRC_PORT_B = range(6)
        sel = {
            "x": Mux(X["x"].port == 0, SRC_PORT,
                     Mux(X["x_buf"], Mux(head["x"], SRC_B1, SRC_B0), SRC_CONST)),
            "y": Mux(X["y"].port == 1, SRC_PORT,
                     Mux(X["y_buf"], Mux(head["y"], SRC_B1, SRC_B0), SRC_CONST)),
            "z": Mux(X["z"].port == 0, SRC_PORT, Mux(X["z"].port == 1, SRC_PORT_B,
                     Mux(X["z_acc"], SRC_ACC,
                         Mux(X["z_buf"], Mux(head["y"], SRC_B1, SRC_B0), SRC_CONST)))),
        }
        byte_of = {"x": byte["a"], "y": byte["b"], "z": Mux(X["z"].port == 0, byte["a"], byte["b"])}
        s1 = {n: Signal(_Channel, name=f"s1_{n}") for n in ("x", "y", "z")}
        held = {  # (name, value) captured at issue, per channel
            "x": [("b0", bufs["x"][0]), ("b1", bufs["x"][1]), ("const", X["x"].carried)],
            "y": [("b0", bufs["y"][0]), ("b1", bufs["y"][1]), ("const", X["y"].carried)],
            "z": [("b0", bufs["y"][0]), ("b1", bufs["y"][1]), ("const", X["z"].carried),
                  ("acc", acc)],
        }
        s1_held = {n: {k: Signal(32, name=f"s1_{n}_{k}") for k, _ in held[n]} for n in held}
        for n in ("x", "y", "z"):
            from_mem = X[n].port != 2
            m.d.sync += [
                s1[n].port.eq(sel[n]),
                s1[n].fmt.eq(X[n].fmt),
                s1[n].byte.eq(Mux(from_mem, byte_of[n], 0)),  # carried values are not lanes
            ]
            m.d.sync += [s1_held[n][k].eq(v) for k, v in held[n]]
        half = (X["dfmt"] == Format.BF16) | (X["dfmt"] == Format.FP16)
        m.d.sync += [
            meta[0].valid.eq(can_issue & ~abort),
            meta[0].op.eq(X["op"]),
            meta[0].wmem.eq(can_issue & X["dmem"] & ~abort),
            meta[0].fabric.eq(X["fabric"]),
            meta[0].ctrl.eq(X["ctrl"]),
            meta[0].reg.eq(X["dreg"]),
            meta[0].last.eq(last),
            meta[0].fp.eq(X["fp"]),
            meta[0].word.eq(word["d"]),
            meta[0].half.eq(half & X["dmem"]),
            meta[0].lane.eq(byte["d"][1]),
            meta[0].fmt.eq(X["dfmt"]),
            meta[0].color.eq(X["dbase"][:COLOR_BITS]),
            meta[0].dreg.eq(X["dbase"][:3]),
        ]
        for i in range(1, L):
            m.d.sync += meta[i].eq(meta[i - 1])
            with m.If(abort):
                m.d.sync += [meta[i].valid.eq(0), meta[i].wmem.eq(0)]

        # ---- S1: the block RAMs' read data, registered (their clock-to-out is long) --------
        rd = (Signal(32, name="rd_a"), Signal(32, name="rd_b"))
        m.d.sync += [rd[0].eq(self.sram.rd_a_data), rd[1].eq(self.sram.rd_b_data)]
        s2 = {n: Signal(_Channel, name=f"s2_{n}") for n in ("x", "y", "z")}
        m.d.sync += [s2[n].eq(s1[n]) for n in s2]
        s2_held = {n: {k: Signal(32, name=f"s2_{n}_{k}") for k in v} for n, v in s1_held.items()}
        m.d.sync += [s2_held[n][k].eq(s1_held[n][k]) for n in s1_held for k in s1_held[n]]

        # ---- S2: the channel's value, lane select ---------------------------------------------
        def lanes(word, byte):  # the element at byte offset ``byte``, in the low bits
            return Cat(word.word_select(byte, 8), Mux(byte[1], word[24:32], word[8:16]),
                       word[16:32])

        elems = {}
        for n in ("x", "y", "z"):
            ch, h = s2[n], s2_held[n]
            sources = {SRC_PORT: lanes(rd[0 if n != "y" else 1], ch.byte), SRC_B0: h["b0"],
                       SRC_B1: h["b1"], SRC_CONST: h["const"]}
            if n == "z":
                sources.update({SRC_PORT_B: lanes(rd[1], ch.byte), SRC_ACC: h["acc"]})
            elem = Signal(32, name=f"elem_{n}")
            with m.Switch(ch.port):
                for code, value in sources.items():
                    with m.Case(code):
                        m.d.sync += elem.eq(value)
            fmt = Signal(3, name=f"elem_{n}_fmt")
            m.d.sync += fmt.eq(ch.fmt)
            elems[n] = (elem, fmt)

        # ---- W1, W2: widen ---------------------------------------------------------------------
        wide = {}
        for n, (elem, fmt) in elems.items():
            w = Signal(32, name=f"wide_{n}")
            m.d.sync += w.eq(widen_dynamic(m, elem, fmt, domain="sync", name=f"widen_{n}"))
            wide[n] = w

        # ---- M, A: floating point ------------------------------------------------------------
        m.submodules.fmul = fmul = FMul()
        m.submodules.fadd = fadd = FAdd()
        m.d.comb += [fmul.a.eq(wide["x"]), fmul.b.eq(wide["y"])]
        z_delayed = wide["z"]
        for i in range(FMul.latency):
            nxt = Signal(32, name=f"addend_{i}")
            m.d.sync += nxt.eq(z_delayed)
            z_delayed = nxt
        m.d.comb += [fadd.a.eq(fmul.result), fadd.b.eq(z_delayed)]

        # ---- beside them: integer ops, FMAX, MOV -----------------------------------------------
        side = self._side(m, wide, meta)
        side_delayed = side
        for i in range(FMul.latency + FAdd.latency - 3):
            nxt = Signal(32, name=f"side_{i}")
            m.d.sync += nxt.eq(side_delayed)
            side_delayed = nxt

        # ---- N1, N2: narrow; write-back -------------------------------------------------------
        n1 = meta[L - self.NARROW_LATENCY]  # the stage that sees the FAdd result
        result = Signal(32)
        m.d.comb += result.eq(Mux(n1.fp, fadd.result, side_delayed))
        result_wb = Signal(32)  # the unnarrowed result at write-back (register destinations)
        m.d.sync += result_wb.eq(result)
        stored = narrow_dynamic(m, result, n1.fmt, domain="sync", name="narrow")
        m.d.comb += [
            self.sram.wr_addr.eq(wb.word[:word_bits]),
            self.sram.wr_data.eq(Mux(wb.half, Cat(stored[:16], stored[:16]), stored)),
            self.sram.wr_en.eq(Mux(wb.valid & wb.wmem,
                                   Mux(wb.half, Mux(wb.lane, 0b1100, 0b0011), 0b1111), 0)),
            fifo_w.addr.eq(wptr), fifo_w.data.eq(stored), fifo_w.en.eq(wb.valid & wb.fabric),
            color_w.addr.eq(wptr), color_w.data.color.eq(wb.color),
            color_w.data.ctrl.eq(wb.ctrl), color_w.en.eq(wb.valid & wb.fabric),
        ]
        pushed = wb.valid & wb.fabric
        m.d.sync += [
            wptr.eq(Mux(pushed, Mux(wptr == Q - 1, 0, wptr + 1), wptr)),
            rptr.eq(Mux(refill, Mux(rptr == Q - 1, 0, rptr + 1), rptr)),
            level.eq(level + pushed - refill),
        ]
        with m.If(wb.valid & wb.reg):
            m.d.sync += acc.eq(result_wb)
        before = meta[L - 2]
        m.d.comb += [
            self.reg_we_next.eq(before.valid & before.reg & before.last),
            self.reg_we.eq(wb.valid & wb.reg & wb.last),
            self.reg_addr.eq(wb.dreg),
            self.reg_data.eq(result_wb),
        ]

        # ---- abort ---------------------------------------------------------------------------
        with m.If(abort):
            m.d.sync += [
                vq_valid.eq(0), X["valid"].eq(0), X["own"].eq(0), meta[0].valid.eq(0),
                meta[0].wmem.eq(0),
                pending.eq(0),
                wptr.eq(0), rptr.eq(0), level.eq(0), credits.eq(Q), out_valid.eq(0),
                count["x"].eq(0), count["y"].eq(0), head["x"].eq(0), head["y"].eq(0),
                fetch_more["x"].eq(0), fetch_more["y"].eq(0),
            ]

        m.d.comb += self.idle.eq(~vq_valid & ~X["valid"] & ~pipe_busy & (level == 0)
                                 & ~out_valid)
        return m

    @staticmethod
    def _counter_init(op):
        """First (element address, stride, element shift, wrap period) of the three address
        counters for the instruction ``op`` (a :class:`VectorOp` view)."""
        two = op.op != Op.MOV
        mem = {n: o.kind == DsdKind.MEM for n, o in (("d", op.dst), ("x", op.src0),
                                                      ("y", op.src1))}
        out = {}
        for n, o, use in (("a", op.src0, mem["x"]), ("b", op.src1, two & mem["y"]),
                          ("d", op.dst, None)):
            base = o.base if use is None else Mux(use, o.base, op.dst.base)
            step = o.stride if use is None else Mux(use, o.stride, op.dst.stride)
            fmt = o.fmt if use is None else Mux(use, o.fmt, op.dst.fmt)
            period = o.period if use is None else Mux(use, o.period, op.dst.period)
            is_mem = mem["d"] if use is None else (use | mem["d"])
            out[n] = (base.as_unsigned(), step, Mux(is_mem, element_shift(fmt), 0),
                      Mux(is_mem, period, 0))
        return out

    @staticmethod
    def _load(m, vq, X, acc, col, fetch, fetch_more, repeat, uses, pending):
        """Decode the waiting instruction into the issuing one's registers."""
        op = vq.op
        two = op != Op.MOV
        is_fadd = op == Op.FADD
        accumulate = (op == Op.FMAC) | (op == Op.IMAC)
        ops = {"d": vq.dst, "x": vq.src0, "y": vq.src1}
        mem = {n: o.kind == DsdKind.MEM for n, o in ops.items()}
        ymem = two & mem["y"]
        xfab = vq.src0.kind == DsdKind.FABIN
        yfab = two & (vq.src1.kind == DsdKind.FABIN)
        dreg = vq.dst.kind == DsdKind.REG
        acc_mem = accumulate & mem["d"]
        src1_carried = vq.src1.value  # a register source (fabric sources come from the buffer)
        m.d.sync += [
            X["valid"].eq(1),
            X["remaining"].eq(vq.length),
            X["more"].eq(vq.length != 0),
            X["last"].eq(vq.length == 1),
            X["op"].eq(op),
            X["mac"].eq(accumulate),
            X["fp"].eq((op == Op.FADD) | (op == Op.FMUL) | (op == Op.FMAC)),
            X["dmem"].eq(mem["d"]),
            X["xmem"].eq(mem["x"]),
            X["ymem"].eq(ymem),
            X["acc_mem"].eq(acc_mem),
            X["reads_a"].eq(mem["x"] | acc_mem),
            X["reads_b"].eq(ymem | (acc_mem & mem["x"])),
            X["dreg"].eq(dreg),
            X["fabric"].eq(vq.dst.kind == DsdKind.FABOUT),
            X["ctrl"].eq(vq.dst.ctrl),
            X["xfab"].eq(xfab),
            X["yfab"].eq(yfab),
            X["own"].eq(xfab | yfab),
            X["dbase"].eq(vq.dst.base),
            X["dfmt"].eq(vq.dst.fmt),
            X["x_buf"].eq(xfab),
            X["y_buf"].eq(yfab & ~is_fadd),
            X["z_buf"].eq(yfab & is_fadd),
            X["z_acc"].eq(accumulate & dreg),
            acc.eq(vq.dst.value),
            # x: src0 from port A or carried.
            X["x"].port.eq(Mux(mem["x"], 0, 2)),
            X["x"].carried.eq(vq.src0.value),
            X["x"].fmt.eq(vq.src0.fmt),
            # y: src1 from port B or carried; 1.0 for FADD.
            X["y"].port.eq(Mux(ymem & ~is_fadd, 1, 2)),
            X["y"].carried.eq(Mux(is_fadd, _ONE, src1_carried)),
            X["y"].fmt.eq(Mux(is_fadd, Format.FP32, vq.src1.fmt)),
            # z: FADD's src1 (port B or carried), an accumulating memory destination (the
            # port src0 leaves free), the register accumulator, or -0 (FMUL).
            X["z"].port.eq(Mux(is_fadd, Mux(ymem, 1, 2), Mux(acc_mem, Mux(mem["x"], 1, 0), 2))),
            X["z"].carried.eq(Mux(is_fadd, src1_carried, _NEG_ZERO)),
            X["z"].fmt.eq(Mux(is_fadd, vq.src1.fmt, Mux(acc_mem, vq.dst.fmt, Format.FP32))),
        ]
        for n in ("x", "y"):
            o = ops[n]
            is_fab = xfab if n == "x" else yfab
            times = Mux(o.period.any(), o.period, 1)
            m.d.sync += [
                col[n].eq(o.base[:len(col[n])]),
                fetch[n].eq(vq.length),
                fetch_more[n].eq(is_fab & (vq.length != 0)),
                repeat[n].eq(times),
                uses[n].eq(times),
            ]
        with m.If(dreg & (vq.length != 0)):
            m.d.sync += pending.eq(1 << vq.dst.base[:3])

    @staticmethod
    def _side(m, wide, meta):
        """The non-FPU results (MOV, IADD, IMUL, IMAC, IMAX, FMAX) of the widened operands,
        registered three stages later; the low 32 bits of the integer product come from three
        16 x 16-bit products (one DSP block each) added in the second stage."""
        x, y, z = wide["x"], wide["y"], wide["z"]
        first = 2 + VectorUnit.WIDEN_LATENCY  # the stage of the widened operands
        op = [meta[first + i].op for i in range(3)]  # the op at each of the three stages

        # Stage 1: sum, magnitude compare, partial products.
        p1 = {k: Signal(32, name=f"side1_{k}") for k in ("x", "y", "z", "sum", "ll")}
        p1.update({k: Signal(16, name=f"side1_{k}") for k in ("lh", "hl")})
        p1["ge"] = Signal(name="side1_ge")
        p1["nan"] = Signal(name="side1_nan")
        nan_x = x[23:31].all() & x[:23].any()
        nan_y = y[23:31].all() & y[:23].any()
        m.d.sync += [
            p1["x"].eq(x), p1["y"].eq(y), p1["z"].eq(z),
            p1["sum"].eq(x + y),
            p1["ge"].eq(x[:31] >= y[:31]),
            p1["nan"].eq(nan_x | nan_y),
            p1["ll"].eq(x[:16] * y[:16]),
            p1["lh"].eq((x[:16] * y[16:])[:16]),
            p1["hl"].eq((x[16:] * y[:16])[:16]),
        ]

        # Stage 2: max (signed int32 or float, one compare), product, MOV/IADD/max choice.
        # Signs differ: the non-negative one is larger (+0 > -0 for FMAX). Same sign: the
        # larger magnitude, except for two negative floats.
        sx, sy = p1["x"][31], p1["y"][31]
        fmax = op[1] == Op.FMAX
        take_x = Mux(sx != sy, ~sx, Mux(fmax & sx, ~p1["ge"], p1["ge"]))
        larger = Mux(take_x, p1["x"], p1["y"])
        p2 = {k: Signal(32, name=f"side2_{k}") for k in ("z", "prod", "pick")}
        m.d.sync += [
            p2["z"].eq(p1["z"]),
            p2["prod"].eq(p1["ll"] + Cat(Const(0, 16), p1["lh"] + p1["hl"])),
            p2["pick"].eq(Mux(op[1] == Op.MOV, p1["x"],
                              Mux(op[1] == Op.IADD, p1["sum"],
                                  Mux(fmax & p1["nan"], _CANONICAL_NAN, larger)))),
        ]

        # Stage 3: multiply-accumulate and the final choice.
        side = Signal(32, name="side3")
        m.d.sync += side.eq(Mux(op[2] == Op.IMUL, p2["prod"],
                                Mux(op[2] == Op.IMAC, p2["prod"] + p2["z"], p2["pick"])))
        return side
