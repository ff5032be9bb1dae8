"""The golden PE's whole-vector path against its element-at-a-time interpreter, bit for bit.

Random vector programs (every format, strides of both signs and zero, memory operands that
overlap, register and fabric operands, fabric inputs that arrive in random chunks so vectors
suspend and resume) run on ``PEModel()`` and on ``PEModel(element_loop=True)``; after every
``run`` the two must have the same SRAM, registers, outbox, status, counters, program counter,
vector progress and input queues.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_pe_fuzz import random_sram

from hdl.formats import Format
from pe import isa
from pe.isa import AddressMap, DsdKind, Op, encode, pack_task
from sim.model import pe as pe_model
from sim.model.pe import Dsd, PEModel, PEParams, operand_problem, whole_vector_safe

PARAMS = PEParams(sram_words=64, imem_words=64, num_colors=4, num_tasks=6, num_dsds=16)
FLOAT_OPS = [Op.MOV, Op.FADD, Op.FMUL, Op.FMAC, Op.FMAX]
INT_OPS = [Op.MOV, Op.IADD, Op.IMUL, Op.IMAC, Op.IMAX]
STORE = [Format.FP32, Format.BF16, Format.FP16, Format.INT32]
FLOATS = [Format.FP32, Format.BF16, Format.FP16, Format.E4M3, Format.E5M2]
INTS = [Format.INT8, Format.INT16, Format.INT32]
#: Special values in the 16- and 8-bit lanes of a word (subnormals, infinities, NaNs).
LANE_SPECIALS = np.array([0x00010001, 0x80018001, 0x7C007C00, 0x7F807F80, 0x7FC1FF81, 0x01010101,
                          0x7F7F8080], dtype=np.uint32)
BATCHES = 8
PROGRAMS_PER_BATCH = 40


def random_words(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random SRAM / wavelet words (those of the RTL fuzzer), some of them two 16-bit values or
    special 16-bit lanes."""
    values = random_sram(rng, n)
    pick = rng.random(n) < 0.1
    values[pick] = rng.choice(LANE_SPECIALS, pick.sum())
    halves = rng.random(n) < 0.15
    lo = (rng.standard_normal(halves.sum()).astype(np.float32).view(np.uint32) >> 16)
    hi = (rng.standard_normal(halves.sum()).astype(np.float32).view(np.uint32) >> 16)
    values[halves] = lo | (hi << 16)
    return values


def random_mem_dsd(rng: np.random.Generator) -> Dsd:
    """A memory DSD inside SRAM (its base may move out later)."""
    fmt = Format(int(rng.integers(8)))
    lanes = 32 // fmt.bits
    elements = PARAMS.sram_words * lanes
    length = int(rng.choice([0, 1, 2, 3, 5, 8, 13, 17, 24]))
    stride = int(rng.choice([-3, -2, -1, 0, 1, 1, 1, 2, 3]))
    wrap = int(rng.choice([0, 0, 0, 0, 1, 2, 3, 5, 8]))  # a period (docs/isa.md, "DSDs")
    reach = max(min(length, wrap or length) - 1, 0) * stride
    lo, hi = max(0, -reach), min(elements, elements - reach)
    base = int(rng.integers(lo, hi)) if hi > lo else 0
    return Dsd(DsdKind.MEM, fmt, base, length, stride, period=wrap)


def random_pool(rng: np.random.Generator) -> tuple[list[Dsd], list[tuple[int, int]]]:
    """The 16 DSDs of a program: memory vectors, registers, fabric inputs and outputs; and the
    pairs of DSD numbers that overlap by construction (a vector and a shifted copy of it)."""
    pool = [random_mem_dsd(rng) for _ in range(9)]
    pairs = []
    for _ in range(2):  # shifted copies of another vector: overlap in both directions
        k = int(rng.integers(len(pool)))
        d = pool[k]
        fmt = d.fmt if rng.random() < 0.6 else int(rng.choice(STORE))
        shift = int(rng.choice([-2, -1, 1, 2]))
        stride = d.stride if rng.random() < 0.7 else int(rng.choice([-1, 1, 2]))
        pairs.append((len(pool), k))
        pool.append(Dsd(DsdKind.MEM, fmt, max(0, d.base + shift), d.length, stride,
                        period=d.period if rng.random() < 0.5 else 0))
    pool.append(Dsd(DsdKind.REG, int(rng.choice(FLOATS + INTS)), int(rng.integers(1, 7))))
    pool.append(Dsd(DsdKind.REG, int(rng.choice(FLOATS + INTS)), int(rng.integers(1, 7))))
    for colour in (1, 2):  # some repeat each wavelet (a period)
        pool.append(Dsd(DsdKind.FABIN, int(rng.choice(FLOATS + INTS)), colour,
                        int(rng.integers(0, 20)), period=int(rng.choice([0, 0, 0, 1, 2, 3, 5]))))
    pool.append(Dsd(DsdKind.FABOUT, int(rng.choice(STORE)), 3, int(rng.integers(0, 20))))
    return pool, pairs


