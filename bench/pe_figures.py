#!/usr/bin/env python3
"""PE figures on RTL: AXPY throughput from SRAM and from the fabric, and unit latencies.

* ``axpy_elements_per_cycle``: a length-256 fp32 AXPY ``y += w * a`` from SRAM: elements per
  cycle from its first element's issue to its last (``*_run_cycles`` also gives the whole run,
  from RUN until the PE is idle again, with task start and pipeline fill and drain);
* ``axpy_fabric_elements_per_cycle``: ``y += x * a`` where ``x`` is a stream of 256 wavelets
  arriving at one per cycle (a fabric-input DSD), started by a wavelet carrying ``a``;
* ``fmul_latency_cycles``, ``fadd_latency_cycles``: the pipeline depths of the binary32 units;
* ``vector_latency_cycles``: issue of an element to its write-back (the vector unit's depth);
* ``task_cycles_per_input``: cycles per arriving wavelet of a wavelet-triggered task, for a
  two-instruction task (``fmul`` of one element, ``end``) and for a seven-instruction data task
  (the layer pipeline's per-input kernel before DSD periods: an 8-element ``fmac`` into one of
  two alternating accumulators, the weight pointer, the counter, ``end``), from the difference
  between runs of 16 and 32 inputs; ``task_switch_cycles`` is the two-instruction figure less
  its two instructions (one task's ``end`` to the next task's first instruction issuing).

Usage: ``python bench/pe_figures.py [--json] [--sim verilator|icarus]``
"""

from __future__ import annotations

import time

import numpy as np
from _common import emit, parse, parser

from pe.fpu import FAdd, FMul
from pe.vector import VectorUnit
from sim.model.pe import PEParams
from sim.tb.harness import default_simulator
from sim.tb.pe_jobs import PEJob, compare, run_golden, run_rtl
from sim.toolchain.asm import assemble

N = 256


def jobs(params: PEParams) -> list[PEJob]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal(N).astype(np.float32).view(np.uint32)
    sram = assemble(f"""
        .dsd y mem fp32 base=0 len={N}
        .dsd w mem fp32 base={N} len={N}
        .dsd a reg fp32 r1
        .reg r1 0.5
        .task 0 main
    main:
        fmac y, w, a
        end
    """, params)
    sram.add_words(N, w, params)
    fabric = assemble(f"""
        .dsd y mem   fp32 base=0 len={N}
        .dsd x fabin fp32 color=2 len={N}
        .dsd a reg   fp32 r7
        .task 0 main
    main:
        fmac y, x, a
        end
    """, params)
    stream = [(2, int(v)) for v in rng.standard_normal(N).astype(np.float32).view(np.uint32)]
    return [
        PEJob("axpy_sram", sram, inputs=[(0, 0)], read_sram=[(0, N)]),
        PEJob("axpy_fabric", fabric, inputs=[(0, 0x3F000000)] + stream, read_sram=[(0, N)]),
        *task_jobs(params, rng),
    ]


#: The data tasks of ``task_cycles_per_input``: instructions -> assembly.
TASKS = {
    2: """
        .dsd y mem fp32 base=0 len=1
        .dsd w mem fp32 base=16 len=1
        .dsd x reg fp32 r7
        .task 0 main
    main:
        fmul y, w, x
        end
    """,
    7: """
        .dsd y mem fp32 base=0 len=8
        .dsd w mem fp32 base=16 len=8
        .dsd x reg fp32 r7
        .reg r1 1000
        .reg r2 0
        .reg r5 8
        .task 0 main
    main:
        fmac y, w, x
        daddbi w, 8
        sub r2, r5, r2
        dsetb y, r2
        addi r1, r1, -1
        bz r1, done
        end
    done:
        end
    """,
}
#: Input counts whose runs are compared (the difference cancels start and drain).
TASK_INPUTS = (16, 32)


