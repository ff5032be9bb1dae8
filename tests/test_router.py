"""Router: parameter checks, golden model, and the cocotb tests (tests/tb_router.py, and the
figures of sim/tb/router_bench.py) on RTL."""

import random
from pathlib import Path

import pytest
from amaranth.sim import Simulator

from hdl.ports import NUM_PORTS, RAMP, E, N, S, W
from hdl.wavelet import ControlWord, SwitchCommand
from router import Router
from router.params import PopMode, RouterMap, RouteWord, SwitchWord
from sim.model.router import route_streams
from sim.model.wavelet import Wavelet
from sim.tb.harness import run_cocotb
from sim.toolchain.routes import Route, RouteCycleError, RouteTable, check_acyclic

HERE = Path(__file__).parent


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_colors": 0}, "num_colors must be between 1 and 32"),
        ({"num_colors": 33}, "num_colors must be between 1 and 32"),
        ({"num_colors": 2.5}, "num_colors must be an integer"),
        ({"queue_depth": 1}, "queue_depth must be between 2 and 16"),
        ({"queue_depth": "2"}, "queue_depth must be an integer"),
        ({"output_register": True}, r"output_register=True needs queue_depth >= 3, not 2"),
        ({"output_register": 1, "queue_depth": 3}, "output_register must be True or False"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Router(**kwargs)


def test_route_table_words_round_trip():
    table = RouteTable(8).set(0, ["w"], ["e", "ramp"]).set(5, ["n", "s"], ["w"])
    assert table[0] == Route(1 << W, (1 << E) | (1 << RAMP))
    assert RouteTable.from_words(table.words()) == table
    assert "colour  0: {W} -> {E,RAMP}" in str(table)
    with pytest.raises(ValueError, match="colour 8 is out of range"):
        table.set(8, ["w"], ["e"])
    with pytest.raises(ValueError, match="unknown port 'x'"):
        table.set(1, ["x"], ["e"])


def test_golden_model_multicast_order_and_drops():
    table = RouteTable(4).set(1, ["w", "n"], ["e", "s"]).set(2, ["s"], [])
    inputs = {
        W: [Wavelet(i, 1) for i in range(3)] + [Wavelet(9, 3)],
        N: [Wavelet(100, 1), Wavelet(7, 2)],
        S: [Wavelet(5, 2)],
    }
    result = route_streams(table, inputs)
    assert result.outputs[E][(W, 1)] == [Wavelet(0, 1), Wavelet(1, 1), Wavelet(2, 1)]
    assert result.outputs[S][(N, 1)] == [Wavelet(100, 1)]
    # colour 3 has no route, colour 2 does not accept N, and has no outputs for S
    assert result.dropped == 3
    assert result.count(E) == 4 and result.count(RAMP) == 0


def ctrl(color, *commands, payload=0):
    """A control wavelet written out by hand: commands from bit 22, two bits each."""
    data = payload
    for i, cmd in enumerate(commands):
        data |= cmd.value << (22 + 2 * i)
    return Wavelet(data, color, 1)


def test_control_and_switch_words_layout():
    """The packed words, against their bit positions written out by hand."""
    word = ControlWord.const({"payload": 0x1234, "task": 7, "no_task": 1,
                              "commands": [SwitchCommand.ADVANCE, SwitchCommand.TEARDOWN]})
    assert word.as_bits() == 0x1234 | 7 << 16 | 1 << 21 | 1 << 22 | 3 << 24
    assert ctrl(0, SwitchCommand.ADVANCE, SwitchCommand.TEARDOWN).data == 1 << 22 | 3 << 24
    table = RouteTable(8).set(3, ["w"], ["e"])
    table.set_switch(3, [(["n"], ["e"]), Route.of(["ramp"], ["s"])], ring=True, start=2,
                     pop=PopMode.POP_ON_ADVANCE)
    assert table.switches[3].word() == 2 | 1 << 2 | 2 << 3 | 2 << 5
    assert SwitchWord.from_bits(table.switches[3].word()).start == 2
    assert RouterMap.route(3, 2) == 0x43 and RouterMap.switch(3) == 0x83


def test_switch_config_blocks_and_printing():
    table = RouteTable(4).set(1, ["w"], ["e"]).set(2, ["n"], ["s"])
    table.set_switch(1, [(["n"], ["e", "ramp"])], ring=True)
    blocks = table.config_blocks()
    # position 0 of every colour, then the other positions, then every switch word, in order
    assert blocks == [(0x00, table.words()), (0x21, [Route.of(["n"], ["e", "ramp"]).word()]),
                      (0x80, [0, table.switches[1].word(), 0, 0])]
    text = str(table)
    assert "colour  1: switch (start 0, ring, no_pop)" in text
    assert "pos1: {N} -> {E,RAMP}" in text and "colour  2: {N} -> {S}" in text
    assert table.accepts(N, 1) and table.accepts(W, 1) and not table.accepts(S, 1)


def test_sparse_config_blocks_after_the_empty_table_leave_the_same_words():
    """The host broadcasts the empty table, then writes each router's colours in use: the
    words written, in the order written, end where the full table's do, in fewer words, and
    every colour's switch word still comes after its routes."""
    table = RouteTable(8).set(1, ["w"], ["e"]).set(2, ["n"], ["s"]).set(6, ["ramp"], ["n"])
    table.set_switch(2, [(["n"], ["e", "ramp"])], start=1)

    def replay(blocks):
        words, order = {}, []
        for addr, block in blocks:
            for i, w in enumerate(block):
                words[addr + i] = w
                order.append(addr + i)
        return words, order

    full, _ = replay(table.config_blocks())
    sparse = table.config_blocks(only_used=True)
    after, _ = replay(RouteTable(8).config_blocks() + sparse)
    assert after == full
    assert sum(len(b) for _, b in sparse) == 3 + 1 + 3  # colours 1, 2, 6; pos1 of 2; switches
    written = replay(sparse)[1]
    for c in (1, 2, 6):
        assert written.index(RouterMap.switch(c)) > written.index(RouterMap.route(c))


@pytest.mark.parametrize("kwargs, message", [
    ({"positions": []}, "1 to 3 positions"),
    ({"positions": [Route(1, 2)] * 4}, "1 to 3 positions"),
    ({"positions": [Route(1, 2)], "start": 2}, r"start position must be 0\.\.1"),
    ({"positions": [Route(1, 2)], "pop": 7}, "pop mode must be one of"),
    ({"positions": ["w"]}, "a switch position must be a Route"),
])
def test_bad_switches_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RouteTable(4).set_switch(0, **kwargs)


def test_cycle_check_covers_every_switch_position():
    """Two routers whose static routes are fine but whose position 1 sends colour 0 back: a
    loop, named with the position that makes it."""
    tables = {(0, 0): RouteTable(4).set(0, ["ramp"], ["e"]),
              (0, 1): RouteTable(4).set(0, ["w"], ["ramp"])}
    check_acyclic(tables, 1, 2)
    tables[0, 0].set(0, ["ramp", "e"], ["e"])
    tables[0, 1].set_switch(0, [(["w"], ["w"])])
    with pytest.raises(RouteCycleError, match=r"\(0, 1\) in W out W at pos1"):
        check_acyclic(tables, 1, 2)


def test_golden_switch_semantics():
    """Written-out expectations: positions fed from W, N; ring; a popped command; a
    teardown."""
    adv, rst, td = SwitchCommand.ADVANCE, SwitchCommand.RESET, SwitchCommand.TEARDOWN
    table = RouteTable(4).set(0, ["w"], ["e"])
    table.set_switch(0, [(["n"], ["s"])], ring=True, pop=PopMode.ALWAYS_POP)
    inputs = {W: [Wavelet(1, 0), ctrl(0, adv, rst), Wavelet(2, 0), ctrl(0, adv)],
              N: [Wavelet(10, 0), ctrl(0, adv), Wavelet(11, 0)]}
    result = route_streams(table, inputs)
    # W: 1 and the control at position 0 (popped: RESET left); N: 10 and its ADVANCE (wraps to
    # 0); W: 2, ADVANCE to 1; N: 11 at position 1.
    assert result.outputs[E][(W, 0)] == [Wavelet(1, 0), ctrl(0, rst), Wavelet(2, 0), ctrl(0)]
    assert result.outputs[S][(N, 0)] == [Wavelet(10, 0), ctrl(0), Wavelet(11, 0)]
    assert result.positions[0] == (1, False) and not result.waiting
    # No ring: ADVANCE at the last position stays; RESET goes to 0; TEARDOWN holds the rest.
    table.set_switch(0, [(["w"], ["s"])])
    result = route_streams(table, {W: [ctrl(0, adv), ctrl(0, adv), Wavelet(3, 0),
                                       ctrl(0, rst), Wavelet(4, 0), ctrl(0, td),
                                       Wavelet(5, 0)]})
    assert result.outputs[E][(W, 0)] == [ctrl(0, adv), Wavelet(4, 0), ctrl(0, td)]
    assert result.outputs[S][(W, 0)] == [ctrl(0, adv), Wavelet(3, 0), ctrl(0, rst)]
    assert result.waiting == {(W, 0): [Wavelet(5, 0)]}
    assert result.positions[0] == (0, True)


@pytest.mark.parametrize("num_colors, queue_depth, output_register, seed", [
    (8, 2, False, 1), (5, 3, False, 2), (8, 3, True, 4),
    pytest.param(32, 2, False, 3, marks=pytest.mark.slow)])
def test_router_rtl(sim, waves, num_colors, queue_depth, output_register, seed):
    run_cocotb(
        Router(num_colors=num_colors, queue_depth=queue_depth, output_register=output_register),
        toplevel=f"router_c{num_colors}_d{queue_depth}{'_or' if output_register else ''}",
        test_module=["tb_router", "sim.tb.router_bench"],  # the tests, then the figures
        test_dir=HERE,
        sim=sim,
        waves=waves,
        extra_env={
            "ROUTER_NUM_COLORS": str(num_colors),
            "ROUTER_QUEUE_DEPTH": str(queue_depth),
            "ROUTER_OUTPUT_REGISTER": str(int(output_register)),
            "ROUTER_SEED": str(seed),
        },
    )


class UnfairRouter(Router):
    """Planted bug: the ring never chooses the candidate of an input's turn (the picker alone
    does, as before the fix), so a colour can wait on other inputs for ever."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        for inp in self.probes.inputs:
            m.d.comb += inp.forced.eq(0)
        return m


def longest_wait(router_class, num_colors: int, seed: int, cycles: int = 300) -> int:
    """Cycles the longest-waiting (input, colour) held a wavelet without sending one, on the
    RTL in Amaranth's simulator: random routes (multicast included), every input offering a
    random colour its route accepts in 90 % of cycles (with credit), every receiver always
    giving credit. Departures are counted at the outputs (a wavelet's data names its input)."""
    rng = random.Random(seed)
    dut = router_class(num_colors=num_colors)
    routes = [(rng.randrange(1, 32), rng.randrange(1, 32)) for _ in range(num_colors)]
    worst = 0

    async def bench(ctx):
        nonlocal worst
        for c, (rx, tx) in enumerate(routes):
            ctx.set(dut.cfg.we, 1)
            ctx.set(dut.cfg.addr, RouterMap.route(c))
            ctx.set(dut.cfg.wdata, RouteWord.const({"rx": rx, "tx": tx}).as_value().value)
            await ctx.tick()
        ctx.set(dut.cfg.we, 0)
        for o in range(NUM_PORTS):
            ctx.set(dut.port_out(o).color_ready, (1 << num_colors) - 1)
        await ctx.tick().repeat(3)  # the routes go through the apply stage
        held, wait = {}, {}
        for _ in range(cycles):
            offered = []
            for p in range(NUM_PORTS):
                link = dut.port_in(p)
                credit = ctx.get(link.color_ready)
                colours = [c for c in range(num_colors)
                           if routes[c][0] >> p & 1 and credit >> c & 1]
                ctx.set(link.valid, 0)
                if colours and rng.random() < 0.9:
                    c = rng.choice(colours)
                    offered.append((p, c))
                    ctx.set(link.valid, 1)
                    ctx.set(link.payload.color, c)
                    ctx.set(link.payload.data, p)
            left = {(ctx.get(dut.port_out(o).payload.data), ctx.get(dut.port_out(o).payload.color))
                    for o in range(NUM_PORTS) if ctx.get(dut.port_out(o).valid)}
            for flow, count in held.items():
                wait[flow] = wait.get(flow, 0) + 1 if count and flow not in left else 0
                worst = max(worst, wait[flow])
            for flow in left:
                held[flow] -= 1
            await ctx.tick()
            for flow in offered:
                held[flow] = held.get(flow, 0) + 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return worst


def test_every_colour_with_credit_leaves_within_five_cycles_per_colour():
    """Per-colour progress under full contention, on RTL: no (input, colour) holding a
    wavelet waits more than 5 * num_colors cycles (its input's turn comes every five cycles,
    and its ring names each colour in turn; sim.formal.proofs.RouterProgress proves the same
    bound by induction), plus one for the cycle its wavelet spends in the arrival register.
    The planted bug (the picker alone, as before the fix) exceeds it."""
    colours = 3
    bound = 5 * colours + 1
    waits = [longest_wait(Router, colours, seed) for seed in range(4)]
    assert max(waits) <= bound, f"longest waits {waits}, bound {bound}"
    unfair = [longest_wait(UnfairRouter, colours, seed) for seed in range(4)]
    assert max(unfair) > bound, f"the planted bug stayed within the bound: {unfair}"
