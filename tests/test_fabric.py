"""Whole fabrics on RTL against the golden fabric model, with and without defects.

For each size (1x1, 2x2, 3x3, all with one spare column) one simulator runs every scenario:
row and column multicast, a chain reduction along every row (a program on every tile), then the
same programs on random repairable defect maps whose defective tiles are fault-injected (noise
on every output each cycle, or stuck valid), bit for bit equal to the golden model; the
configuration read back equals what was written; a starved program times out naming its tile.
"""

from __future__ import annotations

import numpy as np
import pytest
from fabric_programs import (
    multicast,
    reduction,
    starved,
    switched_broadcast_reduce,
    switched_scatter,
)

from fabric.array import FabricParams, registered_outputs
from fabric.repair import UnrepairableError, repair
from fabric.tile import TileMap
from pe.isa import AddressMap
from sim.apps.defects import random_defects
from sim.host.driver import FabricDriver
from sim.host.errors import RunTimeout

#: (rows, cols, output_register): the 2x2 fabric also with registered router outputs (two
#: cycles per hop, 3-wavelet queues), defect maps and their bypassed tiles included.
SIZES = [(1, 1, False), (2, 2, False), (3, 3, False), (2, 2, True)]


def params_for(rows, cols, output_register=False):
    # tests/test_mapper.py builds the same fabrics (two-layer MLPs need 10 tasks, 14 DSDs).
    return FabricParams(rows=rows, cols=cols, spares=1, sram_words=256, imem_words=64,
                        num_colors=8, num_tasks=12, num_dsds=16, fault_injection=True,
                        **(registered_outputs() if output_register else {}))


def run_scenario(driver: FabricDriver, scenario):
    driver.load(scenario.image)
    for (edge, index), wavelets in scenario.inputs.items():
        driver.send(edge, index, wavelets)
    result = driver.run(expect=scenario.expect, max_cycles=20_000)
    memory = {(r, c): driver.read_memory(r, c, addr, n).tolist()
              for r, c, addr, n in scenario.read}
    received = {port: [tuple(w) for w in ws] for port, ws in result.received.items()}
    return received, memory, result


@pytest.fixture(scope="module", params=SIZES,
                ids=lambda s: f"{s[0]}x{s[1]}{'-outreg' if s[2] else ''}")
def fabric(request, sim, waves):
    params = params_for(*request.param)
    golden = FabricDriver(params, backend="golden")
    rtl = FabricDriver(params, backend="rtl", sim=sim, waves=waves)
    yield params, golden, rtl
    rtl.close()


def test_unrepairable_map_names_the_row():
    d = np.zeros((3, 4), dtype=bool)
    d[1, [0, 2]] = True
    with pytest.raises(UnrepairableError, match=r"row 1 has 2 defective tiles \(physical "
                                                 r"columns \[0, 2\]\) but only 1 spare"):
        repair(d, cols=3, spares=1)
    with pytest.raises(ValueError, match="must have shape"):
        repair(np.zeros((2, 3), dtype=bool), cols=3, spares=1)


def test_repair_maps_logical_columns_in_order():
    d = np.array([[0, 1, 0, 0], [0, 0, 0, 1]], dtype=bool)
    rmap = repair(d, cols=3, spares=1)
    assert rmap.column.tolist() == [[0, 2, 3], [0, 1, 2]]
    # Physical (0, 2) holds logical column 1: north is host column 1, south is physical (1, 1);
    # both one column to the left: select 0 (offset -1 + spares).
    assert rmap.selects(0, 2) == (0, 0)
    # Physical (1, 2) holds logical column 2: north is physical (0, 3), south is host column 2.
    assert rmap.selects(1, 2) == (2, 1)
    assert rmap.logical(0, 1) is None


@pytest.mark.parametrize("scenario_fn", [multicast, reduction, switched_scatter,
                                         switched_broadcast_reduce],
                         ids=["multicast", "reduction", "switched_scatter",
                              "switched_broadcast_reduce"])
