"""The PE instruction set: encodings, DSD layout and the configuration address map.

This module is the machine-readable half of ``docs/isa.md``; the RTL decoder (:mod:`pe.pe`), the
assembler (:mod:`sim.asm`) and the golden interpreter (:mod:`sim.pe_model`) all read it. It holds
numbers only, no behaviour.

Instruction word (32 bits)::

    [31:26] opcode   [25:22] a   [21:18] b   [17:14] c   [15:0] imm (signed unless noted)

``a``/``b``/``c`` name a scalar register (r0-r7, low 3 bits) or a DSD (0-15); ``c`` and ``imm``
are never used by the same instruction.
"""

from __future__ import annotations

import enum

__all__ = [
    "Op",
    "DsdKind",
    "VECTOR_OPS",
    "NUM_REGS",
    "WAVELET_REG",
    "MAX_DSDS",
    "encode",
    "field_a",
    "field_b",
    "field_c",
    "field_imm",
    "pack_dsd",
    "unpack_dsd",
    "pack_task",
    "unpack_task",
    "AddressMap",
    "ErrorFlag",
    "STORE_FORMATS",
]

NUM_REGS = 8
#: A data task finds the data of the wavelet that triggered it in this register.
WAVELET_REG = 7
MAX_DSDS = 16


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


def encode(op: int, a: int = 0, b: int = 0, c: int = 0, imm: int = 0) -> int:
    """Encode an instruction word. ``imm`` is a signed or unsigned 16-bit value.

    Raises
    ------
    ValueError
        If a field does not fit.
    """
    for name, v, width in (("a", a, 4), ("b", b, 4), ("c", c, 4)):
        if not 0 <= v < 1 << width:
            raise ValueError(f"field {name}={v} does not fit in {width} bits")
    if not -(1 << 15) <= imm < 1 << 16:
        raise ValueError(f"immediate {imm} does not fit in 16 bits")
    if c and imm:
        raise ValueError("an instruction cannot use both field c and an immediate")
    return (int(op) << 26) | (a << 22) | (b << 18) | (c << 14) | (imm & 0xFFFF)


def field_a(word: int) -> int:
    return (word >> 22) & 0xF


def field_b(word: int) -> int:
    return (word >> 18) & 0xF


def field_c(word: int) -> int:
    return (word >> 14) & 0xF


def field_imm(word: int, signed: bool = True) -> int:
    imm = word & 0xFFFF
    return imm - (1 << 16) if signed and imm & 0x8000 else imm


def pack_dsd(kind: int, fmt: int, base: int, length: int, stride: int = 0) -> tuple[int, int]:
    """Pack a DSD into its two configuration words.

    Word 0 is ``base[15:0] | length[31:16]``; word 1 is ``stride[15:0] (signed) | fmt[18:16] |
    kind[21:20]``. For a fabric DSD ``base`` is the colour; for a register DSD, the register.

    Raises
    ------
    ValueError
        If a field is out of range.
    """
    if not 0 <= base < 1 << 16:
        raise ValueError(f"DSD base {base} does not fit in 16 bits")
    if not 0 <= length < 1 << 16:
        raise ValueError(f"DSD length {length} does not fit in 16 bits (max 65535 elements)")
    if not -(1 << 15) <= stride < 1 << 15:
        raise ValueError(f"DSD stride {stride} does not fit in a signed 16-bit field")
    if not 0 <= fmt < 8 or not 0 <= kind < 4:
        raise ValueError(f"bad DSD kind {kind} or format {fmt}")
    return base | (length << 16), (stride & 0xFFFF) | (fmt << 16) | (kind << 20)


def unpack_dsd(w0: int, w1: int) -> tuple[int, int, int, int, int]:
    """Inverse of :func:`pack_dsd`: ``(kind, fmt, base, length, stride)``."""
    stride = w1 & 0xFFFF
    if stride & 0x8000:
        stride -= 1 << 16
    return (w1 >> 20) & 3, (w1 >> 16) & 7, w0 & 0xFFFF, (w0 >> 16) & 0xFFFF, stride


def pack_task(entry: int, valid: bool = True, blocked: bool = False) -> int:
    """Task-table word: ``entry[15:0] | valid << 16 | blocked << 17``."""
    if not 0 <= entry < 1 << 16:
        raise ValueError(f"task entry {entry} does not fit in 16 bits")
    return entry | (int(valid) << 16) | (int(blocked) << 17)


def unpack_task(word: int) -> tuple[int, bool, bool]:
    """Inverse of :func:`pack_task`: ``(entry, valid, blocked)``."""
    return word & 0xFFFF, bool(word >> 16 & 1), bool(word >> 17 & 1)


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

    STATUS_RUNNING = 1
    STATUS_HALTED = 2
    STATUS_IDLE = 4
    ERROR_SHIFT = 8
