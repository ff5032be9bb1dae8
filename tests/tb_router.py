"""cocotb tests of the 5-port colour router, checked against :mod:`sim.model.router`.

Built on the router bench :mod:`sim.tb.router_bench` (whose ``figures`` test tests/test_router.py
runs with these). Parameters come from the environment: ``ROUTER_NUM_COLORS``,
``ROUTER_QUEUE_DEPTH``, ``ROUTER_SEED`` (random tests).
"""

from __future__ import annotations

import itertools
import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from hdl.ports import NUM_PORTS, PORT_NAMES, RAMP, E, N, S, W
from router.params import RouterMap
from sim.model.wavelet import Wavelet
from sim.tb.router_bench import RouterTB, tagged
from sim.toolchain.routes import Route, RouteTable

NUM_COLORS = int(os.environ.get("ROUTER_NUM_COLORS", "8"))
QUEUE_DEPTH = int(os.environ.get("ROUTER_QUEUE_DEPTH", "2"))
SEED = int(os.environ.get("ROUTER_SEED", "1"))


def pause_pattern(rng: random.Random, busy: float):
    """An endless pause pattern: True (pause) with probability ``busy``."""
    while True:
        yield rng.random() < busy


async def read_dropped(tb):
    return await tb.cfg.read(RouterMap.STATUS)


@cocotb.test()
async def every_input_to_every_output(dut):
    """Each input port reaches each output port (5 x 5 unicast routes, U-turns included)."""
    tb = RouterTB(dut, NUM_COLORS)
    await tb.start()
    pairs = [(p, o) for p in range(NUM_PORTS) for o in range(NUM_PORTS)]
    for first in range(0, len(pairs), NUM_COLORS):
        group = pairs[first:first + NUM_COLORS]  # one colour per (input, output) pair
        table = RouteTable(NUM_COLORS)
        inputs: dict = {}
        for c, (p, o) in enumerate(group):
            table.routes[c] = Route(1 << p, 1 << o)
            inputs.setdefault(p, []).extend(tagged(p, c, 6, first * 10))
        await tb.load(table)
        await tb.run(table, inputs)


@cocotb.test()
async def every_colour_and_full_multicast(dut):
    """Every colour is routable; a 5-way multicast reaches all five ports exactly once."""
    tb = RouterTB(dut, NUM_COLORS)
    await tb.start()
    table = RouteTable(NUM_COLORS)
    for c in range(NUM_COLORS):
        table.set(c, ["n", "e", "s", "w", "ramp"], [PORT_NAMES[c % NUM_PORTS]])
    await tb.load(table)
    inputs = {p: [w for c in range(NUM_COLORS) for w in tagged(p, c, 3, c * 10)]
              for p in range(NUM_PORTS)}
    await tb.run(table, inputs)

    table = RouteTable(NUM_COLORS).set(0, ["w"], ["n", "e", "s", "w", "ramp"])
    table.set(NUM_COLORS - 1, ["ramp"], ["n", "e", "s", "w", "ramp"])
    await tb.load(table)
    inputs = {W: tagged(W, 0, 40), RAMP: tagged(RAMP, NUM_COLORS - 1, 40, ctrl_every=7)}
    await tb.run(table, inputs)


@cocotb.test()
async def route_table_read_back(dut):
    """Every route word written through the configuration bus reads back unchanged."""
    tb = RouterTB(dut, NUM_COLORS)
    await tb.start()
    rng = random.Random(SEED)
    words = [rng.randrange(1 << 10) for _ in range(NUM_COLORS)]
    for c, w in enumerate(words):
        await tb.cfg.write(c, w)
    back = [await tb.cfg.read(c) for c in range(NUM_COLORS)]
    assert back == words, f"route table read back {back}, wrote {words}"


