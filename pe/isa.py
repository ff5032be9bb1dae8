"""The PE instruction set: opcodes, the packed words and the configuration address map.

This module is the machine-readable half of ``docs/isa.md``; the RTL (:mod:`pe.pe`,
:mod:`pe.vector`), the assembler (:mod:`sim.toolchain.asm`) and the golden interpreter
(:mod:`sim.model.pe`) all read it. It holds numbers and layouts only, no behaviour.

Every packed word is one :mod:`amaranth.lib.data` layout, used by the RTL as a signal shape and
by Python to pack (``Layout.const({...}).as_bits()``) and parse (``Layout.from_bits(word)``):
:class:`Instruction` (the union of :data:`IForm` and :data:`RForm`), :class:`DsdWord0`,
:data:`DsdWord1`, :class:`TaskWord`, :data:`StatusWord` and :data:`CtrlWord`. The functions
:func:`encode`, :func:`pack_dsd`, :func:`pack_task` (and their inverses) are range-checking
wrappers of them.

Instruction word (32 bits)::

    [31:26] opcode   [25:22] a   [21:18] b   [17:14] c   [15:0] imm (signed unless noted)

``a``/``b``/``c`` name a scalar register (r0-r7, low 3 bits) or a DSD (0-15); ``c`` and ``imm``
are never used by the same instruction.
"""

import enum
import functools

from amaranth.hdl import signed
from amaranth.lib import data

from .params import MAX_DSDS

__all__ = [
    "Op",
    "DsdKind",
    "VECTOR_OPS",
    "NUM_REGS",
    "WAVELET_REG",
    "MAX_DSDS",
    "MAX_PERIOD",
    "Instruction",
    "IForm",
    "RForm",
    "DsdWord0",
    "DsdWord1",
    "TaskWord",
    "StatusWord",
    "CtrlWord",
    "FilterMode",
    "FilterWord",
    "FilterModeWord",
    "encode",
    "decode",
    "field_a",
    "field_b",
    "field_c",
    "field_imm",
    "pack_dsd",
    "unpack_dsd",
    "pack_task",
    "unpack_task",
    "pack_status",
    "AddressMap",
    "ErrorFlag",
    "STORE_FORMATS",
]

NUM_REGS = 8
#: A data task finds the data of the wavelet that triggered it in this register.
WAVELET_REG = 7


class Op(enum.IntEnum):
    """Opcodes (bits [31:26])."""

    # 0x00 is deliberately illegal: running into zeroed program memory raises the opcode error.
    LI = 0x01      # ra = sext(imm)
    LIH = 0x02     # ra[31:16] = imm (low half kept)
    ADDI = 0x03    # ra = rb + sext(imm)
    ADD = 0x04     # ra = rb + rc
    SUB = 0x05     # ra = rb - rc
    NOP = 0x07
    BNZ = 0x08     # if rb != 0: pc += imm  (relative to this instruction)
    BZ = 0x09      # if rb == 0: pc += imm
    JMP = 0x0A     # pc += imm
    DSETB = 0x11   # dsd[a].base = rb
    DADDB = 0x12   # dsd[a].base += rb
    DADDBI = 0x13  # dsd[a].base += sext(imm)
    DSETL = 0x14   # dsd[a].length = rb
    DINDEX = 0x15  # dsd[a].base = imm + rb[31:16] (imm unsigned; a sparse wavelet's index)
    ACT = 0x18     # activate task imm
    BLK = 0x19     # block task imm
    UNBLK = 0x1A   # unblock task imm
    END = 0x1B     # end the running task
    HALT = 0x1C    # stop the PE (no more tasks) and raise the halted status
    # Vector instructions: a = dst DSD, b = src0 DSD, c = src1 DSD.
    MOV = 0x20     # dst = convert(src0)
    FADD = 0x21    # dst = src0 + src1
    FMUL = 0x22    # dst = src0 * src1
    FMAC = 0x23    # dst = dst + src0 * src1 (round(round(src0*src1) + dst))
    FMAX = 0x24    # dst = max(src0, src1)
    IADD = 0x28    # dst = src0 + src1 (int32, wrapping)
    IMUL = 0x29    # dst = src0 * src1 (low 32 bits)
    IMAC = 0x2A    # dst = dst + src0 * src1 (int32, wrapping)
    IMAX = 0x2B    # dst = max(src0, src1) (signed int32; ReLU of an int32 accumulation)