def random_program(rng: np.random.Generator, pool: list[Dsd],
                   pairs: list[tuple[int, int]]) -> list[int]:
    """Instruction words of task 0: vector instructions (mostly legal; often between the two
    DSDs of an overlapping pair, or into a register), DSD and register updates, then END."""
    words = []
    for _ in range(int(rng.integers(3, 16))):
        roll = rng.random()
        if roll < 0.7:
            ops = FLOAT_OPS if rng.random() < 0.7 else INT_OPS
            for _attempt in range(300):
                op = ops[int(rng.integers(len(ops)))]
                a, b, c = (int(rng.integers(len(pool))) for _ in range(3))
                if rng.random() < 0.4:
                    a, b = pairs[int(rng.integers(len(pairs)))][::int(rng.choice([-1, 1]))]
                elif rng.random() < 0.1:
                    a = 11 + int(rng.integers(2))  # a register destination
                src1 = pool[c] if op != Op.MOV else Dsd(DsdKind.REG)
                if operand_problem(op, pool[a], pool[b], src1) is None or rng.random() < 0.01:
                    break
            words.append(encode(op, a, b, c if op != Op.MOV else 0))
        elif roll < 0.85:
            d = int(rng.integers(11))
            step = int(rng.integers(-6, 7)) if rng.random() < 0.9 else int(rng.integers(-300, 300))
            words.append(encode(Op.DADDBI, d, imm=step))
        elif roll < 0.92:
            words.append(encode(Op.LI, int(rng.integers(1, 7)), imm=int(rng.integers(-99, 99))))
        else:
            words.append(encode(Op.DSETL, int(rng.integers(16)), int(rng.integers(1, 7))))
    return words + [encode(Op.END)]


def load(pe: PEModel, pool, program, sram, regs) -> None:
    """Configure ``pe`` (stopped) with a program, its DSDs, registers and SRAM, then start it."""
    A = AddressMap
    pe.cfg_write(A.CTRL, 2)
    for i, w in enumerate(sram):
        pe.cfg_write(A.SRAM + i, int(w))
    for i, w in enumerate(program):
        pe.cfg_write(A.IMEM + i, w)
    pe.cfg_write(A.TASKS + 0, pack_task(0))
    for d, dsd in enumerate(pool):
        w0, w1 = dsd.words()
        pe.cfg_write(A.DSDS + 2 * d, w0)
        pe.cfg_write(A.DSDS + 2 * d + 1, w1)
    for r, v in enumerate(regs):
        pe.cfg_write(A.REGS + r, int(v))
    pe.cfg_write(A.CTRL, 1)


def state(pe: PEModel) -> dict:
    """Everything observable of a PE model."""
    v = pe.vector
    return {
        "sram": pe.sram.tobytes(),
        "regs": list(pe.regs),
        "outbox": list(pe.outbox),
        "status": pe.cfg_read(AddressMap.STATUS),
        "macs": pe.macs,
        "elements": pe.elements,
        "pc": pe.pc,
        "vector": None if v is None else (v.done, v.length, int(v.acc) if v.acc is not None
                                          else None),
        "inbox": {c: list(q) for c, q in pe.inbox.items()},
        "dsds": list(pe.dsd_words),
    }


def run_pair(seed: int) -> int:
    """Run one random program on both models, comparing after every run; returns the number
    of comparisons."""
    rng = np.random.default_rng(seed)
    pool, pairs = random_pool(rng)
    program = random_program(rng, pool, pairs)
    sram = random_words(rng, PARAMS.sram_words)
    regs = random_words(rng, 8)
    fast, slow = PEModel(PARAMS), PEModel(PARAMS, element_loop=True)
    for pe in (fast, slow):
        load(pe, pool, program, sram, regs)
    streams = {c: list(random_words(rng, int(rng.integers(0, 60)))) for c in (1, 2)}
    pushes = [(0, 0)]  # the wavelet that starts task 0
    compared = 0
    for step in range(200):
        for pe in (fast, slow):
            for colour, data in pushes:
                pe.push_wavelet(colour, int(data))
            pe.run()
        a, b = state(fast), state(slow)
        diff = [k for k in a if a[k] != b[k]]
        assert not diff, (f"seed {seed}, step {step}: {diff} differ\nDSDs {pool}\n"
                          f"program {[hex(w) for w in program]}\nwhole {a}\nelement {b}")
        compared += 1
        if not any(streams.values()):
            break
        colour = int(rng.choice([c for c in streams if streams[c]]))
        n = int(rng.integers(0, 8))
        pushes = [(colour, streams[colour].pop(0)) for _ in range(min(n, len(streams[colour])))]
        if rng.random() < 0.1:  # a second start of task 0 (it runs again once idle)
            pushes.append((0, 0))
    return compared


