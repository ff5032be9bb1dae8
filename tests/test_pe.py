"""PE: programs on the RTL (sim/tb/pe_bench.py) against the golden interpreter, bit for bit.

All RTL jobs of this module run in one simulator invocation (one build); each test then checks
its own jobs, so a failure names the program.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.formats import Format
from hdl.wavelet import ControlWord
from pe.isa import AddressMap, ErrorFlag, Op, encode
from pe.params import PEParams
from sim.tb.pe_jobs import PEJob, compare, run_golden, run_rtl
from sim.toolchain.asm import assemble, encode_values

PARAMS = PEParams(sram_words=512, imem_words=128, num_colors=8, num_tasks=12, num_dsds=16)
RNG = np.random.default_rng(2024)

SPECIALS = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F812345,
                     0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0x3F800000, 0xBF800000],
                    dtype=np.uint32)


def floats(n, scale=1.0, specials=0.0):
    values = (RNG.standard_normal(n) * scale).astype(np.float32).view(np.uint32)
    if specials:
        pick = RNG.random(n) < specials
        values[pick] = RNG.choice(SPECIALS, pick.sum())
    return values


def words_directive(addr, words):
    return f".data {addr} int32 " + " ".join(str(int(np.int32(np.uint32(w)))) for w in words)


def make_jobs() -> list[PEJob]:
    jobs = []

    # AXPY from SRAM: y[0:64] += w[0:64] * a, with special values in the data.
    w, y = floats(64, specials=0.1), floats(64)
    src = f"""
        .dsd y mem fp32 base=0 len=64
        .dsd w mem fp32 base=64 len=64
        .dsd a reg fp32 r1
        .reg r1 -1.75
        .task 0 main
        {words_directive(0, y)}
        {words_directive(64, w)}
    main:
        fmac y, w, a
        end
    """
    jobs.append(PEJob("axpy_sram", assemble(src, PARAMS), inputs=[(0, 0)], read_sram=[(0, 128)]))

    # GEMV-style AXPY triggered by arriving wavelets: y[0:8] += W[:, k] * x_k, W column-major
    # in bf16, a counter activates a local task that sends y to the fabric.
    M, K = 8, 12
    wcols = encode_values(RNG.standard_normal(M * K).astype(np.float32), Format.BF16)
    xs = floats(K)
    src = f"""
        .dsd y    mem    fp32 base=0 len={M}
        .dsd wcol mem    bf16 base=64 len={M}
        .dsd x    reg    fp32 r7
        .dsd out  fabout fp32 color=3 len={M}
        .reg r1 {K}
        .task 1 on_x
        .task 9 send
        .data 64 bf16 {" ".join(str(v) for v in _bf16_floats(wcols))}
    on_x:
        fmac y, wcol, x
        daddbi wcol, {M}
        addi r1, r1, -1
        bnz r1, done
        act send
    done:
        end
    send:
        mov out, y
        end
    """
    jobs.append(PEJob("axpy_wavelet_triggered", assemble(src, PARAMS),
                      inputs=[(1, int(v)) for v in xs], read_sram=[(0, 8)],
                      in_pause=0.3, out_pause=0.3))

    # Dot product into a register accumulator, then store it; fp16 operands.
    a = encode_values(RNG.standard_normal(20), Format.FP16)
    b = encode_values(RNG.standard_normal(20), Format.FP16)
    src = f"""
        .dsd a   mem fp16 base=0 len=20
        .dsd b   mem fp16 base=32 len=20
        .dsd acc reg fp32 r2
        .dsd res mem fp32 base=100 len=1
        .reg r2 0.5
        .task 0 main
        .data 0 fp16 {" ".join(str(v) for v in _fp16_floats(a))}
        .data 32 fp16 {" ".join(str(v) for v in _fp16_floats(b))}
    main:
        fmac acc, a, b
        mov res, acc
        end
    """
    jobs.append(PEJob("dot_product", assemble(src, PARAMS), inputs=[(0, 0)],
                      read_sram=[(100, 1)]))

    # ReLU in place, then element-wise add of a fabric-input stream, then send the result.
    y = floats(24, specials=0.15)
    stream = floats(24)
    src = f"""
        .dsd y    mem    fp32 base=0 len=24
        .dsd zero reg    fp32 r0
        .dsd in   fabin  fp32 color=2 len=24
        .dsd out  fabout fp32 color=5 len=24
        .dsd half mem    bf16 base=200 len=24
        .task 0 main
        {words_directive(0, y)}
    main:
        fmax y, y, zero
        fadd y, in, y
        mov out, y
        mov half, y
        end
    """
    inputs = [(0, 0)] + [(2, int(v)) for v in stream]
    jobs.append(PEJob("relu_add_stream_send", assemble(src, PARAMS), inputs=inputs,
                      read_sram=[(0, 24), (100, 12)], in_pause=0.2, out_pause=0.4))

    # Every source format widened into fp32 / int32, and fp32 narrowed to bf16 and fp16.
    e4m3 = RNG.integers(0, 256, 16, dtype=np.uint32)
    e5m2 = RNG.integers(0, 256, 16, dtype=np.uint32)
    f16 = RNG.integers(0, 1 << 16, 16, dtype=np.uint32)
    i8 = RNG.integers(-128, 128, 16)
    wide = floats(16, scale=1e4, specials=0.3)
    src = f"""
        .dsd e4   mem e4m3 base=0 len=16
        .dsd e5   mem e5m2 base=16 len=16
        .dsd h    mem fp16 base=16 len=16
        .dsd i8   mem int8 base=48 len=16
        .dsd wide mem fp32 base=20 len=16
        .dsd o1   mem fp32 base=100 len=16
        .dsd o2   mem fp32 base=116 len=16
        .dsd o3   mem fp32 base=132 len=16
        .dsd o4   mem int32 base=148 len=16
        .dsd o5   mem bf16 base=328 len=16
        .dsd o6   mem fp16 base=360 len=16
        .task 0 main
        .data 0 int8 {" ".join(str(int(np.int8(np.uint8(v)))) for v in e4m3)}
        .data 16 int8 {" ".join(str(int(np.int8(np.uint8(v)))) for v in e5m2)}
        .data 16 int16 {" ".join(str(int(np.int16(np.uint16(v)))) for v in f16)}
        .data 48 int8 {" ".join(str(v) for v in i8)}
        {words_directive(20, wide)}
    main:
        mov o1, e4
        mov o2, e5
        mov o3, h
        mov o4, i8
        mov o5, wide
        mov o6, wide
        end
    """
    jobs.append(PEJob("format_conversions", assemble(src, PARAMS), inputs=[(0, 0)],
                      read_sram=[(0, 40), (100, 96)]))

    # Integer multiply-accumulate: int8 x int16 into int32 (wrapping), and IADD / IMUL.
    p = RNG.integers(-128, 128, 16)
    q = RNG.integers(-32768, 32768, 16)
    acc = RNG.integers(-(1 << 31), 1 << 31, 16)
    src = f"""
        .dsd p   mem int8  base=0 len=16
        .dsd q   mem int16 base=8 len=16
        .dsd acc mem int32 base=16 len=16
        .dsd s   mem int32 base=32 len=16
        .dsd k   reg int32 r3
        .reg r3 -7
        .task 0 main
        .data 0 int8 {" ".join(str(v) for v in p)}
        .data 8 int16 {" ".join(str(v) for v in q)}
        .data 16 int32 {" ".join(str(v) for v in acc)}
    main:
        imac acc, p, k
        imul s, p, q
        iadd s, s, k
        imac acc, q, k
        end
    """
    jobs.append(PEJob("integer_mac", assemble(src, PARAMS), inputs=[(0, 0)],
                      read_sram=[(0, 48)]))

    # FMUL and FADD on special values and subnormals, with an overlapping in-place update.
    a, b = floats(32, specials=0.5), floats(32, scale=1e-38, specials=0.3)
    src = f"""
        .dsd a  mem fp32 base=0 len=32
        .dsd b  mem fp32 base=32 len=32
        .dsd c  mem fp32 base=64 len=32
        .dsd a1 mem fp32 base=1 len=31
        .dsd a0 mem fp32 base=0 len=31
        .task 0 main
        {words_directive(0, a)}
        {words_directive(32, b)}
    main:
        fmul c, a, b
        fadd b, c, a
        fadd a1, a0, b
        end
    """
    jobs.append(PEJob("specials_and_hazards", assemble(src, PARAMS), inputs=[(0, 0)],
                      read_sram=[(0, 96)]))

    # A task operation right before an END, where the next task is picked as the END
    # executes: a BLK of the lowest ready task (task 2 must not run), and an UNBLK of a task
    # lower than the ready one (task 1 must run before task 3, which adds to its r4).
    for name, ops in (("blk_before_end", "act 2\n act 3\n blk 2"),
                      ("unblk_before_end", "act 3\n act 1\n unblk 1")):
        src = f"""
            .task 0 main
            .task 1 first blocked
            .task 2 never
            .task 3 last
        main:
            {ops}
            end
        first:
            li r4, 11
            end
        never:
            li r5, 22
            end
        last:
            addi r4, r4, 1
            end
        """
        jobs.append(PEJob(name, assemble(src, PARAMS), inputs=[(0, 0)]))
    return jobs + control_jobs() + filter_jobs()


def control_word(payload=0, task=0, no_task=0, commands=()):
    """A control wavelet's data word (docs/isa.md, "Tasks")."""
    return ControlWord.const({"payload": payload, "task": task, "no_task": no_task,
                              "commands": list(commands)}).as_bits()


