"""The RTL side of the host driver: a cocotb test that serves driver commands over a socket by
handing whole batches to the host engines of :mod:`sim.tb.sim_top`.

:class:`sim.host.rtl.RTLBackend` starts the simulator (top :data:`sim.tb.sim_top.SIM_TOP`) with this
module as its cocotb test and talks to it through the Unix socket named by
``WAFER_DRIVER_SOCKET`` (:mod:`sim.host.wire`). Every message is ``(command, arguments)``; every
reply is ``("ok", value)`` or ``("error", message)``. While the driver thinks, the simulation is
paused; while a command runs, the simulator runs free and no Python runs until the top stops
itself (``await RisingEdge(stopped)``): Python loads the engines' memories at a command boundary
and reads them back at the end, and only wakes up in between if a ring must be refilled or
emptied (queues longer than a ring).

Commands:

``chain(words, answers)``
    stream configuration words into ``chain_in`` and collect ``chain_out`` until ``answers``
    READ answers have come back and the chain has drained; returns the words that came out.
``run(max_cycles, expect, sends)``
    queue ``sends`` (``{port: [(data, colour, ctrl), ...]}``) into the source engines and run
    until every queued wavelet has entered, each ``expect[port]`` count of wavelets has come out
    since the last run, and the fabric has been idle for 3 cycles (or the error line rises, or
    ``max_cycles`` pass); returns the cycles, the wavelets received per port since the last
    run, and what was still busy.
``faults(modes)``
    set the fault-injection modes (one per physical tile).
``pause(level)``
    make every sink engine refuse ``level`` sixteenths of the cycles (LFSR backpressure).
``stats``
    wall seconds spent in commands and, of those, in the free-running simulator; stops.
``vpi_cost(n)``
    time ``n`` writes and ``n`` reads of ring words and of a top-level port through cocotb
    (microseconds per access; for ``bench/sim_speed.py``).
``quit``

The engines' link checks are sticky bits read after every command; a set bit fails the command
with a message naming the port.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.handle import Immediate
from cocotb.triggers import RisingEdge

from fabric.array import FabricParams
from sim.host.wire import recv_message, send_message
from sim.model.wavelet import Wavelet, pack, unpack
from sim.tb.links import reset
from sim.tb.sim_top import (
    STOP_CHECK,
    STOP_DONE,
    STOP_ERROR,
    STOP_FULL,
    STOP_LIMIT,
    STOP_REFILL,
    EngineParams,
    SimTop,
)

MASK32 = 0xFFFF_FFFF
#: Cycles the done condition of a run must hold (the fabric idle, nothing in flight).
RUN_SETTLE = 3


class EngineCheckError(RuntimeError):
    """A sticky link check of the simulation top failed (the message names the port)."""


class HostEngines:
    """The Python side of :class:`sim.tb.sim_top.SimTop`: rings, counters and run control.

    Parameters
    ----------
    dut : cocotb handle of the simulation top
    params : FabricParams
    engines : EngineParams
    """

    def __init__(self, dut, params: FabricParams, engines: EngineParams, trace=None):
        self.dut, self.params, self.engines = dut, params, engines
        #: A text file receiving every write and every run (``sim/tb/replay.cpp`` format).
        self.trace = trace
        top = SimTop(params, engines)
        from hdl.refused import mark_unused

        mark_unused(top)
        self.ports = top.ports
        self.check_names = top.check_names()
        self.port_bit = {p: 1 << k for k, p in enumerate(self.ports)}

        def h(name):
            return getattr(dut, name)

        self.src = {p: {"mem": f"src_{p}_mem", "wr": f"src_{p}_wr", "rd": h(f"src_{p}_rd")}
                    for p in self.ports}
        self.snk = {p: {"mem": h(f"snk_{p}_mem"), "wr": h(f"snk_{p}_wr"), "rd": f"snk_{p}_rd",
                        "target": f"snk_{p}_target"} for p in self.ports}
        self._handles: dict[str, object] = {}
        self.src_wr = dict.fromkeys(self.ports, 0)  # wavelets written into each source ring
        self.pending: dict[str, deque[int]] = {p: deque() for p in self.ports}
        self.snk_rd = dict.fromkeys(self.ports, 0)  # wavelets read out of each sink ring
        self.received: dict[str, list[int]] = {p: [] for p in self.ports}  # since the last run
        self.chq_wr = 0
        self.chq_pending: deque[int] = deque()
        self.chc_rd = 0
        self.chain_out: list[int] = []
        self.seq = 0
        self.cycles = 0  # running cycles of the last command
        #: Wall seconds in commands and in the free-running simulator, and the number of stops.
        self.stats = {"command_s": 0.0, "simulating_s": 0.0, "stops": 0}
        for name in ("src_more", "chq_more", "pause", "chq_wr", "chc_rd", "answers_target",
                     "mode", "limit", "start_seq"):
            self.set(name, 0)
        self.set("settle", 1)
        for p in self.ports:
            self.set(self.src[p]["wr"], 0)
            self.set(self.snk[p]["rd"], 0)
            self.set(self.snk[p]["target"], 0)

    def set(self, name: str, value: int) -> None:
        """Write top-level port ``name`` (and trace it)."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = getattr(self.dut, name)
        handle.value = value
        if self.trace is not None:
            self.trace.write(f"P {name} {value:x}\n")

    def _write_ring(self, name: str, depth: int, start: int, words) -> int:
        """Write ``words`` into ring memory ``name`` from counter value ``start``; the new
        counter value."""
        mem = self._handles.get(name)
        if mem is None:
            mem = self._handles[name] = getattr(self.dut, name)
        trace = self.trace
        for w in words:
            i = start % depth
            mem[i].value = w
            if trace is not None:
                trace.write(f"M {name} {i} {w:x}\n")
            start += 1
        return start & MASK32
    # ---- rings -------------------------------------------------------------------------------
    def _fill(self) -> None:
        """Write pending words into every ring with room; set the ``*_more`` bits."""
        depth = self.engines.queue_words
        more = 0
        for p in self.ports:
            queue = self.pending[p]
            if not queue:
                continue
            eng = self.src[p]
            room = depth - ((self.src_wr[p] - int(eng["rd"].value)) & MASK32)
            words = [queue.popleft() for _ in range(min(room, len(queue)))]
            self.src_wr[p] = self._write_ring(eng["mem"], depth, self.src_wr[p], words)
            self.set(eng["wr"], self.src_wr[p])
            if queue:
                more |= self.port_bit[p]
        self.set("src_more", more)
        if self.chq_pending:
            depth = self.engines.chain_words
            room = depth - ((self.chq_wr - int(self.dut.chq_rd.value)) & MASK32)
            words = [self.chq_pending.popleft() for _ in range(min(room, len(self.chq_pending)))]
            self.chq_wr = self._write_ring("chq_mem", depth, self.chq_wr, words)
            self.set("chq_wr", self.chq_wr)
        self.set("chq_more", int(bool(self.chq_pending)))

    def _drain(self) -> None:
        """Read every sink ring and the chain capture out; free their space."""
        depth = self.engines.capture_words
        for p in self.ports:
            eng = self.snk[p]
            wr = int(eng["wr"].value)
            n = (wr - self.snk_rd[p]) & MASK32
            if n:
                mem, rd, out = eng["mem"], self.snk_rd[p], self.received[p]
                out.extend(int(mem[(rd + i) % depth].value) for i in range(n))
                self.snk_rd[p] = wr
                self.set(eng["rd"], wr)
        wr = int(self.dut.chc_wr.value)
        n = (wr - self.chc_rd) & MASK32
        if n:
            depth = self.engines.chain_capture_words
            mem, rd = self.dut.chc_mem, self.chc_rd
            self.chain_out.extend(int(mem[(rd + i) % depth].value) for i in range(n))
            self.chc_rd = wr
            self.set("chc_rd", wr)

    def _check(self) -> None:
        bits = int(self.dut.checks.value)
        if bits:
            failed = [name for k, name in enumerate(self.check_names) if bits >> k & 1]
            raise EngineCheckError("link check failed in the simulation top: "
                                   + "; ".join(failed))

    # ---- commands ----------------------------------------------------------------------------
    async def go(self, *, mode: int, settle: int, limit: int,
                 targets: dict[str, int] | None = None, answers: int = 0,
                 tag: str = "run") -> int:
        """Run the engines until done, an error (run mode) or ``limit`` running cycles; refill
        and empty rings on the way. Returns the last stop's ``STOP_*`` bits; :attr:`cycles` has
        the running cycles.

        Raises
        ------
        EngineCheckError
            If a link check failed.
        """
        dut = self.dut
        self.set("mode", mode)
        self.set("settle", settle)
        self.set("answers_target", (int(dut.answers.value) + answers) & MASK32)
        for p in self.ports:
            target = self.snk_rd[p] - len(self.received[p]) + (targets or {}).get(p, 0)
            self.set(self.snk[p]["target"], target & MASK32)
        self.cycles = 0
        while True:
            self._fill()
            self.set("limit", max(1, limit - self.cycles))
            self.seq = (self.seq + 1) & 0xFF
            self.set("start_seq", self.seq)
            if self.trace is not None:
                self.trace.write(f"G {tag}\n")
            t0 = time.perf_counter()
            await RisingEdge(dut.stopped)
            self.stats["simulating_s"] += time.perf_counter() - t0
            self.stats["stops"] += 1
            reason = int(dut.reason.value)
            self.cycles += int(dut.run_cycles.value)
            self._drain()
            if reason & STOP_CHECK:
                self._check()
            if reason & (STOP_DONE | STOP_ERROR | STOP_LIMIT):
                return reason
            if not reason & (STOP_FULL | STOP_REFILL):
                raise RuntimeError(f"the simulation top stopped for no reason ({reason:#x})")

    async def chain(self, words: list[int], answers: int) -> list[int]:
        """Push configuration words through the chain; every word that came out."""
        self.chain_out = []
        self.chq_pending.extend(words)
        R, P = self.params.rows, self.params.physical_cols
        limit = 100 * (len(words) + 1000)
        reason = await self.go(mode=0, settle=4 * R * P + 8, limit=limit, answers=answers,
                               tag="chain")
        if not reason & STOP_DONE:
            raise RuntimeError(f"watchdog: configuration chain answers not reached within "
                               f"{limit} cycles ({len(self.chq_pending)} words not yet taken)")
        out, self.chain_out = self.chain_out, []
        return out

    async def run(self, max_cycles: int, expect: dict[str, int], sends: dict) -> dict:
        """Queue ``sends`` and run (see the module docstring, command ``run``)."""
        for port, wavelets in sends.items():
            self.pending[port].extend(pack(Wavelet(d, c, k)) for d, c, k in wavelets)
        reason = await self.go(mode=1, settle=RUN_SETTLE, limit=max_cycles + 1, targets=expect)
        error = bool(reason & STOP_ERROR)
        done = bool(reason & STOP_DONE) and not error
        cycles = self.cycles - RUN_SETTLE if done else self.cycles
        received = {}
        for p, words in self.received.items():
            if words:
                received[p] = [tuple(unpack(w)) for w in words]
            self.received[p] = []
        pending = {}
        for p in self.ports:
            left = ((self.src_wr[p] - int(self.src[p]["rd"].value)) & MASK32) \
                + len(self.pending[p])
            if left:
                pending[p] = left
        return {"cycles": cycles, "received": received,
                "timeout": not done and not error,
                "tile_idle": int(self.dut.tile_idle.value), "pending": pending,
                "error": int(error)}


