"""Golden model of the processing element: an interpreter of the PE instruction set.

Written from ``docs/isa.md`` (not from the RTL). It runs the same binary — program words, task
table, DSD table, registers and SRAM image, loaded through the same configuration address map
(:class:`pe.isa.AddressMap`) — with numpy arithmetic from :mod:`sim.model.formats`, and is untimed:

* Sequential semantics: instructions of a task run in program order; a vector instruction
  completes element by element (element ``i`` reads its operands, then writes its result) before
  the next instruction. The RTL overlaps instructions but keeps these results bit for bit.
* Tasks run to completion. When no task runs, the picker takes the ready task with the lowest id:
  an activated task, or a valid data task whose colour has a wavelet waiting (the wavelet is
  popped and its data written to ``r7``). A vector instruction that needs a fabric-input wavelet
  that has not arrived yet suspends the PE until it arrives.
* Run-time faults (a vector operand reaching outside SRAM, unknown opcode, illegal operands,
  bad task id) set a sticky error flag and halt the PE. Faults are precise: the faulting
  instruction has no effect and everything before it has completed.
* Timing is not modelled; counters give elements and multiply-accumulates, not cycles.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from hdl.formats import Format
from pe import isa
from pe.isa import AddressMap, DsdKind, ErrorFlag, Op
from pe.params import PEParams
from sim.model import formats as F

__all__ = ["Dsd", "PEModel", "PEParams"]

_ONE = np.uint32(0x3F800000)
_NEG_ZERO = np.uint32(0x80000000)


@dataclass
class Dsd:
    """A decoded data structure descriptor."""

    kind: int = DsdKind.MEM
    fmt: int = Format.FP32
    base: int = 0
    length: int = 0
    stride: int = 0

    def words(self) -> tuple[int, int]:
        """The DSD's two table words (:func:`pe.isa.pack_dsd`)."""
        return isa.pack_dsd(self.kind, self.fmt, self.base & 0xFFFF, self.length & 0xFFFF,
                            self.stride)


class _Fault(Exception):
    def __init__(self, flag: ErrorFlag):
        self.flag = flag


class _Blocked(Exception):
    """A fabric-input operand has no wavelet yet."""


@dataclass
class _VectorProgress:
    op: Op
    dst: Dsd
    src0: Dsd
    src1: Dsd
    regs: tuple  # register values captured when the instruction started
    length: int
    done: int = 0
    acc: np.uint32 | None = None  # running register accumulator


