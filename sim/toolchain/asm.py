"""Assembler for the PE instruction set (``docs/isa.md``).

Text in, a :class:`PEImage` out: program words, task table, DSD table, initial registers and SRAM
contents, ready to load through the configuration path of the RTL or into the golden model.

Syntax (one statement per line; ``;`` or ``#`` start a comment)::

    .dsd  y    mem    fp32  base=0 len=8 stride=1   ; memory vector (element addresses)
    .dsd  w    mem    bf16  base=32 len=8           ; stride defaults to 1
    .dsd  x    reg    fp32  r7                      ; a register as a scalar operand
    .dsd  in   fabin  fp32  color=2 len=8           ; fabric input
    .dsd  out  fabout fp32  color=3 len=8           ; fabric output
    .dsd  cw   fabout int32 color=3 len=1 ctrl      ; its elements leave as control wavelets
    .dsd  acc  mem    fp32  base=0 len=64 wrap=16   ; element i at base + (i mod 16)
    .dsd  xs   fabin  fp32  color=2 len=64 repeat=8 ; each wavelet for 8 elements
    .task 2  on_x                                   ; task 2 (= colour 2's data task) at on_x
    .task 9  reduce blocked                         ; a local task, initially blocked
    .reg  r1 16                                     ; initial register value (int or float)
    .data 32 bf16 1.0 -2.5 0.125                    ; SRAM contents from element address 32
    .filter 2 range 0 63                            ; colour 2 keeps indices 0..63 only
    .filter 5 drop 0 0xFFFF                         ; colour 5 drops every data wavelet
    on_x:
        fmac  y, w, x                               ; y += w * r7
        daddbi w, 8
        addi  r1, r1, -1
        bnz   r1, done
        act   reduce                                ; a task by number or by entry label
    done:
        end

Numbers are decimal or ``0x`` hex; a number with a ``.``, ``e``, ``inf`` or ``nan`` is a float
(rounded to the target format). ``ldi rD, VALUE`` loads any 32-bit value (one or two
instructions).

Errors raise :class:`AsmError` with the line number and what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from hdl.formats import Format
from pe.isa import (
    MAX_DSDS,
    MAX_PERIOD,
    NUM_REGS,
    TWO_SOURCE_OPS,
    VECTOR_OPS,
    AddressMap,
    DsdKind,
    FilterMode,
    FilterModeWord,
    FilterWord,
    IForm,
    Op,
    encode,
    pack_dsd,
    pack_task,
)
from sim.model import formats as F
from sim.model.pe import Dsd, PEParams, operand_problem

__all__ = ["AsmError", "PEImage", "assemble", "encode_values"]

#: The branch immediate's field (patched into a branch once its label is known).
_IMM = IForm["imm"]
_IMM_MASK = (1 << _IMM.width) - 1


class AsmError(ValueError):
    """An assembly error; the message names the line and the problem."""


@dataclass
class PEImage:
    """Everything loaded into one PE before it runs.

    Attributes
    ----------
    program : list[int]
        Instruction words from program address 0.
    tasks : dict[int, int]
        Task-table words by task id.
    dsds : dict[int, tuple[int, int]]
        DSD-table word pairs by DSD number.
    regs : dict[int, int]
        Initial register values.
    sram : dict[int, int]
        Initial SRAM words by word address.
    labels : dict[str, int]
        Program labels (for listings and debugging).
    dsd_names : dict[str, int]
        DSD numbers by name.
    filters : dict[int, tuple[int, int]]
        Input-queue filters by colour: ``(FilterWord, FilterModeWord)`` values (colours not
        listed keep every wavelet).
    """

    program: list[int] = field(default_factory=list)
    tasks: dict[int, int] = field(default_factory=dict)
    dsds: dict[int, tuple[int, int]] = field(default_factory=dict)
    regs: dict[int, int] = field(default_factory=dict)
    sram: dict[int, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    dsd_names: dict[str, int] = field(default_factory=dict)
    filters: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add_words(self, word_addr: int, words, params: PEParams | None = None) -> None:
        """Add SRAM contents: 32-bit ``words`` from ``word_addr``.

        Raises
        ------
        ValueError
            If the words do not fit in the SRAM of ``params`` (when given).
        """
        words = np.asarray(words, dtype=np.uint32).ravel()
        if params is not None and (word_addr < 0 or word_addr + len(words) > params.sram_words):
            raise ValueError(
                f"{len(words)} words at SRAM address {word_addr} do not fit in "
                f"{params.sram_words} words of SRAM"
            )
        for i, w in enumerate(words.tolist()):
            self.sram[word_addr + i] = w

    def sram_extent(self) -> int:
        """One past the highest SRAM word used (0 if none)."""
        return max(self.sram) + 1 if self.sram else 0

    def config_blocks(self) -> list[tuple[int, list[int]]]:
        """Configuration writes as ``(start address, words)`` blocks of consecutive addresses,
        in the order SRAM, program, DSDs, tasks, registers, filters (CTRL is the loader's
        business)."""
        blocks: list[tuple[int, list[int]]] = []
        blocks += _runs({AddressMap.SRAM + a: w for a, w in self.sram.items()})
        if self.program:
            blocks.append((AddressMap.IMEM, list(self.program)))
        dsd_words = {}
        for d, (w0, w1) in self.dsds.items():
            dsd_words[AddressMap.DSDS + 2 * d] = w0
            dsd_words[AddressMap.DSDS + 2 * d + 1] = w1
        blocks += _runs(dsd_words)
        blocks += _runs({AddressMap.TASKS + t: w for t, w in self.tasks.items()})
        blocks += _runs({AddressMap.REGS + r: v for r, v in self.regs.items()})
        blocks += _runs({AddressMap.FILTERS + c: b for c, (b, _) in self.filters.items()})
        blocks += _runs({AddressMap.FILTER_MODES + c: m for c, (_, m) in self.filters.items()})
        return blocks


def _runs(words: dict[int, int]) -> list[tuple[int, list[int]]]:
    blocks: list[tuple[int, list[int]]] = []
    for addr in sorted(words):
        if blocks and blocks[-1][0] + len(blocks[-1][1]) == addr:
            blocks[-1][1].append(words[addr])
        else:
            blocks.append((addr, [words[addr]]))
    return blocks


_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+|inf|nan)$", re.I)


def _is_float_literal(tok: str) -> bool:
    return bool(_FLOAT_RE.match(tok))


def encode_values(values, fmt: Format) -> np.ndarray:
    """Encode numbers (floats or ints) as element bit patterns of ``fmt`` (uint32 array).

    Floats are rounded to nearest even; integers must fit the integer format.

    Raises
    ------
    ValueError
        If an integer does not fit the format.
    """
    fmt = Format(fmt)
    if fmt.is_float:
        f32 = np.asarray(values, dtype=np.float32)
        bits = f32.view(np.uint32)
        return np.asarray(F.narrow(bits, fmt), dtype=np.uint32) if fmt != Format.FP32 \
            else bits.astype(np.uint32)
    ints = np.asarray(values, dtype=np.int64)
    lo, hi = -(1 << (fmt.bits - 1)), (1 << (fmt.bits - 1)) - 1
    if ints.size and (ints.min() < lo or ints.max() > hi):
        raise ValueError(f"values outside {fmt.name} range {lo}..{hi}")
    return (ints & ((1 << fmt.bits) - 1)).astype(np.uint32)


def _pack_elements(elements: np.ndarray, elem_addr: int, fmt: Format,
                   sram: dict[int, int]) -> None:
    bits = fmt.bits
    lanes = 32 // bits
    mask = (1 << bits) - 1
    for i, e in enumerate(elements.tolist()):
        addr = elem_addr + i
        word, lane = divmod(addr, lanes)
        shift = lane * bits
        old = sram.get(word, 0)
        sram[word] = (old & ~(mask << shift) & 0xFFFF_FFFF) | ((int(e) & mask) << shift)


_MNEMONICS = {op.name.lower(): op for op in Op}
_PSEUDO = {"ldi"}
_KINDS = {"mem": DsdKind.MEM, "fabin": DsdKind.FABIN, "fabout": DsdKind.FABOUT,
          "reg": DsdKind.REG}


class _Assembler:
    def __init__(self, text: str, params: PEParams):
        self.text = text
        self.p = params
        self.image = PEImage()
        self.dsds: dict[str, tuple[int, Dsd]] = {}
        self.task_labels: dict[str, int] = {}  # entry label -> task id
        self.lineno = 0

    def error(self, message: str) -> AsmError:
        return AsmError(f"line {self.lineno}: {message}")

    # ---- operand parsing ---------------------------------------------------------------------
    def number(self, tok: str, what: str = "number") -> int:
        try:
            return int(tok, 0)
        except ValueError:
            raise self.error(f"expected {what}, got {tok!r}") from None

    def reg(self, tok: str) -> int:
        m = re.fullmatch(r"r(\d+)", tok.lower())
        if not m or int(m.group(1)) >= NUM_REGS:
            raise self.error(f"expected a register r0..r{NUM_REGS - 1}, got {tok!r}")
        return int(m.group(1))

    def dsd(self, tok: str) -> tuple[int, Dsd]:
        if tok in self.dsds:
            return self.dsds[tok]
        known = ", ".join(self.dsds) or "none declared"
        raise self.error(f"unknown DSD {tok!r} (declared: {known}); declare it with .dsd first")

    def imm(self, tok: str, signed: bool = True) -> int:
        v = self.number(tok, "an immediate")
        lo, hi = (-(1 << 15), (1 << 15) - 1) if signed else (0, (1 << 16) - 1)
        if not lo <= v <= hi:
            raise self.error(f"immediate {v} is outside {lo}..{hi}")
        return v

    def value32(self, tok: str) -> int:
        if _is_float_literal(tok):
            return int(np.array([float(tok)], dtype=np.float32).view(np.uint32)[0])
        v = self.number(tok, "a 32-bit value")
        if not -(1 << 31) <= v < 1 << 32:
            raise self.error(f"value {v} does not fit in 32 bits")
        return v & 0xFFFF_FFFF

    # ---- directives --------------------------------------------------------------------------
    def directive(self, name: str, args: list[str]) -> None:
        if name == ".dsd":
            self.dsd_directive(args)
        elif name == ".task":
            if len(args) not in (2, 3) or (len(args) == 3 and args[2] != "blocked"):
                raise self.error(".task takes: ID ENTRY_LABEL [blocked]")
            t = self.number(args[0], "a task id")
            if not 0 <= t < self.p.num_tasks:
                raise self.error(f"task id {t} is outside 0..{self.p.num_tasks - 1}")
            if t in self.pending_tasks:
                raise self.error(f"task {t} is declared twice")
            self.pending_tasks[t] = (args[1], len(args) == 3, self.lineno)
            self.task_labels[args[1]] = t
        elif name == ".reg":
            if len(args) != 2:
                raise self.error(".reg takes: rN VALUE")
            self.image.regs[self.reg(args[0])] = self.value32(args[1])
        elif name == ".data":
            if len(args) < 3:
                raise self.error(".data takes: ELEMENT_ADDRESS FORMAT VALUE...")
            addr = self.number(args[0], "an element address")
            fmt = self.format(args[1])
            values = [float(v) if _is_float_literal(v) else self.number(v, "a value")
                      for v in args[2:]]
            try:
                elements = encode_values(values, fmt)
            except ValueError as exc:
                raise self.error(str(exc)) from None
            end_word = ((addr + len(values)) * fmt.bits + 31) // 32
            if addr < 0 or end_word > self.p.sram_words:
                raise self.error(
                    f".data of {len(values)} {fmt.name} elements at element {addr} ends at word "
                    f"{end_word}, beyond the SRAM of {self.p.sram_words} words")
            _pack_elements(elements, addr, fmt, self.image.sram)
        elif name == ".filter":
            self.filter_directive(args)
        else:
            raise self.error(f"unknown directive {name!r} (known: .dsd .task .reg .data "
                             f".filter)")

    def filter_directive(self, args: list[str]) -> None:
        modes = {"range": FilterMode.RANGE, "drop": FilterMode.DROP, "off": FilterMode.OFF}
        if len(args) != 4 or args[1].lower() not in modes:
            raise self.error(".filter takes: COLOUR range|drop|off LO HI (index bounds, "
                             "inclusive, 0..65535)")
        colour = self.number(args[0], "a colour")
        if not 0 <= colour < self.p.num_colors:
            raise self.error(f"colour {colour} is outside 0..{self.p.num_colors - 1}")
        if colour in self.image.filters:
            raise self.error(f"colour {colour} has two .filter lines")
        lo, hi = (self.imm(v, signed=False) for v in args[2:])
        if lo > hi:
            raise self.error(f".filter bounds {lo}..{hi}: lo must not exceed hi")
        self.image.filters[colour] = (FilterWord.const({"lo": lo, "hi": hi}).as_bits(),
                                      FilterModeWord.const({"mode": modes[args[1].lower()]})
                                      .as_bits())

    def format(self, tok: str) -> Format:
        try:
            return Format.from_name(tok)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def dsd_directive(self, args: list[str]) -> None:
        if len(args) < 3:
            raise self.error(".dsd takes: NAME KIND FORMAT [key=value ...]")
        name, kind_tok, fmt_tok = args[:3]
        if name in self.dsds:
            raise self.error(f"DSD {name!r} is declared twice")
        if kind_tok.lower() not in _KINDS:
            raise self.error(f"unknown DSD kind {kind_tok!r} (known: mem fabin fabout reg)")
        kind = _KINDS[kind_tok.lower()]
        fmt = self.format(fmt_tok)
        keys: dict[str, int] = {}
        ctrl = 0
        for item in args[3:]:
            if item.lower() == "ctrl":
                if kind != DsdKind.FABOUT:
                    raise self.error(f"DSD {name!r}: only a fabout DSD can send control "
                                     f"wavelets (ctrl)")
                ctrl = 1
                continue
            if kind == DsdKind.REG and "=" not in item:
                keys["reg"] = self.reg(item)
                continue
            if "=" not in item:
                raise self.error(f"expected key=value in .dsd, got {item!r}")
            k, v = item.split("=", 1)
            if k not in ("base", "len", "stride", "color", "reg", "wrap", "repeat"):
                raise self.error(f"unknown .dsd key {k!r} (known: base len stride color reg "
                                 f"wrap repeat)")
            keys[k] = self.reg(v) if k == "reg" else self.number(v, k)
        period_key = {DsdKind.MEM: "wrap", DsdKind.FABIN: "repeat"}.get(kind)
        for k in ("wrap", "repeat"):
            if k in keys and k != period_key:
                raise self.error(f"DSD {name!r}: {k}= is for "
                                 f"{'mem' if k == 'wrap' else 'fabin'} DSDs only")
        period = keys.get(period_key, 0) if period_key else 0
        if not 0 <= period <= MAX_PERIOD:
            raise self.error(f"DSD {name!r}: {period_key}={period} is outside 0..{MAX_PERIOD}")
        if kind == DsdKind.MEM:
            base, length, stride = keys.get("base", 0), keys.get("len", 0), keys.get("stride", 1)
            if length > 0:
                bits = fmt.bits
                vector = Dsd(kind, fmt, base, length, stride, period=period)
                for i in (0, vector.reach(length) - 1):
                    elem = vector.address(i)
                    if elem < 0 or elem * bits // 32 >= self.p.sram_words:
                        raise self.error(
                            f"DSD {name!r}: element {i} at element address {elem} is outside the "
                            f"SRAM of {self.p.sram_words} words")
        elif kind in (DsdKind.FABIN, DsdKind.FABOUT):
            if "color" not in keys:
                raise self.error(f"DSD {name!r}: fabric DSDs need color=N")
            base, length, stride = keys["color"], keys.get("len", 0), 0
            if not 0 <= base < self.p.num_colors:
                raise self.error(
                    f"DSD {name!r}: colour {base} is outside 0..{self.p.num_colors - 1}")
        else:
            if "reg" not in keys:
                raise self.error(f"DSD {name!r}: register DSDs name a register, e.g. r7")
            base, length, stride = keys["reg"], 1, 0
        if not 0 <= length < 1 << 16:
            raise self.error(f"DSD {name!r}: length {length} is outside 0..65535")
        number = len(self.dsds)
        if number >= min(self.p.num_dsds, MAX_DSDS):
            raise self.error(f"too many DSDs: this PE has {self.p.num_dsds}")
        dsd = Dsd(kind, fmt, base, length, stride, ctrl, period)
        try:
            self.image.dsds[number] = pack_dsd(kind, fmt, base, length, stride, ctrl, period)
        except ValueError as exc:
            raise self.error(f"DSD {name!r}: {exc}") from None
        self.dsds[name] = (number, dsd)
        self.image.dsd_names[name] = number

    # ---- instructions ------------------------------------------------------------------------
    def instruction(self, mnem: str, ops: list[str], pc: int) -> list[int]:
        mnem = mnem.lower()
        if mnem == "ldi":
            self.arity(mnem, ops, 2)
            rd, value = self.reg(ops[0]), self.value32(ops[1])
            low, high = value & 0xFFFF, value >> 16
            sext = low - (1 << 16) if low & 0x8000 else low
            words = [encode(Op.LI, rd, imm=sext)]
            if (sext & 0xFFFF_FFFF) != value:
                words.append(encode(Op.LIH, rd, imm=high))
            return words
        if mnem not in _MNEMONICS:
            raise self.error(f"unknown mnemonic {mnem!r}; known: "
                             f"{', '.join(sorted(list(_MNEMONICS) + list(_PSEUDO)))}")
        op = _MNEMONICS[mnem]
        if op in VECTOR_OPS:
            n = 3 if op in TWO_SOURCE_OPS else 2
            self.arity(mnem, ops, n)
            (da, dst), (db, src0) = self.dsd(ops[0]), self.dsd(ops[1])
            dc, src1 = self.dsd(ops[2]) if n == 3 else (0, Dsd(DsdKind.REG))
            problem = operand_problem(op, dst, src0, src1)
            if problem:
                raise self.error(f"{mnem} {', '.join(ops)}: {problem}")
            return [encode(op, da, db, dc)]
        if op in (Op.LI, Op.LIH):
            self.arity(mnem, ops, 2)
            return [encode(op, self.reg(ops[0]), imm=self.imm(ops[1], signed=op == Op.LI))]
        if op == Op.ADDI:
            self.arity(mnem, ops, 3)
            return [encode(op, self.reg(ops[0]), self.reg(ops[1]), imm=self.imm(ops[2]))]
        if op in (Op.ADD, Op.SUB):
            self.arity(mnem, ops, 3)
            return [encode(op, self.reg(ops[0]), self.reg(ops[1]), self.reg(ops[2]))]
        if op in (Op.NOP, Op.END, Op.HALT):
            self.arity(mnem, ops, 0)
            return [encode(op)]
        if op in (Op.BNZ, Op.BZ):
            self.arity(mnem, ops, 2)
            self.fixups.append((len(self.words), ops[1], self.lineno, pc))
            return [encode(op, 0, self.reg(ops[0]))]
        if op == Op.JMP:
            self.arity(mnem, ops, 1)
            self.fixups.append((len(self.words), ops[0], self.lineno, pc))
            return [encode(op)]
        if op in (Op.DSETB, Op.DADDB, Op.DSETL):
            self.arity(mnem, ops, 2)
            return [encode(op, self.dsd(ops[0])[0], self.reg(ops[1]))]
        if op == Op.DADDBI:
            self.arity(mnem, ops, 2)
            return [encode(op, self.dsd(ops[0])[0], imm=self.imm(ops[1]))]
        if op == Op.DINDEX:
            self.arity(mnem, ops, 3)
            return [encode(op, self.dsd(ops[0])[0], self.reg(ops[1]),
                           imm=self.imm(ops[2], signed=False))]
        if op in (Op.ACT, Op.BLK, Op.UNBLK):
            self.arity(mnem, ops, 1)
            self.task_refs.append((len(self.words), op, ops[0], self.lineno))
            return [encode(op)]
        raise AssertionError(op)

    def arity(self, mnem: str, ops: list[str], n: int) -> None:
        if len(ops) != n:
            raise self.error(f"{mnem} takes {n} operand(s), got {len(ops)}")

    def run(self) -> PEImage:
        self.words: list[int] = []
        self.fixups: list[tuple[int, str, int, int]] = []
        self.task_refs: list[tuple[int, Op, str, int]] = []
        self.pending_tasks: dict[int, tuple[str, bool, int]] = {}
        labels = self.image.labels
        for lineno, raw in enumerate(self.text.splitlines(), start=1):
            self.lineno = lineno
            line = re.split(r"[;#]", raw, maxsplit=1)[0].strip()
            while line:
                m = re.match(r"^([A-Za-z_]\w*):\s*(.*)$", line)
                if not m:
                    break
                if m.group(1) in labels:
                    raise self.error(f"label {m.group(1)!r} is defined twice")
                labels[m.group(1)] = len(self.words)
                line = m.group(2).strip()
            if not line:
                continue
            head, _, rest = line.partition(" ")
            args = [a for a in re.split(r"[,\s]+", rest.strip()) if a]
            if head.startswith("."):
                self.directive(head.lower(), args)
            else:
                self.words.extend(self.instruction(head, args, len(self.words)))
        for index, target, lineno, pc in self.fixups:
            self.lineno = lineno
            if target not in labels:
                raise self.error(f"undefined label {target!r}")
            offset = labels[target] - pc
            if not -(1 << 15) <= offset < 1 << 15:
                raise self.error(f"branch to {target!r} is too far ({offset} words)")
            self.words[index] |= (offset & _IMM_MASK) << _IMM.offset
        for t, (label, blocked, lineno) in self.pending_tasks.items():
            self.lineno = lineno
            if label not in labels:
                raise self.error(f"task {t}: undefined entry label {label!r}")
            self.image.tasks[t] = pack_task(labels[label], True, blocked)
        for index, _op, target, lineno in self.task_refs:
            self.lineno = lineno
            if target in self.task_labels:
                t = self.task_labels[target]
            else:
                t = self.number(target, "a task id or a task's entry label")
            if not 0 <= t < self.p.num_tasks:
                raise self.error(f"task id {t} is outside 0..{self.p.num_tasks - 1}")
            self.words[index] |= t
        if len(self.words) > self.p.imem_words:
            raise AsmError(
                f"the program is {len(self.words)} words long but the PE's program memory holds "
                f"{self.p.imem_words} words; shorten it or build the PE with imem_words >= "
                f"{len(self.words)}")
        self.image.program = self.words
        return self.image


def assemble(text: str, params: PEParams | None = None) -> PEImage:
    """Assemble PE program text into a :class:`PEImage`.

    Parameters
    ----------
    text : str
        Assembly source (see the module docstring).
    params : PEParams, optional
        Sizes of the target PE (for the fit checks); defaults to :class:`PEParams()`.

    Raises
    ------
    AsmError
        For any error, with the line number and a hint.
    """
    return _Assembler(text, params or PEParams()).run()