def vpi_cost(dut, n: int) -> dict[str, float]:
    """Microseconds per cocotb access: ring words written / read, a port written / read."""
    mem, port = dut.chq_mem, dut.chq_wr
    depth = len(mem)
    n = min(n, depth)
    out = {}
    t0 = time.perf_counter()
    for i in range(n):
        mem[i].value = i
    out["memory_write_us"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    total = 0
    for i in range(n):
        total += int(mem[i].value)
    out["memory_read_us"] = (time.perf_counter() - t0) / n * 1e6
    saved = int(port.value)
    t0 = time.perf_counter()
    for i in range(n):
        port.value = i
    out["port_write_us"] = (time.perf_counter() - t0) / n * 1e6
    port.value = saved
    t0 = time.perf_counter()
    for _ in range(n):
        total += int(dut.chq_rd.value)
    out["port_read_us"] = (time.perf_counter() - t0) / n * 1e6
    return out


@cocotb.test()
async def serve(dut):
    """Serve driver commands until ``quit``."""
    params = FabricParams(**json.loads(os.environ["WAFER_FABRIC"]))
    engines = EngineParams(**json.loads(os.environ.get("WAFER_ENGINES", "{}")))
    Clock(dut.clk, 10, unit="ns", impl="gpi", set_action=Immediate).start()
    trace_path = os.environ.get("WAFER_SIM_TRACE")
    trace = open(trace_path, "w") if trace_path else None  # closed at the end
    host = HostEngines(dut, params, engines, trace)
    if params.fault_injection:
        host.set("fault_modes", 0)
    await reset(dut)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["WAFER_DRIVER_SOCKET"])
    while True:
        command, args = recv_message(sock, "the driver")
        try:
            t0 = time.perf_counter()
            if command == "quit":
                send_message(sock, ("ok", None))
                break
            if command == "chain":
                value = await host.chain(*args)
            elif command == "run":
                value = await host.run(*args)
            elif command == "stats":
                value = dict(host.stats)
            elif command == "pause":
                host.set("pause", int(args) & 0xF)
                value = None
            elif command == "vpi_cost":
                value = vpi_cost(dut, int(args))
            elif command == "faults":
                bits = 0
                for i, mode in enumerate(args):
                    bits |= (mode & 3) << (2 * i)
                host.set("fault_modes", bits)
                value = None
            else:
                raise ValueError(f"unknown command {command!r}")
            host.stats["command_s"] += time.perf_counter() - t0
            send_message(sock, ("ok", value))
        except Exception as exc:  # report to the driver, keep serving
            send_message(sock, ("error", f"{type(exc).__name__}: {exc}"))
    if trace is not None:
        trace.close()
    sock.close()
