"""Small whole-fabric programs for the fabric tests: each is an image, host inputs, the outputs
to expect and the memory to read back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hdl.wavelet import ControlWord, SwitchCommand
from router.params import PopMode
from sim.host.driver import FabricImage, TileProgram
from sim.model.pe import PEParams
from sim.model.reference import row_sums
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import assemble
from sim.toolchain.kernels import broadcast_reduce
from sim.toolchain.routes import RouteTable


@dataclass
class Scenario:
    name: str
    image: FabricImage
    inputs: dict[tuple[str, int], list[Wavelet]] = field(default_factory=dict)
    expect: dict[tuple[str, int], int] = field(default_factory=dict)
    read: list[tuple[int, int, int, int]] = field(default_factory=list)  # row, col, addr, n
    answer: np.ndarray | None = None  # written from the kernel's definition, where given


def _floats(rng, n):
    return [int(v) for v in rng.standard_normal(n).astype(np.float32).view(np.uint32)]


def multicast(rows: int, cols: int, num_colors: int, pe: PEParams, seed: int = 0) -> Scenario:
    """Row multicast from each west port and column multicast from each north port; every PE
    accumulates what it receives (a program on every tile)."""
    rng = np.random.default_rng(seed)
    ROW, COL = 1, 2
    image = FabricImage()
    for r in range(rows):
        for c in range(cols):
            table = RouteTable(num_colors)
            table.set(ROW, ["w"], ["ramp", "e"])  # the last column also reaches the east port
            table.set(COL, ["n"], ["ramp", "s"] if r < rows - 1 else ["ramp"])
            text = """
                .dsd acc  mem fp32 base=0 len=1
                .dsd prod mem fp32 base=1 len=1
                .dsd log  mem fp32 base=8 len=1
                .dsd x    reg fp32 r7
                .task 1 on_row
                .task 2 on_col
                .data 1 fp32 1.0
            on_row:
                fadd acc, acc, x
                mov log, x
                daddbi log, 1
                end
            on_col:
                fmul prod, prod, x
                end
            """
            image.tiles[r, c] = TileProgram(table, assemble(text, pe))
    scenario = Scenario("multicast", image)
    for r in range(rows):
        scenario.inputs["w", r] = [Wavelet(v, ROW) for v in _floats(rng, 6)]
        scenario.expect["e", r] = 6
    for c in range(cols):
        scenario.inputs["n", c] = [Wavelet(v, COL) for v in _floats(rng, 5)]
    scenario.read = [(r, c, 0, 16) for r in range(rows) for c in range(cols)]
    return scenario


def reduction(rows: int, cols: int, num_colors: int, pe: PEParams, n: int = 6,
              seed: int = 1) -> Scenario:
    """Chain reduction along every row: column 0 sends its vector east, each next PE adds its
    own and passes the sum on, the last sends it to the east port. Started by a trigger wavelet
    multicast along the row."""
    rng = np.random.default_rng(seed)
    TRIGGER = 1
    link = [3 + (c % 2) for c in range(cols)]  # the colour from column c to c + 1 alternates
    image = FabricImage()
    for r in range(rows):
        for c in range(cols):
            table = RouteTable(num_colors)
            table.set(TRIGGER, ["w"], ["ramp", "e"] if c < cols - 1 else ["ramp"])
            table.set(link[c], ["ramp"], ["e"])
            if c > 0:
                table.set(link[c - 1], ["w"], ["ramp"])
            v = rng.standard_normal(n).astype(np.float32)
            body = "mov out, v" if c == 0 else "fadd out, in, v"
            text = f"""
                .dsd v   mem    fp32 base=0 len={n}
                .dsd out fabout fp32 color={link[c]} len={n}
                .dsd in  fabin  fp32 color={link[c - 1] if c else link[0]} len={n}
                .task {TRIGGER} go
                .data 0 fp32 {" ".join(repr(float(x)) for x in v)}
            go:
                {body}
                end
            """
            image.tiles[r, c] = TileProgram(table, assemble(text, pe))
    scenario = Scenario("reduction", image)
    for r in range(rows):
        scenario.inputs["w", r] = [Wavelet(0, TRIGGER)]
        scenario.expect["e", r] = n
    scenario.read = [(r, c, 0, n) for r in range(rows) for c in range(cols)]
    return scenario


def starved(rows: int, cols: int, num_colors: int, pe: PEParams) -> Scenario:
    """Tile (rows-1, cols-1) waits forever for fabric input that never comes (timeout test)."""
    image = FabricImage()
    table = RouteTable(num_colors).set(1, ["w"], ["ramp"])
    text = """
        .dsd v  mem   fp32 base=0 len=4
        .dsd in fabin fp32 color=2 len=4
        .task 1 go
    go:
        fadd v, in, v
        end
    """
    r, c = rows - 1, cols - 1
    image.tiles[r, c] = TileProgram(table, assemble(text, pe))
    for cc in range(c):
        image.tiles[r, cc] = TileProgram(RouteTable(num_colors).set(1, ["w"], ["e"]))
    scenario = Scenario("starved", image)
    scenario.inputs["w", r] = [Wavelet(0, 1)]
    return scenario


def _control(payload: int, color: int, commands) -> Wavelet:
    word = ControlWord.const({"payload": payload, "no_task": 1, "commands": list(commands)})
    return Wavelet(word.as_bits(), color, 1)


def switched_scatter(rows: int, cols: int, num_colors: int, pe: PEParams,
                     seed: int = 2) -> Scenario:
    """Host-driven switches, routers only: one colour enters row 0 from the west; in row 0 each
    router passes it east (position 0) or turns it south (position 1), down its column to the
    south edge. For each column k the host sends a control wavelet whose command list (popped
    at every router) advances router k alone, a block of data that leaves at south port k, and a
    control wavelet that resets router k. The golden expectation is written here: south port k
    receives its block and the reset wavelet, the east port the advance wavelets."""
    rng = np.random.default_rng(seed)
    COLOR = num_colors - 1
    NOP, ADV, RST = SwitchCommand.NOP, SwitchCommand.ADVANCE, SwitchCommand.RESET
    image = FabricImage()
    for r in range(rows):
        for c in range(cols):
            table = RouteTable(num_colors)
            if r == 0:
                table.set(COLOR, ["w"], ["e"])
                table.set_switch(COLOR, [(["w"], ["s"])], pop=PopMode.ALWAYS_POP)
            else:
                table.set(COLOR, ["n"], ["s"])
            image.tiles[r, c] = TileProgram(table)
    scenario = Scenario("switched_scatter", image)
    stream = []
    for k in range(cols):
        block = [Wavelet(v, COLOR) for v in _floats(rng, 3 + k)]
        stream += [_control(k, COLOR, [NOP] * k + [ADV]), *block,
                   _control(100 + k, COLOR, [NOP] * k + [RST])]
        scenario.expect["s", k] = len(block) + 1
    scenario.inputs["w", 0] = stream
    scenario.expect["e", 0] = cols
    return scenario


def switched_broadcast_reduce(rows: int, cols: int, num_colors: int, pe: PEParams,
                              seed: int = 3, length: int = 5) -> Scenario:
    """The toolchain's PE-driven switch kernel: every row broadcasts on one colour, multiplies
    and reduces back to its PE 0 on the same colour (control wavelets sent by the PEs move the
    switches). ``x`` and ``w`` are kept on the scenario for the test's own answer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, length)).astype(np.float32)
    w = rng.standard_normal((rows, cols, length)).astype(np.float32)
    kernel = broadcast_reduce(x, w, pe, color=num_colors - 2, start_color=1)
    return Scenario("switched_broadcast_reduce", kernel.image, inputs=kernel.inputs,
                    read=kernel.result, answer=row_sums(x, w))

