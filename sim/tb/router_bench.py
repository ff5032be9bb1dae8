"""cocotb bench of the 5-port colour router: drivers, scoreboard and the router's figures.

:class:`RouterTB` drives a :class:`router.Router` through its five links and its configuration
bus and checks what comes out against the golden model (:mod:`sim.model.router`): per
(input port, colour) flow, exactly the expected wavelets in order (:func:`check_output`). The
router's tests (tests/tb_router.py) are built on it. The ``figures`` test here measures the
latency and throughput that bench/router_figures.py prints; its environment:
``ROUTER_NUM_COLORS``, ``ROUTER_OUTPUT_REGISTER`` (``1`` for a router with registered outputs)
and ``ROUTER_FIGURES`` (a JSON file to write).
"""

from __future__ import annotations

import json
import os
import random
from collections import deque

import cocotb
from cocotb.triggers import ClockCycles

from hdl.ports import NUM_PORTS, PORT_NAMES, RAMP, E, N, S, W
from hdl.wavelet import CONTROL_HOPS, ControlWord, SwitchCommand
from sim.model.router import route_streams
from sim.model.wavelet import Wavelet, unpack
from sim.tb.config_bus import ConfigBusDriver
from sim.tb.links import LinkBench, LinkSink, LinkSource, reset, start_clock
from sim.toolchain.routes import RouteTable

__all__ = ["RouterTB", "RouterCoverage", "flow_of", "check_output", "tagged", "control",
           "ideal_output_queued"]

#: Offered loads of the uniform random traffic figure (wavelets per cycle per input).
OFFERED_LOADS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)


def ideal_output_queued(load: float, tx_ports: list[int]) -> float:
    """Accepted throughput of an ideal output-queued router for the same traffic.

    Every input offers ``load`` wavelets per cycle of a uniformly random colour; colour ``c``
    goes to output ``tx_ports[c]``. With unbounded output queues an output carries
    ``min(1, its offered load)``; the result is averaged over the five outputs, in wavelets
    per cycle per port.
    """
    n = len(tx_ports)
    share = [tx_ports.count(o) / n for o in range(NUM_PORTS)]
    return sum(min(1.0, NUM_PORTS * load * f) for f in share) / NUM_PORTS


async def uniform_random_load(tb: RouterTB, num_colors: int, cycles: int = 600,
                              warmup: int = 150, seed: int = 7) -> list[dict]:
    """Accepted throughput under uniform random traffic as the offered load rises.

    All five inputs offer, in each cycle with probability ``load``, a wavelet of a uniformly
    random colour (colour ``c`` routed from any input to one random output, U-turns included);
    a source with no credit for its colour waits. Returns, per load, the offered load, the
    accepted throughput (wavelets delivered per cycle per output over ``cycles`` cycles after
    ``warmup``) and the ideal output-queued figure for the same traffic
    (:func:`ideal_output_queued`), all in wavelets per cycle per port.
    """
    rng = random.Random(seed)
    tx_ports = [rng.randrange(NUM_PORTS) for _ in range(num_colors)]
    table = RouteTable(num_colors)
    for c, o in enumerate(tx_ports):
        table.set(c, list(PORT_NAMES), [PORT_NAMES[o]])
    await tb.load(table)
    dut = tb.dut
    results = []
    for load in OFFERED_LOADS:
        for p, src in enumerate(tb.sources):
            r = random.Random(seed * 101 + p + int(load * 1000))
            src.pause = iter(lambda r=r, load=load: r.random() >= load, None)
            src.send(Wavelet((p << 28) | i, rng.randrange(num_colors))
                     for i in range(cycles + warmup + 50))
        await ClockCycles(dut.clk, warmup)
        before = sum(len(k.received) for k in tb.sinks)
        await ClockCycles(dut.clk, cycles)
        after = sum(len(k.received) for k in tb.sinks)
        for src in tb.sources:  # withdraw what was not offered yet, then let the router drain
            held = src.offered
            src.queues = {w.color: deque([w]) for w in ([held] if held else [])}
            src.order = deque([held] if held else [])
        await tb.bench.wait_until(
            lambda: all(s.pending == 0 for s in tb.sources) and not int(dut.busy.value),
            1000, "router drained")
        results.append({"offered": load,
                        "accepted": round((after - before) / (cycles * NUM_PORTS), 4),
                        "ideal": round(ideal_output_queued(load, tx_ports), 4)})
    return results


