"""The processing element: task engine, SRAM bank, fabric queues and the DSD vector engine.

Execution model (``docs/isa.md``), as in the WSE: a wavelet of colour ``c`` arriving from the
router's ramp waits in the colour's input queue. If task ``c`` is valid, the wavelet activates it:
the task picker (lowest ready task id first) pops the wavelet, writes its data to ``r7`` and
starts the task at its entry. Otherwise the wavelets wait for a vector instruction that reads
colour ``c`` as a fabric-input DSD. Local tasks are activated by ``ACT``. A task runs to
completion (``END``); ``HALT`` stops the PE.

Micro-architecture (``docs/architecture.md``)::

    pick    lowest ready task (registered: one-hot, binary, wavelet or activation)
    start   entry from the task table (LUT RAM); pop the wavelet, write r7; fetch the entry
    F       program memory (block RAM) read
    I       the instruction word at the block RAM output; a skid register keeps it when D
            waits, so the fetch advances on registered state only (the wait stops it a
            cycle later) and D's stall is not on the block RAM's clock-enable path
    D       decode: the DSD table (LUT RAM, one copy per operand: a, b, c) read, operand rules,
            instruction length, the SRAM bounds of the first element, register addresses,
            the branch target
    E       execute: register file (LUT RAM, one copy per read port) read; ALU, branch, DSD
            and task-table updates; last-element bounds (base + span: an addition, the span
            (length - 1) x stride of each DSD, over min(length, period) elements for a
            wrapping one, having been computed when it was written);
            faults; vector instructions handed to :class:`pe.vector.VectorUnit`. The
            last-element bounds fault is registered: the vector unit withdraws the instruction
            in the next cycle (``cancel``), before it issues an element, and the fault then
            squashes what followed, so it is as precise as the others

A taken branch costs 3 extra cycles (the target is fetched in the cycle after the branch
executes); a task's entry is fetched in the cycle its predecessor's END executes (start and F
in that cycle; a cycle later after ACT, BLK or UNBLK), so its first instruction executes 3
cycles after the END (F, I, D): a task of n instructions takes n + 2 cycles. The task
engine runs ahead of the vector unit by one vector instruction and stalls only for registers
the vector unit will write, a DSD an instruction in E is changing, or a span being computed.
Faults (unknown opcode, illegal operands, element outside SRAM, bad task id, a configuration
access at the wrong time) set sticky flags and halt the PE, precisely.

Configuration bus (:class:`pe.isa.AddressMap`): program memory, task table, DSD table, registers
and SRAM are written and read through it while the PE is stopped (``RUN`` clear and nothing in
flight); status and counters are readable at any time. Read data is one registered one-hot
AND-OR of memory read ports and registers (SRAM and program memory: their own block RAM read).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hdl.block_ram import DONT_CARE_COLLISION, registered_read
from hdl.color_queue import ColorQueues
from hdl.config_bus import ConfigBusSignature
from hdl.formats import Format
from hdl.logic import at_least
from hdl.refused import refusing
from hdl.sram import SRAMBank
from hdl.wavelet import ControlWord, LinkSignature
from pe.filter import InputFilter
from pe.isa import (
    INTEGER_OPS,
    NUM_REGS,
    VECTOR_OPS,
    WAVELET_REG,
    AddressMap,
    CtrlWord,
    DsdKind,
    DsdWord0,
    DsdWord1,
    ErrorFlag,
    Instruction,
    Op,
    StatusWord,
    TaskWord,
)
from pe.params import PEParams
from pe.vector import VectorOp, VectorUnit, element_shift

__all__ = ["PE"]

#: Width of a DSD's span, (length - 1) x stride in elements, saturated: every element address
#: in bounds is in 0 .. 65535, so a span beyond +-2**17 faults whatever the base.
_SPAN_BITS = 18




def _onehot(m: Module, index, width: int, name: str) -> Signal:
    sig = Signal(width, name=name)
    m.d.comb += sig.eq(Cat(index == i for i in range(width)))
    return sig


class PE(wiring.Component):
    """A processing element.

    Parameters
    ----------
    params : PEParams, optional
        The PE's sizes; or give them as keyword arguments (the fields of :class:`PEParams`:
        ``sram_words``, ``imem_words``, ``num_colors``, ``num_tasks``, ``num_dsds``,
        ``in_depth``), not both.

    Members
    -------
    ramp_in : ``In(LinkSignature(num_colors))``
        Wavelets from the router's RAMP output, into per-colour queues
        (:class:`hdl.color_queue.ColorQueues`, ``in_depth`` wavelets each, in LUT RAM).
    ramp_out : ``Out(LinkSignature(num_colors))``
        Wavelets to the router's RAMP input (colour-aware: offered only for a colour whose
        ``color_ready`` bit is set; ``ready`` is not looked at).
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
        For a parameter of the wrong type or out of range (from :class:`PEParams`; the message
        gives the legal range), or both ``params`` and keyword arguments given.
    """

    def __init__(self, params: PEParams | None = None, /, **kwargs):
        with refusing(self):
            if params is not None and kwargs:
                raise TypeError("give PE either a PEParams or keyword arguments, not both")
            if params is not None and not isinstance(params, PEParams):
                raise TypeError(f"params must be a PEParams, not {params!r}")
            self.p = params if params is not None else PEParams(**kwargs)
        C = self.p.num_colors
        super().__init__({
            "ramp_in": In(LinkSignature(C)),
            "ramp_out": Out(LinkSignature(C)),
            "cfg": In(ConfigBusSignature(AddressMap.ADDR_WIDTH)),
            "idle": Out(1),
            "halted": Out(1),
            "error": Out(1),
        })

    @property
    def params(self) -> PEParams:
        """The PE's parameters."""
        return self.p

    def elaborate(self, platform):  # noqa: C901 - one block, in pipeline order
        m = Module()
        p = self.p
        C, T, D = p.num_colors, p.num_tasks, p.num_dsds
        A = AddressMap
        task_bits = max(1, (T - 1).bit_length())
        dsd_bits = 4

        # ---- blocks --------------------------------------------------------------------------
        m.submodules.sram = bank = SRAMBank(p.sram_words)
        m.submodules.vu = vu = VectorUnit(sram_words=p.sram_words, num_colors=C)
        wiring.connect(m, vu.sram, bank.bus)
        # Input side: the filters (a register stage unless the router's output is one), then
        # the queues, which see one wavelet in flight beyond the color_ready the router saw.
        # A control wavelet never enters the queues (below: it activates its control task).
        m.submodules.filter = filt = InputFilter(num_colors=C, registered=p.in_flight == 0)
        m.submodules.inq = inq = ColorQueues(num_colors=C, depth=p.in_depth, in_flight=1,
                                             early_head=True)
        link_in = self.ramp_in
        is_control = link_in.payload.ctrl
        wiring.connect(m, wiring.flipped(link_in), filt.link_in)
        wiring.connect(m, filt.link_out, inq.link)
        wiring.connect(m, vu.ramp_out, wiring.flipped(self.ramp_out))
        m.d.comb += vu.nonempty.eq(inq.nonempty)

        # Program memory (block RAM): written only while the PE is stopped, when its read serves
        # only the bus, so a read never meets a write of its word that matters (hdl.block_ram).
        m.submodules.imem = imem = memory.Memory(shape=32, depth=p.imem_words, init=[],
                                                 attrs=DONT_CARE_COLLISION)
        imem_wr = imem.write_port()
        # Register file: one LUT-RAM copy per read port (E's three, the configuration bus).
        m.submodules.regs = regfile = memory.Memory(shape=32, depth=NUM_REGS, init=[])
        rf_wr = regfile.write_port()
        rf_rd = [regfile.read_port(domain="comb") for _ in range(4)]
        # DSD table: word 0, word 1 and the span, one copy per operand port (a, b, c); port a
        # also serves the configuration bus while the PE is stopped.
        m.submodules.dsd0 = dsd0 = memory.Memory(shape=DsdWord0, depth=D, init=[])
        # (word 1 is kept whole: its fields fill the 32 bits)
        m.submodules.dsd1 = dsd1 = memory.Memory(shape=DsdWord1, depth=D, init=[])
        m.submodules.span = span_mem = memory.Memory(shape=signed(_SPAN_BITS), depth=D, init=[])
        dsd0_wr, dsd1_wr, span_wr = dsd0.write_port(), dsd1.write_port(), span_mem.write_port()
        ports = "abc"
        dsd0_rd = {k: dsd0.read_port(domain="comb") for k in ports}
        dsd1_rd = {k: dsd1.read_port(domain="comb") for k in ports}
        span_rd = {k: span_mem.read_port(domain="comb") for k in ports}
        # Task table entries (the valid and blocked-at-start bits also live in flip-flops, for
        # the picker).
        m.submodules.tasks = tasks = memory.Memory(shape=TaskWord, depth=T, init=[])
        task_wr = tasks.write_port()
        task_rd = tasks.read_port(domain="comb")
        # Control wavelets (docs/isa.md, "Tasks"): registered off the link as they arrive; in
        # the next cycle the named task is activated and the payload kept for its r7, one
        # payload per task (LUT RAM).
        cword = ControlWord(link_in.payload.data)
        ctl_arr = Signal()
        ctl_task = Signal(len(cword.task))
        ctl_payload = Signal(len(cword.payload))
        m.d.sync += [
            ctl_arr.eq(link_in.valid & is_control & ~cword.no_task & (cword.task < T)),
            ctl_task.eq(cword.task),
            ctl_payload.eq(cword.payload),
        ]
        ctl_sel = _onehot(m, ctl_task, T, "ctl_sel")
        m.submodules.payloads = payloads = memory.Memory(shape=len(cword.payload), depth=T,
                                                         init=[])
        payload_wr = payloads.write_port()
        payload_rd = payloads.read_port(domain="comb")
        m.d.comb += [payload_wr.addr.eq(ctl_task), payload_wr.data.eq(ctl_payload),
                     payload_wr.en.eq(ctl_arr)]

        # ---- architectural state -----------------------------------------------------------
        run = Signal()
        halted = Signal()
        errors = Signal(8)
        running = Signal()  # a task is executing (from its start to END/HALT/fault)
        t_valid = Signal(T)
        t_blocked0 = Signal(T)  # blocked after loading or CLEAR
        blocked = Signal(T)
        active = Signal(T)
        control = Signal(T)  # the activation came from a control wavelet (r7 = its payload)
        counters = {name: Signal(32, name=name) for name in ("busy", "macs", "cycles", "elems")}

        cfg = self.cfg
        clear = Signal()
        m.d.comb += clear.eq(cfg.we & (cfg.addr == A.CTRL) & CtrlWord(cfg.wdata).clear)
        m.d.comb += [vu.abort.eq(clear), inq.flush.eq(clear), filt.flush.eq(clear)]

        # ---- picker (registered) --------------------------------------------------------------
        # A data task may take a wavelet unless the vector unit reads the fabric or will write
        # r7. Registered for the picker (the start checks the current value).
        wavelet_now = ~vu.fabin_busy & ~vu.reg_busy[WAVELET_REG]
        wavelet_ok = Signal()
        m.d.sync += wavelet_ok.eq(wavelet_now)
        ready = Signal(T)
        for t in range(T):
            wavelet = inq.nonempty[t] & wavelet_ok if t < C else Const(0)
            m.d.comb += ready[t].eq(t_valid[t] & ~blocked[t] & (active[t] | wavelet))
        lowest = Signal(T)
        m.d.comb += lowest.eq(ready & ~(ready - 1))  # the lowest set bit
        pick_valid = Signal()
        pick_onehot = Signal(T)
        pick_bin = Signal(task_bits)
        pick_wavelet = Signal()
        pick_control = Signal()  # an activation by a control wavelet
        m.d.sync += [
            pick_control.eq((lowest & active & control).any()),
            pick_valid.eq(run & ~halted & ready.any() & ~clear),
            pick_onehot.eq(lowest),
            pick_bin.eq(Cat((lowest & Cat((t >> k) & 1 for t in range(T))).any()
                            for k in range(task_bits))),
            pick_wavelet.eq((lowest & ~active).any()),
        ]

        # ---- pipeline registers -----------------------------------------------------------
        i_valid = Signal()
        i_pc = Signal(16)
        d_valid = Signal()
        d_pc = Signal(16)
        ir = Signal(Instruction)

        # Configuration mode: the PE is stopped and empty; the table ports serve the bus.
        quiet = Signal()
        cfg_mode = Signal()

        # ---- start -------------------------------------------------------------------------
        start = Signal()
        entry = task_rd.data.entry
        m.d.comb += task_rd.addr.eq(Mux(cfg_mode, cfg.addr[:task_bits], pick_bin))

        hold_e = Signal()  # E waits
        hold_d = Signal()  # D (and the fetch) waits
        squash = Signal()  # E executes END, HALT or a fault; or a branch was taken
        redirect = Signal()  # a branch was taken in the previous cycle: fetch its target
        late = Signal()  # the vector instruction E handed over in the previous cycle faulted

        # ---- D: decode ---------------------------------------------------------------------
        op = ir.i.opcode
        fa, fb, fc = ir.i.a, ir.i.b, ir.r.c
        imm = ir.i.imm
        simm = imm.as_signed()

        def is_op(*ops):
            return Cat(op == o for o in ops).any()

        # Instruction classes (the block RAM's clock-to-out leaves no room to decode them in I).
        classes = {
            "vector": sorted(VECTOR_OPS), "two": sorted(VECTOR_OPS - {Op.MOV}),
            "acc": [Op.FMAC, Op.IMAC], "int": sorted(INTEGER_OPS),
            "dsd_update": [Op.DSETB, Op.DADDB, Op.DADDBI, Op.DSETL, Op.DINDEX],
            "task_op": [Op.ACT, Op.BLK, Op.UNBLK], "known": [o for o in Op if o != 0],
            "writes": [Op.LI, Op.LIH, Op.ADDI, Op.ADD, Op.SUB], "branch": [Op.BNZ, Op.BZ, Op.JMP],
        }
        pre = {name: Signal(name=f"d_{name}") for name in classes}
        m.d.comb += [pre[name].eq(is_op(*ops)) for name, ops in classes.items()]
        d_vector, d_two, d_acc, d_int = pre["vector"], pre["two"], pre["acc"], pre["int"]
        d_dsd_update, d_task_op, known = pre["dsd_update"], pre["task_op"], pre["known"]

        cfg_dsd = cfg.addr[1:1 + dsd_bits]
        m.d.comb += [
            dsd0_rd["a"].addr.eq(Mux(cfg_mode, cfg_dsd, fa)),
            dsd1_rd["a"].addr.eq(Mux(cfg_mode, cfg_dsd, fa)),
            span_rd["a"].addr.eq(fa),
        ]
        for k, field in (("b", fb), ("c", fc)):
            m.d.comb += [dsd0_rd[k].addr.eq(field), dsd1_rd[k].addr.eq(field),
                         span_rd[k].addr.eq(field)]
        opd = {}  # the three operands as read: a = dst, b = src0, c = src1
        for k in ports:
            w0, w1 = dsd0_rd[k].data, dsd1_rd[k].data
            opd[k] = {"kind": w1.kind, "fmt": w1.fmt, "stride": w1.stride, "ctrl": w1.ctrl,
                      "period": w1.period, "base": w0.base, "len": w0.length,
                      "span": span_rd[k].data}
        dst, src0, src1 = opd["a"], opd["b"], opd["c"]
        used = {"a": Const(1), "b": Const(1), "c": d_two}

        def kind_is(o, kind):
            return o["kind"] == kind

        # Operand rules: those of sim.model.pe.operand_problem.
        bad = [kind_is(dst, DsdKind.FABIN)]
        bad += [used[k] & kind_is(opd[k], DsdKind.FABOUT) for k in "bc"]
        bad.append(d_acc & ~(kind_is(dst, DsdKind.MEM) | kind_is(dst, DsdKind.REG)))
        mem = {k: used[k] & kind_is(opd[k], DsdKind.MEM) for k in ports}
        bad.append(mem["b"] & mem["c"] & d_acc & mem["a"])  # three SRAM reads per element
        storable = Cat(dst["fmt"] == f for f in (Format.FP32, Format.BF16, Format.FP16,
                                                 Format.INT32)).any()
        bad.append((kind_is(dst, DsdKind.MEM) | kind_is(dst, DsdKind.FABOUT)) & ~storable)
        bad.append(d_two & kind_is(src0, DsdKind.FABIN) & kind_is(src1, DsdKind.FABIN)
                   & (src0["base"][:5] == src1["base"][:5]))
        for k in ports:
            o = opd[k]
            data_kind = ~kind_is(o, DsdKind.REG)
            checked = used[k] & (~kind_is(o, DsdKind.REG) if k == "a" else Const(1))
            is_float = o["fmt"] <= Format.E5M2
            bad.append((op != Op.MOV) & checked & data_kind & (is_float == d_int))
        bad += [used[k] & kind_is(opd[k], DsdKind.FABIN) & at_least(opd[k]["base"], C)
                for k in "bc"]
        bad.append(kind_is(dst, DsdKind.FABOUT) & at_least(dst["base"], C))
        if D < 1 << dsd_bits:
            bad += [at_least(fa, D), at_least(fb, D), d_two & at_least(fc, D)]
        d_illegal = Signal()
        m.d.comb += d_illegal.eq(d_vector & Cat(bad).any())

        # Instruction length: the first non-register operand's.
        nonreg = {k: used[k] & ~kind_is(opd[k], DsdKind.REG) for k in ports}
        length = Signal(16)
        m.d.comb += length.eq(Mux(nonreg["a"], dst["len"],
                                  Mux(nonreg["b"], src0["len"], Mux(nonreg["c"], src1["len"], 1))))
        # An operand whose own length differs from the instruction's has no stored span for
        # it: E computes that span first (a few cycles), with the same multiplier.
        mismatch = Signal(3)
        eq_ab = dst["len"] == src0["len"]
        eq_ac = dst["len"] == src1["len"]
        eq_bc = src0["len"] == src1["len"]
        m.d.comb += mismatch.eq(Cat(
            Const(0, 1),
            mem["b"] & nonreg["a"] & ~eq_ab,
            mem["c"] & Mux(nonreg["a"], ~eq_ac, nonreg["b"] & ~eq_bc),
        ))
        nonzero = {k: opd[k]["len"].any() for k in ports}
        length_nz = Mux(nonreg["a"], nonzero["a"],
                        Mux(nonreg["b"], nonzero["b"], Mux(nonreg["c"], nonzero["c"], 1)))

        # Registers the instruction reads or writes (interlock with the vector unit).
        uses = Signal(8)
        with m.Switch(op):
            with m.Case(Op.LI, Op.LIH):
                m.d.comb += uses.eq(1 << fa[:3])
            with m.Case(Op.ADDI):
                m.d.comb += uses.eq((1 << fa[:3]) | (1 << fb[:3]))
            with m.Case(Op.ADD, Op.SUB):
                m.d.comb += uses.eq((1 << fa[:3]) | (1 << fb[:3]) | (1 << fc[:3]))
            with m.Case(Op.BNZ, Op.BZ, Op.DSETB, Op.DADDB, Op.DSETL, Op.DINDEX):
                m.d.comb += uses.eq(1 << fb[:3])
            with m.Case(*sorted(VECTOR_OPS)):
                m.d.comb += uses.eq(Cat(Cat((used[k] & kind_is(opd[k], DsdKind.REG)
                                             & (opd[k]["base"][:3] == r)) for k in ports).any()
                                        for r in range(NUM_REGS)))

        # ---- D -> E ------------------------------------------------------------------------
        E = {name: Signal(shape, name=f"e_{name}") for name, shape in {
            "valid": 1, "pc": 16, "op": 6, "a": 4, "b": 4, "imm": 16, "target": 16,
            "vector": 1, "writes": 1, "branch": 1, "dsd_update": 1, "task_op": 1,
            "length": 16, "length_nz": 1, "mismatch": 3, "uses": 8,
            "fault": 8, "faulty": 1, "p1": 3, "p2": 3, "p3": 3,
        }.items()}
        # One flag per opcode E tells apart (decoded in D).
        flag_ops = ("SUB", "ADDI", "LI", "LIH", "JMP", "BNZ", "BZ", "END", "HALT", "DSETB",
                    "DADDBI", "DSETL", "DINDEX", "MOV", "ACT", "BLK", "UNBLK")
        EF = {name: Signal(name=f"e_is_{name.lower()}") for name in flag_ops}
        EO = {k: {name: Signal(shape, name=f"e_{k}_{name}") for name, shape in {
            "kind": 2, "fmt": 3, "stride": signed(16), "ctrl": 1, "period": 10, "base": 16,
            "len": 16, "span": signed(_SPAN_BITS), "shift": 2, "oob_first": 1,
        }.items()} for k in ports}

        sram_bits = (p.sram_words - 1).bit_length()
        pow2 = p.sram_words == 1 << sram_bits

        def beyond(value, shift):
            """``(value >> shift) >= sram_words`` for an unsigned or non-negative value."""
            if pow2:
                return Mux(shift == 2, value[sram_bits + 2:].any(),
                           Mux(shift == 1, value[sram_bits + 1:].any(), value[sram_bits:].any()))
            return (value >> shift) >= p.sram_words

        # Faults known in D, one flag at most: OPCODE, else OPERANDS, else TASK.
        d_fault = Signal(8)
        pc_bad = at_least(d_pc, p.imem_words)
        opcode_bad = pc_bad | ~known
        operands_bad = (d_vector & d_illegal) | (d_dsd_update & at_least(fa, D))
        task_bad = d_task_op & at_least(imm, T)
        m.d.comb += d_fault.eq(Mux(opcode_bad, ErrorFlag.OPCODE, 0)
                               | Mux(~opcode_bad & operands_bad, ErrorFlag.OPERANDS, 0)
                               | Mux(~opcode_bad & ~operands_bad & task_bad, ErrorFlag.TASK, 0))

        span_busy = Signal()

        d_to_e = [EF[name].eq(op == Op[name]) for name in flag_ops] + [
            E["pc"].eq(d_pc), E["op"].eq(op), E["a"].eq(fa), E["b"].eq(fb), E["imm"].eq(imm),
            E["target"].eq(d_pc + simm),
            E["vector"].eq(d_vector),
            E["writes"].eq(pre["writes"]),
            E["branch"].eq(pre["branch"]),
            E["dsd_update"].eq(d_dsd_update & ~at_least(fa, D)),
            E["task_op"].eq(d_task_op),
            E["length"].eq(length),
            E["length_nz"].eq(length_nz),
            E["mismatch"].eq(Mux(d_vector, mismatch, 0)),
            E["uses"].eq(uses),
            E["fault"].eq(d_fault),
            E["faulty"].eq(opcode_bad | operands_bad | task_bad),  # d_fault != 0, decoded in D
            E["p1"].eq(Mux(d_vector, src0["base"][:3], Mux(op == Op.LIH, fa[:3], fb[:3]))),
            E["p2"].eq(Mux(d_vector, src1["base"][:3], fc[:3])),
            E["p3"].eq(dst["base"][:3]),
        ]
        for k in ports:
            o = opd[k]
            sh = element_shift(o["fmt"])
            d_to_e += [EO[k][f].eq(o[f]) for f in ("kind", "fmt", "stride", "ctrl", "period",
                                                   "base", "len", "span")]
            d_to_e += [EO[k]["shift"].eq(sh), EO[k]["oob_first"].eq(beyond(o["base"], sh))]
        with m.If(~hold_e):
            m.d.sync += d_to_e
            m.d.sync += E["valid"].eq(d_valid & ~hold_d & ~squash)
        with m.If(late):  # (E may be waiting: what it holds must not execute later)
            m.d.sync += E["valid"].eq(0)

        # DSD hazard: D reads a DSD while the instruction in E (or the write after it) changes
        # one, or a span is computed.
        d_hazard = Signal()
        e_dsd = Signal()  # E's DSD update of the previous cycle, written in this one
        e_dsd_index = Signal(dsd_bits)
        # (any DSD: comparing the indices would cost more than the cycle it saves)
        m.d.comb += d_hazard.eq(d_valid & (
            span_busy | ((d_vector | d_dsd_update) & ((E["valid"] & E["dsd_update"]) | e_dsd))))

        # ---- E: execute --------------------------------------------------------------------
        for port, addr in zip(rf_rd[:3], (E["p1"], E["p2"], E["p3"])):
            m.d.comb += port.addr.eq(addr)
        r1, r2, r3 = (port.data for port in rf_rd[:3])
        e_op = E["op"]


        # E's register write happens in the next cycle, from registers; an instruction that
        # uses that register waits for it.
        e_wr = Signal()
        e_wr_addr = Signal(3)
        e_wr_data = Signal(32)
        e_wr_onehot = Signal(8)
        reg_stall = (E["uses"] & (vu.reg_busy | Mux(e_wr, e_wr_onehot, 0))).any()
        # A length mismatch matters for a legal vector instruction with elements.
        mismatched = E["vector"] & E["mismatch"].any() & ~E["faulty"] & E["length_nz"]
        mismatch_wait = mismatched
        m.d.comb += hold_e.eq(E["valid"] & ~redirect & (
            reg_stall | (E["vector"] & ~vu.op.ready) | (E["writes"] & vu.reg_we_next)
            | mismatch_wait))
        m.d.comb += hold_d.eq(hold_e | d_hazard)
        # A vector instruction's last-element bounds fault is known a cycle after it was handed
        # over (`late`, a register): the vector unit withdraws it before it issues an element,
        # and the fault then takes effect like one found in E (what followed it is squashed).
        go = Signal()  # E executes (not the instruction after a taken branch or a late fault)
        m.d.comb += go.eq(E["valid"] & ~hold_e & ~redirect & ~late)

        # Bounds of the last element: base + span, both bounds.
        oob = []
        for k in ports:
            o = EO[k]
            last = Signal(signed(_SPAN_BITS + 1), name=f"e_{k}_last")
            m.d.comb += last.eq(o["base"] + o["span"])
            is_mem = o["kind"] == DsdKind.MEM
            use = Const(1) if k != "c" else ~EF["MOV"]
            oob.append(use & is_mem & (o["oob_first"] | last[-1]
                                       | beyond(last.as_unsigned()[:_SPAN_BITS], o["shift"])))
        bounds = Signal()
        m.d.comb += bounds.eq(E["vector"] & ~E["faulty"] & E["length_nz"] & Cat(oob).any())
        m.d.sync += late.eq(go & bounds & ~clear)
        fault = Signal(8)
        m.d.comb += fault.eq(Mux(go, E["fault"], 0) | Mux(late, ErrorFlag.BOUNDS, 0))
        # The instruction takes effect (a vector instruction is handed over; its bounds fault,
        # if any, withdraws it in the next cycle). Nothing here waits for the bounds check: its
        # carry chains end at `late`.
        do = Signal()
        m.d.comb += do.eq(go & ~E["faulty"])

        # Scalar ALU.
        e_imm = E["imm"]
        sext = Cat(e_imm, Mux(e_imm[15], 0xFFFF, 0))
        subtract = EF["SUB"]
        addend = Mux(EF["ADDI"], sext, r2 ^ Mux(subtract, 0xFFFF_FFFF, 0))
        total = Signal(32)
        m.d.comb += total.eq(r1 + addend + subtract)
        alu = Mux(EF["LI"], sext, Mux(EF["LIH"], Cat(r1[:16], e_imm), total))
        m.d.sync += [
            e_wr.eq(do & E["writes"] & ~clear), e_wr_addr.eq(E["a"][:3]),
            e_wr_onehot.eq(Cat(E["a"][:3] == r for r in range(NUM_REGS))), e_wr_data.eq(alu),
        ]

        # Branches: the target is fetched when the branch executes.
        taken = Signal()
        zero = ~r1.any()
        m.d.comb += taken.eq(do & E["branch"] & (
            EF["JMP"] | (EF["BNZ"] & ~zero) | (EF["BZ"] & zero)))
        ending = do & (EF["END"] | EF["HALT"])
        # A taken branch redirects the fetch in the next cycle (squashing what followed it).
        target = Signal(16)
        m.d.sync += [redirect.eq(taken & ~clear), target.eq(E["target"])]
        m.d.comb += squash.eq((go & ending) | fault.any() | redirect)
        with m.If(ending | fault.any()):
            m.d.sync += running.eq(0)
        with m.If((do & EF["HALT"]) | fault.any()):
            m.d.sync += halted.eq(1)
        m.d.sync += errors.eq(errors | fault)

        # Task table state.
        # (ACT, BLK and UNBLK never wait in E: they read no register, write none and are not
        # vector instructions, so `hold_e` is 0 for them and is left out: the task state's
        # enables then do not start at E's vector and stall terms.)
        e_task = (E["valid"] & E["task_op"] & ~E["faulty"] & ~redirect
                  & ~late)  # its task id decoded below, with the bus's

        # Vector hand-over.
        vop = Signal(VectorOp)
        values = {"a": r3, "b": r1, "c": r2}
        for k, o in zip(ports, (vop.dst, vop.src0, vop.src1)):
            m.d.comb += [o.kind.eq(EO[k]["kind"]), o.fmt.eq(EO[k]["fmt"]),
                         o.base.eq(EO[k]["base"]), o.stride.eq(EO[k]["stride"]),
                         o.ctrl.eq(EO[k]["ctrl"]), o.period.eq(EO[k]["period"]),
                         o.value.eq(values[k])]
        m.d.comb += [
            vop.op.eq(e_op), vop.length.eq(E["length"]),
            vu.op.payload.eq(vop),
            vu.op.valid.eq(do & E["vector"]),
            vu.cancel.eq(late),
        ]

        # ---- span unit: (length - 1) x stride, saturated, for the DSD table or for E --------
        req = Signal()
        req_len = Signal(16)
        req_stride = Signal(signed(16))
        req_period = Signal(10)  # a wrap: the span covers min(length, period) elements
        req_dsd = Signal(dsd_bits)
        req_to_e = Signal(2)  # 0: the table; 1 + k: E's operand k (a length mismatch)
        # Two stages: the operands, the length already less one; their product (a MULT18X18D),
        # (length - 1) x stride, saturated as it is written. (The decrement is before the
        # first stage, where the operands arrive early; a subtraction of the stride after the
        # product was the PE's longest path.)
        sp1 = {"valid": Signal(name="sp1_valid"),
               "len_m1": Signal(signed(17), name="sp1_len_m1"),
               "stride": Signal(signed(16), name="sp1_stride"),
               "dsd": Signal(dsd_bits, name="sp1_dsd"), "to_e": Signal(2, name="sp1_to_e")}
        sp2 = {"valid": Signal(name="sp2_valid"), "prod": Signal(signed(33), name="sp2_prod"),
               "dsd": Signal(dsd_bits, name="sp2_dsd"), "to_e": Signal(2, name="sp2_to_e")}
        # (the compare and both decrements side by side, then one mux: no carry chain after
        # another before the first stage)
        wraps = req_period.any() & (req_period < req_len)
        m.d.sync += [
            sp1["valid"].eq(req & ~clear),
            sp1["len_m1"].eq(Mux(wraps, req_period - 1, req_len - 1)),
            sp1["stride"].eq(req_stride),
            sp1["dsd"].eq(req_dsd), sp1["to_e"].eq(req_to_e),
            sp2["valid"].eq(sp1["valid"] & ~clear), sp2["prod"].eq(sp1["len_m1"] * sp1["stride"]),
            sp2["dsd"].eq(sp1["dsd"]),
            sp2["to_e"].eq(sp1["to_e"]),
        ]
        span = sp2["prod"]  # (length - 1) x stride
        limit = (1 << (_SPAN_BITS - 1)) - 1
        high = span[_SPAN_BITS - 1:-1]  # must all equal the sign for the span to fit
        saturated = Signal(signed(_SPAN_BITS))
        m.d.comb += saturated.eq(Mux(~span[-1] & high.any(), limit,
                                     Mux(span[-1] & ~high.all(), -limit - 1,
                                         span[:_SPAN_BITS].as_signed())))
        m.d.comb += [
            span_wr.addr.eq(sp2["dsd"]),
            span_wr.data.eq(saturated),
            span_wr.en.eq(sp2["valid"] & (sp2["to_e"] == 0)),
        ]
        m.d.comb += span_busy.eq((sp1["valid"] & (sp1["to_e"] == 0))
                                 | (sp2["valid"] & (sp2["to_e"] == 0)))
        # Length mismatch: E's operands, one at a time.
        mm_busy = Signal()
        mm_first = Signal(3)
        m.d.comb += mm_first.eq(E["mismatch"] & ~(E["mismatch"] - 1))
        e_req = E["valid"] & mismatched & ~mm_busy
        with m.If(e_req):
            m.d.sync += mm_busy.eq(1)
        with m.If(sp2["valid"] & (sp2["to_e"] != 0)):
            m.d.sync += mm_busy.eq(0)
            for i, k in enumerate(ports):
                with m.If(sp2["to_e"] == i + 1):
                    m.d.sync += [EO[k]["span"].eq(saturated), E["mismatch"][i].eq(0)]

        # ---- DSD and register writes -----------------------------------------------------------
        # Tables, SRAM and program may be accessed (registered: from the cycle after the PE is
        # stopped and quiet).
        cfg_ok = Signal()
        m.d.sync += cfg_ok.eq(~run & ~running & quiet)
        addr = cfg.addr
        hi = addr[8:]
        in_sram = (addr < p.sram_words)
        in_imem = (addr[16:] == 1) & (addr[:16] < p.imem_words)
        in_tasks = (hi == A.TASKS >> 8) & (addr[:8] < T)
        in_dsds = (hi == A.DSDS >> 8) & (addr[:8] < 2 * D)
        in_regs = (hi == A.REGS >> 8) & (addr[:8] < NUM_REGS)
        in_filters = (hi == A.FILTERS >> 8) & (addr[:8] < C)
        in_modes = (hi == A.FILTER_MODES >> 8) & (addr[:8] < C)
        guarded = in_sram | in_imem | in_tasks | in_dsds | in_filters | in_modes
        with m.If((cfg.we & (guarded | in_regs) | cfg.re & guarded) & ~cfg_ok):
            m.d.sync += errors.eq(errors | fault | ErrorFlag.CONFIG_BUSY)
        cfg_we = cfg.we & cfg_ok

        new_w0 = Signal(DsdWord0)
        a_base, a_len = EO["a"]["base"], EO["a"]["len"]
        m.d.comb += [
            # one adder: base + imm (DADDBI), base + rb (DADDB), imm + rb[31:16] (DINDEX)
            new_w0.base.eq(Mux(EF["DSETB"], r1[:16],
                               Mux(EF["DINDEX"], E["imm"], a_base)
                               + Mux(EF["DADDBI"], E["imm"],
                                     Mux(EF["DINDEX"], r1[16:], r1[:16])))),
            new_w0.length.eq(a_len),
        ]
        with m.If(EF["DSETL"]):
            m.d.comb += [new_w0.base.eq(a_base), new_w0.length.eq(r1[:16])]
        cfg_w0 = cfg_we & in_dsds & ~addr[0]
        cfg_w1 = cfg_we & in_dsds & addr[0]
        # E's DSD update is written in the next cycle, from registers (D waits for it).
        e_dsd_word = Signal(DsdWord0)
        m.d.sync += [e_dsd.eq(do & E["dsd_update"] & ~clear), e_dsd_index.eq(E["a"]),
                     e_dsd_word.eq(new_w0)]
        m.d.comb += [
            dsd0_wr.addr.eq(Mux(e_dsd, e_dsd_index, cfg_dsd)),
            dsd0_wr.data.eq(Mux(e_dsd, e_dsd_word, cfg.wdata)),
            dsd0_wr.en.eq(cfg_w0 | e_dsd),
            dsd1_wr.addr.eq(cfg_dsd),
            dsd1_wr.data.eq(cfg.wdata),
            dsd1_wr.en.eq(cfg_w1),
        ]
        # Span requests: DSETL (in E), a configuration write of either word (the other word
        # from port a, which serves the bus while stopped), a length mismatch (E).
        cfg_port_w0, cfg_port_w1 = dsd0_rd["a"].data, dsd1_rd["a"].data
        with m.If(do & EF["DSETL"] & E["dsd_update"]):
            m.d.comb += [req.eq(1), req_len.eq(r1[:16]), req_stride.eq(EO["a"]["stride"]),
                         req_period.eq(EO["a"]["period"]), req_dsd.eq(E["a"])]
        with m.Elif(cfg_w0 | cfg_w1):
            m.d.comb += [
                req.eq(1),
                req_len.eq(Mux(cfg_w0, DsdWord0(cfg.wdata).length, cfg_port_w0.length)),
                req_stride.eq(Mux(cfg_w0, cfg_port_w1.stride, DsdWord1(cfg.wdata).stride)),
                req_period.eq(Mux(cfg_w0, cfg_port_w1.period, DsdWord1(cfg.wdata).period)),
                req_dsd.eq(cfg_dsd),
            ]
        with m.Elif(e_req):
            m.d.comb += [req.eq(1), req_len.eq(E["length"])]
            for i, k in enumerate(ports):
                with m.If(mm_first[i]):
                    m.d.comb += [req_stride.eq(EO[k]["stride"]), req_period.eq(EO[k]["period"]),
                                 req_to_e.eq(i + 1)]

        # Register file writes: the vector unit, E, a started data or control task (r7), the
        # bus.
        start_wavelet = start & pick_wavelet
        start_r7 = start & (pick_wavelet | pick_control)
        cfg_reg = cfg_we & in_regs
        # (exclusive: E waits while the vector unit writes, a data task does not start when the
        # vector unit writes in the next cycle, the bus writes only while the PE is quiet)
        r7_write = Signal()  # the wavelet's data (registered off the input queue at the start)
        r7_data = Signal(32)  # or the control wavelet's payload
        m.d.comb += payload_rd.addr.eq(pick_bin)
        m.d.sync += [r7_write.eq(start_r7),
                     r7_data.eq(Mux(pick_control, payload_rd.data, inq.rd[0].data))]
        with m.If(r7_write):
            m.d.comb += [rf_wr.addr.eq(WAVELET_REG), rf_wr.data.eq(r7_data)]
        with m.Elif(vu.reg_we):
            m.d.comb += [rf_wr.addr.eq(vu.reg_addr), rf_wr.data.eq(vu.reg_data)]
        with m.Elif(cfg_reg):
            m.d.comb += [rf_wr.addr.eq(addr[:3]), rf_wr.data.eq(cfg.wdata)]
        with m.Else():
            m.d.comb += [rf_wr.addr.eq(e_wr_addr), rf_wr.data.eq(e_wr_data)]
        m.d.comb += rf_wr.en.eq(vu.reg_we | r7_write | cfg_reg | e_wr)

        # ---- start and fetch ---------------------------------------------------------------------
        # The skid register: the instruction word the block RAM delivered while D was waiting
        # (the fetch advances on registered state only, so D's wait is not on the program
        # memory's clock-enable path; it stops the fetch a cycle later, from `skid_valid`).
        skid_valid = Signal()
        skid_ir = Signal(Instruction)
        skid_pc = Signal(16)
        pipe_empty = ~i_valid & ~skid_valid & ~d_valid & ~E["valid"]
        # A task also starts in the cycle its predecessor's END executes (an END never waits
        # in E, so this is known from registers): the entry is fetched while the END squashes
        # what followed it in I and D. Not when the instruction before the END changed the
        # task state (ACT, BLK, UNBLK): the pick, registered, was made before that change.
        task_op_before = Signal()
        m.d.sync += task_op_before.eq(e_task)
        end_now = (E["valid"] & EF["END"] & ~E["faulty"] & ~redirect & ~late
                   & ~task_op_before)
        m.d.comb += start.eq(run & ~halted & ((~running & pipe_empty) | end_now) & pick_valid
                             & ~(pick_wavelet & (vu.reg_we_next | ~wavelet_now))
                             & ~(pick_control & (vu.reg_we_next | vu.reg_busy[WAVELET_REG]))
                             & ~clear)
        port = inq.rd[0]
        m.d.comb += [
            port.color.eq(Mux(vu.queue_own, vu.queue.color, pick_bin)),
            port.onehot.eq(Mux(vu.queue_own, vu.queue.onehot, pick_onehot[:C])),
            port.pop.eq(vu.queue.pop | start_wavelet),
            vu.queue.data.eq(port.data),
            vu.queue.ctrl.eq(port.ctrl),
        ]
        with m.If(start):
            m.d.sync += running.eq(1)

        fetch_addr = Signal(16)
        i_pc1 = Signal(16)  # i_pc + 1
        m.d.comb += fetch_addr.eq(Mux(start, entry, Mux(redirect, target, i_pc1)))
        # I advances whenever the skid register is free: its word goes to D, or to the skid
        # register if D waits. D takes the skid register's word first.
        fetch_en = start | redirect | ~skid_valid
        imem_data = registered_read(m, imem, addr=Mux(cfg_mode, addr[:16], fetch_addr),
                                    en=cfg_mode | fetch_en, name="imem_data")
        with m.If(fetch_en):
            m.d.sync += [i_pc.eq(fetch_addr), i_pc1.eq(fetch_addr + 1),
                         i_valid.eq(start | redirect | (i_valid & ~squash))]
        with m.Elif(squash):
            m.d.sync += i_valid.eq(0)
        with m.If(~hold_d):
            m.d.sync += [
                ir.eq(Mux(skid_valid, skid_ir, imem_data)),
                d_pc.eq(Mux(skid_valid, skid_pc, i_pc)),
                d_valid.eq((skid_valid | i_valid) & ~squash),
                skid_valid.eq(0),
            ]
        with m.Else():
            with m.If(squash):
                m.d.sync += d_valid.eq(0)
            with m.If(~skid_valid):  # (I advances this cycle: keep its word)
                m.d.sync += [skid_ir.eq(imem_data), skid_pc.eq(i_pc),
                             skid_valid.eq(i_valid & ~squash)]
        with m.If(squash):
            m.d.sync += skid_valid.eq(0)

        # ---- configuration bus ---------------------------------------------------------------
        m.d.comb += [
            quiet.eq(~running & pipe_empty & vu.idle),
        ]
        # (registered: the tables' ports follow the bus from the cycle after the PE stopped,
        # and the bus may use them from then on)
        m.d.sync += cfg_mode.eq(~run & ~running)
        # Task state, one bit per task. One decoder serves the bus's task-table writes and
        # E's ACT/BLK/UNBLK (never in the same cycle: the bus writes only while quiet).
        tword = TaskWord(cfg.wdata[:TaskWord.as_shape().size])
        cfg_task = cfg_we & in_tasks
        task_sel = _onehot(m, Mux(cfg_mode, addr[:task_bits], E["imm"][:task_bits]), T,
                           "task_sel")
        start_clear = start & ~pick_wavelet  # an activation is consumed
        for t in range(T):
            cfg_t = cfg_task & task_sel[t]
            with m.If(cfg_t):
                m.d.sync += [t_valid[t].eq(tword.valid), t_blocked0[t].eq(tword.blocked)]
            with m.If(clear):
                m.d.sync += [blocked[t].eq(t_blocked0[t]), active[t].eq(0), control[t].eq(0)]
            with m.Elif(cfg_t):
                m.d.sync += blocked[t].eq(tword.blocked)
            with m.Elif(e_task & task_sel[t] & (EF["BLK"] | EF["UNBLK"])):
                m.d.sync += blocked[t].eq(EF["BLK"])
            with m.If(~clear):
                with m.If(start_clear & pick_onehot[t]):
                    m.d.sync += [active[t].eq(0), control[t].eq(0)]
                with m.Elif(e_task & task_sel[t] & EF["ACT"]):
                    m.d.sync += active[t].eq(1)
                # (last: a control wavelet arriving as its task's previous activation starts
                # is a new activation; the start read the previous payload)
                with m.If(ctl_arr & ctl_sel[t]):
                    m.d.sync += [active[t].eq(1), control[t].eq(1)]
        m.d.comb += [
            task_wr.addr.eq(addr[:task_bits]),
            task_wr.data.eq(tword),
            task_wr.en.eq(cfg_we & in_tasks),
            imem_wr.addr.eq(addr[:16]),
            imem_wr.data.eq(cfg.wdata),
            imem_wr.en.eq(cfg_we & in_imem),
            bank.host.addr.eq(addr),
            bank.host.wdata.eq(cfg.wdata),
            bank.host.we.eq(cfg_we & in_sram),
            bank.host.re.eq(cfg.re & in_sram & cfg_ok),
        ]
        m.d.comb += [
            filt.cfg_color.eq(addr[:5]),
            filt.cfg_wdata.eq(cfg.wdata),
            filt.cfg_range_we.eq(cfg_we & in_filters),
            filt.cfg_mode_we.eq(cfg_we & in_modes),
        ]
        with m.If(cfg.we & (addr == A.CTRL)):
            m.d.sync += run.eq(CtrlWord(cfg.wdata).run)
        with m.If(clear):
            m.d.sync += [
                halted.eq(0), errors.eq(0), running.eq(0),
                i_valid.eq(0), skid_valid.eq(0), d_valid.eq(0), E["valid"].eq(0), mm_busy.eq(0),
                redirect.eq(0),
            ]
            m.d.sync += [c.eq(0) for c in counters.values()]

        # Read data, one cycle after cfg.re: the block RAMs' read ports, or one registered
        # AND-OR of the table read ports and the registers.
        m.d.comb += rf_rd[3].addr.eq(addr[:3])
        status = Signal(StatusWord)
        m.d.comb += [status.running.eq(running), status.halted.eq(halted),
                     status.idle.eq(self.idle), status.errors.eq(errors)]
        ctrl_word = Signal(CtrlWord)
        m.d.comb += ctrl_word.run.eq(run)
        sources = [
            (in_tasks & cfg_ok, task_rd.data.as_value()),
            (in_dsds & cfg_ok & ~addr[0], cfg_port_w0.as_value()),
            (in_dsds & cfg_ok & addr[0], cfg_port_w1.as_value()),
            (in_regs, rf_rd[3].data),
            (in_filters & cfg_ok, filt.cfg_range),
            (in_modes & cfg_ok, filt.cfg_mode),
            (addr == A.STATUS, status.as_value()),
            (addr == A.CTRL, ctrl_word.as_value()),
            (addr == A.BUSY_CYCLES, counters["busy"]),
            (addr == A.MACS, counters["macs"]),
            (addr == A.RUN_CYCLES, counters["cycles"]),
            (addr == A.ELEMENTS, counters["elems"]),
        ]
        rsel = Signal(2)  # 0 registered word, 1 SRAM, 2 program memory
        rreg = Signal(32)
        with m.If(cfg.re):
            m.d.sync += [
                rsel.eq(Mux(in_sram & cfg_ok, 1, Mux(in_imem & cfg_ok, 2, 0))),
                rreg.eq(Cat(Cat((sel & v[i]) for sel, v in sources
                                if i < len(v)).any() for i in range(32))),
            ]
        m.d.comb += cfg.rdata.eq(Mux(rsel == 1, bank.host.rdata,
                                     Mux(rsel == 2, imem_data, rreg)))

        # ---- counters and status -------------------------------------------------------------
        with m.If(run & ~clear):
            m.d.sync += [
                counters["cycles"].eq(counters["cycles"] + 1),
                counters["busy"].eq(counters["busy"] + (running | ~vu.idle)),
                counters["macs"].eq(counters["macs"] + vu.mac),
                counters["elems"].eq(counters["elems"] + vu.issued),
            ]
        m.d.comb += [
            self.idle.eq(quiet & ~pick_valid & ~(run & ~halted & ready.any()) & ~ctl_arr
                         & ~filt.link_out.valid),
            self.halted.eq(halted),
            self.error.eq(errors.any()),
        ]
        return m
