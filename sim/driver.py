"""Host driver: load a fabric, stream data through its edges, run, read back — on two backends.

One API, two backends that take the same configuration-chain packets:

* ``backend="golden"``: the golden fabric model (:mod:`sim.model.fabric`), untimed;
* ``backend="rtl"``: the RTL fabric simulated with cocotb (Verilator by default), served by
  :mod:`sim.cocotb_fabric` in a simulator process the driver starts and talks to over a socket.

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

import json
import os
import pickle
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from fabric.array import FabricParams, chain_order, emit_verilog
from fabric.repair import RepairMap, repair
from pe.isa import AddressMap, ErrorFlag
from router.router import Router
from sim.config_packets import (
    BROADCAST,
    MAX_COUNT,
    ROUTER_BASE,
    Command,
    header,
    parse_answers,
    read_packet,
    shell_packet,
    shell_word,
    write_packets,
)
from sim.model.fabric import FabricModel
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import PEImage
from sim.toolchain.routes import RouteTable, check_acyclic

__all__ = ["TileProgram", "FabricImage", "RunResult", "RunTimeout", "FabricError",
           "DriverError", "FabricDriver", "FAULT_MODES"]

#: Fault-injection modes for defective tiles (RTL builds with fault injection).
FAULT_MODES = {"none": 0, "random": 1, "stuck": 2}
EDGES = ("n", "s", "w", "e")


class DriverError(RuntimeError):
    """The host driver could not do what was asked (the message says why)."""


class RunTimeout(DriverError):
    """A run did not finish within its cycle limit.

    Attributes
    ----------
    busy_tiles : list of (row, col)
        Logical tiles that were still busy.
    pending : dict
        Host ports with wavelets the fabric had not accepted.
    """

    def __init__(self, cycles: int, busy_tiles, pending, missing, received=None):
        self.busy_tiles, self.pending, self.missing = busy_tiles, pending, missing
        self.received = received or {}
        super().__init__(
            f"the fabric did not finish within {cycles} cycles: busy logical tiles "
            f"{busy_tiles or 'none'}; host ports still sending {pending or 'none'}; "
            f"outputs still expected {missing or 'none'} (received so far: "
            f"{self.received or 'nothing'})")


#: Tile configuration word of the router's sticky drop counter (read: count; write: clear).
DROPPED_ADDR = ROUTER_BASE + Router.STATUS_ADDR

_ERROR_TEXT = {
    ErrorFlag.BOUNDS: "a memory DSD element fell outside SRAM",
    ErrorFlag.OPCODE: "unknown opcode",
    ErrorFlag.OPERANDS: "illegal operand combination",
    ErrorFlag.CONFIG_BUSY: "configuration access while running",
    ErrorFlag.TASK: "task id beyond the task table",
}


class FabricError(DriverError):
    """A run stopped because tiles raised their error line: a PE fault or dropped wavelets.

    The fabric's ``error`` output is the OR of every working tile's PE error flags and router
    drop counter (both sticky until the next :meth:`FabricDriver.load`); a run ends as soon as
    it rises instead of waiting for its cycle limit.

    Attributes
    ----------
    tiles : dict[(row, col), (ErrorFlag, int)]
        Per logical tile with a problem: its PE's error flags and the number of wavelets its
        router dropped (saturating at 65535).
    cycles : int or None
        Cycles from the start of the run to the error (RTL; ``None`` on golden).
    """

    def __init__(self, tiles: dict[tuple[int, int], tuple[ErrorFlag, int]], cycles: int | None):
        self.tiles, self.cycles = tiles, cycles
        parts = []
        for (r, c), (flags, dropped) in sorted(tiles.items()):
            what = [f"PE fault {f.name} ({_ERROR_TEXT.get(f, 'see docs/isa.md')})"
                    for f in ErrorFlag if f in flags]
            if dropped:
                what.append(f"router dropped {dropped} wavelet(s) whose colour has no route "
                            f"accepting the port they arrived on")
            parts.append(f"tile ({r}, {c}): " + ", ".join(what))
        when = f" after {cycles} cycles" if cycles is not None else ""
        super().__init__(f"the fabric stopped with an error{when}: "
                         + ("; ".join(parts) or "no tile reports one any more"))


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
        return self.received.get((edge, index), [])


# ---- backends --------------------------------------------------------------------------------


class _GoldenBackend:
    """Applies chain packets to the golden model; runs it untimed."""

    def __init__(self, params: FabricParams, rmap: RepairMap):
        self.params, self.rmap = params, rmap
        self.model = FabricModel(params.rows, params.cols, params.pe_params(), params.num_colors)

    def chain(self, words: list[int], answers: int) -> list[int]:
        out: list[int] = []
        i = 0
        enabled = self.rmap.enabled
        while i < len(words):
            w = words[i]
            cmd, row, col, n = w >> 28, (w >> 20) & 0xFF, (w >> 12) & 0xFF, w & 0xFFF
            if cmd == Command.WRITE:
                addr, data = words[i + 1], words[i + 2:i + 2 + n]
                if row == BROADCAST and col == BROADCAST:
                    targets = [(r, c) for r in range(self.params.rows)
                               for c in range(self.params.cols)]
                elif enabled[row, col]:
                    targets = [self.rmap.logical(row, col)]
                else:
                    targets = []
                for r, c in targets:
                    for k, value in enumerate(data):
                        self.model.cfg_write(r, c, addr + k, value)
                if not targets or row == BROADCAST:  # broadcasts reach the chain's end
                    out += words[i:i + 2 + n]
                i += 2 + n
            elif cmd == Command.READ:
                addr = words[i + 1]
                if enabled[row, col]:
                    r, c = self.rmap.logical(row, col)
                    out += [header(Command.RDATA, row, col, n)]
                    out += [self.model.cfg_read(r, c, addr + k) for k in range(n)]
                else:
                    out += words[i:i + 2]
                i += 2
            elif cmd == Command.SHELL:
                i += 2
            else:
                out.append(w)
                i += 1
        return out

    def send(self, port: str, wavelets) -> None:
        self.model.send(port[0], int(port[1:]), [Wavelet(d, c, k) for d, c, k in wavelets])

    def run(self, max_cycles: int, expect: dict[str, int]) -> dict:
        try:
            self.model.run()
        except RuntimeError as exc:  # never settles: e.g. tasks that keep activating each other
            raise DriverError(f"the golden model did not settle: {exc}; busy logical tiles "
                              f"{self.model.busy_tiles()}") from exc
        received = {}
        for (edge, index), ws in list(self.model.host_out.items()):
            received[f"{edge}{index}"] = [(w.data, w.color, w.ctrl) for w in ws]
        self.model.host_out.clear()
        missing = {p: n - len(received.get(p, [])) for p, n in expect.items()
                   if len(received.get(p, [])) < n}
        busy = self.model.busy_tiles()
        error = (any(pe.errors for row in self.model.pes for pe in row)
                 or any(any(row) for row in self.model.dropped))
        return {"cycles": None, "received": received, "timeout": bool(missing),
                "busy_logical": busy, "pending": {}, "error": int(error)}

    def set_faults(self, modes) -> None:
        pass

    def close(self) -> None:
        pass


class _RTLBackend:
    """Runs the fabric RTL in a simulator process serving :mod:`sim.cocotb_fabric`."""

    def __init__(self, params: FabricParams, *, sim: str | None, waves: bool, optimize: bool,
                 build_timeout_s: float = 1800):
        from sim.harness import run_cocotb

        self.params = params
        self._tmp = tempfile.TemporaryDirectory(prefix="wafer-driver-")
        path = os.path.join(self._tmp.name, "driver.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._listener.settimeout(1.0)
        self._error: BaseException | None = None
        verilog = emit_verilog(params)
        env = {"WAFER_DRIVER_SOCKET": path, "WAFER_FABRIC": json.dumps(asdict(params))}

        def target():
            try:
                run_cocotb(verilog, toplevel=params.name(), test_module="sim.cocotb_fabric",
                           sim=sim, waves=waves, optimize=optimize, extra_env=env)
            except BaseException as exc:  # reported to the caller
                self._error = exc

        self._thread = threading.Thread(target=target, name="wafer-rtl", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + build_timeout_s
        self._sock = None
        while self._sock is None:
            try:
                self._sock, _ = self._listener.accept()
            except TimeoutError:
                if not self._thread.is_alive():
                    raise DriverError(f"the RTL simulation did not start: {self._error}") \
                        from self._error
                if time.monotonic() > deadline:
                    raise DriverError(f"the RTL simulation did not start within "
                                      f"{build_timeout_s:.0f} s") from None

    def _call(self, command: str, args=None):
        data = pickle.dumps((command, args))
        try:
            self._sock.sendall(struct.pack("<Q", len(data)) + data)
            head = self._recv(8)
            status, value = pickle.loads(self._recv(struct.unpack("<Q", head)[0]))
        except (OSError, ConnectionError) as exc:
            self._thread.join(timeout=30)
            raise DriverError(f"the RTL simulation stopped: {self._error or exc}") from exc
        if status != "ok":
            raise DriverError(f"the RTL simulation failed on {command!r}: {value}")
        return value

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            buf += chunk
        return bytes(buf)

    def chain(self, words: list[int], answers: int) -> list[int]:
        return self._call("chain", ([int(w) & 0xFFFF_FFFF for w in words], answers))

    def send(self, port: str, wavelets) -> None:
        self._call("send", (port, list(wavelets)))

    def run(self, max_cycles: int, expect: dict[str, int]) -> dict:
        return self._call("run", (max_cycles, expect))

    def set_faults(self, modes) -> None:
        self._call("faults", list(modes))

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._call("quit")
            except DriverError:
                pass
            self._sock.close()
            self._sock = None
        self._thread.join(timeout=60)
        self._listener.close()
        self._tmp.cleanup()
        if self._error is not None:
            raise DriverError(f"the RTL simulation ended with an error: {self._error}")


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
                 optimize: bool = False):
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
            self._backend = _GoldenBackend(params, self.repair_map)
        else:
            self._backend = _RTLBackend(params, sim=sim, waves=waves, optimize=optimize)
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
        its SRAM, program, task and DSD tables and registers, then write every tile's routes and
        PE image through the configuration chain.

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
                            (AddressMap.REGS, 8)):
            words += self._broadcast(addr, [0] * count)
        empty = RouteTable(self.params.num_colors).words()
        for r in range(R):
            for c in range(C):
                pr, pc = self._physical(r, c)
                prog = image.program(r, c)
                routes = prog.routes.words() if prog else empty
                if prog is not None and prog.routes.num_colors != self.params.num_colors:
                    raise ValueError(f"tile ({r}, {c}): route table has "
                                     f"{prog.routes.num_colors} colours, the fabric "
                                     f"{self.params.num_colors}")
                words += write_packets(pr, pc, ROUTER_BASE, routes)
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
            flags = ErrorFlag(word >> AddressMap.ERROR_SHIFT & 0xFF)
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