def test_programs_match_golden_without_defects(fabric, scenario_fn):
    params, golden, rtl = fabric
    scenario = scenario_fn(params.rows, params.cols, params.num_colors, params.pe_params())
    g_out, g_mem, _ = run_scenario(golden, scenario)
    r_out, r_mem, result = run_scenario(rtl, scenario)
    assert sum(map(len, g_out.values())) == sum(scenario.expect.values())
    if scenario.name == "switched_scatter":  # the golden model's answer, written out
        stream = scenario.inputs["w", 0]
        starts = [i for i, w in enumerate(stream) if w.ctrl][::2]
        for k, start in enumerate(starts):
            block = [tuple(w) for w in stream[start + 1:start + 4 + k]]
            assert g_out["s", k][:-1] == block, f"south port {k} got {g_out['s', k]}"
    if scenario.name == "switched_broadcast_reduce":  # the answer from its definition
        sums = np.array([g_mem[r, 0] for r in range(params.rows)], dtype=np.uint32)
        assert np.array_equal(sums, scenario.answer.view(np.uint32)), "golden row sums"
    assert r_out == g_out, f"{scenario.name}: edge outputs differ from the golden model"
    assert r_mem == g_mem, f"{scenario.name}: memory differs from the golden model"
    assert result.cycles and result.cycles > 0


@pytest.mark.parametrize("fault", ["random", "stuck"])
def test_defective_fabric_gives_identical_results(fabric, fault):
    params, golden, rtl = fabric
    if params.rows * params.cols < 4:
        pytest.skip("defect maps are exercised on the 2x2 and 3x3 fabrics")
    # Seeded from the parameters only (not hash(), which varies with PYTHONHASHSEED).
    rng = np.random.default_rng([params.rows, ("random", "stuck").index(fault)])
    reference = {}
    scenarios = (multicast, reduction, switched_scatter, switched_broadcast_reduce)
    for scenario_fn in scenarios:
        scenario = scenario_fn(params.rows, params.cols, params.num_colors, params.pe_params())
        reference[scenario.name] = run_scenario(golden, scenario)[:2]
    for _ in range(2):
        # A random repairable map with 1 .. rows * spares defects.
        count = int(rng.integers(1, params.rows * params.spares + 1))
        defects = random_defects(params.rows, params.physical_cols, params.spares, count, rng)
        rtl.repair(defects, fault=fault)
        for scenario_fn in scenarios:
            scenario = scenario_fn(params.rows, params.cols, params.num_colors,
                                   params.pe_params())
            out, mem, _ = run_scenario(rtl, scenario)
            assert (out, mem) == reference[scenario.name], (
                f"{scenario.name} on defect map\n{defects.astype(int)}\n({fault} faults) "
                f"differs from the defect-free golden result")
    rtl.repair(np.zeros((params.rows, params.physical_cols), dtype=bool))


def test_configuration_reads_back(fabric):
    params, _, rtl = fabric
    scenario = reduction(params.rows, params.cols, params.num_colors, params.pe_params())
    rtl.load(scenario.image)
    routes = rtl.read_many(TileMap.ROUTER, params.num_colors)
    program = rtl.read_many(AddressMap.IMEM, 4)
    for (r, c), prog in scenario.image.tiles.items():
        assert routes[r, c] == prog.routes.words(), f"routes of tile ({r}, {c})"
        assert program[r, c] == (prog.pe.program + [0] * 4)[:4], f"program of tile ({r}, {c})"
    sram = rtl.read_memory(params.rows - 1, params.cols - 1, 0, 4)
    image = scenario.image.tiles[params.rows - 1, params.cols - 1].pe
    assert sram.tolist() == [image.sram.get(i, 0) for i in range(4)]


def test_timeout_reports_busy_tile(fabric):
    params, golden, rtl = fabric
    scenario = starved(params.rows, params.cols, params.num_colors, params.pe_params())
    for driver in (golden, rtl):
        driver.load(scenario.image)
        driver.send("w", params.rows - 1, scenario.inputs["w", params.rows - 1])
        with pytest.raises(RunTimeout, match=rf"busy logical tiles \[\({params.rows - 1}, "
                                             rf"{params.cols - 1}\)\]"):
            driver.run(max_cycles=500, expect={("e", 0): 1})
