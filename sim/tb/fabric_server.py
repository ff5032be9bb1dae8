"""The RTL side of the host driver: a cocotb test that serves driver commands over a socket.

:class:`sim.host.driver.FabricDriver` with ``backend="rtl"`` starts the simulator with this module
as its cocotb test and talks to it through a Unix socket named by ``WAFER_DRIVER_SOCKET``
(:mod:`sim.host.wire`). Every message is ``(command, arguments)``; every reply is
``("ok", value)`` or ``("error", message)``. While the driver thinks, the simulation is paused;
while a command runs, the simulator runs free with one coroutine doing the per-cycle work of all
host ports.

Commands:

``chain(words, answers)``
    push configuration words into ``chain_in`` (one per cycle, with backpressure) and collect
    ``chain_out`` until ``answers`` READ answers have come back; returns the words that came out.
``send(port, wavelets)``
    hold ``(data, colour, ctrl)`` wavelets for host port ``port`` (e.g. ``"n0"``); they start
    entering the fabric when the next run starts.
``run(max_cycles, expect)``
    release the held wavelets and run until every one is accepted, each ``expect[port]`` count
    of wavelets has come out of the fabric, and the fabric is idle; returns the cycles, the
    wavelets received per port since the last run and, on a timeout, which physical tiles were
    busy.
``faults(modes)``
    set the fault-injection modes (one per physical tile).
``quit``
"""

from __future__ import annotations

import json
import os
import socket
from collections import deque

import cocotb
from cocotb.triggers import ClockCycles

from sim.host.packets import Command, decode_header
from sim.host.wire import recv_message, send_message
from sim.model.wavelet import Wavelet
from sim.tb.links import LinkBench, LinkSink, LinkSource, reset, start_clock


class ChainSource:
    """Drives ``chain_in`` with queued configuration words."""

    def __init__(self, dut):
        self.payload, self.valid, self.ready = dut.chain_in__payload, dut.chain_in__valid, \
            dut.chain_in__ready
        self.words: deque[int] = deque()
        self.name = "chain_in"
        self.valid.value = 0
        self._offer = False

    @property
    def pending(self) -> int:
        """Words not yet taken by the chain."""
        return len(self.words)

    def drive(self) -> None:
        """Offer the next word (at the falling clock edge)."""
        if self.words:
            self.payload.value = self.words[0]
            self.valid.value = 1
            self._offer = True
        elif self._offer:
            self.valid.value = 0
            self._offer = False

    def sample(self, cycle: int) -> None:
        """Drop the offered word if the chain took it."""
        if self._offer and self.words and int(self.ready.value):
            self.words.popleft()


class ChainSink:
    """Takes every word from ``chain_out`` and counts complete READ answers as they arrive."""

    def __init__(self, dut):
        self.payload, self.valid = dut.chain_out__payload, dut.chain_out__valid
        dut.chain_out__ready.value = 1
        self.name = "chain_out"
        self.words: list[int] = []
        self.answers = 0  # complete RDATA packets seen
        self._left = 0  # words still to come in the current packet
        self._answer = False  # the current packet is an RDATA answer

    def drive(self) -> None:
        """Nothing to drive: ``ready`` is held high."""

    def sample(self, cycle: int) -> None:
        """Keep the word that came out this cycle, if any, and count finished answers."""
        if not int(self.valid.value):
            return
        w = int(self.payload.value)
        self.words.append(w)
        if self._left:
            self._left -= 1
        else:  # a header
            head = decode_header(w)
            self._answer = head.command == Command.RDATA
            self._left = head.body_words
        if self._left == 0 and self._answer:
            self.answers += 1
            self._answer = False

    def take(self) -> list[int]:
        """Every word that came out since the last take (and reset the answer count)."""
        out, self.words, self.answers = self.words, [], 0
        return out


@cocotb.test()
async def serve(dut):
    """Serve driver commands until ``quit``."""
    params = json.loads(os.environ["WAFER_FABRIC"])
    rows, cols, colors = params["rows"], params["cols"], params["num_colors"]
    start_clock(dut)
    if params.get("fault_injection"):
        dut.fault_modes.value = 0
    await reset(dut)
    sources, sinks = {}, {}
    for edge, count in (("n", cols), ("s", cols), ("w", rows), ("e", rows)):
        for i in range(count):
            sources[f"{edge}{i}"] = LinkSource(dut, f"{edge}{i}_in", colors)
            sinks[f"{edge}{i}"] = LinkSink(dut, f"{edge}{i}_out", colors)
    chain_src, chain_sink = ChainSource(dut), ChainSink(dut)
    held: dict[str, list[Wavelet]] = {}  # sent by the driver, released at the next run
    bench = LinkBench(dut, [*sources.values(), chain_src], [*sinks.values(), chain_sink])
    bench.start()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["WAFER_DRIVER_SOCKET"])
    while True:
        command, args = recv_message(sock, "the driver")
        try:
            if command == "quit":
                send_message(sock, ("ok", None))
                break
            if command == "chain":
                words, answers = args
                chain_sink.take()
                chain_src.words.extend(words)
                limit = 100 * (len(words) + 1000)
                await bench.wait_until(
                    lambda n=answers: chain_src.pending == 0 and chain_sink.answers >= n,
                    limit, "configuration chain answers")
                # Let the last words (echoed broadcasts, unclaimed packets) drain out: each
                # physical tile's station holds at most a few words.
                await ClockCycles(dut.clk, 4 * rows * (cols + params["spares"]) + 8)
                send_message(sock, ("ok", chain_sink.take()))
            elif command == "send":
                port, wavelets = args
                held.setdefault(port, []).extend(Wavelet(d, c, k) for d, c, k in wavelets)
                send_message(sock, ("ok", None))
            elif command == "run":
                max_cycles, expect = args
                for port, wavelets in held.items():
                    sources[port].send(wavelets)
                held.clear()
                start = bench.cycle
                settled = 0
                timeout = False
                while True:
                    await ClockCycles(dut.clk, 1)
                    if int(dut.error.value):  # a PE fault or a dropped wavelet: stop here
                        break
                    done = (all(s.pending == 0 for s in sources.values())
                            and all(len(sinks[p].received) >= n for p, n in expect.items())
                            and int(dut.idle.value))
                    settled = settled + 1 if done else 0
                    if settled >= 3:
                        break
                    if bench.cycle - start > max_cycles:
                        timeout = True
                        break
                cycles = bench.cycle - start - settled
                received = {p: [(w.data, w.color, w.ctrl) for _, w in s.received]
                            for p, s in sinks.items() if s.received}
                for s in sinks.values():
                    del s.received[:]
                tile_idle = int(dut.tile_idle.value)
                pending = {p: s.pending for p, s in sources.items() if s.pending}
                send_message(sock, ("ok", {"cycles": cycles, "received": received,
                                    "timeout": timeout, "tile_idle": tile_idle,
                                    "pending": pending, "error": int(dut.error.value)}))
            elif command == "faults":
                value = 0
                for i, mode in enumerate(args):
                    value |= (mode & 3) << (2 * i)
                dut.fault_modes.value = value
                send_message(sock, ("ok", None))
            else:
                send_message(sock, ("error", f"unknown command {command!r}"))
        except Exception as exc:  # report to the driver, keep serving
            send_message(sock, ("error", f"{type(exc).__name__}: {exc}"))
    bench.stop()
    sock.close()
