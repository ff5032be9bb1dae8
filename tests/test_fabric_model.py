"""The golden fabric model's worklist scheduler against the round loop it replaced.

``ReferenceFabric`` is the loop as first written: every round visits every router in row-major
order and then runs every PE, and configuration is applied word by word. The model visits only
routers with waiting wavelets, runs only PEs given wavelets and is configured in blocks; on the
fabric test programs, mapped GEMVs and random traffic (multicast, dropped wavelets, several
inputs of one colour meeting at a router, PEs forwarding on other colours) both must deliver the
same wavelets in the same order, leave every PE and drop counter in the same state and take the
same number of rounds.
"""

from __future__ import annotations

import numpy as np
import pytest
from fabric_programs import multicast, reduction

from fabric.array import FabricParams
from hdl.ports import NUM_PORTS, OPPOSITE, RAMP, E, N, S, W
from pe.isa import AddressMap
from sim.host.driver import FabricDriver, FabricImage, TileProgram
from sim.host.packets import MAX_COUNT, write_packets
from sim.model.fabric import FabricModel
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import assemble
from sim.toolchain.mapper import map_layers, parse_dtype
from sim.toolchain.routes import Route, RouteTable, find_route_cycle

_STEP = {N: (-1, 0), S: (1, 0), W: (0, -1), E: (0, 1)}
_EDGE = {N: "n", S: "s", W: "w", E: "e"}


class ReferenceFabric(FabricModel):
    """Every router and every PE, every round (the original scheduler); configuration word by
    word."""

    def cfg_write_block(self, row, col, addr, values):
        for k, value in enumerate(values):
            self.cfg_write(row, col, addr + k, int(value))

    def _deliver(self, r, c, port, w):
        if port == RAMP:
            self.pes[r][c].push_wavelet(w.color, w.data, w.ctrl)
            return
        nr, nc = r + _STEP[port][0], c + _STEP[port][1]
        if 0 <= nr < self.rows and 0 <= nc < self.cols:
            self.inputs[nr][nc][OPPOSITE[port]].append(w)
            return
        edge = _EDGE[port]
        self.host_out.setdefault((edge, c if edge in ("n", "s") else r), []).append(w)

    def _route_all(self):
        moved = False
        for r in range(self.rows):
            for c in range(self.cols):
                pe = self.pes[r][c]
                fresh = pe.outbox[self.sent[r][c]:]
                if fresh:
                    self.inputs[r][c][RAMP].extend(Wavelet(d, col, k) for col, d, k in fresh)
                    self.sent[r][c] = len(pe.outbox)
                table = self.routes[r][c]
                for p in range(NUM_PORTS):
                    q = self.inputs[r][c][p]
                    while q:
                        w = q.popleft()
                        moved = True
                        if not table.accepts(p, w.color):
                            self.dropped[r][c] += 1
                            continue
                        for o in range(NUM_PORTS):
                            if table[w.color].tx >> o & 1:
                                self._deliver(r, c, o, w)
        return moved

    def run(self, max_rounds=1_000_000):
        for rounds in range(max_rounds):
            moved = self._route_all()
            for row in self.pes:
                for pe in row:
                    moved |= pe.run()
            if not moved:
                self.rounds.append(rounds)
                return rounds
        raise RuntimeError("still active")


class RecordingFabric(FabricModel):
    """The model under test, recording the rounds of every run."""

    def run(self, max_rounds=1_000_000):
        rounds = super().run(max_rounds)
        self.rounds.append(rounds)
        return rounds


def drivers(params: FabricParams) -> list[FabricDriver]:
    """Two golden drivers, on the reference scheduler and on the model's."""
    out = []
    for cls in (ReferenceFabric, RecordingFabric):
        driver = FabricDriver(params, backend="golden")
        model = cls(params.rows, params.cols, params.pe_params(), params.num_colors)
        model.rounds = []
        driver._backend.model = model
        out.append(driver)
    return out


def fabric_state(model: FabricModel) -> dict:
    """Everything observable of a golden fabric."""
    pes = [(pe.sram.tobytes(), list(pe.regs), list(pe.outbox), pe.cfg_read(AddressMap.STATUS),
            pe.macs, pe.elements, {c: list(q) for c, q in pe.inbox.items()})
           for row in model.pes for pe in row]
    return {"pes": pes, "dropped": model.dropped, "rounds": model.rounds,
            "queued": [[list(q) for q in tile] for row in model.inputs for tile in row]}


def run_both(params, image, batches, expect=None):
    """Load ``image`` on both drivers, run every batch of host inputs; compare after each."""
    ref, fast = drivers(params)
    for driver in (ref, fast):
        driver.load(image)
    for i, batch in enumerate(batches):
        results = []
        for driver in (ref, fast):
            for (edge, index), wavelets in batch.items():
                driver.send(edge, index, wavelets)
            results.append(driver.run(expect=expect or {}, counters=False).received)
        assert results[0] == results[1], f"batch {i}: host outputs differ"
        a, b = (fabric_state(d._backend.model) for d in (ref, fast))
        assert a == b, f"batch {i}: {[k for k in a if a[k] != b[k]]} differ"
    return results[1]