class PEModel:
    """Instruction-set interpreter of one PE.

    Parameters
    ----------
    params : pe.params.PEParams
        Sizes (``in_depth`` does not matter here: the model's input queues are unbounded).

    Attributes
    ----------
    sram : np.ndarray[uint32] of shape (sram_words,)
    imem : np.ndarray[uint32] of shape (imem_words,)
    regs : list[int]
        r0..r7 as unsigned 32-bit integers.
    inbox : dict[int, deque[int]]
        Per colour, wavelet data waiting at the PE.
    outbox : list[tuple[int, int]]
        ``(colour, data)`` of every wavelet sent, in order.
    errors : ErrorFlag
    halted : bool
    macs, elements : int
        Multiply-accumulates (FMAC/IMAC elements) and vector elements executed.
    """

    def __init__(self, params: PEParams | None = None):
        self.p = params or PEParams()
        self.sram = np.zeros(self.p.sram_words, dtype=np.uint32)
        self.imem = np.zeros(self.p.imem_words, dtype=np.uint32)
        self.task_words = [0] * self.p.num_tasks
        self.dsd_words = [(0, 0)] * self.p.num_dsds
        self.regs = [0] * isa.NUM_REGS
        self.inbox: dict[int, deque[int]] = {c: deque() for c in range(self.p.num_colors)}
        self.outbox: list[tuple[int, int]] = []
        self.running = False
        self.reset_run_state()

    # ---- configuration bus (same address map as the RTL) ------------------------------------
    def reset_run_state(self) -> None:
        """CLEAR: errors, halted, counters, activations, the running task, the input queues."""
        for q in getattr(self, "inbox", {}).values():
            q.clear()
        self.errors = ErrorFlag(0)
        self.halted = False
        self.active = [False] * self.p.num_tasks
        self.blocked = [isa.unpack_task(w)[2] for w in self.task_words]
        self.macs = 0
        self.elements = 0
        self.pc: int | None = None  # None = no task running
        self.vector: _VectorProgress | None = None

    def cfg_write(self, addr: int, value: int) -> None:
        """Write one configuration word (see :class:`pe.isa.AddressMap`)."""
        A = AddressMap
        value &= 0xFFFF_FFFF
        if addr < A.CTRL and self.running:  # tables, SRAM and registers only while stopped
            self.errors |= ErrorFlag.CONFIG_BUSY
            return
        if A.SRAM <= addr < A.SRAM + self.p.sram_words:
            self.sram[addr - A.SRAM] = value
        elif A.IMEM <= addr < A.IMEM + self.p.imem_words:
            self.imem[addr - A.IMEM] = value
        elif A.TASKS <= addr < A.TASKS + self.p.num_tasks:
            t = addr - A.TASKS
            self.task_words[t] = value
            self.blocked[t] = isa.unpack_task(value)[2]
        elif A.DSDS <= addr < A.DSDS + 2 * self.p.num_dsds:
            d, half = divmod(addr - A.DSDS, 2)
            w = list(self.dsd_words[d])
            w[half] = value
            self.dsd_words[d] = tuple(w)
        elif A.REGS <= addr < A.REGS + isa.NUM_REGS:
            self.regs[addr - A.REGS] = value
        elif addr == A.CTRL:
            if value & 2:
                self.reset_run_state()
            self.running = bool(value & 1)

    def cfg_read(self, addr: int) -> int:
        """Read one configuration word (SRAM and tables read 0 while RUN is set)."""
        A = AddressMap
        if addr < A.REGS and self.running:
            self.errors |= ErrorFlag.CONFIG_BUSY
            return 0
        if A.SRAM <= addr < A.SRAM + self.p.sram_words:
            return int(self.sram[addr - A.SRAM])
        if A.IMEM <= addr < A.IMEM + self.p.imem_words:
            return int(self.imem[addr - A.IMEM])
        if A.TASKS <= addr < A.TASKS + self.p.num_tasks:
            return self.task_words[addr - A.TASKS]
        if A.DSDS <= addr < A.DSDS + 2 * self.p.num_dsds:
            d, half = divmod(addr - A.DSDS, 2)
            return self.dsd_words[d][half]
        if A.REGS <= addr < A.REGS + isa.NUM_REGS:
            return self.regs[addr - A.REGS]
        if addr == A.STATUS:
            return isa.pack_status(self.pc is not None, self.halted, self.idle, int(self.errors))
        if addr == A.MACS:
            return self.macs & 0xFFFF_FFFF
        if addr == A.ELEMENTS:
            return self.elements & 0xFFFF_FFFF
        return 0

    # ---- fabric ------------------------------------------------------------------------------
    def push_wavelet(self, color: int, data: int) -> None:
        """A wavelet of ``color`` arrives from the router's ramp."""
        if not 0 <= color < self.p.num_colors:
            raise ValueError(f"colour {color} is outside this PE's {self.p.num_colors} colours")
        self.inbox[color].append(data & 0xFFFF_FFFF)

    @property
    def idle(self) -> bool:
        """No task running or ready, no vector instruction pending."""
        return self.pc is None and self.vector is None and self._pick() is None

    # ---- execution ---------------------------------------------------------------------------
    def run(self, max_instructions: int = 1_000_000) -> bool:
        """Run until the PE is idle, halted or waiting for a wavelet.

        Returns
        -------
        bool
            Whether anything was executed.

        Raises
        ------
        RuntimeError
            If ``max_instructions`` are executed without stopping (a runaway loop).
        """
        progressed = False
        for _ in range(max_instructions):
            if not self.running or self.halted:
                return progressed
            try:
                if self.vector is not None:
                    self._vector_run()
                    progressed = True
                    continue
                if self.pc is None:
                    task = self._pick()
                    if task is None:
                        return progressed
                    self._dispatch(task)
                    progressed = True
                    continue
                self._step()
                progressed = True
            except _Blocked:
                return progressed
            except _Fault as fault:
                self.errors |= fault.flag
                self.halted = True
                self.pc = None
                self.vector = None
                return True
        raise RuntimeError(
            f"PE did not stop within {max_instructions} instructions (runaway loop?)")

    def _pick(self) -> int | None:
        if self.halted or not self.running:
            return None
        for t, word in enumerate(self.task_words):
            entry, valid, _ = isa.unpack_task(word)
            if not valid or self.blocked[t]:
                continue
            if self.active[t] or (t < self.p.num_colors and self.inbox[t]):
                return t
        return None

    def _dispatch(self, t: int) -> None:
        entry, _, _ = isa.unpack_task(self.task_words[t])
        if self.active[t]:
            self.active[t] = False
        else:
            self.regs[isa.WAVELET_REG] = self.inbox[t].popleft()
        self.pc = entry

    def _dsd(self, d: int) -> Dsd:
        if d >= self.p.num_dsds:
            raise _Fault(ErrorFlag.OPERANDS)
        return Dsd(*isa.unpack_dsd(*self.dsd_words[d]))

    def _set_dsd(self, d: int, dsd: Dsd) -> None:
        if d >= self.p.num_dsds:
            raise _Fault(ErrorFlag.OPERANDS)
        self.dsd_words[d] = dsd.words()

    def _task_id(self, t: int) -> int:
        if not 0 <= t < self.p.num_tasks:
            raise _Fault(ErrorFlag.TASK)
        return t

    def _step(self) -> None:
        pc = self.pc
        if not 0 <= pc < self.p.imem_words:
            raise _Fault(ErrorFlag.OPCODE)
        word = int(self.imem[pc])
        try:
            op = Op(word >> 26)
        except ValueError:
            raise _Fault(ErrorFlag.OPCODE) from None
        a, b, c = isa.field_a(word), isa.field_b(word), isa.field_c(word)
        imm = isa.field_imm(word)
        r = self.regs
        nxt = pc + 1
        if op in isa.VECTOR_OPS:
            self._vector_start(op, a, b, c)
        elif op == Op.LI:
            r[a & 7] = imm & 0xFFFF_FFFF
        elif op == Op.LIH:
            r[a & 7] = (r[a & 7] & 0xFFFF) | (isa.field_imm(word, signed=False) << 16)
        elif op == Op.ADDI:
            r[a & 7] = (r[b & 7] + imm) & 0xFFFF_FFFF
        elif op == Op.ADD:
            r[a & 7] = (r[b & 7] + r[c & 7]) & 0xFFFF_FFFF
        elif op == Op.SUB:
            r[a & 7] = (r[b & 7] - r[c & 7]) & 0xFFFF_FFFF
        elif op == Op.NOP:
            pass
        elif op == Op.BNZ:
            if r[b & 7] != 0:
                nxt = pc + imm
        elif op == Op.BZ:
            if r[b & 7] == 0:
                nxt = pc + imm
        elif op == Op.JMP:
            nxt = pc + imm
        elif op in (Op.DSETB, Op.DADDB, Op.DADDBI, Op.DSETL):
            dsd = self._dsd(a)
            if op == Op.DSETB:
                dsd.base = r[b & 7] & 0xFFFF
            elif op == Op.DADDB:
                dsd.base = (dsd.base + r[b & 7]) & 0xFFFF
            elif op == Op.DADDBI:
                dsd.base = (dsd.base + imm) & 0xFFFF
            else:
                dsd.length = r[b & 7] & 0xFFFF
            self._set_dsd(a, dsd)
        elif op == Op.ACT:
            self.active[self._task_id(isa.field_imm(word, signed=False))] = True
        elif op == Op.BLK:
            self.blocked[self._task_id(isa.field_imm(word, signed=False))] = True
        elif op == Op.UNBLK:
            self.blocked[self._task_id(isa.field_imm(word, signed=False))] = False
        elif op == Op.END:
            self.pc = None
            return
        elif op == Op.HALT:
            self.pc = None
            self.halted = True
            return
        self.pc = nxt & 0xFFFF

    # ---- vector instructions -------------------------------------------------------------------
    def _vector_start(self, op: Op, a: int, b: int, c: int) -> None:
        dst, src0 = self._dsd(a), self._dsd(b)
        src1 = self._dsd(c) if op in isa.TWO_SOURCE_OPS else Dsd(DsdKind.REG)
        check_operands(op, dst, src0, src1)
        fabric = [s for s in ((src0, src1) if op in isa.TWO_SOURCE_OPS else (src0,))
                  if s.kind == DsdKind.FABIN] + ([dst] if dst.kind == DsdKind.FABOUT else [])
        if any(s.base >= self.p.num_colors for s in fabric):
            raise _Fault(ErrorFlag.OPERANDS)
        length = vector_length(dst, src0, src1)
        if length:  # precise bounds fault: before any element (addresses are affine in i)
            for dsd in (dst, src0, src1) if op in isa.TWO_SOURCE_OPS else (dst, src0):
                if dsd.kind == DsdKind.MEM:
                    self._mem_index(dsd, 0)
                    self._mem_index(dsd, length - 1)
        v = _VectorProgress(op, dst, src0, src1, tuple(self.regs), length)
        if dst.kind == DsdKind.REG:
            v.acc = np.uint32(self.regs[dst.base & 7])
        self.vector = v
        self._vector_run()

    def _vector_run(self) -> None:
        v = self.vector
        while v.done < v.length:
            i = v.done
            self._element(v, i)
            v.done += 1
            self.elements += 1
            if v.op in isa.MAC_OPS:
                self.macs += 1
        if v.dst.kind == DsdKind.REG:
            self.regs[v.dst.base & 7] = int(v.acc)
        self.vector = None
        if self.pc is not None:
            self.pc = (self.pc + 1) & 0xFFFF

    def _mem_index(self, dsd: Dsd, i: int) -> tuple[int, int, int]:
        """(word address, element address, element bits) of element ``i``; faults outside SRAM."""
        bits = Format(dsd.fmt).bits
        elem = dsd.base + i * dsd.stride
        word = elem * bits // 32
        if elem < 0 or word >= self.p.sram_words:
            raise _Fault(ErrorFlag.BOUNDS)
        return word, elem, bits

    def _read(self, dsd: Dsd, i: int, regs: tuple, peek: bool = False) -> np.uint32:
        if dsd.kind == DsdKind.REG:
            raw = regs[dsd.base & 7]
        elif dsd.kind == DsdKind.FABIN:
            q = self.inbox[dsd.base % self.p.num_colors] if dsd.base < self.p.num_colors else None
            if q is None:
                raise _Fault(ErrorFlag.OPERANDS)
            if not q:
                raise _Blocked()
            raw = q[0] if peek else q.popleft()
        else:
            word, elem, bits = self._mem_index(dsd, i)
            lanes = 32 // bits
            raw = (int(self.sram[word]) >> ((elem % lanes) * bits)) & ((1 << bits) - 1)
        return np.uint32(F.widen(np.array([raw], dtype=np.uint32), dsd.fmt)[0])

    def _element(self, v: _VectorProgress, i: int) -> None:
        op, dst = v.op, v.dst
        # Fabric inputs: make sure every one is present before popping any.
        fabin = [d for d in ((v.src0, v.src1) if op in isa.TWO_SOURCE_OPS else (v.src0,))
                 if d.kind == DsdKind.FABIN]
        needed: dict[int, int] = {}
        for d in fabin:
            needed[d.base] = needed.get(d.base, 0) + 1
        for colour, n in needed.items():
            if len(self.inbox[colour]) < n:
                raise _Blocked()
        x = self._read(v.src0, i, v.regs)
        y = self._read(v.src1, i, v.regs) if op in isa.TWO_SOURCE_OPS else np.uint32(0)
        if op in isa.ACCUMULATING_OPS:
            acc = v.acc if dst.kind == DsdKind.REG else self._read(dst, i, v.regs)
        else:
            acc = None
        result = _compute(op, x, y, acc)
        if dst.kind == DsdKind.REG:
            v.acc = np.uint32(result)
        elif dst.kind == DsdKind.FABOUT:
            out = int(F.narrow(np.array([result], dtype=np.uint32), dst.fmt)[0])
            self.outbox.append((dst.base, out))
        else:
            word, elem, bits = self._mem_index(dst, i)
            out = int(F.narrow(np.array([result], dtype=np.uint32), dst.fmt)[0])
            lanes = 32 // bits
            shift = (elem % lanes) * bits
            mask = ((1 << bits) - 1) << shift
            self.sram[word] = (int(self.sram[word]) & ~mask & 0xFFFF_FFFF) | ((out << shift) & mask)


