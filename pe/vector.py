"""The PE's DSD vector engine: one element per cycle through a fixed-latency pipeline.

The task engine (:mod:`pe.pe`) resolves a vector instruction's three DSDs and any register
operands into a :class:`VectorOp` and hands it over on the ``op`` stream. This unit keeps one
waiting instruction (``vq``) and one issuing instruction (``vx``), so the task engine runs ahead
by one vector instruction and back-to-back instructions issue without a bubble.

Pipeline, one element entering per cycle::

    S0 issue      element addresses, hazard check, fabric-input pop, SRAM read
    S1 read       SRAM data arrives; lanes extracted; operands widened to binary32 / int32
    S2 .. S2+Lm   FMul (Lm = FMul.latency); integer and FMAX results computed on the side
    .. +La        FAdd (La = FAdd.latency)
    WB            result narrowed to the destination format; SRAM write, fabric output or
                  register accumulator

Every floating-point operation uses the FMul -> FAdd chain: ``FADD`` is ``a*1 + b`` and
``FMUL`` is ``a*b + (-0)``, both exact rewrites in IEEE arithmetic, so one pipeline serves all.

The element issue stalls (never a later stage) for: a read of an SRAM word that an in-flight
element will write (RAW interlock); an empty fabric-input queue; no room in the output FIFO
for the element (credits count in-flight elements); a register destination (accumulator) whose
previous element has not retired. Operands are checked (rules, SRAM bounds) by the task engine
before an instruction is handed over, so every element issued is legal.
"""


from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.formats import Format, narrow_dynamic, widen_dynamic
from hdl.wavelet import LinkSignature
from pe.fpu import FAdd, FMul
from pe.isa import DsdKind, Op

__all__ = ["Operand", "VectorOp", "VectorUnit", "lane_shift"]

_ONE = 0x3F800000
_NEG_ZERO = 0x80000000
_CANONICAL_NAN = 0x7FC00000
#: Element address width: wide enough that base + i * stride never wraps (16 + 16 + 16 bits).
_EA_BITS = 34


class Operand(data.Struct):
    """A resolved DSD operand (what :class:`pe.isa` DSD words decode to, plus a register value).

    Members
    -------
    kind : 2 bits, :class:`pe.isa.DsdKind`
    fmt : 3 bits, :class:`hdl.formats.Format`
    base : 16 bits
        Element address (MEM), colour (FABIN/FABOUT) or register number (REG).
    stride : signed 16 bits
        Element stride (MEM).
    value : 32 bits
        Register value captured when the instruction was accepted (REG sources; for a REG
        destination, the accumulator's initial value).
    """

    kind: unsigned(2)
    fmt: unsigned(3)
    base: unsigned(16)
    stride: signed(16)
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


def lane_shift(fmt):
    """log2(elements per word) of a format code: 0 (32-bit), 1 (16-bit) or 2 (8-bit)."""
    return Mux((fmt == Format.BF16) | (fmt == Format.FP16) | (fmt == Format.INT16), 1,
               Mux((fmt == Format.E4M3) | (fmt == Format.E5M2) | (fmt == Format.INT8), 2, 0))


