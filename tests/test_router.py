"""Router: parameter checks, golden model, and the cocotb tests (tests/tb_router.py, and the
figures of sim/tb/router_bench.py) on RTL."""

from pathlib import Path

import pytest

from hdl.ports import RAMP, E, N, S, W
from router import Router
from sim.model.router import route_streams
from sim.model.wavelet import Wavelet
from sim.tb.harness import run_cocotb
from sim.toolchain.routes import Route, RouteTable

HERE = Path(__file__).parent


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_colors": 0}, "num_colors must be between 1 and 32"),
        ({"num_colors": 33}, "num_colors must be between 1 and 32"),
        ({"num_colors": 2.5}, "num_colors must be an integer"),
        ({"queue_depth": 1}, "queue_depth must be between 2 and 16"),
        ({"queue_depth": "2"}, "queue_depth must be an integer"),
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


@pytest.mark.parametrize("num_colors, queue_depth, seed", [
    (8, 2, 1), (5, 3, 2), pytest.param(32, 2, 3, marks=pytest.mark.slow)])
def test_router_rtl(sim, waves, num_colors, queue_depth, seed):
    run_cocotb(
        Router(num_colors=num_colors, queue_depth=queue_depth),
        toplevel=f"router_c{num_colors}_d{queue_depth}",
        test_module=["tb_router", "sim.tb.router_bench"],  # the tests, then the figures
        test_dir=HERE,
        sim=sim,
        waves=waves,
        extra_env={
            "ROUTER_NUM_COLORS": str(num_colors),
            "ROUTER_QUEUE_DEPTH": str(queue_depth),
            "ROUTER_SEED": str(seed),
        },
    )
