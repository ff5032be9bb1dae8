"""cocotb tests of the 5-port colour router, checked against :mod:`sim.model.router`.

Built on the router bench :mod:`sim.tb.router_bench` (whose ``figures`` test tests/test_router.py
runs with these). Parameters come from the environment: ``ROUTER_NUM_COLORS``,
``ROUTER_QUEUE_DEPTH``, ``ROUTER_OUTPUT_REGISTER`` (``1``: the router registers its outputs),
``ROUTER_SEED`` (random tests).
"""

from __future__ import annotations

import itertools
import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from hdl.ports import NUM_PORTS, PORT_NAMES, RAMP, E, N, S, W
from hdl.wavelet import SwitchCommand
from router.params import PopMode, RouterMap, SwitchWord
from sim.model.wavelet import Wavelet
from sim.tb.links import pauses, reset
from sim.tb.router_bench import RouterTB, control, tagged
from sim.toolchain.routes import Route, RouteTable

NUM_COLORS = int(os.environ.get("ROUTER_NUM_COLORS", "8"))
QUEUE_DEPTH = int(os.environ.get("ROUTER_QUEUE_DEPTH", "2"))
OUTPUT_REGISTER = os.environ.get("ROUTER_OUTPUT_REGISTER", "0") == "1"
SEED = int(os.environ.get("ROUTER_SEED", "1"))


async def read_dropped(tb):
    return await tb.cfg.read(RouterMap.STATUS)