VECTOR_OPS = frozenset({Op.MOV, Op.FADD, Op.FMUL, Op.FMAC, Op.FMAX, Op.IADD, Op.IMUL, Op.IMAC,
                        Op.IMAX})
#: Vector operations that read their destination (accumulate).
ACCUMULATING_OPS = frozenset({Op.FMAC, Op.IMAC})
#: Vector operations that read src1.
TWO_SOURCE_OPS = VECTOR_OPS - {Op.MOV}
INTEGER_OPS = frozenset({Op.IADD, Op.IMUL, Op.IMAC, Op.IMAX})
#: Operations counted as multiply-accumulates by the MAC counter.
MAC_OPS = frozenset({Op.FMAC, Op.IMAC})


class DsdKind(enum.IntEnum):
    """Data structure descriptor kinds."""

    MEM = 0     # memory vector: base (element address), length, stride (elements), format
    FABIN = 1   # fabric input: colour, length; one element per wavelet
    FABOUT = 2  # fabric output: colour, length; one wavelet per element
    REG = 3     # scalar register: base = register number; the same value for every element


#: Formats a vector instruction may store (memory or fabric destination); see hdl.formats.Format.
STORE_FORMATS = frozenset({0, 1, 2, 7})  # FP32, BF16, FP16, INT32


def _word(**fields) -> data.FlexibleLayout:
    """A 32-bit layout from ``name=(shape, offset)`` pairs (fields at fixed bit offsets)."""
    return data.FlexibleLayout(32, {name: data.Field(shape, offset)
                                    for name, (shape, offset) in fields.items()})


#: Instruction word, immediate form (scalar instructions): ``imm[15:0] | b[21:18] | a[25:22] |
#: opcode[31:26]`` (bits [17:16] zero). ``imm`` is 16 raw bits; an instruction reads it signed
#: or unsigned (see :class:`Op`).
IForm = _word(imm=(16, 0), b=(4, 18), a=(4, 22), opcode=(6, 26))


#: Instruction word, register form (vector instructions): ``c[17:14] | b | a | opcode``; bits
#: [13:0] are zero.
RForm = _word(c=(4, 14), b=(4, 18), a=(4, 22), opcode=(6, 26))


class Instruction(data.Union):
    """One 32-bit instruction word, as the union of its two forms, :data:`IForm` and
    :data:`RForm` (``c`` and ``imm`` overlap: an instruction uses one or the other). ``a``,
    ``b`` and ``opcode`` are at the same bits in both forms."""

    i: IForm
    r: RForm


class DsdWord0(data.Struct):
    """DSD configuration word 0: ``base[15:0] | length[31:16]``."""

    base: 16
    length: 16


class TaskWord(data.Struct):
    """Task-table word: ``entry[15:0] | valid[16] | blocked[17]`` (blocked after loading or
    CLEAR)."""

    entry: 16
    valid: 1
    blocked: 1


#: DSD configuration word 1: ``stride[15:0]`` (signed, elements) ``| fmt[18:16] | ctrl[19] |
#: kind[21:20] | period[31:22]``; ``ctrl`` (FABOUT only): every element leaves as a control
#: wavelet. ``period`` (0 = none) makes a multi-dimensional access of one instruction, as the
#: WSE's ``mem4d`` DSDs and the Cerebras SDK's tensor accesses do: a MEM DSD *wraps*, element
#: ``i`` at ``base + (i mod period) * stride``; a FABIN DSD *repeats*, each wavelet used for
#: ``period`` consecutive elements; other kinds ignore it (``docs/isa.md``, "DSDs").
DsdWord1 = _word(stride=(signed(16), 0), fmt=(3, 16), ctrl=(1, 19), kind=(2, 20),
                 period=(10, 22))
#: Largest DSD ``period`` (:data:`DsdWord1`).
MAX_PERIOD = (1 << 10) - 1


class FilterMode(enum.IntEnum):
    """What an input queue's filter does with a data wavelet (:data:`FilterWord`)."""

    OFF = 0    # keep every wavelet
    RANGE = 1  # keep a wavelet whose index is in lo..hi, drop the others (a range filter)
    DROP = 2   # drop a wavelet whose index is in lo..hi, keep the others (a drop filter)