#: The control words the control jobs send and receive.
SENT_CONTROL = (control_word(payload=0xBEEF, task=9, commands=[1, 2]),
                control_word(no_task=1, commands=[3]))
TASK_CONTROL = {9: 0x1234, 10: 0xFFFF, 3: 5}


def control_jobs() -> list[PEJob]:
    """Control wavelets: sent through a ``ctrl`` FABOUT DSD, and received (control tasks)."""
    jobs = []
    y = floats(4)
    src = f"""
        .dsd y    mem    fp32  base=0 len=4
        .dsd out  fabout fp32  color=5 len=4
        .dsd cw   fabout int32 color=5 len=1 ctrl
        .dsd cws  fabout int32 color=6 len=2 ctrl
        .dsd ws   mem    int32 base=8 len=2
        .dsd word reg    int32 r1
        .task 0 main
        {words_directive(0, y)}
        .data 8 int32 {SENT_CONTROL[0]} {SENT_CONTROL[1]}
    main:
        mov out, y
        ldi r1, {SENT_CONTROL[0]}
        mov cw, word
        mov cws, ws
        end
    """
    jobs.append(PEJob("control_send", assemble(src, PARAMS), inputs=[(0, 0)], out_pause=0.3))

    # Control tasks 9 and 10 (local ids) and 3 (also colour 3's data task); one control
    # wavelet with no task, naming task 11 (which must not run). Colour 2's control wavelets
    # sit between the data wavelets that main's fabric-input vector reads. The handlers clear
    # r7: which of them runs last depends on the timing.
    src = """
        .dsd y    mem    fp32 base=0 len=3
        .dsd in   fabin  fp32 color=2 len=3
        .task 0 main
        .task 3 on_3
        .task 9 on_9
        .task 10 on_10
        .task 11 on_11
    main:
        mov y, in
        end
    on_3:
        add r3, r3, r7
        li r7, 0
        end
    on_9:
        add r4, r0, r7
        li r7, 0
        end
    on_10:
        add r5, r0, r7
        li r7, 0
        end
    on_11:
        li r6, 99
        end
    """
    d = [int(v) for v in floats(3)]
    cw = {t: control_word(payload=p, task=t) for t, p in TASK_CONTROL.items()}
    inputs = [(0, 0), (2, d[0]), (2, cw[9], 1), (2, d[1]), (2, control_word(task=11, no_task=1), 1),
              (3, 100), (4, cw[10], 1), (2, d[2]), (3, cw[3], 1)]
    jobs.append(PEJob("control_tasks", assemble(src, PARAMS), inputs=inputs, read_sram=[(0, 3)],
                      in_pause=0.3))
    return jobs