class RouterTB:
    """A router under test: a source and a sink on each of its five links, its configuration bus,
    one :class:`~sim.tb.links.LinkBench` for all of them and a scoreboard.

    Parameters
    ----------
    dut : cocotb handle
        A :class:`router.Router` (ports ``in_<port>``, ``out_<port>``, ``cfg``).
    num_colors : int
        The router's colours.
    source_pause, sink_pause : callable(port) -> iterator of bool, optional
        Pause patterns of the sources (idle cycles) and sinks (backpressure), per port.
    colour_aware : bool
        Sources use ``color_ready`` (default) or behave as plain streams.
    queue_depth : int
        The router's queue depth (how many wavelets of a waiting flow it takes in).
    sink_credit_depth : int, optional
        Sinks that keep credit as a fabric receiver does (see :class:`LinkSink`), with this
        many places per colour; ``sink_pause`` then stalls their consumers.
    output_register : bool
        The router registers its outputs (``Router(output_register=True)``): the sinks take
        what arrives on the credit of the cycle before, and the mesh inputs keep a place per
        colour for a wavelet in flight (a waiting flow fills ``queue_depth - 1`` there).
    """

    def __init__(self, dut, num_colors: int, *, source_pause=None, sink_pause=None,
                 colour_aware=True, queue_depth: int = 2, sink_credit_depth: int | None = None,
                 output_register: bool = False):
        self.dut = dut
        self.num_colors = num_colors
        self.queue_depth = queue_depth
        self.output_register = output_register
        self.cfg = ConfigBusDriver(dut)
        self.sources = [
            LinkSource(dut, f"in_{n}", num_colors,
                       pause=source_pause(p) if source_pause else None,
                       colour_aware=colour_aware, in_flight=self.in_flight(p))
            for p, n in enumerate(PORT_NAMES)
        ]
        self.sinks = [
            LinkSink(dut, f"out_{n}", num_colors, pause=sink_pause(p) if sink_pause else None,
                     credit_depth=sink_credit_depth, latency=int(output_register))
            for p, n in enumerate(PORT_NAMES)
        ]
        self.coverage = RouterCoverage()
        self._table: RouteTable | None = None
        self.bench = LinkBench(dut, self.sources, self.sinks, hooks=[self._count_offers])

    def in_flight(self, port: int) -> int:
        """Places per colour input ``port`` keeps for a wavelet in flight (0 or 1)."""
        return int(self.output_register and port != RAMP)

    def room(self, port: int) -> int:
        """Wavelets of a waiting flow input ``port`` takes in from a colour-aware bench source."""
        return self.queue_depth - self.in_flight(port)

    def _count_offers(self, cycle: int) -> None:
        """Bench hook: this cycle's offers into the coverage's contention counters."""
        if self._table is None:
            return
        offered = []
        for src in self.sources:
            valid = src.valid.value
            live = valid.is_resolvable and int(valid)
            offered.append(unpack(int(src.payload.value)).color if live else None)
        self.coverage.offers(offered, self._table)

    async def start(self):
        """Start the clock, reset the router and start the bench."""
        start_clock(self.dut)
        self.dut.cfg__addr.value = 0
        self.dut.cfg__wdata.value = 0
        await reset(self.dut)
        self.bench.start()

    async def load(self, table: RouteTable):
        """Write a route table (switches included) through the configuration bus."""
        for addr, block in table.config_blocks():
            for k, word in enumerate(block):
                await self.cfg.write(addr + k, word)

    def expect(self, table, inputs):
        """What the golden model says the router delivers for ``inputs``."""
        return route_streams(table, inputs)

    async def run(self, table, inputs, max_cycles=20000):
        """Send ``inputs`` (port -> wavelets), wait for everything, check the scoreboard.

        When the model says some wavelets wait for good (their switch never accepts their port
        again, or their colour is torn down), the router must keep exactly those: it stays busy
        and nothing more comes out. Returns the model's :class:`~sim.model.router.RouterResult`.
        """
        expected = route_streams(table, inputs)
        self._table = table
        base = [len(k.received) for k in self.sinks]
        for p, ws in inputs.items():
            self.sources[p].send(ws)
        total = {o: expected.count(o) for o in range(NUM_PORTS)}
        waiting = sum(len(v) for v in expected.waiting.values())
        # What cannot enter: per colour, whatever does not fit the queue behind a waiting one.
        stuck = sum(max(0, len(v) - self.room(p)) for (p, _), v in expected.waiting.items())
        await self.bench.wait_until(
            lambda: sum(s.pending for s in self.sources) == stuck
            and all(len(k.received) - base[o] >= total[o] for o, k in enumerate(self.sinks)),
            max_cycles, "all wavelets delivered")
        if waiting:
            await ClockCycles(self.dut.clk, 50)
            assert int(self.dut.busy.value), "the router lost the wavelets that must wait"
        else:
            # The router must drain and nothing extra may come out.
            await self.bench.wait_until(lambda: not int(self.dut.busy.value), 100,
                                        "router idle")
        await ClockCycles(self.dut.clk, 5)
        self._table = None
        self.coverage.deliveries([[w for _, w in k.received[base[o]:]]
                                  for o, k in enumerate(self.sinks)])
        for o, sink in enumerate(self.sinks):
            got = [w for _, w in sink.received[base[o]:]]
            check_output(o, got, expected.outputs.get(o, {}), inputs)
        return expected