#: An input queue's filter (configuration address ``AddressMap.FILTERS + colour``):
#: ``lo[15:0] | hi[31:16]`` (inclusive bounds on a data wavelet's index, its upper 16 bits:
#: :class:`hdl.wavelet.SparseWord`) ``| mode`` (:class:`FilterMode`, in a second word
#: ``AddressMap.FILTER_MODES + colour``: a range word and its mode are written separately).
FilterWord = _word(lo=(16, 0), hi=(16, 16))
#: The mode word of a filter (``AddressMap.FILTER_MODES + colour``).
FilterModeWord = _word(mode=(2, 0))


#: The STATUS register (configuration address ``AddressMap.STATUS``).
StatusWord = _word(running=(1, 0), halted=(1, 1), idle=(1, 2), errors=(8, 8))

#: The CTRL register (configuration address ``AddressMap.CTRL``, write): ``run`` starts taking
#: tasks (clear: stop taking them); ``clear`` clears errors, halted, activations, counters, the
#: running task and the queues.
CtrlWord = _word(run=(1, 0), clear=(1, 1))


def _fits(name: str, value: int, lo: int, hi: int, what: str) -> int:
    if not isinstance(value, int) or not lo <= value < hi:
        raise ValueError(f"{name} {value} does not fit in {what}")
    return value


def encode(op: int, a: int = 0, b: int = 0, c: int = 0, imm: int = 0) -> int:
    """Encode an :class:`Instruction` word. ``imm`` is a signed or unsigned 16-bit value.

    Raises
    ------
    ValueError
        If a field does not fit, or both ``c`` and ``imm`` are given.
    """
    for name, v in (("a", a), ("b", b), ("c", c)):
        if not 0 <= v < 16:
            raise ValueError(f"field {name}={v} does not fit in 4 bits")
    if not -(1 << 15) <= imm < 1 << 16:
        raise ValueError(f"immediate {imm} does not fit in 16 bits")
    if c and imm:
        raise ValueError("an instruction cannot use both field c and an immediate")
    if c:
        form = {"r": {"opcode": int(op), "a": a, "b": b, "c": c}}
    else:
        form = {"i": {"opcode": int(op), "a": a, "b": b, "imm": imm & 0xFFFF}}
    return Instruction.const(form).as_bits()


@functools.lru_cache(maxsize=4096)
def decode(word: int) -> tuple[int, int, int, int, int]:
    """The fields of an instruction word: ``(opcode, a, b, c, imm)``, ``imm`` unsigned."""
    ins = Instruction.from_bits(word)
    return ins.i.opcode, ins.i.a, ins.i.b, ins.r.c, ins.i.imm


def field_a(word: int) -> int:
    """Field ``a`` of an instruction word."""
    return decode(word)[1]


def field_b(word: int) -> int:
    """Field ``b`` of an instruction word."""
    return decode(word)[2]


def field_c(word: int) -> int:
    """Field ``c`` of an instruction word (register form)."""
    return decode(word)[3]


def field_imm(word: int, signed: bool = True) -> int:
    """The 16-bit immediate of an instruction word, sign-extended unless ``signed=False``."""
    imm = decode(word)[4]
    return imm - (1 << 16) if signed and imm & 0x8000 else imm


def pack_dsd(kind: int, fmt: int, base: int, length: int, stride: int = 0,
             ctrl: int = 0, period: int = 0) -> tuple[int, int]:
    """Pack a DSD into its two configuration words (:class:`DsdWord0`, :data:`DsdWord1`).

    For a fabric DSD ``base`` is the colour; for a register DSD, the register. ``ctrl`` (0 or
    1) makes a FABOUT DSD send control wavelets (other kinds ignore it). ``period`` (0 ..
    :data:`MAX_PERIOD` elements, 0 = none): a MEM DSD wraps to ``base`` every ``period``
    elements, a FABIN DSD uses each wavelet for ``period`` elements (other kinds ignore it).

    Raises
    ------
    ValueError
        If a field is out of range.
    """
    _fits("DSD base", base, 0, 1 << 16, "16 bits")
    _fits("DSD length", length, 0, 1 << 16, "16 bits (max 65535 elements)")
    _fits("DSD stride", stride, -(1 << 15), 1 << 15, "a signed 16-bit field")
    _fits("DSD ctrl", ctrl, 0, 2, "one bit")
    _fits("DSD period", period, 0, MAX_PERIOD + 1, "10 bits")
    if not (0 <= fmt < 8 and 0 <= kind < 4):
        raise ValueError(f"bad DSD kind {kind} or format {fmt}")
    w0 = DsdWord0.const({"base": base, "length": length}).as_bits()
    w1 = DsdWord1.const({"stride": stride, "fmt": fmt, "ctrl": ctrl, "kind": kind,
                         "period": period}).as_bits()
    return w0, w1