def task_jobs(params: PEParams, rng) -> list[PEJob]:
    """One job per (task, input count) of :data:`TASKS` x :data:`TASK_INPUTS`."""
    out = []
    for n, src in TASKS.items():
        image = assemble(src, params)
        image.add_words(16, rng.standard_normal(8 * max(TASK_INPUTS)).astype(np.float32)
                        .view(np.uint32), params)
        for count in TASK_INPUTS:
            xs = rng.standard_normal(count).astype(np.float32).view(np.uint32)
            out.append(PEJob(f"task{n}_{count}", image, inputs=[(0, int(v)) for v in xs],
                             read_sram=[(0, 16)]))
    return out


def measure(sim: str) -> dict:
    params = PEParams()
    todo = jobs(params)
    t0 = time.perf_counter()
    results = run_rtl(todo, params, sim=sim)
    figures, runs = {}, {}
    for job, rtl in zip(todo, results):
        problems = compare(run_golden(job, params), rtl)
        if problems:
            raise SystemExit(f"{job.name}: RTL differs from the golden model: {problems}")
        if job.name.startswith("task"):
            runs[job.name] = rtl["cycles"]
            continue
        key = "axpy_elements_per_cycle" if job.name == "axpy_sram" else \
            "axpy_fabric_elements_per_cycle"
        window = rtl["issue_window"] or rtl["cycles"]
        figures[key] = round(rtl["elements"] / window, 4)
        figures[f"{job.name}_issue_cycles"] = window
        figures[f"{job.name}_run_cycles"] = rtl["cycles"]
    few, many = TASK_INPUTS
    per_input = {n: (runs[f"task{n}_{many}"] - runs[f"task{n}_{few}"]) / (many - few)
                 for n in TASKS}
    figures["task_cycles_per_input"] = {str(n): round(c, 2) for n, c in per_input.items()}
    figures["task_switch_cycles"] = round(per_input[2] - 2, 2)
    # Pipeline depths the units are built with, not measured here: tests/tb_fpu.py collects
    # every FMul/FAdd result exactly this many cycles after its operands, so a unit that
    # disagreed would fail the tests. Issue to write-back: the vector unit's depth (S1, S2,
    # widen, FMul, FAdd, narrow; pe.vector.VectorUnit.DEPTH).
    depth = VectorUnit.DEPTH
    figures.update(
        fmul_latency_cycles=FMul.latency,
        fadd_latency_cycles=FAdd.latency,
        vector_latency_cycles=depth,
        elements=N,
        simulator=sim,
        wall_seconds=round(time.perf_counter() - t0, 2),
    )
    return figures


def text(figures: dict) -> str:
    """The figures as a short report."""
    return "\n".join([
        f"PE (default parameters) on {figures['simulator']}",
        f"  AXPY from SRAM, {N} elements     {figures['axpy_elements_per_cycle']:.3f} "
        f"elements/cycle ({figures['axpy_sram_issue_cycles']} cycles issuing, "
        f"{figures['axpy_sram_run_cycles']} in all)",
        f"  AXPY from the fabric, {N}        {figures['axpy_fabric_elements_per_cycle']:.3f} "
        f"elements/cycle ({figures['axpy_fabric_issue_cycles']} cycles issuing, "
        f"{figures['axpy_fabric_run_cycles']} in all)",
        f"  FMul latency                      {figures['fmul_latency_cycles']} cycles "
        f"(design constant, checked by tests/tb_fpu.py)",
        f"  FAdd latency                      {figures['fadd_latency_cycles']} cycles "
        f"(design constant, checked by tests/tb_fpu.py)",
        f"  issue to write-back               {figures['vector_latency_cycles']} cycles "
        f"(by construction: S1, S2, widen 2, FMul, FAdd, narrow 2)",
        *[f"  a {n}-instruction data task       {c:.2f} cycles per input"
          for n, c in figures["task_cycles_per_input"].items()],
        f"  task switch                       {figures['task_switch_cycles']:.2f} cycles "
        f"(end to the next task's first instruction)",
    ])


def main() -> None:
    ap = parser(__doc__)
    args = parse(ap, sim=True)
    figures = measure(args.sim or default_simulator())
    emit(args, figures, lambda: text(figures))


if __name__ == "__main__":
    main()
