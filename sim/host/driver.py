"""Host driver: load a fabric, stream data through its edges, run, read back — on two backends.

One API, two backends that take the same configuration-chain packets:

* ``backend="golden"``: the golden fabric model (:mod:`sim.model.fabric`), untimed
  (:mod:`sim.host.golden`);
* ``backend="rtl"``: the RTL fabric simulated with cocotb (Verilator by default) inside a
  simulation top whose host engines stream every edge port and the configuration chain
  (:mod:`sim.tb.sim_top`), served by :mod:`sim.tb.fabric_server` in a simulator process the
  driver starts and talks to over a socket (:mod:`sim.host.rtl`).

What a driver raises is in :mod:`sim.host.errors`.

Everything the host does goes through the configuration chain (``chain`` packets: shell
registers, routes, programs, DSD and task tables, SRAM memcpy, read-back) or the logical array's
edge ports; the RTL backend runs the real chain. Physical addressing follows the repair map of
the wafer's defect map, so a program addresses logical tiles and never needs to know where the
spares went.

Example::

    drv = FabricDriver(FabricParams(rows=2, cols=2), backend="rtl", defects=defect_map)
    drv.load(image)                      # FabricImage: routes + PE images per logical tile
    drv.send("n", 0, wavelets)           # into the north edge of logical column 0
    result = drv.run(expect={("e", 1): 8})
    y = result.received[("e", 1)]
    words = drv.read_memory(1, 1, 0, 16)
    drv.close()
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fabric.array import FabricParams, chain_order
from fabric.repair import RepairMap, repair
from fabric.tile import TileMap
from pe.isa import AddressMap, ErrorFlag
from sim.host.errors import DriverError, FabricError, RunTimeout
from sim.host.golden import GoldenBackend
from sim.host.packets import (
    BROADCAST,
    MAX_COUNT,
    Command,
    header,
    parse_answers,
    read_packet,
    shell_packet,
    shell_word,
    write_packets,
)
from sim.host.rtl import RTLBackend
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import PEImage
from sim.toolchain.routes import RouteTable, check_acyclic

__all__ = ["TileProgram", "FabricImage", "RunResult", "Backend", "FabricDriver", "FAULT_MODES",
           "DROPPED_ADDR"]

#: Fault-injection modes for defective tiles (RTL builds with fault injection).
FAULT_MODES = {"none": 0, "random": 1, "stuck": 2}
EDGES = ("n", "s", "w", "e")

#: Tile configuration word of the router's sticky drop counter (read: count; write: clear).
DROPPED_ADDR = TileMap.ROUTER_STATUS


@dataclass
class TileProgram:
    """What one logical tile is loaded with: its route table and (optionally) a PE image."""

    routes: RouteTable
    pe: PEImage | None = None


@dataclass
class FabricImage:
    """Everything loaded into a fabric, per logical tile ``(row, col)``."""

    tiles: dict[tuple[int, int], TileProgram] = field(default_factory=dict)

    def program(self, row: int, col: int) -> TileProgram | None:
        """The program of logical tile ``(row, col)``, or ``None`` if it has none."""
        return self.tiles.get((row, col))


@dataclass
class RunResult:
    """What a run gave.

    Attributes
    ----------
    cycles : int or None
        Cycles from the start of the run to the fabric going idle (RTL); ``None`` on the golden
        backend, which is untimed.
    received : dict[(edge, index), list[Wavelet]]
        Wavelets that left the fabric at each host port during the run.
    macs, elements, busy_cycles : np.ndarray of shape (rows, cols)
        Per-PE counters since the last load: multiply-accumulate elements, vector elements,
        busy cycles (RTL; zero on golden).
    """

    cycles: int | None
    received: dict[tuple[str, int], list[Wavelet]]
    macs: np.ndarray
    elements: np.ndarray
    busy_cycles: np.ndarray

    def take(self, edge: str, index: int) -> list[Wavelet]:
        """The wavelets that left host port ``edge`` ``index`` (empty if none)."""
        return self.received.get((edge, index), [])


class Backend(Protocol):
    """What the driver needs of a backend (:class:`sim.host.golden.GoldenBackend`,
    :class:`sim.host.rtl.RTLBackend`). Host ports are named ``"<edge><index>"`` (``"n0"``),
    wavelets travel as ``(data, colour, ctrl)`` tuples."""

    def chain(self, words: list[int], answers: int) -> list[int]:
        """Push configuration-chain words; return every word that came out of the chain's end
        (``answers`` is the number of READ answers to wait for)."""

    def send(self, port: str, wavelets) -> None:
        """Hold wavelets for a host port; they enter during the next :meth:`run`."""

    def run(self, max_cycles: int, expect: dict[str, int]) -> dict:
        """Run until idle; a dict with ``cycles``, ``received``, ``timeout``, ``pending``,
        ``error`` and either ``busy_logical`` or ``tile_idle``."""

    def set_faults(self, modes: list[int]) -> None:
        """Fault-injection mode of every physical tile, row-major."""

    def close(self) -> None:
        """Release the backend (stop the simulator)."""


# ---- the driver ------------------------------------------------------------------------------


class FabricDriver:
    """Load, run and read back a fabric on the golden model or the RTL.

    Parameters
    ----------
    params : FabricParams
        The fabric (for fault injection on the RTL, build with ``fault_injection=True``).
    backend : {"golden", "rtl"}
    defects : array-like of bool, shape (rows, cols + spares), optional
        Defect map; repaired with :func:`fabric.repair.repair`. Default: no defects.
    fault : {"random", "stuck", "none"}
        How defective tiles misbehave on the RTL (needs ``params.fault_injection``).
    sim : str, optional
        Simulator for the RTL backend (default Verilator).
    waves : bool
        Record a waveform (RTL).
    optimize : bool
        Build the simulator with C++ optimisation (slower build, faster run: long workloads).
    rtl_options : dict, optional
        More keyword arguments of :class:`sim.host.rtl.RTLBackend` (``engines``,
        ``reuse_tile``, ``threads``, ``trace``).

    Raises
    ------
    fabric.repair.UnrepairableError
        If the defect map cannot be repaired.
    ValueError
        For a bad backend or fault mode.
    DriverError
        If the RTL simulation cannot be started.
    """

    def __init__(self, params: FabricParams, *, backend: str = "golden", defects=None,
                 fault: str = "random", sim: str | None = None, waves: bool = False,
                 optimize: bool = False, rtl_options: dict | None = None):
        if backend not in ("golden", "rtl"):
            raise ValueError(f"backend must be 'golden' or 'rtl', not {backend!r}")
        if fault not in FAULT_MODES:
            raise ValueError(f"fault must be one of {', '.join(FAULT_MODES)}, not {fault!r}")
        self.params = params
        self.backend_name = backend
        R, P = params.rows, params.physical_cols
        d = np.zeros((R, P), dtype=bool) if defects is None else np.asarray(defects, dtype=bool)
        self.repair_map = repair(d, params.cols, params.spares)
        if backend == "golden":
            self._backend: Backend = GoldenBackend(params, self.repair_map)
        else:
            self._backend = RTLBackend(params, sim=sim, waves=waves, optimize=optimize,
                                       **(rtl_options or {}))
        self._running = False
        self._apply_repair(d, fault)

    def repair(self, defects, fault: str = "random") -> RepairMap:
        """Repair the fabric for a new defect map: set every shell (enables, vertical selects)
        and the fault injection of the defective tiles. Reload the image afterwards.

        Raises
        ------
        fabric.repair.UnrepairableError
            If the map cannot be repaired.
        """
        if fault not in FAULT_MODES:
            raise ValueError(f"fault must be one of {', '.join(FAULT_MODES)}, not {fault!r}")
        d = np.asarray(defects, dtype=bool)
        self.repair_map = repair(d, self.params.cols, self.params.spares)
        if self.backend_name == "golden":
            self._backend.rmap = self.repair_map
        self._apply_repair(d, fault)
        return self.repair_map

    def _apply_repair(self, d: np.ndarray, fault: str) -> None:
        # Disable every tile, then set the fault injection, then enable the tiles of the new
        # map: no faulty core is ever enabled, not even for a cycle.
        R, P = self.params.rows, self.params.physical_cols
        self._chain([w for r, p in chain_order(R, P) for w in shell_packet(r, p, 0)])
        words = []
        for r, p in chain_order(R, P):
            enable = bool(self.repair_map.enabled[r, p])
            sel_n, sel_s = self.repair_map.selects(r, p)
            words += shell_packet(r, p, shell_word(enable, sel_n, sel_s))
        if d.any() and fault != "none" and self.backend_name == "rtl" \
                and not self.params.fault_injection:
            raise ValueError("fault injection needs a fabric built with fault_injection=True "
                             "(or pass fault='none')")
        if self.params.fault_injection or self.backend_name == "golden":
            modes = [FAULT_MODES[fault] if d[r, p] else 0 for r in range(R) for p in range(P)]
            self._backend.set_faults(modes)
        self._chain(words)

    # ---- configuration ---------------------------------------------------------------------
    def _chain(self, words: list[int], answers: int = 0) -> list[int]:
        out = self._backend.chain(words, answers)
        _, unclaimed = parse_answers(out)
        if unclaimed:
            raise DriverError(f"configuration packets came back unclaimed (a disabled or "
                              f"missing tile?): {[hex(w) for w in unclaimed[:4]]}")
        return out

    def _physical(self, row: int, col: int) -> tuple[int, int]:
        return self.repair_map.physical(row, col)

    def _broadcast(self, addr: int, words: list[int]) -> list[int]:
        out = []
        for start in range(0, max(len(words), 1), MAX_COUNT):
            chunk = words[start:start + MAX_COUNT]
            out += [header(Command.WRITE, BROADCAST, BROADCAST, len(chunk)), addr + start,
                    *chunk]
        return out

    def _set_run(self, run: bool) -> None:
        self._chain(self._broadcast(AddressMap.CTRL, [int(run)]))
        self._running = run

    def load(self, image: FabricImage) -> None:
        """Stop every PE, clear it (errors, counters, queues) and its router's drop counter, zero
        its SRAM, program, task and DSD tables and registers, set every colour's input filter
        to OFF (a filter of an earlier image would drop this image's wavelets), then write
        every tile's routes and PE image through the configuration chain (the empty route table
        and the zeros as broadcasts to every tile, then each router's colours in use and each
        PE's image).

        Raises
        ------
        ValueError
            If the image names a tile outside the logical array.
        RouteCycleError
            (a ``ValueError``) If the route tables send a colour around a loop.
        """
        R, C = self.params.rows, self.params.cols
        for r, c in image.tiles:
            if not (0 <= r < R and 0 <= c < C):
                raise ValueError(f"the image has a program for tile ({r}, {c}), outside the "
                                 f"{R} x {C} array")
        check_acyclic({tile: prog.routes for tile, prog in image.tiles.items()}, R, C)
        prm = self.params
        words = self._broadcast(AddressMap.CTRL, [2]) + self._broadcast(DROPPED_ADDR, [0])
        for addr, count in ((AddressMap.SRAM, prm.sram_words), (AddressMap.IMEM, prm.imem_words),
                            (AddressMap.TASKS, prm.num_tasks), (AddressMap.DSDS, 2 * prm.num_dsds),
                            (AddressMap.REGS, 8), (AddressMap.FILTER_MODES, prm.num_colors)):
            words += self._broadcast(addr, [0] * count)
        # Every router gets the empty table by broadcast, then each its colours in use.
        empty = RouteTable(self.params.num_colors)
        for addr, block in empty.config_blocks():
            words += self._broadcast(TileMap.ROUTER + addr, block)
        for r in range(R):
            for c in range(C):
                pr, pc = self._physical(r, c)
                prog = image.program(r, c)
                routes = prog.routes if prog else empty
                if prog is not None and prog.routes.num_colors != self.params.num_colors:
                    raise ValueError(f"tile ({r}, {c}): route table has "
                                     f"{prog.routes.num_colors} colours, the fabric "
                                     f"{self.params.num_colors}")
                for addr, block in routes.config_blocks(only_used=True):
                    words += write_packets(pr, pc, TileMap.ROUTER + addr, block)
                if prog is not None and prog.pe is not None:
                    for addr, block in prog.pe.config_blocks():
                        words += write_packets(pr, pc, addr, block)
        self._chain(words)
        self._running = False

    # ---- traffic ---------------------------------------------------------------------------
    def _port(self, edge: str, index: int) -> str:
        if edge not in EDGES:
            raise ValueError(f"unknown edge {edge!r}; the edges are n, s, w, e")
        limit = self.params.cols if edge in ("n", "s") else self.params.rows
        if not 0 <= index < limit:
            raise ValueError(f"edge port {edge}{index} does not exist: the {edge} edge has "
                             f"{limit} ports")
        return f"{edge}{index}"

    def send(self, edge: str, index: int, wavelets: Iterable[Wavelet]) -> None:
        """Queue wavelets into host edge port ``edge`` (n, s, w, e) of logical column / row
        ``index``; they enter during the next :meth:`run`."""
        self._backend.send(self._port(edge, index),
                           [(int(w.data), int(w.color), int(w.ctrl)) for w in wavelets])

    def run(self, *, max_cycles: int = 200_000,
            expect: dict[tuple[str, int], int] | None = None,
            counters: bool = True) -> RunResult:
        """Start the PEs (if stopped) and run until every queued wavelet has entered, the
        ``expect`` counts of wavelets have come out at their ports and the fabric is idle.

        Parameters
        ----------
        max_cycles : int
            Cycle limit (RTL).
        expect : dict[(edge, index), int], optional
            Wavelets each host port must deliver before the run can end.
        counters : bool
            Read the per-PE counters after the run (costs a few chain packets).

        Raises
        ------
        FabricError
            If a tile raised its error line (PE fault or dropped wavelet); the run stops there.
            Names each tile and what went wrong.
        RunTimeout
            If the limit is reached; names the busy logical tiles and what was still expected.
        """
        if not self._running:
            self._set_run(True)
        expect_ports = {self._port(e, i): n for (e, i), n in (expect or {}).items()}
        out = self._backend.run(max_cycles, expect_ports)
        received = {(p[0], int(p[1:])): [Wavelet(d, c, k) for d, c, k in ws]
                    for p, ws in out["received"].items()}
        if out["error"]:
            raise FabricError(self.errors(), out["cycles"])
        if out["timeout"]:
            if "busy_logical" in out:
                busy = out["busy_logical"]
            else:
                busy = self._busy_tiles(out["tile_idle"])
            missing = {p: n - len(out["received"].get(p, [])) for p, n in expect_ports.items()
                       if len(out["received"].get(p, [])) < n}
            got = {p: len(ws) for p, ws in out["received"].items()}
            raise RunTimeout(max_cycles, busy, out["pending"], missing, got)
        R, C = self.params.rows, self.params.cols
        macs, elements, busy = (np.zeros((R, C), dtype=np.int64) for _ in range(3))
        if counters:
            for (r, c), words in self.read_many(AddressMap.BUSY_CYCLES, 4).items():
                busy[r, c], macs[r, c], _, elements[r, c] = words
        return RunResult(out["cycles"], received, macs, elements, busy)

    def errors(self) -> dict[tuple[int, int], tuple[ErrorFlag, int]]:
        """The sticky errors of every logical tile that has one, read through the chain.

        Returns
        -------
        dict[(row, col), (ErrorFlag, int)]
            PE error flags (STATUS bits [15:8]) and router drop count; tiles without either
            are left out.
        """
        status = self.read_many(AddressMap.STATUS, 1)
        dropped = self.read_many(DROPPED_ADDR, 1)
        found = {}
        for tile, (word,) in status.items():
            flags = ErrorFlag((word & AddressMap.STATUS_ERRORS) >> AddressMap.ERROR_SHIFT)
            drops = dropped[tile][0]
            if flags or drops:
                found[tile] = (flags, drops)
        return found

    def _busy_tiles(self, tile_idle: int) -> list[tuple[int, int]]:
        P = self.params.physical_cols
        busy = []
        for r in range(self.params.rows):
            for p in range(P):
                if not tile_idle >> (r * P + p) & 1:
                    logical = self.repair_map.logical(r, p)
                    busy.append(logical if logical else ("disabled", r, p))
        return busy

    # ---- read-back ---------------------------------------------------------------------------
    def read_many(self, addr: int, count: int,
                  tiles: Iterable[tuple[int, int]] | None = None) -> dict:
        """Read ``count`` words at tile address ``addr`` of several logical tiles (default all).

        SRAM, program and tables can be read only while the PEs are stopped; this stops them
        first when ``addr`` is one of those (counters and status are read while running).
        """
        if addr < AddressMap.REGS and self._running:
            self._set_run(False)
        tiles = list(tiles) if tiles is not None else [
            (r, c) for r in range(self.params.rows) for c in range(self.params.cols)]
        words, expected = [], 0
        for r, c in tiles:
            pr, pc = self._physical(r, c)
            for start in range(0, count, MAX_COUNT):
                n = min(MAX_COUNT, count - start)
                words += read_packet(pr, pc, addr + start, n)
                expected += 1
        answers, _ = parse_answers(self._chain(words, expected))
        result = {}
        for r, c in tiles:
            chunks = answers.get(self._physical(r, c), [])
            result[r, c] = [w for chunk in chunks for w in chunk]
        return result

    def read_memory(self, row: int, col: int, addr: int, count: int) -> np.ndarray:
        """``count`` SRAM words from word ``addr`` of logical tile ``(row, col)`` (uint32).

        Raises
        ------
        ValueError
            If the range is outside the SRAM.
        """
        if addr < 0 or addr + count > self.params.sram_words:
            raise ValueError(f"words {addr}..{addr + count - 1} are outside the SRAM of "
                             f"{self.params.sram_words} words")
        words = self.read_many(AddressMap.SRAM + addr, count, [(row, col)])[row, col]
        return np.asarray(words, dtype=np.uint32)

    def read_word(self, row: int, col: int, addr: int) -> int:
        """One word of logical tile ``(row, col)``'s configuration space."""
        return self.read_many(addr, 1, [(row, col)])[row, col][0]

    def close(self) -> None:
        """Stop the simulator (RTL)."""
        self._backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

