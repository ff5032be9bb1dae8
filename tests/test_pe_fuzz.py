"""PE fuzzer: random instruction sequences on the RTL against the golden interpreter.

Each program declares a fixed pool of DSDs (memory vectors of every format and stride sign,
registers, fabric input and output), fills SRAM with random values and special values, and runs
a random mix of scalar and vector instructions — legal operand combinations only, except that
DSD bases move at run time and may run out of SRAM, which must fault precisely on both sides.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_pe import PARAMS, SPECIALS

from pe.isa import Op
from sim.model.pe import Dsd, operand_problem
from sim.tb.pe_jobs import PEJob, compare, run_golden, run_rtl
from sim.toolchain.asm import AsmError, assemble

SEED = int(os.environ.get("PE_FUZZ_SEED", "7"))
PROGRAMS = int(os.environ.get("PE_FUZZ_PROGRAMS", "40"))

FLOAT_OPS = [Op.MOV, Op.FADD, Op.FMUL, Op.FMAC, Op.FMAX]
INT_OPS = [Op.IADD, Op.IMUL, Op.IMAC, Op.IMAX]


def dsd_pool(length: int) -> list[tuple[str, str]]:
    """(name, declaration) of the DSDs every fuzz program declares."""
    L = length
    return [
        ("f0", f"mem fp32 base=0 len={L}"),
        ("f1", f"mem fp32 base=40 len={L} stride=2"),
        ("f2", f"mem fp32 base={100 + L} len={L} stride=-1"),
        ("b0", f"mem bf16 base=300 len={L}"),
        ("h0", f"mem fp16 base=360 len={L} stride=3"),
        ("e4", f"mem e4m3 base=800 len={L}"),
        ("e5", f"mem e5m2 base=840 len={L}"),
        ("i0", f"mem int32 base=240 len={L}"),
        ("i8", f"mem int8 base=1000 len={L}"),
        ("i16", f"mem int16 base=520 len={L}"),
        ("rs", "reg fp32 r1"),
        ("ra", "reg fp32 r2"),
        ("ri", "reg int32 r3"),
        ("fi", f"fabin fp32 color=2 len={L}"),
        ("fo", f"fabout fp32 color=3 len={L}"),
        ("fb", f"fabout bf16 color=4 len={L}"),
    ]


def _decode(decl: str) -> Dsd:
    from hdl.formats import Format
    from pe.isa import DsdKind

    parts = decl.split()
    kind = {"mem": DsdKind.MEM, "fabin": DsdKind.FABIN, "fabout": DsdKind.FABOUT,
            "reg": DsdKind.REG}[parts[0]]
    return Dsd(kind, Format.from_name(parts[1]))


def random_program(rng: np.random.Generator) -> tuple[str, int]:
    """Assembly text of one random program and how many fabric-input wavelets it consumes."""
    L = int(rng.integers(1, 13))
    pool = dsd_pool(L)
    decoded = {name: _decode(decl) for name, decl in pool}
    lines = [f".dsd {name} {decl}" for name, decl in pool]
    lines += [".task 0 main", f".reg r1 {rng.standard_normal():.6f}",
              f".reg r2 {rng.standard_normal():.6f}", f".reg r3 {int(rng.integers(-99, 99))}"]
    body = []
    fabin_uses = 0
    for _ in range(int(rng.integers(4, 14))):
        roll = rng.random()
        if roll < 0.65:
            ops = FLOAT_OPS if rng.random() < 0.75 else INT_OPS
            for _attempt in range(200):
                op = ops[int(rng.integers(len(ops)))]
                names = [pool[int(rng.integers(len(pool)))][0] for _ in range(3)]
                dst, s0, s1 = (decoded[n] for n in names)
                if operand_problem(op, dst, s0, s1 if op != Op.MOV else Dsd(3)) is None:
                    break
            else:
                continue
            operands = names[:2] if op == Op.MOV else names
            fabin_uses += sum(decoded[n].kind == 1 for n in operands[1:])
            body.append(f"{op.name.lower()} {', '.join(operands)}")
        elif roll < 0.8:
            name = ["f0", "f1", "f2", "b0", "h0", "i0"][int(rng.integers(6))]
            step = int(rng.integers(-8, 24)) if rng.random() < 0.7 else int(rng.integers(-600, 600))
            body.append(f"daddbi {name}, {step}")
        elif roll < 0.9:
            r = int(rng.integers(1, 7))
            body.append(f"li r{r}, {int(rng.integers(-300, 300))}")
        else:
            body.append(f"addi r{int(rng.integers(1, 7))}, r{int(rng.integers(1, 7))}, "
                        f"{int(rng.integers(-5, 5))}")
    lines.append("main:")
    lines += [f"    {b}" for b in body] + ["    end"]
    return "\n".join(lines), fabin_uses * L


def random_sram(rng: np.random.Generator, words: int) -> np.ndarray:
    values = (rng.standard_normal(words) * 4).astype(np.float32).view(np.uint32)
    pick = rng.random(words) < 0.12
    values[pick] = rng.choice(SPECIALS, pick.sum())
    ints = rng.random(words) < 0.2
    values[ints] = rng.integers(0, 1 << 32, ints.sum(), dtype=np.uint64).astype(np.uint32)
    return values


def fuzz_jobs() -> list[PEJob]:
    rng = np.random.default_rng(SEED)
    jobs = []
    while len(jobs) < PROGRAMS:
        text, fabin_wavelets = random_program(rng)
        try:
            image = assemble(text, PARAMS)
        except AsmError:  # e.g. a stride that leaves SRAM at this length: draw again
            continue
        image.add_words(0, random_sram(rng, 300), PARAMS)
        stream = random_sram(rng, fabin_wavelets)
        inputs = [(0, 0)] + [(2, int(v)) for v in stream]
        jobs.append(PEJob(f"fuzz{len(jobs)}", image, inputs=inputs, source=text,
                          read_sram=[(0, PARAMS.sram_words)],
                          in_pause=float(rng.choice([0, 0.3])),
                          out_pause=float(rng.choice([0, 0.5])),
                          seed=int(rng.integers(1 << 30))))
    return jobs


@pytest.fixture(scope="module")
def fuzz_results(sim, waves):
    jobs = fuzz_jobs()
    return list(zip(jobs, run_rtl(jobs, PARAMS, sim=sim, waves=waves)))


def test_fuzz_programs_match_golden(fuzz_results):
    failures = []
    faults = 0
    for job, rtl in fuzz_results:
        golden = run_golden(job, PARAMS)
        faults += bool(golden["status"] & 0xFF00)
        problems = compare(golden, rtl)
        if problems:
            failures.append(f"{job.name}: {'; '.join(problems)}\n{_listing(job)}")
    assert not failures, f"{len(failures)} of {len(fuzz_results)} programs differ:\n" + \
        "\n".join(failures[:3])
    # The mix must exercise both clean runs and precise faults.
    assert 0 < faults < len(fuzz_results), f"{faults} of {len(fuzz_results)} programs faulted"


def _listing(job: PEJob) -> str:
    return "program:\n" + job.source
