"""cocotb bench of one PE: runs a list of jobs (load, run, read back) and writes what it saw.

:func:`sim.tb.pe_jobs.run_rtl` runs it; its callers (tests/test_pe.py, bench/pe_figures.py)
build the jobs from assembled programs and run the same programs on the golden model to compare.
Environment: ``PE_JOBS`` (JSON file with the jobs), ``PE_RESULTS`` (JSON file to write).

A job: ``config`` (``[address, [words]]`` blocks), ``inputs`` (``[colour, data, ctrl]`` wavelets
sent into the PE's ramp input, colour-aware), ``in_pause`` / ``out_pause`` (probability of an idle
or backpressure cycle), ``max_cycles``, ``read_sram`` (``[start, count]`` ranges), and
configuration accesses ``mid_access`` (``mid_delay`` cycles after RUN, while the program runs) and
``busy_access`` (once it is done, RUN still set). Its result: ``cycles`` (from RUN to idle, the
mid-run accesses' cycles included), ``issue_window`` (cycles from the first to the last vector
element issued, when the issue strobe is visible), ``timeout``, ``outputs`` (``[colour, data,
ctrl]``), ``sram``, ``regs``, ``status``, the counters, ``busy_reads``, ``mid_reads`` and
``mid_status`` (STATUS just before the mid-run accesses). SRAM and registers are zeroed before each
job (as the golden model's are) unless the job says ``zero_sram: false``.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import ClockCycles

from pe.isa import NUM_REGS, AddressMap
from sim.model.wavelet import Wavelet
from sim.tb.config_bus import ConfigBusDriver
from sim.tb.links import LinkBench, LinkSink, LinkSource, pauses, reset, start_clock

A = AddressMap


def _pauses(seed: int, p: float):
    """Random pauses with probability ``p`` (none for ``p = 0``)."""
    return pauses("random", seed, busy=p) if p > 0 else None


async def _accesses(cfg, accesses) -> list[int]:
    """Make ``accesses`` (``[kind, address, value]``: ``"w"`` writes, else reads) on the
    configuration bus; returns the words read, in order."""
    reads = []
    for kind, addr, value in accesses:
        if kind == "w":
            await cfg.write(addr, value)
        else:
            reads.append(await cfg.read(addr))
    return reads


@cocotb.test()
async def run_jobs(dut):
    """Run every job of ``PE_JOBS`` in order and write the results to ``PE_RESULTS``."""
    with open(os.environ["PE_JOBS"]) as fh:
        jobs = json.load(fh)
    num_colors = jobs["num_colors"]
    start_clock(dut)
    cfg = ConfigBusDriver(dut)
    await reset(dut)
    results = []
    for job in jobs["cases"]:
        seed = job.get("seed", 1)
        src = LinkSource(dut, "ramp_in", num_colors, pause=_pauses(seed, job.get("in_pause", 0)))
        sink = LinkSink(dut, "ramp_out", num_colors,
                        pause=_pauses(seed + 1, job.get("out_pause", 0)))
        issue_cycles: list[int] = []
        issued = getattr(dut, "issued", None)  # the vector unit's issue strobe, if visible

        def watch_issue(cycle, issued=issued, log=issue_cycles):
            if issued is not None and int(issued.value):
                log.append(cycle)

        bench = LinkBench(dut, [src], [sink], hooks=[watch_issue])
        await cfg.write(A.CTRL, 2)  # CLEAR, stopped
        if job.get("zero_sram", True):  # the golden model starts from zeroed SRAM too
            await cfg.write_block(A.SRAM, [0] * jobs["sram_words"])
            await cfg.write_block(A.REGS, [0] * NUM_REGS)
        for addr, words in job["config"]:
            await cfg.write_block(addr, words)
        bench.start()
        src.send(Wavelet(d, c, k) for c, d, k in job["inputs"])
        await cfg.write(A.CTRL, 1)  # RUN
        start = bench.cycle
        max_cycles = job.get("max_cycles", 20000)
        timeout = False
        quiet = 0
        mid = job.get("mid_access", [])
        mid_reads, mid_status = [], None
        while True:
            await ClockCycles(dut.clk, 1)
            if mid and bench.cycle - start >= job["mid_delay"]:
                mid_status = await cfg.read(A.STATUS)  # readable at any time
                mid_reads = await _accesses(cfg, mid)  # while the program runs (or just ended)
                mid = []
            # Done when every input is taken and the PE is idle, or when it halted (a halted
            # PE takes no more wavelets: inputs beyond its queues stay pending).
            done = int(dut.idle.value) and (src.pending == 0 or int(dut.halted.value))
            if done:
                quiet += 1
                if quiet >= 3:
                    break
            else:
                quiet = 0
            if bench.cycle - start > max_cycles:
                timeout = True
                break
        cycles = bench.cycle - start - quiet
        bench.stop()
        busy_reads = await _accesses(cfg, job.get("busy_access", []))  # RUN still set
        await cfg.write(A.CTRL, 0)  # stop, so memory can be read back
        result = {
            "name": job["name"],
            "cycles": cycles,
            "timeout": timeout,
            "pending_inputs": src.pending,
            "outputs": [[w.color, w.data, w.ctrl] for _, w in sink.received],
            "status": await cfg.read(A.STATUS),
            "regs": [await cfg.read(A.REGS + r) for r in range(NUM_REGS)],
            "macs": await cfg.read(A.MACS),
            "elements": await cfg.read(A.ELEMENTS),
            "busy_cycles": await cfg.read(A.BUSY_CYCLES),
            "busy_reads": busy_reads,
            "mid_reads": mid_reads,
            "mid_status": mid_status,
            "issue_window": (issue_cycles[-1] - issue_cycles[0] + 1) if issue_cycles else None,
            "sram": {},
        }
        for start_addr, count in job.get("read_sram", []):
            result["sram"][str(start_addr)] = await cfg.read_block(A.SRAM + start_addr, count)
        results.append(result)
        dut.ramp_in__valid.value = 0
        await ClockCycles(dut.clk, 2)
    with open(os.environ["PE_RESULTS"], "w") as fh:
        json.dump(results, fh)