@pytest.mark.parametrize("batch", range(BATCHES))
def test_whole_vector_matches_element_loop(batch, monkeypatch):
    paths = {True: 0, False: 0}

    def counted(*args):
        whole = whole_vector_safe(*args)
        paths[whole] += 1
        return whole

    monkeypatch.setattr(pe_model, "whole_vector_safe", counted)  # only the fast model asks
    for i in range(PROGRAMS_PER_BATCH):
        run_pair(1000 * batch + i)
    # Both paths must be exercised: most instructions run whole, some need the element loop
    # (counted once per distinct instruction and DSDs: the PE caches the decision).
    assert paths[True] > 2 * PROGRAMS_PER_BATCH, paths
    assert paths[False] > PROGRAMS_PER_BATCH // 4, paths


def mem(fmt, base, length, stride=1) -> Dsd:
    return Dsd(DsdKind.MEM, fmt, base, length, stride)


@pytest.mark.parametrize("op, dst, src0, src1, whole", [
    # AXPY and streaming reductions of the GEMV mapping: disjoint ranges or dst = src
    (Op.FMAC, mem(0, 0, 64), mem(1, 128, 64), Dsd(DsdKind.REG, 0, 7), True),
    (Op.FADD, mem(0, 0, 64), Dsd(DsdKind.FABIN, 0, 2, 64), mem(0, 0, 64), True),
    (Op.FADD, Dsd(DsdKind.FABOUT, 0, 3, 64), Dsd(DsdKind.FABIN, 0, 2, 64), mem(0, 0, 64), True),
    # a register accumulator is a sequential reduction
    (Op.FMAC, Dsd(DsdKind.REG, 0, 1), mem(0, 0, 8), mem(0, 8, 8), False),
    # a register destination of a non-accumulating op keeps the last element
    (Op.FADD, Dsd(DsdKind.REG, 0, 1), mem(0, 0, 8), mem(0, 8, 8), True),
    # shifting a vector up in place: element i reads what element i - 1 wrote
    (Op.MOV, mem(0, 1, 8), mem(0, 0, 8), None, False),
    # shifting it down in place: every read comes before the write of that word
    (Op.MOV, mem(0, 0, 8), mem(0, 1, 8), None, True),
    # the same, walking downwards (negative strides)
    (Op.MOV, mem(0, 7, 8, -1), mem(0, 8, 8, -1), None, False),
    (Op.MOV, mem(0, 8, 8, -1), mem(0, 7, 8, -1), None, True),
    # a stride-0 destination: every element writes the same word
    (Op.MOV, mem(0, 4, 8, 0), mem(0, 16, 8), None, False),
    (Op.MOV, mem(0, 4, 1, 0), mem(0, 16, 1), None, True),
    # fp32 destination over bf16 source elements: element i reads half of word i // 2, which
    # element i // 2 wrote ...
    (Op.MOV, mem(0, 0, 8), mem(1, 0, 8), None, False),
    # ... but a bf16 destination over fp32 sources only writes words that later elements read
    (Op.MOV, mem(1, 0, 8), mem(0, 0, 8), None, True),
    # ... bf16 packed two per word, each element its own half: no element reads another's
    (Op.FADD, mem(1, 0, 8), mem(1, 0, 8), mem(1, 40, 8), True),
    # a strided read of the destination's own words
    (Op.FADD, mem(0, 0, 8, 2), mem(0, 0, 8), mem(0, 40, 8), False),
    (Op.FADD, mem(0, 0, 8), mem(0, 0, 8, 2), mem(0, 40, 8), True),
])
def test_whole_vector_decision(op, dst, src0, src1, whole):
    src1 = src1 if src1 is not None else Dsd(DsdKind.REG)
    length = next(d.length for d in (dst, src0, src1) if d.kind != DsdKind.REG)
    assert whole_vector_safe(op, dst, src0, src1, length) is whole