@functools.lru_cache(maxsize=4096)
def unpack_dsd(w0: int, w1: int) -> tuple[int, int, int, int, int, int, int]:
    """Inverse of :func:`pack_dsd`: ``(kind, fmt, base, length, stride, ctrl, period)``."""
    d0, d1 = DsdWord0.from_bits(w0 & 0xFFFF_FFFF), DsdWord1.from_bits(w1 & 0xFFFF_FFFF)
    return d1.kind, d1.fmt, d0.base, d0.length, d1.stride, d1.ctrl, d1.period


def pack_task(entry: int, valid: bool = True, blocked: bool = False) -> int:
    """Pack a :class:`TaskWord`.

    Raises
    ------
    ValueError
        If ``entry`` does not fit in 16 bits.
    """
    _fits("task entry", entry, 0, 1 << 16, "16 bits")
    return TaskWord.const({"entry": entry, "valid": int(valid),
                           "blocked": int(blocked)}).as_bits()


@functools.lru_cache(maxsize=4096)
def unpack_task(word: int) -> tuple[int, bool, bool]:
    """Inverse of :func:`pack_task`: ``(entry, valid, blocked)``."""
    t = TaskWord.from_bits(word & ((1 << TaskWord.as_shape().size) - 1))  # bits above: ignored
    return t.entry, bool(t.valid), bool(t.blocked)


def pack_status(running: bool, halted: bool, idle: bool, errors: int) -> int:
    """Pack a :data:`StatusWord` (``errors``: :class:`ErrorFlag` bits)."""
    return StatusWord.const({"running": int(running), "halted": int(halted), "idle": int(idle),
                             "errors": int(errors)}).as_bits()


class ErrorFlag(enum.IntFlag):
    """Sticky run-time error flags (STATUS bits [15:8], shifted down here)."""

    BOUNDS = 1        # a memory DSD element fell outside SRAM
    OPCODE = 2        # unknown opcode
    OPERANDS = 4      # illegal operand combination (e.g. three memory reads, fabric-in as dst)
    CONFIG_BUSY = 8   # configuration access to SRAM/program/tables while RUN was set
    TASK = 16         # ACT/BLK/UNBLK of a task id beyond the task table


class AddressMap:
    """Word addresses of the PE's configuration bus (18 bits)."""

    ADDR_WIDTH = 18
    SRAM = 0x00000      # + word
    IMEM = 0x10000      # + word
    TASKS = 0x20000     # + task id
    DSDS = 0x20100      # + 2 * dsd + (0 | 1)
    REGS = 0x20200      # + register
    CTRL = 0x20300      # write: bit0 RUN, bit1 CLEAR (errors, halted, counters, activations)
    STATUS = 0x20301    # read: bit0 task running, bit1 halted, bit2 idle, [15:8] ErrorFlag
    BUSY_CYCLES = 0x20302
    MACS = 0x20303
    RUN_CYCLES = 0x20304
    ELEMENTS = 0x20305
    FILTERS = 0x20400       # + colour: FilterWord (lo | hi)
    FILTER_MODES = 0x20500  # + colour: FilterModeWord

    #: :data:`CtrlWord` values.
    CTRL_RUN = CtrlWord.const({"run": 1}).as_bits()
    CTRL_CLEAR = CtrlWord.const({"clear": 1}).as_bits()
    #: :data:`StatusWord` bits, as masks (and the position of its error flags).
    STATUS_RUNNING = StatusWord.const({"running": 1}).as_bits()
    STATUS_HALTED = StatusWord.const({"halted": 1}).as_bits()
    STATUS_IDLE = StatusWord.const({"idle": 1}).as_bits()
    ERROR_SHIFT = StatusWord["errors"].offset
    #: The error flags' field of a STATUS word, as a mask.
    STATUS_ERRORS = ((1 << StatusWord["errors"].width) - 1) << StatusWord["errors"].offset