def flow_of(w: Wavelet) -> tuple[int, int]:
    """Random and directed traffic tags each wavelet with its input port: bits 31:28 of a data
    wavelet, the ``task`` field of a control wavelet (see :func:`control`)."""
    port = int(ControlWord.from_bits(w.data).task) if w.ctrl else w.data >> 28
    return (port, w.color)


def control(port: int, color: int, count: int, commands=()) -> Wavelet:
    """A control wavelet tagged with ``port`` (in its ``task`` field, with ``no_task`` set) and
    ``count`` (its 16-bit payload), carrying switch ``commands`` (first first)."""
    word = ControlWord.const({"payload": count & 0xFFFF, "task": port, "no_task": 1,
                              "commands": list(commands) + [SwitchCommand.NOP] * (
                                  CONTROL_HOPS - len(commands))})
    return Wavelet(word.as_bits(), color, 1)


def check_output(o, got, expected_flows, inputs):
    """Scoreboard: per (input, colour) flow, exactly the expected wavelets in order."""
    flows: dict = {}
    for w in got:
        flows.setdefault(flow_of(w), []).append(w)
    name = PORT_NAMES[o]
    for flow, want in expected_flows.items():
        have = flows.pop(flow, [])
        if have != want:
            lost = len(want) - len(have)
            first = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b),
                         min(len(have), len(want)))
            raise AssertionError(
                f"output {name}, flow (in {PORT_NAMES[flow[0]]}, colour {flow[1]}): "
                f"expected {len(want)} wavelets, got {len(have)} "
                f"({'lost' if lost > 0 else 'extra'} {abs(lost)}); first mismatch at "
                f"{first}"
            )
    if flows:
        extra = {f"in {PORT_NAMES[p]} colour {c}": len(v) for (p, c), v in flows.items()}
        raise AssertionError(f"output {name}: unexpected wavelets {extra}")


def tagged(port: int, color: int, n: int, start: int = 0, ctrl_every: int = 0):
    """``n`` wavelets of ``color`` tagged with ``port`` (see :func:`flow_of`) and a count from
    ``start``; every ``ctrl_every``-th one is a control wavelet with no switch command."""
    return [control(port, color, start + i)
            if ctrl_every and i % ctrl_every == ctrl_every - 1
            else Wavelet((port << 28) | ((start + i) & 0x0FFF_FFFF), color)
            for i in range(n)]