#: The filters of the ``filters`` job, by colour: (mode, lo, hi) (docs/isa.md, "Input filters").
FILTERS = {2: ("range", 10, 20), 3: ("drop", 10, 20), 4: ("off", 0, 0), 5: ("drop", 0, 0xFFFF),
           6: ("range", 100, 199)}
#: Sparse AXPY job: W block (rows x columns, row-major bf16) and the range its filter keeps.
SPARSE_M, SPARSE_K = 5, 6


def kept(mode, lo, hi, word):
    """Whether a filter keeps a data wavelet (written from docs/isa.md, for the checks)."""
    inside = lo <= word >> 16 <= hi
    return {"off": True, "range": inside, "drop": not inside}[mode]


def indexed_words(indices):
    """Data words with the given 16-bit indices and random low halves."""
    return [(int(i) << 16) | int(RNG.integers(0, 1 << 16)) for i in indices]


def filter_jobs() -> list[PEJob]:
    """Range and drop filters on the input queues, and the sparse (value, index) form."""
    jobs = []
    # Data tasks of colours 2-5 sum what their filters keep; colour 5 drops every data
    # wavelet but its control wavelet still starts task 9; main reads colour 6's kept
    # wavelets with a fabric-input vector. Indices at and beside every bound.
    edges = [0, 9, 10, 11, 15, 19, 20, 21, 99, 100, 199, 200, 0xFFFF]
    words = {c: indexed_words(edges + list(RNG.integers(0, 1 << 16, 6))) for c in FILTERS}
    lo6, hi6 = FILTERS[6][1:]
    n6 = sum(kept("range", lo6, hi6, w) for w in words[6])
    decl = "\n".join(f".filter {c} {m} {lo} {hi}" for c, (m, lo, hi) in FILTERS.items())
    src = f"""
        {decl}
        .dsd y    mem   int32 base=0 len={n6}
        .dsd in   fabin int32 color=6 len={n6}
        .task 0 main
        .task 2 on_2
        .task 3 on_3
        .task 4 on_4
        .task 5 on_5
        .task 9 on_9
    main:
        mov y, in
        end
    on_2:
        add r1, r1, r7
        addi r6, r6, 1
        end
    on_3:
        add r2, r2, r7
        end
    on_4:
        add r3, r3, r7
        end
    on_5:
        li r4, 99
        end
    on_9:
        add r5, r0, r7
        end
    """
    inputs = [(0, 0)]
    streams = {c: [(c, w) for w in ws] for c, ws in words.items()}
    streams[5].append((5, control_word(payload=0x5A5A, task=9), 1))
    while any(streams.values()):  # interleave the colours (order within a colour kept)
        c = int(RNG.choice([c for c, q in streams.items() if q]))
        inputs.append(streams[c].pop(0))
    jobs.append(PEJob("filters", assemble(src, PARAMS), inputs=inputs, read_sram=[(0, n6)],
                      in_pause=0.3))

    # Indexed AXPY of sparse wavelets (value in bf16 | index << 16): y += W[:, index] * value
    # for each kept wavelet, W row-major (column k: base + k, stride = columns); the range
    # filter keeps this PE's columns 0..K-1 and drops the others; a control wavelet then
    # starts task 9, which sends y.
    M, K = SPARSE_M, SPARSE_K
    w = encode_values(RNG.standard_normal(M * K), Format.BF16)
    y = floats(M)
    indices = [3, 0, 7, 5, 3, 40, 1, 5, 6, 2]  # 7, 40, 6 outside 0..K-1: dropped
    values = encode_values(RNG.standard_normal(len(indices)), Format.BF16)
    wbase = 40  # element address of W (word 20)
    src = f"""
        .filter 2 range 0 {K - 1}
        .dsd y    mem    fp32 base=0 len={M}
        .dsd w    mem    bf16 base={wbase} len={M} stride={K}
        .dsd xv   reg    bf16 r7
        .dsd out  fabout fp32 color=3 len={M}
        .task 2 on_x
        .task 9 done
        {words_directive(0, y)}
        .data {wbase} int16 {" ".join(str(int(np.int16(np.uint16(v)))) for v in w)}
    on_x:
        dindex w, r7, {wbase}
        fmac y, w, xv
        end
    done:
        mov out, y
        end
    """
    inputs = [(2, (i << 16) | int(v)) for i, v in zip(indices, values)]
    inputs.append((2, control_word(task=9), 1))
    jobs.append(PEJob("sparse_axpy", assemble(src, PARAMS), inputs=inputs, read_sram=[(0, M)],
                      in_pause=0.2, out_pause=0.2))
    return jobs