class VectorUnit(wiring.Component):
    """DSD vector engine of one PE.

    Parameters
    ----------
    sram_words : int
        SRAM depth in 32-bit words.
    num_colors : int
        Colours of the fabric-input queues and the output link.
    out_depth : int
        Depth of the fabric-output FIFO in wavelets (at least the pipeline depth + 2 for one
        element per cycle into a free-flowing link).

    Members
    -------
    op : ``In(stream.Signature(VectorOp))``
        Instructions from the task engine.
    rd_a_addr, rd_b_addr, rd_a_data, rd_b_data, wr_addr, wr_data, wr_en
        SRAM ports (see :class:`hdl.sram.SRAMBank`).
    in_valid : ``In(num_colors)``
        Fabric-input queue of colour ``c`` holds a wavelet.
    in_data : ``In(ArrayLayout(32, num_colors))``
        Head of each fabric-input queue.
    in_pop : ``Out(num_colors)``
        Pop the head of queue ``c``.
    ramp_out : ``Out(LinkSignature(num_colors))``
        Wavelets to the router.
    reg_we, reg_addr, reg_data
        Register write of a register destination, when its last element retires.
    reg_busy : ``Out(8)``
        Registers an accepted instruction will write (the task engine must not touch them).
    abort : ``In(1)``
        Drop the waiting and issuing instructions, the elements in flight and the output FIFO.
    issued, mac : ``Out(1)``
        An element (a multiply-accumulate element) issued this cycle.
    idle : ``Out(1)``
        No instruction, no element in flight, output FIFO empty.
    """

    def __init__(self, *, sram_words: int, num_colors: int, out_depth: int = 16):
        self.sram_words = sram_words
        self.num_colors = num_colors
        self.depth = 2 + FMul.latency + FAdd.latency  # S1 .. WB, in-flight stages
        if out_depth < self.depth + 2:
            raise ValueError(f"out_depth must be at least {self.depth + 2}, not {out_depth}")
        self.out_depth = out_depth
        super().__init__({
            "op": In(stream.Signature(VectorOp)),
            "rd_a_addr": Out(range(sram_words)),
            "rd_a_data": In(32),
            "rd_b_addr": Out(range(sram_words)),
            "rd_b_data": In(32),
            "wr_addr": Out(range(sram_words)),
            "wr_data": Out(32),
            "wr_en": Out(4),
            "in_valid": In(num_colors),
            "in_data": In(data.ArrayLayout(32, num_colors)),
            "in_pop": Out(num_colors),
            "ramp_out": Out(LinkSignature(num_colors)),
            "reg_we": Out(1),
            "reg_addr": Out(3),
            "reg_data": Out(32),
            "reg_busy": Out(8),
            "abort": In(1),
            "issued": Out(1),
            "mac": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        C = self.num_colors
        L = self.depth
        Lm, La = FMul.latency, FAdd.latency

        # ---- instruction registers ---------------------------------------------------------
        vq = Signal(VectorOp)
        vq_valid = Signal()
        vx = Signal(VectorOp)
        vx_valid = Signal()
        remaining = Signal(16)
        ea = [Signal(signed(_EA_BITS), name=f"ea_{n}") for n in ("dst", "src0", "src1")]
        acc = Signal(32)  # accumulator of a register destination

        # ---- pipeline metadata: index 0 = S1 ... L-1 = WB ---------------------------------
        meta_layout = data.StructLayout({
            "valid": 1,
            "op": 6,
            "dst_kind": 2,
            "dst_fmt": 3,
            "dst_word": range(self.sram_words),
            "dst_lane": 2,
            "dst_base": 16,
            "writes_mem": 1,
            "to_fabric": 1,
            "to_reg": 1,
            "last": 1,
        })
        meta = [Signal(meta_layout, name=f"meta_{i}") for i in range(L)]
        pipe_busy = Cat(s.valid for s in meta).any()
        fabric_inflight = Signal(range(L + 1))
        m.d.comb += fabric_inflight.eq(sum((s.valid & s.to_fabric).as_unsigned() for s in meta))

        # ---- output FIFO -------------------------------------------------------------------
        out_fifo = fifo.SyncFIFO(width=37, depth=self.out_depth)
        m.submodules.out_fifo = ResetInserter(self.abort)(out_fifo)  # abort flushes it
        head_color = out_fifo.r_data[32:37]
        color_ok = Mux(head_color < C, self.ramp_out.color_ready.bit_select(head_color, 1), 1)
        m.d.comb += [
            self.ramp_out.payload.data.eq(out_fifo.r_data[:32]),
            self.ramp_out.payload.color.eq(head_color),
            self.ramp_out.payload.ctrl.eq(0),
            self.ramp_out.valid.eq(out_fifo.r_rdy & color_ok),
            out_fifo.r_en.eq(self.ramp_out.valid & self.ramp_out.ready),
        ]

        # ---- S0: element issue -------------------------------------------------------------
        op = vx.op
        two_src = op != Op.MOV
        accumulate = (op == Op.FMAC) | (op == Op.IMAC)
        operands = [vx.dst, vx.src0, vx.src1]
        used = [Const(1), Const(1), two_src]
        is_mem = [used[i] & (operands[i].kind == DsdKind.MEM) for i in range(3)]
        shifts = [lane_shift(o.fmt) for o in operands]
        words = []
        lanes = []
        for i in range(3):
            word = Signal(signed(_EA_BITS), name=f"word_{i}")
            m.d.comb += word.eq(ea[i] >> shifts[i])
            words.append(word)
            lane = Signal(2, name=f"lane_{i}")
            m.d.comb += lane.eq(Mux(shifts[i] == 2, ea[i][:2], Mux(shifts[i] == 1, ea[i][0], 0)))
            lanes.append(lane)

        # Reads: src0, src1, and the destination of an accumulating op; at most two are memory.
        reads_mem = [is_mem[1], is_mem[2], is_mem[0] & accumulate]  # order: src0, src1, dst
        read_words = [words[1], words[2], words[0]]
        # Port assignment: the first memory read uses port A, the second port B.
        use_a = [Signal(name=f"use_a_{i}") for i in range(3)]
        use_b = [Signal(name=f"use_b_{i}") for i in range(3)]
        m.d.comb += [
            use_a[0].eq(reads_mem[0]),
            use_b[0].eq(0),
            use_a[1].eq(reads_mem[1] & ~reads_mem[0]),
            use_b[1].eq(reads_mem[1] & reads_mem[0]),
            use_a[2].eq(reads_mem[2] & ~reads_mem[0] & ~reads_mem[1]),
            use_b[2].eq(reads_mem[2] & (reads_mem[0] | reads_mem[1])),
        ]
        addr_a = Signal(range(self.sram_words))
        addr_b = Signal(range(self.sram_words))
        for i in range(3):
            with m.If(use_a[i]):
                m.d.comb += addr_a.eq(read_words[i])
            with m.If(use_b[i]):
                m.d.comb += addr_b.eq(read_words[i])

        # RAW interlock against every in-flight memory write.
        hazard = Signal()
        conflicts = []
        for s in meta:
            for i in range(3):
                conflicts.append(s.valid & s.writes_mem & reads_mem[i]
                                 & (s.dst_word == read_words[i][:len(s.dst_word)]))
        m.d.comb += hazard.eq(Cat(conflicts).any())

        # Fabric inputs.
        fab_src = [used[i] & (operands[i].kind == DsdKind.FABIN) for i in (1, 2)]
        fab_color = [operands[i].base[:5] for i in (1, 2)]
        in_valid_arr = self.in_valid
        fab_ready = Cat(
            ~fab_src[j] | Mux(fab_color[j] < C, in_valid_arr.bit_select(fab_color[j], 1), 0)
            for j in range(2)).all()
        # Fabric output credit.
        to_fabric = vx.dst.kind == DsdKind.FABOUT
        out_room = (out_fifo.level + fabric_inflight) < self.out_depth
        to_reg = vx.dst.kind == DsdKind.REG

        active = vx_valid & (remaining != 0)
        can_issue = Signal()
        m.d.comb += can_issue.eq(
            active & ~hazard & fab_ready & (~to_fabric | out_room)
            & (~to_reg | ~pipe_busy) & ~self.abort
        )
        m.d.comb += [
            self.issued.eq(can_issue),
            self.mac.eq(can_issue & accumulate),
            self.rd_a_addr.eq(addr_a),
            self.rd_b_addr.eq(addr_b),
        ]
        pops = []
        for c in range(C):
            pops.append(can_issue & Cat(fab_src[j] & (fab_color[j] == c) for j in range(2)).any())
        m.d.comb += self.in_pop.eq(Cat(pops))
        fab_data = [self.in_data[fab_color[j]] for j in range(2)]

        last = remaining == 1
        finishing = (vx_valid & (remaining == 0)) | (can_issue & last)
        with m.If(can_issue):
            m.d.sync += remaining.eq(remaining - 1)
            for i in range(3):
                m.d.sync += ea[i].eq(ea[i] + operands[i].stride)

        # Load vx from vq. A register-destination instruction starts only on an empty pipeline.
        vx_free = ~vx_valid | finishing
        load = vq_valid & vx_free & ((vq.dst.kind != DsdKind.REG) | (~pipe_busy & ~vx_valid))
        with m.If(finishing):
            m.d.sync += vx_valid.eq(0)
        with m.If(load):
            m.d.sync += [
                vx.eq(vq), vx_valid.eq(1), vq_valid.eq(0),
                remaining.eq(vq.length),
                acc.eq(vq.dst.value),
            ]
            for i, o in enumerate([vq.dst, vq.src0, vq.src1]):
                m.d.sync += ea[i].eq(o.base)
        # Accept into vq (also in the cycle vq moves on to vx).
        m.d.comb += self.op.ready.eq(~vq_valid | load)
        with m.If(self.op.valid & self.op.ready):
            m.d.sync += [vq.eq(self.op.payload), vq_valid.eq(1)]
        with m.If(self.abort):
            m.d.sync += [vx_valid.eq(0), vq_valid.eq(0)]

        # ---- S0 -> S1 side data ------------------------------------------------------------
        # What each of x (src0), y (src1), z (accumulator / dst read) comes from at S1.
        s1 = Signal(data.StructLayout({
            "x_sel": 2, "y_sel": 2, "z_sel": 2,      # 0 port A, 1 port B, 2 carried value
            "x_val": 32, "y_val": 32, "z_val": 32,
            "x_lane": 2, "y_lane": 2, "z_lane": 2,
            "x_fmt": 3, "y_fmt": 3, "z_fmt": 3,
        }))

        def carried(j):  # value of a non-memory source operand j (1 = src0, 2 = src1)
            o = operands[j]
            return Mux(o.kind == DsdKind.FABIN, fab_data[j - 1], o.value)

        with m.If(can_issue):
            m.d.sync += [
                s1.x_sel.eq(Mux(use_a[0], 0, Mux(use_b[0], 1, 2))),
                s1.y_sel.eq(Mux(use_a[1], 0, Mux(use_b[1], 1, 2))),
                s1.z_sel.eq(Mux(use_a[2], 0, Mux(use_b[2], 1, 2))),
                s1.x_val.eq(carried(1)),
                s1.y_val.eq(carried(2)),
                s1.z_val.eq(acc),
                s1.x_lane.eq(lanes[1]), s1.y_lane.eq(lanes[2]), s1.z_lane.eq(lanes[0]),
                s1.x_fmt.eq(vx.src0.fmt), s1.y_fmt.eq(vx.src1.fmt),
                s1.z_fmt.eq(Mux(vx.dst.kind == DsdKind.REG, Format.FP32, vx.dst.fmt)),
            ]
        # Pipeline metadata shift.
        m.d.sync += [
            meta[0].valid.eq(can_issue),
            meta[0].op.eq(op),
            meta[0].dst_kind.eq(vx.dst.kind),
            meta[0].dst_fmt.eq(vx.dst.fmt),
            meta[0].dst_word.eq(words[0]),
            meta[0].dst_lane.eq(lanes[0]),
            meta[0].dst_base.eq(vx.dst.base),
            meta[0].writes_mem.eq(is_mem[0]),
            meta[0].to_fabric.eq(to_fabric),
            meta[0].to_reg.eq(to_reg),
            meta[0].last.eq(last),
        ]
        for i in range(1, L):
            m.d.sync += meta[i].eq(meta[i - 1])
        with m.If(self.abort):
            m.d.sync += [s.valid.eq(0) for s in meta]

        # ---- S1: operand fetch and widening ------------------------------------------------
        def operand(sel, val, lane, fmt, name):
            raw_word = Mux(sel == 0, self.rd_a_data, Mux(sel == 1, self.rd_b_data, val))
            shift = lane_shift(fmt)
            lane_bits = Signal(32, name=f"{name}_raw")
            with m.Switch(shift):
                with m.Case(1):
                    m.d.comb += lane_bits.eq(raw_word.word_select(lane[0], 16))
                with m.Case(2):
                    m.d.comb += lane_bits.eq(raw_word.word_select(lane, 8))
                with m.Default():
                    m.d.comb += lane_bits.eq(raw_word)
            # Carried values (fabric, registers) are never lane-shifted.
            bits = Mux(sel == 2, val, lane_bits)
            return widen_dynamic(m, bits, fmt)

        x1 = operand(s1.x_sel, s1.x_val, s1.x_lane, s1.x_fmt, "x")
        y1 = operand(s1.y_sel, s1.y_val, s1.y_lane, s1.y_fmt, "y")
        z1 = operand(s1.z_sel, s1.z_val, s1.z_lane, s1.z_fmt, "z")
        x = Signal(32)
        y = Signal(32)
        z = Signal(32)
        m.d.sync += [x.eq(x1), y.eq(y1), z.eq(z1)]
        # The accumulator of a register destination is the previous element's result.
        s2 = meta[1]

        # ---- S2: arithmetic ----------------------------------------------------------------
        m.submodules.fmul = fmul = FMul()
        m.submodules.fadd = fadd = FAdd()
        s2_op = s2.op
        m.d.comb += [
            fmul.a.eq(x),
            fmul.b.eq(Mux(s2_op == Op.FADD, _ONE, y)),
        ]
        addend = Mux(s2_op == Op.FADD, y, Mux(s2_op == Op.FMAC, z, _NEG_ZERO))
        addend_d = addend
        for i in range(Lm):
            nxt = Signal(32, name=f"addend_{i}")
            m.d.sync += nxt.eq(addend_d)
            addend_d = nxt
        m.d.comb += [fadd.a.eq(fmul.result), fadd.b.eq(addend_d)]

        # Side results: integer ops (IADD, IMUL, IMAC, IMAX), FMAX, MOV.
        xs, ys = x.as_signed(), y.as_signed()
        product = Signal(32)
        m.d.comb += product.eq((xs * ys)[:32])
        x_nan = (x[23:31] == 0xFF) & (x[:23] != 0)
        y_nan = (y[23:31] == 0xFF) & (y[:23] != 0)
        x_key = Mux(x[31], ~x, x | 0x8000_0000)
        y_key = Mux(y[31], ~y, y | 0x8000_0000)
        fmax = Mux(x_nan | y_nan, _CANONICAL_NAN, Mux(x_key >= y_key, x, y))
        side = Signal(32)
        with m.Switch(s2_op):
            with m.Case(Op.IADD):
                m.d.comb += side.eq(x + y)
            with m.Case(Op.IMUL):
                m.d.comb += side.eq(product)
            with m.Case(Op.IMAC):
                m.d.comb += side.eq(product + z)
            with m.Case(Op.FMAX):
                m.d.comb += side.eq(fmax)
            with m.Case(Op.IMAX):
                m.d.comb += side.eq(Mux(xs >= ys, x, y))
            with m.Default():
                m.d.comb += side.eq(x)  # MOV
        side_d = side
        for i in range(Lm + La):
            nxt = Signal(32, name=f"side_{i}")
            m.d.sync += nxt.eq(side_d)
            side_d = nxt

        # ---- WB ----------------------------------------------------------------------------
        wb = meta[L - 1]
        fp_op = (wb.op == Op.FADD) | (wb.op == Op.FMUL) | (wb.op == Op.FMAC)
        result = Signal(32)
        m.d.comb += result.eq(Mux(fp_op, fadd.result, side_d))
        stored = narrow_dynamic(m, result, wb.dst_fmt)
        half = (wb.dst_fmt == Format.BF16) | (wb.dst_fmt == Format.FP16)
        m.d.comb += [
            self.wr_addr.eq(wb.dst_word),
            self.wr_data.eq(Mux(half, Cat(stored[:16], stored[:16]), stored)),
        ]
        with m.If(wb.valid & wb.writes_mem):
            m.d.comb += self.wr_en.eq(Mux(half, Mux(wb.dst_lane[0], 0b1100, 0b0011), 0b1111))
        m.d.comb += [
            out_fifo.w_data.eq(Cat(stored, wb.dst_base[:5])),
            out_fifo.w_en.eq(wb.valid & wb.to_fabric),
        ]
        with m.If(wb.valid & wb.to_reg):
            m.d.sync += acc.eq(result)
        m.d.comb += [
            self.reg_we.eq(wb.valid & wb.to_reg & wb.last),
            self.reg_addr.eq(wb.dst_base[:3]),
            self.reg_data.eq(result),
        ]
        # The accumulator feeds z at issue: a register destination issues one element at a time.
        # (s1.z_val captured ``acc`` at issue, after the previous element retired.)

        # ---- status ------------------------------------------------------------------------
        busy_regs = []
        for r in range(8):
            busy_regs.append(
                (vq_valid & (vq.dst.kind == DsdKind.REG) & (vq.dst.base[:3] == r))
                | (vx_valid & (vx.dst.kind == DsdKind.REG) & (vx.dst.base[:3] == r))
                | Cat(s.valid & s.to_reg & (s.dst_base[:3] == r) for s in meta).any()
            )
        m.d.comb += [
            self.reg_busy.eq(Cat(busy_regs)),
            self.idle.eq(~vq_valid & ~vx_valid & ~pipe_busy & ~out_fifo.r_rdy),
        ]
        return m
