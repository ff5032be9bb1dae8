"""The processing element: task engine, SRAM bank, fabric queues and the DSD vector engine.

Execution model (``docs/isa.md``), as in the WSE: a wavelet of colour ``c`` arriving from the
router's ramp waits in the colour's input queue. If task ``c`` is valid, the wavelet activates it:
the task picker (lowest ready task id first) pops the wavelet, writes its data to ``r7`` and
starts the task at its entry. Otherwise the wavelets wait for a vector instruction that reads
colour ``c`` as a fabric-input DSD. Local tasks are activated by ``ACT``. A task runs to
completion (``END``); ``HALT`` stops the PE.

The task engine executes one scalar instruction per cycle and hands vector instructions, with
their DSDs and register operands resolved, to :class:`pe.vector.VectorUnit`; it runs ahead of
the vector unit by one vector instruction and waits only for registers the vector unit will
write. Faults (unknown opcode, illegal operands, element outside SRAM, bad task id, a
configuration access at the wrong time) set sticky flags and halt the PE.

Configuration bus (:class:`pe.isa.AddressMap`): program memory, task table, DSD table, registers
and SRAM are written and read through it while the PE is stopped (``RUN`` clear and nothing in
flight); status and counters are readable at any time.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hdl.config_bus import ConfigBusSignature
from hdl.formats import Format
from hdl.refused import refusing
from hdl.sram import SRAMBank, check_sram_words
from hdl.wavelet import LinkSignature, check_num_colors
from pe.isa import (
    INTEGER_OPS,
    MAX_DSDS,
    NUM_REGS,
    VECTOR_OPS,
    WAVELET_REG,
    AddressMap,
    DsdKind,
    ErrorFlag,
    Op,
)
from pe.vector import Operand, VectorOp, VectorUnit, lane_shift

__all__ = ["PE"]


def _check_int(name: str, value, lo: int, hi: int, unit: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi} {unit}, not {value}")
    return value


class PE(wiring.Component):
    """A processing element.

    Parameters
    ----------
    sram_words : int
        SRAM bank size in 32-bit words (16 to 16384; default 1024 = 4 KiB).
    imem_words : int
        Program memory in 32-bit instruction words (16 to 65536; default 256).
    num_colors : int
        Colours (1 to 32; default 8): data tasks ``0 .. num_colors-1`` and fabric queues.
    num_tasks : int
        Task-table entries (``num_colors`` to 64; default 16).
    num_dsds : int
        DSD-table entries (1 to 16; default 16).
    in_depth : int
        Depth of each colour's input queue, in wavelets (2 to 16; default 4).

    Members
    -------
    ramp_in : ``In(LinkSignature(num_colors))``
        Wavelets from the router's RAMP output.
    ramp_out : ``Out(LinkSignature(num_colors))``
        Wavelets to the router's RAMP input.
    cfg : ``In(ConfigBusSignature(18))``
        Configuration bus (:class:`pe.isa.AddressMap`).
    idle : ``Out(1)``
        Nothing running, ready or in flight.
    halted : ``Out(1)``
        The PE stopped (``HALT`` or a fault).
    error : ``Out(1)``
        Some sticky error flag is set.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or out of range; the message gives the legal range.
    """

    def __init__(self, *, sram_words: int = 1024, imem_words: int = 256, num_colors: int = 8,
                 num_tasks: int = 16, num_dsds: int = 16, in_depth: int = 4):
        with refusing(self):
            self.sram_words = check_sram_words(sram_words)
            self.imem_words = _check_int("imem_words", imem_words, 16, 1 << 16,
                                         "instruction words")
            self.num_colors = check_num_colors(num_colors)
            self.num_tasks = _check_int("num_tasks", num_tasks, num_colors, 64,
                                        "tasks (at least num_colors)")
            self.num_dsds = _check_int("num_dsds", num_dsds, 1, MAX_DSDS, "DSDs")
            self.in_depth = _check_int("in_depth", in_depth, 2, 16, "wavelets")
        super().__init__({
            "ramp_in": In(LinkSignature(num_colors)),
            "ramp_out": Out(LinkSignature(num_colors)),
            "cfg": In(ConfigBusSignature(AddressMap.ADDR_WIDTH)),
            "idle": Out(1),
            "halted": Out(1),
            "error": Out(1),
        })

    @property
    def params(self):
        """The matching golden-model parameters (:class:`sim.pe_model.PEParams` fields)."""
        return dict(sram_words=self.sram_words, imem_words=self.imem_words,
                    num_colors=self.num_colors, num_tasks=self.num_tasks, num_dsds=self.num_dsds)

    def elaborate(self, platform):
        m = Module()
        C, T, D = self.num_colors, self.num_tasks, self.num_dsds
        A = AddressMap

        m.submodules.sram = sram = SRAMBank(self.sram_words)
        m.submodules.vu = vu = VectorUnit(sram_words=self.sram_words, num_colors=C)
        m.submodules.imem = imem = memory.Memory(shape=32, depth=self.imem_words, init=[])
        imem_rd = imem.read_port()
        imem_wr = imem.write_port()

        # ---- architectural state -----------------------------------------------------------
        regs = [Signal(32, name=f"r{i}") for i in range(NUM_REGS)]
        dsd_w0 = [Signal(32, name=f"dsd{d}_w0") for d in range(D)]
        dsd_w1 = [Signal(32, name=f"dsd{d}_w1") for d in range(D)]
        task_word = [Signal(18, name=f"task{t}") for t in range(T)]
        blocked = Signal(T)
        active = Signal(T)
        run = Signal()
        halted = Signal()
        errors = Signal(8)
        running = Signal()  # a task is executing
        pc = Signal(16)
        counters = {name: Signal(32, name=name) for name in ("busy", "macs", "cycles", "elems")}

        # ---- input queues (one per colour) ---------------------------------------------------
        Q = self.in_depth
        q_entries = [[Signal(32, name=f"inq{c}_{i}") for i in range(Q)] for c in range(C)]
        q_count = [Signal(range(Q + 1), name=f"inq{c}_n") for c in range(C)]
        q_valid = Cat(n != 0 for n in q_count)
        link = self.ramp_in
        m.d.comb += link.color_ready.eq(Cat(n != Q for n in q_count))
        in_color = link.payload.color
        m.d.comb += link.ready.eq(Mux(in_color < C, link.color_ready.bit_select(in_color, 1), 1))
        q_pop = Signal(C)  # from dispatch or the vector unit
        for c in range(C):
            push = link.valid & link.ready & (in_color == c)
            q, n = q_entries[c], q_count[c]
            with m.If(q_pop[c]):
                for i in range(Q - 1):
                    m.d.sync += q[i].eq(q[i + 1])
                with m.If(push):
                    for i in range(Q):
                        with m.If(n - 1 == i):
                            m.d.sync += q[i].eq(link.payload.data)
                with m.Else():
                    m.d.sync += n.eq(n - 1)
            with m.Elif(push):
                for i in range(Q):
                    with m.If(n == i):
                        m.d.sync += q[i].eq(link.payload.data)
                m.d.sync += n.eq(n + 1)
        in_data = Signal(data.ArrayLayout(32, C))
        m.d.comb += [in_data[c].eq(q_entries[c][0]) for c in range(C)]
        m.d.comb += [vu.in_valid.eq(q_valid), vu.in_data.eq(in_data)]
        wiring.connect(m, vu.ramp_out, wiring.flipped(self.ramp_out))

        # ---- task picker -------------------------------------------------------------------
        t_valid = Cat(w[16] for w in task_word)
        ready = Signal(T)
        for t in range(T):
            wavelet = q_valid[t] if t < C else Const(0)
            m.d.comb += ready[t].eq(t_valid[t] & ~blocked[t] & (active[t] | wavelet))
        pick = Signal(range(T))
        for t in reversed(range(T)):
            with m.If(ready[t]):
                m.d.comb += pick.eq(t)
        pick_entry = Mux(ready.any(), Cat(w[:16] for w in task_word).word_select(pick, 16), 0)
        pick_is_wavelet = ~active.bit_select(pick, 1)

        # ---- decode ------------------------------------------------------------------------
        ir = imem_rd.data
        opcode = ir[26:32]
        fa, fb, fc = ir[22:26], ir[18:22], ir[14:18]
        imm = ir[:16]
        simm = imm.as_signed()
        reg_arr = [r for r in regs]

        def reg(idx):
            return Cat(reg_arr).word_select(idx[:3], 32)

        def dsd(idx):
            w0 = Cat(dsd_w0).word_select(idx, 32) if D > 1 else dsd_w0[0]
            w1 = Cat(dsd_w1).word_select(idx, 32) if D > 1 else dsd_w1[0]
            return w0, w1

        def operand(idx, name):
            """Resolve DSD ``idx`` into an Operand (register values read now)."""
            w0, w1 = dsd(idx)
            o = Signal(Operand, name=name)
            m.d.comb += [
                o.kind.eq(w1[20:22]),
                o.fmt.eq(w1[16:19]),
                o.base.eq(w0[:16]),
                o.stride.eq(w1[:16]),
                o.value.eq(reg(w0[:3])),
            ]
            return o, w0[16:32]

        dst, dst_len = operand(fa, "op_dst")
        src0, src0_len = operand(fb, "op_src0")
        src1, src1_len = operand(fc, "op_src1")

        is_vector = Signal()
        m.d.comb += is_vector.eq(Cat(opcode == op for op in sorted(VECTOR_OPS)).any())
        two_src = opcode != Op.MOV
        accumulate = (opcode == Op.FMAC) | (opcode == Op.IMAC)
        int_op = Cat(opcode == op for op in sorted(INTEGER_OPS)).any()

        def is_float_fmt(f):
            return f <= Format.E5M2

        # Operand legality: the rules of sim.pe_model.operand_problem.
        srcs = [(src0, Const(1)), (src1, two_src)]
        bad = []
        bad.append(dst.kind == DsdKind.FABIN)
        bad += [u & (s.kind == DsdKind.FABOUT) for s, u in srcs]
        bad.append(accumulate & ~((dst.kind == DsdKind.MEM) | (dst.kind == DsdKind.REG)))
        mem_reads = ((src0.kind == DsdKind.MEM).as_unsigned()
                     + (two_src & (src1.kind == DsdKind.MEM)).as_unsigned()
                     + (accumulate & (dst.kind == DsdKind.MEM)).as_unsigned())
        bad.append(mem_reads > 2)
        storable = (dst.fmt == Format.FP32) | (dst.fmt == Format.BF16) | \
            (dst.fmt == Format.FP16) | (dst.fmt == Format.INT32)
        bad.append(((dst.kind == DsdKind.MEM) | (dst.kind == DsdKind.FABOUT)) & ~storable)
        bad.append(two_src & (src0.kind == DsdKind.FABIN) & (src1.kind == DsdKind.FABIN)
                   & (src0.base[:5] == src1.base[:5]))
        for o, u in srcs + [(dst, dst.kind != DsdKind.REG)]:
            data_kind = (o.kind == DsdKind.MEM) | (o.kind == DsdKind.FABIN) | \
                (o.kind == DsdKind.FABOUT)
            bad.append((opcode != Op.MOV) & u & data_kind & (is_float_fmt(o.fmt) == int_op))
        bad += [u & (s.kind == DsdKind.FABIN) & (s.base >= C) for s, u in srcs]
        bad.append((dst.kind == DsdKind.FABOUT) & (dst.base >= C))
        bad += [idx >= D for idx in (fa, fb)]
        bad.append(two_src & (fc >= D))
        illegal_operands = Signal()
        m.d.comb += illegal_operands.eq(Cat(bad).any())

        length = Signal(16)
        m.d.comb += length.eq(Mux(dst.kind != DsdKind.REG, dst_len,
                                  Mux(src0.kind != DsdKind.REG, src0_len,
                                      Mux(two_src & (src1.kind != DsdKind.REG), src1_len, 1))))
        # Bounds: every element of every memory operand must be in SRAM. Addresses are affine
        # in the element index, so the first and the last element decide (a precise fault,
        # before any element executes).
        oob = []
        for n, (o, u) in enumerate([(dst, Const(1))] + srcs):
            last = Signal(signed(34), name=f"last_elem_{n}")
            m.d.comb += last.eq(o.base + (length - 1).as_signed() * o.stride)
            shift = lane_shift(o.fmt)
            oob.append(u & (o.kind == DsdKind.MEM) & (length != 0) & (
                (last < 0) | ((o.base >> shift) >= self.sram_words)
                | ((last >> shift) >= self.sram_words)))
        out_of_bounds = Signal()
        m.d.comb += out_of_bounds.eq(Cat(oob).any())
        vop = Signal(VectorOp)
        m.d.comb += [
            vop.op.eq(opcode), vop.length.eq(length),
            vop.dst.eq(dst), vop.src0.eq(src0), vop.src1.eq(src1),
        ]
        m.d.comb += vu.op.payload.eq(vop)

        # Registers the instruction uses (for the interlock with the vector unit).
        busy = vu.reg_busy
        uses = Signal(8)
        with m.Switch(opcode):
            with m.Case(Op.LI, Op.LIH):
                m.d.comb += uses.eq(1 << fa[:3])
            with m.Case(Op.ADDI):
                m.d.comb += uses.eq((1 << fa[:3]) | (1 << fb[:3]))
            with m.Case(Op.ADD, Op.SUB):
                m.d.comb += uses.eq((1 << fa[:3]) | (1 << fb[:3]) | (1 << fc[:3]))
            with m.Case(Op.BNZ, Op.BZ, Op.DSETB, Op.DADDB, Op.DSETL):
                m.d.comb += uses.eq(1 << fb[:3])
            with m.Case(*sorted(VECTOR_OPS)):
                parts = []
                for o, u in [(dst, Const(1))] + srcs:
                    parts.append(Mux(u & (o.kind == DsdKind.REG), 1 << o.base[:3], 0))
                m.d.comb += uses.eq(parts[0] | parts[1] | parts[2])
        reg_stall = (uses & busy).any()

        # ---- execute -----------------------------------------------------------------------
        known = Cat(opcode == op for op in Op).any()
        executing = running & ~halted
        stall = Signal()
        vector_ok = ~illegal_operands & ~out_of_bounds
        m.d.comb += stall.eq(executing & (reg_stall | (is_vector & vector_ok & ~vu.op.ready)))
        do = executing & ~stall
        next_pc = Signal(16)
        m.d.comb += next_pc.eq(pc + 1)
        fault = Signal(8)  # ErrorFlag bits raised this cycle
        task_id = imm
        task_ok = task_id < T

        reg_write = [Signal(name=f"wr_r{i}") for i in range(NUM_REGS)]
        reg_value = Signal(32)
        with m.If(do):
            with m.Switch(opcode):
                with m.Case(Op.LI):
                    m.d.comb += reg_value.eq(simm.as_unsigned() | Mux(simm < 0, 0xFFFF0000, 0))
                with m.Case(Op.LIH):
                    m.d.comb += reg_value.eq(Cat(reg(fa)[:16], imm))
                with m.Case(Op.ADDI):
                    m.d.comb += reg_value.eq(reg(fb) + simm)
                with m.Case(Op.ADD):
                    m.d.comb += reg_value.eq(reg(fb) + reg(fc))
                with m.Case(Op.SUB):
                    m.d.comb += reg_value.eq(reg(fb) - reg(fc))
                with m.Case(Op.BNZ):
                    with m.If(reg(fb) != 0):
                        m.d.comb += next_pc.eq(pc + simm)
                with m.Case(Op.BZ):
                    with m.If(reg(fb) == 0):
                        m.d.comb += next_pc.eq(pc + simm)
                with m.Case(Op.JMP):
                    m.d.comb += next_pc.eq(pc + simm)
                with m.Case(Op.DSETB, Op.DADDB, Op.DADDBI, Op.DSETL):
                    with m.If(fa >= D):
                        m.d.comb += fault.eq(ErrorFlag.OPERANDS)
                with m.Case(Op.ACT, Op.BLK, Op.UNBLK):
                    with m.If(~task_ok):
                        m.d.comb += fault.eq(ErrorFlag.TASK)
                with m.Case(*sorted(VECTOR_OPS)):
                    with m.If(illegal_operands):
                        m.d.comb += fault.eq(ErrorFlag.OPERANDS)
                    with m.Elif(out_of_bounds):
                        m.d.comb += fault.eq(ErrorFlag.BOUNDS)
                with m.Default():
                    with m.If(~known | (opcode == 0)):
                        m.d.comb += fault.eq(ErrorFlag.OPCODE)
            for i in range(NUM_REGS):
                with m.If(Cat(opcode == op for op in (Op.LI, Op.LIH, Op.ADDI, Op.ADD, Op.SUB))
                          .any() & (fa[:3] == i)):
                    m.d.comb += reg_write[i].eq(1)
            if self.imem_words < 1 << 16:
                with m.If(pc >= self.imem_words):  # ran off the end of program memory
                    m.d.comb += fault.eq(ErrorFlag.OPCODE)
        m.d.comb += vu.op.valid.eq(executing & is_vector & vector_ok & ~reg_stall
                                   & (pc < self.imem_words))

        # DSD updates.
        for d in range(D):
            with m.If(do & (fa == d)):
                with m.Switch(opcode):
                    with m.Case(Op.DSETB):
                        m.d.sync += dsd_w0[d][:16].eq(reg(fb)[:16])
                    with m.Case(Op.DADDB):
                        m.d.sync += dsd_w0[d][:16].eq(dsd_w0[d][:16] + reg(fb)[:16])
                    with m.Case(Op.DADDBI):
                        m.d.sync += dsd_w0[d][:16].eq(dsd_w0[d][:16] + imm)
                    with m.Case(Op.DSETL):
                        m.d.sync += dsd_w0[d][16:].eq(reg(fb)[:16])

        # Task control and sequencing.
        ending = do & ((opcode == Op.END) | (opcode == Op.HALT))
        any_fault = fault.any()
        with m.If(do & task_ok):
            with m.Switch(opcode):
                with m.Case(Op.ACT):
                    m.d.sync += active.bit_select(task_id[:6], 1).eq(1)
                with m.Case(Op.BLK):
                    m.d.sync += blocked.bit_select(task_id[:6], 1).eq(1)
                with m.Case(Op.UNBLK):
                    m.d.sync += blocked.bit_select(task_id[:6], 1).eq(0)
        advance = do & ~ending & ~fault.any()
        with m.If(advance):
            m.d.sync += pc.eq(next_pc)
        with m.If(ending):
            m.d.sync += running.eq(0)
        with m.If(do & (opcode == Op.HALT)):
            m.d.sync += halted.eq(1)

        # Dispatch: start the picked task when none is running.
        dispatch = Signal()
        wavelet_task = ready.any() & pick_is_wavelet
        m.d.comb += dispatch.eq(
            run & ~halted & ~running & ready.any() & ~any_fault
            & ~(wavelet_task & (busy[WAVELET_REG] | vu.in_pop.bit_select(pick, 1)))
        )
        with m.If(dispatch):
            m.d.sync += [running.eq(1), pc.eq(pick_entry)]
            with m.If(pick_is_wavelet):
                m.d.sync += regs[WAVELET_REG].eq(in_data[pick[:max(1, (C - 1).bit_length())]])
            with m.Else():
                m.d.sync += active.bit_select(pick, 1).eq(0)
        dispatch_pop = Signal(C)
        for c in range(C):
            m.d.comb += dispatch_pop[c].eq(dispatch & pick_is_wavelet & (pick == c))
        m.d.comb += q_pop.eq(vu.in_pop | dispatch_pop)

        # Program fetch: the address of the instruction executed next cycle.
        m.d.comb += imem_rd.addr.eq(Mux(dispatch, pick_entry, Mux(advance, next_pc, pc)))

        # Faults.
        with m.If(any_fault):
            m.d.sync += [halted.eq(1), running.eq(0), errors.eq(errors | fault)]

        # Register writes: scalar results, then vector register destinations.
        for i in range(NUM_REGS):
            with m.If(reg_write[i] & ~fault.any()):
                m.d.sync += regs[i].eq(reg_value)
            with m.If(vu.reg_we & (vu.reg_addr == i)):
                m.d.sync += regs[i].eq(vu.reg_data)

        # ---- configuration bus ---------------------------------------------------------------
        cfg = self.cfg
        quiet = ~running & vu.idle
        table_ok = ~run & quiet
        addr = cfg.addr
        in_sram = addr < self.sram_words
        in_imem = (addr >= A.IMEM) & (addr < A.IMEM + self.imem_words)
        in_tasks = (addr >= A.TASKS) & (addr < A.TASKS + T)
        in_dsds = (addr >= A.DSDS) & (addr < A.DSDS + 2 * D)
        in_regs = (addr >= A.REGS) & (addr < A.REGS + NUM_REGS)
        guarded = in_sram | in_imem | in_tasks | in_dsds
        with m.If((cfg.we & (guarded | in_regs) | cfg.re & guarded) & ~table_ok):
            m.d.sync += errors.eq(errors | ErrorFlag.CONFIG_BUSY)
        cfg_we = cfg.we & table_ok
        with m.If(cfg_we & in_tasks):
            for t in range(T):
                with m.If(addr == A.TASKS + t):
                    m.d.sync += [task_word[t].eq(cfg.wdata[:18]), blocked[t].eq(cfg.wdata[17])]
        with m.If(cfg_we & in_dsds):
            for d in range(D):
                with m.If(addr == A.DSDS + 2 * d):
                    m.d.sync += dsd_w0[d].eq(cfg.wdata)
                with m.If(addr == A.DSDS + 2 * d + 1):
                    m.d.sync += dsd_w1[d].eq(cfg.wdata)
        with m.If(cfg_we & in_regs):
            for i in range(NUM_REGS):
                with m.If(addr == A.REGS + i):
                    m.d.sync += regs[i].eq(cfg.wdata)
        m.d.comb += [
            imem_wr.addr.eq(addr - A.IMEM),
            imem_wr.data.eq(cfg.wdata),
            imem_wr.en.eq(cfg_we & in_imem),
        ]
        with m.If(~running & ~dispatch & cfg.re & in_imem):
            m.d.comb += imem_rd.addr.eq(addr - A.IMEM)
        clear = cfg.we & (addr == A.CTRL) & cfg.wdata[1]
        with m.If(cfg.we & (addr == A.CTRL)):
            m.d.sync += run.eq(cfg.wdata[0])
        m.d.comb += vu.abort.eq(clear)
        with m.If(clear):
            m.d.sync += [halted.eq(0), errors.eq(0), active.eq(0), running.eq(0),
                         blocked.eq(Cat(w[17] for w in task_word))]
            m.d.sync += [n.eq(0) for n in q_count]  # flush the input queues
            m.d.sync += [c.eq(0) for c in counters.values()]

        # SRAM ports: the vector unit, or the configuration bus while the PE is stopped.
        cfg_sram_write = cfg_we & in_sram
        cfg_sram_read = cfg.re & in_sram & table_ok
        m.d.comb += [
            sram.rd_a_addr.eq(Mux(cfg_sram_read, addr, vu.rd_a_addr)),
            sram.rd_b_addr.eq(vu.rd_b_addr),
            vu.rd_a_data.eq(sram.rd_a_data),
            vu.rd_b_data.eq(sram.rd_b_data),
            sram.wr_addr.eq(Mux(cfg_sram_write, addr, vu.wr_addr)),
            sram.wr_data.eq(Mux(cfg_sram_write, cfg.wdata, vu.wr_data)),
            sram.wr_en.eq(Mux(cfg_sram_write, 0b1111, vu.wr_en)),
        ]

        # Read data, one cycle after cfg.re.
        rsel = Signal(2)  # 0 register mux, 1 SRAM, 2 program memory
        rreg = Signal(32)
        with m.If(cfg.re):
            m.d.sync += rsel.eq(Mux(in_sram & table_ok, 1, Mux(in_imem & table_ok, 2, 0)))
            m.d.sync += rreg.eq(0)
            with m.If(table_ok):
                for t in range(T):
                    with m.If(addr == A.TASKS + t):
                        m.d.sync += rreg.eq(task_word[t])
                for d in range(D):
                    with m.If(addr == A.DSDS + 2 * d):
                        m.d.sync += rreg.eq(dsd_w0[d])
                    with m.If(addr == A.DSDS + 2 * d + 1):
                        m.d.sync += rreg.eq(dsd_w1[d])
            for i in range(NUM_REGS):
                with m.If(addr == A.REGS + i):
                    m.d.sync += rreg.eq(regs[i])
            status = Cat(running, halted, self.idle, Const(0, 5), errors)
            for a, value in ((A.STATUS, status), (A.CTRL, run),
                             (A.BUSY_CYCLES, counters["busy"]), (A.MACS, counters["macs"]),
                             (A.RUN_CYCLES, counters["cycles"]), (A.ELEMENTS, counters["elems"])):
                with m.If(addr == a):
                    m.d.sync += rreg.eq(value)
        m.d.comb += cfg.rdata.eq(Mux(rsel == 1, sram.rd_a_data,
                                     Mux(rsel == 2, imem_rd.data, rreg)))

        # ---- counters and status -------------------------------------------------------------
        with m.If(run & ~clear):
            m.d.sync += [
                counters["cycles"].eq(counters["cycles"] + 1),
                counters["busy"].eq(counters["busy"] + (running | ~vu.idle)),
                counters["macs"].eq(counters["macs"] + vu.mac),
                counters["elems"].eq(counters["elems"] + vu.issued),
            ]
        m.d.comb += [
            self.idle.eq(~running & vu.idle & ~(run & ~halted & ready.any())),
            self.halted.eq(halted),
            self.error.eq(errors.any()),
        ]
        return m
