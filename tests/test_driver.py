"""Host driver: errors a run raises (PE faults, dropped wavelets) and route tables it refuses.

Each error scenario runs on both backends of the driver: the run must stop at the error, name
the tile and what went wrong, and the next load must clear it.
"""

from __future__ import annotations

import dataclasses

import pytest

from fabric.array import FabricParams, registered_outputs
from pe.isa import ErrorFlag
from sim.host.driver import FabricDriver, FabricImage, TileProgram
from sim.host.errors import FabricError
from sim.model.wavelet import Wavelet
from sim.tb.free_run import replay
from sim.tb.sim_top import EngineParams
from sim.toolchain.asm import assemble
from sim.toolchain.routes import RouteCycleError, RouteTable, find_route_cycle

# The same fabric as tests/test_fabric.py's 1 x 1 (one simulator build serves both).
PARAMS = FabricParams(rows=1, cols=1, spares=1, sram_words=256, imem_words=64,
                      num_colors=8, num_tasks=12,
                      num_dsds=16, fault_injection=True)
TRIGGER = 1


def bounds_fault_image() -> FabricImage:
    """Tile (0, 0): a wavelet of colour 1 starts a task that walks a DSD past the SRAM."""
    text = """
        .dsd y mem fp32 base=0 len=16
        .dsd w mem fp32 base=240 len=16
        .dsd a reg fp32 r1
        .reg r1 2.0
        .task 1 main
    main:
        fmac y, w, a
        daddbi w, 20
        fmac y, w, a
        end
    """
    routes = RouteTable(PARAMS.num_colors).set(TRIGGER, ["w"], ["ramp"])
    return FabricImage({(0, 0): TileProgram(routes, assemble(text, PARAMS.pe_params()))})


def echo_image() -> FabricImage:
    """Tile (0, 0) forwards colour 1 from west to east; nothing else is routed."""
    routes = RouteTable(PARAMS.num_colors).set(TRIGGER, ["w"], ["e"])
    return FabricImage({(0, 0): TileProgram(routes)})


@pytest.fixture(scope="module")
def drivers(sim, waves):
    golden = FabricDriver(PARAMS, backend="golden")
    rtl = FabricDriver(PARAMS, backend="rtl", sim=sim, waves=waves)
    yield {"golden": golden, "rtl": rtl}
    rtl.close()


@pytest.mark.parametrize("backend", ["golden", "rtl"])
def test_pe_fault_stops_the_run_and_names_the_tile(drivers, backend):
    driver = drivers[backend]
    driver.load(bounds_fault_image())
    driver.send("w", 0, [Wavelet(0, TRIGGER)])
    # The result never comes: without the error line the run would wait for its limit.
    with pytest.raises(FabricError, match=r"tile \(0, 0\): PE fault BOUNDS") as info:
        driver.run(max_cycles=100_000, expect={("e", 0): 1})
    assert info.value.tiles == {(0, 0): (ErrorFlag.BOUNDS, 0)}
    if backend == "rtl":  # stopped at the fault, not at the cycle limit
        assert info.value.cycles < 200
    assert driver.errors() == {(0, 0): (ErrorFlag.BOUNDS, 0)}  # sticky ...
    driver.load(echo_image())  # ... until the next load
    assert driver.errors() == {}


@pytest.mark.parametrize("backend", ["golden", "rtl"])
def test_dropped_wavelets_stop_the_run_and_are_counted(drivers, backend):
    driver = drivers[backend]
    driver.load(echo_image())
    unrouted = TRIGGER + 1
    driver.send("w", 0, [Wavelet(7, TRIGGER), Wavelet(8, unrouted), Wavelet(9, unrouted)])
    with pytest.raises(FabricError, match=r"tile \(0, 0\): router dropped 2 wavelet") as info:
        driver.run(max_cycles=100_000, expect={("e", 0): 1})
    assert info.value.tiles == {(0, 0): (ErrorFlag(0), 2)}
    driver.load(echo_image())
    driver.send("w", 0, [Wavelet(7, TRIGGER)])
    result = driver.run(max_cycles=1000, expect={("e", 0): 1})
    assert [tuple(w) for w in result.take("e", 0)] == [(7, TRIGGER, 0)]


def loop_tables(num_colors: int = 4) -> dict:
    """Colour 1 around the 2 x 2 square (0,0) -E-> (0,1) -S-> (1,1) -W-> (1,0) -N-> (0,0)."""
    def table(rx, tx):
        return RouteTable(num_colors).set(1, rx, tx)
    return {(0, 0): table(["s", "w"], ["e"]), (0, 1): table(["w"], ["s", "ramp"]),
            (1, 1): table(["n"], ["w"]), (1, 0): table(["e"], ["n"])}