#: The arithmetic of each vector op on fp32 / int32 bit patterns: f(x, y), or f(x, y, acc) for
#: the multiply-accumulates (MOV copies x).
_BINARY = {Op.FADD: F.fadd, Op.FMUL: F.fmul, Op.FMAX: F.fmax,
           Op.IADD: F.iadd, Op.IMUL: F.imul, Op.IMAX: F.imax}
_ACCUMULATE = {Op.FMAC: F.fmac, Op.IMAC: F.imac}


def _compute(op: Op, x: np.uint32, y: np.uint32, acc: np.uint32 | None) -> int:
    if op == Op.MOV:
        return int(x)
    ax, ay = np.array([x], np.uint32), np.array([y], np.uint32)
    if op in _ACCUMULATE:
        return int(_ACCUMULATE[op](ax, ay, np.array([acc], np.uint32))[0])
    if op in _BINARY:
        return int(_BINARY[op](ax, ay)[0])
    raise AssertionError(op)


def vector_length(dst: Dsd, src0: Dsd, src1: Dsd) -> int:
    """Element count of a vector instruction: the length of the first non-register operand among
    dst, src0, src1 (1 if all are registers)."""
    for d in (dst, src0, src1):
        if d.kind != DsdKind.REG:
            return d.length
    return 1


