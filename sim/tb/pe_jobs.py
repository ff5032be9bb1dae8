"""Run PE programs on the golden model and on the RTL (the cocotb bench :mod:`sim.tb.pe_bench`),
and compare.

A :class:`PEJob` is an assembled :class:`~sim.toolchain.asm.PEImage`, the wavelets sent to the PE
and the SRAM ranges to read back. :func:`run_golden` and :func:`run_rtl` return results with the
same keys; :func:`compare` lists the differences (empty = bit-identical).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pe.isa import NUM_REGS, AddressMap
from pe.params import PEParams
from sim.model.pe import PEModel
from sim.tb.harness import run_cocotb
from sim.toolchain.asm import PEImage

__all__ = ["PEJob", "run_golden", "run_rtl", "compare", "STATUS_COMPARED"]

#: STATUS bits compared between golden and RTL: halted and the error flags.
STATUS_COMPARED = AddressMap.STATUS_HALTED | AddressMap.STATUS_ERRORS


@dataclass
class PEJob:
    """One PE run.

    Attributes
    ----------
    name : str
    image : PEImage
        Program, tables, registers and SRAM contents.
    inputs : list of (colour, data) or (colour, data, ctrl)
        Wavelets sent into the PE's ramp input, in order (per colour order is kept);
        ``ctrl = 1`` makes a control wavelet.
    read_sram : list of (start address, count)
        Ranges read back through the configuration bus once the PE is stopped: SRAM words
        from address 0, or any table at its :class:`pe.isa.AddressMap` address (the DSD
        table's words, for example).
    in_pause, out_pause : float
        Probability of an idle input cycle / a backpressure output cycle (RTL only).
    max_cycles : int
        RTL cycle limit (a timeout is reported, not raised).
    seed : int
        Seed of the pause patterns.
    source : str
        The assembly text, for failure reports.
    busy_access : list of (kind, address, value)
        Configuration accesses made once the program is done, with RUN still set: ``("w",
        address, value)`` writes, ``("r", address, 0)`` reads (their values are in the result's
        ``busy_reads``). docs/isa.md: SRAM, program and tables are neither read nor written, and
        registers not written, while RUN is set (CONFIG_BUSY).
    mid_access : list of (kind, address, value)
        Configuration accesses made while the program runs, ``mid_delay`` cycles after RUN
        (RTL only: where the PE is then depends on its timing). Their read values are in the
        result's ``mid_reads``, and ``mid_status`` is STATUS read just before them.
    mid_delay : int
        Cycles from RUN to the first of ``mid_access``.
    """

    name: str
    image: PEImage
    inputs: list[tuple[int, ...]] = field(default_factory=list)
    read_sram: list[tuple[int, int]] = field(default_factory=list)
    in_pause: float = 0.0
    out_pause: float = 0.0
    max_cycles: int = 20000
    seed: int = 1
    source: str = ""
    busy_access: list[tuple[str, int, int]] = field(default_factory=list)
    mid_access: list[tuple[str, int, int]] = field(default_factory=list)
    mid_delay: int = 0

    def to_json(self) -> dict:
        """The job as the bench (:mod:`sim.tb.pe_bench`) reads it."""
        return {
            "name": self.name,
            "config": [[a, [int(w) for w in ws]] for a, ws in self.image.config_blocks()],
            "inputs": [[int(w[0]), int(w[1]), int(w[2]) if len(w) > 2 else 0]
                       for w in self.inputs],
            "read_sram": [list(r) for r in self.read_sram],
            "in_pause": self.in_pause,
            "out_pause": self.out_pause,
            "max_cycles": self.max_cycles,
            "seed": self.seed,
            "busy_access": [[k, int(a), int(v)] for k, a, v in self.busy_access],
            "mid_access": [[k, int(a), int(v)] for k, a, v in self.mid_access],
            "mid_delay": self.mid_delay,
        }


def run_golden(job: PEJob, params: PEParams) -> dict:
    """Run ``job`` on the golden model; returns the result keys of :mod:`sim.tb.pe_bench`.

    ``mid_access`` is not modelled (the untimed model has no "while it runs"): compare a job
    that has them only where they cannot change the outcome (reads that are allowed while
    running)."""
    pe = PEModel(params)
    pe.cfg_write(AddressMap.CTRL, 2)
    for addr, words in job.image.config_blocks():
        for i, w in enumerate(words):
            pe.cfg_write(addr + i, int(w))
    for wavelet in job.inputs:
        pe.push_wavelet(*wavelet)
    pe.cfg_write(AddressMap.CTRL, 1)
    pe.run()
    busy_reads = []
    for kind, addr, value in job.busy_access:
        if kind == "w":
            pe.cfg_write(addr, value)
        else:
            busy_reads.append(pe.cfg_read(addr))
    pe.cfg_write(AddressMap.CTRL, 0)
    return {
        "name": job.name,
        "outputs": [[c, d, k] for c, d, k in pe.outbox],
        "status": pe.cfg_read(AddressMap.STATUS),
        "regs": [pe.cfg_read(AddressMap.REGS + r) for r in range(NUM_REGS)],
        "macs": pe.macs,
        "elements": pe.elements,
        "busy_reads": busy_reads,
        "sram": {str(s): [pe.cfg_read(AddressMap.SRAM + s + i) for i in range(n)]
                 for s, n in job.read_sram},
    }


def run_rtl(jobs: list[PEJob], params: PEParams, *, sim: str | None = None,
            waves: bool = False) -> list[dict]:
    """Run ``jobs`` on the RTL PE with ``params`` (one build, one simulator run) and return
    their results."""
    from pe.pe import PE

    dut = PE(params)
    name = (f"pe_s{params.sram_words}_i{params.imem_words}_c{params.num_colors}"
            f"_t{params.num_tasks}_d{params.num_dsds}_q{params.in_depth}")
    with tempfile.TemporaryDirectory() as tmp:
        jobs_file = Path(tmp) / "jobs.json"
        results_file = Path(tmp) / "results.json"
        jobs_file.write_text(json.dumps(
            {"num_colors": params.num_colors, "sram_words": params.sram_words,
             "cases": [j.to_json() for j in jobs]}))
        run_cocotb(dut, toplevel=name, test_module="sim.tb.pe_bench", sim=sim, waves=waves,
                   public=("issued",),  # the vector unit's issue strobe, for bench/pe_figures.py
                   extra_env={"PE_JOBS": str(jobs_file), "PE_RESULTS": str(results_file)})
        return json.loads(results_file.read_text())


def compare(golden: dict, rtl: dict) -> list[str]:
    """Differences between a golden and an RTL result (empty list = bit-identical)."""
    problems = []
    if rtl.get("timeout"):
        problems.append(f"RTL timed out after {rtl['cycles']} cycles "
                        f"({rtl['pending_inputs']} inputs not accepted)")
    if golden["outputs"] != rtl["outputs"]:
        g, r = golden["outputs"], rtl["outputs"]
        first = next((i for i, (a, b) in enumerate(zip(g, r)) if a != b), min(len(g), len(r)))
        problems.append(f"outputs differ: golden {len(g)} wavelets, RTL {len(r)}; first "
                        f"difference at {first}: golden {g[first:first + 3]} "
                        f"RTL {r[first:first + 3]}")
    if golden["status"] & STATUS_COMPARED != rtl["status"] & STATUS_COMPARED:
        problems.append(f"status differs: golden {golden['status']:#06x}, RTL {rtl['status']:#06x}")
    if golden["regs"] != rtl["regs"]:
        problems.append(f"registers differ: golden {[hex(v) for v in golden['regs']]}, "
                        f"RTL {[hex(v) for v in rtl['regs']]}")
    for key in ("macs", "elements", "busy_reads"):
        if golden[key] != rtl[key]:
            problems.append(f"{key} differ: golden {golden[key]}, RTL {rtl[key]}")
    for start, words in golden["sram"].items():
        got = rtl["sram"].get(start)
        if got != words:
            diffs = [(int(start) + i, a, b) for i, (a, b) in enumerate(zip(words, got or []))
                     if a != b]
            shown = ", ".join(f"[{a}] golden {g:#010x} RTL {r:#010x}" for a, g, r in diffs[:4])
            problems.append(f"SRAM from {start} differs in {len(diffs)} words: {shown}")
    return problems
