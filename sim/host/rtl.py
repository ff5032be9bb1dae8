"""The RTL backend of the host driver: the fabric's Verilog inside the simulation top of
:mod:`sim.tb.sim_top` (host engines for every edge port and the configuration chain), simulated
with cocotb in a simulator process that serves :mod:`sim.tb.fabric_server` and talks to the driver
over a Unix socket. Wavelets sent to a port are kept here and handed to the engines with the next
run, as one batch."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from fabric.array import TILE_MODULE, FabricParams, emit_verilog
from sim.host.errors import DriverError
from sim.host.wire import recv_message, send_message
from sim.tb.harness import SimulationError, ToolMissingError, build, run_cocotb
from sim.tb.sim_top import SIM_TOP, EngineParams, SimTop, sim_top_verilog

__all__ = ["RTLBackend"]


def memory_names(params: FabricParams, engines: EngineParams) -> list[str]:
    """The engines' memories in the simulation top (made visible to cocotb)."""
    from hdl.refused import mark_unused

    top = SimTop(params, engines)
    mark_unused(top)
    return [f"{kind}_{p}_mem" for p in top.ports for kind in ("src", "snk")] + \
        ["chq_mem", "chc_mem"]


class RTLBackend:
    """Runs the fabric RTL in a simulator process serving :mod:`sim.tb.fabric_server`.

    Parameters
    ----------
    params : FabricParams
    sim : str or None
        Simulator (default :func:`sim.tb.harness.default_simulator`).
    waves : bool
        Record a waveform.
    optimize : bool
        Build the simulator with C++ optimisation.
    build_timeout_s : float
        Seconds to wait for the simulator to build and connect.
    engines : EngineParams, optional
        Sizes of the host engines' rings (default :class:`sim.tb.sim_top.EngineParams`).
    reuse_tile : bool
        On Verilator, compile the tile once as a library shared by every fabric size
        (:func:`sim.tb.harness.build_library`); else one monolithic build per size.
    threads : int
        Verilator ``--threads`` of the simulation top.
    trace : path, optional
        Record the session for :func:`sim.tb.free_run.replay` (the free-running limit).
    build_root : path, optional
        Where the builds go (default ``build/sim``; a new directory measures a first build).

    Attributes
    ----------
    build_dir : Path
        The simulator build.
    build_seconds : float
        Wall seconds spent building (or finding) it.

    Raises
    ------
    DriverError
        If the simulation does not start (its build failed, or it took too long).
    """

    def __init__(self, params: FabricParams, *, sim: str | None, waves: bool, optimize: bool,
                 build_timeout_s: float = 1800, engines: EngineParams | None = None,
                 reuse_tile: bool = True, threads: int = 1, trace=None, build_root=None):
        self.params = params
        self.engines = engines or EngineParams()
        self._sends: dict[str, list] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="wafer-driver-")
        path = os.path.join(self._tmp.name, "driver.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._listener.settimeout(1.0)
        self._error: BaseException | None = None
        tile_v, fabric_v = emit_verilog(params)
        verilog = [fabric_v, sim_top_verilog(params, self.engines)]
        options = {"public": memory_names(params, self.engines), "threads": threads,
                   "build_root": Path(build_root) if build_root else None}
        if reuse_tile:
            options["library"] = (TILE_MODULE, tile_v)
        else:
            verilog.insert(0, tile_v)
        env = {"WAFER_DRIVER_SOCKET": path, "WAFER_FABRIC": json.dumps(asdict(params)),
               "WAFER_ENGINES": json.dumps(asdict(self.engines))}
        if trace is not None:
            env["WAFER_SIM_TRACE"] = str(Path(trace).resolve())
        t0 = time.monotonic()
        try:  # build here (cached), so that its time and directory are known
            self.build_dir = build(verilog, SIM_TOP, sim=sim, waves=waves, optimize=optimize,
                                   **options)
        except (SimulationError, ToolMissingError) as exc:
            self._listener.close()
            self._tmp.cleanup()
            raise DriverError(f"the RTL simulation did not start: {exc}") from exc
        self.build_seconds = time.monotonic() - t0

        def target():
            try:
                run_cocotb(verilog, toplevel=SIM_TOP, test_module="sim.tb.fabric_server",
                           sim=sim, waves=waves, optimize=optimize, extra_env=env,
                           **options)
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
        try:
            send_message(self._sock, (command, args))
            status, value = recv_message(self._sock, "the simulator")
        except (OSError, ConnectionError) as exc:
            self._thread.join(timeout=30)
            raise DriverError(f"the RTL simulation stopped: {self._error or exc}") from exc
        if status != "ok":
            raise DriverError(f"the RTL simulation failed on {command!r}: {value}")
        return value

    def chain(self, words: list[int], answers: int) -> list[int]:
        """Push configuration words through the simulated chain; the words that came out."""
        return self._call("chain", ([int(w) & 0xFFFF_FFFF for w in words], answers))

    def send(self, port: str, wavelets) -> None:
        """Hold ``(data, colour, ctrl)`` wavelets for host port ``port``; they go to the port's
        source engine with the next run."""
        self._sends.setdefault(port, []).extend(wavelets)

    def run(self, max_cycles: int, expect: dict[str, int]) -> dict:
        """Run the simulation (see :mod:`sim.tb.fabric_server`, command ``run``).

        Raises
        ------
        DriverError
            If the simulation stopped, or a link check of the simulation top failed (the message
            names the port).
        """
        sends, self._sends = self._sends, {}
        return self._call("run", (max_cycles, expect, sends))

    def set_pause(self, level: int) -> None:
        """Backpressure at every host output: the sink engines refuse ``level`` (0..15)
        sixteenths of the cycles, from an LFSR pattern (for tests)."""
        if not 0 <= level <= 15:
            raise ValueError(f"pause level must be 0..15, not {level}")
        self._call("pause", level)

    def stats(self) -> dict:
        """Wall seconds the simulator spent in commands (``command_s``) and, of those, running
        free (``simulating_s``), and how often the engines stopped (``stops``)."""
        return self._call("stats")

    def vpi_cost(self, n: int = 2000) -> dict[str, float]:
        """Microseconds per cocotb access to the engines (ring words and ports, written and
        read), measured in the simulator."""
        return self._call("vpi_cost", n)

    def set_faults(self, modes) -> None:
        """Set the fault-injection mode of every physical tile."""
        self._call("faults", list(modes))

    def close(self) -> None:
        """Stop the simulator and wait for it.

        Raises
        ------
        DriverError
            If the simulation ended with an error.
        """
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