def test_fabric_input_suspends_mid_vector():
    """A vector whose fabric input runs out suspends after the elements that arrived, in both
    paths, and resumes where it stopped."""
    A = AddressMap
    pool = [mem(0, 0, 10), Dsd(DsdKind.FABIN, 0, 1, 10), Dsd(DsdKind.FABOUT, 0, 3, 10),
            Dsd(DsdKind.REG, 0, 2)]
    program = [encode(Op.FMAC, 0, 1, 3), encode(Op.FADD, 2, 1, 0), encode(Op.END)]
    regs = [0, 0, 0x3FC00000, 0, 0, 0, 0, 0]  # r2 = 1.5
    fast, slow = PEModel(PARAMS), PEModel(PARAMS, element_loop=True)
    stream = np.arange(1, 21, dtype=np.float32).view(np.uint32)
    for pe in (fast, slow):
        load(pe, pool, program, np.zeros(PARAMS.sram_words, np.uint32), regs)
        pe.push_wavelet(0, 0)
    for chunk in (3, 0, 4, 5, 8):
        for pe in (fast, slow):
            for data in stream[:chunk]:
                pe.push_wavelet(1, int(data))
            pe.run()
        stream = stream[chunk:]
        assert state(fast) == state(slow)
    assert fast.vector is None and fast.elements == 20 and fast.macs == 10
    assert fast.cfg_read(A.STATUS) & A.STATUS_IDLE
    assert [d for _, d, _ in fast.outbox] == list(
        (np.arange(11, 21, dtype=np.float32) + np.arange(1, 11, dtype=np.float32) * 1.5)
        .view(np.uint32))


def test_block_configuration_writes_match_word_writes():
    """cfg_write_block (SRAM and program as arrays) leaves the state of cfg_write word by word,
    across region boundaries, while stopped and while running (CONFIG_BUSY)."""
    A = AddressMap
    rng = np.random.default_rng(5)
    starts = [A.SRAM, A.SRAM + PARAMS.sram_words - 3, A.IMEM + 5, A.IMEM + PARAMS.imem_words - 2,
              A.TASKS, A.DSDS + 30, A.REGS + 6, A.CTRL - 1, A.REGS - 4]
    for start in starts:
        for running in (False, True):
            values = [int(v) for v in rng.integers(0, 1 << 32, 9, dtype=np.uint64)]
            values[0] |= 1 << 40  # reduced to 32 bits, as by cfg_write
            block, words = PEModel(PARAMS), PEModel(PARAMS)
            for pe in (block, words):
                pe.cfg_write(A.CTRL, int(running))
            block.cfg_write_block(start, [v & ((1 << 63) - 1) for v in values])
            for k, v in enumerate(values):
                words.cfg_write(start + k, v & ((1 << 63) - 1))
            assert state(block) == state(words), (start, running)
            assert (block.imem == words.imem).all() and block.task_words == words.task_words
            assert block.running == words.running and block.errors == words.errors


def test_dsd_base_and_length_updates_repack_as_the_table_does():
    """DSETB / DADDB / DADDBI / DSETL leave the words of decoding the DSD, changing the field
    and packing it again (word 1's unused bits are dropped)."""
    A = AddressMap
    rng = np.random.default_rng(9)
    updates = [(Op.DSETB, lambda d, r, imm: setattr(d, "base", r & 0xFFFF)),
               (Op.DADDB, lambda d, r, imm: setattr(d, "base", (d.base + r) & 0xFFFF)),
               (Op.DADDBI, lambda d, r, imm: setattr(d, "base", (d.base + imm) & 0xFFFF)),
               (Op.DSETL, lambda d, r, imm: setattr(d, "length", r & 0xFFFF))]
    for _ in range(300):
        op, update = updates[int(rng.integers(len(updates)))]
        w0, w1, reg = (int(v) for v in rng.integers(0, 1 << 32, 3, dtype=np.uint64))
        imm = int(rng.integers(-(1 << 15), 1 << 15)) if op == Op.DADDBI else 0
        pe = PEModel(PARAMS)
        load(pe, [], [encode(op, 5, 3, imm=imm), encode(Op.END)],
             np.zeros(PARAMS.sram_words, np.uint32), [0, 0, 0, reg, 0, 0, 0, 0])
        pe.cfg_write(A.CTRL, 0)
        pe.cfg_write(A.DSDS + 10, w0)
        pe.cfg_write(A.DSDS + 11, w1)
        pe.cfg_write(A.CTRL, 1)
        pe.push_wavelet(0, 0)
        pe.run()
        expected = Dsd(*isa.unpack_dsd(w0, w1))
        update(expected, reg, imm)
        assert pe.dsd_words[5] == expected.words(), (op, hex(w0), hex(w1))
