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
* Control wavelets (``ctrl = 1``) are not data: one that arrives activates the control task
  its :class:`hdl.wavelet.ControlWord` names (unless ``no_task``) and keeps its 16-bit payload
  for ``r7`` at that task's start; it never enters an input queue. A FABOUT DSD with ``ctrl``
  set sends every element as a control wavelet.
* Run-time faults (a vector operand reaching outside SRAM, unknown opcode, illegal operands,
  bad task id) set a sticky error flag and halt the PE. Faults are precise: the faulting
  instruction has no effect and everything before it has completed.
* Timing is not modelled; counters give elements and multiply-accumulates, not cycles.

A vector instruction runs in one of two ways with the same results, bit for bit:

* **whole-vector** (the fast path): every available element at once, as numpy array operations
  (numpy float32 rounds each operation as the PE does; FMAC stays a separate multiply and add).
  Chosen when the instruction starts, from its DSDs, if no element reads a memory byte that an
  earlier element of the same instruction writes and no two elements write the same element,
  and its destination is not a register accumulator (FMAC / IMAC into a register). Fabric inputs
  are consumed as far as they have arrived; the rest waits, as in the element loop. A memory
  operand that wraps (DSD ``period``) splits the elements into blocks at each period's end,
  run one after the other.
* **element at a time**: the reference interpreter, for everything else (and for all
  instructions with ``PEModel(element_loop=True)``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat

import numpy as np

from hdl.formats import Format
from hdl.wavelet import ControlWord
from pe import isa
from pe.isa import AddressMap, DsdKind, ErrorFlag, FilterMode, Op
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
    ctrl: int = 0
    period: int = 0  # MEM: wrap every `period` elements; FABIN: each wavelet `period` times

    def words(self) -> tuple[int, int]:
        """The DSD's two table words (:func:`pe.isa.pack_dsd`)."""
        return isa.pack_dsd(self.kind, self.fmt, self.base & 0xFFFF, self.length & 0xFFFF,
                            self.stride, self.ctrl, self.period)

    @property
    def wrap(self) -> int:
        """Elements after which a MEM DSD returns to its base (0: never)."""
        return self.period if self.kind == DsdKind.MEM else 0

    @property
    def repeat(self) -> int:
        """Consecutive elements that use one wavelet of a FABIN DSD (at least 1)."""
        return max(1, self.period) if self.kind == DsdKind.FABIN else 1

    def address(self, i: int) -> int:
        """Element address of a MEM DSD's element ``i`` (wrapping every :attr:`wrap`)."""
        return self.base + (i % self.wrap if self.wrap else i) * self.stride

    def reach(self, length: int) -> int:
        """Distinct elements an instruction of ``length`` elements reaches (its period's, if it
        wraps before the end): the bounds are those of elements 0 and ``reach - 1``."""
        return min(length, self.wrap or length)


class _Fault(Exception):
    def __init__(self, flag: ErrorFlag):
        self.flag = flag


class _Blocked(Exception):
    """A fabric-input operand has no wavelet yet."""


@dataclass(slots=True)
class _VectorProgress:
    op: Op
    dst: Dsd
    src0: Dsd
    src1: Dsd
    regs: tuple  # register values captured when the instruction started
    length: int
    done: int = 0
    acc: np.uint32 | None = None  # running register accumulator
    whole: bool = False  # run as whole-vector array operations (see the module docstring)
    fabin: tuple[int, ...] = ()  # fabric-input colours read per element
    held: dict | None = None  # a repeating fabric input's current wavelet, by colour


@dataclass(frozen=True)
class _VectorPlan:
    """A vector instruction's decoded, checked operands (see :meth:`PEModel._vector_plan`)."""

    dst: Dsd
    src0: Dsd
    src1: Dsd
    length: int
    whole: bool
    fabin: tuple[int, ...]


#: Plans a PE keeps (it forgets them all when it has this many).
_MAX_PLANS = 4096


@lru_cache(maxsize=1 << 14)
def _decode(word: int) -> tuple[Op | None, bool, int, int, int, int, int]:
    """An instruction word's (opcode or None if unknown, is-vector, a, b, c, signed imm,
    unsigned imm)."""
    try:
        op = Op(isa.decode(word)[0])
    except ValueError:
        return None, False, 0, 0, 0, 0, 0
    return (op, op in isa.VECTOR_OPS, isa.field_a(word), isa.field_b(word), isa.field_c(word),
            isa.field_imm(word), isa.field_imm(word, signed=False))


class PEModel:
    """Instruction-set interpreter of one PE.

    Parameters
    ----------
    params : pe.params.PEParams
        Sizes (``in_depth`` does not matter here: the model's input queues are unbounded).
    element_loop : bool
        Run every vector instruction element by element (the reference interpreter), never as
        whole-vector array operations. The results are the same; the tests compare the two.

    Attributes
    ----------
    sram : np.ndarray[uint32] of shape (sram_words,)
    imem : np.ndarray[uint32] of shape (imem_words,)
    regs : list[int]
        r0..r7 as unsigned 32-bit integers.
    inbox : dict[int, deque[int]]
        Per colour, wavelet data waiting at the PE.
    control : list[int | None]
        Per task, the payload of the control wavelet that activated it (``None``: no control
        activation pending).
    outbox : list[tuple[int, int, int]]
        ``(colour, data, ctrl)`` of every wavelet sent, in order.
    errors : ErrorFlag
    halted : bool
    macs, elements : int
        Multiply-accumulates (FMAC/IMAC elements) and vector elements executed.
    """

    def __init__(self, params: PEParams | None = None, *, element_loop: bool = False):
        self.p = params or PEParams()
        self.element_loop = element_loop
        self._plans: dict[tuple, _VectorPlan | ErrorFlag] = {}  # see _vector_plan
        self.sram = np.zeros(self.p.sram_words, dtype=np.uint32)
        self.imem = np.zeros(self.p.imem_words, dtype=np.uint32)
        self.task_words = [0] * self.p.num_tasks
        self.dsd_words = [(0, 0)] * self.p.num_dsds
        self.regs = [0] * isa.NUM_REGS
        #: Per colour, the input queue's filter words: (FilterWord, FilterModeWord) values.
        self.filters = [(0, 0)] * self.p.num_colors
        self.inbox: dict[int, deque[int]] = {c: deque() for c in range(self.p.num_colors)}
        self.outbox: list[tuple[int, int, int]] = []
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
        self.control: list[int | None] = [None] * self.p.num_tasks
        self.blocked = [isa.unpack_task(w)[2] for w in self.task_words]
        self.macs = 0
        self.elements = 0
        self.pc: int | None = None  # None = no task running
        self.vector: _VectorProgress | None = None

    def _is_filter(self, addr: int) -> bool:
        """``addr`` is a filter's bounds or mode word (a table: only while stopped)."""
        A, n = AddressMap, self.p.num_colors
        return A.FILTERS <= addr < A.FILTERS + n or A.FILTER_MODES <= addr < A.FILTER_MODES + n

    def cfg_write(self, addr: int, value: int) -> None:
        """Write one configuration word (see :class:`pe.isa.AddressMap`)."""
        A = AddressMap
        value &= 0xFFFF_FFFF
        in_filters = self._is_filter(addr)
        if (addr < A.CTRL or in_filters) and self.running:  # tables, SRAM, registers: stopped
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
        elif A.FILTERS <= addr < A.FILTERS + self.p.num_colors:
            c = addr - A.FILTERS
            self.filters[c] = (value, self.filters[c][1])
        elif A.FILTER_MODES <= addr < A.FILTER_MODES + self.p.num_colors:
            c = addr - A.FILTER_MODES
            self.filters[c] = (self.filters[c][0], value & 3)
        elif addr == A.CTRL:
            if value & 2:
                self.reset_run_state()
            self.running = bool(value & 1)

    def cfg_write_block(self, addr: int, values) -> None:
        """Write consecutive configuration words from ``addr``: the same as :meth:`cfg_write`
        of each in turn, with SRAM and program runs copied as arrays.

        Parameters
        ----------
        addr : int
            Address of the first word.
        values : sequence of int or np.ndarray
            The words (reduced to 32 bits).
        """
        A = AddressMap
        values = np.asarray(values)
        i, n = 0, len(values)
        while i < n:
            a = addr + i
            for base, size, array in ((A.SRAM, self.p.sram_words, self.sram),
                                      (A.IMEM, self.p.imem_words, self.imem)):
                if base <= a < base + size and not self.running:
                    k = min(n - i, base + size - a)
                    array[a - base:a - base + k] = values[i:i + k].astype(np.int64) & 0xFFFF_FFFF
                    i += k
                    break
            else:  # tables, registers, CTRL, or refused while running: word by word
                self.cfg_write(a, int(values[i]))
                i += 1

    def cfg_read(self, addr: int) -> int:
        """Read one configuration word (SRAM and tables read 0 while RUN is set)."""
        A = AddressMap
        in_filters = self._is_filter(addr)
        if (addr < A.REGS or in_filters) and self.running:
            self.errors |= ErrorFlag.CONFIG_BUSY
            return 0
        if A.FILTERS <= addr < A.FILTERS + self.p.num_colors:
            return self.filters[addr - A.FILTERS][0]
        if A.FILTER_MODES <= addr < A.FILTER_MODES + self.p.num_colors:
            return self.filters[addr - A.FILTER_MODES][1]
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
    def push_wavelet(self, color: int, data: int, ctrl: int = 0) -> None:
        """A wavelet of ``color`` arrives from the router's ramp.

        A data wavelet (``ctrl = 0``) joins its colour's input queue. A control wavelet
        activates the task its control word names with its payload pending for ``r7`` (a
        second one for the same task before it starts replaces the payload: activations
        coalesce, as ``act`` does); with ``no_task``, or a task beyond the table, it has no
        effect.

        Raises
        ------
        ValueError
            For a colour outside the PE's colours.
        """
        if not 0 <= color < self.p.num_colors:
            raise ValueError(f"colour {color} is outside this PE's {self.p.num_colors} colours")
        data &= 0xFFFF_FFFF
        if not ctrl:
            if self._passes(color, data):
                self.inbox[color].append(data)
            return
        word = ControlWord.from_bits(data)
        if not word.no_task and word.task < self.p.num_tasks:
            self.active[word.task] = True
            self.control[word.task] = word.payload

    def _passes(self, color: int, data: int) -> bool:
        """The filter of ``color``'s input queue keeps a data wavelet (docs/isa.md, "Input
        filters"): OFF keeps all, RANGE keeps an index (the upper 16 bits) in lo..hi, DROP
        keeps one outside lo..hi."""
        bounds, mode = self.filters[color]
        if mode == FilterMode.OFF:
            return True
        index = data >> 16
        inside = (bounds & 0xFFFF) <= index <= (bounds >> 16)
        if mode == FilterMode.RANGE:
            return inside
        if mode == FilterMode.DROP:
            return not inside
        return True  # mode 3: reserved, keeps every wavelet as OFF does

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
        active, blocked, inbox, colors = self.active, self.blocked, self.inbox, self.p.num_colors
        if not any(active) and not any(inbox.values()):
            return None  # no activation and no wavelet: nothing can be ready
        for t, word in enumerate(self.task_words):
            if not (active[t] or (t < colors and inbox[t])) or blocked[t]:
                continue
            if word >> 16 & 1:  # valid (pe.isa.unpack_task)
                return t
        return None

    def _dispatch(self, t: int) -> None:
        entry, _, _ = isa.unpack_task(self.task_words[t])
        if self.active[t]:
            self.active[t] = False
            if self.control[t] is not None:  # activated by a control wavelet
                self.regs[isa.WAVELET_REG] = self.control[t]
                self.control[t] = None
        else:
            self.regs[isa.WAVELET_REG] = self.inbox[t].popleft()
        self.pc = entry

    def _dsd(self, d: int) -> Dsd:
        if d >= self.p.num_dsds:
            raise _Fault(ErrorFlag.OPERANDS)
        return Dsd(*isa.unpack_dsd(*self.dsd_words[d]))

    def _task_id(self, t: int) -> int:
        if not 0 <= t < self.p.num_tasks:
            raise _Fault(ErrorFlag.TASK)
        return t

    def _step(self) -> None:
        pc = self.pc
        if not 0 <= pc < self.p.imem_words:
            raise _Fault(ErrorFlag.OPCODE)
        op, vector, a, b, c, imm, uimm = _decode(int(self.imem[pc]))
        if op is None:
            raise _Fault(ErrorFlag.OPCODE)
        r = self.regs
        nxt = pc + 1
        # Opcodes compared as plain ints (_LI is int(Op.LI)): an Op member costs a lookup.
        if vector:
            self._vector_start(op, a, b, c)
        elif op == _END:  # the most frequent scalar instructions first
            self.pc = None
            return
        elif op == _ADDI:
            r[a & 7] = (r[b & 7] + imm) & 0xFFFF_FFFF
        elif op == _BNZ:
            if r[b & 7] != 0:
                nxt = pc + imm
        elif op in _DSD_OPS:
            if a >= self.p.num_dsds:
                raise _Fault(ErrorFlag.OPERANDS)
            w0, w1 = self.dsd_words[a]
            base = w0 >> _W0_BASE.offset & _W0_BASE_MASK
            length = w0 >> _W0_LENGTH.offset & _W0_LENGTH_MASK
            if op == _DSETB:
                base = r[b & 7] & 0xFFFF
            elif op == _DADDB:
                base = (base + r[b & 7]) & 0xFFFF
            elif op == _DADDBI:
                base = (base + imm) & 0xFFFF
            elif op == _DINDEX:
                base = (uimm + (r[b & 7] >> 16)) & 0xFFFF
            else:
                length = r[b & 7] & 0xFFFF
            self.dsd_words[a] = _repack_dsd(base, length, w1)
        elif op == _LI:
            r[a & 7] = imm & 0xFFFF_FFFF
        elif op == _LIH:
            r[a & 7] = (r[a & 7] & 0xFFFF) | (uimm << 16)
        elif op == _ADD:
            r[a & 7] = (r[b & 7] + r[c & 7]) & 0xFFFF_FFFF
        elif op == _SUB:
            r[a & 7] = (r[b & 7] - r[c & 7]) & 0xFFFF_FFFF
        elif op == _NOP:
            pass
        elif op == _BZ:
            if r[b & 7] == 0:
                nxt = pc + imm
        elif op == _JMP:
            nxt = pc + imm
        elif op == _ACT:
            self.active[self._task_id(uimm)] = True
        elif op == _BLK:
            self.blocked[self._task_id(uimm)] = True
        elif op == _UNBLK:
            self.blocked[self._task_id(uimm)] = False
        elif op == _HALT:
            self.pc = None
            self.halted = True
            return
        self.pc = nxt & 0xFFFF

    # ---- vector instructions -------------------------------------------------------------------
    def _vector_start(self, op: Op, a: int, b: int, c: int) -> None:
        two = op in isa.TWO_SOURCE_OPS
        n = self.p.num_dsds
        words = self.dsd_words
        key = (op, words[a] if a < n else None, words[b] if b < n else None,
               (words[c] if c < n else None) if two else 0)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = self._vector_plan(op, a, b, c)
        if isinstance(plan, ErrorFlag):
            raise _Fault(plan)
        v = _VectorProgress(op, plan.dst, plan.src0, plan.src1, tuple(self.regs), plan.length, 0,
                            None, plan.whole, plan.fabin, {})
        if plan.dst.kind == _REG:
            v.acc = np.uint32(self.regs[plan.dst.base & 7])
        self.vector = v
        self._vector_run()

    def _vector_plan(self, op: Op, a: int, b: int, c: int) -> _VectorPlan | ErrorFlag:
        """Decode and check a vector instruction's operands (a pure function of the opcode,
        the DSD words and the PE's sizes, so :meth:`_vector_start` caches it): its plan, or the
        flag of the fault it raises before any element."""
        try:
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
                        self._mem_index(dsd, dsd.reach(length) - 1)
        except _Fault as fault:
            return fault.flag
        whole = not self.element_loop and whole_vector_safe(op, dst, src0, src1, length)
        return _VectorPlan(dst, src0, src1, length, whole,
                           tuple(s.base for s in fabric if s.kind == DsdKind.FABIN))

    def _vector_run(self) -> None:
        v = self.vector
        if v.whole:
            self._vector_whole(v)
        while v.done < v.length:
            i = v.done
            self._element(v, i)
            v.done += 1
            self.elements += 1
            if v.op in isa.MAC_OPS:
                self.macs += 1
        if v.dst.kind == _REG:
            self.regs[v.dst.base & 7] = int(v.acc)
        self.vector = None
        if self.pc is not None:
            self.pc = (self.pc + 1) & 0xFFFF

    def _vector_whole(self, v: _VectorProgress) -> None:
        """Run the elements whose fabric inputs have arrived as array operations, in blocks
        that no wrapping memory operand crosses the end of its period in; raise ``_Blocked``
        if the vector is not finished then (it resumes here)."""
        first = v.done
        n = v.length - first
        if n == 0:
            return
        srcs = (v.src0, v.src1) if v.op in isa.TWO_SOURCE_OPS else (v.src0,)
        for d in srcs:  # the operand rules give each colour at most one source
            if d.kind == DsdKind.FABIN:
                r = d.repeat
                popped = -(-first // r)  # wavelets taken so far
                n = min(n, (popped + len(self.inbox[d.base])) * r - first)
        if n == 0:
            raise _Blocked()
        wraps = [d.wrap for d in (v.dst,) + srcs if 0 < d.wrap < v.length]
        end = first + n
        while first < end:
            stop = min([end] + [(first // w + 1) * w for w in wraps])
            self._whole_block(v, first, stop - first)
            first = stop
        v.done = end
        self.elements += n
        if v.op in isa.MAC_OPS:
            self.macs += n
        if v.done < v.length:
            raise _Blocked()

    def _whole_block(self, v: _VectorProgress, first: int, n: int) -> None:
        """Elements ``first`` to ``first + n - 1`` as array operations (their fabric inputs
        have arrived; no memory operand wraps among them)."""
        op, dst = v.op, v.dst
        x = self._read_whole(v.src0, first, n, v)
        if op == _MOV:
            result = x
        elif op in _ACCUMULATE:
            y = self._read_whole(v.src1, first, n, v)
            result = _ACCUMULATE[op](x, y, self._read_whole(dst, first, n, v))
        else:
            result = _BINARY[op](x, self._read_whole(v.src1, first, n, v))
        if len(result) != n:  # register operands only: one value for every element
            result = np.broadcast_to(result, (n,))
        kind = dst.kind
        if kind == _REG:  # not accumulating (see whole_vector_safe): the last one wins
            v.acc = np.uint32(result[-1])
        else:
            out = result if _BITS[dst.fmt] == 32 else F.narrow(result, dst.fmt)  # 32: unchanged
            if kind == _FABOUT:
                self.outbox.extend(zip(repeat(dst.base), out.tolist(), repeat(dst.ctrl)))
            else:
                view, where = self._elements(dst, first, n)
                view[where] = out

    def _elements(self, dsd: Dsd, first: int, n: int) -> tuple[np.ndarray, slice | np.ndarray]:
        """SRAM seen as an array of ``dsd``'s elements (little-endian lanes: element ``e`` is
        lane ``e % lanes`` of word ``e // lanes``, lowest first) and where elements ``first``
        to ``first + n - 1`` are in it (a slice, or an index array for stride 0)."""
        bits = _BITS[dsd.fmt]
        view = self.sram if bits == 32 else self.sram.view(_UINT[bits])
        stride = dsd.stride
        start = dsd.address(first)
        if stride == 0:
            return view, np.full(n, start, dtype=np.int64)
        stop = start + n * stride
        return view, slice(start, stop if stop >= 0 else None, stride)

    def _read_whole(self, dsd: Dsd, first: int, n: int, v: _VectorProgress) -> np.ndarray:
        """Operand ``dsd`` of elements ``first`` to ``first + n - 1``, widened (a register: one
        value; a fabric input: popped from its queue, each wavelet for ``dsd.repeat``
        elements). FP32 and INT32 widen to themselves: the array is a copy, so the SRAM is
        never aliased."""
        kind = dsd.kind
        if kind == _MEM:
            view, where = self._elements(dsd, first, n)
            raw = view[where]
            return raw.copy() if _BITS[dsd.fmt] == 32 else F.widen(raw, dsd.fmt)
        if kind == _REG:
            raw = np.array([v.regs[dsd.base & 7]], dtype=np.uint32)
        else:
            q, r = self.inbox[dsd.base], dsd.repeat
            if r == 1:
                raw = np.array([q.popleft() for _ in range(n)], dtype=np.uint32)
            else:  # the held wavelet (if element `first` is not a period's first), then new ones
                popped = -(-first // r)
                new = (first + n - 1) // r + 1 - popped
                words = [v.held.get(dsd.base, 0)] + [q.popleft() for _ in range(new)]
                v.held[dsd.base] = words[-1]
                index = np.arange(first, first + n) // r - (popped - 1)
                raw = np.array(words, dtype=np.uint32)[index]
        return raw if _BITS[dsd.fmt] == 32 else F.widen(raw, dsd.fmt)

    def _mem_index(self, dsd: Dsd, i: int) -> tuple[int, int, int]:
        """(word address, element address, element bits) of element ``i``; faults outside SRAM."""
        bits = _BITS[dsd.fmt]
        elem = dsd.address(i)
        word = elem * bits // 32
        if elem < 0 or word >= self.p.sram_words:
            raise _Fault(ErrorFlag.BOUNDS)
        return word, elem, bits

    def _read(self, dsd: Dsd, i: int, v: _VectorProgress) -> np.uint32:
        if dsd.kind == DsdKind.REG:
            raw = v.regs[dsd.base & 7]
        elif dsd.kind == DsdKind.FABIN:
            q = self.inbox[dsd.base % self.p.num_colors] if dsd.base < self.p.num_colors else None
            if q is None:
                raise _Fault(ErrorFlag.OPERANDS)
            if i % dsd.repeat:  # the wavelet of the period's first element
                raw = v.held[dsd.base]
            else:
                if not q:
                    raise _Blocked()
                raw = v.held[dsd.base] = q.popleft()
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
            if i % d.repeat == 0:
                needed[d.base] = needed.get(d.base, 0) + 1
        for colour, n in needed.items():
            if len(self.inbox[colour]) < n:
                raise _Blocked()
        x = self._read(v.src0, i, v)
        y = self._read(v.src1, i, v) if op in isa.TWO_SOURCE_OPS else np.uint32(0)
        if op in isa.ACCUMULATING_OPS:
            acc = v.acc if dst.kind == DsdKind.REG else self._read(dst, i, v)
        else:
            acc = None
        result = _compute(op, x, y, acc)
        if dst.kind == DsdKind.REG:
            v.acc = np.uint32(result)
        elif dst.kind == DsdKind.FABOUT:
            out = int(F.narrow(np.array([result], dtype=np.uint32), dst.fmt)[0])
            self.outbox.append((dst.base, out, dst.ctrl))
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
_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32}
_BITS = tuple(Format(code).bits for code in range(len(Format)))  # element bits by format code
_MEM, _FABOUT, _REG = int(DsdKind.MEM), int(DsdKind.FABOUT), int(DsdKind.REG)
(_LI, _LIH, _ADDI, _ADD, _SUB, _NOP, _BNZ, _BZ, _JMP, _DSETB, _DADDB, _DADDBI, _DSETL, _ACT, _BLK,
 _UNBLK, _END, _HALT, _MOV) = (int(o) for o in (
    Op.LI, Op.LIH, Op.ADDI, Op.ADD, Op.SUB, Op.NOP, Op.BNZ, Op.BZ, Op.JMP, Op.DSETB, Op.DADDB,
    Op.DADDBI, Op.DSETL, Op.ACT, Op.BLK, Op.UNBLK, Op.END, Op.HALT, Op.MOV))
_DINDEX = int(Op.DINDEX)
_DSD_OPS = frozenset({_DSETB, _DADDB, _DADDBI, _DSETL, _DINDEX})


# DSD word fields, from their layouts in pe.isa (the DSD update instructions run per element
# of a kernel, so the golden model shifts and masks rather than building views).
_W0_BASE, _W0_LENGTH = (isa.DsdWord0.as_shape()[n] for n in ("base", "length"))
_W0_BASE_MASK, _W0_LENGTH_MASK = (1 << _W0_BASE.width) - 1, (1 << _W0_LENGTH.width) - 1
_W1_KEPT = sum(((1 << f.width) - 1) << f.offset for _, f in isa.DsdWord1)


def _repack_dsd(base: int, length: int, w1: int) -> tuple[int, int]:
    """A DSD's table words with a new base and length (16-bit): what :meth:`Dsd.words` gives
    for the DSD decoded from ``(w0, w1)`` with those fields changed (word 1 keeps stride,
    format, ctrl, kind and period, the fields of :data:`pe.isa.DsdWord1`)."""
    return (base << _W0_BASE.offset | length << _W0_LENGTH.offset, w1 & _W1_KEPT)


def _compute(op: Op, x: np.uint32, y: np.uint32, acc: np.uint32 | None) -> int:
    if op == Op.MOV:
        return int(x)
    ax, ay = np.array([x], np.uint32), np.array([y], np.uint32)
    if op in _ACCUMULATE:
        return int(_ACCUMULATE[op](ax, ay, np.array([acc], np.uint32))[0])
    if op in _BINARY:
        return int(_BINARY[op](ax, ay)[0])
    raise AssertionError(op)


def whole_vector_safe(op: Op, dst: Dsd, src0: Dsd, src1: Dsd, length: int) -> bool:
    """Whether a vector instruction (with legal, in-bounds operands) gives the same results run
    as whole-vector array operations as element by element.

    It does unless: the destination is a register accumulator (FMAC / IMAC into a register: a
    sequential reduction); two elements write the same memory element (a stride-0
    destination); an element reads a memory byte that an earlier element writes (overlapping
    source and destination ranges in the wrong order or stride); or the host is big-endian
    (the whole-vector path views SRAM words as little-endian lanes). With a memory operand that
    wraps (``period`` below the length), the elements run in blocks within each period, and
    every memory source must be the destination itself or share no byte with it.
    """
    if dst.kind == DsdKind.REG and op in isa.ACCUMULATING_OPS:
        return False
    srcs = [src0, src1] if op in isa.TWO_SOURCE_OPS else [src0]
    mem = [d for d in srcs + [dst] if d.kind == DsdKind.MEM]
    if not np.little_endian and any(_BITS[d.fmt] < 32 for d in mem):
        return False
    if dst.kind != DsdKind.MEM or length <= 1:
        return True
    if dst.stride == 0:
        return False
    srcs = [s for s in srcs if s.kind == DsdKind.MEM]
    if any(0 < d.wrap < length for d in srcs + [dst]):
        # Run in blocks within every period (elements of a block are distinct; a block
        # reads what earlier blocks wrote): safe if every memory source is the destination
        # itself, element for element, or shares no byte with it.
        same = (dst.base, dst.stride, dst.fmt, dst.period)
        return all((s.base, s.stride, s.fmt, s.period) == same or _disjoint(s, dst, length)
                   for s in srcs)
    return not any(_reads_earlier_write(s, dst, length) for s in srcs)


def _disjoint(a: Dsd, b: Dsd, length: int) -> bool:
    """Whether two memory DSDs' elements of an instruction of ``length`` share no byte."""
    *_, a_lo, a_end = _byte_span(a, length)
    *_, b_lo, b_end = _byte_span(b, length)
    return a_end <= b_lo or b_end <= a_lo


def _byte_span(dsd: Dsd, length: int) -> tuple[int, int, int, int, int]:
    """(first byte, step in bytes, element bytes, lowest byte, end byte) of the elements of a
    memory DSD that an instruction of ``length`` elements reaches."""
    size = _BITS[dsd.fmt] // 8
    first, step = dsd.base * size, dsd.stride * size
    last = first + (dsd.reach(length) - 1) * step
    return first, step, size, min(first, last), max(first, last) + size


def _reads_earlier_write(src: Dsd, dst: Dsd, length: int) -> bool:
    """Whether some element ``i`` of ``src`` overlaps a byte that element ``j < i`` of ``dst``
    writes (``dst`` has a non-zero stride, so its elements are distinct; neither wraps within
    ``length``)."""
    s0, s_step, s_size, s_lo, s_end = _byte_span(src, length)
    d0, d_step, d_size, d_lo, d_end = _byte_span(dst, length)
    if s_end <= d_lo or d_end <= s_lo:
        return False  # disjoint ranges
    if (s0, s_step, s_size) == (d0, d_step, d_size):
        return False  # element i reads exactly what element i writes, after nobody else
    lo = min(s_lo, d_lo)
    index = np.arange(length, dtype=np.int64)
    writer = np.full(max(s_end, d_end) - lo, length, dtype=np.int64)  # which element writes
    written = (d0 - lo + index * d_step)[:, None] + np.arange(d_size)
    writer[written.ravel()] = np.repeat(index, d_size)
    read = (s0 - lo + index * s_step)[:, None] + np.arange(s_size)
    return bool((writer[read].min(axis=1) < index).any())


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