def check_operands(op: Op, dst: Dsd, src0: Dsd, src1: Dsd) -> None:
    """Raise ``_Fault(OPERANDS)`` for an operand combination the PE cannot execute.

    The rules are those of :func:`operand_problem`, which the assembler reports with a message.
    """
    problem = operand_problem(op, dst, src0, src1)
    if problem:
        raise _Fault(ErrorFlag.OPERANDS)


def operand_problem(op: Op, dst: Dsd, src0: Dsd, src1: Dsd) -> str | None:
    """Why a vector instruction's operands are illegal, or ``None`` if they are fine."""
    srcs = [src0, src1] if op in isa.TWO_SOURCE_OPS else [src0]
    if dst.kind == DsdKind.FABIN:
        return "the destination cannot be a fabric input"
    if any(s.kind == DsdKind.FABOUT for s in srcs):
        return "a source cannot be a fabric output"
    if op in isa.ACCUMULATING_OPS and dst.kind not in (DsdKind.MEM, DsdKind.REG):
        return f"{op.name} accumulates into its destination, which must be memory or a register"
    reads = sum(s.kind == DsdKind.MEM for s in srcs)
    if op in isa.ACCUMULATING_OPS and dst.kind == DsdKind.MEM:
        reads += 1
    if reads > 2:
        return ("needs three SRAM reads per element, but the SRAM has two read ports: make one "
                "source a fabric input or a register")
    if dst.kind in (DsdKind.MEM, DsdKind.FABOUT) and dst.fmt not in isa.STORE_FORMATS:
        return (f"destination format {Format(dst.fmt).name} cannot be stored: use FP32, BF16, FP16 "
                "or INT32")
    fabin = [s.base for s in srcs if s.kind == DsdKind.FABIN]
    if len(fabin) == 2 and fabin[0] == fabin[1]:
        return "both sources read the same fabric-input colour"
    is_int = op in isa.INTEGER_OPS
    for s in srcs + ([dst] if dst.kind != DsdKind.REG else []):
        if s.kind in (DsdKind.MEM, DsdKind.FABIN, DsdKind.FABOUT) and op != Op.MOV:
            if Format(s.fmt).is_float == is_int:
                kind = "integer" if is_int else "floating-point"
                return (f"{op.name} is a {kind} operation but an operand has format "
                        f"{Format(s.fmt).name}")
    return None