def _bf16_floats(bits):
    import ml_dtypes

    return np.asarray(bits, np.uint16).view(ml_dtypes.bfloat16).astype(np.float32).tolist()


def _fp16_floats(bits):
    return np.asarray(bits, np.uint16).view(np.float16).astype(np.float32).tolist()


def error_jobs() -> list[PEJob]:
    jobs = []
    # A DSD base advanced at run time past the end of SRAM: precise BOUNDS fault, once behind
    # an AXPY still issuing and once with the vector unit idle (the faulting instruction is
    # handed over before its bounds are known and withdrawn before it issues an element: y
    # unchanged, r2 not written).
    for name, ahead in (("bounds_fault", "fmac y, w, a"), ("bounds_fault_idle", "")):
        src = f"""
            .dsd y mem fp32 base=0 len=16
            .dsd w mem fp32 base=480 len=16
            .dsd a reg fp32 r1
            .reg r1 2.0
            .task 0 main
        main:
            {ahead}
            daddbi w, 20
            fmac y, w, a
            li r2, 5
            end
        """
        jobs.append(PEJob(name, assemble(src, PARAMS), inputs=[(0, 0)], read_sram=[(0, 16)]))
    # An unknown opcode after some work.
    image = assemble("""
        .dsd y mem fp32 base=0 len=4
        .dsd a reg fp32 r1
        .reg r1 1.0
        .task 0 main
    main:
        fadd y, y, a
        li r3, 9
    """, PARAMS)
    image.program.append(encode(Op.NOP) | (0x3E << 26))
    jobs.append(PEJob("opcode_fault", image, inputs=[(0, 0)], read_sram=[(0, 4)]))
    # Illegal operands smuggled past the assembler by editing the DSD table: FMAC into a
    # fabric output.
    image = assemble("""
        .dsd y   mem    fp32 base=0 len=4
        .dsd out fabout fp32 color=1 len=4
        .task 0 main
    main:
        fadd out, y, y
        end
    """, PARAMS)
    image.program[0] = encode(Op.FMAC, image.dsd_names["out"], 0, 0)
    jobs.append(PEJob("operands_fault", image, inputs=[(0, 0)]))
    # A task id beyond the table.
    image = assemble(".task 0 main\nmain:\n  act 3\n  end\n", PARAMS)
    image.program[0] = encode(Op.ACT, imm=PARAMS.num_tasks + 1)
    jobs.append(PEJob("task_fault", image, inputs=[(0, 0)]))
    return jobs


