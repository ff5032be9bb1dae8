"""PE fuzzer: random instruction sequences on the RTL against the golden interpreter.

Each program declares a fixed pool of DSDs (memory vectors of every format and stride sign,
registers, fabric input and output), fills SRAM with random values and special values, and runs a
random mix of scalar and vector instructions, counted loops (``bnz``), forward jumps (``jmp``,
``bz``), a second task activated, blocked and unblocked (``act``/``blk``/``unblk``), and ``end`` or
``halt``. One fabric output sends control wavelets, and control wavelets that start no task arrive
among the fabric-input data. DSD bases move at run time and may run out of SRAM, which must fault
precisely on both sides.

About one program in ten starts with an *illegal* instruction: an operand combination that
docs/isa.md forbids (decided by :func:`isa_forbids`, written from the document's list, not with
the golden model's or the assembler's code), an unassigned opcode, or an ``act`` of a task beyond
the table. The assembler refuses those, so the fuzzer writes the instruction word into the
program itself, and expects the fault flag the document names (OPERANDS, OPCODE, TASK) on both
sides, with nothing else done.

Coverage (printed, no hole allowed): every (opcode, operand position, operand kind) that the
document allows is generated.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_pe import PARAMS, SPECIALS, control_word

from hdl.formats import Format
from pe.isa import TWO_SOURCE_OPS, AddressMap, DsdKind, ErrorFlag, Op, encode
from sim.model.pe import Dsd, operand_problem
from sim.tb.pe_jobs import PEJob, compare, run_golden, run_rtl
from sim.toolchain.asm import AsmError, assemble

SEED = int(os.environ.get("PE_FUZZ_SEED", "7"))
PROGRAMS = int(os.environ.get("PE_FUZZ_PROGRAMS", "40"))

FLOAT_OPS = [Op.MOV, Op.FADD, Op.FMUL, Op.FMAC, Op.FMAX]
INT_OPS = [Op.IADD, Op.IMUL, Op.IMAC, Op.IMAX]
#: Fraction of programs that start with an illegal instruction.
ILLEGAL_FRACTION = 0.1
_INT_FORMATS = {Format.INT8, Format.INT16, Format.INT32}
_DST_FORMATS = {Format.FP32, Format.BF16, Format.FP16, Format.INT32}


def isa_forbids(op: Op, dst: Dsd, src0: Dsd, src1: Dsd | None, colors: dict) -> bool:
    """docs/isa.md's list of operand combinations the PE faults on (OPERANDS), one rule per
    line of the document; ``colors`` gives each fabric DSD's colour (by ``id``)."""
    srcs = [src0] + ([src1] if src1 is not None else [])
    mac = op in (Op.FMAC, Op.IMAC)
    if dst.kind == DsdKind.FABIN:                                   # a fabric-input destination
        return True
    if any(x.kind == DsdKind.FABOUT for x in srcs):                 # a fabric-output source
        return True
    if mac and dst.kind not in (DsdKind.MEM, DsdKind.REG):          # fmac/imac into other kinds
        return True
    reads = sum(x.kind == DsdKind.MEM for x in srcs) + (mac and dst.kind == DsdKind.MEM)
    if reads >= 3:                                                   # three SRAM reads
        return True
    stored = [x for x in [dst] + srcs if x.kind != DsdKind.REG]  # registers: raw words
    if dst in stored and dst.fmt not in _DST_FORMATS:               # destination format
        return True
    fab = [colors[id(x)] for x in srcs if x.kind == DsdKind.FABIN]
    if len(fab) != len(set(fab)):                                    # two fabric inputs, 1 colour
        return True
    if op != Op.MOV:                                                 # float op on int or reverse
        is_int = op in INT_OPS
        if any((x.fmt in _INT_FORMATS) != is_int for x in stored):
            return True
    return False