PARAMS = FabricParams(rows=3, cols=4, spares=1, sram_words=512, imem_words=64,
                      num_colors=8, num_tasks=12,
                      num_dsds=16)


@pytest.mark.parametrize("scenario_fn", [multicast, reduction])
def test_fabric_programs(scenario_fn):
    s = scenario_fn(PARAMS.rows, PARAMS.cols, PARAMS.num_colors, PARAMS.pe_params())
    received = run_both(PARAMS, s.image, [s.inputs], s.expect)
    assert {p: len(received.get(p, [])) for p in s.expect} == s.expect


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_mapped_layers(dtype):
    rng = np.random.default_rng(3)
    layers = [(rng.standard_normal((10, 13)), rng.standard_normal(10), True),
              (rng.standard_normal((7, 10)), None, False)]
    mappings, image = map_layers(layers, parse_dtype(dtype), PARAMS)
    x = rng.standard_normal(13)
    # The first layer of three inputs, back to back in one batch each.
    batches = [{p: w for p, w in mappings[0].inputs(x + k).items()} for k in range(3)]
    run_both(PARAMS, image, batches, mappings[0].expect())


def random_traffic(rng: np.random.Generator, params: FabricParams):
    """Random acyclic routes on colours 1..5 (multicast, several accepted inputs, unrouted
    colours that drop), PEs whose data task of colour k accumulates and forwards on colour
    k + 1, and host wavelets on every edge."""
    colors = range(1, 6)
    image = FabricImage()
    for r in range(params.rows):
        for c in range(params.cols):
            table = RouteTable(params.num_colors)
            for color in colors:
                if rng.random() < 0.85:
                    rx = sum(1 << p for p in range(NUM_PORTS) if rng.random() < 0.6)
                    table.routes[color] = Route(rx, int(rng.integers(0, 32)))
            lines = [".dsd acc mem fp32 base=0 len=1", ".dsd x reg fp32 r7"]
            code = []
            for color in colors:
                if rng.random() < 0.6:
                    lines.append(f".task {color} on{color}")
                    code += [f"on{color}:", "    fadd acc, acc, x"]
                    if color < 5 and rng.random() < 0.7:
                        lines.append(f".dsd out{color} fabout fp32 color={color + 1} len=1")
                        code.append(f"    mov out{color}, x")
                    code.append("    end")
            image.tiles[r, c] = TileProgram(table, assemble("\n".join(lines + code),
                                                            params.pe_params()))
    while (loop := find_route_cycle({t: p.routes for t, p in image.tiles.items()},
                                    params.rows, params.cols)) is not None:
        color, hops = loop
        r, c, *_ = hops[0]
        image.tiles[r, c].routes.routes.pop(color)  # break the loop at its first router
    batches = []
    for _ in range(3):
        batch = {}
        for edge, count in (("n", params.cols), ("s", params.cols), ("w", params.rows),
                            ("e", params.rows)):
            for index in range(count):
                n = int(rng.integers(0, 9))
                data = rng.standard_normal(n).astype(np.float32).view(np.uint32)
                colors = rng.choice([0, 1, 1, 2, 2, 3, 4, 5, 6], n)  # 0 and 6: no route
                batch[edge, index] = [Wavelet(int(d), int(k)) for d, k in zip(data, colors)]
        batches.append(batch)
    return image, batches


@pytest.mark.parametrize("seed", range(12))
def test_random_traffic(seed):
    rng = np.random.default_rng(seed)
    params = FabricParams(rows=int(rng.integers(1, 5)), cols=int(rng.integers(1, 5)), spares=1,
                          sram_words=64, imem_words=64, num_colors=8, num_tasks=12, num_dsds=16)
    image, batches = random_traffic(rng, params)
    ref, fast = drivers(params)
    outputs = []
    for driver in (ref, fast):
        driver.load(image)
        driver._set_run(True)
        for batch in batches:
            for (edge, index), wavelets in batch.items():
                driver.send(edge, index, wavelets)
            out = driver._backend.run(0, {})  # the backend: dropped wavelets are no error here
            outputs.append((out["received"], out["error"], out["busy_logical"]))
    assert outputs[:len(batches)] == outputs[len(batches):]
    a, b = (fabric_state(d._backend.model) for d in (ref, fast))
    assert a == b, [k for k in a if a[k] != b[k]]


def test_write_packets_take_arrays_in_bulk():
    """An SRAM image as a numpy array gives the packets of the same words as a list."""
    words = np.random.default_rng(4).integers(-(1 << 40), 1 << 40, 2 * MAX_COUNT + 7)
    for array in (words, words.astype(np.uint32), words.reshape(-1, 1)):
        assert write_packets(3, 1, 16, array) == write_packets(3, 1, 16, array.ravel().tolist())