@cocotb.test()
async def random_traffic_with_backpressure(dut):
    """Random routes (unicast and multicast), random idle and backpressure: nothing is lost,
    duplicated or reordered within a flow, drops are counted exactly, and the router drains."""
    rng = random.Random(SEED)
    tb = RouterTB(
        dut,
        NUM_COLORS,
        source_pause=lambda p: pause_pattern(random.Random(SEED * 31 + p), 0.3),
        sink_pause=lambda p: pause_pattern(random.Random(SEED * 57 + p), 0.35),
    )
    await tb.start()
    for round_ in range(3):
        table = RouteTable(NUM_COLORS)
        for c in range(NUM_COLORS):
            rx = rng.randrange(1, 1 << NUM_PORTS)
            tx = rng.randrange(0, 1 << NUM_PORTS) if rng.random() < 0.9 else 0
            table.routes[c] = Route(rx, tx)
        await tb.load(table)
        before = await read_dropped(tb)
        inputs = {}
        for p in range(NUM_PORTS):
            stream = []
            for i in range(150):
                c = rng.randrange(NUM_COLORS + (2 if NUM_COLORS < 32 else 0))
                stream.append(Wavelet((p << 28) | (round_ << 20) | i, min(c, 31),
                                      rng.randrange(2)))
            inputs[p] = stream
        expected = await tb.run(table, inputs)
        dropped = await read_dropped(tb)
        assert dropped - before == expected.dropped, (
            f"drop counter moved by {dropped - before}, the model drops {expected.dropped}")
        assert int(dut.dropped.value) == dropped


@cocotb.test()
async def stalled_colour_does_not_block_others(dut):
    """Colour A (W -> E) is stalled at E; colour B shares its input (W -> S) and colour C shares
    its output (N -> E): both keep flowing at full rate while A waits, and A completes later."""
    tb = RouterTB(dut, NUM_COLORS)
    await tb.start()
    A, B, C = 1, 2, 3 % NUM_COLORS
    table = RouteTable(NUM_COLORS)
    table.set(A, ["w"], ["e"]).set(B, ["w"], ["s"]).set(C, ["n"], ["e"])
    await tb.load(table)
    tb.sinks[E].stalled_colours = 1 << A
    a = tagged(W, A, 20)
    b = tagged(W, B, 100)
    interleaved = [w for pair in itertools.zip_longest(a, b) for w in pair if w is not None]
    tb.sources[W].send(interleaved)
    tb.sources[N].send(tagged(N, C, 100))
    cycles = await tb.bench.wait_until(
        lambda: len(tb.sinks[S].received) >= 100 and len(tb.sinks[E].received) >= 100,
        2000, "colours B and C delivered while A is stalled")
    assert not any(w.color == A for w in tb.sinks[E].wavelets()), "stalled colour A got through"
    assert cycles <= 130, f"B and C took {cycles} cycles for 100 wavelets each: they were slowed"
    assert tb.sources[W].pending == 20 - QUEUE_DEPTH, (
        f"expected A to fill exactly its queue ({QUEUE_DEPTH}) and wait, "
        f"{tb.sources[W].pending} of 20 still pending")
    tb.sinks[E].stalled_colours = 0
    await tb.bench.wait_until(lambda: tb.sources[W].pending == 0, 200, "A drained")
    await ClockCycles(dut.clk, 5)
    got_a = [w for w in tb.sinks[E].wavelets() if w.color == A]
    assert got_a == a, "colour A lost or reordered after the stall"
    assert [w for w in tb.sinks[S].wavelets()] == b
    assert [w for w in tb.sinks[E].wavelets() if w.color == C] == tagged(N, C, 100)


@cocotb.test()
async def drops_are_counted(dut):
    """Wavelets on a port the colour does not accept, on a colour with no outputs, or on a
    colour above num_colors are dropped and counted; writing the status word clears it."""
    tb = RouterTB(dut, NUM_COLORS)
    await tb.start()
    table = RouteTable(NUM_COLORS).set(0, ["w"], ["e"])
    if NUM_COLORS > 1:
        table.set(1, ["n"], [])
    await tb.load(table)
    inputs = {E: tagged(E, 0, 5), W: tagged(W, 0, 5)}
    if NUM_COLORS > 1:
        inputs[N] = tagged(N, 1, 4)
    if NUM_COLORS < 32:
        inputs[S] = tagged(S, 31, 3)
    expected = await tb.run(table, inputs)
    dropped = await read_dropped(tb)
    assert expected.dropped > 0
    assert dropped == expected.dropped, f"counted {dropped} drops, expected {expected.dropped}"
    await tb.cfg.write(RouterMap.STATUS, 0)
    assert await read_dropped(tb) == 0, "writing the status word did not clear the drop counter"