def dsd_pool(length: int, wrap: int = 0, repeat: int = 0) -> list[tuple[str, str]]:
    """(name, declaration) of the DSDs every fuzz program declares; ``wrap`` and ``repeat``
    are the periods of the multi-dimensional ones (docs/isa.md, "DSDs")."""
    L = length
    return [
        ("f0", f"mem fp32 base=0 len={L}"),
        ("f1", f"mem fp32 base=40 len={L} stride=2 wrap={wrap}"),
        ("f2", f"mem fp32 base={100 + L} len={L} stride=-1"),
        ("b0", f"mem bf16 base=300 len={L}"),
        ("h0", f"mem fp16 base=360 len={L} stride=3 wrap={wrap + 1}"),
        ("e4", f"mem e4m3 base=800 len={L}"),
        ("e5", f"mem e5m2 base=840 len={L}"),
        ("i0", f"mem int32 base=240 len={L}"),
        ("i8", f"mem int8 base=1000 len={L}"),
        ("i16", f"mem int16 base=520 len={L} wrap={max(0, wrap - 1)}"),
        ("rs", "reg fp32 r1"),
        ("ra", "reg fp32 r2"),
        ("ri", "reg int32 r3"),
        ("fi", f"fabin fp32 color=2 len={L} repeat={repeat}"),
        ("fo", f"fabout fp32 color=3 len={L} ctrl"),  # sends control wavelets
        ("fb", f"fabout bf16 color=4 len={L}"),
    ]


def _decode(decl: str) -> Dsd:
    from hdl.formats import Format
    from pe.isa import DsdKind

    parts = decl.split()
    kind = {"mem": DsdKind.MEM, "fabin": DsdKind.FABIN, "fabout": DsdKind.FABOUT,
            "reg": DsdKind.REG}[parts[0]]
    return Dsd(kind, Format.from_name(parts[1]))


def _vector_op(rng, pool, decoded):
    """A random legal vector instruction (text, operand names, op) or None."""
    ops = FLOAT_OPS if rng.random() < 0.7 else INT_OPS
    integer = ops is INT_OPS
    # an operand kind first, then a DSD of that kind (of the op's number class, but for mov):
    # the rare kinds (fabric, register) are drawn as often as memory vectors
    by_kind: dict = {}
    for name, _ in pool:
        if integer == (decoded[name].fmt in _INT_FORMATS) or rng.random() < 0.2:
            by_kind.setdefault(decoded[name].kind, []).append(name)
    kinds = sorted(by_kind)

    def draw():
        names = by_kind[kinds[int(rng.integers(len(kinds)))]]
        return names[int(rng.integers(len(names)))]

    for _attempt in range(200):
        op = ops[int(rng.integers(len(ops)))]
        names = [draw() for _ in range(3)]
        dst, s0, s1 = (decoded[n] for n in names)
        if operand_problem(op, dst, s0, s1 if op != Op.MOV else Dsd(3)) is None:
            operands = names[:2] if op == Op.MOV else names
            return f"{op.name.lower()} {', '.join(operands)}", operands, op
    return None