def test_route_cycle_found_with_its_hops():
    color, hops = find_route_cycle(loop_tables(), 2, 2)
    assert color == 1
    assert hops == [(0, 0, "s", "e", 0), (0, 1, "w", "s", 0), (1, 1, "n", "w", 0),
                    (1, 0, "e", "n", 0)]


def test_tree_and_broken_loop_are_not_cycles():
    tables = loop_tables()
    tables[1, 0] = RouteTable(4).set(1, ["e"], ["ramp"])
    assert find_route_cycle(tables, 2, 2) is None
    # A multicast tree: west edge into (0,0), down and across; every path ends.
    tree = {(0, 0): RouteTable(4).set(2, ["w"], ["e", "s", "ramp"]),
            (0, 1): RouteTable(4).set(2, ["w"], ["s", "ramp"]),
            (1, 0): RouteTable(4).set(2, ["n"], ["ramp"]),
            (1, 1): RouteTable(4).set(2, ["n"], ["e", "ramp"])}
    assert find_route_cycle(tree, 2, 2) is None


def test_two_routers_bouncing_a_colour_is_a_cycle():
    tables = {(0, 0): RouteTable(4).set(3, ["ramp", "e"], ["e"]),
              (0, 1): RouteTable(4).set(3, ["w"], ["w"])}
    assert find_route_cycle(tables, 1, 2) == (3, [(0, 0, "e", "e", 0), (0, 1, "w", "w", 0)])


def test_load_refuses_a_routing_loop():
    params = FabricParams(rows=2, cols=2, spares=1, sram_words=256, imem_words=64)
    image = FabricImage({tile: TileProgram(t) for tile, t in
                         loop_tables(params.num_colors).items()})
    with FabricDriver(params, backend="golden") as driver:
        with pytest.raises(RouteCycleError, match=r"colour 1 has a routing loop: \(0, 0\) in S "
                                                  r"out E -> \(0, 1\) in W out S"):
            driver.load(image)


# ---- the RTL backend's host engines ----------------------------------------------------------

#: Rings far smaller than the batches below: every run and read-back refills and empties them.
SMALL_RINGS = EngineParams(queue_words=16, capture_words=16, chain_words=64,
                           chain_capture_words=64)


@pytest.fixture(scope="module", params=[False, True], ids=["comb", "outreg"])
def small_ring_driver(request, sim, waves):
    """The 1x1 fabric on small rings; also with registered router outputs, whose sinks take
    what arrives on the credit of the cycle before (rings full and paused sinks included)."""
    params = PARAMS
    if request.param:
        params = dataclasses.replace(PARAMS, **registered_outputs())
    rtl = FabricDriver(params, backend="rtl", sim=sim, waves=waves,
                       rtl_options={"engines": SMALL_RINGS})
    yield rtl
    rtl.close()


def test_engines_stream_batches_longer_than_their_rings_under_backpressure(small_ring_driver):
    driver = small_ring_driver
    driver.load(echo_image())
    sent = [Wavelet(1000 + i, TRIGGER) for i in range(100)]
    for pause in (0, 12):  # 12/16: the sinks refuse three cycles in four
        driver._backend.set_pause(pause)
        driver.send("w", 0, sent)
        result = driver.run(max_cycles=10_000, expect={("e", 0): len(sent)})
        assert result.take("e", 0) == sent
    driver._backend.set_pause(0)
    assert result.cycles > 4 * len(sent) * 0.9  # the backpressure slowed the run down


def test_chain_read_back_longer_than_the_capture_ring(small_ring_driver):
    driver = small_ring_driver
    image = bounds_fault_image()
    pe = image.tiles[0, 0].pe
    data = [(i * 2654435761) & 0xFFFF_FFFF for i in range(PARAMS.sram_words)]
    pe.add_words(0, data)  # loading also streams several times the chain ring
    driver.load(image)
    assert driver.read_memory(0, 0, 0, PARAMS.sram_words).tolist() == data


@pytest.mark.slow
def test_a_recorded_session_replays_cycle_for_cycle_without_python(sim, tmp_path):
    """The free-running limit of bench/sim_speed.py replays the same runs: same cycle counts."""
    if sim != "verilator":
        pytest.skip("the replayer links a Verilator model")
    trace = tmp_path / "session.trace"
    rtl = FabricDriver(PARAMS, backend="rtl", sim=sim, rtl_options={"trace": trace})
    try:
        rtl.load(echo_image())
        cycles = []
        for n in (5, 40):
            rtl.send("w", 0, [Wavelet(i, TRIGGER) for i in range(n)])
            cycles.append(rtl.run(max_cycles=1000, expect={("e", 0): n},
                                  counters=False).cycles)
        build_dir = rtl._backend.build_dir
    finally:
        rtl.close()
    free = replay(build_dir, trace)
    # Each replayed run also counts the 3 settle cycles and the 2 cycles the start takes.
    assert [c for c, _ in free["runs"]] == [c + 5 for c in cycles]