@pytest.fixture(scope="module")
def rtl_results(sim, waves):
    jobs = make_jobs() + error_jobs()
    results = run_rtl(jobs, PARAMS, sim=sim, waves=waves)
    return {job.name: (job, result) for job, result in zip(jobs, results)}


@pytest.mark.parametrize("name", [j.name for j in make_jobs()])
def test_program_matches_golden(rtl_results, name):
    job, rtl = rtl_results[name]
    golden = run_golden(job, PARAMS)
    assert golden["status"] & 0xFF00 == 0, f"golden model raised errors {golden['status']:#x}"
    problems = compare(golden, rtl)
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name, flag", [
    ("bounds_fault", ErrorFlag.BOUNDS), ("bounds_fault_idle", ErrorFlag.BOUNDS),
    ("opcode_fault", ErrorFlag.OPCODE),
    ("operands_fault", ErrorFlag.OPERANDS), ("task_fault", ErrorFlag.TASK)])
def test_runtime_error_flags(rtl_results, name, flag):
    job, rtl = rtl_results[name]
    golden = run_golden(job, PARAMS)
    expected = (int(flag) << AddressMap.ERROR_SHIFT) | AddressMap.STATUS_HALTED
    assert golden["status"] & 0xFF02 == expected, f"golden status {golden['status']:#x}"
    assert rtl["status"] & 0xFF02 == expected, f"RTL status {rtl['status']:#x}"
    problems = compare(golden, rtl)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_control_wavelets_sent(rtl_results):
    """The ``ctrl`` DSDs' elements leave as control wavelets, after the data vector, and the
    data DSD's as data (checked against the program's own words, not the golden model)."""
    job, rtl = rtl_results["control_send"]
    outputs = rtl["outputs"]
    assert [k for _, _, k in outputs] == [0, 0, 0, 0, 1, 1, 1], outputs
    assert [(c, d) for c, d, k in outputs if k] == [(5, SENT_CONTROL[0]), (6, SENT_CONTROL[0]),
                                                    (6, SENT_CONTROL[1])]