def random_program(rng: np.random.Generator) -> tuple[str, int, list, tuple | None]:
    """One random program: its assembly text, how many fabric-input wavelets it consumes, the
    vector instructions it contains (op, operand names, the names whose DSD period takes effect
    within an instruction) and, for an illegal program, the
    ``(kind, detail)`` of its first instruction (the word is patched in by :func:`fuzz_jobs`)."""
    L = int(rng.integers(1, 13))
    repeat = int(rng.choice([0, 0, 1, 2, 3, 4]))
    wrap = int(rng.choice([0, 1, 2, 3, 5]))
    pool = dsd_pool(L, wrap=wrap, repeat=repeat)
    takes = {"fi": -(-L // max(1, repeat))}  # wavelets one use of the fabric input takes
    # operands whose period takes effect within an instruction of length L (dsd_pool's periods)
    periodic = {name for name, period in (("f1", wrap), ("h0", wrap + 1),
                                          ("i16", max(0, wrap - 1))) if 0 < period < L}
    if repeat > 1 and L > 1:
        periodic.add("fi")
    decoded = {name: _decode(decl) for name, decl in pool}
    lines = [f".dsd {name} {decl}" for name, decl in pool]
    lines += [".task 0 main", ".task 1 other", f".reg r1 {rng.standard_normal():.6f}",
              f".reg r2 {rng.standard_normal():.6f}", f".reg r3 {int(rng.integers(-99, 99))}"]
    body, vector, labels = [], [], 0
    fabin_uses = 0
    illegal = None
    if rng.random() < ILLEGAL_FRACTION:
        illegal = ("operands", "opcode", "task")[int(rng.integers(3))]
        body.append("nop")  # replaced by the illegal word
    for _ in range(int(rng.integers(4, 14))):
        roll = rng.random()
        if roll < 0.55:
            picked = _vector_op(rng, pool, decoded)
            if picked is None:
                continue
            text, operands, op = picked
            fabin_uses += sum(takes.get(n, 0) for n in operands[1:])
            vector.append((op, operands, periodic))
            body.append(text)
        elif roll < 0.62:  # a counted loop around a vector instruction (bnz)
            picked = _vector_op(rng, pool, decoded)
            if picked is None:
                continue
            text, operands, op = picked
            n = int(rng.integers(1, 4))
            fabin_uses += n * sum(takes.get(k, 0) for k in operands[1:])
            vector.append((op, operands, periodic))
            labels += 1
            body += [f"li r5, {n}", f"L{labels}:", text, "addi r5, r5, -1", f"bnz r5, L{labels}"]
        elif roll < 0.67:  # a forward jump over an instruction (jmp, or bz on a zero register)
            labels += 1
            jump = [f"jmp J{labels}"] if rng.random() < 0.5 else ["li r6, 0", f"bz r6, J{labels}"]
            skipped = f"li r{int(rng.integers(4, 7))}, {int(rng.integers(-9, 9))}"
            body += [*jump, skipped, f"J{labels}:"]
        elif roll < 0.71:  # task control on the second task
            body.append(["act 1", "blk 1", "unblk 1"][int(rng.integers(3))])
        elif roll < 0.82:
            name = ["f0", "f1", "f2", "b0", "h0", "i0"][int(rng.integers(6))]
            step = int(rng.integers(-8, 24)) if rng.random() < 0.7 else int(rng.integers(-600, 600))
            body.append(f"daddbi {name}, {step}")
        elif roll < 0.91:
            r = int(rng.integers(1, 7))
            body.append(f"li r{r}, {int(rng.integers(-300, 300))}")
        else:
            body.append(f"addi r{int(rng.integers(1, 7))}, r{int(rng.integers(1, 7))}, "
                        f"{int(rng.integers(-5, 5))}")
    lines.append("main:")
    lines += [b if b.endswith(":") else f"    {b}" for b in body]
    lines.append("    halt" if rng.random() < 0.2 else "    end")
    # the second task: one in-bounds vector instruction on memory and registers
    lines += ["other:", "    fadd f0, f0, rs", "    end"]
    return "\n".join(lines), fabin_uses, vector, illegal


def _illegal_word(rng, kind: str, image, decoded: dict) -> tuple[int, ErrorFlag]:
    """An illegal instruction word of ``kind`` and the fault flag docs/isa.md names for it."""
    if kind == "opcode":
        unused = sorted(set(range(1, 64)) - {int(op) for op in Op})
        return int(rng.choice(unused)) << 26, ErrorFlag.OPCODE
    if kind == "task":
        return encode(Op.ACT, imm=int(rng.integers(PARAMS.num_tasks, 1 << 12))), ErrorFlag.TASK
    names = list(decoded)
    colors = _colors(decoded)
    for _attempt in range(1000):
        op = (FLOAT_OPS + INT_OPS)[int(rng.integers(len(FLOAT_OPS) + len(INT_OPS)))]
        picks = [names[int(rng.integers(len(names)))] for _ in range(3)]
        dst, s0, s1 = (decoded[n] for n in picks)
        src1 = s1 if op in TWO_SOURCE_OPS else None
        if isa_forbids(op, dst, s0, src1, colors):
            a, b, c = (image.dsd_names[n] for n in picks)
            return encode(op, a, b, c if src1 is not None else 0), ErrorFlag.OPERANDS
    raise AssertionError("no illegal operand combination found")


#: The pool's declarations by name (for colours).
DECLS = dict(dsd_pool(1))


def _colors(decoded: dict) -> dict:
    """Each fabric DSD's colour, keyed by ``id`` of its decoded :class:`Dsd` (as
    :func:`isa_forbids` takes them)."""
    return {id(d): int(DECLS[n].split("color=")[1].split()[0])
            for n, d in decoded.items() if "color=" in DECLS[n]}


def random_sram(rng: np.random.Generator, words: int) -> np.ndarray:
    values = (rng.standard_normal(words) * 4).astype(np.float32).view(np.uint32)
    pick = rng.random(words) < 0.12
    values[pick] = rng.choice(SPECIALS, pick.sum())
    ints = rng.random(words) < 0.2
    values[ints] = rng.integers(0, 1 << 32, ints.sum(), dtype=np.uint64).astype(np.uint32)
    return values


def _busy_accesses(rng) -> list[tuple[str, int, int]]:
    """One to three configuration accesses for after the run, RUN still set: writes and
    reads of SRAM, program, tables and registers."""
    A = AddressMap
    regions = [(A.SRAM, PARAMS.sram_words), (A.IMEM, PARAMS.imem_words),
               (A.TASKS, PARAMS.num_tasks), (A.DSDS, 2 * PARAMS.num_dsds), (A.REGS, 8)]
    out = []
    for _ in range(int(rng.integers(1, 4))):
        base, size = regions[int(rng.integers(len(regions)))]
        kind = "w" if rng.random() < 0.5 else "r"
        out.append((kind, base + int(rng.integers(size)), int(rng.integers(1 << 32))))
    return out


def _running_reads(rng) -> list[tuple[str, int, int]]:
    """One to three reads docs/isa.md allows at any time: registers, STATUS, CTRL, counters."""
    A = AddressMap
    allowed = [A.REGS + r for r in range(8)] + [A.STATUS, A.CTRL, A.BUSY_CYCLES, A.MACS,
                                                A.RUN_CYCLES, A.ELEMENTS]
    return [("r", int(rng.choice(allowed)), 0) for _ in range(int(rng.integers(1, 4)))]


def refused_while_running(kind: str, addr: int) -> bool:
    """docs/isa.md: SRAM, program and tables are read and written, and registers written, only
    while RUN is clear; registers, STATUS, CTRL and the counters are readable at any time."""
    A = AddressMap
    return addr < A.CTRL if kind == "w" else addr < A.REGS


def refused_reads_with_data(accesses, reads) -> list[int]:
    """Addresses of the refused reads among ``accesses`` that did not return 0 (``reads``: the
    words every read returned, in order)."""
    reads = iter(reads)
    return [addr for kind, addr, _ in accesses
            if kind == "r" and next(reads) != 0 and refused_while_running(kind, addr)]


def _inert_control(rng) -> int:
    """A control word that starts no control task (docs/isa.md, "Tasks")."""
    fields = ({"no_task": 1} if rng.random() < 0.5
              else {"task": int(rng.integers(PARAMS.num_tasks, 32))})
    return control_word(payload=int(rng.integers(1 << 16)), **fields)


def fuzz_jobs() -> list[PEJob]:
    """The fuzz programs as PE jobs; an illegal job's ``expect_fault`` attribute is the flag."""
    rng = np.random.default_rng(SEED)
    jobs = []
    for _ in range(100 * PROGRAMS):
        if len(jobs) == PROGRAMS:
            break
        text, fabin_wavelets, vector, illegal = random_program(rng)
        try:
            image = assemble(text, PARAMS)
        except AsmError:  # e.g. a stride that leaves SRAM at this length: draw again
            continue
        image.add_words(0, random_sram(rng, 300), PARAMS)
        expect = None
        if illegal:
            decoded = {name: _decode(decl) for name, decl in dsd_pool(1)}
            word, expect = _illegal_word(rng, illegal, image, decoded)
            image.program[image.labels["main"]] = word
            fabin_wavelets = 0  # nothing after the fault runs
        stream = random_sram(rng, fabin_wavelets)
        inputs = [(0, 0)] + [(2, int(v)) for v in stream]
        # Control wavelets that start no task (no_task, or a task beyond the table) between
        # the fabric-input data: they must be neither data nor an activation.
        for _ in range(int(rng.integers(0, 3))):
            inputs.insert(int(rng.integers(1, len(inputs) + 1)), (2, _inert_control(rng), 1))
        job = PEJob(f"fuzz{len(jobs)}", image, inputs=inputs, source=text,
                    # SRAM, and the DSD table as the program left it (every field of word
                    # 1, the period included, read back through the configuration bus)
                    read_sram=[(0, PARAMS.sram_words),
                               (AddressMap.DSDS, 2 * PARAMS.num_dsds)],
                    in_pause=float(rng.choice([0, 0.3])),
                    out_pause=float(rng.choice([0, 0.5])),
                    seed=int(rng.integers(1 << 30)))
        if expect is None and rng.random() < 0.2:  # configuration while running
            job.busy_access = _busy_accesses(rng)
        elif expect is None and rng.random() < 0.3:  # ... and in the middle of the program
            job.mid_access = _busy_accesses(rng) if rng.random() < 0.6 else _running_reads(rng)
            job.mid_delay = int(rng.integers(1, 24))
        jobs.append((job, vector, expect))
    if len(jobs) < PROGRAMS:
        raise RuntimeError(f"the generator made only {len(jobs)} assemblable programs of "
                           f"{PROGRAMS} in {100 * PROGRAMS} draws (does the DSD pool fit?)")
    return jobs


def coverage(vector_ops) -> tuple[dict, list]:
    """Counts of (opcode, operand position, operand kind) over the generated legal vector
    instructions, and the holes: bins docs/isa.md allows (:func:`isa_forbids` on the pool) that
    no program generated."""
    decoded = {name: _decode(decl) for name, decl in dsd_pool(1)}
    colors = _colors(decoded)
    counts = {}
    for op, operands, _ in vector_ops:
        for pos, name in zip(("dst", "src0", "src1"), operands):
            key = (op.name, pos, DsdKind(decoded[name].kind).name)
            counts[key] = counts.get(key, 0) + 1
    allowed = set()
    for op in FLOAT_OPS + INT_OPS:
        for dst in decoded:
            for s0 in decoded:
                for s1 in (decoded if op in TWO_SOURCE_OPS else [None]):
                    d, a = decoded[dst], decoded[s0]
                    b = decoded[s1] if s1 else None
                    if not isa_forbids(op, d, a, b, colors):
                        for pos, x in (("dst", d), ("src0", a), ("src1", b)):
                            if x is not None:
                                allowed.add((op.name, pos, DsdKind(x.kind).name))
    return counts, sorted(allowed - set(counts))


@pytest.fixture(scope="module")
def fuzz_results(sim, waves):
    jobs = fuzz_jobs()
    results = run_rtl([job for job, _, _ in jobs], PARAMS, sim=sim, waves=waves)
    return [(job, vector, expect, rtl) for (job, vector, expect), rtl in zip(jobs, results)]


def test_fuzz_programs_match_golden(fuzz_results):
    failures = []
    faults = busy = mid_refused = mid_allowed = mid_running = 0
    for job, _, expect, rtl in fuzz_results:
        golden = run_golden(job, PARAMS)
        faults += bool(golden["status"] & 0xFF00)
        # docs/isa.md: an access made while the program runs either is allowed (a read of a
        # register, STATUS, CTRL or a counter) or is refused, has no effect and sets
        # CONFIG_BUSY without stopping the program; either way the run ends as golden's
        # without the access (the untimed model cannot say when "mid-run" is), plus the flag.
        refused_mid = [(k, a) for k, a, _ in job.mid_access if refused_while_running(k, a)]
        expected = golden
        if refused_mid:
            expected = dict(golden, status=golden["status"] | ErrorFlag.CONFIG_BUSY << 8)
        problems = compare(expected, rtl)
        if job.mid_access:
            mid_running += not (rtl["mid_status"] >> 2) & 1  # STATUS bit 2: idle
            mid_refused += bool(refused_mid)
            mid_allowed += not refused_mid
            problems += [f"RTL: a read of {addr:#x} mid-run returned data"
                         for addr in refused_reads_with_data(job.mid_access, rtl["mid_reads"])]
        if expect is not None:
            for side, result in (("golden", golden), ("rtl", rtl)):
                flags = ErrorFlag((result["status"] >> 8) & 0xFF)
                if flags != expect:
                    problems.append(f"{side} faulted with {flags!r}, docs/isa.md says "
                                    f"{expect!r}")
        refused = [(k, a) for k, a, _ in job.busy_access if refused_while_running(k, a)]
        if refused:
            busy += 1
            for side, result in (("golden", golden), ("rtl", rtl)):
                if not (result["status"] >> 8) & ErrorFlag.CONFIG_BUSY:
                    problems.append(f"{side}: {refused} while running did not set CONFIG_BUSY")
            problems += [f"RTL: a read of {addr:#x} while running returned data"
                         for addr in refused_reads_with_data(job.busy_access, rtl["busy_reads"])]
        if problems:
            failures.append(f"{job.name}: {'; '.join(problems)}\n{_listing(job)}")
    assert not failures, f"{len(failures)} of {len(fuzz_results)} programs differ:\n" + \
        "\n".join(failures[:3])
    # The mix must exercise both clean runs and precise faults, and illegal programs.
    assert 0 < faults < len(fuzz_results), f"{faults} of {len(fuzz_results)} programs faulted"
    assert any(expect for _, _, expect, _ in fuzz_results), "no illegal program was generated"
    assert busy, "no configuration access while running was generated"
    print(f"mid-run configuration accesses: {mid_refused} jobs refused, {mid_allowed} allowed, "
          f"{mid_running} found the PE busy")
    assert mid_refused and mid_allowed, "mid-run accesses: refused and allowed ones both needed"
    assert mid_running >= (mid_refused + mid_allowed) // 2, \
        f"only {mid_running} mid-run accesses found the PE busy"


def test_fuzz_coverage_has_no_holes(fuzz_results):
    counts, holes = coverage([v for _, vector, _, _ in fuzz_results for v in vector])
    print("PE fuzz coverage (opcode, operand, kind):",
          ", ".join(f"{op}/{pos}/{kind}:{n}" for (op, pos, kind), n in sorted(counts.items())))
    assert not holes, f"never generated: {holes}"


def test_fuzz_exercises_dsd_periods(fuzz_results):
    """Instructions whose operand wraps (memory) or repeats (fabric input) within the
    instruction, in every position the ISA allows it: a wrapping destination, wrapping sources,
    a repeating fabric input as either source."""
    seen: dict = {}
    for _, vector, expect, _ in fuzz_results:
        if expect is not None:
            continue
        for _op, operands, periodic in vector:
            for pos, name in zip(("dst", "src0", "src1"), operands):
                if name in periodic:
                    key = (pos, "repeat" if name == "fi" else "wrap")
                    seen[key] = seen.get(key, 0) + 1
    print("DSD periods exercised (position, kind):", seen)
    wanted = {("dst", "wrap"), ("src0", "wrap"), ("src1", "wrap"), ("src0", "repeat"),
              ("src1", "repeat")}
    assert wanted <= set(seen), f"never generated: {sorted(wanted - set(seen))}"


def _listing(job: PEJob) -> str:
    return "program:\n" + job.source