class RouterCoverage:
    """Functional coverage of what a router bench exercised (plain counters).

    * ``pairs[(p, o)]``: wavelets from input port ``p`` delivered at output ``o`` (25 bins);
    * ``multicast[n]``: wavelets delivered to exactly ``n`` outputs (1 to 5);
    * ``contention[o]``: cycles in which two or more inputs offered a wavelet whose colour is
      routed (at switch position 0) to output ``o``.

    :meth:`holes` lists the bins still at zero.
    """

    def __init__(self):
        self.pairs = {(p, o): 0 for p in range(NUM_PORTS) for o in range(NUM_PORTS)}
        self.multicast = {n: 0 for n in range(1, NUM_PORTS + 1)}
        self.contention = {o: 0 for o in range(NUM_PORTS)}

    def deliveries(self, delivered: list[list[Wavelet]]) -> None:
        """Count a run's deliveries (``delivered[o]``: what output ``o`` received)."""
        fanout: dict = {}
        for o, ws in enumerate(delivered):
            for w in ws:
                self.pairs[(flow_of(w)[0], o)] += 1
                fanout[w] = fanout.get(w, 0) + 1
        for n in fanout.values():
            self.multicast[n] += 1

    def offers(self, offered: list[int | None], table: RouteTable) -> None:
        """Count one cycle's offers (``offered[p]``: the colour input ``p`` offers, or None)."""
        for o in range(NUM_PORTS):
            k = sum(1 for c in offered
                    if c is not None and c in table.routes and table.routes[c].tx >> o & 1)
            if k >= 2:
                self.contention[o] += 1

    def holes(self) -> list[str]:
        """The bins at zero, by name."""
        return ([f"pair {PORT_NAMES[p]}->{PORT_NAMES[o]}" for (p, o), n in self.pairs.items()
                 if not n]
                + [f"multicast to {k}" for k, n in self.multicast.items() if not n]
                + [f"contention at {PORT_NAMES[o]}" for o, n in self.contention.items() if not n])

    def report(self) -> str:
        """The counters as text."""
        pairs = " ".join(f"{PORT_NAMES[p][0]}{PORT_NAMES[o][0]}:{n}"
                         for (p, o), n in self.pairs.items())
        return (f"coverage: pairs {pairs}; multicast {self.multicast}; contention "
                f"{ {PORT_NAMES[o]: n for o, n in self.contention.items()} }; "
                f"holes: {self.holes() or 'none'}")


@cocotb.test()
async def figures(dut):
    """Latency and throughput figures for bench/router_figures.py (checked loosely, printed
    there)."""
    path = os.environ.get("ROUTER_FIGURES")
    num_colors = int(os.environ.get("ROUTER_NUM_COLORS", "8"))
    output_register = os.environ.get("ROUTER_OUTPUT_REGISTER", "0") == "1"
    tb = RouterTB(dut, num_colors, output_register=output_register)
    await tb.start()
    table = RouteTable(num_colors)
    table.set(0, ["w"], ["e"])                                   # unicast
    table.set(1 % num_colors, ["n"], ["s", "ramp", "w"])          # 3-way multicast
    table.set(2 % num_colors, ["e"], ["ramp"])
    table.set(3 % num_colors, ["s"], ["ramp"])
    await tb.load(table)
    figures = {}

    # Latency: one wavelet into an idle router.
    src, sink = tb.sources[W], tb.sinks[E]
    src.send([Wavelet(1, 0)])
    await tb.bench.wait_until(lambda: len(sink.received) == 1, 100, "latency probe")
    figures["latency_cycles_per_hop"] = sink.received[-1][0] - src.sent[-1][0]

    async def stream_rate(sources_colours, sink_ports, n=2000):
        starts = [len(tb.sinks[o].received) for o in sink_ports]
        for port, colour in sources_colours:
            tb.sources[port].send(tagged(port, colour, n))
        need = n * len(sources_colours)
        await tb.bench.wait_until(
            lambda: all(len(tb.sinks[o].received) - s0 >= (need if len(sink_ports) == 1 else n)
                        for o, s0 in zip(sink_ports, starts)), 10 * n, "stream")
        rates = []
        for o, s0 in zip(sink_ports, starts):
            rec = tb.sinks[o].received[s0:]
            span = rec[-1][0] - rec[0][0] + 1
            rates.append(len(rec) / span)
        return min(rates)

    figures["throughput_unicast"] = await stream_rate([(W, 0)], [E])
    figures["throughput_multicast"] = await stream_rate([(N, 1 % num_colors)], [S, RAMP, W])
    figures["throughput_two_colours_one_output"] = await stream_rate(
        [(E, 2 % num_colors), (S, 3 % num_colors)], [RAMP])
    figures["uniform_random"] = await uniform_random_load(tb, num_colors)
    dut._log.info("router figures: %s", figures)
    assert figures["latency_cycles_per_hop"] == 1 + output_register, figures
    if path:
        with open(path, "w") as fh:
            json.dump(figures, fh)