def test_control_tasks_run_with_their_payload(rtl_results):
    """Each control wavelet with a task ran it once with r7 = its payload (zero-extended); the
    one with ``no_task`` ran nothing; the fabric-input vector read only the data wavelets."""
    job, rtl = rtl_results["control_tasks"]
    regs = rtl["regs"]
    assert regs[3] == 100 + TASK_CONTROL[3]
    assert regs[4] == TASK_CONTROL[9] and regs[5] == TASK_CONTROL[10]
    assert regs[6] == 0, "the no_task control wavelet started task 11"
    data = [w[1] for w in job.inputs if w[0] == 2 and len(w) == 2]
    assert rtl["sram"]["0"] == data


def test_filters_keep_and_drop_by_index(rtl_results):
    """Each colour's data task saw exactly the wavelets its filter keeps (checked against the
    filter rules, not the golden model); the control wavelet of the drained colour still
    started its task."""
    job, rtl = rtl_results["filters"]
    regs = rtl["regs"]
    sent = {c: [w[1] for w in job.inputs if w[0] == c and len(w) == 2] for c in FILTERS}

    def total(c):
        return sum(w for w in sent[c] if kept(*FILTERS[c], w)) & 0xFFFF_FFFF

    assert regs[1] == total(2) and regs[6] == sum(kept(*FILTERS[2], w) for w in sent[2])
    assert regs[2] == total(3) and regs[3] == total(4)
    assert regs[4] == 0, "a wavelet of the drained colour started its task"
    assert regs[5] == 0x5A5A, "the control wavelet of the drained colour did not start task 9"
    assert rtl["sram"]["0"] == [w for w in sent[6] if kept(*FILTERS[6], w)]


def test_sparse_axpy(rtl_results):
    """y += W[:, index] * value over the kept sparse wavelets, in order, in float32 (numpy,
    not the golden model), sent when the control wavelet arrives."""
    import ml_dtypes

    job, rtl = rtl_results["sparse_axpy"]
    img = job.image
    wbase = 40
    lanes = [img.sram[(wbase + e) // 2] >> 16 * ((wbase + e) % 2) & 0xFFFF
             for e in range(SPARSE_M * SPARSE_K)]
    W = np.asarray(lanes, np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    W = W.reshape(SPARSE_M, SPARSE_K)
    y = np.asarray([img.sram[i] for i in range(SPARSE_M)], np.uint32).view(np.float32)
    for _, word in job.inputs[:-1]:
        k = word >> 16
        if k < SPARSE_K:
            v = np.asarray([word & 0xFFFF], np.uint16).view(ml_dtypes.bfloat16)
            y = (W[:, k] * v.astype(np.float32)[0]) + y  # float32: rounds each operation
    assert [d for _, d, _ in rtl["outputs"]] == y.view(np.uint32).tolist()
    assert rtl["sram"]["0"] == y.view(np.uint32).tolist()