@cocotb.test()
async def every_input_to_every_output(dut):
    """Each input port reaches each output port (5 x 5 unicast routes, U-turns included)."""
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER)
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
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER)
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
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER)
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
    duplicated or reordered within a flow, drops are counted exactly, and the router drains;
    and the traffic covers every input->output pair, multicast size and output contention."""
    rng = random.Random(SEED)
    tb = RouterTB(
        dut,
        NUM_COLORS,
        queue_depth=QUEUE_DEPTH,
        output_register=OUTPUT_REGISTER,
        source_pause=lambda p: pauses("random", SEED * 31 + p, 0.3),
        sink_pause=lambda p: pauses("random", SEED * 57 + p, 0.35),
    )
    await tb.start()
    for round_ in range(3):
        table = RouteTable(NUM_COLORS)
        for c in range(NUM_COLORS):
            rx = rng.randrange(1, 1 << NUM_PORTS)
            tx = rng.randrange(0, 1 << NUM_PORTS) if rng.random() < 0.9 else 0
            if c == round_ % NUM_COLORS:  # one full broadcast per round (coverage)
                tx = (1 << NUM_PORTS) - 1
            table.routes[c] = Route(rx, tx)
        await tb.load(table)
        before = await read_dropped(tb)
        inputs = {}
        for p in range(NUM_PORTS):
            stream = []
            for i in range(150):
                c = rng.randrange(NUM_COLORS + (2 if NUM_COLORS < 32 else 0))
                stream.append(control(p, min(c, 31), round_ << 12 | i) if rng.randrange(2)
                              else Wavelet((p << 28) | (round_ << 20) | i, min(c, 31)))
            inputs[p] = stream
        # A full broadcast needs credit at all five sinks in two cycles running (the pickers
        # see credit a cycle late): about 1 % of cycles with these sinks, hence the budget.
        expected = await tb.run(table, inputs, max_cycles=100_000)
        dropped = await read_dropped(tb)
        assert dropped - before == expected.dropped, (
            f"drop counter moved by {dropped - before}, the model drops {expected.dropped}")
        assert int(dut.dropped.value) == dropped
    # Functional coverage: every input->output pair, every multicast size, contention at every
    # output (printed in the log; no bin may stay at zero).
    dut._log.info(tb.coverage.report())
    assert not tb.coverage.holes(), tb.coverage.report()


@cocotb.test()
async def stalled_colour_does_not_block_others(dut):
    """Colour A (W -> E) is stalled at E; colour B shares its input (W -> S) and colour C shares
    its output (N -> E): both keep flowing at full rate while A waits, and A completes later."""
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER)
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
    assert tb.sources[W].pending == 20 - tb.room(W), (
        f"expected A to fill exactly its queue ({tb.room(W)}) and wait, "
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
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER)
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


# ---- fabric switches ---------------------------------------------------------------------------

ADV, RST, TD, NOP = (SwitchCommand.ADVANCE, SwitchCommand.RESET, SwitchCommand.TEARDOWN,
                     SwitchCommand.NOP)


def burst(port, color, n, start, *commands):
    """``n`` data wavelets of ``color`` tagged with ``port``, then (if ``commands``) a control
    wavelet carrying them."""
    out = tagged(port, color, n, start)
    if commands:
        out.append(control(port, color, start + n, commands))
    return out


async def read_switch(tb, color):
    return SwitchWord.from_bits(await tb.cfg.read(RouterMap.switch(color)))


@cocotb.test()
async def switch_advances_around_a_ring(dut):
    """A colour fed from W, then N, then RAMP (positions 0, 1, 2 in ring mode, the middle one a
    multicast), each burst ending with an ADVANCE: three times around the ring with idle
    sources and backpressure. Each position's wavelets arrive exactly once and in order, the
    waiting ports' wavelets queue meanwhile, a static colour on the same ports is unaffected,
    and the switch ends where the model says."""
    if NUM_COLORS < 2:
        return
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                  source_pause=lambda p: pauses("random", SEED * 11 + p, 0.3),
                  sink_pause=lambda p: pauses("random", SEED * 13 + p, 0.4))
    await tb.start()
    A, B = 0, NUM_COLORS - 1
    table = RouteTable(NUM_COLORS).set(A, ["w"], ["e"]).set(B, ["w", "n"], ["s"])
    table.set_switch(A, [(["n"], ["e", "s"]), (["ramp"], ["e"])], ring=True)
    await tb.load(table)
    inputs = {W: [], N: [], RAMP: []}
    for k in range(3):
        inputs[W] += burst(W, A, 5, 100 * k, ADV)
        inputs[N] += burst(N, A, 4, 100 * k, ADV)
        inputs[RAMP] += burst(RAMP, A, 3, 100 * k, ADV)
    inputs[W] += burst(W, A, 2, 900)  # back at position 0
    inputs[W] = [w for pair in itertools.zip_longest(inputs[W], tagged(W, B, 20, 500))
                 for w in pair if w is not None]
    inputs[N] += tagged(N, B, 10, 700)
    expected = await tb.run(table, inputs)
    assert expected.positions[A] == (0, False)
    state = await read_switch(tb, A)
    assert (state.position, state.torn) == expected.positions[A], (
        f"switch of colour {A} reads back position {state.position}, torn {state.torn}; the "
        f"model ends at {expected.positions[A]}")


@cocotb.test()
async def switch_start_reset_teardown_and_pop(dut):
    """Start position 1, no ring, pop always: ADVANCE to the last position and one more (it
    stays), RESET to position 0, then TEARDOWN: what follows waits until the switch word is
    written again, then goes from the start position. Each control wavelet leaves with its
    command popped; the switch word and position routes read back."""
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                  sink_pause=lambda p: pauses("random", SEED * 17 + p, 0.3))
    await tb.start()
    A = NUM_COLORS // 2
    table = RouteTable(NUM_COLORS).set(A, ["w"], ["e"])
    table.set_switch(A, [(["w"], ["s"]), (["w"], ["ramp", "n"])], start=1,
                     pop=PopMode.ALWAYS_POP)
    await tb.load(table)
    for k, route in enumerate(table.positions(A)):
        back = await tb.cfg.read(RouterMap.route(A, k))
        assert back == route.word(), f"position {k} of colour {A} reads back {back:#x}"
    state = await read_switch(tb, A)
    assert (state.last, state.ring, state.start, state.pop, state.position, state.torn) == (
        2, 0, 1, PopMode.ALWAYS_POP, 1, 0), f"switch word reads back {state}"
    held = tagged(W, A, 4, 600)
    stream = (burst(W, A, 3, 0, ADV, RST) + burst(W, A, 3, 100, ADV) + burst(W, A, 2, 200, RST)
              + burst(W, A, 3, 300, TD, ADV) + held)
    expected = await tb.run(table, {W: stream})
    assert expected.waiting == {(W, A): held}
    assert expected.positions[A] == (0, True)
    popped = [w for w in tb.sinks[S].wavelets() if w.ctrl]
    assert popped == [control(W, A, 3, [RST])], f"control wavelet left as {popped}"
    state = await read_switch(tb, A)
    assert (state.position, state.torn) == (0, 1), f"after TEARDOWN the switch reads {state}"

    # Writing the switch word ends the teardown: the held wavelets go from position 1 (S).
    before = len(tb.sinks[S].received)
    await tb.cfg.write(RouterMap.switch(A), table.switches[A].word())
    await tb.bench.wait_until(lambda: len(tb.sinks[S].received) - before >= len(held)
                              and not int(dut.busy.value), 500, "held wavelets after re-start")
    assert [w for _, w in tb.sinks[S].received[before:]] == held


@cocotb.test()
async def random_switches_under_backpressure(dut):
    """Random switches (2 to 4 positions, each fed from one random port, random ring, start and
    pop modes) on several colours at once, random streams with control wavelets carrying
    random ADVANCE / RESET / NOP lists, random static colours beside them, idle sources and
    backpressure: every flow exactly once and in order, waiting wavelets kept, final positions
    as the model says."""
    rng = random.Random(SEED * 101)
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                  source_pause=lambda p: pauses("random", SEED * 23 + p, 0.25),
                  sink_pause=lambda p: pauses("random", SEED * 29 + p, 0.3))
    await tb.start()
    for round_ in range(3):
        table = RouteTable(NUM_COLORS)
        switched = rng.sample(range(NUM_COLORS), min(NUM_COLORS, 4))
        inputs = {p: [] for p in range(NUM_PORTS)}
        for c in range(NUM_COLORS):
            if c not in switched:
                p = rng.randrange(NUM_PORTS)
                table.routes[c] = Route(1 << p, rng.randrange(1, 1 << NUM_PORTS))
                inputs[p] += tagged(p, c, rng.randrange(0, 12), 1000 * round_)
                continue
            ports = [rng.randrange(NUM_PORTS) for _ in range(rng.randrange(2, 5))]
            routes = [Route(1 << p, rng.randrange(1, 1 << NUM_PORTS)) for p in ports]
            table.routes[c] = routes[0]
            table.set_switch(c, routes[1:], ring=rng.random() < 0.5,
                             start=rng.randrange(len(routes)), pop=rng.choice(list(PopMode)))
            # Per port, bursts that each end with a control wavelet.
            for p in set(ports):
                for b in range(rng.randrange(1, 4)):
                    cmds = [rng.choice([ADV, ADV, ADV, RST, NOP]) for _ in range(2)]
                    inputs[p] += burst(p, c, rng.randrange(0, 5), 1000 * round_ + 50 * b, *cmds)
        for p in inputs:  # interleave the colours of each port at random, order per colour kept
            by_colour = {}
            for w in inputs[p]:
                by_colour.setdefault(w.color, []).append(w)
            mixed = []
            while by_colour:
                c = rng.choice(list(by_colour))
                mixed.append(by_colour[c].pop(0))
                if not by_colour[c]:
                    del by_colour[c]
            inputs[p] = mixed
        await tb.load(table)
        expected = await tb.run(table, inputs)
        for c, (position, torn) in expected.positions.items():
            state = await read_switch(tb, c)
            assert (state.position, state.torn) == (position, torn), (
                f"round {round_}: colour {c} ends at position {state.position} (torn "
                f"{state.torn}), the model at {position} (torn {torn})")
        if expected.waiting:  # start afresh: reset the router (drops what waits)
            tb.bench.stop()
            tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                          source_pause=lambda p, k=round_: pauses("random", k + p, 0.25))
            await reset(dut)
            tb.bench.start()


@cocotb.test()
async def directed_flows_under_every_idle_and_backpressure_pattern(dut):
    """Unicast, 3-way multicast and two colours merging into one output, crossed with every
    source idle pattern and every sink backpressure pattern of :func:`sim.tb.links.pauses`
    (none, random, bursty, one cycle in three): the scoreboard matches the golden model and
    every link's monitor (no X, offers only with credit, ready = color_ready[colour], held
    offers unchanged) stays quiet. The sinks keep credit as fabric receivers do (two places
    per colour; the pattern stalls their consumers)."""
    kinds = ("none", "random", "bursty", "every3")
    table = RouteTable(NUM_COLORS)
    table.set(0, ["w"], ["e"])
    table.set(1 % NUM_COLORS, ["n"], ["s", "ramp", "w"])
    table.set(2 % NUM_COLORS, ["e"], ["ramp"])
    table.set(3 % NUM_COLORS, ["s"], ["ramp"])
    tb = None
    for n, (src_kind, sink_kind) in enumerate(itertools.product(kinds, kinds)):
        if tb is not None:
            tb.bench.stop()
        tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                      source_pause=lambda p, k=src_kind, n=n: pauses(k, SEED * 100 + n + p),
                      sink_pause=lambda p, k=sink_kind, n=n: pauses(k, SEED * 200 + n + p),
                      sink_credit_depth=2)
        if n == 0:
            await tb.start()
        else:  # the clock runs on; a reset starts each combination afresh
            await reset(dut)
            tb.bench.start()
        await tb.load(table)
        inputs = {W: tagged(W, 0, 12, n * 1000), N: tagged(N, 1 % NUM_COLORS, 12, n * 1000),
                  E: tagged(E, 2 % NUM_COLORS, 12, n * 1000),
                  S: tagged(S, 3 % NUM_COLORS, 12, n * 1000)}
        await tb.run(table, inputs, max_cycles=4000)
        # 48 wavelets in, 72 out (the multicast three times)
        assert sum(m.transfers for m in tb.bench.monitors) == 48 + 72, (
            f"{src_kind} x {sink_kind}: the link monitors counted the wrong transfers")


@cocotb.test()
async def plain_stream_sources_are_accepted(dut):
    """Plain stream transmitters (not colour-aware: they offer any colour and hold it until
    ``ready``) get the same deliveries; ``ready`` still follows ``color_ready[colour]``."""
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                  colour_aware=False, sink_pause=lambda p: pauses("bursty", SEED * 300 + p))
    await tb.start()
    table = RouteTable(NUM_COLORS)
    table.set(0, ["w"], ["ramp"])
    table.set(1 % NUM_COLORS, ["n"], ["ramp"])
    await tb.load(table)
    await tb.run(table, {W: tagged(W, 0, 20, 0), N: tagged(N, 1 % NUM_COLORS, 20, 0)})


@cocotb.test()
async def control_wavelets_from_every_input_into_a_broadcast(dut):
    """All five inputs send control wavelets of one colour broadcast to all five outputs: each
    input may send one only on its turn and only the allocator's first requester can win, so a
    turn that kept pace with the allocator's priority locked them out for ever (a deadlock the
    random traffic found). Sinks that keep credit, so only that could stop them."""
    tb = RouterTB(dut, NUM_COLORS, queue_depth=QUEUE_DEPTH, output_register=OUTPUT_REGISTER,
                  sink_credit_depth=2)
    await tb.start()
    table = RouteTable(NUM_COLORS)
    table.routes[0] = Route((1 << NUM_PORTS) - 1, (1 << NUM_PORTS) - 1)
    await tb.load(table)
    for gap in range(NUM_PORTS):  # every phase of the turn against the allocator's priority
        await ClockCycles(dut.clk, gap + 1)
        await tb.run(table, {p: [control(p, 0, 100 * gap + i) for i in range(8)]
                             for p in range(NUM_PORTS)}, max_cycles=2000)
